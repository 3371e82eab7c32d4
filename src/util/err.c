/*
 * err: filling struct werr.  Transient-ness is inferred from errno for system
 * errors: ENOSPC, EDQUOT, EAGAIN, EINTR, EBUSY are worth a retry, EIO is not.
 */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void werr_set(struct werr *e, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->transient = false;
}

void werr_sys(struct werr *e, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    size_t n;
    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
    e->transient = saved == ENOSPC || saved == EDQUOT || saved == EAGAIN || saved == EINTR ||
                   saved == EBUSY || saved == EMFILE || saved == ENFILE;
    errno = saved;
}

void werr_prefix(struct werr *e, const char *fmt, ...)
{
    char pre[512], old[sizeof e->msg];
    size_t n;
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    n = strlen(pre);
    memcpy(e->msg, pre, n);
    memcpy(e->msg + n, ": ", 2);
    n += 2;
    size_t rest = strnlen(old, sizeof e->msg - n - 1);
    memcpy(e->msg + n, old, rest);
    e->msg[n + rest] = 0;
}
