/* One tenant's compaction cycle: index, partial blocks, crash recovery,
 * retention, deletion requests, merges, hard deletion — each step safe to
 * cut short at any point (see compactor.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compactor.h"
#include "hotpath/log.h"

/* Logs a failed step of tenant t. Returns false, for `return fail(…)`. */
static bool fail(const cmp_tenant_t *t, const char *what, const hp_err_t *err)
{
    char q[600];
    HP_ERROR("compaction step failed; retried next cycle", "tenant=%s step=%s err=%s", t->name, what,
             hp_log_q(q, sizeof(q), err->msg));
    return false;
}

void cmp_tenant_free(cmp_tenant_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_lineage; i++)
        free(t->lineage[i].src);
    free(t->lineage);
    hp_bucket_index_fini(&t->index);
    hp_u64map_fini(&t->clean);
    free(t->name);
    free(t);
}

int cmp_write_index(cmp_t *c, cmp_tenant_t *t, hp_err_t *err)
{
    t->index.updated_ms = hp_now_ms();
    return hp_bucket_index_write(c->store, t->name, &t->index, err);
}

int cmp_mark(cmp_t *c, cmp_tenant_t *t, const char *ulid, const char *reason, int64_t now_ms, hp_err_t *err)
{
    int rc = hp_block_mark_deletion(c->store, t->name, ulid, now_ms, err);
    if (rc != 0)
        return rc;
    hp_bi_block_t *b = hp_bucket_index_find(&t->index, ulid);
    if (b && b->deletion_mark_ms == 0)
        b->deletion_mark_ms = now_ms;
    char l[64];
    snprintf(l, sizeof(l), "reason=\"%s\"", reason);
    hp_metric_add(hp_metrics_counter(c->svc->metrics, "hotpath_compactor_blocks_marked_for_deletion_total",
                                     "Blocks marked for deletion, by reason.", l),
                  1);
    HP_INFO("block marked for deletion", "tenant=%s block=%s reason=%s", t->name, ulid, reason);
    return 0;
}

/* ---- lineage ---- */

/* Reads block ulid's compaction.sources from its meta.json. */
static int read_sources(cmp_t *c, const char *tenant, const char *ulid, cmp_lineage_t *l, hp_err_t *err)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/blocks/%s/meta.json", tenant, ulid);
    hp_buf_t b = HP_BUF_INIT;
    int rc = hp_objstore_get(c->store, key, &b, HP_BUCKET_SMALL_OBJECT_MAX, err);
    if (rc == 0)
        rc = hp_block_meta_sources(b.data, b.len, &l->src, &l->n, err);
    hp_buf_fini(&b);
    return rc;
}

const cmp_lineage_t *cmp_lineage(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *b, hp_err_t *err)
{
    for (size_t i = 0; i < t->n_lineage; i++)
        if (strcmp(t->lineage[i].ulid, b->ulid) == 0)
            return &t->lineage[i];
    cmp_lineage_t l;
    memset(&l, 0, sizeof(l));
    memcpy(l.ulid, b->ulid, sizeof(l.ulid));
    if (b->level <= 1) {
        l.src = hp_xcalloc(1, sizeof(*l.src));
        memcpy(l.src[0].s, b->ulid, sizeof(l.src[0].s));
        l.n = 1;
    } else if (read_sources(c, t->name, b->ulid, &l, err) != 0) {
        return NULL;
    }
    HP_GROW(t->lineage, t->cap_lineage, t->n_lineage + 1);
    t->lineage[t->n_lineage++] = l;
    return &t->lineage[t->n_lineage - 1];
}

/* Forgets the lineage of blocks no longer in the index. */
static void prune_lineage(cmp_tenant_t *t)
{
    size_t o = 0;
    for (size_t i = 0; i < t->n_lineage; i++) {
        if (hp_bucket_index_find(&t->index, t->lineage[i].ulid))
            t->lineage[o++] = t->lineage[i];
        else
            free(t->lineage[i].src);
    }
    t->n_lineage = o;
}

/* ---- steps ---- */

/* Rebuilds the index from the bucket (reusing what the last one knew). */
static bool step_index(cmp_t *c, cmp_tenant_t *t)
{
    hp_bucket_index_t fresh;
    hp_err_t err;
    if (t->index.n_blocks == 0 && t->index.updated_ms == 0) {
        hp_bucket_index_t stored;
        if (hp_bucket_index_read(c->store, t->name, &stored, &err) == 0) {
            hp_bucket_index_fini(&t->index);
            t->index = stored; /* a restart still reuses the entries it can */
        }
    }
    if (hp_bucket_index_build(c->store, t->name, &t->index, &fresh, &err) != 0)
        return fail(t, "build the bucket index", &err);
    hp_bucket_index_fini(&t->index);
    t->index = fresh;
    prune_lineage(t);
    if (cmp_write_index(c, t, &err) != 0)
        return fail(t, "write the bucket index", &err);
    return true;
}

/* The ms time a ULID was made at (its first 10 characters). */
static int64_t ulid_time_ms(const char *ulid)
{
    static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    int64_t t = 0;
    for (int i = 0; i < 10; i++)
        t = t * 32 + (int64_t)(strchr(crockford, ulid[i]) - crockford);
    return t;
}

/* Finishes deletions cut short (a mark without meta.json) and removes
 * abandoned uploads older than -compactor.partial-block-deletion-delay. */
static bool step_partial(cmp_t *c, cmp_tenant_t *t, int64_t now_ms)
{
    hp_bucket_block_files_t *f = NULL;
    size_t n = 0;
    hp_err_t err;
    bool ok = true;
    if (hp_bucket_block_files(c->store, t->name, &f, &n, &err) != 0)
        return fail(t, "list the blocks", &err);
    int64_t delay = c->cfg->compactor.partial_block_deletion_delay_ms;
    for (size_t i = 0; i < n; i++) {
        bool abandoned = delay > 0 && ulid_time_ms(f[i].ulid) < now_ms - delay;
        if (f[i].has_meta || !(f[i].has_mark || abandoned))
            continue;
        if (hp_bucket_block_delete(c->store, t->name, f[i].ulid, &err) != 0) {
            ok = fail(t, "delete a partial block", &err);
            continue;
        }
        hp_metric_add(c->m_partial_deleted, 1);
        HP_INFO("partial block deleted", "tenant=%s block=%s objects=%zu marked=%d", t->name, f[i].ulid,
                f[i].n_objects, f[i].has_mark);
    }
    free(f);
    return ok;
}

/* Marks the blocks that newer blocks cover: a crash between uploading a
 * merged block and marking its sources leaves exactly those. */
static bool step_recover(cmp_t *c, cmp_tenant_t *t, int64_t now_ms)
{
    hp_err_t err;
    size_t *idx = hp_xmalloc((t->index.n_blocks + 1) * sizeof(size_t));
    size_t n = cmp_covered(c, t, idx, &err);
    bool ok = n != SIZE_MAX || fail(t, "read the sources of compacted blocks", &err);
    char(*ulids)[27] = hp_xcalloc(ok ? n + 1 : 1, 27);
    for (size_t i = 0; ok && i < n; i++)
        memcpy(ulids[i], t->index.blocks[idx[i]].ulid, 27);
    for (size_t i = 0; ok && i < n; i++)
        if (cmp_mark(c, t, ulids[i], "covered", now_ms, &err) != 0)
            ok = fail(t, "mark a covered block", &err);
    if (ok && n > 0 && cmp_write_index(c, t, &err) != 0)
        ok = fail(t, "write the bucket index", &err);
    free(ulids);
    free(idx);
    return ok;
}

/* Marks blocks whose newest profile is older than the retention. */
static bool step_retention(cmp_t *c, cmp_tenant_t *t, int64_t now_ms)
{
    int64_t keep = cmp_retention_ms(c, t->name);
    hp_err_t err;
    bool ok = true, changed = false;
    if (keep <= 0)
        return true;
    for (size_t i = 0; i < t->index.n_blocks && ok; i++) {
        const hp_bi_block_t *b = &t->index.blocks[i];
        if (b->deletion_mark_ms != 0 || b->max_time_ms >= now_ms - keep)
            continue;
        char ulid[27];
        memcpy(ulid, b->ulid, sizeof(ulid));
        ok = cmp_mark(c, t, ulid, "retention", now_ms, &err) == 0 || fail(t, "mark an expired block", &err);
        changed = true;
    }
    if (changed && cmp_write_index(c, t, &err) != 0)
        ok = fail(t, "write the bucket index", &err);
    return ok;
}

/* Merges the blocks of every complete window, smallest range first; each
 * range is planned on the index the previous one left. */
static bool step_compact(cmp_t *c, cmp_tenant_t *t, const cmp_drop_t *drop, int64_t now_ms)
{
    bool ok = true;
    for (size_t r = 0; r < c->n_ranges && ok; r++) {
        size_t nb = t->index.n_blocks;
        size_t *idx = hp_xmalloc((nb + 1) * sizeof(size_t)), *ends = hp_xmalloc((nb + 1) * sizeof(size_t));
        size_t ng =
            cmp_plan(&t->index, c->ranges[r], now_ms, c->cfg->compactor.compaction_delay_ms, idx, ends);
        /* merging changes the index: copy each group's entries first */
        hp_bi_block_t *copy = hp_xmalloc((nb + 1) * sizeof(*copy));
        const hp_bi_block_t **group = hp_xmalloc((nb + 1) * sizeof(*group));
        for (size_t i = 0; i < (ng ? ends[ng - 1] : 0); i++)
            copy[i] = t->index.blocks[idx[i]];
        for (size_t g = 0, start = 0; g < ng && ok && !cmp_stopping(c); start = ends[g++]) {
            for (size_t i = start; i < ends[g]; i++)
                group[i - start] = &copy[i];
            hp_err_t err;
            if (cmp_merge(c, t, group, ends[g] - start, drop, "compacted", now_ms, NULL, &err) != 0)
                ok = fail(t, "merge blocks", &err);
        }
        free(group);
        free(copy);
        free(idx);
        free(ends);
    }
    return ok;
}

/* Deletes the blocks marked longer than -compactor.deletion-delay ago. */
static bool step_delete(cmp_t *c, cmp_tenant_t *t, int64_t now_ms)
{
    hp_err_t err;
    bool ok = true, changed = false;
    int64_t delay = c->cfg->compactor.deletion_delay_ms;
    for (size_t i = 0; i < t->index.n_blocks && ok;) {
        const hp_bi_block_t *b = &t->index.blocks[i];
        if (b->deletion_mark_ms == 0 || b->deletion_mark_ms > now_ms - delay) {
            i++;
            continue;
        }
        char ulid[27];
        memcpy(ulid, b->ulid, sizeof(ulid));
        if (hp_bucket_block_delete(c->store, t->name, ulid, &err) != 0) {
            ok = fail(t, "delete a marked block", &err);
            break;
        }
        hp_bucket_index_remove(&t->index, ulid);
        hp_metric_add(c->m_blocks_deleted, 1);
        HP_INFO("block deleted", "tenant=%s block=%s", t->name, ulid);
        changed = true;
    }
    prune_lineage(t);
    if (changed && cmp_write_index(c, t, &err) != 0)
        ok = fail(t, "write the bucket index", &err);
    return ok;
}

bool cmp_tenant_cycle(cmp_t *c, cmp_tenant_t *t, int64_t now_ms)
{
    if (!step_index(c, t))
        return false;
    bool ok = step_partial(c, t, now_ms);
    if (!step_recover(c, t, now_ms))
        return false; /* merging again what a newer block holds would only be undone */
    ok &= step_retention(c, t, now_ms);
    cmp_request_t *reqs = NULL;
    size_t nr = 0;
    hp_err_t err;
    hp_err_clear(&err);
    if (cmp_requests_load(c, t->name, &reqs, &nr, &err) != 0) {
        cmp_requests_free(reqs, nr);
        fail(t, "read the deletion requests", &err);
        return false; /* merging without them could keep what they delete */
    }
    ok &= cmp_apply_requests(c, t, reqs, nr, now_ms);
    cmp_drop_t drop = {reqs, nr};
    ok &= step_compact(c, t, &drop, now_ms);
    ok &= step_delete(c, t, now_ms);
    cmp_requests_free(reqs, nr);
    return ok;
}
