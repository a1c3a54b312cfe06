/*
 * pbjson.h — proto3 JSON for any protobuf-c message, driven by the
 * descriptors protoc-c generates: what Connect's application/json means.
 *
 * Encoding follows the proto3 JSON mapping as protojson (Go) writes it:
 * lowerCamel field names (the JSON name: "profile_typeID" → "profileTypeID",
 * "ID" → "ID"), 64-bit integers as strings, enums by name, bytes as
 * standard base64, fields at their default value omitted (proto3
 * `optional` fields written when present), repeated and nested messages
 * as arrays and objects.
 *
 * Decoding accepts what protojson accepts: the JSON name or the original
 * field name, 64-bit integers as strings or numbers, enums by name or
 * number, base64 with or without padding (standard or URL alphabet), null
 * as the default, and it ignores unknown fields (as connect-go does). Input
 * is bounded: depth ≤ 64, and every error says which field was wrong.
 *
 * Not for: google.protobuf well-known types (none of hotpath's APIs use them).
 */
#ifndef HOTPATH_PBJSON_H
#define HOTPATH_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "hotpath/buf.h"
#include "hotpath/common.h"

/* Appends msg as JSON to out. */
void hp_pbjson_encode(const ProtobufCMessage *msg, hp_buf_t *out);

/* Parses json[0..n) as a message of type desc. On success *out is a new
 * message the caller frees with protobuf_c_message_free_unpacked(*out, NULL).
 * Errors are HP_EINVAL with a message naming the field. */
int hp_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t n,
                     ProtobufCMessage **out, hp_err_t *err) HP_WUR;

/* The JSON name of a field ("profile_typeID" → "profileTypeID") into buf. */
const char *hp_pbjson_name(const char *field_name, char *buf, size_t n);

#endif
