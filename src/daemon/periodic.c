/*
 * periodic: see periodic.h.  The wait is a timed condition wait, so
 * periodic_stop wakes a sleeping thread at once.
 */
#include "daemon/periodic.h"

#include <errno.h>
#include <time.h>

#define WAIT_MAX_MS 60000

static void *run(void *arg)
{
    struct periodic *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        int64_t wait = p->fn(p->arg);
        pthread_mutex_lock(&p->mu);
        if (p->stop || wait <= 0)
            continue;
        if (wait > WAIT_MAX_MS)
            wait = WAIT_MAX_MS;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    if (p->done)
        p->done(p->arg);
    return NULL;
}

int periodic_start(struct periodic *p, int64_t (*fn)(void *arg), void (*done)(void *arg), void *arg)
{
    int rc;
    p->stop = 0;
    p->fn = fn;
    p->done = done;
    p->arg = arg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if ((rc = pthread_create(&p->thread, NULL, run, p)) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        errno = rc;
        return -1;
    }
    return 0;
}

bool periodic_stopping(struct periodic *p)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stop != 0;
    pthread_mutex_unlock(&p->mu);
    return s;
}

void periodic_stop(struct periodic *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}
