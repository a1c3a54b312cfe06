/* POST /push.v1.PusherService/Push: the Push API (Connect, proto + JSON),
 * as Grafana Alloy and profilecli send it. */
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "hotpath/connect.h"
#include "hotpath/log.h"
#include "push/v1/push.pb-c.h"

/* The client labels of one series; service_name defaults to
 * "unknown_service" as in Pyroscope. */
static void series_labels(const Push__V1__RawProfileSeries *s, hp_labels_t *ls)
{
    hp_labels_reset(ls);
    for (size_t i = 0; i < s->n_labels; i++)
        hp_labels_set(ls, hp_str_c(s->labels[i]->name), hp_str_c(s->labels[i]->value));
    hp_str_t svc = hp_labels_get(ls, HP_LABEL_SERVICE_NAME);
    if (svc.n == 0)
        hp_labels_set(ls, HP_STR(HP_LABEL_SERVICE_NAME), HP_STR("unknown_service"));
}

static size_t count_samples(const Push__V1__PushRequest *pr)
{
    size_t n = 0;
    for (size_t i = 0; i < pr->n_series; i++)
        n += pr->series[i]->n_samples;
    return n;
}

/* Accepts every sample of every series; the first bad one fails the
 * request, as Pyroscope does. */
static int accept_all(dist_t *d, hp_str_t tenant, const hp_limits_config_t *lim, const Push__V1__PushRequest *pr,
                      hp_arena_t *a, dist_profile_t *out, size_t *n_out, const char **reason, hp_err_t *err)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    int rc = 0;
    int64_t now = hp_now_ns();
    *n_out = 0;
    for (size_t i = 0; i < pr->n_series && rc == 0; i++) {
        const Push__V1__RawProfileSeries *s = pr->series[i];
        series_labels(s, &ls);
        for (size_t k = 0; k < s->n_samples && rc == 0; k++) {
            const Push__V1__RawSample *rs = s->samples[k];
            dist_input_t in = {tenant, &ls, NULL, now, hp_str_c(rs->id), lim};
            rc = dist_accept(d, &in, rs->raw_profile.data, rs->raw_profile.len, a, &out[*n_out], err);
            if (rc != 0)
                *reason = out[*n_out].reason;
            if (rc == 0 && out[*n_out].raw)
                (*n_out)++;
            else
                hp_labels_fini(&out[*n_out].labels);
        }
    }
    hp_labels_fini(&ls);
    return rc;
}

/* Decodes the PushRequest: the body as sent is bounded by the tenant's
 * ingestion limit, what its Content-Encoding expands to by its own limit. */
static int decode_push(const hp_limits_config_t *lim, const hp_http_request_t *req, ProtobufCMessage **msg,
                       hp_connect_codec_t *codec, hp_err_t *err)
{
    return hp_connect_decode_bounded(req, &push__v1__push_request__descriptor,
                                     hp_limit_size(lim->ingestion_body_limit_bytes),
                                     hp_limit_size(lim->ingestion_decompressed_body_limit_bytes), msg, codec, err);
}

static void handle_push(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    dist_t *d = ctx;
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant = HP_STR("");
    ProtobufCMessage *msg = NULL;
    hp_connect_codec_t codec = HP_CONNECT_PROTO;
    dist_profile_t *profiles = NULL;
    size_t n = 0;
    int64_t t0 = hp_mono_ms();
    if (hp_tenant_from_request(d->cfg, req, &tenant, &err) != 0) {
        hp_connect_error(resp, &err); /* 401 or 400, and no profile was refused */
        return;
    }
    hp_limits_config_t lim;
    hp_overrides_get(d->svc->overrides, tenant, &lim);
    const char *reason = NULL;
    int rc = decode_push(&lim, req, &msg, &codec, &err);
    if (rc == 0) {
        const Push__V1__PushRequest *pr = (const Push__V1__PushRequest *)msg;
        profiles = hp_xcalloc(count_samples(pr) + 1, sizeof(*profiles));
        rc = accept_all(d, tenant, &lim, pr, req->arena, profiles, &n, &reason, &err);
    }
    size_t bytes = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        bytes += profiles[i].bytes;
    if (rc == 0 && n && (rc = dist_rate_take(d, tenant, &lim, bytes, &err)) != 0)
        reason = "rate_limited";
    if (rc == 0 && n)
        rc = dist_forward(d, tenant, &lim, profiles, n, &err);
    if (rc == 0) {
        dist_count_received(d, tenant, n, req->body.n);
        resp->content_type = codec == HP_CONNECT_JSON ? "application/json" : "application/proto";
        if (codec == HP_CONNECT_JSON)
            hp_buf_puts(&resp->body, "{}");
    } else {
        /* An oversized profile is the client's error, not a retryable
         * resource exhaustion (Alloy retries resource_exhausted). */
        if (err.code == HP_ETOOLARGE)
            err.code = HP_EINVAL;
        if (err.code == HP_EINVAL || err.code == HP_ELIMIT)
            dist_count_discarded(d, tenant,
                                 reason ? reason : err.code == HP_ELIMIT ? "series_limit" : "malformed_profile",
                                 req->body.n);
        hp_connect_error(resp, &err);
    }
    hp_metric_observe(d->push_seconds, (double)(hp_mono_ms() - t0) / 1000.0);
    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&profiles[i].labels);
    free(profiles);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

void dist_register_push(dist_t *d)
{
    hp_http_route(d->svc->http, "POST", "/push.v1.PusherService/Push", handle_push, d);
}
