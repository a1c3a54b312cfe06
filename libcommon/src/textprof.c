/* Stacks of names into pprof: the folded, lines and speedscope formats
 * (textprof.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/textprof.h"

/* ---- profile types ---- */

/* Pyroscope's table (ingest adapter): suffix → metric, sample type, unit. */
static const struct {
    const char *suffix, *metric, *type, *unit;
} text_types[] = {
    {"cpu", "process_cpu", "samples", "count"},
    {"itimer", "process_cpu", "samples", "count"},
    {"wall", "wall", "samples", "count"},
    {"inuse_objects", "memory", "inuse_objects", "count"},
    {"inuse_space", "memory", "inuse_space", "bytes"},
    {"alloc_objects", "memory", "alloc_objects", "count"},
    {"alloc_space", "memory", "alloc_space", "bytes"},
    {"goroutines", "goroutine", "goroutines", "count"},
    {"mutex_count", "mutex", "contentions", "count"},
    {"mutex_duration", "mutex", "delay", "nanoseconds"},
    {"block_count", "block", "contentions", "count"},
    {"block_duration", "block", "delay", "nanoseconds"},
    {"lock_count", "block", "contentions", "count"},
    {"lock_duration", "block", "delay", "nanoseconds"},
    {"alloc_in_new_tlab_objects", "memory", "alloc_in_new_tlab_objects", "count"},
    {"alloc_in_new_tlab_bytes", "memory", "alloc_in_new_tlab_bytes", "bytes"},
    {"alloc_outside_tlab_objects", "memory", "alloc_outside_tlab_objects", "count"},
    {"alloc_outside_tlab_bytes", "memory", "alloc_outside_tlab_bytes", "bytes"},
    {"live", "memory", "live", "count"},
    {"exceptions", "exceptions", "samples", "count"},
    {"seconds", "wall", "samples", "count"},
    {"milliseconds", "wall", "samples", "count"},
    {"microseconds", "wall", "samples", "count"},
    {"nanoseconds", "wall", "samples", "count"},
    {"bytes", "memory", "samples", "bytes"},
};

int hp_text_type_of_app(hp_str_t app, hp_str_t *base, hp_text_type_t *t, hp_err_t *err)
{
    size_t dot = app.n;
    while (dot > 0 && app.p[dot - 1] != '.')
        dot--;
    hp_str_t suffix = HP_STR("cpu");
    *base = app;
    if (dot > 0) {
        suffix = (hp_str_t){app.p + dot, app.n - dot};
        *base = (hp_str_t){app.p, dot - 1};
    }
    for (size_t i = 0; i < HP_ARRAY_LEN(text_types); i++) {
        if (hp_str_eq_c(suffix, text_types[i].suffix)) {
            *t = (hp_text_type_t){text_types[i].metric, text_types[i].type, text_types[i].unit};
            return 0;
        }
    }
    return hp_err_set(err, HP_EINVAL,
                      "unknown profile type: %.*s (the app name's last '.'-suffix names the profile type: "
                      "cpu, wall, alloc_objects, inuse_space, …; see docs/API.md)",
                      (int)HP_MIN(suffix.n, 64), suffix.p);
}

/* ---- building ---- */

void hp_text_profile_init(hp_text_profile_t *p, const hp_text_type_t *t, int64_t sample_rate, int64_t time_ns,
                          int64_t duration_ns, const hp_text_limits_t *lim)
{
    memset(p, 0, sizeof(*p));
    p->b = hp_pprof_builder_new();
    p->scale = 1;
    if (lim)
        p->lim = *lim;
    bool timed = strcmp(t->metric, "process_cpu") == 0 || strcmp(t->metric, "wall") == 0;
    if (sample_rate > 0 && timed) {
        const char *type = strcmp(t->metric, "wall") == 0 ? "wall" : "cpu";
        int64_t period = 1000000000LL / sample_rate;
        p->scale = period > 0 ? (double)period : 1e9 / (double)sample_rate;
        hp_pprof_builder_sample_type(p->b, hp_str_c(type), HP_STR("nanoseconds"));
        hp_pprof_builder_period(p->b, HP_STR("cpu"), HP_STR("nanoseconds"), HP_MAX(period, 1));
    } else {
        hp_pprof_builder_sample_type(p->b, hp_str_c(t->type), hp_str_c(t->unit));
    }
    hp_pprof_builder_times(p->b, time_ns, duration_ns);
}

void hp_text_profile_fini(hp_text_profile_t *p)
{
    hp_pprof_builder_free(p->b);
    free(p->locs);
    memset(p, 0, sizeof(*p));
}

int hp_text_profile_add(hp_text_profile_t *p, const hp_str_t *frames, size_t n, double value, hp_err_t *err)
{
    double v = value * p->scale;
    if (!(v >= 1 || v <= -1) || n == 0)
        return 0; /* zero after scaling (or NaN): nothing to store */
    if (v > 9.2e18 || v < -9.2e18)
        return hp_err_set(err, HP_EINVAL, "a stack's value %.0f does not fit in 64 bits", v);
    if (p->lim.max_stacks && p->n_stacks >= p->lim.max_stacks)
        return hp_err_set(err, HP_ELIMIT,
                          "profile exceeds the samples count limit (max_profile_stacktrace_samples, limit: %zu)",
                          p->lim.max_stacks);
    if (p->lim.max_depth && n > p->lim.max_depth)
        n = p->lim.max_depth; /* keep the root-most frames */
    HP_GROW(p->locs, p->cap_locs, n);
    for (size_t i = 0; i < n; i++) {
        hp_str_t name = frames[i];
        if (p->lim.max_name_len && name.n > p->lim.max_name_len)
            name.n = p->lim.max_name_len;
        uint64_t fn = hp_pprof_builder_function(p->b, name, HP_STR(""), HP_STR(""), 0);
        hp_pprof_line_in_t line = {fn, 0};
        p->locs[n - 1 - i] = hp_pprof_builder_location(p->b, 0, 0, &line, 1); /* pprof: leaf first */
    }
    int64_t iv = (int64_t)llround(v);
    hp_pprof_builder_sample(p->b, p->locs, n, &iv, NULL, 0);
    p->n_stacks++;
    return 0;
}

void hp_text_profile_encode(hp_text_profile_t *p, hp_buf_t *out)
{
    hp_pprof_builder_encode(p->b, out);
}

/* ---- folded and lines ---- */

/* Splits s at ';' into *frames (grown as needed); returns the count. */
static size_t split_frames(hp_str_t s, hp_str_t **frames, size_t *cap)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i == s.n || s.p[i] == ';') {
            HP_GROW(*frames, *cap, n + 1);
            (*frames)[n++] = (hp_str_t){s.p + start, i - start};
            start = i + 1;
        }
    }
    return n;
}

/* A non-negative decimal integer that fits in int64, or -1. */
static int64_t parse_count(hp_str_t s)
{
    if (s.n == 0 || s.n > 19)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

int hp_folded_parse(hp_text_profile_t *p, hp_str_t body, bool one_per_line, hp_err_t *err)
{
    hp_str_t *frames = NULL;
    size_t cap = 0, line_no = 0;
    int rc = 0;
    for (size_t at = 0; at < body.n && rc == 0;) {
        const char *nl = memchr(body.p + at, '\n', body.n - at);
        size_t end = nl ? (size_t)(nl - body.p) : body.n;
        hp_str_t line = {body.p + at, end - at};
        at = end + 1;
        line_no++;
        if (line.n > 0 && line.p[line.n - 1] == '\r')
            line.n--;
        if (line.n == 0)
            continue;
        if (!hp_utf8_valid(line.p, line.n)) {
            rc = hp_err_set(err, HP_EINVAL, "line %zu: invalid UTF-8 in a frame name", line_no);
            break;
        }
        int64_t count = 1;
        hp_str_t stack = line;
        if (!one_per_line) {
            size_t sp = line.n;
            while (sp > 0 && line.p[sp - 1] != ' ')
                sp--;
            if (sp == 0)
                continue; /* no count: skipped, as Pyroscope does */
            stack.n = sp - 1;
            count = parse_count((hp_str_t){line.p + sp, line.n - sp});
            if (count < 0) {
                rc = hp_err_set(err, HP_EINVAL,
                                "line %zu: '%.*s' is not a sample count (folded stacks are 'frame;frame;… count')",
                                line_no, (int)HP_MIN(line.n - sp, 32), line.p + sp);
                break;
            }
        }
        size_t n = split_frames(stack, &frames, &cap);
        rc = hp_text_profile_add(p, frames, n, (double)count, err);
    }
    free(frames);
    return rc;
}

/* ---- legacy tree and trie ---- */

typedef struct tcur {
    const uint8_t *p, *end, *start;
} tcur_t;

static bool tcur_uvarint(tcur_t *c, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end)
            return false;
        uint8_t b = *c->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *v = x;
            return shift < 63 || b <= 1;
        }
    }
    return false;
}

/* One node: name (pointing into the body), value, child count. */
static bool tcur_node(tcur_t *c, hp_str_t *name, uint64_t *value, uint64_t *children)
{
    uint64_t n;
    if (!tcur_uvarint(c, &n) || n > (uint64_t)(c->end - c->p))
        return false;
    *name = (hp_str_t){(const char *)c->p, (size_t)n};
    c->p += n;
    /* each child takes at least 3 bytes: a bound on what a count may claim */
    return tcur_uvarint(c, value) && tcur_uvarint(c, children) && *children <= (uint64_t)(c->end - c->p) / 3;
}

typedef struct tframe {
    uint64_t left;  /* children still to read */
    size_t key_len; /* trie: the key's length before this node's fragment */
} tframe_t;

/* Adds the trie key's stack (split at ';'). */
static int add_key(hp_text_profile_t *p, const hp_buf_t *key, uint64_t value, hp_str_t **frames, size_t *cap,
                   hp_err_t *err)
{
    hp_str_t k = {key->len ? (const char *)key->data : "", key->len};
    if (!hp_utf8_valid(k.p, k.n))
        return hp_err_set(err, HP_EINVAL, "trie: a key is not valid UTF-8");
    size_t n = split_frames(k, frames, cap);
    return hp_text_profile_add(p, *frames, n, (double)value, err);
}

/* One whole tree (or trie) from c. */
static int parse_one_tree(hp_text_profile_t *p, tcur_t *c, bool trie, hp_err_t *err)
{
    tframe_t *st = NULL;
    size_t depth = 0, cap = 0, fcap = 0, pcap = 0;
    hp_str_t *path = NULL, *frames = NULL;
    hp_buf_t key = HP_BUF_INIT;
    int rc = 0;
    bool root = true;
    do {
        if (!root && st[depth - 1].left == 0) { /* a node is done: back to its parent */
            depth--;
            key.len = st[depth].key_len;
            continue;
        }
        if (!root)
            st[depth - 1].left--;
        hp_str_t name;
        uint64_t value, children;
        if (!tcur_node(c, &name, &value, &children)) {
            rc = hp_err_set(err, HP_EINVAL, "%s: truncated or malformed node at byte %zu", trie ? "trie" : "tree",
                            (size_t)(c->p - c->start));
            break;
        }
        HP_GROW(st, cap, depth + 1);
        st[depth] = (tframe_t){children, key.len};
        if (trie) {
            hp_buf_append(&key, name.p, name.n);
            if (value > 0)
                rc = add_key(p, &key, value, &frames, &fcap, err);
        } else if (!root) { /* path[0 .. depth) are the frames below the root */
            if (!hp_utf8_valid(name.p, name.n)) {
                rc = hp_err_set(err, HP_EINVAL, "tree: the name ending at byte %zu is not valid UTF-8",
                                (size_t)(c->p - c->start));
                break;
            }
            HP_GROW(path, pcap, depth);
            path[depth - 1] = name;
            if (value > 0)
                rc = hp_text_profile_add(p, path, depth, (double)value, err);
        }
        depth++;
        root = false;
    } while (rc == 0 && depth > 0);
    free(st);
    free(path);
    free(frames);
    hp_buf_fini(&key);
    return rc;
}

int hp_tree_parse(hp_text_profile_t *p, hp_str_t body, bool trie, hp_err_t *err)
{
    tcur_t c = {(const uint8_t *)body.p, (const uint8_t *)body.p + body.n, (const uint8_t *)body.p};
    int rc = 0;
    if (body.n == 0)
        return 0;
    do
        rc = parse_one_tree(p, &c, trie, err);
    while (rc == 0 && trie && c.p < c.end); /* tries may follow each other; a tree's trailing bytes are ignored */
    return rc;
}

/* ---- speedscope ---- */

static const char speedscope_schema[] = "https://www.speedscope.app/file-format-schema.json";
static const char *const speedscope_units[] = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds",
                                               "bytes"};

int64_t hp_speedscope_sample_rate(const char *unit)
{
    static const struct {
        const char *unit;
        int64_t rate;
    } rates[] = {{"nanoseconds", 100000000000LL}, {"microseconds", 100000000LL}, {"milliseconds", 100000LL},
                 {"seconds", 100},                {"none", 10000},               {"bytes", 0}};
    for (size_t i = 0; i < HP_ARRAY_LEN(rates); i++)
        if (strcmp(unit, rates[i].unit) == 0)
            return rates[i].rate;
    return 0;
}

static const char *json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static double json_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

/* Checks profile i's type and unit. */
static int check_profile(json_t *prof, size_t i, hp_err_t *err)
{
    const char *type = json_str(prof, "type"), *unit = json_str(prof, "unit");
    if (!json_is_object(prof) || type == NULL || unit == NULL)
        return hp_err_set(err, HP_EINVAL, "speedscope: profile %zu needs a type and a unit", i);
    if (strcmp(type, "sampled") != 0 && strcmp(type, "evented") != 0)
        return hp_err_set(err, HP_EINVAL, "speedscope: profile %zu: profile type %.32s not supported", i, type);
    for (size_t k = 0; k < HP_ARRAY_LEN(speedscope_units); k++)
        if (strcmp(unit, speedscope_units[k]) == 0)
            return 0;
    return hp_err_set(err, HP_EINVAL, "speedscope: profile %zu: unknown unit %.32s", i, unit);
}

/* Whether document profiles a and b merge (same name, type, unit, start). */
static bool same_key(json_t *a, json_t *b)
{
    const char *na = json_str(a, "name"), *nb = json_str(b, "name");
    return strcmp(na ? na : "", nb ? nb : "") == 0 && strcmp(json_str(a, "type"), json_str(b, "type")) == 0 &&
           strcmp(json_str(a, "unit"), json_str(b, "unit")) == 0 &&
           json_num(a, "startValue") == json_num(b, "startValue");
}

/* Groups the document's profiles by merge key, ordered by start value
 * (stable, so equal starts keep document order). */
static void merge_profiles(hp_speedscope_t *s, json_t *profs)
{
    size_t n = json_array_size(profs);
    size_t *group = hp_xcalloc(n + 1, sizeof(*group)), ng = 0;
    size_t *first = hp_xcalloc(n + 1, sizeof(*first));
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < ng && !same_key(json_array_get(profs, first[g]), json_array_get(profs, i)))
            g++;
        if (g == ng)
            first[ng++] = i;
        group[i] = g;
    }
    /* order of groups: by start value, then first appearance (insertion sort: few profiles) */
    size_t *order = hp_xcalloc(ng + 1, sizeof(*order));
    for (size_t g = 0; g < ng; g++) {
        size_t k = g;
        double sv = json_num(json_array_get(profs, first[g]), "startValue");
        while (k > 0 && json_num(json_array_get(profs, first[order[k - 1]]), "startValue") > sv) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = g;
    }
    s->n = ng;
    s->v = hp_xcalloc(ng + 1, sizeof(*s->v));
    s->members = hp_xcalloc(n + 1, sizeof(*s->members));
    s->member_off = hp_xcalloc(ng + 1, sizeof(*s->member_off));
    size_t m = 0;
    for (size_t k = 0; k < ng; k++) {
        json_t *p = json_array_get(profs, first[order[k]]);
        const char *name = json_str(p, "name");
        s->v[k] = (hp_speedscope_profile_t){name ? name : "", json_str(p, "unit"), k};
        s->member_off[k] = m;
        for (size_t i = 0; i < n; i++)
            if (group[i] == order[k])
                s->members[m++] = i;
    }
    s->member_off[ng] = m;
    free(group);
    free(first);
    free(order);
}

int hp_speedscope_parse(hp_str_t body, hp_speedscope_t *s, hp_err_t *err)
{
    memset(s, 0, sizeof(*s));
    json_error_t je;
    json_t *doc = json_loadb(body.p, body.n, JSON_DECODE_ANY, &je);
    if (doc == NULL)
        return hp_err_set(err, HP_EINVAL, "speedscope: not JSON: %s (line %d)", je.text, je.line);
    s->doc = doc;
    const char *schema = json_str(doc, "$schema");
    if (!json_is_object(doc) || schema == NULL || strcmp(schema, speedscope_schema) != 0)
        return hp_err_set(err, HP_EINVAL, "speedscope: unknown schema: %.100s (want %s)", schema ? schema : "none",
                          speedscope_schema);
    json_t *profs = json_object_get(doc, "profiles");
    json_t *frames = json_object_get(json_object_get(doc, "shared"), "frames");
    if (!json_is_array(profs) || !json_is_array(frames))
        return hp_err_set(err, HP_EINVAL, "speedscope: a file needs profiles and shared.frames arrays");
    for (size_t i = 0; i < json_array_size(frames); i++)
        if (json_str(json_array_get(frames, i), "name") == NULL)
            return hp_err_set(err, HP_EINVAL, "speedscope: frame %zu has no name", i);
    for (size_t i = 0; i < json_array_size(profs); i++) {
        int rc = check_profile(json_array_get(profs, i), i, err);
        if (rc != 0)
            return rc;
    }
    merge_profiles(s, profs);
    return 0;
}

void hp_speedscope_fini(hp_speedscope_t *s)
{
    json_decref(s->doc);
    free(s->v);
    free(s->members);
    free(s->member_off);
    memset(s, 0, sizeof(*s));
}

/* Frame names, for stacks of frame indexes. */
typedef struct ss_stack {
    json_t *frames;
    hp_str_t *names;
    size_t n, cap;
} ss_stack_t;

/* Pushes frame index fid's name; false when fid is out of range. */
static bool push_frame(ss_stack_t *st, json_t *fidj)
{
    if (!json_is_integer(fidj))
        return false;
    json_int_t fid = json_integer_value(fidj);
    if (fid < 0 || (size_t)fid >= json_array_size(st->frames))
        return false;
    HP_GROW(st->names, st->cap, st->n + 1);
    st->names[st->n++] = hp_str_c(json_str(json_array_get(st->frames, (size_t)fid), "name"));
    return true;
}

static int add_sampled(json_t *prof, ss_stack_t *st, double mult, hp_text_profile_t *p, hp_err_t *err)
{
    json_t *samples = json_object_get(prof, "samples"), *weights = json_object_get(prof, "weights");
    if (!json_is_array(samples) || !json_is_array(weights) || json_array_size(samples) != json_array_size(weights))
        return hp_err_set(err, HP_EINVAL, "speedscope: unequal lengths of samples (%zu) and weights (%zu)",
                          json_array_size(samples), json_array_size(weights));
    int rc = 0;
    for (size_t i = 0; i < json_array_size(samples) && rc == 0; i++) {
        json_t *sample = json_array_get(samples, i), *w = json_array_get(weights, i);
        if (!json_is_array(sample) || !json_is_number(w) || json_number_value(w) < 0)
            return hp_err_set(err, HP_EINVAL, "speedscope: sample %zu: needs a frame list and a weight ≥ 0", i);
        st->n = 0;
        for (size_t k = 0; k < json_array_size(sample); k++)
            if (!push_frame(st, json_array_get(sample, k)))
                return hp_err_set(err, HP_EINVAL, "speedscope: sample %zu: invalid frame", i);
        rc = hp_text_profile_add(p, st->names, st->n, floor(json_number_value(w)) * mult, err);
    }
    return rc;
}

static int add_evented(json_t *prof, ss_stack_t *st, double mult, hp_text_profile_t *p, hp_err_t *err)
{
    json_t *events = json_object_get(prof, "events");
    if (!json_is_array(events))
        return hp_err_set(err, HP_EINVAL, "speedscope: an evented profile needs events");
    double last = json_num(prof, "startValue");
    int64_t *open = NULL; /* frame indexes of the open stack */
    size_t cap = 0;
    st->n = 0;
    int rc = 0;
    for (size_t i = 0; i < json_array_size(events) && rc == 0; i++) {
        json_t *ev = json_array_get(events, i);
        const char *type = json_str(ev, "type");
        json_t *fj = json_object_get(ev, "frame");
        double at = json_num(ev, "at");
        if (at < last) {
            rc = hp_err_set(err, HP_EINVAL, "speedscope: events out of order, %g < %g", at, last);
            break;
        }
        if (type && st->n > 0 && at > last) /* time spent in the open stack up to now */
            rc = hp_text_profile_add(p, st->names, st->n, floor(at - last) * mult, err);
        if (rc != 0)
            break;
        if (type && strcmp(type, "O") == 0) {
            if (!push_frame(st, fj)) {
                rc = hp_err_set(err, HP_EINVAL, "speedscope: event %zu: invalid frame", i);
                break;
            }
            HP_GROW(open, cap, st->n);
            open[st->n - 1] = json_integer_value(fj);
        } else if (type && strcmp(type, "C") == 0) {
            if (st->n == 0 || !json_is_integer(fj) || open[st->n - 1] != json_integer_value(fj)) {
                rc = hp_err_set(err, HP_EINVAL, "speedscope: event %zu closes a frame that is not open", i);
                break;
            }
            st->n--;
        } else {
            rc = hp_err_set(err, HP_EINVAL, "speedscope: event %zu: unknown event type", i);
            break;
        }
        last = at;
    }
    free(open);
    return rc;
}

int hp_speedscope_add(const hp_speedscope_t *s, size_t k, hp_text_profile_t *p, hp_err_t *err)
{
    json_t *profs = json_object_get(s->doc, "profiles");
    ss_stack_t st = {json_object_get(json_object_get(s->doc, "shared"), "frames"), NULL, 0, 0};
    double mult = strcmp(s->v[k].unit, "bytes") == 0 ? 1 : 100; /* Pyroscope keeps 1/100 of a unit */
    int rc = 0;
    for (size_t m = s->member_off[k]; m < s->member_off[k + 1] && rc == 0; m++) {
        json_t *prof = json_array_get(profs, s->members[m]);
        rc = strcmp(json_str(prof, "type"), "sampled") == 0 ? add_sampled(prof, &st, mult, p, err)
                                                            : add_evented(prof, &st, mult, p, err);
    }
    free(st.names);
    return rc;
}
