/* Unit tests for dot: call graphs in Graphviz DOT as Pyroscope's
 * render?format=dot (pprof's graph and report packages) draws them.
 *
 * The golden graphs were produced by pprof itself: each tree written as a
 * pprof profile with one location per function (no file, line, address
 * or mapping) and cut as Pyroscope cuts its source profile, then
 * `go tool pprof -dot -nodecount=N -nodefraction=0 -edgefraction=0
 * -unit=<count|s>` (Go 1.19.8). The short-name cases are pprof's own
 * (internal/graph/graph_test.go TestShortenFunctionName). */
#include "hotpath/buf.h"
#include "hotpath/dot.h"
#include "hotpath/tree.h"
#include "test.h"
#include "test_tree.h"


/* The DOT of t, in a static buffer. */
static const char *dot(const hp_tree_t *t, int64_t max_nodes, const char *type, const char *unit)
{
    static hp_buf_t out;
    hp_dot_options_t o = {max_nodes, type, unit, 0};
    hp_buf_reset(&out);
    hp_dot_write(t, &o, &out);
    return hp_buf_cstr(&out);
}

/* Lines of s starting with prefix. */
static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

/* Node lines ("N<id> [label=…") in s. */
static int count_nodes(const char *s)
{
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t d = 0;
        while (p[0] == 'N' && p[1 + d] >= '0' && p[1 + d] <= '9')
            d++;
        n += d > 0 && strncmp(p + 1 + d, " [label", 7) == 0;
    }
    return n;
}

/* Every line of s closes each DOT string it opens (escapes skipped). */
static bool strings_closed(const char *s)
{
    bool in = false;
    for (const char *p = s; *p; p++) {
        if (in && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            in = !in;
        else if (*p == '\n' && in)
            return false;
    }
    return !in;
}

/* main;a;c 30, main;a 10, main;b;c 20, main;b 5: flat and cumulative
 * values with percentages, an edge per caller → callee with its weight. */
static void test_golden_basic(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main;a;c", 30);
    hp_test_add_stack(t, "main;a", 10);
    hp_test_add_stack(t, "main;b;c", 20);
    hp_test_add_stack(t, "main;b", 5);
    CHECK_EQ_STR(
        dot(t, 0, "samples", "count"),
        "digraph \"unnamed\" {\n"
        "node [style=filled fillcolor=\"#f8f8f8\"]\n"
        "subgraph cluster_L { \"Type: samples\" [shape=box fontsize=16 label=\"Type: samples\\lShowing nodes "
        "accounting for 65, 100% of 65 total\\l\\lSee https://git.io/JfYMW for how to read the graph\\l\"] "
        "}\n"
        "N1 [label=\"c\\n50 (76.92%)\" id=\"node1\" fontsize=24 shape=box tooltip=\"c (50)\" "
        "color=\"#b20d00\" "
        "fillcolor=\"#edd7d5\"]\n"
        "N2 [label=\"main\\n0 of 65 (100%)\" id=\"node2\" fontsize=8 shape=box tooltip=\"main (65)\" "
        "color=\"#b20000\" fillcolor=\"#edd5d5\"]\n"
        "N3 [label=\"a\\n10 (15.38%)\\nof 40 (61.54%)\" id=\"node3\" fontsize=16 shape=box tooltip=\"a "
        "(40)\" "
        "color=\"#b21800\" fillcolor=\"#edd8d5\"]\n"
        "N4 [label=\"b\\n5 (7.69%)\\nof 25 (38.46%)\" id=\"node4\" fontsize=14 shape=box tooltip=\"b (25)\" "
        "color=\"#b22c00\" fillcolor=\"#eddbd5\"]\n"
        "N2 -> N3 [label=\" 40\" weight=62 penwidth=4 color=\"#b21800\" tooltip=\"main -> a (40)\" "
        "labeltooltip=\"main -> a (40)\"]\n"
        "N3 -> N1 [label=\" 30\" weight=47 penwidth=3 color=\"#b22400\" tooltip=\"a -> c (30)\" "
        "labeltooltip=\"a -> c (30)\"]\n"
        "N2 -> N4 [label=\" 25\" weight=39 penwidth=2 color=\"#b22c00\" tooltip=\"main -> b (25)\" "
        "labeltooltip=\"main -> b (25)\"]\n"
        "N4 -> N1 [label=\" 20\" weight=31 penwidth=2 color=\"#b23500\" tooltip=\"b -> c (20)\" "
        "labeltooltip=\"b -> c (20)\"]\n"
        "}\n");
    hp_tree_free(t);
}

/* max_nodes 3 of 9 functions: the three best by pprof's entropy order
 * stay, x → leaf1 through the dropped y becomes a dotted residual edge,
 * and main → leaf1 through z goes as redundant (main reaches leaf1 via x). */
static void test_golden_node_limit(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main;x;y;leaf1", 40);
    hp_test_add_stack(t, "main;x;leaf2", 30);
    hp_test_add_stack(t, "main;z;y;leaf1", 20);
    hp_test_add_stack(t, "main;z", 10);
    hp_test_add_stack(t, "main;w;v;u", 3);
    const char *s = dot(t, 3, "samples", "count");
    CHECK_EQ_STR(
        s, "digraph \"unnamed\" {\n"
           "node [style=filled fillcolor=\"#f8f8f8\"]\n"
           "subgraph cluster_L { \"Type: samples\" [shape=box fontsize=16 label=\"Type: samples\\lShowing "
           "nodes accounting for 60, 58.25% of 103 total\\lShowing top 3 nodes out of 9\\l\\lSee "
           "https://git.io/JfYMW for how to read the graph\\l\"] }\n"
           "N1 [label=\"main\\n0 of 103 (100%)\" id=\"node1\" fontsize=8 shape=box tooltip=\"main (103)\" "
           "color=\"#b20000\" fillcolor=\"#edd5d5\"]\n"
           "N2 [label=\"leaf1\\n60 (58.25%)\" id=\"node2\" fontsize=24 shape=box tooltip=\"leaf1 (60)\" "
           "color=\"#b21a00\" fillcolor=\"#edd8d5\"]\n"
           "N3 [label=\"x\\n0 of 70 (67.96%)\" id=\"node3\" fontsize=8 shape=box tooltip=\"x (70)\" "
           "color=\"#b21300\" fillcolor=\"#edd8d5\"]\n"
           "N1 -> N3 [label=\" 70\" weight=68 penwidth=4 color=\"#b21300\" tooltip=\"main -> x (70)\" "
           "labeltooltip=\"main -> x (70)\"]\n"
           "N3 -> N2 [label=\" 40\" weight=39 penwidth=2 color=\"#b22c00\" tooltip=\"x ... leaf1 (40)\" "
           "labeltooltip=\"x ... leaf1 (40)\" style=\"dotted\"]\n"
           "}\n");
    CHECK_EQ_INT(count_nodes(s), 3);
    /* a limit at or above the function count draws them all */
    s = dot(t, 9, "samples", "count");
    CHECK_EQ_INT(count_nodes(s), 9);
    CHECK(strstr(s, "Showing top") == NULL);
    CHECK(strstr(s, "style=\"dotted\"") == NULL);
    hp_tree_free(t);
}

/* Nanoseconds shown in seconds, Go package paths and module versions and
 * C++ namespaces shortened, names broken at '.' and "::". */
static void test_golden_names_and_time(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main.main;github.com/acme/app/v2/store.(*DB).Get;runtime.mallocgc", 1500000000);
    hp_test_add_stack(t, "main.main;github.com/acme/app/v2/store.(*DB).Get", 250000000);
    hp_test_add_stack(t, "main.main;std::vector<int>::push_back", 7000000);
    CHECK_EQ_STR(
        dot(t, 0, "cpu", "nanoseconds"),
        "digraph \"unnamed\" {\n"
        "node [style=filled fillcolor=\"#f8f8f8\"]\n"
        "subgraph cluster_L { \"Type: cpu\" [shape=box fontsize=16 label=\"Type: cpu\\lShowing nodes "
        "accounting "
        "for 1.76s, 100% of 1.76s total\\l\\lSee https://git.io/JfYMW for how to read the graph\\l\"] }\n"
        "N1 [label=\"runtime\\nmallocgc\\n1.50s (85.37%)\" id=\"node1\" fontsize=24 shape=box "
        "tooltip=\"runtime.mallocgc (1.50s)\" color=\"#b20800\" fillcolor=\"#edd6d5\"]\n"
        "N2 [label=\"main\\nmain\\n0 of 1.76s (100%)\" id=\"node2\" fontsize=8 shape=box tooltip=\"main.main "
        "(1.76s)\" color=\"#b20000\" fillcolor=\"#edd5d5\"]\n"
        "N3 [label=\"store\\n(*DB)\\nGet\\n0.25s (14.23%)\\nof 1.75s (99.60%)\" id=\"node3\" fontsize=15 "
        "shape=box tooltip=\"github.com/acme/app/v2/store.(*DB).Get (1.75s)\" color=\"#b20000\" "
        "fillcolor=\"#edd5d5\"]\n"
        "N4 [label=\"std\\nvector<int>\\npush_back\\n0.01s (0.4%)\" id=\"node4\" fontsize=10 shape=box "
        "tooltip=\"std::vector<int>::push_back (0.01s)\" color=\"#b2b1ae\" fillcolor=\"#ededec\"]\n"
        "N2 -> N3 [label=\" 1.75s\" weight=100 penwidth=5 color=\"#b20000\" tooltip=\"main.main -> "
        "github.com/acme/app/v2/store.(*DB).Get (1.75s)\" labeltooltip=\"main.main -> "
        "github.com/acme/app/v2/store.(*DB).Get (1.75s)\"]\n"
        "N3 -> N1 [label=\" 1.50s\" weight=86 penwidth=5 color=\"#b20800\" "
        "tooltip=\"github.com/acme/app/v2/store.(*DB).Get -> runtime.mallocgc (1.50s)\" "
        "labeltooltip=\"github.com/acme/app/v2/store.(*DB).Get -> runtime.mallocgc (1.50s)\"]\n"
        "N2 -> N4 [label=\" 0.01s\" color=\"#b2b1ae\" tooltip=\"main.main -> std::vector<int>::push_back "
        "(0.01s)\" labeltooltip=\"main.main -> std::vector<int>::push_back (0.01s)\"]\n"
        "}\n");
    hp_tree_free(t);
}

/* Quotes, backslashes and newlines in names stay inside their DOT
 * strings: \" and \\, and a newline as the "\l" line break. */
static void test_escaping(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main;say \"hi\";C:\\dir\\fn", 7);
    hp_test_add_stack(t, "main;two\nlines", 3);
    const char *s = dot(t, 0, "samples", "count");
    CHECK(strings_closed(s));
    CHECK(strstr(s, "[label=\"say \\\"hi\\\"\\n0 of 7 (70.00%)\" ") != NULL);
    CHECK(strstr(s, "tooltip=\"say \\\"hi\\\" (7)\"") != NULL);
    CHECK(strstr(s, "[label=\"C:\\\\dir\\\\fn\\n7 (70.00%)\" ") != NULL);
    CHECK(strstr(s, "tooltip=\"say \\\"hi\\\" -> C:\\\\dir\\\\fn (7)\"") != NULL);
    CHECK(strstr(s, "[label=\"two\\llines\\n3 (30.00%)\" ") != NULL);
    CHECK(strstr(s, "tooltip=\"main -> two\\llines (3)\"") != NULL);
    CHECK(strchr(s, '\n') != NULL && count_lines(s, "lines") == 0); /* no raw newline split a name */
    hp_tree_free(t);
}

/* Pyroscope draws from its merged profile cut to 512 nodes: smaller
 * subtrees fold into one "other" function; a larger max_nodes cuts at
 * that size instead. */
static void test_source_cut(void)
{
    hp_tree_t *t = hp_tree_new();
    char stack[32];
    hp_test_add_stack(t, "main;hot", 1000);
    for (int i = 0; i < 600; i++) {
        snprintf(stack, sizeof(stack), "main;f%03d", i);
        hp_test_add_stack(t, stack, i + 1);
    }
    /* 602 nodes; the 512th largest total is 91: f000..f089 (1+…+90) fold */
    const char *s = dot(t, 0, "samples", "count");
    CHECK(strstr(s, "of 181300 total\\lShowing top 100 nodes out of 513\\l") != NULL);
    CHECK(strstr(s, "[label=\"other\\n4095 (2.26%)\" ") != NULL);
    CHECK_EQ_INT(count_nodes(s), 100);
    s = dot(t, 1000, "samples", "count");
    CHECK(strstr(s, "other") == NULL);
    CHECK(strstr(s, "Showing top") == NULL);
    CHECK(strstr(s, "accounting for 181300, 100% of 181300 total") != NULL);
    CHECK(strings_closed(s));
    hp_tree_free(t);
}

static void test_empty(void)
{
    hp_tree_t *t = hp_tree_new();
    CHECK_EQ_STR(
        dot(t, 0, NULL, "nanoseconds"),
        "digraph \"unnamed\" {\n"
        "node [style=filled fillcolor=\"#f8f8f8\"]\n"
        "subgraph cluster_L { \"Showing nodes accounting for 0, 0% of 0 total\" [shape=box fontsize=16 "
        "label=\"Showing nodes accounting for 0, 0% of 0 total\\l\\lSee https://git.io/JfYMW for how to "
        "read the graph\\l\"] }\n"
        "}\n");
    hp_tree_free(t);
}

static void test_time_label(void)
{
    hp_tree_t *t = hp_tree_new();
    hp_test_add_stack(t, "main", 1);
    hp_buf_t out = HP_BUF_INIT;
    hp_dot_options_t o = {0, "cpu", "nanoseconds", 1701341220LL * 1000000000}; /* 2023-11-30 10:47 UTC */
    hp_dot_write(t, &o, &out);
    CHECK(strstr(hp_buf_cstr(&out), "label=\"Type: cpu\\lTime: Nov 30, 2023 at 10:47am (UTC)\\lShowing") !=
          NULL);
    hp_buf_fini(&out);
    hp_tree_free(t);
}

static void test_short_names(void)
{
    static const char *const cases[][2] = {
        {"root", "root"},
        {"syscall.Syscall", "syscall.Syscall"},
        {"net/http.(*conn).serve", "http.(*conn).serve"},
        {"github.com/blahBlah/foo.Foo", "foo.Foo"},
        {"github.com/BlahBlah/foo.Foo", "foo.Foo"},
        {"github.com/blah-blah/foo_bar.(*FooBar).Foo", "foo_bar.(*FooBar).Foo"},
        {"encoding/json.(*structEncoder).(encoding/json.encode)-fm",
         "json.(*structEncoder).(encoding/json.encode)-fm"},
        {"github.com/blah/blah/vendor/gopkg.in/redis.v3.(*baseClient).(github.com/blah/blah/vendor/gopkg.in/"
         "redis.v3.process)-fm",
         "redis.v3.(*baseClient).(github.com/blah/blah/vendor/gopkg.in/redis.v3.process)-fm"},
        {"github.com/foo/bar/v4.(*Foo).Bar", "bar.(*Foo).Bar"},
        {"github.com/foo/bar/v4/baz.Foo.Bar", "baz.Foo.Bar"},
        {"github.com/foo/bar/v123.(*Foo).Bar", "bar.(*Foo).Bar"},
        {"github.com/foobar/v0.(*Foo).Bar", "v0.(*Foo).Bar"},
        {"github.com/foobar/v1.(*Foo).Bar", "v1.(*Foo).Bar"},
        {"example.org/v2xyz.Foo", "v2xyz.Foo"},
        {"github.com/foo/bar/v4/v4.(*Foo).Bar", "v4.(*Foo).Bar"},
        {"github.com/foo/bar/v4/foo/bar/v4.(*Foo).Bar", "v4.(*Foo).Bar"},
        {"java.util.concurrent.ThreadPoolExecutor$Worker.run", "ThreadPoolExecutor$Worker.run"},
        {"java.bar.foo.FooBar.run(java.lang.Runnable)", "FooBar.run"},
        {"(anonymous namespace)::Bar::Foo", "Bar::Foo"},
        {"(anonymous namespace)::foo", "foo"},
        {"cpp::namespace::Class::method()::$_100::operator()", "Class::method"},
        {"foo_bar::Foo::bar", "Foo::bar"},
        {"cpp::namespace::Class::method<float, long, int>()", "Class::method<float, long, int>"},
        {"foo", "foo"},
        {"com.google.perftools.gwp.benchmark.FloatBench.lambda$run$0", "FloatBench.lambda$run$0"},
        {"java.bar.foo.FooBar.run$0", "FooBar.run$0"},
    };
    hp_buf_t out = HP_BUF_INIT;
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_buf_reset(&out);
        hp_dot_short_name(hp_str_c(cases[i][0]), &out);
        CHECK_EQ_STR(hp_buf_cstr(&out), cases[i][1]);
    }
    hp_buf_fini(&out);
}

static void test_format_value(void)
{
    static const struct {
        int64_t v;
        const char *unit, *want;
    } cases[] = {
        {1500000000, "nanoseconds", "1.50s"},
        {1000000000, "nanoseconds", "1s"},
        {5, "nanoseconds", "0"},
        {-2500000000, "nanoseconds", "-2.50s"},
        {1500000, "microseconds", "1.50s"},
        {1500000, "milliseconds", "1500s"},
        {2048, "bytes", "2048B"},
        {12345, "count", "12345"},
        {7, "", "7"},
        {0, "bytes", "0"},
    };
    hp_buf_t out = HP_BUF_INIT;
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_buf_reset(&out);
        hp_dot_format_value(cases[i].v, cases[i].unit, &out);
        CHECK_EQ_STR(hp_buf_cstr(&out), cases[i].want);
    }
    hp_buf_fini(&out);
}

int main(void)
{
    HP_RUN(test_golden_basic);
    HP_RUN(test_golden_node_limit);
    HP_RUN(test_golden_names_and_time);
    HP_RUN(test_escaping);
    HP_RUN(test_source_cut);
    HP_RUN(test_empty);
    HP_RUN(test_time_label);
    HP_RUN(test_short_names);
    HP_RUN(test_format_value);
    return hp_test_done();
}
