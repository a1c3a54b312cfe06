/* proto3 JSON: names, exact encodings, decoding what real clients send,
 * round trips through the binary format, and refusals of bad input. */
#include <math.h>
#include <stdint.h>

#include "google/v1/profile.pb-c.h"
#include "hotpath/pbjson.h"
#include "push/v1/push.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "test.h"
#include "types/v1/types.pb-c.h"

/* Encodes msg and returns the JSON as a malloc'd C string. */
static char *encode(const ProtobufCMessage *msg)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_pbjson_encode(msg, &b);
    hp_buf_cstr(&b);
    return (char *)hp_buf_take(&b, NULL);
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                hp_err_t *err)
{
    ProtobufCMessage *m = NULL;
    hp_err_clear(err);
    int rc = hp_pbjson_decode(desc, json, strlen(json), &m, err);
    if (rc != 0) {
        CHECK(m == NULL);
        return NULL;
    }
    return m;
}

static void test_names(void)
{
    char b[64];
    CHECK_EQ_STR(hp_pbjson_name("profile_typeID", b, sizeof(b)), "profileTypeID");
    CHECK_EQ_STR(hp_pbjson_name("ID", b, sizeof(b)), "ID");
    CHECK_EQ_STR(hp_pbjson_name("leftTicks", b, sizeof(b)), "leftTicks");
    CHECK_EQ_STR(hp_pbjson_name("raw_profile", b, sizeof(b)), "rawProfile");
    CHECK_EQ_STR(hp_pbjson_name("max_self", b, sizeof(b)), "maxSelf");
    CHECK_EQ_STR(hp_pbjson_name("a__b_2c", b, sizeof(b)), "aB2c");
    CHECK_EQ_STR(hp_pbjson_name("label_selector", b, 6), "label");
}

/* The exact bytes Pyroscope's Connect JSON has for a flame graph. */
static void test_encode_flamegraph(void)
{
    char *names[] = {"total", "a"};
    int64_t values[] = {0, 100, 0, 0};
    Querier__V1__Level lvl = QUERIER__V1__LEVEL__INIT;
    Querier__V1__Level *lvls[] = {&lvl};
    Querier__V1__FlameGraph fg = QUERIER__V1__FLAME_GRAPH__INIT;
    Querier__V1__SelectMergeStacktracesResponse resp =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    lvl.n_values = 4, lvl.values = values;
    fg.n_names = 2, fg.names = names, fg.n_levels = 1, fg.levels = lvls;
    fg.total = 100, fg.max_self = 100;
    resp.flamegraph = &fg;
    char *s = encode(&resp.base);
    CHECK_EQ_STR(s, "{\"flamegraph\":{\"names\":[\"total\",\"a\"],\"levels\":[{\"values\":[\"0\","
                    "\"100\",\"0\",\"0\"]}],\"total\":\"100\",\"maxSelf\":\"100\"}}");
    free(s);
}

/* Defaults are omitted; enums by name; bool; uint32 and int32 as numbers;
 * int64 as strings (negative too); bytes as base64; doubles incl. specials. */
static void test_encode_types(void)
{
    Querier__V1__SelectMergeStacktracesRequest req =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    char *s = encode(&req.base);
    CHECK_EQ_STR(s, "{}");
    free(s);

    Types__V1__GoPGO pgo = TYPES__V1__GO_PGO__INIT;
    Types__V1__StackTraceSelector sel = TYPES__V1__STACK_TRACE_SELECTOR__INIT;
    pgo.keep_locations = 4000000000u, pgo.aggregate_callees = 1;
    sel.go_pgo = &pgo;
    req.profile_typeid = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    req.label_selector = "{service_name=\"x\"}";
    req.start = -5, req.format = QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE;
    req.stack_trace_selector = &sel;
    s = encode(&req.base);
    CHECK_EQ_STR(s, "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                    "\"labelSelector\":\"{service_name=\\\"x\\\"}\",\"start\":\"-5\","
                    "\"format\":\"PROFILE_FORMAT_TREE\",\"stackTraceSelector\":{\"goPgo\":"
                    "{\"keepLocations\":4000000000,\"aggregateCallees\":true}}}");
    free(s);

    req.stack_trace_selector = NULL;
    req.format = 77; /* unknown enum numbers stay numbers */
    req.profile_typeid = req.label_selector = (char *)protobuf_c_empty_string;
    req.start = 0;
    s = encode(&req.base);
    CHECK_EQ_STR(s, "{\"format\":77}");
    free(s);

    Types__V1__BlockCompaction bc = TYPES__V1__BLOCK_COMPACTION__INIT;
    bc.level = -7;
    s = encode(&bc.base);
    CHECK_EQ_STR(s, "{\"level\":-7}");
    free(s);

    Push__V1__RawSample rs = PUSH__V1__RAW_SAMPLE__INIT;
    rs.raw_profile.data = (uint8_t *)"hello";
    rs.raw_profile.len = 5;
    rs.id = "\x01\"";
    s = encode(&rs.base);
    CHECK_EQ_STR(s, "{\"rawProfile\":\"aGVsbG8=\",\"ID\":\"\\u0001\\\"\"}");
    free(s);
    rs.raw_profile.len = 4, rs.id = "";
    s = encode(&rs.base);
    CHECK_EQ_STR(s, "{\"rawProfile\":\"aGVsbA==\"}");
    free(s);

    double vals[] = {1.5, 0.1, -2e-9, 1e300, NAN, INFINITY, -INFINITY, 123456789};
    const char *want[] = {"1.5",     "0.1",          "-2e-09",        "1e+300",
                          "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "123456789"};
    for (size_t i = 0; i < HP_ARRAY_LEN(vals); i++) {
        Types__V1__Point pt = TYPES__V1__POINT__INIT;
        char expect[64];
        pt.value = vals[i], pt.timestamp = 1700000000000;
        snprintf(expect, sizeof(expect), "{\"value\":%s,\"timestamp\":\"1700000000000\"}", want[i]);
        s = encode(&pt.base);
        CHECK_EQ_STR(s, expect);
        free(s);
    }
}

/* What Grafana / the UI send to SelectMergeStacktraces. */
static void test_decode_select_merge(void)
{
    hp_err_t err;
    const char *json = "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                       "\"labelSelector\":\"{service_name=\\\"x\\\"}\",\"start\":\"1700000000000\","
                       "\"end\":1700000360000,\"maxNodes\":\"16\"}";
    Querier__V1__SelectMergeStacktracesRequest *r =
        (void *)decode(&querier__v1__select_merge_stacktraces_request__descriptor, json, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r->profile_typeid, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    CHECK_EQ_STR(r->label_selector, "{service_name=\"x\"}");
    CHECK_EQ_INT(r->start, 1700000000000LL);
    CHECK_EQ_INT(r->end, 1700000360000LL);
    CHECK_EQ_INT(r->max_nodes, 16);
    CHECK_EQ_INT(r->format, 0);
    CHECK(r->stack_trace_selector == NULL);
    CHECK_EQ_INT(r->n_profile_id_selector, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Original field names, enums by name and by number, nested messages,
     * exponent forms, null as the default, unknown fields skipped. */
    json = " {\"profile_typeID\":\"t\",\"label_selector\":null,\"start\":1e3,\"end\":\"-2\","
           "\"format\":\"PROFILE_FORMAT_TREE\",\"profileIdSelector\":[\"a\","
           "\"\\u00e9\\ud83d\\ude00\"],"
           "\"future\":{\"x\":[1,2.5e3,{\"y\":null},true,false,\"s\\n\"]},"
           "\"stackTraceSelector\":{\"callSite\":[{\"name\":\"main\"},{}],"
           "\"goPgo\":{\"keepLocations\":\"7\",\"aggregateCallees\":true}}}\n";
    r = (void *)decode(&querier__v1__select_merge_stacktraces_request__descriptor, json, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_STR(r->profile_typeid, "t");
    CHECK_EQ_STR(r->label_selector, "");
    CHECK(r->label_selector == protobuf_c_empty_string);
    CHECK_EQ_INT(r->start, 1000);
    CHECK_EQ_INT(r->end, -2);
    CHECK_EQ_INT(r->format, QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE);
    REQUIRE(r->n_profile_id_selector == 2);
    CHECK_EQ_STR(r->profile_id_selector[0], "a");
    CHECK_EQ_STR(r->profile_id_selector[1], "\xc3\xa9\xf0\x9f\x98\x80");
    REQUIRE(r->stack_trace_selector != NULL);
    REQUIRE(r->stack_trace_selector->n_call_site == 2);
    CHECK_EQ_STR(r->stack_trace_selector->call_site[0]->name, "main");
    CHECK_EQ_STR(r->stack_trace_selector->call_site[1]->name, "");
    REQUIRE(r->stack_trace_selector->go_pgo != NULL);
    CHECK_EQ_INT(r->stack_trace_selector->go_pgo->keep_locations, 7);
    CHECK_EQ_INT(r->stack_trace_selector->go_pgo->aggregate_callees, 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    json = "{\"format\":2}";
    r = (void *)decode(&querier__v1__select_merge_stacktraces_request__descriptor, json, &err);
    REQUIRE(r != NULL);
    CHECK_EQ_INT(r->format, 2);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    Querier__V1__SelectSeriesRequest *ss =
        (void *)decode(&querier__v1__select_series_request__descriptor,
                       "{\"step\":\"-Infinity\",\"aggregation\":1,\"limit\":\"1e2\"}", &err);
    REQUIRE(ss != NULL);
    CHECK(isinf(ss->step) && ss->step < 0);
    CHECK_EQ_INT(ss->aggregation,
                 TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE);
    CHECK_EQ_INT(ss->limit, 100);
    protobuf_c_message_free_unpacked(&ss->base, NULL);
}

static void test_decode_push(void)
{
    hp_err_t err;
    const char *json =
        "{\"series\":[{\"labels\":[{\"name\":\"__name__\",\"value\":\"process_cpu\"},"
        "{\"name\":\"service_name\",\"value\":\"my-app\"}],"
        "\"samples\":[{\"rawProfile\":\"H4sIAAAAAAAA/w==\",\"ID\":\"5f590eb6-7beb-ce7d\"},"
        "{\"raw_profile\":\"_-8\",\"ID\":\"\"},{}]},{}]}";
    Push__V1__PushRequest *r = (void *)decode(&push__v1__push_request__descriptor, json, &err);
    if (r == NULL)
        fprintf(stderr, "  error: %s\n", err.msg);
    REQUIRE(r != NULL);
    REQUIRE(r->n_series == 2);
    Push__V1__RawProfileSeries *s = r->series[0];
    REQUIRE(s->n_labels == 2);
    CHECK_EQ_STR(s->labels[0]->name, "__name__");
    CHECK_EQ_STR(s->labels[1]->value, "my-app");
    REQUIRE(s->n_samples == 3);
    static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    CHECK_EQ_INT(s->samples[0]->raw_profile.len, sizeof(gz));
    CHECK(memcmp(s->samples[0]->raw_profile.data, gz, sizeof(gz)) == 0);
    CHECK_EQ_STR(s->samples[0]->id, "5f590eb6-7beb-ce7d");
    CHECK_EQ_INT(s->samples[1]->raw_profile.len, 2);
    CHECK(s->samples[1]->raw_profile.data[0] == 0xff && s->samples[1]->raw_profile.data[1] == 0xef);
    CHECK_EQ_STR(s->samples[1]->id, "");
    CHECK_EQ_INT(s->samples[2]->raw_profile.len, 0);
    CHECK_EQ_INT(r->series[1]->n_labels, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* JSON decode → binary pack → unpack → JSON encode gives the same text. */
static void test_roundtrip_json(void)
{
    static const struct {
        const ProtobufCMessageDescriptor *desc;
        const char *json;
    } cases[] = {
        {&querier__v1__select_merge_stacktraces_request__descriptor,
         "{\"profileTypeID\":\"memory:alloc_space:bytes:space:bytes\",\"labelSelector\":"
         "\"{service_name=\\\"\xc3\xa9 x\\\"}\",\"start\":\"-9223372036854775808\",\"end\":"
         "\"9223372036854775807\",\"maxNodes\":\"16\",\"format\":\"PROFILE_FORMAT_TREE\","
         "\"stackTraceSelector\":{\"callSite\":[{\"name\":\"a\"},{}],\"goPgo\":{\"keepLocations\":"
         "4294967295,\"aggregateCallees\":true}},\"profileIdSelector\":[\"x\",\"\"]}"},
        {&querier__v1__select_series_request__descriptor,
         "{\"profileTypeID\":\"t\",\"start\":\"1\",\"groupBy\":[\"service_name\"],\"step\":15.5,"
         "\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_AVERAGE\",\"limit\":\"10\","
         "\"exemplarType\":\"EXEMPLAR_TYPE_INDIVIDUAL\"}"},
        {&push__v1__push_request__descriptor,
         "{\"series\":[{\"labels\":[{\"name\":\"a\",\"value\":\"b\"}],\"samples\":[{\"rawProfile\":"
         "\"AAECAwQFBgcICf8=\",\"ID\":\"id\"},{}],\"annotations\":[{\"key\":\"k\",\"value\":\"v\"}]"
         "}]}"},
        {&querier__v1__diff_response__descriptor,
         "{\"flamegraph\":{\"names\":[\"total\"],\"levels\":[{\"values\":[\"0\",\"5\",\"0\",\"-3\","
         "\"1\",\"2\",\"3\",\"4\"]},{}],\"total\":\"5\",\"maxSelf\":\"2\",\"leftTicks\":\"1\","
         "\"rightTicks\":\"4\"}}"},
        {&types__v1__series__descriptor,
         "{\"labels\":[{\"name\":\"n\",\"value\":\"v\"}],\"points\":[{\"value\":0.1,\"timestamp\":"
         "\"1700000000000\"},{\"value\":\"NaN\"},{\"value\":-1e+300,\"exemplars\":[{\"timestamp\":"
         "\"1\",\"profileId\":\"p\",\"spanId\":\"s\",\"value\":\"2\",\"labels\":[{\"name\":\"x\"}]}"
         "]}]}"},
        {&types__v1__block_info__descriptor, "{\"ulid\":\"01H\",\"minTime\":\"1\",\"maxTime\":"
                                             "\"2\",\"compaction\":{\"level\":-2147483648,"
                                             "\"sources\":[\"a\"],\"parents\":[\"b\",\"c\"]}}"},
        {&types__v1__get_profile_stats_response__descriptor,
         "{\"dataIngested\":true,\"oldestProfileTime\":\"-1\"}"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_err_t err;
        ProtobufCMessage *m = decode(cases[i].desc, cases[i].json, &err);
        if (m == NULL)
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
        REQUIRE(m != NULL);
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *bin = malloc(n + 1);
        CHECK_EQ_INT(protobuf_c_message_pack(m, bin), n);
        protobuf_c_message_free_unpacked(m, NULL);
        m = protobuf_c_message_unpack(cases[i].desc, NULL, n, bin);
        free(bin);
        REQUIRE(m != NULL);
        char *s = encode(m);
        CHECK_EQ_STR(s, cases[i].json);
        free(s);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* Real pprof profiles: unpack → JSON → decode → pack is byte-identical to
 * packing the unpacked profile, so every field and value survives. */
static void test_roundtrip_pprof(void)
{
    const char *files[] = {"pyroscope/pprof/heap-js.pprof", "pyroscope/pprof/pyspy-1.pb.gz",
                           "pyroscope/pprof/dotnet-pprof-3.pb.gz"};
    for (size_t i = 0; i < HP_ARRAY_LEN(files); i++) {
        size_t n;
        uint8_t *raw = hp_test_read_file(hp_testdata(files[i]), &n);
        REQUIRE(raw != NULL);
        ProtobufCMessage *p =
            protobuf_c_message_unpack(&google__v1__profile__descriptor, NULL, n, raw);
        free(raw);
        REQUIRE(p != NULL);
        size_t n1 = protobuf_c_message_get_packed_size(p);
        uint8_t *b1 = malloc(n1);
        protobuf_c_message_pack(p, b1);

        hp_buf_t json = HP_BUF_INIT;
        hp_pbjson_encode(p, &json);
        protobuf_c_message_free_unpacked(p, NULL);
        CHECK(hp_utf8_valid((const char *)json.data, json.len));
        hp_err_t err;
        ProtobufCMessage *q = NULL;
        int rc = hp_pbjson_decode(&google__v1__profile__descriptor, (const char *)json.data,
                                  json.len, &q, &err);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", files[i], err.msg);
        REQUIRE(rc == 0);
        size_t n2 = protobuf_c_message_get_packed_size(q);
        uint8_t *b2 = malloc(n2);
        protobuf_c_message_pack(q, b2);
        CHECK_EQ_INT(n2, n1);
        CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
        free(b1);
        free(b2);
        protobuf_c_message_free_unpacked(q, NULL);
        hp_buf_fini(&json);
    }
}

/* A flame graph with 1M int64 values encodes to the expected text and
 * decodes back to the same numbers. */
static void test_big_flamegraph(void)
{
    enum { LEVELS = 250000 };
    Querier__V1__FlameGraph fg = QUERIER__V1__FLAME_GRAPH__INIT;
    Querier__V1__Level *lv = calloc(LEVELS, sizeof(*lv));
    Querier__V1__Level **lp = calloc(LEVELS, sizeof(*lp));
    int64_t *vals = calloc((size_t)LEVELS * 4, sizeof(int64_t));
    for (size_t i = 0; i < LEVELS; i++) {
        querier__v1__level__init(&lv[i]);
        lv[i].n_values = 4;
        lv[i].values = vals + i * 4;
        vals[i * 4 + 1] = 11100000000 + (int64_t)i;
        lp[i] = &lv[i];
    }
    fg.n_levels = LEVELS, fg.levels = lp, fg.total = 5;
    hp_buf_t out = HP_BUF_INIT;
    hp_pbjson_encode(&fg.base, &out);
    const char *head = "{\"levels\":[{\"values\":[\"0\",\"11100000000\",\"0\",\"0\"]},";
    CHECK(out.len > strlen(head) && memcmp(out.data, head, strlen(head)) == 0);
    const char *tail = "{\"values\":[\"0\",\"11100249999\",\"0\",\"0\"]}],\"total\":\"5\"}";
    CHECK(memcmp(out.data + out.len - strlen(tail), tail, strlen(tail)) == 0);

    hp_err_t err;
    Querier__V1__FlameGraph *back = NULL;
    REQUIRE(hp_pbjson_decode(&querier__v1__flame_graph__descriptor, (const char *)out.data, out.len,
                             (ProtobufCMessage **)&back, &err) == 0);
    REQUIRE(back->n_levels == LEVELS);
    CHECK_EQ_INT(back->levels[LEVELS - 1]->n_values, 4);
    CHECK_EQ_INT(back->levels[LEVELS - 1]->values[1], 11100249999LL);
    CHECK_EQ_INT(back->levels[0]->values[1], 11100000000LL);
    CHECK_EQ_INT(back->total, 5);
    protobuf_c_message_free_unpacked(&back->base, NULL);
    hp_buf_fini(&out);
    free(vals);
    free(lp);
    free(lv);
}

/* Every refusal is HP_EINVAL and names the field that was wrong. */
static void test_errors(void)
{
    static const struct {
        const ProtobufCMessageDescriptor *desc;
        const char *json, *want;
    } cases[] = {
#define SMR &querier__v1__select_merge_stacktraces_request__descriptor
#define PUSH &push__v1__push_request__descriptor
        {SMR, "{\"start\":true}", "start: expected an integer, got true"},
        {SMR, "{\"start\":{}}", "start: expected an integer, got an object"},
        {SMR, "{\"start\":\"abc\"}", "start: expected an integer, got \"abc\""},
        {SMR, "{\"start\":\"\"}", "start: expected an integer, got \"\""},
        {SMR, "{\"start\":\" 1\"}", "start: expected an integer, got \" 1\""},
        {SMR, "{\"start\":1.5}", "start: expected an integer, got 1.5"},
        {SMR, "{\"start\":\"9223372036854775808\"}",
         "start: 9223372036854775808 is out of range for int64"},
        {SMR, "{\"start\":99999999999999999999}", "start: 99999999999999999999 is out of range"},
        {SMR, "{\"start\":1e30}", "start: 1e30 is out of range for int64"},
        {SMR, "{\"profileTypeID\":5}", "profileTypeID: expected a string, got a number"},
        {SMR, "{\"profileTypeID\":\"a\\u0000b\"}", "profileTypeID: string contains a NUL"},
        {SMR, "{\"format\":\"PROFILE_FORMAT_NOPE\"}",
         "format: unknown value \"PROFILE_FORMAT_NOPE\" for enum querier.v1.ProfileFormat"},
        {SMR, "{\"format\":true}", "format: expected an enum value name, got true"},
        {SMR, "{\"profileIdSelector\":\"x\"}",
         "profileIdSelector: expected an array, got a string"},
        {SMR, "{\"profileIdSelector\":[\"x\",null]}",
         "profileIdSelector[1]: null is not allowed in a repeated field"},
        {SMR, "{\"stackTraceSelector\":{\"goPgo\":{\"keepLocations\":-1}}}",
         "stackTraceSelector.goPgo.keepLocations: -1 is out of range for uint32"},
        {SMR, "{\"stackTraceSelector\":{\"goPgo\":{\"aggregateCallees\":\"true\"}}}",
         "stackTraceSelector.goPgo.aggregateCallees: expected true or false, got a string"},
        {SMR, "{\"stackTraceSelector\":{\"callSite\":[{},{\"name\":[]}]}}",
         "stackTraceSelector.callSite[1].name: expected a string, got an array"},
        {SMR, "{\"start\":1,\"start\":2}", "start: field given twice"},
        {SMR, "{\"profileTypeID\":\"a\",\"profile_typeID\":\"b\"}",
         "profileTypeID: field given twice"},
        {SMR, "[1]",
         "expected a JSON object for querier.v1.SelectMergeStacktracesRequest, got an array"},
        {SMR, "\"x\"",
         "expected a JSON object for querier.v1.SelectMergeStacktracesRequest, got a string"},
        {SMR, "", "got end of input"},
        {SMR, "{\"start\":\"17", "start: invalid JSON: unexpected end of input at byte 12"},
        {SMR, "{\"start\":", "start: invalid JSON: unexpected end of input at byte 9"},
        {SMR, "{\"profileTypeID\":\"x\",", "invalid JSON: unexpected end of input at byte 21"},
        {SMR, "{\"profileIdSelector\":[\"a\"", "profileIdSelector: invalid JSON: unexpected end"},
        {SMR, "{\"start\":1}x", "invalid JSON at byte 11: unexpected data after the object"},
        {SMR, "{\"start\":1,}", "invalid JSON at byte 11: expected a field name"},
        {SMR, "{\"start\" 1}", "invalid JSON at byte 9: expected ':'"},
        {SMR, "{\"start\":01}", "invalid JSON at byte 10: expected ',' or '}'"},
        {SMR, "{\"start\":-}", "start: invalid JSON at byte 9: invalid number"},
        {SMR, "{\"x\":tru}", "invalid JSON at byte 5: invalid literal"},
        {SMR, "{\"x\":\"\\q\"}", "invalid JSON at byte 6: invalid escape in string"},
        {SMR, "{\"x\":\"\\ud800\"}", "unpaired surrogate"},
        {SMR, "{\"x\":\"a\nb\"}", "control character in string"},
        {SMR, "{\"labelSelector\":\"\xff\"}", "labelSelector: invalid UTF-8 in string"},
        {SMR, "{\"x\":[1,]}", "invalid JSON at byte 8: expected a value"},
        {PUSH,
         "{\"series\":[{\"labels\":[{\"name\":\"a\"}],\"samples\":[{\"rawProfile\":\"AAAA\"},"
         "{\"rawProfile\":\"AA*A\"}]}]}",
         "series[0].samples[1].rawProfile: invalid base64"},
        {PUSH, "{\"series\":[{\"samples\":[{\"rawProfile\":\"AAAAA\"}]}]}",
         "series[0].samples[0].rawProfile: invalid base64"},
        {PUSH, "{\"series\":[{\"samples\":[{\"rawProfile\":\"AA=A\"}]}]}", "invalid base64"},
        {PUSH, "{\"series\":[{\"samples\":[{\"rawProfile\":\"A===\"}]}]}", "invalid base64"},
        {PUSH, "{\"series\":[{\"samples\":[{\"rawProfile\":5}]}]}",
         "series[0].samples[0].rawProfile: expected a base64 string, got a number"},
        {PUSH, "{\"series\":[{\"samples\":{}}]}",
         "series[0].samples: expected an array, got an object"},
        {PUSH, "{\"series\":[[]]}", "series[0]: expected an object, got an array"},
        {&types__v1__block_compaction__descriptor, "{\"level\":3000000000}",
         "level: 3000000000 is out of range for int32"},
        {&types__v1__block_compaction__descriptor, "{\"level\":-2147483649}",
         "level: -2147483649 is out of range for int32"},
        {&types__v1__point__descriptor, "{\"value\":1e999}",
         "value: 1e999 is out of range for double"},
        {&types__v1__point__descriptor, "{\"value\":\"nan\"}",
         "value: expected a number, got \"nan\""},
#undef SMR
#undef PUSH
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_err_t err;
        ProtobufCMessage *m = (ProtobufCMessage *)1;
        hp_err_clear(&err);
        int rc = hp_pbjson_decode(cases[i].desc, cases[i].json, strlen(cases[i].json), &m, &err);
        CHECK_EQ_INT(rc, HP_EINVAL);
        CHECK_EQ_INT(err.code, HP_EINVAL);
        CHECK(m == NULL);
        if (strstr(err.msg, cases[i].want) == NULL) {
            fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, err.msg, cases[i].want);
            CHECK(!"error message");
        }
        if (rc == 0)
            protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* Nesting is bounded at 64 levels, in known and unknown fields alike. */
static void test_depth(void)
{
    hp_buf_t b = HP_BUF_INIT;
    hp_buf_puts(&b, "{\"x\":");
    for (int i = 0; i < 100000; i++)
        hp_buf_putc(&b, '[');
    hp_err_t err;
    ProtobufCMessage *m = NULL;
    CHECK_EQ_INT(
        hp_pbjson_decode(&types__v1__labels__descriptor, (const char *)b.data, b.len, &m, &err),
        HP_EINVAL);
    CHECK(strstr(err.msg, "JSON nested deeper than 64 levels") != NULL);

    /* 63 nested arrays inside the root object (64 levels) are fine. */
    hp_buf_reset(&b);
    hp_buf_puts(&b, "{\"x\":");
    for (int i = 0; i < 63; i++)
        hp_buf_putc(&b, '[');
    for (int i = 0; i < 63; i++)
        hp_buf_putc(&b, ']');
    hp_buf_putc(&b, '}');
    CHECK_EQ_INT(
        hp_pbjson_decode(&types__v1__labels__descriptor, (const char *)b.data, b.len, &m, &err), 0);
    protobuf_c_message_free_unpacked(m, NULL);
    hp_buf_fini(&b);
}

int main(void)
{
    HP_RUN(test_names);
    HP_RUN(test_encode_flamegraph);
    HP_RUN(test_encode_types);
    HP_RUN(test_decode_select_merge);
    HP_RUN(test_decode_push);
    HP_RUN(test_roundtrip_json);
    HP_RUN(test_roundtrip_pprof);
    HP_RUN(test_big_flamegraph);
    HP_RUN(test_errors);
    HP_RUN(test_depth);
    return hp_test_done();
}
