/* Tests for pprof.h: the decoder against the shared corpus's reference
 * figures, hand-made bad inputs, random mutations, and the builder's round
 * trip. */
#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>

#include "hotpath/compress.h"
#include "hotpath/pbwire.h"
#include "hotpath/pprof.h"
#include "test.h"

#define MAX_RAW ((size_t)64 << 20)

/* Reads a test data file, gunzipped when it is gzip. Caller frees. */
static uint8_t *load(const char *path, size_t *n)
{
    size_t zn = 0;
    uint8_t *z = hp_test_read_file(path, &zn);
    if (z == NULL || !hp_is_gzip(z, zn)) {
        *n = zn;
        return z;
    }
    hp_buf_t out = HP_BUF_INIT;
    hp_err_t err = {0};
    int rc = hp_gunzip(z, zn, MAX_RAW, &out, &err);
    free(z);
    if (rc != 0) {
        hp_buf_fini(&out);
        return NULL;
    }
    return hp_buf_take(&out, n);
}

/* Decodes a test data file (path relative to the test data root). */
static int decode_file(const char *rel, hp_pprof_t *p, uint8_t **raw, hp_err_t *err)
{
    size_t n = 0;
    *raw = load(hp_testdata(rel), &n);
    if (*raw == NULL)
        return HP_ENOTFOUND;
    return hp_pprof_decode(p, *raw, n, NULL, err);
}

static int64_t column_total(const hp_pprof_t *p, uint32_t col)
{
    int64_t t = 0;
    for (uint32_t i = 0; i < p->n_samples; i++)
        t += p->values[p->samples[i].val_off + col];
    return t;
}

/* Every reference is in range: what consumers rely on. */
static void check_indices(const hp_pprof_t *p)
{
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        CHECK(s->loc_off + s->loc_n <= p->n_sample_locs);
        CHECK(s->lab_off + s->lab_n <= p->n_labels);
        CHECK(s->val_off + p->n_sample_types <= p->n_values);
    }
    for (uint32_t i = 0; i < p->n_sample_locs; i++)
        CHECK(p->sample_locs[i] < p->n_locations);
    for (uint32_t i = 0; i < p->n_locations; i++) {
        const hp_pprof_location_t *l = &p->locations[i];
        CHECK(l->mapping == HP_PPROF_NONE || l->mapping < p->n_mappings);
        CHECK(l->line_off + l->line_n <= p->n_lines);
    }
    for (uint32_t i = 0; i < p->n_lines; i++)
        CHECK(p->lines[i].function < p->n_functions);
    for (uint32_t i = 0; i < p->n_functions; i++)
        CHECK(p->functions[i].name < p->n_strings);
    CHECK(p->n_strings >= 1 && p->strings[0].n == 0);
}

/* ------------------------------------------------------------------------
 * The corpus against its reference summaries.
 */

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Decodes dir/name and compares it with dir/name.ref/summary.json. */
static void check_against_summary(const char *dir, const char *name)
{
    char rel[1024], ref[4200];
    snprintf(rel, sizeof(rel), "%s/%s", dir, name);
    snprintf(ref, sizeof(ref), "%s.ref/summary.json", hp_testdata(rel));
    json_error_t jerr;
    json_t *sum = json_load_file(ref, 0, &jerr);
    REQUIRE(sum != NULL);
    hp_pprof_t p;
    uint8_t *raw = NULL;
    hp_err_t err = {0};
    int rc = decode_file(rel, &p, &raw, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", rel, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(p.n_samples, jint(sum, "num_samples"));
    CHECK_EQ_INT(p.n_locations, jint(sum, "num_locations"));
    CHECK_EQ_INT(p.n_functions, jint(sum, "num_functions"));
    CHECK_EQ_INT(p.n_mappings, jint(sum, "num_mappings"));
    json_t *types = json_object_get(sum, "per_sample_type");
    CHECK_EQ_INT(p.n_sample_types, json_array_size(types));
    for (uint32_t i = 0; i < p.n_sample_types && i < json_array_size(types); i++)
        CHECK_EQ_INT(column_total(&p, i), jint(json_array_get(types, i), "total_library"));
    check_indices(&p);
    hp_pprof_fini(&p);
    free(raw);
    json_decref(sum);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Checks every *.pb.gz of a corpus directory; returns how many. */
static int check_corpus_dir(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s", hp_testdata(dir));
    DIR *dh = opendir(path);
    if (dh == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (!ends_with(e->d_name, ".pb.gz"))
            continue;
        check_against_summary(dir, e->d_name);
        n++;
    }
    closedir(dh);
    return n;
}

static void test_corpus(void)
{
    int go = check_corpus_dir("corpus/go");
    int node = check_corpus_dir("corpus/node");
    int fixtures = check_corpus_dir("corpus/fixtures");
    fprintf(stderr, "  checked %d go, %d node, %d fixture profiles\n", go, node, fixtures);
    CHECK(go >= 15);
    CHECK(node >= 2);
    CHECK(fixtures >= 5);
}

/* Spot checks of resolved symbols in a known profile (go_mix.cpu's
 * top.1.cpu.txt: runtime.asyncPreempt is the top flat function). */
static void test_symbols_resolved(void)
{
    hp_pprof_t p;
    uint8_t *raw = NULL;
    hp_err_t err = {0};
    REQUIRE(decode_file("corpus/go/go_mix.cpu.pb.gz", &p, &raw, &err) == 0);
    CHECK(hp_str_eq_c(hp_pprof_str(&p, p.sample_types[1].type), "cpu"));
    CHECK(hp_str_eq_c(hp_pprof_str(&p, p.sample_types[1].unit), "nanoseconds"));
    CHECK(hp_str_eq_c(hp_pprof_str(&p, p.period_type.type), "cpu"));
    CHECK_EQ_INT(p.period, 10000000);
    CHECK_EQ_INT(p.time_nanos, 1795636789512153674LL);
    CHECK_EQ_INT(p.duration_nanos, 4088437749LL);
    int64_t preempt = 0;
    for (uint32_t i = 0; i < p.n_samples; i++) {
        const hp_pprof_sample_t *s = &p.samples[i];
        const hp_pprof_location_t *leaf = &p.locations[p.sample_locs[s->loc_off]];
        REQUIRE(leaf->line_n > 0);
        const hp_pprof_function_t *f = &p.functions[p.lines[leaf->line_off].function];
        if (hp_str_eq_c(hp_pprof_str(&p, f->name), "runtime.asyncPreempt"))
            preempt += p.values[s->val_off];
    }
    CHECK_EQ_INT(preempt, 89); /* summary.json top10_flat[0] */
    hp_pprof_fini(&p);
    free(raw);
}

/* ------------------------------------------------------------------------
 * Round trip through the builder.
 */

typedef struct named {
    hp_str_t name;
    int64_t v;
} named_t;

static int named_cmp(const void *a, const void *b)
{
    const named_t *x = a, *y = b;
    int c = hp_str_cmp(x->name, y->name);
    return c != 0 ? c : (x->v > y->v) - (x->v < y->v);
}

/* Flat value of column col per function name, sorted by name, zeros and
 * repeats of a name merged. Returns the count; caller frees *out. */
static size_t flat_by_name(const hp_pprof_t *p, uint32_t col, named_t **out)
{
    int64_t *by_fn = calloc(p->n_functions + 1, sizeof(int64_t));
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        if (s->loc_n == 0)
            continue;
        const hp_pprof_location_t *leaf = &p->locations[p->sample_locs[s->loc_off]];
        if (leaf->line_n > 0)
            by_fn[p->lines[leaf->line_off].function] += p->values[s->val_off + col];
    }
    named_t *v = calloc(p->n_functions + 1, sizeof(named_t));
    size_t n = 0;
    for (uint32_t i = 0; i < p->n_functions; i++)
        v[n++] = (named_t){hp_pprof_str(p, p->functions[i].name), by_fn[i]};
    qsort(v, n, sizeof(*v), named_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && hp_str_eq(v[m - 1].name, v[i].name))
            v[m - 1].v += v[i].v;
        else
            v[m++] = v[i];
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (v[i].v != 0)
            v[k++] = v[i];
    free(by_fn);
    *out = v;
    return k;
}

/* Same per-function flat values for column ca of a and cb of b. */
static void check_same_flat(const hp_pprof_t *a, uint32_t ca, const hp_pprof_t *b, uint32_t cb)
{
    named_t *x, *y;
    size_t nx = flat_by_name(a, ca, &x), ny = flat_by_name(b, cb, &y);
    CHECK_EQ_INT(nx, ny);
    size_t bad = 0;
    for (size_t i = 0; i < nx && i < ny; i++)
        bad += !hp_str_eq(x[i].name, y[i].name) || x[i].v != y[i].v;
    CHECK_EQ_INT(bad, 0);
    free(x);
    free(y);
}

/* Encodes what b holds and decodes it into q (buffer kept in *enc). */
static void encode_decode(hp_pprof_builder_t *b, hp_buf_t *enc, hp_pprof_t *q)
{
    hp_err_t err = {0};
    hp_buf_reset(enc);
    hp_pprof_builder_encode(b, enc);
    int rc = hp_pprof_decode(q, enc->data, enc->len, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  re-decode: %s\n", err.msg);
    REQUIRE(rc == 0);
    check_indices(q);
}

static void round_trip(const char *rel)
{
    hp_pprof_t p, q;
    uint8_t *raw = NULL;
    hp_err_t err = {0};
    int rc = decode_file(rel, &p, &raw, &err);
    if (rc == HP_ENOTFOUND) {
        fprintf(stderr, "  %s: not present, skipped\n", rel);
        return;
    }
    REQUIRE(rc == 0);
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_add_profile(b, &p, NULL, 0);
    hp_buf_t enc = HP_BUF_INIT;
    encode_decode(b, &enc, &q);
    fprintf(stderr, "  %s: %u samples -> %u, re-encoded in %zu bytes\n", rel, p.n_samples, q.n_samples,
            enc.len);
    CHECK_EQ_INT(q.n_sample_types, p.n_sample_types);
    CHECK(q.n_samples <= p.n_samples);
    if (q.n_samples == p.n_samples)
        CHECK_EQ_INT(q.n_labels, p.n_labels);
    CHECK(q.n_locations <= p.n_locations);
    CHECK(q.n_mappings <= p.n_mappings);
    CHECK_EQ_INT(q.period, p.period);
    CHECK_EQ_INT(q.time_nanos, p.time_nanos);
    CHECK_EQ_INT(q.duration_nanos, p.duration_nanos);
    for (uint32_t c = 0; c < p.n_sample_types; c++) {
        CHECK(hp_str_eq(hp_pprof_str(&q, q.sample_types[c].type), hp_pprof_str(&p, p.sample_types[c].type)));
        CHECK_EQ_INT(column_total(&q, c), column_total(&p, c));
        check_same_flat(&p, c, &q, c);
    }
    hp_pprof_fini(&q);
    hp_pprof_builder_free(b);
    hp_buf_fini(&enc);
    hp_pprof_fini(&p);
    free(raw);
}

static void test_round_trip(void)
{
    round_trip("corpus/go/go_mix.cpu.pb.gz");
    round_trip("corpus/go/go_labels.cpu.pb.gz");
    round_trip("corpus/go/go_mix.heap.pb.gz");
    round_trip("corpus/go/compile_ssa.cpu.pb.gz");
    round_trip("corpus/node/node_heap.pb.gz");
    round_trip("corpus/node/node_wall_5s.pb.gz");
    round_trip("corpus/fixtures/fixture_pprof_go.nomappings.crash.pb.gz");
    round_trip("corpus/fixtures/fixture_pprof_legacy_java.cpu.pb.gz");
    round_trip("corpus/go/go_deep_memrate1.heap.pb.gz");
}

/* Merging a profile with itself doubles every value and adds no symbol;
 * selecting one column keeps that column only. */
static void test_merge_and_select(void)
{
    hp_pprof_t p, q;
    uint8_t *raw = NULL;
    hp_err_t err = {0};
    REQUIRE(decode_file("corpus/go/go_mix.heap.pb.gz", &p, &raw, &err) == 0);
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_add_profile(b, &p, NULL, 0);
    hp_buf_t enc = HP_BUF_INIT;
    encode_decode(b, &enc, &q);
    uint32_t samples = q.n_samples, locs = q.n_locations, fns = q.n_functions;
    hp_pprof_fini(&q);
    hp_pprof_builder_add_profile(b, &p, NULL, 0);
    encode_decode(b, &enc, &q);
    CHECK_EQ_INT(q.n_samples, samples);
    CHECK_EQ_INT(q.n_locations, locs);
    CHECK_EQ_INT(q.n_functions, fns);
    for (uint32_t c = 0; c < p.n_sample_types; c++)
        CHECK_EQ_INT(column_total(&q, c), 2 * column_total(&p, c));
    hp_pprof_fini(&q);
    hp_pprof_builder_free(b);

    b = hp_pprof_builder_new();
    uint32_t col = 3; /* inuse_space */
    hp_pprof_builder_add_profile(b, &p, &col, 1);
    encode_decode(b, &enc, &q);
    REQUIRE(q.n_sample_types == 1);
    CHECK(hp_str_eq_c(hp_pprof_str(&q, q.sample_types[0].type), "inuse_space"));
    CHECK_EQ_INT(column_total(&q, 0), 4414347); /* summary.json per_sample_type[3] */
    check_same_flat(&p, 3, &q, 0);
    hp_pprof_fini(&q);
    hp_pprof_builder_free(b);
    hp_buf_fini(&enc);
    hp_pprof_fini(&p);
    free(raw);
}

/* The builder's own API: dedup, summing, label order. */
static void test_builder_api(void)
{
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    CHECK_EQ_INT(hp_pprof_builder_string(b, "", 0), 0);
    uint32_t s1 = hp_pprof_builder_string(b, "x", 1);
    CHECK_EQ_INT(hp_pprof_builder_string(b, "x", 1), s1);
    hp_pprof_builder_sample_type(b, HP_STR("cpu"), HP_STR("nanoseconds"));
    hp_pprof_builder_sample_type(b, HP_STR("samples"), HP_STR("count"));
    hp_pprof_builder_period(b, HP_STR("cpu"), HP_STR("nanoseconds"), 10000000);
    hp_pprof_builder_times(b, 1000, 2000);
    hp_pprof_mapping_in_t m = {0x400000, 0x500000, 0,    HP_STR("/bin/app"), HP_STR("abc"), true,
                               true,     true,     false};
    uint64_t mid = hp_pprof_builder_mapping(b, &m);
    CHECK_EQ_INT(hp_pprof_builder_mapping(b, &m), mid);
    uint64_t f1 = hp_pprof_builder_function(b, HP_STR("main"), HP_STR("main"), HP_STR("a.go"), 1);
    uint64_t f2 = hp_pprof_builder_function(b, HP_STR("foo"), HP_STR("foo"), HP_STR("a.go"), 9);
    CHECK(f1 != f2);
    CHECK_EQ_INT(hp_pprof_builder_function(b, HP_STR("main"), HP_STR("main"), HP_STR("a.go"), 1), f1);
    hp_pprof_line_in_t l1 = {f1, 3}, l2[2] = {{f2, 10}, {f1, 4}};
    uint64_t loc1 = hp_pprof_builder_location(b, mid, 0x401000, &l1, 1);
    uint64_t loc2 = hp_pprof_builder_location(b, 0, 0, l2, 2);
    CHECK_EQ_INT(hp_pprof_builder_location(b, mid, 0x401000, &l1, 1), loc1);
    uint64_t stack[2] = {loc2, loc1};
    int64_t v1[2] = {10, 1}, v2[2] = {30, 3};
    hp_pprof_label_in_t la[2] = {{HP_STR("k1"), HP_STR("a"), 0, {"", 0}},
                                 {HP_STR("n"), {"", 0}, 42, HP_STR("bytes")}};
    hp_pprof_label_in_t lb[2] = {la[1], la[0]};
    hp_pprof_builder_sample(b, stack, 2, v1, la, 2);
    hp_pprof_builder_sample(b, stack, 2, v2, lb, 2); /* same labels, other order */
    hp_pprof_builder_sample(b, stack, 1, v1, NULL, 0);
    hp_buf_t enc = HP_BUF_INIT;
    hp_pprof_t q;
    encode_decode(b, &enc, &q);
    REQUIRE(q.n_samples == 2);
    CHECK_EQ_INT(q.values[q.samples[0].val_off], 40);
    CHECK_EQ_INT(q.values[q.samples[0].val_off + 1], 4);
    CHECK_EQ_INT(q.samples[0].loc_n, 2);
    CHECK_EQ_INT(q.samples[0].lab_n, 2);
    CHECK_EQ_INT(q.samples[1].loc_n, 1);
    CHECK_EQ_INT(q.n_locations, 2);
    CHECK_EQ_INT(q.n_functions, 2);
    CHECK_EQ_INT(q.n_mappings, 1);
    const hp_pprof_location_t *ql = &q.locations[q.sample_locs[q.samples[0].loc_off]];
    CHECK_EQ_INT(ql->line_n, 2);
    CHECK(ql->mapping == HP_PPROF_NONE);
    CHECK_EQ_INT(q.lines[ql->line_off].line, 10);
    CHECK(hp_str_eq_c(hp_pprof_str(&q, q.functions[q.lines[ql->line_off].function].name), "foo"));
    const hp_pprof_mapping_t *qm = &q.mappings[0];
    CHECK_EQ_INT(qm->memory_start, 0x400000);
    CHECK(hp_str_eq_c(hp_pprof_str(&q, qm->build_id), "abc"));
    CHECK(qm->has_functions && qm->has_line_numbers && !qm->has_inline_frames);
    int64_t nums = 0;
    for (uint32_t i = 0; i < q.samples[0].lab_n; i++)
        nums += q.labels[q.samples[0].lab_off + i].num;
    CHECK_EQ_INT(nums, 42);
    CHECK_EQ_INT(q.time_nanos, 1000);
    CHECK_EQ_INT(q.duration_nanos, 2000);
    CHECK_EQ_INT(q.period, 10000000);
    hp_pprof_fini(&q);
    hp_buf_fini(&enc);
    hp_pprof_builder_free(b);
}

/* ------------------------------------------------------------------------
 * Hand-made profiles, valid and not.
 */

/* What the hand-made profile contains; tests change one thing. */
typedef struct spec {
    const char *str0;        /* string_table[0] */
    uint64_t fn_name;        /* string index of function 1's name */
    uint64_t fn1_id, fn2_id; /* function IDs */
    uint64_t loc1_id, loc2_id;
    uint64_t line_fn;    /* function ID in location 1's line */
    uint64_t loc_map;    /* mapping ID of location 2 */
    uint64_t sample_loc; /* second location of sample 1 */
    int n_values;        /* values in sample 1 */
    bool unpacked;       /* sample 1 as unpacked repeated fields */
    int n_labels;        /* labels on sample 2 */
    bool extras;         /* unknown fields of every wire type */
} spec_t;

static spec_t base_spec(void)
{
    spec_t s = {"", 3, 1, 2, 1, 2, 1, 1, 2, 1, false, 1, false};
    return s;
}

static void put_value_type(hp_buf_t *b, uint32_t field, uint64_t type, uint64_t unit)
{
    size_t m = hp_pb_begin_len(b, field);
    hp_pb_put_uint(b, 1, type);
    hp_pb_put_uint(b, 2, unit);
    hp_pb_end_len(b, m);
}

static void put_function(hp_buf_t *b, uint64_t id, uint64_t name)
{
    size_t m = hp_pb_begin_len(b, 5);
    hp_pb_put_uint(b, 1, id);
    hp_pb_put_uint(b, 2, name);
    hp_pb_put_uint(b, 4, 5);
    hp_pb_put_uint(b, 5, 7);
    hp_pb_end_len(b, m);
}

static void put_location(hp_buf_t *b, uint64_t id, uint64_t mapping, uint64_t fn, int64_t line)
{
    size_t m = hp_pb_begin_len(b, 4);
    hp_pb_put_uint(b, 1, id);
    hp_pb_put_uint(b, 2, mapping);
    hp_pb_put_uint(b, 3, 0x401000 + id);
    size_t lm = hp_pb_begin_len(b, 4);
    hp_pb_put_uint(b, 1, fn);
    hp_pb_put_uint(b, 2, (uint64_t)line);
    hp_pb_end_len(b, lm);
    hp_pb_end_len(b, m);
}

static void put_label(hp_buf_t *b, uint64_t key, uint64_t str, int64_t num)
{
    size_t m = hp_pb_begin_len(b, 3);
    hp_pb_put_uint(b, 1, key);
    hp_pb_put_uint(b, 2, str);
    hp_pb_put_uint(b, 3, (uint64_t)num);
    hp_pb_end_len(b, m);
}

static void put_sample1(hp_buf_t *b, const spec_t *s)
{
    uint64_t locs[2] = {s->loc1_id, s->sample_loc};
    int64_t vals[3] = {10, 20, 30};
    size_t m = hp_pb_begin_len(b, 2);
    if (s->unpacked) {
        for (int i = 0; i < 2; i++)
            hp_pb_put_uint(b, 1, locs[i]);
        for (int i = 0; i < s->n_values; i++)
            hp_pb_put_uint(b, 2, (uint64_t)vals[i]);
    } else {
        hp_pb_put_packed_u64(b, 1, locs, 2);
        hp_pb_put_packed_i64(b, 2, vals, (size_t)s->n_values);
    }
    hp_pb_end_len(b, m);
}

static void put_sample2(hp_buf_t *b, const spec_t *s)
{
    uint64_t loc = s->loc2_id;
    int64_t v = -5;
    size_t m = hp_pb_begin_len(b, 2);
    hp_pb_put_packed_u64(b, 1, &loc, 1);
    hp_pb_put_packed_i64(b, 2, &v, 1);
    for (int i = 0; i < s->n_labels; i++)
        put_label(b, 6, 7, 0);
    hp_pb_end_len(b, m);
}

static void put_extras(hp_buf_t *b)
{
    hp_pb_put_uint(b, 100, 12345);
    hp_pb_put_tag(b, 101, HP_PB_I64);
    hp_buf_append(b, "12345678", 8);
    hp_pb_put_tag(b, 102, HP_PB_I32);
    hp_buf_append(b, "1234", 4);
    hp_pb_put_bytes(b, 103, "skip me", 7);
}

/* A small profile: 2 samples over 2 locations, 2 functions, 1 mapping. */
static void build(hp_buf_t *b, const spec_t *s)
{
    static const char *strs[] = {NULL, "cpu", "nanoseconds", "main", "foo", "main.go", "k", "v"};
    hp_buf_reset(b);
    put_value_type(b, 1, 1, 2);
    put_sample1(b, s);
    put_sample2(b, s);
    size_t m = hp_pb_begin_len(b, 3);
    hp_pb_put_uint(b, 1, 1);
    hp_pb_put_uint(b, 5, 5);
    hp_pb_end_len(b, m);
    put_location(b, s->loc1_id, 0, s->line_fn, 42);
    put_location(b, s->loc2_id, s->loc_map, s->fn2_id, 7);
    put_function(b, s->fn1_id, s->fn_name);
    put_function(b, s->fn2_id, 4);
    if (s->extras)
        put_extras(b);
    hp_pb_put_bytes(b, 6, s->str0, strlen(s->str0));
    for (size_t i = 1; i < HP_ARRAY_LEN(strs); i++)
        hp_pb_put_bytes(b, 6, strs[i], strlen(strs[i]));
    hp_pb_put_uint(b, 9, 1700000000000000000ull);
    hp_pb_put_uint(b, 12, 10000000);
    put_value_type(b, 11, 1, 2);
}

/* Decodes buf and expects rc with a message containing want. */
static void expect(const hp_buf_t *b, const hp_pprof_limits_t *lim, int rc, const char *want)
{
    hp_pprof_t p;
    hp_err_t err = {0};
    int got = hp_pprof_decode(&p, b->data, b->len, lim, &err);
    CHECK_EQ_INT(got, rc);
    /* Wire-format errors (400 on /ingest) and content errors (422). */
    if (got == HP_EINVAL)
        CHECK_EQ_INT(err.detail,
                     strncmp(err.msg, "malformed profile: ", 19) == 0 ? HP_PPROF_EWIRE : HP_PPROF_EINVALID);
    if (want != NULL && strstr(err.msg, want) == NULL) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, want);
        CHECK(0);
    }
    if (got != 0)
        CHECK(p.samples == NULL && p.arena.head == NULL);
    hp_pprof_fini(&p);
}

/* Decodes a spec and expects rc with a message containing want. */
static void expect_spec(const spec_t *s, int rc, const char *want)
{
    hp_buf_t b = HP_BUF_INIT;
    build(&b, s);
    expect(&b, NULL, rc, want);
    hp_buf_fini(&b);
}

static void check_small(const hp_pprof_t *p, const spec_t *s)
{
    REQUIRE(p->n_samples == 2 && p->n_locations == 2 && p->n_functions == 2);
    CHECK_EQ_INT(p->n_mappings, 1);
    CHECK_EQ_INT(p->n_strings, 8);
    CHECK_EQ_INT(p->samples[0].loc_n, 2);
    CHECK_EQ_INT(p->values[p->samples[0].val_off], 10);
    CHECK_EQ_INT(p->values[p->samples[1].val_off], -5);
    CHECK_EQ_INT(p->samples[1].lab_n, 1);
    const hp_pprof_location_t *l = &p->locations[p->sample_locs[p->samples[0].loc_off]];
    CHECK_EQ_INT(l->address, 0x401000 + s->loc1_id);
    CHECK_EQ_INT(l->id, s->loc1_id);
    CHECK(l->mapping == HP_PPROF_NONE);
    CHECK_EQ_INT(p->lines[l->line_off].line, 42);
    const hp_pprof_function_t *f = &p->functions[p->lines[l->line_off].function];
    CHECK(hp_str_eq_c(hp_pprof_str(p, f->name), "main"));
    CHECK(hp_str_eq_c(hp_pprof_str(p, f->filename), "main.go"));
    CHECK_EQ_INT(f->start_line, 7);
    CHECK_EQ_INT(p->locations[p->sample_locs[p->samples[1].loc_off]].mapping, 0);
    const hp_pprof_label_t *lab = &p->labels[p->samples[1].lab_off];
    CHECK(hp_str_eq_c(hp_pprof_str(p, lab->key), "k") && hp_str_eq_c(hp_pprof_str(p, lab->str), "v"));
    CHECK(hp_str_eq_c(hp_pprof_str(p, p->period_type.unit), "nanoseconds"));
    CHECK_EQ_INT(p->time_nanos, 1700000000000000000LL);
}

static void test_small_valid(void)
{
    spec_t s = base_spec();
    hp_buf_t b = HP_BUF_INIT;
    hp_pprof_t p;
    hp_err_t err = {0};
    build(&b, &s);
    REQUIRE(hp_pprof_decode(&p, b.data, b.len, NULL, &err) == 0);
    check_small(&p, &s);
    hp_pprof_fini(&p);
    /* Unpacked repeated scalars and unknown fields of every wire type. */
    s.unpacked = true;
    s.extras = true;
    build(&b, &s);
    REQUIRE(hp_pprof_decode(&p, b.data, b.len, NULL, &err) == 0);
    check_small(&p, &s);
    hp_pprof_fini(&p);
    /* Sparse IDs go through the hash maps. */
    s = base_spec();
    s.fn1_id = s.line_fn = 1ull << 40;
    s.fn2_id = 999999999999ull;
    s.loc1_id = 77777777;
    s.loc2_id = UINT64_MAX;
    s.sample_loc = UINT64_MAX;
    build(&b, &s);
    REQUIRE(hp_pprof_decode(&p, b.data, b.len, NULL, &err) == 0);
    check_small(&p, &s);
    CHECK_EQ_INT(p.locations[p.sample_locs[1]].id, (long long)UINT64_MAX);
    hp_pprof_fini(&p);
    hp_buf_fini(&b);
}

/* 300 locations and functions with IDs above 2^31, referenced before they
 * are defined, in a shuffled order. */
static void test_many_wide_ids(void)
{
    enum { N = 300 };
    hp_buf_t b = HP_BUF_INIT;
    uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (1ull << 40) + (uint64_t)i * 7919u * 104729u;
    put_value_type(&b, 1, 1, 2);
    for (int i = 0; i < N; i++) {
        uint64_t stack[2] = {ids[i], ids[(i * 37) % N]};
        int64_t v = i;
        size_t m = hp_pb_begin_len(&b, 2);
        hp_pb_put_packed_u64(&b, 1, stack, 2);
        hp_pb_put_packed_i64(&b, 2, &v, 1);
        hp_pb_end_len(&b, m);
    }
    for (int i = 0; i < N; i++) {
        int k = (i * 101) % N;
        put_location(&b, ids[k], 0, ids[N - 1 - k] + 5, k);
        put_function(&b, ids[k] + 5, 3);
    }
    static const char *strs[] = {"", "cpu", "nanoseconds", "f", "x", "f.go"};
    for (size_t i = 0; i < HP_ARRAY_LEN(strs); i++)
        hp_pb_put_bytes(&b, 6, strs[i], strlen(strs[i]));
    hp_pprof_t p;
    hp_err_t err = {0};
    int rc = hp_pprof_decode(&p, b.data, b.len, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    check_indices(&p);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const hp_pprof_sample_t *s = &p.samples[i];
        const hp_pprof_location_t *leaf = &p.locations[p.sample_locs[s->loc_off]];
        const hp_pprof_location_t *caller = &p.locations[p.sample_locs[s->loc_off + 1]];
        const hp_pprof_function_t *f = &p.functions[p.lines[leaf->line_off].function];
        bad += leaf->id != ids[i] || caller->id != ids[(i * 37) % N];
        bad += p.lines[leaf->line_off].line != i || f->id != ids[N - 1 - i] + 5;
    }
    CHECK_EQ_INT(bad, 0);
    hp_pprof_fini(&p);
    /* A reference to a wide ID that is not defined names it in the error. */
    uint64_t missing = (1ull << 50) + 3;
    size_t m = hp_pb_begin_len(&b, 2);
    hp_pb_put_packed_u64(&b, 1, &missing, 1);
    hp_pb_put_uint(&b, 2, 1);
    hp_pb_end_len(&b, m);
    expect(&b, NULL, HP_EINVAL, "sample 300 references missing location id 1125899906842627");
    hp_buf_fini(&b);
}

/* Fields may come in any order: here the sample types, string table and
 * symbols come after the samples that use them. */
static void test_field_order(void)
{
    hp_buf_t b = HP_BUF_INIT;
    uint64_t loc = 1;
    int64_t vals[2] = {3, 300};
    for (int i = 0; i < 2; i++) {
        size_t m = hp_pb_begin_len(&b, 2);
        hp_pb_put_packed_u64(&b, 1, &loc, 1);
        hp_pb_put_packed_i64(&b, 2, vals, 2);
        hp_pb_end_len(&b, m);
    }
    static const char *strs[] = {"", "samples", "count", "cpu", "nanoseconds", "main"};
    for (size_t i = 0; i < HP_ARRAY_LEN(strs); i++)
        hp_pb_put_bytes(&b, 6, strs[i], strlen(strs[i]));
    put_function(&b, 1, 5);
    put_location(&b, 1, 0, 1, 10);
    put_value_type(&b, 1, 1, 2);
    put_value_type(&b, 1, 3, 4);
    hp_pprof_t p;
    hp_err_t err = {0};
    int rc = hp_pprof_decode(&p, b.data, b.len, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    REQUIRE(p.n_sample_types == 2 && p.n_samples == 2);
    CHECK_EQ_INT(column_total(&p, 0), 6);
    CHECK_EQ_INT(column_total(&p, 1), 600);
    CHECK(hp_str_eq_c(hp_pprof_str(&p, p.sample_types[1].type), "cpu"));
    check_indices(&p);
    hp_pprof_fini(&p);
    hp_buf_fini(&b);
}

static void test_empty(void)
{
    hp_pprof_t p;
    hp_err_t err = {0};
    REQUIRE(hp_pprof_decode(&p, NULL, 0, NULL, &err) == 0);
    CHECK_EQ_INT(p.n_samples, 0);
    CHECK_EQ_INT(p.n_strings, 1);
    CHECK(hp_str_eq_c(hp_pprof_str(&p, 0), ""));
    hp_pprof_fini(&p);
    hp_pprof_fini(&p); /* twice is fine */
}

static void test_semantic_errors(void)
{
    spec_t s = base_spec();
    s.str0 = "x";
    expect_spec(&s, HP_EINVAL, "string 0 should be empty string");
    s = base_spec(), s.fn_name = 99;
    expect_spec(&s, HP_EINVAL, "function name string index out of range: 99");
    s = base_spec(), s.sample_loc = 7;
    expect_spec(&s, HP_EINVAL, "sample 0 references missing location id 7");
    s = base_spec(), s.n_values = 2;
    expect_spec(&s, HP_EINVAL, "sample value length mismatch");
    s = base_spec(), s.n_values = 0;
    expect_spec(&s, HP_EINVAL, "sample value length mismatch");
    s = base_spec(), s.line_fn = 0;
    expect_spec(&s, HP_EINVAL, "function id is 0");
    s = base_spec(), s.fn1_id = 0;
    expect_spec(&s, HP_EINVAL, "function id is 0");
    s = base_spec(), s.loc1_id = 0;
    expect_spec(&s, HP_EINVAL, "location id is 0");
    s = base_spec(), s.loc2_id = 1, s.sample_loc = 1;
    expect_spec(&s, HP_EINVAL, "duplicate location id 1");
    s = base_spec(), s.fn2_id = 1;
    expect_spec(&s, HP_EINVAL, "duplicate function id 1");
    s = base_spec(), s.line_fn = 3;
    expect_spec(&s, HP_EINVAL, "references missing function id 3");
    s = base_spec(), s.loc_map = 2;
    expect_spec(&s, HP_EINVAL, "references missing mapping id 2");
}

static void test_invalid_utf8(void)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_pb_put_bytes(&b, 6, "", 0);
    hp_pb_put_bytes(&b, 6, "f\xff", 2);
    expect(&b, NULL, HP_EINVAL, "invalid utf8 string hex: 66ff");
    hp_buf_reset(&b);
    hp_pb_put_bytes(&b, 6, "", 0);
    hp_pb_put_bytes(&b, 6, "caf\xc3\xa9 \xe2\x82\xac", 9); /* valid: café € */
    expect(&b, NULL, 0, NULL);
    hp_buf_fini(&b);
}

static void test_wire_errors(void)
{
    spec_t s = base_spec();
    hp_buf_t b = HP_BUF_INIT;
    build(&b, &s);
    size_t good = b.len;
    /* A varint cut short at the end. */
    hp_pb_put_tag(&b, 9, HP_PB_VARINT);
    hp_buf_putc(&b, (char)0xff);
    expect(&b, NULL, HP_EINVAL, "malformed profile: truncated varint in profile");
    /* A varint of 11 bytes. */
    b.len = good;
    hp_pb_put_tag(&b, 9, HP_PB_VARINT);
    hp_buf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    expect(&b, NULL, HP_EINVAL, "varint longer than 10 bytes");
    /* A length longer than what is left. */
    b.len = good;
    hp_buf_append(&b,
                  "\x32\x10"
                  "abc",
                  5);
    expect(&b, NULL, HP_EINVAL, "malformed profile: truncated field in profile (length 16");
    /* Cut anywhere inside: every prefix is an error or a valid profile. */
    for (size_t cut = 1; cut < good; cut++) {
        hp_pprof_t p;
        hp_err_t err = {0};
        b.len = cut;
        int rc = hp_pprof_decode(&p, b.data, b.len, NULL, &err);
        CHECK(rc == 0 || (rc == HP_EINVAL && err.msg[0] != '\0'));
        hp_pprof_fini(&p);
    }
    /* Wire types 3, 4 (groups), 6 and 7, field number 0. */
    const char *bad[] = {"\x0b", "\x0c", "\x0e", "\x0f", "\x00\x01"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        b.len = good;
        hp_buf_append(&b, bad[i], i == 4 ? 2 : 1);
        expect(&b, NULL, HP_EINVAL, i == 4 ? "invalid field number" : "invalid wire type");
    }
    /* sample_type as a varint. */
    b.len = good;
    hp_pb_put_uint(&b, 1, 5);
    expect(&b, NULL, HP_EINVAL, "field 1 of sample type has wire type 0");
    /* A sample whose packed location IDs end inside a varint. */
    hp_buf_reset(&b);
    hp_buf_append(&b, "\x12\x04\x0a\x02\x01\x80", 6);
    expect(&b, NULL, HP_EINVAL, "malformed profile: truncated varint in sample");
    /* Same inside a packed value list (one sample type). */
    hp_buf_reset(&b);
    hp_buf_append(&b, "\x0a\x00\x12\x04\x12\x02\x01\x80", 8);
    expect(&b, NULL, HP_EINVAL, "malformed profile: truncated varint in sample values");
    /* A label's length overruns its sample. */
    hp_buf_reset(&b);
    hp_buf_append(&b, "\x12\x03\x1a\x05\x08", 5);
    expect(&b, NULL, HP_EINVAL, "malformed profile: truncated field in sample");
    hp_buf_fini(&b);
}

static void test_limits(void)
{
    spec_t s = base_spec();
    hp_buf_t b = HP_BUF_INIT;
    build(&b, &s);
    hp_pprof_limits_t lim = {1, 0, 0};
    expect(&b, &lim, HP_EINVAL, "samples count limit (actual: 2, limit: 1)");
    lim = (hp_pprof_limits_t){2, 1, 0};
    expect(&b, &lim, HP_EINVAL, "stack depth exceeds the limit (actual: 2, limit: 1)");
    lim = (hp_pprof_limits_t){0, 2, 0};
    expect(&b, &lim, 0, NULL);
    s.n_labels = 3;
    build(&b, &s);
    lim = (hp_pprof_limits_t){0, 0, 2};
    expect(&b, &lim, HP_EINVAL, "sample labels limit (actual: 3, limit: 2)");
    lim.max_labels = 3;
    expect(&b, &lim, 0, NULL);
    /* 40 sample types and 100 empty samples cannot fit in these bytes. */
    hp_buf_reset(&b);
    for (int i = 0; i < 40; i++)
        put_value_type(&b, 1, 0, 0);
    for (int i = 0; i < 100; i++)
        hp_pb_put_bytes(&b, 2, "", 0);
    expect(&b, NULL, HP_EINVAL, "sample value length mismatch");
    hp_buf_fini(&b);
}

/* Pyroscope's own broken profiles. */
static void test_pyroscope_files(void)
{
    hp_pprof_t p;
    uint8_t *raw = NULL;
    hp_err_t err = {0};
    CHECK_EQ_INT(decode_file("pyroscope/pprof/invalid_utf8.pb.gz", &p, &raw, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "invalid utf8 string hex: ") != NULL);
    CHECK_EQ_INT(err.detail, HP_PPROF_EINVALID);
    hp_pprof_fini(&p);
    free(raw);

    /* Figures from `go tool pprof -raw`: location 19 has address 0 and no
     * line, and appears 24 times in the second sample's 85 frames. */
    REQUIRE(decode_file("pyroscope/pprof/no_addr_no_line.pb.gz", &p, &raw, &err) == 0);
    check_indices(&p);
    REQUIRE(p.n_samples == 2);
    CHECK_EQ_INT(p.n_locations, 36);
    CHECK_EQ_INT(p.n_lines, 31);
    CHECK_EQ_INT(p.samples[0].loc_n, 5);
    CHECK_EQ_INT(p.samples[1].loc_n, 85);
    CHECK_EQ_INT(p.period, 52631578);
    int bare = 0;
    for (uint32_t i = 0; i < p.samples[1].loc_n; i++) {
        const hp_pprof_location_t *l = &p.locations[p.sample_locs[p.samples[1].loc_off + i]];
        bare += l->address == 0 && l->line_n == 0;
    }
    CHECK_EQ_INT(bare, 24);
    hp_pprof_fini(&p);
    free(raw);
}

/* Flips random bytes of a real profile: every decode must end in success or
 * an error with a message (ASan and UBSan watch for the rest). */
static void test_mutations(void)
{
    size_t n = 0;
    uint8_t *orig = load(hp_testdata("corpus/go/go_labels.cpu.pb.gz"), &n);
    REQUIRE(orig != NULL && n > 1000);
    uint8_t *buf = malloc(n);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, orig, n);
        int flips = 1 + iter % 8;
        for (int k = 0; k < flips; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            buf[(seed >> 8) % n] ^= (uint8_t)(1u << (seed & 7) | (iter & 0x30 ? seed >> 40 : 0));
        }
        size_t len = iter % 5 == 4 ? (size_t)(seed >> 20) % n : n;
        hp_pprof_t p;
        hp_err_t err = {0};
        int rc = hp_pprof_decode(&p, buf, len, NULL, &err);
        if (rc == 0) {
            check_indices(&p);
            ok++;
        } else {
            CHECK(rc == HP_EINVAL && err.msg[0] != '\0');
            CHECK(err.detail == HP_PPROF_EWIRE || err.detail == HP_PPROF_EINVALID);
            failed++;
        }
        hp_pprof_fini(&p);
    }
    fprintf(stderr, "  2000 mutations: %d decoded, %d rejected\n", ok, failed);
    CHECK(failed > 0);
    free(buf);
    free(orig);
}

/* A profile of stacks given as ';'-joined function names (root first),
 * each with a value, decoded into p (backed by *raw). */
static void stacks_profile(const char *const *stacks, const int64_t *vals, size_t n, hp_buf_t *raw, hp_pprof_t *p)
{
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_sample_type(b, HP_STR("cpu"), HP_STR("nanoseconds"));
    for (size_t i = 0; i < n; i++) {
        uint64_t ids[8];
        size_t k = 0;
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", stacks[i]);
        for (char *save, *f = strtok_r(buf, ";", &save); f && k < 8; f = strtok_r(NULL, ";", &save)) {
            uint64_t fn = hp_pprof_builder_function(b, hp_str_c(f), HP_STR(""), HP_STR(""), 0);
            hp_pprof_line_in_t line = {fn, 1};
            ids[k++] = hp_pprof_builder_location(b, 0, 0x100 + fn, &line, 1);
        }
        for (size_t x = 0; x < k / 2; x++) { /* leaf first */
            uint64_t t = ids[x];
            ids[x] = ids[k - 1 - x];
            ids[k - 1 - x] = t;
        }
        hp_pprof_builder_sample(b, ids, k, &vals[i], NULL, 0);
    }
    hp_pprof_builder_encode(b, raw);
    hp_pprof_builder_free(b);
    memset(p, 0, sizeof(*p));
    hp_err_t err;
    REQUIRE(hp_pprof_decode(p, raw->data, raw->len, NULL, &err) == 0);
}

/* A decoded profile's samples as "a;b;c=v" lines (root first), sorted. */
static char *stacks_of(const hp_pprof_t *p)
{
    static char out[512];
    char lines[16][64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_samples && n < 16; i++, n++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        size_t o = 0;
        for (uint32_t j = s->loc_n; j-- > 0;) {
            const hp_pprof_location_t *l = &p->locations[p->sample_locs[s->loc_off + j]];
            hp_str_t name = hp_pprof_str(p, p->functions[p->lines[l->line_off].function].name);
            o += (size_t)snprintf(lines[n] + o, sizeof(lines[n]) - o, "%s%.*s", o ? ";" : "", (int)name.n, name.p);
        }
        snprintf(lines[n] + o, sizeof(lines[n]) - o, "=%lld", (long long)p->values[s->val_off]);
    }
    qsort(lines, n, sizeof(lines[0]), (int (*)(const void *, const void *))strcmp);
    size_t o = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "", lines[i]);
    return out;
}

/* hp_pprof_builder_add_truncated: the call tree main(16) a(11) x(10) b(5)
 * y(1) cut to its largest nodes, the rest folded into "other". */
static void test_truncate(void)
{
    const char *stacks[] = {"main;a;x", "main;a;y", "main;b"};
    const int64_t vals[] = {10, 1, 5};
    hp_buf_t raw = HP_BUF_INIT;
    hp_pprof_t p;
    stacks_profile(stacks, vals, 3, &raw, &p);
    struct {
        int64_t max_nodes;
        const char *want;
    } cases[] = {
        {0, "main;a;x=10 main;a;y=1 main;b=5"},
        {5, "main;a;x=10 main;a;y=1 main;b=5"},
        {4, "main;a;other=1 main;a;x=10 main;b=5"}, /* b (5) is the 4th largest, y (1) goes */
        {3, "main;a;other=1 main;a;x=10 main;other=5"},
        {2, "main;a;other=11 main;other=5"},
        {1, "main;other=16"},
    };
    for (size_t c = 0; c < HP_ARRAY_LEN(cases); c++) {
        hp_pprof_builder_t *b = hp_pprof_builder_new();
        hp_pprof_builder_add_truncated(b, &p, cases[c].max_nodes);
        hp_buf_t enc = HP_BUF_INIT;
        hp_pprof_builder_encode(b, &enc);
        hp_pprof_t q;
        memset(&q, 0, sizeof(q));
        hp_err_t err;
        REQUIRE(hp_pprof_decode(&q, enc.data, enc.len, NULL, &err) == 0);
        CHECK_EQ_STR(stacks_of(&q), cases[c].want);
        CHECK_EQ_INT(q.n_sample_types, 1);
        hp_pprof_fini(&q);
        hp_buf_fini(&enc);
        hp_pprof_builder_free(b);
    }
    hp_pprof_fini(&p);
    hp_buf_fini(&raw);
}

int main(void)
{
    HP_RUN(test_truncate);
    HP_RUN(test_corpus);
    HP_RUN(test_symbols_resolved);
    HP_RUN(test_small_valid);
    HP_RUN(test_many_wide_ids);
    HP_RUN(test_field_order);
    HP_RUN(test_empty);
    HP_RUN(test_semantic_errors);
    HP_RUN(test_invalid_utf8);
    HP_RUN(test_wire_errors);
    HP_RUN(test_limits);
    HP_RUN(test_pyroscope_files);
    HP_RUN(test_mutations);
    HP_RUN(test_builder_api);
    HP_RUN(test_round_trip);
    HP_RUN(test_merge_and_select);
    return hp_test_done();
}
