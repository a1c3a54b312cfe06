/* What the block writer and reader share: CRC32C, section names, ULIDs and
 * meta.json. The data object's encoder is block_write.c, its decoder
 * block_read.c; the layout is docs/BLOCK_FORMAT.md. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "block_internal.h"
#include "hotpath/block.h"

/* ---- CRC32C ---- */

#define CRC32C_POLY 0x82f63b78u /* Castagnoli, bit-reversed */

/* Written once, under crc_once, before any read: the only static state here. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_make(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[i] = c;
    }
}

uint32_t hp__crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_table_make);
    const uint8_t *b = p;
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ b[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

const char *hp__blk_section_name(uint32_t id)
{
    switch (id) {
    case HP__SEC_SYMBOLS:
        return "symbols";
    case HP__SEC_SERIES:
        return "series index";
    case HP__SEC_POSTINGS:
        return "postings";
    case HP__SEC_PAGES:
        return "pages";
    default:
        return "unknown";
    }
}

/* ---- ULIDs ---- */

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Fills p with n random bytes: getrandom, else (no entropy source at all) a
 * splitmix64 stream seeded from the clocks, the pid and a stack address. */
static void random_bytes(uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            break;
    }
    uint64_t s = (uint64_t)hp_now_ns() ^ (uint64_t)hp_mono_ms() << 32 ^ (uint64_t)getpid() ^ (uintptr_t)&s;
    for (; got < n; got++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        p[got] = (uint8_t)(z ^ (z >> 31));
    }
}

void hp_ulid_new(int64_t ms, char out[27])
{
    uint64_t t = ms < 0 ? 0 : ms > (int64_t)0xffffffffffffLL ? 0xffffffffffffULL : (uint64_t)ms;
    for (int i = 9; i >= 0; i--, t >>= 5)
        out[i] = crockford[t & 31];
    uint8_t r[10];
    random_bytes(r, sizeof(r));
    /* 80 random bits, most significant first, 5 per character. */
    for (int j = 0; j < 16; j++) {
        int bit = 5 * j, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)r[byte] << 8 | (byte + 1 < 10 ? r[byte + 1] : 0);
        out[10 + j] = crockford[(v >> (11 - shift)) & 31];
    }
    out[26] = 0;
}

/* True when s is 26 Crockford base32 characters that fit in 128 bits. */
static bool ulid_valid(const char *s)
{
    if (strlen(s) != 26 || s[0] > '7')
        return false;
    for (int i = 0; i < 26; i++)
        if (strchr(crockford, s[i]) == NULL)
            return false;
    return true;
}

/* ---- meta.json ---- */

void hp__block_meta_json(const hp_block_meta_t *m, hp_buf_t *out)
{
    hp_buf_puts(out, "{\"ulid\":");
    hp_buf_put_json_str(out, m->ulid, strnlen(m->ulid, sizeof(m->ulid)));
    hp_buf_puts(out, ",\"tenant\":");
    hp_buf_put_json_str(out, m->tenant, strnlen(m->tenant, sizeof(m->tenant)));
    hp_buf_printf(out, ",\"minTime\":%lld,\"maxTime\":%lld", (long long)m->min_time_ms,
                  (long long)m->max_time_ms);
    hp_buf_printf(out, ",\"stats\":{\"numSeries\":%llu,\"numProfiles\":%llu,\"numSamples\":%llu}",
                  (unsigned long long)m->num_series, (unsigned long long)m->num_profiles,
                  (unsigned long long)m->num_samples);
    hp_buf_printf(out, ",\"version\":%u,\"compaction\":{\"level\":%u", m->version, m->level);
    for (size_t i = 0; i < m->n_sources; i++) {
        hp_buf_puts(out, i == 0 ? ",\"sources\":[" : ",");
        hp_buf_put_json_str(out, m->sources[i].s, strnlen(m->sources[i].s, sizeof(m->sources[i].s)));
    }
    hp_buf_puts(out, m->n_sources ? "]},\"source\":" : "},\"source\":");
    hp_buf_put_json_str(out, m->source, strnlen(m->source, sizeof(m->source)));
    hp_buf_printf(out, ",\"files\":[{\"relPath\":\"data\",\"sizeBytes\":%llu}]}\n",
                  (unsigned long long)m->data_bytes);
}

static const char *json_type_name(json_type t)
{
    switch (t) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    default:
        return "a value";
    }
}

/* obj[key] of type t into *out, or HP_EINVAL naming path.key. */
static int field(json_t *obj, const char *path, const char *key, json_type t, json_t **out, hp_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return hp_err_set(err, HP_EINVAL, "meta.json: missing field %s%s", path, key);
    if (json_typeof(v) != t)
        return hp_err_set(err, HP_EINVAL, "meta.json: field %s%s must be %s", path, key, json_type_name(t));
    *out = v;
    return 0;
}

/* obj[key] as an integer in [lo, hi]. */
static int field_int(json_t *obj, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                     hp_err_t *err)
{
    json_t *v = NULL;
    int rc = field(obj, path, key, JSON_INTEGER, &v, err);
    if (rc != 0)
        return rc;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hp_err_set(err, HP_EINVAL, "meta.json: field %s%s = %lld is out of range [%lld, %lld]", path,
                          key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

/* obj[key] as a string of 1..cap-1 bytes without NULs, copied into dst. */
static int field_str(json_t *obj, const char *key, char *dst, size_t cap, hp_err_t *err)
{
    json_t *v = NULL;
    int rc = field(obj, "", key, JSON_STRING, &v, err);
    if (rc != 0)
        return rc;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= cap || memchr(s, 0, n) != NULL)
        return hp_err_set(err, HP_EINVAL, "meta.json: field %s must be 1 to %zu bytes without NULs (got %zu)",
                          key, cap - 1, n);
    memcpy(dst, s, n + 1);
    return 0;
}

/* The sizeBytes of the files entry whose relPath is "data". */
static int meta_files(json_t *root, hp_block_meta_t *m, hp_err_t *err)
{
    json_t *files = NULL, *f;
    size_t i;
    int rc = field(root, "", "files", JSON_ARRAY, &files, err);
    if (rc != 0)
        return rc;
    json_array_foreach(files, i, f)
    {
        json_t *rel = json_is_object(f) ? json_object_get(f, "relPath") : NULL;
        if (rel == NULL || !json_is_string(rel) || strcmp(json_string_value(rel), "data") != 0)
            continue;
        int64_t sz = 0;
        rc = field_int(f, "files[data].", "sizeBytes", 0, INT64_MAX, &sz, err);
        m->data_bytes = (uint64_t)sz;
        return rc;
    }
    return hp_err_set(err, HP_EINVAL, "meta.json: files has no entry with relPath \"data\"");
}

/* compaction.sources when present: an array of ULIDs, each copied into
 * out (room for the array's size) when out is not NULL. */
static int meta_sources(json_t *co, hp_ulid_t *out, size_t *n, hp_err_t *err)
{
    json_t *src = json_object_get(co, "sources"), *v;
    size_t i;
    *n = 0;
    if (src == NULL)
        return 0;
    if (!json_is_array(src))
        return hp_err_set(err, HP_EINVAL, "meta.json: field compaction.sources must be an array");
    json_array_foreach(src, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (s == NULL || json_string_length(v) != 26 || !ulid_valid(s))
            return hp_err_set(err, HP_EINVAL, "meta.json: compaction.sources[%zu] is not a ULID", i);
        if (out)
            memcpy(out[i].s, s, 27);
    }
    *n = json_array_size(src);
    return 0;
}

/* The stats and compaction objects. */
static int meta_stats(json_t *root, hp_block_meta_t *m, hp_err_t *err)
{
    json_t *st = NULL, *co = NULL;
    int64_t s = 0, p = 0, n = 0, lvl = 0;
    int rc = field(root, "", "stats", JSON_OBJECT, &st, err);
    if (rc == 0)
        rc = field_int(st, "stats.", "numSeries", 0, INT64_MAX, &s, err);
    if (rc == 0)
        rc = field_int(st, "stats.", "numProfiles", 0, INT64_MAX, &p, err);
    if (rc == 0)
        rc = field_int(st, "stats.", "numSamples", 0, INT64_MAX, &n, err);
    if (rc == 0)
        rc = field(root, "", "compaction", JSON_OBJECT, &co, err);
    if (rc == 0)
        rc = field_int(co, "compaction.", "level", 1, UINT32_MAX, &lvl, err);
    size_t n_src = 0;
    if (rc == 0)
        rc = meta_sources(co, NULL, &n_src, err);
    if (rc != 0)
        return rc;
    m->num_series = (uint64_t)s, m->num_profiles = (uint64_t)p, m->num_samples = (uint64_t)n;
    m->level = (uint32_t)lvl;
    return 0;
}

/* Every field of meta from a parsed root object. */
static int meta_from_json(json_t *root, hp_block_meta_t *m, hp_err_t *err)
{
    int64_t v = 0;
    if (!json_is_object(root))
        return hp_err_set(err, HP_EINVAL, "meta.json: not a JSON object");
    int rc = field_int(root, "", "version", INT64_MIN, INT64_MAX, &v, err);
    if (rc != 0)
        return rc;
    if (v < HP_BLOCK_MIN_VERSION || v > HP_BLOCK_VERSION)
        return hp_err_set(err, HP_EINVAL,
                          "meta.json: unsupported block version %lld (this build reads %d to %d)", (long long)v,
                          HP_BLOCK_MIN_VERSION, HP_BLOCK_VERSION);
    m->version = (uint32_t)v;
    if ((rc = field_str(root, "ulid", m->ulid, sizeof(m->ulid), err)) != 0)
        return rc;
    if (!ulid_valid(m->ulid))
        return hp_err_set(err, HP_EINVAL, "meta.json: ulid \"%s\" is not a ULID", m->ulid);
    if ((rc = field_str(root, "tenant", m->tenant, sizeof(m->tenant), err)) != 0 ||
        (rc = field_str(root, "source", m->source, sizeof(m->source), err)) != 0)
        return rc;
    if (strcmp(m->source, "ingester") != 0 && strcmp(m->source, "compactor") != 0)
        return hp_err_set(err, HP_EINVAL, "meta.json: source \"%s\" is neither ingester nor compactor",
                          m->source);
    if ((rc = field_int(root, "", "minTime", INT64_MIN, INT64_MAX, &m->min_time_ms, err)) != 0 ||
        (rc = field_int(root, "", "maxTime", INT64_MIN, INT64_MAX, &m->max_time_ms, err)) != 0)
        return rc;
    if (m->min_time_ms > m->max_time_ms)
        return hp_err_set(err, HP_EINVAL, "meta.json: minTime %lld is after maxTime %lld",
                          (long long)m->min_time_ms, (long long)m->max_time_ms);
    if ((rc = meta_stats(root, m, err)) != 0)
        return rc;
    return meta_files(root, m, err);
}

int hp_block_meta_parse(const void *json, size_t n, hp_block_meta_t *meta, hp_err_t *err)
{
    json_error_t je;
    memset(meta, 0, sizeof(*meta));
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return hp_err_set(err, HP_EINVAL, "meta.json: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc = meta_from_json(root, meta, err);
    json_decref(root);
    if (rc != 0)
        memset(meta, 0, sizeof(*meta));
    return rc;
}

static int ulid_cmp(const void *a, const void *b)
{
    return strcmp(((const hp_ulid_t *)a)->s, ((const hp_ulid_t *)b)->s);
}

/* Sorts v[0..n) and drops duplicates; returns the new count. */
static size_t ulids_sort_unique(hp_ulid_t *v, size_t n)
{
    hp_qsort(v, n, sizeof(*v), ulid_cmp);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (o == 0 || strcmp(v[o - 1].s, v[i].s) != 0)
            v[o++] = v[i];
    return o;
}

int hp_block_meta_sources(const void *json, size_t n, hp_ulid_t **out, size_t *n_out, hp_err_t *err)
{
    hp_block_meta_t m;
    *out = NULL;
    *n_out = 0;
    int rc = hp_block_meta_parse(json, n, &m, err);
    if (rc != 0)
        return rc;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, NULL);
    json_t *co = root ? json_object_get(root, "compaction") : NULL;
    json_t *src = co ? json_object_get(co, "sources") : NULL;
    size_t cnt = src ? json_array_size(src) : 0;
    hp_ulid_t *v = hp_xcalloc(cnt + 1, sizeof(*v));
    size_t got = 0;
    rc = co ? meta_sources(co, v, &got, err) : 0;
    json_decref(root);
    if (rc == 0 && got == 0) {
        memcpy(v[0].s, m.ulid, sizeof(v[0].s));
        got = 1;
    }
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n_out = ulids_sort_unique(v, got);
    return 0;
}
