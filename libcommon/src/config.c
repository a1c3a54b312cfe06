/* Process configuration: one table of options, applied as defaults, then the
 * YAML file named by -config.file, then the command-line flags in order. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "hotpath/config.h"
#include "hotpath/log.h"

/* OPT_FLOAT: double. OPT_MDURATION: a Prometheus duration ("7d"), kept in
 * int64 milliseconds. */
typedef enum { OPT_STRING, OPT_INT, OPT_BOOL, OPT_DURATION, OPT_SIZE, OPT_FLOAT, OPT_MDURATION } opt_type_t;

enum { OPT_SECRET = 1 }; /* masked by hp_config_dump_yaml */

/* Checks an already parsed field; 0, or HP_EINVAL with why saying what a
 * valid value looks like. */
typedef int (*check_fn)(const void *field, hp_err_t *why);

typedef struct option {
    const char *flag; /* without the leading dash */
    const char *yaml; /* dotted path in the file; NULL = flag only */
    opt_type_t type;
    unsigned flags;   /* OPT_SECRET */
    size_t off;       /* offsetof(hp_config_t, field) */
    const char *def;  /* default, written as a user would type it */
    check_fn check;   /* NULL: any value of the type */
    const char *help;
} option_t;

static int check_port(const void *field, hp_err_t *why);
static int check_positive(const void *field, hp_err_t *why);
static int check_non_negative(const void *field, hp_err_t *why);
static int check_backend(const void *field, hp_err_t *why);
static int check_wal_sync(const void *field, hp_err_t *why);
static int check_log_level(const void *field, hp_err_t *why);
static int check_block_ranges(const void *field, hp_err_t *why);
static int check_non_negative_float(const void *field, hp_err_t *why);

#define OPT(flag, yaml, type, field, def, check, flags, help) \
    {flag, yaml, type, flags, offsetof(hp_config_t, field), def, check, help}

/* Every setting hotpath knows. Adding one is one line here plus its field in
 * hp_config_t; flags, YAML, -help and the dump all follow from this table. */
static const option_t options[] = {
    OPT("config.file", NULL, OPT_STRING, config_file, "", NULL, 0, "YAML configuration file; flags override its settings"),
    OPT("target", "target", OPT_STRING, target, "", NULL, 0, "component this process runs (informational; each binary knows its role)"),
    OPT("server.http-listen-address", "server.http_listen_address", OPT_STRING, server.http_listen_address, "0.0.0.0", NULL, 0, "address the HTTP server listens on"),
    OPT("server.http-listen-port", "server.http_listen_port", OPT_INT, server.http_listen_port, "4040", check_port, 0, "port the HTTP server listens on (0 = pick a free port)"),
    OPT("server.rpc-listen-address", "server.rpc_listen_address", OPT_STRING, server.rpc_listen_address, "0.0.0.0", NULL, 0, "address the internal RPC server listens on"),
    OPT("server.rpc-listen-port", "server.rpc_listen_port", OPT_INT, server.rpc_listen_port, "9095", check_port, 0, "port the internal RPC server listens on (0 = pick a free port)"),
    OPT("server.worker-threads", "server.worker_threads", OPT_INT, server.worker_threads, "0", check_non_negative, 0, "worker threads for CPU work; 0 = number of CPUs"),
    OPT("server.graceful-shutdown-timeout", "server.graceful_shutdown_timeout", OPT_DURATION, server.graceful_shutdown_timeout_ms, "30s", NULL, 0, "how long a shutdown waits for requests in flight to finish"),
    OPT("log.level", "log.level", OPT_STRING, log.level, "info", check_log_level, 0, "only log messages at this level or above: debug, info, warn or error"),
    OPT("ring.members", "ring.members", OPT_STRING, ring.members, "", NULL, 0, "comma-separated ingester RPC addresses, e.g. tcp://127.0.0.1:9095"),
    OPT("ring.instance-id", "ring.instance_id", OPT_STRING, ring.instance_id, "", NULL, 0, "this instance's ID in the ring (empty = hostname:rpc port)"),
    OPT("ring.zone", "ring.zone", OPT_STRING, ring.zone, "", NULL, 0, "availability zone of this instance, for zone-aware replication"),
    OPT("ring.num-tokens", "ring.num_tokens", OPT_INT, ring.num_tokens, "128", check_positive, 0, "tokens each ingester owns in the hash ring"),
    OPT("ring.heartbeat-period", "ring.heartbeat_period", OPT_DURATION, ring.heartbeat_period_ms, "5s", NULL, 0, "how often ring clients probe each member"),
    OPT("ring.heartbeat-timeout", "ring.heartbeat_timeout", OPT_DURATION, ring.heartbeat_timeout_ms, "1m", NULL, 0, "a member that has not answered for this long is unhealthy and skipped"),
    OPT("ring.dns-refresh-interval", "ring.dns_refresh_interval", OPT_DURATION, ring.dns_refresh_ms, "30s", NULL, 0, "how often dns+name:port members are resolved again"),
    OPT("distributor.zone-awareness-enabled", "distributor.zone_awareness_enabled", OPT_BOOL, distributor.zone_awareness, "false", NULL, 0, "place the replicas of a series in distinct zones (-ring.zone of each ingester)"),
    OPT("distributor.replication-factor", "distributor.replication_factor", OPT_INT, distributor.replication_factor, "1", check_positive, 0, "number of ingesters each profile is written to"),
    OPT("distributor.ring.members", "distributor.ring.members", OPT_STRING, distributor.ring_members, "", NULL, 0, "comma-separated distributor RPC addresses (tcp://host:port, dns+name:port); the tenant's ingestion rate is divided among the healthy ones; empty = this distributor alone"),
    OPT("distributor.push-timeout", "distributor.push_timeout", OPT_DURATION, distributor.push_timeout_ms, "5s", NULL, 0, "deadline for forwarding one push to the ingesters"),
    OPT("ingester.data-dir", "ingester.data_dir", OPT_STRING, ingester.data_dir, "./data", NULL, 0, "directory for the ingester's WAL and local blocks"),
    OPT("ingester.max-block-duration", "ingester.max_block_duration", OPT_DURATION, ingester.max_block_duration_ms, "1h", NULL, 0, "heads (and blocks) cover time windows of this length, aligned to it"),
    OPT("ingester.flush-idle-period", "ingester.flush_idle_period", OPT_DURATION, ingester.flush_idle_period_ms, "5m", NULL, 0, "a head whose window is over is flushed once it has had no write for this long"),
    OPT("ingester.max-head-bytes", "ingester.max_head_bytes", OPT_SIZE, ingester.max_head_bytes, "2GiB", NULL, 0, "when the heads hold more than this, the largest is flushed first (0 = no limit)"),
    OPT("ingester.wal.sync", "ingester.wal.sync", OPT_STRING, ingester.wal_sync, "batch", check_wal_sync, 0, "batch: fsync every group commit before acking; interval: ack after the write reaches the OS, fsync every -ingester.wal.sync-interval"),
    OPT("ingester.wal.sync-interval", "ingester.wal.sync_interval", OPT_DURATION, ingester.wal_sync_interval_ms, "1s", NULL, 0, "fsync period with -ingester.wal.sync=interval"),
    OPT("ingester.flush-check-period", "ingester.flush_check_period", OPT_DURATION, ingester.flush_check_period_ms, "10s", NULL, 0, "how often the ingester looks for heads to flush and blocks to upload or drop"),
    OPT("ingester.leave-timeout", "ingester.leave_timeout", OPT_DURATION, ingester.leave_timeout_ms, "5m", NULL, 0, "on SIGTERM, how long the ingester may spend flushing its heads before it exits (what is left stays in the WAL)"),
    OPT("querier.query-store-after", "querier.query_store_after", OPT_DURATION, querier.query_store_after_ms, "4h", NULL, 0, "data newer than this is read from ingesters; ingesters keep serving the blocks they flushed until they are this old"),
    OPT("storage.backend", "storage.backend", OPT_STRING, storage.backend, "filesystem", check_backend, 0, "object store for blocks: filesystem or s3"),
    OPT("storage.filesystem.dir", "storage.filesystem.dir", OPT_STRING, storage.fs_dir, "./data/blocks-store", NULL, 0, "directory of the filesystem object store (single node)"),
    OPT("storage.s3.endpoint", "storage.s3.endpoint", OPT_STRING, storage.s3_endpoint, "", NULL, 0, "S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:4569"),
    OPT("storage.s3.region", "storage.s3.region", OPT_STRING, storage.s3_region, "us-east-1", NULL, 0, "S3 signing region"),
    OPT("storage.s3.bucket-name", "storage.s3.bucket_name", OPT_STRING, storage.s3_bucket, "", NULL, 0, "S3 bucket"),
    OPT("storage.s3.access-key-id", "storage.s3.access_key_id", OPT_STRING, storage.s3_access_key_id, "", NULL, 0, "S3 access key ID"),
    OPT("storage.s3.secret-access-key", "storage.s3.secret_access_key", OPT_STRING, storage.s3_secret_access_key, "", NULL, OPT_SECRET, "S3 secret access key (never printed)"),
    OPT("storage.s3.force-path-style", "storage.s3.force_path_style", OPT_BOOL, storage.s3_path_style, "false", NULL, 0, "use endpoint/bucket/key URLs instead of bucket.endpoint/key"),
    OPT("storage.s3.insecure", "storage.s3.insecure", OPT_BOOL, storage.s3_insecure, "false", NULL, 0, "allow http:// endpoints and skip TLS certificate checks"),
    OPT("querier.split-queries-by-interval", "querier.split_queries_by_interval", OPT_DURATION, querier.split_interval_ms, "0s", NULL, 0, "split a query's time range into intervals of this length, queried in parallel (0 = no splitting)"),
    OPT("querier.max-query-bytes", "querier.max_query_bytes", OPT_SIZE, querier.max_query_bytes, "0", NULL, 0, "a select that would read more sample bytes than this (from every replica and block, before deduplication) is refused with 400; 0 = no limit"),
    OPT("querier.ui-dir", "querier.ui_dir", OPT_STRING, querier.ui_dir, "", NULL, 0, "directory of the built web UI the querier serves at / (index.html, assets/); empty = share/hotpath/ui beside the binary's directory (<bin>/../share/hotpath/ui)"),
    OPT("querier.max-concurrent-splits", "querier.max_concurrent_splits", OPT_INT, querier.max_concurrent_splits, "4", check_positive, 0, "how many intervals of one split query run at once"),
    OPT("store-gateway.ring.members", "store_gateway.ring.members", OPT_STRING, store_gateway.ring_members, "", NULL, 0, "comma-separated store-gateway RPC addresses (tcp://host:port, dns+name:port); empty = no store-gateways"),
    OPT("store-gateway.replication-factor", "store_gateway.replication_factor", OPT_INT, store_gateway.replication_factor, "1", check_positive, 0, "how many store-gateways serve each block"),
    OPT("store-gateway.cache-bytes", "store_gateway.cache_bytes", OPT_SIZE, store_gateway.cache_bytes, "536870912", check_positive, 0, "memory for block indexes and symbols; least recently used ones are dropped beyond it"),
    OPT("store-gateway.sync-interval", "store_gateway.sync_interval", OPT_DURATION, store_gateway.sync_interval_ms, "15m", check_positive, 0, "how often store-gateways and queriers re-read the tenants' bucket indexes"),
    OPT("store-gateway.ignore-blocks-within", "store_gateway.ignore_blocks_within", OPT_DURATION, store_gateway.ignore_blocks_within_ms, "3h", NULL, 0, "blocks with data newer than this are left to the ingesters (keep it below -querier.query-store-after)"),
    OPT("querier.query-timeout", "querier.query_timeout", OPT_DURATION, querier.query_timeout_ms, "30s", NULL, 0, "deadline for each call a querier makes to an ingester or store-gateway"),
    OPT("auth.multitenancy-enabled", "auth.multitenancy_enabled", OPT_BOOL, auth.multitenancy_enabled, "false", NULL, 0, "require the X-Scope-OrgID header; when off every request is tenant \"anonymous\""),
    OPT("validation.max-profile-size-bytes", "limits.max_profile_size_bytes", OPT_SIZE, limits.max_profile_size_bytes, "4194304", NULL, 0, "largest profile accepted, after decompression (0 = no limit)"),
    OPT("distributor.ingestion-body-limit-bytes", "limits.ingestion_body_limit_bytes", OPT_SIZE, limits.ingestion_body_limit_bytes, "268435456", NULL, 0, "largest HTTP request body accepted, as sent (0 = no limit)"),
    OPT("distributor.ingestion-decompressed-body-limit-bytes", "limits.ingestion_decompressed_body_limit_bytes", OPT_SIZE, limits.ingestion_decompressed_body_limit_bytes, "268435456", check_positive, 0, "largest Push request body accepted after its Content-Encoding is undone"),
    OPT("validation.max-length-label-name", "limits.max_label_name_length", OPT_INT, limits.max_label_name_length, "1024", check_non_negative, 0, "longest label name accepted"),
    OPT("validation.max-length-label-value", "limits.max_label_value_length", OPT_INT, limits.max_label_value_length, "2048", check_non_negative, 0, "longest label value accepted"),
    OPT("validation.max-label-names-per-series", "limits.max_label_names_per_series", OPT_INT, limits.max_label_names_per_series, "30", check_non_negative, 0, "most labels one series may carry"),
    OPT("validation.max-profile-stacktrace-samples", "limits.max_profile_stacktrace_samples", OPT_INT, limits.max_profile_stacktrace_samples, "16000", check_non_negative, 0, "most samples one profile may hold (0 = no limit)"),
    OPT("validation.max-profile-stacktrace-sample-labels", "limits.max_profile_stacktrace_sample_labels", OPT_INT, limits.max_profile_stacktrace_sample_labels, "100", check_non_negative, 0, "most labels one sample of a profile may carry (0 = no limit)"),
    OPT("validation.max-profile-stacktrace-depth", "limits.max_profile_stacktrace_depth", OPT_INT, limits.max_profile_stacktrace_depth, "1000", check_non_negative, 0, "deeper stack traces are truncated to this many frames (0 = no limit)"),
    OPT("validation.max-profile-symbol-value-length", "limits.max_profile_symbol_value_length", OPT_INT, limits.max_profile_symbol_value_length, "65535", check_non_negative, 0, "longer symbol names and file names are truncated (0 = no limit)"),
    OPT("querier.max-flamegraph-nodes-default", "limits.max_flamegraph_nodes_default", OPT_INT, limits.max_flamegraph_nodes_default, "8192", check_non_negative, 0, "flame graph nodes returned when a query does not ask for a number"),
    OPT("querier.max-flamegraph-nodes-max", "limits.max_flamegraph_nodes_max", OPT_INT, limits.max_flamegraph_nodes_max, "1048576", check_non_negative, 0, "most flame graph nodes a query may ask for (0 = no limit)"),
    OPT("querier.max-query-length", "limits.max_query_length", OPT_DURATION, limits.max_query_length_ms, "0s", NULL, 0, "longest time range one query may cover; 0 = no limit"),
    OPT("compactor.compaction-interval", "compactor.compaction_interval", OPT_DURATION, compactor.compaction_interval_ms, "30m", check_positive, 0, "how often the compactor runs a cycle over the tenants it owns (POST /compactor/run starts one at once)"),
    OPT("compactor.block-ranges", "compactor.block_ranges", OPT_STRING, compactor.block_ranges, "1h,2h,8h", check_block_ranges, 0, "compaction windows, smallest first: blocks within one aligned window of each length are merged into one; each a multiple of the one before"),
    OPT("compactor.compaction-delay", "compactor.compaction_delay", OPT_DURATION, compactor.compaction_delay_ms, "15m", NULL, 0, "a window is compacted once its end is this old (leave the ingesters time to flush and upload: more than -ingester.flush-idle-period); later blocks are merged in at the next cycle"),
    OPT("compactor.deletion-delay", "compactor.deletion_delay", OPT_DURATION, compactor.deletion_delay_ms, "12h", NULL, 0, "blocks marked for deletion are deleted this long after they were marked (readers planned on an older bucket index still find them meanwhile)"),
    OPT("compactor.partial-block-deletion-delay", "compactor.partial_block_deletion_delay", OPT_DURATION, compactor.partial_block_deletion_delay_ms, "24h", NULL, 0, "a block directory without meta.json (an abandoned upload) whose ULID is older than this is deleted; 0 = never"),
    OPT("compactor.blocks-retention-period", "limits.compactor_blocks_retention_period", OPT_MDURATION, limits.compactor_blocks_retention_period_ms, "0", NULL, 0, "blocks whose newest profile is older than this are deleted (Prometheus duration: 7d, 12h, 1w; 0 = keep forever); per tenant in -runtime-config.file"),
    OPT("compactor.ring.members", "compactor.ring.members", OPT_STRING, compactor.ring_members, "", NULL, 0, "comma-separated compactor RPC addresses (tcp://host:port, dns+name:port) sharing the tenants by hash; empty = this compactor owns every tenant"),
    OPT("scrape.targets", "scrape.targets", OPT_STRING, scrape.targets, "", NULL, 0, "hotpath-scraper: what to scrape, comma-separated: [service=]http://host:port (a Go net/http/pprof server) or [service=]dns+name:port (every address of name); service defaults to the host"),
    OPT("scrape.profiles", "scrape.profiles", OPT_STRING, scrape.profiles, "profile,allocs,goroutine,mutex,block", NULL, 0, "hotpath-scraper: the /debug/pprof/ endpoints fetched from every target"),
    OPT("scrape.interval", "scrape.interval", OPT_DURATION, scrape.interval_ms, "15s", check_positive, 0, "hotpath-scraper: how often every target is scraped"),
    OPT("scrape.cpu-seconds", "scrape.cpu_seconds", OPT_INT, scrape.cpu_seconds, "10", check_positive, 0, "hotpath-scraper: how long each CPU profile (/debug/pprof/profile?seconds=N) records"),
    OPT("scrape.timeout", "scrape.timeout", OPT_DURATION, scrape.timeout_ms, "10s", check_positive, 0, "hotpath-scraper: deadline of one fetch or push (a CPU profile gets its length on top)"),
    OPT("scrape.push-url", "scrape.push_url", OPT_STRING, scrape.push_url, "http://127.0.0.1:4040", NULL, 0, "hotpath-scraper: the distributor the profiles are pushed to (/ingest)"),
    OPT("scrape.tenant", "scrape.tenant", OPT_STRING, scrape.tenant, "", NULL, 0, "hotpath-scraper: X-Scope-OrgID of the pushes (empty: none)"),
    OPT("runtime-config.file", "runtime_config.file", OPT_STRING, runtime_config.file, "", NULL, 0, "YAML file of per-tenant overrides of the limits (overrides: {<tenant>: {ingestion_rate_mb: 8, compactor_blocks_retention_period: 7d}})"),
    OPT("runtime-config.reload-period", "runtime_config.period", OPT_DURATION, runtime_config.reload_period_ms, "10s", check_positive, 0, "how often -runtime-config.file is read again"),
    OPT("distributor.ingestion-rate-limit-mb", "limits.ingestion_rate_mb", OPT_FLOAT, limits.ingestion_rate_mb, "4", check_non_negative_float, 0, "per-tenant ingestion rate in MB/s of request bodies, shared by all distributors (0 = no limit)"),
    OPT("distributor.ingestion-burst-size-mb", "limits.ingestion_burst_size_mb", OPT_FLOAT, limits.ingestion_burst_size_mb, "2", check_non_negative_float, 0, "per-tenant burst in MB above the rate; a request larger than this is refused"),
    OPT("validation.reject-older-than", "limits.reject_older_than", OPT_DURATION, limits.reject_older_than_ms, "1h", NULL, 0, "profiles older than this are refused (0 = accept any age)"),
    OPT("validation.reject-newer-than", "limits.reject_newer_than", OPT_DURATION, limits.reject_newer_than_ms, "10m", NULL, 0, "profiles from further in the future than this are refused (0 = accept any)"),
    OPT("ingester.max-local-series-per-tenant", "limits.max_local_series_per_tenant", OPT_INT, limits.max_local_series_per_tenant, "0", check_non_negative, 0, "most active series of one tenant on one ingester (0 = no limit)"),
    OPT("ingester.max-global-series-per-tenant", "limits.max_global_series_per_tenant", OPT_INT, limits.max_global_series_per_tenant, "5000", check_non_negative, 0, "most active series of one tenant across the ingesters; each ingester enforces its share (this × replication factor / ingesters; 0 = no limit)"),
};

/* ---- value types ---- */

static const char *const true_words[] = {"1", "t", "T", "true", "TRUE", "True"};
static const char *const false_words[] = {"0", "f", "F", "false", "FALSE", "False"};

/* True when s is one of the n words. */
static bool word_in(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

/* Replaces the owned string in field with a copy of text. */
static int parse_string(const char *text, void *field, hp_err_t *why)
{
    char **p = field;
    free(*p);
    *p = hp_xstrdup(text);
    return 0;
}

/* A decimal int64, nothing before or after it. */
static int parse_int(const char *text, void *field, hp_err_t *why)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    bool starts_ok = (text[0] >= '0' && text[0] <= '9') || text[0] == '-' || text[0] == '+';
    if (!starts_ok || end == text || *end != '\0')
        return hp_err_set(why, HP_EINVAL, "expected an integer");
    if (errno == ERANGE)
        return hp_err_set(why, HP_EINVAL, "integer out of range");
    *(int64_t *)field = v;
    return 0;
}

/* Go's strconv.ParseBool spellings. */
static int parse_bool(const char *text, void *field, hp_err_t *why)
{
    if (word_in(text, true_words, HP_ARRAY_LEN(true_words)))
        *(bool *)field = true;
    else if (word_in(text, false_words, HP_ARRAY_LEN(false_words)))
        *(bool *)field = false;
    else
        return hp_err_set(why, HP_EINVAL, "expected true or false");
    return 0;
}

/* A non-negative Go duration, kept in milliseconds. */
static int parse_duration(const char *text, void *field, hp_err_t *why)
{
    int64_t ms;
    if (hp_parse_duration_ms(text, &ms) != 0)
        return hp_err_set(why, HP_EINVAL,
                          "expected a duration like 5s, 250ms or 1h30m (units: ns, us, ms, s, m, h)");
    if (ms < 0)
        return hp_err_set(why, HP_EINVAL, "a duration here must not be negative");
    *(int64_t *)field = ms;
    return 0;
}

static const struct {
    const char *suffix;
    int64_t mult;
} size_units[] = {
    {"", 1},          {"B", 1},           {"KB", 1000},          {"MB", 1000000},
    {"GB", 1000000000}, {"KiB", 1 << 10}, {"MiB", 1 << 20},      {"GiB", 1 << 30},
};

/* A byte count: an integer, optionally followed by a unit (KiB, MB, …). */
static int parse_size(const char *text, void *field, hp_err_t *why)
{
    const char *p = text;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return hp_err_set(why, HP_EINVAL, "size out of range");
        v = v * 10 + (*p - '0');
    }
    if (p == text)
        return hp_err_set(why, HP_EINVAL, "expected a byte count like 4194304, 512KiB or 4MiB");
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < HP_ARRAY_LEN(size_units); i++) {
        if (strcasecmp(p, size_units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / size_units[i].mult)
            return hp_err_set(why, HP_EINVAL, "size out of range");
        *(int64_t *)field = v * size_units[i].mult;
        return 0;
    }
    return hp_err_set(why, HP_EINVAL, "unknown size unit \"%s\" (use B, KB, MB, GB, KiB, MiB or GiB)", p);
}

/* A finite decimal number, nothing before or after it. */
static int parse_float(const char *text, void *field, hp_err_t *why)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || v != v || v > 1e300 || v < -1e300)
        return hp_err_set(why, HP_EINVAL, "expected a number like 4 or 0.5");
    *(double *)field = v;
    return 0;
}

/* A Prometheus duration ("7d", "1w2d", "0"), kept in milliseconds. */
static int parse_mduration(const char *text, void *field, hp_err_t *why)
{
    int64_t ms;
    if (hp_parse_model_duration_ms(text, &ms) != 0)
        return hp_err_set(why, HP_EINVAL,
                          "expected a duration like 7d, 1w, 12h or 0 (units y w d h m s ms, in that order)");
    *(int64_t *)field = ms;
    return 0;
}

/* Writes s as a YAML double-quoted scalar. */
static void put_yaml_str(hp_buf_t *out, const char *s)
{
    hp_buf_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            hp_buf_printf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            hp_buf_printf(out, "\\x%02x", c);
        else
            hp_buf_putc(out, (char)c);
    }
    hp_buf_putc(out, '"');
}

static void format_string(const void *field, hp_buf_t *out)
{
    const char *s = *(char *const *)field;
    put_yaml_str(out, s ? s : "");
}

static void format_int(const void *field, hp_buf_t *out) { hp_buf_put_i64(out, *(const int64_t *)field); }

static void format_float(const void *field, hp_buf_t *out) { hp_buf_printf(out, "%.17g", *(const double *)field); }

/* Milliseconds as a Prometheus duration: "7d", "1d12h", "0s". */
static void format_mduration(const void *field, hp_buf_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    int64_t v = *(const int64_t *)field;
    if (v <= 0) {
        hp_buf_puts(out, "0s");
        return;
    }
    for (size_t i = 0; i < HP_ARRAY_LEN(parts); i++) {
        if (v / parts[i].ms == 0)
            continue;
        hp_buf_printf(out, "%lld%s", (long long)(v / parts[i].ms), parts[i].unit);
        v %= parts[i].ms;
    }
}

static void format_bool(const void *field, hp_buf_t *out)
{
    hp_buf_puts(out, *(const bool *)field ? "true" : "false");
}

/* Milliseconds as a duration hp_parse_duration_ms reads back: "1h30m",
 * "1s500ms", "0s". */
static void format_duration(const void *field, hp_buf_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    int64_t v = *(const int64_t *)field;
    if (v <= 0) { /* never negative: parse_duration rejects it */
        hp_buf_puts(out, "0s");
        return;
    }
    for (size_t i = 0; i < HP_ARRAY_LEN(parts); i++) {
        if (v / parts[i].ms == 0)
            continue;
        hp_buf_printf(out, "%lld%s", (long long)(v / parts[i].ms), parts[i].unit);
        v %= parts[i].ms;
    }
}

/* How each type is read from text, written as YAML, and named in -help. */
static const struct {
    const char *name;
    int (*parse)(const char *text, void *field, hp_err_t *why);
    void (*format)(const void *field, hp_buf_t *out);
} type_ops[] = {
    [OPT_STRING] = {"string", parse_string, format_string},
    [OPT_INT] = {"int", parse_int, format_int},
    [OPT_BOOL] = {"bool", parse_bool, format_bool},
    [OPT_DURATION] = {"duration", parse_duration, format_duration},
    [OPT_SIZE] = {"size", parse_size, format_int},
    [OPT_FLOAT] = {"float", parse_float, format_float},
    [OPT_MDURATION] = {"duration", parse_mduration, format_mduration},
};

/* ---- checks ---- */

static int check_port(const void *field, hp_err_t *why)
{
    int64_t v = *(const int64_t *)field;
    if (v < 0 || v > 65535)
        return hp_err_set(why, HP_EINVAL, "a port must be between 0 and 65535");
    return 0;
}

static int check_positive(const void *field, hp_err_t *why)
{
    if (*(const int64_t *)field < 1)
        return hp_err_set(why, HP_EINVAL, "must be at least 1");
    return 0;
}

static int check_non_negative(const void *field, hp_err_t *why)
{
    if (*(const int64_t *)field < 0)
        return hp_err_set(why, HP_EINVAL, "must not be negative");
    return 0;
}

static int check_backend(const void *field, hp_err_t *why)
{
    const char *v = *(char *const *)field;
    if (strcmp(v, "filesystem") != 0 && strcmp(v, "s3") != 0)
        return hp_err_set(why, HP_EINVAL, "expected filesystem or s3");
    return 0;
}

static int check_wal_sync(const void *field, hp_err_t *why)
{
    const char *v = *(char *const *)field;
    if (strcmp(v, "batch") != 0 && strcmp(v, "interval") != 0)
        return hp_err_set(why, HP_EINVAL, "expected batch or interval");
    return 0;
}

static int check_log_level(const void *field, hp_err_t *why)
{
    if (hp_log_level_parse(*(char *const *)field) < 0)
        return hp_err_set(why, HP_EINVAL, "expected debug, info, warn or error");
    return 0;
}

static int check_block_ranges(const void *field, hp_err_t *why)
{
    int64_t r[16];
    int n = hp_parse_block_ranges(*(char *const *)field, r, HP_ARRAY_LEN(r), why);
    return n < 0 ? n : 0;
}

static int check_non_negative_float(const void *field, hp_err_t *why)
{
    if (*(const double *)field < 0)
        return hp_err_set(why, HP_EINVAL, "must not be negative");
    return 0;
}

int hp_parse_block_ranges(const char *s, int64_t *out, size_t max, hp_err_t *why)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        char one[64];
        int64_t ms = 0;
        snprintf(one, sizeof(one), "%.*s", (int)HP_MIN(len, sizeof(one) - 1), p);
        if (len == 0 || len >= sizeof(one) || hp_parse_duration_ms(one, &ms) != 0 || ms <= 0)
            return hp_err_set(why, HP_EINVAL, "range %zu (\"%s\") is not a positive duration like 2h", n + 1, one);
        if (n == max)
            return hp_err_set(why, HP_EINVAL, "more than %zu ranges", max);
        if (n > 0 && (ms <= out[n - 1] || ms % out[n - 1] != 0))
            return hp_err_set(why, HP_EINVAL, "range %s must be a larger multiple of the one before it", one);
        out[n++] = ms;
        p += len + (p[len] == ',');
    }
    if (n == 0)
        return hp_err_set(why, HP_EINVAL, "expected at least one range, like 1h,2h,8h");
    return (int)n;
}

/* Prometheus model.Duration units, in the order they must appear. */
static const struct {
    const char *name;
    int64_t ms;
} model_units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
                   {"m", 60000},            {"s", 1000},           {"ms", 1}};

/* The index of the model unit at p (longest match: "ms" before "m"), or -1. */
static int model_unit(const char *p, size_t *len)
{
    if (p[0] == 'm' && p[1] == 's') {
        *len = 2;
        return 6;
    }
    for (int i = 0; i < 6; i++)
        if (p[0] == model_units[i].name[0]) {
            *len = 1;
            return i;
        }
    return -1;
}

int hp_parse_model_duration_ms(const char *s, int64_t *ms)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int64_t total = 0;
    int last = -1;
    if (*s == '\0')
        return HP_EINVAL;
    while (*s) {
        int64_t v = 0;
        const char *d = s;
        for (; *s >= '0' && *s <= '9'; s++)
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
                return HP_EINVAL;
        size_t ul = 0;
        int u = s == d ? -1 : model_unit(s, &ul);
        if (u <= last || __builtin_mul_overflow(v, model_units[u].ms, &v) || __builtin_add_overflow(total, v, &total))
            return HP_EINVAL;
        last = u;
        s += ul;
    }
    *ms = total;
    return 0;
}

/* ---- durations ---- */

/* Go's duration units in nanoseconds; µ spelled as U+00B5 and U+03BC. */
static const struct {
    const char *name;
    uint64_t ns;
} dur_units[] = {
    {"ns", 1ULL},         {"us", 1000ULL},           {"\xc2\xb5s", 1000ULL}, {"\xce\xbcs", 1000ULL},
    {"ms", 1000000ULL},   {"s", 1000000000ULL},      {"m", 60000000000ULL},  {"h", 3600000000000ULL},
};

/* The unit spelled s[0..n), or 0 when there is none such. */
static uint64_t dur_unit_ns(const char *s, size_t n)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(dur_units); i++)
        if (strlen(dur_units[i].name) == n && memcmp(dur_units[i].name, s, n) == 0)
            return dur_units[i].ns;
    return 0;
}

/* Reads decimal digits at *s into *v; returns how many digits there were,
 * or -1 when the number overflows. */
static int dur_digits(const char **s, uint64_t *v)
{
    int n = 0;
    *v = 0;
    for (; **s >= '0' && **s <= '9'; (*s)++, n++) {
        if (*v > (UINT64_MAX - 9) / 10)
            return -1;
        *v = *v * 10 + (uint64_t)(**s - '0');
    }
    return n;
}

/* Reads fraction digits at *s: *f / *scale is their value. Digits beyond
 * double precision are consumed and ignored, as Go does. */
static int dur_fraction(const char **s, uint64_t *f, double *scale)
{
    int n = 0;
    *f = 0;
    *scale = 1;
    for (; **s >= '0' && **s <= '9'; (*s)++, n++) {
        if (*f >= (1ULL << 53) / 10)
            continue;
        *f = *f * 10 + (uint64_t)(**s - '0');
        *scale *= 10;
    }
    return n;
}

/* Reads one "<number><unit>" at *s and adds it to *total (ns, at most
 * INT64_MAX). */
static int dur_component(const char **s, uint64_t *total)
{
    uint64_t v, f = 0;
    double scale = 1;
    int nint = dur_digits(s, &v), nfrac = 0;
    if (nint < 0)
        return HP_EINVAL;
    if (**s == '.') {
        (*s)++;
        nfrac = dur_fraction(s, &f, &scale);
    }
    if (nint == 0 && nfrac == 0)
        return HP_EINVAL;
    const char *u = *s;
    while (**s && **s != '.' && (**s < '0' || **s > '9'))
        (*s)++;
    uint64_t unit = dur_unit_ns(u, (size_t)(*s - u));
    if (unit == 0 || v > (uint64_t)INT64_MAX / unit)
        return HP_EINVAL;
    v = v * unit + (uint64_t)((double)f * ((double)unit / scale));
    if (v > (uint64_t)INT64_MAX - *total)
        return HP_EINVAL;
    *total += v;
    return 0;
}

int hp_parse_duration_ms(const char *s, int64_t *ms)
{
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0')
        return HP_EINVAL;
    while (*s)
        if (dur_component(&s, &total) != 0)
            return HP_EINVAL;
    int64_t v = (int64_t)(total / 1000000); /* truncated, as Go's Milliseconds() */
    *ms = neg ? -v : v;
    return 0;
}

/* ---- lookup ---- */

/* Edit distance between a and b, or a large number when they are long. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), row[128];
    if (nb >= HP_ARRAY_LEN(row) || na >= HP_ARRAY_LEN(row))
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = HP_MIN(best, up + 1);
            row[j] = HP_MIN(best, row[j - 1] + 1);
            diag = up;
        }
    }
    return row[nb];
}

/* The flag name (yaml false) or YAML path (yaml true) nearest to s, if a
 * typo away (distance <= 2); NULL otherwise. */
static const char *nearest_name(const char *s, bool yaml)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const char *name = yaml ? options[i].yaml : options[i].flag;
        size_t d = name ? edit_distance(s, name) : SIZE_MAX;
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    return best;
}

/* The option whose flag is name[0..n), or NULL. */
static const option_t *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++)
        if (strlen(options[i].flag) == n && memcmp(options[i].flag, name, n) == 0)
            return &options[i];
    return NULL;
}

/* The option whose YAML path is path, or NULL. */
static const option_t *find_yaml(const char *path)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++)
        if (options[i].yaml && strcmp(options[i].yaml, path) == 0)
            return &options[i];
    return NULL;
}

/* True when path is a section some option's YAML path lies under. */
static bool is_yaml_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const char *y = options[i].yaml;
        if (y && strncmp(y, path, n) == 0 && y[n] == '.')
            return true;
    }
    return false;
}

/* Parses text into o's field in cfg and checks it; why says what was wrong. */
static int set_value(hp_config_t *cfg, const option_t *o, const char *text, hp_err_t *why)
{
    void *field = (char *)cfg + o->off;
    int rc = type_ops[o->type].parse(text, field, why);
    if (rc == 0 && o->check)
        rc = o->check(field, why);
    return rc;
}

/* Sets every option to its default. */
static int apply_defaults(hp_config_t *cfg, hp_err_t *err)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        hp_err_t why;
        if (set_value(cfg, &options[i], options[i].def, &why) != 0)
            return hp_err_set(err, HP_EINTERNAL, "bad default \"%s\" for -%s: %s", options[i].def,
                              options[i].flag, why.msg);
    }
    return 0;
}

/* ---- flags ---- */

/* HP_ENOTFOUND carrying as much of the usage text as fits. */
static int help_requested(hp_err_t *err)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_config_usage(&b);
    hp_err_set(err, HP_ENOTFOUND, "%s", hp_buf_cstr(&b));
    hp_buf_fini(&b);
    return HP_ENOTFOUND;
}

/* Fills err for a flag name no option has, suggesting a near one. */
static void unknown_flag(const char *name, size_t n, hp_err_t *err)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)HP_MIN(n, sizeof(tmp) - 1), name);
    const char *near = nearest_name(tmp, false);
    hp_err_set(err, HP_EINVAL, "unknown flag -%.*s (see -help)%s%s%s", (int)n, name,
               near ? "; did you mean -" : "", near ? near : "", near ? "?" : "");
}

/* Reads the flag at argv[*i] (Go syntax: -name=value, -name value, the same
 * with --, a bare -name for booleans), moves *i past it and its value, and
 * returns its option with *value borrowed from argv. On failure returns
 * NULL with *rc = HP_ENOTFOUND for -help/-h, HP_EINVAL otherwise. */
static const option_t *next_flag(int argc, char **argv, int *i, const char **value, int *rc,
                                 hp_err_t *err)
{
    const char *arg = argv[(*i)++];
    *rc = HP_EINVAL;
    if (arg[0] != '-' || arg[1] == '\0') {
        hp_err_set(err, HP_EINVAL,
                   "unexpected argument \"%s\": settings are given as -name=value (see -help)", arg);
        return NULL;
    }
    const char *name = arg + 1 + (arg[1] == '-');
    if (name[0] == '\0' || name[0] == '-' || name[0] == '=') {
        hp_err_set(err, HP_EINVAL, "bad flag syntax: %s (expected -name=value)", arg);
        return NULL;
    }
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    if ((n == 1 && name[0] == 'h') || (n == 4 && memcmp(name, "help", 4) == 0)) {
        *rc = help_requested(err);
        return NULL;
    }
    const option_t *o = find_flag(name, n);
    if (o == NULL) {
        unknown_flag(name, n, err);
        return NULL;
    }
    /* a bare boolean never takes the next argument, as in Go */
    *value = eq ? eq + 1 : o->type == OPT_BOOL ? "true" : *i < argc ? argv[(*i)++] : NULL;
    if (*value == NULL) {
        hp_err_set(err, HP_EINVAL, "flag -%s needs a value (-%s=<%s>)", o->flag, o->flag,
                   type_ops[o->type].name);
        return NULL;
    }
    return o;
}

/* Applies argv's flags to cfg; with only_config_file, just -config.file
 * (so the file can be read before the flags that override it). */
static int apply_flags(hp_config_t *cfg, int argc, char **argv, bool only_config_file, hp_err_t *err)
{
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--") == 0) {
            if (i + 1 < argc) /* no binary takes positional arguments */
                return hp_err_set(err, HP_EINVAL, "unexpected argument \"%s\" after --", argv[i + 1]);
            break;
        }
        const char *value = NULL;
        int rc;
        const option_t *o = next_flag(argc, argv, &i, &value, &rc, err);
        if (o == NULL)
            return rc;
        if (only_config_file && o->off != offsetof(hp_config_t, config_file))
            continue;
        hp_err_t why;
        if (set_value(cfg, o, value, &why) != 0)
            return hp_err_set(err, HP_EINVAL, "invalid value \"%s\" for flag -%s: %s", value, o->flag,
                              why.msg);
    }
    return 0;
}

/* ---- YAML ---- */

/* What a walk over a loaded YAML document needs. */
typedef struct yaml_walk {
    hp_config_t *cfg;
    yaml_document_t *doc;
    const char *file;
    hp_buf_t path; /* dotted key path of the node being visited */
    hp_err_t *err;
} yaml_walk_t;

static const char *const yaml_null_words[] = {"", "~", "null", "Null", "NULL"};

/* True for an unquoted null ("key:" with nothing after it, "~", "null"). */
static bool yaml_is_null(const yaml_node_t *v)
{
    return v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           word_in((const char *)v->data.scalar.value, yaml_null_words, HP_ARRAY_LEN(yaml_null_words));
}

static const char *yaml_kind(const yaml_node_t *v)
{
    return v->type == YAML_MAPPING_NODE ? "a mapping" : v->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

/* Sets option o from the scalar node v; a null leaves the value as it was. */
static int yaml_set(yaml_walk_t *w, const option_t *o, const yaml_node_t *v)
{
    const char *path = hp_buf_cstr(&w->path);
    size_t line = v->start_mark.line + 1;
    if (yaml_is_null(v))
        return 0;
    if (v->type != YAML_SCALAR_NODE)
        return hp_err_set(w->err, HP_EINVAL, "config file %s: %s (line %zu): expected a single %s value, got %s",
                          w->file, path, line, type_ops[o->type].name, yaml_kind(v));
    const char *text = (const char *)v->data.scalar.value;
    hp_err_t why;
    if (set_value(w->cfg, o, text, &why) != 0)
        return hp_err_set(w->err, HP_EINVAL, "config file %s: invalid value \"%s\" for %s (line %zu): %s",
                          w->file, text, path, line, why.msg);
    return 0;
}

static int yaml_mapping(yaml_walk_t *w, const yaml_node_t *map);

/* Visits one key: value pair below the current path. */
static int yaml_pair(yaml_walk_t *w, const yaml_node_t *k, const yaml_node_t *v)
{
    size_t line = k->start_mark.line + 1;
    if (k->type != YAML_SCALAR_NODE)
        return hp_err_set(w->err, HP_EINVAL, "config file %s: line %zu: a key must be a plain name",
                          w->file, line);
    const char *key = (const char *)k->data.scalar.value;
    if (w->path.len)
        hp_buf_putc(&w->path, '.');
    hp_buf_puts(&w->path, key);
    const char *path = hp_buf_cstr(&w->path);
    const option_t *o = strchr(key, '.') ? NULL : find_yaml(path);
    if (o)
        return yaml_set(w, o, v);
    if (strchr(key, '.') || !is_yaml_section(path)) {
        const char *near = nearest_name(path, true);
        return hp_err_set(w->err, HP_EINVAL, "config file %s: unknown key %s (line %zu)%s%s%s", w->file,
                          path, line, near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
    }
    if (yaml_is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return hp_err_set(w->err, HP_EINVAL, "config file %s: %s (line %zu): expected a section of settings, got %s",
                          w->file, path, line, yaml_kind(v));
    return yaml_mapping(w, v);
}

/* Visits every pair of a mapping. Recursion follows only known sections, so
 * its depth is bounded by the option table (aliases cannot loop it). */
static int yaml_mapping(yaml_walk_t *w, const yaml_node_t *map)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        size_t mark = w->path.len;
        int rc = yaml_pair(w, yaml_document_get_node(w->doc, p->key),
                           yaml_document_get_node(w->doc, p->value));
        w->path.len = mark;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Applies a loaded document; an empty one changes nothing. */
static int yaml_apply_doc(hp_config_t *cfg, yaml_document_t *doc, const char *file, hp_err_t *err)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || yaml_is_null(root))
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return hp_err_set(err, HP_EINVAL, "config file %s: line %zu: expected sections like \"server:\" at the top level, got %s",
                          file, root->start_mark.line + 1, yaml_kind(root));
    yaml_walk_t w = {cfg, doc, file, HP_BUF_INIT, err};
    int rc = yaml_mapping(&w, root);
    hp_buf_fini(&w.path);
    return rc;
}

/* Turns libyaml's parse error into a message naming file and line. */
static int yaml_syntax_error(const yaml_parser_t *p, const char *file, hp_err_t *err)
{
    if (p->error == YAML_READER_ERROR)
        return hp_err_set(err, HP_EINVAL, "config file %s: cannot read it: %s", file,
                          p->problem ? p->problem : "read error");
    return hp_err_set(err, HP_EINVAL, "config file %s: line %zu, column %zu: %s%s%s%s", file,
                      p->problem_mark.line + 1, p->problem_mark.column + 1,
                      p->problem ? p->problem : "invalid YAML", p->context ? " (" : "",
                      p->context ? p->context : "", p->context ? ")" : "");
}

/* Opens the config file for reading, or says why it cannot be read. */
static int open_config_file(const char *path, FILE **f, hp_err_t *err)
{
    struct stat st;
    *f = fopen(path, "rb");
    if (*f == NULL)
        return hp_err_set(err, HP_EINVAL, "config file %s: cannot open it: %s", path, strerror(errno));
    if (fstat(fileno(*f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(*f);
        *f = NULL;
        return hp_err_set(err, HP_EINVAL, "config file %s: is a directory, not a YAML file", path);
    }
    return 0;
}

/* Reads the YAML file at path and applies its settings to cfg. */
static int apply_yaml_file(hp_config_t *cfg, const char *path, hp_err_t *err)
{
    FILE *f;
    if (open_config_file(path, &f, err) != 0)
        return HP_EINVAL;
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return hp_err_set(err, HP_ENOMEM, "config file %s: cannot start the YAML parser", path);
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_syntax_error(&parser, path, err);
    } else {
        rc = yaml_apply_doc(cfg, &doc, path, err);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* ---- public ---- */

int hp_config_load(hp_config_t *cfg, int argc, char **argv, hp_err_t *err)
{
    memset(cfg, 0, sizeof(*cfg));
    if (err)
        hp_err_clear(err);
    int rc = apply_defaults(cfg, err);
    if (rc == 0)
        rc = apply_flags(cfg, argc, argv, true, err);
    if (rc == 0 && cfg->config_file[0] != '\0')
        rc = apply_yaml_file(cfg, cfg->config_file, err);
    if (rc == 0)
        rc = apply_flags(cfg, argc, argv, false, err);
    if (rc != 0)
        hp_config_fini(cfg);
    return rc;
}

void hp_config_fini(hp_config_t *cfg)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        if (options[i].type != OPT_STRING)
            continue;
        char **p = (char **)((char *)cfg + options[i].off);
        free(*p);
        *p = NULL;
    }
}

void hp_config_usage(hp_buf_t *out)
{
    hp_buf_puts(out, "Flags (each overrides the same setting in the -config.file YAML file):\n");
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option_t *o = &options[i];
        hp_buf_printf(out, "  -%s <%s>  (", o->flag, type_ops[o->type].name);
        if (o->yaml)
            hp_buf_printf(out, "yaml: %s, ", o->yaml);
        else
            hp_buf_puts(out, "flag only, ");
        hp_buf_printf(out, "default: %s)\n      %s\n", o->def[0] ? o->def : "\"\"", o->help);
    }
    hp_buf_puts(out, "  -help, -h\n      print this text and exit\n");
}

/* True when an option before index i has a YAML path starting with the same
 * n bytes as path (so that section was already written). */
static bool section_written(size_t i, const char *path, size_t n)
{
    for (size_t j = 0; j < i; j++)
        if (options[j].yaml && strncmp(options[j].yaml, path, n) == 0)
            return true;
    return false;
}

/* Writes every option under prefix ("" or "server."), nesting deeper paths
 * under their next key, in table order. */
static void dump_section(const hp_config_t *cfg, hp_buf_t *out, const char *prefix, int indent)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option_t *o = &options[i];
        if (o->yaml == NULL || strncmp(o->yaml, prefix, plen) != 0)
            continue;
        const char *rest = o->yaml + plen, *dot = strchr(rest, '.');
        if (dot == NULL) {
            hp_buf_printf(out, "%*s%s: ", indent, "", rest);
            if (o->flags & OPT_SECRET)
                hp_buf_puts(out, "\"********\"");
            else
                type_ops[o->type].format((const char *)cfg + o->off, out);
            hp_buf_putc(out, '\n');
            continue;
        }
        size_t n = (size_t)(dot - o->yaml) + 1;
        if (section_written(i, o->yaml, n))
            continue;
        hp_buf_printf(out, "%*s%.*s:\n", indent, "", (int)(dot - rest), rest);
        char *sub = hp_xstrndup(o->yaml, n);
        dump_section(cfg, out, sub, indent + 2);
        free(sub);
    }
}

void hp_config_dump_yaml(const hp_config_t *cfg, hp_buf_t *out) { dump_section(cfg, out, "", 0); }

/* ---- per-tenant limits ---- */

#define LIMITS_PREFIX "limits."

int hp_config_limit_parse(hp_limits_config_t *l, const char *key, const char *text, hp_err_t *why)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option_t *o = &options[i];
        if (o->yaml == NULL || strncmp(o->yaml, LIMITS_PREFIX, strlen(LIMITS_PREFIX)) != 0 ||
            strcmp(o->yaml + strlen(LIMITS_PREFIX), key) != 0)
            continue;
        void *field = (char *)l + (o->off - offsetof(hp_config_t, limits));
        int rc = type_ops[o->type].parse(text, field, why);
        if (rc == 0 && o->check)
            rc = o->check(field, why);
        return rc;
    }
    return hp_err_set(why, HP_ENOTFOUND, "\"%s\" is not a per-tenant limit", key);
}

void hp_config_limits_write_json(const hp_limits_config_t *l, hp_buf_t *out)
{
    hp_buf_putc(out, '{');
    bool first = true;
    for (size_t i = 0; i < HP_ARRAY_LEN(options); i++) {
        const option_t *o = &options[i];
        if (o->yaml == NULL || strncmp(o->yaml, LIMITS_PREFIX, strlen(LIMITS_PREFIX)) != 0)
            continue;
        const void *field = (const char *)l + (o->off - offsetof(hp_config_t, limits));
        hp_buf_printf(out, "%s\"%s\":", first ? "" : ",", o->yaml + strlen(LIMITS_PREFIX));
        first = false;
        if (o->type == OPT_DURATION || o->type == OPT_MDURATION) {
            hp_buf_putc(out, '"');
            type_ops[o->type].format(field, out);
            hp_buf_putc(out, '"');
        } else {
            type_ops[o->type].format(field, out);
        }
    }
    hp_buf_putc(out, '}');
}
