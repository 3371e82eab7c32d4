/*
 * periodic: a background thread that does a job when it is due and sleeps
 * in between, and stops promptly when asked (the archive audit and the
 * scheduled reconcile are two).
 *
 * fn runs on the thread over and over: it does what is due and returns how
 * many ms to wait before it is called again (it is called again at least
 * once a minute, so a clock jump is noticed).  periodic_stopping tells a
 * long fn to give up early.
 */
#ifndef WHARF_PERIODIC_H
#define WHARF_PERIODIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct periodic {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop; /* also a verify_opts.stop flag */
    int64_t (*fn)(void *arg);
    void (*done)(void *arg); /* on the thread, after the last fn; may be NULL */
    void *arg;
};

/* 0, or -1 (errno) when the thread could not start. */
int periodic_start(struct periodic *p, int64_t (*fn)(void *arg), void (*done)(void *arg),
                   void *arg);
bool periodic_stopping(struct periodic *p);
/* Asks the thread to stop, waits for it, releases p. */
void periodic_stop(struct periodic *p);

#endif
