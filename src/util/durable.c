/*
 * durable: crash-safe file writes (see durable.h for the rule).
 */
#include "util/durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xmalloc.h"

int read_bounded(int fd, size_t max, char **buf, size_t *len)
{
    char *b = xmalloc(max + 2);
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, b + used, max + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (used += (size_t)(n > 0 ? n : 0)) > max) {
            free(b);
            return n < 0 ? -1 : -2;
        }
        if (n == 0)
            break;
    }
    b[used] = 0;
    *buf = b;
    *len = used;
    return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "<path>.tmp-<suffix>", with the last component cut so that it stays
 * within NAME_MAX: a partner's 255-byte file name is legal, its temp name
 * must be too. */
static char *tmp_name(const char *path, const char *suffix)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dirlen = (size_t)(base - path), baselen = strlen(base);
    size_t room = NAME_MAX - strlen(".tmp-") - strlen(suffix);
    if (baselen > room)
        baselen = room;
    return xasprintf("%.*s%.*s.tmp-%s", (int)dirlen, path, (int)baselen, base, suffix);
}

int dfile_open(struct dfile *f, const char *path, mode_t mode, bool hashing, struct werr *e)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    int tries;
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = xstrdup(path);
    for (tries = 0; tries < 100; tries++) {
        unsigned char r[8];
        char suffix[9];
        int i;
        for (i = 0; i < 8; i++)
            r[i] = (unsigned char)rand();
        for (i = 0; i < 8; i++)
            suffix[i] = alnum[r[i] % 36];
        suffix[8] = 0;
        free(f->tmp);
        f->tmp = tmp_name(path, suffix);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        werr_sys(e, "%s: create", f->tmp);
        free(f->tmp);
        free(f->path);
        f->tmp = f->path = NULL;
        return -1;
    }
    f->hashing = hashing;
    if (hashing)
        sha256_init(&f->hash);
    return 0;
}

#define WRITEBACK_STEP (8u << 20)

int dfile_write(struct dfile *f, const void *buf, size_t len, struct werr *e)
{
    if (write_all(f->fd, buf, len) < 0) {
        werr_sys(e, "%s: write", f->path);
        return -1;
    }
    if (f->hashing)
        sha256_update(&f->hash, buf, len);
    f->bytes += len;
    /* A large file's writeback is started every WRITEBACK_STEP bytes
     * (sync_file_range, SYNC_FILE_RANGE_WRITE: no wait, no promise), so the
     * disk writes while the rest is read and hashed and the fsync of
     * dfile_commit, still the durable point, finds little left to do. */
    if (f->bytes - f->started >= WRITEBACK_STEP) {
        (void)sync_file_range(f->fd, (off_t)f->started, (off_t)(f->bytes - f->started),
                              SYNC_FILE_RANGE_WRITE);
        f->started = f->bytes;
    }
    return 0;
}

int dfile_commit(struct dfile *f, char hex[SHA256_HEX_LEN], struct werr *e)
{
    int r = -1;
    if (fsync(f->fd) < 0) {
        werr_sys(e, "%s: fsync", f->path);
        werr_setkind(e, WERR_IO); /* never retried into success */
        goto out;
    }
    if (close(f->fd) < 0) {
        f->fd = -1;
        werr_sys(e, "%s: close", f->path);
        goto out;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) < 0) {
        werr_sys(e, "%s: rename", f->path);
        goto out;
    }
    free(f->tmp);
    f->tmp = NULL;
    if (fsync_parent(f->path, e) < 0)
        goto out;
    if (f->hashing) {
        if (hex)
            sha256_final(&f->hash, hex);
        else
            sha256_abort(&f->hash);
        f->hashing = false;
    }
    r = 0;
out:
    dfile_abort(f);
    return r;
}

void dfile_abort(struct dfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp)
        unlink(f->tmp);
    if (f->hashing)
        sha256_abort(&f->hash);
    f->hashing = false;
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
}

int durable_write(const char *path, const void *data, size_t len, struct werr *e)
{
    struct dfile f;
    if (dfile_open(&f, path, 0644, false, e) < 0)
        return -1;
    if (dfile_write(&f, data, len, e) < 0) {
        dfile_abort(&f);
        return -1;
    }
    return dfile_commit(&f, NULL, e);
}

int fsync_dir(const char *dir, struct werr *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        werr_sys(e, "%s: open directory", dir);
        return -1;
    }
    if (fsync(fd) < 0) {
        werr_sys(e, "%s: fsync directory", dir);
        werr_setkind(e, WERR_IO);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int fsync_parent(const char *path, struct werr *e)
{
    char *copy = xstrdup(path);
    int r = fsync_dir(dirname(copy), e);
    free(copy);
    return r;
}

int durable_rename(const char *from, const char *to, struct werr *e)
{
    char *a, *b;
    int r = 0;
    if (rename(from, to) < 0) {
        werr_sys(e, "rename %s -> %s", from, to);
        return -1;
    }
    a = xstrdup(from);
    b = xstrdup(to);
    if (fsync_dir(dirname(b), e) < 0)
        r = -1;
    else if (strcmp(dirname(a), b) != 0 && fsync_dir(a, e) < 0)
        r = -1;
    free(a);
    free(b);
    return r;
}

int durable_unlink(const char *path, struct werr *e)
{
    if (unlink(path) < 0 && errno != ENOENT) {
        werr_sys(e, "%s: unlink", path);
        return -1;
    }
    return fsync_parent(path, e);
}

int mkdirs(const char *path, mode_t mode, struct werr *e)
{
    struct stat st;
    char *p, *slash;
    int r = -1;

    /* The common case: it is already there. */
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        werr_set(e, "%s: exists and is not a directory", path);
        return -1;
    }
    p = xstrdup(path);
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = 0;
    slash = strrchr(p, '/');
    if (slash && slash != p) {
        *slash = 0;
        if (mkdirs(p, mode, e) < 0)
            goto out;
        *slash = '/';
    }
    if (mkdir(p, mode) == 0) {
        if (fsync_parent(p, e) < 0)
            goto out;
    } else if (errno != EEXIST) {
        werr_sys(e, "%s: mkdir", p);
        goto out;
    }
    r = 0;
out:
    free(p);
    return r;
}

int open_scratch(const char *path, mode_t mode)
{
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(path, flags, mode);
    const char *slash = strrchr(path, '/');
    if (fd >= 0 || errno != ENOENT || !slash || slash == path)
        return fd;
    char *dir = xstrndup(path, (size_t)(slash - path));
    int made = mkdir(dir, 0700) == 0 || errno == EEXIST;
    free(dir);
    return made ? open(path, flags, mode) : -1;
}

static int rmtree_at(int at, const char *name, const char *shown, struct werr *e)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : (werr_sys(e, "%s", shown), -1);
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d;
        struct dirent *de;
        int r = 0;
        if (fd < 0)
            return werr_sys(e, "%s", shown), -1;
        d = fdopendir(fd);
        if (!d) {
            close(fd);
            return werr_sys(e, "%s", shown), -1;
        }
        while (r == 0 && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            r = rmtree_at(dirfd(d), de->d_name, shown, e);
        }
        closedir(d);
        if (r < 0)
            return -1;
        if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return werr_sys(e, "%s: rmdir", shown), -1;
        return 0;
    }
    if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
        return werr_sys(e, "%s: unlink", shown), -1;
    return 0;
}

int rmtree(const char *path, struct werr *e)
{
    return rmtree_at(AT_FDCWD, path, path, e);
}

static int copy_limit(int src, struct dfile *dst, uint64_t limit, struct werr *e)
{
    static __thread char buf[1 << 17];
    for (;;) {
        size_t want = sizeof buf;
        if (limit - dst->bytes < want)
            want = (size_t)(limit - dst->bytes) + 1; /* one more shows the excess */
        ssize_t n = read(src, buf, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            werr_sys(e, "read");
            return -1;
        }
        if (n == 0)
            return 0;
        if ((uint64_t)n > limit - dst->bytes) {
            werr_setk(e, WERR_TOO_BIG, "more than %llu bytes", (unsigned long long)limit);
            return -1;
        }
        if (dfile_write(dst, buf, (size_t)n, e) < 0)
            return -1;
    }
}

int copy_fd(int src, struct dfile *dst, struct werr *e)
{
    return copy_limit(src, dst, UINT64_MAX - 1, e);
}

/* After a reflink: hash the clone (ours alone) by reading it back. */
static int hash_clone(struct dfile *dst, uint64_t limit, struct werr *e)
{
    static __thread char buf[1 << 17];
    struct stat st;
    int fd = open(dst->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = -1;
    if (fd < 0 || fstat(fd, &st) < 0) {
        werr_sys(e, "%s: read back", dst->tmp);
        goto out;
    }
    if ((uint64_t)st.st_size > limit) {
        werr_setk(e, WERR_TOO_BIG, "more than %llu bytes", (unsigned long long)limit);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            werr_sys(e, "%s: read back", dst->tmp);
            goto out;
        }
        if (n == 0)
            break;
        if (dst->hashing)
            sha256_update(&dst->hash, buf, (size_t)n);
        dst->bytes += (uint64_t)n;
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    return r;
}

int dfile_copy_of(struct dfile *dst, int src, uint64_t limit, struct werr *e)
{
    if (limit == UINT64_MAX)
        limit--;
    if (dst->bytes == 0 && ioctl(dst->fd, FICLONE, src) == 0)
        return hash_clone(dst, limit, e);
    /* No reflinks here (EOPNOTSUPP, EXDEV, EINVAL...): copy the bytes. */
    return copy_limit(src, dst, limit, e);
}

int fsync_tree_dirs(const char *path, struct werr *e)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int r = 0;
    if (!d) {
        werr_sys(e, "%s: open directory", path);
        return -1;
    }
    while (r == 0 && (de = readdir(d))) {
        if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            char *sub = xasprintf("%s/%s", path, de->d_name);
            r = fsync_tree_dirs(sub, e);
            free(sub);
        }
    }
    closedir(d);
    return r < 0 ? -1 : fsync_dir(path, e);
}
