/* Internals of the object store (objstore.h): the backend ops table that
 * objstore.c dispatches through, the backends' constructors, and the small
 * helpers the backends share (key quoting for messages, the S3 XML
 * scanner). Not installed. */
#ifndef HOTPATH_OBJSTORE_IMPL_H
#define HOTPATH_OBJSTORE_IMPL_H

#include <pthread.h>

#include "hotpath/objstore.h"

/* One backend. `be` is the backend's own state, made by its constructor.
 * Keys and prefixes reaching these are already checked. */
typedef struct hp__objstore_ops {
    const char *name;
    int (*put)(void *be, const char *key, const void *data, size_t len, hp_err_t *err);
    int (*get)(void *be, const char *key, hp_buf_t *out, size_t max_bytes, hp_err_t *err);
    int (*get_range)(void *be, const char *key, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err);
    int (*list)(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err);
    int (*list_prefixes)(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err);
    int (*del)(void *be, const char *key, hp_err_t *err);
    int (*exists)(void *be, const char *key, bool *yes, hp_err_t *err);
    void (*describe)(const void *be, hp_buf_t *out);
    void (*free)(void *be); /* safe on a half-built backend */
} hp__objstore_ops_t;

extern const hp__objstore_ops_t hp__objstore_fs_ops;
extern const hp__objstore_ops_t hp__objstore_s3_ops;

/* Backend constructors: *out is the backend state for the ops above. */
int hp__objstore_fs_new(const hp_objstore_config_t *cfg, void **out, hp_err_t *err);
int hp__objstore_s3_new(const hp_objstore_config_t *cfg, void **out, hp_err_t *err);

/* The filesystem backend's temporary-file prefix (reserved in keys). */
#define HP__OBJSTORE_TMP_PREFIX ".hp-tmp-"

/* Writes s as a double-quoted string safe for a message into buf (size
 * n ≥ 16): control and non-ASCII bytes as \xNN, cut with "..." when long.
 * Returns buf. */
const char *hp__objstore_quote(const char *s, char *buf, size_t n);

/* Quoting buffer size that keeps a whole 1024-byte key readable enough. */
#define HP__OBJSTORE_QKEY 200

/* The errors both backends give, worded alike: HP_ENOTFOUND; HP_ETOOLARGE
 * (size known or not); HP_EINVAL for a range past the end (size known or
 * not). Each returns its code. */
int hp__objstore_not_found(hp_err_t *err, const char *key);
int hp__objstore_too_large(hp_err_t *err, const char *key, bool known, uint64_t size, size_t max);
int hp__objstore_short(hp_err_t *err, const char *key, uint64_t off, uint64_t len, bool known, uint64_t size);

/* ---- the S3 XML scanner (objstore_xml.c) ----
 * Just enough XML for S3's answers: finds the text of simple elements
 * (no attributes relied on, no nesting of the same name), decodes the five
 * predefined entities and numeric character references. Every loop is
 * bounded by the input length; nothing allocates beyond the input size. */

/* Finds the first <name>…</name> in xml[0..n) at or after *pos; on success
 * sets the text's span [*start, *end) and moves *pos past the closing tag.
 * False when there is none (or it is not closed). */
bool hp__xml_next(const char *xml, size_t n, size_t *pos, const char *name, size_t *start, size_t *end);

/* Appends the entity-decoded text s[0..n) to out. False when an entity is
 * malformed or unknown (out then holds a partial result). */
bool hp__xml_decode(const char *s, size_t n, hp_buf_t *out);

/* One page of a ListObjectsV2 answer. Keys point into `keys` (each
 * NUL-terminated, entity- and, when the answer said so, URL-decoded). */
typedef struct hp__s3_list_page {
    hp_buf_t keys; /* the keys back to back, each with its NUL */
    size_t count;
    uint64_t *sizes; /* count entries; caller frees with hp__s3_list_page_fini */
    size_t *offs;    /* where each key starts in keys.data */
    size_t cap;
    bool truncated;
    hp_buf_t token; /* NextContinuationToken, NUL-terminated; empty if none */
    bool common_prefixes; /* set before parsing: collect <CommonPrefixes> (size 0) instead of <Contents> */
} hp__s3_list_page_t;

/* Parses a ListObjectsV2 body into page (which must be zeroed, except for
 * common_prefixes). HP_EINVAL with why in err when it is not a usable
 * answer (a <Contents> without a <Key> or a valid <Size>, a
 * <CommonPrefixes> without a <Prefix>, a bad entity). */
int hp__s3_list_parse(const char *xml, size_t n, hp__s3_list_page_t *page, hp_err_t *err);
void hp__s3_list_page_fini(hp__s3_list_page_t *page);

/* From an S3 error body, writes "Code: Message" (decoded, each cut to fit)
 * into buf (size n); "" when the body has neither. */
void hp__s3_error_text(const char *xml, size_t len, char *buf, size_t n);

/* ---- the S3 backend's request engine (objstore_s3req.c) ---- */

/* The S3 backend's state; immutable after construction except the pool
 * of idle curl handles (under mu). */
typedef struct hp__s3 {
    char *endpoint;  /* as configured, without a trailing '/' (for describe) */
    char *scheme;    /* "http" or "https" */
    char *authority; /* host[:port] */
    char *base_path; /* "" or "/path" after the authority */
    char *region, *bucket, *access_key_id, *secret, *sigv4;
    bool path_style, insecure;
    int64_t timeout_ms, min_backoff_ms, max_backoff_ms;
    int max_retries; /* attempts after the first */
    pthread_mutex_t mu;
    bool mu_ok;
    void *idle[8]; /* CURL * handles kept for their connections */
    size_t n_idle;
} hp__s3_t;

/* One S3 request; everything borrowed for the call. */
typedef struct hp__s3_req {
    const char *op;     /* "put", "get", … for messages */
    const char *key;    /* for messages; NULL for bucket requests */
    const char *method; /* "GET", "PUT", "HEAD", "DELETE" */
    const char *url;
    const char *range;   /* "bytes=a-b" or NULL */
    const uint8_t *body; /* PUT payload */
    size_t body_len;
    hp_buf_t *out;    /* where a 2xx body goes; NULL = dropped */
    size_t out_limit; /* more than this in a 2xx body aborts (too_large) */
} hp__s3_req_t;

/* What came back from the last attempt of a request. */
typedef struct hp__s3_resp {
    long status;
    bool have_length, have_total, too_large;
    uint64_t length;   /* Content-Length */
    uint64_t total;    /* Content-Range's complete length */
    hp_buf_t err_body; /* a non-2xx body, at most 64 KiB; caller finis */
} hp__s3_resp_t;

/* Runs req, retrying connection errors, timeouts, 429 and 5xx with
 * exponential backoff and jitter. 0 when an answer came (any status, or
 * too_large set); otherwise HP_EUNAVAIL/HP_ETIMEDOUT/HP_EINTERNAL with a
 * message naming the attempts. resp must be zeroed. */
int hp__s3_do(hp__s3_t *s3, const hp__s3_req_t *req, hp__s3_resp_t *resp, hp_err_t *err);

/* Like hp_err_set, with every occurrence of the secret key masked. */
int hp__s3_err(const hp__s3_t *s3, hp_err_t *err, int code, const char *fmt, ...) HP_PRINTF(4, 5);

/* Calls curl_global_init once per process. */
void hp__s3_global_init(void);

/* Frees the pooled curl handles. */
void hp__s3_pool_fini(hp__s3_t *s3);

#endif
