/*
 * querier.h — the querier's state and what its files share.
 *
 * The querier is stateless: it validates a query, fans it out to every
 * ingester over nng, merges what comes back (trees, pprofs, series, label
 * sets) and renders it in the format the caller asked for.
 */
#ifndef HOTPATH_QUERIER_H
#define HOTPATH_QUERIER_H

#include "hotpath/arena.h"
#include "hotpath/members.h"
#include "hotpath/rpc.h"
#include "hotpath/selector.h"
#include "hotpath/service.h"
#include "hotpath/tree.h"
#include "hotpath/v1/rpc.pb-c.h"

typedef struct qry {
    hp_service_t *svc;        /* borrowed */
    const hp_config_t *cfg;   /* borrowed */
    hp_members_t *members;    /* owned: the ingester ring */
    hp_members_t *gateways;   /* owned: the store-gateway ring; NULL without store-gateways */
    hp_ring_page_t ring_page;
    hp_metric_t *m_query_seconds;
    hp_metric_t *m_replans; /* selections planned again because their data moved */
    hp_arena_t arena; /* route bindings */
} qry_t;

int qry_new(hp_service_t *svc, qry_t **out, hp_err_t *err) HP_WUR;
void qry_free(qry_t *q);

void qry_register_connect(qry_t *q); /* api.c: querier.v1.QuerierService */
void qry_register_render(qry_t *q);  /* render.c: /pyroscope/render & co */
void qry_register_ui(qry_t *q);      /* ui.c: the web UI at / and /assets/ */

/* A validated selection (profile type + selector + time range in ms). */
typedef struct qry_select {
    const char *type_id;  /* borrowed */
    const char *selector; /* borrowed */
    int64_t start_ms, end_ms;
    int64_t align_ms;     /* split intervals start at start + a multiple of this (time series steps); 0: any */
    const uint8_t *profile_id; /* 16 bytes: only that profile; NULL: every one */
    /* The request's StackTraceSelector (borrowed; NULL: none): the call
     * site the samples must lie under, Go PGO trimming for pprof. */
    const Types__V1__StackTraceSelector *stack;
} qry_select_t;

/* Calls method on every process that may hold data of a range starting at
 * start_ms and serves reads — ingesters always, store-gateways when the
 * range reaches their blocks — and waits for them. On success *targets
 * (caller frees with qry_targets_free) holds the replies of those that
 * answered. Up to RF/2 ingesters may be missing (every acknowledged write
 * reached a quorum, so each profile is still on one that answered), and
 * RF-1 store-gateways; more fails the query with 503: a partial answer
 * would be a wrong answer. */
int qry_fanout(qry_t *q, const char *method, hp_str_t tenant, int64_t start_ms, const void *payload, size_t len,
               hp_rpc_target_t **targets, size_t *n, hp_err_t *err) HP_WUR;

/* The internal SelectRequest of a selection (strings borrowed from s). */
void qry_select_request(const qry_select_t *s, Hotpath__V1__SelectRequest *sel);

/* qry_fanout to one kind of process only: ingesters, or (gateways) the
 * store-gateways — none when the range does not reach their blocks. */
int qry_fanout_kind(qry_t *q, bool gateways, const char *method, hp_str_t tenant, int64_t start_ms,
                    const void *payload, size_t len, hp_rpc_target_t **targets, size_t *n, hp_err_t *err) HP_WUR;

/* Encodes the request of a Select* method around a SelectRequest (which
 * carries the deduplication session and keep mask for one ingester). */
typedef void (*qry_encode_fn)(void *ctx, const Hotpath__V1__SelectRequest *sel, hp_buf_t *out);

/* A Select* call with replica deduplication: ingester.SelectKeys on every
 * readable ingester (first phase), one replica chosen per profile key,
 * then method on each ingester with its keep mask (second phase). Every
 * profile counts exactly once, whichever replicas are alive. Replies as
 * qry_fanout. */
int qry_select_fanout(qry_t *q, const char *method, hp_str_t tenant, const qry_select_t *s,
                      qry_encode_fn encode, void *ctx, hp_rpc_target_t **targets, size_t *n,
                      hp_err_t *err) HP_WUR;
void qry_targets_free(hp_rpc_target_t *targets, size_t n);

/* The latest time a query may name, in unix ms: its value in ns (as the
 * ingesters compare times) still fits an int64 (year 2262). */
#define QRY_MAX_TIME_MS (INT64_MAX / 1000000)

/* Checks the selection's type, selector and time range (qry_check_range
 * with end required); HP_EINVAL with the reason otherwise. */
int qry_check_select(const qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_err_t *err) HP_WUR;

/* Checks a time range in unix ms: 0 <= start <= end <= QRY_MAX_TIME_MS,
 * and the tenant's max_query_length limit. end 0 means "no end" (all time for 0/0),
 * refused when end_required or when a max_query_length applies (it would
 * bypass the limit). HP_EINVAL with the reason. */
int qry_check_range(const qry_t *q, hp_str_t tenant, int64_t start_ms, int64_t end_ms, bool end_required,
                    hp_err_t *err) HP_WUR;

/* Refuses a selection that would read more than -querier.max-query-bytes
 * (each process estimates from its indexes before reading a sample).
 * qry_select_fanout checks it; other readers of samples call it first. */
int qry_check_bytes(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_err_t *err) HP_WUR;

/* The merged call tree of a selection (caller frees with hp_tree_free). */
int qry_merge_tree(qry_t *q, hp_str_t tenant, const qry_select_t *s, hp_tree_t **out,
                   hp_err_t *err) HP_WUR;
/* The same with the second phase's request written by encode (ctx): a
 * SelectRequest with more in it, such as a span filter. */
int qry_merge_tree_by(qry_t *q, hp_str_t tenant, const qry_select_t *s, qry_encode_fn encode, void *ctx,
                      hp_tree_t **out, hp_err_t *err) HP_WUR;

/* spans.c: SelectMergeSpanProfile. The span IDs of a span_selector
 * (each 16 hex digits, else HP_EINVAL naming it; at most
 * HP_SELECT_MAX_SPANS), all-zero ones left out (they match no sample):
 * *out (caller frees with free()) holds *n_out of them. */
int qry_parse_span_selector(char *const *ids, size_t n, uint64_t **out, size_t *n_out,
                            hp_err_t *err) HP_WUR;

/* The merged call tree of the samples of a selection whose span is one
 * of spans[0..n) (borrowed); empty when n is 0. Caller frees with
 * hp_tree_free. */
int qry_merge_span_tree(qry_t *q, hp_str_t tenant, const qry_select_t *s, const uint64_t *spans, size_t n,
                        hp_tree_t **out, hp_err_t *err) HP_WUR;

/* The merged pprof of a selection, encoded into out; max_nodes > 0 cuts
 * its call tree to that many nodes, the rest folded into "other"
 * (hp_pprof_builder_add_truncated); 0: the whole profile. */
int qry_merge_pprof(qry_t *q, hp_str_t tenant, const qry_select_t *s, int64_t max_nodes, hp_buf_t *out,
                    hp_err_t *err) HP_WUR;

/* One merged time series: labels, and points sorted by time. */
typedef struct qry_point {
    int64_t ts_ms;
    double value;    /* the sum of the profiles' totals */
    uint64_t count;  /* how many profiles (with QRY_SERIES_COUNTS) */
    int64_t ex_t, ex_value; /* the exemplar's time (ms) and value, to pick the largest */
    const uint8_t *ex;      /* the exemplar, an encoded types.v1.Exemplar in the set's arena; NULL: none */
    size_t ex_len;
} qry_point_t;

enum {
    QRY_SERIES_COUNTS = 1,    /* count the profiles of each point */
    QRY_SERIES_EXEMPLARS = 2, /* the profile with the largest value of each point */
};

typedef struct qry_series {
    hp_labels_t labels; /* strings owned by the qry_series_set_t arena */
    qry_point_t *points;
    size_t n_points, cap_points;
} qry_series_t;

typedef struct qry_series_set {
    hp_arena_t arena;
    qry_series_t *v;
    size_t n, cap;
} qry_series_set_t;

/* Totals over time of a selection, by step and grouped by labels, merged
 * across ingesters (points at the same time summed; flags: QRY_SERIES_*). */
int qry_select_series(qry_t *q, hp_str_t tenant, const qry_select_t *s, char **group_by,
                      size_t n_group_by, int64_t step_ms, unsigned flags, qry_series_set_t *out,
                      hp_err_t *err) HP_WUR;
void qry_series_set_fini(qry_series_set_t *set);

/* The flame graph node limit a request of tenant gets: its own if set
 * (capped at the tenant's maximum), else the tenant's default. */
int64_t qry_max_nodes(const qry_t *q, hp_str_t tenant, int64_t requested);

/* The tenant's effective limits (configuration + runtime overrides). */
void qry_limits(const qry_t *q, hp_str_t tenant, hp_limits_config_t *out);

#endif
