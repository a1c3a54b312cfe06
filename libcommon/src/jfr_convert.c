/* JFR events → pprof profiles, as grafana/jfr-parser's pprof package (which
 * Pyroscope's /ingest?format=jfr calls) builds them, followed by the split
 * Pyroscope's distributor then makes by sample labels: one profile per
 * (kind, label set).
 *
 * Three stages keep the work and memory proportional to what is new:
 *   - while a chunk is read, events are summed per (profile, stack trace,
 *     span), since stack trace IDs only mean something within a chunk;
 *   - at the chunk's end each stack trace is resolved once into frames of
 *     interned function names and interned itself, and the sums join the
 *     recording's samples, keyed by (profile, stack, span);
 *   - at the end each profile's pprof is built and encoded in turn, so only
 *     one builder lives at a time.
 * Every new sample is charged, at the least it will take encoded, against
 * the output bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/hashmap.h"
#include "hotpath/jfr.h"
#include "hotpath/pprof.h"
#include "jfr_internal.h"

/* The profile kinds, one profile each per label set. */
enum { K_CPU, K_WALL, K_TLAB_IN, K_TLAB_OUT, K_ALLOC_SAMPLE, K_LOCK, K_PARK, K_LIVE, K_MALLOC, K_COUNT };

typedef struct kind_def {
    const char *metric;
    const char *type[2], *unit[2];
    uint32_t n_types;
    const char *period_type, *period_unit; /* NULL: no period type */
    bool per_sample;                       /* a sample is worth 1e9/sample_rate ns */
} kind_def_t;

/* jfr-parser's sample types, period types and metric names per kind. */
static const kind_def_t KINDS[K_COUNT] = {
    [K_CPU] = {"process_cpu", {"cpu"}, {"nanoseconds"}, 1, "cpu", "nanoseconds", true},
    [K_WALL] = {"wall", {"wall"}, {"nanoseconds"}, 1, "wall", "nanoseconds", true},
    [K_TLAB_IN] = {"memory",
                   {"alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes"},
                   {"count", "bytes"},
                   2,
                   "space",
                   "bytes",
                   false},
    [K_TLAB_OUT] = {"memory",
                    {"alloc_outside_tlab_objects", "alloc_outside_tlab_bytes"},
                    {"count", "bytes"},
                    2,
                    "space",
                    "bytes",
                    false},
    [K_ALLOC_SAMPLE] = {"memory",
                        {"alloc_sample_objects", "alloc_sample_bytes"},
                        {"count", "bytes"},
                        2,
                        "space",
                        "bytes",
                        false},
    [K_LOCK] = {"mutex", {"contentions", "delay"}, {"count", "nanoseconds"}, 2, "mutex", "count", false},
    [K_PARK] = {"block", {"contentions", "delay"}, {"count", "nanoseconds"}, 2, "block", "count", false},
    [K_LIVE] = {"memory", {"live"}, {"count"}, 1, "objects", "count", false},
    [K_MALLOC] = {"memory", {"malloc_objects", "malloc_bytes"}, {"count", "bytes"}, 2, NULL, NULL, false},
};

typedef struct prof {
    uint32_t lset, n_samples;
    uint8_t kind;
} prof_t;

/* Values summed for (profile, stack, span): the stack is a JFR stack trace
 * ID while in a chunk's sums, an index into stacks once a sample. */
typedef struct sum {
    uint64_t key[3];
    int64_t v[2];
} sum_t;

/* A frame as kept: a function (index into fns) and its line. */
typedef struct frame {
    uint32_t fn;
    int32_t line;
} frame_t;

typedef struct kept_stack {
    uint32_t off, n; /* frames, leaf first */
} kept_stack_t;

/* A table of sums keyed by their 24-byte keys. */
typedef struct sums {
    sum_t *v;
    size_t n, cap;
    hp_idtab_t tab;
} sums_t;

typedef struct conv {
    const hp_jfr_params_t *par;
    int64_t period;     /* ns per CPU or wall sample */
    uint32_t max_depth; /* 0 = none */
    size_t max_out, budget;
    uint64_t seed; /* keeps hash slots unpredictable to a sender */
    hp__jfr_lsets_t *lsets;
    char *event; /* the recording's "event" setting (jfr_event), owned */
    size_t event_n;
    prof_t *profs;
    size_t n_profs, cap_profs;
    hp_u64map_t prof_ids;     /* label set << 4 | kind → index into profs */
    sums_t chunk;             /* this chunk's sums by JFR stack trace */
    hp_u64map_t chunk_fns;    /* this chunk's method ID → function + 1 (0: frame dropped) */
    hp_u64map_t chunk_stacks; /* this chunk's stack trace ID → stack */
    hp_arena_t names;
    hp_str_t *fns; /* interned function names */
    size_t n_fns, cap_fns;
    hp_idtab_t fn_tab;
    frame_t *frames;
    size_t n_frames, cap_frames;
    kept_stack_t *stacks; /* interned stacks */
    size_t n_stacks, cap_stacks;
    hp_idtab_t stack_tab;
    frame_t *tmp;
    size_t cap_tmp;
    sums_t samples; /* the recording's, by interned stack */
    uint64_t *locs;
    size_t cap_locs;
} conv_t;

/* Spends n bytes of the output bound; HP_ETOOLARGE once it runs out. */
static int charge(conv_t *v, size_t n, hp_err_t *err)
{
    if (n > v->budget)
        return hp_err_set(err, HP_ETOOLARGE, "jfr: the recording converts to more than %zu bytes of profiles",
                          v->max_out);
    v->budget -= n;
    return 0;
}

/* ------------------------------------------------------------------------
 * Sums.
 */

static bool sum_eq(const void *ctx, uint32_t id, const void *key)
{
    const sums_t *s = ctx;
    return memcmp(s->v[id].key, key, sizeof(s->v[id].key)) == 0;
}

/* The sum of key, created at zero when new (*added says so). */
static sum_t *sum_at(sums_t *s, const uint64_t key[3], uint64_t seed, bool *added)
{
    uint64_t h = XXH3_64bits_withSeed(key, 3 * sizeof(uint64_t), seed);
    uint32_t id = hp_idtab_find(&s->tab, h, sum_eq, s, key);
    *added = id == UINT32_MAX;
    if (*added) {
        HP_GROW(s->v, s->cap, s->n + 1);
        id = (uint32_t)s->n++;
        s->v[id] = (sum_t){{key[0], key[1], key[2]}, {0, 0}};
        hp_idtab_insert(&s->tab, h, id);
    }
    return &s->v[id];
}

static void sum_add(sum_t *s, const int64_t v[2])
{
    s->v[0] = hp_add_wrap(s->v[0], v[0]);
    s->v[1] = hp_add_wrap(s->v[1], v[1]);
}

static void sums_fini(sums_t *s)
{
    free(s->v);
    hp_idtab_fini(&s->tab);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------
 * Events.
 */

/* The profile of (kind, label set), created on first use. */
static int prof_for(conv_t *v, int kind, uint32_t lset, uint32_t *out, hp_err_t *err)
{
    uint64_t key = (uint64_t)lset << 4 | (uint64_t)kind, i;
    if (hp_u64map_get(&v->prof_ids, key, &i)) {
        *out = (uint32_t)i;
        return 0;
    }
    int rc = charge(v, 32, err); /* the least a profile's header encodes to */
    if (rc != 0)
        return rc;
    HP_GROW(v->profs, v->cap_profs, v->n_profs + 1);
    v->profs[v->n_profs] = (prof_t){lset, 0, (uint8_t)kind};
    hp_u64map_put(&v->prof_ids, key, v->n_profs);
    *out = (uint32_t)v->n_profs++;
    return 0;
}

/* An event's correlation: which context labels and span it carries. */
typedef struct corr {
    uint64_t context, span_id, span_name;
} corr_t;

/* Counts one event of kind with stack trace stack (dropped, as by
 * jfr-parser, when the chunk has no such stack trace). */
static int add(conv_t *v, hp__jfr_chunk_t *c, int kind, const corr_t *co, uint64_t stack, int64_t v0,
               int64_t v1, hp_err_t *err)
{
    const hp__jfr_frame_t *frames;
    uint32_t n, prof;
    bool truncated, added;
    size_t cost;
    if (!hp__jfr_stack(c, stack, &frames, &n, &truncated))
        return 0;
    uint32_t lset = hp__jfr_lset_for(v->lsets, co->context, co->span_name, &cost);
    int rc = charge(v, cost, err);
    if (rc == 0)
        rc = prof_for(v, kind, lset, &prof, err);
    if (rc != 0)
        return rc;
    if (KINDS[kind].per_sample)
        v0 = (int64_t)((uint64_t)v0 * (uint64_t)v->period);
    uint64_t key[3] = {prof, stack, co->span_id};
    int64_t val[2] = {v0, v1};
    sum_add(sum_at(&v->chunk, key, v->seed, &added), val);
    return 0;
}

/* jdk.ActiveSetting "event" names the async-profiler event (cpu, itimer,
 * wall, …): the jfr_event label, and wall turns execution samples into
 * wall samples too. The last one read wins. */
static void on_setting(conv_t *v, const hp__jfr_event_t *ev)
{
    if (!hp_str_eq_c(ev->set_name, "event"))
        return;
    free(v->event);
    v->event = hp_xstrndup(ev->set_value.p, ev->set_value.n);
    v->event_n = ev->set_value.n;
}

/* jdk.ExecutionSample: CPU unless the thread slept; wall as well when the
 * recording samples wall clock. */
static int on_exec(conv_t *v, hp__jfr_chunk_t *c, const hp__jfr_event_t *ev, hp_err_t *err)
{
    corr_t co = {ev->context, ev->span_id, ev->span_name};
    hp_str_t state;
    int rc = 0;
    if (hp__jfr_state(c, ev->state, &state) && !hp_str_eq_c(state, "STATE_SLEEPING"))
        rc = add(v, c, K_CPU, &co, ev->stack, 1, 0, err);
    if (rc == 0 && v->event_n == 4 && memcmp(v->event, "wall", 4) == 0)
        rc = add(v, c, K_WALL, &co, ev->stack, 1, 0, err);
    return rc;
}

/* The parser's event callback: each event to the profile kind it feeds. */
static int on_event(void *ctx, hp__jfr_chunk_t *c, const hp__jfr_event_t *ev, hp_err_t *err)
{
    /* The other events: their kind, whether jfr-parser gives them the
     * event's context and span, and whether the first value is a count. */
    static const struct {
        int ev, kind;
        bool correlated, counted;
    } simple[] = {
        {HP__JFR_EV_WALL, K_WALL, false, true},
        {HP__JFR_EV_TLAB_IN, K_TLAB_IN, true, false},
        {HP__JFR_EV_TLAB_OUT, K_TLAB_OUT, true, false},
        {HP__JFR_EV_ALLOC_SAMPLE, K_ALLOC_SAMPLE, false, false},
        {HP__JFR_EV_MONITOR, K_LOCK, true, false},
        {HP__JFR_EV_PARK, K_PARK, false, false},
        {HP__JFR_EV_LIVE, K_LIVE, false, false},
        {HP__JFR_EV_MALLOC, K_MALLOC, false, false},
    };
    conv_t *v = ctx;
    if (ev->kind == HP__JFR_EV_SETTING) {
        on_setting(v, ev);
        return 0;
    }
    if (ev->kind == HP__JFR_EV_EXEC)
        return on_exec(v, c, ev, err);
    for (size_t i = 0; i < HP_ARRAY_LEN(simple); i++) {
        if (simple[i].ev != ev->kind)
            continue;
        corr_t none = {0, 0, 0}, co = {ev->context, ev->span_id, ev->span_name};
        int64_t v0 = simple[i].counted ? (int64_t)(uint32_t)ev->value : 1;
        return add(v, c, simple[i].kind, simple[i].correlated ? &co : &none, ev->stack, v0, ev->value, err);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Stacks, at each chunk's end.
 */

static bool fn_eq(const void *ctx, uint32_t id, const void *key)
{
    const conv_t *v = ctx;
    return hp_str_eq(v->fns[id], *(const hp_str_t *)key);
}

/* The index of function name (copied when new). */
static uint32_t intern_fn(conv_t *v, hp_str_t name)
{
    uint64_t h = XXH3_64bits_withSeed(name.p, name.n, v->seed);
    uint32_t id = hp_idtab_find(&v->fn_tab, h, fn_eq, v, &name);
    if (id != UINT32_MAX)
        return id;
    HP_GROW(v->fns, v->cap_fns, v->n_fns + 1);
    v->fns[v->n_fns] = (hp_str_t){hp_arena_strndup(&v->names, name.p, name.n), name.n};
    hp_idtab_insert(&v->fn_tab, h, (uint32_t)v->n_fns);
    return (uint32_t)v->n_fns++;
}

/* The function of a JFR method, remembered for the chunk: 0 when the frame
 * is dropped (no such method or class), else the function + 1. */
static int method_fn(conv_t *v, hp__jfr_chunk_t *c, uint64_t method, uint64_t *fn1, hp_err_t *err)
{
    hp_str_t name;
    if (hp_u64map_get(&v->chunk_fns, method ^ v->seed, fn1))
        return 0;
    int rc = hp__jfr_method_name(c, method, &name, err);
    if (rc < 0)
        return rc;
    *fn1 = rc == 0 ? (uint64_t)intern_fn(v, name) + 1 : 0;
    hp_u64map_put(&v->chunk_fns, method ^ v->seed, *fn1);
    return 0;
}

/* Resolves a JFR stack trace into v->tmp (leaf first); frames without a
 * method or class are dropped, as jfr-parser drops them. */
static int resolve(conv_t *v, hp__jfr_chunk_t *c, uint64_t stack, size_t *n_out, hp_err_t *err)
{
    const hp__jfr_frame_t *f;
    uint32_t n;
    bool truncated;
    if (!hp__jfr_stack(c, stack, &f, &n, &truncated))
        return hp_err_set(err, HP_EINTERNAL, "jfr: stack trace %llu vanished", (unsigned long long)stack);
    HP_GROW(v->tmp, v->cap_tmp, (size_t)n + 1);
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t fn1;
        int rc = method_fn(v, c, f[i].method, &fn1, err);
        if (rc != 0)
            return rc;
        if (fn1 != 0)
            v->tmp[k++] = (frame_t){(uint32_t)(fn1 - 1), f[i].line > 0 ? f[i].line : 0};
    }
    bool mark = v->par->mark_truncated;
    if (v->max_depth && k > v->max_depth) {
        k = mark && v->max_depth > 1 ? v->max_depth - 1 : v->max_depth; /* the leaf-most frames stay */
        truncated = true;
    }
    if (mark && truncated) /* jfr-parser's WithTruncatedFrame: a root frame */
        v->tmp[k++] = (frame_t){intern_fn(v, HP_STR("[truncated]")), 0};
    *n_out = k;
    return 0;
}

static bool stack_eq(const void *ctx, uint32_t id, const void *key)
{
    const conv_t *v = ctx;
    const kept_stack_t *s = &v->stacks[id];
    const size_t *n = key;
    return s->n == *n && memcmp(v->frames + s->off, v->tmp, *n * sizeof(frame_t)) == 0;
}

/* Interns v->tmp[0..n) as a stack. */
static uint32_t intern_stack(conv_t *v, size_t n)
{
    uint64_t h = XXH3_64bits_withSeed(v->tmp, n * sizeof(frame_t), v->seed);
    uint32_t id = hp_idtab_find(&v->stack_tab, h, stack_eq, v, &n);
    if (id != UINT32_MAX)
        return id;
    HP_GROW(v->frames, v->cap_frames, v->n_frames + n + 1);
    memcpy(v->frames + v->n_frames, v->tmp, n * sizeof(frame_t));
    HP_GROW(v->stacks, v->cap_stacks, v->n_stacks + 1);
    v->stacks[v->n_stacks] = (kept_stack_t){(uint32_t)v->n_frames, (uint32_t)n};
    v->n_frames += n;
    hp_idtab_insert(&v->stack_tab, h, (uint32_t)v->n_stacks);
    return (uint32_t)v->n_stacks++;
}

/* The interned stack of a JFR stack trace, resolved once per chunk. */
static int stack_for(conv_t *v, hp__jfr_chunk_t *c, uint64_t jfr_stack, uint32_t *out, hp_err_t *err)
{
    uint64_t id;
    size_t n = 0;
    if (hp_u64map_get(&v->chunk_stacks, jfr_stack ^ v->seed, &id)) {
        *out = (uint32_t)id;
        return 0;
    }
    int rc = resolve(v, c, jfr_stack, &n, err);
    if (rc != 0)
        return rc;
    *out = intern_stack(v, n);
    hp_u64map_put(&v->chunk_stacks, jfr_stack ^ v->seed, *out);
    return 0;
}

/* One of the chunk's sums joins the recording's samples. A new sample is
 * charged the least it encodes to: its location IDs, values and tags. */
static int keep_sum(conv_t *v, hp__jfr_chunk_t *c, const sum_t *s, hp_err_t *err)
{
    uint32_t st;
    bool added;
    int rc = stack_for(v, c, s->key[1], &st, err);
    if (rc != 0)
        return rc;
    uint64_t key[3] = {s->key[0], st, s->key[2]};
    sum_t *d = sum_at(&v->samples, key, v->seed, &added);
    if (added) {
        prof_t *p = &v->profs[s->key[0]];
        p->n_samples++;
        rc = charge(v, 6 + v->stacks[st].n + KINDS[p->kind].n_types + (s->key[2] ? 22 : 0), err);
    }
    sum_add(d, s->v);
    return rc;
}

/* The parser's chunk-end callback: the chunk's sums become samples. */
static int on_chunk_end(void *ctx, hp__jfr_chunk_t *c, hp_err_t *err)
{
    conv_t *v = ctx;
    int rc = 0;
    for (size_t i = 0; i < v->chunk.n && rc == 0; i++)
        rc = keep_sum(v, c, &v->chunk.v[i], err);
    sums_fini(&v->chunk); /* IDs of the next chunk mean other things */
    hp_u64map_fini(&v->chunk_fns);
    hp_u64map_fini(&v->chunk_stacks);
    return rc;
}

/* ------------------------------------------------------------------------
 * Building the profiles.
 */

static hp_pprof_builder_t *new_builder(const conv_t *v, int kind, uint64_t *mapping)
{
    const kind_def_t *k = &KINDS[kind];
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    for (uint32_t i = 0; i < k->n_types; i++)
        hp_pprof_builder_sample_type(b, hp_str_c(k->type[i]), hp_str_c(k->unit[i]));
    if (k->period_type)
        hp_pprof_builder_period(b, hp_str_c(k->period_type), hp_str_c(k->period_unit),
                                k->per_sample ? v->period : 0);
    int64_t dur;
    if (__builtin_sub_overflow(v->par->until_ns, v->par->from_ns, &dur))
        dur = 0;
    hp_pprof_builder_times(b, v->par->from_ns, dur);
    hp_pprof_mapping_in_t m;
    memset(&m, 0, sizeof(m));
    m.has_functions = true; /* jfr-parser's one mapping */
    *mapping = hp_pprof_builder_mapping(b, &m);
    return b;
}

/* Location IDs of stack st in builder b, leaf first, into v->locs; locs
 * caches (function, line) → location for this builder. */
static void stack_locations(conv_t *v, hp_pprof_builder_t *b, uint64_t mapping, hp_u64map_t *locs,
                            uint32_t st)
{
    const kept_stack_t *s = &v->stacks[st];
    hp_str_t none = {"", 0};
    HP_GROW(v->locs, v->cap_locs, (size_t)s->n + 1);
    for (uint32_t i = 0; i < s->n; i++) {
        const frame_t *f = &v->frames[s->off + i];
        uint64_t key = (uint64_t)f->fn << 32 | (uint32_t)f->line;
        if (!hp_u64map_get(locs, key, &v->locs[i])) {
            hp_pprof_line_in_t l = {hp_pprof_builder_function(b, v->fns[f->fn], none, none, 0), f->line};
            v->locs[i] = hp_pprof_builder_location(b, mapping, 0, &l, 1);
            hp_u64map_put(locs, key, v->locs[i]);
        }
    }
}

/* Encodes profile p from its samples (indices in order[0..n)). */
static void build(conv_t *v, const prof_t *p, const uint32_t *order, size_t n, hp_buf_t *out)
{
    uint64_t mapping;
    hp_pprof_builder_t *b = new_builder(v, p->kind, &mapping);
    hp_u64map_t locs;
    hp_u64map_init(&locs, 0);
    for (size_t i = 0; i < n; i++) {
        const sum_t *s = &v->samples.v[order[i]];
        char id[17];
        if (s->key[2]) /* a span: formatted only then */
            snprintf(id, sizeof(id), "%016llx", (unsigned long long)s->key[2]);
        hp_pprof_label_in_t span = {HP_STR("profile_id"), {id, 16}, 0, {"", 0}};
        stack_locations(v, b, mapping, &locs, (uint32_t)s->key[1]);
        hp_pprof_builder_sample(b, v->locs, v->stacks[s->key[1]].n, s->v, &span, s->key[2] ? 1 : 0);
    }
    hp_pprof_builder_encode(b, out);
    hp_u64map_fini(&locs);
    hp_pprof_builder_free(b);
}

/* The series labels of profile p: its label set with jfr_event, sorted. */
static void profile_labels(const conv_t *v, const prof_t *p, hp_arena_t *a, hp_labels_t *out)
{
    uint32_t n;
    const hp_label_t *l = hp__jfr_lset(v->lsets, p->lset, &n);
    bool event = v->event_n > 0;
    hp_labels_init(out);
    for (uint32_t i = 0; i <= n; i++) {
        if (event && (i == n || hp_str_cmp(l[i].name, HP_STR("jfr_event")) > 0)) {
            hp_labels_add(out, HP_STR("jfr_event"), (hp_str_t){v->event, v->event_n});
            event = false;
        }
        if (i < n)
            hp_labels_add(out, l[i].name, l[i].value);
    }
    hp_labels_clone(out, a);
}

/* The samples' indices grouped by profile: profile i's are
 * order[first[i] .. first[i + 1]). */
static uint32_t *group_samples(const conv_t *v, size_t *first)
{
    uint32_t *order = hp_xmalloc((v->samples.n + 1) * sizeof(uint32_t));
    first[0] = 0;
    for (size_t i = 0; i < v->n_profs; i++)
        first[i + 1] = first[i] + v->profs[i].n_samples;
    for (size_t i = 0; i < v->samples.n; i++)
        order[first[v->samples.v[i].key[0]]++] = (uint32_t)i;
    for (size_t i = v->n_profs; i > 0; i--) /* first[] moved to the ends: restore */
        first[i] = first[i - 1];
    first[0] = 0;
    return order;
}

/* Builds every profile with samples into out, in order of first use. */
static int finish(conv_t *v, hp_jfr_result_t *out, hp_err_t *err)
{
    size_t *first = hp_xmalloc((v->n_profs + 1) * sizeof(size_t)), total = 0;
    uint32_t *order = group_samples(v, first);
    int rc = 0;
    out->v = hp_xcalloc(v->n_profs + 1, sizeof(hp_jfr_profile_t));
    for (size_t i = 0; i < v->n_profs && rc == 0; i++) {
        const prof_t *p = &v->profs[i];
        if (p->n_samples == 0)
            continue; /* Pyroscope stores nothing for a profile without samples */
        hp_jfr_profile_t *o = &out->v[out->n++];
        snprintf(o->metric, sizeof(o->metric), "%s", KINDS[p->kind].metric);
        profile_labels(v, p, &out->arena, &o->labels);
        build(v, p, order + first[i], p->n_samples, &o->pprof);
        total += o->pprof.len;
        if (total > v->max_out)
            rc = hp_err_set(err, HP_ETOOLARGE,
                            "jfr: the recording converts to more than %zu bytes of profiles", v->max_out);
    }
    free(order);
    free(first);
    return rc;
}

/* ------------------------------------------------------------------------
 * The API.
 */

static void conv_init(conv_t *v, const hp_jfr_params_t *par, const hp_jfr_limits_t *lim)
{
    memset(v, 0, sizeof(*v));
    v->par = par;
    v->period = 1000000000 / (par->sample_rate ? par->sample_rate : 100);
    v->max_depth = lim ? lim->max_stack_depth : 0;
    v->max_out = lim && lim->max_bytes_out ? lim->max_bytes_out : HP_JFR_DEFAULT_MAX_BYTES_OUT;
    v->budget = v->max_out;
    v->seed = hp_mix64((uint64_t)hp_now_ns() ^ (uint64_t)(uintptr_t)v);
    hp_arena_init(&v->names, 0);
}

static void conv_fini(conv_t *v)
{
    hp__jfr_lsets_free(v->lsets);
    free(v->event);
    free(v->profs);
    hp_u64map_fini(&v->prof_ids);
    sums_fini(&v->chunk);
    hp_u64map_fini(&v->chunk_fns);
    hp_u64map_fini(&v->chunk_stacks);
    hp_arena_fini(&v->names);
    free(v->fns);
    hp_idtab_fini(&v->fn_tab);
    free(v->frames);
    free(v->stacks);
    hp_idtab_fini(&v->stack_tab);
    free(v->tmp);
    sums_fini(&v->samples);
    free(v->locs);
}

int hp_jfr_convert(const uint8_t *jfr, size_t n, const uint8_t *labels, size_t labels_n,
                   const hp_jfr_params_t *params, const hp_jfr_limits_t *lim, hp_jfr_result_t *out,
                   hp_err_t *err)
{
    static const hp_jfr_params_t defaults = {0, 0, 0, NULL, false};
    const hp_jfr_params_t *par = params ? params : &defaults;
    conv_t v;
    conv_init(&v, par, lim);
    memset(out, 0, sizeof(*out));
    hp_arena_init(&out->arena, 0);
    int rc = hp__jfr_lsets_new(labels, labels ? labels_n : 0, par->series, hp_mix64(v.seed), &v.lsets, err);
    if (rc == 0) {
        hp__jfr_sink_t sink = {&v, on_event, on_chunk_end};
        rc = hp__jfr_parse(jfr, n, &sink, err);
    }
    if (rc == 0)
        rc = finish(&v, out, err);
    conv_fini(&v);
    if (rc != 0)
        hp_jfr_result_fini(out);
    return rc;
}

void hp_jfr_result_fini(hp_jfr_result_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        hp_labels_fini(&r->v[i].labels);
        hp_buf_fini(&r->v[i].pprof);
    }
    free(r->v);
    hp_arena_fini(&r->arena);
    r->v = NULL;
    r->n = 0;
}
