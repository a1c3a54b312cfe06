/* The object store's S3 backend: configuration, URLs (path or virtual-host
 * style, keys encoded as S3 signs them), and the six operations on top of
 * the request engine in objstore_s3req.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore_impl.h"

#define LIST_PAGE_MAX (16u << 20)
#define LIST_PAGES_MAX 1000000 /* a billion keys: a loop bound, not a limit */
#define PUT_MAX (5ull << 30)   /* S3's limit for one PUT */

/* ---- URLs ---- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends s percent-encoded as SigV4 wants it: unreserved bytes as they
 * are, '/' too when keep_slash, every other byte as %XX. */
static void put_encoded(hp_buf_t *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            hp_buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            hp_buf_append(b, e, 3);
        }
    }
}

/* Appends the bucket's base URL: scheme://authority[/base]/bucket or
 * scheme://bucket.authority[/base], without a trailing '/'. */
static void put_bucket_url(const hp__s3_t *s3, hp_buf_t *b)
{
    if (s3->path_style)
        hp_buf_printf(b, "%s://%s%s/%s", s3->scheme, s3->authority, s3->base_path, s3->bucket);
    else
        hp_buf_printf(b, "%s://%s.%s%s", s3->scheme, s3->bucket, s3->authority, s3->base_path);
}

static void object_url(const hp__s3_t *s3, const char *key, hp_buf_t *b)
{
    put_bucket_url(s3, b);
    hp_buf_putc(b, '/');
    put_encoded(b, key, true);
    hp_buf_cstr(b);
}

/* The ListObjectsV2 URL (with delimiter=/ when dirs); parameters sorted
 * by name and strictly encoded, since the query string is signed exactly
 * as sent. */
static void list_url(const hp__s3_t *s3, const char *prefix, const char *token, bool dirs, hp_buf_t *b)
{
    put_bucket_url(s3, b);
    hp_buf_puts(b, s3->path_style ? "?" : "/?");
    if (token && token[0]) {
        hp_buf_puts(b, "continuation-token=");
        put_encoded(b, token, false);
        hp_buf_putc(b, '&');
    }
    if (dirs)
        hp_buf_puts(b, "delimiter=%2F&");
    hp_buf_puts(b, "encoding-type=url&list-type=2&max-keys=1000");
    if (prefix[0]) {
        hp_buf_puts(b, "&prefix=");
        put_encoded(b, prefix, false);
    }
    hp_buf_cstr(b);
}

/* ---- answers ---- */

/* The error for a status the operation does not expect. */
static int status_err(const hp__s3_t *s3, const hp__s3_req_t *req, const hp__s3_resp_t *resp, hp_err_t *err)
{
    char text[320], q[HP__OBJSTORE_QKEY];
    const char *key = req->key ? hp__objstore_quote(req->key, q, sizeof(q)) : "(bucket)";
    hp__s3_error_text((const char *)resp->err_body.data, resp->err_body.len, text, sizeof(text));
    int code = resp->status == 413 ? HP_ETOOLARGE : HP_EINTERNAL;
    if (resp->status == 404 && strncmp(text, "NoSuchBucket", 12) == 0)
        return hp__s3_err(s3, err, code, "objstore s3: %s %s: bucket \"%s\" does not exist", req->op, key,
                          s3->bucket);
    if (resp->status == 404 && req->key)
        return hp__objstore_not_found(err, req->key);
    return hp__s3_err(s3, err, code, "objstore s3: %s %s: HTTP %ld%s%s%s", req->op, key, resp->status,
                      text[0] ? " (" : "", text, text[0] ? ")" : "");
}

/* Runs req and turns any status but 200 into an error. */
static int run(hp__s3_t *s3, const hp__s3_req_t *req, hp__s3_resp_t *resp, hp_err_t *err)
{
    int rc = hp__s3_do(s3, req, resp, err);
    if (rc != 0 || resp->too_large || resp->status == 200)
        return rc;
    return status_err(s3, req, resp, err);
}

/* ---- operations ---- */

static int s3_put(void *be, const char *key, const void *data, size_t len, hp_err_t *err)
{
    hp__s3_t *s3 = be;
    if ((uint64_t)len > PUT_MAX) {
        char q[HP__OBJSTORE_QKEY];
        return hp_err_set(err, HP_ETOOLARGE,
                          "objstore s3: put %s: %zu bytes is more than one PUT takes (5 GiB)",
                          hp__objstore_quote(key, q, sizeof(q)), len);
    }
    hp_buf_t url = HP_BUF_INIT;
    object_url(s3, key, &url);
    hp__s3_req_t req = {.op = "put",
                        .key = key,
                        .method = "PUT",
                        .url = (const char *)url.data,
                        .body = data ? data : (const uint8_t *)"",
                        .body_len = len};
    hp__s3_resp_t resp = {0};
    int rc = run(s3, &req, &resp, err);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&url);
    return rc;
}

static int s3_get(void *be, const char *key, hp_buf_t *out, size_t max_bytes, hp_err_t *err)
{
    hp__s3_t *s3 = be;
    hp_buf_t url = HP_BUF_INIT;
    object_url(s3, key, &url);
    hp__s3_req_t req = {.op = "get",
                        .key = key,
                        .method = "GET",
                        .url = (const char *)url.data,
                        .out = out,
                        .out_limit = max_bytes};
    hp__s3_resp_t resp = {0};
    int rc = run(s3, &req, &resp, err);
    if (rc == 0 && resp.too_large)
        rc = hp__objstore_too_large(err, key, resp.have_length, resp.length, max_bytes);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&url);
    return rc;
}

/* HEAD: *found, and the size when found. */
static int head(hp__s3_t *s3, const char *op, const char *key, bool *found, uint64_t *size, hp_err_t *err)
{
    hp_buf_t url = HP_BUF_INIT;
    object_url(s3, key, &url);
    hp__s3_req_t req = {.op = op, .key = key, .method = "HEAD", .url = (const char *)url.data};
    hp__s3_resp_t resp = {0};
    int rc = hp__s3_do(s3, &req, &resp, err);
    *found = rc == 0 && resp.status == 200;
    *size = resp.have_length ? resp.length : 0;
    if (rc == 0 && resp.status != 200 && resp.status != 404)
        rc = status_err(s3, &req, &resp, err);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&url);
    return rc;
}

static int s3_exists(void *be, const char *key, bool *yes, hp_err_t *err)
{
    uint64_t size;
    return head(be, "exists", key, yes, &size, err);
}

/* len == 0: S3 has no empty range, so ask for the size instead. */
static int empty_range(hp__s3_t *s3, const char *key, uint64_t off, hp_buf_t *out, hp_err_t *err)
{
    bool found;
    uint64_t size;
    hp_buf_reset(out);
    int rc = head(s3, "get_range", key, &found, &size, err);
    if (rc == 0 && !found)
        return hp__objstore_not_found(err, key);
    if (rc == 0 && off > size)
        return hp__objstore_short(err, key, off, 0, true, size);
    return rc;
}

/* Checks a ranged answer: 206 with exactly len bytes (a 200 counts when
 * the range was the whole object). */
static int check_range(hp__s3_t *s3, const hp__s3_req_t *req, const hp__s3_resp_t *resp, uint64_t off,
                       uint64_t len, hp_err_t *err)
{
    if (resp->status == 416 || (resp->status == 206 && !resp->too_large && req->out->len < len))
        return hp__objstore_short(err, req->key, off, len, resp->have_total, resp->total);
    if (resp->status == 206 && !resp->too_large)
        return 0;
    if (resp->status == 200 && off == 0 && !resp->too_large && req->out->len == len)
        return 0;
    if (resp->status == 200 || resp->status == 206) {
        char q[HP__OBJSTORE_QKEY];
        return hp__s3_err(s3, err, HP_EINTERNAL,
                          "objstore s3: get_range %s: the server ignored the Range header (HTTP %ld)",
                          hp__objstore_quote(req->key, q, sizeof(q)), resp->status);
    }
    return status_err(s3, req, resp, err);
}

static int s3_get_range(void *be, const char *key, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    hp__s3_t *s3 = be;
    if (len == 0)
        return empty_range(s3, key, off, out, err);
    char range[64];
    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    hp_buf_t url = HP_BUF_INIT;
    object_url(s3, key, &url);
    hp__s3_req_t req = {.op = "get_range",
                        .key = key,
                        .method = "GET",
                        .url = (const char *)url.data,
                        .range = range,
                        .out = out,
                        .out_limit = (size_t)len};
    hp__s3_resp_t resp = {0};
    int rc = hp__s3_do(s3, &req, &resp, err);
    if (rc == 0)
        rc = check_range(s3, &req, &resp, off, len, err);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&url);
    return rc;
}

static int s3_delete(void *be, const char *key, hp_err_t *err)
{
    hp__s3_t *s3 = be;
    hp_buf_t url = HP_BUF_INIT;
    object_url(s3, key, &url);
    hp__s3_req_t req = {.op = "delete", .key = key, .method = "DELETE", .url = (const char *)url.data};
    hp__s3_resp_t resp = {0};
    int rc = hp__s3_do(s3, &req, &resp, err);
    /* S3 answers 204 whether or not the key existed; others say 404 */
    bool no_bucket =
        resp.err_body.len > 0 && memmem(resp.err_body.data, resp.err_body.len, "NoSuchBucket", 12);
    bool ok = resp.status == 204 || resp.status == 200 || (resp.status == 404 && !no_bucket);
    if (rc == 0 && !ok)
        rc = status_err(s3, &req, &resp, err);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&url);
    return rc;
}

/* ---- listing ---- */

/* Fetches and parses one page; token is "" for the first. With
 * page->common_prefixes, lists "directories" (delimiter "/"). */
static int list_page(hp__s3_t *s3, const char *prefix, const char *token, hp__s3_list_page_t *page,
                     hp_err_t *err)
{
    hp_buf_t url = HP_BUF_INIT, body = HP_BUF_INIT;
    char q[HP__OBJSTORE_QKEY];
    list_url(s3, prefix, token, page->common_prefixes, &url);
    hp__s3_req_t req = {.op = "list",
                        .key = prefix,
                        .method = "GET",
                        .url = (const char *)url.data,
                        .out = &body,
                        .out_limit = LIST_PAGE_MAX};
    hp__s3_resp_t resp = {0};
    int rc = run(s3, &req, &resp, err);
    if (rc == 0 && resp.too_large)
        rc = hp__s3_err(s3, err, HP_EINTERNAL, "objstore s3: list %s: a page is over %u bytes",
                        hp__objstore_quote(prefix, q, sizeof(q)), LIST_PAGE_MAX);
    hp_err_t why;
    if (rc == 0 && hp__s3_list_parse((const char *)body.data, body.len, page, &why) != 0)
        rc = hp__s3_err(s3, err, HP_EINTERNAL, "objstore s3: list %s: bad answer: %s",
                        hp__objstore_quote(prefix, q, sizeof(q)), why.msg);
    hp_buf_fini(&resp.err_body);
    hp_buf_fini(&body);
    hp_buf_fini(&url);
    return rc;
}

/* Calls fn for each key of a page. */
static int list_emit(const hp__s3_list_page_t *page, hp_objstore_list_fn fn, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; i < page->count && rc == 0; i++)
        rc = fn(ctx, (const char *)page->keys.data + page->offs[i], page->sizes[i]);
    return rc;
}

/* Whether the page asks for another one, with a token that moves on. */
static int list_next(const hp__s3_t *s3, const char *prefix, const hp__s3_list_page_t *page,
                     const hp_buf_t *prev, bool *more, hp_err_t *err)
{
    char q[HP__OBJSTORE_QKEY];
    *more = page->truncated;
    if (!*more)
        return 0;
    hp__objstore_quote(prefix, q, sizeof(q));
    if (page->token.len == 0)
        return hp__s3_err(s3, err, HP_EINTERNAL,
                          "objstore s3: list %s: a truncated page without a NextContinuationToken", q);
    if (prev->len == page->token.len && memcmp(prev->data, page->token.data, prev->len) == 0)
        return hp__s3_err(s3, err, HP_EINTERNAL,
                          "objstore s3: list %s: the server repeated a continuation token", q);
    return 0;
}

/* Lists objects, or with dirs the common prefixes, page after page. */
static int list_all(hp__s3_t *s3, const char *prefix, bool dirs, hp_objstore_list_fn fn, void *ctx,
                    hp_err_t *err)
{
    hp_buf_t token = HP_BUF_INIT;
    bool more = true;
    int rc = 0;
    hp_buf_cstr(&token);
    for (int pages = 0; rc == 0 && more && pages < LIST_PAGES_MAX; pages++) {
        hp__s3_list_page_t page = {.common_prefixes = dirs};
        rc = list_page(s3, prefix, (const char *)token.data, &page, err);
        if (rc == 0)
            rc = list_emit(&page, fn, ctx);
        if (rc == 0)
            rc = list_next(s3, prefix, &page, &token, &more, err);
        hp_buf_reset(&token);
        hp_buf_append(&token, page.token.data, page.token.len);
        hp_buf_cstr(&token);
        hp__s3_list_page_fini(&page);
    }
    hp_buf_fini(&token);
    if (rc == 0 && more)
        rc = hp__s3_err(s3, err, HP_EINTERNAL, "objstore s3: list: more than %d pages", LIST_PAGES_MAX);
    return rc;
}

static int s3_list(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err)
{
    return list_all(be, prefix, false, fn, ctx, err);
}

static int s3_list_prefixes(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err)
{
    return list_all(be, prefix, true, fn, ctx, err);
}

/* ---- configuration ---- */

static void put_field(hp_buf_t *out, const char *name, const char *v)
{
    hp_buf_printf(out, "  %s: ", name);
    hp_buf_put_json_str(out, v, strlen(v));
    hp_buf_putc(out, '\n');
}

static void s3_describe(const void *be, hp_buf_t *out)
{
    const hp__s3_t *s3 = be;
    hp_buf_puts(out, "s3:\n");
    put_field(out, "endpoint", s3->endpoint);
    put_field(out, "region", s3->region);
    put_field(out, "bucket", s3->bucket);
    put_field(out, "access_key_id", s3->access_key_id);
    put_field(out, "secret_access_key", s3->secret[0] ? "********" : "");
    hp_buf_printf(out, "  path_style: %s\n  insecure: %s\n", s3->path_style ? "true" : "false",
                  s3->insecure ? "true" : "false");
    hp_buf_printf(out,
                  "  timeout_ms: %lld\n  max_retries: %d\n  min_backoff_ms: %lld\n  max_backoff_ms: %lld\n",
                  (long long)s3->timeout_ms, s3->max_retries, (long long)s3->min_backoff_ms,
                  (long long)s3->max_backoff_ms);
}

static void s3_free(void *be)
{
    hp__s3_t *s3 = be;
    hp__s3_pool_fini(s3);
    if (s3->mu_ok)
        pthread_mutex_destroy(&s3->mu);
    char *strs[] = {s3->endpoint, s3->scheme,        s3->authority, s3->base_path, s3->region,
                    s3->bucket,   s3->access_key_id, s3->secret,    s3->sigv4};
    for (size_t i = 0; i < HP_ARRAY_LEN(strs); i++)
        free(strs[i]);
    free(s3);
}

/* Splits endpoint into scheme, authority and base path. */
static int parse_endpoint(hp__s3_t *s3, const char *ep, hp_err_t *err)
{
    const char *rest = NULL;
    if (strchr(ep, '@'))
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: the endpoint must not hold credentials ('@'): set "
                          "access_key_id and secret_access_key instead");
    if (strncmp(ep, "https://", 8) == 0)
        rest = ep + 8, s3->scheme = hp_xstrdup("https");
    else if (strncmp(ep, "http://", 7) == 0)
        rest = ep + 7, s3->scheme = hp_xstrdup("http");
    else
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: endpoint \"%.200s\" must start with https:// or http://", ep);
    if (!s3->insecure && strcmp(s3->scheme, "http") == 0)
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: endpoint \"%.200s\" is plain http: set insecure to allow it", ep);
    size_t an = strcspn(rest, "/");
    if (an == 0 || strcspn(rest, "?# \t\r\n") < strlen(rest))
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: endpoint \"%.200s\" must be scheme://host[:port][/path] "
                          "(no credentials, query or spaces)",
                          ep);
    s3->authority = hp_xstrndup(rest, an);
    size_t pn = strlen(rest + an);
    while (pn > 0 && rest[an + pn - 1] == '/')
        pn--;
    s3->base_path = hp_xstrndup(rest + an, pn);
    return 0;
}

/* Bucket names: S3's rules (3–63 of a-z 0-9 . -); path style also takes
 * the legacy upper case and '_'. */
static int check_bucket(const hp__s3_t *s3, const char *b, hp_err_t *err)
{
    size_t n = b ? strlen(b) : 0;
    const char *ok = s3->path_style ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"
                                    : "abcdefghijklmnopqrstuvwxyz0123456789.-";
    if (n < 3 || n > 63 || strspn(b, ok) != n)
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: bucket \"%.80s\" is not a valid bucket name (3-63 "
                          "characters of a-z, 0-9, '.' and '-')",
                          b ? b : "");
    return 0;
}

static int check_settings(const hp_objstore_s3_config_t *c, const char *region, hp_err_t *err)
{
    if (c->endpoint == NULL || c->endpoint[0] == '\0')
        return hp_err_set(err, HP_EINVAL, "objstore s3: endpoint is not set");
    if (strlen(region) > 64 || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(region))
        return hp_err_set(err, HP_EINVAL, "objstore s3: region \"%.80s\" is not a region name", region);
    if (c->access_key_id == NULL || c->access_key_id[0] == '\0' || c->secret_access_key == NULL ||
        c->secret_access_key[0] == '\0')
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: access_key_id and secret_access_key must both be set");
    if (c->timeout_ms < 0 || c->min_backoff_ms < 0 || c->max_backoff_ms < 0)
        return hp_err_set(err, HP_EINVAL,
                          "objstore s3: timeout_ms, min_backoff_ms and max_backoff_ms must not "
                          "be negative");
    if (c->max_retries > 100)
        return hp_err_set(err, HP_EINVAL, "objstore s3: max_retries %d is more than 100", c->max_retries);
    return 0;
}

/* Copies the settings, with defaults for the zero values. */
static void copy_settings(hp__s3_t *s3, const hp_objstore_s3_config_t *c, const char *region)
{
    size_t n = strlen(c->endpoint);
    while (n > 0 && c->endpoint[n - 1] == '/')
        n--;
    s3->endpoint = hp_xstrndup(c->endpoint, n);
    s3->region = hp_xstrdup(region);
    s3->bucket = hp_xstrdup(c->bucket);
    s3->access_key_id = hp_xstrdup(c->access_key_id);
    s3->secret = hp_xstrdup(c->secret_access_key);
    size_t sn = strlen(region) + 16;
    s3->sigv4 = hp_xmalloc(sn);
    snprintf(s3->sigv4, sn, "aws:amz:%s:s3", region);
    s3->path_style = c->path_style;
    s3->insecure = c->insecure;
    s3->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 30000;
    s3->max_retries = c->max_retries == 0 ? 5 : HP_MAX(c->max_retries, 0);
    s3->min_backoff_ms = c->min_backoff_ms > 0 ? c->min_backoff_ms : 100;
    s3->max_backoff_ms = HP_MAX(c->max_backoff_ms > 0 ? c->max_backoff_ms : 3000, s3->min_backoff_ms);
}

int hp__objstore_s3_new(const hp_objstore_config_t *cfg, void **out, hp_err_t *err)
{
    const hp_objstore_s3_config_t *c = &cfg->s3;
    const char *region = c->region && c->region[0] ? c->region : "us-east-1";
    hp__s3_t *s3 = hp_xcalloc(1, sizeof(*s3));
    s3->path_style = c->path_style;
    s3->insecure = c->insecure;
    int rc = check_settings(c, region, err);
    if (rc == 0)
        rc = check_bucket(s3, c->bucket, err);
    if (rc == 0)
        rc = parse_endpoint(s3, c->endpoint, err);
    if (rc == 0 && pthread_mutex_init(&s3->mu, NULL) != 0)
        rc = hp_err_set(err, HP_ENOMEM, "objstore s3: cannot create a mutex");
    if (rc != 0) {
        s3_free(s3);
        return rc;
    }
    s3->mu_ok = true;
    copy_settings(s3, c, region);
    hp__s3_global_init();
    *out = s3;
    return 0;
}

const hp__objstore_ops_t hp__objstore_s3_ops = {
    .name = "s3",
    .put = s3_put,
    .get = s3_get,
    .get_range = s3_get_range,
    .list = s3_list,
    .list_prefixes = s3_list_prefixes,
    .del = s3_delete,
    .exists = s3_exists,
    .describe = s3_describe,
    .free = s3_free,
};
