/*
 * service.h — what every hotpath binary is made of: its configuration and
 * logging, one libuv loop, the worker pool, the metrics registry, the HTTP
 * server with the routes every binary serves (/ready, /metrics, /config,
 * run inline on the loop so they answer when the pool is saturated), and a
 * clean stop on SIGTERM/SIGINT (the listener closes, requests in flight get
 * -server.graceful-shutdown-timeout to finish).
 *
 * A component's main.c is: hp_service_main_config → hp_service_start →
 * X_new(svc) → X_start → hp_service_run → X_stop → hp_service_fini → X_free
 * (fini stops the pool, so no handler still uses the component's state
 * when it is freed).
 *
 * Not for: anything a single component does (its own folder has that).
 */
#ifndef HOTPATH_SERVICE_H
#define HOTPATH_SERVICE_H

#include <uv.h>

#include "hotpath/buf.h"
#include "hotpath/config.h"
#include "hotpath/http.h"
#include "hotpath/limits.h"
#include "hotpath/metrics.h"
#include "hotpath/objstore.h"
#include "hotpath/pool.h"

/* The HTTP body limit of every component but the distributor (whose limit
 * is -distributor.ingestion-body-limit-bytes): queries are small. */
#define HP_SERVICE_BODY_LIMIT ((size_t)64 << 20)

/* Says whether the component can do its job; when not, writes why. Runs
 * on the loop thread (GET /ready is inline): it must be quick and must not
 * block beyond a short mutex-protected read. */
typedef bool (*hp_ready_fn)(void *ctx, hp_buf_t *why);
/* Called on the loop thread when a stop signal arrives, before the HTTP
 * server closes: stop taking work, finish or hand off what is in flight. */
typedef void (*hp_stop_fn)(void *ctx);

typedef struct hp_service {
    const char *component; /* static */
    hp_config_t cfg;
    uv_loop_t loop;
    hp_pool_t *pool;
    hp_metrics_t *metrics;
    hp_overrides_t *overrides; /* per-tenant limits (-runtime-config.file) */
    hp_http_server_t *http;
    uv_signal_t sig_term, sig_int;
    uv_timer_t overrides_timer; /* re-reads -runtime-config.file */
    hp_ready_fn ready_fn;
    void *ready_ctx;
    hp_stop_fn stop_fn;
    void *stop_ctx;
    int64_t started_ms;
    bool loop_ok, signals_ok, http_stopped, timer_ok;
} hp_service_t;

/* Loads the configuration from argv and sets up logging. Returns 0, or 1
 * after printing usage for -help, or 2 after printing an error (the exit
 * status main should return). */
int hp_service_main_config(hp_service_t *s, const char *component, int argc, char **argv);

/* Starts the loop, pool, metrics and the HTTP server on the configured
 * address with /ready, /metrics and /config. The HTTP body limit is the
 * ingestion limit for the distributor, HP_SERVICE_BODY_LIMIT otherwise. */
int hp_service_start(hp_service_t *s, hp_err_t *err) HP_WUR;

void hp_service_on_ready(hp_service_t *s, hp_ready_fn fn, void *ctx);
void hp_service_on_stop(hp_service_t *s, hp_stop_fn fn, void *ctx);

/* Runs the loop until SIGTERM or SIGINT, calls the stop callback, stops the
 * HTTP server (listener first; requests in flight may answer for up to
 * -server.graceful-shutdown-timeout, then 503) and drains the loop. */
void hp_service_run(hp_service_t *s);

/* Stops the pool and frees everything. Safe on a half-started service. */
void hp_service_fini(hp_service_t *s);

/* The tenant of a request: "anonymous" when multi-tenancy is off, else the
 * X-Scope-OrgID header, which must be present (HP_EAUTH → 401) and valid
 * (≤ 150 chars of [a-zA-Z0-9!-_.*'()], not "." or ".."; HP_EINVAL). The
 * slice borrows from the request. */
int hp_tenant_from_request(const hp_config_t *cfg, const hp_http_request_t *req, hp_str_t *tenant,
                           hp_err_t *err) HP_WUR;

/* Validates a tenant ID (see above). */
int hp_tenant_validate(hp_str_t t, hp_err_t *err) HP_WUR;

/* This instance's ring ID: -ring.instance-id, else hostname:rpc-port.
 * The caller frees it. */
char *hp_service_instance_id(const hp_config_t *cfg);

/* The object store the storage.* options describe. */
int hp_service_objstore(const hp_config_t *cfg, hp_objstore_t **out, hp_err_t *err) HP_WUR;

#endif
