/*
 * labels.h — label sets and series identity: building, sorting, validating
 * and fingerprinting the `name="value"` pairs that identify a series, and
 * parsing the `app{k=v,…}` names that /ingest clients send.
 *
 * A label set holds borrowed slices; whoever builds it keeps the strings
 * alive (an arena, the request body, a symbol table). hp_labels_clone copies
 * the strings into an arena when the set must outlive its source.
 *
 * Not for: selecting series (selector.h).
 */
#ifndef HOTPATH_LABELS_H
#define HOTPATH_LABELS_H

#include "hotpath/arena.h"
#include "hotpath/buf.h"
#include "hotpath/common.h"

/* Reserved label names (Pyroscope's). */
#define HP_LABEL_NAME "__name__"
#define HP_LABEL_PROFILE_TYPE "__profile_type__"
#define HP_LABEL_SERVICE_NAME_PRIV "__service_name__"
#define HP_LABEL_TYPE "__type__"
#define HP_LABEL_UNIT "__unit__"
#define HP_LABEL_PERIOD_TYPE "__period_type__"
#define HP_LABEL_PERIOD_UNIT "__period_unit__"
#define HP_LABEL_DELTA "__delta__"
#define HP_LABEL_SESSION_ID "__session_id__"
#define HP_LABEL_SERVICE_NAME "service_name"

typedef struct hp_label {
    hp_str_t name;
    hp_str_t value;
} hp_label_t;

typedef struct hp_labels {
    hp_label_t *v; /* owned array (hp_xmalloc); strings borrowed */
    size_t n;
    size_t cap;
} hp_labels_t;

void hp_labels_init(hp_labels_t *ls);
void hp_labels_fini(hp_labels_t *ls);
void hp_labels_reset(hp_labels_t *ls);

/* Appends a pair (no dedup; see hp_labels_set). */
void hp_labels_add(hp_labels_t *ls, hp_str_t name, hp_str_t value);

/* Sets name to value, replacing an existing pair of that name. */
void hp_labels_set(hp_labels_t *ls, hp_str_t name, hp_str_t value);

/* Removes every pair called name. */
void hp_labels_del(hp_labels_t *ls, const char *name);

/* Removes every pair whose value is empty: as in Pyroscope (whose
 * LabelsBuilder deletes a label set to ""), an empty value means no label. */
void hp_labels_del_empty(hp_labels_t *ls);

/* The value of name, or p == NULL when absent. */
hp_str_t hp_labels_get(const hp_labels_t *ls, const char *name);

/* Sorts by name (stable for equal names, which validation rejects). */
void hp_labels_sort(hp_labels_t *ls);

/* Copies src into dst (dst's strings borrowed from src's sources). */
void hp_labels_copy(hp_labels_t *dst, const hp_labels_t *src);

/* Copies every string of ls into the arena, so ls outlives its sources. */
void hp_labels_clone(hp_labels_t *ls, hp_arena_t *a);

/* A 64-bit fingerprint of a sorted set: XXH3 of each name and each value
 * in turn, each hash seeding the next, so pair boundaries count without
 * separators or a copy. Not Pyroscope's fingerprint; stable across
 * processes and versions of hotpath that share this code. */
uint64_t hp_labels_fingerprint(const hp_labels_t *ls);

/* Appends `{a="1", b="2"}` (Go %q-quoted values, ", " separated) — the
 * string Pyroscope hashes onto its ring and shows in messages. */
void hp_labels_format(const hp_labels_t *ls, hp_buf_t *out);

/* Appends each pair as a types.v1.LabelPair {name = 1, value = 2} in
 * field `field` of the enclosing message. */
void hp_labels_encode(const hp_labels_t *ls, uint32_t field, hp_buf_t *out);

/* Equality of two sorted sets. */
bool hp_labels_equal(const hp_labels_t *a, const hp_labels_t *b);

/* Replaces '.' with '_' in label names — Pyroscope's default sanitization,
 * turning otel.scope.name into otel_scope_name — and nothing else: a name
 * with any other invalid character (my-label, 1abc) stays as it is, for
 * hp_labels_validate to refuse. Changed names are copied into the arena. */
void hp_labels_sanitize_names(hp_labels_t *ls, hp_arena_t *a);

typedef struct hp_label_limits {
    size_t max_names;        /* per series; 0 = no limit */
    size_t max_name_length;  /* 0 = no limit */
    size_t max_value_length; /* 0 = no limit */
} hp_label_limits_t;

/* Validates a sorted set as a series identity: service_name present and
 * non-empty, names match [a-zA-Z_][a-zA-Z0-9_]* (the message names the
 * label and the rule), values valid UTF-8, no duplicate names, and the
 * limits. HP_EINVAL with Pyroscope's wording. */
/* err->detail of a hp_labels_validate refusal: which rule, so callers can
 * count it under Pyroscope's discard reason. */
enum {
    HP_LABELS_EMISSING = 32,  /* no labels, or no service_name: missing_labels */
    HP_LABELS_ETOO_MANY,      /* max_label_names_per_series */
    HP_LABELS_ENAME_LONG,     /* label_name_too_long */
    HP_LABELS_EVALUE_LONG,    /* label_value_too_long */
    HP_LABELS_EINVALID,       /* invalid_labels */
    HP_LABELS_EDUPLICATE,     /* duplicate_label_names */
};

int hp_labels_validate(const hp_labels_t *ls, const hp_label_limits_t *lim, hp_err_t *err) HP_WUR;

/* Parses an /ingest `name` parameter, `app.name{k1=v1,k2=v2}`, into the app
 * name and its labels (slices of s). Keys and values are trimmed and not
 * quoted; the app name may hold [A-Za-z0-9_./-], keys [A-Za-z0-9_.]. */
int hp_labels_parse_app_name(hp_str_t s, hp_str_t *app, hp_labels_t *labels, hp_err_t *err) HP_WUR;

#endif
