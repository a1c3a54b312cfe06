/* The blocks this ingester flushed: written to its local disk, opened for
 * queries (as transient heads) until store-gateways take over. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "ingester.h"

/* ---- local files ---- */

static int write_file(const char *dir, const char *name, const void *p, size_t n, hp_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hp_err_set(err, HP_EUNAVAIL, "cannot create %s: %s", path, strerror(errno));
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return hp_err_set(err, HP_EUNAVAIL, "cannot write %s: %s", path, strerror(e));
        }
        c += w;
        n -= (size_t)w;
    }
    int rc = fsync(fd) == 0 ? 0 : hp_err_set(err, HP_EUNAVAIL, "cannot sync %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int mkdirs(const char *dir, hp_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return hp_err_set(err, HP_EUNAVAIL, "cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return hp_err_set(err, HP_EUNAVAIL, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* A block directory is complete once renamed from its temporary name: a
 * crash mid-write leaves only a ".tmp-" directory, removed at the next start. */
int ing_block_write_local(const char *dir, const hp_buf_t *data, const hp_buf_t *meta_json, const char *segment,
                          hp_err_t *err)
{
    char tmp[4200], parent[4096];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        return hp_err_set(err, HP_EINVAL, "bad block directory %s", dir);
    *slash = 0;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", parent, slash + 1);
    int rc = mkdirs(tmp, err);
    if (rc == 0)
        rc = write_file(tmp, "data", data->data, data->len, err);
    if (rc == 0)
        rc = write_file(tmp, "meta.json", meta_json->data, meta_json->len, err);
    if (rc == 0)
        rc = write_file(tmp, "segment", segment, strlen(segment), err);
    if (rc == 0 && rename(tmp, dir) != 0)
        rc = hp_err_set(err, HP_EUNAVAIL, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc == 0)
        fsync_dir(parent);
    else
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* Reads a small local file whole (at most max bytes) into buf, NUL-terminated. */
static int read_small(const char *dir, const char *name, char *buf, size_t max, size_t *n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    *n = fread(buf, 1, max - 1, f);
    buf[*n] = 0;
    fclose(f);
    return 0;
}

/* ---- blocks ---- */

typedef struct fd_ctx {
    int fd;
} fd_ctx_t;

static int fetch_local(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    const ing_block_t *b = ctx;
    hp_buf_reserve(out, len);
    uint64_t got = 0;
    while (got < len) {
        ssize_t r = pread(b->fd, out->data + out->len + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return hp_err_set(err, HP_EINVAL, "block %s: short read at %llu", b->meta.ulid,
                              (unsigned long long)(off + got));
        got += (uint64_t)r;
    }
    out->len += len;
    return 0;
}

static void block_free(ing_block_t *b)
{
    hp_block_close(b->b);
    hp_symdb_free(b->symdb);
    if (b->fd >= 0)
        close(b->fd);
    pthread_mutex_destroy(&b->mu);
    free(b->tenant);
    free(b);
}

void ing_block_unref(ing_block_t *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        block_free(b);
}

/* Opens the block in dir: meta.json, the WAL segment it came from, the
 * upload marker, and the data file's index. */
int ing_block_open(ing_t *g, const char *tenant, const char *dir, ing_block_t **out, hp_err_t *err)
{
    ing_block_t *b = hp_xcalloc(1, sizeof(*b));
    b->fd = -1;
    pthread_mutex_init(&b->mu, NULL);
    atomic_store(&b->refs, 1);
    b->tenant = hp_xstrdup(tenant);
    snprintf(b->dir, sizeof(b->dir), "%s", dir);
    char meta[65536];
    size_t n;
    int rc = 0;
    if (read_small(dir, "meta.json", meta, sizeof(meta), &n) != 0)
        rc = hp_err_set(err, HP_EINVAL, "%s: no meta.json", dir);
    if (rc == 0)
        rc = hp_block_meta_parse(meta, n, &b->meta, err);
    if (rc == 0 && read_small(dir, "segment", b->segment, sizeof(b->segment), &n) != 0)
        rc = hp_err_set(err, HP_EINVAL, "%s: no segment file", dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/uploaded", dir);
    struct stat st;
    bool up = stat(path, &st) == 0;
    atomic_store(&b->uploaded, up);
    atomic_store(&b->uploaded_ms, up ? (int64_t)st.st_mtime * 1000 : 0);
    snprintf(path, sizeof(path), "%s/data", dir);
    if (rc == 0 && (b->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = hp_err_set(err, HP_EINVAL, "cannot open %s: %s", path, strerror(errno));
    if (rc == 0)
        rc = hp_block_open(b->meta.ulid, b->meta.data_bytes, fetch_local, b, &b->b, err);
    if (rc != 0) {
        block_free(b);
        return rc;
    }
    b->id = atomic_fetch_add(&g->next_head_id, 1);
    *out = b;
    return 0;
}

static void remember_segment(ing_t *g, const char *segment)
{
    g->flushed_segments = hp_xrealloc(g->flushed_segments, (g->n_flushed_segments + 1) * sizeof(char *));
    g->flushed_segments[g->n_flushed_segments++] = hp_xstrdup(segment);
}

/* Loads <blocks_dir>/<tenant>/<ULID> directories; a leftover temporary
 * directory (a crash mid-flush) is removed: its head is still in the WAL. */
static void load_tenant_dir(ing_t *g, const char *tenant, const char *tdir)
{
    DIR *d = opendir(tdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && strncmp(e->d_name, ".tmp-", 5) != 0)
            continue;
        char dir[4608];
        int n = snprintf(dir, sizeof(dir), "%s/%s", tdir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(dir))
            continue;
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            continue;
        }
        hp_err_t err;
        ing_block_t *b = NULL;
        int rc = ing_block_open(g, tenant, dir, &b, &err);
        if (rc == 0 && !atomic_load(&b->uploaded))
            rc = hp_block_verify(b->b, &err); /* it is about to be uploaded: trust nothing */
        if (rc != 0) {
            /* uploaded: the object store has it; not: its WAL segment does,
             * and the replay that follows restores it as a head */
            char q[600];
            HP_ERROR("removing a damaged local block", "dir=%s err=%s", dir, hp_log_q(q, sizeof(q), err.msg));
            hp_metric_add(g->m_damaged_blocks, 1);
            if (b)
                ing_block_unref(b);
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            continue;
        }
        ing_tenant_t *t = ing_tenant(g, hp_str_c(tenant), true);
        pthread_mutex_lock(&t->lock);
        HP_GROW(t->blocks, t->cap_blocks, t->n_blocks + 1);
        t->blocks[t->n_blocks++] = b;
        pthread_mutex_unlock(&t->lock);
        hp_metric_add(g->m_blocks, 1);
        remember_segment(g, b->segment);
    }
    if (d)
        closedir(d);
}

int ing_blocks_load(ing_t *g, hp_err_t *err)
{
    int rc = mkdirs(g->blocks_dir, err);
    if (rc != 0)
        return rc;
    DIR *d = opendir(g->blocks_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        hp_err_t terr;
        if (e->d_name[0] == '.' || hp_tenant_validate(hp_str_c(e->d_name), &terr) != 0)
            continue;
        char tdir[4608];
        snprintf(tdir, sizeof(tdir), "%s/%s", g->blocks_dir, e->d_name);
        load_tenant_dir(g, e->d_name, tdir);
    }
    if (d)
        closedir(d);
    HP_INFO("local blocks loaded", "blocks=%zu", g->n_flushed_segments);
    return 0;
}

/* ---- blocks as transient heads ---- */

static int block_symdb(ing_block_t *b, hp_symdb_t **out, hp_err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    if (b->symdb == NULL)
        rc = hp_block_read_symbols(b->b, &b->symdb, err);
    *out = b->symdb;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void ing_block_damaged(ing_t *g, ing_block_t *b, const hp_err_t *why)
{
    int was = 0;
    if (!atomic_compare_exchange_strong(&b->damaged, &was, 1))
        return;
    char q[600];
    HP_ERROR("local block damaged; queries skip it", "tenant=%s block=%s uploaded=%d err=%s", b->tenant,
             b->meta.ulid, atomic_load(&b->uploaded), hp_log_q(q, sizeof(q), why->msg));
    hp_metric_add(g->m_damaged_blocks, 1);
}

hp_head_t *ing_block_source(ing_t *g, ing_block_t *b, const hp_select_t *q)
{
    if (atomic_load(&b->damaged))
        return NULL;
    hp_head_t *h;
    hp_symdb_t *db = NULL;
    hp_err_t err;
    int rc = q ? block_symdb(b, &db, &err) : 0;
    if (rc == 0)
        rc = hp_head_from_block(b->b, db, b->id, b->tenant, q, &h, &err);
    if (rc != 0) {
        ing_block_damaged(g, b, &err);
        return NULL;
    }
    return h;
}

void ing_sources_in_range(ing_tenant_t *t, int64_t start_ns, int64_t end_ns, ing_sources_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&t->lock);
    out->heads = hp_xmalloc((t->n_heads + 1) * sizeof(*out->heads));
    out->blocks = hp_xmalloc((t->n_blocks + 1) * sizeof(*out->blocks));
    for (size_t i = 0; i < t->n_heads; i++) {
        hp_head_t *h = t->heads[i];
        if (h->end_ns > start_ns && h->start_ns <= end_ns) {
            atomic_fetch_add(&h->refs, 1);
            out->heads[out->n_heads++] = h;
        }
    }
    for (size_t i = 0; i < t->n_blocks; i++) {
        ing_block_t *b = t->blocks[i];
        if (hp_ms_to_ns_sat(b->meta.max_time_ms) + 999999 >= start_ns &&
            hp_ms_to_ns_sat(b->meta.min_time_ms) <= end_ns) {
            atomic_fetch_add(&b->refs, 1);
            out->blocks[out->n_blocks++] = b;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

void ing_sources_release(ing_sources_t *s)
{
    for (size_t i = 0; i < s->n_heads; i++)
        hp_head_unref(s->heads[i]);
    for (size_t i = 0; i < s->n_blocks; i++)
        ing_block_unref(s->blocks[i]);
    free(s->heads);
    free(s->blocks);
    memset(s, 0, sizeof(*s));
}

/* ---- the query engine's provider ---- */

static void qe_sources(void *ctx, hp_str_t tenant, int64_t start_ns, int64_t end_ns, hp_qe_sources_t *out)
{
    ing_tenant_t *t = ing_tenant(ctx, tenant, false);
    if (t == NULL)
        return;
    ing_sources_t src;
    ing_sources_in_range(t, start_ns, end_ns, &src);
    for (size_t i = 0; i < src.n_heads; i++) /* the references pass to out */
        hp_qe_sources_add(out, src.heads[i]->id, src.heads[i], NULL);
    for (size_t i = 0; i < src.n_blocks; i++)
        hp_qe_sources_add(out, src.blocks[i]->id, NULL, src.blocks[i]);
    free(src.heads);
    free(src.blocks);
}

static int qe_open_block(void *ctx, void *block, const hp_select_t *q, hp_head_t **out, hp_err_t *err)
{
    (void)err; /* local files: a failed read is a damaged block, skipped */
    *out = ing_block_source(ctx, block, q);
    return 0;
}

static void qe_release_block(void *ctx, void *block)
{
    (void)ctx;
    ing_block_unref(block);
}

void ing_qe_provider(ing_t *g, hp_qe_provider_t *p)
{
    *p = (hp_qe_provider_t){qe_sources, qe_open_block, qe_release_block, g};
}
