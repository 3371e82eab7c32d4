/*
 * durable: the one way wharf puts bytes on disk so that they survive a crash.
 *
 *   temp file in the same directory -> write -> fsync -> rename -> fsync dir
 *
 * The temp is unlinked on any error.  A failed fsync fails the unit of work
 * (the caller gets -1 with a non-transient error) and is never retried on the
 * same descriptor: after a failed fsync the kernel may have dropped the dirty
 * pages, so a second fsync "succeeding" proves nothing.  A retry, if any,
 * starts again from a fresh temp file.
 */
#ifndef WHARF_DURABLE_H
#define WHARF_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/sha256.h"

struct dfile {
    int fd;
    char *tmp;  /* temp path, owned */
    char *path; /* final path, owned */
    bool hashing;
    struct sha256 hash;
    uint64_t bytes;
    uint64_t started; /* bytes whose writeback was started (dfile_write) */
};

/* Opens "<path>.tmp-XXXXXX" (O_EXCL|O_NOFOLLOW; the last component cut to
 * fit NAME_MAX).  hashing: compute SHA-256 of everything written;
 * dfile_commit returns it. */
int dfile_open(struct dfile *f, const char *path, mode_t mode, bool hashing, struct werr *e);
int dfile_write(struct dfile *f, const void *buf, size_t len, struct werr *e);
/* fsync, close, rename into place, fsync the directory.  hex may be NULL. */
int dfile_commit(struct dfile *f, char hex[SHA256_HEX_LEN], struct werr *e);
/* Close and unlink the temp; safe on a zeroed or already-finished dfile. */
void dfile_abort(struct dfile *f);

/* Whole-buffer convenience over dfile. */
int durable_write(const char *path, const void *data, size_t len, struct werr *e);
/* rename(2), then fsync the destination directory (and the source's, when
 * different). */
int durable_rename(const char *from, const char *to, struct werr *e);
int durable_unlink(const char *path, struct werr *e);
int fsync_dir(const char *dir, struct werr *e);
/* fsync the directory containing path. */
int fsync_parent(const char *path, struct werr *e);
/* mkdir -p; every directory created is fsynced into its parent. */
int mkdirs(const char *path, mode_t mode, struct werr *e);
/* fsync every directory of a tree (not the files), deepest first. */
int fsync_tree_dirs(const char *path, struct werr *e);
/* A new scratch file (O_EXCL, O_NOFOLLOW, write-only): an inspection's
 * parts, redone after a crash, so nothing is synced.  Its directory is made
 * (0700) on the first file, so an intake that needs no part file never
 * creates (nor later deletes) one: fd, or -1 with errno. */
int open_scratch(const char *path, mode_t mode);
/* rm -rf without following symlinks; ENOENT is success. */
int rmtree(const char *path, struct werr *e);
/* write(2) until done, retrying EINTR. */
int write_all(int fd, const void *buf, size_t len);
/* Read all of fd (at most max bytes) into *buf (NUL-terminated, caller
 * frees; *len bytes): 0; -1 with errno on a read error; -2 when fd holds
 * more than max bytes (nothing returned). */
int read_bounded(int fd, size_t max, char **buf, size_t *len);
/* Copy src fd to dst dfile (hashing if the dfile does). */
int copy_fd(int src, struct dfile *dst, struct werr *e);
/* Make dst a copy of its own of the whole file src: a reflink (FICLONE)
 * where the filesystem offers one (then hashed by reading dst back), else
 * the bytes copied through the hash.  Either way later writes to src never
 * reach dst.  Fails, writing no more than limit + 1 bytes, when src holds
 * more than limit bytes. */
int dfile_copy_of(struct dfile *dst, int src, uint64_t limit, struct werr *e);

#endif
