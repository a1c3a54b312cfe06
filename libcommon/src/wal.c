/* The write-ahead log on RocksDB: keyed segment ‖ 0x00 ‖ big-endian
 * sequence, one commit thread batching concurrent appends. */
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hotpath/log.h"
#include "hotpath/wal.h"

/* A queued append; lives on its caller's stack until committed. */
typedef struct pending {
    struct pending *next;
    hp_str_t segment;
    const void *rec;
    size_t n;
    int rc;
    hp_err_t *err;
    bool done;
} pending_t;

struct hp_wal {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wsync, *wnosync;
    rocksdb_readoptions_t *ropts;
    hp_wal_sync_t sync;
    int64_t sync_interval_ms;
    uint64_t seq; /* last sequence used (commit thread only, after open) */
    pthread_t thread;
    bool thread_ok;
    pthread_mutex_t mu;
    pthread_cond_t work, committed;
    pending_t *head, *tail; /* queue, under mu */
    bool stopping;
    int64_t last_sync_ms;
};

/* RocksDB hands errors back as malloc'd strings: turn one into err and free it. */
static int rdb_error(char *e, hp_err_t *err, const char *what)
{
    int rc = hp_err_set(err, HP_EUNAVAIL, "wal: %s: %s", what, e ? e : "unknown error");
    rocksdb_free(e);
    return rc;
}

#define KEY_MAX (255 + 1 + 8)

static size_t make_key(uint8_t *key, hp_str_t segment, uint64_t seq)
{
    memcpy(key, segment.p, segment.n);
    key[segment.n] = 0;
    for (int i = 0; i < 8; i++)
        key[segment.n + 1 + i] = (uint8_t)(seq >> (56 - 8 * i));
    return segment.n + 9;
}

/* Splits a key into segment and sequence; false when it is not ours. */
static bool parse_key(const char *k, size_t n, hp_str_t *segment, uint64_t *seq)
{
    if (n < 10 || n > KEY_MAX || k[n - 9] != 0 || memchr(k, 0, n - 9) != NULL)
        return false;
    segment->p = k;
    segment->n = n - 9;
    *seq = 0;
    for (size_t i = n - 8; i < n; i++)
        *seq = *seq << 8 | (uint8_t)k[i];
    return true;
}

/* The highest sequence on disk, so new keys never collide with old ones. */
static uint64_t max_seq(hp_wal_t *w)
{
    uint64_t best = 0, s;
    hp_str_t seg;
    rocksdb_iterator_t *it = rocksdb_create_iterator(w->db, w->ropts);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kn;
        const char *k = rocksdb_iter_key(it, &kn);
        if (parse_key(k, kn, &seg, &s) && s > best)
            best = s;
    }
    rocksdb_iter_destroy(it);
    return best;
}

/* Commits one batch of appends: one write, one fsync (batch mode). */
static void commit(hp_wal_t *w, pending_t *list)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    uint8_t key[KEY_MAX];
    for (pending_t *p = list; p; p = p->next) {
        size_t kn = make_key(key, p->segment, ++w->seq);
        rocksdb_writebatch_put(b, (const char *)key, kn, p->rec, p->n);
    }
    char *e = NULL;
    bool sync = w->sync == HP_WAL_SYNC_BATCH;
    rocksdb_write(w->db, sync ? w->wsync : w->wnosync, b, &e);
    rocksdb_writebatch_destroy(b);
    int rc = 0;
    hp_err_t berr;
    if (e != NULL) {
        rc = rdb_error(e, &berr, "append");
        HP_ERROR("wal append failed", "err=\"%s\"", berr.msg);
    }
    pthread_mutex_lock(&w->mu);
    for (pending_t *p = list; p; p = p->next) {
        p->rc = rc;
        if (rc != 0 && p->err)
            *p->err = berr;
        p->done = true;
    }
    pthread_cond_broadcast(&w->committed);
    pthread_mutex_unlock(&w->mu);
}

/* Interval mode: fsync the RocksDB log when the interval has passed. */
static void maybe_sync(hp_wal_t *w)
{
    if (w->sync != HP_WAL_SYNC_INTERVAL || hp_mono_ms() - w->last_sync_ms < w->sync_interval_ms)
        return;
    char *e = NULL;
    rocksdb_flush_wal(w->db, 1, &e);
    if (e) {
        hp_err_t err;
        rdb_error(e, &err, "sync");
        HP_ERROR("wal sync failed", "err=\"%s\"", err.msg);
    }
    w->last_sync_ms = hp_mono_ms();
}

static void *commit_main(void *arg)
{
    hp_wal_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping) {
            if (w->sync == HP_WAL_SYNC_INTERVAL) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = ts.tv_nsec + w->sync_interval_ms * 1000000;
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&w->work, &w->mu, &ts);
                pthread_mutex_unlock(&w->mu);
                maybe_sync(w);
                pthread_mutex_lock(&w->mu);
            } else {
                pthread_cond_wait(&w->work, &w->mu);
            }
        }
        if (w->head == NULL && w->stopping)
            break;
        pending_t *list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        commit(w, list);
        maybe_sync(w);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int make_dir(const char *dir, hp_err_t *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return hp_err_set(err, HP_EINVAL, "wal: bad directory \"%s\"", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char c = path[i];
            path[i] = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return hp_err_set(err, HP_EUNAVAIL, "wal: cannot create %s: %s", path, strerror(errno));
            path[i] = c;
        }
    }
    return 0;
}

int hp_wal_open(const hp_wal_config_t *cfg, hp_wal_t **out, hp_err_t *err)
{
    *out = NULL;
    int rc = make_dir(cfg->dir, err);
    if (rc != 0)
        return rc;
    hp_wal_t *w = hp_xcalloc(1, sizeof(*w));
    w->sync = cfg->sync;
    w->sync_interval_ms = cfg->sync_interval_ms > 0 ? cfg->sync_interval_ms : 1000;
    w->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(w->opts, 1);
    /* cut a torn or corrupt log tail at the last consistent point */
    rocksdb_options_set_wal_recovery_mode(w->opts, 2);
    rocksdb_options_set_max_open_files(w->opts, 256);
    w->wsync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(w->wsync, 1);
    w->wnosync = rocksdb_writeoptions_create();
    w->ropts = rocksdb_readoptions_create();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->committed, NULL);
    char *e = NULL;
    w->db = rocksdb_open(w->opts, cfg->dir, &e);
    if (e != NULL) {
        rc = rdb_error(e, err, "open");
        hp_wal_close(w);
        return rc;
    }
    w->seq = max_seq(w);
    w->last_sync_ms = hp_mono_ms();
    if (pthread_create(&w->thread, NULL, commit_main, w) != 0) {
        hp_wal_close(w);
        return hp_err_set(err, HP_EINTERNAL, "wal: cannot start the commit thread");
    }
    w->thread_ok = true;
    *out = w;
    return 0;
}

void hp_wal_close(hp_wal_t *w)
{
    if (w == NULL)
        return;
    if (w->thread_ok) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    if (w->db) {
        char *e = NULL;
        rocksdb_flush_wal(w->db, 1, &e);
        rocksdb_free(e);
        rocksdb_close(w->db);
    }
    if (w->opts)
        rocksdb_options_destroy(w->opts);
    if (w->wsync)
        rocksdb_writeoptions_destroy(w->wsync);
    if (w->wnosync)
        rocksdb_writeoptions_destroy(w->wnosync);
    if (w->ropts)
        rocksdb_readoptions_destroy(w->ropts);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->committed);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static int check_segment(hp_str_t segment, hp_err_t *err)
{
    if (segment.n == 0 || segment.n > 255 || memchr(segment.p, 0, segment.n) != NULL)
        return hp_err_set(err, HP_EINVAL, "wal: bad segment name (%zu bytes)", segment.n);
    return 0;
}

int hp_wal_append_many(hp_wal_t *w, const hp_str_t *segments, const void *const *recs, const size_t *lens,
                       size_t n, hp_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = check_segment(segments[i], err);
        if (rc != 0)
            return rc;
    }
    if (n == 0)
        return 0;
    pending_t *p = hp_xcalloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++)
        p[i] = (pending_t){i + 1 < n ? &p[i + 1] : NULL, segments[i], recs[i], lens[i], 0, i == 0 ? err : NULL,
                           false};
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        rc = hp_err_set(err, HP_EUNAVAIL, "wal: closing");
    } else {
        if (w->tail)
            w->tail->next = &p[0];
        else
            w->head = &p[0];
        w->tail = &p[n - 1];
        pthread_cond_signal(&w->work);
        while (!p[n - 1].done) /* a list is committed in order, in one batch or more */
            pthread_cond_wait(&w->committed, &w->mu);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = p[i].rc;
        if (rc != 0 && p[0].rc == 0)
            hp_err_set(err, rc, "wal: append failed");
    }
    pthread_mutex_unlock(&w->mu);
    free(p);
    return rc;
}

int hp_wal_append(hp_wal_t *w, hp_str_t segment, const void *rec, size_t n, hp_err_t *err)
{
    return hp_wal_append_many(w, &segment, &rec, &n, 1, err);
}

int hp_wal_replay(hp_wal_t *w, hp_wal_replay_fn fn, void *ctx, hp_wal_replay_stats_t *stats, hp_err_t *err)
{
    memset(stats, 0, sizeof(*stats));
    rocksdb_iterator_t *it = rocksdb_create_iterator(w->db, w->ropts);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kn, vn;
        const char *k = rocksdb_iter_key(it, &kn);
        const char *v = rocksdb_iter_value(it, &vn);
        hp_str_t seg;
        uint64_t seq;
        stats->records++;
        stats->bytes += vn;
        if (!parse_key(k, kn, &seg, &seq) || fn(ctx, seg, (const uint8_t *)v, vn) != 0)
            stats->damaged++;
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? rdb_error(e, err, "replay") : 0;
}

int hp_wal_drop(hp_wal_t *w, hp_str_t segment, hp_err_t *err)
{
    int rc = check_segment(segment, err);
    if (rc != 0)
        return rc;
    /* every key of the segment is segment ‖ 0x00 ‖ seq: [seg‖00, seg‖01) */
    uint8_t lo[KEY_MAX], hi[KEY_MAX];
    memcpy(lo, segment.p, segment.n);
    memcpy(hi, segment.p, segment.n);
    lo[segment.n] = 0;
    hi[segment.n] = 1;
    size_t n = segment.n + 1;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(b, (const char *)lo, n, (const char *)hi, n);
    char *e = NULL;
    rocksdb_write(w->db, w->wsync, b, &e);
    rocksdb_writebatch_destroy(b);
    return e ? rdb_error(e, err, "drop") : 0;
}

uint64_t hp_wal_disk_bytes(hp_wal_t *w)
{
    char *v = rocksdb_property_value(w->db, "rocksdb.total-sst-files-size");
    uint64_t n = v ? strtoull(v, NULL, 10) : 0;
    rocksdb_free(v);
    char *l = rocksdb_property_value(w->db, "rocksdb.cur-size-all-mem-tables");
    n += l ? strtoull(l, NULL, 10) : 0;
    rocksdb_free(l);
    return n;
}
