/*
 * rowq: the validating thread puts rows, one inserting thread serves them
 * (see rowq.h).
 *
 * A batch is BATCH_ROWS rows, their values (ncols each) and one text
 * buffer that holds every text value and XPath of its rows, so a batch is
 * three allocations made once and reused.  The text buffer is only grown
 * while the batch is empty (a row larger than it), so the pointers into it
 * stay valid while the batch fills.
 *
 * Locking is one mutex and one condition variable around the list of full
 * batches, the list of free ones and the flags; a batch belongs to exactly
 * one side at a time (the caller while it fills it, the thread while it
 * inserts it) and its contents are only touched by its owner, so the rows
 * themselves need no lock: handing a batch over under the mutex orders its
 * writes before the other side's reads.
 */
#include "load/rowq.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define BATCH_ROWS 1024
#define BATCH_TEXT (128 * 1024) /* text bytes a batch starts with */
#define DEPTH      4            /* batches in all: one filling, one inserting, two queued */

struct batch {
    struct row *rows;
    struct value *vals; /* BATCH_ROWS * ncols */
    char *text;
    size_t n, tlen, tcap;
    bool early; /* early() ran on its rows */
    struct batch *next;
};

struct rowq {
    size_t ncols;
    rowq_fn fn;
    rowq_early_fn early;
    void *ctx;
    struct batch *cur;         /* the caller's, being filled */
    struct batch *head, *tail; /* full, in order, for the thread */
    struct batch *spare;       /* given back by the thread */
    size_t made;               /* batches allocated, at most DEPTH */
    bool started;              /* the thread runs (until joined) */
    bool joined;
    bool solo;   /* no thread could be started: fn runs on the caller's thread */
    bool done;   /* no more batches: the thread drains the list and ends */
    bool stop;   /* rowq_free: the thread ends without inserting the rest */
    bool failed; /* fn failed; err says why (written once, before failed) */
    struct werr err;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static struct batch *batch_new(size_t ncols)
{
    struct batch *b = xcalloc(1, sizeof *b);
    b->rows = xcalloc(BATCH_ROWS, sizeof *b->rows);
    b->vals = xcalloc(BATCH_ROWS * (ncols ? ncols : 1), sizeof *b->vals);
    b->tcap = BATCH_TEXT;
    b->text = xmalloc(b->tcap);
    return b;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->rows);
    free(b->vals);
    free(b->text);
    free(b);
}

/* fn on every row of b; 0, or -1 with fn's error in e. */
static int run_batch(struct rowq *q, struct batch *b, struct werr *e)
{
    for (size_t i = 0; i < b->n; i++)
        if (q->fn(q->ctx, &b->rows[i], b->early, e) < 0)
            return -1;
    return 0;
}

static void *serve(void *arg)
{
    struct rowq *q = arg;
    struct werr e;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->done && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stop || !q->head)
            break;
        struct batch *b = q->head;
        q->head = b->next;
        if (!q->head)
            q->tail = NULL;
        bool skip = q->failed; /* after a failure the rest is dropped */
        pthread_mutex_unlock(&q->mu);
        int r = skip ? 0 : run_batch(q, b, &e);
        pthread_mutex_lock(&q->mu);
        if (r < 0) {
            q->failed = true;
            q->err = e;
        }
        b->n = b->tlen = 0;
        b->early = false;
        b->next = q->spare;
        q->spare = b;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* The thread, with every signal blocked in it (they are the main
 * thread's); when it cannot be made, fn runs on the caller's thread. */
static void start(struct rowq *q)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&q->thread, NULL, serve, q) == 0)
        q->started = true;
    else
        q->solo = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

struct rowq *rowq_new(size_t ncols, rowq_fn fn, rowq_early_fn early, void *ctx)
{
    struct rowq *q = xcalloc(1, sizeof *q);
    q->ncols = ncols;
    q->fn = fn;
    q->early = early;
    q->ctx = ctx;
    q->cur = batch_new(ncols);
    q->made = 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return q;
}

/* fn's failure to the caller (under the mutex, or with no thread). */
static int tell(struct rowq *q, struct werr *e)
{
    *e = q->err;
    return -1;
}

/* The full current batch to the thread, and a free one to fill next
 * (waiting for one when DEPTH are out). */
static int hand_over(struct rowq *q, struct werr *e)
{
    struct batch *b = q->cur;
    int r = 0;
    if (!q->started && !q->solo)
        start(q);
    if (q->solo) {
        if (!q->failed && run_batch(q, b, &q->err) < 0)
            q->failed = true;
        b->n = b->tlen = 0;
        return q->failed ? tell(q, e) : 0;
    }
    q->cur = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->early && !q->spare && q->made >= DEPTH && !q->failed) {
        /* the thread is behind: do its early share here instead of waiting */
        pthread_mutex_unlock(&q->mu);
        for (size_t i = 0; i < b->n; i++)
            q->early(q->ctx, &b->rows[i]);
        b->early = true;
        pthread_mutex_lock(&q->mu);
    }
    b->next = NULL;
    if (q->tail)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    pthread_cond_broadcast(&q->cv);
    while (!q->spare && q->made >= DEPTH && !q->failed)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->failed) {
        r = tell(q, e);
    } else if (q->spare) {
        q->cur = q->spare;
        q->spare = q->cur->next;
        q->cur->next = NULL;
    } else {
        q->made++;
        q->cur = batch_new(q->ncols);
    }
    pthread_mutex_unlock(&q->mu);
    return r;
}

int rowq_put(struct rowq *q, const struct row *row, struct werr *e)
{
    size_t need = row->xpath ? strlen(row->xpath) + 1 : 0;
    struct batch *b = q->cur;
    if (!b) { /* after a failure */
        pthread_mutex_lock(&q->mu);
        tell(q, e);
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    for (size_t i = 0; i < row->n && i < q->ncols; i++)
        if (row->v[i].kind == VAL_TEXT)
            need += row->v[i].len;
    if (b->n == BATCH_ROWS || (b->n && b->tlen + need > b->tcap)) {
        if (hand_over(q, e) < 0)
            return -1;
        b = q->cur;
    }
    if (need > b->tcap) { /* b is empty: nothing points into its text yet */
        b->tcap = need;
        b->text = xrealloc(b->text, b->tcap);
    }
    struct row *r = &b->rows[b->n];
    struct value *v = &b->vals[b->n * q->ncols];
    size_t n = row->n < q->ncols ? row->n : q->ncols;
    *r = *row;
    r->n = n;
    r->v = v;
    for (size_t i = 0; i < n; i++) {
        v[i] = row->v[i];
        if (v[i].kind == VAL_TEXT) {
            if (v[i].len)
                memcpy(b->text + b->tlen, row->v[i].s, v[i].len);
            v[i].s = b->text + b->tlen;
            b->tlen += v[i].len;
        }
    }
    if (row->xpath) {
        size_t x = strlen(row->xpath) + 1;
        memcpy(b->text + b->tlen, row->xpath, x);
        r->xpath = b->text + b->tlen;
        b->tlen += x;
    }
    b->n++;
    return 0;
}

int rowq_finish(struct rowq *q, struct werr *e)
{
    if (q->cur && q->cur->n) {
        if (q->started) {
            pthread_mutex_lock(&q->mu);
            struct batch *b = q->cur;
            q->cur = NULL;
            b->next = NULL;
            if (q->tail)
                q->tail->next = b;
            else
                q->head = b;
            q->tail = b;
            pthread_mutex_unlock(&q->mu);
        } else {
            /* never started: a small load, inserted here and now */
            q->solo = true;
            if (!q->failed && run_batch(q, q->cur, &q->err) < 0)
                q->failed = true;
            q->cur->n = q->cur->tlen = 0;
        }
    }
    if (q->started && !q->joined) {
        pthread_mutex_lock(&q->mu);
        q->done = true;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
        q->joined = true;
    }
    return q->failed ? tell(q, e) : 0;
}

void rowq_free(struct rowq *q)
{
    if (!q)
        return;
    if (q->started && !q->joined) {
        pthread_mutex_lock(&q->mu);
        q->stop = true;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
        q->joined = true;
    }
    batch_free(q->cur);
    while (q->head) {
        struct batch *b = q->head;
        q->head = b->next;
        batch_free(b);
    }
    while (q->spare) {
        struct batch *b = q->spare;
        q->spare = b->next;
        batch_free(b);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
