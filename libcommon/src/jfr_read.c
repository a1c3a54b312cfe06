/* The JFR chunk parser's value reading: strings in their five encodings,
 * and values of any class the metadata describes, capturing the fields the
 * converter needs (see jfr_chunk.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "jfr_chunk.h"

/* Sets HP_EINVAL with "jfr: chunk N: <message>" and returns it. */
int hp__jfr_fail(hp__jfr_chunk_t *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return hp_err_set(c->err, HP_EINVAL, "jfr: chunk %u: %s", c->no, msg);
}

/* ------------------------------------------------------------------------
 * Strings.
 */

/* Writes code point cp as UTF-8 at o (room for 4 bytes); returns its length. */
static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* UTF-8 text, with each byte that starts no valid sequence replaced by
 * U+FFFD (the JVM writes modified UTF-8; pprof strings must be UTF-8). */
static hp_str_t utf8_text(hp__jfr_chunk_t *c, const uint8_t *p, size_t n)
{
    if (hp_utf8_valid((const char *)p, n))
        return (hp_str_t){(const char *)p, n};
    uint8_t *o = hp_arena_alloc(&c->arena, 3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l = hp__utf8_seq(p + i, n - i);
        if (l == 0) {
            k += put_utf8(o + k, 0xfffd);
            i++;
        } else {
            memcpy(o + k, p + i, l);
            k += l;
            i += l;
        }
    }
    return (hp_str_t){(const char *)o, k};
}

/* Latin-1 text as UTF-8 (each byte is its code point). */
static hp_str_t latin1_text(hp__jfr_chunk_t *c, const uint8_t *p, size_t n)
{
    uint8_t *o = hp_arena_alloc(&c->arena, 2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += put_utf8(o + k, p[i]);
    return (hp_str_t){(const char *)o, k};
}

/* Reads a UTF-16 string of n chars (UTF-8 in the arena when keep);
 * unpaired surrogates become U+FFFD. */
static hp_str_t utf16_text(hp__jfr_chunk_t *c, rd_t *r, uint32_t n, bool keep)
{
    uint8_t *o = keep ? hp_arena_alloc(&c->arena, 3 * (size_t)n + 1) : NULL;
    size_t k = 0;
    uint32_t hi = 0;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint32_t u = rd_short(r);
        if (!keep)
            continue;
        if (hi && u >= 0xdc00 && u <= 0xdfff) {
            k += put_utf8(o + k, 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00));
            hi = 0;
            continue;
        }
        if (hi)
            k += put_utf8(o + k, 0xfffd);
        hi = u >= 0xd800 && u <= 0xdbff ? u : 0;
        if (!hi)
            k += put_utf8(o + k, u >= 0xdc00 && u <= 0xdfff ? 0xfffd : u);
    }
    if (hi)
        k += put_utf8(o + k, 0xfffd);
    return (hp_str_t){keep ? (const char *)o : "", k};
}

void hp__jfr_read_string(hp__jfr_chunk_t *c, rd_t *r, jstr_t *out)
{
    jstr_t v = {{"", 0}, 0, false, false};
    uint8_t enc = rd_u8(r);
    uint32_t n;
    switch (enc) {
    case 0: /* null */
    case 1: /* empty */
        break;
    case 2: /* a String pool reference */
        v.ref = rd_long(r);
        v.is_ref = true;
        break;
    case 3: /* UTF-8 */
    case 5: /* Latin-1 */
        n = rd_count(r);
        if (out && !r->bad)
            v.s = enc == 3 ? utf8_text(c, r->p, n) : latin1_text(c, r->p, n);
        r->p += n;
        break;
    case 4: /* UTF-16 chars */
        n = rd_count(r);
        if (spend(c, r, n))
            v.s = utf16_text(c, r, n, out != NULL);
        break;
    default:
        rd_fail(r, "a string has an unknown encoding");
    }
    if (out && !r->bad)
        *out = v;
}

hp_str_t hp__jfr_resolve(const hp__jfr_chunk_t *c, const jstr_t *s)
{
    uint64_t i;
    if (!s->is_ref)
        return s->s.p ? s->s : (hp_str_t){"", 0}; /* a field never read is NULL */
    if (!pget(c, &c->string_pool, s->ref, &i) || c->strs[i].is_ref)
        return (hp_str_t){"", 0};
    return c->strs[i].s;
}

/* ------------------------------------------------------------------------
 * Values, by their class.
 */

/* A primitive of kind prim as an integer (floats and doubles as bits). */
static uint64_t rd_prim(rd_t *r, int prim)
{
    switch (prim) {
    case P_BOOLEAN:
    case P_BYTE:
        return rd_u8(r);
    case P_CHAR:
    case P_SHORT:
        return rd_short(r);
    case P_INT:
        return rd_int(r);
    case P_LONG:
        return rd_long(r);
    case P_FLOAT:
        return rd_be(r, 4);
    default: /* P_DOUBLE */
        return rd_be(r, 8);
    }
}

/* Where a string field of this role is captured (NULL: skipped). */
static jstr_t *str_slot(cap_t *cap, int role)
{
    if (role == R_STR || role == R_SET_NAME)
        return &cap->s[0];
    return role == R_SET_VALUE ? &cap->s[1] : NULL;
}

/* One stack frame object, appended to the chunk's frames. */
static void rd_frame(hp__jfr_chunk_t *c, rd_t *r, uint32_t ci, unsigned depth)
{
    cap_t fc;
    memset(&fc, 0, sizeof(fc));
    hp__jfr_read_object(c, r, ci, &fc, depth + 1);
    if (r->bad)
        return;
    HP_GROW(c->frames, c->cap_frames, c->n_frames + 1);
    c->frames[c->n_frames].method = fc.u[R_METHOD];
    c->frames[c->n_frames].line = (int32_t)(uint32_t)fc.u[R_LINE];
    c->n_frames++;
}

/* One element of field f. */
static void rd_one(hp__jfr_chunk_t *c, rd_t *r, const field_t *f, cap_t *cap, unsigned depth)
{
    const klass_t *k = &c->cls[f->cls];
    if (!spend(c, r, 1))
        return;
    if (f->cp) {
        cap->u[f->role] = rd_long(r);
    } else if (k->prim == P_STRING) {
        hp__jfr_read_string(c, r, str_slot(cap, f->role));
    } else if (k->prim != P_OBJECT) {
        cap->u[f->role] = rd_prim(r, k->prim);
    } else if (f->role == R_FRAMES) {
        rd_frame(c, r, f->cls, depth);
    } else {
        cap_t inner; /* nested objects capture nothing for the outer one */
        memset(&inner, 0, sizeof(inner));
        hp__jfr_read_object(c, r, f->cls, &inner, depth + 1);
    }
}

/* Field f: one element, or a count then that many. */
static void rd_field(hp__jfr_chunk_t *c, rd_t *r, const field_t *f, cap_t *cap, unsigned depth)
{
    uint32_t n = f->array ? rd_count(r) : 1;
    if (f->role == R_FRAMES)
        cap->frames_off = (uint32_t)c->n_frames;
    for (uint32_t i = 0; i < n && !r->bad; i++)
        rd_one(c, r, f, cap, depth);
    if (f->role == R_FRAMES)
        cap->frames_n = (uint32_t)(c->n_frames - cap->frames_off);
}

void hp__jfr_read_object(hp__jfr_chunk_t *c, rd_t *r, uint32_t ci, cap_t *cap, unsigned depth)
{
    const klass_t *k = &c->cls[ci];
    if (depth > MAX_DEPTH) {
        rd_fail(r, "objects are nested too deeply");
        return;
    }
    if (k->prim == P_STRING)
        hp__jfr_read_string(c, r, &cap->s[0]);
    else if (k->prim != P_OBJECT)
        (void)rd_prim(r, k->prim);
    for (uint32_t i = 0; i < k->f_n && !r->bad; i++)
        rd_field(c, r, &c->fld[k->f_off + i], cap, depth);
}
