/* Metrics registry: families kept sorted by name, each with its children
 * sorted by label string, so lookups are binary searches and the rendering
 * order is deterministic. Values are atomics; only lookups and rendering
 * take the registry's lock. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hotpath/metrics.h"

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

typedef struct family {
    char *name;
    char *help;
    mtype_t type;
    double *bounds;  /* histograms: ascending finite upper bounds */
    size_t n_bounds;
    hp_metric_t **children; /* sorted by labels */
    size_t n_children, cap_children;
} family_t;

struct hp_metric {
    const family_t *fam;
    char *labels;                /* rendered, "" for none */
    _Atomic uint64_t value;      /* bits of a double: the value, or a histogram's sum */
    _Atomic uint64_t *buckets;   /* histograms: n_bounds + 1 counts, per bucket (not cumulative) */
};

struct hp_metrics {
    pthread_mutex_t lock;
    bool lock_ready;
    family_t **fams; /* sorted by name */
    size_t n_fams, cap_fams;
};

/* ---- doubles in atomics ---- */

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Adds v to the double stored in a, with a compare-exchange loop. */
static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* ---- registry ---- */

/* Aborts with a message: the caller broke the metrics contract. */
static void misuse(const char *what, const char *name)
{
    fprintf(stderr, "hotpath: metrics: %s: %s\n", what, name);
    abort();
}

/* True for a Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return false;
    return true;
}

hp_metrics_t *hp_metrics_new(void)
{
    hp_metrics_t *m = hp_xcalloc(1, sizeof(*m));
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        hp_metrics_free(m);
        return NULL;
    }
    m->lock_ready = true;
    return m;
}

static void child_free(hp_metric_t *c)
{
    free(c->labels);
    free((void *)c->buckets);
    free(c);
}

static void family_free(family_t *f)
{
    for (size_t i = 0; i < f->n_children; i++)
        child_free(f->children[i]);
    free(f->children);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

void hp_metrics_free(hp_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_fams; i++)
        family_free(m->fams[i]);
    free(m->fams);
    if (m->lock_ready)
        pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Index of name in the sorted families, or where it would be inserted;
 * *found says which. */
static size_t family_pos(const hp_metrics_t *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n_fams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Index of labels among f's sorted children, or the insertion point. */
static size_t child_pos(const family_t *f, const char *labels, bool *found)
{
    size_t lo = 0, hi = f->n_children;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->children[mid]->labels, labels);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Inserts p at index pos of the pointer array *arr (length *n). */
static void insert_at(void ***arr, size_t *n, size_t *cap, size_t pos, void *p)
{
    hp_grow((void **)arr, cap, *n + 1, sizeof(void *));
    memmove(*arr + pos + 1, *arr + pos, (*n - pos) * sizeof(void *));
    (*arr)[pos] = p;
    (*n)++;
}

/* A new family; bounds (histograms) must be finite and ascending. */
static family_t *family_new(const char *name, const char *help, mtype_t type, const double *bounds,
                            size_t n_bounds)
{
    for (size_t i = 0; i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            misuse("histogram buckets must be finite and strictly ascending", name);
    family_t *f = hp_xcalloc(1, sizeof(*f));
    f->name = hp_xstrdup(name);
    f->help = hp_xstrdup(help ? help : "");
    f->type = type;
    if (n_bounds) {
        f->bounds = hp_xmalloc(n_bounds * sizeof(double));
        memcpy(f->bounds, bounds, n_bounds * sizeof(double));
    }
    f->n_bounds = n_bounds;
    return f;
}

/* The family called name, created on first use; aborts on a type clash. */
static family_t *family_get(hp_metrics_t *m, const char *name, const char *help, mtype_t type,
                            const double *bounds, size_t n_bounds)
{
    bool found;
    size_t pos = family_pos(m, name, &found);
    if (found) {
        if (m->fams[pos]->type != type)
            misuse("name already registered with another type", name);
        return m->fams[pos];
    }
    family_t *f = family_new(name, help, type, bounds, n_bounds);
    insert_at((void ***)&m->fams, &m->n_fams, &m->cap_fams, pos, f);
    return f;
}

/* The child of f with these labels, created (zero) on first use. */
static hp_metric_t *child_get(family_t *f, const char *labels)
{
    bool found;
    size_t pos = child_pos(f, labels, &found);
    if (found)
        return f->children[pos];
    hp_metric_t *c = hp_xcalloc(1, sizeof(*c));
    c->fam = f;
    c->labels = hp_xstrdup(labels);
    atomic_init(&c->value, dbits(0.0));
    if (f->type == M_HISTOGRAM) {
        c->buckets = hp_xcalloc(f->n_bounds + 1, sizeof(*c->buckets));
        for (size_t i = 0; i <= f->n_bounds; i++)
            atomic_init(&c->buckets[i], 0);
    }
    insert_at((void ***)&f->children, &f->n_children, &f->cap_children, pos, c);
    return c;
}

/* Finds or creates name{labels} of the given type, under the lock. */
static hp_metric_t *lookup(hp_metrics_t *m, const char *name, const char *help, const char *labels,
                           mtype_t type, const double *bounds, size_t n_bounds)
{
    if (!valid_name(name))
        misuse("invalid metric name", name ? name : "(null)");
    pthread_mutex_lock(&m->lock);
    family_t *f = family_get(m, name, help, type, bounds, n_bounds);
    hp_metric_t *c = child_get(f, labels ? labels : "");
    pthread_mutex_unlock(&m->lock);
    return c;
}

hp_metric_t *hp_metrics_counter(hp_metrics_t *m, const char *name, const char *help,
                                const char *labels)
{
    return lookup(m, name, help, labels, M_COUNTER, NULL, 0);
}

hp_metric_t *hp_metrics_gauge(hp_metrics_t *m, const char *name, const char *help,
                              const char *labels)
{
    return lookup(m, name, help, labels, M_GAUGE, NULL, 0);
}

/* Buckets given after the first call for a name are ignored: a family has
 * one set of bounds. */
hp_metric_t *hp_metrics_histogram(hp_metrics_t *m, const char *name, const char *help,
                                  const char *labels, const double *buckets, size_t n_buckets)
{
    return lookup(m, name, help, labels, M_HISTOGRAM, buckets, n_buckets);
}

/* ---- updates ---- */

/* A counter only goes up, so a negative or NaN add is dropped. */
void hp_metric_add(hp_metric_t *c, double v)
{
    if (c == NULL || c->fam->type == M_HISTOGRAM || (c->fam->type == M_COUNTER && !(v >= 0)))
        return;
    atomic_add_double(&c->value, v);
}

/* Also allowed on counters, to mirror a total kept elsewhere. */
void hp_metric_set(hp_metric_t *g, double v)
{
    if (g == NULL || g->fam->type == M_HISTOGRAM)
        return;
    atomic_store_explicit(&g->value, dbits(v), memory_order_relaxed);
}

/* Index of the first bucket whose bound is >= v; n_bounds (+Inf) if none. */
static size_t bucket_index(const family_t *f, double v)
{
    size_t lo = 0, hi = f->n_bounds;
    if (isnan(v))
        return f->n_bounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->bounds[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void hp_metric_observe(hp_metric_t *h, double v)
{
    if (h->fam->type != M_HISTOGRAM)
        return;
    atomic_fetch_add_explicit(&h->buckets[bucket_index(h->fam, v)], 1, memory_order_relaxed);
    atomic_add_double(&h->value, v);
}

/* Number of observations in a histogram. */
static uint64_t histogram_count(const hp_metric_t *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->fam->n_bounds; i++)
        n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return n;
}

/* For a histogram, the number of observations. */
double hp_metric_value(const hp_metric_t *c)
{
    if (c->fam->type == M_HISTOGRAM)
        return (double)histogram_count(c);
    return bitsd(atomic_load_explicit(&c->value, memory_order_relaxed));
}

/* ---- text format ---- */

const char *hp_metrics_escape(const char *v, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return buf;
    for (; v && *v; v++) {
        char e = *v == '\\' ? '\\' : *v == '"' ? '"' : *v == '\n' ? 'n' : 0;
        if (o + (e ? 2 : 1) >= n)
            break; /* never split an escape when the buffer is short */
        if (e) {
            buf[o++] = '\\';
            buf[o++] = e;
        } else {
            buf[o++] = *v;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Writes v as Prometheus reads it: whole numbers below 2^53 in plain
 * digits (a count reads 400000, not 4e+05), others as the shortest text
 * that parses back to the same double, or +Inf, -Inf, NaN. */
static void put_float(hp_buf_t *out, double v)
{
    if (isnan(v)) {
        hp_buf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        hp_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        hp_buf_printf(out, "%.0f", v);
        return;
    }
    char tmp[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    hp_buf_puts(out, tmp);
}

/* Writes HELP text with backslashes and newlines escaped. */
static void put_help(hp_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            hp_buf_puts(out, "\\\\");
        else if (*s == '\n')
            hp_buf_puts(out, "\\n");
        else
            hp_buf_putc(out, *s);
    }
}

/* Writes `name{labels}` (no braces for no labels). */
static void put_series(hp_buf_t *out, const char *name, const char *suffix, const char *labels)
{
    hp_buf_puts(out, name);
    hp_buf_puts(out, suffix);
    if (*labels)
        hp_buf_printf(out, "{%s}", labels);
}

/* `name{labels} value` for a counter or gauge. */
static void render_scalar(const hp_metric_t *c, hp_buf_t *out)
{
    put_series(out, c->fam->name, "", c->labels);
    hp_buf_putc(out, ' ');
    put_float(out, bitsd(atomic_load_explicit(&c->value, memory_order_relaxed)));
    hp_buf_putc(out, '\n');
}

/* One `name_bucket{labels,le="bound"} cumulative` line. */
static void put_bucket(hp_buf_t *out, const hp_metric_t *h, double bound, uint64_t cum)
{
    hp_buf_printf(out, "%s_bucket{%s%sle=\"", h->fam->name, h->labels, *h->labels ? "," : "");
    put_float(out, bound);
    hp_buf_puts(out, "\"} ");
    hp_buf_put_u64(out, cum);
    hp_buf_putc(out, '\n');
}

/* Cumulative buckets, then _sum and _count. _count is the +Inf bucket's
 * count, so the two always agree even while observations arrive. */
static void render_histogram(const hp_metric_t *h, hp_buf_t *out)
{
    const family_t *f = h->fam;
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        put_bucket(out, h, i < f->n_bounds ? f->bounds[i] : INFINITY, cum);
    }
    put_series(out, f->name, "_sum", h->labels);
    hp_buf_putc(out, ' ');
    put_float(out, bitsd(atomic_load_explicit(&h->value, memory_order_relaxed)));
    hp_buf_putc(out, '\n');
    put_series(out, f->name, "_count", h->labels);
    hp_buf_putc(out, ' ');
    hp_buf_put_u64(out, cum);
    hp_buf_putc(out, '\n');
}

/* How each type is named in # TYPE and rendered. */
static const struct {
    const char *name;
    void (*render)(const hp_metric_t *c, hp_buf_t *out);
} type_ops[] = {
    [M_COUNTER] = {"counter", render_scalar},
    [M_GAUGE] = {"gauge", render_scalar},
    [M_HISTOGRAM] = {"histogram", render_histogram},
};

/* # HELP and # TYPE lines of a family. */
static void put_header(hp_buf_t *out, const char *name, const char *help, const char *type)
{
    hp_buf_printf(out, "# HELP %s ", name);
    put_help(out, help);
    hp_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* ---- process metrics ---- */

/* Reads a small /proc file into buf as a C string; false if it cannot. */
static bool read_small_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return got > 0;
}

/* Field number field (1-based, as in proc(5)) of /proc/self/stat. */
static bool stat_field(const char *stat, int field, unsigned long long *v)
{
    const char *p = strrchr(stat, ')'); /* the command name may hold spaces */
    if (p == NULL || field < 3)
        return false;
    p++;
    for (int i = 3; i <= field; i++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return false;
        if (i < field)
            p += strcspn(p, " ");
    }
    return sscanf(p, "%llu", v) == 1;
}

/* Boot time in seconds since the epoch, from /proc/stat's btime line
 * (read by line: the intr line before it can be many kilobytes). */
static bool boot_time(unsigned long long *btime)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool ok = false;
    while (!ok && getline(&line, &cap, f) > 0)
        ok = sscanf(line, "btime %llu", btime) == 1;
    free(line);
    fclose(f);
    return ok;
}

/* Descriptors open in this process, not counting the one used to count. */
static bool open_fds(double *n)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return false;
    int self = dirfd(d);
    char selfname[16];
    snprintf(selfname, sizeof(selfname), "%d", self);
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && strcmp(e->d_name, selfname) != 0)
            count++;
    closedir(d);
    *n = (double)count;
    return true;
}

typedef struct proc_metric {
    const char *name;
    const char *type;
    const char *help;
    double value;
    bool have;
} proc_metric_t;

enum { P_RSS, P_VSIZE, P_CPU, P_FDS, P_MAXFDS, P_START, P_COUNT };

/* Fills the memory metrics from /proc/self/statm (sizes in pages). */
static void read_statm(proc_metric_t *pm)
{
    char buf[256];
    unsigned long long size, resident;
    if (!read_small_file("/proc/self/statm", buf, sizeof(buf)) ||
        sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return;
    double page = (double)sysconf(_SC_PAGESIZE);
    pm[P_VSIZE].value = (double)size * page;
    pm[P_RSS].value = (double)resident * page;
    pm[P_VSIZE].have = pm[P_RSS].have = true;
}

/* Fills CPU time and start time from /proc/self/stat (clock ticks). */
static void read_stat(proc_metric_t *pm)
{
    char buf[1024];
    unsigned long long utime, stime, start, btime;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (!read_small_file("/proc/self/stat", buf, sizeof(buf)) || hz <= 0)
        return;
    if (stat_field(buf, 14, &utime) && stat_field(buf, 15, &stime)) {
        pm[P_CPU].value = (double)(utime + stime) / hz;
        pm[P_CPU].have = true;
    }
    if (stat_field(buf, 22, &start) && boot_time(&btime)) {
        pm[P_START].value = (double)btime + (double)start / hz;
        pm[P_START].have = true;
    }
}

/* Writes the process_* metrics that can be read on this system. */
static void render_process(hp_buf_t *out)
{
    proc_metric_t pm[P_COUNT] = {
        [P_RSS] = {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", 0, false},
        [P_VSIZE] = {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", 0, false},
        [P_CPU] = {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", 0, false},
        [P_FDS] = {"process_open_fds", "gauge", "Number of open file descriptors.", 0, false},
        [P_MAXFDS] = {"process_max_fds", "gauge", "Maximum number of open file descriptors.", 0, false},
        [P_START] = {"process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", 0, false},
    };
    struct rlimit rl;
    read_statm(pm);
    read_stat(pm);
    pm[P_FDS].have = open_fds(&pm[P_FDS].value);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        pm[P_MAXFDS].value = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
        pm[P_MAXFDS].have = true;
    }
    for (size_t i = 0; i < P_COUNT; i++) {
        if (!pm[i].have)
            continue;
        put_header(out, pm[i].name, pm[i].help, pm[i].type);
        hp_buf_printf(out, "%s ", pm[i].name);
        put_float(out, pm[i].value);
        hp_buf_putc(out, '\n');
    }
}

void hp_metrics_render(hp_metrics_t *m, hp_buf_t *out)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_fams; i++) {
        const family_t *f = m->fams[i];
        put_header(out, f->name, f->help, type_ops[f->type].name);
        for (size_t j = 0; j < f->n_children; j++)
            type_ops[f->type].render(f->children[j], out);
    }
    pthread_mutex_unlock(&m->lock);
    render_process(out);
}
