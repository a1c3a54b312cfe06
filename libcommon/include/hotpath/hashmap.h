/*
 * hashmap.h — two open-addressing hash tables for the hot paths:
 *
 *   hp_u64map: uint64 key → uint64 value (stack-tree children, ID maps).
 *   hp_idtab:  a set of uint32 IDs deduplicated by content the caller
 *              hashes and compares (interned strings, functions, locations):
 *              the table stores only (hash, ID); equality is a callback.
 *
 * Linear probing over power-of-two capacities, load ≤ 0.5. Not
 * thread-safe: owners lock around them. No deletion (heads and queries
 * drop whole tables).
 *
 * Not for: small maps where a sorted array would do.
 */
#ifndef HOTPATH_HASHMAP_H
#define HOTPATH_HASHMAP_H

#include "hotpath/common.h"

typedef struct hp_u64map {
    uint64_t *keys;
    uint64_t *vals;
    size_t cap; /* power of two, or 0 */
    size_t n;
    bool has_max; /* UINT64_MAX marks empty slots; that key lives here */
    uint64_t max_val;
} hp_u64map_t;

void hp_u64map_init(hp_u64map_t *m, size_t expected);
void hp_u64map_fini(hp_u64map_t *m);
void hp_u64map_clear(hp_u64map_t *m);
/* Returns true and sets *val when key is present. */
bool hp_u64map_get(const hp_u64map_t *m, uint64_t key, uint64_t *val);
/* Inserts or overwrites. */
void hp_u64map_put(hp_u64map_t *m, uint64_t key, uint64_t val);
/* Returns a pointer to key's value, inserting it with init when absent;
 * *found says which. The pointer is valid until the next insertion. */
uint64_t *hp_u64map_upsert(hp_u64map_t *m, uint64_t key, uint64_t init, bool *found);

/* Iteration: for (size_t it = 0; hp_u64map_next(m, &it, &k, &v);) */
bool hp_u64map_next(const hp_u64map_t *m, size_t *it, uint64_t *key, uint64_t *val);

static inline uint64_t hp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

typedef struct hp_idtab {
    uint32_t *hash; /* slot hash (low 32 bits of the content hash) */
    uint32_t *id;   /* slot ID + 1; 0 = empty */
    size_t cap;
    size_t n;
} hp_idtab_t;

/* eq returns true when the stored id holds the content key points at. */
typedef bool (*hp_idtab_eq_fn)(const void *ctx, uint32_t id, const void *key);

void hp_idtab_init(hp_idtab_t *t, size_t expected);
void hp_idtab_fini(hp_idtab_t *t);
/* The ID whose content equals key (hash h), or UINT32_MAX. */
uint32_t hp_idtab_find(const hp_idtab_t *t, uint64_t h, hp_idtab_eq_fn eq, const void *ctx,
                       const void *key);
/* Adds id under hash h (the caller checked it is absent). */
void hp_idtab_insert(hp_idtab_t *t, uint64_t h, uint32_t id);

#endif
