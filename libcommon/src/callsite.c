/* Call-site filtering of stacks (callsite.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpath/callsite.h"

int hp_callsite_check(const Types__V1__StackTraceSelector *sts, hp_err_t *err)
{
    if (sts == NULL)
        return 0;
    if (sts->n_call_site > HP_CALLSITE_MAX)
        return hp_err_set(err, HP_EINVAL, "stack_trace_selector.call_site has %zu locations, at most %d",
                          sts->n_call_site, HP_CALLSITE_MAX);
    size_t bytes = 0;
    for (size_t i = 0; i < sts->n_call_site; i++)
        bytes += sts->call_site[i] && sts->call_site[i]->name ? strlen(sts->call_site[i]->name) : 0;
    if (bytes > HP_CALLSITE_MAX_BYTES)
        return hp_err_set(err, HP_EINVAL,
                          "stack_trace_selector.call_site names %zu bytes of function names, at most %d",
                          bytes, HP_CALLSITE_MAX_BYTES);
    return 0;
}

void hp_callsite_init(hp_callsite_t *c, char *const *names, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->n = HP_MIN(n, (size_t)HP_CALLSITE_MAX);
    c->names = c->n ? hp_xmalloc(c->n * sizeof(hp_str_t)) : NULL;
    for (size_t i = 0; i < c->n; i++)
        c->names[i] = hp_str_c(names[i]);
}

void hp_callsite_use(hp_callsite_t *c, const hp_symdb_t *db)
{
    if (c->n == 0)
        return;
    /* always afresh: a freed symdb's address may come back as another's */
    size_t need = db ? hp_symdb_n_stacks(db) + 1 : 0;
    free(c->state);
    c->db = db;
    c->n_state = need;
    c->state = need ? hp_xcalloc(need, sizeof(int32_t)) : NULL;
}

/* True when frame name equals the call site's name k. */
static bool name_is(const hp_callsite_t *c, size_t k, hp_str_t name)
{
    return hp_str_eq(name, c->names[k]);
}

/* The state after the frames of one location, from state st (k+1 with
 * k < n names matched so far): outermost line first, as the tree grows. */
static int32_t advance(const hp_callsite_t *c, int32_t st, uint32_t loc_id)
{
    const hp_symdb_location_t *loc = hp_symdb_location(c->db, loc_id);
    if (loc->line_n == 0) {
        char buf[32];
        int k = snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)loc->address);
        return name_is(c, (size_t)st - 1, (hp_str_t){buf, (size_t)k}) ? st + 1 : -1;
    }
    const hp_symdb_line_t *lines = hp_symdb_lines(c->db, loc);
    for (uint32_t i = loc->line_n; i-- > 0 && (size_t)st - 1 < c->n;) {
        if (!name_is(c, (size_t)st - 1, hp_symdb_function_name(c->db, lines[i].function)))
            return -1;
        st++;
    }
    return st;
}

bool hp_callsite_match(hp_callsite_t *c, uint32_t stack)
{
    if (c->n == 0)
        return true;
    if (c->state == NULL || stack >= c->n_state)
        return false; /* hp_callsite_use was not called for this symdb */
    size_t len = 0;
    uint32_t s = stack;
    while (s != 0 && c->state[s] == 0) {
        HP_GROW(c->chain, c->chain_cap, len + 1);
        c->chain[len++] = s;
        s = hp_symdb_stack_parent(c->db, s);
    }
    int32_t st = s == 0 ? 1 : c->state[s]; /* the root: nothing matched yet */
    while (len-- > 0) {
        uint32_t id = c->chain[len];
        if (st > 0 && (size_t)st - 1 < c->n)
            st = advance(c, st, hp_symdb_stack_location(c->db, id));
        c->state[id] = st;
    }
    return st > 0 && (size_t)st - 1 == c->n;
}

void hp_callsite_fini(hp_callsite_t *c)
{
    free(c->names);
    free(c->state);
    free(c->chain);
    memset(c, 0, sizeof(*c));
}
