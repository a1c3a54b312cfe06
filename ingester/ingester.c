/* The ingester's lifecycle: RPC server, heads, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/log.h"
#include "ingester.h"

int ing_new(hp_service_t *svc, ing_t **out, hp_err_t *err)
{
    ing_t *g = hp_xcalloc(1, sizeof(*g));
    *out = g;
    g->svc = svc;
    g->cfg = &svc->cfg;
    pthread_mutex_init(&g->tenants_lock, NULL);
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
    int rc = hp_rpc_server_start(g->rpc, err);
    if (rc == 0)
        HP_INFO("ingester ready", "rpc=tcp://%s:%lld", g->cfg->server.rpc_listen_address,
                (long long)g->cfg->server.rpc_listen_port);
    return rc;
}

void ing_stop(ing_t *g)
{
    if (g && g->rpc)
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
    free(g);
}
