/* Planning: which blocks to merge (per aligned window of each block
 * range), and which blocks a newer block already covers. */
#include <stdlib.h>
#include <string.h>

#include "compactor.h"

/* Floor of t / r * r, for negative times too. */
static int64_t window_start(int64_t t, int64_t r)
{
    int64_t q = t / r;
    return (t % r < 0 ? q - 1 : q) * r;
}

size_t cmp_plan(const hp_bucket_index_t *bi, int64_t r, int64_t now_ms, int64_t delay_ms, size_t *idx,
                size_t *ends)
{
    size_t n_idx = 0, n_groups = 0, group_start = 0;
    int64_t cur = INT64_MIN;
    /* blocks come sorted by min time: a window's blocks are adjacent */
    for (size_t i = 0; i <= bi->n_blocks; i++) {
        const hp_bi_block_t *b = i < bi->n_blocks ? &bi->blocks[i] : NULL;
        int64_t ws = b ? window_start(b->min_time_ms, r) : INT64_MAX;
        bool fits = b && b->deletion_mark_ms == 0 && b->max_time_ms - ws < r;
        if (b && !fits)
            continue;
        if (ws != cur || n_idx - group_start == CMP_MAX_GROUP) {
            /* close the group of window cur: two blocks or more, window over */
            bool done = cur != INT64_MIN && cur <= now_ms - delay_ms - r;
            if (n_idx - group_start >= 2 && done)
                ends[n_groups++] = n_idx;
            else
                n_idx = group_start;
            group_start = n_idx;
            cur = ws;
        }
        if (b)
            idx[n_idx++] = i;
    }
    return n_groups;
}

/* Whether every ULID of a (sorted) is in b (sorted). */
static bool subset(const cmp_lineage_t *a, const cmp_lineage_t *b)
{
    size_t j = 0;
    for (size_t i = 0; i < a->n; i++) {
        while (j < b->n && strcmp(b->src[j].s, a->src[i].s) < 0)
            j++;
        if (j == b->n || strcmp(b->src[j].s, a->src[i].s) != 0)
            return false;
    }
    return true;
}

/* Whether block y is newer than x: a higher level, or the same level and
 * a larger ULID (two compactions of the same sources: the later wins). */
static bool newer(const hp_bi_block_t *y, const hp_bi_block_t *x)
{
    return y->level > x->level || (y->level == x->level && strcmp(y->ulid, x->ulid) > 0);
}

size_t cmp_covered(cmp_t *c, cmp_tenant_t *t, size_t *out, hp_err_t *err)
{
    const hp_bucket_index_t *bi = &t->index;
    size_t n = 0;
    const cmp_lineage_t **lin = hp_xcalloc(bi->n_blocks + 1, sizeof(*lin));
    for (size_t i = 0; i < bi->n_blocks; i++)
        if (bi->blocks[i].deletion_mark_ms == 0 &&
            (lin[i] = cmp_lineage(c, t, &bi->blocks[i], err)) == NULL) {
            free(lin);
            return SIZE_MAX;
        }
    for (size_t i = 0; i < bi->n_blocks; i++) {
        if (lin[i] == NULL)
            continue;
        for (size_t j = 0; j < bi->n_blocks; j++) {
            if (j == i || lin[j] == NULL || !newer(&bi->blocks[j], &bi->blocks[i]))
                continue;
            if (subset(lin[i], lin[j])) {
                out[n++] = i;
                break;
            }
        }
    }
    free(lin);
    return n;
}
