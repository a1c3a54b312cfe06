/* Per-tenant limits: the overrides file's shape, every limit key parsed as
 * the configuration parses it, bad files refused with the line and key,
 * and a live set that picks up a changed file and keeps the last good one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotpath/config.h"
#include "hotpath/limits.h"
#include "test.h"

static void load_defaults(hp_config_t *cfg, const char *file)
{
    char flag[512];
    snprintf(flag, sizeof(flag), "-runtime-config.file=%s", file ? file : "");
    char *argv[] = {"x", flag, "-runtime-config.reload-period=1ms", NULL};
    hp_err_t err;
    memset(cfg, 0, sizeof(*cfg));
    REQUIRE(hp_config_load(cfg, 3, argv, &err) == 0);
}

static void test_parse(void)
{
    hp_config_t cfg;
    load_defaults(&cfg, NULL);
    CHECK(cfg.limits.ingestion_rate_mb == 4 && cfg.limits.ingestion_burst_size_mb == 2);
    CHECK_EQ_INT(cfg.limits.reject_older_than_ms, 3600000);
    CHECK_EQ_INT(cfg.limits.reject_newer_than_ms, 600000);
    CHECK_EQ_INT(cfg.limits.max_global_series_per_tenant, 5000);
    const char *yaml = "overrides:\n"
                       "  team-b:\n"
                       "    ingestion_rate_mb: 0.5\n"
                       "    max_label_names_per_series: 40\n"
                       "    compactor_blocks_retention_period: 7d\n"
                       "    reject_older_than: 2h\n"
                       "  team-a:\n"
                       "    max_profile_size_bytes: 1MiB\n"
                       "  empty:\n";
    char **tenants;
    hp_limits_config_t *l;
    hp_err_t err;
    int n = hp_overrides_parse_text(yaml, strlen(yaml), &cfg.limits, &tenants, &l, &err);
    REQUIRE(n == 3);
    CHECK_EQ_STR(tenants[0], "empty");
    CHECK_EQ_STR(tenants[1], "team-a");
    CHECK_EQ_STR(tenants[2], "team-b");
    CHECK_EQ_INT(l[1].max_profile_size_bytes, 1 << 20);
    CHECK(l[1].ingestion_rate_mb == 4); /* the defaults under what a tenant sets */
    CHECK(l[2].ingestion_rate_mb == 0.5);
    CHECK_EQ_INT(l[2].max_label_names_per_series, 40);
    CHECK_EQ_INT(l[2].compactor_blocks_retention_period_ms, 7LL * 86400000);
    CHECK_EQ_INT(l[2].reject_older_than_ms, 7200000);
    CHECK_EQ_INT(l[0].max_label_names_per_series, 30);
    for (int i = 0; i < n; i++)
        free(tenants[i]);
    free(tenants);
    free(l);

    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"overrides:\n  t:\n    no_such_limit: 1\n", "no_such_limit"},
        {"overrides:\n  t:\n    ingestion_rate_mb: fast\n", "overrides.t.ingestion_rate_mb (line 3)"},
        {"overrides:\n  t:\n    ingestion_rate_mb: -1\n", "must not be negative"},
        {"overrides:\n  t:\n    compactor_blocks_retention_period: 7 days\n", "duration"},
        {"overrides: [1, 2]\n", "mapping of tenants"},
        {"overrides:\n  t: 5\n", "mapping of limits"},
        {"overrides:\n  t:\n    a: [\n", "line"},
        {"overrides:\n  t: {}\n  t: {}\n", "twice"},
        {"- 1\n", "overrides"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(bad); i++) {
        n = hp_overrides_parse_text(bad[i].yaml, strlen(bad[i].yaml), &cfg.limits, &tenants, &l, &err);
        CHECK(n < 0);
        if (n >= 0 || strstr(err.msg, bad[i].needle) == NULL)
            fprintf(stderr, "  case %zu: %d \"%s\"\n", i, n, n < 0 ? err.msg : "");
        CHECK(n < 0 && strstr(err.msg, bad[i].needle) != NULL);
    }
    n = hp_overrides_parse_text("", 0, &cfg.limits, &tenants, &l, &err);
    CHECK_EQ_INT(n, 0);
    free(tenants);
    free(l);

    /* the JSON view names every limit */
    hp_buf_t js = HP_BUF_INIT;
    hp_config_limits_write_json(&cfg.limits, &js);
    const char *j = hp_buf_cstr(&js);
    CHECK(strstr(j, "\"ingestion_rate_mb\":4") != NULL);
    CHECK(strstr(j, "\"reject_older_than\":\"1h\"") != NULL);
    CHECK(strstr(j, "\"compactor_blocks_retention_period\":\"0s\"") != NULL);
    CHECK(strstr(j, "\"max_global_series_per_tenant\":5000") != NULL);
    hp_buf_fini(&js);
    hp_config_fini(&cfg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_live(void)
{
    char path[] = "/tmp/hp-limits-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    write_file(path, "overrides:\n  a:\n    max_label_names_per_series: 7\n");
    hp_config_t cfg;
    load_defaults(&cfg, path);
    hp_overrides_t *o;
    hp_err_t err;
    REQUIRE(hp_overrides_new(&cfg, NULL, &o, &err) == 0);
    hp_limits_config_t l;
    hp_overrides_get(o, HP_STR("a"), &l);
    CHECK_EQ_INT(l.max_label_names_per_series, 7);
    hp_overrides_get(o, HP_STR("b"), &l);
    CHECK_EQ_INT(l.max_label_names_per_series, 30);

    /* a changed file is picked up at the next reload */
    usleep(20000);
    write_file(path, "overrides:\n  a:\n    max_label_names_per_series: 9\n  b:\n    ingestion_rate_mb: 1\n");
    hp_overrides_get(o, HP_STR("a"), &l);
    CHECK_EQ_INT(l.max_label_names_per_series, 7); /* until it is reloaded */
    hp_overrides_reload(o);
    hp_overrides_get(o, HP_STR("a"), &l);
    CHECK_EQ_INT(l.max_label_names_per_series, 9);
    hp_overrides_get(o, HP_STR("b"), &l);
    CHECK(l.ingestion_rate_mb == 1);

    /* a broken file: the last good overrides stay */
    usleep(20000);
    write_file(path, "overrides:\n  a:\n    max_label_names_per_series: lots\n");
    hp_overrides_reload(o);
    hp_overrides_get(o, HP_STR("a"), &l);
    CHECK_EQ_INT(l.max_label_names_per_series, 9);
    hp_overrides_free(o);

    /* and at start it is an error that names the file and the key */
    CHECK_EQ_INT(hp_overrides_new(&cfg, NULL, &o, &err), HP_EINVAL);
    CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "max_label_names_per_series") != NULL);
    hp_overrides_free(o);
    unlink(path);
    hp_config_fini(&cfg);
}

int main(void)
{
    HP_RUN(test_parse);
    HP_RUN(test_live);
    return hp_test_done();
}
