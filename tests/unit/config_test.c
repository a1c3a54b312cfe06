/* Tests for config.h: defaults, YAML file, flags and their precedence,
 * value types, error messages, -help, the YAML dump. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpath/config.h"
#include "test.h"

/* Writes text to a fresh temporary .yaml file; path receives its name. */
static void write_tmp(char path[64], const char *text)
{
    strcpy(path, "/tmp/hp_config_test_XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    REQUIRE(fd >= 0);
    size_t n = strlen(text);
    REQUIRE(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

/* hp_config_load over a NULL-terminated list of flags (argv[0] added). */
static int load(hp_config_t *cfg, hp_err_t *err, const char *const *flags)
{
    char *argv[64] = {"hotpath"};
    int argc = 1;
    for (; flags[argc - 1] && argc < 63; argc++)
        argv[argc] = (char *)flags[argc - 1];
    return hp_config_load(cfg, argc, argv, err);
}

#define STARTS_WITH(s, lit) (strncmp((s), (lit), strlen(lit)) == 0)
#define HOLDS(s, n, lit) (memmem((s), (n), (lit), strlen(lit)) != NULL)

#define LOAD(cfg, err, ...) load((cfg), (err), (const char *const[]){__VA_ARGS__, NULL})

/* Loads with the given flags and expects HP_EINVAL whose message holds want. */
static void expect_einval(const char *want, const char *const *flags)
{
    hp_config_t cfg;
    hp_err_t err;
    int rc = load(&cfg, &err, flags);
    CHECK_EQ_INT(rc, HP_EINVAL);
    if (strstr(err.msg, want) == NULL)
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK(cfg.target == NULL && cfg.log.level == NULL); /* left finished */
    hp_config_fini(&cfg);
}

#define EXPECT_EINVAL(want, ...) expect_einval((want), (const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void)
{
    hp_config_t cfg;
    hp_err_t err;
    REQUIRE(load(&cfg, &err, (const char *const[]){NULL}) == 0);
    CHECK_EQ_STR(cfg.config_file, "");
    CHECK_EQ_STR(cfg.target, "");
    CHECK_EQ_STR(cfg.server.http_listen_address, "0.0.0.0");
    CHECK_EQ_INT(cfg.server.http_listen_port, 4040);
    CHECK_EQ_STR(cfg.server.rpc_listen_address, "0.0.0.0");
    CHECK_EQ_INT(cfg.server.rpc_listen_port, 9095);
    CHECK_EQ_INT(cfg.server.worker_threads, 0);
    CHECK_EQ_INT(cfg.server.graceful_shutdown_timeout_ms, 30000);
    CHECK_EQ_STR(cfg.log.level, "info");
    CHECK_EQ_STR(cfg.ring.members, "");
    CHECK_EQ_STR(cfg.ring.instance_id, "");
    CHECK_EQ_STR(cfg.ring.zone, "");
    CHECK_EQ_INT(cfg.ring.num_tokens, 128);
    CHECK_EQ_INT(cfg.distributor.replication_factor, 1);
    CHECK_EQ_INT(cfg.distributor.push_timeout_ms, 5000);
    CHECK_EQ_STR(cfg.ingester.data_dir, "./data");
    CHECK_EQ_INT(cfg.querier.query_timeout_ms, 30000);
    CHECK(cfg.auth.multitenancy_enabled == false);
    CHECK_EQ_INT(cfg.limits.max_profile_size_bytes, 4194304);
    CHECK_EQ_INT(cfg.limits.ingestion_body_limit_bytes, 268435456);
    CHECK_EQ_INT(cfg.limits.max_label_name_length, 1024);
    CHECK_EQ_INT(cfg.limits.max_label_value_length, 2048);
    CHECK_EQ_INT(cfg.limits.max_label_names_per_series, 30);
    CHECK_EQ_INT(cfg.limits.max_profile_stacktrace_samples, 16000);
    CHECK_EQ_INT(cfg.limits.max_profile_stacktrace_sample_labels, 100);
    CHECK_EQ_INT(cfg.limits.ingestion_decompressed_body_limit_bytes, 268435456);
    CHECK_EQ_INT(cfg.limits.max_profile_stacktrace_depth, 1000);
    CHECK_EQ_INT(cfg.limits.max_profile_symbol_value_length, 65535);
    CHECK_EQ_INT(cfg.limits.max_flamegraph_nodes_default, 8192);
    CHECK_EQ_INT(cfg.limits.max_flamegraph_nodes_max, 1048576);
    CHECK_EQ_INT(cfg.limits.max_query_length_ms, 0);
    CHECK_EQ_INT(err.code, HP_OK);
    hp_config_fini(&cfg);
}

static void test_yaml_then_flags(void)
{
    char path[64], flag[96];
    write_tmp(path, "# comment\n"
                    "target: ingester\n"
                    "server:\n"
                    "  http_listen_port: 4100\n"
                    "  rpc_listen_port: 9200\n"
                    "  graceful_shutdown_timeout: 1m\n"
                    "log:\n"
                    "  level: debug\n"
                    "ring:\n"
                    "  members: \"tcp://127.0.0.1:9095,tcp://127.0.0.1:9096\"\n"
                    "  zone:\n" /* null: keeps the default */
                    "auth:\n"
                    "  multitenancy_enabled: true\n"
                    "limits:\n"
                    "  max_profile_size_bytes: 8MiB\n"
                    "  max_query_length: 24h\n");
    snprintf(flag, sizeof(flag), "-config.file=%s", path);
    hp_config_t cfg;
    hp_err_t err;
    /* -config.file comes last: the file is still applied before every flag. */
    int rc = LOAD(&cfg, &err, "-server.http-listen-port=5000", "-log.level", "warn", flag);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_STR(cfg.config_file, path);
    CHECK_EQ_STR(cfg.target, "ingester");
    CHECK_EQ_INT(cfg.server.http_listen_port, 5000); /* flag beats file */
    CHECK_EQ_INT(cfg.server.rpc_listen_port, 9200);  /* file beats default */
    CHECK_EQ_INT(cfg.server.graceful_shutdown_timeout_ms, 60000);
    CHECK_EQ_STR(cfg.log.level, "warn");
    CHECK_EQ_STR(cfg.ring.members, "tcp://127.0.0.1:9095,tcp://127.0.0.1:9096");
    CHECK_EQ_STR(cfg.ring.zone, "");
    CHECK(cfg.auth.multitenancy_enabled);
    CHECK_EQ_INT(cfg.limits.max_profile_size_bytes, 8 << 20);
    CHECK_EQ_INT(cfg.limits.max_query_length_ms, 24LL * 3600 * 1000);
    CHECK_EQ_INT(cfg.limits.max_label_name_length, 1024);
    hp_config_fini(&cfg);
    unlink(path);
}

static void test_flag_syntax(void)
{
    hp_config_t cfg;
    hp_err_t err;
    REQUIRE(LOAD(&cfg, &err, "-target=a", "-ring.zone", "z1", "--ring.instance-id=i-1",
                 "--ingester.data-dir", "/var/hp", "-server.http-listen-address=", "-ring.members",
                 "-x=y") == 0);
    CHECK_EQ_STR(cfg.target, "a");
    CHECK_EQ_STR(cfg.ring.zone, "z1");
    CHECK_EQ_STR(cfg.ring.instance_id, "i-1");
    CHECK_EQ_STR(cfg.ingester.data_dir, "/var/hp");
    CHECK_EQ_STR(cfg.server.http_listen_address, "");
    CHECK_EQ_STR(cfg.ring.members, "-x=y"); /* as Go: the next argument is the value */
    hp_config_fini(&cfg);

    /* a value containing '=' is kept whole; the last of repeated flags wins */
    REQUIRE(LOAD(&cfg, &err, "-target=a=b", "-ring.num-tokens=5", "--ring.num-tokens", "7", "--") == 0);
    CHECK_EQ_STR(cfg.target, "a=b");
    CHECK_EQ_INT(cfg.ring.num_tokens, 7);
    hp_config_fini(&cfg);

    EXPECT_EINVAL("flag -target needs a value", "-target");
    EXPECT_EINVAL("bad flag syntax: ---target=a", "---target=a");
    EXPECT_EINVAL("bad flag syntax: -=a", "-=a");
    EXPECT_EINVAL("unexpected argument \"ingester\"", "ingester");
    EXPECT_EINVAL("unexpected argument \"x\" after --", "--", "x");
}

static void test_bool_forms(void)
{
    static const struct {
        const char *arg;
        bool want;
    } cases[] = {
        {"-auth.multitenancy-enabled", true},        {"--auth.multitenancy-enabled", true},
        {"-auth.multitenancy-enabled=true", true},   {"-auth.multitenancy-enabled=1", true},
        {"-auth.multitenancy-enabled=TRUE", true},   {"-auth.multitenancy-enabled=false", false},
        {"--auth.multitenancy-enabled=0", false},    {"-auth.multitenancy-enabled=F", false},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_config_t cfg;
        hp_err_t err;
        /* start from the opposite value so the flag has to change it */
        const char *pre = cases[i].want ? "-auth.multitenancy-enabled=false" : "-auth.multitenancy-enabled";
        REQUIRE(LOAD(&cfg, &err, pre, cases[i].arg) == 0);
        if (cfg.auth.multitenancy_enabled != cases[i].want)
            fprintf(stderr, "  case %s\n", cases[i].arg);
        CHECK(cfg.auth.multitenancy_enabled == cases[i].want);
        hp_config_fini(&cfg);
    }
    EXPECT_EINVAL("invalid value \"yes please\" for flag -auth.multitenancy-enabled: expected true or false",
                  "-auth.multitenancy-enabled=yes please");
    /* a bare boolean never swallows the next argument, as in Go */
    EXPECT_EINVAL("unexpected argument \"false\"", "-auth.multitenancy-enabled", "false");
}

static void test_durations(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"0", 0},           {"0s", 0},          {"5s", 5000},         {"1h30m", 5400000},
        {"250ms", 250},     {"1.5s", 1500},     {".5s", 500},         {"1.s", 1000},
        {"2m3s4ms", 123004}, {"1500us", 1},     {"999999ns", 0},      {"1\xc2\xb5s", 0},
        {"-5s", -5000},     {"+2h", 7200000},   {"0.001s", 1},        {"2562047h", 2562047LL * 3600000},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(good); i++) {
        int64_t ms = -12345;
        int rc = hp_parse_duration_ms(good[i].s, &ms);
        if (rc != 0 || ms != good[i].ms)
            fprintf(stderr, "  duration \"%s\": rc %d ms %lld\n", good[i].s, rc, (long long)ms);
        CHECK(rc == 0 && ms == good[i].ms);
    }
    static const char *const bad[] = {"", "5", "100", "s", ".s", "5x", "1h30", "1.2.3s",
                                      "- 5s", "5 s", "2562048h", "99999999999999999999s"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        int64_t ms;
        if (hp_parse_duration_ms(bad[i], &ms) != HP_EINVAL)
            fprintf(stderr, "  duration \"%s\" accepted\n", bad[i]);
        CHECK(hp_parse_duration_ms(bad[i], &ms) == HP_EINVAL);
    }

    hp_config_t cfg;
    hp_err_t err;
    REQUIRE(LOAD(&cfg, &err, "-querier.query-timeout=1h30m", "-distributor.push-timeout", "250ms",
                 "-server.graceful-shutdown-timeout=1.5s") == 0);
    CHECK_EQ_INT(cfg.querier.query_timeout_ms, 5400000);
    CHECK_EQ_INT(cfg.distributor.push_timeout_ms, 250);
    CHECK_EQ_INT(cfg.server.graceful_shutdown_timeout_ms, 1500);
    hp_config_fini(&cfg);
    EXPECT_EINVAL("invalid value \"30\" for flag -querier.query-timeout: expected a duration like 5s",
                  "-querier.query-timeout=30");
    EXPECT_EINVAL("invalid value \"-1s\" for flag -querier.query-timeout: a duration here must not be negative",
                  "-querier.query-timeout=-1s");
}

static void test_sizes(void)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } good[] = {
        {"0", 0},       {"1048576", 1048576}, {"4MiB", 4194304}, {"512KiB", 524288},
        {"2GiB", 2147483648LL}, {"3KB", 3000}, {"5MB", 5000000}, {"1GB", 1000000000},
        {"16 mib", 16777216},   {"7B", 7},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(good); i++) {
        hp_config_t cfg;
        hp_err_t err;
        REQUIRE(LOAD(&cfg, &err, "-validation.max-profile-size-bytes", good[i].s) == 0);
        if (cfg.limits.max_profile_size_bytes != good[i].bytes)
            fprintf(stderr, "  size \"%s\" -> %lld\n", good[i].s, (long long)cfg.limits.max_profile_size_bytes);
        CHECK(cfg.limits.max_profile_size_bytes == good[i].bytes);
        hp_config_fini(&cfg);
    }
    EXPECT_EINVAL("invalid value \"1.5MiB\" for flag -distributor.ingestion-body-limit-bytes: unknown size unit",
                  "-distributor.ingestion-body-limit-bytes=1.5MiB");
    EXPECT_EINVAL("unknown size unit \"XB\"", "-validation.max-profile-size-bytes=12XB");
    EXPECT_EINVAL("expected a byte count", "-validation.max-profile-size-bytes=-1");
    EXPECT_EINVAL("size out of range", "-validation.max-profile-size-bytes=9000000000GiB");
}

static void test_bad_values(void)
{
    EXPECT_EINVAL("invalid value \"http\" for flag -server.http-listen-port: expected an integer",
                  "-server.http-listen-port=http");
    EXPECT_EINVAL("invalid value \"70000\" for flag -server.http-listen-port: a port must be between 0 and 65535",
                  "-server.http-listen-port=70000");
    EXPECT_EINVAL("invalid value \" 5\" for flag -ring.num-tokens: expected an integer", "-ring.num-tokens= 5");
    EXPECT_EINVAL("integer out of range", "-ring.num-tokens=99999999999999999999");
    EXPECT_EINVAL("invalid value \"0\" for flag -distributor.replication-factor: must be at least 1",
                  "-distributor.replication-factor=0");
    EXPECT_EINVAL("invalid value \"verbose\" for flag -log.level: expected debug, info, warn or error",
                  "-log.level=verbose");
    EXPECT_EINVAL("must not be negative", "-validation.max-length-label-name=-3");
}

static void test_unknown_flag(void)
{
    hp_config_t cfg;
    hp_err_t err;
    CHECK_EQ_INT(LOAD(&cfg, &err, "-foo"), HP_EINVAL);
    CHECK_EQ_STR(err.msg, "unknown flag -foo (see -help)");
    CHECK_EQ_INT(LOAD(&cfg, &err, "--foo=1", "-target=x"), HP_EINVAL);
    CHECK_EQ_STR(err.msg, "unknown flag -foo (see -help)");
    CHECK_EQ_INT(LOAD(&cfg, &err, "-server.http-listen-prot=1"), HP_EINVAL);
    CHECK_EQ_STR(err.msg, "unknown flag -server.http-listen-prot (see -help); did you mean "
                          "-server.http-listen-port?");
    /* YAML spellings are not flags */
    CHECK_EQ_INT(LOAD(&cfg, &err, "-server.http_listen_port=1"), HP_EINVAL);
    CHECK(strstr(err.msg, "unknown flag -server.http_listen_port") != NULL);
    hp_config_fini(&cfg);
}

/* Loads a config file holding text and expects HP_EINVAL whose message is
 * "config file <path>: " followed by want (a prefix of the rest). */
static void expect_yaml_error(const char *text, const char *want)
{
    char path[64], flag[96], full[512];
    write_tmp(path, text);
    snprintf(flag, sizeof(flag), "-config.file=%s", path);
    snprintf(full, sizeof(full), "config file %s: %s", path, want);
    hp_config_t cfg;
    hp_err_t err;
    CHECK_EQ_INT(LOAD(&cfg, &err, flag), HP_EINVAL);
    if (strncmp(err.msg, full, strlen(full)) != 0)
        fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", err.msg, full);
    CHECK(strncmp(err.msg, full, strlen(full)) == 0);
    hp_config_fini(&cfg);
    unlink(path);
}

static void test_yaml_errors(void)
{
    expect_yaml_error("server:\n  http_listen_port: 4040\n  htp_listen_port: 1\n",
                      "unknown key server.htp_listen_port (line 3); did you mean server.http_listen_port?");
    expect_yaml_error("target: a\nblobstore:\n  backend: s3\n", "unknown key blobstore (line 2)");
    expect_yaml_error("server:\n  http_listen_port: abc\n",
                      "invalid value \"abc\" for server.http_listen_port (line 2): expected an integer");
    expect_yaml_error("\n\nquerier:\n  query_timeout: 10\n",
                      "invalid value \"10\" for querier.query_timeout (line 4): expected a duration like 5s");
    expect_yaml_error("server:\n  http_listen_port:\n    a: 1\n",
                      "server.http_listen_port (line 3): expected a single int value, got a mapping");
    expect_yaml_error("ring:\n  members: [a, b]\n", "ring.members (line 2): expected a single string value, got a list");
    expect_yaml_error("server: 8080\n", "server (line 1): expected a section of settings, got a value");
    expect_yaml_error("server.http_listen_port: 1\n", "unknown key server.http_listen_port (line 1)");
    expect_yaml_error("- a\n- b\n", "line 1: expected sections like \"server:\" at the top level, got a list");
    expect_yaml_error("server:\n  http_listen_port: 1\n bad\n",
                      "line 3, column 2: did not find expected key (while parsing a block mapping)");
    expect_yaml_error("log: {level: \"loud\"}\n",
                      "invalid value \"loud\" for log.level (line 1): expected debug, info, warn or error");
}

static void test_yaml_empty_file(void)
{
    char path[64], flag[96];
    write_tmp(path, "# nothing set yet\n");
    snprintf(flag, sizeof(flag), "-config.file=%s", path);
    hp_config_t cfg;
    hp_err_t err;
    REQUIRE(LOAD(&cfg, &err, flag) == 0);
    CHECK_EQ_INT(cfg.server.http_listen_port, 4040);
    hp_config_fini(&cfg);
    unlink(path);
}

static void test_missing_file(void)
{
    hp_config_t cfg;
    hp_err_t err;
    CHECK_EQ_INT(LOAD(&cfg, &err, "-config.file", "/nonexistent/hotpath.yaml"), HP_EINVAL);
    CHECK_EQ_STR(err.msg, "config file /nonexistent/hotpath.yaml: cannot open it: No such file or directory");
    CHECK_EQ_INT(LOAD(&cfg, &err, "-config.file=/tmp"), HP_EINVAL);
    CHECK_EQ_STR(err.msg, "config file /tmp: is a directory, not a YAML file");
    hp_config_fini(&cfg);
}

static void test_help(void)
{
    static const char *const forms[] = {"-help", "-h", "--help", "--h"};
    for (size_t i = 0; i < HP_ARRAY_LEN(forms); i++) {
        hp_config_t cfg;
        hp_err_t err;
        CHECK_EQ_INT(LOAD(&cfg, &err, "-target=x", forms[i]), HP_ENOTFOUND);
        CHECK(strncmp(err.msg, "Flags", 5) == 0);
        CHECK(cfg.target == NULL);
        hp_config_fini(&cfg);
    }
    hp_buf_t b = HP_BUF_INIT;
    hp_config_usage(&b);
    const char *u = hp_buf_cstr(&b);
    CHECK(strstr(u, "  -server.http-listen-port <int>  (yaml: server.http_listen_port, default: 4040)\n"
                    "      port the HTTP server listens on") != NULL);
    CHECK(strstr(u, "  -querier.max-query-length <duration>  (yaml: limits.max_query_length, default: 0s)\n"
                    "      ") != NULL);
    CHECK(strstr(u, "  -config.file <string>  (flag only, default: \"\")\n") != NULL);
    CHECK(strstr(u, "  -validation.max-profile-size-bytes <size>  (yaml: limits.max_profile_size_bytes, "
                    "default: 4194304)\n") != NULL);
    CHECK(strstr(u, "-auth.multitenancy-enabled <bool>") != NULL);
    hp_buf_fini(&b);
}

/* The text of the section `name:` in a YAML dump, up to the next top-level
 * key (a pointer into y; its length in *n). */
static const char *yaml_section(const char *y, const char *name, size_t *n)
{
    char head[64];
    snprintf(head, sizeof(head), "\n%s:\n", name);
    const char *s = strstr(y, head);
    if (s == NULL)
        return NULL;
    s += strlen(head);
    const char *e = s;
    while (*e && (e[0] != '\n' || e[1] == ' '))
        e++;
    *n = (size_t)(e - s) + (*e == '\n'); /* keep the last line's newline */
    return s;
}

static void test_dump_yaml(void)
{
    hp_config_t cfg;
    hp_err_t err;
    REQUIRE(LOAD(&cfg, &err, "-target=tab\there \"q\" \\ end", "-querier.query-timeout=1h30m5s",
                 "-ingester.data-dir=/d", "-auth.multitenancy-enabled") == 0);
    hp_buf_t b = HP_BUF_INIT;
    hp_config_dump_yaml(&cfg, &b);
    const char *y = hp_buf_cstr(&b);
    size_t n = 0;
    const char *server = yaml_section(y, "server", &n);
    REQUIRE(server != NULL);
    CHECK(STARTS_WITH(server, "  http_listen_address: \"0.0.0.0\"\n  http_listen_port: 4040\n"));
    CHECK(HOLDS(server, n, "  graceful_shutdown_timeout: 30s\n"));
    const char *limits = yaml_section(y, "limits", &n);
    REQUIRE(limits != NULL);
    CHECK(HOLDS(limits, n, "  max_profile_size_bytes: 4194304\n"));
    CHECK(HOLDS(limits, n, "  max_query_length: 0s\n"));
    const char *querier = yaml_section(y, "querier", &n);
    REQUIRE(querier != NULL);
    CHECK(HOLDS(querier, n, "  query_timeout: 1h30m5s\n"));
    CHECK(strstr(y, "auth:\n  multitenancy_enabled: true\n") != NULL);
    CHECK(STARTS_WITH(y, "target: \"tab\\x09here \\\"q\\\" \\\\ end\"\n"));
    CHECK(strstr(y, "config_file") == NULL); /* flag only */
    CHECK(strstr(y, "\nserver:") != NULL && strstr(strstr(y, "\nserver:") + 1, "\nserver:") == NULL);

    /* the dump reads back to the same configuration */
    char path[64], flag[96];
    write_tmp(path, y);
    snprintf(flag, sizeof(flag), "-config.file=%s", path);
    hp_config_t again;
    int rc = LOAD(&again, &err, flag);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_STR(again.target, cfg.target);
    CHECK_EQ_INT(again.querier.query_timeout_ms, 5405000);
    hp_buf_t b2 = HP_BUF_INIT;
    hp_config_dump_yaml(&again, &b2);
    CHECK_EQ_STR(hp_buf_cstr(&b2), y);
    hp_buf_fini(&b2);
    hp_config_fini(&again);
    unlink(path);
    hp_buf_fini(&b);
    hp_config_fini(&cfg);
}

static void test_fini_safe(void)
{
    hp_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    hp_config_fini(&cfg);
    hp_config_fini(&cfg);
    hp_err_t err;
    REQUIRE(LOAD(&cfg, &err, "-target=x") == 0);
    hp_config_fini(&cfg);
    CHECK(cfg.target == NULL && cfg.server.http_listen_address == NULL);
    hp_config_fini(&cfg);
    /* a NULL err is allowed */
    CHECK_EQ_INT(LOAD(&cfg, NULL, "-nope"), HP_EINVAL);
    hp_config_fini(&cfg);
}

int main(void)
{
    HP_RUN(test_defaults);
    HP_RUN(test_yaml_then_flags);
    HP_RUN(test_flag_syntax);
    HP_RUN(test_bool_forms);
    HP_RUN(test_durations);
    HP_RUN(test_sizes);
    HP_RUN(test_bad_values);
    HP_RUN(test_unknown_flag);
    HP_RUN(test_yaml_errors);
    HP_RUN(test_yaml_empty_file);
    HP_RUN(test_missing_file);
    HP_RUN(test_help);
    HP_RUN(test_dump_yaml);
    HP_RUN(test_fini_safe);
    return hp_test_done();
}
