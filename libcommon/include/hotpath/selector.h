/*
 * selector.h — label selectors as Pyroscope's APIs take them: the PromQL
 * metric-selector subset `{a="x", b!="y", c=~"re", d!~"re"}` (an empty `{}`
 * selects everything), and the /pyroscope/render form that prefixes the
 * braces with a profile type ID: `process_cpu:cpu:nanoseconds:cpu:nanoseconds{…}`.
 *
 * A parsed selector owns its strings. Matching is against a sorted label
 * set; a matcher on an absent label sees the empty string, as in PromQL.
 * Regex matchers (=~, !~) are fully anchored RE2 patterns (regex.h: linear
 * time, whatever the pattern); a bad one is HP_EINVAL pointing at its
 * position in the selector.
 *
 * Not for: choosing which series exist (the ingester's index does that).
 */
#ifndef HOTPATH_SELECTOR_H
#define HOTPATH_SELECTOR_H

#include "hotpath/common.h"
#include "hotpath/labels.h"
#include "hotpath/regex.h"

typedef enum { HP_MATCH_EQ = 0, HP_MATCH_NEQ, HP_MATCH_RE, HP_MATCH_NRE } hp_match_op_t;

typedef struct hp_matcher {
    char *name;  /* owned */
    char *value; /* owned */
    hp_match_op_t op;
    hp_regex_t *re; /* owned; for =~ and !~ */
} hp_matcher_t;

typedef struct hp_selector {
    hp_matcher_t *m; /* owned */
    size_t n;
} hp_selector_t;

/* Parses s ("{…}", whitespace allowed around tokens; "" means "{}") into
 * sel (which must be zeroed or finished). HP_EINVAL names the position and
 * what was expected. */
int hp_selector_parse(hp_str_t s, hp_selector_t *sel, hp_err_t *err) HP_WUR;

/* Parses a render query "type{…}" into the profile type ID (owned; caller
 * frees with free()) and selector. A query without a valid 5- or 6-part
 * profile type is HP_EINVAL "query must contain a profile-type selection". */
int hp_selector_parse_query(hp_str_t s, char **profile_type, hp_selector_t *sel,
                            hp_err_t *err) HP_WUR;

void hp_selector_fini(hp_selector_t *sel);

/* True when every matcher holds for ls. */
bool hp_selector_matches(const hp_selector_t *sel, const hp_labels_t *ls);

/* The value an equality matcher requires for name, or NULL. */
const char *hp_selector_eq_value(const hp_selector_t *sel, const char *name);

/* Profile type IDs: name:sample_type:sample_unit:period_type:period_unit
 * (a sixth ":delta" part is accepted and ignored). */
typedef struct hp_profile_type {
    hp_str_t name, sample_type, sample_unit, period_type, period_unit; /* slices of the ID */
} hp_profile_type_t;

int hp_profile_type_parse(hp_str_t id, hp_profile_type_t *pt, hp_err_t *err) HP_WUR;

#endif
