/* The query engine's core: sources, deduplication sessions and the visit
 * of a selection. The querier's side of deduplication is in querier/. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hotpath/hashmap.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"

#define SESSION_TTL_MS 60000
#define SESSION_MAX 256
#define SESSION_MAX_BYTES ((size_t)512 << 20)

static int handle_estimate(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err);

void hp_qe_sources_add(hp_qe_sources_t *s, uint64_t id, hp_head_t *head, void *block)
{
    HP_GROW(s->v, s->cap, s->n + 1);
    s->v[s->n++] = (hp_qe_source_t){id, head, block};
}

/* Drops the references the provider took, and the list. */
static void sources_release(hp_qengine_t *qe, hp_qe_sources_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].head)
            hp_head_unref(s->v[i].head);
        else if (s->v[i].block)
            qe->p.release_block(qe->p.ctx, s->v[i].block);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Frees a block's transient head and gives the block back at once, so a
 * query over many blocks holds one at a time, not all of them. */
static void done_with_block(hp_qengine_t *qe, hp_qe_source_t *src, hp_head_t *h)
{
    hp_head_unref(h);
    qe->p.release_block(qe->p.ctx, src->block);
    src->block = NULL;
}

hp_qengine_t *hp_qengine_new(const hp_qe_provider_t *p)
{
    hp_qengine_t *qe = hp_xcalloc(1, sizeof(*qe));
    qe->p = *p;
    qe_sessions_init(&qe->sessions);
    return qe;
}

void hp_qengine_free(hp_qengine_t *qe)
{
    if (qe == NULL)
        return;
    qe_sessions_fini(&qe->sessions);
    free(qe);
}

void hp_qengine_register(hp_qengine_t *qe, hp_rpc_server_t *rpc)
{
    hp_rpc_server_handle(rpc, "query.SelectKeys", qe_handle_select_keys, qe);
    hp_rpc_server_handle(rpc, "query.Estimate", handle_estimate, qe);
    qe_register_labels(qe, rpc);
    qe_register_merges(qe, rpc);
    qe_register_timeline(qe, rpc);
    qe_register_list(qe, rpc);
}

/* ---- sessions ---- */

void qe_sessions_init(qe_sessions_t *ss)
{
    memset(ss, 0, sizeof(*ss));
    pthread_mutex_init(&ss->lock, NULL);
    if (getrandom(&ss->next, sizeof(ss->next), 0) != sizeof(ss->next))
        ss->next = (uint64_t)hp_now_ns();
    ss->next |= 1;
}

static void session_free(qe_session_t *x)
{
    free(x->tenant);
    free(x->refs);
    free(x);
}

void qe_sessions_fini(qe_sessions_t *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        session_free(ss->v[i]);
    free(ss->v);
    pthread_mutex_destroy(&ss->lock);
}

/* Drops expired sessions, then the oldest while over the count or byte
 * budget. Lock held. */
static void sessions_trim(qe_sessions_t *ss, size_t incoming_bytes)
{
    int64_t now = hp_mono_ms();
    size_t o = 0;
    for (size_t i = 0; i < ss->n; i++) {
        qe_session_t *x = ss->v[i];
        bool over = ss->n - i + o >= SESSION_MAX || ss->bytes + incoming_bytes > SESSION_MAX_BYTES;
        if (x->expires_ms <= now || over) { /* v is oldest first */
            ss->bytes -= x->n * sizeof(qe_ref_t);
            session_free(x);
        } else {
            ss->v[o++] = x;
        }
    }
    ss->n = o;
}

/* Stores x (taking it) and returns its new ID. */
static uint64_t sessions_add(qe_sessions_t *ss, qe_session_t *x)
{
    pthread_mutex_lock(&ss->lock);
    sessions_trim(ss, x->n * sizeof(qe_ref_t));
    x->id = ss->next++;
    if (x->id == 0)
        x->id = ss->next++;
    HP_GROW(ss->v, ss->cap, ss->n + 1);
    ss->v[ss->n++] = x;
    ss->bytes += x->n * sizeof(qe_ref_t);
    pthread_mutex_unlock(&ss->lock);
    return x->id;
}

typedef struct collect {
    qe_session_t *x;
    size_t cap;
    hp_buf_t *keys;
} collect_t;

static void collect_ref(void *ctx, const hp_head_t *h, uint32_t si, const hp_series_t *s,
                        const hp_series_profile_t *p)
{
    (void)si;
    collect_t *c = ctx;
    HP_GROW(c->x->refs, c->cap, c->x->n + 1);
    qe_ref_t *r = &c->x->refs[c->x->n++];
    r->source = h->id;
    r->fp = s->fp;
    r->t = p->t;
    memcpy(r->id, p->id, 16);
    hp_buf_reserve(c->keys, 16);
    hp_profile_key(s->fp, p->t, p->id, c->keys->data + c->keys->len);
    c->keys->len += 16;
}

int qe_handle_select_keys(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req, &q, err);
    if (rc == 0 && q.session != 0)
        rc = hp_err_set(err, HP_EINVAL, "SelectKeys takes no session");
    qe_session_t *x = hp_xcalloc(1, sizeof(*x));
    x->tenant = hp_xstrndup(call->tenant.p, call->tenant.n);
    x->expires_ms = hp_mono_ms() + SESSION_TTL_MS;
    hp_buf_t keys = HP_BUF_INIT;
    collect_t c = {x, 0, &keys};
    if (rc == 0)
        rc = qe_select(qe, call->tenant, &q, NULL, collect_ref, NULL, &c, err);
    if (rc == 0) {
        Hotpath__V1__SelectKeysResponse resp = HOTPATH__V1__SELECT_KEYS_RESPONSE__INIT;
        resp.session = sessions_add(&qe->sessions, x);
        resp.keys.data = keys.data;
        resp.keys.len = keys.len;
        qe_pack_into(&resp.base, out);
    } else {
        session_free(x);
    }
    hp_buf_fini(&keys);
    hp_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

/* ---- estimates ---- */

typedef struct estimate {
    const hp_select_t *q;
    uint64_t bytes, profiles, series, samples, sources;
} estimate_t;

/* Bytes a sample takes in a block's decompressed pages (stack ID and
 * value), for estimating a block series' samples from its bytes. */
#define PAGE_SAMPLE_BYTES (sizeof(uint32_t) + sizeof(int64_t))

/* The part of a block series' bytes (or profiles) the range [lo, hi]
 * covers, assuming its profiles are spread evenly over its time span:
 * pages are cut by size along time, so this is what reading the pages
 * that overlap the range costs, give or take a page. */
static uint64_t covered(const hp_series_t *s, int64_t lo, int64_t hi, uint64_t whole)
{
    if (s->max_t <= s->min_t)
        return whole;
    double a = (double)HP_MAX(lo, s->min_t), z = (double)HP_MIN(hi, s->max_t);
    double f = z > a ? (z - a) / ((double)s->max_t - (double)s->min_t) : 0;
    return (uint64_t)((double)whole * HP_MIN(f, 1.0) + 0.999);
}

/* Bytes the selection would read in h: a block's pages that overlap the
 * time range, a live head's samples in the time range. */
static void estimate_head(void *ctx, const hp_head_t *h)
{
    estimate_t *e = ctx;
    const uint32_t *cand;
    size_t nc;
    e->sources++;
    bool narrow = hp_head_candidates(h, e->q, &cand, &nc);
    for (size_t j = 0, n = narrow ? nc : h->n_series; j < n; j++) {
        const hp_series_t *s = h->series[narrow ? cand[j] : j];
        if (!hp_select_series(h, s, e->q))
            continue;
        e->series++;
        if (s->profiles == NULL) { /* a block's series, labels only */
            uint64_t bytes = covered(s, e->q->start_ns, e->q->end_ns, s->block_bytes);
            e->bytes += bytes;
            e->samples += bytes / PAGE_SAMPLE_BYTES;
            e->profiles += covered(s, e->q->start_ns, e->q->end_ns, s->block_profiles);
            continue;
        }
        size_t lo, hi;
        hp_series_profile_range(s, e->q->start_ns, e->q->end_ns, &lo, &hi);
        for (size_t p = lo; p < hi; p++) {
            e->bytes += s->profiles[p].n * PAGE_SAMPLE_BYTES;
            e->samples += s->profiles[p].n;
        }
        e->profiles += hi - lo;
    }
}

static int handle_estimate(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req, &q, err);
    estimate_t e = {&q, 0, 0, 0, 0, 0};
    if (rc == 0)
        rc = qe_for_each_head(qe, call->tenant, q.start_ns, q.end_ns, estimate_head, &e, err);
    if (rc == 0) {
        Hotpath__V1__EstimateResponse resp = HOTPATH__V1__ESTIMATE_RESPONSE__INIT;
        resp.bytes = e.bytes;
        resp.profiles = e.profiles;
        resp.series = e.series;
        resp.samples = e.samples;
        resp.sources = e.sources;
        qe_pack_into(&resp.base, out);
    }
    hp_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

/* ---- visiting a selection ---- */

/* The index of the profile (t, id) in s, or SIZE_MAX. */
static size_t find_profile(const hp_series_t *s, int64_t t, const uint8_t id[16])
{
    size_t lo, hi;
    hp_series_profile_range(s, t, t, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        if (memcmp(s->profiles[i].id, id, 16) == 0)
            return i;
    return SIZE_MAX;
}

/* The profile r names in h: its index, with its series' index in *si, or
 * SIZE_MAX. Series with colliding fingerprints sit at fp, fp+1, … in
 * by_fp; the profile's time and ID pick the right one. */
static size_t find_ref(const hp_head_t *h, const qe_ref_t *r, uint32_t *si)
{
    uint64_t idx;
    for (uint64_t key = r->fp; hp_u64map_get(&h->by_fp, key, &idx); key++) {
        const hp_series_t *s = h->series[idx];
        size_t k = s->fp == r->fp ? find_profile(s, r->t, r->id) : SIZE_MAX;
        if (k != SIZE_MAX) {
            *si = (uint32_t)idx;
            return k;
        }
    }
    return SIZE_MAX;
}

static int cmp_ref_source(const void *a, const void *b)
{
    const qe_ref_t *x = a, *y = b;
    return x->source < y->source ? -1 : x->source > y->source;
}

/* The kept refs of the selection's session (none without a session),
 * sorted by source, keeping the snapshot's order within one. */
static int session_refs(hp_qengine_t *qe, hp_str_t tenant, const hp_select_t *q, qe_ref_t **out, size_t *n,
                        hp_err_t *err)
{
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (q->session == 0)
        return 0;
    qe_sessions_t *ss = &qe->sessions;
    pthread_mutex_lock(&ss->lock);
    qe_session_t *x = NULL;
    for (size_t i = 0; i < ss->n && !x; i++)
        if (ss->v[i]->id == q->session && hp_str_eq_c(tenant, ss->v[i]->tenant))
            x = ss->v[i];
    if (x == NULL)
        rc = hp_err_set(err, HP_ESTALE, "deduplication session %llu has expired; query again",
                        (unsigned long long)q->session);
    else if (q->keep_len != (x->n + 7) / 8)
        rc = hp_err_set(err, HP_EINVAL, "keep mask has %zu bytes for %zu profiles", q->keep_len, x->n);
    if (rc == 0) {
        *out = hp_xmalloc((x->n + 1) * sizeof(qe_ref_t));
        for (size_t i = 0; i < x->n; i++)
            if (q->keep[i / 8] >> (i % 8) & 1)
                (*out)[(*n)++] = x->refs[i];
    }
    pthread_mutex_unlock(&ss->lock);
    for (size_t i = 1; i < *n; i++) { /* insertion sort: stable, and refs arrive grouped */
        qe_ref_t r = (*out)[i];
        size_t j = i;
        while (j > 0 && cmp_ref_source(&(*out)[j - 1], &r) > 0) {
            (*out)[j] = (*out)[j - 1];
            j--;
        }
        (*out)[j] = r;
    }
    return rc;
}

/* The part [*lo, *hi) of refs (sorted by source) that belongs to source id. */
static void refs_of_source(const qe_ref_t *refs, size_t n, uint64_t id, size_t *lo, size_t *hi)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (refs[mid].source < id)
            a = mid + 1;
        else
            b = mid;
    }
    *lo = a;
    while (a < n && refs[a].source == id)
        a++;
    *hi = a;
}

/* Visits each profile of h the selection covers: all of them, or — with a
 * session — the kept refs of h. Read lock held. */
static int visit(const hp_head_t *h, const hp_select_t *q, const qe_ref_t *refs, size_t n_refs,
                 qe_visit_fn fn, void *ctx, hp_err_t *err)
{
    if (q->session) {
        for (size_t i = 0; i < n_refs; i++) {
            uint32_t si;
            size_t k = find_ref(h, &refs[i], &si);
            if (k == SIZE_MAX)
                return hp_err_set(err, HP_EINTERNAL, "session %llu: a profile is gone",
                                  (unsigned long long)q->session);
            fn(ctx, h, si, h->series[si], &h->series[si]->profiles[k]);
        }
        return 0;
    }
    const uint32_t *cand;
    size_t nc;
    bool narrow = hp_head_candidates(h, q, &cand, &nc); /* the postings, when a matcher allows */
    for (size_t j = 0, n = narrow ? nc : h->n_series; j < n; j++) {
        size_t i = narrow ? cand[j] : j;
        const hp_series_t *s = h->series[i];
        if (!hp_select_series(h, s, q))
            continue;
        size_t lo, hi;
        hp_series_profile_range(s, q->start_ns, q->end_ns, &lo, &hi);
        for (size_t p = lo; p < hi; p++)
            if (q->profile_id == NULL || memcmp(s->profiles[p].id, q->profile_id, 16) == 0)
                fn(ctx, h, (uint32_t)i, s, &s->profiles[p]);
    }
    return 0;
}

/* One source of a selection. */
static int select_one(hp_head_t *h, const hp_select_t *q, const qe_ref_t *refs, size_t n_refs,
                      qe_step_fn begin, qe_visit_fn fn, qe_step_fn end, void *ctx, hp_err_t *err)
{
    pthread_rwlock_rdlock(&h->lock);
    if (begin)
        begin(ctx, h);
    int rc = visit(h, q, refs, n_refs, fn, ctx, err);
    if (rc == 0 && end)
        end(ctx, h);
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

int qe_select(hp_qengine_t *qe, hp_str_t tenant, const hp_select_t *q, qe_step_fn begin, qe_visit_fn fn,
              qe_step_fn end, void *ctx, hp_err_t *err)
{
    qe_ref_t *refs = NULL;
    size_t n_refs = 0, used = 0;
    int rc = session_refs(qe, tenant, q, &refs, &n_refs, err);
    hp_qe_sources_t src = {0};
    if (rc == 0)
        qe->p.sources(qe->p.ctx, tenant, q->start_ns, q->end_ns, &src);
    for (size_t i = 0; i < src.n && rc == 0; i++) {
        size_t lo = 0, hi = 0;
        refs_of_source(refs, n_refs, src.v[i].id, &lo, &hi);
        used += hi - lo;
        if (q->session && lo == hi)
            continue;
        hp_head_t *h = src.v[i].head;
        if (h == NULL && ((rc = qe->p.open_block(qe->p.ctx, src.v[i].block, q, &h, err)) != 0 || h == NULL))
            continue;
        rc = select_one(h, q, refs + lo, hi - lo, begin, fn, end, ctx, err);
        if (src.v[i].head == NULL)
            done_with_block(qe, &src.v[i], h);
    }
    sources_release(qe, &src);
    if (rc == 0 && used != n_refs)
        rc = hp_err_set(err, HP_ESTALE,
                        "profiles moved since the query began (a head was flushed); query again");
    free(refs);
    return rc;
}

int qe_for_each_head(hp_qengine_t *qe, hp_str_t tenant, int64_t start_ns, int64_t end_ns, qe_head_fn fn,
                     void *ctx, hp_err_t *err)
{
    hp_qe_sources_t src = {0};
    qe->p.sources(qe->p.ctx, tenant, start_ns, end_ns, &src);
    int rc = 0;
    for (size_t i = 0; i < src.n && rc == 0; i++) {
        hp_head_t *h = src.v[i].head;
        if (h == NULL &&
            ((rc = qe->p.open_block(qe->p.ctx, src.v[i].block, NULL, &h, err)) != 0 || h == NULL))
            continue;
        pthread_rwlock_rdlock(&h->lock);
        fn(ctx, h);
        pthread_rwlock_unlock(&h->lock);
        if (src.v[i].head == NULL)
            done_with_block(qe, &src.v[i], h);
    }
    sources_release(qe, &src);
    return rc;
}
