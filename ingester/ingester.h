/*
 * ingester.h — the ingester's state: per-tenant in-memory heads holding
 * series, their profiles (stack ID + value per sample) and the tenant's
 * symbols, and the RPC handlers that write and read them.
 */
#ifndef HOTPATH_INGESTER_H
#define HOTPATH_INGESTER_H

#include <pthread.h>

#include "hotpath/arena.h"
#include "hotpath/hashmap.h"
#include "hotpath/labels.h"
#include "hotpath/members.h"
#include "hotpath/rpc.h"
#include "hotpath/selector.h"
#include "hotpath/service.h"
#include "hotpath/symdb.h"
#include "hotpath/wal.h"
#include "hotpath/v1/rpc.pb-c.h"

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

/* A tenant's head. The lock guards everything below it: ingestion writes,
 * queries read. */
typedef struct ing_tenant {
    char *name;
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
} ing_tenant_t;

/* One profile a deduplication session selected: where it lives and what
 * identifies it on every replica. */
typedef struct ing_ref {
    uint32_t series; /* index into the tenant's series (series are never removed) */
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
    hp_wal_t *wal;
    pthread_t replay_thread;
    bool replay_started;
    hp_metric_t *m_profiles, *m_samples, *m_series, *m_bytes, *m_push_errors;
    hp_metric_t *m_wal_replayed, *m_wal_damaged;
} ing_t;

int ing_new(hp_service_t *svc, ing_t **out, hp_err_t *err) HP_WUR;
int ing_start(ing_t *g, hp_err_t *err) HP_WUR;
void ing_stop(ing_t *g);
void ing_free(ing_t *g);

/* Heads (head.c). */

/* The tenant's head, created when create is true; NULL when absent. */
ing_tenant_t *ing_tenant(ing_t *g, hp_str_t name, bool create);
void ing_tenant_free(ing_tenant_t *t);

/* Series lookup/creation under the tenant's write lock. labels must be
 * sorted; they are copied when the series is new. */
ing_series_t *ing_series_get(ing_tenant_t *t, const hp_labels_t *labels, uint64_t fp, bool *created);

/* Appends a profile to s unless the same (time, ID) was stored before.
 * pairs are (stack, value) sorted by stack with no duplicates. Returns
 * false when it was a replay. */
bool ing_series_append(ing_tenant_t *t, ing_series_t *s, int64_t time_ns, const uint8_t id[16],
                       const uint32_t *stacks, const int64_t *values, size_t n);

/* The index of a profile type ID in the tenant, added if new. */
uint32_t ing_type_index(ing_tenant_t *t, hp_str_t type_id);

/* Replays the WAL into the heads (ingest.c). */
int ing_replay(ing_t *g, hp_err_t *err) HP_WUR;

/* Ingestion (ingest.c) and queries (query.c): RPC handlers. */
void ing_register_ingest(ing_t *g);
void ing_register_queries(ing_t *g);
void ing_register_select_series(ing_t *g); /* timeline.c */

/* A query's selection, parsed once. */
typedef struct ing_select {
    hp_selector_t sel;
    char *type_id;    /* NULL: any type */
    int64_t start_ns, end_ns;
    uint64_t session; /* 0: every selected profile */
    const uint8_t *keep; /* with a session: one bit per session key */
    size_t keep_len;
} ing_select_t;

/* Visits each profile a selection covers: all of them, or — with a
 * deduplication session — those whose keep bit is set. Tenant read lock
 * held by the caller. */
typedef void (*ing_visit_fn)(void *ctx, uint32_t series_index, const ing_series_t *s,
                             const ing_profile_t *p);
int ing_visit(ing_t *g, const ing_tenant_t *t, hp_str_t tenant, const ing_select_t *q, ing_visit_fn fn,
              void *ctx, hp_err_t *err) HP_WUR;

/* Parses a SelectRequest (r may be NULL: a malformed request). */
int ing_parse_select(const Hotpath__V1__SelectRequest *r, ing_select_t *q, hp_err_t *err) HP_WUR;
void ing_select_fini(ing_select_t *q);

/* Sessions (sessions.c). */
void ing_sessions_init(ing_sessions_t *ss);
void ing_sessions_fini(ing_sessions_t *ss);
void ing_register_sessions(ing_t *g);

/* The deduplication key of a profile: identical on every replica. */
void ing_profile_key(const ing_series_t *s, int64_t t, const uint8_t id[16], uint8_t key[16]);

/* True when series s matches the selection (type, labels, time). */
bool ing_select_series(const ing_tenant_t *t, const ing_series_t *s, const ing_select_t *q);

/* Index range [*lo, *hi) of s's profiles inside the selection's time. */
void ing_profile_range(const ing_series_t *s, int64_t start_ns, int64_t end_ns, size_t *lo, size_t *hi);

#endif
