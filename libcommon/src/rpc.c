/* Internal RPC over nng REQ/REP (nng 1.5 API).
 *
 * Server: one REP socket, N contexts, each an aio state machine
 *   RECV -> (decode, queue on the pool) WORK -> SEND -> RECV ...
 * Stop cancels the receives, lets running handlers finish and their replies
 * go out, then closes the socket.
 *
 * Client: one REQ socket dialed in the background. A call opens its own
 * context and aio (send, then receive). Calls are run by run_calls(), which
 * starts them all and waits on a latch; the waiting thread is also the one
 * that aborts calls when their peer is unreachable or the connection drops
 * (nng 1.5 would otherwise resend the request on the next connection, and
 * pushes are not idempotent). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "hotpath/log.h"
#include "hotpath/pbwire.h"
#include "hotpath/rpc.h"

#define DEFAULT_CONTEXTS 64
#define CONNECT_WAIT_MS 1000    /* fail fast when a peer stays unreachable this long */
#define STOP_SEND_GRACE_MS 5000 /* replies still being sent get this long at stop */

/* Envelope field numbers (proto/hotpath/v1/rpc.proto). */
enum { REQ_METHOD = 1, REQ_TENANT = 2, REQ_DEADLINE = 3, REQ_PAYLOAD = 4 };
enum { REP_CODE = 1, REP_MESSAGE = 2, REP_PAYLOAD = 3 };

/* ---- shared helpers ------------------------------------------------------- */

/* nng_msg_alloc that aborts on exhaustion, like hp_xmalloc: every size that
 * reaches it was bounded by max_msg_bytes first. */
static nng_msg *msg_alloc(size_t len)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, len) != 0)
        (void)hp_xmalloc(SIZE_MAX); /* aborts with a message */
    return m;
}

/* A message of head then body: the body is copied once, straight into the
 * message. */
static nng_msg *msg_join(const hp_buf_t *head, const void *body, size_t len)
{
    nng_msg *m = msg_alloc(head->len + len);
    uint8_t *p = nng_msg_body(m);
    if (head->len)
        memcpy(p, head->data, head->len);
    if (len)
        memcpy(p + head->len, body, len);
    return m;
}

/* Writes a length-delimited field's key and length, not its bytes. */
static void put_len_prefix(hp_buf_t *b, uint32_t field, size_t len)
{
    hp_pb_put_tag(b, field, HP_PB_LEN);
    hp_buf_put_varint(b, len);
}

/* A string field, skipped when empty (proto3). */
static void put_str(hp_buf_t *b, uint32_t field, hp_str_t s)
{
    if (s.n > 0)
        hp_pb_put_bytes(b, field, s.p, s.n);
}

/* True when code is one of the HP_E* classes. */
static bool known_class(int code)
{
    return code < 0 && code >= HP_ELAST;
}

/* ---- server ----------------------------------------------------------------- */

typedef struct method {
    char *name;
    hp_rpc_handler_fn fn;
    void *ctx;
} method_t;

typedef enum { SC_IDLE, SC_RECV, SC_WORK, SC_SEND } sc_state_t;

typedef struct srv_ctx {
    hp_rpc_server_t *s;
    nng_ctx ctx;
    nng_aio *aio;
    sc_state_t state; /* under s->mu */
    nng_msg *req;     /* the request a handler works on; call points into it */
    hp_rpc_call_t call;
    const method_t *m;
} srv_ctx_t;

struct hp_rpc_server {
    hp_pool_t *pool;
    char *url;
    size_t max_msg;
    size_t n_ctx;
    method_t *methods;
    size_t n_methods, cap_methods;
    nng_socket sock;
    nng_listener listener;
    bool sock_open, started, stopped;
    int port;
    srv_ctx_t *ctxs;
    size_t n_ctx_ready; /* contexts with an aio */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a context goes idle */
    size_t submitting; /* threads inside nng_ctx_send */
    bool stopping;
};

/* Moves x to state st and wakes stop when it went idle. Holds s->mu. */
static void sc_set(srv_ctx_t *x, sc_state_t st)
{
    x->state = st;
    if (st == SC_IDLE)
        pthread_cond_broadcast(&x->s->cv);
}

/* Starts the next receive, or goes idle when the server is stopping. */
static void srv_recv(srv_ctx_t *x)
{
    pthread_mutex_lock(&x->s->mu);
    bool stopping = x->s->stopping;
    sc_set(x, stopping ? SC_IDLE : SC_RECV);
    pthread_mutex_unlock(&x->s->mu);
    if (!stopping)
        nng_ctx_recv(x->ctx, x->aio);
}

/* Sends reply on x's context (takes ownership of reply). The send may
 * complete (and x go idle) before nng_ctx_send returns, so stop also waits
 * for s->submitting to drop to zero. */
static void srv_send(srv_ctx_t *x, nng_msg *reply)
{
    hp_rpc_server_t *s = x->s;
    pthread_mutex_lock(&s->mu);
    sc_set(x, SC_SEND);
    s->submitting++;
    pthread_mutex_unlock(&s->mu);
    nng_aio_set_msg(x->aio, reply);
    nng_ctx_send(x->ctx, x->aio);
    pthread_mutex_lock(&s->mu);
    if (--s->submitting == 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Encodes an RpcResponse; an over-limit reply becomes an HP_ETOOLARGE one. */
static nng_msg *reply_new(const hp_rpc_server_t *s, int code, const char *msg, const hp_buf_t *out)
{
    hp_buf_t head = HP_BUF_INIT;
    size_t plen = code == 0 && out ? out->len : 0;
    hp_pb_put_sint(&head, REP_CODE, code);
    put_str(&head, REP_MESSAGE, hp_str_c(msg));
    if (plen > 0)
        put_len_prefix(&head, REP_PAYLOAD, plen);
    if (head.len + plen > s->max_msg) {
        char m[160];
        snprintf(m, sizeof(m), "reply of %zu bytes exceeds the RPC message limit of %zu bytes",
                 head.len + plen, s->max_msg);
        hp_buf_fini(&head);
        return reply_new(s, HP_ETOOLARGE, m, NULL);
    }
    nng_msg *m = msg_join(&head, plen ? out->data : NULL, plen);
    hp_buf_fini(&head);
    return m;
}

/* Replies with an error at once (on nng's callback thread). */
static void srv_reply_error(srv_ctx_t *x, int code, const char *msg)
{
    srv_send(x, reply_new(x->s, code, msg, NULL));
}

/* Decodes an RpcRequest; the slices point into p. */
static bool decode_request(const uint8_t *p, size_t n, hp_rpc_call_t *call)
{
    hp_pbr_t r = hp_pbr(p, n), sub;
    /* Absent fields are empty, never NULL: handlers may memcpy them as is. */
    call->method = call->tenant = HP_STR("");
    call->deadline_ms = 0;
    call->payload = (const uint8_t *)"";
    call->payload_len = 0;
    while (!hp_pbr_done(&r)) {
        uint32_t f, wt;
        uint64_t v;
        if (!hp_pbr_key(&r, &f, &wt))
            return false;
        if (f == REQ_DEADLINE && wt == HP_PB_VARINT) {
            if (!hp_pbr_varint(&r, &v))
                return false;
            call->deadline_ms = (int64_t)v;
        } else if ((f == REQ_METHOD || f == REQ_TENANT || f == REQ_PAYLOAD) && wt == HP_PB_LEN) {
            if (!hp_pbr_len(&r, &sub))
                return false;
            hp_str_t s = {(const char *)sub.p, (size_t)(sub.end - sub.p)};
            if (f == REQ_METHOD)
                call->method = s;
            else if (f == REQ_TENANT)
                call->tenant = s;
            else {
                call->payload = sub.p;
                call->payload_len = s.n;
            }
        } else if (f <= REQ_PAYLOAD || !hp_pbr_skip(&r, wt)) {
            return false; /* a known field with the wrong wire type, or garbage */
        }
    }
    return true;
}

/* The handler registered for name, or NULL. */
static const method_t *method_find(const hp_rpc_server_t *s, hp_str_t name)
{
    for (size_t i = 0; i < s->n_methods; i++)
        if (hp_str_eq_c(name, s->methods[i].name))
            return &s->methods[i];
    return NULL;
}

/* True when a deadline (unix ms; 0 = none) is behind us. */
static bool deadline_passed(int64_t deadline_ms)
{
    return deadline_ms > 0 && hp_now_ms() >= deadline_ms;
}

/* Worker side: runs the handler and sends its reply. */
static void srv_work(void *arg)
{
    srv_ctx_t *x = arg;
    hp_buf_t out = HP_BUF_INIT;
    hp_err_t err;
    hp_err_clear(&err);
    int code;
    if (deadline_passed(x->call.deadline_ms))
        code = hp_err_set(&err, HP_ETIMEDOUT, "deadline of %.*s passed while it was queued",
                          (int)x->call.method.n, x->call.method.p);
    else
        code = x->m->fn(x->m->ctx, &x->call, &out, &err);
    if (code != 0 && !known_class(code))
        code = hp_err_set(&err, HP_EINTERNAL, "handler of %.*s returned %d", (int)x->call.method.n,
                          x->call.method.p, code);
    if (code != 0 && err.msg[0] == '\0')
        (void)hp_err_set(&err, code, "%s", hp_err_name(code));
    nng_msg *reply = reply_new(x->s, code, code ? err.msg : NULL, &out);
    hp_buf_fini(&out);
    nng_msg_free(x->req);
    x->req = NULL;
    srv_send(x, reply);
}

/* Why the decoded request on x cannot run (an HP_E* class and a message
 * in m), or 0 when it can. */
static int admit(const srv_ctx_t *x, bool stopping, char *m, size_t n)
{
    if (stopping) {
        snprintf(m, n, "rpc server %s is shutting down", x->s->url);
        return HP_EUNAVAIL;
    }
    if (x->m == NULL) {
        snprintf(m, n, "unknown method %.*s", (int)HP_MIN(x->call.method.n, 100), x->call.method.p);
        return HP_ENOTFOUND;
    }
    if (deadline_passed(x->call.deadline_ms)) {
        snprintf(m, n, "deadline of %s passed before it was received", x->m->name);
        return HP_ETIMEDOUT;
    }
    return 0;
}

/* A request arrived on x (nng's thread): reject it at once or queue its
 * handler on the pool. Takes ownership of msg. */
static void srv_dispatch(srv_ctx_t *x, nng_msg *msg)
{
    char m[160];
    hp_rpc_server_t *s = x->s;
    int code = HP_EINVAL;
    snprintf(m, sizeof(m), "malformed RPC request envelope");
    if (decode_request(nng_msg_body(msg), nng_msg_len(msg), &x->call)) {
        x->m = method_find(s, x->call.method);
        pthread_mutex_lock(&s->mu);
        code = admit(x, s->stopping, m, sizeof(m));
        if (code == 0)
            sc_set(x, SC_WORK);
        pthread_mutex_unlock(&s->mu);
    }
    if (code == 0) {
        x->req = msg;
        hp_pool_submit(s->pool, srv_work, x);
        return;
    }
    nng_msg_free(msg);
    srv_reply_error(x, code, m);
}

/* The context's aio callback: a receive or a send completed. */
static void srv_cb(void *arg)
{
    srv_ctx_t *x = arg;
    int rv = nng_aio_result(x->aio);
    pthread_mutex_lock(&x->s->mu);
    bool was_send = x->state == SC_SEND;
    pthread_mutex_unlock(&x->s->mu);
    if (was_send) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(x->aio));
        srv_recv(x);
        return;
    }
    if (rv == 0) {
        srv_dispatch(x, nng_aio_get_msg(x->aio));
        return;
    }
    if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
        HP_WARN("rpc receive failed", "url=%s err=\"%s\"", x->s->url, nng_strerror(rv));
        srv_recv(x);
        return;
    }
    pthread_mutex_lock(&x->s->mu);
    sc_set(x, SC_IDLE);
    pthread_mutex_unlock(&x->s->mu);
}

int hp_rpc_server_new(hp_pool_t *pool, const hp_rpc_server_config_t *cfg, hp_rpc_server_t **out,
                      hp_err_t *err)
{
    *out = NULL;
    nng_url *u;
    if (cfg->url == NULL || nng_url_parse(&u, cfg->url) != 0)
        return hp_err_set(err, HP_EINVAL, "bad rpc listen url \"%s\"", cfg->url ? cfg->url : "");
    nng_url_free(u);
    hp_rpc_server_t *s = hp_xcalloc(1, sizeof(*s));
    s->pool = pool;
    s->url = hp_xstrdup(cfg->url);
    s->n_ctx = cfg->contexts ? cfg->contexts : DEFAULT_CONTEXTS;
    s->max_msg = cfg->max_msg_bytes ? cfg->max_msg_bytes : HP_RPC_DEFAULT_MAX_MSG;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return 0;
}

void hp_rpc_server_handle(hp_rpc_server_t *s, const char *method, hp_rpc_handler_fn fn, void *ctx)
{
    if (s->started) {
        HP_ERROR("rpc method registered after start; ignored", "method=%s", method);
        return;
    }
    HP_GROW(s->methods, s->cap_methods, s->n_methods + 1);
    s->methods[s->n_methods++] = (method_t){hp_xstrdup(method), fn, ctx};
}

/* Opens the REP socket and listens on the URL. */
static int srv_listen(hp_rpc_server_t *s, hp_err_t *err)
{
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0)
        return hp_err_set(err, HP_EINTERNAL, "rpc: cannot open REP socket: %s", nng_strerror(rv));
    s->sock_open = true;
    rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->max_msg);
    if (rv == 0)
        rv = nng_listener_create(&s->listener, s->sock, s->url);
    if (rv == 0)
        rv = nng_listener_start(s->listener, 0);
    if (rv != 0)
        return hp_err_set(err, HP_EUNAVAIL, "rpc: cannot listen on %s: %s", s->url, nng_strerror(rv));
    if (nng_listener_get_int(s->listener, NNG_OPT_TCP_BOUND_PORT, &s->port) != 0)
        s->port = 0; /* not a TCP URL */
    return 0;
}

/* Opens the contexts and their aios and starts each one receiving. */
static int srv_open_contexts(hp_rpc_server_t *s, hp_err_t *err)
{
    s->ctxs = hp_xcalloc(s->n_ctx, sizeof(*s->ctxs));
    for (; s->n_ctx_ready < s->n_ctx; s->n_ctx_ready++) {
        srv_ctx_t *x = &s->ctxs[s->n_ctx_ready];
        x->s = s;
        int rv = nng_ctx_open(&x->ctx, s->sock);
        if (rv == 0 && (rv = nng_aio_alloc(&x->aio, srv_cb, x)) != 0)
            nng_ctx_close(x->ctx);
        if (rv != 0)
            return hp_err_set(err, HP_EINTERNAL, "rpc: cannot open context: %s", nng_strerror(rv));
    }
    for (size_t i = 0; i < s->n_ctx; i++)
        srv_recv(&s->ctxs[i]);
    return 0;
}

int hp_rpc_server_start(hp_rpc_server_t *s, hp_err_t *err)
{
    if (s->started)
        return hp_err_set(err, HP_EINTERNAL, "rpc server %s already started", s->url);
    int rc = srv_listen(s, err);
    if (rc == 0)
        rc = srv_open_contexts(s, err);
    s->started = true; /* stop and free now clean up whatever was opened */
    if (rc != 0)
        hp_rpc_server_stop(s);
    return rc;
}

int hp_rpc_server_port(const hp_rpc_server_t *s)
{
    return s->port;
}

/* Cancels the receives that are waiting; contexts busy with a handler or a
 * reply go idle on their own. Holds s->mu. */
static void cancel_receives(hp_rpc_server_t *s)
{
    for (size_t i = 0; i < s->n_ctx_ready; i++)
        if (s->ctxs[i].state == SC_RECV)
            nng_aio_cancel(s->ctxs[i].aio); /* completes later, on nng's thread */
}

/* The CLOCK_REALTIME instant ms from now, for pthread_cond_timedwait. */
static void timespec_in_ms(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits until every context is idle: running handlers finish and their
 * replies go out (those get STOP_SEND_GRACE_MS once no handler runs). */
static void wait_contexts_idle(hp_rpc_server_t *s)
{
    int64_t grace_end = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* Again each round: a context may re-arm just before it sees stopping. */
        cancel_receives(s);
        size_t working = 0, busy = 0;
        for (size_t i = 0; i < s->n_ctx_ready; i++) {
            working += s->ctxs[i].state == SC_WORK;
            busy += s->ctxs[i].state != SC_IDLE;
        }
        if (busy == 0 && s->submitting == 0)
            break;
        if (working == 0 && grace_end == 0)
            grace_end = hp_mono_ms() + STOP_SEND_GRACE_MS;
        if (working == 0 && busy > 0 && hp_mono_ms() >= grace_end) {
            HP_WARN("rpc replies still unsent at stop", "url=%s contexts=%zu", s->url, busy);
            break;
        }
        struct timespec ts;
        timespec_in_ms(&ts, 50);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
}

void hp_rpc_server_stop(hp_rpc_server_t *s)
{
    if (s == NULL || !s->started || s->stopped)
        return;
    s->stopped = true;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    /* The listener stays open until nng_close: closing it would also drop
     * the connections whose replies are still being computed. */
    wait_contexts_idle(s);
    if (s->sock_open)
        nng_close(s->sock);
    for (size_t i = 0; i < s->n_ctx_ready; i++)
        nng_aio_stop(s->ctxs[i].aio);
}

void hp_rpc_server_free(hp_rpc_server_t *s)
{
    if (s == NULL)
        return;
    hp_rpc_server_stop(s);
    for (size_t i = 0; i < s->n_ctx_ready; i++) {
        if (s->ctxs[i].req) /* only when a handler never ran */
            nng_msg_free(s->ctxs[i].req);
        nng_aio_free(s->ctxs[i].aio);
    }
    free(s->ctxs);
    for (size_t i = 0; i < s->n_methods; i++)
        free(s->methods[i].name);
    free(s->methods);
    free(s->url);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- client ------------------------------------------------------------------ */

typedef struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending; /* calls not finished */
} latch_t;

typedef enum { CALL_SENDING, CALL_RECEIVING } call_state_t;

typedef struct call {
    hp_rpc_client_t *c;
    latch_t *latch;
    nng_ctx ctx;
    nng_aio *aio;
    bool ctx_open;
    int timeout_ms;
    int64_t deadline;      /* monotonic ms */
    int64_t conn_deadline; /* monotonic ms; 0 once checked (waiter only) */
    const char *method;
    hp_buf_t *resp; /* borrowed: the reply payload is appended here */
    hp_err_t *err;  /* borrowed */
    int rc;
    /* under c->mu: */
    call_state_t state;
    bool done;
    int abort_rv; /* the nng error the waiter aborted the call with, or 0 */
    bool cancelled; /* the caller has what it needs: do not start a receive */
    /* under latch->mu: */
    bool finished; /* rc and err are final */
} call_t;

struct hp_rpc_client {
    char *url;
    size_t max_msg;
    nng_socket sock;
    bool sock_open;
    pthread_mutex_t mu;
    int npipes; /* connected pipes (0 or 1: one dialer) */
};

/* nng's pipe events (no nng lock held): counts live connections. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    hp_rpc_client_t *c = arg;
    pthread_mutex_lock(&c->mu);
    c->npipes += ev == NNG_PIPE_EV_ADD_POST ? 1 : -1;
    pthread_mutex_unlock(&c->mu);
}

/* Sets the REQ socket's options: bounded messages, quick reconnects, and
 * no resends. With an infinite resend time nng neither resends on a timer
 * nor on a dropped connection (the call fails with NNG_ECONNRESET), which
 * is what non-idempotent pushes need. */
static int client_options(hp_rpc_client_t *c)
{
    int rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, c->max_msg);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 2000);
    if (rv == 0)
        rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe, c);
    if (rv == 0)
        rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe, c);
    return rv;
}

int hp_rpc_client_new(const char *url, size_t max_msg_bytes, hp_rpc_client_t **out, hp_err_t *err)
{
    *out = NULL;
    nng_url *u;
    if (url == NULL || nng_url_parse(&u, url) != 0)
        return hp_err_set(err, HP_EINVAL, "bad rpc peer url \"%s\"", url ? url : "");
    nng_url_free(u);
    hp_rpc_client_t *c = hp_xcalloc(1, sizeof(*c));
    c->url = hp_xstrdup(url);
    c->max_msg = max_msg_bytes ? max_msg_bytes : HP_RPC_DEFAULT_MAX_MSG;
    pthread_mutex_init(&c->mu, NULL);
    int rv = nng_req0_open(&c->sock);
    c->sock_open = rv == 0;
    if (rv == 0)
        rv = client_options(c);
    if (rv == 0) /* NONBLOCK: connects, and reconnects, in the background */
        rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        (void)hp_err_set(err, HP_EUNAVAIL, "rpc: cannot set up a client for %s: %s", url, nng_strerror(rv));
        hp_rpc_client_free(c);
        return HP_EUNAVAIL;
    }
    *out = c;
    return 0;
}

void hp_rpc_client_free(hp_rpc_client_t *c)
{
    if (c == NULL)
        return;
    if (c->sock_open)
        nng_close(c->sock); /* pipes are reaped, and on_pipe run, before it returns */
    pthread_mutex_destroy(&c->mu);
    free(c->url);
    free(c);
}

const char *hp_rpc_client_url(const hp_rpc_client_t *c)
{
    return c->url;
}

/* Encodes an RpcRequest around payload. Returns NULL (with k->rc set) when
 * it would exceed the client's message limit. */
static nng_msg *request_new(call_t *k, hp_str_t tenant, const void *payload, size_t len)
{
    hp_buf_t head = HP_BUF_INIT;
    put_str(&head, REQ_METHOD, hp_str_c(k->method));
    put_str(&head, REQ_TENANT, tenant);
    hp_pb_put_uint(&head, REQ_DEADLINE, (uint64_t)(hp_now_ms() + k->timeout_ms));
    if (len > 0)
        put_len_prefix(&head, REQ_PAYLOAD, len);
    nng_msg *m = NULL;
    if (head.len + len > k->c->max_msg)
        k->rc = hp_err_set(k->err, HP_ETOOLARGE,
                           "rpc %s to %s: request of %zu bytes exceeds the limit of %zu bytes", k->method,
                           k->c->url, head.len + len, k->c->max_msg);
    else
        m = msg_join(&head, payload, len);
    hp_buf_fini(&head);
    return m;
}

/* Reads one RpcResponse field into code / msg / payload. */
static bool reply_field(hp_pbr_t *r, int64_t *code, hp_pbr_t *msg, hp_pbr_t *payload)
{
    uint32_t f, wt;
    uint64_t v;
    if (!hp_pbr_key(r, &f, &wt))
        return false;
    if (f == REP_CODE && wt == HP_PB_VARINT) {
        if (!hp_pbr_varint(r, &v))
            return false;
        *code = hp_pb_unzigzag(v);
        return true;
    }
    if ((f == REP_MESSAGE || f == REP_PAYLOAD) && wt == HP_PB_LEN)
        return hp_pbr_len(r, f == REP_MESSAGE ? msg : payload);
    return f > REP_PAYLOAD && hp_pbr_skip(r, wt);
}

/* Decodes an RpcResponse into k's result: the server's error class and
 * message, or the payload appended to k->resp. */
static void decode_reply(call_t *k, const uint8_t *p, size_t n)
{
    hp_pbr_t r = hp_pbr(p, n), msg = {NULL, NULL}, payload = {NULL, NULL};
    int64_t code = 0;
    while (!hp_pbr_done(&r)) {
        if (!reply_field(&r, &code, &msg, &payload)) {
            k->rc = hp_err_set(k->err, HP_EINTERNAL, "rpc %s: malformed reply from %s", k->method, k->c->url);
            return;
        }
    }
    if (code != 0) {
        int cls = known_class((int)code) ? (int)code : HP_EINTERNAL;
        size_t mlen = msg.p ? (size_t)(msg.end - msg.p) : 0;
        k->rc = hp_err_set(k->err, cls, "%.*s", (int)HP_MIN(mlen, 511), mlen ? (const char *)msg.p : "");
        return;
    }
    if (payload.p != NULL)
        hp_buf_append(k->resp, payload.p, (size_t)(payload.end - payload.p));
    k->rc = 0;
}

/* Turns an nng failure into the caller's error. */
static void call_fail(call_t *k, int rv, call_state_t state, int npipes)
{
    const char *url = k->c->url;
    if (rv == NNG_ECONNRESET)
        k->rc =
            hp_err_set(k->err, HP_EUNAVAIL, "rpc %s: connection to %s lost before the reply", k->method, url);
    else if (rv == NNG_EUNREACHABLE || (rv == NNG_ETIMEDOUT && state == CALL_SENDING && npipes == 0))
        k->rc = hp_err_set(k->err, HP_EUNAVAIL, "rpc %s: no connection to %s", k->method, url);
    else if (rv == NNG_ECANCELED)
        k->rc = hp_err_set(k->err, HP_ECANCELED, "rpc %s to %s: not waited for (enough replies arrived)",
                           k->method, url);
    else if (rv == NNG_ETIMEDOUT)
        k->rc = hp_err_set(k->err, HP_ETIMEDOUT, "rpc %s: no reply from %s within %d ms", k->method, url,
                           k->timeout_ms);
    else
        k->rc = hp_err_set(k->err, HP_EUNAVAIL, "rpc %s to %s failed: %s", k->method, url, nng_strerror(rv));
}

/* One call finished: mark it and wake the waiter. */
static void latch_count_down(latch_t *l, call_t *k)
{
    pthread_mutex_lock(&l->mu);
    k->finished = true;
    l->pending--;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Records k's outcome (rv from nng; reply owned, may be NULL) and counts it
 * down on its latch. */
static void call_finish(call_t *k, int rv, nng_msg *reply)
{
    hp_rpc_client_t *c = k->c;
    pthread_mutex_lock(&c->mu);
    int npipes = c->npipes;
    call_state_t state = k->state;
    if (k->abort_rv != 0 && rv != 0)
        rv = k->abort_rv; /* the waiter's abort, whatever nng reported */
    k->done = true;
    pthread_mutex_unlock(&c->mu);
    if (rv == 0)
        decode_reply(k, nng_msg_body(reply), nng_msg_len(reply));
    else
        call_fail(k, rv, state, npipes);
    if (reply)
        nng_msg_free(reply);
    latch_count_down(k->latch, k);
}

/* The request went out: wait for the reply in what is left of the timeout. */
static void call_receive(call_t *k)
{
    pthread_mutex_lock(&k->c->mu);
    k->state = CALL_RECEIVING;
    k->abort_rv = 0; /* an abort for "no connection" came too late: it hit nothing */
    bool cancelled = k->cancelled;
    pthread_mutex_unlock(&k->c->mu);
    if (cancelled) { /* the request went out; its reply is not wanted */
        call_finish(k, NNG_ECANCELED, NULL);
        return;
    }
    int64_t left = k->deadline - hp_mono_ms();
    if (left <= 0) {
        call_finish(k, NNG_ETIMEDOUT, NULL);
        return;
    }
    nng_aio_set_timeout(k->aio, (nng_duration)left);
    nng_ctx_recv(k->ctx, k->aio);
}

/* The call's aio callback (nng's thread): a send or a receive completed. */
static void call_cb(void *arg)
{
    call_t *k = arg;
    int rv = nng_aio_result(k->aio);
    if (k->state == CALL_RECEIVING) {
        call_finish(k, rv, rv == 0 ? nng_aio_get_msg(k->aio) : NULL);
        return;
    }
    if (rv == 0) {
        call_receive(k);
        return;
    }
    nng_msg_free(nng_aio_get_msg(k->aio)); /* a failed send hands the message back */
    call_finish(k, rv, NULL);
}

/* Ends a call that failed before reaching nng (rc and err already set). */
static void call_abandon(call_t *k)
{
    pthread_mutex_lock(&k->c->mu);
    k->done = true;
    pthread_mutex_unlock(&k->c->mu);
    latch_count_down(k->latch, k);
}

/* Opens k's context and aio and sends the request. A call that fails
 * before reaching nng is finished at once. */
static void call_start(call_t *k, hp_str_t tenant, const void *payload, size_t len)
{
    k->deadline = hp_mono_ms() + k->timeout_ms;
    k->conn_deadline = hp_mono_ms() + HP_MIN(k->timeout_ms, CONNECT_WAIT_MS);
    nng_msg *m = request_new(k, tenant, payload, len);
    if (m == NULL) {
        call_abandon(k);
        return;
    }
    int rv = nng_ctx_open(&k->ctx, k->c->sock);
    k->ctx_open = rv == 0;
    if (rv == 0)
        rv = nng_aio_alloc(&k->aio, call_cb, k);
    if (rv != 0) {
        nng_msg_free(m);
        call_finish(k, rv, NULL);
        return;
    }
    nng_aio_set_timeout(k->aio, k->timeout_ms);
    nng_aio_set_msg(k->aio, m);
    nng_ctx_send(k->ctx, k->aio);
}

/* Fails k fast when its peer is still unreachable at conn_deadline, rather
 * than letting it use up its whole timeout. Waiter thread. The abort is
 * issued under c->mu, so it cannot reach a receive: call_receive switches
 * the state under the same lock. */
static void call_check(call_t *k, int64_t now)
{
    hp_rpc_client_t *c = k->c;
    if (k->conn_deadline == 0 || now < k->conn_deadline)
        return;
    k->conn_deadline = 0;
    pthread_mutex_lock(&c->mu);
    if (!k->done && k->state == CALL_SENDING && c->npipes == 0) {
        k->abort_rv = NNG_EUNREACHABLE;
        nng_aio_abort(k->aio, NNG_EUNREACHABLE); /* nng calls back later, on its thread */
    }
    pthread_mutex_unlock(&c->mu);
}

/* The next connection deadline still to check, or INT64_MAX. */
static int64_t next_check(const call_t *calls, size_t n)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (calls[i].conn_deadline && calls[i].conn_deadline < t)
            t = calls[i].conn_deadline;
    return t;
}

/* Stops waiting for k: a send or receive in progress is aborted, one not
 * yet started will not start. Waiter thread. */
static void call_cancel(call_t *k)
{
    hp_rpc_client_t *c = k->c;
    pthread_mutex_lock(&c->mu);
    if (!k->done) {
        k->cancelled = true;
        if (k->aio) {
            k->abort_rv = NNG_ECANCELED;
            nng_aio_abort(k->aio, NNG_ECANCELED);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Decides whether the caller has what it needs; called under the latch's
 * lock each time a call finishes. */
typedef struct enough {
    hp_rpc_enough_fn fn;
    void *ctx;
    hp_rpc_target_t *targets; /* targets[slot_of_call[i]] mirrors calls[i] */
    const size_t *target_of;
    bool reached;
} enough_t;

/* Copies the finished calls' outcomes to their targets and asks the
 * predicate. Latch lock held. */
static bool enough_now(enough_t *e, call_t *calls, size_t n)
{
    if (e == NULL || e->fn == NULL || e->reached)
        return false;
    for (size_t i = 0; i < n; i++) {
        hp_rpc_target_t *t = &e->targets[e->target_of[i]];
        t->done = calls[i].finished;
        if (t->done)
            t->rc = calls[i].rc;
    }
    e->reached = e->fn(e->ctx, e->targets);
    return e->reached;
}

/* Waits for every call to finish, or — when the predicate says enough —
 * cancels the rest and waits for them to wind down. The aios' own
 * timeouts bound the wait. */
static void wait_calls(call_t *calls, size_t n, latch_t *l, enough_t *e)
{
    pthread_mutex_lock(&l->mu);
    while (l->pending > 0) {
        if (enough_now(e, calls, n)) {
            pthread_mutex_unlock(&l->mu);
            for (size_t i = 0; i < n; i++)
                call_cancel(&calls[i]);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        int64_t now = hp_mono_ms(), next = next_check(calls, n);
        if (now >= next) {
            pthread_mutex_unlock(&l->mu);
            for (size_t i = 0; i < n; i++)
                call_check(&calls[i], now);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        struct timespec ts;
        timespec_in_ms(&ts, (int)HP_MIN(next - now, 1000));
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
}

/* Runs calls[0..n) concurrently and waits for them (see wait_calls). */
static void run_calls(call_t *calls, size_t n, hp_str_t tenant, const void **payloads, const size_t *lens,
                      enough_t *e)
{
    latch_t l = {.pending = n};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    for (size_t i = 0; i < n; i++) {
        calls[i].latch = &l;
        call_start(&calls[i], tenant, payloads[i], lens[i]);
    }
    wait_calls(calls, n, &l, e);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].aio)
            nng_aio_free(calls[i].aio); /* waits for a callback still returning */
        if (calls[i].ctx_open)
            nng_ctx_close(calls[i].ctx);
    }
    pthread_cond_destroy(&l.cv);
    pthread_mutex_destroy(&l.mu);
}

/* Fills what every call needs; false (with rc and err set) on bad input. */
static bool call_init(call_t *k, hp_rpc_client_t *c, const char *method, int timeout_ms, hp_buf_t *resp,
                      hp_err_t *err)
{
    memset(k, 0, sizeof(*k));
    k->c = c;
    k->method = method;
    k->timeout_ms = timeout_ms;
    k->resp = resp;
    k->err = err;
    hp_err_clear(err);
    if (timeout_ms > 0)
        return true;
    k->rc = hp_err_set(err, HP_EINVAL, "rpc %s to %s: timeout must be positive, got %d ms", method, c->url,
                       timeout_ms);
    return false;
}

int hp_rpc_call(hp_rpc_client_t *c, const char *method, hp_str_t tenant, const void *payload, size_t len,
                int timeout_ms, hp_buf_t *resp, hp_err_t *err)
{
    call_t k;
    if (!call_init(&k, c, method, timeout_ms, resp, err))
        return k.rc;
    run_calls(&k, 1, tenant, &payload, &len, NULL);
    return k.rc;
}

size_t hp_rpc_call_until(hp_rpc_target_t *targets, size_t n, const char *method, hp_str_t tenant,
                         const void *payload, size_t len, int timeout_ms, hp_rpc_enough_fn enough, void *ctx)
{
    call_t *calls = hp_xcalloc(n ? n : 1, sizeof(*calls));
    const void **payloads = hp_xcalloc(n ? n : 1, sizeof(*payloads));
    size_t *lens = hp_xcalloc(n ? n : 1, sizeof(*lens));
    size_t *slot = hp_xcalloc(n ? n : 1, sizeof(*slot));      /* target -> call, or SIZE_MAX */
    size_t *target_of = hp_xcalloc(n ? n : 1, sizeof(*slot)); /* call -> target */
    size_t started = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        hp_rpc_target_t *t = &targets[i];
        hp_buf_init(&t->resp); /* an output, like rc, err and done */
        t->done = false;
        slot[i] = SIZE_MAX;
        if (!call_init(&calls[started], t->client, method, timeout_ms, &t->resp, &t->err)) {
            t->rc = calls[started].rc;
            t->done = true;
            continue;
        }
        payloads[started] = t->payload ? t->payload : payload;
        lens[started] = t->payload ? t->payload_len : len;
        target_of[started] = i;
        slot[i] = started++;
    }
    enough_t e = {enough, ctx, targets, target_of, false};
    run_calls(calls, started, tenant, payloads, lens, &e);
    for (size_t i = 0; i < n; i++) {
        if (slot[i] != SIZE_MAX) {
            targets[i].rc = calls[slot[i]].rc;
            targets[i].done = true;
        }
        ok += targets[i].rc == 0;
    }
    free(target_of);
    free(slot);
    free(lens);
    free(payloads);
    free(calls);
    return ok;
}

size_t hp_rpc_call_all(hp_rpc_target_t *targets, size_t n, const char *method, hp_str_t tenant,
                       const void *payload, size_t len, int timeout_ms)
{
    return hp_rpc_call_until(targets, n, method, tenant, payload, len, timeout_ms, NULL, NULL);
}
