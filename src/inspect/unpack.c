/*
 * unpack: compression and archives into parts (see unpack.h).
 *
 * The original is opened O_NOFOLLOW and handed to a libarchive reader that
 * knows the gzip, bzip2, xz and zstd filters and the zip, tar and raw
 * formats, nothing else.  Raw without a filter is a plain file: it is
 * scanned in place, not copied.  For archives every header is checked
 * before a byte is written:
 *   - symlinks, hard links, devices, FIFOs and sockets are refused;
 *   - absolute names, drive letters, `..` components, control characters
 *     and duplicate names are refused;
 *   - more than max_entries headers rejects the intake;
 *   - directories and macOS resource forks (__MACOSX/) are skipped.
 * Member data goes through a nested reader (filters + raw) so a compressed
 * member is expanded one level; anything deeper is the member's content.
 * Expanded bytes are counted per write: over max_bytes, or over max_ratio
 * times the original's size once past UNPACK_RATIO_FLOOR, stops at once, so
 * a bomb costs at most the cap on disk.  Part files are named by index
 * (0001.raw), never by member name.  Owns the part files and names in
 * struct unpack.
 */
#include "inspect/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/xmalloc.h"

#define UNPACK_BLOCK       (64 * 1024)
#define UNPACK_RATIO_FLOOR (1024 * 1024) /* the ratio limit applies past 1 MiB expanded */
#define UNPACK_EMPTY_TAR   (64 * 1024)   /* zeros up to this size: an empty tar */

struct unpack_ctx {
    const struct limits_conf *lim;
    const char *parts_dir;
    const char *display;
    uint64_t compressed; /* size of the original */
    uint64_t expanded;   /* bytes written so far, all parts */
    struct archive *outer;
    unsigned char *nbuf; /* the nested reader's input block */
    unsigned char *buf;  /* output block */
    struct report *rep;
};

static struct unpack_member *add_member(struct unpack *u, const char *name)
{
    struct unpack_member *m;
    u->v = xrealloc(u->v, (u->n + 1) * sizeof *u->v);
    m = &u->v[u->n++];
    memset(m, 0, sizeof *m);
    m->name = xstrdup(name);
    snprintf(m->compression, sizeof m->compression, "none");
    return m;
}

/* Names the filters above "none", outermost first: "gzip", "gzip+xz". */
static void filter_names(struct archive *a, char *out, size_t outsz)
{
    int i, n = archive_filter_count(a);
    size_t o = 0;
    out[0] = 0;
    for (i = 0; i < n && o < outsz; i++) {
        const char *name = archive_filter_name(a, i);
        if (archive_filter_code(a, i) == ARCHIVE_FILTER_NONE)
            continue;
        o += (size_t)snprintf(out + o, outsz - o, "%s%s", o ? "+" : "", name ? name : "?");
    }
    if (!out[0])
        snprintf(out, outsz, "none");
}

static char *strip_suffix(const char *name)
{
    static const char *sfx[] = {".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd"};
    size_t n = strlen(name), i;
    for (i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && !strcasecmp(name + n - k, sfx[i]))
            return xstrndup(name, n - k);
    }
    return xstrdup(name);
}

/* Why a member name is unsafe, or NULL. */
static const char *bad_name(const char *name)
{
    const char *p = name, *seg;
    if (!name || !*name)
        return "has no name";
    if (name[0] == '/' || name[0] == '\\')
        return "has an absolute path";
    if (((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z') && name[1] == ':')
        return "has an absolute path (drive letter)";
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "has control characters in its name";
    for (seg = name; *seg;) {
        size_t n = strcspn(seg, "/\\");
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return "has a '..' component in its path";
        seg += n;
        if (*seg)
            seg++;
    }
    return NULL;
}

static const char *norm_name(const char *name)
{
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    return name;
}

/* The next path segment at or after *p that is neither empty nor ".", with
 * '/' and '\' both separators (as bad_name reads them); its length in *n,
 * NULL at the end. */
static const char *next_segment(const char **p, size_t *n)
{
    while (**p) {
        const char *seg = *p;
        size_t len = strcspn(seg, "/\\");
        *p = seg + len + (seg[len] ? 1 : 0);
        if (len && !(len == 1 && seg[0] == '.')) {
            *n = len;
            return seg;
        }
    }
    return NULL;
}

/* Same member path once empty and "." segments are dropped: "d//b.csv",
 * "d/./b.csv", "./d/b.csv" and "d/b.csv" all name one file. */
static bool same_path(const char *a, const char *b)
{
    for (;;) {
        size_t na = 0, nb = 0;
        const char *sa = next_segment(&a, &na), *sb = next_segment(&b, &nb);
        if (!sa || !sb)
            return !sa && !sb;
        if (na != nb || memcmp(sa, sb, na))
            return false;
    }
}

static bool seen_before(const struct unpack *u, const char *name)
{
    size_t i;
    for (i = 0; i < u->n; i++)
        if (same_path(u->v[i].name, name))
            return true;
    return false;
}

static la_ssize_t nested_read(struct archive *b, void *cd, const void **buf)
{
    struct unpack_ctx *c = cd;
    la_ssize_t n = archive_read_data(c->outer, c->nbuf, UNPACK_BLOCK);
    if (n < 0) {
        const char *why = archive_error_string(c->outer);
        archive_set_error(b, EIO, "%s", why ? why : "read error");
        return -1;
    }
    *buf = c->nbuf;
    return n;
}

static struct archive *reader_new(bool formats)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_zstd(a);
    if (formats) {
        archive_read_support_format_zip(a);
        archive_read_support_format_tar(a);
    }
    archive_read_support_format_raw(a);
    return a;
}

static void corrupt(struct unpack_ctx *c, const char *member, struct archive *a)
{
    const char *why = archive_error_string(a);
    report_add(c->rep, member ? member : c->display, 0, 0, NULL, NULL, 0, "corrupt_archive",
               "the %s is corrupt or truncated: %s", member ? "archive member" : "file",
               why ? why : "unreadable data");
}

/*
 * Stream rd's current entry into a new part file for m.  Returns 0, 1 on a
 * reject (limit, corrupt), -1 on failure.
 */
static int stream_to_part(struct unpack_ctx *c, struct archive *rd, struct unpack_member *m,
                          size_t index, bool in_archive, struct werr *e)
{
    int fd, r = -1;
    const char *who = in_archive ? m->name : NULL;
    m->raw_path = xasprintf("%s/%04zu.raw", c->parts_dir, index);
    enc_scan_init(&m->scan);
    fd = open_scratch(m->raw_path, 0600);
    if (fd < 0) {
        werr_sys(e, "%s: create", m->raw_path);
        free(m->raw_path);
        m->raw_path = NULL;
        return -1;
    }
    for (;;) {
        la_ssize_t n = archive_read_data(rd, c->buf, UNPACK_BLOCK);
        uint64_t total;
        if (n == 0)
            break;
        if (n < 0) {
            corrupt(c, who, rd);
            r = 1;
            goto out;
        }
        total = c->expanded + (uint64_t)n;
        if (total > c->lim->max_bytes) {
            report_add(c->rep, m->name, 0, 0, NULL, NULL, 0, "archive_limit",
                       "expands to more than max_bytes (%llu bytes); stopped there",
                       (unsigned long long)c->lim->max_bytes);
            r = 1;
            goto out;
        }
        if (total > UNPACK_RATIO_FLOOR && c->lim->max_ratio > 0 &&
            (double)total > c->lim->max_ratio * (double)(c->compressed ? c->compressed : 1)) {
            report_add(c->rep, m->name, 0, 0, NULL, NULL, 0, "archive_limit",
                       "expands more than max_ratio (%.0f) times its compressed size of %llu "
                       "bytes; stopped after %llu bytes",
                       c->lim->max_ratio, (unsigned long long)c->compressed,
                       (unsigned long long)c->expanded);
            r = 1;
            goto out;
        }
        if (write_all(fd, c->buf, (size_t)n) < 0) {
            werr_sys(e, "%s: write", m->raw_path);
            goto out;
        }
        enc_scan_update(&m->scan, c->buf, (size_t)n);
        c->expanded = total;
    }
    if (close(fd) < 0) {
        fd = -1;
        werr_sys(e, "%s: close", m->raw_path);
        goto out;
    }
    fd = -1;
    enc_scan_final(&m->scan, m->raw_sha256);
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (r != 0)
        m->refused = true; /* the partial file stays, at most the cap, for evidence */
    return r;
}

/* One regular member: through a nested reader that expands compression. */
static int member_data(struct unpack_ctx *c, struct unpack_member *m, size_t index, struct werr *e)
{
    struct archive *b = reader_new(false);
    struct archive_entry *ent;
    int r = -1, h;
    if (archive_read_open(b, c, NULL, nested_read, NULL) != ARCHIVE_OK) {
        corrupt(c, m->name, b);
        m->refused = true;
        r = 1;
        goto out;
    }
    h = archive_read_next_header(b, &ent);
    if (h == ARCHIVE_EOF) { /* an empty member */
        m->raw_path = xasprintf("%s/%04zu.raw", c->parts_dir, index);
        enc_scan_init(&m->scan);
        int fd = open_scratch(m->raw_path, 0600);
        if (fd < 0) {
            werr_sys(e, "%s: create", m->raw_path);
            goto out;
        }
        close(fd);
        enc_scan_final(&m->scan, m->raw_sha256);
        r = 0;
        goto out;
    }
    if (h < ARCHIVE_WARN) {
        corrupt(c, m->name, b);
        m->refused = true;
        r = 1;
        goto out;
    }
    filter_names(b, m->compression, sizeof m->compression);
    if (strcmp(m->compression, "none")) {
        char *plain = strip_suffix(m->name);
        free(m->name);
        m->name = plain;
    }
    r = stream_to_part(c, b, m, index, true, e);
out:
    archive_read_free(b);
    return r;
}

static int plain_file(const char *original, const char *sha256, const char *display,
                      struct unpack *u, struct werr *e)
{
    struct unpack_member *m = add_member(u, display);
    m->raw_path = xstrdup(original);
    bool known = sha256 && strlen(sha256) == SHA256_HEX_LEN - 1;
    enc_scan_init(&m->scan);
    if (known) {
        /* the take hashed these very bytes as it wrote them into a file of
         * wharf's own: scanned, not hashed again (a third of B1's inspect) */
        sha256_abort(&m->scan.hash);
        m->scan.hashing = false;
        memcpy(m->raw_sha256, sha256, SHA256_HEX_LEN);
    }
    return enc_scan_file(original, &m->scan, known ? NULL : m->raw_sha256, e);
}

/*
 * A compressed stream whose content libarchive took for an empty tar (it
 * starts with zero blocks).  Re-read it as a plain compressed stream: small
 * means a real empty tar; anything else is a part like any other, so the
 * limits apply.
 */
static int zeros_or_empty_tar(struct unpack_ctx *c, int fd, const char *display, struct unpack *u,
                              struct werr *e)
{
    struct archive *b = reader_new(false);
    struct archive_entry *ent;
    struct unpack_member *m;
    char *name;
    int r = -1;
    snprintf(u->container, sizeof u->container, "none");
    if (lseek(fd, 0, SEEK_SET) < 0) {
        werr_sys(e, "%s: seek", display);
        goto out;
    }
    if (archive_read_open_fd(b, fd, UNPACK_BLOCK) != ARCHIVE_OK ||
        archive_read_next_header(b, &ent) < ARCHIVE_WARN) {
        corrupt(c, NULL, b);
        r = 1;
        goto out;
    }
    name = strip_suffix(display);
    m = add_member(u, name);
    free(name);
    r = stream_to_part(c, b, m, 1, false, e);
    if (r == 0 && m->scan.bytes <= UNPACK_EMPTY_TAR && m->scan.nul_off == 0) {
        report_add(c->rep, display, 0, 0, NULL, NULL, 0, "empty_archive",
                   "the archive holds no files");
        m->refused = true;
        r = 1;
    }
out:
    archive_read_free(b);
    return r;
}

int unpack_run(const char *original, const char *original_sha256, const char *display_name,
               const char *parts_dir, const struct limits_conf *lim, bool independent,
               struct unpack *u, struct report *rep, struct werr *e)
{
    struct unpack_ctx c;
    struct archive *a = NULL;
    struct archive_entry *ent;
    struct stat st;
    int fd = -1, r = -1, h, fmt;
    uint64_t entries = 0, declared = 0;
    bool stop_writing = false, rejected = false;

    memset(u, 0, sizeof *u);
    memset(&c, 0, sizeof c);
    snprintf(u->container, sizeof u->container, "none");
    snprintf(u->compression, sizeof u->compression, "none");
    c.lim = lim;
    c.parts_dir = parts_dir;
    c.display = display_name;
    c.rep = rep;
    c.buf = xmalloc(UNPACK_BLOCK);
    c.nbuf = xmalloc(UNPACK_BLOCK);

    fd = open(original, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        werr_sys(e, "%s: open", original);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        werr_set(e, "%s: not a regular file", original);
        goto out;
    }
    c.compressed = (uint64_t)st.st_size;
    if (st.st_size == 0) {
        r = plain_file(original, original_sha256, display_name, u, e);
        goto out;
    }
    a = reader_new(true);
    c.outer = a;
    if (archive_read_open_fd(a, fd, UNPACK_BLOCK) != ARCHIVE_OK) {
        corrupt(&c, NULL, a);
        r = 1;
        goto out;
    }
    h = archive_read_next_header(a, &ent);
    fmt = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    filter_names(a, u->compression, sizeof u->compression);
    if (fmt == ARCHIVE_FORMAT_ZIP)
        snprintf(u->container, sizeof u->container, "zip");
    else if (fmt == ARCHIVE_FORMAT_TAR)
        snprintf(u->container, sizeof u->container, "tar");
    if (h == ARCHIVE_EOF && fmt == ARCHIVE_FORMAT_TAR && strcmp(u->compression, "none")) {
        /* Zeros read as an empty tar.  Expand it as a plain stream, under the
         * limits: a bomb of zeros must stop at the cap like any other. */
        r = zeros_or_empty_tar(&c, fd, display_name, u, e);
        goto out;
    }
    if (h == ARCHIVE_EOF) {
        report_add(rep, display_name, 0, 0, NULL, NULL, 0, "empty_archive",
                   "the archive holds no files");
        r = 1;
        goto out;
    }
    if (h < ARCHIVE_WARN) {
        corrupt(&c, NULL, a);
        r = 1;
        goto out;
    }
    if (fmt == ARCHIVE_FORMAT_RAW) {
        if (!strcmp(u->compression, "none")) {
            archive_read_free(a);
            a = NULL;
            r = plain_file(original, original_sha256, display_name, u, e);
            goto out;
        }
        char *name = strip_suffix(display_name);
        struct unpack_member *m = add_member(u, name);
        free(name);
        r = stream_to_part(&c, a, m, 1, false, e);
        goto out;
    }

    /* zip or tar: one header at a time */
    for (; h != ARCHIVE_EOF; h = archive_read_next_header(a, &ent)) {
        const char *name, *why;
        struct unpack_member *m;
        mode_t type;
        if (h < ARCHIVE_WARN) {
            corrupt(&c, NULL, a);
            rejected = true;
            break;
        }
        if (++entries > lim->max_entries) {
            report_add(rep, display_name, 0, 0, NULL, NULL, 0, "archive_limit",
                       "the archive has more than max_entries (%llu) members",
                       (unsigned long long)lim->max_entries);
            rejected = true;
            break;
        }
        name = archive_entry_pathname(ent);
        type = archive_entry_filetype(ent);
        if (name && !strncmp(norm_name(name), "__MACOSX/", 9))
            continue;
        if ((why = bad_name(name)) == NULL && type == AE_IFDIR)
            continue;
        if (!why && archive_entry_hardlink(ent))
            why = "is a hard link";
        else if (!why && (type == AE_IFLNK || archive_entry_symlink(ent)))
            why = "is a symbolic link";
        else if (!why && (type == AE_IFCHR || type == AE_IFBLK))
            why = "is a device";
        else if (!why && type == AE_IFIFO)
            why = "is a FIFO";
        else if (!why && type != AE_IFREG)
            why = "is not a regular file";
        else if (!why && seen_before(u, name))
            why = "has the same name as an earlier member";
        else if (!why && archive_entry_is_encrypted(ent))
            why = "is encrypted (not supported)";
        if (archive_entry_size_is_set(ent))
            declared += (uint64_t)archive_entry_size(ent);
        m = add_member(u, name ? name : "?");
        if (why) {
            const char *target = archive_entry_symlink(ent) ? archive_entry_symlink(ent)
                                                            : archive_entry_hardlink(ent);
            report_add(rep, m->name, 0, 0, NULL, NULL, 0, "unsafe_member", "member %s%s%s", why,
                       target ? " to " : "", target ? target : "");
            m->refused = true;
            if (!independent)
                stop_writing = rejected = true;
            continue;
        }
        if (stop_writing) {
            /* reporting the other members only; do not expand without end */
            if (declared > lim->max_bytes)
                break;
            continue;
        }
        c.outer = a;
        r = member_data(&c, m, u->n, e);
        if (r < 0)
            goto out;
        if (r == 1) {
            rejected = true;
            break; /* a limit or corrupt stream ends the intake */
        }
    }
    if (!rejected && u->n == 0) {
        report_add(rep, display_name, 0, 0, NULL, NULL, 0, "empty_archive",
                   "the archive holds no files");
        rejected = true;
    }
    r = rejected ? 1 : 0;
out:
    if (a)
        archive_read_free(a);
    if (fd >= 0)
        close(fd);
    free(c.buf);
    free(c.nbuf);
    return r;
}

void unpack_free(struct unpack *u)
{
    size_t i;
    for (i = 0; i < u->n; i++) {
        free(u->v[i].name);
        free(u->v[i].raw_path);
        enc_scan_free(&u->v[i].scan);
    }
    free(u->v);
    memset(u, 0, sizeof *u);
}
