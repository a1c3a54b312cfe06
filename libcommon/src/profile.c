/* From a pprof to Pyroscope's series: metric name, label groups, type IDs. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/buf.h"
#include "hotpath/hashmap.h"
#include "hotpath/profile.h"

/* ---- sample_type_config ---- */

static char *json_str_dup(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? hp_xstrdup(json_string_value(v)) : NULL;
}

int hp_stc_parse(const char *json, size_t n, hp_stc_t *stc, hp_err_t *err)
{
    json_error_t je;
    stc->v = NULL;
    stc->n = 0;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return hp_err_set(err, HP_EINVAL, "invalid sample_type_config: %s",
                          root ? "expected a JSON object" : je.text);
    }
    const char *key;
    json_t *val;
    stc->v = hp_xcalloc(json_object_size(root) + 1, sizeof(*stc->v));
    json_object_foreach(root, key, val)
    {
        if (!json_is_object(val))
            continue;
        hp_stc_entry_t *e = &stc->v[stc->n++];
        e->sample_type = hp_xstrdup(key);
        e->display_name = json_str_dup(val, "display-name");
        e->units = json_str_dup(val, "units");
        e->aggregation = json_str_dup(val, "aggregation");
        e->cumulative = json_is_true(json_object_get(val, "cumulative"));
        e->sampled = json_is_true(json_object_get(val, "sampled"));
    }
    json_decref(root);
    return 0;
}

void hp_stc_fini(hp_stc_t *stc)
{
    for (size_t i = 0; i < stc->n; i++) {
        free(stc->v[i].sample_type);
        free(stc->v[i].display_name);
        free(stc->v[i].units);
        free(stc->v[i].aggregation);
    }
    free(stc->v);
    stc->v = NULL;
    stc->n = 0;
}

/* Pyroscope's default display names for Go's sample types. */
static const struct {
    const char *sample_type, *display;
} default_display[] = {
    {"samples", "cpu"},
    {"goroutine", "goroutines"},
    {"contentions", "mutex_count"},
    {"delay", "mutex_duration"},
};

static hp_str_t display_name(hp_str_t st, const hp_stc_t *stc)
{
    if (stc) {
        for (size_t i = 0; i < stc->n; i++)
            if (hp_str_eq_c(st, stc->v[i].sample_type))
                return stc->v[i].display_name && *stc->v[i].display_name
                           ? hp_str_c(stc->v[i].display_name)
                           : st;
        return st;
    }
    for (size_t i = 0; i < HP_ARRAY_LEN(default_display); i++)
        if (hp_str_eq_c(st, default_display[i].sample_type))
            return hp_str_c(default_display[i].display);
    return st;
}

static bool contains(hp_str_t s, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= s.n; i++)
        if (memcmp(s.p + i, needle, k) == 0)
            return true;
    return false;
}

static const char *metric_of(hp_str_t st)
{
    if (contains(st, "cpu"))
        return "process_cpu";
    if (contains(st, "alloc_") || contains(st, "inuse_") || hp_str_eq_c(st, "space") ||
        hp_str_eq_c(st, "objects"))
        return "memory";
    if (contains(st, "mutex_"))
        return "mutex";
    if (contains(st, "block_"))
        return "block";
    if (contains(st, "goroutines"))
        return "goroutines";
    return NULL;
}

hp_str_t hp_profile_metric_name(const hp_pprof_t *p, const hp_stc_t *stc)
{
    for (uint32_t i = 0; i < p->n_sample_types; i++)
        if (hp_str_eq_c(hp_pprof_str(p, p->sample_types[i].type), "wall"))
            return HP_STR("wall");
    hp_str_t st = HP_STR("");
    for (uint32_t i = 0; i < p->n_sample_types; i++) {
        st = display_name(hp_pprof_str(p, p->sample_types[i].type), stc);
        const char *m = metric_of(st);
        if (m)
            return hp_str_c(m);
    }
    return st;
}

/* ---- sample groups ---- */

bool hp_profile_label_is_sample_only(hp_str_t key)
{
    return hp_str_eq_c(key, "profile_id") || hp_str_eq_c(key, "span_id") ||
           hp_str_eq_c(key, "trace_id");
}

/* The string labels of sample s that make series labels, sorted by key.
 * A label whose value is empty is no label (Pyroscope's LabelsBuilder
 * deletes it), whichever string index holds the "". */
static size_t sample_labels(const hp_pprof_t *p, const hp_pprof_sample_t *s, hp_label_t *out)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->lab_n; i++) {
        const hp_pprof_label_t *l = &p->labels[s->lab_off + i];
        hp_str_t key = hp_pprof_str(p, l->key);
        hp_str_t value = hp_pprof_str(p, l->str);
        if (value.n == 0 || key.n == 0 || hp_profile_label_is_sample_only(key))
            continue;
        hp_label_t x = {key, value};
        size_t j = n++;
        while (j > 0 && hp_str_cmp(out[j - 1].name, x.name) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    return n;
}

static uint64_t labels_hash(const hp_label_t *l, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (size_t i = 0; i < n; i++) {
        h = hp_mix64(h ^ XXH3_64bits(l[i].name.p, l[i].name.n));
        h = hp_mix64(h ^ XXH3_64bits(l[i].value.p, l[i].value.n));
    }
    return h;
}

/* Names are compared before sanitization, which runs once grouping ends. */
static bool group_matches(const hp_sample_group_t *g, const hp_label_t *l, size_t n)
{
    if (g->labels.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!hp_str_eq(g->labels.v[i].name, l[i].name) || !hp_str_eq(g->labels.v[i].value, l[i].value))
            return false;
    return true;
}

void hp_profile_group_samples(const hp_pprof_t *p, hp_arena_t *a, hp_sample_group_t **groups,
                              size_t *n_groups)
{
    *n_groups = 0;
    *groups = NULL;
    if (p->n_samples == 0)
        return;
    if (p->n_labels == 0) {
        hp_sample_group_t *g = hp_arena_calloc(a, 1, sizeof(*g));
        g->samples = hp_arena_alloc(a, p->n_samples * sizeof(uint32_t));
        for (uint32_t i = 0; i < p->n_samples; i++)
            g->samples[i] = i;
        g->n = p->n_samples;
        *groups = g;
        *n_groups = 1;
        return;
    }
    /* First pass: a group ID per sample; second: fill each group's list. */
    uint32_t *gid = hp_xmalloc(p->n_samples * sizeof(uint32_t));
    hp_label_t *scratch = hp_xmalloc((size_t)(p->n_labels + 1) * sizeof(hp_label_t));
    hp_sample_group_t *gs = NULL;
    size_t ng = 0, cap = 0;
    hp_u64map_t by_hash;
    hp_u64map_init(&by_hash, 16);
    for (uint32_t i = 0; i < p->n_samples; i++) {
        size_t n = sample_labels(p, &p->samples[i], scratch);
        uint64_t h = labels_hash(scratch, n);
        uint64_t g;
        /* probe successive keys on a (vanishingly rare) hash collision */
        while (hp_u64map_get(&by_hash, h, &g) && !group_matches(&gs[g], scratch, n))
            h = hp_mix64(h + 1);
        if (!hp_u64map_get(&by_hash, h, &g)) {
            g = ng;
            HP_GROW(gs, cap, ng + 1);
            memset(&gs[ng], 0, sizeof(gs[ng]));
            for (size_t k = 0; k < n; k++)
                hp_labels_add(&gs[ng].labels, scratch[k].name, scratch[k].value);
            ng++;
            hp_u64map_put(&by_hash, h, g);
        }
        gid[i] = (uint32_t)g;
        gs[g].n++;
    }
    for (size_t g = 0; g < ng; g++) {
        gs[g].samples = hp_arena_alloc(a, gs[g].n * sizeof(uint32_t));
        gs[g].n = 0;
        hp_labels_sanitize_names(&gs[g].labels, a);
    }
    for (uint32_t i = 0; i < p->n_samples; i++)
        gs[gid[i]].samples[gs[gid[i]].n++] = i;
    *groups = hp_arena_alloc(a, ng * sizeof(**groups));
    memcpy(*groups, gs, ng * sizeof(*gs));
    *n_groups = ng;
    free(gs);
    free(gid);
    free(scratch);
    hp_u64map_fini(&by_hash);
}

void hp_profile_groups_fini(hp_sample_group_t *groups, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hp_labels_fini(&groups[i].labels);
}

/* ---- type IDs and series labels ---- */

void hp_profile_type_id(const hp_pprof_t *p, uint32_t i, hp_str_t metric, hp_buf_t *buf)
{
    hp_str_t parts[5] = {
        metric,
        hp_pprof_str(p, p->sample_types[i].type),
        hp_pprof_str(p, p->sample_types[i].unit),
        hp_pprof_str(p, p->period_type.type),
        hp_pprof_str(p, p->period_type.unit),
    };
    for (int k = 0; k < 5; k++) {
        if (k)
            hp_buf_putc(buf, ':');
        hp_buf_append(buf, parts[k].p, parts[k].n);
    }
}

static hp_str_t arena_str(hp_arena_t *a, hp_str_t s)
{
    return (hp_str_t){hp_arena_strndup(a, s.p, s.n), s.n};
}

/* The label-by-label build: any base and group, sorted or not. */
static void series_labels_slow(const hp_pprof_t *p, uint32_t i, hp_str_t metric, const hp_labels_t *base,
                               const hp_labels_t *group, hp_str_t type_id, hp_labels_t *out)
{
    hp_labels_copy(out, base);
    for (size_t k = 0; group && k < group->n; k++)
        hp_labels_set(out, group->v[k].name, group->v[k].value);
    hp_labels_del(out, HP_LABEL_PROFILE_TYPE);
    hp_labels_del(out, HP_LABEL_DELTA);
    hp_labels_set(out, HP_STR(HP_LABEL_PROFILE_TYPE), type_id);
    hp_labels_set(out, HP_STR(HP_LABEL_NAME), metric);
    hp_labels_set(out, HP_STR(HP_LABEL_TYPE), hp_pprof_str(p, p->sample_types[i].type));
    hp_labels_set(out, HP_STR(HP_LABEL_UNIT), hp_pprof_str(p, p->sample_types[i].unit));
    hp_labels_set(out, HP_STR(HP_LABEL_PERIOD_TYPE), hp_pprof_str(p, p->period_type.type));
    hp_labels_set(out, HP_STR(HP_LABEL_PERIOD_UNIT), hp_pprof_str(p, p->period_type.unit));
    hp_labels_sort(out);
}

/* True when ls is sorted by name (equal names allowed: the last wins). */
static bool sorted_by_name(const hp_labels_t *ls)
{
    for (size_t k = 1; ls && k < ls->n; k++)
        if (hp_str_cmp(ls->v[k - 1].name, ls->v[k].name) > 0)
            return false;
    return true;
}

/* The next label of a sorted list at *k that may become a series label
 * (the last of equal names), or NULL at its end; *k moves past it. */
static const hp_label_t *next_label(const hp_labels_t *ls, size_t *k)
{
    while (ls && *k < ls->n) {
        const hp_label_t *l = &ls->v[(*k)++];
        while (*k < ls->n && hp_str_eq(ls->v[*k].name, l->name))
            l = &ls->v[(*k)++];
        if (!hp_str_eq_c(l->name, HP_LABEL_PROFILE_TYPE) && !hp_str_eq_c(l->name, HP_LABEL_DELTA))
            return l;
    }
    return NULL;
}

/* The smaller name of two labels, either possibly NULL (none). */
static int cmp_heads(const hp_label_t *a, const hp_label_t *b)
{
    if (a == NULL || b == NULL)
        return a == NULL ? (b == NULL ? 0 : 1) : -1;
    return hp_str_cmp(a->name, b->name);
}

void hp_profile_series_labels(const hp_pprof_t *p, uint32_t i, hp_str_t metric, const hp_labels_t *base,
                              const hp_labels_t *group, hp_arena_t *a, hp_labels_t *out)
{
    hp_buf_t id = HP_BUF_INIT;
    hp_profile_type_id(p, i, metric, &id);
    hp_str_t type_id = arena_str(a, (hp_str_t){(char *)id.data, id.len});
    hp_buf_fini(&id);
    if (!sorted_by_name(base) || !sorted_by_name(group)) {
        series_labels_slow(p, i, metric, base, group, type_id, out);
        return;
    }
    /* the reserved labels, in name order; they override base and group */
    const hp_label_t reserved[] = {
        {HP_STR(HP_LABEL_NAME), metric},
        {HP_STR(HP_LABEL_PERIOD_TYPE), hp_pprof_str(p, p->period_type.type)},
        {HP_STR(HP_LABEL_PERIOD_UNIT), hp_pprof_str(p, p->period_type.unit)},
        {HP_STR(HP_LABEL_PROFILE_TYPE), type_id},
        {HP_STR(HP_LABEL_TYPE), hp_pprof_str(p, p->sample_types[i].type)},
        {HP_STR(HP_LABEL_UNIT), hp_pprof_str(p, p->sample_types[i].unit)},
    };
    size_t nr = HP_ARRAY_LEN(reserved), r = 0, kb = 0, kg = 0;
    out->n = 0;
    HP_GROW(out->v, out->cap, base->n + (group ? group->n : 0) + nr);
    const hp_label_t *b = next_label(base, &kb), *g = next_label(group, &kg);
    /* a three-way merge by name: reserved over group over base */
    while (b || g || r < nr) {
        const hp_label_t *head = r < nr ? &reserved[r] : NULL;
        const hp_label_t *low = cmp_heads(b, g) <= 0 ? b : g;
        if (cmp_heads(head, low) <= 0)
            low = head;
        bool take_b = b && hp_str_eq(b->name, low->name), take_g = g && hp_str_eq(g->name, low->name);
        bool take_r = head && hp_str_eq(head->name, low->name);
        out->v[out->n++] = take_r ? *head : take_g ? *g : *b;
        r += take_r;
        if (take_b)
            b = next_label(base, &kb);
        if (take_g)
            g = next_label(group, &kg);
    }
}

/* ---- spans ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool hp_span_id_parse(hp_str_t s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n != 16)
        return false;
    for (size_t i = 0; i < 16; i++) {
        int d = hex_digit(s.p[i]);
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

uint64_t hp_profile_sample_span(const hp_pprof_t *p, const hp_pprof_sample_t *s)
{
    for (uint32_t i = 0; i < s->lab_n; i++) {
        const hp_pprof_label_t *l = &p->labels[s->lab_off + i];
        uint64_t span;
        hp_str_t key = hp_pprof_str(p, l->key);
        /* Pyroscope renames profile_id (the Java agent's) to span_id first */
        bool is_span = hp_str_eq_c(key, "span_id") || hp_str_eq_c(key, "profile_id");
        if (is_span && hp_span_id_parse(hp_pprof_str(p, l->str), &span))
            return span;
    }
    return 0;
}
