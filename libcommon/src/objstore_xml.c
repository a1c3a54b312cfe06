/* A small, bounded scanner for the XML that S3 answers with: the
 * ListObjectsV2 page and the <Error> body. It looks for literal tags: in
 * S3's answers a '<' in text is always written as &lt;, so "<Key>" can
 * only be a tag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore_impl.h"

bool hp__xml_next(const char *xml, size_t n, size_t *pos, const char *name, size_t *start, size_t *end)
{
    char open[64], close[64];
    int on = snprintf(open, sizeof(open), "<%s>", name);
    int cn = snprintf(close, sizeof(close), "</%s>", name);
    if (xml == NULL || *pos >= n || on <= 0 || (size_t)on >= sizeof(open) || cn <= 0 ||
        (size_t)cn >= sizeof(close))
        return false;
    const char *o = memmem(xml + *pos, n - *pos, open, (size_t)on);
    if (o == NULL)
        return false;
    size_t s = (size_t)(o - xml) + (size_t)on;
    const char *c = memmem(xml + s, n - s, close, (size_t)cn);
    if (c == NULL)
        return false;
    *start = s;
    *end = (size_t)(c - xml);
    *pos = *end + (size_t)cn;
    return true;
}

/* Appends code point cp as UTF-8; false for one XML text cannot hold. */
static bool put_utf8(hp_buf_t *out, unsigned long cp)
{
    uint8_t b[4];
    size_t n;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return false;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | cp >> 18), b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
    }
    hp_buf_append(out, b, n);
    return true;
}

/* A numeric character reference's body ("#38", "#x26"). */
static bool decode_numeric(const char *s, size_t n, hp_buf_t *out)
{
    bool hex = n > 1 && (s[1] == 'x' || s[1] == 'X');
    size_t i = hex ? 2 : 1;
    unsigned long cp = 0;
    if (i >= n || n - i > 8)
        return false;
    for (; i < n; i++) {
        int d = (s[i] >= '0' && s[i] <= '9')          ? s[i] - '0'
                : (hex && s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10
                : (hex && s[i] >= 'A' && s[i] <= 'F') ? s[i] - 'A' + 10
                                                      : -1;
        if (d < 0)
            return false;
        cp = cp * (hex ? 16 : 10) + (unsigned long)d;
    }
    return put_utf8(out, cp);
}

/* One entity's body s[0..n) (between '&' and ';'). */
static bool decode_entity(const char *s, size_t n, hp_buf_t *out)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    if (n > 0 && s[0] == '#')
        return decode_numeric(s, n, out);
    for (size_t i = 0; i < HP_ARRAY_LEN(named); i++) {
        if (strlen(named[i].name) == n && memcmp(named[i].name, s, n) == 0) {
            hp_buf_putc(out, named[i].c);
            return true;
        }
    }
    return false;
}

bool hp__xml_decode(const char *s, size_t n, hp_buf_t *out)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t plain = amp ? (size_t)(amp - (s + i)) : n - i;
        hp_buf_append(out, s + i, plain);
        i += plain;
        if (i == n)
            break;
        /* the longest entity body we accept is "#x10FFFF" */
        const char *semi = memchr(s + i + 1, ';', HP_MIN(n - i - 1, (size_t)10));
        if (semi == NULL || !decode_entity(s + i + 1, (size_t)(semi - (s + i + 1)), out))
            return false;
        i = (size_t)(semi - s) + 1;
    }
    return true;
}

static int hexval(char c)
{
    return (c >= '0' && c <= '9')   ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* Undoes encoding-type=url on p[0..n) in place ('+' is a space, %XX a
 * byte); returns the new length, or SIZE_MAX when an escape is bad. */
static size_t url_decode(char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '+') {
            p[o++] = ' ';
        } else if (p[i] != '%') {
            p[o++] = p[i];
        } else {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return SIZE_MAX;
            p[o++] = (char)(hi << 4 | lo);
            i += 2;
        }
    }
    return o;
}

/* Parses a decimal uint64 from s[0..n); false for anything else. */
static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
    *v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(*v, 10, v) ||
            __builtin_add_overflow(*v, (uint64_t)(s[i] - '0'), v))
            return false;
    }
    return true;
}

/* Appends the text xml[ks..ke) as the page's next key (entity- and, with
 * url, %-decoded), of the given size. what names the element in errors. */
static int add_key(const char *xml, size_t ks, size_t ke, bool url, uint64_t size, const char *what,
                   hp__s3_list_page_t *page, hp_err_t *err)
{
    HP_GROW(page->sizes, page->cap, page->count + 1);
    page->offs = hp_xrealloc(page->offs, page->cap * sizeof(*page->offs));
    size_t at = page->keys.len;
    if (!hp__xml_decode(xml + ks, ke - ks, &page->keys))
        return hp_err_set(err, HP_EINVAL, "a <%s> in the listing has a malformed entity", what);
    if (url) {
        size_t nl = url_decode((char *)page->keys.data + at, page->keys.len - at);
        if (nl == SIZE_MAX)
            return hp_err_set(err, HP_EINVAL, "a <%s> in the listing has a malformed %%-escape", what);
        page->keys.len = at + nl;
    }
    if (page->keys.len == at || memchr(page->keys.data + at, 0, page->keys.len - at) != NULL)
        return hp_err_set(err, HP_EINVAL, "a <%s> in the listing is empty or holds a NUL", what);
    hp_buf_putc(&page->keys, '\0');
    page->offs[page->count] = at;
    page->sizes[page->count++] = size;
    return 0;
}

/* Adds one <Contents> element's key and size to page. */
static int add_contents(const char *xml, size_t n, bool url, hp__s3_list_page_t *page, hp_err_t *err)
{
    size_t pos = 0, ks, ke, ss, se;
    uint64_t size;
    if (!hp__xml_next(xml, n, &pos, "Key", &ks, &ke))
        return hp_err_set(err, HP_EINVAL, "an object in the listing has no <Key>");
    pos = 0;
    if (!hp__xml_next(xml, n, &pos, "Size", &ss, &se) || !parse_u64(xml + ss, se - ss, &size))
        return hp_err_set(err, HP_EINVAL, "an object in the listing has no valid <Size>");
    return add_key(xml, ks, ke, url, size, "Key", page, err);
}

/* Adds one <CommonPrefixes> element's prefixes to page (size 0): AWS puts
 * one <Prefix> in each, some servers (s3rver) all of them in one. */
static int add_prefix(const char *xml, size_t n, bool url, hp__s3_list_page_t *page, hp_err_t *err)
{
    size_t pos = 0, ps, pe, found = 0;
    int rc = 0;
    while (rc == 0 && hp__xml_next(xml, n, &pos, "Prefix", &ps, &pe)) {
        rc = add_key(xml, ps, pe, url, 0, "Prefix", page, err);
        found++;
    }
    if (rc == 0 && found == 0)
        return hp_err_set(err, HP_EINVAL, "a <CommonPrefixes> in the listing has no <Prefix>");
    return rc;
}

/* Reads the page's <IsTruncated>, <NextContinuationToken>, <EncodingType>. */
static int parse_trailer(const char *xml, size_t n, hp__s3_list_page_t *page, bool *url, hp_err_t *err)
{
    size_t pos = 0, s, e;
    page->truncated =
        hp__xml_next(xml, n, &pos, "IsTruncated", &s, &e) && e - s == 4 && memcmp(xml + s, "true", 4) == 0;
    pos = 0;
    *url = hp__xml_next(xml, n, &pos, "EncodingType", &s, &e) && e - s == 3 && memcmp(xml + s, "url", 3) == 0;
    pos = 0;
    if (hp__xml_next(xml, n, &pos, "NextContinuationToken", &s, &e) &&
        !hp__xml_decode(xml + s, e - s, &page->token))
        return hp_err_set(err, HP_EINVAL, "the listing's <NextContinuationToken> has a malformed entity");
    hp_buf_cstr(&page->token);
    return 0;
}

int hp__s3_list_parse(const char *xml, size_t n, hp__s3_list_page_t *page, hp_err_t *err)
{
    size_t pos = 0, s, e;
    bool url;
    if (memmem(xml, n, "<ListBucketResult", 17) == NULL)
        return hp_err_set(err, HP_EINVAL, "the answer is not a ListBucketResult");
    int rc = parse_trailer(xml, n, page, &url, err);
    if (page->common_prefixes) {
        while (rc == 0 && hp__xml_next(xml, n, &pos, "CommonPrefixes", &s, &e))
            rc = add_prefix(xml + s, e - s, url, page, err);
        return rc;
    }
    while (rc == 0 && hp__xml_next(xml, n, &pos, "Contents", &s, &e))
        rc = add_contents(xml + s, e - s, url, page, err);
    return rc;
}

void hp__s3_list_page_fini(hp__s3_list_page_t *page)
{
    hp_buf_fini(&page->keys);
    hp_buf_fini(&page->token);
    free(page->sizes);
    free(page->offs);
    memset(page, 0, sizeof(*page));
}

/* Appends element name's decoded text (cut to max bytes) to out. */
static void error_field(const char *xml, size_t len, const char *name, size_t max, hp_buf_t *out)
{
    size_t pos = 0, s, e;
    if (!hp__xml_next(xml, len, &pos, name, &s, &e))
        return;
    hp_buf_t t = HP_BUF_INIT;
    if (hp__xml_decode(xml + s, HP_MIN(e - s, max), &t) || t.len > 0)
        hp_buf_append(out, t.data, HP_MIN(t.len, max));
    hp_buf_fini(&t);
}

void hp__s3_error_text(const char *xml, size_t len, char *buf, size_t n)
{
    hp_buf_t t = HP_BUF_INIT;
    error_field(xml, len, "Code", 64, &t);
    size_t code_len = t.len;
    if (code_len > 0)
        hp_buf_puts(&t, ": ");
    error_field(xml, len, "Message", 200, &t);
    if (t.len == code_len + 2)
        t.len = code_len; /* a code without a message */
    snprintf(buf, n, "%.*s", (int)t.len, t.data ? (const char *)t.data : "");
    hp_buf_fini(&t);
}
