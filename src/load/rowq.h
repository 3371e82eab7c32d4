/*
 * rowq: hands typed rows from the thread that validates them to one thread
 * that inserts them, in order, through a bounded queue of batches.
 *
 * The caller (a target's insert) puts rows; each is copied into the
 * current batch (values, text and XPath), so the validator's buffers may
 * change as soon as rowq_put returns.  A full batch goes to the queue; the
 * inserting thread calls fn on each of its rows, in order, and gives the
 * batch back.  At most `depth` batches exist, so memory is bounded whatever
 * the file's size; a producer that is ahead waits for a free batch.
 *
 * The thread starts only when the first batch fills: a load smaller than
 * one batch runs fn on the caller's thread in rowq_finish, as if there were
 * no queue.
 *
 * Work that may be done on either side (a digest of the rows, in any
 * order): early, when not NULL, is called by the putting thread on every
 * row of a full batch it hands over while the queue is full, the time it
 * would otherwise spend waiting; fn is then told that row was done early.
 * Whichever thread is ahead takes that share.
 *
 * fn's first failure stops the inserts: its error is returned by the next
 * rowq_put that hands over a batch, else by rowq_finish; the rows queued
 * behind it are dropped.  Whatever fn touches (a database connection) is
 * the inserting thread's between the first put and rowq_finish or
 * rowq_free, which both return only when that thread is done with it.
 */
#ifndef WHARF_ROWQ_H
#define WHARF_ROWQ_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"
#include "validate/validate.h"

struct rowq;

typedef int (*rowq_fn)(void *ctx, const struct row *row, bool early, struct werr *e);
typedef void (*rowq_early_fn)(void *ctx, const struct row *row);

/* A queue for rows of ncols values each, served by fn(ctx, row, ..); early
 * may be NULL. */
struct rowq *rowq_new(size_t ncols, rowq_fn fn, rowq_early_fn early, void *ctx);
/* Copies row in; -1 with the inserting thread's error once fn failed. */
int rowq_put(struct rowq *q, const struct row *row, struct werr *e);
/* Every row put through fn, then the thread ends: 0, or fn's first error. */
int rowq_finish(struct rowq *q, struct werr *e);
/* Stops the thread (rows not yet inserted are dropped) and frees q. */
void rowq_free(struct rowq *q);

#endif
