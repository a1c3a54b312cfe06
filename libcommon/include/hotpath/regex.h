/*
 * regex.h — label regexes for selectors (`=~`, `!~`), with RE2's semantics
 * and its guarantee of matching in time linear in the input: a hostile
 * pattern such as `(a*)*b` cannot stall a querier. Patterns are fully
 * anchored, as in PromQL. A small C face over RE2 (regex.cc).
 */
#ifndef HOTPATH_REGEX_H
#define HOTPATH_REGEX_H

#include "hotpath/common.h"

typedef struct hp_regex hp_regex_t;

/* Compiles pattern (anchored at both ends). HP_EINVAL with RE2's reason
 * and *bad_at, the byte offset in pattern of the part it objects to (0 when
 * it does not say). Patterns longer than 4 KiB or whose program would
 * exceed RE2's default memory budget are refused. */
int hp_regex_compile(const char *pattern, hp_regex_t **out, size_t *bad_at, hp_err_t *err) HP_WUR;

/* True when all of s[0..n) matches. Thread-safe. */
bool hp_regex_match(const hp_regex_t *re, const char *s, size_t n);

void hp_regex_free(hp_regex_t *re); /* NULL-safe */

#endif
