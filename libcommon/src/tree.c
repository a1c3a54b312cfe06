/* Call tree of function names, its serialization, and flame graphs. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/arena.h"
#include "hotpath/hashmap.h"
#include "hotpath/pbwire.h"
#include "hotpath/tree.h"

typedef struct tnode {
    uint32_t name; /* index into names */
    uint32_t parent;
    uint32_t first_child;
    uint32_t next_sibling;
    int64_t self;
} tnode_t;

struct hp_tree {
    tnode_t *nodes; /* nodes[0] is the root */
    size_t n_nodes, cap_nodes;
    hp_str_t *names;
    size_t n_names, cap_names;
    hp_idtab_t name_ids;
    hp_u64map_t children; /* (parent << 32 | name) → node */
    hp_arena_t strmem;
};

#define NONE UINT32_MAX

/* Values come from clients: sums wrap instead of being undefined. */
static inline int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t sub_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

hp_tree_t *hp_tree_new(void)
{
    hp_tree_t *t = hp_xcalloc(1, sizeof(*t));
    hp_arena_init(&t->strmem, 64 * 1024);
    hp_idtab_init(&t->name_ids, 256);
    hp_u64map_init(&t->children, 256);
    HP_GROW(t->nodes, t->cap_nodes, 1);
    t->nodes[t->n_nodes++] = (tnode_t){NONE, NONE, NONE, NONE, 0};
    return t;
}

void hp_tree_free(hp_tree_t *t)
{
    if (t == NULL)
        return;
    free(t->nodes);
    free(t->names);
    hp_idtab_fini(&t->name_ids);
    hp_u64map_fini(&t->children);
    hp_arena_fini(&t->strmem);
    free(t);
}

static bool name_eq(const void *ctx, uint32_t id, const void *key)
{
    const hp_tree_t *t = ctx;
    return hp_str_eq(t->names[id], *(const hp_str_t *)key);
}

static uint32_t intern_name(hp_tree_t *t, hp_str_t s)
{
    uint64_t h = XXH3_64bits(s.p, s.n);
    uint32_t id = hp_idtab_find(&t->name_ids, h, name_eq, t, &s);
    if (id != UINT32_MAX)
        return id;
    id = (uint32_t)t->n_names;
    HP_GROW(t->names, t->cap_names, t->n_names + 1);
    t->names[t->n_names++] = (hp_str_t){hp_arena_strndup(&t->strmem, s.p, s.n), s.n};
    hp_idtab_insert(&t->name_ids, h, id);
    return id;
}

static uint32_t child_by_id(hp_tree_t *t, uint32_t parent, uint32_t name)
{
    bool found;
    uint64_t *slot = hp_u64map_upsert(&t->children, (uint64_t)parent << 32 | name, t->n_nodes, &found);
    if (found)
        return (uint32_t)*slot;
    uint32_t id = (uint32_t)t->n_nodes;
    HP_GROW(t->nodes, t->cap_nodes, t->n_nodes + 1);
    tnode_t *p = &t->nodes[parent];
    t->nodes[t->n_nodes++] = (tnode_t){name, parent, NONE, p->first_child, 0};
    t->nodes[parent].first_child = id;
    return id;
}

uint32_t hp_tree_intern(hp_tree_t *t, hp_str_t name) { return intern_name(t, name); }

uint32_t hp_tree_child_id(hp_tree_t *t, uint32_t parent, uint32_t name_id)
{
    return child_by_id(t, parent, name_id);
}

uint32_t hp_tree_child(hp_tree_t *t, uint32_t parent, hp_str_t name)
{
    return child_by_id(t, parent, intern_name(t, name));
}

void hp_tree_add(hp_tree_t *t, uint32_t node, int64_t v)
{
    t->nodes[node].self = add_wrap(t->nodes[node].self, v);
}

void hp_tree_add_stack(hp_tree_t *t, const hp_str_t *frames, size_t n, int64_t v)
{
    uint32_t node = HP_TREE_ROOT;
    for (size_t i = 0; i < n; i++)
        node = hp_tree_child(t, node, frames[i]);
    hp_tree_add(t, node, v);
}

int64_t hp_tree_total(const hp_tree_t *t)
{
    int64_t sum = 0;
    for (size_t i = 0; i < t->n_nodes; i++)
        sum = add_wrap(sum, t->nodes[i].self);
    return sum;
}

size_t hp_tree_size(const hp_tree_t *t) { return t->n_nodes - 1; }

/* Nodes are created after their parents, so a forward pass can map each
 * src node to its dst node through its parent's mapping. */
void hp_tree_merge(hp_tree_t *dst, const hp_tree_t *src)
{
    uint32_t *name_map = hp_xmalloc((src->n_names + 1) * sizeof(uint32_t));
    uint32_t *node_map = hp_xmalloc(src->n_nodes * sizeof(uint32_t));
    for (size_t i = 0; i < src->n_names; i++)
        name_map[i] = intern_name(dst, src->names[i]);
    node_map[0] = HP_TREE_ROOT;
    hp_tree_add(dst, HP_TREE_ROOT, src->nodes[0].self);
    for (size_t i = 1; i < src->n_nodes; i++) {
        const tnode_t *s = &src->nodes[i];
        node_map[i] = child_by_id(dst, node_map[s->parent], name_map[s->name]);
        hp_tree_add(dst, node_map[i], s->self);
    }
    free(name_map);
    free(node_map);
}

static void put_zigzag(hp_buf_t *out, int64_t v)
{
    hp_buf_put_varint(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* Pre-order with an explicit stack (trees can be thousands deep). */
void hp_tree_encode(const hp_tree_t *t, hp_buf_t *out)
{
    hp_buf_put_varint(out, t->n_names);
    for (size_t i = 0; i < t->n_names; i++) {
        hp_buf_put_varint(out, t->names[i].n);
        hp_buf_append(out, t->names[i].p, t->names[i].n);
    }
    hp_buf_put_varint(out, t->n_nodes - 1);
    uint32_t *stack = hp_xmalloc(t->n_nodes * sizeof(uint32_t));
    size_t sp = 0;
    for (uint32_t c = t->nodes[0].first_child; c != NONE; c = t->nodes[c].next_sibling)
        stack[sp++] = c;
    put_zigzag(out, t->nodes[0].self);
    size_t roots = sp;
    hp_buf_put_varint(out, roots);
    while (sp) {
        uint32_t id = stack[--sp];
        const tnode_t *nd = &t->nodes[id];
        size_t nc = 0;
        for (uint32_t c = nd->first_child; c != NONE; c = t->nodes[c].next_sibling) {
            stack[sp++] = c;
            nc++;
        }
        hp_buf_put_varint(out, nd->name);
        put_zigzag(out, nd->self);
        hp_buf_put_varint(out, nc);
    }
    free(stack);
}

typedef struct frame {
    uint32_t node;
    uint64_t left; /* children still to read */
} frame_t;

static int bad(hp_err_t *err, const char *what)
{
    return hp_err_set(err, HP_EINVAL, "malformed tree: %s", what);
}

static int decode_names(hp_pbr_t *r, hp_tree_t *dst, uint32_t **map, uint64_t *n_names, hp_err_t *err)
{
    if (!hp_pbr_varint(r, n_names) || *n_names > (uint64_t)(r->end - r->p))
        return bad(err, "name count");
    *map = hp_xmalloc((*n_names + 1) * sizeof(uint32_t));
    for (uint64_t i = 0; i < *n_names; i++) {
        uint64_t len;
        if (!hp_pbr_varint(r, &len) || len > (uint64_t)(r->end - r->p))
            return bad(err, "truncated name");
        (*map)[i] = intern_name(dst, (hp_str_t){(const char *)r->p, (size_t)len});
        r->p += len;
    }
    return 0;
}

static int decode_nodes(hp_pbr_t *r, hp_tree_t *dst, const uint32_t *map, uint64_t n_names,
                        size_t max_nodes, hp_err_t *err)
{
    uint64_t count, zz, roots;
    if (!hp_pbr_varint(r, &count) || !hp_pbr_varint(r, &zz) || !hp_pbr_varint(r, &roots))
        return bad(err, "header");
    if (count > (uint64_t)(r->end - r->p))
        return bad(err, "node count");
    if (hp_tree_size(dst) + count > max_nodes)
        return hp_err_set(err, HP_ETOOLARGE, "tree too large: %llu nodes (limit %zu)",
                          (unsigned long long)count, max_nodes);
    hp_tree_add(dst, HP_TREE_ROOT, hp_pb_unzigzag(zz));
    enum { MAX_DEPTH = 4096 };
    frame_t *st = hp_xmalloc(MAX_DEPTH * sizeof(frame_t));
    size_t sp = 0;
    st[sp++] = (frame_t){HP_TREE_ROOT, roots};
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        while (sp && st[sp - 1].left == 0)
            sp--;
        uint64_t name, nc;
        if (sp == 0 || !hp_pbr_varint(r, &name) || !hp_pbr_varint(r, &zz) || !hp_pbr_varint(r, &nc)) {
            rc = bad(err, "truncated node");
        } else if (name >= n_names) {
            rc = bad(err, "name index out of range");
        } else if (sp >= MAX_DEPTH) {
            rc = bad(err, "deeper than 4096");
        } else {
            st[sp - 1].left--;
            uint32_t node = child_by_id(dst, st[sp - 1].node, map[name]);
            hp_tree_add(dst, node, hp_pb_unzigzag(zz));
            st[sp++] = (frame_t){node, nc};
        }
    }
    while (sp && st[sp - 1].left == 0)
        sp--;
    free(st);
    if (rc == 0 && sp != 0)
        rc = bad(err, "fewer nodes than child counts");
    if (rc == 0 && r->p != r->end)
        rc = bad(err, "trailing bytes");
    return rc;
}

int hp_tree_decode_merge(hp_tree_t *dst, const void *buf, size_t n, size_t max_nodes, hp_err_t *err)
{
    hp_pbr_t r = hp_pbr(buf, n);
    uint32_t *map = NULL;
    uint64_t n_names = 0;
    if (max_nodes == 0)
        max_nodes = 1u << 24;
    int rc = decode_names(&r, dst, &map, &n_names, err);
    if (rc == 0)
        rc = decode_nodes(&r, dst, map, n_names, max_nodes, err);
    free(map);
    return rc;
}

void hp_tree_walk(const hp_tree_t *t, hp_tree_visit_fn fn, void *ctx)
{
    /* depth of each node, then the path by following parents */
    hp_str_t *path = NULL;
    size_t cap = 0;
    for (size_t i = 1; i < t->n_nodes; i++) {
        if (t->nodes[i].self == 0)
            continue;
        size_t depth = 0;
        for (uint32_t k = (uint32_t)i; k != HP_TREE_ROOT; k = t->nodes[k].parent)
            depth++;
        HP_GROW(path, cap, depth);
        size_t d = depth;
        for (uint32_t k = (uint32_t)i; k != HP_TREE_ROOT; k = t->nodes[k].parent)
            path[--d] = t->names[t->nodes[k].name];
        fn(ctx, path, depth, t->nodes[i].self);
    }
    free(path);
}

/* ---- flame graphs ---- */

/* Totals of every node (children are created after parents, so one
 * backward pass accumulates them). The root's own self (empty stacks) is
 * left out, as Pyroscope's total is the sum of the root nodes. */
static int64_t *node_totals(const hp_tree_t *t)
{
    int64_t *tot = hp_xmalloc(t->n_nodes * sizeof(int64_t));
    tot[HP_TREE_ROOT] = 0;
    for (size_t i = 1; i < t->n_nodes; i++)
        tot[i] = t->nodes[i].self;
    for (size_t i = t->n_nodes; i-- > 1;)
        tot[t->nodes[i].parent] = add_wrap(tot[t->nodes[i].parent], tot[i]);
    return tot;
}

/* The k-th largest of v[0..n) (k < n), by quickselect: the array is
 * reordered. Linear on average, where a full sort was the flame graph's
 * biggest cost. */
static int64_t kth_largest(int64_t *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot)
                i++;
            while (v[j] < pivot)
                j--;
            if (i <= j) {
                int64_t x = v[i];
                v[i] = v[j];
                v[j] = x;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* The smallest total a node may have and still be drawn on its own, so
 * that about max_nodes nodes are kept. */
static int64_t min_value(const int64_t *tot, size_t n, int64_t max_nodes)
{
    if (max_nodes <= 0 || (size_t)max_nodes >= n - 1)
        return 0;
    int64_t *v = hp_xmalloc((n - 1) * sizeof(int64_t));
    memcpy(v, tot + 1, (n - 1) * sizeof(int64_t));
    int64_t m = kth_largest(v, n - 1, (size_t)max_nodes - 1);
    free(v);
    return m;
}

typedef struct fg_builder {
    const hp_tree_t *t;
    const int64_t *tot;
    int64_t min_val;
    hp_flamegraph_t *fg;
    size_t *level_cap;
    hp_u64map_t name_idx; /* tree name ID → flame graph name index */
    uint32_t other_name;
    uint32_t *kids; /* scratch for sorting children */
    size_t kids_cap;
} fg_builder_t;

static void level_push(fg_builder_t *b, size_t level, int64_t x, int64_t total, int64_t self, int64_t name)
{
    hp_flamegraph_t *fg = b->fg;
    if (level >= fg->n_levels) {
        size_t n = level + 1;
        fg->levels = hp_xrealloc(fg->levels, n * sizeof(*fg->levels));
        fg->level_len = hp_xrealloc(fg->level_len, n * sizeof(size_t));
        b->level_cap = hp_xrealloc(b->level_cap, n * sizeof(size_t));
        for (size_t i = fg->n_levels; i < n; i++) {
            fg->levels[i] = NULL;
            fg->level_len[i] = b->level_cap[i] = 0;
        }
        fg->n_levels = n;
    }
    HP_GROW(fg->levels[level], b->level_cap[level], fg->level_len[level] + 4);
    int64_t *o = fg->levels[level] + fg->level_len[level];
    o[0] = x, o[1] = total, o[2] = self, o[3] = name;
    fg->level_len[level] += 4;
    if (self > fg->max_self)
        fg->max_self = self;
}

static int64_t fg_name(fg_builder_t *b, uint32_t tree_name)
{
    bool found;
    uint64_t *slot = hp_u64map_upsert(&b->name_idx, tree_name, b->fg->n_names, &found);
    if (!found) {
        b->fg->names = hp_xrealloc(b->fg->names, (b->fg->n_names + 1) * sizeof(hp_str_t));
        b->fg->names[b->fg->n_names++] = b->t->names[tree_name];
    }
    return (int64_t)*slot;
}

static int cmp_child_name(const void *a, const void *b, void *ctx)
{
    const hp_tree_t *t = ctx;
    return hp_str_cmp(t->names[t->nodes[*(const uint32_t *)a].name],
                      t->names[t->nodes[*(const uint32_t *)b].name]);
}

typedef struct fg_item {
    uint32_t node; /* NONE = an "other" node */
    uint32_t level;
    int64_t x;
    int64_t other_total;
} fg_item_t;

/* Sorted children of node that are drawn on their own, plus the total of
 * those folded into "other". */
static size_t drawn_children(fg_builder_t *b, uint32_t node, int64_t *other)
{
    const hp_tree_t *t = b->t;
    size_t n = 0;
    *other = 0;
    for (uint32_t c = t->nodes[node].first_child; c != NONE; c = t->nodes[c].next_sibling) {
        if (b->tot[c] == 0)
            continue;
        if (b->tot[c] < b->min_val || hp_str_eq_c(t->names[t->nodes[c].name], "other")) {
            *other = add_wrap(*other, b->tot[c]);
            continue;
        }
        HP_GROW(b->kids, b->kids_cap, n + 1);
        b->kids[n++] = c;
    }
    if (n > 1) /* kids is NULL until the first drawn child */
        qsort_r(b->kids, n, sizeof(uint32_t), cmp_child_name, (void *)t);
    return n;
}

/* Depth-first from the rightmost child, as Pyroscope's NewFlameGraph
 * walks: names are numbered in that order, and each level lists its nodes
 * right to left until reverse_levels. */
static void fg_walk(fg_builder_t *b)
{
    fg_item_t *st = NULL;
    size_t sp = 0, cap = 0;
    HP_GROW(st, cap, 1);
    st[sp++] = (fg_item_t){HP_TREE_ROOT, 0, 0, 0};
    while (sp) {
        fg_item_t it = st[--sp];
        if (it.node == NONE) {
            level_push(b, it.level, it.x, it.other_total, it.other_total, (int64_t)b->other_name);
            continue;
        }
        int64_t self = it.node == HP_TREE_ROOT ? 0 : b->t->nodes[it.node].self;
        int64_t name = it.node == HP_TREE_ROOT ? 0 : fg_name(b, b->t->nodes[it.node].name);
        level_push(b, it.level, it.x, b->tot[it.node], self, name);
        int64_t other;
        size_t n = drawn_children(b, it.node, &other);
        HP_GROW(st, cap, sp + n + 1);
        /* as Pyroscope: the node's self first, then its children, then
         * "other"; pushed left to right, so the rightmost is visited first */
        int64_t end = add_wrap(it.x, self);
        for (size_t i = 0; i < n; i++) {
            st[sp++] = (fg_item_t){b->kids[i], it.level + 1, end, 0};
            end = add_wrap(end, b->tot[b->kids[i]]);
        }
        if (other) {
            if (b->other_name == NONE) {
                b->fg->names = hp_xrealloc(b->fg->names, (b->fg->n_names + 1) * sizeof(hp_str_t));
                b->other_name = (uint32_t)b->fg->n_names;
                b->fg->names[b->fg->n_names++] = HP_STR("other");
            }
            st[sp++] = (fg_item_t){NONE, it.level + 1, end, other};
        }
    }
    free(st);
}

/* Puts each level's nodes (groups of 4) left to right: fg_walk met them
 * right to left. */
static void reverse_levels(hp_flamegraph_t *fg)
{
    for (size_t l = 0; l < fg->n_levels; l++) {
        int64_t *v = fg->levels[l];
        for (size_t i = 0, j = fg->level_len[l]; i + 4 < j; i += 4, j -= 4)
            for (size_t k = 0; k < 4; k++) {
                int64_t x = v[i + k];
                v[i + k] = v[j - 4 + k];
                v[j - 4 + k] = x;
            }
    }
}

static void delta_encode(hp_flamegraph_t *fg)
{
    for (size_t l = 0; l < fg->n_levels; l++) {
        int64_t prev = 0;
        int64_t *v = fg->levels[l];
        for (size_t i = 0; i < fg->level_len[l]; i += 4) {
            int64_t abs_x = v[i];
            v[i] = sub_wrap(abs_x, prev);
            prev = add_wrap(abs_x, v[i + 1]);
        }
    }
}

void hp_flamegraph_build(const hp_tree_t *t, int64_t max_nodes, hp_flamegraph_t *fg)
{
    memset(fg, 0, sizeof(*fg));
    fg_builder_t b;
    memset(&b, 0, sizeof(b));
    b.t = t;
    b.fg = fg;
    b.tot = node_totals(t);
    b.min_val = min_value(b.tot, t->n_nodes, max_nodes);
    b.other_name = NONE;
    hp_u64map_init(&b.name_idx, 256);
    fg->names = hp_xmalloc(sizeof(hp_str_t));
    fg->names[fg->n_names++] = HP_STR("total");
    fg->total = b.tot[HP_TREE_ROOT];
    fg_walk(&b);
    reverse_levels(fg);
    delta_encode(fg);
    hp_u64map_fini(&b.name_idx);
    free(b.level_cap);
    free(b.kids);
    free((void *)b.tot);
}

void hp_flamegraph_fini(hp_flamegraph_t *fg)
{
    for (size_t i = 0; i < fg->n_levels; i++)
        free(fg->levels[i]);
    free(fg->levels);
    free(fg->level_len);
    free(fg->names);
    memset(fg, 0, sizeof(*fg));
}

void hp_flamegraph_encode_proto(const hp_flamegraph_t *fg, uint32_t field, hp_buf_t *out)
{
    size_t mark = field ? hp_pb_begin_len(out, field) : 0;
    for (size_t i = 0; i < fg->n_names; i++)
        hp_pb_put_bytes(out, 1, fg->names[i].p, fg->names[i].n);
    for (size_t l = 0; l < fg->n_levels; l++) {
        size_t lm = hp_pb_begin_len(out, 2);
        hp_pb_put_packed_i64(out, 1, fg->levels[l], fg->level_len[l]);
        hp_pb_end_len(out, lm);
    }
    if (fg->total)
        hp_pb_put_uint(out, 3, (uint64_t)fg->total);
    if (fg->max_self)
        hp_pb_put_uint(out, 4, (uint64_t)fg->max_self);
    if (field)
        hp_pb_end_len(out, mark);
}

void hp_flamegraph_write_flamebearer(const hp_flamegraph_t *fg, hp_buf_t *out)
{
    hp_buf_puts(out, "{\"names\":[");
    for (size_t i = 0; i < fg->n_names; i++) {
        if (i)
            hp_buf_putc(out, ',');
        hp_buf_put_json_str(out, fg->names[i].p, fg->names[i].n);
    }
    hp_buf_puts(out, "],\"levels\":[");
    for (size_t l = 0; l < fg->n_levels; l++) {
        if (l)
            hp_buf_putc(out, ',');
        hp_buf_putc(out, '[');
        for (size_t i = 0; i < fg->level_len[l]; i++) {
            if (i)
                hp_buf_putc(out, ',');
            hp_buf_put_i64(out, fg->levels[l][i]);
        }
        hp_buf_putc(out, ']');
    }
    hp_buf_printf(out, "],\"numTicks\":%lld,\"maxSelf\":%lld}", (long long)fg->total,
                  (long long)fg->max_self);
}

/* ---- Pyroscope's tree bytes ---- */

typedef struct pt_item {
    uint32_t node;   /* NONE: an "other" node */
    int64_t other;   /* its value */
} pt_item_t;

void hp_tree_encode_pyroscope(const hp_tree_t *t, int64_t max_nodes, hp_buf_t *out)
{
    fg_builder_t b;
    memset(&b, 0, sizeof(b));
    b.t = t;
    b.tot = node_totals(t);
    b.min_val = min_value(b.tot, t->n_nodes, max_nodes);
    pt_item_t *st = NULL;
    size_t sp = 0, cap = 0;
    HP_GROW(st, cap, 1);
    st[sp++] = (pt_item_t){HP_TREE_ROOT, 0};
    while (sp) {
        pt_item_t it = st[--sp];
        if (it.node == NONE) {
            hp_buf_put_varint(out, 5);
            hp_buf_append(out, "other", 5);
            hp_buf_put_varint(out, (uint64_t)it.other);
            hp_buf_put_varint(out, 0);
            continue;
        }
        hp_str_t name = it.node == HP_TREE_ROOT ? HP_STR("") : t->names[t->nodes[it.node].name];
        int64_t self = it.node == HP_TREE_ROOT ? 0 : t->nodes[it.node].self;
        hp_buf_put_varint(out, name.n);
        hp_buf_append(out, name.p, name.n);
        hp_buf_put_varint(out, (uint64_t)HP_MAX(self, 0));
        int64_t other;
        size_t n = drawn_children(&b, it.node, &other);
        hp_buf_put_varint(out, n + (other > 0));
        HP_GROW(st, cap, sp + n + 1);
        if (other > 0) /* "other" sorts after the names it stands for: pushed first, read last */
            st[sp++] = (pt_item_t){NONE, other};
        for (size_t i = n; i-- > 0;)
            st[sp++] = (pt_item_t){b.kids[i], 0};
    }
    free(st);
    free(b.kids);
    free((void *)b.tot);
}

/* ---- diff flame graphs ---- */

/* Grows v (capacity *cap) to at least n entries, the new ones zero. */
static void grow_zeroed(int64_t **v, size_t *cap, size_t n)
{
    if (n <= *cap)
        return;
    size_t old = *cap;
    HP_GROW(*v, *cap, n);
    memset(*v + old, 0, (*cap - old) * sizeof(int64_t));
}

/* Maps every node of src into u (creating the union of paths) and adds
 * src's self values into self[] (grown to u's size, new slots zeroed). */
static void map_into(hp_tree_t *u, const hp_tree_t *src, int64_t **self, size_t *cap)
{
    uint32_t *name_map = hp_xmalloc((src->n_names + 1) * sizeof(uint32_t));
    uint32_t *node_map = hp_xmalloc(src->n_nodes * sizeof(uint32_t));
    for (size_t i = 0; i < src->n_names; i++)
        name_map[i] = intern_name(u, src->names[i]);
    node_map[0] = HP_TREE_ROOT;
    for (size_t i = 1; i < src->n_nodes; i++) {
        node_map[i] = child_by_id(u, node_map[src->nodes[i].parent], name_map[src->nodes[i].name]);
        grow_zeroed(self, cap, u->n_nodes);
        (*self)[node_map[i]] = add_wrap((*self)[node_map[i]], src->nodes[i].self);
    }
    free(name_map);
    free(node_map);
}

/* Totals from self values over u's structure (children after parents). */
static int64_t *totals_of(const hp_tree_t *u, const int64_t *self)
{
    int64_t *tot = hp_xmalloc(u->n_nodes * sizeof(int64_t));
    tot[HP_TREE_ROOT] = 0;
    for (size_t i = 1; i < u->n_nodes; i++)
        tot[i] = self[i];
    for (size_t i = u->n_nodes; i-- > 1;)
        tot[u->nodes[i].parent] = add_wrap(tot[u->nodes[i].parent], tot[i]);
    return tot;
}

typedef struct dg_builder {
    hp_flamegraph_diff_t *d;
    const int64_t *ls, *rs, *lt, *rt; /* left/right self and total per union node */
    int64_t min_val;
    size_t *level_cap;
    int64_t other_name; /* -1 until used */
    uint32_t *kids;
    size_t kids_cap;
} dg_builder_t;

static void dg_push(dg_builder_t *b, size_t level, const int64_t v[7])
{
    hp_flamegraph_diff_t *d = b->d;
    if (level >= d->n_levels) {
        size_t n = level + 1;
        d->levels = hp_xrealloc(d->levels, n * sizeof(*d->levels));
        d->level_len = hp_xrealloc(d->level_len, n * sizeof(size_t));
        b->level_cap = hp_xrealloc(b->level_cap, n * sizeof(size_t));
        for (size_t i = d->n_levels; i < n; i++) {
            d->levels[i] = NULL;
            d->level_len[i] = b->level_cap[i] = 0;
        }
        d->n_levels = n;
    }
    HP_GROW(d->levels[level], b->level_cap[level], d->level_len[level] + 7);
    memcpy(d->levels[level] + d->level_len[level], v, 7 * sizeof(int64_t));
    d->level_len[level] += 7;
    d->max_self = HP_MAX(d->max_self, HP_MAX(v[2], v[5]));
}

static int64_t dg_other_name(dg_builder_t *b)
{
    if (b->other_name < 0) {
        b->d->names = hp_xrealloc(b->d->names, (b->d->n_names + 1) * sizeof(hp_str_t));
        b->other_name = (int64_t)b->d->n_names;
        b->d->names[b->d->n_names++] = HP_STR("other");
    }
    return b->other_name;
}

typedef struct dg_item {
    uint32_t node; /* NONE = an "other" node */
    uint32_t level;
    int64_t xl, xr;
    int64_t ol, or_; /* an "other" node's left and right totals */
} dg_item_t;

/* Children of node drawn on their own, sorted by name; the rest's totals
 * in *ol, *or_. */
static size_t dg_children(dg_builder_t *b, uint32_t node, int64_t *ol, int64_t *or_)
{
    const hp_tree_t *u = b->d->u;
    size_t n = 0;
    *ol = *or_ = 0;
    for (uint32_t c = u->nodes[node].first_child; c != NONE; c = u->nodes[c].next_sibling) {
        if (b->lt[c] == 0 && b->rt[c] == 0)
            continue;
        bool drawn = (b->lt[c] >= b->min_val || b->rt[c] >= b->min_val) &&
                     !hp_str_eq_c(u->names[u->nodes[c].name], "other");
        if (!drawn) {
            *ol = add_wrap(*ol, b->lt[c]);
            *or_ = add_wrap(*or_, b->rt[c]);
            continue;
        }
        HP_GROW(b->kids, b->kids_cap, n + 1);
        b->kids[n++] = c;
    }
    if (n > 1)
        qsort_r(b->kids, n, sizeof(uint32_t), cmp_child_name, (void *)u);
    return n;
}

static void dg_walk(dg_builder_t *b, hp_u64map_t *name_idx)
{
    const hp_tree_t *u = b->d->u;
    dg_item_t *st = NULL;
    size_t sp = 0, cap = 0;
    HP_GROW(st, cap, 1);
    st[sp++] = (dg_item_t){HP_TREE_ROOT, 0, 0, 0, 0, 0};
    while (sp) {
        dg_item_t it = st[--sp];
        if (it.node == NONE) {
            int64_t v[7] = {it.xl, it.ol, it.ol, it.xr, it.or_, it.or_, dg_other_name(b)};
            dg_push(b, it.level, v);
            continue;
        }
        int64_t name = 0;
        if (it.node != HP_TREE_ROOT) {
            bool found;
            uint64_t *slot = hp_u64map_upsert(name_idx, u->nodes[it.node].name, b->d->n_names, &found);
            if (!found) {
                b->d->names = hp_xrealloc(b->d->names, (b->d->n_names + 1) * sizeof(hp_str_t));
                b->d->names[b->d->n_names++] = u->names[u->nodes[it.node].name];
            }
            name = (int64_t)*slot;
        }
        int64_t ls = it.node == HP_TREE_ROOT ? 0 : b->ls[it.node], rs = it.node == HP_TREE_ROOT ? 0 : b->rs[it.node];
        int64_t v[7] = {it.xl, b->lt[it.node], ls, it.xr, b->rt[it.node], rs, name};
        dg_push(b, it.level, v);
        int64_t ol, or_;
        size_t n = dg_children(b, it.node, &ol, &or_);
        HP_GROW(st, cap, sp + n + 1);
        int64_t el = add_wrap(it.xl, ls), er = add_wrap(it.xr, rs); /* self first, then children */
        for (size_t i = 0; i < n; i++)
            el = add_wrap(el, b->lt[b->kids[i]]), er = add_wrap(er, b->rt[b->kids[i]]);
        if (ol || or_)
            st[sp++] = (dg_item_t){NONE, it.level + 1, el, er, ol, or_};
        for (size_t i = n; i-- > 0;) { /* right to left: the leftmost is visited first */
            el = sub_wrap(el, b->lt[b->kids[i]]);
            er = sub_wrap(er, b->rt[b->kids[i]]);
            st[sp++] = (dg_item_t){b->kids[i], it.level + 1, el, er, 0, 0};
        }
    }
    free(st);
}

/* x offsets (at `at` in each group of 7) as deltas from the previous node's end. */
static void dg_delta(hp_flamegraph_diff_t *d, size_t at)
{
    for (size_t l = 0; l < d->n_levels; l++) {
        int64_t prev = 0, *v = d->levels[l];
        for (size_t i = at; i < d->level_len[l]; i += 7) {
            int64_t abs_x = v[i];
            v[i] = sub_wrap(abs_x, prev);
            prev = add_wrap(abs_x, v[i + 1]);
        }
    }
}

void hp_flamegraph_diff_build(const hp_tree_t *left, const hp_tree_t *right, int64_t max_nodes,
                              hp_flamegraph_diff_t *d)
{
    memset(d, 0, sizeof(*d));
    d->u = hp_tree_new();
    int64_t *ls = NULL, *rs = NULL;
    size_t lcap = 0, rcap = 0;
    map_into(d->u, left, &ls, &lcap);
    map_into(d->u, right, &rs, &rcap);
    size_t n = d->u->n_nodes;
    grow_zeroed(&ls, &lcap, n); /* both as long as the union */
    grow_zeroed(&rs, &rcap, n);
    int64_t *lt = totals_of(d->u, ls), *rt = totals_of(d->u, rs);
    int64_t *mx = hp_xmalloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++)
        mx[i] = HP_MAX(lt[i], rt[i]);
    dg_builder_t b = {d, ls, rs, lt, rt, min_value(mx, n, max_nodes), NULL, -1, NULL, 0};
    free(mx);
    d->left_ticks = lt[HP_TREE_ROOT];
    d->right_ticks = rt[HP_TREE_ROOT];
    d->total = add_wrap(d->left_ticks, d->right_ticks);
    d->names = hp_xmalloc(sizeof(hp_str_t));
    d->names[d->n_names++] = HP_STR("total");
    hp_u64map_t name_idx;
    hp_u64map_init(&name_idx, 256);
    dg_walk(&b, &name_idx);
    dg_delta(d, 0);
    dg_delta(d, 3);
    hp_u64map_fini(&name_idx);
    free(b.level_cap);
    free(b.kids);
    free(ls);
    free(rs);
    free(lt);
    free(rt);
}

void hp_flamegraph_diff_fini(hp_flamegraph_diff_t *d)
{
    for (size_t i = 0; i < d->n_levels; i++)
        free(d->levels[i]);
    free(d->levels);
    free(d->level_len);
    free(d->names);
    hp_tree_free(d->u);
    memset(d, 0, sizeof(*d));
}

void hp_flamegraph_diff_encode_proto(const hp_flamegraph_diff_t *d, uint32_t field, hp_buf_t *out)
{
    size_t mark = field ? hp_pb_begin_len(out, field) : 0;
    for (size_t i = 0; i < d->n_names; i++)
        hp_pb_put_bytes(out, 1, d->names[i].p, d->names[i].n);
    for (size_t l = 0; l < d->n_levels; l++) {
        size_t lm = hp_pb_begin_len(out, 2);
        hp_pb_put_packed_i64(out, 1, d->levels[l], d->level_len[l]);
        hp_pb_end_len(out, lm);
    }
    hp_pb_put_uint(out, 3, (uint64_t)d->total);
    hp_pb_put_uint(out, 4, (uint64_t)d->max_self);
    hp_pb_put_uint(out, 5, (uint64_t)d->left_ticks);
    hp_pb_put_uint(out, 6, (uint64_t)d->right_ticks);
    if (field)
        hp_pb_end_len(out, mark);
}

void hp_flamegraph_diff_write_flamebearer(const hp_flamegraph_diff_t *d, hp_buf_t *out)
{
    hp_buf_puts(out, "{\"names\":[");
    for (size_t i = 0; i < d->n_names; i++) {
        if (i)
            hp_buf_putc(out, ',');
        hp_buf_put_json_str(out, d->names[i].p, d->names[i].n);
    }
    hp_buf_puts(out, "],\"levels\":[");
    for (size_t l = 0; l < d->n_levels; l++) {
        if (l)
            hp_buf_putc(out, ',');
        hp_buf_putc(out, '[');
        for (size_t i = 0; i < d->level_len[l]; i++) {
            if (i)
                hp_buf_putc(out, ',');
            hp_buf_put_i64(out, d->levels[l][i]);
        }
        hp_buf_putc(out, ']');
    }
    hp_buf_printf(out, "],\"numTicks\":%lld,\"maxSelf\":%lld}", (long long)d->total, (long long)d->max_self);
}
