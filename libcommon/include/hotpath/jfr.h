/*
 * jfr.h — Java Flight Recorder recordings turned into pprof profiles, as
 * Pyroscope's /ingest?format=jfr does (grafana/jfr-parser's pprof package).
 *
 * One recording gives one profile per (kind, label set): the kinds are CPU
 * (jdk.ExecutionSample not in STATE_SLEEPING), wall (jdk.ExecutionSample
 * when async-profiler's "event" setting is wall, profiler.WallClockSample),
 * allocations in and outside TLABs, allocation samples, live objects,
 * monitor contention (mutex), thread parking (block) and malloc, with
 * jfr-parser's sample types and period types. The label set is the context
 * labels the LabelsSnapshot gives the event's contextId, plus span_name;
 * the event's spanId becomes a `profile_id` sample label (which stays on
 * samples). Frames are "<class>.<method>" with the JVM's '/' package
 * separators and generated class names merged ("App$$Lambda_",
 * "GeneratedMethodAccessor_"), leaf first. A CPU or wall sample is worth
 * 1e9 / sample_rate ns (the pprof's period too); other values are the
 * events' own (TLAB and allocation sizes, durations as JFR recorded them).
 * Every chunk of the recording counts.
 *
 * Not for: decompression (the caller gunzips both inputs, compress.h) or
 * the series labels every profile shares (service_name, __name__ …: the
 * caller adds them).
 */
#ifndef HOTPATH_JFR_H
#define HOTPATH_JFR_H

#include "hotpath/arena.h"
#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/labels.h"

/* The output bound used when hp_jfr_limits_t.max_bytes_out is 0 (32 MiB). */
#define HP_JFR_DEFAULT_MAX_BYTES_OUT ((size_t)32 << 20)

typedef struct hp_jfr_profile {
    char metric[32];    /* the series' __name__: process_cpu, wall, memory, mutex, block */
    hp_labels_t labels; /* jfr_event (when the recording names one) and the context
                         * labels, sorted by name; the array is owned by the result,
                         * the strings live in the result's arena */
    hp_buf_t pprof;     /* an uncompressed pprof Profile, owned by the result */
} hp_jfr_profile_t;

typedef struct hp_jfr_result {
    hp_jfr_profile_t *v; /* owned; n entries */
    size_t n;
    hp_arena_t arena; /* owns the label strings */
} hp_jfr_result_t;

typedef struct hp_jfr_limits {
    size_t max_bytes_out;     /* bound on the pprof bytes produced, checked as they
                               * grow; 0 = HP_JFR_DEFAULT_MAX_BYTES_OUT */
    uint32_t max_stack_depth; /* deeper stacks keep their leaf-most frames; 0 = none */
} hp_jfr_limits_t;

/* What the upload says about the recording besides its bytes. */
typedef struct hp_jfr_params {
    int64_t from_ns, until_ns; /* the upload's range: time_nanos = from_ns,
                                * duration_nanos = until_ns - from_ns */
    uint32_t sample_rate;      /* the sampler's Hz (the sampleRate parameter); each
                                * CPU or wall sample is worth 1e9 / sample_rate ns;
                                * 0 = 100, Pyroscope's default */
    const hp_labels_t *series; /* borrowed, may be NULL: the labels the caller puts
                                * on every series; a context label of the same name
                                * is dropped, as Pyroscope lets series labels win */
    bool mark_truncated;       /* end truncated stacks with a "[truncated]" root
                                * frame (jfr-parser's WithTruncatedFrame; Pyroscope
                                * leaves it off) */
} hp_jfr_params_t;

/* Converts a recording jfr[0..n) (already gunzipped; one or more chunks)
 * and an optional LabelsSnapshot protobuf labels[0..labels_n) (already
 * gunzipped; NULL/0 when absent) into profiles. Both are borrowed for the
 * call only: the result copies what it keeps. params and lim are borrowed
 * and may be NULL (defaults). out must be zeroed or finished; on success
 * the caller frees it with hp_jfr_result_fini, on failure it holds nothing
 * (fini is still safe).
 * Profiles without samples are left out, so a recording with no events of
 * interest gives n == 0. Errors: HP_EINVAL naming the part that is wrong
 * ("jfr: chunk 2: constant pool at 1234: …", "labels: …"); HP_ETOOLARGE
 * when the profiles would exceed max_bytes_out. Never crashes and never
 * allocates more than a small multiple of n, labels_n and max_bytes_out. */
int hp_jfr_convert(const uint8_t *jfr, size_t n, const uint8_t *labels, size_t labels_n,
                   const hp_jfr_params_t *params, const hp_jfr_limits_t *lim, hp_jfr_result_t *out,
                   hp_err_t *err) HP_WUR;

/* Frees everything the result owns. Safe on a zeroed or finished result. */
void hp_jfr_result_fini(hp_jfr_result_t *r);

#endif
