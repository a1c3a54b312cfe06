/* The JFR converter's internal faces: the chunk parser (jfr_parse.c), the
 * context label sets (jfr_labels.c) and the merging of generated names
 * (jfr_symbols.c), all used by jfr_convert.c.
 *
 * hp__jfr_parse walks every chunk of a recording: it reads the chunk's
 * metadata (the classes and their fields), loads its constant pools
 * (strings, symbols, classes, methods, stack traces, thread states), then
 * hands each event of interest to the sink and calls chunk_end, during
 * which the sink resolves stack traces and method names with the lookups
 * below. Everything a lookup returns lives until chunk_end returns. */
#ifndef HOTPATH_JFR_INTERNAL_H
#define HOTPATH_JFR_INTERNAL_H

#include "hotpath/common.h"
#include "hotpath/labels.h"

/* The events the converter understands (by class name). */
enum {
    HP__JFR_EV_NONE,
    HP__JFR_EV_EXEC,         /* jdk.ExecutionSample */
    HP__JFR_EV_WALL,         /* profiler.WallClockSample */
    HP__JFR_EV_TLAB_IN,      /* jdk.ObjectAllocationInNewTLAB */
    HP__JFR_EV_TLAB_OUT,     /* jdk.ObjectAllocationOutsideTLAB */
    HP__JFR_EV_ALLOC_SAMPLE, /* jdk.ObjectAllocationSample */
    HP__JFR_EV_MONITOR,      /* jdk.JavaMonitorEnter */
    HP__JFR_EV_PARK,         /* jdk.ThreadPark */
    HP__JFR_EV_LIVE,         /* profiler.LiveObject */
    HP__JFR_EV_MALLOC,       /* profiler.Malloc */
    HP__JFR_EV_SETTING,      /* jdk.ActiveSetting */
};

/* One event's fields of interest; absent fields are 0 / empty. */
typedef struct hp__jfr_event {
    int kind;
    uint64_t stack;   /* stackTrace: a stack trace pool ID */
    uint64_t state;   /* state: a thread state pool ID */
    uint64_t context; /* contextId (async-profiler) */
    uint64_t span_id, span_name;
    int64_t value;                /* tlabSize, allocationSize, weight, duration, size, samples */
    hp_str_t set_name, set_value; /* jdk.ActiveSetting's name and value */
} hp__jfr_event_t;

typedef struct hp__jfr_frame {
    uint64_t method; /* a method pool ID */
    int32_t line;
} hp__jfr_frame_t;

typedef struct hp__jfr_chunk hp__jfr_chunk_t;

typedef struct hp__jfr_sink {
    void *ctx;
    int (*event)(void *ctx, hp__jfr_chunk_t *c, const hp__jfr_event_t *ev, hp_err_t *err);
    int (*chunk_end)(void *ctx, hp__jfr_chunk_t *c, hp_err_t *err);
} hp__jfr_sink_t;

/* Parses jfr[0..n) chunk by chunk, feeding sink. Returns 0, HP_EINVAL with
 * a message naming the chunk and what is wrong, or a sink's error. */
int hp__jfr_parse(const uint8_t *jfr, size_t n, const hp__jfr_sink_t *sink, hp_err_t *err) HP_WUR;

/* The frames of stack trace id, leaf first (borrowed), and whether the
 * recorder truncated it. False when the chunk has no such stack trace. */
bool hp__jfr_stack(const hp__jfr_chunk_t *c, uint64_t id, const hp__jfr_frame_t **frames, uint32_t *n,
                   bool *truncated);

/* The name of thread state id (borrowed). False when there is none. */
bool hp__jfr_state(hp__jfr_chunk_t *c, uint64_t id, hp_str_t *name);

/* "<class>.<method>" for method id, with generated class names merged
 * (borrowed: the chunk's arena; built on each call, so the caller caches
 * them per method). Returns 1 when the method or its class is missing
 * (jfr-parser drops such frames), 0 when *name is set, HP_EINVAL when the
 * names built from this chunk grow beyond a small multiple of its size. */
int hp__jfr_method_name(hp__jfr_chunk_t *c, uint64_t id, hp_str_t *name, hp_err_t *err) HP_WUR;

/* jfr_labels.c: the LabelsSnapshot and the label sets it gives events. */
typedef struct hp__jfr_lsets hp__jfr_lsets_t;

/* Reads the LabelsSnapshot snapshot[0..n) (n may be 0: no snapshot); the
 * strings stay borrowed from it. series (borrowed, may be NULL) holds the
 * caller's series labels, whose names context labels may not take. seed
 * keeps hash slots unpredictable. HP_EINVAL ("labels: …") when malformed;
 * on success free *out with hp__jfr_lsets_free. */
int hp__jfr_lsets_new(const uint8_t *snapshot, size_t n, const hp_labels_t *series, uint64_t seed,
                      hp__jfr_lsets_t **out, hp_err_t *err) HP_WUR;
void hp__jfr_lsets_free(hp__jfr_lsets_t *s);

/* The label set (an ID; equal sets share it) an event with this contextId
 * and spanName carries: the context's labels with a value, but none named
 * __name__, jfr_event or like a series label, then span_name; sorted by
 * name. *added is the bytes a new set took (0 when it existed). */
uint32_t hp__jfr_lset_for(hp__jfr_lsets_t *s, uint64_t context, uint64_t span_name, size_t *added);

/* The labels of set id (borrowed) and their number. */
const hp_label_t *hp__jfr_lset(const hp__jfr_lsets_t *s, uint32_t id, uint32_t *n);

/* jfr_symbols.c: Pyroscope's merging of JVM-generated names — a lambda's
 * hidden class "Foo$$Lambda$12/0x0000000800c01234" → "Foo$$Lambda_",
 * "jdk/internal/reflect/GeneratedMethodAccessor31" → "…Accessor_", and
 * versioned native libraries (libzstd-jni, Amazon Corretto Crypto
 * Provider, async-profiler). Writes the merged name to out (at least n
 * bytes) and returns its length, or returns 0 when s needs no change. */
size_t hp__jfr_merge_generated(const char *s, size_t n, char *out);

#endif
