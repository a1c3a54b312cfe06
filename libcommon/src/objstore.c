/* The object store's front: key checks, the backend table, and dispatch.
 * The backends are objstore_fs.c and objstore_s3.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "objstore_impl.h"

struct hp_objstore {
    const hp__objstore_ops_t *ops;
    void *be;
};

typedef struct backend {
    const char *name;
    int (*make)(const hp_objstore_config_t *cfg, void **out, hp_err_t *err);
    const hp__objstore_ops_t *ops;
} backend_t;

static const backend_t backends[] = {
    {"filesystem", hp__objstore_fs_new, &hp__objstore_fs_ops},
    {"s3", hp__objstore_s3_new, &hp__objstore_s3_ops},
};

/* Appends one byte of s to buf at *o as text safe for a message; returns
 * the number of input bytes consumed. */
static size_t quote_one(const unsigned char *s, size_t left, char *buf, size_t *o)
{
    size_t seq = s[0] >= 0x80 ? hp__utf8_seq(s, left) : 0;
    if (seq > 0) {
        memcpy(buf + *o, s, seq);
        *o += seq;
        return seq;
    }
    if (s[0] == '"' || s[0] == '\\')
        *o += (size_t)sprintf(buf + *o, "\\%c", s[0]);
    else if (s[0] < 0x20 || s[0] >= 0x7f)
        *o += (size_t)sprintf(buf + *o, "\\x%02x", s[0]);
    else
        buf[(*o)++] = (char)s[0];
    return 1;
}

const char *hp__objstore_quote(const char *s, char *buf, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0, o = 0;
    buf[o++] = '"';
    /* 4 bytes per input byte at most, plus room for `..."` and the NUL */
    while (i < len && o + 4 + 5 < n)
        i += quote_one(p + i, len - i, buf, &o);
    if (i < len)
        o += (size_t)sprintf(buf + o, "...");
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

int hp__objstore_not_found(hp_err_t *err, const char *key)
{
    char q[HP__OBJSTORE_QKEY];
    return hp_err_set(err, HP_ENOTFOUND, "object %s not found", hp__objstore_quote(key, q, sizeof(q)));
}

int hp__objstore_too_large(hp_err_t *err, const char *key, bool known, uint64_t size, size_t max)
{
    char q[HP__OBJSTORE_QKEY];
    hp__objstore_quote(key, q, sizeof(q));
    if (known)
        return hp_err_set(err, HP_ETOOLARGE, "object %s is %llu bytes, more than the %zu allowed", q,
                          (unsigned long long)size, max);
    return hp_err_set(err, HP_ETOOLARGE, "object %s is more than the %zu bytes allowed", q, max);
}

int hp__objstore_short(hp_err_t *err, const char *key, uint64_t off, uint64_t len, bool known, uint64_t size)
{
    char q[HP__OBJSTORE_QKEY], has[48] = "";
    if (known)
        snprintf(has, sizeof(has), ": it has %llu", (unsigned long long)size);
    return hp_err_set(err, HP_EINVAL, "object %s is shorter than %llu bytes (range %llu+%llu)%s",
                      hp__objstore_quote(key, q, sizeof(q)), (unsigned long long)off + len,
                      (unsigned long long)off, (unsigned long long)len, has);
}

/* The reason a segment s[0..n) of a key is not allowed, or NULL. */
static const char *bad_segment(const char *s, size_t n)
{
    if (n == 0)
        return "has an empty segment (\"//\")";
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return "has a \".\" or \"..\" segment";
    size_t tn = sizeof(HP__OBJSTORE_TMP_PREFIX) - 1;
    if (n >= tn && memcmp(s, HP__OBJSTORE_TMP_PREFIX, tn) == 0)
        return "has a segment starting with \"" HP__OBJSTORE_TMP_PREFIX "\" (reserved for temporary files)";
    return NULL;
}

/* The reason key (len n) breaks the rules, or NULL. is_prefix: a listing
 * prefix, which may be empty, end with '/' or end in a partial segment. */
static const char *bad_key(const char *key, size_t n, bool is_prefix)
{
    if (n == 0 && !is_prefix)
        return "is empty";
    if (n > HP_OBJSTORE_KEY_MAX)
        return "is longer than 1024 bytes";
    if (!hp_utf8_valid(key, n))
        return "is not valid UTF-8";
    if (key[0] == '/')
        return "starts with '/'";
    if (!is_prefix && key[n - 1] == '/')
        return "ends with '/'";
    for (size_t start = 0; start < n;) {
        const char *slash = memchr(key + start, '/', n - start);
        size_t end = slash ? (size_t)(slash - key) : n;
        /* a prefix's last, unfinished segment names no directory */
        const char *why = (is_prefix && slash == NULL) ? NULL : bad_segment(key + start, end - start);
        if (why)
            return why;
        start = end + 1;
    }
    return NULL;
}

static int check_name(const char *key, bool is_prefix, hp_err_t *err)
{
    const char *what = is_prefix ? "listing prefix" : "object key";
    if (key == NULL)
        return hp_err_set(err, HP_EINVAL, "%s is missing", what);
    size_t n = strnlen(key, HP_OBJSTORE_KEY_MAX + 1);
    const char *why = bad_key(key, n, is_prefix);
    if (why == NULL)
        return 0;
    char q[HP__OBJSTORE_QKEY];
    return hp_err_set(err, HP_EINVAL, "invalid %s %s: it %s", what, hp__objstore_quote(key, q, sizeof(q)),
                      why);
}

int hp_objstore_key_check(const char *key, hp_err_t *err)
{
    return check_name(key, false, err);
}

static const backend_t *find_backend(const char *name)
{
    for (size_t i = 0; name && i < HP_ARRAY_LEN(backends); i++)
        if (strcmp(backends[i].name, name) == 0)
            return &backends[i];
    return NULL;
}

int hp_objstore_new(const hp_objstore_config_t *cfg, hp_objstore_t **out, hp_err_t *err)
{
    *out = NULL;
    const backend_t *b = find_backend(cfg->backend);
    if (b == NULL)
        return hp_err_set(err, HP_EINVAL, "objstore: unknown backend \"%.64s\": use \"filesystem\" or \"s3\"",
                          cfg->backend ? cfg->backend : "");
    void *be = NULL;
    int rc = b->make(cfg, &be, err);
    if (rc != 0)
        return rc;
    hp_objstore_t *s = hp_xcalloc(1, sizeof(*s));
    s->ops = b->ops;
    s->be = be;
    *out = s;
    return 0;
}

void hp_objstore_free(hp_objstore_t *s)
{
    if (s == NULL)
        return;
    if (s->be)
        s->ops->free(s->be);
    free(s);
}

int hp_objstore_put(hp_objstore_t *s, const char *key, const void *data, size_t len, hp_err_t *err)
{
    int rc = check_name(key, false, err);
    return rc ? rc : s->ops->put(s->be, key, data, len, err);
}

int hp_objstore_get(hp_objstore_t *s, const char *key, hp_buf_t *out, size_t max_bytes, hp_err_t *err)
{
    int rc = check_name(key, false, err);
    return rc ? rc : s->ops->get(s->be, key, out, max_bytes, err);
}

int hp_objstore_get_range(hp_objstore_t *s, const char *key, uint64_t off, uint64_t len, hp_buf_t *out,
                          hp_err_t *err)
{
    int rc = check_name(key, false, err);
    if (rc != 0)
        return rc;
    if (off > UINT64_MAX - len || len > SIZE_MAX / 2)
        return hp__objstore_short(err, key, off, len, false, 0);
    return s->ops->get_range(s->be, key, off, len, out, err);
}

int hp_objstore_list(hp_objstore_t *s, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err)
{
    int rc = check_name(prefix, true, err);
    return rc ? rc : s->ops->list(s->be, prefix, fn, ctx, err);
}

int hp_objstore_list_prefixes(hp_objstore_t *s, const char *prefix, hp_objstore_list_fn fn, void *ctx,
                              hp_err_t *err)
{
    int rc = check_name(prefix, true, err);
    return rc ? rc : s->ops->list_prefixes(s->be, prefix, fn, ctx, err);
}

int hp_objstore_delete(hp_objstore_t *s, const char *key, hp_err_t *err)
{
    int rc = check_name(key, false, err);
    return rc ? rc : s->ops->del(s->be, key, err);
}

int hp_objstore_exists(hp_objstore_t *s, const char *key, bool *yes, hp_err_t *err)
{
    *yes = false;
    int rc = check_name(key, false, err);
    return rc ? rc : s->ops->exists(s->be, key, yes, err);
}

void hp_objstore_describe(const hp_objstore_t *s, hp_buf_t *out)
{
    hp_buf_printf(out, "backend: %s\n", s->ops->name);
    s->ops->describe(s->be, out);
}
