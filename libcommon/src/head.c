/* Heads: profiles in memory, written by an ingester or read from a block,
 * and the selections queries make over them. */
#include "hotpath/head.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/callsite.h"
#include "hotpath/profile.h"

/* A head without a symdb yet. */
static hp_head_t *head_alloc(uint64_t id, const char *tenant, int64_t start_ns, int64_t end_ns,
                             size_t arena_chunk)
{
    hp_head_t *h = hp_xcalloc(1, sizeof(*h));
    h->id = id;
    h->tenant = hp_xstrdup(tenant);
    h->start_ns = start_ns;
    h->end_ns = end_ns;
    /* writers first: a stream of dashboard queries must not keep pushes
     * waiting past the push timeout (glibc prefers readers by default) */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&h->wmu, NULL);
    pthread_cond_init(&h->wcv, NULL);
    hp_arena_init(&h->arena, arena_chunk);
    hp_u64map_init(&h->by_fp, 64);
    atomic_store(&h->refs, 1);
    atomic_store(&h->last_write_ms, hp_mono_ms());
    return h;
}

hp_head_t *hp_head_new(uint64_t id, const char *tenant, int64_t start_ns, int64_t end_ns, hp_symdb_t *symdb)
{
    hp_head_t *h = head_alloc(id, tenant, start_ns, end_ns, symdb ? 64 * 1024 : 256 * 1024);
    h->symdb = symdb ? symdb : hp_symdb_new();
    h->symdb_borrowed = symdb != NULL;
    h->has_postings = true;
    hp_u64map_init(&h->postings_ix, 64);
    return h;
}

/* ---- postings ---- */

static uint64_t label_hash(hp_str_t name, hp_str_t value)
{
    return XXH3_64bits_withSeed(value.p, value.n, XXH3_64bits(name.p, name.n));
}

/* Adds series i to the lists of its labels (write lock held). */
static void postings_add(hp_head_t *h, const hp_series_t *s, uint32_t i)
{
    size_t bytes = 0;
    for (size_t k = 0; k < s->labels.n; k++) {
        uint64_t key = label_hash(s->labels.v[k].name, s->labels.v[k].value);
        bool found;
        uint64_t *ix = hp_u64map_upsert(&h->postings_ix, key, h->n_postings, &found);
        if (!found) {
            HP_GROW(h->postings, h->cap_postings, h->n_postings + 1);
            memset(&h->postings[h->n_postings++], 0, sizeof(*h->postings));
            bytes += sizeof(*h->postings) + 16;
        }
        struct hp_head_posting *pl = &h->postings[*ix];
        if (pl->n && pl->v[pl->n - 1] == i) /* two labels of one series share a hash */
            continue;
        HP_GROW(pl->v, pl->cap, pl->n + 1);
        pl->v[pl->n++] = i;
        bytes += sizeof(uint32_t);
    }
    atomic_fetch_add(&h->bytes, bytes);
}

static void postings_free(hp_head_t *h)
{
    for (size_t i = 0; i < h->n_postings; i++)
        free(h->postings[i].v);
    free(h->postings);
    if (h->has_postings)
        hp_u64map_fini(&h->postings_ix);
}

/* The list of one label, or NULL when no series has it. */
static const struct hp_head_posting *postings_get(const hp_head_t *h, hp_str_t name, hp_str_t value)
{
    uint64_t ix;
    if (!hp_u64map_get(&h->postings_ix, label_hash(name, value), &ix))
        return NULL;
    return &h->postings[ix];
}

bool hp_head_candidates(const hp_head_t *h, const hp_select_t *q, const uint32_t **idx, size_t *n)
{
    if (!h->has_postings)
        return false;
    static const uint32_t none[1] = {0};
    bool narrowed = false;
    *idx = NULL;
    *n = 0;
    /* the profile type, then every `name="value"` with a value: an
     * equality with "" also matches series without the label */
    for (size_t k = 0; k <= q->sel.n; k++) {
        hp_str_t name, value;
        if (k == q->sel.n) {
            if (q->type_id == NULL)
                break;
            name = HP_STR(HP_LABEL_PROFILE_TYPE), value = hp_str_c(q->type_id);
        } else {
            const hp_matcher_t *m = &q->sel.m[k];
            if (m->op != HP_MATCH_EQ || m->value[0] == '\0')
                continue;
            name = hp_str_c(m->name), value = hp_str_c(m->value);
        }
        const struct hp_head_posting *pl = postings_get(h, name, value);
        if (pl == NULL) { /* no series has it: nothing can match */
            *idx = none;
            *n = 0;
            return true;
        }
        if (!narrowed || pl->n < *n) {
            *idx = pl->v;
            *n = pl->n;
            narrowed = true;
        }
    }
    return narrowed;
}

static void series_free(hp_series_t *s)
{
    hp_labels_fini(&s->labels);
    free(s->profiles);
    free(s->stacks);
    free(s->values);
    free(s->spans);
    free(s);
}

static void head_free(hp_head_t *h)
{
    for (size_t i = 0; i < h->n_series; i++)
        series_free(h->series[i]);
    free(h->series);
    for (size_t i = 0; i < h->n_types; i++)
        free(h->types[i]);
    free(h->types);
    postings_free(h);
    hp_u64map_fini(&h->by_fp);
    if (!h->symdb_borrowed)
        hp_symdb_free(h->symdb);
    hp_arena_fini(&h->arena);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->wmu);
    pthread_cond_destroy(&h->wcv);
    free(h->tenant);
    free(h);
}

void hp_head_ref(hp_head_t *h)
{
    atomic_fetch_add(&h->refs, 1);
}

void hp_head_unref(hp_head_t *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1)
        head_free(h);
}

uint32_t hp_head_type_index(hp_head_t *h, hp_str_t type_id)
{
    for (size_t i = 0; i < h->n_types; i++)
        if (hp_str_eq_c(type_id, h->types[i]))
            return (uint32_t)i;
    HP_GROW(h->types, h->cap_types, h->n_types + 1);
    h->types[h->n_types] = hp_xstrndup(type_id.p, type_id.n);
    return (uint32_t)h->n_types++;
}

const hp_series_t *hp_head_find_series(const hp_head_t *h, const hp_labels_t *labels, uint64_t fp)
{
    uint64_t key = fp, idx;
    while (hp_u64map_get(&h->by_fp, key, &idx)) {
        if (hp_labels_equal(&h->series[idx]->labels, labels))
            return h->series[idx];
        key++;
    }
    return NULL;
}

hp_series_t *hp_head_series(hp_head_t *h, const hp_labels_t *labels, uint64_t fp, bool *created)
{
    uint64_t key = fp, idx;
    *created = false;
    while (hp_u64map_get(&h->by_fp, key, &idx)) {
        if (hp_labels_equal(&h->series[idx]->labels, labels))
            return h->series[idx];
        key++;
    }
    hp_series_t *s = hp_xcalloc(1, sizeof(*s));
    hp_labels_copy(&s->labels, labels);
    hp_labels_clone(&s->labels, &h->arena);
    s->fp = fp;
    s->type = hp_head_type_index(h, hp_labels_get(labels, HP_LABEL_PROFILE_TYPE));
    s->min_t = INT64_MAX;
    s->max_t = INT64_MIN;
    HP_GROW(h->series, h->cap_series, h->n_series + 1);
    h->series[h->n_series] = s;
    if (h->has_postings)
        postings_add(h, s, (uint32_t)h->n_series);
    hp_u64map_put(&h->by_fp, key, h->n_series++);
    *created = true;
    return s;
}

/* Where profile (t, id) goes in s's profiles, which are sorted by time
 * and, within one time, by ID: the first that is not before it. A retried
 * write finds itself there, in O(log n) however many profiles share the
 * time (the common case, a newer time, costs one comparison). */
static size_t profile_pos(const hp_series_t *s, int64_t t, const uint8_t id[16])
{
    size_t lo = 0, hi = s->n_profiles;
    if (hi == 0 || s->profiles[hi - 1].t < t)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const hp_series_profile_t *m = &s->profiles[mid];
        if (m->t < t || (m->t == t && memcmp(m->id, id, 16) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool any_span(const uint64_t *spans, size_t n)
{
    for (size_t i = 0; spans && i < n; i++)
        if (spans[i] != 0)
            return true;
    return false;
}

/* Room for n more samples in s. The span column grows with the others once
 * s has one, and is created (zeros for the samples before) when with_spans
 * brings the first span. Returns the bytes a new span column took. */
static size_t grow_samples(hp_series_t *s, size_t n, bool with_spans)
{
    size_t old_cap = s->cap_samples;
    HP_GROW(s->stacks, s->cap_samples, s->n_samples + n);
    if (s->cap_samples != old_cap) {
        s->values = hp_xrealloc(s->values, s->cap_samples * sizeof(int64_t));
        if (s->spans)
            s->spans = hp_xrealloc(s->spans, s->cap_samples * sizeof(uint64_t));
    }
    if (!with_spans || s->spans)
        return 0;
    s->spans = hp_xcalloc(s->cap_samples, sizeof(uint64_t));
    return s->n_samples * sizeof(uint64_t);
}

/* Copies n samples to the end of s's arrays (room made). */
static void put_samples(hp_series_t *s, const uint32_t *stacks, const int64_t *values, const uint64_t *spans,
                        size_t n, bool with_spans)
{
    if (n == 0)
        return;
    memcpy(s->stacks + s->n_samples, stacks, n * sizeof(uint32_t));
    memcpy(s->values + s->n_samples, values, n * sizeof(int64_t));
    if (with_spans)
        memcpy(s->spans + s->n_samples, spans, n * sizeof(uint64_t));
    else if (s->spans)
        memset(s->spans + s->n_samples, 0, n * sizeof(uint64_t));
}

bool hp_head_append(hp_head_t *h, hp_series_t *s, int64_t time_ns, const uint8_t id[16],
                    const uint32_t *stacks, const int64_t *values, const uint64_t *spans, size_t n)
{
    size_t at = profile_pos(s, time_ns, id);
    if (at < s->n_profiles && s->profiles[at].t == time_ns && memcmp(s->profiles[at].id, id, 16) == 0)
        return false; /* already stored: a retried write */
    bool with_spans = any_span(spans, n);
    size_t bytes = grow_samples(s, n, with_spans);
    put_samples(s, stacks, values, spans, n, with_spans);
    hp_series_profile_t p = {time_ns, {0}, (uint32_t)s->n_samples, (uint32_t)n, 0};
    memcpy(p.id, id, 16);
    for (size_t i = 0; i < n; i++)
        p.total = hp_add_wrap(p.total, values[i]);
    s->n_samples += n;
    HP_GROW(s->profiles, s->cap_profiles, s->n_profiles + 1);
    memmove(s->profiles + at + 1, s->profiles + at, (s->n_profiles - at) * sizeof(hp_series_profile_t));
    s->profiles[at] = p;
    s->n_profiles++;
    s->min_t = HP_MIN(s->min_t, time_ns);
    s->max_t = HP_MAX(s->max_t, time_ns);
    h->n_profiles++;
    h->n_samples += n;
    bytes += n * (sizeof(uint32_t) + sizeof(int64_t) + (s->spans ? sizeof(uint64_t) : 0));
    atomic_fetch_add(&h->bytes, bytes + sizeof(hp_series_profile_t));
    return true;
}

void hp_series_profile_range(const hp_series_t *s, int64_t start_ns, int64_t end_ns, size_t *lo, size_t *hi)
{
    size_t a = 0, b = s->n_profiles;
    while (a < b) { /* first with t >= start */
        size_t mid = a + (b - a) / 2;
        if (s->profiles[mid].t < start_ns)
            a = mid + 1;
        else
            b = mid;
    }
    *lo = a;
    b = s->n_profiles;
    while (a < b) { /* first with t > end */
        size_t mid = a + (b - a) / 2;
        if (s->profiles[mid].t <= end_ns)
            a = mid + 1;
        else
            b = mid;
    }
    *hi = a;
}

void hp_profile_key(uint64_t series_fp, int64_t t, const uint8_t id[16], uint8_t key[16])
{
    uint8_t in[32];
    memcpy(in, &series_fp, 8);
    memcpy(in + 8, &t, 8);
    memcpy(in + 16, id, 16);
    XXH128_hash_t h = XXH3_128bits(in, sizeof(in));
    memcpy(key, &h.high64, 8);
    memcpy(key + 8, &h.low64, 8);
}

/* ---- selections ---- */

void hp_select_time_range(int64_t start_ms, int64_t end_ms, int64_t *start_ns, int64_t *end_ns)
{
    *start_ns = start_ms > 0 ? hp_ms_to_ns_sat(start_ms) : INT64_MIN;
    *end_ns = end_ms > 0 ? hp_ms_to_ns_sat(end_ms) : INT64_MAX;
    if (*end_ns <= INT64_MAX - 999999)
        *end_ns += 999999;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* q's span filter from a request's span IDs: sorted, unique, without 0
 * (which no sample matches). Any IDs at all make a filter, even when none
 * is left: a span query never turns into "every sample". */
static void select_spans(hp_select_t *q, const uint64_t *ids, size_t n)
{
    q->by_span = n > 0;
    if (n == 0)
        return;
    q->spans = hp_xmalloc(n * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        if (ids[i] != 0)
            q->spans[q->n_spans++] = ids[i];
    hp_qsort(q->spans, q->n_spans, sizeof(uint64_t), u64_cmp);
    size_t o = 0;
    for (size_t i = 0; i < q->n_spans; i++)
        if (o == 0 || q->spans[o - 1] != q->spans[i])
            q->spans[o++] = q->spans[i];
    q->n_spans = o;
}

/* The call site's names (owned by q: an array of pointers into the
 * request's Location messages). */
static char **call_site_names(const Types__V1__StackTraceSelector *sts, size_t *n)
{
    *n = sts->n_call_site;
    if (*n == 0)
        return NULL;
    char **v = hp_xmalloc(*n * sizeof(char *));
    for (size_t i = 0; i < *n; i++)
        v[i] = sts->call_site[i] && sts->call_site[i]->name ? sts->call_site[i]->name : "";
    return v;
}

int hp_select_parse(const Hotpath__V1__SelectRequest *r, hp_select_t *q, hp_err_t *err)
{
    memset(q, 0, sizeof(*q));
    if (r == NULL)
        return hp_err_set(err, HP_EINVAL, "select: malformed request");
    int rc = hp_selector_parse(hp_str_c(r->label_selector), &q->sel, err);
    if (rc != 0)
        return rc;
    q->type_id = r->profile_type && *r->profile_type ? hp_xstrdup(r->profile_type) : NULL;
    hp_select_time_range(r->start, r->end, &q->start_ns, &q->end_ns);
    q->session = r->session;
    q->keep = r->keep.data;
    q->keep_len = r->keep.len;
    if (r->profile_id.len != 0 && r->profile_id.len != 16) {
        hp_select_fini(q);
        return hp_err_set(err, HP_EINVAL, "select: profile_id must be 16 bytes, got %zu", r->profile_id.len);
    }
    q->profile_id = r->profile_id.len ? r->profile_id.data : NULL;
    if (r->n_span_ids > HP_SELECT_MAX_SPANS) {
        hp_select_fini(q);
        return hp_err_set(err, HP_EINVAL, "select: %zu span IDs, at most %d", r->n_span_ids,
                          HP_SELECT_MAX_SPANS);
    }
    select_spans(q, r->span_ids, r->n_span_ids);
    const Types__V1__StackTraceSelector *sts = r->stack_trace_selector;
    if ((rc = hp_callsite_check(sts, err)) != 0) { /* a peer is not trusted to have checked */
        hp_select_fini(q);
        return rc;
    }
    if (sts) {
        q->call_site = call_site_names(sts, &q->n_call_site);
        q->pgo = sts->go_pgo != NULL;
        q->pgo_keep_locations = sts->go_pgo ? sts->go_pgo->keep_locations : 0;
        q->pgo_aggregate_callees = sts->go_pgo && sts->go_pgo->aggregate_callees;
    }
    return 0;
}

void hp_select_fini(hp_select_t *q)
{
    hp_selector_fini(&q->sel);
    free(q->type_id);
    free(q->spans);
    free((void *)q->call_site);
    memset(q, 0, sizeof(*q));
}

bool hp_select_series(const hp_head_t *h, const hp_series_t *s, const hp_select_t *q)
{
    if (q->type_id && strcmp(h->types[s->type], q->type_id) != 0)
        return false;
    if (s->n_profiles == 0 || s->max_t < q->start_ns || s->min_t > q->end_ns)
        return false;
    return hp_selector_matches(&q->sel, &s->labels);
}

bool hp_select_span(const hp_select_t *q, uint64_t span)
{
    if (!q->by_span)
        return true;
    size_t lo = 0, hi = q->n_spans;
    while (lo < hi && span != 0) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->spans[mid] == span)
            return true;
        if (q->spans[mid] < span)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* ---- blocks as heads ---- */

/* Copies a page's profiles into s. */
static void fill_series(hp_series_t *s, const hp_block_page_t *page)
{
    size_t samples = 0;
    bool spans = false;
    for (size_t i = 0; i < page->n_profiles; i++) {
        samples += page->profiles[i].n;
        spans = spans || page->profiles[i].spans != NULL;
    }
    s->profiles = hp_xmalloc((page->n_profiles + 1) * sizeof(hp_series_profile_t));
    s->stacks = hp_xmalloc((samples + 1) * sizeof(uint32_t));
    s->values = hp_xmalloc((samples + 1) * sizeof(int64_t));
    s->spans = spans ? hp_xcalloc(samples + 1, sizeof(uint64_t)) : NULL;
    s->cap_profiles = page->n_profiles;
    s->cap_samples = samples;
    for (size_t i = 0; i < page->n_profiles; i++) {
        const hp_block_profile_t *p = &page->profiles[i];
        hp_series_profile_t *q = &s->profiles[s->n_profiles++];
        q->t = p->t;
        memcpy(q->id, p->id, 16);
        q->off = (uint32_t)s->n_samples;
        q->n = p->n;
        q->total = p->total;
        put_samples(s, p->stacks, p->values, p->spans, p->n, p->spans != NULL);
        s->n_samples += p->n;
    }
}

/* Series i of block b into h: metadata always, profiles when q selects it.
 * Without q (label queries) the series claims one profile and holds none:
 * those queries look only at labels and the time range. */
static int add_block_series(hp_head_t *h, hp_block_t *b, size_t i, const hp_select_t *q, hp_err_t *err)
{
    bool created;
    hp_series_t *s =
        hp_head_series(h, hp_block_series_labels(b, i), hp_block_series_fingerprint(b, i), &created);
    s->period = hp_block_series_period(b, i);
    s->min_t = hp_block_series_min_time(b, i);
    s->max_t = hp_block_series_max_time(b, i);
    s->n_profiles = 1; /* for the selection check: the block says it has profiles */
    bool want = q != NULL && hp_select_series(h, s, q);
    s->n_profiles = q == NULL ? 1 : 0;
    s->block_bytes = hp_block_series_page_bytes(b, i);
    s->block_profiles = hp_block_series_n_profiles(b, i);
    if (!want)
        return 0;
    hp_block_page_t page; /* only the pages that overlap the selection's range */
    int rc = hp_block_read_range(b, i, q->start_ns, q->end_ns, &page, err);
    if (rc == 0)
        fill_series(s, &page);
    hp_block_page_fini(&page);
    if (rc == 0) {
        h->n_profiles += s->n_profiles;
        h->n_samples += s->n_samples;
    }
    return rc;
}

/* The block's series a selection can match, from the block's postings:
 * the shortest list among its profile type and `name="value"` matchers
 * (ascending, borrowed). False when none narrows it. */
static bool block_candidates(const hp_block_t *b, const hp_select_t *q, const uint32_t **idx, size_t *n)
{
    bool narrowed = false;
    for (size_t k = 0; k <= q->sel.n; k++) {
        const char *name, *value;
        if (k == q->sel.n) {
            if (q->type_id == NULL)
                break;
            name = HP_LABEL_PROFILE_TYPE, value = q->type_id;
        } else {
            const hp_matcher_t *m = &q->sel.m[k];
            if (m->op != HP_MATCH_EQ || m->value[0] == '\0') /* "" also matches an absent label */
                continue;
            name = m->name, value = m->value;
        }
        const uint32_t *v;
        size_t nv;
        hp_block_postings(b, name, value, &v, &nv);
        if (!narrowed || nv < *n) {
            *idx = v;
            *n = nv;
            narrowed = true;
        }
        if (nv == 0)
            break; /* no series has it: nothing can match */
    }
    return narrowed;
}

int hp_head_from_block(hp_block_t *b, hp_symdb_t *symdb, uint64_t id, const char *tenant,
                       const hp_select_t *q, hp_head_t **out, hp_err_t *err)
{
    *out = NULL;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < hp_block_n_series(b); i++) {
        lo = HP_MIN(lo, hp_block_series_min_time(b, i));
        hi = HP_MAX(hi, hp_block_series_max_time(b, i));
    }
    if (lo > hi)
        lo = hi = 0;
    hp_head_t *h = head_alloc(id, tenant, lo, hi == INT64_MAX ? hi : hi + 1, 64 * 1024);
    h->symdb = symdb; /* NULL for label queries, which read no symbols */
    h->symdb_borrowed = true;
    atomic_store(&h->state, HP_HEAD_FLUSHED);
    int rc = 0;
    /* a selection takes only the series its postings allow (a label
     * query, without one, takes them all) */
    const uint32_t *cand = NULL;
    size_t nc = 0;
    bool narrow = q != NULL && block_candidates(b, q, &cand, &nc);
    for (size_t j = 0, n = narrow ? nc : hp_block_n_series(b); j < n && rc == 0; j++)
        rc = add_block_series(h, b, narrow ? cand[j] : j, q, err);
    if (rc != 0) {
        hp_head_unref(h);
        return rc;
    }
    *out = h;
    return 0;
}
