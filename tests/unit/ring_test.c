/* Unit tests for ring.h: placement, replicas, ownership, series tokens. */
#include <stdlib.h>

#include "hotpath/ring.h"
#include "test.h"

static const char *ids[] = {"tcp://127.0.0.1:9095", "tcp://127.0.0.1:9096", "tcp://127.0.0.1:9097"};

static void test_replicas_distinct_and_deterministic(void)
{
    hp_ring_t *a = hp_ring_new(ids, 3, 128), *b = hp_ring_new(ids, 3, 128);
    for (uint32_t k = 0; k < 100000; k += 7) {
        size_t ra[3], rb[3];
        size_t n = hp_ring_get(a, k * 2654435761u, 3, ra);
        REQUIRE(n == 3);
        CHECK(hp_ring_get(b, k * 2654435761u, 3, rb) == 3);
        CHECK(ra[0] != ra[1] && ra[1] != ra[2] && ra[0] != ra[2]);
        CHECK(ra[0] == rb[0] && ra[1] == rb[1] && ra[2] == rb[2]);
    }
    size_t one[3];
    CHECK_EQ_INT(hp_ring_get(a, 42, 5, one), 3); /* rf above the member count */
    hp_ring_free(a);
    hp_ring_free(b);
}

static void test_balance(void)
{
    hp_ring_t *r = hp_ring_new(ids, 3, 128);
    double sum = 0;
    size_t counts[3] = {0, 0, 0};
    for (size_t m = 0; m < 3; m++) {
        double o = hp_ring_ownership(r, m);
        sum += o;
        CHECK(o > 0.2 && o < 0.5);
    }
    CHECK(sum > 0.999 && sum < 1.001);
    for (uint32_t k = 0; k < 300000; k++) {
        size_t out[1];
        hp_ring_get(r, k * 2654435761u, 1, out);
        counts[out[0]]++;
    }
    for (size_t m = 0; m < 3; m++)
        CHECK(counts[m] > 60000 && counts[m] < 150000);
    hp_ring_free(r);
}

/* Stratified tokens: each of N instances "ingester-0".."ingester-N-1" owns
 * 1/N of the space within 10 percentage points. */
static void test_balance_stratified(void)
{
    static const size_t sizes[] = {3, 5, 10};
    for (size_t s = 0; s < HP_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        char names[10][32];
        const char *v[10];
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), "ingester-%zu", i);
            v[i] = names[i];
        }
        hp_ring_t *r = hp_ring_new(v, n, 128);
        double all[10], sum = 0, worst = 0, want = 1.0 / (double)n;
        hp_ring_ownership_all(r, all);
        for (size_t i = 0; i < n; i++) {
            double o = hp_ring_ownership(r, i);
            CHECK(o > all[i] - 1e-9 && o < all[i] + 1e-9);
            CHECK(o > want - 0.10 && o < want + 0.10);
            sum += o;
            worst = HP_MAX(worst, (o > want ? o - want : want - o) / want);
        }
        CHECK(sum > 0.999 && sum < 1.001);
        fprintf(stderr, "  N=%zu: largest ownership deviation from 1/N: %.1f%%\n", n, worst * 100);
        hp_ring_free(r);
    }
}

typedef struct walk_rec {
    size_t seen[8];
    size_t n;
    size_t stop_after;
} walk_rec_t;

static bool walk_visit(void *ctx, size_t member)
{
    walk_rec_t *w = ctx;
    if (w->n < HP_ARRAY_LEN(w->seen))
        w->seen[w->n] = member;
    w->n++;
    return w->n < w->stop_after;
}

/* The walker visits members in hp_ring_get's order, each once, and stops
 * when asked to. */
static void test_walk(void)
{
    const char *five[] = {"a", "b", "c", "d", "e"};
    hp_ring_t *r = hp_ring_new(five, 5, 64);
    for (uint32_t k = 0; k < 2000; k++) {
        uint32_t key = k * 2654435761u;
        size_t want[5];
        REQUIRE(hp_ring_get(r, key, 5, want) == 5);
        walk_rec_t w = {.stop_after = SIZE_MAX};
        hp_ring_walk(r, key, walk_visit, &w);
        REQUIRE(w.n == 5);
        for (size_t i = 0; i < 5; i++)
            CHECK(w.seen[i] == want[i]);
        walk_rec_t two = {.stop_after = 2};
        hp_ring_walk(r, key, walk_visit, &two);
        CHECK(two.n == 2 && two.seen[0] == want[0] && two.seen[1] == want[1]);
    }
    hp_ring_free(r);
    hp_ring_t *empty = hp_ring_new(NULL, 0, 16);
    walk_rec_t none = {.stop_after = SIZE_MAX};
    hp_ring_walk(empty, 7, walk_visit, &none);
    CHECK(none.n == 0);
    hp_ring_free(empty);
}

/* Adding a member moves only the keys it now owns. */
static void test_minimal_movement(void)
{
    const char *four[] = {ids[0], ids[1], ids[2], "tcp://127.0.0.1:9098"};
    hp_ring_t *a = hp_ring_new(ids, 3, 128), *b = hp_ring_new(four, 4, 128);
    size_t moved = 0, total = 100000;
    for (uint32_t k = 0; k < total; k++) {
        size_t x[1], y[1];
        hp_ring_get(a, k * 2654435761u, 1, x);
        hp_ring_get(b, k * 2654435761u, 1, y);
        if (x[0] != y[0]) {
            moved++;
            CHECK(y[0] == 3);
        }
    }
    CHECK(moved > total / 8 && moved < total / 2);
    hp_ring_free(a);
    hp_ring_free(b);
}

static void test_fnv_and_series_token(void)
{
    /* FNV-1 32 of "a": (0x811c9dc5 * 16777619) ^ 'a' */
    CHECK_EQ_INT(hp_fnv1_32(HP_FNV1_32_INIT, "a", 1), 0x050c5d7eu);
    hp_labels_t ls;
    hp_labels_init(&ls);
    hp_labels_add(&ls, HP_STR("service_name"), HP_STR("app"));
    hp_labels_add(&ls, HP_STR("env"), HP_STR("prod"));
    hp_labels_sort(&ls);
    const char *s = "tenant{env=\"prod\", service_name=\"app\"}";
    CHECK_EQ_INT(hp_ring_series_token(HP_STR("tenant"), &ls), hp_fnv1_32(HP_FNV1_32_INIT, s, strlen(s)));
    hp_labels_fini(&ls);
}

static void test_parse_members(void)
{
    char **m;
    size_t n = hp_ring_parse_members(" tcp://a:1, tcp://b:2 ,,tcp://c:3", &m);
    REQUIRE(n == 3);
    CHECK_EQ_STR(m[0], "tcp://a:1");
    CHECK_EQ_STR(m[1], "tcp://b:2");
    CHECK_EQ_STR(m[2], "tcp://c:3");
    hp_ring_members_free(m, n);
    CHECK_EQ_INT(hp_ring_parse_members("", &m), 0);
    hp_ring_members_free(m, 0);
}

int main(void)
{
    HP_RUN(test_replicas_distinct_and_deterministic);
    HP_RUN(test_balance);
    HP_RUN(test_balance_stratified);
    HP_RUN(test_walk);
    HP_RUN(test_minimal_movement);
    HP_RUN(test_fnv_and_series_token);
    HP_RUN(test_parse_members);
    return hp_test_done();
}
