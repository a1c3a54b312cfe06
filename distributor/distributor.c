/* The distributor's state: ingester clients, the ring, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "hotpath/log.h"

/* Ready when every ingester was probed once and enough of them take
 * writes for a quorum. */
static bool dist_ready(void *ctx, hp_buf_t *why)
{
    dist_t *d = ctx;
    if (!hp_members_probed(d->members)) {
        hp_buf_puts(why, "waiting for the first heartbeat round");
        return false;
    }
    hp_ring_view_t *v = hp_members_view(d->members);
    size_t active = 0, n = hp_ring_view_size(v);
    for (size_t i = 0; i < n; i++) {
        hp_member_info_t m, o;
        hp_ring_view_member(v, i, &m);
        bool counted = false; /* one instance may answer at several addresses */
        for (size_t k = 0; k < i && !counted; k++) {
            hp_ring_view_member(v, k, &o);
            counted = o.state == HP_MEMBER_ACTIVE && o.healthy && strcmp(o.instance_id, m.instance_id) == 0;
        }
        active += m.state == HP_MEMBER_ACTIVE && m.healthy && !counted;
    }
    hp_ring_view_release(v);
    size_t rf = (size_t)d->cfg->distributor.replication_factor, quorum = rf / 2 + 1;
    if (active >= quorum)
        return true;
    hp_buf_printf(why, "%zu ingesters take writes, a quorum needs %zu", active, quorum);
    return false;
}

int dist_new(hp_service_t *svc, dist_t **out, hp_err_t *err)
{
    dist_t *d = hp_xcalloc(1, sizeof(*d));
    *out = d;
    d->svc = svc;
    d->cfg = &svc->cfg;
    hp_members_config_t mc = {d->cfg->ring.members, (size_t)d->cfg->ring.num_tokens,
                              d->cfg->ring.heartbeat_period_ms, d->cfg->ring.heartbeat_timeout_ms,
                              d->cfg->ring.dns_refresh_ms, d->cfg->distributor.zone_awareness};
    int rc = hp_members_new(&mc, &d->members, err);
    if (rc == 0)
        rc = hp_members_start(d->members, err);
    if (rc != 0)
        return rc;
    static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    d->push_seconds = hp_metrics_histogram(svc->metrics, "hotpath_distributor_push_duration_seconds",
                                           "Time to accept a push: decode, validate and replicate.",
                                           NULL, buckets, HP_ARRAY_LEN(buckets));
    hp_service_on_ready(svc, dist_ready, d);
    hp_ring_page_route(&d->ring_page, d->members, "ingester ring", svc->http);
    HP_INFO("distributor ready", "replication_factor=%lld zone_awareness=%d",
            (long long)d->cfg->distributor.replication_factor, d->cfg->distributor.zone_awareness);
    return 0;
}

void dist_free(dist_t *d)
{
    if (d == NULL)
        return;
    hp_members_stop(d->members);
    hp_members_free(d->members);
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
