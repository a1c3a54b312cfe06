/* The bucket index (bucket_index.h): a tenant's blocks and deletion marks
 * as one gzip'd JSON object, built from a listing of <tenant>/blocks/
 * and each new block's meta.json; deletion marks; tenant discovery; and
 * hard deletion of a block. Formats: docs/BLOCK_FORMAT.md. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/bucket_index.h"
#include "hotpath/compress.h"
#include "hotpath/log.h"
#include "hotpath/service.h"

#define KEY_CAP 600 /* a 150-byte tenant, a ULID and a file name, with room */

/* ---- names ---- */

static bool ulid_ok(const char *s, size_t n)
{
    static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (n != 26 || s[0] > '7')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(crockford, s[i]) == NULL)
            return false;
    return true;
}

/* Checks the tenant and ulid (NULL: none) that go into a key. */
static int check_names(const char *tenant, const char *ulid, hp_err_t *err)
{
    int rc = hp_tenant_validate(hp_str_c(tenant ? tenant : ""), err);
    if (rc != 0)
        return hp_err_set(err, HP_EINVAL, "bucket index: bad tenant: %s", err->msg);
    if (ulid && !ulid_ok(ulid, strlen(ulid)))
        return hp_err_set(err, HP_EINVAL, "bucket index: \"%.40s\" is not a block ULID", ulid);
    return 0;
}

static void block_key(char *key, const char *tenant, const char *ulid, const char *file)
{
    snprintf(key, KEY_CAP, "%s/blocks/%s/%s", tenant, ulid, file);
}

/* ---- the index in memory ---- */

void hp_bucket_index_init(hp_bucket_index_t *bi)
{
    memset(bi, 0, sizeof(*bi));
}

void hp_bucket_index_fini(hp_bucket_index_t *bi)
{
    free(bi->blocks);
    memset(bi, 0, sizeof(*bi));
}

/* The index's order: by min time, then ULID. */
static int bi_cmp(const void *a, const void *b)
{
    const hp_bi_block_t *x = a, *y = b;
    if (x->min_time_ms != y->min_time_ms)
        return x->min_time_ms < y->min_time_ms ? -1 : 1;
    return strcmp(x->ulid, y->ulid);
}

hp_bi_block_t *hp_bucket_index_find(const hp_bucket_index_t *bi, const char *ulid)
{
    for (size_t i = 0; bi && i < bi->n_blocks; i++)
        if (strcmp(bi->blocks[i].ulid, ulid) == 0)
            return &bi->blocks[i];
    return NULL;
}

void hp_bucket_index_put(hp_bucket_index_t *bi, const hp_bi_block_t *b)
{
    hp_bi_block_t *have = hp_bucket_index_find(bi, b->ulid);
    if (have == NULL) {
        bi->blocks = hp_xrealloc(bi->blocks, (bi->n_blocks + 1) * sizeof(*bi->blocks));
        have = &bi->blocks[bi->n_blocks++];
    }
    *have = *b;
    hp_qsort(bi->blocks, bi->n_blocks, sizeof(*bi->blocks), bi_cmp);
}

bool hp_bucket_index_remove(hp_bucket_index_t *bi, const char *ulid)
{
    hp_bi_block_t *b = hp_bucket_index_find(bi, ulid);
    if (b == NULL)
        return false;
    size_t i = (size_t)(b - bi->blocks);
    memmove(b, b + 1, (bi->n_blocks - i - 1) * sizeof(*b));
    bi->n_blocks--;
    return true;
}

void hp_bi_block_from_meta(const hp_block_meta_t *m, hp_bi_block_t *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->ulid, m->ulid, sizeof(out->ulid));
    out->min_time_ms = m->min_time_ms;
    out->max_time_ms = m->max_time_ms;
    out->level = m->level;
    snprintf(out->source, sizeof(out->source), "%s", m->source);
    out->data_bytes = m->data_bytes;
    out->num_series = m->num_series;
    out->num_profiles = m->num_profiles;
    out->num_samples = m->num_samples;
}

/* ---- JSON ---- */

/* Appends the index as JSON (one line). */
static void index_json(const hp_bucket_index_t *bi, hp_buf_t *out)
{
    hp_buf_printf(out, "{\"version\":%d,\"updated_at\":%lld,\"blocks\":[", HP_BUCKET_INDEX_VERSION,
                  (long long)bi->updated_ms);
    for (size_t i = 0; i < bi->n_blocks; i++) {
        const hp_bi_block_t *b = &bi->blocks[i];
        hp_buf_printf(out,
                      "%s{\"block_id\":\"%s\",\"min_time\":%lld,\"max_time\":%lld,\"compaction_level\":%u,",
                      i ? "," : "", b->ulid, (long long)b->min_time_ms, (long long)b->max_time_ms, b->level);
        hp_buf_puts(out, "\"source\":");
        hp_buf_put_json_str(out, b->source, strnlen(b->source, sizeof(b->source)));
        hp_buf_printf(out,
                      ",\"size_bytes\":%llu,\"num_series\":%llu,\"num_profiles\":%llu,\"num_samples\":%llu}",
                      (unsigned long long)b->data_bytes, (unsigned long long)b->num_series,
                      (unsigned long long)b->num_profiles, (unsigned long long)b->num_samples);
    }
    hp_buf_puts(out, "],\"block_deletion_marks\":[");
    bool first = true;
    for (size_t i = 0; i < bi->n_blocks; i++) {
        if (bi->blocks[i].deletion_mark_ms == 0)
            continue;
        hp_buf_printf(out, "%s{\"block_id\":\"%s\",\"deletion_time\":%lld}", first ? "" : ",",
                      bi->blocks[i].ulid, (long long)bi->blocks[i].deletion_mark_ms);
        first = false;
    }
    hp_buf_puts(out, "]}\n");
}

/* obj[key] as an integer in [lo, hi], or HP_EINVAL naming what. */
static int json_int_field(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                          const char *what, hp_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_integer(v))
        return hp_err_set(err, HP_EINVAL, "%s: %s is missing or not an integer", what, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hp_err_set(err, HP_EINVAL, "%s: %s = %lld is out of range", what, key, (long long)x);
    *out = x;
    return 0;
}

/* obj[key] as a string of 1..cap-1 bytes copied into dst. */
static int json_str_field(json_t *obj, const char *key, char *dst, size_t cap, const char *what,
                          hp_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    size_t n = v && json_is_string(v) ? json_string_length(v) : 0;
    if (n == 0 || n >= cap || memchr(json_string_value(v), 0, n) != NULL)
        return hp_err_set(err, HP_EINVAL, "%s: %s must be a string of 1 to %zu bytes", what, key, cap - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

/* One entry of "blocks". */
static int parse_block(json_t *o, size_t i, hp_bi_block_t *b, hp_err_t *err)
{
    char what[48];
    int64_t lvl = 0, sz = 0, ns = 0, np = 0, nsmp = 0;
    snprintf(what, sizeof(what), "blocks[%zu]", i);
    memset(b, 0, sizeof(*b));
    if (!json_is_object(o))
        return hp_err_set(err, HP_EINVAL, "%s is not an object", what);
    int rc = json_str_field(o, "block_id", b->ulid, sizeof(b->ulid), what, err);
    if (rc == 0 && !ulid_ok(b->ulid, strlen(b->ulid)))
        rc = hp_err_set(err, HP_EINVAL, "%s: block_id \"%s\" is not a ULID", what, b->ulid);
    if (rc == 0)
        rc = json_int_field(o, "min_time", INT64_MIN, INT64_MAX, &b->min_time_ms, what, err);
    if (rc == 0)
        rc = json_int_field(o, "max_time", b->min_time_ms, INT64_MAX, &b->max_time_ms, what, err);
    if (rc == 0)
        rc = json_int_field(o, "compaction_level", 1, UINT32_MAX, &lvl, what, err);
    if (rc == 0)
        rc = json_str_field(o, "source", b->source, sizeof(b->source), what, err);
    if (rc == 0)
        rc = json_int_field(o, "size_bytes", 0, INT64_MAX, &sz, what, err);
    if (rc == 0)
        rc = json_int_field(o, "num_series", 0, INT64_MAX, &ns, what, err);
    if (rc == 0)
        rc = json_int_field(o, "num_profiles", 0, INT64_MAX, &np, what, err);
    if (rc == 0)
        rc = json_int_field(o, "num_samples", 0, INT64_MAX, &nsmp, what, err);
    b->level = (uint32_t)lvl;
    b->data_bytes = (uint64_t)sz, b->num_series = (uint64_t)ns;
    b->num_profiles = (uint64_t)np, b->num_samples = (uint64_t)nsmp;
    return rc;
}

/* "block_deletion_marks": sets the mark time of the blocks they name. */
static int parse_marks(json_t *marks, hp_bucket_index_t *bi, hp_err_t *err)
{
    json_t *o;
    size_t i;
    if (marks == NULL)
        return 0;
    if (!json_is_array(marks))
        return hp_err_set(err, HP_EINVAL, "block_deletion_marks is not an array");
    json_array_foreach(marks, i, o)
    {
        char what[48], ulid[27];
        int64_t t = 0;
        snprintf(what, sizeof(what), "block_deletion_marks[%zu]", i);
        int rc = json_is_object(o) ? json_str_field(o, "block_id", ulid, sizeof(ulid), what, err)
                                   : hp_err_set(err, HP_EINVAL, "%s is not an object", what);
        if (rc == 0)
            rc = json_int_field(o, "deletion_time", 1, INT64_MAX, &t, what, err);
        if (rc != 0)
            return rc;
        hp_bi_block_t *b = hp_bucket_index_find(bi, ulid);
        if (b)
            b->deletion_mark_ms = t;
    }
    return 0;
}

static int parse_index(json_t *root, hp_bucket_index_t *bi, hp_err_t *err)
{
    int64_t v = 0;
    if (!json_is_object(root))
        return hp_err_set(err, HP_EINVAL, "not a JSON object");
    int rc = json_int_field(root, "version", INT64_MIN, INT64_MAX, &v, "index", err);
    if (rc == 0 && v != HP_BUCKET_INDEX_VERSION)
        rc = hp_err_set(err, HP_EINVAL, "unsupported version %lld (this build reads %d)", (long long)v,
                        HP_BUCKET_INDEX_VERSION);
    if (rc == 0)
        rc = json_int_field(root, "updated_at", 0, INT64_MAX, &bi->updated_ms, "index", err);
    json_t *blocks = json_object_get(root, "blocks"), *o;
    if (rc == 0 && !json_is_array(blocks))
        rc = hp_err_set(err, HP_EINVAL, "blocks is missing or not an array");
    if (rc != 0)
        return rc;
    bi->blocks = hp_xcalloc(json_array_size(blocks) + 1, sizeof(*bi->blocks));
    size_t i;
    json_array_foreach(blocks, i, o)
    {
        if ((rc = parse_block(o, i, &bi->blocks[i], err)) != 0)
            return rc;
        bi->n_blocks++;
    }
    hp_qsort(bi->blocks, bi->n_blocks, sizeof(*bi->blocks), bi_cmp);
    return parse_marks(json_object_get(root, "block_deletion_marks"), bi, err);
}

/* ---- read / write ---- */

int hp_bucket_index_read(hp_objstore_t *s, const char *tenant, hp_bucket_index_t *out, hp_err_t *err)
{
    char key[KEY_CAP];
    hp_bucket_index_init(out);
    int rc = check_names(tenant, NULL, err);
    if (rc != 0)
        return rc;
    snprintf(key, sizeof(key), "%s/bucket-index.json.gz", tenant);
    hp_buf_t gz = HP_BUF_INIT, raw = HP_BUF_INIT;
    hp_err_t why;
    rc = hp_objstore_get(s, key, &gz, HP_BUCKET_INDEX_MAX_GZ, err);
    if (rc == HP_ETOOLARGE)
        rc = hp_err_set(err, HP_EINVAL, "bucket index of tenant %s is damaged: %s", tenant, err->msg);
    if (rc == 0 && hp_gunzip(gz.data, gz.len, HP_BUCKET_INDEX_MAX_JSON, &raw, &why) != 0)
        rc = hp_err_set(err, HP_EINVAL, "bucket index of tenant %s is damaged: %s", tenant, why.msg);
    json_error_t je;
    json_t *root = rc == 0 ? json_loadb((const char *)raw.data, raw.len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (rc == 0 && root == NULL)
        rc = hp_err_set(err, HP_EINVAL, "bucket index of tenant %s is damaged: %s (line %d)", tenant, je.text,
                        je.line);
    if (rc == 0 && parse_index(root, out, &why) != 0)
        rc = hp_err_set(err, HP_EINVAL, "bucket index of tenant %s is damaged: %s", tenant, why.msg);
    json_decref(root);
    hp_buf_fini(&gz);
    hp_buf_fini(&raw);
    if (rc != 0)
        hp_bucket_index_fini(out);
    return rc;
}

int hp_bucket_index_write(hp_objstore_t *s, const char *tenant, const hp_bucket_index_t *bi, hp_err_t *err)
{
    char key[KEY_CAP];
    int rc = check_names(tenant, NULL, err);
    if (rc != 0)
        return rc;
    snprintf(key, sizeof(key), "%s/bucket-index.json.gz", tenant);
    hp_buf_t json = HP_BUF_INIT, gz = HP_BUF_INIT;
    index_json(bi, &json);
    rc = hp_gzip(json.data, json.len, 6, &gz);
    if (rc != 0)
        rc = hp_err_set(err, HP_EINTERNAL, "bucket index of tenant %s: cannot gzip %zu bytes", tenant,
                        json.len);
    else
        rc = hp_objstore_put(s, key, gz.data, gz.len, err);
    hp_buf_fini(&json);
    hp_buf_fini(&gz);
    return rc;
}

/* ---- listing block directories ---- */

typedef struct files_walk {
    size_t prefix_len;
    hp_bucket_block_files_t *v;
    size_t n, cap;
} files_walk_t;

/* One listed key <tenant>/blocks/<dir>/<rest>: counted under dir. */
static int files_add(void *ctx, const char *key, uint64_t size)
{
    files_walk_t *w = ctx;
    const char *dir = key + w->prefix_len, *slash = strchr(dir, '/');
    if (slash == NULL || !ulid_ok(dir, (size_t)(slash - dir)))
        return 0;
    const char *rest = slash + 1;
    if (w->n == 0 || memcmp(w->v[w->n - 1].ulid, dir, 26) != 0) {
        HP_GROW(w->v, w->cap, w->n + 1);
        memset(&w->v[w->n], 0, sizeof(w->v[0]));
        memcpy(w->v[w->n].ulid, dir, 26);
        w->n++;
    }
    hp_bucket_block_files_t *f = &w->v[w->n - 1];
    f->n_objects++;
    if (strcmp(rest, "data") == 0) {
        f->has_data = true;
        f->data_bytes = size;
    }
    f->has_meta |= strcmp(rest, "meta.json") == 0;
    f->has_mark |= strcmp(rest, "deletion-mark.json") == 0;
    return 0;
}

static int files_cmp(const void *a, const void *b)
{
    return strcmp(((const hp_bucket_block_files_t *)a)->ulid, ((const hp_bucket_block_files_t *)b)->ulid);
}

/* Merges entries of the same ULID (a server that lists out of order). */
static size_t files_fold(hp_bucket_block_files_t *v, size_t n)
{
    hp_qsort(v, n, sizeof(*v), files_cmp);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o > 0 && strcmp(v[o - 1].ulid, v[i].ulid) == 0) {
            hp_bucket_block_files_t *d = &v[o - 1];
            d->has_data |= v[i].has_data, d->has_meta |= v[i].has_meta, d->has_mark |= v[i].has_mark;
            d->data_bytes = HP_MAX(d->data_bytes, v[i].data_bytes);
            d->n_objects += v[i].n_objects;
        } else {
            v[o++] = v[i];
        }
    }
    return o;
}

int hp_bucket_block_files(hp_objstore_t *s, const char *tenant, hp_bucket_block_files_t **out, size_t *n,
                          hp_err_t *err)
{
    char prefix[KEY_CAP];
    *out = NULL;
    *n = 0;
    int rc = check_names(tenant, NULL, err);
    if (rc != 0)
        return rc;
    snprintf(prefix, sizeof(prefix), "%s/blocks/", tenant);
    files_walk_t w = {strlen(prefix), NULL, 0, 0};
    rc = hp_objstore_list(s, prefix, files_add, &w, err);
    if (rc != 0) {
        free(w.v);
        return rc;
    }
    *n = files_fold(w.v, w.n);
    *out = w.v;
    return 0;
}

/* ---- deletion marks ---- */

int hp_block_mark_deletion(hp_objstore_t *s, const char *tenant, const char *ulid, int64_t now_ms,
                           hp_err_t *err)
{
    char key[KEY_CAP];
    int rc = check_names(tenant, ulid, err);
    if (rc != 0)
        return rc;
    block_key(key, tenant, ulid, "deletion-mark.json");
    bool yes = false;
    rc = hp_objstore_exists(s, key, &yes, err);
    if (rc != 0 || yes)
        return rc; /* an earlier mark keeps its time, so the delay is never restarted */
    hp_buf_t j = HP_BUF_INIT;
    hp_buf_printf(&j, "{\"id\":\"%s\",\"deletion_time\":%lld,\"deletion_time_ms\":%lld,\"version\":1}\n",
                  ulid, (long long)(now_ms / 1000), (long long)now_ms);
    rc = hp_objstore_put(s, key, j.data, j.len, err);
    hp_buf_fini(&j);
    return rc;
}

/* When a block was marked: deletion_time_ms, else deletion_time (s). A
 * mark that cannot be read counts as made now, which only delays. */
static int read_mark(hp_objstore_t *s, const char *tenant, const char *ulid, int64_t *ms, hp_err_t *err)
{
    char key[KEY_CAP];
    block_key(key, tenant, ulid, "deletion-mark.json");
    hp_buf_t b = HP_BUF_INIT;
    *ms = hp_now_ms();
    int rc = hp_objstore_get(s, key, &b, HP_BUCKET_SMALL_OBJECT_MAX, err);
    json_t *root = rc == 0 ? json_loadb((const char *)b.data, b.len, 0, NULL) : NULL;
    json_t *t_ms = root ? json_object_get(root, "deletion_time_ms") : NULL;
    json_t *t_s = root ? json_object_get(root, "deletion_time") : NULL;
    if (t_ms && json_is_integer(t_ms) && json_integer_value(t_ms) > 0)
        *ms = json_integer_value(t_ms);
    else if (t_s && json_is_integer(t_s) && json_integer_value(t_s) > 0 &&
             json_integer_value(t_s) < INT64_MAX / 1000)
        *ms = json_integer_value(t_s) * 1000;
    else if (rc == 0)
        HP_WARN("unreadable deletion mark: counted as made now", "tenant=%s block=%s", tenant, ulid);
    json_decref(root);
    hp_buf_fini(&b);
    return rc == HP_ENOTFOUND || rc == HP_ETOOLARGE ? 0 : rc;
}

/* ---- building ---- */

/* Reads and checks block ulid's meta.json into b. HP_ENOTFOUND when it
 * is gone; HP_EINVAL (logged by the caller) when it is damaged. */
static int read_meta(hp_objstore_t *s, const char *tenant, const char *ulid, hp_bi_block_t *b, hp_err_t *err)
{
    char key[KEY_CAP];
    block_key(key, tenant, ulid, "meta.json");
    hp_buf_t buf = HP_BUF_INIT;
    hp_block_meta_t m;
    int rc = hp_objstore_get(s, key, &buf, HP_BUCKET_SMALL_OBJECT_MAX, err);
    if (rc == HP_ETOOLARGE)
        rc = HP_EINVAL;
    if (rc == 0)
        rc = hp_block_meta_parse(buf.data, buf.len, &m, err);
    if (rc == 0 && (strcmp(m.ulid, ulid) != 0 || strcmp(m.tenant, tenant) != 0))
        rc = hp_err_set(err, HP_EINVAL, "meta.json names block %s of tenant %s", m.ulid, m.tenant);
    if (rc == 0)
        hp_bi_block_from_meta(&m, b);
    hp_buf_fini(&buf);
    return rc;
}

static int bi_ulid_cmp(const void *a, const void *b)
{
    return strcmp((*(const hp_bi_block_t *const *)a)->ulid, (*(const hp_bi_block_t *const *)b)->ulid);
}

/* prev's entries sorted by ULID, for lookups while building. */
static const hp_bi_block_t **by_ulid(const hp_bucket_index_t *prev, size_t *n)
{
    *n = prev ? prev->n_blocks : 0;
    const hp_bi_block_t **v = hp_xmalloc((*n + 1) * sizeof(*v));
    for (size_t i = 0; i < *n; i++)
        v[i] = &prev->blocks[i];
    hp_qsort(v, *n, sizeof(*v), bi_ulid_cmp);
    return v;
}

static const hp_bi_block_t *lookup(const hp_bi_block_t **v, size_t n, const char *ulid)
{
    hp_bi_block_t key;
    memcpy(key.ulid, ulid, sizeof(key.ulid));
    const hp_bi_block_t *kp = &key, **hit = bsearch(&kp, v, n, sizeof(*v), bi_ulid_cmp);
    return hit ? *hit : NULL;
}

/* The entry of one listed block with a meta.json: reused from prev or
 * read. *skip when there is no usable block there. */
static int build_one(hp_objstore_t *s, const char *tenant, const hp_bucket_block_files_t *f,
                     const hp_bi_block_t *old, hp_bi_block_t *b, bool *skip, hp_err_t *err)
{
    *skip = false;
    int rc = 0;
    if (old) {
        *b = *old;
    } else if ((rc = read_meta(s, tenant, f->ulid, b, err)) != 0) {
        *skip = rc == HP_ENOTFOUND || rc == HP_EINVAL;
        if (rc == HP_EINVAL) {
            char q[600];
            HP_WARN("block left out of the bucket index: its meta.json is damaged",
                    "tenant=%s block=%s err=%s", tenant, f->ulid, hp_log_q(q, sizeof(q), err->msg));
        }
        return *skip ? 0 : rc;
    }
    if (!f->has_mark)
        b->deletion_mark_ms = 0;
    else if (!old || old->deletion_mark_ms == 0)
        rc = read_mark(s, tenant, f->ulid, &b->deletion_mark_ms, err);
    return rc;
}

int hp_bucket_index_build(hp_objstore_t *s, const char *tenant, const hp_bucket_index_t *prev,
                          hp_bucket_index_t *out, hp_err_t *err)
{
    hp_bucket_index_init(out);
    hp_bucket_block_files_t *files = NULL;
    size_t nf = 0, np = 0;
    int rc = hp_bucket_block_files(s, tenant, &files, &nf, err);
    if (rc != 0)
        return rc;
    const hp_bi_block_t **old = by_ulid(prev, &np);
    out->blocks = hp_xcalloc(nf + 1, sizeof(*out->blocks));
    for (size_t i = 0; i < nf && rc == 0; i++) {
        bool skip = false;
        if (!files[i].has_meta)
            continue;
        rc = build_one(s, tenant, &files[i], lookup(old, np, files[i].ulid), &out->blocks[out->n_blocks],
                       &skip, err);
        if (rc == 0 && !skip)
            out->n_blocks++;
    }
    free(old);
    free(files);
    if (rc != 0) {
        hp_bucket_index_fini(out);
        return rc;
    }
    hp_qsort(out->blocks, out->n_blocks, sizeof(*out->blocks), bi_cmp);
    out->updated_ms = hp_now_ms();
    return 0;
}

/* ---- hard deletion ---- */

typedef struct del_walk {
    hp_objstore_t *s;
    hp_err_t *err;
} del_walk_t;

/* Deletes one listed object of a block, except its deletion mark. */
static int del_one(void *ctx, const char *key, uint64_t size)
{
    (void)size;
    del_walk_t *w = ctx;
    size_t n = strlen(key), m = strlen("/deletion-mark.json");
    if (n >= m && strcmp(key + n - m, "/deletion-mark.json") == 0)
        return 0;
    return hp_objstore_delete(w->s, key, w->err);
}

int hp_bucket_block_delete(hp_objstore_t *s, const char *tenant, const char *ulid, hp_err_t *err)
{
    char key[KEY_CAP];
    int rc = check_names(tenant, ulid, err);
    if (rc != 0)
        return rc;
    block_key(key, tenant, ulid, "meta.json");
    rc = hp_objstore_delete(s, key, err);
    snprintf(key, sizeof(key), "%s/blocks/%s/", tenant, ulid);
    del_walk_t w = {s, err};
    if (rc == 0)
        rc = hp_objstore_list(s, key, del_one, &w, err);
    block_key(key, tenant, ulid, "deletion-mark.json");
    if (rc == 0)
        rc = hp_objstore_delete(s, key, err);
    return rc;
}

/* ---- tenants ---- */

typedef struct tenants_walk {
    hp_tenant_fn fn;
    void *ctx;
} tenants_walk_t;

/* One first-level prefix "<name>/": a tenant when name is a valid ID. */
static int tenant_prefix(void *ctx, const char *key, uint64_t size)
{
    (void)size;
    tenants_walk_t *w = ctx;
    char name[160];
    size_t n = strlen(key);
    if (n < 2 || key[n - 1] != '/' || n - 1 >= sizeof(name))
        return 0;
    memcpy(name, key, n - 1);
    name[n - 1] = '\0';
    hp_err_t why;
    if (hp_tenant_validate(hp_str_c(name), &why) != 0)
        return 0;
    return w->fn(w->ctx, name);
}

int hp_bucket_tenants(hp_objstore_t *s, hp_tenant_fn fn, void *ctx, hp_err_t *err)
{
    tenants_walk_t w = {fn, ctx};
    return hp_objstore_list_prefixes(s, "", tenant_prefix, &w, err);
}
