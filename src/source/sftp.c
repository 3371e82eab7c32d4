/*
 * sftp: a remote directory on an SFTP server as a source (libssh2).
 *
 * One SSH connection per struct source (open ... close), used for listing,
 * every download and finish; calls on one source are serialised by a mutex.
 * A connection that broke is reopened by the next call.
 *
 * Connecting (ssh.c) checks the host key against known_hosts (the profile's
 * source.known_hosts, else wharf.yaml's known_hosts) before any credential
 * is sent.  Credentials come only from files: key_file (+ passphrase_file)
 * or password_file; they are wiped after use and never logged.
 *
 * fetch streams into "<dest>.partial", hashing on the fly, with libssh2
 * pipelining reads over a large buffer.  A .partial left by a dropped
 * attempt is re-hashed (that is the verified offset) and the download
 * continues from its end.  With source.parallel > 1 a large file is fetched
 * in ranges over as many sessions of their own, hashed in order as its
 * prefix lands, each range resumable ("<dest>.ranges"; see fetch_ranges).  The result must have the
 * listed size (and the done file's "size sha256" or "sha256", when it holds them); then it is
 * fsynced and renamed to dest, and the directory fsynced.
 *
 * Failures carry a kind (util/err.h): a broken connection is unreachable or
 * timeout (transient), SFTP statuses map by ssh_fx_kind (remote, no space),
 * refused credentials are auth, a size that does not match is hostile, a
 * done file's checksum mismatch corrupt, a local fsync failure io.
 */
#include "source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source/ssh.h"
#include "util/durable.h"
#include "util/hashwriter.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SFTP_MAX_DEPTH 16
/* Bytes asked of one libssh2_sftp_read.  libssh2 1.10 keeps 4x that in
 * FXP_READ requests of 30,000 bytes ahead, up to 8 MB (4 x its channel
 * window): 2 MB is the smallest size that reaches its ceiling, ~280
 * requests, what a long link needs (B3w: 1 MB took 6.1 s through a 40 ms
 * round trip, 2 MB 3.8 s, 256 kB 21 s; bench/README.md). */
#ifndef SFTP_READ_BUF
#define SFTP_READ_BUF (2u << 20)
#endif
#define SFTP_MAX_DONE  4096
#define QUARANTINE_DIR ".wharf-quarantine"

struct sftp_impl {
    struct ssh_conn conn;
    LIBSSH2_SFTP *sftp;
    bool connected;
    char *label; /* "profile: sftp user@host:port" */
    char *root;  /* source.path without a trailing slash ("" for "/") */
    unsigned char *buf;
    pthread_mutex_t lock;
};

struct rentry {
    char *name;
    LIBSSH2_SFTP_ATTRIBUTES attrs;
    unsigned long nlink; /* from the long name; 0 when unknown */
};

/* The SFTP status of the last failed call, or -1 when it was not an SFTP
 * status but a broken connection (or a libssh2 failure). */
static long sftp_status(struct sftp_impl *im)
{
    if (libssh2_session_last_errno(im->conn.session) == LIBSSH2_ERROR_SFTP_PROTOCOL)
        return (long)libssh2_sftp_last_error(im->sftp);
    return -1;
}

/* Fill e for a failed libssh2 call: the SFTP status when the server
 * answered, otherwise the connection is considered broken (transient) and
 * the next call reconnects. */
static void fail(struct sftp_impl *im, struct werr *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct sftp_impl *im, struct werr *e, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    long st = sftp_status(im);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (st >= 0) {
        werr_setk(e, ssh_fx_kind((unsigned long)st), "%s: %s: %s", im->label, what,
                  ssh_fx_text((unsigned long)st));
    } else {
        enum werr_kind k = ssh_kind(libssh2_session_last_errno(im->conn.session));
        /* anything but an SFTP status: the connection is gone */
        werr_setk(e, k == WERR_TIMEOUT ? k : WERR_UNREACHABLE, "%s: %s: connection lost: %s",
                  im->label, what, ssh_errmsg(&im->conn));
        im->connected = false;
    }
}

static void drop_connection(struct sftp_impl *im, const char *why)
{
    if (im->sftp)
        libssh2_sftp_shutdown(im->sftp);
    im->sftp = NULL;
    if (im->conn.session || im->conn.sock >= 0)
        ssh_disconnect(&im->conn, why);
    im->connected = false;
}

/* The profile's source.known_hosts, else wharf.yaml's known_hosts. */
static const char *source_known_hosts(const struct source *s)
{
    const struct source_conf *sc = &s->profile->source;
    return sc->known_hosts ? sc->known_hosts : s->cfg ? s->cfg->known_hosts : NULL;
}

static int do_connect(struct source *s, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    const struct source_conf *sc = &s->profile->source;
    void *sftp = NULL;

    drop_connection(im, "reconnecting");
    if (ssh_login_sftp(&im->conn, sc, source_known_hosts(s), im->label, &sftp, e) < 0) {
        drop_connection(im, "failed");
        return -1;
    }
    im->sftp = sftp;
    im->connected = true;
    wlog(LOG_DEBUG, s->profile->name, NULL, "sftp.connected", NULL, "%s: connected, host key %s %s",
         im->label, im->conn.key_type, im->conn.fp);
    return 0;
}

static int ensure(struct source *s, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    if (im->connected) {
        int next = 0;
        if (libssh2_keepalive_send(im->conn.session, &next) == 0)
            return 0;
        im->connected = false;
    }
    return do_connect(s, e);
}

static int sftp_open(struct source *s, struct werr *e)
{
    const struct source_conf *sc = &s->profile->source;
    struct sftp_impl *im;
    size_t len;

    if (!sc->host || !sc->user || !sc->path) {
        werr_setk(e, WERR_CONFIG, "%s: sftp source needs host, user and path", s->profile->name);
        return -1;
    }
    im = xcalloc(1, sizeof *im);
    im->conn.sock = -1;
    im->label = xasprintf("%s: sftp %s@%s:%d", s->profile->name, sc->user, sc->host,
                          sc->port > 0 ? sc->port : 22);
    im->root = xstrdup(sc->path);
    len = strlen(im->root);
    while (len > 0 && im->root[len - 1] == '/')
        im->root[--len] = 0;
    im->buf = xmalloc(SFTP_READ_BUF);
    pthread_mutex_init(&im->lock, NULL);
    s->impl = im;
    if (do_connect(s, e) < 0) {
        s->impl = NULL;
        pthread_mutex_destroy(&im->lock);
        free(im->label);
        free(im->root);
        free(im->buf);
        free(im);
        return -1;
    }
    return 0;
}

static void sftp_close(struct source *s)
{
    struct sftp_impl *im = s->impl;
    if (!im)
        return;
    drop_connection(im, "done");
    pthread_mutex_destroy(&im->lock);
    free(im->label);
    free(im->root);
    free(im->buf);
    free(im);
    s->impl = NULL;
}

static char *remote_path(const struct sftp_impl *im, const char *rel)
{
    return xasprintf("%s/%s", im->root, rel);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct rentry *)a)->name, ((const struct rentry *)b)->name);
}

static bool has_entry(const struct rentry *v, size_t n, const char *name)
{
    struct rentry key = {.name = (char *)name};
    return n && bsearch(&key, v, n, sizeof *v, cmp_entry) != NULL;
}

struct entries {
    const struct rentry *v;
    size_t n;
};

static bool entries_has(const void *ctx, const char *name)
{
    const struct entries *es = ctx;
    return has_entry(es->v, es->n, name);
}

/* The same rule as the spool: the done or control file of an entry. */
static bool is_done_file(const struct profile *p, const struct rentry *v, size_t n,
                         const char *name)
{
    struct entries es = {v, n};
    return side_file(p, name, entries_has, &es);
}

/* Link count from an OpenSSH-style long name ("-rw-r--r--    1 owner ..."). */
static unsigned long longname_nlink(const char *ln)
{
    const char *p = ln;
    char *end;
    unsigned long v;
    if (strlen(ln) < 11)
        return 0;
    while (*p && *p != ' ')
        p++;
    while (*p == ' ')
        p++;
    v = strtoul(p, &end, 10);
    return end != p && *end == ' ' ? v : 0;
}

static const char *unsafe_kind(unsigned long perm)
{
    switch (perm & LIBSSH2_SFTP_S_IFMT) {
    case LIBSSH2_SFTP_S_IFLNK:
        return "a symbolic link (never followed)";
    case LIBSSH2_SFTP_S_IFIFO:
        return "a FIFO (named pipe)";
    case LIBSSH2_SFTP_S_IFCHR:
    case LIBSSH2_SFTP_S_IFBLK:
        return "a device node";
    case LIBSSH2_SFTP_S_IFSOCK:
        return "a socket";
    default:
        return "not a regular file";
    }
}

static int list_dir(struct source *s, const char *rel, int depth, struct drop_list *out,
                    struct werr *e)
{
    struct sftp_impl *im = s->impl;
    const struct profile *p = s->profile;
    char *dirpath = *rel ? remote_path(im, rel) : xstrdup(*im->root ? im->root : "/");
    LIBSSH2_SFTP_HANDLE *dh;
    struct rentry *v = NULL;
    size_t n = 0, cap = 0;
    char name[4096], longname[4096];
    const char *why;
    int r = -1, rc;

    dh = libssh2_sftp_opendir(im->sftp, dirpath);
    if (!dh) {
        fail(im, e, "list %s", dirpath);
        goto out;
    }
    for (;;) {
        LIBSSH2_SFTP_ATTRIBUTES at;
        memset(&at, 0, sizeof at);
        rc = libssh2_sftp_readdir_ex(dh, name, sizeof name, longname, sizeof longname, &at);
        if (rc == 0)
            break;
        if (rc == LIBSSH2_ERROR_BUFFER_TOO_SMALL)
            continue; /* a name longer than any file system allows: skip */
        if (rc < 0) {
            fail(im, e, "list %s", dirpath);
            libssh2_sftp_closedir(dh);
            goto out;
        }
        /* The server's name is hostile: one that could become another
         * path ("x/../evil.csv", a NUL, a newline) is never used; it stays
         * on the server and the poll reports it. */
        if ((size_t)rc < sizeof name && (size_t)rc == strlen(name) &&
            (!strcmp(name, ".") || !strcmp(name, "..")))
            continue;
        if ((why = source_name_refusal(name, (size_t)rc))) {
            source_refuse(s, rel, name, (size_t)rc, why);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n].name = xstrdup(name);
        v[n].attrs = at;
        v[n].nlink = longname_nlink(longname);
        n++;
    }
    libssh2_sftp_closedir(dh);
    qsort(v, n, sizeof *v, cmp_entry);

    for (size_t i = 0; i < n; i++) {
        const char *nm = v[i].name;
        const LIBSSH2_SFTP_ATTRIBUTES *at = &v[i].attrs;
        bool has_perm = at->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS;
        char *relpath;
        struct drop dr = {0};

        if (name_ignored(p, nm)) {
            if (has_perm && LIBSSH2_SFTP_S_ISREG(at->permissions))
                source_skip(
                    s, rel, nm, at->flags & LIBSSH2_SFTP_ATTR_SIZE ? at->filesize : 0,
                    at->flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (int64_t)at->mtime * 1000000000LL : 0,
                    true);
            continue;
        }
        if (has_perm && LIBSSH2_SFTP_S_ISDIR(at->permissions)) {
            if (!strcmp(nm, QUARANTINE_DIR))
                continue;
            if (p->source.recursive && depth < SFTP_MAX_DEPTH) {
                relpath = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
                rc = list_dir(s, relpath, depth + 1, out, e);
                free(relpath);
                if (rc < 0)
                    goto out;
            }
            continue;
        }
        if (fnmatch(p->source.pattern ? p->source.pattern : "*", nm, 0) != 0 ||
            is_done_file(p, v, n, nm)) {
            if (!is_done_file(p, v, n, nm) && has_perm && LIBSSH2_SFTP_S_ISREG(at->permissions))
                source_skip(
                    s, rel, nm, at->flags & LIBSSH2_SFTP_ATTR_SIZE ? at->filesize : 0,
                    at->flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (int64_t)at->mtime * 1000000000LL : 0,
                    false);
            continue;
        }
        dr.path = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
        dr.name = xstrdup(nm);
        dr.size = at->flags & LIBSSH2_SFTP_ATTR_SIZE ? at->filesize : 0;
        dr.mtime_ns =
            at->flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (int64_t)at->mtime * 1000000000LL : 0;
        if (!has_perm)
            dr.unsafe = xstrdup("the server did not say what kind of file it is");
        else if (!LIBSSH2_SFTP_S_ISREG(at->permissions))
            dr.unsafe = xstrdup(unsafe_kind(at->permissions));
        else if (v[i].nlink > 1)
            dr.unsafe = xasprintf("a hard link (%lu links; could alias another file)", v[i].nlink);
        else if (!(at->flags & LIBSSH2_SFTP_ATTR_SIZE))
            dr.unsafe = xstrdup("the server did not report its size");
        if (p->source.done_file) {
            char *dn = done_name(p->source.done_file, nm);
            dr.has_done = has_entry(v, n, dn);
            dr.done_path = *rel ? xasprintf("%s/%s", rel, dn) : xstrdup(dn);
            free(dn);
        }
        if (p->control.file) {
            char *cn = done_name(p->control.file, nm);
            dr.has_control = has_entry(v, n, cn);
            dr.control_path = *rel ? xasprintf("%s/%s", rel, cn) : xstrdup(cn);
            free(cn);
        }
        drop_list_add(out, &dr);
    }
    r = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(dirpath);
    return r;
}

static int sftp_list(struct source *s, struct drop_list *out, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    int r;
    pthread_mutex_lock(&im->lock);
    r = ensure(s, e);
    if (r == 0)
        r = list_dir(s, "", 0, out, e);
    pthread_mutex_unlock(&im->lock);
    return r;
}

/* Read a small remote file (the done file). */
static int read_small(struct sftp_impl *im, const char *path, char *buf, size_t size,
                      struct werr *e)
{
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(im->sftp, path, LIBSSH2_FXF_READ, 0);
    size_t used = 0;
    ssize_t n;
    if (!h) {
        fail(im, e, "read %s", path);
        return -1;
    }
    while (used < size - 1 && (n = libssh2_sftp_read(h, buf + used, size - 1 - used)) != 0) {
        if (n < 0) {
            fail(im, e, "read %s", path);
            libssh2_sftp_close(h);
            return -1;
        }
        used += (size_t)n;
    }
    libssh2_sftp_close(h);
    buf[used] = 0;
    return 0;
}

/* Hash what a .partial already holds; returns its length or -1. */
static int64_t rehash(int fd, struct sha256 *h, unsigned char *buf, size_t bufsize)
{
    int64_t total = 0;
    ssize_t n;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    while ((n = read(fd, buf, bufsize)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        sha256_update(h, buf, (size_t)n);
        total += n;
    }
    return total;
}

/* ---- one large file over several sessions (source.parallel) ---------
 *
 * The file is cut into ranges, one SSH session each, all written with
 * pwrite into the one "<dest>.partial".  The SHA-256 covers the bytes in
 * order: this thread hashes the file itself, reading back (from the page
 * cache) the prefix that has landed contiguously from byte 0, while the
 * range threads go on; so memory stays at one buffer per range, whatever
 * the order in which ranges finish.
 *
 * Progress survives a failure in "<dest>.ranges", written (durably) before
 * the first byte and again after every fsync of the .partial, so it never
 * claims a byte that is not on disk:
 *
 *     wharf-ranges 1 <size> <mtime> <n>
 *     <start> <end> <landed>            (n lines; landed counts from start)
 *
 * A range whose session breaks is reopened and resumed from what landed
 * (RANGE_ATTEMPTS times); a fetch that fails keeps .partial and .ranges
 * for the next attempt, which resumes every range.  A single-session fetch
 * that finds a .ranges cuts .partial to the prefix that landed in order. */

#define RANGE_ATTEMPTS   3
#define RANGE_CHECKPOINT (64u << 20) /* bytes landed between two checkpoints */
#define RANGES_MAX       16

struct range {
    uint64_t start, end, landed;
};

struct ranges {
    struct source *s;
    const struct drop *d;
    const char *remote;
    int fd;
    struct range r[RANGES_MAX];
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool taken[RANGES_MAX]; /* a session works on it (or finished it) */
    int running;            /* sessions at work */
    bool stop;              /* a range failed for good: the others stop too */
    struct werr err;        /* the first failure */
    bool failed;
};

struct range_job {
    struct ranges *rs;
    pthread_t thread;
};

static char *ranges_path(const char *partial)
{
    size_t l = strlen(partial) - strlen(".partial");
    return xasprintf("%.*s.ranges", (int)l, partial);
}

/* Read a .ranges file for d: the number of ranges, 0 when there is none
 * or it is not for this size and mtime (or not well formed). */
static int ranges_load(const char *path, const struct drop *d, struct range *r)
{
    FILE *f = fopen(path, "re");
    unsigned long long size, start, end, landed;
    long long mtime;
    int n = 0, v = 0;
    if (!f)
        return 0;
    if (fscanf(f, "wharf-ranges %d %llu %lld %d", &v, &size, &mtime, &n) != 4 || v != 1 ||
        size != d->size || mtime != d->mtime_ns / 1000000000LL || n < 1 || n > RANGES_MAX)
        n = 0;
    for (int i = 0; i < n; i++) {
        if (fscanf(f, "%llu %llu %llu", &start, &end, &landed) != 3 ||
            start != (i ? r[i - 1].end : 0) || end < start || end > size || landed > end - start) {
            n = 0;
            break;
        }
        r[i] = (struct range){start, end, landed};
    }
    if (n && r[n - 1].end != size)
        n = 0;
    fclose(f);
    return n;
}

static int ranges_save(const char *path, const struct drop *d, const struct range *r, int n,
                       struct werr *e)
{
    char buf[64 + RANGES_MAX * 72];
    int used = snprintf(buf, sizeof buf, "wharf-ranges 1 %llu %lld %d\n",
                        (unsigned long long)d->size, (long long)(d->mtime_ns / 1000000000LL), n);
    for (int i = 0; i < n; i++)
        used += snprintf(buf + used, sizeof buf - (size_t)used, "%llu %llu %llu\n",
                         (unsigned long long)r[i].start, (unsigned long long)r[i].end,
                         (unsigned long long)r[i].landed);
    return durable_write(path, buf, (size_t)used, e);
}

/* Bytes landed in order from byte 0. */
static uint64_t ranges_prefix(const struct range *r, int n)
{
    for (int i = 0; i < n; i++)
        if (r[i].landed < r[i].end - r[i].start)
            return r[i].start + r[i].landed;
    return n ? r[n - 1].end : 0;
}

/* A single-session fetch after a parallel one: keep the prefix that landed
 * in order, drop the rest and the .ranges file. */
static int ranges_to_prefix(const char *partial, int fd, const struct drop *d, struct werr *e)
{
    char *rp = ranges_path(partial);
    struct range r[RANGES_MAX];
    int n, rc = 0;
    if (access(rp, F_OK) == 0) {
        n = ranges_load(rp, d, r);
        if (ftruncate(fd, n ? (off_t)ranges_prefix(r, n) : 0) < 0 || fsync(fd) < 0) {
            werr_sys(e, "%s: truncate", partial);
            rc = -1;
        } else if (durable_unlink(rp, e) < 0) {
            rc = -1;
        }
    }
    free(rp);
    return rc;
}

/* Test hook: WHARF_TEST_RANGE_CUT=BYTES[:TIMES] breaks the session of the
 * second range after BYTES more of it have landed in one attempt (the
 * socket is shut down under libssh2, as a dropped link would), TIMES times
 * in this process (default once). */
static pthread_mutex_t cut_mu = PTHREAD_MUTEX_INITIALIZER;
static int cuts_made;

static uint64_t range_cut_at(int i)
{
    const char *v = getenv("WHARF_TEST_RANGE_CUT");
    char *end;
    uint64_t bytes;
    int times;
    bool more;
    if (i != 1 || !v || !*v)
        return 0;
    bytes = strtoull(v, &end, 10);
    times = *end == ':' ? atoi(end + 1) : 1;
    pthread_mutex_lock(&cut_mu);
    more = cuts_made < times;
    pthread_mutex_unlock(&cut_mu);
    return more ? bytes : 0;
}

static void range_cut(struct sftp_impl *wim)
{
    pthread_mutex_lock(&cut_mu);
    cuts_made++;
    pthread_mutex_unlock(&cut_mu);
    shutdown(wim->conn.sock, SHUT_RDWR);
}

/* One attempt at range i on its own session: 0 when the range is complete,
 * -1 with e set (werr_transient(e): worth another attempt), -2 when told
 * to stop (another range failed). */
static int range_attempt(struct ranges *rs, int i, struct sftp_impl *wim, unsigned char *buf,
                         bool *logged_in, struct werr *e)
{
    struct range *r = &rs->r[i];
    const struct drop *d = rs->d;
    bool last = i == rs->n - 1;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    LIBSSH2_SFTP_ATTRIBUTES at;
    uint64_t pos, from, end, cut_at = range_cut_at(i);
    int rc = -1;

    if (!wim->connected) {
        void *sftp = NULL;
        const struct source_conf *sc = &rs->s->profile->source;
        if (ssh_login_sftp(&wim->conn, sc, source_known_hosts(rs->s), wim->label, &sftp, e) < 0)
            return -1;
        wim->sftp = sftp;
        wim->connected = true;
        *logged_in = true;
    }
    h = libssh2_sftp_open(wim->sftp, rs->remote, LIBSSH2_FXF_READ, 0);
    if (!h) {
        fail(wim, e, "open %s", rs->remote);
        goto out;
    }
    memset(&at, 0, sizeof at);
    if (libssh2_sftp_fstat(h, &at) != 0) {
        fail(wim, e, "stat %s", rs->remote);
        goto out;
    }
    if (at.filesize != d->size || (int64_t)at.mtime != d->mtime_ns / 1000000000LL) {
        werr_setk(e, WERR_HOSTILE, "%s: %s changed since it was listed (size %llu; listed %llu)",
                  wim->label, rs->remote, (unsigned long long)at.filesize,
                  (unsigned long long)d->size);
        goto out;
    }
    pthread_mutex_lock(&rs->mu);
    pos = from = r->start + r->landed;
    pthread_mutex_unlock(&rs->mu);
    /* The last range asks for one byte past the listed size: a file that
     * grew is seen (and refused), as in the single-session fetch. */
    end = last ? r->end + 1 : r->end;
    libssh2_sftp_seek64(h, (libssh2_uint64_t)pos);
    while (pos < end) {
        /* At most a quarter of what is left: libssh2 keeps up to 4x the
         * buffer in requests ahead, and none may pass the range's end. */
        uint64_t left = (end - pos + 3) / 4;
        ssize_t n = libssh2_sftp_read(h, (char *)buf, left < SFTP_READ_BUF ? left : SFTP_READ_BUF);
        if (n < 0) {
            fail(wim, e, "read %s at byte %llu", rs->remote, (unsigned long long)pos);
            goto out;
        }
        if (n == 0)
            break;
        if (pos + (uint64_t)n > r->end) {
            werr_setk(e, WERR_HOSTILE,
                      "%s: %s: size mismatch: listed %llu bytes, the server sent more (cut off "
                      "one byte past the listed size); not taken",
                      wim->label, d->path, (unsigned long long)d->size);
            goto out;
        }
        for (ssize_t done = 0, w; done < n; done += w) {
            w = pwrite(rs->fd, buf + done, (size_t)(n - done), (off_t)(pos + (uint64_t)done));
            if (w < 0 && errno == EINTR) {
                w = 0;
                continue;
            }
            if (w <= 0) {
                werr_sys(e, "%s: write", rs->remote);
                goto out;
            }
        }
        pos += (uint64_t)n;
        pthread_mutex_lock(&rs->mu);
        r->landed = pos - r->start;
        pthread_cond_broadcast(&rs->cv);
        bool stop = rs->stop;
        pthread_mutex_unlock(&rs->mu);
        if (stop) {
            rc = -2;
            goto out;
        }
        if (cut_at && pos - from >= cut_at) {
            cut_at = 0;
            range_cut(wim);
        }
    }
    if (pos != r->end) {
        werr_setk(e, WERR_HOSTILE, "%s: %s: size mismatch: listed %llu bytes, ended at %llu",
                  wim->label, d->path, (unsigned long long)d->size, (unsigned long long)pos);
        goto out;
    }
    rc = 0;
out:
    /* also on a lost connection: libssh2 frees the handle (and the read
     * requests it still holds) only here, not in libssh2_sftp_shutdown */
    if (h)
        libssh2_sftp_close(h);
    return rc;
}

/* One session of its own, taking ranges in order until none is left; a
 * range whose session broke is resumed (RANGE_ATTEMPTS in all).  A session
 * the server refuses while another is at work is given up quietly and its
 * range left to the others: a partner's limit on sessions slows the take
 * down, it does not fail it.  Taking a range and leaving with none are
 * decided under rs->mu together with `running`, so no range is left behind
 * by a session that quits. */
static void *range_thread(void *arg)
{
    struct range_job *job = arg;
    struct ranges *rs = job->rs;
    const char *label = ((struct sftp_impl *)rs->s->impl)->label;
    struct sftp_impl wim = {0};
    unsigned char *buf = xmalloc(SFTP_READ_BUF);
    struct werr e = {0};
    bool logged_in = false, left = false;
    int rc = 0, i;

    wim.conn.sock = -1;
    for (;;) {
        pthread_mutex_lock(&rs->mu);
        for (i = 0; !rs->stop && i < rs->n; i++)
            if (!rs->taken[i] && rs->r[i].landed < rs->r[i].end - rs->r[i].start)
                break;
        if (rs->stop || i == rs->n) {
            rs->running--;
            left = true;
            pthread_cond_broadcast(&rs->cv);
            pthread_mutex_unlock(&rs->mu);
            break;
        }
        rs->taken[i] = true;
        pthread_mutex_unlock(&rs->mu);
        free(wim.label);
        wim.label = xasprintf("%s (range %d of %d)", label, i + 1, rs->n);
        for (int a = 0; a < RANGE_ATTEMPTS; a++) {
            rc = range_attempt(rs, i, &wim, buf, &logged_in, &e);
            if (rc != -1 || !werr_transient(&e))
                break;
            pthread_mutex_lock(&rs->mu);
            bool stop = rs->stop, quit = !logged_in && rs->running > 1;
            json_int_t landed = (json_int_t)rs->r[i].landed;
            if (quit) {
                rs->taken[i] = false;
                rs->running--;
                left = true;
                pthread_cond_broadcast(&rs->cv);
            }
            pthread_mutex_unlock(&rs->mu);
            if (quit) {
                wlog(LOG_INFO, rs->s->profile->name, NULL, "sftp.range_session_refused",
                     json_pack("{s:s}", "path", rs->d->path),
                     "%s: %s; the other sessions take its range", wim.label, e.msg);
                rc = 0;
                break;
            }
            if (stop)
                break;
            wlog(
                LOG_INFO, rs->s->profile->name, NULL, "sftp.range_retry",
                json_pack("{s:s, s:i, s:I}", "path", rs->d->path, "range", i + 1, "landed", landed),
                "%s: %s; resuming the range", wim.label, e.msg);
            drop_connection(&wim, "retrying");
            /* a server that refused one more session (MaxStartups) may
             * take it a moment later */
            usleep(200000u * (unsigned)(a + 1));
        }
        if (left || rc != 0)
            break;
    }
    drop_connection(&wim, rc == 0 ? "done" : "failed");
    pthread_mutex_lock(&rs->mu);
    if (rc == -1 && !rs->failed) {
        rs->failed = true;
        rs->stop = true;
        rs->err = e;
    }
    if (!left)
        rs->running--;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    free(wim.label);
    free(buf);
    return NULL;
}

/* Fetch d into partial (open as fd) over up to `parallel` sessions; on
 * success the whole file is hashed into *hash and *got is its size. */
static int fetch_ranges(struct source *s, const struct drop *d, const char *remote,
                        const char *partial, int fd, struct sha256 *hash, int64_t *got,
                        struct werr *e)
{
    struct sftp_impl *im = s->impl;
    const struct source_conf *sc = &s->profile->source;
    char *rp = ranges_path(partial);
    struct ranges rs = {.s = s, .d = d, .remote = remote, .fd = fd};
    struct range_job jobs[RANGES_MAX];
    uint64_t hashed = 0, since = 0, total_before = 0;
    int r = -1, started = 0; /* sessions */
    bool own_err = false;    /* e was set here, not by a range */
    struct stat st;

    pthread_mutex_init(&rs.mu, NULL);
    pthread_cond_init(&rs.cv, NULL);
    rs.n = ranges_load(rp, d, rs.r);
    if (rs.n == 0 && access(rp, F_OK) == 0 && ftruncate(fd, 0) < 0) {
        /* a record of another file's ranges: nothing here is trusted */
        werr_sys(e, "%s: truncate", partial);
        goto out;
    }
    if (rs.n == 0) {
        /* A first attempt: what a single-session attempt left is a prefix
         * that landed; the rest is cut into ranges of parallel_min or
         * more. */
        uint64_t have =
            fstat(fd, &st) == 0 && (uint64_t)st.st_size <= d->size ? (uint64_t)st.st_size : 0;
        uint64_t rest = d->size - have, k = rest / sc->parallel_min, at = have;
        int n = (int)(k < (uint64_t)sc->parallel ? k : (uint64_t)sc->parallel);
        if (n < 1)
            n = 1;
        if (n > RANGES_MAX - 1)
            n = RANGES_MAX - 1; /* and the prefix */
        if (have > 0)
            rs.r[rs.n++] = (struct range){0, have, have};
        for (int i = 0; i < n; i++) {
            uint64_t end = i == n - 1 ? d->size : at + rest / (uint64_t)n;
            rs.r[rs.n++] = (struct range){at, end, 0};
            at = end;
        }
        if (ranges_save(rp, d, rs.r, rs.n, e) < 0)
            goto out;
    }
    for (int i = 0; i < rs.n; i++)
        total_before += rs.r[i].landed;
    wlog(LOG_INFO, s->profile->name, NULL, "sftp.ranges",
         json_pack("{s:s, s:i, s:I, s:I}", "path", d->path, "ranges", rs.n, "size",
                   (json_int_t)d->size, "landed", (json_int_t)total_before),
         "%s: fetching %s in %d ranges over as many sessions (%llu of %llu bytes already here)",
         im->label, d->path, rs.n, (unsigned long long)total_before, (unsigned long long)d->size);
    for (int i = 0; i < rs.n; i++)
        if (rs.r[i].landed < rs.r[i].end - rs.r[i].start && started < sc->parallel)
            started++;
    rs.running = started;
    for (int k = 0; k < started; k++) {
        jobs[k] = (struct range_job){.rs = &rs};
        if (pthread_create(&jobs[k].thread, NULL, range_thread, &jobs[k]) != 0)
            abort();
    }

    /* Hash what landed in order, as it lands; checkpoint now and then. */
    pthread_mutex_lock(&rs.mu);
    for (;;) {
        uint64_t prefix = ranges_prefix(rs.r, rs.n), total = 0;
        struct range snap[RANGES_MAX];
        for (int i = 0; i < rs.n; i++)
            total += rs.r[i].landed;
        if (total - total_before - since >= RANGE_CHECKPOINT && !rs.failed) {
            memcpy(snap, rs.r, sizeof snap);
            since = total - total_before;
            pthread_mutex_unlock(&rs.mu);
            if (fdatasync(fd) < 0) {
                werr_sys(e, "%s: fsync", partial);
                own_err = true;
            } else if (ranges_save(rp, d, snap, rs.n, e) < 0) {
                own_err = true;
            }
            if (own_err) {
                werr_setkind(e, WERR_IO);
                pthread_mutex_lock(&rs.mu);
                rs.stop = true;
                break;
            }
            pthread_mutex_lock(&rs.mu);
            continue;
        }
        if (prefix > hashed) {
            pthread_mutex_unlock(&rs.mu);
            while (hashed < prefix) {
                size_t want = prefix - hashed < SFTP_READ_BUF ? prefix - hashed : SFTP_READ_BUF;
                ssize_t n = pread(fd, im->buf, want, (off_t)hashed);
                if (n <= 0) {
                    werr_sys(e, "%s: read back", partial);
                    werr_setkind(e, WERR_IO);
                    own_err = true;
                    break;
                }
                sha256_update(hash, im->buf, (size_t)n);
                hashed += (uint64_t)n;
            }
            pthread_mutex_lock(&rs.mu);
            if (hashed < prefix) {
                rs.stop = true;
                break;
            }
            continue;
        }
        if (rs.running == 0)
            break;
        pthread_cond_wait(&rs.cv, &rs.mu);
        /* the listing's session waits for the done file: keep it alive */
        pthread_mutex_unlock(&rs.mu);
        int next = 0;
        libssh2_keepalive_send(im->conn.session, &next);
        pthread_mutex_lock(&rs.mu);
    }
    pthread_mutex_unlock(&rs.mu);
    for (int k = 0; k < started; k++)
        pthread_join(jobs[k].thread, NULL);
    if (own_err)
        goto out; /* a local failure: nothing kept */
    if (rs.failed) {
        *e = rs.err;
        goto keep;
    }
    if (hashed != d->size) {
        werr_setk(e, WERR_HOSTILE, "%s: %s: size mismatch: listed %llu bytes, received %llu",
                  im->label, d->path, (unsigned long long)d->size, (unsigned long long)hashed);
        goto out;
    }
    /* Every byte on disk before the progress record goes. */
    if (fdatasync(fd) < 0) {
        werr_sys(e, "%s: fsync", partial);
        werr_setkind(e, WERR_IO);
        goto out;
    }
    if (durable_unlink(rp, e) < 0)
        goto out;
    *got = (int64_t)hashed;
    r = 0;
    goto out;
keep:
    /* Keep what landed for the next attempt: on disk, then recorded. */
    if (werr_transient(e)) {
        struct werr e2 = {0};
        if (fdatasync(fd) < 0 || ranges_save(rp, d, rs.r, rs.n, &e2) < 0)
            werr_setkind(e, WERR_IO);
    }
out:
    pthread_mutex_destroy(&rs.mu);
    pthread_cond_destroy(&rs.cv);
    free(rp);
    return r;
}

/* Parallel ranges for d: asked for, and the file is large enough (or an
 * earlier attempt left ranges to resume). */
static bool use_ranges(const struct profile *p, const struct drop *d, const char *partial)
{
    char *rp;
    bool r;
    if (p->source.parallel < 2)
        return false;
    if (d->size >= 2 * p->source.parallel_min)
        return true;
    rp = ranges_path(partial);
    r = access(rp, F_OK) == 0;
    free(rp);
    return r;
}

static int rexists(struct sftp_impl *im, const char *path, LIBSSH2_SFTP_ATTRIBUTES *at,
                   struct werr *e);

static int fetch_locked(struct source *s, const struct drop *d, const char *dest,
                        char sha256[SHA256_HEX_LEN], uint64_t *bytes, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    const struct profile *p = s->profile;
    char *remote = remote_path(im, d->path), *partial = xasprintf("%s.partial", dest);
    LIBSSH2_SFTP_HANDLE *h = NULL;
    LIBSSH2_SFTP_ATTRIBUTES at;
    struct sha256 hash = {0};
    struct stat st;
    int64_t off;
    int fd = -1, r = -1;
    bool keep_partial = true;
    char done_text[SFTP_MAX_DONE], got_sha[SHA256_HEX_LEN];
    uint64_t max = p->limits.max_bytes;

    if (d->unsafe) {
        werr_setk(e, WERR_HOSTILE, "%s: %s is unsafe (%s); not fetched", im->label, d->path,
                  d->unsafe);
        goto out;
    }
    /* limits.max_bytes bounds every byte taken: a listed size over it is
     * refused unread, and the reads below never ask for more than the
     * listed size + 1 (which is at most max_bytes + 1). */
    if (d->size > max) {
        werr_setk(e, WERR_TOO_BIG,
                  "%s: %s: the server lists %llu bytes, more than limits.max_bytes (%llu); "
                  "not taken, left on the server",
                  im->label, d->path, (unsigned long long)d->size, (unsigned long long)max);
        goto out;
    }
    fd = open(partial, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fstat(fd, &st) < 0) {
        werr_sys(e, "%s", partial);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        werr_set(e, "%s: not a regular file", partial);
        goto out;
    }
    sha256_init(&hash);
    if (use_ranges(p, d, partial)) {
        if (fetch_ranges(s, d, remote, partial, fd, &hash, &off, e) < 0) {
            keep_partial = werr_transient(e);
            goto out;
        }
        goto fetched;
    }
    if (ranges_to_prefix(partial, fd, d, e) < 0)
        goto out;
    off = rehash(fd, &hash, im->buf, SFTP_READ_BUF);
    if (off < 0) {
        werr_sys(e, "%s: read", partial);
        goto out;
    }
    if ((uint64_t)off > d->size) {
        wlog(LOG_WARN, p->name, NULL, "sftp.partial_discarded", NULL,
             "%s: %s holds %lld bytes, more than the %llu listed; starting again", im->label,
             partial, (long long)off, (unsigned long long)d->size);
        if (ftruncate(fd, 0) < 0) {
            werr_sys(e, "%s: truncate", partial);
            goto out;
        }
        sha256_abort(&hash);
        sha256_init(&hash);
        off = 0;
    }
    if (lseek(fd, off, SEEK_SET) < 0) {
        werr_sys(e, "%s: seek", partial);
        goto out;
    }

    h = libssh2_sftp_open(im->sftp, remote, LIBSSH2_FXF_READ, 0);
    if (!h) {
        fail(im, e, "open %s", remote);
        goto out;
    }
    memset(&at, 0, sizeof at);
    if (libssh2_sftp_fstat(h, &at) != 0) {
        fail(im, e, "stat %s", remote);
        goto out;
    }
    if ((at.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISREG(at.permissions)) {
        werr_setk(e, WERR_HOSTILE, "%s: %s is no longer a regular file", im->label, remote);
        goto out;
    }
    if (at.filesize != d->size || (int64_t)at.mtime != d->mtime_ns / 1000000000LL) {
        werr_setk(e, WERR_HOSTILE,
                  "%s: %s changed since it was listed (size %llu, mtime %llu; listed %llu, "
                  "%lld)",
                  im->label, remote, (unsigned long long)at.filesize, (unsigned long long)at.mtime,
                  (unsigned long long)d->size, (long long)(d->mtime_ns / 1000000000LL));
        goto out;
    }
    if (off > 0) {
        libssh2_sftp_seek64(h, (libssh2_uint64_t)off);
        wlog(LOG_INFO, p->name, NULL, "sftp.resume",
             json_pack("{s:s, s:I, s:I}", "path", d->path, "offset", (json_int_t)off, "size",
                       (json_int_t)d->size),
             "%s: resuming %s at byte %lld of %llu (verified from %s)", im->label, d->path,
             (long long)off, (unsigned long long)d->size, partial);
    }
    /* Decrypting and hashing here, writing on a second thread (hashwriter).
     * The hash is taken of each buffer right after libssh2 filled it, while
     * it is in this core's cache: 500 MB on loopback (B3) in 1.94-2.04 s
     * against 2.10-2.32 s with the hashing on the writer's thread too (four
     * runs each, alternating; the same CPU time), the writer's core left to
     * sshd and the write. */
    {
        struct hashwriter *hw = hashwriter_start(fd, NULL, SFTP_READ_BUF, 3);
        bool read_failed = false, write_failed = false;
        for (;;) {
            char *buf = hashwriter_buffer(hw);
            /* The server is not trusted to stop at the size it listed: ask
             * for no more than one byte past it.  libssh2 1.10 keeps up
             * to 4x the buffer in read requests ahead of the offset, so
             * near the end the buffer shrinks to a quarter of what is
             * left: not even the wire carries more than listed + 4. */
            uint64_t left = (d->size + 1 - (uint64_t)off + 3) / 4;
            ssize_t n = libssh2_sftp_read(h, buf, left < SFTP_READ_BUF ? left : SFTP_READ_BUF);
            if (n <= 0) {
                hashwriter_submit(hw, buf, 0);
                if (n < 0) {
                    fail(im, e, "read %s at byte %lld", remote, (long long)off);
                    read_failed = true;
                }
                break;
            }
            sha256_update(&hash, buf, (size_t)n);
            if (hashwriter_submit(hw, buf, (size_t)n) < 0) {
                write_failed = true;
                break;
            }
            off += n;
            if ((uint64_t)off > d->size)
                break; /* grown: the size check below says so */
        }
        if (hashwriter_finish(hw) < 0 || write_failed) {
            if (!read_failed)
                werr_sys(e, "%s: write", partial);
            keep_partial = false; /* the file may be short of what was hashed */
            goto out;
        }
        if (read_failed)
            goto out;
    }
    libssh2_sftp_close(h);
    h = NULL;
fetched:
    keep_partial = false; /* from here on, anything wrong is in the bytes */
    if (fsync(fd) < 0) {
        werr_sys(e, "%s: fsync", partial);
        werr_setkind(e, WERR_IO); /* never retried into success */
        goto out;
    }
    if ((uint64_t)off > max) {
        werr_setk(e, WERR_TOO_BIG,
                  "%s: %s: the server sent more than limits.max_bytes (%llu) for a file it "
                  "listed at %llu bytes; cut off there, not taken",
                  im->label, d->path, (unsigned long long)max, (unsigned long long)d->size);
        goto out;
    }
    if ((uint64_t)off != d->size) {
        werr_setk(e, WERR_HOSTILE,
                  "%s: %s: size mismatch: listed %llu bytes, received %lld%s; not taken", im->label,
                  d->path, (unsigned long long)d->size, (long long)off,
                  (uint64_t)off > d->size ? " (cut off one byte past the listed size)" : "");
        goto out;
    }
    sha256_final(&hash, got_sha);
    if (d->has_done && d->done_path) {
        /* Most done files are empty markers: one stat (a round trip)
         * instead of open, read and close (three). */
        char *dp = remote_path(im, d->done_path);
        LIBSSH2_SFTP_ATTRIBUTES dat;
        int rr = rexists(im, dp, &dat, e);
        if (rr == 1 && (dat.flags & LIBSSH2_SFTP_ATTR_SIZE) && dat.filesize == 0)
            done_text[0] = 0;
        else if (rr >= 0)
            rr = read_small(im, dp, done_text, sizeof done_text, e);
        free(dp);
        if (rr < 0) {
            keep_partial = werr_transient(e);
            goto out;
        }
        if (source_done_check(im->label, d, done_text, got_sha, e) < 0)
            goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        werr_sys(e, "%s: close", partial);
        goto out;
    }
    fd = -1;
    if (durable_rename(partial, dest, e) < 0)
        goto out;
    memcpy(sha256, got_sha, SHA256_HEX_LEN);
    *bytes = (uint64_t)off;
    r = 0;
out:
    if (h)
        libssh2_sftp_close(h);
    if (hash.ctx)
        sha256_abort(&hash);
    if (fd >= 0) {
        /* Keep what arrived for the next attempt, on disk. */
        if (keep_partial && fsync(fd) < 0)
            keep_partial = false;
        close(fd);
    }
    /* Only a dropped connection leaves a .partial to resume from. */
    if (r < 0 && (!keep_partial || !werr_transient(e))) {
        char *rp = ranges_path(partial);
        unlink(rp);
        unlink(partial);
        free(rp);
    }
    free(remote);
    free(partial);
    return r;
}

static int sftp_fetch(struct source *s, const struct drop *d, const char *dest,
                      char sha256[SHA256_HEX_LEN], uint64_t *bytes, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    int r;
    pthread_mutex_lock(&im->lock);
    r = ensure(s, e);
    if (r == 0)
        r = fetch_locked(s, d, dest, sha256, bytes, e);
    pthread_mutex_unlock(&im->lock);
    return r;
}

/* lstat a remote path: 1 exists, 0 gone, -1 error (in e). */
static int rexists(struct sftp_impl *im, const char *path, LIBSSH2_SFTP_ATTRIBUTES *at,
                   struct werr *e)
{
    LIBSSH2_SFTP_ATTRIBUTES tmp;
    if (libssh2_sftp_lstat(im->sftp, path, at ? at : &tmp) == 0)
        return 1;
    long st = sftp_status(im);
    if (st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH)
        return 0;
    fail(im, e, "stat %s", path);
    return -1;
}

static int rmkdir(struct sftp_impl *im, const char *dir, struct werr *e)
{
    int x = rexists(im, dir, NULL, e);
    if (x != 0)
        return x < 0 ? -1 : 0;
    if (libssh2_sftp_mkdir(im->sftp, dir, 0750) == 0)
        return 0;
    if (rexists(im, dir, NULL, e) == 1)
        return 0; /* made meanwhile */
    fail(im, e, "mkdir %s", dir);
    return -1;
}

/* Move src into dir as name, never over an existing file: when dir/name
 * exists, "<name>.<unix time>" (then ".<unix time>.<n>") is used, so
 * neither file is lost.  src already gone is success.
 *
 * No OVERWRITE flag: libssh2 1.10 sends a plain SSH_FXP_RENAME to SFTP v3
 * servers (OpenSSH), which OpenSSH implements with link()+unlink() and so
 * refuses an existing target atomically; v5+ servers get the flags and,
 * without OVERWRITE, refuse too.  A refused rename tries the next name. */
static int move_one(struct sftp_impl *im, const char *src, const char *dir, const char *name,
                    struct werr *e)
{
    long now = (long)time(NULL);
    int x;
    for (int i = 0; i < 100; i++) {
        char *dst = i == 0   ? xasprintf("%s/%s", dir, name)
                    : i == 1 ? xasprintf("%s/%s.%ld", dir, name, now)
                             : xasprintf("%s/%s.%ld.%d", dir, name, now, i);
        x = rexists(im, dst, NULL, e);
        if (x == 1) {
            free(dst);
            continue;
        }
        if (x < 0) {
            free(dst);
            return -1;
        }
        if (libssh2_sftp_rename_ex(im->sftp, src, (unsigned)strlen(src), dst, (unsigned)strlen(dst),
                                   LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE) == 0) {
            free(dst);
            return 0;
        }
        if (sftp_status(im) < 0) {
            fail(im, e, "rename %s to %s", src, dst);
            free(dst);
            return -1;
        }
        x = rexists(im, src, NULL, e);
        if (x <= 0) {
            free(dst);
            return x; /* gone: moved by an earlier attempt (or e is set) */
        }
        if (rexists(im, dst, NULL, e) != 1) {
            fail(im, e, "rename %s to %s", src, dst);
            free(dst);
            return -1;
        }
        free(dst); /* raced with another writer: next name */
    }
    werr_setk(e, WERR_REMOTE, "%s: rename %s: no free name in %s", im->label, src, dir);
    return -1;
}

static int remove_one(struct sftp_impl *im, const char *path, struct werr *e)
{
    if (libssh2_sftp_unlink(im->sftp, path) == 0)
        return 0;
    long st = sftp_status(im);
    if (st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH)
        return 0;
    fail(im, e, "delete %s", path);
    return -1;
}

static const char *base_of(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static int finish_locked(struct source *s, const struct drop *d, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    const struct profile *p = s->profile;
    char *src = remote_path(im, d->path);
    char *done = d->done_path ? remote_path(im, d->done_path) : NULL;
    char *ctl = d->control_path ? remote_path(im, d->control_path) : NULL;
    char *dir = NULL;
    LIBSSH2_SFTP_ATTRIBUTES at;
    int r = -1, x;

    /* The done file goes first: a data file left without one is never
     * complete again, while a done file left alone could be. */
    switch (p->source.after) {
    case AFTER_LEAVE:
        r = 0;
        break;
    case AFTER_DELETE:
        if (done && remove_one(im, done, e) < 0)
            goto out;
        if (ctl && remove_one(im, ctl, e) < 0)
            goto out;
        x = rexists(im, src, &at, e);
        if (x < 0)
            goto out;
        if (x == 1 && (at.filesize != d->size || (int64_t)at.mtime != d->mtime_ns / 1000000000LL)) {
            wlog(LOG_WARN, p->name, NULL, "sftp.finish_changed", NULL,
                 "%s: %s was replaced since it was taken; left in place", im->label, d->path);
            r = 0;
            break;
        }
        if (x == 1 && remove_one(im, src, e) < 0)
            goto out;
        r = 0;
        break;
    case AFTER_MOVE:
        if (!p->source.after_dir) {
            werr_setk(e, WERR_CONFIG, "%s: after: move without a directory", im->label);
            goto out;
        }
        dir = p->source.after_dir[0] == '/' ? xstrdup(p->source.after_dir)
                                            : remote_path(im, p->source.after_dir);
        if (rmkdir(im, dir, e) < 0)
            goto out;
        if (done && move_one(im, done, dir, base_of(d->done_path), e) < 0)
            goto out;
        if (ctl && move_one(im, ctl, dir, base_of(d->control_path), e) < 0)
            goto out;
        if (move_one(im, src, dir, d->name, e) < 0)
            goto out;
        r = 0;
        break;
    }
out:
    free(src);
    free(done);
    free(ctl);
    free(dir);
    return r;
}

/* A control file beside the drops (source.h): stat'ed first (absent is 0,
 * not an error), then read whole, up to max bytes. */
static int sftp_read_side(struct source *s, const char *rel, size_t max, char **buf, size_t *len,
                          struct werr *e)
{
    struct sftp_impl *im = s->impl;
    LIBSSH2_SFTP_ATTRIBUTES at;
    char *path = NULL, *b = NULL;
    int r;
    pthread_mutex_lock(&im->lock);
    if ((r = ensure(s, e)) < 0)
        goto out;
    path = remote_path(im, rel);
    if ((r = rexists(im, path, &at, e)) <= 0)
        goto out;
    r = -1;
    if (!(at.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISREG(at.permissions)) {
        werr_setk(e, WERR_HOSTILE, "%s: %s: not a regular file; refused", im->label, rel);
        goto out;
    }
    if ((at.flags & LIBSSH2_SFTP_ATTR_SIZE) && at.filesize > max) {
        werr_setk(e, WERR_TOO_BIG, "%s: %s: larger than %zu bytes", im->label, rel, max);
        goto out;
    }
    b = xmalloc(max + 2);
    if (read_small(im, path, b, max + 2, e) < 0)
        goto out;
    *len = strlen(b);
    if (*len > max) {
        werr_setk(e, WERR_TOO_BIG, "%s: %s: larger than %zu bytes", im->label, rel, max);
        goto out;
    }
    *buf = b;
    b = NULL;
    r = 1;
out:
    pthread_mutex_unlock(&im->lock);
    free(path);
    free(b);
    return r;
}

static int sftp_finish(struct source *s, const struct drop *d, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    int r = 0;
    if (s->profile->source.after == AFTER_LEAVE)
        return 0;
    pthread_mutex_lock(&im->lock);
    r = ensure(s, e);
    if (r == 0)
        r = finish_locked(s, d, e);
    pthread_mutex_unlock(&im->lock);
    return r;
}

/* An unsafe remote entry cannot be moved into the local quarantine without
 * reading it (a symlink would be followed); it is renamed aside on the
 * server instead, into <path>/.wharf-quarantine/, which listing skips.
 * qdir (local) is not used. */
static int sftp_quarantine(struct source *s, const struct drop *d, const char *qdir, struct werr *e)
{
    struct sftp_impl *im = s->impl;
    char *src, *dir;
    int r;
    (void)qdir;
    pthread_mutex_lock(&im->lock);
    r = ensure(s, e);
    if (r == 0) {
        src = remote_path(im, d->path);
        dir = remote_path(im, QUARANTINE_DIR);
        r = rmkdir(im, dir, e);
        if (r == 0)
            r = move_one(im, src, dir, d->name, e);
        free(src);
        free(dir);
    }
    pthread_mutex_unlock(&im->lock);
    return r;
}

const struct source_ops source_sftp_ops = {
    .name = "sftp",
    .open = sftp_open,
    .list = sftp_list,
    .fetch = sftp_fetch,
    .finish = sftp_finish,
    .read_side = sftp_read_side,
    .quarantine = sftp_quarantine,
    .close = sftp_close,
};
