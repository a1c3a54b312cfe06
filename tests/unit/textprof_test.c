/* Text uploads into pprof: profile types from app names, folded and lines
 * bodies, speedscope files (Pyroscope's goldens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "hotpath/textprof.h"
#include "test.h"

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The profile as sorted "root;…;leaf value" lines, plus its first sample
 * type and period in *types ("type:unit period_type:period_unit period"). */
static char *collapse(const hp_buf_t *pb, char *types, size_t tn)
{
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_err_t err;
    if (hp_pprof_decode(&p, pb->data, pb->len, NULL, &err) != 0) {
        fprintf(stderr, "  decode: %s\n", err.msg);
        return NULL;
    }
    size_t n = p.n_samples;
    char **lines = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        hp_buf_t b = HP_BUF_INIT;
        const hp_pprof_sample_t *s = &p.samples[i];
        for (uint32_t k = s->loc_n; k-- > 0;) {
            const hp_pprof_location_t *l = &p.locations[p.sample_locs[s->loc_off + k]];
            hp_str_t name = hp_pprof_str(&p, p.functions[p.lines[l->line_off].function].name);
            hp_buf_printf(&b, "%.*s%s", (int)name.n, name.p, k ? ";" : "");
        }
        hp_buf_printf(&b, " %lld", (long long)p.values[s->val_off]);
        lines[i] = strdup(hp_buf_cstr(&b));
        hp_buf_fini(&b);
    }
    qsort(lines, n, sizeof(char *), cmp_lines);
    hp_buf_t out = HP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        hp_buf_printf(&out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    hp_str_t t = hp_pprof_str(&p, p.sample_types[0].type), u = hp_pprof_str(&p, p.sample_types[0].unit);
    hp_str_t pt = hp_pprof_str(&p, p.period_type.type), pu = hp_pprof_str(&p, p.period_type.unit);
    snprintf(types, tn, "%.*s:%.*s %.*s:%.*s %lld", (int)t.n, t.p, (int)u.n, u.p, (int)pt.n, pt.p, (int)pu.n,
             pu.p, (long long)p.period);
    hp_pprof_fini(&p);
    char *r = strdup(hp_buf_cstr(&out));
    hp_buf_fini(&out);
    return r;
}

static void check_type(const char *app, const char *base, const char *metric, const char *type)
{
    hp_str_t b;
    hp_text_type_t t;
    hp_err_t err;
    REQUIRE(hp_text_type_of_app(hp_str_c(app), &b, &t, &err) == 0);
    CHECK(hp_str_eq_c(b, base));
    CHECK_EQ_STR(t.metric, metric);
    CHECK_EQ_STR(t.type, type);
}

static void test_types(void)
{
    check_type("myapp", "myapp", "process_cpu", "samples");
    check_type("myapp.cpu", "myapp", "process_cpu", "samples");
    check_type("my.app.alloc_objects", "my.app", "memory", "alloc_objects");
    check_type("x.mutex_duration", "x", "mutex", "delay");
    check_type("x.lock_count", "x", "block", "contentions");
    check_type("x.goroutines", "x", "goroutine", "goroutines");
    check_type("x.seconds", "x", "wall", "samples");
    hp_str_t b;
    hp_text_type_t t;
    hp_err_t err;
    CHECK_EQ_INT(hp_text_type_of_app(HP_STR("my.app"), &b, &t, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "unknown profile type: app") != NULL);
}

static char *folded(const char *app, const char *body, bool lines, int64_t rate, char *types, size_t tn, int *rc,
                    hp_err_t *err)
{
    hp_str_t base;
    hp_text_type_t t;
    REQUIRE(hp_text_type_of_app(hp_str_c(app), &base, &t, err) == 0);
    hp_text_profile_t p;
    hp_text_limits_t lim = {5, 3, 5};
    hp_text_profile_init(&p, &t, rate, 1700000000000000000LL, 10000000000LL, &lim);
    *rc = hp_folded_parse(&p, hp_str_c(body), lines, err);
    char *r = NULL;
    if (*rc == 0) {
        hp_buf_t pb = HP_BUF_INIT;
        hp_text_profile_encode(&p, &pb);
        r = collapse(&pb, types, tn);
        hp_buf_fini(&pb);
    }
    hp_text_profile_fini(&p);
    return r;
}

static void test_folded(void)
{
    char types[128];
    int rc;
    hp_err_t err;
    /* repeated stacks summed, CRLF, a line without a count skipped, a name
     * cut to 5 bytes, a deep stack cut to its 3 root-most frames */
    char *r = folded("app.cpu", "main;work;spin 3\r\nmain;work 2\nno-count-here\n\nmain;work;spin 4\n"
                     "main;longfunction 1\nmain;a;b;c;d 1\n",
                     false, 100, types, sizeof(types), &rc, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r, "main;a;b 10000000\nmain;longf 10000000\nmain;work 20000000\nmain;work;spin 70000000\n");
    CHECK_EQ_STR(types, "cpu:nanoseconds cpu:nanoseconds 10000000");
    free(r);
    /* sampleRate 0: counts stay samples */
    r = folded("app", "a;b 3\n", false, 0, types, sizeof(types), &rc, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r, "a;b 3\n");
    CHECK_EQ_STR(types, "samples:count : 0");
    free(r);
    /* wall at 99 Hz: Pyroscope's integer period */
    r = folded("app.wall", "a 2\n", false, 99, types, sizeof(types), &rc, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r, "a 20202020\n");
    CHECK_EQ_STR(types, "wall:nanoseconds cpu:nanoseconds 10101010");
    free(r);
    /* other types keep their values */
    r = folded("app.alloc_space", "a;b 4096\n", false, 100, types, sizeof(types), &rc, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r, "a;b 4096\n");
    CHECK_EQ_STR(types, "alloc_space:bytes : 0");
    free(r);
    /* lines: every line one sample */
    r = folded("app.alloc_objects", "a;b\na;b\na\n\n", true, 100, types, sizeof(types), &rc, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r, "a 1\na;b 2\n");
    free(r);
    /* bad counts name the line */
    r = folded("app", "a 1\na;b 1.5\n", false, 100, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "line 2: '1.5'") != NULL);
    r = folded("app", "a -3\n", false, 100, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL);
    /* max_stacks (5) counts distinct stacks: repeats are summed, not refused */
    r = folded("app", "a 1\nb 1\nc 1\nd 1\ne 1\na 1\n", false, 0, types, sizeof(types), &rc, &err);
    CHECK(r != NULL && strcmp(r, "a 2\nb 1\nc 1\nd 1\ne 1\n") == 0);
    free(r);
    /* a sixth distinct stack: refused as the pprof's samples limit would (422) */
    r = folded("app", "a 1\nb 1\nc 1\nd 1\ne 1\na 1\nf 1\n", false, 100, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL && err.detail == HP_TEXT_ESAMPLES);
    CHECK(strstr(err.msg, "samples count limit (max_profile_stacktrace_samples, limit: 5)") != NULL);
}

/* Counts that do not fit in int64 are refused before they overflow. */
static void test_counts(void)
{
    char types[128];
    int rc;
    hp_err_t err;
    static const char *const big[] = {"a;b 9999999999999999999\n", "a 9223372036854775808\n",
                                      "a 99999999999999999999999999999\n"};
    for (size_t i = 0; i < HP_ARRAY_LEN(big); i++) {
        char *r = folded("app", big[i], false, 0, types, sizeof(types), &rc, &err);
        CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "line 1: count too large") != NULL);
    }
    char *r = folded("app", "a 9223372036854775806\n", false, 0, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "does not fit in 64 bits") != NULL);
    r = folded("app", "a 000000000000000000000042\nb 0\n", false, 0, types, sizeof(types), &rc, &err);
    CHECK(r != NULL && strcmp(r, "a 42\n") == 0);
    free(r);
    r = folded("app", "a 12x\n", false, 0, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "line 1: '12x' is not a sample count") != NULL);
}

static char *read_file(const char *rel, size_t *n)
{
    const char *dir = getenv("HP_TESTDATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/testdata", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Every merged profile of a speedscope golden, collapsed, unscaled. */
static void check_speedscope(const char *file, size_t want_n, const char *const *names, const char *want,
                             const char *unit)
{
    size_t n;
    char *body = read_file(file, &n);
    REQUIRE(body != NULL);
    hp_speedscope_t s;
    hp_err_t err;
    REQUIRE(hp_speedscope_parse((hp_str_t){body, n}, &s, &err) == 0);
    CHECK_EQ_INT(s.n, want_n);
    hp_text_type_t t = {"memory", "x", "count"}; /* not timed: no scaling */
    for (size_t k = 0; k < s.n && k < want_n; k++) {
        CHECK_EQ_STR(s.v[k].name, names[k]);
        CHECK_EQ_STR(s.v[k].unit, unit);
        hp_text_profile_t p;
        hp_text_profile_init(&p, &t, 0, 0, 0, NULL);
        REQUIRE(hp_speedscope_add(&s, k, &p, &err) == 0);
        hp_buf_t pb = HP_BUF_INIT;
        hp_text_profile_encode(&p, &pb);
        char types[128];
        char *r = collapse(&pb, types, sizeof(types));
        CHECK(r != NULL && strcmp(r, want) == 0);
        if (r && strcmp(r, want) != 0)
            fprintf(stderr, "  %s profile %zu:\n%s", file, k, r);
        free(r);
        hp_buf_fini(&pb);
        hp_text_profile_fini(&p);
    }
    hp_speedscope_fini(&s);
    free(body);
}

static void test_speedscope(void)
{
    static const char *const simple[] = {"simple.txt"}, *const two[] = {"one", "two"}, *const one[] = {"one"};
    check_speedscope("pyroscope/speedscope/simple.speedscope.json", 1, simple, "a;b 500\na;b;c 500\na;b;d 400\n",
                     "none");
    check_speedscope("pyroscope/speedscope/two-sampled.speedscope.json", 2, two, "a;b 500\na;b;c 500\na;b;d 400\n",
                     "seconds");
    check_speedscope("pyroscope/speedscope/duplicates.speedscope.json", 1, one,
                     "a;b 1500\na;b;c 1500\na;b;d 1200\n", "seconds");
    check_speedscope("pyroscope/speedscope/two-sampled-bytes.speedscope.json", 2, two, "a;b 5\na;b;c 5\na;b;d 4\n",
                     "bytes");
    CHECK_EQ_INT(hp_speedscope_sample_rate("milliseconds"), 100000);
    CHECK_EQ_INT(hp_speedscope_sample_rate("bytes"), 0);

    /* a none-unit file at the default rate: 10 000/s, so each unit is 1/100 of a 10 ms sample */
    size_t n;
    char *body = read_file("pyroscope/speedscope/simple.speedscope.json", &n);
    REQUIRE(body != NULL);
    hp_speedscope_t s;
    hp_err_t err;
    REQUIRE(hp_speedscope_parse((hp_str_t){body, n}, &s, &err) == 0);
    hp_text_type_t cpu = {"process_cpu", "samples", "count"};
    hp_text_profile_t p;
    hp_text_profile_init(&p, &cpu, hp_speedscope_sample_rate("none"), 0, 0, NULL);
    REQUIRE(hp_speedscope_add(&s, 0, &p, &err) == 0);
    hp_buf_t pb = HP_BUF_INIT;
    hp_text_profile_encode(&p, &pb);
    char types[128];
    char *r = collapse(&pb, types, sizeof(types));
    CHECK(r != NULL && strcmp(r, "a;b 50000000\na;b;c 50000000\na;b;d 40000000\n") == 0);
    CHECK_EQ_STR(types, "cpu:nanoseconds cpu:nanoseconds 100000");
    free(r);
    hp_buf_fini(&pb);
    hp_text_profile_fini(&p);
    hp_speedscope_fini(&s);
    free(body);

    /* bad files: each refused with its reason */
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"[", "not JSON"},
        {"{\"$schema\":\"x\"}", "unknown schema"},
        {"{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"}", "profiles and shared.frames"},
        {"{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
         "\"a\"}]},\"profiles\":[{\"type\":\"sampled\",\"unit\":\"parsecs\"}]}",
         "unknown unit parsecs"},
        {"{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
         "\"a\"}]},\"profiles\":[{\"type\":\"flat\",\"unit\":\"none\"}]}",
         "not supported"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(hp_speedscope_parse(hp_str_c(bad[i].json), &s, &err), HP_EINVAL);
        CHECK(strstr(err.msg, bad[i].needle) != NULL);
        hp_speedscope_fini(&s);
    }
    /* bad contents, found while adding */
    static const char *const bad_add[] = {
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
        "\"a\"}]},\"profiles\":[{\"type\":\"sampled\",\"unit\":\"none\",\"samples\":[[0,7]],\"weights\":[1]}]}",
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
        "\"a\"}]},\"profiles\":[{\"type\":\"sampled\",\"unit\":\"none\",\"samples\":[[0]],\"weights\":[-1]}]}",
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
        "\"a\"}]},\"profiles\":[{\"type\":\"sampled\",\"unit\":\"none\",\"samples\":[[0]],\"weights\":[]}]}",
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
        "\"a\"}]},\"profiles\":[{\"type\":\"evented\",\"unit\":\"none\",\"events\":[{\"type\":\"C\",\"frame\":0,"
        "\"at\":1}]}]}",
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":"
        "\"a\"}]},\"profiles\":[{\"type\":\"evented\",\"unit\":\"none\",\"events\":[{\"type\":\"O\",\"frame\":0,"
        "\"at\":5},{\"type\":\"C\",\"frame\":0,\"at\":1}]}]}",
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad_add); i++) {
        REQUIRE(hp_speedscope_parse(hp_str_c(bad_add[i]), &s, &err) == 0);
        hp_text_profile_init(&p, &cpu, 0, 0, 0, NULL);
        CHECK_EQ_INT(hp_speedscope_add(&s, 0, &p, &err), HP_EINVAL);
        hp_text_profile_fini(&p);
        hp_speedscope_fini(&s);
    }
}

/* Appends one serialized node: uvarint name length, name, value, children. */
static void put_node(hp_buf_t *b, const char *name, uint64_t value, uint64_t children)
{
    hp_buf_put_varint(b, strlen(name));
    hp_buf_append(b, name, strlen(name));
    hp_buf_put_varint(b, value);
    hp_buf_put_varint(b, children);
}

/* The tree (or trie) as collapse() lines; *work (if not NULL) gets the
 * frames added and name bytes looked up. */
static char *tree_collapse_lim(const hp_buf_t *in, bool trie, const hp_text_limits_t *lim, int *rc,
                               hp_err_t *err, size_t work[2])
{
    hp_text_type_t t = {"memory", "x", "count"};
    hp_text_profile_t p;
    hp_text_profile_init(&p, &t, 0, 0, 0, lim);
    *rc = hp_tree_parse(&p, (hp_str_t){(const char *)in->data, in->len}, trie, err);
    if (work) {
        work[0] = p.n_frames;
        work[1] = p.n_name_bytes;
    }
    char *r = NULL;
    if (*rc == 0) {
        hp_buf_t pb = HP_BUF_INIT;
        hp_text_profile_encode(&p, &pb);
        char types[128];
        r = collapse(&pb, types, sizeof(types));
        hp_buf_fini(&pb);
    }
    hp_text_profile_fini(&p);
    return r;
}

static char *tree_collapse(const hp_buf_t *in, bool trie, int *rc, hp_err_t *err)
{
    return tree_collapse_lim(in, trie, NULL, rc, err, NULL);
}

/* Pyroscope's legacy tree and trie uploads. */
static void test_tree_trie(void)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    int rc;
    /* tree: root, a (b: 3), c: 2 — the root is not a frame */
    put_node(&b, "", 0, 2);
    put_node(&b, "a", 1, 1);
    put_node(&b, "b", 3, 0);
    put_node(&b, "c", 2, 0);
    char *r = tree_collapse(&b, false, &rc, &err);
    CHECK(r != NULL && strcmp(r, "a 1\na;b 3\nc 2\n") == 0);
    free(r);
    /* trie: keys "a;b" 3 and "a;c" 2 as fragments, then a second trie */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    put_node(&b, "a;", 0, 2);
    put_node(&b, "b", 3, 0);
    put_node(&b, "c", 2, 0);
    put_node(&b, "x;y", 4, 0);
    r = tree_collapse(&b, true, &rc, &err);
    CHECK(r != NULL && strcmp(r, "a;b 3\na;c 2\nx;y 4\n") == 0);
    free(r);
    /* truncated, and a child count the bytes cannot hold */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 2);
    put_node(&b, "a", 1, 0);
    r = tree_collapse(&b, false, &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "byte") != NULL);
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1000000);
    r = tree_collapse(&b, true, &rc, &err);
    CHECK(r == NULL && rc == HP_EINVAL);
    /* deep: 5000 nested frames without recursion */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    for (int i = 0; i < 5000; i++)
        put_node(&b, "f", i == 4999 ? 1 : 0, i == 4999 ? 0 : 1);
    r = tree_collapse(&b, false, &rc, &err);
    CHECK(rc == 0 && r != NULL);
    free(r);
    hp_buf_fini(&b);
}

/* "f;f;…;f" (n frames) followed by " value\n". */
static void f_line(hp_buf_t *b, size_t n, long long value)
{
    for (size_t i = 0; i < n; i++)
        hp_buf_puts(b, i ? ";f" : "f");
    hp_buf_printf(b, " %lld\n", value);
}

/* Trees built to be slow: a long chain with a value at every node. Each
 * node costs O(its name) plus its stack: names are looked up once per
 * node, never per stack, and the frame budget stops the rest. */
static void test_hostile_tree(void)
{
    hp_buf_t b = HP_BUF_INIT, want = HP_BUF_INIT;
    hp_err_t err;
    int rc;
    size_t work[2];
    put_node(&b, "", 0, 1);
    for (int i = 0; i < 5000; i++)
        put_node(&b, "f", 1, i == 4999 ? 0 : 1);
    /* depth 100: nodes 100 … 5000 share the root-most 100 frames, one distinct stack */
    hp_text_limits_t lim = {150, 100, 0, 0, 0};
    char *r = tree_collapse_lim(&b, false, &lim, &rc, &err, work);
    for (size_t d = 1; d < 100; d++)
        f_line(&want, d, 1);
    f_line(&want, 100, 4901);
    CHECK(rc == 0 && r != NULL && strcmp(r, hp_buf_cstr(&want)) == 0);
    CHECK_EQ_INT(work[0], 5050 + 4900 * 100); /* the stacks' frames */
    CHECK_EQ_INT(work[1], 100);               /* each name once; deeper ones never */
    free(r);
    /* the frame budget: refused, naming it */
    hp_text_limits_t tight = {0, 100, 0, 100000, 0};
    r = tree_collapse_lim(&b, false, &tight, &rc, &err, work);
    CHECK(r == NULL && rc == HP_ETOOLARGE &&
          strstr(err.msg, "frame budget: more than 100000 frames") != NULL);
    CHECK(work[0] <= 100000 + 100);
    /* the samples limit counts distinct stacks: 100 > 99 */
    hp_text_limits_t few = {99, 100, 0, 0, 0};
    r = tree_collapse_lim(&b, false, &few, &rc, &err, NULL);
    CHECK(r == NULL && rc == HP_EINVAL && err.detail == HP_TEXT_ESAMPLES);
    hp_buf_fini(&b);
    hp_buf_fini(&want);
}

/* Tries built to be slow: a long key, then many leaves with values. The
 * key's frames are split once and looked up once, whatever the number of
 * leaves below them. */
static void test_hostile_trie(void)
{
    hp_buf_t b = HP_BUF_INIT, want = HP_BUF_INIT;
    hp_err_t err;
    int rc;
    size_t work[2];
    put_node(&b, "", 0, 1);
    for (int i = 0; i < 3000; i++)
        put_node(&b, "f;", 0, i == 2999 ? 3000 : 1);
    for (int i = 0; i < 3000; i++)
        put_node(&b, "x", 1, 0);
    hp_text_limits_t lim = {10, 100, 0, 0, 0};
    char *r = tree_collapse_lim(&b, true, &lim, &rc, &err, work);
    f_line(&want, 100, 3000);
    CHECK(rc == 0 && r != NULL && strcmp(r, hp_buf_cstr(&want)) == 0);
    CHECK_EQ_INT(work[0], 3000 * 100);
    CHECK_EQ_INT(work[1], 100); /* "f" 100 times, once each; the leaves' "x" is past the depth */
    free(r);
    hp_text_limits_t tight = {0, 100, 0, 50000, 0};
    r = tree_collapse_lim(&b, true, &tight, &rc, &err, NULL);
    CHECK(r == NULL && rc == HP_ETOOLARGE && strstr(err.msg, "frame budget: more than 50000 frames") != NULL);

    /* leaves within the depth: each leaf's name is looked up once */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    for (int i = 0; i < 50; i++)
        put_node(&b, "f;", 0, i == 49 ? 1000 : 1);
    for (int i = 0; i < 1000; i++) {
        char leaf[16];
        snprintf(leaf, sizeof(leaf), "x%03d", i);
        put_node(&b, leaf, 2, 0);
    }
    r = tree_collapse_lim(&b, true, &lim, &rc, &err, work);
    CHECK(r == NULL && rc == HP_EINVAL && err.detail == HP_TEXT_ESAMPLES); /* 1000 distinct > 10 */
    hp_text_limits_t roomy = {0, 100, 0, 0, 0};
    r = tree_collapse_lim(&b, true, &roomy, &rc, &err, work);
    CHECK(rc == 0 && r != NULL && strstr(r, ";f;x999 2\n") != NULL);
    CHECK_EQ_INT(work[0], 1000 * 51);
    CHECK_EQ_INT(work[1], 50 + 1000 * 4);
    free(r);

    /* a frame that keeps growing (no ';'): each stack's name is new, so the
     * name budget bounds it */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    for (int i = 0; i < 2000; i++)
        put_node(&b, "ab", 1, i == 1999 ? 0 : 1);
    hp_text_limits_t names = {0, 0, 0, 0, 1 << 20};
    r = tree_collapse_lim(&b, true, &names, &rc, &err, work);
    CHECK(r == NULL && rc == HP_ETOOLARGE &&
          strstr(err.msg, "frame-name budget: more than 1048576 bytes") != NULL);
    CHECK(work[1] <= (1 << 20) + 4000);

    /* fragments split names, and UTF-8 characters, anywhere */
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    put_node(&b, "ma", 0, 2);
    put_node(&b, "in;wo\xc3", 0, 2);
    put_node(&b, "\xa9rk", 2, 0);
    put_node(&b, "\xa9", 1, 0);
    put_node(&b, "x;y", 4, 0);
    r = tree_collapse_lim(&b, true, &roomy, &rc, &err, NULL);
    CHECK(rc == 0 && r != NULL && strcmp(r, "main;wo\xc3\xa9 1\nmain;wo\xc3\xa9rk 2\nmax;y 4\n") == 0);
    free(r);
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    put_node(&b, "a;\xff", 0, 1);
    put_node(&b, "b", 1, 0);
    r = tree_collapse_lim(&b, true, &roomy, &rc, &err, NULL);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "not valid UTF-8") != NULL);
    hp_buf_reset(&b);
    put_node(&b, "", 0, 1);
    put_node(&b, "a;\xc3", 1, 0);
    r = tree_collapse_lim(&b, true, &roomy, &rc, &err, NULL);
    CHECK(r == NULL && rc == HP_EINVAL && strstr(err.msg, "inside a UTF-8 character") != NULL);
    hp_buf_fini(&b);
    hp_buf_fini(&want);
}

static const char ss_head[] = "{\"$schema\":\"https://www.speedscope.app/"
                              "file-format-schema.json\",\"shared\":{\"frames\":[{\"name\":\"a\"},"
                              "{\"name\":\"b\"}]},\"profiles\":[";

/* Many profiles: refused past HP_SPEEDSCOPE_MAX_PROFILES; up to it they
 * are grouped by sorting (not pairwise), ordered by start value. */
static void test_speedscope_many(void)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_speedscope_t s;
    hp_err_t err;
    hp_buf_puts(&b, ss_head);
    for (int i = 0; i < 1025; i++)
        hp_buf_printf(
            &b, "%s{\"type\":\"sampled\",\"name\":\"p%d\",\"unit\":\"none\",\"samples\":[],\"weights\":[]}",
            i ? "," : "", i);
    hp_buf_puts(&b, "]}");
    CHECK_EQ_INT(hp_speedscope_parse((hp_str_t){(const char *)b.data, b.len}, &s, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "speedscope: 1025 profiles in one file, at most 1024") != NULL);
    hp_speedscope_fini(&s);
    /* 1024: 512 keys, each twice (i and i + 512), later keys starting first */
    hp_buf_reset(&b);
    hp_buf_puts(&b, ss_head);
    for (int i = 0; i < 1024; i++)
        hp_buf_printf(&b,
                      "%s{\"type\":\"sampled\",\"name\":\"p%d\",\"unit\":\"none\",\"startValue\":%d,"
                      "\"samples\":[[0,1]],\"weights\":[%d]}",
                      i ? "," : "", i % 512, 511 - i % 512, i < 512 ? 1 : 2);
    hp_buf_puts(&b, "]}");
    REQUIRE(hp_speedscope_parse((hp_str_t){(const char *)b.data, b.len}, &s, &err) == 0);
    CHECK_EQ_INT(s.n, 512);
    bool ok = true;
    for (size_t k = 0; k < s.n; k++) {
        char name[16];
        snprintf(name, sizeof(name), "p%zu", 511 - k);
        ok &= strcmp(s.v[k].name, name) == 0 && s.member_off[k] == 2 * k && s.members[2 * k] == 511 - k &&
              s.members[2 * k + 1] == 1023 - k;
    }
    CHECK(ok);
    hp_text_type_t t = {"memory", "x", "count"};
    hp_text_profile_t p;
    hp_text_profile_init(&p, &t, 0, 0, 0, NULL);
    REQUIRE(hp_speedscope_add(&s, 0, &p, &err) == 0); /* both members: 1 + 2, × 100 */
    hp_buf_t pb = HP_BUF_INIT;
    hp_text_profile_encode(&p, &pb);
    char types[128];
    char *r = collapse(&pb, types, sizeof(types));
    CHECK(r != NULL && strcmp(r, "a;b 300\n") == 0);
    free(r);
    hp_buf_fini(&pb);
    hp_text_profile_fini(&p);
    hp_speedscope_fini(&s);
    hp_buf_fini(&b);
}

/* An evented profile with a deep open stack and many events: each frame's
 * name is looked up once, and the frame budget bounds the stacks. */
static void test_speedscope_evented_deep(void)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, ss_head);
    hp_buf_puts(&b, "{\"type\":\"evented\",\"name\":\"e\",\"unit\":\"none\",\"startValue\":0,\"events\":[");
    for (int i = 0; i < 200; i++)
        hp_buf_printf(&b, "%s{\"type\":\"O\",\"frame\":0,\"at\":0}", i ? "," : "");
    for (int i = 0; i < 1000; i++)
        hp_buf_printf(&b, ",{\"type\":\"O\",\"frame\":1,\"at\":%d},{\"type\":\"C\",\"frame\":1,\"at\":%d}",
                      2 * i, 2 * i + 1);
    for (int i = 0; i < 200; i++)
        hp_buf_puts(&b, ",{\"type\":\"C\",\"frame\":0,\"at\":2000}");
    hp_buf_puts(&b, "]}]}");
    hp_speedscope_t s;
    hp_err_t err;
    REQUIRE(hp_speedscope_parse((hp_str_t){(const char *)b.data, b.len}, &s, &err) == 0);
    hp_text_type_t t = {"memory", "x", "count"};
    hp_text_profile_t p;
    hp_text_profile_init(&p, &t, 0, 0, 0, NULL);
    REQUIRE(hp_speedscope_add(&s, 0, &p, &err) == 0);
    CHECK_EQ_INT(p.n_frames, 1000 * 201 + 1000 * 200);
    CHECK_EQ_INT(p.n_name_bytes, 2); /* "a" and "b", once each */
    hp_buf_t pb = HP_BUF_INIT, want = HP_BUF_INIT;
    hp_text_profile_encode(&p, &pb);
    char types[128];
    char *r = collapse(&pb, types, sizeof(types));
    for (int i = 0; i < 200; i++)
        hp_buf_puts(&want, i ? ";a" : "a");
    hp_buf_puts(&want, " 100000\n");
    for (int i = 0; i < 200; i++)
        hp_buf_puts(&want, i ? ";a" : "a");
    hp_buf_puts(&want, ";b 100000\n");
    CHECK(r != NULL && strcmp(r, hp_buf_cstr(&want)) == 0);
    free(r);
    hp_buf_fini(&pb);
    hp_buf_fini(&want);
    hp_text_profile_fini(&p);
    hp_text_limits_t tight = {0, 0, 0, 100000, 0};
    hp_text_profile_init(&p, &t, 0, 0, 0, &tight);
    CHECK_EQ_INT(hp_speedscope_add(&s, 0, &p, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "frame budget: more than 100000 frames") != NULL);
    hp_text_profile_fini(&p);
    hp_speedscope_fini(&s);
    hp_buf_fini(&b);
}

/* Mutated folded and speedscope inputs: never a crash, only 0 or an error. */
static void test_fuzz(void)
{
    size_t n;
    char *golden = read_file("pyroscope/speedscope/two-sampled.speedscope.json", &n);
    REQUIRE(golden != NULL);
    const char *folded_in = "main;work;spin 3\nmain;work 2\nmain;a;b;c 7\nx 1\n";
    hp_buf_t tree = HP_BUF_INIT;
    put_node(&tree, "", 0, 2);
    put_node(&tree, "main;", 1, 2);
    put_node(&tree, "work", 3, 1);
    put_node(&tree, "spin", 5, 0);
    put_node(&tree, "io", 2, 0);
    put_node(&tree, "x", 1, 0);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char *buf = malloc(n + 1);
    hp_text_type_t cpu = {"process_cpu", "samples", "count"};
    int ok = 0;
    for (int it = 0; it < 3000; it++) {
        bool ss = it % 3 == 0, tr = it % 3 == 1;
        size_t len = ss ? n : tr ? tree.len : strlen(folded_in);
        memcpy(buf, ss ? golden : tr ? (const char *)tree.data : folded_in, len);
        for (int k = 0; k < 1 + it % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[x % len] = (char)(x >> 32);
        }
        if (it % 7 == 0)
            len = (size_t)(x >> 40) % len;
        hp_text_profile_t p;
        hp_text_limits_t lim = {1000, 64, 256};
        hp_text_profile_init(&p, &cpu, 100, 0, 0, &lim);
        hp_err_t err;
        int rc;
        if (ss) {
            hp_speedscope_t s;
            rc = hp_speedscope_parse((hp_str_t){buf, len}, &s, &err);
            for (size_t k = 0; rc == 0 && k < s.n; k++)
                rc = hp_speedscope_add(&s, k, &p, &err);
            hp_speedscope_fini(&s);
        } else if (tr) {
            rc = hp_tree_parse(&p, (hp_str_t){buf, len}, it % 2 == 0, &err);
        } else {
            rc = hp_folded_parse(&p, (hp_str_t){buf, len}, it % 4 == 1, &err);
        }
        CHECK(rc == 0 || rc == HP_EINVAL);
        if (rc == 0) {
            hp_buf_t pb = HP_BUF_INIT;
            hp_text_profile_encode(&p, &pb);
            hp_pprof_t d;
            memset(&d, 0, sizeof(d));
            int drc = hp_pprof_decode(&d, pb.data, pb.len, NULL, &err); /* whatever went in, valid pprof comes out */
            if (drc != 0)
                fprintf(stderr, "  decode: %s\n", err.msg);
            CHECK(drc == 0);
            hp_pprof_fini(&d);
            hp_buf_fini(&pb);
            ok++;
        }
        hp_text_profile_fini(&p);
    }
    printf("fuzz: 3000 mutated inputs (speedscope, tree/trie, folded), %d converted\n", ok);
    free(buf);
    free(golden);
    hp_buf_fini(&tree);
}

int main(void)
{
    HP_RUN(test_types);
    HP_RUN(test_folded);
    HP_RUN(test_counts);
    HP_RUN(test_speedscope);
    HP_RUN(test_tree_trie);
    HP_RUN(test_hostile_tree);
    HP_RUN(test_hostile_trie);
    HP_RUN(test_speedscope_many);
    HP_RUN(test_speedscope_evented_deep);
    HP_RUN(test_fuzz);
    return hp_test_done();
}
