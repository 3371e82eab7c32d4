/*
 * err: filling struct werr, and the one table from an error's kind to
 * transient/permanent and to the runbook an operator reads.  errno values
 * map to kinds in werr_kind_errno, SQLite result codes in werr_kind_sqlite
 * (the ledger and the SQLite target say what "locked" means for them);
 * libssh2 and SFTP codes map in source/ssh.c.
 */
#include "util/err.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * transient: a later attempt may succeed without anyone changing anything
 * (a lock is released, space is freed, the network comes back); the step is
 * retried with backoff up to retry.max_attempts.  Permanent: a person must
 * act first (trust a key, fix a password, fix the file); the intake fails at
 * once and is replayed after the fix.
 */
static const struct {
    const char *name;
    bool transient;
    const char *runbook;
} kinds[WERR_KIND_COUNT] = {
    [WERR_OTHER] = {"error", false, "runbooks/replay.md"},
    [WERR_NOSPACE] = {"no_space", true, "runbooks/disk-full.md"},
    [WERR_IO] = {"io", false, "runbooks/disk-full.md"},
    [WERR_BUSY] = {"busy", true, "runbooks/stuck-file.md"},
    [WERR_HOSTKEY] = {"host_key", false, "runbooks/host-key-changed.md"},
    [WERR_AUTH] = {"auth", false, "runbooks/auth-refused.md"},
    [WERR_UNREACHABLE] = {"unreachable", true, "runbooks/source-unreachable.md"},
    [WERR_TIMEOUT] = {"timeout", true, "runbooks/source-unreachable.md"},
    [WERR_REMOTE] = {"remote", false, "runbooks/source-unreachable.md"},
    [WERR_HOSTILE] = {"hostile", false, "runbooks/stuck-file.md"},
    [WERR_TOO_BIG] = {"too_big", false, "runbooks/limits.md"},
    [WERR_TARGET_LOCKED] = {"target_locked", true, "runbooks/target-down.md"},
    [WERR_TARGET_DOWN] = {"target_down", false, "runbooks/target-down.md"},
    [WERR_SCHEMA] = {"schema", false, "runbooks/schema-reject.md"},
    [WERR_ENCODING] = {"encoding", false, "runbooks/encoding-changed.md"},
    [WERR_CORRUPT] = {"corrupt", false, "runbooks/verify-tamper.md"},
    [WERR_CONFIG] = {"config", false, "runbooks/README.md"},
    [WERR_TARGET_UNAVAILABLE] = {"target_unavailable", true, "runbooks/target-down.md"},
    [WERR_DUPLICATE] = {"duplicate", false, "runbooks/duplicates-flood.md"},
    [WERR_INTERRUPTED] = {"interrupted", true, "runbooks/stuck-file.md"},
    [WERR_CONTROL] = {"control", false, "runbooks/control-total.md"},
    [WERR_DELIVERY_UNREACHABLE] = {"delivery_unreachable", true, "runbooks/delivery-failed.md"},
    [WERR_DELIVERY_NOSPACE] = {"delivery_no_space", true, "runbooks/delivery-failed.md"},
    [WERR_DELIVERY_REFUSED] = {"delivery_refused", false, "runbooks/delivery-failed.md"},
    [WERR_DELIVERY_EXISTS] = {"delivery_exists", false, "runbooks/delivery-failed.md"},
};

static enum werr_kind valid(enum werr_kind k)
{
    return (unsigned)k < WERR_KIND_COUNT ? k : WERR_OTHER;
}

enum werr_kind werr_kind_errno(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return WERR_NOSPACE;
    case EIO:
        return WERR_IO;
    case EAGAIN:
    case EINTR:
    case EBUSY:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        return WERR_BUSY;
    case ETIMEDOUT:
        return WERR_TIMEOUT;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EPIPE:
        return WERR_UNREACHABLE;
    default:
        return WERR_OTHER;
    }
}

enum werr_kind werr_kind_sqlite(int rc, enum werr_kind locked, enum werr_kind other)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return WERR_NOSPACE;
    case SQLITE_IOERR:
        return WERR_IO;
    case SQLITE_NOMEM:
        return WERR_BUSY;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return locked;
    default:
        return other;
    }
}

bool werr_kind_transient(enum werr_kind k)
{
    return kinds[valid(k)].transient;
}

const char *werr_kind_runbook(enum werr_kind k)
{
    return kinds[valid(k)].runbook;
}

const char *werr_kind_name(enum werr_kind k)
{
    return kinds[valid(k)].name;
}

bool werr_transient(const struct werr *e)
{
    return werr_kind_transient(e->kind);
}

const char *werr_runbook(const struct werr *e)
{
    return werr_kind_runbook(e->kind);
}

void werr_setkind(struct werr *e, enum werr_kind kind)
{
    if (!e)
        return;
    e->kind = valid(kind);
    e->transient = kinds[e->kind].transient;
}

static void vset(struct werr *e, enum werr_kind kind, const char *fmt, va_list ap)
{
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    werr_setkind(e, kind);
}

void werr_set(struct werr *e, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vset(e, WERR_OTHER, fmt, ap);
    va_end(ap);
}

void werr_setk(struct werr *e, enum werr_kind kind, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vset(e, kind, fmt, ap);
    va_end(ap);
}

static void vsys(struct werr *e, enum werr_kind kind, int saved, const char *fmt, va_list ap)
{
    size_t n;
    vset(e, kind, fmt, ap);
    n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
}

void werr_sys(struct werr *e, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vsys(e, werr_kind_errno(saved), saved, fmt, ap);
    va_end(ap);
    errno = saved;
}

void werr_sysk(struct werr *e, enum werr_kind kind, const char *fmt, ...)
{
    int saved = errno;
    enum werr_kind from = werr_kind_errno(saved);
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vsys(e, from == WERR_NOSPACE || from == WERR_IO ? from : kind, saved, fmt, ap);
    va_end(ap);
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
