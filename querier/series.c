/* Merging time series from ingesters: same labels → one series, points
 * at the same time summed. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "querier.h"

void qry_series_set_fini(qry_series_set_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        hp_labels_fini(&set->v[i].labels);
        free(set->v[i].points);
    }
    free(set->v);
    hp_arena_fini(&set->arena);
    memset(set, 0, sizeof(*set));
}

/* The series with s's labels, added when new. index maps a label
 * fingerprint to its series; a hit is checked label by label, and a
 * fingerprint clash moves on to a derived key. */
static qry_series_t *find_or_add(qry_series_set_t *set, hp_u64map_t *index, const Hotpath__V1__SeriesData *s)
{
    hp_labels_t ls;
    hp_labels_init(&ls);
    for (size_t i = 0; i < s->n_labels; i++)
        hp_labels_add(&ls, hp_str_c(s->labels[i]->name), hp_str_c(s->labels[i]->value));
    hp_labels_sort(&ls);
    uint64_t key = hp_labels_fingerprint(&ls), at;
    while (hp_u64map_get(index, key, &at)) {
        if (hp_labels_equal(&set->v[at].labels, &ls)) {
            hp_labels_fini(&ls);
            return &set->v[at];
        }
        key = hp_mix64(key + 1);
    }
    hp_labels_clone(&ls, &set->arena);
    HP_GROW(set->v, set->cap, set->n + 1);
    hp_u64map_put(index, key, set->n);
    qry_series_t *x = &set->v[set->n++];
    memset(x, 0, sizeof(*x));
    x->labels = ls;
    return x;
}

/* Keeps the larger exemplar of two (the earlier on a tie). */
static void pick_exemplar(qry_point_t *into, const qry_point_t *p)
{
    if (p->ex && (!into->ex || p->ex_value > into->ex_value ||
                  (p->ex_value == into->ex_value && p->ex_t < into->ex_t))) {
        into->ex = p->ex, into->ex_len = p->ex_len;
        into->ex_t = p->ex_t, into->ex_value = p->ex_value;
    }
}

/* Adds a point, summing with an existing one at the same time. Points
 * arrive sorted per ingester, so a merge usually appends. */
static void add_point(qry_series_t *x, const qry_point_t *p)
{
    size_t i = x->n_points;
    while (i > 0 && x->points[i - 1].ts_ms > p->ts_ms)
        i--;
    if (i > 0 && x->points[i - 1].ts_ms == p->ts_ms) {
        x->points[i - 1].value += p->value;
        x->points[i - 1].count += p->count;
        pick_exemplar(&x->points[i - 1], p);
        return;
    }
    HP_GROW(x->points, x->cap_points, x->n_points + 1);
    memmove(x->points + i + 1, x->points + i, (x->n_points - i) * sizeof(qry_point_t));
    x->points[i] = *p;
    x->n_points++;
}

/* Point k of an ingester's series, its exemplar (if any) copied into the
 * set's arena. */
static void read_point(qry_series_set_t *set, const Hotpath__V1__SeriesData *sd, size_t k, qry_point_t *p)
{
    const Types__V1__Point *pt = sd->points[k];
    memset(p, 0, sizeof(*p));
    p->ts_ms = pt->timestamp;
    p->value = pt->value;
    p->count = k < sd->n_counts ? sd->counts[k] : 0;
    if (pt->n_exemplars == 0)
        return;
    const Types__V1__Exemplar *e = pt->exemplars[0]; /* one per point from each process */
    size_t n = types__v1__exemplar__get_packed_size(e);
    uint8_t *b = hp_arena_alloc(&set->arena, n + 1);
    types__v1__exemplar__pack(e, b);
    p->ex = b, p->ex_len = n;
    p->ex_t = e->timestamp, p->ex_value = e->value;
}

static int cmp_series(const void *a, const void *b)
{
    const qry_series_t *x = a, *y = b;
    for (size_t i = 0; i < x->labels.n && i < y->labels.n; i++) {
        int c = hp_str_cmp(x->labels.v[i].value, y->labels.v[i].value);
        if (c)
            return c;
    }
    return (x->labels.n > y->labels.n) - (x->labels.n < y->labels.n);
}

typedef struct series_req {
    char **group_by;
    size_t n_group_by;
    int64_t step_ms;
    unsigned flags;
} series_req_t;

/* The second-phase request of SelectSeries: a SelectSeriesRequest around
 * the SelectRequest. */
static void pack_series(void *ctx, const Hotpath__V1__SelectRequest *sel, hp_buf_t *out)
{
    const series_req_t *sr = ctx;
    Hotpath__V1__SelectSeriesRequest r = HOTPATH__V1__SELECT_SERIES_REQUEST__INIT;
    r.select = (Hotpath__V1__SelectRequest *)sel;
    r.group_by = sr->group_by;
    r.n_group_by = sr->n_group_by;
    r.step_ms = sr->step_ms;
    r.with_counts = (sr->flags & QRY_SERIES_COUNTS) != 0;
    r.with_exemplars = (sr->flags & QRY_SERIES_EXEMPLARS) != 0;
    hp_buf_reserve(out, hotpath__v1__select_series_request__get_packed_size(&r) + 1);
    out->len += hotpath__v1__select_series_request__pack(&r, out->data + out->len);
}

int qry_select_series(qry_t *q, hp_str_t tenant, const qry_select_t *s, char **group_by,
                      size_t n_group_by, int64_t step_ms, unsigned flags, qry_series_set_t *out, hp_err_t *err)
{
    memset(out, 0, sizeof(*out));
    hp_arena_init(&out->arena, 0);
    series_req_t sr = {group_by, n_group_by, step_ms, flags};
    hp_rpc_target_t *t = NULL;
    size_t n = 0;
    qry_select_t aligned = *s; /* split intervals keep the steps' grid */
    aligned.align_ms = step_ms;
    int rc = qry_select_fanout(q, "query.SelectSeries", tenant, &aligned, pack_series, &sr, &t, &n, err);
    hp_u64map_t index;
    hp_u64map_init(&index, 64);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Hotpath__V1__SelectSeriesResponse *resp =
            hotpath__v1__select_series_response__unpack(NULL, t[i].resp.len, t[i].resp.data);
        if (resp == NULL) {
            rc = hp_err_set(err, HP_EUNAVAIL, "SelectSeries: malformed reply from an ingester");
            break;
        }
        for (size_t k = 0; k < resp->n_series; k++) {
            qry_series_t *x = find_or_add(out, &index, resp->series[k]);
            for (size_t p = 0; p < resp->series[k]->n_points; p++) {
                qry_point_t pt;
                read_point(out, resp->series[k], p, &pt);
                add_point(x, &pt);
            }
        }
        hotpath__v1__select_series_response__free_unpacked(resp, NULL);
    }
    hp_u64map_fini(&index);
    qry_targets_free(t, n);
    hp_qsort(out->v, out->n, sizeof(qry_series_t), cmp_series);
    return rc;
}
