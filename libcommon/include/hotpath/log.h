/*
 * log.h — structured logs in logfmt on stderr:
 *   ts=2026-11-25T21:00:00.123Z level=info component=ingester msg="flushed head" tenant=a bytes=123
 *
 * The level and component are set once at startup, before any thread starts
 * (the one process-wide setting in hotpath); each line is written with one
 * write(2), so lines from different threads never interleave.
 *
 * Not for: metrics (metrics.h) or user-facing error messages (hp_err_t).
 */
#ifndef HOTPATH_LOG_H
#define HOTPATH_LOG_H

#include "hotpath/common.h"

typedef enum { HP_LOG_DEBUG = 0, HP_LOG_INFO, HP_LOG_WARN, HP_LOG_ERROR } hp_log_level_t;

/* Sets the process's component name (borrowed, must live forever) and level. */
void hp_log_setup(const char *component, hp_log_level_t level);

/* Parses "debug", "info", "warn", "error". Returns -1 for anything else. */
int hp_log_level_parse(const char *s);

bool hp_log_enabled(hp_log_level_t level);

/* Writes one line: msg is quoted; kvfmt (may be NULL) is a printf format for
 * further key=value pairs, e.g. "tenant=%s bytes=%zu". Values that may hold
 * spaces or quotes should be passed through hp_log_q(). */
void hp_log(hp_log_level_t level, const char *msg, const char *kvfmt, ...) HP_PRINTF(3, 4);

/* Quotes s for logfmt into buf (size n) and returns buf. */
const char *hp_log_q(char *buf, size_t n, const char *s);

#define HP_DEBUG(msg, ...) \
    do { if (hp_log_enabled(HP_LOG_DEBUG)) hp_log(HP_LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define HP_INFO(msg, ...) hp_log(HP_LOG_INFO, msg, __VA_ARGS__)
#define HP_WARN(msg, ...) hp_log(HP_LOG_WARN, msg, __VA_ARGS__)
#define HP_ERROR(msg, ...) hp_log(HP_LOG_ERROR, msg, __VA_ARGS__)

#endif
