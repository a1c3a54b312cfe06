/* The ingester's lifecycle: RPC server, heads, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "ingester.h"

int ing_new(hp_service_t *svc, ing_t **out, hp_err_t *err)
{
    ing_t *g = hp_xcalloc(1, sizeof(*g));
    *out = g;
    g->svc = svc;
    g->cfg = &svc->cfg;
    pthread_mutex_init(&g->tenants_lock, NULL);
    hp_qe_provider_t qp;
    ing_qe_provider(g, &qp);
    g->qe = hp_qengine_new(&qp);
    g->instance_id = hp_service_instance_id(g->cfg);
    g->self.instance_id = g->instance_id;
    g->self.zone = g->cfg->ring.zone ? g->cfg->ring.zone : "";
    atomic_store(&g->self.state, HP_MEMBER_JOINING);
    hp_metrics_t *m = svc->metrics;
    g->m_profiles = hp_metrics_counter(m, "hotpath_ingester_profiles_total", "Profiles stored (per series).", NULL);
    g->m_samples = hp_metrics_counter(m, "hotpath_ingester_samples_total", "Samples stored.", NULL);
    g->m_series = hp_metrics_gauge(m, "hotpath_ingester_series", "Series in the heads.", NULL);
    g->m_bytes = hp_metrics_gauge(m, "hotpath_ingester_head_bytes", "Approximate bytes held by the heads.", NULL);
    g->m_push_errors = hp_metrics_counter(m, "hotpath_ingester_push_errors_total", "Pushes refused.", NULL);
    g->m_wal_replayed = hp_metrics_counter(m, "hotpath_ingester_wal_replayed_records_total",
                                           "WAL records replayed into the heads at start.", NULL);
    g->m_wal_damaged = hp_metrics_counter(m, "hotpath_ingester_wal_damaged_records_total",
                                          "WAL records skipped at replay because they were damaged.", NULL);
    char wal_dir[4096];
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", g->cfg->ingester.data_dir);
    hp_wal_config_t wc = {wal_dir,
                          strcmp(g->cfg->ingester.wal_sync, "interval") == 0 ? HP_WAL_SYNC_INTERVAL : HP_WAL_SYNC_BATCH,
                          g->cfg->ingester.wal_sync_interval_ms};
    int wrc = hp_wal_open(&wc, &g->wal, err);
    if (wrc != 0)
        return wrc;
    g->m_flushes = hp_metrics_counter(m, "hotpath_ingester_flushes_total", "Heads flushed to blocks.", NULL);
    g->m_flush_errors = hp_metrics_counter(m, "hotpath_ingester_flush_errors_total", "Head flushes that failed.", NULL);
    g->m_uploads = hp_metrics_counter(m, "hotpath_ingester_block_uploads_total", "Blocks uploaded to the object store.", NULL);
    g->m_upload_errors = hp_metrics_counter(m, "hotpath_ingester_block_upload_errors_total",
                                            "Block uploads that failed (retried).", NULL);
    g->m_blocks = hp_metrics_gauge(m, "hotpath_ingester_local_blocks", "Flushed blocks kept on local disk.", NULL);
    g->m_damaged_blocks = hp_metrics_counter(m, "hotpath_ingester_damaged_blocks_total",
                                             "Local blocks found damaged (skipped by queries, not uploaded).", NULL);
    char bdir[4200];
    snprintf(bdir, sizeof(bdir), "%s/blocks", g->cfg->ingester.data_dir);
    g->blocks_dir = hp_xstrdup(bdir);
    pthread_mutex_init(&g->flush_mu, NULL);
    pthread_cond_init(&g->flush_cv, NULL);
    wrc = hp_service_objstore(g->cfg, &g->store, err);
    if (wrc != 0)
        return wrc;
    char url[320];
    snprintf(url, sizeof(url), "tcp://%s:%lld", g->cfg->server.rpc_listen_address,
             (long long)g->cfg->server.rpc_listen_port);
    hp_rpc_server_config_t rc = {url, 0, 0};
    return hp_rpc_server_new(svc->pool, &rc, &g->rpc, err);
}

/* Replays the WAL, then takes writes (ACTIVE). Until then the instance
 * answers probes as JOINING: no writes, no reads (its heads are partial). */
static void *replay_main(void *arg)
{
    ing_t *g = arg;
    hp_err_t err;
    hp_err_clear(&err);
    if (ing_replay(g, &err) != 0) {
        char q[600];
        HP_ERROR("wal replay failed: the ingester stays JOINING", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        return NULL;
    }
    int joining = HP_MEMBER_JOINING;
    atomic_compare_exchange_strong(&g->self.state, &joining, HP_MEMBER_ACTIVE);
    HP_INFO("ingester ready", "instance=%s zone=%s rpc=tcp://%s:%lld", g->instance_id, g->self.zone,
            g->cfg->server.rpc_listen_address, (long long)g->cfg->server.rpc_listen_port);
    return NULL;
}

static bool ing_ready(void *ctx, hp_buf_t *why)
{
    ing_t *g = ctx;
    int st = atomic_load(&g->self.state);
    if (st == HP_MEMBER_ACTIVE)
        return true;
    hp_buf_printf(why, "%s", st == HP_MEMBER_JOINING ? "replaying the WAL" : "leaving");
    return false;
}

int ing_start(ing_t *g, hp_err_t *err)
{
    int lrc = ing_blocks_load(g, err);
    if (lrc != 0)
        return lrc;
    ing_register_ingest(g);
    hp_qengine_register(g->qe, g->rpc);
    hp_rpc_server_handle(g->rpc, "ring.Probe", hp_members_probe_handler, &g->self);
    hp_service_on_ready(g->svc, ing_ready, g);
    int rc = hp_rpc_server_start(g->rpc, err);
    if (rc != 0)
        return rc;
    if (pthread_create(&g->replay_thread, NULL, replay_main, g) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the WAL replay thread");
    g->replay_started = true;
    return ing_flush_start(g, err);
}

/* LEAVING: writes are refused (distributors route them to other replicas
 * within a heartbeat), reads are still served until the server stops. */
void ing_stop(ing_t *g)
{
    if (g == NULL)
        return;
    if (g->replay_started) {
        pthread_join(g->replay_thread, NULL);
        g->replay_started = false;
    }
    /* LEAVING: distributors stop writing here within a heartbeat; reads
     * go on while every head is flushed and uploaded */
    bool was_active = atomic_exchange(&g->self.state, HP_MEMBER_LEAVING) == HP_MEMBER_ACTIVE;
    ing_flush_stop(g, was_active);
    if (g->rpc)
        hp_rpc_server_stop(g->rpc);
}

void ing_free(ing_t *g)
{
    if (g == NULL)
        return;
    hp_rpc_server_free(g->rpc);
    for (size_t i = 0; i < g->n_tenants; i++)
        ing_tenant_free(g->tenants[i]);
    free(g->tenants);
    pthread_mutex_destroy(&g->tenants_lock);
    hp_qengine_free(g->qe);
    hp_wal_close(g->wal);
    hp_objstore_free(g->store);
    for (size_t i = 0; i < g->n_flushed_segments; i++)
        free(g->flushed_segments[i]);
    free(g->flushed_segments);
    free(g->blocks_dir);
    pthread_mutex_destroy(&g->flush_mu);
    pthread_cond_destroy(&g->flush_cv);
    free(g->instance_id);
    free(g);
}
