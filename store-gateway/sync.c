/* Syncing: every -store-gateway.sync-interval, the tenants in the bucket
 * and each one's bucket index become the gateway's block lists. */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "hotpath/log.h"

typedef struct names {
    char **v;
    size_t n, cap;
} names_t;

static int add_tenant(void *ctx, const char *tenant)
{
    names_t *ns = ctx;
    HP_GROW(ns->v, ns->cap, ns->n + 1);
    ns->v[ns->n++] = hp_xstrdup(tenant);
    return 0;
}

/* The tenant's entry, created empty when absent. tenants_mu held. */
static sg_tenant_t *tenant_entry(sg_t *g, const char *name)
{
    for (size_t i = 0; i < g->n_tenants; i++)
        if (strcmp(g->tenants[i]->name, name) == 0)
            return g->tenants[i];
    sg_tenant_t *t = hp_xcalloc(1, sizeof(*t));
    t->name = hp_xstrdup(name);
    HP_GROW(g->tenants, g->cap_tenants, g->n_tenants + 1);
    g->tenants[g->n_tenants++] = t;
    return t;
}

/* The block of t with this ULID (a reference taken), or NULL. tenants_mu held. */
static sg_block_t *known_block(sg_tenant_t *t, const char *ulid)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->blocks[i]->meta.ulid, ulid) == 0) {
            atomic_fetch_add(&t->blocks[i]->refs, 1);
            return t->blocks[i];
        }
    return NULL;
}

/* Reads the tenant's index (building it from a listing when there is none
 * yet: no compactor has run) and installs the blocks this gateway may
 * serve: not marked for deletion, and older than -store-gateway.ignore-
 * blocks-within. Known blocks keep their object, so their cache and ID. */
static int sync_tenant(sg_t *g, const char *tenant, size_t *n_blocks, hp_err_t *err)
{
    hp_bucket_index_t bi;
    hp_bucket_index_init(&bi);
    int rc = hp_bucket_index_read(g->store, tenant, &bi, err);
    if (rc == HP_ENOTFOUND)
        rc = hp_bucket_index_build(g->store, tenant, NULL, &bi, err);
    if (rc != 0) {
        hp_bucket_index_fini(&bi);
        return rc;
    }
    int64_t horizon = hp_now_ms() - g->cfg->store_gateway.ignore_blocks_within_ms;
    sg_block_t **v = hp_xmalloc((bi.n_blocks + 1) * sizeof(*v));
    size_t n = 0;
    pthread_mutex_lock(&g->tenants_mu);
    sg_tenant_t *t = tenant_entry(g, tenant);
    for (size_t i = 0; i < bi.n_blocks; i++) {
        const hp_bi_block_t *m = &bi.blocks[i];
        if (m->deletion_mark_ms != 0 || m->max_time_ms >= horizon)
            continue;
        sg_block_t *b = known_block(t, m->ulid);
        v[n++] = b ? b : sg_block_new(g, tenant, m);
    }
    sg_block_t **old = t->blocks;
    size_t n_old = t->n;
    t->blocks = v;
    t->n = n;
    pthread_mutex_unlock(&g->tenants_mu);
    for (size_t i = 0; i < n_old; i++)
        sg_block_unref(old[i]);
    free(old);
    hp_bucket_index_fini(&bi);
    *n_blocks = n;
    return 0;
}

/* One pass over every tenant. A tenant that fails keeps its last list. */
static void sync_all(sg_t *g)
{
    names_t ns = {0};
    hp_err_t err;
    int rc = hp_bucket_tenants(g->store, add_tenant, &ns, &err);
    char q[600];
    if (rc != 0) {
        HP_WARN("cannot list tenants; keeping the last block lists", "err=%s",
                hp_log_q(q, sizeof(q), err.msg));
        hp_metric_add(g->m_sync_errors, 1);
    }
    size_t total = 0;
    for (size_t i = 0; i < ns.n; i++) {
        size_t n = 0;
        if (sync_tenant(g, ns.v[i], &n, &err) != 0) {
            HP_WARN("cannot read a bucket index; keeping the last block list", "tenant=%s err=%s", ns.v[i],
                    hp_log_q(q, sizeof(q), err.msg));
            hp_metric_add(g->m_sync_errors, 1);
        }
        total += n;
        free(ns.v[i]);
    }
    free(ns.v);
    hp_metric_set(g->m_blocks, (double)total);
    HP_DEBUG("bucket indexes synced", "tenants=%zu blocks=%zu", ns.n, total);
}

static void *sync_main(void *arg)
{
    sg_t *g = arg;
    for (;;) {
        sync_all(g);
        if (atomic_exchange(&g->synced, 1) == 0) {
            int joining = HP_MEMBER_JOINING;
            atomic_compare_exchange_strong(&g->self.state, &joining, HP_MEMBER_ACTIVE);
            HP_INFO("store-gateway ready", "instance=%s", g->instance_id);
        }
        pthread_mutex_lock(&g->sync_mu);
        int64_t until = hp_mono_ms() + g->cfg->store_gateway.sync_interval_ms;
        while (!g->stop && hp_mono_ms() < until)
            hp_cond_wait_ms(&g->sync_cv, &g->sync_mu, until - hp_mono_ms());
        bool stop = g->stop;
        pthread_mutex_unlock(&g->sync_mu);
        if (stop)
            return NULL;
    }
}

int sg_sync_start(sg_t *g, hp_err_t *err)
{
    if (pthread_create(&g->sync_thread, NULL, sync_main, g) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the sync thread");
    g->sync_started = true;
    return 0;
}

void sg_sync_stop(sg_t *g)
{
    if (!g->sync_started)
        return;
    pthread_mutex_lock(&g->sync_mu);
    g->stop = true;
    pthread_cond_broadcast(&g->sync_cv);
    pthread_mutex_unlock(&g->sync_mu);
    pthread_join(g->sync_thread, NULL);
    g->sync_started = false;
}

void sg_tenants_free(sg_t *g)
{
    for (size_t i = 0; i < g->n_tenants; i++) {
        sg_tenant_t *t = g->tenants[i];
        for (size_t k = 0; k < t->n; k++)
            sg_block_unref(t->blocks[k]);
        free(t->blocks);
        free(t->name);
        free(t);
    }
    free(g->tenants);
    g->tenants = NULL;
    g->n_tenants = 0;
}
