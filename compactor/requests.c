/* Deletion requests: stored in the bucket as
 * <tenant>/deletion-requests/<id>.json so they survive restarts and every
 * compactor sees them; the owning compactor rewrites each block they
 * touch without the profiles they delete (a block left empty is only
 * marked) and finishes a request once every block that can hold its data
 * has arrived and been checked. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "compactor.h"
#include "hotpath/log.h"

#define REQUEST_MAX_BYTES (64u << 10)

void cmp_request_fini(cmp_request_t *r)
{
    free(r->selector);
    hp_selector_fini(&r->sel);
    memset(r, 0, sizeof(*r));
}

void cmp_requests_free(cmp_request_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmp_request_fini(&v[i]);
    free(v);
}

void cmp_request_json(const cmp_request_t *r, hp_buf_t *out)
{
    hp_buf_printf(out, "{\"request_id\":\"%s\",\"kind\":\"%s\",\"selector\":", r->id, r->kind);
    hp_buf_put_json_str(out, r->selector ? r->selector : "", r->selector ? strlen(r->selector) : 0);
    hp_buf_printf(out,
                  ",\"start_time_ms\":%lld,\"end_time_ms\":%lld,\"created_at_ms\":%lld,\"state\":\"%s\","
                  "\"finished_at_ms\":%lld,\"blocks_rewritten\":%llu,\"blocks_deleted\":%llu}",
                  (long long)r->start_ms, (long long)r->end_ms, (long long)r->created_ms, r->state,
                  (long long)r->finished_ms, (unsigned long long)r->blocks_rewritten,
                  (unsigned long long)r->blocks_deleted);
}

/* obj[key] as an integer, or HP_EINVAL naming it. */
static int int_field(json_t *o, const char *key, int64_t *out, hp_err_t *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || !json_is_integer(v))
        return hp_err_set(err, HP_EINVAL, "deletion request: %s is missing or not an integer", key);
    *out = json_integer_value(v);
    return 0;
}

/* obj[key] as a string copied into dst (cap bytes). */
static int str_field(json_t *o, const char *key, char *dst, size_t cap, hp_err_t *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || !json_is_string(v) || json_string_length(v) >= cap)
        return hp_err_set(err, HP_EINVAL, "deletion request: %s is missing or too long", key);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int parse_fields(json_t *o, cmp_request_t *r, hp_err_t *err)
{
    int64_t rw = 0, del = 0;
    char sel[4096];
    int rc = json_is_object(o) ? 0 : hp_err_set(err, HP_EINVAL, "deletion request: not a JSON object");
    if (rc == 0)
        rc = str_field(o, "request_id", r->id, sizeof(r->id), err);
    if (rc == 0)
        rc = str_field(o, "kind", r->kind, sizeof(r->kind), err);
    if (rc == 0)
        rc = str_field(o, "selector", sel, sizeof(sel), err);
    if (rc == 0)
        rc = str_field(o, "state", r->state, sizeof(r->state), err);
    if (rc == 0)
        rc = int_field(o, "start_time_ms", &r->start_ms, err);
    if (rc == 0)
        rc = int_field(o, "end_time_ms", &r->end_ms, err);
    if (rc == 0)
        rc = int_field(o, "created_at_ms", &r->created_ms, err);
    if (rc == 0)
        rc = int_field(o, "finished_at_ms", &r->finished_ms, err);
    if (rc == 0)
        rc = int_field(o, "blocks_rewritten", &rw, err);
    if (rc == 0)
        rc = int_field(o, "blocks_deleted", &del, err);
    if (rc != 0)
        return rc;
    r->blocks_rewritten = (uint64_t)rw, r->blocks_deleted = (uint64_t)del;
    r->selector = hp_xstrdup(sel);
    return 0;
}

int cmp_request_parse(const void *json, size_t n, cmp_request_t *r, hp_err_t *err)
{
    memset(r, 0, sizeof(*r));
    json_error_t je;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    int rc = root ? parse_fields(root, r, err) : hp_err_set(err, HP_EINVAL, "deletion request: %s", je.text);
    json_decref(root);
    bool series = strcmp(r->kind, "series") == 0;
    if (rc == 0 && !series && strcmp(r->kind, "tenant") != 0)
        rc = hp_err_set(err, HP_EINVAL, "deletion request: unknown kind \"%s\"", r->kind);
    if (rc == 0 && strcmp(r->state, "pending") != 0 && strcmp(r->state, "done") != 0)
        rc = hp_err_set(err, HP_EINVAL, "deletion request: unknown state \"%s\"", r->state);
    if (rc == 0 && series)
        rc = hp_selector_parse(hp_str_c(r->selector), &r->sel, err);
    if (rc != 0)
        cmp_request_fini(r);
    return rc;
}

int cmp_request_put(cmp_t *c, const char *tenant, const cmp_request_t *r, hp_err_t *err)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/deletion-requests/%s.json", tenant, r->id);
    hp_buf_t j = HP_BUF_INIT;
    cmp_request_json(r, &j);
    hp_buf_putc(&j, '\n');
    int rc = hp_objstore_put(c->store, key, j.data, j.len, err);
    hp_buf_fini(&j);
    return rc;
}

typedef struct load {
    cmp_t *c;
    cmp_request_t *v;
    size_t n, cap;
    hp_err_t *err;
} load_t;

/* Reads one listed request; a damaged one is logged and skipped. */
static int load_one(void *ctx, const char *key, uint64_t size)
{
    load_t *l = ctx;
    size_t kn = strlen(key);
    if (size > REQUEST_MAX_BYTES || kn < 5 || strcmp(key + kn - 5, ".json") != 0)
        return 0;
    hp_buf_t b = HP_BUF_INIT;
    int rc = hp_objstore_get(l->c->store, key, &b, REQUEST_MAX_BYTES, l->err);
    HP_GROW(l->v, l->cap, l->n + 1);
    hp_err_t why;
    if (rc == 0 && cmp_request_parse(b.data, b.len, &l->v[l->n], &why) == 0) {
        l->n++;
    } else if (rc == 0) {
        char q[600];
        HP_WARN("damaged deletion request skipped", "key=%s err=%s", key, hp_log_q(q, sizeof(q), why.msg));
    }
    hp_buf_fini(&b);
    return rc == HP_ENOTFOUND ? 0 : rc;
}

static int request_cmp(const void *a, const void *b)
{
    return strcmp(((const cmp_request_t *)a)->id, ((const cmp_request_t *)b)->id);
}

int cmp_requests_load(cmp_t *c, const char *tenant, cmp_request_t **out, size_t *n, hp_err_t *err)
{
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s/deletion-requests/", tenant);
    load_t l = {c, NULL, 0, 0, err};
    int rc = hp_objstore_list(c->store, prefix, load_one, &l, err);
    hp_qsort(l.v, l.n, sizeof(*l.v), request_cmp);
    *out = l.v;
    *n = l.n;
    return rc;
}

/* ---- applying ---- */

/* The key under which t->clean remembers that r leaves block ulid alone. */
static uint64_t clean_key(const cmp_request_t *r, const char *ulid)
{
    char k[56];
    memcpy(k, r->id, 27);
    memcpy(k + 27, ulid, 27);
    return XXH3_64bits(k, 54);
}

/* Whether block b holds data r may delete: unmarked, overlapping r's time. */
static bool candidate(const cmp_request_t *r, const hp_bi_block_t *b)
{
    if (b->deletion_mark_ms != 0)
        return false;
    return strcmp(r->kind, "tenant") == 0 || (b->max_time_ms >= r->start_ms && b->min_time_ms <= r->end_ms);
}

/* Rewrites (or, when nothing is left, marks) block b for request r. */
static int rewrite(cmp_t *c, cmp_tenant_t *t, cmp_request_t *r, const hp_bi_block_t *b,
                   const cmp_drop_t *drop, int64_t now_ms, hp_err_t *err)
{
    bool yes = false;
    uint64_t seen;
    if (hp_u64map_get(&t->clean, clean_key(r, b->ulid), &seen))
        return 0;
    int rc = cmp_block_affected(c, t, b, r, &yes, err);
    if (rc != 0 || !yes) {
        if (rc == 0)
            hp_u64map_put(&t->clean, clean_key(r, b->ulid), 1);
        return rc;
    }
    char made[27];
    const hp_bi_block_t *group[1] = {b};
    rc = cmp_merge(c, t, group, 1, drop, "deletion-request", now_ms, made, err);
    if (rc != 0)
        return rc;
    if (made[0]) {
        r->blocks_rewritten++;
        hp_u64map_put(&t->clean, clean_key(r, made), 1);
    } else {
        r->blocks_deleted++;
    }
    return 0;
}

/* Applies r to every block it may touch. */
static int apply_one(cmp_t *c, cmp_tenant_t *t, cmp_request_t *r, const cmp_drop_t *drop, int64_t now_ms,
                     hp_err_t *err)
{
    /* the index changes under us: work on a copy of the candidates */
    size_t n = 0;
    hp_bi_block_t *todo = hp_xcalloc(t->index.n_blocks + 1, sizeof(*todo));
    for (size_t i = 0; i < t->index.n_blocks; i++)
        if (candidate(r, &t->index.blocks[i]))
            todo[n++] = t->index.blocks[i];
    int rc = 0;
    bool marked = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(r->kind, "tenant") != 0) {
            rc = rewrite(c, t, r, &todo[i], drop, now_ms, err);
            continue;
        }
        rc = cmp_mark(c, t, todo[i].ulid, "deletion-request", now_ms, err);
        r->blocks_deleted += rc == 0;
        marked = true;
    }
    if (marked && rc == 0)
        rc = cmp_write_index(c, t, err);
    free(todo);
    return rc;
}

/* Whether every block that can hold data r deletes has arrived: the
 * window of the request's last time (capped at its creation) ended more
 * than the compaction delay ago. */
static bool due(const cmp_t *c, const cmp_request_t *r, int64_t now_ms)
{
    int64_t last = strcmp(r->kind, "tenant") == 0 ? r->created_ms : HP_MIN(r->end_ms, r->created_ms);
    int64_t w = c->ranges[0], end = (last / w + 1) * w;
    return now_ms >= end + c->cfg->compactor.compaction_delay_ms;
}

bool cmp_apply_requests(cmp_t *c, cmp_tenant_t *t, cmp_request_t *reqs, size_t n, int64_t now_ms)
{
    cmp_drop_t drop = {reqs, n};
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        cmp_request_t *r = &reqs[i];
        if (strcmp(r->state, "pending") != 0)
            continue;
        uint64_t before = r->blocks_rewritten + r->blocks_deleted;
        hp_err_t err;
        int rc = apply_one(c, t, r, &drop, now_ms, &err);
        if (rc != 0) {
            char q[600];
            HP_ERROR("deletion request failed; retried next cycle", "tenant=%s request=%s err=%s", t->name,
                     r->id, hp_log_q(q, sizeof(q), err.msg));
            ok = false;
        } else if (due(c, r, now_ms)) {
            snprintf(r->state, sizeof(r->state), "done");
            r->finished_ms = now_ms;
            hp_metric_add(c->m_requests_done, 1);
            HP_INFO("deletion request done", "tenant=%s request=%s blocks_rewritten=%llu blocks_deleted=%llu",
                    t->name, r->id, (unsigned long long)r->blocks_rewritten,
                    (unsigned long long)r->blocks_deleted);
        }
        if ((rc == 0 && strcmp(r->state, "done") == 0) || r->blocks_rewritten + r->blocks_deleted != before)
            if (cmp_request_put(c, t->name, r, &err) != 0)
                ok = false;
    }
    return ok;
}
