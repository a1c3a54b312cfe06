/* The store-gateway's lifecycle: object store, ring, query engine, RPC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "hotpath/log.h"

int sg_new(hp_service_t *svc, sg_t **out, hp_err_t *err)
{
    sg_t *g = hp_xcalloc(1, sizeof(*g));
    *out = g;
    g->svc = svc;
    g->cfg = &svc->cfg;
    pthread_mutex_init(&g->tenants_mu, NULL);
    pthread_mutex_init(&g->cache_mu, NULL);
    pthread_mutex_init(&g->sync_mu, NULL);
    pthread_cond_init(&g->sync_cv, NULL);
    g->lru.next = g->lru.prev = &g->lru;
    atomic_store(&g->next_id, 1);
    g->instance_id = hp_service_instance_id(g->cfg);
    g->self.instance_id = g->instance_id;
    g->self.zone = g->cfg->ring.zone ? g->cfg->ring.zone : "";
    atomic_store(&g->self.state, HP_MEMBER_JOINING);
    hp_metrics_t *m = svc->metrics;
    g->m_blocks =
        hp_metrics_gauge(m, "hotpath_store_gateway_blocks", "Blocks known from the bucket indexes.", NULL);
    g->m_cache_bytes = hp_metrics_gauge(m, "hotpath_store_gateway_cache_bytes",
                                        "Bytes of block indexes and symbols in memory.", NULL);
    g->m_loads = hp_metrics_counter(m, "hotpath_store_gateway_block_loads_total",
                                    "Block indexes read from the object store.", NULL);
    g->m_evictions = hp_metrics_counter(m, "hotpath_store_gateway_cache_evictions_total",
                                        "Blocks whose index and symbols left the cache.", NULL);
    g->m_sync_errors = hp_metrics_counter(m, "hotpath_store_gateway_sync_errors_total",
                                          "Bucket index reads that failed.", NULL);
    g->m_damaged = hp_metrics_counter(m, "hotpath_store_gateway_damaged_blocks_total",
                                      "Blocks found damaged (skipped by queries).", NULL);
    hp_qe_provider_t qp;
    sg_qe_provider(g, &qp);
    g->qe = hp_qengine_new(&qp);
    int rc = hp_service_objstore(g->cfg, &g->store, err);
    if (rc != 0)
        return rc;
    const char *members = g->cfg->store_gateway.ring_members;
    if (members && *members) {
        hp_members_config_t mc = {members,
                                  (size_t)g->cfg->ring.num_tokens,
                                  g->cfg->ring.heartbeat_period_ms,
                                  g->cfg->ring.heartbeat_timeout_ms,
                                  g->cfg->ring.dns_refresh_ms,
                                  false,
                                  NULL,
                                  NULL};
        if ((rc = hp_members_new(&mc, &g->ring, err)) != 0)
            return rc;
    }
    char url[320];
    snprintf(url, sizeof(url), "tcp://%s:%lld", g->cfg->server.rpc_listen_address,
             (long long)g->cfg->server.rpc_listen_port);
    hp_rpc_server_config_t rc_cfg = {url, 0, 0};
    return hp_rpc_server_new(svc->pool, &rc_cfg, &g->rpc, err);
}

static bool sg_ready(void *ctx, hp_buf_t *why)
{
    sg_t *g = ctx;
    int st = atomic_load(&g->self.state);
    if (st == HP_MEMBER_ACTIVE)
        return true;
    hp_buf_printf(why, "%s", st == HP_MEMBER_JOINING ? "reading the bucket indexes" : "leaving");
    return false;
}

int sg_start(sg_t *g, hp_err_t *err)
{
    hp_qengine_register(g->qe, g->rpc);
    hp_rpc_server_handle(g->rpc, "ring.Probe", hp_members_probe_handler, &g->self);
    hp_service_on_ready(g->svc, sg_ready, g);
    int rc = hp_rpc_server_start(g->rpc, err);
    if (rc == 0 && g->ring)
        rc = hp_members_start(g->ring, err);
    if (rc == 0)
        rc = sg_sync_start(g, err);
    return rc;
}

/* LEAVING: the ring gives this gateway's blocks to the others (within a
 * heartbeat); it answers queries until its server stops. */
void sg_stop(sg_t *g)
{
    if (g == NULL)
        return;
    atomic_store(&g->self.state, HP_MEMBER_LEAVING);
    sg_sync_stop(g);
    if (g->ring)
        hp_members_stop(g->ring);
    if (g->rpc)
        hp_rpc_server_stop(g->rpc);
}

void sg_free(sg_t *g)
{
    if (g == NULL)
        return;
    /* hp_service_fini ran first and freed the registry these point into;
     * freeing the blocks below must not update them */
    g->m_blocks = g->m_cache_bytes = g->m_loads = g->m_evictions = g->m_sync_errors = g->m_damaged = NULL;
    hp_rpc_server_free(g->rpc);
    hp_qengine_free(g->qe);
    sg_tenants_free(g);
    hp_members_free(g->ring);
    hp_objstore_free(g->store);
    pthread_mutex_destroy(&g->tenants_mu);
    pthread_mutex_destroy(&g->cache_mu);
    pthread_mutex_destroy(&g->sync_mu);
    pthread_cond_destroy(&g->sync_cv);
    free(g->instance_id);
    free(g);
}
