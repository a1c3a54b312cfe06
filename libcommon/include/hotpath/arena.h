/*
 * arena.h — a bump allocator for per-request and per-query memory: many small
 * allocations freed together when the request ends (h2o's h2o_mem_pool_t is
 * the model).
 *
 * Not for: memory that outlives its request or is shared between threads.
 * An arena is not thread-safe.
 */
#ifndef HOTPATH_ARENA_H
#define HOTPATH_ARENA_H

#include "hotpath/common.h"

typedef struct hp_arena_chunk hp_arena_chunk_t;

typedef struct hp_arena {
    hp_arena_chunk_t *head; /* current chunk; older ones chained behind it */
    size_t chunk_size;      /* default size of a new chunk */
    size_t used;            /* bytes handed out, for accounting */
} hp_arena_t;

/* Prepares an empty arena whose chunks are chunk_size bytes (0 = 64 KiB).
 * Allocates nothing until the first hp_arena_alloc. */
void hp_arena_init(hp_arena_t *a, size_t chunk_size);

/* Returns n bytes aligned to 16, valid until hp_arena_reset/fini. Never NULL. */
void *hp_arena_alloc(hp_arena_t *a, size_t n);

/* hp_arena_alloc, zero-filled. */
void *hp_arena_calloc(hp_arena_t *a, size_t count, size_t size);

/* Copies s[0..n) into the arena and NUL-terminates it. */
char *hp_arena_strndup(hp_arena_t *a, const char *s, size_t n);

/* Frees every chunk but the first, which is kept for reuse. */
void hp_arena_reset(hp_arena_t *a);

/* Frees everything. Safe on a zeroed or already-finished arena. */
void hp_arena_fini(hp_arena_t *a);

#endif
