/*
 * ingester.h — the ingester's state: per-tenant in-memory heads holding
 * series, their profiles (stack ID + value per sample) and the tenant's
 * symbols, and the RPC handlers that write and read them.
 */
#ifndef HOTPATH_INGESTER_H
#define HOTPATH_INGESTER_H

#include <pthread.h>

#include "hotpath/arena.h"
#include "hotpath/block.h"
#include "hotpath/hashmap.h"
#include "hotpath/labels.h"
#include "hotpath/members.h"
#include "hotpath/objstore.h"
#include "hotpath/rpc.h"
#include "hotpath/selector.h"
#include "hotpath/service.h"
#include "hotpath/symdb.h"
#include "hotpath/wal.h"
#include "hotpath/v1/rpc.pb-c.h"

typedef struct ing_select ing_select_t;

/* One profile of one series. Samples are (stack ID, value) pairs sorted by
 * stack ID, stored in the series' sample arrays at [off, off + n). */
typedef struct ing_profile {
    int64_t t; /* unix ns */
    uint8_t id[16];
    uint32_t off, n;
    int64_t total;
} ing_profile_t;

typedef struct ing_series {
    hp_labels_t labels; /* sorted; strings in the tenant's arena */
    uint64_t fp;
    uint32_t type;      /* index into the tenant's profile types */
    int64_t period;     /* the latest profile's pprof period */
    int64_t min_t, max_t;
    ing_profile_t *profiles;
    size_t n_profiles, cap_profiles;
    uint32_t *stacks;
    int64_t *values;
    size_t n_samples, cap_samples;
} ing_series_t;

enum { ING_HEAD_OPEN = 0, ING_HEAD_FLUSHING = 1, ING_HEAD_FLUSHED = 2 };

/* A head: one tenant's profiles of one time window, in memory, until it is
 * flushed to a block. `lock` guards the data (ingestion writes, queries
 * read); the counters below it are atomics or under `wmu`. A head is
 * reference counted: the tenant holds one reference while the head is in
 * its list, and each query or write holds one while it uses it. */
typedef struct ing_head {
    uint64_t id;
    char *tenant;
    char segment[320];      /* its WAL segment: "<tenant>/<window ms>/<id>" */
    int64_t start_ns, end_ns; /* the window [start, end) */
    pthread_rwlock_t lock;
    hp_arena_t arena;
    hp_symdb_t *symdb;
    ing_series_t **series;
    size_t n_series, cap_series;
    hp_u64map_t by_fp;      /* fingerprint → series index */
    hp_u64map_t seen;       /* hash of (series, time, profile ID) → 1: replays are stored once */
    char **types;           /* profile type IDs, owned */
    size_t n_types, cap_types;
    size_t n_profiles, n_samples;
    _Atomic int refs;
    _Atomic int state;      /* ING_HEAD_* */
    _Atomic int64_t last_write_ms; /* monotonic */
    _Atomic size_t bytes;   /* approximate memory held */
    pthread_mutex_t wmu;    /* writers: pushes between their WAL append and their commit */
    pthread_cond_t wcv;
    int writers;
    bool symdb_borrowed;    /* a transient head read from a block: the block owns the symdb */
} ing_head_t;

/* A block this ingester flushed, on its local disk, served to queries until
 * it is older than -querier.query-store-after (store-gateways take over).
 * Reference counted like heads; its ID shares the heads' ID space, so
 * deduplication sessions can point at it. */
typedef struct ing_block {
    uint64_t id;
    char *tenant;
    char dir[4096];     /* local directory: data, meta.json, segment, uploaded */
    char segment[320];  /* the WAL segment of the head it holds */
    hp_block_meta_t meta;
    int fd;             /* the local data file */
    hp_block_t *b;
    pthread_mutex_t mu; /* guards symdb, loaded on first use */
    hp_symdb_t *symdb;
    _Atomic int uploaded;
    _Atomic int damaged; /* a read or verification failed: skipped from then on */
    _Atomic int refs;
} ing_block_t;

/* A tenant: its heads, sorted by window start, and its flushed blocks. */
typedef struct ing_tenant {
    char *name;
    pthread_mutex_t lock; /* guards the heads and blocks arrays */
    ing_head_t **heads;
    size_t n_heads, cap_heads;
    ing_block_t **blocks;
    size_t n_blocks, cap_blocks;
} ing_tenant_t;

/* One profile a deduplication session selected: where it lives and what
 * identifies it on every replica. */
typedef struct ing_ref {
    uint64_t head;   /* the head's ID (a block flushed from a head keeps it) */
    uint64_t fp;     /* the series' fingerprint: indexes differ between a head and its block */
    int64_t t;
    uint8_t id[16];
} ing_ref_t;

/* A snapshot taken by ingester.SelectKeys, kept for the querier's second
 * phase until it expires. */
typedef struct ing_session {
    uint64_t id;
    char *tenant;
    int64_t expires_ms; /* monotonic */
    ing_ref_t *refs;
    size_t n;
} ing_session_t;

typedef struct ing_sessions {
    pthread_mutex_t lock;
    ing_session_t **v;
    size_t n, cap;
    size_t bytes;  /* held by all sessions' refs */
    uint64_t next; /* session IDs: a random start, then +1 */
} ing_sessions_t;

typedef struct ing {
    hp_service_t *svc;      /* borrowed */
    const hp_config_t *cfg; /* borrowed */
    hp_rpc_server_t *rpc;
    char *instance_id;      /* owned */
    hp_member_self_t self;  /* what ring.Probe answers */
    ing_sessions_t sessions;
    pthread_mutex_t tenants_lock;
    ing_tenant_t **tenants;
    size_t n_tenants, cap_tenants;
    _Atomic uint64_t next_head_id;
    hp_wal_t *wal;
    pthread_t replay_thread;
    bool replay_started;
    hp_objstore_t *store;
    char *blocks_dir;        /* <data_dir>/blocks */
    pthread_t flush_thread;
    bool flush_started;
    pthread_mutex_t flush_mu; /* guards flush_stop; flush_cv wakes the loop */
    pthread_cond_t flush_cv;
    bool flush_stop;
    char **flushed_segments; /* WAL segments already in local blocks (replay skips them) */
    size_t n_flushed_segments;
    hp_metric_t *m_flushes, *m_flush_errors, *m_uploads, *m_upload_errors, *m_blocks;
    hp_metric_t *m_profiles, *m_samples, *m_series, *m_bytes, *m_push_errors;
    hp_metric_t *m_wal_replayed, *m_wal_damaged, *m_damaged_blocks;
} ing_t;

int ing_new(hp_service_t *svc, ing_t **out, hp_err_t *err) HP_WUR;
int ing_start(ing_t *g, hp_err_t *err) HP_WUR;
void ing_stop(ing_t *g);
void ing_free(ing_t *g);

/* Tenants and heads (head.c). */

/* The tenant called name, created when create is true; NULL when absent. */
ing_tenant_t *ing_tenant(ing_t *g, hp_str_t name, bool create);
void ing_tenant_free(ing_tenant_t *t);

/* An open head of tenant t for the window time_ns falls in, created if
 * needed, with a reference and a writer slot taken: the caller appends to
 * the WAL under its segment, commits, then calls ing_head_write_done. */
ing_head_t *ing_head_for_write(ing_t *g, ing_tenant_t *t, int64_t time_ns);
void ing_head_write_done(ing_head_t *h);

/* The head with this WAL segment (replay), created (open) if absent; a
 * reference and a writer slot taken as with ing_head_for_write. NULL when
 * the segment name is malformed. */
ing_head_t *ing_head_for_segment(ing_t *g, ing_tenant_t *t, hp_str_t segment);

/* The heads overlapping [start_ns, end_ns], each with a reference taken
 * (release with ing_heads_release). Returns the count; *out is malloc'd. */
size_t ing_heads_in_range(ing_tenant_t *t, int64_t start_ns, int64_t end_ns, ing_head_t ***out);
void ing_heads_release(ing_head_t **heads, size_t n);

/* Calls fn for each head of tenant overlapping [start_ns, end_ns], with
 * that head's read lock held. Nothing when the tenant is unknown. */
typedef void (*ing_head_fn)(void *ctx, const ing_head_t *h);
void ing_for_each_head(ing_t *g, hp_str_t tenant, int64_t start_ns, int64_t end_ns, ing_head_fn fn, void *ctx);
void ing_head_unref(ing_head_t *h);

/* Series lookup/creation under the head's write lock. labels must be
 * sorted; they are copied when the series is new. */
ing_series_t *ing_series_get(ing_head_t *h, const hp_labels_t *labels, uint64_t fp, bool *created);

/* Appends a profile to s unless the same (time, ID) was stored before.
 * pairs are (stack, value) sorted by stack with no duplicates. Returns
 * false when it was a replay. */
bool ing_series_append(ing_head_t *h, ing_series_t *s, int64_t time_ns, const uint8_t id[16],
                       const uint32_t *stacks, const int64_t *values, size_t n);

/* The index of a profile type ID in the head, added if new. */
uint32_t ing_type_index(ing_head_t *h, hp_str_t type_id);

/* Blocks (blocks.c). */

/* Opens the local blocks under blocks_dir (at start, before the replay). */
int ing_blocks_load(ing_t *g, hp_err_t *err) HP_WUR;
void ing_block_unref(ing_block_t *b);
/* A transient head over block b holding every series' labels and, for the
 * series the selection q matches (q NULL: none), their profiles; the
 * block's symbols loaded on first use and shared. Free with
 * ing_head_unref. */
int ing_block_head(ing_block_t *b, const ing_select_t *q, ing_head_t **out, hp_err_t *err) HP_WUR;
/* ing_block_head for a query: NULL when b is damaged (a bad checksum, a
 * truncated section, an unknown version…), which is logged and counted
 * the first time and skipped from then on. The data is not lost: an
 * uploaded block is in the object store; one not yet uploaded still has
 * its WAL segment, and the next start replays it (ing_blocks_load drops a
 * block that fails verification). */
ing_head_t *ing_block_source(ing_t *g, ing_block_t *b, const ing_select_t *q);
/* Marks b damaged (once: logs and counts it). */
void ing_block_damaged(ing_t *g, ing_block_t *b, const hp_err_t *why);
/* Writes a block's files into dir (a new directory) durably. */
int ing_block_write_local(const char *dir, const hp_buf_t *data, const hp_buf_t *meta_json,
                          const char *segment, hp_err_t *err) HP_WUR;
/* Opens the local block in dir (not added anywhere). */
int ing_block_open(ing_t *g, const char *tenant, const char *dir, ing_block_t **out, hp_err_t *err) HP_WUR;

/* The heads and blocks of tenant t overlapping [start_ns, end_ns], taken
 * under one lock so a head being replaced by its block is seen once. Each
 * with a reference; release with ing_sources_release. */
typedef struct ing_sources {
    ing_head_t **heads;
    size_t n_heads;
    ing_block_t **blocks;
    size_t n_blocks;
} ing_sources_t;
void ing_sources_in_range(ing_tenant_t *t, int64_t start_ns, int64_t end_ns, ing_sources_t *out);
void ing_sources_release(ing_sources_t *s);

/* Flushing (flush.c). */
int ing_flush_start(ing_t *g, hp_err_t *err) HP_WUR;
/* Stops the flush loop; with flush_all, flushes and uploads every head
 * first, within -ingester.leave-timeout. */
void ing_flush_stop(ing_t *g, bool flush_all);

/* Replays the WAL into the heads (ingest.c). */
int ing_replay(ing_t *g, hp_err_t *err) HP_WUR;

/* Ingestion (ingest.c) and queries (query.c): RPC handlers. */
void ing_register_ingest(ing_t *g);
void ing_register_queries(ing_t *g);
void ing_register_select_series(ing_t *g); /* timeline.c */

/* A query's selection, parsed once. */
struct ing_select {
    hp_selector_t sel;
    char *type_id;    /* NULL: any type */
    int64_t start_ns, end_ns;
    uint64_t session; /* 0: every selected profile */
    const uint8_t *keep; /* with a session: one bit per session key */
    size_t keep_len;
};

/* Visits each profile of head h a selection covers: all of them, or —
 * with a deduplication session — those whose keep bit is set (refs, from
 * ing_session_refs, sorted by head). The head's read lock is held by the
 * caller. */
typedef void (*ing_visit_fn)(void *ctx, const ing_head_t *h, uint32_t series_index, const ing_series_t *s,
                             const ing_profile_t *p);
int ing_visit(const ing_head_t *h, const ing_select_t *q, const ing_ref_t *refs, size_t n_refs,
              ing_visit_fn fn, void *ctx, hp_err_t *err) HP_WUR;

/* The kept refs of the selection's session (NULL/0 without a session),
 * sorted by head ID. Caller frees *refs. */
int ing_session_refs(ing_t *g, hp_str_t tenant, const ing_select_t *q, ing_ref_t **refs, size_t *n,
                     hp_err_t *err) HP_WUR;

/* The part of refs that belongs to head id (refs sorted by head). */
void ing_refs_of_head(const ing_ref_t *refs, size_t n, uint64_t head, size_t *lo, size_t *hi);

/* Runs a selection over the tenant's heads: for each head in range (with
 * its read lock held) begin(ctx, h), then visit for each selected profile
 * of that head (or each kept one of the session), then end(ctx, h). begin
 * and end may be NULL. With a session, every kept profile must still be
 * found (HP_EUNAVAIL "query again" if a head was flushed in between). */
typedef void (*ing_head_step_fn)(void *ctx, const ing_head_t *h);
int ing_select_heads(ing_t *g, hp_str_t tenant, const ing_select_t *q, ing_head_step_fn begin,
                     ing_visit_fn visit, ing_head_step_fn end, void *ctx, hp_err_t *err) HP_WUR;

/* Parses a SelectRequest (r may be NULL: a malformed request). */
int ing_parse_select(const Hotpath__V1__SelectRequest *r, ing_select_t *q, hp_err_t *err) HP_WUR;
void ing_select_fini(ing_select_t *q);

/* Sessions (sessions.c). */
void ing_sessions_init(ing_sessions_t *ss);
void ing_sessions_fini(ing_sessions_t *ss);
void ing_register_sessions(ing_t *g);

/* The deduplication key of a profile: identical on every replica. */
void ing_profile_key(const ing_series_t *s, int64_t t, const uint8_t id[16], uint8_t key[16]);

/* True when series s of head h matches the selection (type, labels, time). */
bool ing_select_series(const ing_head_t *h, const ing_series_t *s, const ing_select_t *q);

/* Index range [*lo, *hi) of s's profiles inside the selection's time. */
void ing_profile_range(const ing_series_t *s, int64_t start_ns, int64_t end_ns, size_t *lo, size_t *hi);

#endif
