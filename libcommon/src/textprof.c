/* Stacks of names into pprof: the folded, lines and speedscope formats
 * (textprof.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
    free(p->seen);
    memset(p, 0, sizeof(*p));
}

int hp_text_profile_loc(hp_text_profile_t *p, hp_str_t name, uint64_t *loc, hp_err_t *err)
{
    if (p->lim.max_name_len && name.n > p->lim.max_name_len)
        name.n = p->lim.max_name_len;
    p->n_name_bytes += name.n;
    if (p->lim.max_name_bytes && p->n_name_bytes > p->lim.max_name_bytes)
        return hp_err_set(
            err, HP_ETOOLARGE,
            "text upload exceeds its frame-name budget: more than %zu bytes of frame names to look up",
            p->lim.max_name_bytes);
    uint64_t fn = hp_pprof_builder_function(p->b, name, HP_STR(""), HP_STR(""), 0);
    hp_pprof_line_in_t line = {fn, 0};
    *loc = hp_pprof_builder_location(p->b, 0, 0, &line, 1);
    return 0;
}

/* Doubles the set of stack hashes (from 64 slots), re-inserting them. */
static void seen_grow(hp_text_profile_t *p)
{
    size_t old = p->seen ? p->seen_mask + 1 : 0, slots = old ? old * 2 : 64;
    uint64_t *v = hp_xcalloc(slots, sizeof(*v));
    for (size_t i = 0; i < old; i++) {
        if (p->seen[i] == 0)
            continue;
        size_t k = p->seen[i] & (slots - 1);
        while (v[k] != 0)
            k = (k + 1) & (slots - 1);
        v[k] = p->seen[i];
    }
    free(p->seen);
    p->seen = v;
    p->seen_mask = slots - 1;
}

/* Counts p->locs[0 .. n) as a stack; HP_EINVAL when it is new and the
 * max_stacks distinct stacks are already there. A 64-bit hash stands for
 * the stack: the exact count is the pprof's, checked again on accept. */
static int count_stack(hp_text_profile_t *p, size_t n, hp_err_t *err)
{
    if (p->lim.max_stacks == 0)
        return 0;
    if (p->seen == NULL || (p->n_stacks + 1) * 2 > p->seen_mask + 1)
        seen_grow(p);
    uint64_t h = XXH3_64bits(p->locs, n * sizeof(*p->locs));
    h += h == 0; /* 0 marks an empty slot */
    size_t k = h & p->seen_mask;
    while (p->seen[k] != 0 && p->seen[k] != h)
        k = (k + 1) & p->seen_mask;
    if (p->seen[k] == h)
        return 0;
    if (p->n_stacks >= p->lim.max_stacks) {
        hp_err_set(err, HP_EINVAL,
                   "profile exceeds the samples count limit (max_profile_stacktrace_samples, limit: %zu)",
                   p->lim.max_stacks);
        err->detail = HP_TEXT_ESAMPLES;
        return HP_EINVAL;
    }
    p->seen[k] = h;
    p->n_stacks++;
    return 0;
}

/* Whether value is zero after scaling (or NaN): nothing to store. */
static bool adds_nothing(const hp_text_profile_t *p, double value)
{
    double v = value * p->scale;
    return !(v >= 1 || v <= -1);
}

int hp_text_profile_add_locs(hp_text_profile_t *p, const uint64_t *locs, size_t n, double value,
                             hp_err_t *err)
{
    double v = value * p->scale;
    if (adds_nothing(p, value) || n == 0)
        return 0;
    if (v > 9.2e18 || v < -9.2e18)
        return hp_err_set(err, HP_EINVAL, "a stack's value %.0f does not fit in 64 bits", v);
    if (p->lim.max_depth && n > p->lim.max_depth)
        n = p->lim.max_depth; /* keep the root-most frames */
    p->n_frames += n;
    if (p->lim.max_frames && p->n_frames > p->lim.max_frames)
        return hp_err_set(
            err, HP_ETOOLARGE,
            "text upload exceeds its frame budget: more than %zu frames in all (every stack's depth, "
            "repeated stacks counted each time)",
            p->lim.max_frames);
    HP_GROW(p->locs, p->cap_locs, n);
    for (size_t i = 0; i < n; i++)
        p->locs[n - 1 - i] = locs[i]; /* pprof: leaf first */
    int rc = count_stack(p, n, err);
    if (rc != 0)
        return rc;
    int64_t iv = (int64_t)llround(v);
    hp_pprof_builder_sample(p->b, p->locs, n, &iv, NULL, 0);
    return 0;
}

int hp_text_profile_add(hp_text_profile_t *p, const hp_str_t *frames, size_t n, double value, hp_err_t *err)
{
    if (adds_nothing(p, value))
        return 0;
    if (p->lim.max_depth && n > p->lim.max_depth)
        n = p->lim.max_depth; /* frames past the depth limit are never looked up */
    uint64_t stack[64], *ids = n <= HP_ARRAY_LEN(stack) ? stack : hp_xmalloc(n * sizeof(*ids));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = hp_text_profile_loc(p, frames[i], &ids[i], err);
    if (rc == 0)
        rc = hp_text_profile_add_locs(p, ids, n, value, err);
    if (ids != stack)
        free(ids);
    return rc;
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

/* The count s of line line_no into *v: a non-negative decimal integer
 * that fits in int64 (checked before each step, so it cannot overflow). */
static int parse_count(hp_str_t s, size_t line_no, int64_t *v, hp_err_t *err)
{
    *v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            break;
        int d = s.p[i] - '0';
        if (*v > (INT64_MAX - d) / 10)
            return hp_err_set(err, HP_EINVAL, "line %zu: count too large: '%.*s' (at most %lld)", line_no,
                              (int)HP_MIN(s.n, 32), s.p, (long long)INT64_MAX);
        *v = *v * 10 + d;
        if (i + 1 == s.n)
            return 0;
    }
    return hp_err_set(err, HP_EINVAL,
                      "line %zu: '%.*s' is not a sample count (folded stacks are 'frame;frame;… count')",
                      line_no, (int)HP_MIN(s.n, 32), s.p);
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
            if ((rc = parse_count((hp_str_t){line.p + sp, line.n - sp}, line_no, &count, err)) != 0)
                break;
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

/* What a node changed on the way down, restored on the way back up. */
typedef struct tframe {
    uint64_t left;   /* children still to read */
    size_t key_len;  /* trie: the key's length before this node's fragment */
    size_t n_frames; /* trie: the key's frames before it */
    size_t valid;    /* trie: the key's bytes known to be whole UTF-8 characters before it */
    bool bad;        /* trie: whether the key was invalid UTF-8 before it */
} tframe_t;

/* The walk's view of the path from the root to the current node. */
typedef struct twalk {
    hp_text_profile_t *p;
    const tcur_t *c;
    uint64_t *locs; /* tree: each path frame's location ID; trie: each key frame's (completed ones cached) */
    size_t cap_locs;
    hp_buf_t key;   /* trie: the path's fragments, concatenated */
    size_t *starts; /* trie: where each of the key's frames starts */
    size_t n_frames, cap_starts;
    size_t n_cached; /* trie: locs[0 .. n_cached) hold the key's first completed frames */
    size_t valid;    /* trie: key[0 .. valid) is whole UTF-8 characters, already checked */
    bool bad;        /* trie: the key holds invalid UTF-8: an error if a node below has a value */
} twalk_t;

/* The frames of a stack: all of n, or the root-most max_depth. */
static size_t stack_depth(const hp_text_profile_t *p, size_t n)
{
    return p->lim.max_depth && n > p->lim.max_depth ? p->lim.max_depth : n;
}

/* A tree node at depth ≥ 1 (path[depth - 1]): its location ID is found
 * once, and with a value the path's IDs are the stack. */
static int tree_node(twalk_t *w, size_t depth, hp_str_t name, uint64_t value, hp_err_t *err)
{
    if (!hp_utf8_valid(name.p, name.n))
        return hp_err_set(err, HP_EINVAL, "tree: the name ending at byte %zu is not valid UTF-8",
                          (size_t)(w->c->p - w->c->start));
    size_t n = stack_depth(w->p, depth);
    if (n == depth) { /* deeper frames are cut from every stack: never looked up */
        HP_GROW(w->locs, w->cap_locs, depth);
        int rc = hp_text_profile_loc(w->p, name, &w->locs[depth - 1], err);
        if (rc != 0)
            return rc;
    }
    return value > 0 ? hp_text_profile_add_locs(w->p, w->locs, n, (double)value, err) : 0;
}

/* Checks the key's new bytes as UTF-8, leaving a character cut by the
 * fragment's end for the next fragment to complete. */
static bool trie_utf8(twalk_t *w)
{
    if (w->valid == w->key.len)
        return true; /* nothing new (and key.data may be NULL) */
    const char *k = (const char *)w->key.data;
    size_t end = w->key.len, lead = end;
    while (lead > w->valid && end - lead < 4 && ((uint8_t)k[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > w->valid) { /* k[lead - 1] starts the last character: is it whole? */
        uint8_t c = (uint8_t)k[lead - 1];
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        end = end - (lead - 1) < want ? lead - 1 : end;
    }
    if (!hp_utf8_valid(k + w->valid, end - w->valid))
        return false;
    w->valid = end;
    return true;
}

/* Appends a trie node's fragment to the key, noting where frames start. */
static void trie_append(twalk_t *w, hp_str_t frag)
{
    size_t at = w->key.len;
    hp_buf_append(&w->key, frag.p, frag.n);
    for (size_t i = 0; i < frag.n; i++) {
        if (frag.p[i] == ';') {
            HP_GROW(w->starts, w->cap_starts, w->n_frames + 1);
            w->starts[w->n_frames++] = at + i + 1;
        }
    }
    w->bad = w->bad || !trie_utf8(w); /* once bad, the keys below are too */
}

/* Key frame i's name: up to the next frame's ';', or the key's end. */
static hp_str_t trie_frame(const twalk_t *w, size_t i)
{
    size_t from = w->starts[i], to = i + 1 < w->n_frames ? w->starts[i + 1] - 1 : w->key.len;
    return to > from ? (hp_str_t){(const char *)w->key.data + from, to - from} : HP_STR("");
}

/* A trie node: its fragment extends the key; with a value the key's frames
 * are a stack. Completed frames keep their location IDs until the walk
 * leaves them; only the last, still growing, frame is looked up again. */
static int trie_node(twalk_t *w, hp_str_t frag, uint64_t value, hp_err_t *err)
{
    trie_append(w, frag);
    if (value == 0)
        return 0;
    if (w->bad)
        return hp_err_set(err, HP_EINVAL, "trie: the key ending at byte %zu is not valid UTF-8",
                          (size_t)(w->c->p - w->c->start));
    if (w->valid != w->key.len)
        return hp_err_set(err, HP_EINVAL, "trie: the key ending at byte %zu ends inside a UTF-8 character",
                          (size_t)(w->c->p - w->c->start));
    size_t n = stack_depth(w->p, w->n_frames);
    HP_GROW(w->locs, w->cap_locs, n);
    int rc = 0;
    for (; rc == 0 && w->n_cached < n && w->n_cached + 1 < w->n_frames; w->n_cached++)
        rc = hp_text_profile_loc(w->p, trie_frame(w, w->n_cached), &w->locs[w->n_cached], err);
    if (rc == 0 && n == w->n_frames)
        rc = hp_text_profile_loc(w->p, trie_frame(w, n - 1), &w->locs[n - 1], err);
    return rc == 0 ? hp_text_profile_add_locs(w->p, w->locs, n, (double)value, err) : rc;
}

/* Back up from a node to its parent, as it was before the node. */
static void walk_up(twalk_t *w, const tframe_t *f)
{
    w->key.len = f->key_len;
    w->n_frames = f->n_frames;
    w->valid = f->valid;
    w->bad = f->bad;
    if (w->n_frames > 0 && w->n_cached > w->n_frames - 1)
        w->n_cached = w->n_frames - 1; /* the last frame may grow again */
}

/* One whole tree (or trie) from c, depth first without recursion. */
static int parse_one_tree(hp_text_profile_t *p, tcur_t *c, bool trie, hp_err_t *err)
{
    twalk_t w = {.p = p, .c = c, .key = HP_BUF_INIT};
    HP_GROW(w.starts, w.cap_starts, 1);
    w.starts[w.n_frames++] = 0; /* a key's first frame starts at 0 */
    tframe_t *st = NULL;
    size_t depth = 0, cap = 0;
    int rc = 0;
    do {
        if (depth > 0 && st[depth - 1].left == 0) { /* a node is done: back to its parent */
            walk_up(&w, &st[--depth]);
            continue;
        }
        if (depth > 0)
            st[depth - 1].left--;
        hp_str_t name;
        uint64_t value, children;
        if (!tcur_node(c, &name, &value, &children)) {
            rc = hp_err_set(err, HP_EINVAL, "%s: truncated or malformed node at byte %zu",
                            trie ? "trie" : "tree", (size_t)(c->p - c->start));
            break;
        }
        HP_GROW(st, cap, depth + 1);
        st[depth] = (tframe_t){children, w.key.len, w.n_frames, w.valid, w.bad};
        if (trie)
            rc = trie_node(&w, name, value, err);
        else if (depth > 0) /* the tree's root is not a frame */
            rc = tree_node(&w, depth, name, value, err);
        depth++;
    } while (rc == 0 && depth > 0);
    free(st);
    free(w.locs);
    free(w.starts);
    hp_buf_fini(&w.key);
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

/* A document profile's merge key (name, type, unit, start value) and its
 * place in the document. */
typedef struct ss_key {
    const char *name, *type, *unit;
    double start;
    size_t index;
} ss_key_t;

/* Orders keys so that equal ones are adjacent, in document order. */
static int key_cmp(const void *pa, const void *pb)
{
    const ss_key_t *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->type, b->type);
    if (c == 0)
        c = strcmp(a->unit, b->unit);
    if (c == 0 && a->start != b->start)
        c = a->start < b->start ? -1 : 1;
    return c != 0 ? c : a->index < b->index ? -1 : a->index > b->index;
}

/* A run of equal keys: one merged profile. */
typedef struct ss_group {
    double start;
    size_t doc;      /* its first member's document index */
    size_t run, len; /* its members: keys[run .. run + len) */
} ss_group_t;

/* Orders groups by start value, then first appearance. */
static int group_cmp(const void *pa, const void *pb)
{
    const ss_group_t *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->doc < b->doc ? -1 : a->doc > b->doc;
}

static bool same_key(const ss_key_t *a, const ss_key_t *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->type, b->type) == 0 && strcmp(a->unit, b->unit) == 0 &&
           a->start == b->start;
}

/* Groups the document's profiles by merge key, ordered by start value
 * (then first appearance), each group's members in document order: two
 * sorts, O(n log n). */
static void merge_profiles(hp_speedscope_t *s, json_t *profs)
{
    size_t n = json_array_size(profs), ng = 0;
    ss_key_t *keys = hp_xcalloc(n + 1, sizeof(*keys));
    ss_group_t *groups = hp_xcalloc(n + 1, sizeof(*groups));
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(profs, i);
        const char *name = json_str(p, "name");
        keys[i] = (ss_key_t){name ? name : "", json_str(p, "type"), json_str(p, "unit"),
                             json_num(p, "startValue"), i};
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && same_key(&keys[i - 1], &keys[i]))
            groups[ng - 1].len++;
        else
            groups[ng++] = (ss_group_t){keys[i].start, keys[i].index, i, 1};
    }
    qsort(groups, ng, sizeof(*groups), group_cmp);
    s->n = ng;
    s->v = hp_xcalloc(ng + 1, sizeof(*s->v));
    s->members = hp_xcalloc(n + 1, sizeof(*s->members));
    s->member_off = hp_xcalloc(ng + 1, sizeof(*s->member_off));
    size_t m = 0;
    for (size_t k = 0; k < ng; k++) {
        const ss_key_t *first = &keys[groups[k].run];
        s->v[k] = (hp_speedscope_profile_t){first->name, first->unit, k};
        s->member_off[k] = m;
        for (size_t i = 0; i < groups[k].len; i++)
            s->members[m++] = first[i].index;
    }
    s->member_off[ng] = m;
    free(keys);
    free(groups);
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
    if (json_array_size(profs) > HP_SPEEDSCOPE_MAX_PROFILES)
        return hp_err_set(err, HP_EINVAL, "speedscope: %zu profiles in one file, at most %d",
                          json_array_size(profs), HP_SPEEDSCOPE_MAX_PROFILES);
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

/* A stack of frame indexes, added as location IDs: each frame's ID is
 * looked up once per profile, so a deep stack costs O(depth), not
 * O(depth × name) per sample. */
typedef struct ss_stack {
    json_t *frames;
    hp_text_profile_t *p;
    uint64_t *loc_of; /* per frame index: its location ID, 0 until looked up */
    size_t *fids;     /* the stack's frame indexes, root first */
    size_t n, cap;
    uint64_t *locs; /* scratch: the stack's location IDs */
    size_t cap_locs;
} ss_stack_t;

/* Pushes frame index fidj; false when it is no frame's index. */
static bool push_frame(ss_stack_t *st, json_t *fidj)
{
    if (!json_is_integer(fidj))
        return false;
    json_int_t fid = json_integer_value(fidj);
    if (fid < 0 || (size_t)fid >= json_array_size(st->frames))
        return false;
    HP_GROW(st->fids, st->cap, st->n + 1);
    st->fids[st->n++] = (size_t)fid;
    return true;
}

/* Adds value (before scaling) to the stack st holds. */
static int add_stack(ss_stack_t *st, double value, hp_err_t *err)
{
    if (adds_nothing(st->p, value) || st->n == 0)
        return 0;
    size_t n = stack_depth(st->p, st->n);
    HP_GROW(st->locs, st->cap_locs, n);
    for (size_t i = 0; i < n; i++) {
        size_t f = st->fids[i];
        if (st->loc_of[f] == 0) {
            hp_str_t name = hp_str_c(json_str(json_array_get(st->frames, f), "name"));
            int rc = hp_text_profile_loc(st->p, name, &st->loc_of[f], err);
            if (rc != 0)
                return rc;
        }
        st->locs[i] = st->loc_of[f];
    }
    return hp_text_profile_add_locs(st->p, st->locs, n, value, err);
}

static int add_sampled(json_t *prof, ss_stack_t *st, double mult, hp_err_t *err)
{
    json_t *samples = json_object_get(prof, "samples"), *weights = json_object_get(prof, "weights");
    if (!json_is_array(samples) || !json_is_array(weights) ||
        json_array_size(samples) != json_array_size(weights))
        return hp_err_set(err, HP_EINVAL, "speedscope: unequal lengths of samples (%zu) and weights (%zu)",
                          json_array_size(samples), json_array_size(weights));
    int rc = 0;
    for (size_t i = 0; i < json_array_size(samples) && rc == 0; i++) {
        json_t *sample = json_array_get(samples, i), *w = json_array_get(weights, i);
        if (!json_is_array(sample) || !json_is_number(w) || json_number_value(w) < 0)
            return hp_err_set(err, HP_EINVAL, "speedscope: sample %zu: needs a frame list and a weight ≥ 0",
                              i);
        st->n = 0;
        for (size_t k = 0; k < json_array_size(sample); k++)
            if (!push_frame(st, json_array_get(sample, k)))
                return hp_err_set(err, HP_EINVAL, "speedscope: sample %zu: invalid frame", i);
        rc = add_stack(st, floor(json_number_value(w)) * mult, err);
    }
    return rc;
}

/* One event of an evented profile: the time since the last one goes to
 * the open stack, then a frame opens or closes. */
static int add_event(json_t *ev, size_t i, ss_stack_t *st, double mult, double *last, hp_err_t *err)
{
    const char *type = json_str(ev, "type");
    json_t *fj = json_object_get(ev, "frame");
    double at = json_num(ev, "at");
    if (at < *last)
        return hp_err_set(err, HP_EINVAL, "speedscope: events out of order, %g < %g", at, *last);
    int rc = type && at > *last ? add_stack(st, floor(at - *last) * mult, err) : 0;
    if (rc != 0)
        return rc;
    *last = at;
    if (type && strcmp(type, "O") == 0)
        return push_frame(st, fj) ? 0 : hp_err_set(err, HP_EINVAL, "speedscope: event %zu: invalid frame", i);
    if (type && strcmp(type, "C") == 0) {
        if (st->n == 0 || !json_is_integer(fj) || (json_int_t)st->fids[st->n - 1] != json_integer_value(fj))
            return hp_err_set(err, HP_EINVAL, "speedscope: event %zu closes a frame that is not open", i);
        st->n--;
        return 0;
    }
    return hp_err_set(err, HP_EINVAL, "speedscope: event %zu: unknown event type", i);
}

static int add_evented(json_t *prof, ss_stack_t *st, double mult, hp_err_t *err)
{
    json_t *events = json_object_get(prof, "events");
    if (!json_is_array(events))
        return hp_err_set(err, HP_EINVAL, "speedscope: an evented profile needs events");
    double last = json_num(prof, "startValue");
    st->n = 0;
    int rc = 0;
    for (size_t i = 0; i < json_array_size(events) && rc == 0; i++)
        rc = add_event(json_array_get(events, i), i, st, mult, &last, err);
    return rc;
}

int hp_speedscope_add(const hp_speedscope_t *s, size_t k, hp_text_profile_t *p, hp_err_t *err)
{
    json_t *profs = json_object_get(s->doc, "profiles");
    ss_stack_t st = {.frames = json_object_get(json_object_get(s->doc, "shared"), "frames"), .p = p};
    st.loc_of = hp_xcalloc(json_array_size(st.frames) + 1, sizeof(*st.loc_of));
    double mult = strcmp(s->v[k].unit, "bytes") == 0 ? 1 : 100; /* Pyroscope keeps 1/100 of a unit */
    int rc = 0;
    for (size_t m = s->member_off[k]; m < s->member_off[k + 1] && rc == 0; m++) {
        json_t *prof = json_array_get(profs, s->members[m]);
        rc = strcmp(json_str(prof, "type"), "sampled") == 0 ? add_sampled(prof, &st, mult, err)
                                                            : add_evented(prof, &st, mult, err);
    }
    free(st.loc_of);
    free(st.fids);
    free(st.locs);
    return rc;
}
