/*
 * diag: a list of configuration problems, each one line:
 *
 *   profiles/acme.yaml:7:17: source.complete_when.stable_for: "10 sec" is not a duration (use 10s,
 * 5m, 1h)
 *
 * Loaders add every problem they find and keep going, so `wharf check`
 * reports all of them at once.
 */
#ifndef WHARF_DIAG_H
#define WHARF_DIAG_H

#include <stddef.h>

struct diags {
    char **msg;
    int *line, *col; /* where each one is, for sorting */
    size_t n, cap;
};

void diag_add(struct diags *d, const char *file, int line, int col, const char *path,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void diag_free(struct diags *d);
/* Order the entries from index `from` on by line and column (stable). */
void diag_sort(struct diags *d, size_t from);

#endif
