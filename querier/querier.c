/* The querier's state, fan-out to ingesters, and result merging. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/callsite.h"
#include "hotpath/hashmap.h"
#include "hotpath/limits.h"
#include "hotpath/log.h"
#include "hotpath/pprof.h"
#include "hotpath/ring.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "querier.h"

/* The most samples an ingester's merged pprof may hold (it is trusted; an
 * RPC message is at most 256 MiB anyway). */
#define QRY_INTERNAL_MAX_SAMPLES (1u << 26)

/* Whether enough members of a ring serve reads for a query to be
 * complete; says why not in why. */
static bool ring_ready(hp_members_t *m, size_t max_missing, const char *what, hp_buf_t *why)
{
    if (!hp_members_probed(m)) {
        hp_buf_printf(why, "waiting for the first heartbeat round of the %s", what);
        return false;
    }
    hp_ring_view_t *v = hp_members_view(m);
    size_t members = hp_ring_view_size(v);
    size_t *set = hp_xmalloc((members + 1) * sizeof(size_t));
    size_t n = hp_ring_view_read_set(v, set);
    free(set);
    hp_ring_view_release(v);
    if (n > 0 && members - n <= max_missing)
        return true;
    hp_buf_printf(why, "%zu of %zu %s serve reads", n, members, what);
    return false;
}

/* Ready once every ingester and store-gateway was probed and enough of
 * each serve reads for a query to be complete (RF/2 ingesters, RF-1
 * store-gateways missing at most). */
static bool qry_ready(void *ctx, hp_buf_t *why)
{
    qry_t *q = ctx;
    const hp_config_t *c = q->cfg;
    return ring_ready(q->members, (size_t)HP_MAX(c->distributor.replication_factor, 1) / 2, "ingesters",
                      why) &&
           (q->gateways == NULL ||
            ring_ready(q->gateways, (size_t)HP_MAX(c->store_gateway.replication_factor, 1) - 1,
                       "store-gateways", why));
}

int qry_new(hp_service_t *svc, qry_t **out, hp_err_t *err)
{
    qry_t *q = hp_xcalloc(1, sizeof(*q));
    *out = q;
    q->svc = svc;
    q->cfg = &svc->cfg;
    hp_arena_init(&q->arena, 4096);
    hp_members_config_t mc = {q->cfg->ring.members,
                              (size_t)q->cfg->ring.num_tokens,
                              q->cfg->ring.heartbeat_period_ms,
                              q->cfg->ring.heartbeat_timeout_ms,
                              q->cfg->ring.dns_refresh_ms,
                              q->cfg->distributor.zone_awareness};
    int rc = hp_members_new(&mc, &q->members, err);
    if (rc == 0)
        rc = hp_members_start(q->members, err);
    const char *gw = q->cfg->store_gateway.ring_members;
    if (rc == 0 && gw && *gw) {
        hp_members_config_t gc = {gw,
                                  (size_t)q->cfg->ring.num_tokens,
                                  q->cfg->ring.heartbeat_period_ms,
                                  q->cfg->ring.heartbeat_timeout_ms,
                                  q->cfg->ring.dns_refresh_ms,
                                  false,
                                  NULL,
                                  NULL};
        rc = hp_members_new(&gc, &q->gateways, err);
        if (rc == 0)
            rc = hp_members_start(q->gateways, err);
    }
    if (rc != 0)
        return rc;
    static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    q->m_query_seconds =
        hp_metrics_histogram(svc->metrics, "hotpath_querier_request_duration_seconds",
                             "Time to answer a query.", NULL, buckets, HP_ARRAY_LEN(buckets));
    q->m_replans = hp_metrics_counter(svc->metrics, "hotpath_querier_replans_total",
                                      "Selections planned again because data moved between their two "
                                      "phases (a head flushed, a block handed over).",
                                      NULL);
    hp_service_on_ready(svc, qry_ready, q);
    hp_ring_page_route(&q->ring_page, q->members, "ingester ring", svc->http);
    return 0;
}

void qry_free(qry_t *q)
{
    if (q == NULL)
        return;
    hp_members_stop(q->members);
    hp_members_free(q->members);
    hp_members_stop(q->gateways);
    hp_members_free(q->gateways);
    hp_arena_fini(&q->arena);
    free(q);
}

void qry_targets_free(hp_rpc_target_t *targets, size_t n)
{
    for (size_t i = 0; targets && i < n; i++)
        hp_buf_fini(&targets[i].resp);
    free(targets);
}

/* True for an ingester's answer that blames the query (bad, unsupported,
 * or asking for more than a reply may carry): another replica would say
 * the same, so the caller hears it as it is. */
static bool query_error(int rc)
{
    return rc == HP_EINVAL || rc == HP_EUNSUPPORTED || rc == HP_ETOOLARGE;
}

/* A duration for an API that takes int milliseconds, clamped. */
static int clamp_ms(int64_t ms)
{
    return ms > INT_MAX ? INT_MAX : ms < 0 ? 0 : (int)ms;
}

/* One kind of process a query asks: ingesters or store-gateways. */
typedef struct group {
    hp_members_t *members;
    hp_ring_view_t *v;
    size_t *set, n_set; /* the members that serve reads */
    size_t max_missing;
    const char *what;
} group_t;

static void group_open(group_t *g, hp_members_t *m, size_t max_missing, const char *what)
{
    g->members = m;
    g->v = hp_members_view(m);
    g->set = hp_xmalloc((hp_ring_view_size(g->v) + 1) * sizeof(size_t));
    g->n_set = hp_ring_view_read_set(g->v, g->set);
    g->max_missing = max_missing;
    g->what = what;
}

static void groups_close(group_t *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(g[i].set);
        hp_ring_view_release(g[i].v);
    }
}

/* The groups a query over a range starting at start_ms asks:
 * ingesters always — besides the last -querier.query-store-after they hold
 * whatever was pushed late or backfilled and not yet flushed, and blocks
 * the store-gateways may not see yet — and store-gateways when the range
 * reaches past -store-gateway.ignore-blocks-within (they serve nothing
 * newer). What both hold counts once: deduplication. Ingesters may miss
 * RF/2 of their number (a write needs RF/2+1 of RF); store-gateways RF-1
 * (each block has RF owners). */
static size_t plan_groups(qry_t *q, int64_t start_ms, group_t *g)
{
    size_t n = 0;
    group_open(&g[n++], q->members, (size_t)HP_MAX(q->cfg->distributor.replication_factor, 1) / 2,
               "ingesters");
    if (q->gateways && start_ms < hp_now_ms() - q->cfg->store_gateway.ignore_blocks_within_ms)
        group_open(&g[n++], q->gateways, (size_t)HP_MAX(q->cfg->store_gateway.replication_factor, 1) - 1,
                   "store-gateways");
    return n;
}

/* After a fan-out: fails on a bad query (the caller's error, which any
 * replica would repeat) or when a group misses more members than it may;
 * else keeps the targets that answered, compacting the array. */
static int keep_answers(const char *method, const group_t *g, size_t n_groups, hp_rpc_target_t *t, size_t *n,
                        hp_err_t *err)
{
    for (size_t i = 0; i < *n; i++)
        if (query_error(t[i].rc))
            return hp_err_set(err, t[i].rc, "%s", t[i].err.msg);
    size_t base = 0;
    for (size_t k = 0; k < n_groups; k++) {
        size_t ok = 0, members = hp_ring_view_size(g[k].v);
        hp_err_t first = {HP_OK, 0, ""};
        for (size_t i = base; i < base + g[k].n_set; i++) {
            if (t[i].rc == 0)
                ok++;
            else if (first.code == HP_OK)
                first = t[i].err;
        }
        base += g[k].n_set;
        if ((ok == 0 && members > 0) || members - ok > g[k].max_missing)
            return hp_err_set(err, HP_EUNAVAIL, "%s: %zu of %zu %s answered, at most %zu may be missing%s%s",
                              method, ok, members, g[k].what, g[k].max_missing, first.code ? ": " : "",
                              first.msg);
    }
    size_t ok = 0;
    for (size_t i = 0; i < *n; i++) {
        if (t[i].rc != 0)
            hp_buf_fini(&t[i].resp);
        else
            t[ok++] = t[i];
    }
    *n = ok;
    return 0;
}

/* Calls every readable member of the groups with the payload. */
static int fanout(qry_t *q, const group_t *g, size_t n_groups, const char *method, hp_str_t tenant,
                  const void *payload, size_t len, hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    size_t total = 0;
    for (size_t k = 0; k < n_groups; k++)
        total += g[k].n_set;
    hp_rpc_target_t *t = hp_xcalloc(total + 1, sizeof(*t));
    for (size_t k = 0, i = 0; k < n_groups; k++)
        for (size_t m = 0; m < g[k].n_set; m++)
            t[i++].client = hp_ring_view_client(g[k].v, g[k].set[m]);
    hp_rpc_call_all(t, total, method, tenant, payload, len, clamp_ms(q->cfg->querier.query_timeout_ms));
    for (size_t k = 0, i = 0; k < n_groups; k++)
        for (size_t m = 0; m < g[k].n_set; m++, i++)
            if (t[i].rc == 0 || t[i].rc == HP_EUNAVAIL || t[i].rc == HP_ETIMEDOUT)
                hp_members_report(g[k].members, g[k].v, g[k].set[m], t[i].rc == 0);
    *n = total;
    int rc = keep_answers(method, g, n_groups, t, n, err);
    if (rc != 0) {
        qry_targets_free(t, *n);
        return rc;
    }
    *targets = t;
    return 0;
}

int qry_fanout(qry_t *q, const char *method, hp_str_t tenant, int64_t start_ms, const void *payload,
               size_t len, hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    group_t g[2];
    size_t n_groups = plan_groups(q, start_ms, g);
    int rc = fanout(q, g, n_groups, method, tenant, payload, len, targets, n, err);
    groups_close(g, n_groups);
    return rc;
}

int qry_fanout_kind(qry_t *q, bool gateways, const char *method, hp_str_t tenant, int64_t start_ms,
                    const void *payload, size_t len, hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    group_t g[2];
    size_t n_groups = plan_groups(q, start_ms, g), k = gateways ? 1 : 0;
    int rc = 0;
    *targets = NULL;
    *n = 0;
    if (k < n_groups)
        rc = fanout(q, &g[k], 1, method, tenant, payload, len, targets, n, err);
    groups_close(g, n_groups);
    return rc;
}

int qry_check_select(const qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_err_t *err)
{
    hp_profile_type_t pt;
    if (s->type_id == NULL || *s->type_id == '\0')
        return hp_err_set(err, HP_EINVAL, "profile_typeID is required");
    int rc = hp_profile_type_parse(hp_str_c(s->type_id), &pt, err);
    if (rc != 0)
        return rc;
    hp_selector_t sel;
    rc = hp_selector_parse(hp_str_c(s->selector ? s->selector : ""), &sel, err);
    if (rc != 0)
        return rc;
    hp_selector_fini(&sel);
    if ((rc = hp_callsite_check(s->stack, err)) != 0)
        return rc;
    return qry_check_range(q, tenant, s->start_ms, s->end_ms, true, err);
}

void qry_limits(const qry_t *q, hp_str_t tenant, hp_limits_config_t *out)
{
    if (q->svc && q->svc->overrides)
        hp_overrides_get(q->svc->overrides, tenant, out);
    else
        *out = q->cfg->limits;
}

int qry_check_range(const qry_t *q, hp_str_t tenant, int64_t start_ms, int64_t end_ms, bool end_required,
                    hp_err_t *err)
{
    if (start_ms < 0 || start_ms > QRY_MAX_TIME_MS || end_ms < 0 || end_ms > QRY_MAX_TIME_MS)
        return hp_err_set(err, HP_EINVAL,
                          "start (%lld) and end (%lld) must be unix milliseconds between 0 and %lld",
                          (long long)start_ms, (long long)end_ms, (long long)QRY_MAX_TIME_MS);
    hp_limits_config_t lim;
    qry_limits(q, tenant, &lim);
    int64_t max_len = lim.max_query_length_ms;
    if (end_ms == 0 && end_required)
        return hp_err_set(err, HP_EINVAL, "end is required (unix milliseconds)");
    if (end_ms == 0 && max_len > 0) /* no end would be all time: longer than any limit */
        return hp_err_set(err, HP_EINVAL,
                          "end is required: the query time range is limited (max_query_length: %llds)",
                          (long long)(max_len / 1000));
    if (end_ms == 0)
        return 0; /* no end (0/0 included): all time, allowed when no limit applies */
    if (start_ms > end_ms)
        return hp_err_set(err, HP_EINVAL, "start (%lld) is after end (%lld)", (long long)start_ms,
                          (long long)end_ms);
    if (max_len > 0 && end_ms - start_ms > max_len)
        return hp_err_set(
            err, HP_EINVAL,
            "the query time range exceeds the limit (max_query_length, actual: %llds, limit: %llds)",
            (long long)((end_ms - start_ms) / 1000), (long long)(max_len / 1000));
    return 0;
}

/* The second-phase request of SelectMergeStacktraces/Profile: the
 * SelectRequest itself. */
static void pack_select(void *ctx, const Hotpath__V1__SelectRequest *sel, hp_buf_t *out)
{
    (void)ctx;
    size_t n = hotpath__v1__select_request__get_packed_size(sel);
    hp_buf_reserve(out, n + 1);
    out->len += hotpath__v1__select_request__pack(sel, out->data + out->len);
}

int qry_merge_tree(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_tree_t **out, hp_err_t *err)
{
    return qry_merge_tree_by(q, tenant, s, pack_select, NULL, out, err);
}

int qry_merge_tree_by(qry_t *q, hp_str_t tenant, const qry_select_t *s, qry_encode_fn encode, void *ctx,
                      hp_tree_t **out, hp_err_t *err)
{
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_select_fanout(q, "query.SelectMergeStacktraces", tenant, s, encode, ctx, &t, &n, err);
    hp_tree_t *tree = hp_tree_new();
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = hp_tree_decode_merge(tree, t[i].resp.data, t[i].resp.len, 0, err);
    qry_targets_free(t, n);
    if (rc != 0) {
        hp_tree_free(tree);
        return rc;
    }
    *out = tree;
    return 0;
}

/* Ingesters' merged profiles are trusted and may be far larger than a
 * client's: the public defaults (4M samples) would refuse big merges. */
static const hp_pprof_limits_t merge_limits = {QRY_INTERNAL_MAX_SAMPLES, UINT32_MAX, UINT32_MAX};

/* Appends to out the pprof in[0..n) with its call tree cut to max_nodes
 * nodes (hp_pprof_builder_add_truncated). */
static int truncate_pprof(const void *in, size_t n, int64_t max_nodes, hp_buf_t *out, hp_err_t *err)
{
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    int rc = hp_pprof_decode(&p, in, n, &merge_limits, err);
    if (rc == 0) {
        hp_pprof_builder_t *b = hp_pprof_builder_new();
        hp_pprof_builder_add_truncated(b, &p, max_nodes);
        hp_pprof_builder_encode(b, out);
        hp_pprof_builder_free(b);
    }
    hp_pprof_fini(&p);
    return rc;
}

int qry_merge_pprof(qry_t *q, hp_str_t tenant, const qry_select_t *s, int64_t max_nodes, hp_buf_t *out,
                    hp_err_t *err)
{
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_select_fanout(q, "query.SelectMergeProfile", tenant, s, pack_select, NULL, &t, &n, err);
    if (rc == 0 && n == 1) {
        /* one ingester: its profile is already the merge */
        if (max_nodes > 0)
            rc = truncate_pprof(t[0].resp.data, t[0].resp.len, max_nodes, out, err);
        else
            hp_buf_append(out, t[0].resp.data, t[0].resp.len);
        qry_targets_free(t, n);
        return rc;
    }
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    bool typed = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        hp_pprof_t p;
        memset(&p, 0, sizeof(p));
        rc = hp_pprof_decode(&p, t[i].resp.data, t[i].resp.len, &merge_limits, err);
        if (rc == 0 && !typed && p.n_sample_types) {
            /* every ingester answers with the same types; take the first */
            hp_pprof_builder_sample_type(b, hp_pprof_str(&p, p.sample_types[0].type),
                                         hp_pprof_str(&p, p.sample_types[0].unit));
            hp_pprof_builder_period(b, hp_pprof_str(&p, p.period_type.type),
                                    hp_pprof_str(&p, p.period_type.unit), p.period);
            hp_pprof_builder_times(b, p.time_nanos, p.duration_nanos);
            typed = true;
        }
        if (rc == 0)
            hp_pprof_builder_add_profile(b, &p, NULL, 0);
        hp_pprof_fini(&p);
    }
    qry_targets_free(t, n);
    hp_buf_t merged = HP_BUF_INIT;
    if (rc == 0)
        hp_pprof_builder_encode(b, max_nodes > 0 ? &merged : out);
    if (rc == 0 && max_nodes > 0) /* the cut is decided on the whole merge, so it is exact */
        rc = truncate_pprof(merged.data, merged.len, max_nodes, out, err);
    hp_buf_fini(&merged);
    hp_pprof_builder_free(b);
    return rc;
}

int64_t qry_max_nodes(const qry_t *q, hp_str_t tenant, int64_t requested)
{
    hp_limits_config_t lim;
    qry_limits(q, tenant, &lim);
    int64_t max = lim.max_flamegraph_nodes_max;
    int64_t n = requested > 0 ? requested : lim.max_flamegraph_nodes_default;
    return max > 0 && n > max ? max : n;
}

/* ---- replica deduplication (two phases) ---- */

/* How many ingesters hold a key, and how many of them were passed so far. */
typedef struct holder {
    uint32_t holders;
    uint32_t seen;
} holder_t;

/* Key table: the first 8 bytes of a key (a 128-bit hash) index it; a
 * clash with a different key moves to the next slot key. */
typedef struct keytab {
    hp_u64map_t map;     /* first 8 bytes (+ probe) → entry index */
    const uint8_t **key; /* entry → its 16 bytes (borrowed from a reply) */
    holder_t *h;
    size_t n, cap;
} keytab_t;

static size_t keytab_find(keytab_t *kt, const uint8_t *key, bool add)
{
    uint64_t k, idx;
    memcpy(&k, key, 8);
    while (hp_u64map_get(&kt->map, k, &idx)) {
        if (memcmp(kt->key[idx], key, 16) == 0)
            return idx;
        k++;
    }
    if (!add)
        return SIZE_MAX;
    if (kt->n == kt->cap) {
        kt->cap = kt->cap ? kt->cap * 2 : 1024;
        kt->key = hp_xrealloc(kt->key, kt->cap * sizeof(*kt->key));
        kt->h = hp_xrealloc(kt->h, kt->cap * sizeof(*kt->h));
    }
    kt->key[kt->n] = key;
    kt->h[kt->n] = (holder_t){0, 0};
    hp_u64map_put(&kt->map, k, kt->n);
    return kt->n++;
}

/* One keep mask per ingester: each key is kept by exactly one of its
 * holders, chosen by the key's last byte so the work spreads evenly. */
static void plan_keep(Hotpath__V1__SelectKeysResponse **r, size_t n, hp_buf_t *keep)
{
    keytab_t kt;
    memset(&kt, 0, sizeof(kt));
    hp_u64map_init(&kt.map, 1024);
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < r[i]->keys.len / 16; p++) {
            size_t e = keytab_find(&kt, r[i]->keys.data + p * 16, true); /* may grow kt.h */
            kt.h[e].holders++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t nk = r[i]->keys.len / 16;
        hp_buf_reserve(&keep[i], (nk + 7) / 8 + 1);
        memset(keep[i].data, 0, (nk + 7) / 8 + 1);
        keep[i].len = (nk + 7) / 8;
        for (size_t p = 0; p < nk; p++) {
            const uint8_t *key = r[i]->keys.data + p * 16;
            holder_t *h = &kt.h[keytab_find(&kt, key, false)];
            if (h->seen++ == key[15] % h->holders)
                keep[i].data[p / 8] |= (uint8_t)(1u << (p % 8));
        }
    }
    hp_u64map_fini(&kt.map);
    free(kt.key);
    free(kt.h);
}

/* Calls method on exactly these clients, each with its own payload; every
 * one must answer (the second phase cannot lose an ingester it counted on). */
static int call_each(qry_t *q, hp_rpc_client_t **clients, size_t n, const char *method, hp_str_t tenant,
                     hp_buf_t *payloads, hp_rpc_target_t **targets, hp_err_t *err)
{
    hp_rpc_target_t *t = hp_xcalloc(n + 1, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        t[i].client = clients[i];
        t[i].payload = payloads[i].data ? payloads[i].data : (const void *)"";
        t[i].payload_len = payloads[i].len;
    }
    size_t ok = hp_rpc_call_all(t, n, method, tenant, NULL, 0, clamp_ms(q->cfg->querier.query_timeout_ms));
    for (size_t i = 0; ok < n && i < n; i++) {
        if (t[i].rc != 0) {
            int code = query_error(t[i].rc) || t[i].rc == HP_ESTALE ? t[i].rc : HP_EUNAVAIL;
            hp_err_set(err, code, "%s: ingester %s: %s", method, hp_rpc_client_url(t[i].client),
                       t[i].err.msg);
            qry_targets_free(t, n);
            return code;
        }
    }
    *targets = t;
    return 0;
}

/* The first phase: every readable ingester's keys for the selection. */
static int select_keys(qry_t *q, hp_str_t tenant, const Hotpath__V1__SelectRequest *sel, hp_rpc_target_t **t,
                       size_t *n, Hotpath__V1__SelectKeysResponse ***keys, hp_err_t *err)
{
    hp_buf_t body = HP_BUF_INIT;
    hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(sel) + 1);
    body.len = hotpath__v1__select_request__pack(sel, body.data);
    int rc = qry_fanout(q, "query.SelectKeys", tenant, sel->start, body.data, body.len, t, n, err);
    hp_buf_fini(&body);
    if (rc != 0)
        return rc;
    *keys = hp_xcalloc(*n + 1, sizeof(**keys));
    for (size_t i = 0; i < *n && rc == 0; i++) {
        (*keys)[i] = hotpath__v1__select_keys_response__unpack(NULL, (*t)[i].resp.len, (*t)[i].resp.data);
        if ((*keys)[i] == NULL || (*keys)[i]->keys.len % 16 != 0)
            rc = hp_err_set(err, HP_EUNAVAIL, "SelectKeys: malformed reply from %s",
                            hp_rpc_client_url((*t)[i].client));
    }
    return rc;
}

void qry_select_request(const qry_select_t *s, Hotpath__V1__SelectRequest *sel)
{
    hotpath__v1__select_request__init(sel);
    sel->profile_type = (char *)s->type_id;
    sel->label_selector = (char *)(s->selector ? s->selector : "");
    sel->profile_id.data = (uint8_t *)s->profile_id;
    sel->profile_id.len = s->profile_id ? 16 : 0;
    sel->start = s->start_ms;
    sel->end = s->end_ms;
}

/* One interval's two phases: keys, then method with a keep mask each. */
static int select_fanout_try(qry_t *q, const char *method, hp_str_t tenant, const qry_select_t *s,
                             qry_encode_fn encode, void *ctx, hp_rpc_target_t **targets, size_t *n,
                             hp_err_t *err)
{
    Hotpath__V1__SelectRequest sel;
    qry_select_request(s, &sel);
    hp_rpc_target_t *t1 = NULL;
    size_t n1 = 0;
    Hotpath__V1__SelectKeysResponse **keys = NULL;
    int rc = select_keys(q, tenant, &sel, &t1, &n1, &keys, err);
    hp_buf_t *keep = hp_xcalloc(n1 + 1, sizeof(hp_buf_t)), *payloads = hp_xcalloc(n1 + 1, sizeof(hp_buf_t));
    hp_rpc_client_t **clients = hp_xcalloc(n1 + 1, sizeof(*clients));
    *n = 0;
    if (rc == 0) {
        plan_keep(keys, n1, keep);
        sel.stack_trace_selector = (Types__V1__StackTraceSelector *)s->stack; /* second phase only */
        for (size_t i = 0; i < n1; i++) {
            sel.session = keys[i]->session;
            sel.keep.data = keep[i].data;
            sel.keep.len = keep[i].len;
            encode(ctx, &sel, &payloads[i]);
            clients[i] = t1[i].client;
        }
        rc = call_each(q, clients, n1, method, tenant, payloads, targets, err);
        *n = rc == 0 ? n1 : 0;
    }
    for (size_t i = 0; i < n1; i++) {
        if (keys && keys[i])
            hotpath__v1__select_keys_response__free_unpacked(keys[i], NULL);
        hp_buf_fini(&keep[i]);
        hp_buf_fini(&payloads[i]);
    }
    free(keys);
    free(keep);
    free(payloads);
    free(clients);
    qry_targets_free(t1, n1);
    return rc;
}

#define QRY_STALE_TRIES 4 /* runs of both phases before a moving target is given up on */

/* select_fanout_try, run again while a process reports that what the first
 * phase counted on has moved (HP_ESTALE: a head was flushed into a block, a
 * block handed over, a session expired between the phases). Each try plans
 * afresh, so the answer is still exact. */
static int select_fanout_one(qry_t *q, const char *method, hp_str_t tenant, const qry_select_t *s,
                             qry_encode_fn encode, void *ctx, hp_rpc_target_t **targets, size_t *n,
                             hp_err_t *err)
{
    int rc = HP_ESTALE;
    for (int i = 0; i < QRY_STALE_TRIES && rc == HP_ESTALE; i++) {
        if (i > 0) {
            HP_DEBUG("querier: data moved between the phases; planning again", "method=%s try=%d err=%s",
                     method, i + 1, err->msg);
            hp_err_clear(err);
            hp_metric_add(q->m_replans, 1);
        }
        rc = select_fanout_try(q, method, tenant, s, encode, ctx, targets, n, err);
    }
    return rc;
}

/* ---- splitting long ranges ---- */

/* One interval of a split query, run as a pool job. */
typedef struct split {
    qry_t *q;
    const char *method;
    hp_str_t tenant;
    qry_select_t s;
    qry_encode_fn encode;
    void *ctx;
    hp_rpc_target_t *t;
    size_t n;
    int rc;
    hp_err_t err;
} split_t;

static void split_job(void *arg)
{
    split_t *x = arg;
    hp_err_clear(&x->err);
    x->rc = select_fanout_one(x->q, x->method, x->tenant, &x->s, x->encode, x->ctx, &x->t, &x->n, &x->err);
}

#define QRY_MAX_SPLITS 1000 /* intervals grow beyond this many: a bound on work per query */

static int64_t round_up(int64_t v, int64_t m)
{
    return m > 0 ? (v + m - 1) / m * m : v;
}

/* The intervals of [start, end] (inclusive ms): -querier.split-queries-by-
 * interval long, rounded up to a multiple of s->align_ms so each starts on
 * the caller's grid, the last one shorter. Interval k ends 1 ms before k+1
 * starts, so each profile falls in exactly one. Returns the count (1: no
 * split); *out is malloc'd. */
static size_t split_ranges(const qry_t *q, const qry_select_t *s, qry_select_t **out)
{
    int64_t len = round_up(q->cfg->querier.split_interval_ms, s->align_ms);
    size_t n = 1;
    if (len > 0 && s->end_ms > s->start_ms) {
        int64_t span = s->end_ms - s->start_ms + 1;
        if (span / len >= QRY_MAX_SPLITS)
            len = round_up(span / QRY_MAX_SPLITS + 1, s->align_ms);
        n = (size_t)((span + len - 1) / len);
    }
    *out = hp_xmalloc(n * sizeof(qry_select_t));
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = *s;
        if (n > 1) {
            (*out)[i].start_ms = s->start_ms + (int64_t)i * len;
            (*out)[i].end_ms = HP_MIN((*out)[i].start_ms + len - 1, s->end_ms);
        }
    }
    return n;
}

/* Refuses a selection that would read more than -querier.max-query-bytes:
 * every process estimates from its indexes (query.Estimate), before any
 * sample is read. */
int qry_check_bytes(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_err_t *err)
{
    int64_t limit = q->cfg->querier.max_query_bytes;
    if (limit <= 0)
        return 0;
    Hotpath__V1__SelectRequest sel;
    qry_select_request(s, &sel);
    hp_buf_t body = HP_BUF_INIT;
    hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(&sel) + 1);
    body.len = hotpath__v1__select_request__pack(&sel, body.data);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_fanout(q, "query.Estimate", tenant, s->start_ms, body.data, body.len, &t, &n, err);
    hp_buf_fini(&body);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        Hotpath__V1__EstimateResponse *r =
            hotpath__v1__estimate_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (r == NULL)
            rc = hp_err_set(err, HP_EUNAVAIL, "Estimate: malformed reply from %s",
                            hp_rpc_client_url(t[i].client));
        else
            bytes += r->bytes;
        if (r)
            hotpath__v1__estimate_response__free_unpacked(r, NULL);
    }
    qry_targets_free(t, n);
    if (rc == 0 && bytes > (uint64_t)limit)
        rc = hp_err_set(
            err, HP_EINVAL,
            "the query would read %llu bytes of samples, more than the limit (querier.max-query-bytes: "
            "%lld); narrow the time range or the label selector",
            (unsigned long long)bytes, (long long)limit);
    return rc;
}

int qry_select_fanout(qry_t *q, const char *method, hp_str_t tenant, const qry_select_t *s,
                      qry_encode_fn encode, void *ctx, hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    *n = 0;
    int brc = qry_check_bytes(q, tenant, s, err);
    if (brc != 0)
        return brc;
    qry_select_t *ranges;
    size_t nr = split_ranges(q, s, &ranges);
    if (nr == 1) {
        free(ranges);
        return select_fanout_one(q, method, tenant, s, encode, ctx, targets, n, err);
    }
    split_t *x = hp_xcalloc(nr, sizeof(*x));
    size_t width = (size_t)HP_MAX(q->cfg->querier.max_concurrent_splits, 1);
    hp_pool_fn *fns = hp_xcalloc(width, sizeof(*fns));
    void **args = hp_xcalloc(width, sizeof(*args));
    int rc = 0;
    for (size_t i = 0; i < nr && rc == 0; i += width) {
        size_t k = HP_MIN(width, nr - i);
        for (size_t j = 0; j < k; j++) {
            x[i + j] = (split_t){q, method, tenant, ranges[i + j], encode, ctx, NULL, 0, 0, {0}};
            fns[j] = split_job;
            args[j] = &x[i + j];
        }
        hp_pool_run_all(q->svc->pool, fns, args, k);
        for (size_t j = 0; j < k && rc == 0; j++)
            if (x[i + j].rc != 0)
                *err = x[i + j].err, rc = x[i + j].rc;
    }
    size_t total = 0;
    for (size_t i = 0; i < nr; i++)
        total += x[i].n;
    hp_rpc_target_t *all = hp_xcalloc(total + 1, sizeof(*all));
    size_t o = 0;
    for (size_t i = 0; i < nr; i++) { /* the replies move into one array */
        for (size_t j = 0; j < x[i].n; j++)
            all[o++] = x[i].t[j];
        free(x[i].t);
    }
    free(x);
    free(fns);
    free(args);
    free(ranges);
    if (rc != 0) {
        qry_targets_free(all, o);
        return rc;
    }
    *targets = all;
    *n = o;
    return 0;
}
