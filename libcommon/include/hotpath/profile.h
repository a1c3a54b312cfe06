/*
 * profile.h — how a pprof becomes series, as Pyroscope defines it; shared by
 * the distributor (which validates what it will accept) and the ingester
 * (which stores it), so both derive the same series from the same bytes.
 *
 *   - the metric name (`__name__`) from the sample types, honouring a
 *     client's sample_type_config display names;
 *   - samples grouped by their string pprof labels (except profile_id,
 *     span_id, trace_id), each group a series of its own;
 *   - one series per sample type, identified by the profile type ID
 *     `name:sample_type:sample_unit:period_type:period_unit` and the
 *     reserved labels __profile_type__, __type__, __unit__,
 *     __period_type__, __period_unit__;
 *   - a sample's span: its `span_id` (or `profile_id`) label, 16 hex digits
 *     as OpenTelemetry integrations set it, as a 64-bit number, which stays
 *     on the sample.
 *
 * Not for: decoding (pprof.h) or storage (the ingester's head).
 */
#ifndef HOTPATH_PROFILE_H
#define HOTPATH_PROFILE_H

#include "hotpath/arena.h"
#include "hotpath/labels.h"
#include "hotpath/pprof.h"

/* One entry of a client's sample_type_config. */
typedef struct hp_stc_entry {
    char *sample_type;  /* owned */
    char *display_name; /* owned, may be NULL */
    char *units;        /* owned, may be NULL */
    char *aggregation;  /* owned, may be NULL */
    bool cumulative, sampled;
} hp_stc_entry_t;

typedef struct hp_stc {
    hp_stc_entry_t *v; /* owned */
    size_t n;
} hp_stc_t;

/* Parses a sample_type_config JSON object
 * {"<sample type>": {"units": …, "display-name": …, "aggregation": …,
 * "cumulative": bool, "sampled": bool}}. HP_EINVAL on malformed JSON. */
int hp_stc_parse(const char *json, size_t n, hp_stc_t *stc, hp_err_t *err) HP_WUR;
void hp_stc_fini(hp_stc_t *stc);

/* The metric name of a profile (Pyroscope's rules): "wall" if any sample
 * type is wall; otherwise from the first sample type whose name (or its
 * display name in stc, or in the default table when stc is NULL) contains
 * cpu → process_cpu; alloc_/inuse_ or is space/objects → memory; mutex_ →
 * mutex; block_ → block; goroutines → goroutines; otherwise the last
 * sample type's name. Borrowed from p or static storage. */
hp_str_t hp_profile_metric_name(const hp_pprof_t *p, const hp_stc_t *stc);

/* A group of samples sharing one set of string labels. */
typedef struct hp_sample_group {
    hp_labels_t labels; /* names sanitized, values borrowed from the pprof */
    uint32_t *samples;  /* indices into p->samples, in the arena */
    uint32_t n;
} hp_sample_group_t;

/* Groups p's samples by their string labels (except profile_id, span_id
 * and trace_id, which stay on samples). A profile without labels gives one
 * group with every sample. groups is an arena array; each group's labels
 * must be freed with hp_profile_groups_fini. */
void hp_profile_group_samples(const hp_pprof_t *p, hp_arena_t *a, hp_sample_group_t **groups,
                              size_t *n_groups);
void hp_profile_groups_fini(hp_sample_group_t *groups, size_t n);

/* Appends to buf the profile type ID of sample type i, using metric name. */
void hp_profile_type_id(const hp_pprof_t *p, uint32_t i, hp_str_t metric, hp_buf_t *buf);

/* Builds the series labels of sample type i for one group: base (no name
 * twice: validated labels), overridden by the group's labels (NULL: none;
 * of equal names the last wins), without __profile_type__
 * and __delta__, plus the reserved type labels; sorted by name. The type ID
 * is copied into the arena; every other string is borrowed from base,
 * group, metric and p, which must outlive out. Sorted base and group
 * labels (as hp_labels_sort and hp_profile_group_samples leave them) are
 * merged in one pass; others take a slower path. */
void hp_profile_series_labels(const hp_pprof_t *p, uint32_t i, hp_str_t metric,
                              const hp_labels_t *base, const hp_labels_t *group, hp_arena_t *a,
                              hp_labels_t *out);

/* The sample label keys that never become series labels. */
bool hp_profile_label_is_sample_only(hp_str_t key);

/* A span ID as OpenTelemetry writes it: exactly 16 hex digits (either
 * case), read as a big-endian 64-bit number into *out. False for anything
 * else. 0 parses but means "no span" everywhere (an all-zero span ID is
 * invalid in W3C trace context, and Pyroscope never matches it). */
bool hp_span_id_parse(hp_str_t s, uint64_t *out);

/* The span of sample s, as Pyroscope reads it: its first `span_id` or
 * `profile_id` string label (Pyroscope renames the latter, which the Java
 * agent and JFR recordings set, to the former) that is a valid span ID; 0
 * (no span) when there is none. A malformed one is no span, not an error. */
uint64_t hp_profile_sample_span(const hp_pprof_t *p, const hp_pprof_sample_t *s);

#endif
