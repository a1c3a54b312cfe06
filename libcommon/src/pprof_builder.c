/* The pprof builder: deduplicating tables over byte keys, samples summed by
 * key, and the encoder.
 *
 * Every table (strings, mappings, functions, locations, samples) is the same
 * interning table: a key is a byte string (a string's own bytes, or an array
 * of uint64 for the others), its index in the table is its ID - 1. Keys are
 * copied into the builder's arena, so the encoder reads everything back from
 * them:
 *   mapping   memory_start, memory_limit, file_offset, filename, build_id, flags
 *   function  name, system_name, filename, start_line
 *   location  mapping_id, address, then (function_id, line) per line
 *   sample    number of locations, location IDs, then (key, str, num, num_unit)
 *             per label, labels sorted */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/hashmap.h"
#include "hotpath/pprof.h"

enum { MAP_KEY = 6, FN_KEY = 4, LOC_HEAD = 2, LABEL_KEY = 4 };

typedef struct ient {
    uint64_t h;
    const uint8_t *key; /* in the builder's arena */
    size_t n;
} ient_t;

typedef struct itab {
    ient_t *ents;
    size_t n, cap;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;     /* slot count - 1; 0 before the first insert */
} itab_t;

/* A growable uint64 array used to build keys. */
typedef struct u64v {
    uint64_t *v;
    size_t n, cap;
} u64v_t;

struct hp_pprof_builder {
    hp_arena_t keys;
    itab_t strings, mappings, functions, locations, samples;
    hp_pprof_value_type_t *types;
    size_t n_types, cap_types;
    hp_pprof_value_type_t period_type;
    int64_t period, time_nanos, duration_nanos;
    int64_t *values; /* n_types per sample */
    size_t cap_values;
    u64v_t loc_key, sample_key;
};

/* ------------------------------------------------------------------------
 * Interning tables.
 */

static void itab_fini(itab_t *t)
{
    free(t->ents);
    free(t->slots);
}

/* Doubles the slot array (from 64) and re-inserts every entry. */
static void itab_rehash(itab_t *t)
{
    size_t slots = t->slots ? (t->mask + 1) * 2 : 64;
    free(t->slots);
    t->slots = hp_xcalloc(slots, sizeof(uint32_t));
    t->mask = slots - 1;
    for (size_t e = 0; e < t->n; e++) {
        size_t i = t->ents[e].h & t->mask;
        while (t->slots[i] != 0)
            i = (i + 1) & t->mask;
        t->slots[i] = (uint32_t)(e + 1);
    }
}

/* The slot where key (hash h) is or would go. */
static size_t itab_find(const itab_t *t, const void *key, size_t n, uint64_t h)
{
    size_t i = h & t->mask;
    for (; t->slots[i] != 0; i = (i + 1) & t->mask) {
        const ient_t *e = &t->ents[t->slots[i] - 1];
        if (e->h == h && e->n == n && (n == 0 || memcmp(e->key, key, n) == 0))
            break;
    }
    return i;
}

/* Returns the index of key in t, adding a copy of it when new (*added says
 * which). */
static uint32_t itab_intern(hp_pprof_builder_t *b, itab_t *t, const void *key, size_t n, bool *added)
{
    if (t->slots == NULL || (t->n + 1) * 2 > t->mask + 1)
        itab_rehash(t);
    uint64_t h = XXH3_64bits(key, n);
    size_t i = itab_find(t, key, n, h);
    *added = t->slots[i] == 0;
    if (!*added)
        return t->slots[i] - 1;
    HP_GROW(t->ents, t->cap, t->n + 1);
    uint8_t *copy = hp_arena_alloc(&b->keys, n);
    if (n != 0)
        memcpy(copy, key, n);
    t->ents[t->n] = (ient_t){h, copy, n};
    t->slots[i] = (uint32_t)++t->n;
    return (uint32_t)(t->n - 1);
}

static const uint64_t *ent_u64(const itab_t *t, size_t i, size_t *n)
{
    *n = t->ents[i].n / sizeof(uint64_t);
    return (const uint64_t *)(const void *)t->ents[i].key;
}

static inline void u64v_push(u64v_t *a, uint64_t v)
{
    if (a->n == a->cap)
        HP_GROW(a->v, a->cap, a->n + 1);
    a->v[a->n++] = v;
}

/* ------------------------------------------------------------------------
 * Public building calls.
 */

hp_pprof_builder_t *hp_pprof_builder_new(void)
{
    hp_pprof_builder_t *b = hp_xcalloc(1, sizeof(*b));
    hp_arena_init(&b->keys, 0);
    (void)hp_pprof_builder_string(b, "", 0);
    return b;
}

void hp_pprof_builder_free(hp_pprof_builder_t *b)
{
    if (b == NULL)
        return;
    itab_fini(&b->strings);
    itab_fini(&b->mappings);
    itab_fini(&b->functions);
    itab_fini(&b->locations);
    itab_fini(&b->samples);
    free(b->types);
    free(b->values);
    free(b->loc_key.v);
    free(b->sample_key.v);
    hp_arena_fini(&b->keys);
    free(b);
}

uint32_t hp_pprof_builder_string(hp_pprof_builder_t *b, const char *s, size_t n)
{
    bool added;
    return itab_intern(b, &b->strings, n ? s : "", n, &added);
}

static uint32_t str_of(hp_pprof_builder_t *b, hp_str_t s)
{
    return hp_pprof_builder_string(b, s.p, s.n);
}

/* Adds a sample type given as string indices. Ignored once samples exist,
 * since every sample's values are laid out by the type count. */
static void add_type(hp_pprof_builder_t *b, uint32_t type, uint32_t unit)
{
    if (b->samples.n != 0)
        return;
    HP_GROW(b->types, b->cap_types, b->n_types + 1);
    b->types[b->n_types].type = type;
    b->types[b->n_types].unit = unit;
    b->n_types++;
}

void hp_pprof_builder_sample_type(hp_pprof_builder_t *b, hp_str_t type, hp_str_t unit)
{
    add_type(b, str_of(b, type), str_of(b, unit));
}

void hp_pprof_builder_period(hp_pprof_builder_t *b, hp_str_t type, hp_str_t unit, int64_t period)
{
    b->period_type.type = str_of(b, type);
    b->period_type.unit = str_of(b, unit);
    b->period = period;
}

void hp_pprof_builder_times(hp_pprof_builder_t *b, int64_t time_nanos, int64_t duration_nanos)
{
    b->time_nanos = time_nanos;
    b->duration_nanos = duration_nanos;
}

/* Interns a mapping key; returns its ID. */
static uint64_t intern_u64(hp_pprof_builder_t *b, itab_t *t, const uint64_t *key, size_t n)
{
    bool added;
    return (uint64_t)itab_intern(b, t, key, n * sizeof(uint64_t), &added) + 1;
}

static uint64_t mapping_flags(bool fns, bool files, bool lines, bool inl)
{
    return (uint64_t)fns | (uint64_t)files << 1 | (uint64_t)lines << 2 | (uint64_t)inl << 3;
}

uint64_t hp_pprof_builder_mapping(hp_pprof_builder_t *b, const hp_pprof_mapping_in_t *m)
{
    uint64_t key[MAP_KEY] = {
        m->memory_start,
        m->memory_limit,
        m->file_offset,
        str_of(b, m->filename),
        str_of(b, m->build_id),
        mapping_flags(m->has_functions, m->has_filenames, m->has_line_numbers, m->has_inline_frames),
    };
    return intern_u64(b, &b->mappings, key, MAP_KEY);
}

uint64_t hp_pprof_builder_function(hp_pprof_builder_t *b, hp_str_t name, hp_str_t system_name,
                                   hp_str_t filename, int64_t start_line)
{
    uint64_t key[FN_KEY] = {str_of(b, name), str_of(b, system_name), str_of(b, filename),
                            (uint64_t)start_line};
    return intern_u64(b, &b->functions, key, FN_KEY);
}

uint64_t hp_pprof_builder_location(hp_pprof_builder_t *b, uint64_t mapping_id, uint64_t address,
                                   const hp_pprof_line_in_t *lines, size_t n_lines)
{
    u64v_t *k = &b->loc_key;
    k->n = 0;
    u64v_push(k, mapping_id);
    u64v_push(k, address);
    for (size_t i = 0; i < n_lines; i++) {
        u64v_push(k, lines[i].function_id);
        u64v_push(k, (uint64_t)lines[i].line);
    }
    return intern_u64(b, &b->locations, k->v, k->n);
}

/* Orders two label tuples (4 uint64 each). */
static int label_cmp(const uint64_t *a, const uint64_t *b)
{
    for (int i = 0; i < LABEL_KEY; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Sorts the n label tuples at l (few per sample: insertion sort). */
static void sort_labels(uint64_t *l, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t t[LABEL_KEY];
        memcpy(t, l + i * LABEL_KEY, sizeof(t));
        size_t j = i;
        for (; j > 0 && label_cmp(l + (j - 1) * LABEL_KEY, t) > 0; j--)
            memcpy(l + j * LABEL_KEY, l + (j - 1) * LABEL_KEY, sizeof(t));
        memcpy(l + j * LABEL_KEY, t, sizeof(t));
    }
}

/* Adds values to the sample whose key is in b->sample_key (labels from
 * label_at on, unsorted), creating it with zero values if new. */
static void add_sample_key(hp_pprof_builder_t *b, size_t label_at, const int64_t *values)
{
    u64v_t *k = &b->sample_key;
    sort_labels(k->v + label_at, (k->n - label_at) / LABEL_KEY);
    bool added;
    uint32_t i = itab_intern(b, &b->samples, k->v, k->n * sizeof(uint64_t), &added);
    if (b->n_types == 0)
        return;
    if (added) {
        HP_GROW(b->values, b->cap_values, b->samples.n * b->n_types);
        memset(b->values + (size_t)i * b->n_types, 0, b->n_types * sizeof(int64_t));
    }
    int64_t *row = b->values + (size_t)i * b->n_types;
    for (size_t j = 0; j < b->n_types; j++)
        row[j] = (int64_t)((uint64_t)row[j] + (uint64_t)values[j]); /* wraps, never traps */
}

/* Starts a sample key with its location IDs. */
static void sample_key_start(hp_pprof_builder_t *b, const uint64_t *loc_ids, size_t n)
{
    u64v_t *k = &b->sample_key;
    k->n = 0;
    u64v_push(k, n);
    for (size_t i = 0; i < n; i++)
        u64v_push(k, loc_ids[i]);
}

static void push_label(u64v_t *k, uint64_t key, uint64_t str, int64_t num, uint64_t unit)
{
    u64v_push(k, key);
    u64v_push(k, str);
    u64v_push(k, (uint64_t)num);
    u64v_push(k, unit);
}

void hp_pprof_builder_sample(hp_pprof_builder_t *b, const uint64_t *loc_ids, size_t n_locs,
                             const int64_t *values, const hp_pprof_label_in_t *labels, size_t n_labels)
{
    sample_key_start(b, loc_ids, n_locs);
    size_t label_at = b->sample_key.n;
    for (size_t i = 0; i < n_labels; i++) {
        const hp_pprof_label_in_t *l = &labels[i];
        push_label(&b->sample_key, str_of(b, l->key), str_of(b, l->str), l->num, str_of(b, l->num_unit));
    }
    add_sample_key(b, label_at, values);
}

/* ------------------------------------------------------------------------
 * Merging a decoded profile: per-profile caches map each of its strings,
 * mappings, functions and locations to the builder's once.
 */

typedef struct remap {
    const hp_pprof_t *p;
    uint32_t *str; /* p string index → builder index; UINT32_MAX until seen */
    uint64_t *map; /* p index → builder ID; 0 until seen */
    uint64_t *fn;
    uint64_t *loc;
    hp_pprof_line_in_t *lines; /* scratch for one location */
    size_t cap_lines;
    uint64_t *ids; /* scratch for one sample's location IDs */
    size_t cap_ids;
    int64_t *vals; /* one sample's selected values */
} remap_t;

static void remap_init(remap_t *r, const hp_pprof_t *p)
{
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->str = hp_xmalloc((p->n_strings + 1) * sizeof(uint32_t));
    memset(r->str, 0xff, (p->n_strings + 1) * sizeof(uint32_t));
    r->map = hp_xcalloc(p->n_mappings + 1, sizeof(uint64_t));
    r->fn = hp_xcalloc(p->n_functions + 1, sizeof(uint64_t));
    r->loc = hp_xcalloc(p->n_locations + 1, sizeof(uint64_t));
}

static void remap_fini(remap_t *r)
{
    free(r->str);
    free(r->map);
    free(r->fn);
    free(r->loc);
    free(r->lines);
    free(r->ids);
    free(r->vals);
}

static uint32_t remap_str(hp_pprof_builder_t *b, remap_t *r, uint32_t i)
{
    if (i >= r->p->n_strings)
        return 0;
    if (r->str[i] == UINT32_MAX)
        r->str[i] = str_of(b, r->p->strings[i]);
    return r->str[i];
}

static uint64_t remap_mapping(hp_pprof_builder_t *b, remap_t *r, uint32_t i)
{
    if (i == HP_PPROF_NONE || i >= r->p->n_mappings)
        return 0;
    if (r->map[i] != 0)
        return r->map[i];
    const hp_pprof_mapping_t *m = &r->p->mappings[i];
    uint64_t key[MAP_KEY] = {
        m->memory_start,
        m->memory_limit,
        m->file_offset,
        remap_str(b, r, m->filename),
        remap_str(b, r, m->build_id),
        mapping_flags(m->has_functions, m->has_filenames, m->has_line_numbers, m->has_inline_frames),
    };
    return r->map[i] = intern_u64(b, &b->mappings, key, MAP_KEY);
}

static uint64_t remap_function(hp_pprof_builder_t *b, remap_t *r, uint32_t i)
{
    if (r->fn[i] != 0)
        return r->fn[i];
    const hp_pprof_function_t *f = &r->p->functions[i];
    uint64_t key[FN_KEY] = {remap_str(b, r, f->name), remap_str(b, r, f->system_name),
                            remap_str(b, r, f->filename), (uint64_t)f->start_line};
    return r->fn[i] = intern_u64(b, &b->functions, key, FN_KEY);
}

static uint64_t remap_location(hp_pprof_builder_t *b, remap_t *r, uint32_t i)
{
    if (r->loc[i] != 0)
        return r->loc[i];
    const hp_pprof_location_t *l = &r->p->locations[i];
    HP_GROW(r->lines, r->cap_lines, l->line_n);
    for (uint32_t j = 0; j < l->line_n; j++) {
        const hp_pprof_line_t *ln = &r->p->lines[l->line_off + j];
        r->lines[j].function_id = remap_function(b, r, ln->function);
        r->lines[j].line = ln->line;
    }
    uint64_t m = remap_mapping(b, r, l->mapping);
    return r->loc[i] = hp_pprof_builder_location(b, m, l->address, r->lines, l->line_n);
}

/* Adds sample s of r->p with the builder location IDs ids[0..n) (leaf
 * first), taking value columns cols[0..n_cols). */
static void remap_sample_at(hp_pprof_builder_t *b, remap_t *r, const hp_pprof_sample_t *s,
                            const uint64_t *ids, size_t n, const uint32_t *cols, size_t n_cols)
{
    const hp_pprof_t *p = r->p;
    for (size_t j = 0; j < b->n_types; j++) {
        uint32_t c = j >= n_cols ? UINT32_MAX : cols ? cols[j] : (uint32_t)j;
        r->vals[j] = c < p->n_sample_types ? p->values[s->val_off + c] : 0;
    }
    sample_key_start(b, ids, n);
    size_t label_at = b->sample_key.n;
    for (uint32_t j = 0; j < s->lab_n; j++) {
        const hp_pprof_label_t *l = &p->labels[s->lab_off + j];
        push_label(&b->sample_key, remap_str(b, r, l->key), remap_str(b, r, l->str), l->num,
                   remap_str(b, r, l->num_unit));
    }
    add_sample_key(b, label_at, r->vals);
}

/* Adds sample s of r->p, taking value columns cols[0..n_cols). */
static void remap_sample(hp_pprof_builder_t *b, remap_t *r, const hp_pprof_sample_t *s, const uint32_t *cols,
                         size_t n_cols)
{
    const hp_pprof_t *p = r->p;
    HP_GROW(r->ids, r->cap_ids, s->loc_n);
    for (uint32_t j = 0; j < s->loc_n; j++)
        r->ids[j] = remap_location(b, r, p->sample_locs[s->loc_off + j]);
    remap_sample_at(b, r, s, r->ids, s->loc_n, cols, n_cols);
}

/* Takes p's selected sample types when the builder has none yet, and its
 * period when the builder has none. */
static void adopt_types(hp_pprof_builder_t *b, remap_t *r, const uint32_t *cols, size_t n_cols)
{
    const hp_pprof_t *p = r->p;
    bool take = b->n_types == 0 && b->samples.n == 0;
    for (size_t j = 0; take && j < n_cols; j++) {
        uint32_t c = cols ? cols[j] : (uint32_t)j;
        if (c < p->n_sample_types)
            add_type(b, remap_str(b, r, p->sample_types[c].type), remap_str(b, r, p->sample_types[c].unit));
        else
            add_type(b, 0, 0); /* a column p lacks: kept, so columns stay aligned, and zero */
    }
    if (b->period == 0 && b->period_type.type == 0) {
        b->period_type.type = remap_str(b, r, p->period_type.type);
        b->period_type.unit = remap_str(b, r, p->period_type.unit);
        b->period = p->period;
    }
}

/* Widens the builder's time range to cover p's. */
static void merge_times(hp_pprof_builder_t *b, const hp_pprof_t *p)
{
    int64_t b_end, p_end;
    if (p->time_nanos == 0)
        return;
    if (b->time_nanos == 0) {
        b->time_nanos = p->time_nanos;
        b->duration_nanos = p->duration_nanos;
        return;
    }
    if (__builtin_add_overflow(b->time_nanos, b->duration_nanos, &b_end) ||
        __builtin_add_overflow(p->time_nanos, p->duration_nanos, &p_end))
        return;
    int64_t start = HP_MIN(b->time_nanos, p->time_nanos);
    if (__builtin_sub_overflow(HP_MAX(b_end, p_end), start, &b->duration_nanos))
        b->duration_nanos = 0;
    b->time_nanos = start;
}

void hp_pprof_builder_add_profile(hp_pprof_builder_t *b, const hp_pprof_t *p, const uint32_t *value_idx,
                                  size_t n_values)
{
    remap_t r;
    size_t n_cols = value_idx ? n_values : p->n_sample_types;
    remap_init(&r, p);
    adopt_types(b, &r, value_idx, n_cols);
    r.vals = hp_xcalloc(b->n_types + 1, sizeof(int64_t));
    for (uint32_t i = 0; i < p->n_samples; i++)
        remap_sample(b, &r, &p->samples[i], value_idx, n_cols);
    merge_times(b, p);
    remap_fini(&r);
}

/* ------------------------------------------------------------------------
 * Truncation: the call tree of a profile cut to its largest nodes.
 */

/* The call tree of a decoded profile: a node per distinct path of frames
 * from the root (a frame is a line's function, or a location without
 * lines), with the total of the first value column under it. */
typedef struct call_tree {
    hp_u64map_t children; /* parent << 32 | frame key → node */
    int64_t *total;       /* by node; node 0 is the root */
    size_t n, cap;
    uint32_t *loc_node; /* parallel to p->sample_locs: the node of each location's outermost frame */
} call_tree_t;

/* The child of parent for frame key, created when new; 0 when the tree
 * cannot grow (node IDs are 32-bit). */
static uint32_t tree_child(call_tree_t *t, uint32_t parent, uint32_t key)
{
    uint64_t k = (uint64_t)parent << 32 | key, v;
    if (hp_u64map_get(&t->children, k, &v))
        return (uint32_t)v;
    if (t->n + 1 >= UINT32_MAX)
        return 0;
    HP_GROW(t->total, t->cap, t->n + 2);
    t->total[++t->n] = 0;
    hp_u64map_put(&t->children, k, t->n);
    return (uint32_t)t->n;
}

/* Builds p's call tree; false when it outgrew 32-bit node IDs. */
static bool call_tree_build(call_tree_t *t, const hp_pprof_t *p)
{
    memset(t, 0, sizeof(*t));
    hp_u64map_init(&t->children, 1024);
    HP_GROW(t->total, t->cap, 1);
    t->total[0] = 0;
    t->loc_node = hp_xcalloc(p->n_sample_locs + 1, sizeof(uint32_t));
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        int64_t v = p->n_sample_types ? p->values[s->val_off] : 0;
        uint32_t node = 0;
        for (uint32_t j = s->loc_n; j-- > 0;) { /* root first */
            uint32_t li = p->sample_locs[s->loc_off + j];
            const hp_pprof_location_t *loc = &p->locations[li];
            uint32_t frames = loc->line_n ? loc->line_n : 1;
            for (uint32_t k = frames; k-- > 0;) { /* outermost line first */
                uint32_t key = loc->line_n ? p->lines[loc->line_off + k].function : p->n_functions + li;
                if ((node = tree_child(t, node, key)) == 0)
                    return false;
                t->total[node] = (int64_t)((uint64_t)t->total[node] + (uint64_t)v);
                if (k == frames - 1)
                    t->loc_node[s->loc_off + j] = node;
            }
        }
    }
    return true;
}

static void call_tree_fini(call_tree_t *t)
{
    hp_u64map_fini(&t->children);
    free(t->total);
    free(t->loc_node);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x > y ? -1 : x < y;
}

/* The total a node needs to be among the max_nodes largest. */
static int64_t keep_threshold(const call_tree_t *t, size_t max_nodes)
{
    int64_t *v = hp_xmalloc(t->n * sizeof(int64_t));
    memcpy(v, t->total + 1, t->n * sizeof(int64_t));
    qsort(v, t->n, sizeof(int64_t), cmp_desc);
    int64_t min = v[max_nodes - 1];
    free(v);
    return min;
}

void hp_pprof_builder_add_truncated(hp_pprof_builder_t *b, const hp_pprof_t *p, int64_t max_nodes)
{
    call_tree_t t;
    bool built = max_nodes > 0 && call_tree_build(&t, p);
    if (!built || t.n <= (uint64_t)max_nodes) {
        if (max_nodes > 0)
            call_tree_fini(&t);
        hp_pprof_builder_add_profile(b, p, NULL, 0);
        return;
    }
    int64_t min = keep_threshold(&t, (size_t)max_nodes);
    remap_t r;
    remap_init(&r, p);
    adopt_types(b, &r, NULL, p->n_sample_types);
    r.vals = hp_xcalloc(b->n_types + 1, sizeof(int64_t));
    uint64_t other = 0; /* the "other" location, made when first needed */
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        uint32_t cut = s->loc_n; /* locations [cut, loc_n) are kept: a root-side run */
        while (cut > 0 && t.total[t.loc_node[s->loc_off + cut - 1]] >= min)
            cut--;
        size_t n = 0;
        HP_GROW(r.ids, r.cap_ids, s->loc_n - cut + 1);
        if (cut > 0 && other == 0) {
            hp_pprof_line_in_t line = {
                hp_pprof_builder_function(b, HP_STR("other"), HP_STR("other"), HP_STR(""), 0), 0};
            other = hp_pprof_builder_location(b, 0, 0, &line, 1);
        }
        if (cut > 0)
            r.ids[n++] = other; /* what was below the last kept location */
        for (uint32_t j = cut; j < s->loc_n; j++)
            r.ids[n++] = remap_location(b, &r, p->sample_locs[s->loc_off + j]);
        remap_sample_at(b, &r, s, r.ids, n, NULL, p->n_sample_types);
    }
    merge_times(b, p);
    remap_fini(&r);
    call_tree_fini(&t);
}

/* ------------------------------------------------------------------------
 * Encoding.
 */

static void put_value_type(hp_buf_t *out, uint32_t field, const hp_pprof_value_type_t *vt)
{
    size_t m = hp_pb_begin_len(out, field);
    hp_pb_put_uint(out, 1, vt->type);
    hp_pb_put_uint(out, 2, vt->unit);
    hp_pb_end_len(out, m);
}

static void put_sample(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i)
{
    size_t n;
    const uint64_t *k = ent_u64(&b->samples, i, &n);
    size_t n_locs = (size_t)k[0];
    size_t m = hp_pb_begin_len(out, 2);
    hp_pb_put_packed_u64(out, 1, k + 1, n_locs);
    if (b->n_types != 0)
        hp_pb_put_packed_i64(out, 2, b->values + i * b->n_types, b->n_types);
    for (const uint64_t *l = k + 1 + n_locs; l + LABEL_KEY <= k + n; l += LABEL_KEY) {
        size_t lm = hp_pb_begin_len(out, 3);
        hp_pb_put_uint(out, 1, l[0]);
        hp_pb_put_uint(out, 2, l[1]);
        hp_pb_put_uint(out, 3, l[2]);
        hp_pb_put_uint(out, 4, l[3]);
        hp_pb_end_len(out, lm);
    }
    hp_pb_end_len(out, m);
}

static void put_mapping(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i)
{
    size_t n;
    const uint64_t *k = ent_u64(&b->mappings, i, &n);
    size_t m = hp_pb_begin_len(out, 3);
    hp_pb_put_uint(out, 1, i + 1);
    for (uint32_t f = 0; f < 5; f++)
        hp_pb_put_uint(out, 2 + f, k[f]);
    for (uint32_t bit = 0; bit < 4; bit++)
        hp_pb_put_uint(out, 7 + bit, (k[5] >> bit) & 1);
    hp_pb_end_len(out, m);
}

static void put_location(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i)
{
    size_t n;
    const uint64_t *k = ent_u64(&b->locations, i, &n);
    size_t m = hp_pb_begin_len(out, 4);
    hp_pb_put_uint(out, 1, i + 1);
    hp_pb_put_uint(out, 2, k[0]);
    hp_pb_put_uint(out, 3, k[1]);
    for (size_t j = LOC_HEAD; j + 2 <= n; j += 2) {
        size_t lm = hp_pb_begin_len(out, 4);
        hp_pb_put_uint(out, 1, k[j]);
        hp_pb_put_uint(out, 2, k[j + 1]);
        hp_pb_end_len(out, lm);
    }
    hp_pb_end_len(out, m);
}

static void put_function(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i)
{
    size_t n;
    const uint64_t *k = ent_u64(&b->functions, i, &n);
    size_t m = hp_pb_begin_len(out, 5);
    hp_pb_put_uint(out, 1, i + 1);
    for (uint32_t f = 0; f < FN_KEY; f++)
        hp_pb_put_uint(out, 2 + f, k[f]);
    hp_pb_end_len(out, m);
}

static void put_string(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i)
{
    hp_pb_put_bytes(out, 6, b->strings.ents[i].key, b->strings.ents[i].n);
}

typedef void (*put_fn)(hp_buf_t *out, const hp_pprof_builder_t *b, size_t i);

void hp_pprof_builder_encode(hp_pprof_builder_t *b, hp_buf_t *out)
{
    static const struct {
        size_t off;
        put_fn put;
    } tables[] = {
        {offsetof(hp_pprof_builder_t, samples), put_sample},
        {offsetof(hp_pprof_builder_t, mappings), put_mapping},
        {offsetof(hp_pprof_builder_t, locations), put_location},
        {offsetof(hp_pprof_builder_t, functions), put_function},
        {offsetof(hp_pprof_builder_t, strings), put_string},
    };
    for (size_t i = 0; i < b->n_types; i++)
        put_value_type(out, 1, &b->types[i]);
    for (size_t t = 0; t < HP_ARRAY_LEN(tables); t++) {
        const itab_t *tab = (const itab_t *)(const void *)((const char *)b + tables[t].off);
        for (size_t i = 0; i < tab->n; i++)
            tables[t].put(out, b, i);
    }
    hp_pb_put_uint(out, 9, (uint64_t)b->time_nanos);
    hp_pb_put_uint(out, 10, (uint64_t)b->duration_nanos);
    if (b->period_type.type != 0 || b->period_type.unit != 0)
        put_value_type(out, 11, &b->period_type);
    hp_pb_put_uint(out, 12, (uint64_t)b->period);
}
