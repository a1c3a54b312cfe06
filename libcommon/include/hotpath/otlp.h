/*
 * otlp.h — OpenTelemetry profiles (OTLP profiles/v1development, as
 * opentelemetry-proto v1.10.0 defines them) converted into pprof, the way
 * Grafana Pyroscope's OTLP receiver does: every Profile of an
 * ExportProfilesServiceRequest becomes one pprof per service (a sample's own
 * service.name attribute, else the resource's), each with the series labels
 * Pyroscope derives — __delta__="false", __otel__="true", __name__ from the
 * sample and period types, the resource's and then the scope's attributes,
 * and service_name.
 *
 * Every index and count read from the wire is checked before use, and the
 * expansion of shared stacks into per-sample frames is bounded, so a crafted
 * message is refused with HP_EINVAL and a message naming what is wrong; it
 * never crashes the process or makes it allocate without bound.
 *
 * Not for: transport (HTTP, Content-Encoding and statuses belong to the
 * distributor), gRPC, or validating the pprof it produces and the labels'
 * limits (dist_accept does both, as for any other profile).
 */
#ifndef HOTPATH_OTLP_H
#define HOTPATH_OTLP_H

#include "hotpath/arena.h"
#include "hotpath/common.h"
#include "hotpath/labels.h"

/* Bounds of one conversion; zero fields take the defaults noted beside
 * them. Exceeding one is HP_EINVAL with a message that names it. */
typedef struct hp_otlp_limits {
    size_t max_profiles;   /* pprofs a request may convert into; default 4096 */
    uint64_t max_frames;   /* frames, inlined lines and attribute look-ups the
                            * request's samples expand into; default 1 << 23 */
    uint64_t max_elements; /* strings, byte fields and messages a protobuf
                            * body may hold (each is an allocation when
                            * decoded); default 1 << 22. JSON bodies are
                            * bounded by their size and depth instead. */
} hp_otlp_limits_t;

/* One converted profile. */
typedef struct hp_otlp_profile {
    hp_labels_t labels; /* series labels, names as sent (dots kept, dist_accept
                         * sanitizes them); strings live in the result's arena */
    uint8_t *pprof;     /* uncompressed pprof Profile; owned by the result */
    size_t pprof_len;
} hp_otlp_profile_t;

/* err->detail after a failed hp_otlp_convert when the body is not an
 * ExportProfilesServiceRequest at all (protobuf or JSON); conversion errors
 * (bad indices, values, limits) leave it 0. Pyroscope answers both with 400
 * but words them differently. */
enum { HP_OTLP_EPARSE = 1 };

/* What a request converted into; the caller frees it with
 * hp_otlp_result_fini. */
typedef struct hp_otlp_result {
    hp_otlp_profile_t *v;
    size_t n;
    hp_arena_t arena; /* the labels' strings */
} hp_otlp_result_t;

/* Decodes body[0..n) as an ExportProfilesServiceRequest — protobuf, or
 * proto3 JSON (protojson) when json — and converts it into out, which must be
 * zeroed or finished. A request without a dictionary or without resource
 * profiles is HP_EINVAL, as in Pyroscope; profiles without samples convert
 * into nothing. Conversion errors read "failed to convert otel profile: …"
 * (Pyroscope's wording). lim may be NULL. On failure out holds nothing
 * (fini is still safe) and err says what was wrong. */
int hp_otlp_convert(const uint8_t *body, size_t n, bool json, const hp_otlp_limits_t *lim,
                    hp_otlp_result_t *out, hp_err_t *err) HP_WUR;

/* Frees what a conversion produced. Safe on a zeroed or finished result. */
void hp_otlp_result_fini(hp_otlp_result_t *r);

#endif
