/* Call graphs in Graphviz DOT, drawn by the rules of pprof's graph and
 * report packages as Pyroscope uses them for render?format=dot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "hotpath/dot.h"
#include "hotpath/hashmap.h"
#include "hotpath/pbwire.h"

#define NONE UINT32_MAX

/* |v|, the most negative value left as it is (Go's wrap). */
static int64_t abs64(int64_t v)
{
    return v == INT64_MIN ? v : v < 0 ? -v : v;
}

/* ---- values and percentages (pprof's measurement rules) ---- */

/* A unit by the names pprof knows it by, and its size in the kind's base
 * unit (bytes, nanoseconds, GCU). */
typedef struct unit_def {
    const char *alias[3];
    double factor;
} unit_def_t;

/* Values of a kind are printed in its default unit when no output unit is
 * asked for, as Pyroscope's report does. */
typedef struct unit_kind {
    const unit_def_t *units;
    size_t n;
    const char *dflt;
    double dflt_factor;
} unit_kind_t;

static const unit_def_t memory_units[] = {
    {{"b", "byte"}, 1},
    {{"kb", "kbyte", "kilobyte"}, 1024.0},
    {{"mb", "mbyte", "megabyte"}, 1048576.0},
    {{"gb", "gbyte", "gigabyte"}, 1073741824.0},
    {{"tb", "tbyte", "terabyte"}, 1099511627776.0},
    {{"pb", "pbyte", "petabyte"}, 1125899906842624.0},
};
static const unit_def_t time_units[] = {
    {{"ns", "nanosecond"}, 1},    {{"\xce\xbcs", "us", "microsecond"}, 1e3},
    {{"ms", "millisecond"}, 1e6}, {{"s", "sec", "second"}, 1e9},
    {{"hour", "hr"}, 3.6e12},
};
static const unit_def_t gcu_units[] = {
    {{"nanogcu"}, 1e-9}, {{"microgcu"}, 1e-6}, {{"milligcu"}, 1e-3}, {{"gcu"}, 1},        {{"kilogcu"}, 1e3},
    {{"megagcu"}, 1e6},  {{"gigagcu"}, 1e9},   {{"teragcu"}, 1e12},  {{"petagcu"}, 1e15},
};
static const unit_kind_t unit_kinds[] = {
    {memory_units, HP_ARRAY_LEN(memory_units), "B", 1},
    {time_units, HP_ARRAY_LEN(time_units), "s", 1e9},
    {gcu_units, HP_ARRAY_LEN(gcu_units), "GCU", 1},
};

/* The unit kind and factor of a unit name, matched as pprof does:
 * lower-cased, one trailing 's' dropped from names longer than 2 bytes. */
static const unit_kind_t *sniff_unit(const char *unit, double *factor)
{
    char u[64];
    size_t n = strlen(unit);
    if (n >= sizeof(u))
        return NULL;
    for (size_t i = 0; i < n; i++)
        u[i] = (char)(unit[i] >= 'A' && unit[i] <= 'Z' ? unit[i] - 'A' + 'a' : unit[i]);
    if (n > 2 && u[n - 1] == 's')
        n--;
    u[n] = 0;
    for (size_t k = 0; k < HP_ARRAY_LEN(unit_kinds); k++)
        for (size_t i = 0; i < unit_kinds[k].n; i++)
            for (size_t a = 0; a < HP_ARRAY_LEN(unit_kinds[k].units[i].alias); a++)
                if (unit_kinds[k].units[i].alias[a] && strcmp(unit_kinds[k].units[i].alias[a], u) == 0) {
                    *factor = unit_kinds[k].units[i].factor;
                    return &unit_kinds[k];
                }
    return NULL;
}

void hp_dot_format_value(int64_t v, const char *unit, hp_buf_t *out)
{
    double factor = 1, x;
    const unit_kind_t *k = sniff_unit(unit ? unit : "", &factor);
    const char *suffix = "";
    bool neg = v < 0 && v != INT64_MIN; /* pprof scales |v| and negates */
    int64_t m = neg ? -v : v;
    x = (double)m;
    if (k) {
        x = x * factor / k->dflt_factor;
        suffix = k->dflt;
    }
    if (neg)
        x = -x;
    char s[64];
    snprintf(s, sizeof(s), "%.2f", x);
    size_t n = strlen(s);
    if (n > 3 && strcmp(s + n - 3, ".00") == 0)
        s[n - 3] = 0;
    if (strcmp(s, "0") == 0 || strcmp(s, "-0") == 0) {
        hp_buf_putc(out, '0');
        return;
    }
    hp_buf_puts(out, s);
    hp_buf_puts(out, suffix);
}

/* value as a share of total, at least two significant digits, trimmed. */
static void put_percent(int64_t value, int64_t total, hp_buf_t *out)
{
    double r = total != 0 ? fabs((double)value / (double)total) * 100 : 0;
    if (r >= 99.95 && r <= 100.05)
        hp_buf_puts(out, "100%");
    else if (r >= 1.0)
        hp_buf_printf(out, "%.2f%%", r);
    else
        hp_buf_printf(out, "%.2g%%", r);
}

/* ---- DOT text ---- */

/* Escapes for a DOT string: backslash and quote, newline as a
 * left-justified line break. */
static void put_escaped(hp_buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            hp_buf_puts(out, "\\\\");
        else if (s[i] == '"')
            hp_buf_puts(out, "\\\"");
        else if (s[i] == '\n')
            hp_buf_puts(out, "\\l");
        else
            hp_buf_putc(out, s[i]);
    }
}

/* Appends s with every `from` replaced by `to`. */
static void put_replaced(hp_buf_t *out, const char *s, size_t n, const char *from, const char *to)
{
    size_t fl = strlen(from);
    for (size_t i = 0; i < n;) {
        if (n - i >= fl && memcmp(s + i, from, fl) == 0) {
            hp_buf_puts(out, to);
            i += fl;
        } else {
            hp_buf_putc(out, s[i++]);
        }
    }
}

/* pprof's score color: grey near 0, red towards 1, green towards -1. */
static void dot_color(double score, bool background, char out[8])
{
    double sat = background ? 0.1 : 1.0, val = background ? 0.93 : 0.7;
    score = score < -1.0 ? -1.0 : score > 1.0 ? 1.0 : score;
    if (fabs(score) < 0.2)
        sat *= fabs(score) / 0.2;
    if (score > 0.0) /* shift away from grey: score^(1 - 0.7) */
        score = pow(score, 0.3);
    if (score < 0.0)
        score = -pow(-score, 0.3);
    double r = val, g = val, b = val * (1 - sat);
    if (score < 0.0)
        r = val * (1 + sat * score);
    else
        g = val * (1 - sat * score);
    snprintf(out, 8, "#%02x%02x%02x", (unsigned)(uint8_t)(r * 255.0), (unsigned)(uint8_t)(g * 255.0),
             (unsigned)(uint8_t)(b * 255.0));
}

/* ---- short function names (pprof's ShortenFunctionName) ---- */

static bool is_w(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}
static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A Go module version element "/vN" (N ≥ 2) before '.' or '/': its
 * offset and length, first one wins. */
static bool go_version(const char *s, size_t n, size_t *at, size_t *len)
{
    if (memchr(s, '\n', n))
        return false;
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] != '/' || s[i + 1] != 'v')
            continue;
        size_t j = i + 2, d = 0;
        while (j + d < n && is_digit(s[j + d]))
            d++;
        bool num = (d == 1 && s[j] >= '2') || (d >= 2 && s[j] != '0');
        if (num && j + d < n && (s[j + d] == '.' || s[j + d] == '/')) {
            *at = i;
            *len = 2 + d;
            return true;
        }
    }
    return false;
}

/* Where each run of leading path elements "[\w.-]+/" ends; *m of them. */
static size_t *go_path_ends(const char *s, size_t n, size_t *m)
{
    size_t *ends = hp_xmalloc((n / 2 + 1) * sizeof(size_t));
    size_t i = 0;
    *m = 0;
    for (;;) {
        size_t st = i;
        while (i < n && (is_w(s[i]) || s[i] == '-' || s[i] == '.'))
            i++;
        if (i == st || i >= n || s[i] != '/')
            return ends;
        ends[(*m)++] = ++i;
    }
}

/* Go: "path/to/pkg.Func" → "pkg.Func" (the rest must hold a '.'). */
static bool go_short(const char *s, size_t n, size_t *b, size_t *e)
{
    size_t m;
    size_t *ends = go_path_ends(s, n, &m);
    bool ok = false;
    /* the first '.' at or after each end, found right to left so every
     * byte is looked at once (a long path of short elements stays linear) */
    size_t next_dot = n, scanned = n;
    for (size_t k = m; k-- > 0 && !ok;) {
        size_t p = ends[k];
        for (size_t i = scanned; i-- > p;)
            if (s[i] == '.')
                next_dot = i;
        scanned = HP_MIN(scanned, p);
        size_t d = p < n && s[p] != '.' ? next_dot : n;
        if (d + 1 < n && s[d + 1] != '\n') {
            const char *nl = memchr(s + d + 1, '\n', n - d - 1);
            *b = p;
            *e = nl ? (size_t)(nl - s) : n;
            ok = true;
        }
    }
    free(ends);
    return ok;
}

/* Java: "com.pkg.Class.method(args)" → "Class.method". */
static bool java_short(const char *s, size_t n, size_t *b, size_t *e)
{
    size_t ends[256] = {0}, m = 0, i = 0;
    ends[m++] = 0;
    while (m < HP_ARRAY_LEN(ends) && i < n && is_lower(s[i])) {
        size_t j = i + 1;
        while (j < n && is_w(s[j]))
            j++;
        if (j >= n || s[j] != '.')
            break;
        i = j + 1;
        ends[m++] = i;
    }
    for (size_t k = m; k-- > 0;) {
        size_t p = ends[k], q = p + 1, r;
        if (p >= n || !is_upper(s[p]))
            continue;
        while (q < n && (is_w(s[q]) || s[q] == '$'))
            q++;
        if (q >= n || s[q++] != '.')
            continue;
        if (n - q >= 6 && memcmp(s + q, "<init>", 6) == 0 && (q + 6 == n || s[q + 6] == '(')) {
            r = q + 6;
        } else if (q < n && is_lower(s[q])) {
            for (r = q + 1; r < n && (is_w(s[r]) || s[r] == '$');)
                r++;
            if (r != n && s[r] != '(')
                continue;
        } else {
            continue;
        }
        *b = p;
        *e = r;
        return true;
    }
    return false;
}

/* C++: "ns::sub::Class::method<T>(args)" → "Class::method<T>". */
static bool cpp_short(const char *s, size_t n, size_t *b, size_t *e)
{
    size_t ends[256] = {0}, m = 0, i = 0;
    while (m < HP_ARRAY_LEN(ends) && i < n && (is_w(s[i]) && !is_digit(s[i]))) {
        size_t j = i + 1;
        while (j < n && is_w(s[j]))
            j++;
        if (j + 2 > n || s[j] != ':' || s[j + 1] != ':')
            break;
        i = j + 2;
        ends[m++] = i;
    }
    for (size_t k = m; k-- > 0;) {
        size_t u = ends[k];
        while (u < n && s[u] == '_')
            u++;
        if (u >= n || !is_upper(s[u]))
            continue;
        for (u++; u < n && is_w(s[u]);)
            u++;
        if (n - u < 2 || s[u] != ':' || s[u + 1] != ':')
            continue;
        u += 2;
        if (u < n && s[u] == '~')
            u++;
        if (u >= n || !is_w(s[u]) || is_digit(s[u]))
            continue;
        size_t r = u + 1;
        while (r < n && is_w(s[r]))
            r++;
        if (r < n && s[r] == '<') { /* template arguments: up to the line's last '>' */
            const char *nl = memchr(s + r, '\n', n - r);
            size_t lim = nl ? (size_t)(nl - s) : n;
            for (size_t x = lim; x-- > r + 1;)
                if (s[x] == '>') {
                    r = x + 1;
                    break;
                }
        }
        *b = ends[k];
        *e = r;
        return true;
    }
    return false;
}

void hp_dot_short_name(hp_str_t name, hp_buf_t *out)
{
    static const char anon[] = "(anonymous namespace)::";
    const char *s = name.p;
    size_t n = name.n;
    if (n >= sizeof(anon) - 1 && memcmp(s, anon, sizeof(anon) - 1) == 0)
        s += sizeof(anon) - 1, n -= sizeof(anon) - 1;
    hp_buf_t tmp = HP_BUF_INIT;
    size_t at, len, b, e;
    if (go_version(s, n, &at, &len)) {
        hp_buf_append(&tmp, s, at);
        hp_buf_append(&tmp, s + at + len, n - at - len);
        s = (const char *)tmp.data;
        n = tmp.len;
    }
    if (go_short(s, n, &b, &e) || java_short(s, n, &b, &e) || cpp_short(s, n, &b, &e))
        hp_buf_append(out, s + b, e - b);
    else
        hp_buf_append(out, s, n);
    hp_buf_fini(&tmp);
}

/* ---- the tree cut to the source node count ---- */

typedef struct cnode {
    uint32_t f;      /* function ID */
    uint32_t parent; /* index, NONE under the root */
    int64_t self, total;
} cnode_t;

/* The cut tree in pre-order (parents before children), root left out:
 * each node stands for the samples of its stacks that end there (self)
 * and pass through it (total), as the merged pprof profile Pyroscope
 * draws from has one sample per stack. */
typedef struct dinput {
    hp_buf_t bytes;  /* the cut tree in Pyroscope's tree encoding; names point into it */
    hp_str_t *names; /* function ID → name */
    size_t n_names, cap_names;
    hp_idtab_t ids;
    cnode_t *nodes;
    size_t n_nodes, cap_nodes;
    int64_t total;
} dinput_t;

static bool name_eq(const void *ctx, uint32_t id, const void *key)
{
    return hp_str_eq(((const dinput_t *)ctx)->names[id], *(const hp_str_t *)key);
}

static uint32_t intern(dinput_t *in, hp_str_t name)
{
    uint64_t h = XXH3_64bits(name.p, name.n);
    uint32_t id = hp_idtab_find(&in->ids, h, name_eq, in, &name);
    if (id != UINT32_MAX)
        return id;
    HP_GROW(in->names, in->cap_names, in->n_names + 1);
    id = (uint32_t)in->n_names;
    in->names[in->n_names++] = name;
    hp_idtab_insert(&in->ids, h, id);
    return id;
}

static bool read_node(hp_pbr_t *r, hp_str_t *name, uint64_t *self, uint64_t *kids)
{
    uint64_t len;
    if (!hp_pbr_varint(r, &len) || len > (uint64_t)(r->end - r->p))
        return false;
    *name = (hp_str_t){(const char *)r->p, (size_t)len};
    r->p += len;
    return hp_pbr_varint(r, self) && hp_pbr_varint(r, kids);
}

/* t cut to max_nodes nodes with Pyroscope's "other" folding
 * (hp_tree_encode_pyroscope), read back with each node's total. */
static void input_init(dinput_t *in, const hp_tree_t *t, int64_t max_nodes)
{
    memset(in, 0, sizeof(*in));
    hp_idtab_init(&in->ids, 256);
    hp_tree_encode_pyroscope(t, max_nodes, &in->bytes);
    hp_pbr_t r = hp_pbr(in->bytes.data, in->bytes.len);
    typedef struct open {
        uint64_t kids; /* children still to read */
        uint32_t node;
    } open_t;
    open_t *st = NULL;
    size_t sp = 0, cap = 0;
    uint64_t self, kids;
    hp_str_t name;
    if (read_node(&r, &name, &self, &kids)) {
        HP_GROW(st, cap, 1);
        st[sp++] = (open_t){kids, NONE};
    }
    while (sp > 0) {
        if (st[sp - 1].kids == 0) {
            sp--;
            continue;
        }
        st[sp - 1].kids--;
        if (!read_node(&r, &name, &self, &kids))
            break;
        HP_GROW(in->nodes, in->cap_nodes, in->n_nodes + 1);
        in->nodes[in->n_nodes] = (cnode_t){intern(in, name), st[sp - 1].node, (int64_t)self, (int64_t)self};
        HP_GROW(st, cap, sp + 1);
        st[sp++] = (open_t){kids, (uint32_t)in->n_nodes++};
    }
    free(st);
    for (size_t i = in->n_nodes; i-- > 0;) { /* children come after their parent */
        cnode_t *c = &in->nodes[i];
        if (c->parent != NONE)
            in->nodes[c->parent].total = hp_add_wrap(in->nodes[c->parent].total, c->total);
        else
            in->total = hp_add_wrap(in->total, c->total);
    }
}

static void input_fini(dinput_t *in)
{
    hp_buf_fini(&in->bytes);
    free(in->names);
    hp_idtab_fini(&in->ids);
    free(in->nodes);
}

static hp_str_t printable(const dinput_t *in, uint32_t f)
{
    return in->names[f].n ? in->names[f] : HP_STR("<unknown>");
}

/* ---- the graph (pprof's graph.New, trimming and ordering) ---- */

typedef struct dedge {
    uint32_t src, dst;
    int64_t w;
    uint32_t open; /* occurrences on the path being walked */
    bool residual; /* it stands for a path through dropped nodes */
    bool dead;     /* removed as redundant */
} dedge_t;

typedef struct dnode {
    int64_t flat, cum, score;
    uint32_t open, mark;
    uint32_t *in, *out; /* edge indices */
    size_t n_in, n_out, cap_in, cap_out;
} dnode_t;

typedef struct dgraph {
    const dinput_t *in;
    dnode_t *nodes; /* by function ID */
    dedge_t *edges;
    size_t n_edges, cap_edges;
    hp_u64map_t edge_ix; /* src << 32 | dst → edge */
    uint32_t *order;     /* the graph's nodes (cum or flat non-zero), sorted */
    size_t n_order;
    uint32_t mark;
} dgraph_t;

static uint32_t edge_of(dgraph_t *g, uint32_t src, uint32_t dst)
{
    bool found;
    uint64_t e = *hp_u64map_upsert(&g->edge_ix, (uint64_t)src << 32 | dst, g->n_edges, &found);
    if (!found) {
        HP_GROW(g->edges, g->cap_edges, g->n_edges + 1);
        g->edges[g->n_edges++] = (dedge_t){src, dst, 0, 0, false, false};
        dnode_t *s = &g->nodes[src], *d = &g->nodes[dst];
        HP_GROW(s->out, s->cap_out, s->n_out + 1);
        s->out[s->n_out++] = (uint32_t)e;
        HP_GROW(d->in, d->cap_in, d->n_in + 1);
        d->in[d->n_in++] = (uint32_t)e;
    }
    return (uint32_t)e;
}

/* A node of the cut tree on the walk's current path, and what entering it
 * added (undone when the walk leaves it). */
typedef struct step {
    uint32_t node;
    uint32_t f, edge; /* the function and edge it opened, or NONE */
    uint32_t caller;  /* the nearest kept function at or above it */
    bool residual;    /* dropped nodes lie between it and caller */
} step_t;

/* Enters cut-tree node i below `up` (NULL at the top). pprof adds each
 * sample once to every kept function on its stack (cum), to its leaf when
 * kept (flat), and to each distinct edge between consecutive kept
 * functions, residual when dropped ones lie between: a node's total is
 * added where the function or edge first occurs on the path. */
static step_t enter(dgraph_t *g, const bool *kept, const step_t *up, uint32_t i)
{
    const cnode_t *c = &g->in->nodes[i];
    step_t st = {i, NONE, NONE, up ? up->caller : NONE, up && up->residual};
    if (c->total == 0)
        return st;
    if (kept && !kept[c->f]) {
        st.residual = true;
        return st;
    }
    dnode_t *n = &g->nodes[c->f];
    if (n->open++ == 0)
        n->cum = hp_add_wrap(n->cum, c->total);
    n->flat = hp_add_wrap(n->flat, c->self);
    st.f = c->f;
    if (st.caller != NONE && st.caller != c->f) {
        st.edge = edge_of(g, st.caller, c->f);
        dedge_t *e = &g->edges[st.edge];
        if (e->open++ == 0) {
            e->w = hp_add_wrap(e->w, c->total);
            e->residual |= st.residual;
        }
    }
    st.caller = c->f;
    st.residual = false;
    return st;
}

static void leave(dgraph_t *g, const step_t *st)
{
    if (st->f != NONE)
        g->nodes[st->f].open--;
    if (st->edge != NONE)
        g->edges[st->edge].open--;
}

/* The graph of the cut tree; with kept, of the kept functions only. */
static void graph_build(dgraph_t *g, const dinput_t *in, const bool *kept)
{
    memset(g, 0, sizeof(*g));
    g->in = in;
    g->nodes = hp_xcalloc(in->n_names + 1, sizeof(dnode_t));
    hp_u64map_init(&g->edge_ix, 256);
    step_t *path = NULL;
    size_t depth = 0, cap = 0;
    for (uint32_t i = 0; i < in->n_nodes; i++) { /* pre-order: leave what is not i's parent */
        while (depth > 0 && path[depth - 1].node != in->nodes[i].parent)
            leave(g, &path[--depth]);
        HP_GROW(path, cap, depth + 1);
        path[depth] = enter(g, kept, depth ? &path[depth - 1] : NULL, i);
        depth++;
    }
    free(path);
    g->order = hp_xmalloc((in->n_names + 1) * sizeof(uint32_t));
    for (uint32_t f = 0; f < in->n_names; f++)
        if (g->nodes[f].cum != 0 || g->nodes[f].flat != 0)
            g->order[g->n_order++] = f;
}

static void graph_fini(dgraph_t *g)
{
    for (size_t f = 0; g->nodes && f < g->in->n_names; f++) {
        free(g->nodes[f].in);
        free(g->nodes[f].out);
    }
    free(g->nodes);
    free(g->edges);
    free(g->order);
    hp_u64map_fini(&g->edge_ix);
    memset(g, 0, sizeof(*g));
}

/* Go's math.Log2, which the scores are computed with. */
static double go_log2(double x)
{
    int e;
    double f = frexp(x, &e);
    if (f == 0.5)
        return e - 1;
    return log(f) * M_LOG2E + e;
}

/* The entropy of a node's edge weights (plus its own self value). */
static double edge_entropy(const dgraph_t *g, const uint32_t *es, size_t n, int64_t self)
{
    int64_t total = self;
    double score = 0;
    for (size_t i = 0; i < n; i++)
        if (g->edges[es[i]].w > 0)
            total = hp_add_wrap(total, abs64(g->edges[es[i]].w));
    if (total == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        double frac = (double)abs64(g->edges[es[i]].w) / (double)total;
        score += -frac * go_log2(frac);
    }
    if (self > 0) {
        double frac = (double)self / (double)total;
        score += -frac * go_log2(frac);
    }
    return score;
}

/* pprof's entropyScore: favours entry and leaf nodes and nodes whose
 * edges spread the weight, over pass-through nodes. */
static int64_t entropy_score(const dgraph_t *g, const dnode_t *n)
{
    double score = n->n_in == 0 ? 1 : edge_entropy(g, n->in, n->n_in, 0);
    score += n->n_out == 0 ? 1 : edge_entropy(g, n->out, n->n_out, n->flat);
    double x = score * (double)n->cum;
    int64_t v = x >= 9.2e18 ? INT64_MAX : x <= -9.2e18 ? INT64_MIN : (int64_t)x;
    return hp_add_wrap(v, n->flat);
}

static int cmp_nodes(const void *a, const void *b, void *ctx)
{
    const dgraph_t *g = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t sx = abs64(g->nodes[x].score), sy = abs64(g->nodes[y].score);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    int c = hp_str_cmp(printable(g->in, x), printable(g->in, y));
    if (c != 0)
        return c;
    int64_t fx = abs64(g->nodes[x].flat), fy = abs64(g->nodes[y].flat);
    if (fx != fy)
        return fx > fy ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void graph_sort(dgraph_t *g)
{
    for (size_t i = 0; i < g->n_order; i++)
        g->nodes[g->order[i]].score = entropy_score(g, &g->nodes[g->order[i]]);
    if (g->n_order > 1)
        qsort_r(g->order, g->n_order, sizeof(uint32_t), cmp_nodes, g);
}

/* Edge order: heavier first, then by caller name, then callee name. */
static int cmp_edges(const void *a, const void *b, void *ctx)
{
    const dgraph_t *g = ctx;
    const dedge_t *x = &g->edges[*(const uint32_t *)a], *y = &g->edges[*(const uint32_t *)b];
    if (x->w != y->w && abs64(x->w) != abs64(y->w))
        return abs64(x->w) > abs64(y->w) ? -1 : 1;
    int c = hp_str_cmp(printable(g->in, x->src), printable(g->in, y->src));
    return c != 0 ? c : hp_str_cmp(printable(g->in, x->dst), printable(g->in, y->dst));
}

/* Live edges among es[0..n), sorted; *m of them in a new array. */
static uint32_t *sorted_edges(const dgraph_t *g, const uint32_t *es, size_t n, size_t *m)
{
    uint32_t *v = hp_xmalloc((n + 1) * sizeof(uint32_t));
    *m = 0;
    for (size_t i = 0; i < n; i++)
        if (!g->edges[es[i]].dead)
            v[(*m)++] = es[i];
    if (*m > 1)
        qsort_r(v, *m, sizeof(uint32_t), cmp_edges, (void *)g);
    return v;
}

/* Whether e's caller still reaches e's callee when e is removed. */
static bool redundant(dgraph_t *g, uint32_t e, uint32_t *queue)
{
    const dedge_t *ed = &g->edges[e];
    size_t head = 0, tail = 0;
    g->mark++;
    g->nodes[ed->dst].mark = g->mark;
    queue[tail++] = ed->dst;
    while (head < tail) {
        const dnode_t *n = &g->nodes[queue[head++]];
        for (size_t i = 0; i < n->n_in; i++) {
            const dedge_t *ie = &g->edges[n->in[i]];
            if (n->in[i] == e || ie->dead || g->nodes[ie->src].mark == g->mark)
                continue;
            if (ie->src == ed->src)
                return true;
            g->nodes[ie->src].mark = g->mark;
            queue[tail++] = ie->src;
        }
    }
    return false;
}

/* pprof's RemoveRedundantEdges: from the last node back, the lightest
 * residual in-edges whose ends stay connected another way go. */
static void remove_redundant_edges(dgraph_t *g)
{
    uint32_t *queue = hp_xmalloc((g->in->n_names + 1) * sizeof(uint32_t));
    for (size_t i = g->n_order; i-- > 0;) {
        const dnode_t *n = &g->nodes[g->order[i]];
        size_t m;
        uint32_t *in = sorted_edges(g, n->in, n->n_in, &m);
        for (size_t j = m; j-- > 0;) {
            if (!g->edges[in[j]].residual)
                break; /* never past an edge of a real call */
            if (redundant(g, in[j], queue))
                g->edges[in[j]].dead = true;
        }
        free(in);
    }
    free(queue);
}

/* ---- composing the DOT text (pprof's ComposeDot) ---- */

typedef struct compose {
    const dgraph_t *g;
    const char *unit;
    int64_t total;
    uint32_t *id; /* function → node number (1-based), 0 = not drawn */
    hp_buf_t tmp;
} compose_t;

static void put_value(const compose_t *c, int64_t v, hp_buf_t *out)
{
    hp_dot_format_value(v, c->unit, out);
}

/* "Time: Jan 2, 2006 at 3:04pm (UTC)", Go's layout in UTC. */
static void put_time(int64_t ns, hp_buf_t *out)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL)
        return;
    int h = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
    hp_buf_printf(out, "Time: %s %d, %d at %d:%02d%s (UTC)", months[tm.tm_mon], tm.tm_mday, tm.tm_year + 1900,
                  h, tm.tm_min, tm.tm_hour < 12 ? "am" : "pm");
}

/* The legend's lines, each followed by '\n' in lines. */
static void legend_lines(const compose_t *c, const hp_dot_options_t *o, size_t orig, hp_buf_t *lines)
{
    if (o->sample_type && *o->sample_type)
        hp_buf_printf(lines, "Type: %s\n", o->sample_type);
    if (o->time_ns != 0) {
        put_time(o->time_ns, lines);
        hp_buf_putc(lines, '\n');
    }
    int64_t flat = 0;
    for (size_t i = 0; i < c->g->n_order; i++)
        flat = hp_add_wrap(flat, c->g->nodes[c->g->order[i]].flat);
    hp_buf_puts(lines, "Showing nodes accounting for ");
    put_value(c, flat, lines);
    hp_buf_puts(lines, ", ");
    put_percent(flat, c->total, lines);
    hp_buf_puts(lines, " of ");
    put_value(c, c->total, lines);
    hp_buf_puts(lines, " total\n");
    if (c->total != 0 && c->g->n_order > 0 && c->g->n_order < orig)
        hp_buf_printf(lines, "Showing top %zu nodes out of %zu\n", c->g->n_order, orig);
    hp_buf_puts(lines, "\nSee https://git.io/JfYMW for how to read the graph\n");
}

static void write_legend(const compose_t *c, const hp_dot_options_t *o, size_t orig, hp_buf_t *out)
{
    hp_buf_t lines = HP_BUF_INIT;
    legend_lines(c, o, orig, &lines);
    const char *s = (const char *)lines.data, *end = s + lines.len, *nl = memchr(s, '\n', lines.len);
    hp_buf_puts(out, "subgraph cluster_L { \"");
    put_escaped(out, s, (size_t)(nl - s));
    hp_buf_puts(out, "\" [shape=box fontsize=16 label=\"");
    while (s < end) { /* each line escaped, then pprof's "\l" line break */
        nl = memchr(s, '\n', (size_t)(end - s));
        put_escaped(out, s, (size_t)(nl - s));
        hp_buf_puts(out, "\\l");
        s = nl + 1;
    }
    hp_buf_puts(out, "\"] }\n");
    hp_buf_fini(&lines);
}

/* A node's name over several lines: shortened, escaped, split at "::"
 * and '.', each piece ending in "\n". */
static void put_multiline_name(compose_t *c, uint32_t f, hp_buf_t *out)
{
    hp_buf_t a = HP_BUF_INIT, b = HP_BUF_INIT;
    hp_buf_reset(&c->tmp);
    hp_dot_short_name(c->g->in->names[f], &c->tmp);
    put_escaped(&a, (const char *)c->tmp.data, c->tmp.len);
    put_replaced(&b, (const char *)a.data, a.len, "::", "\\n");
    hp_buf_reset(&a);
    put_replaced(&a, (const char *)b.data, b.len, "[...]", "[\xe2\x80\xa6]");
    if (a.len == 0)
        hp_buf_puts(out, "<unknown>");
    else
        put_replaced(out, (const char *)a.data, a.len, ".", "\\n");
    hp_buf_puts(out, "\\n");
    hp_buf_fini(&a);
    hp_buf_fini(&b);
}

static void write_node(compose_t *c, uint32_t f, uint32_t id, double max_flat, hp_buf_t *out)
{
    const dnode_t *n = &c->g->nodes[f];
    hp_buf_t cum = HP_BUF_INIT; /* the value the tooltip shows */
    hp_buf_printf(out, "N%u [label=\"", id);
    put_multiline_name(c, f, out);
    put_value(c, n->flat, &cum);
    if (n->flat != 0) {
        hp_buf_append(out, cum.data, cum.len);
        hp_buf_puts(out, " (");
        put_percent(n->flat, c->total, out);
        hp_buf_putc(out, ')');
    } else {
        hp_buf_putc(out, '0');
    }
    if (n->cum != n->flat) {
        hp_buf_puts(out, n->flat != 0 ? "\\n" : " ");
        hp_buf_reset(&cum);
        put_value(c, n->cum, &cum);
        hp_buf_puts(out, "of ");
        hp_buf_append(out, cum.data, cum.len);
        hp_buf_puts(out, " (");
        put_percent(n->cum, c->total, out);
        hp_buf_putc(out, ')');
    }
    int font = 8; /* 8 to 24 by the square root of the flat share */
    if (max_flat != 0 && n->flat != 0 && (double)abs64(n->flat) <= max_flat)
        font += (int)ceil(16.0 * sqrt((double)abs64(n->flat) / max_flat));
    char fg[8], bg[8];
    dot_color((double)n->cum / (double)abs64(c->total), false, fg);
    dot_color((double)n->cum / (double)abs64(c->total), true, bg);
    hp_buf_printf(out, "\" id=\"node%u\" fontsize=%d shape=box tooltip=\"", id, font);
    hp_str_t name = printable(c->g->in, f);
    put_escaped(out, name.p, name.n);
    hp_buf_puts(out, " (");
    hp_buf_append(out, cum.data, cum.len);
    hp_buf_printf(out, ")\" color=\"%s\" fillcolor=\"%s\"]\n", fg, bg);
    hp_buf_fini(&cum);
}

/* w * k / total as Go's int64 arithmetic would have it without overflow. */
static int64_t share(int64_t w, int64_t k, int64_t total)
{
    if (w > INT64_MAX / k || w < INT64_MIN / k)
        return (int64_t)((double)w * (double)k / (double)total);
    return w * k / total;
}

static void write_edge(compose_t *c, const dedge_t *e, hp_buf_t *out)
{
    hp_buf_t w = HP_BUF_INIT;
    put_value(c, e->w, &w);
    hp_buf_printf(out, "N%u -> N%u [label=\" ", c->id[e->src], c->id[e->dst]);
    hp_buf_append(out, w.data, w.len);
    hp_buf_putc(out, '"');
    if (c->total != 0) {
        /* layout weight 1 + percent of the total (≤ 101), pen width 1 + fifths (≤ 6) */
        int64_t pct = abs64(share(e->w, 100, c->total)), fifths = abs64(share(e->w, 5, c->total));
        char col[8];
        if (pct > 0)
            hp_buf_printf(out, " weight=%lld", (long long)(1 + HP_MIN(pct, 100)));
        if (fifths > 0)
            hp_buf_printf(out, " penwidth=%lld", (long long)(1 + HP_MIN(fifths, 5)));
        dot_color((double)e->w / (double)abs64(c->total), false, col);
        hp_buf_printf(out, " color=\"%s\"", col);
    }
    for (int k = 0; k < 2; k++) { /* tooltip, then labeltooltip: the same text */
        hp_str_t s = printable(c->g->in, e->src), d = printable(c->g->in, e->dst);
        hp_buf_puts(out, k ? " labeltooltip=\"" : " tooltip=\"");
        put_escaped(out, s.p, s.n);
        hp_buf_puts(out, e->residual ? " ... " : " -> ");
        put_escaped(out, d.p, d.n);
        hp_buf_puts(out, " (");
        hp_buf_append(out, w.data, w.len);
        hp_buf_puts(out, ")\"");
    }
    if (e->residual)
        hp_buf_puts(out, " style=\"dotted\"");
    hp_buf_puts(out, "]\n");
    hp_buf_fini(&w);
}

static void compose(const dgraph_t *g, const hp_dot_options_t *o, size_t orig, hp_buf_t *out)
{
    compose_t c = {g, o->sample_unit ? o->sample_unit : "", g->in->total, NULL, HP_BUF_INIT};
    hp_buf_puts(out, "digraph \"unnamed\" {\nnode [style=filled fillcolor=\"#f8f8f8\"]\n");
    write_legend(&c, o, orig, out);
    c.id = hp_xcalloc(g->in->n_names + 1, sizeof(uint32_t));
    double max_flat = 0;
    for (size_t i = 0; i < g->n_order; i++) {
        c.id[g->order[i]] = (uint32_t)i + 1;
        max_flat = HP_MAX(max_flat, (double)abs64(g->nodes[g->order[i]].flat));
    }
    for (size_t i = 0; i < g->n_order; i++)
        write_node(&c, g->order[i], (uint32_t)i + 1, max_flat, out);
    uint32_t *all = hp_xmalloc((g->n_edges + 1) * sizeof(uint32_t));
    size_t n = 0, m;
    for (size_t i = 0; i < g->n_edges; i++)
        all[n++] = (uint32_t)i;
    uint32_t *es = sorted_edges(g, all, n, &m);
    for (size_t i = 0; i < m; i++)
        write_edge(&c, &g->edges[es[i]], out);
    hp_buf_puts(out, "}\n");
    free(es);
    free(all);
    free(c.id);
    hp_buf_fini(&c.tmp);
}

void hp_dot_write(const hp_tree_t *t, const hp_dot_options_t *o, hp_buf_t *out)
{
    int64_t max_nodes = o->max_nodes > 0 ? o->max_nodes : HP_DOT_MAX_NODES;
    dinput_t in;
    input_init(&in, t, HP_MAX(max_nodes, HP_DOT_SOURCE_MAX_NODES));
    dgraph_t g;
    graph_build(&g, &in, NULL);
    graph_sort(&g);
    size_t orig = g.n_order;
    if ((uint64_t)max_nodes < g.n_order) { /* keep the top nodes and draw again from the samples */
        bool *kept = hp_xcalloc(in.n_names + 1, sizeof(bool));
        for (size_t i = 0; i < (size_t)max_nodes; i++)
            kept[g.order[i]] = true;
        graph_fini(&g);
        graph_build(&g, &in, kept);
        graph_sort(&g);
        free(kept);
    }
    remove_redundant_edges(&g);
    compose(&g, o, orig, out);
    graph_fini(&g);
    input_fini(&in);
}
