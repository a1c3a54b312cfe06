/* Unit tests for block_merge.h: two replica blocks built from real
 * profiles (their symdbs filled in different orders, so every ID
 * differs) whose profiles overlap merge to exactly the union — the same
 * profiles, stacks (compared by their function names) and values as one
 * block written from the union directly, span IDs kept; a drop callback
 * removes exactly what it selects; meta records level and
 * compaction.sources, also through a second merge. */
#include <xxhash.h>

#include "hotpath/block.h"
#include "hotpath/block_merge.h"
#include "hotpath/compress.h"
#include "hotpath/hashmap.h"
#include "hotpath/pprof.h"
#include "hotpath/symdb.h"
#include "test.h"

#define MAX_SERIES 64
#define MAX_PROFILES 16

static const char *const files[] = {"corpus/go/go_mix.cpu.pb.gz", "corpus/go/go_mix.heap.pb.gz",
                                    "corpus/go/go_mix.mutex.pb.gz", NULL};

/* ---- building a block from profiles ---- */

typedef struct built {
    hp_symdb_t *db;
    hp_arena_t arena;
    hp_labels_t labels[MAX_SERIES];
    hp_block_series_in_t series[MAX_SERIES];
    hp_block_profile_in_t profiles[MAX_SERIES][MAX_PROFILES];
    size_t n;
    bool spans; /* samples get span IDs (from their index in the pprof) */
} built_t;

static void built_free(built_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        for (size_t j = 0; j < b->series[i].n_profiles; j++) {
            free((void *)b->profiles[i][j].stacks);
            free((void *)b->profiles[i][j].values);
            free((void *)b->profiles[i][j].spans);
        }
        hp_labels_fini(&b->labels[i]);
    }
    hp_arena_fini(&b->arena);
    hp_symdb_free(b->db);
    free(b);
}

typedef struct pair {
    uint32_t stack;
    uint64_t span;
    int64_t value;
} pair_t;

static int pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return x->span < y->span ? -1 : x->span > y->span;
}

/* With spans: sample s of the pprof has one of four spans, or (every
 * third) none — the same in every replica. */
static uint64_t span_of(bool spans, uint32_t s)
{
    return spans && s % 3 != 0 ? 0x9e3779b97f4a7c15ULL * (s % 4 + 1) : 0;
}

/* Profile k (0-based) of a series: the samples with (s + k) % 3 != 0 (all
 * for k = 0), values scaled by k + 1, at a time and ID that depend on k
 * and the series only, so every replica gives them alike. */
static void add_profile(built_t *b, size_t si, const hp_pprof_t *p, const uint32_t *sstack, uint32_t type,
                        uint32_t k, uint32_t series_key)
{
    pair_t *pairs = malloc((p->n_samples + 1) * sizeof(*pairs));
    size_t m = 0;
    for (uint32_t s = 0; s < p->n_samples; s++)
        if (k == 0 || (s + k) % 3 != 0)
            pairs[m++] = (pair_t){sstack[s], span_of(b->spans, s),
                                  p->values[p->samples[s].val_off + type] * (int64_t)(k + 1)};
    hp_qsort(pairs, m, sizeof(*pairs), pair_cmp);
    uint32_t *st = malloc((m + 1) * sizeof(uint32_t));
    int64_t *val = malloc((m + 1) * sizeof(int64_t));
    uint64_t *sp = b->spans ? malloc((m + 1) * sizeof(uint64_t)) : NULL;
    uint32_t o = 0;
    for (size_t j = 0; j < m; j++) {
        if (o > 0 && pair_cmp(&pairs[o - 1], &pairs[j]) == 0) {
            pairs[o - 1].value += pairs[j].value;
            continue;
        }
        pairs[o++] = pairs[j];
    }
    for (uint32_t j = 0; j < o; j++) {
        st[j] = pairs[j].stack, val[j] = pairs[j].value;
        if (sp)
            sp[j] = pairs[j].span;
    }
    hp_block_profile_in_t *d = &b->profiles[si][b->series[si].n_profiles++];
    *d = (hp_block_profile_in_t){.t = 1700000000000000000LL + (int64_t)k * 10000000000LL,
                                 .stacks = st,
                                 .values = val,
                                 .spans = sp,
                                 .n = o};
    for (uint32_t j = 0; j < o; j++)
        d->total += val[j];
    for (int x = 0; x < 16; x++)
        d->id[x] = (uint8_t)(series_key * 13 + k * 7 + (uint32_t)x);
    free(pairs);
}

/* The series labelled {service_name=stem, __profile_type__=type}, made if new. */
static size_t series_of(built_t *b, const char *stem, const char *type, int64_t period)
{
    for (size_t i = 0; i < b->n; i++)
        if (hp_str_eq_c(hp_labels_get(&b->labels[i], "service_name"), stem) &&
            hp_str_eq_c(hp_labels_get(&b->labels[i], "__profile_type__"), type))
            return i;
    size_t i = b->n++;
    hp_labels_init(&b->labels[i]);
    hp_labels_add(&b->labels[i], HP_STR("service_name"),
                  hp_str_c(hp_arena_strndup(&b->arena, stem, strlen(stem))));
    hp_labels_add(&b->labels[i], HP_STR("__profile_type__"),
                  hp_str_c(hp_arena_strndup(&b->arena, type, strlen(type))));
    hp_labels_sort(&b->labels[i]);
    b->series[i] = (hp_block_series_in_t){&b->labels[i], b->profiles[i], 0, period};
    return i;
}

/* Imports file rel and adds profiles first..last (inclusive) of each of
 * its sample types. */
static bool add_file(built_t *b, const char *rel, uint32_t first, uint32_t last)
{
    size_t n = 0;
    unsigned char *gz = hp_test_read_file(hp_testdata(rel), &n);
    if (gz == NULL)
        return false;
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
        hp_symdb_import(b->db, &p, loc_map, 0);
        for (uint32_t s = 0; s < p.n_samples; s++) {
            for (uint32_t k = 0; k < p.samples[s].loc_n; k++)
                locs[k] = loc_map[p.sample_locs[p.samples[s].loc_off + k]];
            sstack[s] = hp_symdb_stack(b->db, locs, p.samples[s].loc_n);
        }
        const char *base = strrchr(rel, '/') + 1;
        for (uint32_t t = 0; t < p.n_sample_types; t++) {
            char type[128];
            hp_str_t ty = hp_pprof_str(&p, p.sample_types[t].type);
            snprintf(type, sizeof(type), "%.*s:%.*s", (int)strlen(base), base, (int)ty.n, ty.p);
            size_t si = series_of(b, base, type, p.period);
            for (uint32_t k = first; k <= last; k++)
                add_profile(b, si, &p, sstack, t, k, (uint32_t)XXH3_64bits(type, strlen(type)));
        }
        free(loc_map);
        free(sstack);
        free(locs);
    }
    hp_pprof_fini(&p);
    hp_buf_fini(&raw);
    free(gz);
    return ok;
}

/* A block of profiles first..last of every file, imported in the given
 * file order (reversed: other symbol IDs), with span IDs or without. */
static built_t *build_spans(uint32_t first, uint32_t last, bool reversed, bool spans)
{
    built_t *b = calloc(1, sizeof(*b));
    b->spans = spans;
    b->db = hp_symdb_new();
    hp_arena_init(&b->arena, 0);
    size_t nf = 0;
    while (files[nf])
        nf++;
    for (size_t i = 0; i < nf; i++)
        if (!add_file(b, files[reversed ? nf - 1 - i : i], first, last)) {
            built_free(b);
            return NULL;
        }
    return b;
}

static built_t *build(uint32_t first, uint32_t last, bool reversed)
{
    return build_spans(first, last, reversed, false);
}

/* ---- blocks in memory ---- */

typedef struct mem {
    hp_buf_t data, json;
    hp_block_meta_t meta;
    hp_block_t *b;
    hp_symdb_t *syms;
} mem_t;

static int mem_fetch(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    const mem_t *m = ctx;
    if (off > m->data.len || len > m->data.len - off)
        return hp_err_set(err, HP_EINVAL, "range beyond the object");
    hp_buf_append(out, m->data.data + off, len);
    return 0;
}

/* Opens m's data with its symbols. */
static void mem_open(mem_t *m)
{
    hp_err_t err;
    int rc = hp_block_open(m->meta.ulid, m->data.len, mem_fetch, m, &m->b, &err);
    if (rc == 0)
        rc = hp_block_read_symbols(m->b, &m->syms, &err);
    if (rc != 0)
        fprintf(stderr, "  open: %s\n", err.msg);
    REQUIRE(rc == 0);
}

/* Writes b as a level-1 block made at ms. */
static mem_t *mem_write(const built_t *b, int64_t ms)
{
    mem_t *m = calloc(1, sizeof(*m));
    hp_ulid_new(ms, m->meta.ulid);
    snprintf(m->meta.tenant, sizeof(m->meta.tenant), "t1");
    snprintf(m->meta.source, sizeof(m->meta.source), "ingester");
    m->meta.level = 1;
    hp_err_t err;
    REQUIRE(hp_block_write(b->db, b->series, b->n, &m->meta, &m->data, &m->json, &err) == 0);
    mem_open(m);
    return m;
}

static void mem_free(mem_t *m)
{
    if (m == NULL)
        return;
    hp_symdb_free(m->syms);
    hp_block_close(m->b);
    hp_buf_fini(&m->data);
    hp_buf_fini(&m->json);
    free((void *)m->meta.sources);
    free(m);
}

/* Merges in[0..n) into a new block (opened). */
static mem_t *merge(mem_t **in, size_t n, hp_block_drop_fn drop, void *ctx, hp_block_merge_stats_t *st)
{
    hp_block_merge_input_t v[8];
    for (size_t i = 0; i < n; i++)
        v[i] = (hp_block_merge_input_t){in[i]->b, in[i]->syms, &in[i]->meta};
    mem_t *m = calloc(1, sizeof(*m));
    hp_ulid_new(1700000100000, m->meta.ulid);
    snprintf(m->meta.tenant, sizeof(m->meta.tenant), "t1");
    hp_err_t err;
    int rc = hp_block_merge(v, n, drop, ctx, &m->meta, &m->data, &m->json, st, &err);
    if (rc != 0)
        fprintf(stderr, "  merge: %s\n", err.msg);
    REQUIRE(rc == 0);
    mem_open(m);
    return m;
}

/* ---- what a block holds, independent of its IDs ---- */

/* A stack as its function names, root first. */
static uint64_t stack_hash(const hp_symdb_t *db, uint32_t st)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (; st != 0; st = hp_symdb_stack_parent(db, st)) {
        const hp_symdb_location_t *loc = hp_symdb_location(db, hp_symdb_stack_location(db, st));
        const hp_symdb_line_t *ln = hp_symdb_lines(db, loc);
        for (uint32_t i = 0; i < loc->line_n; i++) {
            hp_str_t nm = hp_symdb_function_name(db, ln[i].function);
            h = XXH3_64bits_withSeed(nm.p, nm.n, h) ^ (uint64_t)ln[i].line;
        }
        h = XXH3_64bits_withSeed(&loc->address, sizeof(loc->address), h);
    }
    return h;
}

/* Per series (in order): labels, profile count, and a fingerprint of
 * every (time, ID, stack, span, value) it holds. */
typedef struct digest {
    char labels[MAX_SERIES][256];
    uint64_t fp[MAX_SERIES], leaf[MAX_SERIES];
    size_t profiles[MAX_SERIES];
    size_t n, total_profiles, with_spans;
} digest_t;

static void digest(const mem_t *m, digest_t *d)
{
    memset(d, 0, sizeof(*d));
    d->n = hp_block_n_series(m->b);
    REQUIRE(d->n <= MAX_SERIES);
    for (size_t i = 0; i < d->n; i++) {
        hp_buf_t l = HP_BUF_INIT;
        hp_labels_format(hp_block_series_labels(m->b, i), &l);
        snprintf(d->labels[i], sizeof(d->labels[i]), "%s", hp_buf_cstr(&l));
        hp_buf_fini(&l);
        hp_block_page_t page;
        hp_err_t err;
        REQUIRE(hp_block_read_page(m->b, i, &page, &err) == 0);
        d->profiles[i] = page.n_profiles;
        d->total_profiles += page.n_profiles;
        for (size_t j = 0; j < page.n_profiles; j++) {
            const hp_block_profile_t *p = &page.profiles[j];
            uint64_t ph = XXH3_64bits_withSeed(p->id, 16, (uint64_t)p->t);
            d->with_spans += p->spans != NULL;
            for (uint32_t k = 0; k < p->n; k++) {
                uint64_t sh = stack_hash(m->syms, p->stacks[k]), span = p->spans ? p->spans[k] : 0;
                d->fp[i] += (sh ^ ph ^ hp_mix64(span)) * (uint64_t)p->values[k];
                d->leaf[i] += sh * (uint64_t)p->values[k];
            }
        }
        hp_block_page_fini(&page);
    }
}

static void check_same(const digest_t *a, const digest_t *b)
{
    CHECK_EQ_INT(a->n, b->n);
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        CHECK_EQ_STR(a->labels[i], b->labels[i]);
        CHECK_EQ_INT(a->profiles[i], b->profiles[i]);
        CHECK(a->fp[i] == b->fp[i]);
        CHECK(a->leaf[i] == b->leaf[i]);
    }
    CHECK_EQ_INT(a->with_spans, b->with_spans);
}

/* ---- tests ---- */

/* Replica A holds profiles 0..5, replica B 3..8 (its symbols imported in
 * the other order): the merge holds 0..8 once, exactly as a block
 * written from 0..8. */
static void test_replicas_union(void)
{
    built_t *ba = build(0, 5, false), *bb = build(3, 8, true), *bu = build(0, 8, false);
    REQUIRE(ba && bb && bu);
    mem_t *a = mem_write(ba, 1700000001000), *b = mem_write(bb, 1700000002000),
          *u = mem_write(bu, 1700000003000);
    hp_block_merge_stats_t st;
    mem_t *in[] = {a, b};
    mem_t *m = merge(in, 2, NULL, NULL, &st);
    digest_t dm, du, da;
    digest(m, &dm);
    digest(u, &du);
    digest(a, &da);
    check_same(&dm, &du);
    CHECK(dm.n > 3);
    CHECK_EQ_INT(dm.total_profiles, du.total_profiles);
    CHECK_EQ_INT(st.profiles_in, da.total_profiles * 2);
    CHECK_EQ_INT(st.duplicates, dm.n * 3);
    CHECK_EQ_INT(st.profiles_out, dm.total_profiles);
    CHECK_EQ_INT(st.dropped, 0);
    CHECK_EQ_INT(m->meta.num_profiles, u->meta.num_profiles);
    CHECK_EQ_INT(m->meta.num_samples, u->meta.num_samples);
    CHECK_EQ_INT(m->meta.min_time_ms, u->meta.min_time_ms);
    CHECK_EQ_INT(m->meta.max_time_ms, u->meta.max_time_ms);
    /* the merged symbols are no more than the union needs */
    CHECK(hp_symdb_n_locations(m->syms) <= hp_symdb_n_locations(u->syms));
    CHECK(hp_symdb_n_stacks(m->syms) <= hp_symdb_n_stacks(u->syms));
    printf("replicas: %zu + %zu bytes → %zu bytes (union written directly: %zu)\n", a->data.len, b->data.len,
           m->data.len, u->data.len);
    mem_free(m);

    /* identical replicas merge to one of them */
    built_t *ba2 = build(0, 5, true);
    REQUIRE(ba2);
    mem_t *a2 = mem_write(ba2, 1700000004000);
    mem_t *in2[] = {a, a2, a};
    m = merge(in2, 3, NULL, NULL, &st);
    digest(m, &dm);
    check_same(&dm, &da);
    CHECK_EQ_INT(st.duplicates, da.total_profiles * 2);
    mem_free(m);
    mem_free(a2);
    built_free(ba2);
    mem_free(a);
    mem_free(b);
    mem_free(u);
    built_free(ba);
    built_free(bb);
    built_free(bu);
}

/* Replicas whose samples carry span IDs merge to the union with every
 * span kept — (stack, span) pairs as a block written from the union
 * directly — and each profile once. */
static void test_spans(void)
{
    built_t *ba = build_spans(0, 5, false, true), *bb = build_spans(3, 8, true, true),
            *bu = build_spans(0, 8, false, true), *plain = build(0, 8, false);
    REQUIRE(ba && bb && bu && plain);
    mem_t *a = mem_write(ba, 1700000001000), *b = mem_write(bb, 1700000002000),
          *u = mem_write(bu, 1700000003000), *p = mem_write(plain, 1700000004000);
    hp_block_merge_stats_t st;
    mem_t *in[] = {a, b};
    mem_t *m = merge(in, 2, NULL, NULL, &st);
    digest_t dm, du, dp;
    digest(m, &dm);
    digest(u, &du);
    digest(p, &dp);
    check_same(&dm, &du);
    CHECK(dm.with_spans > dm.total_profiles / 2);
    CHECK_EQ_INT(st.duplicates, dm.n * 3);
    CHECK_EQ_INT(m->meta.num_samples, u->meta.num_samples);
    REQUIRE(dm.n == dp.n);
    for (size_t i = 0; i < dm.n; i++)
        CHECK(dm.leaf[i] == dp.leaf[i]); /* the same values per stack as without spans */
    mem_free(m);
    mem_free(a);
    mem_free(b);
    mem_free(u);
    mem_free(p);
    built_free(ba);
    built_free(bb);
    built_free(bu);
    built_free(plain);
}

typedef struct drop_ctx {
    const char *service;
    int64_t before_ns; /* also drop profiles of every series before this */
    int calls;
} drop_ctx_t;

static bool drop_fn(void *ctx, const hp_labels_t *labels, int64_t time_ns)
{
    drop_ctx_t *d = ctx;
    d->calls++;
    return hp_str_eq_c(hp_labels_get(labels, "service_name"), d->service) || time_ns < d->before_ns;
}

/* The drop callback removes exactly the selected series' profiles. */
static void test_drop(void)
{
    built_t *ba = build(0, 5, false), *bb = build(3, 8, true), *bu = build(0, 8, false);
    REQUIRE(ba && bb && bu);
    mem_t *a = mem_write(ba, 1700000001000), *b = mem_write(bb, 1700000002000),
          *u = mem_write(bu, 1700000003000);
    drop_ctx_t d = {"go_mix.heap.pb.gz", 0, 0};
    hp_block_merge_stats_t st;
    mem_t *in[] = {a, b};
    mem_t *m = merge(in, 2, drop_fn, &d, &st);
    digest_t dm, du;
    digest(m, &dm);
    digest(u, &du);
    size_t kept = 0, heap = 0;
    for (size_t i = 0; i < du.n; i++) {
        if (strstr(du.labels[i], "go_mix.heap") != NULL) {
            heap += du.profiles[i];
            continue;
        }
        /* every other series is there, unchanged */
        bool found = false;
        for (size_t j = 0; j < dm.n; j++)
            if (strcmp(dm.labels[j], du.labels[i]) == 0) {
                found = true;
                CHECK_EQ_INT(dm.profiles[j], du.profiles[i]);
                CHECK(dm.fp[j] == du.fp[i]);
            }
        CHECK(found);
        kept++;
    }
    CHECK(heap > 0);
    CHECK_EQ_INT(dm.n, kept);
    for (size_t j = 0; j < dm.n; j++)
        CHECK(strstr(dm.labels[j], "go_mix.heap") == NULL);
    CHECK_EQ_INT(st.dropped, heap);
    CHECK(d.calls > 0);
    CHECK(hp_symdb_n_locations(m->syms) < hp_symdb_n_locations(u->syms)); /* heap-only symbols are gone */
    mem_free(m);

    /* a time cut: profiles 0..3 of every series go (times before k = 4) */
    drop_ctx_t cut = {"none", 1700000000000000000LL + 4 * 10000000000LL, 0};
    mem_t *one[] = {u};
    m = merge(one, 1, drop_fn, &cut, &st);
    digest(m, &dm);
    for (size_t j = 0; j < dm.n; j++)
        CHECK_EQ_INT(dm.profiles[j], 5); /* profiles 4..8 */
    CHECK_EQ_INT(m->meta.min_time_ms, 1700000000000LL + 4 * 10000LL);
    mem_free(m);

    /* everything dropped: an empty, valid block */
    drop_ctx_t all = {"none", INT64_MAX, 0};
    m = merge(one, 1, drop_fn, &all, &st);
    CHECK_EQ_INT(st.profiles_out, 0);
    CHECK_EQ_INT(hp_block_n_series(m->b), 0);
    mem_free(m);
    mem_free(a);
    mem_free(b);
    mem_free(u);
    built_free(ba);
    built_free(bb);
    built_free(bu);
}

static bool has_source(const hp_ulid_t *v, size_t n, const char *ulid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].s, ulid) == 0)
            return true;
    return false;
}

/* Level and compaction.sources: level-1 inputs are their own sources; a
 * merge of merges lists every level-1 block, sorted, once. */
static void test_sources(void)
{
    built_t *ba = build(0, 2, false), *bb = build(1, 3, true);
    REQUIRE(ba && bb);
    mem_t *a = mem_write(ba, 1700000001000), *b = mem_write(bb, 1700000002000),
          *c = mem_write(ba, 1700000003000);
    hp_block_merge_stats_t st;
    mem_t *ab_in[] = {a, b};
    mem_t *ab = merge(ab_in, 2, NULL, NULL, &st);
    CHECK_EQ_INT(ab->meta.level, 2);
    CHECK_EQ_STR(ab->meta.source, "compactor");
    REQUIRE(ab->meta.n_sources == 2);
    CHECK(strcmp(ab->meta.sources[0].s, ab->meta.sources[1].s) < 0);
    CHECK(has_source(ab->meta.sources, 2, a->meta.ulid) && has_source(ab->meta.sources, 2, b->meta.ulid));

    /* meta.json carries them; parse leaves them out, meta_sources reads them */
    hp_ulid_t *src = NULL;
    size_t ns = 0;
    hp_err_t err;
    hp_block_meta_t back;
    REQUIRE(hp_block_meta_parse(ab->json.data, ab->json.len, &back, &err) == 0);
    CHECK_EQ_INT(back.level, 2);
    CHECK(back.sources == NULL && back.n_sources == 0);
    REQUIRE(hp_block_meta_sources(ab->json.data, ab->json.len, &src, &ns, &err) == 0);
    CHECK_EQ_INT(ns, 2);
    CHECK(ns == 2 && strcmp(src[0].s, ab->meta.sources[0].s) == 0 &&
          strcmp(src[1].s, ab->meta.sources[1].s) == 0);
    free(src);
    REQUIRE(hp_block_meta_sources(a->json.data, a->json.len, &src, &ns, &err) == 0);
    CHECK(ns == 1 && strcmp(src[0].s, a->meta.ulid) == 0);
    free(src);

    /* level 3 from a level-2 and a level-1 block: three sources */
    mem_t *abc_in[] = {ab, c};
    mem_t *abc = merge(abc_in, 2, NULL, NULL, &st);
    CHECK_EQ_INT(abc->meta.level, 3);
    CHECK_EQ_INT(abc->meta.n_sources, 3);
    CHECK(has_source(abc->meta.sources, abc->meta.n_sources, c->meta.ulid));
    CHECK(has_source(abc->meta.sources, abc->meta.n_sources, a->meta.ulid));
    REQUIRE(hp_block_meta_sources(abc->json.data, abc->json.len, &src, &ns, &err) == 0);
    CHECK_EQ_INT(ns, 3);
    free(src);

    /* bad input */
    hp_block_meta_t m;
    memset(&m, 0, sizeof(m));
    hp_buf_t d = HP_BUF_INIT, j = HP_BUF_INIT;
    CHECK_EQ_INT(hp_block_merge(NULL, 0, NULL, NULL, &m, &d, &j, NULL, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "inputs") != NULL && d.len == 0 && m.sources == NULL);
    const char *bad = "{\"ulid\":\"01HHYG6245NWHZWVP27V8WJRT7\",\"tenant\":\"t\",\"minTime\":1,\"maxTime\":2,"
                      "\"stats\":{\"numSeries\":1,\"numProfiles\":2,\"numSamples\":3},\"version\":1,"
                      "\"compaction\":{\"level\":2,\"sources\":[\"nope\"]},\"source\":\"compactor\","
                      "\"files\":[{\"relPath\":\"data\",\"sizeBytes\":10}]}";
    CHECK_EQ_INT(hp_block_meta_parse(bad, strlen(bad), &back, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "compaction.sources[0]") != NULL);
    CHECK_EQ_INT(hp_block_meta_sources(bad, strlen(bad), &src, &ns, &err), HP_EINVAL);
    CHECK(src == NULL);
    mem_free(abc);
    mem_free(ab);
    mem_free(a);
    mem_free(b);
    mem_free(c);
    built_free(ba);
    built_free(bb);
}

int main(void)
{
    HP_RUN(test_replicas_union);
    HP_RUN(test_spans);
    HP_RUN(test_drop);
    HP_RUN(test_sources);
    return hp_test_done();
}
