/*
 * unpack: compression and archives into parts, with libarchive, reading
 * only.  gzip, bzip2, xz and zstd streams; zip and tar archives (and
 * .tar.gz and friends); a compressed archive member (a .csv.gz in a zip) is
 * decompressed one level deep.  Each member is streamed into a file of our
 * own (parts_dir/NNNN.raw, O_NOFOLLOW|O_EXCL) through an enc_scan, never
 * with archive_write_disk.  Limits (bytes, ratio, entries) are checked while
 * streaming.
 */
#ifndef WHARF_INSPECT_UNPACK_H
#define WHARF_INSPECT_UNPACK_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "inspect/encoding.h"
#include "report.h"
#include "util/err.h"

struct unpack_member {
    char *name;           /* member name, or the display name without a compression suffix */
    char *raw_path;       /* NULL when refused before any byte was written */
    char compression[16]; /* inside an archive member: "none", "gzip", ... */
    struct enc_scan scan; /* finished when raw_path is set and !refused */
    char raw_sha256[SHA256_HEX_LEN];
    bool refused; /* reason in the report */
};

struct unpack {
    char container[16];   /* "none", "zip", "tar" */
    char compression[16]; /* outer: "none", "gzip", "bzip2", "xz", "zstd" (or "gzip+xz") */
    struct unpack_member *v;
    size_t n;
};

/*
 * Unpack original into parts_dir (which must exist and be empty).  A plain
 * uncompressed file is not copied: its one member's raw_path is original
 * itself; original_sha256, when not NULL, is original's SHA-256 as the
 * take computed it while writing it, and is then that member's raw_sha256
 * without hashing the file again.  independent: an unsafe member refuses
 * that member only (else the whole intake).  Returns 0 (members may be refused when independent), 1
 * when the intake is rejected (reasons in rep), -1 on failure (e).  u is
 * filled in every case and freed with unpack_free.
 */
int unpack_run(const char *original, const char *original_sha256, const char *display_name,
               const char *parts_dir, const struct limits_conf *lim, bool independent,
               struct unpack *u, struct report *rep, struct werr *e);
void unpack_free(struct unpack *u);

#endif
