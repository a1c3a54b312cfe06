/* ingester.Push: storing the profiles a distributor sends. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/compress.h"
#include "hotpath/log.h"
#include "hotpath/pprof.h"
#include "hotpath/profile.h"
#include "hotpath/rpc.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "ingester.h"

/* Per profile: the stack ID of every sample, computed once and shared by
 * all its sample types and label groups. Symbols longer than max_symbol are
 * truncated (Pyroscope's max_profile_symbol_value_length). */
static uint32_t *sample_stacks(ing_tenant_t *t, const hp_pprof_t *p, size_t max_depth, size_t max_symbol)
{
    uint32_t *loc_map = hp_xmalloc((p->n_locations + 1) * sizeof(uint32_t));
    hp_symdb_import(t->symdb, p, loc_map, max_symbol);
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
        stacks[i] = hp_symdb_stack(t->symdb, scratch, n);
    }
    free(scratch);
    free(loc_map);
    return stacks;
}

typedef struct pair {
    uint32_t stack;
    int64_t value;
} pair_t;

/* A group's samples ordered by stack ID, sorted once for all its sample types. */
typedef struct order_ctx {
    const uint32_t *stacks;
} order_ctx_t;

static int cmp_by_stack(const void *a, const void *b, void *ctx)
{
    const uint32_t *st = ((const order_ctx_t *)ctx)->stacks;
    uint32_t x = st[*(const uint32_t *)a], y = st[*(const uint32_t *)b];
    return x < y ? -1 : x > y;
}

static void order_by_stack(const hp_sample_group_t *g, const uint32_t *stacks, uint32_t *order)
{
    memcpy(order, g->samples, g->n * sizeof(uint32_t));
    order_ctx_t ctx = {stacks};
    if (g->n > 1)
        qsort_r(order, g->n, sizeof(uint32_t), cmp_by_stack, &ctx);
}

/* The (stack, value) pairs of one sample type over samples in stack order:
 * zeros dropped, equal stacks summed. */
static size_t collect_pairs(const hp_pprof_t *p, const uint32_t *order, uint32_t n, uint32_t st,
                            const uint32_t *stacks, pair_t *out)
{
    size_t o = 0;
    for (uint32_t k = 0; k < n; k++) {
        const hp_pprof_sample_t *s = &p->samples[order[k]];
        int64_t v = p->values[s->val_off + st];
        if (v == 0)
            continue;
        uint32_t stack = stacks[order[k]];
        if (o && out[o - 1].stack == stack)
            out[o - 1].value += v;
        else
            out[o++] = (pair_t){stack, v};
    }
    /* equal stacks may sum to zero */
    size_t w = 0;
    for (size_t i = 0; i < o; i++)
        if (out[i].value != 0)
            out[w++] = out[i];
    return w;
}

typedef struct ingest_ctx {
    ing_t *g;
    ing_tenant_t *t;
    const hp_pprof_t *p;
    const Hotpath__V1__ProfileWrite *w;
    hp_labels_t base;
    hp_str_t metric;
    uint32_t *stacks;
    hp_arena_t *arena;
    size_t series_written;
} ingest_ctx_t;

/* Stores one sample type of one group (its samples in stack order) as a
 * profile of its series. */
static void store_series(ingest_ctx_t *c, const hp_sample_group_t *grp, const uint32_t *order, uint32_t st,
                         pair_t *pairs, hp_labels_t *labels)
{
    size_t n = collect_pairs(c->p, order, grp->n, st, c->stacks, pairs);
    if (n == 0)
        return;
    hp_profile_series_labels(c->p, st, c->metric, &c->base, &grp->labels, c->arena, labels);
    bool created;
    ing_series_t *s = ing_series_get(c->t, labels, hp_labels_fingerprint(labels), &created);
    s->period = c->p->period;
    uint32_t *st_ids = hp_xmalloc(n * sizeof(uint32_t));
    int64_t *vals = hp_xmalloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        st_ids[i] = pairs[i].stack;
        vals[i] = pairs[i].value;
    }
    if (ing_series_append(c->t, s, c->w->time_nanos, c->w->id.data, st_ids, vals, n)) {
        c->series_written++;
        hp_metric_add(c->g->m_samples, (double)n);
    }
    free(st_ids);
    free(vals);
}

static void base_labels(const Hotpath__V1__ProfileWrite *w, hp_labels_t *ls)
{
    for (size_t i = 0; i < w->n_labels; i++)
        hp_labels_add(ls, hp_str_c(w->labels[i]->name), hp_str_c(w->labels[i]->value));
    hp_labels_sort(ls);
}

/* Decodes one write (outside any lock) and stores it (under the tenant's
 * write lock). */
static int ingest_one(ing_t *g, ing_tenant_t *t, const Hotpath__V1__ProfileWrite *w, hp_err_t *err)
{
    if (w->id.len != 16)
        return hp_err_set(err, HP_EINVAL, "profile ID must be 16 bytes, got %zu", w->id.len);
    hp_buf_t scratch = HP_BUF_INIT;
    const uint8_t *data;
    size_t n;
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    int rc = hp_maybe_gunzip(w->pprof.data, w->pprof.len, (size_t)g->cfg->limits.max_profile_size_bytes,
                             &scratch, &data, &n, err);
    if (rc == 0)
        rc = hp_pprof_decode(&p, data, n, NULL, err);
    if (rc != 0) {
        hp_pprof_fini(&p);
        hp_buf_fini(&scratch);
        return rc;
    }
    hp_arena_t arena;
    hp_arena_init(&arena, 64 * 1024);
    ingest_ctx_t c = {g, t, &p, w, {NULL, 0, 0}, {NULL, 0}, NULL, &arena, 0};
    base_labels(w, &c.base);
    c.metric = hp_labels_get(&c.base, HP_LABEL_NAME);
    hp_sample_group_t *groups;
    size_t n_groups;
    hp_profile_group_samples(&p, &arena, &groups, &n_groups);
    pair_t *pairs = hp_xmalloc((p.n_samples + 1) * sizeof(pair_t));
    hp_labels_t labels;
    hp_labels_init(&labels);
    pthread_rwlock_wrlock(&t->lock);
    c.stacks = sample_stacks(t, &p, (size_t)g->cfg->limits.max_profile_stacktrace_depth,
                             (size_t)g->cfg->limits.max_profile_symbol_value_length);
    uint32_t *order = hp_xmalloc((p.n_samples + 1) * sizeof(uint32_t));
    for (size_t gi = 0; gi < n_groups; gi++) {
        order_by_stack(&groups[gi], c.stacks, order);
        for (uint32_t st = 0; st < p.n_sample_types; st++)
            store_series(&c, &groups[gi], order, st, pairs, &labels);
    }
    free(order);
    hp_metric_set(g->m_series, (double)t->n_series);
    pthread_rwlock_unlock(&t->lock);
    hp_metric_add(g->m_profiles, (double)c.series_written);
    free(c.stacks);
    free(pairs);
    hp_labels_fini(&labels);
    hp_labels_fini(&c.base);
    hp_profile_groups_fini(groups, n_groups);
    hp_arena_fini(&arena);
    hp_pprof_fini(&p);
    hp_buf_fini(&scratch);
    return 0;
}

static int handle_push(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    if (atomic_load(&g->self.state) != HP_MEMBER_ACTIVE)
        return hp_err_set(err, HP_EUNAVAIL, "ingester %s is %s: it takes no writes", g->instance_id,
                          hp_member_state_name((hp_member_state_t)atomic_load(&g->self.state)));
    if (call->tenant.n == 0)
        return hp_err_set(err, HP_EINVAL, "ingester.Push: no tenant");
    Hotpath__V1__IngestRequest *req =
        hotpath__v1__ingest_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.Push: malformed request");
    ing_tenant_t *t = ing_tenant(g, call->tenant, true);
    int rc = 0;
    for (size_t i = 0; i < req->n_profiles && rc == 0; i++)
        rc = ingest_one(g, t, req->profiles[i], err);
    if (rc != 0)
        hp_metric_add(g->m_push_errors, 1);
    hotpath__v1__ingest_request__free_unpacked(req, NULL);
    return rc;
}

void ing_register_ingest(ing_t *g) { hp_rpc_server_handle(g->rpc, "ingester.Push", handle_push, g); }
