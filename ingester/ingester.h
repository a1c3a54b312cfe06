/*
 * ingester.h — the ingester's state: per-tenant heads (head.h) by time
 * window, the WAL, local blocks and their upload, and the RPC handlers that
 * write them; queries go through the query engine (qengine.h).
 */
#ifndef HOTPATH_INGESTER_H
#define HOTPATH_INGESTER_H

#include <pthread.h>

#include "hotpath/arena.h"
#include "hotpath/block.h"
#include "hotpath/hashmap.h"
#include "hotpath/head.h"
#include "hotpath/labels.h"
#include "hotpath/members.h"
#include "hotpath/objstore.h"
#include "hotpath/qengine.h"
#include "hotpath/rpc.h"
#include "hotpath/selector.h"
#include "hotpath/service.h"
#include "hotpath/symdb.h"
#include "hotpath/wal.h"
#include "hotpath/v1/rpc.pb-c.h"

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
    _Atomic int64_t uploaded_ms; /* wall clock: when it reached the object store */
    _Atomic int damaged; /* a read or verification failed: skipped from then on */
    _Atomic int refs;
} ing_block_t;

/* A tenant: its heads, sorted by window start, and its flushed blocks. */
typedef struct ing_tenant {
    char *name;
    pthread_mutex_t lock; /* guards the heads and blocks arrays */
    hp_head_t **heads;
    size_t n_heads, cap_heads;
    ing_block_t **blocks;
    size_t n_blocks, cap_blocks;
    /* The active series: those of the open heads, each counted once. */
    pthread_mutex_t active_mu; /* guards the three below; taken after a head's lock */
    hp_u64map_t active;        /* series fingerprint → open heads holding it (0: none; swept) */
    size_t n_active;           /* entries above 0 */
    size_t n_idle;             /* entries at 0 */
} ing_tenant_t;

typedef struct ing {
    hp_service_t *svc;      /* borrowed */
    const hp_config_t *cfg; /* borrowed */
    hp_rpc_server_t *rpc;
    char *instance_id;      /* owned */
    hp_member_self_t self;  /* what ring.Probe answers */
    hp_qengine_t *qe;
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

/* The active-series set (what max_*_series_per_tenant limit): series of
 * h from index `from` on join it when they are created (h's write lock
 * held); h's series leave it when h stops taking writes, unless another
 * open head holds them. */
void ing_active_add(ing_tenant_t *t, const hp_head_t *h, size_t from);
void ing_active_remove(ing_tenant_t *t, hp_head_t *h);
/* How many of fps (distinct) are not active, and how many are. */
void ing_active_count(ing_tenant_t *t, const uint64_t *fps, size_t n, size_t *new_series, size_t *active);

/* An open head of tenant t for the window time_ns falls in, created if
 * needed, with a reference and a writer slot taken: the caller appends to
 * the WAL under its segment, commits, then calls ing_head_write_done. */
hp_head_t *ing_head_for_write(ing_t *g, ing_tenant_t *t, int64_t time_ns);
void ing_head_write_done(hp_head_t *h);

/* The head with this WAL segment (replay), created (open) if absent; a
 * reference and a writer slot taken as with ing_head_for_write. NULL when
 * the segment name is malformed. */
hp_head_t *ing_head_for_segment(ing_t *g, ing_tenant_t *t, hp_str_t segment);

/* Blocks (blocks.c). */

/* Opens the local blocks under blocks_dir (at start, before the replay). */
int ing_blocks_load(ing_t *g, hp_err_t *err) HP_WUR;
void ing_block_unref(ing_block_t *b);
/* A transient head over b for selection q (q NULL: labels only; the
 * block's symbols are loaded on first use and shared), or NULL when b is damaged (a bad checksum, a
 * truncated section, an unknown version…), which is logged and counted
 * the first time and skipped from then on. The data is not lost: an
 * uploaded block is in the object store; one not yet uploaded still has
 * its WAL segment, and the next start replays it (ing_blocks_load drops a
 * block that fails verification). */
hp_head_t *ing_block_source(ing_t *g, ing_block_t *b, const hp_select_t *q);
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
    hp_head_t **heads;
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

/* Ingestion (ingest.c): RPC handlers. */
void ing_register_ingest(ing_t *g);

/* The query engine's view of the ingester (blocks.c): its heads and local
 * blocks. */
void ing_qe_provider(ing_t *g, hp_qe_provider_t *p);

#endif
