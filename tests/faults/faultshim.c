/*
 * faultshim: an LD_PRELOAD library for wharf's I/O-fault suite
 * (tests/integration/faults.sh).  It fails the Nth call of one kind of
 * system call, the way SQLite's test harness fails the Nth write or fsync,
 * so the test can loop N over a range and check that every failure ends
 * its unit of work cleanly.
 *
 *   WHARF_FAULT=KIND:N:ERRNO   KIND is write | fsync | rename | open
 *                              N counts from 1; ERRNO is a name (EIO,
 *                              ENOSPC, EDQUOT, EACCES, EMFILE, EROFS, EPERM)
 *                              or a number.  Only the Nth call fails.
 *   WHARF_FAULT_DIR=DIR        count only calls on paths (or fds whose
 *                              /proc/self/fd link is) under DIR; without it
 *                              every call counts.
 *   WHARF_FAULT_LOG=FILE       append one line per injected fault (which
 *                              call, path, errno, and the object that made
 *                              the call: "by wharf" or "by libsqlite3.so.0"),
 *                              and at exit the number of matching calls
 *                              seen, so the test knows whether N was reached.
 *   WHARF_FAULT_BACKTRACE=1    also append the caller's backtrace to the log
 *                              when the fault fires (to tell who made the
 *                              call, e.g. SQLite's checkpoint at close).
 *
 * Kinds cover the calls glibc and SQLite really make: write also counts
 * pwrite/pwrite64/writev, fsync also fdatasync, rename also renameat and
 * renameat2, open also open64/openat/openat64/creat (creat, O_CREAT and
 * read-only opens alike).  Test-only: never installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The shim defines open and open64, pwrite and pwrite64 itself: it must not
 * see them renamed by the build's -D_FILE_OFFSET_BITS=64. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum kind { K_NONE = -1, K_WRITE, K_FSYNC, K_RENAME, K_OPEN };
static const char *kind_names[] = {"write", "fsync", "rename", "open"};

static enum kind want_kind = K_NONE;
static long want_n;
static int want_errno = EIO;
static char dir[PATH_MAX];
static size_t dir_len;
static char logpath[PATH_MAX];
static long counter;
static int fired;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);

/* Resolved lazily too: another library's constructor may call us first. */
static void *resolve(void **slot, const char *name)
{
    if (!*slot)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}
#define REAL(f) ((__typeof__(real_##f))resolve((void **)&real_##f, #f))

static int parse_errno(const char *s)
{
    static const struct {
        const char *name;
        int v;
    } t[] = {{"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EACCES", EACCES},
             {"EMFILE", EMFILE}, {"EROFS", EROFS},   {"EPERM", EPERM},   {"EINTR", EINTR},
             {"ENOENT", ENOENT}, {"EXDEV", EXDEV}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name))
            return t[i].v;
    return atoi(s) > 0 ? atoi(s) : EIO;
}

static void log_line(const char *fmt, ...)
{
    char buf[PATH_MAX + 256];
    va_list ap;
    int fd, n;
    if (!logpath[0] || !REAL(write) || !REAL(open))
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    fd = real_open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    real_write(fd, buf, (size_t)n);
    close(fd);
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *spec = getenv("WHARF_FAULT"), *d = getenv("WHARF_FAULT_DIR"),
               *l = getenv("WHARF_FAULT_LOG");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_renameat2 = dlsym(RTLD_NEXT, "renameat2");
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_creat = dlsym(RTLD_NEXT, "creat");
    if (l)
        snprintf(logpath, sizeof logpath, "%s", l);
    if (d && realpath(d, dir))
        dir_len = strlen(dir);
    if (spec) {
        char k[16] = "", e[32] = "";
        long n = 0;
        if (sscanf(spec, "%15[a-z]:%ld:%31s", k, &n, e) >= 2) {
            for (int i = 0; i < 4; i++)
                if (!strcmp(k, kind_names[i]))
                    want_kind = (enum kind)i;
            want_n = n;
            if (e[0])
                want_errno = parse_errno(e);
        }
    }
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (want_kind != K_NONE)
        log_line("faultshim: %s calls seen %ld, fired %d\n", kind_names[want_kind],
                 __atomic_load_n(&counter, __ATOMIC_SEQ_CST), fired);
}

static int under_dir(const char *p)
{
    if (!dir_len)
        return 1;
    return p && !strncmp(p, dir, dir_len) && (p[dir_len] == '/' || p[dir_len] == 0);
}

static int path_matches(int dirfd, const char *path, char *abs, size_t cap)
{
    if (!path)
        return 0;
    if (path[0] == '/') {
        snprintf(abs, cap, "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD || dirfd < 0) {
            if (!getcwd(base, sizeof base))
                return 0;
        } else {
            char link[64];
            ssize_t n;
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            n = readlink(link, base, sizeof base - 1);
            if (n < 0)
                return 0;
            base[n] = 0;
        }
        snprintf(abs, cap, "%s/%s", base, path);
    }
    return under_dir(abs);
}

static int fd_matches(int fd, char *abs, size_t cap)
{
    char link[64];
    ssize_t n;
    if (!dir_len) {
        snprintf(abs, cap, "fd %d", fd);
        return 1;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, abs, cap - 1);
    if (n < 0)
        return 0;
    abs[n] = 0;
    return under_dir(abs);
}

/* 1 when this matching call is the one to fail (errno is then set). */
static int should_fail(enum kind k, const char *what, void *caller)
{
    long c;
    Dl_info di;
    const char *by = "?";
    if (k != want_kind)
        return 0;
    c = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
    if (c != want_n)
        return 0;
    fired = 1;
    if (dladdr(caller, &di) && di.dli_fname) {
        by = strrchr(di.dli_fname, '/');
        by = by ? by + 1 : di.dli_fname;
    }
    log_line("faultshim: failing %s #%ld on %s with %s by %s\n", kind_names[k], c, what,
             strerror(want_errno), by);
    if (getenv("WHARF_FAULT_BACKTRACE") && logpath[0]) {
        void *bt[32];
        int fd = REAL(open)(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            backtrace_symbols_fd(bt, backtrace(bt, 32), fd);
            close(fd);
        }
    }
    return 1;
}

#define FD_CHECK(k, fd)                                                                            \
    do {                                                                                           \
        char abs_[PATH_MAX];                                                                       \
        if (want_kind == (k) && fd_matches((fd), abs_, sizeof abs_) &&                             \
            should_fail((k), abs_, __builtin_return_address(0))) {                                 \
            errno = want_errno;                                                                    \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

#define PATH_CHECK(k, dirfd, path)                                                                 \
    do {                                                                                           \
        char abs_[PATH_MAX * 2];                                                                   \
        if (want_kind == (k) && path_matches((dirfd), (path), abs_, sizeof abs_) &&                \
            should_fail((k), abs_, __builtin_return_address(0))) {                                 \
            errno = want_errno;                                                                    \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t write(int fd, const void *buf, size_t len)
{
    FD_CHECK(K_WRITE, fd);
    return REAL(write)(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    FD_CHECK(K_WRITE, fd);
    return REAL(pwrite)(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    FD_CHECK(K_WRITE, fd);
    return REAL(pwrite64)(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    FD_CHECK(K_WRITE, fd);
    return REAL(writev)(fd, iov, n);
}

int fsync(int fd)
{
    FD_CHECK(K_FSYNC, fd);
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    FD_CHECK(K_FSYNC, fd);
    return REAL(fdatasync)(fd);
}

int rename(const char *a, const char *b)
{
    PATH_CHECK(K_RENAME, AT_FDCWD, a);
    return REAL(rename)(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
    PATH_CHECK(K_RENAME, da, a);
    return REAL(renameat)(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
    PATH_CHECK(K_RENAME, da, a);
    return REAL(renameat2)(da, a, db, b, flags);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t m;
    va_start(ap, flags);
    m = mode_arg(flags, ap);
    va_end(ap);
    PATH_CHECK(K_OPEN, AT_FDCWD, path);
    return REAL(open)(path, flags, m);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    mode_t m;
    va_start(ap, flags);
    m = mode_arg(flags, ap);
    va_end(ap);
    PATH_CHECK(K_OPEN, AT_FDCWD, path);
    return REAL(open64)(path, flags, m);
}

int openat(int dfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t m;
    va_start(ap, flags);
    m = mode_arg(flags, ap);
    va_end(ap);
    PATH_CHECK(K_OPEN, dfd, path);
    return REAL(openat)(dfd, path, flags, m);
}

int openat64(int dfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t m;
    va_start(ap, flags);
    m = mode_arg(flags, ap);
    va_end(ap);
    PATH_CHECK(K_OPEN, dfd, path);
    return REAL(openat64)(dfd, path, flags, m);
}

int creat(const char *path, mode_t m)
{
    PATH_CHECK(K_OPEN, AT_FDCWD, path);
    return REAL(creat)(path, m);
}
