/*
 * spool: a local directory as a source.
 *
 * Every step walks from directory descriptors, never from path strings: the
 * root is opened once per step, each subdirectory O_DIRECTORY|O_NOFOLLOW
 * relative to the one above, and the file itself is opened, stat'ed,
 * unlinked or renamed relative to its directory's descriptor (openat,
 * fstatat, unlinkat, renameat).  A partner who swaps a subdirectory for a
 * symlink to somewhere else between two steps makes the step fail; it can
 * never make wharf read, move or delete anything outside the spool.
 *
 * Listing never follows anything: entries are fstatat'ed without following,
 * and a symlink, FIFO, device, socket or hard-linked file is marked unsafe
 * (the caller moves it to quarantine with the reason).  Taking opens with
 * O_NOFOLLOW|O_NONBLOCK,
 * fstat's the descriptor (regular, one link, same size and mtime as listed)
 * and copies it into a wharf-owned file (a reflink where the filesystem
 * offers one), hashing the bytes that were actually taken; the partner's
 * inode is never renamed into wharf, since the partner may still hold it
 * open.  `after:` is applied by finish(), only once the intake is sealed,
 * and only to the inode that was taken.
 */
#include "source/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/xmalloc.h"

#define SPOOL_MAX_DEPTH 16
#define DONE_MAX        4096 /* bytes of a done file read for its size and sha256 */

static int64_t mtime_ns_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Still the regular file, size and mtime that were listed (and claimed),
 * and the inode that was taken when that is known. */
static bool same_drop(const struct stat *st, const struct drop *d)
{
    return S_ISREG(st->st_mode) && (uint64_t)st->st_size == d->size &&
           mtime_ns_of(st) == d->mtime_ns && (!d->ino || (uint64_t)st->st_ino == d->ino);
}

/* The spool root as the operator configured it (following the operator's
 * own symlinks: the path is trusted, what is below it is not). */
static int root_open(const struct profile *p, struct werr *e)
{
    int fd = open(p->source.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        werr_sysk(e, WERR_UNREACHABLE, "spool %s", p->source.path);
    }
    return fd;
}

static bool bad_component(const char *c, size_t len)
{
    return len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.');
}

/*
 * The directory holding rel ("sub/deeper/name"), reached from the root one
 * level at a time, each opened O_DIRECTORY|O_NOFOLLOW relative to the one
 * above: a level that is (or has just been swapped for) a symlink fails
 * with ELOOP/ENOTDIR instead of leading out of the spool.  Returns its
 * descriptor (caller closes) and points *leaf into rel at the last
 * component; -1 with e filled, -2 (e filled too) when a level is gone.
 */
static int walk_parent(const struct profile *p, const char *rel, const char **leaf, struct werr *e)
{
    const char *c = rel, *slash;
    int dfd = root_open(p, e), gone = 0;
    while (dfd >= 0 && (slash = strchr(c, '/'))) {
        char *comp = xstrndup(c, (size_t)(slash - c));
        int nfd = -1;
        if (bad_component(comp, strlen(comp)))
            werr_setk(e, WERR_HOSTILE, "spool %s: %s: not a plain relative path; refused",
                      p->source.path, rel);
        else if ((nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                werr_setk(e, WERR_HOSTILE,
                          "spool %s: %s: %s is no longer a directory (a symbolic link?); refused",
                          p->source.path, rel, comp);
            else {
                gone = errno == ENOENT;
                werr_sys(e, "spool %s: %s: %s", p->source.path, rel, comp);
            }
        }
        free(comp);
        close(dfd);
        dfd = nfd;
        c = slash + 1;
    }
    if (dfd >= 0 && bad_component(c, strlen(c))) {
        werr_setk(e, WERR_HOSTILE, "spool %s: %s: not a plain relative path; refused",
                  p->source.path, rel);
        close(dfd);
        dfd = -1;
    }
    *leaf = c;
    return dfd < 0 && gone ? -2 : dfd;
}

static int spool_open(struct source *s, struct werr *e)
{
    struct stat st;
    if (stat(s->profile->source.path, &st) < 0) {
        werr_sysk(e, WERR_UNREACHABLE, "spool %s", s->profile->source.path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        werr_setk(e, WERR_UNREACHABLE, "spool %s: not a directory", s->profile->source.path);
        return -1;
    }
    return 0;
}

static void spool_close(struct source *s)
{
    (void)s;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_name(char **names, size_t n, const char *name)
{
    return n && bsearch(&name, names, n, sizeof *names, cmp_name) != NULL;
}

struct names {
    char **v;
    size_t n;
};

static bool names_has(const void *ctx, const char *name)
{
    const struct names *ns = ctx;
    return has_name(ns->v, ns->n, name);
}

/* Is name the done or control file of another name? */
static bool is_done_file(const struct profile *p, char **names, size_t n, const char *name)
{
    struct names ns = {names, n};
    return side_file(p, name, names_has, &ns);
}

/* List the directory open at dfd (taken over: closed here), rel being its
 * path below the root ("" for the root itself).  A subdirectory that cannot
 * be read is passed over and noted (source_skip_dir): one partner directory
 * with the wrong mode must not stop the whole feed. */
static int list_dir(struct source *s, int dfd, const char *rel, int depth, struct drop_list *out,
                    struct werr *e)
{
    const struct profile *p = s->profile;
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool unsearchable = false;
    int r = -1;

    if (!d) {
        werr_sysk(e, WERR_UNREACHABLE, "spool %s%s%s", p->source.path, *rel ? "/" : "", rel);
        close(dfd);
        goto out;
    }
    dfd = dirfd(d);
    for (;;) {
        errno = 0;
        if (!(de = readdir(d)))
            break;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    if (errno) {
        if (!*rel) {
            werr_sysk(e, WERR_UNREACHABLE, "spool %s: read directory", p->source.path);
            goto out;
        }
        source_skip_dir(s, rel, strerror(errno));
        r = 0;
        goto out;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_name);

    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        char *relpath = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
        struct stat st;
        struct drop dr = {0};

        int sr = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW);
        if (sr < 0 && errno != ENOENT && !unsearchable) {
            /* listable but not searchable (mode r without x) */
            unsearchable = true;
            if (!*rel) {
                werr_sysk(e, WERR_UNREACHABLE, "spool %s: %s", p->source.path, name);
                free(relpath);
                goto out;
            }
            source_skip_dir(s, rel, strerror(errno));
        }
        if (sr < 0 || name_ignored(p, name)) {
            if (sr == 0 && S_ISREG(st.st_mode) && name_ignored(p, name))
                source_skip(s, rel, name, (uint64_t)st.st_size, mtime_ns_of(&st), true);
            free(relpath);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (p->source.recursive && depth < SPOOL_MAX_DEPTH) {
                int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                /* gone or swapped for a symlink since the fstatat: passed
                 * over this time (never followed); unreadable: noted */
                if (sub < 0 && errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
                    source_skip_dir(s, relpath, strerror(errno));
                if (sub >= 0 && list_dir(s, sub, relpath, depth + 1, out, e) < 0) {
                    free(relpath);
                    goto out;
                }
            }
            free(relpath);
            continue;
        }
        if (fnmatch(p->source.pattern, name, 0) != 0 || is_done_file(p, names, n, name)) {
            if (!is_done_file(p, names, n, name))
                source_skip(s, rel, name, (uint64_t)st.st_size, mtime_ns_of(&st), false);
            free(relpath);
            continue;
        }
        dr.path = relpath;
        dr.name = xstrdup(name);
        dr.size = (uint64_t)st.st_size;
        dr.mtime_ns = mtime_ns_of(&st);
        if (S_ISLNK(st.st_mode))
            dr.unsafe = xstrdup("a symbolic link (never followed)");
        else if (S_ISFIFO(st.st_mode))
            dr.unsafe = xstrdup("a FIFO (named pipe)");
        else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            dr.unsafe = xstrdup("a device node");
        else if (S_ISSOCK(st.st_mode))
            dr.unsafe = xstrdup("a socket");
        else if (!S_ISREG(st.st_mode))
            dr.unsafe = xstrdup("not a regular file");
        else if (st.st_nlink != 1)
            dr.unsafe = xasprintf("a hard link (%lu links; could alias a file outside the spool)",
                                  (unsigned long)st.st_nlink);
        if (p->source.done_file) {
            char *dn = done_name(p->source.done_file, name);
            dr.has_done = has_name(names, n, dn);
            dr.done_path = *rel ? xasprintf("%s/%s", rel, dn) : xstrdup(dn);
            free(dn);
        }
        if (p->control.file) {
            char *cn = done_name(p->control.file, name);
            dr.has_control = has_name(names, n, cn);
            dr.control_path = *rel ? xasprintf("%s/%s", rel, cn) : xstrdup(cn);
            free(cn);
        }
        drop_list_add(out, &dr);
    }
    r = 0;
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

static int spool_list(struct source *s, struct drop_list *out, struct werr *e)
{
    int root = root_open(s->profile, e);
    if (root < 0)
        return -1;
    return list_dir(s, root, "", 0, out, e);
}

/* The done file's word on d (source_done_check), read like the file
 * itself (walked to, no symlink followed); its first DONE_MAX - 1 bytes
 * are enough for what a done file may say (as over SFTP). */
static int check_done(const struct profile *p, const struct drop *d, const char sha[SHA256_HEX_LEN],
                      struct werr *e)
{
    const char *leaf;
    char *shown = xasprintf("%s/%s", p->source.path, d->done_path), text[DONE_MAX];
    struct stat st;
    size_t used = 0;
    ssize_t n;
    int dfd = walk_parent(p, d->done_path, &leaf, e), fd = -1, r = -1;
    if (dfd < 0)
        goto out;
    fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    close(dfd);
    if (fd < 0) {
        werr_sys(e, "%s", shown);
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        werr_setk(e, WERR_HOSTILE, "%s: the done file is not a regular file; refused", shown);
        goto out;
    }
    while (used < sizeof text - 1 && (n = read(fd, text + used, sizeof text - 1 - used)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            werr_sys(e, "%s: read", shown);
            goto out;
        }
        used += (size_t)n;
    }
    text[used] = 0;
    r = source_done_check(p->source.path, d, text, sha, e);
out:
    if (fd >= 0)
        close(fd);
    free(shown);
    return r;
}

static int spool_fetch(struct source *s, const struct drop *d, const char *dest,
                       char sha[SHA256_HEX_LEN], uint64_t *bytes, struct werr *e)
{
    const struct profile *p = s->profile;
    char *src = xasprintf("%s/%s", p->source.path, d->path);
    const char *leaf;
    struct stat st, st2;
    struct dfile df = {.fd = -1};
    int dfd, fd = -1, r = -1;

    if ((dfd = walk_parent(p, d->path, &leaf, e)) < 0)
        goto out;
    fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    close(dfd);
    if (fd < 0) {
        if (errno == ELOOP)
            werr_setk(e, WERR_HOSTILE, "%s: is a symbolic link; refused", src);
        else
            werr_sys(e, "%s", src);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        werr_sys(e, "%s: fstat", src);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        werr_setk(e, WERR_HOSTILE, "%s: no longer a regular file with one link; refused", src);
        goto out;
    }
    if (!same_drop(&st, d)) {
        werr_setk(e, WERR_HOSTILE, "%s: changed after it was seen complete (size %llu -> %llu)",
                  src, (unsigned long long)d->size, (unsigned long long)st.st_size);
        goto out;
    }
    /* Always a copy of our own, hashed as it is written: the partner's inode
     * stays where it is (it may still be open for writing), and is deleted
     * or moved by finish() only once the copy is sealed. */
    if (dfile_open(&df, dest, 0640, true, e) < 0)
        goto out;
    if (dfile_copy_of(&df, fd, d->size, e) < 0) {
        werr_prefix(e, "%s", src);
        dfile_abort(&df);
        goto out;
    }
    *bytes = df.bytes;
    if (fstat(fd, &st2) < 0) {
        werr_sys(e, "%s: fstat", src);
        dfile_abort(&df);
        goto out;
    }
    if (*bytes != d->size || !same_drop(&st2, d)) {
        werr_setk(e, WERR_HOSTILE, "%s: read %llu bytes, listed %llu; it changed while being taken",
                  src, (unsigned long long)*bytes, (unsigned long long)d->size);
        dfile_abort(&df);
        goto out;
    }
    if (dfile_commit(&df, sha, e) < 0)
        goto out;
    if (d->done_path && check_done(p, d, sha, e) < 0) {
        unlink(dest); /* our copy of bytes the done file disowns */
        goto out;
    }
    if (d->taken_ino)
        *d->taken_ino = (uint64_t)st.st_ino;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(src);
    return r;
}

/* "name", or "name.<time>.<n>" when name exists in the directory at dfd. */
static char *free_name(int dfd, const char *name)
{
    char *t = xstrdup(name);
    struct stat st;
    for (int i = 1; fstatat(dfd, t, &st, AT_SYMLINK_NOFOLLOW) == 0 && i < 1000; i++) {
        free(t);
        t = xasprintf("%s.%ld.%d", name, (long)time(NULL), i);
    }
    return t;
}

/* Move leaf (in the spool directory at dfd) into dir, an operator's
 * directory (quarantine, after: move), under a free name; both directories
 * fsynced.  rename(2) moves the entry itself: a symlink is never followed. */
static int move_out(int dfd, const char *leaf, const char *shown, const char *dir, const char *name,
                    struct werr *e)
{
    char *to = NULL;
    int tfd = -1, r = -1;
    if (mkdirs(dir, 0750, e) < 0)
        goto out;
    if ((tfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        werr_sys(e, "%s", dir);
        goto out;
    }
    to = free_name(tfd, name);
    if (renameat(dfd, leaf, tfd, to) < 0) {
        werr_sys(e, "rename %s -> %s/%s", shown, dir, to);
        goto out;
    }
    if (fsync(tfd) < 0 || fsync(dfd) < 0) {
        werr_sys(e, "rename %s -> %s/%s: fsync directory", shown, dir, to);
        werr_setkind(e, WERR_IO); /* never retried into success */
        goto out;
    }
    r = 0;
out:
    if (tfd >= 0)
        close(tfd);
    free(to);
    return r;
}

/* Unlink leaf in dfd; its directory fsynced unless the caller syncs it
 * later itself (sync false). */
static int unlink_in(int dfd, const char *leaf, const char *shown, bool sync, struct werr *e)
{
    if (unlinkat(dfd, leaf, 0) < 0 && errno != ENOENT) {
        werr_sys(e, "%s: unlink", shown);
        return -1;
    }
    if (sync && fsync(dfd) < 0) {
        werr_sys(e, "%s: fsync directory", shown);
        werr_setkind(e, WERR_IO); /* never retried into success */
        return -1;
    }
    return 0;
}

/* Delete the done file of d, walked to like the file itself; its
 * directory fsynced unless the caller syncs it after (sync false). */
static int finish_done(const struct profile *p, const struct drop *d, bool sync, struct werr *e)
{
    const char *leaf;
    char *shown = xasprintf("%s/%s", p->source.path, d->done_path);
    int dfd = walk_parent(p, d->done_path, &leaf, e), r = -1;
    if (dfd < 0) {
        r = dfd == -2 ? 0 : -1; /* its directory is gone: so is the done file */
        goto out;
    }
    r = unlink_in(dfd, leaf, shown, sync, e);
    close(dfd);
out:
    free(shown);
    return r;
}

/* Are a and b (relative paths) in the same directory? */
static bool same_dir(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;
    return la == lb && !strncmp(a, b, la);
}

/* The control file of d goes where the file went (deleted or moved); it is
 * sealed in the bag already. */
static int finish_control(const struct profile *p, const struct drop *d, struct werr *e)
{
    const char *leaf;
    char *shown = xasprintf("%s/%s", p->source.path, d->control_path);
    struct stat st;
    int dfd = walk_parent(p, d->control_path, &leaf, e), r = -1;
    if (dfd < 0) {
        r = dfd == -2 ? 0 : -1;
        goto out;
    }
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        r = 0; /* gone, or not one we would have read */
    else if (p->source.after == AFTER_MOVE)
        r = move_out(dfd, leaf, shown, p->source.after_dir, strrchr(shown, '/') + 1, e);
    else
        r = unlink_in(dfd, leaf, shown, true, e);
    close(dfd);
out:
    free(shown);
    return r;
}

/* Read a control file beside the drops (see source.h). */
static int spool_read_side(struct source *s, const char *rel, size_t max, char **buf, size_t *len,
                           struct werr *e)
{
    const struct profile *p = s->profile;
    char *shown = xasprintf("%s/%s", p->source.path, rel);
    const char *leaf;
    struct stat st;
    int dfd, fd = -1, r = -1, rb;

    if ((dfd = walk_parent(p, rel, &leaf, e)) < 0) {
        r = dfd == -2 ? 0 : -1;
        goto out;
    }
    fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    close(dfd);
    if (fd < 0) {
        if (errno == ENOENT)
            r = 0;
        else if (errno == ELOOP)
            werr_setk(e, WERR_HOSTILE, "%s: is a symbolic link; refused", shown);
        else
            werr_sys(e, "%s", shown);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        werr_sys(e, "%s: fstat", shown);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        werr_setk(e, WERR_HOSTILE, "%s: not a regular file with one link; refused", shown);
        goto out;
    }
    if ((rb = read_bounded(fd, max, buf, len)) < 0) {
        if (rb == -2)
            werr_setk(e, WERR_TOO_BIG, "%s: larger than %zu bytes", shown, max);
        else
            werr_sys(e, "%s: read", shown);
        goto out;
    }
    r = 1;
out:
    if (fd >= 0)
        close(fd);
    free(shown);
    return r;
}

static int spool_finish(struct source *s, const struct drop *d, struct werr *e)
{
    const struct profile *p = s->profile;
    char *src = xasprintf("%s/%s", p->source.path, d->path);
    const char *leaf;
    struct stat st;
    int dfd = -1, r = -1;
    /* With a done or control file to go as well, the file's directory is
     * fsynced once after all of them (a done file in the same directory
     * gets no fsync of its own: that one covers it): the order of the
     * unlinks does not matter, finish runs again after a crash until the
     * ledger says done, and that commit comes after every fsync here. */
    bool later = d->done_path || d->control_path, deleted = false;

    if (p->source.after == AFTER_LEAVE) {
        r = 0;
        goto out;
    }
    if ((dfd = walk_parent(p, d->path, &leaf, e)) < 0) {
        /* Idempotent: its directory gone means the drop is gone. */
        if (dfd != -2)
            goto out;
    } else if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && same_drop(&st, d)) {
        /* Only the file that was taken: one rewritten, replaced or
         * re-uploaded under the same name since is a new drop and stays
         * for the next poll. */
        if (p->source.after == AFTER_DELETE
                ? unlink_in(dfd, leaf, src, !later, e) < 0
                : move_out(dfd, leaf, src, p->source.after_dir, d->name, e) < 0)
            goto out;
        deleted = p->source.after == AFTER_DELETE && later;
    }
    if (d->done_path && finish_done(p, d, !(deleted && same_dir(d->path, d->done_path)), e) < 0)
        goto out;
    if (d->control_path && finish_control(p, d, e) < 0)
        goto out;
    if (deleted && fsync(dfd) < 0) {
        werr_sys(e, "%s: fsync directory", src);
        werr_setkind(e, WERR_IO); /* never retried into success */
        goto out;
    }
    r = 0;
out:
    if (dfd >= 0)
        close(dfd);
    free(src);
    return r;
}

static int spool_quarantine(struct source *s, const struct drop *d, const char *qdir,
                            struct werr *e)
{
    char *src = xasprintf("%s/%s", s->profile->source.path, d->path);
    const char *leaf;
    int dfd = walk_parent(s->profile, d->path, &leaf, e), r = -1;
    if (dfd >= 0) {
        r = move_out(dfd, leaf, src, qdir, d->name, e);
        close(dfd);
    }
    free(src);
    return r;
}

const struct source_ops source_spool_ops = {
    .name = "spool",
    .open = spool_open,
    .list = spool_list,
    .fetch = spool_fetch,
    .finish = spool_finish,
    .read_side = spool_read_side,
    .quarantine = spool_quarantine,
    .close = spool_close,
};
