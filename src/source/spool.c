/*
 * spool: a local directory as a source.
 *
 * Listing never follows anything: entries are lstat'ed, and a symlink, FIFO,
 * device, socket or hard-linked file is marked unsafe (the caller moves it
 * to quarantine with the reason).  Taking opens with O_NOFOLLOW|O_NONBLOCK,
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

static int spool_open(struct source *s, struct werr *e)
{
    struct stat st;
    if (stat(s->profile->source.path, &st) < 0) {
        werr_sys(e, "spool %s", s->profile->source.path);
        e->transient = true;
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        werr_set(e, "spool %s: not a directory", s->profile->source.path);
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

/* Is name the done file of another listed name?  ("{name}.done" -> strip.) */
static bool is_done_file(const struct profile *p, char **names, size_t n, const char *name)
{
    const char *pat = p->source.done_file, *at;
    size_t pre, post, len = strlen(name);
    if (!pat || !(at = strstr(pat, "{name}")))
        return false;
    pre = (size_t)(at - pat);
    post = strlen(at + 6);
    if (len <= pre + post || strncmp(name, pat, pre) || strcmp(name + len - post, at + 6))
        return false;
    char *base = xstrndup(name + pre, len - pre - post);
    bool r = has_name(names, n, base);
    free(base);
    return r;
}

static int list_dir(struct source *s, const char *rel, int depth, struct drop_list *out,
                    struct werr *e)
{
    const struct profile *p = s->profile;
    char *dirpath = *rel ? xasprintf("%s/%s", p->source.path, rel) : xstrdup(p->source.path);
    DIR *d = opendir(dirpath);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = -1;

    if (!d) {
        werr_sys(e, "spool %s", dirpath);
        e->transient = true;
        goto out;
    }
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_name);

    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        char *full = xasprintf("%s/%s", dirpath, name);
        char *relpath = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
        struct stat st;
        struct drop dr = {0};

        if (lstat(full, &st) < 0 || name_ignored(p, name)) {
            if (s->skipped && name_ignored(p, name) && lstat(full, &st) == 0 && S_ISREG(st.st_mode))
                source_skip(s, rel, name, (uint64_t)st.st_size, mtime_ns_of(&st), true);
            free(full);
            free(relpath);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (p->source.recursive && depth < SPOOL_MAX_DEPTH &&
                list_dir(s, relpath, depth + 1, out, e) < 0) {
                free(full);
                free(relpath);
                goto out;
            }
            free(full);
            free(relpath);
            continue;
        }
        if (fnmatch(p->source.pattern, name, 0) != 0 || is_done_file(p, names, n, name)) {
            if (!is_done_file(p, names, n, name))
                source_skip(s, rel, name, (uint64_t)st.st_size, mtime_ns_of(&st), false);
            free(full);
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
        drop_list_add(out, &dr);
        free(full);
    }
    r = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(dirpath);
    return r;
}

static int spool_list(struct source *s, struct drop_list *out, struct werr *e)
{
    return list_dir(s, "", 0, out, e);
}

static int spool_fetch(struct source *s, const struct drop *d, const char *dest,
                       char sha[SHA256_HEX_LEN], uint64_t *bytes, struct werr *e)
{
    const struct profile *p = s->profile;
    char *src = xasprintf("%s/%s", p->source.path, d->path);
    struct stat st, st2;
    struct dfile df = {.fd = -1};
    int fd = -1, r = -1;

    fd = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            werr_set(e, "%s: is a symbolic link; refused", src);
        else
            werr_sys(e, "%s", src);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        werr_sys(e, "%s: fstat", src);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        werr_set(e, "%s: no longer a regular file with one link; refused", src);
        goto out;
    }
    if (!same_drop(&st, d)) {
        werr_set(e, "%s: changed after it was seen complete (size %llu -> %llu)", src,
                 (unsigned long long)d->size, (unsigned long long)st.st_size);
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
        werr_set(e, "%s: read %llu bytes, listed %llu; it changed while being taken", src,
                 (unsigned long long)*bytes, (unsigned long long)d->size);
        dfile_abort(&df);
        goto out;
    }
    if (dfile_commit(&df, sha, e) < 0)
        goto out;
    if (d->taken_ino)
        *d->taken_ino = (uint64_t)st.st_ino;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(src);
    return r;
}

/* "name" -> "name.20261128T133000Z" when name exists in dir. */
static char *free_target(const char *dir, const char *name)
{
    char *t = xasprintf("%s/%s", dir, name);
    struct stat st;
    for (int i = 1; lstat(t, &st) == 0 && i < 1000; i++) {
        free(t);
        t = xasprintf("%s/%s.%ld.%d", dir, name, (long)time(NULL), i);
    }
    return t;
}

static int spool_finish(struct source *s, const struct drop *d, struct werr *e)
{
    const struct profile *p = s->profile;
    char *src = xasprintf("%s/%s", p->source.path, d->path);
    char *done = d->done_path ? xasprintf("%s/%s", p->source.path, d->done_path) : NULL;
    struct stat st;
    int r = -1;

    switch (p->source.after) {
    case AFTER_LEAVE:
        break;
    case AFTER_DELETE:
        /* Only the file that was taken: one rewritten or replaced since is
         * a new drop and stays for the next poll. */
        if (lstat(src, &st) == 0 && same_drop(&st, d) && durable_unlink(src, e) < 0)
            goto out;
        break;
    case AFTER_MOVE:
        /* Only the content that was taken: a file re-uploaded under the
         * same name since is a new drop and stays for the next poll. */
        if (lstat(src, &st) == 0 && same_drop(&st, d)) {
            char *dst;
            if (mkdirs(p->source.after_dir, 0750, e) < 0)
                goto out;
            dst = free_target(p->source.after_dir, d->name);
            if (durable_rename(src, dst, e) < 0) {
                free(dst);
                goto out;
            }
            free(dst);
        }
        break;
    }
    if (done && p->source.after != AFTER_LEAVE && durable_unlink(done, e) < 0)
        goto out;
    r = 0;
out:
    free(src);
    free(done);
    return r;
}

static int spool_quarantine(struct source *s, const struct drop *d, const char *qdir,
                            struct werr *e)
{
    char *src = xasprintf("%s/%s", s->profile->source.path, d->path);
    char *dst = NULL;
    int r = -1;
    if (mkdirs(qdir, 0750, e) < 0)
        goto out;
    dst = free_target(qdir, d->name);
    /* rename(2) moves the entry itself; a symlink is never followed. */
    r = durable_rename(src, dst, e);
out:
    free(src);
    free(dst);
    return r;
}

const struct source_ops source_spool_ops = {
    .name = "spool",
    .open = spool_open,
    .list = spool_list,
    .fetch = spool_fetch,
    .finish = spool_finish,
    .quarantine = spool_quarantine,
    .close = spool_close,
};
