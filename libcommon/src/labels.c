/* Label sets: building, sorting, fingerprinting, validation, app names. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hotpath/labels.h"

void hp_labels_init(hp_labels_t *ls)
{
    ls->v = NULL;
    ls->n = ls->cap = 0;
}

void hp_labels_fini(hp_labels_t *ls)
{
    free(ls->v);
    hp_labels_init(ls);
}

void hp_labels_reset(hp_labels_t *ls) { ls->n = 0; }

void hp_labels_add(hp_labels_t *ls, hp_str_t name, hp_str_t value)
{
    HP_GROW(ls->v, ls->cap, ls->n + 1);
    ls->v[ls->n].name = name;
    ls->v[ls->n].value = value;
    ls->n++;
}

void hp_labels_set(hp_labels_t *ls, hp_str_t name, hp_str_t value)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (hp_str_eq(ls->v[i].name, name)) {
            ls->v[i].value = value;
            return;
        }
    }
    hp_labels_add(ls, name, value);
}

void hp_labels_del(hp_labels_t *ls, const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (!hp_str_eq_c(ls->v[i].name, name))
            ls->v[o++] = ls->v[i];
    ls->n = o;
}

void hp_labels_del_empty(hp_labels_t *ls)
{
    size_t o = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].value.n > 0)
            ls->v[o++] = ls->v[i];
    ls->n = o;
}

hp_str_t hp_labels_get(const hp_labels_t *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (hp_str_eq_c(ls->v[i].name, name))
            return ls->v[i].value;
    hp_str_t none = {NULL, 0};
    return none;
}

/* Insertion sort: sets are small (≤ a few dozen) and usually nearly sorted. */
void hp_labels_sort(hp_labels_t *ls)
{
    for (size_t i = 1; i < ls->n; i++) {
        hp_label_t x = ls->v[i];
        size_t j = i;
        while (j > 0 && hp_str_cmp(ls->v[j - 1].name, x.name) > 0) {
            ls->v[j] = ls->v[j - 1];
            j--;
        }
        ls->v[j] = x;
    }
}

void hp_labels_copy(hp_labels_t *dst, const hp_labels_t *src)
{
    dst->n = 0;
    HP_GROW(dst->v, dst->cap, src->n);
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->n = src->n;
}

void hp_labels_clone(hp_labels_t *ls, hp_arena_t *a)
{
    for (size_t i = 0; i < ls->n; i++) {
        hp_label_t *l = &ls->v[i];
        l->name.p = hp_arena_strndup(a, l->name.p, l->name.n);
        l->value.p = hp_arena_strndup(a, l->value.p, l->value.n);
    }
}

uint64_t hp_labels_fingerprint(const hp_labels_t *ls)
{
    /* Chained seeds keep (name, value) boundaries apart without a copy. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < ls->n; i++) {
        h = XXH3_64bits_withSeed(ls->v[i].name.p, ls->v[i].name.n, h ^ 0xff);
        h = XXH3_64bits_withSeed(ls->v[i].value.p, ls->v[i].value.n, h ^ 0xfe);
    }
    return h;
}

/* Go's strconv.Quote for the ASCII cases; other bytes pass through. */
static void put_go_quoted(hp_buf_t *out, hp_str_t s)
{
    hp_buf_putc(out, '"');
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        switch (c) {
        case '"': hp_buf_append(out, "\\\"", 2); break;
        case '\\': hp_buf_append(out, "\\\\", 2); break;
        case '\n': hp_buf_append(out, "\\n", 2); break;
        case '\t': hp_buf_append(out, "\\t", 2); break;
        case '\r': hp_buf_append(out, "\\r", 2); break;
        default:
            if (c < 0x20 || c == 0x7f)
                hp_buf_printf(out, "\\x%02x", c);
            else
                hp_buf_putc(out, (char)c);
        }
    }
    hp_buf_putc(out, '"');
}

void hp_labels_format(const hp_labels_t *ls, hp_buf_t *out)
{
    hp_buf_putc(out, '{');
    for (size_t i = 0; i < ls->n; i++) {
        if (i)
            hp_buf_append(out, ", ", 2);
        hp_buf_append(out, ls->v[i].name.p, ls->v[i].name.n);
        hp_buf_putc(out, '=');
        put_go_quoted(out, ls->v[i].value);
    }
    hp_buf_putc(out, '}');
}

void hp_labels_encode(const hp_labels_t *ls, uint32_t field, hp_buf_t *out)
{
    for (size_t i = 0; i < ls->n; i++) {
        size_t m = hp_pb_begin_len(out, field);
        hp_pb_put_bytes(out, 1, ls->v[i].name.p, ls->v[i].name.n);
        hp_pb_put_bytes(out, 2, ls->v[i].value.p, ls->v[i].value.n);
        hp_pb_end_len(out, m);
    }
}

bool hp_labels_equal(const hp_labels_t *a, const hp_labels_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!hp_str_eq(a->v[i].name, b->v[i].name) || !hp_str_eq(a->v[i].value, b->v[i].value))
            return false;
    return true;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static bool name_valid(hp_str_t s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!name_char(s.p[i], i == 0))
            return false;
    return true;
}

void hp_labels_sanitize_names(hp_labels_t *ls, hp_arena_t *a)
{
    for (size_t i = 0; i < ls->n; i++) {
        hp_str_t nm = ls->v[i].name;
        if (nm.n == 0 || memchr(nm.p, '.', nm.n) == NULL)
            continue;
        char *p = hp_arena_strndup(a, nm.p, nm.n);
        for (size_t k = 0; k < nm.n; k++)
            if (p[k] == '.')
                p[k] = '_';
        ls->v[i].name.p = p;
    }
}

/* hp_err_set with the rule in err->detail. */
#define LABEL_ERR(rule, ...) (hp_err_set(err, HP_EINVAL, __VA_ARGS__), err->detail = (rule), HP_EINVAL)

int hp_labels_validate(const hp_labels_t *ls, const hp_label_limits_t *lim, hp_err_t *err)
{
    hp_str_t svc = hp_labels_get(ls, HP_LABEL_SERVICE_NAME);
    if (ls->n == 0)
        return LABEL_ERR(HP_LABELS_EMISSING, "error at least one label pair is required per profile");
    if (svc.p == NULL || svc.n == 0)
        return LABEL_ERR(HP_LABELS_EMISSING, "invalid labels: service name is not provided");
    if (lim && lim->max_names && ls->n > lim->max_names)
        return LABEL_ERR(HP_LABELS_ETOO_MANY, "profile series has %zu label names; limit %zu", ls->n,
                         lim->max_names);
    for (size_t i = 0; i < ls->n; i++) {
        const hp_label_t *l = &ls->v[i];
        if (lim && lim->max_name_length && l->name.n > lim->max_name_length)
            return LABEL_ERR(HP_LABELS_ENAME_LONG, "label name too long: %zu > %zu: '%.*s…'", l->name.n,
                             lim->max_name_length, (int)HP_MIN(l->name.n, 64), l->name.p);
        if (lim && lim->max_value_length && l->value.n > lim->max_value_length)
            return LABEL_ERR(HP_LABELS_EVALUE_LONG, "label value too long: %zu > %zu for label name '%.*s'",
                             l->value.n, lim->max_value_length, (int)HP_MIN(l->name.n, 128), l->name.p);
        if (!name_valid(l->name))
            return LABEL_ERR(HP_LABELS_EINVALID,
                             "invalid labels: invalid label name '%.*s': names must match "
                             "[a-zA-Z_][a-zA-Z0-9_]* ('.' becomes '_')",
                             (int)HP_MIN(l->name.n, 128), l->name.p);
        if (!hp_utf8_valid(l->value.p, l->value.n))
            return LABEL_ERR(HP_LABELS_EINVALID, "invalid label value for '%.*s': not valid UTF-8",
                             (int)HP_MIN(l->name.n, 128), l->name.p);
        if (i > 0 && hp_str_eq(ls->v[i - 1].name, l->name))
            return LABEL_ERR(HP_LABELS_EDUPLICATE, "duplicate label name '%.*s'", (int)HP_MIN(l->name.n, 128),
                             l->name.p);
    }
    return 0;
}

#undef LABEL_ERR

static hp_str_t trim(hp_str_t s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

static bool app_char(char c)
{
    return name_char(c, false) || c == '.' || c == '/' || c == '-';
}

static bool key_char(char c) { return name_char(c, false) || c == '.'; }

/* Parses "k=v" into labels. */
static int parse_pair(hp_str_t kv, hp_labels_t *labels, hp_err_t *err)
{
    const char *eq = memchr(kv.p, '=', kv.n);
    if (eq == NULL)
        return hp_err_set(err, HP_EINVAL, "invalid name: label '%.*s' has no '='",
                          (int)HP_MIN(kv.n, 128), kv.p);
    hp_str_t k = trim((hp_str_t){kv.p, (size_t)(eq - kv.p)});
    hp_str_t v = trim((hp_str_t){eq + 1, kv.n - (size_t)(eq - kv.p) - 1});
    if (k.n == 0)
        return hp_err_set(err, HP_EINVAL, "invalid name: empty label name");
    bool reserved = k.n > 4 && k.p[0] == '_' && k.p[1] == '_';
    for (size_t i = 0; i < k.n && !reserved; i++)
        if (!key_char(k.p[i]))
            return hp_err_set(err, HP_EINVAL, "invalid name: invalid label name '%.*s'",
                              (int)HP_MIN(k.n, 128), k.p);
    hp_labels_add(labels, k, v);
    return 0;
}

int hp_labels_parse_app_name(hp_str_t s, hp_str_t *app, hp_labels_t *labels, hp_err_t *err)
{
    const char *brace = memchr(s.p, '{', s.n);
    hp_str_t name = trim((hp_str_t){s.p, brace ? (size_t)(brace - s.p) : s.n});
    if (name.n == 0)
        return hp_err_set(err, HP_EINVAL, "invalid name: service name is required");
    for (size_t i = 0; i < name.n; i++)
        if (!app_char(name.p[i]))
            return hp_err_set(err, HP_EINVAL, "invalid name: app name '%.*s' has invalid character '%c'",
                              (int)HP_MIN(name.n, 128), name.p, name.p[i]);
    *app = name;
    if (brace == NULL)
        return 0;
    const char *end = s.p + s.n;
    const char *close = end;
    while (close > brace && close[-1] != '}')
        close--;
    if (close == brace || trim((hp_str_t){close, (size_t)(end - close)}).n != 0)
        return hp_err_set(err, HP_EINVAL, "invalid name: missing closing '}'");
    const char *p = brace + 1, *stop = close - 1;
    while (p < stop) {
        const char *comma = memchr(p, ',', (size_t)(stop - p));
        const char *q = comma ? comma : stop;
        hp_str_t kv = trim((hp_str_t){p, (size_t)(q - p)});
        if (kv.n) {
            int rc = parse_pair(kv, labels, err);
            if (rc)
                return rc;
        }
        p = q + 1;
    }
    return 0;
}
