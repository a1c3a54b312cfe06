/* Query RPCs over the heads: label names and values, profile types,
 * series, and the Select* merges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/hashmap.h"
#include "hotpath/pprof.h"
#include "hotpath/tree.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "ingester.h"
#include "querier/v1/querier.pb-c.h"
#include "types/v1/types.pb-c.h"

/* ---- shared helpers ---- */

/* Milliseconds [start, end] to nanoseconds (saturating: the values come
 * from a peer); end 0 (or both 0) = unbounded. */
static void time_range(int64_t start_ms, int64_t end_ms, int64_t *start_ns, int64_t *end_ns)
{
    *start_ns = start_ms > 0 ? hp_ms_to_ns_sat(start_ms) : INT64_MIN;
    *end_ns = end_ms > 0 ? hp_ms_to_ns_sat(end_ms) : INT64_MAX;
    if (*end_ns <= INT64_MAX - 999999)
        *end_ns += 999999;
}

/* Parses a list of selector strings; a series matches when any does (an
 * empty list matches everything). */
typedef struct selectors {
    hp_selector_t *v;
    size_t n;
} selectors_t;

static int parse_selectors(char **matchers, size_t n, selectors_t *out, hp_err_t *err)
{
    out->v = hp_xcalloc(n + 1, sizeof(hp_selector_t));
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = hp_selector_parse(hp_str_c(matchers[i]), &out->v[out->n], err);
        if (rc != 0)
            return rc;
        out->n++;
    }
    return 0;
}

static void selectors_fini(selectors_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        hp_selector_fini(&s->v[i]);
    free(s->v);
}

static bool selectors_match(const selectors_t *s, const ing_series_t *series)
{
    if (s->n == 0)
        return true;
    for (size_t i = 0; i < s->n; i++)
        if (hp_selector_matches(&s->v[i], &series->labels))
            return true;
    return false;
}

static bool in_time(const ing_series_t *s, int64_t start_ns, int64_t end_ns)
{
    return s->n_profiles && s->max_t >= start_ns && s->min_t <= end_ns;
}

/* Adds a NUL-terminated copy of s to a string list in the arena. */
static void push_str(hp_arena_t *a, char ***v, size_t *n, size_t *cap, hp_str_t s)
{
    HP_GROW(*v, *cap, *n + 1);
    (*v)[(*n)++] = hp_arena_strndup(a, s.p, s.n);
}

static void pack_into(const ProtobufCMessage *m, hp_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    hp_buf_reserve(out, n);
    protobuf_c_message_pack(m, out->data + out->len);
    out->len += n;
}

/* ---- ProfileTypes, LabelNames, LabelValues, Series ---- */

/* Collects strings (copied into an arena) from the heads. */
typedef struct strs {
    hp_arena_t arena;
    char **v;
    size_t n, cap;
} strs_t;

typedef struct types_ctx {
    strs_t ids;
    int64_t s_ns, e_ns;
} types_ctx_t;

static void types_of_head(void *ctx, const ing_head_t *h)
{
    types_ctx_t *c = ctx;
    bool *used = hp_xcalloc(h->n_types + 1, sizeof(bool));
    for (size_t i = 0; i < h->n_series; i++)
        if (in_time(h->series[i], c->s_ns, c->e_ns))
            used[h->series[i]->type] = true;
    for (size_t i = 0; i < h->n_types; i++)
        if (used[i])
            push_str(&c->ids.arena, &c->ids.v, &c->ids.n, &c->ids.cap, hp_str_c(h->types[i]));
    free(used);
}

/* ProfileTypesResponse for sorted, unique type IDs. */
static void encode_types(char **ids, size_t n, hp_buf_t *out)
{
    Hotpath__V1__ProfileTypesResponse resp = HOTPATH__V1__PROFILE_TYPES_RESPONSE__INIT;
    Types__V1__ProfileType *pts = hp_xcalloc(n + 1, sizeof(*pts));
    Types__V1__ProfileType **ptrs = hp_xcalloc(n + 1, sizeof(*ptrs));
    char **parts = hp_xcalloc(n * 5 + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        hp_profile_type_t pt;
        if (hp_profile_type_parse(hp_str_c(ids[i]), &pt, NULL) != 0)
            continue;
        Types__V1__ProfileType *x = &pts[resp.n_types];
        types__v1__profile_type__init(x);
        char **pp = parts + resp.n_types * 5;
        hp_str_t f[5] = {pt.name, pt.sample_type, pt.sample_unit, pt.period_type, pt.period_unit};
        for (int k = 0; k < 5; k++)
            pp[k] = hp_xstrndup(f[k].p, f[k].n);
        x->id = ids[i];
        x->name = pp[0], x->sample_type = pp[1], x->sample_unit = pp[2];
        x->period_type = pp[3], x->period_unit = pp[4];
        ptrs[resp.n_types++] = x;
    }
    resp.types = ptrs;
    pack_into(&resp.base, out);
    for (size_t i = 0; i < resp.n_types * 5; i++)
        free(parts[i]);
    free(parts);
    free(ptrs);
    free(pts);
}

static int handle_profile_types(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    Hotpath__V1__ProfileTypesRequest *req =
        hotpath__v1__profile_types_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.ProfileTypes: malformed request");
    types_ctx_t c;
    memset(&c, 0, sizeof(c));
    hp_arena_init(&c.ids.arena, 0);
    time_range(req->start, req->end, &c.s_ns, &c.e_ns);
    hotpath__v1__profile_types_request__free_unpacked(req, NULL);
    ing_for_each_head(g, call->tenant, c.s_ns, c.e_ns, types_of_head, &c);
    encode_types(c.ids.v, hp_sort_unique_strs(c.ids.v, c.ids.n), out);
    free(c.ids.v);
    hp_arena_fini(&c.ids.arena);
    return 0;
}

/* LabelNames and LabelValues: the names, or the values of one label, of
 * the series the matchers select. */
typedef struct names_ctx {
    strs_t out;
    const selectors_t *sels;
    const char *label; /* NULL: names */
    int64_t s_ns, e_ns;
} names_ctx_t;

static void names_of_head(void *ctx, const ing_head_t *h)
{
    names_ctx_t *c = ctx;
    for (size_t i = 0; i < h->n_series; i++) {
        const ing_series_t *s = h->series[i];
        if (!in_time(s, c->s_ns, c->e_ns) || !selectors_match(c->sels, s))
            continue;
        if (c->label) {
            hp_str_t v = hp_labels_get(&s->labels, c->label);
            if (v.p)
                push_str(&c->out.arena, &c->out.v, &c->out.n, &c->out.cap, v);
        } else {
            for (size_t k = 0; k < s->labels.n; k++)
                push_str(&c->out.arena, &c->out.v, &c->out.n, &c->out.cap, s->labels.v[k].name);
        }
    }
}

static int names_query(ing_t *g, hp_str_t tenant, char **matchers, size_t n_matchers, const char *label,
                       int64_t start, int64_t end, hp_buf_t *out, hp_err_t *err)
{
    selectors_t sels;
    int rc = parse_selectors(matchers, n_matchers, &sels, err);
    names_ctx_t c;
    memset(&c, 0, sizeof(c));
    hp_arena_init(&c.out.arena, 0);
    c.sels = &sels;
    c.label = label;
    time_range(start, end, &c.s_ns, &c.e_ns);
    if (rc == 0) {
        ing_for_each_head(g, tenant, c.s_ns, c.e_ns, names_of_head, &c);
        Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
        resp.n_names = hp_sort_unique_strs(c.out.v, c.out.n);
        resp.names = c.out.v;
        pack_into(&resp.base, out); /* LabelValuesResponse has the same shape */
    }
    free(c.out.v);
    hp_arena_fini(&c.out.arena);
    selectors_fini(&sels);
    return rc;
}

static int handle_label_names(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Types__V1__LabelNamesRequest *req =
        types__v1__label_names_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.LabelNames: malformed request");
    int rc = names_query(ctx, call->tenant, req->matchers, req->n_matchers, NULL, req->start, req->end, out, err);
    types__v1__label_names_request__free_unpacked(req, NULL);
    return rc;
}

static int handle_label_values(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Types__V1__LabelValuesRequest *req =
        types__v1__label_values_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.LabelValues: malformed request");
    int rc = names_query(ctx, call->tenant, req->matchers, req->n_matchers, req->name, req->start, req->end, out,
                         err);
    types__v1__label_values_request__free_unpacked(req, NULL);
    return rc;
}

static bool wanted_name(const Querier__V1__SeriesRequest *req, hp_str_t name)
{
    if (req->n_label_names == 0)
        return true;
    for (size_t i = 0; i < req->n_label_names; i++)
        if (hp_str_eq_c(name, req->label_names[i]))
            return true;
    return false;
}

/* One types.v1.Labels message (field 2 of SeriesResponse) for a series. */
static void encode_series_labels(hp_buf_t *b, const Querier__V1__SeriesRequest *req, const ing_series_t *s)
{
    size_t m = hp_pb_begin_len(b, 2);
    for (size_t k = 0; k < s->labels.n; k++) {
        if (!wanted_name(req, s->labels.v[k].name))
            continue;
        size_t lm = hp_pb_begin_len(b, 1);
        hp_pb_put_bytes(b, 1, s->labels.v[k].name.p, s->labels.v[k].name.n);
        hp_pb_put_bytes(b, 2, s->labels.v[k].value.p, s->labels.v[k].value.n);
        hp_pb_end_len(b, lm);
    }
    hp_pb_end_len(b, m);
}

typedef struct series_ctx {
    const Querier__V1__SeriesRequest *req;
    const selectors_t *sels;
    int64_t s_ns, e_ns;
    hp_buf_t *out;
} series_ctx_t;

static void series_of_head(void *ctx, const ing_head_t *h)
{
    series_ctx_t *c = ctx;
    for (size_t i = 0; i < h->n_series; i++)
        if (in_time(h->series[i], c->s_ns, c->e_ns) && selectors_match(c->sels, h->series[i]))
            encode_series_labels(c->out, c->req, h->series[i]);
}

/* Series: label sets (restricted to label_names) of matching series. The
 * querier deduplicates them across heads and ingesters. */
static int handle_series(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    Querier__V1__SeriesRequest *req = querier__v1__series_request__unpack(NULL, call->payload_len, call->payload);
    if (req == NULL)
        return hp_err_set(err, HP_EINVAL, "ingester.Series: malformed request");
    selectors_t sels;
    int rc = parse_selectors(req->matchers, req->n_matchers, &sels, err);
    series_ctx_t c = {req, &sels, 0, 0, out};
    time_range(req->start, req->end, &c.s_ns, &c.e_ns);
    if (rc == 0)
        ing_for_each_head(ctx, call->tenant, c.s_ns, c.e_ns, series_of_head, &c);
    selectors_fini(&sels);
    querier__v1__series_request__free_unpacked(req, NULL);
    return rc;
}

/* ---- Select* ---- */

int ing_parse_select(const Hotpath__V1__SelectRequest *r, ing_select_t *q, hp_err_t *err)
{
    memset(q, 0, sizeof(*q));
    if (r == NULL)
        return hp_err_set(err, HP_EINVAL, "select: malformed request");
    int rc = hp_selector_parse(hp_str_c(r->label_selector), &q->sel, err);
    if (rc != 0)
        return rc;
    q->type_id = r->profile_type && *r->profile_type ? hp_xstrdup(r->profile_type) : NULL;
    time_range(r->start, r->end, &q->start_ns, &q->end_ns);
    q->session = r->session;
    q->keep = r->keep.data;
    q->keep_len = r->keep.len;
    return 0;
}

void ing_select_fini(ing_select_t *q)
{
    hp_selector_fini(&q->sel);
    free(q->type_id);
}

/* A Select* run: (stack → value) summed per head, then handed to the
 * head's consumer (tree or pprof) while the head is still locked. */
typedef struct acc_ctx {
    hp_u64map_t acc;
    int64_t period;
    hp_tree_t *tree;        /* SelectMergeStacktraces */
    hp_pprof_builder_t *b;  /* SelectMergeProfile */
} acc_ctx_t;

static void acc_begin(void *ctx, const ing_head_t *h)
{
    acc_ctx_t *a = ctx;
    hp_u64map_clear(&a->acc);
}

static void acc_profile(void *ctx, const ing_head_t *h, uint32_t si, const ing_series_t *s, const ing_profile_t *pr)
{
    acc_ctx_t *a = ctx;
    if (s->period > a->period)
        a->period = s->period;
    for (uint32_t k = 0; k < pr->n; k++) {
        bool found;
        uint64_t *v = hp_u64map_upsert(&a->acc, s->stacks[pr->off + k], 0, &found);
        *v = (uint64_t)hp_add_wrap((int64_t)*v, s->values[pr->off + k]);
    }
}

static void build_tree(const hp_symdb_t *db, const hp_u64map_t *acc, hp_tree_t *tree);
static void build_pprof(const hp_symdb_t *db, const hp_u64map_t *acc, hp_pprof_builder_t *b);

static void acc_end(void *ctx, const ing_head_t *h)
{
    acc_ctx_t *a = ctx;
    if (a->tree)
        build_tree(h->symdb, &a->acc, a->tree);
    if (a->b)
        build_pprof(h->symdb, &a->acc, a->b);
}

/* The frame name of a location without symbols. */
static hp_str_t address_name(const hp_symdb_location_t *loc, char *buf, size_t n)
{
    int k = snprintf(buf, n, "0x%llx", (unsigned long long)loc->address);
    return (hp_str_t){buf, (size_t)k};
}

/* The memo from stack node to tree node is a dense array (stack IDs are
 * dense; 0 = not yet built, tree nodes are ≥ 1), so building the tree costs
 * one lookup per distinct stack node. */
typedef struct tree_build {
    const hp_symdb_t *db;
    hp_tree_t *tree;
    uint32_t *memo;
    uint16_t *depth;    /* tree depth of each memoized stack's node */
    uint32_t *fn_names; /* symdb function → tree name ID + 1 (0 = not yet) */
    uint32_t *chain;
    size_t chain_cap;
} tree_build_t;

/* The tree node under parent (at *depth) for one location: one frame per
 * line, outermost (caller) first. Frames past HP_TREE_MAX_DEPTH fold into
 * the deepest node, so no profile can make a tree the querier refuses. */
static uint32_t extend(tree_build_t *b, uint32_t node, uint32_t loc_id, uint16_t *depth)
{
    const hp_symdb_location_t *loc = hp_symdb_location(b->db, loc_id);
    const hp_symdb_line_t *lines = hp_symdb_lines(b->db, loc);
    if (*depth >= HP_TREE_MAX_DEPTH - 1)
        return node;
    if (loc->line_n == 0) {
        char buf[32];
        ++*depth;
        return hp_tree_child(b->tree, node, address_name(loc, buf, sizeof(buf)));
    }
    for (uint32_t i = loc->line_n; i-- > 0 && *depth < HP_TREE_MAX_DEPTH - 1;) {
        ++*depth;
        uint32_t fn = lines[i].function;
        if (b->fn_names[fn] == 0)
            b->fn_names[fn] = hp_tree_intern(b->tree, hp_symdb_function_name(b->db, fn)) + 1;
        node = hp_tree_child_id(b->tree, node, b->fn_names[fn] - 1);
    }
    return node;
}

/* The tree node of a stack, building (and memoizing) its path. */
static uint32_t tree_node_of(tree_build_t *b, uint32_t stack)
{
    size_t n = 0;
    uint32_t s = stack;
    while (s != 0 && b->memo[s] == 0) {
        HP_GROW(b->chain, b->chain_cap, n + 1);
        b->chain[n++] = s;
        s = hp_symdb_stack_parent(b->db, s);
    }
    uint32_t node = s == 0 ? HP_TREE_ROOT : b->memo[s];
    uint16_t depth = s == 0 ? 0 : b->depth[s];
    while (n-- > 0) {
        node = extend(b, node, hp_symdb_stack_location(b->db, b->chain[n]), &depth);
        b->memo[b->chain[n]] = node;
        b->depth[b->chain[n]] = depth;
    }
    return node;
}

/* Adds every (stack, value) of acc to tree as function-name paths. */
static void build_tree(const hp_symdb_t *db, const hp_u64map_t *acc, hp_tree_t *tree)
{
    tree_build_t b = {db, tree, NULL, NULL, NULL, NULL, 0};
    b.memo = hp_xcalloc(hp_symdb_n_stacks(db) + 1, sizeof(uint32_t));
    b.depth = hp_xcalloc(hp_symdb_n_stacks(db) + 1, sizeof(uint16_t));
    b.fn_names = hp_xcalloc(hp_symdb_n_functions(db) + 1, sizeof(uint32_t));
    uint64_t stack, val;
    for (size_t it = 0; hp_u64map_next(acc, &it, &stack, &val);)
        hp_tree_add(tree, tree_node_of(&b, (uint32_t)stack), (int64_t)val);
    free(b.memo);
    free(b.depth);
    free(b.fn_names);
    free(b.chain);
}

static int handle_merge_stacktraces(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    ing_select_t q;
    int rc = ing_parse_select(req, &q, err);
    hp_tree_t *tree = hp_tree_new();
    acc_ctx_t a = {{0}, 0, tree, NULL};
    hp_u64map_init(&a.acc, 1024);
    if (rc == 0)
        rc = ing_select_heads(g, call->tenant, &q, acc_begin, acc_profile, acc_end, &a, err);
    hp_u64map_fini(&a.acc);
    if (rc == 0)
        hp_tree_encode(tree, out);
    hp_tree_free(tree);
    ing_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

/* Symdb IDs are dense, so each memo from a symdb ID to the builder's ID is
 * a plain array (0 = not yet added; builder IDs start at 1). */
typedef struct pprof_build {
    const hp_symdb_t *db;
    hp_pprof_builder_t *b;
    uint64_t *locs, *fns, *maps;
    uint64_t *stack;
    size_t stack_cap;
} pprof_build_t;

static void pprof_build_init(pprof_build_t *pb, const hp_symdb_t *db, hp_pprof_builder_t *b)
{
    memset(pb, 0, sizeof(*pb));
    pb->db = db;
    pb->b = b;
    pb->locs = hp_xcalloc(hp_symdb_n_locations(db) + 1, sizeof(uint64_t));
    pb->fns = hp_xcalloc(hp_symdb_n_functions(db) + 1, sizeof(uint64_t));
    pb->maps = hp_xcalloc(hp_symdb_n_mappings(db) + 1, sizeof(uint64_t));
}

static void pprof_build_fini(pprof_build_t *pb)
{
    free(pb->locs);
    free(pb->fns);
    free(pb->maps);
    free(pb->stack);
}

static uint64_t builder_mapping(pprof_build_t *pb, uint32_t id)
{
    if (id == UINT32_MAX)
        return 0;
    if (pb->maps[id])
        return pb->maps[id];
    const hp_symdb_mapping_t *m = hp_symdb_mapping(pb->db, id);
    hp_pprof_mapping_in_t in = {m->memory_start, m->memory_limit, m->file_offset,
                                hp_symdb_string(pb->db, m->filename), hp_symdb_string(pb->db, m->build_id),
                                m->flags & 1, (m->flags >> 1) & 1, (m->flags >> 2) & 1, (m->flags >> 3) & 1};
    return pb->maps[id] = hp_pprof_builder_mapping(pb->b, &in);
}

static uint64_t builder_function(pprof_build_t *pb, uint32_t id)
{
    if (pb->fns[id])
        return pb->fns[id];
    const hp_symdb_function_t *f = hp_symdb_function(pb->db, id);
    return pb->fns[id] = hp_pprof_builder_function(pb->b, hp_symdb_string(pb->db, f->name),
                                                   hp_symdb_string(pb->db, f->system_name),
                                                   hp_symdb_string(pb->db, f->filename), f->start_line);
}

static uint64_t builder_location(pprof_build_t *pb, uint32_t id)
{
    if (pb->locs[id])
        return pb->locs[id];
    const hp_symdb_location_t *loc = hp_symdb_location(pb->db, id);
    const hp_symdb_line_t *lines = hp_symdb_lines(pb->db, loc);
    hp_pprof_line_in_t in[64], *heap = NULL, *use = in;
    if (loc->line_n > HP_ARRAY_LEN(in))
        use = heap = hp_xmalloc(loc->line_n * sizeof(*in));
    for (uint32_t i = 0; i < loc->line_n; i++)
        use[i] = (hp_pprof_line_in_t){builder_function(pb, lines[i].function), lines[i].line};
    pb->locs[id] = hp_pprof_builder_location(pb->b, builder_mapping(pb, loc->mapping), loc->address, use,
                                             loc->line_n);
    free(heap);
    return pb->locs[id];
}

static void add_stack_sample(pprof_build_t *pb, uint32_t stack, int64_t value)
{
    size_t n = 0;
    for (uint32_t s = stack; s != 0; s = hp_symdb_stack_parent(pb->db, s)) {
        HP_GROW(pb->stack, pb->stack_cap, n + 1);
        pb->stack[n++] = builder_location(pb, hp_symdb_stack_location(pb->db, s));
    }
    hp_pprof_builder_sample(pb->b, pb->stack, n, &value, NULL, 0);
}

/* Adds every (stack, value) of acc to the builder as a sample. */
static void build_pprof(const hp_symdb_t *db, const hp_u64map_t *acc, hp_pprof_builder_t *b)
{
    pprof_build_t pb;
    pprof_build_init(&pb, db, b);
    uint64_t stack, val;
    for (size_t it = 0; hp_u64map_next(acc, &it, &stack, &val);)
        add_stack_sample(&pb, (uint32_t)stack, (int64_t)val);
    pprof_build_fini(&pb);
}

/* The builder's sample type comes from the profile type ID; its time and
 * duration from the selection. */
static void builder_types(hp_pprof_builder_t *b, const char *type_id, const ing_select_t *q)
{
    hp_profile_type_t pt;
    if (type_id && hp_profile_type_parse(hp_str_c(type_id), &pt, NULL) == 0)
        hp_pprof_builder_sample_type(b, pt.sample_type, pt.sample_unit);
    else
        hp_pprof_builder_sample_type(b, HP_STR("samples"), HP_STR("count"));
    int64_t start = q->start_ns == INT64_MIN ? 0 : q->start_ns;
    int64_t dur = q->end_ns == INT64_MAX || start == 0 ? 0 : q->end_ns - start;
    hp_pprof_builder_times(b, start, dur);
}

/* The period type from the profile type ID, the period from the series. */
static void builder_period(hp_pprof_builder_t *b, const char *type_id, int64_t period)
{
    hp_profile_type_t pt;
    if (type_id && hp_profile_type_parse(hp_str_c(type_id), &pt, NULL) == 0)
        hp_pprof_builder_period(b, pt.period_type, pt.period_unit, period);
}

static int handle_merge_profile(void *ctx, const hp_rpc_call_t *call, hp_buf_t *out, hp_err_t *err)
{
    ing_t *g = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    ing_select_t q;
    int rc = ing_parse_select(req, &q, err);
    if (rc == 0 && q.type_id == NULL)
        rc = hp_err_set(err, HP_EINVAL, "SelectMergeProfile needs a profile type");
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    acc_ctx_t a = {{0}, 0, NULL, b};
    hp_u64map_init(&a.acc, 1024);
    if (rc == 0) {
        builder_types(b, q.type_id, &q);
        rc = ing_select_heads(g, call->tenant, &q, acc_begin, acc_profile, acc_end, &a, err);
    }
    hp_u64map_fini(&a.acc);
    if (rc == 0) {
        builder_period(b, q.type_id, a.period);
        hp_pprof_builder_encode(b, out);
    }
    hp_pprof_builder_free(b);
    ing_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

void ing_register_queries(ing_t *g)
{
    hp_rpc_server_handle(g->rpc, "ingester.ProfileTypes", handle_profile_types, g);
    hp_rpc_server_handle(g->rpc, "ingester.LabelNames", handle_label_names, g);
    hp_rpc_server_handle(g->rpc, "ingester.LabelValues", handle_label_values, g);
    hp_rpc_server_handle(g->rpc, "ingester.Series", handle_series, g);
    hp_rpc_server_handle(g->rpc, "ingester.SelectMergeStacktraces", handle_merge_stacktraces, g);
    hp_rpc_server_handle(g->rpc, "ingester.SelectMergeProfile", handle_merge_profile, g);
    ing_register_select_series(g);
}
