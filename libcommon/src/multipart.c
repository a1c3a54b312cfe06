/* multipart/form-data (RFC 7578, RFC 2046 §5.1): the boundary from
 * Content-Type, and a zero-copy split of the body into named parts. */
#include <string.h>

#include "hotpath/multipart.h"

#define MAX_BOUNDARY 70       /* RFC 2046 */
#define MAX_HEADER_BLOCK 8192 /* per part */

/* ASCII lower case. */
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Linear white space inside a header line. */
static bool blank(char c) { return c == ' ' || c == '\t'; }

/* True when s starts with the lower-case prefix, ignoring case. */
static bool has_prefix_ci(hp_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s.n < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != prefix[i])
            return false;
    return true;
}

/* True when s equals the lower-case literal lit, ignoring case. */
static bool eq_ci(hp_str_t s, const char *lit)
{
    return s.n == strlen(lit) && has_prefix_ci(s, lit);
}

/* s without surrounding blanks. */
static hp_str_t trim(hp_str_t s)
{
    while (s.n > 0 && blank(s.p[0]))
        s.p++, s.n--;
    while (s.n > 0 && blank(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* The first occurrence of needle in hay, or -1. */
static long find(hp_str_t hay, size_t from, hp_str_t needle)
{
    if (needle.n == 0 || from > hay.n || hay.n - from < needle.n)
        return -1;
    const char *p = hay.p + from, *last = hay.p + hay.n - needle.n;
    while (p <= last) {
        p = memchr(p, needle.p[0], (size_t)(last - p) + 1);
        if (p == NULL)
            return -1;
        if (memcmp(p, needle.p, needle.n) == 0)
            return (long)(p - hay.p);
        p++;
    }
    return -1;
}

/* Reads one "; name=value" parameter from *s (value quoted or a token,
 * empty when there is no '='), advancing *s past it. Returns false when
 * none is left. A quoted value is
 * returned as written between the quotes (escapes are not undone). */
static bool next_param(hp_str_t *s, hp_str_t *name, hp_str_t *value)
{
    const char *semi = s->n > 0 ? memchr(s->p, ';', s->n) : NULL;
    if (semi == NULL)
        return false;
    const char *p = semi + 1, *end = s->p + s->n, *q = p;
    while (q < end && *q != '=' && *q != ';')
        q++;
    *name = trim((hp_str_t){p, (size_t)(q - p)});
    *value = (hp_str_t){q, 0};
    if (q == end || *q == ';') { /* a parameter without a value */
        *s = (hp_str_t){q, (size_t)(end - q)};
        return true;
    }
    p = q + 1;
    while (p < end && blank(*p))
        p++;
    const char *v = p;
    if (p < end && *p == '"') {
        v = ++p;
        while (p < end && *p != '"')
            p += (*p == '\\' && p + 1 < end) ? 2 : 1;
        *value = (hp_str_t){v, (size_t)(HP_MIN(p, end) - v)};
        p = p < end ? p + 1 : end;
    } else {
        while (p < end && *p != ';' && !blank(*p))
            p++;
        *value = (hp_str_t){v, (size_t)(p - v)};
    }
    *s = (hp_str_t){p, (size_t)(end - p)};
    return true;
}

/* The value of parameter pname in a header value's parameter list. */
static bool find_param(hp_str_t header, const char *pname, hp_str_t *value)
{
    hp_str_t name;
    while (next_param(&header, &name, value))
        if (eq_ci(name, pname))
            return true;
    return false;
}

/* A boundary is 1–70 characters, none a control character or a quote, and
 * does not end in a space (RFC 2046 bchars, leniently). */
static bool boundary_valid(hp_str_t b)
{
    if (b.n == 0 || b.n > MAX_BOUNDARY || b.p[b.n - 1] == ' ')
        return false;
    for (size_t i = 0; i < b.n; i++)
        if ((unsigned char)b.p[i] < 0x20 || b.p[i] == '"' || b.p[i] == 0x7f || b.p[i] == '\\')
            return false;
    return true;
}

int hp_multipart_boundary(hp_str_t content_type, hp_str_t *boundary, hp_err_t *err)
{
    hp_str_t ct = trim(content_type);
    if (!has_prefix_ci(ct, "multipart/"))
        return hp_err_set(err, HP_EINVAL, "multipart: Content-Type \"%.*s\" is not multipart",
                          (int)HP_MIN(ct.n, 100), ct.p ? ct.p : "");
    if (!find_param(ct, "boundary", boundary))
        return hp_err_set(err, HP_EINVAL, "multipart: no boundary in Content-Type");
    if (!boundary_valid(*boundary))
        return hp_err_set(err, HP_EINVAL,
                          "multipart: invalid boundary in Content-Type (want 1 to %d characters, "
                          "got %zu)",
                          MAX_BOUNDARY, boundary->n);
    return 0;
}

/* Fills part from one header line ("Name: value"); other headers are
 * ignored. */
static void part_header(hp_str_t line, hp_multipart_part_t *part)
{
    const char *colon = memchr(line.p, ':', line.n);
    if (colon == NULL)
        return;
    hp_str_t name = trim((hp_str_t){line.p, (size_t)(colon - line.p)});
    hp_str_t value = trim((hp_str_t){colon + 1, (size_t)(line.p + line.n - colon - 1)});
    if (eq_ci(name, "content-type")) {
        part->content_type = value;
    } else if (eq_ci(name, "content-disposition")) {
        if (!find_param(value, "name", &part->name))
            part->name = (hp_str_t){NULL, 0};
        if (!find_param(value, "filename", &part->filename))
            part->filename = (hp_str_t){NULL, 0};
    }
}

/* Parses the header block hdr (lines separated by CRLF) of part number
 * idx. */
static int part_headers(hp_str_t hdr, size_t idx, hp_multipart_part_t *part, hp_err_t *err)
{
    memset(part, 0, sizeof(*part));
    size_t pos = 0;
    while (pos < hdr.n) {
        long eol = find(hdr, pos, HP_STR("\r\n"));
        size_t stop = eol < 0 ? hdr.n : (size_t)eol;
        part_header((hp_str_t){hdr.p + pos, stop - pos}, part);
        pos = stop + 2;
    }
    if (part->name.p == NULL)
        return hp_err_set(err, HP_EINVAL,
                          "multipart: part %zu has no name in its Content-Disposition", idx + 1);
    return 0;
}

/* Parser state: the body, the delimiter "\r\n--boundary" (the first one may
 * come without its CRLF, at the very start), and the cursor. */
typedef struct mp {
    hp_str_t body;
    hp_str_t delim; /* "\r\n--" boundary */
    size_t pos;
    hp_err_t *err;
} mp_t;

/* After a delimiter at end (the offset just past it): 1 when it closes the
 * body ("--"), 0 when a part follows (optional blanks then CRLF, the cursor
 * moved to the part's headers), -1 when the bytes are not a delimiter line. */
static int after_delim(mp_t *m, size_t end)
{
    hp_str_t b = m->body;
    if (end + 2 <= b.n && b.p[end] == '-' && b.p[end + 1] == '-')
        return 1;
    while (end < b.n && blank(b.p[end]))
        end++;
    if (end + 2 <= b.n && b.p[end] == '\r' && b.p[end + 1] == '\n') {
        m->pos = end + 2;
        return 0;
    }
    return -1;
}

/* Finds the next delimiter line from offset from. Returns its start (the
 * CRLF) and sets *kind as after_delim does, or -1 when there is none. */
static long next_delim(mp_t *m, size_t from, int *kind)
{
    for (;;) {
        long at = find(m->body, from, m->delim);
        if (at < 0)
            return -1;
        *kind = after_delim(m, (size_t)at + m->delim.n);
        if (*kind >= 0)
            return at;
        from = (size_t)at + 1; /* the boundary text inside data, not a line */
    }
}

/* Moves to the first part: the body may open with the delimiter itself or
 * with a preamble ending in CRLF and the delimiter. */
static int first_delim(mp_t *m, int *kind)
{
    hp_str_t open = {m->delim.p + 2, m->delim.n - 2};
    if (m->body.n >= open.n && memcmp(m->body.p, open.p, open.n) == 0) {
        *kind = after_delim(m, open.n);
        if (*kind >= 0)
            return 0;
    }
    if (next_delim(m, 0, kind) < 0)
        return hp_err_set(m->err, HP_EINVAL, "multipart: boundary not found in the body");
    return 0;
}

/* Reads the part at the cursor (headers, then data up to the next
 * delimiter) into part; *kind says what follows it. */
static int read_part(mp_t *m, size_t idx, hp_multipart_part_t *part, int *kind)
{
    hp_str_t rest = {m->body.p + m->pos, m->body.n - m->pos};
    size_t hdr_len;
    if (rest.n >= 2 && rest.p[0] == '\r' && rest.p[1] == '\n') {
        hdr_len = 0; /* no headers at all */
    } else {
        hp_str_t window = {rest.p, HP_MIN(rest.n, MAX_HEADER_BLOCK + 4)};
        long end = find(window, 0, HP_STR("\r\n\r\n"));
        if (end < 0 && rest.n > MAX_HEADER_BLOCK + 4)
            return hp_err_set(m->err, HP_EINVAL, "multipart: headers of part %zu exceed %d bytes",
                              idx + 1, MAX_HEADER_BLOCK);
        if (end < 0)
            return hp_err_set(m->err, HP_EINVAL, "multipart: part %zu is truncated in its headers",
                              idx + 1);
        hdr_len = (size_t)end + 2;
    }
    if (part_headers((hp_str_t){rest.p, hdr_len}, idx, part, m->err) != 0)
        return HP_EINVAL;
    size_t data = m->pos + hdr_len + 2;
    long at = next_delim(m, data, kind);
    if (at < 0)
        return hp_err_set(m->err, HP_EINVAL,
                          "multipart: part %zu is truncated (no closing boundary)", idx + 1);
    part->data = (hp_str_t){m->body.p + data, (size_t)at - data};
    return 0;
}

int hp_multipart_parse(hp_str_t boundary, hp_str_t body, hp_multipart_part_t *parts,
                       size_t max_parts, size_t *n_parts, hp_err_t *err)
{
    char delim[MAX_BOUNDARY + 4];
    *n_parts = 0;
    if (!boundary_valid(boundary))
        return hp_err_set(err, HP_EINVAL, "multipart: invalid boundary (want 1 to %d characters)",
                          MAX_BOUNDARY);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary.p, boundary.n);
    mp_t m = {body, {delim, boundary.n + 4}, 0, err};
    int kind;
    if (first_delim(&m, &kind) != 0)
        return HP_EINVAL;
    while (kind == 0) {
        if (*n_parts == max_parts)
            return hp_err_set(err, HP_EINVAL, "multipart: more than %zu parts", max_parts);
        if (read_part(&m, *n_parts, &parts[*n_parts], &kind) != 0)
            return HP_EINVAL;
        (*n_parts)++;
    }
    return 0;
}

const hp_multipart_part_t *hp_multipart_find(const hp_multipart_part_t *parts, size_t n,
                                             const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (hp_str_eq_c(parts[i].name, name))
            return &parts[i];
    return NULL;
}
