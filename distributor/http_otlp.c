/* POST /v1development/profiles: OpenTelemetry profiles over OTLP/HTTP
 * (protobuf or protojson), converted into pprof as Pyroscope's OTLP receiver
 * does and then accepted like any other profile. OTLP over gRPC is not
 * served. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "distributor.h"
#include "hotpath/compress.h"
#include "hotpath/otlp.h"

/* The request codecs, by the exact Content-Type Pyroscope accepts. */
static const struct {
    const char *content_type;
    bool json;
    const char *parse_error; /* Pyroscope's wording when the body does not parse */
} codecs[] = {
    {"application/x-protobuf", false, "Failed to parse protobuf request"},
    {"application/protobuf", false, "Failed to parse protobuf request"},
    {"application/json", true, "Failed to parse JSON request"},
};

/* How far one request may expand when shared stacks are copied into each
 * sample: 16M frames, about what 16000 samples (the default
 * max_profile_stacktrace_samples) of 1000 frames (the default depth) hold.
 * The other bounds are otlp.h's defaults. */
#define OTLP_MAX_FRAMES ((uint64_t)1 << 24)

/* The codec of the request's Content-Type, or -1 (415). */
static int codec_of(const hp_http_request_t *req)
{
    hp_str_t ct = hp_http_header(req, "content-type");
    for (size_t i = 0; i < HP_ARRAY_LEN(codecs); i++)
        if (hp_str_eq_c(ct, codecs[i].content_type))
            return (int)i;
    return -1;
}

/* The body after Content-Encoding (only gzip is understood, as in
 * Pyroscope), bounded by the tenant's limits; scratch holds inflated bytes. */
static int read_body(const hp_http_request_t *req, const hp_limits_config_t *lim, hp_buf_t *scratch,
                     hp_str_t *out, hp_err_t *err)
{
    size_t max_body = hp_limit_size(lim->ingestion_body_limit_bytes);
    size_t max_decoded = hp_limit_size(lim->ingestion_decompressed_body_limit_bytes);
    if (req->body.n > max_body)
        return hp_err_set(err, HP_ETOOLARGE,
                          "request body of %zu bytes exceeds the ingestion body limit of %zu bytes",
                          req->body.n, max_body);
    hp_str_t enc = hp_http_header(req, "content-encoding");
    if (enc.n != 4 || strncasecmp(enc.p, "gzip", 4) != 0) {
        *out = req->body;
        return 0;
    }
    int rc = hp_gunzip(req->body.p, req->body.n, max_decoded, scratch, err);
    if (rc == HP_EINVAL) {
        char why[sizeof(err->msg)]; /* formatting err->msg into itself overlaps */
        snprintf(why, sizeof(why), "%s", err->msg);
        hp_err_set(err, HP_EINVAL, "Failed to read request body: %s", why);
    }
    *out = (hp_str_t){(const char *)scratch->data, scratch->len};
    return rc;
}

/* Converts the body; a body that does not parse gets Pyroscope's prefix. */
static int convert(const hp_str_t body, int codec, hp_otlp_result_t *res, hp_err_t *err)
{
    hp_otlp_limits_t lim = {.max_frames = OTLP_MAX_FRAMES};
    int rc = hp_otlp_convert((const uint8_t *)body.p, body.n, codecs[codec].json, &lim, res, err);
    if (rc != 0 && err->detail == HP_OTLP_EPARSE) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        hp_err_set(err, rc, "%s: %s", codecs[codec].parse_error, why);
    }
    return rc;
}

/* Accepts every converted profile; the first bad one fails the request, as
 * Pyroscope's push of the batch does. */
static int accept_all(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, const hp_otlp_result_t *res,
                      hp_arena_t *a, dist_profile_t *out, size_t *n_out, const char **reason, hp_err_t *err)
{
    int rc = 0;
    int64_t now = hp_now_ns();
    *n_out = 0;
    for (size_t i = 0; i < res->n && rc == 0; i++) {
        dist_input_t in = {tenant, &res->v[i].labels, NULL, now, HP_STR(""), lim};
        rc = dist_accept(d, &in, res->v[i].pprof, res->v[i].pprof_len, a, &out[*n_out], err);
        if (rc != 0)
            *reason = out[*n_out].reason;
        if (rc == 0 && out[*n_out].raw)
            (*n_out)++;
        else
            hp_labels_fini(&out[*n_out].labels);
    }
    return rc;
}

/* Rate-limits and forwards the accepted profiles. */
static int ingest(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, dist_profile_t *profiles,
                  size_t n, const char **reason, hp_err_t *err)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += profiles[i].bytes;
    if (n == 0)
        return 0;
    int rc = dist_rate_take(d, tenant, lim, bytes, err);
    if (rc != 0) {
        *reason = "rate_limited";
        return rc;
    }
    return dist_forward(d, tenant, lim, profiles, n, err);
}

/* Writes the outcome: an empty ExportProfilesServiceResponse, or the error
 * as plain text with its status (Pyroscope answers with http.Error). */
static void respond(dist_t *d, hp_str_t tenant, const hp_http_request_t *req, hp_http_response_t *resp,
                    int rc, hp_err_t *err, const char *reason, size_t n)
{
    if (rc == 0) {
        dist_count_received(d, tenant, n, req->body.n);
        resp->content_type = "application/x-protobuf";
        return;
    }
    /* A profile over the size limit is the client's error, not a
     * retryable resource exhaustion. */
    if (err->code == HP_ETOOLARGE && reason)
        err->code = HP_EINVAL;
    if (err->code == HP_EINVAL || err->code == HP_ELIMIT)
        dist_count_discarded(d, tenant,
                             reason                   ? reason
                             : err->code == HP_ELIMIT ? "series_limit"
                                                      : "malformed_profile",
                             req->body.n);
    hp_http_error(resp, hp_err_http_status(err->code), err->msg);
}

static void handle_otlp(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    dist_t *d = ctx;
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant = HP_STR("");
    if (hp_tenant_from_request(d->cfg, req, &tenant, &err) != 0) {
        hp_http_error_from(resp, &err); /* 401 or 400, and no profile was refused */
        return;
    }
    int codec = codec_of(req);
    if (codec < 0) {
        hp_str_t ct = hp_http_header(req, "content-type");
        char msg[300];
        snprintf(msg, sizeof(msg), "Unsupported Content-Type: %.*s", (int)HP_MIN(ct.n, 200),
                 ct.p ? ct.p : "");
        hp_http_error(resp, 415, msg);
        return;
    }
    int64_t t0 = hp_mono_ms();
    hp_limits_config_t lim;
    hp_overrides_get(d->svc->overrides, tenant, &lim);
    hp_buf_t scratch = HP_BUF_INIT;
    hp_otlp_result_t res;
    memset(&res, 0, sizeof(res));
    dist_profile_t *profiles = NULL;
    size_t n = 0;
    const char *reason = NULL;
    hp_str_t body = HP_STR("");
    int rc = read_body(req, &lim, &scratch, &body, &err);
    if (rc == 0)
        rc = convert(body, codec, &res, &err);
    if (rc == 0) {
        profiles = hp_xcalloc(res.n + 1, sizeof(*profiles));
        rc = accept_all(d, tenant, &lim, &res, req->arena, profiles, &n, &reason, &err);
    }
    if (rc == 0)
        rc = ingest(d, tenant, &lim, profiles, n, &reason, &err);
    respond(d, tenant, req, resp, rc, &err, reason, n);
    hp_metric_observe(d->push_seconds, (double)(hp_mono_ms() - t0) / 1000.0);
    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&profiles[i].labels);
    free(profiles);
    hp_otlp_result_fini(&res); /* the pprof bytes outlive dist_forward */
    hp_buf_fini(&scratch);
}

void dist_register_otlp(dist_t *d)
{
    hp_http_route(d->svc->http, "POST", "/v1development/profiles", handle_otlp, d);
}
