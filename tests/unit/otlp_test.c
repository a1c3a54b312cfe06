/* Tests for otlp.h: OTLP profiles built with protobuf-c's generated structs
 * (as Pyroscope's own tests build them), converted and read back as pprof —
 * symbolized and unsymbolized frames, service splitting, sample attributes,
 * trace links, JSON input, malformed and crafted input, limits, and random
 * mutations of a valid message. */
#include <inttypes.h>

#include "hotpath/otlp.h"
#include "hotpath/pbjson.h"
#include "hotpath/pprof.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "test.h"

typedef Opentelemetry__Proto__Profiles__V1development__Mapping mapping_t;
typedef Opentelemetry__Proto__Profiles__V1development__Location location_t;
typedef Opentelemetry__Proto__Profiles__V1development__Line line_t;
typedef Opentelemetry__Proto__Profiles__V1development__Function function_t;
typedef Opentelemetry__Proto__Profiles__V1development__Stack stack_t;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit attr_t;
typedef Opentelemetry__Proto__Profiles__V1development__Link link_t;
typedef Opentelemetry__Proto__Profiles__V1development__Sample sample_t;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType vtype_t;
typedef Opentelemetry__Proto__Profiles__V1development__Profile profile_t;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles scope_t;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles rprof_t;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary dict_t;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest req_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope iscope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

#define N 16
#define ANY_INIT OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT

/* An ExportProfilesServiceRequest under construction: one resource, one
 * scope, one profile and their dictionary, in fixed-size tables (the
 * helpers return indices, as Pyroscope's otlpbuilder does). */
typedef struct fx {
    char *strs[4 * N];
    size_t n_strs;
    mapping_t maps[N], *mapp[N];
    location_t locs[N], *locp[N];
    line_t lines[N], *linep[N];
    function_t fns[N], *fnp[N];
    stack_t stacks[N], *stackp[N];
    int32_t stack_locs[N][N];
    attr_t attrs[N], *attrp[N];
    any_t attr_vals[N], array_vals[N], *array_valp[N];
    Opentelemetry__Proto__Common__V1__ArrayValue arrays[N];
    link_t links[N], *linkp[N];
    uint8_t trace_id[16], span_id[8];
    sample_t samples[N], *samplep[N];
    int32_t sample_attrs[N][N];
    int64_t sample_vals[N][N];
    vtype_t st, pt;
    profile_t prof, *profp[1];
    kv_t res_kv[N], *res_kvp[N], scope_kv[N], *scope_kvp[N];
    any_t res_vals[N], scope_vals[N];
    iscope_t scope;
    resource_t res;
    scope_t sp, *spp[1];
    rprof_t rp, *rpp[1];
    dict_t dict;
    req_t req;
} fx_t;

static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dict = (dict_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
    f->req = (req_t)
        OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_REQUEST__INIT;
    f->rp = (rprof_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__RESOURCE_PROFILES__INIT;
    f->sp = (scope_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SCOPE_PROFILES__INIT;
    f->prof = (profile_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILE__INIT;
    f->res = (resource_t)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    f->scope = (iscope_t)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    f->st = (vtype_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__VALUE_TYPE__INIT;
    f->pt = f->st;
    f->req.dictionary = &f->dict;
    f->req.n_resource_profiles = 1;
    f->req.resource_profiles = f->rpp;
    f->rpp[0] = &f->rp;
    f->rp.n_scope_profiles = 1;
    f->rp.scope_profiles = f->spp;
    f->spp[0] = &f->sp;
    f->sp.n_profiles = 1;
    f->sp.profiles = f->profp;
    f->profp[0] = &f->prof;
    f->dict.string_table = f->strs;
    f->dict.mapping_table = f->mapp;
    f->dict.location_table = f->locp;
    f->dict.function_table = f->fnp;
    f->dict.stack_table = f->stackp;
    f->dict.attribute_table = f->attrp;
    f->dict.link_table = f->linkp;
    f->prof.samples = f->samplep;
    f->prof.time_unix_nano = 239;
    return f;
}

/* The string's index in the string table, added when new ("" is 0). */
static int32_t fx_str(fx_t *f, const char *s)
{
    if (f->n_strs == 0)
        f->strs[f->n_strs++] = "";
    for (size_t i = 0; i < f->n_strs; i++)
        if (strcmp(f->strs[i], s) == 0)
            return (int32_t)i;
    f->strs[f->n_strs] = (char *)s;
    f->dict.n_string_table = ++f->n_strs;
    return (int32_t)(f->n_strs - 1);
}

static void fx_types(fx_t *f, const char *type, const char *unit, const char *ptype, const char *punit,
                     int64_t period)
{
    f->st.type_strindex = fx_str(f, type);
    f->st.unit_strindex = fx_str(f, unit);
    f->prof.sample_type = &f->st;
    if (ptype) {
        f->pt.type_strindex = fx_str(f, ptype);
        f->pt.unit_strindex = fx_str(f, punit);
        f->prof.period_type = &f->pt;
    }
    f->prof.period = period;
}

static int32_t fx_mapping(fx_t *f, uint64_t start, uint64_t limit, const char *file)
{
    size_t i = f->dict.n_mapping_table++;
    f->maps[i] = (mapping_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
    f->maps[i].memory_start = start;
    f->maps[i].memory_limit = limit;
    f->maps[i].filename_strindex = fx_str(f, file);
    f->mapp[i] = &f->maps[i];
    return (int32_t)i;
}

static int32_t fx_function(fx_t *f, const char *name, const char *file)
{
    size_t i = f->dict.n_function_table++;
    f->fns[i] = (function_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
    f->fns[i].name_strindex = fx_str(f, name);
    f->fns[i].system_name_strindex = fx_str(f, name);
    f->fns[i].filename_strindex = fx_str(f, file);
    f->fnp[i] = &f->fns[i];
    return (int32_t)i;
}

/* A location; fn < 0 makes it unsymbolized (no lines). */
static int32_t fx_location(fx_t *f, int32_t mapping, uint64_t address, int32_t fn, int64_t line)
{
    size_t i = f->dict.n_location_table++;
    f->locs[i] = (location_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
    f->locs[i].mapping_index = mapping;
    f->locs[i].address = address;
    if (fn >= 0) {
        f->lines[i] = (line_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINE__INIT;
        f->lines[i].function_index = fn;
        f->lines[i].line = line;
        f->linep[i] = &f->lines[i];
        f->locs[i].n_lines = 1;
        f->locs[i].lines = &f->linep[i];
    }
    f->locp[i] = &f->locs[i];
    return (int32_t)i;
}

/* A stack of n locations, leaf first. */
static int32_t fx_stack(fx_t *f, size_t n, const int32_t *locs)
{
    size_t i = f->dict.n_stack_table++;
    f->stacks[i] = (stack_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
    memcpy(f->stack_locs[i], locs, n * sizeof(*locs));
    f->stacks[i].n_location_indices = n;
    f->stacks[i].location_indices = f->stack_locs[i];
    f->stackp[i] = &f->stacks[i];
    return (int32_t)i;
}

static int32_t fx_attr(fx_t *f, const char *key, any_t v)
{
    size_t i = f->dict.n_attribute_table++;
    f->attrs[i] = (attr_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
    f->attrs[i].key_strindex = fx_str(f, key);
    f->attr_vals[i] = v;
    f->attrs[i].value = &f->attr_vals[i];
    f->attrp[i] = &f->attrs[i];
    return (int32_t)i;
}

static any_t str_value(const char *s)
{
    any_t v = ANY_INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = (char *)s;
    return v;
}

static any_t int_value(int64_t x)
{
    any_t v = ANY_INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = x;
    return v;
}

static int32_t fx_sample(fx_t *f, int32_t stack, int64_t value, size_t n_attrs, const int32_t *attrs)
{
    size_t i = f->prof.n_samples++;
    f->samples[i] = (sample_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SAMPLE__INIT;
    f->samples[i].stack_index = stack;
    f->sample_vals[i][0] = value;
    f->samples[i].n_values = 1;
    f->samples[i].values = f->sample_vals[i];
    if (n_attrs)
        memcpy(f->sample_attrs[i], attrs, n_attrs * sizeof(*attrs));
    f->samples[i].n_attribute_indices = n_attrs;
    f->samples[i].attribute_indices = f->sample_attrs[i];
    f->samplep[i] = &f->samples[i];
    return (int32_t)i;
}

static void fx_resource(fx_t *f, const char *key, const char *value)
{
    size_t i = f->res.n_attributes++;
    f->res_kv[i] = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    f->res_kv[i].key = (char *)key;
    f->res_vals[i] = str_value(value);
    f->res_kv[i].value = &f->res_vals[i];
    f->res_kvp[i] = &f->res_kv[i];
    f->res.attributes = f->res_kvp;
    f->rp.resource = &f->res;
}

static void fx_scope(fx_t *f, const char *key, const char *value)
{
    size_t i = f->scope.n_attributes++;
    f->scope_kv[i] = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    f->scope_kv[i].key = (char *)key;
    f->scope_vals[i] = str_value(value);
    f->scope_kv[i].value = &f->scope_vals[i];
    f->scope_kvp[i] = &f->scope_kv[i];
    f->scope.attributes = f->scope_kvp;
    f->sp.scope = &f->scope;
}

/* The request as protobuf bytes (malloc'd). */
static uint8_t *fx_pack(fx_t *f, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(&f->req.base);
    uint8_t *b = malloc(*n ? *n : 1);
    protobuf_c_message_pack(&f->req.base, b);
    return b;
}

/* Packs and converts f; the caller finishes res. */
static int fx_convert(fx_t *f, const hp_otlp_limits_t *lim, hp_otlp_result_t *res, hp_err_t *err)
{
    size_t n;
    uint8_t *b = fx_pack(f, &n);
    hp_err_clear(err);
    int rc = hp_otlp_convert(b, n, false, lim, res, err);
    free(b);
    return rc;
}

/* ---- reading the output ---- */

static const char *label(const hp_otlp_profile_t *p, const char *name)
{
    static char buf[256];
    hp_str_t v = hp_labels_get(&p->labels, name);
    if (v.p == NULL)
        return NULL;
    snprintf(buf, sizeof(buf), "%.*s", (int)v.n, v.p);
    return buf;
}

/* The output profile whose service_name is svc. */
static const hp_otlp_profile_t *by_service(const hp_otlp_result_t *r, const char *svc)
{
    for (size_t i = 0; i < r->n; i++) {
        const char *s = label(&r->v[i], HP_LABEL_SERVICE_NAME);
        if (s && strcmp(s, svc) == 0)
            return &r->v[i];
    }
    return NULL;
}

static bool streq(hp_str_t a, const char *b)
{
    return hp_str_eq_c(a, b);
}

/* The function name of a decoded location's innermost line, or "". */
static hp_str_t frame_name(const hp_pprof_t *p, uint32_t loc)
{
    const hp_pprof_location_t *l = &p->locations[loc];
    if (l->line_n == 0)
        return HP_STR("");
    return hp_pprof_str(p, p->functions[p->lines[l->line_off].function].name);
}

/* The summed values of samples whose leaf frame is named leaf. */
static int64_t leaf_total(const hp_pprof_t *p, const char *leaf)
{
    int64_t t = 0;
    for (uint32_t i = 0; i < p->n_samples; i++) {
        const hp_pprof_sample_t *s = &p->samples[i];
        if (s->loc_n && streq(frame_name(p, p->sample_locs[s->loc_off]), leaf))
            t += p->values[s->val_off];
    }
    return t;
}

/* The value of the sample's pprof label key, or NULL. */
static const char *sample_label(const hp_pprof_t *p, uint32_t si, const char *key)
{
    static char buf[128];
    const hp_pprof_sample_t *s = &p->samples[si];
    for (uint32_t k = 0; k < s->lab_n; k++) {
        const hp_pprof_label_t *l = &p->labels[s->lab_off + k];
        if (streq(hp_pprof_str(p, l->key), key)) {
            hp_str_t v = hp_pprof_str(p, l->str);
            snprintf(buf, sizeof(buf), "%.*s", (int)v.n, v.p);
            return buf;
        }
    }
    return NULL;
}

static int decode_out(const hp_otlp_profile_t *o, hp_pprof_t *p)
{
    hp_err_t err;
    memset(p, 0, sizeof(*p));
    int rc = hp_pprof_decode(p, o->pprof, o->pprof_len, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "  pprof decode: %s\n", err.msg);
    return rc;
}

/* ---- tests ---- */

/* A symbolized CPU profile as the OpenTelemetry eBPF profiler sends it:
 * samples/count with a cpu/nanoseconds period become process_cpu in
 * nanoseconds; resource and scope attributes become series labels. */
static fx_t *cpu_fixture(void)
{
    fx_t *f = fx_new();
    fx_types(f, "samples", "count", "cpu", "nanoseconds", 10000000);
    int32_t m = fx_mapping(f, 0x1000, 0x2000, "app");
    fx_function(f, "", ""); /* function_table[0]: the spec's zero entry */
    int32_t fmain = fx_function(f, "main", "main.go"), ffoo = fx_function(f, "foo", "foo.go");
    int32_t fbar = fx_function(f, "bar", "bar.go");
    int32_t lmain = fx_location(f, m, 0x1100, fmain, 10), lfoo = fx_location(f, m, 0x1200, ffoo, 20);
    int32_t lbar = fx_location(f, m, 0x1300, fbar, 30);
    int32_t s1 = fx_stack(f, 2, (int32_t[]){lfoo, lmain}),
            s2 = fx_stack(f, 3, (int32_t[]){lbar, lfoo, lmain});
    fx_sample(f, s1, 2, 0, NULL);
    fx_sample(f, s2, 3, 0, NULL);
    fx_sample(f, s1, 5, 0, NULL);
    fx_resource(f, "service.name", "checkout");
    fx_resource(f, "host.name", "node-1");
    fx_resource(f, "__name__", "ignored");
    fx_scope(f, "otel.scope.kind", "ebpf");
    fx_scope(f, "host.name", "scope-loses");
    return f;
}

static void check_cpu_output(const hp_otlp_result_t *res)
{
    REQUIRE(res->n == 1);
    const hp_otlp_profile_t *o = &res->v[0];
    CHECK_EQ_STR(label(o, "service_name"), "checkout");
    CHECK_EQ_STR(label(o, "__name__"), "process_cpu");
    CHECK_EQ_STR(label(o, "__otel__"), "true");
    CHECK_EQ_STR(label(o, "__delta__"), "false");
    CHECK_EQ_STR(label(o, "host.name"), "node-1");
    CHECK_EQ_STR(label(o, "otel.scope.kind"), "ebpf");
    CHECK(label(o, "service.name") == NULL);
    CHECK_EQ_INT(o->labels.n, 6);
    hp_pprof_t p;
    REQUIRE(decode_out(o, &p) == 0);
    CHECK_EQ_INT(p.n_sample_types, 1);
    CHECK(streq(hp_pprof_str(&p, p.sample_types[0].type), "cpu"));
    CHECK(streq(hp_pprof_str(&p, p.sample_types[0].unit), "nanoseconds"));
    CHECK(streq(hp_pprof_str(&p, p.period_type.type), "cpu"));
    CHECK_EQ_INT(p.period, 10000000);
    CHECK_EQ_INT(p.time_nanos, 239);
    CHECK_EQ_INT(p.duration_nanos, 10000000000LL);
    CHECK_EQ_INT(leaf_total(&p, "foo"), 70000000); /* (2 + 5) × 10ms */
    CHECK_EQ_INT(leaf_total(&p, "bar"), 30000000);
    CHECK_EQ_INT(p.n_mappings, 1);
    CHECK(streq(hp_pprof_str(&p, p.mappings[0].filename), "app"));
    CHECK(p.mappings[0].has_functions && p.mappings[0].has_filenames && p.mappings[0].has_line_numbers);
    CHECK_EQ_INT(p.n_functions, 3);
    hp_pprof_fini(&p);
}

static void test_symbolized(void)
{
    fx_t *f = cpu_fixture();
    hp_otlp_result_t res;
    hp_err_t err;
    int rc = fx_convert(f, NULL, &res, &err);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    check_cpu_output(&res);
    hp_otlp_result_fini(&res);
    free(f);
}

/* Pyroscope's TestSymbolizedFunctionNames: frames without lines are named
 * "<mapping file> 0x<address>"; no period means no __name__ (the
 * distributor derives one), and the duration defaults to 10s. */
static void test_unsymbolized(void)
{
    fx_t *f = fx_new();
    int32_t m = fx_mapping(f, 0x1000, 0x1000, "file1.so");
    int32_t l0 = fx_location(f, m, 0x1e0, -1, 0), l1 = fx_location(f, m, 0x2f0, -1, 0);
    fx_types(f, "samples", "ms", NULL, NULL, 0);
    fx_sample(f, fx_stack(f, 2, (int32_t[]){l0, l1}), 0xef, 0, NULL);
    hp_otlp_result_t res;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    REQUIRE(res.n == 1);
    CHECK_EQ_STR(label(&res.v[0], "service_name"), "unknown_service");
    CHECK(label(&res.v[0], "__name__") == NULL);
    hp_pprof_t p;
    REQUIRE(decode_out(&res.v[0], &p) == 0);
    REQUIRE(p.n_samples == 1 && p.samples[0].loc_n == 2);
    CHECK(streq(frame_name(&p, p.sample_locs[p.samples[0].loc_off]), "file1.so 0x1e0"));
    CHECK(streq(frame_name(&p, p.sample_locs[p.samples[0].loc_off + 1]), "file1.so 0x2f0"));
    CHECK_EQ_INT(p.values[0], 239);
    CHECK(streq(hp_pprof_str(&p, p.sample_types[0].unit), "ms"));
    CHECK_EQ_INT(p.duration_nanos, 10000000000LL);
    CHECK_EQ_INT(p.locations[p.sample_locs[0]].address, 0x1e0);
    CHECK(!p.mappings[0].has_functions && !p.mappings[0].has_line_numbers);
    hp_pprof_fini(&p);
    hp_otlp_result_fini(&res);
    free(f);
}

/* Pyroscope's TestDifferentServiceNames: samples with their own
 * service.name attribute split into one profile (one series) each; those
 * without it keep the resource's service name. */
static void test_service_names(void)
{
    fx_t *f = fx_new();
    int32_t ma = fx_mapping(f, 0x1000, 0x2000, "service-a.so"),
            mb = fx_mapping(f, 0x2000, 0x3000, "service-b.so");
    int32_t mc = fx_mapping(f, 0x4000, 0x5000, "service-c.so");
    int32_t la = fx_location(f, ma, 0x1100, fx_function(f, "serviceA_func1", "a.go"), 10);
    int32_t lb = fx_location(f, mb, 0x2100, fx_function(f, "serviceB_func1", "b.go"), 30);
    int32_t lc = fx_location(f, mc, 0xef0, fx_function(f, "serviceC_func3", "c.go"), 50);
    int32_t aa = fx_attr(f, "service.name", str_value("service-a"));
    int32_t ab = fx_attr(f, "service.name", str_value("service-b"));
    fx_types(f, "samples", "count", "cpu", "nanoseconds", 10000000);
    fx_sample(f, fx_stack(f, 1, &la), 100, 1, &aa);
    fx_sample(f, fx_stack(f, 1, &lb), 200, 1, &ab);
    fx_sample(f, fx_stack(f, 2, (int32_t[]){lc, lc}), 700, 0, NULL);
    hp_otlp_result_t res;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    CHECK_EQ_INT(res.n, 3);
    const char *svcs[] = {"service-a", "service-b", "unknown_service"};
    const char *leaves[] = {"serviceA_func1", "serviceB_func1", "serviceC_func3"};
    const int64_t totals[] = {1000000000, 2000000000, 7000000000};
    for (int i = 0; i < 3; i++) {
        const hp_otlp_profile_t *o = by_service(&res, svcs[i]);
        REQUIRE(o != NULL);
        CHECK_EQ_STR(label(o, "__name__"), "process_cpu");
        hp_pprof_t p;
        REQUIRE(decode_out(o, &p) == 0);
        CHECK_EQ_INT(p.n_samples, 1);
        CHECK_EQ_INT(leaf_total(&p, leaves[i]), totals[i]);
        CHECK(sample_label(&p, 0, "service.name") == NULL);
        hp_pprof_fini(&p);
    }
    hp_otlp_result_fini(&res);
    free(f);
}

/* Pyroscope's TestSampleAttributes: sample attributes become pprof labels
 * (integers formatted, one-element arrays unwrapped); a trace link becomes
 * span_id and trace_id. */
static void test_sample_attributes(void)
{
    fx_t *f = fx_new();
    int32_t mf = fx_mapping(f, 0x1000, 0x1000, "firefox.so"), mc = fx_mapping(f, 0x1000, 0x1000, "chrome.so");
    int32_t l0 = fx_location(f, mf, 0x1e, -1, 0), l1 = fx_location(f, mc, 0x3e, -1, 0);
    any_t arr = ANY_INIT;
    f->array_vals[0] = str_value("chrome");
    f->array_valp[0] = &f->array_vals[0];
    f->arrays[0] =
        (Opentelemetry__Proto__Common__V1__ArrayValue)OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    f->arrays[0].n_values = 1;
    f->arrays[0].values = f->array_valp;
    arr.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr.array_value = &f->arrays[0];
    int32_t a0 = fx_attr(f, "process", str_value("firefox")), a1 = fx_attr(f, "process", arr);
    int32_t a2 = fx_attr(f, "cpu.logical_number", int_value(0)),
            a3 = fx_attr(f, "cpu.logical_number", int_value(7));
    int32_t a4 = fx_attr(f, "empty", str_value(""));
    fx_types(f, "samples", "ms", NULL, NULL, 0);
    fx_sample(f, fx_stack(f, 1, &l0), 0xef, 3, (int32_t[]){a0, a2, a4});
    fx_sample(f, fx_stack(f, 1, &l1), 0xefef, 2, (int32_t[]){a1, a3});
    /* link_table[0] is the "no link" entry; sample 1 links to entry 1 */
    for (int i = 0; i < 2; i++) {
        f->links[i] = (link_t)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINK__INIT;
        f->linkp[i] = &f->links[i];
    }
    memset(f->trace_id, 0xab, 16);
    memset(f->span_id, 0x01, 8);
    f->links[1].trace_id = (ProtobufCBinaryData){16, f->trace_id};
    f->links[1].span_id = (ProtobufCBinaryData){8, f->span_id};
    f->dict.n_link_table = 2;
    f->samples[1].link_index = 1;
    hp_otlp_result_t res;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    REQUIRE(res.n == 1);
    CHECK(label(&res.v[0], "process") == NULL); /* pprof labels, not series labels */
    hp_pprof_t p;
    REQUIRE(decode_out(&res.v[0], &p) == 0);
    REQUIRE(p.n_samples == 2);
    for (uint32_t i = 0; i < 2; i++) {
        bool ff = streq(frame_name(&p, p.sample_locs[p.samples[i].loc_off]), "firefox.so 0x1e");
        CHECK_EQ_STR(sample_label(&p, i, "process"), ff ? "firefox" : "chrome");
        CHECK_EQ_STR(sample_label(&p, i, "cpu.logical_number"), ff ? "0" : "7");
        CHECK(sample_label(&p, i, "empty") == NULL);
        CHECK_EQ_INT(p.values[p.samples[i].val_off], ff ? 0xef : 0xefef);
        if (ff) {
            CHECK(sample_label(&p, i, "span_id") == NULL);
        } else {
            CHECK_EQ_STR(sample_label(&p, i, "span_id"), "0101010101010101");
            CHECK_EQ_STR(sample_label(&p, i, "trace_id"), "abababababababababababababababab");
        }
    }
    hp_pprof_fini(&p);
    hp_otlp_result_fini(&res);
    free(f);
}

/* Without service.name the resource's process.executable.name qualifies
 * the fallback (Pyroscope's reading of the semantic conventions). */
static void test_service_fallback(void)
{
    fx_t *f = fx_new();
    int32_t l = fx_location(f, fx_mapping(f, 0, 0, "bash"), 0x10, -1, 0);
    fx_types(f, "samples", "count", NULL, NULL, 0);
    fx_sample(f, fx_stack(f, 1, &l), 1, 0, NULL);
    fx_resource(f, "process.executable.name", "bash");
    hp_otlp_result_t res;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    REQUIRE(res.n == 1);
    CHECK_EQ_STR(label(&res.v[0], "service_name"), "unknown_service:bash");
    CHECK_EQ_STR(label(&res.v[0], "process.executable.name"), "bash");
    hp_otlp_result_fini(&res);
    free(f);
}

/* Pyroscope's TestConversionOffCpu: off_cpu/nanoseconds sums a sample's
 * values; a profile without samples converts into nothing. */
static void test_offcpu_and_empty(void)
{
    fx_t *f = fx_new();
    int32_t m = fx_mapping(f, 0x1000, 0x1000, "file1.so");
    int32_t l0 = fx_location(f, m, 0x1e0, -1, 0), l2 = fx_location(f, m, 0x3f0, -1, 0);
    fx_types(f, "off_cpu", "nanoseconds", NULL, NULL, 0);
    fx_sample(f, fx_stack(f, 1, &l0), 0xef, 0, NULL);
    int32_t s = fx_sample(f, fx_stack(f, 1, &l2), 0, 0, NULL);
    for (int i = 0; i < 6; i++)
        f->sample_vals[s][i] = i + 1;
    f->samples[s].n_values = 6;
    hp_otlp_result_t res;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    REQUIRE(res.n == 1);
    CHECK_EQ_STR(label(&res.v[0], "__name__"), "off_cpu");
    hp_pprof_t p;
    REQUIRE(decode_out(&res.v[0], &p) == 0);
    CHECK_EQ_INT(leaf_total(&p, "file1.so 0x3f0"), 21);
    CHECK_EQ_INT(leaf_total(&p, "file1.so 0x1e0"), 239);
    hp_pprof_fini(&p);
    hp_otlp_result_fini(&res);
    f->prof.n_samples = 0;
    REQUIRE(fx_convert(f, NULL, &res, &err) == 0);
    CHECK_EQ_INT(res.n, 0);
    hp_otlp_result_fini(&res);
    free(f);
}

/* The same request as protojson converts into the same pprof and labels;
 * and JSON as Pyroscope's own test sends it (lowerCamel names, 64-bit
 * integers as strings) is understood. */
static void test_json(void)
{
    fx_t *f = cpu_fixture();
    hp_buf_t json = HP_BUF_INIT;
    hp_pbjson_encode(&f->req.base, &json);
    hp_otlp_result_t a, b;
    hp_err_t err;
    REQUIRE(fx_convert(f, NULL, &a, &err) == 0);
    int rc = hp_otlp_convert(json.data, json.len, true, NULL, &b, &err);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == 0);
    check_cpu_output(&b);
    REQUIRE(a.n == 1 && b.n == 1);
    CHECK(a.v[0].pprof_len == b.v[0].pprof_len && memcmp(a.v[0].pprof, b.v[0].pprof, a.v[0].pprof_len) == 0);
    CHECK(a.v[0].labels.n == b.v[0].labels.n);
    hp_otlp_result_fini(&a);
    hp_otlp_result_fini(&b);
    hp_buf_fini(&json);
    free(f);
    static const char pyro[] =
        "{\"resourceProfiles\": [{\"resource\": {\"attributes\": [{\"key\": \"service.name\", \"value\": "
        "{\"stringValue\": \"json-svc\"}}]},\"scopeProfiles\": [{\"profiles\": [{"
        "\"sampleType\": {\"typeStrindex\": 0, \"unitStrindex\": 1},"
        "\"samples\": [{\"stackIndex\": 0, \"values\": [\"100\"]}, {\"stackIndex\": 0, "
        "\"timestampsUnixNano\": "
        "[\"1\", \"2\"]}],\"timeUnixNano\": \"1234567890\"}]}]}],"
        "\"dictionary\": {\"stringTable\": [\"samples\", \"count\", \"test.so\"],"
        "\"mappingTable\": [{\"memoryStart\": \"4096\", \"memoryLimit\": \"8192\", \"filenameStrindex\": 2}],"
        "\"locationTable\": [{\"mappingIndex\": 0, \"address\": \"4352\"}],"
        "\"stackTable\": [{\"locationIndices\": [0]}]}}";
    hp_otlp_result_t r;
    REQUIRE(hp_otlp_convert((const uint8_t *)pyro, strlen(pyro), true, NULL, &r, &err) == 0);
    REQUIRE(r.n == 1);
    CHECK_EQ_STR(label(&r.v[0], "service_name"), "json-svc");
    hp_pprof_t p;
    REQUIRE(decode_out(&r.v[0], &p) == 0);
    CHECK_EQ_INT(leaf_total(&p, "test.so 0x1100"), 102); /* 100, plus 2 timestamps counting 1 each */
    CHECK_EQ_INT(p.time_nanos, 1234567890);
    hp_pprof_fini(&p);
    hp_otlp_result_fini(&r);
}

/* Expects HP_EINVAL whose message contains needle. */
static void expect_einval(fx_t *f, const char *needle)
{
    hp_otlp_result_t res;
    hp_err_t err;
    int rc = fx_convert(f, NULL, &res, &err);
    CHECK_EQ_INT(rc, HP_EINVAL);
    if (rc == HP_EINVAL && strstr(err.msg, needle) == NULL) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, needle);
        hp_t_cur_failed = 1;
    }
    CHECK(res.n == 0 && res.v == NULL);
    hp_otlp_result_fini(&res);
}

/* Every index from the wire is checked, and each bad one is named. */
static void test_bad_indices(void)
{
    fx_t *f = cpu_fixture();
    f->samples[0].stack_index = 99;
    expect_einval(f, "invalid stack index: 99");
    f->samples[0].stack_index = -1;
    expect_einval(f, "invalid stack index: -1");
    f->samples[0].stack_index = 0;
    f->stack_locs[0][1] = 42;
    expect_einval(f, "location index 42 out of range");
    f->stack_locs[0][1] = 0;
    f->locs[0].mapping_index = 7;
    expect_einval(f, "mapping index 7 out of range");
    f->locs[0].mapping_index = 0;
    int32_t saved = f->lines[0].function_index;
    f->lines[0].function_index = -3;
    expect_einval(f, "function index -3 out of range");
    f->lines[0].function_index = saved;
    saved = f->fns[saved].name_strindex;
    f->fns[f->lines[0].function_index].name_strindex = 1000;
    expect_einval(f, "function name: string index 1000 out of range");
    f->fns[f->lines[0].function_index].name_strindex = saved;
    saved = f->maps[0].filename_strindex;
    f->maps[0].filename_strindex = -1;
    expect_einval(f, "mapping file name: string index -1");
    f->maps[0].filename_strindex = saved;
    f->st.type_strindex = 500;
    expect_einval(f, "sample type: string index 500");
    f->st.type_strindex = fx_str(f, "samples");
    f->samples[0].attribute_indices = f->sample_attrs[0];
    f->sample_attrs[0][0] = 3;
    f->samples[0].n_attribute_indices = 1;
    expect_einval(f, "attribute index 3 out of range");
    f->samples[0].n_attribute_indices = 0;
    f->samples[1].link_index = 5;
    expect_einval(f, "link index 5 out of range");
    f->samples[1].link_index = 0;
    f->samples[2].n_values = 0;
    expect_einval(f, "sample value is required");
    f->samples[2].n_values = 2;
    expect_einval(f, "sample values length mismatch 2 1");
    f->samples[2].n_values = 1;
    f->prof.sample_type = NULL;
    expect_einval(f, "failed to convert otel profile: sample type is missing");
    f->prof.sample_type = &f->st;
    f->req.dictionary = NULL;
    expect_einval(f, "missing profile metadata dictionary");
    f->req.dictionary = &f->dict;
    f->req.n_resource_profiles = 0;
    expect_einval(f, "missing resource profiles");
    f->req.n_resource_profiles = 1;
    hp_otlp_result_t res;
    hp_err_t err;
    CHECK(fx_convert(f, NULL, &res, &err) == 0); /* and the fixture is whole again */
    hp_otlp_result_fini(&res);
    free(f);
}

/* Bodies that are not requests: truncated protobuf, bad wire types, values
 * nested past the depth bound (protobuf-c would recurse without limit),
 * broken JSON. */
static void test_malformed(void)
{
    fx_t *f = cpu_fixture();
    size_t n;
    uint8_t *b = fx_pack(f, &n);
    hp_otlp_result_t res;
    hp_err_t err;
    for (size_t cut = 1; cut < n; cut += 7) {
        int rc = hp_otlp_convert(b, n - cut, false, NULL, &res, &err);
        CHECK(rc == 0 || rc == HP_EINVAL);
        hp_otlp_result_fini(&res);
    }
    CHECK_EQ_INT(hp_otlp_convert(b, n - 1, false, NULL, &res, &err), HP_EINVAL);
    CHECK_EQ_INT(err.detail, HP_OTLP_EPARSE);
    free(b);
    /* resource_profiles { resource { attributes { value { array { values { array … } } } } } } */
    hp_buf_t deep = HP_BUF_INIT, tmp = HP_BUF_INIT;
    hp_buf_append(&deep, "\x0a\x00", 2); /* an empty AnyValue, the innermost */
    for (int i = 0; i < 200; i++) {      /* AnyValue.array_value(5) { ArrayValue.values(1) { … } } */
        hp_buf_reset(&tmp);
        hp_pb_put_bytes(&tmp, 1, deep.data, deep.len);
        hp_buf_reset(&deep);
        hp_pb_put_bytes(&deep, 5, tmp.data, tmp.len);
    }
    hp_buf_reset(&tmp);
    hp_pb_put_bytes(&tmp, 2, deep.data, deep.len); /* KeyValue.value */
    hp_buf_reset(&deep);
    hp_pb_put_bytes(&deep, 1, tmp.data, tmp.len); /* Resource.attributes */
    hp_buf_reset(&tmp);
    hp_pb_put_bytes(&tmp, 1, deep.data, deep.len); /* ResourceProfiles.resource */
    hp_buf_reset(&deep);
    hp_pb_put_bytes(&deep, 1, tmp.data, tmp.len); /* request.resource_profiles */
    CHECK_EQ_INT(hp_otlp_convert(deep.data, deep.len, false, NULL, &res, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "nested deeper than 64") != NULL);
    hp_buf_fini(&deep);
    hp_buf_fini(&tmp);
    const char *bad_json[] = {"",
                              "[]",
                              "{\"resourceProfiles\": 3}",
                              "{\"dictionary\": {\"stringTable\": [1]}}",
                              "{\"resourceProfiles\": [{}], \"dictionary\": {}",
                              "not json"};
    for (size_t i = 0; i < HP_ARRAY_LEN(bad_json); i++) {
        CHECK_EQ_INT(
            hp_otlp_convert((const uint8_t *)bad_json[i], strlen(bad_json[i]), true, NULL, &res, &err),
            HP_EINVAL);
        hp_otlp_result_fini(&res);
    }
    free(f);
}

/* A stack shared by many samples cannot expand without bound, nor can
 * service splitting multiply profiles without bound. */
static void test_limits(void)
{
    fx_t *f = cpu_fixture();
    hp_otlp_limits_t lim = {.max_frames = 4};
    hp_otlp_result_t res;
    hp_err_t err;
    CHECK_EQ_INT(fx_convert(f, &lim, &res, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "more than 4 frames") != NULL);
    hp_otlp_result_fini(&res);
    int32_t a = fx_attr(f, "service.name", str_value("other"));
    f->sample_attrs[1][0] = a;
    f->samples[1].n_attribute_indices = 1;
    lim = (hp_otlp_limits_t){.max_profiles = 1};
    CHECK_EQ_INT(fx_convert(f, &lim, &res, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "more than 1 profiles") != NULL);
    hp_otlp_result_fini(&res);
    lim.max_profiles = 2;
    CHECK_EQ_INT(fx_convert(f, &lim, &res, &err), 0);
    CHECK_EQ_INT(res.n, 2);
    hp_otlp_result_fini(&res);
    /* strings and messages protobuf-c would allocate, in both encodings */
    lim = (hp_otlp_limits_t){.max_elements = 10};
    CHECK_EQ_INT(fx_convert(f, &lim, &res, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "more than 10 strings and messages") != NULL);
    hp_otlp_result_fini(&res);
    hp_buf_t json = HP_BUF_INIT;
    hp_pbjson_encode(&f->req.base, &json);
    CHECK_EQ_INT(hp_otlp_convert(json.data, json.len, true, &lim, &res, &err), HP_EINVAL);
    CHECK(strstr(err.msg, "more than 10 strings and messages") != NULL);
    hp_otlp_result_fini(&res);
    lim.max_elements = 1000;
    CHECK_EQ_INT(hp_otlp_convert(json.data, json.len, true, &lim, &res, &err), 0);
    hp_otlp_result_fini(&res);
    hp_buf_fini(&json);
    free(f);
}

/* Random mutations of a valid message: never a crash, never an error but
 * HP_EINVAL, and whatever converts is a pprof the decoder can read. */
static void test_fuzz(void)
{
    fx_t *f = cpu_fixture();
    int32_t a = fx_attr(f, "thread.name", str_value("worker"));
    f->sample_attrs[0][0] = a;
    f->samples[0].n_attribute_indices = 1;
    size_t n;
    uint8_t *orig = fx_pack(f, &n);
    uint8_t *b = malloc(n + 16);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int ok = 0, bad = 0, other = 0;
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(b, orig, n);
        size_t len = n;
        int muts = 1 + iter % 4;
        for (int k = 0; k < muts; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(seed >> 33) % len;
            switch ((seed >> 20) % 4) {
            case 0:
                b[at] ^= (uint8_t)(1u << ((seed >> 8) % 8));
                break;
            case 1:
                b[at] = (uint8_t)(seed >> 40);
                break;
            case 2:
                len = at + 1;
                break;
            default:
                b[at] = (uint8_t)((seed >> 48) % 3 == 0 ? 0xff : (seed >> 48) & 0x7f);
                break;
            }
        }
        hp_otlp_result_t res;
        hp_err_t err;
        int rc = hp_otlp_convert(b, len, false, NULL, &res, &err);
        if (rc == 0) {
            ok++;
            for (size_t i = 0; i < res.n; i++) {
                hp_pprof_t p;
                memset(&p, 0, sizeof(p));
                if (hp_pprof_decode(&p, res.v[i].pprof, res.v[i].pprof_len, NULL, &err) == 0)
                    CHECK(p.n_samples > 0);
                hp_pprof_fini(&p);
            }
        } else if (rc == HP_EINVAL) {
            bad++;
        } else {
            other++;
        }
        hp_otlp_result_fini(&res);
    }
    fprintf(stderr, "  5000 mutations: %d converted, %d refused\n", ok, bad);
    CHECK_EQ_INT(other, 0);
    CHECK(ok > 0 && bad > 0);
    free(b);
    free(orig);
    free(f);
}

int main(void)
{
    HP_RUN(test_symbolized);
    HP_RUN(test_unsymbolized);
    HP_RUN(test_service_names);
    HP_RUN(test_sample_attributes);
    HP_RUN(test_service_fallback);
    HP_RUN(test_offcpu_and_empty);
    HP_RUN(test_json);
    HP_RUN(test_bad_indices);
    HP_RUN(test_malformed);
    HP_RUN(test_limits);
    HP_RUN(test_fuzz);
    return hp_test_done();
}
