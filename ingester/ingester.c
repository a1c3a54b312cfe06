/* The ingester's lifecycle: RPC server, heads, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "ingester.h"

/* The instance ID: -ring.instance-id, else hostname:rpc-port. */
static char *instance_id(const hp_config_t *cfg)
{
    if (cfg->ring.instance_id && *cfg->ring.instance_id)
        return hp_xstrdup(cfg->ring.instance_id);
    char host[256] = "localhost", id[300];
    gethostname(host, sizeof(host) - 1);
    snprintf(id, sizeof(id), "%s:%lld", host, (long long)cfg->server.rpc_listen_port);
    return hp_xstrdup(id);
}

int ing_new(hp_service_t *svc, ing_t **out, hp_err_t *err)
{
    ing_t *g = hp_xcalloc(1, sizeof(*g));
    *out = g;
    g->svc = svc;
    g->cfg = &svc->cfg;
    pthread_mutex_init(&g->tenants_lock, NULL);
    ing_sessions_init(&g->sessions);
    g->instance_id = instance_id(g->cfg);
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
    ing_register_ingest(g);
    ing_register_queries(g);
    ing_register_sessions(g);
    hp_rpc_server_handle(g->rpc, "ring.Probe", hp_members_probe_handler, &g->self);
    hp_service_on_ready(g->svc, ing_ready, g);
    int rc = hp_rpc_server_start(g->rpc, err);
    if (rc != 0)
        return rc;
    if (pthread_create(&g->replay_thread, NULL, replay_main, g) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the WAL replay thread");
    g->replay_started = true;
    return 0;
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
    atomic_store(&g->self.state, HP_MEMBER_LEAVING);
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
    ing_sessions_fini(&g->sessions);
    hp_wal_close(g->wal);
    free(g->instance_id);
    free(g);
}
