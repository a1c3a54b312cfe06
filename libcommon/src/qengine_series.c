/* query.SelectSeries: profile totals over time, bucketed by step and
 * grouped by label values. With a call site, a profile's value is the sum
 * of its samples under it (the subtree's total, as Pyroscope's
 * CallSiteValues.Total). */
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "hotpath/callsite.h"
#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"

/* One point of a group: its sum, how many profiles it sums, and the
 * profile with the largest value (the exemplar, when asked for). */
typedef struct bucket {
    int64_t ts; /* ms */
    int64_t sum;
    uint64_t count;
    int64_t ex_t, ex_value; /* ns, the profile's total */
    uint8_t ex_id[16];
    hp_buf_t ex_labels; /* Exemplar.labels (field 5), encoded */
    bool has_ex;
} bucket_t;

typedef struct group {
    hp_labels_t labels; /* the group_by pairs present on the series */
    hp_u64map_t points; /* timestamp ms → index into buckets */
    bucket_t *buckets;
    size_t n, cap;
} group_t;

typedef struct grouping {
    group_t *v;
    size_t n, cap;
    hp_u64map_t by_fp; /* fingerprint of the group's labels → index (collisions probe fp+1…) */
} grouping_t;

/* The group of a series: the values of the group_by labels it has. */
static group_t *group_of(grouping_t *gs, const hp_series_t *s, char **by, size_t n_by)
{
    hp_labels_t key;
    hp_labels_init(&key);
    for (size_t i = 0; i < n_by; i++) {
        hp_str_t v = hp_labels_get(&s->labels, by[i]);
        if (v.p)
            hp_labels_add(&key, hp_str_c(by[i]), v);
    }
    hp_labels_sort(&key);
    uint64_t fp = hp_labels_fingerprint(&key), idx;
    while (hp_u64map_get(&gs->by_fp, fp, &idx)) {
        if (hp_labels_equal(&gs->v[idx].labels, &key)) {
            hp_labels_fini(&key);
            return &gs->v[idx];
        }
        fp++;
    }
    HP_GROW(gs->v, gs->cap, gs->n + 1);
    group_t *g = &gs->v[gs->n];
    memset(g, 0, sizeof(*g));
    hp_u64map_put(&gs->by_fp, fp, gs->n++);
    g->labels = key;
    hp_u64map_init(&g->points, 64);
    return g;
}

static int cmp_bucket(const void *a, const void *b)
{
    const bucket_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* types.v1.Exemplar as field 4 of a Point. */
static void encode_exemplar(hp_buf_t *b, const bucket_t *k)
{
    char id[40];
    size_t m = hp_pb_begin_len(b, 4);
    hp_pb_put_uint(b, 1, (uint64_t)(k->ex_t / 1000000));
    hp_uuid_format(k->ex_id, id);
    hp_pb_put_bytes(b, 2, id, strlen(id));
    hp_pb_put_uint(b, 4, (uint64_t)k->ex_value);
    hp_buf_append(b, k->ex_labels.data, k->ex_labels.len);
    hp_pb_end_len(b, m);
}

/* SeriesData as field 1 of SelectSeriesResponse; points sorted by time. */
static void encode_group(hp_buf_t *b, group_t *g, bool counts)
{
    size_t m = hp_pb_begin_len(b, 1);
    hp_labels_encode(&g->labels, 1, b);
    hp_qsort(g->buckets, g->n, sizeof(bucket_t), cmp_bucket);
    for (size_t i = 0; i < g->n; i++) {
        const bucket_t *k = &g->buckets[i];
        double d = (double)k->sum;
        size_t pm = hp_pb_begin_len(b, 2);
        hp_pb_put_tag(b, 1, 1);
        hp_buf_append(b, &d, 8); /* little-endian hosts only, as protobuf-c assumes too */
        hp_pb_put_uint(b, 2, (uint64_t)k->ts);
        if (k->has_ex)
            encode_exemplar(b, k);
        hp_pb_end_len(b, pm);
    }
    if (counts && g->n) {
        uint64_t *c = hp_xmalloc(g->n * sizeof(uint64_t));
        for (size_t i = 0; i < g->n; i++)
            c[i] = g->buckets[i].count;
        hp_pb_put_packed_u64(b, 3, c, g->n);
        free(c);
    }
    hp_pb_end_len(b, m);
}

static void group_fini(group_t *g)
{
    hp_labels_fini(&g->labels);
    hp_u64map_fini(&g->points);
    for (size_t i = 0; i < g->n; i++)
        hp_buf_fini(&g->buckets[i].ex_labels);
    free(g->buckets);
}

typedef struct series_ctx {
    grouping_t *gs;
    char **by;
    size_t n_by;
    int64_t start_ms, step;
    bool exemplars;
    hp_callsite_t cs;
    const hp_head_t *last_head; /* consecutive profiles usually share a series */
    uint32_t last_series;
    size_t last_group; /* an index: the groups array moves as it grows */
} series_ctx_t;

/* An exemplar's labels (Exemplar field 5): the series' own, except the
 * reserved __…__ ones and the group_by ones, which the series already
 * names. */
static void exemplar_labels(const hp_labels_t *ls, char **by, size_t n_by, hp_buf_t *out)
{
    for (size_t i = 0; i < ls->n; i++) {
        hp_str_t name = ls->v[i].name;
        bool skip = name.n >= 2 && name.p[0] == '_' && name.p[1] == '_';
        for (size_t k = 0; k < n_by && !skip; k++)
            skip = hp_str_eq_c(name, by[k]);
        if (skip)
            continue;
        size_t m = hp_pb_begin_len(out, 5);
        hp_pb_put_bytes(out, 1, name.p, name.n);
        hp_pb_put_bytes(out, 2, ls->v[i].value.p, ls->v[i].value.n);
        hp_pb_end_len(out, m);
    }
}

static void series_begin(void *ctx, const hp_head_t *h)
{
    series_ctx_t *c = ctx;
    hp_callsite_use(&c->cs, h->symdb);
}

/* A profile's value: its total, or with a call site the sum of its samples
 * under it. */
static int64_t profile_value(series_ctx_t *c, const hp_series_t *s, const hp_series_profile_t *p)
{
    if (c->cs.n == 0)
        return p->total;
    int64_t v = 0;
    for (uint32_t k = 0; k < p->n; k++)
        if (hp_callsite_match(&c->cs, s->stacks[p->off + k]))
            v = hp_add_wrap(v, s->values[p->off + k]);
    return v;
}

/* A profile counts in the first step at or after its time, as Pyroscope's
 * RangeSeries does. */
static void add_point(void *ctx, const hp_head_t *h, uint32_t si, const hp_series_t *s,
                      const hp_series_profile_t *p)
{
    series_ctx_t *c = ctx;
    int64_t value = profile_value(c, s, p);
    group_t *grp = c->last_head == h && c->last_series == si ? &c->gs->v[c->last_group]
                                                             : group_of(c->gs, s, c->by, c->n_by);
    c->last_head = h;
    c->last_series = si;
    c->last_group = (size_t)(grp - c->gs->v);
    int64_t off = p->t / 1000000 - c->start_ms; /* ≥ 0: the profile is in the range */
    int64_t steps = off / c->step + (off % c->step != 0);
    int64_t ts = c->start_ms + steps * c->step;
    bool found;
    uint64_t *ix = hp_u64map_upsert(&grp->points, (uint64_t)ts, grp->n, &found);
    if (!found) {
        HP_GROW(grp->buckets, grp->cap, grp->n + 1);
        memset(&grp->buckets[grp->n], 0, sizeof(bucket_t));
        grp->buckets[grp->n++].ts = ts;
    }
    bucket_t *k = &grp->buckets[*ix];
    k->sum = hp_add_wrap(k->sum, value);
    k->count++;
    bool candidate = c->exemplars && (c->cs.n == 0 || value != 0); /* nothing under the call site: no exemplar */
    if (candidate && (!k->has_ex || value > k->ex_value || (value == k->ex_value && p->t < k->ex_t))) {
        k->has_ex = true;
        k->ex_t = p->t;
        k->ex_value = value;
        memcpy(k->ex_id, p->id, 16);
        hp_buf_reset(&k->ex_labels); /* the series' labels now: the read lock is held */
        exemplar_labels(&s->labels, c->by, c->n_by, &k->ex_labels);
    }
}

static int handle_select_series(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectSeriesRequest *req =
        hotpath__v1__select_series_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req ? req->select : NULL, &q, err);
    grouping_t gs = {NULL, 0, 0, {0}};
    hp_u64map_init(&gs.by_fp, 16);
    series_ctx_t c = {&gs,
                      req ? req->group_by : NULL,
                      req ? req->n_group_by : 0,
                      req && req->select ? HP_MAX(req->select->start, 0) : 0,
                      req && req->step_ms > 0 ? req->step_ms : 15000,
                      req && req->with_exemplars,
                      {0},
                      NULL,
                      UINT32_MAX,
                      0};
    hp_callsite_init(&c.cs, q.call_site, q.n_call_site);
    if (rc == 0)
        rc = qe_select(qe, call->tenant, &q, series_begin, add_point, NULL, &c, err);
    hp_callsite_fini(&c.cs);
    for (size_t i = 0; i < gs.n; i++) {
        if (rc == 0)
            encode_group(out, &gs.v[i], req->with_counts);
        group_fini(&gs.v[i]);
    }
    free(gs.v);
    hp_u64map_fini(&gs.by_fp);
    hp_select_fini(&q);
    if (req)
        hotpath__v1__select_series_request__free_unpacked(req, NULL);
    return rc;
}

void qe_register_timeline(hp_qengine_t *qe, hp_rpc_server_t *rpc)
{
    hp_rpc_server_handle(rpc, "query.SelectSeries", handle_select_series, qe);
}
