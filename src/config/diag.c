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
        d->line = xrealloc(d->line, d->cap * sizeof *d->line);
        d->col = xrealloc(d->col, d->cap * sizeof *d->col);
    }
    d->line[d->n] = line;
    d->col[d->n] = col;
    if (line > 0)
        d->msg[d->n++] = xasprintf("%s:%d:%d: %s%s%s", file, line, col, path ? path : "",
                                   path && *path ? ": " : "", msg);
    else
        d->msg[d->n++] =
            xasprintf("%s: %s%s%s", file, path ? path : "", path && *path ? ": " : "", msg);
}

void diag_free(struct diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msg[i]);
    free(d->msg);
    free(d->line);
    free(d->col);
    d->msg = NULL;
    d->line = d->col = NULL;
    d->n = d->cap = 0;
}

void diag_sort(struct diags *d, size_t from)
{
    /* Insertion sort: a handful of entries, and it is stable. */
    for (size_t i = from + 1; i < d->n; i++) {
        char *m = d->msg[i];
        int l = d->line[i], c = d->col[i];
        size_t j = i;
        while (j > from && (d->line[j - 1] > l || (d->line[j - 1] == l && d->col[j - 1] > c))) {
            d->msg[j] = d->msg[j - 1];
            d->line[j] = d->line[j - 1];
            d->col[j] = d->col[j - 1];
            j--;
        }
        d->msg[j] = m;
        d->line[j] = l;
        d->col[j] = c;
    }
}
