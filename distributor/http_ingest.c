/* POST /ingest (and /pyroscope/ingest): Pyroscope's legacy ingest API. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "distributor.h"
#include "hotpath/attime.h"
#include "hotpath/compress.h"
#include "hotpath/jfr.h"
#include "hotpath/log.h"
#include "hotpath/multipart.h"
#include "hotpath/pprof.h"
#include "hotpath/textprof.h"

/* What the query string says about the upload. */
typedef struct ingest_meta {
    hp_str_t app;
    hp_labels_t user; /* from the name's braces */
    hp_str_t spy;
    hp_str_t format;
    int64_t from_ns, until_ns; /* until_ns 0: not given */
    int64_t sample_rate;       /* sampleRate: 100 unless a non-negative integer was given */
} ingest_meta_t;

/* A time parameter into *ns; HP_EINVAL naming the parameter. */
static int parse_time(const hp_http_request_t *req, const char *name, int64_t *ns, hp_err_t *err)
{
    hp_str_t v;
    if (!hp_http_query(req, name, &v) || v.n == 0)
        return 0;
    int rc = hp_attime_parse(v, hp_now_ns(), ns, err);
    if (rc != 0) {
        char why[sizeof(err->msg)]; /* formatting err->msg into itself overlaps */
        snprintf(why, sizeof(why), "%s", err->msg);
        return hp_err_set(err, HP_EINVAL, "%s: %s", name, why);
    }
    return 0;
}

/* sampleRate as Pyroscope reads it: a non-negative integer, else 100. */
static int64_t parse_sample_rate(const hp_http_request_t *req)
{
    hp_str_t v;
    if (!hp_http_query(req, "sampleRate", &v) || v.n == 0 || v.n > 18)
        return 100;
    int64_t r = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return 100;
        r = r * 10 + (v.p[i] - '0');
    }
    return r;
}

static int parse_meta(const hp_http_request_t *req, ingest_meta_t *m, hp_err_t *err)
{
    hp_str_t name;
    if (!hp_http_query(req, "name", &name) || name.n == 0)
        return hp_err_set(err, HP_EINVAL, "name: the 'name' query parameter is required (app{label=value,…})");
    int rc = hp_labels_parse_app_name(name, &m->app, &m->user, err);
    if (rc != 0)
        return rc;
    m->from_ns = hp_now_ns();
    if ((rc = parse_time(req, "from", &m->from_ns, err)) != 0 || (rc = parse_time(req, "until", &m->until_ns, err)) != 0)
        return rc;
    m->sample_rate = parse_sample_rate(req);
    if (!hp_http_query(req, "spyName", &m->spy) || m->spy.n == 0)
        m->spy = HP_STR("unknown");
    if (!hp_http_query(req, "format", &m->format))
        m->format = HP_STR("");
    return 0;
}

/* The labels a profile is stored under, from the upload's metadata, with
 * app as its app name. An empty value is no label (dropped by
 * dist_accept), so an empty service_name does not push the app name to
 * app_name. */
static void client_labels(const ingest_meta_t *m, hp_str_t app, hp_labels_t *ls)
{
    bool has_service = false;
    for (size_t i = 0; i < m->user.n; i++) {
        hp_str_t k = m->user.v[i].name;
        if (k.n >= 2 && k.p[0] == '_' && k.p[1] == '_' && !hp_str_eq_c(k, HP_LABEL_SESSION_ID))
            continue; /* reserved names are not the client's to set */
        has_service |= hp_str_eq_c(k, HP_LABEL_SERVICE_NAME) && m->user.v[i].value.n > 0;
        hp_labels_set(ls, k, m->user.v[i].value);
    }
    hp_labels_set(ls, hp_str_c(has_service ? "app_name" : HP_LABEL_SERVICE_NAME), app);
    hp_labels_set(ls, HP_STR("pyroscope_spy"), m->spy);
}

static bool is_multipart(const hp_http_request_t *req)
{
    hp_str_t ct = hp_http_header(req, "content-type");
    return ct.n >= 19 && strncasecmp(ct.p, "multipart/form-data", 19) == 0;
}

#define MAX_PARTS 16

/* The parts (at most MAX_PARTS) of a multipart/form-data body. */
static int multipart_parts(const hp_http_request_t *req, hp_multipart_part_t *parts, size_t *n, hp_err_t *err)
{
    hp_str_t boundary;
    int rc = hp_multipart_boundary(hp_http_header(req, "content-type"), &boundary, err);
    if (rc == 0)
        rc = hp_multipart_parse(boundary, req->body, parts, MAX_PARTS, n, err);
    return rc;
}

/* Finds the profile (and its sample_type_config) in a multipart body. */
static int read_multipart(const hp_http_request_t *req, hp_str_t *profile, hp_stc_t *stc,
                          hp_err_t *err)
{
    hp_multipart_part_t parts[MAX_PARTS];
    size_t n;
    int rc = multipart_parts(req, parts, &n, err);
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

/* How the body is encoded, from `format` and the Content-Type, in
 * Pyroscope's order: trie, tree, lines, jfr, pprof, speedscope, multipart
 * pprof, then folded "groups". A multipart/form-data body with
 * format=pprof is read as multipart too (where Pyroscope would read the
 * whole body as a pprof and fail). Pyroscope reads any other format name
 * as groups too; hotpath takes "groups", "folded" and "collapsed" (and no
 * format) as groups and refuses other names (FMT_UNKNOWN: 400), so a typo
 * is not stored as an empty profile. */
typedef enum {
    FMT_PPROF,
    FMT_MULTIPART,
    FMT_GROUPS,
    FMT_LINES,
    FMT_SPEEDSCOPE,
    FMT_JFR,
    FMT_TREE,
    FMT_TRIE,
    FMT_UNKNOWN
} fmt_t;

static fmt_t body_format(const hp_http_request_t *req, const ingest_meta_t *m)
{
    hp_str_t ct = hp_http_header(req, "content-type");
    if (hp_str_eq_c(m->format, "trie") || hp_str_eq_c(ct, "binary/octet-stream+trie"))
        return FMT_TRIE;
    if (hp_str_eq_c(m->format, "tree") || hp_str_eq_c(ct, "binary/octet-stream+tree"))
        return FMT_TREE;
    if (hp_str_eq_c(m->format, "lines"))
        return FMT_LINES;
    if (hp_str_eq_c(m->format, "jfr"))
        return FMT_JFR;
    if (hp_str_eq_c(m->format, "pprof"))
        return is_multipart(req) ? FMT_MULTIPART : FMT_PPROF;
    if (hp_str_eq_c(m->format, "speedscope"))
        return FMT_SPEEDSCOPE;
    if (is_multipart(req))
        return FMT_MULTIPART;
    if (m->format.n == 0 || hp_str_eq_c(m->format, "groups") || hp_str_eq_c(m->format, "folded") ||
        hp_str_eq_c(m->format, "collapsed"))
        return FMT_GROUPS;
    return FMT_UNKNOWN;
}

/* Which bytes hold the pprof of a pprof upload. */
static int read_pprof_body(const hp_http_request_t *req, fmt_t f, hp_str_t *profile, hp_stc_t *stc, hp_err_t *err)
{
    if (f == FMT_MULTIPART)
        return read_multipart(req, profile, stc, err);
    *profile = req->body;
    return 0;
}

/* The bound on a text upload's decoded body: the profile size limit, or
 * when that is 0 the decompressed-body limit; *name says which. */
static size_t text_limit(const hp_limits_config_t *l, const char **name)
{
    *name = "max_profile_size_bytes";
    if (l->max_profile_size_bytes > 0)
        return (size_t)l->max_profile_size_bytes;
    *name = "ingestion_decompressed_body_limit_bytes";
    return l->ingestion_decompressed_body_limit_bytes > 0 ? (size_t)l->ingestion_decompressed_body_limit_bytes
                                                          : SIZE_MAX;
}

/* The decoded body of a text upload (gunzipped when it is gzip), within
 * text_limit: a gzip body is never inflated past it. */
static int text_body(const hp_limits_config_t *l, const hp_http_request_t *req, hp_buf_t *scratch,
                     hp_str_t *out, hp_err_t *err)
{
    const char *name;
    size_t lim = text_limit(l, &name);
    const uint8_t *data = NULL;
    size_t n = 0;
    int rc = hp_maybe_gunzip((const uint8_t *)req->body.p, req->body.n, lim, scratch, &data, &n, err);
    if (rc == HP_EINVAL)
        err->detail = HP_PPROF_EWIRE;
    if (rc == 0 && n > lim)
        rc = hp_err_set(err, HP_ETOOLARGE, "profile of %zu bytes exceeds the size limit (%s: %zu)", n, name,
                        lim);
    else if (rc == HP_ETOOLARGE)
        rc = hp_err_set(err, HP_ETOOLARGE, "profile exceeds %zu bytes after decompression (%s)", lim, name);
    *out = (hp_str_t){(const char *)data, n};
    return rc;
}

/* The profiles a text upload becomes, converted to pprof and accepted. */
typedef struct text_batch {
    hp_buf_t pprof[16];   /* the pprof of each profile: prof[i].raw points into it */
    dist_profile_t prof[16];
    hp_labels_t labels;   /* scratch: one profile's client labels */
    size_t n;
    hp_limits_config_t lim; /* the tenant's */
    const char *reason;     /* why a profile was refused */
    size_t frames_left, names_left; /* what the upload's profiles may still cost (text_budget) */
} text_batch_t;

#define TEXT_MAX_PROFILES 16

static void text_batch_fini(text_batch_t *tb)
{
    for (size_t i = 0; i < TEXT_MAX_PROFILES; i++) {
        hp_buf_fini(&tb->pprof[i]);
        hp_labels_fini(&tb->prof[i].labels);
    }
    hp_labels_fini(&tb->labels);
}

/* What converting a text body may cost, all its profiles together: 16 Mi
 * frames and 64 MiB of frame names, or 4 of each per byte of a larger
 * body. Folded, lines and sampled speedscope bodies stay far below (each
 * frame takes a byte or more of the body); trees, tries and evented
 * speedscope files share frames between stacks, and the budget stops those
 * from costing work out of proportion to their size. */
#define TEXT_FRAME_BUDGET ((size_t)16 << 20)
#define TEXT_NAME_BUDGET ((size_t)64 << 20)
#define TEXT_BUDGET_PER_BYTE 4

static void text_budget(text_batch_t *tb, size_t body_n)
{
    size_t scaled = body_n > SIZE_MAX / TEXT_BUDGET_PER_BYTE ? SIZE_MAX : body_n * TEXT_BUDGET_PER_BYTE;
    tb->frames_left = HP_MAX(TEXT_FRAME_BUDGET, scaled);
    tb->names_left = HP_MAX(TEXT_NAME_BUDGET, scaled);
}

/* The conversion limits of the batch's next profile: the tenant's limits
 * and what is left of the budget (at least 1: 0 would mean none). */
static hp_text_limits_t text_limits(const text_batch_t *tb)
{
    int64_t samples = tb->lim.max_profile_stacktrace_samples, depth = tb->lim.max_profile_stacktrace_depth;
    int64_t len = tb->lim.max_profile_symbol_value_length;
    return (hp_text_limits_t){samples > 0 ? (size_t)samples : 0, depth > 0 ? (size_t)depth : 0,
                              len > 0 ? (size_t)len : 0, HP_MAX(tb->frames_left, 1),
                              HP_MAX(tb->names_left, 1)};
}

/* Takes what p cost from the batch's budget. */
static void text_spend(text_batch_t *tb, const hp_text_profile_t *p)
{
    tb->frames_left -= HP_MIN(p->n_frames, tb->frames_left);
    tb->names_left -= HP_MIN(p->n_name_bytes, tb->names_left);
}

/* Starts the text profile for app (its type from its suffix) and sets the
 * client labels it is stored under into tb->labels. */
static int text_start(dist_t *d, const ingest_meta_t *m, hp_str_t app, int64_t rate, hp_text_profile_t *p,
                      text_batch_t *tb, hp_err_t *err)
{
    hp_str_t base;
    hp_text_type_t t;
    int rc = hp_text_type_of_app(app, &base, &t, err);
    if (rc != 0) {
        err->detail = HP_PPROF_EWIRE; /* metadata: 400, as Pyroscope answers */
        return rc;
    }
    hp_text_limits_t lim = text_limits(tb);
    int64_t dur = m->until_ns > m->from_ns ? m->until_ns - m->from_ns : 0;
    hp_text_profile_init(p, &t, rate, m->from_ns, dur, &lim);
    hp_labels_reset(&tb->labels);
    client_labels(m, base, &tb->labels);
    hp_labels_set(&tb->labels, HP_STR(HP_LABEL_NAME), hp_str_c(t.metric));
    return 0;
}

/* Encodes p and accepts it as the batch's next profile. */
static int text_finish(dist_t *d, hp_str_t tenant, const ingest_meta_t *m, hp_text_profile_t *p, text_batch_t *tb,
                       hp_arena_t *a, hp_err_t *err)
{
    text_spend(tb, p);
    if (tb->n == TEXT_MAX_PROFILES)
        return hp_err_set(err, HP_EINVAL, "an upload may hold at most %d profiles", TEXT_MAX_PROFILES);
    hp_buf_t *pb = &tb->pprof[tb->n];
    hp_text_profile_encode(p, pb);
    dist_input_t in = {tenant, &tb->labels, NULL, m->from_ns, HP_STR(""), &tb->lim};
    int rc = dist_accept(d, &in, pb->data, pb->len, a, &tb->prof[tb->n], err);
    if (rc != 0)
        tb->reason = tb->prof[tb->n].reason;
    if (rc == 0 && tb->prof[tb->n].raw != NULL)
        tb->n++;
    else
        hp_labels_fini(&tb->prof[tb->n].labels);
    return rc;
}

/* Folded ("groups"), lines, tree and trie uploads: one profile. */
static int ingest_folded(dist_t *d, hp_str_t tenant, const ingest_meta_t *m, hp_str_t body, fmt_t f,
                         text_batch_t *tb, hp_arena_t *a, hp_err_t *err)
{
    hp_text_profile_t p;
    int rc = text_start(d, m, m->app, m->sample_rate, &p, tb, err);
    if (rc != 0)
        return rc;
    rc = f == FMT_TREE || f == FMT_TRIE ? hp_tree_parse(&p, body, f == FMT_TRIE, err)
                                        : hp_folded_parse(&p, body, f == FMT_LINES, err);
    if (rc == 0)
        rc = text_finish(d, tenant, m, &p, tb, a, err);
    hp_text_profile_fini(&p);
    return rc;
}

/* Refuses, before converting any of it, a file of more profiles than an
 * upload may hold, or whose profiles' units name no profile type: with
 * several profiles in a file each unit is its profile type, and "none"
 * names none. Pyroscope refuses such a file too ("unknown profile type:
 * none"; 400). */
static int check_speedscope(const hp_speedscope_t *s, hp_err_t *err)
{
    if (s->n > TEXT_MAX_PROFILES)
        return hp_err_set(err, HP_EINVAL,
                          "speedscope: %zu profiles after merging, an upload may hold at most %d", s->n,
                          TEXT_MAX_PROFILES);
    for (size_t k = 0; k < s->n && s->n > 1; k++) {
        if (strcmp(s->v[k].unit, "none") == 0) {
            hp_err_set(
                err, HP_EINVAL,
                "speedscope: profile '%.64s' has unit none: in a file of several profiles each profile's "
                "unit is its profile type (app.seconds, app.bytes, …) and none names no type, as in "
                "Pyroscope; send it in a file of its own",
                s->v[k].name);
            err->detail = HP_PPROF_EWIRE;
            return HP_EINVAL;
        }
    }
    return 0;
}

/* Speedscope uploads: a profile per (merged) speedscope profile, labelled
 * profile_name; with several, each unit is its profile type (app.seconds,
 * app.bytes, …), as Pyroscope does. */
static int ingest_speedscope(dist_t *d, hp_str_t tenant, const ingest_meta_t *m, hp_str_t body, text_batch_t *tb,
                             hp_arena_t *a, hp_err_t *err)
{
    hp_speedscope_t s;
    int rc = hp_speedscope_parse(body, &s, err);
    if (rc == 0)
        rc = check_speedscope(&s, err);
    for (size_t k = 0; k < s.n && rc == 0; k++) {
        hp_str_t app = m->app;
        if (s.n > 1) {
            char *name = hp_arena_alloc(a, m->app.n + strlen(s.v[k].unit) + 2);
            int len = sprintf(name, "%.*s.%s", (int)m->app.n, m->app.p, s.v[k].unit);
            app = (hp_str_t){name, (size_t)len};
        }
        int64_t rate = m->sample_rate == 100 ? hp_speedscope_sample_rate(s.v[k].unit) : m->sample_rate;
        hp_text_profile_t p;
        if ((rc = text_start(d, m, app, rate, &p, tb, err)) != 0)
            break;
        const char *pn = s.v[k].name; /* copied: the document goes before the forward */
        hp_labels_set(&tb->labels, HP_STR("profile_name"), (hp_str_t){hp_arena_strndup(a, pn, strlen(pn)), strlen(pn)});
        rc = hp_speedscope_add(&s, k, &p, err);
        if (rc == 0)
            rc = text_finish(d, tenant, m, &p, tb, a, err);
        hp_text_profile_fini(&p);
    }
    hp_speedscope_fini(&s);
    return rc;
}

/* The bytes the profiles add to the tenant's ingestion rate. */
static size_t total_bytes(const dist_profile_t *p, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i].bytes;
    return sum;
}

/* A text upload: converted, accepted and forwarded as one batch. */
static int ingest_text(dist_t *d, hp_str_t tenant, const hp_http_request_t *req, const ingest_meta_t *m, fmt_t f,
                       const hp_limits_config_t *lim, size_t *stored, const char **reason, hp_err_t *err)
{
    text_batch_t tb;
    memset(&tb, 0, sizeof(tb));
    hp_labels_init(&tb.labels);
    tb.lim = *lim;
    hp_buf_t scratch = HP_BUF_INIT;
    hp_str_t body;
    int rc = text_body(lim, req, &scratch, &body, err);
    text_budget(&tb, body.n);
    if (rc == 0)
        rc = f == FMT_SPEEDSCOPE ? ingest_speedscope(d, tenant, m, body, &tb, req->arena, err)
                                 : ingest_folded(d, tenant, m, body, f, &tb, req->arena, err);
    if (rc == HP_EINVAL && err->detail == HP_TEXT_ESAMPLES)
        tb.reason = "samples_limit"; /* as dist_accept counts it */
    if (rc == 0 && tb.n > 0 && (rc = dist_rate_take(d, tenant, lim, total_bytes(tb.prof, tb.n), err)) != 0)
        tb.reason = "rate_limited";
    if (rc == 0 && tb.n > 0)
        rc = dist_forward(d, tenant, lim, tb.prof, tb.n, err);
    *stored = rc == 0 ? tb.n : 0;
    *reason = tb.reason;
    text_batch_fini(&tb);
    hp_buf_fini(&scratch);
    return rc;
}

/* ---- JFR ---- */

/* The recording and its LabelsSnapshot: a multipart body's `jfr` and
 * `labels` parts, or the whole body; each gunzipped when it is gzip. */
static int jfr_inputs(const hp_http_request_t *req, size_t limit, hp_buf_t *jbuf, hp_buf_t *lbuf, hp_str_t *jfr,
                      hp_str_t *labels, hp_err_t *err)
{
    hp_str_t j = req->body, l = {NULL, 0};
    if (is_multipart(req)) {
        hp_multipart_part_t parts[MAX_PARTS];
        size_t n;
        int rc = multipart_parts(req, parts, &n, err);
        if (rc != 0)
            return rc;
        const hp_multipart_part_t *pj = hp_multipart_find(parts, n, "jfr"), *pl = hp_multipart_find(parts, n, "labels");
        if (pj == NULL)
            return hp_err_set(err, HP_EINVAL, "multipart body has no 'jfr' part");
        j = pj->data;
        if (pl)
            l = pl->data;
    }
    const uint8_t *d;
    size_t dn;
    int rc = hp_maybe_gunzip((const uint8_t *)j.p, j.n, limit, jbuf, &d, &dn, err);
    *jfr = (hp_str_t){(const char *)d, dn};
    if (rc == 0 && l.n) {
        rc = hp_maybe_gunzip((const uint8_t *)l.p, l.n, limit, lbuf, &d, &dn, err);
        *labels = (hp_str_t){(const char *)d, dn};
    }
    return rc;
}

/* A JFR upload: one profile per (kind, label set) of the recording, each
 * converted to pprof, accepted and forwarded together. */
static int ingest_jfr(dist_t *d, hp_str_t tenant, const hp_http_request_t *req, const ingest_meta_t *m,
                      const hp_limits_config_t *lim, size_t *stored, const char **reason, hp_err_t *err)
{
    hp_buf_t jbuf = HP_BUF_INIT, lbuf = HP_BUF_INIT;
    hp_str_t jfr = {NULL, 0}, lab = {NULL, 0};
    int64_t dlim = lim->ingestion_decompressed_body_limit_bytes;
    int rc = jfr_inputs(req, hp_limit_size(dlim), &jbuf, &lbuf, &jfr, &lab, err);
    if (rc == HP_EINVAL)
        err->detail = HP_PPROF_EWIRE; /* not a readable body: 400 */
    hp_labels_t base, ls;
    hp_labels_init(&base);
    hp_labels_init(&ls);
    client_labels(m, m->app, &base);
    hp_jfr_result_t res;
    memset(&res, 0, sizeof(res));
    hp_jfr_params_t params = {m->from_ns, m->until_ns > m->from_ns ? m->until_ns : m->from_ns,
                              m->sample_rate > 0 && m->sample_rate <= UINT32_MAX ? (uint32_t)m->sample_rate : 100,
                              &base, false};
    hp_jfr_limits_t jl = {0, lim->max_profile_stacktrace_depth > 0 ? (uint32_t)lim->max_profile_stacktrace_depth : 0};
    if (rc == 0)
        rc = hp_jfr_convert((const uint8_t *)jfr.p, jfr.n, (const uint8_t *)lab.p, lab.n, &params, &jl, &res, err);
    dist_profile_t *prof = hp_xcalloc(res.n + 1, sizeof(*prof));
    size_t n = 0;
    for (size_t i = 0; i < res.n && rc == 0; i++) {
        hp_labels_copy(&ls, &base);
        for (size_t k = 0; k < res.v[i].labels.n; k++)
            hp_labels_set(&ls, res.v[i].labels.v[k].name, res.v[i].labels.v[k].value);
        hp_labels_set(&ls, HP_STR(HP_LABEL_NAME), hp_str_c(res.v[i].metric));
        dist_input_t in = {tenant, &ls, NULL, m->from_ns, HP_STR(""), lim};
        rc = dist_accept(d, &in, res.v[i].pprof.data, res.v[i].pprof.len, req->arena, &prof[n], err);
        if (rc != 0)
            *reason = prof[n].reason;
        if (rc == 0 && prof[n].raw)
            n++;
        else
            hp_labels_fini(&prof[n].labels);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += prof[i].bytes;
    if (rc == 0 && n > 0 && (rc = dist_rate_take(d, tenant, lim, bytes, err)) != 0)
        *reason = "rate_limited";
    if (rc == 0 && n > 0)
        rc = dist_forward(d, tenant, lim, prof, n, err);
    *stored = rc == 0 ? n : 0;
    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&prof[i].labels);
    free(prof);
    hp_jfr_result_fini(&res);
    hp_labels_fini(&base);
    hp_labels_fini(&ls);
    hp_buf_fini(&jbuf);
    hp_buf_fini(&lbuf);
    return rc;
}

/* Pyroscope's /ingest statuses: 400 for what cannot be read (and a time
 * outside the ingestion window), 422 for what was read but is refused,
 * 413 for too large, 429 for limits. reason (NULL: from the error class)
 * is the discard reason counted. Tenant errors are answered apart
 * (tenant_error). */
static void ingest_error(dist_t *d, hp_str_t tenant, const hp_http_request_t *req, hp_err_t *err,
                         const char *reason, hp_http_response_t *resp)
{
    int status = hp_err_http_status(err->code);
    if (err->code == HP_EINVAL && err->detail != HP_PPROF_EWIRE && err->detail != DIST_EWINDOW)
        status = 422;
    if (reason == NULL)
        reason = err->code == HP_ETOOLARGE ? "profile_size_limit"
                 : err->code == HP_ELIMIT  ? "series_limit" /* from an ingester; the rate sets its own */
                 : err->code == HP_EUNAVAIL ? NULL
                                            : "malformed_profile";
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
    fmt_t f = rc == 0 ? body_format(req, &m) : FMT_PPROF;
    size_t stored = 0;
    const char *reason = NULL;
    hp_limits_config_t lim;
    hp_overrides_get(d->svc->overrides, tenant, &lim);
    /* the HTTP layer read at most the configuration's limit; a tenant's
     * own may be lower */
    if (rc == 0 && lim.ingestion_body_limit_bytes > 0 && req->body.n > (size_t)lim.ingestion_body_limit_bytes) {
        rc = hp_err_set(&err, HP_ETOOLARGE, "request body of %zu bytes exceeds ingestion_body_limit_bytes (%lld)",
                        req->body.n, (long long)lim.ingestion_body_limit_bytes);
        reason = "body_size_limit";
    }
    if (rc == 0 && f == FMT_UNKNOWN) {
        rc = hp_err_set(&err, HP_EINVAL,
                        "unknown format '%.*s': expected pprof, jfr, speedscope, lines, groups (folded), trie or tree",
                        (int)HP_MIN(m.format.n, 64), m.format.p);
        err.detail = HP_PPROF_EWIRE;
    } else if (rc == 0 && f == FMT_JFR) {
        rc = ingest_jfr(d, tenant, req, &m, &lim, &stored, &reason, &err);
    } else if (rc == 0 && f != FMT_PPROF && f != FMT_MULTIPART) {
        rc = ingest_text(d, tenant, req, &m, f, &lim, &stored, &reason, &err);
    } else if (rc == 0) {
        if ((rc = read_pprof_body(req, f, &body, &stc, &err)) != 0 && rc == HP_EINVAL)
            err.detail = HP_PPROF_EWIRE;
        if (rc == 0) {
            client_labels(&m, m.app, &labels);
            dist_input_t in = {tenant, &labels, stc.n ? &stc : NULL, m.from_ns, HP_STR(""), &lim};
            if ((rc = dist_accept(d, &in, (const uint8_t *)body.p, body.n, req->arena, &prof, &err)) != 0)
                reason = prof.reason;
        }
        if (rc == 0 && prof.raw != NULL && (rc = dist_rate_take(d, tenant, &lim, prof.bytes, &err)) != 0)
            reason = "rate_limited";
        if (rc == 0 && prof.raw != NULL)
            rc = dist_forward(d, tenant, &lim, &prof, 1, &err);
        stored = prof.raw ? 1 : 0;
    }
    if (rc != 0)
        ingest_error(d, tenant, req, &err, reason, resp);
    else
        dist_count_received(d, tenant, stored, req->body.n);
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
