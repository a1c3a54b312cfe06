/* Tests for compress.h: bounded gunzip, multi-member, corrupt input, bombs. */
#include <stdint.h>
#include <time.h>

#include "hotpath/compress.h"
#include "test.h"

#define MiB ((size_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fills p with compressible but non-trivial text. */
static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *words[] = {"runtime.",  "main.",   "sort.", "pprof ",
                                  "mallocgc ", "0x4a3f ", "\n",    "goroutine "};
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % HP_ARRAY_LEN(words)];
        for (; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

static void gz(const void *p, size_t n, int level, hp_buf_t *out)
{
    REQUIRE(hp_gzip(p, n, level, out) == 0);
}

static void test_is_gzip(void)
{
    CHECK(hp_is_gzip("\x1f\x8b\x08", 3));
    CHECK(!hp_is_gzip("\x1f", 1));
    CHECK(!hp_is_gzip("\x0a\x8b", 2));
    CHECK(!hp_is_gzip(NULL, 0));
}

static void test_round_trip(void)
{
    size_t n = 300000;
    uint8_t *src = malloc(n);
    fill_text(src, n, 7);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(src, n, 6, &z);
    CHECK(z.len < n / 3);
    hp_err_t err = {0};
    hp_buf_append(&out, "prefix", 6); /* hp_gunzip appends */
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 4 * MiB, &out, &err), 0);
    CHECK_EQ_INT(out.len, n + 6);
    CHECK(memcmp(out.data, "prefix", 6) == 0);
    CHECK(memcmp(out.data + 6, src, n) == 0);
    /* The footer's size hint makes the buffer exactly big enough. */
    CHECK_EQ_INT(out.cap, n + 6);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
    free(src);
}

static void test_exact_bound(void)
{
    uint8_t src[5000];
    fill_text(src, sizeof(src), 3);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(src, sizeof(src), 1, &z);
    hp_err_t err = {0};
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, sizeof(src), &out, &err), 0);
    CHECK_EQ_INT(out.len, sizeof(src));
    hp_buf_reset(&out);
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, sizeof(src) - 1, &out, &err), HP_ETOOLARGE);
    CHECK_EQ_STR(err.msg, "profile exceeds 4999 bytes after decompression");
    CHECK_EQ_INT(out.len, 0);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

static void test_empty_payload(void)
{
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz("", 0, 6, &z);
    hp_err_t err = {0};
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 100, &out, &err), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(hp_gunzip(z.data, 0, 100, &out, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "empty") != NULL);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

static void test_multi_member(void)
{
    uint8_t a[20000], b[7000];
    fill_text(a, sizeof(a), 1);
    fill_text(b, sizeof(b), 2);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(a, sizeof(a), 6, &z);
    gz(b, sizeof(b), 1, &z);
    gz("", 0, 1, &z);
    gz(a, 100, 9, &z);
    hp_err_t err = {0};
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 1 * MiB, &out, &err), 0);
    REQUIRE(out.len == sizeof(a) + sizeof(b) + 100);
    CHECK(memcmp(out.data, a, sizeof(a)) == 0);
    CHECK(memcmp(out.data + sizeof(a), b, sizeof(b)) == 0);
    CHECK(memcmp(out.data + sizeof(a) + sizeof(b), a, 100) == 0);
    /* The sum of the members counts against the bound. */
    hp_buf_reset(&out);
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, sizeof(a) + sizeof(b), &out, &err), HP_ETOOLARGE);
    CHECK_EQ_INT(out.len, 0);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

static void test_corrupt(void)
{
    uint8_t src[50000];
    fill_text(src, sizeof(src), 9);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(src, sizeof(src), 6, &z);
    hp_err_t err = {0};
    /* Truncated anywhere: in the header, the deflate data, the footer. */
    size_t cuts[] = {1, 5, 10, 11, z.len / 2, z.len - 8, z.len - 1};
    for (size_t i = 0; i < HP_ARRAY_LEN(cuts); i++) {
        hp_err_clear(&err);
        CHECK_EQ_INT(hp_gunzip(z.data, cuts[i], 1 * MiB, &out, &err), HP_EINVAL);
        CHECK(strncmp(err.msg, "invalid gzip data: ", 19) == 0);
        CHECK_EQ_INT(out.len, 0);
    }
    /* Not gzip at all. */
    CHECK_EQ_INT(hp_gunzip("hello world, not gzip", 21, 1 * MiB, &out, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "invalid gzip data") != NULL);
    /* Gzip magic followed by garbage. */
    uint8_t garbage[64];
    fill_text(garbage, sizeof(garbage), 4);
    garbage[0] = 0x1f, garbage[1] = 0x8b;
    CHECK_EQ_INT(hp_gunzip(garbage, sizeof(garbage), 1 * MiB, &out, &err), HP_EINVAL);
    /* A flipped byte in the deflate data or CRC. */
    z.data[z.len / 2] ^= 0x55;
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 1 * MiB, &out, &err), HP_EINVAL);
    z.data[z.len / 2] ^= 0x55;
    z.data[z.len - 6] ^= 1;
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 1 * MiB, &out, &err), HP_EINVAL);
    z.data[z.len - 6] ^= 1;
    /* Trailing bytes after a valid member. */
    hp_buf_append(&z, "\0\0\0\0", 4);
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 1 * MiB, &out, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "trailing") != NULL);
    z.len -= 4;
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 1 * MiB, &out, &err), 0);
    CHECK_EQ_INT(out.len, sizeof(src));
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

/* Overwrites the ISIZE field of the gzip footer. */
static void set_isize(hp_buf_t *z, uint32_t v)
{
    uint8_t *f = z->data + z->len - 4;
    f[0] = (uint8_t)v, f[1] = (uint8_t)(v >> 8), f[2] = (uint8_t)(v >> 16), f[3] = (uint8_t)(v >> 24);
}

static void test_isize_lies(void)
{
    uint8_t src[100000];
    fill_text(src, sizeof(src), 5);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(src, sizeof(src), 6, &z);
    hp_err_t err = {0};
    uint32_t lies[] = {0, 1, 4096, 99999, 100001, 4u << 20, 0xffffffffu};
    for (size_t i = 0; i < HP_ARRAY_LEN(lies); i++) {
        set_isize(&z, lies[i]);
        hp_buf_fini(&out);
        /* libdeflate checks ISIZE, so every lie is corrupt data; what matters
         * is that the lie never makes us allocate beyond the bound. */
        CHECK_EQ_INT(hp_gunzip(z.data, z.len, 200000, &out, &err), HP_EINVAL);
        CHECK(out.cap <= 200000);
    }
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

/* 64 MiB of zeros, compressed once, and a bomb made of several copies. */
static void test_bomb(void)
{
    size_t n = 64 * MiB;
    uint8_t *zeros = calloc(1, n);
    REQUIRE(zeros != NULL);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(zeros, n, 9, &z);
    free(zeros);
    fprintf(stderr, "  64 MiB of zeros -> %zu bytes of gzip\n", z.len);
    CHECK(z.len < 200 * 1024);
    hp_err_t err = {0};
    double t0 = now_s();
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 4 * MiB, &out, &err), HP_ETOOLARGE);
    double t1 = now_s();
    CHECK_EQ_STR(err.msg, "profile exceeds 4194304 bytes after decompression");
    CHECK(out.cap <= 4 * MiB);
    CHECK_EQ_INT(out.len, 0);
    fprintf(stderr, "  refused in %.2f ms (cap %zu)\n", (t1 - t0) * 1e3, out.cap);

    /* A footer claiming a small size must not make it any worse. */
    set_isize(&z, 1000);
    hp_buf_fini(&out);
    CHECK_EQ_INT(hp_gunzip(z.data, z.len, 4 * MiB, &out, &err), HP_ETOOLARGE);
    CHECK(out.cap <= 4 * MiB);
    set_isize(&z, 0);

    /* 16 members: 1 GiB of output. */
    hp_buf_t big = HP_BUF_INIT;
    for (int i = 0; i < 16; i++)
        hp_buf_append(&big, z.data, z.len);
    hp_buf_fini(&out);
    const uint8_t *data = NULL;
    size_t len = 0;
    hp_buf_t scratch = HP_BUF_INIT;
    CHECK_EQ_INT(hp_maybe_gunzip(big.data, big.len, 4 * MiB, &scratch, &data, &len, &err), HP_ETOOLARGE);
    CHECK(scratch.cap <= 4 * MiB);
    hp_buf_fini(&scratch);
    hp_buf_fini(&big);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

static void test_maybe_gunzip(void)
{
    hp_buf_t z = HP_BUF_INIT, scratch = HP_BUF_INIT;
    const uint8_t *data = NULL;
    size_t len = 0;
    hp_err_t err = {0};
    const char *raw = "\x0a\x02\x08\x01 raw protobuf";
    CHECK_EQ_INT(hp_maybe_gunzip(raw, 17, 100, &scratch, &data, &len, &err), 0);
    CHECK(data == (const uint8_t *)raw);
    CHECK_EQ_INT(len, 17);
    CHECK_EQ_INT(hp_maybe_gunzip(raw, 17, 16, &scratch, &data, &len, &err), HP_ETOOLARGE);
    CHECK_EQ_STR(err.msg, "profile exceeds 16 bytes");
    gz(raw, 17, 6, &z);
    hp_buf_append(&scratch, "stale", 5);
    CHECK_EQ_INT(hp_maybe_gunzip(z.data, z.len, 100, &scratch, &data, &len, &err), 0);
    CHECK(data == scratch.data);
    CHECK_EQ_INT(len, 17);
    CHECK(memcmp(data, raw, 17) == 0);
    CHECK_EQ_INT(hp_maybe_gunzip(z.data, z.len - 3, 100, &scratch, &data, &len, &err), HP_EINVAL);
    hp_buf_fini(&z);
    hp_buf_fini(&scratch);
}

static void test_gzip_levels(void)
{
    uint8_t src[10000];
    fill_text(src, sizeof(src), 11);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    hp_err_t err = {0};
    for (int level = 0; level <= 12; level++) {
        hp_buf_reset(&z);
        hp_buf_reset(&out);
        REQUIRE(hp_gzip(src, sizeof(src), level, &z) == 0);
        CHECK_EQ_INT(hp_gunzip(z.data, z.len, sizeof(src), &out, &err), 0);
        CHECK(out.len == sizeof(src) && memcmp(out.data, src, sizeof(src)) == 0);
    }
    CHECK_EQ_INT(hp_gzip(src, sizeof(src), 13, &z), HP_EINVAL);
    CHECK_EQ_INT(hp_gzip(src, sizeof(src), -1, &z), HP_EINVAL);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

/* A real profile from the shared test data inflates to its known size. */
static void test_real_profile(void)
{
    size_t n = 0;
    uint8_t *gzd = hp_test_read_file(hp_testdata("corpus/go/go_mix.cpu.pb.gz"), &n);
    REQUIRE(gzd != NULL);
    hp_buf_t out = HP_BUF_INIT;
    hp_err_t err = {0};
    CHECK_EQ_INT(hp_gunzip(gzd, n, 4 * MiB, &out, &err), 0);
    CHECK_EQ_INT(out.len, 33793);    /* size_uncompressed_bytes in its summary.json */
    CHECK_EQ_INT(out.data[0], 0x48); /* Go writes time_nanos (field 9, varint) first */
    free(gzd);
    hp_buf_fini(&out);
}

/* Flipped bytes anywhere in a gzip stream: success (a flip in an unchecked
 * header field) or EINVAL, never a crash or more than the bound. */
static void test_mutations(void)
{
    uint8_t src[20000];
    fill_text(src, sizeof(src), 13);
    hp_buf_t z = HP_BUF_INIT, out = HP_BUF_INIT;
    gz(src, sizeof(src), 6, &z);
    uint8_t *m = malloc(z.len);
    uint64_t seed = 88172645463325252ull;
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 1000; iter++) {
        memcpy(m, z.data, z.len);
        for (int k = 0; k < 1 + iter % 4; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            m[(seed >> 8) % z.len] ^= (uint8_t)(1u << (seed & 7));
        }
        hp_err_t err = {0};
        hp_buf_reset(&out);
        int rc = hp_gunzip(m, z.len, sizeof(src), &out, &err);
        CHECK(rc == 0 || rc == HP_EINVAL || rc == HP_ETOOLARGE);
        CHECK(out.cap <= sizeof(src) + 64);
        if (rc == 0)
            CHECK(out.len == sizeof(src) && memcmp(out.data, src, sizeof(src)) == 0);
        rc == 0 ? ok++ : bad++;
    }
    fprintf(stderr, "  1000 mutations: %d inflated, %d rejected\n", ok, bad);
    CHECK(bad > 900);
    free(m);
    hp_buf_fini(&z);
    hp_buf_fini(&out);
}

int main(void)
{
    HP_RUN(test_is_gzip);
    HP_RUN(test_round_trip);
    HP_RUN(test_exact_bound);
    HP_RUN(test_empty_payload);
    HP_RUN(test_multi_member);
    HP_RUN(test_corrupt);
    HP_RUN(test_isize_lies);
    HP_RUN(test_bomb);
    HP_RUN(test_maybe_gunzip);
    HP_RUN(test_gzip_levels);
    HP_RUN(test_real_profile);
    HP_RUN(test_mutations);
    return hp_test_done();
}
