/* The block reader's symbols: fetching the section, decoding its columns
 * and checking every index in them before a read-only symdb is built from
 * them (hp_symdb_load trusts what it is given). */
#include <stdlib.h>
#include <string.h>

#include "block_internal.h"

#define WHAT "symbols"

/* The decoded tables; each array owned (freed by syms_fini). */
typedef struct syms {
    hp_symdb_arrays_t a;
    hp_str_t *strings;
    hp_symdb_mapping_t *mappings;
    hp_symdb_function_t *functions;
    hp_symdb_location_t *locations;
    hp_symdb_line_t *lines;
    uint32_t *parents, *locs;
} syms_t;

static void syms_fini(syms_t *s)
{
    free(s->strings);
    free(s->mappings);
    free(s->functions);
    free(s->locations);
    free(s->lines);
    free(s->parents);
    free(s->locs);
}

/* The next value of a delta-coded ID column; false unless it is < n. */
static bool next_id(hp__rd_t *d, uint64_t *prev, uint64_t n, uint32_t *out)
{
    *prev += (uint64_t)hp__rd_s(d);
    *out = (uint32_t)*prev;
    return *prev < n;
}

/* The six counts, each bounded by the bytes its entries need at least. */
static int read_counts(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    uint64_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = hp__rd_u(d);
    uint64_t left = hp__rd_left(d);
    static const uint64_t min_bytes[6] = {1, 6, 4, 4, 2, 2}; /* per entry; stack 0 is not stored */
    uint64_t need = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t k = i == 5 && c[i] > 0 ? c[i] - 1 : c[i];
        if (k > left)
            need = UINT64_MAX;
        else if (need != UINT64_MAX)
            need += k * min_bytes[i];
    }
    if (d->bad || need > left || c[0] == 0 || c[5] == 0 || c[5] != b->n_stacks)
        return hp__blk_fail(b, err, WHAT,
                            "counts (%llu strings, %llu stacks; the index says %llu stacks) do not fit "
                            "%llu bytes",
                            (unsigned long long)c[0], (unsigned long long)c[5],
                            (unsigned long long)b->n_stacks, (unsigned long long)left);
    s->a.n_strings = c[0], s->a.n_mappings = c[1], s->a.n_functions = c[2];
    s->a.n_locations = c[3], s->a.n_lines = c[4], s->a.n_stacks = c[5];
    return 0;
}

static int read_strings(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    s->strings = hp_xcalloc(s->a.n_strings + 1, sizeof(*s->strings));
    if (!hp__blk_rd_strings(d, s->strings, s->a.n_strings))
        return hp__blk_rd_end(b, d, WHAT, err);
    if (s->strings[0].n != 0)
        return hp__blk_fail(b, err, WHAT, "string 0 is not empty");
    return 0;
}

/* A string-ID field of a table row. */
static int check_str(const hp_block_t *b, const syms_t *s, uint64_t id, const char *table, size_t i,
                     const char *field, hp_err_t *err)
{
    if (id < s->a.n_strings)
        return 0;
    return hp__blk_fail(b, err, WHAT, "%s %zu %s: string %llu out of range (%zu strings)", table, i, field,
                        (unsigned long long)id, s->a.n_strings);
}

static int read_mappings(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    s->mappings = hp_xcalloc(s->a.n_mappings + 1, sizeof(*s->mappings));
    for (size_t i = 0; i < s->a.n_mappings; i++) {
        hp_symdb_mapping_t *m = &s->mappings[i];
        m->memory_start = hp__rd_u(d);
        m->memory_limit = hp__rd_u(d);
        m->file_offset = hp__rd_u(d);
        uint64_t fn = hp__rd_u(d), bid = hp__rd_u(d), flags = hp__rd_u(d);
        int rc = check_str(b, s, fn, "mapping", i, "filename", err);
        if (rc == 0)
            rc = check_str(b, s, bid, "mapping", i, "build ID", err);
        if (rc == 0 && flags > 0xff)
            rc = hp__blk_fail(b, err, WHAT, "mapping %zu: flags %llu out of range", i,
                              (unsigned long long)flags);
        if (rc != 0)
            return rc;
        m->filename = (uint32_t)fn, m->build_id = (uint32_t)bid, m->flags = (uint8_t)flags;
    }
    return 0;
}

static int read_functions(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    size_t n = s->a.n_functions;
    s->functions = hp_xcalloc(n + 1, sizeof(*s->functions));
    static const char *const field[3] = {"name", "system name", "filename"};
    for (int f = 0; f < 3; f++) {
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            hp_symdb_function_t *fn = &s->functions[i];
            uint32_t *dst = f == 0 ? &fn->name : f == 1 ? &fn->system_name : &fn->filename;
            if (!next_id(d, &prev, s->a.n_strings, dst))
                return check_str(b, s, prev, "function", i, field[f], err);
        }
    }
    for (size_t i = 0; i < n; i++)
        s->functions[i].start_line = hp__rd_s(d);
    return 0;
}

/* Addresses, mappings, line counts, then line offsets (delta from where
 * the previous location's lines end). */
static int read_locations(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    size_t n = s->a.n_locations;
    s->locations = hp_xcalloc(n + 1, sizeof(*s->locations));
    uint64_t prev = 0, next_line = 0;
    for (size_t i = 0; i < n; i++) {
        prev += (uint64_t)hp__rd_s(d);
        s->locations[i].address = prev;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t m = hp__rd_u(d);
        if (m > s->a.n_mappings)
            return hp__blk_fail(b, err, WHAT, "location %zu: mapping %llu out of range (%zu mappings)", i,
                                (unsigned long long)m - 1, s->a.n_mappings);
        s->locations[i].mapping = m == 0 ? UINT32_MAX : (uint32_t)(m - 1);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t ln = hp__rd_u(d);
        if (ln > s->a.n_lines)
            return hp__blk_fail(b, err, WHAT, "location %zu: %llu lines out of range", i,
                                (unsigned long long)ln);
        s->locations[i].line_n = (uint32_t)ln;
    }
    for (size_t i = 0; i < n; i++) {
        hp_symdb_location_t *l = &s->locations[i];
        next_line += (uint64_t)hp__rd_s(d);
        if (next_line > s->a.n_lines - l->line_n)
            return hp__blk_fail(b, err, WHAT, "location %zu: lines [%llu, +%u) outside the %zu lines", i,
                                (unsigned long long)next_line, l->line_n, s->a.n_lines);
        l->line_off = (uint32_t)next_line;
        next_line += l->line_n;
    }
    return 0;
}

static int read_lines(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    size_t n = s->a.n_lines;
    s->lines = hp_xcalloc(n + 1, sizeof(*s->lines));
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++)
        if (!next_id(d, &prev, s->a.n_functions, &s->lines[i].function))
            return hp__blk_fail(b, err, WHAT, "line %zu: function %llu out of range (%zu functions)", i,
                                (unsigned long long)prev, s->a.n_functions);
    for (size_t i = 0; i < n; i++) {
        int64_t v = hp__rd_s(d);
        if (v < INT32_MIN || v > INT32_MAX)
            return hp__blk_fail(b, err, WHAT, "line %zu: line number %lld out of range", i, (long long)v);
        s->lines[i].line = (int32_t)v;
    }
    return 0;
}

/* Parents as (own ID − parent ID) ≥ 1, so every parent precedes its child
 * and the tree has no cycle; then delta-coded locations. */
static int read_stacks(const hp_block_t *b, hp__rd_t *d, syms_t *s, hp_err_t *err)
{
    size_t n = s->a.n_stacks;
    s->parents = hp_xcalloc(n + 1, sizeof(uint32_t));
    s->locs = hp_xcalloc(n + 1, sizeof(uint32_t));
    for (size_t i = 1; i < n; i++) {
        uint64_t up = hp__rd_u(d);
        if (d->bad)
            return hp__blk_rd_end(b, d, WHAT, err);
        if (up == 0 || up > i)
            return hp__blk_fail(b, err, WHAT, "stack %zu: parent is not an earlier stack", i);
        s->parents[i] = (uint32_t)(i - up);
    }
    uint64_t prev = 0;
    for (size_t i = 1; i < n; i++)
        if (!next_id(d, &prev, s->a.n_locations, &s->locs[i]))
            return hp__blk_fail(b, err, WHAT, "stack %zu: location %llu out of range (%zu locations)", i,
                                (unsigned long long)prev, s->a.n_locations);
    return 0;
}

/* Every table of the section, in order, then the end check. */
static int parse_symbols(const hp_block_t *b, const uint8_t *raw, size_t len, syms_t *s, hp_err_t *err)
{
    hp__rd_t d = hp__rd(raw, len);
    int (*const steps[])(const hp_block_t *, hp__rd_t *, syms_t *, hp_err_t *) = {
        read_counts, read_strings, read_mappings, read_functions, read_locations, read_lines, read_stacks};
    for (size_t i = 0; i < HP_ARRAY_LEN(steps); i++) {
        int rc = steps[i](b, &d, s, err);
        if (rc == 0 && d.bad)
            rc = hp__blk_rd_end(b, &d, WHAT, err);
        if (rc != 0)
            return rc;
    }
    s->a.strings = s->strings;
    s->a.mappings = s->mappings;
    s->a.functions = s->functions;
    s->a.locations = s->locations;
    s->a.lines = s->lines;
    s->a.stack_parents = s->parents;
    s->a.stack_locations = s->locs;
    return hp__blk_rd_end(b, &d, WHAT, err);
}

int hp_block_read_symbols(hp_block_t *b, hp_symdb_t **out, hp_err_t *err)
{
    *out = NULL;
    const hp__blk_entry_t *e = &b->symbols;
    hp_buf_t buf = HP_BUF_INIT;
    uint8_t *raw = NULL;
    syms_t s;
    memset(&s, 0, sizeof(s));
    int rc = hp__blk_fetch(b, WHAT, e->off, e->len, &buf, err);
    if (rc == 0)
        rc = hp__blk_unpack(b, WHAT, buf.data, buf.len, e->crc, e->raw_len, &raw, err);
    hp_buf_fini(&buf);
    if (rc == 0)
        rc = parse_symbols(b, raw, e->raw_len, &s, err);
    if (rc == 0)
        *out = hp_symdb_load(&s.a);
    syms_fini(&s);
    free(raw);
    return rc;
}
