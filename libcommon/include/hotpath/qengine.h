/*
 * qengine.h — the query RPCs every process that holds profiles answers
 * (ingesters over their heads and local blocks, store-gateways over blocks
 * in the object store), over whatever heads a provider hands it:
 *
 *   query.ProfileTypes, query.LabelNames, query.LabelValues, query.Series
 *   query.SelectKeys      phase 1 of deduplication: keys of the selected profiles
 *   query.Estimate        bytes and profiles a selection would read (from indexes only)
 *   query.SelectMergeStacktraces, query.SelectMergeProfile, query.SelectSeries
 *
 * Replica deduplication: SelectKeys snapshots the profiles a selection
 * matches and returns one 16-byte key per profile (hp_profile_key) with a
 * session ID; the querier gives each key to one holder and calls Select*
 * with the session and a keep mask, so each merges only the profiles it
 * was given. Sessions live 60 s and are bounded in count and memory.
 *
 * Span profiles: a SelectRequest's span_ids restrict SelectMergeStacktraces
 * and SelectMergeProfile to the samples of those spans (a sample's
 * span_id label); SelectKeys ignores them, so replicas count once as for
 * any select.
 *
 * Sources: the provider lists, for a tenant and time range, the heads it
 * holds (read under their locks) and the blocks it can open as transient
 * heads. Each source has an ID that stays the same while its profiles do
 * (an ingester's block keeps the ID of the head it was flushed from), so a
 * session taken on one can be visited on the other.
 *
 * Not for: where heads and blocks come from (the components), or merging
 * answers of several processes (the querier).
 */
#ifndef HOTPATH_QENGINE_H
#define HOTPATH_QENGINE_H

#include "hotpath/head.h"
#include "hotpath/rpc.h"

/* The most profiles query.ListProfiles lists (the newest; a list's offset
 * + limit in the querier's paging). */
#define HP_QE_LIST_MAX 10000

typedef struct hp_qe_source {
    uint64_t id;
    hp_head_t *head; /* a live head (a reference held), or NULL: a block */
    void *block;     /* the provider's block (a reference held), opened with open_block */
} hp_qe_source_t;

typedef struct hp_qe_sources {
    hp_qe_source_t *v;
    size_t n, cap;
} hp_qe_sources_t;

/* Adds a source (the provider takes references before calling it). */
void hp_qe_sources_add(hp_qe_sources_t *s, uint64_t id, hp_head_t *head, void *block);

typedef struct hp_qe_provider {
    /* Appends the tenant's sources overlapping [start_ns, end_ns] to out,
     * each with a reference. Nothing when the tenant is unknown. */
    void (*sources)(void *ctx, hp_str_t tenant, int64_t start_ns, int64_t end_ns, hp_qe_sources_t *out);
    /* A transient head over block for selection q (NULL: labels only) in
     * *out. 0 with *out NULL skips the block (it is damaged: the provider
     * logs and counts that, and the query goes on without it); an error
     * (the object store is unreachable…) fails the query. */
    int (*open_block)(void *ctx, void *block, const hp_select_t *q, hp_head_t **out, hp_err_t *err);
    /* Drops the references sources() took on blocks (heads are released
     * by the engine). */
    void (*release_block)(void *ctx, void *block);
    void *ctx;
} hp_qe_provider_t;

typedef struct hp_qengine hp_qengine_t;

/* An engine over provider p (copied; its ctx borrowed). */
hp_qengine_t *hp_qengine_new(const hp_qe_provider_t *p);
void hp_qengine_free(hp_qengine_t *qe);

/* Registers the query.* methods on rpc. */
void hp_qengine_register(hp_qengine_t *qe, hp_rpc_server_t *rpc);

#endif
