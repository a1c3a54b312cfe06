/*
 * members.h — ring membership: which instances exist, whether they are
 * alive, what state they report, and the token ring they form.
 *
 * Members come from a static list of RPC URLs and/or DNS entries
 * ("dns+ingester-headless.ns.svc:9095": every A/AAAA record becomes a member
 * tcp://<ip>:9095), re-resolved every dns_refresh_ms. A background thread
 * probes every member over nng ("ring.Probe", every heartbeat_period_ms); a
 * member reports its instance ID, zone and state (JOINING, ACTIVE,
 * LEAVING). A member that has not answered a probe (or any other call
 * reported with hp_members_report) for heartbeat_timeout_ms is UNHEALTHY.
 *
 * The token ring (ring.h) is built from every member whose instance ID is
 * known, so every client that sees the same members computes the same ring
 * without a coordination service. Several URLs answering with one instance
 * ID (its IPv4 and IPv6 addresses) are one ring member: the first healthy
 * one by URL stands for the instance in write and read sets; the others are
 * listed with ownership 0. Callers take an immutable, reference-
 * counted view for the duration of one request.
 *
 * Why probes instead of gossip: see docs/ARCHITECTURE.md (ring section).
 *
 * Not for: the placement math (ring.h), or serving probes (the instance
 * side registers a "ring.Probe" handler with hp_members_probe_handler).
 */
#ifndef HOTPATH_MEMBERS_H
#define HOTPATH_MEMBERS_H

#include <stdatomic.h>

#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/rpc.h"

typedef enum {
    HP_MEMBER_UNKNOWN = 0, /* never answered a probe */
    HP_MEMBER_JOINING = 1,
    HP_MEMBER_ACTIVE = 2,
    HP_MEMBER_LEAVING = 3,
} hp_member_state_t;

/* "UNKNOWN", "JOINING", "ACTIVE", "LEAVING". */
const char *hp_member_state_name(hp_member_state_t s);

typedef struct hp_members_config {
    const char *members;          /* comma-separated: tcp://host:port and/or dns+name:port */
    size_t num_tokens;            /* per instance; 0 = 128 */
    int64_t heartbeat_period_ms;  /* 0 = 5000 */
    int64_t heartbeat_timeout_ms; /* 0 = 60000 */
    int64_t dns_refresh_ms;       /* 0 = 30000 */
    bool zone_awareness;          /* replicas in distinct zones */
    /* How dns+ entries resolve; NULL = getaddrinfo (tests substitute
     * answers). Returns 0 and the member URLs (*urls: caller frees each and
     * the array with free()), or an EAI_* code. Called from the thread. */
    int (*resolve)(void *ctx, const char *host, const char *port, char ***urls, size_t *n);
    void *resolve_ctx; /* borrowed */
} hp_members_config_t;

typedef struct hp_members hp_members_t;

/* Parses the member list and resolves DNS entries once. Does not probe yet. */
int hp_members_new(const hp_members_config_t *cfg, hp_members_t **out, hp_err_t *err) HP_WUR;

/* Starts the background thread: an immediate probe round, then one every
 * heartbeat period, and DNS refreshes. */
int hp_members_start(hp_members_t *m, hp_err_t *err) HP_WUR;

/* Stops the thread (waits for it). NULL-safe; idempotent. */
void hp_members_stop(hp_members_t *m);

/* Frees everything; views still held keep what they need alive. NULL-safe. */
void hp_members_free(hp_members_t *m);

/* Runs one probe round now, synchronously (tests and startup). */
void hp_members_probe_now(hp_members_t *m);

/* True once every member has been probed at least once. */
bool hp_members_probed(const hp_members_t *m);

/* Records the outcome of a call to member i of view v (counts as a
 * heartbeat when ok). Thread-safe. */
typedef struct hp_ring_view hp_ring_view_t;
void hp_members_report(hp_members_t *m, const hp_ring_view_t *v, size_t i, bool ok);

/* ---- views: a consistent snapshot for one request ---- */

/* Acquires the current view (never NULL; may have 0 members). Release with
 * hp_ring_view_release. Thread-safe. */
hp_ring_view_t *hp_members_view(hp_members_t *m);
void hp_ring_view_release(hp_ring_view_t *v);

size_t hp_ring_view_size(const hp_ring_view_t *v);

typedef struct hp_member_info {
    const char *url;         /* borrowed from the view */
    const char *instance_id; /* "" until known */
    const char *zone;        /* "" when none */
    hp_member_state_t state;
    bool healthy;            /* answered within the heartbeat timeout */
    int64_t last_heartbeat_ms; /* unix ms, 0 = never */
    double ownership;        /* fraction of the token space owned (0 when not in the ring) */
} hp_member_info_t;

void hp_ring_view_member(const hp_ring_view_t *v, size_t i, hp_member_info_t *info);

/* The RPC client of member i (borrowed; valid while the view is held). */
hp_rpc_client_t *hp_ring_view_client(const hp_ring_view_t *v, size_t i);

/* Members that take writes for key: the first rf distinct members
 * clockwise from key that are ACTIVE and healthy (in distinct zones when
 * zone awareness is on), skipping the others. Writes their indices into
 * out (room for rf) and returns how many were found (< rf when not enough
 * members qualify). */
size_t hp_ring_view_write_set(const hp_ring_view_t *v, uint32_t key, size_t rf, size_t *out);

/* Members that serve reads: healthy, ACTIVE or LEAVING (a JOINING member
 * is still loading its data: its answers would be partial).
 * Writes their indices into out (room for hp_ring_view_size) and returns
 * the count. */
size_t hp_ring_view_read_set(const hp_ring_view_t *v, size_t *out);

/* ---- the instance side ---- */

/* What an instance answers to probes. The caller keeps it alive and may
 * change state at any time (it is read atomically). */
typedef struct hp_member_self {
    const char *instance_id;
    const char *zone;
    _Atomic int state; /* hp_member_state_t */
} hp_member_self_t;

/* An RPC handler for "ring.Probe" that answers with self (ctx). */
int hp_members_probe_handler(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err);

/* ---- /ring ---- */

/* Writes the view as JSON ({"members":[{"url","id","zone","state",
 * "healthy","last_heartbeat","ownership"}…]}) or as an HTML page. */
void hp_ring_view_write_json(const hp_ring_view_t *v, hp_buf_t *out);
void hp_ring_view_write_html(const hp_ring_view_t *v, const char *title, hp_buf_t *out);

/* GET /ring on an HTTP server: HTML, or JSON for Accept: application/json.
 * The caller provides the page's storage (it must live as long as the
 * server); m and title are borrowed. */
typedef struct hp_ring_page {
    hp_members_t *m;
    const char *title;
} hp_ring_page_t;

struct hp_http_server;
void hp_ring_page_route(hp_ring_page_t *page, hp_members_t *m, const char *title,
                        struct hp_http_server *http);

#endif
