/* Tenants and their heads: one head per tenant and time window, each with
 * its series, profiles and symbols. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingester.h"

ing_tenant_t *ing_tenant(ing_t *g, hp_str_t name, bool create)
{
    ing_tenant_t *t = NULL;
    pthread_mutex_lock(&g->tenants_lock);
    for (size_t i = 0; i < g->n_tenants && !t; i++)
        if (hp_str_eq_c(name, g->tenants[i]->name))
            t = g->tenants[i];
    if (t == NULL && create) {
        t = hp_xcalloc(1, sizeof(*t));
        t->name = hp_xstrndup(name.p, name.n);
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->active_mu, NULL);
        hp_u64map_init(&t->active, 64);
        HP_GROW(g->tenants, g->cap_tenants, g->n_tenants + 1);
        g->tenants[g->n_tenants++] = t;
    }
    pthread_mutex_unlock(&g->tenants_lock);
    return t;
}

void ing_tenant_free(ing_tenant_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_heads; i++)
        hp_head_unref(t->heads[i]);
    free(t->heads);
    for (size_t i = 0; i < t->n_blocks; i++)
        ing_block_unref(t->blocks[i]);
    free(t->blocks);
    pthread_mutex_destroy(&t->lock);
    hp_u64map_fini(&t->active);
    pthread_mutex_destroy(&t->active_mu);
    free(t->name);
    free(t);
}

void ing_active_add(ing_tenant_t *t, const hp_head_t *h, size_t from)
{
    pthread_mutex_lock(&t->active_mu);
    for (size_t i = from; i < h->n_series; i++) {
        bool found;
        uint64_t *n = hp_u64map_upsert(&t->active, h->series[i]->fp, 0, &found);
        if (*n == 0) {
            t->n_active++;
            t->n_idle -= found;
        }
        (*n)++;
    }
    pthread_mutex_unlock(&t->active_mu);
}

/* Rebuilds the map without its zero entries once they outnumber the live
 * ones, so series that came and went do not pile up (active_mu held). */
static void sweep_active(ing_tenant_t *t)
{
    if (t->n_idle < 1024 || t->n_idle < t->n_active)
        return;
    hp_u64map_t live;
    hp_u64map_init(&live, t->n_active + 1);
    size_t it = 0;
    uint64_t fp, n;
    while (hp_u64map_next(&t->active, &it, &fp, &n))
        if (n > 0)
            hp_u64map_put(&live, fp, n);
    hp_u64map_fini(&t->active);
    t->active = live;
    t->n_idle = 0;
}

void ing_active_remove(ing_tenant_t *t, hp_head_t *h)
{
    pthread_rwlock_rdlock(&h->lock);
    pthread_mutex_lock(&t->active_mu);
    for (size_t i = 0; i < h->n_series; i++) {
        bool found;
        uint64_t *n = hp_u64map_upsert(&t->active, h->series[i]->fp, 0, &found);
        if (!found) { /* not counted (cannot happen): leave no trace */
            t->n_idle++;
            continue;
        }
        if (*n > 0 && --*n == 0) {
            t->n_active--;
            t->n_idle++;
        }
    }
    sweep_active(t);
    pthread_mutex_unlock(&t->active_mu);
    pthread_rwlock_unlock(&h->lock);
}

void ing_active_count(ing_tenant_t *t, const uint64_t *fps, size_t n, size_t *new_series, size_t *active)
{
    hp_u64map_t seen;
    hp_u64map_init(&seen, n + 1);
    *new_series = 0;
    pthread_mutex_lock(&t->active_mu);
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        bool dup;
        hp_u64map_upsert(&seen, fps[i], 1, &dup);
        if (!dup && (!hp_u64map_get(&t->active, fps[i], &v) || v == 0))
            (*new_series)++;
    }
    *active = t->n_active;
    pthread_mutex_unlock(&t->active_mu);
    hp_u64map_fini(&seen);
}

/* A new open head for [start, start + width) (one reference: the tenant's),
 * logged under segment (NULL: a new segment name). */
static hp_head_t *head_new(ing_t *g, const char *tenant, int64_t start_ns, int64_t width_ns, const char *segment)
{
    hp_head_t *h = hp_head_new(atomic_fetch_add(&g->next_head_id, 1), tenant, start_ns, start_ns + width_ns, NULL);
    if (segment)
        snprintf(h->segment, sizeof(h->segment), "%s", segment);
    else
        snprintf(h->segment, sizeof(h->segment), "%s/%" PRId64 "/%016" PRIx64, tenant, start_ns / 1000000,
                 h->id);
    return h;
}

/* Inserts h into t's heads, keeping them sorted by start. t->lock held. */
static void tenant_add_head(ing_tenant_t *t, hp_head_t *h)
{
    HP_GROW(t->heads, t->cap_heads, t->n_heads + 1);
    size_t i = t->n_heads;
    while (i > 0 && t->heads[i - 1]->start_ns > h->start_ns) {
        t->heads[i] = t->heads[i - 1];
        i--;
    }
    t->heads[i] = h;
    t->n_heads++;
}

/* Takes a reference and a writer slot. t->lock held. */
static hp_head_t *take_for_write(hp_head_t *h)
{
    atomic_fetch_add(&h->refs, 1);
    pthread_mutex_lock(&h->wmu);
    h->writers++;
    pthread_mutex_unlock(&h->wmu);
    return h;
}

static int64_t window_ns(const ing_t *g)
{
    return HP_MAX(g->cfg->ingester.max_block_duration_ms, 1000) * 1000000;
}

hp_head_t *ing_head_for_write(ing_t *g, ing_tenant_t *t, int64_t time_ns)
{
    int64_t width = window_ns(g), start = time_ns / width * width;
    pthread_mutex_lock(&t->lock);
    hp_head_t *h = NULL;
    for (size_t i = 0; i < t->n_heads && !h; i++)
        if (t->heads[i]->start_ns == start && atomic_load(&t->heads[i]->state) == HP_HEAD_OPEN)
            h = t->heads[i];
    if (h == NULL) {
        h = head_new(g, t->name, start, width, NULL);
        tenant_add_head(t, h);
    }
    take_for_write(h);
    pthread_mutex_unlock(&t->lock);
    return h;
}

void ing_head_write_done(hp_head_t *h)
{
    atomic_store(&h->last_write_ms, hp_mono_ms());
    pthread_mutex_lock(&h->wmu);
    if (--h->writers == 0)
        pthread_cond_broadcast(&h->wcv);
    pthread_mutex_unlock(&h->wmu);
    hp_head_unref(h);
}

/* Parses "<tenant>/<window start ms>/<id hex>". */
static bool parse_segment(hp_str_t seg, hp_str_t tenant, int64_t *start_ms)
{
    if (seg.n <= tenant.n + 1 || memcmp(seg.p, tenant.p, tenant.n) != 0 || seg.p[tenant.n] != '/')
        return false;
    char buf[64];
    size_t rest = seg.n - tenant.n - 1;
    if (rest >= sizeof(buf))
        return false;
    memcpy(buf, seg.p + tenant.n + 1, rest);
    buf[rest] = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end != '/' || v < 0)
        return false;
    *start_ms = v;
    return true;
}

hp_head_t *ing_head_for_segment(ing_t *g, ing_tenant_t *t, hp_str_t segment)
{
    int64_t start_ms;
    if (segment.n >= sizeof(((hp_head_t *)0)->segment) || !parse_segment(segment, hp_str_c(t->name), &start_ms))
        return NULL;
    pthread_mutex_lock(&t->lock);
    hp_head_t *h = NULL;
    for (size_t i = 0; i < t->n_heads && !h; i++)
        if (hp_str_eq_c(segment, t->heads[i]->segment))
            h = t->heads[i];
    if (h == NULL) {
        char seg[320];
        snprintf(seg, sizeof(seg), "%.*s", (int)segment.n, segment.p);
        h = head_new(g, t->name, hp_ms_to_ns_sat(start_ms), window_ns(g), seg);
        tenant_add_head(t, h);
    }
    take_for_write(h);
    pthread_mutex_unlock(&t->lock);
    return h;
}
