/* Consistent-hash ring with deterministic tokens per instance ID. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/buf.h"
#include "hotpath/ring.h"

typedef struct token {
    uint32_t value;
    uint32_t member;
} token_t;

struct hp_ring {
    char **ids;
    size_t n_members;
    token_t *tokens; /* sorted by value */
    size_t n_tokens;
};

static int cmp_token(const void *a, const void *b)
{
    const token_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->member < y->member ? -1 : x->member > y->member;
}

/* Token i of an instance with t tokens (stratified): it lies in bucket i of
 * t equal buckets of the 32-bit space, at an offset within the bucket taken
 * from XXH3 of the ID seeded with i. One token per bucket per instance
 * balances ownership far better than t fully random tokens. */
static uint32_t member_token(const char *id, size_t i, size_t t)
{
    uint64_t bucket = (UINT64_C(1) << 32) / t;
    uint64_t h = XXH3_64bits_withSeed(id, strlen(id), (uint64_t)i * 0x9e3779b97f4a7c15ULL + 1);
    return (uint32_t)((uint64_t)i * bucket + h % bucket);
}

hp_ring_t *hp_ring_new(const char *const *ids, size_t n, size_t num_tokens)
{
    hp_ring_t *r = hp_xcalloc(1, sizeof(*r));
    if (num_tokens == 0)
        num_tokens = 128;
    r->ids = hp_xcalloc(n + 1, sizeof(char *));
    r->n_members = n;
    r->tokens = hp_xmalloc((n * num_tokens + 1) * sizeof(token_t));
    for (size_t m = 0; m < n; m++) {
        r->ids[m] = hp_xstrdup(ids[m]);
        for (size_t i = 0; i < num_tokens; i++)
            r->tokens[r->n_tokens++] = (token_t){member_token(ids[m], i, num_tokens), (uint32_t)m};
    }
    qsort(r->tokens, r->n_tokens, sizeof(token_t), cmp_token);
    return r;
}

void hp_ring_free(hp_ring_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_members; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->tokens);
    free(r);
}

size_t hp_ring_members(const hp_ring_t *r) { return r->n_members; }

/* Index of the first token ≥ key, wrapping to 0. */
static size_t first_at_or_after(const hp_ring_t *r, uint32_t key)
{
    size_t lo = 0, hi = r->n_tokens;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->tokens[mid].value < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->n_tokens ? 0 : lo;
}

size_t hp_ring_get(const hp_ring_t *r, uint32_t key, size_t rf, size_t *out)
{
    if (r->n_tokens == 0)
        return 0;
    size_t want = HP_MIN(rf, r->n_members), got = 0;
    size_t start = first_at_or_after(r, key);
    for (size_t k = 0; k < r->n_tokens && got < want; k++) {
        uint32_t m = r->tokens[(start + k) % r->n_tokens].member;
        bool seen = false;
        for (size_t j = 0; j < got; j++)
            seen |= out[j] == m;
        if (!seen)
            out[got++] = m;
    }
    return got;
}

/* The span of the token space token i owns: from the previous token
 * (exclusive) to it (inclusive), wrapping. */
static uint64_t token_span(const hp_ring_t *r, size_t i)
{
    if (r->n_tokens == 1)
        return UINT32_MAX;
    uint32_t prev = r->tokens[(i + r->n_tokens - 1) % r->n_tokens].value;
    return (uint32_t)(r->tokens[i].value - prev); /* wraps for i == 0 */
}

double hp_ring_ownership(const hp_ring_t *r, size_t member)
{
    uint64_t owned = 0;
    for (size_t i = 0; i < r->n_tokens; i++)
        if (r->tokens[i].member == member)
            owned += token_span(r, i);
    return (double)owned / 4294967296.0;
}

void hp_ring_ownership_all(const hp_ring_t *r, double *out)
{
    for (size_t m = 0; m < r->n_members; m++)
        out[m] = 0;
    for (size_t i = 0; i < r->n_tokens; i++)
        out[r->tokens[i].member] += (double)token_span(r, i) / 4294967296.0;
}

/* A bitmap of visited members: on the stack for small rings. */
typedef struct seen_set {
    uint64_t small[8];
    uint64_t *bits;
} seen_set_t;

static void seen_init(seen_set_t *s, size_t n)
{
    memset(s->small, 0, sizeof(s->small));
    s->bits = n <= 64 * HP_ARRAY_LEN(s->small) ? s->small : hp_xcalloc((n + 63) / 64, sizeof(uint64_t));
}

/* Marks member m; returns true when it was not marked before. */
static bool seen_add(seen_set_t *s, size_t m)
{
    uint64_t bit = UINT64_C(1) << (m % 64);
    bool fresh = (s->bits[m / 64] & bit) == 0;
    s->bits[m / 64] |= bit;
    return fresh;
}

static void seen_fini(seen_set_t *s)
{
    if (s->bits != s->small)
        free(s->bits);
}

void hp_ring_walk(const hp_ring_t *r, uint32_t key, bool (*visit)(void *ctx, size_t member), void *ctx)
{
    if (r->n_tokens == 0)
        return;
    seen_set_t seen;
    seen_init(&seen, r->n_members);
    size_t start = first_at_or_after(r, key), distinct = 0;
    for (size_t k = 0; k < r->n_tokens && distinct < r->n_members; k++) {
        uint32_t m = r->tokens[(start + k) % r->n_tokens].member;
        if (!seen_add(&seen, m))
            continue;
        distinct++;
        if (!visit(ctx, m))
            break;
    }
    seen_fini(&seen);
}

uint32_t hp_fnv1_32(uint32_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h *= 16777619u;
        h ^= b[i];
    }
    return h;
}

uint32_t hp_ring_series_token(hp_str_t tenant, const hp_labels_t *ls)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_labels_format(ls, &b);
    uint32_t h = hp_fnv1_32(HP_FNV1_32_INIT, tenant.p, tenant.n);
    h = hp_fnv1_32(h, b.data, b.len);
    hp_buf_fini(&b);
    return h;
}

size_t hp_ring_parse_members(const char *list, char ***out)
{
    size_t n = 0, cap = 0;
    char **v = NULL;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            HP_GROW(v, cap, n + 1);
            v[n++] = hp_xstrndup(p, len);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = v;
    return n;
}

void hp_ring_members_free(char **members, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(members[i]);
    free(members);
}
