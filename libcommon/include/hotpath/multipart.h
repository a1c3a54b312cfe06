/*
 * multipart.h — a bounded parser for multipart/form-data bodies (RFC 7578),
 * as Pyroscope SDKs send profiles to /ingest.
 *
 * Parts are slices of the body (borrowed, zero-copy). Parsing never reads
 * past the body, limits the number of parts and the header block size, and
 * reports what was wrong ("multipart: no boundary in Content-Type", …).
 *
 * Not for: urlencoded forms.
 */
#ifndef HOTPATH_MULTIPART_H
#define HOTPATH_MULTIPART_H

#include "hotpath/common.h"

typedef struct hp_multipart_part {
    hp_str_t name;         /* form field name from Content-Disposition */
    hp_str_t filename;     /* may be empty */
    hp_str_t content_type; /* may be empty */
    hp_str_t data;
} hp_multipart_part_t;

/* Extracts the boundary parameter from a Content-Type header value
 * ("multipart/form-data; boundary=xyz", quoted or not). */
int hp_multipart_boundary(hp_str_t content_type, hp_str_t *boundary, hp_err_t *err) HP_WUR;

/* Splits body into at most max_parts parts (more is HP_EINVAL). */
int hp_multipart_parse(hp_str_t boundary, hp_str_t body, hp_multipart_part_t *parts,
                       size_t max_parts, size_t *n_parts, hp_err_t *err) HP_WUR;

/* The first part called name, or NULL. */
const hp_multipart_part_t *hp_multipart_find(const hp_multipart_part_t *parts, size_t n,
                                             const char *name);

#endif
