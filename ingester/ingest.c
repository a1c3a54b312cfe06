/* ingester.Push: storing the profiles a distributor sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/compress.h"
#include "hotpath/hashmap.h"
#include "hotpath/log.h"
#include "hotpath/pprof.h"
#include "hotpath/profile.h"
#include "hotpath/rpc.h"
#include "hotpath/wal.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "ingester.h"

/* Per profile: the stack ID of every sample, computed once and shared by
 * all its sample types and label groups. Symbols longer than max_symbol are
 * truncated (Pyroscope's max_profile_symbol_value_length). */
static uint32_t *sample_stacks(hp_head_t *h, const hp_pprof_t *p, size_t max_depth, size_t max_symbol)
{
    uint32_t *loc_map = hp_xmalloc((p->n_locations + 1) * sizeof(uint32_t));
    hp_symdb_import(h->symdb, p, loc_map, max_symbol);
    uint32_t *stacks = hp_xmalloc((p->n_samples + 1) * sizeof(uint32_t));
    uint32_t *scratch = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        /* Deep stacks keep their leaf-most frames, so self values stay exact. */
        size_t n = max_depth && s->loc_n > max_depth ? max_depth : s->loc_n;
        HP_GROW(scratch, cap, n + 1);
        for (size_t k = 0; k < n; k++)
            scratch[k] = loc_map[p->sample_locs[s->loc_off + k]];
        stacks[i] = hp_symdb_stack(h->symdb, scratch, n);
    }
    free(scratch);
    free(loc_map);
    return stacks;
}

/* Per profile: the span of every sample (hp_profile_sample_span: its
 * span_id or profile_id label), or NULL when no sample has one, as in most
 * profiles. */
static uint64_t *sample_spans(const hp_pprof_t *p)
{
    uint64_t *spans = NULL;
    for (uint32_t i = 0; i < p->n_samples; i++) {
        uint64_t span = hp_profile_sample_span(p, &p->samples[i]);
        if (span != 0 && spans == NULL)
            spans = hp_xcalloc(p->n_samples + 1, sizeof(uint64_t));
        if (spans)
            spans[i] = span;
    }
    return spans;
}

/* One stored sample: samples of different spans stay apart, so a span
 * query can pick them out. */
typedef struct triple {
    uint32_t stack;
    uint64_t span; /* 0: none */
    int64_t value;
} triple_t;

/* A group's samples ordered by (stack ID, span), sorted once for all its
 * sample types. */
typedef struct order_ctx {
    const uint32_t *stacks;
    const uint64_t *spans; /* NULL: no sample has a span */
} order_ctx_t;

static int cmp_by_stack(const void *a, const void *b, void *ctx)
{
    const order_ctx_t *c = ctx;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (c->stacks[i] != c->stacks[j])
        return c->stacks[i] < c->stacks[j] ? -1 : 1;
    uint64_t x = c->spans ? c->spans[i] : 0, y = c->spans ? c->spans[j] : 0;
    return x < y ? -1 : x > y;
}

static void order_by_stack(const uint32_t *samples, uint32_t n, const order_ctx_t *c, uint32_t *order)
{
    memcpy(order, samples, n * sizeof(uint32_t));
    if (n > 1)
        qsort_r(order, n, sizeof(uint32_t), cmp_by_stack, (void *)c);
}

/* The (stack, span, value) samples of one sample type over samples in
 * (stack, span) order: zeros dropped, equal (stack, span) summed. */
static size_t collect_samples(const hp_pprof_t *p, const uint32_t *order, uint32_t n, uint32_t st,
                              const order_ctx_t *c, triple_t *out)
{
    size_t o = 0;
    for (uint32_t k = 0; k < n; k++) {
        const hp_pprof_sample_t *s = &p->samples[order[k]];
        int64_t v = p->values[s->val_off + st];
        if (v == 0)
            continue;
        uint32_t stack = c->stacks[order[k]];
        uint64_t span = c->spans ? c->spans[order[k]] : 0;
        if (o && out[o - 1].stack == stack && out[o - 1].span == span)
            out[o - 1].value = hp_add_wrap(out[o - 1].value, v);
        else
            out[o++] = (triple_t){stack, span, v};
    }
    /* equal samples may sum to zero */
    size_t w = 0;
    for (size_t i = 0; i < o; i++)
        if (out[i].value != 0)
            out[w++] = out[i];
    return w;
}

/* One series a write stores to: a sample type of one label group — or of
 * several, when their labels come out the same (a sample label equal to a
 * series label, names equal once sanitized) — with its labels (strings
 * borrowed from the write and its arena) and fingerprint. */
typedef struct planned {
    uint32_t type;
    const uint32_t *samples; /* indices into p->samples: the group's, or the groups' together (arena) */
    uint32_t n;
    hp_labels_t labels;
    uint64_t fp;
} planned_t;

typedef struct ingest_ctx {
    ing_t *g;
    hp_head_t *h;
    const hp_pprof_t *p;
    const Hotpath__V1__ProfileWrite *w;
    order_ctx_t samples; /* every sample's stack ID and span */
    size_t series_written;
    uint32_t *st_ids; /* scratch for one series' samples, sized for the whole profile */
    int64_t *vals;
    uint64_t *spans; /* NULL when no sample has a span */
} ingest_ctx_t;

/* Stores one planned series (its samples in (stack, span) order) as a
 * profile of its series. */
static void store_series(ingest_ctx_t *c, const uint32_t *order, const planned_t *ps, triple_t *samples)
{
    size_t n = collect_samples(c->p, order, ps->n, ps->type, &c->samples, samples);
    if (n == 0)
        return;
    bool created;
    hp_series_t *s = hp_head_series(c->h, &ps->labels, ps->fp, &created);
    s->period = c->p->period;
    for (size_t i = 0; i < n; i++) {
        c->st_ids[i] = samples[i].stack;
        c->vals[i] = samples[i].value;
        if (c->spans)
            c->spans[i] = samples[i].span;
    }
    if (hp_head_append(c->h, s, c->w->time_nanos, c->w->id.data, c->st_ids, c->vals, c->spans, n)) {
        c->series_written++;
        hp_metric_add(c->g->m_samples, (double)n);
    }
}

/* A write decoded and validated, ready to store. */
typedef struct prepared {
    const Hotpath__V1__ProfileWrite *w;
    hp_buf_t scratch; /* the decompressed pprof */
    hp_pprof_t p;
    hp_labels_t base;
    hp_limits_config_t lim; /* what it was checked against; depth and symbol truncation apply */
    hp_arena_t arena;       /* the groups, the planned series' type IDs and joined sample lists */
    hp_sample_group_t *groups;
    size_t n_groups;
    planned_t *series; /* by group, then sample type; no two with equal labels */
    size_t n_series;
} prepared_t;

static void prepared_fini(prepared_t *x)
{
    for (size_t i = 0; i < x->n_series; i++)
        hp_labels_fini(&x->series[i].labels);
    free(x->series);
    hp_profile_groups_fini(x->groups, x->n_groups);
    hp_arena_fini(&x->arena);
    hp_pprof_fini(&x->p);
    hp_buf_fini(&x->scratch);
    hp_labels_fini(&x->base);
}

/* The planned series with these labels, or NULL; by_fp maps a
 * fingerprint to an index + 1 (a clash probes fp + 1, …). */
static planned_t *planned_find(prepared_t *x, hp_u64map_t *by_fp, const planned_t *ps)
{
    uint64_t key = ps->fp, at;
    while (hp_u64map_get(by_fp, key, &at)) {
        if (hp_labels_equal(&x->series[at - 1].labels, &ps->labels))
            return &x->series[at - 1];
        key++;
    }
    hp_u64map_put(by_fp, key, (uint64_t)(ps - x->series) + 1);
    return NULL;
}

/* Adds a group's samples to a planned series that already has some. */
static void planned_join(prepared_t *x, planned_t *into, const hp_sample_group_t *grp)
{
    uint32_t *v = hp_arena_alloc(&x->arena, ((size_t)into->n + grp->n) * sizeof(uint32_t));
    memcpy(v, into->samples, into->n * sizeof(uint32_t));
    memcpy(v + into->n, grp->samples, grp->n * sizeof(uint32_t));
    into->samples = v;
    into->n += grp->n;
}

/* The series x stores to, planned once (outside any lock) for the series
 * limit and the commit: each label group's sample types with a non-zero
 * value; groups whose labels come out equal share one series and one
 * profile, as Pyroscope merges them. */
static void plan_series(prepared_t *x)
{
    const hp_pprof_t *p = &x->p;
    hp_profile_group_samples(p, &x->arena, &x->groups, &x->n_groups);
    hp_str_t metric = hp_labels_get(&x->base, HP_LABEL_NAME);
    hp_u64map_t by_fp;
    hp_u64map_init(&by_fp, 2 * x->n_groups * p->n_sample_types + 8);
    size_t cap = 0;
    for (size_t gi = 0; gi < x->n_groups; gi++) {
        const hp_sample_group_t *grp = &x->groups[gi];
        for (uint32_t st = 0; st < p->n_sample_types; st++) {
            bool any = false;
            for (uint32_t k = 0; k < grp->n && !any; k++)
                any = p->values[p->samples[grp->samples[k]].val_off + st] != 0;
            if (!any)
                continue;
            HP_GROW(x->series, cap, x->n_series + 1);
            planned_t *ps = &x->series[x->n_series];
            ps->type = st;
            ps->samples = grp->samples;
            ps->n = grp->n;
            hp_labels_init(&ps->labels);
            hp_profile_series_labels(p, st, metric, &x->base, &grp->labels, &x->arena, &ps->labels);
            ps->fp = hp_labels_fingerprint(&ps->labels);
            planned_t *same = planned_find(x, &by_fp, ps);
            if (same) {
                planned_join(x, same, grp);
                hp_labels_fini(&ps->labels);
            } else {
                x->n_series++;
            }
        }
    }
    hp_u64map_fini(&by_fp);
}

/* The ingester checks what it stores itself: a peer on the RPC port is not
 * trusted to have validated it. */
static int check_write(const hp_limits_config_t *l, const Hotpath__V1__ProfileWrite *w, const hp_labels_t *base,
                       hp_err_t *err)
{
    if (w->id.len != 16)
        return hp_err_set(err, HP_EINVAL, "profile ID must be 16 bytes, got %zu", w->id.len);
    if (w->time_nanos <= 0)
        return hp_err_set(err, HP_EINVAL, "profile time must be positive, got %lld", (long long)w->time_nanos);
    if (hp_labels_get(base, HP_LABEL_NAME).n == 0)
        return hp_err_set(err, HP_EINVAL, "series labels have no __name__");
    hp_label_limits_t lim = {(size_t)l->max_label_names_per_series, (size_t)l->max_label_name_length,
                             (size_t)l->max_label_value_length};
    return hp_labels_validate(base, &lim, err);
}

/* Decodes and checks w against lim (the tenant's limits for a push). */
static int prepare(const hp_limits_config_t *lim, const Hotpath__V1__ProfileWrite *w, prepared_t *x, hp_err_t *err)
{
    memset(x, 0, sizeof(*x));
    x->w = w;
    x->lim = *lim;
    hp_arena_init(&x->arena, 16 * 1024);
    for (size_t i = 0; i < w->n_labels; i++)
        hp_labels_add(&x->base, hp_str_c(w->labels[i]->name), hp_str_c(w->labels[i]->value));
    hp_labels_sort(&x->base);
    int rc = check_write(lim, w, &x->base, err);
    const uint8_t *data;
    size_t n;
    if (rc == 0)
        rc = hp_maybe_gunzip(w->pprof.data, w->pprof.len, hp_limit_size(lim->max_profile_size_bytes), &x->scratch,
                             &data, &n, err);
    int64_t max_samples = lim->max_profile_stacktrace_samples;
    hp_pprof_limits_t dlim = {max_samples > 0 ? (uint32_t)HP_MIN(max_samples, UINT32_MAX) : 0, 0, 0};
    if (rc == 0)
        rc = hp_pprof_decode(&x->p, data, n, &dlim, err);
    if (rc == 0)
        plan_series(x);
    return rc;
}

/* Stores a prepared write in head h of tenant t under the head's write
 * lock; the series it creates become active. */
static void commit(ing_t *g, ing_tenant_t *t, hp_head_t *h, prepared_t *x)
{
    const hp_pprof_t *p = &x->p;
    ingest_ctx_t c = {.g = g, .h = h, .p = p, .w = x->w};
    triple_t *samples = hp_xmalloc((p->n_samples + 1) * sizeof(triple_t));
    c.samples.spans = sample_spans(p); /* outside the lock: it reads only the pprof */
    uint32_t *order = hp_xmalloc((p->n_samples + 1) * sizeof(uint32_t));
    c.st_ids = hp_xmalloc((p->n_samples + 1) * sizeof(uint32_t)); /* once, not per series under the lock */
    c.vals = hp_xmalloc((p->n_samples + 1) * sizeof(int64_t));
    c.spans = c.samples.spans ? hp_xmalloc((p->n_samples + 1) * sizeof(uint64_t)) : NULL;
    pthread_rwlock_wrlock(&h->lock);
    size_t series_before = h->n_series, sym_before = hp_symdb_bytes(h->symdb);
    uint32_t *stacks = sample_stacks(h, p, (size_t)x->lim.max_profile_stacktrace_depth,
                                     (size_t)x->lim.max_profile_symbol_value_length);
    c.samples.stacks = stacks;
    for (size_t i = 0; i < x->n_series; i++) {
        const planned_t *ps = &x->series[i];
        if (i == 0 || ps->samples != ps[-1].samples) /* a group's sample types share one order */
            order_by_stack(ps->samples, ps->n, &c.samples, order);
        store_series(&c, order, ps, samples);
    }
    atomic_fetch_add(&h->bytes, hp_symdb_bytes(h->symdb) - sym_before);
    hp_metric_add(g->m_series, (double)(h->n_series - series_before));
    ing_active_add(t, h, series_before);
    pthread_rwlock_unlock(&h->lock);
    hp_metric_add(g->m_profiles, (double)c.series_written);
    free(stacks);
    free((void *)c.samples.spans);
    free(order);
    free(samples);
    free(c.st_ids);
    free(c.vals);
    free(c.spans);
}

/* HP_ELIMIT when the writes would take the tenant's active series on this
 * ingester (the series of its open heads, each once, whichever time
 * windows hold them) past max (0 = no limit). Checked before any head is
 * taken, so a refused push leaves nothing behind. */
static int check_series(ing_tenant_t *t, const prepared_t *x, size_t n, uint64_t max, hp_err_t *err)
{
    if (max == 0)
        return 0;
    uint64_t *fps = NULL;
    size_t nf = 0, cap = 0, add, have;
    for (size_t k = 0; k < n; k++) {
        HP_GROW(fps, cap, nf + x[k].n_series);
        for (size_t i = 0; i < x[k].n_series; i++)
            fps[nf++] = x[k].series[i].fp;
    }
    ing_active_count(t, fps, nf, &add, &have);
    free(fps);
    if (add > 0 && have + add > max)
        return hp_err_set(err, HP_ELIMIT,
                          "series limit reached: the tenant has %zu active series on this ingester and the push "
                          "adds %zu, over its share of %llu (max_global_series_per_tenant × replication factor / "
                          "ingesters, or max_local_series_per_tenant)",
                          have, add, (unsigned long long)max);
    return 0;
}

/* Appends the writes to the WAL in one batch, each under its head's
 * segment; durable when it returns 0. */
static int wal_log(ing_t *g, const prepared_t *x, hp_head_t *const *heads, size_t n, hp_err_t *err)
{
    hp_buf_t *recs = hp_xcalloc(n + 1, sizeof(hp_buf_t));
    hp_str_t *seg_v = hp_xcalloc(n + 1, sizeof(hp_str_t));
    const void **rec_v = hp_xcalloc(n + 1, sizeof(void *));
    size_t *len_v = hp_xcalloc(n + 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        size_t sz = protobuf_c_message_get_packed_size(&x[i].w->base);
        hp_buf_reserve(&recs[i], sz + 1);
        recs[i].len = protobuf_c_message_pack(&x[i].w->base, recs[i].data);
        seg_v[i] = hp_str_c(heads[i]->segment);
        rec_v[i] = recs[i].data;
        len_v[i] = recs[i].len;
    }
    int rc = hp_wal_append_many(g->wal, seg_v, rec_v, len_v, n, err);
    for (size_t i = 0; i < n; i++)
        hp_buf_fini(&recs[i]);
    free(recs);
    free(seg_v);
    free(rec_v);
    free(len_v);
    return rc;
}

/* ingester.Push: validate every profile, log them all to the WAL, store
 * them, acknowledge. Nothing is stored unless everything is valid. */
static int handle_push(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    if (atomic_load(&g->self.state) != HP_MEMBER_ACTIVE)
        return hp_err_set(err, HP_EUNAVAIL, "ingester %s is %s: it takes no writes", g->instance_id,
                          hp_member_state_name((hp_member_state_t)atomic_load(&g->self.state)));
    int rc = hp_tenant_validate(call->tenant, err);
    if (rc != 0)
        return rc;
    Hotpath__V1__IngestRequest *req = hotpath__v1__ingest_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.Push: malformed request");
    prepared_t *x = hp_xcalloc(req->n_profiles + 1, sizeof(*x));
    hp_head_t **heads = hp_xcalloc(req->n_profiles + 1, sizeof(*heads));
    hp_limits_config_t lim; /* the tenant's: a distributor checked the same */
    hp_overrides_get(g->svc->overrides, call->tenant, &lim);
    size_t n = 0;
    for (; n < req->n_profiles && rc == 0; n++)
        rc = prepare(&lim, req->profiles[n], &x[n], err);
    if (rc == 0) {
        /* the heads are held (as writers) from the WAL append to the commit,
         * so a flush cannot drop a segment with records not yet stored */
        ing_tenant_t *t = ing_tenant(g, call->tenant, true);
        rc = check_series(t, x, n, req->max_series, err);
        for (size_t i = 0; i < n && rc == 0; i++)
            heads[i] = ing_head_for_write(g, t, x[i].w->time_nanos);
        if (rc == 0)
            rc = wal_log(g, x, heads, n, err);
        for (size_t i = 0; i < n && heads[i]; i++) {
            if (rc == 0)
                commit(g, t, heads[i], &x[i]);
            ing_head_write_done(heads[i]);
        }
    }
    if (rc != 0)
        hp_metric_add(g->m_push_errors, 1);
    for (size_t i = 0; i < n; i++)
        prepared_fini(&x[i]);
    free(heads);
    free(x);
    hotpath__v1__ingest_request__free_unpacked(req, NULL);
    return rc;
}

/* One WAL record at start: stores it as a push would have (no logging).
 * A record that does not decode or validate is counted and skipped. */
/* True when a local block already holds segment's records. */
static bool flushed(const ing_t *g, hp_str_t segment)
{
    for (size_t i = 0; i < g->n_flushed_segments; i++)
        if (hp_str_eq_c(segment, g->flushed_segments[i]))
            return true;
    return false;
}

static int replay_one(void *ctx, hp_str_t segment, const uint8_t *rec, size_t n)
{
    ing_t *g = ctx;
    if (flushed(g, segment))
        return 0; /* the block has it; the segment is dropped once the block is uploaded */
    const char *slash = memchr(segment.p, '/', segment.n);
    hp_str_t tenant = {segment.p, slash ? (size_t)(slash - segment.p) : 0};
    hp_err_t err;
    if (hp_tenant_validate(tenant, &err) != 0)
        return -1;
    Hotpath__V1__ProfileWrite *w = hotpath__v1__profile_write__unpack(NULL, n, rec);
    if (w == NULL)
        return -1;
    /* An acknowledged record is stored whatever the limits say now (they
     * may have been lowered since); only truncation applies. */
    hp_limits_config_t lim = g->cfg->limits;
    lim.max_label_names_per_series = lim.max_label_name_length = lim.max_label_value_length = 0;
    lim.max_profile_size_bytes = lim.max_profile_stacktrace_samples = 0;
    prepared_t x;
    int rc = prepare(&lim, w, &x, &err);
    ing_tenant_t *t = rc == 0 ? ing_tenant(g, tenant, true) : NULL;
    hp_head_t *h = t ? ing_head_for_segment(g, t, segment) : NULL;
    if (h) {
        commit(g, t, h, &x);
        ing_head_write_done(h);
    }
    prepared_fini(&x);
    hotpath__v1__profile_write__free_unpacked(w, NULL);
    return rc == 0 && h == NULL ? -1 : rc;
}

int ing_replay(ing_t *g, hp_err_t *err)
{
    hp_wal_replay_stats_t st;
    int64_t t0 = hp_mono_ms();
    int rc = hp_wal_replay(g->wal, replay_one, g, &st, err);
    if (rc == 0)
        HP_INFO("wal replayed", "records=%llu bytes=%llu damaged=%llu ms=%lld", (unsigned long long)st.records,
                (unsigned long long)st.bytes, (unsigned long long)st.damaged, (long long)(hp_mono_ms() - t0));
    hp_metric_add(g->m_wal_damaged, (double)st.damaged);
    hp_metric_add(g->m_wal_replayed, (double)(st.records - st.damaged));
    return rc;
}

void ing_register_ingest(ing_t *g) { hp_rpc_server_handle(g->rpc, "ingester.Push", handle_push, g); }
