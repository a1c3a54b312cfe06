/* Unit tests for bucket_index.h on a filesystem object store: building an
 * index from what the bucket holds (complete blocks only, deletion marks,
 * damaged meta.json left out, entries reused from the previous index),
 * writing and reading it back, damaged indexes, tenant discovery, the
 * listing of block directories, and hard deletion. */
#include <ftw.h>
#include <unistd.h>

#include "block_internal.h" /* hp__block_meta_json */
#include "hotpath/bucket_index.h"
#include "hotpath/compress.h"
#include "test.h"

static hp_objstore_t *S;
static char dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void put(const char *key, const void *data, size_t n)
{
    hp_err_t err;
    int rc = hp_objstore_put(S, key, data, n, &err);
    if (rc != 0)
        fprintf(stderr, "  put %s: %s\n", key, err.msg);
    REQUIRE(rc == 0);
}

static bool exists(const char *key)
{
    bool yes = false;
    hp_err_t err;
    REQUIRE(hp_objstore_exists(S, key, &yes, &err) == 0);
    return yes;
}

/* Stores a block of tenant made at ms covering [lo, hi] ms: data (size
 * bytes of junk, data too when with_meta is false) and meta.json. */
static void put_block(const char *tenant, int64_t ms, int64_t lo, int64_t hi, uint32_t level, bool with_meta,
                      char ulid[27])
{
    hp_block_meta_t m;
    memset(&m, 0, sizeof(m));
    hp_ulid_new(ms, m.ulid);
    snprintf(m.tenant, sizeof(m.tenant), "%s", tenant);
    snprintf(m.source, sizeof(m.source), "%s", level > 1 ? "compactor" : "ingester");
    m.min_time_ms = lo, m.max_time_ms = hi, m.level = level, m.version = HP_BLOCK_VERSION;
    m.num_series = 3, m.num_profiles = 7, m.num_samples = 11, m.data_bytes = 100 + (uint64_t)level;
    char key[600];
    char junk[200];
    memset(junk, 'x', sizeof(junk));
    snprintf(key, sizeof(key), "%s/blocks/%s/data", tenant, m.ulid);
    put(key, junk, (size_t)m.data_bytes);
    if (with_meta) {
        hp_buf_t j = HP_BUF_INIT;
        hp__block_meta_json(&m, &j);
        snprintf(key, sizeof(key), "%s/blocks/%s/meta.json", tenant, m.ulid);
        put(key, j.data, j.len);
        hp_buf_fini(&j);
    }
    memcpy(ulid, m.ulid, 27);
}

static hp_bucket_index_t build(const char *tenant, const hp_bucket_index_t *prev)
{
    hp_bucket_index_t bi;
    hp_err_t err;
    int rc = hp_bucket_index_build(S, tenant, prev, &bi, &err);
    if (rc != 0)
        fprintf(stderr, "  build: %s\n", err.msg);
    REQUIRE(rc == 0);
    return bi;
}

static void test_build_write_read(void)
{
    hp_bucket_index_t bi;
    hp_err_t err;
    CHECK_EQ_INT(hp_bucket_index_read(S, "t1", &bi, &err), HP_ENOTFOUND);
    char a[27], b[27], partial[27], c[27];
    put_block("t1", 1700000300000, 1700000200000, 1700000259999, 1, true, a);
    put_block("t1", 1700000100000, 1700000000000, 1700000059999, 2, true, b);
    put_block("t1", 1700000400000, 1700000000000, 1700000001000, 1, false, partial);
    bi = build("t1", NULL);
    REQUIRE(bi.n_blocks == 2);
    CHECK_EQ_STR(bi.blocks[0].ulid, b); /* by min time */
    CHECK_EQ_STR(bi.blocks[1].ulid, a);
    CHECK_EQ_INT(bi.blocks[0].level, 2);
    CHECK_EQ_STR(bi.blocks[0].source, "compactor");
    CHECK_EQ_INT(bi.blocks[0].min_time_ms, 1700000000000);
    CHECK_EQ_INT(bi.blocks[0].max_time_ms, 1700000059999);
    CHECK_EQ_INT(bi.blocks[0].data_bytes, 102);
    CHECK_EQ_INT(bi.blocks[0].num_series, 3);
    CHECK_EQ_INT(bi.blocks[0].num_profiles, 7);
    CHECK_EQ_INT(bi.blocks[0].num_samples, 11);
    CHECK_EQ_INT(bi.blocks[0].deletion_mark_ms, 0);
    CHECK(bi.updated_ms > 0);
    CHECK(hp_bucket_index_find(&bi, partial) == NULL);

    /* a mark: its time is kept when marked again */
    REQUIRE(hp_block_mark_deletion(S, "t1", a, 1700000999000, &err) == 0);
    REQUIRE(hp_block_mark_deletion(S, "t1", a, 1700009999000, &err) == 0);
    hp_bucket_index_t bi2 = build("t1", &bi);
    REQUIRE(bi2.n_blocks == 2);
    CHECK_EQ_INT(hp_bucket_index_find(&bi2, a)->deletion_mark_ms, 1700000999000);
    CHECK_EQ_INT(hp_bucket_index_find(&bi2, b)->deletion_mark_ms, 0);

    /* write, read back: identical */
    REQUIRE(hp_bucket_index_write(S, "t1", &bi2, &err) == 0);
    CHECK(exists("t1/bucket-index.json.gz"));
    hp_bucket_index_t back;
    int rc = hp_bucket_index_read(S, "t1", &back, &err);
    if (rc != 0)
        fprintf(stderr, "  read: %s\n", err.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(back.updated_ms, bi2.updated_ms);
    REQUIRE(back.n_blocks == bi2.n_blocks);
    CHECK(memcmp(back.blocks, bi2.blocks, bi2.n_blocks * sizeof(*bi2.blocks)) == 0);

    /* entries of prev are reused: a meta.json damaged since is not read again */
    char key[600];
    snprintf(key, sizeof(key), "t1/blocks/%s/meta.json", b);
    put(key, "{", 1);
    put_block("t1", 1700000500000, 1700000100000, 1700000159999, 1, true, c);
    hp_bucket_index_t bi3 = build("t1", &back);
    CHECK_EQ_INT(bi3.n_blocks, 3);
    CHECK(hp_bucket_index_find(&bi3, b) != NULL && hp_bucket_index_find(&bi3, c) != NULL);
    /* without prev, the damaged one is left out (and logged), not an error */
    hp_bucket_index_t bi4 = build("t1", NULL);
    CHECK_EQ_INT(bi4.n_blocks, 2);
    CHECK(hp_bucket_index_find(&bi4, b) == NULL);

    /* a meta.json that names another block is left out too */
    char d[27];
    put_block("t1", 1700000600000, 1, 2, 1, true, d);
    snprintf(key, sizeof(key), "t1/blocks/%s/meta.json", c);
    hp_buf_t mj = HP_BUF_INIT;
    REQUIRE(hp_objstore_get(S, key, &mj, 1 << 20, &err) == 0);
    snprintf(key, sizeof(key), "t1/blocks/%s/meta.json", d);
    put(key, mj.data, mj.len);
    hp_buf_fini(&mj);
    hp_bucket_index_t bi5 = build("t1", NULL);
    CHECK(hp_bucket_index_find(&bi5, d) == NULL);

    hp_bucket_index_fini(&bi);
    hp_bucket_index_fini(&bi2);
    hp_bucket_index_fini(&bi3);
    hp_bucket_index_fini(&bi4);
    hp_bucket_index_fini(&bi5);
    hp_bucket_index_fini(&back);
}

static void expect_damaged(const void *gz, size_t n, const char *needle)
{
    hp_err_t err;
    hp_bucket_index_t bi;
    put("t2/bucket-index.json.gz", gz, n);
    int rc = hp_bucket_index_read(S, "t2", &bi, &err);
    if (rc != HP_EINVAL || strstr(err.msg, needle) == NULL || strstr(err.msg, "t2") == NULL)
        fprintf(stderr, "  damaged index: rc %d \"%s\" (wanted \"%s\")\n", rc, err.msg, needle);
    CHECK(rc == HP_EINVAL && strstr(err.msg, needle) != NULL && strstr(err.msg, "t2") != NULL);
    CHECK(bi.blocks == NULL && bi.n_blocks == 0);
}

static void expect_damaged_json(const char *json, const char *needle)
{
    hp_buf_t gz = HP_BUF_INIT;
    REQUIRE(hp_gzip(json, strlen(json), 1, &gz) == 0);
    expect_damaged(gz.data, gz.len, needle);
    hp_buf_fini(&gz);
}

static void test_damaged_index(void)
{
    expect_damaged("not gzip", 8, "damaged");
    expect_damaged_json("{", "damaged");
    expect_damaged_json("[]", "not a JSON object");
    expect_damaged_json("{\"version\":2,\"updated_at\":1,\"blocks\":[]}", "unsupported version 2");
    expect_damaged_json("{\"version\":1,\"updated_at\":1}", "blocks");
    expect_damaged_json("{\"version\":1,\"updated_at\":1,\"blocks\":[{\"block_id\":\"x\"}]}", "blocks[0]");
    expect_damaged_json(
        "{\"version\":1,\"updated_at\":1,\"blocks\":[{\"block_id\":\"01HHYG6245NWHZWVP27V8WJRT7\","
        "\"min_time\":5,\"max_time\":4}]}",
        "max_time");
    expect_damaged_json("{\"version\":1,\"updated_at\":1,\"blocks\":[],\"block_deletion_marks\":{}}",
                        "block_deletion_marks");
    hp_bucket_index_t bi;
    hp_err_t err;
    CHECK_EQ_INT(hp_bucket_index_read(S, "../x", &bi, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "tenant") != NULL);
}

static int collect(void *ctx, const char *tenant)
{
    hp_buf_t *b = ctx;
    hp_buf_printf(b, "%s;", tenant);
    return 0;
}

static int stop_at_first(void *ctx, const char *tenant)
{
    (void)ctx, (void)tenant;
    return 42;
}

static void test_tenants(void)
{
    put("t3/deletion-requests/x.json", "{}", 2);
    put("bad tenant/blocks/x", "x", 1);
    put("README", "x", 1);
    hp_buf_t b = HP_BUF_INIT;
    hp_err_t err;
    REQUIRE(hp_bucket_tenants(S, collect, &b, &err) == 0);
    CHECK_EQ_STR(hp_buf_cstr(&b), "t1;t2;t3;");
    CHECK_EQ_INT(hp_bucket_tenants(S, stop_at_first, NULL, &err), 42);
    hp_buf_fini(&b);
}

static void test_files_and_delete(void)
{
    char a[27], p[27];
    hp_err_t err;
    put_block("t4", 1700000300000, 1, 2, 1, true, a);
    put_block("t4", 1700000400000, 1, 2, 1, false, p);
    put("t4/blocks/not-a-ulid/data", "x", 1);
    REQUIRE(hp_block_mark_deletion(S, "t4", a, 1700000999000, &err) == 0);
    hp_bucket_block_files_t *f = NULL;
    size_t n = 0;
    REQUIRE(hp_bucket_block_files(S, "t4", &f, &n, &err) == 0);
    REQUIRE(n == 2);
    CHECK_EQ_STR(f[0].ulid, a);
    CHECK(f[0].has_data && f[0].has_meta && f[0].has_mark && f[0].n_objects == 3 && f[0].data_bytes == 101);
    CHECK_EQ_STR(f[1].ulid, p);
    CHECK(f[1].has_data && !f[1].has_meta && !f[1].has_mark && f[1].n_objects == 1);
    free(f);

    char key[600];
    snprintf(key, sizeof(key), "t4/blocks/%s/extra", a);
    put(key, "e", 1);
    REQUIRE(hp_bucket_block_delete(S, "t4", a, &err) == 0);
    REQUIRE(hp_bucket_block_delete(S, "t4", p, &err) == 0);
    REQUIRE(hp_bucket_block_files(S, "t4", &f, &n, &err) == 0);
    CHECK_EQ_INT(n, 0);
    free(f);
    snprintf(key, sizeof(key), "t4/blocks/%s/meta.json", a);
    CHECK(!exists(key));
    CHECK(exists("t4/blocks/not-a-ulid/data"));
    CHECK_EQ_INT(hp_bucket_block_delete(S, "t4", "nope", &err), HP_EINVAL);
    CHECK_EQ_INT(hp_block_mark_deletion(S, "t 4", a, 1, &err), HP_EINVAL);
}

static void test_edits(void)
{
    hp_bucket_index_t bi;
    hp_bucket_index_init(&bi);
    hp_bi_block_t x;
    hp_block_meta_t m;
    memset(&m, 0, sizeof(m));
    const char *ids[] = {"01HHYG6245NWHZWVP27V8WJRT7", "01HHYG6245NWHZWVP27V8WJRT8",
                         "01HHYG6245NWHZWVP27V8WJRT9"};
    int64_t mins[] = {30, 10, 20};
    for (int i = 0; i < 3; i++) {
        snprintf(m.ulid, sizeof(m.ulid), "%s", ids[i]);
        m.min_time_ms = mins[i], m.max_time_ms = mins[i] + 5, m.level = 1;
        snprintf(m.source, sizeof(m.source), "ingester");
        hp_bi_block_from_meta(&m, &x);
        hp_bucket_index_put(&bi, &x);
    }
    REQUIRE(bi.n_blocks == 3);
    CHECK_EQ_STR(bi.blocks[0].ulid, ids[1]);
    CHECK_EQ_STR(bi.blocks[2].ulid, ids[0]);
    x.level = 7; /* replaces ids[2]'s entry */
    hp_bucket_index_put(&bi, &x);
    CHECK_EQ_INT(bi.n_blocks, 3);
    CHECK_EQ_INT(hp_bucket_index_find(&bi, ids[2])->level, 7);
    CHECK(hp_bucket_index_remove(&bi, ids[1]));
    CHECK(!hp_bucket_index_remove(&bi, ids[1]));
    CHECK_EQ_INT(bi.n_blocks, 2);
    CHECK_EQ_STR(bi.blocks[0].ulid, ids[2]);
    hp_bucket_index_fini(&bi);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hp-bucket-index-%d-%lld", getpid(), (long long)hp_now_ns());
    hp_objstore_config_t cfg = {.backend = "filesystem", .filesystem = {dir}};
    hp_err_t err;
    if (hp_objstore_new(&cfg, &S, &err) != 0) {
        fprintf(stderr, "cannot open a store in %s: %s\n", dir, err.msg);
        return 1;
    }
    HP_RUN(test_build_write_read);
    HP_RUN(test_damaged_index);
    HP_RUN(test_tenants);
    HP_RUN(test_files_and_delete);
    HP_RUN(test_edits);
    hp_objstore_free(S);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return hp_test_done();
}
