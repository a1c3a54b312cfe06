/* In-memory symbol tables with a parent-pointer stack tree. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/arena.h"
#include "hotpath/hashmap.h"
#include "hotpath/symdb.h"

typedef struct stack_node {
    uint32_t parent;
    uint32_t location;
} stack_node_t;

struct hp_symdb {
    hp_arena_t strmem; /* string bytes; pointers stable */
    hp_str_t *strings;
    size_t n_strings, cap_strings;
    hp_idtab_t string_ids;

    hp_symdb_mapping_t *mappings;
    size_t n_mappings, cap_mappings;
    hp_idtab_t mapping_ids;

    hp_symdb_function_t *functions;
    size_t n_functions, cap_functions;
    hp_idtab_t function_ids;

    hp_symdb_location_t *locations;
    size_t n_locations, cap_locations;
    hp_symdb_line_t *lines;
    size_t n_lines, cap_lines;
    hp_idtab_t location_ids;

    stack_node_t *stacks;
    size_t n_stacks, cap_stacks;
    hp_u64map_t children; /* (parent << 32 | location) → stack ID */
    hp_u64map_t whole;    /* hash of a whole stack → its ID: most stacks recur */
    bool read_only;       /* loaded from a block: no dedup tables */
};

hp_symdb_t *hp_symdb_new(void)
{
    hp_symdb_t *db = hp_xcalloc(1, sizeof(*db));
    hp_arena_init(&db->strmem, 256 * 1024);
    hp_idtab_init(&db->string_ids, 1024);
    hp_idtab_init(&db->mapping_ids, 16);
    hp_idtab_init(&db->function_ids, 1024);
    hp_idtab_init(&db->location_ids, 1024);
    hp_u64map_init(&db->children, 4096);
    hp_u64map_init(&db->whole, 1024);
    HP_GROW(db->strings, db->cap_strings, 1);
    db->strings[db->n_strings++] = (hp_str_t){"", 0};
    HP_GROW(db->stacks, db->cap_stacks, 1);
    db->stacks[db->n_stacks++] = (stack_node_t){0, UINT32_MAX}; /* root */
    return db;
}

void hp_symdb_free(hp_symdb_t *db)
{
    if (db == NULL)
        return;
    hp_arena_fini(&db->strmem);
    free(db->strings);
    hp_idtab_fini(&db->string_ids);
    free(db->mappings);
    hp_idtab_fini(&db->mapping_ids);
    free(db->functions);
    hp_idtab_fini(&db->function_ids);
    free(db->locations);
    free(db->lines);
    hp_idtab_fini(&db->location_ids);
    free(db->stacks);
    hp_u64map_fini(&db->children);
    hp_u64map_fini(&db->whole);
    free(db);
}

static bool string_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp_symdb_t *db = ctx;
    return hp_str_eq(db->strings[id], *(const hp_str_t *)key);
}

/* The length of s cut to at most max bytes, backed up to the start of a
 * UTF-8 sequence so no character is split (at most 3 bytes back: a valid
 * sequence is at most 4 bytes long). */
static size_t utf8_cut(hp_str_t s, size_t max)
{
    size_t n = max;
    for (int back = 0; back < 3 && n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80; back++)
        n--;
    return n;
}

/* Interns s (its first bytes, up to max when max > 0, ending on a UTF-8
 * character boundary). "" is always 0. */
static uint32_t intern(hp_symdb_t *db, hp_str_t s, size_t max)
{
    if (max && s.n > max)
        s.n = utf8_cut(s, max);
    if (s.n == 0)
        return 0;
    uint64_t h = XXH3_64bits(s.p, s.n);
    uint32_t id = hp_idtab_find(&db->string_ids, h, string_eq, db, &s);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)db->n_strings;
    HP_GROW(db->strings, db->cap_strings, db->n_strings + 1);
    db->strings[db->n_strings++] = (hp_str_t){hp_arena_strndup(&db->strmem, s.p, s.n), s.n};
    hp_idtab_insert(&db->string_ids, h, id);
    return id;
}

/* Field by field: the structs have padding, which memcmp would read. */
static bool mapping_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp_symdb_mapping_t *a = &((const hp_symdb_t *)ctx)->mappings[id], *b = key;
    return a->memory_start == b->memory_start && a->memory_limit == b->memory_limit &&
           a->file_offset == b->file_offset && a->filename == b->filename && a->build_id == b->build_id &&
           a->flags == b->flags;
}

/* Appends n bytes of v, little-endian, at *p. */
static void put_le(uint8_t **p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *(*p)++ = (uint8_t)(v >> (8 * i));
}

/* A hash of the fields packed without padding. */
static uint64_t mapping_hash(const hp_symdb_mapping_t *m)
{
    uint8_t buf[3 * 8 + 2 * 4 + 1], *p = buf;
    put_le(&p, m->memory_start, 8);
    put_le(&p, m->memory_limit, 8);
    put_le(&p, m->file_offset, 8);
    put_le(&p, m->filename, 4);
    put_le(&p, m->build_id, 4);
    put_le(&p, m->flags, 1);
    return XXH3_64bits(buf, (size_t)(p - buf));
}

static uint32_t add_mapping(hp_symdb_t *db, const hp_pprof_t *p, const hp_pprof_mapping_t *pm,
                            size_t max)
{
    hp_symdb_mapping_t m;
    memset(&m, 0, sizeof(m));
    m.memory_start = pm->memory_start;
    m.memory_limit = pm->memory_limit;
    m.file_offset = pm->file_offset;
    m.filename = intern(db, hp_pprof_str(p, pm->filename), max);
    m.build_id = intern(db, hp_pprof_str(p, pm->build_id), max);
    m.flags = (uint8_t)(pm->has_functions | pm->has_filenames << 1 | pm->has_line_numbers << 2 |
                        pm->has_inline_frames << 3);
    uint64_t h = mapping_hash(&m);
    uint32_t id = hp_idtab_find(&db->mapping_ids, h, mapping_eq, db, &m);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)db->n_mappings;
    HP_GROW(db->mappings, db->cap_mappings, db->n_mappings + 1);
    db->mappings[db->n_mappings++] = m;
    hp_idtab_insert(&db->mapping_ids, h, id);
    return id;
}

/* Field by field, as mapping_eq. */
static bool function_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp_symdb_function_t *a = &((const hp_symdb_t *)ctx)->functions[id], *b = key;
    return a->name == b->name && a->system_name == b->system_name && a->filename == b->filename &&
           a->start_line == b->start_line;
}

static uint64_t function_hash(const hp_symdb_function_t *f)
{
    uint8_t buf[3 * 4 + 8], *p = buf;
    put_le(&p, f->name, 4);
    put_le(&p, f->system_name, 4);
    put_le(&p, f->filename, 4);
    put_le(&p, (uint64_t)f->start_line, 8);
    return XXH3_64bits(buf, (size_t)(p - buf));
}

static uint32_t add_function(hp_symdb_t *db, const hp_pprof_t *p, const hp_pprof_function_t *pf,
                             size_t max)
{
    hp_symdb_function_t f;
    memset(&f, 0, sizeof(f));
    f.name = intern(db, hp_pprof_str(p, pf->name), max);
    f.system_name = intern(db, hp_pprof_str(p, pf->system_name), max);
    f.filename = intern(db, hp_pprof_str(p, pf->filename), max);
    f.start_line = pf->start_line;
    uint64_t h = function_hash(&f);
    uint32_t id = hp_idtab_find(&db->function_ids, h, function_eq, db, &f);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)db->n_functions;
    HP_GROW(db->functions, db->cap_functions, db->n_functions + 1);
    db->functions[db->n_functions++] = f;
    hp_idtab_insert(&db->function_ids, h, id);
    return id;
}

/* A location's identity for deduplication: its header and its lines. */
typedef struct loc_key {
    uint64_t address;
    uint32_t mapping;
    uint32_t line_n;
    const hp_symdb_line_t *lines;
} loc_key_t;

static bool location_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp_symdb_t *db = ctx;
    const loc_key_t *k = key;
    const hp_symdb_location_t *l = &db->locations[id];
    return l->address == k->address && l->mapping == k->mapping && l->line_n == k->line_n &&
           (k->line_n == 0 ||
            memcmp(db->lines + l->line_off, k->lines, k->line_n * sizeof(hp_symdb_line_t)) == 0);
}

static uint64_t location_hash(const loc_key_t *k)
{
    uint64_t h = XXH3_64bits(k->lines, k->line_n * sizeof(hp_symdb_line_t));
    return hp_mix64(h ^ hp_mix64(k->address) ^ ((uint64_t)k->mapping << 32 | k->line_n));
}

/* Imports one pprof location given the symdb IDs of p's mappings and
 * functions. Lines are staged at the end of db->lines and kept only if the
 * location is new. */
static uint32_t add_location(hp_symdb_t *db, const hp_pprof_t *p, const hp_pprof_location_t *pl,
                             const uint32_t *map_ids, const uint32_t *fn_ids)
{
    HP_GROW(db->lines, db->cap_lines, db->n_lines + pl->line_n);
    hp_symdb_line_t *staged = db->lines + db->n_lines;
    for (uint32_t i = 0; i < pl->line_n; i++) {
        const hp_pprof_line_t *ln = &p->lines[pl->line_off + i];
        staged[i].function = fn_ids[ln->function];
        staged[i].line = (int32_t)ln->line;
    }
    loc_key_t k = {pl->address, pl->mapping == HP_PPROF_NONE ? UINT32_MAX : map_ids[pl->mapping],
                   pl->line_n, staged};
    uint64_t h = location_hash(&k);
    uint32_t id = hp_idtab_find(&db->location_ids, h, location_eq, db, &k);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)db->n_locations;
    HP_GROW(db->locations, db->cap_locations, db->n_locations + 1);
    db->locations[db->n_locations++] =
        (hp_symdb_location_t){k.address, k.mapping, (uint32_t)db->n_lines, k.line_n};
    db->n_lines += pl->line_n;
    hp_idtab_insert(&db->location_ids, h, id);
    return id;
}

void hp_symdb_import(hp_symdb_t *db, const hp_pprof_t *p, uint32_t *loc_map, size_t max_symbol_len)
{
    if (db->read_only)
        abort(); /* a programming error: blocks are immutable */
    uint32_t *map_ids = hp_xmalloc((p->n_mappings + 1) * sizeof(uint32_t));
    uint32_t *fn_ids = hp_xmalloc((p->n_functions + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < p->n_mappings; i++)
        map_ids[i] = add_mapping(db, p, &p->mappings[i], max_symbol_len);
    for (uint32_t i = 0; i < p->n_functions; i++)
        fn_ids[i] = add_function(db, p, &p->functions[i], max_symbol_len);
    for (uint32_t i = 0; i < p->n_locations; i++)
        loc_map[i] = add_location(db, p, &p->locations[i], map_ids, fn_ids);
    free(map_ids);
    free(fn_ids);
}

/* True when stack ID id is exactly locs[0..n) (leaf first). */
static bool stack_is(const hp_symdb_t *db, uint32_t id, const uint32_t *locs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (id == 0 || db->stacks[id].location != locs[i])
            return false;
        id = db->stacks[id].parent;
    }
    return id == 0;
}

/* Walks the tree from the root, adding missing nodes: one hash probe per
 * frame. */
static uint32_t insert_stack(hp_symdb_t *db, const uint32_t *locs, size_t n)
{
    uint32_t node = 0;
    for (size_t i = n; i-- > 0;) {
        uint64_t key = (uint64_t)node << 32 | locs[i];
        bool found;
        uint64_t *slot = hp_u64map_upsert(&db->children, key, db->n_stacks, &found);
        if (!found) {
            HP_GROW(db->stacks, db->cap_stacks, db->n_stacks + 1);
            db->stacks[db->n_stacks] = (stack_node_t){node, locs[i]};
            *slot = db->n_stacks++;
        }
        node = (uint32_t)*slot;
    }
    return node;
}

/* A stack seen before is found by one hash of the whole stack and checked
 * by following its parent pointers, instead of a probe per frame. */
uint32_t hp_symdb_stack(hp_symdb_t *db, const uint32_t *locs, size_t n)
{
    if (db->read_only)
        abort(); /* a programming error: blocks are immutable */
    if (n == 0)
        return 0;
    uint64_t h = XXH3_64bits_withSeed(locs, n * sizeof(uint32_t), n), id;
    if (hp_u64map_get(&db->whole, h, &id) && stack_is(db, (uint32_t)id, locs, n))
        return (uint32_t)id;
    uint32_t node = insert_stack(db, locs, n);
    hp_u64map_put(&db->whole, h, node);
    return node;
}

uint32_t hp_symdb_stack_parent(const hp_symdb_t *db, uint32_t stack) { return db->stacks[stack].parent; }
uint32_t hp_symdb_stack_location(const hp_symdb_t *db, uint32_t stack) { return db->stacks[stack].location; }
size_t hp_symdb_n_stacks(const hp_symdb_t *db) { return db->n_stacks; }
size_t hp_symdb_n_locations(const hp_symdb_t *db) { return db->n_locations; }
size_t hp_symdb_n_functions(const hp_symdb_t *db) { return db->n_functions; }
size_t hp_symdb_n_mappings(const hp_symdb_t *db) { return db->n_mappings; }

const hp_symdb_location_t *hp_symdb_location(const hp_symdb_t *db, uint32_t id) { return &db->locations[id]; }

const hp_symdb_line_t *hp_symdb_lines(const hp_symdb_t *db, const hp_symdb_location_t *loc)
{
    return db->lines + loc->line_off;
}

const hp_symdb_function_t *hp_symdb_function(const hp_symdb_t *db, uint32_t id) { return &db->functions[id]; }
const hp_symdb_mapping_t *hp_symdb_mapping(const hp_symdb_t *db, uint32_t id) { return &db->mappings[id]; }
hp_str_t hp_symdb_string(const hp_symdb_t *db, uint32_t id) { return db->strings[id]; }

hp_str_t hp_symdb_function_name(const hp_symdb_t *db, uint32_t fn)
{
    const hp_symdb_function_t *f = &db->functions[fn];
    if (f->name)
        return db->strings[f->name];
    if (f->system_name)
        return db->strings[f->system_name];
    return HP_STR("<unknown>");
}

size_t hp_symdb_bytes(const hp_symdb_t *db)
{
    return db->strmem.used + db->cap_strings * sizeof(hp_str_t) +
           db->string_ids.cap * 8 + db->cap_mappings * sizeof(hp_symdb_mapping_t) +
           db->cap_functions * sizeof(hp_symdb_function_t) + db->function_ids.cap * 8 +
           db->cap_locations * sizeof(hp_symdb_location_t) + db->location_ids.cap * 8 +
           db->cap_lines * sizeof(hp_symdb_line_t) + db->cap_stacks * sizeof(stack_node_t) +
           db->children.cap * 16 + db->whole.cap * 16;
}

void hp_symdb_arrays(const hp_symdb_t *db, hp_symdb_arrays_t *a, uint32_t *parents, uint32_t *locations)
{
    for (size_t i = 0; i < db->n_stacks; i++) {
        parents[i] = db->stacks[i].parent;
        locations[i] = db->stacks[i].location;
    }
    *a = (hp_symdb_arrays_t){db->strings,   db->n_strings,   db->mappings, db->n_mappings,
                             db->functions, db->n_functions, db->locations, db->n_locations,
                             db->lines,     db->n_lines,     parents,       locations,
                             db->n_stacks};
}

/* Copies n elements of size sz into a fresh array (capacity n). */
static void *copy_array(const void *src, size_t n, size_t sz, size_t *cap)
{
    void *p = hp_xmalloc(n * sz + 1);
    if (n)
        memcpy(p, src, n * sz);
    *cap = n;
    return p;
}

hp_symdb_t *hp_symdb_load(const hp_symdb_arrays_t *a)
{
    hp_symdb_t *db = hp_xcalloc(1, sizeof(*db));
    db->read_only = true;
    hp_arena_init(&db->strmem, 256 * 1024);
    db->strings = hp_xmalloc((a->n_strings + 1) * sizeof(hp_str_t));
    db->cap_strings = a->n_strings;
    for (size_t i = 0; i < a->n_strings; i++)
        db->strings[i] = (hp_str_t){hp_arena_strndup(&db->strmem, a->strings[i].p, a->strings[i].n), a->strings[i].n};
    db->n_strings = a->n_strings;
    db->mappings = copy_array(a->mappings, a->n_mappings, sizeof(*a->mappings), &db->cap_mappings);
    db->n_mappings = a->n_mappings;
    db->functions = copy_array(a->functions, a->n_functions, sizeof(*a->functions), &db->cap_functions);
    db->n_functions = a->n_functions;
    db->locations = copy_array(a->locations, a->n_locations, sizeof(*a->locations), &db->cap_locations);
    db->n_locations = a->n_locations;
    db->lines = copy_array(a->lines, a->n_lines, sizeof(*a->lines), &db->cap_lines);
    db->n_lines = a->n_lines;
    db->stacks = hp_xmalloc((a->n_stacks + 1) * sizeof(stack_node_t));
    db->cap_stacks = a->n_stacks + 1;
    db->stacks[0] = (stack_node_t){0, UINT32_MAX};
    for (size_t i = 1; i < a->n_stacks; i++)
        db->stacks[i] = (stack_node_t){a->stack_parents[i], a->stack_locations[i]};
    db->n_stacks = a->n_stacks ? a->n_stacks : 1;
    return db;
}
