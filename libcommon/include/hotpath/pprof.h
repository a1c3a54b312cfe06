/*
 * pprof.h — the pprof codec: a validating, allocation-light decoder of the
 * Profile protobuf into flat arrays, and a builder that deduplicates symbols
 * and samples and encodes a Profile.
 *
 * The decoder resolves every ID reference to an array index while it
 * validates, so consumers never look IDs up: a sample's locations are
 * indices into p->locations, a line's function is an index into
 * p->functions, a location's mapping an index into p->mappings (or
 * HP_PPROF_NONE). Strings are slices of the input buffer, which must outlive
 * the decoded profile.
 *
 * Not for: decompression (compress.h) or the Pyroscope-specific meaning of
 * sample types and labels (the distributor and ingester own that).
 */
#ifndef HOTPATH_PPROF_H
#define HOTPATH_PPROF_H

#include "hotpath/arena.h"
#include "hotpath/buf.h"
#include "hotpath/common.h"

#define HP_PPROF_NONE UINT32_MAX

/* err->detail after a failed hp_pprof_decode: the bytes are not a
 * well-formed Profile (truncated, bad wire types), or they are one whose
 * content is invalid (references, strings, counts). Pyroscope answers the
 * two differently on /ingest (400 and 422). */
enum { HP_PPROF_EWIRE = 1, HP_PPROF_EINVALID = 2 };

typedef struct hp_pprof_value_type {
    uint32_t type; /* string index */
    uint32_t unit; /* string index */
} hp_pprof_value_type_t;

typedef struct hp_pprof_label {
    uint32_t key; /* string index */
    uint32_t str; /* string index (0 when numeric) */
    int64_t num;
    uint32_t num_unit; /* string index */
} hp_pprof_label_t;

typedef struct hp_pprof_sample {
    uint32_t loc_off; /* first entry in p->sample_locs */
    uint32_t loc_n;
    uint32_t val_off; /* first entry in p->values; p->n_sample_types values */
    uint32_t lab_off; /* first entry in p->labels */
    uint32_t lab_n;
} hp_pprof_sample_t;

typedef struct hp_pprof_mapping {
    uint64_t id;
    uint64_t memory_start, memory_limit, file_offset;
    uint32_t filename, build_id; /* string indices */
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} hp_pprof_mapping_t;

typedef struct hp_pprof_line {
    uint32_t function; /* index into p->functions */
    int64_t line;
    int64_t column;
} hp_pprof_line_t;

typedef struct hp_pprof_location {
    uint64_t id;
    uint32_t mapping; /* index into p->mappings, or HP_PPROF_NONE */
    uint64_t address;
    uint32_t line_off; /* first entry in p->lines; leaf (innermost) first */
    uint32_t line_n;
    bool is_folded;
} hp_pprof_location_t;

typedef struct hp_pprof_function {
    uint64_t id;
    uint32_t name, system_name, filename; /* string indices */
    int64_t start_line;
} hp_pprof_function_t;

/* A decoded profile. All arrays live in the arena; strings point into the
 * buffer given to hp_pprof_decode (borrowed). */
typedef struct hp_pprof {
    hp_arena_t arena;
    hp_str_t *strings;
    uint32_t n_strings;
    hp_pprof_value_type_t *sample_types;
    uint32_t n_sample_types;
    hp_pprof_sample_t *samples;
    uint32_t n_samples;
    uint32_t *sample_locs; /* location indices, leaf first, per sample */
    uint32_t n_sample_locs;
    int64_t *values;
    uint32_t n_values;
    hp_pprof_label_t *labels;
    uint32_t n_labels;
    hp_pprof_mapping_t *mappings;
    uint32_t n_mappings;
    hp_pprof_location_t *locations;
    uint32_t n_locations;
    hp_pprof_line_t *lines;
    uint32_t n_lines;
    hp_pprof_function_t *functions;
    uint32_t n_functions;
    int64_t *comments; /* string indices */
    uint32_t n_comments;
    int64_t drop_frames, keep_frames; /* string indices */
    int64_t time_nanos, duration_nanos;
    hp_pprof_value_type_t period_type;
    int64_t period;
    int64_t default_sample_type; /* string index */
} hp_pprof_t;

/* Limits a decode enforces; exceeding one is HP_EINVAL with a message that
 * names the limit. Zero fields take the defaults noted beside each. */
typedef struct hp_pprof_limits {
    uint32_t max_samples;     /* default 1 << 22 */
    uint32_t max_stack_depth; /* per sample; default 1 << 16 */
    uint32_t max_labels;      /* per sample; default 1 << 10 */
} hp_pprof_limits_t;

/* Decodes and validates a pprof Profile from buf[0..n) (uncompressed) into p.
 * p must be zeroed or finished; on success the caller frees with
 * hp_pprof_fini, and on failure p holds nothing that needs freeing (fini is
 * still safe). Checks, each with its own message (Pyroscope's wording where
 * it has one): truncated or malformed wire data, string_table[0] != "",
 * string indices out of range, strings that are not valid UTF-8, IDs of 0,
 * duplicate IDs, sample location/function/mapping IDs that do not exist,
 * sample value count != sample type count, and the limits. An empty buffer
 * is a valid empty profile (callers decide whether that is an error).
 * limits may be NULL. */
int hp_pprof_decode(hp_pprof_t *p, const void *buf, size_t n, const hp_pprof_limits_t *limits,
                    hp_err_t *err) HP_WUR;

void hp_pprof_fini(hp_pprof_t *p);

/* The string at index i, or "" when i is out of range. */
static inline hp_str_t hp_pprof_str(const hp_pprof_t *p, int64_t i)
{
    if (i < 0 || (uint64_t)i >= p->n_strings) {
        hp_str_t e = {"", 0};
        return e;
    }
    return p->strings[i];
}

/* ------------------------------------------------------------------------
 * Builder: collects a profile with deduplicated strings, mappings,
 * functions and locations, and samples summed by (location sequence, label
 * set), then encodes it. IDs it returns are the 1-based pprof IDs it will
 * write. Not thread-safe.
 */
typedef struct hp_pprof_builder hp_pprof_builder_t;

hp_pprof_builder_t *hp_pprof_builder_new(void);
void hp_pprof_builder_free(hp_pprof_builder_t *b);

/* Interns a string; returns its string-table index ("" is 0). */
uint32_t hp_pprof_builder_string(hp_pprof_builder_t *b, const char *s, size_t n);

/* Sets the sample types (strings given as text); must be called before the
 * first sample. */
void hp_pprof_builder_sample_type(hp_pprof_builder_t *b, hp_str_t type, hp_str_t unit);
void hp_pprof_builder_period(hp_pprof_builder_t *b, hp_str_t type, hp_str_t unit, int64_t period);
void hp_pprof_builder_times(hp_pprof_builder_t *b, int64_t time_nanos, int64_t duration_nanos);

typedef struct hp_pprof_mapping_in {
    uint64_t memory_start, memory_limit, file_offset;
    hp_str_t filename, build_id;
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} hp_pprof_mapping_in_t;

/* Deduplicated by all fields. Returns the mapping ID (≥ 1). */
uint64_t hp_pprof_builder_mapping(hp_pprof_builder_t *b, const hp_pprof_mapping_in_t *m);

/* Deduplicated by (name, system_name, filename, start_line). Returns the
 * function ID (≥ 1). */
uint64_t hp_pprof_builder_function(hp_pprof_builder_t *b, hp_str_t name, hp_str_t system_name,
                                   hp_str_t filename, int64_t start_line);

typedef struct hp_pprof_line_in {
    uint64_t function_id;
    int64_t line;
} hp_pprof_line_in_t;

/* Deduplicated by (mapping_id, address, lines); mapping_id 0 = none.
 * Returns the location ID (≥ 1). */
uint64_t hp_pprof_builder_location(hp_pprof_builder_t *b, uint64_t mapping_id, uint64_t address,
                                   const hp_pprof_line_in_t *lines, size_t n_lines);

typedef struct hp_pprof_label_in {
    hp_str_t key, str;
    int64_t num;
    hp_str_t num_unit;
} hp_pprof_label_in_t;

/* Adds values (one per sample type) to the sample with these location IDs
 * (leaf first) and labels, creating it if new. */
void hp_pprof_builder_sample(hp_pprof_builder_t *b, const uint64_t *loc_ids, size_t n_locs,
                             const int64_t *values, const hp_pprof_label_in_t *labels,
                             size_t n_labels);

/* Encodes the collected profile (uncompressed) into out (appended). */
void hp_pprof_builder_encode(hp_pprof_builder_t *b, hp_buf_t *out);

/* Copies one decoded profile into the builder: every sample with its stack
 * and labels, symbols deduplicated against what the builder already has.
 * Only the value columns listed in value_idx (n_values of them; NULL = all,
 * in order) are taken, so callers can extract one sample type. Use this to
 * merge many profiles into one. */
void hp_pprof_builder_add_profile(hp_pprof_builder_t *b, const hp_pprof_t *p,
                                  const uint32_t *value_idx, size_t n_values);

/* Copies p into the builder as hp_pprof_builder_add_profile does (every
 * value column), its call tree cut to about max_nodes nodes as Pyroscope's
 * SelectMergeProfile does with max_nodes: the nodes of the tree — paths of
 * frames from the root, a frame being a line's function (inlined ones
 * included) or a location without lines — are ranked by the total of the
 * first value column under them; a sample keeps its locations from the
 * root down to the last whose outermost frame is among the max_nodes
 * largest (ties kept), and the rest of its stack becomes one location of a
 * function named "other" (a stack with nothing kept: that location alone).
 * Samples left with equal stacks and labels merge; totals are unchanged.
 * max_nodes <= 0, or a tree that already fits: p unchanged. */
void hp_pprof_builder_add_truncated(hp_pprof_builder_t *b, const hp_pprof_t *p, int64_t max_nodes);

#endif
