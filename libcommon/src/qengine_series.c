/* query.SelectSeries: profile totals over time, bucketed by step and
 * grouped by label values. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"

typedef struct group {
    hp_labels_t labels; /* the group_by pairs present on the series */
    hp_u64map_t points; /* timestamp ms → sum (int64 bits) */
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
    hp_u64map_put(&gs->by_fp, fp, gs->n++);
    g->labels = key;
    hp_u64map_init(&g->points, 64);
    return g;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* types.v1.Series as field 1 of SelectSeriesResponse; points sorted. */
static void encode_group(hp_buf_t *b, const group_t *g)
{
    size_t m = hp_pb_begin_len(b, 1);
    hp_labels_encode(&g->labels, 1, b);
    uint64_t *ts = hp_xmalloc((g->points.n + 1) * sizeof(uint64_t)), k, v;
    size_t n = 0;
    for (size_t it = 0; hp_u64map_next(&g->points, &it, &k, &v);)
        ts[n++] = k;
    hp_qsort(ts, n, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        hp_u64map_get(&g->points, ts[i], &v);
        double d = (double)(int64_t)v;
        size_t pm = hp_pb_begin_len(b, 2);
        hp_pb_put_tag(b, 1, 1);
        hp_buf_append(b, &d, 8); /* little-endian hosts only, as protobuf-c assumes too */
        hp_pb_put_uint(b, 2, ts[i]);
        hp_pb_end_len(b, pm);
    }
    free(ts);
    hp_pb_end_len(b, m);
}

typedef struct series_ctx {
    grouping_t *gs;
    char **by;
    size_t n_by;
    int64_t start_ms, step;
    const hp_head_t *last_head; /* consecutive profiles usually share a series */
    uint32_t last_series;
    size_t last_group; /* an index: the groups array moves as it grows */
} series_ctx_t;

/* A profile counts in the first step at or after its time, as Pyroscope's
 * RangeSeries does. */
static void add_point(void *ctx, const hp_head_t *h, uint32_t si, const hp_series_t *s,
                      const hp_series_profile_t *p)
{
    series_ctx_t *c = ctx;
    group_t *grp = c->last_head == h && c->last_series == si ? &c->gs->v[c->last_group]
                                                             : group_of(c->gs, s, c->by, c->n_by);
    c->last_head = h;
    c->last_series = si;
    c->last_group = (size_t)(grp - c->gs->v);
    int64_t off = p->t / 1000000 - c->start_ms; /* ≥ 0: the profile is in the range */
    int64_t steps = off / c->step + (off % c->step != 0);
    uint64_t bucket = (uint64_t)(c->start_ms + steps * c->step);
    bool found;
    uint64_t *v = hp_u64map_upsert(&grp->points, bucket, 0, &found);
    *v = (uint64_t)hp_add_wrap((int64_t)*v, p->total);
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
                      NULL,
                      UINT32_MAX,
                      0};
    if (rc == 0)
        rc = qe_select(qe, call->tenant, &q, NULL, add_point, NULL, &c, err);
    for (size_t i = 0; i < gs.n; i++) {
        if (rc == 0)
            encode_group(out, &gs.v[i]);
        hp_labels_fini(&gs.v[i].labels);
        hp_u64map_fini(&gs.v[i].points);
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
