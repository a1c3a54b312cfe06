/* The distributor's state: ingester clients, the ring, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "hotpath/log.h"

int dist_new(hp_service_t *svc, dist_t **out, hp_err_t *err)
{
    dist_t *d = hp_xcalloc(1, sizeof(*d));
    *out = d;
    d->svc = svc;
    d->cfg = &svc->cfg;
    d->n_members = hp_ring_parse_members(d->cfg->ring.members, &d->member_urls);
    if (d->n_members == 0)
        return hp_err_set(err, HP_EINVAL,
                          "no ingesters: set -ring.members to their RPC addresses (tcp://host:port,…)");
    if (d->cfg->distributor.replication_factor > 1)
        return hp_err_set(err, HP_EINVAL,
                          "-distributor.replication-factor=%lld: replication needs the querier's replica "
                          "deduplication, which this version does not have yet; use 1",
                          (long long)d->cfg->distributor.replication_factor);
    d->clients = hp_xcalloc(d->n_members, sizeof(*d->clients));
    for (size_t i = 0; i < d->n_members; i++) {
        int rc = hp_rpc_client_new(d->member_urls[i], 0, &d->clients[i], err);
        if (rc != 0)
            return rc;
    }
    d->ring = hp_ring_new((const char *const *)d->member_urls, d->n_members,
                          (size_t)d->cfg->ring.num_tokens);
    static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    d->push_seconds = hp_metrics_histogram(svc->metrics, "hotpath_distributor_push_duration_seconds",
                                           "Time to accept a push: decode, validate and replicate.",
                                           NULL, buckets, HP_ARRAY_LEN(buckets));
    HP_INFO("distributor ready", "ingesters=%zu replication_factor=%lld", d->n_members,
            (long long)d->cfg->distributor.replication_factor);
    return 0;
}

void dist_free(dist_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; d->clients && i < d->n_members; i++)
        hp_rpc_client_free(d->clients[i]);
    free(d->clients);
    hp_ring_members_free(d->member_urls, d->n_members);
    hp_ring_free(d->ring);
    free(d);
}

static void tenant_labels(char *buf, size_t n, hp_str_t tenant, const char *reason)
{
    char t[320];
    char tz[160];
    snprintf(tz, sizeof(tz), "%.*s", (int)HP_MIN(tenant.n, 150), tenant.p);
    hp_metrics_escape(tz, t, sizeof(t));
    if (reason)
        snprintf(buf, n, "reason=\"%s\",tenant=\"%s\"", reason, t);
    else
        snprintf(buf, n, "tenant=\"%s\"", t);
}

void dist_count_discarded(dist_t *d, hp_str_t tenant, const char *reason, size_t bytes)
{
    char l[512];
    tenant_labels(l, sizeof(l), tenant, reason);
    hp_metric_add(hp_metrics_counter(d->svc->metrics, "hotpath_discarded_profiles_total",
                                     "Profiles refused, by reason.", l), 1);
    hp_metric_add(hp_metrics_counter(d->svc->metrics, "hotpath_discarded_bytes_total",
                                     "Bytes of refused profiles, by reason.", l), (double)bytes);
}

void dist_count_received(dist_t *d, hp_str_t tenant, size_t profiles, size_t bytes)
{
    char l[512];
    tenant_labels(l, sizeof(l), tenant, NULL);
    hp_metric_add(hp_metrics_counter(d->svc->metrics, "hotpath_distributor_received_profiles_total",
                                     "Profiles accepted.", l), (double)profiles);
    hp_metric_add(hp_metrics_counter(d->svc->metrics, "hotpath_distributor_received_bytes_total",
                                     "Bytes of profiles accepted, as sent.", l), (double)bytes);
}
