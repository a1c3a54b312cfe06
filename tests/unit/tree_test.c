/* Unit tests for tree: call trees, their serialization, and flame graphs. */
#include "hotpath/buf.h"
#include "hotpath/tree.h"
#include "hotpath/textprof.h"
#include "hotpath/pprof.h"
#include "querier/v1/querier.pb-c.h"
#include "test.h"
#include "test_tree.h"

/* ---- helpers ---- */

typedef struct dump {
    char **lines;
    size_t n, cap;
} dump_t;

static void dump_visit(void *ctx, const hp_str_t *frames, size_t n, int64_t self)
{
    dump_t *d = ctx;
    hp_buf_t b = HP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i)
            hp_buf_putc(&b, ';');
        hp_buf_append(&b, frames[i].p, frames[i].n);
    }
    hp_buf_printf(&b, " %lld", (long long)self);
    HP_GROW(d->lines, d->cap, d->n + 1);
    d->lines[d->n++] = hp_xstrdup(hp_buf_cstr(&b));
    hp_buf_fini(&b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every self path of t as sorted "a;b 10" lines joined by '\n'. The
 * result is a static buffer per slot (two slots, for comparisons). */
static const char *dump(const hp_tree_t *t)
{
    static hp_buf_t out[2];
    static int k;
    hp_buf_t *o = &out[k++ & 1];
    dump_t d = {NULL, 0, 0};
    hp_tree_walk(t, dump_visit, &d);
    if (d.n)
        qsort(d.lines, d.n, sizeof(char *), cmp_str);
    hp_buf_reset(o);
    for (size_t i = 0; i < d.n; i++) {
        hp_buf_puts(o, d.lines[i]);
        hp_buf_putc(o, '\n');
        free(d.lines[i]);
    }
    free(d.lines);
    return hp_buf_cstr(o);
}

/* A small deterministic PRNG. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A random stack over a small alphabet, so prefixes are shared. */
static void random_stack(char *buf, size_t cap)
{
    static const char *names[] = {"main", "run", "work", "io", "gc", "sort", "hash", "x"};
    size_t depth = 1 + rnd() % 8, o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < depth; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ";" : "", names[rnd() % 8]);
}

/* ---- trees ---- */

static void test_add_and_totals(void)
{
    hp_tree_t *t = hp_tree_new();
    CHECK_EQ_INT(hp_tree_total(t), 0);
    CHECK_EQ_INT(hp_tree_size(t), 0);
    CHECK_EQ_STR(dump(t), "");
    hp_test_add_stack(t, "a;b", 10);
    hp_test_add_stack(t, "a;c", 5);
    hp_test_add_stack(t, "d", 3);
    hp_test_add_stack(t, "a;b", 2);
    CHECK_EQ_INT(hp_tree_total(t), 20);
    CHECK_EQ_INT(hp_tree_size(t), 4);
    CHECK_EQ_STR(dump(t), "a;b 12\na;c 5\nd 3\n");

    /* the node API reaches the same nodes */
    uint32_t a = hp_tree_child(t, HP_TREE_ROOT, HP_STR("a"));
    uint32_t b = hp_tree_child(t, a, HP_STR("b"));
    CHECK_EQ_INT(hp_tree_child(t, HP_TREE_ROOT, HP_STR("a")), a);
    CHECK(a != b);
    hp_tree_add(t, b, 1);
    hp_tree_add(t, a, 4);
    CHECK_EQ_INT(hp_tree_size(t), 4);
    CHECK_EQ_STR(dump(t), "a 4\na;b 13\na;c 5\nd 3\n");

    /* the same name under another parent is another node */
    hp_test_add_stack(t, "b;a", 1);
    CHECK_EQ_INT(hp_tree_size(t), 6);
    CHECK_EQ_INT(hp_tree_total(t), 26);

    /* names are copied */
    char name[] = "tmp";
    hp_str_t f = hp_str_c(name);
    hp_tree_add_stack(t, &f, 1, 7);
    name[0] = 'X';
    CHECK_EQ_STR(dump(t), "a 4\na;b 13\na;c 5\nb;a 1\nd 3\ntmp 7\n");

    /* an empty stack adds to the root, which walk does not report */
    hp_test_add_stack(t, "", 100);
    CHECK_EQ_INT(hp_tree_total(t), 133);
    CHECK_EQ_STR(dump(t), "a 4\na;b 13\na;c 5\nb;a 1\nd 3\ntmp 7\n");
    hp_tree_free(t);
    hp_tree_free(NULL);
}

static void test_walk_paths(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a", 1);
    hp_test_add_stack(t, "a;b;c", 2);
    hp_test_add_stack(t, "a;b;d", 3);
    hp_test_add_stack(t, "e;b;c", 4);
    hp_test_add_stack(t, "z", 0); /* zero self: not visited */
    CHECK_EQ_STR(dump(t), "a 1\na;b;c 2\na;b;d 3\ne;b;c 4\n");
    hp_tree_free(t);
}

static void test_merge(void)
{
    hp_tree_t *all = hp_tree_new(), *x = hp_tree_new(), *y = hp_tree_new();
    char buf[256];
    for (int i = 0; i < 3000; i++) {
        random_stack(buf, sizeof(buf));
        int64_t v = (int64_t)(rnd() % 100);
        hp_test_add_stack(all, buf, v);
        hp_test_add_stack(i % 3 ? x : y, buf, v);
    }
    hp_test_add_stack(all, "", 5);
    hp_test_add_stack(y, "", 5);
    hp_tree_merge(x, y);
    CHECK_EQ_INT(hp_tree_total(x), hp_tree_total(all));
    CHECK_EQ_INT(hp_tree_size(x), hp_tree_size(all));
    char *expect = hp_xstrdup(dump(all));
    CHECK_EQ_STR(dump(x), expect);

    /* merging into an empty tree copies; merging an empty tree is a no-op */
    hp_tree_t *e = hp_tree_new(), *e2 = hp_tree_new();
    hp_tree_merge(e, all);
    CHECK_EQ_STR(dump(e), expect);
    hp_tree_merge(e, e2);
    CHECK_EQ_STR(dump(e), expect);
    CHECK_EQ_INT(hp_tree_total(e), hp_tree_total(all));
    free(expect);
    hp_tree_free(all);
    hp_tree_free(x);
    hp_tree_free(y);
    hp_tree_free(e);
    hp_tree_free(e2);
}

static int decode_into(hp_tree_t *t, const hp_buf_t *b, size_t max_nodes, hp_err_t *err)
{
    hp_err_clear(err);
    return hp_tree_decode_merge(t, b->data, b->len, max_nodes, err);
}

static void test_encode_decode_roundtrip(void)
{
    hp_tree_t *t = hp_tree_new();
    char buf[256];
    for (int i = 0; i < 2000; i++) {
        random_stack(buf, sizeof(buf));
        hp_test_add_stack(t, buf, (int64_t)(rnd() % 50) - 5); /* some negative values */
    }
    hp_test_add_stack(t, "", 9);
    hp_buf_t enc = HP_BUF_INIT;
    hp_tree_encode(t, &enc);
    hp_err_t err;
    hp_tree_t *d = hp_tree_new();
    REQUIRE(decode_into(d, &enc, 0, &err) == 0);
    char *expect = hp_xstrdup(dump(t));
    CHECK_EQ_STR(dump(d), expect);
    CHECK_EQ_INT(hp_tree_total(d), hp_tree_total(t));
    CHECK_EQ_INT(hp_tree_size(d), hp_tree_size(t));
    /* re-encoding the decoded tree gives a tree equal again */
    hp_buf_t enc2 = HP_BUF_INIT;
    hp_tree_encode(d, &enc2);
    hp_tree_t *d2 = hp_tree_new();
    REQUIRE(decode_into(d2, &enc2, 0, &err) == 0);
    CHECK_EQ_STR(dump(d2), expect);

    /* decoding into a non-empty tree merges */
    hp_tree_t *u = hp_tree_new(), *m = hp_tree_new();
    hp_test_add_stack(u, "main;other", 11);
    hp_test_add_stack(u, "new;path", 4);
    hp_test_add_stack(m, "main;other", 11);
    hp_test_add_stack(m, "new;path", 4);
    hp_tree_merge(m, t);
    REQUIRE(decode_into(u, &enc, 0, &err) == 0);
    CHECK_EQ_STR(dump(u), dump(m));
    CHECK_EQ_INT(hp_tree_total(u), hp_tree_total(m));
    CHECK_EQ_INT(hp_tree_size(u), hp_tree_size(m));

    /* an empty tree */
    hp_tree_t *e = hp_tree_new(), *e2 = hp_tree_new();
    hp_buf_reset(&enc);
    hp_tree_encode(e, &enc);
    REQUIRE(decode_into(e2, &enc, 0, &err) == 0);
    CHECK_EQ_INT(hp_tree_size(e2), 0);
    CHECK_EQ_INT(hp_tree_total(e2), 0);
    free(expect);
    hp_buf_fini(&enc);
    hp_buf_fini(&enc2);
    hp_tree_free(t);
    hp_tree_free(d);
    hp_tree_free(d2);
    hp_tree_free(u);
    hp_tree_free(m);
    hp_tree_free(e);
    hp_tree_free(e2);
}

/* Encode and decode of deep trees, up to the decoder's 4096 limit. */
static void test_deep(void)
{
    enum { DEEP = 4000, TOO_DEEP = 5000 };
    hp_str_t *frames = malloc(TOO_DEEP * sizeof(hp_str_t));
    for (int i = 0; i < TOO_DEEP; i++)
        frames[i] = (i % 2) ? HP_STR("odd") : HP_STR("even");
    hp_tree_t *t = hp_tree_new();
    hp_tree_add_stack(t, frames, DEEP, 1);
    hp_buf_t enc = HP_BUF_INIT;
    hp_tree_encode(t, &enc);
    hp_tree_t *d = hp_tree_new();
    hp_err_t err;
    REQUIRE(decode_into(d, &enc, 0, &err) == 0);
    CHECK_EQ_INT(hp_tree_size(d), DEEP);
    CHECK_EQ_INT(hp_tree_total(d), 1);

    hp_tree_t *t2 = hp_tree_new();
    hp_tree_add_stack(t2, frames, TOO_DEEP, 1);
    hp_buf_reset(&enc);
    hp_tree_encode(t2, &enc);
    hp_tree_t *d2 = hp_tree_new();
    CHECK_EQ_INT(decode_into(d2, &enc, 0, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "deeper than 4096") != NULL);
    free(frames);
    hp_buf_fini(&enc);
    hp_tree_free(t);
    hp_tree_free(d);
    hp_tree_free(t2);
    hp_tree_free(d2);
}

static int decode_bytes(const uint8_t *p, size_t n, size_t max_nodes, hp_err_t *err)
{
    hp_tree_t *t = hp_tree_new();
    hp_err_clear(err);
    int rc = hp_tree_decode_merge(t, p, n, max_nodes, err);
    hp_tree_free(t);
    return rc;
}

static void test_decode_malformed(void)
{
    hp_err_t err;
    /* names ["a","b"]; 2 nodes; root self 0; 1 root: a (1 child) → b self 10 */
    const uint8_t good[] = {2, 1, 'a', 1, 'b', 2, 0, 1, 0, 0, 1, 1, 20, 0};
    REQUIRE(decode_bytes(good, sizeof(good), 0, &err) == 0);
    {
        hp_tree_t *t = hp_tree_new();
        REQUIRE(hp_tree_decode_merge(t, good, sizeof(good), 0, &err) == 0);
        CHECK_EQ_STR(dump(t), "a;b 10\n");
        hp_tree_free(t);
    }

    /* every truncation fails */
    for (size_t n = 0; n < sizeof(good); n++) {
        if (decode_bytes(good, n, 0, &err) != HP_EINVAL) {
            fprintf(stderr, "  prefix of %zu bytes accepted\n", n);
            hp_t_cur_failed = 1;
        }
    }

    /* name index out of range */
    uint8_t b[32];
    memcpy(b, good, sizeof(good));
    b[11] = 2;
    CHECK_EQ_INT(decode_bytes(b, sizeof(good), 0, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "name index out of range") != NULL);

    /* trailing bytes */
    memcpy(b, good, sizeof(good));
    b[sizeof(good)] = 0;
    CHECK_EQ_INT(decode_bytes(b, sizeof(good) + 1, 0, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "trailing bytes") != NULL);

    /* more nodes than the child counts allow: b has no parent left */
    memcpy(b, good, sizeof(good));
    b[10] = 0; /* a has no children */
    CHECK_EQ_INT(decode_bytes(b, sizeof(good), 0, &err), HP_EINVAL);

    /* fewer nodes than the child counts promise */
    memcpy(b, good, sizeof(good));
    b[7] = 3; /* three roots, but only a (and its child) follow */
    CHECK_EQ_INT(decode_bytes(b, sizeof(good), 0, &err), HP_EINVAL);
    memcpy(b, good, sizeof(good));
    b[13] = 1; /* b claims a child that is not there */
    CHECK_EQ_INT(decode_bytes(b, sizeof(good), 0, &err), HP_EINVAL);

    /* name count larger than the input */
    const uint8_t many_names[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'a'};
    CHECK_EQ_INT(decode_bytes(many_names, sizeof(many_names), 0, &err), HP_EINVAL);
    /* name length past the end */
    const uint8_t long_name[] = {1, 100, 'a', 'b'};
    CHECK_EQ_INT(decode_bytes(long_name, sizeof(long_name), 0, &err), HP_EINVAL);
    /* node count larger than the input */
    const uint8_t many_nodes[] = {1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 1, 0, 0, 0};
    CHECK(decode_bytes(many_nodes, sizeof(many_nodes), 0, &err) < 0);
    /* an overlong varint */
    const uint8_t overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_EQ_INT(decode_bytes(overlong, sizeof(overlong), 0, &err), HP_EINVAL);
    /* plain garbage */
    const char *garbage = "this is not a tree at all";
    CHECK(decode_bytes((const uint8_t *)garbage, strlen(garbage), 0, &err) < 0);
    CHECK(err.msg[0] != '\0');
}

static void test_decode_max_nodes(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b", 1);
    hp_test_add_stack(t, "a;c", 1);
    hp_test_add_stack(t, "d", 1);
    hp_buf_t enc = HP_BUF_INIT;
    hp_tree_encode(t, &enc);
    hp_err_t err;
    /* 4 nodes: a limit of 4 fits, 3 does not */
    hp_tree_t *d = hp_tree_new();
    CHECK_EQ_INT(decode_into(d, &enc, 4, &err), 0);
    CHECK_EQ_INT(hp_tree_size(d), 4);
    hp_tree_t *d2 = hp_tree_new();
    int rc = decode_into(d2, &enc, 3, &err);
    CHECK(rc < 0);
    CHECK(strstr(err.msg, "tree too large") != NULL);
    CHECK_EQ_INT(hp_tree_size(d2), 0); /* refused before anything was added */
    hp_buf_fini(&enc);
    hp_tree_free(t);
    hp_tree_free(d);
    hp_tree_free(d2);
}

/* Self values at the int64 limits must not be undefined behaviour (the
 * sanitized build aborts on signed overflow). */
static void test_decode_huge_values(void)
{
    /* names ["a"]; 2 nodes; root self INT64_MAX; 2 roots, both "a", each
     * self INT64_MAX (zigzag 0xfffffffffffffffe) */
    const uint8_t zz_max[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint8_t b[64];
    size_t n = 0;
    b[n++] = 1, b[n++] = 1, b[n++] = 'a';
    b[n++] = 2;
    memcpy(b + n, zz_max, sizeof(zz_max)), n += sizeof(zz_max);
    b[n++] = 2;
    for (int i = 0; i < 2; i++) {
        b[n++] = 0;
        memcpy(b + n, zz_max, sizeof(zz_max)), n += sizeof(zz_max);
        b[n++] = 0;
    }
    hp_tree_t *t = hp_tree_new();
    hp_err_t err;
    int rc = hp_tree_decode_merge(t, b, n, 0, &err);
    CHECK(rc == 0 || rc == HP_EINVAL);
    rc = hp_tree_decode_merge(t, b, n, 0, &err); /* and again, into the sums */
    CHECK(rc == 0 || rc == HP_EINVAL);
    (void)hp_tree_total(t);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    hp_flamegraph_fini(&fg);
    hp_tree_t *m = hp_tree_new();
    hp_tree_merge(m, t);
    hp_tree_merge(m, t);
    hp_tree_free(m);
    hp_tree_free(t);
}

/* Random bytes and mutations of a valid encoding: errors, never crashes. */
static void test_decode_fuzz(void)
{
    hp_tree_t *src = hp_tree_new();
    char buf[256];
    for (int i = 0; i < 50; i++) {
        random_stack(buf, sizeof(buf));
        hp_test_add_stack(src, buf, (int64_t)(rnd() % 1000));
    }
    hp_buf_t enc = HP_BUF_INIT;
    hp_tree_encode(src, &enc);
    uint8_t *m = malloc(enc.len + 8);
    hp_err_t err;
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = enc.len;
        memcpy(m, enc.data, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++)
            m[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
        if (rnd() % 4 == 0)
            n = rnd() % n;
        hp_tree_t *t = hp_tree_new();
        hp_err_clear(&err);
        int rc = hp_tree_decode_merge(t, m, n, 1000, &err);
        if (rc == 0) {
            accepted++;
            hp_flamegraph_t fg;
            hp_flamegraph_build(t, 10, &fg);
            hp_flamegraph_fini(&fg);
        } else {
            CHECK(err.msg[0] != '\0');
        }
        hp_tree_free(t);
    }
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd() % 48;
        for (size_t k = 0; k < n; k++)
            m[k] = (uint8_t)(k < 4 ? rnd() % 4 : rnd());
        hp_tree_t *t = hp_tree_new();
        if (hp_tree_decode_merge(t, m, n, 1000, &err) == 0)
            CHECK(hp_tree_size(t) <= 1000);
        hp_tree_free(t);
    }
    fprintf(stderr, "  (%d of 20000 mutations decoded)\n", accepted);
    free(m);
    hp_buf_fini(&enc);
    hp_tree_free(src);
}

/* ---- flame graphs ---- */

static const char *fg_name(const hp_flamegraph_t *fg, int64_t i)
{
    static char pool[8][128];
    static int k;
    char *b = pool[k++ & 7];
    if (i < 0 || (size_t)i >= fg->n_names)
        return "(out of range)";
    snprintf(b, 128, "%.*s", (int)fg->names[i].n, fg->names[i].p);
    return b;
}

/* Level l as "x,total,self,name;…" with names resolved. */
static const char *fg_level(const hp_flamegraph_t *fg, size_t l)
{
    static hp_buf_t out[4];
    static int k;
    hp_buf_t *o = &out[k++ & 3];
    hp_buf_reset(o);
    if (l >= fg->n_levels)
        return "(no level)";
    for (size_t i = 0; i + 3 < fg->level_len[l]; i += 4) {
        const int64_t *v = fg->levels[l] + i;
        hp_buf_printf(o, "%s%lld,%lld,%lld,%s", i ? ";" : "", (long long)v[0], (long long)v[1],
                      (long long)v[2], fg_name(fg, v[3]));
    }
    return hp_buf_cstr(o);
}

/* Checks the invariants every flame graph must hold: self sums to total,
 * level 0 is the root, each node lies inside a node of the level above,
 * names are in range. */
static void check_invariants(const hp_flamegraph_t *fg)
{
    int64_t self_sum = 0, max_self = 0;
    REQUIRE(fg->n_levels >= 1);
    REQUIRE(fg->level_len[0] == 4);
    CHECK_EQ_INT(fg->levels[0][0], 0);
    CHECK_EQ_INT(fg->levels[0][1], fg->total);
    CHECK_EQ_INT(fg->levels[0][3], 0);
    CHECK_EQ_STR(fg_name(fg, 0), "total");
    for (size_t l = 0; l < fg->n_levels; l++) {
        CHECK_EQ_INT(fg->level_len[l] % 4, 0);
        int64_t x = 0;
        for (size_t i = 0; i < fg->level_len[l]; i += 4) {
            const int64_t *v = fg->levels[l] + i;
            CHECK(v[0] >= 0);
            CHECK(v[3] >= 0 && (size_t)v[3] < fg->n_names);
            x += v[0];
            self_sum += v[2];
            if (v[2] > max_self)
                max_self = v[2];
            if (l > 0) {
                /* the parent is the last node above starting at or before
                 * x; a node's self comes first, then its children */
                const int64_t *par = NULL;
                int64_t px = 0, par_x = 0;
                for (size_t j = 0; j < fg->level_len[l - 1]; j += 4) {
                    const int64_t *u = fg->levels[l - 1] + j;
                    px += u[0];
                    if (px > x)
                        break;
                    par = u;
                    par_x = px;
                    px += u[1];
                }
                CHECK(par != NULL && x >= par_x + par[2] && x + v[1] <= par_x + par[1]);
            }
            x += v[1];
        }
    }
    CHECK_EQ_INT(self_sum, fg->total);
    CHECK_EQ_INT(max_self, fg->max_self);
}

static void test_flamegraph_basic(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "d", 3);
    hp_test_add_stack(t, "a;c", 5);
    hp_test_add_stack(t, "a;b", 10);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    CHECK_EQ_STR(fg_name(&fg, 0), "total");
    CHECK_EQ_INT(fg.n_names, 5);
    CHECK_EQ_INT(fg.total, 18);
    CHECK_EQ_INT(fg.max_self, 10);
    REQUIRE(fg.n_levels == 3);
    CHECK_EQ_STR(fg_level(&fg, 0), "0,18,0,total");
    CHECK_EQ_STR(fg_level(&fg, 1), "0,15,0,a;0,3,3,d");
    CHECK_EQ_STR(fg_level(&fg, 2), "0,10,10,b;0,5,5,c");
    /* raw level 0 */
    REQUIRE(fg.level_len[0] == 4);
    CHECK_EQ_INT(fg.levels[0][0], 0);
    CHECK_EQ_INT(fg.levels[0][1], 18);
    CHECK_EQ_INT(fg.levels[0][2], 0);
    CHECK_EQ_INT(fg.levels[0][3], 0);
    /* names are deduplicated */
    for (size_t i = 0; i < fg.n_names; i++)
        for (size_t j = i + 1; j < fg.n_names; j++)
            CHECK(!hp_str_eq(fg.names[i], fg.names[j]));
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_flamegraph_fini(&fg); /* twice is safe */
    hp_tree_free(t);
}

/* Offsets with gaps: a node's self sits before its children (Pyroscope's
 * layout), and x is stored as the gap from the previous node's end. */
static void test_flamegraph_offsets(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a", 2);
    hp_test_add_stack(t, "a;b", 10);
    hp_test_add_stack(t, "d", 3);
    hp_test_add_stack(t, "g;h", 4);
    hp_test_add_stack(t, "g;h;i", 1);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    CHECK_EQ_INT(fg.total, 20);
    REQUIRE(fg.n_levels == 4);
    CHECK_EQ_STR(fg_level(&fg, 0), "0,20,0,total");
    /* a [0,12) d [12,15) g [15,20) */
    CHECK_EQ_STR(fg_level(&fg, 1), "0,12,2,a;0,3,3,d;0,5,0,g");
    /* b at 0+2 (after a's self) = 2: stored 2; h at 15: stored 15-(2+10) = 3 */
    CHECK_EQ_STR(fg_level(&fg, 2), "2,10,10,b;3,5,4,h");
    /* i at 15+4 = 19 */
    CHECK_EQ_STR(fg_level(&fg, 3), "19,1,1,i");
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

/* Empty stacks (root self) are not drawn, as in Pyroscope; the graph
 * stays consistent. */
static void test_flamegraph_root_self(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a", 5);
    hp_test_add_stack(t, "", 7);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    CHECK_EQ_INT(fg.total, 5);
    CHECK_EQ_STR(fg_level(&fg, 0), "0,5,0,total");
    CHECK_EQ_STR(fg_level(&fg, 1), "0,5,5,a");
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

static void test_flamegraph_empty(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 10, &fg);
    CHECK_EQ_INT(fg.total, 0);
    CHECK_EQ_INT(fg.max_self, 0);
    CHECK_EQ_INT(fg.n_names, 1);
    REQUIRE(fg.n_levels == 1);
    CHECK_EQ_STR(fg_level(&fg, 0), "0,0,0,total");
    hp_buf_t out = HP_BUF_INIT;
    hp_flamegraph_write_flamebearer(&fg, &out);
    CHECK_EQ_STR(hp_buf_cstr(&out),
                 "{\"names\":[\"total\"],\"levels\":[[0,0,0,0]],\"numTicks\":0,\"maxSelf\":0}");
    hp_buf_fini(&out);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

static void test_flamegraph_max_nodes(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b", 10);
    hp_test_add_stack(t, "a;c", 5);
    hp_test_add_stack(t, "d", 3);
    hp_flamegraph_t fg;
    /* keep the 2 largest (a 15, b 10): d and c fold into "other" */
    hp_flamegraph_build(t, 2, &fg);
    CHECK_EQ_INT(fg.total, 18);
    REQUIRE(fg.n_levels == 3);
    CHECK_EQ_STR(fg_level(&fg, 1), "0,15,0,a;0,3,3,other");
    CHECK_EQ_STR(fg_level(&fg, 2), "0,10,10,b;0,5,5,other");
    CHECK_EQ_INT(fg.max_self, 10);
    int others = 0;
    for (size_t i = 0; i < fg.n_names; i++)
        others += hp_str_eq_c(fg.names[i], "other");
    CHECK_EQ_INT(others, 1); /* one name shared by every "other" node */
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);

    /* a limit at or above the node count keeps everything */
    hp_flamegraph_build(t, 4, &fg);
    CHECK_EQ_STR(fg_level(&fg, 1), "0,15,0,a;0,3,3,d");
    hp_flamegraph_fini(&fg);
    hp_flamegraph_build(t, -1, &fg);
    CHECK_EQ_STR(fg_level(&fg, 2), "0,10,10,b;0,5,5,c");
    hp_flamegraph_fini(&fg);

    /* max_nodes = 1: only a survives; "other" collects d at the root and
     * b + c under a */
    hp_flamegraph_build(t, 1, &fg);
    CHECK_EQ_STR(fg_level(&fg, 1), "0,15,0,a;0,3,3,other");
    CHECK_EQ_STR(fg_level(&fg, 2), "0,15,15,other");
    CHECK_EQ_INT(fg.max_self, 15);
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

/* Several small siblings fold into one "other" per parent, after the kept
 * children and after the parent's own self. */
static void test_flamegraph_fold_many(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "p", 4);
    hp_test_add_stack(t, "p;big", 100);
    hp_test_add_stack(t, "p;s1", 1);
    hp_test_add_stack(t, "p;s2", 2);
    hp_test_add_stack(t, "p;s3;deep", 3);
    hp_test_add_stack(t, "q", 50);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 3, &fg); /* totals: p 110, big 100, q 50 kept */
    CHECK_EQ_INT(fg.total, 160);
    REQUIRE(fg.n_levels == 3);
    CHECK_EQ_STR(fg_level(&fg, 1), "0,110,4,p;0,50,50,q");
    /* big at 4; other (1+2+3) at 104 */
    CHECK_EQ_STR(fg_level(&fg, 2), "4,100,100,big;0,6,6,other");
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

/* A real frame called "other" is folded too, even when it is large. */
static void test_flamegraph_real_other(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "other", 50);
    hp_test_add_stack(t, "other;x", 5);
    hp_test_add_stack(t, "a", 10);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    CHECK_EQ_INT(fg.total, 65);
    REQUIRE(fg.n_levels == 2);
    CHECK_EQ_STR(fg_level(&fg, 1), "0,10,10,a;0,55,55,other");
    CHECK_EQ_INT(fg.max_self, 55);
    check_invariants(&fg);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

/* Random trees under random limits keep the invariants. */
static void test_flamegraph_random(void)
{
    char buf[256];
    for (int round = 0; round < 30; round++) {
        hp_tree_t *t = hp_tree_new();
        int n = 1 + (int)(rnd() % 400);
        for (int i = 0; i < n; i++) {
            random_stack(buf, sizeof(buf));
            hp_test_add_stack(t, buf, 1 + (int64_t)(rnd() % 100));
        }
        int64_t limits[] = {0, 1, 2, 5, 17, 100, 100000};
        for (size_t k = 0; k < HP_ARRAY_LEN(limits); k++) {
            hp_flamegraph_t fg;
            hp_flamegraph_build(t, limits[k], &fg);
            CHECK_EQ_INT(fg.total, hp_tree_total(t));
            check_invariants(&fg);
            if (hp_t_cur_failed) {
                hp_flamegraph_fini(&fg);
                break;
            }
            hp_flamegraph_fini(&fg);
        }
        hp_tree_free(t);
    }
}

static void test_flamebearer_json(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b", 10);
    hp_test_add_stack(t, "a;c", 5);
    hp_test_add_stack(t, "d", 3);
    hp_test_add_stack(t, "q\"uote", 1);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    hp_buf_t out = HP_BUF_INIT;
    hp_flamegraph_write_flamebearer(&fg, &out);
    /* names numbered as Pyroscope's walk meets them: rightmost child first */
    CHECK_EQ_STR(hp_buf_cstr(&out), "{\"names\":[\"total\",\"q\\\"uote\",\"d\",\"a\",\"c\",\"b\"],"
                                    "\"levels\":[[0,19,0,0],[0,15,0,3,0,3,3,2,0,1,1,1],[0,10,10,5,0,5,5,4]],"
                                    "\"numTicks\":19,\"maxSelf\":10}");
    hp_buf_fini(&out);
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

static void check_proto(const hp_flamegraph_t *fg, const uint8_t *p, size_t n)
{
    Querier__V1__FlameGraph *m = querier__v1__flame_graph__unpack(NULL, n, p);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->n_names, fg->n_names);
    for (size_t i = 0; i < m->n_names && i < fg->n_names; i++)
        CHECK(hp_str_eq_c(fg->names[i], m->names[i]));
    CHECK_EQ_INT(m->n_levels, fg->n_levels);
    for (size_t l = 0; l < m->n_levels && l < fg->n_levels; l++) {
        CHECK_EQ_INT(m->levels[l]->n_values, fg->level_len[l]);
        for (size_t i = 0; i < m->levels[l]->n_values && i < fg->level_len[l]; i++)
            CHECK_EQ_INT(m->levels[l]->values[i], fg->levels[l][i]);
    }
    CHECK_EQ_INT(m->total, fg->total);
    CHECK_EQ_INT(m->max_self, fg->max_self);
    querier__v1__flame_graph__free_unpacked(m, NULL);
}

static void test_flamegraph_proto(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b", 10);
    hp_test_add_stack(t, "a;c", 5);
    hp_test_add_stack(t, "d", 3);
    hp_test_add_stack(t, "a", 1);
    hp_test_add_stack(t, "e;f;g", 300);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 0, &fg);
    hp_buf_t out = HP_BUF_INIT;
    hp_flamegraph_encode_proto(&fg, 0, &out);
    check_proto(&fg, out.data, out.len);

    Querier__V1__FlameGraph *m = querier__v1__flame_graph__unpack(NULL, out.len, out.data);
    REQUIRE(m != NULL);
    CHECK_EQ_STR(m->names[0], "total");
    CHECK_EQ_INT(m->total, 319);
    CHECK_EQ_INT(m->max_self, 300);
    REQUIRE(m->n_levels == 4);
    REQUIRE(m->levels[0]->n_values == 4);
    CHECK_EQ_INT(m->levels[0]->values[1], 319);
    querier__v1__flame_graph__free_unpacked(m, NULL);

    /* as field 1 of SelectMergeStacktracesResponse */
    hp_buf_reset(&out);
    hp_flamegraph_encode_proto(&fg, 1, &out);
    Querier__V1__SelectMergeStacktracesResponse *r =
        querier__v1__select_merge_stacktraces_response__unpack(NULL, out.len, out.data);
    REQUIRE(r != NULL);
    REQUIRE(r->flamegraph != NULL);
    CHECK_EQ_INT(r->flamegraph->total, 319);
    CHECK_EQ_INT(r->flamegraph->n_levels, 4);
    querier__v1__select_merge_stacktraces_response__free_unpacked(r, NULL);
    hp_flamegraph_fini(&fg);

    /* an empty graph and a truncated one */
    hp_tree_t *e = hp_tree_new();
    hp_flamegraph_build(e, 0, &fg);
    hp_buf_reset(&out);
    hp_flamegraph_encode_proto(&fg, 0, &out);
    check_proto(&fg, out.data, out.len);
    hp_flamegraph_fini(&fg);
    hp_flamegraph_build(t, 2, &fg);
    hp_buf_reset(&out);
    hp_flamegraph_encode_proto(&fg, 0, &out);
    check_proto(&fg, out.data, out.len);
    hp_flamegraph_fini(&fg);
    hp_buf_fini(&out);
    hp_tree_free(e);
    hp_tree_free(t);
}


/* The diff flame graph: the union of both trees, 7 values per node, x
 * offsets delta-encoded per side, totals and ticks of each side. */
static void test_flamegraph_diff(void)
{
    hp_tree_t *l = hp_tree_new(), *r = hp_tree_new();
    hp_test_add_stack(l, "main;a", 3);
    hp_test_add_stack(l, "main;b", 2);
    hp_test_add_stack(r, "main;b", 4);
    hp_test_add_stack(r, "main;c", 1);
    hp_test_add_stack(r, "main", 1);
    hp_flamegraph_diff_t d;
    hp_flamegraph_diff_build(l, r, 0, &d);
    CHECK_EQ_INT(d.left_ticks, 5);
    CHECK_EQ_INT(d.right_ticks, 6);
    CHECK_EQ_INT(d.total, 11);
    CHECK_EQ_INT(d.max_self, 4);
    REQUIRE(d.n_levels == 3);
    /* level 0: total; level 1: main; level 2: a, b, c (by name) */
    CHECK_EQ_INT(d.level_len[0], 7);
    int64_t *v0 = d.levels[0];
    CHECK(v0[0] == 0 && v0[1] == 5 && v0[2] == 0 && v0[3] == 0 && v0[4] == 6 && v0[5] == 0 && v0[6] == 0);
    int64_t *v1 = d.levels[1];
    CHECK(v1[1] == 5 && v1[2] == 0 && v1[4] == 6 && v1[5] == 1);
    CHECK(hp_str_eq_c(d.names[v1[6]], "main"));
    REQUIRE(d.level_len[2] == 21);
    int64_t *v2 = d.levels[2];
    const char *want[] = {"a", "b", "c"};
    int64_t lt[] = {3, 2, 0}, rt[] = {0, 4, 1};
    int64_t lx = 0, rx = 1; /* absolute: right starts after main's self of 1 */
    for (int i = 0; i < 3; i++) {
        int64_t *n = v2 + 7 * i;
        CHECK(hp_str_eq_c(d.names[n[6]], want[i]));
        CHECK(n[1] == lt[i] && n[2] == lt[i] && n[4] == rt[i] && n[5] == rt[i]);
        CHECK_EQ_INT(n[0], i == 0 ? lx : 0); /* deltas: siblings follow each other */
        CHECK_EQ_INT(n[3], i == 0 ? rx : 0);
    }
    hp_buf_t pb = HP_BUF_INIT;
    hp_flamegraph_diff_encode_proto(&d, 1, &pb);
    CHECK(pb.len > 20);
    hp_buf_fini(&pb);
    hp_flamegraph_diff_fini(&d);

    /* max_nodes: small children fold into "other" on both sides */
    for (int i = 0; i < 50; i++) {
        char p[32];
        snprintf(p, sizeof(p), "main;f%02d", i);
        hp_test_add_stack(l, p, 1);
    }
    hp_flamegraph_diff_build(l, r, 3, &d); /* the 3rd largest total is 3: c and every fNN fold */
    bool other = false;
    for (size_t i = 0; i < d.n_names; i++)
        other |= hp_str_eq_c(d.names[i], "other");
    CHECK(other);
    CHECK_EQ_INT(d.left_ticks, 55);
    int64_t sum_l = 0, sum_r = 0; /* self values still add up to each side's ticks */
    for (size_t lv = 0; lv < d.n_levels; lv++)
        for (size_t i = 0; i < d.level_len[lv]; i += 7)
            sum_l += d.levels[lv][i + 2], sum_r += d.levels[lv][i + 5];
    CHECK_EQ_INT(sum_l, 55);
    CHECK_EQ_INT(sum_r, 6);
    hp_flamegraph_diff_fini(&d);
    hp_tree_free(l);
    hp_tree_free(r);
}

/* Collects "a;b value" lines of a text profile's pprof, sorted. */
static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pyroscope's tree bytes read back by the legacy "tree" ingest parser (the
 * same layout): the same stacks and self values, "other" when truncated. */
static void test_tree_bytes(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main;a", 3);
    hp_test_add_stack(t, "main;b", 2);
    hp_test_add_stack(t, "main", 1);
    for (int i = 0; i < 6; i++) {
        char p[16];
        snprintf(p, sizeof(p), "main;z%d", i);
        hp_test_add_stack(t, p, 1);
    }
    for (int max = 0; max <= 3; max += 3) {
        hp_buf_t b = HP_BUF_INIT;
        hp_tree_encode_pyroscope(t, max, &b);
        hp_text_type_t ty = {"memory", "x", "count"};
        hp_text_profile_t p;
        hp_text_profile_init(&p, &ty, 0, 0, 0, NULL);
        hp_err_t err;
        REQUIRE(hp_tree_parse(&p, (hp_str_t){(const char *)b.data, b.len}, false, &err) == 0);
        hp_buf_t pb = HP_BUF_INIT;
        hp_text_profile_encode(&p, &pb);
        hp_pprof_t pp;
        memset(&pp, 0, sizeof(pp));
        REQUIRE(hp_pprof_decode(&pp, pb.data, pb.len, NULL, &err) == 0);
        char *lines[32];
        size_t n = 0;
        int64_t sum = 0;
        for (uint32_t i = 0; i < pp.n_samples && n < 32; i++) {
            const hp_pprof_sample_t *s = &pp.samples[i];
            hp_buf_t l = HP_BUF_INIT;
            for (uint32_t k = s->loc_n; k-- > 0;) {
                const hp_pprof_location_t *loc = &pp.locations[pp.sample_locs[s->loc_off + k]];
                hp_str_t nm = hp_pprof_str(&pp, pp.functions[pp.lines[loc->line_off].function].name);
                hp_buf_printf(&l, "%.*s%s", (int)nm.n, nm.p, k ? ";" : "");
            }
            hp_buf_printf(&l, " %lld", (long long)pp.values[s->val_off]);
            sum += pp.values[s->val_off];
            lines[n++] = strdup(hp_buf_cstr(&l));
            hp_buf_fini(&l);
        }
        qsort(lines, n, sizeof(char *), line_cmp);
        CHECK_EQ_INT(sum, 12);
        if (max == 0) {
            CHECK(n == 9 && strcmp(lines[0], "main 1") == 0 && strcmp(lines[1], "main;a 3") == 0 &&
                  strcmp(lines[2], "main;b 2") == 0);
        } else { /* a (3) and b (2) and main: the z's fold into other (6) */
            CHECK(n == 4 && strcmp(lines[3], "main;other 6") == 0);
        }
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
        hp_pprof_fini(&pp);
        hp_buf_fini(&pb);
        hp_text_profile_fini(&p);
        hp_buf_fini(&b);
    }
    hp_tree_free(t);
}

int main(void)
{
    HP_RUN(test_add_and_totals);
    HP_RUN(test_walk_paths);
    HP_RUN(test_merge);
    HP_RUN(test_encode_decode_roundtrip);
    HP_RUN(test_deep);
    HP_RUN(test_decode_malformed);
    HP_RUN(test_decode_max_nodes);
    HP_RUN(test_decode_huge_values);
    HP_RUN(test_decode_fuzz);
    HP_RUN(test_flamegraph_basic);
    HP_RUN(test_flamegraph_offsets);
    HP_RUN(test_flamegraph_root_self);
    HP_RUN(test_flamegraph_empty);
    HP_RUN(test_flamegraph_max_nodes);
    HP_RUN(test_flamegraph_fold_many);
    HP_RUN(test_flamegraph_real_other);
    HP_RUN(test_flamegraph_random);
    HP_RUN(test_flamebearer_json);
    HP_RUN(test_flamegraph_proto);
    HP_RUN(test_flamegraph_diff);
    HP_RUN(test_tree_bytes);
    return hp_test_done();
}
