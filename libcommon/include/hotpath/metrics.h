/*
 * metrics.h — a registry of counters, gauges and histograms, rendered in the
 * Prometheus text exposition format (0.0.4) for GET /metrics, plus the
 * process_* metrics read from /proc/self.
 *
 * Metrics are identified by name plus a rendered label string
 * (`tenant="a",reason="x"`); looking one up creates it on first use. Updates
 * are lock-free atomics; lookups take a lock, so hot paths keep the pointer.
 *
 * Not for: logs (log.h) or tracing.
 */
#ifndef HOTPATH_METRICS_H
#define HOTPATH_METRICS_H

#include "hotpath/buf.h"
#include "hotpath/common.h"

typedef struct hp_metrics hp_metrics_t;
typedef struct hp_metric hp_metric_t;

hp_metrics_t *hp_metrics_new(void);
void hp_metrics_free(hp_metrics_t *m);

/* Counter / gauge / histogram `name{labels}`; labels may be NULL or "" and
 * are given already rendered (values escaped with hp_metrics_escape). help
 * is used the first time the name is seen. Returns a pointer that stays
 * valid for the registry's life. A name reused with another type aborts
 * (a programming error). */
hp_metric_t *hp_metrics_counter(hp_metrics_t *m, const char *name, const char *help,
                                const char *labels);
hp_metric_t *hp_metrics_gauge(hp_metrics_t *m, const char *name, const char *help,
                              const char *labels);
/* buckets: ascending upper bounds (copied); +Inf is implicit. */
hp_metric_t *hp_metrics_histogram(hp_metrics_t *m, const char *name, const char *help,
                                  const char *labels, const double *buckets, size_t n_buckets);

void hp_metric_add(hp_metric_t *c, double v);   /* counters and gauges; NULL: nothing */
void hp_metric_set(hp_metric_t *g, double v);   /* gauges; NULL: nothing */
void hp_metric_observe(hp_metric_t *h, double v); /* histograms */
double hp_metric_value(const hp_metric_t *c);

/* Escapes a label value (\\, \", \n) into buf (size n); returns buf. */
const char *hp_metrics_escape(const char *v, char *buf, size_t n);

/* Renders every metric, grouped by name with # HELP and # TYPE lines, then
 * process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds and process_start_time_seconds. */
void hp_metrics_render(hp_metrics_t *m, hp_buf_t *out);

#endif
