/* Unit tests for qengine.h's merges with a span filter, over a real RPC
 * server: a head holding profiles with and without span IDs answers
 * query.SelectMergeStacktraces and query.SelectMergeProfile with only the
 * samples of the requested spans (all of them without a filter), also in
 * the second phase of a deduplication session. And the StackTraceSelector:
 * a call site narrows merges and series, Go PGO trims pprof stacks. */
#include <stdio.h>
#include <unistd.h>

#include "hotpath/pool.h"
#include "hotpath/pprof.h"
#include "hotpath/qengine.h"
#include "hotpath/tree.h"
#include "types/v1/types.pb-c.h"
#include "test.h"

#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

typedef struct fixture {
    hp_head_t *head;
    hp_head_t *copy; /* NULL, or a second source holding copies of head's profiles */
    uint32_t st_a, st_b; /* stacks main;a and main;b */
    hp_pool_t *pool;
    hp_rpc_server_t *srv;
    hp_rpc_client_t *cli;
    hp_qengine_t *qe;
} fixture_t;

static void fx_sources(void *ctx, hp_str_t tenant, int64_t start_ns, int64_t end_ns, hp_qe_sources_t *out)
{
    fixture_t *fx = ctx;
    (void)tenant, (void)start_ns, (void)end_ns;
    hp_head_ref(fx->head);
    hp_qe_sources_add(out, fx->head->id, fx->head, NULL);
    if (fx->copy) {
        hp_head_ref(fx->copy);
        hp_qe_sources_add(out, fx->copy->id, fx->copy, NULL);
    }
}

static int fx_open_block(void *ctx, void *block, const hp_select_t *q, hp_head_t **out, hp_err_t *err)
{
    (void)ctx, (void)block, (void)q, (void)err;
    *out = NULL;
    return 0;
}

static void fx_release_block(void *ctx, void *block)
{
    (void)ctx, (void)block;
}

/* The name of the function of a pprof sample's leaf location. */
static hp_str_t leaf_name(const hp_pprof_t *p, const hp_pprof_sample_t *s)
{
    const hp_pprof_location_t *loc = &p->locations[p->sample_locs[s->loc_off]];
    return hp_pprof_str(p, p->functions[p->lines[loc->line_off].function].name);
}

/* The head's symbols: functions main, a, b and stacks main;a, then
 * main;b (so st_a < st_b). */
static void add_symbols(fixture_t *fx)
{
    hp_pprof_builder_t *b = hp_pprof_builder_new();
    hp_pprof_builder_sample_type(b, HP_STR("cpu"), HP_STR("nanoseconds"));
    uint64_t locs[3];
    const char *names[] = {"main", "a", "b"};
    for (int i = 0; i < 3; i++) {
        uint64_t fn = hp_pprof_builder_function(b, hp_str_c(names[i]), HP_STR(""), HP_STR(""), 0);
        hp_pprof_line_in_t line = {fn, 1};
        locs[i] = hp_pprof_builder_location(b, 0, 0x1000 * (uint64_t)(i + 1), &line, 1);
    }
    int64_t one = 1;
    uint64_t s1[] = {locs[1], locs[0]}, s2[] = {locs[2], locs[0]};
    hp_pprof_builder_sample(b, s1, 2, &one, NULL, 0);
    hp_pprof_builder_sample(b, s2, 2, &one, NULL, 0);
    hp_buf_t raw = HP_BUF_INIT;
    hp_pprof_builder_encode(b, &raw);
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_err_t err;
    REQUIRE(hp_pprof_decode(&p, raw.data, raw.len, NULL, &err) == 0);
    uint32_t map[8];
    hp_symdb_import(fx->head->symdb, &p, map, 0);
    for (int want = 0; want < 2; want++)
        for (uint32_t i = 0; i < p.n_samples; i++) {
            const hp_pprof_sample_t *s = &p.samples[i];
            if (!hp_str_eq_c(leaf_name(&p, s), names[want + 1]))
                continue;
            uint32_t chain[2] = {map[p.sample_locs[s->loc_off]], map[p.sample_locs[s->loc_off + 1]]};
            *(want ? &fx->st_b : &fx->st_a) = hp_symdb_stack(fx->head->symdb, chain, 2);
        }
    hp_pprof_fini(&p);
    hp_buf_fini(&raw);
    hp_pprof_builder_free(b);
}

static hp_series_t *series_of(hp_head_t *h, const char *svc)
{
    hp_labels_t l;
    hp_labels_init(&l);
    hp_labels_add(&l, HP_STR("service_name"), hp_str_c(svc));
    hp_labels_add(&l, HP_STR(HP_LABEL_PROFILE_TYPE), HP_STR(CPU));
    hp_labels_sort(&l);
    bool created;
    hp_series_t *s = hp_head_series(h, &l, hp_labels_fingerprint(&l), &created);
    hp_labels_fini(&l);
    return s;
}

/* Series "x": a profile with spans (main;a 10 in span 5 and 20 in span 7,
 * main;b 40 without a span and 80 in span 5) and one without (100, 200);
 * series "y" without spans (main;a 1000). */
static void add_profiles(fixture_t *fx)
{
    hp_head_t *h = fx->head;
    uint8_t id1[16], id2[16], id3[16];
    memset(id1, 1, 16), memset(id2, 2, 16), memset(id3, 3, 16);
    uint32_t a = fx->st_a, b = fx->st_b;
    REQUIRE(a != 0 && a < b);
    uint32_t st[] = {a, a, b, b};
    int64_t val[] = {10, 20, 40, 80};
    uint64_t sp[] = {5, 7, 0, 5};
    hp_series_t *x = series_of(h, "x"), *y = series_of(h, "y");
    CHECK(hp_head_append(h, x, 1000, id1, st, val, sp, 4));
    uint32_t st2[] = {a, b};
    int64_t val2[] = {100, 200}, val3[] = {1000};
    CHECK(hp_head_append(h, x, 2000, id2, st2, val2, NULL, 2));
    CHECK(hp_head_append(h, y, 1500, id3, &a, val3, NULL, 1));
}

static void fx_start(fixture_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->head = hp_head_new(42, "t", 0, INT64_MAX, NULL);
    add_symbols(fx);
    add_profiles(fx);
    REQUIRE(hp_pool_start(2, &fx->pool) == 0);
    hp_rpc_server_config_t cfg = {"tcp://127.0.0.1:0", 0, 0};
    hp_err_t err;
    REQUIRE(hp_rpc_server_new(fx->pool, &cfg, &fx->srv, &err) == 0);
    hp_qe_provider_t p = {fx_sources, fx_open_block, fx_release_block, fx};
    fx->qe = hp_qengine_new(&p);
    hp_qengine_register(fx->qe, fx->srv);
    REQUIRE(hp_rpc_server_start(fx->srv, &err) == 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", hp_rpc_server_port(fx->srv));
    REQUIRE(hp_rpc_client_new(url, 0, &fx->cli, &err) == 0);
    int rc = HP_EUNAVAIL; /* the client dials in the background */
    for (int i = 0; i < 200 && rc == HP_EUNAVAIL; i++) {
        hp_buf_t out = HP_BUF_INIT;
        if ((rc = hp_rpc_call(fx->cli, "query.ProfileTypes", HP_STR("t"), NULL, 0, 5000, &out, &err)) != 0)
            usleep(20000);
        hp_buf_fini(&out);
    }
    REQUIRE(rc == 0);
}

static void fx_stop(fixture_t *fx)
{
    hp_rpc_client_free(fx->cli);
    hp_rpc_server_free(fx->srv);
    hp_qengine_free(fx->qe);
    hp_pool_stop(fx->pool);
    hp_head_unref(fx->head);
    if (fx->copy)
        hp_head_unref(fx->copy);
}

/* Calls method with a SelectRequest of the CPU type and selector with
 * these span IDs (n 0: no filter) and a session; the reply in out. */
static int call(fixture_t *fx, const char *method, const char *selector, const uint64_t *spans, size_t n,
                uint64_t session, const uint8_t *keep, size_t keep_len, hp_buf_t *out)
{
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.profile_type = CPU;
    r.label_selector = (char *)selector;
    r.span_ids = (uint64_t *)spans;
    r.n_span_ids = n;
    r.session = session;
    r.keep.data = (uint8_t *)keep;
    r.keep.len = keep_len;
    hp_buf_t body = HP_BUF_INIT;
    hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(&r) + 1);
    body.len = hotpath__v1__select_request__pack(&r, body.data);
    hp_err_t err;
    hp_buf_reset(out);
    int rc = hp_rpc_call(fx->cli, method, HP_STR("t"), body.data, body.len, 10000, out, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", method, err.msg);
    hp_buf_fini(&body);
    return rc;
}

typedef struct totals {
    int64_t a, b; /* self values of a and b */
} totals_t;

static void visit(void *ctx, const hp_str_t *frames, size_t n, int64_t self)
{
    totals_t *t = ctx;
    if (n == 2 && hp_str_eq_c(frames[1], "a"))
        t->a += self;
    if (n == 2 && hp_str_eq_c(frames[1], "b"))
        t->b += self;
}

/* SelectMergeStacktraces' tree: the self values of main;a and main;b. */
static totals_t tree_totals(fixture_t *fx, const char *selector, const uint64_t *spans, size_t n,
                            uint64_t session, const uint8_t *keep, size_t keep_len)
{
    totals_t t = {-1, -1};
    hp_buf_t out = HP_BUF_INIT;
    if (call(fx, "query.SelectMergeStacktraces", selector, spans, n, session, keep, keep_len, &out) == 0) {
        hp_tree_t *tree = hp_tree_new();
        hp_err_t err;
        if (hp_tree_decode_merge(tree, out.data, out.len, 0, &err) == 0) {
            t.a = t.b = 0;
            hp_tree_walk(tree, visit, &t);
            CHECK_EQ_INT(hp_tree_total(tree), t.a + t.b);
        }
        hp_tree_free(tree);
    }
    hp_buf_fini(&out);
    return t;
}

static void test_span_filter(void)
{
    fixture_t fx;
    fx_start(&fx);
    totals_t t = tree_totals(&fx, "{}", NULL, 0, 0, NULL, 0);
    CHECK(t.a == 10 + 20 + 100 + 1000 && t.b == 40 + 80 + 200); /* no filter: every sample */
    t = tree_totals(&fx, "{}", (uint64_t[]){5}, 1, 0, NULL, 0);
    CHECK(t.a == 10 && t.b == 80);
    t = tree_totals(&fx, "{}", (uint64_t[]){7, 5, 99}, 3, 0, NULL, 0);
    CHECK(t.a == 30 && t.b == 80);
    t = tree_totals(&fx, "{service_name=\"y\"}", (uint64_t[]){5}, 1, 0, NULL, 0);
    CHECK(t.a == 0 && t.b == 0); /* a series without spans */
    t = tree_totals(&fx, "{}", (uint64_t[]){0}, 1, 0, NULL, 0);
    CHECK(t.a == 0 && t.b == 0); /* "no span" matches nothing */

    /* pprof: the same samples */
    hp_buf_t out = HP_BUF_INIT;
    REQUIRE(call(&fx, "query.SelectMergeProfile", "{}", (uint64_t[]){5}, 1, 0, NULL, 0, &out) == 0);
    hp_pprof_t p;
    memset(&p, 0, sizeof(p));
    hp_err_t err;
    REQUIRE(hp_pprof_decode(&p, out.data, out.len, NULL, &err) == 0);
    int64_t sum = 0;
    for (uint32_t i = 0; i < p.n_values; i++)
        sum += p.values[i];
    CHECK_EQ_INT(sum, 90);
    hp_pprof_fini(&p);
    hp_buf_fini(&out);
    fx_stop(&fx);
}

/* The second phase of deduplication: SelectKeys ignores spans (profiles
 * are selected as for any select), the merge filters their samples. */
static void test_session(void)
{
    fixture_t fx;
    fx_start(&fx);
    hp_buf_t out = HP_BUF_INIT;
    REQUIRE(call(&fx, "query.SelectKeys", "{}", (uint64_t[]){5}, 1, 0, NULL, 0, &out) == 0);
    Hotpath__V1__SelectKeysResponse *k = hotpath__v1__select_keys_response__unpack(NULL, out.len, out.data);
    REQUIRE(k != NULL);
    CHECK_EQ_INT(k->keys.len, 3 * 16);
    uint8_t all = 0x7, some = 0x0;
    totals_t t = tree_totals(&fx, "{}", (uint64_t[]){5, 7}, 2, k->session, &all, 1);
    CHECK(t.a == 30 && t.b == 80);
    t = tree_totals(&fx, "{}", (uint64_t[]){5, 7}, 2, k->session, &some, 1);
    CHECK(t.a == 0 && t.b == 0);
    hotpath__v1__select_keys_response__free_unpacked(k, NULL);
    hp_buf_fini(&out);
    fx_stop(&fx);
}

/* query.LabelNames with include_cardinality: each name's distinct values
 * counted, with their hashes for the querier's union; a name with more
 * values than a reply carries hashes for sends its count alone. */
static void test_label_cardinality(void)
{
    fixture_t fx;
    fx_start(&fx);
    const int pods = 10050;
    pthread_rwlock_wrlock(&fx.head->lock);
    for (int i = 0; i < pods; i++) {
        char pod[32];
        snprintf(pod, sizeof(pod), "pod-%d", i);
        hp_labels_t l;
        hp_labels_init(&l);
        hp_labels_add(&l, HP_STR("service_name"), HP_STR("p"));
        hp_labels_add(&l, HP_STR("pod"), hp_str_c(pod));
        hp_labels_add(&l, HP_STR(HP_LABEL_PROFILE_TYPE), HP_STR(CPU));
        hp_labels_sort(&l);
        bool created;
        hp_series_t *s = hp_head_series(fx.head, &l, hp_labels_fingerprint(&l), &created);
        uint8_t id[16] = {0};
        memcpy(id, &i, sizeof(i));
        int64_t v = 1;
        hp_head_append(fx.head, s, 3000, id, &fx.st_a, &v, NULL, 1);
        hp_labels_fini(&l);
    }
    pthread_rwlock_unlock(&fx.head->lock);
    Types__V1__LabelNamesRequest r = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    r.include_cardinality = true;
    hp_buf_t body = HP_BUF_INIT, out = HP_BUF_INIT;
    hp_buf_reserve(&body, types__v1__label_names_request__get_packed_size(&r) + 1);
    body.len = types__v1__label_names_request__pack(&r, body.data);
    hp_err_t err;
    REQUIRE(hp_rpc_call(fx.cli, "query.LabelNames", HP_STR("t"), body.data, body.len, 10000, &out, &err) == 0);
    Types__V1__LabelNamesResponse *resp = types__v1__label_names_response__unpack(NULL, out.len, out.data);
    REQUIRE(resp != NULL);
    CHECK_EQ_INT(resp->n_estimated_cardinality, resp->n_names);
    CHECK_EQ_INT(resp->n_value_hashes, resp->n_names);
    bool saw_pod = false, saw_svc = false;
    for (size_t i = 0; i < resp->n_names && i < resp->n_value_hashes; i++) {
        if (strcmp(resp->names[i], "pod") == 0) {
            saw_pod = true;
            CHECK_EQ_INT(resp->estimated_cardinality[i], pods);
            CHECK_EQ_INT(resp->value_hashes[i].len, 0); /* too many: the count alone */
        } else if (strcmp(resp->names[i], "service_name") == 0) {
            saw_svc = true;
            CHECK_EQ_INT(resp->estimated_cardinality[i], 3); /* x, y, p */
            CHECK_EQ_INT(resp->value_hashes[i].len, 3 * 8);
        }
    }
    CHECK(saw_pod && saw_svc);
    types__v1__label_names_response__free_unpacked(resp, NULL);
    hp_buf_fini(&body);
    hp_buf_fini(&out);
    fx_stop(&fx);
}

/* Calls method with a SelectRequest of the CPU type over every series
 * with this stack trace selector; the reply in out. SelectSeries gets a
 * SelectSeriesRequest around it (default step, no grouping). */
static int call_sts(fixture_t *fx, const char *method, const Types__V1__StackTraceSelector *sts,
                    hp_buf_t *out)
{
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.profile_type = CPU;
    r.label_selector = "{}";
    r.stack_trace_selector = (Types__V1__StackTraceSelector *)sts;
    Hotpath__V1__SelectSeriesRequest sr = HOTPATH__V1__SELECT_SERIES_REQUEST__INIT;
    sr.select = &r;
    bool series = strcmp(method, "query.SelectSeries") == 0;
    const ProtobufCMessage *m = series ? &sr.base : &r.base;
    hp_buf_t body = HP_BUF_INIT;
    hp_buf_reserve(&body, protobuf_c_message_get_packed_size(m) + 1);
    body.len = protobuf_c_message_pack(m, body.data);
    hp_err_t err;
    hp_buf_reset(out);
    int rc = hp_rpc_call(fx->cli, method, HP_STR("t"), body.data, body.len, 10000, out, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", method, err.msg);
    hp_buf_fini(&body);
    return rc;
}

/* A selector of the call site names[0..n). */
typedef struct sts_fx {
    Types__V1__StackTraceSelector sts;
    Types__V1__Location locs[4], *ptrs[4];
} sts_fx_t;

static const Types__V1__StackTraceSelector *sts_of(sts_fx_t *x, const char *const *names, size_t n)
{
    types__v1__stack_trace_selector__init(&x->sts);
    for (size_t i = 0; i < n; i++) {
        types__v1__location__init(&x->locs[i]);
        x->locs[i].name = (char *)names[i];
        x->ptrs[i] = &x->locs[i];
    }
    x->sts.call_site = x->ptrs;
    x->sts.n_call_site = n;
    return &x->sts;
}

static totals_t tree_totals_sts(fixture_t *fx, const Types__V1__StackTraceSelector *sts)
{
    totals_t t = {-1, -1};
    hp_buf_t out = HP_BUF_INIT;
    if (call_sts(fx, "query.SelectMergeStacktraces", sts, &out) == 0) {
        hp_tree_t *tree = hp_tree_new();
        hp_err_t err;
        if (hp_tree_decode_merge(tree, out.data, out.len, 0, &err) == 0) {
            t.a = t.b = 0;
            hp_tree_walk(tree, visit, &t);
        }
        hp_tree_free(tree);
    }
    hp_buf_fini(&out);
    return t;
}

/* SelectSeries' one point (every profile is in the first step): its sum. */
static double series_sum(fixture_t *fx, const Types__V1__StackTraceSelector *sts)
{
    double v = -1;
    hp_buf_t out = HP_BUF_INIT;
    if (call_sts(fx, "query.SelectSeries", sts, &out) == 0) {
        Hotpath__V1__SelectSeriesResponse *r =
            hotpath__v1__select_series_response__unpack(NULL, out.len, out.data);
        if (r && r->n_series == 1 && r->series[0]->n_points == 1)
            v = r->series[0]->points[0]->value;
        if (r)
            hotpath__v1__select_series_response__free_unpacked(r, NULL);
    }
    hp_buf_fini(&out);
    return v;
}

static void test_call_site(void)
{
    fixture_t fx;
    fx_start(&fx);
    sts_fx_t x;
    const int64_t all_a = 10 + 20 + 100 + 1000, all_b = 40 + 80 + 200;
    totals_t t = tree_totals_sts(&fx, sts_of(&x, NULL, 0));
    CHECK(t.a == all_a && t.b == all_b); /* an empty selector selects all */
    t = tree_totals_sts(&fx, sts_of(&x, (const char *[]){"main"}, 1));
    CHECK(t.a == all_a && t.b == all_b);
    t = tree_totals_sts(&fx, sts_of(&x, (const char *[]){"main", "a"}, 2));
    CHECK(t.a == all_a && t.b == 0);
    t = tree_totals_sts(&fx, sts_of(&x, (const char *[]){"a"}, 1));
    CHECK(t.a == 0 && t.b == 0); /* from the root, not anywhere */
    t = tree_totals_sts(&fx, sts_of(&x, (const char *[]){"main", "a", "a"}, 3));
    CHECK(t.a == 0 && t.b == 0); /* deeper than any stack */

    CHECK(series_sum(&fx, sts_of(&x, NULL, 0)) == (double)(all_a + all_b));
    CHECK(series_sum(&fx, sts_of(&x, (const char *[]){"main", "b"}, 2)) == (double)all_b);
    CHECK(series_sum(&fx, sts_of(&x, (const char *[]){"nope"}, 1)) == 0.0);

    /* pprof with a call site, then with Go PGO too, which takes precedence
     * (the call site is ignored, as in Pyroscope): one leaf location each,
     * its line cleared, samples of one leaf merged */
    Types__V1__GoPGO pgo = TYPES__V1__GO_PGO__INIT;
    pgo.keep_locations = 1;
    pgo.aggregate_callees = true;
    for (int with_pgo = 0; with_pgo < 2; with_pgo++) {
        Types__V1__StackTraceSelector sts = *sts_of(&x, (const char *[]){"main", "b"}, 2);
        sts.go_pgo = with_pgo ? &pgo : NULL;
        hp_buf_t out = HP_BUF_INIT;
        REQUIRE(call_sts(&fx, "query.SelectMergeProfile", &sts, &out) == 0);
        hp_pprof_t p;
        memset(&p, 0, sizeof(p));
        hp_err_t err;
        REQUIRE(hp_pprof_decode(&p, out.data, out.len, NULL, &err) == 0);
        int64_t a = 0, b = 0;
        for (uint32_t i = 0; i < p.n_samples; i++) {
            const hp_pprof_sample_t *sm = &p.samples[i];
            CHECK_EQ_INT(sm->loc_n, with_pgo ? 1 : 2);
            const hp_pprof_location_t *leaf = &p.locations[p.sample_locs[sm->loc_off]];
            CHECK_EQ_INT(p.lines[leaf->line_off].line, with_pgo ? 0 : 1);
            *(hp_str_eq_c(leaf_name(&p, sm), "a") ? &a : &b) += p.values[sm->val_off];
        }
        CHECK_EQ_INT(p.n_samples, with_pgo ? 2 : 1);
        CHECK_EQ_INT(a, with_pgo ? all_a : 0);
        CHECK_EQ_INT(b, all_b);
        hp_pprof_fini(&p);
        hp_buf_fini(&out);
    }
    fx_stop(&fx);
}

/* query.ListProfiles with a limit, over two sources that hold copies of
 * the same profiles (as a head and its flushed block, or replica blocks
 * do): each profile is listed once, so copies do not crowd others out. */
static void test_list_copies(void)
{
    fixture_t fx;
    fx_start(&fx);
    hp_head_t *saved = fx.head;
    fx.head = hp_head_new(43, "t", 0, INT64_MAX, NULL); /* the copy: same series, symbols and profiles */
    pthread_rwlock_wrlock(&fx.head->lock);
    add_symbols(&fx);
    add_profiles(&fx);
    pthread_rwlock_unlock(&fx.head->lock);
    fx.copy = fx.head;
    fx.head = saved;
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.profile_type = CPU;
    r.label_selector = "{}";
    r.limit = 3;
    hp_buf_t body = HP_BUF_INIT, out = HP_BUF_INIT;
    hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(&r) + 1);
    body.len = hotpath__v1__select_request__pack(&r, body.data);
    hp_err_t err;
    REQUIRE(hp_rpc_call(fx.cli, "query.ListProfiles", HP_STR("t"), body.data, body.len, 10000, &out, &err) == 0);
    Hotpath__V1__ProfileList *l = hotpath__v1__profile_list__unpack(NULL, out.len, out.data);
    REQUIRE(l != NULL);
    CHECK_EQ_INT(l->n_profiles, 3);
    int64_t want[] = {2000, 1500, 1000}; /* newest first, each once */
    for (size_t i = 0; i < l->n_profiles && i < 3; i++)
        CHECK_EQ_INT(l->profiles[i]->time_nanos, want[i]);
    hotpath__v1__profile_list__free_unpacked(l, NULL);
    hp_buf_fini(&body);
    hp_buf_fini(&out);
    fx_stop(&fx);
}

/* ListProfiles of one limit: the service names of the profiles listed. */
static size_t list_services(fixture_t *fx, int64_t limit, const char **out, size_t max)
{
    Hotpath__V1__SelectRequest r = HOTPATH__V1__SELECT_REQUEST__INIT;
    r.profile_type = CPU;
    r.label_selector = "{}";
    r.limit = limit;
    hp_buf_t body = HP_BUF_INIT, reply = HP_BUF_INIT;
    hp_buf_reserve(&body, hotpath__v1__select_request__get_packed_size(&r) + 1);
    body.len = hotpath__v1__select_request__pack(&r, body.data);
    hp_err_t err;
    size_t n = 0;
    if (hp_rpc_call(fx->cli, "query.ListProfiles", HP_STR("t"), body.data, body.len, 10000, &reply, &err) == 0) {
        Hotpath__V1__ProfileList *l = hotpath__v1__profile_list__unpack(NULL, reply.len, reply.data);
        for (size_t i = 0; l && i < l->n_profiles && n < max; i++)
            for (size_t j = 0; j < l->profiles[i]->n_labels; j++)
                if (strcmp(l->profiles[i]->labels[j]->name, "service_name") == 0)
                    out[n++] = strcmp(l->profiles[i]->labels[j]->value, "x") == 0 ? "x" : "other";
        if (l)
            hotpath__v1__profile_list__free_unpacked(l, NULL);
    }
    hp_buf_fini(&body);
    hp_buf_fini(&reply);
    return n;
}

/* Profiles of one time at the limit's cut: the process keeps those the
 * querier orders first (series fingerprint, then ID), so pages agree. */
static void test_list_ties(void)
{
    fixture_t fx;
    fx_start(&fx);
    pthread_rwlock_wrlock(&fx.head->lock);
    hp_series_t *x = series_of(fx.head, "x"), *z = NULL;
    char name[8];
    for (int i = 0; i < 64 && (z == NULL || z->fp > x->fp); i++) {
        snprintf(name, sizeof(name), "z%d", i); /* a series visited after x that the querier puts first */
        z = series_of(fx.head, name);
    }
    REQUIRE(z->fp < x->fp);
    uint8_t id[16];
    memset(id, 9, 16);
    int64_t v = 5;
    CHECK(hp_head_append(fx.head, z, 2000, id, &fx.st_a, &v, NULL, 1)); /* as new as x's newest */
    pthread_rwlock_unlock(&fx.head->lock);
    const char *first = "other", *second = "x";
    const char *got[4];
    CHECK_EQ_INT(list_services(&fx, 1, got, 4), 1);
    CHECK_EQ_STR(got[0], first);
    CHECK_EQ_INT(list_services(&fx, 2, got, 4), 2);
    CHECK_EQ_STR(got[0], first);
    CHECK_EQ_STR(got[1], second);
    fx_stop(&fx);
}

int main(void)
{
    HP_RUN(test_list_ties);
    HP_RUN(test_list_copies);
    HP_RUN(test_span_filter);
    HP_RUN(test_session);
    HP_RUN(test_label_cardinality);
    HP_RUN(test_call_site);
    return hp_test_done();
}
