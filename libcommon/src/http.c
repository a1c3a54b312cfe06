/* HTTP server: h2o on the caller's libuv loop with one catch-all h2o handler
 * that does hotpath's own routing, runs each handler on the worker pool and
 * sends the result back on the loop.
 *
 * Threads: everything that touches h2o, libuv handles, the connection list
 * and the live-job list runs on the loop thread. Workers only run handlers
 * and hand finished jobs back through s->done (under s->mu) + uv_async_send.
 *
 * Client gone: each in-flight job has a tiny req_ref_t in the h2o request's
 * pool; its dispose callback (loop thread) clears job->req, so a late result
 * is freed instead of sent.
 *
 * Inline routes run their handler inside on_req on the loop thread, on a
 * job that never enters the pool or the in-flight count.
 *
 * Request bodies are copied once, from h2o's buffer into the job's arena.
 * Taking h2o's buffer over instead is not safe: for HTTP/1.1 the entity is
 * a slice of the socket's read buffer, which h2o reuses for the next
 * request, and every h2o buffer comes from the loop thread's recycling
 * allocator, which workers must not free into.
 *
 * Stop: close the listener; while handlers still run and the grace period
 * lasts, keep delivering their results (the async stays open); then answer
 * the rest with 503, close the async, shut every connection's socket down
 * so h2o closes it, and once the last one is gone dispose the h2o context
 * from an idle callback. Then nothing of the server is left on the loop. */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "hotpath/http.h"
#include "hotpath/log.h"

#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
#define LISTEN_BACKLOG 1024

typedef struct route {
    char *method; /* NULL: any method */
    char *path;   /* for prefix routes, without the trailing '*' */
    size_t path_len;
    bool prefix;
    hp_http_handler_fn fn;
    void *ctx;
    bool on_loop; /* an inline route: the handler runs on the loop thread */
} route_t;

typedef struct conn {
    uv_tcp_t tcp; /* first member: h2o's close callback hands back &tcp */
    hp_http_server_t *s;
    struct conn *prev, *next;
} conn_t;

typedef struct job job_t;

/* Allocated in the h2o request's pool; disposed with it. */
typedef struct req_ref {
    job_t *job; /* NULL once the job was answered or dropped */
} req_ref_t;

/* A response body handed to h2o without copying; freed with the request. */
typedef struct body_ref {
    uint8_t *data;
} body_ref_t;

struct job {
    hp_http_server_t *s;
    job_t *next;                  /* s->done link, under s->mu */
    job_t *live_prev, *live_next; /* s->live link, loop thread only */
    h2o_req_t *req;               /* loop thread only; NULL when the client is gone */
    req_ref_t *ref;               /* loop thread only */
    hp_http_handler_fn fn;
    void *fn_ctx;
    hp_arena_t arena;
    hp_http_request_t hreq;
    hp_http_response_t resp;
};

typedef struct handler_ext {
    h2o_handler_t super;
    hp_http_server_t *s;
} handler_ext_t;

struct hp_http_server {
    uv_loop_t *loop;
    hp_pool_t *pool;
    int port;
    route_t *routes;
    size_t n_routes, cap_routes;

    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;

    uv_tcp_t listener;
    uv_async_t async;
    bool listener_inited, async_inited;
    uv_timer_t grace_timer; /* ends the graceful part of stop */
    bool grace_timer_inited;
    int64_t grace_ms;
    size_t max_inflight;
    uv_idle_t dispose_idle; /* disposes the h2o context once stop's closes are done */
    bool dispose_scheduled, ctx_disposed;
    int open_handles; /* our uv handles not yet closed */
    conn_t *conns;    /* loop thread only */
    size_t n_conns;
    job_t *live;   /* jobs whose h2o request still waits; loop thread only */
    bool stopped;  /* loop thread only: stop began */
    bool draining; /* loop thread only: stop waits for live jobs */
    bool finished; /* loop thread only: stop's closes are issued */

    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when inflight drops to 0 */
    job_t *done_head, *done_tail;
    size_t inflight; /* jobs not yet freed */
    bool dropping;   /* after stop: workers free their results themselves */
};

/* ---- small helpers ------------------------------------------------------ */

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {499, "Client Closed Request"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

/* The reason phrase for a status (static string). */
static const char *reason_phrase(int status)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* A lower-cased copy of s[0..n) in the arena. */
static hp_str_t arena_lower(hp_arena_t *a, const char *s, size_t n)
{
    char *p = hp_arena_strndup(a, s, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)tolower((unsigned char)p[i]);
    return (hp_str_t){p, n};
}

/* A lower-cased copy of s[0..n) in h2o's request pool. */
static char *pool_lower(h2o_mem_pool_t *pool, const char *s, size_t n)
{
    char *p = h2o_mem_alloc_pool(pool, n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)tolower((unsigned char)s[i]);
    p[n] = '\0';
    return p;
}

/* The request path without its query string (borrowed from req). */
static hp_str_t req_path(const h2o_req_t *req)
{
    size_t n = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    return (hp_str_t){req->path.base, n};
}

/* ---- routing -------------------------------------------------------------- */

/* True when route r's path matches path (exactly, or by prefix). */
static bool route_path_matches(const route_t *r, hp_str_t path)
{
    if (r->prefix)
        return path.n >= r->path_len && memcmp(path.p, r->path, r->path_len) == 0;
    return path.n == r->path_len && memcmp(path.p, r->path, r->path_len) == 0;
}

/* The first route matching method and path, or NULL; *path_known tells
 * whether some route matched the path with another method (405, not 404). */
static const route_t *route_find(const hp_http_server_t *s, hp_str_t method, hp_str_t path, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route_t *r = &s->routes[i];
        if (!route_path_matches(r, path))
            continue;
        if (r->method == NULL || hp_str_eq_c(method, r->method))
            return r;
        *path_known = true;
    }
    return NULL;
}

/* The methods that the routes matching path accept, comma-separated, in
 * the request's pool (for the Allow header of a 405). */
static h2o_iovec_t allowed_methods(const hp_http_server_t *s, h2o_mem_pool_t *pool, hp_str_t path)
{
    size_t cap = 1;
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].method && route_path_matches(&s->routes[i], path))
            cap += strlen(s->routes[i].method) + 2;
    char *out = h2o_mem_alloc_pool(pool, cap);
    size_t n = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route_t *r = &s->routes[i];
        if (r->method == NULL || !route_path_matches(r, path))
            continue;
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", r->method);
    }
    return h2o_iovec_init(out, n);
}

/* ---- sending on the loop ------------------------------------------------ */

static bool is_head(const h2o_req_t *req)
{
    return req->method.len == 4 && memcmp(req->method.base, "HEAD", 4) == 0;
}

/* Answers req at once with msg and a newline as text/plain (loop thread). */
static void send_plain(h2o_req_t *req, int status, const char *msg)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(DEFAULT_CONTENT_TYPE));
    size_t n = strlen(msg);
    char *body = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(body, msg, n);
    body[n] = '\n';
    req->res.content_length = n + 1;
    h2o_send_inline(req, body, n + 1); /* h2o omits the body for HEAD */
}

/* h2o disposes a request: frees the response body it carried. */
static void body_ref_dispose(void *p)
{
    free(((body_ref_t *)p)->data);
}

/* Copies status and headers of resp into req (strings into req's pool). */
static void set_response_head(h2o_req_t *req, const hp_http_response_t *resp)
{
    const char *ct = resp->content_type ? resp->content_type : DEFAULT_CONTENT_TYPE;
    int status = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    h2o_iovec_t v = h2o_strdup(&req->pool, ct, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, v.base, v.len);
    for (size_t i = 0; i < resp->n_headers; i++) {
        const hp_http_header_t *h = &resp->headers[i];
        char *name = pool_lower(&req->pool, h->name.p, h->name.n);
        v = h2o_strdup(&req->pool, h->value.p, h->value.n);
        h2o_add_header_by_str(&req->pool, &req->res.headers, name, h->name.n, 1, NULL, v.base, v.len);
    }
}

/* Sends resp on req; the body's storage moves into req's pool, freed when
 * h2o disposes the request (after the write completes or fails). */
static void send_response(h2o_req_t *req, hp_http_response_t *resp)
{
    set_response_head(req, resp);
    size_t len = 0;
    h2o_iovec_t buf = {NULL, 0};
    if (resp->body.len > 0) {
        body_ref_t *b = h2o_mem_alloc_shared(&req->pool, sizeof(*b), body_ref_dispose);
        b->data = hp_buf_take(&resp->body, &len);
        buf = h2o_iovec_init(b->data, len);
    }
    /* a 304 carries no Content-Length unless it is the 200's (RFC 9110 8.6): none */
    req->res.content_length = resp->status == 304 ? SIZE_MAX : len;
    h2o_generator_t *gen = h2o_mem_alloc_pool(&req->pool, sizeof(*gen));
    gen->proceed = NULL; /* everything goes out in one FINAL send */
    gen->stop = NULL;
    h2o_start_response(req, gen);
    /* h2o_send does not strip bodies: HEAD gets the length, not the bytes. */
    h2o_send(req, &buf, len && !is_head(req) ? 1 : 0, H2O_SEND_STATE_FINAL);
}

/* ---- jobs ----------------------------------------------------------------- */

/* Adds j to the jobs whose h2o request still waits (loop thread). */
static void live_link(hp_http_server_t *s, job_t *j)
{
    j->live_prev = NULL;
    j->live_next = s->live;
    if (s->live)
        s->live->live_prev = j;
    s->live = j;
}

/* Takes j off the waiting list (loop thread). */
static void live_unlink(hp_http_server_t *s, job_t *j)
{
    if (j->live_prev)
        j->live_prev->live_next = j->live_next;
    else
        s->live = j->live_next;
    if (j->live_next)
        j->live_next->live_prev = j->live_prev;
    j->live_prev = j->live_next = NULL;
}

/* Cuts the tie between a job and its h2o request (loop thread). */
static void job_detach(job_t *j)
{
    live_unlink(j->s, j);
    if (j->ref)
        j->ref->job = NULL;
    j->ref = NULL;
    j->req = NULL;
}

/* h2o disposed the request (client gone, or response done): forget it.
 * A stop that waits for live jobs is woken when the last one goes. */
static void req_ref_dispose(void *p)
{
    req_ref_t *ref = p;
    if (ref->job == NULL)
        return;
    hp_http_server_t *s = ref->job->s;
    job_detach(ref->job);
    if (s->draining && s->live == NULL)
        uv_async_send(&s->async);
}

/* Frees a job's memory; any thread. */
static void job_release(job_t *j)
{
    hp_buf_fini(&j->resp.body);
    hp_arena_fini(&j->arena);
    free(j);
}

/* Frees a pool job and counts it out; any thread. */
static void job_free(job_t *j)
{
    hp_http_server_t *s = j->s;
    job_release(j);
    pthread_mutex_lock(&s->mu);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

/* Copies the request headers, lower-cased, plus host (h2o keeps it apart). */
static void copy_headers(job_t *j, const h2o_req_t *req)
{
    size_t n = req->headers.size;
    hp_http_header_t *h = hp_arena_calloc(&j->arena, n + 1, sizeof(*h));
    for (size_t i = 0; i < n; i++) {
        const h2o_header_t *src = &req->headers.entries[i];
        h[i].name = arena_lower(&j->arena, src->name->base, src->name->len);
        h[i].value.p = hp_arena_strndup(&j->arena, src->value.base, src->value.len);
        h[i].value.n = src->value.len;
    }
    if (req->authority.base != NULL) {
        h[n].name = HP_STR("host");
        h[n].value.p = hp_arena_strndup(&j->arena, req->authority.base, req->authority.len);
        h[n].value.n = req->authority.len;
        n++;
    }
    j->hreq.headers = h;
    j->hreq.n_headers = n;
}

/* A copy of one slice into the job's arena, NUL-terminated. */
static hp_str_t job_copy(job_t *j, const char *p, size_t n)
{
    return (hp_str_t){hp_arena_strndup(&j->arena, p ? p : "", p ? n : 0), p ? n : 0};
}

/* Builds a job from req: every part copied off the connection. */
static job_t *job_new(hp_http_server_t *s, const route_t *r, h2o_req_t *req)
{
    job_t *j = hp_xcalloc(1, sizeof(*j));
    j->s = s;
    j->fn = r->fn;
    j->fn_ctx = r->ctx;
    hp_arena_init(&j->arena, 0);
    hp_str_t path = req_path(req);
    j->hreq.method = job_copy(j, req->method.base, req->method.len);
    j->hreq.path = job_copy(j, path.p, path.n);
    if (req->query_at != SIZE_MAX)
        j->hreq.query = job_copy(j, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    else
        j->hreq.query = job_copy(j, NULL, 0);
    copy_headers(j, req);
    j->hreq.body = job_copy(j, req->entity.base, req->entity.len);
    j->hreq.arena = &j->arena;
    j->hreq.received_ms = hp_mono_ms();
    j->resp.status = 200;
    hp_buf_init(&j->resp.body);
    return j;
}

/* Worker side: runs the handler, then hands the job back to the loop, or
 * frees it when the server has stopped. */
static void job_run(void *arg)
{
    job_t *j = arg;
    hp_http_server_t *s = j->s;
    j->fn(j->fn_ctx, &j->hreq, &j->resp);
    pthread_mutex_lock(&s->mu);
    if (s->dropping) {
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        return;
    }
    j->next = NULL;
    if (s->done_tail)
        s->done_tail->next = j;
    else
        s->done_head = j;
    s->done_tail = j;
    /* Sent under the lock: stop closes the async only after setting dropping. */
    uv_async_send(&s->async);
    pthread_mutex_unlock(&s->mu);
}

/* Takes the list of finished jobs. */
static job_t *take_done(hp_http_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    job_t *j = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    return j;
}

/* Sends each finished job's response if its client is still there, then
 * frees it (loop thread). */
static void deliver(job_t *j)
{
    while (j != NULL) {
        job_t *next = j->next;
        h2o_req_t *req = j->req;
        if (req != NULL) {
            job_detach(j);
            send_response(req, &j->resp);
        }
        job_free(j);
        j = next;
    }
}

static void finish_stop(hp_http_server_t *s);

/* Workers signalled: deliver what they finished; a draining stop ends
 * once no request waits any more. */
static void on_async(uv_async_t *a)
{
    hp_http_server_t *s = a->data;
    deliver(take_done(s));
    if (s->draining && s->live == NULL)
        finish_stop(s);
}

/* ---- h2o entry point ------------------------------------------------------ */

/* Answers a request no route takes: 405 with Allow, or 404. */
static void send_unrouted(hp_http_server_t *s, h2o_req_t *req, hp_str_t path, bool path_known)
{
    char msg[256];
    if (path_known) {
        h2o_iovec_t allow = allowed_methods(s, &req->pool, path);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow.base, allow.len);
        snprintf(msg, sizeof(msg), "method %.*s not allowed for %.*s (allowed: %.*s)",
                 (int)HP_MIN(req->method.len, 16), req->method.base, (int)HP_MIN(path.n, 160), path.p,
                 (int)allow.len, allow.base);
        send_plain(req, 405, msg);
        return;
    }
    snprintf(msg, sizeof(msg), "no route for %.*s %.*s", (int)HP_MIN(req->method.len, 16), req->method.base,
             (int)HP_MIN(path.n, 200), path.p);
    send_plain(req, 404, msg);
}

/* Runs an inline route's handler here, on the loop thread, and answers. */
static void run_inline(hp_http_server_t *s, const route_t *r, h2o_req_t *req)
{
    job_t *j = job_new(s, r, req);
    j->fn(j->fn_ctx, &j->hreq, &j->resp);
    send_response(req, &j->resp); /* copies what it needs into req's pool */
    job_release(j);
}

/* Counts a new pool job in unless max_inflight are already queued or
 * running. */
static bool admit(hp_http_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool ok = s->inflight < s->max_inflight;
    if (ok)
        s->inflight++;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* h2o's handler for every path: routes, then runs an inline route at once
 * or copies the request into a job and queues it on the pool. Always
 * handles the request (returns 0). */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    hp_http_server_t *s = ((handler_ext_t *)self)->s;
    if (s->stopped) {
        send_plain(req, 503, "server is shutting down");
        return 0;
    }
    hp_str_t method = {req->method.base, req->method.len};
    hp_str_t path = req_path(req);
    bool path_known;
    const route_t *r = route_find(s, method, path, &path_known);
    if (r == NULL) {
        send_unrouted(s, req, path, path_known);
        return 0;
    }
    if (r->on_loop) {
        run_inline(s, r, req);
        return 0;
    }
    if (!admit(s)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "server busy: %zu requests in flight, try again later", s->max_inflight);
        send_plain(req, 503, msg);
        return 0;
    }
    job_t *j = job_new(s, r, req);
    j->req = req;
    j->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*j->ref), req_ref_dispose);
    j->ref->job = j;
    live_link(s, j);
    hp_pool_submit(s->pool, job_run, j);
    return 0;
}

/* ---- connections ---------------------------------------------------------- */

/* Takes c off the server's connection list (loop thread). */
static void conn_unlink(hp_http_server_t *s, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
}

static void maybe_dispose(hp_http_server_t *s);

/* h2o closed a connection's socket. */
static void on_conn_close(uv_handle_t *h)
{
    conn_t *c = (conn_t *)h;
    hp_http_server_t *s = c->s;
    conn_unlink(s, c);
    free(c);
    maybe_dispose(s);
}

/* A connection that never reached h2o. */
static void on_raw_close(uv_handle_t *h)
{
    free(h);
}

/* A new connection: wrap it for h2o and track it so stop can shut it. */
static void on_accept(uv_stream_t *listener, int status)
{
    hp_http_server_t *s = listener->data;
    if (status < 0) {
        HP_WARN("http accept failed", "err=%s", uv_strerror(status));
        return;
    }
    conn_t *c = hp_xcalloc(1, sizeof(*c));
    c->s = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_raw_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    h2o_accept(&s->accept_ctx, sock);
}

/* ---- setup ---------------------------------------------------------------- */

/* Opens a listening TCP socket on host:port with plain syscalls, so every
 * fallible step happens before a libuv handle exists. Returns the fd. */
static int listen_socket(const hp_http_config_t *cfg, int *port, hp_err_t *err)
{
    struct sockaddr_storage ss;
    const char *host = cfg->host ? cfg->host : "0.0.0.0";
    if (uv_ip4_addr(host, cfg->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, cfg->port, (struct sockaddr_in6 *)&ss) != 0)
        return hp_err_set(err, HP_EINVAL, "http listen address %s is not an IP address", host);
    socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return hp_err_set(err, HP_EUNAVAIL, "cannot listen on %s:%d: %s", host, cfg->port, strerror(e));
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* Registers the catch-all path "/" with the routing handler. */
static void config_init(hp_http_server_t *s, const hp_http_config_t *cfg)
{
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("hotpath"));
    s->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : HP_HTTP_DEFAULT_MAX_INFLIGHT;
    s->grace_ms = cfg->graceful_timeout_ms > 0 ? cfg->graceful_timeout_ms : 0;
    if (cfg->max_body_bytes > 0)
        s->globalconf.max_request_entity_size = cfg->max_body_bytes;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler_ext_t *h = (handler_ext_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->s = s;
}

/* The listener, the async or a timer closed. */
static void on_handle_close(uv_handle_t *h)
{
    hp_http_server_t *s = h->data;
    s->open_handles--;
}

/* Wraps the listening fd (owned from here on) and the result async in
 * libuv handles. */
static int handles_init(hp_http_server_t *s, int fd, hp_err_t *err)
{
    int rc = uv_tcp_init(s->loop, &s->listener);
    if (rc != 0) {
        close(fd);
        return hp_err_set(err, HP_EINTERNAL, "http: uv_tcp_init: %s", uv_strerror(rc));
    }
    s->listener.data = s;
    s->listener_inited = true;
    s->open_handles++;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc != 0)
        close(fd);
    else
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_accept);
    if (rc != 0)
        return hp_err_set(err, HP_EUNAVAIL, "http: cannot listen on port %d: %s", s->port, uv_strerror(rc));
    rc = uv_async_init(s->loop, &s->async, on_async);
    if (rc != 0)
        return hp_err_set(err, HP_EINTERNAL, "http: uv_async_init: %s", uv_strerror(rc));
    s->async.data = s;
    s->async_inited = true;
    s->open_handles++;
    return 0;
}

/* Undoes a half-built server inside hp_http_server_new (h2o's context is
 * always initialised by then). */
static void destroy_unstarted(hp_http_server_t *s)
{
    if (s->listener_inited)
        uv_close((uv_handle_t *)&s->listener, on_handle_close);
    if (s->async_inited)
        uv_close((uv_handle_t *)&s->async, on_handle_close);
    h2o_context_dispose(&s->ctx); /* its uv_run(NOWAIT) also completes our closes */
    h2o_config_dispose(&s->globalconf);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Ignores SIGPIPE unless the process already chose a disposition: a
 * client closing mid-response must surface as EPIPE on the loop's write,
 * not kill the process (libuv writes without MSG_NOSIGNAL). */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int hp_http_server_new(uv_loop_t *loop, hp_pool_t *pool, const hp_http_config_t *cfg, hp_http_server_t **out,
                       hp_err_t *err)
{
    *out = NULL;
    int port = 0;
    int fd = listen_socket(cfg, &port, err);
    if (fd < 0)
        return fd;
    hp_http_server_t *s = hp_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->pool = pool;
    s->port = port;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    config_init(s, cfg);
    h2o_context_init(&s->ctx, s->loop, &s->globalconf);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    int rc = handles_init(s, fd, err);
    if (rc != 0) {
        destroy_unstarted(s);
        return rc;
    }
    ignore_sigpipe();
    *out = s;
    return 0;
}

/* Appends a route to the table. */
static void route_add(hp_http_server_t *s, const char *method, const char *path, hp_http_handler_fn fn,
                      void *ctx, bool on_loop)
{
    HP_GROW(s->routes, s->cap_routes, s->n_routes + 1);
    route_t *r = &s->routes[s->n_routes++];
    size_t n = strlen(path);
    r->prefix = n > 0 && path[n - 1] == '*';
    r->path_len = r->prefix ? n - 1 : n;
    r->path = hp_xstrndup(path, r->path_len);
    r->method = method ? hp_xstrdup(method) : NULL;
    r->fn = fn;
    r->ctx = ctx;
    r->on_loop = on_loop;
}

void hp_http_route(hp_http_server_t *s, const char *method, const char *path, hp_http_handler_fn fn,
                   void *ctx)
{
    route_add(s, method, path, fn, ctx, false);
}

void hp_http_route_inline(hp_http_server_t *s, const char *method, const char *path, hp_http_handler_fn fn,
                          void *ctx)
{
    route_add(s, method, path, fn, ctx, true);
}

int hp_http_port(const hp_http_server_t *s)
{
    return s->port;
}

/* ---- stop and free -------------------------------------------------------- */

/* Answers every request whose handler still runs with 503 and detaches its
 * job; the worker frees the job when it finishes. */
static void abort_live(hp_http_server_t *s)
{
    while (s->live != NULL) {
        job_t *j = s->live;
        h2o_req_t *req = j->req;
        job_detach(j);
        if (req != NULL) /* always, for a live job */
            send_plain(req, 503, "server is shutting down");
    }
}

/* Shuts every connection's socket down so h2o sees EOF (or EPIPE) and
 * closes it through its own path; keeps-alives and stuck writers included. */
static void shutdown_conns(hp_http_server_t *s)
{
    for (conn_t *c = s->conns; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (!uv_is_closing((uv_handle_t *)&c->tcp) && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}

/* Disposes the h2o context from an idle callback, at the top of a loop
 * iteration: h2o_context_dispose runs uv_run(NOWAIT) itself to finish its
 * timers' and queue's closes, and from here that nested run re-enters
 * nothing. Afterwards no handle of this server is left on the loop, so the
 * loop's last run ends, and a caller closing whatever remains finds none. */
static void on_dispose_idle(uv_idle_t *idle)
{
    hp_http_server_t *s = idle->data;
    uv_idle_stop(idle);
    uv_close((uv_handle_t *)idle, on_handle_close);
    h2o_context_dispose(&s->ctx);
    s->ctx_disposed = true;
}

/* After stop's end, once the last connection has closed: schedules the
 * context's disposal (connections use it until they are gone). */
static void maybe_dispose(hp_http_server_t *s)
{
    if (!s->finished || s->n_conns > 0 || s->dispose_scheduled)
        return;
    s->dispose_scheduled = true;
    uv_idle_init(s->loop, &s->dispose_idle);
    s->dispose_idle.data = s;
    s->open_handles++;
    uv_idle_start(&s->dispose_idle, on_dispose_idle);
}

/* The end of stop (at once, when the last live job answered, or when the
 * grace period ran out): answers what still runs with 503, makes workers
 * free their own late results, and closes everything. Runs once. */
static void finish_stop(hp_http_server_t *s)
{
    if (s->finished)
        return;
    s->finished = true;
    s->draining = false;
    if (s->grace_timer_inited) {
        uv_timer_stop(&s->grace_timer);
        uv_close((uv_handle_t *)&s->grace_timer, on_handle_close);
    }
    deliver(take_done(s)); /* results that made it in time still go out */
    abort_live(s);
    pthread_mutex_lock(&s->mu);
    s->dropping = true;
    pthread_mutex_unlock(&s->mu);
    deliver(take_done(s)); /* all detached by now: only frees */
    uv_close((uv_handle_t *)&s->async, on_handle_close);
    shutdown_conns(s);
    maybe_dispose(s);
}

/* The grace period is over. */
static void on_grace_timeout(uv_timer_t *t)
{
    hp_http_server_t *s = t->data;
    if (s->live != NULL)
        HP_WARN("graceful shutdown timed out; answering the requests still running with 503",
                "timeout_ms=%lld", (long long)s->grace_ms);
    finish_stop(s);
}

/* Starts the grace period's timer; false when it cannot (stop then
 * finishes at once). */
static bool start_grace_timer(hp_http_server_t *s)
{
    if (uv_timer_init(s->loop, &s->grace_timer) != 0)
        return false;
    s->grace_timer.data = s;
    s->grace_timer_inited = true;
    s->open_handles++;
    uv_timer_start(&s->grace_timer, on_grace_timeout, (uint64_t)s->grace_ms, 0);
    return true;
}

void hp_http_server_stop(hp_http_server_t *s)
{
    if (s == NULL || s->stopped)
        return;
    s->stopped = true;
    uv_close((uv_handle_t *)&s->listener, on_handle_close);
    /* Not h2o_context_request_shutdown: its HTTP/2 GOAWAY timer would stay
     * linked in the context; the sockets are shut down at the end anyway. */
    s->ctx.shutdown_requested = 1;
    deliver(take_done(s));
    if (s->live != NULL && s->grace_ms > 0 && start_grace_timer(s)) {
        s->draining = true; /* on_async finishes once the last one answered */
        return;
    }
    finish_stop(s);
}

void hp_http_server_free(hp_http_server_t *s)
{
    if (s == NULL)
        return;
    if (!s->ctx_disposed || s->open_handles > 0) {
        /* Freeing now would leave libuv with dangling handles: leak instead. */
        HP_ERROR("http server freed before stop and the loop's closes; leaking it",
                 "stopped=%d handles=%d conns=%zu", s->stopped, s->open_handles, s->n_conns);
        return;
    }
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    h2o_config_dispose(&s->globalconf);
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
    }
    free(s->routes);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- request helpers -------------------------------------------------------- */

hp_str_t hp_http_header(const hp_http_request_t *r, const char *lname)
{
    size_t n = strlen(lname);
    for (size_t i = 0; i < r->n_headers; i++) {
        const hp_http_header_t *h = &r->headers[i];
        if (h->name.n == n && strncasecmp(h->name.p, lname, n) == 0)
            return h->value;
    }
    return (hp_str_t){NULL, 0};
}

/* The value of a hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the character at s.p[*i] (a %XX escape, '+' or a plain byte) and
 * advances *i past it. A malformed escape stays as it is. */
static char decode_next(hp_str_t s, size_t *i, bool plus_space)
{
    char c = s.p[(*i)++];
    if (c == '+' && plus_space)
        return ' ';
    if (c != '%' || *i + 2 > s.n)
        return c;
    int hi = hexval(s.p[*i]), lo = hexval(s.p[*i + 1]);
    if (hi < 0 || lo < 0)
        return c;
    *i += 2;
    return (char)(hi << 4 | lo);
}

hp_str_t hp_http_urldecode(hp_arena_t *a, hp_str_t s, bool plus_space)
{
    char *out = hp_arena_alloc(a, s.n + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.n;)
        out[n++] = decode_next(s, &i, plus_space);
    out[n] = '\0';
    return (hp_str_t){out, n};
}

/* True when the encoded query key raw decodes to name; allocates nothing. */
static bool key_equals(hp_str_t raw, const char *name)
{
    size_t i = 0, k = 0;
    while (i < raw.n) {
        if (name[k] == '\0' || decode_next(raw, &i, true) != name[k])
            return false;
        k++;
    }
    return name[k] == '\0';
}

bool hp_http_query(const hp_http_request_t *r, const char *name, hp_str_t *out)
{
    hp_str_t q = r->query;
    size_t i = 0;
    while (i < q.n) {
        const char *amp = memchr(q.p + i, '&', q.n - i);
        size_t end = amp ? (size_t)(amp - q.p) : q.n;
        const char *eq = memchr(q.p + i, '=', end - i);
        size_t key_end = eq ? (size_t)(eq - q.p) : end;
        if (key_equals((hp_str_t){q.p + i, key_end - i}, name)) {
            hp_str_t v = eq ? (hp_str_t){eq + 1, end - key_end - 1} : (hp_str_t){"", 0};
            *out = hp_http_urldecode(r->arena, v, true);
            return true;
        }
        i = end + 1;
    }
    *out = (hp_str_t){"", 0}; /* callers may read it unchecked: never leave it unset */
    return false;
}

/* ---- response helpers ------------------------------------------------------- */

void hp_http_set_header(hp_http_response_t *resp, const char *name, const char *value)
{
    if (resp->n_headers >= HP_HTTP_MAX_RESP_HEADERS) {
        HP_WARN("too many response headers; dropping one", "name=%s max=%d", name, HP_HTTP_MAX_RESP_HEADERS);
        return;
    }
    resp->headers[resp->n_headers].name = hp_str_c(name);
    resp->headers[resp->n_headers].value = hp_str_c(value);
    resp->n_headers++;
}

void hp_http_error(hp_http_response_t *resp, int status, const char *msg)
{
    resp->status = status;
    resp->content_type = DEFAULT_CONTENT_TYPE;
    hp_buf_reset(&resp->body);
    hp_buf_puts(&resp->body, msg);
    hp_buf_putc(&resp->body, '\n');
}

void hp_http_error_from(hp_http_response_t *resp, const hp_err_t *err)
{
    hp_http_error(resp, hp_err_http_status(err->code), err->msg);
}
