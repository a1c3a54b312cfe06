/* The JFR chunk parser's class table: the metadata event's element tree
 * (root → metadata → class → field) read into classes and fields, field
 * types resolved, and the classes and fields the converter cares about
 * recognised by name (see jfr_chunk.h). */
#include <string.h>

#include "jfr_chunk.h"

/* The metadata's string table: elements name everything by index. */
typedef struct meta {
    hp_str_t *strs;
    uint32_t n_strs;
} meta_t;

/* Where an element sits in the tree. */
enum { E_OTHER, E_TOP, E_ROOT, E_METADATA, E_CLASS, E_FIELD };

/* Reads a string index and returns the string ("" and a failure when out
 * of range). */
static hp_str_t meta_str(const meta_t *m, rd_t *r)
{
    uint32_t i = rd_int(r);
    if (i >= m->n_strs) {
        rd_fail(r, "a metadata string index is out of range");
        return (hp_str_t){"", 0};
    }
    return m->strs[i];
}

/* Parses a decimal attribute; false when it is not a number. */
static bool parse_u64(hp_str_t s, uint64_t *v)
{
    uint64_t x = 0;
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (s.p[i] < '0' || s.p[i] > '9' || x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* Opens a class: its fields follow in c->fld. */
static void add_class(hp__jfr_chunk_t *c)
{
    HP_GROW(c->cls, c->cap_cls, c->n_cls + 1);
    memset(&c->cls[c->n_cls], 0, sizeof(klass_t));
    c->cls[c->n_cls].f_off = (uint32_t)c->n_fld;
    c->n_cls++;
}

/* Adds a field to the class opened last. */
static void add_field(hp__jfr_chunk_t *c)
{
    HP_GROW(c->fld, c->cap_fld, c->n_fld + 1);
    memset(&c->fld[c->n_fld], 0, sizeof(field_t));
    c->n_fld++;
    c->cls[c->n_cls - 1].f_n++;
}

/* Applies one attribute to the class or field the element opened. */
static void meta_attr(hp__jfr_chunk_t *c, rd_t *r, int kind, hp_str_t key, hp_str_t val)
{
    klass_t *k = kind == E_CLASS ? &c->cls[c->n_cls - 1] : NULL;
    field_t *f = kind == E_FIELD ? &c->fld[c->n_fld - 1] : NULL;
    bool ok = true;
    if (k && hp_str_eq_c(key, "name"))
        k->name = val;
    else if (k && hp_str_eq_c(key, "id"))
        ok = parse_u64(val, &k->id);
    else if (f && hp_str_eq_c(key, "name"))
        f->name = val;
    else if (f && hp_str_eq_c(key, "class"))
        ok = parse_u64(val, &f->type);
    else if (f && hp_str_eq_c(key, "constantPool"))
        f->cp = hp_str_eq_c(val, "true");
    else if (f && hp_str_eq_c(key, "dimension"))
        f->array = hp_str_eq_c(val, "1");
    if (!ok)
        rd_fail(r, "a metadata ID is not a number");
}

/* The kind of element name opens under parent: the tree root → metadata
 * → class → field matters, everything else (region, annotation, setting)
 * is read past. */
static int element_kind(hp_str_t name, int parent)
{
    static const struct {
        int parent;
        const char *name;
        int kind;
    } tree[] = {
        {E_TOP, "root", E_ROOT},
        {E_ROOT, "metadata", E_METADATA},
        {E_METADATA, "class", E_CLASS},
        {E_CLASS, "field", E_FIELD},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(tree); i++)
        if (parent == tree[i].parent && hp_str_eq_c(name, tree[i].name))
            return tree[i].kind;
    return E_OTHER;
}

/* One element: name, attributes, children. Classes and fields it meets
 * are appended to the chunk's tables. */
static void meta_element(hp__jfr_chunk_t *c, rd_t *r, const meta_t *m, int parent, unsigned depth)
{
    if (depth > MAX_DEPTH || !spend(c, r, 1)) {
        rd_fail(r, "metadata elements are nested too deeply");
        return;
    }
    int kind = element_kind(meta_str(m, r), parent);
    if (parent == E_TOP && kind != E_ROOT)
        rd_fail(r, "the metadata does not start with a root element");
    if (kind == E_CLASS)
        add_class(c);
    if (kind == E_FIELD)
        add_field(c);
    uint32_t n_attr = rd_count(r);
    for (uint32_t i = 0; i < n_attr && !r->bad; i++) {
        hp_str_t key = meta_str(m, r);
        hp_str_t val = meta_str(m, r);
        meta_attr(c, r, kind, key, val);
    }
    uint32_t n_children = rd_count(r);
    for (uint32_t i = 0; i < n_children && !r->bad; i++)
        meta_element(c, r, m, kind, depth + 1);
}

/* Reads the metadata event at off: its string table, then the element
 * tree. Classes and fields land in c->cls and c->fld. */
static int read_elements(hp__jfr_chunk_t *c, size_t off)
{
    rd_t r = {c->base + off, c->base + c->size, c->compressed, false, NULL};
    uint32_t size = rd_int(&r);
    if (r.bad || size == 0 || size > c->size - off)
        return hp__jfr_fail(c, "metadata at %zu: size %u is out of range", off, size);
    r.end = c->base + off + size;
    uint64_t type = rd_long(&r);
    if (!r.bad && type != T_METADATA)
        return hp__jfr_fail(c, "metadata at %zu: expected event type 0, found %llu", off,
                            (unsigned long long)type);
    for (int i = 0; i < 3; i++)
        (void)rd_long(&r); /* start time, duration, metadata ID */
    meta_t m = {NULL, rd_count(&r)};
    m.strs = hp_arena_calloc(&c->arena, m.n_strs + 1, sizeof(hp_str_t));
    for (uint32_t i = 0; i < m.n_strs && !r.bad; i++) {
        jstr_t s = {{"", 0}, 0, false, false};
        hp__jfr_read_string(c, &r, &s);
        if (s.is_ref)
            rd_fail(&r, "a metadata string refers to a constant pool");
        m.strs[i] = s.s;
    }
    meta_element(c, &r, &m, E_TOP, 0);
    if (r.bad)
        return hp__jfr_fail(c, "metadata at %zu: %s", off, rd_why(&r));
    return 0;
}

/* Class names the converter cares about, and what they are. */
static void classify(klass_t *k)
{
    static const struct {
        const char *name;
        uint8_t prim, pool, ev;
    } known[] = {
        {"boolean", P_BOOLEAN, PK_NONE, HP__JFR_EV_NONE},
        {"byte", P_BYTE, PK_NONE, HP__JFR_EV_NONE},
        {"char", P_CHAR, PK_NONE, HP__JFR_EV_NONE},
        {"short", P_SHORT, PK_NONE, HP__JFR_EV_NONE},
        {"int", P_INT, PK_NONE, HP__JFR_EV_NONE},
        {"long", P_LONG, PK_NONE, HP__JFR_EV_NONE},
        {"float", P_FLOAT, PK_NONE, HP__JFR_EV_NONE},
        {"double", P_DOUBLE, PK_NONE, HP__JFR_EV_NONE},
        {"java.lang.String", P_STRING, PK_STRING, HP__JFR_EV_NONE},
        {"jdk.types.Symbol", P_OBJECT, PK_SYMBOL, HP__JFR_EV_NONE},
        {"java.lang.Class", P_OBJECT, PK_CLASS, HP__JFR_EV_NONE},
        {"jdk.types.Method", P_OBJECT, PK_METHOD, HP__JFR_EV_NONE},
        {"jdk.types.StackTrace", P_OBJECT, PK_STACK, HP__JFR_EV_NONE},
        {"jdk.types.ThreadState", P_OBJECT, PK_STATE, HP__JFR_EV_NONE},
        {"jdk.ExecutionSample", P_OBJECT, PK_NONE, HP__JFR_EV_EXEC},
        {"profiler.WallClockSample", P_OBJECT, PK_NONE, HP__JFR_EV_WALL},
        {"jdk.ObjectAllocationInNewTLAB", P_OBJECT, PK_NONE, HP__JFR_EV_TLAB_IN},
        {"jdk.ObjectAllocationOutsideTLAB", P_OBJECT, PK_NONE, HP__JFR_EV_TLAB_OUT},
        {"jdk.ObjectAllocationSample", P_OBJECT, PK_NONE, HP__JFR_EV_ALLOC_SAMPLE},
        {"jdk.JavaMonitorEnter", P_OBJECT, PK_NONE, HP__JFR_EV_MONITOR},
        {"jdk.ThreadPark", P_OBJECT, PK_NONE, HP__JFR_EV_PARK},
        {"profiler.LiveObject", P_OBJECT, PK_NONE, HP__JFR_EV_LIVE},
        {"profiler.Malloc", P_OBJECT, PK_NONE, HP__JFR_EV_MALLOC},
        {"jdk.ActiveSetting", P_OBJECT, PK_NONE, HP__JFR_EV_SETTING},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(known); i++) {
        if (hp_str_eq_c(k->name, known[i].name)) {
            k->prim = known[i].prim;
            k->pool = known[i].pool;
            k->ev = known[i].ev;
            return;
        }
    }
}

/* The role of field f of class k: a field counts only with the class,
 * name, type and shape jfr-parser binds it with ("" = any event class). */
static uint8_t role_of(const hp__jfr_chunk_t *c, const klass_t *k, const field_t *f)
{
    static const struct {
        const char *cls, *field, *type;
        bool cp, array;
        uint8_t role;
    } roles[] = {
        {"jdk.types.Symbol", "string", "java.lang.String", false, false, R_STR},
        {"jdk.types.ThreadState", "name", "java.lang.String", false, false, R_STR},
        {"java.lang.Class", "name", "jdk.types.Symbol", true, false, R_NAME},
        {"jdk.types.Method", "type", "java.lang.Class", true, false, R_CLASS},
        {"jdk.types.Method", "name", "jdk.types.Symbol", true, false, R_NAME},
        {"jdk.types.StackTrace", "truncated", "boolean", false, false, R_TRUNC},
        {"jdk.types.StackTrace", "frames", "jdk.types.StackFrame", false, true, R_FRAMES},
        {"jdk.types.StackFrame", "method", "jdk.types.Method", true, false, R_METHOD},
        {"jdk.types.StackFrame", "lineNumber", "int", false, false, R_LINE},
        {"", "stackTrace", "jdk.types.StackTrace", true, false, R_STACK},
        {"", "contextId", "long", false, false, R_CONTEXT},
        {"", "spanId", "long", false, false, R_SPAN_ID},
        {"", "spanName", "long", false, false, R_SPAN_NAME},
        {"jdk.ExecutionSample", "state", "jdk.types.ThreadState", true, false, R_STATE},
        {"profiler.WallClockSample", "samples", "int", false, false, R_VALUE},
        {"jdk.ObjectAllocationInNewTLAB", "tlabSize", "long", false, false, R_VALUE},
        {"jdk.ObjectAllocationOutsideTLAB", "allocationSize", "long", false, false, R_VALUE},
        {"jdk.ObjectAllocationSample", "weight", "long", false, false, R_VALUE},
        {"jdk.JavaMonitorEnter", "duration", "long", false, false, R_VALUE},
        {"jdk.ThreadPark", "duration", "long", false, false, R_VALUE},
        {"profiler.Malloc", "size", "long", false, false, R_VALUE},
        {"jdk.ActiveSetting", "name", "java.lang.String", false, false, R_SET_NAME},
        {"jdk.ActiveSetting", "value", "java.lang.String", false, false, R_SET_VALUE},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(roles); i++) {
        bool any_event = roles[i].cls[0] == '\0' && k->ev != HP__JFR_EV_NONE;
        if ((any_event || hp_str_eq_c(k->name, roles[i].cls)) && hp_str_eq_c(f->name, roles[i].field) &&
            hp_str_eq_c(c->cls[f->cls].name, roles[i].type) && f->cp == roles[i].cp &&
            f->array == roles[i].array)
            return roles[i].role;
    }
    return R_NONE;
}

/* Indexes the classes by ID, resolves field types and assigns roles. */
static int finish_metadata(hp__jfr_chunk_t *c)
{
    for (size_t i = 0; i < c->n_cls; i++) {
        classify(&c->cls[i]);
        pput(c, &c->cls_by_id, c->cls[i].id, i);
    }
    for (size_t i = 0; i < c->n_cls; i++) {
        const klass_t *k = &c->cls[i];
        for (uint32_t j = 0; j < k->f_n; j++) {
            field_t *f = &c->fld[k->f_off + j];
            uint64_t ci;
            if (!pget(c, &c->cls_by_id, f->type, &ci))
                return hp__jfr_fail(c, "metadata: field %.*s of class %.*s has unknown type %llu",
                                    (int)f->name.n, f->name.p, (int)k->name.n, k->name.p,
                                    (unsigned long long)f->type);
            f->cls = (uint32_t)ci;
        }
    }
    for (size_t i = 0; i < c->n_cls; i++)
        for (uint32_t j = 0; j < c->cls[i].f_n; j++)
            c->fld[c->cls[i].f_off + j].role = role_of(c, &c->cls[i], &c->fld[c->cls[i].f_off + j]);
    return 0;
}

int hp__jfr_read_metadata(hp__jfr_chunk_t *c, size_t off)
{
    int rc = read_elements(c, off);
    return rc != 0 ? rc : finish_metadata(c);
}
