/* The querier's state, fan-out to ingesters, and result merging. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/log.h"
#include "hotpath/pprof.h"
#include "hotpath/ring.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "querier.h"

int qry_new(hp_service_t *svc, qry_t **out, hp_err_t *err)
{
    qry_t *q = hp_xcalloc(1, sizeof(*q));
    *out = q;
    q->svc = svc;
    q->cfg = &svc->cfg;
    hp_arena_init(&q->arena, 4096);
    q->n_members = hp_ring_parse_members(q->cfg->ring.members, &q->member_urls);
    if (q->n_members == 0)
        return hp_err_set(err, HP_EINVAL,
                          "no ingesters: set -ring.members to their RPC addresses (tcp://host:port,…)");
    q->clients = hp_xcalloc(q->n_members, sizeof(*q->clients));
    for (size_t i = 0; i < q->n_members; i++) {
        int rc = hp_rpc_client_new(q->member_urls[i], 0, &q->clients[i], err);
        if (rc != 0)
            return rc;
    }
    static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    q->m_query_seconds = hp_metrics_histogram(svc->metrics, "hotpath_querier_request_duration_seconds",
                                              "Time to answer a query.", NULL, buckets,
                                              HP_ARRAY_LEN(buckets));
    HP_INFO("querier ready", "ingesters=%zu", q->n_members);
    return 0;
}

void qry_free(qry_t *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; q->clients && i < q->n_members; i++)
        hp_rpc_client_free(q->clients[i]);
    free(q->clients);
    hp_ring_members_free(q->member_urls, q->n_members);
    hp_arena_fini(&q->arena);
    free(q);
}

void qry_targets_free(hp_rpc_target_t *targets, size_t n)
{
    for (size_t i = 0; targets && i < n; i++)
        hp_buf_fini(&targets[i].resp);
    free(targets);
}

int qry_fanout(qry_t *q, const char *method, hp_str_t tenant, const void *payload, size_t len,
               hp_rpc_target_t **targets, size_t *n, hp_err_t *err)
{
    hp_rpc_target_t *t = hp_xcalloc(q->n_members, sizeof(*t));
    for (size_t i = 0; i < q->n_members; i++)
        t[i].client = q->clients[i];
    size_t ok = hp_rpc_call_all(t, q->n_members, method, tenant, payload, len,
                                (int)q->cfg->querier.query_timeout_ms);
    if (ok < q->n_members) {
        for (size_t i = 0; i < q->n_members; i++) {
            if (t[i].rc == 0)
                continue;
            /* a bad query is the caller's error; anything else is ours */
            int code = t[i].rc == HP_EINVAL || t[i].rc == HP_EUNSUPPORTED ? t[i].rc : HP_EUNAVAIL;
            hp_err_set(err, code, "%s: ingester %s: %s", method, hp_rpc_client_url(t[i].client),
                       t[i].err.msg);
            break;
        }
        qry_targets_free(t, q->n_members);
        return err->code;
    }
    *targets = t;
    *n = q->n_members;
    return 0;
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
    if (s->end_ms && s->start_ms > s->end_ms)
        return hp_err_set(err, HP_EINVAL, "start (%lld) is after end (%lld)", (long long)s->start_ms,
                          (long long)s->end_ms);
    int64_t max_len = q->cfg->limits.max_query_length_ms;
    if (max_len > 0 && s->end_ms - s->start_ms > max_len)
        return hp_err_set(err, HP_EINVAL,
                          "the query time range exceeds the limit (max_query_length, actual: %llds, limit: %llds)",
                          (long long)((s->end_ms - s->start_ms) / 1000), (long long)(max_len / 1000));
    return 0;
}

/* hotpath.v1.SelectRequest for a selection. */
static void pack_select(const qry_select_t *s, hp_buf_t *out)
{
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.profile_type = (char *)s->type_id;
    r.label_selector = (char *)(s->selector ? s->selector : "");
    r.start = s->start_ms;
    r.end = s->end_ms;
    size_t n = hotpath__v1__select_request__get_packed_size(&r);
    hp_buf_reserve(out, n);
    hotpath__v1__select_request__pack(&r, out->data + out->len);
    out->len += n;
}

int qry_merge_tree(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_tree_t **out, hp_err_t *err)
{
    hp_buf_t req = HP_BUF_INIT;
    pack_select(s, &req);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_fanout(q, "ingester.SelectMergeStacktraces", tenant, req.data, req.len, &t, &n, err);
    hp_buf_fini(&req);
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
    hp_buf_t req = HP_BUF_INIT;
    pack_select(s, &req);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_fanout(q, "ingester.SelectMergeProfile", tenant, req.data, req.len, &t, &n, err);
    hp_buf_fini(&req);
    if (rc == 0 && n == 1) {
        /* one ingester: its profile is already the merge */
        hp_buf_append(out, t[0].resp.data, t[0].resp.len);
        qry_targets_free(t, n);
        return 0;
    }
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    bool typed = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        hp_pprof_t p;
        memset(&p, 0, sizeof(p));
        rc = hp_pprof_decode(&p, t[i].resp.data, t[i].resp.len, NULL, err);
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
