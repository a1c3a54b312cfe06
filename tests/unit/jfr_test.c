/* JFR → pprof: Pyroscope's goldens, recordings written here to pin each
 * rule, hostile inputs and a mutation fuzz. */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <xxhash.h>

#include "hotpath/buf.h"
#include "hotpath/compress.h"
#include "hotpath/hashmap.h"
#include "hotpath/jfr.h"
#include "hotpath/pprof.h"
#include "jfr_internal.h"
#include "test.h"

#define JFR_DIR "pyroscope/jfr"
#define FROM_NS 1000000000LL  /* Pyroscope's test: time.UnixMilli(1000) */
#define UNTIL_NS 2000000000LL /* … to 2000 */
#define PERIOD 10000000LL     /* sampleRate 100 */
#define HDR_BYTES 68          /* a chunk header */

/* A test data file, gunzipped (NULL when missing). */
static uint8_t *load(const char *rel, size_t *n)
{
    size_t zn = 0;
    uint8_t *z = hp_test_read_file(hp_testdata(rel), &zn);
    if (z == NULL || !hp_is_gzip(z, zn)) {
        *n = zn;
        return z;
    }
    hp_buf_t out = HP_BUF_INIT;
    hp_err_t err = {0};
    int rc = hp_gunzip(z, zn, (size_t)256 << 20, &out, &err);
    free(z);
    if (rc != 0) {
        hp_buf_fini(&out);
        return NULL;
    }
    return hp_buf_take(&out, n);
}

static const hp_jfr_params_t PARAMS = {FROM_NS, UNTIL_NS, 100, NULL, false};

/* ------------------------------------------------------------------------
 * Collapsed stacks: "root;…;leaf" → summed value, sorted.
 */

typedef struct line {
    char *stack;
    int64_t v;
} line_t;

typedef struct coll {
    line_t *v;
    size_t n, cap;
} coll_t;

static void coll_add(coll_t *c, const char *stack, size_t n, int64_t v)
{
    HP_GROW(c->v, c->cap, c->n + 1);
    c->v[c->n].stack = hp_xstrndup(stack, n);
    c->v[c->n++].v = v;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(((const line_t *)a)->stack, ((const line_t *)b)->stack);
}

/* Sorts, sums equal stacks, drops zero sums. */
static void coll_norm(coll_t *c)
{
    hp_qsort(c->v, c->n, sizeof(line_t), line_cmp);
    size_t o = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (o > 0 && strcmp(c->v[o - 1].stack, c->v[i].stack) == 0) {
            c->v[o - 1].v += c->v[i].v;
            free(c->v[i].stack);
        } else {
            c->v[o++] = c->v[i];
        }
    }
    c->n = o;
    o = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].v != 0)
            c->v[o++] = c->v[i];
        else
            free(c->v[i].stack);
    }
    c->n = o;
}

static void coll_fini(coll_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].stack);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static int64_t coll_total(const coll_t *c)
{
    int64_t t = 0;
    for (size_t i = 0; i < c->n; i++)
        t += c->v[i].v;
    return t;
}

/* Equal after normalising both; prints the first difference. */
static bool coll_eq(coll_t *a, coll_t *b, const char *what)
{
    coll_norm(a);
    coll_norm(b);
    for (size_t i = 0; i < a->n || i < b->n; i++) {
        if (i >= a->n || i >= b->n || strcmp(a->v[i].stack, b->v[i].stack) != 0 || a->v[i].v != b->v[i].v) {
            fprintf(stderr, "  %s: %zu vs %zu stacks; first difference at %zu:\n    %s %lld\n    %s %lld\n",
                    what, a->n, b->n, i, i < a->n ? a->v[i].stack : "-", i < a->n ? (long long)a->v[i].v : 0,
                    i < b->n ? b->v[i].stack : "-", i < b->n ? (long long)b->v[i].v : 0);
            return false;
        }
    }
    return true;
}

/* Adds column col of a pprof's samples (divided by div) to c. */
static bool coll_pprof(coll_t *c, const uint8_t *p, size_t n, uint32_t col, int64_t div)
{
    hp_pprof_t pp;
    hp_err_t err = {0};
    memset(&pp, 0, sizeof(pp));
    if (hp_pprof_decode(&pp, p, n, NULL, &err) != 0) {
        fprintf(stderr, "  decode: %s\n", err.msg);
        return false;
    }
    hp_buf_t s = HP_BUF_INIT;
    for (uint32_t i = 0; i < pp.n_samples; i++) {
        const hp_pprof_sample_t *sm = &pp.samples[i];
        hp_buf_reset(&s);
        for (uint32_t k = sm->loc_n; k-- > 0;) {
            const hp_pprof_location_t *l = &pp.locations[pp.sample_locs[sm->loc_off + k]];
            for (uint32_t j = l->line_n; j-- > 0;) {
                hp_str_t name = hp_pprof_str(&pp, pp.functions[pp.lines[l->line_off + j].function].name);
                if (s.len)
                    hp_buf_putc(&s, ';');
                hp_buf_append(&s, name.p, name.n);
            }
        }
        coll_add(c, s.len ? (const char *)s.data : "", s.len, pp.values[sm->val_off + col] / div);
    }
    hp_buf_fini(&s);
    hp_pprof_fini(&pp);
    return true;
}

/* Adds "stack value" lines to c, replacing the older lambda naming
 * ("$$Lambda$_") with Pyroscope's current one ("$$Lambda_"). */
static void coll_text(coll_t *c, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *sp = memrchr(p, ' ', n);
        if (sp != NULL) {
            hp_buf_t s = HP_BUF_INIT;
            for (const char *q = p; q < sp; q++) {
                if (sp - q >= 10 && memcmp(q, "$$Lambda$_", 10) == 0) {
                    hp_buf_append(&s, "$$Lambda_", 9);
                    q += 9;
                } else {
                    hp_buf_putc(&s, *q);
                }
            }
            coll_add(c, s.len ? (const char *)s.data : "", s.len, strtoll(sp + 1, NULL, 10));
            hp_buf_fini(&s);
        }
        p += n + (nl != NULL);
    }
}

/* ------------------------------------------------------------------------
 * Finding profiles in a result.
 */

/* The name (or unit) of sample type col of p; valid until the fourth
 * call after. */
static hp_str_t sample_type(const hp_jfr_profile_t *p, uint32_t col, bool unit)
{
    hp_pprof_t pp;
    hp_err_t err = {0};
    hp_str_t r = {"", 0};
    memset(&pp, 0, sizeof(pp));
    if (hp_pprof_decode(&pp, p->pprof.data, p->pprof.len, NULL, &err) == 0 && col < pp.n_sample_types) {
        static char buf[4][128];
        static int k;
        hp_str_t s = hp_pprof_str(&pp, unit ? pp.sample_types[col].unit : pp.sample_types[col].type);
        k = (k + 1) % 4;
        snprintf(buf[k], sizeof(buf[k]), "%.*s", (int)s.n, s.p);
        r = hp_str_c(buf[k]);
    }
    hp_pprof_fini(&pp);
    return r;
}

/* p's labels other than jfr_event equal want (sorted)? */
static bool labels_are(const hp_jfr_profile_t *p, const hp_labels_t *want)
{
    size_t j = 0;
    for (size_t i = 0; i < p->labels.n; i++) {
        if (hp_str_eq_c(p->labels.v[i].name, "jfr_event"))
            continue;
        if (j >= want->n || !hp_str_eq(p->labels.v[i].name, want->v[j].name) ||
            !hp_str_eq(p->labels.v[i].value, want->v[j].value))
            return false;
        j++;
    }
    return j == want->n;
}

/* p's labels include every label of q? */
static bool labels_include(const hp_jfr_profile_t *p, const hp_labels_t *q)
{
    for (size_t i = 0; i < q->n; i++) {
        hp_str_t v = {NULL, 0};
        for (size_t j = 0; j < p->labels.n; j++)
            if (hp_str_eq(p->labels.v[j].name, q->v[i].name))
                v = p->labels.v[j].value;
        if (v.p == NULL || !hp_str_eq(v, q->v[i].value))
            return false;
    }
    return true;
}

static const hp_jfr_profile_t *find(const hp_jfr_result_t *r, const char *metric, const char *type0,
                                    const hp_labels_t *want)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].metric, metric) == 0 && hp_str_eq_c(sample_type(&r->v[i], 0, false), type0) &&
            labels_are(&r->v[i], want))
            return &r->v[i];
    return NULL;
}

static hp_str_t jfr_event(const hp_jfr_profile_t *p)
{
    return hp_labels_get(&p->labels, "jfr_event");
}

/* ------------------------------------------------------------------------
 * The JSON goldens: {"kafka.app.<name>{k=v,…}": "stack value\n…"}, written
 * by Pyroscope's older converter, which named series after the event or
 * sample type and counted CPU samples rather than nanoseconds.
 */

typedef struct old_name {
    const char *name, *metric, *type0;
    uint32_t col;
    int64_t div;
} old_name_t;

static const old_name_t OLD_NAMES[] = {
    {"cpu", "process_cpu", "cpu", 0, PERIOD},
    {"itimer", "process_cpu", "cpu", 0, PERIOD},
    {"alloc_in_new_tlab_objects", "memory", "alloc_in_new_tlab_objects", 0, 1},
    {"alloc_in_new_tlab_bytes", "memory", "alloc_in_new_tlab_objects", 1, 1},
    {"alloc_outside_tlab_objects", "memory", "alloc_outside_tlab_objects", 0, 1},
    {"alloc_outside_tlab_bytes", "memory", "alloc_outside_tlab_objects", 1, 1},
    {"lock_count", "mutex", "contentions", 0, 1},
    {"lock_duration", "mutex", "contentions", 1, 1},
    {"live", "memory", "live", 0, 1},
};

/* Parses "kafka.app.<name>{k=v,…}" into the name and sorted labels (copies
 * in a). */
static bool parse_key(const char *key, hp_arena_t *a, const char **name, hp_labels_t *ls)
{
    const char *br = strchr(key, '{');
    if (strncmp(key, "kafka.app.", 10) != 0 || br == NULL)
        return false;
    *name = hp_arena_strndup(a, key + 10, (size_t)(br - key - 10));
    for (const char *p = br + 1; *p && *p != '}';) {
        const char *eq = strchr(p, '='), *end = p + strcspn(p, ",}");
        if (eq == NULL || eq > end)
            return false;
        hp_labels_add(
            ls, (hp_str_t){hp_arena_strndup(a, p, (size_t)(eq - p)), (size_t)(eq - p)},
            (hp_str_t){hp_arena_strndup(a, eq + 1, (size_t)(end - eq - 1)), (size_t)(end - eq - 1)});
        p = *end == ',' ? end + 1 : end;
    }
    hp_labels_sort(ls);
    return true;
}

/* Every series of the JSON golden equals the matching profile's stacks. */
static int check_json(const hp_jfr_result_t *r, const char *json_rel)
{
    size_t n = 0;
    uint8_t *raw = load(json_rel, &n);
    REQUIRE(raw != NULL);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)raw, n, 0, &jerr);
    free(raw);
    REQUIRE(root != NULL && json_is_object(root));
    const char *key;
    json_t *val;
    int checked = 0;
    hp_arena_t a;
    hp_arena_init(&a, 0);
    json_object_foreach(root, key, val)
    {
        const char *name = NULL;
        hp_labels_t want;
        hp_labels_init(&want);
        CHECK(parse_key(key, &a, &name, &want));
        const old_name_t *on = NULL;
        for (size_t i = 0; name && i < HP_ARRAY_LEN(OLD_NAMES); i++)
            if (strcmp(OLD_NAMES[i].name, name) == 0)
                on = &OLD_NAMES[i];
        CHECK(on != NULL);
        const hp_jfr_profile_t *p = on ? find(r, on->metric, on->type0, &want) : NULL;
        if (p == NULL)
            fprintf(stderr, "  no profile for %s\n", key);
        CHECK(p != NULL);
        if (p != NULL && on->div == PERIOD)
            CHECK(hp_str_eq_c(jfr_event(p), on->name)); /* cpu / itimer: the event */
        if (p != NULL) {
            coll_t want_c = {0}, got = {0};
            coll_text(&want_c, json_string_value(val));
            CHECK(coll_pprof(&got, p->pprof.data, p->pprof.len, on->col, on->div));
            CHECK(coll_eq(&got, &want_c, key));
            CHECK(coll_total(&want_c) > 0);
            coll_fini(&want_c);
            coll_fini(&got);
            checked++;
        }
        hp_labels_fini(&want);
    }
    hp_arena_fini(&a);
    json_decref(root);
    return checked;
}

/* ------------------------------------------------------------------------
 * The pprof goldens: <input>.<profile type, ':' → '_'>.<hash>.pb.gz, each
 * what Pyroscope's SelectMergeProfile returns for the query whose labels
 * hash (Prometheus' labels.Hash: xxhash64 of name \xff value \xff …) to
 * <hash> — {} (every series) or one label the converter emitted.
 */

/* "memory_alloc_in_new_tlab_bytes_bytes_space_bytes" for column col of p. */
static void type_id(const hp_jfr_profile_t *p, uint32_t col, char *out, size_t cap)
{
    hp_pprof_t pp;
    hp_err_t err = {0};
    memset(&pp, 0, sizeof(pp));
    out[0] = '\0';
    if (hp_pprof_decode(&pp, p->pprof.data, p->pprof.len, NULL, &err) == 0 && col < pp.n_sample_types) {
        hp_str_t t = hp_pprof_str(&pp, pp.sample_types[col].type),
                 u = hp_pprof_str(&pp, pp.sample_types[col].unit);
        hp_str_t pt = hp_pprof_str(&pp, pp.period_type.type), pu = hp_pprof_str(&pp, pp.period_type.unit);
        snprintf(out, cap, "%s_%.*s_%.*s_%.*s_%.*s", p->metric, (int)t.n, t.p, (int)u.n, u.p, (int)pt.n, pt.p,
                 (int)pu.n, pu.p);
    }
    hp_pprof_fini(&pp);
}

static uint64_t query_hash(const hp_labels_t *q)
{
    hp_buf_t b = HP_BUF_INIT;
    for (size_t i = 0; i < q->n; i++) {
        hp_buf_append(&b, q->v[i].name.p, q->v[i].name.n);
        hp_buf_putc(&b, '\xff');
        hp_buf_append(&b, q->v[i].value.p, q->v[i].value.n);
        hp_buf_putc(&b, '\xff');
    }
    uint64_t h = XXH64(b.data ? b.data : (const uint8_t *)"", b.len, 0);
    hp_buf_fini(&b);
    return h;
}

/* The query among {} and each single label of r whose hash is h. */
static bool query_for(const hp_jfr_result_t *r, uint64_t h, hp_labels_t *q)
{
    hp_labels_reset(q);
    if (query_hash(q) == h)
        return true;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < r->v[i].labels.n; j++) {
            hp_labels_reset(q);
            hp_labels_add(q, r->v[i].labels.v[j].name, r->v[i].labels.v[j].value);
            if (query_hash(q) == h)
                return true;
        }
    }
    return false;
}

/* One golden pprof: the merge of the selected profiles must collapse to
 * the same stacks and values. */
static bool check_pprof_golden(const hp_jfr_result_t *r, const char *file, const char *type, uint64_t h)
{
    hp_labels_t q;
    hp_labels_init(&q);
    bool ok = query_for(r, h, &q);
    if (!ok)
        fprintf(stderr, "  %s: no query hashes to %llu\n", file, (unsigned long long)h);
    coll_t got = {0}, want = {0};
    int used = 0;
    for (size_t i = 0; ok && i < r->n; i++) {
        for (uint32_t col = 0; col < 2; col++) {
            char id[256];
            type_id(&r->v[i], col, id, sizeof(id));
            if (strcmp(id, type) == 0 && labels_include(&r->v[i], &q)) {
                ok = ok && coll_pprof(&got, r->v[i].pprof.data, r->v[i].pprof.len, col, 1);
                used++;
            }
        }
    }
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/%s", JFR_DIR, file);
    size_t n = 0;
    uint8_t *raw = load(rel, &n);
    ok = ok && raw != NULL && used > 0 && coll_pprof(&want, raw, n, 0, 1) && coll_eq(&got, &want, file);
    free(raw);
    coll_fini(&got);
    coll_fini(&want);
    hp_labels_fini(&q);
    return ok;
}

/* Checks every <input>.*.pb.gz golden; returns how many. */
static int check_pprof_goldens(const hp_jfr_result_t *r, const char *input)
{
    DIR *d = opendir(hp_testdata(JFR_DIR));
    REQUIRE(d != NULL);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s.jfr.gz", input);
    input = prefix;
    size_t in = strlen(input);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t fn = strlen(e->d_name);
        if (fn <= in + 7 || strncmp(e->d_name, input, in) != 0 || e->d_name[in] != '.' ||
            strcmp(e->d_name + fn - 6, ".pb.gz") != 0)
            continue;
        char mid[256];
        snprintf(mid, sizeof(mid), "%.*s", (int)(fn - in - 7), e->d_name + in + 1);
        char *dot = strrchr(mid, '.');
        REQUIRE(dot != NULL);
        *dot = '\0';
        for (char *p = mid; *p; p++)
            if (*p == ':')
                *p = '_';
        bool ok = check_pprof_golden(r, e->d_name, mid, strtoull(dot + 1, NULL, 10));
        if (!ok)
            fprintf(stderr, "  golden %s differs\n", e->d_name);
        CHECK(ok);
        checked++;
    }
    closedir(d);
    return checked;
}

/* Converts <input>.jfr.gz (with <input>.labels.pb.gz when given). */
static int convert_input(const char *input, bool with_labels, const hp_jfr_params_t *par, hp_jfr_result_t *r,
                         hp_err_t *err)
{
    char rel[512];
    size_t n = 0, ln = 0;
    snprintf(rel, sizeof(rel), "%s/%s.jfr.gz", JFR_DIR, input);
    uint8_t *jfr = load(rel, &n);
    snprintf(rel, sizeof(rel), "%s/%s.labels.pb.gz", JFR_DIR, input);
    uint8_t *labels = with_labels ? load(rel, &ln) : NULL;
    if (jfr == NULL || (with_labels && labels == NULL)) {
        free(jfr);
        free(labels);
        return HP_ENOTFOUND;
    }
    int rc = hp_jfr_convert(jfr, n, labels, ln, par, NULL, r, err);
    free(jfr);
    free(labels);
    return rc;
}

/* The profile's pprof header fields: times, period, mapping. */
static void check_header(const hp_jfr_profile_t *p)
{
    hp_pprof_t pp;
    hp_err_t err = {0};
    memset(&pp, 0, sizeof(pp));
    REQUIRE(hp_pprof_decode(&pp, p->pprof.data, p->pprof.len, NULL, &err) == 0);
    CHECK_EQ_INT(pp.time_nanos, FROM_NS);
    CHECK_EQ_INT(pp.duration_nanos, UNTIL_NS - FROM_NS);
    CHECK(pp.n_samples > 0);
    CHECK_EQ_INT(pp.n_mappings, 1);
    bool timed = strcmp(p->metric, "process_cpu") == 0 || strcmp(p->metric, "wall") == 0;
    CHECK_EQ_INT(pp.period, timed ? PERIOD : 0);
    hp_pprof_fini(&pp);
}

typedef struct golden {
    const char *input;
    bool labels;
    int profiles, json_series, pprofs;
} golden_t;

static const golden_t GOLDENS[] = {
    {"cortex-dev-01__kafka-0__cpu__0", false, 1, 1, 1},
    {"cortex-dev-01__kafka-0__cpu_lock_alloc__0", false, 2, 3, 3},
    {"dump1", true, 5, 5, 5},
};

static void test_goldens(void)
{
    for (size_t g = 0; g < HP_ARRAY_LEN(GOLDENS); g++) {
        const golden_t *gd = &GOLDENS[g];
        hp_jfr_result_t r;
        hp_err_t err = {0};
        fprintf(stderr, "  %s\n", gd->input);
        int rc = convert_input(gd->input, gd->labels, &PARAMS, &r, &err);
        if (rc != 0)
            fprintf(stderr, "  convert: %s\n", err.msg);
        REQUIRE(rc == 0);
        CHECK_EQ_INT(r.n, gd->profiles);
        for (size_t i = 0; i < r.n; i++)
            check_header(&r.v[i]);
        char rel[512];
        snprintf(rel, sizeof(rel), "%s/%s.json.gz", JFR_DIR, gd->input);
        CHECK_EQ_INT(check_json(&r, rel), gd->json_series);
        CHECK_EQ_INT(check_pprof_goldens(&r, gd->input), gd->pprofs);
        hp_jfr_result_fini(&r);
    }
}

/* ------------------------------------------------------------------------
 * Generated names: jfr-parser's own cases (TestMergeJVMGeneratedClasses,
 * TestMergeSharedLibs) and the names its expressions leave alone.
 */

static void check_merge(const char *in, const char *want)
{
    char out[256];
    size_t n = hp__jfr_merge_generated(in, strlen(in), out);
    out[n] = '\0';
    if (strcmp(n ? out : in, want) != 0)
        fprintf(stderr, "  %s → %s, want %s\n", in, n ? out : in, want);
    CHECK(strcmp(n ? out : in, want) == 0);
}

static void test_generated_names(void)
{
    static const char *const same[][2] = {
        {"org/example/rideshare/EnclosingClass$$Lambda$4/1283928880",
         "org/example/rideshare/EnclosingClass$$Lambda_"},
        {"org/example/rideshare/EnclosingClass$$Lambda$8/0x0000000800c01220",
         "org/example/rideshare/EnclosingClass$$Lambda_"},
        {"Fib$$Lambda.0x00007ffa600c4da0", "Fib$$Lambda_"},
        {"App$$Lambda$14.0x0000000800c03000", "App$$Lambda_"},
        {"java/util/concurrent/Executors$RunnableAdapter", "java/util/concurrent/Executors$RunnableAdapter"},
        {"jdk/internal/reflect/GeneratedMethodAccessor31", "jdk/internal/reflect/GeneratedMethodAccessor_"},
        /* JDK 17's JFR names hidden classes "<name>+<address>/<hash>": the
         * expression does not match, so Pyroscope keeps them as they are. */
        {"Busy$$Lambda$93+0x00007f7df0007a08/1908981452", "Busy$$Lambda$93+0x00007f7df0007a08/1908981452"},
        {"$$Lambda$1/0x1", "$$Lambda$1/0x1"},
        {"X$$Lambda", "X$$Lambda"},
        {"X$$Lambda$1/0x", "X$$Lambda$1/0x"},
        {"jdk/internal/reflect/GeneratedMethodAccessor", "jdk/internal/reflect/GeneratedMethodAccessor"},
    };
    static const char *const libs[][2] = {
        {"libasyncProfiler-linux-arm64-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"},
        {"libasyncProfiler-linux-musl-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so",
         "libasyncProfiler-_.so"},
        {"libasyncProfiler-linux-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"},
        {"libasyncProfiler-macos-17b9a1d8156277a98ccc871afa9a8f69215f92.so", "libasyncProfiler-_.so"},
        {"libamazonCorrettoCryptoProvider109b39cf33c563eb.so", "libamazonCorrettoCryptoProvider_.so"},
        {"amazonCorrettoCryptoProviderNativeLibraries.7382c2f79097f415/libcrypto.so",
         "libamazonCorrettoCryptoProvider_.so"},
        {"amazonCorrettoCryptoProviderNativeLibraries.24e42b0d5ecf5f50/libamazonCorrettoCryptoProvider.so",
         "libamazonCorrettoCryptoProvider_.so"},
        {"libzstd-jni-1.5.1-16931311898282279136.so", "libzstd-jni-_.so"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(same); i++)
        check_merge(same[i][0], same[i][1]);
    for (size_t i = 0; i < HP_ARRAY_LEN(libs); i++) {
        static const char *const wraps[][2] = {
            {"", ""}, {"", " (deleted)"}, {"/tmp/", " (deleted)"}, {"./tmp/", " (deleted)"}};
        for (size_t w = 0; w < HP_ARRAY_LEN(wraps); w++) {
            char in[256];
            snprintf(in, sizeof(in), "%s%s%s", wraps[w][0], libs[i][0], wraps[w][1]);
            check_merge(in, libs[i][1]);
        }
    }
    check_merge("libzstd-jni-1.5.1-16931311898282279136.so (deleted) ",
                "libzstd-jni-1.5.1-16931311898282279136.so (deleted) ");
}

/* ------------------------------------------------------------------------
 * A small JFR writer, to pin one rule at a time.
 */

typedef struct jw_field {
    const char *name;
    int type;
    bool cp, array;
} jw_field_t;

typedef struct jw_class {
    int id;
    const char *name;
    jw_field_t f[6];
} jw_class_t;

enum { C_LONG = 1, C_INT, C_BOOL, C_STRING, C_SYMBOL = 10, C_CLASS, C_METHOD, C_FRAME, C_STACK, C_STATE };
enum { C_EXEC = 20, C_SETTING, C_TLAB, C_PARK, C_NESTED, C_MONITOR, C_WALLCLOCK, C_LIVE };

static const jw_class_t CLASSES[] = {
    {C_LONG, "long", {{0}}},
    {C_INT, "int", {{0}}},
    {C_BOOL, "boolean", {{0}}},
    {C_STRING, "java.lang.String", {{0}}},
    {C_SYMBOL, "jdk.types.Symbol", {{"string", C_STRING}}},
    {C_CLASS, "java.lang.Class", {{"name", C_SYMBOL, true}}},
    {C_METHOD, "jdk.types.Method", {{"type", C_CLASS, true}, {"name", C_SYMBOL, true}}},
    {C_FRAME, "jdk.types.StackFrame", {{"method", C_METHOD, true}, {"lineNumber", C_INT}}},
    {C_STACK, "jdk.types.StackTrace", {{"truncated", C_BOOL}, {"frames", C_FRAME, false, true}}},
    {C_STATE, "jdk.types.ThreadState", {{"name", C_STRING}}},
    {C_EXEC,
     "jdk.ExecutionSample",
     {{"startTime", C_LONG},
      {"stackTrace", C_STACK, true},
      {"state", C_STATE, true},
      {"contextId", C_LONG},
      {"spanId", C_LONG},
      {"spanName", C_LONG}}},
    {C_SETTING, "jdk.ActiveSetting", {{"startTime", C_LONG}, {"name", C_STRING}, {"value", C_STRING}}},
    {C_TLAB,
     "jdk.ObjectAllocationInNewTLAB",
     {{"startTime", C_LONG}, {"stackTrace", C_STACK, true}, {"tlabSize", C_LONG}, {"contextId", C_LONG}}},
    {C_PARK, "jdk.ThreadPark", {{"stackTrace", C_STACK, true}, {"duration", C_LONG}}},
    {C_NESTED, "test.Nested", {{"self", C_NESTED}}}, /* endless without a byte: hostile */
    {C_MONITOR,
     "jdk.JavaMonitorEnter",
     {{"stackTrace", C_STACK, true}, {"duration", C_LONG}, {"contextId", C_LONG}}},
    {C_WALLCLOCK, "profiler.WallClockSample", {{"stackTrace", C_STACK, true}, {"samples", C_INT}}},
    {C_LIVE, "profiler.LiveObject", {{"stackTrace", C_STACK, true}, {"nested", C_NESTED}}},
};

typedef struct jw {
    hp_buf_t b; /* the recording */
    bool compressed;
    const char *strs[128]; /* the metadata's string table */
    size_t n_strs;
} jw_t;

static void put_leb(hp_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        hp_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    hp_buf_putc(b, (char)v);
}

static void put_be(hp_buf_t *b, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        hp_buf_putc(b, (char)(v >> (8 * i)));
}

static void jw_long(const jw_t *w, hp_buf_t *b, uint64_t v)
{
    if (w->compressed)
        put_leb(b, v);
    else
        put_be(b, v, 8);
}

static void jw_int(const jw_t *w, hp_buf_t *b, uint32_t v)
{
    if (w->compressed)
        put_leb(b, v);
    else
        put_be(b, v, 4);
}

static void jw_utf8(const jw_t *w, hp_buf_t *b, const char *s)
{
    hp_buf_putc(b, 3);
    jw_int(w, b, (uint32_t)strlen(s));
    hp_buf_puts(b, s);
}

static void jw_latin1(const jw_t *w, hp_buf_t *b, const char *s)
{
    hp_buf_putc(b, 5);
    jw_int(w, b, (uint32_t)strlen(s));
    hp_buf_puts(b, s);
}

static void jw_utf16(const jw_t *w, hp_buf_t *b, const char *ascii)
{
    hp_buf_putc(b, 4);
    jw_int(w, b, (uint32_t)strlen(ascii));
    for (const char *p = ascii; *p; p++) {
        if (w->compressed)
            put_leb(b, (uint8_t)*p);
        else
            put_be(b, (uint8_t)*p, 2);
    }
}

/* Appends an event: its size (counting itself), then body. */
static void jw_event(jw_t *w, const hp_buf_t *body)
{
    size_t size = body->len + 4;
    if (w->compressed)
        for (size_t k = 1; k < 6; k++)
            if (body->len + k < ((size_t)1 << (7 * k))) {
                size = body->len + k;
                break;
            }
    jw_int(w, &w->b, (uint32_t)size);
    hp_buf_append(&w->b, body->data, body->len);
}

static uint32_t jw_str_index(jw_t *w, const char *s)
{
    for (size_t i = 0; i < w->n_strs; i++)
        if (strcmp(w->strs[i], s) == 0)
            return (uint32_t)i;
    w->strs[w->n_strs] = s;
    return (uint32_t)w->n_strs++;
}

/* An element with (key, value) attributes and a child count. */
static void jw_element(jw_t *w, hp_buf_t *t, const char *name, const char *const *attrs, size_t n_attrs,
                       uint32_t n_children)
{
    jw_int(w, t, jw_str_index(w, name));
    jw_int(w, t, (uint32_t)n_attrs);
    for (size_t i = 0; i < n_attrs; i++) {
        jw_int(w, t, jw_str_index(w, attrs[2 * i]));
        jw_int(w, t, jw_str_index(w, attrs[2 * i + 1]));
    }
    jw_int(w, t, n_children);
}

static void jw_metadata(jw_t *w)
{
    static char ids[64][24];
    hp_buf_t t = HP_BUF_INIT, body = HP_BUF_INIT;
    w->n_strs = 0;
    jw_element(w, &t, "root", NULL, 0, 2);
    jw_element(w, &t, "metadata", NULL, 0, (uint32_t)HP_ARRAY_LEN(CLASSES));
    size_t k = 0;
    for (size_t i = 0; i < HP_ARRAY_LEN(CLASSES); i++) {
        const jw_class_t *c = &CLASSES[i];
        uint32_t nf = 0;
        while (nf < HP_ARRAY_LEN(c->f) && c->f[nf].name)
            nf++;
        snprintf(ids[k], sizeof(ids[k]), "%d", c->id);
        const char *attrs[] = {"name", c->name, "id", ids[k++]};
        jw_element(w, &t, "class", attrs, 2, nf);
        for (uint32_t j = 0; j < nf; j++) {
            snprintf(ids[k], sizeof(ids[k]), "%d", c->f[j].type);
            /* name, class, then constantPool and dimension when they apply */
            const char *fa[8] = {"name", c->f[j].name, "class", ids[k++]};
            size_t na = 2;
            if (c->f[j].cp)
                fa[2 * na] = "constantPool", fa[2 * na + 1] = "true", na++;
            if (c->f[j].array)
                fa[2 * na] = "dimension", fa[2 * na + 1] = "1", na++;
            jw_element(w, &t, "field", fa, na, 0);
        }
    }
    const char *region[] = {"locale", "en_US"};
    jw_element(w, &t, "region", region, 1, 0);
    for (int i = 0; i < 4; i++)
        jw_long(w, &body, 0); /* type 0, start, duration, ID */
    jw_int(w, &body, (uint32_t)w->n_strs);
    for (size_t i = 0; i < w->n_strs; i++)
        jw_utf8(w, &body, w->strs[i]);
    hp_buf_append(&body, t.data, t.len);
    jw_event(w, &body);
    hp_buf_fini(&t);
    hp_buf_fini(&body);
}

/* Starts a pool of class cls with n entries. */
static void jw_pool(const jw_t *w, hp_buf_t *b, int cls, uint32_t n)
{
    jw_long(w, b, (uint64_t)cls);
    jw_int(w, b, n);
}

/* The constant pools of the test recording (see test_rules). */
static void jw_pools(jw_t *w, int64_t delta, uint32_t pool_count)
{
    hp_buf_t b = HP_BUF_INIT;
    jw_long(w, &b, 1);
    jw_long(w, &b, 0);
    jw_long(w, &b, 0);
    jw_long(w, &b, (uint64_t)delta);
    hp_buf_putc(&b, 0);
    jw_int(w, &b, pool_count);
    jw_pool(w, &b, C_STRING, 1);
    jw_long(w, &b, 50);
    jw_utf8(w, &b, "App");
    jw_pool(w, &b, C_SYMBOL, 5);
    jw_long(w, &b, 1), hp_buf_putc(&b, 2), jw_long(w, &b, 50); /* "App" by reference */
    jw_long(w, &b, 2), jw_latin1(w, &b, "main");
    jw_long(w, &b, 3), jw_utf16(w, &b, "work");
    jw_long(w, &b, 4), jw_utf8(w, &b, "App$$Lambda$14/0x0000000800c03000");
    jw_long(w, &b, 5), jw_utf8(w, &b, "run");
    jw_pool(w, &b, C_SYMBOL, 1);
    jw_long(w, &b, 6), jw_utf8(w, &b, "java/lang/Thread");
    jw_pool(w, &b, C_CLASS, 3);
    for (int i = 0; i < 3; i++)
        jw_long(w, &b, (uint64_t)i + 1), jw_long(w, &b, (uint64_t[]){1, 4, 6}[i]);
    jw_pool(w, &b, C_METHOD, 5);
    static const uint64_t methods[5][2] = {{1, 2}, {1, 3}, {2, 5}, {3, 5}, {99, 2}};
    for (int i = 0; i < 5; i++)
        jw_long(w, &b, (uint64_t)i + 1), jw_long(w, &b, methods[i][0]), jw_long(w, &b, methods[i][1]);
    jw_pool(w, &b, C_STACK, 2);
    jw_long(w, &b, 1), hp_buf_putc(&b, 0), jw_int(w, &b, 2); /* work ← main */
    jw_long(w, &b, 2), jw_int(w, &b, 10), jw_long(w, &b, 1), jw_int(w, &b, 5);
    jw_long(w, &b, 2), hp_buf_putc(&b, 1), jw_int(w, &b, 3); /* lambda run ← (no class) ← Thread.run */
    jw_long(w, &b, 3), jw_int(w, &b, 1), jw_long(w, &b, 5), jw_int(w, &b, 1), jw_long(w, &b, 4),
        jw_int(w, &b, 2);
    jw_pool(w, &b, C_STATE, 2);
    jw_long(w, &b, 1), jw_utf8(w, &b, "STATE_RUNNABLE");
    jw_long(w, &b, 2), jw_utf8(w, &b, "STATE_SLEEPING");
    jw_event(w, &b);
    hp_buf_fini(&b);
}

/* An event of integer fields (the first is its class). */
static void jw_fields(jw_t *w, const uint64_t *f, size_t n)
{
    hp_buf_t b = HP_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        jw_long(w, &b, f[i]);
    jw_event(w, &b);
    hp_buf_fini(&b);
}

static void jw_exec(jw_t *w, uint64_t stack, uint64_t state, uint64_t ctx, uint64_t span, uint64_t span_name)
{
    hp_buf_t b = HP_BUF_INIT;
    uint64_t f[] = {C_EXEC, 0, stack, state, ctx, span, span_name};
    for (size_t i = 0; i < HP_ARRAY_LEN(f); i++)
        jw_long(w, &b, f[i]);
    jw_event(w, &b);
    hp_buf_fini(&b);
}

static void jw_tlab(jw_t *w, uint64_t stack, uint64_t size, uint64_t ctx)
{
    hp_buf_t b = HP_BUF_INIT;
    uint64_t f[] = {C_TLAB, 0, stack, size, ctx};
    for (size_t i = 0; i < HP_ARRAY_LEN(f); i++)
        jw_long(w, &b, f[i]);
    jw_event(w, &b);
    hp_buf_fini(&b);
}

static void jw_setting(jw_t *w, const char *name, const char *value)
{
    hp_buf_t b = HP_BUF_INIT;
    jw_long(w, &b, C_SETTING);
    jw_long(w, &b, 0);
    jw_utf8(w, &b, name);
    jw_utf8(w, &b, value);
    jw_event(w, &b);
    hp_buf_fini(&b);
}

typedef struct jw_opts {
    bool compressed, nested, more_kinds;
    int64_t delta;
    uint32_t pool_count;
} jw_opts_t;

/* The test chunk: metadata, a setting, samples, then the pools. */
static void jw_chunk(jw_t *w, const jw_opts_t *o)
{
    size_t start = w->b.len;
    w->compressed = o->compressed;
    for (int i = 0; i < HDR_BYTES; i++)
        hp_buf_putc(&w->b, 0);
    size_t meta = w->b.len - start;
    jw_metadata(w);
    jw_setting(w, "event", "wall");
    jw_exec(w, 1, 1, 0, 0, 0);      /* running */
    jw_exec(w, 1, 1, 7, 0x1234, 9); /* running, in context 7, a span */
    jw_exec(w, 1, 2, 0, 0, 0);      /* sleeping: wall only */
    jw_exec(w, 2, 1, 0, 0, 0);      /* the truncated stack */
    jw_exec(w, 99, 1, 0, 0, 0);     /* no such stack: dropped */
    if (o->more_kinds) {
        jw_fields(w, (const uint64_t[]){C_WALLCLOCK, 2, 3}, 3);    /* 3 wall samples */
        jw_fields(w, (const uint64_t[]){C_MONITOR, 1, 500, 7}, 4); /* 500 ns on a monitor */
        jw_fields(w, (const uint64_t[]){C_PARK, 1, 700}, 3);       /* 700 ns parked */
    }
    jw_tlab(w, 1, 4096, 7);
    jw_tlab(w, 1, 1000, 7);
    if (o->nested)
        jw_fields(w, (const uint64_t[]){C_LIVE, 1}, 2); /* then the endless object */
    size_t cpool = w->b.len - start;
    jw_pools(w, o->delta, o->pool_count ? o->pool_count : 7);
    uint8_t *h = w->b.data + start;
    memcpy(h, "FLR\0", 4);
    h[5] = 2; /* version 2.0 */
    size_t size = w->b.len - start;
    for (int i = 0; i < 8; i++) {
        h[8 + i] = (uint8_t)(size >> (56 - 8 * i));
        h[16 + i] = (uint8_t)(cpool >> (56 - 8 * i));
        h[24 + i] = (uint8_t)(meta >> (56 - 8 * i));
    }
    h[67] = o->compressed ? 1 : 0;
}

/* The test recording's LabelsSnapshot: context 7 = {thread=worker,
 * service_name=x, empty=""}, and string 9 = "GET /" (a span name). */
static void jw_labels(hp_buf_t *out)
{
    static const struct {
        int64_t id;
        const char *s;
    } strs[] = {{1, "thread"}, {2, "worker"}, {3, "service_name"}, {4, "x"},
                {5, "empty"},  {6, ""},       {9, "GET /"}};
    for (size_t i = 0; i < HP_ARRAY_LEN(strs); i++) {
        size_t m = hp_pb_begin_len(out, 2);
        hp_pb_put_uint(out, 1, (uint64_t)strs[i].id);
        hp_pb_put_bytes(out, 2, strs[i].s, strlen(strs[i].s));
        hp_pb_end_len(out, m);
    }
    size_t m = hp_pb_begin_len(out, 1);
    hp_pb_put_uint(out, 1, 7);
    size_t c = hp_pb_begin_len(out, 2);
    for (uint64_t k = 1; k <= 5; k += 2) {
        size_t e = hp_pb_begin_len(out, 1);
        hp_pb_put_uint(out, 1, k);
        hp_pb_put_uint(out, 2, k + 1);
        hp_pb_end_len(out, e);
    }
    hp_pb_end_len(out, c);
    hp_pb_end_len(out, m);
}

/* Converts the test recording written with o (twice when chunks == 2). */
static int convert_written(const jw_opts_t *o, int chunks, const hp_jfr_params_t *par,
                           const hp_jfr_limits_t *lim, hp_jfr_result_t *r, hp_err_t *err)
{
    jw_t w;
    memset(&w, 0, sizeof(w));
    hp_buf_t labels = HP_BUF_INIT;
    for (int i = 0; i < chunks; i++)
        jw_chunk(&w, o);
    jw_labels(&labels);
    int rc = hp_jfr_convert(w.b.data, w.b.len, labels.data, labels.len, par, lim, r, err);
    hp_buf_fini(&w.b);
    hp_buf_fini(&labels);
    return rc;
}

/* The collapsed stacks of column col of the profile (metric, type0,
 * labels given as "k=v" strings), or NULL text when there is none. */
static bool stacks_are(const hp_jfr_result_t *r, const char *metric, const char *type0,
                       const char *const *labels, size_t n_labels, uint32_t col, const char *want_text)
{
    hp_labels_t want;
    hp_labels_init(&want);
    for (size_t i = 0; i < n_labels; i++) {
        const char *eq = strchr(labels[i], '=');
        hp_labels_add(&want, (hp_str_t){labels[i], (size_t)(eq - labels[i])}, hp_str_c(eq + 1));
    }
    hp_labels_sort(&want);
    const hp_jfr_profile_t *p = find(r, metric, type0, &want);
    hp_labels_fini(&want);
    if (p == NULL) {
        fprintf(stderr, "  no %s/%s profile\n", metric, type0);
        return false;
    }
    coll_t got = {0}, w = {0};
    coll_text(&w, want_text);
    bool ok = coll_pprof(&got, p->pprof.data, p->pprof.len, col, 1) && coll_eq(&got, &w, metric);
    coll_fini(&got);
    coll_fini(&w);
    return ok;
}

#define L(...) (const char *const[]){__VA_ARGS__}, HP_ARRAY_LEN(((const char *const[]){__VA_ARGS__}))
#define NOL NULL, 0

/* The rules, on a recording written here: CPU skips sleeping threads,
 * "event=wall" adds wall samples, context labels and span_name make their
 * own series (series labels win, empty values vanish), spanId becomes a
 * profile_id sample label, frames without a class are dropped, lambda
 * classes merge, and every string encoding reads. */
static void check_rules(const hp_jfr_result_t *r, int64_t mul)
{
    char a[256], b[256], c[64], d[64];
    CHECK_EQ_INT(r->n, 5);
    snprintf(a, sizeof(a), "App.main;App.work %lld\njava/lang/Thread.run;App$$Lambda_.run %lld\n",
             (long long)(mul * PERIOD), (long long)(mul * PERIOD));
    CHECK(stacks_are(r, "process_cpu", "cpu", NOL, 0, a));
    snprintf(b, sizeof(b), "App.main;App.work %lld\njava/lang/Thread.run;App$$Lambda_.run %lld\n",
             (long long)(2 * mul * PERIOD), (long long)(mul * PERIOD));
    CHECK(stacks_are(r, "wall", "wall", NOL, 0, b));
    snprintf(c, sizeof(c), "App.main;App.work %lld\n", (long long)(mul * PERIOD));
    CHECK(stacks_are(r, "process_cpu", "cpu", L("span_name=GET /", "thread=worker"), 0, c));
    CHECK(stacks_are(r, "wall", "wall", L("span_name=GET /", "thread=worker"), 0, c));
    snprintf(d, sizeof(d), "App.main;App.work %lld\n", (long long)(2 * mul));
    CHECK(stacks_are(r, "memory", "alloc_in_new_tlab_objects", L("thread=worker"), 0, d));
    snprintf(d, sizeof(d), "App.main;App.work %lld\n", (long long)(5096 * mul));
    CHECK(stacks_are(r, "memory", "alloc_in_new_tlab_objects", L("thread=worker"), 1, d));
    for (size_t i = 0; i < r->n; i++)
        CHECK(hp_str_eq_c(jfr_event(&r->v[i]), "wall"));
}

/* The span's sample label: profile_id = the span ID in 16 hex digits. */
static void check_span_label(const hp_jfr_result_t *r)
{
    int found = 0;
    for (size_t i = 0; i < r->n; i++) {
        hp_pprof_t pp;
        hp_err_t err = {0};
        memset(&pp, 0, sizeof(pp));
        REQUIRE(hp_pprof_decode(&pp, r->v[i].pprof.data, r->v[i].pprof.len, NULL, &err) == 0);
        for (uint32_t j = 0; j < pp.n_labels; j++) {
            CHECK(hp_str_eq_c(hp_pprof_str(&pp, pp.labels[j].key), "profile_id"));
            CHECK(hp_str_eq_c(hp_pprof_str(&pp, pp.labels[j].str), "0000000000001234"));
            found++;
        }
        hp_pprof_fini(&pp);
    }
    CHECK_EQ_INT(found, 2); /* the CPU and the wall sample of that event */
}

static void test_rules(void)
{
    hp_labels_t series;
    hp_labels_init(&series);
    hp_labels_add(&series, HP_STR("service_name"), HP_STR("app"));
    hp_jfr_params_t par = PARAMS;
    par.series = &series;
    for (int compressed = 0; compressed < 2; compressed++) {
        jw_opts_t o = {compressed != 0, false, false, 0, 0};
        hp_jfr_result_t r;
        hp_err_t err = {0};
        int rc = convert_written(&o, 1, &par, NULL, &r, &err);
        if (rc != 0)
            fprintf(stderr, "  convert: %s\n", err.msg);
        REQUIRE(rc == 0);
        check_rules(&r, 1);
        check_span_label(&r);
        hp_jfr_result_fini(&r);
    }
    hp_labels_fini(&series);
}

/* Monitor, park and wall-clock events: their kinds, values and labels;
 * a wall-clock sample counts its samples (and, unlike in jfr-parser, whose
 * shared value slot keeps that count, the events after it still count 1). */
static void test_more_kinds(void)
{
    jw_opts_t o = {true, false, true, 0, 0};
    hp_jfr_result_t r;
    hp_err_t err = {0};
    REQUIRE(convert_written(&o, 1, &PARAMS, NULL, &r, &err) == 0);
    CHECK_EQ_INT(r.n, 7);
    CHECK(stacks_are(&r, "mutex", "contentions", L("service_name=x", "thread=worker"), 0,
                     "App.main;App.work 1\n"));
    CHECK(stacks_are(&r, "mutex", "contentions", L("service_name=x", "thread=worker"), 1,
                     "App.main;App.work 500\n"));
    CHECK(stacks_are(&r, "block", "contentions", NOL, 0, "App.main;App.work 1\n"));
    CHECK(stacks_are(&r, "block", "contentions", NOL, 1, "App.main;App.work 700\n"));
    char b[256];
    snprintf(b, sizeof(b), "App.main;App.work %lld\njava/lang/Thread.run;App$$Lambda_.run %lld\n",
             (long long)(2 * PERIOD), (long long)(4 * PERIOD));
    CHECK(stacks_are(&r, "wall", "wall", NOL, 0, b));
    CHECK(stacks_are(&r, "memory", "alloc_in_new_tlab_objects", L("service_name=x", "thread=worker"), 0,
                     "App.main;App.work 2\n"));
    hp_jfr_result_fini(&r);
}

/* Without series labels the context's service_name stays a label. */
static void test_context_labels_without_series(void)
{
    jw_opts_t o = {true, false, false, 0, 0};
    hp_jfr_result_t r;
    hp_err_t err = {0};
    REQUIRE(convert_written(&o, 1, &PARAMS, NULL, &r, &err) == 0);
    char d[64];
    snprintf(d, sizeof(d), "App.main;App.work %d\n", 2);
    CHECK(stacks_are(&r, "memory", "alloc_in_new_tlab_objects", L("service_name=x", "thread=worker"), 0, d));
    hp_jfr_result_fini(&r);
}

/* Every chunk counts: two copies of the chunk double every value. */
static void test_two_chunks(void)
{
    hp_labels_t series;
    hp_labels_init(&series);
    hp_labels_add(&series, HP_STR("service_name"), HP_STR("app"));
    hp_jfr_params_t par = PARAMS;
    par.series = &series;
    jw_opts_t o = {true, false, false, 0, 0};
    hp_jfr_result_t r;
    hp_err_t err = {0};
    REQUIRE(convert_written(&o, 2, &par, NULL, &r, &err) == 0);
    check_rules(&r, 2);
    hp_jfr_result_fini(&r);
    hp_labels_fini(&series);
}

/* Two real recordings back to back: the CPU totals add up. */
static void test_concatenated_recordings(void)
{
    size_t n1 = 0, n2 = 0;
    uint8_t *a = load(JFR_DIR "/cortex-dev-01__kafka-0__cpu__0.jfr.gz", &n1);
    uint8_t *b = load(JFR_DIR "/dump1.jfr.gz", &n2);
    REQUIRE(a != NULL && b != NULL);
    uint8_t *both = hp_xmalloc(n1 + n2);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    hp_jfr_result_t r;
    hp_err_t err = {0};
    REQUIRE(hp_jfr_convert(both, n1 + n2, NULL, 0, &PARAMS, NULL, &r, &err) == 0);
    REQUIRE(r.n == 1);
    coll_t c = {0};
    CHECK(coll_pprof(&c, r.v[0].pprof.data, r.v[0].pprof.len, 0, PERIOD));
    CHECK_EQ_INT(coll_total(&c), 478 + 2188);         /* the goldens' sample counts */
    CHECK(hp_str_eq_c(jfr_event(&r.v[0]), "itimer")); /* the last setting wins */
    coll_fini(&c);
    hp_jfr_result_fini(&r);
    free(a);
    free(b);
    free(both);
}

/* jfr-parser's WithTruncatedFrame marks a truncated stack at its root;
 * max_stack_depth keeps the leaf-most frames. */
static void test_truncation(void)
{
    jw_opts_t o = {true, false, false, 0, 0};
    hp_jfr_params_t par = PARAMS;
    par.mark_truncated = true;
    hp_jfr_result_t r;
    hp_err_t err = {0};
    REQUIRE(convert_written(&o, 1, &par, NULL, &r, &err) == 0);
    char a[256];
    snprintf(a, sizeof(a), "App.main;App.work %lld\n[truncated];java/lang/Thread.run;App$$Lambda_.run %lld\n",
             (long long)PERIOD, (long long)PERIOD);
    CHECK(stacks_are(&r, "process_cpu", "cpu", NOL, 0, a));
    hp_jfr_result_fini(&r);

    hp_jfr_limits_t lim = {0, 1};
    REQUIRE(convert_written(&o, 1, &PARAMS, &lim, &r, &err) == 0);
    snprintf(a, sizeof(a), "App.work %lld\nApp$$Lambda_.run %lld\n", (long long)PERIOD, (long long)PERIOD);
    CHECK(stacks_are(&r, "process_cpu", "cpu", NOL, 0, a));
    hp_jfr_result_fini(&r);
}

/* The output bound is kept. */
static void test_max_bytes_out(void)
{
    jw_opts_t o = {true, false, false, 0, 0};
    hp_jfr_limits_t lim = {64, 0};
    hp_jfr_result_t r;
    hp_err_t err = {0};
    CHECK_EQ_INT(convert_written(&o, 1, &PARAMS, &lim, &r, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "more than 64 bytes") != NULL);
    CHECK_EQ_INT(r.n, 0);
    hp_jfr_result_fini(&r);
}

/* Broken recordings: HP_EINVAL naming what is wrong. */
static void expect_einval(const uint8_t *p, size_t n, const uint8_t *labels, size_t ln, const char *needle)
{
    hp_jfr_result_t r;
    hp_err_t err = {0};
    int rc = hp_jfr_convert(p, n, labels, ln, &PARAMS, NULL, &r, &err);
    CHECK_EQ_INT(rc, HP_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, needle);
    CHECK(strstr(err.msg, needle) != NULL);
    CHECK_EQ_INT(r.n, 0);
    hp_jfr_result_fini(&r);
}

static void expect_written_einval(const jw_opts_t *o, const char *needle)
{
    jw_t w;
    memset(&w, 0, sizeof(w));
    jw_chunk(&w, o);
    expect_einval(w.b.data, w.b.len, NULL, 0, needle);
    hp_buf_fini(&w.b);
}

static void test_hostile(void)
{
    expect_einval((const uint8_t *)"", 0, NULL, 0, "jfr: chunk 1: the recording is empty");
    static const char zip[80] = "PK\3\4 is not a recording";
    expect_einval((const uint8_t *)zip, sizeof(zip), NULL, 0, "not a JFR chunk");
    jw_opts_t huge = {true, false, false, 0, 0x7fffffff};
    expect_written_einval(&huge, "constant pool at");
    jw_opts_t forward = {true, false, false, 10, 0};
    expect_written_einval(&forward, "does not point to an earlier pool");
    jw_opts_t nested = {true, true, false, 0, 0};
    expect_written_einval(&nested, "nested too deeply");

    jw_t w;
    memset(&w, 0, sizeof(w));
    jw_opts_t o = {true, false, false, 0, 0};
    jw_chunk(&w, &o);
    expect_einval(w.b.data, w.b.len - 1, NULL, 0, "jfr: chunk 1: size");
    uint8_t *tail = hp_xcalloc(w.b.len + 10, 1); /* ten bytes after the chunk */
    memcpy(tail, w.b.data, w.b.len);
    expect_einval(tail, w.b.len + 10, NULL, 0, "jfr: chunk 2: 10 bytes left");
    free(tail);
    expect_einval(w.b.data, w.b.len, (const uint8_t *)"\x0a\xff", 2, "labels: malformed LabelsSnapshot");
    expect_einval(w.b.data, w.b.len, (const uint8_t *)"\x12\x04\x08\x01\x12\x00\x12\x03\x08\x02\xff", 11,
                  "labels:");
    expect_einval(w.b.data, w.b.len, (const uint8_t *)"\x12\x05\x08\x01\x12\x01\xff", 7,
                  "labels: string 1 is not valid UTF-8");
    w.b.data[69 + 20] ^= 0x40; /* a metadata byte */
    hp_jfr_result_t r;
    hp_err_t err = {0};
    int rc = hp_jfr_convert(w.b.data, w.b.len, NULL, 0, &PARAMS, NULL, &r, &err);
    CHECK(rc == 0 || rc == HP_EINVAL);
    hp_jfr_result_fini(&r);
    hp_buf_fini(&w.b);
}

/* ------------------------------------------------------------------------
 * Mutation fuzz: whatever the bytes, 0 or HP_EINVAL, and on 0 profiles
 * that decode.
 */

/* xorshift64*: a fixed seed keeps every run the same. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* One random edit of p[0..*n): bit flips, random or boundary bytes, a
 * huge varint, a copied run, or a truncation. */
static void mutate(uint8_t *p, size_t *n, uint64_t *s)
{
    static const uint8_t edge[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff};
    if (*n == 0)
        return;
    size_t at = rnd(s) % *n;
    switch (rnd(s) % 6) {
    case 0:
        for (uint64_t k = rnd(s) % 8 + 1; k-- > 0;)
            p[rnd(s) % *n] ^= (uint8_t)(1u << (rnd(s) % 8));
        break;
    case 1:
        for (uint64_t k = rnd(s) % 4 + 1; k-- > 0;)
            p[rnd(s) % *n] = (uint8_t)rnd(s);
        break;
    case 2:
        p[at] = edge[rnd(s) % sizeof(edge)];
        break;
    case 3:
        for (size_t k = 0; k < 5 && at + k < *n; k++)
            p[at + k] = k < 4 ? 0xff : 0x0f; /* a varint near 2^32 */
        break;
    case 4: {
        size_t from = rnd(s) % *n, len = rnd(s) % 64;
        for (size_t k = 0; k < len && from + k < *n && at + k < *n; k++)
            p[at + k] = p[from + k];
        break;
    }
    default:
        *n = at;
    }
}

/* A successful conversion's output is sound: pprofs decode, labels are
 * UTF-8. */
static void check_sound(const hp_jfr_result_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        hp_pprof_t pp;
        hp_err_t err = {0};
        memset(&pp, 0, sizeof(pp));
        int rc = hp_pprof_decode(&pp, r->v[i].pprof.data, r->v[i].pprof.len, NULL, &err);
        if (rc != 0)
            fprintf(stderr, "  output does not decode: %s\n", err.msg);
        CHECK_EQ_INT(rc, 0);
        hp_pprof_fini(&pp);
        for (size_t j = 0; j < r->v[i].labels.n; j++)
            CHECK(hp_utf8_valid(r->v[i].labels.v[j].value.p, r->v[i].labels.v[j].value.n));
    }
}

/* Mutates jfr (and sometimes labels) iters times; returns the number of
 * conversions that succeeded. */
static int fuzz(const uint8_t *jfr, size_t n, const uint8_t *labels, size_t ln, int iters, uint64_t seed)
{
    uint8_t *p = hp_xmalloc(n + 1), *l = hp_xmalloc(ln + 1);
    int ok = 0;
    for (int i = 0; i < iters; i++) {
        size_t pn = n, lnn = ln;
        memcpy(p, jfr, n);
        if (ln)
            memcpy(l, labels, ln);
        for (uint64_t k = rnd(&seed) % 3 + 1; k-- > 0;)
            mutate(p, &pn, &seed);
        if (ln && rnd(&seed) % 8 == 0)
            mutate(l, &lnn, &seed);
        hp_jfr_result_t r;
        hp_err_t err = {0};
        hp_jfr_limits_t lim = {(size_t)16 << 20, (uint32_t)(rnd(&seed) % 3 == 0 ? 8 : 0)};
        int rc = hp_jfr_convert(p, pn, ln ? l : NULL, lnn, &PARAMS, &lim, &r, &err);
        if (rc != 0 && rc != HP_EINVAL)
            fprintf(stderr, "  iteration %d: rc %d: %s\n", i, rc, err.msg);
        CHECK(rc == 0 || rc == HP_EINVAL);
        CHECK(rc == 0 || strncmp(err.msg, "jfr: ", 5) == 0 || strncmp(err.msg, "labels: ", 8) == 0);
        if (rc == 0) {
            check_sound(&r);
            ok++;
        }
        hp_jfr_result_fini(&r);
    }
    free(p);
    free(l);
    return ok;
}

/* HP_JFR_FUZZ_ITERS and HP_JFR_FUZZ_SEED run more or other mutations. */
static int fuzz_iters(int dflt)
{
    const char *e = getenv("HP_JFR_FUZZ_ITERS");
    return e ? atoi(e) : dflt;
}

static uint64_t fuzz_seed(uint64_t dflt)
{
    const char *e = getenv("HP_JFR_FUZZ_SEED");
    return e ? dflt ^ hp_mix64(strtoull(e, NULL, 10)) : dflt;
}

/* The written recording: a chunk with compressed integers, one without. */
static void test_fuzz_written(void)
{
    jw_t w;
    memset(&w, 0, sizeof(w));
    jw_opts_t compressed = {true, false, true, 0, 0}, plain = {false, false, true, 0, 0};
    jw_chunk(&w, &compressed);
    jw_chunk(&w, &plain);
    hp_buf_t labels = HP_BUF_INIT;
    jw_labels(&labels);
    int iters = fuzz_iters(4000);
    int ok = fuzz(w.b.data, w.b.len, labels.data, labels.len, iters, fuzz_seed(0x9e3779b97f4a7c15ULL));
    fprintf(stderr, "  %d iterations, %d converted\n", iters, ok);
    CHECK(ok > 0); /* some mutations still convert: the fuzzing reached the converter */
    hp_buf_fini(&w.b);
    hp_buf_fini(&labels);
}

static void test_fuzz_recordings(void)
{
    size_t n = 0, ln = 0;
    uint8_t *jfr = load(JFR_DIR "/dump1.jfr.gz", &n);
    uint8_t *labels = load(JFR_DIR "/dump1.labels.pb.gz", &ln);
    REQUIRE(jfr != NULL && labels != NULL);
    int iters = fuzz_iters(4000) / 10;
    int ok = fuzz(jfr, n, labels, ln, iters, fuzz_seed(42));
    fprintf(stderr, "  dump1: %d iterations, %d converted\n", iters, ok);
    CHECK(ok > 0); /* some mutations still convert: the fuzzing reached the converter */
    free(jfr);
    jfr = load(JFR_DIR "/cortex-dev-01__kafka-0__cpu_lock_alloc__0.jfr.gz", &n);
    REQUIRE(jfr != NULL);
    ok = fuzz(jfr, n, NULL, 0, iters, fuzz_seed(7));
    fprintf(stderr, "  cpu_lock_alloc: %d iterations, %d converted\n", iters, ok);
    CHECK(ok > 0); /* some mutations still convert: the fuzzing reached the converter */
    free(jfr);
    free(labels);
}

/* Every prefix of a recording: nothing reads past the end. */
static void test_truncations(void)
{
    jw_t w;
    memset(&w, 0, sizeof(w));
    jw_opts_t o = {true, false, false, 0, 0};
    jw_chunk(&w, &o);
    for (size_t n = 0; n < w.b.len; n++) {
        uint8_t *p = hp_xmalloc(n + 1); /* exactly n bytes for ASan to guard */
        memcpy(p, w.b.data, n);
        hp_jfr_result_t r;
        hp_err_t err = {0};
        CHECK_EQ_INT(hp_jfr_convert(p, n, NULL, 0, &PARAMS, NULL, &r, &err), HP_EINVAL);
        hp_jfr_result_fini(&r);
        free(p);
    }
    hp_buf_fini(&w.b);
}

/* ------------------------------------------------------------------------
 * An outside recording (tests/tools/jfr/check.sh records one from a JVM):
 * HP_JFR_RECORDING names it; prints "cpu_samples N", "alloc_samples
 * <objects> <bytes>", "stack <collapsed> N" and "leaf <frame> N" lines on
 * stdout; HP_JFR_EXPECT (comma-separated frame names) must each
 * appear in some CPU stack, HP_JFR_EXPECT_SAMPLES must equal the count.
 */

static void print_leaves(const coll_t *c)
{
    coll_t leaves = {0};
    for (size_t i = 0; i < c->n; i++) {
        const char *leaf = strrchr(c->v[i].stack, ';');
        leaf = leaf ? leaf + 1 : c->v[i].stack;
        coll_add(&leaves, leaf, strlen(leaf), c->v[i].v);
    }
    coll_norm(&leaves);
    for (size_t i = 0; i < leaves.n; i++)
        printf("leaf %s %lld\n", leaves.v[i].stack, (long long)leaves.v[i].v);
    coll_fini(&leaves);
}

static void test_outside_recording(void)
{
    const char *path = getenv("HP_JFR_RECORDING");
    if (path == NULL)
        return;
    size_t n = 0;
    uint8_t *jfr = hp_test_read_file(path, &n);
    REQUIRE(jfr != NULL);
    hp_jfr_result_t r;
    hp_err_t err = {0};
    int rc = hp_jfr_convert(jfr, n, NULL, 0, &PARAMS, NULL, &r, &err);
    if (rc != 0)
        fprintf(stderr, "  convert: %s\n", err.msg);
    REQUIRE(rc == 0);
    coll_t cpu = {0}, alloc[2] = {{0}, {0}};
    for (size_t i = 0; i < r.n; i++) {
        if (hp_str_eq_c(sample_type(&r.v[i], 0, false), "alloc_sample_objects"))
            for (uint32_t col = 0; col < 2; col++)
                CHECK(coll_pprof(&alloc[col], r.v[i].pprof.data, r.v[i].pprof.len, col, 1));
        fprintf(stderr, "  profile %s/%.*s, %zu bytes\n", r.v[i].metric,
                (int)sample_type(&r.v[i], 0, false).n, sample_type(&r.v[i], 0, false).p, r.v[i].pprof.len);
        if (strcmp(r.v[i].metric, "process_cpu") == 0)
            CHECK(coll_pprof(&cpu, r.v[i].pprof.data, r.v[i].pprof.len, 0, PERIOD));
        check_sound(&r);
    }
    coll_norm(&cpu);
    printf("cpu_samples %lld\n", (long long)coll_total(&cpu));
    printf("alloc_samples %lld %lld\n", (long long)coll_total(&alloc[0]), (long long)coll_total(&alloc[1]));
    coll_fini(&alloc[0]);
    coll_fini(&alloc[1]);
    for (size_t i = 0; i < cpu.n; i++)
        printf("stack %s %lld\n", cpu.v[i].stack, (long long)cpu.v[i].v);
    print_leaves(&cpu);
    const char *expect = getenv("HP_JFR_EXPECT");
    for (const char *p = expect; p && *p;) {
        size_t k = strcspn(p, ",");
        bool seen = false;
        for (size_t i = 0; i < cpu.n && !seen; i++)
            seen = memmem(cpu.v[i].stack, strlen(cpu.v[i].stack), p, k) != NULL;
        if (!seen)
            fprintf(stderr, "  no CPU stack names %.*s\n", (int)k, p);
        CHECK(seen);
        p += k + (p[k] == ',');
    }
    const char *samples = getenv("HP_JFR_EXPECT_SAMPLES");
    if (samples)
        CHECK_EQ_INT(coll_total(&cpu), strtoll(samples, NULL, 10));
    coll_fini(&cpu);
    hp_jfr_result_fini(&r);
    free(jfr);
}

int main(void)
{
    HP_RUN(test_goldens);
    HP_RUN(test_generated_names);
    HP_RUN(test_rules);
    HP_RUN(test_context_labels_without_series);
    HP_RUN(test_more_kinds);
    HP_RUN(test_two_chunks);
    HP_RUN(test_concatenated_recordings);
    HP_RUN(test_truncation);
    HP_RUN(test_max_bytes_out);
    HP_RUN(test_hostile);
    HP_RUN(test_truncations);
    HP_RUN(test_fuzz_written);
    HP_RUN(test_fuzz_recordings);
    HP_RUN(test_outside_recording);
    return hp_test_done();
}
