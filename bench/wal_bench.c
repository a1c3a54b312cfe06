/* wal_bench — WAL append throughput with group commit (issue 4).
 *
 * Usage: wal_bench [-d SECONDS] [file ...]
 *
 * An ingester's WAL record is one packed ProfileWrite: the client's gzipped
 * pprof plus labels, time and ID, so a record is about the size of the
 * .pb.gz a client sent. The bench uses the bytes of corpus files as records
 * (default: go/go_mix.cpu, 17 KB, and go/go_deep_1000hz.cpu, 72 KB, under
 * $HP_TESTDATA/corpus, default ../shared/testdata). For each record size,
 * sync mode (batch: one fsync per group commit; interval: fsync every
 * 1 s) and 1, 4 and 16 threads, each thread calls hp_wal_append in a loop
 * for SECONDS (default 3) into a fresh WAL in a temporary directory under
 * $TMPDIR (default /tmp), removed afterwards.
 *
 * Printed: records/s; MB/s (10^6 bytes of records); the fsyncs RocksDB
 * made and records per fsync (in batch mode the mean group-commit size; in
 * interval mode the count includes memtable flushes' syncs); the process's
 * CPU time (all threads, RocksDB's included) per record; and "disk/rec",
 * bytes the process wrote to storage (/proc/self/io, until the WAL is
 * closed) per byte of records: the WAL plus memtable flushes.
 * Fsyncs are counted by defining fdatasync and fsync here: the executable
 * comes first in the dynamic linker's lookup, so RocksDB's calls land in
 * these, which count and forward to the kernel. */
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hotpath/wal.h"

#define DEFAULT_SECONDS 3.0
#define MAX_RECORD ((size_t)64 << 20)

/* The one global: libc gives no other hook to count a library's fsyncs. */
static atomic_ulong syncs;

int fdatasync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    return (int)syscall(SYS_fsync, fd);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User + system CPU seconds of the whole process. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Bytes this process has caused to be written to storage (/proc/self/io
 * write_bytes, all threads), 0 when unavailable. */
static unsigned long long disk_written(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    unsigned long long v = 0;
    char line[128];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* ---- one appending thread ---- */

typedef struct worker {
    pthread_t th;
    hp_wal_t *w;        /* borrowed */
    const uint8_t *rec; /* borrowed */
    size_t n;
    double until; /* mono_now() deadline */
    uint64_t appended;
    int rc;
    hp_err_t err;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *k = arg;
    hp_str_t seg = HP_STR("bench/1700000000000/0000000000000001"); /* tenant/window/id, as a head's */
    while (k->rc == 0 && mono_now() < k->until) {
        k->rc = hp_wal_append(k->w, seg, k->rec, k->n, &k->err);
        k->appended += k->rc == 0;
    }
    return NULL;
}

/* ---- one case ---- */

typedef struct result {
    uint64_t records;
    double seconds, cpu;
    unsigned long syncs;
    unsigned long long disk; /* bytes written to storage, through the close */
} result_t;

/* Appends rec from threads threads for seconds into a fresh WAL at dir
 * (created; the caller removes it). Returns 0 or the first error. */
static int run_case(const char *dir, hp_wal_sync_t mode, int threads, const uint8_t *rec, size_t n,
                    double seconds, result_t *out, hp_err_t *err)
{
    hp_wal_config_t cfg = {dir, mode, 1000};
    hp_wal_t *w;
    int rc = hp_wal_open(&cfg, &w, err);
    if (rc != 0)
        return rc;
    worker_t *ks = hp_xcalloc((size_t)threads, sizeof(worker_t));
    double t0 = mono_now(), c0 = cpu_now();
    unsigned long long d0 = disk_written();
    unsigned long s0 = atomic_load(&syncs);
    int started = 0;
    for (; started < threads; started++) {
        ks[started] = (worker_t){.w = w, .rec = rec, .n = n, .until = t0 + seconds};
        if (pthread_create(&ks[started].th, NULL, worker_main, &ks[started]) != 0)
            break;
    }
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < started; i++) {
        pthread_join(ks[i].th, NULL);
        out->records += ks[i].appended;
        if (rc == 0 && ks[i].rc != 0) {
            rc = ks[i].rc;
            *err = ks[i].err;
        }
    }
    out->seconds = mono_now() - t0;
    out->cpu = cpu_now() - c0;
    out->syncs = atomic_load(&syncs) - s0;
    hp_wal_close(w);
    out->disk = disk_written() - d0;
    free(ks);
    if (rc == 0 && started < threads)
        rc = hp_err_set(err, HP_EINTERNAL, "cannot start thread %d", started);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = NULL;
    if (len > 0 && (size_t)len <= MAX_RECORD) {
        p = malloc((size_t)len);
        if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
            free(p);
            p = NULL;
        }
    }
    fclose(f);
    *n = p ? (size_t)len : 0;
    return p;
}

/* Runs every mode × thread count for one record; false on a WAL error. */
static bool bench_record(const char *tmp, const char *name, const uint8_t *rec, size_t n, double seconds)
{
    static const int thread_counts[] = {1, 4, 16};
    static const struct {
        hp_wal_sync_t mode;
        const char *name;
    } modes[] = {{HP_WAL_SYNC_BATCH, "batch"}, {HP_WAL_SYNC_INTERVAL, "interval"}};
    for (size_t m = 0; m < HP_ARRAY_LEN(modes); m++)
        for (size_t t = 0; t < HP_ARRAY_LEN(thread_counts); t++) {
            char dir[4200];
            snprintf(dir, sizeof(dir), "%s/wal-%zu-%zu", tmp, m, t);
            result_t r;
            hp_err_t err;
            int rc = run_case(dir, modes[m].mode, thread_counts[t], rec, n, seconds, &r, &err);
            rm_tree(dir);
            if (rc != 0) {
                fprintf(stderr, "%s %s x%d: %s\n", name, modes[m].name, thread_counts[t], err.msg);
                return false;
            }
            double per_s = (double)r.records / r.seconds;
            double bytes = (double)r.records * (double)n;
            printf("%-28.28s %8zu %-8s %7d %10.0f %8.1f %9lu %10.1f %11.1f %8.2f\n", name, n, modes[m].name,
                   thread_counts[t], per_s, per_s * (double)n / 1e6, r.syncs,
                   r.syncs ? (double)r.records / (double)r.syncs : 0.0,
                   r.records ? r.cpu / (double)r.records * 1e6 : 0.0,
                   bytes > 0 ? (double)r.disk / bytes : 0.0);
            fflush(stdout);
        }
    return true;
}

int main(int argc, char **argv)
{
    double seconds = DEFAULT_SECONDS;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "-d") == 0) {
        seconds = atof(argv[a + 1]);
        a += 2;
    }
    const char *env = getenv("HP_TESTDATA"), *tmpdir = getenv("TMPDIR");
    char defaults[2][4200];
    const char *files[64];
    int nf = 0;
    for (; a < argc && nf < 64; a++)
        files[nf++] = argv[a];
    if (nf == 0) {
        snprintf(defaults[0], sizeof(defaults[0]), "%s/corpus/go/go_mix.cpu.pb.gz",
                 env ? env : "../shared/testdata");
        snprintf(defaults[1], sizeof(defaults[1]), "%s/corpus/go/go_deep_1000hz.cpu.pb.gz",
                 env ? env : "../shared/testdata");
        files[nf++] = defaults[0], files[nf++] = defaults[1];
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s/hpwal.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (mkdtemp(tmp) == NULL) {
        perror(tmp);
        return 1;
    }
    printf("%-28s %8s %-8s %7s %10s %8s %9s %10s %11s %8s\n", "record", "bytes", "sync", "threads",
           "records/s", "MB/s", "fsyncs", "rec/fsync", "cpu_us/rec", "disk/rec");
    int status = 0;
    for (int i = 0; i < nf && status == 0; i++) {
        size_t n;
        uint8_t *rec = read_file(files[i], &n);
        const char *slash = strrchr(files[i], '/');
        const char *name = slash ? slash + 1 : files[i];
        if (rec == NULL) {
            fprintf(stderr, "%s: cannot read\n", files[i]);
            status = 1;
        } else if (!bench_record(tmp, name, rec, n, seconds)) {
            status = 1;
        }
        free(rec);
    }
    rm_tree(tmp);
    return status;
}
