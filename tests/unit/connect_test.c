#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
/* Connect unary helpers on hand-built requests and responses: codec choice,
 * Content-Encoding, replies in both codecs, and errors as a Connect client
 * sees them (status, Content-Type, JSON body). */
#include <jansson.h>

#include "hotpath/compress.h"
#include "hotpath/connect.h"
#include "querier/v1/querier.pb-c.h"
#include "test.h"

#define SMR_DESC (&querier__v1__select_merge_stacktraces_request__descriptor)

typedef struct fake_req {
    hp_http_header_t headers[4];
    hp_http_request_t req;
} fake_req_t;

/* A POST with the given Content-Type / Content-Encoding (NULL = absent). */
static void fake_init(fake_req_t *f, const char *ct, const char *ce, const void *body, size_t n)
{
    memset(f, 0, sizeof(*f));
    size_t h = 0;
    if (ct)
        f->headers[h++] = (hp_http_header_t){HP_STR("content-type"), hp_str_c(ct)};
    if (ce)
        f->headers[h++] = (hp_http_header_t){HP_STR("content-encoding"), hp_str_c(ce)};
    f->req.method = HP_STR("POST");
    f->req.path = HP_STR("/querier.v1.QuerierService/SelectMergeStacktraces");
    f->req.headers = f->headers;
    f->req.n_headers = h;
    f->req.body = (hp_str_t){body, n};
}

/* A request message and its binary encoding (caller frees *bin). */
static void sample_request(Querier__V1__SelectMergeStacktracesRequest *r, uint8_t **bin, size_t *n)
{
    querier__v1__select_merge_stacktraces_request__init(r);
    r->profile_typeid = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    r->label_selector = "{service_name=\"x\"}";
    r->start = 1700000000000, r->end = 1700000360000, r->max_nodes = 16;
    *n = protobuf_c_message_get_packed_size(&r->base);
    *bin = malloc(*n);
    protobuf_c_message_pack(&r->base, *bin);
}

static void check_sample(const ProtobufCMessage *m)
{
    const Querier__V1__SelectMergeStacktracesRequest *r = (const void *)m;
    REQUIRE(m != NULL && m->descriptor == SMR_DESC);
    CHECK_EQ_STR(r->profile_typeid, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    CHECK_EQ_STR(r->label_selector, "{service_name=\"x\"}");
    CHECK_EQ_INT(r->start, 1700000000000LL);
    CHECK_EQ_INT(r->end, 1700000360000LL);
    CHECK_EQ_INT(r->max_nodes, 16);
}

static const char *sample_json =
    "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":"
    "\"{service_name=\\\"x\\\"}\",\"start\":\"1700000000000\",\"end\":1700000360000,"
    "\"maxNodes\":\"16\"}";

static void test_decode_codecs(void)
{
    Querier__V1__SelectMergeStacktracesRequest r;
    uint8_t *bin;
    size_t n;
    sample_request(&r, &bin, &n);
    const char *proto_types[] = {"application/proto", "application/protobuf",
                                 "application/x-protobuf", "Application/Proto"};
    for (size_t i = 0; i < HP_ARRAY_LEN(proto_types); i++) {
        fake_req_t f;
        fake_init(&f, proto_types[i], NULL, bin, n);
        ProtobufCMessage *m = NULL;
        hp_connect_codec_t codec = HP_CONNECT_JSON;
        hp_err_t err;
        REQUIRE(hp_connect_decode(&f.req, SMR_DESC, 1 << 20, &m, &codec, &err) == 0);
        CHECK_EQ_INT(codec, HP_CONNECT_PROTO);
        check_sample(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    const char *json_types[] = {"application/json", "application/json; charset=utf-8",
                                "application/json;charset=\"UTF-8\"", " application/JSON "};
    for (size_t i = 0; i < HP_ARRAY_LEN(json_types); i++) {
        fake_req_t f;
        fake_init(&f, json_types[i], "identity", sample_json, strlen(sample_json));
        ProtobufCMessage *m = NULL;
        hp_connect_codec_t codec = HP_CONNECT_PROTO;
        hp_err_t err;
        int rc = hp_connect_decode(&f.req, SMR_DESC, 1 << 20, &m, &codec, &err);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", json_types[i], err.msg);
        REQUIRE(rc == 0);
        CHECK_EQ_INT(codec, HP_CONNECT_JSON);
        check_sample(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    /* An empty proto body is the empty message. */
    fake_req_t f;
    fake_init(&f, "application/proto", NULL, NULL, 0);
    ProtobufCMessage *m = NULL;
    hp_connect_codec_t codec;
    hp_err_t err;
    REQUIRE(hp_connect_decode(&f.req, SMR_DESC, 16, &m, &codec, &err) == 0);
    CHECK_EQ_INT(((Querier__V1__SelectMergeStacktracesRequest *)m)->start, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    free(bin);
}

/* Parses a Connect error body and checks its code and message. */
static void check_error_body(const hp_http_response_t *resp, int status, const char *code,
                             const char *msg_part)
{
    CHECK_EQ_INT(resp->status, status);
    CHECK_EQ_STR(resp->content_type, "application/json");
    json_error_t jerr;
    json_t *j = json_loadb((const char *)resp->body.data, resp->body.len, 0, &jerr);
    REQUIRE(j != NULL);
    CHECK_EQ_INT(json_object_size(j), 2);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "code")), code);
    const char *m = json_string_value(json_object_get(j, "message"));
    CHECK(m != NULL && strstr(m, msg_part) != NULL);
    json_decref(j);
}

static void test_bad_content_type(void)
{
    static const struct {
        const char *ct, *want;
    } cases[] = {
        {NULL, "missing Content-Type; want application/proto or application/json"},
        {"text/plain", "unsupported Content-Type \"text/plain\"; want application/proto or "
                       "application/json"},
        {"application/connect+proto", "unsupported Content-Type \"application/connect+proto\""},
        {"application/grpc", "unsupported Content-Type \"application/grpc\""},
        {"application/json; charset=latin1", "\"application/json; charset=latin1\""},
        {"", "unsupported Content-Type \"\""},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        fake_req_t f;
        fake_init(&f, cases[i].ct, NULL, "{}", 2);
        ProtobufCMessage *m = (ProtobufCMessage *)1;
        hp_connect_codec_t codec;
        hp_err_t err;
        hp_err_clear(&err);
        CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 1024, &m, &codec, &err), HP_EUNSUPPORTED);
        CHECK(m == NULL);
        CHECK_EQ_INT(err.code, HP_EUNSUPPORTED);
        CHECK_EQ_INT(err.detail, HP_CONNECT_EMEDIATYPE);
        if (strstr(err.msg, cases[i].want) == NULL) {
            fprintf(stderr, "  case %zu: got \"%s\"\n", i, err.msg);
            CHECK(!"error message");
        }
        hp_http_response_t resp = {.status = 200};
        hp_buf_puts(&resp.body, "stale");
        hp_connect_error(&resp, &err);
        CHECK_EQ_INT(resp.status, 415);
        hp_buf_cstr(&resp.body);
        CHECK(strstr((const char *)resp.body.data, cases[i].want) != NULL);
        CHECK(strncmp((const char *)resp.body.data, "stale", 5) != 0);
        hp_buf_fini(&resp.body);
    }
}

static void test_gzip(void)
{
    Querier__V1__SelectMergeStacktracesRequest r;
    uint8_t *bin;
    size_t n;
    sample_request(&r, &bin, &n);
    hp_buf_t gz = HP_BUF_INIT, gzjson = HP_BUF_INIT;
    REQUIRE(hp_gzip(bin, n, 6, &gz) == 0);
    REQUIRE(hp_gzip(sample_json, strlen(sample_json), 6, &gzjson) == 0);

    fake_req_t f;
    ProtobufCMessage *m = NULL;
    hp_connect_codec_t codec;
    hp_err_t err;
    fake_init(&f, "application/proto", "gzip", gz.data, gz.len);
    REQUIRE(hp_connect_decode(&f.req, SMR_DESC, n, &m, &codec, &err) == 0);
    check_sample(m);
    protobuf_c_message_free_unpacked(m, NULL);
    fake_init(&f, "application/json", "GZIP", gzjson.data, gzjson.len);
    REQUIRE(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err) == 0);
    CHECK_EQ_INT(codec, HP_CONNECT_JSON);
    check_sample(m);
    protobuf_c_message_free_unpacked(m, NULL);

    /* One byte over the bound after decompression. */
    fake_init(&f, "application/proto", "gzip", gz.data, gz.len);
    m = (ProtobufCMessage *)1;
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, n - 1, &m, &codec, &err), HP_ETOOLARGE);
    CHECK(m == NULL);
    hp_http_response_t resp = {0};
    hp_connect_error(&resp, &err);
    check_error_body(&resp, 429, "resource_exhausted", "");
    hp_buf_fini(&resp.body);

    /* Uncompressed over the bound. */
    fake_init(&f, "application/proto", NULL, bin, n);
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, n - 1, &m, &codec, &err), HP_ETOOLARGE);
    char want[96];
    snprintf(want, sizeof(want), "request body of %zu bytes exceeds %zu bytes", n, n - 1);
    CHECK(strstr(err.msg, want) != NULL);

    /* Corrupt gzip. */
    gz.data[gz.len / 2] ^= 0x55;
    gz.data[gz.len - 5] ^= 0x55;
    fake_init(&f, "application/proto", "gzip", gz.data, gz.len);
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err), HP_EINVAL);
    fake_init(&f, "application/proto", "gzip", "not gzip", 8);
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err), HP_EINVAL);

    /* Unknown encodings are Connect "unimplemented". */
    fake_init(&f, "application/proto", "br", bin, n);
    int rc = hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err);
    CHECK(rc != 0);
    CHECK(strstr(err.msg, "unsupported Content-Encoding \"br\"; supported: gzip, identity") !=
          NULL);
    hp_http_response_t r2 = {0};
    hp_connect_error(&r2, &err);
    check_error_body(&r2, 501, "unimplemented", "Content-Encoding \"br\"");
    hp_buf_fini(&r2.body);
    hp_buf_fini(&gz);
    hp_buf_fini(&gzjson);
    free(bin);
}

/* Separate bounds: a small gzip body that expands past max_decoded is
 * refused even though it fits max_body; a compressed body over max_body is
 * refused before it is inflated; 0 means no limit (it used to refuse
 * every body). */
static void test_bounded(void)
{
    size_t n = 200000;
    char *big = malloc(n);
    memset(big, 'x', n);
    Querier__V1__SelectMergeStacktracesRequest r = QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    r.label_selector = big;
    big[n - 1] = '\0';
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *bin = malloc(len);
    protobuf_c_message_pack(&r.base, bin);
    hp_buf_t gz = HP_BUF_INIT;
    REQUIRE(hp_gzip(bin, len, 6, &gz) == 0);
    REQUIRE(gz.len < 4096);

    fake_req_t f;
    ProtobufCMessage *m = NULL;
    hp_connect_codec_t codec;
    hp_err_t err;
    fake_init(&f, "application/proto", "gzip", gz.data, gz.len);
    CHECK_EQ_INT(hp_connect_decode_bounded(&f.req, SMR_DESC, 4096, 65536, &m, &codec, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "after decompression") != NULL);
    CHECK(m == NULL);
    CHECK_EQ_INT(hp_connect_decode_bounded(&f.req, SMR_DESC, 64, len, &m, &codec, &err), HP_ETOOLARGE);
    CHECK(strstr(err.msg, "request body of") != NULL);
    REQUIRE(hp_connect_decode_bounded(&f.req, SMR_DESC, 4096, len, &m, &codec, &err) == 0);
    protobuf_c_message_free_unpacked(m, NULL);
    REQUIRE(hp_connect_decode_bounded(&f.req, SMR_DESC, 0, 0, &m, &codec, &err) == 0);
    protobuf_c_message_free_unpacked(m, NULL);

    /* identity: the body must fit both bounds */
    fake_init(&f, "application/proto", NULL, bin, len);
    CHECK_EQ_INT(hp_connect_decode_bounded(&f.req, SMR_DESC, len, len - 1, &m, &codec, &err), HP_ETOOLARGE);
    REQUIRE(hp_connect_decode(&f.req, SMR_DESC, 0, &m, &codec, &err) == 0);
    protobuf_c_message_free_unpacked(m, NULL);
    hp_buf_fini(&gz);
    free(bin);
    free(big);
}

static void test_bad_bodies(void)
{
    fake_req_t f;
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    hp_connect_codec_t codec;
    hp_err_t err;
    static const uint8_t junk[] = {0x0a, 0x50, 'a'}; /* string of 80 bytes, 1 present */
    fake_init(&f, "application/proto", NULL, junk, sizeof(junk));
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err), HP_EINVAL);
    CHECK(m == NULL);
    CHECK(strstr(err.msg, "invalid protobuf message") != NULL);
    CHECK(strstr(err.msg, "querier.v1.SelectMergeStacktracesRequest") != NULL);

    const char *bad = "{\"start\":true}";
    fake_init(&f, "application/json", NULL, bad, strlen(bad));
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err), HP_EINVAL);
    CHECK_EQ_INT(codec, HP_CONNECT_JSON);
    hp_http_response_t resp = {0};
    hp_connect_error(&resp, &err);
    check_error_body(&resp, 400, "invalid_argument", "start: expected an integer, got true");
    hp_buf_fini(&resp.body);

    fake_init(&f, "application/json", NULL, "", 0);
    CHECK_EQ_INT(hp_connect_decode(&f.req, SMR_DESC, 4096, &m, &codec, &err), HP_EINVAL);
}

static void test_respond(void)
{
    Querier__V1__SelectMergeStacktracesRequest r;
    uint8_t *bin;
    size_t n;
    sample_request(&r, &bin, &n);

    hp_http_response_t resp = {.status = 500};
    hp_buf_puts(&resp.body, "old");
    hp_connect_respond(&resp, HP_CONNECT_PROTO, &r.base);
    CHECK_EQ_INT(resp.status, 200);
    CHECK_EQ_STR(resp.content_type, "application/proto");
    CHECK(resp.body.len == n && memcmp(resp.body.data, bin, n) == 0);

    hp_connect_respond(&resp, HP_CONNECT_JSON, &r.base);
    CHECK_EQ_STR(resp.content_type, "application/json");
    hp_buf_cstr(&resp.body);
    CHECK_EQ_STR((const char *)resp.body.data,
                 "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                 "\"labelSelector\":\"{service_name=\\\"x\\\"}\",\"start\":\"1700000000000\","
                 "\"end\":\"1700000360000\",\"maxNodes\":\"16\"}");

    hp_connect_respond_raw(&resp, HP_CONNECT_PROTO, SMR_DESC, bin, n);
    CHECK_EQ_INT(resp.status, 200);
    CHECK_EQ_STR(resp.content_type, "application/proto");
    CHECK(resp.body.len == n && memcmp(resp.body.data, bin, n) == 0);

    hp_connect_respond_raw(&resp, HP_CONNECT_JSON, SMR_DESC, bin, n);
    CHECK_EQ_INT(resp.status, 200);
    CHECK_EQ_STR(resp.content_type, "application/json");
    CHECK(resp.body.len > 0 && resp.body.data[0] == '{' &&
          memmem(resp.body.data, resp.body.len, "\"maxNodes\":\"16\"}", 16) != NULL);

    /* An empty message in both codecs. */
    Querier__V1__SelectMergeStacktracesRequest empty =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    hp_connect_respond(&resp, HP_CONNECT_PROTO, &empty.base);
    CHECK_EQ_INT(resp.body.len, 0);
    hp_connect_respond_raw(&resp, HP_CONNECT_JSON, SMR_DESC, NULL, 0);
    CHECK(resp.body.len == 2 && memcmp(resp.body.data, "{}", 2) == 0);

    /* Bytes that are not the message cannot be turned into JSON. */
    static const uint8_t junk[] = {0x0a, 0x50, 'a'};
    hp_connect_respond_raw(&resp, HP_CONNECT_JSON, SMR_DESC, junk, sizeof(junk));
    check_error_body(&resp, 500, "internal", "as JSON");
    hp_buf_fini(&resp.body);
    free(bin);
}

/* Each error class reaches a Connect client with the code and HTTP status
 * the Connect protocol pairs. */
static void test_error_mapping(void)
{
    static const struct {
        int code;
        int status;
        const char *connect;
    } cases[] = {
        {HP_EINVAL, 400, "invalid_argument"},
        {HP_ETOOLARGE, 429, "resource_exhausted"},
        {HP_EUNSUPPORTED, 400, "invalid_argument"},
        {HP_ELIMIT, 429, "resource_exhausted"},
        {HP_EAUTH, 401, "unauthenticated"},
        {HP_ENOTFOUND, 404, "not_found"},
        {HP_EUNAVAIL, 503, "unavailable"},
        {HP_ETIMEDOUT, 504, "deadline_exceeded"},
        {HP_EINTERNAL, 500, "internal"},
        {HP_ECANCELED, 499, "canceled"},
        {HP_ESTALE, 503, "unavailable"},
        {HP_EMETHOD, 501, "unimplemented"},
    };
    for (size_t i = 0; i < HP_ARRAY_LEN(cases); i++) {
        hp_err_t err;
        hp_err_set(&err, cases[i].code, "bad \"thing\"\n\x01 in %s", "input");
        hp_http_response_t resp = {0};
        hp_connect_error(&resp, &err);
        check_error_body(&resp, cases[i].status, cases[i].connect, "bad \"thing\"\n\x01 in input");
        hp_buf_fini(&resp.body);
    }
}

int main(void)
{
    HP_RUN(test_decode_codecs);
    HP_RUN(test_bad_content_type);
    HP_RUN(test_gzip);
    HP_RUN(test_bounded);
    HP_RUN(test_bad_bodies);
    HP_RUN(test_respond);
    HP_RUN(test_error_mapping);
    return hp_test_done();
}
