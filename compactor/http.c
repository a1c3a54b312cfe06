/* The compactor's HTTP API: deletion requests (Pyroscope has none; the
 * shape follows Cortex's), an immediate cycle, and a debug view of a
 * block. The tenant comes from X-Scope-OrgID as everywhere else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compactor.h"
#include "hotpath/attime.h"
#include "hotpath/log.h"

/* Parameter name from the query string, else from a form body. */
static bool param(const hp_http_request_t *req, const char *name, hp_str_t *out)
{
    if (hp_http_query(req, name, out))
        return true;
    static const char form[] = "application/x-www-form-urlencoded";
    hp_str_t ct = hp_http_header(req, "content-type");
    if (ct.p == NULL || ct.n < sizeof(form) - 1 || strncasecmp(ct.p, form, sizeof(form) - 1) != 0)
        return false;
    hp_http_request_t body = *req;
    body.query = req->body;
    return hp_http_query(&body, name, out);
}

static void json_reply(hp_http_response_t *resp, int status, hp_buf_t *body)
{
    resp->status = status;
    resp->content_type = "application/json";
    hp_buf_append(&resp->body, body->data, body->len);
    hp_buf_fini(body);
}

/* The tenant of req as a C string in its arena; false after answering. */
static bool tenant_of(cmp_t *c, const hp_http_request_t *req, hp_http_response_t *resp, char **tenant)
{
    hp_str_t t;
    hp_err_t err;
    if (hp_tenant_from_request(c->cfg, req, &t, &err) != 0) {
        hp_http_error_from(resp, &err);
        return false;
    }
    *tenant = hp_arena_strndup(req->arena, t.p, t.n);
    return true;
}

/* A time parameter (attime.h: unix s/ms/µs/ns, "now", "now-1h") in ms, or
 * def when absent. false with err naming the parameter. */
static bool time_param(const hp_http_request_t *req, const char *name, int64_t def, int64_t *ms,
                       hp_err_t *err)
{
    hp_str_t v;
    int64_t ns;
    hp_err_t why;
    *ms = def;
    if (!param(req, name, &v) || v.n == 0)
        return true;
    if (hp_attime_parse(v, hp_now_ns(), &ns, &why) != 0) {
        hp_err_set(err, HP_EINVAL, "invalid %s: %s", name, why.msg);
        return false;
    }
    int64_t q = ns / 1000000;
    *ms = ns % 1000000 < 0 ? q - 1 : q;
    return true;
}

/* Reads and checks delete-series' parameters into r. */
static int series_request(const hp_http_request_t *req, cmp_request_t *r, hp_err_t *err)
{
    hp_str_t sel;
    if (!param(req, "selector", &sel) || sel.n == 0)
        return hp_err_set(err, HP_EINVAL, "missing selector: give selector={service_name=\"...\"}");
    if (sel.n > 4000)
        return hp_err_set(err, HP_EINVAL, "selector is too long: %zu > 4000 bytes", sel.n);
    hp_err_t why;
    int rc = hp_selector_parse(sel, &r->sel, &why);
    if (rc != 0)
        return hp_err_set(err, rc, "invalid selector: %s", why.msg);
    if (r->sel.n == 0)
        return hp_err_set(err, HP_EINVAL,
                          "selector {} matches every series: name at least one label "
                          "(POST /compactor/delete-tenant deletes everything)");
    if (!time_param(req, "start", 0, &r->start_ms, err) ||
        !time_param(req, "end", hp_now_ms(), &r->end_ms, err))
        return HP_EINVAL;
    if (r->start_ms > r->end_ms)
        return hp_err_set(err, HP_EINVAL, "start (%lld ms) is after end (%lld ms)", (long long)r->start_ms,
                          (long long)r->end_ms);
    r->selector = hp_xstrndup(sel.p, sel.n);
    return 0;
}

/* Stores a new request of kind for the tenant and answers 202. */
static void submit(cmp_t *c, const char *tenant, cmp_request_t *r, const char *kind, hp_http_response_t *resp)
{
    hp_err_t err;
    r->created_ms = hp_now_ms();
    hp_ulid_new(r->created_ms, r->id);
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    snprintf(r->state, sizeof(r->state), "pending");
    if (r->selector == NULL)
        r->selector = hp_xstrdup("");
    if (cmp_request_put(c, tenant, r, &err) != 0) {
        hp_http_error_from(resp, &err);
        return;
    }
    HP_INFO("deletion request accepted", "tenant=%s request=%s kind=%s start_ms=%lld end_ms=%lld", tenant,
            r->id, kind, (long long)r->start_ms, (long long)r->end_ms);
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_printf(&b, "{\"requestId\":\"%s\"}\n", r->id);
    json_reply(resp, 202, &b);
}

static void h_delete_series(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    cmp_t *c = ctx;
    char *tenant;
    cmp_request_t r;
    memset(&r, 0, sizeof(r));
    hp_err_t err;
    if (!tenant_of(c, req, resp, &tenant))
        return;
    if (series_request(req, &r, &err) != 0)
        hp_http_error_from(resp, &err);
    else
        submit(c, tenant, &r, "series", resp);
    cmp_request_fini(&r);
}

static void h_delete_tenant(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    cmp_t *c = ctx;
    char *tenant;
    cmp_request_t r;
    memset(&r, 0, sizeof(r));
    if (!tenant_of(c, req, resp, &tenant))
        return;
    r.end_ms = hp_now_ms();
    submit(c, tenant, &r, "tenant", resp);
    cmp_request_fini(&r);
}

static void h_list_requests(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    cmp_t *c = ctx;
    char *tenant;
    cmp_request_t *v = NULL;
    size_t n = 0;
    hp_err_t err;
    hp_err_clear(&err);
    if (!tenant_of(c, req, resp, &tenant))
        return;
    if (cmp_requests_load(c, tenant, &v, &n, &err) != 0) {
        cmp_requests_free(v, n);
        hp_http_error_from(resp, &err);
        return;
    }
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, "{\"requests\":[");
    for (size_t i = 0; i < n; i++) {
        hp_buf_puts(&b, i ? "," : "");
        cmp_request_json(&v[i], &b);
    }
    hp_buf_puts(&b, "]}\n");
    cmp_requests_free(v, n);
    json_reply(resp, 200, &b);
}

static void h_run(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    (void)req;
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_printf(&b, "{\"cyclesFinished\":%llu}\n", (unsigned long long)cmp_trigger(ctx));
    json_reply(resp, 202, &b);
}

static void h_block(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    cmp_t *c = ctx;
    char *tenant, ulid[27];
    hp_str_t id, fns;
    if (!tenant_of(c, req, resp, &tenant))
        return;
    if (!param(req, "id", &id) || id.n != 26) {
        hp_http_error(resp, 400, "invalid id: give id=<block ULID> (26 characters)");
        return;
    }
    memcpy(ulid, id.p, 26);
    ulid[26] = '\0';
    bool functions = param(req, "functions", &fns) && (hp_str_eq_c(fns, "1") || hp_str_eq_c(fns, "true"));
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    hp_err_clear(&err);
    char key[600];
    snprintf(key, sizeof(key), "%s/blocks/%s/meta.json", tenant, ulid);
    if (hp_objstore_key_check(key, &err) != 0 || cmp_block_dump(c, tenant, ulid, functions, &b, &err) != 0) {
        hp_buf_fini(&b);
        hp_http_error_from(resp, &err);
        return;
    }
    json_reply(resp, 200, &b);
}

void cmp_register_http(cmp_t *c)
{
    hp_http_server_t *h = c->svc->http;
    hp_http_route(h, "POST", "/compactor/delete-series", h_delete_series, c);
    hp_http_route(h, "POST", "/compactor/delete-tenant", h_delete_tenant, c);
    hp_http_route(h, "GET", "/compactor/deletion-requests", h_list_requests, c);
    hp_http_route(h, "POST", "/compactor/run", h_run, c);
    hp_http_route(h, "GET", "/compactor/block", h_block, c);
}
