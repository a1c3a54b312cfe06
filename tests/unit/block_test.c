/* Unit tests for block.h: blocks written from real profiles and read back by
 * byte range (series, postings, pages, symbols identical), with and without
 * span IDs, blocks of older versions, meta.json, ULIDs, and corrupted,
 * truncated, hand-crafted and fuzzed data objects. */
#include <zstd.h>

#include "block_internal.h" /* the format's constants; the page-fuzz hook */
#include "hotpath/block.h"
#include "hotpath/compress.h"
#include "hotpath/head.h"
#include "hotpath/pprof.h"
#include "hotpath/symdb.h"
#include "test.h"

#define MAX_SERIES 4096

/* ---- a fetch function over memory that counts what it serves ---- */

typedef struct mem {
    const uint8_t *p;
    size_t n;
    uint64_t bytes;
    int calls;
} mem_t;

static int mem_fetch(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    mem_t *m = ctx;
    if (off > m->n || len > m->n - off)
        return hp_err_set(err, HP_EINVAL, "range [%llu, +%llu) beyond %zu bytes", (unsigned long long)off,
                          (unsigned long long)len, m->n);
    hp_buf_append(out, m->p + off, len);
    m->bytes += len;
    m->calls++;
    return 0;
}

/* ---- a corpus: a symdb and series built from real profiles ---- */

typedef struct corpus {
    hp_symdb_t *db;
    hp_arena_t arena;
    hp_labels_t labels[MAX_SERIES];
    hp_block_series_in_t series[MAX_SERIES];
    hp_block_profile_in_t *profiles[MAX_SERIES];
    size_t n;
    size_t gz_bytes;
    int pods, variants; /* series per sample type, profiles per series */
} corpus_t;

static corpus_t *corpus_new(void)
{
    corpus_t *c = calloc(1, sizeof(*c));
    c->db = hp_symdb_new();
    hp_arena_init(&c->arena, 0);
    c->pods = 2, c->variants = 3;
    return c;
}

static void corpus_free(corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        for (size_t j = 0; j < c->series[i].n_profiles; j++) {
            free((void *)c->profiles[i][j].stacks);
            free((void *)c->profiles[i][j].values);
            free((void *)c->profiles[i][j].spans);
        }
        free(c->profiles[i]);
        hp_labels_fini(&c->labels[i]);
    }
    hp_arena_fini(&c->arena);
    hp_symdb_free(c->db);
    free(c);
}

/* A new series with labels k1=v1,… (NULL-terminated pairs) and room for np profiles. */
static size_t corpus_series(corpus_t *c, const char *const *kv, size_t np, int64_t period)
{
    size_t i = c->n++;
    hp_labels_init(&c->labels[i]);
    for (size_t k = 0; kv[k] != NULL; k += 2)
        hp_labels_add(&c->labels[i], hp_str_c(hp_arena_strndup(&c->arena, kv[k], strlen(kv[k]))),
                      hp_str_c(hp_arena_strndup(&c->arena, kv[k + 1], strlen(kv[k + 1]))));
    hp_labels_sort(&c->labels[i]);
    c->profiles[i] = calloc(np + 1, sizeof(hp_block_profile_in_t));
    c->series[i] = (hp_block_series_in_t){&c->labels[i], c->profiles[i], 0, period};
    return i;
}

typedef struct pair {
    uint32_t stack;
    int64_t value;
} pair_t;

static int pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* Appends a profile made of pairs (sorted, equal stacks summed, zeros dropped). */
static void corpus_profile(corpus_t *c, size_t si, int64_t t, pair_t *pairs, size_t n)
{
    hp_qsort(pairs, n, sizeof(*pairs), pair_cmp);
    hp_block_profile_in_t *p = &c->profiles[si][c->series[si].n_profiles++];
    uint32_t *stacks = malloc((n + 1) * sizeof(uint32_t));
    int64_t *values = malloc((n + 1) * sizeof(int64_t));
    uint32_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (m > 0 && stacks[m - 1] == pairs[k].stack)
            values[m - 1] = hp_add_wrap(values[m - 1], pairs[k].value);
        else
            stacks[m] = pairs[k].stack, values[m++] = pairs[k].value;
    }
    uint32_t o = 0;
    for (uint32_t k = 0; k < m; k++)
        if (values[k] != 0)
            stacks[o] = stacks[k], values[o++] = values[k];
    *p = (hp_block_profile_in_t){.t = t, .stacks = stacks, .values = values, .n = o};
    for (uint32_t k = 0; k < o; k++)
        p->total = hp_add_wrap(p->total, values[k]);
    for (int b = 0; b < 16; b++)
        p->id[b] = (uint8_t)(si * 31 + (size_t)c->series[si].n_profiles * 7 + (size_t)b);
}

/* "x/y/go_mix.cpu.pb.gz" → "go_mix" and "cpu". */
static void stem_kind(const char *rel, char *stem, char *kind)
{
    const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    const char *dot = strchr(base, '.');
    snprintf(stem, 64, "%.*s", (int)(dot - base), base);
    snprintf(kind, 64, "%.*s", (int)(strchr(dot + 1, '.') - dot - 1), dot + 1);
}

/* Decodes one gzipped pprof and imports it; per sample type and pod a
 * series of three profiles (sample subsets, scaled values). */
static bool corpus_add_file(corpus_t *c, const char *rel)
{
    size_t n = 0;
    unsigned char *gz = hp_test_read_file(hp_testdata(rel), &n);
    if (gz == NULL)
        return false;
    c->gz_bytes += n;
    hp_buf_t raw = HP_BUF_INIT;
    const uint8_t *data;
    size_t len;
    hp_err_t err;
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    bool ok = hp_maybe_gunzip(gz, n, 256u << 20, &raw, &data, &len, &err) == 0 &&
              hp_pprof_decode(&p, data, len, NULL, &err) == 0;
    if (ok) {
        uint32_t *loc_map = malloc((p.n_locations + 1) * sizeof(uint32_t));
        uint32_t *sstack = malloc((p.n_samples + 1) * sizeof(uint32_t));
        uint32_t *locs = malloc((p.n_sample_locs + 1) * sizeof(uint32_t));
        hp_symdb_import(c->db, &p, loc_map, 0);
        for (uint32_t s = 0; s < p.n_samples; s++) {
            const hp_pprof_sample_t *smp = &p.samples[s];
            for (uint32_t k = 0; k < smp->loc_n; k++)
                locs[k] = loc_map[p.sample_locs[smp->loc_off + k]];
            sstack[s] = hp_symdb_stack(c->db, locs, smp->loc_n);
        }
        char stem[64], kind[64], ptype[256];
        stem_kind(rel, stem, kind);
        pair_t *pairs = malloc((p.n_samples + 1) * sizeof(pair_t));
        for (uint32_t t = 0; t < p.n_sample_types; t++) {
            hp_str_t ty = hp_pprof_str(&p, p.sample_types[t].type),
                     un = hp_pprof_str(&p, p.sample_types[t].unit);
            snprintf(ptype, sizeof(ptype), "%s:%.*s:%.*s", kind, (int)ty.n, ty.p, (int)un.n, un.p);
            for (int pod = 0; pod < c->pods; pod++) {
                const char *kv[] = {"service_name",
                                    stem,
                                    "__name__",
                                    kind,
                                    "__profile_type__",
                                    ptype,
                                    "pod",
                                    pod ? "pod-b" : "pod-a",
                                    pod ? "region" : "env",
                                    pod ? "eu-west" : "prod",
                                    NULL};
                size_t si = corpus_series(c, kv, (size_t)c->variants, p.period);
                for (uint32_t k = 0; k < (uint32_t)c->variants; k++) {
                    size_t m = 0;
                    for (uint32_t s = 0; s < p.n_samples; s++)
                        if ((s + k + (uint32_t)pod) % 3 != 0 || k == 0)
                            pairs[m++] =
                                (pair_t){sstack[s], p.values[p.samples[s].val_off + t] * (int64_t)(k + 1)};
                    int64_t time = 1700000000000000000LL + (int64_t)k * 15000000000LL + (int64_t)si * 1000123;
                    corpus_profile(c, si, time, pairs, m);
                }
            }
        }
        free(pairs);
        free(loc_map);
        free(sstack);
        free(locs);
    } else {
        fprintf(stderr, "  %s: %s\n", rel, err.msg);
    }
    hp_pprof_fini(&p);
    hp_buf_fini(&raw);
    free(gz);
    return ok;
}

static const char *const big_files[] = {"corpus/go/go_mix.cpu.pb.gz",
                                        "corpus/go/go_mix.heap.pb.gz",
                                        "corpus/go/go_mix.goroutine.pb.gz",
                                        "corpus/go/go_labels.cpu.pb.gz",
                                        "corpus/go/go_jsonregexp.heap.pb.gz",
                                        "corpus/go/compile_ssa.cpu.pb.gz",
                                        "corpus/go/go_deep_1000hz.cpu.pb.gz",
                                        "corpus/go/go_mix.mutex.pb.gz",
                                        NULL};
static const char *const small_files[] = {"corpus/go/go_mix.mutex.pb.gz", "corpus/go/go_mix.block.pb.gz",
                                          "corpus/go/go_contention.cpu.pb.gz", NULL};

static const char *const fuzz_files[] = {"corpus/go/go_mix.mutex.pb.gz", "corpus/go/go_mix.goroutine.pb.gz",
                                         "corpus/go/go_mix.cpu.pb.gz", NULL};

static corpus_t *corpus_load_n(const char *const *files, int pods, int variants)
{
    corpus_t *c = corpus_new();
    c->pods = pods, c->variants = variants;
    for (size_t i = 0; files[i] != NULL; i++)
        if (!corpus_add_file(c, files[i])) {
            corpus_free(c);
            return NULL;
        }
    return c;
}

static corpus_t *corpus_load(const char *const *files)
{
    return corpus_load_n(files, 2, 3);
}

/* Writes c as a block of the given format version; data and meta_json
 * appended to. */
static int corpus_write_v(const corpus_t *c, uint32_t version, hp_block_meta_t *meta, hp_buf_t *data,
                          hp_buf_t *meta_json)
{
    memset(meta, 0, sizeof(*meta));
    hp_ulid_new(1700000000000, meta->ulid);
    snprintf(meta->tenant, sizeof(meta->tenant), "tenant-1");
    snprintf(meta->source, sizeof(meta->source), "ingester");
    meta->level = 1;
    hp_err_t err;
    int rc = version == HP_BLOCK_VERSION
                 ? hp_block_write(c->db, c->series, c->n, meta, data, meta_json, &err)
                 : hp__block_write_version(version, c->db, c->series, c->n, meta, data, meta_json, &err);
    if (rc != 0)
        fprintf(stderr, "  write: %s\n", err.msg);
    return rc;
}

static int corpus_write(const corpus_t *c, hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json)
{
    return corpus_write_v(c, HP_BLOCK_VERSION, meta, data, meta_json);
}

/* A span ID of the tests' small set (never 0). */
static uint64_t test_span(uint32_t k)
{
    return 0x9e3779b97f4a7c15ULL * (k % 5 + 1);
}

/* Gives p span IDs as an ingester stores them: a quarter of its samples
 * keep none, a quarter get one, and half are split into two samples of the
 * same stack with different spans (none and one, or two), the value shared
 * out — so stacks repeat, ascending by (stack, span), and the total stays. */
static void profile_add_spans(hp_block_profile_in_t *p)
{
    uint32_t *st = malloc((2 * (size_t)p->n + 1) * sizeof(uint32_t));
    int64_t *val = malloc((2 * (size_t)p->n + 1) * sizeof(int64_t));
    uint64_t *sp = malloc((2 * (size_t)p->n + 1) * sizeof(uint64_t));
    uint32_t m = 0;
    for (uint32_t k = 0; k < p->n; k++) {
        int64_t v = p->values[k], half = v / 2;
        if (k % 4 >= 2 && half != 0) {
            uint64_t a = k % 4 == 3 ? 0 : test_span(k), b = test_span(k + 1);
            st[m] = p->stacks[k], sp[m] = HP_MIN(a, b), val[m++] = half;
            st[m] = p->stacks[k], sp[m] = HP_MAX(a, b), val[m++] = v - half;
        } else {
            st[m] = p->stacks[k], sp[m] = k % 4 == 0 ? 0 : test_span(k), val[m++] = v;
        }
    }
    free((void *)p->stacks);
    free((void *)p->values);
    free((void *)p->spans);
    p->stacks = st, p->values = val, p->spans = sp, p->n = m;
}

/* Span IDs on every other profile of every series of c. */
static void corpus_add_spans(corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 1; j < c->series[i].n_profiles; j += 2)
            profile_add_spans(&c->profiles[i][j]);
}

static hp_block_t *open_mem(mem_t *m, const uint8_t *p, size_t n, uint64_t data_bytes, hp_err_t *err)
{
    *m = (mem_t){p, n, 0, 0};
    hp_block_t *b = NULL;
    if (hp_block_open("test", data_bytes, mem_fetch, m, &b, err) != 0)
        return NULL;
    return b;
}

static size_t entry_pos(const uint8_t *d, size_t n, uint32_t id);
static int read_all(const uint8_t *d, size_t n, uint64_t data_bytes, hp_err_t *err);

/* ---- checks ---- */

/* The corpus series with these labels, or NULL. */
static const hp_block_series_in_t *find_series(const corpus_t *c, const hp_labels_t *ls)
{
    for (size_t i = 0; i < c->n; i++)
        if (hp_labels_equal(c->series[i].labels, ls))
            return &c->series[i];
    return NULL;
}

static void check_page(hp_block_t *b, size_t i, const hp_block_series_in_t *s)
{
    hp_block_page_t page;
    hp_err_t err;
    int rc = hp_block_read_page(b, i, &page, &err);
    if (rc != 0)
        fprintf(stderr, "  page %zu: %s\n", i, err.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(page.n_profiles, s->n_profiles);
    for (size_t j = 0; j < page.n_profiles && j < s->n_profiles; j++) {
        const hp_block_profile_t *got = &page.profiles[j];
        const hp_block_profile_in_t *want = &s->profiles[j];
        CHECK_EQ_INT(got->t, want->t);
        CHECK(memcmp(got->id, want->id, 16) == 0);
        CHECK_EQ_INT(got->total, want->total);
        CHECK_EQ_INT(got->n, want->n);
        if (got->n == want->n && want->n > 0) {
            CHECK(memcmp(got->stacks, want->stacks, want->n * sizeof(uint32_t)) == 0);
            CHECK(memcmp(got->values, want->values, want->n * sizeof(int64_t)) == 0);
        }
        bool spans = false;
        for (uint32_t k = 0; want->spans && k < want->n; k++)
            spans = spans || want->spans[k] != 0;
        CHECK(spans == (got->spans != NULL)); /* a profile without spans has no span column */
        if (spans && got->spans && got->n == want->n)
            CHECK(memcmp(got->spans, want->spans, want->n * sizeof(uint64_t)) == 0);
    }
    hp_block_page_fini(&page);
}

/* Label sets compared pair by pair (name, then value), shorter first. */
static int labels_order(const hp_labels_t *a, const hp_labels_t *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = hp_str_cmp(a->v[i].name, b->v[i].name);
        if (c == 0)
            c = hp_str_cmp(a->v[i].value, b->v[i].value);
        if (c != 0)
            return c;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

/* Every series: labels sorted, fingerprint, period, times, page. */
static void check_series(hp_block_t *b, const corpus_t *c)
{
    size_t nonempty = 0;
    for (size_t i = 0; i < c->n; i++)
        nonempty += c->series[i].n_profiles > 0;
    REQUIRE(hp_block_n_series(b) == nonempty);
    for (size_t i = 0; i < hp_block_n_series(b); i++) {
        const hp_labels_t *ls = hp_block_series_labels(b, i);
        const hp_block_series_in_t *s = find_series(c, ls);
        REQUIRE(s != NULL);
        CHECK(i == 0 || labels_order(hp_block_series_labels(b, i - 1), ls) < 0);
        CHECK(hp_block_series_fingerprint(b, i) == hp_labels_fingerprint(s->labels));
        CHECK_EQ_INT(hp_block_series_period(b, i), s->period);
        CHECK_EQ_INT(hp_block_series_min_time(b, i), s->profiles[0].t);
        CHECK_EQ_INT(hp_block_series_max_time(b, i), s->profiles[s->n_profiles - 1].t);
        check_page(b, i, s);
    }
}

/* Postings: every label of every series listed, lists sorted and exact. */
static void check_postings(hp_block_t *b)
{
    size_t n_series = hp_block_n_series(b);
    for (size_t i = 0; i < n_series; i++) {
        const hp_labels_t *ls = hp_block_series_labels(b, i);
        for (size_t k = 0; k < ls->n; k++) {
            char name[256], value[256];
            snprintf(name, sizeof(name), "%.*s", (int)ls->v[k].name.n, ls->v[k].name.p);
            snprintf(value, sizeof(value), "%.*s", (int)ls->v[k].value.n, ls->v[k].value.p);
            const uint32_t *ids;
            size_t n, want = 0, found = 0;
            hp_block_postings(b, name, value, &ids, &n);
            for (size_t j = 0; j < n_series; j++) {
                hp_str_t v = hp_labels_get(hp_block_series_labels(b, j), name);
                want += v.p != NULL && hp_str_eq_c(v, value);
            }
            CHECK_EQ_INT(n, want);
            for (size_t j = 0; j < n; j++) {
                CHECK(j == 0 || ids[j] > ids[j - 1]);
                found += ids[j] == i;
            }
            CHECK_EQ_INT(found, 1);
        }
    }
    const uint32_t *ids;
    size_t n;
    hp_block_postings(b, "pod", "no-such-pod", &ids, &n);
    CHECK_EQ_INT(n, 0);
    hp_block_postings(b, "no_such_name", "x", &ids, &n);
    CHECK_EQ_INT(n, 0);
    hp_block_postings(b, "env", "prod", &ids, &n);
    CHECK(n > 0 && n < n_series);
}

static bool str_same(hp_str_t a, hp_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* The loaded symdb holds exactly the original's tables. */
static void check_symbol_tables(const hp_symdb_t *x, const hp_symdb_t *y)
{
    size_t ns = hp_symdb_n_stacks(x);
    REQUIRE(hp_symdb_n_stacks(y) == ns);
    uint32_t *p1 = malloc(ns * 4), *l1 = malloc(ns * 4), *p2 = malloc(ns * 4), *l2 = malloc(ns * 4);
    hp_symdb_arrays_t a, b;
    hp_symdb_arrays(x, &a, p1, l1);
    hp_symdb_arrays(y, &b, p2, l2);
    CHECK_EQ_INT(a.n_strings, b.n_strings);
    CHECK_EQ_INT(a.n_mappings, b.n_mappings);
    CHECK_EQ_INT(a.n_functions, b.n_functions);
    CHECK_EQ_INT(a.n_locations, b.n_locations);
    CHECK_EQ_INT(a.n_lines, b.n_lines);
    size_t bad = 0;
    for (size_t i = 0; i < a.n_strings && i < b.n_strings; i++)
        bad += !str_same(a.strings[i], b.strings[i]);
    for (size_t i = 0; i < a.n_mappings && i < b.n_mappings; i++) {
        const hp_symdb_mapping_t *m = &a.mappings[i], *o = &b.mappings[i];
        bad += m->memory_start != o->memory_start || m->memory_limit != o->memory_limit ||
               m->file_offset != o->file_offset || m->filename != o->filename || m->build_id != o->build_id ||
               m->flags != o->flags;
    }
    for (size_t i = 0; i < a.n_functions && i < b.n_functions; i++) {
        const hp_symdb_function_t *f = &a.functions[i], *o = &b.functions[i];
        bad += f->name != o->name || f->system_name != o->system_name || f->filename != o->filename ||
               f->start_line != o->start_line;
    }
    for (size_t i = 0; i < a.n_locations && i < b.n_locations; i++) {
        const hp_symdb_location_t *l = &a.locations[i], *o = &b.locations[i];
        bad += l->address != o->address || l->mapping != o->mapping || l->line_off != o->line_off ||
               l->line_n != o->line_n;
    }
    for (size_t i = 0; i < a.n_lines && i < b.n_lines; i++)
        bad += a.lines[i].function != b.lines[i].function || a.lines[i].line != b.lines[i].line;
    for (size_t i = 1; i < ns; i++)
        bad += p1[i] != p2[i] || l1[i] != l2[i];
    CHECK_EQ_INT(bad, 0);
    free(p1), free(l1), free(p2), free(l2);
}

/* Walks stack s to the root in both symdbs: same function names and lines. */
static size_t walk_differs(const hp_symdb_t *x, const hp_symdb_t *y, uint32_t s)
{
    size_t bad = 0, depth = 0;
    while (s != 0 && depth++ < 100000) {
        const hp_symdb_location_t *l1 = hp_symdb_location(x, hp_symdb_stack_location(x, s));
        const hp_symdb_location_t *l2 = hp_symdb_location(y, hp_symdb_stack_location(y, s));
        if (l1->line_n != l2->line_n || l1->address != l2->address)
            return 1;
        const hp_symdb_line_t *a = hp_symdb_lines(x, l1), *b = hp_symdb_lines(y, l2);
        for (uint32_t k = 0; k < l1->line_n; k++)
            bad += !str_same(hp_symdb_function_name(x, a[k].function),
                             hp_symdb_function_name(y, b[k].function)) ||
                   a[k].line != b[k].line;
        s = hp_symdb_stack_parent(x, s);
    }
    return bad;
}

/* Every stack every page uses resolves to the same frames. */
static void check_stacks(hp_block_t *b, const corpus_t *c, const hp_symdb_t *loaded)
{
    size_t bad = 0, walked = 0;
    for (size_t i = 0; i < hp_block_n_series(b); i++) {
        hp_block_page_t page;
        hp_err_t err;
        REQUIRE(hp_block_read_page(b, i, &page, &err) == 0);
        for (size_t j = 0; j < page.n_profiles; j++)
            for (uint32_t k = 0; k < page.profiles[j].n; k++, walked++)
                bad += walk_differs(c->db, loaded, page.profiles[j].stacks[k]);
        hp_block_page_fini(&page);
    }
    CHECK(walked > 1000);
    CHECK_EQ_INT(bad, 0);
}

/* ---- round trip ---- */

static void test_crc32c(void)
{
    CHECK(hp__crc32c(0, "123456789", 9) == 0xe3069283u); /* the standard check value */
    CHECK(hp__crc32c(hp__crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);
    CHECK(hp__crc32c(0, "", 0) == 0);
}

static void test_roundtrip(void)
{
    corpus_t *c = corpus_load(big_files);
    REQUIRE(c != NULL);
    REQUIRE(c->n > 30);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT;
    hp_buf_append(&data, "prefix", 6); /* the writer appends */
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    CHECK_EQ_INT(meta.data_bytes, data.len - 6);
    CHECK_EQ_INT(meta.num_series, c->n);
    size_t np = 0, nsamp = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < c->n; i++) {
        np += c->series[i].n_profiles;
        for (size_t j = 0; j < c->series[i].n_profiles; j++) {
            nsamp += c->series[i].profiles[j].n;
            lo = HP_MIN(lo, c->series[i].profiles[j].t);
            hi = HP_MAX(hi, c->series[i].profiles[j].t);
        }
    }
    CHECK_EQ_INT(meta.num_profiles, np);
    CHECK_EQ_INT(meta.num_samples, nsamp);
    CHECK_EQ_INT(meta.min_time_ms, lo / 1000000);
    CHECK_EQ_INT(meta.max_time_ms, hi / 1000000);
    CHECK_EQ_INT(meta.version, HP_BLOCK_VERSION);
    printf("block: %zu series, %zu profiles, %zu samples: data %zu bytes; pprofs in %zu bytes gzipped\n",
           c->n, np, nsamp, data.len - 6, c->gz_bytes);

    mem_t m;
    hp_err_t err;
    hp_block_t *b = open_mem(&m, data.data + 6, data.len - 6, data.len - 6, &err);
    if (b == NULL)
        fprintf(stderr, "  open: %s\n", err.msg);
    REQUIRE(b != NULL);
    CHECK(m.calls <= 2); /* footer + table in one range, index + postings in another */
    check_series(b, c);
    check_postings(b);
    hp_symdb_t *loaded = NULL;
    int rc = hp_block_read_symbols(b, &loaded, &err);
    if (rc != 0)
        fprintf(stderr, "  symbols: %s\n", err.msg);
    REQUIRE(rc == 0);
    check_symbol_tables(c->db, loaded);
    check_stacks(b, c, loaded);
    hp_block_page_t page;
    CHECK_EQ_INT(hp_block_read_page(b, hp_block_n_series(b), &page, &err), HP_EINVAL);
    hp_block_page_fini(&page);
    hp_symdb_free(loaded);
    hp_block_close(b);

    /* meta.json round trip */
    hp_block_meta_t back;
    rc = hp_block_meta_parse(mj.data, mj.len, &back, &err);
    if (rc != 0)
        fprintf(stderr, "  meta: %s\n%.*s\n", err.msg, (int)mj.len, (const char *)mj.data);
    REQUIRE(rc == 0);
    CHECK(memcmp(&back, &meta, sizeof(meta)) == 0);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* Sizes of a block holding each input profile once, by section. */
static void test_sizes(void)
{
    corpus_t *c = corpus_load_n(big_files, 1, 1);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    printf("sizes: %zu pprofs (%zu bytes gzipped) as %zu series of one profile: data %zu bytes (", (size_t)8,
           c->gz_bytes, c->n, data.len);
    for (uint32_t id = 1; id <= 4; id++) {
        size_t e = entry_pos(data.data, data.len, id);
        printf("%s%s %llu→%llu", id > 1 ? ", " : "", hp__blk_section_name(id),
               (unsigned long long)hp__get_le64(data.data + e + 24),
               (unsigned long long)hp__get_le64(data.data + e + 16));
    }
    printf("); meta.json %zu bytes\n", mj.len);
    CHECK(data.len < c->gz_bytes);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* Writing is deterministic, and input order does not matter. */
static void test_order_and_inputs(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t d1 = HP_BUF_INIT, d2 = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &d1, &mj) == 0);
    /* reverse the series: the block is the same bytes */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->n / 2; i++) {
            hp_block_series_in_t t = c->series[i];
            c->series[i] = c->series[c->n - 1 - i];
            c->series[c->n - 1 - i] = t;
        }
        if (pass == 0)
            REQUIRE(corpus_write(c, &meta, &d2, &mj) == 0);
    }
    CHECK(d1.len == d2.len && memcmp(d1.data, d2.data, d1.len) == 0);

    hp_err_t err;
    hp_block_meta_t m2 = meta;
    size_t len = d2.len;
    /* a duplicate series */
    hp_block_series_in_t s1 = c->series[1];
    c->series[1] = c->series[0];
    CHECK_EQ_INT(hp_block_write(c->db, c->series, c->n, &m2, &d2, &mj, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "twice") != NULL);
    CHECK_EQ_INT(d2.len, len); /* nothing left behind */
    c->series[1] = s1;
    size_t si = 0;
    while (si + 1 < c->n && c->series[si].profiles[0].n < 2)
        si++;
    /* profiles out of time order are sorted (an ingester keeps arrival
     * order): the same block; then a stack out of range, unsorted stacks */
    hp_block_profile_in_t *p = (hp_block_profile_in_t *)c->series[si].profiles;
    hp_block_profile_in_t p0 = p[0];
    p[0] = p[2], p[2] = p0;
    hp_buf_t d3 = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &d3, &mj) == 0);
    CHECK(d1.len == d3.len && memcmp(d1.data, d3.data, d1.len) == 0);
    hp_buf_fini(&d3);
    p[2] = p[0], p[0] = p0;
    REQUIRE(p[0].n >= 2);
    uint32_t *st = (uint32_t *)p[0].stacks;
    uint32_t s0 = st[0];
    st[0] = (uint32_t)hp_symdb_n_stacks(c->db);
    CHECK_EQ_INT(hp_block_write(c->db, c->series, c->n, &m2, &d2, &mj, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "out of range") != NULL);
    st[0] = st[p[0].n - 1];
    st[p[0].n - 1] = s0;
    CHECK_EQ_INT(hp_block_write(c->db, c->series, c->n, &m2, &d2, &mj, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "not sorted") != NULL);
    st[p[0].n - 1] = st[0];
    st[0] = s0;

    /* an empty block, and series without profiles skipped */
    hp_buf_reset(&d1);
    for (size_t i = 0; i < c->n; i++)
        c->series[i].n_profiles = 0;
    REQUIRE(corpus_write(c, &meta, &d1, &mj) == 0);
    CHECK_EQ_INT(meta.num_series, 0);
    mem_t m;
    hp_block_t *b = open_mem(&m, d1.data, d1.len, d1.len, &err);
    REQUIRE(b != NULL);
    CHECK_EQ_INT(hp_block_n_series(b), 0);
    hp_symdb_t *loaded = NULL;
    CHECK_EQ_INT(hp_block_read_symbols(b, &loaded, &err), 0);
    CHECK(loaded != NULL && hp_symdb_n_stacks(loaded) == hp_symdb_n_stacks(c->db));
    hp_symdb_free(loaded);
    hp_block_close(b);
    for (size_t i = 0; i < c->n; i++)
        c->series[i].n_profiles = 3;
    hp_buf_fini(&d1);
    hp_buf_fini(&d2);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* Opening a block of many series and reading one page fetches little. */
static void test_ranged_reads(void)
{
    corpus_t *c = corpus_load(small_files + 2); /* its stacks, and 2000 more series using them */
    REQUIRE(c != NULL);
    size_t nstk = hp_symdb_n_stacks(c->db);
    uint64_t x = 88172645463325252ULL;
    pair_t *pairs = malloc(200 * sizeof(pair_t));
    for (size_t i = 0; i < 2000; i++) {
        char svc[32], pod[32];
        snprintf(svc, sizeof(svc), "svc-%zu", i % 50);
        snprintf(pod, sizeof(pod), "pod-%05zu", i);
        const char *kv[] = {"service_name", svc, "pod", pod, "__name__", "cpu", NULL};
        size_t si = corpus_series(c, kv, 2, 10000000);
        for (int k = 0; k < 2; k++) {
            for (int j = 0; j < 200; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                pairs[j] = (pair_t){(uint32_t)(x % nstk), (int64_t)(x >> 40) + 1};
            }
            corpus_profile(c, si, 1700000000000000000LL + k * 10000000000LL, pairs, 200);
        }
    }
    free(pairs);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    mem_t m;
    hp_err_t err;
    hp_block_t *b = open_mem(&m, data.data, data.len, data.len, &err);
    REQUIRE(b != NULL);
    uint64_t at_open = m.bytes;
    const uint32_t *ids;
    size_t n;
    hp_block_postings(b, "pod", "pod-01234", &ids, &n);
    REQUIRE(n == 1);
    const hp_block_series_in_t *want = find_series(c, hp_block_series_labels(b, ids[0]));
    REQUIRE(want != NULL);
    check_page(b, ids[0], want);
    printf("ranged: %zu series, data %zu bytes; open fetched %llu, open + one page %llu (%d fetches)\n",
           hp_block_n_series(b), data.len, (unsigned long long)at_open, (unsigned long long)m.bytes, m.calls);
    CHECK(m.bytes * 10 < data.len);
    CHECK_EQ_INT(m.calls, 3);
    hp_block_close(b);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* A long series is cut into pages: a range read decodes only the pages
 * that overlap the range, fetches less, and still returns every profile in
 * it, in order. */
static void test_pages_by_time(void)
{
    corpus_t *c = corpus_load(small_files + 2);
    REQUIRE(c != NULL);
    size_t nstk = hp_symdb_n_stacks(c->db), np = 3000;
    const int64_t t0 = 1700000000000000000LL, step = 10000000000LL;
    const char *kv[] = {"service_name", "long", "__name__", "cpu", NULL};
    size_t si = corpus_series(c, kv, np, 10000000);
    uint64_t x = 88172645463325252ULL;
    pair_t pairs[150];
    for (size_t j = 0; j < np; j++) {
        for (int k = 0; k < 150; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            pairs[k] = (pair_t){(uint32_t)(x % nstk), (int64_t)(x >> 40) + 1};
        }
        corpus_profile(c, si, t0 + (int64_t)j * step, pairs, 150);
    }
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    mem_t m;
    hp_err_t err;
    hp_block_t *b = open_mem(&m, data.data, data.len, data.len, &err);
    REQUIRE(b != NULL);
    const uint32_t *ids;
    size_t n;
    hp_block_postings(b, "service_name", "long", &ids, &n);
    REQUIRE(n == 1);
    const hp__blk_series_t *bs = &b->series[ids[0]];
    CHECK(bs->n_pages >= 4);
    check_page(b, ids[0], &c->series[si]); /* all pages together: the whole series */
    uint64_t before = m.bytes;
    hp_block_page_t all;
    REQUIRE(hp_block_read_page(b, ids[0], &all, &err) == 0);
    uint64_t whole = m.bytes - before;
    hp_block_page_fini(&all);

    hp_block_page_t pg;
    int64_t lo = t0 + 1000 * step, hi = t0 + 1100 * step;
    before = m.bytes;
    REQUIRE(hp_block_read_range(b, ids[0], lo, hi, &pg, &err) == 0);
    uint64_t part = m.bytes - before;
    size_t in_range = 0, first = SIZE_MAX;
    for (size_t k = 0; k < pg.n_profiles; k++) {
        in_range += pg.profiles[k].t >= lo && pg.profiles[k].t <= hi;
        if (k > 0)
            CHECK(pg.profiles[k].t > pg.profiles[k - 1].t);
    }
    CHECK_EQ_INT(in_range, 101);
    CHECK(pg.n_profiles >= 101 && pg.n_profiles < np / 2);
    if (pg.n_profiles > 0)
        first = (size_t)((pg.profiles[0].t - t0) / step);
    for (size_t k = 0; first != SIZE_MAX && k < pg.n_profiles; k++) { /* a run of the series, unchanged */
        const hp_block_profile_in_t *w = &c->series[si].profiles[first + k];
        CHECK(pg.profiles[k].t == w->t && pg.profiles[k].total == w->total && pg.profiles[k].n == w->n);
    }
    printf("pages: %zu profiles in %zu pages; a 100-profile range read %zu profiles, fetched %llu of %llu "
           "bytes\n",
           np, bs->n_pages, pg.n_profiles, (unsigned long long)part, (unsigned long long)whole);
    CHECK(part * 2 < whole);
    hp_block_page_fini(&pg);
    /* nothing in range: no page is read */
    before = m.bytes;
    REQUIRE(hp_block_read_range(b, ids[0], t0 - 2 * step, t0 - step, &pg, &err) == 0);
    CHECK(pg.n_profiles == 0 && m.bytes == before);
    hp_block_page_fini(&pg);
    REQUIRE(hp_block_read_range(b, ids[0], t0 + (int64_t)np * step, INT64_MAX, &pg, &err) == 0);
    CHECK_EQ_INT(pg.n_profiles, 0);
    hp_block_page_fini(&pg);
    hp_block_close(b);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* ---- span IDs (version 3) ---- */

/* The first profile of c with two samples of one stack (different
 * spans); its index of the second one in *k. */
static hp_block_profile_in_t *repeated_stack(corpus_t *c, uint32_t *k)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->series[i].n_profiles; j++) {
            hp_block_profile_in_t *p = &c->profiles[i][j];
            for (*k = 1; p->spans && *k < p->n; ++*k)
                if (p->stacks[*k] == p->stacks[*k - 1] && p->spans[*k - 1] != 0)
                    return p;
        }
    return NULL;
}

/* Series i of the transient head of block b holds the spans of the
 * corpus series s, zeros where a profile has none. */
static void check_head_spans(hp_block_t *b, hp_symdb_t *db, const corpus_t *c)
{
    hp_select_t q;
    memset(&q, 0, sizeof(q));
    hp_err_t err;
    REQUIRE(hp_selector_parse(HP_STR("{}"), &q.sel, &err) == 0);
    q.start_ns = INT64_MIN, q.end_ns = INT64_MAX;
    hp_head_t *h = NULL;
    REQUIRE(hp_head_from_block(b, db, 7, "tenant-1", &q, &h, &err) == 0);
    size_t checked = 0;
    for (size_t i = 0; i < h->n_series; i++) {
        const hp_series_t *hs = h->series[i];
        const hp_block_series_in_t *s = find_series(c, &hs->labels);
        REQUIRE(s != NULL && hs->n_profiles == s->n_profiles);
        bool any = false;
        for (size_t j = 0; j < s->n_profiles; j++)
            for (uint32_t k = 0; s->profiles[j].spans && k < s->profiles[j].n; k++)
                any = any || s->profiles[j].spans[k] != 0;
        CHECK(any == (hs->spans != NULL)); /* a series without spans has no span column */
        for (size_t j = 0; hs->spans && j < hs->n_profiles; j++) {
            const hp_block_profile_in_t *w = &s->profiles[j];
            for (uint32_t k = 0; k < w->n; k++, checked++)
                CHECK_EQ_INT(hs->spans[hs->profiles[j].off + k], w->spans ? w->spans[k] : 0);
        }
    }
    CHECK(checked > 0);
    hp_head_unref(h);
    hp_select_fini(&q);
}

/* Version 3 keeps span IDs: every other profile carries some (stacks
 * repeat with different spans) and they read back exactly, into a
 * transient head too; profiles without spans have no span column. The
 * writer refuses what the format cannot hold. */
static void test_spans(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t plain = HP_BUF_INIT, data = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &plain, &mj) == 0);
    corpus_add_spans(c);
    size_t nsamp = 0;
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->series[i].n_profiles; j++)
            nsamp += c->series[i].profiles[j].n;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    CHECK_EQ_INT(meta.num_samples, nsamp);
    CHECK_EQ_INT(meta.version, 3);
    printf("spans: a %zu-byte block is %zu bytes with spans on every other profile\n", plain.len, data.len);
    mem_t m;
    hp_err_t err;
    hp_block_t *b = open_mem(&m, data.data, data.len, data.len, &err);
    REQUIRE(b != NULL);
    check_series(b, c);
    CHECK_EQ_INT(read_all(data.data, data.len, data.len, &err), 0);
    hp_symdb_t *db = NULL;
    REQUIRE(hp_block_read_symbols(b, &db, &err) == 0);
    check_head_spans(b, db, c);
    hp_symdb_free(db);
    hp_block_close(b);

    /* version 2 has no span IDs; a (stack, span) pair twice, or spans
     * descending within a stack, is not a valid profile */
    hp_buf_t d2 = HP_BUF_INIT;
    CHECK_EQ_INT(hp__block_write_version(2, c->db, c->series, c->n, &meta, &d2, &mj, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "version 2 has no span IDs") != NULL);
    uint32_t k;
    hp_block_profile_in_t *p = repeated_stack(c, &k);
    REQUIRE(p != NULL);
    uint64_t *sp = (uint64_t *)p->spans, saved = sp[k];
    sp[k] = sp[k - 1];
    CHECK_EQ_INT(hp_block_write(c->db, c->series, c->n, &meta, &d2, &mj, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "not after the sample before") != NULL);
    sp[k] = sp[k - 1] - 1;
    CHECK_EQ_INT(hp_block_write(c->db, c->series, c->n, &meta, &d2, &mj, &err), HP_EINVAL);
    sp[k] = saved;
    CHECK_EQ_INT(d2.len, 0);
    hp_buf_fini(&d2);
    hp_buf_fini(&plain);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* A selection's transient head takes only the series the block's
 * postings allow, and still every series the selector matches. */
static void test_block_candidates(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    mem_t m;
    hp_err_t err;
    hp_block_t *b = open_mem(&m, data.data, data.len, data.len, &err);
    REQUIRE(b != NULL);
    hp_symdb_t *db = NULL;
    REQUIRE(hp_block_read_symbols(b, &db, &err) == 0);
    static const struct {
        const char *sel;
        bool narrows;
    } cases[] = {
        {"{pod=\"pod-a\"}", true},          {"{pod=\"pod-b\",region=\"eu-west\"}", true},
        {"{pod=\"nope\"}", true},           {"{service_name=~\".+\"}", false},
        {"{env=\"\"}", false},              {"{pod!=\"pod-a\"}", false},
    };
    for (size_t k = 0; k < HP_ARRAY_LEN(cases); k++) {
        hp_select_t q;
        memset(&q, 0, sizeof(q));
        REQUIRE(hp_selector_parse(hp_str_c(cases[k].sel), &q.sel, &err) == 0);
        q.start_ns = INT64_MIN, q.end_ns = INT64_MAX;
        size_t want = 0;
        for (size_t i = 0; i < c->n; i++)
            want += hp_selector_matches(&q.sel, &c->labels[i]);
        hp_head_t *h = NULL;
        REQUIRE(hp_head_from_block(b, db, 7, "t", &q, &h, &err) == 0);
        size_t loaded = 0;
        for (size_t i = 0; i < h->n_series; i++)
            loaded += h->series[i]->n_profiles > 0;
        CHECK_EQ_INT(loaded, want);
        if (cases[k].narrows)
            CHECK(h->n_series < hp_block_n_series(b)); /* the others were never looked at */
        else
            CHECK_EQ_INT(h->n_series, hp_block_n_series(b));
        hp_head_unref(h);
        hp_select_fini(&q);
    }
    hp_symdb_free(db);
    hp_block_close(b);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* ---- meta.json and ULIDs ---- */

static void expect_meta_error(const char *json, const char *needle)
{
    hp_block_meta_t m;
    hp_err_t err;
    hp_err_clear(&err);
    int rc = hp_block_meta_parse(json, strlen(json), &m, &err);
    if (rc != HP_EINVAL || strstr(err.msg, needle) == NULL)
        fprintf(stderr, "  meta %s: rc %d, \"%s\" (wanted \"%s\")\n", json, rc, err.msg, needle);
    CHECK(rc == HP_EINVAL && strstr(err.msg, needle) != NULL);
}

static void test_meta(void)
{
    hp_block_meta_t m;
    memset(&m, 0, sizeof(m)); /* padding too: the test compares bytes */
    m.min_time_ms = -5, m.max_time_ms = 1700000000123, m.num_series = 3, m.num_profiles = 9;
    m.num_samples = 1234567, m.version = HP_BLOCK_VERSION, m.level = 2, m.data_bytes = 987654;
    hp_ulid_new(1700000000123, m.ulid);
    snprintf(m.tenant, sizeof(m.tenant), "team \"a\"\\b");
    snprintf(m.source, sizeof(m.source), "compactor");
    hp_buf_t j = HP_BUF_INIT;
    hp__block_meta_json(&m, &j);
    hp_block_meta_t back;
    hp_err_t err;
    REQUIRE(hp_block_meta_parse(j.data, j.len, &back, &err) == 0);
    CHECK(memcmp(&back, &m, sizeof(m)) == 0);
    hp_buf_fini(&j);

    /* compaction.sources: written, checked by parse (which does not fill
     * them), read back by hp_block_meta_sources */
    hp_ulid_t src[2];
    hp_ulid_new(1700000000001, src[0].s);
    hp_ulid_new(1700000000002, src[1].s);
    m.sources = src, m.n_sources = 2;
    hp__block_meta_json(&m, &j);
    CHECK(strstr(hp_buf_cstr(&j), "\"compaction\":{\"level\":2,\"sources\":[\"") != NULL);
    REQUIRE(hp_block_meta_parse(j.data, j.len, &back, &err) == 0);
    CHECK(back.sources == NULL && back.n_sources == 0 && back.level == 2);
    hp_ulid_t *got = NULL;
    size_t ng = 0;
    REQUIRE(hp_block_meta_sources(j.data, j.len, &got, &ng, &err) == 0);
    CHECK(ng == 2 && strcmp(got[0].s, src[0].s) == 0 && strcmp(got[1].s, src[1].s) == 0);
    free(got);
    m.sources = NULL, m.n_sources = 0;
    hp_buf_fini(&j);

    const char *ok = "{\"ulid\":\"01HHYG6245NWHZWVP27V8WJRT7\",\"tenant\":\"t\",\"minTime\":1,\"maxTime\":2,"
                     "\"stats\":{\"numSeries\":1,\"numProfiles\":2,\"numSamples\":3},\"version\":1,"
                     "\"compaction\":{\"level\":1},\"source\":\"ingester\",\"extra\":[1],"
                     "\"files\":[{\"relPath\":\"other\"},{\"relPath\":\"data\",\"sizeBytes\":10}]}";
    REQUIRE(hp_block_meta_parse(ok, strlen(ok), &back, &err) == 0);
    CHECK_EQ_INT(back.data_bytes, 10);
    CHECK_EQ_STR(back.ulid, "01HHYG6245NWHZWVP27V8WJRT7");

    expect_meta_error("{", "meta.json");
    expect_meta_error("[]", "not a JSON object");
    expect_meta_error("{\"version\":4}", "unsupported block version 4");
    expect_meta_error("{\"version\":0}", "unsupported block version 0");
    expect_meta_error("{\"ulid\":\"x\"}", "missing field version");
    expect_meta_error("{\"version\":\"1\"}", "version must be an integer");
    expect_meta_error("{\"version\":1}", "missing field ulid");
    expect_meta_error("{\"version\":1,\"ulid\":\"01HHYG6245NWHZWVP27V8WJRTI\"}", "not a ULID");
    expect_meta_error("{\"version\":1,\"version\":1}", "duplicate");
    const char *base = "{\"version\":1,\"ulid\":\"01HHYG6245NWHZWVP27V8WJRT7\",\"tenant\":\"t\","
                       "\"source\":\"ingester\"";
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s}", base);
    expect_meta_error(buf, "missing field minTime");
    snprintf(buf, sizeof(buf), "%s,\"minTime\":3,\"maxTime\":2}", base);
    expect_meta_error(buf, "after maxTime");
    snprintf(buf, sizeof(buf), "%s,\"minTime\":1,\"maxTime\":2}", base);
    expect_meta_error(buf, "missing field stats");
    snprintf(buf, sizeof(buf), "%s,\"minTime\":1,\"maxTime\":2,\"stats\":{\"numSeries\":1}}", base);
    expect_meta_error(buf, "missing field stats.numProfiles");
    snprintf(
        buf, sizeof(buf),
        "%s,\"minTime\":1,\"maxTime\":2,\"stats\":{\"numSeries\":-1,\"numProfiles\":1,\"numSamples\":1}}",
        base);
    expect_meta_error(buf, "stats.numSeries = -1 is out of range");
    snprintf(buf, sizeof(buf),
             "%s,\"minTime\":1,\"maxTime\":2,\"stats\":{\"numSeries\":1,\"numProfiles\":1,\"numSamples\":1},"
             "\"compaction\":{\"level\":0}}",
             base);
    expect_meta_error(buf, "compaction.level = 0");
    snprintf(buf, sizeof(buf),
             "%s,\"minTime\":1,\"maxTime\":2,\"stats\":{\"numSeries\":1,\"numProfiles\":1,\"numSamples\":1},"
             "\"compaction\":{\"level\":1},\"files\":[{\"relPath\":\"index\",\"sizeBytes\":1}]}",
             base);
    expect_meta_error(buf, "no entry with relPath \"data\"");
    expect_meta_error(
        "{\"version\":1,\"ulid\":\"01HHYG6245NWHZWVP27V8WJRT7\",\"tenant\":\"t\",\"source\":\"x\"}",
        "neither ingester nor compactor");
    expect_meta_error("{\"version\":1,\"ulid\":\"01HHYG6245NWHZWVP27V8WJRT7\",\"tenant\":\"\"}",
                      "tenant must be");
}

static int cmp_ulid(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_ulid(void)
{
    char u[27];
    hp_ulid_new(0, u);
    CHECK(strncmp(u, "0000000000", 10) == 0 && strlen(u) == 26);
    hp_ulid_new((1LL << 48) - 1, u);
    CHECK(strncmp(u, "7ZZZZZZZZZ", 10) == 0);
    hp_ulid_new(1469918176385, u); /* the ULID spec's example time */
    CHECK(strncmp(u, "01ARYZ6S41", 10) == 0);

    enum { N = 2000 };
    char(*v)[27] = malloc(N * sizeof(*v));
    for (int i = 0; i < N; i++)
        hp_ulid_new(1700000000000 + i / 4, v[i]); /* four per millisecond */
    for (int i = 1; i < N; i++)
        if (i % 4 == 0)
            CHECK(strcmp(v[i - 1], v[i]) < 0); /* later time sorts later */
    for (int i = 0; i < N; i++)
        CHECK(strspn(v[i], "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26);
    qsort(v, N, sizeof(*v), cmp_ulid);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup += strcmp(v[i - 1], v[i]) == 0;
    CHECK_EQ_INT(dup, 0);
    free(v);
}

/* ---- corruption ---- */

/* The table entry of section id in the block d[0..n) (offset of the entry), or 0. */
static size_t entry_pos(const uint8_t *d, size_t n, uint32_t id)
{
    uint32_t tlen = hp__get_le32(d + n - 12);
    size_t start = n - 16 - tlen;
    for (size_t k = start; k < n - 16; k += 40)
        if (hp__get_le32(d + k) == id)
            return k;
    return 0;
}

/* Recomputes the table CRC in the trailer after an entry was patched. */
static void fix_table_crc(uint8_t *d, size_t n)
{
    uint32_t tlen = hp__get_le32(d + n - 12);
    uint32_t c = hp__crc32c(0, d + n - 16 - tlen, tlen);
    memcpy(d + n - 8, (uint8_t[4]){(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)}, 4);
}

/* A copy of block d with section id's bytes replaced by a zstd frame of raw,
 * placed after the existing sections (which stay, unreferenced). */
static void replace_section(const uint8_t *d, size_t n, uint32_t id, const void *raw, size_t rn,
                            hp_buf_t *out)
{
    uint32_t tlen = hp__get_le32(d + n - 12);
    size_t start = n - 16 - tlen;
    hp_buf_reset(out);
    hp_buf_append(out, d, start);
    size_t off = out->len, bound = ZSTD_compressBound(rn);
    hp_buf_reserve(out, bound);
    size_t zn = ZSTD_compress(out->data + off, bound, raw, rn, 1);
    uint32_t crc = hp__crc32c(0, out->data + off, zn);
    out->len += zn;
    size_t tab = out->len;
    hp_buf_append(out, d + start, tlen + 16);
    size_t e = entry_pos(out->data, out->len, id);
    hp_buf_t f = HP_BUF_INIT;
    hp__put_le64(&f, off);
    hp__put_le64(&f, zn);
    hp__put_le64(&f, rn);
    hp__put_le32(&f, crc);
    memcpy(out->data + e + 8, f.data, f.len);
    hp_buf_fini(&f);
    (void)tab;
    fix_table_crc(out->data, out->len);
}

/* The decompressed bytes of section id (caller frees). */
static uint8_t *section_raw(const uint8_t *d, size_t n, uint32_t id, size_t *rn)
{
    size_t e = entry_pos(d, n, id);
    uint64_t off = hp__get_le64(d + e + 8), len = hp__get_le64(d + e + 16);
    *rn = hp__get_le64(d + e + 24);
    uint8_t *raw = malloc(*rn + 1);
    if (ZSTD_decompress(raw, *rn, d + off, len) != *rn)
        *rn = 0;
    return raw;
}

/* Follows every reference of a loaded symdb (the sanitizers catch a bad
 * one); returns a sum so the work is not optimized away. */
static size_t touch_symdb(const hp_symdb_t *db)
{
    size_t sum = 0;
    for (uint32_t s = 1; s < hp_symdb_n_stacks(db); s++) {
        sum += hp_symdb_stack_parent(db, s);
        const hp_symdb_location_t *l = hp_symdb_location(db, hp_symdb_stack_location(db, s));
        if (l->mapping != UINT32_MAX)
            sum += hp_symdb_string(db, hp_symdb_mapping(db, l->mapping)->build_id).n;
        const hp_symdb_line_t *ln = hp_symdb_lines(db, l);
        for (uint32_t k = 0; k < l->line_n; k++) {
            const hp_symdb_function_t *f = hp_symdb_function(db, ln[k].function);
            sum += hp_symdb_function_name(db, ln[k].function).n + hp_symdb_string(db, f->filename).n;
        }
    }
    return sum;
}

/* A page that was read without error keeps the promises of block.h. */
static void check_page_invariants(hp_block_t *b, size_t i, const hp_block_page_t *page, size_t n_stacks)
{
    size_t bad = 0;
    for (size_t j = 0; j < page->n_profiles; j++) {
        const hp_block_profile_t *p = &page->profiles[j];
        bad += p->t < hp_block_series_min_time(b, i) || p->t > hp_block_series_max_time(b, i) ||
               (j > 0 && p->t < page->profiles[j - 1].t);
        for (uint32_t k = 0; k < p->n; k++) {
            bool same = k > 0 && p->stacks[k] == p->stacks[k - 1];
            bad += p->stacks[k] >= n_stacks || (k > 0 && p->stacks[k] < p->stacks[k - 1]);
            /* version 3: (stack, span) strictly ascending */
            bad += same && (p->spans ? p->spans[k] <= p->spans[k - 1] : b->version >= 3);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* Opens d and reads and uses everything; returns the first error (0 when
 * all is well). */
static int read_all(const uint8_t *d, size_t n, uint64_t data_bytes, hp_err_t *err)
{
    mem_t m;
    hp_block_t *b = open_mem(&m, d, n, data_bytes, err);
    if (b == NULL)
        return err->code ? err->code : HP_EINTERNAL;
    hp_symdb_t *db = NULL;
    int first = hp_block_read_symbols(b, &db, err);
    volatile size_t sum = db ? touch_symdb(db) : 0;
    (void)sum;
    for (size_t i = 0; i < hp_block_n_series(b); i++) {
        hp_block_page_t page;
        hp_err_t e2;
        int rc = hp_block_read_page(b, i, &page, &e2);
        if (rc != 0 && first == 0)
            first = rc, *err = e2;
        if (rc == 0 && db != NULL)
            check_page_invariants(b, i, &page, hp_symdb_n_stacks(db));
        hp_block_page_fini(&page);
    }
    hp_symdb_free(db);
    hp_block_close(b);
    return first;
}

/* read_all fails with HP_EINVAL and a message holding each needle. */
static void expect_bad(const uint8_t *d, size_t n, uint64_t data_bytes, const char *n1, const char *n2)
{
    hp_err_t err;
    hp_err_clear(&err);
    int rc = read_all(d, n, data_bytes, &err);
    bool ok = rc == HP_EINVAL && strstr(err.msg, n1) != NULL && (n2 == NULL || strstr(err.msg, n2) != NULL);
    if (!ok)
        fprintf(stderr, "  wanted HP_EINVAL with \"%s\" / \"%s\": rc %d \"%s\"\n", n1, n2 ? n2 : "", rc,
                err.msg);
    CHECK(ok);
}

static void test_corruption(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT, x = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    const size_t n = data.len;
    hp_err_t err;
    REQUIRE(read_all(data.data, n, n, &err) == 0);

    /* a flipped byte in each section names it */
    static const struct {
        uint32_t id;
        const char *name;
    } secs[] = {{HP__SEC_SYMBOLS, "symbols"},
                {HP__SEC_SERIES, "series index"},
                {HP__SEC_POSTINGS, "postings"},
                {HP__SEC_PAGES, "page"}};
    for (size_t s = 0; s < HP_ARRAY_LEN(secs); s++) {
        size_t e = entry_pos(data.data, n, secs[s].id);
        REQUIRE(e != 0);
        uint64_t off = hp__get_le64(data.data + e + 8), len = hp__get_le64(data.data + e + 16);
        hp_buf_reset(&x);
        hp_buf_append(&x, data.data, n);
        x.data[off + len / 2] ^= 0x20;
        expect_bad(x.data, n, n, secs[s].name, "checksum mismatch");
        /* hp_block_verify finds it without decoding anything */
        mem_t m;
        hp_block_t *b = open_mem(&m, x.data, n, n, &err);
        if (b != NULL) { /* a flip in the index or postings already fails the open */
            int rc = hp_block_verify(b, &err);
            CHECK(rc == HP_EINVAL && strstr(err.msg, "checksum mismatch") != NULL);
            hp_block_close(b);
        }
    }
    {
        mem_t m;
        hp_block_t *b = open_mem(&m, data.data, n, n, &err);
        REQUIRE(b != NULL);
        CHECK_EQ_INT(hp_block_verify(b, &err), 0);
        hp_block_close(b);
    }
    /* the table, the trailer's magic, version and table length */
    hp_buf_reset(&x);
    hp_buf_append(&x, data.data, n);
    x.data[n - 16 - 3] ^= 1;
    expect_bad(x.data, n, n, "section table", "checksum");
    memcpy(x.data, data.data, n);
    x.data[n - 1] = 'X';
    expect_bad(x.data, n, n, "bad magic", NULL);
    memcpy(x.data, data.data, n);
    x.data[n - 16] = 4;
    expect_bad(x.data, n, n, "unsupported block version 4", NULL);
    memcpy(x.data, data.data, n);
    x.data[n - 12] = 41;
    expect_bad(x.data, n, n, "section table length 41", NULL);

    /* truncated at 20 lengths: the object really is shorter, or it is not
     * but the fetch cannot serve the range */
    for (int k = 0; k < 20; k++) {
        size_t len = (n - 1) * (size_t)k / 19;
        hp_err_clear(&err);
        CHECK_EQ_INT(read_all(data.data, len, len, &err), HP_EINVAL);
        CHECK(err.msg[0] != 0);
        CHECK_EQ_INT(read_all(data.data, len, n, &err), HP_EINVAL);
    }

    /* a section whose raw length claims 100 GiB, one pointing past the end */
    memcpy(x.data, data.data, n);
    size_t e = entry_pos(x.data, n, HP__SEC_SYMBOLS);
    uint64_t claim = 100ULL << 30;
    for (int i = 0; i < 8; i++)
        x.data[e + 24 + i] = (uint8_t)(claim >> (8 * i));
    fix_table_crc(x.data, n);
    expect_bad(x.data, n, n, "symbols", "107374182400");
    memcpy(x.data, data.data, n);
    x.data[e + 15] = 0x10;
    fix_table_crc(x.data, n);
    expect_bad(x.data, n, n, "symbols", "outside");
    memcpy(x.data, data.data, n);
    x.data[e] = HP__SEC_SERIES; /* two series sections, no symbols */
    fix_table_crc(x.data, n);
    expect_bad(x.data, n, n, "section table", NULL);

    hp_buf_fini(&x);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* ---- hand-crafted sections ---- */

static void put_u(hp_buf_t *b, uint64_t v)
{
    hp_buf_put_varint(b, v);
}

/* Symbols with no functions or locations but n_stacks stacks, the one at
 * bad_at with a parent that is not earlier. */
static void craft_stacks(hp_buf_t *r, uint64_t n_stacks, uint64_t bad_at)
{
    hp_buf_reset(r);
    uint64_t counts[6] = {1, 0, 0, 0, 0, n_stacks};
    for (int i = 0; i < 6; i++)
        put_u(r, counts[i]);
    put_u(r, 0); /* string 0: "" */
    for (uint64_t i = 1; i < n_stacks; i++)
        put_u(r, i == bad_at ? i + 1 : 1);
    for (uint64_t i = 1; i < n_stacks; i++)
        put_u(r, 0);
}

/* Symbols with one function and one location; fn_name, mapping+1 and
 * line_off delta as given, padded so the counts fit. */
static void craft_loc(hp_buf_t *r, uint64_t n_stacks, uint64_t fn_name, uint64_t mapping1,
                      uint64_t line_delta, uint64_t line_fn)
{
    hp_buf_reset(r);
    uint64_t counts[6] = {2, 0, 1, 1, 1, n_stacks};
    for (int i = 0; i < 6; i++)
        put_u(r, counts[i]);
    put_u(r, 0), put_u(r, 1), hp_buf_putc(r, 'f');                /* strings "", "f" */
    put_u(r, fn_name * 2), put_u(r, 0), put_u(r, 0), put_u(r, 0); /* zigzag of fn_name */
    put_u(r, 0), put_u(r, mapping1), put_u(r, 1), put_u(r, line_delta * 2);
    put_u(r, line_fn * 2), put_u(r, 0);
    for (uint64_t i = 1; i < n_stacks; i++)
        put_u(r, 1);
    for (uint64_t i = 1; i < n_stacks; i++)
        put_u(r, 0);
}

static int str_order(const void *a, const void *b)
{
    return hp_str_cmp(*(const hp_str_t *)a, *(const hp_str_t *)b);
}

typedef struct triple {
    uint32_t name, value, series;
} triple_t;

static int triple_order(const void *a, const void *b)
{
    const triple_t *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

/* The postings section of an open block, encoded from its series' labels
 * as BLOCK_FORMAT.md says; with swap, the first series listed under
 * pod=pod-a and the first under pod=pod-b trade places (counts unchanged). */
static void craft_postings(const hp_block_t *b, hp_buf_t *r, bool swap)
{
    size_t ns = hp_block_n_series(b), nl = 0, nt = 0;
    for (size_t i = 0; i < ns; i++)
        nl += hp_block_series_labels(b, i)->n;
    hp_str_t *strs = malloc(2 * nl * sizeof(hp_str_t));
    triple_t *t = malloc(nl * sizeof(triple_t));
    size_t k = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < hp_block_series_labels(b, i)->n; j++) {
            strs[k++] = hp_block_series_labels(b, i)->v[j].name;
            strs[k++] = hp_block_series_labels(b, i)->v[j].value;
        }
    qsort(strs, k, sizeof(*strs), str_order);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || hp_str_cmp(strs[u - 1], strs[i]) != 0)
            strs[u++] = strs[i];
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < hp_block_series_labels(b, i)->n; j++) {
            const hp_label_t *l = &hp_block_series_labels(b, i)->v[j];
            hp_str_t *np = bsearch(&l->name, strs, u, sizeof(*strs), str_order);
            hp_str_t *vp = bsearch(&l->value, strs, u, sizeof(*strs), str_order);
            t[nt++] = (triple_t){(uint32_t)(np - strs), (uint32_t)(vp - strs), (uint32_t)i};
        }
    qsort(t, nt, sizeof(*t), triple_order);
    if (swap) {
        triple_t *a = NULL, *c = NULL;
        for (size_t i = 0; i < nt; i++) {
            bool pod = hp_str_eq_c(strs[t[i].name], "pod");
            if (pod && a == NULL && hp_str_eq_c(strs[t[i].value], "pod-a"))
                a = &t[i];
            if (pod && c == NULL && hp_str_eq_c(strs[t[i].value], "pod-b"))
                c = &t[i];
        }
        REQUIRE(a != NULL && c != NULL);
        uint32_t x = a->series;
        a->series = c->series, c->series = x;
        qsort(t, nt, sizeof(*t), triple_order);
    }
    hp_buf_reset(r);
    size_t names = 0;
    for (size_t i = 0; i < nt; i++)
        names += i == 0 || t[i].name != t[i - 1].name;
    put_u(r, names);
    for (size_t i = 0; i < nt;) {
        size_t ne = i, nv = 0;
        while (ne < nt && t[ne].name == t[i].name)
            nv += ne == i || t[ne].value != t[ne - 1].value, ne++;
        put_u(r, t[i].name), put_u(r, nv);
        for (size_t j = i; j < ne;) {
            size_t ve = j;
            while (ve < ne && t[ve].value == t[j].value)
                ve++;
            put_u(r, t[j].value), put_u(r, ve - j);
            for (size_t q = j; q < ve; q++)
                put_u(r, q == j ? t[q].series : t[q].series - t[q - 1].series - 1);
            j = ve;
        }
        i = ne;
    }
    free(strs);
    free(t);
}

/* Reads r as series 0's only page of the block d (white-box: the series
 * entry is pointed at r, compressed and appended to a copy of d). */
static int read_crafted_page(const uint8_t *d, size_t n, const hp_buf_t *r, hp_block_page_t *page,
                             hp_err_t *err)
{
    hp_buf_t x = HP_BUF_INIT;
    hp_buf_append(&x, d, n);
    size_t bound = ZSTD_compressBound(r->len);
    hp_buf_reserve(&x, bound);
    size_t zn = ZSTD_compress(x.data + n, bound, r->data, r->len, 1);
    x.len += zn;
    mem_t mm;
    hp_block_t *b = open_mem(&mm, x.data, x.len, n, err);
    REQUIRE(b != NULL);
    b->series[0] = (hp__blk_series_t){
        .labels = b->series[0].labels, .n_profiles = 1, .page0 = 0, .n_pages = 1, .raw_bytes = r->len};
    b->page_v[0] = (hp__blk_page_t){.n_profiles = 1,
                                    .off = n - b->pages.off,
                                    .len = zn,
                                    .raw = r->len,
                                    .crc = hp__crc32c(0, x.data + n, zn)};
    hp_err_clear(err);
    int rc = hp_block_read_page(b, 0, page, err);
    hp_block_close(b);
    hp_buf_fini(&x);
    return rc;
}

static void test_crafted(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT, x = HP_BUF_INIT, r = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    uint64_t ns = hp_symdb_n_stacks(c->db);
    const uint8_t *d = data.data;
    size_t n = data.len;

    /* the crafting itself is right: a valid hand-made symbols section loads */
    craft_loc(&r, ns, 1, 0, 0, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    hp_err_t err;
    CHECK_EQ_INT(read_all(x.data, x.len, x.len, &err), 0);

    craft_stacks(&r, ns, ns / 2);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "symbols", "parent is not an earlier stack");
    craft_stacks(&r, ns + 1, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "symbols", "the index says");
    hp_buf_reset(&r);
    put_u(&r, 1ULL << 40);
    for (int i = 0; i < 5; i++)
        put_u(&r, 1);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "symbols", "counts");
    craft_stacks(&r, ns, 0); /* no locations for the stacks */
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "symbols", "stack 1: location 0 out of range");
    craft_loc(&r, ns, 7, 0, 0, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "function 0 name: string 7 out of range", NULL);
    craft_loc(&r, ns, 1, 3, 0, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "location 0: mapping 2 out of range", NULL);
    craft_loc(&r, ns, 1, 0, 5, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "location 0: lines [5, +1) outside", NULL);
    craft_loc(&r, ns, 1, 0, 0, 4);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "line 0: function 4 out of range", NULL);
    hp_buf_reset(&r);
    put_u(&r, 1), put_u(&r, 0), put_u(&r, 0), put_u(&r, 0), put_u(&r, 0), put_u(&r, ns);
    put_u(&r, 1), hp_buf_putc(&r, 'x');
    for (uint64_t i = 1; i < 2 * ns; i++)
        put_u(&r, 0);
    replace_section(d, n, HP__SEC_SYMBOLS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "string 0 is not empty", NULL);

    /* series index: absurd counts; a page claiming 100 GiB; unsorted labels */
    hp_buf_reset(&r);
    put_u(&r, 1ULL << 40), put_u(&r, ns), put_u(&r, 0);
    replace_section(d, n, HP__SEC_SERIES, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "series index", "counts");
    for (int v = 0; v < 2; v++) {
        hp_buf_reset(&r);
        put_u(&r, 1), put_u(&r, ns), put_u(&r, 2), put_u(&r, 1), put_u(&r, 1);
        hp_buf_append(&r, "ab", 2);
        put_u(&r, 2), put_u(&r, v ? 1 : 0), put_u(&r, 1), put_u(&r, v ? 0 : 1), put_u(&r, 0); /* labels */
        put_u(&r, 0), put_u(&r, 0), put_u(&r, 0), put_u(&r, 1); /* period, times, 1 profile */
        put_u(&r, 1), put_u(&r, 0), put_u(&r, 0), put_u(&r, 1);  /* 1 page: times, 1 profile */
        put_u(&r, 0), put_u(&r, 10), put_u(&r, 100ULL << 30);
        hp_buf_append(&r, "\0\0\0\0", 4);
        replace_section(d, n, HP__SEC_SERIES, r.data, r.len, &x);
        expect_bad(x.data, x.len, x.len, "series index", v ? "not sorted" : "107374182400");
    }
    /* version-2 page lists: none, overlapping pages, counts or times that
     * do not add up to the series' (series: times 0..100, 4 profiles) */
    static const struct {
        uint64_t n_pages, p[2][3]; /* per page: from, span, profiles */
        const char *needle;
    } lists[] = {
        {0, {{0}}, "0 pages is invalid"},
        {2, {{0, 60, 2}, {50, 50, 2}}, "starts before page 0 ends"},
        {2, {{0, 50, 2}, {60, 40, 1}}, "pages hold 3 profiles"},
        {2, {{0, 50, 2}, {60, 30, 2}}, "up to 90"},
        {2, {{5, 50, 2}, {60, 40, 2}}, "times outside"},
        {2, {{0, 50, 2}, {60, 50, 2}}, "times outside"},
    };
    for (size_t k = 0; k < HP_ARRAY_LEN(lists); k++) {
        hp_buf_reset(&r);
        put_u(&r, 1), put_u(&r, ns), put_u(&r, 2), put_u(&r, 1), put_u(&r, 1);
        hp_buf_append(&r, "ab", 2);
        put_u(&r, 1), put_u(&r, 0), put_u(&r, 1);              /* labels a=b */
        put_u(&r, 0), put_u(&r, 0), put_u(&r, 100), put_u(&r, 4); /* period, times 0..100, 4 profiles */
        put_u(&r, lists[k].n_pages);
        for (size_t j = 0; j < lists[k].n_pages; j++) {
            put_u(&r, lists[k].p[j][0]), put_u(&r, lists[k].p[j][1]), put_u(&r, lists[k].p[j][2]);
            put_u(&r, 0), put_u(&r, 10), put_u(&r, 1000);
            hp_buf_append(&r, "\0\0\0\0", 4);
        }
        replace_section(d, n, HP__SEC_SERIES, r.data, r.len, &x);
        expect_bad(x.data, x.len, x.len, "series index", lists[k].needle);
    }
    /* five pages, each within the page bound (1 GiB decompressed) but too
     * much together: refused before anything is fetched or allocated */
    hp_buf_reset(&r);
    put_u(&r, 1), put_u(&r, ns), put_u(&r, 2), put_u(&r, 1), put_u(&r, 1);
    hp_buf_append(&r, "ab", 2);
    put_u(&r, 1), put_u(&r, 0), put_u(&r, 1);              /* labels a=b */
    put_u(&r, 0), put_u(&r, 0), put_u(&r, 100), put_u(&r, 5); /* period, times 0..100, 5 profiles */
    put_u(&r, 5);
    for (uint64_t j = 0; j < 5; j++) {
        put_u(&r, 20 * j), put_u(&r, j == 4 ? 20 : 10), put_u(&r, 1); /* from, span, 1 profile */
        put_u(&r, 10 * j), put_u(&r, 10), put_u(&r, 1ULL << 30);
        hp_buf_append(&r, "\0\0\0\0", 4);
    }
    replace_section(d, n, HP__SEC_SERIES, r.data, r.len, &x);
    hp_buf_t y = HP_BUF_INIT;
    hp_buf_reset(&r);
    put_u(&r, 1), put_u(&r, 0), put_u(&r, 1), put_u(&r, 1), put_u(&r, 1), put_u(&r, 0); /* a=b: series 0 */
    replace_section(x.data, x.len, HP__SEC_POSTINGS, r.data, r.len, &y);
    expect_bad(y.data, y.len, y.len, "series index", "at once");
    hp_buf_fini(&y);
    /* postings listing a series under a label it lacks */
    hp_buf_reset(&r);
    put_u(&r, 1), put_u(&r, 0), put_u(&r, 1), put_u(&r, 0), put_u(&r, 1), put_u(&r, 0);
    replace_section(d, n, HP__SEC_POSTINGS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "postings", NULL);
    mem_t pm;
    hp_block_t *pb = open_mem(&pm, d, n, n, &err);
    REQUIRE(pb != NULL);
    craft_postings(pb, &r, false); /* as documented: accepted */
    replace_section(d, n, HP__SEC_POSTINGS, r.data, r.len, &x);
    CHECK_EQ_INT(read_all(x.data, x.len, x.len, &err), 0);
    craft_postings(pb, &r, true);
    replace_section(d, n, HP__SEC_POSTINGS, r.data, r.len, &x);
    expect_bad(x.data, x.len, x.len, "postings", "lacks that label");
    hp_block_close(pb);

    /* pages (white-box: series 0 pointed at a hand-made page appended to
     * the object): a stack ID past the symbols, times off the index's,
     * another profile count, a truncated sample list */
    static const struct {
        uint64_t n, dt, stack, cnt, cut;
        const char *needle;
    } pages[] = {
        {1, 0, 1, 1, 0, NULL},
        {1, 0, ~0ull, 1, 0, "stack ID out of range"},
        {1, 0, 1, 1, 6, "truncated or malformed"},
        {1, 5, 1, 1, 0, "time outside"},
        {2, 0, 1, 1, 0, "holds 2 profiles, the index says 1"},
        {1, 0, 1, 300, 0, "samples cannot fit"},
    };
    for (size_t k = 0; k < HP_ARRAY_LEN(pages); k++) {
        hp_buf_reset(&r);
        put_u(&r, pages[k].n), put_u(&r, pages[k].dt);
        hp_buf_append(&r, "0123456789abcdef", 16);
        put_u(&r, 0), put_u(&r, pages[k].cnt << 1), put_u(&r, pages[k].stack == ~0ull ? ns : pages[k].stack),
            put_u(&r, 0);
        r.len -= pages[k].cut;
        hp_block_page_t page;
        int rc = read_crafted_page(d, n, &r, &page, &err);
        if (pages[k].needle == NULL) {
            CHECK(rc == 0 && page.n_profiles == 1 && page.profiles[0].n == 1 &&
                  page.profiles[0].stacks[0] == 1 && page.profiles[0].spans == NULL);
        } else {
            if (rc != HP_EINVAL || strstr(err.msg, pages[k].needle) == NULL)
                fprintf(stderr, "  page %zu: rc %d \"%s\"\n", k, rc, err.msg);
            CHECK(rc == HP_EINVAL && strstr(err.msg, pages[k].needle) != NULL &&
                  strstr(err.msg, "series 0 page"));
            CHECK(page.mem == NULL && page.n_profiles == 0);
        }
        hp_block_page_fini(&page);
    }

    /* version 3's span column: two samples of stacks 1 and 1 + d, a span
     * table, span indexes (0: none) */
    static const struct {
        uint64_t d, has, n_tab, tab[3], idx[2];
        const char *needle;
    } spans[] = {
        {0, 1, 2, {7, 9}, {1, 2}, NULL},
        {0, 1, 1, {7}, {0, 1}, NULL},
        {1, 1, 1, {7}, {1, 1}, NULL},
        {0, 1, 2, {7, 9}, {2, 1}, "(stack, span) not after the sample before"},
        {0, 1, 2, {7, 9}, {1, 1}, "(stack, span) not after the sample before"},
        {0, 1, 1, {7}, {0, 0}, "(stack, span) not after the sample before"},
        {0, 1, 2, {7, 9}, {1, 3}, "span 3 out of range (2 spans)"},
        {0, 1, 2, {9, 7}, {1, 2}, "span ID 1 is 0 or not after the one before"},
        {0, 1, 2, {0, 7}, {1, 2}, "span ID 0 is 0"},
        {0, 1, 0, {0}, {0, 0}, "0 span IDs for 2 samples is invalid"},
        {0, 1, 3, {5, 7, 9}, {1, 2}, "3 span IDs for 2 samples is invalid"},
        {0, 0, 0, {0}, {0, 0}, "stack repeated"},
        {0, 1, 9, {7, 9}, {1, 2}, "9 span IDs for 2 samples"},
    };
    for (size_t k = 0; k < HP_ARRAY_LEN(spans); k++) {
        hp_buf_reset(&r);
        put_u(&r, 1), put_u(&r, 0);
        hp_buf_append(&r, "0123456789abcdef", 16);
        put_u(&r, hp__zigzag(11)), put_u(&r, 2 << 1 | spans[k].has);
        put_u(&r, 1), put_u(&r, spans[k].d), put_u(&r, hp__zigzag(5)), put_u(&r, hp__zigzag(6));
        if (spans[k].has) {
            put_u(&r, spans[k].n_tab);
            for (uint64_t i = 0; i < spans[k].n_tab && i < 3; i++)
                hp__put_le64(&r, spans[k].tab[i]);
            put_u(&r, spans[k].idx[0]), put_u(&r, spans[k].idx[1]);
        }
        hp_block_page_t page;
        int rc = read_crafted_page(d, n, &r, &page, &err);
        if (spans[k].needle == NULL) {
            const hp_block_profile_t *p = &page.profiles[0];
            CHECK(rc == 0 && page.n_profiles == 1 && p->n == 2 && p->spans != NULL);
            if (rc == 0 && p->spans) {
                CHECK(p->stacks[0] == 1 && p->stacks[1] == 1 + spans[k].d && p->values[1] == 6);
                for (int i = 0; i < 2; i++)
                    CHECK_EQ_INT(p->spans[i], spans[k].idx[i] ? spans[k].tab[spans[k].idx[i] - 1] : 0);
            }
        } else {
            if (rc != HP_EINVAL || strstr(err.msg, spans[k].needle) == NULL)
                fprintf(stderr, "  spans %zu: rc %d \"%s\"\n", k, rc, err.msg);
            CHECK(rc == HP_EINVAL && strstr(err.msg, spans[k].needle) != NULL);
        }
        hp_block_page_fini(&page);
    }

    hp_buf_fini(&r);
    hp_buf_fini(&x);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* Two pages decode to the same profiles (times, IDs, totals, samples). */
static void check_same_pages(hp_block_t *x, hp_block_t *y)
{
    hp_err_t err;
    CHECK_EQ_INT(hp_block_n_series(x), hp_block_n_series(y));
    for (size_t i = 0; i < hp_block_n_series(x) && i < hp_block_n_series(y); i++) {
        hp_block_page_t p1, p2;
        REQUIRE(hp_block_read_page(x, i, &p1, &err) == 0);
        REQUIRE(hp_block_read_page(y, i, &p2, &err) == 0);
        CHECK_EQ_INT(p1.n_profiles, p2.n_profiles);
        for (size_t k = 0; k < p1.n_profiles && k < p2.n_profiles; k++) {
            const hp_block_profile_t *a = &p1.profiles[k], *b = &p2.profiles[k];
            CHECK(a->t == b->t && a->total == b->total && memcmp(a->id, b->id, 16) == 0 && a->n == b->n);
            CHECK(a->spans == NULL && b->spans == NULL);
            if (a->n == b->n && a->n > 0)
                CHECK(memcmp(a->stacks, b->stacks, a->n * 4) == 0 &&
                      memcmp(a->values, b->values, a->n * 8) == 0);
        }
        hp_block_page_fini(&p1);
        hp_block_page_fini(&p2);
    }
}

/* Blocks of versions 1 and 2 are still read. Version 2 (pages without
 * span IDs) as the previous build wrote it; version 1 — one page per
 * series, no page list in the series index — made from it by rewriting the
 * series index in the version-1 layout and marking the trailer version 1. */
static void test_old_versions(void)
{
    corpus_t *c = corpus_load(small_files);
    REQUIRE(c != NULL);
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, d3 = HP_BUF_INIT, mj = HP_BUF_INIT, r = HP_BUF_INIT, x = HP_BUF_INIT;
    REQUIRE(corpus_write_v(c, 2, &meta, &data, &mj) == 0);
    CHECK_EQ_INT(meta.version, 2);
    CHECK(strstr(hp_buf_cstr(&mj), "\"version\":2") != NULL);
    hp_block_meta_t back;
    hp_err_t err;
    CHECK_EQ_INT(hp_block_meta_parse(mj.data, mj.len, &back, &err), 0);
    REQUIRE(corpus_write(c, &meta, &d3, &mj) == 0);
    mem_t m2, m1, m3;
    hp_block_t *b = open_mem(&m2, data.data, data.len, data.len, &err);
    REQUIRE(b != NULL);
    CHECK_EQ_INT(b->version, 2);
    check_series(b, c);
    CHECK_EQ_INT(read_all(data.data, data.len, data.len, &err), 0);
    hp_block_t *b3 = open_mem(&m3, d3.data, d3.len, d3.len, &err);
    REQUIRE(b3 != NULL);
    check_same_pages(b, b3);
    hp_block_close(b3);

    put_u(&r, b->n_series), put_u(&r, b->n_stacks), put_u(&r, b->n_lstr);
    for (size_t k = 0; k < b->n_lstr; k++)
        put_u(&r, b->lstr[k].n);
    for (size_t k = 0; k < b->n_lstr; k++)
        hp_buf_append(&r, b->lstr[k].p, b->lstr[k].n);
    for (size_t i = 0; i < b->n_series; i++) {
        const hp__blk_series_t *s = &b->series[i];
        REQUIRE(s->n_pages == 1);
        const hp__blk_page_t *pg = &b->page_v[s->page0];
        put_u(&r, s->labels.n);
        for (size_t k = 0; k < 2 * s->labels.n; k++)
            put_u(&r, b->lids[2 * s->loff + k]);
        put_u(&r, hp__zigzag(s->period)), put_u(&r, hp__zigzag(s->min_t));
        put_u(&r, (uint64_t)s->max_t - (uint64_t)s->min_t), put_u(&r, s->n_profiles);
        put_u(&r, pg->off), put_u(&r, pg->len), put_u(&r, pg->raw);
        hp__put_le32(&r, pg->crc);
    }
    replace_section(data.data, data.len, HP__SEC_SERIES, r.data, r.len, &x);
    x.data[x.len - 16] = 1;
    hp_block_t *b1 = open_mem(&m1, x.data, x.len, x.len, &err);
    if (b1 == NULL)
        fprintf(stderr, "  open v1: %s\n", err.msg);
    REQUIRE(b1 != NULL);
    CHECK_EQ_INT(b1->version, 1);
    check_same_pages(b1, b);
    CHECK_EQ_INT(read_all(x.data, x.len, x.len, &err), 0);
    hp_block_close(b1);
    hp_block_close(b);
    hp_buf_fini(&r);
    hp_buf_fini(&x);
    hp_buf_fini(&data);
    hp_buf_fini(&d3);
    hp_buf_fini(&mj);
    corpus_free(c);
}

/* ---- fuzzing ---- */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r)
{
    r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
    return r->s;
}

/* 1–8 random bytes changed, or a run of bytes flipped; a quarter of the
 * time in the unprotected tail. */
static void mutate(rng_t *r, uint8_t *p, size_t n)
{
    size_t lo = rnd(r) % 4 == 0 && n > 400 ? n - 400 : 0;
    int kind = (int)(rnd(r) % 3), k = 1 + (int)(rnd(r) % 8);
    for (int i = 0; i < k; i++) {
        size_t at = lo + rnd(r) % (n - lo);
        if (kind == 0)
            p[at] = (uint8_t)rnd(r);
        else if (kind == 1)
            p[at] ^= (uint8_t)(1u << (rnd(r) % 8));
        else
            for (size_t j = at; j < n && j < at + 16; j++)
                p[j] = (uint8_t)~p[j];
    }
}

static void test_fuzz(void)
{
    corpus_t *c = corpus_load(fuzz_files);
    REQUIRE(c != NULL);
    corpus_add_spans(c); /* so mutated pages reach the span column too */
    hp_block_meta_t meta;
    hp_buf_t data = HP_BUF_INIT, mj = HP_BUF_INIT, x = HP_BUF_INIT;
    REQUIRE(corpus_write(c, &meta, &data, &mj) == 0);
    const uint8_t *d = data.data;
    size_t n = data.len;
    rng_t r = {0x9e3779b97f4a7c15ULL};
    int ok = 0;
    /* bytes of the whole object: mostly caught by checksums */
    for (int it = 0; it < 3000; it++) {
        hp_buf_reset(&x);
        hp_buf_append(&x, d, n);
        mutate(&r, x.data, n);
        hp_err_t err;
        ok += read_all(x.data, n, n, &err) == 0;
    }
    /* bytes inside the sections, re-checksummed so the decoders see them */
    static const uint32_t ids[] = {HP__SEC_SYMBOLS, HP__SEC_SERIES, HP__SEC_POSTINGS};
    for (size_t s = 0; s < HP_ARRAY_LEN(ids); s++) {
        size_t rn;
        uint8_t *raw = section_raw(d, n, ids[s], &rn);
        REQUIRE(rn > 0);
        uint8_t *m = malloc(rn);
        for (int it = 0; it < 400; it++) {
            memcpy(m, raw, rn);
            mutate(&r, m, rn);
            size_t len = rnd(&r) % 8 == 0 ? rnd(&r) % rn : rn; /* sometimes truncated too */
            replace_section(d, n, ids[s], m, len, &x);
            hp_err_t err;
            ok += read_all(x.data, x.len, x.len, &err) == 0;
        }
        free(m);
        free(raw);
    }
    /* bytes inside pages: the series entry is pointed at a mutated page
     * appended to the object (white-box: the index is checksummed too) */
    mem_t mm;
    hp_err_t err;
    hp_buf_reset(&x);
    hp_buf_append(&x, d, n);
    hp_block_t *b = open_mem(&mm, x.data, x.len, n, &err);
    REQUIRE(b != NULL);
    for (int it = 0; it < 600; it++) {
        size_t i = rnd(&r) % hp_block_n_series(b);
        hp__blk_page_t *pg = &b->page_v[b->series[i].page0 + rnd(&r) % b->series[i].n_pages];
        hp__blk_page_t saved = *pg;
        uint8_t *raw = malloc(saved.raw + 1);
        REQUIRE(ZSTD_decompress(raw, saved.raw, d + b->pages.off + saved.off, saved.len) == saved.raw);
        mutate(&r, raw, saved.raw);
        hp_buf_reset(&x);
        hp_buf_append(&x, d, n);
        size_t bound = ZSTD_compressBound(saved.raw);
        hp_buf_reserve(&x, bound);
        size_t zn = ZSTD_compress(x.data + n, bound, raw, saved.raw, 1);
        x.len += zn;
        mm.p = x.data, mm.n = x.len;
        pg->off = n - b->pages.off;
        pg->len = zn;
        pg->crc = hp__crc32c(0, x.data + n, zn);
        hp_block_page_t page;
        ok += hp_block_read_page(b, i, &page, &err) == 0;
        hp_block_page_fini(&page);
        *pg = saved;
        free(raw);
    }
    hp_block_close(b);
    printf("fuzz: %zu-byte block, 4800 mutations, %d read back without error\n", n, ok);
    hp_buf_fini(&x);
    hp_buf_fini(&data);
    hp_buf_fini(&mj);
    corpus_free(c);
}

int main(void)
{
    HP_RUN(test_crc32c);
    HP_RUN(test_roundtrip);
    HP_RUN(test_sizes);
    HP_RUN(test_order_and_inputs);
    HP_RUN(test_ranged_reads);
    HP_RUN(test_pages_by_time);
    HP_RUN(test_spans);
    HP_RUN(test_block_candidates);
    HP_RUN(test_old_versions);
    HP_RUN(test_meta);
    HP_RUN(test_ulid);
    HP_RUN(test_corruption);
    HP_RUN(test_crafted);
    HP_RUN(test_fuzz);
    return hp_test_done();
}
