/* The querier's state, fan-out to ingesters, and result merging. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/hashmap.h"
#include "hotpath/log.h"
#include "hotpath/pprof.h"
#include "hotpath/ring.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "querier.h"

/* The most samples an ingester's merged pprof may hold (it is trusted; an
 * RPC message is at most 256 MiB anyway). */
#define QRY_INTERNAL_MAX_SAMPLES (1u << 26)

static size_t max_missing(const qry_t *q);

/* Ready once every ingester was probed and enough serve reads for a query
 * to be complete (at most RF/2 missing). */
static bool qry_ready(void *ctx, hp_buf_t *why)
{
    qry_t *q = ctx;
    if (!hp_members_probed(q->members)) {
        hp_buf_puts(why, "waiting for the first heartbeat round");
        return false;
    }
    hp_ring_view_t *v = hp_members_view(q->members);
    size_t members = hp_ring_view_size(v);
    size_t *set = hp_xmalloc((members + 1) * sizeof(size_t));
    size_t n = hp_ring_view_read_set(v, set);
    free(set);
    hp_ring_view_release(v);
    if (n > 0 && members - n <= max_missing(q))
        return true;
    hp_buf_printf(why, "%zu of %zu ingesters serve reads", n, members);
    return false;
}

int qry_new(hp_service_t *svc, qry_t **out, hp_err_t *err)
{
    qry_t *q = hp_xcalloc(1, sizeof(*q));
    *out = q;
    q->svc = svc;
    q->cfg = &svc->cfg;
    hp_arena_init(&q->arena, 4096);
    hp_members_config_t mc = {q->cfg->ring.members, (size_t)q->cfg->ring.num_tokens,
                              q->cfg->ring.heartbeat_period_ms, q->cfg->ring.heartbeat_timeout_ms,
                              q->cfg->ring.dns_refresh_ms, q->cfg->distributor.zone_awareness};
    int rc = hp_members_new(&mc, &q->members, err);
    if (rc == 0)
        rc = hp_members_start(q->members, err);
    if (rc != 0)
        return rc;
    static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    q->m_query_seconds = hp_metrics_histogram(svc->metrics, "hotpath_querier_request_duration_seconds",
                                              "Time to answer a query.", NULL, buckets,
                                              HP_ARRAY_LEN(buckets));
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
    hp_arena_fini(&q->arena);
    free(q);
}

void qry_targets_free(hp_rpc_target_t *targets, size_t n)
{
    for (size_t i = 0; targets && i < n; i++)
        hp_buf_fini(&targets[i].resp);
    free(targets);
}

/* How many ingesters a read may miss and still see every acknowledged
 * profile: a write needs a quorum (RF/2+1) of RF, so RF/2 can be lost. */
static size_t max_missing(const qry_t *q)
{
    return (size_t)HP_MAX(q->cfg->distributor.replication_factor, 1) / 2;
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

/* After a fan-out: keeps the targets that answered (compacting the array)
 * and fails when too many are missing. A bad query (the caller's error)
 * fails at once. */
static int keep_answers(qry_t *q, const char *method, hp_rpc_target_t *t, size_t *n, size_t members,
                        hp_err_t *err)
{
    for (size_t i = 0; i < *n; i++)
        if (query_error(t[i].rc))
            return hp_err_set(err, t[i].rc, "%s", t[i].err.msg);
    size_t ok = 0;
    hp_err_t first = {HP_OK, 0, ""};
    for (size_t i = 0; i < *n; i++) {
        if (t[i].rc != 0) {
            if (first.code == HP_OK)
                first = t[i].err;
            hp_buf_fini(&t[i].resp);
            continue;
        }
        t[ok++] = t[i];
    }
    size_t missing = members - ok;
    *n = ok;
    if (ok > 0 && missing <= max_missing(q))
        return 0;
    return hp_err_set(err, HP_EUNAVAIL, "%s: %zu of %zu ingesters answered, at most %zu may be missing%s%s",
                      method, ok, members, max_missing(q), first.code ? ": " : "", first.msg);
}

/* Calls every readable member; payloads[i] (NULL: the shared payload). */
static int fanout(qry_t *q, hp_ring_view_t *v, const size_t *set, size_t n_set, const char *method,
                  hp_str_t tenant, const void *payload, size_t len, hp_buf_t *payloads,
                  hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    hp_rpc_target_t *t = hp_xcalloc(n_set + 1, sizeof(*t));
    for (size_t i = 0; i < n_set; i++) {
        t[i].client = hp_ring_view_client(v, set[i]);
        if (payloads) {
            t[i].payload = payloads[i].data ? payloads[i].data : (const void *)"";
            t[i].payload_len = payloads[i].len;
        }
    }
    hp_rpc_call_all(t, n_set, method, tenant, payload, len, clamp_ms(q->cfg->querier.query_timeout_ms));
    for (size_t i = 0; i < n_set; i++)
        if (t[i].rc == 0 || t[i].rc == HP_EUNAVAIL || t[i].rc == HP_ETIMEDOUT)
            hp_members_report(q->members, v, set[i], t[i].rc == 0);
    *n = n_set;
    int rc = keep_answers(q, method, t, n, hp_ring_view_size(v), err);
    if (rc != 0) {
        qry_targets_free(t, *n);
        return rc;
    }
    *targets = t;
    return 0;
}

int qry_fanout(qry_t *q, const char *method, hp_str_t tenant, const void *payload, size_t len,
               hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    hp_ring_view_t *v = hp_members_view(q->members);
    size_t *set = hp_xmalloc((hp_ring_view_size(v) + 1) * sizeof(size_t));
    size_t n_set = hp_ring_view_read_set(v, set);
    int rc = fanout(q, v, set, n_set, method, tenant, payload, len, NULL, targets, n, err);
    free(set);
    hp_ring_view_release(v);
    return rc;
}

int qry_check_select(const qry_t *q, const qry_select_t *s, hp_err_t *err)
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
    return qry_check_range(q, s->start_ms, s->end_ms, true, err);
}

int qry_check_range(const qry_t *q, int64_t start_ms, int64_t end_ms, bool end_required, hp_err_t *err)
{
    if (start_ms < 0 || start_ms > QRY_MAX_TIME_MS || end_ms < 0 || end_ms > QRY_MAX_TIME_MS)
        return hp_err_set(err, HP_EINVAL,
                          "start (%lld) and end (%lld) must be unix milliseconds between 0 and %lld",
                          (long long)start_ms, (long long)end_ms, (long long)QRY_MAX_TIME_MS);
    int64_t max_len = q->cfg->limits.max_query_length_ms;
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
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_select_fanout(q, "query.SelectMergeStacktraces", tenant, s, pack_select, NULL, &t, &n, err);
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

int qry_merge_pprof(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_buf_t *out, hp_err_t *err)
{
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_select_fanout(q, "query.SelectMergeProfile", tenant, s, pack_select, NULL, &t, &n, err);
    if (rc == 0 && n == 1) {
        /* one ingester: its profile is already the merge */
        hp_buf_append(out, t[0].resp.data, t[0].resp.len);
        qry_targets_free(t, n);
        return 0;
    }
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    bool typed = false;
    /* Ingesters' merged profiles are trusted and may be far larger than a
     * client's: the public defaults (4M samples) would refuse big merges. */
    const hp_pprof_limits_t lim = {QRY_INTERNAL_MAX_SAMPLES, UINT32_MAX, UINT32_MAX};
    for (size_t i = 0; i < n && rc == 0; i++) {
        hp_pprof_t p;
        memset(&p, 0, sizeof(p));
        rc = hp_pprof_decode(&p, t[i].resp.data, t[i].resp.len, &lim, err);
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
    if (rc == 0)
        hp_pprof_builder_encode(b, out);
    hp_pprof_builder_free(b);
    return rc;
}

int64_t qry_max_nodes(const qry_t *q, int64_t requested)
{
    int64_t max = q->cfg->limits.max_flamegraph_nodes_max;
    int64_t n = requested > 0 ? requested : q->cfg->limits.max_flamegraph_nodes_default;
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
    hp_u64map_t map;   /* first 8 bytes (+ probe) → entry index */
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
            int code = query_error(t[i].rc) ? t[i].rc : HP_EUNAVAIL;
            hp_err_set(err, code, "%s: ingester %s: %s", method, hp_rpc_client_url(t[i].client), t[i].err.msg);
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
    int rc = qry_fanout(q, "query.SelectKeys", tenant, body.data, body.len, t, n, err);
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

int qry_select_fanout(qry_t *q, const char *method, hp_str_t tenant, const qry_select_t *s,
                      qry_encode_fn encode, void *ctx, hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    Hotpath__V1__SelectRequest sel = HOTPATH__V1__SELECT_REQUEST__INIT;
    sel.profile_type = (char *)s->type_id;
    sel.label_selector = (char *)(s->selector ? s->selector : "");
    sel.start = s->start_ms;
    sel.end = s->end_ms;
    hp_rpc_target_t *t1 = NULL;
    size_t n1 = 0;
    Hotpath__V1__SelectKeysResponse **keys = NULL;
    int rc = select_keys(q, tenant, &sel, &t1, &n1, &keys, err);
    hp_buf_t *keep = hp_xcalloc(n1 + 1, sizeof(hp_buf_t)), *payloads = hp_xcalloc(n1 + 1, sizeof(hp_buf_t));
    hp_rpc_client_t **clients = hp_xcalloc(n1 + 1, sizeof(*clients));
    if (rc == 0) {
        plan_keep(keys, n1, keep);
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
