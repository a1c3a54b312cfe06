/* querier.v1.QuerierService over Connect (application/proto and
 * application/json): one table entry per method. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "google/v1/profile.pb-c.h"
#include "hotpath/connect.h"
#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "querier.h"
#include "querier/v1/querier.pb-c.h"
#include "types/v1/types.pb-c.h"

/* Runs one method: req decoded, out receives the binary response. */
typedef int (*method_fn)(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out,
                         hp_err_t *err);

typedef struct method {
    const char *path;
    const ProtobufCMessageDescriptor *req, *resp;
    method_fn fn;
} method_t;

static void pack(const ProtobufCMessage *m, hp_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    hp_buf_reserve(out, n);
    out->len += protobuf_c_message_pack(m, out->data + out->len);
}

/* ---- names: LabelNames, LabelValues ---- */

/* Calls method with the request as is on every process in range, and
 * unpacks each reply as desc into (*parts)[i] (n of them; the caller frees
 * them with free_parts). */
static int names_fanout(qry_t *q, hp_str_t tenant, const char *method, const ProtobufCMessage *req,
                        int64_t start_ms, const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***parts,
                        size_t *n, hp_err_t *err)
{
    hp_buf_t body = HP_BUF_INIT;
    pack(req, &body);
    hp_rpc_target_t *t = NULL;
    *n = 0;
    int rc = qry_fanout(q, method, tenant, start_ms, body.data, body.len, &t, n, err);
    hp_buf_fini(&body);
    *parts = hp_xcalloc(*n + 1, sizeof(**parts));
    for (size_t i = 0; i < *n && rc == 0; i++) {
        (*parts)[i] = protobuf_c_message_unpack(desc, NULL, t[i].resp.len, t[i].resp.data);
        if ((*parts)[i] == NULL)
            rc = hp_err_set(err, HP_EUNAVAIL, "%s: malformed reply from %s", method, hp_rpc_client_url(t[i].client));
    }
    qry_targets_free(t, *n);
    return rc;
}

static void free_parts(ProtobufCMessage **parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i])
            protobuf_c_message_free_unpacked(parts[i], NULL);
    free(parts);
}

/* A label name and the hash of one of its values from some process, or
 * (floor) a count a process sent without its hashes. */
typedef struct name_hash {
    const char *name;
    uint64_t h; /* the hash, or the count for a floor */
    bool floor;
} name_hash_t;

static int cmp_name_hash(const void *a, const void *b)
{
    const name_hash_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->floor != y->floor)
        return x->floor ? 1 : -1;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* The names of every reply with the number of distinct values of each:
 * the union of the value hashes each process sent, so a value held by
 * several replicas or blocks counts once. A process sends only the count
 * of a name with very many values; such a name gets the larger of the
 * union and the largest count (a lower bound). */
static void encode_cardinality(Types__V1__LabelNamesResponse **parts, size_t n, hp_buf_t *out)
{
    name_hash_t *all = NULL;
    size_t total = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        const Types__V1__LabelNamesResponse *p = parts[i];
        for (size_t k = 0; k < p->n_names; k++) {
            const ProtobufCBinaryData *hs = k < p->n_value_hashes ? &p->value_hashes[k] : NULL;
            size_t m = hs ? hs->len / 8 : 0;
            int64_t count = k < p->n_estimated_cardinality ? p->estimated_cardinality[k] : 0;
            HP_GROW(all, cap, total + m + 1);
            for (size_t j = 0; j < m; j++)
                all[total++] = (name_hash_t){p->names[k], hp_load_le64(hs->data + j * 8), false};
            /* a count beyond the hashes sent (or a name alone) sets a floor */
            all[total++] = (name_hash_t){p->names[k], count > (int64_t)m ? (uint64_t)count : 0, true};
        }
    }
    hp_qsort(all, total, sizeof(*all), cmp_name_hash);
    char **names = hp_xcalloc(total + 1, sizeof(char *));
    int64_t *card = hp_xcalloc(total + 1, sizeof(int64_t));
    size_t o = 0;
    for (size_t i = 0; i < total; i++) {
        bool new_name = i == 0 || strcmp(all[i].name, all[i - 1].name) != 0;
        if (new_name)
            names[o++] = (char *)all[i].name;
        if (all[i].floor)
            card[o - 1] = HP_MAX(card[o - 1], (int64_t)all[i].h);
        else if (new_name || all[i].h != all[i - 1].h)
            card[o - 1]++;
    }
    Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
    resp.names = names;
    resp.n_names = o;
    resp.estimated_cardinality = card;
    resp.n_estimated_cardinality = o;
    pack(&resp.base, out);
    free(card);
    free(names);
    free(all);
}

static int label_names(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Types__V1__LabelNamesRequest *r = (const Types__V1__LabelNamesRequest *)req;
    int rc = qry_check_range(q, tenant, r->start, r->end, false, err);
    if (rc != 0)
        return rc;
    ProtobufCMessage **parts;
    size_t n;
    rc = names_fanout(q, tenant, "query.LabelNames", req, r->start, &types__v1__label_names_response__descriptor,
                      &parts, &n, err);
    Types__V1__LabelNamesResponse **ps = (Types__V1__LabelNamesResponse **)parts;
    if (rc == 0 && r->include_cardinality) {
        encode_cardinality(ps, n, out);
    } else if (rc == 0) {
        char **all = NULL;
        size_t total = 0, cap = 0;
        for (size_t i = 0; i < n; i++) {
            HP_GROW(all, cap, total + ps[i]->n_names + 1);
            for (size_t k = 0; k < ps[i]->n_names; k++)
                all[total++] = ps[i]->names[k];
        }
        Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
        resp.n_names = hp_sort_unique_strs(all, total);
        resp.names = all;
        pack(&resp.base, out);
        free(all);
    }
    free_parts(parts, n);
    return rc;
}

#define QRY_MAX_LABEL_VALUES_LIMIT 1000000

static int label_values(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Types__V1__LabelValuesRequest *r = (const Types__V1__LabelValuesRequest *)req;
    if (r->name == NULL || *r->name == '\0')
        return hp_err_set(err, HP_EINVAL, "name is required");
    if (r->limit < 0)
        return hp_err_set(err, HP_EINVAL, "limit must be 0 (no limit) or positive, not %lld", (long long)r->limit);
    int rc = qry_check_range(q, tenant, r->start, r->end, false, err);
    if (rc != 0)
        return rc;
    ProtobufCMessage **parts;
    size_t n;
    rc = names_fanout(q, tenant, "query.LabelValues", req, r->start, &types__v1__label_values_response__descriptor,
                      &parts, &n, err);
    Types__V1__LabelValuesResponse **ps = (Types__V1__LabelValuesResponse **)parts;
    if (rc == 0) {
        /* each process sent its first `limit` values in sort order, so the
         * first `limit` of the union are among them */
        char **all = NULL;
        size_t total = 0, cap = 0;
        bool truncated = false;
        for (size_t i = 0; i < n; i++) {
            HP_GROW(all, cap, total + ps[i]->n_names + 1);
            for (size_t k = 0; k < ps[i]->n_names; k++)
                all[total++] = ps[i]->names[k];
            truncated |= ps[i]->truncated;
        }
        Types__V1__LabelValuesResponse resp = TYPES__V1__LABEL_VALUES_RESPONSE__INIT;
        resp.n_names = hp_sort_unique_strs(all, total);
        resp.names = all;
        size_t limit = r->limit > 0 ? (size_t)HP_MIN(r->limit, QRY_MAX_LABEL_VALUES_LIMIT) : SIZE_MAX;
        if (resp.n_names > limit) {
            resp.n_names = limit;
            truncated = true;
        }
        resp.truncated = truncated;
        pack(&resp.base, out);
        free(all);
    }
    free_parts(parts, n);
    return rc;
}

/* ---- ProfileTypes ---- */

static int cmp_type(const void *a, const void *b)
{
    const Types__V1__ProfileType *x = *(Types__V1__ProfileType *const *)a;
    const Types__V1__ProfileType *y = *(Types__V1__ProfileType *const *)b;
    return strcmp(x->id, y->id);
}

static int profile_types(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__ProfileTypesRequest *r = (const Querier__V1__ProfileTypesRequest *)req;
    int rc = qry_check_range(q, tenant, r->start, r->end, false, err);
    if (rc != 0)
        return rc;
    Hotpath__V1__ProfileTypesRequest ir = HOTPATH__V1__PROFILE_TYPES_REQUEST__INIT;
    ir.start = r->start;
    ir.end = r->end;
    hp_buf_t body = HP_BUF_INIT;
    pack(&ir.base, &body);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    rc = qry_fanout(q, "query.ProfileTypes", tenant, r->start, body.data, body.len, &t, &n, err);
    hp_buf_fini(&body);
    Hotpath__V1__ProfileTypesResponse **parts = hp_xcalloc(n + 1, sizeof(*parts));
    Types__V1__ProfileType **all = NULL;
    size_t total = 0, cap = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        parts[i] = hotpath__v1__profile_types_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (parts[i] == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "ProfileTypes: malformed reply from an ingester");
            break;
        }
        HP_GROW(all, cap, total + parts[i]->n_types);
        for (size_t k = 0; k < parts[i]->n_types; k++)
            all[total++] = parts[i]->types[k];
    }
    if (rc == 0) {
        hp_qsort(all, total, sizeof(*all), cmp_type);
        size_t o = 0;
        for (size_t i = 0; i < total; i++)
            if (o == 0 || strcmp(all[o - 1]->id, all[i]->id) != 0)
                all[o++] = all[i];
        Querier__V1__ProfileTypesResponse resp = QUERIER__V1__PROFILE_TYPES_RESPONSE__INIT;
        resp.profile_types = all;
        resp.n_profile_types = o;
        pack(&resp.base, out);
    }
    for (size_t i = 0; i < n; i++)
        if (parts[i])
            hotpath__v1__profile_types_response__free_unpacked(parts[i], NULL);
    free(parts);
    free(all);
    qry_targets_free(t, n);
    return rc;
}

/* ---- Series ---- */

/* Label sets from every ingester, deduplicated by their encoding. */
static int series(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__SeriesRequest *sr = (const Querier__V1__SeriesRequest *)req;
    int rc = qry_check_range(q, tenant, sr->start, sr->end, false, err);
    if (rc != 0)
        return rc;
    hp_buf_t body = HP_BUF_INIT;
    pack(req, &body);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    rc = qry_fanout(q, "query.Series", tenant, sr->start, body.data, body.len, &t, &n, err);
    hp_buf_fini(&body);
    hp_u64map_t seen;
    hp_u64map_init(&seen, 64);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Querier__V1__SeriesResponse *r =
            querier__v1__series_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (r == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "Series: malformed reply from an ingester");
            break;
        }
        for (size_t k = 0; k < r->n_labels_set; k++) {
            hp_buf_t one = HP_BUF_INIT;
            pack(&r->labels_set[k]->base, &one);
            bool found;
            hp_u64map_upsert(&seen, XXH3_64bits(one.data, one.len), 1, &found);
            if (!found)
                hp_pb_put_bytes(out, 2, one.data, one.len);
            hp_buf_fini(&one);
        }
        querier__v1__series_response__free_unpacked(r, NULL);
    }
    hp_u64map_fini(&seen);
    qry_targets_free(t, n);
    return rc;
}

/* ---- Select* ---- */

/* HP_EUNSUPPORTED for a format other than a flame graph or tree bytes. */
static int check_tree_format(Querier__V1__ProfileFormat f, hp_err_t *err)
{
    if (f == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED ||
        f == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH ||
        f == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE)
        return 0;
    return hp_err_set(err, HP_EUNSUPPORTED,
                      "format %d is not supported yet: use PROFILE_FORMAT_FLAMEGRAPH or PROFILE_FORMAT_TREE",
                      (int)f);
}

/* A merged tree as SelectMergeStacktraces/SelectMergeSpanProfile answer
 * it: flamegraph (field 1), or with PROFILE_FORMAT_TREE Pyroscope's tree
 * bytes (field 2), max_nodes folding either. */
static void encode_tree_reply(const qry_t *q, hp_str_t tenant, const hp_tree_t *tree, int64_t max_nodes,
                              Querier__V1__ProfileFormat f, hp_buf_t *out)
{
    if (f == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE) {
        hp_buf_t tb = HP_BUF_INIT;
        hp_tree_encode_pyroscope(tree, qry_max_nodes(q, tenant, max_nodes), &tb);
        hp_pb_put_bytes(out, 2, tb.data, tb.len);
        hp_buf_fini(&tb);
        return;
    }
    hp_flamegraph_t fg;
    hp_flamegraph_build(tree, qry_max_nodes(q, tenant, max_nodes), &fg);
    hp_flamegraph_encode_proto(&fg, 1, out);
    hp_flamegraph_fini(&fg);
}

static int merge_stacktraces(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out,
                             hp_err_t *err)
{
    const Querier__V1__SelectMergeStacktracesRequest *r = (const void *)req;
    qry_select_t s = {r->profile_typeid, r->label_selector, r->start, r->end, 0};
    s.stack = r->stack_trace_selector;
    int rc = qry_check_select(q, tenant, &s, err);
    if (rc == 0)
        rc = check_tree_format(r->format, err);
    hp_tree_t *tree = NULL;
    if (rc == 0)
        rc = qry_merge_tree(q, tenant, &s, &tree, err);
    if (rc != 0)
        return rc;
    encode_tree_reply(q, tenant, tree, r->max_nodes, r->format, out);
    hp_tree_free(tree);
    return 0;
}

/* SelectMergeSpanProfile: SelectMergeStacktraces over the samples of the
 * span_selector's spans only (spans.c); no span selects no sample. */
static int merge_span_profile(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out,
                              hp_err_t *err)
{
    const Querier__V1__SelectMergeSpanProfileRequest *r = (const void *)req;
    qry_select_t s = {r->profile_typeid, r->label_selector, r->start, r->end, 0};
    int rc = qry_check_select(q, tenant, &s, err);
    if (rc == 0)
        rc = check_tree_format(r->format, err);
    uint64_t *spans = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = qry_parse_span_selector(r->span_selector, r->n_span_selector, &spans, &n, err);
    hp_tree_t *tree = NULL;
    if (rc == 0)
        rc = qry_merge_span_tree(q, tenant, &s, spans, n, &tree, err);
    free(spans);
    if (rc == 0)
        encode_tree_reply(q, tenant, tree, r->max_nodes, r->format, out);
    hp_tree_free(tree);
    return rc;
}

/* GetProfileStats: every process's answer (ingesters and store-gateways:
 * all time), the earliest oldest and the latest newest. */
static int profile_stats(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    /* a range starting at the epoch: the store-gateways are asked too */
    int rc = qry_fanout(q, "query.ProfileStats", tenant, 1, NULL, 0, &t, &n, err);
    Types__V1__GetProfileStatsResponse resp = TYPES__V1__GET_PROFILE_STATS_RESPONSE__INIT;
    for (size_t i = 0; i < n && rc == 0; i++) {
        Types__V1__GetProfileStatsResponse *r =
            types__v1__get_profile_stats_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (r == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "GetProfileStats: malformed reply from %s",
                            hp_rpc_client_url(t[i].client));
            break;
        }
        if (r->data_ingested) {
            bool first = !resp.data_ingested;
            resp.oldest_profile_time = first ? r->oldest_profile_time
                                             : HP_MIN(resp.oldest_profile_time, r->oldest_profile_time);
            resp.newest_profile_time = first ? r->newest_profile_time
                                             : HP_MAX(resp.newest_profile_time, r->newest_profile_time);
            resp.data_ingested = true;
        }
        types__v1__get_profile_stats_response__free_unpacked(r, NULL);
    }
    qry_targets_free(t, n);
    if (rc == 0) {
        hp_buf_reserve(out, types__v1__get_profile_stats_response__get_packed_size(&resp) + 1);
        out->len += types__v1__get_profile_stats_response__pack(&resp, out->data + out->len);
    }
    return rc;
}

/* The selector of an AnalyzeQuery with the profile type as a matcher (a
 * Series matcher list ORs its entries; this must AND them). Arena string. */
static const char *typed_selector(hp_arena_t *a, const char *type_id, const char *selector)
{
    if (type_id == NULL)
        return selector;
    /* inside the braces (a parsed selector has both) */
    const char *in = selector + 1;
    const char *end = strrchr(selector, '}');
    if (end == NULL || end < in)
        end = in;
    while (in < end && (*in == ' ' || *in == '\t'))
        in++;
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, "{" HP_LABEL_PROFILE_TYPE "=\"");
    hp_buf_puts(&b, type_id);
    hp_buf_putc(&b, '"');
    if (in < end) {
        hp_buf_putc(&b, ',');
        hp_buf_append(&b, in, (size_t)(end - in));
    }
    hp_buf_putc(&b, '}');
    char *out = hp_arena_strndup(a, (const char *)b.data, b.len);
    hp_buf_fini(&b);
    return out;
}

/* The distinct series a selection matches (the Series method's count). */
static int count_series(qry_t *q, hp_str_t tenant, const char *matcher, int64_t start, int64_t end,
                        uint64_t *n, hp_err_t *err)
{
    Querier__V1__SeriesRequest sr = QUERIER__V1__SERIES_REQUEST__INIT;
    char *m[1] = {(char *)matcher};
    sr.matchers = m;
    sr.n_matchers = 1;
    sr.start = start;
    sr.end = end;
    hp_buf_t body = HP_BUF_INIT;
    int rc = series(q, tenant, &sr.base, &body, err);
    Querier__V1__SeriesResponse *r =
        rc == 0 ? querier__v1__series_response__unpack(NULL, body.len, body.data) : NULL;
    if (rc == 0 && r == NULL)
        rc = hp_err_set(err, HP_EINTERNAL, "AnalyzeQuery: the series count did not decode");
    *n = r ? r->n_labels_set : 0;
    if (r)
        querier__v1__series_response__free_unpacked(r, NULL);
    hp_buf_fini(&body);
    return rc;
}

/* One kind of component's share of an AnalyzeQuery: query.Estimate from
 * each of its processes, summed (replicas each count, as each reads). */
static int analyze_scope(qry_t *q, hp_str_t tenant, bool gateways, const hp_buf_t *sel, int64_t start,
                         Querier__V1__QueryScope *scope, hp_err_t *err)
{
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_fanout_kind(q, gateways, "query.Estimate", tenant, start, sel->data, sel->len, &t, &n, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Hotpath__V1__EstimateResponse *e =
            hotpath__v1__estimate_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (e == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "AnalyzeQuery: malformed reply from %s",
                            hp_rpc_client_url(t[i].client));
            break;
        }
        scope->component_count++;
        scope->block_count += e->sources;
        scope->series_count += e->series;
        scope->profile_count += e->profiles;
        scope->sample_count += e->samples;
        scope->profile_bytes += e->bytes;
        hotpath__v1__estimate_response__free_unpacked(e, NULL);
    }
    qry_targets_free(t, n);
    return rc;
}

/* AnalyzeQuery: what a query would read, before it runs — per kind of
 * component (Pyroscope's "Short term storage": ingesters; "Long term
 * storage": store-gateways) the processes asked, the sources (heads and
 * blocks) the range overlaps, and the series, profiles, samples and bytes
 * of samples the selection reads there; in all, those bytes and the
 * distinct series selected. query: a profile type and selector, a
 * selector alone, or nothing (everything). */
static int analyze_query(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__AnalyzeQueryRequest *r = (const void *)req;
    const char *query = r->query ? r->query : "";
    while (*query == ' ' || *query == '\t')
        query++;
    int rc = qry_check_range(q, tenant, r->start, r->end, false, err);
    char *type_id = NULL;
    hp_selector_t parsed;
    memset(&parsed, 0, sizeof(parsed));
    if (rc == 0 && (*query == '\0' || *query == '{'))
        rc = hp_selector_parse(hp_str_c(query), &parsed, err);
    else if (rc == 0)
        rc = hp_selector_parse_query(hp_str_c(query), &type_id, &parsed, err);
    hp_selector_fini(&parsed);
    const char *brace = strchr(query, '{');
    const char *selector = brace ? brace : "{}";
    hp_arena_t a;
    hp_arena_init(&a, 0);
    Querier__V1__QueryScope scopes[2] = {QUERIER__V1__QUERY_SCOPE__INIT, QUERIER__V1__QUERY_SCOPE__INIT};
    scopes[0].component_type = "Short term storage";
    scopes[1].component_type = "Long term storage";
    Querier__V1__QueryImpact impact = QUERIER__V1__QUERY_IMPACT__INIT;
    if (rc == 0) {
        qry_select_t qs = {type_id, selector, r->start, r->end, 0};
        Hotpath__V1__SelectRequest sel;
        qry_select_request(&qs, &sel);
        hp_buf_t body = HP_BUF_INIT;
        pack(&sel.base, &body);
        for (int k = 0; k < 2 && rc == 0; k++)
            rc = analyze_scope(q, tenant, k == 1, &body, r->start, &scopes[k], err);
        hp_buf_fini(&body);
    }
    if (rc == 0)
        rc = count_series(q, tenant, typed_selector(&a, type_id, selector), r->start, r->end,
                          &impact.total_queried_series, err);
    if (rc == 0) {
        impact.total_bytes_in_time_range = scopes[0].profile_bytes + scopes[1].profile_bytes;
        impact.deduplication_needed = q->cfg->distributor.replication_factor > 1;
        Querier__V1__QueryScope *sp[2] = {&scopes[0], &scopes[1]};
        Querier__V1__AnalyzeQueryResponse resp = QUERIER__V1__ANALYZE_QUERY_RESPONSE__INIT;
        resp.query_scopes = sp;
        resp.n_query_scopes = 2;
        resp.query_impact = &impact;
        pack(&resp.base, out);
    }
    free(type_id);
    hp_arena_fini(&a);
    return rc;
}

/* One side of a Diff: its merged tree. */
static int diff_side(qry_t *q, hp_str_t tenant, const Querier__V1__SelectMergeStacktracesRequest *r,
                     const char *side, hp_tree_t **tree, hp_err_t *err)
{
    if (r == NULL)
        return hp_err_set(err, HP_EINVAL, "Diff needs both a left and a right selection: %s is missing",
                          side);
    qry_select_t s = {r->profile_typeid, r->label_selector, r->start, r->end, 0};
    s.stack = r->stack_trace_selector;
    int rc = qry_check_select(q, tenant, &s, err);
    if (rc == 0)
        rc = qry_merge_tree(q, tenant, &s, tree, err);
    if (rc != 0) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        hp_err_set(err, rc, "%s: %s", side, why);
    }
    return rc;
}

/* Diff: both selections' flame graphs as one FlameGraphDiff (max_nodes
 * from the left selection, as Pyroscope takes it). */
static int diff(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__DiffRequest *r = (const void *)req;
    hp_tree_t *left = NULL, *right = NULL;
    int rc = diff_side(q, tenant, r->left, "left", &left, err);
    if (rc == 0)
        rc = diff_side(q, tenant, r->right, "right", &right, err);
    if (rc == 0) {
        hp_flamegraph_diff_t d;
        hp_flamegraph_diff_build(left, right, qry_max_nodes(q, tenant, r->left->max_nodes), &d);
        hp_flamegraph_diff_encode_proto(&d, 1, out);
        hp_flamegraph_diff_fini(&d);
    }
    hp_tree_free(left);
    hp_tree_free(right);
    return rc;
}

static int merge_profile(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__SelectMergeProfileRequest *r = (const void *)req;
    qry_select_t s = {r->profile_typeid, r->label_selector, r->start, r->end, 0};
    s.stack = r->stack_trace_selector;
    int rc = qry_check_select(q, tenant, &s, err);
    /* max_nodes only when asked for: without it the profile is whole and
     * exact; Go PGO trimming takes precedence over it, as in Pyroscope */
    bool pgo = r->stack_trace_selector && r->stack_trace_selector->go_pgo;
    int64_t max_nodes = r->max_nodes > 0 && !pgo ? qry_max_nodes(q, tenant, r->max_nodes) : 0;
    return rc == 0 ? qry_merge_pprof(q, tenant, &s, max_nodes, out, err) : rc;
}

/* types.v1.Series as field 1 of SelectSeriesResponse, each point with its
 * exemplar (Point.exemplars, 4) when it has one. */
static void encode_series(const qry_series_t *x, hp_buf_t *out)
{
    size_t m = hp_pb_begin_len(out, 1);
    hp_labels_encode(&x->labels, 1, out);
    for (size_t i = 0; i < x->n_points; i++) {
        size_t pm = hp_pb_begin_len(out, 2);
        if (x->points[i].value != 0) {
            hp_pb_put_tag(out, 1, 1);
            hp_buf_append(out, &x->points[i].value, 8);
        }
        hp_pb_put_uint(out, 2, (uint64_t)x->points[i].ts_ms);
        if (x->points[i].ex)
            hp_pb_put_bytes(out, 4, x->points[i].ex, x->points[i].ex_len);
        hp_pb_end_len(out, pm);
    }
    hp_pb_end_len(out, m);
}

/* AVERAGE: each point becomes the mean of the profile totals it summed
 * (Pyroscope's average over a step). */
static void average_points(qry_series_set_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        for (size_t p = 0; p < set->v[i].n_points; p++)
            if (set->v[i].points[p].count > 0)
                set->v[i].points[p].value /= (double)set->v[i].points[p].count;
}

/* A series and the sum of its values, for ranking. */
typedef struct ranked {
    const qry_series_t *x;
    double sum;
} ranked_t;

/* Order of two label sets: pair by pair, name then value, then length. */
static int cmp_labels(const hp_labels_t *a, const hp_labels_t *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = hp_str_cmp(a->v[i].name, b->v[i].name);
        if (c == 0)
            c = hp_str_cmp(a->v[i].value, b->v[i].value);
        if (c != 0)
            return c;
    }
    return (a->n > b->n) - (a->n < b->n);
}

/* Largest sum first; equal sums by labels, ascending. */
static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked_t *a = pa, *b = pb;
    if (a->sum != b->sum)
        return a->sum > b->sum ? -1 : 1;
    return cmp_labels(&a->x->labels, &b->x->labels);
}

/* Encodes the series as Pyroscope's model.TopSeries orders them: by the sum
 * of their values, largest first (ties by labels), the first limit only
 * when limit > 0. */
static void encode_top_series(const qry_series_set_t *set, int64_t limit, hp_buf_t *out)
{
    ranked_t *r = hp_xmalloc((set->n + 1) * sizeof(*r));
    for (size_t i = 0; i < set->n; i++) {
        r[i].x = &set->v[i];
        r[i].sum = 0;
        for (size_t p = 0; p < set->v[i].n_points; p++)
            r[i].sum += set->v[i].points[p].value;
    }
    hp_qsort(r, set->n, sizeof(*r), cmp_ranked);
    size_t n = limit > 0 && (uint64_t)limit < set->n ? (size_t)limit : set->n;
    for (size_t i = 0; i < n; i++)
        encode_series(r[i].x, out);
    free(r);
}

static int select_series(qry_t *q, hp_str_t tenant, const ProtobufCMessage *req, hp_buf_t *out, hp_err_t *err)
{
    const Querier__V1__SelectSeriesRequest *r = (const void *)req;
    qry_select_t s = {r->profile_typeid, r->label_selector, r->start, r->end, 0};
    s.stack = r->stack_trace_selector;
    int rc = qry_check_select(q, tenant, &s, err);
    if (rc != 0)
        return rc;
    /* below 1 ms the step would truncate to 0, which ingesters read as "default" */
    if (!(r->step >= 0.001) || r->step > 1e9)
        return hp_err_set(err, HP_EINVAL, "step must be a number of seconds between 0.001 and 1e9, got %g",
                          r->step);
    bool avg = r->aggregation == TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE;
    if (!avg && r->aggregation != TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_SUM)
        return hp_err_set(err, HP_EINVAL, "aggregation %d is not one of SUM (0) and AVERAGE (1)", (int)r->aggregation);
    if (r->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN)
        return hp_err_set(err, HP_EUNSUPPORTED,
                          "exemplar_type EXEMPLAR_TYPE_SPAN is not supported: use EXEMPLAR_TYPE_INDIVIDUAL");
    if (r->exemplar_type > TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN || r->exemplar_type < 0)
        return hp_err_set(err, HP_EINVAL, "exemplar_type %d is unknown", (int)r->exemplar_type);
    unsigned flags = (avg ? QRY_SERIES_COUNTS : 0) |
                     (r->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL ? QRY_SERIES_EXEMPLARS : 0);
    qry_series_set_t set;
    rc = qry_select_series(q, tenant, &s, r->group_by, r->n_group_by, (int64_t)(r->step * 1000), flags, &set, err);
    if (rc == 0 && avg)
        average_points(&set);
    if (rc == 0)
        encode_top_series(&set, r->limit, out);
    qry_series_set_fini(&set);
    return rc;
}

static const method_t methods[] = {
    {"/querier.v1.QuerierService/ProfileTypes", &querier__v1__profile_types_request__descriptor,
     &querier__v1__profile_types_response__descriptor, profile_types},
    {"/querier.v1.QuerierService/LabelNames", &types__v1__label_names_request__descriptor,
     &types__v1__label_names_response__descriptor, label_names},
    {"/querier.v1.QuerierService/LabelValues", &types__v1__label_values_request__descriptor,
     &types__v1__label_values_response__descriptor, label_values},
    {"/querier.v1.QuerierService/Series", &querier__v1__series_request__descriptor,
     &querier__v1__series_response__descriptor, series},
    {"/querier.v1.QuerierService/SelectMergeStacktraces",
     &querier__v1__select_merge_stacktraces_request__descriptor,
     &querier__v1__select_merge_stacktraces_response__descriptor, merge_stacktraces},
    {"/querier.v1.QuerierService/SelectMergeSpanProfile",
     &querier__v1__select_merge_span_profile_request__descriptor,
     &querier__v1__select_merge_span_profile_response__descriptor, merge_span_profile},
    {"/querier.v1.QuerierService/SelectMergeProfile", &querier__v1__select_merge_profile_request__descriptor,
     &google__v1__profile__descriptor, merge_profile},
    {"/querier.v1.QuerierService/SelectSeries", &querier__v1__select_series_request__descriptor,
     &querier__v1__select_series_response__descriptor, select_series},
    {"/querier.v1.QuerierService/Diff", &querier__v1__diff_request__descriptor,
     &querier__v1__diff_response__descriptor, diff},
    {"/querier.v1.QuerierService/GetProfileStats", &types__v1__get_profile_stats_request__descriptor,
     &types__v1__get_profile_stats_response__descriptor, profile_stats},
    {"/querier.v1.QuerierService/AnalyzeQuery", &querier__v1__analyze_query_request__descriptor,
     &querier__v1__analyze_query_response__descriptor, analyze_query},
};

typedef struct binding {
    qry_t *q;
    const method_t *m;
} binding_t;

static void handle(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    const binding_t *b = ctx;
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant;
    ProtobufCMessage *msg = NULL;
    hp_connect_codec_t codec = HP_CONNECT_PROTO;
    hp_buf_t out = HP_BUF_INIT;
    int64_t t0 = hp_mono_ms();
    int rc = hp_tenant_from_request(b->q->cfg, req, &tenant, &err);
    if (rc == 0)
        rc = hp_connect_decode(req, b->m->req, HP_SERVICE_BODY_LIMIT, &msg, &codec, &err);
    if (rc == 0)
        rc = b->m->fn(b->q, tenant, msg, &out, &err);
    if (rc == 0)
        hp_connect_respond_raw(resp, codec, b->m->resp, out.data, out.len);
    else
        hp_connect_error(resp, &err);
    hp_metric_observe(b->q->m_query_seconds, (double)(hp_mono_ms() - t0) / 1000.0);
    hp_buf_fini(&out);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

void qry_register_connect(qry_t *q)
{
    binding_t *bs = hp_arena_alloc(&q->arena, HP_ARRAY_LEN(methods) * sizeof(binding_t));
    for (size_t i = 0; i < HP_ARRAY_LEN(methods); i++) {
        bs[i] = (binding_t){q, &methods[i]};
        hp_http_route(q->svc->http, "POST", methods[i].path, handle, &bs[i]);
    }
}
