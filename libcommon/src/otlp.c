/* OTLP profiles (profiles/v1development) → pprof, as Pyroscope's OTLP
 * receiver converts them: one pprof per (profile, service), symbols taken
 * from the request's dictionary, every index checked before it is used. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/hashmap.h"
#include "hotpath/otlp.h"
#include "hotpath/pbjson.h"
#include "hotpath/pbwire.h"
#include "hotpath/pprof.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest req_t;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary dict_t;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles rprof_t;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles sprof_t;
typedef Opentelemetry__Proto__Profiles__V1development__Profile oprof_t;
typedef Opentelemetry__Proto__Profiles__V1development__Sample osample_t;
typedef Opentelemetry__Proto__Profiles__V1development__Stack ostack_t;
typedef Opentelemetry__Proto__Profiles__V1development__Location oloc_t;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping omap_t;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit oattr_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue keyvalue_t;

#define REQ_DESC                                                                                             \
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor

enum { DEFAULT_MAX_PROFILES = 4096, MAX_WIRE_DEPTH = 64 };
#define DEFAULT_MAX_FRAMES ((uint64_t)1 << 23)
#define DEFAULT_MAX_ELEMENTS ((uint64_t)1 << 22)
#define DEFAULT_DURATION_NS 10000000000LL /* Pyroscope's default: 10s */

static const char SERVICE_NAME_KEY[] = "service.name";

/* How a profile's sample values are rewritten (Pyroscope's conversions). */
typedef enum { VALUES_KEEP, VALUES_TO_NANOS, VALUES_SUM } values_kind_t;

/* One request's conversion. */
typedef struct conv {
    const dict_t *d;
    hp_otlp_limits_t lim;
    uint64_t work; /* charged against lim.max_frames */
    hp_otlp_result_t *out;
    hp_arena_t tmp; /* per-sample scratch: formatted label values */
    uint64_t *ids;  /* a sample's location IDs */
    size_t ids_cap;
    hp_err_t *err;
} conv_t;

/* One service's pprof under construction. */
typedef struct svc {
    hp_str_t name; /* in the result's arena */
    hp_pprof_builder_t *b;
    hp_u64map_t locs; /* location index → pprof location ID */
    hp_u64map_t maps; /* mapping index (| 1 << 32 for the [kernel] copy) → ID */
    hp_u64map_t fns;  /* function index → pprof function ID */
} svc_t;

/* One OTLP profile's conversion: its types and the services it splits into. */
typedef struct prof {
    const oprof_t *p;
    values_kind_t kind;
    hp_str_t type, unit, period_type, period_unit;
    bool has_period_type;
    hp_str_t metric; /* __name__, empty when Pyroscope derives none */
    int64_t time_ns, duration_ns;
    svc_t *svcs;
    size_t n_svcs, cap_svcs;
    hp_u64map_t by_name; /* hash of a service name → index in svcs */
} prof_t;

/* ---- checked access to the dictionary ---- */

/* Records a conversion error in c->err. */
static void fail_msg(conv_t *c, const char *fmt, ...) HP_PRINTF(2, 3);
static void fail_msg(conv_t *c, const char *fmt, ...)
{
    if (c->err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    c->err->code = HP_EINVAL;
    c->err->detail = 0;
    vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
    va_end(ap);
}

/* Records a conversion error and evaluates to HP_EINVAL (a constant the
 * static analyzers see through, unlike a variadic function's result). */
#define FAIL(c, ...) (fail_msg((c), __VA_ARGS__), HP_EINVAL)

static hp_str_t cstr(const char *s)
{
    return s ? hp_str_c(s) : HP_STR("");
}

/* Whether i indexes an entry of a dictionary table (protobuf-c never
 * leaves a NULL entry; a message built by hand might). */
static bool in_table(int32_t i, size_t n, void *const *table)
{
    return i >= 0 && (size_t)i < n && table[i] != NULL;
}

/* The dictionary string at i; HP_EINVAL naming what referred to it. */
static int str_at(conv_t *c, int32_t i, const char *what, hp_str_t *out)
{
    *out = HP_STR("");
    if (i < 0 || (size_t)i >= c->d->n_string_table)
        return FAIL(c, "%s: string index %d out of range (string_table has %zu entries)", what, i,
                    c->d->n_string_table);
    *out = cstr(c->d->string_table[i]);
    return 0;
}

/* The dictionary attribute at i. */
static int attr_at(conv_t *c, int32_t i, const oattr_t **out)
{
    *out = NULL;
    if (!in_table(i, c->d->n_attribute_table, (void *const *)c->d->attribute_table))
        return FAIL(c, "attribute index %d out of range (attribute_table has %zu entries)", i,
                    c->d->n_attribute_table);
    *out = c->d->attribute_table[i];
    return 0;
}

/* Counts n more frames (or look-ups) against the request's budget. */
static int charge(conv_t *c, uint64_t n)
{
    if (n > c->lim.max_frames || c->work > c->lim.max_frames - n)
        return hp_err_set(
            c->err, HP_EINVAL,
            "the request expands into more than %llu frames (shared stacks times their samples)",
            (unsigned long long)c->lim.max_frames);
    c->work += n;
    return 0;
}

/* ---- attribute values as label strings ---- */

/* A double as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it: the
 * shortest digits that read back as v, in %e form when the exponent is
 * below -4 or at least 6. */
static hp_str_t format_double(double v, hp_arena_t *a)
{
    char buf[40];
    if (isnan(v))
        return HP_STR("NaN");
    if (isinf(v))
        return v > 0 ? HP_STR("+Inf") : HP_STR("-Inf");
    int nd = 1;
    for (; nd < 17; nd++) {
        snprintf(buf, sizeof(buf), "%.*e", nd - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*e", nd - 1, v);
    int exp = atoi(strchr(buf, 'e') + 1);
    if (exp >= -4 && exp < 6)
        snprintf(buf, sizeof(buf), "%.*f", nd - 1 - exp > 0 ? nd - 1 - exp : 0, v);
    return (hp_str_t){hp_arena_strndup(a, buf, strlen(buf)), strlen(buf)};
}

/* An attribute value as Pyroscope turns it into a label value: strings as
 * they are, integers, booleans and doubles formatted, a one-element array as
 * its element, anything else "" (no label). Formatted text lives in a. */
static int value_str(conv_t *c, const anyvalue_t *v, hp_arena_t *a, hp_str_t *out)
{
    char buf[32];
    *out = HP_STR("");
    if (v == NULL)
        return 0;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        *out = cstr(v->string_value);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX:
        return str_at(c, v->string_value_strindex, "attribute value", out);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(buf, sizeof(buf), "%lld", (long long)v->int_value);
        *out = (hp_str_t){hp_arena_strndup(a, buf, strlen(buf)), strlen(buf)};
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        *out = v->bool_value ? HP_STR("true") : HP_STR("false");
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        *out = format_double(v->double_value, a);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        /* the wire-depth check bounds this recursion */
        if (v->array_value && v->array_value->n_values == 1)
            return value_str(c, v->array_value->values[0], a, out);
        return 0;
    default:
        return 0;
    }
}

/* The value of the first attribute called key among indices (empty when
 * none), as Pyroscope's getAttributeValueByKeyOrEmpty. */
static int attr_value(conv_t *c, const int32_t *indices, size_t n, const char *key, hp_str_t *out)
{
    *out = HP_STR("");
    int rc = charge(c, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const oattr_t *a;
        hp_str_t k;
        if ((rc = attr_at(c, indices[i], &a)) != 0 ||
            (rc = str_at(c, a->key_strindex, "attribute key", &k)) != 0)
            break;
        if (hp_str_eq_c(k, key))
            return value_str(c, a->value, &c->tmp, out);
    }
    return rc;
}

/* ---- series labels ---- */

/* Label names equal after Pyroscope's sanitization ('.' → '_'). */
static bool same_name(hp_str_t a, hp_str_t b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++) {
        char x = a.p[i] == '.' ? '_' : a.p[i], y = b.p[i] == '.' ? '_' : b.p[i];
        if (x != y)
            return false;
    }
    return true;
}

/* Adds name=value (copied into the result's arena) unless a label of the
 * same sanitized name is there; with replace, that label is replaced. */
static void put_label(hp_otlp_result_t *r, hp_labels_t *ls, hp_str_t name, hp_str_t value, bool replace)
{
    size_t i = 0;
    while (i < ls->n && !same_name(ls->v[i].name, name))
        i++;
    if (i < ls->n && !replace)
        return;
    hp_str_t nm = {hp_arena_strndup(&r->arena, name.p, name.n), name.n};
    hp_str_t v = {hp_arena_strndup(&r->arena, value.p, value.n), value.n};
    if (i < ls->n)
        ls->v[i] = (hp_label_t){nm, v};
    else
        hp_labels_add(ls, nm, v);
}

/* The key of a resource or scope attribute: its key, or the dictionary
 * string key_strindex names when the key is empty. */
static int kv_key(conv_t *c, const keyvalue_t *kv, hp_str_t *out)
{
    *out = cstr(kv->key);
    if (out->n == 0 && kv->key_strindex != 0)
        return str_at(c, kv->key_strindex, "attribute key", out);
    return 0;
}

/* Appends attributes with a non-empty value whose key is not there yet
 * (Pyroscope's appendAttributesUnique: the resource's win over the scope's;
 * __name__ is never taken from them). */
static int put_attributes(conv_t *c, keyvalue_t *const *kvs, size_t n, hp_labels_t *ls)
{
    int rc = charge(c, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        hp_str_t k, v;
        if ((rc = kv_key(c, kvs[i], &k)) != 0 || (rc = value_str(c, kvs[i]->value, &c->tmp, &v)) != 0)
            break;
        if (v.n && !hp_str_eq_c(k, HP_LABEL_NAME))
            put_label(c->out, ls, k, v, false);
    }
    return rc;
}

/* The resource's service name as Pyroscope reads it: service.name, else
 * "unknown_service", with ":<process.executable.name>" when that is set
 * (the OpenTelemetry semantic convention). Only string values count. */
static hp_str_t resource_service(const rprof_t *rp, hp_arena_t *a)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, "unknown_service");
    size_t n = rp->resource ? rp->resource->n_attributes : 0;
    for (size_t i = 0; i < n; i++) {
        const keyvalue_t *kv = rp->resource->attributes[i];
        const anyvalue_t *v = kv->value;
        if (v == NULL || v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
            cstr(v->string_value).n == 0)
            continue;
        if (hp_str_eq_c(cstr(kv->key), SERVICE_NAME_KEY)) {
            hp_buf_reset(&b);
            hp_buf_puts(&b, v->string_value);
            break;
        }
        if (hp_str_eq_c(cstr(kv->key), "process.executable.name")) {
            hp_buf_putc(&b, ':');
            hp_buf_puts(&b, v->string_value);
        }
    }
    hp_str_t s = {hp_arena_strndup(a, (const char *)b.data, b.len), b.len};
    hp_buf_fini(&b);
    return s;
}

/* ---- the profile's types ---- */

/* A value type's two strings. */
static int value_type(conv_t *c, const Opentelemetry__Proto__Profiles__V1development__ValueType *vt,
                      const char *what, hp_str_t *type, hp_str_t *unit)
{
    int rc = str_at(c, vt->type_strindex, what, type);
    return rc ? rc : str_at(c, vt->unit_strindex, what, unit);
}

/* Sets the metric name and value rewriting from the profile type
 * "type:unit:period_type:period_unit" (the period part only when a period
 * is set), as Pyroscope does: samples/count with a cpu/nanoseconds period is
 * process_cpu in nanoseconds (values × period), off_cpu/nanoseconds sums its
 * values, anything else is named after its period type. */
static void classify(prof_t *pf)
{
    bool period = pf->p->period != 0 && pf->has_period_type;
    hp_str_t pt = period ? pf->period_type : HP_STR(""), pu = period ? pf->period_unit : HP_STR("");
    pf->kind = VALUES_KEEP;
    pf->metric = pt;
    if (hp_str_eq_c(pf->type, "samples") && hp_str_eq_c(pf->unit, "count") && hp_str_eq_c(pt, "cpu") &&
        hp_str_eq_c(pu, "nanoseconds")) {
        pf->type = HP_STR("cpu");
        pf->unit = HP_STR("nanoseconds");
        pf->metric = HP_STR("process_cpu");
        pf->kind = VALUES_TO_NANOS;
    } else if (hp_str_eq_c(pf->type, "off_cpu") && hp_str_eq_c(pf->unit, "nanoseconds") && pt.n == 0 &&
               pu.n == 0) {
        pf->metric = HP_STR("off_cpu");
        pf->kind = VALUES_SUM;
    }
}

static int prof_init(conv_t *c, const oprof_t *p, prof_t *pf)
{
    memset(pf, 0, sizeof(*pf));
    pf->p = p;
    hp_u64map_init(&pf->by_name, 4);
    if (p->sample_type == NULL)
        return FAIL(c, "sample type is missing");
    int rc = value_type(c, p->sample_type, "sample type", &pf->type, &pf->unit);
    if (rc == 0 && p->period_type) {
        pf->has_period_type = true;
        rc = value_type(c, p->period_type, "period type", &pf->period_type, &pf->period_unit);
    }
    if (rc != 0)
        return rc;
    classify(pf);
    pf->time_ns = p->time_unix_nano ? (int64_t)p->time_unix_nano : hp_now_ns();
    pf->duration_ns = p->duration_nano ? (int64_t)p->duration_nano : DEFAULT_DURATION_NS;
    return 0;
}

static void svc_fini(svc_t *s)
{
    hp_pprof_builder_free(s->b);
    hp_u64map_fini(&s->locs);
    hp_u64map_fini(&s->maps);
    hp_u64map_fini(&s->fns);
}

static void prof_fini(prof_t *pf)
{
    for (size_t i = 0; i < pf->n_svcs; i++)
        svc_fini(&pf->svcs[i]);
    free(pf->svcs);
    hp_u64map_fini(&pf->by_name);
}

/* ---- services ---- */

static void svc_init(const prof_t *pf, svc_t *s, hp_str_t name)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->b = hp_pprof_builder_new();
    hp_u64map_init(&s->locs, 16);
    hp_u64map_init(&s->maps, 4);
    hp_u64map_init(&s->fns, 16);
    hp_pprof_builder_sample_type(s->b, pf->type, pf->unit);
    hp_pprof_builder_period(s->b, pf->period_type, pf->period_unit, pf->p->period);
    hp_pprof_builder_times(s->b, pf->time_ns, pf->duration_ns);
}

/* The service called name, created on first use. */
static int svc_get(conv_t *c, prof_t *pf, hp_str_t name, svc_t **out)
{
    uint64_t h = XXH3_64bits(name.p, name.n), i;
    while (hp_u64map_get(&pf->by_name, h, &i)) {
        if (hp_str_eq(pf->svcs[i].name, name)) {
            *out = &pf->svcs[i];
            return 0;
        }
        h = hp_mix64(h + 1); /* a hash collision: probe the next key */
    }
    if (c->out->n + pf->n_svcs >= c->lim.max_profiles)
        return FAIL(c, "the request converts into more than %zu profiles (one per profile and service)",
                    c->lim.max_profiles);
    HP_GROW(pf->svcs, pf->cap_svcs, pf->n_svcs + 1);
    hp_str_t own = {hp_arena_strndup(&c->out->arena, name.p, name.n), name.n};
    svc_init(pf, &pf->svcs[pf->n_svcs], own);
    hp_u64map_put(&pf->by_name, h, pf->n_svcs);
    *out = &pf->svcs[pf->n_svcs++];
    return 0;
}

/* ---- symbols ---- */

static int function_id(conv_t *c, svc_t *s, int32_t fi, uint64_t *out)
{
    if (hp_u64map_get(&s->fns, (uint64_t)(uint32_t)fi, out))
        return 0;
    if (!in_table(fi, c->d->n_function_table, (void *const *)c->d->function_table))
        return FAIL(c, "function index %d out of range (function_table has %zu entries)", fi,
                    c->d->n_function_table);
    const Opentelemetry__Proto__Profiles__V1development__Function *f = c->d->function_table[fi];
    hp_str_t name, sys, file;
    int rc = str_at(c, f->name_strindex, "function name", &name);
    if (rc == 0)
        rc = str_at(c, f->system_name_strindex, "function system name", &sys);
    if (rc == 0)
        rc = str_at(c, f->filename_strindex, "function file name", &file);
    if (rc != 0)
        return rc;
    *out = hp_pprof_builder_function(s->b, name, sys, file, f->start_line);
    hp_u64map_put(&s->fns, (uint64_t)(uint32_t)fi, *out);
    return 0;
}

/* The location at li, checked. */
static int location_at(conv_t *c, int32_t li, const oloc_t **out)
{
    *out = NULL;
    if (!in_table(li, c->d->n_location_table, (void *const *)c->d->location_table))
        return FAIL(c, "location index %d out of range (location_table has %zu entries)", li,
                    c->d->n_location_table);
    *out = c->d->location_table[li];
    return 0;
}

/* Symbol-information flags of mapping mi from the locations of the stack
 * that use it, as Pyroscope derives them (OTLP has no such flags): a
 * location without lines clears them all. Pyroscope's has_inline_frames
 * test never holds for a first line, so it is always false. */
static int mapping_flags(conv_t *c, const ostack_t *st, int32_t mi, hp_pprof_mapping_in_t *m)
{
    m->has_functions = m->has_filenames = m->has_line_numbers = true;
    m->has_inline_frames = false;
    int rc = charge(c, st->n_location_indices);
    for (size_t i = 0; i < st->n_location_indices && rc == 0; i++) {
        const oloc_t *l;
        if ((rc = location_at(c, st->location_indices[i], &l)) != 0 || l->mapping_index != mi)
            continue;
        if (l->n_lines == 0)
            m->has_functions = m->has_filenames = m->has_line_numbers = false;
        for (size_t k = 0; k < l->n_lines; k++) {
            int32_t fi = l->lines[k]->function_index;
            m->has_functions = m->has_functions && fi > 0;
            m->has_line_numbers = m->has_line_numbers && l->lines[k]->line > 0;
            if (fi > 0 && in_table(fi, c->d->n_function_table, (void *const *)c->d->function_table))
                m->has_filenames = m->has_filenames && c->d->function_table[fi]->filename_strindex > 0;
        }
    }
    return rc;
}

/* A kernel frame's mapping file name: "[kernel]" or "[kernel] <file>". */
static hp_str_t kernel_name(hp_str_t file, hp_arena_t *a)
{
    if (file.n >= 8 && memcmp(file.p, "[kernel]", 8) == 0)
        return file;
    if (file.n == 0)
        return HP_STR("[kernel]");
    char *p = hp_arena_alloc(a, file.n + 10);
    memcpy(p, "[kernel] ", 9);
    memcpy(p + 9, file.p, file.n);
    p[file.n + 9] = '\0';
    return (hp_str_t){p, file.n + 9};
}

/* The pprof mapping of location l (its [kernel] copy for kernel frames). */
static int mapping_id(conv_t *c, svc_t *s, const ostack_t *st, const oloc_t *l, bool kernel, uint64_t *out)
{
    int32_t mi = l->mapping_index;
    uint64_t key = (uint64_t)(uint32_t)mi | (kernel ? (uint64_t)1 << 32 : 0);
    if (hp_u64map_get(&s->maps, key, out))
        return 0;
    if (!in_table(mi, c->d->n_mapping_table, (void *const *)c->d->mapping_table))
        return FAIL(c, "mapping index %d out of range (mapping_table has %zu entries)", mi,
                    c->d->n_mapping_table);
    const omap_t *om = c->d->mapping_table[mi];
    hp_pprof_mapping_in_t m = {om->memory_start, om->memory_limit, om->file_offset};
    int rc = str_at(c, om->filename_strindex, "mapping file name", &m.filename);
    if (rc == 0)
        rc = attr_value(c, om->attribute_indices, om->n_attribute_indices, "process.executable.build_id.gnu",
                        &m.build_id);
    if (rc == 0)
        rc = mapping_flags(c, st, mi, &m);
    if (rc != 0)
        return rc;
    if (kernel)
        m.filename = kernel_name(m.filename, &c->tmp);
    *out = hp_pprof_builder_mapping(s->b, &m);
    hp_u64map_put(&s->maps, key, *out);
    return 0;
}

/* A frame without lines gets one function named "<file> 0x<address>", so
 * the flame graph shows where it was (Pyroscope's name for such frames). */
static uint64_t unsymbolized_function(conv_t *c, svc_t *s, const oloc_t *l)
{
    hp_str_t file = HP_STR("");
    int32_t mi = l->mapping_index;
    if (in_table(mi, c->d->n_mapping_table, (void *const *)c->d->mapping_table)) {
        int32_t fi = c->d->mapping_table[mi]->filename_strindex;
        if (fi >= 0 && (size_t)fi < c->d->n_string_table)
            file = cstr(c->d->string_table[fi]);
    }
    char *name = hp_arena_alloc(&c->tmp, file.n + 24);
    int n = snprintf(name, file.n + 24, "%.*s%s0x%llx", (int)file.n, file.p, file.n ? " " : "",
                     (unsigned long long)l->address);
    return hp_pprof_builder_function(s->b, (hp_str_t){name, (size_t)n}, HP_STR(""), HP_STR(""), 0);
}

static int location_lines(conv_t *c, svc_t *s, const oloc_t *l, hp_pprof_line_in_t *lines)
{
    int rc = charge(c, l->n_lines);
    for (size_t k = 0; k < l->n_lines && rc == 0; k++) {
        lines[k].line = l->lines[k]->line;
        rc = function_id(c, s, l->lines[k]->function_index, &lines[k].function_id);
    }
    return rc;
}

/* The pprof location of stack entry li, converted on first use. */
static int location_id(conv_t *c, svc_t *s, const ostack_t *st, int32_t li, uint64_t *out)
{
    if (hp_u64map_get(&s->locs, (uint64_t)(uint32_t)li, out))
        return 0;
    const oloc_t *l;
    hp_str_t frame_type;
    uint64_t map;
    int rc = location_at(c, li, &l);
    if (rc == 0)
        rc = attr_value(c, l->attribute_indices, l->n_attribute_indices, "profile.frame.type", &frame_type);
    if (rc == 0)
        rc = mapping_id(c, s, st, l, hp_str_eq_c(frame_type, "kernel"), &map);
    if (rc != 0)
        return rc;
    hp_pprof_line_in_t one, *lines = l->n_lines ? hp_xcalloc(l->n_lines, sizeof(*lines)) : &one;
    if ((rc = location_lines(c, s, l, lines)) == 0) {
        if (l->n_lines == 0)
            one = (hp_pprof_line_in_t){unsymbolized_function(c, s, l), 0};
        *out = hp_pprof_builder_location(s->b, map, l->address, lines, l->n_lines ? l->n_lines : 1);
        hp_u64map_put(&s->locs, (uint64_t)(uint32_t)li, *out);
    }
    if (lines != &one)
        free(lines);
    return rc;
}

/* ---- samples ---- */

/* The sample's one value after Pyroscope's rewriting: the values, or one
 * per timestamp when there are none; × period for process_cpu; summed for
 * off_cpu. A pprof of one sample type takes exactly one value. */
static int sample_value(conv_t *c, const prof_t *pf, const osample_t *s, int64_t *out)
{
    size_t n = s->n_values;
    if (n == 0 && s->n_timestamps_unix_nano == 0)
        return FAIL(c, "sample value is required");
    *out = n ? s->values[0] : (int64_t)s->n_timestamps_unix_nano;
    if (pf->kind == VALUES_TO_NANOS)
        *out = (int64_t)((uint64_t)*out * (uint64_t)pf->p->period);
    if (pf->kind == VALUES_SUM) {
        for (size_t i = 1; i < n; i++)
            *out = hp_add_wrap(*out, s->values[i]);
        n = 1;
    }
    if (n > 1)
        return FAIL(c, "sample values length mismatch %zu 1", n);
    return 0;
}

/* Lowercase hex of bytes, into a. */
static hp_str_t hex(const uint8_t *p, size_t n, hp_arena_t *a)
{
    static const char digits[] = "0123456789abcdef";
    char *s = hp_arena_alloc(a, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    return (hp_str_t){s, 2 * n};
}

/* The trace link as span_id / trace_id labels (link_index 0 is no link). */
static int link_labels(conv_t *c, const osample_t *s, hp_pprof_label_in_t *labels, size_t *n)
{
    if (s->link_index == 0)
        return 0;
    if (!in_table(s->link_index, c->d->n_link_table, (void *const *)c->d->link_table))
        return FAIL(c, "link index %d out of range (link_table has %zu entries)", s->link_index,
                    c->d->n_link_table);
    const Opentelemetry__Proto__Profiles__V1development__Link *l = c->d->link_table[s->link_index];
    labels[(*n)++] = (hp_pprof_label_in_t){HP_STR("span_id"), hex(l->span_id.data, l->span_id.len, &c->tmp)};
    if (l->trace_id.len == 16)
        labels[(*n)++] = (hp_pprof_label_in_t){HP_STR("trace_id"), hex(l->trace_id.data, 16, &c->tmp)};
    return 0;
}

/* The sample's pprof labels: its attributes with a non-empty value except
 * service.name, then its trace link. */
static int sample_labels(conv_t *c, const osample_t *s, hp_pprof_label_in_t *labels, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < s->n_attribute_indices; i++) {
        const oattr_t *a;
        hp_str_t k = HP_STR(""), v = HP_STR("");
        int rc = attr_at(c, s->attribute_indices[i], &a);
        if (rc == 0)
            rc = str_at(c, a->key_strindex, "attribute key", &k);
        if (rc == 0 && hp_str_eq_c(k, SERVICE_NAME_KEY))
            continue; /* it chose the sample's pprof; it is no label */
        if (rc == 0)
            rc = value_str(c, a->value, &c->tmp, &v);
        if (rc != 0)
            return rc;
        if (v.n)
            labels[(*n)++] = (hp_pprof_label_in_t){k, v};
    }
    return link_labels(c, s, labels, n);
}

/* The sample's stack, checked. */
static int stack_at(conv_t *c, int32_t si, const ostack_t **out)
{
    *out = NULL;
    if (!in_table(si, c->d->n_stack_table, (void *const *)c->d->stack_table))
        return FAIL(c, "invalid stack index: %d (stack_table has %zu entries)", si, c->d->n_stack_table);
    *out = c->d->stack_table[si];
    return 0;
}

static int sample_stack(conv_t *c, svc_t *svc, const ostack_t *st)
{
    int rc = charge(c, st->n_location_indices);
    if (rc == 0 && st->n_location_indices > c->ids_cap) {
        c->ids_cap = st->n_location_indices;
        c->ids = hp_xrealloc(c->ids, c->ids_cap * sizeof(*c->ids));
    }
    for (size_t i = 0; i < st->n_location_indices && rc == 0; i++)
        rc = location_id(c, svc, st, st->location_indices[i], &c->ids[i]);
    return rc;
}

/* Adds one sample to the pprof of its service. */
static int add_sample(conv_t *c, prof_t *pf, hp_str_t resource_svc, const osample_t *s)
{
    hp_str_t name;
    const ostack_t *st;
    int64_t value;
    size_t n_labels;
    hp_arena_reset(&c->tmp);
    hp_pprof_label_in_t *labels = hp_arena_calloc(&c->tmp, s->n_attribute_indices + 2, sizeof(*labels));
    svc_t *svc;
    int rc = charge(c, 1);
    if (rc == 0)
        rc = attr_value(c, s->attribute_indices, s->n_attribute_indices, SERVICE_NAME_KEY, &name);
    if (rc == 0)
        rc = svc_get(c, pf, name.n ? name : resource_svc, &svc);
    if (rc == 0)
        rc = sample_value(c, pf, s, &value);
    if (rc == 0)
        rc = sample_labels(c, s, labels, &n_labels);
    if (rc == 0)
        rc = stack_at(c, s->stack_index, &st);
    if (rc == 0)
        rc = sample_stack(c, svc, st);
    if (rc == 0)
        hp_pprof_builder_sample(svc->b, c->ids, st->n_location_indices, &value, labels, n_labels);
    return rc;
}

/* ---- output ---- */

/* Moves each service's pprof into the result with its series labels. */
static void emit(conv_t *c, prof_t *pf, const hp_labels_t *base)
{
    hp_otlp_result_t *r = c->out;
    r->v = hp_xrealloc(r->v, (r->n + pf->n_svcs) * sizeof(*r->v));
    for (size_t i = 0; i < pf->n_svcs; i++) {
        hp_otlp_profile_t *o = &r->v[r->n++];
        hp_buf_t b = HP_BUF_INIT;
        hp_pprof_builder_encode(pf->svcs[i].b, &b);
        o->pprof = hp_buf_take(&b, &o->pprof_len);
        hp_labels_init(&o->labels);
        hp_labels_copy(&o->labels, base);
        put_label(r, &o->labels, HP_STR(HP_LABEL_SERVICE_NAME), pf->svcs[i].name, true);
    }
}

/* The labels every pprof of a profile shares: __delta__, __otel__,
 * __name__, then the resource's and the scope's attributes. */
static int base_labels(conv_t *c, const rprof_t *rp, const sprof_t *sp, const prof_t *pf, hp_labels_t *ls)
{
    hp_labels_reset(ls);
    put_label(c->out, ls, HP_STR(HP_LABEL_DELTA), HP_STR("false"), false);
    put_label(c->out, ls, HP_STR("__otel__"), HP_STR("true"), false);
    if (pf->metric.n)
        put_label(c->out, ls, HP_STR(HP_LABEL_NAME), pf->metric, false);
    int rc = 0;
    if (rp->resource)
        rc = put_attributes(c, rp->resource->attributes, rp->resource->n_attributes, ls);
    if (rc == 0 && sp->scope)
        rc = put_attributes(c, sp->scope->attributes, sp->scope->n_attributes, ls);
    return rc;
}

/* Converts one OTLP profile; a profile without samples converts into
 * nothing, as in Pyroscope. */
static int convert_profile(conv_t *c, const rprof_t *rp, const sprof_t *sp, const oprof_t *p,
                           hp_str_t resource_svc)
{
    if (p->n_samples == 0)
        return 0;
    prof_t pf;
    hp_labels_t base;
    hp_labels_init(&base);
    int rc = prof_init(c, p, &pf);
    for (size_t i = 0; i < p->n_samples && rc == 0; i++)
        rc = add_sample(c, &pf, resource_svc, p->samples[i]);
    if (rc == 0)
        rc = base_labels(c, rp, sp, &pf, &base);
    if (rc == 0)
        emit(c, &pf, &base);
    hp_labels_fini(&base);
    prof_fini(&pf);
    return rc;
}

static int convert_request(conv_t *c, const req_t *req)
{
    if (req->dictionary == NULL)
        return FAIL(c, "missing profile metadata dictionary");
    if (req->n_resource_profiles == 0)
        return FAIL(c, "missing resource profiles");
    c->d = req->dictionary;
    int rc = 0;
    for (size_t i = 0; i < req->n_resource_profiles && rc == 0; i++) {
        const rprof_t *rp = req->resource_profiles[i];
        hp_str_t svc = resource_service(rp, &c->out->arena);
        for (size_t j = 0; j < rp->n_scope_profiles && rc == 0; j++) {
            const sprof_t *sp = rp->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles && rc == 0; k++)
                rc = convert_profile(c, rp, sp, sp->profiles[k], svc);
        }
    }
    return rc;
}

/* ---- decoding ---- */

/* What a wire check found. */
typedef enum { WIRE_OK, WIRE_MALFORMED, WIRE_TOO_DEEP, WIRE_TOO_MANY } wire_t;

/* Checks that r holds well-formed messages of type desc nested at most
 * MAX_WIRE_DEPTH deep (protobuf-c recurses into AnyValue arrays without a
 * limit) with at most *budget strings, byte fields and sub-messages in all
 * (each costs protobuf-c an allocation many times its wire size). */
static wire_t wire_check(const ProtobufCMessageDescriptor *desc, hp_pbr_t r, int depth, uint64_t *budget)
{
    if (depth > MAX_WIRE_DEPTH)
        return WIRE_TOO_DEEP;
    while (!hp_pbr_done(&r)) {
        uint32_t field, wt;
        hp_pbr_t sub;
        if (!hp_pbr_key(&r, &field, &wt))
            return WIRE_MALFORMED;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, field);
        if (wt != HP_PB_LEN || f == NULL) {
            if (!hp_pbr_skip(&r, wt))
                return WIRE_MALFORMED;
            continue;
        }
        if (*budget == 0)
            return WIRE_TOO_MANY;
        --*budget;
        if (!hp_pbr_len(&r, &sub))
            return WIRE_MALFORMED;
        wire_t w =
            f->type == PROTOBUF_C_TYPE_MESSAGE ? wire_check(f->descriptor, sub, depth + 1, budget) : WIRE_OK;
        if (w != WIRE_OK)
            return w;
    }
    return WIRE_OK;
}

/* Decodes the protobuf body after the wire check. */
static int unpack(const uint8_t *body, size_t n, uint64_t max_elements, ProtobufCMessage **out, hp_err_t *err)
{
    uint64_t budget = max_elements;
    wire_t w = wire_check(&REQ_DESC, hp_pbr(body, n), 0, &budget);
    if (w == WIRE_TOO_DEEP)
        return hp_err_set(err, HP_EINVAL, "malformed protobuf: messages nested deeper than %d",
                          MAX_WIRE_DEPTH);
    if (w == WIRE_TOO_MANY)
        return hp_err_set(err, HP_EINVAL, "the request holds more than %llu strings and messages",
                          (unsigned long long)max_elements);
    if (w != WIRE_OK || (*out = protobuf_c_message_unpack(&REQ_DESC, NULL, n, body)) == NULL)
        return hp_err_set(
            err, HP_EINVAL,
            "malformed protobuf: the body is not an ExportProfilesServiceRequest (truncated, or bad "
            "wire types)");
    return 0;
}

/* Refuses JSON with more objects and strings than max_elements before
 * decoding it (counting every '{' and every other '"', escaped ones too,
 * over-counts, never under-counts). */
static int json_check(const uint8_t *body, size_t n, uint64_t max_elements, hp_err_t *err)
{
    uint64_t braces = 0, quotes = 0;
    for (size_t i = 0; i < n; i++) {
        braces += body[i] == '{';
        quotes += body[i] == '"';
    }
    if (braces + quotes / 2 > max_elements)
        return hp_err_set(err, HP_EINVAL, "the request holds more than %llu strings and messages",
                          (unsigned long long)max_elements);
    return 0;
}

static int decode(const uint8_t *body, size_t n, bool json, uint64_t max_elements, req_t **out, hp_err_t *err)
{
    ProtobufCMessage *m = NULL;
    int rc = json ? json_check(body, n, max_elements, err) : unpack(body, n, max_elements, &m, err);
    if (rc == 0 && json)
        rc = hp_pbjson_decode(&REQ_DESC, (const char *)body, n, &m, err);
    if (rc != 0 && err)
        err->detail = HP_OTLP_EPARSE;
    *out = (req_t *)m;
    return rc;
}

int hp_otlp_convert(const uint8_t *body, size_t n, bool json, const hp_otlp_limits_t *lim,
                    hp_otlp_result_t *out, hp_err_t *err)
{
    memset(out, 0, sizeof(*out));
    hp_arena_init(&out->arena, 0);
    conv_t c = {.out = out, .err = err};
    c.lim.max_profiles = lim && lim->max_profiles ? lim->max_profiles : DEFAULT_MAX_PROFILES;
    c.lim.max_frames = lim && lim->max_frames ? lim->max_frames : DEFAULT_MAX_FRAMES;
    c.lim.max_elements = lim && lim->max_elements ? lim->max_elements : DEFAULT_MAX_ELEMENTS;
    req_t *req = NULL;
    int rc = decode(body, n, json, c.lim.max_elements, &req, err);
    if (rc != 0)
        return rc;
    hp_arena_init(&c.tmp, 0);
    rc = convert_request(&c, req);
    hp_arena_fini(&c.tmp);
    free(c.ids);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (rc != 0) {
        hp_otlp_result_fini(out);
        if (err) {
            char why[sizeof(err->msg)]; /* formatting err->msg into itself overlaps */
            snprintf(why, sizeof(why), "%s", err->msg);
            hp_err_set(err, rc, "failed to convert otel profile: %s", why);
        }
    }
    return rc;
}

void hp_otlp_result_fini(hp_otlp_result_t *r)
{
    for (size_t i = 0; r->v && i < r->n; i++) {
        hp_labels_fini(&r->v[i].labels);
        free(r->v[i].pprof);
    }
    free(r->v);
    hp_arena_fini(&r->arena);
    memset(r, 0, sizeof(*r));
}
