/*
 * pbwire.h — a bounds-checked reader for the protobuf wire format, for the
 * hand-written decoders on hot paths (pprof, the RPC envelope, tree bytes).
 * Every read checks the remaining length first; nothing here allocates.
 *
 * Not for: general messages — protobuf-c's generated code handles those.
 */
#ifndef HOTPATH_PBWIRE_H
#define HOTPATH_PBWIRE_H

#include "hotpath/common.h"

typedef struct hp_pbr {
    const uint8_t *p;
    const uint8_t *end;
} hp_pbr_t;

enum { HP_PB_VARINT = 0, HP_PB_I64 = 1, HP_PB_LEN = 2, HP_PB_I32 = 5 };

static inline hp_pbr_t hp_pbr(const void *p, size_t n)
{
    hp_pbr_t r = {(const uint8_t *)p, (const uint8_t *)p + n};
    return r;
}

static inline bool hp_pbr_done(const hp_pbr_t *r) { return r->p >= r->end; }

/* Reads a varint of at most 10 bytes. Returns false on truncation or
 * overlong encoding. */
static inline bool hp_pbr_varint(hp_pbr_t *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads a field key. Returns false at a malformed key or field number 0. */
static inline bool hp_pbr_key(hp_pbr_t *r, uint32_t *field, uint32_t *wt)
{
    uint64_t k;
    if (!hp_pbr_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > 0x1fffffff)
        return false;
    *field = (uint32_t)(k >> 3);
    *wt = (uint32_t)(k & 7);
    return true;
}

/* Reads a length-delimited payload as a sub-reader. */
static inline bool hp_pbr_len(hp_pbr_t *r, hp_pbr_t *sub)
{
    uint64_t n;
    if (!hp_pbr_varint(r, &n) || n > (uint64_t)(r->end - r->p))
        return false;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return true;
}

/* Skips one field's value of wire type wt. */
static inline bool hp_pbr_skip(hp_pbr_t *r, uint32_t wt)
{
    uint64_t v;
    hp_pbr_t sub;
    switch (wt) {
    case HP_PB_VARINT:
        return hp_pbr_varint(r, &v);
    case HP_PB_I64:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case HP_PB_LEN:
        return hp_pbr_len(r, &sub);
    case HP_PB_I32:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    default:
        return false; /* groups (3, 4) are not used by any hotpath message */
    }
}

static inline int64_t hp_pb_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

#endif
