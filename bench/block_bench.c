/* block_bench — the bytes a block stores per profile, against the gzipped
 * pprof the client sent for it (issue 4's goal: at most 1/5).
 *
 * Usage: block_bench [-n PUSHES] [file.pb.gz ...]
 * Without files it runs over every *.pb.gz in $HP_TESTDATA/corpus/go and
 * corpus/node (default ../shared/testdata).
 *
 * Model: one service pushes one profile every 15 s, so a one-hour block
 * holds N = 240 pushes of the same program. Push k of a file is the file's
 * profile perturbed by a PRNG seeded with (file, k): each sample is kept
 * with probability 0.7; a kept sample's values are multiplied by a factor
 * drawn for that sample uniformly from [0.5, 1.5), rounded to the column's
 * granule (the GCD of the column in the file — the period for CPU
 * nanoseconds, 1 for counts) and never below one granule; the time is
 * t0 + 15 s·k plus up to 50 ms of jitter; the ID is 16 random bytes (the
 * distributor's is a content hash).
 *
 * Client bytes: each push re-encoded with hp_pprof_builder and gzipped with
 * libdeflate at the client's level: 1 for Go (runtime/pprof writes with
 * gzip.BestSpeed), 6 for Node (zlib's default). "re/orig" is the
 * unperturbed profile re-encoded so over the file's own size.
 *
 * Stored bytes: the pushes go the ingester's way (profile.h groups and
 * series labels, symdb import with stacks cut at 1000 frames, (stack,
 * value) pairs by stack, equal stacks summed, zeros dropped), then
 * hp_block_write; stored = data + meta.json. The metric name is
 * hp_profile_metric_name's, except "block" for *.block.* files (Go's block
 * and mutex profiles have the same sample types; the client names them).
 * Section sizes come from the data object's section table
 * (docs/BLOCK_FORMAT.md). "push 0 alone" is a block of the first push
 * only: the fixed cost of the symbols. The TOTAL rows sum the files'
 * blocks, then put the whole corpus in one block (one tenant; services
 * share a symdb). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/block.h"
#include "hotpath/compress.h"
#include "hotpath/pprof.h"
#include "hotpath/profile.h"
#include "hotpath/symdb.h"

#define DEFAULT_PUSHES 240
#define PUSH_EVERY_NS 15000000000LL
#define JITTER_NS 50000000LL
#define T0_NS 1700000000000000000LL
#define KEEP_PROB 0.7
#define MAX_DEPTH 1000
#define MAX_SYMBOL 65535
#define MAX_RAW ((size_t)256 << 20)
#define MAX_FILES 128

/* ---- a deterministic PRNG (splitmix64) ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---- a source: one corpus file, decoded ---- */

typedef struct source {
    char name[96];    /* "go/go_mix.cpu.pb.gz" */
    char service[64]; /* "go_mix": files of one program are one service */
    size_t gz_n;      /* the file's size */
    int level;        /* the client's gzip level */
    uint64_t seed;
    hp_buf_t raw; /* the decompressed pprof; p's strings point into it */
    hp_pprof_t p;
    hp_arena_t arena;
    hp_sample_group_t *groups; /* in arena */
    size_t n_groups;
    hp_str_t metric;
    int64_t *granule; /* per sample type */
} source_t;

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* Each sample type's granule: the GCD of its values (1 when all are 0). */
static void source_granules(source_t *s)
{
    const hp_pprof_t *p = &s->p;
    s->granule = hp_xcalloc(p->n_sample_types + 1, sizeof(int64_t));
    for (uint32_t t = 0; t < p->n_sample_types; t++) {
        int64_t g = 0;
        for (uint32_t i = 0; i < p->n_samples; i++) {
            int64_t v = p->values[p->samples[i].val_off + t];
            g = gcd64(g, v < 0 ? -v : v);
        }
        s->granule[t] = g > 0 ? g : 1;
    }
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = hp_xmalloc(len > 0 ? (size_t)len : 1);
    if (len < 0 || fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = len > 0 ? (size_t)len : 0;
    return p;
}

/* Loads path (shown as name) into s, which the caller zeroed; false with a
 * message on stderr when it cannot. s is safe to source_fini either way. */
static bool source_load(source_t *s, const char *path, const char *name, uint64_t seed)
{
    hp_arena_init(&s->arena, 0);
    snprintf(s->name, sizeof(s->name), "%s", name);
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    size_t stem = HP_MIN(strcspn(base, "."), sizeof(s->service) - 1);
    memcpy(s->service, base, stem);
    s->service[stem] = 0;
    s->level = strncmp(name, "node/", 5) == 0 ? 6 : 1;
    s->seed = seed;
    uint8_t *gz = read_file(path, &s->gz_n);
    hp_err_t err = {0};
    int rc = gz == NULL ? hp_err_set(&err, HP_EINVAL, "cannot read")
                        : hp_gunzip(gz, s->gz_n, MAX_RAW, &s->raw, &err);
    if (rc == 0)
        rc = hp_pprof_decode(&s->p, s->raw.data, s->raw.len, NULL, &err);
    free(gz);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return false;
    }
    hp_profile_group_samples(&s->p, &s->arena, &s->groups, &s->n_groups);
    s->metric = hp_profile_metric_name(&s->p, NULL);
    /* a Go block profile has the mutex profile's sample types: its client
     * names it */
    if (strstr(base, ".block.") != NULL)
        s->metric = HP_STR("block");
    source_granules(s);
    return true;
}

static void source_fini(source_t *s)
{
    if (s->groups)
        hp_profile_groups_fini(s->groups, s->n_groups);
    free(s->granule);
    hp_pprof_fini(&s->p);
    hp_buf_fini(&s->raw);
    hp_arena_fini(&s->arena);
}

/* ---- a push: one perturbed copy of a source ---- */

typedef struct push {
    int64_t t;
    uint8_t id[16];
    bool *keep;              /* per sample */
    int64_t *values;         /* indexed like p->values; 0 for dropped samples */
    hp_pprof_sample_t *kept; /* scratch for the client's view */
} push_t;

static void push_init(push_t *x, const source_t *s)
{
    memset(x, 0, sizeof(*x));
    x->keep = hp_xcalloc(s->p.n_samples + 1, sizeof(bool));
    x->values = hp_xcalloc(s->p.n_values + 1, sizeof(int64_t));
    x->kept = hp_xcalloc(s->p.n_samples + 1, sizeof(hp_pprof_sample_t));
}

static void push_fini(push_t *x)
{
    free(x->keep);
    free(x->values);
    free(x->kept);
}

/* v × f in whole granules, at least one (v = 0 stays 0). */
static int64_t scale(int64_t v, int64_t granule, double f)
{
    if (v == 0)
        return 0;
    long long units = llround((double)(v / granule) * f);
    if (units == 0)
        units = v > 0 ? 1 : -1;
    return (int64_t)units * granule;
}

/* Fills x with push k of s (see the model above); perturb = false gives
 * the file's own samples and values. */
static void push_make(push_t *x, const source_t *s, uint32_t k, bool perturb)
{
    const hp_pprof_t *p = &s->p;
    uint64_t r = s->seed * 1000003 + k;
    x->t = T0_NS + (int64_t)k * PUSH_EVERY_NS + (int64_t)(rng_unit(&r) * (double)JITTER_NS);
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = rng_next(&r);
        memcpy(x->id + i, &v, 8);
    }
    memset(x->values, 0, p->n_values * sizeof(int64_t));
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *smp = &p->samples[i];
        x->keep[i] = !perturb || rng_unit(&r) < KEEP_PROB;
        double f = perturb ? 0.5 + rng_unit(&r) : 1.0;
        for (uint32_t t = 0; x->keep[i] && t < p->n_sample_types; t++)
            x->values[smp->val_off + t] = scale(p->values[smp->val_off + t], s->granule[t], f);
    }
}

/* The gzipped pprof a client would send for x: re-encoded, then gzipped at
 * the source's level. pb and gz are scratch. */
static size_t client_gz_bytes(const source_t *s, push_t *x, hp_buf_t *pb, hp_buf_t *gz)
{
    hp_pprof_t view = s->p; /* arrays borrowed; never finished */
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->p.n_samples; i++)
        if (x->keep[i])
            x->kept[n++] = s->p.samples[i];
    view.samples = x->kept;
    view.n_samples = n;
    view.values = x->values;
    view.time_nanos = x->t;
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_add_profile(b, &view, NULL, 0);
    hp_buf_reset(pb);
    hp_pprof_builder_encode(b, pb);
    hp_pprof_builder_free(b);
    hp_buf_reset(gz);
    if (hp_gzip(pb->data, pb->len, s->level, gz) != 0) {
        fprintf(stderr, "%s: gzip failed\n", s->name);
        exit(1);
    }
    return gz->len;
}

/* ---- a store: what an ingester's head holds, and one block ---- */

typedef struct series {
    hp_labels_t labels; /* strings in the store's arena */
    int64_t period;
    hp_block_profile_in_t *profiles; /* stacks and values owned */
    size_t n, cap;
} series_t;

typedef struct store {
    hp_symdb_t *db;
    hp_arena_t arena;
    series_t *series;
    size_t n_series, cap_series;
    size_t pushes;
} store_t;

/* How one source's samples land in one store. */
typedef struct binding {
    uint32_t *stacks; /* per sample: the store's stack ID */
    size_t *series;   /* per (group, sample type): index into store->series */
} binding_t;

typedef struct pair {
    uint32_t stack;
    int64_t value;
} pair_t;

static void store_init(store_t *st)
{
    memset(st, 0, sizeof(*st));
    st->db = hp_symdb_new();
    hp_arena_init(&st->arena, 0);
}

static void store_fini(store_t *st)
{
    for (size_t i = 0; i < st->n_series; i++) {
        for (size_t k = 0; k < st->series[i].n; k++) {
            free((void *)st->series[i].profiles[k].stacks);
            free((void *)st->series[i].profiles[k].values);
        }
        free(st->series[i].profiles);
        hp_labels_fini(&st->series[i].labels);
    }
    free(st->series);
    hp_symdb_free(st->db);
    hp_arena_fini(&st->arena);
}

/* The store's series with labels ls, created (taking ls) if new; ls is
 * finished when an equal series exists. */
static size_t store_series(store_t *st, hp_labels_t *ls, int64_t period)
{
    for (size_t i = 0; i < st->n_series; i++)
        if (hp_labels_equal(&st->series[i].labels, ls)) {
            hp_labels_fini(ls);
            return i;
        }
    hp_labels_clone(ls, &st->arena); /* the labels borrow from the source, which goes first */
    HP_GROW(st->series, st->cap_series, st->n_series + 1);
    st->series[st->n_series] = (series_t){*ls, period, NULL, 0, 0};
    return st->n_series++;
}

/* Imports s's symbols into st and finds its series, as the ingester does
 * for every push (a push's symbols are a subset of the file's, so once is
 * the same). Free with binding_fini. */
static void store_bind(store_t *st, const source_t *s, binding_t *b)
{
    const hp_pprof_t *p = &s->p;
    uint32_t *loc_map = hp_xmalloc((p->n_locations + 1) * sizeof(uint32_t));
    uint32_t *locs = hp_xmalloc((MAX_DEPTH + 1) * sizeof(uint32_t));
    hp_symdb_import(st->db, p, loc_map, MAX_SYMBOL);
    b->stacks = hp_xmalloc((p->n_samples + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *smp = &p->samples[i];
        uint32_t n = 0; /* the leaf-most frames */
        for (; n < smp->loc_n && n < MAX_DEPTH; n++)
            locs[n] = loc_map[p->sample_locs[smp->loc_off + n]];
        b->stacks[i] = hp_symdb_stack(st->db, locs, n);
    }
    free(locs);
    free(loc_map);
    hp_labels_t base;
    hp_labels_init(&base);
    hp_labels_add(&base, HP_STR(HP_LABEL_SERVICE_NAME), hp_str_c(s->service));
    b->series = hp_xmalloc((s->n_groups * p->n_sample_types + 1) * sizeof(size_t));
    for (size_t g = 0; g < s->n_groups; g++)
        for (uint32_t t = 0; t < p->n_sample_types; t++) {
            hp_labels_t ls;
            hp_labels_init(&ls);
            hp_profile_series_labels(p, t, s->metric, &base, &s->groups[g].labels, &st->arena, &ls);
            b->series[g * p->n_sample_types + t] = store_series(st, &ls, p->period);
        }
    hp_labels_fini(&base);
}

static void binding_fini(binding_t *b)
{
    free(b->stacks);
    free(b->series);
}

static int pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* Sorts pairs by stack, sums equal stacks and drops zeros; returns the
 * count left. */
static size_t pairs_normalize(pair_t *v, size_t n)
{
    hp_qsort(v, n, sizeof(*v), pair_cmp);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o > 0 && v[o - 1].stack == v[i].stack)
            v[o - 1].value = hp_add_wrap(v[o - 1].value, v[i].value);
        else
            v[o++] = v[i];
    }
    size_t w = 0;
    for (size_t i = 0; i < o; i++)
        if (v[i].value != 0)
            v[w++] = v[i];
    return w;
}

/* Appends a profile of n pairs to series se (the arrays copied). */
static void series_append(series_t *se, const push_t *x, const pair_t *v, size_t n)
{
    uint32_t *stacks = hp_xmalloc((n + 1) * sizeof(uint32_t));
    int64_t *values = hp_xmalloc((n + 1) * sizeof(int64_t));
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        stacks[i] = v[i].stack, values[i] = v[i].value;
        total = hp_add_wrap(total, v[i].value);
    }
    HP_GROW(se->profiles, se->cap, se->n + 1);
    hp_block_profile_in_t *o = &se->profiles[se->n++];
    *o = (hp_block_profile_in_t){
        .t = x->t, .total = total, .stacks = stacks, .values = values, .n = (uint32_t)n};
    memcpy(o->id, x->id, 16);
}

/* Stores push x of s in st: per label group and sample type, one profile
 * of (stack, value) pairs. pairs is scratch of p->n_samples entries. */
static void store_add(store_t *st, const source_t *s, const binding_t *b, const push_t *x, pair_t *pairs)
{
    const hp_pprof_t *p = &s->p;
    for (size_t g = 0; g < s->n_groups; g++) {
        const hp_sample_group_t *grp = &s->groups[g];
        for (uint32_t t = 0; t < p->n_sample_types; t++) {
            size_t n = 0;
            for (uint32_t k = 0; k < grp->n; k++) {
                uint32_t i = grp->samples[k];
                int64_t v = x->values[p->samples[i].val_off + t];
                if (x->keep[i] && v != 0)
                    pairs[n++] = (pair_t){b->stacks[i], v};
            }
            n = pairs_normalize(pairs, n);
            if (n > 0)
                series_append(&st->series[b->series[g * p->n_sample_types + t]], x, pairs, n);
        }
    }
    st->pushes++;
}

/* ---- writing a store and measuring the block ---- */

typedef struct sizes {
    uint64_t data, meta;
    uint64_t stored[5], raw[5]; /* by section ID: 1 symbols, 2 index, 3 postings, 4 pages */
    uint64_t profiles, samples, series;
} sizes_t;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Stored and raw bytes per section, from the table before the trailer. */
static void section_sizes(const hp_buf_t *data, sizes_t *z)
{
    if (data->len < 16)
        return;
    const uint8_t *tr = data->data + data->len - 16;
    uint32_t t = le32(tr + 4);
    if (t % 40 != 0 || t > data->len - 16)
        return;
    for (const uint8_t *e = tr - t; e < tr; e += 40) {
        uint32_t id = le32(e);
        if (id >= 1 && id <= 4) {
            z->stored[id] += le64(e + 16);
            z->raw[id] += le64(e + 24);
        }
    }
}

/* Writes st as a block and measures it; exits on a write error. */
static void store_measure(const store_t *st, sizes_t *z)
{
    hp_block_series_in_t *in = hp_xcalloc(st->n_series + 1, sizeof(*in));
    for (size_t i = 0; i < st->n_series; i++)
        in[i] = (hp_block_series_in_t){&st->series[i].labels, st->series[i].profiles, st->series[i].n,
                                       st->series[i].period};
    hp_block_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    hp_ulid_new(T0_NS / 1000000, meta.ulid);
    snprintf(meta.tenant, sizeof(meta.tenant), "tenant-1");
    snprintf(meta.source, sizeof(meta.source), "ingester");
    meta.level = 1;
    hp_buf_t data = HP_BUF_INIT, json = HP_BUF_INIT;
    hp_err_t err;
    if (hp_block_write(st->db, in, st->n_series, &meta, &data, &json, &err) != 0) {
        fprintf(stderr, "block write: %s\n", err.msg);
        exit(1);
    }
    memset(z, 0, sizeof(*z));
    z->data = data.len, z->meta = json.len;
    z->profiles = meta.num_profiles, z->samples = meta.num_samples, z->series = meta.num_series;
    section_sizes(&data, z);
    hp_buf_fini(&data);
    hp_buf_fini(&json);
    free(in);
}

/* ---- the report ---- */

/* One line of the table: a file, or the corpus. */
typedef struct row {
    const char *name;
    uint64_t samples, pushes;
    uint64_t gz_orig, gz_reenc; /* the file's size; its unperturbed re-encoding */
    uint64_t gz_one, st_one;    /* push 0 alone: client gz, block bytes */
    uint64_t gz_all;            /* all pushes: client gz */
    double gz_cal;              /* gz_all scaled by gz_orig / gz_reenc */
    sizes_t blk;                /* all pushes: the block */
} row_t;

/* What the totals keep besides the sums: per-file ratios, the worst file. */
typedef struct summary {
    row_t sum;
    double ratios[MAX_FILES];
    size_t n;
    row_t worst;
    char worst_name[96];
} summary_t;

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

static void print_header(uint32_t n_pushes)
{
    printf("%-34s %7s %6s %8s %7s | %8s %8s %6s | %10s %10s %8s %6s | %9s %9s %8s\n", "file", "samples",
           "series", "gz/push", "re/orig", "gz", "block", "ratio", "gz", "block", "B/push", "ratio",
           "symbols", "pages", "idx+post");
    printf("%-34s %7s %6s %8s %7s | %-24s | %-37s | %s\n", "", "", "", "", "", "push 0 alone", "all N pushes",
           "N pushes: stored bytes by section");
    printf("(N = %u pushes 15 s apart per file; bytes; block = data + meta.json)\n", n_pushes);
}

static void print_row(const row_t *r)
{
    uint64_t st = r->blk.data + r->blk.meta;
    printf("%-34.34s %7llu %6llu %8.0f %7.2f | %8llu %8llu %6.3f | %10llu %10llu %8.0f %6.3f | %9llu %9llu "
           "%8llu\n",
           r->name, (unsigned long long)r->samples, (unsigned long long)r->blk.series,
           ratio(r->gz_all, r->pushes), ratio(r->gz_reenc, r->gz_orig), (unsigned long long)r->gz_one,
           (unsigned long long)r->st_one, ratio(r->st_one, r->gz_one), (unsigned long long)r->gz_all,
           (unsigned long long)st, ratio(st, r->pushes), ratio(st, r->gz_all),
           (unsigned long long)r->blk.stored[1], (unsigned long long)r->blk.stored[4],
           (unsigned long long)(r->blk.stored[2] + r->blk.stored[3]));
}

static void sizes_add(sizes_t *a, const sizes_t *b)
{
    a->data += b->data, a->meta += b->meta;
    for (int i = 0; i < 5; i++)
        a->stored[i] += b->stored[i], a->raw[i] += b->raw[i];
    a->profiles += b->profiles, a->samples += b->samples, a->series += b->series;
}

static void row_add(row_t *a, const row_t *b)
{
    a->samples += b->samples, a->pushes += b->pushes;
    a->gz_orig += b->gz_orig, a->gz_reenc += b->gz_reenc;
    a->gz_one += b->gz_one, a->st_one += b->st_one, a->gz_all += b->gz_all;
    a->gz_cal += b->gz_cal;
    sizes_add(&a->blk, &b->blk);
}

/* Runs source s (N pushes): its blocks of push 0 and of all N pushes, and
 * adds its pushes to the corpus-wide store all; adds its row to tot. */
static void bench_source(const source_t *s, uint32_t n_pushes, store_t *all, summary_t *tot)
{
    store_t one, many;
    store_init(&one), store_init(&many);
    binding_t b_one, b_many, b_all;
    store_bind(&one, s, &b_one), store_bind(&many, s, &b_many), store_bind(all, s, &b_all);
    push_t x;
    push_init(&x, s);
    pair_t *pairs = hp_xmalloc((s->p.n_samples + 1) * sizeof(pair_t));
    hp_buf_t pb = HP_BUF_INIT, gz = HP_BUF_INIT;
    row_t r = {.name = s->name, .samples = s->p.n_samples, .pushes = n_pushes, .gz_orig = s->gz_n};
    push_make(&x, s, 0, false);
    r.gz_reenc = client_gz_bytes(s, &x, &pb, &gz);
    for (uint32_t k = 0; k < n_pushes; k++) {
        push_make(&x, s, k, true);
        uint64_t g = client_gz_bytes(s, &x, &pb, &gz);
        r.gz_all += g;
        if (k == 0) {
            r.gz_one = g;
            store_add(&one, s, &b_one, &x, pairs);
        }
        store_add(&many, s, &b_many, &x, pairs);
        store_add(all, s, &b_all, &x, pairs);
    }
    sizes_t z1;
    store_measure(&one, &z1);
    r.st_one = z1.data + z1.meta;
    store_measure(&many, &r.blk);
    r.gz_cal = (double)r.gz_all * ratio(r.gz_orig, r.gz_reenc);
    print_row(&r);
    fflush(stdout);
    row_add(&tot->sum, &r);
    double q = ratio(r.blk.data + r.blk.meta, r.gz_all);
    if (tot->n == 0 || q > ratio(tot->worst.blk.data + tot->worst.blk.meta, tot->worst.gz_all)) {
        tot->worst = r;
        snprintf(tot->worst_name, sizeof(tot->worst_name), "%s", s->name);
        tot->worst.name = tot->worst_name;
    }
    if (tot->n < MAX_FILES)
        tot->ratios[tot->n++] = q;
    hp_buf_fini(&pb), hp_buf_fini(&gz);
    free(pairs);
    push_fini(&x);
    binding_fini(&b_one), binding_fini(&b_many), binding_fini(&b_all);
    store_fini(&one), store_fini(&many);
}

static void print_sections(const char *what, const sizes_t *z)
{
    static const char *const names[5] = {"", "symbols", "series index", "postings", "pages"};
    printf("%s: data %llu B + meta.json %llu B; %llu series, %llu profiles, %llu samples\n", what,
           (unsigned long long)z->data, (unsigned long long)z->meta, (unsigned long long)z->series,
           (unsigned long long)z->profiles, (unsigned long long)z->samples);
    for (int i = 1; i <= 4; i++)
        printf("  %-13s %11llu B stored (%5.1f %%), %11llu B raw (zstd %4.1fx)\n", names[i],
               (unsigned long long)z->stored[i], 100 * ratio(z->stored[i], z->data),
               (unsigned long long)z->raw[i], ratio(z->raw[i], z->stored[i]));
    uint64_t sec = z->stored[1] + z->stored[2] + z->stored[3] + z->stored[4];
    printf("  %-13s %11llu B (header, section table, trailer)\n", "framing",
           (unsigned long long)(z->data - HP_MIN(sec, z->data)));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The totals: the files' blocks summed, the corpus in one block, the
 * spread of per-file ratios and where the worst file's bytes go. */
static void print_totals(summary_t *t, const store_t *all)
{
    t->sum.name = "TOTAL (one block per file)";
    print_row(&t->sum);
    row_t one = t->sum;
    one.name = "TOTAL (the corpus in one block)";
    store_measure(all, &one.blk);
    print_row(&one);
    qsort(t->ratios, t->n, sizeof(double), cmp_double);
    size_t met = 0;
    for (size_t i = 0; i < t->n; i++)
        met += t->ratios[i] <= 0.2;
    printf("\nper-file ratio (N pushes): median %.3f, worst %.3f (%s); %zu of %zu files <= 0.2\n",
           t->n ? t->ratios[t->n / 2] : 0.0, t->n ? t->ratios[t->n - 1] : 0.0, t->worst_name, met, t->n);
    printf("against the files' own gzip sizes (client gz scaled by orig/re): total ratio %.3f\n\n",
           t->sum.gz_cal > 0 ? (double)(t->sum.blk.data + t->sum.blk.meta) / t->sum.gz_cal : 0.0);
    print_sections("one block per file, summed", &t->sum.blk);
    print_sections("the corpus in one block", &one.blk);
    print_sections(t->worst_name, &t->worst.blk);
    const sizes_t *w = &t->worst.blk;
    printf("  per profile in its pages: %.1f B raw, %.1f B stored; %.2f samples per profile\n",
           ratio(w->raw[4], w->profiles), ratio(w->stored[4], w->profiles), ratio(w->samples, w->profiles));
}

/* ---- the corpus ---- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the *.pb.gz files of base/sub to names ("sub/file", malloc'd). */
static size_t list_dir(const char *base, const char *sub, char **names, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", base, sub);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open\n", dir);
        return n;
    }
    size_t first = n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".pb.gz") == 0) {
            names[n] = hp_xmalloc(strlen(sub) + len + 2);
            sprintf(names[n++], "%s/%s", sub, e->d_name);
        }
    }
    closedir(d);
    qsort(names + first, n - first, sizeof(char *), by_name);
    return n;
}

int main(int argc, char **argv)
{
    uint32_t n_pushes = DEFAULT_PUSHES;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "-n") == 0) {
        n_pushes = (uint32_t)strtoul(argv[a + 1], NULL, 10);
        a += 2;
    }
    if (n_pushes == 0)
        n_pushes = 1;
    char *names[MAX_FILES];
    size_t n = 0;
    const char *env = getenv("HP_TESTDATA");
    char base[4096];
    snprintf(base, sizeof(base), "%s/corpus", env ? env : "../shared/testdata");
    if (a < argc) {
        for (; a < argc && n < MAX_FILES; a++)
            names[n++] = hp_xstrdup(argv[a]);
        base[0] = 0;
    } else {
        n = list_dir(base, "go", names, n);
        n = list_dir(base, "node", names, n);
    }
    print_header(n_pushes);
    store_t all;
    store_init(&all);
    summary_t *tot = hp_xcalloc(1, sizeof(*tot));
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof(path), "%s%s%s", base, base[0] ? "/" : "", names[i]);
        source_t s;
        memset(&s, 0, sizeof(s));
        if (source_load(&s, path, names[i], i + 1))
            bench_source(&s, n_pushes, &all, tot);
        source_fini(&s);
        free(names[i]);
    }
    print_totals(tot, &all);
    free(tot);
    store_fini(&all);
    return 0;
}
