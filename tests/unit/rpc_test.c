/* Unit tests for the internal RPC (rpc.h): real REP servers on
 * tcp://127.0.0.1 with ephemeral ports, real REQ clients, and raw nng
 * sockets where a misbehaving peer is needed. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "hotpath/pbwire.h"
#include "hotpath/rpc.h"
#include "test.h"

typedef struct server_state {
    atomic_int echo_calls;
    atomic_int slow_started;
    int slow_ms;
} server_state_t;

/* echo: replies "<tenant>|<payload>" for small payloads, the payload
 * itself for big ones. */
static int m_echo(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    server_state_t *st = ctx;
    atomic_fetch_add(&st->echo_calls, 1);
    if (call->payload == NULL || call->tenant.p == NULL)
        return hp_err_set(err, HP_EINTERNAL, "absent fields must be empty, not NULL");
    if (call->payload_len < 1024) {
        hp_buf_append(out, call->tenant.p, call->tenant.n);
        hp_buf_putc(out, '|');
    }
    hp_buf_append(out, call->payload, call->payload_len);
    return 0;
}

static int m_fail(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_buf_puts(out, "ignored on error");
    if (call->payload_len == 5 && memcmp(call->payload, "stale", 5) == 0) /* the last class */
        return hp_err_set(err, HP_ESTALE, "profiles moved");
    return hp_err_set(err, HP_EINVAL, "label name too long for tenant %.*s", (int)call->tenant.n,
                      call->tenant.p);
}

static int m_slow(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    server_state_t *st = ctx;
    atomic_fetch_add(&st->slow_started, 1);
    usleep((useconds_t)st->slow_ms * 1000);
    hp_buf_puts(out, "slept");
    return 0;
}

/* deadline: replies the call's deadline minus now, in ms. */
static int m_deadline(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_buf_put_i64(out, call->deadline_ms - hp_now_ms());
    return 0;
}

typedef struct fixture {
    hp_pool_t *pool;
    hp_rpc_server_t *srv;
    hp_rpc_client_t *cli;
    server_state_t st;
    char url[64];
} fixture_t;

/* Starts a server with every test method (contexts: 0 = default). */
static hp_rpc_server_t *server_start(hp_pool_t *pool, server_state_t *st, size_t contexts, char *url,
                                     size_t url_len)
{
    hp_rpc_server_config_t cfg = {"tcp://127.0.0.1:0", contexts, 0};
    hp_rpc_server_t *s;
    hp_err_t err;
    if (hp_rpc_server_new(pool, &cfg, &s, &err) != 0)
        return NULL;
    hp_rpc_server_handle(s, "echo", m_echo, st);
    hp_rpc_server_handle(s, "fail", m_fail, st);
    hp_rpc_server_handle(s, "slow", m_slow, st);
    hp_rpc_server_handle(s, "deadline", m_deadline, st);
    if (hp_rpc_server_start(s, &err) != 0) {
        fprintf(stderr, "  start: %s\n", err.msg);
        hp_rpc_server_free(s);
        return NULL;
    }
    snprintf(url, url_len, "tcp://127.0.0.1:%d", hp_rpc_server_port(s));
    return s;
}

/* One call that counts nowhere, so the client is connected: nng 1.5.2
 * leaks a little when a socket closes while its connection is still being
 * negotiated, which LeakSanitizer would pin on the test. */
static bool warm_up(hp_rpc_client_t *c)
{
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    int rc = hp_rpc_call(c, "deadline", HP_STR("t"), NULL, 0, 5000, &resp, &err);
    hp_buf_fini(&resp);
    return rc == 0;
}

static void fx_start(fixture_t *fx, size_t contexts, size_t threads)
{
    memset(fx, 0, sizeof(*fx));
    fx->st.slow_ms = 300;
    REQUIRE(hp_pool_start(threads, &fx->pool) == 0);
    fx->srv = server_start(fx->pool, &fx->st, contexts, fx->url, sizeof(fx->url));
    REQUIRE(fx->srv != NULL);
    REQUIRE(hp_rpc_server_port(fx->srv) > 0);
    hp_err_t err;
    REQUIRE(hp_rpc_client_new(fx->url, 0, &fx->cli, &err) == 0);
    REQUIRE(warm_up(fx->cli));
}

static void fx_stop(fixture_t *fx)
{
    hp_rpc_client_free(fx->cli);
    hp_rpc_server_free(fx->srv);
    hp_pool_stop(fx->pool);
}

static int call_str(hp_rpc_client_t *c, const char *method, const char *tenant, const char *payload,
                    int timeout_ms, hp_buf_t *resp, hp_err_t *err)
{
    return hp_rpc_call(c, method, hp_str_c(tenant), payload, strlen(payload), timeout_ms, resp, err);
}

/* ---- tests ------------------------------------------------------------------ */

/* A call carries method, tenant, payload and a deadline; the reply payload
 * comes back. */
static void test_echo(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 4);
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "echo", "tenant-a", "hello", 5000, &resp, &err), 0);
    CHECK_EQ_STR(hp_buf_cstr(&resp), "tenant-a|hello");
    CHECK_EQ_INT(err.code, 0);

    hp_buf_reset(&resp);
    CHECK_EQ_INT(hp_rpc_call(fx.cli, "echo", (hp_str_t){NULL, 0}, NULL, 0, 5000, &resp, &err), 0);
    CHECK_EQ_STR(hp_buf_cstr(&resp), "|");

    hp_buf_reset(&resp);
    CHECK_EQ_INT(call_str(fx.cli, "deadline", "t", "", 4000, &resp, &err), 0);
    long left = strtol(hp_buf_cstr(&resp), NULL, 10);
    CHECK(left > 0 && left <= 4000);
    CHECK_EQ_STR(hp_rpc_client_url(fx.cli), fx.url);
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

/* A handler's error class and message reach the caller unchanged. */
static void test_error_class_and_message(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 2);
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "fail", "t9", "x", 5000, &resp, &err), HP_EINVAL);
    CHECK_EQ_INT(err.code, HP_EINVAL);
    CHECK_EQ_STR(err.msg, "label name too long for tenant t9");
    CHECK_EQ_INT(resp.len, 0);

    CHECK_EQ_INT(call_str(fx.cli, "fail", "t9", "stale", 5000, &resp, &err), HP_ESTALE);
    CHECK_EQ_STR(err.msg, "profiles moved");

    CHECK_EQ_INT(call_str(fx.cli, "nope", "t", "x", 5000, &resp, &err), HP_ENOTFOUND);
    CHECK_EQ_STR(err.msg, "unknown method nope");
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

/* No reply in time is HP_ETIMEDOUT with a message naming the peer. */
static void test_timeout(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 2);
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "slow", "t", "", 100, &resp, &err), HP_ETIMEDOUT);
    char want[128];
    snprintf(want, sizeof(want), "rpc slow: no reply from %s within 100 ms", fx.url);
    CHECK_EQ_STR(err.msg, want);
    /* the client still works afterwards */
    CHECK_EQ_INT(call_str(fx.cli, "echo", "t", "after", 5000, &resp, &err), 0);
    CHECK_EQ_STR(hp_buf_cstr(&resp), "t|after");
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

typedef struct {
    hp_rpc_client_t *cli;
    const char *method;
    int timeout_ms;
    int rc;
    hp_buf_t resp;
    hp_err_t err;
} bg_call_t;

static void *bg_call_main(void *arg)
{
    bg_call_t *b = arg;
    b->rc = call_str(b->cli, b->method, "t", "", b->timeout_ms, &b->resp, &b->err);
    return NULL;
}

/* A request that waits in line past its deadline is dropped by the server
 * without running its handler. */
static void test_expired_requests_are_dropped(void)
{
    fixture_t fx;
    fx_start(&fx, 1, 1); /* one context: the second call queues */
    fx.st.slow_ms = 600;
    bg_call_t slow = {fx.cli, "slow", 5000, -1, HP_BUF_INIT, {0}};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bg_call_main, &slow) == 0);
    for (int i = 0; i < 200 && atomic_load(&fx.st.slow_started) == 0; i++)
        usleep(5000);
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "echo", "t", "late", 150, &resp, &err), HP_ETIMEDOUT);
    pthread_join(th, NULL);
    CHECK_EQ_INT(slow.rc, 0);
    usleep(100 * 1000); /* the queued echo reaches the freed context */
    CHECK_EQ_INT(atomic_load(&fx.st.echo_calls), 0);
    CHECK_EQ_INT(call_str(fx.cli, "echo", "t", "now", 5000, &resp, &err), 0);
    CHECK_EQ_INT(atomic_load(&fx.st.echo_calls), 1);
    hp_buf_fini(&resp);
    hp_buf_fini(&slow.resp);
    fx_stop(&fx);
}

/* A 50 MB payload makes the round trip intact. */
static void test_big_payload(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 2);
    size_t n = 50u << 20;
    uint8_t *p = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(hp_rpc_call(fx.cli, "echo", HP_STR("t"), p, n, 30000, &resp, &err), 0);
    CHECK_EQ_INT(resp.len, n);
    CHECK(resp.len == n && memcmp(resp.data, p, n) == 0);
    free(p);
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

/* Requests over the client's limit fail locally with HP_ETOOLARGE. */
static void test_too_large(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 1);
    hp_rpc_client_t *small;
    hp_err_t err;
    REQUIRE(hp_rpc_client_new(fx.url, 1024, &small, &err) == 0);
    REQUIRE(warm_up(small));
    char payload[2000];
    memset(payload, 'a', sizeof(payload));
    hp_buf_t resp = HP_BUF_INIT;
    CHECK_EQ_INT(hp_rpc_call(small, "echo", HP_STR("t"), payload, sizeof(payload), 5000, &resp, &err),
                 HP_ETOOLARGE);
    CHECK(strstr(err.msg, "exceeds the limit of 1024 bytes") != NULL);
    CHECK_EQ_INT(atomic_load(&fx.st.echo_calls), 0);
    CHECK_EQ_INT(hp_rpc_call(small, "echo", HP_STR("t"), payload, 10, 0, &resp, &err), HP_EINVAL);
    hp_rpc_client_free(small);
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

typedef struct {
    hp_rpc_client_t *cli;
    int id;
    atomic_int *ok;
} worker_arg_t;

static void *concurrent_main(void *arg)
{
    worker_arg_t *w = arg;
    hp_buf_t resp = HP_BUF_INIT;
    for (int i = 0; i < 50; i++) {
        char payload[64], want[80];
        snprintf(payload, sizeof(payload), "w%d-call%d", w->id, i);
        snprintf(want, sizeof(want), "t%d|%s", w->id, payload);
        char tenant[16];
        snprintf(tenant, sizeof(tenant), "t%d", w->id);
        hp_err_t err;
        hp_buf_reset(&resp);
        if (call_str(w->cli, "echo", tenant, payload, 10000, &resp, &err) == 0 &&
            strcmp(hp_buf_cstr(&resp), want) == 0)
            atomic_fetch_add(w->ok, 1);
    }
    hp_buf_fini(&resp);
    return NULL;
}

/* 200 calls from 4 threads on one client all get their own answers. */
static void test_concurrent_calls(void)
{
    fixture_t fx;
    fx_start(&fx, 8, 4);
    atomic_int ok = 0;
    pthread_t th[4];
    worker_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg_t){fx.cli, i, &ok};
        REQUIRE(pthread_create(&th[i], NULL, concurrent_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&ok), 200);
    CHECK_EQ_INT(atomic_load(&fx.st.echo_calls), 200);
    fx_stop(&fx);
}

/* Fan-out to three servers, one of them stopped: the two live ones answer,
 * the dead one fails fast with HP_EUNAVAIL instead of using up the
 * timeout. Per-target payloads override the shared one. */
static void test_call_all_with_one_down(void)
{
    hp_pool_t *pool;
    REQUIRE(hp_pool_start(4, &pool) == 0);
    server_state_t st[3] = {0};
    char urls[3][64];
    hp_rpc_server_t *srv[3];
    for (int i = 0; i < 3; i++) {
        srv[i] = server_start(pool, &st[i], 0, urls[i], sizeof(urls[i]));
        REQUIRE(srv[i] != NULL);
    }
    hp_rpc_server_free(srv[2]); /* its port now refuses connections */
    srv[2] = NULL;
    hp_rpc_target_t t[3];
    memset(t, 0, sizeof(t));
    hp_err_t err;
    for (int i = 0; i < 3; i++)
        REQUIRE(hp_rpc_client_new(urls[i], 0, &t[i].client, &err) == 0);
    t[1].payload = "own";
    t[1].payload_len = 3;
    int64_t start = hp_mono_ms();
    size_t ok = hp_rpc_call_all(t, 3, "echo", HP_STR("tn"), "shared", 6, 10000);
    int64_t took = hp_mono_ms() - start;
    CHECK_EQ_INT(ok, 2);
    CHECK_EQ_INT(t[0].rc, 0);
    CHECK_EQ_STR(hp_buf_cstr(&t[0].resp), "tn|shared");
    CHECK_EQ_INT(t[1].rc, 0);
    CHECK_EQ_STR(hp_buf_cstr(&t[1].resp), "tn|own");
    CHECK_EQ_INT(t[2].rc, HP_EUNAVAIL);
    CHECK_EQ_INT(t[2].err.code, HP_EUNAVAIL);
    char want[128];
    snprintf(want, sizeof(want), "rpc echo: no connection to %s", urls[2]);
    CHECK_EQ_STR(t[2].err.msg, want);
    CHECK(took < 5000); /* failed fast, far from the 10 s timeout */
    for (int i = 0; i < 3; i++) {
        hp_buf_fini(&t[i].resp);
        hp_rpc_client_free(t[i].client);
    }
    hp_rpc_server_free(srv[0]);
    hp_rpc_server_free(srv[1]);
    hp_pool_stop(pool);
}

/* Two successes are enough: call_until returns without waiting for the
 * slow third server, whose call is cancelled — yet its handler still runs,
 * because the request had already been sent. */
static bool two_ok(void *ctx, const hp_rpc_target_t *t)
{
    (void)ctx;
    int ok = 0;
    for (int i = 0; i < 3; i++)
        ok += t[i].done && t[i].rc == 0;
    return ok >= 2;
}

static void test_call_until_quorum(void)
{
    hp_pool_t *pool;
    REQUIRE(hp_pool_start(4, &pool) == 0);
    server_state_t st[3] = {0};
    st[2].slow_ms = 1500;
    char urls[3][64];
    hp_rpc_server_t *srv[3];
    hp_rpc_target_t t[3];
    memset(t, 0, sizeof(t));
    hp_err_t err;
    for (int i = 0; i < 3; i++) {
        srv[i] = server_start(pool, &st[i], 0, urls[i], sizeof(urls[i]));
        REQUIRE(srv[i] != NULL);
        REQUIRE(hp_rpc_client_new(urls[i], 0, &t[i].client, &err) == 0);
        REQUIRE(warm_up(t[i].client));
    }
    /* servers 0 and 1 answer "slow" at once (slow_ms 0); server 2 sleeps */
    int64_t start = hp_mono_ms();
    size_t ok = hp_rpc_call_until(t, 3, "slow", HP_STR("tn"), NULL, 0, 10000, two_ok, NULL);
    int64_t took = hp_mono_ms() - start;
    CHECK_EQ_INT(ok, 2);
    CHECK(took < 1200);
    CHECK(t[0].done && t[1].done && t[2].done);
    CHECK_EQ_INT(t[2].rc, HP_ECANCELED);
    for (int i = 0; i < 300 && atomic_load(&st[2].slow_started) == 0; i++)
        usleep(10000);
    CHECK_EQ_INT(atomic_load(&st[2].slow_started), 1); /* the write still arrived */
    for (int i = 0; i < 3; i++) {
        hp_buf_fini(&t[i].resp);
        hp_rpc_client_free(t[i].client);
        hp_rpc_server_free(srv[i]);
    }
    hp_pool_stop(pool);
}

/* Stopping the server while a call waits on a running handler: the
 * handler finishes and its reply still reaches the caller; later calls
 * fail with HP_EUNAVAIL. */
static void test_stop_while_call_waits(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 2);
    fx.st.slow_ms = 300;
    bg_call_t slow = {fx.cli, "slow", 5000, -1, HP_BUF_INIT, {0}};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bg_call_main, &slow) == 0);
    for (int i = 0; i < 200 && atomic_load(&fx.st.slow_started) == 0; i++)
        usleep(5000);
    CHECK_EQ_INT(atomic_load(&fx.st.slow_started), 1);
    hp_rpc_server_stop(fx.srv);
    pthread_join(th, NULL);
    CHECK_EQ_INT(slow.rc, 0);
    CHECK_EQ_STR(hp_buf_cstr(&slow.resp), "slept");

    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "echo", "t", "x", 3000, &resp, &err), HP_EUNAVAIL);
    hp_buf_fini(&resp);
    hp_buf_fini(&slow.resp);
    fx_stop(&fx);
}

typedef struct {
    nng_socket rep;
    atomic_int got;
} swallow_t;

static void *swallow_main(void *arg)
{
    swallow_t *s = arg;
    nng_msg *m;
    if (nng_recvmsg(s->rep, &m, 0) == 0) {
        nng_msg_free(m);
        atomic_store(&s->got, 1);
    }
    return NULL;
}

/* A peer that drops the connection after receiving a request: the call
 * fails with HP_EUNAVAIL and the request is not resent to the server that
 * takes over the same address (pushes are not idempotent). */
static void test_no_resend_after_connection_loss(void)
{
    swallow_t sw = {0};
    REQUIRE(nng_rep0_open(&sw.rep) == 0);
    nng_listener l;
    REQUIRE(nng_listen(sw.rep, "tcp://127.0.0.1:0", &l, 0) == 0);
    int port;
    REQUIRE(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    hp_rpc_client_t *cli;
    hp_err_t err;
    REQUIRE(hp_rpc_client_new(url, 0, &cli, &err) == 0);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, swallow_main, &sw) == 0);
    bg_call_t call = {cli, "echo", 5000, -1, HP_BUF_INIT, {0}};
    pthread_t caller;
    REQUIRE(pthread_create(&caller, NULL, bg_call_main, &call) == 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(atomic_load(&sw.got), 1);

    nng_close(sw.rep); /* drops the connection without a reply */
    nng_socket second;
    REQUIRE(nng_rep0_open(&second) == 0);
    REQUIRE(nng_listen(second, url, NULL, 0) == 0);
    pthread_join(caller, NULL);
    CHECK_EQ_INT(call.rc, HP_EUNAVAIL);
    char want[128];
    snprintf(want, sizeof(want), "rpc echo: connection to %s lost before the reply", url);
    CHECK_EQ_STR(call.err.msg, want);

    /* the client reconnects to the new peer; the old request must not come */
    REQUIRE(nng_socket_set_ms(second, NNG_OPT_RECVTIMEO, 2500) == 0);
    nng_msg *m = NULL;
    int rv = nng_recvmsg(second, &m, 0);
    CHECK_EQ_INT(rv, NNG_ETIMEDOUT);
    if (rv == 0)
        nng_msg_free(m);
    nng_close(second);
    hp_buf_fini(&call.resp);
    hp_rpc_client_free(cli);
}

/* Garbage instead of an RpcRequest gets an HP_EINVAL reply, and the server
 * keeps serving. */
static void test_malformed_request(void)
{
    fixture_t fx;
    fx_start(&fx, 0, 1);
    nng_socket req;
    REQUIRE(nng_req0_open(&req) == 0);
    REQUIRE(nng_dial(req, fx.url, NULL, 0) == 0);
    REQUIRE(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000) == 0);
    /* field 1 claims 100 bytes but only 2 follow */
    const uint8_t bad[] = {0x0a, 100, 'e', 'c'};
    REQUIRE(nng_send(req, (void *)bad, sizeof(bad), 0) == 0);
    nng_msg *m;
    REQUIRE(nng_recvmsg(req, &m, 0) == 0);
    hp_pbr_t r = hp_pbr(nng_msg_body(m), nng_msg_len(m));
    uint32_t f, wt;
    uint64_t v = 0;
    CHECK(hp_pbr_key(&r, &f, &wt) && f == 1 && wt == HP_PB_VARINT && hp_pbr_varint(&r, &v));
    CHECK_EQ_INT(hp_pb_unzigzag(v), HP_EINVAL);
    nng_msg_free(m);
    nng_close(req);

    hp_buf_t resp = HP_BUF_INIT;
    hp_err_t err;
    CHECK_EQ_INT(call_str(fx.cli, "echo", "t", "still", 5000, &resp, &err), 0);
    hp_buf_fini(&resp);
    fx_stop(&fx);
}

/* Bad URLs are refused up front with a message. */
static void test_bad_urls(void)
{
    hp_rpc_client_t *c = (hp_rpc_client_t *)1;
    hp_err_t err;
    CHECK_EQ_INT(hp_rpc_client_new("not a url", 0, &c, &err), HP_EINVAL);
    CHECK(c == NULL);
    CHECK(strstr(err.msg, "not a url") != NULL);
    hp_pool_t *pool;
    REQUIRE(hp_pool_start(1, &pool) == 0);
    hp_rpc_server_config_t cfg = {"tcp://127.0.0.1:0", 2, 0};
    hp_rpc_server_t *a, *b;
    REQUIRE(hp_rpc_server_new(pool, &cfg, &a, &err) == 0);
    REQUIRE(hp_rpc_server_start(a, &err) == 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", hp_rpc_server_port(a));
    cfg.url = url;
    REQUIRE(hp_rpc_server_new(pool, &cfg, &b, &err) == 0);
    CHECK_EQ_INT(hp_rpc_server_start(b, &err), HP_EUNAVAIL); /* address in use */
    CHECK(strstr(err.msg, url) != NULL);
    hp_rpc_server_free(b);
    hp_rpc_server_free(a);
    hp_pool_stop(pool);
}

int main(void)
{
    HP_RUN(test_echo);
    HP_RUN(test_error_class_and_message);
    HP_RUN(test_timeout);
    HP_RUN(test_expired_requests_are_dropped);
    HP_RUN(test_big_payload);
    HP_RUN(test_too_large);
    HP_RUN(test_concurrent_calls);
    HP_RUN(test_call_all_with_one_down);
    HP_RUN(test_call_until_quorum);
    HP_RUN(test_stop_while_call_waits);
    HP_RUN(test_no_resend_after_connection_loss);
    HP_RUN(test_malformed_request);
    HP_RUN(test_bad_urls);
    nng_fini(); /* drains nng's reaper: dials still in flight are freed, not reported as leaks */
    return hp_test_done();
}
