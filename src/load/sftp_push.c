/*
 * sftp_push: upload to a partner's SFTP server, atomically and never over a
 * partner's file (see sftp_push.h for the protocol).  Owns one SSH session
 * and its SFTP channel; sftp_push_close frees them.
 */
#include "load/sftp_push.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "util/sha256.h"
#include "util/xmalloc.h"

/* The SFTP status of the last failure, or -1 when the connection broke. */
static long last_status(struct sftp_push *sp)
{
    if (libssh2_session_last_errno(sp->conn.session) == LIBSSH2_ERROR_SFTP_PROTOCOL)
        return (long)libssh2_sftp_last_error(sp->sftp);
    return -1;
}

/* A failure on the partner's server, as a delivery kind (the runbook is
 * delivery-failed.md whatever went wrong there). */
static enum werr_kind delivery_kind(enum werr_kind k)
{
    switch (k) {
    case WERR_UNREACHABLE:
    case WERR_TIMEOUT:
    case WERR_BUSY:
        return WERR_DELIVERY_UNREACHABLE;
    case WERR_NOSPACE:
        return WERR_DELIVERY_NOSPACE;
    default:
        return WERR_DELIVERY_REFUSED;
    }
}

static void fail(struct sftp_push *sp, struct werr *e, const char *what, const char *path)
{
    long st = last_status(sp);
    if (st < 0) {
        werr_setk(e, WERR_DELIVERY_UNREACHABLE, "%s: %s %s: connection lost: %s", sp->label, what,
                  path, ssh_errmsg(&sp->conn));
    } else {
        werr_setk(e, delivery_kind(ssh_fx_kind((unsigned long)st)),
                  "%s: %s %s: %s (SFTP status %ld)", sp->label, what, path,
                  ssh_fx_text((unsigned long)st), st);
    }
}

int sftp_push_open(struct sftp_push *sp, const struct source_conf *sc, const char *known_hosts,
                   struct werr *e)
{
    memset(sp, 0, sizeof *sp);
    sp->conn.sock = -1;
    sp->label = xasprintf("sftp://%s@%s:%d", sc->user, sc->host, sc->port);
    if (ssh_login_sftp(&sp->conn, sc, known_hosts, sp->label, &sp->sftp, e) < 0) {
        werr_setkind(e, delivery_kind(e->kind));
        sftp_push_close(sp);
        return -1;
    }
    return 0;
}

void sftp_push_close(struct sftp_push *sp)
{
    if (sp->sftp)
        libssh2_sftp_shutdown(sp->sftp);
    sp->sftp = NULL;
    if (sp->conn.session || sp->conn.sock >= 0)
        ssh_disconnect(&sp->conn, "done");
    free(sp->label);
    sp->label = NULL;
}

int sftp_push_exists(struct sftp_push *sp, const char *dir, const char *name, struct werr *e)
{
    char *path = xasprintf("%s/%s", dir, name);
    LIBSSH2_SFTP_ATTRIBUTES at;
    int r = 1;
    if (libssh2_sftp_stat_ex(sp->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &at) !=
        0) {
        long st = last_status(sp);
        if (st == LIBSSH2_FX_NO_SUCH_FILE)
            r = 0;
        else {
            fail(sp, e, "stat", path);
            r = -1;
        }
    }
    free(path);
    return r;
}

int sftp_push_check_dir(struct sftp_push *sp, const char *dir, struct werr *e)
{
    LIBSSH2_SFTP_ATTRIBUTES at;
    if (libssh2_sftp_stat_ex(sp->sftp, dir, (unsigned)strlen(dir), LIBSSH2_SFTP_STAT, &at) != 0) {
        fail(sp, e, "stat", dir);
        return -1;
    }
    if (!LIBSSH2_SFTP_S_ISDIR(at.permissions)) {
        werr_setk(e, WERR_DELIVERY_REFUSED, "%s: %s is not a directory", sp->label, dir);
        return -1;
    }
    return 0;
}

/* 1 the remote file holds exactly len bytes hashing to want, 0 it does
 * not, -1 error. */
static int remote_same(struct sftp_push *sp, const char *path, const char *want, size_t len,
                       struct werr *e)
{
    LIBSSH2_SFTP_ATTRIBUTES at;
    LIBSSH2_SFTP_HANDLE *h;
    struct sha256 sh;
    char buf[32768], got[SHA256_HEX_LEN];
    ssize_t n;
    if (libssh2_sftp_stat_ex(sp->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &at) !=
        0) {
        fail(sp, e, "stat", path);
        return -1;
    }
    if (!LIBSSH2_SFTP_S_ISREG(at.permissions) || at.filesize != len)
        return 0;
    if (!(h = libssh2_sftp_open(sp->sftp, path, LIBSSH2_FXF_READ, 0))) {
        fail(sp, e, "open", path);
        return -1;
    }
    sha256_init(&sh);
    while ((n = libssh2_sftp_read(h, buf, sizeof buf)) > 0)
        sha256_update(&sh, buf, (size_t)n);
    libssh2_sftp_close(h);
    if (n < 0) {
        sha256_abort(&sh);
        fail(sp, e, "read", path);
        return -1;
    }
    sha256_final(&sh, got);
    return !strcmp(got, want);
}

int sftp_push_put(struct sftp_push *sp, const char *dir, const char *name, const void *data,
                  size_t len, struct werr *e)
{
    char *final = xasprintf("%s/%s", dir, name), *tmp = xasprintf("%s/.%s.part", dir, name);
    char want[SHA256_HEX_LEN];
    LIBSSH2_SFTP_HANDLE *h = NULL;
    LIBSSH2_SFTP_ATTRIBUTES at;
    size_t off = 0;
    int r = -1, same;

    sha256_hex(data, len, want);
    if (libssh2_sftp_stat_ex(sp->sftp, final, (unsigned)strlen(final), LIBSSH2_SFTP_LSTAT, &at) ==
        0)
        goto exists;
    h = libssh2_sftp_open(sp->sftp, tmp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                          0644);
    if (!h) {
        fail(sp, e, "create", tmp);
        goto out;
    }
    while (off < len) {
        ssize_t n = libssh2_sftp_write(h, (const char *)data + off, len - off);
        if (n <= 0) {
            fail(sp, e, "write", tmp);
            goto out;
        }
        off += (size_t)n;
    }
    if (libssh2_sftp_close(h) != 0) {
        h = NULL;
        fail(sp, e, "close", tmp);
        goto out;
    }
    h = NULL;
    if (libssh2_sftp_stat_ex(sp->sftp, tmp, (unsigned)strlen(tmp), LIBSSH2_SFTP_LSTAT, &at) != 0) {
        fail(sp, e, "stat", tmp);
        goto out;
    }
    if (at.filesize != len) {
        werr_setk(e, WERR_DELIVERY_REFUSED,
                  "%s: %s holds %llu bytes after the upload of %zu; not renamed", sp->label, tmp,
                  (unsigned long long)at.filesize, len);
        goto out;
    }
    /* flags 0 with SFTP v3: the standard rename, which never replaces. */
    if (libssh2_sftp_rename_ex(sp->sftp, tmp, (unsigned)strlen(tmp), final, (unsigned)strlen(final),
                               0) != 0) {
        long st = last_status(sp);
        if (st < 0) {
            fail(sp, e, "rename", tmp);
            goto out;
        }
        libssh2_sftp_unlink_ex(sp->sftp, tmp, (unsigned)strlen(tmp));
        goto exists;
    }
    r = 1;
    goto out;
exists:
    same = remote_same(sp, final, want, len, e);
    if (same == 1)
        r = 0;
    else if (same == 0)
        werr_setk(e, WERR_DELIVERY_EXISTS,
                  "%s: %s already exists and is not this receipt; the partner's file is kept and "
                  "the receipt not delivered",
                  sp->label, final);
out:
    if (h)
        libssh2_sftp_close(h);
    free(final);
    free(tmp);
    return r;
}

#define PUSH_BUF (1u << 20)

/* sha256 of the first n bytes of the local fd and of the remote handle. */
static int prefix_matches(struct sftp_push *sp, int fd, LIBSSH2_SFTP_HANDLE *h, uint64_t n,
                          const char *tmp, char *buf, struct werr *e)
{
    struct sha256 a, b;
    char ha[SHA256_HEX_LEN], hb[SHA256_HEX_LEN];
    uint64_t done = 0;
    sha256_init(&a);
    sha256_init(&b);
    while (done < n) {
        size_t want = n - done < PUSH_BUF ? (size_t)(n - done) : PUSH_BUF;
        ssize_t got = pread(fd, buf, want, (off_t)done);
        if (got <= 0) {
            werr_sys(e, "cannot read the local file");
            goto fail;
        }
        sha256_update(&a, buf, (size_t)got);
        size_t rgot = 0;
        while (rgot < (size_t)got) {
            ssize_t r = libssh2_sftp_read(h, buf + rgot, (size_t)got - rgot);
            if (r <= 0) {
                if (r == 0)
                    werr_setk(e, WERR_DELIVERY_REFUSED, "%s: %s ended early", sp->label, tmp);
                else
                    fail(sp, e, "read", tmp);
                goto fail;
            }
            rgot += (size_t)r;
        }
        sha256_update(&b, buf, rgot);
        done += (uint64_t)got;
    }
    sha256_final(&a, ha);
    sha256_final(&b, hb);
    return !strcmp(ha, hb);
fail:
    sha256_abort(&a);
    sha256_abort(&b);
    return -1;
}

int sftp_push_file(struct sftp_push *sp, const char *dir, const char *name, const char *local,
                   uint64_t size, const char *sha, bool done_file, uint64_t *resumed_at,
                   struct werr *e)
{
    char *final = xasprintf("%s/%s", dir, name), *tmp = xasprintf("%s/.%s.part", dir, name);
    char *buf = xmalloc(PUSH_BUF);
    LIBSSH2_SFTP_HANDLE *h = NULL;
    LIBSSH2_SFTP_ATTRIBUTES at;
    uint64_t off = 0;
    int fd = open(local, O_RDONLY | O_CLOEXEC), r = -1, same;

    *resumed_at = 0;
    if (fd < 0) {
        werr_sys(e, "cannot open %s", local);
        goto out;
    }
    if (libssh2_sftp_stat_ex(sp->sftp, final, (unsigned)strlen(final), LIBSSH2_SFTP_LSTAT, &at) ==
        0)
        goto exists;
    /* Resume from a verified prefix of an earlier attempt. */
    if (libssh2_sftp_stat_ex(sp->sftp, tmp, (unsigned)strlen(tmp), LIBSSH2_SFTP_LSTAT, &at) == 0 &&
        LIBSSH2_SFTP_S_ISREG(at.permissions) && at.filesize > 0 && at.filesize <= size) {
        h = libssh2_sftp_open(sp->sftp, tmp, LIBSSH2_FXF_READ | LIBSSH2_FXF_WRITE, 0);
        if (!h) {
            fail(sp, e, "open", tmp);
            goto out;
        }
        int m = prefix_matches(sp, fd, h, at.filesize, tmp, buf, e);
        if (m < 0)
            goto out;
        if (m == 1) {
            off = at.filesize;
            *resumed_at = off;
            libssh2_sftp_seek64(h, off);
        } else {
            libssh2_sftp_close(h);
            h = NULL;
        }
    }
    if (!h) {
        h = libssh2_sftp_open(sp->sftp, tmp,
                              LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, 0644);
        if (!h) {
            fail(sp, e, "create", tmp);
            goto out;
        }
    }
    while (off < size) {
        ssize_t got = pread(fd, buf, PUSH_BUF, (off_t)off);
        size_t put = 0;
        if (got <= 0) {
            if (got < 0)
                werr_sys(e, "cannot read %s", local);
            else
                werr_setk(e, WERR_CORRUPT, "%s is shorter than its recorded %llu bytes", local,
                          (unsigned long long)size);
            goto out;
        }
        while (put < (size_t)got) {
            ssize_t n = libssh2_sftp_write(h, buf + put, (size_t)got - put);
            if (n <= 0) {
                fail(sp, e, "write", tmp);
                goto out;
            }
            put += (size_t)n;
        }
        off += (uint64_t)got;
    }
    if (libssh2_sftp_close(h) != 0) {
        h = NULL;
        fail(sp, e, "close", tmp);
        goto out;
    }
    h = NULL;
    if (libssh2_sftp_stat_ex(sp->sftp, tmp, (unsigned)strlen(tmp), LIBSSH2_SFTP_LSTAT, &at) != 0) {
        fail(sp, e, "stat", tmp);
        goto out;
    }
    if (at.filesize != size) {
        werr_setk(e, WERR_DELIVERY_REFUSED,
                  "%s: %s holds %llu bytes after the upload of %llu; not renamed", sp->label, tmp,
                  (unsigned long long)at.filesize, (unsigned long long)size);
        goto out;
    }
    if (getenv("WHARF_TEST_CRASH") && !strcmp(getenv("WHARF_TEST_CRASH"), "uploaded"))
        raise(SIGKILL); /* crash test: uploaded, not yet renamed */
    if (libssh2_sftp_rename_ex(sp->sftp, tmp, (unsigned)strlen(tmp), final, (unsigned)strlen(final),
                               0) != 0) {
        if (last_status(sp) < 0) {
            fail(sp, e, "rename", tmp);
            goto out;
        }
        libssh2_sftp_unlink_ex(sp->sftp, tmp, (unsigned)strlen(tmp));
        goto exists;
    }
    r = 1;
    goto done;
exists:
    /* Ours (renamed before a crash) or the partner's: the bytes decide. */
    {
        LIBSSH2_SFTP_HANDLE *rh;
        struct sha256 hs;
        char got[SHA256_HEX_LEN];
        ssize_t n;
        if (libssh2_sftp_stat_ex(sp->sftp, final, (unsigned)strlen(final), LIBSSH2_SFTP_LSTAT,
                                 &at) != 0) {
            fail(sp, e, "stat", final);
            goto out;
        }
        same = 0;
        if (LIBSSH2_SFTP_S_ISREG(at.permissions) && at.filesize == size) {
            if (!(rh = libssh2_sftp_open(sp->sftp, final, LIBSSH2_FXF_READ, 0))) {
                fail(sp, e, "open", final);
                goto out;
            }
            sha256_init(&hs);
            while ((n = libssh2_sftp_read(rh, buf, PUSH_BUF)) > 0)
                sha256_update(&hs, buf, (size_t)n);
            libssh2_sftp_close(rh);
            if (n < 0) {
                sha256_abort(&hs);
                fail(sp, e, "read", final);
                goto out;
            }
            sha256_final(&hs, got);
            same = !strcmp(got, sha);
        }
        if (!same) {
            werr_setk(e, WERR_DELIVERY_EXISTS,
                      "%s: %s already exists and is not this file; the partner's file is kept and "
                      "nothing was delivered",
                      sp->label, final);
            goto out;
        }
        r = 0;
    }
done:
    if (done_file) {
        char *dn = xasprintf("%s.done", name);
        char *body = xasprintf("%llu %s\n", (unsigned long long)size, sha);
        int d = sftp_push_put(sp, dir, dn, body, strlen(body), e);
        free(dn);
        free(body);
        if (d < 0)
            r = -1;
    }
out:
    if (h)
        libssh2_sftp_close(h);
    if (fd >= 0)
        close(fd);
    free(buf);
    free(final);
    free(tmp);
    return r;
}
