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
    /* more than max_stacks (5) stacks */
    r = folded("app", "a 1\nb 1\nc 1\nd 1\ne 1\na 1\n", false, 100, types, sizeof(types), &rc, &err);
    CHECK(r == NULL && rc == HP_ELIMIT);
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

static char *tree_collapse(const hp_buf_t *in, bool trie, int *rc, hp_err_t *err)
{
    hp_text_type_t t = {"memory", "x", "count"};
    hp_text_profile_t p;
    hp_text_profile_init(&p, &t, 0, 0, 0, NULL);
    *rc = hp_tree_parse(&p, (hp_str_t){(const char *)in->data, in->len}, trie, err);
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
        CHECK(rc == 0 || rc == HP_EINVAL || rc == HP_ELIMIT);
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
    HP_RUN(test_speedscope);
    HP_RUN(test_tree_trie);
    HP_RUN(test_fuzz);
    return hp_test_done();
}
