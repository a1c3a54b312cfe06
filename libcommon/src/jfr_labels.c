/* Context labels for JFR events: the LabelsSnapshot protobuf that
 * Pyroscope's Java agent uploads beside a recording, and the label sets an
 * event's (contextId, spanName) gives — interned, so equal sets share one
 * ID and so one profile.
 *
 *   LabelsSnapshot { map<int64, Context> contexts = 1; map<int64, string> strings = 2; }
 *   Context { map<int64, int64> labels = 1; }   (label name ID → value ID)
 *
 * Map entries are messages {key = 1, value = 2}; a later key replaces an
 * earlier one, as protobuf maps do. Strings borrow the snapshot bytes. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/arena.h"
#include "hotpath/hashmap.h"
#include "hotpath/labels.h"
#include "hotpath/pbwire.h"
#include "jfr_internal.h"

typedef struct pair {
    uint64_t k, v; /* string IDs */
} pair_t;

typedef struct ctx_span {
    uint32_t off, n; /* its pairs */
} ctx_span_t;

typedef struct lset {
    hp_label_t *v; /* sorted by name */
    uint32_t n;
} lset_t;

/* (contextId, spanName) → label set, remembered. */
typedef struct ctx_ent {
    uint64_t key[2];
    uint32_t lset;
} ctx_ent_t;

/* A label being gathered, with its position so sorting keeps the first. */
typedef struct pending {
    hp_label_t l;
    size_t at;
} pending_t;

struct hp__jfr_lsets {
    uint64_t seed; /* mixed into IDs and hashes, which the sender chose */
    const hp_labels_t *series;
    hp_u64map_t str_ids; /* string ID → index into str */
    hp_str_t *str;
    size_t n_str, cap_str;
    hp_u64map_t ctx_ids; /* context ID → index into ctx */
    ctx_span_t *ctx;
    size_t n_ctx, cap_ctx;
    pair_t *pairs;
    size_t n_pairs, cap_pairs;
    hp_arena_t arena; /* the sets' label arrays */
    lset_t *sets;
    size_t n_sets, cap_sets;
    hp_idtab_t set_tab;
    ctx_ent_t *ents;
    size_t n_ents, cap_ents;
    hp_idtab_t ent_tab;
    pending_t *pend;
    size_t n_pend, cap_pend;
};

/* ------------------------------------------------------------------------
 * The snapshot.
 */

/* Reads the next field's number and value: a varint into *u or a payload
 * into *sub; other wire types are skipped. */
static bool pb_next(hp_pbr_t *r, uint32_t *f, uint32_t *wt, uint64_t *u, hp_pbr_t *sub)
{
    if (!hp_pbr_key(r, f, wt))
        return false;
    if (*wt == HP_PB_VARINT)
        return hp_pbr_varint(r, u);
    if (*wt == HP_PB_LEN)
        return hp_pbr_len(r, sub);
    return hp_pbr_skip(r, *wt);
}

static int bad(hp_err_t *err, const char *what)
{
    return hp_err_set(err, HP_EINVAL, "labels: malformed LabelsSnapshot: %s", what);
}

/* Whether field f of wire type wt is field want_f; sets *wrong when it is
 * but with another wire type than want_wt. */
static bool is_field(uint32_t f, uint32_t wt, uint32_t want_f, uint32_t want_wt, bool *wrong)
{
    if (f != want_f)
        return false;
    *wrong = wt != want_wt;
    return !*wrong;
}

/* strings entry {int64 key = 1; string value = 2}. */
static int read_string(hp__jfr_lsets_t *s, hp_pbr_t e, hp_err_t *err)
{
    uint64_t key = 0, u;
    hp_str_t val = {"", 0};
    while (!hp_pbr_done(&e)) {
        uint32_t f, wt;
        hp_pbr_t sub;
        bool wrong = false;
        if (!pb_next(&e, &f, &wt, &u, &sub))
            return bad(err, "truncated strings entry");
        if (is_field(f, wt, 1, HP_PB_VARINT, &wrong))
            key = u;
        else if (is_field(f, wt, 2, HP_PB_LEN, &wrong))
            val = (hp_str_t){(const char *)sub.p, (size_t)(sub.end - sub.p)};
        if (wrong)
            return bad(err, "a strings entry field has the wrong wire type");
    }
    if (!hp_utf8_valid(val.p, val.n))
        return hp_err_set(err, HP_EINVAL, "labels: string %lld is not valid UTF-8", (long long)key);
    HP_GROW(s->str, s->cap_str, s->n_str + 1);
    s->str[s->n_str] = val;
    hp_u64map_put(&s->str_ids, key ^ s->seed, s->n_str++);
    return 0;
}

/* Context.labels entry {int64 key = 1; int64 value = 2}. */
static int read_pair(hp__jfr_lsets_t *s, hp_pbr_t e, hp_err_t *err)
{
    pair_t p = {0, 0};
    uint64_t u;
    while (!hp_pbr_done(&e)) {
        uint32_t f, wt;
        hp_pbr_t sub;
        bool wrong = false;
        if (!pb_next(&e, &f, &wt, &u, &sub))
            return bad(err, "truncated context label");
        if (is_field(f, wt, 1, HP_PB_VARINT, &wrong))
            p.k = u;
        else if (is_field(f, wt, 2, HP_PB_VARINT, &wrong))
            p.v = u;
        if (wrong)
            return bad(err, "a context label field has the wrong wire type");
    }
    HP_GROW(s->pairs, s->cap_pairs, s->n_pairs + 1);
    s->pairs[s->n_pairs++] = p;
    return 0;
}

/* Context {map<int64, int64> labels = 1}: its pairs appended. */
static int read_context(hp__jfr_lsets_t *s, hp_pbr_t m, hp_err_t *err)
{
    uint64_t u;
    while (!hp_pbr_done(&m)) {
        uint32_t f, wt;
        hp_pbr_t sub;
        bool wrong = false;
        if (!pb_next(&m, &f, &wt, &u, &sub))
            return bad(err, "truncated context");
        if (is_field(f, wt, 1, HP_PB_LEN, &wrong)) {
            int rc = read_pair(s, sub, err);
            if (rc != 0)
                return rc;
        }
        if (wrong)
            return bad(err, "a context field has the wrong wire type");
    }
    return 0;
}

/* contexts entry {int64 key = 1; Context value = 2}. */
static int read_context_entry(hp__jfr_lsets_t *s, hp_pbr_t e, hp_err_t *err)
{
    uint64_t key = 0, u;
    ctx_span_t span = {(uint32_t)s->n_pairs, 0}; /* a repeated value merges, as messages do */
    while (!hp_pbr_done(&e)) {
        uint32_t f, wt;
        hp_pbr_t sub;
        bool wrong = false;
        if (!pb_next(&e, &f, &wt, &u, &sub))
            return bad(err, "truncated contexts entry");
        if (is_field(f, wt, 1, HP_PB_VARINT, &wrong)) {
            key = u;
        } else if (is_field(f, wt, 2, HP_PB_LEN, &wrong)) {
            int rc = read_context(s, sub, err);
            if (rc != 0)
                return rc;
        }
        if (wrong)
            return bad(err, "a contexts entry field has the wrong wire type");
    }
    span.n = (uint32_t)(s->n_pairs - span.off);
    HP_GROW(s->ctx, s->cap_ctx, s->n_ctx + 1);
    s->ctx[s->n_ctx] = span;
    hp_u64map_put(&s->ctx_ids, key ^ s->seed, s->n_ctx++);
    return 0;
}

static int read_snapshot(hp__jfr_lsets_t *s, const uint8_t *p, size_t n, hp_err_t *err)
{
    hp_pbr_t r = hp_pbr(p, n);
    uint64_t u;
    while (!hp_pbr_done(&r)) {
        uint32_t f, wt;
        hp_pbr_t sub;
        bool wrong = false;
        int rc = 0;
        if (!pb_next(&r, &f, &wt, &u, &sub))
            return bad(err, "truncated or not a protobuf message");
        if (is_field(f, wt, 1, HP_PB_LEN, &wrong))
            rc = read_context_entry(s, sub, err);
        else if (is_field(f, wt, 2, HP_PB_LEN, &wrong))
            rc = read_string(s, sub, err);
        if (wrong)
            return bad(err, "a field has the wrong wire type");
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* String id of the snapshot, "" when absent (jfr-parser's map lookup). */
static hp_str_t snap_str(const hp__jfr_lsets_t *s, uint64_t id)
{
    uint64_t i;
    return hp_u64map_get(&s->str_ids, id ^ s->seed, &i) ? s->str[i] : (hp_str_t){"", 0};
}

/* ------------------------------------------------------------------------
 * Label sets.
 */

/* A context label is dropped when the series already has the name: the
 * caller's labels, __name__ and jfr_event win, as in Pyroscope. */
static bool taken(const hp__jfr_lsets_t *s, hp_str_t name)
{
    if (hp_str_eq_c(name, HP_LABEL_NAME) || hp_str_eq_c(name, "jfr_event"))
        return true;
    for (size_t i = 0; s->series != NULL && i < s->series->n; i++)
        if (s->series->v[i].value.n > 0 && hp_str_eq(s->series->v[i].name, name))
            return true;
    return false;
}

static void pend(hp__jfr_lsets_t *s, hp_str_t name, hp_str_t value)
{
    if (value.n == 0 || taken(s, name))
        return; /* an empty value is no label (Pyroscope drops it) */
    HP_GROW(s->pend, s->cap_pend, s->n_pend + 1);
    s->pend[s->n_pend] = (pending_t){{name, value}, s->n_pend};
    s->n_pend++;
}

static int pending_cmp(const void *a, const void *b)
{
    const pending_t *x = a, *y = b;
    int c = hp_str_cmp(x->l.name, y->l.name);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Gathers the labels of (context, span name) into s->pend, sorted by name,
 * one per name: the context's (a later pair wins), then span_name. */
static void gather(hp__jfr_lsets_t *s, uint64_t context, uint64_t span_name)
{
    uint64_t ci;
    s->n_pend = 0;
    if (hp_u64map_get(&s->ctx_ids, context ^ s->seed, &ci)) {
        const ctx_span_t *c = &s->ctx[ci];
        for (uint32_t i = c->n; i-- > 0;)
            pend(s, snap_str(s, s->pairs[c->off + i].k), snap_str(s, s->pairs[c->off + i].v));
    }
    if (span_name != 0)
        pend(s, HP_STR("span_name"), snap_str(s, span_name));
    hp_qsort(s->pend, s->n_pend, sizeof(pending_t), pending_cmp);
    size_t o = 0;
    for (size_t i = 0; i < s->n_pend; i++)
        if (o == 0 || !hp_str_eq(s->pend[o - 1].l.name, s->pend[i].l.name))
            s->pend[o++] = s->pend[i];
    s->n_pend = o;
}

static uint64_t pend_hash(const hp__jfr_lsets_t *s)
{
    uint64_t h = s->seed;
    for (size_t i = 0; i < s->n_pend; i++) {
        h = XXH3_64bits_withSeed(s->pend[i].l.name.p, s->pend[i].l.name.n, h);
        h = XXH3_64bits_withSeed(s->pend[i].l.value.p, s->pend[i].l.value.n, h ^ 0x5bd1e995);
    }
    return h;
}

static bool set_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp__jfr_lsets_t *s = ctx;
    const lset_t *l = &s->sets[id];
    (void)key;
    if (l->n != s->n_pend)
        return false;
    for (uint32_t i = 0; i < l->n; i++)
        if (!hp_str_eq(l->v[i].name, s->pend[i].l.name) || !hp_str_eq(l->v[i].value, s->pend[i].l.value))
            return false;
    return true;
}

/* Interns the gathered labels; *added is the new set's size in bytes, or
 * 0 when it existed. */
static uint32_t intern(hp__jfr_lsets_t *s, size_t *added)
{
    uint64_t h = pend_hash(s);
    uint32_t id = hp_idtab_find(&s->set_tab, h, set_eq, s, NULL);
    *added = 0;
    if (id != UINT32_MAX)
        return id;
    lset_t l = {hp_arena_alloc(&s->arena, (s->n_pend + 1) * sizeof(hp_label_t)), (uint32_t)s->n_pend};
    *added = 32;
    for (size_t i = 0; i < s->n_pend; i++) {
        l.v[i] = s->pend[i].l;
        *added += 16 + l.v[i].name.n + l.v[i].value.n;
    }
    HP_GROW(s->sets, s->cap_sets, s->n_sets + 1);
    s->sets[s->n_sets] = l;
    hp_idtab_insert(&s->set_tab, h, (uint32_t)s->n_sets);
    return (uint32_t)s->n_sets++;
}

static bool ent_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp__jfr_lsets_t *s = ctx;
    return memcmp(s->ents[id].key, key, sizeof(s->ents[id].key)) == 0;
}

uint32_t hp__jfr_lset_for(hp__jfr_lsets_t *s, uint64_t context, uint64_t span_name, size_t *added)
{
    uint64_t key[2] = {context, span_name};
    uint64_t h = XXH3_64bits_withSeed(key, sizeof(key), s->seed);
    uint32_t id = hp_idtab_find(&s->ent_tab, h, ent_eq, s, key);
    *added = 0;
    if (id != UINT32_MAX)
        return s->ents[id].lset;
    gather(s, context, span_name);
    uint32_t set = intern(s, added);
    HP_GROW(s->ents, s->cap_ents, s->n_ents + 1);
    s->ents[s->n_ents] = (ctx_ent_t){{context, span_name}, set};
    hp_idtab_insert(&s->ent_tab, h, (uint32_t)s->n_ents++);
    return set;
}

const hp_label_t *hp__jfr_lset(const hp__jfr_lsets_t *s, uint32_t id, uint32_t *n)
{
    *n = s->sets[id].n;
    return s->sets[id].v;
}

int hp__jfr_lsets_new(const uint8_t *snapshot, size_t n, const hp_labels_t *series, uint64_t seed,
                      hp__jfr_lsets_t **out, hp_err_t *err)
{
    hp__jfr_lsets_t *s = hp_xcalloc(1, sizeof(*s));
    s->seed = seed;
    s->series = series;
    hp_arena_init(&s->arena, 0);
    hp_idtab_init(&s->set_tab, 0);
    hp_idtab_init(&s->ent_tab, 0);
    int rc = n ? read_snapshot(s, snapshot, n, err) : 0;
    if (rc != 0) {
        hp__jfr_lsets_free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

void hp__jfr_lsets_free(hp__jfr_lsets_t *s)
{
    if (s == NULL)
        return;
    hp_u64map_fini(&s->str_ids);
    hp_u64map_fini(&s->ctx_ids);
    hp_arena_fini(&s->arena);
    hp_idtab_fini(&s->set_tab);
    hp_idtab_fini(&s->ent_tab);
    free(s->str);
    free(s->ctx);
    free(s->pairs);
    free(s->sets);
    free(s->ents);
    free(s->pend);
    free(s);
}
