/*
 * objstore.h — where blocks live: a flat store of immutable objects named by
 * '/'-separated keys ("<tenant>/<block ULID>/meta.json"), kept either in a
 * local directory (one file per object) or in an S3-compatible bucket (AWS,
 * MinIO, Ceph, s3rver). Ingesters put the blocks they flush; store-gateways
 * and compactors list, read whole small objects and byte ranges of large
 * ones; compactors delete what they replaced.
 *
 * An object is visible only once it is complete: a reader sees the old
 * object, the new one, or none, never a part. Every call is synchronous and
 * thread-safe; S3 calls retry connection errors, timeouts, 429 and 5xx with
 * exponential backoff and jitter, and every response body is bounded.
 * Credentials never appear in logs, error messages or hp_objstore_describe.
 *
 * Not for: objects that change in place or are appended to (there is no
 * append, rename or partial write), multipart uploads (one PUT per object:
 * S3 caps that at 5 GiB), caching, or deciding what goes where (block.h
 * names the objects of a block; the components decide the layout).
 *
 * Keys: non-empty, at most 1024 bytes, valid UTF-8, no NUL, no leading or
 * trailing '/', no "//", no "." or ".." segment, and no segment starting
 * with ".hp-tmp-" (the filesystem backend's temporary files). A key that
 * breaks a rule is HP_EINVAL with a message naming the key and the rule.
 *
 * Errors: HP_EINVAL (bad key, range outside the object), HP_ENOTFOUND (no
 * such object), HP_ETOOLARGE (over the caller's byte limit), HP_EUNAVAIL
 * (the store is unreachable or kept failing; the message says how many
 * attempts were made), HP_ETIMEDOUT, HP_EINTERNAL (the store refused the
 * request: credentials, bucket, permissions; the message has the HTTP
 * status and S3's error code and message).
 */
#ifndef HOTPATH_OBJSTORE_H
#define HOTPATH_OBJSTORE_H

#include "hotpath/buf.h"
#include "hotpath/common.h"

#define HP_OBJSTORE_KEY_MAX 1024

/* S3 settings. Strings are borrowed for the duration of hp_objstore_new
 * (the store keeps copies). Requests are signed with SigV4 from a static
 * key pair (no instance roles or session tokens). */
typedef struct hp_objstore_s3_config {
    const char *endpoint; /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:4569" */
    const char *region;   /* signing region; NULL or "" = "us-east-1" */
    const char *bucket;
    const char *access_key_id;
    const char *secret_access_key; /* never printed */
    bool path_style;               /* endpoint/bucket/key instead of bucket.endpoint/key */
    bool insecure;                 /* allow http:// and skip TLS certificate checks */
    int64_t timeout_ms;            /* one attempt, connect to last byte; 0 = 30000 */
    int max_retries;               /* attempts after the first; 0 = 5, negative = none */
    int64_t min_backoff_ms;        /* first retry's delay; 0 = 100 */
    int64_t max_backoff_ms;        /* cap on one delay; 0 = 3000 */
} hp_objstore_s3_config_t;

typedef struct hp_objstore_config {
    const char *backend; /* "filesystem" or "s3" */
    struct {
        const char *dir; /* root directory, created if missing; borrowed */
    } filesystem;
    hp_objstore_s3_config_t s3;
} hp_objstore_config_t;

typedef struct hp_objstore hp_objstore_t;

/* Creates a store from cfg (borrowed; strings are copied). Checks the
 * configuration (backend name, directory creatable, endpoint scheme and
 * form, bucket name, credentials present) but does not contact S3. On
 * error *out is NULL and err names the setting that is wrong. The caller
 * frees the store with hp_objstore_free. */
int hp_objstore_new(const hp_objstore_config_t *cfg, hp_objstore_t **out, hp_err_t *err) HP_WUR;

/* Frees the store and its pooled connections. NULL-safe. No call may be in
 * flight. */
void hp_objstore_free(hp_objstore_t *s);

/* Stores data[0..len) (borrowed) under key, replacing any object there.
 * Returns once the object is durable (filesystem: temp file, fsync,
 * rename, fsync of the directory; S3: a single PUT with the payload's
 * SHA-256). Readers never see a partial object. */
int hp_objstore_put(hp_objstore_t *s, const char *key, const void *data, size_t len, hp_err_t *err) HP_WUR;

/* Reads the whole object into out (its previous contents are replaced).
 * HP_ENOTFOUND when absent; HP_ETOOLARGE when the object is larger than
 * max_bytes, detected from its size before the body is read. On error out
 * is valid but its contents are unspecified. */
int hp_objstore_get(hp_objstore_t *s, const char *key, hp_buf_t *out, size_t max_bytes, hp_err_t *err) HP_WUR;

/* Reads exactly len bytes at offset off into out (contents replaced).
 * HP_EINVAL when the object is shorter than off + len, HP_ENOTFOUND when
 * it is absent. len == 0 checks that the object exists and is at least off
 * bytes long. */
int hp_objstore_get_range(hp_objstore_t *s, const char *key, uint64_t off, uint64_t len, hp_buf_t *out,
                          hp_err_t *err) HP_WUR;

/* Called once per object: key is borrowed for the call, size in bytes.
 * Returns 0 to go on; anything else stops the listing, and
 * hp_objstore_list returns that value (err is then the callback's to
 * fill, e.g. through ctx). */
typedef int (*hp_objstore_list_fn)(void *ctx, const char *key, uint64_t size);

/* Calls fn for every object whose key starts with prefix (a plain string
 * prefix, "" for all; "a/b" matches "a/b/c" and "a/bc"), recursively.
 * Filesystem keys come in byte-wise lexicographic order; S3 keys in the
 * order the server lists them (AWS S3: UTF-8 byte order). Objects put or
 * deleted during the listing may or may not be seen. */
int hp_objstore_list(hp_objstore_t *s, const char *prefix, hp_objstore_list_fn fn, void *ctx,
                     hp_err_t *err) HP_WUR;

/* Calls fn once per distinct "directory" under prefix: every key that
 * starts with prefix and has a '/' after it contributes the key up to and
 * including that first '/' ("t/blocks/" lists "t/blocks/01HF…/"), each
 * reported once, with size 0 — S3's ListObjectsV2 CommonPrefixes with
 * delimiter "/", followed through every continuation page. Objects
 * directly under prefix are not reported. Filesystem prefixes come in
 * byte-wise order and name only directories that hold at least one
 * object; S3 ones in the server's order. Return values of fn as for
 * hp_objstore_list. */
int hp_objstore_list_prefixes(hp_objstore_t *s, const char *prefix, hp_objstore_list_fn fn, void *ctx,
                              hp_err_t *err) HP_WUR;

/* Deletes the object; deleting a missing object succeeds. */
int hp_objstore_delete(hp_objstore_t *s, const char *key, hp_err_t *err) HP_WUR;

/* Sets *yes to whether the object exists (S3: a HEAD request). */
int hp_objstore_exists(hp_objstore_t *s, const char *key, bool *yes, hp_err_t *err) HP_WUR;

/* Checks key against the rules above: 0, or HP_EINVAL naming key and rule. */
int hp_objstore_key_check(const char *key, hp_err_t *err) HP_WUR;

/* Appends the effective configuration as YAML (backend, then the
 * backend's section), the secret access key written as "********". */
void hp_objstore_describe(const hp_objstore_t *s, hp_buf_t *out);

#endif
