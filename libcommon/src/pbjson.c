/* proto3 JSON for protobuf-c messages: an encoder that writes straight into
 * an hp_buf_t and a bounded recursive-descent decoder that builds the
 * message exactly as protobuf_c_message_unpack would (malloc'd strings,
 * arrays and sub-messages), so protobuf_c_message_free_unpacked frees it. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/pbjson.h"

#define MAX_DEPTH 64      /* nesting of objects and arrays */
#define MAX_NUMBER_LEN 64 /* characters in one JSON number */
#define NAME_LEN 128      /* longest JSON field name written */

typedef struct frame {
    const ProtobufCFieldDescriptor *field;
    long index; /* element of a repeated field, or -1 */
} frame_t;

/* Decoder state: the cursor over the input, the current nesting, the
 * scratch buffer holding the last string read, and the field path for
 * error messages. */
typedef struct dec {
    const char *start, *p, *end;
    int depth;
    hp_buf_t scratch;
    frame_t path[MAX_DEPTH + 2];
    int n_path;
    hp_err_t *err;
} dec_t;

typedef void (*put_fn)(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v);
typedef int (*get_fn)(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot);

/* How one protobuf-c type is stored, written and read. */
typedef struct type_ops {
    size_t size; /* bytes of one value in a message or repeated array */
    put_fn put;
    get_fn get;
} type_ops_t;

static const type_ops_t *ops_of(const ProtobufCFieldDescriptor *f);

/* ---- names ---- */

static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

const char *hp_pbjson_name(const char *field_name, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    size_t o = 0;
    bool up = false;
    for (const char *s = field_name; *s != '\0' && o + 1 < n; s++) {
        if (*s == '_') {
            up = true;
            continue;
        }
        buf[o++] = up ? ascii_upper(*s) : *s;
        up = false;
    }
    buf[o] = '\0';
    return buf;
}

/* True when key[0..n) is the JSON name of the field called name. */
static bool json_name_eq(const char *name, const char *key, size_t n)
{
    size_t i = 0;
    bool up = false;
    for (; *name != '\0'; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        if (i >= n || key[i] != (up ? ascii_upper(*name) : *name))
            return false;
        up = false;
        i++;
    }
    return i == n;
}

/* The field whose JSON name or original name is key[0..n), or NULL. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key, size_t n)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (json_name_eq(f->name, key, n) || (strlen(f->name) == n && memcmp(f->name, key, n) == 0))
            return f;
    }
    return NULL;
}

/* ---- encoding ---- */

/* Writes "<-><digits of mag>" quoted, in one reservation: 64-bit values
 * dominate big replies (a flame graph is millions of them). */
static void put_quoted(hp_buf_t *out, bool neg, uint64_t mag)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (neg)
        tmp[--i] = '-';
    hp_buf_reserve(out, sizeof(tmp) - i + 2);
    char *o = (char *)out->data + out->len;
    *o++ = '"';
    memcpy(o, tmp + i, sizeof(tmp) - i);
    o[sizeof(tmp) - i] = '"';
    out->len += sizeof(tmp) - i + 2;
}

/* 64-bit integers as proto3 JSON writes them: quoted decimals. */
static void put_quoted_i64(hp_buf_t *out, int64_t v)
{
    put_quoted(out, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

static void put_quoted_u64(hp_buf_t *out, uint64_t v) { put_quoted(out, false, v); }

/* Writes the shortest decimal that reads back as the same value (float
 * precision when is_float); NaN and infinities as proto3 JSON strings. */
static void put_real(hp_buf_t *out, double v, bool is_float)
{
    if (isnan(v)) {
        hp_buf_puts(out, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        hp_buf_puts(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char tmp[40];
    int max = is_float ? 9 : 17;
    for (int prec = is_float ? 6 : 15; prec <= max; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    hp_buf_puts(out, tmp);
}

/* Writes p[0..n) as a quoted, padded, standard-alphabet base64 string. */
static void put_base64(hp_buf_t *out, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    hp_buf_reserve(out, (n + 2) / 3 * 4 + 2);
    char *o = (char *)out->data + out->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    out->len = (size_t)(o - (char *)out->data);
}

/* The writers of type_ops: each appends the one value at v, stored as
 * protobuf-c stores that type, as a JSON value. */
static void put_i32(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    hp_buf_put_i64(out, *(const int32_t *)v);
}

static void put_u32(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    hp_buf_put_u64(out, *(const uint32_t *)v);
}

static void put_i64(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    put_quoted_i64(out, *(const int64_t *)v);
}

static void put_u64(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    put_quoted_u64(out, *(const uint64_t *)v);
}

static void put_float(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    put_real(out, *(const float *)v, true);
}

static void put_double(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    put_real(out, *(const double *)v, false);
}

static void put_bool(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    hp_buf_puts(out, *(const protobuf_c_boolean *)v ? "true" : "false");
}

/* Enums by value name; a number the enum does not know stays a number. */
static void put_enum(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    int32_t value = *(const int32_t *)v;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);
    if (ev != NULL)
        hp_buf_put_json_str(out, ev->name, strlen(ev->name));
    else
        hp_buf_put_i64(out, value);
}

/* Strings are escaped; invalid UTF-8 becomes U+FFFD so the output stays JSON. */
static void put_string(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    const char *s = *(const char *const *)v;
    hp_buf_put_json_str(out, s ? s : "", s ? strlen(s) : 0);
}

static void put_bytes(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    const ProtobufCBinaryData *bd = v;
    put_base64(out, bd->data, bd->len);
}

/* True when a proto3 singular value is its type's default. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)v)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)v == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)v == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)v == 0;
    default:
        break;
    }
    if (ops_of(f)->size == 8)
        return *(const uint64_t *)v == 0;
    return *(const uint32_t *)v == 0;
}

/* True when field f of msg is written: a non-empty repeated field, the set
 * member of a oneof, a present proto2 optional, a non-default proto3 value
 * (the presence rules of protobuf_c_message_pack). */
static bool is_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    const void *v = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const void *ptr = *(const void *const *)v;
            return ptr != NULL && ptr != f->default_value;
        }
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    }
    return !is_default(f, v);
}

/* Writes "<json name>": for f. */
static void put_key(hp_buf_t *out, const ProtobufCFieldDescriptor *f)
{
    char name[NAME_LEN];
    hp_buf_putc(out, '"');
    hp_buf_puts(out, hp_pbjson_name(f->name, name, sizeof(name)));
    hp_buf_append(out, "\":", 2);
}

/* Writes the repeated field f of msg as a JSON array. */
static void put_repeated(hp_buf_t *out, const ProtobufCMessage *msg,
                         const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(const char *const *)(base + f->offset);
    const type_ops_t *ops = ops_of(f);
    hp_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            hp_buf_putc(out, ',');
        ops->put(out, f, arr + i * ops->size);
    }
    hp_buf_putc(out, ']');
}

/* Writes msg as a JSON object (fields in field-number order). */
static void put_object(hp_buf_t *out, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    bool first = true;
    hp_buf_putc(out, '{');
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (ops_of(f) == NULL || !is_present(msg, f))
            continue;
        if (!first)
            hp_buf_putc(out, ',');
        first = false;
        put_key(out, f);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            put_repeated(out, msg, f);
        else
            ops_of(f)->put(out, f, (const char *)msg + f->offset);
    }
    hp_buf_putc(out, '}');
}

/* A sub-message; a NULL element of a repeated field is written as {}. */
static void put_message(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v)
{
    const ProtobufCMessage *m = *(const ProtobufCMessage *const *)v;
    if (m == NULL)
        hp_buf_append(out, "{}", 2);
    else
        put_object(out, m);
}

void hp_pbjson_encode(const ProtobufCMessage *msg, hp_buf_t *out) { put_object(out, msg); }

/* ---- decoding: errors and tokens ---- */

/* Writes the field path ("series[0].samples[1].rawProfile") into buf. */
static void render_path(const dec_t *d, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < d->n_path && o + 1 < n; i++) {
        char name[NAME_LEN];
        hp_pbjson_name(d->path[i].field->name, name, sizeof(name));
        int w = snprintf(buf + o, n - o, "%s%s", i > 0 ? "." : "", name);
        if (w > 0)
            o = HP_MIN(n - 1, o + (size_t)w);
        if (d->path[i].index >= 0 && o + 1 < n) {
            w = snprintf(buf + o, n - o, "[%ld]", d->path[i].index);
            if (w > 0)
                o = HP_MIN(n - 1, o + (size_t)w);
        }
    }
}

/* Records an HP_EINVAL error prefixed with the current field path. */
static int fail(dec_t *d, const char *fmt, ...) HP_PRINTF(2, 3);
static int fail(dec_t *d, const char *fmt, ...)
{
    char msg[384], path[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    render_path(d, path, sizeof(path));
    if (path[0] != '\0')
        return hp_err_set(d->err, HP_EINVAL, "%s: %s", path, msg);
    return hp_err_set(d->err, HP_EINVAL, "%s", msg);
}

/* A JSON syntax error at the cursor. */
static int syntax(dec_t *d, const char *what)
{
    if (d->p >= d->end)
        return fail(d, "invalid JSON: unexpected end of input at byte %zu",
                    (size_t)(d->end - d->start));
    return fail(d, "invalid JSON at byte %zu: %s", (size_t)(d->p - d->start), what);
}

/* Moves the cursor past JSON whitespace. */
static void skip_ws(dec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        d->p++;
}

/* The next non-blank character, or 0 at the end of the input. */
static char peek(dec_t *d)
{
    skip_ws(d);
    return d->p < d->end ? *d->p : '\0';
}

/* Consumes c after blanks, or fails naming what was expected. */
static int expect(dec_t *d, char c, const char *what)
{
    if (peek(d) != c)
        return syntax(d, what);
    d->p++;
    return 0;
}

/* What the value at the cursor is, for "expected X, got Y" messages. */
static const char *kind_at(dec_t *d)
{
    if (peek(d) == '\0' && d->p >= d->end)
        return "end of input";
    switch (*d->p) {
    case '{':
        return "an object";
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
        return "true";
    case 'f':
        return "false";
    case 'n':
        return "null";
    default:
        return (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) ? "a number" : "an invalid token";
    }
}

/* Fails with "expected <want>, got <what is at the cursor>"; at the end of
 * the input it is a syntax error (truncated JSON). */
static int wrong_type(dec_t *d, const char *want)
{
    if (peek(d) == '\0' && d->p >= d->end)
        return syntax(d, "unexpected end of input");
    return fail(d, "expected %s, got %s", want, kind_at(d));
}

/* Enters an object or array, refusing input nested deeper than MAX_DEPTH. */
static int enter(dec_t *d)
{
    if (++d->depth > MAX_DEPTH)
        return fail(d, "JSON nested deeper than %d levels", MAX_DEPTH);
    d->p++;
    return 0;
}

/* Consumes the literal lit (true, false, null). */
static int literal(dec_t *d, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n) != 0)
        return syntax(d, "invalid literal");
    d->p += n;
    return 0;
}

/* ASCII digit (isdigit depends on the locale). */
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Length of the JSON number starting at p (before end), or 0 if none. */
static size_t number_len(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        if (++p >= end || !is_digit(*p))
            return 0;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return 0;
        while (p < end && is_digit(*p))
            p++;
    }
    return (size_t)(p - s);
}

/* The value of a hex digit, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at the cursor into *cp. */
static int read_hex4(dec_t *d, uint32_t *cp)
{
    if (d->end - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u')
        return syntax(d, "invalid \\u escape");
    uint32_t v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hex_value(d->p[i]);
        if (h < 0)
            return syntax(d, "invalid \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    d->p += 6;
    *cp = v;
    return 0;
}

/* Appends the UTF-8 encoding of code point cp (≤ U+10FFFF, not a surrogate). */
static void put_utf8(hp_buf_t *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63)), n = 3;
    } else {
        o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 63));
        o[2] = (char)(0x80 | ((cp >> 6) & 63)), o[3] = (char)(0x80 | (cp & 63)), n = 4;
    }
    hp_buf_append(b, o, n);
}

/* Decodes a \uXXXX escape (a surrogate pair when it is one) into scratch. */
static int unicode_escape(dec_t *d)
{
    uint32_t cp, lo;
    if (read_hex4(d, &cp) != 0)
        return HP_EINVAL;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return syntax(d, "unpaired surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (d->end - d->p < 2 || d->p[0] != '\\' || d->p[1] != 'u')
            return syntax(d, "unpaired surrogate in \\u escape");
        if (read_hex4(d, &lo) != 0)
            return HP_EINVAL;
        if (lo < 0xdc00 || lo > 0xdfff)
            return syntax(d, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    put_utf8(&d->scratch, cp);
    return 0;
}

/* Decodes the escape at the cursor (which is at the backslash). */
static int escape(dec_t *d)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (d->end - d->p < 2)
        return syntax(d, "unterminated string");
    if (d->p[1] == 'u')
        return unicode_escape(d);
    const char *k = memchr(from, d->p[1], sizeof(from) - 1);
    if (k == NULL)
        return syntax(d, "invalid escape in string");
    hp_buf_putc(&d->scratch, to[k - from]);
    d->p += 2;
    return 0;
}

/* Reads the JSON string at the cursor (which is at its quote) into
 * d->scratch, unescaped and NUL-terminated (the NUL not counted). */
static int read_string(dec_t *d)
{
    hp_buf_reset(&d->scratch);
    d->p++;
    for (;;) {
        const char *s = d->p;
        while (d->p < d->end && *d->p != '"' && *d->p != '\\' && (unsigned char)*d->p >= 0x20)
            d->p++;
        hp_buf_append(&d->scratch, s, (size_t)(d->p - s));
        if (d->p >= d->end)
            return syntax(d, "unterminated string");
        if (*d->p == '"')
            break;
        if (*d->p != '\\')
            return syntax(d, "control character in string");
        if (escape(d) != 0)
            return HP_EINVAL;
    }
    d->p++;
    if (!hp_utf8_valid((const char *)d->scratch.data, d->scratch.len))
        return fail(d, "invalid UTF-8 in string");
    hp_buf_cstr(&d->scratch);
    return 0;
}

/* The last string read_string read (borrowed until the next read). */
static hp_str_t scratch_str(const dec_t *d)
{
    hp_str_t s = {(const char *)d->scratch.data, d->scratch.len};
    return s;
}

static int skip_value(dec_t *d);

/* Skips the members of the object at the cursor (unknown fields). */
static int skip_object(dec_t *d)
{
    if (enter(d) != 0)
        return HP_EINVAL;
    for (bool first = true; peek(d) != '}'; first = false) {
        if (!first && expect(d, ',', "expected ',' or '}'") != 0)
            return HP_EINVAL;
        if (peek(d) != '"')
            return syntax(d, "expected a field name");
        if (read_string(d) != 0 || expect(d, ':', "expected ':'") != 0 || skip_value(d) != 0)
            return HP_EINVAL;
    }
    d->p++;
    d->depth--;
    return 0;
}

/* Skips the elements of the array at the cursor. */
static int skip_array(dec_t *d)
{
    if (enter(d) != 0)
        return HP_EINVAL;
    for (bool first = true; peek(d) != ']'; first = false) {
        if (!first && expect(d, ',', "expected ',' or ']'") != 0)
            return HP_EINVAL;
        if (skip_value(d) != 0)
            return HP_EINVAL;
    }
    d->p++;
    d->depth--;
    return 0;
}

/* Checks and skips any JSON value (the value of an unknown field). */
static int skip_value(dec_t *d)
{
    size_t n;
    switch (peek(d)) {
    case '{':
        return skip_object(d);
    case '[':
        return skip_array(d);
    case '"':
        return read_string(d);
    case 't':
        return literal(d, "true");
    case 'f':
        return literal(d, "false");
    case 'n':
        return literal(d, "null");
    default:
        n = number_len(d->p, d->end);
        if (n == 0)
            return syntax(d, "expected a value");
        d->p += n;
        return 0;
    }
}

/* ---- decoding: scalar values ---- */

/* Reads a JSON number, or a string holding one, as text into *t (borrowed
 * from the input or from scratch); *quoted says which. */
static int number_text(dec_t *d, const char *want, hp_str_t *t, bool *quoted)
{
    char c = peek(d);
    *quoted = c == '"';
    if (c == '"') {
        if (read_string(d) != 0)
            return HP_EINVAL;
        *t = scratch_str(d);
        return 0;
    }
    if (c != '-' && !is_digit(c))
        return wrong_type(d, want);
    size_t n = number_len(d->p, d->end);
    if (n == 0)
        return syntax(d, "invalid number");
    t->p = d->p;
    t->n = n;
    d->p += n;
    return 0;
}

/* Parses JSON number text as a double; false when it is too long. */
static bool text_to_double(hp_str_t t, double *out)
{
    char tmp[MAX_NUMBER_LEN + 1];
    if (t.n > MAX_NUMBER_LEN)
        return false;
    memcpy(tmp, t.p, t.n);
    tmp[t.n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

enum { INT_OK, INT_NOT_INTEGRAL, INT_RANGE };

/* Splits integral JSON number text into sign and magnitude: digits exactly,
 * exponent and fraction forms ("1e3", "2.0") through a double. */
static int text_to_int(hp_str_t t, bool *neg, uint64_t *mag)
{
    size_t i = (*neg = t.n > 0 && t.p[0] == '-') ? 1 : 0;
    if (number_len(t.p, t.p + t.n) == t.n && memchr(t.p, '.', t.n) == NULL &&
        memchr(t.p, 'e', t.n) == NULL && memchr(t.p, 'E', t.n) == NULL) {
        uint64_t v = 0;
        for (; i < t.n; i++) {
            unsigned dg = (unsigned)(t.p[i] - '0');
            if (v > (UINT64_MAX - dg) / 10)
                return INT_RANGE;
            v = v * 10 + dg;
        }
        *mag = v;
        return INT_OK;
    }
    double x;
    if (!text_to_double(t, &x))
        return INT_RANGE;
    if (x != floor(x))
        return INT_NOT_INTEGRAL;
    if (fabs(x) >= 18446744073709551616.0)
        return INT_RANGE;
    *mag = (uint64_t)fabs(x);
    return INT_OK;
}

/* Reads an integer (a number or a string holding one) of the named type
 * whose magnitude is at most neg_max when negative, pos_max otherwise. */
static int get_integer(dec_t *d, const char *type, uint64_t neg_max, uint64_t pos_max, bool *neg,
                       uint64_t *mag)
{
    hp_str_t t;
    bool quoted;
    if (number_text(d, "an integer", &t, &quoted) != 0)
        return HP_EINVAL;
    int shown = (int)HP_MIN(t.n, 40);
    if (quoted && (t.n == 0 || number_len(t.p, t.p + t.n) != t.n))
        return fail(d, "expected an integer, got \"%.*s\"", shown, t.p);
    int r = text_to_int(t, neg, mag);
    if (r == INT_NOT_INTEGRAL)
        return fail(d, "expected an integer, got %.*s", shown, t.p);
    if (r == INT_RANGE || *mag > (*neg ? neg_max : pos_max))
        return fail(d, "%.*s is out of range for %s", shown, t.p, type);
    return 0;
}

/* Two's complement of a magnitude, as a signed value. */
static int64_t signed_of(bool neg, uint64_t mag) { return (int64_t)(neg ? (0 - mag) : mag); }

/* The readers of type_ops: each reads the value at the cursor into slot,
 * stored as protobuf-c stores that type; strings, bytes and messages are
 * malloc'd as protobuf_c_message_unpack would. */
static int get_i32(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    bool neg;
    uint64_t mag;
    if (get_integer(d, "int32", (uint64_t)INT32_MAX + 1, INT32_MAX, &neg, &mag) != 0)
        return HP_EINVAL;
    *(int32_t *)slot = (int32_t)signed_of(neg, mag);
    return 0;
}

static int get_u32(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    bool neg;
    uint64_t mag;
    if (get_integer(d, "uint32", 0, UINT32_MAX, &neg, &mag) != 0)
        return HP_EINVAL;
    *(uint32_t *)slot = (uint32_t)mag;
    return 0;
}

static int get_i64(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    bool neg;
    uint64_t mag;
    if (get_integer(d, "int64", (uint64_t)INT64_MAX + 1, INT64_MAX, &neg, &mag) != 0)
        return HP_EINVAL;
    *(int64_t *)slot = signed_of(neg, mag);
    return 0;
}

static int get_u64(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    bool neg;
    uint64_t mag;
    if (get_integer(d, "uint64", 0, UINT64_MAX, &neg, &mag) != 0)
        return HP_EINVAL;
    *(uint64_t *)slot = mag;
    return 0;
}

/* Reads a number, or "NaN", "Infinity", "-Infinity" or a quoted number. */
static int get_real(dec_t *d, const char *type, double max, double *out)
{
    hp_str_t t;
    bool quoted;
    if (number_text(d, "a number", &t, &quoted) != 0)
        return HP_EINVAL;
    int shown = (int)HP_MIN(t.n, 40);
    if (quoted && hp_str_eq_c(t, "NaN")) {
        *out = NAN;
        return 0;
    }
    if (quoted && (hp_str_eq_c(t, "Infinity") || hp_str_eq_c(t, "-Infinity"))) {
        *out = t.p[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    if (quoted && (t.n == 0 || number_len(t.p, t.p + t.n) != t.n))
        return fail(d, "expected a number, got \"%.*s\"", shown, t.p);
    if (!text_to_double(t, out))
        return fail(d, "number too long: %zu > %d characters", t.n, MAX_NUMBER_LEN);
    if (fabs(*out) > max)
        return fail(d, "%.*s is out of range for %s", shown, t.p, type);
    return 0;
}

static int get_float(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    double v;
    if (get_real(d, "float", FLT_MAX, &v) != 0)
        return HP_EINVAL;
    *(float *)slot = (float)v;
    return 0;
}

static int get_double(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    return get_real(d, "double", DBL_MAX, (double *)slot);
}

static int get_bool(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    char c = peek(d);
    if (c != 't' && c != 'f')
        return wrong_type(d, "true or false");
    *(protobuf_c_boolean *)slot = c == 't';
    return literal(d, c == 't' ? "true" : "false");
}

/* Enums by value name or by number. */
static int get_enum(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (peek(d) != '"') {
        if (peek(d) != '-' && !is_digit(peek(d)))
            return wrong_type(d, "an enum value name");
        return get_i32(d, f, slot);
    }
    if (read_string(d) != 0)
        return HP_EINVAL;
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value_by_name(ed, (const char *)d->scratch.data);
    if (ev == NULL)
        return fail(d, "unknown value \"%.*s\" for enum %s", (int)HP_MIN(d->scratch.len, 64),
                    (const char *)d->scratch.data, ed->name);
    *(int32_t *)slot = ev->value;
    return 0;
}

/* Strings become NUL-terminated copies, so an embedded NUL is refused. */
static int get_string(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    if (peek(d) != '"')
        return wrong_type(d, "a string");
    if (read_string(d) != 0)
        return HP_EINVAL;
    if (memchr(d->scratch.data, '\0', d->scratch.len) != NULL)
        return fail(d, "string contains a NUL character");
    *(char **)slot = hp_xstrndup((const char *)d->scratch.data, d->scratch.len);
    return 0;
}

/* The value of a base64 digit in either the standard or URL alphabet. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 s[0..n), padded or not, into out (room for n / 4 * 3 + 3
 * bytes). Line breaks are skipped as Go's decoder does. Returns the length
 * written, or SIZE_MAX when s is not base64. */
static size_t b64_decode(const char *s, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0, digits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0)
            return SIZE_MAX;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        digits++;
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (digits % 4 == 1 || pad > 2 || (pad > 0 && (digits + pad) % 4 != 0))
        return SIZE_MAX;
    return o;
}

/* Bytes from base64; empty bytes are {NULL, 0} as unpack leaves them. */
static int get_bytes(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    ProtobufCBinaryData *bd = slot;
    if (peek(d) != '"')
        return wrong_type(d, "a base64 string");
    if (read_string(d) != 0)
        return HP_EINVAL;
    uint8_t *data = hp_xmalloc(d->scratch.len / 4 * 3 + 3);
    size_t n = b64_decode((const char *)d->scratch.data, d->scratch.len, data);
    if (n == SIZE_MAX || n == 0) {
        free(data);
        if (n == SIZE_MAX)
            return fail(d, "invalid base64");
        data = NULL;
    }
    bd->data = data;
    bd->len = n;
    return 0;
}

/* ---- decoding: messages ---- */

static int get_message(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot);
static void put_message(hp_buf_t *out, const ProtobufCFieldDescriptor *f, const void *v);

static const type_ops_t type_ops[] = {
    [PROTOBUF_C_TYPE_INT32] = {4, put_i32, get_i32},
    [PROTOBUF_C_TYPE_SINT32] = {4, put_i32, get_i32},
    [PROTOBUF_C_TYPE_SFIXED32] = {4, put_i32, get_i32},
    [PROTOBUF_C_TYPE_INT64] = {8, put_i64, get_i64},
    [PROTOBUF_C_TYPE_SINT64] = {8, put_i64, get_i64},
    [PROTOBUF_C_TYPE_SFIXED64] = {8, put_i64, get_i64},
    [PROTOBUF_C_TYPE_UINT32] = {4, put_u32, get_u32},
    [PROTOBUF_C_TYPE_FIXED32] = {4, put_u32, get_u32},
    [PROTOBUF_C_TYPE_UINT64] = {8, put_u64, get_u64},
    [PROTOBUF_C_TYPE_FIXED64] = {8, put_u64, get_u64},
    [PROTOBUF_C_TYPE_FLOAT] = {4, put_float, get_float},
    [PROTOBUF_C_TYPE_DOUBLE] = {8, put_double, get_double},
    [PROTOBUF_C_TYPE_BOOL] = {sizeof(protobuf_c_boolean), put_bool, get_bool},
    [PROTOBUF_C_TYPE_ENUM] = {4, put_enum, get_enum},
    [PROTOBUF_C_TYPE_STRING] = {sizeof(char *), put_string, get_string},
    [PROTOBUF_C_TYPE_BYTES] = {sizeof(ProtobufCBinaryData), put_bytes, get_bytes},
    [PROTOBUF_C_TYPE_MESSAGE] = {sizeof(ProtobufCMessage *), put_message, get_message},
};

/* The operations for f's type, or NULL for a type this protobuf-c does not
 * have (so a newer descriptor cannot index past the table). */
static const type_ops_t *ops_of(const ProtobufCFieldDescriptor *f)
{
    if ((size_t)f->type >= HP_ARRAY_LEN(type_ops) || type_ops[f->type].put == NULL)
        return NULL;
    return &type_ops[f->type];
}

/* A new message of type desc with its defaults, allocated as unpack does. */
static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = hp_xmalloc(desc->sizeof_message);
    protobuf_c_message_init(desc, m);
    return m;
}

/* Reads the array at the cursor into the repeated field f of msg. The array
 * and its count are stored after each growth, so a failure half-way leaves
 * msg consistent for protobuf_c_message_free_unpacked. */
static int get_repeated(dec_t *d, const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
    const type_ops_t *ops = ops_of(f);
    char **arr = (char **)((char *)msg + f->offset);
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset), cap = 0;
    if (peek(d) != '[')
        return wrong_type(d, "an array");
    if (enter(d) != 0)
        return HP_EINVAL;
    for (size_t i = 0; peek(d) != ']'; i++) {
        if (i > 0 && expect(d, ',', "expected ',' or ']'") != 0)
            return HP_EINVAL;
        if (i == cap) {
            cap = cap ? cap * 2 : 8;
            *arr = hp_xrealloc(*arr, cap * ops->size);
            memset(*arr + i * ops->size, 0, (cap - i) * ops->size);
        }
        *count = i + 1;
        d->path[d->n_path - 1].index = (long)i;
        if (peek(d) == 'n')
            return fail(d, "null is not allowed in a repeated field");
        if (ops->get(d, f, *arr + i * ops->size) != 0)
            return HP_EINVAL;
        d->path[d->n_path - 1].index = -1;
    }
    d->p++;
    if (cap > *count)
        *arr = hp_xrealloc(*arr, *count * ops->size);
    d->depth--;
    return 0;
}

/* Marks f present where protobuf-c keeps presence: the oneof case or the
 * has_ flag of a proto2 optional scalar. */
static int mark_present(dec_t *d, const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
    char *q = (char *)msg + f->quantifier_offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(uint32_t *)q != 0)
            return fail(d, "only one field of a oneof may be set");
        *(uint32_t *)q = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)q = 1;
    }
    return 0;
}

/* Reads the value of field f at the cursor into msg; null keeps the default. */
static int get_field(dec_t *d, const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
    if (peek(d) == 'n')
        return literal(d, "null");
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return get_repeated(d, f, msg);
    if (mark_present(d, f, msg) != 0)
        return HP_EINVAL;
    return ops_of(f)->get(d, f, (char *)msg + f->offset);
}

/* Reads one "key": value member of an object of type desc into msg. seen
 * has one byte per field, to refuse a field given twice. */
static int get_member(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                      uint8_t *seen)
{
    if (peek(d) != '"')
        return syntax(d, "expected a field name");
    if (read_string(d) != 0)
        return HP_EINVAL;
    const ProtobufCFieldDescriptor *f =
        find_field(desc, (const char *)d->scratch.data, d->scratch.len);
    if (expect(d, ':', "expected ':'") != 0)
        return HP_EINVAL;
    if (f == NULL || ops_of(f) == NULL)
        return skip_value(d); /* unknown fields are ignored, as connect-go does */
    if ((size_t)d->n_path >= HP_ARRAY_LEN(d->path))
        return fail(d, "JSON nested deeper than %d levels", MAX_DEPTH);
    d->path[d->n_path++] = (frame_t){f, -1};
    if (seen[f - desc->fields]++)
        return fail(d, "field given twice");
    if (get_field(d, f, msg) != 0)
        return HP_EINVAL;
    d->n_path--;
    return 0;
}

/* Reads the object at the cursor as a message of type desc into msg. */
static int get_object(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg)
{
    uint8_t small[64];
    uint8_t *seen = desc->n_fields <= sizeof(small) ? small : hp_xmalloc(desc->n_fields);
    int rc = enter(d);
    memset(seen, 0, desc->n_fields);
    for (bool first = true; rc == 0 && peek(d) != '}'; first = false) {
        if (!first && expect(d, ',', "expected ',' or '}'") != 0)
            rc = HP_EINVAL;
        else
            rc = get_member(d, desc, msg, seen);
    }
    if (seen != small)
        free(seen);
    if (rc != 0)
        return rc;
    d->p++;
    d->depth--;
    return 0;
}

/* A sub-message, attached to slot before it is filled so a failure inside
 * it is freed with the root. */
static int get_message(dec_t *d, const ProtobufCFieldDescriptor *f, void *slot)
{
    const ProtobufCMessageDescriptor *desc = f->descriptor;
    if (peek(d) != '{')
        return wrong_type(d, "an object");
    ProtobufCMessage *m = new_message(desc);
    *(ProtobufCMessage **)slot = m;
    return get_object(d, desc, m);
}

/* Parses the whole input as one message of type desc into msg. */
static int get_root(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg)
{
    if (peek(d) != '{')
        return fail(d, "expected a JSON object for %s, got %s", desc->name, kind_at(d));
    if (get_object(d, desc, msg) != 0)
        return HP_EINVAL;
    skip_ws(d);
    if (d->p < d->end)
        return syntax(d, "unexpected data after the object");
    return 0;
}

int hp_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t n,
                     ProtobufCMessage **out, hp_err_t *err)
{
    dec_t d = {.start = json, .p = json, .end = json + n, .err = err};
    ProtobufCMessage *msg = new_message(desc);
    hp_buf_init(&d.scratch);
    int rc = get_root(&d, desc, msg);
    hp_buf_fini(&d.scratch);
    if (rc != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        *out = NULL;
        return rc;
    }
    *out = msg;
    return 0;
}
