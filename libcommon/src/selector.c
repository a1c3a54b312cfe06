/* PromQL-style label selectors and profile type IDs. */
#include <stdlib.h>
#include <string.h>

#include "hotpath/buf.h"
#include "hotpath/selector.h"

typedef struct cursor {
    const char *p, *start, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int fail(cursor_t *c, hp_err_t *err, const char *what)
{
    return hp_err_set(err, HP_EINVAL, "parse error in label selector at char %zu: %s",
                      (size_t)(c->p - c->start) + 1, what);
}

static bool ident_char(char ch, bool first)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

static int parse_name(cursor_t *c, char **out, hp_err_t *err)
{
    const char *s = c->p;
    while (c->p < c->end && ident_char(*c->p, c->p == s))
        c->p++;
    if (c->p == s)
        return fail(c, err, "expected a label name");
    *out = hp_xstrndup(s, (size_t)(c->p - s));
    return 0;
}

static int parse_op(cursor_t *c, hp_match_op_t *op, hp_err_t *err)
{
    size_t left = (size_t)(c->end - c->p);
    if (left >= 2 && c->p[0] == '=' && c->p[1] == '~') {
        *op = HP_MATCH_RE, c->p += 2;
    } else if (left >= 2 && c->p[0] == '!' && c->p[1] == '=') {
        *op = HP_MATCH_NEQ, c->p += 2;
    } else if (left >= 2 && c->p[0] == '!' && c->p[1] == '~') {
        *op = HP_MATCH_NRE, c->p += 2;
    } else if (left >= 1 && c->p[0] == '=') {
        *op = HP_MATCH_EQ, c->p += 1;
    } else {
        return fail(c, err, "expected one of =, !=, =~, !~");
    }
    return 0;
}

/* A PromQL string: "…" or '…' with backslash escapes, or `…` raw. */
static int parse_string(cursor_t *c, char **out, hp_err_t *err)
{
    if (c->p >= c->end || (*c->p != '"' && *c->p != '\'' && *c->p != '`'))
        return fail(c, err, "expected a quoted label value");
    char q = *c->p++;
    hp_buf_t b = HP_BUF_INIT;
    while (c->p < c->end && *c->p != q) {
        char ch = *c->p++;
        if (ch == '\\' && q != '`') {
            if (c->p >= c->end)
                break;
            char e = *c->p++;
            switch (e) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case '\\': case '"': case '\'': ch = e; break;
            default:
                hp_buf_fini(&b);
                return fail(c, err, "unknown escape sequence in label value");
            }
        }
        hp_buf_putc(&b, ch);
    }
    if (c->p >= c->end) {
        hp_buf_fini(&b);
        return fail(c, err, "unterminated label value");
    }
    c->p++;
    hp_buf_cstr(&b);
    *out = (char *)hp_buf_take(&b, NULL);
    if (*out == NULL)
        *out = hp_xstrdup("");
    return 0;
}

/* Compiles a regex matcher's value, which starts at char value_at of the
 * selector (for the error's position). */
static int compile_regex(cursor_t *c, hp_matcher_t *m, size_t value_at, hp_err_t *err)
{
    size_t bad_at;
    hp_err_t why;
    if (hp_regex_compile(m->value, &m->re, &bad_at, &why) == 0)
        return 0;
    return hp_err_set(err, HP_EINVAL, "invalid regex for label '%s' at char %zu of the selector: %s", m->name,
                      value_at + 2 + bad_at, why.msg);
}

static int parse_matcher(cursor_t *c, hp_selector_t *sel, hp_err_t *err)
{
    hp_matcher_t m = {NULL, NULL, HP_MATCH_EQ, NULL};
    int rc = parse_name(c, &m.name, err);
    if (rc == 0) {
        skip_ws(c);
        rc = parse_op(c, &m.op, err);
    }
    size_t value_at = (size_t)(c->p - c->start);
    if (rc == 0) {
        skip_ws(c);
        value_at = (size_t)(c->p - c->start);
        rc = parse_string(c, &m.value, err);
    }
    if (rc == 0 && (m.op == HP_MATCH_RE || m.op == HP_MATCH_NRE))
        rc = compile_regex(c, &m, value_at, err);
    if (rc != 0) {
        free(m.name);
        free(m.value);
        hp_regex_free(m.re);
        return rc;
    }
    sel->m = hp_xrealloc(sel->m, (sel->n + 1) * sizeof(*sel->m));
    sel->m[sel->n++] = m;
    return 0;
}

static int parse_braces(cursor_t *c, hp_selector_t *sel, hp_err_t *err)
{
    skip_ws(c);
    if (c->p >= c->end)
        return 0;
    if (*c->p != '{')
        return fail(c, err, "expected '{'");
    c->p++;
    skip_ws(c);
    while (c->p < c->end && *c->p != '}') {
        int rc = parse_matcher(c, sel, err);
        if (rc)
            return rc;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            skip_ws(c);
        } else if (c->p < c->end && *c->p != '}') {
            return fail(c, err, "expected ',' or '}'");
        }
    }
    if (c->p >= c->end)
        return fail(c, err, "missing closing '}'");
    c->p++;
    skip_ws(c);
    if (c->p != c->end)
        return fail(c, err, "unexpected text after '}'");
    return 0;
}

int hp_selector_parse(hp_str_t s, hp_selector_t *sel, hp_err_t *err)
{
    cursor_t c = {s.p, s.p, s.p + s.n};
    sel->m = NULL;
    sel->n = 0;
    int rc = parse_braces(&c, sel, err);
    if (rc)
        hp_selector_fini(sel);
    return rc;
}

int hp_selector_parse_query(hp_str_t s, char **profile_type, hp_selector_t *sel, hp_err_t *err)
{
    const char *brace = s.n ? memchr(s.p, '{', s.n) : NULL;
    hp_str_t id = {s.p, brace ? (size_t)(brace - s.p) : s.n};
    while (id.n && id.p[0] == ' ')
        id.p++, id.n--;
    while (id.n && id.p[id.n - 1] == ' ')
        id.n--;
    hp_profile_type_t pt;
    *profile_type = NULL;
    if (hp_profile_type_parse(id, &pt, NULL) != 0)
        return hp_err_set(err, HP_EINVAL, "query must contain a profile-type selection: got '%.*s'",
                          (int)HP_MIN(id.n, 200), id.p);
    hp_str_t rest = {brace ? brace : s.p + s.n, brace ? s.n - (size_t)(brace - s.p) : 0};
    int rc = hp_selector_parse(rest, sel, err);
    if (rc)
        return rc;
    *profile_type = hp_xstrndup(id.p, id.n);
    return 0;
}

void hp_selector_fini(hp_selector_t *sel)
{
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->m[i].name);
        free(sel->m[i].value);
        hp_regex_free(sel->m[i].re);
    }
    free(sel->m);
    sel->m = NULL;
    sel->n = 0;
}

bool hp_selector_matches(const hp_selector_t *sel, const hp_labels_t *ls)
{
    for (size_t i = 0; i < sel->n; i++) {
        const hp_matcher_t *m = &sel->m[i];
        hp_str_t v = hp_labels_get(ls, m->name);
        if (m->op == HP_MATCH_RE || m->op == HP_MATCH_NRE) {
            if (hp_regex_match(m->re, v.n ? v.p : "", v.n) != (m->op == HP_MATCH_RE))
                return false;
            continue;
        }
        bool eq = hp_str_eq_c(v, m->value);
        if ((m->op == HP_MATCH_EQ && !eq) || (m->op == HP_MATCH_NEQ && eq))
            return false;
    }
    return true;
}

const char *hp_selector_eq_value(const hp_selector_t *sel, const char *name)
{
    for (size_t i = 0; i < sel->n; i++)
        if (sel->m[i].op == HP_MATCH_EQ && strcmp(sel->m[i].name, name) == 0)
            return sel->m[i].value;
    return NULL;
}

int hp_profile_type_parse(hp_str_t id, hp_profile_type_t *pt, hp_err_t *err)
{
    hp_str_t parts[7];
    size_t n = 0;
    const char *p = id.p, *end = id.p + id.n;
    /* one slot past 6 so that a seventh part is seen and refused */
    while (n < 7 && id.n) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *q = colon ? colon : end;
        parts[n++] = (hp_str_t){p, (size_t)(q - p)};
        if (!colon)
            break;
        p = colon + 1;
    }
    if (n != 5 && n != 6)
        return hp_err_set(err, HP_EINVAL,
                          "profile type must be name:sample_type:sample_unit:period_type:period_unit, got '%.*s'",
                          (int)HP_MIN(id.n, 200), id.p);
    if (parts[0].n == 0 || parts[1].n == 0)
        return hp_err_set(err, HP_EINVAL, "profile type '%.*s' has an empty name or sample type",
                          (int)HP_MIN(id.n, 200), id.p);
    pt->name = parts[0];
    pt->sample_type = parts[1];
    pt->sample_unit = parts[2];
    pt->period_type = parts[3];
    pt->period_unit = parts[4];
    return 0;
}
