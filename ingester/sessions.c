/* Replica deduplication, ingester side: ingester.SelectKeys snapshots the
 * profiles a selection matches and returns their keys; the querier picks
 * one replica per key and sends each ingester a keep mask with its Select*
 * call, which then merges only the profiles it was asked to (ing_visit). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "ingester.h"

#define SESSION_TTL_MS 60000
#define SESSION_MAX 256
#define SESSION_MAX_BYTES ((size_t)512 << 20)

void ing_profile_key(const ing_series_t *s, int64_t t, const uint8_t id[16], uint8_t key[16])
{
    uint8_t in[32];
    memcpy(in, &s->fp, 8);
    memcpy(in + 8, &t, 8);
    memcpy(in + 16, id, 16);
    XXH128_hash_t h = XXH3_128bits(in, sizeof(in));
    memcpy(key, &h.high64, 8);
    memcpy(key + 8, &h.low64, 8);
}

void ing_sessions_init(ing_sessions_t *ss)
{
    memset(ss, 0, sizeof(*ss));
    pthread_mutex_init(&ss->lock, NULL);
    if (getrandom(&ss->next, sizeof(ss->next), 0) != sizeof(ss->next))
        ss->next = (uint64_t)hp_now_ns();
    ss->next |= 1;
}

static void session_free(ing_session_t *x)
{
    free(x->tenant);
    free(x->refs);
    free(x);
}

void ing_sessions_fini(ing_sessions_t *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        session_free(ss->v[i]);
    free(ss->v);
    pthread_mutex_destroy(&ss->lock);
}

/* Drops expired sessions, then the oldest while over the count or byte
 * budget. Lock held. */
static void sessions_trim(ing_sessions_t *ss, size_t incoming_bytes)
{
    int64_t now = hp_mono_ms();
    size_t o = 0;
    for (size_t i = 0; i < ss->n; i++) {
        ing_session_t *x = ss->v[i];
        bool over = ss->n - i + o >= SESSION_MAX || ss->bytes + incoming_bytes > SESSION_MAX_BYTES;
        if (x->expires_ms <= now || over) { /* v is oldest first */
            ss->bytes -= x->n * sizeof(ing_ref_t);
            session_free(x);
        } else {
            ss->v[o++] = x;
        }
    }
    ss->n = o;
}

/* Stores x (taking it) and returns its new ID. */
static uint64_t sessions_add(ing_sessions_t *ss, ing_session_t *x)
{
    pthread_mutex_lock(&ss->lock);
    sessions_trim(ss, x->n * sizeof(ing_ref_t));
    x->id = ss->next++;
    if (x->id == 0)
        x->id = ss->next++;
    HP_GROW(ss->v, ss->cap, ss->n + 1);
    ss->v[ss->n++] = x;
    ss->bytes += x->n * sizeof(ing_ref_t);
    pthread_mutex_unlock(&ss->lock);
    return x->id;
}

typedef struct collect {
    ing_session_t *x;
    size_t cap;
    hp_buf_t *keys;
} collect_t;

static void collect_ref(void *ctx, const ing_head_t *h, uint32_t si, const ing_series_t *s, const ing_profile_t *p)
{
    collect_t *c = ctx;
    HP_GROW(c->x->refs, c->cap, c->x->n + 1);
    ing_ref_t *r = &c->x->refs[c->x->n++];
    r->head = h->id;
    r->fp = s->fp;
    r->t = p->t;
    memcpy(r->id, p->id, 16);
    hp_buf_reserve(c->keys, 16);
    ing_profile_key(s, p->t, p->id, c->keys->data + c->keys->len);
    c->keys->len += 16;
}

static int handle_select_keys(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    ing_select_t q;
    int rc = ing_parse_select(req, &q, err);
    if (rc == 0 && q.session != 0)
        rc = hp_err_set(err, HP_EINVAL, "SelectKeys takes no session");
    ing_session_t *x = hp_xcalloc(1, sizeof(*x));
    x->tenant = hp_xstrndup(call->tenant.p, call->tenant.n);
    x->expires_ms = hp_mono_ms() + SESSION_TTL_MS;
    hp_buf_t keys = HP_BUF_INIT;
    collect_t c = {x, 0, &keys};
    if (rc == 0)
        rc = ing_select_heads(g, call->tenant, &q, NULL, collect_ref, NULL, &c, err);
    if (rc == 0) {
        Hotpath__V1__SelectKeysResponse resp = HOTPATH__V1__SELECT_KEYS_RESPONSE__INIT;
        resp.session = sessions_add(&g->sessions, x);
        resp.keys.data = keys.data;
        resp.keys.len = keys.len;
        size_t n = hotpath__v1__select_keys_response__get_packed_size(&resp);
        hp_buf_reserve(out, n);
        out->len += hotpath__v1__select_keys_response__pack(&resp, out->data + out->len);
    } else {
        session_free(x);
    }
    hp_buf_fini(&keys);
    ing_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

void ing_register_sessions(ing_t *g)
{
    hp_rpc_server_handle(g->rpc, "ingester.SelectKeys", handle_select_keys, g);
}

/* ---- visiting a selection ---- */

/* The index of the profile (t, id) in s, or SIZE_MAX. */
static size_t find_profile(const ing_series_t *s, int64_t t, const uint8_t id[16])
{
    size_t lo, hi;
    ing_profile_range(s, t, t, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        if (memcmp(s->profiles[i].id, id, 16) == 0)
            return i;
    return SIZE_MAX;
}

/* The profile r names in h: its index, with its series' index in *si, or
 * SIZE_MAX. Series with colliding fingerprints sit at fp, fp+1, … in
 * by_fp; the profile's time and ID pick the right one. */
static size_t find_ref(const ing_head_t *h, const ing_ref_t *r, uint32_t *si)
{
    uint64_t idx;
    for (uint64_t key = r->fp; hp_u64map_get(&h->by_fp, key, &idx); key++) {
        const ing_series_t *s = h->series[idx];
        size_t k = s->fp == r->fp ? find_profile(s, r->t, r->id) : SIZE_MAX;
        if (k != SIZE_MAX) {
            *si = (uint32_t)idx;
            return k;
        }
    }
    return SIZE_MAX;
}

static int cmp_ref_head(const void *a, const void *b)
{
    const ing_ref_t *x = a, *y = b;
    return x->head < y->head ? -1 : x->head > y->head;
}

int ing_session_refs(ing_t *g, hp_str_t tenant, const ing_select_t *q, ing_ref_t **out, size_t *n,
                     hp_err_t *err)
{
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (q->session == 0)
        return 0;
    pthread_mutex_lock(&g->sessions.lock);
    ing_session_t *x = NULL;
    for (size_t i = 0; i < g->sessions.n && !x; i++)
        if (g->sessions.v[i]->id == q->session && hp_str_eq_c(tenant, g->sessions.v[i]->tenant))
            x = g->sessions.v[i];
    if (x == NULL)
        rc = hp_err_set(err, HP_EUNAVAIL, "deduplication session %llu has expired; query again",
                        (unsigned long long)q->session);
    else if (q->keep_len != (x->n + 7) / 8)
        rc = hp_err_set(err, HP_EINVAL, "keep mask has %zu bytes for %zu profiles", q->keep_len, x->n);
    if (rc == 0) {
        *out = hp_xmalloc((x->n + 1) * sizeof(ing_ref_t));
        for (size_t i = 0; i < x->n; i++)
            if (q->keep[i / 8] >> (i % 8) & 1)
                (*out)[(*n)++] = x->refs[i];
    }
    pthread_mutex_unlock(&g->sessions.lock);
    /* stable by head: within a head the snapshot order is kept */
    for (size_t i = 1; i < *n; i++) {
        ing_ref_t r = (*out)[i];
        size_t j = i;
        while (j > 0 && cmp_ref_head(&(*out)[j - 1], &r) > 0) {
            (*out)[j] = (*out)[j - 1];
            j--;
        }
        (*out)[j] = r;
    }
    return rc;
}

void ing_refs_of_head(const ing_ref_t *refs, size_t n, uint64_t head, size_t *lo, size_t *hi)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (refs[mid].head < head)
            a = mid + 1;
        else
            b = mid;
    }
    *lo = a;
    while (a < n && refs[a].head == head)
        a++;
    *hi = a;
}


int ing_visit(const ing_head_t *h, const ing_select_t *q, const ing_ref_t *refs, size_t n_refs, ing_visit_fn fn,
              void *ctx, hp_err_t *err)
{
    if (q->session) {
        for (size_t i = 0; i < n_refs; i++) {
            const ing_ref_t *r = &refs[i];
            uint32_t si;
            size_t k = find_ref(h, r, &si);
            if (k == SIZE_MAX)
                return hp_err_set(err, HP_EINTERNAL, "session %llu: a profile is gone", (unsigned long long)q->session);
            fn(ctx, h, si, h->series[si], &h->series[si]->profiles[k]);
        }
        return 0;
    }
    for (size_t i = 0; i < h->n_series; i++) {
        const ing_series_t *s = h->series[i];
        if (!ing_select_series(h, s, q))
            continue;
        size_t lo, hi;
        ing_profile_range(s, q->start_ns, q->end_ns, &lo, &hi);
        for (size_t p = lo; p < hi; p++)
            fn(ctx, h, (uint32_t)i, s, &s->profiles[p]);
    }
    return 0;
}

/* One source (a head, or a block's transient head) of a selection. */
static int select_one(ing_head_t *h, const ing_select_t *q, const ing_ref_t *refs, size_t n_refs,
                      ing_head_step_fn begin, ing_visit_fn visit, ing_head_step_fn end, void *ctx, hp_err_t *err)
{
    size_t lo = 0, hi = 0;
    ing_refs_of_head(refs, n_refs, h->id, &lo, &hi);
    if (q->session && lo == hi)
        return 0;
    pthread_rwlock_rdlock(&h->lock);
    if (begin)
        begin(ctx, h);
    int rc = ing_visit(h, q, refs + lo, hi - lo, visit, ctx, err);
    if (rc == 0 && end)
        end(ctx, h);
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

int ing_select_heads(ing_t *g, hp_str_t tenant, const ing_select_t *q, ing_head_step_fn begin, ing_visit_fn visit,
                     ing_head_step_fn end, void *ctx, hp_err_t *err)
{
    ing_ref_t *refs = NULL;
    size_t n_refs = 0, used = 0;
    int rc = ing_session_refs(g, tenant, q, &refs, &n_refs, err);
    ing_tenant_t *t = rc == 0 ? ing_tenant(g, tenant, false) : NULL;
    if (t) {
        ing_sources_t src;
        ing_sources_in_range(t, q->start_ns, q->end_ns, &src);
        for (size_t i = 0; i < src.n_heads && rc == 0; i++) {
            size_t lo, hi;
            ing_refs_of_head(refs, n_refs, src.heads[i]->id, &lo, &hi);
            used += hi - lo;
            rc = select_one(src.heads[i], q, refs, n_refs, begin, visit, end, ctx, err);
        }
        for (size_t i = 0; i < src.n_blocks && rc == 0; i++) {
            size_t lo, hi;
            ing_refs_of_head(refs, n_refs, src.blocks[i]->id, &lo, &hi);
            used += hi - lo;
            if (q->session && lo == hi)
                continue;
            ing_head_t *h = ing_block_source(g, src.blocks[i], q);
            if (h != NULL) {
                rc = select_one(h, q, refs, n_refs, begin, visit, end, ctx, err);
                ing_head_unref(h);
            }
        }
        ing_sources_release(&src);
    }
    if (rc == 0 && used != n_refs)
        rc = hp_err_set(err, HP_EUNAVAIL, "profiles moved since the query began (a head was flushed); query again");
    free(refs);
    return rc;
}
