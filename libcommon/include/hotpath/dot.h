/*
 * dot.h — a call tree drawn as a Graphviz DOT call graph, the way
 * Pyroscope answers GET /pyroscope/render?format=dot: it cuts the merged
 * profile to about 512 nodes (small subtrees folded into "other"), then
 * lays it out as `pprof -dot` does with node fraction and edge fraction 0:
 * one node per function with its flat and cumulative values, edges
 * caller → callee weighted by the samples that pass them, the nodes
 * ranked by pprof's entropy score and the top max_nodes kept, paths
 * through dropped nodes drawn as dotted (residual) edges, values and
 * percentages formatted by pprof's rules for the sample unit.
 *
 * Not for: rendering (no Graphviz here) or flame graphs (tree.h).
 */
#ifndef HOTPATH_DOT_H
#define HOTPATH_DOT_H

#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/tree.h"

/* Pyroscope's default node count for format=dot, and the node count of
 * the merged profile it draws from (raised to max_nodes when larger). */
#define HP_DOT_MAX_NODES 100
#define HP_DOT_SOURCE_MAX_NODES 512

typedef struct hp_dot_options {
    int64_t max_nodes;       /* nodes drawn; ≤ 0: HP_DOT_MAX_NODES */
    const char *sample_type; /* borrowed; the legend's "Type:" line (NULL: none) */
    const char *sample_unit; /* borrowed; "nanoseconds", "bytes", "count" … picks the value format */
    int64_t time_ns;         /* the legend's "Time:" line, in UTC (0: none) */
} hp_dot_options_t;

/* Appends the DOT graph of t to out. t is borrowed and left unchanged. */
void hp_dot_write(const hp_tree_t *t, const hp_dot_options_t *o, hp_buf_t *out);

/* pprof's short form of a function name: package paths, Java packages
 * and C++ namespaces dropped ("github.com/a/b.(*T).F" → "b.(*T).F").
 * Appended to out. */
void hp_dot_short_name(hp_str_t name, hp_buf_t *out);

/* A value as pprof prints it for a unit (its measurement.ScaledLabel
 * with no output unit): time in seconds ("1.50s"), memory in bytes
 * ("2048B"), anything else as a number; two decimals, ".00" dropped. */
void hp_dot_format_value(int64_t v, const char *unit, hp_buf_t *out);

#endif
