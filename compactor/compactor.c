/* The compactor's lifecycle: object store, RPC server (ring.Probe), the
 * compactor ring, metrics, and the loop that runs a cycle every
 * -compactor.compaction-interval (or at once on POST /compactor/run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "compactor.h"
#include "hotpath/log.h"
#include "hotpath/ring.h"

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

static void new_metrics(cmp_t *c, hp_metrics_t *m)
{
    c->m_runs = hp_metrics_counter(m, "hotpath_compactor_runs_total", "Compaction cycles finished.", NULL);
    c->m_run_failures = hp_metrics_counter(
        m, "hotpath_compactor_runs_failed_total",
        "Compaction cycles in which a step failed for some tenant (retried next cycle).", NULL);
    c->m_compactions = hp_metrics_counter(m, "hotpath_compactor_compactions_total",
                                          "Blocks written by merging or rewriting blocks.", NULL);
    c->m_compaction_failures = hp_metrics_counter(m, "hotpath_compactor_compaction_failures_total",
                                                  "Merges or rewrites that failed.", NULL);
    c->m_blocks_compacted = hp_metrics_counter(m, "hotpath_compactor_blocks_compacted_total",
                                               "Input blocks of merges and rewrites.", NULL);
    c->m_bytes_written = hp_metrics_counter(m, "hotpath_compactor_bytes_written_total",
                                            "Bytes of blocks written (data and meta.json).", NULL);
    c->m_blocks_deleted = hp_metrics_counter(m, "hotpath_compactor_blocks_deleted_total",
                                             "Marked blocks deleted after the deletion delay.", NULL);
    c->m_partial_deleted = hp_metrics_counter(m, "hotpath_compactor_partial_blocks_deleted_total",
                                              "Block directories without meta.json deleted.", NULL);
    c->m_tenants =
        hp_metrics_gauge(m, "hotpath_compactor_tenants_owned", "Tenants this compactor owns.", NULL);
    c->m_last_success = hp_metrics_gauge(m, "hotpath_compactor_last_successful_run_timestamp_seconds",
                                         "When the last cycle without failures ended.", NULL);
    c->m_requests_done = hp_metrics_counter(m, "hotpath_compactor_deletion_requests_done_total",
                                            "Deletion requests carried out.", NULL);
}

static int open_store(cmp_t *c, hp_err_t *err)
{
    const hp_config_t *g = c->cfg;
    hp_objstore_config_t oc;
    memset(&oc, 0, sizeof(oc));
    oc.backend = g->storage.backend;
    oc.filesystem.dir = g->storage.fs_dir;
    oc.s3 = (hp_objstore_s3_config_t){g->storage.s3_endpoint,
                                      g->storage.s3_region,
                                      g->storage.s3_bucket,
                                      g->storage.s3_access_key_id,
                                      g->storage.s3_secret_access_key,
                                      g->storage.s3_path_style,
                                      g->storage.s3_insecure,
                                      0,
                                      0,
                                      0,
                                      0};
    return hp_objstore_new(&oc, &c->store, err);
}

/* The settings the config table only checked: block ranges. */
static int parse_settings(cmp_t *c, hp_err_t *err)
{
    hp_err_t why;
    int n = hp_parse_block_ranges(c->cfg->compactor.block_ranges, c->ranges, CMP_MAX_RANGES, &why);
    if (n < 0)
        return hp_err_set(err, HP_EINVAL, "-compactor.block-ranges: %s", why.msg);
    c->n_ranges = (size_t)n;
    return 0;
}

int64_t cmp_retention_ms(const cmp_t *c, const char *tenant)
{
    hp_limits_config_t l;
    hp_overrides_get(c->svc->overrides, hp_str_c(tenant), &l);
    return l.compactor_blocks_retention_period_ms;
}

static int new_ring(cmp_t *c, hp_err_t *err)
{
    const hp_config_t *g = c->cfg;
    if (g->compactor.ring_members == NULL || g->compactor.ring_members[0] == '\0')
        return 0;
    hp_members_config_t mc = {g->compactor.ring_members,   (size_t)g->ring.num_tokens,
                              g->ring.heartbeat_period_ms, g->ring.heartbeat_timeout_ms,
                              g->ring.dns_refresh_ms,      false};
    int rc = hp_members_new(&mc, &c->members, err);
    if (rc == 0)
        hp_ring_page_route(&c->ring_page, c->members, "compactor ring", c->svc->http);
    return rc;
}

/* On SIGTERM: the loop stops between steps (a step cut short by the
 * exit is safe: see compactor.h). */
static void on_stop(void *ctx)
{
    cmp_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int cmp_new(hp_service_t *svc, cmp_t **out, hp_err_t *err)
{
    cmp_t *c = hp_xcalloc(1, sizeof(*c));
    *out = c;
    c->svc = svc;
    c->cfg = &svc->cfg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->instance_id = instance_id(c->cfg);
    c->self.instance_id = c->instance_id;
    c->self.zone = c->cfg->ring.zone ? c->cfg->ring.zone : "";
    atomic_store(&c->self.state, HP_MEMBER_ACTIVE);
    new_metrics(c, svc->metrics);
    int rc = parse_settings(c, err);
    if (rc == 0)
        rc = open_store(c, err);
    char url[320];
    snprintf(url, sizeof(url), "tcp://%s:%lld", c->cfg->server.rpc_listen_address,
             (long long)c->cfg->server.rpc_listen_port);
    hp_rpc_server_config_t rc_cfg = {url, 0, 0};
    if (rc == 0)
        rc = hp_rpc_server_new(svc->pool, &rc_cfg, &c->rpc, err);
    if (rc == 0)
        rc = new_ring(c, err);
    if (rc == 0) {
        cmp_register_http(c);
        hp_service_on_stop(svc, on_stop, c);
    }
    return rc;
}

/* ---- ownership ---- */

bool cmp_owns(cmp_t *c, const char *tenant)
{
    if (c->members == NULL)
        return true;
    if (!hp_members_probed(c->members))
        return false; /* not knowing the ring yet, do nothing rather than twice */
    hp_ring_view_t *v = hp_members_view(c->members);
    /* XXH3, not FNV-1: tenant names differ in their last bytes ("team-a",
     * "team-b"), which FNV-1 leaves in the low bits, on one owner */
    uint64_t h = XXH3_64bits(tenant, strlen(tenant));
    uint32_t key = (uint32_t)(h ^ (h >> 32));
    size_t idx;
    bool mine = false;
    if (hp_ring_view_write_set(v, key, 1, &idx) == 1) {
        hp_member_info_t m;
        hp_ring_view_member(v, idx, &m);
        mine = strcmp(m.instance_id, c->instance_id) == 0;
    }
    hp_ring_view_release(v);
    return mine;
}

/* ---- the loop ---- */

typedef struct names {
    char **v;
    size_t n, cap;
} names_t;

static int add_name(void *ctx, const char *tenant)
{
    names_t *ns = ctx;
    HP_GROW(ns->v, ns->cap, ns->n + 1);
    ns->v[ns->n++] = hp_xstrdup(tenant);
    return 0;
}

bool cmp_stopping(cmp_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool s = c->stop;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* The state kept for tenant name, created on first use. */
static cmp_tenant_t *tenant_state(cmp_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_tenants; i++)
        if (strcmp(c->tenants[i]->name, name) == 0)
            return c->tenants[i];
    cmp_tenant_t *t = hp_xcalloc(1, sizeof(*t));
    t->name = hp_xstrdup(name);
    hp_bucket_index_init(&t->index);
    hp_u64map_init(&t->clean, 64);
    c->tenants = hp_xrealloc(c->tenants, (c->n_tenants + 1) * sizeof(*c->tenants));
    c->tenants[c->n_tenants++] = t;
    return t;
}

/* Forgets tenants this compactor no longer owns (or that are gone). */
static void drop_unseen(cmp_t *c)
{
    size_t o = 0;
    for (size_t i = 0; i < c->n_tenants; i++) {
        if (c->tenants[i]->seen)
            c->tenants[o++] = c->tenants[i];
        else
            cmp_tenant_free(c->tenants[i]);
    }
    c->n_tenants = o;
}

/* One cycle over every owned tenant. */
static void run_cycle(cmp_t *c)
{
    int64_t now = hp_now_ms();
    names_t ns = {NULL, 0, 0};
    hp_err_t err;
    bool ok = true;
    size_t owned = 0;
    hp_overrides_reload(c->svc->overrides); /* a cycle sees the file as it is now */
    if (hp_bucket_tenants(c->store, add_name, &ns, &err) != 0) {
        char q[600];
        HP_ERROR("cannot list the tenants in the object store", "err=%s", hp_log_q(q, sizeof(q), err.msg));
        ok = false;
    }
    for (size_t i = 0; i < c->n_tenants; i++)
        c->tenants[i]->seen = false;
    for (size_t i = 0; i < ns.n && !cmp_stopping(c); i++) {
        if (!cmp_owns(c, ns.v[i]))
            continue;
        owned++;
        cmp_tenant_t *t = tenant_state(c, ns.v[i]);
        t->seen = true;
        ok &= cmp_tenant_cycle(c, t, now);
    }
    drop_unseen(c);
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
    hp_metric_set(c->m_tenants, (double)owned);
    hp_metric_add(c->m_runs, 1);
    if (!ok)
        hp_metric_add(c->m_run_failures, 1);
    else
        hp_metric_set(c->m_last_success, (double)hp_now_ms() / 1000.0);
    HP_INFO("compaction cycle done", "tenants_owned=%zu ok=%d duration_ms=%lld", owned, ok,
            (long long)(hp_now_ms() - now));
}

/* Waits for the interval, a trigger or stop; false on stop. */
static bool wait_next(cmp_t *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t deadline = hp_now_ms() + c->cfg->compactor.compaction_interval_ms;
    while (!c->stop && !c->run_now && hp_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + HP_MIN(deadline - hp_now_ms(), 1000) * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    bool go = !c->stop;
    c->run_now = false;
    pthread_mutex_unlock(&c->mu);
    return go;
}

static void *loop_main(void *arg)
{
    cmp_t *c = arg;
    if (c->members)
        hp_members_probe_now(c->members); /* know the ring before the first cycle */
    do {
        run_cycle(c);
        pthread_mutex_lock(&c->mu);
        c->cycles++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    } while (wait_next(c));
    return NULL;
}

uint64_t cmp_trigger(cmp_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->run_now = true;
    uint64_t n = c->cycles;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return n;
}

int cmp_start(cmp_t *c, hp_err_t *err)
{
    hp_rpc_server_handle(c->rpc, "ring.Probe", hp_members_probe_handler, &c->self);
    int rc = hp_rpc_server_start(c->rpc, err);
    if (rc == 0 && c->members)
        rc = hp_members_start(c->members, err);
    if (rc != 0)
        return rc;
    if (pthread_create(&c->thread, NULL, loop_main, c) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the compaction thread");
    c->started = true;
    HP_INFO("compactor ready", "instance=%s ring=%s interval_ms=%lld ranges=%s", c->instance_id,
            c->members ? c->cfg->compactor.ring_members : "(this compactor owns every tenant)",
            (long long)c->cfg->compactor.compaction_interval_ms, c->cfg->compactor.block_ranges);
    return 0;
}

void cmp_stop(cmp_t *c)
{
    if (c == NULL)
        return;
    on_stop(c);
    if (c->started) {
        pthread_join(c->thread, NULL);
        c->started = false;
    }
    atomic_store(&c->self.state, HP_MEMBER_LEAVING);
    hp_members_stop(c->members);
    if (c->rpc)
        hp_rpc_server_stop(c->rpc);
}

void cmp_free(cmp_t *c)
{
    if (c == NULL)
        return;
    hp_rpc_server_free(c->rpc);
    hp_members_free(c->members);
    for (size_t i = 0; i < c->n_tenants; i++)
        cmp_tenant_free(c->tenants[i]);
    free(c->tenants);
    hp_objstore_free(c->store);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->instance_id);
    free(c);
}
