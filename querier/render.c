/* The legacy HTTP API the Pyroscope UI and scripts use:
 * GET /pyroscope/render (flamebearer JSON with a timeline, or the merged
 * profile as pprof or as a DOT call graph),
 * GET /pyroscope/label-values and GET /pyroscope/labels. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/attime.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "hotpath/compress.h"
#include "hotpath/dot.h"
#include "hotpath/hashmap.h"
#include "hotpath/head.h"
#include "hotpath/pprof.h"
#include "hotpath/qengine.h"
#include "querier.h"
#include "types/v1/types.pb-c.h"

/* Grafana's interval rounding, with Pyroscope's 15 s minimum. */
static int64_t point_interval_ms(int64_t from_ms, int64_t until_ms)
{
    static const int64_t steps[][2] = {
        {1500, 1000},
        {3500, 2000},
        {7500, 5000},
        {12500, 10000},
        {17500, 15000},
        {25000, 20000},
        {45000, 30000},
        {90000, 60000},
        {210000, 120000},
        {450000, 300000},
        {750000, 600000},
        {1050000, 900000},
        {1500000, 1200000},
        {2700000, 1800000},
        {5400000, 3600000},
        {9000000, 7200000},
        {16200000, 10800000},
        {32400000, 21600000},
        {86400000, 43200000},
        {604800000, 86400000},
        {1814400000, 604800000},
        {3628800000, 2592000000},
    };
    int64_t raw = (until_ms - from_ms) / 1500, step = 31536000000;
    for (size_t i = 0; i < HP_ARRAY_LEN(steps); i++) {
        if (raw < steps[i][0]) {
            step = steps[i][1];
            break;
        }
    }
    return step < 15000 ? 15000 : step;
}

/* Prefixes err's message with the parameter's name (through a copy:
 * formatting err->msg into itself would overlap). */
static int param_error(hp_err_t *err, const char *name)
{
    char why[sizeof(err->msg)];
    snprintf(why, sizeof(why), "%s", err->msg);
    return hp_err_set(err, HP_EINVAL, "%s: %s", name, why);
}

/* from/until as Pyroscope parses them, defaulting to the last hour. */
static int time_params(const hp_http_request_t *req, const char *from_name, const char *until_name,
                       int64_t *from_ms, int64_t *until_ms, hp_err_t *err)
{
    int64_t now = hp_now_ns(), f = now - 3600LL * 1000000000, u = now;
    hp_str_t v;
    if (hp_http_query(req, from_name, &v) && v.n && hp_attime_parse(v, now, &f, err) != 0)
        return param_error(err, from_name);
    if (hp_http_query(req, until_name, &v) && v.n && hp_attime_parse(v, now, &u, err) != 0)
        return param_error(err, until_name);
    if (f > u)
        return hp_err_set(err, HP_EINVAL, "%s is after %s", from_name, until_name);
    *from_ms = f / 1000000;
    *until_ms = u / 1000000;
    return 0;
}

static int64_t int_param(const hp_http_request_t *req, const char *name, int64_t dflt)
{
    hp_str_t v;
    if (!hp_http_query(req, name, &v) || v.n == 0 || v.n > 18)
        return dflt;
    int64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return dflt;
        x = x * 10 + (v.p[i] - '0');
    }
    return x;
}

/* Flamebearer metadata: units and sample rate as Pyroscope exports them. */
static void write_metadata_format(hp_buf_t *b, const hp_profile_type_t *pt, const char *format);

static void write_metadata(hp_buf_t *b, const hp_profile_type_t *pt)
{
    write_metadata_format(b, pt, "single");
}

/* Pyroscope's flamebearer metadata; format "single" or "double" (diff). */
static void write_metadata_format(hp_buf_t *b, const hp_profile_type_t *pt, const char *format)
{
    static const char *const object_types[] = {"inuse_objects", "alloc_objects", "goroutine", "samples"};
    const char *units = NULL;
    int64_t rate = 100;
    for (size_t i = 0; i < HP_ARRAY_LEN(object_types); i++)
        if (hp_str_eq_c(pt->sample_type, object_types[i]))
            units = "objects";
    if (hp_str_eq_c(pt->sample_type, "cpu")) {
        units = "samples";
        rate = 1000000000;
    }
    hp_buf_printf(b, "\"metadata\":{\"format\":\"%s\",\"spyName\":\"\",\"sampleRate\":", format);
    hp_buf_put_i64(b, rate);
    hp_buf_puts(b, ",\"units\":");
    if (units)
        hp_buf_put_json_str(b, units, strlen(units));
    else
        hp_buf_put_json_str(b, pt->sample_unit.p, pt->sample_unit.n);
    hp_buf_puts(b, ",\"name\":");
    hp_buf_put_json_str(b, pt->sample_type.p, pt->sample_type.n);
    hp_buf_putc(b, '}');
}

/* A timeline: one sample per step from start, zeros where no data. */
static void write_timeline(hp_buf_t *b, const qry_series_t *x, int64_t start_ms, int64_t until_ms,
                           int64_t step_ms)
{
    hp_buf_puts(b, "{\"startTime\":");
    hp_buf_put_i64(b, start_ms / 1000);
    hp_buf_puts(b, ",\"samples\":[");
    size_t p = 0;
    for (int64_t ts = start_ms, i = 0; ts <= until_ms; ts += step_ms, i++) {
        double v = 0;
        while (x && p < x->n_points && x->points[p].ts_ms < ts)
            p++;
        if (x && p < x->n_points && x->points[p].ts_ms == ts)
            v = x->points[p].value;
        if (i)
            hp_buf_putc(b, ',');
        hp_buf_put_i64(b, (int64_t)v);
    }
    hp_buf_puts(b, "],\"durationDelta\":");
    hp_buf_put_i64(b, step_ms / 1000);
    hp_buf_puts(b, ",\"watermarks\":null}");
}

typedef struct render_query {
    char *type_id;
    hp_profile_type_t pt;
    const char *selector; /* arena */
    int64_t from_ms, until_ms, step_ms;
    int64_t start_ms; /* from_ms aligned down to the step: the timeline's first point */
    int64_t max_nodes;
    hp_str_t group_by;
    bool pprof; /* format=pprof: the merged profile instead of flamebearer JSON */
    bool dot;   /* format=dot: the merged call graph as Graphviz DOT */
    int64_t dot_nodes;
} render_query_t;

static int parse_render(qry_t *q, hp_str_t tenant, const hp_http_request_t *req, render_query_t *r, hp_err_t *err)
{
    hp_str_t query, fmt; /* an absent parameter reads as "" */
    if (!hp_http_query(req, "query", &query) || query.n == 0)
        return hp_err_set(
            err, HP_EINVAL,
            "query is required, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"app\"}");
    if (hp_http_query(req, "format", &fmt) && fmt.n && !hp_str_eq_c(fmt, "json") &&
        !hp_str_eq_c(fmt, "pprof") && !hp_str_eq_c(fmt, "dot"))
        return hp_err_set(err, HP_EUNSUPPORTED, "format=%.*s is not supported yet: use json, pprof or dot",
                          (int)HP_MIN(fmt.n, 32), fmt.p);
    r->pprof = hp_str_eq_c(fmt, "pprof");
    r->dot = hp_str_eq_c(fmt, "dot");
    hp_selector_t sel;
    int rc = hp_selector_parse_query(query, &r->type_id, &sel, err);
    if (rc != 0)
        return rc;
    hp_selector_fini(&sel);
    if (hp_profile_type_parse(hp_str_c(r->type_id), &r->pt, err) != 0)
        return HP_EINVAL;
    const char *brace = memchr(query.p, '{', query.n);
    r->selector = brace ? hp_arena_strndup(req->arena, brace, query.n - (size_t)(brace - query.p)) : "{}";
    rc = time_params(req, "from", "until", &r->from_ms, &r->until_ms, err);
    if (rc != 0)
        return rc;
    r->step_ms = point_interval_ms(r->from_ms, r->until_ms);
    r->start_ms = r->from_ms / r->step_ms * r->step_ms;
    int64_t nodes = int_param(req, "maxNodes", int_param(req, "max-nodes", 0));
    r->max_nodes = qry_max_nodes(q, tenant, nodes);
    /* format=dot draws 100 nodes unless asked, as Pyroscope */
    r->dot_nodes = qry_max_nodes(q, tenant, nodes > 0 ? nodes : HP_DOT_MAX_NODES);
    if (!hp_http_query(req, "groupBy", &r->group_by))
        r->group_by = HP_STR("");
    return 0;
}

static void write_groups(hp_buf_t *b, const qry_series_set_t *set, const render_query_t *r)
{
    hp_buf_puts(b, "\"groups\":{");
    for (size_t i = 0; i < set->n; i++) {
        if (i)
            hp_buf_putc(b, ',');
        hp_str_t key = set->v[i].labels.n ? set->v[i].labels.v[0].value : HP_STR("*");
        hp_buf_put_json_str(b, key.p, key.n);
        hp_buf_putc(b, ':');
        write_timeline(b, &set->v[i], r->start_ms, r->until_ms, r->step_ms);
    }
    hp_buf_putc(b, '}');
}

/* ---- /pyroscope/render ---- */

/* One render's fan-outs and their results; each task writes its own
 * fields only. */
typedef struct render_work {
    qry_t *q;
    hp_str_t tenant;
    const render_query_t *r;
    qry_select_t tree_sel;   /* [from, until]: what the flame graph covers */
    qry_select_t series_sel; /* [start, until]: the timeline's steps */
    char *by;
    hp_tree_t *tree;
    qry_series_set_t total, groups;
    int rc[3];
    hp_err_t err[3];
} render_work_t;

static void task_tree(void *arg)
{
    render_work_t *w = arg;
    w->rc[0] = qry_merge_tree(w->q, w->tenant, &w->tree_sel, &w->tree, &w->err[0]);
}

static void task_total(void *arg)
{
    render_work_t *w = arg;
    w->rc[1] =
        qry_select_series(w->q, w->tenant, &w->series_sel, NULL, 0, w->r->step_ms, 0, &w->total, &w->err[1]);
}

static void task_groups(void *arg)
{
    render_work_t *w = arg;
    w->rc[2] =
        qry_select_series(w->q, w->tenant, &w->series_sel, &w->by, 1, w->r->step_ms, 0, &w->groups, &w->err[2]);
}

/* Runs the flame graph merge and the series selects at once; the first
 * failure (in that order) is the render's. */
static int render_fetch(render_work_t *w, hp_err_t *err)
{
    static const hp_pool_fn fns[] = {task_tree, task_total, task_groups};
    void *args[] = {w, w, w};
    for (size_t i = 0; i < 3; i++)
        hp_err_clear(&w->err[i]);
    hp_pool_run_all(w->q->svc->pool, fns, args, w->r->group_by.n ? 3 : 2);
    for (size_t i = 0; i < 3; i++) {
        if (w->rc[i] != 0) {
            *err = w->err[i];
            return w->rc[i];
        }
    }
    return 0;
}

static void write_render(const render_work_t *w, hp_buf_t *b)
{
    const render_query_t *r = w->r;
    hp_flamegraph_t fg;
    hp_flamegraph_build(w->tree, r->max_nodes, &fg);
    hp_buf_puts(b, "{\"version\":1,\"flamebearer\":");
    hp_flamegraph_write_flamebearer(&fg, b);
    hp_flamegraph_fini(&fg);
    hp_buf_putc(b, ',');
    write_metadata(b, &r->pt);
    hp_buf_puts(b, ",\"timeline\":");
    write_timeline(b, w->total.n ? &w->total.v[0] : NULL, r->start_ms, r->until_ms, r->step_ms);
    hp_buf_putc(b, ',');
    if (r->group_by.n)
        write_groups(b, &w->groups, r);
    else
        hp_buf_puts(b, "\"groups\":null");
    hp_buf_puts(b, ",\"heatmap\":null}");
}

/* format=pprof: the merged profile over [from, until], gzipped as
 * net/http/pprof serves it, so `go tool pprof <url>` opens it. */
static int render_pprof(qry_t *q, hp_str_t tenant, const render_query_t *r, hp_buf_t *b, hp_err_t *err)
{
    qry_select_t s = {r->type_id, r->selector, r->from_ms, r->until_ms, 0};
    int rc = qry_check_select(q, tenant, &s, err);
    hp_buf_t raw = HP_BUF_INIT;
    if (rc == 0)
        rc = qry_merge_pprof(q, tenant, &s, 0, &raw, err);
    if (rc == 0 && hp_gzip(raw.data, raw.len, 6, b) != 0)
        rc = hp_err_set(err, HP_EINTERNAL, "cannot gzip the merged profile");
    hp_buf_fini(&raw);
    return rc;
}

/* format=dot: the merged call graph over [from, until] as Graphviz DOT,
 * drawn as Pyroscope draws it with pprof's graph (dot.h). */
static int render_dot(qry_t *q, hp_str_t tenant, const render_query_t *r, hp_buf_t *b, hp_err_t *err)
{
    qry_select_t s = {r->type_id, r->selector, r->from_ms, r->until_ms, 0};
    hp_tree_t *tree = NULL;
    int rc = qry_check_select(q, tenant, &s, err);
    if (rc == 0)
        rc = qry_merge_tree(q, tenant, &s, &tree, err);
    if (rc == 0) {
        char *type = hp_xstrndup(r->pt.sample_type.p, r->pt.sample_type.n);
        char *unit = hp_xstrndup(r->pt.sample_unit.p, r->pt.sample_unit.n);
        hp_dot_options_t o = {r->dot_nodes, type, unit, r->from_ms * 1000000};
        hp_dot_write(tree, &o, b);
        free(type);
        free(unit);
    }
    hp_tree_free(tree);
    return rc;
}

static int render(qry_t *q, hp_str_t tenant, const render_query_t *r, hp_buf_t *b, hp_err_t *err)
{
    if (r->pprof)
        return render_pprof(q, tenant, r, b, err);
    if (r->dot)
        return render_dot(q, tenant, r, b, err);
    render_work_t w;
    memset(&w, 0, sizeof(w));
    w.q = q;
    w.tenant = tenant;
    w.r = r;
    w.tree_sel = (qry_select_t){r->type_id, r->selector, r->from_ms, r->until_ms, 0};
    w.series_sel = (qry_select_t){r->type_id, r->selector, r->start_ms, r->until_ms, 0};
    int rc = qry_check_select(q, tenant, &w.tree_sel, err);
    if (rc != 0)
        return rc;
    w.by = hp_xstrndup(r->group_by.p, r->group_by.n);
    rc = render_fetch(&w, err);
    if (rc == 0)
        write_render(&w, b);
    free(w.by);
    hp_tree_free(w.tree);
    qry_series_set_fini(&w.total);
    qry_series_set_fini(&w.groups);
    return rc;
}

static void handle_render(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    qry_t *q = ctx;
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant;
    render_query_t r;
    memset(&r, 0, sizeof(r));
    int rc = hp_tenant_from_request(q->cfg, req, &tenant, &err);
    if (rc == 0)
        rc = parse_render(q, tenant, req, &r, &err);
    if (rc == 0)
        rc = render(q, tenant, &r, &resp->body, &err);
    if (rc == 0) {
        /* for dot, what Go's net/http sniffs from the body Pyroscope writes */
        resp->content_type = r.pprof ? "application/octet-stream"
                             : r.dot ? "text/plain; charset=utf-8"
                                     : "application/json";
    } else {
        hp_buf_reset(&resp->body);
        hp_http_error_from(resp, &err);
    }
    free(r.type_id);
}

/* A JSON array of strings. */
static void write_names(hp_buf_t *b, char **names, size_t n)
{
    hp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            hp_buf_putc(b, ',');
        hp_buf_put_json_str(b, names[i], strlen(names[i]));
    }
    hp_buf_putc(b, ']');
}

/* Asks every ingester for names (label names, or the values of a label,
 * or profile type IDs when label is __name__) and answers a JSON array. */
static int legacy_names(qry_t *q, hp_str_t tenant, const char *label, int64_t from_ms, int64_t until_ms,
                        hp_buf_t *out, hp_err_t *err)
{
    hp_buf_t body = HP_BUF_INIT;
    const char *method;
    bool types = label && strcmp(label, "__name__") == 0;
    if (types) {
        Hotpath__V1__ProfileTypesRequest r = HOTPATH__V1__PROFILE_TYPES_REQUEST__INIT;
        r.start = from_ms, r.end = until_ms;
        hp_buf_reserve(&body, hotpath__v1__profile_types_request__get_packed_size(&r) + 1);
        body.len = hotpath__v1__profile_types_request__pack(&r, body.data);
        method = "query.ProfileTypes";
    } else if (label) {
        Types__V1__LabelValuesRequest r = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
        r.name = (char *)label, r.start = from_ms, r.end = until_ms;
        hp_buf_reserve(&body, types__v1__label_values_request__get_packed_size(&r) + 1);
        body.len = types__v1__label_values_request__pack(&r, body.data);
        method = "query.LabelValues";
    } else {
        Types__V1__LabelNamesRequest r = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
        r.start = from_ms, r.end = until_ms;
        hp_buf_reserve(&body, types__v1__label_names_request__get_packed_size(&r) + 1);
        body.len = types__v1__label_names_request__pack(&r, body.data);
        method = "query.LabelNames";
    }
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    int rc = qry_fanout(q, method, tenant, from_ms, body.data, body.len, &t, &n, err);
    hp_buf_fini(&body);
    char **all = NULL;
    size_t total = 0, cap = 0;
    void **parts = hp_xcalloc(n + 1, sizeof(void *));
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (types) {
            Hotpath__V1__ProfileTypesResponse *r =
                hotpath__v1__profile_types_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
            parts[i] = r;
            for (size_t k = 0; r && k < r->n_types; k++) {
                HP_GROW(all, cap, total + 1);
                all[total++] = r->types[k]->id;
            }
        } else {
            Types__V1__LabelNamesResponse *r =
                types__v1__label_names_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
            parts[i] = r;
            for (size_t k = 0; r && k < r->n_names; k++) {
                HP_GROW(all, cap, total + 1);
                all[total++] = r->names[k];
            }
        }
    }
    if (rc == 0) {
        write_names(out, all, hp_sort_unique_strs(all, total));
    }
    for (size_t i = 0; i < n; i++)
        if (parts[i])
            protobuf_c_message_free_unpacked(parts[i], NULL);
    free(parts);
    free(all);
    qry_targets_free(t, n);
    return rc;
}

static void handle_legacy_names(qry_t *q, const hp_http_request_t *req, hp_http_response_t *resp, bool values)
{
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant, label = HP_STR("");
    int64_t from_ms = 0, until_ms = 0;
    int rc = hp_tenant_from_request(q->cfg, req, &tenant, &err);
    if (rc == 0 && values && (!hp_http_query(req, "label", &label) || label.n == 0))
        rc = hp_err_set(&err, HP_EINVAL, "label is required");
    if (rc == 0)
        rc = time_params(req, "from", "until", &from_ms, &until_ms, &err);
    if (rc == 0)
        rc = qry_check_range(q, tenant, from_ms, until_ms, false, &err);
    char *name = values ? hp_arena_strndup(req->arena, label.p, label.n) : NULL;
    if (rc == 0)
        rc = legacy_names(q, tenant, name, from_ms, until_ms, &resp->body, &err);
    if (rc == 0) {
        resp->content_type = "application/json";
    } else {
        hp_buf_reset(&resp->body);
        hp_http_error_from(resp, &err);
    }
}

static void handle_label_values(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    handle_legacy_names(ctx, req, resp, true);
}

static void handle_labels(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    handle_legacy_names(ctx, req, resp, false);
}

/* ---- /pyroscope/render-diff ---- */

/* One side of a render-diff: its query (type and selector) and range. */
typedef struct diff_side {
    char *type_id;
    const char *selector; /* arena */
    int64_t from_ms, until_ms;
} diff_side_t;

static int parse_side(const hp_http_request_t *req, const char *side, diff_side_t *d, hp_err_t *err)
{
    char qn[32], fn[32], un[32];
    snprintf(qn, sizeof(qn), "%sQuery", side);
    snprintf(fn, sizeof(fn), "%sFrom", side);
    snprintf(un, sizeof(un), "%sUntil", side);
    hp_str_t query;
    if (!hp_http_query(req, qn, &query) || query.n == 0)
        return hp_err_set(err, HP_EINVAL, "%s is required, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{…}", qn);
    hp_selector_t sel;
    int rc = hp_selector_parse_query(query, &d->type_id, &sel, err);
    if (rc != 0)
        return rc;
    hp_selector_fini(&sel);
    const char *brace = memchr(query.p, '{', query.n);
    d->selector = brace ? hp_arena_strndup(req->arena, brace, query.n - (size_t)(brace - query.p)) : "{}";
    return time_params(req, fn, un, &d->from_ms, &d->until_ms, err);
}

/* GET /pyroscope/render-diff: the Diff of two queries of one profile type
 * as flamebearer JSON in the "double" format, with leftTicks/rightTicks. */
static int render_diff(qry_t *q, hp_str_t tenant, const hp_http_request_t *req, hp_buf_t *b, hp_err_t *err)
{
    diff_side_t l = {0}, r = {0};
    hp_tree_t *lt = NULL, *rt = NULL;
    int rc = parse_side(req, "left", &l, err);
    if (rc == 0)
        rc = parse_side(req, "right", &r, err);
    if (rc == 0 && strcmp(l.type_id, r.type_id) != 0)
        rc = hp_err_set(err, HP_EINVAL, "leftQuery and rightQuery must have the same profile type: %s vs %s",
                        l.type_id, r.type_id);
    qry_select_t ls = {l.type_id, l.selector, l.from_ms, l.until_ms, 0};
    qry_select_t rs = {r.type_id, r.selector, r.from_ms, r.until_ms, 0};
    if (rc == 0 && (rc = qry_check_select(q, tenant, &ls, err)) == 0 && (rc = qry_check_select(q, tenant, &rs, err)) == 0 &&
        (rc = qry_merge_tree(q, tenant, &ls, &lt, err)) == 0)
        rc = qry_merge_tree(q, tenant, &rs, &rt, err);
    hp_profile_type_t pt;
    if (rc == 0)
        rc = hp_profile_type_parse(hp_str_c(l.type_id), &pt, err);
    if (rc == 0) {
        hp_flamegraph_diff_t d;
        hp_flamegraph_diff_build(lt, rt, qry_max_nodes(q, tenant, int_param(req, "maxNodes", int_param(req, "max-nodes", 0))),
                                 &d);
        hp_buf_puts(b, "{\"version\":1,\"flamebearer\":");
        hp_flamegraph_diff_write_flamebearer(&d, b);
        hp_buf_putc(b, ',');
        write_metadata_format(b, &pt, "double");
        hp_buf_printf(b, ",\"leftTicks\":%lld,\"rightTicks\":%lld}", (long long)d.left_ticks,
                      (long long)d.right_ticks);
        hp_flamegraph_diff_fini(&d);
    }
    hp_tree_free(lt);
    hp_tree_free(rt);
    free(l.type_id);
    free(r.type_id);
    return rc;
}

/* Serves one of this file's GET endpoints: the tenant, then fn writing the
 * body (content type on success), or the error as text with its status. */
typedef int (*serve_fn)(qry_t *q, hp_str_t tenant, const hp_http_request_t *req, hp_buf_t *b, hp_err_t *err);

static void serve(qry_t *q, const hp_http_request_t *req, hp_http_response_t *resp, serve_fn fn,
                  const char *content_type)
{
    hp_err_t err;
    hp_err_clear(&err);
    hp_str_t tenant;
    int rc = hp_tenant_from_request(q->cfg, req, &tenant, &err);
    if (rc == 0)
        rc = fn(q, tenant, req, &resp->body, &err);
    if (rc == 0) {
        resp->content_type = content_type;
    } else {
        hp_buf_reset(&resp->body);
        hp_http_error_from(resp, &err);
    }
}

static void handle_render_diff(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    serve(ctx, req, resp, render_diff, "application/json");
}

/* ---- /api/v1/profiles and /api/v1/profile: single profiles ---- */

/* A query parameter "type{selector}" into its type and selector (arena). */
static int query_param(const hp_http_request_t *req, char **type_id, const char **selector, hp_err_t *err)
{
    hp_str_t query;
    if (!hp_http_query(req, "query", &query) || query.n == 0)
        return hp_err_set(err, HP_EINVAL,
                          "query is required, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"app\"}");
    hp_selector_t sel;
    int rc = hp_selector_parse_query(query, type_id, &sel, err);
    if (rc != 0)
        return rc;
    hp_selector_fini(&sel);
    const char *brace = memchr(query.p, '{', query.n);
    *selector = brace ? hp_arena_strndup(req->arena, brace, query.n - (size_t)(brace - query.p)) : "{}";
    return 0;
}

typedef struct listed {
    Hotpath__V1__ProfileEntry *e;
    uint64_t fp;
} listed_t;

/* Newest first; ties in a fixed order (series, then ID), so that pages
 * of the same list never overlap. */
static int cmp_listed(const void *a, const void *b)
{
    const listed_t *x = a, *y = b;
    if (x->e->time_nanos != y->e->time_nanos)
        return x->e->time_nanos < y->e->time_nanos ? 1 : -1;
    if (x->fp != y->fp)
        return x->fp < y->fp ? -1 : 1;
    size_t n = HP_MIN(x->e->id.len, y->e->id.len);
    int c = n ? memcmp(x->e->id.data, y->e->id.data, n) : 0;
    return c ? c : (x->e->id.len > y->e->id.len) - (x->e->id.len < y->e->id.len);
}


/* offset (default 0): a whole number, and offset + limit at most HP_QE_LIST_MAX. */
static int offset_param(const hp_http_request_t *req, int64_t limit, int64_t *offset, hp_err_t *err)
{
    hp_str_t v;
    *offset = 0;
    if (!hp_http_query(req, "offset", &v) || v.n == 0)
        return 0;
    if (v.p[0] == '-')
        return hp_err_set(err, HP_EINVAL, "offset must not be negative, got %.*s", (int)HP_MIN(v.n, 32), v.p);
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return hp_err_set(err, HP_EINVAL, "offset must be a number of profiles to skip, got \"%.*s\"",
                              (int)HP_MIN(v.n, 32), v.p);
        *offset = HP_MIN(*offset * 10 + (v.p[i] - '0'), (int64_t)HP_QE_LIST_MAX + 1); /* no overflow */
    }
    if (*offset + limit > HP_QE_LIST_MAX)
        return hp_err_set(err, HP_EINVAL,
                          "offset + limit must be at most %d (the newest %d can be listed), got %.*s + %lld",
                          HP_QE_LIST_MAX, HP_QE_LIST_MAX, (int)HP_MIN(v.n, 32), v.p, (long long)limit);
    return 0;
}

/* GET /api/v1/profiles?query=&from=&until=&limit=&offset=: the individual
 * profiles the selection matches, newest first, each once however many
 * replicas and blocks hold it; offset skips the newest ones (paging). Each
 * process lists its newest offset + limit, and the skip happens here,
 * after the merge and the de-duplication. */
static int list_profiles(qry_t *q, hp_str_t tenant, const hp_http_request_t *req, hp_buf_t *b, hp_err_t *err)
{
    char *type_id = NULL;
    const char *selector = NULL;
    int64_t from_ms = 0, until_ms = 0, offset = 0;
    int rc = query_param(req, &type_id, &selector, err);
    if (rc == 0)
        rc = time_params(req, "from", "until", &from_ms, &until_ms, err);
    int64_t limit = HP_MIN(HP_MAX(int_param(req, "limit", 100), 1), HP_QE_LIST_MAX);
    if (rc == 0)
        rc = offset_param(req, limit, &offset, err);
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    hp_buf_t body = HP_BUF_INIT;
    if (rc == 0) {
        qry_select_t s = {type_id, selector, from_ms, until_ms, 0, NULL};
        rc = qry_check_select(q, tenant, &s, err);
        if (rc == 0) /* listing decodes the same pages a merge would */
            rc = qry_check_bytes(q, tenant, &s, err);
        Hotpath__V1__SelectRequest sel;
        qry_select_request(&s, &sel);
        sel.limit = offset + limit;
        hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(&sel) + 1);
        body.len = hotpath__v1__select_request__pack(&sel, body.data);
    }
    if (rc == 0)
        rc = qry_fanout(q, "query.ListProfiles", tenant, from_ms, body.data, body.len, &t, &n, err);
    Hotpath__V1__ProfileList **lists = hp_xcalloc(n + 1, sizeof(*lists));
    listed_t *all = NULL;
    size_t na = 0, cap = 0;
    hp_u64map_t seen;
    hp_u64map_init(&seen, 256);
    for (size_t i = 0; i < n && rc == 0; i++) {
        lists[i] = hotpath__v1__profile_list__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (lists[i] == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "ListProfiles: malformed reply from %s", hp_rpc_client_url(t[i].client));
            break;
        }
        for (size_t k = 0; k < lists[i]->n_profiles; k++) {
            Hotpath__V1__ProfileEntry *e = lists[i]->profiles[k];
            hp_labels_t ls;
            hp_labels_init(&ls);
            for (size_t j = 0; j < e->n_labels; j++)
                hp_labels_add(&ls, hp_str_c(e->labels[j]->name), hp_str_c(e->labels[j]->value));
            uint64_t fp = hp_labels_fingerprint(&ls);
            hp_labels_fini(&ls);
            uint8_t key[16];
            hp_profile_key(fp, e->time_nanos, e->id.len == 16 ? e->id.data : (const uint8_t *)"0123456789abcdef", key);
            uint64_t k64;
            memcpy(&k64, key, 8);
            bool found;
            hp_u64map_upsert(&seen, k64, 1, &found); /* a replica's or a block's copy: once */
            if (found)
                continue;
            HP_GROW(all, cap, na + 1);
            all[na++] = (listed_t){e, fp};
        }
    }
    if (rc == 0) {
        if (na > 1)
            qsort(all, na, sizeof(*all), cmp_listed);
        hp_buf_puts(b, "{\"profiles\":[");
        for (size_t i = (size_t)offset; i < na && i < (size_t)(offset + limit); i++) {
            const Hotpath__V1__ProfileEntry *e = all[i].e;
            hp_buf_puts(b, i > (size_t)offset ? ",{\"labels\":{" : "{\"labels\":{");
            for (size_t j = 0; j < e->n_labels; j++) {
                if (j)
                    hp_buf_putc(b, ',');
                hp_buf_put_json_str(b, e->labels[j]->name, strlen(e->labels[j]->name));
                hp_buf_putc(b, ':');
                hp_buf_put_json_str(b, e->labels[j]->value, strlen(e->labels[j]->value));
            }
            hp_buf_printf(b, "},\"timestamp\":%lld,\"profileId\":\"", (long long)e->time_nanos);
            char uuid[40];
            if (e->id.len == 16)
                hp_buf_puts(b, hp_uuid_format(e->id.data, uuid));
            hp_buf_printf(b, "\",\"total\":%lld}", (long long)e->total);
        }
        hp_buf_puts(b, "]}");
    }
    hp_u64map_fini(&seen);
    free(all);
    for (size_t i = 0; i < n; i++)
        if (lists[i])
            hotpath__v1__profile_list__free_unpacked(lists[i], NULL);
    free(lists);
    qry_targets_free(t, n);
    hp_buf_fini(&body);
    free(type_id);
    return rc;
}

/* GET /api/v1/profile?query=&id=&timestamp=: one profile (every series of
 * that push the selection matches: its label groups) as gzipped pprof. */
static int get_profile(qry_t *q, hp_str_t tenant, const hp_http_request_t *req, hp_buf_t *b, hp_err_t *err)
{
    char *type_id = NULL;
    const char *selector = NULL;
    int rc = query_param(req, &type_id, &selector, err);
    hp_str_t v;
    uint8_t id[16];
    if (rc == 0 && (!hp_http_query(req, "id", &v) || !hp_uuid_parse(v, id)))
        rc = hp_err_set(err, HP_EINVAL, "id must be a profile ID as /api/v1/profiles lists it (a UUID)");
    int64_t ts = 0;
    if (rc == 0 && (!hp_http_query(req, "timestamp", &v) || hp_attime_parse(v, hp_now_ns(), &ts, err) != 0))
        rc = hp_err_set(err, HP_EINVAL, "timestamp must be the profile's time as /api/v1/profiles lists it (ns)");
    hp_buf_t raw = HP_BUF_INIT;
    if (rc == 0) {
        qry_select_t s = {type_id, selector, ts / 1000000, ts / 1000000, 0, id};
        if ((rc = qry_check_select(q, tenant, &s, err)) == 0)
            rc = qry_merge_pprof(q, tenant, &s, 0, &raw, err);
    }
    if (rc == 0) { /* nothing matched: the merge is a profile without samples */
        hp_pprof_t p;
        memset(&p, 0, sizeof(p));
        hp_err_t why;
        bool empty = hp_pprof_decode(&p, raw.data, raw.len, NULL, &why) != 0 || p.n_samples == 0;
        hp_pprof_fini(&p);
        if (empty)
            rc = hp_err_set(err, HP_ENOTFOUND, "no profile with that ID at that time matches the query");
    }
    if (rc == 0 && hp_gzip(raw.data, raw.len, 6, b) != 0)
        rc = hp_err_set(err, HP_EINTERNAL, "cannot gzip the profile");
    hp_buf_fini(&raw);
    free(type_id);
    return rc;
}

static void handle_list_profiles(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    serve(ctx, req, resp, list_profiles, "application/json");
}

static void handle_get_profile(void *ctx, const hp_http_request_t *req, hp_http_response_t *resp)
{
    serve(ctx, req, resp, get_profile, "application/octet-stream");
}

void qry_register_render(qry_t *q)
{
    hp_http_route(q->svc->http, "GET", "/pyroscope/render", handle_render, q);
    hp_http_route(q->svc->http, "GET", "/pyroscope/render-diff", handle_render_diff, q);
    hp_http_route(q->svc->http, "GET", "/api/v1/profiles", handle_list_profiles, q);
    hp_http_route(q->svc->http, "GET", "/api/v1/profile", handle_get_profile, q);
    hp_http_route(q->svc->http, "GET", "/pyroscope/label-values", handle_label_values, q);
    hp_http_route(q->svc->http, "GET", "/pyroscope/labels", handle_labels, q);
}
