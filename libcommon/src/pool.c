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
