/* The JFR chunk parser's own header, shared by jfr_read.c (values and
 * strings), jfr_meta.c (the class table) and jfr_parse.c (constant pools,
 * events, chunks). Not for the converter: it sees jfr_internal.h.
 *
 * Layout (JDK 11+ "FLR\0" 2.0, also 1.0): a chunk is a 68-byte big-endian
 * header (magic, major, minor, size, constant pool offset, metadata offset,
 * start ns, duration ns, start ticks, ticks/s, features) then events. Every
 * event is `size type fields…`; with feature bit 0 integers are LEB128
 * (the ninth byte carrying 8 bits), otherwise big-endian. Floats and
 * doubles are always raw. Type 0 is the metadata, type 1 a checkpoint of
 * constant pools, chained backwards by a delta from the header's offset.
 * A value's layout comes from its class: a primitive, a string (an
 * encoding byte then null/empty/pool ref/UTF-8/UTF-16/Latin-1), a constant
 * pool reference (a long) or the fields of the class in order; arrays are
 * a count then elements.
 *
 * Hostile input: every read is bounded by its event's size, every count is
 * checked against the bytes left, nesting is limited, and one budget of
 * value reads (twice the input plus a little) bounds the work that
 * zero-width values could otherwise multiply. */
#ifndef HOTPATH_JFR_CHUNK_H
#define HOTPATH_JFR_CHUNK_H

#include "hotpath/arena.h"
#include "hotpath/buf.h"
#include "hotpath/hashmap.h"
#include "jfr_internal.h"

enum { HDR_SIZE = 68, MAX_DEPTH = 32, T_METADATA = 0, T_CPOOL = 1 };

/* How a class's values are encoded. */
enum { P_OBJECT, P_BOOLEAN, P_BYTE, P_CHAR, P_SHORT, P_INT, P_LONG, P_FLOAT, P_DOUBLE, P_STRING };

/* The constant pools kept. */
enum { PK_NONE, PK_STRING, PK_SYMBOL, PK_CLASS, PK_METHOD, PK_STACK, PK_STATE };

/* What a field's value means to us. */
enum {
    R_NONE,
    R_STR,       /* Symbol.string, ThreadState.name */
    R_NAME,      /* Class.name, Method.name: symbol refs */
    R_CLASS,     /* Method.type */
    R_TRUNC,     /* StackTrace.truncated */
    R_FRAMES,    /* StackTrace.frames */
    R_METHOD,    /* StackFrame.method */
    R_LINE,      /* StackFrame.lineNumber */
    R_STACK,     /* an event's stackTrace */
    R_STATE,     /* ExecutionSample.state */
    R_VALUE,     /* the event's measured value */
    R_CONTEXT,   /* contextId */
    R_SPAN_ID,   /* spanId */
    R_SPAN_NAME, /* spanName */
    R_SET_NAME,  /* ActiveSetting.name */
    R_SET_VALUE, /* ActiveSetting.value */
    R_COUNT
};

typedef struct field {
    uint64_t type;
    uint32_t cls; /* index into c->cls, once resolved */
    hp_str_t name;
    bool cp, array;
    uint8_t role;
} field_t;

typedef struct klass {
    hp_str_t name;
    uint64_t id;
    uint32_t f_off, f_n; /* its fields in c->fld */
    uint8_t prim, pool, ev;
} klass_t;

/* A bounded reader; the first failure sticks and says why. */
typedef struct rd {
    const uint8_t *p, *end;
    bool compressed, bad;
    const char *why;
} rd_t;

/* A string value as read: text, or a reference into the String pool. */
typedef struct jstr {
    hp_str_t s;
    uint64_t ref;
    bool is_ref, done; /* done: a symbol already resolved and merged */
} jstr_t;

typedef struct method {
    uint64_t cls, name;
} method_t;

typedef struct jstack {
    uint32_t off, n; /* frames in c->frames */
    bool truncated;
} jstack_t;

/* What the fields of one object captured, by role. */
typedef struct cap {
    uint64_t u[R_COUNT];
    jstr_t s[2]; /* R_STR and R_SET_NAME → 0, R_SET_VALUE → 1 */
    uint32_t frames_off, frames_n;
} cap_t;

struct hp__jfr_chunk {
    const uint8_t *base; /* the chunk */
    size_t size, at;     /* its size and offset in the recording */
    uint32_t no;
    bool compressed;
    hp_err_t *err;
    uint64_t seed;     /* mixed into pool IDs: a sender cannot aim them at one slot */
    size_t ops_left;   /* value reads left for the whole recording */
    size_t names_left; /* bytes of method names left for this chunk */
    hp_arena_t arena;  /* this chunk's decoded strings and names */
    hp_buf_t scratch;
    klass_t *cls;
    size_t n_cls, cap_cls;
    field_t *fld;
    size_t n_fld, cap_fld;
    hp_u64map_t cls_by_id;
    jstr_t *strs; /* String, Symbol and ThreadState pool entries */
    size_t n_strs, cap_strs;
    hp_u64map_t string_pool, symbol_pool, state_pool; /* ID → index into strs */
    hp_u64map_t class_pool;                           /* ID → name symbol ID */
    method_t *methods;
    size_t n_methods, cap_methods;
    hp_u64map_t method_pool; /* ID → index into methods */
    jstack_t *stacks;
    size_t n_stacks, cap_stacks;
    hp_u64map_t stack_pool; /* ID → index into stacks */
    hp__jfr_frame_t *frames;
    size_t n_frames, cap_frames;
};

/* Pool and class maps, keyed by IDs the sender chose. */
static inline bool pget(const hp__jfr_chunk_t *c, const hp_u64map_t *m, uint64_t id, uint64_t *val)
{
    return hp_u64map_get(m, id ^ c->seed, val);
}

static inline void pput(const hp__jfr_chunk_t *c, hp_u64map_t *m, uint64_t id, uint64_t val)
{
    hp_u64map_put(m, id ^ c->seed, val);
}

/* ------------------------------------------------------------------------
 * Bounded reads.
 */

/* Marks r failed with why, unless it already failed. */
static inline void rd_fail(rd_t *r, const char *why)
{
    if (!r->bad)
        r->why = why;
    r->bad = true;
    r->p = r->end;
}

static inline const char *rd_why(const rd_t *r)
{
    return r->why ? r->why : "truncated";
}

static inline size_t rd_left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

static inline uint8_t rd_u8(rd_t *r)
{
    if (r->p >= r->end) {
        rd_fail(r, "truncated");
        return 0;
    }
    return *r->p++;
}

/* A big-endian integer of n bytes. */
static inline uint64_t rd_be(rd_t *r, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | rd_u8(r);
    return v;
}

/* JFR's LEB128: up to eight 7-bit groups, then a ninth full byte. */
static inline uint64_t rd_varint(rd_t *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t b = rd_u8(r);
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80)
            return v;
    }
    return v | (uint64_t)rd_u8(r) << 56;
}

static inline uint64_t rd_long(rd_t *r)
{
    return r->compressed ? rd_varint(r) : rd_be(r, 8);
}

static inline uint32_t rd_int(rd_t *r)
{
    return r->compressed ? (uint32_t)rd_varint(r) : (uint32_t)rd_be(r, 4);
}

static inline uint16_t rd_short(rd_t *r)
{
    return r->compressed ? (uint16_t)rd_varint(r) : (uint16_t)rd_be(r, 2);
}

/* Reads a count of elements that each take at least one byte. */
static inline uint32_t rd_count(rd_t *r)
{
    uint32_t n = rd_int(r);
    if (n > rd_left(r))
        rd_fail(r, "a count exceeds the bytes left");
    return r->bad ? 0 : n;
}

/* Spends one value read of the recording's budget. */
static inline bool spend(hp__jfr_chunk_t *c, rd_t *r, size_t n)
{
    if (c->ops_left < n) {
        rd_fail(r, "the recording holds more values than its size allows");
        return false;
    }
    c->ops_left -= n;
    return true;
}

/* Sets HP_EINVAL with "jfr: chunk N: <message>" and returns it. */
int hp__jfr_fail(hp__jfr_chunk_t *c, const char *fmt, ...) HP_PRINTF(2, 3);

/* jfr_read.c: reads a string value into out (NULL to skip it). */
void hp__jfr_read_string(hp__jfr_chunk_t *c, rd_t *r, jstr_t *out);

/* jfr_read.c: the text of s, following a String pool reference ("" when
 * dangling or absent). Borrowed from the chunk. */
hp_str_t hp__jfr_resolve(const hp__jfr_chunk_t *c, const jstr_t *s);

/* jfr_read.c: reads a value of class ci (its fields in order, or the
 * primitive itself) at nesting depth depth, capturing fields with roles
 * into cap and appending stack frames to c->frames. */
void hp__jfr_read_object(hp__jfr_chunk_t *c, rd_t *r, uint32_t ci, cap_t *cap, unsigned depth);

/* jfr_meta.c: reads the metadata event at offset off into c->cls and
 * c->fld, then resolves field types and gives fields their roles. */
int hp__jfr_read_metadata(hp__jfr_chunk_t *c, size_t off) HP_WUR;

#endif
