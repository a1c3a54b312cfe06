/*
 * gateway.h — the store-gateway: serves queries over blocks in the object
 * store. It knows every tenant's blocks from the bucket indexes (re-read
 * every -store-gateway.sync-interval), answers for the blocks the
 * store-gateway ring gives it (key = block ULID, -store-gateway.
 * replication-factor owners each), and reads them by byte range. Block
 * indexes and symbols are loaded on first use and kept in an LRU cache of
 * -store-gateway.cache-bytes; pages are read per query. So its memory is
 * the cache plus a few hundred bytes per known block, however many blocks
 * it owns.
 */
#ifndef HOTPATH_STORE_GATEWAY_H
#define HOTPATH_STORE_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>

#include "hotpath/block.h"
#include "hotpath/bucket_index.h"
#include "hotpath/members.h"
#include "hotpath/objstore.h"
#include "hotpath/qengine.h"
#include "hotpath/rpc.h"
#include "hotpath/service.h"

typedef struct sg sg_t;

/* A block the gateway knows, from a bucket index. Reference counted: the
 * tenant's list holds one, each query using it one. Its loaded parts (the
 * open block's index, its symbols) come and go with the cache. */
typedef struct sg_block {
    uint64_t id; /* the query engine's source ID */
    char *tenant;
    hp_bi_block_t meta;
    char key[256]; /* "<tenant>/blocks/<ULID>/data" */
    sg_t *g;
    _Atomic int refs;
    _Atomic int damaged; /* a read failed on damaged data: skipped */
    pthread_mutex_t mu;  /* guards b, symdb, pins; held while loading them */
    hp_block_t *b;       /* NULL until loaded, and after eviction */
    hp_symdb_t *symdb;
    int pins;                     /* queries reading b or symdb: not evictable */
    size_t bytes;                 /* what b and symdb hold, as the cache counts it */
    struct sg_block *prev, *next; /* the cache's LRU list (cache_mu) */
    bool in_lru;
} sg_block_t;

/* A tenant's blocks by min time, replaced as a whole at each sync. */
typedef struct sg_tenant {
    char *name;
    sg_block_t **blocks;
    size_t n;
} sg_tenant_t;

struct sg {
    hp_service_t *svc;      /* borrowed */
    const hp_config_t *cfg; /* borrowed */
    hp_rpc_server_t *rpc;
    hp_qengine_t *qe;
    hp_objstore_t *store;
    char *instance_id;
    hp_member_self_t self;
    hp_members_t *ring; /* store-gateways; NULL: this one owns every block */
    _Atomic uint64_t next_id;

    pthread_mutex_t tenants_mu; /* guards the tenants array and each tenant's list */
    sg_tenant_t **tenants;
    size_t n_tenants, cap_tenants;

    pthread_mutex_t cache_mu; /* guards the LRU list and cache_bytes */
    sg_block_t lru;           /* sentinel: lru.next is the most recently used */
    size_t cache_bytes;

    pthread_t sync_thread;
    bool sync_started, stop;
    pthread_mutex_t sync_mu; /* guards stop; sync_cv wakes the loop */
    pthread_cond_t sync_cv;
    _Atomic int synced; /* the first sync is done */

    hp_metric_t *m_blocks, *m_cache_bytes, *m_loads, *m_evictions, *m_sync_errors, *m_damaged;
};

int sg_new(hp_service_t *svc, sg_t **out, hp_err_t *err) HP_WUR;
int sg_start(sg_t *g, hp_err_t *err) HP_WUR;
void sg_stop(sg_t *g);
void sg_free(sg_t *g);

/* Blocks and the cache (blocks.c). */
sg_block_t *sg_block_new(sg_t *g, const char *tenant, const hp_bi_block_t *meta);
void sg_block_unref(sg_block_t *b);
/* True when this gateway serves b under the current ring. */
bool sg_owns(sg_t *g, const sg_block_t *b);
void sg_qe_provider(sg_t *g, hp_qe_provider_t *p);

/* Syncing bucket indexes (sync.c). */
int sg_sync_start(sg_t *g, hp_err_t *err) HP_WUR;
void sg_sync_stop(sg_t *g);
void sg_tenants_free(sg_t *g);

#endif
