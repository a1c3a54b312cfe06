/* query.ProfileTypes, LabelNames, LabelValues and Series: what series
 * exist, over every source in range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/hashmap.h"
#include "hotpath/pprof.h"
#include "hotpath/tree.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"
#include "querier/v1/querier.pb-c.h"
#include "types/v1/types.pb-c.h"

/* ---- shared helpers ---- */

/* Parses a list of selector strings; a series matches when any does (an
 * empty list matches everything). */
typedef struct selectors {
    hp_selector_t *v;
    size_t n;
} selectors_t;

static int parse_selectors(char **matchers, size_t n, selectors_t *out, hp_err_t *err)
{
    out->v = hp_xcalloc(n + 1, sizeof(hp_selector_t));
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = hp_selector_parse(hp_str_c(matchers[i]), &out->v[out->n], err);
        if (rc != 0)
            return rc;
        out->n++;
    }
    return 0;
}

static void selectors_fini(selectors_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        hp_selector_fini(&s->v[i]);
    free(s->v);
}

static bool selectors_match(const selectors_t *s, const hp_series_t *series)
{
    if (s->n == 0)
        return true;
    for (size_t i = 0; i < s->n; i++)
        if (hp_selector_matches(&s->v[i], &series->labels))
            return true;
    return false;
}

static bool in_time(const hp_series_t *s, int64_t start_ns, int64_t end_ns)
{
    return s->n_profiles && s->max_t >= start_ns && s->min_t <= end_ns;
}

/* Adds a NUL-terminated copy of s to a string list in the arena. */
static void push_str(hp_arena_t *a, char ***v, size_t *n, size_t *cap, hp_str_t s)
{
    HP_GROW(*v, *cap, *n + 1);
    (*v)[(*n)++] = hp_arena_strndup(a, s.p, s.n);
}

void qe_pack_into(const ProtobufCMessage *m, hp_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    hp_buf_reserve(out, n);
    protobuf_c_message_pack(m, out->data + out->len);
    out->len += n;
}

/* ---- ProfileTypes, LabelNames, LabelValues, Series ---- */

/* Collects strings (copied into an arena) from the heads. */
typedef struct strs {
    hp_arena_t arena;
    char **v;
    size_t n, cap;
} strs_t;

typedef struct types_ctx {
    strs_t ids;
    int64_t s_ns, e_ns;
} types_ctx_t;

static void types_of_head(void *ctx, const hp_head_t *h)
{
    types_ctx_t *c = ctx;
    bool *used = hp_xcalloc(h->n_types + 1, sizeof(bool));
    for (size_t i = 0; i < h->n_series; i++)
        if (in_time(h->series[i], c->s_ns, c->e_ns))
            used[h->series[i]->type] = true;
    for (size_t i = 0; i < h->n_types; i++)
        if (used[i])
            push_str(&c->ids.arena, &c->ids.v, &c->ids.n, &c->ids.cap, hp_str_c(h->types[i]));
    free(used);
}

/* ProfileTypesResponse for sorted, unique type IDs. */
static void encode_types(char **ids, size_t n, hp_buf_t *out)
{
    Hotpath__V1__ProfileTypesResponse resp = HOTPATH__V1__PROFILE_TYPES_RESPONSE__INIT;
    Types__V1__ProfileType *pts = hp_xcalloc(n + 1, sizeof(*pts));
    Types__V1__ProfileType **ptrs = hp_xcalloc(n + 1, sizeof(*ptrs));
    char **parts = hp_xcalloc(n * 5 + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        hp_profile_type_t pt;
        if (hp_profile_type_parse(hp_str_c(ids[i]), &pt, NULL) != 0)
            continue;
        Types__V1__ProfileType *x = &pts[resp.n_types];
        types__v1__profile_type__init(x);
        char **pp = parts + resp.n_types * 5;
        hp_str_t f[5] = {pt.name, pt.sample_type, pt.sample_unit, pt.period_type, pt.period_unit};
        for (int k = 0; k < 5; k++)
            pp[k] = hp_xstrndup(f[k].p, f[k].n);
        x->id = ids[i];
        x->name = pp[0], x->sample_type = pp[1], x->sample_unit = pp[2];
        x->period_type = pp[3], x->period_unit = pp[4];
        ptrs[resp.n_types++] = x;
    }
    resp.types = ptrs;
    qe_pack_into(&resp.base, out);
    for (size_t i = 0; i < resp.n_types * 5; i++)
        free(parts[i]);
    free(parts);
    free(ptrs);
    free(pts);
}

static int handle_profile_types(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    Hotpath__V1__ProfileTypesRequest *req =
        hotpath__v1__profile_types_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "query.ProfileTypes: malformed request");
    types_ctx_t c;
    memset(&c, 0, sizeof(c));
    hp_arena_init(&c.ids.arena, 0);
    hp_select_time_range(req->start, req->end, &c.s_ns, &c.e_ns);
    hotpath__v1__profile_types_request__free_unpacked(req, NULL);
    int rc = qe_for_each_head(qe, call->tenant, c.s_ns, c.e_ns, types_of_head, &c, err);
    if (rc == 0)
        encode_types(c.ids.v, hp_sort_unique_strs(c.ids.v, c.ids.n), out);
    free(c.ids.v);
    hp_arena_fini(&c.ids.arena);
    return rc;
}

/* query.ProfileStats: whether the tenant has data here, and the times of
 * its oldest and newest profile (types.v1.GetProfileStatsResponse, ms). */
typedef struct stats_ctx {
    int64_t lo, hi; /* ns */
    bool any;
} stats_ctx_t;

static void stats_of_head(void *ctx, const hp_head_t *h)
{
    stats_ctx_t *c = ctx;
    for (size_t i = 0; i < h->n_series; i++) {
        const hp_series_t *s = h->series[i];
        if (s->n_profiles == 0 || s->min_t > s->max_t)
            continue;
        c->lo = c->any ? HP_MIN(c->lo, s->min_t) : s->min_t;
        c->hi = c->any ? HP_MAX(c->hi, s->max_t) : s->max_t;
        c->any = true;
    }
}

static int handle_profile_stats(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    stats_ctx_t c = {0, 0, false};
    int rc = qe_for_each_head(qe, call->tenant, INT64_MIN, INT64_MAX, stats_of_head, &c, err);
    if (rc != 0)
        return rc;
    Types__V1__GetProfileStatsResponse resp = TYPES__V1__GET_PROFILE_STATS_RESPONSE__INIT;
    resp.data_ingested = c.any;
    resp.oldest_profile_time = c.any ? c.lo / 1000000 : 0;
    resp.newest_profile_time = c.any ? c.hi / 1000000 : 0;
    qe_pack_into(&resp.base, out);
    return 0;
}

/* LabelNames and LabelValues: the names, or the values of one label, of
 * the series the matchers select. With cardinality, each distinct
 * (name, value) pair is also kept as (name, hash of value). */
typedef struct pair {
    uint32_t name; /* index into the names kept (out.v) */
    uint64_t h;    /* the value's hash */
} pair_t;

/* Above this many values of one name on one process, the name's hashes
 * are left out and only its count is sent (bounding every reply and the
 * querier's union); the querier then reports the largest count it got. */
#define QE_CARD_MAX_HASHES 10000

typedef struct names_ctx {
    strs_t out;
    const selectors_t *sels;
    const char *label;  /* NULL: names */
    hp_str_t prefix;    /* values: only these */
    bool cardinality;   /* names: with their values' hashes */
    hp_u64map_t seen;   /* hash of (name, value) → 1: pairs kept once */
    hp_u64map_t name_ix; /* hash of a name → its index in out.v (collisions probe on) */
    pair_t *pairs;
    size_t n_pairs, cap_pairs;
    int64_t s_ns, e_ns;
} names_ctx_t;

static uint64_t str_hash(hp_str_t s) { return XXH3_64bits(s.p, s.n); }

/* The index of name among the names kept, added (copied once) when new. */
static uint32_t name_index(names_ctx_t *c, hp_str_t name)
{
    uint64_t key = str_hash(name), ix;
    while (hp_u64map_get(&c->name_ix, key, &ix)) {
        if (hp_str_eq_c(name, c->out.v[ix]))
            return (uint32_t)ix;
        key = hp_mix64(key + 1);
    }
    hp_u64map_put(&c->name_ix, key, c->out.n);
    push_str(&c->out.arena, &c->out.v, &c->out.n, &c->out.cap, name);
    return (uint32_t)(c->out.n - 1);
}

static void add_pair(names_ctx_t *c, hp_str_t name, hp_str_t value)
{
    uint64_t hn = str_hash(name), hv = str_hash(value);
    bool found;
    hp_u64map_upsert(&c->seen, hp_mix64(hn) ^ hv, 1, &found);
    if (found)
        return;
    HP_GROW(c->pairs, c->cap_pairs, c->n_pairs + 1);
    c->pairs[c->n_pairs++] = (pair_t){name_index(c, name), hv};
}

static bool has_prefix(hp_str_t s, hp_str_t prefix)
{
    return s.n >= prefix.n && memcmp(s.p, prefix.p, prefix.n) == 0;
}

static void names_of_head(void *ctx, const hp_head_t *h)
{
    names_ctx_t *c = ctx;
    for (size_t i = 0; i < h->n_series; i++) {
        const hp_series_t *s = h->series[i];
        if (!in_time(s, c->s_ns, c->e_ns) || !selectors_match(c->sels, s))
            continue;
        if (c->label) {
            hp_str_t v = hp_labels_get(&s->labels, c->label);
            if (v.p && has_prefix(v, c->prefix))
                push_str(&c->out.arena, &c->out.v, &c->out.n, &c->out.cap, v);
        } else if (c->cardinality) {
            for (size_t k = 0; k < s->labels.n; k++)
                add_pair(c, s->labels.v[k].name, s->labels.v[k].value);
        } else {
            for (size_t k = 0; k < s->labels.n; k++)
                push_str(&c->out.arena, &c->out.v, &c->out.n, &c->out.cap, s->labels.v[k].name);
        }
    }
}

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return x->name != y->name ? (x->name < y->name ? -1 : 1) : x->h < y->h ? -1 : x->h > y->h;
}

/* The names with their values' count and hashes (distinct pairs), as
 * LabelNamesResponse names, estimated_cardinality and value_hashes; a
 * name with more than QE_CARD_MAX_HASHES values gets its count only. */
static void encode_cardinality(names_ctx_t *c, hp_buf_t *out)
{
    hp_qsort(c->pairs, c->n_pairs, sizeof(pair_t), cmp_pair);
    size_t n = c->out.n; /* every name kept has at least one pair */
    int64_t *card = hp_xcalloc(n + 1, sizeof(int64_t));
    ProtobufCBinaryData *hashes = hp_xcalloc(n + 1, sizeof(*hashes));
    uint8_t *raw = hp_xmalloc(c->n_pairs * 8 + 1);
    for (size_t i = 0; i < c->n_pairs; i++) {
        uint32_t k = c->pairs[i].name;
        if (card[k]++ == 0)
            hashes[k].data = raw + i * 8;
        hashes[k].len += 8;
        hp_store_le64(raw + i * 8, c->pairs[i].h);
    }
    for (size_t k = 0; k < n; k++)
        if (card[k] > QE_CARD_MAX_HASHES)
            hashes[k] = (ProtobufCBinaryData){0, NULL};
    char **names = c->out.v;
    Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
    resp.names = names;
    resp.n_names = n;
    resp.estimated_cardinality = card;
    resp.n_estimated_cardinality = n;
    resp.value_hashes = hashes;
    resp.n_value_hashes = n;
    qe_pack_into(&resp.base, out);
    free(raw);
    free(hashes);
    free(card);
}

typedef struct names_query {
    char **matchers;
    size_t n_matchers;
    const char *label; /* NULL: names */
    hp_str_t prefix;
    int64_t limit; /* values: at most this many (≤ 0: all) */
    bool cardinality;
    int64_t start, end;
} names_query_t;

static int names_query(hp_qengine_t *qe, hp_str_t tenant, const names_query_t *nq, hp_buf_t *out, hp_err_t *err)
{
    selectors_t sels;
    int rc = parse_selectors(nq->matchers, nq->n_matchers, &sels, err);
    names_ctx_t c;
    memset(&c, 0, sizeof(c));
    hp_arena_init(&c.out.arena, 0);
    hp_u64map_init(&c.seen, 64);
    hp_u64map_init(&c.name_ix, 64);
    c.sels = &sels;
    c.label = nq->label;
    c.prefix = nq->prefix;
    c.cardinality = nq->cardinality && nq->label == NULL;
    hp_select_time_range(nq->start, nq->end, &c.s_ns, &c.e_ns);
    if (rc == 0)
        rc = qe_for_each_head(qe, tenant, c.s_ns, c.e_ns, names_of_head, &c, err);
    if (rc == 0 && c.cardinality) {
        encode_cardinality(&c, out);
    } else if (rc == 0 && c.label) {
        Types__V1__LabelValuesResponse resp = TYPES__V1__LABEL_VALUES_RESPONSE__INIT;
        resp.n_names = hp_sort_unique_strs(c.out.v, c.out.n);
        resp.names = c.out.v;
        if (nq->limit > 0 && resp.n_names > (size_t)nq->limit) {
            resp.n_names = (size_t)nq->limit;
            resp.truncated = true;
        }
        qe_pack_into(&resp.base, out);
    } else if (rc == 0) {
        Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
        resp.n_names = hp_sort_unique_strs(c.out.v, c.out.n);
        resp.names = c.out.v;
        qe_pack_into(&resp.base, out);
    }
    free(c.out.v);
    free(c.pairs);
    hp_u64map_fini(&c.seen);
    hp_u64map_fini(&c.name_ix);
    hp_arena_fini(&c.out.arena);
    selectors_fini(&sels);
    return rc;
}

static int handle_label_names(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Types__V1__LabelNamesRequest *req =
        types__v1__label_names_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "query.LabelNames: malformed request");
    names_query_t nq = {req->matchers, req->n_matchers, NULL, HP_STR(""), 0, req->include_cardinality,
                        req->start, req->end};
    int rc = names_query(ctx, call->tenant, &nq, out, err);
    types__v1__label_names_request__free_unpacked(req, NULL);
    return rc;
}

static int handle_label_values(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Types__V1__LabelValuesRequest *req =
        types__v1__label_values_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "query.LabelValues: malformed request");
    names_query_t nq = {req->matchers, req->n_matchers, req->name, hp_str_c(req->prefix ? req->prefix : ""),
                        req->limit, false, req->start, req->end};
    int rc = names_query(ctx, call->tenant, &nq, out, err);
    types__v1__label_values_request__free_unpacked(req, NULL);
    return rc;
}

static bool wanted_name(const Querier__V1__SeriesRequest *req, hp_str_t name)
{
    if (req->n_label_names == 0)
        return true;
    for (size_t i = 0; i < req->n_label_names; i++)
        if (hp_str_eq_c(name, req->label_names[i]))
            return true;
    return false;
}

/* One types.v1.Labels message (field 2 of SeriesResponse) for a series. */
static void encode_series_labels(hp_buf_t *b, const Querier__V1__SeriesRequest *req, const hp_series_t *s)
{
    size_t m = hp_pb_begin_len(b, 2);
    for (size_t k = 0; k < s->labels.n; k++) {
        if (!wanted_name(req, s->labels.v[k].name))
            continue;
        size_t lm = hp_pb_begin_len(b, 1);
        hp_pb_put_bytes(b, 1, s->labels.v[k].name.p, s->labels.v[k].name.n);
        hp_pb_put_bytes(b, 2, s->labels.v[k].value.p, s->labels.v[k].value.n);
        hp_pb_end_len(b, lm);
    }
    hp_pb_end_len(b, m);
}

typedef struct series_ctx {
    const Querier__V1__SeriesRequest *req;
    const selectors_t *sels;
    int64_t s_ns, e_ns;
    hp_buf_t *out;
} series_ctx_t;

static void series_of_head(void *ctx, const hp_head_t *h)
{
    series_ctx_t *c = ctx;
    for (size_t i = 0; i < h->n_series; i++)
        if (in_time(h->series[i], c->s_ns, c->e_ns) && selectors_match(c->sels, h->series[i]))
            encode_series_labels(c->out, c->req, h->series[i]);
}

/* Series: label sets (restricted to label_names) of matching series. The
 * querier deduplicates them across heads and ingesters. */
static int handle_series(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Querier__V1__SeriesRequest *req =
        querier__v1__series_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "query.Series: malformed request");
    selectors_t sels;
    int rc = parse_selectors(req->matchers, req->n_matchers, &sels, err);
    series_ctx_t c = {req, &sels, 0, 0, out};
    hp_select_time_range(req->start, req->end, &c.s_ns, &c.e_ns);
    if (rc == 0)
        rc = qe_for_each_head(ctx, call->tenant, c.s_ns, c.e_ns, series_of_head, &c, err);
    selectors_fini(&sels);
    querier__v1__series_request__free_unpacked(req, NULL);
    return rc;
}

void qe_register_labels(hp_qengine_t *qe, hp_rpc_server_t *rpc)
{
    hp_rpc_server_handle(rpc, "query.ProfileTypes", handle_profile_types, qe);
    hp_rpc_server_handle(rpc, "query.ProfileStats", handle_profile_stats, qe);
    hp_rpc_server_handle(rpc, "query.LabelNames", handle_label_names, qe);
    hp_rpc_server_handle(rpc, "query.LabelValues", handle_label_values, qe);
    hp_rpc_server_handle(rpc, "query.Series", handle_series, qe);
}
