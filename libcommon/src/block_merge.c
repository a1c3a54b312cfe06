/* Merging blocks (block_merge.h): one ordered pass over the inputs'
 * series, a k-way merge of each series' pages by (time, ID) that keeps
 * one copy of each profile, then the kept profiles' symbols imported
 * into a new symdb and their stacks remapped (span IDs carried along),
 * then hp_block_write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/block_merge.h"
#include "hotpath/pprof.h"

#define MAX_INPUTS 1024

enum { STACK_SAMPLED = 1, STACK_VISITED = 2 };

/* One input while it is merged. */
typedef struct input {
    const hp_block_merge_input_t *in;
    size_t cur; /* its next series */
    size_t n_stacks;
    uint8_t *marks;      /* per stack: STACK_SAMPLED, STACK_VISITED */
    uint32_t *stack_map; /* after import: input stack → new stack */
    hp_block_page_t page;
    size_t at; /* next profile in page */
    bool loaded;
} input_t;

/* One series of the output; its samples keep input stack IDs until the
 * symbols are imported. */
typedef struct out_series {
    const hp_labels_t *labels; /* borrowed from an input block */
    int64_t period;
    hp_block_profile_in_t *profiles;
    uint32_t *src; /* the input each profile came from */
    size_t *off;   /* its first sample */
    size_t n, cap;
    uint32_t *stacks;
    int64_t *values;
    uint64_t *spans; /* parallel to stacks once a profile with spans is taken, else NULL */
    size_t ns, cap_s;
} out_series_t;

typedef struct merger {
    input_t *inputs;
    size_t n_in;
    out_series_t *out;
    size_t n_out, cap_out;
    hp_block_drop_fn drop;
    void *drop_ctx;
    hp_block_merge_stats_t st;
    hp_symdb_t *db;
} merger_t;

/* ---- series order: the block writer's (pair by pair, shorter first) ---- */

static int labels_cmp(const hp_labels_t *a, const hp_labels_t *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = hp_str_cmp(a->v[i].name, b->v[i].name);
        if (c == 0)
            c = hp_str_cmp(a->v[i].value, b->v[i].value);
        if (c != 0)
            return c;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

/* The current labels of input x, or NULL when it has no series left. */
static const hp_labels_t *cur_labels(const input_t *x)
{
    return x->cur < hp_block_n_series(x->in->block) ? hp_block_series_labels(x->in->block, x->cur) : NULL;
}

/* The smallest current label set over the inputs; NULL when all are done. */
static const hp_labels_t *next_labels(const merger_t *m)
{
    const hp_labels_t *best = NULL;
    for (size_t k = 0; k < m->n_in; k++) {
        const hp_labels_t *ls = cur_labels(&m->inputs[k]);
        if (ls && (best == NULL || labels_cmp(ls, best) < 0))
            best = ls;
    }
    return best;
}

/* ---- one series ---- */

/* Room for n more samples in o; a span column (zeros for the samples
 * before) once one comes with spans. */
static void grow_samples(out_series_t *o, size_t n, bool spans)
{
    if (o->ns + n > o->cap_s) {
        HP_GROW(o->stacks, o->cap_s, o->ns + n);
        o->values = hp_xrealloc(o->values, o->cap_s * sizeof(*o->values));
        if (o->spans)
            o->spans = hp_xrealloc(o->spans, o->cap_s * sizeof(*o->spans));
    }
    if (spans && o->spans == NULL)
        o->spans = hp_xcalloc(o->cap_s, sizeof(*o->spans));
}

/* Appends profile p of input k to o, marking its stacks as sampled. */
static void take(merger_t *m, out_series_t *o, size_t k, const hp_block_profile_t *p)
{
    if (o->n == o->cap) {
        HP_GROW(o->profiles, o->cap, o->n + 1);
        o->src = hp_xrealloc(o->src, o->cap * sizeof(*o->src));
        o->off = hp_xrealloc(o->off, o->cap * sizeof(*o->off));
    }
    grow_samples(o, p->n, p->spans != NULL);
    hp_block_profile_in_t *d = &o->profiles[o->n];
    memset(d, 0, sizeof(*d));
    d->t = p->t;
    memcpy(d->id, p->id, 16);
    d->total = p->total;
    d->n = p->n;
    o->src[o->n] = (uint32_t)k;
    o->off[o->n++] = o->ns;
    if (p->n) {
        memcpy(o->stacks + o->ns, p->stacks, p->n * sizeof(uint32_t));
        memcpy(o->values + o->ns, p->values, p->n * sizeof(int64_t));
    }
    if (p->n && o->spans && p->spans)
        memcpy(o->spans + o->ns, p->spans, p->n * sizeof(uint64_t));
    else if (p->n && o->spans)
        memset(o->spans + o->ns, 0, p->n * sizeof(uint64_t));
    for (uint32_t j = 0; j < p->n; j++)
        m->inputs[k].marks[p->stacks[j]] |= STACK_SAMPLED;
    o->ns += p->n;
}

static int id_cmp(const hp_block_profile_t *a, const hp_block_profile_t *b)
{
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return memcmp(a->id, b->id, 16);
}

/* The loaded input whose next profile is smallest by (time, ID); the first
 * such input wins a tie. SIZE_MAX when every page is used up. */
static size_t min_input(const merger_t *m)
{
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < m->n_in; k++) {
        const input_t *x = &m->inputs[k];
        if (!x->loaded || x->at >= x->page.n_profiles)
            continue;
        if (best == SIZE_MAX ||
            id_cmp(&x->page.profiles[x->at], &m->inputs[best].page.profiles[m->inputs[best].at]) < 0)
            best = k;
    }
    return best;
}

/* Takes the smallest profile once, skipping its copies in later inputs. */
static void merge_step(merger_t *m, out_series_t *o, size_t k)
{
    input_t *x = &m->inputs[k];
    const hp_block_profile_t *p = &x->page.profiles[x->at];
    for (size_t j = k + 1; j < m->n_in; j++) {
        input_t *y = &m->inputs[j];
        if (y->loaded && y->at < y->page.n_profiles && id_cmp(&y->page.profiles[y->at], p) == 0) {
            y->at++;
            m->st.duplicates++;
        }
    }
    if (m->drop && m->drop(m->drop_ctx, o->labels, p->t))
        m->st.dropped++;
    else
        take(m, o, k, p);
    x->at++;
}

/* Loads the page of every input whose current series has labels ls. */
static int load_pages(merger_t *m, const hp_labels_t *ls, out_series_t *o, hp_err_t *err)
{
    for (size_t k = 0; k < m->n_in; k++) {
        input_t *x = &m->inputs[k];
        const hp_labels_t *cur = cur_labels(x);
        if (cur == NULL || labels_cmp(cur, ls) != 0)
            continue;
        int rc = hp_block_read_page(x->in->block, x->cur, &x->page, err);
        if (rc != 0)
            return rc;
        if (!o->labels) {
            o->labels = cur;
            o->period = hp_block_series_period(x->in->block, x->cur);
        }
        x->loaded = true;
        x->at = 0;
        m->st.profiles_in += x->page.n_profiles;
    }
    return 0;
}

/* Frees the pages loaded for one series and moves those inputs on. */
static void unload_pages(merger_t *m)
{
    for (size_t k = 0; k < m->n_in; k++) {
        input_t *x = &m->inputs[k];
        if (!x->loaded)
            continue;
        hp_block_page_fini(&x->page);
        x->loaded = false;
        x->cur++;
    }
}

static void out_series_fini(out_series_t *o)
{
    free(o->profiles);
    free(o->src);
    free(o->off);
    free(o->stacks);
    free(o->values);
    free(o->spans);
}

/* Merges the series labelled ls from every input that has it. */
static int merge_series(merger_t *m, const hp_labels_t *ls, hp_err_t *err)
{
    HP_GROW(m->out, m->cap_out, m->n_out + 1);
    out_series_t *o = &m->out[m->n_out];
    memset(o, 0, sizeof(*o));
    int rc = load_pages(m, ls, o, err);
    for (size_t k; rc == 0 && (k = min_input(m)) != SIZE_MAX;)
        merge_step(m, o, k);
    unload_pages(m);
    if (rc == 0 && o->n > 0)
        m->n_out++;
    else
        out_series_fini(o);
    return rc;
}

/* ---- symbols ---- */

/* Marks every stack node on the way from a sampled stack to the root, and
 * the location of each in loc_used. */
static void visit_chains(input_t *x, const uint32_t *parents, const uint32_t *locs, uint8_t *loc_used)
{
    for (size_t s = 1; s < x->n_stacks; s++) {
        if (!(x->marks[s] & STACK_SAMPLED))
            continue;
        for (uint32_t node = (uint32_t)s; node != 0 && !(x->marks[node] & STACK_VISITED);
             node = parents[node]) {
            x->marks[node] |= STACK_VISITED;
            loc_used[locs[node]] = 1;
        }
    }
}

/* A pprof view of the used locations of a symdb (and of the functions
 * and mappings they refer to), which hp_symdb_import takes in. */
typedef struct view {
    hp_pprof_t p;
    uint32_t *fn_ix, *map_ix; /* symdb ID → view index, UINT32_MAX when unused */
} view_t;

static uint32_t view_function(view_t *v, const hp_symdb_t *db, uint32_t id, size_t *cap)
{
    if (v->fn_ix[id] != UINT32_MAX)
        return v->fn_ix[id];
    const hp_symdb_function_t *f = hp_symdb_function(db, id);
    HP_GROW(v->p.functions, *cap, v->p.n_functions + 1);
    v->p.functions[v->p.n_functions] =
        (hp_pprof_function_t){v->p.n_functions + 1, f->name, f->system_name, f->filename, f->start_line};
    return v->fn_ix[id] = v->p.n_functions++;
}

static uint32_t view_mapping(view_t *v, const hp_symdb_t *db, uint32_t id, size_t *cap)
{
    if (id == UINT32_MAX)
        return HP_PPROF_NONE;
    if (v->map_ix[id] != UINT32_MAX)
        return v->map_ix[id];
    const hp_symdb_mapping_t *mp = hp_symdb_mapping(db, id);
    HP_GROW(v->p.mappings, *cap, v->p.n_mappings + 1);
    hp_pprof_mapping_t *o = &v->p.mappings[v->p.n_mappings];
    memset(o, 0, sizeof(*o));
    *o = (hp_pprof_mapping_t){.id = v->p.n_mappings + 1,
                              .memory_start = mp->memory_start,
                              .memory_limit = mp->memory_limit,
                              .file_offset = mp->file_offset,
                              .filename = mp->filename,
                              .build_id = mp->build_id,
                              .has_functions = mp->flags & 1,
                              .has_filenames = (mp->flags >> 1) & 1,
                              .has_line_numbers = (mp->flags >> 2) & 1,
                              .has_inline_frames = (mp->flags >> 3) & 1};
    return v->map_ix[id] = v->p.n_mappings++;
}

/* Adds symdb location id (with its lines) to the view. */
static void view_location(view_t *v, const hp_symdb_t *db, uint32_t id, size_t caps[4])
{
    const hp_symdb_location_t *l = hp_symdb_location(db, id);
    const hp_symdb_line_t *lines = hp_symdb_lines(db, l);
    HP_GROW(v->p.lines, caps[2], v->p.n_lines + l->line_n);
    uint32_t off = v->p.n_lines;
    for (uint32_t i = 0; i < l->line_n; i++)
        v->p.lines[v->p.n_lines++] =
            (hp_pprof_line_t){view_function(v, db, lines[i].function, &caps[0]), lines[i].line, 0};
    HP_GROW(v->p.locations, caps[3], v->p.n_locations + 1);
    hp_pprof_location_t *o = &v->p.locations[v->p.n_locations];
    memset(o, 0, sizeof(*o));
    o->id = v->p.n_locations + 1;
    o->mapping = view_mapping(v, db, l->mapping, &caps[1]);
    o->address = l->address;
    o->line_off = off;
    o->line_n = l->line_n;
    v->p.n_locations++;
}

/* Imports the locations input x's kept stacks use; new_loc[id] receives
 * the new symdb's ID of each used location. */
static void import_locations(merger_t *m, input_t *x, const hp_symdb_arrays_t *a, const uint8_t *loc_used,
                             uint32_t *new_loc)
{
    const hp_symdb_t *db = x->in->symbols;
    view_t v;
    memset(&v, 0, sizeof(v));
    v.fn_ix = hp_xmalloc((a->n_functions + 1) * sizeof(uint32_t));
    v.map_ix = hp_xmalloc((a->n_mappings + 1) * sizeof(uint32_t));
    memset(v.fn_ix, 0xff, (a->n_functions + 1) * sizeof(uint32_t));
    memset(v.map_ix, 0xff, (a->n_mappings + 1) * sizeof(uint32_t));
    v.p.strings = (hp_str_t *)a->strings; /* read only: import interns copies */
    v.p.n_strings = (uint32_t)a->n_strings;
    size_t caps[4] = {0, 0, 0, 0};
    uint32_t *ids = hp_xmalloc((a->n_locations + 1) * sizeof(uint32_t)), n = 0;
    for (size_t id = 0; id < a->n_locations; id++)
        if (loc_used[id]) {
            view_location(&v, db, (uint32_t)id, caps);
            ids[n++] = (uint32_t)id;
        }
    uint32_t *got = hp_xmalloc((n + 1) * sizeof(uint32_t));
    hp_symdb_import(m->db, &v.p, got, 0);
    for (uint32_t i = 0; i < n; i++)
        new_loc[ids[i]] = got[i];
    free(got);
    free(ids);
    free(v.p.functions);
    free(v.p.mappings);
    free(v.p.lines);
    free(v.p.locations);
    free(v.fn_ix);
    free(v.map_ix);
}

/* Maps every sampled stack of x to the new symdb's stack of the same
 * locations. */
static void import_stacks(merger_t *m, input_t *x, const uint32_t *parents, const uint32_t *locs,
                          const uint32_t *new_loc)
{
    x->stack_map = hp_xmalloc((x->n_stacks + 1) * sizeof(uint32_t));
    x->stack_map[0] = 0;
    uint32_t *chain = NULL;
    size_t cap = 0;
    for (size_t s = 1; s < x->n_stacks; s++) {
        if (!(x->marks[s] & STACK_SAMPLED))
            continue;
        size_t d = 0;
        for (uint32_t node = (uint32_t)s; node != 0 && d < x->n_stacks; node = parents[node]) {
            HP_GROW(chain, cap, d + 1);
            chain[d++] = new_loc[locs[node]];
        }
        x->stack_map[s] = hp_symdb_stack(m->db, chain, d);
    }
    free(chain);
}

/* Imports the symbols input x's kept profiles use into m->db. */
static void import_input(merger_t *m, input_t *x)
{
    hp_symdb_arrays_t a;
    uint32_t *parents = hp_xmalloc((x->n_stacks + 1) * sizeof(uint32_t));
    uint32_t *locs = hp_xmalloc((x->n_stacks + 1) * sizeof(uint32_t));
    hp_symdb_arrays(x->in->symbols, &a, parents, locs);
    uint8_t *loc_used = hp_xcalloc(a.n_locations + 1, 1);
    uint32_t *new_loc = hp_xcalloc(a.n_locations + 1, sizeof(uint32_t));
    visit_chains(x, parents, locs, loc_used);
    import_locations(m, x, &a, loc_used, new_loc);
    import_stacks(m, x, parents, locs, new_loc);
    free(new_loc);
    free(loc_used);
    free(parents);
    free(locs);
}

/* ---- remapping the kept samples ---- */

typedef struct sample {
    uint32_t stack;
    uint64_t span;
    int64_t value;
} sample_t;

static int sample_cmp(const void *a, const void *b)
{
    const sample_t *x = a, *y = b;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return x->span < y->span ? -1 : x->span > y->span;
}

/* Rewrites profile i of o with new stack IDs, ascending by (stack, span),
 * samples of equal (stack, span) summed: two stacks of an input may be one
 * in the new symdb. */
static void remap_profile(const merger_t *m, out_series_t *o, size_t i, sample_t **buf, size_t *cap)
{
    hp_block_profile_in_t *p = &o->profiles[i];
    const uint32_t *map = m->inputs[o->src[i]].stack_map;
    uint32_t *st = o->stacks + o->off[i];
    int64_t *val = o->values + o->off[i];
    uint64_t *sp = o->spans ? o->spans + o->off[i] : NULL;
    HP_GROW(*buf, *cap, p->n + 1);
    for (uint32_t j = 0; j < p->n; j++)
        (*buf)[j] = (sample_t){map[st[j]], sp ? sp[j] : 0, val[j]};
    hp_qsort(*buf, p->n, sizeof(sample_t), sample_cmp);
    uint32_t n = 0;
    for (uint32_t j = 0; j < p->n; j++) {
        if (n > 0 && sample_cmp(&(*buf)[n - 1], &(*buf)[j]) == 0) {
            (*buf)[n - 1].value = hp_add_wrap((*buf)[n - 1].value, (*buf)[j].value);
            continue;
        }
        (*buf)[n++] = (*buf)[j];
    }
    for (uint32_t j = 0; j < n; j++) {
        st[j] = (*buf)[j].stack;
        val[j] = (*buf)[j].value;
        if (sp)
            sp[j] = (*buf)[j].span;
    }
    p->n = n;
    p->stacks = st;
    p->values = val;
    p->spans = sp;
}

static void remap_all(merger_t *m)
{
    sample_t *buf = NULL;
    size_t cap = 0;
    for (size_t s = 0; s < m->n_out; s++)
        for (size_t i = 0; i < m->out[s].n; i++)
            remap_profile(m, &m->out[s], i, &buf, &cap);
    free(buf);
}

/* ---- meta ---- */

static int ulid_cmp(const void *a, const void *b)
{
    return strcmp(((const hp_ulid_t *)a)->s, ((const hp_ulid_t *)b)->s);
}

/* level, source and the sorted union of the inputs' sources. */
static void set_lineage(const hp_block_merge_input_t *in, size_t n, hp_block_meta_t *meta)
{
    size_t total = 0, o = 0;
    uint32_t level = 0;
    for (size_t k = 0; k < n; k++) {
        total += in[k].meta->n_sources ? in[k].meta->n_sources : 1;
        level = HP_MAX(level, in[k].meta->level);
    }
    hp_ulid_t *v = hp_xcalloc(total + 1, sizeof(*v));
    for (size_t k = 0; k < n; k++) {
        const hp_block_meta_t *im = in[k].meta;
        if (im->n_sources == 0)
            memcpy(v[o++].s, im->ulid, sizeof(v[0].s));
        for (size_t i = 0; i < im->n_sources; i++)
            v[o++] = im->sources[i];
    }
    hp_qsort(v, o, sizeof(*v), ulid_cmp);
    size_t u = 0;
    for (size_t i = 0; i < o; i++)
        if (u == 0 || strcmp(v[u - 1].s, v[i].s) != 0)
            v[u++] = v[i];
    meta->sources = v;
    meta->n_sources = u;
    meta->level = level + 1;
    snprintf(meta->source, sizeof(meta->source), "compactor");
}

/* ---- the whole merge ---- */

static void merger_fini(merger_t *m)
{
    for (size_t k = 0; k < m->n_in; k++) {
        input_t *x = &m->inputs[k];
        if (x->loaded)
            hp_block_page_fini(&x->page);
        free(x->marks);
        free(x->stack_map);
    }
    free(m->inputs);
    for (size_t s = 0; s < m->n_out; s++)
        out_series_fini(&m->out[s]);
    free(m->out);
    hp_symdb_free(m->db);
}

/* Encodes the merged series with the new symdb. */
static int write_out(merger_t *m, hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_err_t *err)
{
    hp_block_series_in_t *series = hp_xcalloc(m->n_out + 1, sizeof(*series));
    for (size_t s = 0; s < m->n_out; s++) {
        series[s] =
            (hp_block_series_in_t){m->out[s].labels, m->out[s].profiles, m->out[s].n, m->out[s].period};
        m->st.profiles_out += m->out[s].n;
    }
    int rc = hp_block_write(m->db, series, m->n_out, meta, data, meta_json, err);
    free(series);
    return rc;
}

static int check_inputs(const hp_block_merge_input_t *in, size_t n, hp_err_t *err)
{
    if (n == 0 || n > MAX_INPUTS)
        return hp_err_set(err, HP_EINVAL, "block merge: %zu inputs (1 to %d allowed)", n, MAX_INPUTS);
    for (size_t k = 0; k < n; k++)
        if (in[k].block == NULL || in[k].symbols == NULL || in[k].meta == NULL)
            return hp_err_set(err, HP_EINVAL, "block merge: input %zu has no block, symbols or meta", k);
    return 0;
}

int hp_block_merge(const hp_block_merge_input_t *in, size_t n, hp_block_drop_fn drop, void *drop_ctx,
                   hp_block_meta_t *meta, hp_buf_t *data, hp_buf_t *meta_json, hp_block_merge_stats_t *stats,
                   hp_err_t *err)
{
    meta->sources = NULL;
    meta->n_sources = 0;
    int rc = check_inputs(in, n, err);
    if (rc != 0)
        return rc;
    merger_t m;
    memset(&m, 0, sizeof(m));
    m.inputs = hp_xcalloc(n, sizeof(*m.inputs));
    m.n_in = n;
    m.drop = drop;
    m.drop_ctx = drop_ctx;
    m.db = hp_symdb_new();
    for (size_t k = 0; k < n; k++) {
        m.inputs[k].in = &in[k];
        m.inputs[k].n_stacks = hp_symdb_n_stacks(in[k].symbols);
        m.inputs[k].marks = hp_xcalloc(m.inputs[k].n_stacks + 1, 1);
    }
    for (const hp_labels_t *ls; rc == 0 && (ls = next_labels(&m)) != NULL;)
        rc = merge_series(&m, ls, err);
    for (size_t k = 0; rc == 0 && k < n; k++)
        import_input(&m, &m.inputs[k]);
    if (rc == 0) {
        remap_all(&m);
        set_lineage(in, n, meta);
        rc = write_out(&m, meta, data, meta_json, err);
    }
    if (stats)
        *stats = m.st;
    merger_fini(&m);
    if (rc != 0) {
        free((void *)meta->sources);
        meta->sources = NULL;
        meta->n_sources = 0;
    }
    return rc;
}
