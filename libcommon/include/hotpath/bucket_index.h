/*
 * bucket_index.h — what blocks a tenant has in the object store, without
 * listing the bucket: `<tenant>/bucket-index.json.gz`, written by the
 * compactor that owns the tenant after every change it makes, read by
 * store-gateways and queriers every sync interval.
 *
 * Layout in the bucket (every key starts with a validated tenant ID):
 *   <tenant>/blocks/<ULID>/data                 block data (block.h)
 *   <tenant>/blocks/<ULID>/meta.json            written last: the block exists
 *   <tenant>/blocks/<ULID>/deletion-mark.json   the block is going away
 *   <tenant>/bucket-index.json.gz               this index
 *
 * A block marked for deletion stays readable until it is hard-deleted
 * (deletion delay), so a query planned on an older index still finds it;
 * readers skip marked blocks when they plan.
 *
 * Not for: block contents (block.h) or which instance serves a block.
 */
#ifndef HOTPATH_BUCKET_INDEX_H
#define HOTPATH_BUCKET_INDEX_H

#include "hotpath/block.h"
#include "hotpath/common.h"
#include "hotpath/objstore.h"

#define HP_BUCKET_INDEX_VERSION 1

typedef struct hp_bi_block {
    char ulid[27];
    int64_t min_time_ms, max_time_ms; /* inclusive, as in meta.json */
    uint32_t level;                   /* 1: from an ingester; n + 1: compacted from level n */
    char source[16];                  /* "ingester" | "compactor" */
    uint64_t data_bytes;
    uint64_t num_series, num_profiles, num_samples;
    int64_t deletion_mark_ms;         /* 0: not marked; else when it was marked */
} hp_bi_block_t;

typedef struct hp_bucket_index {
    int64_t updated_ms;
    hp_bi_block_t *blocks; /* sorted by (min_time_ms, ulid); owned */
    size_t n_blocks;
} hp_bucket_index_t;

void hp_bucket_index_init(hp_bucket_index_t *bi);
void hp_bucket_index_fini(hp_bucket_index_t *bi);

/* Reads and parses the tenant's index. HP_ENOTFOUND when there is none
 * yet; HP_EINVAL (naming the tenant) when it is damaged. */
int hp_bucket_index_read(hp_objstore_t *s, const char *tenant, hp_bucket_index_t *out, hp_err_t *err) HP_WUR;

/* Writes bi as the tenant's index (gzip'd JSON; one put, atomic). */
int hp_bucket_index_write(hp_objstore_t *s, const char *tenant, const hp_bucket_index_t *bi, hp_err_t *err) HP_WUR;

/* Builds the tenant's index from the bucket: lists <tenant>/blocks/,
 * takes each block that has a meta.json (entries of prev, when given, are
 * reused without reading meta.json again), and its deletion mark. Blocks
 * without meta.json (an upload in progress or abandoned) are left out. */
int hp_bucket_index_build(hp_objstore_t *s, const char *tenant, const hp_bucket_index_t *prev,
                          hp_bucket_index_t *out, hp_err_t *err) HP_WUR;

/* Writes <tenant>/blocks/<ulid>/deletion-mark.json (time now_ms). */
int hp_block_mark_deletion(hp_objstore_t *s, const char *tenant, const char *ulid, int64_t now_ms,
                           hp_err_t *err) HP_WUR;

/* Calls fn for every tenant that has anything in the bucket (the first
 * path segments that are valid tenant IDs), without listing their
 * objects. A nonzero return from fn stops and is returned. */
typedef int (*hp_tenant_fn)(void *ctx, const char *tenant);
int hp_bucket_tenants(hp_objstore_t *s, hp_tenant_fn fn, void *ctx, hp_err_t *err) HP_WUR;

/* ---- additions: what the compactor needs beyond the index itself ---- */

/* Limits on what hp_bucket_index_read accepts: the stored (gzip'd) object
 * and its JSON once decompressed. */
#define HP_BUCKET_INDEX_MAX_GZ ((size_t)64 << 20)
#define HP_BUCKET_INDEX_MAX_JSON ((size_t)512 << 20)
/* meta.json and deletion-mark.json are read up to this size. */
#define HP_BUCKET_SMALL_OBJECT_MAX ((size_t)1 << 20)

/* The index entry of ulid, or NULL. Borrowed from bi; valid until bi
 * changes. */
hp_bi_block_t *hp_bucket_index_find(const hp_bucket_index_t *bi, const char *ulid);

/* Adds b (copied) to bi, or replaces the entry with its ULID, keeping
 * bi's order. */
void hp_bucket_index_put(hp_bucket_index_t *bi, const hp_bi_block_t *b);

/* Removes ulid's entry; false when there was none. */
bool hp_bucket_index_remove(hp_bucket_index_t *bi, const char *ulid);

/* The index entry of a block from its meta (not marked). */
void hp_bi_block_from_meta(const hp_block_meta_t *m, hp_bi_block_t *out);

/* One block directory under <tenant>/blocks/, as a listing sees it. */
typedef struct hp_bucket_block_files {
    char ulid[27];
    bool has_data, has_meta, has_mark;
    uint64_t data_bytes; /* the data object's listed size */
    size_t n_objects;    /* every object under the directory */
} hp_bucket_block_files_t;

/* Lists <tenant>/blocks/ once (recursively) and gives every directory
 * named by a valid ULID with what it holds, sorted by ULID; directories
 * of other names are ignored. *out: caller frees with free(). Partial
 * blocks (no meta.json: an upload in progress or abandoned, a deletion
 * cut short) are in the list; the index leaves them out. */
int hp_bucket_block_files(hp_objstore_t *s, const char *tenant, hp_bucket_block_files_t **out, size_t *n,
                          hp_err_t *err) HP_WUR;

/* Hard-deletes a block: meta.json first (from then on no index build or
 * reader sees a block there), then every other object under
 * <tenant>/blocks/<ulid>/, deletion-mark.json last (so a deletion cut
 * short leaves a marked partial block that the next attempt finishes). */
int hp_bucket_block_delete(hp_objstore_t *s, const char *tenant, const char *ulid, hp_err_t *err) HP_WUR;

#endif
