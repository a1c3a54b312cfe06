/*
 * config.h — one configuration for the whole cluster, as in Pyroscope: every
 * binary accepts the same YAML file (-config.file) and the same flags, and a
 * flag overrides the file. A flag that belongs to another component is
 * accepted and ignored; an unknown flag is an error naming it.
 *
 * Flags are Go-style: -name=value, -name value, --name=value; booleans
 * also as a bare -name. Durations take Go's units ("250ms", "5s", "1h30m");
 * sizes are bytes. The YAML file is a nested map whose paths are listed next
 * to each flag in `-help` (e.g. server.http_listen_port).
 *
 * Not for: per-tenant limits that change at run time (a later overrides
 * module); this is the static process configuration.
 */
#ifndef HOTPATH_CONFIG_H
#define HOTPATH_CONFIG_H

#include "hotpath/buf.h"
#include "hotpath/common.h"

typedef struct hp_limits_config {
    int64_t max_profile_size_bytes;       /* uncompressed; 4 MiB */
    int64_t ingestion_body_limit_bytes;   /* HTTP body, compressed; 256 MiB */
    int64_t ingestion_decompressed_body_limit_bytes; /* Push body after Content-Encoding; 256 MiB */
    int64_t max_label_name_length;        /* 1024 */
    int64_t max_label_value_length;       /* 2048 */
    int64_t max_label_names_per_series;   /* 30 */
    int64_t max_profile_stacktrace_samples; /* 16000 */
    int64_t max_profile_stacktrace_sample_labels; /* 100 per sample; 0 = no limit */
    int64_t max_profile_stacktrace_depth; /* 1000 (truncated, not rejected) */
    int64_t max_profile_symbol_value_length; /* 65535 (truncated) */
    int64_t max_flamegraph_nodes_default; /* 8192 */
    int64_t max_flamegraph_nodes_max;     /* 1048576 */
    int64_t max_query_length_ms;          /* 0 = off */
    double ingestion_rate_mb;             /* per tenant, across all distributors; 4 */
    double ingestion_burst_size_mb;       /* 2 */
    int64_t reject_older_than_ms;         /* profiles older than now - this are refused; 1h (0 = off) */
    int64_t reject_newer_than_ms;         /* profiles newer than now + this are refused; 10m (0 = off) */
    int64_t max_local_series_per_tenant;  /* active series per ingester; 0 = off */
    int64_t max_global_series_per_tenant; /* across ingesters (each takes its share × RF); 5000; 0 = off */
    int64_t compactor_blocks_retention_period_ms; /* 0 = keep forever */
} hp_limits_config_t;

/* A byte limit of the configuration as a size: 0 (or less) means none. */
static inline size_t hp_limit_size(int64_t v)
{
    return v > 0 ? (size_t)v : SIZE_MAX;
}

typedef struct hp_config {
    char *config_file;
    char *target; /* informational: which component this process runs */

    struct {
        char *http_listen_address; /* "0.0.0.0" */
        int64_t http_listen_port;  /* 4040 */
        char *rpc_listen_address;  /* "0.0.0.0" */
        int64_t rpc_listen_port;   /* 9095 */
        int64_t worker_threads;    /* 0 = number of CPUs */
        int64_t graceful_shutdown_timeout_ms; /* 30s */
    } server;

    struct {
        char *level;  /* "info" */
    } log;

    struct {
        char *members;      /* comma-separated: tcp://host:port and/or dns+name:port */
        char *instance_id;  /* this instance's ID; default hostname:rpc port */
        char *zone;
        int64_t num_tokens; /* 128 */
        int64_t heartbeat_period_ms;  /* 5s */
        int64_t heartbeat_timeout_ms; /* 1m */
        int64_t dns_refresh_ms;       /* 30s */
    } ring;

    struct {
        int64_t replication_factor; /* 1 (Pyroscope's default); the local cluster runs 3 */
        int64_t push_timeout_ms;    /* 5s */
        bool zone_awareness;
        char *ring_members;         /* distributors (for the global ingestion rate); "" = alone */
    } distributor;

    struct {
        char *data_dir; /* "./data" */
        int64_t max_block_duration_ms; /* 1h */
        int64_t flush_idle_period_ms;  /* 5m */
        int64_t max_head_bytes;        /* 2 GiB */
        char *wal_sync;                /* "batch" | "interval" */
        int64_t wal_sync_interval_ms;  /* 1s */
        int64_t flush_check_period_ms; /* 10s */
        int64_t leave_timeout_ms;      /* 5m */
    } ingester;

    struct {
        char *backend; /* "filesystem" | "s3" */
        char *fs_dir;
        char *s3_endpoint, *s3_region, *s3_bucket, *s3_access_key_id, *s3_secret_access_key;
        bool s3_path_style, s3_insecure;
    } storage;

    struct {
        int64_t query_timeout_ms;     /* per ingester call; 30s */
        int64_t query_store_after_ms; /* 4h */
        int64_t split_interval_ms;    /* 0 = no splitting */
        int64_t max_concurrent_splits; /* 4 */
        int64_t max_query_bytes;      /* a select reading more is refused (400); 0 = no limit */
        char *ui_dir;                 /* the built web UI; "" = <binary dir>/../share/hotpath/ui */
    } querier;

    struct {
        char *ring_members;          /* store-gateways: tcp://host:port and/or dns+name:port */
        int64_t replication_factor;  /* 1 */
        int64_t cache_bytes;         /* block indexes and symbols kept in memory: 512 MiB */
        int64_t sync_interval_ms;    /* bucket indexes re-read: 15m */
        int64_t ignore_blocks_within_ms; /* younger blocks are the ingesters': 3h */
    } store_gateway;

    struct {
        bool multitenancy_enabled; /* false: every request is tenant "anonymous" */
    } auth;

    struct {
        int64_t compaction_interval_ms;          /* 30m */
        char *block_ranges;                      /* "1h,2h,8h": durations, each a multiple of the one before */
        int64_t compaction_delay_ms;             /* 15m: a window is compacted once its end is this old */
        int64_t deletion_delay_ms;               /* 12h: marked blocks are deleted this long after */
        int64_t partial_block_deletion_delay_ms; /* 24h: blocks without meta.json (0 = never) */
        char *ring_members;                      /* compactors; "" = this one owns every tenant */
    } compactor;

    struct {
        char *file;             /* per-tenant overrides (YAML): limits.h */
        int64_t reload_period_ms; /* how often it is re-read: 10s */
    } runtime_config;

    struct {
        char *targets;       /* [service=]http://host:port or [service=]dns+name:port, comma-separated */
        char *profiles;      /* "profile,allocs,goroutine,mutex,block" */
        int64_t interval_ms; /* 15s */
        int64_t cpu_seconds; /* the CPU profile's length: 10 */
        int64_t timeout_ms;  /* per fetch (the CPU profile adds its length): 10s */
        char *push_url;      /* the distributor: http://127.0.0.1:4040 */
        char *tenant;        /* X-Scope-OrgID of the pushes ("" = none) */
    } scrape;

    hp_limits_config_t limits;
} hp_config_t;

/* Fills cfg with defaults, then the YAML file named by -config.file in argv
 * (if any), then argv's flags. argv[0] is skipped. On error cfg is left
 * finished (hp_config_fini is still safe) and err says which flag, key or
 * value was wrong. -help/-h is HP_ENOTFOUND with the usage text in err->msg
 * truncated; use hp_config_usage for the full text. */
int hp_config_load(hp_config_t *cfg, int argc, char **argv, hp_err_t *err) HP_WUR;

/* Frees the strings in cfg. Safe on a zeroed or finished config. */
void hp_config_fini(hp_config_t *cfg);

/* Writes the usage text (every flag, its YAML path, default and help). */
void hp_config_usage(hp_buf_t *out);

/* Writes the effective configuration as YAML, secrets masked. */
void hp_config_dump_yaml(const hp_config_t *cfg, hp_buf_t *out);

/* Sets one per-tenant limit in l by its YAML name under `limits:` (the
 * key an overrides file uses, e.g. "ingestion_rate_mb"), parsed and
 * checked as the configuration does. HP_ENOTFOUND for a name that is not
 * a limit; HP_EINVAL with why for a bad value. */
int hp_config_limit_parse(hp_limits_config_t *l, const char *key, const char *text, hp_err_t *why) HP_WUR;

/* Writes l as a JSON object keyed by the limits' YAML names (durations as
 * Go/Prometheus duration strings, sizes as numbers). */
void hp_config_limits_write_json(const hp_limits_config_t *l, hp_buf_t *out);

/* Parses a Go duration ("1h30m", "250ms", "0") into milliseconds. */
int hp_parse_duration_ms(const char *s, int64_t *ms) HP_WUR;

/* Parses a Prometheus duration (model.Duration, as Pyroscope's retention
 * settings take: "7d", "1w2d", "1h30m", "500ms", "0"; units y w d h m s
 * ms in that order, each an integer, y = 365d) into milliseconds. */
int hp_parse_model_duration_ms(const char *s, int64_t *ms) HP_WUR;

/* Parses a -compactor.block-ranges list ("1h,2h,8h": Go durations, each
 * positive and a multiple of the one before) into out (room for max).
 * Returns the count, or a negative HP_E* with why set. */
int hp_parse_block_ranges(const char *s, int64_t *out, size_t max, hp_err_t *why) HP_WUR;

#endif
