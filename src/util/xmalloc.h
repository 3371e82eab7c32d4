/*
 * xmalloc: allocation that never returns NULL.
 *
 * Policy for all of wharf (as in Postfix, OpenSSH and Redis): running out of
 * memory is not a condition we recover from; the process logs and aborts, and
 * the ledger lets the next start resume every intake from its last state.
 */
#ifndef WHARF_XMALLOC_H
#define WHARF_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
