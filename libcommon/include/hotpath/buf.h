/*
 * buf.h — a growable byte buffer, and the small encoders that write into
 * one: protobuf varints and fields, JSON strings, decimal numbers.
 *
 * Not for: parsing (see pbwire.h for reading protobuf wire format).
 */
#ifndef HOTPATH_BUF_H
#define HOTPATH_BUF_H

#include <stdarg.h>

#include "hotpath/common.h"

typedef struct hp_buf {
    uint8_t *data; /* owned; NULL when cap == 0 */
    size_t len;
    size_t cap;
} hp_buf_t;

#define HP_BUF_INIT {NULL, 0, 0}

void hp_buf_init(hp_buf_t *b);
/* Frees the storage. Safe on a zeroed buffer. */
void hp_buf_fini(hp_buf_t *b);
/* Makes room for n more bytes. */
void hp_buf_reserve(hp_buf_t *b, size_t n);
/* Empties the buffer but keeps its storage. */
static inline void hp_buf_reset(hp_buf_t *b) { b->len = 0; }
void hp_buf_append(hp_buf_t *b, const void *p, size_t n);
void hp_buf_putc(hp_buf_t *b, char c);
void hp_buf_puts(hp_buf_t *b, const char *s);
void hp_buf_printf(hp_buf_t *b, const char *fmt, ...) HP_PRINTF(2, 3);
void hp_buf_vprintf(hp_buf_t *b, const char *fmt, va_list ap);
/* Appends a decimal integer. */
void hp_buf_put_i64(hp_buf_t *b, int64_t v);
void hp_buf_put_u64(hp_buf_t *b, uint64_t v);

/* Little-endian 64-bit store and load at p (any alignment). */
static inline void hp_store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t hp_load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
/* Appends s[0..n) as a JSON string literal, quotes included. Invalid UTF-8
 * bytes are replaced with U+FFFD so the output is always valid JSON. */
void hp_buf_put_json_str(hp_buf_t *b, const char *s, size_t n);
/* Appends a NUL without counting it in len, so data is a C string. */
const char *hp_buf_cstr(hp_buf_t *b);
/* Hands the storage to the caller (who frees it with free()) and leaves the
 * buffer empty. */
uint8_t *hp_buf_take(hp_buf_t *b, size_t *len);

/* Protobuf wire encoding. */
void hp_buf_put_varint(hp_buf_t *b, uint64_t v);
void hp_pb_put_tag(hp_buf_t *b, uint32_t field, uint32_t wire_type);
void hp_pb_put_uint(hp_buf_t *b, uint32_t field, uint64_t v);  /* skips 0 */
void hp_pb_put_sint(hp_buf_t *b, uint32_t field, int64_t v);   /* zigzag, skips 0 */
void hp_pb_put_bytes(hp_buf_t *b, uint32_t field, const void *p, size_t n); /* always written */
/* Starts a length-delimited field whose length is not yet known; returns a
 * mark for hp_pb_end_len. The length is written as a varint afterwards,
 * moving the body if needed. */
size_t hp_pb_begin_len(hp_buf_t *b, uint32_t field);
void hp_pb_end_len(hp_buf_t *b, size_t mark);
/* Packed repeated fields (skipped when n == 0). */
void hp_pb_put_packed_u64(hp_buf_t *b, uint32_t field, const uint64_t *v, size_t n);
void hp_pb_put_packed_i64(hp_buf_t *b, uint32_t field, const int64_t *v, size_t n);

#endif
