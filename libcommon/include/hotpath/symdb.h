/*
 * symdb.h — a tenant's symbols in memory: deduplicated strings, mappings,
 * functions and locations, and a stack tree where every distinct stack is
 * one node (parent pointer + location), so a stack sent a million times is
 * stored once and a profile's sample is (stack ID, value).
 *
 * Stack ID 0 is the root (the empty stack); a stack's ID is the node of its
 * leaf. IDs are dense and stable for the symdb's life.
 *
 * Thread-safety: none inside. The ingester's head holds a read-write lock
 * around it (imports write, queries read).
 *
 * Not for: the on-disk symbol format (a later block module), or names in a
 * flame graph (tree.h builds those from what this resolves).
 */
#ifndef HOTPATH_SYMDB_H
#define HOTPATH_SYMDB_H

#include "hotpath/common.h"
#include "hotpath/pprof.h"

typedef struct hp_symdb hp_symdb_t;

typedef struct hp_symdb_mapping {
    uint64_t memory_start, memory_limit, file_offset;
    uint32_t filename, build_id; /* string IDs */
    uint8_t flags;               /* bit 0 has_functions, 1 filenames, 2 line numbers, 3 inline frames */
} hp_symdb_mapping_t;

typedef struct hp_symdb_function {
    uint32_t name, system_name, filename; /* string IDs */
    int64_t start_line;
} hp_symdb_function_t;

typedef struct hp_symdb_line {
    uint32_t function; /* function ID */
    int32_t line;
} hp_symdb_line_t;

typedef struct hp_symdb_location {
    uint64_t address;
    uint32_t mapping;  /* mapping ID, or UINT32_MAX for none */
    uint32_t line_off; /* into the symdb's line array; leaf (innermost) first */
    uint32_t line_n;
} hp_symdb_location_t;

hp_symdb_t *hp_symdb_new(void);
void hp_symdb_free(hp_symdb_t *db);

/* Imports every location of p (with its lines' functions, its mapping and
 * their strings), writing the symdb location ID of p->locations[i] into
 * loc_map[i] (an array of p->n_locations). Strings longer than
 * max_symbol_len bytes (0 = no limit) keep their beginning — at most
 * max_symbol_len bytes, cut back to a UTF-8 character boundary so the
 * result stays valid UTF-8. */
void hp_symdb_import(hp_symdb_t *db, const hp_pprof_t *p, uint32_t *loc_map, size_t max_symbol_len);

/* The stack ID of a stack of symdb location IDs, leaf first, inserting the
 * missing nodes. n == 0 gives the root (0). */
uint32_t hp_symdb_stack(hp_symdb_t *db, const uint32_t *locs, size_t n);

/* Read side. IDs must be valid (they came from this symdb). */
uint32_t hp_symdb_stack_parent(const hp_symdb_t *db, uint32_t stack);
uint32_t hp_symdb_stack_location(const hp_symdb_t *db, uint32_t stack);
size_t hp_symdb_n_stacks(const hp_symdb_t *db);
size_t hp_symdb_n_locations(const hp_symdb_t *db);
size_t hp_symdb_n_functions(const hp_symdb_t *db);
size_t hp_symdb_n_mappings(const hp_symdb_t *db);
const hp_symdb_location_t *hp_symdb_location(const hp_symdb_t *db, uint32_t id);
const hp_symdb_line_t *hp_symdb_lines(const hp_symdb_t *db, const hp_symdb_location_t *loc);
const hp_symdb_function_t *hp_symdb_function(const hp_symdb_t *db, uint32_t id);
const hp_symdb_mapping_t *hp_symdb_mapping(const hp_symdb_t *db, uint32_t id);
hp_str_t hp_symdb_string(const hp_symdb_t *db, uint32_t id);

/* The name a flame graph shows for a function: its name, else its system
 * name, else "<unknown>". */
hp_str_t hp_symdb_function_name(const hp_symdb_t *db, uint32_t fn);

/* The arrays a symdb is made of, for serializing it (hp_symdb_arrays) and
 * loading a read-only copy (hp_symdb_load). Stack 0 is the root. */
typedef struct hp_symdb_arrays {
    const hp_str_t *strings; /* strings[0] = "" */
    size_t n_strings;
    const hp_symdb_mapping_t *mappings;
    size_t n_mappings;
    const hp_symdb_function_t *functions;
    size_t n_functions;
    const hp_symdb_location_t *locations;
    size_t n_locations;
    const hp_symdb_line_t *lines;
    size_t n_lines;
    const uint32_t *stack_parents;   /* n_stacks entries; [0] unused */
    const uint32_t *stack_locations; /* n_stacks entries; [0] unused */
    size_t n_stacks;
} hp_symdb_arrays_t;

/* Copies the symdb's arrays out (stack parents/locations into the caller's
 * arrays of hp_symdb_n_stacks entries each; the rest borrowed from db). */
void hp_symdb_arrays(const hp_symdb_t *db, hp_symdb_arrays_t *a, uint32_t *parents, uint32_t *locations);

/* A read-only symdb holding copies of a's arrays. The caller has checked
 * every index in them (they come from a block reader that validated them).
 * Importing into it aborts. Free with hp_symdb_free. */
hp_symdb_t *hp_symdb_load(const hp_symdb_arrays_t *a);

/* Bytes held, for memory accounting and /metrics. */
size_t hp_symdb_bytes(const hp_symdb_t *db);

#endif
