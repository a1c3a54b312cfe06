/* Open-addressing hash tables: u64 → u64 map and content-keyed ID set. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/hashmap.h"

#define EMPTY UINT64_MAX

static size_t cap_for(size_t expected)
{
    size_t c = 16;
    while (c < expected * 2)
        c *= 2;
    return c;
}

void hp_u64map_init(hp_u64map_t *m, size_t expected)
{
    memset(m, 0, sizeof(*m));
    if (expected) {
        m->cap = cap_for(expected);
        m->keys = hp_xmalloc(m->cap * sizeof(uint64_t));
        m->vals = hp_xmalloc(m->cap * sizeof(uint64_t));
        memset(m->keys, 0xff, m->cap * sizeof(uint64_t));
    }
}

void hp_u64map_fini(hp_u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

void hp_u64map_clear(hp_u64map_t *m)
{
    if (m->cap)
        memset(m->keys, 0xff, m->cap * sizeof(uint64_t));
    m->n = 0;
    m->has_max = false;
}

static size_t slot_of(const hp_u64map_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = hp_mix64(key) & mask;
    while (m->keys[i] != EMPTY && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

bool hp_u64map_get(const hp_u64map_t *m, uint64_t key, uint64_t *val)
{
    if (key == EMPTY) {
        if (m->has_max)
            *val = m->max_val;
        return m->has_max;
    }
    if (m->cap == 0)
        return false;
    size_t i = slot_of(m, key);
    if (m->keys[i] == EMPTY)
        return false;
    *val = m->vals[i];
    return true;
}

static void grow(hp_u64map_t *m)
{
    hp_u64map_t big;
    hp_u64map_init(&big, m->cap ? m->cap : 8);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != EMPTY) {
            size_t j = slot_of(&big, m->keys[i]);
            big.keys[j] = m->keys[i];
            big.vals[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = big.keys;
    m->vals = big.vals;
    m->cap = big.cap;
}

uint64_t *hp_u64map_upsert(hp_u64map_t *m, uint64_t key, uint64_t init, bool *found)
{
    if (key == EMPTY) {
        *found = m->has_max;
        if (!m->has_max) {
            m->has_max = true;
            m->max_val = init;
        }
        return &m->max_val;
    }
    if ((m->n + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot_of(m, key);
    *found = m->keys[i] != EMPTY;
    if (!*found) {
        m->keys[i] = key;
        m->vals[i] = init;
        m->n++;
    }
    return &m->vals[i];
}

void hp_u64map_put(hp_u64map_t *m, uint64_t key, uint64_t val)
{
    bool found;
    *hp_u64map_upsert(m, key, val, &found) = val;
}

bool hp_u64map_next(const hp_u64map_t *m, size_t *it, uint64_t *key, uint64_t *val)
{
    while (*it < m->cap) {
        size_t i = (*it)++;
        if (m->keys[i] != EMPTY) {
            *key = m->keys[i];
            *val = m->vals[i];
            return true;
        }
    }
    if (*it == m->cap && m->has_max) {
        (*it)++;
        *key = EMPTY;
        *val = m->max_val;
        return true;
    }
    return false;
}

void hp_idtab_init(hp_idtab_t *t, size_t expected)
{
    t->cap = cap_for(expected ? expected : 8);
    t->n = 0;
    t->hash = hp_xcalloc(t->cap, sizeof(uint32_t));
    t->id = hp_xcalloc(t->cap, sizeof(uint32_t));
}

void hp_idtab_fini(hp_idtab_t *t)
{
    free(t->hash);
    free(t->id);
    memset(t, 0, sizeof(*t));
}

uint32_t hp_idtab_find(const hp_idtab_t *t, uint64_t h, hp_idtab_eq_fn eq, const void *ctx,
                       const void *key)
{
    if (t->cap == 0)
        return UINT32_MAX;
    size_t mask = t->cap - 1;
    uint32_t h32 = (uint32_t)h;
    for (size_t i = (size_t)hp_mix64(h32) & mask;; i = (i + 1) & mask) {
        if (t->id[i] == 0)
            return UINT32_MAX;
        if (t->hash[i] == h32 && eq(ctx, t->id[i] - 1, key))
            return t->id[i] - 1;
    }
}

static void idtab_place(hp_idtab_t *t, uint32_t h32, uint32_t hi, uint32_t id1)
{
    size_t mask = t->cap - 1;
    size_t i = hi & mask;
    while (t->id[i] != 0)
        i = (i + 1) & mask;
    t->hash[i] = h32;
    t->id[i] = id1;
}

/* A slot's position is a re-mix of the stored 32-bit hash, so growing can
 * re-place entries without their content. */
void hp_idtab_insert(hp_idtab_t *t, uint64_t h, uint32_t id)
{
    if (t->cap == 0)
        hp_idtab_init(t, 8);
    if ((t->n + 1) * 2 > t->cap) {
        hp_idtab_t big;
        hp_idtab_init(&big, t->cap);
        for (size_t i = 0; i < t->cap; i++)
            if (t->id[i])
                idtab_place(&big, t->hash[i], (uint32_t)hp_mix64(t->hash[i]), t->id[i]);
        hp_idtab_fini(t);
        *t = big;
        t->n = 0;
        for (size_t i = 0; i < t->cap; i++)
            t->n += t->id[i] != 0;
    }
    idtab_place(t, (uint32_t)h, (uint32_t)hp_mix64((uint32_t)h), id + 1);
    t->n++;
}
