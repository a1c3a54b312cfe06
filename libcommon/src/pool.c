/* Worker pool: a mutex + condvar guarded FIFO of job nodes, drained by a
 * fixed set of pthreads. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "hotpath/log.h"
#include "hotpath/pool.h"

typedef struct pool_job {
    struct pool_job *next;
    hp_pool_fn fn;
    void *arg;
} pool_job_t;

struct hp_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a job is queued or stop begins */
    pool_job_t *head, *tail;
    size_t pending; /* queued + running */
    bool stopping;
    pthread_t *threads;
    size_t nthreads; /* threads actually started */
};

/* The default worker count: the online CPUs, at least 2. */
static size_t default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 2 ? (size_t)n : 2;
}

/* Pops the oldest job; the caller holds p->mu. NULL when the queue is empty. */
static pool_job_t *queue_pop(hp_pool_t *p)
{
    pool_job_t *j = p->head;
    if (j != NULL) {
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
    }
    return j;
}

/* A worker: runs jobs until the queue is empty and stop has begun. */
static void *worker_main(void *arg)
{
    hp_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        pool_job_t *j = queue_pop(p);
        if (j == NULL) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->pending--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int hp_pool_start(size_t nthreads, hp_pool_t **out)
{
    hp_pool_t *p = hp_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    size_t want = nthreads ? nthreads : default_threads();
    p->threads = hp_xcalloc(want, sizeof(*p->threads));
    for (; p->nthreads < want; p->nthreads++) {
        int rc = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        if (rc != 0) {
            HP_ERROR("cannot start worker thread", "started=%zu wanted=%zu errno=%d", p->nthreads, want, rc);
            hp_pool_stop(p);
            *out = NULL;
            return HP_EINTERNAL;
        }
    }
    *out = p;
    return 0;
}

void hp_pool_submit(hp_pool_t *p, hp_pool_fn fn, void *arg)
{
    pool_job_t *j = hp_xmalloc(sizeof(*j));
    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->pending++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

size_t hp_pool_pending(hp_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Runs whatever is still queued on the calling thread: only reachable when
 * no worker could be started. */
static void run_leftovers(hp_pool_t *p)
{
    pool_job_t *j;
    while ((j = queue_pop(p)) != NULL) {
        j->fn(j->arg);
        free(j);
        p->pending--;
    }
}

void hp_pool_stop(hp_pool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* Workers leave only once the queue is empty, so this drains it. */
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    run_leftovers(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

/* ---- running a few jobs side by side ---- */

enum { TASK_QUEUED, TASK_RUNNING, TASK_DONE };

typedef struct task_group task_group_t;

typedef struct task {
    task_group_t *g;
    hp_pool_fn fn;
    void *arg;
    int state; /* under g->mu */
} task_t;

/* Heap-allocated: a pool job may run after its caller has returned (when
 * the caller ran the task itself), so the last of them frees it. */
struct task_group {
    pthread_mutex_t mu;
    pthread_cond_t done;
    int refs; /* the caller + pool jobs that have not run yet */
    task_t t[]; /* flexible: one per job */
};

/* Takes task t for the calling thread, unless someone already has. */
static bool task_claim(task_t *t)
{
    pthread_mutex_lock(&t->g->mu);
    bool mine = t->state == TASK_QUEUED;
    if (mine)
        t->state = TASK_RUNNING;
    pthread_mutex_unlock(&t->g->mu);
    return mine;
}

/* Runs a claimed task and says it is done. */
static void task_run(task_t *t)
{
    t->fn(t->arg);
    pthread_mutex_lock(&t->g->mu);
    t->state = TASK_DONE;
    pthread_cond_broadcast(&t->g->done);
    pthread_mutex_unlock(&t->g->mu);
}

static void group_unref(task_group_t *g)
{
    pthread_mutex_lock(&g->mu);
    int left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left > 0)
        return;
    pthread_cond_destroy(&g->done);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* A pool job: runs its task unless the caller took it over meanwhile. */
static void task_job(void *arg)
{
    task_t *t = arg;
    task_group_t *g = t->g;
    if (task_claim(t))
        task_run(t);
    group_unref(g);
}

void hp_pool_run_all(hp_pool_t *pool, const hp_pool_fn *fns, void *const *args, size_t n)
{
    if (n == 0)
        return;
    task_group_t *g = hp_xcalloc(1, sizeof(*g) + n * sizeof(task_t));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->done, NULL);
    g->refs = (int)n; /* the caller, and one per pool job (n - 1) */
    for (size_t i = 0; i < n; i++)
        g->t[i] = (task_t){g, fns[i], args[i], TASK_QUEUED};
    for (size_t i = 1; i < n; i++)
        hp_pool_submit(pool, task_job, &g->t[i]);
    for (size_t i = 0; i < n; i++)
        if (task_claim(&g->t[i]))
            task_run(&g->t[i]);
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < n; i++)
        while (g->t[i].state != TASK_DONE)
            pthread_cond_wait(&g->done, &g->mu);
    pthread_mutex_unlock(&g->mu);
    group_unref(g);
}

