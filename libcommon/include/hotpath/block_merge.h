/*
 * block_merge.h — merging open blocks into one new block: what the
 * compactor does to the RF blocks that replicated ingesters write for one
 * time window, to the blocks of adjacent windows, and to a block that a
 * deletion request rewrites (one input and a drop callback).
 *
 * Series are matched by their labels, the symbols the kept profiles use
 * are imported into one new symdb (unused symbols are left behind;
 * samples keep their span IDs), and profiles are deduplicated by (series,
 * time, profile ID): replicas hold identical copies, and the first
 * input's copy is kept. The new meta records compaction.sources, the
 * level-1 blocks the result holds, so a compactor that crashed after
 * uploading it can see its inputs are covered.
 *
 * Memory: the inputs are read one series page at a time (each input's
 * series index is sorted by labels, so series are merged in one ordered
 * pass); the output's samples (12 bytes each after deduplication, 20 in
 * a series with span IDs) and the symbols are held until the block is
 * encoded.
 *
 * Not for: choosing what to merge (the compactor plans), or fetching
 * blocks (the caller opens them with its own fetch function).
 */
#ifndef HOTPATH_BLOCK_MERGE_H
#define HOTPATH_BLOCK_MERGE_H

#include "hotpath/block.h"
#include "hotpath/common.h"

typedef struct hp_block_merge_input {
    hp_block_t *block;           /* borrowed; open for the call */
    const hp_symdb_t *symbols;   /* borrowed: hp_block_read_symbols of block */
    const hp_block_meta_t *meta; /* borrowed: level, and sources (meta->ulid when it lists none) */
} hp_block_merge_input_t;

/* True to leave out the profile at time_ns of the series whose labels are
 * given (borrowed for the call). For deletion requests. */
typedef bool (*hp_block_drop_fn)(void *ctx, const hp_labels_t *labels, int64_t time_ns);

typedef struct hp_block_merge_stats {
    uint64_t profiles_in;  /* read from the inputs */
    uint64_t duplicates;   /* a (series, time, ID) already taken from another input */
    uint64_t dropped;      /* left out by the drop callback */
    uint64_t profiles_out; /* in the new block; 0 means nothing is left */
} hp_block_merge_stats_t;

/* Merges in[0..n) (1 ≤ n ≤ 1024) into one block, appended to data and
 * meta_json as hp_block_write does. meta->ulid and meta->tenant are the
 * caller's; the merge sets level (the inputs' highest + 1), source
 * ("compactor"), the stats and times, and meta->sources to the sorted
 * union of the inputs' sources — an array the caller frees with
 * free((void *)meta->sources), also on error (it is then NULL). drop may
 * be NULL. stats may be NULL. Errors: a page or the writer's
 * (HP_EINVAL naming the block and series; a fetch error keeps its
 * class); data and meta_json are then as they were. */
int hp_block_merge(const hp_block_merge_input_t *in, size_t n, hp_block_drop_fn drop, void *drop_ctx,
                   hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_block_merge_stats_t *stats,
                   hp_err_t *err) HP_WUR;

#endif
