/* query.ListProfiles: the individual profiles a selection matches, the
 * newest first, at most a limit of them (a heap whose root is the last
 * kept keeps the first ones while visiting, so memory is bounded by the
 * limit). "First" is the querier's order — time descending, then series
 * fingerprint and profile ID ascending — so that where profiles share a
 * time at the cut, every process keeps the ones the querier would, and
 * pages (offset, limit) neither overlap nor skip. A profile
 * this process holds more than once (in a head and its flushed block, in
 * replica blocks not yet compacted) is listed once, so copies cannot push
 * other profiles out of the limit. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"

#define LIST_DEFAULT 100

typedef struct entry {
    int64_t t, total;
    uint64_t fp;  /* the series' fingerprint */
    uint64_t key; /* 64 bits of the profile's deduplication key */
    uint8_t id[16];
    hp_buf_t labels; /* the series' labels, encoded as ProfileEntry field 1 */
} entry_t;

typedef struct list_ctx {
    entry_t *heap; /* heap[0] is the last kept in list order */
    size_t n, limit;
    hp_u64map_t live; /* key → how many heap entries have it (0 once evicted) */
} list_ctx_t;

/* The profile's key: the first 64 bits of hp_profile_key, the same on
 * every copy of it. */
static uint64_t entry_key(const hp_series_t *s, const hp_series_profile_t *p)
{
    uint8_t k[16];
    uint64_t v;
    hp_profile_key(s->fp, p->t, p->id, k);
    memcpy(&v, k, 8);
    return v;
}

/* Adds d to key's count of heap entries. */
static void live_add(list_ctx_t *c, uint64_t key, int d)
{
    bool found;
    uint64_t *v = hp_u64map_upsert(&c->live, key, 0, &found);
    *v += (uint64_t)(int64_t)d;
}

/* Rebuilds the counts from the heap once evicted keys (count 0) pile up,
 * so the map stays O(limit). */
static void live_trim(list_ctx_t *c)
{
    if (c->live.n <= 4 * c->limit + 64)
        return;
    hp_u64map_clear(&c->live);
    for (size_t i = 0; i < c->n; i++)
        live_add(c, c->heap[i].key, 1);
}

/* True when a comes after b in the list: older, or as old with a larger
 * series fingerprint, or the same series with a larger ID. */
static bool entry_after(const entry_t *a, const entry_t *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->fp != b->fp)
        return a->fp > b->fp;
    return memcmp(a->id, b->id, 16) > 0;
}

static void sift_up(entry_t *h, size_t i)
{
    while (i > 0 && entry_after(&h[i], &h[(i - 1) / 2])) {
        entry_t x = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = x;
        i = (i - 1) / 2;
    }
}

static void sift_down(entry_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && entry_after(&h[l], &h[m]))
            m = l;
        if (r < n && entry_after(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        entry_t x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

/* Keeps the profile when it is among the newest `limit` so far. Read lock
 * held: the labels are encoded now. */
static void add_entry(void *ctx, const hp_head_t *h, uint32_t si, const hp_series_t *s, const hp_series_profile_t *p)
{
    list_ctx_t *c = ctx;
    if (c->n == c->limit) {
        entry_t x = {.t = p->t, .fp = s->fp};
        memcpy(x.id, p->id, 16);
        if (!entry_after(&c->heap[0], &x))
            return; /* not before the last kept */
    }
    uint64_t key = entry_key(s, p), have;
    if (hp_u64map_get(&c->live, key, &have) && have > 0)
        return; /* another copy of a profile already kept */
    entry_t *e;
    if (c->n < c->limit) {
        e = &c->heap[c->n++];
        memset(e, 0, sizeof(*e));
    } else {
        e = &c->heap[0]; /* replaces the last */
        hp_buf_reset(&e->labels);
        live_add(c, e->key, -1);
    }
    e->key = key;
    live_add(c, key, 1);
    live_trim(c);
    e->t = p->t;
    e->fp = s->fp;
    e->total = p->total;
    memcpy(e->id, p->id, 16);
    hp_labels_encode(&s->labels, 1, &e->labels);
    if (e == &c->heap[0] && c->n == c->limit)
        sift_down(c->heap, c->n, 0);
    else
        sift_up(c->heap, c->n - 1);
}

static int cmp_newest(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return entry_after(x, y) ? 1 : entry_after(y, x) ? -1 : 0;
}

static int handle_list_profiles(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectRequest *req = hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req, &q, err);
    list_ctx_t c = {NULL, 0, LIST_DEFAULT, {0}};
    if (req && req->limit > 0)
        c.limit = (size_t)HP_MIN(req->limit, HP_QE_LIST_MAX);
    c.heap = hp_xcalloc(c.limit + 1, sizeof(entry_t));
    hp_u64map_init(&c.live, 2 * c.limit);
    if (rc == 0)
        rc = qe_select(qe, call->tenant, &q, NULL, add_entry, NULL, &c, err);
    if (rc == 0 && c.n > 1)
        qsort(c.heap, c.n, sizeof(entry_t), cmp_newest);
    for (size_t i = 0; i < c.n; i++) {
        if (rc == 0) { /* ProfileList.profiles (1): ProfileEntry */
            size_t m = hp_pb_begin_len(out, 1);
            hp_buf_append(out, c.heap[i].labels.data, c.heap[i].labels.len);
            hp_pb_put_uint(out, 2, (uint64_t)c.heap[i].t);
            hp_pb_put_bytes(out, 3, c.heap[i].id, 16);
            if (c.heap[i].total != 0)
                hp_pb_put_uint(out, 4, (uint64_t)c.heap[i].total);
            hp_pb_end_len(out, m);
        }
        hp_buf_fini(&c.heap[i].labels);
    }
    free(c.heap);
    hp_u64map_fini(&c.live);
    hp_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

void qe_register_list(hp_qengine_t *qe, hp_rpc_server_t *rpc)
{
    hp_rpc_server_handle(rpc, "query.ListProfiles", handle_list_profiles, qe);
}
