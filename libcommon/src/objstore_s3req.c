/* The S3 backend's request engine: one libcurl easy handle per call, taken
 * from a small pool so connections are reused, SigV4 signing by libcurl
 * with the payload's SHA-256 computed here, bounded response bodies, and
 * retries with exponential backoff and jitter. */
#include <curl/curl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objstore_impl.h"

#define ERR_BODY_MAX ((size_t)64 << 10)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void hp__s3_global_init(void)
{
    pthread_once(&global_once, global_init);
}

/* Replaces every occurrence of secret in msg (capacity cap) with
 * asterisks: "********", or as many as the secret is long when the message
 * has no room to grow. */
static void mask_secret(char *msg, size_t cap, const char *secret)
{
    size_t sn = secret ? strlen(secret) : 0;
    char *from = msg, *at;
    if (sn == 0)
        return;
    while ((at = strstr(from, secret)) != NULL) {
        size_t tail = strlen(at + sn) + 1, mask = 8;
        if ((size_t)(at - msg) + mask + tail > cap)
            mask = HP_MIN(sn, (size_t)8);
        memmove(at + mask, at + sn, tail);
        memset(at, '*', mask);
        from = at + mask; /* the mask itself may contain the secret ("*") */
    }
}

int hp__s3_err(const hp__s3_t *s3, hp_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    err->detail = 0;
    mask_secret(err->msg, sizeof(err->msg), s3->secret);
    return code;
}

/* ---- the handle pool ---- */

static CURL *pool_take(hp__s3_t *s3)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s3->mu);
    if (s3->n_idle > 0)
        h = s3->idle[--s3->n_idle];
    pthread_mutex_unlock(&s3->mu);
    if (h == NULL)
        return curl_easy_init();
    curl_easy_reset(h); /* keeps the handle's open connections */
    return h;
}

static void pool_give(hp__s3_t *s3, CURL *h)
{
    pthread_mutex_lock(&s3->mu);
    if (s3->n_idle < HP_ARRAY_LEN(s3->idle)) {
        s3->idle[s3->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s3->mu);
    if (h)
        curl_easy_cleanup(h);
}

void hp__s3_pool_fini(hp__s3_t *s3)
{
    for (size_t i = 0; i < s3->n_idle; i++)
        curl_easy_cleanup(s3->idle[i]);
    s3->n_idle = 0;
}

/* ---- one attempt ---- */

/* The state of one attempt, handed to libcurl's callbacks. */
typedef struct xfer {
    const hp__s3_req_t *req;
    hp__s3_resp_t *resp;
    size_t sent; /* upload cursor */
} xfer_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    size_t n = HP_MIN(size * nitems, x->req->body_len - x->sent);
    memcpy(buf, x->req->body + x->sent, n);
    x->sent += n;
    return n;
}

/* libcurl rewinds the upload when it must send it again on a new
 * connection. */
static int seek_cb(void *ud, curl_off_t off, int origin)
{
    xfer_t *x = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->sent = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Parses a decimal number at s (n bytes, spaces before it skipped). */
static bool header_u64(const char *s, size_t n, uint64_t *v)
{
    size_t i = 0, digits = 0;
    while (i < n && s[i] == ' ')
        i++;
    for (*v = 0; i < n && s[i] >= '0' && s[i] <= '9' && digits < 20; i++, digits++)
        if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, (uint64_t)(s[i] - '0'), v))
            return false;
    return digits > 0;
}

/* True when header line h[0..n) is name (case-insensitive), setting *val. */
static bool header_is(const char *h, size_t n, const char *name, const char **val, size_t *vn)
{
    size_t ln = strlen(name);
    if (n <= ln || h[ln] != ':' || strncasecmp(h, name, ln) != 0)
        return false;
    *val = h + ln + 1;
    *vn = n - ln - 1;
    return true;
}

/* Records the status line, Content-Length and Content-Range's total, and
 * aborts a 2xx answer whose announced length is over the caller's limit. */
static size_t header_cb(char *h, size_t size, size_t nitems, void *ud)
{
    xfer_t *x = ud;
    hp__s3_resp_t *r = x->resp;
    size_t n = size * nitems;
    const char *v, *slash;
    size_t vn;
    if (n > 5 && memcmp(h, "HTTP/", 5) == 0) {
        const char *sp = memchr(h, ' ', n);
        uint64_t st = 0;
        r->status = (sp && header_u64(sp, n - (size_t)(sp - h), &st) && st < 1000) ? (long)st : 0;
        r->have_length = r->have_total = false;
    } else if (header_is(h, n, "Content-Length", &v, &vn)) {
        r->have_length = header_u64(v, vn, &r->length);
        if (r->have_length && r->status / 100 == 2 && x->req->out && r->length > x->req->out_limit) {
            r->too_large = true;
            return 0;
        }
    } else if (header_is(h, n, "Content-Range", &v, &vn) && (slash = memchr(v, '/', vn)) != NULL) {
        r->have_total = header_u64(slash + 1, vn - (size_t)(slash + 1 - v), &r->total);
    }
    return n;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    hp__s3_resp_t *r = x->resp;
    size_t n = size * nmemb;
    if (r->status / 100 != 2) {
        /* keep the start of an error body: the code and message come first */
        hp_buf_append(&r->err_body, p, HP_MIN(n, ERR_BODY_MAX - HP_MIN(r->err_body.len, ERR_BODY_MAX)));
        return n;
    }
    if (x->req->out == NULL)
        return n;
    if (n > x->req->out_limit - HP_MIN(x->req->out->len, x->req->out_limit)) {
        r->too_large = true;
        return 0;
    }
    hp_buf_append(x->req->out, p, n);
    return n;
}

/* The request headers: the payload hash (always: S3 requires it with
 * SigV4, and libcurl signs with it), Range, and an upload's type. */
static struct curl_slist *make_headers(const hp__s3_req_t *req)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    char line[128];
    static const char hex[] = "0123456789abcdef";
    SHA256(req->body ? req->body : (const uint8_t *)"", req->body_len, md);
    int o = snprintf(line, sizeof(line), "x-amz-content-sha256: ");
    for (size_t i = 0; i < sizeof(md); i++) {
        line[o++] = hex[md[i] >> 4];
        line[o++] = hex[md[i] & 15];
    }
    line[o] = '\0';
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (req->range) {
        snprintf(line, sizeof(line), "Range: %s", req->range);
        h = curl_slist_append(h, line);
    }
    /* no "Expect:" to suppress 100-continue: libcurl 7.88 would sign the
     * empty header it never sends, and S3 would refuse the signature */
    if (req->body)
        h = curl_slist_append(h, "Content-Type: application/octet-stream");
    return h;
}

static void set_method(CURL *h, const hp__s3_req_t *req, xfer_t *x)
{
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
}

static void set_options(hp__s3_t *s3, CURL *h, const hp__s3_req_t *req, xfer_t *x, struct curl_slist *hdrs,
                        char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s3->timeout_ms);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s3->access_key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s3->secret);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (s3->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    set_method(h, req, x);
}

/* Runs one attempt; the curl result, with errbuf (CURL_ERROR_SIZE) set. */
static CURLcode attempt(hp__s3_t *s3, const hp__s3_req_t *req, hp__s3_resp_t *resp, char *errbuf)
{
    CURL *h = pool_take(s3);
    if (h == NULL) {
        snprintf(errbuf, CURL_ERROR_SIZE, "cannot create a curl handle");
        return CURLE_FAILED_INIT;
    }
    xfer_t x = {req, resp, 0};
    struct curl_slist *hdrs = make_headers(req);
    errbuf[0] = '\0';
    set_options(s3, h, req, &x, hdrs, errbuf);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf lives on our stack */
    curl_slist_free_all(hdrs);
    pool_give(s3, h);
    return cc;
}

/* ---- retries ---- */

static bool retryable_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool retryable_status(long status)
{
    return status == 429 || status / 100 == 5;
}

/* Sleeps before retry number n (1-based): min·2^(n-1) capped at max, then
 * a random point in its upper half so that clients do not retry in step. */
static void backoff(const hp__s3_t *s3, int n, unsigned *seed)
{
    int64_t d = s3->min_backoff_ms;
    for (int i = 1; i < n && d < s3->max_backoff_ms; i++)
        d *= 2;
    d = HP_MIN(d, s3->max_backoff_ms);
    int64_t ms = d / 2 + (d > 1 ? (int64_t)(rand_r(seed) % (d - d / 2 + 1)) : d - d / 2);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Writes why the last attempt failed into why (n bytes). */
static void describe_failure(CURLcode cc, const char *errbuf, const hp__s3_resp_t *resp, char *why, size_t n)
{
    if (cc != CURLE_OK) {
        snprintf(why, n, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return;
    }
    char text[320];
    hp__s3_error_text((const char *)resp->err_body.data, resp->err_body.len, text, sizeof(text));
    snprintf(why, n, "HTTP %ld%s%s%s", resp->status, text[0] ? " (" : "", text, text[0] ? ")" : "");
}

static void resp_reset(hp__s3_resp_t *resp, const hp__s3_req_t *req)
{
    hp_buf_reset(&resp->err_body);
    resp->status = 0;
    resp->have_length = resp->have_total = resp->too_large = false;
    if (req->out)
        hp_buf_reset(req->out);
}

int hp__s3_do(hp__s3_t *s3, const hp__s3_req_t *req, hp__s3_resp_t *resp, hp_err_t *err)
{
    char errbuf[CURL_ERROR_SIZE], why[400], q[HP__OBJSTORE_QKEY];
    unsigned seed = (unsigned)hp_now_ns() ^ (unsigned)(uintptr_t)&seed;
    int attempts = 0;
    CURLcode cc;
    for (;;) {
        resp_reset(resp, req);
        cc = attempt(s3, req, resp, errbuf);
        attempts++;
        if (resp->too_large || (cc == CURLE_OK && !retryable_status(resp->status)))
            return 0;
        if ((cc != CURLE_OK && !retryable_curl(cc)) || attempts > s3->max_retries)
            break;
        backoff(s3, attempts, &seed);
    }
    describe_failure(cc, errbuf, resp, why, sizeof(why));
    int code = cc == CURLE_OPERATION_TIMEDOUT         ? HP_ETIMEDOUT
               : cc == CURLE_OK || retryable_curl(cc) ? HP_EUNAVAIL
                                                      : HP_EINTERNAL;
    return hp__s3_err(s3, err, code, "objstore s3: %s %s: failed after %d attempt%s: %s", req->op,
                      req->key ? hp__objstore_quote(req->key, q, sizeof(q)) : "(bucket)", attempts,
                      attempts == 1 ? "" : "s", why);
}
