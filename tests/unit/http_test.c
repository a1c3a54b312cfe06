/* Unit tests for the HTTP server (http.h): a real server on 127.0.0.1 with
 * an ephemeral port, its loop on a thread, and plain-socket HTTP/1.1
 * clients. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hotpath/http.h"
#include "test.h"

#define MAX_BODY (4u << 20)

/* ---- the server under test ------------------------------------------------ */

typedef struct fixture fixture_t;
struct fixture {
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_timer_t watchdog;
    hp_pool_t *pool;
    hp_http_server_t *srv;
    pthread_t thread; /* the driver: the test's clients */
    void (*driver)(fixture_t *fx);
    int port;
    atomic_int slow_done;
    atomic_int stop_sent;
    atomic_int blocked;  /* h_block handlers running */
    atomic_int release;  /* set: h_block handlers return */
    atomic_int hello_runs;
    pthread_t loop_thread;
    bool stop_outside_loop; /* stop between two uv_run calls, as components do */
};

/* What a test changes in the server's configuration. */
typedef struct fx_opts {
    bool stop_outside_loop;
    size_t max_inflight;
    int64_t grace_ms;
} fx_opts_t;

static void h_hello(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    hp_str_t name = {"", 0}, x = {"", 0}, missing;
    bool has_name = hp_http_query(r, "name", &name);
    bool has_x = hp_http_query(r, "x", &x);
    bool has_missing = hp_http_query(r, "missing", &missing);
    atomic_fetch_add(&((fixture_t *)ctx)->hello_runs, 1);
    hp_buf_printf(&resp->body, "name=[%.*s]%d x=[%.*s]%d missing=%d", (int)name.n, name.p, has_name, (int)x.n,
                  x.p, has_x, has_missing);
    hp_http_set_header(resp, "X-Test", "yes");
    hp_http_set_header(resp, "x-path", hp_arena_strndup(r->arena, r->path.p, r->path.n));
}

static void h_echo(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    resp->content_type = "application/octet-stream";
    hp_buf_append(&resp->body, r->body.p, r->body.n);
}

static void h_prefix(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    hp_buf_printf(&resp->body, "prefix:%.*s", (int)r->path.n, r->path.p);
}

static void h_any(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    hp_buf_printf(&resp->body, "any:%.*s", (int)r->method.n, r->method.p);
}

static void h_headers(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    hp_str_t v = hp_http_header(r, "x-custom");
    hp_str_t host = hp_http_header(r, "host");
    hp_str_t none = hp_http_header(r, "x-absent");
    hp_buf_printf(&resp->body, "custom=[%.*s] host=%d absent=%d", (int)v.n, v.p ? v.p : "", host.p != NULL,
                  none.p != NULL);
}

static void h_error(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    hp_err_t err;
    (void)hp_err_set(&err, HP_ELIMIT, "tenant %s over its limit", "t1");
    hp_http_error_from(resp, &err);
}

static void h_slow(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    fixture_t *fx = ctx;
    usleep(200 * 1000);
    hp_buf_puts(&resp->body, "slow done");
    atomic_fetch_add(&fx->slow_done, 1);
}

/* Blocks until the driver releases it (at most 10 s). */
static void h_block(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    fixture_t *fx = ctx;
    atomic_fetch_add(&fx->blocked, 1);
    for (int i = 0; i < 1000 && !atomic_load(&fx->release); i++)
        usleep(10 * 1000);
    hp_buf_puts(&resp->body, "unblocked");
}

/* An inline handler: says whether it runs on the loop's thread. */
static void h_inline(void *ctx, const hp_http_request_t *r, hp_http_response_t *resp)
{
    fixture_t *fx = ctx;
    hp_buf_printf(&resp->body, "on_loop=%d", pthread_equal(pthread_self(), fx->loop_thread) != 0);
}

/* The driver asked for stop: stop the server from this loop callback, or,
 * like a component's signal handler, only break out of uv_run. */
static void on_stop(uv_async_t *a)
{
    fixture_t *fx = a->data;
    if (fx->stop_outside_loop)
        uv_stop(a->loop);
    else
        hp_http_server_stop(fx->srv);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
}

/* Fires only when the loop is still running long after the test began. */
static void on_watchdog(uv_timer_t *t)
{
    fprintf(stderr, "  loop still running after 30 s: forcing it to stop\n");
    hp_t_cur_failed = 1;
    uv_stop(t->loop);
}

/* Asks the loop (from the driver thread) to stop the server. */
static void fx_request_stop(fixture_t *fx)
{
    if (!atomic_exchange(&fx->stop_sent, 1))
        uv_async_send(&fx->stop_async);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    ++*(int *)arg;
}

typedef void (*driver_fn)(fixture_t *fx);

static void *driver_main(void *arg)
{
    fixture_t *fx = arg;
    fx->driver(fx);
    fx_request_stop(fx);
    return NULL;
}

/* Runs a test the way a component runs: the server is created on this
 * thread, which then runs the loop, while the driver plays the clients on
 * another thread and finally asks for stop. Then pool stop, free, and the
 * loop must close with no handle left. */
static void with_server_opts(driver_fn driver, const fx_opts_t *o)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    bool stop_outside_loop = o->stop_outside_loop;
    fx->stop_outside_loop = stop_outside_loop;
    fx->loop_thread = pthread_self();
    REQUIRE(uv_loop_init(&fx->loop) == 0);
    REQUIRE(hp_pool_start(4, &fx->pool) == 0);
    hp_http_config_t cfg = {"127.0.0.1", 0, MAX_BODY, o->max_inflight, o->grace_ms};
    hp_err_t err;
    REQUIRE(hp_http_server_new(&fx->loop, fx->pool, &cfg, &fx->srv, &err) == 0);
    fx->port = hp_http_port(fx->srv);
    REQUIRE(fx->port > 0);
    hp_http_route(fx->srv, "GET", "/hello", h_hello, fx);
    hp_http_route(fx->srv, "POST", "/echo", h_echo, fx);
    hp_http_route(fx->srv, "PUT", "/echo", h_echo, fx);
    hp_http_route(fx->srv, "GET", "/prefix/*", h_prefix, fx);
    hp_http_route(fx->srv, NULL, "/any", h_any, fx);
    hp_http_route(fx->srv, "GET", "/headers", h_headers, fx);
    hp_http_route(fx->srv, "GET", "/error", h_error, fx);
    hp_http_route(fx->srv, "GET", "/slow", h_slow, fx);
    hp_http_route(fx->srv, "GET", "/block", h_block, fx);
    hp_http_route_inline(fx->srv, "GET", "/inline", h_inline, fx);
    REQUIRE(uv_async_init(&fx->loop, &fx->stop_async, on_stop) == 0);
    fx->stop_async.data = fx;
    REQUIRE(uv_timer_init(&fx->loop, &fx->watchdog) == 0);
    REQUIRE(uv_timer_start(&fx->watchdog, on_watchdog, 30000, 0) == 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    fx->driver = driver;
    REQUIRE(pthread_create(&fx->thread, NULL, driver_main, fx) == 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    if (stop_outside_loop) {
        hp_http_server_stop(fx->srv);
        uv_run(&fx->loop, UV_RUN_DEFAULT); /* the loop's last run */
    }
    pthread_join(fx->thread, NULL);
    /* Nothing of the server is left on the loop: a component may close
     * whatever remains before freeing it. */
    int left = 0;
    uv_walk(&fx->loop, count_handle, &left);
    CHECK_EQ_INT(left, 0);
    hp_pool_stop(fx->pool);
    hp_http_server_free(fx->srv);
    CHECK_EQ_INT(uv_loop_close(&fx->loop), 0);
    free(fx);
}

static void with_server_mode(driver_fn driver, bool stop_outside_loop)
{
    fx_opts_t o = {stop_outside_loop, 0, 0};
    with_server_opts(driver, &o);
}

static void with_server(driver_fn driver)
{
    with_server_mode(driver, false);
}

/* REQUIRE for driver threads (REQUIRE's longjmp must stay on main). */
#define ENSURE(cond)                                                                                         \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "  %s:%d: ENSURE failed: %s\n", __FILE__, __LINE__, #cond);                      \
            hp_t_cur_failed = 1;                                                                             \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

/* ---- a tiny HTTP/1.1 client ------------------------------------------------ */

typedef struct resp {
    int status;
    char *head; /* status line + headers, NUL-terminated */
    char *body;
    size_t body_len;
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until EOF (or timeout) into a malloc'd buffer. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = hp_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = hp_xrealloc(buf, cap + 1);
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Splits a raw response into status, head and body. */
static bool parse_resp(char *raw, size_t n, resp_t *out)
{
    memset(out, 0, sizeof(*out));
    char *end = strstr(raw, "\r\n\r\n");
    if (end == NULL || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1) {
        free(raw);
        return false;
    }
    size_t head_len = (size_t)(end - raw);
    out->head = strndup(raw, head_len);
    out->body_len = n - head_len - 4;
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
    free(raw);
    return true;
}

/* Sends raw (a full request with Connection: close) and reads the answer. */
static bool exchange(int port, const void *raw, size_t n, resp_t *out)
{
    int fd = dial(port);
    if (fd < 0)
        return false;
    bool ok = send_all(fd, raw, n);
    size_t len;
    char *buf = read_all(fd, &len);
    close(fd);
    return parse_resp(buf, len, out) && ok;
}

static bool request(int port, const char *method, const char *target, const char *body, size_t body_len,
                    resp_t *out)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nX-Custom: Some Value\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     method, target, body_len);
    size_t total = (size_t)n + body_len;
    char *raw = malloc(total);
    memcpy(raw, head, (size_t)n);
    if (body_len)
        memcpy(raw + n, body, body_len);
    bool ok = exchange(port, raw, total, out);
    free(raw);
    return ok;
}

/* The value of a response header (case-insensitive name), into buf. */
static const char *resp_header(const resp_t *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            snprintf(buf, cap, "%.*s", (int)len, v);
            return buf;
        }
    }
    return NULL;
}

/* ---- tests ----------------------------------------------------------------- */

/* A GET route decodes percent escapes and '+' in the query; headers set by
 * the handler reach the client. */
static void drive_get_query_and_headers(fixture_t *fx)
{
    resp_t r;
    ENSURE(request(fx->port, "GET", "/hello?name=a%7Bb%3D1%7D&x=+y", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "name=[a{b=1}]1 x=[ y]1 missing=0");
    char v[256];
    CHECK_EQ_STR(resp_header(&r, "x-test", v, sizeof(v)), "yes");
    CHECK_EQ_STR(resp_header(&r, "x-path", v, sizeof(v)), "/hello");
    CHECK_EQ_STR(resp_header(&r, "content-type", v, sizeof(v)), "text/plain; charset=utf-8");
    CHECK_EQ_STR(resp_header(&r, "content-length", v, sizeof(v)), "32");
    resp_free(&r);

    ENSURE(request(fx->port, "GET", "/headers", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "custom=[Some Value] host=1 absent=0");
    resp_free(&r);
}

/* A 3 MB POST body comes back byte for byte; so does a chunked upload. */
static void drive_post_echo_large_and_chunked(fixture_t *fx)
{
    size_t n = 3u << 20;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 2654435761u >> 13);
    resp_t r;
    ENSURE(request(fx->port, "POST", "/echo", body, n, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.body_len, n);
    CHECK(r.body_len == n && memcmp(r.body, body, n) == 0);
    char v[256];
    CHECK_EQ_STR(resp_header(&r, "content-type", v, sizeof(v)), "application/octet-stream");
    resp_free(&r);

    const char chunked[] = "PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    ENSURE(exchange(fx->port, chunked, sizeof(chunked) - 1, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "hello, world");
    resp_free(&r);
    free(body);
}

/* Unknown path: 404; known path, wrong method: 405 with Allow. */
static void drive_404_405(fixture_t *fx)
{
    resp_t r;
    ENSURE(request(fx->port, "GET", "/nope?x=1", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(r.body, "no route for GET /nope\n");
    resp_free(&r);

    ENSURE(request(fx->port, "DELETE", "/echo", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 405);
    char v[256];
    CHECK_EQ_STR(resp_header(&r, "allow", v, sizeof(v)), "POST, PUT");
    CHECK(strstr(r.body, "method DELETE not allowed for /echo") != NULL);
    resp_free(&r);

    /* the prefix route does not match its own parent path */
    ENSURE(request(fx->port, "GET", "/prefix", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 404);
    resp_free(&r);
}

/* Bodies over max_body_bytes get 413 before any handler runs, whether the
 * length is declared or the body is chunked. */
static void drive_413(fixture_t *fx)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Length: %u\r\n\r\n",
                     MAX_BODY + 1);
    resp_t r;
    ENSURE(exchange(fx->port, head, (size_t)n, &r));
    CHECK_EQ_INT(r.status, 413);
    resp_free(&r);

    /* chunked: 5 MB in 64 KiB chunks */
    int fd = dial(fx->port);
    ENSURE(fd >= 0);
    const char *h = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
    CHECK(send_all(fd, h, strlen(h)));
    size_t chunk = 65536;
    char *data = calloc(1, chunk + 16);
    int len = snprintf(data, 16, "%zx\r\n", chunk);
    memset(data + len, 'a', chunk);
    memcpy(data + len + chunk, "\r\n", 2);
    for (int i = 0; i < 80; i++)
        if (!send_all(fd, data, (size_t)len + chunk + 2))
            break; /* the server may close early: fine */
    size_t got;
    char *raw = read_all(fd, &got);
    close(fd);
    ENSURE(parse_resp(raw, got, &r));
    CHECK_EQ_INT(r.status, 413);
    resp_free(&r);
    free(data);
}

/* A '*' route matches by prefix; a NULL-method route takes HEAD too, and
 * HEAD answers carry the length but no body. */
static void drive_prefix_any_head(fixture_t *fx)
{
    resp_t r;
    ENSURE(request(fx->port, "GET", "/prefix/a/b?q=1", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "prefix:/prefix/a/b");
    resp_free(&r);

    ENSURE(request(fx->port, "POST", "/any", "x", 1, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "any:POST");
    resp_free(&r);

    ENSURE(request(fx->port, "HEAD", "/any", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    char v[64];
    CHECK_EQ_STR(resp_header(&r, "content-length", v, sizeof(v)), "8");
    CHECK_EQ_INT(r.body_len, 0);
    resp_free(&r);

    ENSURE(request(fx->port, "GET", "/error", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 429);
    CHECK_EQ_STR(r.body, "tenant t1 over its limit\n");
    resp_free(&r);
}

typedef struct {
    int port;
    int id;
    atomic_int *ok;
} client_arg_t;

static void *client_main(void *arg)
{
    client_arg_t *a = arg;
    char target[64], want[128];
    snprintf(target, sizeof(target), "/hello?name=c%d&x=%d", a->id, a->id * 7);
    snprintf(want, sizeof(want), "name=[c%d]1 x=[%d]1 missing=0", a->id, a->id * 7);
    resp_t r;
    if (request(a->port, "GET", target, NULL, 0, &r) && r.status == 200 && strcmp(r.body, want) == 0)
        atomic_fetch_add(a->ok, 1);
    resp_free(&r);
    return NULL;
}

/* 50 clients in parallel each get their own answer. */
static void drive_concurrent_clients(fixture_t *fx)
{
    enum { N = 50 };
    pthread_t th[N];
    client_arg_t args[N];
    atomic_int ok = 0;
    for (int i = 0; i < N; i++) {
        args[i] = (client_arg_t){fx->port, i, &ok};
        ENSURE(pthread_create(&th[i], NULL, client_main, &args[i]) == 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&ok), N);
}

/* A client that hangs up while a slow handler runs: the handler finishes,
 * its result is dropped, and the server keeps serving. */
static void drive_client_gone_before_response(fixture_t *fx)
{
    int fd = dial(fx->port);
    ENSURE(fd >= 0);
    const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send_all(fd, req, strlen(req)));
    usleep(50 * 1000);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&fx->slow_done) == 0; i++)
        usleep(10 * 1000);
    CHECK_EQ_INT(atomic_load(&fx->slow_done), 1);
    usleep(50 * 1000); /* let the loop see the dropped result */
    resp_t r;
    ENSURE(request(fx->port, "GET", "/hello?name=after", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
}

/* Two requests on one keep-alive connection, then stop: the idle
 * connection is closed by the server and the loop finishes. */
static void drive_stop_closes_keepalive(fixture_t *fx)
{
    int fd = dial(fx->port);
    ENSURE(fd >= 0);
    const char *req = "GET /hello?name=k HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        CHECK(send_all(fd, req, strlen(req)));
        char buf[1024];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        CHECK(n > 0);
        buf[n > 0 ? n : 0] = '\0';
        CHECK(strstr(buf, "name=[k]1") != NULL);
    }
    fx_request_stop(fx);
    char c;
    CHECK_EQ_INT(recv(fd, &c, 1, 0), 0); /* EOF: the server closed it */
    close(fd);
}

typedef struct {
    int port;
    resp_t r;
    bool ok;
} slow_client_t;

static void *slow_client_main(void *arg)
{
    slow_client_t *c = arg;
    c->ok = request(c->port, "GET", "/slow", NULL, 0, &c->r);
    return NULL;
}

/* Stop while a handler is still running: the waiting client is told 503,
 * the handler's late result is dropped, nothing leaks. */
static void drive_stop_with_request_in_flight(fixture_t *fx)
{
    slow_client_t c = {fx->port, {0}, false};
    pthread_t th;
    ENSURE(pthread_create(&th, NULL, slow_client_main, &c) == 0);
    for (int i = 0; i < 100 && hp_pool_pending(fx->pool) == 0; i++)
        usleep(5 * 1000);
    CHECK(hp_pool_pending(fx->pool) > 0);
    fx_request_stop(fx);
    pthread_join(th, NULL);
    CHECK(c.ok);
    CHECK_EQ_INT(c.r.status, 503);
    CHECK_EQ_STR(c.r.body, "server is shutting down\n");
    for (int i = 0; i < 200 && atomic_load(&fx->slow_done) == 0; i++)
        usleep(10 * 1000);
    CHECK_EQ_INT(atomic_load(&fx->slow_done), 1); /* it ran; its result was dropped */
    resp_free(&c.r);
}

/* ---- a minimal HTTP/2 (h2c, prior knowledge) client ------------------------ */

/* Sends the preface, an empty SETTINGS frame and one GET as a HEADERS frame
 * on stream 1 (HPACK: indexed :method GET and :scheme http, literal :path
 * and :authority). */
static bool h2_send_get(int fd, const char *path)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    unsigned char block[256];
    size_t n = 0, plen = strlen(path);
    if (plen > 120)
        return false;
    block[n++] = 0x82;
    block[n++] = 0x86;
    block[n++] = 0x44;
    block[n++] = (unsigned char)plen;
    memcpy(block + n, path, plen);
    n += plen;
    block[n++] = 0x41;
    block[n++] = 1;
    block[n++] = 'x';
    unsigned char head[9] = {0, 0, (unsigned char)n, 1, 0x05, 0, 0, 0, 1};
    return send_all(fd, preface, sizeof(preface) - 1) && send_all(fd, settings, 9) && send_all(fd, head, 9) &&
           send_all(fd, block, n);
}

static bool recv_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads frames until stream 1 ends; reports whether its HEADERS began with
 * :status 200 (HPACK index 8) and collects its DATA into body. */
static bool h2_read_response(int fd, bool *status_200, char *body, size_t cap)
{
    size_t blen = 0;
    *status_200 = false;
    for (int frames = 0; frames < 64; frames++) {
        unsigned char h[9], payload[16384];
        if (!recv_full(fd, h, 9))
            return false;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        uint32_t stream =
            ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffff;
        if (len > sizeof(payload) || !recv_full(fd, payload, len))
            return false;
        if (stream != 1)
            continue;
        if (h[3] == 1 && len > 0)
            *status_200 = payload[0] == 0x88;
        if (h[3] == 0 && blen + len < cap) {
            memcpy(body + blen, payload, len);
            blen += len;
        }
        if (h[4] & 0x01) { /* END_STREAM */
            body[blen] = '\0';
            return true;
        }
    }
    return false;
}

/* The same routes answer over HTTP/2. */
static void drive_http2(fixture_t *fx)
{
    int fd = dial(fx->port);
    ENSURE(fd >= 0);
    CHECK(h2_send_get(fd, "/hello?name=h2"));
    bool ok200;
    char body[512];
    CHECK(h2_read_response(fd, &ok200, body, sizeof(body)));
    CHECK(ok200);
    CHECK_EQ_STR(body, "name=[h2]1 x=[]0 missing=0");
    close(fd);
}

/* An HTTP/2 client that hangs up while its handler runs: h2o disposes the
 * request at once (unlike HTTP/1.1, which only notices on write), so the
 * late result must find its request gone and be dropped. */
static void drive_http2_client_gone(fixture_t *fx)
{
    int fd = dial(fx->port);
    ENSURE(fd >= 0);
    CHECK(h2_send_get(fd, "/slow"));
    for (int i = 0; i < 100 && hp_pool_pending(fx->pool) == 0; i++)
        usleep(2 * 1000);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&fx->slow_done) == 0; i++)
        usleep(10 * 1000);
    CHECK_EQ_INT(atomic_load(&fx->slow_done), 1);
    usleep(50 * 1000);
    resp_t r;
    ENSURE(request(fx->port, "GET", "/hello?name=after", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
}

/* ---- backpressure, inline routes, graceful stop ------------------------- */

typedef struct {
    int port;
    const char *target;
    resp_t r;
    bool ok;
} bg_client_t;

static void *bg_client_main(void *arg)
{
    bg_client_t *c = arg;
    c->ok = request(c->port, "GET", c->target, NULL, 0, &c->r);
    return NULL;
}

/* Waits (bounded) until n h_block handlers run. */
static bool wait_blocked(fixture_t *fx, int n)
{
    for (int i = 0; i < 500 && atomic_load(&fx->blocked) < n; i++)
        usleep(10 * 1000);
    return atomic_load(&fx->blocked) >= n;
}

/* max_inflight 1 with one handler running: the next request is answered
 * 503 at once without its handler ever running; an inline route still
 * answers, on the loop thread; once the first finishes, requests pass. */
static void drive_busy(fixture_t *fx)
{
    bg_client_t c = {fx->port, "/block", {0}, false};
    pthread_t th;
    ENSURE(pthread_create(&th, NULL, bg_client_main, &c) == 0);
    CHECK(wait_blocked(fx, 1));
    resp_t r;
    if (request(fx->port, "GET", "/hello?name=x", NULL, 0, &r)) {
        CHECK_EQ_INT(r.status, 503);
        CHECK(strstr(r.body, "server busy") != NULL);
        resp_free(&r);
    } else {
        CHECK(!"no answer while busy");
    }
    CHECK_EQ_INT(atomic_load(&fx->hello_runs), 0);
    if (request(fx->port, "GET", "/inline", NULL, 0, &r)) {
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_STR(r.body, "on_loop=1");
        resp_free(&r);
    } else {
        CHECK(!"no answer from the inline route");
    }
    atomic_store(&fx->release, 1);
    pthread_join(th, NULL);
    CHECK(c.ok);
    CHECK_EQ_INT(c.r.status, 200);
    CHECK_EQ_STR(c.r.body, "unblocked");
    resp_free(&c.r);
    ENSURE(request(fx->port, "GET", "/hello?name=after", NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
}

/* Every worker busy (4 of 4), max_inflight not reached: an inline route
 * answers anyway, because it never waits for a worker. */
static void drive_inline_when_pool_saturated(fixture_t *fx)
{
    enum { N = 4 };
    bg_client_t c[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        c[i] = (bg_client_t){fx->port, "/block", {0}, false};
        ENSURE(pthread_create(&th[i], NULL, bg_client_main, &c[i]) == 0);
    }
    CHECK(wait_blocked(fx, N));
    resp_t r;
    if (request(fx->port, "GET", "/inline", NULL, 0, &r)) {
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_STR(r.body, "on_loop=1");
        resp_free(&r);
    } else {
        CHECK(!"no answer from the inline route");
    }
    atomic_store(&fx->release, 1);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK(c[i].ok && c[i].r.status == 200);
        resp_free(&c[i].r);
    }
}

/* True once nothing listens on port any more (bounded wait). */
static bool wait_refused(int port)
{
    for (int i = 0; i < 200; i++) {
        int fd = dial(port);
        if (fd < 0)
            return true;
        close(fd);
        usleep(10 * 1000);
    }
    return false;
}

/* Stop with a grace period while a handler runs: the listener closes at
 * once, and the running request still gets its real answer. */
static void drive_graceful_stop(fixture_t *fx)
{
    bg_client_t c = {fx->port, "/block", {0}, false};
    pthread_t th;
    ENSURE(pthread_create(&th, NULL, bg_client_main, &c) == 0);
    CHECK(wait_blocked(fx, 1));
    fx_request_stop(fx);
    CHECK(wait_refused(fx->port));
    atomic_store(&fx->release, 1);
    pthread_join(th, NULL);
    CHECK(c.ok);
    CHECK_EQ_INT(c.r.status, 200);
    CHECK_EQ_STR(c.r.body, "unblocked");
    resp_free(&c.r);
}

/* A handler that outlives the grace period: its client gets 503 once the
 * period is over (the handler is still blocked then), and its late result
 * is dropped. */
static void drive_graceful_stop_times_out(fixture_t *fx)
{
    bg_client_t c = {fx->port, "/block", {0}, false};
    pthread_t th;
    ENSURE(pthread_create(&th, NULL, bg_client_main, &c) == 0);
    CHECK(wait_blocked(fx, 1));
    fx_request_stop(fx);
    pthread_join(th, NULL);
    CHECK(c.ok);
    CHECK_EQ_INT(c.r.status, 503);
    CHECK_EQ_STR(c.r.body, "server is shutting down\n");
    resp_free(&c.r);
    atomic_store(&fx->release, 1);
}

static void test_busy(void)
{
    fx_opts_t o = {false, 1, 0};
    with_server_opts(drive_busy, &o);
}
static void test_inline_when_pool_saturated(void)
{
    with_server(drive_inline_when_pool_saturated);
}
static void test_graceful_stop(void)
{
    fx_opts_t o = {false, 0, 20000};
    with_server_opts(drive_graceful_stop, &o);
    o.stop_outside_loop = true;
    with_server_opts(drive_graceful_stop, &o);
}
static void test_graceful_stop_times_out(void)
{
    fx_opts_t o = {true, 0, 100};
    with_server_opts(drive_graceful_stop_times_out, &o);
}

static void test_get_query_and_headers(void)
{
    with_server(drive_get_query_and_headers);
}
static void test_post_echo_large_and_chunked(void)
{
    with_server(drive_post_echo_large_and_chunked);
}
static void test_404_405(void)
{
    with_server(drive_404_405);
}
static void test_413(void)
{
    with_server(drive_413);
}
static void test_prefix_any_head(void)
{
    with_server(drive_prefix_any_head);
}
static void test_concurrent_clients(void)
{
    with_server(drive_concurrent_clients);
}
static void test_client_gone_before_response(void)
{
    with_server(drive_client_gone_before_response);
}
static void test_stop_closes_keepalive(void)
{
    with_server(drive_stop_closes_keepalive);
}
static void test_stop_with_request_in_flight(void)
{
    with_server(drive_stop_with_request_in_flight);
}
/* The way components stop: the loop breaks out of uv_run, then stop, then
 * the loop's last run must end by itself. */
static void test_stop_outside_loop(void)
{
    with_server_mode(drive_stop_with_request_in_flight, true);
    with_server_mode(drive_stop_closes_keepalive, true);
}

static void test_http2(void)
{
    with_server(drive_http2);
}
static void test_http2_client_gone(void)
{
    with_server(drive_http2_client_gone);
}

/* A bad listen address is refused with a message. */
static void test_bad_address(void)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    hp_pool_t *pool;
    REQUIRE(hp_pool_start(1, &pool) == 0);
    hp_http_config_t cfg = {"not-an-ip", 0, 1024};
    hp_http_server_t *s = (hp_http_server_t *)1;
    hp_err_t err;
    CHECK_EQ_INT(hp_http_server_new(&loop, pool, &cfg, &s, &err), HP_EINVAL);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "not-an-ip") != NULL);
    hp_pool_stop(pool);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* The decoding helpers on their own. */
static void test_urldecode(void)
{
    hp_arena_t a;
    hp_arena_init(&a, 0);
    hp_str_t s = hp_http_urldecode(&a, HP_STR("a%20b+c%zz%4"), false);
    CHECK_EQ_STR(s.p, "a b+c%zz%4");
    s = hp_http_urldecode(&a, HP_STR("a%20b+c%2B"), true);
    CHECK_EQ_STR(s.p, "a b c+");
    hp_http_request_t r = {0};
    r.arena = &a;
    r.query = HP_STR("flag&&na%6De=v%41l&name=second&empty=");
    hp_str_t v;
    CHECK(hp_http_query(&r, "name", &v) && hp_str_eq_c(v, "vAl"));
    CHECK(hp_http_query(&r, "flag", &v) && v.n == 0);
    CHECK(hp_http_query(&r, "empty", &v) && v.n == 0);
    CHECK(!hp_http_query(&r, "nam", &v));
    CHECK(!hp_http_query(&r, "names", &v));
    hp_arena_fini(&a);
}

int main(void)
{
    HP_RUN(test_urldecode);
    HP_RUN(test_get_query_and_headers);
    HP_RUN(test_post_echo_large_and_chunked);
    HP_RUN(test_404_405);
    HP_RUN(test_413);
    HP_RUN(test_prefix_any_head);
    HP_RUN(test_concurrent_clients);
    HP_RUN(test_client_gone_before_response);
    HP_RUN(test_stop_closes_keepalive);
    HP_RUN(test_stop_with_request_in_flight);
    HP_RUN(test_stop_outside_loop);
    HP_RUN(test_http2);
    HP_RUN(test_http2_client_gone);
    HP_RUN(test_bad_address);
    HP_RUN(test_busy);
    HP_RUN(test_inline_when_pool_saturated);
    HP_RUN(test_graceful_stop);
    HP_RUN(test_graceful_stop_times_out);
    return hp_test_done();
}
