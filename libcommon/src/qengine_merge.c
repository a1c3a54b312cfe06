/* query.SelectMergeStacktraces and SelectMergeProfile: the selected
 * profiles summed per stack, then as a call tree of function names or as a
 * pprof, per source while its symbols are at hand. A selection with a span
 * filter (SelectMergeSpanProfile) sums only the samples of those spans; one
 * with a call site only the stacks under it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/callsite.h"
#include "hotpath/hashmap.h"
#include "hotpath/pprof.h"
#include "hotpath/profile.h"
#include "hotpath/tree.h"
#include "hotpath/v1/rpc.pb-c.h"
#include "qengine_impl.h"

/* A Select* run: (stack → value) summed per head, then handed to the
 * head's consumer (tree or pprof) while the head is still locked. */
typedef struct acc_ctx {
    const hp_select_t *q;
    hp_u64map_t acc;
    int64_t period;
    hp_tree_t *tree;       /* SelectMergeStacktraces */
    hp_pprof_builder_t *b; /* SelectMergeProfile */
    hp_callsite_t cs;      /* the selection's call site, on this head's symdb */
} acc_ctx_t;

static void acc_begin(void *ctx, const hp_head_t *h)
{
    acc_ctx_t *a = ctx;
    hp_u64map_clear(&a->acc);
    hp_callsite_use(&a->cs, h->symdb);
}

static void acc_profile(void *ctx, const hp_head_t *h, uint32_t si, const hp_series_t *s,
                        const hp_series_profile_t *pr)
{
    acc_ctx_t *a = ctx;
    if (s->period > a->period)
        a->period = s->period;
    if (a->q->by_span && s->spans == NULL)
        return; /* no sample of this series has a span */
    for (uint32_t k = 0; k < pr->n; k++) {
        if (a->q->by_span && !hp_select_span(a->q, s->spans[pr->off + k]))
            continue;
        if (!hp_callsite_match(&a->cs, s->stacks[pr->off + k]))
            continue;
        bool found;
        uint64_t *v = hp_u64map_upsert(&a->acc, s->stacks[pr->off + k], 0, &found);
        *v = (uint64_t)hp_add_wrap((int64_t)*v, s->values[pr->off + k]);
    }
}

static void build_tree(const hp_symdb_t *db, const hp_u64map_t *acc, hp_tree_t *tree);
static void build_pprof(const hp_symdb_t *db, const hp_u64map_t *acc, const hp_select_t *q,
                        hp_pprof_builder_t *b);

static void acc_end(void *ctx, const hp_head_t *h)
{
    acc_ctx_t *a = ctx;
    if (a->tree)
        build_tree(h->symdb, &a->acc, a->tree);
    if (a->b)
        build_pprof(h->symdb, &a->acc, a->q, a->b);
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
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req, &q, err);
    hp_tree_t *tree = hp_tree_new();
    acc_ctx_t a = {&q, {0}, 0, tree, NULL, {0}};
    hp_u64map_init(&a.acc, 1024);
    hp_callsite_init(&a.cs, q.call_site, q.n_call_site);
    if (rc == 0)
        rc = qe_select(qe, call->tenant, &q, acc_begin, acc_profile, acc_end, &a, err);
    hp_u64map_fini(&a.acc);
    hp_callsite_fini(&a.cs);
    if (rc == 0)
        hp_tree_encode(tree, out);
    hp_tree_free(tree);
    hp_select_fini(&q);
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
    uint64_t *leaf_locs; /* Go PGO aggregate_callees: leaf variants without the line */
    uint64_t *stack;
    size_t stack_cap;
    uint32_t keep; /* Go PGO keep_locations: the leaf-most this many (0: all) */
} pprof_build_t;

static void pprof_build_init(pprof_build_t *pb, const hp_symdb_t *db, const hp_select_t *q,
                             hp_pprof_builder_t *b)
{
    memset(pb, 0, sizeof(*pb));
    pb->db = db;
    pb->b = b;
    pb->locs = hp_xcalloc(hp_symdb_n_locations(db) + 1, sizeof(uint64_t));
    pb->fns = hp_xcalloc(hp_symdb_n_functions(db) + 1, sizeof(uint64_t));
    pb->maps = hp_xcalloc(hp_symdb_n_mappings(db) + 1, sizeof(uint64_t));
    if (q->pgo_aggregate_callees)
        pb->leaf_locs = hp_xcalloc(hp_symdb_n_locations(db) + 1, sizeof(uint64_t));
    pb->keep = q->pgo_keep_locations;
}

static void pprof_build_fini(pprof_build_t *pb)
{
    free(pb->locs);
    free(pb->fns);
    free(pb->maps);
    free(pb->leaf_locs);
    free(pb->stack);
}

static uint64_t builder_mapping(pprof_build_t *pb, uint32_t id)
{
    if (id == UINT32_MAX)
        return 0;
    if (pb->maps[id])
        return pb->maps[id];
    const hp_symdb_mapping_t *m = hp_symdb_mapping(pb->db, id);
    hp_pprof_mapping_in_t in = {m->memory_start,
                                m->memory_limit,
                                m->file_offset,
                                hp_symdb_string(pb->db, m->filename),
                                hp_symdb_string(pb->db, m->build_id),
                                m->flags & 1,
                                (m->flags >> 1) & 1,
                                (m->flags >> 2) & 1,
                                (m->flags >> 3) & 1};
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

/* The builder's location for symdb location id; as_leaf: the variant Go
 * PGO's aggregate_callees wants at a stack's leaf — its innermost line
 * without a line number, so the samples of one callee merge whatever line
 * of it they were in. */
static uint64_t builder_location(pprof_build_t *pb, uint32_t id, bool as_leaf)
{
    uint64_t *memo = as_leaf ? &pb->leaf_locs[id] : &pb->locs[id];
    if (*memo)
        return *memo;
    const hp_symdb_location_t *loc = hp_symdb_location(pb->db, id);
    const hp_symdb_line_t *lines = hp_symdb_lines(pb->db, loc);
    hp_pprof_line_in_t in[64], *heap = NULL, *use = in;
    if (loc->line_n > HP_ARRAY_LEN(in))
        use = heap = hp_xmalloc(loc->line_n * sizeof(*in));
    for (uint32_t i = 0; i < loc->line_n; i++)
        use[i] = (hp_pprof_line_in_t){builder_function(pb, lines[i].function), lines[i].line};
    if (as_leaf && loc->line_n > 0)
        use[0].line = 0; /* lines are innermost first */
    *memo =
        hp_pprof_builder_location(pb->b, builder_mapping(pb, loc->mapping), loc->address, use, loc->line_n);
    free(heap);
    return *memo;
}

/* One sample of the stack's locations, leaf first — with Go PGO, only the
 * leaf-most keep of them, the leaf's line cleared for aggregate_callees.
 * The builder merges samples with equal stacks. */
static void add_stack_sample(pprof_build_t *pb, uint32_t stack, int64_t value)
{
    size_t n = 0;
    for (uint32_t s = stack; s != 0 && (pb->keep == 0 || n < pb->keep);
         s = hp_symdb_stack_parent(pb->db, s)) {
        HP_GROW(pb->stack, pb->stack_cap, n + 1);
        pb->stack[n] = builder_location(pb, hp_symdb_stack_location(pb->db, s), n == 0 && pb->leaf_locs);
        n++;
    }
    hp_pprof_builder_sample(pb->b, pb->stack, n, &value, NULL, 0);
}

/* Adds every (stack, value) of acc to the builder as a sample. */
static void build_pprof(const hp_symdb_t *db, const hp_u64map_t *acc, const hp_select_t *q,
                        hp_pprof_builder_t *b)
{
    pprof_build_t pb;
    pprof_build_init(&pb, db, q, b);
    uint64_t stack, val;
    for (size_t it = 0; hp_u64map_next(acc, &it, &stack, &val);)
        add_stack_sample(&pb, (uint32_t)stack, (int64_t)val);
    pprof_build_fini(&pb);
}

/* The builder's sample type comes from the profile type ID; its time and
 * duration from the selection. */
static void builder_types(hp_pprof_builder_t *b, const char *type_id, const hp_select_t *q)
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
    hp_qengine_t *qe = ctx;
    Hotpath__V1__SelectRequest *req =
        hotpath__v1__select_request__unpack(NULL, call->payload_len, call->payload);
    hp_select_t q;
    int rc = hp_select_parse(req, &q, err);
    if (rc == 0 && q.type_id == NULL)
        rc = hp_err_set(err, HP_EINVAL, "SelectMergeProfile needs a profile type");
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    acc_ctx_t a = {&q, {0}, 0, NULL, b, {0}};
    hp_u64map_init(&a.acc, 1024);
    /* Go PGO takes precedence over a call site, as in Pyroscope */
    hp_callsite_init(&a.cs, q.call_site, q.pgo ? 0 : q.n_call_site);
    if (rc == 0) {
        builder_types(b, q.type_id, &q);
        rc = qe_select(qe, call->tenant, &q, acc_begin, acc_profile, acc_end, &a, err);
    }
    hp_u64map_fini(&a.acc);
    hp_callsite_fini(&a.cs);
    if (rc == 0) {
        builder_period(b, q.type_id, a.period);
        hp_pprof_builder_encode(b, out);
    }
    hp_pprof_builder_free(b);
    hp_select_fini(&q);
    if (req)
        hotpath__v1__select_request__free_unpacked(req, NULL);
    return rc;
}

void qe_register_merges(hp_qengine_t *qe, hp_rpc_server_t *rpc)
{
    hp_rpc_server_handle(rpc, "query.SelectMergeStacktraces", handle_merge_stacktraces, qe);
    hp_rpc_server_handle(rpc, "query.SelectMergeProfile", handle_merge_profile, qe);
}
