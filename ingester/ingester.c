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
    char url[320];
    snprintf(url, sizeof(url), "tcp://%s:%lld", g->cfg->server.rpc_listen_address,
             (long long)g->cfg->server.rpc_listen_port);
    hp_rpc_server_config_t rc = {url, 0, 0};
    return hp_rpc_server_new(svc->pool, &rc, &g->rpc, err);
}

int ing_start(ing_t *g, hp_err_t *err)
{
    ing_register_ingest(g);
    ing_register_queries(g);
    ing_register_sessions(g);
    hp_rpc_server_handle(g->rpc, "ring.Probe", hp_members_probe_handler, &g->self);
    int rc = hp_rpc_server_start(g->rpc, err);
    if (rc != 0)
        return rc;
    /* no WAL to replay yet: ready to take writes at once */
    atomic_store(&g->self.state, HP_MEMBER_ACTIVE);
    HP_INFO("ingester ready", "instance=%s zone=%s rpc=tcp://%s:%lld", g->instance_id, g->self.zone,
            g->cfg->server.rpc_listen_address, (long long)g->cfg->server.rpc_listen_port);
    return 0;
}

/* LEAVING: writes are refused (distributors route them to other replicas
 * within a heartbeat), reads are still served until the server stops. */
void ing_stop(ing_t *g)
{
    if (g == NULL)
        return;
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
    free(g->instance_id);
    free(g);
}
