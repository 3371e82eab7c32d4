/*
 * sqlwait: see sqlwait.h.  One generation counter under one mutex: a commit
 * or rollback bumps it and wakes every waiter; a waiter reads the counter
 * after its attempt failed and sleeps until it moves or a slice passes.  A
 * commit that lands between the failed attempt and that read, or one that
 * never reaches the WAL hook (a write transaction that changed nothing),
 * costs the waiter at most one slice, never a lost wake-up for good.
 */
#include "util/sqlwait.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define SLICE_NS        (2 * 1000000L)   /* retry a lock held by another process */
#define CHECKPOINT_PAGE 1000             /* SQLite's default autocheckpoint */
#define NEW_WAIT_NS     (100 * 1000000L) /* see on_busy */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static uint64_t generation;
static _Thread_local int64_t wait_start_ns, last_call_ns;

static void init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &a);
    pthread_condattr_destroy(&a);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(void)
{
    pthread_mutex_lock(&mu);
    generation++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Called with the number of times it was called for this lock before. */
static int on_busy(void *arg, int count)
{
    int64_t timeout_ns = (int64_t)(intptr_t)arg * 1000000, t = now_ns(), until;
    struct timespec ts;
    uint64_t seen;

    /* A new wait: count starts at 0 -- except where SQLite does not reset
     * it (a schema load inside sqlite3_prepare), so a call long after this
     * thread's last one (a wait calls again within a slice) starts one too. */
    if (count == 0 || t - last_call_ns > NEW_WAIT_NS)
        wait_start_ns = t;
    last_call_ns = t;
    if (t - wait_start_ns >= timeout_ns)
        return 0;
    until = t + SLICE_NS;
    if (until > wait_start_ns + timeout_ns)
        until = wait_start_ns + timeout_ns;
    ts.tv_sec = until / 1000000000;
    ts.tv_nsec = until % 1000000000;
    pthread_mutex_lock(&mu);
    seen = generation;
    while (generation == seen)
        if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&mu);
    return 1;
}

/* After a commit, its locks released. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)arg;
    wake();
    if (pages >= CHECKPOINT_PAGE)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static void on_rollback(void *arg)
{
    (void)arg;
    wake();
}

void sqlwait_install(sqlite3 *db, int timeout_ms)
{
    pthread_once(&once, init);
    sqlite3_busy_handler(db, on_busy, (void *)(intptr_t)timeout_ms);
    sqlite3_wal_hook(db, on_wal, NULL);
    sqlite3_rollback_hook(db, on_rollback, NULL);
}
