/*
 * block.h — hotpath's immutable block format: what an ingester's head
 * becomes when it is flushed, and what store-gateways and compactors read.
 * One block holds one tenant's profiles of one time window: the series
 * index (labels → series, postings by label name/value), the profiles
 * (series, time, ID, total, samples as stack ID + value and, when they
 * have one, span ID) sorted by series
 * then time, and the symbols (strings, mappings, functions, locations,
 * stack tree) they refer to. The byte layout is documented in
 * docs/BLOCK_FORMAT.md.
 *
 * A block is two objects: `data` (sections, each zstd-compressed and
 * CRC32C-checksummed, with a footer that indexes them) and `meta.json`.
 * The reader fetches by byte range: the footer first, then only the
 * sections — and, for samples, only the per-series pages — a query needs.
 * Every read is bounds-checked; a bad checksum, a truncated section or an
 * unknown version is an error (HP_EINVAL with a message naming the block
 * and section), never a crash.
 *
 * Not for: where blocks are stored (objstore.h) or which blocks a query
 * reads (the components decide).
 */
#ifndef HOTPATH_BLOCK_H
#define HOTPATH_BLOCK_H

#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/labels.h"
#include "hotpath/symdb.h"

/* The version this build writes; it reads every version from
 * HP_BLOCK_MIN_VERSION on (version 1: one page per series; versions 1 and
 * 2: no span IDs). */
#define HP_BLOCK_VERSION 3
#define HP_BLOCK_MIN_VERSION 1

/* A new ULID (26 Crockford base32 characters + NUL) for time ms. */
void hp_ulid_new(int64_t ms, char out[27]);

/* ---- writing ---- */

typedef struct hp_block_profile_in {
    int64_t t; /* unix ns */
    uint8_t id[16];
    int64_t total;
    const uint32_t *stacks; /* stack IDs of the symdb, ascending by (stack, span) with no pair twice */
    const int64_t *values;
    const uint64_t *spans; /* span ID per sample (0: none), or NULL when no sample has one */
    uint32_t n;
} hp_block_profile_in_t;

typedef struct hp_block_series_in {
    const hp_labels_t *labels;            /* sorted; includes __profile_type__ */
    const hp_block_profile_in_t *profiles; /* by time (the writer sorts a copy if not) */
    size_t n_profiles;
    int64_t period;                       /* the series' pprof period */
} hp_block_series_in_t;

/* A ULID as a value (26 characters + NUL). */
typedef struct hp_ulid {
    char s[27];
} hp_ulid_t;

typedef struct hp_block_meta {
    char ulid[27];
    char tenant[151];
    int64_t min_time_ms, max_time_ms; /* inclusive: the profiles' extent */
    uint64_t num_series, num_profiles, num_samples;
    uint32_t version;
    uint32_t level;     /* compaction level: 1 = written by an ingester */
    char source[16];    /* "ingester" | "compactor" */
    uint64_t data_bytes;
    /* compaction.sources (Thanos's field): the level-1 blocks whose
     * profiles this block holds, sorted, unique. Borrowed: hp_block_write
     * writes them when n_sources > 0 (a compacted block); a block without
     * them (n_sources == 0) is its own only source. hp_block_meta_parse
     * checks them but never fills them (it allocates nothing, so a parsed
     * meta needs no freeing): read them with hp_block_meta_sources. */
    const hp_ulid_t *sources;
    size_t n_sources;
} hp_block_meta_t;

/* Encodes a block from a symdb and its series (sorted by labels by the
 * writer). meta->ulid, tenant, level and source are the caller's; the
 * writer fills times, stats, version and data_bytes. data and meta_json
 * are appended to. */
int hp_block_write(const hp_symdb_t *db, const hp_block_series_in_t *series, size_t n_series,
                   hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_err_t *err) HP_WUR;

/* Parses meta.json (strictly: unknown versions are HP_EINVAL). */
int hp_block_meta_parse(const void *json, size_t n, hp_block_meta_t *meta, hp_err_t *err) HP_WUR;

/* The block's level-1 sources from meta.json: compaction.sources, or the
 * block's own ULID when it lists none. *out is an array of *n_out ULIDs,
 * sorted and unique; the caller frees it with free(). HP_EINVAL as
 * hp_block_meta_parse, or for a source that is not a ULID. */
int hp_block_meta_sources(const void *json, size_t n, hp_ulid_t **out, size_t *n_out, hp_err_t *err) HP_WUR;

/* ---- reading ---- */

/* Reads len bytes at off of the block's data object into out (appended).
 * Returns 0 or an HP_E* class with err set. */
typedef int (*hp_block_fetch_fn)(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err);

typedef struct hp_block hp_block_t;

/* Opens a block of data_bytes bytes: reads and checks the footer and the
 * series index (labels, postings, per-series page table). name (copied)
 * identifies the block in error messages. ctx is borrowed and must stay
 * valid while the block is open. An open block is immutable:
 * hp_block_read_page/_range and hp_block_read_symbols may run on several threads
 * at once if fetch may. */
int hp_block_open(const char *name, uint64_t data_bytes, hp_block_fetch_fn fetch, void *ctx,
                  hp_block_t **out, hp_err_t *err) HP_WUR;
void hp_block_close(hp_block_t *b);

/* Memory an open block holds (its decoded series index and postings). */
size_t hp_block_mem_bytes(const hp_block_t *b);

size_t hp_block_n_series(const hp_block_t *b);
/* Borrowed, valid while b is open; sorted. */
const hp_labels_t *hp_block_series_labels(const hp_block_t *b, size_t i);
uint64_t hp_block_series_fingerprint(const hp_block_t *b, size_t i); /* hp_labels_fingerprint */
int64_t hp_block_series_period(const hp_block_t *b, size_t i);
int64_t hp_block_series_min_time(const hp_block_t *b, size_t i); /* ns */
int64_t hp_block_series_max_time(const hp_block_t *b, size_t i); /* ns */
uint64_t hp_block_series_page_bytes(const hp_block_t *b, size_t i); /* decompressed: what a query reads */
uint64_t hp_block_series_n_profiles(const hp_block_t *b, size_t i);

/* The series whose label name has value (sorted ascending, borrowed). */
void hp_block_postings(const hp_block_t *b, const char *name, const char *value, const uint32_t **series,
                       size_t *n);

/* One series' profiles, loaded from its page. */
typedef struct hp_block_profile {
    int64_t t;
    uint8_t id[16];
    int64_t total;
    const uint32_t *stacks; /* into the page */
    const int64_t *values;
    const uint64_t *spans; /* into the page; NULL when no sample has a span */
    uint32_t n;
} hp_block_profile_t;

typedef struct hp_block_page {
    hp_block_profile_t *profiles; /* sorted by time */
    size_t n_profiles;
    void *mem; /* owned */
} hp_block_page_t;

/* Fetches, checks and decodes all of series i's profiles (every page of
 * it, as one hp_block_page_t). Free with hp_block_page_fini. */
int hp_block_read_page(hp_block_t *b, size_t i, hp_block_page_t *page, hp_err_t *err) HP_WUR;
/* The same for only the pages of series i that hold a profile within
 * [start_ns, end_ns]: every profile in range is in *page, and so may be
 * some just outside it (pages are read whole). Fetches those pages as one
 * byte range. */
int hp_block_read_range(hp_block_t *b, size_t i, int64_t start_ns, int64_t end_ns, hp_block_page_t *page,
                        hp_err_t *err) HP_WUR;
void hp_block_page_fini(hp_block_page_t *page);

/* Fetches, checks and decodes the symbols into a read-only symdb (stack
 * IDs and symbol IDs are the ones the block's pages use). The caller frees
 * it with hp_symdb_free. */
int hp_block_read_symbols(hp_block_t *b, hp_symdb_t **out, hp_err_t *err) HP_WUR;

/* Fetches every section in 1 MiB ranges and checks each one's stored
 * CRC32C against the table — the whole object, without decoding it. What
 * an uploader runs before it trusts a block written to local disk. */
int hp_block_verify(hp_block_t *b, hp_err_t *err) HP_WUR;

#endif
