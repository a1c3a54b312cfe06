/*
 * head.h — profiles in memory, as queries read them: a head holds one
 * tenant's series of one time window (labels, fingerprint, profiles sorted
 * by time, each profile's samples as stack ID + value, and span ID when
 * the samples carry one) and the symbols
 * those stack IDs refer to. An ingester writes heads as pushes arrive; a
 * block read from disk or the object store becomes a transient head for
 * the series one query selects (hp_head_from_block). Either way the query
 * engine (qengine.h) reads them the same way.
 *
 * Also here: a query's selection (profile type, label selector, time, an
 * optional deduplication session and span set), parsed once from a
 * SelectRequest.
 *
 * Concurrency: `lock` guards the data — writers take it exclusively,
 * readers shared. A head is reference counted; whoever drops the last
 * reference frees it. The writer fields (state, writers, last write, WAL
 * segment) are used by the ingester; readers ignore them.
 *
 * Not for: how heads are grouped, flushed or logged (the ingester), or
 * the block format (block.h).
 */
#ifndef HOTPATH_HEAD_H
#define HOTPATH_HEAD_H

#include <pthread.h>
#include <stdatomic.h>

#include "hotpath/arena.h"
#include "hotpath/block.h"
#include "hotpath/hashmap.h"
#include "hotpath/labels.h"
#include "hotpath/selector.h"
#include "hotpath/symdb.h"
#include "hotpath/v1/rpc.pb-c.h"

/* One profile of one series. Its samples are (stack ID, span, value)
 * sorted by (stack ID, span) with no pair twice, at [off, off + n) of the
 * series' sample arrays. */
typedef struct hp_series_profile {
    int64_t t; /* unix ns */
    uint8_t id[16];
    uint32_t off, n;
    int64_t total;
} hp_series_profile_t;

typedef struct hp_series {
    hp_labels_t labels; /* sorted; strings in the head's arena */
    uint64_t fp;        /* hp_labels_fingerprint */
    uint32_t type;      /* index into the head's profile types */
    int64_t period;     /* the latest profile's pprof period */
    int64_t min_t, max_t;
    hp_series_profile_t *profiles; /* sorted by time (appended ones of one time: by ID) */
    size_t n_profiles, cap_profiles;
    uint64_t block_bytes; /* a block's series without its profiles loaded: what reading them would cost */
    uint64_t block_profiles;
    uint32_t *stacks;
    int64_t *values;
    /* Parallel to stacks/values, allocated once the series stores a sample
     * with a span (0 for the samples before it and for those without):
     * NULL for a series that never had one, which then costs nothing more. */
    uint64_t *spans;
    size_t n_samples, cap_samples;
} hp_series_t;

enum { HP_HEAD_OPEN = 0, HP_HEAD_FLUSHING = 1, HP_HEAD_FLUSHED = 2 };

typedef struct hp_head {
    uint64_t id; /* unique in the process; deduplication sessions name heads by it */
    char *tenant;
    int64_t start_ns, end_ns; /* the window [start, end) */
    pthread_rwlock_t lock;
    hp_arena_t arena;
    hp_symdb_t *symdb;
    bool symdb_borrowed;  /* a transient head: the block owns the symdb */
    hp_series_t **series; /* series are never removed, so indexes are stable */
    size_t n_series, cap_series;
    hp_u64map_t by_fp; /* fingerprint → series index; collisions probe fp+1, fp+2, … */
    /* Postings (live heads; NULL for a block's transient head): hash of a
     * label (name, value) → the indices of the series that have it,
     * ascending. A hash shared by two labels merges their lists, which
     * only costs the matcher a few more series to reject. */
    hp_u64map_t postings_ix; /* label hash → index into postings */
    struct hp_head_posting {
        uint32_t *v;
        size_t n, cap;
    } *postings;
    size_t n_postings, cap_postings;
    bool has_postings;
    char **types;      /* profile type IDs, owned */
    size_t n_types, cap_types;
    size_t n_profiles, n_samples;
    _Atomic int refs;
    _Atomic size_t bytes; /* approximate memory held */
    /* the ingester's */
    char segment[320];             /* WAL segment: "<tenant>/<window ms>/<id hex>" */
    _Atomic int state;             /* HP_HEAD_* */
    _Atomic int64_t last_write_ms; /* monotonic */
    pthread_mutex_t wmu;           /* writers between their WAL append and their commit */
    pthread_cond_t wcv;
    int writers;
} hp_head_t;

/* A new empty head with one reference. symdb: NULL for a new one the head
 * owns, or a borrowed one (transient heads). Writers are preferred over
 * readers on `lock`, so a stream of queries cannot starve pushes. */
hp_head_t *hp_head_new(uint64_t id, const char *tenant, int64_t start_ns, int64_t end_ns, hp_symdb_t *symdb);
void hp_head_ref(hp_head_t *h);
void hp_head_unref(hp_head_t *h); /* NULL-safe */

/* The series with these labels (sorted) and fingerprint, created (labels
 * copied into the head) when new. Write lock held. */
hp_series_t *hp_head_series(hp_head_t *h, const hp_labels_t *labels, uint64_t fp, bool *created);
/* The series with these labels (fingerprint fp), or NULL; creates nothing.
 * Read lock held. */
const hp_series_t *hp_head_find_series(const hp_head_t *h, const hp_labels_t *labels, uint64_t fp);

/* Appends a profile to s unless the same (time, ID) is already stored.
 * stacks/values/spans: n samples sorted by (stack, span) with no pair
 * twice; spans (borrowed, like the others) may be NULL when no sample has
 * a span (0 = none). Returns false when it was already there. Write lock
 * held. */
bool hp_head_append(hp_head_t *h, hp_series_t *s, int64_t time_ns, const uint8_t id[16],
                    const uint32_t *stacks, const int64_t *values, const uint64_t *spans, size_t n);

/* The index of a profile type ID in the head, added if new. */
uint32_t hp_head_type_index(hp_head_t *h, hp_str_t type_id);

/* Index range [*lo, *hi) of s's profiles with start_ns ≤ t ≤ end_ns. */
void hp_series_profile_range(const hp_series_t *s, int64_t start_ns, int64_t end_ns, size_t *lo, size_t *hi);

/* The deduplication key of a profile: identical on every replica and in
 * every block that holds it. */
void hp_profile_key(uint64_t series_fp, int64_t t, const uint8_t id[16], uint8_t key[16]);

/* ---- selections ---- */

typedef struct hp_select {
    hp_selector_t sel;
    char *type_id;            /* NULL: any type */
    int64_t start_ns, end_ns; /* inclusive */
    uint64_t session;         /* 0: every selected profile */
    const uint8_t *keep;      /* with a session: one bit per session key (borrowed from the request) */
    size_t keep_len;
    const uint8_t *profile_id; /* 16 bytes: only that profile (borrowed); NULL: every one */
    /* Span filter (SelectMergeSpanProfile): with by_span, only samples
     * whose span is one of spans (sorted, unique, no 0; owned; possibly
     * none, which matches nothing) count. Without: every sample. */
    bool by_span;
    uint64_t *spans;
    size_t n_spans;
    /* StackTraceSelector (borrowed from the request): only the samples
     * whose stack lies under the call site count (callsite.h; none: all),
     * and SelectMergeProfile's Go PGO trimming (0 / false: none). */
    char *const *call_site; /* the array owned, the names borrowed */
    size_t n_call_site;
    bool pgo; /* go_pgo given: SelectMergeProfile ignores the call site, as Pyroscope does */
    uint32_t pgo_keep_locations;
    bool pgo_aggregate_callees;
} hp_select_t;

/* The most span IDs one selection may name. */
#define HP_SELECT_MAX_SPANS 65536

/* Parses a SelectRequest (r may be NULL: a malformed request). Times are
 * ms; end 0 means unbounded. */
int hp_select_parse(const Hotpath__V1__SelectRequest *r, hp_select_t *q, hp_err_t *err) HP_WUR;
void hp_select_fini(hp_select_t *q);

/* Milliseconds [start, end] to an inclusive nanosecond range (saturating:
 * the values come from a peer); a value ≤ 0 is unbounded. */
void hp_select_time_range(int64_t start_ms, int64_t end_ms, int64_t *start_ns, int64_t *end_ns);

/* The series of h the selection can match, narrowed by the postings of
 * its profile type and equality matchers: *idx gets the shortest list (n
 * indices, ascending; borrowed, valid under the read lock). Returns false
 * when nothing narrows it (no postings, or no usable matcher): then every
 * series is a candidate. A candidate still has to pass hp_select_series.
 * Read lock held. */
bool hp_head_candidates(const hp_head_t *h, const hp_select_t *q, const uint32_t **idx, size_t *n);

/* True when series s of head h matches the selection (type, labels, time). */
bool hp_select_series(const hp_head_t *h, const hp_series_t *s, const hp_select_t *q);

/* True when a sample with this span (0: none) counts in the selection:
 * always without a span filter; with one, when span is in it. */
bool hp_select_span(const hp_select_t *q, uint64_t span);

/* ---- blocks as heads ---- */

/* A transient head over an open block. Without q (label queries): every
 * series' labels and time range. With q: the series the block's postings
 * allow for q's profile type and equality matchers (all of them when none
 * narrows), and for those q selects, their profiles read from the block's
 * pages. symdb is the block's symbols
 * (borrowed; may be NULL when q is NULL). One reference; HP_EINVAL when a
 * page is damaged. */
int hp_head_from_block(hp_block_t *b, hp_symdb_t *symdb, uint64_t id, const char *tenant,
                       const hp_select_t *q, hp_head_t **out, hp_err_t *err) HP_WUR;

#endif
