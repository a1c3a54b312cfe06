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
    free(t->name);
    free(t);
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
