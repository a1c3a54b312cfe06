/*
 * callsite.h — the call site of Pyroscope's StackTraceSelector: the stacks
 * whose frames, read from the root down, begin with a given list of
 * function names. In a flame graph those are the stacks under one node —
 * the subtree a user focuses on.
 *
 * A frame is what a flame graph shows: one per line of a location,
 * outermost (caller) first; a location without lines is its address
 * written "0x…" (as qengine_merge.c names it in trees).
 *
 * The answer is memoized per stack node of one symdb, so a query pays one
 * name comparison per distinct stack node, however many samples share it.
 *
 * Thread-safety: one filter per query thread; the symdb must not change
 * while it is in use (the head's read lock is held).
 */
#ifndef HOTPATH_CALLSITE_H
#define HOTPATH_CALLSITE_H

#include "hotpath/common.h"
#include "hotpath/symdb.h"
#include "types/v1/types.pb-c.h"

/* The most names a call site may have, and the most bytes they may hold
 * together (more is refused with 400). */
#define HP_CALLSITE_MAX 1024
#define HP_CALLSITE_MAX_BYTES (64 * 1024)

typedef struct hp_callsite {
    hp_str_t *names; /* n of them (the array owned, the bytes borrowed); n == 0: every stack matches */
    size_t n;
    const hp_symdb_t *db;
    int32_t *state; /* per stack ID: 0 unknown, -1 diverged, k+1 = k names matched */
    size_t n_state;
    uint32_t *chain; /* scratch: the unmemoized stacks of one lookup */
    size_t chain_cap;
} hp_callsite_t;

/* HP_EINVAL (naming the field) when sts's call site has more than
 * HP_CALLSITE_MAX names or HP_CALLSITE_MAX_BYTES of them; sts may be NULL. */
int hp_callsite_check(const Types__V1__StackTraceSelector *sts, hp_err_t *err) HP_WUR;

/* A filter for the call site names[0..n) (their bytes borrowed: they must
 * outlive it), n ≤ HP_CALLSITE_MAX (more are ignored). */
void hp_callsite_init(hp_callsite_t *c, char *const *names, size_t n);

/* Switches the filter to the stacks of db (forgetting what it knew of the
 * previous symdb). Must be called before hp_callsite_match, and again for
 * every other symdb. */
void hp_callsite_use(hp_callsite_t *c, const hp_symdb_t *db);

/* True when the stack (an ID of the symdb in use) lies under the call
 * site: its first n frames are the n names. Always true for n == 0. */
bool hp_callsite_match(hp_callsite_t *c, uint32_t stack);

void hp_callsite_fini(hp_callsite_t *c);

#endif
