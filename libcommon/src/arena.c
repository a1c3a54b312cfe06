/* Bump allocator: chunks chained newest first. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/arena.h"

struct hp_arena_chunk {
    hp_arena_chunk_t *next;
    size_t size; /* usable bytes after the header */
    size_t off;
    _Alignas(16) unsigned char data[];
};

void hp_arena_init(hp_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->used = 0;
}

static hp_arena_chunk_t *chunk_new(size_t size, hp_arena_chunk_t *next)
{
    hp_arena_chunk_t *c = hp_xmalloc(sizeof(*c) + size);
    c->next = next;
    c->size = size;
    c->off = 0;
    return c;
}

void *hp_arena_alloc(hp_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    hp_arena_chunk_t *c = a->head;
    if (c == NULL || c->size - c->off < n) {
        if (n > a->chunk_size / 4) {
            /* A big block gets its own chunk behind the current one, so the
             * current chunk's free space is not wasted. */
            hp_arena_chunk_t *big = chunk_new(n, c ? c->next : NULL);
            if (c)
                c->next = big;
            else
                a->head = big;
            big->off = n;
            a->used += n;
            return big->data;
        }
        c = a->head = chunk_new(a->chunk_size, c);
    }
    void *p = c->data + c->off;
    c->off += n;
    a->used += n;
    return p;
}

void *hp_arena_calloc(hp_arena_t *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return hp_xmalloc(SIZE_MAX); /* aborts with a message */
    void *p = hp_arena_alloc(a, count * size);
    memset(p, 0, count * size);
    return p;
}

char *hp_arena_strndup(hp_arena_t *a, const char *s, size_t n)
{
    char *p = hp_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void hp_arena_reset(hp_arena_t *a)
{
    hp_arena_chunk_t *keep = NULL;
    hp_arena_chunk_t *c = a->head;
    while (c) {
        hp_arena_chunk_t *next = c->next;
        if (keep == NULL && c->size == a->chunk_size) {
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->off = 0;
    }
    a->head = keep;
    a->used = 0;
}

void hp_arena_fini(hp_arena_t *a)
{
    hp_arena_chunk_t *c = a->head;
    while (c) {
        hp_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}
