/* Tenants and their heads: one head per tenant and time window, each with
 * its series, profiles and symbols. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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

static void series_free(ing_series_t *s)
{
    hp_labels_fini(&s->labels);
    free(s->profiles);
    free(s->stacks);
    free(s->values);
    free(s);
}

static void head_free(ing_head_t *h)
{
    for (size_t i = 0; i < h->n_series; i++)
        series_free(h->series[i]);
    free(h->series);
    for (size_t i = 0; i < h->n_types; i++)
        free(h->types[i]);
    free(h->types);
    hp_u64map_fini(&h->by_fp);
    hp_u64map_fini(&h->seen);
    if (!h->symdb_borrowed)
        hp_symdb_free(h->symdb);
    hp_arena_fini(&h->arena);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->wmu);
    pthread_cond_destroy(&h->wcv);
    free(h->tenant);
    free(h);
}

void ing_head_unref(ing_head_t *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1)
        head_free(h);
}

void ing_tenant_free(ing_tenant_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_heads; i++)
        ing_head_unref(t->heads[i]);
    free(t->heads);
    for (size_t i = 0; i < t->n_blocks; i++)
        ing_block_unref(t->blocks[i]);
    free(t->blocks);
    pthread_mutex_destroy(&t->lock);
    free(t->name);
    free(t);
}

/* A new open head for [start, start + width) (one reference: the tenant's). */
static ing_head_t *head_new(ing_t *g, const char *tenant, int64_t start_ns, int64_t width_ns, const char *segment)
{
    ing_head_t *h = hp_xcalloc(1, sizeof(*h));
    h->id = atomic_fetch_add(&g->next_head_id, 1);
    h->tenant = hp_xstrdup(tenant);
    h->start_ns = start_ns;
    h->end_ns = start_ns + width_ns;
    if (segment)
        snprintf(h->segment, sizeof(h->segment), "%s", segment);
    else
        snprintf(h->segment, sizeof(h->segment), "%s/%" PRId64 "/%016" PRIx64, tenant, start_ns / 1000000,
                 h->id);
    /* writers first: a stream of dashboard queries must not keep pushes
     * waiting past the push timeout (glibc prefers readers by default) */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&h->wmu, NULL);
    pthread_cond_init(&h->wcv, NULL);
    hp_arena_init(&h->arena, 256 * 1024);
    h->symdb = hp_symdb_new();
    hp_u64map_init(&h->by_fp, 64);
    hp_u64map_init(&h->seen, 256);
    atomic_store(&h->refs, 1);
    atomic_store(&h->last_write_ms, hp_mono_ms());
    return h;
}

/* Inserts h into t's heads, keeping them sorted by start. t->lock held. */
static void tenant_add_head(ing_tenant_t *t, ing_head_t *h)
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
static ing_head_t *take_for_write(ing_head_t *h)
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

ing_head_t *ing_head_for_write(ing_t *g, ing_tenant_t *t, int64_t time_ns)
{
    int64_t width = window_ns(g), start = time_ns / width * width;
    pthread_mutex_lock(&t->lock);
    ing_head_t *h = NULL;
    for (size_t i = 0; i < t->n_heads && !h; i++)
        if (t->heads[i]->start_ns == start && atomic_load(&t->heads[i]->state) == ING_HEAD_OPEN)
            h = t->heads[i];
    if (h == NULL) {
        h = head_new(g, t->name, start, width, NULL);
        tenant_add_head(t, h);
    }
    take_for_write(h);
    pthread_mutex_unlock(&t->lock);
    return h;
}

void ing_head_write_done(ing_head_t *h)
{
    atomic_store(&h->last_write_ms, hp_mono_ms());
    pthread_mutex_lock(&h->wmu);
    if (--h->writers == 0)
        pthread_cond_broadcast(&h->wcv);
    pthread_mutex_unlock(&h->wmu);
    ing_head_unref(h);
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

ing_head_t *ing_head_for_segment(ing_t *g, ing_tenant_t *t, hp_str_t segment)
{
    int64_t start_ms;
    if (segment.n >= sizeof(((ing_head_t *)0)->segment) || !parse_segment(segment, hp_str_c(t->name), &start_ms))
        return NULL;
    pthread_mutex_lock(&t->lock);
    ing_head_t *h = NULL;
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

size_t ing_heads_in_range(ing_tenant_t *t, int64_t start_ns, int64_t end_ns, ing_head_t ***out)
{
    pthread_mutex_lock(&t->lock);
    ing_head_t **v = hp_xmalloc((t->n_heads + 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < t->n_heads; i++) {
        ing_head_t *h = t->heads[i];
        if (h->end_ns > start_ns && h->start_ns <= end_ns) {
            atomic_fetch_add(&h->refs, 1);
            v[n++] = h;
        }
    }
    pthread_mutex_unlock(&t->lock);
    *out = v;
    return n;
}

void ing_heads_release(ing_head_t **heads, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ing_head_unref(heads[i]);
    free(heads);
}

uint32_t ing_type_index(ing_head_t *h, hp_str_t type_id)
{
    for (size_t i = 0; i < h->n_types; i++)
        if (hp_str_eq_c(type_id, h->types[i]))
            return (uint32_t)i;
    HP_GROW(h->types, h->cap_types, h->n_types + 1);
    h->types[h->n_types] = hp_xstrndup(type_id.p, type_id.n);
    return (uint32_t)h->n_types++;
}

/* Fingerprint collisions are resolved by probing fp+1, fp+2, … as keys. */
ing_series_t *ing_series_get(ing_head_t *h, const hp_labels_t *labels, uint64_t fp, bool *created)
{
    uint64_t key = fp, idx;
    *created = false;
    while (hp_u64map_get(&h->by_fp, key, &idx)) {
        if (hp_labels_equal(&h->series[idx]->labels, labels))
            return h->series[idx];
        key++;
    }
    ing_series_t *s = hp_xcalloc(1, sizeof(*s));
    hp_labels_copy(&s->labels, labels);
    hp_labels_clone(&s->labels, &h->arena);
    s->fp = fp;
    s->type = ing_type_index(h, hp_labels_get(labels, HP_LABEL_PROFILE_TYPE));
    s->min_t = INT64_MAX;
    s->max_t = INT64_MIN;
    HP_GROW(h->series, h->cap_series, h->n_series + 1);
    h->series[h->n_series] = s;
    hp_u64map_put(&h->by_fp, key, h->n_series++);
    *created = true;
    return s;
}

static uint64_t replay_key(uint64_t fp, int64_t t, const uint8_t id[16])
{
    return XXH3_64bits_withSeed(id, 16, hp_mix64(fp) ^ (uint64_t)t);
}

/* Index where a profile at time t goes to keep profiles sorted by time
 * (after existing profiles of the same time). */
static size_t insert_pos(const ing_series_t *s, int64_t t)
{
    size_t lo = 0, hi = s->n_profiles;
    if (hi == 0 || s->profiles[hi - 1].t <= t)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->profiles[mid].t <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ing_series_append(ing_head_t *h, ing_series_t *s, int64_t time_ns, const uint8_t id[16],
                       const uint32_t *stacks, const int64_t *values, size_t n)
{
    bool found;
    hp_u64map_upsert(&h->seen, replay_key(s->fp, time_ns, id), 1, &found);
    if (found)
        return false;
    size_t old_cap = s->cap_samples;
    HP_GROW(s->stacks, s->cap_samples, s->n_samples + n);
    if (s->cap_samples != old_cap)
        s->values = hp_xrealloc(s->values, s->cap_samples * sizeof(int64_t));
    if (n > 0) {
        memcpy(s->stacks + s->n_samples, stacks, n * sizeof(uint32_t));
        memcpy(s->values + s->n_samples, values, n * sizeof(int64_t));
    }
    ing_profile_t p = {time_ns, {0}, (uint32_t)s->n_samples, (uint32_t)n, 0};
    memcpy(p.id, id, 16);
    for (size_t i = 0; i < n; i++)
        p.total = hp_add_wrap(p.total, values[i]);
    s->n_samples += n;
    HP_GROW(s->profiles, s->cap_profiles, s->n_profiles + 1);
    size_t at = insert_pos(s, time_ns);
    memmove(s->profiles + at + 1, s->profiles + at, (s->n_profiles - at) * sizeof(ing_profile_t));
    s->profiles[at] = p;
    s->n_profiles++;
    s->min_t = HP_MIN(s->min_t, time_ns);
    s->max_t = HP_MAX(s->max_t, time_ns);
    h->n_profiles++;
    h->n_samples += n;
    atomic_fetch_add(&h->bytes, n * (sizeof(uint32_t) + sizeof(int64_t)) + sizeof(ing_profile_t));
    return true;
}

void ing_profile_range(const ing_series_t *s, int64_t start_ns, int64_t end_ns, size_t *lo, size_t *hi)
{
    size_t a = 0, b = s->n_profiles;
    while (a < b) { /* first with t >= start */
        size_t mid = a + (b - a) / 2;
        if (s->profiles[mid].t < start_ns)
            a = mid + 1;
        else
            b = mid;
    }
    *lo = a;
    b = s->n_profiles;
    while (a < b) { /* first with t > end */
        size_t mid = a + (b - a) / 2;
        if (s->profiles[mid].t <= end_ns)
            a = mid + 1;
        else
            b = mid;
    }
    *hi = a;
}

bool ing_select_series(const ing_head_t *h, const ing_series_t *s, const ing_select_t *q)
{
    if (q->type_id && strcmp(h->types[s->type], q->type_id) != 0)
        return false;
    if (s->n_profiles == 0 || s->max_t < q->start_ns || s->min_t > q->end_ns)
        return false;
    return hp_selector_matches(&q->sel, &s->labels);
}

void ing_for_each_head(ing_t *g, hp_str_t tenant, int64_t start_ns, int64_t end_ns, ing_head_fn fn, void *ctx)
{
    ing_tenant_t *t = ing_tenant(g, tenant, false);
    if (t == NULL)
        return;
    ing_sources_t src;
    ing_sources_in_range(t, start_ns, end_ns, &src);
    for (size_t i = 0; i < src.n_heads; i++) {
        pthread_rwlock_rdlock(&src.heads[i]->lock);
        fn(ctx, src.heads[i]);
        pthread_rwlock_unlock(&src.heads[i]->lock);
    }
    for (size_t i = 0; i < src.n_blocks; i++) {
        ing_head_t *h = ing_block_source(g, src.blocks[i], NULL);
        if (h == NULL)
            continue;
        fn(ctx, h);
        ing_head_unref(h);
    }
    ing_sources_release(&src);
}
