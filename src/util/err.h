/*
 * err: the caller-supplied error of library-style code.
 *
 * A function that can fail returns -1 (or NULL) and fills a struct werr with
 * one line of context ("work/01J.../data.csv: fsync: Input/output error").
 * It never prints and never exits; the caller decides what to do.
 * `transient` marks failures worth retrying (locked database, disk full).
 */
#ifndef WHARF_ERR_H
#define WHARF_ERR_H

#include <stdbool.h>

struct werr {
    char msg[1024];
    bool transient;
};

void werr_set(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like werr_set, appending ": strerror(errno)". */
void werr_sys(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the existing message with more context. */
void werr_prefix(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
