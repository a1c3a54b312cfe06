/* The JFR chunk parser's walk: each chunk's header, its metadata (see
 * jfr_meta.c), its constant pools, then its events in order, handed to the
 * converter's sink; and the pool lookups the sink uses (see jfr_chunk.h
 * for the format). */
#include <stdlib.h>
#include <string.h>

#include "jfr_chunk.h"

/* ------------------------------------------------------------------------
 * Constant pools.
 */

/* Keeps a String, Symbol or ThreadState entry under key in pool. */
static void push_str(hp__jfr_chunk_t *c, hp_u64map_t *pool, uint64_t key, const jstr_t *s)
{
    HP_GROW(c->strs, c->cap_strs, c->n_strs + 1);
    c->strs[c->n_strs] = *s;
    pput(c, pool, key, c->n_strs++);
}

/* Keeps what one pool entry of class k captured. */
static void keep_entry(hp__jfr_chunk_t *c, const klass_t *k, uint64_t key, const cap_t *cap)
{
    switch (k->pool) {
    case PK_STRING:
        push_str(c, &c->string_pool, key, &cap->s[0]);
        break;
    case PK_SYMBOL:
        push_str(c, &c->symbol_pool, key, &cap->s[0]);
        break;
    case PK_STATE:
        push_str(c, &c->state_pool, key, &cap->s[0]);
        break;
    case PK_CLASS:
        pput(c, &c->class_pool, key, cap->u[R_NAME]);
        break;
    case PK_METHOD:
        HP_GROW(c->methods, c->cap_methods, c->n_methods + 1);
        c->methods[c->n_methods] = (method_t){cap->u[R_CLASS], cap->u[R_NAME]};
        pput(c, &c->method_pool, key, c->n_methods++);
        break;
    case PK_STACK:
        HP_GROW(c->stacks, c->cap_stacks, c->n_stacks + 1);
        c->stacks[c->n_stacks] = (jstack_t){cap->frames_off, cap->frames_n, cap->u[R_TRUNC] != 0};
        pput(c, &c->stack_pool, key, c->n_stacks++);
        break;
    default:
        break;
    }
}

/* One pool: its class ID, a count, then (key, value) pairs. */
static void read_pool(hp__jfr_chunk_t *c, rd_t *r)
{
    uint64_t id = rd_long(r), ci = 0;
    if (r->bad || !pget(c, &c->cls_by_id, id, &ci)) {
        rd_fail(r, "a pool's class is not in the metadata");
        return;
    }
    uint32_t n = rd_count(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint64_t key = rd_long(r);
        cap_t cap;
        memset(&cap, 0, sizeof(cap));
        hp__jfr_read_object(c, r, (uint32_t)ci, &cap, 0);
        if (!r->bad)
            keep_entry(c, &c->cls[ci], key, &cap);
    }
}

/* One checkpoint event at off; sets *delta to its link to the previous. */
static int read_checkpoint(hp__jfr_chunk_t *c, size_t off, int64_t *delta)
{
    rd_t r = {c->base + off, c->base + c->size, c->compressed, false, NULL};
    uint32_t size = rd_int(&r);
    if (r.bad || size == 0 || size > c->size - off)
        return hp__jfr_fail(c, "constant pool at %zu: size %u is out of range", off, size);
    r.end = c->base + off + size;
    uint64_t type = rd_long(&r);
    if (!r.bad && type != T_CPOOL)
        return hp__jfr_fail(c, "constant pool at %zu: expected event type 1, found %llu", off,
                            (unsigned long long)type);
    (void)rd_long(&r); /* start time */
    (void)rd_long(&r); /* duration */
    *delta = (int64_t)rd_long(&r);
    (void)rd_u8(&r); /* flush / checkpoint type */
    uint32_t n = rd_count(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++)
        read_pool(c, &r);
    if (r.bad)
        return hp__jfr_fail(c, "constant pool at %zu: %s", off, rd_why(&r));
    return 0;
}

/* Follows the checkpoint chain from the header's offset backwards: each
 * link must point to an earlier offset, so the walk ends. */
static int read_constant_pools(hp__jfr_chunk_t *c, uint64_t first)
{
    uint64_t off = first;
    for (;;) {
        int64_t delta = 0;
        if (off < HDR_SIZE || off >= c->size)
            return hp__jfr_fail(c, "constant pool offset %llu is outside the chunk", (unsigned long long)off);
        int rc = read_checkpoint(c, (size_t)off, &delta);
        if (rc != 0)
            return rc;
        if (delta == 0)
            return 0;
        if (delta > 0 || (uint64_t) - (delta + 1) >= off)
            return hp__jfr_fail(c, "constant pool at %llu: link %lld does not point to an earlier pool",
                                (unsigned long long)off, (long long)delta);
        off -= (uint64_t) - (delta + 1) + 1;
    }
}

/* ------------------------------------------------------------------------
 * Events.
 */

/* Builds the converter's view of an event from what it captured. */
static void to_event(const hp__jfr_chunk_t *c, int kind, const cap_t *cap, hp__jfr_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->stack = cap->u[R_STACK];
    ev->state = cap->u[R_STATE];
    ev->context = cap->u[R_CONTEXT];
    ev->span_id = cap->u[R_SPAN_ID];
    ev->span_name = cap->u[R_SPAN_NAME];
    ev->value = (int64_t)cap->u[R_VALUE];
    ev->set_name = hp__jfr_resolve(c, &cap->s[0]);
    ev->set_value = hp__jfr_resolve(c, &cap->s[1]);
}

/* The event at off of class ci (of interest): read and handed over. */
static int read_event(hp__jfr_chunk_t *c, rd_t *r, size_t off, uint32_t ci, const hp__jfr_sink_t *sink)
{
    const klass_t *k = &c->cls[ci];
    cap_t cap;
    memset(&cap, 0, sizeof(cap));
    hp__jfr_read_object(c, r, ci, &cap, 0);
    if (r->bad)
        return hp__jfr_fail(c, "event at %zu (%.*s): %s", off, (int)k->name.n, k->name.p, rd_why(r));
    hp__jfr_event_t ev;
    to_event(c, k->ev, &cap, &ev);
    return sink->event(sink->ctx, c, &ev, c->err);
}

/* Walks the chunk's events in order; metadata, checkpoints and classes of
 * no interest are skipped by their size. */
static int read_events(hp__jfr_chunk_t *c, const hp__jfr_sink_t *sink)
{
    for (size_t off = HDR_SIZE; off < c->size;) {
        rd_t r = {c->base + off, c->base + c->size, c->compressed, false, NULL};
        uint32_t size = rd_int(&r);
        uint64_t type = rd_long(&r), ci;
        if (r.bad || size == 0 || size > c->size - off || r.p > c->base + off + size)
            return hp__jfr_fail(c, "event at %zu: size %u is out of range", off, size);
        r.end = c->base + off + size;
        if (type != T_METADATA && type != T_CPOOL && pget(c, &c->cls_by_id, type, &ci) &&
            c->cls[ci].ev != HP__JFR_EV_NONE) {
            int rc = read_event(c, &r, off, (uint32_t)ci, sink);
            if (rc != 0)
                return rc;
        }
        off += size;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Chunks.
 */

/* The chunk header fields the parser uses. */
typedef struct header {
    uint16_t major;
    uint64_t size, cpool, meta;
    uint32_t features;
} header_t;

/* Reads and checks the header at p (left bytes of the recording remain):
 * the magic, a known version, and offsets inside the chunk. */
static int read_header(hp__jfr_chunk_t *c, const uint8_t *p, size_t left, header_t *h)
{
    if (left < HDR_SIZE)
        return hp__jfr_fail(c, "%zu bytes left at %zu, a chunk header takes 68", left, c->at);
    rd_t r = {p, p + HDR_SIZE, false, false, NULL};
    if (memcmp(p, "FLR", 4) != 0)
        return hp__jfr_fail(c, "at %zu: not a JFR chunk (magic is not \"FLR\\0\")", c->at);
    r.p += 4;
    h->major = (uint16_t)rd_be(&r, 2);
    (void)rd_be(&r, 2); /* minor */
    h->size = rd_be(&r, 8);
    h->cpool = rd_be(&r, 8);
    h->meta = rd_be(&r, 8);
    for (int i = 0; i < 4; i++)
        (void)rd_be(&r, 8); /* start ns, duration ns, start ticks, ticks/s */
    h->features = (uint32_t)rd_be(&r, 4);
    if (h->major != 1 && h->major != 2)
        return hp__jfr_fail(c, "format version %u is not supported (1 or 2)", h->major);
    if (h->size < HDR_SIZE || h->size > left)
        return hp__jfr_fail(c, "size %llu is out of range (%zu bytes left)", (unsigned long long)h->size,
                            left);
    if (h->meta < HDR_SIZE || h->meta >= h->size)
        return hp__jfr_fail(c, "metadata offset %llu is outside the chunk", (unsigned long long)h->meta);
    return 0;
}

/* Forgets the previous chunk's tables. The maps are freed rather than
 * cleared: clearing costs their capacity, and many small chunks after a
 * big one would pay it each time. */
static void reset_chunk(hp__jfr_chunk_t *c)
{
    hp_arena_reset(&c->arena);
    c->n_cls = c->n_fld = c->n_strs = c->n_methods = c->n_stacks = c->n_frames = 0;
    hp_u64map_t *maps[] = {&c->cls_by_id,  &c->string_pool, &c->symbol_pool, &c->state_pool,
                           &c->class_pool, &c->method_pool, &c->stack_pool};
    for (size_t i = 0; i < HP_ARRAY_LEN(maps); i++)
        hp_u64map_fini(maps[i]);
}

/* Frees everything the parser holds. */
static void fini_chunk(hp__jfr_chunk_t *c)
{
    hp_arena_fini(&c->arena);
    hp_buf_fini(&c->scratch);
    free(c->cls);
    free(c->fld);
    free(c->strs);
    free(c->methods);
    free(c->stacks);
    free(c->frames);
    hp_u64map_t *maps[] = {&c->cls_by_id,  &c->string_pool, &c->symbol_pool, &c->state_pool,
                           &c->class_pool, &c->method_pool, &c->stack_pool};
    for (size_t i = 0; i < HP_ARRAY_LEN(maps); i++)
        hp_u64map_fini(maps[i]);
}

/* One chunk at c->at: header, metadata, constant pools, events. */
static int read_chunk(hp__jfr_chunk_t *c, const uint8_t *jfr, size_t n, const hp__jfr_sink_t *sink,
                      size_t *size)
{
    header_t h = {0, 0, 0, 0, 0};
    int rc = read_header(c, jfr + c->at, n - c->at, &h);
    if (rc != 0)
        return rc;
    reset_chunk(c);
    c->base = jfr + c->at;
    c->size = (size_t)h.size;
    c->compressed = (h.features & 1) != 0;
    c->names_left = 4 * c->size + 65536;
    *size = c->size;
    if ((rc = hp__jfr_read_metadata(c, (size_t)h.meta)) != 0 || (rc = read_constant_pools(c, h.cpool)) != 0 ||
        (rc = read_events(c, sink)) != 0)
        return rc;
    return sink->chunk_end(sink->ctx, c, c->err);
}

int hp__jfr_parse(const uint8_t *jfr, size_t n, const hp__jfr_sink_t *sink, hp_err_t *err)
{
    hp__jfr_chunk_t c;
    memset(&c, 0, sizeof(c));
    c.err = err;
    c.ops_left = 2 * n + 65536;
    c.seed = hp_mix64((uint64_t)hp_now_ns() ^ (uint64_t)(uintptr_t)&c);
    hp_arena_init(&c.arena, 0);
    if (n == 0) {
        c.no = 1;
        int rc = hp__jfr_fail(&c, "the recording is empty");
        fini_chunk(&c);
        return rc;
    }
    int rc = 0;
    for (size_t size = 0; rc == 0 && c.at < n; c.at += size) {
        c.no++;
        rc = read_chunk(&c, jfr, n, sink, &size);
    }
    fini_chunk(&c);
    return rc;
}

/* ------------------------------------------------------------------------
 * Lookups for the sink.
 */

bool hp__jfr_stack(const hp__jfr_chunk_t *c, uint64_t id, const hp__jfr_frame_t **frames, uint32_t *n,
                   bool *truncated)
{
    uint64_t i;
    if (!pget(c, &c->stack_pool, id, &i))
        return false;
    *frames = c->frames + c->stacks[i].off;
    *n = c->stacks[i].n;
    *truncated = c->stacks[i].truncated;
    return true;
}

bool hp__jfr_state(hp__jfr_chunk_t *c, uint64_t id, hp_str_t *name)
{
    uint64_t i;
    if (!pget(c, &c->state_pool, id, &i))
        return false;
    *name = hp__jfr_resolve(c, &c->strs[i]);
    return true;
}

/* Symbol id's text, resolved and with generated names merged, once. */
static hp_str_t symbol(hp__jfr_chunk_t *c, uint64_t id)
{
    uint64_t i;
    if (!pget(c, &c->symbol_pool, id, &i))
        return (hp_str_t){"", 0}; /* jfr-parser's GetSymbolString gives "" */
    jstr_t *s = &c->strs[i];
    if (s->done)
        return s->s;
    hp_str_t t = hp__jfr_resolve(c, s);
    hp_buf_reset(&c->scratch);
    hp_buf_reserve(&c->scratch, t.n + 1);
    size_t m = hp__jfr_merge_generated(t.p, t.n, (char *)c->scratch.data);
    s->s = m ? (hp_str_t){hp_arena_strndup(&c->arena, (const char *)c->scratch.data, m), m} : t;
    s->is_ref = false;
    s->done = true;
    return s->s;
}

int hp__jfr_method_name(hp__jfr_chunk_t *c, uint64_t id, hp_str_t *name, hp_err_t *err)
{
    uint64_t i, cls_name;
    if (id == 0 || !pget(c, &c->method_pool, id, &i) ||
        !pget(c, &c->class_pool, c->methods[i].cls, &cls_name))
        return 1;
    hp_str_t k = symbol(c, cls_name), m = symbol(c, c->methods[i].name);
    if (k.n + m.n + 1 > c->names_left)
        return hp_err_set(err, HP_EINVAL, "jfr: chunk %u: method names exceed %zu bytes", c->no,
                          4 * c->size + 65536);
    c->names_left -= k.n + m.n + 1;
    char *s = hp_arena_alloc(&c->arena, k.n + m.n + 2);
    memcpy(s, k.p, k.n);
    s[k.n] = '.';
    memcpy(s + k.n + 1, m.p, m.n);
    s[k.n + m.n + 1] = '\0';
    *name = (hp_str_t){s, k.n + m.n + 1};
    return 0;
}
