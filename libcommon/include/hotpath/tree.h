/*
 * tree.h — the call tree of function names that flame graphs are drawn
 * from: nodes keyed by (parent, name) with self values, merged across
 * profiles, ingesters and time ranges; its compact serialization for
 * ingester → querier; and the flame graph encodings Pyroscope's clients
 * read (querier.v1.FlameGraph levels and flamebearer JSON), with max_nodes
 * and the "other" node.
 *
 * Not for: stacks of locations (symdb.h) or pprof output (pprof.h).
 */
#ifndef HOTPATH_TREE_H
#define HOTPATH_TREE_H

#include "hotpath/buf.h"
#include "hotpath/common.h"

typedef struct hp_tree hp_tree_t;

#define HP_TREE_ROOT 0u

/* The deepest path a tree may hold (and hp_tree_decode_merge accepts);
 * builders fold deeper frames into the node at this depth. */
#define HP_TREE_MAX_DEPTH 4096

hp_tree_t *hp_tree_new(void);
void hp_tree_free(hp_tree_t *t);

/* The child of parent called name (copied), created if absent. */
uint32_t hp_tree_child(hp_tree_t *t, uint32_t parent, hp_str_t name);

/* Interns a name, returning its ID in this tree; with hp_tree_child_id it
 * lets a caller that names many nodes alike hash each name once. */
uint32_t hp_tree_intern(hp_tree_t *t, hp_str_t name);
uint32_t hp_tree_child_id(hp_tree_t *t, uint32_t parent, uint32_t name_id);

/* Adds v to a node's self value. */
void hp_tree_add(hp_tree_t *t, uint32_t node, int64_t v);

/* Adds v at the end of a root-first path of frame names. */
void hp_tree_add_stack(hp_tree_t *t, const hp_str_t *frames, size_t n, int64_t v);

/* Sum of every self value. */
int64_t hp_tree_total(const hp_tree_t *t);

size_t hp_tree_size(const hp_tree_t *t); /* nodes, root excluded */

/* Adds every node of src into dst. */
void hp_tree_merge(hp_tree_t *dst, const hp_tree_t *src);

/* Serializes t: a varint count and that many names, then the nodes in
 * pre-order as (name index, zigzag self, child count) varints. */
void hp_tree_encode(const hp_tree_t *t, hp_buf_t *out);

/* Merges serialized tree bytes into dst. Refuses (HP_EINVAL) malformed
 * input, and input that would make dst exceed max_nodes (0 = 1 << 24)
 * or nest deeper than 4096. */
int hp_tree_decode_merge(hp_tree_t *dst, const void *buf, size_t n, size_t max_nodes,
                         hp_err_t *err) HP_WUR;

/* Calls fn for each root-first path with a non-zero self value. */
typedef void (*hp_tree_visit_fn)(void *ctx, const hp_str_t *frames, size_t n, int64_t self);
void hp_tree_walk(const hp_tree_t *t, hp_tree_visit_fn fn, void *ctx);

/* A flame graph as Pyroscope encodes it: names[0] = "total", one level per
 * depth, 4 values per node [x_offset (delta from the previous node's end on
 * the level), total, self, name index], nodes left to right, children
 * sorted by name; children whose total is below the max_nodes threshold
 * are folded into one "other" child. */
typedef struct hp_flamegraph {
    hp_str_t *names; /* borrowed from the tree */
    size_t n_names;
    int64_t **levels;
    size_t *level_len; /* values per level (multiple of 4) */
    size_t n_levels;
    int64_t total;
    int64_t max_self;
} hp_flamegraph_t;

/* Builds the flame graph of t keeping at most about max_nodes nodes
 * (≤ 0 = all). fg borrows t's names: free fg before t. */
void hp_flamegraph_build(const hp_tree_t *t, int64_t max_nodes, hp_flamegraph_t *fg);
void hp_flamegraph_fini(hp_flamegraph_t *fg);

/* querier.v1.FlameGraph wire encoding, as field `field` of the enclosing
 * message (field 0: the bare message). */
void hp_flamegraph_encode_proto(const hp_flamegraph_t *fg, uint32_t field, hp_buf_t *out);

/* Flamebearer JSON object: {"names":[…],"levels":[[…],…],"numTicks":N,"maxSelf":M}. */
void hp_flamegraph_write_flamebearer(const hp_flamegraph_t *fg, hp_buf_t *out);

/* Pyroscope's `tree` bytes (SelectMergeStacktraces with PROFILE_FORMAT_TREE):
 * depth-first from a virtual root, each node uvarint(name length), name,
 * uvarint(self), uvarint(child count); children in name order, those
 * whose total is below the max_nodes threshold (≤ 0: none) folded into an
 * "other" child. Appended to out. */
void hp_tree_encode_pyroscope(const hp_tree_t *t, int64_t max_nodes, hp_buf_t *out);

/* A diff flame graph of two trees (querier.v1.FlameGraphDiff): the union
 * of both trees' paths, 7 values per node [left x_offset, left total, left
 * self, right x_offset, right total, right self, name index] (each x delta
 * encoded against the previous node on the level, per side), children
 * sorted by name; a node is drawn when either side's total reaches the
 * max_nodes threshold (computed over max(left, right) totals), the rest of
 * a parent's children fold into "other". total = left + right ticks. */
typedef struct hp_flamegraph_diff {
    hp_str_t *names; /* borrowed from the union tree, which the diff owns */
    size_t n_names;
    int64_t **levels;
    size_t *level_len; /* values per level (multiple of 7) */
    size_t n_levels;
    int64_t total, max_self, left_ticks, right_ticks;
    hp_tree_t *u; /* owned: the union of the names */
} hp_flamegraph_diff_t;

void hp_flamegraph_diff_build(const hp_tree_t *left, const hp_tree_t *right, int64_t max_nodes,
                              hp_flamegraph_diff_t *d);
void hp_flamegraph_diff_fini(hp_flamegraph_diff_t *d);
/* querier.v1.FlameGraphDiff wire encoding as field `field` (0: bare). */
void hp_flamegraph_diff_encode_proto(const hp_flamegraph_diff_t *d, uint32_t field, hp_buf_t *out);
/* Flamebearer JSON of a diff ("double" format): {"names":…,"levels":…,
 * "numTicks":N,"maxSelf":M} with 7 values per node. */
void hp_flamegraph_diff_write_flamebearer(const hp_flamegraph_diff_t *d, hp_buf_t *out);

#endif
