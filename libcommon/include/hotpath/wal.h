/*
 * wal.h — the ingester's write-ahead log, kept in RocksDB in the
 * ingester's data directory: every accepted write is appended here before
 * it is acknowledged, replayed into memory at start, and dropped once the
 * data it holds is durably elsewhere (a flushed block).
 *
 * Records belong to segments (an ingester uses one per head: tenant and
 * time window) so that a flushed head's records go in one range delete.
 * Appends are group-committed: concurrent appends share one RocksDB write
 * and, in HP_WAL_SYNC_BATCH mode, one fsync; in HP_WAL_SYNC_INTERVAL mode
 * writes reach the OS at once (a process crash loses nothing) and are
 * fsynced every interval (a machine crash may lose that interval).
 *
 * A torn or corrupt tail is cut at the last good record by RocksDB's
 * point-in-time recovery; a record whose bytes are damaged is reported by
 * replay (counted) and skipped.
 *
 * Not for: blocks (block.h) or anything read by queries.
 */
#ifndef HOTPATH_WAL_H
#define HOTPATH_WAL_H

#include "hotpath/common.h"

typedef enum { HP_WAL_SYNC_BATCH = 0, HP_WAL_SYNC_INTERVAL = 1 } hp_wal_sync_t;

typedef struct hp_wal_config {
    const char *dir;          /* created if missing */
    hp_wal_sync_t sync;
    int64_t sync_interval_ms; /* HP_WAL_SYNC_INTERVAL only; 0 = 1000 */
} hp_wal_config_t;

typedef struct hp_wal hp_wal_t;

/* Opens (creating) the WAL and starts its commit thread. */
int hp_wal_open(const hp_wal_config_t *cfg, hp_wal_t **out, hp_err_t *err) HP_WUR;

/* Stops the commit thread (pending appends are committed first) and
 * closes the database. NULL-safe. */
void hp_wal_close(hp_wal_t *w);

/* Appends one record to segment (≤ 255 bytes, no NUL) and returns once it
 * is durable per the sync mode. Thread-safe. The bytes are copied. */
int hp_wal_append(hp_wal_t *w, hp_str_t segment, const void *rec, size_t n, hp_err_t *err) HP_WUR;

/* Appends n records at once (segments[i], recs[i], lens[i]): they commit
 * in one batch. Returns 0 when all are durable. */
int hp_wal_append_many(hp_wal_t *w, const hp_str_t *segments, const void *const *recs, const size_t *lens,
                       size_t n, hp_err_t *err) HP_WUR;

/* Calls fn for every record, segment by segment, each in append order.
 * fn returns 0 to go on; a nonzero return is counted as a damaged record
 * (the record is skipped, replay goes on). */
typedef int (*hp_wal_replay_fn)(void *ctx, hp_str_t segment, const uint8_t *rec, size_t n);

typedef struct hp_wal_replay_stats {
    uint64_t records;
    uint64_t bytes;
    uint64_t damaged; /* malformed keys, or fn refused the record */
} hp_wal_replay_stats_t;

int hp_wal_replay(hp_wal_t *w, hp_wal_replay_fn fn, void *ctx, hp_wal_replay_stats_t *stats,
                  hp_err_t *err) HP_WUR;

/* Deletes every record of segment (durable before it returns). */
int hp_wal_drop(hp_wal_t *w, hp_str_t segment, hp_err_t *err) HP_WUR;

/* Bytes the database holds on disk (approximate), for metrics. */
uint64_t hp_wal_disk_bytes(hp_wal_t *w);

#endif
