/* Growable byte buffer and the encoders that append to it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "internal.h"

void hp_buf_init(hp_buf_t *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void hp_buf_fini(hp_buf_t *b)
{
    free(b->data);
    hp_buf_init(b);
}

void hp_buf_reserve(hp_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t need = b->len + n;
    size_t c = b->cap ? b->cap : 64;
    while (c < need)
        c = c < (SIZE_MAX / 2) ? c * 2 : need;
    b->data = hp_xrealloc(b->data, c);
    b->cap = c;
}

void hp_buf_append(hp_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    hp_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void hp_buf_putc(hp_buf_t *b, char c)
{
    hp_buf_reserve(b, 1);
    b->data[b->len++] = (uint8_t)c;
}

void hp_buf_puts(hp_buf_t *b, const char *s) { hp_buf_append(b, s, strlen(s)); }

void hp_buf_vprintf(hp_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    hp_buf_reserve(b, (size_t)n + 1);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void hp_buf_printf(hp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void hp_buf_put_u64(hp_buf_t *b, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hp_buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void hp_buf_put_i64(hp_buf_t *b, int64_t v)
{
    if (v < 0) {
        hp_buf_putc(b, '-');
        hp_buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        hp_buf_put_u64(b, (uint64_t)v);
    }
}

void hp_buf_put_json_str(hp_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    hp_buf_reserve(b, n + 2);
    hp_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t k = hp__utf8_seq(p + i, n - i);
            if (k == 0) {
                hp_buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                hp_buf_append(b, p + i, k);
                i += k;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            hp_buf_append(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            hp_buf_append(b, esc, 6);
        } else {
            hp_buf_putc(b, (char)c);
        }
        i++;
    }
    hp_buf_putc(b, '"');
}

const char *hp_buf_cstr(hp_buf_t *b)
{
    hp_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

uint8_t *hp_buf_take(hp_buf_t *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    hp_buf_init(b);
    return p;
}

void hp_buf_put_varint(hp_buf_t *b, uint64_t v)
{
    hp_buf_reserve(b, 10);
    uint8_t *o = b->data + b->len;
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    b->len = (size_t)(o - b->data);
}

void hp_pb_put_tag(hp_buf_t *b, uint32_t field, uint32_t wire_type)
{
    hp_buf_put_varint(b, ((uint64_t)field << 3) | wire_type);
}

void hp_pb_put_uint(hp_buf_t *b, uint32_t field, uint64_t v)
{
    if (v == 0)
        return;
    hp_pb_put_tag(b, field, 0);
    hp_buf_put_varint(b, v);
}

void hp_pb_put_sint(hp_buf_t *b, uint32_t field, int64_t v)
{
    if (v == 0)
        return;
    hp_pb_put_tag(b, field, 0);
    hp_buf_put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void hp_pb_put_bytes(hp_buf_t *b, uint32_t field, const void *p, size_t n)
{
    hp_pb_put_tag(b, field, 2);
    hp_buf_put_varint(b, n);
    hp_buf_append(b, p, n);
}

/* The mark is the offset of the body; one byte is reserved for the length,
 * which is enough for bodies under 128 bytes and otherwise the body moves. */
size_t hp_pb_begin_len(hp_buf_t *b, uint32_t field)
{
    hp_pb_put_tag(b, field, 2);
    hp_buf_putc(b, 0);
    return b->len;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void hp_pb_end_len(hp_buf_t *b, size_t mark)
{
    size_t body = b->len - mark;
    size_t vs = varint_size(body);
    if (vs > 1) {
        hp_buf_reserve(b, vs - 1);
        memmove(b->data + mark + vs - 1, b->data + mark, body);
        b->len += vs - 1;
    }
    uint8_t *o = b->data + mark - 1;
    uint64_t v = body;
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o = (uint8_t)v;
}

void hp_pb_put_packed_u64(hp_buf_t *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += varint_size(v[i]);
    hp_pb_put_tag(b, field, 2);
    hp_buf_put_varint(b, bytes);
    hp_buf_reserve(b, bytes);
    for (size_t i = 0; i < n; i++)
        hp_buf_put_varint(b, v[i]);
}

void hp_pb_put_packed_i64(hp_buf_t *b, uint32_t field, const int64_t *v, size_t n)
{
    hp_pb_put_packed_u64(b, field, (const uint64_t *)v, n);
}
