/* Unit tests for head.h: profiles appended with and without span IDs (the
 * span column appears with a series' first span, zeros for the samples
 * before and for those without; memory accounting counts it), and the span
 * filter of a selection parsed from a SelectRequest. */
#include <stdio.h>

#include "hotpath/head.h"
#include "test.h"

/* The series {service_name=svc} of a CPU profile type in h. */
static hp_series_t *series_of(hp_head_t *h, const char *svc)
{
    hp_labels_t l;
    hp_labels_init(&l);
    hp_labels_add(&l, HP_STR("service_name"), hp_str_c(svc));
    hp_labels_add(&l, HP_STR(HP_LABEL_PROFILE_TYPE), HP_STR("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
    hp_labels_sort(&l);
    bool created;
    hp_series_t *s = hp_head_series(h, &l, hp_labels_fingerprint(&l), &created);
    hp_labels_fini(&l);
    return s;
}

static const uint8_t *id_of(int k)
{
    static uint8_t ids[8][16];
    memset(ids[k], 'a' + k, 16);
    return ids[k];
}

static void test_append_spans(void)
{
    hp_head_t *h = hp_head_new(1, "t", 0, INT64_MAX, NULL);
    hp_series_t *s = series_of(h, "a"), *other = series_of(h, "b");
    const size_t prof = sizeof(hp_series_profile_t), plain = 12, spanned = 20;
    uint32_t st[] = {1, 2, 2};
    int64_t val[] = {10, 20, 30};
    uint64_t none[] = {0, 0, 0}, sp[] = {0, 5, 9};

    size_t b0 = atomic_load(&h->bytes);
    CHECK(hp_head_append(h, s, 100, id_of(0), st, val, NULL, 2));
    CHECK(hp_head_append(h, s, 200, id_of(1), st, val, none, 2)); /* all zero: no span */
    CHECK(s->spans == NULL);
    CHECK_EQ_INT(atomic_load(&h->bytes) - b0, 2 * (2 * plain + prof));

    /* the first span: a column for every sample, zeros before */
    size_t b1 = atomic_load(&h->bytes);
    CHECK(hp_head_append(h, s, 300, id_of(2), st, val, sp, 3));
    REQUIRE(s->spans != NULL);
    CHECK_EQ_INT(atomic_load(&h->bytes) - b1, 4 * 8 + 3 * spanned + prof);
    CHECK(hp_head_append(h, s, 150, id_of(3), st, val, NULL, 1)); /* out of time order, no span */
    CHECK_EQ_INT(s->n_samples, 8);
    static const uint64_t want[] = {0, 0, 0, 0, 0, 5, 9, 0};
    for (size_t i = 0; i < s->n_samples; i++)
        CHECK_EQ_INT(s->spans[i], want[i]);
    CHECK_EQ_INT(s->profiles[2].t, 200);
    CHECK_EQ_INT(s->profiles[3].off, 4); /* t = 300: its samples at 4..6 */
    CHECK_EQ_INT(s->spans[s->profiles[3].off + 1], 5);
    CHECK_EQ_INT(s->profiles[3].total, 60);

    /* a stored profile is not stored again; other series keep no column */
    size_t b2 = atomic_load(&h->bytes);
    CHECK(!hp_head_append(h, s, 300, id_of(2), st, val, sp, 3));
    CHECK_EQ_INT(atomic_load(&h->bytes), b2);
    CHECK(!hp_head_append(h, s, 150, id_of(3), st, val, NULL, 1)); /* not the newest either */
    CHECK(!hp_head_append(h, s, 100, id_of(0), st, val, NULL, 2));
    CHECK(hp_head_append(h, s, 150, id_of(5), st, val, NULL, 1)); /* same time, another ID */
    CHECK(!hp_head_append(h, s, 150, id_of(3), st, val, NULL, 1)); /* found among equal times */
    CHECK(!hp_head_append(h, s, 150, id_of(5), st, val, NULL, 1));
    CHECK_EQ_INT(s->n_profiles, 5);
    CHECK(hp_head_append(h, other, 300, id_of(2), st, val, NULL, 3));
    CHECK(other->spans == NULL);
    for (int k = 0; k < 40; k++) /* growth keeps the column parallel */
        CHECK(hp_head_append(h, s, 1000 + k, id_of(4), st, val, k % 2 ? sp : NULL, 3));
    CHECK_EQ_INT(s->n_samples, 9 + 40 * 3);
    CHECK_EQ_INT(s->spans[s->n_samples - 2], 5); /* k = 39: spans */
    CHECK_EQ_INT(s->spans[s->n_samples - 5], 0); /* k = 38: none */
    hp_head_unref(h);
}

static void test_select_spans(void)
{
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.label_selector = "{}";
    uint64_t ids[] = {9, 0, 5, 9};
    r.span_ids = ids;
    r.n_span_ids = 4;
    hp_select_t q;
    hp_err_t err;
    REQUIRE(hp_select_parse(&r, &q, &err) == 0);
    CHECK(q.by_span && q.n_spans == 2 && q.spans[0] == 5 && q.spans[1] == 9);
    CHECK(hp_select_span(&q, 5) && hp_select_span(&q, 9));
    CHECK(!hp_select_span(&q, 7) && !hp_select_span(&q, 0) && !hp_select_span(&q, UINT64_MAX));
    hp_select_fini(&q);

    r.n_span_ids = 1;
    ids[0] = 0; /* only "no span": matches nothing, never everything */
    REQUIRE(hp_select_parse(&r, &q, &err) == 0);
    CHECK(q.by_span && q.n_spans == 0 && !hp_select_span(&q, 0) && !hp_select_span(&q, 5));
    hp_select_fini(&q);

    r.n_span_ids = 0;
    REQUIRE(hp_select_parse(&r, &q, &err) == 0);
    CHECK(!q.by_span && hp_select_span(&q, 0) && hp_select_span(&q, 5));
    hp_select_fini(&q);

    r.n_span_ids = HP_SELECT_MAX_SPANS + 1;
    r.span_ids = calloc(r.n_span_ids, sizeof(uint64_t));
    CHECK_EQ_INT(hp_select_parse(&r, &q, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "span IDs, at most") != NULL);
    free(r.span_ids);
}

/* Postings narrow a selection to the series that can match: every series
 * the full scan selects is a candidate, and an equality narrows to exactly
 * the series with that label. */
static void test_postings(void)
{
    static const char *types[] = {"process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                                  "memory:alloc_space:bytes:space:bytes"};
    hp_head_t *h = hp_head_new(1, "t", 0, INT64_MAX, NULL);
    uint32_t st[] = {1};
    int64_t val[] = {10};
    for (int i = 0; i < 200; i++) {
        char svc[16], pod[16];
        snprintf(svc, sizeof(svc), "svc%d", i % 10);
        snprintf(pod, sizeof(pod), "pod%d", i);
        hp_labels_t l;
        hp_labels_init(&l);
        hp_labels_add(&l, HP_STR("service_name"), hp_str_c(svc));
        hp_labels_add(&l, HP_STR("pod"), hp_str_c(pod));
        if (i % 3)
            hp_labels_add(&l, HP_STR("env"), i % 3 == 1 ? HP_STR("prod") : HP_STR("dev"));
        hp_labels_add(&l, HP_STR(HP_LABEL_PROFILE_TYPE), hp_str_c(types[i % 2]));
        hp_labels_sort(&l);
        bool created;
        hp_series_t *s = hp_head_series(h, &l, hp_labels_fingerprint(&l), &created);
        CHECK(created);
        CHECK(hp_head_append(h, s, 100 + i, id_of(i % 8), st, val, NULL, 1));
        hp_labels_fini(&l);
    }
    static const struct {
        const char *sel, *type;
        int narrowed; /* -1: no narrowing; else the candidate count */
        int matched;
    } cases[] = {
        {"{service_name=\"svc3\"}", NULL, 20, 20},
        {"{service_name=\"svc3\"}", "memory:alloc_space:bytes:space:bytes", 20, 20}, /* svc3: odd i, memory */
        {"{service_name=\"svc4\"}", "memory:alloc_space:bytes:space:bytes", 20, 0},
        {"{pod=\"pod7\", env=\"prod\"}", NULL, 1, 1},
        {"{pod=\"pod9\", env=\"prod\"}", NULL, 1, 0},
        {"{service_name=\"nope\"}", NULL, 0, 0},
        {"{env=\"\"}", NULL, -1, 67},                       /* "" also matches the absent label */
        {"{service_name=~\"svc[12]\"}", NULL, -1, 40},        /* regexes scan */
        {"{env!=\"prod\"}", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 100, 67},             /* the type narrows */
        {"{}", NULL, -1, 200},
    };
    for (size_t k = 0; k < HP_ARRAY_LEN(cases); k++) {
        Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
        r.label_selector = (char *)cases[k].sel;
        r.profile_type = (char *)(cases[k].type ? cases[k].type : "");
        hp_select_t q;
        hp_err_t err;
        REQUIRE(hp_select_parse(&r, &q, &err) == 0);
        const uint32_t *cand;
        size_t nc;
        bool narrow = hp_head_candidates(h, &q, &cand, &nc);
        CHECK_EQ_INT(narrow ? (int)nc : -1, cases[k].narrowed);
        int matched = 0, missed = 0;
        for (size_t i = 0; i < h->n_series; i++) {
            if (!hp_select_series(h, h->series[i], &q))
                continue;
            matched++;
            bool in = !narrow;
            for (size_t j = 0; j < nc && !in; j++)
                in = cand[j] == i;
            missed += !in;
        }
        for (size_t j = 1; narrow && j < nc; j++)
            CHECK(cand[j - 1] < cand[j]);
        CHECK_EQ_INT(matched, cases[k].matched);
        CHECK_EQ_INT(missed, 0);
        if (missed || matched != cases[k].matched || (narrow ? (int)nc : -1) != cases[k].narrowed)
            printf("  case %zu: %s\n", k, cases[k].sel);
        hp_select_fini(&q);
    }
    hp_head_unref(h);
}

int main(void)
{
    HP_RUN(test_append_spans);
    HP_RUN(test_select_spans);
    HP_RUN(test_postings);
    return hp_test_done();
}
