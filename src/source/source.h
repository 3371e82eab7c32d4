/*
 * source: where drops are found.  One implementation per backend (spool.c,
 * sftp.c) behind this table of function pointers.
 *
 * A source only lists, fetches and finishes; deciding whether a drop is
 * complete (stable_for, done_file, min_age) and whether it is new is the
 * same for every backend and lives in source.c over the ledger.
 *
 * A drop is identified by (path, size, mtime): a re-used name with new
 * content is a new drop, and files sharing one mtime are never confused.
 */
#ifndef WHARF_SOURCE_H
#define WHARF_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "util/err.h"
#include "util/sha256.h"

struct ledger;

struct drop {
    char *path; /* relative to the source root ("sub/orders_1.csv") */
    char *name; /* base name */
    uint64_t size;
    int64_t mtime_ns;
    bool has_done;      /* its done file exists */
    char *done_path;    /* relative path of the done file, when configured */
    bool has_control;   /* its control file exists (control: file:) */
    char *control_path; /* relative path of the control file, when configured */
    char *unsafe;       /* not NULL: why it must be quarantined (symlink, FIFO, hard link...) */
    /* In source.skipped only: why the listing passed over it, and whether
     * it is the temporary name of a file the pattern would take (a partial
     * upload: "orders_1.csv.filepart"). */
    char *skipped;
    bool temp;
    /* In source.skipped only: a directory the listing could not read and
     * passed over (skipped says why); its files are not taken. */
    bool unreadable;
    bool refused; /* a name that must never become a path (see source_refuse) */
    /* spool: the inode that was taken; finish() deletes or moves the name
     * only while it still refers to it (0: unknown, size and mtime only). */
    uint64_t ino;
    /* fetch: when not NULL, set to the inode it copied (spool) */
    uint64_t *taken_ino;
};

struct drop_list {
    struct drop *v;
    size_t n, cap;
};

struct source;

struct source_ops {
    const char *name;
    int (*open)(struct source *s, struct werr *e);
    /* Every name matching the pattern and not ignored, with unsafe ones
     * marked (they are quarantined by the caller, never opened). */
    int (*list)(struct source *s, struct drop_list *out, struct werr *e);
    /* Bring the drop's bytes into dest, a new wharf-owned file the backend
     * writes durably (a copy, hashed while copying: never the partner's own
     * inode, which the partner could still hold open and change), checking
     * the content still matches size and mtime.  sha256 and bytes describe
     * what was written; everything after the take reads only dest. */
    int (*fetch)(struct source *s, const struct drop *d, const char *dest,
                 char sha256[SHA256_HEX_LEN], uint64_t *bytes, struct werr *e);
    /* Apply `after:` (delete | move | leave) once sealed, only to the file
     * that was taken (same size, mtime and, when known, inode).  Idempotent:
     * a drop already gone, or replaced since, is success. */
    int (*finish)(struct source *s, const struct drop *d, struct werr *e);
    /* Read a small file beside the drops (a control file): rel relative to
     * the source root, walked to like a drop, regular files only.  Returns
     * 1 and *buf (NUL-terminated, caller frees; *len bytes) when it is
     * there, 0 when it is not, -1 (e filled) on error or when it is larger
     * than max bytes. */
    int (*read_side)(struct source *s, const char *rel, size_t max, char **buf, size_t *len,
                     struct werr *e);
    /* Move an unsafe entry aside (spool: into quarantine_dir). */
    int (*quarantine)(struct source *s, const struct drop *d, const char *qdir, struct werr *e);
    void (*close)(struct source *s);
};

struct source {
    const struct source_ops *ops;
    const struct wharf_config *cfg;
    const struct profile *profile;
    void *impl;
    /* When not NULL, list() also appends here the files it passes over
     * (ignored names, names the pattern does not match), each with why
     * (`wharf check --connect`, and the poll's watch for stuck uploads). */
    struct drop_list *skipped;
};

extern const struct source_ops source_spool_ops;
extern const struct source_ops source_sftp_ops;

int source_open(struct source *s, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e);
void source_close(struct source *s);

/* Of the listed drops, which are complete now: applies stable_for (with the
 * ledger's sightings), done_file and min_age.  Complete drops are moved to
 * the front of the list; returns their count. */
size_t source_ready(struct ledger *l, const struct profile *p, struct drop_list *list,
                    int64_t now_ms);
void drop_list_add(struct drop_list *l, const struct drop *d);
void drop_list_free(struct drop_list *l);
void drop_free(struct drop *d);
/* For the backends: a listed name that contains '/', NUL or a control
 * character (or is "." / ".." where a file is expected) never becomes a
 * path: it is left where it is and noted in s->skipped with refused set,
 * path and name as the server sent them (a NUL as U+FFFD): every output
 * escapes them (util/escape.h), and the reason says what was wrong.
 * Returns why (static) when name[0..len) is refused, NULL when it is fine. */
const char *source_name_refusal(const char *name, size_t len);
void source_refuse(struct source *s, const char *rel, const char *name, size_t len,
                   const char *why);
/* Expand "{name}.done" for a name. */
char *done_name(const char *pattern, const char *name);
/* The name whose side file (done file, control file: a "{name}" pattern)
 * name would be, or NULL when it matches no such pattern; caller frees. */
char *side_base(const char *pattern, const char *name);
/* Is name a side file (done or control file) of a name has(ctx, base)
 * says is listed?  Such a file is never a drop of its own. */
bool side_file(const struct profile *p, const char *name, bool (*has)(const void *, const char *),
               const void *ctx);
bool name_ignored(const struct profile *p, const char *name);
/* For the backends: note a file list() passes over (ignored: by an ignore
 * glob; else the pattern does not match it) in s->skipped, if wanted. */
void source_skip(struct source *s, const char *rel, const char *name, uint64_t size,
                 int64_t mtime_ns, bool ignored);
/* For the backends: note a directory list() could not read (why: the
 * error) in s->skipped, if wanted; the listing goes on without it. */
void source_skip_dir(struct source *s, const char *rel, const char *why);

/* What a done file says about the drop it marks, checked against what was
 * received (sha: its SHA-256, hex): a done file may be empty, hold the
 * sha256 ("<sha256>", or sha256sum's "<sha256>  name"), "<size> <sha256>"
 * or "<size>"; anything else is only a marker.  -1 (e: corrupt, saying
 * which and both values) when the size or the checksum disagrees. */
int source_done_check(const char *label, const struct drop *d, const char *text,
                      const char sha[SHA256_HEX_LEN], struct werr *e);

#endif
