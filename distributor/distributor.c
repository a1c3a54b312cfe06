/* The distributor's state: ingester clients, the ring, metrics. */
#include <stdatomic.h>
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

/* The distributor ring, when -distributor.ring.members names one: an RPC
 * server answering probes as this instance, and the members probed. */
static int start_peers(dist_t *d, hp_err_t *err)
{
    const hp_config_t *c = d->cfg;
    if (c->distributor.ring_members == NULL || c->distributor.ring_members[0] == '\0')
        return 0;
    d->instance_id = hp_service_instance_id(c);
    d->self.instance_id = d->instance_id;
    d->self.zone = c->ring.zone ? c->ring.zone : "";
    atomic_store(&d->self.state, HP_MEMBER_ACTIVE);
    char url[320];
    snprintf(url, sizeof(url), "tcp://%s:%lld", c->server.rpc_listen_address, (long long)c->server.rpc_listen_port);
    hp_rpc_server_config_t rc_cfg = {url, 0, 0};
    int rc = hp_rpc_server_new(d->svc->pool, &rc_cfg, &d->rpc, err);
    if (rc == 0) {
        hp_rpc_server_handle(d->rpc, "ring.Probe", hp_members_probe_handler, &d->self);
        rc = hp_rpc_server_start(d->rpc, err);
    }
    hp_members_config_t mc = {c->distributor.ring_members, (size_t)c->ring.num_tokens, c->ring.heartbeat_period_ms,
                              c->ring.heartbeat_timeout_ms, c->ring.dns_refresh_ms, false};
    if (rc == 0)
        rc = hp_members_new(&mc, &d->peers, err);
    if (rc == 0)
        rc = hp_members_start(d->peers, err);
    return rc;
}

int dist_new(hp_service_t *svc, dist_t **out, hp_err_t *err)
{
    dist_t *d = hp_xcalloc(1, sizeof(*d));
    *out = d;
    d->svc = svc;
    d->cfg = &svc->cfg;
    pthread_mutex_init(&d->rate_mu, NULL);
    hp_members_config_t mc = {d->cfg->ring.members, (size_t)d->cfg->ring.num_tokens,
                              d->cfg->ring.heartbeat_period_ms, d->cfg->ring.heartbeat_timeout_ms,
                              d->cfg->ring.dns_refresh_ms, d->cfg->distributor.zone_awareness};
    int rc = hp_members_new(&mc, &d->members, err);
    if (rc == 0)
        rc = hp_members_start(d->members, err);
    if (rc == 0)
        rc = start_peers(d, err);
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
    hp_members_stop(d->peers);
    hp_members_free(d->peers);
    hp_rpc_server_free(d->rpc);
    for (size_t i = 0; i < d->n_buckets; i++)
        free(d->buckets[i].tenant);
    free(d->buckets);
    free(d->instance_id);
    pthread_mutex_destroy(&d->rate_mu);
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

/* ---- ingestion rate ---- */

/* How many distributors share the rate: the healthy members of the
 * distributor ring, counting a member not probed yet as sharing (so a
 * distributor that just started does not allow the whole rate by itself);
 * at least 1, and 1 without a ring. */
static size_t healthy_distributors(dist_t *d)
{
    if (d->peers == NULL)
        return 1;
    hp_ring_view_t *v = hp_members_view(d->peers);
    size_t n = 0;
    for (size_t i = 0; i < hp_ring_view_size(v); i++) {
        hp_member_info_t m;
        hp_ring_view_member(v, i, &m);
        n += m.healthy || m.last_heartbeat_ms == 0;
    }
    hp_ring_view_release(v);
    return n ? n : 1;
}

/* The tenant's bucket, created full (rate_mu held). */
static dist_bucket_t *bucket(dist_t *d, hp_str_t tenant, double burst, int64_t now)
{
    size_t lo = 0, hi = d->n_buckets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hp_str_cmp(hp_str_c(d->buckets[mid].tenant), tenant);
        if (c == 0)
            return &d->buckets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    HP_GROW(d->buckets, d->cap_buckets, d->n_buckets + 1);
    memmove(d->buckets + lo + 1, d->buckets + lo, (d->n_buckets - lo) * sizeof(*d->buckets));
    d->n_buckets++;
    d->buckets[lo] = (dist_bucket_t){hp_xstrndup(tenant.p, tenant.n), burst, 0, now};
    return &d->buckets[lo];
}

#define DIST_SWEEP_MS 10000

/* Drops the buckets idle long enough to be full again: a new bucket starts
 * full, so forgetting them changes no answer, and tenant IDs seen once do
 * not pile up. At most every DIST_SWEEP_MS (rate_mu held). */
static void sweep_buckets(dist_t *d, int64_t now)
{
    if (now - d->swept_ms < DIST_SWEEP_MS)
        return;
    d->swept_ms = now;
    size_t w = 0;
    for (size_t i = 0; i < d->n_buckets; i++) {
        if ((double)(now - d->buckets[i].last_ms) > d->buckets[i].full_ms) {
            free(d->buckets[i].tenant);
            continue;
        }
        d->buckets[w++] = d->buckets[i];
    }
    d->n_buckets = w;
}

int dist_rate_take(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, size_t bytes, hp_err_t *err)
{
    if (lim->ingestion_rate_mb <= 0)
        return 0;
    size_t n = healthy_distributors(d);
    double rate = lim->ingestion_rate_mb * 1e6 / (double)n; /* bytes per second, this distributor's share */
    double burst = HP_MAX(lim->ingestion_burst_size_mb * 1e6, 1.0);
    int64_t now = hp_mono_ms();
    pthread_mutex_lock(&d->rate_mu);
    sweep_buckets(d, now);
    dist_bucket_t *b = bucket(d, tenant, burst, now);
    b->tokens = HP_MIN(burst, b->tokens + rate * (double)(now - b->last_ms) / 1000.0);
    b->last_ms = now;
    b->full_ms = burst / rate * 1000.0;
    bool ok = (double)bytes <= b->tokens;
    if (ok)
        b->tokens -= (double)bytes;
    pthread_mutex_unlock(&d->rate_mu);
    if (ok)
        return 0;
    return hp_err_set(err, HP_ELIMIT,
                      "push rate limit (ingestion_rate_mb: %g MB/s across %zu distributor%s, burst %g MB) exceeded "
                      "while adding %zu bytes; retry later or ask for a higher limit",
                      lim->ingestion_rate_mb, n, n == 1 ? "" : "s", lim->ingestion_burst_size_mb, bytes);
}
