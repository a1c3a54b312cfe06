/*
 * pool.h — a fixed pool of worker threads for CPU work (decoding profiles,
 * merging trees) and for blocking calls (RPC fan-out), so the event loop and
 * nng's own threads never do it.
 *
 * Not for: I/O multiplexing (libuv owns that) or timers.
 */
#ifndef HOTPATH_POOL_H
#define HOTPATH_POOL_H

#include "hotpath/common.h"

typedef struct hp_pool hp_pool_t;
typedef void (*hp_pool_fn)(void *arg);

/* Starts nthreads workers (0 = number of CPUs, at least 2). */
int hp_pool_start(size_t nthreads, hp_pool_t **out) HP_WUR;

/* Queues fn(arg) to run on a worker. Thread-safe. Never fails: the queue is
 * unbounded in entries, and callers bound their own concurrency. */
void hp_pool_submit(hp_pool_t *p, hp_pool_fn fn, void *arg);

/* Number of jobs queued or running. */
size_t hp_pool_pending(hp_pool_t *p);

/* Runs fns[i](args[i]) for i < n side by side and returns when all are
 * done. All but the first go to the pool; the caller runs the first, then
 * every one no worker has started yet — so when the pool is saturated (its
 * workers may all be callers like this one) it degrades to running them in
 * turn instead of deadlocking. */
void hp_pool_run_all(hp_pool_t *pool, const hp_pool_fn *fns, void *const *args, size_t n);

/* Runs every queued job, joins the workers and frees the pool. NULL-safe. */
void hp_pool_stop(hp_pool_t *p);

#endif
