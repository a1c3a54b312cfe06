/*
 * connect.h — the Connect protocol's unary calls over hotpath's HTTP server
 * (https://connectrpc.com/docs/protocol): POST /pkg.Service/Method with a
 * bare message body as application/proto or application/json (also
 * "application/connect+…" is not unary and is refused), optional
 * Content-Encoding gzip (bounded), and errors as a non-200 status with JSON
 * {"code":"invalid_argument","message":"…"}.
 *
 * Not for: streaming RPCs or gRPC framing (welcome later).
 */
#ifndef HOTPATH_CONNECT_H
#define HOTPATH_CONNECT_H

#include <protobuf-c/protobuf-c.h>

#include "hotpath/http.h"

typedef enum { HP_CONNECT_PROTO = 0, HP_CONNECT_JSON = 1 } hp_connect_codec_t;

/* err->detail of the HP_EUNSUPPORTED that hp_connect_decode returns for a
 * missing or unknown Content-Type: hp_connect_error writes those as HTTP
 * 415 (plain text); any other HP_EUNSUPPORTED is a Connect
 * invalid_argument (400). */
enum { HP_CONNECT_EMEDIATYPE = 415 };

/* Decodes the request body as a message of type desc, choosing the codec
 * from Content-Type. Unknown content types are HP_EUNSUPPORTED (415 is
 * written by hp_connect_error for them); a body over max_bytes after
 * Content-Encoding is HP_ETOOLARGE (0 = no limit; the body as sent is
 * bounded by the HTTP server). On success *msg is freed by the caller with
 * protobuf_c_message_free_unpacked(*msg, NULL). */
int hp_connect_decode(const hp_http_request_t *req, const ProtobufCMessageDescriptor *desc,
                      size_t max_bytes, ProtobufCMessage **msg, hp_connect_codec_t *codec,
                      hp_err_t *err) HP_WUR;

/* hp_connect_decode with separate bounds: max_body for the body as sent,
 * max_decoded for what its Content-Encoding expands to (an identity body
 * must fit both). 0 = no limit for either; give max_decoded a real bound
 * whenever clients may compress. */
int hp_connect_decode_bounded(const hp_http_request_t *req, const ProtobufCMessageDescriptor *desc,
                              size_t max_body, size_t max_decoded, ProtobufCMessage **msg,
                              hp_connect_codec_t *codec, hp_err_t *err) HP_WUR;

/* Writes msg as the 200 response in the request's codec. */
void hp_connect_respond(hp_http_response_t *resp, hp_connect_codec_t codec,
                        const ProtobufCMessage *msg);

/* Writes an already-encoded binary message (codec must be PROTO) or its JSON
 * equivalent after decoding it with desc (for large hand-encoded replies). */
void hp_connect_respond_raw(hp_http_response_t *resp, hp_connect_codec_t codec,
                            const ProtobufCMessageDescriptor *desc, const void *bytes, size_t n);

/* Writes err as a Connect error: its HTTP status and
 * {"code":"<connect code>","message":"<msg>"}. The status is the one the
 * Connect protocol gives the code hp_err_connect_code(err->code) (so
 * HP_ETOOLARGE is resource_exhausted, 429), except the unsupported
 * Content-Type above (415). */
void hp_connect_error(hp_http_response_t *resp, const hp_err_t *err);

#endif
