/* Accepting one profile: decode, validate, derive its series labels. */
#include <string.h>
#include <xxhash.h>

#include "distributor.h"
#include "hotpath/compress.h"
#include "hotpath/pprof.h"

/* The profile's ID: the client's UUID when it gave one, else a hash of the
 * tenant, series and bytes — so a retried push of the same profile gets
 * the same ID and is stored once. */
static void profile_id(const dist_input_t *in, const hp_labels_t *ls, const uint8_t *raw, size_t len,
                       uint8_t id[16])
{
    if (in->client_id.n && hp_uuid_parse(in->client_id, id))
        return;
    uint64_t seed = hp_labels_fingerprint(ls) ^ XXH3_64bits(in->tenant.p, in->tenant.n);
    XXH128_hash_t h = XXH3_128bits_withSeed(raw, len, seed);
    memcpy(id, &h.high64, 8);
    memcpy(id + 8, &h.low64, 8);
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x80); /* a version-8 (custom) UUID */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* Pyroscope's discard reason for a label refusal (hp_labels_validate's detail). */
static const char *label_reason(int detail)
{
    switch (detail) {
    case HP_LABELS_EMISSING: return "missing_labels";
    case HP_LABELS_ETOO_MANY: return "max_label_names_per_series";
    case HP_LABELS_ENAME_LONG: return "label_name_too_long";
    case HP_LABELS_EVALUE_LONG: return "label_value_too_long";
    case HP_LABELS_EDUPLICATE: return "duplicate_label_names";
    default: return "invalid_labels";
    }
}

static hp_label_limits_t label_limits(const hp_limits_config_t *l)
{
    hp_label_limits_t lim = {(size_t)l->max_label_names_per_series, (size_t)l->max_label_name_length,
                             (size_t)l->max_label_value_length};
    return lim;
}

/* The base labels: the client's without empty values (Pyroscope's
 * LabelsBuilder drops them), names sanitized, __name__ set, hints dropped,
 * sorted and validated. */
static int base_labels(const dist_input_t *in, const hp_pprof_t *p, hp_arena_t *a, hp_labels_t *out,
                       hp_err_t *err)
{
    hp_labels_copy(out, in->labels);
    hp_labels_del_empty(out);
    hp_labels_sanitize_names(out, a);
    hp_labels_del(out, HP_LABEL_DELTA);
    hp_labels_del(out, "__otel__"); /* an ingest hint (OTLP), not a series label, as in Pyroscope */
    hp_labels_del(out, HP_LABEL_PROFILE_TYPE);
    if (hp_labels_get(out, HP_LABEL_NAME).n == 0)
        hp_labels_set(out, HP_STR(HP_LABEL_NAME), hp_profile_metric_name(p, in->stc));
    hp_labels_sort(out);
    hp_label_limits_t lim = label_limits(in->lim);
    return hp_labels_validate(out, &lim, err);
}

/* Each group of samples becomes series labels of its own: they must be
 * valid too (the reserved type labels add 5 names). */
static int validate_groups(const dist_input_t *in, const hp_pprof_t *p, const hp_labels_t *base, hp_arena_t *a,
                           hp_err_t *err)
{
    hp_sample_group_t *groups;
    size_t n;
    hp_profile_group_samples(p, a, &groups, &n);
    hp_labels_t merged;
    hp_labels_init(&merged);
    hp_label_limits_t lim = label_limits(in->lim);
    if (lim.max_names)
        lim.max_names += 5;
    int rc = 0;
    for (size_t g = 0; g < n && rc == 0; g++) {
        if (groups[g].labels.n == 0)
            continue;
        hp_profile_series_labels(p, 0, hp_labels_get(base, HP_LABEL_NAME), base, &groups[g].labels, a,
                                 &merged);
        rc = hp_labels_validate(&merged, &lim, err);
    }
    hp_labels_fini(&merged);
    hp_profile_groups_fini(groups, n);
    return rc;
}

static int check_limits(const hp_limits_config_t *l, const hp_pprof_t *p, hp_err_t *err)
{
    int64_t max = l->max_profile_stacktrace_samples;
    if (max > 0 && p->n_samples > (uint64_t)max)
        return hp_err_set(err, HP_EINVAL,
                          "profile exceeds the samples count limit (max_profile_stacktrace_samples, actual: %u, limit: %lld)",
                          p->n_samples, (long long)max);
    if (p->n_sample_types == 0)
        return hp_err_set(err, HP_EINVAL, "profile has samples but no sample types");
    return 0;
}

/* The decoder's limits from the configuration (0 = no limit). */
static hp_pprof_limits_t decode_limits(const hp_limits_config_t *l)
{
    int64_t labels = l->max_profile_stacktrace_sample_labels;
    int64_t samples = l->max_profile_stacktrace_samples;
    hp_pprof_limits_t lim = {0, 0, labels > 0 && labels < UINT32_MAX ? (uint32_t)labels : UINT32_MAX};
    /* The configured sample limit is checked after decoding, with
     * Pyroscope's message; the decoder only must not stop below it. */
    if (samples <= 0 || samples >= UINT32_MAX)
        lim.max_samples = UINT32_MAX;
    else if (samples > (1 << 22))
        lim.max_samples = (uint32_t)samples;
    return lim;
}

/* The profile's time within [now - reject_older_than, now +
 * reject_newer_than] (each 0: no bound); HP_EINVAL giving the window. */
static int check_window(const hp_limits_config_t *l, int64_t t_ns, hp_err_t *err)
{
    int64_t now = hp_now_ns();
    /* saturating: the durations come from configuration and may be huge */
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (l->reject_older_than_ms > 0 && __builtin_sub_overflow(now, hp_ms_to_ns_sat(l->reject_older_than_ms), &lo))
        lo = INT64_MIN;
    if (l->reject_newer_than_ms > 0 && __builtin_add_overflow(now, hp_ms_to_ns_sat(l->reject_newer_than_ms), &hi))
        hi = INT64_MAX;
    if (t_ns >= lo && t_ns <= hi)
        return 0;
    char ts[40], a[40], b[40];
    return hp_err_set(err, HP_EINVAL,
                      "profile time %s is outside the ingestion window [%s, %s] (now - reject_older_than, now + "
                      "reject_newer_than)",
                      hp_fmt_rfc3339(t_ns, ts, sizeof(ts)), lo == INT64_MIN ? "-inf" : hp_fmt_rfc3339(lo, a, sizeof(a)),
                      hi == INT64_MAX ? "+inf" : hp_fmt_rfc3339(hi, b, sizeof(b)));
}

int dist_accept(dist_t *d, const dist_input_t *in, const uint8_t *raw, size_t len, hp_arena_t *a,
                dist_profile_t *out, hp_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->reason = "malformed_profile";
    const hp_limits_config_t *lim = in->lim ? in->lim : &d->cfg->limits;
    dist_input_t with = *in;
    with.lim = lim;
    in = &with;
    if (len == 0) {
        hp_err_set(err, HP_EINVAL, "empty profile: the request carried no profile bytes");
        err->detail = HP_PPROF_EWIRE;
        return HP_EINVAL;
    }
    hp_buf_t scratch = HP_BUF_INIT;
    const uint8_t *data;
    size_t n;
    int rc = hp_maybe_gunzip(raw, len, hp_limit_size(lim->max_profile_size_bytes), &scratch, &data, &n, err);
    if (rc != 0) {
        if (rc == HP_EINVAL)
            err->detail = HP_PPROF_EWIRE;
        if (rc == HP_ETOOLARGE)
            out->reason = "profile_size_limit";
        hp_buf_fini(&scratch);
        return rc;
    }
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_pprof_limits_t dlim = decode_limits(lim);
    rc = hp_pprof_decode(&p, data, n, &dlim, err);
    if (rc == 0 && p.n_samples > 0) {
        if ((rc = check_limits(lim, &p, err)) != 0)
            out->reason = "samples_limit";
        if (rc == 0 && ((rc = base_labels(in, &p, a, &out->labels, err)) != 0 ||
                        (rc = validate_groups(in, &p, &out->labels, a, err)) != 0))
            out->reason = label_reason(err->detail);
        if (rc == 0) {
            out->time_nanos = p.time_nanos;
            /* No time, or a 1970 time from clients that sent µs: use `from`. */
            if (out->time_nanos < 31536000LL * 1000000000LL)
                out->time_nanos = in->from_ns;
            if ((rc = check_window(lim, out->time_nanos, err)) != 0) {
                out->reason = "not_in_ingestion_window";
                err->detail = DIST_EWINDOW;
            }
        }
        if (rc == 0) {
            profile_id(in, &out->labels, raw, len, out->id);
            out->raw = raw;
            out->raw_len = len;
            out->bytes = n;
            out->reason = NULL;
        }
    }
    hp_pprof_fini(&p);
    hp_buf_fini(&scratch);
    return rc;
}
