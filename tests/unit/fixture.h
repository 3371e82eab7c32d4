/*
 * fixture.h: running a test fixture script (tests/lib/sshd.sh, pg.sh) from a
 * cmocka test: run() its exit status, capture() its output.  Header-only,
 * for the unit tests that start a real server.
 */
#ifndef WHARF_TEST_FIXTURE_H
#define WHARF_TEST_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "util/xmalloc.h"

/* The shell command's exit status (128 when it did not exit). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The shell command's output, trailing newlines cut (caller frees; "" when
 * it could not run). */
static char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static char *capture(const char *fmt, ...)
{
    char cmd[4096], buf[8192];
    va_list ap;
    size_t n;
    FILE *f;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    f = popen(cmd, "r");
    if (!f)
        return xstrdup("");
    n = fread(buf, 1, sizeof buf - 1, f);
    pclose(f);
    buf[n] = 0;
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    return xstrdup(buf);
}

#endif
