/*
 * err: the caller-supplied error of library-style code.
 *
 * A function that can fail returns -1 (or NULL) and fills a struct werr with
 * one line of context ("work/01J.../data.csv: fsync: Input/output error")
 * and a kind.  It never prints and never exits; the caller decides what to do.
 *
 * The kind is set where the error is made: from errno (werr_sys), from a
 * libssh2 / SFTP status code (source/ssh.c, source/sftp.c) or an SQLite
 * result code (ledger, target).  One table (err.c) says, per kind, whether a
 * retry may help and which runbook page an operator reads.  Nothing ever
 * looks at the message text to decide anything.
 */
#ifndef WHARF_ERR_H
#define WHARF_ERR_H

#include <stdbool.h>

/* A closed set: every kind has a row in err.c's table.  Add a row there when
 * adding one here (a unit test checks that every kind has one). */
enum werr_kind {
    WERR_OTHER = 0,     /* not classified: permanent; replay once fixed */
    WERR_NOSPACE,       /* ENOSPC, EDQUOT, SQLITE_FULL, SFTP no space / quota */
    WERR_IO,            /* EIO, SQLITE_IOERR, a failed fsync: the disk failed */
    WERR_BUSY,          /* a local resource for now: EAGAIN, EINTR, EMFILE, ledger busy */
    WERR_HOSTKEY,       /* SFTP host key unknown, changed, or known_hosts unusable */
    WERR_AUTH,          /* the server refused our key / password, or no usable credential */
    WERR_UNREACHABLE,   /* resolve, connect, key exchange, connection lost; spool dir missing */
    WERR_TIMEOUT,       /* the peer stopped answering within `timeout` */
    WERR_REMOTE,        /* the SFTP server refused an operation (no such file, denied) */
    WERR_HOSTILE,       /* the source sent something we refuse: bad name, lying size */
    WERR_TOO_BIG,       /* a configured limit was hit (limits.max_bytes, ...) */
    WERR_TARGET_LOCKED, /* the target is locked by someone else (SQLITE_BUSY/LOCKED) */
    WERR_TARGET_DOWN,   /* the target is missing, read-only, corrupt, or its table is wrong */
    WERR_SCHEMA,        /* the data does not match the profile's schema */
    WERR_ENCODING,      /* the bytes are not in the expected / a detectable encoding */
    WERR_CORRUPT,       /* stored bytes do not match their recorded checksum */
    WERR_CONFIG,        /* wharf.yaml, a profile or a schema file is wrong */
    WERR_TARGET_UNAVAILABLE, /* a target server refuses now: down, refused, auth failed,
                                read-only (standby), shutting down */
    WERR_DUPLICATE,          /* the content was already loaded (a reject, not a failure) */
    WERR_INTERRUPTED,        /* stopped at shutdown; resumes at the next start */
    WERR_CONTROL,            /* the partner's control totals disagree with the data (a reject) */
    /* Delivering to a partner's server (outbound, receipts): load/sftp_push.c */
    WERR_DELIVERY_UNREACHABLE, /* cannot reach it, connection lost, timed out */
    WERR_DELIVERY_NOSPACE,     /* its disk or our quota there is full */
    WERR_DELIVERY_REFUSED,     /* host key, credentials, or an operation refused (permissions, no
                                  such directory, a size that does not match after the upload) */
    WERR_DELIVERY_EXISTS,      /* a file of that name is there already and is not ours: kept */
    WERR_KIND_COUNT
};

struct werr {
    char msg[1024];
    enum werr_kind kind;
    /* Derived from kind by every setter (werr_transient(e) says the same);
     * kept for readers.  Never set it by hand: pick the kind instead. */
    bool transient;
};

/* A message with kind WERR_OTHER. */
void werr_set(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message with an explicit kind. */
void werr_setk(struct werr *e, enum werr_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like werr_set, appending ": strerror(errno)"; the kind comes from errno
 * (werr_kind_errno). */
void werr_sys(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like werr_sys with an explicit kind, except that a full disk (ENOSPC,
 * EDQUOT) stays WERR_NOSPACE and EIO stays WERR_IO whatever the caller says. */
void werr_sysk(struct werr *e, enum werr_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with more context; the kind is kept. */
void werr_prefix(struct werr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Re-classify an error already filled (e.g. a helper's error seen from the
 * caller, who knows it was the target that failed). */
void werr_setkind(struct werr *e, enum werr_kind kind);

/* The table. */
enum werr_kind werr_kind_errno(int err);
/* The kind of an SQLite result code: SQLITE_FULL no space, SQLITE_IOERR io,
 * SQLITE_NOMEM busy, SQLITE_BUSY / SQLITE_LOCKED `locked` (the target or the
 * ledger, as the caller knows), anything else `other`. */
enum werr_kind werr_kind_sqlite(int rc, enum werr_kind locked, enum werr_kind other);
bool werr_kind_transient(enum werr_kind k);
const char *werr_kind_runbook(enum werr_kind k); /* "runbooks/disk-full.md" */
const char *werr_kind_name(enum werr_kind k);    /* "no_space" */
bool werr_transient(const struct werr *e);
const char *werr_runbook(const struct werr *e);

#endif
