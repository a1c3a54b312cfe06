/* Tests for metrics.h: values as rendered in the Prometheus text format,
 * escaping, ordering, concurrency, identity of children, process metrics. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hotpath/metrics.h"
#include "test.h"

/* Renders m into a malloc'd C string (caller frees). */
static char *render(hp_metrics_t *m)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_metrics_render(m, &b);
    hp_buf_cstr(&b);
    size_t n;
    return (char *)hp_buf_take(&b, &n);
}

/* The line of text that starts with prefix, copied into line; false if none. */
static bool find_line(const char *text, const char *prefix, char *line, size_t n)
{
    size_t plen = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, plen) != 0)
            continue;
        size_t len = strcspn(p, "\n");
        snprintf(line, n, "%.*s", (int)len, p);
        return true;
    }
    return false;
}

/* Parses the sample `series value` out of text: true and *v when present. */
static bool sample(const char *text, const char *series, double *v)
{
    char prefix[512], line[1024];
    snprintf(prefix, sizeof(prefix), "%s ", series);
    if (!find_line(text, prefix, line, sizeof(line)))
        return false;
    char *end;
    *v = strtod(line + strlen(prefix), &end);
    return end != line + strlen(prefix) && *end == '\0';
}

/* True when text has exactly this line. */
static bool has_line(const char *text, const char *want)
{
    char line[1024];
    return find_line(text, want, line, sizeof(line)) && strcmp(line, want) == 0;
}

#define CHECK_LINE(text, want)                                        \
    do {                                                              \
        if (!has_line((text), (want)))                                \
            fprintf(stderr, "  missing line: %s\n", (want));          \
        CHECK(has_line((text), (want)));                              \
    } while (0)

static void test_counter_and_gauge(void)
{
    hp_metrics_t *m = hp_metrics_new();
    REQUIRE(m != NULL);
    hp_metric_t *c = hp_metrics_counter(m, "hp_requests_total", "Requests served.", "route=\"/ingest\"");
    hp_metric_add(c, 1);
    hp_metric_add(c, 2.5);
    hp_metric_add(c, -10); /* counters never go down */
    CHECK(hp_metric_value(c) == 3.5);
    hp_metric_t *up = hp_metrics_counter(m, "hp_up_total", "No labels.", NULL);
    hp_metric_add(up, 1);
    hp_metric_t *g = hp_metrics_gauge(m, "hp_inflight", "In flight.", "");
    hp_metric_set(g, 5);
    hp_metric_add(g, -7.25);
    hp_metric_t *small = hp_metrics_gauge(m, "hp_tiny", "Formats.", "k=\"small\"");
    hp_metric_set(small, 1e-7);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"big\""), 123456789);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"inf\""), INFINITY);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"nan\""), NAN);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"tenth\""), 0.1);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"huge\""), 1e20);
    hp_metric_set(hp_metrics_gauge(m, "hp_tiny", NULL, "k=\"frac\""), -1234.5);

    char *t = render(m);
    CHECK_LINE(t, "# HELP hp_requests_total Requests served.");
    CHECK_LINE(t, "# TYPE hp_requests_total counter");
    CHECK_LINE(t, "hp_requests_total{route=\"/ingest\"} 3.5");
    CHECK_LINE(t, "hp_up_total 1");
    CHECK_LINE(t, "# TYPE hp_inflight gauge");
    CHECK_LINE(t, "hp_inflight -2.25");
    CHECK_LINE(t, "hp_tiny{k=\"small\"} 1e-07");
    CHECK_LINE(t, "hp_tiny{k=\"big\"} 123456789");
    CHECK_LINE(t, "hp_tiny{k=\"inf\"} +Inf");
    CHECK_LINE(t, "hp_tiny{k=\"nan\"} NaN");
    CHECK_LINE(t, "hp_tiny{k=\"tenth\"} 0.1");
    CHECK_LINE(t, "hp_tiny{k=\"huge\"} 1e+20");
    CHECK_LINE(t, "hp_tiny{k=\"frac\"} -1234.5");
    double v;
    CHECK(sample(t, "hp_requests_total{route=\"/ingest\"}", &v) && v == 3.5);
    CHECK(strstr(t, "hp_up_total{") == NULL);
    free(t);
    hp_metrics_free(m);
}

static void test_histogram(void)
{
    static const double bounds[] = {0.005, 0.1, 1};
    hp_metrics_t *m = hp_metrics_new();
    hp_metric_t *h = hp_metrics_histogram(m, "hp_push_seconds", "Push latency.", "tenant=\"a\"", bounds, 3);
    hp_metric_t *plain = hp_metrics_histogram(m, "hp_push_seconds", NULL, NULL, bounds, 3);
    static const double obs[] = {0.001, 0.005, 0.05, 0.5, 5};
    for (size_t i = 0; i < HP_ARRAY_LEN(obs); i++)
        hp_metric_observe(h, obs[i]);
    hp_metric_observe(plain, 2);
    hp_metric_add(h, 100); /* not a counter: ignored */
    CHECK(hp_metric_value(h) == 5);

    char *t = render(m);
    CHECK_LINE(t, "# TYPE hp_push_seconds histogram");
    CHECK_LINE(t, "hp_push_seconds_bucket{tenant=\"a\",le=\"0.005\"} 2"); /* le is inclusive */
    CHECK_LINE(t, "hp_push_seconds_bucket{tenant=\"a\",le=\"0.1\"} 3");
    CHECK_LINE(t, "hp_push_seconds_bucket{tenant=\"a\",le=\"1\"} 4");
    CHECK_LINE(t, "hp_push_seconds_bucket{tenant=\"a\",le=\"+Inf\"} 5");
    CHECK_LINE(t, "hp_push_seconds_count{tenant=\"a\"} 5");
    double sum;
    CHECK(sample(t, "hp_push_seconds_sum{tenant=\"a\"}", &sum) && fabs(sum - 5.556) < 1e-12);
    CHECK_LINE(t, "hp_push_seconds_bucket{le=\"0.005\"} 0");
    CHECK_LINE(t, "hp_push_seconds_bucket{le=\"1\"} 0");
    CHECK_LINE(t, "hp_push_seconds_bucket{le=\"+Inf\"} 1");
    CHECK_LINE(t, "hp_push_seconds_sum 2");
    CHECK_LINE(t, "hp_push_seconds_count 1");
    /* the family's header appears once */
    const char *first = strstr(t, "# TYPE hp_push_seconds");
    CHECK(first && strstr(first + 1, "# TYPE hp_push_seconds") == NULL);
    free(t);
    hp_metrics_free(m);
}

static void test_escaping(void)
{
    char buf[64];
    CHECK_EQ_STR(hp_metrics_escape("a\"b\\c\nd", buf, sizeof(buf)), "a\\\"b\\\\c\\nd");
    CHECK_EQ_STR(hp_metrics_escape("plain", buf, sizeof(buf)), "plain");
    CHECK_EQ_STR(hp_metrics_escape("ab\"", buf, 4), "ab"); /* no half escape */
    CHECK_EQ_STR(hp_metrics_escape("abcdef", buf, 4), "abc");
    CHECK_EQ_STR(hp_metrics_escape(NULL, buf, sizeof(buf)), "");

    hp_metrics_t *m = hp_metrics_new();
    char labels[128], esc[64];
    snprintf(labels, sizeof(labels), "tenant=\"%s\"", hp_metrics_escape("we\"ird\\\n", esc, sizeof(esc)));
    hp_metric_add(hp_metrics_counter(m, "hp_odd_total", "Line one\nback\\slash", labels), 1);
    char *t = render(m);
    CHECK_LINE(t, "hp_odd_total{tenant=\"we\\\"ird\\\\\\n\"} 1");
    CHECK_LINE(t, "# HELP hp_odd_total Line one\\nback\\\\slash");
    free(t);
    hp_metrics_free(m);
}

static void test_order(void)
{
    hp_metrics_t *m = hp_metrics_new();
    hp_metric_add(hp_metrics_counter(m, "hp_b_total", "b", "x=\"2\""), 1);
    hp_metric_add(hp_metrics_counter(m, "hp_c_total", "c", NULL), 1);
    hp_metric_add(hp_metrics_counter(m, "hp_a_total", "a", NULL), 1);
    hp_metric_add(hp_metrics_counter(m, "hp_b_total", "b", "x=\"1\""), 1);
    char *t = render(m);
    const char *a = strstr(t, "hp_a_total 1"), *b1 = strstr(t, "hp_b_total{x=\"1\"} 1"),
               *b2 = strstr(t, "hp_b_total{x=\"2\"} 1"), *c = strstr(t, "hp_c_total 1"),
               *proc = strstr(t, "# HELP process_");
    CHECK(a && b1 && b2 && c && proc);
    CHECK(a < b1 && b1 < b2 && b2 < c && c < proc);
    static const char head[] = "# HELP hp_a_total a\n# TYPE hp_a_total counter\nhp_a_total 1\n";
    CHECK(strncmp(t, head, strlen(head)) == 0);
    free(t);
    hp_metrics_free(m);
}

static void test_identity(void)
{
    hp_metrics_t *m = hp_metrics_new();
    hp_metric_t *a = hp_metrics_counter(m, "hp_x_total", "x", "t=\"a\"");
    CHECK(hp_metrics_counter(m, "hp_x_total", "ignored", "t=\"a\"") == a);
    CHECK(hp_metrics_counter(m, "hp_x_total", "x", "t=\"b\"") != a);
    hp_metric_t *none = hp_metrics_counter(m, "hp_x_total", "x", NULL);
    CHECK(hp_metrics_counter(m, "hp_x_total", "x", "") == none);
    /* many more families and children must not move the earlier ones */
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "hp_m%03d", i);
        hp_metrics_gauge(m, name, "filler", NULL);
    }
    CHECK(hp_metrics_counter(m, "hp_x_total", "x", "t=\"a\"") == a);
    hp_metric_add(a, 2);
    CHECK(hp_metric_value(hp_metrics_counter(m, "hp_x_total", "x", "t=\"a\"")) == 2);
    hp_metrics_free(m);
    hp_metrics_free(NULL);
}

typedef struct {
    hp_metrics_t *m;
    hp_metric_t *seen;
} worker_arg_t;

enum { THREADS = 4, ADDS = 100000 };

static void *worker(void *p)
{
    worker_arg_t *w = p;
    static const double b[] = {0.5};
    w->seen = hp_metrics_counter(w->m, "hp_hits_total", "Hits.", "k=\"v\"");
    hp_metric_t *g = hp_metrics_gauge(w->m, "hp_level", "Level.", NULL);
    hp_metric_t *h = hp_metrics_histogram(w->m, "hp_obs", "Obs.", NULL, b, 1);
    for (int i = 0; i < ADDS; i++) {
        hp_metric_add(w->seen, 1);
        hp_metric_add(g, 0.5);
        hp_metric_observe(h, (i & 1) ? 1.0 : 0.25);
    }
    return NULL;
}

static void test_concurrent_adds(void)
{
    hp_metrics_t *m = hp_metrics_new();
    pthread_t th[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){m, NULL};
        REQUIRE(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < THREADS; i++)
        CHECK(args[i].seen == args[0].seen);
    char *t = render(m);
    CHECK_LINE(t, "hp_hits_total{k=\"v\"} 400000");
    CHECK_LINE(t, "hp_level 200000");
    CHECK_LINE(t, "hp_obs_bucket{le=\"0.5\"} 200000");
    CHECK_LINE(t, "hp_obs_count 400000");
    CHECK_LINE(t, "hp_obs_sum 250000");
    free(t);
    hp_metrics_free(m);
}

static void test_process_metrics(void)
{
    hp_metrics_t *m = hp_metrics_new();
    char *t = render(m);
    double rss, vsz, cpu, fds, start, maxfds;
    REQUIRE(sample(t, "process_resident_memory_bytes", &rss));
    REQUIRE(sample(t, "process_virtual_memory_bytes", &vsz));
    REQUIRE(sample(t, "process_cpu_seconds_total", &cpu));
    REQUIRE(sample(t, "process_open_fds", &fds));
    REQUIRE(sample(t, "process_start_time_seconds", &start));
    REQUIRE(sample(t, "process_max_fds", &maxfds));
    CHECK(rss > 4096 && vsz >= rss);
    CHECK(cpu >= 0 && cpu < 3600);
    CHECK(fds >= 3 && fds <= maxfds);
    double now = (double)time(NULL);
    CHECK(start > now - 86400 && start <= now + 1);
    CHECK_LINE(t, "# TYPE process_cpu_seconds_total counter");
    CHECK_LINE(t, "# TYPE process_resident_memory_bytes gauge");
    free(t);

    /* one more open descriptor shows up in the next render */
    int fd = open("/dev/null", O_RDONLY);
    REQUIRE(fd >= 0);
    t = render(m);
    double fds2;
    CHECK(sample(t, "process_open_fds", &fds2) && fds2 == fds + 1);
    close(fd);
    free(t);
    hp_metrics_free(m);
}

/* Runs fn in a child process and reports whether it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void reuse_with_other_type(void)
{
    hp_metrics_t *m = hp_metrics_new();
    hp_metrics_counter(m, "hp_dup", "d", NULL);
    hp_metrics_gauge(m, "hp_dup", "d", NULL);
}

static void bad_name(void) { hp_metrics_counter(hp_metrics_new(), "1bad-name", "d", NULL); }

static void test_misuse_aborts(void)
{
    CHECK(aborts(reuse_with_other_type));
    CHECK(aborts(bad_name));
}

int main(void)
{
    HP_RUN(test_counter_and_gauge);
    HP_RUN(test_histogram);
    HP_RUN(test_escaping);
    HP_RUN(test_order);
    HP_RUN(test_identity);
    HP_RUN(test_concurrent_adds);
    HP_RUN(test_process_metrics);
    HP_RUN(test_misuse_aborts);
    return hp_test_done();
}
