/* Flushing: a head whose window is over and that has been idle, the
 * largest heads when memory runs over budget, and every head on shutdown,
 * become blocks — written to local disk, uploaded to the object store,
 * and only then dropped from the WAL. Local blocks serve queries until
 * they are older than -querier.query-store-after. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "ingester.h"

/* ---- head → block ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}


static int cmp_series_labels(const void *a, const void *b)
{
    const hp_block_series_in_t *x = a, *y = b;
    for (size_t i = 0; i < x->labels->n && i < y->labels->n; i++) {
        int c = hp_str_cmp(x->labels->v[i].name, y->labels->v[i].name);
        if (c == 0)
            c = hp_str_cmp(x->labels->v[i].value, y->labels->v[i].value);
        if (c)
            return c;
    }
    return (x->labels->n > y->labels->n) - (x->labels->n < y->labels->n);
}

/* Encodes head h (read lock held) as a block. */
static int encode_head(const hp_head_t *h, hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_err_t *err)
{
    hp_block_series_in_t *series = hp_xcalloc(h->n_series + 1, sizeof(*series));
    hp_block_profile_in_t **profiles = hp_xcalloc(h->n_series + 1, sizeof(*profiles));
    size_t n = 0;
    for (size_t i = 0; i < h->n_series; i++) {
        const hp_series_t *s = h->series[i];
        if (s->n_profiles == 0)
            continue;
        profiles[n] = hp_xmalloc(s->n_profiles * sizeof(hp_block_profile_in_t));
        for (size_t k = 0; k < s->n_profiles; k++) {
            const hp_series_profile_t *p = &s->profiles[k];
            hp_block_profile_in_t *o = &profiles[n][k];
            o->t = p->t;
            memcpy(o->id, p->id, 16);
            o->total = p->total;
            o->stacks = s->stacks + p->off;
            o->values = s->values + p->off;
            o->spans = s->spans ? s->spans + p->off : NULL;
            o->n = p->n;
        }
        series[n] = (hp_block_series_in_t){&s->labels, profiles[n], s->n_profiles, s->period};
        n++;
    }
    hp_qsort(series, n, sizeof(*series), cmp_series_labels);
    int rc = hp_block_write(h->symdb, series, n, meta, data, meta_json, err);
    for (size_t i = 0; i < n; i++)
        free(profiles[i]);
    free(profiles);
    free(series);
    return rc;
}

/* Waits until no push holds h between its WAL append and its commit. */
static void wait_writers(hp_head_t *h)
{
    pthread_mutex_lock(&h->wmu);
    while (h->writers > 0)
        pthread_cond_wait(&h->wcv, &h->wmu);
    pthread_mutex_unlock(&h->wmu);
}

/* Removes h from t's heads (dropping the tenant's reference) and adds b,
 * in one step under the tenant's lock: a query sees one or the other. */
static void swap_head_for_block(ing_tenant_t *t, hp_head_t *h, ing_block_t *b)
{
    pthread_mutex_lock(&t->lock);
    size_t o = 0;
    bool had = false;
    for (size_t i = 0; i < t->n_heads; i++) {
        if (t->heads[i] == h)
            had = true;
        else
            t->heads[o++] = t->heads[i];
    }
    t->n_heads = o;
    if (b) {
        HP_GROW(t->blocks, t->cap_blocks, t->n_blocks + 1);
        t->blocks[t->n_blocks++] = b;
    }
    pthread_mutex_unlock(&t->lock);
    if (had)
        hp_head_unref(h);
}

/* Uploads block b (data, then meta.json, which makes it visible), then
 * drops its WAL segment and marks it uploaded locally. */
static int upload(ing_t *g, ing_block_t *b, hp_err_t *err)
{
    char key[600], path[4200];
    if (atomic_load(&b->damaged))
        return hp_err_set(err, HP_EINVAL, "block %s is damaged; its WAL segment is kept for the next start",
                          b->meta.ulid);
    /* the local copy must be what was written: once uploaded, the WAL
     * segment goes */
    int rc = hp_block_verify(b->b, err);
    if (rc != 0) {
        ing_block_damaged(g, b, err);
        return rc;
    }
    hp_buf_t buf = HP_BUF_INIT;
    const char *parts[] = {"data", "meta.json"};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/%s", b->dir, parts[i]);
        snprintf(key, sizeof(key), "%s/blocks/%s/%s", b->tenant, b->meta.ulid, parts[i]);
        FILE *f = fopen(path, "rb");
        hp_buf_reset(&buf);
        if (f == NULL) {
            rc = hp_err_set(err, HP_EINTERNAL, "cannot read %s", path);
            break;
        }
        char chunk[65536];
        size_t r;
        while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
            hp_buf_append(&buf, chunk, r);
        fclose(f);
        rc = hp_objstore_put(g->store, key, buf.data ? buf.data : (const uint8_t *)"", buf.len, err);
    }
    hp_buf_fini(&buf);
    if (rc == 0)
        rc = hp_wal_drop(g->wal, hp_str_c(b->segment), err);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/uploaded", b->dir);
        FILE *f = fopen(path, "wb");
        if (f)
            fclose(f);
        atomic_store(&b->uploaded_ms, hp_now_ms());
        atomic_store(&b->uploaded, 1);
        hp_metric_add(g->m_uploads, 1);
        HP_INFO("block uploaded", "tenant=%s block=%s", b->tenant, b->meta.ulid);
    } else {
        hp_metric_add(g->m_upload_errors, 1);
    }
    return rc;
}

/* Flushes head h of tenant t: no more writes, wait for those in flight,
 * write the block locally, swap it in for the head, upload it. */
static int flush_head(ing_t *g, ing_tenant_t *t, hp_head_t *h, hp_err_t *err)
{
    int open = HP_HEAD_OPEN;
    pthread_mutex_lock(&t->lock); /* no new writer takes h after this */
    bool mine = atomic_compare_exchange_strong(&h->state, &open, HP_HEAD_FLUSHING);
    pthread_mutex_unlock(&t->lock);
    if (!mine)
        return 0;
    wait_writers(h);
    ing_active_remove(t, h); /* it takes no writes: its series are active only where another head has them */
    if (h->n_profiles == 0) {
        swap_head_for_block(t, h, NULL);
        return hp_wal_drop(g->wal, hp_str_c(h->segment), err);
    }
    hp_block_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    hp_ulid_new(hp_now_ms(), meta.ulid);
    snprintf(meta.tenant, sizeof(meta.tenant), "%s", t->name);
    meta.level = 1;
    snprintf(meta.source, sizeof(meta.source), "ingester");
    hp_buf_t data = HP_BUF_INIT, json = HP_BUF_INIT;
    pthread_rwlock_rdlock(&h->lock);
    int rc = encode_head(h, &meta, &data, &json, err);
    pthread_rwlock_unlock(&h->lock);
    char dir[4608];
    snprintf(dir, sizeof(dir), "%s/%s/%s", g->blocks_dir, t->name, meta.ulid);
    if (rc == 0)
        rc = ing_block_write_local(dir, &data, &json, h->segment, err);
    hp_buf_fini(&data);
    hp_buf_fini(&json);
    ing_block_t *b = NULL;
    if (rc == 0)
        rc = ing_block_open(g, t->name, dir, &b, err);
    if (rc != 0) {
        /* try again later; the WAL still has it all, and no local block may
         * claim its segment (a restart would skip the segment's records) */
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        pthread_rwlock_wrlock(&h->lock);
        ing_active_add(t, h, 0); /* open again: its series are active again */
        pthread_rwlock_unlock(&h->lock);
        atomic_store(&h->state, HP_HEAD_OPEN);
        hp_metric_add(g->m_flush_errors, 1);
        return rc;
    }
    b->id = h->id; /* deduplication sessions taken on the head still find their profiles */
    swap_head_for_block(t, h, b);
    hp_metric_add(g->m_blocks, 1);
    hp_metric_add(g->m_flushes, 1);
    HP_INFO("head flushed", "tenant=%s block=%s series=%llu profiles=%llu bytes=%llu", t->name, b->meta.ulid,
            (unsigned long long)b->meta.num_series, (unsigned long long)b->meta.num_profiles,
            (unsigned long long)b->meta.data_bytes);
    hp_err_t uerr;
    if (upload(g, b, &uerr) != 0) {
        char q[600];
        HP_WARN("block upload failed; will retry", "block=%s err=%s", b->meta.ulid, hp_log_q(q, sizeof(q), uerr.msg));
    }
    return 0;
}

/* ---- the loop ---- */

typedef struct candidate {
    ing_tenant_t *t;
    hp_head_t *h; /* a reference is held */
    size_t bytes;
} candidate_t;

static int cmp_bytes_desc(const void *a, const void *b)
{
    size_t x = ((const candidate_t *)a)->bytes, y = ((const candidate_t *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Every open head, with its size; total set to their sum. */
static size_t open_heads(ing_t *g, candidate_t **out, size_t *total)
{
    size_t n = 0, cap = 0;
    candidate_t *v = NULL;
    *total = 0;
    pthread_mutex_lock(&g->tenants_lock);
    for (size_t ti = 0; ti < g->n_tenants; ti++) {
        ing_tenant_t *t = g->tenants[ti];
        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->n_heads; i++) {
            hp_head_t *h = t->heads[i];
            if (atomic_load(&h->state) != HP_HEAD_OPEN)
                continue;
            atomic_fetch_add(&h->refs, 1);
            HP_GROW(v, cap, n + 1);
            v[n++] = (candidate_t){t, h, atomic_load(&h->bytes)};
            *total += v[n - 1].bytes;
        }
        pthread_mutex_unlock(&t->lock);
    }
    pthread_mutex_unlock(&g->tenants_lock);
    *out = v;
    return n;
}

static bool due(const ing_t *g, const hp_head_t *h, bool all)
{
    if (all)
        return true;
    int64_t idle = hp_mono_ms() - atomic_load(&h->last_write_ms);
    return hp_now_ns() >= h->end_ns && idle >= g->cfg->ingester.flush_idle_period_ms;
}

/* Flushes the heads that are due, then the largest while over budget. */
static void flush_heads(ing_t *g, bool all, int64_t deadline_ms)
{
    candidate_t *c;
    size_t total, n = open_heads(g, &c, &total);
    hp_qsort(c, n, sizeof(*c), cmp_bytes_desc);
    size_t budget = g->cfg->ingester.max_head_bytes > 0 ? (size_t)g->cfg->ingester.max_head_bytes : SIZE_MAX;
    hp_metric_set(g->m_bytes, (double)total);
    for (size_t i = 0; i < n; i++) {
        bool over = total > budget;
        if ((due(g, c[i].h, all) || over) && hp_mono_ms() < deadline_ms) {
            hp_err_t err;
            if (flush_head(g, c[i].t, c[i].h, &err) != 0) {
                char q[600];
                HP_ERROR("flush failed", "tenant=%s err=%s", c[i].t->name, hp_log_q(q, sizeof(q), err.msg));
            } else {
                total -= HP_MIN(total, c[i].bytes);
            }
        }
        hp_head_unref(c[i].h);
    }
    free(c);
}

/* Uploads blocks still waiting, and drops uploaded blocks that store-
 * gateways now serve: older than query-store-after, and uploaded long
 * enough ago for the store-gateways to have seen them. */
static void tend_blocks(ing_t *g, int64_t deadline_ms)
{
    int64_t horizon_ms = hp_now_ms() - g->cfg->querier.query_store_after_ms;
    /* a block reaches store-gateways through the bucket index (rewritten
     * every compaction interval) and their next sync: until then it stays
     * here too, however old its data */
    int64_t visible_after_ms =
        2 * (g->cfg->compactor.compaction_interval_ms + g->cfg->store_gateway.sync_interval_ms);
    pthread_mutex_lock(&g->tenants_lock);
    size_t nt = g->n_tenants;
    ing_tenant_t **ts = hp_xmalloc((nt + 1) * sizeof(*ts));
    if (nt > 0)
        memcpy(ts, g->tenants, nt * sizeof(*ts));
    pthread_mutex_unlock(&g->tenants_lock);
    for (size_t ti = 0; ti < nt; ti++) {
        ing_tenant_t *t = ts[ti];
        ing_sources_t src;
        ing_sources_in_range(t, INT64_MIN, INT64_MAX, &src);
        for (size_t i = 0; i < src.n_blocks; i++) {
            ing_block_t *b = src.blocks[i];
            hp_err_t err;
            if (!atomic_load(&b->uploaded) && !atomic_load(&b->damaged) && hp_mono_ms() < deadline_ms &&
                upload(g, b, &err) != 0) {
                char q[600];
                HP_WARN("block upload failed; will retry", "block=%s err=%s", b->meta.ulid,
                        hp_log_q(q, sizeof(q), err.msg));
            }
            if (atomic_load(&b->uploaded) && b->meta.max_time_ms < horizon_ms &&
                hp_now_ms() - atomic_load(&b->uploaded_ms) >= visible_after_ms) {
                pthread_mutex_lock(&t->lock);
                size_t o = 0;
                for (size_t k = 0; k < t->n_blocks; k++)
                    if (t->blocks[k] != b)
                        t->blocks[o++] = t->blocks[k];
                bool had = o != t->n_blocks;
                t->n_blocks = o;
                pthread_mutex_unlock(&t->lock);
                if (had) {
                    nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* open files stay readable */
                    hp_metric_add(g->m_blocks, -1);
                    ing_block_unref(b);
                }
            }
        }
        ing_sources_release(&src);
    }
    free(ts);
}

static void *flush_main(void *arg)
{
    ing_t *g = arg;
    pthread_mutex_lock(&g->flush_mu);
    while (!g->flush_stop) {
        pthread_mutex_unlock(&g->flush_mu);
        flush_heads(g, false, INT64_MAX);
        tend_blocks(g, INT64_MAX);
        pthread_mutex_lock(&g->flush_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + HP_MAX(g->cfg->ingester.flush_check_period_ms, 50) * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        if (!g->flush_stop)
            pthread_cond_timedwait(&g->flush_cv, &g->flush_mu, &ts);
    }
    pthread_mutex_unlock(&g->flush_mu);
    return NULL;
}

int ing_flush_start(ing_t *g, hp_err_t *err)
{
    if (pthread_create(&g->flush_thread, NULL, flush_main, g) != 0)
        return hp_err_set(err, HP_EINTERNAL, "cannot start the flush thread");
    g->flush_started = true;
    return 0;
}

void ing_flush_stop(ing_t *g, bool flush_all)
{
    if (g->flush_started) {
        pthread_mutex_lock(&g->flush_mu);
        g->flush_stop = true;
        pthread_cond_signal(&g->flush_cv);
        pthread_mutex_unlock(&g->flush_mu);
        pthread_join(g->flush_thread, NULL);
        g->flush_started = false;
    }
    if (flush_all && g->wal && g->store) {
        int64_t deadline = hp_mono_ms() + g->cfg->ingester.leave_timeout_ms;
        HP_INFO("flushing every head before exit", "timeout_ms=%lld", (long long)g->cfg->ingester.leave_timeout_ms);
        flush_heads(g, true, deadline);
        tend_blocks(g, deadline);
    }
}
