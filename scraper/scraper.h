/*
 * scraper.h — hotpath-scraper: pull mode. Every -scrape.interval it fetches
 * the Go net/http/pprof endpoints of its targets and pushes what it gets to
 * a distributor's /ingest, as an SDK would have.
 *
 * Why its own binary rather than a distributor role: scraping is an agent's
 * job — it runs near the targets, scales with their number rather than with
 * the ingest rate, holds connections open for the length of every CPU
 * profile, and needs no ring. Keeping it out of the distributor keeps the
 * distributor stateless and its latency free of slow targets; the scraper
 * speaks to the cluster only through the public API, so it can run in the
 * targets' cluster and push across a network.
 *
 * Threads: a loop thread wakes every interval, resolves the targets (dns+
 * entries anew each time) and runs one job per target on the service's
 * pool; a job fetches the target's profiles one after another and pushes
 * each. A cycle that is still running when the next is due delays it.
 */
#ifndef HOTPATH_SCRAPER_H
#define HOTPATH_SCRAPER_H

#include <pthread.h>
#include <stdbool.h>

#include "hotpath/metrics.h"
#include "hotpath/service.h"

/* One configured target entry: static or DNS. */
typedef struct scr_entry {
    char *service; /* service_name of its profiles; NULL = the host */
    char *url;     /* http://host:port, or NULL for DNS */
    char *dns_host, *dns_port;
} scr_entry_t;

typedef struct scr {
    hp_service_t *svc;      /* borrowed */
    const hp_config_t *cfg; /* borrowed */
    scr_entry_t *entries;
    size_t n_entries;
    char **profiles; /* endpoint names under /debug/pprof/ */
    size_t n_profiles;
    pthread_t thread;
    bool thread_ok;
    pthread_mutex_t mu; /* guards stop, cycles */
    pthread_cond_t cv;
    bool stop;
    uint64_t cycles;
    hp_metric_t *m_cycles;
} scr_t;

/* Parses the configuration (HP_EINVAL naming a bad target or profile). */
int scr_new(hp_service_t *svc, scr_t **out, hp_err_t *err) HP_WUR;
/* Starts the loop thread. */
int scr_start(scr_t *s, hp_err_t *err) HP_WUR;
/* Stops the loop (a cycle in flight finishes its fetches first). */
void scr_stop(scr_t *s);
void scr_free(scr_t *s);

/* Splits "service=url" entries (testable without a service). */
int scr_parse_targets(const char *list, scr_entry_t **out, size_t *n, hp_err_t *err) HP_WUR;
void scr_entries_free(scr_entry_t *v, size_t n);

#endif
