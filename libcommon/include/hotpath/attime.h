/*
 * attime.h — the time expressions Pyroscope's APIs accept in `from`,
 * `until`, `leftFrom` …: "now", "now-1h" (one offset; units s m h d w and
 * ms), an integer of unix seconds, milliseconds (13 digits), microseconds
 * (16) or nanoseconds (19), and YYYYMMDD (8 digits).
 *
 * Not for: durations in configuration (config.h parses those).
 */
#ifndef HOTPATH_ATTIME_H
#define HOTPATH_ATTIME_H

#include "hotpath/common.h"

/* Parses s relative to now_ns into unix nanoseconds. */
int hp_attime_parse(hp_str_t s, int64_t now_ns, int64_t *out_ns, hp_err_t *err) HP_WUR;

#endif
