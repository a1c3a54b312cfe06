/* Blocks read from the object store by byte range, merged (or rewritten
 * without what deletion requests remove), and uploaded: data first, then
 * meta.json, then the index naming the new block, and only then the
 * marks on its inputs. Also the debug view of a block's contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compactor.h"
#include "hotpath/block_merge.h"
#include "hotpath/log.h"

/* A block opened from the store. */
typedef struct sblock {
    hp_objstore_t *store;
    char key[600]; /* <tenant>/blocks/<ulid>/data */
    hp_block_t *b;
    hp_symdb_t *syms;
    hp_block_meta_t meta;
} sblock_t;

/* hp_block_fetch_fn over the object store (ranges appended to out). */
static int store_fetch(void *ctx, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    const sblock_t *s = ctx;
    if (out->len == 0)
        return hp_objstore_get_range(s->store, s->key, off, len, out, err);
    hp_buf_t tmp = HP_BUF_INIT;
    int rc = hp_objstore_get_range(s->store, s->key, off, len, &tmp, err);
    if (rc == 0)
        hp_buf_append(out, tmp.data, tmp.len);
    hp_buf_fini(&tmp);
    return rc;
}

/* Opens block ulid of tenant (data_bytes long), with its symbols when
 * asked. s must be zeroed; close with sblock_close. */
static int sblock_open(cmp_t *c, const char *tenant, const char *ulid, uint64_t data_bytes, bool symbols,
                       sblock_t *s, hp_err_t *err)
{
    s->store = c->store;
    snprintf(s->key, sizeof(s->key), "%s/blocks/%s/data", tenant, ulid);
    int rc = hp_block_open(ulid, data_bytes, store_fetch, s, &s->b, err);
    if (rc == 0 && symbols)
        rc = hp_block_read_symbols(s->b, &s->syms, err);
    return rc;
}

static void sblock_close(sblock_t *s)
{
    hp_symdb_free(s->syms);
    hp_block_close(s->b);
    s->syms = NULL;
    s->b = NULL;
}

/* ---- what deletion requests drop ---- */

/* Whether profile time t_ms of a series labelled ls falls under r. */
static bool request_covers(const cmp_request_t *r, const hp_labels_t *ls, int64_t t_ms)
{
    if (strcmp(r->state, "pending") != 0)
        return false;
    if (strcmp(r->kind, "tenant") == 0)
        return true;
    return t_ms >= r->start_ms && t_ms <= r->end_ms && hp_selector_matches(&r->sel, ls);
}

bool cmp_drop_profile(void *ctx, const hp_labels_t *labels, int64_t time_ns)
{
    const cmp_drop_t *d = ctx;
    int64_t q = time_ns / 1000000, ms = time_ns % 1000000 < 0 ? q - 1 : q;
    for (size_t i = 0; d && i < d->n; i++)
        if (request_covers(&d->reqs[i], labels, ms))
            return true;
    return false;
}

/* ---- merging ---- */

/* Puts data then meta.json: the block exists once meta.json does. */
static int upload(cmp_t *c, const char *tenant, const char *ulid, const hp_buf_t *data, const hp_buf_t *json,
                  hp_err_t *err)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/blocks/%s/data", tenant, ulid);
    int rc = hp_objstore_put(c->store, key, data->data, data->len, err);
    snprintf(key, sizeof(key), "%s/blocks/%s/meta.json", tenant, ulid);
    if (rc == 0)
        rc = hp_objstore_put(c->store, key, json->data, json->len, err);
    if (rc == 0)
        hp_metric_add(c->m_bytes_written, (double)(data->len + json->len));
    return rc;
}

/* Records the new block in t's index and lineage, and writes the index. */
static int add_block(cmp_t *c, cmp_tenant_t *t, const hp_block_meta_t *meta, hp_err_t *err)
{
    hp_bi_block_t e;
    hp_bi_block_from_meta(meta, &e);
    hp_bucket_index_put(&t->index, &e);
    cmp_lineage_t l;
    memset(&l, 0, sizeof(l));
    memcpy(l.ulid, meta->ulid, sizeof(l.ulid));
    l.src = hp_xmalloc((meta->n_sources + 1) * sizeof(*l.src));
    memcpy(l.src, meta->sources, meta->n_sources * sizeof(*l.src));
    l.n = meta->n_sources;
    HP_GROW(t->lineage, t->cap_lineage, t->n_lineage + 1);
    t->lineage[t->n_lineage++] = l;
    return cmp_write_index(c, t, err);
}

/* Opens every block of the group with its symbols, filling in[]. */
static int open_group(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *const *group, size_t n, sblock_t *sb,
                      hp_block_merge_input_t *in, hp_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const cmp_lineage_t *l = cmp_lineage(c, t, group[i], err);
        if (l == NULL)
            return err->code ? err->code : HP_EINTERNAL;
        hp_block_meta_t *m = &sb[i].meta;
        memcpy(m->ulid, group[i]->ulid, sizeof(m->ulid));
        snprintf(m->tenant, sizeof(m->tenant), "%s", t->name);
        m->level = group[i]->level;
        m->sources = l->src;
        m->n_sources = l->n;
        int rc = sblock_open(c, t->name, group[i]->ulid, group[i]->data_bytes, true, &sb[i], err);
        if (rc != 0)
            return rc;
        in[i] = (hp_block_merge_input_t){sb[i].b, sb[i].syms, m};
    }
    return 0;
}

/* Marks every input of a merge (their profiles are in the new block). */
static int mark_group(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *const *group, size_t n,
                      const char *reason, int64_t now_ms, hp_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cmp_mark(c, t, group[i]->ulid, reason, now_ms, err);
        if (rc != 0)
            return rc;
    }
    return cmp_write_index(c, t, err);
}

/* Merges the opened inputs and uploads the result (when anything is left). */
static int merge_upload(cmp_t *c, cmp_tenant_t *t, const hp_block_merge_input_t *in, size_t n,
                        const cmp_drop_t *drop, int64_t now_ms, hp_block_meta_t *meta, bool *empty,
                        hp_err_t *err)
{
    hp_buf_t data = HP_BUF_INIT, json = HP_BUF_INIT;
    hp_block_merge_stats_t st;
    memset(meta, 0, sizeof(*meta));
    hp_ulid_new(now_ms, meta->ulid);
    snprintf(meta->tenant, sizeof(meta->tenant), "%s", t->name);
    int rc = hp_block_merge(in, n, cmp_drop_profile, (void *)drop, meta, &data, &json, &st, err);
    *empty = rc == 0 && st.profiles_out == 0;
    if (rc == 0 && !*empty)
        rc = upload(c, t->name, meta->ulid, &data, &json, err);
    if (rc == 0 && !*empty)
        rc = add_block(c, t, meta, err);
    if (rc == 0)
        HP_INFO("blocks merged",
                "tenant=%s block=%s inputs=%zu level=%u profiles_in=%llu duplicates=%llu "
                "dropped=%llu profiles=%llu bytes=%zu",
                t->name, *empty ? "(none: nothing left)" : meta->ulid, n, meta->level,
                (unsigned long long)st.profiles_in, (unsigned long long)st.duplicates,
                (unsigned long long)st.dropped, (unsigned long long)st.profiles_out, data.len);
    hp_buf_fini(&data);
    hp_buf_fini(&json);
    return rc;
}

int cmp_merge(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *const *group, size_t n, const cmp_drop_t *drop,
              const char *reason, int64_t now_ms, char *out_ulid, hp_err_t *err)
{
    sblock_t *sb = hp_xcalloc(n, sizeof(*sb));
    hp_block_merge_input_t *in = hp_xcalloc(n, sizeof(*in));
    hp_block_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    bool empty = false;
    hp_err_clear(err);
    int rc = open_group(c, t, group, n, sb, in, err);
    if (rc == 0)
        rc = merge_upload(c, t, in, n, drop, now_ms, &meta, &empty, err);
    for (size_t i = 0; i < n; i++)
        sblock_close(&sb[i]);
    free(sb);
    free(in);
    free((void *)meta.sources);
    /* only now that the new block and the index naming it are written */
    if (rc == 0)
        rc = mark_group(c, t, group, n, reason, now_ms, err);
    if (out_ulid)
        snprintf(out_ulid, 27, "%s", rc == 0 && !empty ? meta.ulid : "");
    if (rc != 0) {
        hp_metric_add(c->m_compaction_failures, 1);
        return rc;
    }
    hp_metric_add(c->m_compactions, empty ? 0 : 1);
    hp_metric_add(c->m_blocks_compacted, (double)n);
    return 0;
}

int cmp_block_affected(cmp_t *c, cmp_tenant_t *t, const hp_bi_block_t *b, const cmp_request_t *r, bool *yes,
                       hp_err_t *err)
{
    sblock_t s;
    memset(&s, 0, sizeof(s));
    *yes = false;
    int rc = sblock_open(c, t->name, b->ulid, b->data_bytes, false, &s, err);
    for (size_t i = 0; rc == 0 && !*yes && i < hp_block_n_series(s.b); i++) {
        int64_t lo = hp_block_series_min_time(s.b, i) / 1000000 - 1,
                hi = hp_block_series_max_time(s.b, i) / 1000000;
        *yes = hi >= r->start_ms && lo <= r->end_ms &&
               hp_selector_matches(&r->sel, hp_block_series_labels(s.b, i));
    }
    sblock_close(&s);
    return rc;
}

/* ---- the debug view ---- */

typedef struct fn_total {
    hp_str_t name;
    int64_t v;
} fn_total_t;

static int fn_total_cmp(const void *a, const void *b)
{
    return hp_str_cmp(((const fn_total_t *)a)->name, ((const fn_total_t *)b)->name);
}

/* Appends {"function": self value, …} of a page: each sample's value goes
 * to its leaf frame's function (the innermost line of the leaf location). */
static void dump_self(const hp_symdb_t *db, const hp_block_page_t *page, hp_buf_t *out)
{
    size_t n = 0, cap = 0;
    fn_total_t *v = NULL;
    for (size_t j = 0; j < page->n_profiles; j++)
        for (uint32_t k = 0; k < page->profiles[j].n; k++) {
            uint32_t st = page->profiles[j].stacks[k];
            const hp_symdb_location_t *loc =
                st ? hp_symdb_location(db, hp_symdb_stack_location(db, st)) : NULL;
            hp_str_t name = loc && loc->line_n
                                ? hp_symdb_function_name(db, hp_symdb_lines(db, loc)[0].function)
                                : HP_STR("<unknown>");
            HP_GROW(v, cap, n + 1);
            v[n++] = (fn_total_t){name, page->profiles[j].values[k]};
        }
    hp_qsort(v, n, sizeof(*v), fn_total_cmp);
    hp_buf_puts(out, ",\"self\":{");
    for (size_t i = 0, first = 1; i < n;) {
        int64_t sum = 0;
        size_t e = i;
        for (; e < n && hp_str_eq(v[e].name, v[i].name); e++)
            sum = hp_add_wrap(sum, v[e].v);
        hp_buf_puts(out, first ? "" : ",");
        hp_buf_put_json_str(out, v[i].name.p, v[i].name.n);
        hp_buf_printf(out, ":%lld", (long long)sum);
        first = 0;
        i = e;
    }
    hp_buf_putc(out, '}');
    free(v);
}

/* Appends one series of the dump. */
static int dump_series(sblock_t *s, size_t i, bool functions, hp_buf_t *out, hp_err_t *err)
{
    hp_block_page_t page;
    int rc = hp_block_read_page(s->b, i, &page, err);
    if (rc != 0)
        return rc;
    const hp_labels_t *ls = hp_block_series_labels(s->b, i);
    hp_buf_puts(out, i ? ",{\"labels\":{" : "{\"labels\":{");
    for (size_t k = 0; k < ls->n; k++) {
        hp_buf_puts(out, k ? "," : "");
        hp_buf_put_json_str(out, ls->v[k].name.p, ls->v[k].name.n);
        hp_buf_putc(out, ':');
        hp_buf_put_json_str(out, ls->v[k].value.p, ls->v[k].value.n);
    }
    int64_t total = 0;
    uint64_t samples = 0;
    for (size_t j = 0; j < page.n_profiles; j++) {
        total = hp_add_wrap(total, page.profiles[j].total);
        samples += page.profiles[j].n;
    }
    hp_buf_printf(out, "},\"profiles\":%zu,\"samples\":%llu,\"total\":%lld", page.n_profiles,
                  (unsigned long long)samples, (long long)total);
    if (functions)
        dump_self(s->syms, &page, out);
    hp_buf_putc(out, '}');
    hp_block_page_fini(&page);
    return 0;
}

int cmp_block_dump(cmp_t *c, const char *tenant, const char *ulid, bool functions, hp_buf_t *out,
                   hp_err_t *err)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/blocks/%s/meta.json", tenant, ulid);
    hp_buf_t mj = HP_BUF_INIT;
    sblock_t s;
    memset(&s, 0, sizeof(s));
    int rc = hp_objstore_get(c->store, key, &mj, HP_BUCKET_SMALL_OBJECT_MAX, err);
    if (rc == 0)
        rc = hp_block_meta_parse(mj.data, mj.len, &s.meta, err);
    if (rc == 0)
        rc = sblock_open(c, tenant, ulid, s.meta.data_bytes, functions, &s, err);
    if (rc == 0) {
        while (mj.len > 0 && (mj.data[mj.len - 1] == '\n' || mj.data[mj.len - 1] == ' '))
            mj.len--;
        hp_buf_puts(out, "{\"meta\":");
        hp_buf_append(out, mj.data, mj.len);
        hp_buf_puts(out, ",\"series\":[");
    }
    for (size_t i = 0; rc == 0 && i < hp_block_n_series(s.b); i++)
        rc = dump_series(&s, i, functions, out, err);
    if (rc == 0)
        hp_buf_puts(out, "]}\n");
    sblock_close(&s);
    hp_buf_fini(&mj);
    return rc;
}
