/* Blocks in the object store as query sources: ownership through the
 * store-gateway ring, lazy loading by byte range, and the LRU cache of
 * their indexes and symbols. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "gateway.h"
#include "hotpath/log.h"
#include "hotpath/ring.h"

sg_block_t *sg_block_new(sg_t *g, const char *tenant, const hp_bi_block_t *meta)
{
    sg_block_t *b = hp_xcalloc(1, sizeof(*b));
    b->id = atomic_fetch_add(&g->next_id, 1);
    b->tenant = hp_xstrdup(tenant);
    b->meta = *meta;
    snprintf(b->key, sizeof(b->key), "%s/blocks/%s/data", tenant, meta->ulid);
    b->g = g;
    atomic_store(&b->refs, 1);
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

/* Drops b's loaded parts. b->mu held; the caller fixes the cache's count. */
static size_t unload(sg_block_t *b)
{
    hp_block_close(b->b);
    hp_symdb_free(b->symdb);
    b->b = NULL;
    b->symdb = NULL;
    size_t n = b->bytes;
    b->bytes = 0;
    return n;
}

static void lru_unlink(sg_block_t *b)
{
    b->prev->next = b->next;
    b->next->prev = b->prev;
    b->prev = b->next = NULL;
    b->in_lru = false;
}

void sg_block_unref(sg_block_t *b)
{
    if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    sg_t *g = b->g;
    pthread_mutex_lock(&g->cache_mu);
    if (b->in_lru)
        lru_unlink(b);
    g->cache_bytes -= b->bytes;
    hp_metric_set(g->m_cache_bytes, (double)g->cache_bytes);
    pthread_mutex_unlock(&g->cache_mu);
    unload(b);
    pthread_mutex_destroy(&b->mu);
    free(b->tenant);
    free(b);
}

/* ---- ownership ---- */

bool sg_owns(sg_t *g, const sg_block_t *b)
{
    if (g->ring == NULL)
        return true;
    hp_ring_view_t *v = hp_members_view(g->ring);
    size_t rf = (size_t)HP_MAX(g->cfg->store_gateway.replication_factor, 1), owners[16];
    rf = HP_MIN(rf, HP_ARRAY_LEN(owners));
    size_t n =
        hp_ring_view_write_set(v, (uint32_t)XXH3_64bits(b->meta.ulid, strlen(b->meta.ulid)), rf, owners);
    bool mine = false;
    for (size_t i = 0; i < n && !mine; i++) {
        hp_member_info_t info;
        hp_ring_view_member(v, owners[i], &info);
        mine = info.instance_id && strcmp(info.instance_id, g->instance_id) == 0;
    }
    hp_ring_view_release(v);
    return mine;
}

/* ---- loading and the cache ---- */

static int fetch(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    sg_block_t *b = ctx;
    hp_buf_t tmp = HP_BUF_INIT;
    int rc = hp_objstore_get_range(b->g->store, b->key, off, len, &tmp, err);
    if (rc == 0)
        hp_buf_append(out, tmp.data, tmp.len);
    hp_buf_fini(&tmp);
    return rc;
}

/* Moves b to the front of the LRU with its new size, then evicts the
 * least recently used unpinned blocks while the cache is over budget.
 * Victims are only tried (trylock): one being loaded or read is skipped. */
static void cache_account(sg_t *g, sg_block_t *b, size_t old_bytes)
{
    size_t budget = (size_t)g->cfg->store_gateway.cache_bytes;
    pthread_mutex_lock(&g->cache_mu);
    if (b->in_lru)
        lru_unlink(b);
    b->next = g->lru.next;
    b->prev = &g->lru;
    g->lru.next->prev = b;
    g->lru.next = b;
    b->in_lru = true;
    g->cache_bytes += b->bytes - old_bytes;
    for (sg_block_t *v = g->lru.prev; v != &g->lru && g->cache_bytes > budget;) {
        sg_block_t *prev = v->prev;
        if (v != b && pthread_mutex_trylock(&v->mu) == 0) {
            if (v->pins == 0) {
                g->cache_bytes -= unload(v);
                lru_unlink(v);
                hp_metric_add(g->m_evictions, 1);
            }
            pthread_mutex_unlock(&v->mu);
        }
        v = prev;
    }
    hp_metric_set(g->m_cache_bytes, (double)g->cache_bytes);
    pthread_mutex_unlock(&g->cache_mu);
}

/* Loads what a query needs (the index; the symbols when with_symbols) and
 * pins b. 0, or an error for a block that cannot be read. */
static int pin(sg_block_t *b, bool with_symbols, hp_err_t *err)
{
    pthread_mutex_lock(&b->mu);
    size_t old = b->bytes;
    int rc = 0;
    if (b->b == NULL) {
        rc = hp_block_open(b->meta.ulid, b->meta.data_bytes, fetch, b, &b->b, err);
        if (rc == 0)
            hp_metric_add(b->g->m_loads, 1);
    }
    if (rc == 0 && with_symbols && b->symdb == NULL)
        rc = hp_block_read_symbols(b->b, &b->symdb, err);
    if (rc == 0) {
        b->bytes = hp_block_mem_bytes(b->b) + (b->symdb ? hp_symdb_bytes(b->symdb) : 0);
        b->pins++;
    }
    pthread_mutex_unlock(&b->mu);
    if (rc == 0)
        cache_account(b->g, b, old);
    return rc;
}

static void unpin(sg_block_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->pins--;
    pthread_mutex_unlock(&b->mu);
}

/* ---- the query engine's provider ---- */

/* One use of a block by one query: it is pinned once opened. */
typedef struct use {
    sg_block_t *b;
    bool pinned;
} use_t;

static void qe_sources(void *ctx, hp_str_t tenant, int64_t start_ns, int64_t end_ns, hp_qe_sources_t *out)
{
    sg_t *g = ctx;
    pthread_mutex_lock(&g->tenants_mu);
    sg_tenant_t *t = NULL;
    for (size_t i = 0; i < g->n_tenants && !t; i++)
        if (hp_str_eq_c(tenant, g->tenants[i]->name))
            t = g->tenants[i];
    size_t n = 0;
    sg_block_t **v = NULL;
    if (t) {
        v = hp_xmalloc((t->n + 1) * sizeof(*v));
        for (size_t i = 0; i < t->n; i++) {
            sg_block_t *b = t->blocks[i];
            if (hp_ms_to_ns_sat(b->meta.max_time_ms) + 999999 >= start_ns &&
                hp_ms_to_ns_sat(b->meta.min_time_ms) <= end_ns && !atomic_load(&b->damaged)) {
                atomic_fetch_add(&b->refs, 1);
                v[n++] = b;
            }
        }
    }
    pthread_mutex_unlock(&g->tenants_mu);
    for (size_t i = 0; i < n; i++) { /* ownership outside the lock: it takes a ring view */
        if (!sg_owns(g, v[i])) {
            sg_block_unref(v[i]);
            continue;
        }
        use_t *u = hp_xcalloc(1, sizeof(*u));
        u->b = v[i];
        hp_qe_sources_add(out, v[i]->id, NULL, u);
    }
    free(v);
}

/* Damaged data (HP_EINVAL from the reader) skips the block from now on;
 * anything else (the object store is unreachable) fails the query, so
 * the querier answers 503 instead of a silently partial result. */
static int qe_open_block(void *ctx, void *block, const hp_select_t *q, hp_head_t **out, hp_err_t *err)
{
    sg_t *g = ctx;
    use_t *u = block;
    sg_block_t *b = u->b;
    *out = NULL;
    int rc = u->pinned ? 0 : pin(b, q != NULL, err);
    u->pinned = rc == 0;
    if (rc == 0 && q != NULL && b->symdb == NULL) /* pinned earlier for labels only */
        rc = hp_err_set(err, HP_EINTERNAL, "block %s: symbols not loaded", b->meta.ulid);
    if (rc == 0)
        rc = hp_head_from_block(b->b, b->symdb, b->id, b->tenant, q, out, err);
    if (rc == HP_EINVAL) {
        if (atomic_exchange(&b->damaged, 1) == 0) {
            char m[600];
            HP_ERROR("block damaged; queries skip it", "tenant=%s block=%s err=%s", b->tenant, b->meta.ulid,
                     hp_log_q(m, sizeof(m), err->msg));
            hp_metric_add(g->m_damaged, 1);
        }
        return 0;
    }
    return rc;
}

static void qe_release_block(void *ctx, void *block)
{
    (void)ctx;
    use_t *u = block;
    if (u->pinned)
        unpin(u->b);
    sg_block_unref(u->b);
    free(u);
}

void sg_qe_provider(sg_t *g, hp_qe_provider_t *p)
{
    *p = (hp_qe_provider_t){qe_sources, qe_open_block, qe_release_block, g};
}
