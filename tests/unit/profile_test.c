/* Unit tests for profile: sample_type_config, metric names, type IDs,
 * sample groups, series labels and span IDs. */
#include "hotpath/compress.h"
#include "hotpath/profile.h"
#include "hotpath/selector.h"
#include "test.h"

static const char *cs(hp_str_t s)
{
    static char pool[8][512];
    static int k;
    char *b = pool[k++ & 7];
    snprintf(b, 512, "%.*s", (int)s.n, s.p ? s.p : "");
    return b;
}

/* ---- a hand-built decoded profile ---- */

typedef struct fake {
    hp_pprof_t p;
    hp_str_t strs[128];
    hp_pprof_value_type_t st[8];
    hp_pprof_sample_t samples[2100];
    hp_pprof_label_t labels[4200];
    int64_t values[4200];
} fake_t;

static fake_t *fake_new(void)
{
    fake_t *f = calloc(1, sizeof(*f));
    f->p.strings = f->strs;
    f->p.sample_types = f->st;
    f->p.samples = f->samples;
    f->p.labels = f->labels;
    f->p.values = f->values;
    f->strs[0] = HP_STR("");
    f->p.n_strings = 1;
    return f;
}

/* The string index of s, adding it. Strings must outlive f (literals). */
static uint32_t str(fake_t *f, const char *s)
{
    for (uint32_t i = 0; i < f->p.n_strings; i++)
        if (hp_str_eq_c(f->strs[i], s))
            return i;
    f->strs[f->p.n_strings] = hp_str_c(s);
    return f->p.n_strings++;
}

static void sample_type(fake_t *f, const char *type, const char *unit)
{
    f->st[f->p.n_sample_types++] = (hp_pprof_value_type_t){str(f, type), str(f, unit)};
}

static void period(fake_t *f, const char *type, const char *unit)
{
    f->p.period_type = (hp_pprof_value_type_t){str(f, type), str(f, unit)};
}

/* Adds a sample with one value per sample type (all v) and labels given as
 * pairs {key, value}; a value starting with '#' is numeric. */
static void sample(fake_t *f, int64_t v, const char *const *kv, size_t n_kv)
{
    hp_pprof_sample_t *s = &f->samples[f->p.n_samples++];
    s->val_off = f->p.n_values;
    for (uint32_t i = 0; i < f->p.n_sample_types; i++)
        f->values[f->p.n_values++] = v;
    s->lab_off = f->p.n_labels;
    s->lab_n = (uint32_t)n_kv;
    for (size_t i = 0; i < n_kv; i++) {
        hp_pprof_label_t *l = &f->labels[f->p.n_labels++];
        memset(l, 0, sizeof(*l));
        l->key = str(f, kv[2 * i]);
        if (kv[2 * i + 1][0] == '#') {
            l->num = atoi(kv[2 * i + 1] + 1);
            l->num_unit = str(f, "bytes");
        } else {
            l->str = str(f, kv[2 * i + 1]);
        }
    }
}

#define SAMPLE(f, v, ...)                                                                                    \
    do {                                                                                                     \
        const char *const kv_[] = {__VA_ARGS__};                                                             \
        sample((f), (v), kv_, HP_ARRAY_LEN(kv_) / 2);                                                        \
    } while (0)

static const char *metric(const char *const *types, size_t n, const hp_stc_t *stc)
{
    fake_t *f = fake_new();
    for (size_t i = 0; i < n; i++)
        sample_type(f, types[2 * i], types[2 * i + 1]);
    const char *r = cs(hp_profile_metric_name(&f->p, stc));
    free(f);
    return r;
}

#define METRIC(stc, ...)                                                                                     \
    ({                                                                                                       \
        const char *const t_[] = {__VA_ARGS__};                                                              \
        metric(t_, HP_ARRAY_LEN(t_) / 2, (stc));                                                             \
    })

/* ---- sample_type_config ---- */

static const hp_stc_entry_t *stc_find(const hp_stc_t *stc, const char *type)
{
    for (size_t i = 0; i < stc->n; i++)
        if (strcmp(stc->v[i].sample_type, type) == 0)
            return &stc->v[i];
    return NULL;
}

static int load_stc(const char *rel, hp_stc_t *stc)
{
    size_t n = 0;
    unsigned char *json = hp_test_read_file(hp_testdata(rel), &n);
    if (json == NULL) {
        fprintf(stderr, "  cannot read %s (set HP_TESTDATA)\n", hp_testdata(rel));
        return -1;
    }
    hp_err_t err;
    int rc = hp_stc_parse((const char *)json, n, stc, &err);
    if (rc)
        fprintf(stderr, "  %s: %s\n", rel, err.msg);
    free(json);
    return rc;
}

static void test_stc_files(void)
{
    hp_stc_t stc;
    REQUIRE(load_stc("pyroscope/pprof/req_2.st.json", &stc) == 0);
    REQUIRE(stc.n == 1);
    const hp_stc_entry_t *e = stc_find(&stc, "goroutine");
    REQUIRE(e != NULL);
    CHECK_EQ_STR(e->units, "goroutines");
    CHECK_EQ_STR(e->aggregation, "average");
    CHECK_EQ_STR(e->display_name, "goroutines");
    CHECK(!e->cumulative && !e->sampled);
    hp_stc_fini(&stc);
    CHECK(stc.v == NULL && stc.n == 0);

    REQUIRE(load_stc("pyroscope/pprof/req_3.st.json", &stc) == 0);
    REQUIRE(stc.n == 2);
    e = stc_find(&stc, "contentions");
    REQUIRE(e != NULL);
    CHECK_EQ_STR(e->units, "lock_samples");
    CHECK_EQ_STR(e->display_name, "block_count");
    CHECK(e->aggregation == NULL);
    e = stc_find(&stc, "delay");
    REQUIRE(e != NULL);
    CHECK_EQ_STR(e->units, "lock_nanoseconds");
    CHECK_EQ_STR(e->display_name, "block_duration");
    hp_stc_fini(&stc);

    REQUIRE(load_stc("pyroscope/pprof/req_4.st.json", &stc) == 0);
    REQUIRE(stc.n == 2);
    e = stc_find(&stc, "contentions");
    REQUIRE(e != NULL);
    CHECK_EQ_STR(e->display_name, "mutex_count");
    e = stc_find(&stc, "delay");
    REQUIRE(e != NULL);
    CHECK_EQ_STR(e->display_name, "mutex_duration");
    hp_stc_fini(&stc);

    REQUIRE(load_stc("pyroscope/pprof/req_5.st.json", &stc) == 0);
    REQUIRE(stc.n == 4);
    const char *types[] = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"};
    const char *units[] = {"objects", "bytes", "objects", "bytes"};
    const char *aggr[] = {NULL, NULL, "average", "average"};
    for (int i = 0; i < 4; i++) {
        e = stc_find(&stc, types[i]);
        REQUIRE(e != NULL);
        CHECK_EQ_STR(e->units, units[i]);
        CHECK(e->display_name == NULL);
        if (aggr[i])
            CHECK_EQ_STR(e->aggregation, aggr[i]);
        else
            CHECK(e->aggregation == NULL);
    }
    hp_stc_fini(&stc);
}

static void test_stc_parse_edges(void)
{
    hp_stc_t stc;
    hp_err_t err;
    const char *js = "{\"cpu\":{\"units\":\"samples\",\"sampled\":true,\"cumulative\":false},"
                     "\"x\":5,\"delay\":{\"cumulative\":true,\"display-name\":7}}";
    REQUIRE(hp_stc_parse(js, strlen(js), &stc, &err) == 0);
    CHECK_EQ_INT(stc.n, 2); /* "x" is not an object: skipped */
    const hp_stc_entry_t *e = stc_find(&stc, "cpu");
    REQUIRE(e != NULL);
    CHECK(e->sampled);
    CHECK(!e->cumulative);
    e = stc_find(&stc, "delay");
    REQUIRE(e != NULL);
    CHECK(e->cumulative);
    CHECK(e->display_name == NULL); /* not a string */
    hp_stc_fini(&stc);

    REQUIRE(hp_stc_parse("{}", 2, &stc, &err) == 0);
    CHECK_EQ_INT(stc.n, 0);
    hp_stc_fini(&stc);

    /* the length bounds the input: the rest is not read */
    REQUIRE(hp_stc_parse("{}garbage", 2, &stc, &err) == 0);
    hp_stc_fini(&stc);

    const char *bad[] = {"", "{", "[]", "\"x\"", "{\"a\":{}", "{\"a\":{},\"a\":{}}", "nul"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        hp_err_clear(&err);
        int rc = hp_stc_parse(bad[i], strlen(bad[i]), &stc, &err);
        if (rc != HP_EINVAL || strstr(err.msg, "invalid sample_type_config") == NULL) {
            fprintf(stderr, "  '%s': rc %d msg %s\n", bad[i], rc, err.msg);
            hp_t_cur_failed = 1;
        }
        hp_stc_fini(&stc); /* safe after a failure */
    }
}

/* ---- metric names ---- */

static void test_metric_names_default(void)
{
    CHECK_EQ_STR(METRIC(NULL, "samples", "count", "cpu", "nanoseconds"), "process_cpu");
    CHECK_EQ_STR(METRIC(NULL, "cpu", "nanoseconds"), "process_cpu");
    CHECK_EQ_STR(METRIC(NULL, "samples", "count"), "process_cpu"); /* samples shows as cpu */
    CHECK_EQ_STR(METRIC(NULL, "wall", "nanoseconds"), "wall");
    CHECK_EQ_STR(METRIC(NULL, "samples", "count", "wall", "microseconds"), "wall");
    CHECK_EQ_STR(METRIC(NULL, "cpu", "nanoseconds", "wall", "microseconds"), "wall");
    CHECK_EQ_STR(METRIC(NULL, "inuse_objects", "count", "inuse_space", "bytes"), "memory");
    CHECK_EQ_STR(METRIC(NULL, "alloc_objects", "count", "alloc_space", "bytes", "inuse_objects", "count",
                        "inuse_space", "bytes"),
                 "memory");
    CHECK_EQ_STR(METRIC(NULL, "space", "bytes"), "memory");
    CHECK_EQ_STR(METRIC(NULL, "objects", "count"), "memory");
    CHECK_EQ_STR(METRIC(NULL, "goroutine", "count"), "goroutines");
    CHECK_EQ_STR(METRIC(NULL, "contentions", "count", "delay", "nanoseconds"), "mutex");
    CHECK_EQ_STR(METRIC(NULL, "delay", "nanoseconds"), "mutex");
    CHECK_EQ_STR(METRIC(NULL, "block_count", "count"), "block");
    CHECK_EQ_STR(METRIC(NULL, "mutex_duration", "nanoseconds"), "mutex");
    /* unknown: the last sample type's name */
    CHECK_EQ_STR(METRIC(NULL, "foo", "x", "bar", "y"), "bar");
    CHECK_EQ_STR(METRIC(NULL, "spaces", "bytes"), "spaces");
    CHECK_EQ_STR(METRIC(NULL, "exceptions", "count"), "exceptions");
    /* the first matching sample type decides */
    CHECK_EQ_STR(METRIC(NULL, "alloc_space", "bytes", "cpu", "nanoseconds"), "memory");
    CHECK_EQ_STR(METRIC(NULL, "foo", "x", "goroutine", "count"), "goroutines");
    CHECK_EQ_STR(METRIC(NULL), "");
}

static void test_metric_names_config(void)
{
    hp_stc_t s2, s3, s4, s5;
    REQUIRE(load_stc("pyroscope/pprof/req_2.st.json", &s2) == 0);
    REQUIRE(load_stc("pyroscope/pprof/req_3.st.json", &s3) == 0);
    REQUIRE(load_stc("pyroscope/pprof/req_4.st.json", &s4) == 0);
    REQUIRE(load_stc("pyroscope/pprof/req_5.st.json", &s5) == 0);
    CHECK_EQ_STR(METRIC(&s3, "contentions", "count", "delay", "nanoseconds"), "block");
    CHECK_EQ_STR(METRIC(&s4, "contentions", "count", "delay", "nanoseconds"), "mutex");
    CHECK_EQ_STR(METRIC(&s2, "goroutine", "count"), "goroutines");
    CHECK_EQ_STR(METRIC(&s5, "alloc_objects", "count", "alloc_space", "bytes", "inuse_objects", "count",
                        "inuse_space", "bytes"),
                 "memory");
    /* a config replaces the default table: goroutine has no display name in
     * req_5's, so nothing matches and the last name is the metric */
    CHECK_EQ_STR(METRIC(&s5, "goroutine", "count"), "goroutine");
    CHECK_EQ_STR(METRIC(&s5, "contentions", "count", "delay", "nanoseconds"), "delay");
    /* wall wins regardless of config; cpu still matches by name */
    CHECK_EQ_STR(METRIC(&s3, "contentions", "count", "wall", "nanoseconds"), "wall");
    CHECK_EQ_STR(METRIC(&s3, "samples", "count", "cpu", "nanoseconds"), "process_cpu");

    /* an empty display name falls back to the sample type */
    hp_stc_t se;
    hp_err_t err;
    const char *js = "{\"goroutine\":{\"display-name\":\"\"}}";
    REQUIRE(hp_stc_parse(js, strlen(js), &se, &err) == 0);
    CHECK_EQ_STR(METRIC(&se, "goroutine", "count"), "goroutine");
    hp_stc_fini(&se);
    hp_stc_fini(&s2);
    hp_stc_fini(&s3);
    hp_stc_fini(&s4);
    hp_stc_fini(&s5);
}

/* ---- type IDs ---- */

static void test_type_ids(void)
{
    fake_t *f = fake_new();
    sample_type(f, "samples", "count");
    sample_type(f, "cpu", "nanoseconds");
    period(f, "cpu", "nanoseconds");
    hp_str_t m = hp_profile_metric_name(&f->p, NULL);
    hp_buf_t b = HP_BUF_INIT;
    hp_profile_type_id(&f->p, 1, m, &b);
    CHECK_EQ_STR(hp_buf_cstr(&b), "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    hp_buf_reset(&b);
    hp_profile_type_id(&f->p, 0, m, &b);
    CHECK_EQ_STR(hp_buf_cstr(&b), "process_cpu:samples:count:cpu:nanoseconds");
    /* appends */
    hp_buf_putc(&b, '|');
    hp_profile_type_id(&f->p, 1, m, &b);
    CHECK_EQ_STR(hp_buf_cstr(&b), "process_cpu:samples:count:cpu:nanoseconds|"
                                  "process_cpu:cpu:nanoseconds:cpu:nanoseconds");

    /* empty period type (e.g. a Node.js CPU profile) */
    fake_t *g = fake_new();
    sample_type(g, "samples", "count");
    g->p.period_type = (hp_pprof_value_type_t){0, str(g, "milliseconds")};
    hp_buf_reset(&b);
    hp_profile_type_id(&g->p, 0, hp_profile_metric_name(&g->p, NULL), &b);
    CHECK_EQ_STR(hp_buf_cstr(&b), "process_cpu:samples:count::milliseconds");
    /* and the selector module reads it back */
    hp_profile_type_t pt;
    hp_err_t err;
    REQUIRE(hp_profile_type_parse((hp_str_t){(const char *)b.data, b.len}, &pt, &err) == 0);
    CHECK_EQ_STR(cs(pt.name), "process_cpu");
    CHECK_EQ_STR(cs(pt.sample_type), "samples");
    CHECK_EQ_INT(pt.period_type.n, 0);
    CHECK_EQ_STR(cs(pt.period_unit), "milliseconds");

    /* no period at all */
    fake_t *h = fake_new();
    sample_type(h, "goroutine", "count");
    hp_buf_reset(&b);
    hp_profile_type_id(&h->p, 0, hp_profile_metric_name(&h->p, NULL), &b);
    CHECK_EQ_STR(hp_buf_cstr(&b), "goroutines:goroutine:count::");
    hp_buf_fini(&b);
    free(f);
    free(g);
    free(h);
}

/* ---- groups ---- */

static const char *fmt_labels(const hp_labels_t *ls)
{
    static hp_buf_t b[4];
    static int k;
    hp_buf_t *o = &b[k++ & 3];
    hp_buf_reset(o);
    hp_labels_format(ls, o);
    return hp_buf_cstr(o);
}

static const char *fmt_samples(const hp_sample_group_t *g)
{
    static char out[4][256];
    static int k;
    char *o = out[k++ & 3];
    size_t n = 0;
    o[0] = '\0';
    for (uint32_t i = 0; i < g->n && n < 200; i++)
        n += (size_t)snprintf(o + n, 256 - n, "%s%u", i ? "," : "", g->samples[i]);
    return o;
}

static void test_groups(void)
{
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    SAMPLE(f, 1, "job", "a");
    SAMPLE(f, 2, "job", "a", "span_id", "1");
    SAMPLE(f, 3, "job", "b");
    sample(f, 4, NULL, 0);
    SAMPLE(f, 5, "span_id", "2", "profile_id", "p", "trace_id", "t"); /* → no labels */
    SAMPLE(f, 6, "job", "a", "bytes", "#42");                         /* numeric ignored */
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t *gs;
    size_t n;
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    REQUIRE(n == 3);
    CHECK_EQ_STR(fmt_labels(&gs[0].labels), "{job=\"a\"}");
    CHECK_EQ_STR(fmt_samples(&gs[0]), "0,1,5");
    CHECK_EQ_STR(fmt_labels(&gs[1].labels), "{job=\"b\"}");
    CHECK_EQ_STR(fmt_samples(&gs[1]), "2");
    CHECK_EQ_STR(fmt_labels(&gs[2].labels), "{}");
    CHECK_EQ_STR(fmt_samples(&gs[2]), "3,4");
    hp_profile_groups_fini(gs, n);
    hp_arena_fini(&a);
    free(f);
}

static void test_groups_order_and_sanitize(void)
{
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    SAMPLE(f, 1, "region", "eu", "otel.scope.name", "go", "env", "prod");
    SAMPLE(f, 1, "env", "prod", "region", "eu", "otel.scope.name", "go"); /* same set */
    SAMPLE(f, 1, "env", "prod", "region", "us", "otel.scope.name", "go");
    SAMPLE(f, 1, "env", "", "region", "us", "otel.scope.name", "go"); /* empty value: dropped */
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t *gs;
    size_t n;
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    REQUIRE(n == 3);
    CHECK_EQ_STR(fmt_labels(&gs[0].labels), "{env=\"prod\", otel_scope_name=\"go\", region=\"eu\"}");
    CHECK_EQ_STR(fmt_samples(&gs[0]), "0,1");
    CHECK_EQ_STR(fmt_labels(&gs[1].labels), "{env=\"prod\", otel_scope_name=\"go\", region=\"us\"}");
    CHECK_EQ_STR(fmt_labels(&gs[2].labels), "{otel_scope_name=\"go\", region=\"us\"}");
    CHECK_EQ_STR(fmt_samples(&gs[2]), "3");
    /* the pprof's own strings are untouched */
    CHECK_EQ_STR(cs(f->strs[f->labels[1].key]), "otel.scope.name");
    hp_profile_groups_fini(gs, n);
    hp_arena_fini(&a);
    free(f);
}

/* An empty value at a string index other than 0 (a pprof may repeat "")
 * is no label either: the sample joins the group without it. */
static void test_groups_empty_value_elsewhere(void)
{
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    SAMPLE(f, 1, "region", "eu");
    SAMPLE(f, 1, "region", "eu", "env", "prod");
    f->labels[f->p.n_labels - 1].str = f->p.n_strings; /* env = a second "" */
    f->strs[f->p.n_strings++] = HP_STR("");
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t *gs;
    size_t n;
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    REQUIRE(n == 1);
    CHECK_EQ_STR(fmt_labels(&gs[0].labels), "{region=\"eu\"}");
    CHECK_EQ_STR(fmt_samples(&gs[0]), "0,1");
    hp_profile_groups_fini(gs, n);
    hp_arena_fini(&a);
    free(f);
}

static void test_groups_trivial(void)
{
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t dummy, *gs = &dummy;
    size_t n = 99;
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    CHECK_EQ_INT(n, 0); /* no samples, no groups */
    CHECK(gs == NULL);
    for (int i = 0; i < 5; i++)
        sample(f, i, NULL, 0);
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    REQUIRE(n == 1);
    CHECK_EQ_INT(gs[0].labels.n, 0);
    CHECK_EQ_STR(fmt_samples(&gs[0]), "0,1,2,3,4");
    hp_profile_groups_fini(gs, n);
    hp_arena_fini(&a);
    free(f);
}

/* Many groups: every sample lands in the group of its label value. */
static void test_groups_many(void)
{
    static char vals[1000][12];
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    uint32_t k = str(f, "shard"), kk = str(f, "job"), vj = str(f, "x");
    /* the shard values live in a bigger string table than the fake's */
    hp_str_t *strs = calloc(1000 + f->p.n_strings, sizeof(hp_str_t));
    memcpy(strs, f->strs, f->p.n_strings * sizeof(hp_str_t));
    uint32_t base = f->p.n_strings;
    for (int i = 0; i < 1000; i++) {
        snprintf(vals[i], sizeof(vals[i]), "%d", i);
        strs[base + i] = hp_str_c(vals[i]);
    }
    f->p.strings = strs;
    f->p.n_strings = base + 1000;
    for (int i = 0; i < 2000; i++) {
        hp_pprof_sample_t *s = &f->samples[f->p.n_samples++];
        s->val_off = f->p.n_values;
        f->values[f->p.n_values++] = i;
        s->lab_off = f->p.n_labels;
        s->lab_n = 2;
        f->labels[f->p.n_labels++] = (hp_pprof_label_t){kk, vj, 0, 0};
        f->labels[f->p.n_labels++] = (hp_pprof_label_t){k, base + (uint32_t)(i % 1000), 0, 0};
    }
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t *gs;
    size_t n;
    hp_profile_group_samples(&f->p, &a, &gs, &n);
    REQUIRE(n == 1000);
    size_t bad = 0;
    for (size_t g = 0; g < n; g++) {
        char want[24];
        snprintf(want, sizeof(want), "%zu", g);
        if (gs[g].n != 2 || gs[g].samples[0] != g || gs[g].samples[1] != g + 1000 || gs[g].labels.n != 2 ||
            !hp_str_eq_c(hp_labels_get(&gs[g].labels, "shard"), want) ||
            !hp_str_eq_c(hp_labels_get(&gs[g].labels, "job"), "x"))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    hp_profile_groups_fini(gs, n);
    hp_arena_fini(&a);
    free(strs);
    free(f);
}

static void test_sample_only_keys(void)
{
    CHECK(hp_profile_label_is_sample_only(HP_STR("span_id")));
    CHECK(hp_profile_label_is_sample_only(HP_STR("profile_id")));
    CHECK(hp_profile_label_is_sample_only(HP_STR("trace_id")));
    CHECK(!hp_profile_label_is_sample_only(HP_STR("span")));
    CHECK(!hp_profile_label_is_sample_only(HP_STR("span_id_")));
    CHECK(!hp_profile_label_is_sample_only(HP_STR("")));
}

/* ---- spans ---- */

/* span_id labels as OpenTelemetry integrations set them: 16 hex digits,
 * either case; anything else (and all zeros) is no span, as in Pyroscope;
 * profile_id counts as span_id (Pyroscope renames it); the first valid one
 * of a sample wins. */
static void test_spans(void)
{
    uint64_t v = 1;
    CHECK(hp_span_id_parse(HP_STR("0123456789abcdef"), &v) && v == 0x0123456789abcdefULL);
    CHECK(hp_span_id_parse(HP_STR("FEDCBA9876543210"), &v) && v == 0xfedcba9876543210ULL);
    CHECK(hp_span_id_parse(HP_STR("0000000000000000"), &v) && v == 0);
    static const char *const bad[] = {"",
                                      "0123456789abcde",
                                      "0123456789abcdef0",
                                      "0123456789abcdeg",
                                      " 123456789abcdef",
                                      "0x23456789abcdef",
                                      "-123456789abcdef"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++)
        CHECK(!hp_span_id_parse(hp_str_c(bad[i]), &v));
    fake_t *f = fake_new();
    sample_type(f, "cpu", "nanoseconds");
    SAMPLE(f, 1, "span_id", "00000000000000ff");
    SAMPLE(f, 1, "thread", "x", "span_id", "00000000000000FE");
    SAMPLE(f, 1, "span_id", "not-a-span-id!!!", "span_id", "0000000000000007");
    SAMPLE(f, 1, "span_id", "xyz");
    SAMPLE(f, 1, "span_id", "0000000000000000");
    SAMPLE(f, 1, "span_id", "#12");
    SAMPLE(f, 1, "trace_id", "00000000000000ff");
    SAMPLE(f, 1, "profile_id", "x");
    SAMPLE(f, 1, "profile_id", "00000000000000aa"); /* the Java agent's name for it */
    SAMPLE(f, 1, "profile_id", "x", "span_id", "00000000000000bb");
    static const uint64_t want[] = {0xff, 0xfe, 7, 0, 0, 0, 0, 0, 0xaa, 0xbb};
    for (uint32_t i = 0; i < f->p.n_samples; i++)
        CHECK_EQ_INT(hp_profile_sample_span(&f->p, &f->samples[i]), want[i]);
    free(f);
}

/* ---- series labels ---- */

static void test_series_labels(void)
{
    fake_t *f = fake_new();
    sample_type(f, "samples", "count");
    sample_type(f, "cpu", "nanoseconds");
    period(f, "cpu", "nanoseconds");
    hp_labels_t base, group, out;
    hp_labels_init(&base);
    hp_labels_init(&group);
    hp_labels_init(&out);
    char svc[] = "svc";
    hp_labels_add(&base, HP_STR("__delta__"), HP_STR("false"));
    hp_labels_add(&base, HP_STR("__name__"), HP_STR("old"));
    hp_labels_add(&base, HP_STR("__profile_type__"), HP_STR("stale:a:b:c:d"));
    hp_labels_add(&base, HP_STR("env"), HP_STR("prod"));
    hp_labels_add(&base, HP_STR("job"), HP_STR("base"));
    hp_labels_add(&base, HP_STR("service_name"), hp_str_c(svc));
    hp_labels_add(&group, HP_STR("job"), HP_STR("a"));
    hp_labels_add(&group, HP_STR("region"), HP_STR("eu"));
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_str_t m = hp_profile_metric_name(&f->p, NULL);
    hp_profile_series_labels(&f->p, 1, m, &base, &group, &a, &out);
    CHECK_EQ_STR(fmt_labels(&out), "{__name__=\"process_cpu\", __period_type__=\"cpu\", "
                                   "__period_unit__=\"nanoseconds\", "
                                   "__profile_type__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\", "
                                   "__type__=\"cpu\", __unit__=\"nanoseconds\", env=\"prod\", job=\"a\", "
                                   "region=\"eu\", service_name=\"svc\"}");
    /* the result is a valid series identity; it borrows base's strings */
    hp_err_t err;
    hp_label_limits_t lim = {30, 1024, 2048};
    CHECK_EQ_INT(hp_labels_validate(&out, &lim, &err), 0);
    CHECK(hp_labels_get(&out, "service_name").p == svc);
    /* base and group are unchanged */
    CHECK_EQ_INT(base.n, 6);
    CHECK_EQ_STR(cs(hp_labels_get(&base, "job")), "base");
    CHECK_EQ_INT(group.n, 2);

    /* unsorted inputs take the slow path to the same answer */
    hp_labels_t rbase, rgroup, out2;
    hp_labels_init(&rbase);
    hp_labels_init(&rgroup);
    hp_labels_init(&out2);
    for (size_t k = base.n; k-- > 0;)
        hp_labels_add(&rbase, base.v[k].name, base.v[k].value);
    for (size_t k = group.n; k-- > 0;)
        hp_labels_add(&rgroup, group.v[k].name, group.v[k].value);
    hp_profile_series_labels(&f->p, 1, m, &rbase, &rgroup, &a, &out2);
    CHECK_EQ_STR(fmt_labels(&out2), fmt_labels(&out));
    /* equal names in a group: the last one wins, as on the slow path */
    hp_labels_add(&group, HP_STR("region"), HP_STR("us"));
    hp_profile_series_labels(&f->p, 1, m, &base, &group, &a, &out2);
    CHECK_EQ_STR(cs(hp_labels_get(&out2, "region")), "us");
    CHECK_EQ_INT(out2.n, out.n);
    group.n--;
    hp_labels_fini(&rbase);
    hp_labels_fini(&rgroup);
    hp_labels_fini(&out2);

    /* sample type 0, no group */
    hp_profile_series_labels(&f->p, 0, m, &base, NULL, &a, &out);
    CHECK_EQ_STR(cs(hp_labels_get(&out, "__profile_type__")), "process_cpu:samples:count:cpu:nanoseconds");
    CHECK_EQ_STR(cs(hp_labels_get(&out, "__type__")), "samples");
    CHECK_EQ_STR(cs(hp_labels_get(&out, "__unit__")), "count");
    CHECK_EQ_STR(cs(hp_labels_get(&out, "job")), "base");
    CHECK(hp_labels_get(&out, "__delta__").p == NULL);
    CHECK(hp_labels_get(&out, "region").p == NULL);
    CHECK_EQ_INT(out.n, 9);

    /* empty period type: the labels exist with empty values */
    fake_t *g = fake_new();
    sample_type(g, "samples", "count");
    g->p.period_type = (hp_pprof_value_type_t){0, str(g, "milliseconds")};
    hp_labels_reset(&base);
    hp_labels_add(&base, HP_STR("service_name"), HP_STR("node"));
    hp_profile_series_labels(&g->p, 0, hp_profile_metric_name(&g->p, NULL), &base, NULL, &a, &out);
    CHECK_EQ_STR(fmt_labels(&out), "{__name__=\"process_cpu\", __period_type__=\"\", "
                                   "__period_unit__=\"milliseconds\", "
                                   "__profile_type__=\"process_cpu:samples:count::milliseconds\", "
                                   "__type__=\"samples\", __unit__=\"count\", service_name=\"node\"}");
    hp_labels_fini(&base);
    hp_labels_fini(&group);
    hp_labels_fini(&out);
    hp_arena_fini(&a);
    free(f);
    free(g);
}

/* ---- a real profile ---- */

static void test_go_labels_profile(void)
{
    size_t n = 0;
    unsigned char *gz = hp_test_read_file(hp_testdata("corpus/go/go_labels.cpu.pb.gz"), &n);
    REQUIRE(gz != NULL);
    hp_buf_t raw = HP_BUF_INIT;
    hp_err_t err;
    REQUIRE(hp_gunzip(gz, n, 64 << 20, &raw, &err) == 0);
    CHECK_EQ_INT(raw.len, 55877);
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    REQUIRE(hp_pprof_decode(&p, raw.data, raw.len, NULL, &err) == 0);
    CHECK_EQ_INT(p.n_samples, 323);
    CHECK_EQ_STR(cs(hp_profile_metric_name(&p, NULL)), "process_cpu");
    hp_buf_t id = HP_BUF_INIT;
    hp_profile_type_id(&p, 1, hp_profile_metric_name(&p, NULL), &id);
    CHECK_EQ_STR(hp_buf_cstr(&id), "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    hp_buf_fini(&id);

    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_sample_group_t *gs;
    size_t ng;
    hp_profile_group_samples(&p, &a, &gs, &ng);
    /* 275 distinct label sets once span_id is ignored (from the summary's
     * raw samples): 274 with labels plus the 5 samples without any */
    CHECK_EQ_INT(ng, 275);
    size_t total = 0, unlabeled = 0, with_span = 0;
    for (size_t g = 0; g < ng; g++) {
        total += gs[g].n;
        if (gs[g].labels.n == 0)
            unlabeled += gs[g].n;
        if (hp_labels_get(&gs[g].labels, "span_id").p)
            with_span++;
        /* every labelled group has the 6 keys besides span_id */
        if (gs[g].labels.n != 0 && gs[g].labels.n != 6) {
            fprintf(stderr, "  group %zu: %s\n", g, fmt_labels(&gs[g].labels));
            hp_t_cur_failed = 1;
        }
    }
    CHECK_EQ_INT(total, 323);
    CHECK_EQ_INT(unlabeled, 5);
    CHECK_EQ_INT(with_span, 0);
    /* distinct values per key match the summary */
    const char *keys[] = {"endpoint", "job", "region", "shard", "tenant", "worker"};
    const size_t want[] = {4, 5, 4, 16, 40, 4};
    for (size_t k = 0; k < HP_ARRAY_LEN(keys); k++) {
        hp_str_t seen[64];
        size_t ns = 0;
        for (size_t g = 0; g < ng; g++) {
            hp_str_t v = hp_labels_get(&gs[g].labels, keys[k]);
            if (v.p == NULL)
                continue;
            size_t j = 0;
            while (j < ns && !hp_str_eq(seen[j], v))
                j++;
            if (j == ns && ns < 64)
                seen[ns++] = v;
        }
        if (ns != want[k]) {
            fprintf(stderr, "  key %s: %zu distinct values, want %zu\n", keys[k], ns, want[k]);
            hp_t_cur_failed = 1;
        }
    }
    hp_profile_groups_fini(gs, ng);
    hp_arena_fini(&a);
    hp_pprof_fini(&p);
    hp_buf_fini(&raw);
    free(gz);
}

int main(void)
{
    HP_RUN(test_stc_files);
    HP_RUN(test_stc_parse_edges);
    HP_RUN(test_metric_names_default);
    HP_RUN(test_metric_names_config);
    HP_RUN(test_type_ids);
    HP_RUN(test_groups);
    HP_RUN(test_groups_order_and_sanitize);
    HP_RUN(test_groups_empty_value_elsewhere);
    HP_RUN(test_groups_trivial);
    HP_RUN(test_groups_many);
    HP_RUN(test_sample_only_keys);
    HP_RUN(test_spans);
    HP_RUN(test_series_labels);
    HP_RUN(test_go_labels_profile);
    return hp_test_done();
}
