/*
 * http.h — the HTTP server every binary runs: h2o on the process's libuv
 * loop, HTTP/1.1 and HTTP/2, with a route table and every handler run on the
 * worker pool, never on the loop — except inline routes (health, metrics),
 * which run on the loop so they answer even when the pool is saturated.
 *
 * A handler gets a request whose parts (method, path, query, headers, body)
 * were copied off h2o's connection, so it may take as long as it needs; the
 * response it fills is sent back on the loop. If the client goes away first
 * the response is dropped. h2o refuses bodies over max_body_bytes with 413
 * before a handler runs.
 *
 * Backpressure: at most max_inflight pool handlers are queued or running;
 * a request above that is answered 503 "server busy" at once, never queued.
 *
 * Stop: the listener closes first; handlers still running get up to
 * graceful_timeout_ms to answer (their responses are delivered), then the
 * rest are answered 503. New requests on open connections get 503.
 *
 * Not for: HTTP clients (tests use curl/python; S3 will use libcurl).
 */
#ifndef HOTPATH_HTTP_H
#define HOTPATH_HTTP_H

#include <uv.h>

#include "hotpath/arena.h"
#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/pool.h"

typedef struct hp_http_server hp_http_server_t;

typedef struct hp_http_header {
    hp_str_t name; /* lower-case */
    hp_str_t value;
} hp_http_header_t;

typedef struct hp_http_request {
    hp_str_t method;
    hp_str_t path;  /* without the query string, not percent-decoded */
    hp_str_t query; /* raw, without the '?'; empty when absent */
    const hp_http_header_t *headers;
    size_t n_headers;
    hp_str_t body;
    hp_arena_t *arena; /* per-request memory, dropped after the response */
    int64_t received_ms; /* hp_mono_ms() when the request reached the handler queue */
} hp_http_request_t;

#define HP_HTTP_MAX_RESP_HEADERS 8

typedef struct hp_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static or arena string; default text/plain */
    hp_buf_t body;            /* owned by the server, freed after sending */
    hp_http_header_t headers[HP_HTTP_MAX_RESP_HEADERS]; /* static or arena strings */
    size_t n_headers;
} hp_http_response_t;

/* Runs on a worker thread (on the loop thread for inline routes). req and
 * everything it points to are valid until the handler returns (and the
 * arena until the response is sent). */
typedef void (*hp_http_handler_fn)(void *ctx, const hp_http_request_t *req,
                                   hp_http_response_t *resp);

#define HP_HTTP_DEFAULT_MAX_INFLIGHT 256

typedef struct hp_http_config {
    const char *host;      /* listen address, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;              /* 0 = ephemeral (see hp_http_port) */
    size_t max_body_bytes; /* larger bodies get 413; 0 = h2o's default (1 GiB) */
    size_t max_inflight;   /* pool handlers queued or running; 0 = 256 */
    int64_t graceful_timeout_ms; /* stop waits this long for running handlers; 0 = 503 at once */
} hp_http_config_t;

/* Creates a server on loop (borrowed) whose handlers run on pool (borrowed).
 * Listens at once; the port is bound when this returns. Must be called on
 * the loop's thread. */
int hp_http_server_new(uv_loop_t *loop, hp_pool_t *pool, const hp_http_config_t *cfg,
                       hp_http_server_t **out, hp_err_t *err) HP_WUR;

/* Adds a route. method NULL matches any method; a path ending in '*'
 * matches by prefix. The first matching route wins; no match is 404 and a
 * path that matches with another method is 405. ctx is borrowed. Call
 * before the loop runs. */
void hp_http_route(hp_http_server_t *s, const char *method, const char *path,
                   hp_http_handler_fn fn, void *ctx);

/* Adds a route whose handler runs on the loop thread, synchronously, as
 * soon as the request is read: it is answered even when the worker pool is
 * saturated or max_inflight is reached. The handler must be quick and must
 * not block: no RPC, no disk, no waiting on a lock held for long (a short
 * mutex-protected read is fine); while it runs no other request of the
 * process makes progress. Same matching rules and ctx ownership as
 * hp_http_route. */
void hp_http_route_inline(hp_http_server_t *s, const char *method, const char *path,
                          hp_http_handler_fn fn, void *ctx);

/* The bound port (useful after port 0). */
int hp_http_port(const hp_http_server_t *s);

/* Stops accepting at once (the listener closes), then lets the handlers
 * still running answer for up to graceful_timeout_ms while the loop keeps
 * running; what is still running then is answered 503 and its result
 * dropped, and every connection is closed. Returns at once: the loop's next
 * run does the waiting and ends when nothing of the server is left. Must be
 * called on the loop's thread, before hp_pool_stop of its pool and before
 * the loop's last run. */
void hp_http_server_stop(hp_http_server_t *s);

/* Frees the server after stop and after the loop has run the closes. NULL-safe. */
void hp_http_server_free(hp_http_server_t *s);

/* Request helpers (worker side). */

/* The first header with this lower-case name, case-insensitively; empty
 * slice with p == NULL when absent. */
hp_str_t hp_http_header(const hp_http_request_t *r, const char *lname);

/* The first query parameter called name, percent- and '+'-decoded into the
 * request's arena. Returns false when absent, with *out the empty string. */
bool hp_http_query(const hp_http_request_t *r, const char *name, hp_str_t *out);

/* Percent-decodes s (and '+' as space when plus_space) into the arena. */
hp_str_t hp_http_urldecode(hp_arena_t *a, hp_str_t s, bool plus_space);

/* Response helpers. */
void hp_http_set_header(hp_http_response_t *resp, const char *name, const char *value);
/* Sets status, text/plain and the message plus a newline as the body. */
void hp_http_error(hp_http_response_t *resp, int status, const char *msg);
/* Status from err's class and its message as body. */
void hp_http_error_from(hp_http_response_t *resp, const hp_err_t *err);

#endif
