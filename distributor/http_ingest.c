/* POST /ingest (and /pyroscope/ingest): Pyroscope's legacy ingest API. */
#include <string.h>
#include <strings.h>

#include "distributor.h"
#include "hotpath/attime.h"
#include "hotpath/log.h"
#include "hotpath/multipart.h"
#include "hotpath/pprof.h"

/* What the query string says about the upload. */
typedef struct ingest_meta {
    hp_str_t app;
    hp_labels_t user; /* from the name's braces */
    hp_str_t spy;
    hp_str_t format;
    int64_t from_ns;
} ingest_meta_t;

static int parse_meta(const hp_http_request_t *req, ingest_meta_t *m, hp_err_t *err)
{
    hp_str_t name, v;
    if (!hp_http_query(req, "name", &name) || name.n == 0)
        return hp_err_set(err, HP_EINVAL, "name: the 'name' query parameter is required (app{label=value,…})");
    int rc = hp_labels_parse_app_name(name, &m->app, &m->user, err);
    if (rc != 0)
        return rc;
    m->from_ns = hp_now_ns();
    if (hp_http_query(req, "from", &v) && v.n) {
        rc = hp_attime_parse(v, hp_now_ns(), &m->from_ns, err);
        if (rc != 0) {
            char why[sizeof(err->msg)]; /* formatting err->msg into itself overlaps */
            snprintf(why, sizeof(why), "%s", err->msg);
            return hp_err_set(err, HP_EINVAL, "from: %s", why);
        }
    }
    if (!hp_http_query(req, "spyName", &m->spy) || m->spy.n == 0)
        m->spy = HP_STR("unknown");
    if (!hp_http_query(req, "format", &m->format))
        m->format = HP_STR("");
    return 0;
}

/* The labels a profile is stored under, from the upload's metadata. An
 * empty value is no label (dropped by dist_accept), so an empty
 * service_name does not push the app name to app_name. */
static void client_labels(const ingest_meta_t *m, hp_labels_t *ls)
{
    bool has_service = false;
    for (size_t i = 0; i < m->user.n; i++) {
        hp_str_t k = m->user.v[i].name;
        if (k.n >= 2 && k.p[0] == '_' && k.p[1] == '_' && !hp_str_eq_c(k, HP_LABEL_SESSION_ID))
            continue; /* reserved names are not the client's to set */
        has_service |= hp_str_eq_c(k, HP_LABEL_SERVICE_NAME) && m->user.v[i].value.n > 0;
        hp_labels_set(ls, k, m->user.v[i].value);
    }
    hp_labels_set(ls, hp_str_c(has_service ? "app_name" : HP_LABEL_SERVICE_NAME), m->app);
    hp_labels_set(ls, HP_STR("pyroscope_spy"), m->spy);
}

static bool is_multipart(const hp_http_request_t *req)
{
    hp_str_t ct = hp_http_header(req, "content-type");
    return ct.n >= 19 && strncasecmp(ct.p, "multipart/form-data", 19) == 0;
}

/* Finds the profile (and its sample_type_config) in a multipart body. */
static int read_multipart(const hp_http_request_t *req, hp_str_t *profile, hp_stc_t *stc,
                          hp_err_t *err)
{
    hp_str_t boundary;
    hp_multipart_part_t parts[16];
    size_t n;
    int rc = hp_multipart_boundary(hp_http_header(req, "content-type"), &boundary, err);
    if (rc == 0)
        rc = hp_multipart_parse(boundary, req->body, parts, HP_ARRAY_LEN(parts), &n, err);
    if (rc != 0)
        return rc;
    if (hp_multipart_find(parts, n, "prev_profile"))
        return hp_err_set(err, HP_EUNSUPPORTED,
                          "unsupported client version: prev_profile is not supported; please update "
                          "github.com/grafana/pyroscope-go to the latest version");
    const hp_multipart_part_t *p = hp_multipart_find(parts, n, "profile");
    if (p == NULL)
        return hp_err_set(err, HP_EINVAL, "multipart body has no 'profile' part");
    *profile = p->data;
    const hp_multipart_part_t *c = hp_multipart_find(parts, n, "sample_type_config");
    return c ? hp_stc_parse(c->data.p, c->data.n, stc, err) : 0;
}

static const char *const later_formats[] = {"groups", "folded", "collapsed", "lines", "jfr",
                                            "speedscope", "trie", "tree"};

/* Which bytes hold the pprof; HP_EUNSUPPORTED for formats still to come. */
static int read_body(const hp_http_request_t *req, const ingest_meta_t *m, hp_str_t *profile,
                     hp_stc_t *stc, hp_err_t *err)
{
    if (is_multipart(req) && (m->format.n == 0 || hp_str_eq_c(m->format, "pprof")))
        return read_multipart(req, profile, stc, err);
    if (hp_str_eq_c(m->format, "pprof")) {
        *profile = req->body;
        return 0;
    }
    const char *f = m->format.n ? NULL : "groups (the default, folded stacks)";
    for (size_t i = 0; i < HP_ARRAY_LEN(later_formats) && !f; i++)
        if (hp_str_eq_c(m->format, later_formats[i]))
            f = later_formats[i];
    if (f)
        return hp_err_set(err, HP_EUNSUPPORTED,
                          "format %s is not supported yet: send pprof (format=pprof or multipart)", f);
    return hp_err_set(err, HP_EINVAL,
                      "unknown format '%.*s': expected pprof, jfr, speedscope, lines, groups, trie or tree",
                      (int)HP_MIN(m->format.n, 64), m->format.p);
}

/* Pyroscope's /ingest statuses: 400 for what cannot be read, 422 for what
 * was read but is refused, 413 for too large, 429 for limits. Tenant
 * errors are answered apart (tenant_error). */
static void ingest_error(dist_t *d, hp_str_t tenant, const hp_http_request_t *req, hp_err_t *err,
                         hp_http_response_t *resp)
{
    int status = hp_err_http_status(err->code);
    if (err->code == HP_EINVAL && err->detail != HP_PPROF_EWIRE)
        status = 422;
    const char *reason = err->code == HP_ETOOLARGE ? "profile_size_limit"
                         : err->code == HP_EUNAVAIL ? NULL : "malformed_profile";
    if (reason)
        dist_count_discarded(d, tenant, reason, req->body.n);
    char q[600];
    HP_DEBUG("ingest refused", "status=%d err=%s", status, hp_log_q(q, sizeof(q), err->msg));
    hp_http_error(resp, status, err->msg);
}

/* A missing (401) or invalid (400) X-Scope-OrgID, as docs/API.md says: not
 * a refused profile, so not counted as a discard. */
static void tenant_error(const hp_err_t *err, hp_http_response_t *resp)
{
    char q[600];
    HP_DEBUG("ingest refused: tenant", "err=%s", hp_log_q(q, sizeof(q), err->msg));
    hp_http_error(resp, err->code == HP_EAUTH ? 401 : 400, err->msg);
}

static void handle_ingest(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    dist_t *d = ctx;
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant = HP_STR("");
    ingest_meta_t m;
    memset(&m, 0, sizeof(m));
    hp_labels_t labels;
    hp_labels_init(&labels);
    hp_stc_t stc = {NULL, 0};
    dist_profile_t prof;
    memset(&prof, 0, sizeof(prof));
    hp_str_t body = {NULL, 0};
    int64_t t0 = hp_mono_ms();
    if (hp_tenant_from_request(d->cfg, req, &tenant, &err) != 0) {
        tenant_error(&err, resp);
        return;
    }
    int rc = parse_meta(req, &m, &err);
    if (rc != 0)
        err.detail = HP_PPROF_EWIRE; /* metadata errors are 400 */
    if (rc == 0 && (rc = read_body(req, &m, &body, &stc, &err)) != 0 && rc == HP_EINVAL)
        err.detail = HP_PPROF_EWIRE;
    if (rc == 0) {
        client_labels(&m, &labels);
        dist_input_t in = {tenant, &labels, stc.n ? &stc : NULL, m.from_ns, HP_STR("")};
        rc = dist_accept(d, &in, (const uint8_t *)body.p, body.n, req->arena, &prof, &err);
    }
    if (rc == 0 && prof.raw != NULL)
        rc = dist_forward(d, tenant, &prof, 1, &err);
    if (rc != 0)
        ingest_error(d, tenant, req, &err, resp);
    else
        dist_count_received(d, tenant, prof.raw ? 1 : 0, req->body.n);
    hp_metric_observe(d->push_seconds, (double)(hp_mono_ms() - t0) / 1000.0);
    hp_labels_fini(&prof.labels);
    hp_labels_fini(&labels);
    hp_labels_fini(&m.user);
    hp_stc_fini(&stc);
}

void dist_register_ingest(dist_t *d)
{
    hp_http_route(d->svc->http, "POST", "/ingest", handle_ingest, d);
    hp_http_route(d->svc->http, "POST", "/pyroscope/ingest", handle_ingest, d);
}
