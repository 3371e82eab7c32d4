/*
 * diag: collecting configuration problems (see diag.h).
 */
#include "config/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/xmalloc.h"

void diag_add(struct diags *d, const char *file, int line, int col, const char *path,
              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->msg = xrealloc(d->msg, d->cap * sizeof *d->msg);
    }
    if (line > 0)
        d->msg[d->n++] = xasprintf("%s:%d:%d: %s%s%s", file, line, col, path ? path : "",
                                   path && *path ? ": " : "", msg);
    else
        d->msg[d->n++] = xasprintf("%s: %s%s%s", file, path ? path : "", path && *path ? ": " : "",
                                   msg);
}

void diag_free(struct diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msg[i]);
    free(d->msg);
    d->msg = NULL;
    d->n = d->cap = 0;
}
