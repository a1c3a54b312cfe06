/* Unit tests for the worker pool (pool.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "hotpath/pool.h"
#include "test.h"

static void count_job(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Every submitted job runs exactly once by the time stop returns. */
static void test_runs_every_job(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(3, &p) == 0);
    atomic_int n = 0;
    for (int i = 0; i < 10000; i++)
        hp_pool_submit(p, count_job, &n);
    hp_pool_stop(p);
    CHECK_EQ_INT(atomic_load(&n), 10000);
}

static void slow_count_job(void *arg)
{
    usleep(2000);
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Stop right after submitting still runs the queued jobs (drain, not drop). */
static void test_stop_drains_queue(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(2, &p) == 0);
    atomic_int n = 0;
    for (int i = 0; i < 100; i++)
        hp_pool_submit(p, slow_count_job, &n);
    CHECK(hp_pool_pending(p) > 0);
    hp_pool_stop(p);
    CHECK_EQ_INT(atomic_load(&n), 100);
}

typedef struct {
    hp_pool_t *pool;
    atomic_int *n;
    int depth;
} chain_t;

static void chain_job(void *arg)
{
    chain_t *c = arg;
    atomic_fetch_add(c->n, 1);
    if (c->depth > 0) {
        c->depth--;
        hp_pool_submit(c->pool, chain_job, c);
    }
}

/* Jobs that queue more jobs while stop is draining are run too. */
static void test_jobs_submitting_jobs(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(2, &p) == 0);
    atomic_int n = 0;
    chain_t c = {p, &n, 50};
    hp_pool_submit(p, chain_job, &c);
    hp_pool_stop(p);
    CHECK_EQ_INT(atomic_load(&n), 51);
}

typedef struct {
    pthread_barrier_t *barrier;
    atomic_int *n;
} barrier_arg_t;

static void barrier_job(void *arg)
{
    barrier_arg_t *b = arg;
    pthread_barrier_wait(b->barrier);
    atomic_fetch_add(b->n, 1);
}

/* nthreads workers run at once: four jobs meeting at a 4-party barrier can
 * only all finish if four threads run them concurrently. */
static void test_runs_in_parallel(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(4, &p) == 0);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 4);
    atomic_int n = 0;
    barrier_arg_t b = {&barrier, &n};
    for (int i = 0; i < 4; i++)
        hp_pool_submit(p, barrier_job, &b);
    hp_pool_stop(p);
    pthread_barrier_destroy(&barrier);
    CHECK_EQ_INT(atomic_load(&n), 4);
}

typedef struct {
    int order[64];
    int n;
} order_t;

typedef struct {
    order_t *o;
    int id;
} order_arg_t;

static void order_job(void *arg)
{
    order_arg_t *a = arg;
    a->o->order[a->o->n++] = a->id;
}

/* With one worker, jobs run in submission order. */
static void test_fifo_with_one_worker(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(1, &p) == 0);
    order_t o = {{0}, 0};
    order_arg_t args[64];
    for (int i = 0; i < 64; i++) {
        args[i] = (order_arg_t){&o, i};
        hp_pool_submit(p, order_job, &args[i]);
    }
    hp_pool_stop(p);
    REQUIRE(o.n == 64);
    for (int i = 0; i < 64; i++)
        CHECK_EQ_INT(o.order[i], i);
}

static void block_job(void *arg)
{
    atomic_int *gate = arg;
    while (atomic_load(gate) == 0)
        usleep(1000);
}

/* pending counts queued and running jobs and drops to 0 when they finish. */
static void test_pending_counts(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(2, &p) == 0);
    CHECK_EQ_INT(hp_pool_pending(p), 0);
    atomic_int gate = 0;
    for (int i = 0; i < 5; i++)
        hp_pool_submit(p, block_job, &gate);
    CHECK_EQ_INT(hp_pool_pending(p), 5);
    atomic_store(&gate, 1);
    for (int i = 0; i < 2000 && hp_pool_pending(p) != 0; i++)
        usleep(1000);
    CHECK_EQ_INT(hp_pool_pending(p), 0);
    hp_pool_stop(p);
}

/* 0 threads picks a default; stop(NULL) is a no-op. */
static void test_defaults(void)
{
    hp_pool_t *p;
    REQUIRE(hp_pool_start(0, &p) == 0);
    atomic_int n = 0;
    hp_pool_submit(p, count_job, &n);
    hp_pool_stop(p);
    CHECK_EQ_INT(atomic_load(&n), 1);
    hp_pool_stop(NULL);
}

int main(void)
{
    HP_RUN(test_runs_every_job);
    HP_RUN(test_stop_drains_queue);
    HP_RUN(test_jobs_submitting_jobs);
    HP_RUN(test_runs_in_parallel);
    HP_RUN(test_fifo_with_one_worker);
    HP_RUN(test_pending_counts);
    HP_RUN(test_defaults);
    return hp_test_done();
}
