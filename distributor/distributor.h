/*
 * distributor.h — the distributor's state and the functions its files share.
 *
 * The distributor is stateless: it authenticates the tenant, decodes and
 * validates each profile, derives its series labels, and writes it to the
 * ingesters that own its series on the ring, answering once a quorum of
 * them acknowledged.
 */
#ifndef HOTPATH_DISTRIBUTOR_H
#define HOTPATH_DISTRIBUTOR_H

#include <pthread.h>

#include "hotpath/arena.h"
#include "hotpath/labels.h"
#include "hotpath/members.h"
#include "hotpath/metrics.h"
#include "hotpath/profile.h"
#include "hotpath/ring.h"
#include "hotpath/rpc.h"
#include "hotpath/service.h"

/* One tenant's ingestion token bucket (bytes). */
typedef struct dist_bucket {
    char *tenant;
    double tokens;
    double full_ms;  /* how long an idle bucket takes to refill from empty (burst / rate), at its last use */
    int64_t last_ms; /* monotonic */
} dist_bucket_t;

typedef struct dist {
    hp_service_t *svc;       /* borrowed */
    const hp_config_t *cfg;  /* borrowed: svc->cfg */
    hp_members_t *members;   /* owned: the ingester ring */
    hp_ring_page_t ring_page;
    hp_metric_t *push_seconds;
    hp_rpc_server_t *rpc;          /* owned: answers the distributor ring's probes; NULL without one */
    hp_members_t *peers;           /* owned: the distributor ring; NULL = this distributor alone */
    hp_member_self_t self;
    char *instance_id;
    pthread_mutex_t rate_mu;       /* guards buckets */
    dist_bucket_t *buckets;        /* sorted by tenant */
    size_t n_buckets, cap_buckets;
    int64_t swept_ms;              /* monotonic: when idle buckets were last dropped */
} dist_t;

/* A profile accepted for ingestion, ready to forward. Strings and bytes
 * are borrowed from the request (or its arena). */
typedef struct dist_profile {
    hp_labels_t labels;   /* series labels without __profile_type__, sorted, owned array */
    uint8_t id[16];
    int64_t time_nanos;
    const uint8_t *raw;   /* the profile as the client sent it (gzip or plain) */
    size_t raw_len;
    size_t bytes;         /* its decompressed size: what the ingestion rate counts */
    const char *reason;   /* when refused: Pyroscope's discard reason (static) */
} dist_profile_t;

/* How a profile arrived: its client-supplied labels and context. */
typedef struct dist_input {
    hp_str_t tenant;
    const hp_labels_t *labels; /* client labels (unsorted, may hold __name__) */
    const hp_stc_t *stc;       /* sample_type_config, or NULL */
    int64_t from_ns;           /* fallback when the profile carries no time */
    hp_str_t client_id;        /* Push API's RawSample.ID, or empty */
    const hp_limits_config_t *lim; /* the tenant's limits */
} dist_input_t;

int dist_new(hp_service_t *svc, dist_t **out, hp_err_t *err) HP_WUR;
void dist_free(dist_t *d);

/* HTTP routes. */
void dist_register_ingest(dist_t *d);
void dist_register_push(dist_t *d);
void dist_register_otlp(dist_t *d);

/* err->detail of a profile outside the ingestion window: a 400 on every
 * API (the client sent a bad time), not a 422. */
enum { DIST_EWINDOW = 16 };

/* Decodes and validates one raw profile and fills *out (whose labels array
 * the caller frees with hp_labels_fini). Returns 0 with out->raw == NULL
 * when the profile has no samples (accepted and dropped, as Pyroscope
 * does). Errors carry Pyroscope's messages; err->detail is HP_PPROF_EWIRE
 * when the bytes are not a pprof at all (gzip or wire format), so /ingest
 * can answer 400 for those and 422 for the rest, as Pyroscope does. */
int dist_accept(dist_t *d, const dist_input_t *in, const uint8_t *raw, size_t len, hp_arena_t *a,
                dist_profile_t *out, hp_err_t *err) HP_WUR;

/* Takes bytes from the tenant's ingestion rate: the tenant's
 * ingestion_rate_mb, divided among the healthy distributors, with a burst
 * of ingestion_burst_size_mb. HP_ELIMIT (429) with the limit in the
 * message when the tokens are not there; a request larger than the burst
 * never fits. */
int dist_rate_take(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, size_t bytes, hp_err_t *err) HP_WUR;

/* Writes profiles to their ingesters (replication factor, quorum), telling
 * each ingester its share of the tenant's series limit (lim). */
int dist_forward(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, dist_profile_t *profiles, size_t n,
                 hp_err_t *err) HP_WUR;

/* Counts a discarded profile under Pyroscope's reason names. */
void dist_count_discarded(dist_t *d, hp_str_t tenant, const char *reason, size_t bytes);
void dist_count_received(dist_t *d, hp_str_t tenant, size_t profiles, size_t bytes);

#endif
