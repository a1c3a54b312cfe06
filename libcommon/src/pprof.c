/* The pprof decoder: a hand-written, validating reader of the Profile
 * message over pbwire.h.
 *
 * Two walks over the profile's top-level fields, each with its own handler
 * table:
 *   count   counts the messages of each kind, so that every array is carved,
 *           at its exact size (or, for the three arrays only a descent would
 *           count, at a first guess that grows), out of one arena block, and
 *           the sample limit is checked before anything is allocated;
 *   decode  reads everything. References (a sample's location IDs, a line's
 *           function ID, a location's mapping ID) are stored as 32-bit
 *           stand-ins for the IDs, because Go and others interleave samples,
 *           locations and functions, so the referenced message may come later.
 * Then ID → index maps are built (a dense table when IDs are small, as they
 * nearly always are; otherwise open addressing), which is where IDs of 0 and
 * duplicate IDs are found, and the stand-ins are replaced by indices in
 * sequential passes.
 *
 * A stand-in is the ID itself below 2^31; each distinct larger ID gets the
 * next number from 2^31 up, through a small hash that only such IDs touch. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "hotpath/pbwire.h"
#include "hotpath/pprof.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Error paths stay out of line so the field reader inlines into its loops. */
#define COLD __attribute__((cold, noinline))
#define HOT_INLINE static inline __attribute__((always_inline))

/* Profile field numbers (proto/google/v1/profile.proto). */
enum {
    F_SAMPLE_TYPE = 1,
    F_SAMPLE = 2,
    F_MAPPING = 3,
    F_LOCATION = 4,
    F_FUNCTION = 5,
    F_STRING = 6,
    F_DROP_FRAMES = 7,
    F_KEEP_FRAMES = 8,
    F_TIME = 9,
    F_DURATION = 10,
    F_PERIOD_TYPE = 11,
    F_PERIOD = 12,
    F_COMMENT = 13,
    F_DEFAULT_SAMPLE_TYPE = 14,
    F_TOP_MAX = 15,
};

_Static_assert(offsetof(hp_pprof_mapping_t, id) == 0, "idmap_build reads ids at offset 0");
_Static_assert(offsetof(hp_pprof_location_t, id) == 0, "idmap_build reads ids at offset 0");
_Static_assert(offsetof(hp_pprof_function_t, id) == 0, "idmap_build reads ids at offset 0");

/* Sizes of the arrays, from the count walk. The three arrays that only a
 * descent would count (sample_locs, labels, lines) hold first guesses and
 * grow as needed. */
typedef struct counts {
    uint32_t sample_types, samples, sample_locs, labels, mappings, locations, lines, functions, strings,
        comments;
    uint64_t sample_bytes; /* total size of the Sample messages */
} counts_t;

/* pprof ID → array index. */
typedef struct idmap {
    uint32_t *dense; /* dense[id] = index or HP_PPROF_NONE, for id < n_dense */
    uint64_t n_dense;
    uint64_t *keys; /* open addressing when IDs are sparse; 0 = empty slot */
    uint32_t *vals;
    uint64_t mask;
} idmap_t;

/* One field as read from the wire. */
typedef struct fld {
    uint32_t num, wt;
    uint64_t v;   /* HP_PB_VARINT */
    hp_pbr_t sub; /* HP_PB_LEN */
} fld_t;

/* Stand-ins for IDs of 2^31 and above (see the top of the file). */
typedef struct wide {
    uint64_t *keys; /* open addressing; 0 = empty */
    uint32_t *vals;
    uint64_t mask;
    uint64_t *ids; /* ids[k] is the ID whose stand-in is WIDE_BASE + k */
    uint32_t n, cap;
} wide_t;

#define WIDE_BASE 0x80000000u

typedef struct dec {
    hp_pprof_t *p;
    hp_err_t *err;
    hp_pprof_limits_t lim;
    hp_pbr_t top;
    counts_t c;
    uint32_t n_str; /* string indices must be below this */
    hp_arena_t tmp; /* the ID maps; dropped when the decode returns */
    idmap_t mappings, functions, locations;
    wide_t wide;
    uint32_t cap_sample_locs, cap_labels, cap_lines; /* of the growing arrays */
} dec_t;

/* ------------------------------------------------------------------------
 * Wire reading with errors that say what was malformed and where.
 */

/* A varint of 2 to 10 bytes when at least 10 bytes are left, so no byte
 * needs a bounds check. False when it is longer than 10 bytes. */
static inline bool varint_unchecked(hp_pbr_t *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    uint64_t x = p[0] & 0x7f;
    for (int i = 1; i < 10; i++) {
        uint64_t b = p[i];
        x |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            r->p = p + i + 1;
            *v = x;
            return true;
        }
    }
    r->p = p + 10;
    return false;
}

/* A varint, with fast paths for the one-byte ones that dominate pprof and
 * for the longer ones away from the end of the buffer. */
static inline bool rd_varint(hp_pbr_t *r, uint64_t *v)
{
    if (LIKELY(r->p < r->end) && *r->p < 0x80) {
        *v = *r->p++;
        return true;
    }
    if (LIKELY(r->end - r->p >= 10))
        return varint_unchecked(r, v);
    return hp_pbr_varint(r, v);
}

/* Marks the error just recorded as a wire-format one (see HP_PPROF_EWIRE);
 * every other decode error is HP_PPROF_EINVALID. Returns HP_EINVAL. */
static int wire_detail(dec_t *d)
{
    if (d->err != NULL)
        d->err->detail = HP_PPROF_EWIRE;
    return HP_EINVAL;
}

/* Records "malformed profile: <what> in <msg>" and returns HP_EINVAL. */
static COLD int wire_err(dec_t *d, const char *what, const char *msg)
{
    hp_err_set(d->err, HP_EINVAL, "malformed profile: %s in %s", what, msg);
    return wire_detail(d);
}

/* The error for a varint that failed to read at r. */
static COLD int varint_err(dec_t *d, const hp_pbr_t *r, const char *msg)
{
    return wire_err(d, r->p >= r->end ? "truncated varint" : "varint longer than 10 bytes", msg);
}

static COLD int len_err(dec_t *d, uint64_t n, size_t left, const char *msg)
{
    hp_err_set(d->err, HP_EINVAL,
               "malformed profile: truncated field in %s (length %" PRIu64 " but %zu bytes left)", msg, n,
               left);
    return wire_detail(d);
}

/* Reads a length-delimited payload into *sub; 1 on success. */
HOT_INLINE int read_len(dec_t *d, hp_pbr_t *r, hp_pbr_t *sub, const char *msg)
{
    uint64_t n;
    if (UNLIKELY(!rd_varint(r, &n)))
        return varint_err(d, r, msg);
    size_t left = (size_t)(r->end - r->p);
    if (UNLIKELY(n > left))
        return len_err(d, n, left, msg);
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 1;
}

/* Reads the value of a field of a rare wire type: the fixed-size ones,
 * which pprof does not use and are skipped, and the invalid ones. */
static COLD int read_other(dec_t *d, hp_pbr_t *r, const fld_t *f, const char *msg)
{
    if (f->wt == HP_PB_I64 || f->wt == HP_PB_I32)
        return hp_pbr_skip(r, f->wt) ? 1 : wire_err(d, "truncated fixed-size field", msg);
    hp_err_set(d->err, HP_EINVAL, "malformed profile: invalid wire type %u in %s", f->wt, msg);
    return wire_detail(d);
}

/* Reads the next field of message msg from r. Returns 1 with the field in
 * f, 0 at the end of the message, or a negative error. */
HOT_INLINE int next_field(dec_t *d, hp_pbr_t *r, fld_t *f, const char *msg)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (UNLIKELY(!rd_varint(r, &key)))
        return varint_err(d, r, msg);
    if (UNLIKELY((key >> 3) - 1 >= 0x1fffffff)) /* 0 wraps around */
        return wire_err(d, "invalid field number", msg);
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint32_t)(key & 7);
    if (LIKELY(f->wt == HP_PB_VARINT))
        return LIKELY(rd_varint(r, &f->v)) ? 1 : varint_err(d, r, msg);
    if (LIKELY(f->wt == HP_PB_LEN))
        return read_len(d, r, &f->sub, msg);
    return read_other(d, r, f, msg);
}

static COLD int wire_type_err(dec_t *d, const fld_t *f, uint32_t wt, const char *msg)
{
    hp_err_set(d->err, HP_EINVAL, "malformed profile: field %u of %s has wire type %u, expected %u", f->num,
               msg, f->wt, wt);
    return wire_detail(d);
}

/* Checks that field f of message msg has wire type wt. */
HOT_INLINE int want(dec_t *d, const fld_t *f, uint32_t wt, const char *msg)
{
    return LIKELY(f->wt == wt) ? 0 : wire_type_err(d, f, wt, msg);
}

typedef int (*field_fn)(dec_t *d, const fld_t *f, void *obj);

/* Calls fn for every field of the message in r, stopping at the first
 * error. Returns 0 or the error. */
HOT_INLINE int each_field(dec_t *d, hp_pbr_t r, const char *msg, field_fn fn, void *obj)
{
    fld_t f = {0};
    int rc;
    while ((rc = next_field(d, &r, &f, msg)) > 0)
        if ((rc = fn(d, &f, obj)) != 0)
            return rc;
    return rc;
}

/* A VARINT field as uint64 / int64 / bool. */
static int u64_field(dec_t *d, const fld_t *f, const char *msg, uint64_t *out)
{
    int rc = want(d, f, HP_PB_VARINT, msg);
    if (rc == 0)
        *out = f->v;
    return rc;
}

static int i64_field(dec_t *d, const fld_t *f, const char *msg, int64_t *out)
{
    int rc = want(d, f, HP_PB_VARINT, msg);
    if (rc == 0)
        *out = (int64_t)f->v;
    return rc;
}

static int bool_field(dec_t *d, const fld_t *f, const char *msg, bool *out)
{
    int rc = want(d, f, HP_PB_VARINT, msg);
    if (rc == 0)
        *out = f->v != 0;
    return rc;
}

static COLD int str_range_err(dec_t *d, uint64_t v, const char *msg, const char *what)
{
    return hp_err_set(d->err, HP_EINVAL,
                      "%s %s string index out of range: %" PRId64 " (string table has %u entries)", msg, what,
                      (int64_t)v, d->n_str);
}

/* Checks that v is a valid string index for the field "<msg> <what>". */
HOT_INLINE int check_str(dec_t *d, uint64_t v, const char *msg, const char *what)
{
    return LIKELY(v < d->n_str) ? 0 : str_range_err(d, v, msg, what);
}

/* A VARINT field holding a string index. */
static int str_field(dec_t *d, const fld_t *f, const char *msg, const char *what, uint32_t *out)
{
    int rc = want(d, f, HP_PB_VARINT, msg);
    if (rc == 0)
        rc = check_str(d, f->v, msg, what);
    if (rc == 0)
        *out = (uint32_t)f->v;
    return rc;
}

/* ------------------------------------------------------------------------
 * ID maps.
 */

static uint64_t item_id(const void *items, size_t stride, uint32_t i)
{
    uint64_t id;
    memcpy(&id, (const char *)items + (size_t)i * stride, sizeof(id));
    return id;
}

static uint32_t narrow(dec_t *d, uint64_t id);

static uint64_t id_hash(uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* The index for id, or HP_PPROF_NONE. */
static inline uint32_t idmap_get(const idmap_t *m, uint64_t id)
{
    if (LIKELY(id < m->n_dense))
        return m->dense[id];
    if (m->keys == NULL || id == 0)
        return HP_PPROF_NONE;
    for (uint64_t i = id_hash(id) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == id)
            return m->vals[i];
        if (m->keys[i] == 0)
            return HP_PPROF_NONE;
    }
}

/* Adds id → idx; false when id is already there. */
static bool idmap_put(idmap_t *m, uint64_t id, uint32_t idx)
{
    if (m->dense != NULL) {
        if (m->dense[id] != HP_PPROF_NONE)
            return false;
        m->dense[id] = idx;
        return true;
    }
    uint64_t i = id_hash(id) & m->mask;
    for (; m->keys[i] != 0; i = (i + 1) & m->mask)
        if (m->keys[i] == id)
            return false;
    m->keys[i] = id;
    m->vals[i] = idx;
    return true;
}

/* Sizes m for n IDs whose largest is max: dense when that costs at most a
 * few words per ID. */
static void idmap_alloc(dec_t *d, idmap_t *m, uint32_t n, uint64_t max)
{
    memset(m, 0, sizeof(*m));
    if (max < (uint64_t)n * 4 + 64) {
        m->n_dense = max + 1;
        m->dense = hp_arena_alloc(&d->tmp, m->n_dense * sizeof(uint32_t));
        memset(m->dense, 0xff, m->n_dense * sizeof(uint32_t));
        return;
    }
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap *= 2;
    m->mask = cap - 1;
    m->keys = hp_arena_calloc(&d->tmp, cap, sizeof(uint64_t));
    m->vals = hp_arena_alloc(&d->tmp, cap * sizeof(uint32_t));
}

/* Builds m over the n items (each starting with its uint64 ID), keyed by
 * the IDs' stand-ins, rejecting IDs of 0 and duplicates. */
static int idmap_build(dec_t *d, idmap_t *m, const void *items, size_t stride, uint32_t n, const char *what)
{
    uint64_t max = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = item_id(items, stride, i);
        if (id == 0)
            return hp_err_set(d->err, HP_EINVAL, "%s id is 0", what);
        max = HP_MAX(max, id);
    }
    idmap_alloc(d, m, n, max < WIDE_BASE ? max : WIDE_BASE + (uint64_t)n);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = item_id(items, stride, i);
        if (!idmap_put(m, narrow(d, id), i))
            return hp_err_set(d->err, HP_EINVAL, "duplicate %s id %" PRIu64, what, id);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Stand-ins for wide IDs.
 */

/* Puts ids[k] into the wide table, which has room for it. */
static void wide_insert(wide_t *w, uint32_t k)
{
    uint64_t i = id_hash(w->ids[k]) & w->mask;
    while (w->keys[i] != 0)
        i = (i + 1) & w->mask;
    w->keys[i] = w->ids[k];
    w->vals[i] = WIDE_BASE + k;
}

/* Doubles the wide table (from 16 slots) and re-inserts every ID. */
static void wide_rehash(dec_t *d)
{
    wide_t *w = &d->wide;
    uint64_t slots = w->keys ? (w->mask + 1) * 2 : 16;
    w->keys = hp_arena_calloc(&d->tmp, slots, sizeof(uint64_t));
    w->vals = hp_arena_alloc(&d->tmp, slots * sizeof(uint32_t));
    w->mask = slots - 1;
    for (uint32_t k = 0; k < w->n; k++)
        wide_insert(w, k);
}

/* Gives id (≥ WIDE_BASE, not yet seen) the next stand-in. */
static uint32_t wide_add(dec_t *d, uint64_t id)
{
    wide_t *w = &d->wide;
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 8;
        uint64_t *ids = hp_arena_alloc(&d->tmp, (size_t)cap * sizeof(uint64_t));
        if (w->n != 0)
            memcpy(ids, w->ids, (size_t)w->n * sizeof(uint64_t));
        w->ids = ids;
        w->cap = cap;
    }
    w->ids[w->n++] = id;
    if (w->keys == NULL || (uint64_t)w->n * 2 > w->mask + 1)
        wide_rehash(d);
    else
        wide_insert(w, w->n - 1);
    return WIDE_BASE + w->n - 1;
}

/* The stand-in of an ID of 2^31 or more. */
static COLD uint32_t narrow_wide(dec_t *d, uint64_t id)
{
    wide_t *w = &d->wide;
    if (w->keys != NULL)
        for (uint64_t i = id_hash(id) & w->mask; w->keys[i] != 0; i = (i + 1) & w->mask)
            if (w->keys[i] == id)
                return w->vals[i];
    return wide_add(d, id);
}

/* The 32-bit stand-in for a pprof ID (0 stays 0). */
HOT_INLINE uint32_t narrow_inline(dec_t *d, uint64_t id)
{
    return LIKELY(id < WIDE_BASE) ? (uint32_t)id : narrow_wide(d, id);
}

static uint32_t narrow(dec_t *d, uint64_t id)
{
    return narrow_inline(d, id);
}

/* The pprof ID a stand-in stands for. */
static uint64_t widen(const dec_t *d, uint32_t v)
{
    return v < WIDE_BASE ? v : d->wide.ids[v - WIDE_BASE];
}

/* ------------------------------------------------------------------------
 * Growing arrays: sample_locs, labels and lines start at a guess from the
 * counts and double (into a new arena block) when the guess was short.
 */

/* Grows arr (n used of *cap, sz bytes each) into a new arena block that
 * holds need more. Returns the array to use from now on. need is bounded by
 * the input size, like n, so the result fits in uint32. */
static COLD void *grow(hp_arena_t *a, void *arr, uint32_t n, uint32_t *cap, size_t need, size_t sz)
{
    size_t c = HP_MAX((size_t)*cap * 2, (size_t)n + need);
    c = HP_MIN(c, (size_t)UINT32_MAX);
    void *q = hp_arena_alloc(a, c * sz);
    if (n != 0)
        memcpy(q, arr, (size_t)n * sz);
    *cap = (uint32_t)c;
    return q;
}

/* Makes room for need more entries in one of the growing arrays. */
#define RESERVE(d, field, n_field, cap, need)                                                                \
    do {                                                                                                     \
        if (UNLIKELY((size_t)((d)->cap - (d)->p->n_field) < (size_t)(need)))                                 \
            (d)->p->field = grow(&(d)->p->arena, (d)->p->field, (d)->p->n_field, &(d)->cap, (need),          \
                                 sizeof(*(d)->p->field));                                                    \
    } while (0)

/* ------------------------------------------------------------------------
 * Walk 1: counting (top-level fields only).
 */

/* Number of varints in a packed run (their final bytes). */
static uint32_t count_varints(const uint8_t *p, const uint8_t *end)
{
    uint32_t n = 0;
    for (; p < end; p++)
        n += *p < 0x80;
    return n;
}

/* Adds to *n the number of values in repeated scalar field f, packed or
 * not. */
static int count_repeated(dec_t *d, const fld_t *f, uint32_t *n, const char *msg)
{
    if (f->wt == HP_PB_VARINT) {
        (*n)++;
        return 0;
    }
    int rc = want(d, f, HP_PB_LEN, msg);
    if (rc != 0)
        return rc;
    if (f->sub.p < f->sub.end && f->sub.end[-1] >= 0x80)
        return wire_err(d, "truncated varint", msg);
    *n += count_varints(f->sub.p, f->sub.end);
    return 0;
}

/* Counts one top-level message field into *n. */
static int count_msg(dec_t *d, const fld_t *f, uint32_t *n, const char *msg)
{
    int rc = want(d, f, HP_PB_LEN, msg);
    if (rc == 0)
        (*n)++;
    return rc;
}

static int cnt_sample(dec_t *d, const fld_t *f)
{
    int rc = count_msg(d, f, &d->c.samples, "sample");
    if (rc == 0)
        d->c.sample_bytes += (uint64_t)(f->sub.end - f->sub.p);
    return rc;
}

static int cnt_location(dec_t *d, const fld_t *f)
{
    return count_msg(d, f, &d->c.locations, "location");
}

static int cnt_sample_type(dec_t *d, const fld_t *f)
{
    return count_msg(d, f, &d->c.sample_types, "sample type");
}

static int cnt_mapping(dec_t *d, const fld_t *f)
{
    return count_msg(d, f, &d->c.mappings, "mapping");
}

static int cnt_function(dec_t *d, const fld_t *f)
{
    return count_msg(d, f, &d->c.functions, "function");
}

static int cnt_string(dec_t *d, const fld_t *f)
{
    return count_msg(d, f, &d->c.strings, "string table");
}

static int cnt_comment(dec_t *d, const fld_t *f)
{
    return count_repeated(d, f, &d->c.comments, "comment");
}

/* ------------------------------------------------------------------------
 * Walk 2: decoding. Strings, sample types, mappings, functions, scalars.
 */

typedef struct vt_ctx {
    hp_pprof_value_type_t *vt;
    const char *msg;
} vt_ctx_t;

static int value_type_field(dec_t *d, const fld_t *f, void *obj)
{
    vt_ctx_t *x = obj;
    if (f->num == 1)
        return str_field(d, f, x->msg, "type", &x->vt->type);
    if (f->num == 2)
        return str_field(d, f, x->msg, "unit", &x->vt->unit);
    return 0;
}

static int dec_value_type(dec_t *d, hp_pbr_t r, hp_pprof_value_type_t *vt, const char *msg)
{
    vt_ctx_t x = {vt, msg};
    vt->type = vt->unit = 0;
    return each_field(d, r, msg, value_type_field, &x);
}

static int sym_sample_type(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    return dec_value_type(d, f->sub, &p->sample_types[p->n_sample_types++], "sample type");
}

static int sym_period_type(dec_t *d, const fld_t *f)
{
    int rc = want(d, f, HP_PB_LEN, "period type");
    return rc != 0 ? rc : dec_value_type(d, f->sub, &d->p->period_type, "period type");
}

static int mapping_field(dec_t *d, const fld_t *f, void *obj)
{
    hp_pprof_mapping_t *m = obj;
    switch (f->num) {
    case 1:
        return u64_field(d, f, "mapping", &m->id);
    case 2:
        return u64_field(d, f, "mapping", &m->memory_start);
    case 3:
        return u64_field(d, f, "mapping", &m->memory_limit);
    case 4:
        return u64_field(d, f, "mapping", &m->file_offset);
    case 5:
        return str_field(d, f, "mapping", "filename", &m->filename);
    case 6:
        return str_field(d, f, "mapping", "build id", &m->build_id);
    case 7:
        return bool_field(d, f, "mapping", &m->has_functions);
    case 8:
        return bool_field(d, f, "mapping", &m->has_filenames);
    case 9:
        return bool_field(d, f, "mapping", &m->has_line_numbers);
    case 10:
        return bool_field(d, f, "mapping", &m->has_inline_frames);
    default:
        return 0;
    }
}

static int sym_mapping(dec_t *d, const fld_t *f)
{
    hp_pprof_mapping_t *m = &d->p->mappings[d->p->n_mappings++];
    memset(m, 0, sizeof(*m));
    return each_field(d, f->sub, "mapping", mapping_field, m);
}

static int function_field(dec_t *d, const fld_t *f, void *obj)
{
    hp_pprof_function_t *fn = obj;
    switch (f->num) {
    case 1:
        return u64_field(d, f, "function", &fn->id);
    case 2:
        return str_field(d, f, "function", "name", &fn->name);
    case 3:
        return str_field(d, f, "function", "system name", &fn->system_name);
    case 4:
        return str_field(d, f, "function", "filename", &fn->filename);
    case 5:
        return i64_field(d, f, "function", &fn->start_line);
    default:
        return 0;
    }
}

static int sym_function(dec_t *d, const fld_t *f)
{
    hp_pprof_function_t *fn = &d->p->functions[d->p->n_functions++];
    memset(fn, 0, sizeof(*fn));
    return each_field(d, f->sub, "function", function_field, fn);
}

/* True when s[0..n) is valid UTF-8; ASCII is checked 8 bytes at a time. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        if (w & 0x8080808080808080ull)
            break;
    }
    for (; i < n; i++)
        if (s[i] >= 0x80)
            return hp_utf8_valid((const char *)s + i, n - i);
    return true;
}

/* The error for a string that is not UTF-8, in Pyroscope's wording (the
 * hex is cut at 64 bytes). */
static int utf8_err(dec_t *d, const uint8_t *s, size_t n)
{
    char hex[2 * 64 + 4];
    size_t shown = HP_MIN(n, (size_t)64);
    for (size_t i = 0; i < shown; i++)
        snprintf(hex + 2 * i, 3, "%02x", s[i]);
    snprintf(hex + 2 * shown, 4, "%s", n > shown ? "..." : "");
    return hp_err_set(d->err, HP_EINVAL, "invalid utf8 string hex: %s", hex);
}

static int sym_string(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    uint32_t i = p->n_strings++;
    size_t n = (size_t)(f->sub.end - f->sub.p);
    if (i == 0 && n != 0)
        return hp_err_set(d->err, HP_EINVAL, "string 0 should be empty string");
    if (!utf8_ok(f->sub.p, n))
        return utf8_err(d, f->sub.p, n);
    p->strings[i].p = (const char *)f->sub.p;
    p->strings[i].n = n;
    return 0;
}

static int add_comment(dec_t *d, uint64_t v)
{
    hp_pprof_t *p = d->p;
    int rc = check_str(d, v, "profile", "comment");
    if (rc == 0)
        p->comments[p->n_comments++] = (int64_t)v;
    return rc;
}

static int sym_comment(dec_t *d, const fld_t *f)
{
    if (f->wt == HP_PB_VARINT)
        return add_comment(d, f->v);
    hp_pbr_t r = f->sub;
    uint64_t v;
    int rc = 0;
    while (rc == 0 && !hp_pbr_done(&r))
        rc = rd_varint(&r, &v) ? add_comment(d, v) : varint_err(d, &r, "comment");
    return rc;
}

/* An int64 scalar of the profile that is a string index. */
static int str_scalar(dec_t *d, const fld_t *f, const char *what, int64_t *out)
{
    int rc = i64_field(d, f, "profile", out);
    return rc != 0 ? rc : check_str(d, f->v, "profile", what);
}

static int sym_drop_frames(dec_t *d, const fld_t *f)
{
    return str_scalar(d, f, "drop frames", &d->p->drop_frames);
}

static int sym_keep_frames(dec_t *d, const fld_t *f)
{
    return str_scalar(d, f, "keep frames", &d->p->keep_frames);
}

static int sym_default_sample_type(dec_t *d, const fld_t *f)
{
    return str_scalar(d, f, "default sample type", &d->p->default_sample_type);
}

static int sym_time(dec_t *d, const fld_t *f)
{
    return i64_field(d, f, "profile", &d->p->time_nanos);
}

static int sym_duration(dec_t *d, const fld_t *f)
{
    return i64_field(d, f, "profile", &d->p->duration_nanos);
}

static int sym_period(dec_t *d, const fld_t *f)
{
    return i64_field(d, f, "profile", &d->p->period);
}

/* Locations: mapping and function IDs are kept as stand-ins until
 * resolve_locations. */

typedef struct line_ctx {
    hp_pprof_line_t *ln;
    uint64_t function_id;
} line_ctx_t;

static int line_field(dec_t *d, const fld_t *f, void *obj)
{
    line_ctx_t *x = obj;
    switch (f->num) {
    case 1:
        return u64_field(d, f, "line", &x->function_id);
    case 2:
        return i64_field(d, f, "line", &x->ln->line);
    case 3:
        return i64_field(d, f, "line", &x->ln->column);
    default:
        return 0;
    }
}

/* Decodes one Line; its function is a stand-in until resolved. */
static int dec_line(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    int rc = want(d, f, HP_PB_LEN, "location");
    if (rc != 0)
        return rc;
    RESERVE(d, lines, n_lines, cap_lines, 1);
    line_ctx_t x = {&p->lines[p->n_lines], 0};
    x.ln->line = x.ln->column = 0;
    if ((rc = each_field(d, f->sub, "line", line_field, &x)) != 0)
        return rc;
    if (x.function_id == 0)
        return hp_err_set(d->err, HP_EINVAL, "function id is 0");
    x.ln->function = narrow_inline(d, x.function_id);
    p->n_lines++;
    return 0;
}

static int location_field(dec_t *d, const fld_t *f, void *obj)
{
    hp_pprof_location_t *l = obj;
    uint64_t v;
    int rc;
    switch (f->num) {
    case 1:
        return u64_field(d, f, "location", &l->id);
    case 2:
        if ((rc = u64_field(d, f, "location", &v)) == 0)
            l->mapping = narrow_inline(d, v);
        return rc;
    case 3:
        return u64_field(d, f, "location", &l->address);
    case 4:
        return dec_line(d, f);
    case 5:
        return bool_field(d, f, "location", &l->is_folded);
    default:
        return 0;
    }
}

static int dec_location(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    hp_pprof_location_t *l = &p->locations[p->n_locations++];
    memset(l, 0, sizeof(*l));
    l->line_off = p->n_lines;
    int rc = each_field(d, f->sub, "location", location_field, l);
    l->line_n = p->n_lines - l->line_off;
    return rc;
}

/* Samples: location IDs are kept as stand-ins until resolve_samples. */

typedef struct smp_ctx {
    hp_pprof_sample_t *s;
    uint32_t index; /* of the sample, for messages */
    uint32_t nv;    /* values seen so far */
} smp_ctx_t;

static COLD int value_mismatch(dec_t *d, const smp_ctx_t *x)
{
    return hp_err_set(d->err, HP_EINVAL,
                      "sample value length mismatch: sample %u has %s%u values, expected %u", x->index,
                      x->nv > d->c.sample_types ? "more than " : "", x->nv, d->c.sample_types);
}

/* Stores a sample's next value. The count walk's sample type count is used,
 * not the types read so far: sample types may come after the samples. */
HOT_INLINE int add_value(dec_t *d, uint64_t v, smp_ctx_t *x)
{
    if (UNLIKELY(x->nv >= d->c.sample_types)) {
        x->nv++;
        return value_mismatch(d, x);
    }
    d->p->values[x->s->val_off + x->nv++] = (int64_t)v;
    return 0;
}

/* Location IDs, one or packed. A packed run of n bytes holds at most n IDs,
 * so room is reserved once per run. */
static int sample_locations(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    if (f->wt == HP_PB_VARINT) {
        RESERVE(d, sample_locs, n_sample_locs, cap_sample_locs, 1);
        p->sample_locs[p->n_sample_locs++] = narrow_inline(d, f->v);
        return 0;
    }
    int rc = want(d, f, HP_PB_LEN, "sample");
    hp_pbr_t r = f->sub;
    RESERVE(d, sample_locs, n_sample_locs, cap_sample_locs, r.end - r.p);
    uint32_t *out = p->sample_locs + p->n_sample_locs;
    uint64_t v;
    while (rc == 0 && r.p < r.end) {
        if (LIKELY(rd_varint(&r, &v)))
            *out++ = narrow_inline(d, v);
        else
            rc = varint_err(d, &r, "sample");
    }
    p->n_sample_locs = (uint32_t)(out - p->sample_locs);
    return rc;
}

static int sample_values(dec_t *d, const fld_t *f, smp_ctx_t *x)
{
    if (f->wt == HP_PB_VARINT)
        return add_value(d, f->v, x);
    int rc = want(d, f, HP_PB_LEN, "sample");
    hp_pbr_t r = f->sub;
    uint64_t v;
    while (rc == 0 && r.p < r.end)
        rc = rd_varint(&r, &v) ? add_value(d, v, x) : varint_err(d, &r, "sample values");
    return rc;
}

static int label_field(dec_t *d, const fld_t *f, void *obj)
{
    hp_pprof_label_t *l = obj;
    switch (f->num) {
    case 1:
        return str_field(d, f, "label", "key", &l->key);
    case 2:
        return str_field(d, f, "label", "str", &l->str);
    case 3:
        return i64_field(d, f, "label", &l->num);
    case 4:
        return str_field(d, f, "label", "num unit", &l->num_unit);
    default:
        return 0;
    }
}

static int sample_label(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    int rc = want(d, f, HP_PB_LEN, "sample");
    if (rc != 0)
        return rc;
    RESERVE(d, labels, n_labels, cap_labels, 1);
    hp_pprof_label_t *l = &p->labels[p->n_labels++];
    memset(l, 0, sizeof(*l));
    return each_field(d, f->sub, "label", label_field, l);
}

static int sample_field(dec_t *d, const fld_t *f, void *obj)
{
    switch (f->num) {
    case 1:
        return sample_locations(d, f);
    case 2:
        return sample_values(d, f, obj);
    case 3:
        return sample_label(d, f);
    default:
        return 0;
    }
}

/* The per-sample limits (checked after the sample is read: the reading
 * itself is bounded by the input size). */
static int check_sample_limits(dec_t *d, const hp_pprof_sample_t *s)
{
    if (s->loc_n > d->lim.max_stack_depth)
        return hp_err_set(d->err, HP_EINVAL, "sample stack depth exceeds the limit (actual: %u, limit: %u)",
                          s->loc_n, d->lim.max_stack_depth);
    if (s->lab_n > d->lim.max_labels)
        return hp_err_set(d->err, HP_EINVAL,
                          "profile exceeds the sample labels limit (actual: %u, limit: %u)", s->lab_n,
                          d->lim.max_labels);
    return 0;
}

static int dec_sample(dec_t *d, const fld_t *f)
{
    hp_pprof_t *p = d->p;
    uint32_t si = p->n_samples++;
    hp_pprof_sample_t *s = &p->samples[si];
    s->loc_off = p->n_sample_locs;
    s->val_off = si * d->c.sample_types;
    s->lab_off = p->n_labels;
    smp_ctx_t x = {s, si, 0};
    int rc = each_field(d, f->sub, "sample", sample_field, &x);
    s->loc_n = p->n_sample_locs - s->loc_off;
    s->lab_n = p->n_labels - s->lab_off;
    if (rc != 0)
        return rc;
    if (x.nv != d->c.sample_types)
        return value_mismatch(d, &x);
    return check_sample_limits(d, s);
}

/* ------------------------------------------------------------------------
 * Resolving stand-ins to indices.
 */

static COLD int missing_function(dec_t *d, const hp_pprof_location_t *l, uint32_t v)
{
    return hp_err_set(d->err, HP_EINVAL, "location %" PRIu64 " references missing function id %" PRIu64,
                      l->id, widen(d, v));
}

static COLD int missing_mapping(dec_t *d, const hp_pprof_location_t *l, uint32_t v)
{
    return hp_err_set(d->err, HP_EINVAL, "location %" PRIu64 " references missing mapping id %" PRIu64, l->id,
                      widen(d, v));
}

/* Turns location l's mapping and its lines' functions into indices. */
static int resolve_location(dec_t *d, hp_pprof_location_t *l)
{
    hp_pprof_line_t *ln = d->p->lines + l->line_off;
    for (uint32_t j = 0; j < l->line_n; j++) {
        uint32_t idx = idmap_get(&d->functions, ln[j].function);
        if (UNLIKELY(idx == HP_PPROF_NONE))
            return missing_function(d, l, ln[j].function);
        ln[j].function = idx;
    }
    if (l->mapping == 0) {
        l->mapping = HP_PPROF_NONE; /* Node and others have no mappings */
        return 0;
    }
    uint32_t idx = idmap_get(&d->mappings, l->mapping);
    if (UNLIKELY(idx == HP_PPROF_NONE))
        return missing_mapping(d, l, l->mapping);
    l->mapping = idx;
    return 0;
}

static COLD int missing_location(dec_t *d, uint32_t sample, uint32_t v)
{
    if (v == 0)
        return hp_err_set(d->err, HP_EINVAL, "sample %u has location id 0", sample);
    return hp_err_set(d->err, HP_EINVAL, "sample %u references missing location id %" PRIu64, sample,
                      widen(d, v));
}

/* Turns every sample's location stand-ins into indices. */
static int resolve_samples(dec_t *d)
{
    hp_pprof_t *p = d->p;
    const idmap_t *m = &d->locations;
    for (uint32_t i = 0; i < p->n_samples; i++) {
        uint32_t *loc = p->sample_locs + p->samples[i].loc_off;
        for (uint32_t j = 0; j < p->samples[i].loc_n; j++) {
            uint32_t idx = idmap_get(m, loc[j]);
            if (UNLIKELY(idx == HP_PPROF_NONE))
                return missing_location(d, i, loc[j]);
            loc[j] = idx;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The walks and the steps between them.
 */

typedef int (*top_fn)(dec_t *d, const fld_t *f);

typedef struct walk {
    top_fn on[F_TOP_MAX];
} walk_t;

static const walk_t count_walk = {{
    [F_SAMPLE_TYPE] = cnt_sample_type,
    [F_SAMPLE] = cnt_sample,
    [F_MAPPING] = cnt_mapping,
    [F_LOCATION] = cnt_location,
    [F_FUNCTION] = cnt_function,
    [F_STRING] = cnt_string,
    [F_COMMENT] = cnt_comment,
}};

static const walk_t decode_walk = {{
    [F_SAMPLE_TYPE] = sym_sample_type,
    [F_SAMPLE] = dec_sample,
    [F_MAPPING] = sym_mapping,
    [F_LOCATION] = dec_location,
    [F_FUNCTION] = sym_function,
    [F_STRING] = sym_string,
    [F_DROP_FRAMES] = sym_drop_frames,
    [F_KEEP_FRAMES] = sym_keep_frames,
    [F_TIME] = sym_time,
    [F_DURATION] = sym_duration,
    [F_PERIOD_TYPE] = sym_period_type,
    [F_PERIOD] = sym_period,
    [F_COMMENT] = sym_comment,
    [F_DEFAULT_SAMPLE_TYPE] = sym_default_sample_type,
}};

/* Calls w's handler for every top-level field it has one for. */
static int walk_top(dec_t *d, const walk_t *w)
{
    hp_pbr_t r = d->top;
    fld_t f = {0};
    int rc;
    while ((rc = next_field(d, &r, &f, "profile")) > 0)
        if (f.num < F_TOP_MAX && w->on[f.num] != NULL && (rc = w->on[f.num](d, &f)) != 0)
            return rc;
    return rc;
}

static int step_count(dec_t *d)
{
    return walk_top(d, &count_walk);
}

/* Checks the sample limit, and that the values can exist at all: each takes
 * at least a byte, so more values than input bytes means some sample has
 * fewer than one per sample type (and would make the values array huge). */
static int step_check(dec_t *d)
{
    const counts_t *c = &d->c;
    if (c->samples > d->lim.max_samples)
        return hp_err_set(d->err, HP_EINVAL,
                          "profile exceeds the samples count limit (actual: %u, limit: %u)", c->samples,
                          d->lim.max_samples);
    if ((uint64_t)c->samples * c->sample_types > (uint64_t)(d->top.end - d->top.p))
        return hp_err_set(d->err, HP_EINVAL,
                          "sample value length mismatch: %u samples cannot each hold %u values", c->samples,
                          c->sample_types);
    d->n_str = HP_MAX(c->strings, 1);
    return 0;
}

/* First guesses for the growing arrays: a location ID takes a byte or two
 * of a sample, most locations have one line, few samples have labels. */
static void guess_growing(counts_t *c)
{
    c->sample_locs = (uint32_t)(c->sample_bytes / 2) + 16;
    c->labels = c->samples / 8 + 16;
    c->lines = c->locations + c->locations / 4 + 16;
}

/* The arrays of a profile: field, element type, element count. */
#define PPROF_ARRAYS(X)                                                                                      \
    X(strings, hp_str_t, d->n_str)                                                                           \
    X(sample_types, hp_pprof_value_type_t, c->sample_types)                                                  \
    X(samples, hp_pprof_sample_t, c->samples)                                                                \
    X(sample_locs, uint32_t, c->sample_locs)                                                                 \
    X(values, int64_t, (size_t)c->samples * c->sample_types)                                                 \
    X(labels, hp_pprof_label_t, c->labels)                                                                   \
    X(mappings, hp_pprof_mapping_t, c->mappings)                                                             \
    X(locations, hp_pprof_location_t, c->locations)                                                          \
    X(lines, hp_pprof_line_t, c->lines)                                                                      \
    X(functions, hp_pprof_function_t, c->functions)                                                          \
    X(comments, int64_t, c->comments)

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Hands out the next n bytes (rounded to 16) of a block. */
static void *carve(uint8_t **cur, size_t n)
{
    void *r = *cur;
    *cur += round16(n);
    return r;
}

/* Carves every array, at its counted size, out of one arena block. */
static int step_alloc(dec_t *d)
{
    hp_pprof_t *p = d->p;
    const counts_t *c = &d->c;
    guess_growing(&d->c);
    size_t total = 16;
#define SUM(f, T, n) total += round16((size_t)(n) * sizeof(T));
#define CARVE(f, T, n) p->f = carve(&cur, (size_t)(n) * sizeof(T));
    PPROF_ARRAYS(SUM)
    uint8_t *cur = hp_arena_alloc(&p->arena, total);
    PPROF_ARRAYS(CARVE)
#undef SUM
#undef CARVE
    p->strings[0].p = "";
    p->strings[0].n = 0;
    p->n_values = c->samples * c->sample_types;
    d->cap_sample_locs = c->sample_locs;
    d->cap_labels = c->labels;
    d->cap_lines = c->lines;
    return 0;
}

static int step_decode(dec_t *d)
{
    int rc = walk_top(d, &decode_walk);
    if (rc == 0 && d->c.strings == 0)
        d->p->n_strings = 1; /* no table on the wire: index 0 is "" */
    return rc;
}

static int step_maps(dec_t *d)
{
    hp_pprof_t *p = d->p;
    int rc = idmap_build(d, &d->mappings, p->mappings, sizeof(*p->mappings), p->n_mappings, "mapping");
    if (rc == 0)
        rc = idmap_build(d, &d->functions, p->functions, sizeof(*p->functions), p->n_functions, "function");
    if (rc == 0)
        rc = idmap_build(d, &d->locations, p->locations, sizeof(*p->locations), p->n_locations, "location");
    return rc;
}

static int step_resolve_locations(dec_t *d)
{
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < d->p->n_locations; i++)
        rc = resolve_location(d, &d->p->locations[i]);
    return rc;
}

static int step_resolve_samples(dec_t *d)
{
    return resolve_samples(d);
}

typedef int (*step_fn)(dec_t *d);

static const step_fn decode_steps[] = {
    step_count, step_check, step_alloc, step_decode, step_maps, step_resolve_locations, step_resolve_samples,
};

/* Limits with zero fields replaced by the defaults. */
static hp_pprof_limits_t limits_or_default(const hp_pprof_limits_t *l)
{
    hp_pprof_limits_t r = {1u << 22, 1u << 16, 1u << 10};
    if (l != NULL && l->max_samples != 0)
        r.max_samples = l->max_samples;
    if (l != NULL && l->max_stack_depth != 0)
        r.max_stack_depth = l->max_stack_depth;
    if (l != NULL && l->max_labels != 0)
        r.max_labels = l->max_labels;
    return r;
}

int hp_pprof_decode(hp_pprof_t *p, const void *buf, size_t n, const hp_pprof_limits_t *limits, hp_err_t *err)
{
    memset(p, 0, sizeof(*p));
    hp_arena_init(&p->arena, 0);
    if (n > UINT32_MAX)
        return hp_err_set(err, HP_ETOOLARGE, "profile exceeds %u bytes", UINT32_MAX);
    dec_t d;
    memset(&d, 0, sizeof(d));
    d.p = p;
    d.err = err;
    d.lim = limits_or_default(limits);
    d.top = hp_pbr(buf ? buf : "", n);
    hp_arena_init(&d.tmp, 0);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < HP_ARRAY_LEN(decode_steps); i++)
        rc = decode_steps[i](&d);
    hp_arena_fini(&d.tmp);
    if (rc != 0)
        hp_pprof_fini(p);
    if (rc == HP_EINVAL && err != NULL && err->detail == 0)
        err->detail = HP_PPROF_EINVALID;
    return rc;
}

void hp_pprof_fini(hp_pprof_t *p)
{
    hp_arena_fini(&p->arena);
    memset(p, 0, sizeof(*p));
}
