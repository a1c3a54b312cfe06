/* Unit tests for hashmap: hp_u64map and hp_idtab. */
#include "hotpath/hashmap.h"
#include "test.h"

static void test_u64map_put_get(void)
{
    hp_u64map_t m;
    hp_u64map_init(&m, 0);
    uint64_t v = 77;
    CHECK(!hp_u64map_get(&m, 1, &v)); /* empty map, no storage yet */
    CHECK_EQ_INT(v, 77);
    hp_u64map_put(&m, 1, 100);
    hp_u64map_put(&m, 0, 200);
    hp_u64map_put(&m, 0xdeadbeefcafeULL, 300);
    CHECK_EQ_INT(m.n, 3);
    REQUIRE(hp_u64map_get(&m, 1, &v));
    CHECK_EQ_INT(v, 100);
    REQUIRE(hp_u64map_get(&m, 0, &v));
    CHECK_EQ_INT(v, 200);
    REQUIRE(hp_u64map_get(&m, 0xdeadbeefcafeULL, &v));
    CHECK_EQ_INT(v, 300);
    CHECK(!hp_u64map_get(&m, 2, &v));
    /* overwrite keeps one entry */
    hp_u64map_put(&m, 1, 101);
    CHECK_EQ_INT(m.n, 3);
    REQUIRE(hp_u64map_get(&m, 1, &v));
    CHECK_EQ_INT(v, 101);
    hp_u64map_fini(&m);
}

static void test_u64map_upsert(void)
{
    hp_u64map_t m;
    hp_u64map_init(&m, 4);
    bool found = true;
    uint64_t *p = hp_u64map_upsert(&m, 42, 5, &found);
    CHECK(!found);
    CHECK_EQ_INT(*p, 5);
    *p += 10;
    p = hp_u64map_upsert(&m, 42, 999, &found);
    CHECK(found);
    CHECK_EQ_INT(*p, 15); /* init ignored when present */
    uint64_t v = 0;
    REQUIRE(hp_u64map_get(&m, 42, &v));
    CHECK_EQ_INT(v, 15);
    CHECK_EQ_INT(m.n, 1);
    hp_u64map_fini(&m);
}

/* UINT64_MAX marks empty slots internally; as a key it must still work. */
static void test_u64map_max_key(void)
{
    hp_u64map_t m;
    hp_u64map_init(&m, 0);
    uint64_t v = 0;
    CHECK(!hp_u64map_get(&m, UINT64_MAX, &v));
    bool found = true;
    uint64_t *p = hp_u64map_upsert(&m, UINT64_MAX, 7, &found);
    CHECK(!found);
    CHECK_EQ_INT(*p, 7);
    REQUIRE(hp_u64map_get(&m, UINT64_MAX, &v));
    CHECK_EQ_INT(v, 7);
    hp_u64map_put(&m, UINT64_MAX, 8);
    REQUIRE(hp_u64map_get(&m, UINT64_MAX, &v));
    CHECK_EQ_INT(v, 8);
    p = hp_u64map_upsert(&m, UINT64_MAX, 1, &found);
    CHECK(found);
    CHECK_EQ_INT(*p, 8);
    /* other keys unaffected, and UINT64_MAX - 1 is an ordinary key */
    CHECK(!hp_u64map_get(&m, UINT64_MAX - 1, &v));
    hp_u64map_put(&m, UINT64_MAX - 1, 9);
    REQUIRE(hp_u64map_get(&m, UINT64_MAX - 1, &v));
    CHECK_EQ_INT(v, 9);
    REQUIRE(hp_u64map_get(&m, UINT64_MAX, &v));
    CHECK_EQ_INT(v, 8);

    /* iteration reports the max key exactly once */
    int seen_max = 0, seen_other = 0;
    uint64_t k;
    for (size_t it = 0; hp_u64map_next(&m, &it, &k, &v);) {
        if (k == UINT64_MAX) {
            seen_max++;
            CHECK_EQ_INT(v, 8);
        } else {
            seen_other++;
            CHECK(k == UINT64_MAX - 1);
        }
    }
    CHECK_EQ_INT(seen_max, 1);
    CHECK_EQ_INT(seen_other, 1);

    hp_u64map_clear(&m);
    CHECK(!hp_u64map_get(&m, UINT64_MAX, &v));
    CHECK(!hp_u64map_get(&m, UINT64_MAX - 1, &v));
    CHECK_EQ_INT(m.n, 0);
    hp_u64map_fini(&m);
}

/* A max key in a map that never allocated slots still iterates. */
static void test_u64map_max_key_only(void)
{
    hp_u64map_t m;
    hp_u64map_init(&m, 0);
    hp_u64map_put(&m, UINT64_MAX, 3);
    uint64_t k = 0, v = 0;
    int n = 0;
    for (size_t it = 0; hp_u64map_next(&m, &it, &k, &v);) {
        n++;
        CHECK(k == UINT64_MAX);
        CHECK_EQ_INT(v, 3);
    }
    CHECK_EQ_INT(n, 1);
    hp_u64map_fini(&m);
}

/* 1M keys (sequential with a stride, so probe chains are exercised) against
 * a reference array, then iteration visits each entry exactly once. */
static void test_u64map_growth_1m(void)
{
    enum { N = 1 << 20 };
    hp_u64map_t m;
    hp_u64map_init(&m, 0);
    uint64_t *ref = malloc(N * sizeof(uint64_t));
    REQUIRE(ref != NULL);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t key = i * 0x10000ULL + (i & 7); /* clustered low bits */
        ref[i] = i * 3 + 1;
        hp_u64map_put(&m, key, ref[i]);
    }
    CHECK_EQ_INT(m.n, N);
    CHECK(m.cap >= 2 * (size_t)N); /* load ≤ 0.5 */
    size_t missing = 0, wrong = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v;
        if (!hp_u64map_get(&m, i * 0x10000ULL + (i & 7), &v))
            missing++;
        else if (v != ref[i])
            wrong++;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(wrong, 0);
    /* absent keys */
    size_t phantom = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t v;
        if (hp_u64map_get(&m, i * 0x10000ULL + 8, &v))
            phantom++;
    }
    CHECK_EQ_INT(phantom, 0);

    unsigned char *seen = calloc(N, 1);
    REQUIRE(seen != NULL);
    size_t visits = 0, dup = 0, bad = 0;
    uint64_t k, v;
    for (size_t it = 0; hp_u64map_next(&m, &it, &k, &v);) {
        visits++;
        uint64_t i = k / 0x10000ULL;
        if (i >= N || k != i * 0x10000ULL + (i & 7) || v != ref[i]) {
            bad++;
            continue;
        }
        if (seen[i]++)
            dup++;
    }
    CHECK_EQ_INT(visits, N);
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(bad, 0);
    free(seen);
    free(ref);
    hp_u64map_fini(&m);
}

static void test_u64map_clear_reuse(void)
{
    hp_u64map_t m;
    hp_u64map_init(&m, 10);
    for (uint64_t i = 0; i < 100; i++)
        hp_u64map_put(&m, i, i);
    hp_u64map_clear(&m);
    CHECK_EQ_INT(m.n, 0);
    uint64_t v, k;
    CHECK(!hp_u64map_get(&m, 5, &v));
    size_t it = 0;
    CHECK(!hp_u64map_next(&m, &it, &k, &v));
    hp_u64map_put(&m, 5, 6);
    REQUIRE(hp_u64map_get(&m, 5, &v));
    CHECK_EQ_INT(v, 6);
    hp_u64map_fini(&m);
    hp_u64map_fini(&m); /* fini twice is safe */
}

/* ---- idtab ---- */

typedef struct strtab {
    const char **s;
    size_t n;
    hp_idtab_t t;
    uint64_t (*hash)(const char *);
} strtab_t;

static bool str_eq(const void *ctx, uint32_t id, const void *key)
{
    const strtab_t *st = ctx;
    return strcmp(st->s[id], (const char *)key) == 0;
}

/* Every string hashes alike: forces full collisions. */
static uint64_t const_hash(const char *s)
{
    (void)s;
    return 0x1234567800000042ULL;
}

static uint64_t fnv_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static uint32_t intern(strtab_t *st, const char *s)
{
    uint64_t h = st->hash(s);
    uint32_t id = hp_idtab_find(&st->t, h, str_eq, st, s);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)st->n;
    st->s[st->n++] = s;
    hp_idtab_insert(&st->t, h, id);
    return id;
}

static void check_dedup(uint64_t (*hash)(const char *), size_t count)
{
    strtab_t st;
    st.s = calloc(count, sizeof(char *));
    st.n = 0;
    st.hash = hash;
    hp_idtab_init(&st.t, 2); /* small: forces several growths */
    char **owned = calloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "str-%zu", i);
        owned[i] = strdup(buf);
        CHECK_EQ_INT(intern(&st, owned[i]), i);
    }
    CHECK_EQ_INT(st.t.n, count);
    /* same content from a different buffer: same ID, nothing added */
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "str-%zu", i);
        if (intern(&st, buf) != i)
            wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(st.n, count);
    CHECK_EQ_INT(st.t.n, count);
    CHECK(hp_idtab_find(&st.t, hash("absent"), str_eq, &st, "absent") == UINT32_MAX);
    for (size_t i = 0; i < count; i++)
        free(owned[i]);
    free(owned);
    free(st.s);
    hp_idtab_fini(&st.t);
}

static void test_idtab_dedup(void)
{
    check_dedup(fnv_hash, 5000);
}

static void test_idtab_forced_collisions(void)
{
    check_dedup(const_hash, 300);
}

/* Hashes that differ only in the high 32 bits collide in the table. */
static uint64_t high_bits_hash(const char *s)
{
    return fnv_hash(s) << 32;
}

static void test_idtab_high_bit_collisions(void)
{
    check_dedup(high_bits_hash, 500);
}

static void test_idtab_empty(void)
{
    hp_idtab_t t;
    memset(&t, 0, sizeof(t));
    strtab_t st = {NULL, 0, t, fnv_hash};
    CHECK(hp_idtab_find(&t, 1, str_eq, &st, "x") == UINT32_MAX);
    hp_idtab_insert(&t, 1, 0); /* insert into a zeroed table initializes it */
    const char *arr[1] = {"x"};
    st.s = arr;
    CHECK_EQ_INT(hp_idtab_find(&t, 1, str_eq, &st, "x"), 0);
    hp_idtab_fini(&t);
    hp_idtab_fini(&t);
}

int main(void)
{
    HP_RUN(test_u64map_put_get);
    HP_RUN(test_u64map_upsert);
    HP_RUN(test_u64map_max_key);
    HP_RUN(test_u64map_max_key_only);
    HP_RUN(test_u64map_growth_1m);
    HP_RUN(test_u64map_clear_reuse);
    HP_RUN(test_idtab_dedup);
    HP_RUN(test_idtab_forced_collisions);
    HP_RUN(test_idtab_high_bit_collisions);
    HP_RUN(test_idtab_empty);
    return hp_test_done();
}
