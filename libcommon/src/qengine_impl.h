/* The query engine's parts shared by its files (qengine*.c). */
#ifndef HOTPATH_QENGINE_IMPL_H
#define HOTPATH_QENGINE_IMPL_H

#include "hotpath/qengine.h"

/* One profile a deduplication session selected: where it lives and what
 * identifies it on every replica. */
typedef struct qe_ref {
    uint64_t source; /* the source's ID */
    uint64_t fp;     /* the series' fingerprint: series indexes differ between a head and its block */
    int64_t t;
    uint8_t id[16];
} qe_ref_t;

/* A snapshot taken by SelectKeys, kept for the querier's second phase. */
typedef struct qe_session {
    uint64_t id;
    char *tenant;
    int64_t expires_ms; /* monotonic */
    qe_ref_t *refs;
    size_t n;
} qe_session_t;

typedef struct qe_sessions {
    pthread_mutex_t lock;
    qe_session_t **v; /* oldest first */
    size_t n, cap;
    size_t bytes;  /* held by all sessions' refs */
    uint64_t next; /* session IDs: a random start, then +1 */
} qe_sessions_t;

struct hp_qengine {
    hp_qe_provider_t p;
    qe_sessions_t sessions;
};

void qe_sessions_init(qe_sessions_t *ss);
void qe_sessions_fini(qe_sessions_t *ss);

/* Calls fn for each source of tenant overlapping [start_ns, end_ns] (blocks
 * as label-only transient heads), with that head's read lock held. An
 * error opening a block stops it. */
typedef void (*qe_head_fn)(void *ctx, const hp_head_t *h);
int qe_for_each_head(hp_qengine_t *qe, hp_str_t tenant, int64_t start_ns, int64_t end_ns, qe_head_fn fn,
                     void *ctx, hp_err_t *err) HP_WUR;

/* Runs a selection: for each source in range (its read lock held)
 * begin(ctx, h), then visit for each selected profile (or each kept one of
 * the session), then end(ctx, h). begin and end may be NULL. With a
 * session every kept profile must still be found (HP_EUNAVAIL "query
 * again" otherwise). */
typedef void (*qe_visit_fn)(void *ctx, const hp_head_t *h, uint32_t series_index, const hp_series_t *s,
                            const hp_series_profile_t *p);
typedef void (*qe_step_fn)(void *ctx, const hp_head_t *h);
int qe_select(hp_qengine_t *qe, hp_str_t tenant, const hp_select_t *q, qe_step_fn begin, qe_visit_fn visit,
              qe_step_fn end, void *ctx, hp_err_t *err) HP_WUR;

/* Handlers, by file. */
int qe_handle_select_keys(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err);
void qe_register_labels(hp_qengine_t *qe, hp_rpc_server_t *rpc);    /* qengine_labels.c */
void qe_register_merges(hp_qengine_t *qe, hp_rpc_server_t *rpc);    /* qengine_merge.c */
void qe_register_timeline(hp_qengine_t *qe, hp_rpc_server_t *rpc);  /* qengine_series.c */
void qe_register_list(hp_qengine_t *qe, hp_rpc_server_t *rpc);      /* qengine_list.c */

/* Appends a packed protobuf message to out. */
void qe_pack_into(const ProtobufCMessage *m, hp_buf_t *out);

#endif
