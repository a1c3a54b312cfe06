/*
 * limits.h — per-tenant limits: the configuration's `limits` with each
 * tenant's overrides from -runtime-config.file applied, in Pyroscope's
 * runtime config shape:
 *
 *   overrides:
 *     <tenant>:
 *       ingestion_rate_mb: 8
 *       max_label_names_per_series: 40
 *       compactor_blocks_retention_period: 7d
 *
 * Keys are the YAML names of the `limits` block (hp_config_limit_parse);
 * an unknown key or a bad value makes the whole file invalid. The owner
 * calls hp_overrides_reload every -runtime-config.reload-period (the
 * service does, on its loop); the file is read again when it changed, and
 * when it cannot be read or parsed the last good overrides stay and the
 * problem is logged and counted. At start, an invalid file is an error, so
 * a typo is found at once.
 *
 * Thread-safe: any thread may call hp_overrides_get.
 */
#ifndef HOTPATH_LIMITS_H
#define HOTPATH_LIMITS_H

#include "hotpath/common.h"
#include "hotpath/config.h"
#include "hotpath/metrics.h"

typedef struct hp_overrides hp_overrides_t;

/* Reads cfg's runtime config file (none configured: every tenant gets
 * cfg->limits). cfg is borrowed and must outlive the result; metrics may be
 * NULL (else hotpath_runtime_config_* metrics are registered there). */
int hp_overrides_new(const hp_config_t *cfg, hp_metrics_t *metrics, hp_overrides_t **out, hp_err_t *err) HP_WUR;
void hp_overrides_free(hp_overrides_t *o);

/* The tenant's effective limits. */
void hp_overrides_get(hp_overrides_t *o, hp_str_t tenant, hp_limits_config_t *out);

/* Re-reads the file if it changed since it was last read. Any thread may
 * call it (a call while another reload runs returns at once);
 * hp_overrides_get stays free meanwhile. */
void hp_overrides_reload(hp_overrides_t *o);

/* Parses overrides YAML text into its tenants (for tests): each tenant's
 * limits start from defaults. Returns the number of tenants, or a negative
 * HP_E* with err naming the line and key. */
int hp_overrides_parse_text(const char *text, size_t n, const hp_limits_config_t *defaults, char ***tenants,
                            hp_limits_config_t **limits, hp_err_t *err) HP_WUR;

#endif
