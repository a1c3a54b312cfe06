/* hotpath-scraper's work: targets, the scrape loop, fetching and pushing
 * (scraper.h). */
#include <curl/curl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/log.h"
#include "scraper.h"

#define SCR_MAX_TARGET_URL 512

#define MAX_BODY ((size_t)64 << 20) /* a profile larger than this is not fetched */
#define MAX_ADDRS 64                /* addresses taken from one dns+ entry */

static const char *const known_profiles[] = {"profile", "allocs", "heap", "goroutine", "mutex", "block",
                                             "threadcreate"};

/* ---- configuration ---- */

static char *trimmed(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return hp_xstrndup(p, n);
}

/* One "[service=]url" entry into e. */
static int parse_entry(const char *s, scr_entry_t *e, hp_err_t *err)
{
    memset(e, 0, sizeof(*e));
    const char *eq = strchr(s, '='), *scheme = strstr(s, "://"), *dns = strstr(s, "dns+");
    const char *start = s;
    if (eq && (scheme == NULL || eq < scheme) && (dns == NULL || eq < dns)) {
        e->service = trimmed(s, (size_t)(eq - s));
        start = eq + 1;
        if (e->service[0] == '\0')
            return hp_err_set(err, HP_EINVAL, "scrape target \"%s\": empty service name before '='", s);
    }
    if (strncmp(start, "dns+", 4) == 0) {
        const char *hp = start + 4, *colon = strrchr(hp, ':');
        if (colon == NULL || colon == hp || colon[1] == '\0')
            return hp_err_set(err, HP_EINVAL, "scrape target \"%s\": want dns+name:port", s);
        e->dns_host = hp_xstrndup(hp, (size_t)(colon - hp));
        e->dns_port = hp_xstrdup(colon + 1);
        return 0;
    }
    if (strncmp(start, "http://", 7) != 0 && strncmp(start, "https://", 8) != 0)
        return hp_err_set(err, HP_EINVAL, "scrape target \"%s\": want [service=]http://host:port or "
                          "[service=]dns+name:port", s);
    size_t n = strlen(start);
    while (n && start[n - 1] == '/')
        n--;
    if (n > SCR_MAX_TARGET_URL) /* room for the profile's path in a fetch URL */
        return hp_err_set(err, HP_EINVAL, "scrape target \"%s\": the URL is longer than %d bytes", s,
                          SCR_MAX_TARGET_URL);
    e->url = hp_xstrndup(start, n);
    return 0;
}

void scr_entries_free(scr_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].service);
        free(v[i].url);
        free(v[i].dns_host);
        free(v[i].dns_port);
    }
    free(v);
}

/* Splits a comma-separated list into trimmed, non-empty items. */
static size_t split_list(const char *list, char ***out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    for (const char *p = list ? list : ""; *p;) {
        size_t len = strcspn(p, ",");
        char *item = trimmed(p, len);
        if (item[0]) {
            HP_GROW(*out, cap, n + 1);
            (*out)[n++] = item;
        } else {
            free(item);
        }
        p += len + (p[len] == ',');
    }
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int scr_parse_targets(const char *list, scr_entry_t **out, size_t *n, hp_err_t *err)
{
    char **items;
    size_t ni = split_list(list, &items);
    *out = hp_xcalloc(ni + 1, sizeof(**out));
    *n = 0;
    int rc = 0;
    for (size_t i = 0; i < ni && rc == 0; i++) {
        rc = parse_entry(items[i], &(*out)[i], err);
        *n = i + 1;
    }
    free_list(items, ni);
    return rc;
}

static int parse_profiles(scr_t *s, hp_err_t *err)
{
    s->n_profiles = split_list(s->cfg->scrape.profiles, &s->profiles);
    for (size_t i = 0; i < s->n_profiles; i++) {
        bool ok = false;
        for (size_t k = 0; k < HP_ARRAY_LEN(known_profiles) && !ok; k++)
            ok = strcmp(s->profiles[i], known_profiles[k]) == 0;
        if (!ok)
            return hp_err_set(err, HP_EINVAL,
                              "-scrape.profiles: unknown profile \"%s\" (known: profile, allocs, heap, goroutine, "
                              "mutex, block, threadcreate)",
                              s->profiles[i]);
    }
    return 0;
}

/* ---- one target ---- */

/* A target of one cycle: where to fetch, and the labels of its profiles. */
typedef struct target {
    scr_t *s;
    char *url;      /* http://host:port */
    char *service;  /* service_name */
    char *instance; /* host:port */
} target_t;

typedef struct body {
    hp_buf_t buf;
    bool too_large;
} body_t;

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    body_t *b = ctx;
    size_t len = size * n;
    if (b->buf.len + len > MAX_BODY) {
        b->too_large = true;
        return 0; /* aborts the transfer */
    }
    hp_buf_append(&b->buf, p, len);
    return len;
}

/* GET url into b; 0 when the answer was 200. */
static int fetch(CURL *c, const char *url, int64_t timeout_ms, body_t *b, hp_err_t *err)
{
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hotpath-scraper");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (b->too_large)
        return hp_err_set(err, HP_ETOOLARGE, "%s: the profile is larger than %zu bytes", url, MAX_BODY);
    if (cc != CURLE_OK)
        return hp_err_set(err, HP_EUNAVAIL, "%s: %s", url, curl_easy_strerror(cc));
    if (status != 200)
        return hp_err_set(err, HP_EUNAVAIL, "%s: HTTP %ld", url, status);
    return 0;
}

/* The sample_type_config the Pyroscope Go SDK sends with each profile kind
 * (its display names tell block from mutex profiles, whose sample types
 * are the same), or NULL. */
static const char *sample_type_config(const char *profile)
{
    static const struct {
        const char *profile, *json;
    } cfgs[] = {
        {"allocs", "{\"alloc_objects\":{\"units\":\"objects\"},\"alloc_space\":{\"units\":\"bytes\"},"
                   "\"inuse_objects\":{\"units\":\"objects\",\"aggregation\":\"average\"},"
                   "\"inuse_space\":{\"units\":\"bytes\",\"aggregation\":\"average\"}}"},
        {"heap", "{\"alloc_objects\":{\"units\":\"objects\"},\"alloc_space\":{\"units\":\"bytes\"},"
                 "\"inuse_objects\":{\"units\":\"objects\",\"aggregation\":\"average\"},"
                 "\"inuse_space\":{\"units\":\"bytes\",\"aggregation\":\"average\"}}"},
        {"goroutine", "{\"goroutine\":{\"units\":\"goroutines\",\"aggregation\":\"average\","
                      "\"display-name\":\"goroutines\"}}"},
        {"block", "{\"contentions\":{\"units\":\"lock_samples\",\"display-name\":\"block_count\"},"
                  "\"delay\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"block_duration\"}}"},
        {"mutex", "{\"contentions\":{\"units\":\"lock_samples\",\"display-name\":\"mutex_count\"},"
                  "\"delay\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"mutex_duration\"}}"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cfgs); i++)
        if (strcmp(profile, cfgs[i].profile) == 0)
            return cfgs[i].json;
    return NULL;
}

#define BOUNDARY "hotpathscraperboundary7c1f"

/* The multipart body the Go SDK sends: part `profile`, and
 * `sample_type_config` when the profile kind has one. */
static void multipart_body(const hp_buf_t *pprof, const char *stc, hp_buf_t *out)
{
    hp_buf_puts(out, "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"profile\"; "
                     "filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    hp_buf_append(out, pprof->data, pprof->len);
    if (stc)
        hp_buf_printf(out,
                      "\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"sample_type_config\"; "
                      "filename=\"sample_type_config.json\"\r\nContent-Type: application/octet-stream\r\n\r\n%s",
                      stc);
    hp_buf_puts(out, "\r\n--" BOUNDARY "--\r\n");
}

/* POSTs a fetched profile to the distributor's /ingest, as the Go SDK
 * would (multipart). */
static int push(CURL *c, const target_t *t, const char *profile, const hp_buf_t *pprof, int64_t from_s,
                int64_t until_s, hp_err_t *err)
{
    const hp_config_t *cfg = t->s->cfg;
    char name[512];
    int nn = snprintf(name, sizeof(name), "%s{instance=%s}", t->service, t->instance);
    if (nn < 0 || (size_t)nn >= sizeof(name))
        return hp_err_set(err, HP_EINVAL, "service name and instance of %s are longer than %zu bytes", t->url,
                          sizeof(name) - 1);
    char *qname = curl_easy_escape(c, name, 0);
    if (qname == NULL)
        return hp_err_set(err, HP_ENOMEM, "out of memory escaping the application name");
    hp_buf_t url = HP_BUF_INIT;
    hp_buf_printf(&url, "%s/ingest?name=%s&spyName=scraper&from=%lld&until=%lld", cfg->scrape.push_url, qname,
                  (long long)from_s, (long long)until_s);
    hp_buf_putc(&url, '\0');
    curl_free(qname);
    body_t resp = {HP_BUF_INIT, false};
    hp_buf_t body = HP_BUF_INIT;
    multipart_body(pprof, sample_type_config(profile), &body);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: multipart/form-data; boundary=" BOUNDARY);
    char tenant[256];
    if (cfg->scrape.tenant && cfg->scrape.tenant[0]) {
        snprintf(tenant, sizeof(tenant), "X-Scope-OrgID: %s", cfg->scrape.tenant);
        h = curl_slist_append(h, tenant);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, (const char *)url.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->scrape.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    int rc = 0;
    if (cc != CURLE_OK)
        rc = hp_err_set(err, HP_EUNAVAIL, "push to %s: %s", cfg->scrape.push_url, curl_easy_strerror(cc));
    else if (status != 200)
        rc = hp_err_set(err, HP_EUNAVAIL, "push to %s: HTTP %ld: %.*s", cfg->scrape.push_url, status,
                        (int)HP_MIN(resp.buf.len, 200), resp.buf.data ? (const char *)resp.buf.data : "");
    hp_buf_fini(&resp.buf);
    hp_buf_fini(&body);
    hp_buf_fini(&url);
    return rc;
}

static void count(scr_t *s, const char *what, const char *profile, bool ok)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "profile=\"%s\",result=\"%s\"", profile, ok ? "ok" : "error");
    char name[64];
    snprintf(name, sizeof(name), "hotpath_scraper_%s_total", what);
    hp_metric_add(hp_metrics_counter(s->svc->metrics, name,
                                     strcmp(what, "fetches") == 0 ? "Profiles fetched from targets."
                                                                  : "Profiles pushed to the distributor.",
                                     labels),
                  1);
}

/* One target's profiles, fetched and pushed one after another (a pool job). */
static void scrape_target(void *arg)
{
    target_t *t = arg;
    scr_t *s = t->s;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return;
    for (size_t i = 0; i < s->n_profiles; i++) {
        const char *prof = s->profiles[i];
        bool cpu = strcmp(prof, "profile") == 0;
        char url[1024];
        if (cpu)
            snprintf(url, sizeof(url), "%s/debug/pprof/profile?seconds=%lld", t->url,
                     (long long)s->cfg->scrape.cpu_seconds);
        else
            snprintf(url, sizeof(url), "%s/debug/pprof/%s", t->url, prof);
        int64_t start = hp_now_ns() / 1000000000;
        body_t b = {HP_BUF_INIT, false};
        hp_err_t err;
        int64_t timeout = s->cfg->scrape.timeout_ms + (cpu ? s->cfg->scrape.cpu_seconds * 1000 : 0);
        int rc = fetch(c, url, timeout, &b, &err);
        count(s, "fetches", prof, rc == 0);
        if (rc == 0) {
            rc = push(c, t, prof, &b.buf, start, hp_now_ns() / 1000000000, &err);
            count(s, "pushes", prof, rc == 0);
        }
        if (rc != 0) {
            char q[600];
            HP_WARN("scrape failed", "target=%s profile=%s err=%s", t->url, prof, hp_log_q(q, sizeof(q), err.msg));
        }
        hp_buf_fini(&b.buf);
    }
    curl_easy_cleanup(c);
}

/* ---- the loop ---- */

/* host:port of an http(s) URL. */
static char *url_host_port(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    return hp_xstrndup(p, strcspn(p, "/"));
}

/* The host of host:port (brackets of an IPv6 literal removed). */
static char *host_only(const char *hp)
{
    if (hp[0] == '[') {
        const char *e = strchr(hp, ']');
        return hp_xstrndup(hp + 1, e ? (size_t)(e - hp - 1) : strlen(hp + 1));
    }
    const char *colon = strrchr(hp, ':');
    return hp_xstrndup(hp, colon ? (size_t)(colon - hp) : strlen(hp));
}

/* A target's default service name: its host, with the characters an
 * application name cannot hold (the ':' of an IPv6 address, say) as '_'. */
static char *default_service(const char *instance)
{
    char *h = host_only(instance);
    for (char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-' && *p != '/')
            *p = '_';
    return h;
}

static void add_target(target_t **v, size_t *n, size_t *cap, scr_t *s, const char *url, const char *service)
{
    HP_GROW(*v, *cap, *n + 1);
    target_t *t = &(*v)[(*n)++];
    t->s = s;
    t->url = hp_xstrdup(url);
    t->instance = url_host_port(url);
    t->service = service ? hp_xstrdup(service) : default_service(t->instance);
}

/* Every entry's targets now: DNS entries resolved again (a name that does
 * not resolve contributes nothing this cycle, and is logged). */
static size_t expand(scr_t *s, target_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    for (size_t i = 0; i < s->n_entries; i++) {
        const scr_entry_t *e = &s->entries[i];
        if (e->url) {
            add_target(out, &n, &cap, s, e->url, e->service);
            continue;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int rc = getaddrinfo(e->dns_host, e->dns_port, &hints, &res);
        if (rc != 0) {
            HP_WARN("cannot resolve a scrape target", "name=%s err=%s", e->dns_host, gai_strerror(rc));
            continue;
        }
        size_t k = 0;
        for (const struct addrinfo *ai = res; ai && k < MAX_ADDRS; ai = ai->ai_next, k++) {
            char ip[INET6_ADDRSTRLEN], url[INET6_ADDRSTRLEN + 32];
            const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                     : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if (inet_ntop(ai->ai_family, a, ip, sizeof(ip)) == NULL)
                continue;
            snprintf(url, sizeof(url), ai->ai_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", ip,
                     e->dns_port);
            add_target(out, &n, &cap, s, url, e->service ? e->service : e->dns_host);
        }
        freeaddrinfo(res);
    }
    return n;
}

static void run_cycle(scr_t *s)
{
    target_t *t;
    size_t n = expand(s, &t);
    hp_pool_fn *fns = hp_xcalloc(n + 1, sizeof(*fns));
    void **args = hp_xcalloc(n + 1, sizeof(*args));
    for (size_t i = 0; i < n; i++)
        fns[i] = scrape_target, args[i] = &t[i];
    hp_pool_run_all(s->svc->pool, fns, args, n);
    for (size_t i = 0; i < n; i++) {
        free(t[i].url);
        free(t[i].service);
        free(t[i].instance);
    }
    free(t);
    free(fns);
    free(args);
    hp_metric_add(s->m_cycles, 1);
}

static void *loop(void *arg)
{
    scr_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        int64_t t0 = hp_mono_ms();
        run_cycle(s);
        pthread_mutex_lock(&s->mu);
        s->cycles++;
        int64_t left = s->cfg->scrape.interval_ms - (hp_mono_ms() - t0);
        if (left > 0 && !s->stop)
            hp_cond_wait_ms(&s->cv, &s->mu, left);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Ready once the first cycle is done. */
static bool ready(void *ctx, hp_buf_t *why)
{
    scr_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    bool ok = s->cycles > 0;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        hp_buf_puts(why, "the first scrape is still running");
    return ok;
}

static void on_stop(void *ctx)
{
    scr_stop(ctx);
}

int scr_new(hp_service_t *svc, scr_t **out, hp_err_t *err)
{
    scr_t *s = hp_xcalloc(1, sizeof(*s));
    *out = s;
    s->svc = svc;
    s->cfg = &svc->cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = scr_parse_targets(s->cfg->scrape.targets, &s->entries, &s->n_entries, err);
    if (rc == 0 && s->n_entries == 0)
        rc = hp_err_set(err, HP_EINVAL, "-scrape.targets is empty: nothing to scrape");
    if (rc == 0)
        rc = parse_profiles(s, err);
    s->m_cycles = hp_metrics_counter(svc->metrics, "hotpath_scraper_cycles_total", "Scrape cycles finished.", NULL);
    return rc;
}

int scr_start(scr_t *s, hp_err_t *err)
{
    if (pthread_create(&s->thread, NULL, loop, s) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the scrape thread");
    s->thread_ok = true;
    hp_service_on_ready(s->svc, ready, s);
    hp_service_on_stop(s->svc, on_stop, s);
    HP_INFO("scraper started", "targets=%zu profiles=%zu interval_ms=%lld push=%s", s->n_entries, s->n_profiles,
            (long long)s->cfg->scrape.interval_ms, s->cfg->scrape.push_url);
    return 0;
}

void scr_stop(scr_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_ok) {
        pthread_join(s->thread, NULL);
        s->thread_ok = false;
    }
}

void scr_free(scr_t *s)
{
    if (s == NULL)
        return;
    scr_stop(s);
    scr_entries_free(s->entries, s->n_entries);
    free_list(s->profiles, s->n_profiles);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    curl_global_cleanup();
}
