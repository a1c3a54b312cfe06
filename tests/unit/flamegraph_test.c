/* Golden checks of the flame graph encoding (flamebearer names, levels,
 * numTicks, maxSelf) against Pyroscope's own test fixtures: the input
 * trees and expected values are transcribed from
 *   grafana/pyroscope pkg/model/flamegraph_test.go (Test_ExportToFlamebearer,
 *     Test_FlameGraphMerger "non-empty flamegraph result truncation"), and
 *   grafana/pyroscope pkg/og/structs/flamebearer/flamebearer_test.go
 *     (TestFlamebearerProfile "single sets all attributes correctly").
 * Pyroscope's NewFlameGraph (pkg/model/flamegraph.go) walks the tree
 * depth first from the rightmost child, so names are numbered in that
 * order, while each level lists its nodes left to right, children sorted
 * by name, x offsets delta-encoded against the previous node's end. */
#include "hotpath/buf.h"
#include "hotpath/tree.h"
#include "test.h"
#include "test_tree.h"


/* The flamebearer JSON of t at max_nodes, in a static buffer. */
static const char *flamebearer(const hp_tree_t *t, int64_t max_nodes)
{
    static hp_buf_t out;
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, max_nodes, &fg);
    hp_buf_reset(&out);
    hp_flamegraph_write_flamebearer(&fg, &out);
    hp_flamegraph_fini(&fg);
    return hp_buf_cstr(&out);
}

/* Test_ExportToFlamebearer: stacks (leaf first in the fixture) e;b;a = 1,
 * c;a = 2, d;c;a = 1, all nodes kept (maxNodes -1). */
static void test_pyroscope_export_to_flamebearer(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b;e", 1);
    hp_test_add_stack(t, "a;c", 2);
    hp_test_add_stack(t, "a;c;d", 1);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, -1, &fg);
    static const char *const names[] = {"total", "a", "c", "d", "b", "e"};
    static const int64_t l0[] = {0, 4, 0, 0}, l1[] = {0, 4, 0, 1}, l2[] = {0, 1, 0, 4, 0, 3, 2, 2},
                         l3[] = {0, 1, 1, 5, 2, 1, 1, 3};
    static const int64_t *const levels[] = {l0, l1, l2, l3};
    static const size_t lens[] = {4, 4, 8, 8};
    REQUIRE(fg.n_names == HP_ARRAY_LEN(names));
    for (size_t i = 0; i < fg.n_names; i++)
        CHECK(hp_str_eq_c(fg.names[i], names[i]));
    REQUIRE(fg.n_levels == 4);
    for (size_t l = 0; l < 4; l++) {
        REQUIRE(fg.level_len[l] == lens[l]);
        for (size_t i = 0; i < lens[l]; i++)
            CHECK_EQ_INT(fg.levels[l][i], levels[l][i]);
    }
    CHECK_EQ_INT(fg.total, 4);
    CHECK_EQ_INT(fg.max_self, 2);
    hp_flamegraph_fini(&fg);
    CHECK_EQ_STR(flamebearer(t, -1), "{\"names\":[\"total\",\"a\",\"c\",\"d\",\"b\",\"e\"],"
                                     "\"levels\":[[0,4,0,0],[0,4,0,1],[0,1,0,4,0,3,2,2],[0,1,1,5,2,1,1,3]],"
                                     "\"numTicks\":4,\"maxSelf\":2}");
    hp_tree_free(t);
}

/* TestFlamebearerProfile: a;b = 1, a;c = 2 with maxNodes 1024. */
static void test_pyroscope_flamebearer_profile(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "a;b", 1);
    hp_test_add_stack(t, "a;c", 2);
    CHECK_EQ_STR(flamebearer(t, 1024), "{\"names\":[\"total\",\"a\",\"c\",\"b\"],"
                                       "\"levels\":[[0,3,0,0],[0,3,0,1],[0,1,1,3,0,2,2,2]],"
                                       "\"numTicks\":3,\"maxSelf\":2}");
    hp_tree_free(t);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The stacks a flame graph stands for, as Pyroscope's MergeFlameGraph
 * reads them back: each node with a self value, under the node of the
 * level above whose span holds it. Sorted "a;b 1" lines. */
static const char *stacks_of(const hp_flamegraph_t *fg)
{
    static hp_buf_t out;
    char lines[64][128];
    size_t n = 0;
    for (size_t l = 1; l < fg->n_levels; l++) {
        int64_t x = 0;
        for (size_t i = 0; i < fg->level_len[l]; i += 4) {
            const int64_t *v = fg->levels[l] + i;
            x += v[0];
            hp_str_t path[16];
            int64_t px = x;
            size_t depth = 0;
            path[depth++] = fg->names[v[3]];
            for (size_t up = l - 1; up >= 1 && depth < 16; up--) { /* the node above spanning px */
                int64_t ux = 0;
                for (size_t j = 0; j < fg->level_len[up]; j += 4) {
                    const int64_t *u = fg->levels[up] + j;
                    ux += u[0];
                    if (px >= ux && px < ux + u[1]) {
                        path[depth++] = fg->names[u[3]];
                        px = ux;
                        break;
                    }
                    ux += u[1];
                }
            }
            if (v[2] > 0 && n < 64) {
                size_t o = 0;
                for (size_t k = depth; k-- > 0;)
                    o += (size_t)snprintf(lines[n] + o, sizeof(lines[n]) - o, "%.*s%s", (int)path[k].n,
                                          path[k].p, k ? ";" : "");
                snprintf(lines[n] + o, sizeof(lines[n]) - o, " %lld", (long long)v[2]);
                n++;
            }
            x += v[1];
        }
    }
    qsort(lines, n, sizeof(lines[0]), cmp_line);
    hp_buf_reset(&out);
    for (size_t i = 0; i < n; i++) {
        hp_buf_puts(&out, lines[i]);
        hp_buf_putc(&out, '\n');
    }
    return hp_buf_cstr(&out);
}

/* Test_FlameGraphMerger "non-empty flamegraph result truncation": at
 * max_nodes 4, baz folds into an "other" under bar, and fred's children
 * (zoo, and a real frame called "other") into one "other". The fixture
 * states the stacks read back; the exact levels below follow from
 * NewFlameGraph's rules (right-first numbering: fred, other, foo, qux,
 * bar). */
static void test_pyroscope_truncation(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "foo;bar", 1);
    hp_test_add_stack(t, "foo;bar;baz", 1);
    hp_test_add_stack(t, "foo;qux", 2);
    hp_test_add_stack(t, "fred;zoo", 1);
    hp_test_add_stack(t, "fred;other", 1);
    hp_flamegraph_t fg;
    hp_flamegraph_build(t, 4, &fg);
    CHECK_EQ_STR(stacks_of(&fg), "foo;bar 1\nfoo;bar;other 1\nfoo;qux 2\nfred;other 2\n");
    hp_flamegraph_fini(&fg);
    CHECK_EQ_STR(flamebearer(t, 4),
                 "{\"names\":[\"total\",\"fred\",\"other\",\"foo\",\"qux\",\"bar\"],"
                 "\"levels\":[[0,6,0,0],[0,4,0,3,0,2,0,1],[0,2,1,5,0,2,2,4,0,2,2,2],[1,1,1,2]],"
                 "\"numTicks\":6,\"maxSelf\":2}");
    /* all nodes kept: the fixture's input read back as it went in */
    hp_flamegraph_build(t, -1, &fg);
    CHECK_EQ_STR(stacks_of(&fg), "foo;bar 1\nfoo;bar;baz 1\nfoo;qux 2\nfred;other 1\nfred;zoo 1\n");
    hp_flamegraph_fini(&fg);
    hp_tree_free(t);
}

int main(void)
{
    HP_RUN(test_pyroscope_export_to_flamebearer);
    HP_RUN(test_pyroscope_flamebearer_profile);
    HP_RUN(test_pyroscope_truncation);
    return hp_test_done();
}
