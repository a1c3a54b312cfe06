/* Connect unary calls: choosing the codec from Content-Type, undoing
 * Content-Encoding within a bound, decoding the request, and writing
 * replies and Connect errors. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/compress.h"
#include "hotpath/connect.h"
#include "hotpath/pbjson.h"

#define WANT_TYPES "application/proto or application/json"

static const struct {
    const char *media;
    hp_connect_codec_t codec;
} codecs[] = {
    {"application/proto", HP_CONNECT_PROTO},
    {"application/protobuf", HP_CONNECT_PROTO},
    {"application/x-protobuf", HP_CONNECT_PROTO},
    {"application/json", HP_CONNECT_JSON},
};

/* The HTTP status of each Connect code (connectrpc.com/docs/protocol). */
static const struct {
    const char *code;
    int status;
} code_status[] = {
    {"canceled", 499},
    {"unknown", 500},
    {"invalid_argument", 400},
    {"deadline_exceeded", 504},
    {"not_found", 404},
    {"already_exists", 409},
    {"permission_denied", 403},
    {"resource_exhausted", 429},
    {"failed_precondition", 400},
    {"aborted", 409},
    {"out_of_range", 400},
    {"unimplemented", 501},
    {"internal", 500},
    {"unavailable", 503},
    {"data_loss", 500},
    {"unauthenticated", 401},
};

/* ASCII lower case (header values are compared case-insensitively). */
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* True when s equals the lower-case literal lit, ignoring case. */
static bool eq_ci(hp_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lit[i])
            return false;
    return true;
}

/* s without surrounding blanks and double quotes. */
static hp_str_t trim(hp_str_t s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '"'))
        s.p++, s.n--;
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '"'))
        s.n--;
    return s;
}

/* Splits s at the first sep: *head before it, *tail after it (empty when
 * there is no sep). */
static void split(hp_str_t s, char sep, hp_str_t *head, hp_str_t *tail)
{
    const char *at = s.n > 0 ? memchr(s.p, sep, s.n) : NULL;
    *head = (hp_str_t){s.p, at ? (size_t)(at - s.p) : s.n};
    *tail = at ? (hp_str_t){at + 1, s.n - head->n - 1} : (hp_str_t){NULL, 0};
}

/* True unless params (";"-separated) name a charset other than UTF-8, the
 * only one proto3 JSON has. */
static bool charset_ok(hp_str_t params)
{
    hp_str_t param, name, value;
    while (params.n > 0) {
        split(params, ';', &param, &params);
        split(param, '=', &name, &value);
        if (eq_ci(trim(name), "charset") && !eq_ci(trim(value), "utf-8") &&
            !eq_ci(trim(value), "utf8"))
            return false;
    }
    return true;
}

/* An unsupported Content-Type: HP_EUNSUPPORTED marked for a 415. */
static int bad_media(hp_str_t ct, hp_err_t *err)
{
    if (ct.p == NULL)
        hp_err_set(err, HP_EUNSUPPORTED, "missing Content-Type; want " WANT_TYPES);
    else
        hp_err_set(err, HP_EUNSUPPORTED, "unsupported Content-Type \"%.*s\"; want " WANT_TYPES,
                   (int)HP_MIN(ct.n, 100), ct.p);
    if (err != NULL)
        err->detail = HP_CONNECT_EMEDIATYPE;
    return HP_EUNSUPPORTED;
}

/* Chooses the codec from a Content-Type value. */
static int pick_codec(hp_str_t ct, hp_connect_codec_t *codec, hp_err_t *err)
{
    hp_str_t media, params;
    split(ct, ';', &media, &params);
    media = trim(media);
    for (size_t i = 0; i < HP_ARRAY_LEN(codecs); i++) {
        if (!eq_ci(media, codecs[i].media))
            continue;
        if (codecs[i].codec == HP_CONNECT_JSON && !charset_ok(params))
            break;
        *codec = codecs[i].codec;
        return 0;
    }
    return bad_media(ct, err);
}

/* A limit where 0 means none. */
static size_t or_unlimited(size_t n)
{
    return n > 0 ? n : SIZE_MAX;
}

/* The request body after Content-Encoding: either the body itself or its
 * decompression in plain. The body as sent is at most max_body bytes, what
 * it decodes to at most max_decoded. */
static int body_bytes(const hp_http_request_t *req, size_t max_body, size_t max_decoded, hp_buf_t *plain,
                      hp_str_t *out, hp_err_t *err)
{
    hp_str_t enc = trim(hp_http_header(req, "content-encoding"));
    size_t limit = HP_MIN(max_body, max_decoded);
    bool identity = enc.n == 0 || eq_ci(enc, "identity");
    if (!identity)
        limit = max_body;
    if (req->body.n > limit)
        return hp_err_set(err, HP_ETOOLARGE, "request body of %zu bytes exceeds %zu bytes", req->body.n,
                          limit);
    if (identity) {
        *out = req->body;
        return 0;
    }
    if (!eq_ci(enc, "gzip"))
        return hp_err_set(err, HP_EMETHOD,
                          "unsupported Content-Encoding \"%.*s\"; supported: gzip, identity",
                          (int)HP_MIN(enc.n, 100), enc.p);
    int rc = hp_gunzip(req->body.p, req->body.n, max_decoded, plain, err);
    if (rc != 0)
        return rc;
    *out = (hp_str_t){(const char *)plain->data, plain->len};
    return 0;
}

/* Decodes a binary message; protobuf-c reports no reason, so the error
 * names the message type and size. */
static int unpack(const ProtobufCMessageDescriptor *desc, hp_str_t body, ProtobufCMessage **msg,
                  hp_err_t *err)
{
    *msg = protobuf_c_message_unpack(desc, NULL, body.n, (const uint8_t *)(body.p ? body.p : ""));
    if (*msg == NULL)
        return hp_err_set(err, HP_EINVAL, "invalid protobuf message: cannot decode %zu bytes as %s",
                          body.n, desc->name);
    return 0;
}

int hp_connect_decode(const hp_http_request_t *req, const ProtobufCMessageDescriptor *desc,
                      size_t max_bytes, ProtobufCMessage **msg, hp_connect_codec_t *codec,
                      hp_err_t *err)
{
    return hp_connect_decode_bounded(req, desc, 0, max_bytes, msg, codec, err);
}

int hp_connect_decode_bounded(const hp_http_request_t *req, const ProtobufCMessageDescriptor *desc,
                              size_t max_body, size_t max_decoded, ProtobufCMessage **msg,
                              hp_connect_codec_t *codec, hp_err_t *err)
{
    hp_buf_t plain = HP_BUF_INIT;
    hp_str_t body = {NULL, 0};
    *msg = NULL;
    int rc = pick_codec(hp_http_header(req, "content-type"), codec, err);
    if (rc == 0)
        rc = body_bytes(req, or_unlimited(max_body), or_unlimited(max_decoded), &plain, &body, err);
    if (rc == 0 && *codec == HP_CONNECT_JSON)
        rc = hp_pbjson_decode(desc, body.p ? body.p : "", body.n, msg, err);
    else if (rc == 0)
        rc = unpack(desc, body, msg, err);
    hp_buf_fini(&plain);
    return rc;
}

/* Starts a 200 reply in codec with an empty body. */
static void begin_reply(hp_http_response_t *resp, hp_connect_codec_t codec)
{
    resp->status = 200;
    resp->content_type = codec == HP_CONNECT_JSON ? "application/json" : "application/proto";
    hp_buf_reset(&resp->body);
}

void hp_connect_respond(hp_http_response_t *resp, hp_connect_codec_t codec,
                        const ProtobufCMessage *msg)
{
    begin_reply(resp, codec);
    if (codec == HP_CONNECT_JSON) {
        hp_pbjson_encode(msg, &resp->body);
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    hp_buf_reserve(&resp->body, n + 1);
    resp->body.len = protobuf_c_message_pack(msg, resp->body.data);
}

void hp_connect_respond_raw(hp_http_response_t *resp, hp_connect_codec_t codec,
                            const ProtobufCMessageDescriptor *desc, const void *bytes, size_t n)
{
    if (codec != HP_CONNECT_JSON) {
        begin_reply(resp, codec);
        hp_buf_append(&resp->body, bytes, n);
        return;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, n, bytes ? bytes : "");
    if (msg == NULL) {
        hp_err_t err;
        hp_err_set(&err, HP_EINTERNAL, "cannot re-encode a %zu-byte %s reply as JSON", n,
                   desc->name);
        hp_connect_error(resp, &err);
        return;
    }
    begin_reply(resp, codec);
    hp_pbjson_encode(msg, &resp->body);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* The HTTP status the Connect protocol gives a code (500 if unknown). */
static int status_of(const char *code)
{
    for (size_t i = 0; i < HP_ARRAY_LEN(code_status); i++)
        if (strcmp(code_status[i].code, code) == 0)
            return code_status[i].status;
    return 500;
}

void hp_connect_error(hp_http_response_t *resp, const hp_err_t *err)
{
    if (err->code == HP_EUNSUPPORTED && err->detail == HP_CONNECT_EMEDIATYPE) {
        hp_http_error(resp, 415, err->msg);
        return;
    }
    const char *code = hp_err_connect_code(err->code);
    resp->status = status_of(code);
    resp->content_type = "application/json";
    hp_buf_reset(&resp->body);
    hp_buf_puts(&resp->body, "{\"code\":");
    hp_buf_put_json_str(&resp->body, code, strlen(code));
    hp_buf_puts(&resp->body, ",\"message\":");
    hp_buf_put_json_str(&resp->body, err->msg, strnlen(err->msg, sizeof(err->msg)));
    hp_buf_putc(&resp->body, '}');
}
