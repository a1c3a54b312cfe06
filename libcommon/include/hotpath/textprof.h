/*
 * textprof.h — profiles that arrive as stacks of function names rather than
 * pprof: `/ingest` bodies in the folded ("groups"), `lines` and speedscope
 * formats. They are turned into pprof, hotpath's one interchange format, so
 * everything after the distributor sees only pprof.
 *
 * The profile type of such an upload comes from the app name's last
 * `.`-suffix (`myapp.cpu`, `myapp.alloc_objects`), and a CPU or wall
 * profile's counts become nanoseconds with the upload's `sampleRate`, as
 * Pyroscope's ingest adapter does (docs/API.md lists the table).
 *
 * Not for: pprof decoding (pprof.h) or JFR (jfr.h).
 */
#ifndef HOTPATH_TEXTPROF_H
#define HOTPATH_TEXTPROF_H

#include "hotpath/buf.h"
#include "hotpath/common.h"
#include "hotpath/pprof.h"

/* A text upload's profile type: the series' metric name (`__name__`) and
 * the sample type and unit before sampleRate scaling. Static strings. */
typedef struct hp_text_type {
    const char *metric, *type, *unit;
} hp_text_type_t;

/* Splits app at its last '.' into *base and the type named by the suffix;
 * an app without '.' is a CPU profile named app. HP_EINVAL ("unknown
 * profile type: x") for a suffix that names no type. */
int hp_text_type_of_app(hp_str_t app, hp_str_t *base, hp_text_type_t *t, hp_err_t *err) HP_WUR;

/* Limits on what one upload may hold and cost (0 = none). The two budgets
 * bound the work of formats whose stacks share frames (a tree's path, a
 * trie's key prefix, an evented speedscope's open stack), so a small body
 * cannot cost work out of proportion to its size. */
typedef struct hp_text_limits {
    size_t max_stacks;     /* distinct stacks (after max_depth): the pprof's samples */
    size_t max_depth;      /* frames per stack: deeper stacks keep their root-most frames */
    size_t max_name_len;   /* a longer frame name is cut to this many bytes */
    size_t max_frames;     /* budget: frames added in all, repeated stacks counted each time */
    size_t max_name_bytes; /* budget: bytes of frame names looked up in all */
} hp_text_limits_t;

/* err->detail of the error for more than lim.max_stacks distinct stacks. */
enum { HP_TEXT_ESAMPLES = 64 };

/* One profile being built from stacks. */
typedef struct hp_text_profile {
    hp_pprof_builder_t *b; /* owned */
    double scale;          /* each value is multiplied by this (sampleRate scaling) */
    size_t n_stacks;       /* distinct stacks added so far (counted when lim.max_stacks is set) */
    size_t n_frames;       /* frames added so far (budget max_frames) */
    size_t n_name_bytes;   /* frame-name bytes looked up so far (budget max_name_bytes) */
    hp_text_limits_t lim;
    uint64_t *locs; /* scratch: one stack's location IDs, leaf first */
    size_t cap_locs;
    uint64_t *seen; /* hashes of the distinct stacks: open addressing, 0 = empty */
    size_t seen_mask;
} hp_text_profile_t;

/* Starts a profile of type t at time_ns lasting duration_ns. With
 * sample_rate > 0 a process_cpu or wall type is stored as cpu (or wall)
 * nanoseconds with period 1e9 / sample_rate (an integer division while
 * sample_rate ≤ 1e9, as Pyroscope computes it) and values multiplied by
 * that period; other types keep their values. lim (borrowed; NULL = no
 * limits) is copied. */
void hp_text_profile_init(hp_text_profile_t *p, const hp_text_type_t *t, int64_t sample_rate, int64_t time_ns,
                          int64_t duration_ns, const hp_text_limits_t *lim);
void hp_text_profile_fini(hp_text_profile_t *p);

/* The location ID of a frame named name (borrowed; cut to
 * lim.max_name_len), for hp_text_profile_add_locs. HP_ETOOLARGE past the
 * max_name_bytes budget. */
int hp_text_profile_loc(hp_text_profile_t *p, hp_str_t name, uint64_t *loc, hp_err_t *err) HP_WUR;

/* Adds value (before scaling) to the stack of location IDs locs[0 .. n),
 * root first (borrowed; only the root-most lim.max_depth are read); a
 * zero value adds nothing. HP_ETOOLARGE past the max_frames budget;
 * HP_EINVAL (detail HP_TEXT_ESAMPLES) for a stack that would be distinct
 * stack lim.max_stacks + 1. */
int hp_text_profile_add_locs(hp_text_profile_t *p, const uint64_t *locs, size_t n, double value,
                             hp_err_t *err) HP_WUR;

/* Adds value (before scaling) to the stack frames[0 .. n), root first:
 * hp_text_profile_loc of each frame, then hp_text_profile_add_locs. */
int hp_text_profile_add(hp_text_profile_t *p, const hp_str_t *frames, size_t n, double value,
                        hp_err_t *err) HP_WUR;

/* Encodes the profile as an uncompressed pprof, appended to out. */
void hp_text_profile_encode(hp_text_profile_t *p, hp_buf_t *out);

/* Folded stacks: one `frame;frame;… count` per line, split at the last
 * space (Pyroscope's "groups", the /ingest default); lines without a space
 * are skipped. With one_per_line (format=lines) every non-empty line is a
 * stack counted once. Frames are separated by ';', root first. HP_EINVAL
 * naming the line for a count that is not a non-negative integer, a count
 * above 2^63 - 1 ("count too large") or invalid UTF-8. */
int hp_folded_parse(hp_text_profile_t *p, hp_str_t body, bool one_per_line, hp_err_t *err) HP_WUR;

/* Pyroscope's legacy binary uploads. Both are a tree written depth first,
 * each node as uvarint name length, name, uvarint value, uvarint number of
 * children. format=tree: every node is a frame, its value the frame's self
 * value; the first node is the root, whose name and value are not a frame.
 * format=trie: names are fragments of "frame;frame;…" keys — a node's key
 * is its path's names concatenated — and a node with a value is a stack
 * with that count; several tries may follow each other. Each node costs
 * O(its name) plus O(stack depth) when it has a value: a path's location
 * IDs (tree) and a key's frames (trie) are kept as the walk goes down.
 * HP_EINVAL naming the byte offset for truncated or inconsistent data. */
int hp_tree_parse(hp_text_profile_t *p, hp_str_t body, bool trie, hp_err_t *err) HP_WUR;

/* ---- speedscope ---- */

/* One profile of a speedscope file, after Pyroscope merged those with the
 * same name, type, unit and start value. */
typedef struct hp_speedscope_profile {
    const char *name; /* borrowed from the parsed document */
    const char *unit; /* "none", "nanoseconds", …, "bytes" */
    size_t index;     /* into the document's profiles, for hp_speedscope_add */
} hp_speedscope_profile_t;

typedef struct hp_speedscope {
    void *doc; /* the parsed JSON (owned) */
    hp_speedscope_profile_t *v;
    size_t n;
    size_t *members; /* per merged profile: the document profiles merged into it */
    size_t *member_off; /* n + 1 offsets into members */
} hp_speedscope_t;

/* Most profiles one speedscope file may hold, before merging. */
#define HP_SPEEDSCOPE_MAX_PROFILES 1024

/* Parses a speedscope JSON file: checks the schema and every profile's
 * type and unit, merges duplicates (sorting, not pairwise), orders by
 * start value. HP_EINVAL with the reason for anything else, including
 * more than HP_SPEEDSCOPE_MAX_PROFILES profiles. */
int hp_speedscope_parse(hp_str_t body, hp_speedscope_t *s, hp_err_t *err) HP_WUR;
void hp_speedscope_fini(hp_speedscope_t *s);

/* The sample rate Pyroscope assumes for a speedscope unit when the upload
 * left sampleRate at its default (weights are kept to 1/100 of a unit):
 * 100 per second of the unit, 10 000 for "none", 0 for "bytes". */
int64_t hp_speedscope_sample_rate(const char *unit);

/* Adds merged profile k's stacks to p, weights × 100 (× 1 for bytes):
 * sampled profiles' samples, and evented profiles' time between open and
 * close events. HP_EINVAL for frames out of range, negative weights,
 * events out of order or closing a frame that is not open. */
int hp_speedscope_add(const hp_speedscope_t *s, size_t k, hp_text_profile_t *p, hp_err_t *err) HP_WUR;

#endif
