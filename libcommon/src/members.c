/* Ring membership: the member list (static URLs and DNS answers), probe
 * rounds, and the immutable views callers place requests with.
 *
 * Ownership: a record (URL + RPC client) is shared by the member list and
 * by every view that lists it, and freed with its last reference, so a
 * member dropped from DNS keeps its client while a view still uses it.
 * Views are immutable and reference-counted; the members object holds one
 * reference on its current view.
 *
 * Locks (order: round_mu before mu):
 *   round_mu  serializes the writers of the member list — probe rounds and
 *             DNS refreshes (the thread and hp_members_probe_now) — and
 *             guards dns[]. Held across RPCs and getaddrinfo; readers never
 *             take it.
 *   mu        guards members[] and every field of its entries, view, stop
 *             and the condvar the thread sleeps on. Never held across I/O,
 *             nor while dropping references (a last release closes sockets).
 *   probed_all is atomic so hp_members_probed needs no lock.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hotpath/log.h"
#include "hotpath/members.h"
#include "hotpath/ring.h"
#include "hotpath/v1/rpc.pb-c.h"

#define DEFAULT_TOKENS 128
#define DEFAULT_HEARTBEAT_MS 5000
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_DNS_REFRESH_MS 30000
#define PROBE_TIMEOUT_CAP_MS 2000
#define PROBE_MAX_BYTES 4096 /* a valid ProbeResponse is under 530 bytes */
#define PROBE_MAX_STR 256    /* instance ID and zone */
#define DNS_MAX_ADDRS 1024   /* addresses kept from one DNS answer */

/* A member's URL and RPC client: immutable, shared, reference-counted. */
typedef struct record {
    atomic_size_t refs;
    char *url;
    hp_rpc_client_t *client;
} record_t;

/* A member as the members object tracks it (guarded by mu). */
typedef struct member {
    record_t *rec;     /* one reference */
    char *instance_id; /* NULL until a probe answered */
    char *zone;        /* NULL until a probe answered */
    hp_member_state_t state;
    int64_t last_hb_ms; /* unix ms; 0 = never */
    bool probed;        /* a probe round finished for it */
    bool failing;       /* its last probe failed (logs only transitions) */
} member_t;

/* One configured "dns+name:port" entry (guarded by round_mu). */
typedef struct dns_entry {
    char *spec; /* as configured, for logs */
    char *host;
    char *port;
    char **urls; /* the last successful answer: sorted, unique, owned */
    size_t n_urls;
} dns_entry_t;

typedef struct view_member {
    record_t *rec;     /* one reference */
    char *instance_id; /* owned; "" when unknown */
    char *zone;        /* owned; "" when none */
    hp_member_state_t state;
    bool healthy;
    bool in_ring; /* the ring member standing for its instance ID */
    int64_t last_hb_ms;
    double ownership;
} view_member_t;

struct hp_ring_view {
    atomic_size_t refs;
    view_member_t *m; /* sorted by URL */
    size_t n;
    hp_ring_t *ring;      /* members with known IDs, one per ID */
    size_t *ring_to_view; /* ring member index -> index in m */
    bool zone_awareness;
};

struct hp_members {
    hp_members_config_t cfg; /* defaults applied; cfg.members not kept */
    char **statics;          /* static URLs, owned */
    size_t n_statics;
    dns_entry_t *dns;
    size_t n_dns;
    pthread_mutex_t round_mu;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled by stop */
    member_t *members; /* sorted by URL */
    size_t n_members;
    hp_ring_view_t *view;
    size_t rounds; /* probe rounds finished */
    bool stop;
    bool running;
    pthread_t thread;
    atomic_bool probed_all;
};

/* ---- records ---------------------------------------------------------- */

/* A record for url with its own client (one reference), or NULL with err set. */
static record_t *record_new(const char *url, hp_err_t *err)
{
    hp_rpc_client_t *c;
    if (hp_rpc_client_new(url, 0, &c, err) != 0)
        return NULL;
    record_t *r = hp_xcalloc(1, sizeof(*r));
    atomic_init(&r->refs, 1);
    r->url = hp_xstrdup(url);
    r->client = c;
    return r;
}

static record_t *record_ref(record_t *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

/* Drops one reference; the last one closes the client. NULL-safe. */
static void record_release(record_t *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    hp_rpc_client_free(r->client);
    free(r->url);
    free(r);
}

/* ---- small helpers ---------------------------------------------------- */

const char *hp_member_state_name(hp_member_state_t s)
{
    static const char *const names[] = {"UNKNOWN", "JOINING", "ACTIVE", "LEAVING"};
    return (unsigned)s < HP_ARRAY_LEN(names) ? names[s] : "UNKNOWN";
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts owned strings and frees the duplicates; returns the new count. */
static size_t sort_unique_owned(char **v, size_t n)
{
    hp_qsort(v, n, sizeof(char *), cmp_cstr);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o > 0 && strcmp(v[o - 1], v[i]) == 0)
            free(v[i]);
        else
            v[o++] = v[i];
    }
    return o;
}

static void strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Index of the member with url in m->members (sorted), or SIZE_MAX. mu held. */
static size_t find_member(const hp_members_t *m, const char *url)
{
    size_t lo = 0, hi = m->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->members[mid].rec->url, url);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* ---- parsing the member list ------------------------------------------ */

/* Splits "dns+name:port" into e; HP_EINVAL naming the entry when malformed. */
static int dns_entry_parse(const char *spec, dns_entry_t *e, hp_err_t *err)
{
    const char *hp = spec + strlen("dns+");
    const char *colon = strrchr(hp, ':');
    const char *port = colon ? colon + 1 : "";
    char *end;
    long p = strtol(port, &end, 10);
    if (colon == NULL || colon == hp || *port == '\0' || *end != '\0' || p < 1 || p > 65535)
        return hp_err_set(err, HP_EINVAL, "bad ring member \"%s\": want dns+name:port", spec);
    size_t host_len = (size_t)(colon - hp);
    if (host_len > 2 && hp[0] == '[' && hp[host_len - 1] == ']') { /* dns+[::1]:9095 */
        hp++;
        host_len -= 2;
    }
    e->spec = hp_xstrdup(spec);
    e->host = hp_xstrndup(hp, host_len);
    e->port = hp_xstrdup(port);
    return 0;
}

/* True for the nng URL schemes a static member may use, with something
 * after the scheme. */
static bool static_url_ok(const char *s)
{
    static const char *const schemes[] = {"tcp://", "ipc://", "inproc://"};
    for (size_t i = 0; i < HP_ARRAY_LEN(schemes); i++)
        if (starts_with(s, schemes[i]) && s[strlen(schemes[i])] != '\0')
            return true;
    return false;
}

/* Files one list entry as a static URL or a DNS entry of m. */
static int parse_entry(hp_members_t *m, const char *s, size_t *cap_s, size_t *cap_d, hp_err_t *err)
{
    if (starts_with(s, "dns+")) {
        HP_GROW(m->dns, *cap_d, m->n_dns + 1);
        memset(&m->dns[m->n_dns], 0, sizeof(m->dns[0]));
        int rc = dns_entry_parse(s, &m->dns[m->n_dns], err);
        m->n_dns += rc == 0;
        return rc;
    }
    if (!static_url_ok(s))
        return hp_err_set(err, HP_EINVAL,
                          "bad ring member \"%s\": want tcp://host:port, ipc://path, inproc://name "
                          "or dns+name:port",
                          s);
    HP_GROW(m->statics, *cap_s, m->n_statics + 1);
    m->statics[m->n_statics++] = hp_xstrdup(s);
    return 0;
}

/* Parses the comma-separated list into m->statics and m->dns. */
static int parse_list(hp_members_t *m, const char *list, hp_err_t *err)
{
    char **v;
    size_t n = hp_ring_parse_members(list, &v), cap_s = 0, cap_d = 0;
    int rc = n == 0 ? hp_err_set(err, HP_EINVAL, "no ring members: set -ring.members") : 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = parse_entry(m, v[i], &cap_s, &cap_d, err);
    hp_ring_members_free(v, n);
    if (rc == 0)
        m->n_statics = sort_unique_owned(m->statics, m->n_statics);
    return rc;
}

/* ---- DNS -------------------------------------------------------------- */

/* "tcp://1.2.3.4:port" or "tcp://[::1]:port" for one address, or NULL. */
static char *addr_url(const struct addrinfo *ai, const char *port)
{
    char ip[INET6_ADDRSTRLEN], url[INET6_ADDRSTRLEN + 32];
    if (ai->ai_family == AF_INET &&
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof(ip)))
        snprintf(url, sizeof(url), "tcp://%s:%s", ip, port);
    else if (ai->ai_family == AF_INET6 &&
             inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof(ip)))
        snprintf(url, sizeof(url), "tcp://[%s]:%s", ip, port);
    else
        return NULL;
    return hp_xstrdup(url);
}

/* The default resolver: getaddrinfo (any family, stream sockets), one URL
 * per address, at most DNS_MAX_ADDRS. */
static int resolve_gai(void *ctx, const char *host, const char *port, char ***out, size_t *n_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return rc;
    char **v = NULL;
    size_t n = 0, cap = 0;
    for (const struct addrinfo *ai = res; ai != NULL && n < DNS_MAX_ADDRS; ai = ai->ai_next) {
        char *url = addr_url(ai, port);
        if (url == NULL)
            continue;
        HP_GROW(v, cap, n + 1);
        v[n++] = url;
    }
    freeaddrinfo(res);
    *out = v;
    *n_out = n;
    return 0;
}

/* Resolves e into URLs (sorted, unique, owned: *out) with m's resolver.
 * Returns 0, or an EAI_* code. */
static int dns_resolve(const hp_members_t *m, const dns_entry_t *e, char ***out, size_t *n_out)
{
    char **v = NULL;
    size_t n = 0;
    int rc = m->cfg.resolve ? m->cfg.resolve(m->cfg.resolve_ctx, e->host, e->port, &v, &n)
                            : resolve_gai(NULL, e->host, e->port, &v, &n);
    if (rc != 0)
        return rc;
    *n_out = sort_unique_owned(v, n);
    *out = v;
    return 0;
}

/* Re-resolves e. On failure keeps the previous answer (a resolver hiccup
 * must not empty the ring) and logs why. round_mu held. */
static void dns_refresh_entry(const hp_members_t *m, dns_entry_t *e)
{
    char **urls, q[300], qe[200];
    size_t n;
    int rc = dns_resolve(m, e, &urls, &n);
    if (rc != 0) {
        HP_WARN("ring: cannot resolve DNS member entry; keeping its previous members",
                "entry=%s err=%s kept=%zu", hp_log_q(q, sizeof(q), e->spec),
                hp_log_q(qe, sizeof(qe), gai_strerror(rc)), e->n_urls);
        return;
    }
    if (n == 0)
        HP_WARN("ring: DNS member entry resolved to no usable address", "entry=%s",
                hp_log_q(q, sizeof(q), e->spec));
    strs_free(e->urls, e->n_urls);
    e->urls = urls;
    e->n_urls = n;
}

static void dns_entry_fini(dns_entry_t *e)
{
    free(e->spec);
    free(e->host);
    free(e->port);
    strs_free(e->urls, e->n_urls);
}

/* ---- the member list -------------------------------------------------- */

/* Every URL the configuration currently names (borrowed, sorted, unique);
 * caller frees the array with free(). round_mu held. */
static size_t wanted_urls(const hp_members_t *m, char ***out)
{
    size_t n = m->n_statics;
    for (size_t i = 0; i < m->n_dns; i++)
        n += m->dns[i].n_urls;
    char **v = hp_xcalloc(n ? n : 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < m->n_statics; i++)
        v[k++] = m->statics[i];
    for (size_t i = 0; i < m->n_dns; i++)
        for (size_t j = 0; j < m->dns[i].n_urls; j++)
            v[k++] = m->dns[i].urls[j];
    *out = v;
    return hp_sort_unique_strs(v, k);
}

/* The entry for url in the next list: the current member carried over
 * (marked in carried[]; its strings and record now belong to next), or a
 * new one (logged once m has a view, i.e. after startup). False (err set)
 * when no client can be made. mu held. */
static bool carry_member(hp_members_t *m, const char *url, bool *carried, member_t *next, hp_err_t *err)
{
    size_t j = find_member(m, url);
    if (j != SIZE_MAX) {
        *next = m->members[j];
        carried[j] = true;
        return true;
    }
    memset(next, 0, sizeof(*next));
    next->rec = record_new(url, err);
    if (next->rec != NULL && m->view != NULL)
        HP_INFO("ring: member added", "url=%s", url);
    return next->rec != NULL;
}

/* Frees a member entry's strings and returns its record (to release
 * outside mu). */
static record_t *member_clear(member_t *mb)
{
    record_t *r = mb->rec;
    free(mb->instance_id);
    free(mb->zone);
    memset(mb, 0, sizeof(*mb));
    return r;
}

/* Moves the records of m's members not carried over (and, when rollback,
 * of next[0..k) too) into *dropped for release after unlocking. mu held. */
static void collect_dropped(hp_members_t *m, const bool *carried, member_t *next, size_t k, bool rollback,
                            record_t ***dropped, size_t *n_dropped)
{
    *dropped = hp_xcalloc(m->n_members + k + 1, sizeof(record_t *));
    *n_dropped = 0;
    for (size_t i = 0; i < m->n_members; i++)
        if (!carried[i]) {
            HP_INFO("ring: member dropped", "url=%s", m->members[i].rec->url);
            (*dropped)[(*n_dropped)++] = member_clear(&m->members[i]);
        }
    for (size_t i = 0; rollback && i < k; i++)
        (*dropped)[(*n_dropped)++] = member_clear(&next[i]);
}

/* Replaces m->members with entries for the wanted URLs (sorted; mu held).
 * Records of dropped members go to *dropped (caller releases them after
 * unlocking). With err, a URL no client can be made for fails the call and
 * leaves m without members; without err, it is logged and skipped. */
static int members_set(hp_members_t *m, char **want, size_t n, record_t ***dropped, size_t *n_dropped,
                       hp_err_t *err)
{
    member_t *next = hp_xcalloc(n + 1, sizeof(*next));
    bool *carried = hp_xcalloc(m->n_members + 1, sizeof(bool));
    size_t k = 0;
    int rc = 0;
    char q[600];
    for (size_t i = 0; i < n && rc == 0; i++) {
        hp_err_t e;
        if (carry_member(m, want[i], carried, &next[k], &e))
            k++;
        else if (err != NULL)
            rc = hp_err_set(err, e.code, "bad ring member \"%s\": %s", want[i], e.msg);
        else
            HP_WARN("ring: cannot add member", "url=%s err=%s", want[i], hp_log_q(q, sizeof(q), e.msg));
    }
    collect_dropped(m, carried, next, k, rc != 0, dropped, n_dropped);
    free(carried);
    free(m->members);
    m->members = next;
    m->n_members = rc == 0 ? k : 0;
    return rc;
}

static void update_probed_all(hp_members_t *m)
{
    bool all = m->rounds > 0;
    for (size_t i = 0; i < m->n_members && all; i++)
        all = m->members[i].probed;
    atomic_store(&m->probed_all, all);
}

/* ---- views ------------------------------------------------------------ */

/* One view entry from a member (mu held). */
static void view_member_fill(view_member_t *vm, const member_t *mb, int64_t now, int64_t timeout_ms)
{
    vm->rec = record_ref(mb->rec);
    vm->instance_id = hp_xstrdup(mb->instance_id ? mb->instance_id : "");
    vm->zone = hp_xstrdup(mb->zone ? mb->zone : "");
    vm->state = mb->state;
    vm->last_hb_ms = mb->last_hb_ms;
    vm->healthy = mb->last_hb_ms > 0 && now - mb->last_hb_ms <= timeout_ms;
}

typedef struct ring_cand {
    const char *id;
    bool healthy;
    size_t idx;
} ring_cand_t;

/* By ID, then healthy first, then view order: the first of each ID stands
 * for it in the ring. */
static int cmp_cand(const void *a, const void *b)
{
    const ring_cand_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    if (x->healthy != y->healthy)
        return x->healthy ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Fills in each ring member's ownership of the token space. */
static void view_ownership(hp_ring_view_t *v)
{
    size_t k = hp_ring_members(v->ring);
    double *own = hp_xcalloc(k + 1, sizeof(double));
    hp_ring_ownership_all(v->ring, own);
    for (size_t i = 0; i < k; i++)
        v->m[v->ring_to_view[i]].ownership = own[i];
    free(own);
}

/* Builds v's ring from its members with known IDs: one ring member per ID
 * (two URLs answering with one ID are one instance, e.g. its IPv4 and IPv6
 * address), numbered in ID order so every client numbers them the same. */
static void view_ring_build(hp_ring_view_t *v, size_t num_tokens)
{
    ring_cand_t *c = hp_xcalloc(v->n + 1, sizeof(*c));
    const char **ids = hp_xcalloc(v->n + 1, sizeof(char *));
    size_t nc = 0, k = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->m[i].instance_id[0] != '\0')
            c[nc++] = (ring_cand_t){v->m[i].instance_id, v->m[i].healthy, i};
    hp_qsort(c, nc, sizeof(*c), cmp_cand);
    v->ring_to_view = hp_xcalloc(nc + 1, sizeof(size_t));
    for (size_t i = 0; i < nc; i++) {
        if (k > 0 && strcmp(ids[k - 1], c[i].id) == 0)
            continue;
        ids[k] = c[i].id;
        v->ring_to_view[k++] = c[i].idx;
        v->m[c[i].idx].in_ring = true;
    }
    v->ring = hp_ring_new(ids, k, num_tokens);
    view_ownership(v);
    free(ids);
    free(c);
}

/* A new view of m's members (one reference), health judged at now. mu held. */
static hp_ring_view_t *view_build(const hp_members_t *m, int64_t now)
{
    hp_ring_view_t *v = hp_xcalloc(1, sizeof(*v));
    atomic_init(&v->refs, 1);
    v->m = hp_xcalloc(m->n_members + 1, sizeof(*v->m));
    v->n = m->n_members;
    v->zone_awareness = m->cfg.zone_awareness;
    for (size_t i = 0; i < m->n_members; i++)
        view_member_fill(&v->m[i], &m->members[i], now, m->cfg.heartbeat_timeout_ms);
    view_ring_build(v, m->cfg.num_tokens);
    return v;
}

static void view_free(hp_ring_view_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        record_release(v->m[i].rec);
        free(v->m[i].instance_id);
        free(v->m[i].zone);
    }
    hp_ring_free(v->ring);
    free(v->ring_to_view);
    free(v->m);
    free(v);
}

void hp_ring_view_release(hp_ring_view_t *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

/* Installs a fresh view of m; returns the old one, to release after
 * unlocking. mu held. */
static hp_ring_view_t *view_refresh(hp_members_t *m)
{
    hp_ring_view_t *old = m->view;
    m->view = view_build(m, hp_now_ms());
    return old;
}

hp_ring_view_t *hp_members_view(hp_members_t *m)
{
    pthread_mutex_lock(&m->mu);
    hp_ring_view_t *v = m->view;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->mu);
    return v;
}

size_t hp_ring_view_size(const hp_ring_view_t *v)
{
    return v->n;
}

void hp_ring_view_member(const hp_ring_view_t *v, size_t i, hp_member_info_t *info)
{
    const view_member_t *vm = &v->m[i];
    *info = (hp_member_info_t){.url = vm->rec->url,
                               .instance_id = vm->instance_id,
                               .zone = vm->zone,
                               .state = vm->state,
                               .healthy = vm->healthy,
                               .last_heartbeat_ms = vm->last_hb_ms,
                               .ownership = vm->ownership};
}

hp_rpc_client_t *hp_ring_view_client(const hp_ring_view_t *v, size_t i)
{
    return v->m[i].rec->client;
}

/* Collects the write set during a ring walk. */
typedef struct write_pick {
    const hp_ring_view_t *v;
    size_t rf;
    size_t *out;
    size_t got;
} write_pick_t;

/* True when a member already picked has zone. */
static bool zone_taken(const write_pick_t *p, const char *zone)
{
    for (size_t j = 0; j < p->got; j++)
        if (strcmp(p->v->m[p->out[j]].zone, zone) == 0)
            return true;
    return false;
}

/* hp_ring_walk's visitor: takes ACTIVE, healthy members (in a new zone
 * when zone aware) until rf are picked. */
static bool pick_writer(void *ctx, size_t ring_member)
{
    write_pick_t *p = ctx;
    size_t i = p->v->ring_to_view[ring_member];
    const view_member_t *vm = &p->v->m[i];
    bool ok = vm->state == HP_MEMBER_ACTIVE && vm->healthy;
    if (ok && p->v->zone_awareness)
        ok = !zone_taken(p, vm->zone);
    if (ok)
        p->out[p->got++] = i;
    return p->got < p->rf;
}

size_t hp_ring_view_write_set(const hp_ring_view_t *v, uint32_t key, size_t rf, size_t *out)
{
    write_pick_t p = {v, rf, out, 0};
    if (rf > 0)
        hp_ring_walk(v->ring, key, pick_writer, &p);
    return p.got;
}

size_t hp_ring_view_read_set(const hp_ring_view_t *v, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->m[i].in_ring && v->m[i].healthy &&
            (v->m[i].state == HP_MEMBER_ACTIVE || v->m[i].state == HP_MEMBER_LEAVING))
            out[n++] = i;
    return n;
}

/* ---- probes ----------------------------------------------------------- */

/* A decoded, checked probe answer. */
typedef struct probe_answer {
    char id[PROBE_MAX_STR + 1];
    char zone[PROBE_MAX_STR + 1];
    hp_member_state_t state;
} probe_answer_t;

/* Checks an unpacked answer's bounds and copies it into a; NULL when
 * valid, else why not. */
static const char *probe_check(const Hotpath__V1__ProbeResponse *r, probe_answer_t *a)
{
    const char *id = r->instance_id ? r->instance_id : "", *zone = r->zone ? r->zone : "";
    size_t id_len = strlen(id), zone_len = strlen(zone);
    if (id_len == 0)
        return "empty instance_id";
    if (id_len > PROBE_MAX_STR || zone_len > PROBE_MAX_STR)
        return "instance_id or zone longer than 256 bytes";
    if (r->state < HP_MEMBER_JOINING || r->state > HP_MEMBER_LEAVING)
        return "state outside 1..3";
    memcpy(a->id, id, id_len + 1);
    memcpy(a->zone, zone, zone_len + 1);
    a->state = (hp_member_state_t)r->state;
    return NULL;
}

/* Decodes a ring.Probe reply (hostile until checked); NULL when valid,
 * else why not. Wraps protobuf-c's unpack/free. */
static const char *probe_decode(const hp_buf_t *b, probe_answer_t *a)
{
    if (b->len > PROBE_MAX_BYTES)
        return "answer too large";
    Hotpath__V1__ProbeResponse *r =
        hotpath__v1__probe_response__unpack(NULL, b->len, b->len ? b->data : (const uint8_t *)"");
    if (r == NULL)
        return "not a ProbeResponse";
    const char *why = probe_check(r, a);
    hotpath__v1__probe_response__free_unpacked(r, NULL);
    return why;
}

/* Records a failed probe of mb (mu held): logs only the first failure. */
static void probe_failed(member_t *mb, const char *why)
{
    char q[600];
    if (!mb->failing)
        HP_WARN("ring: member probe failed", "url=%s err=%s", mb->rec->url, hp_log_q(q, sizeof(q), why));
    mb->failing = true;
}

/* Takes a valid answer into mb (mu held); an answer with a new instance ID
 * means a different process now serves the URL: the member takes its ID
 * (and so its tokens). */
static void probe_answered(member_t *mb, const probe_answer_t *a, int64_t now)
{
    char q1[300], q2[300];
    if (mb->instance_id != NULL && strcmp(mb->instance_id, a->id) != 0)
        HP_INFO("ring: member changed instance", "url=%s old=%s new=%s", mb->rec->url,
                hp_log_q(q1, sizeof(q1), mb->instance_id), hp_log_q(q2, sizeof(q2), a->id));
    else if (mb->failing)
        HP_INFO("ring: member answers probes again", "url=%s", mb->rec->url);
    free(mb->instance_id);
    free(mb->zone);
    mb->instance_id = hp_xstrdup(a->id);
    mb->zone = hp_xstrdup(a->zone);
    mb->state = a->state;
    mb->last_hb_ms = now;
    mb->failing = false;
}

/* Applies one probe outcome to mb (mu held). */
static void probe_apply(member_t *mb, const hp_rpc_target_t *t, int64_t now)
{
    probe_answer_t a;
    const char *why = t->rc != 0 ? t->err.msg : probe_decode(&t->resp, &a);
    mb->probed = true;
    if (why != NULL)
        probe_failed(mb, why);
    else
        probe_answered(mb, &a, now);
}

/* Probes every member concurrently and publishes a new view. round_mu held
 * (so the member list cannot change during the round). */
static void probe_round(hp_members_t *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->n_members;
    hp_rpc_target_t *t = hp_xcalloc(n + 1, sizeof(*t));
    for (size_t i = 0; i < n; i++)
        t[i].client = m->members[i].rec->client;
    pthread_mutex_unlock(&m->mu);
    int timeout = (int)HP_MIN(m->cfg.heartbeat_period_ms, PROBE_TIMEOUT_CAP_MS);
    hp_rpc_call_all(t, n, "ring.Probe", HP_STR(""), "", 0, timeout);
    int64_t now = hp_now_ms();
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++)
        probe_apply(&m->members[i], &t[i], now);
    m->rounds++;
    update_probed_all(m);
    hp_ring_view_t *old = view_refresh(m);
    pthread_mutex_unlock(&m->mu);
    hp_ring_view_release(old);
    for (size_t i = 0; i < n; i++)
        hp_buf_fini(&t[i].resp);
    free(t);
}

void hp_members_probe_now(hp_members_t *m)
{
    pthread_mutex_lock(&m->round_mu);
    probe_round(m);
    pthread_mutex_unlock(&m->round_mu);
}

bool hp_members_probed(const hp_members_t *m)
{
    return atomic_load(&m->probed_all);
}

/* True when view v lists rec as unhealthy (mu held). */
static bool view_says_unhealthy(const hp_ring_view_t *v, const record_t *rec)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->m[i].rec == rec)
            return !v->m[i].healthy;
    return false;
}

void hp_members_report(hp_members_t *m, const hp_ring_view_t *v, size_t i, bool ok)
{
    if (!ok || i >= v->n) /* failures count only through missed heartbeats */
        return;
    const record_t *rec = v->m[i].rec;
    hp_ring_view_t *old = NULL;
    pthread_mutex_lock(&m->mu);
    size_t j = find_member(m, rec->url);
    if (j != SIZE_MAX && m->members[j].rec == rec) {
        m->members[j].last_hb_ms = hp_now_ms();
        if (view_says_unhealthy(m->view, rec)) /* publish the recovery now */
            old = view_refresh(m);
    }
    pthread_mutex_unlock(&m->mu);
    hp_ring_view_release(old);
}

int hp_members_probe_handler(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    hp_member_self_t *self = ctx;
    const char *id = self->instance_id ? self->instance_id : "";
    const char *zone = self->zone ? self->zone : "";
    if (*id)
        hp_pb_put_bytes(out, 1, id, strlen(id));
    if (*zone)
        hp_pb_put_bytes(out, 2, zone, strlen(zone));
    hp_pb_put_uint(out, 3, (uint64_t)(int64_t)atomic_load(&self->state));
    return 0;
}

/* ---- DNS refresh and the background thread ---------------------------- */

/* Re-resolves every DNS entry and updates the member list (round_mu held). */
static void dns_refresh(hp_members_t *m)
{
    for (size_t i = 0; i < m->n_dns; i++)
        dns_refresh_entry(m, &m->dns[i]);
    char **want;
    size_t n = wanted_urls(m, &want), n_dropped;
    record_t **dropped;
    pthread_mutex_lock(&m->mu);
    (void)members_set(m, want, n, &dropped, &n_dropped, NULL);
    update_probed_all(m);
    hp_ring_view_t *old = view_refresh(m);
    pthread_mutex_unlock(&m->mu);
    hp_ring_view_release(old);
    for (size_t i = 0; i < n_dropped; i++)
        record_release(dropped[i]);
    free(dropped);
    free(want);
}

/* Sleeps until the monotonic time deadline_ms or stop; false on stop. */
static bool sleep_until(hp_members_t *m, int64_t deadline_ms)
{
    struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000};
    pthread_mutex_lock(&m->mu);
    while (!m->stop && hp_mono_ms() < deadline_ms)
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    bool go_on = !m->stop;
    pthread_mutex_unlock(&m->mu);
    return go_on;
}

#define SETTLE_PERIOD_MS 250

/* True when some member is JOINING or has never answered. */
static bool settling(hp_members_t *m)
{
    bool any = false;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_members && !any; i++)
        any = m->members[i].state == HP_MEMBER_JOINING || m->members[i].state == HP_MEMBER_UNKNOWN;
    pthread_mutex_unlock(&m->mu);
    return any;
}

/* The background thread: DNS refreshes when due, then a probe round, every
 * heartbeat period (sooner while members are settling), until stop. */
static void *members_thread(void *arg)
{
    hp_members_t *m = arg;
    int64_t next_dns = hp_mono_ms() + m->cfg.dns_refresh_ms;
    do {
        int64_t round_start = hp_mono_ms();
        pthread_mutex_lock(&m->round_mu);
        if (m->n_dns > 0 && round_start >= next_dns) {
            dns_refresh(m);
            next_dns = round_start + m->cfg.dns_refresh_ms;
        }
        probe_round(m);
        pthread_mutex_unlock(&m->round_mu);
        /* members still starting (JOINING, or never answered) are probed
         * again soon, so clients see them turn ACTIVE within a moment */
        int64_t next = round_start + (settling(m) ? HP_MIN(m->cfg.heartbeat_period_ms, SETTLE_PERIOD_MS)
                                                  : m->cfg.heartbeat_period_ms);
        if (m->n_dns > 0)
            next = HP_MIN(next, next_dns);
        if (!sleep_until(m, next))
            break;
    } while (true);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

/* A members object with defaults applied, locks ready, no members. */
static hp_members_t *members_alloc(const hp_members_config_t *cfg)
{
    hp_members_t *m = hp_xcalloc(1, sizeof(*m));
    m->cfg = *cfg;
    m->cfg.members = NULL;
    if (m->cfg.num_tokens == 0)
        m->cfg.num_tokens = DEFAULT_TOKENS;
    if (m->cfg.heartbeat_period_ms <= 0)
        m->cfg.heartbeat_period_ms = DEFAULT_HEARTBEAT_MS;
    if (m->cfg.heartbeat_timeout_ms <= 0)
        m->cfg.heartbeat_timeout_ms = DEFAULT_TIMEOUT_MS;
    if (m->cfg.dns_refresh_ms <= 0)
        m->cfg.dns_refresh_ms = DEFAULT_DNS_REFRESH_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sleep_until uses hp_mono_ms */
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->round_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

/* Resolves the DNS entries once and builds the first member list and view. */
static int members_load(hp_members_t *m, hp_err_t *err)
{
    for (size_t i = 0; i < m->n_dns; i++)
        dns_refresh_entry(m, &m->dns[i]);
    char **want;
    size_t n = wanted_urls(m, &want), n_dropped;
    record_t **dropped;
    pthread_mutex_lock(&m->mu);
    int rc = members_set(m, want, n, &dropped, &n_dropped, err);
    m->view = view_build(m, hp_now_ms());
    if (rc == 0)
        HP_INFO("ring: members listed", "members=%zu static=%zu dns_entries=%zu", m->n_members, m->n_statics,
                m->n_dns);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_dropped; i++)
        record_release(dropped[i]);
    free(dropped);
    free(want);
    return rc;
}

int hp_members_new(const hp_members_config_t *cfg, hp_members_t **out, hp_err_t *err)
{
    *out = NULL;
    hp_members_t *m = members_alloc(cfg);
    int rc = parse_list(m, cfg->members, err);
    if (rc == 0)
        rc = members_load(m, err);
    if (rc != 0) {
        hp_members_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int hp_members_start(hp_members_t *m, hp_err_t *err)
{
    if (m->running)
        return 0;
    m->stop = false;
    if (pthread_create(&m->thread, NULL, members_thread, m) != 0)
        return hp_err_set(err, HP_EINTERNAL, "ring: cannot start the membership thread");
    m->running = true;
    return 0;
}

void hp_members_stop(hp_members_t *m)
{
    if (m == NULL || !m->running)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->running = false;
}

void hp_members_free(hp_members_t *m)
{
    if (m == NULL)
        return;
    hp_members_stop(m);
    for (size_t i = 0; i < m->n_members; i++)
        record_release(member_clear(&m->members[i]));
    free(m->members);
    hp_ring_view_release(m->view);
    strs_free(m->statics, m->n_statics);
    for (size_t i = 0; i < m->n_dns; i++)
        dns_entry_fini(&m->dns[i]);
    free(m->dns);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->round_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- /ring ------------------------------------------------------------ */

void hp_ring_view_write_json(const hp_ring_view_t *v, hp_buf_t *out)
{
    hp_buf_puts(out, "{\"members\":[");
    for (size_t i = 0; i < v->n; i++) {
        const view_member_t *vm = &v->m[i];
        hp_buf_puts(out, i ? ",{\"url\":" : "{\"url\":");
        hp_buf_put_json_str(out, vm->rec->url, strlen(vm->rec->url));
        hp_buf_puts(out, ",\"id\":");
        hp_buf_put_json_str(out, vm->instance_id, strlen(vm->instance_id));
        hp_buf_puts(out, ",\"zone\":");
        hp_buf_put_json_str(out, vm->zone, strlen(vm->zone));
        hp_buf_printf(out, ",\"state\":\"%s\",\"healthy\":%s,\"last_heartbeat\":%lld,\"ownership\":%.6f}",
                      hp_member_state_name(vm->state), vm->healthy ? "true" : "false",
                      (long long)vm->last_hb_ms, vm->ownership);
    }
    hp_buf_puts(out, "]}");
}

/* Appends s with & < > " ' escaped for HTML text and attributes. */
static void put_html(hp_buf_t *out, const char *s)
{
    static const char special[] = "&<>\"'";
    static const char *const entity[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (; *s; s++) {
        const char *hit = strchr(special, *s);
        if (hit != NULL)
            hp_buf_puts(out, entity[hit - special]);
        else
            hp_buf_putc(out, *s);
    }
}

/* One <td> holding s, escaped. */
static void put_cell(hp_buf_t *out, const char *s)
{
    hp_buf_puts(out, "<td>");
    put_html(out, s);
    hp_buf_puts(out, "</td>");
}

/* One table row for view member vm, heartbeat age relative to now. */
static void put_html_row(hp_buf_t *out, const view_member_t *vm, int64_t now)
{
    hp_buf_puts(out, "<tr>");
    put_cell(out, vm->rec->url);
    put_cell(out, vm->instance_id);
    put_cell(out, vm->zone);
    put_cell(out, hp_member_state_name(vm->state));
    put_cell(out, vm->healthy ? "yes" : "no");
    if (vm->last_hb_ms > 0)
        hp_buf_printf(out, "<td>%.1f s ago</td>", (double)(now - vm->last_hb_ms) / 1000.0);
    else
        hp_buf_puts(out, "<td>never</td>");
    hp_buf_printf(out, "<td>%.2f%%</td></tr>\n", vm->ownership * 100.0);
}

void hp_ring_view_write_html(const hp_ring_view_t *v, const char *title, hp_buf_t *out)
{
    const char *t = title ? title : "Ring";
    int64_t now = hp_now_ms();
    hp_buf_puts(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    put_html(out, t);
    hp_buf_puts(out, "</title><style>body{font-family:sans-serif;margin:2em}"
                     "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;"
                     "text-align:left}th{background:#eee}</style></head>\n<body><h1>");
    put_html(out, t);
    hp_buf_puts(out, "</h1>\n<table><thead><tr><th>URL</th><th>Instance</th><th>Zone</th>"
                     "<th>State</th><th>Healthy</th><th>Last heartbeat</th><th>Tokens owned</th>"
                     "</tr></thead><tbody>\n");
    for (size_t i = 0; i < v->n; i++)
        put_html_row(out, &v->m[i], now);
    hp_buf_puts(out, "</tbody></table></body></html>\n");
}
