/*
 * rpc.h — hotpath's internal RPC over nng REQ/REP (nng 1.5 API).
 *
 * A server listens on one nng URL ("tcp://127.0.0.1:9095") with a REP
 * socket and several contexts, so many requests are in flight at once; each
 * request runs its handler on the worker pool. A client is a REQ socket
 * dialed to one peer; calls carry a method name, a tenant, a deadline and a
 * payload, and come back with a payload or an error whose class (HP_E*) and
 * message survive the trip, so the public API can answer with the right
 * status. Messages are bounded (max_msg_bytes) on both sides.
 *
 * The envelope is hotpath.v1.RpcRequest / RpcResponse (proto/hotpath/v1/
 * rpc.proto), encoded by hand so the payload is never copied twice.
 *
 * Not for: public APIs (http.h), or streaming (results are bounded).
 */
#ifndef HOTPATH_RPC_H
#define HOTPATH_RPC_H

#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/pool.h"

#define HP_RPC_DEFAULT_MAX_MSG (256u << 20)

typedef struct hp_rpc_server hp_rpc_server_t;
typedef struct hp_rpc_client hp_rpc_client_t;

/* One incoming call, valid for the handler's duration (borrowed). */
typedef struct hp_rpc_call {
    hp_str_t method;
    hp_str_t tenant;
    int64_t deadline_ms; /* unix ms; 0 = none */
    const uint8_t *payload;
    size_t payload_len;
} hp_rpc_call_t;

/* Runs on a worker. Appends the reply payload to out and returns 0, or
 * returns an HP_E* class with err's message, which the caller receives. */
typedef int (*hp_rpc_handler_fn)(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out,
                                 hp_err_t *err);

typedef struct hp_rpc_server_config {
    const char *url;       /* nng listen URL */
    size_t contexts;       /* concurrent requests; 0 = 64 */
    size_t max_msg_bytes;  /* 0 = HP_RPC_DEFAULT_MAX_MSG */
} hp_rpc_server_config_t;

/* Creates the server; handlers are added with hp_rpc_server_handle, then
 * hp_rpc_server_start listens. pool is borrowed. */
int hp_rpc_server_new(hp_pool_t *pool, const hp_rpc_server_config_t *cfg,
                      hp_rpc_server_t **out, hp_err_t *err) HP_WUR;

/* Registers fn for method (copied). ctx is borrowed. Before start only. */
void hp_rpc_server_handle(hp_rpc_server_t *s, const char *method, hp_rpc_handler_fn fn, void *ctx);

/* Binds the URL and starts receiving. */
int hp_rpc_server_start(hp_rpc_server_t *s, hp_err_t *err) HP_WUR;

/* The TCP port bound by start (useful with "tcp://127.0.0.1:0"); 0 before
 * start or for a non-TCP URL. */
int hp_rpc_server_port(const hp_rpc_server_t *s);

/* Stops receiving, waits for running handlers, closes the socket. */
void hp_rpc_server_stop(hp_rpc_server_t *s);
void hp_rpc_server_free(hp_rpc_server_t *s);

/* A client for one peer. Dials lazily and reconnects on its own (nng). Thread-safe. */
int hp_rpc_client_new(const char *url, size_t max_msg_bytes, hp_rpc_client_t **out,
                      hp_err_t *err) HP_WUR;
void hp_rpc_client_free(hp_rpc_client_t *c);
const char *hp_rpc_client_url(const hp_rpc_client_t *c);

/* One call, blocking the calling thread until the reply or timeout_ms.
 * On success the reply payload is appended to resp. Errors: the server's
 * own class and message; HP_ETIMEDOUT when no reply came in time;
 * HP_EUNAVAIL when the peer cannot be reached. */
int hp_rpc_call(hp_rpc_client_t *c, const char *method, hp_str_t tenant, const void *payload,
                size_t len, int timeout_ms, hp_buf_t *resp, hp_err_t *err) HP_WUR;

/* A call in a fan-out: the caller fills client (and may fill payload per
 * target); hp_rpc_call_all fills rc, resp and err. */
typedef struct hp_rpc_target {
    hp_rpc_client_t *client;
    const void *payload; /* NULL: use the shared payload */
    size_t payload_len;
    int rc;
    bool done;     /* rc is final (set for every target when the call returns) */
    hp_buf_t resp; /* caller frees with hp_buf_fini */
    hp_err_t err;
} hp_rpc_target_t;

/* Sends the call to every target at once and waits for all of them (each
 * bounded by timeout_ms). Returns the number that succeeded. */
size_t hp_rpc_call_all(hp_rpc_target_t *targets, size_t n, const char *method, hp_str_t tenant,
                       const void *payload, size_t len, int timeout_ms);

/* Decides, from the targets whose `done` is set, whether the caller has
 * what it needs (e.g. a write quorum for every profile). Runs on the
 * calling thread, with a lock held: keep it short, call nothing here. */
typedef bool (*hp_rpc_enough_fn)(void *ctx, const hp_rpc_target_t *targets);

/* hp_rpc_call_all that stops waiting as soon as enough(ctx, targets) says
 * so: the calls still running are cancelled (rc HP_ECANCELED). A request
 * already sent still reaches its server — cancelling only stops waiting
 * for the reply — so a slow replica still gets its write. */
size_t hp_rpc_call_until(hp_rpc_target_t *targets, size_t n, const char *method, hp_str_t tenant,
                         const void *payload, size_t len, int timeout_ms, hp_rpc_enough_fn enough,
                         void *ctx);

#endif
