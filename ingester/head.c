/* Per-tenant heads: series, their profiles, and the tenant's symbols. */
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
        /* writers first: a stream of dashboard queries must not keep pushes
         * waiting past the push timeout (glibc prefers readers by default) */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&t->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        hp_arena_init(&t->arena, 256 * 1024);
        t->symdb = hp_symdb_new();
        hp_u64map_init(&t->by_fp, 64);
        hp_u64map_init(&t->seen, 256);
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

void ing_tenant_free(ing_tenant_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_series; i++)
        series_free(t->series[i]);
    free(t->series);
    for (size_t i = 0; i < t->n_types; i++)
        free(t->types[i]);
    free(t->types);
    hp_u64map_fini(&t->by_fp);
    hp_u64map_fini(&t->seen);
    hp_symdb_free(t->symdb);
    hp_arena_fini(&t->arena);
    pthread_rwlock_destroy(&t->lock);
    free(t->name);
    free(t);
}

uint32_t ing_type_index(ing_tenant_t *t, hp_str_t type_id)
{
    for (size_t i = 0; i < t->n_types; i++)
        if (hp_str_eq_c(type_id, t->types[i]))
            return (uint32_t)i;
    HP_GROW(t->types, t->cap_types, t->n_types + 1);
    t->types[t->n_types] = hp_xstrndup(type_id.p, type_id.n);
    return (uint32_t)t->n_types++;
}

/* Fingerprint collisions are resolved by probing fp+1, fp+2, … as keys. */
ing_series_t *ing_series_get(ing_tenant_t *t, const hp_labels_t *labels, uint64_t fp, bool *created)
{
    uint64_t key = fp, idx;
    *created = false;
    while (hp_u64map_get(&t->by_fp, key, &idx)) {
        if (hp_labels_equal(&t->series[idx]->labels, labels))
            return t->series[idx];
        key++;
    }
    ing_series_t *s = hp_xcalloc(1, sizeof(*s));
    hp_labels_copy(&s->labels, labels);
    hp_labels_clone(&s->labels, &t->arena);
    s->fp = fp;
    s->type = ing_type_index(t, hp_labels_get(labels, HP_LABEL_PROFILE_TYPE));
    s->min_t = INT64_MAX;
    s->max_t = INT64_MIN;
    HP_GROW(t->series, t->cap_series, t->n_series + 1);
    t->series[t->n_series] = s;
    hp_u64map_put(&t->by_fp, key, t->n_series++);
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

bool ing_series_append(ing_tenant_t *t, ing_series_t *s, int64_t time_ns, const uint8_t id[16],
                       const uint32_t *stacks, const int64_t *values, size_t n)
{
    bool found;
    hp_u64map_upsert(&t->seen, replay_key(s->fp, time_ns, id), 1, &found);
    if (found)
        return false;
    size_t old_cap = s->cap_samples;
    HP_GROW(s->stacks, s->cap_samples, s->n_samples + n);
    if (s->cap_samples != old_cap)
        s->values = hp_xrealloc(s->values, s->cap_samples * sizeof(int64_t));
    memcpy(s->stacks + s->n_samples, stacks, n * sizeof(uint32_t));
    memcpy(s->values + s->n_samples, values, n * sizeof(int64_t));
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
    t->n_profiles++;
    t->n_samples += n;
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

bool ing_select_series(const ing_tenant_t *t, const ing_series_t *s, const ing_select_t *q)
{
    if (q->type_id && strcmp(t->types[s->type], q->type_id) != 0)
        return false;
    if (s->n_profiles == 0 || s->max_t < q->start_ns || s->min_t > q->end_ns)
        return false;
    return hp_selector_matches(&q->sel, &s->labels);
}
