/* A helper for the unit tests of call trees (tree.h and what renders
 * them): a stack written "root;child;leaf". */
#ifndef HOTPATH_TEST_TREE_H
#define HOTPATH_TEST_TREE_H

#include <string.h>

#include "hotpath/tree.h"

/* Adds v to the stack of ';'-separated frames, root first (at most 64;
 * "" is the root itself). */
static inline void hp_test_add_stack(hp_tree_t *t, const char *stack, int64_t v)
{
    hp_str_t frames[64];
    size_t n = 0;
    for (const char *p = stack; *p && n < 64;) {
        size_t len = strcspn(p, ";");
        frames[n++] = (hp_str_t){p, len};
        p += len + (p[len] == ';');
    }
    hp_tree_add_stack(t, frames, n, v);
}

#endif
