/* The scaffolding every binary shares: config, loop, pool, HTTP, signals. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "hotpath/service.h"

int hp_service_main_config(hp_service_t *s, const char *component, int argc, char **argv)
{
    memset(s, 0, sizeof(*s));
    s->component = component;
    /* Fresh pages are expensive here (a fault per 4 KiB); queries allocate
     * and free multi-MB arrays, so keep freed memory for reuse instead of
     * handing it back to the kernel after every request. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    hp_err_t err;
    hp_err_clear(&err);
    int rc = hp_config_load(&s->cfg, argc, argv, &err);
    if (rc == HP_ENOTFOUND) {
        hp_buf_t usage = HP_BUF_INIT;
        hp_config_usage(&usage);
        printf("usage: hotpath-%s [flags]\n\n%s", component, hp_buf_cstr(&usage));
        hp_buf_fini(&usage);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "hotpath-%s: %s\n", component, err.msg);
        return 2;
    }
    int level = hp_log_level_parse(s->cfg.log.level ? s->cfg.log.level : "info");
    hp_log_setup(component, level < 0 ? HP_LOG_INFO : (hp_log_level_t)level);
    return 0;
}

/* GET /ready: 200 "ready" or 503 with the component's reason. Inline (on
 * the loop): the component's ready callback must be quick. */
static void handle_ready(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    hp_service_t *s = ctx;
    hp_buf_t why = HP_BUF_INIT;
    bool ok = s->ready_fn == NULL || s->ready_fn(s->ready_ctx, &why);
    if (ok) {
        hp_buf_puts(&resp->body, "ready\n");
    } else {
        resp->status = 503;
        hp_buf_printf(&resp->body, "not ready: %.*s\n", (int)why.len, (const char *)why.data);
    }
    hp_buf_fini(&why);
}

/* GET /metrics, inline. */
static void handle_metrics(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    hp_service_t *s = ctx;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    hp_metrics_render(s->metrics, &resp->body);
}

/* GET /config, inline. */
static void handle_config(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    hp_service_t *s = ctx;
    resp->content_type = "text/yaml; charset=utf-8";
    hp_config_dump_yaml(&s->cfg, &resp->body);
}

/* GET /api/v1/tenant_limits: the requesting tenant's effective limits
 * (the configuration's, with its runtime overrides), as JSON. */
static void handle_tenant_limits(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    hp_service_t *s = ctx;
    hp_str_t tenant;
    hp_err_t err;
    if (hp_tenant_from_request(&s->cfg, req, &tenant, &err) != 0) {
        hp_http_error(resp, err.code == HP_EAUTH ? 401 : 400, err.msg);
        return;
    }
    hp_limits_config_t l;
    hp_overrides_get(s->overrides, tenant, &l);
    resp->content_type = "application/json";
    hp_config_limits_write_json(&l, &resp->body);
}

static void on_overrides_timer(uv_timer_t *t)
{
    hp_service_t *s = t->data;
    hp_overrides_reload(s->overrides);
}

/* Closes the handles that keep the loop alive on their own. */
static void close_loop_handles(hp_service_t *s)
{
    if (s->signals_ok) {
        uv_close((uv_handle_t *)&s->sig_term, NULL);
        uv_close((uv_handle_t *)&s->sig_int, NULL);
        s->signals_ok = false;
    }
    if (s->timer_ok) {
        uv_close((uv_handle_t *)&s->overrides_timer, NULL);
        s->timer_ok = false;
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    hp_service_t *s = h->data;
    HP_INFO("stopping", "signal=%d", signum);
    uv_signal_stop(&s->sig_term);
    uv_signal_stop(&s->sig_int);
    uv_stop(&s->loop);
}

/* The largest HTTP body this component reads: the ingestion limit for
 * the distributor (0 = no limit), a query-sized one for everyone else. */
static size_t http_body_limit(const hp_service_t *s)
{
    if (strcmp(s->component, "distributor") != 0)
        return HP_SERVICE_BODY_LIMIT;
    int64_t v = s->cfg.limits.ingestion_body_limit_bytes;
    return v > 0 ? (size_t)v : SIZE_MAX;
}

int hp_service_start(hp_service_t *s, hp_err_t *err)
{
    s->started_ms = hp_now_ms();
    if (uv_loop_init(&s->loop) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot create the event loop");
    s->loop_ok = true;
    int rc = hp_pool_start((size_t)s->cfg.server.worker_threads, &s->pool);
    if (rc != 0)
        return hp_err_set(err, rc, "cannot start %lld worker threads",
                          (long long)s->cfg.server.worker_threads);
    s->metrics = hp_metrics_new();
    rc = hp_overrides_new(&s->cfg, s->metrics, &s->overrides, err);
    if (rc != 0)
        return rc;
    hp_http_config_t hc = {s->cfg.server.http_listen_address, (int)s->cfg.server.http_listen_port,
                           http_body_limit(s), 0, s->cfg.server.graceful_shutdown_timeout_ms};
    rc = hp_http_server_new(&s->loop, s->pool, &hc, &s->http, err);
    if (rc != 0)
        return rc;
    /* Inline: health and metrics answer even when every worker is busy. */
    hp_http_route_inline(s->http, "GET", "/ready", handle_ready, s);
    hp_http_route_inline(s->http, "GET", "/metrics", handle_metrics, s);
    hp_http_route_inline(s->http, "GET", "/config", handle_config, s);
    hp_http_route(s->http, "GET", "/api/v1/tenant_limits", handle_tenant_limits, s);
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    s->signals_ok = true;
    if (s->cfg.runtime_config.file && s->cfg.runtime_config.file[0]) {
        uint64_t every = (uint64_t)s->cfg.runtime_config.reload_period_ms;
        uv_timer_init(&s->loop, &s->overrides_timer);
        s->overrides_timer.data = s;
        uv_timer_start(&s->overrides_timer, on_overrides_timer, every, every);
        s->timer_ok = true;
    }
    HP_INFO("listening", "http=%s:%d", s->cfg.server.http_listen_address, hp_http_port(s->http));
    return 0;
}

void hp_service_on_ready(hp_service_t *s, hp_ready_fn fn, void *ctx)
{
    s->ready_fn = fn;
    s->ready_ctx = ctx;
}

void hp_service_on_stop(hp_service_t *s, hp_stop_fn fn, void *ctx)
{
    s->stop_fn = fn;
    s->stop_ctx = ctx;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void hp_service_run(hp_service_t *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->stop_fn)
        s->stop_fn(s->stop_ctx);
    if (s->http && !s->http_stopped)
        hp_http_server_stop(s->http);
    s->http_stopped = true;
    close_loop_handles(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

void hp_service_fini(hp_service_t *s)
{
    if (s->loop_ok) /* first: these handles would keep every uv_run below going */
        close_loop_handles(s);
    if (s->http && s->loop_ok && !s->http_stopped) {
        /* a start that failed half-way: stop HTTP and let it close first */
        hp_http_server_stop(s->http);
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    s->http_stopped = true;
    hp_pool_stop(s->pool);
    s->pool = NULL;
    if (s->loop_ok) {
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_walk(&s->loop, close_walk, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    hp_http_server_free(s->http);
    s->http = NULL;
    if (s->loop_ok)
        uv_loop_close(&s->loop);
    s->loop_ok = false;
    hp_overrides_free(s->overrides);
    s->overrides = NULL;
    hp_metrics_free(s->metrics);
    s->metrics = NULL;
    hp_config_fini(&s->cfg);
}

/* Tenant IDs: Pyroscope's rules (docs: about-tenant-ids). */
static bool tenant_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!-_.*'()", c) != NULL;
}

int hp_tenant_validate(hp_str_t t, hp_err_t *err)
{
    if (t.n == 0)
        return hp_err_set(err, HP_EAUTH, "no org id: the X-Scope-OrgID header is empty");
    if (t.n > 150)
        return hp_err_set(err, HP_EINVAL, "tenant ID too long: %zu > 150 characters", t.n);
    if (hp_str_eq_c(t, ".") || hp_str_eq_c(t, ".."))
        return hp_err_set(err, HP_EINVAL, "tenant ID '%.*s' is not allowed", (int)t.n, t.p);
    for (size_t i = 0; i < t.n; i++)
        if (t.p[i] == '\0' || !tenant_char(t.p[i]))
            return hp_err_set(err, HP_EINVAL,
                              "tenant ID has an invalid character at %zu: allowed are a-z A-Z 0-9 ! - _ . * ' ( )",
                              i + 1);
    return 0;
}

int hp_tenant_from_request(const hp_config_t *cfg, const hp_http_request_t *req, hp_str_t *tenant,
                           hp_err_t *err)
{
    if (!cfg->auth.multitenancy_enabled) {
        *tenant = HP_STR("anonymous");
        return 0;
    }
    hp_str_t h = hp_http_header(req, "x-scope-orgid");
    if (h.p == NULL)
        return hp_err_set(err, HP_EAUTH, "no org id: multi-tenancy is on and the X-Scope-OrgID header is missing");
    *tenant = h;
    return hp_tenant_validate(h, err);
}

char *hp_service_instance_id(const hp_config_t *cfg)
{
    if (cfg->ring.instance_id && *cfg->ring.instance_id)
        return hp_xstrdup(cfg->ring.instance_id);
    char host[256] = "localhost", id[300];
    gethostname(host, sizeof(host) - 1);
    snprintf(id, sizeof(id), "%s:%lld", host, (long long)cfg->server.rpc_listen_port);
    return hp_xstrdup(id);
}

int hp_service_objstore(const hp_config_t *cfg, hp_objstore_t **out, hp_err_t *err)
{
    hp_objstore_config_t oc;
    memset(&oc, 0, sizeof(oc));
    oc.backend = cfg->storage.backend;
    oc.filesystem.dir = cfg->storage.fs_dir;
    oc.s3 = (hp_objstore_s3_config_t){cfg->storage.s3_endpoint,     cfg->storage.s3_region,
                                      cfg->storage.s3_bucket,       cfg->storage.s3_access_key_id,
                                      cfg->storage.s3_secret_access_key, cfg->storage.s3_path_style,
                                      cfg->storage.s3_insecure,     0, 0, 0, 0};
    return hp_objstore_new(&oc, out, err);
}
