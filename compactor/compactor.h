/*
 * compactor.h — the compactor's state and the functions its files share.
 *
 * The compactor owns tenants (all of them, or those a ring of compactors
 * gives it by a hash of the tenant ID) and, every compaction interval,
 * for each one: rebuilds the bucket index, cleans up partial blocks,
 * marks blocks that a newer block already covers (what a crash between
 * an upload and its marks leaves), applies retention and deletion
 * requests, merges the blocks of each complete window (the RF replicas
 * first, then larger windows), and deletes marked blocks once their
 * deletion delay is over. Every change is made so that a crash at any
 * point leaves no visible partial block and loses nothing: a block is
 * visible only once its meta.json is written (after its data), and its
 * sources are marked only after it and the index naming it are written.
 */
#ifndef HOTPATH_COMPACTOR_H
#define HOTPATH_COMPACTOR_H

#include <pthread.h>

#include "hotpath/bucket_index.h"
#include "hotpath/hashmap.h"
#include "hotpath/members.h"
#include "hotpath/objstore.h"
#include "hotpath/rpc.h"
#include "hotpath/selector.h"
#include "hotpath/service.h"

#define CMP_MAX_RANGES 16
#define CMP_MAX_GROUP 64 /* blocks merged at once; a larger window takes more cycles */

/* The level-1 blocks a block holds (its meta.json's compaction.sources). */
typedef struct cmp_lineage {
    char ulid[27];
    hp_ulid_t *src; /* owned; sorted */
    size_t n;
} cmp_lineage_t;

/* What the compactor keeps of a tenant between cycles (loop thread only). */
typedef struct cmp_tenant {
    char *name;
    hp_bucket_index_t index; /* the last one built or written */
    cmp_lineage_t *lineage;  /* of the blocks in index, by ULID */
    size_t n_lineage, cap_lineage;
    hp_u64map_t clean; /* hash of (request ID, block ULID): a block a request does not touch */
    bool seen;         /* still in the bucket at the last cycle */
} cmp_tenant_t;

/* A deletion request, as stored at <tenant>/deletion-requests/<id>.json. */
typedef struct cmp_request {
    char id[27];
    char kind[8];   /* "series" | "tenant" */
    char *selector; /* owned; "" for a tenant request */
    hp_selector_t sel;
    int64_t start_ms, end_ms; /* inclusive */
    int64_t created_ms, finished_ms;
    char state[12]; /* "pending" | "done" */
    uint64_t blocks_rewritten, blocks_deleted;
} cmp_request_t;

typedef struct cmp {
    hp_service_t *svc;      /* borrowed */
    const hp_config_t *cfg; /* borrowed */
    hp_objstore_t *store;
    hp_rpc_server_t *rpc;
    char *instance_id;
    hp_member_self_t self;
    hp_members_t *members; /* NULL: -compactor.ring.members is empty, every tenant is ours */
    hp_ring_page_t ring_page;
    int64_t ranges[CMP_MAX_RANGES];
    size_t n_ranges;
    cmp_tenant_t **tenants; /* loop thread only */
    size_t n_tenants;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards stop, run_now, cycles */
    pthread_cond_t cv;
    bool stop, run_now;
    uint64_t cycles;
    hp_metric_t *m_runs, *m_run_failures, *m_compactions, *m_compaction_failures, *m_blocks_compacted;
    hp_metric_t *m_bytes_written, *m_blocks_deleted, *m_partial_deleted, *m_tenants, *m_last_success;
    hp_metric_t *m_requests_done;
} cmp_t;

int cmp_new(hp_service_t *svc, cmp_t **out, hp_err_t *err) HP_WUR;
int cmp_start(cmp_t *c, hp_err_t *err) HP_WUR;
void cmp_stop(cmp_t *c);
void cmp_free(cmp_t *c);

/* Asks the loop for a cycle now (POST /compactor/run); returns the number
 * of cycles finished so far. Thread-safe. */
uint64_t cmp_trigger(cmp_t *c);

/* Whether a stop was asked for (the loop ends at its next step). */
bool cmp_stopping(cmp_t *c);

/* Whether this compactor owns tenant (the ring's choice for its hash). */
bool cmp_owns(cmp_t *c, const char *tenant);

/* ---- one tenant's cycle (cycle.c) ---- */

/* Runs every step for tenant t. Errors are logged and counted; the
 * return says whether every step succeeded. */
bool cmp_tenant_cycle(cmp_t *c, cmp_tenant_t *t, int64_t now_ms);
void cmp_tenant_free(cmp_tenant_t *t);

/* Writes t's index to the bucket (logged on failure). */
int cmp_write_index(cmp_t *c, cmp_tenant_t *t, hp_err_t *err) HP_WUR;

/* Marks block ulid of t for deletion (object and index), counted under
 * reason. */
int cmp_mark(cmp_t *c, cmp_tenant_t *t, const char *ulid, const char *reason, int64_t now_ms,
             hp_err_t *err) HP_WUR;

/* The lineage of block ulid (loaded from meta.json on first use), or NULL
 * with err set. */
const cmp_lineage_t *cmp_lineage(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *b, hp_err_t *err);

/* ---- planning (plan.c) ---- */

/* The groups of unmarked blocks of bi to merge for range r: blocks
 * entirely inside one r-aligned window that ended at least delay_ms
 * before now, two or more per window, at most CMP_MAX_GROUP each. Writes
 * indices into bi->blocks to idx (room for bi->n_blocks) and group ends
 * to ends (room for bi->n_blocks); returns the number of groups. */
size_t cmp_plan(const hp_bucket_index_t *bi, int64_t r, int64_t now_ms, int64_t delay_ms, size_t *idx,
                size_t *ends);

/* The blocks of bi that a newer one covers: every source of theirs is a
 * source of an unmarked block of a higher level (or of the same level and
 * a larger ULID). Writes indices to out (room for bi->n_blocks). */
size_t cmp_covered(cmp_t *c, cmp_tenant_t *t, size_t *out, hp_err_t *err);

/* ---- merging blocks from the store (compact.c) ---- */

/* What a merge drops: the tenant's pending deletion requests. */
typedef struct cmp_drop {
    const cmp_request_t *reqs;
    size_t n;
} cmp_drop_t;

bool cmp_drop_profile(void *ctx, const hp_labels_t *labels, int64_t time_ns);

/* Merges blocks group[0..n) of t into one new block (uploaded data then
 * meta.json, added to the index, index written), then marks the group
 * (index written again). When nothing is left after drop, no block is
 * written and the group is only marked. *out_ulid (27 bytes, may be NULL)
 * receives the new block's ULID or "". */
int cmp_merge(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *const *group, size_t n, const cmp_drop_t *drop,
              const char *reason, int64_t now_ms, char *out_ulid, hp_err_t *err) HP_WUR;

/* Whether any series of block b matches request r within its time range
 * (opens the block: its series index). */
int cmp_block_affected(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *b, const cmp_request_t *r, bool *yes,
                       hp_err_t *err) HP_WUR;

/* A debug view of block ulid: its meta and, per series, labels, profiles,
 * samples, total and (with functions) the self value of each function. */
int cmp_block_dump(cmp_t *c, const char *tenant, const char *ulid, bool functions, hp_buf_t *out,
                   hp_err_t *err) HP_WUR;

/* ---- deletion requests (requests.c) ---- */

/* Parses a stored request (JSON). */
int cmp_request_parse(const void *json, size_t n, cmp_request_t *r, hp_err_t *err) HP_WUR;
void cmp_request_fini(cmp_request_t *r);
/* Appends r as JSON. */
void cmp_request_json(const cmp_request_t *r, hp_buf_t *out);
/* Stores r at <tenant>/deletion-requests/<id>.json. */
int cmp_request_put(cmp_t *c, const char *tenant, const cmp_request_t *r, hp_err_t *err) HP_WUR;
/* Every request of tenant, sorted by ID (creation). *out: free each with
 * cmp_request_fini and the array with free(). Damaged ones are logged and
 * skipped. */
int cmp_requests_load(cmp_t *c, const char *tenant, cmp_request_t **out, size_t *n, hp_err_t *err) HP_WUR;
void cmp_requests_free(cmp_request_t *v, size_t n);

/* Applies the tenant's pending requests to its blocks, and finishes those
 * nothing is left to do for. */
bool cmp_apply_requests(cmp_t *c, cmp_tenant_t *t, cmp_request_t *reqs, size_t n, int64_t now_ms);

/* ---- HTTP (http.c) ---- */

void cmp_register_http(cmp_t *c);

/* The retention of tenant: compactor_blocks_retention_period from the
 * runtime config's overrides, else the flag's; 0 = forever. */
int64_t cmp_retention_ms(const cmp_t *c, const char *tenant);

#endif
