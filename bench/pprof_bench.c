/* pprof_bench — how fast a pprof body is gunzipped and decoded, against the
 * bare bound of a gunzip plus an allocation-free wire walk.
 *
 * Usage: pprof_bench [file.pb.gz ...]
 * Without arguments it runs over $HP_TESTDATA/corpus/go (default
 * ../shared/testdata). Times are thread CPU time, the median of 7 runs of at
 * least 0.2 s each. MB/s are of the uncompressed profile. "build" is
 * hp_pprof_builder_add_profile + encode of the decoded profile into a fresh
 * builder (decode time excluded). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotpath/compress.h"
#include "hotpath/pbwire.h"
#include "hotpath/pprof.h"

#define RUNS 7
#define MIN_SECONDS 0.2
#define MAX_RAW ((size_t)256 << 20)

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef int (*bench_fn)(void *ctx);

/* Median seconds per call of fn. */
static double measure(bench_fn fn, void *ctx)
{
    double runs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        long n = 0;
        double t0 = cpu_now(), t1;
        do {
            if (fn(ctx) != 0) {
                fprintf(stderr, "benchmark body failed\n");
                exit(1);
            }
            n++;
            t1 = cpu_now();
        } while (t1 - t0 < MIN_SECONDS);
        runs[r] = (t1 - t0) / (double)n;
    }
    qsort(runs, RUNS, sizeof(double), cmp_double);
    return runs[RUNS / 2];
}

/* ------------------------------------------------------------------------
 * The bare walk: every field of every message of the pprof schema, packed
 * varints decoded, strings skipped, nothing stored.
 */

enum { M_PROFILE, M_SAMPLE, M_LOCATION, M_OTHER };

/* Which message a length-delimited field holds: -1 = bytes, -2 = packed. */
static int sub_kind(int msg, uint32_t f)
{
    if (msg == M_PROFILE)
        return f == 2 ? M_SAMPLE : f == 4 ? M_LOCATION : f == 13 ? -2 : f == 6 ? -1 : M_OTHER;
    if (msg == M_SAMPLE)
        return f <= 2 ? -2 : M_OTHER;
    if (msg == M_LOCATION)
        return f == 4 ? M_OTHER : -1;
    return -1;
}

static int walk(hp_pbr_t r, int msg, uint64_t *sum)
{
    uint32_t f, wt;
    uint64_t v;
    hp_pbr_t sub;
    while (!hp_pbr_done(&r)) {
        if (!hp_pbr_key(&r, &f, &wt))
            return -1;
        if (wt == HP_PB_VARINT) {
            if (!hp_pbr_varint(&r, &v))
                return -1;
            *sum += v;
        } else if (wt == HP_PB_LEN) {
            if (!hp_pbr_len(&r, &sub))
                return -1;
            int k = sub_kind(msg, f);
            if (k == -2) {
                while (!hp_pbr_done(&sub))
                    if (!hp_pbr_varint(&sub, &v))
                        return -1;
                    else
                        *sum += v;
            } else if (k >= 0 && walk(sub, k, sum) != 0) {
                return -1;
            }
        } else if (!hp_pbr_skip(&r, wt)) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The measured bodies.
 */

typedef struct ctx {
    const uint8_t *gz;
    size_t gz_n;
    const uint8_t *raw;
    size_t raw_n;
    hp_buf_t out;
    uint64_t sink;
} ctx_t;

static int do_gunzip(void *c)
{
    ctx_t *x = c;
    hp_buf_reset(&x->out);
    return hp_gunzip(x->gz, x->gz_n, MAX_RAW, &x->out, NULL);
}

static int do_walk(void *c)
{
    ctx_t *x = c;
    return walk(hp_pbr(x->raw, x->raw_n), M_PROFILE, &x->sink);
}

static int do_gunzip_walk(void *c)
{
    ctx_t *x = c;
    int rc = do_gunzip(c);
    return rc != 0 ? rc : walk(hp_pbr(x->out.data, x->out.len), M_PROFILE, &x->sink);
}

static int decode_once(ctx_t *x, const uint8_t *p, size_t n)
{
    hp_pprof_t prof;
    hp_err_t err;
    int rc = hp_pprof_decode(&prof, p, n, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "decode: %s\n", err.msg);
    x->sink += prof.n_samples;
    hp_pprof_fini(&prof);
    return rc;
}

static int do_decode(void *c)
{
    ctx_t *x = c;
    return decode_once(x, x->raw, x->raw_n);
}

static int do_gunzip_decode(void *c)
{
    ctx_t *x = c;
    int rc = do_gunzip(c);
    return rc != 0 ? rc : decode_once(x, x->out.data, x->out.len);
}

/* Copies the decoded profile into a fresh builder and encodes it: the cost
 * of merging one profile. */
static int do_build(void *c)
{
    ctx_t *x = c;
    hp_pprof_t prof;
    int rc = hp_pprof_decode(&prof, x->raw, x->raw_n, NULL, NULL);
    if (rc != 0)
        return rc;
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_add_profile(b, &prof, NULL, 0);
    hp_buf_reset(&x->out);
    hp_pprof_builder_encode(b, &x->out);
    x->sink += x->out.len;
    hp_pprof_builder_free(b);
    hp_pprof_fini(&prof);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    if (len > 0 && fread(p, 1, (size_t)len, f) != (size_t)len)
        len = -1;
    fclose(f);
    if (len < 0) {
        free(p);
        return NULL;
    }
    *n = (size_t)len;
    return p;
}

static void bench_file(const char *path)
{
    ctx_t x = {0};
    x.gz = read_file(path, &x.gz_n);
    if (x.gz == NULL || do_gunzip(&x) != 0) {
        fprintf(stderr, "%s: cannot read or gunzip\n", path);
        free((void *)x.gz);
        return;
    }
    hp_buf_t raw = HP_BUF_INIT;
    hp_buf_append(&raw, x.out.data, x.out.len);
    x.raw = raw.data;
    x.raw_n = raw.len;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    double gunzip = measure(do_gunzip, &x), wk = measure(do_walk, &x);
    double dec = measure(do_decode, &x), gw = measure(do_gunzip_walk, &x);
    double gd = measure(do_gunzip_decode, &x);
    double build = measure(do_build, &x) - dec;
    double mb = (double)x.raw_n / 1e6;
    printf("%-32.32s %9zu %9zu | %7.0f %7.0f %7.0f | %6.2fx | %8.0f %8.0f %6.2fx | %7.0f\n", name, x.gz_n,
           x.raw_n, mb / gunzip, mb / wk, mb / dec, dec / wk, 1 / gw, 1 / gd, gd / gw, mb / build);
    hp_buf_fini(&raw);
    hp_buf_fini(&x.out);
    free((void *)x.gz);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Benchmarks every *.pb.gz in dir, in name order. */
static void bench_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open\n", dir);
        return;
    }
    char *names[256] = {NULL};
    /* d_name is at most 255 bytes, dir at most 4095. */
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".pb.gz") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), by_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        bench_file(path);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    printf("%-32s %9s %9s | %7s %7s %7s | %7s | %8s %8s %7s | %7s\n", "file", "gz_B", "raw_B", "gunzip",
           "walk", "decode", "dec/wlk", "gz+walk", "gz+dec", "ratio", "build");
    printf("%-32s %9s %9s | %23s | %7s | %-25s | %7s\n", "", "", "", "MB/s of raw profile", "", "profiles/s",
           "MB/s");
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            bench_file(argv[i]);
        return 0;
    }
    const char *base = getenv("HP_TESTDATA");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/corpus/go", base ? base : "../shared/testdata");
    bench_dir(dir);
    return 0;
}
