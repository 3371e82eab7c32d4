/*
 * hashwriter: a two-thread pipeline (see hashwriter.h).  A ring of nbufs
 * slots: the caller takes free slots in order, fills and submits them; the
 * writer thread consumes filled slots in the same order.
 */
#include "util/hashwriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/durable.h"
#include "util/xmalloc.h"

struct slot {
    char *buf;
    size_t len;
    bool filled;
};

struct hashwriter {
    int fd;
    struct sha256 *hash;
    struct slot *slots;
    int n, head, tail; /* caller fills at head, writer drains at tail */
    int err;           /* errno of the first failed write */
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static void *writer(void *arg)
{
    struct hashwriter *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->slots[w->tail].filled && !w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->slots[w->tail].filled && w->done)
            break;
        struct slot *s = &w->slots[w->tail];
        pthread_mutex_unlock(&w->mu);
        int err = 0;
        if (s->len && write_all(w->fd, s->buf, s->len) < 0)
            err = errno;
        else if (s->len && w->hash)
            sha256_update(w->hash, s->buf, s->len);
        pthread_mutex_lock(&w->mu);
        if (err && !w->err)
            w->err = err;
        s->filled = false;
        w->tail = (w->tail + 1) % w->n;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct hashwriter *hashwriter_start(int fd, struct sha256 *hash, size_t bufsize, int nbufs)
{
    struct hashwriter *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->hash = hash;
    w->n = nbufs < 2 ? 2 : nbufs;
    w->slots = xcalloc((size_t)w->n, sizeof *w->slots);
    for (int i = 0; i < w->n; i++)
        w->slots[i].buf = xmalloc(bufsize);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer, w) != 0)
        abort();
    return w;
}

void *hashwriter_buffer(struct hashwriter *w)
{
    void *b;
    pthread_mutex_lock(&w->mu);
    while (w->slots[w->head].filled)
        pthread_cond_wait(&w->cv, &w->mu);
    b = w->slots[w->head].buf;
    pthread_mutex_unlock(&w->mu);
    return b;
}

int hashwriter_submit(struct hashwriter *w, void *buf, size_t len)
{
    int r = 0;
    pthread_mutex_lock(&w->mu);
    if (w->slots[w->head].buf != buf)
        abort(); /* buffers must be submitted in the order they were taken */
    if (w->err) {
        errno = w->err;
        r = -1;
        len = 0; /* after a failure nothing more reaches the file */
    }
    w->slots[w->head].len = len;
    w->slots[w->head].filled = true;
    w->head = (w->head + 1) % w->n;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return r;
}

int hashwriter_finish(struct hashwriter *w)
{
    int err;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    err = w->err;
    for (int i = 0; i < w->n; i++)
        free(w->slots[i].buf);
    free(w->slots);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
