/* Error values, string slices, allocation wrappers, clocks, UTF-8. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hotpath/common.h"

int hp_err_set(hp_err_t *e, int code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    e->detail = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

void hp_err_clear(hp_err_t *e)
{
    e->code = HP_OK;
    e->detail = 0;
    e->msg[0] = '\0';
}

static const struct {
    int code;
    int http;
    const char *connect;
    const char *name;
} err_table[] = {
    {HP_OK, 200, "ok", "ok"},
    {HP_EINVAL, 400, "invalid_argument", "invalid input"},
    {HP_ETOOLARGE, 413, "resource_exhausted", "too large"},
    {HP_EUNSUPPORTED, 422, "invalid_argument", "unsupported"},
    {HP_ELIMIT, 429, "resource_exhausted", "limit reached"},
    {HP_EAUTH, 401, "unauthenticated", "unauthenticated"},
    {HP_ENOTFOUND, 404, "not_found", "not found"},
    {HP_EUNAVAIL, 503, "unavailable", "unavailable"},
    {HP_ETIMEDOUT, 504, "deadline_exceeded", "deadline exceeded"},
    {HP_ENOMEM, 500, "resource_exhausted", "out of memory"},
    {HP_EINTERNAL, 500, "internal", "internal error"},
    {HP_ESLOWBODY, 408, "deadline_exceeded", "request body timeout"},
    {HP_EMETHOD, 405, "unimplemented", "method not allowed"},
    {HP_ECANCELED, 499, "canceled", "canceled"},
    {HP_ESTALE, 503, "unavailable", "stale plan"},
};

static size_t err_index(int code)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(err_table); i++)
        if (err_table[i].code == code)
            return i;
    return 10; /* HP_EINTERNAL */
}

int hp_err_http_status(int code) { return err_table[err_index(code)].http; }
const char *hp_err_connect_code(int code) { return err_table[err_index(code)].connect; }
const char *hp_err_name(int code) { return err_table[err_index(code)].name; }

hp_str_t hp_str_c(const char *s)
{
    hp_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

bool hp_str_eq(hp_str_t a, hp_str_t b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }

bool hp_str_eq_c(hp_str_t a, const char *s) { return hp_str_eq(a, hp_str_c(s)); }

int hp_str_cmp(hp_str_t a, hp_str_t b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c != 0)
        return c;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

static void oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "hotpath: out of memory allocating %zu bytes\n", n);
    if (write(2, msg, (size_t)len) < 0) {
        /* nothing left to do */
    }
    abort();
}

void *hp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *hp_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *hp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *hp_xstrdup(const char *s) { return hp_xstrndup(s, strlen(s)); }

char *hp_xstrndup(const char *s, size_t n)
{
    char *p = hp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void hp_grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    *arr = hp_xrealloc(*arr, c * sz);
    *cap = c;
}

void hp_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

size_t hp_sort_unique_strs(char **v, size_t n)
{
    hp_qsort(v, n, sizeof(char *), cmp_cstr);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (o == 0 || strcmp(v[o - 1], v[i]) != 0)
            v[o++] = v[i];
    return o;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t hp_now_ns(void) { return clock_ns(CLOCK_REALTIME); }
int64_t hp_now_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000; }
int64_t hp_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }

bool hp_uuid_parse(hp_str_t s, uint8_t out[16])
{
    size_t k = 0;
    int hi = -1;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (c == '-')
            continue;
        if (v < 0 || k >= 16)
            return false;
        if (hi < 0) {
            hi = v;
        } else {
            out[k++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return k == 16 && hi < 0;
}

const char *hp_uuid_format(const uint8_t id[16], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 15];
    }
    *p = '\0';
    return buf;
}

const char *hp_fmt_rfc3339(int64_t ns, char *buf, size_t n)
{
    time_t s = (time_t)(ns / 1000000000 - (ns % 1000000000 < 0));
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%lld ns", (long long)ns);
    return buf;
}

void hp_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + HP_MAX(ms, 0) * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Length of the UTF-8 sequence starting at s (≤ n bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return len;
}

bool hp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

size_t hp__utf8_seq(const unsigned char *s, size_t n) { return utf8_seq(s, n); }
