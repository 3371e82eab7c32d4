/*
 * bag: writes and verifies BagIt (RFC 8493) bags, the sealed form of an
 * intake (layout in bag.h).  A sealed bag can be checked without wharf:
 *
 *   cd archive/<intake> && sha256sum -c tagmanifest-sha256.txt && sha256sum -c manifest-sha256.txt
 *
 * (for names without %, CR or LF; docs/auditors.md has the check that
 * decodes BagIt's percent-encoding and works for every bag)
 *
 * Files wharf writes:
 *
 *   bagit.txt               BagIt-Version: 1.0
 *                           Tag-File-Character-Encoding: UTF-8
 *   bag-info.txt            Wharf-Profile: acme-orders       (caller's, in order)
 *                           Bagging-Date: 2026-11-28          (UTC)
 *                           Payload-Oxum: 48213.1             (octets.files)
 *   manifest-sha256.txt     <sha256>  data/orders.csv         (sorted by path)
 *   tagmanifest-sha256.txt  <sha256>  bag-info.txt            (every other tag file)
 *
 * Paths in manifests are percent-encoded (%, CR, LF).  A bag-info value is
 * written in its tag form (esc_tag, util/escape.h): partner bytes such as a
 * file name with a newline or an escape sequence become `\x0a`, `\x1b`, so
 * a value is always one line and can never plant another element.  Tag
 * files are read by one parser (tag_parse: folded lines, any length).
 *
 * Owns nothing after return.  What can fail: the file system (every file
 * and directory is fsynced; an error removes the temp dir and leaves no
 * bag), a refused file name ("/..", absolute, reserved tag names), an
 * existing bag that does not verify.
 */
#include "seal/bag.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/escape.h"
#include "util/xmalloc.h"

#define MANIFEST_MAX (64u << 20) /* bytes of one manifest or bag-info we read */

/* One line of a manifest, or one file we wrote or found. */
struct entry {
    char *path; /* relative to the bag, decoded */
    char hex[SHA256_HEX_LEN];
    uint64_t size;
    bool regular;
};

struct entries {
    struct entry *v;
    size_t n;
};

static void entries_add(struct entries *l, const char *path, const char *hex, uint64_t size,
                        bool regular)
{
    struct entry *x;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    x = &l->v[l->n++];
    x->path = xstrdup(path);
    snprintf(x->hex, sizeof x->hex, "%s", hex ? hex : "");
    x->size = size;
    x->regular = regular;
}

static void entries_free(struct entries *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static void entries_sort(struct entries *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, entry_cmp);
}

/* Sorted lists only. */
static struct entry *entries_find(const struct entries *l, const char *path)
{
    struct entry key = {.path = (char *)path};
    if (!l->n)
        return NULL;
    return l->n ? bsearch(&key, l->v, l->n, sizeof *l->v, entry_cmp) : NULL;
}

char *bag_encode_path(const char *name)
{
    size_t n = 0;
    const char *p;
    char *out, *o;
    for (p = name; *p; p++)
        n += (*p == '%' || *p == '\r' || *p == '\n') ? 3 : 1;
    o = out = xmalloc(n + 1);
    for (p = name; *p; p++) {
        switch (*p) {
        case '%':
            memcpy(o, "%25", 3), o += 3;
            break;
        case '\r':
            memcpy(o, "%0D", 3), o += 3;
            break;
        case '\n':
            memcpy(o, "%0A", 3), o += 3;
            break;
        default:
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Inverse of bag_encode_path (any %XX is decoded; a stray % stays).
 * NULL when the result would hold a NUL. */
static char *decode_path(const char *s)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            if (!*o) {
                free(out);
                return NULL;
            }
            o++;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

/* A relative path with no empty, "." or ".." component. */
static bool path_safe(const char *p)
{
    const char *c = p;
    if (!*p || *p == '/')
        return false;
    for (;;) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (!end)
            return true;
        c = end + 1;
    }
}

static bool is_payload(const char *name)
{
    return !strncmp(name, "data/", 5);
}

/* Tag file names the bag itself owns. */
static bool reserved_tag(const char *name)
{
    return !strcmp(name, "bagit.txt") || !strcmp(name, "bag-info.txt") ||
           !strcmp(name, "fetch.txt") || !strcmp(name, "data") || !strncmp(name, "manifest-", 9) ||
           !strncmp(name, "tagmanifest-", 12);
}

static char *join(const char *a, const char *b)
{
    return xasprintf("%s/%s", a, b);
}

/* Hard-links src as root/name when the caller vouches for its hash (see
 * bag.h); 0 when linked, -1 to fall back to copying. */
static int link_file(const char *root, const char *name, const char *src, const char *sha,
                     char hex[SHA256_HEX_LEN], uint64_t *size)
{
    char *path = join(root, name), *dir = xstrdup(path);
    struct stat st;
    struct werr e;
    int r = -1;
    if (strlen(sha) != SHA256_HEX_LEN - 1 || mkdirs(dirname(dir), 0750, &e) < 0)
        goto out;
    if (lstat(src, &st) < 0 || !S_ISREG(st.st_mode) || link(src, path) < 0)
        goto out;
    memcpy(hex, sha, SHA256_HEX_LEN);
    *size = (uint64_t)st.st_size;
    r = 0;
out:
    free(path);
    free(dir);
    return r;
}

/*
 * The files a bag is made of are written in its temp dir, which nobody
 * sees until bag_seal renames it into place: they need no temp name of
 * their own, and their fsyncs need not come one per file.  Each file's
 * writeback is started as soon as it is written (sync_file_range: no
 * promise, only an early start), and the fsyncs come in one pass before
 * the directories', so the file system commits them together instead of
 * one journal commit per file (ext4: about 7 commits a bag before, 3
 * after; measured with /proc/fs/jbd2, bench/README.md B4).  fsync stays
 * the durable point: a failed one fails the seal (durable.h).  At most
 * PEND_MAX files wait open; more are fsynced as they come.
 */
#define PEND_MAX 32
struct pending {
    int fd[PEND_MAX];
    char *path[PEND_MAX];
    size_t n;
};

/* fsync (when sync) and close every waiting file; -1 with e on the first
 * failure (the rest are still closed). */
static int pending_end(struct pending *p, bool sync, struct werr *e)
{
    int r = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (sync && r == 0 && fsync(p->fd[i]) < 0) {
            werr_sys(e, "%s: fsync", p->path[i]);
            werr_setkind(e, WERR_IO); /* never retried into success */
            r = -1;
        }
        if (close(p->fd[i]) < 0 && sync && r == 0) {
            werr_sys(e, "%s: close", p->path[i]);
            r = -1;
        }
        free(p->path[i]);
    }
    p->n = 0;
    return r;
}

/* Writes root/name (creating its directories) from src_path or content;
 * hex and *size receive what was written; its fsync waits in pend. */
static int write_file(const char *root, const char *name, const char *src_path, const char *content,
                      size_t len, char hex[SHA256_HEX_LEN], uint64_t *size, struct pending *pend,
                      struct werr *e)
{
    char *path = join(root, name), *dir = xstrdup(path);
    struct dfile f = {.fd = -1, .path = path, .hashing = true};
    int fd = -1, r = -1;
    sha256_init(&f.hash);
    if (mkdirs(dirname(dir), 0750, e) < 0)
        goto out;
    if (pend->n == PEND_MAX && pending_end(pend, true, e) < 0)
        goto out;
    f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (f.fd < 0) {
        werr_sys(e, "%s: create", path);
        goto out;
    }
    if (src_path) {
        fd = open(src_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            werr_sys(e, "%s", src_path);
            goto out;
        }
        if (copy_fd(fd, &f, e) < 0) {
            werr_prefix(e, "%s -> %s", src_path, name);
            goto out;
        }
    } else if (dfile_write(&f, content ? content : "", content ? len : 0, e) < 0) {
        goto out;
    }
    *size = f.bytes;
    sha256_final(&f.hash, hex);
    f.hashing = false;
    sync_file_range(f.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    pend->fd[pend->n] = f.fd;
    pend->path[pend->n++] = path;
    f.fd = -1;
    path = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (f.fd >= 0)
        close(f.fd);
    if (f.hashing)
        sha256_abort(&f.hash);
    free(path);
    free(dir);
    return r;
}

/* "<sha256>  <encoded path>\n" per entry, in the list's order. */
static char *manifest_text(const struct entries *l)
{
    size_t i, len = 0, cap = 256;
    char *s = xmalloc(cap);
    s[0] = 0;
    for (i = 0; i < l->n; i++) {
        char *enc = bag_encode_path(l->v[i].path);
        size_t need = strlen(l->v[i].hex) + strlen(enc) + 4;
        if (len + need + 1 > cap) {
            cap = (len + need + 1) * 2;
            s = xrealloc(s, cap);
        }
        len += (size_t)snprintf(s + len, cap - len, "%s  %s\n", l->v[i].hex, enc);
        free(enc);
    }
    return s;
}

static bool key_ok(const char *k)
{
    const char *p;
    if (!k || !*k || k[0] == ' ' || k[0] == '\t')
        return false;
    for (p = k; *p; p++)
        if (*p == ':' || *p == '\r' || *p == '\n')
            return false;
    return p[-1] != ' ' && p[-1] != '\t';
}

/* bag-info.txt, one line per element; values in their tag form (esc_tag). */
static char *bag_info_text(const struct bag_kv *info, size_t n_info, uint64_t octets,
                           uint64_t count)
{
    size_t i, len = 0, cap = 256;
    char *s = xmalloc(cap), date[16];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    for (i = 0; i <= n_info + 1; i++) {
        char tail[64];
        const char *k, *v;
        if (i < n_info) {
            k = info[i].key;
            v = info[i].value ? info[i].value : "";
        } else if (i == n_info) {
            k = "Bagging-Date";
            v = date;
        } else {
            snprintf(tail, sizeof tail, "%llu.%llu", (unsigned long long)octets,
                     (unsigned long long)count);
            k = "Payload-Oxum";
            v = tail;
        }
        char *tv = esc_tag(v);
        if (len + strlen(k) + strlen(tv) + 4 > cap) {
            cap = (len + strlen(k) + strlen(tv) + 4) * 2;
            s = xrealloc(s, cap);
        }
        len += (size_t)snprintf(s + len, cap - len, "%s: %s\n", k, tv);
        free(tv);
    }
    return s;
}

static int check_inputs(const struct bag_file *files, size_t n, const struct bag_kv *info,
                        size_t n_info, struct werr *e)
{
    size_t i, j;
    for (i = 0; i < n; i++) {
        const char *name = files[i].name;
        if (!name || !path_safe(name) || strstr(name, "/..") || !strcmp(name, "data/")) {
            werr_set(e,
                     "bag file name \"%s\" refused: it must be a relative path without "
                     "empty, \".\" or \"..\" components",
                     name ? name : "");
            return -1;
        }
        if (!is_payload(name) && reserved_tag(name)) {
            werr_set(e, "bag file name \"%s\" refused: the bag writes that file itself", name);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (!strcmp(name, files[j].name)) {
                werr_set(e, "bag file \"%s\" given twice", name);
                return -1;
            }
    }
    for (i = 0; i < n_info; i++) {
        if (!key_ok(info[i].key)) {
            werr_set(e, "bag-info key \"%s\" refused: no colon, line break or outer blanks",
                     info[i].key ? info[i].key : "");
            return -1;
        }
        if (!strcasecmp(info[i].key, "Bagging-Date") || !strcasecmp(info[i].key, "Payload-Oxum")) {
            werr_set(e, "bag-info key \"%s\" is written by the bag itself", info[i].key);
            return -1;
        }
    }
    return 0;
}

/* An existing bag: intact means sealed (a crash after the rename), once its
 * name is durable. */
static int reuse_existing(const char *dir, char sha[SHA256_HEX_LEN], struct werr *e)
{
    struct report rep;
    int r;
    report_init(&rep, 0);
    r = bag_verify(dir, sha, &rep, e);
    if (r == 1) {
        char *first = report_first(&rep);
        werr_set(e, "%s: a bag exists there and does not verify (%llu problems; first: %s)", dir,
                 (unsigned long long)rep.total, first ? first : "?");
        free(first);
        r = -1;
    }
    report_free(&rep);
    /* renamed into place by a run that may have died before it fsynced the
     * parent: made durable here, before anyone records it as sealed */
    if (r == 0 && fsync_parent(dir, e) < 0)
        r = -1;
    return r;
}

/* rename(2) that never replaces an existing dir (EEXIST when one is there);
 * file systems without RENAME_NOREPLACE get a check-then-rename. */
static int publish(const char *tmp, const char *dir)
{
    struct stat st;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (lstat(dir, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, dir);
}

/*
 * A bag in two steps (bag.h): bag_stage writes, in the temp dir, every
 * file that does not depend on bag-info.txt -- the payload, the caller's
 * tag files, bagit.txt, manifest-sha256.txt -- and creates bag-info.txt and
 * tagmanifest-sha256.txt empty, then fsyncs them all and the temp dir's
 * directories: everything but the content of those two is durable before
 * the caller takes its lock.  bag_finish fills the two, fsyncs them,
 * renames the temp dir into place and fsyncs the parent: three syncs
 * where a whole bag takes seven.
 */
struct bag_stage {
    char *dir, *tmp;
    struct entries payload, tags;
    uint64_t octets;
    int info_fd, tm_fd; /* bag-info.txt, tagmanifest-sha256.txt (empty) */
    dev_t dev;          /* the temp dir as made */
    ino_t ino;
};

static int create_empty(const char *root, const char *name, struct werr *e)
{
    char *path = join(root, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        werr_sys(e, "%s: create", path);
    free(path);
    return fd;
}

/* Writes content into the empty file fd (root/name), hashing it, and
 * fsyncs it. */
static int fill(int fd, const char *root, const char *name, const char *content, size_t len,
                char hex[SHA256_HEX_LEN], uint64_t *size, struct werr *e)
{
    char *path = join(root, name);
    struct dfile f = {.fd = fd, .path = path, .hashing = true};
    int r = -1;
    sha256_init(&f.hash);
    if (dfile_write(&f, content, len, e) < 0)
        goto out;
    sha256_final(&f.hash, hex);
    f.hashing = false;
    *size = f.bytes;
    if (fsync(fd) < 0) {
        werr_sys(e, "%s: fsync", path);
        werr_setkind(e, WERR_IO); /* never retried into success */
        goto out;
    }
    r = 0;
out:
    if (f.hashing)
        sha256_abort(&f.hash);
    free(path);
    return r;
}

void bag_stage_free(struct bag_stage *s)
{
    if (!s)
        return;
    if (s->info_fd >= 0)
        close(s->info_fd);
    if (s->tm_fd >= 0)
        close(s->tm_fd);
    struct stat st;
    if (s->tmp && lstat(s->tmp, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
        struct werr ignored = {0}; /* only ours: never a stage made there since */
        rmtree(s->tmp, &ignored);
    }
    free(s->tmp);
    entries_free(&s->payload);
    entries_free(&s->tags);
    free(s->dir);
    free(s);
}

struct bag_stage *bag_stage(const char *dir, const char *owner, const struct bag_file *files,
                            size_t n, struct werr *e)
{
    static const char bagit[] = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
    struct pending pend = {.n = 0};
    struct bag_stage *s;
    char *parent = NULL, *text = NULL, hex[SHA256_HEX_LEN];
    uint64_t size;
    struct stat st;
    size_t i;
    bool ok = false;

    if (check_inputs(files, n, NULL, 0, e) < 0)
        return NULL;
    s = xcalloc(1, sizeof *s);
    s->info_fd = s->tm_fd = -1;
    s->dir = xstrdup(dir);
    parent = xstrdup(dir);
    if (mkdirs(dirname(parent), 0750, e) < 0)
        goto out;
    if (owner) {
        /* one name per owner: what an earlier attempt of its own left
         * (killed before it finished) goes first */
        s->tmp = xasprintf("%s.tmp-%s", dir, owner);
        bool made = rmtree(s->tmp, e) == 0;
        if (made && mkdir(s->tmp, 0750) < 0) {
            werr_sys(e, "%s: mkdir", s->tmp);
            made = false;
        }
        if (!made) {
            free(s->tmp);
            s->tmp = NULL;
            goto out;
        }
    } else if (!(s->tmp = mkdtemp(xasprintf("%s.tmp-XXXXXX", dir)))) {
        werr_sys(e, "%s.tmp-XXXXXX: mkdtemp", dir);
        goto out;
    }
    if (chmod(s->tmp, 0750) < 0 || lstat(s->tmp, &st) < 0) {
        werr_sys(e, "%s", s->tmp);
        goto out;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    text = join(s->tmp, "data"); /* data/ even for an empty payload; fsynced below */
    if (mkdir(text, 0750) < 0) {
        werr_sys(e, "%s", text);
        goto out;
    }
    free(text);
    text = NULL;

    for (i = 0; i < n; i++) {
        const struct bag_file *f = &files[i];
        if (f->src_path && f->sha256 &&
            link_file(s->tmp, f->name, f->src_path, f->sha256, hex, &size) == 0)
            ; /* linked: same inode, already durable */
        else if (write_file(s->tmp, f->name, f->src_path, f->content, f->len, hex, &size, &pend,
                            e) < 0)
            goto out;
        if (is_payload(f->name)) {
            entries_add(&s->payload, f->name, hex, size, true);
            s->octets += size;
        } else {
            entries_add(&s->tags, f->name, hex, size, true);
        }
    }
    entries_sort(&s->payload);

    if (write_file(s->tmp, "bagit.txt", NULL, bagit, sizeof bagit - 1, hex, &size, &pend, e) < 0)
        goto out;
    entries_add(&s->tags, "bagit.txt", hex, size, true);
    text = manifest_text(&s->payload);
    if (write_file(s->tmp, "manifest-sha256.txt", NULL, text, strlen(text), hex, &size, &pend, e) <
        0)
        goto out;
    entries_add(&s->tags, "manifest-sha256.txt", hex, size, true);
    if ((s->info_fd = create_empty(s->tmp, "bag-info.txt", e)) < 0 ||
        (s->tm_fd = create_empty(s->tmp, "tagmanifest-sha256.txt", e)) < 0)
        goto out;
    if (pending_end(&pend, true, e) < 0 || fsync_tree_dirs(s->tmp, e) < 0)
        goto out;
    ok = true;
out:
    pending_end(&pend, false, NULL);
    free(text);
    free(parent);
    if (!ok) {
        bag_stage_free(s);
        s = NULL;
    }
    return s;
}

/*
 * bag_finish:
 *   1. dir exists: verify it and return its tag manifest hash (idempotent;
 *      the stage is left for bag_stage_free to remove);
 *   2. fill bag-info.txt, then tagmanifest-sha256.txt over every other tag
 *      file, fsync both;
 *   3. rename the temp dir to dir (never over an existing one), fsync the
 *      parent.
 */
int bag_finish(struct bag_stage *s, const struct bag_kv *info, size_t n_info,
               char tagmanifest_sha[SHA256_HEX_LEN], struct werr *e)
{
    char *text = NULL, hex[SHA256_HEX_LEN];
    uint64_t size;
    struct stat st;
    int r = -1;

    if (check_inputs(NULL, 0, info, n_info, e) < 0)
        return -1;
    if (lstat(s->dir, &st) == 0)
        return reuse_existing(s->dir, tagmanifest_sha, e);
    if (errno != ENOENT) {
        werr_sys(e, "%s", s->dir);
        return -1;
    }
    if (s->info_fd < 0) {
        werr_set(e, "%s: bag already finished", s->dir);
        return -1;
    }
    text = bag_info_text(info, n_info, s->octets, s->payload.n);
    if (fill(s->info_fd, s->tmp, "bag-info.txt", text, strlen(text), hex, &size, e) < 0)
        goto out;
    entries_add(&s->tags, "bag-info.txt", hex, size, true);
    free(text);
    entries_sort(&s->tags);
    text = manifest_text(&s->tags);
    if (fill(s->tm_fd, s->tmp, "tagmanifest-sha256.txt", text, strlen(text), tagmanifest_sha, &size,
             e) < 0)
        goto out;
    /* What is renamed into place must be what was staged and filled: a
     * temp dir removed or replaced meanwhile (a node whose lease ran out
     * staging the same bag) is never published with someone else's tag
     * files, or none. */
    struct stat dt, fi, ft;
    if (lstat(s->tmp, &dt) < 0 || dt.st_dev != s->dev || dt.st_ino != s->ino ||
        fstat(s->info_fd, &fi) < 0 || fstat(s->tm_fd, &ft) < 0 || fi.st_nlink == 0 ||
        ft.st_nlink == 0) {
        werr_set(e, "%s: the bag's temp dir was removed or replaced while it was built", s->tmp);
        goto out;
    }
    close(s->info_fd);
    close(s->tm_fd);
    s->info_fd = s->tm_fd = -1;
    if (publish(s->tmp, s->dir) < 0) {
        if (errno == EEXIST) { /* sealed by someone else meanwhile */
            r = reuse_existing(s->dir, tagmanifest_sha, e);
            goto out;
        }
        werr_sys(e, "rename %s -> %s", s->tmp, s->dir);
        goto out;
    }
    free(s->tmp);
    s->tmp = NULL;
    if (fsync_parent(s->dir, e) < 0)
        goto out;
    r = 0;
out:
    free(text);
    return r;
}

int bag_seal(const char *dir, const struct bag_file *files, size_t n, const struct bag_kv *info,
             size_t n_info, char tagmanifest_sha[SHA256_HEX_LEN], struct werr *e)
{
    struct stat st;
    if (check_inputs(files, n, info, n_info, e) < 0)
        return -1;
    if (lstat(dir, &st) == 0)
        return reuse_existing(dir, tagmanifest_sha, e);
    if (errno != ENOENT) {
        werr_sys(e, "%s", dir);
        return -1;
    }
    struct bag_stage *s = bag_stage(dir, NULL, files, n, e);
    int r = s ? bag_finish(s, info, n_info, tagmanifest_sha, e) : -1;
    bag_stage_free(s);
    return r;
}

/* ---- verification ---- */

struct vctx {
    const char *dir;
    struct report *rep;
    unsigned problems;
};

static void problem(struct vctx *v, const char *rel, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(struct vctx *v, const char *rel, const char *code, const char *fmt, ...)
{
    char msg[900];
    char *part = rel ? join(v->dir, rel) : xstrdup(v->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report_add(v->rep, part, 0, 0, NULL, NULL, 0, code, "%s", msg);
    v->problems++;
    free(part);
}

/* Whole small file into a NUL-terminated buffer.  1: absent, -1: error. */
static int slurp(const char *path, char **out, size_t *len, struct werr *e)
{
    struct stat st;
    size_t got = 0;
    char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    *out = NULL;
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        werr_sys(e, "%s", path);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        werr_sys(e, "%s: fstat", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MANIFEST_MAX) {
        if (S_ISREG(st.st_mode))
            werr_set(e, "%s: larger than %u bytes", path, MANIFEST_MAX);
        else
            werr_set(e, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            werr_sys(e, "%s: read", path);
            free(buf);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    *len = got;
    return 0;
}

static bool hex64(const char *s, size_t n)
{
    size_t i;
    if (n != 64)
        return false;
    for (i = 0; i < n; i++)
        if (hexval(s[i]) < 0)
            return false;
    return true;
}

/* Parses "<sha256> <ws> <encoded path>" lines into l (sorted).
 * 0 read (syntax problems reported), 1 absent (reported), -1 error. */
static int read_manifest(struct vctx *v, const char *name, struct entries *l, struct werr *e)
{
    char *path = join(v->dir, name), *buf = NULL, *line, *next;
    size_t len, lineno = 0, i;
    int r = slurp(path, &buf, &len, e);
    free(path);
    if (r == 1)
        problem(v, name, "missing", "missing");
    if (r != 0)
        return r;
    if (memchr(buf, 0, len))
        problem(v, name, "manifest_syntax", "%s contains a NUL byte", name);
    for (line = buf; line && *line; line = next) {
        char *sp, *p, *dec;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        if (*line && line[strlen(line) - 1] == '\r')
            line[strlen(line) - 1] = 0;
        if (!*line)
            continue;
        sp = line + strcspn(line, " \t");
        p = sp + strspn(sp, " \t");
        if (!hex64(line, (size_t)(sp - line)) || !*p) {
            problem(v, name, "manifest_syntax",
                    "%s line %zu: expected \"<sha256>  <path>\", found \"%.80s\"", name, lineno,
                    line);
            continue;
        }
        *sp = 0;
        dec = decode_path(p);
        if (!dec || !path_safe(dec)) {
            problem(v, name, "unsafe_path",
                    "%s line %zu: path \"%.200s\" is absolute, has \"..\" or is not a path", name,
                    lineno, p);
            free(dec);
            continue;
        }
        entries_add(l, dec, line, 0, true);
        free(dec);
    }
    free(buf);
    entries_sort(l);
    for (i = 1; i < l->n; i++)
        if (!strcmp(l->v[i].path, l->v[i - 1].path))
            problem(v, name, "duplicate", "%s lists %s twice", name, l->v[i].path);
    return 0;
}

/* Re-hash every entry of a manifest. */
static int check_hashes(struct vctx *v, const char *manifest, const struct entries *l,
                        struct werr *e)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        const struct entry *x = &l->v[i];
        char *path = join(v->dir, x->path), hex[SHA256_HEX_LEN];
        struct stat st;
        struct werr fe = {0};
        if (lstat(path, &st) < 0) {
            if (errno == ENOENT || errno == ENOTDIR) {
                problem(v, x->path, "missing", "listed in %s but missing", manifest);
            } else {
                werr_sys(e, "%s", path);
                free(path);
                return -1;
            }
        } else if (!S_ISREG(st.st_mode)) {
            problem(v, x->path, "not_regular", "listed in %s but not a regular file", manifest);
        } else if (sha256_file(path, hex, NULL, &fe) < 0) {
            problem(v, x->path, "unreadable", "%s", fe.msg);
        } else if (strcasecmp(hex, x->hex)) {
            problem(v, x->path, "hash_mismatch", "hash mismatch: %s says %s, the file has %s",
                    manifest, x->hex, hex);
        }
        free(path);
    }
    return 0;
}

/* Every file below rel (not following links) into l, with its size. */
static int walk(const char *root, const char *rel, struct entries *l, struct werr *e)
{
    char *path = rel ? join(root, rel) : xstrdup(root);
    DIR *d = opendir(path);
    struct dirent *de;
    int r = 0;
    if (!d) {
        werr_sys(e, "%s", path);
        free(path);
        return -1;
    }
    while (r == 0 && (de = readdir(d))) {
        struct stat st;
        char *child;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        child = rel ? join(rel, de->d_name) : xstrdup(de->d_name);
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            werr_sys(e, "%s/%s", path, de->d_name);
            r = -1;
        } else if (S_ISDIR(st.st_mode)) {
            r = walk(root, child, l, e);
        } else {
            entries_add(l, child, NULL, (uint64_t)st.st_size, S_ISREG(st.st_mode));
        }
        free(child);
    }
    closedir(d);
    free(path);
    return r;
}

/*
 * The one reader of tag files (bag-info.txt), RFC 8493 2.2.2:
 *
 *   Label: value
 *   Long-Label: a value continued
 *     on the next line (a line starting with a space or tab)
 *
 * Lines end in LF, CR or CRLF and may be of any length.  A continuation
 * line belongs to the element above it: its line break is kept as "\n",
 * its leading blanks are padding and dropped.  The separator is the first
 * colon and one blank after it.  Lines without a colon (and continuations
 * before any element) are skipped.  buf (NUL-terminated, len bytes) is
 * rewritten in place; fn is called per element in order until it returns
 * nonzero, which tag_parse then returns.
 */
static int tag_parse(char *buf, size_t len, int (*fn)(void *ctx, const char *label, char *value),
                     void *ctx)
{
    char *r = buf, *end = buf + len, *label = NULL, *value = NULL, *w = NULL;
    int stop = 0;
    while (r < end && !stop) {
        char *eol = r;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        char *next = eol < end && *eol == '\r' && eol + 1 < end && eol[1] == '\n' ? eol + 2
                     : eol < end                                                  ? eol + 1
                                                                                  : eol;
        if (r < eol && (*r == ' ' || *r == '\t')) {
            if (label) { /* folded: "\n" + the line without its padding */
                while (r < eol && (*r == ' ' || *r == '\t'))
                    r++;
                *w++ = '\n';
                memmove(w, r, (size_t)(eol - r));
                w += eol - r;
            }
        } else {
            char *colon = memchr(r, ':', (size_t)(eol - r));
            if (label) {
                *w = 0;
                stop = fn(ctx, label, value);
                label = NULL;
            }
            if (colon && !stop) {
                *colon = 0;
                label = r;
                value = colon + 1;
                if (value < eol && (*value == ' ' || *value == '\t'))
                    value++;
                w = value + (eol - value);
            }
        }
        r = next;
    }
    if (label && !stop) {
        *w = 0;
        stop = fn(ctx, label, value);
    }
    return stop;
}

/* Reads dir/bag-info.txt whole and runs tag_parse over it: 1 absent, -1
 * error (e), else what tag_parse returned. */
static int bag_info_each(const char *dir, int (*fn)(void *ctx, const char *label, char *value),
                         void *ctx, int *stopped, struct werr *e)
{
    char *path = join(dir, "bag-info.txt"), *buf = NULL;
    size_t len;
    int r = slurp(path, &buf, &len, e);
    free(path);
    if (r != 0)
        return r;
    *stopped = tag_parse(buf, len, fn, ctx);
    free(buf);
    return 0;
}

struct oxum_ctx {
    struct vctx *v;
    uint64_t octets, count;
};

static int oxum_cb(void *ctx, const char *label, char *value)
{
    struct oxum_ctx *x = ctx;
    unsigned long long o, c;
    char tail;
    if (strcasecmp(label, "Payload-Oxum"))
        return 0;
    if (sscanf(value, " %llu.%llu %c", &o, &c, &tail) != 2) {
        char *shown = esc_text(value);
        problem(x->v, "bag-info.txt", "oxum", "Payload-Oxum \"%.60s\" is malformed", shown);
        free(shown);
    } else if (o != x->octets || c != x->count) {
        problem(x->v, "bag-info.txt", "oxum",
                "Payload-Oxum says %llu.%llu (octets.files), the payload is "
                "%llu.%llu",
                o, c, (unsigned long long)x->octets, (unsigned long long)x->count);
    }
    return 1;
}

/* Payload-Oxum from bag-info.txt. */
static void check_oxum(struct vctx *v, uint64_t octets, uint64_t count, struct werr *e, int *err)
{
    struct oxum_ctx x = {.v = v, .octets = octets, .count = count};
    int stopped = 0, r = bag_info_each(v->dir, oxum_cb, &x, &stopped, e);
    if (r < 0)
        *err = -1;
    if (r == 1)
        problem(v, "bag-info.txt", "missing", "missing");
}

static void check_bagit(struct vctx *v, struct werr *e, int *err)
{
    char *path = join(v->dir, "bagit.txt"), *buf = NULL;
    size_t len;
    int r = slurp(path, &buf, &len, e);
    free(path);
    if (r < 0)
        *err = -1;
    else if (r == 1)
        problem(v, "bagit.txt", "missing", "missing");
    else if (strncmp(buf, "BagIt-Version: ", 15))
        problem(v, "bagit.txt", "bagit", "does not start with \"BagIt-Version: \"");
    free(buf);
}

/*
 * bag_verify:
 *   1. hash tagmanifest-sha256.txt (the bag's identity) and re-hash what it
 *      lists; it must list bagit.txt, bag-info.txt and manifest-sha256.txt;
 *   2. re-hash every payload file manifest-sha256.txt lists;
 *   3. walk the bag: payload files not in the manifest, tag files not in
 *      the tag manifest and anything not a regular file are problems;
 *   4. Payload-Oxum must match the payload found.
 */
int bag_verify(const char *dir, char tagmanifest_sha[SHA256_HEX_LEN], struct report *rep,
               struct werr *e)
{
    static const char *const required[] = {"bagit.txt", "bag-info.txt", "manifest-sha256.txt"};
    struct vctx v = {.dir = dir, .rep = rep};
    struct entries tags = {0}, payload = {0}, found = {0};
    struct stat st;
    uint64_t octets = 0, count = 0;
    char *path = NULL;
    size_t i;
    int r = -1, err = 0, tm;

    tagmanifest_sha[0] = 0;
    if (stat(dir, &st) < 0) {
        werr_sys(e, "%s", dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        werr_set(e, "%s: not a directory", dir);
        return -1;
    }
    tm = read_manifest(&v, "tagmanifest-sha256.txt", &tags, e);
    if (tm < 0)
        goto out;
    if (tm == 0) {
        path = join(dir, "tagmanifest-sha256.txt");
        if (sha256_file(path, tagmanifest_sha, NULL, e) < 0)
            goto out;
        for (i = 0; i < sizeof required / sizeof *required; i++)
            if (!entries_find(&tags, required[i]))
                problem(&v, "tagmanifest-sha256.txt", "tagmanifest_incomplete",
                        "tagmanifest-sha256.txt does not list %s", required[i]);
        for (i = 0; i < tags.n; i++)
            if (is_payload(tags.v[i].path))
                problem(&v, "tagmanifest-sha256.txt", "manifest_syntax",
                        "tagmanifest-sha256.txt lists payload file %s", tags.v[i].path);
        if (check_hashes(&v, "tagmanifest-sha256.txt", &tags, e) < 0)
            goto out;
    }
    if (read_manifest(&v, "manifest-sha256.txt", &payload, e) < 0)
        goto out;
    for (i = 0; i < payload.n; i++)
        if (!is_payload(payload.v[i].path))
            problem(&v, "manifest-sha256.txt", "manifest_syntax",
                    "manifest-sha256.txt lists %s, which is not under data/", payload.v[i].path);
    if (check_hashes(&v, "manifest-sha256.txt", &payload, e) < 0)
        goto out;
    check_bagit(&v, e, &err);
    if (err)
        goto out;

    if (walk(dir, NULL, &found, e) < 0)
        goto out;
    for (i = 0; i < found.n; i++) {
        const struct entry *x = &found.v[i];
        if (!x->regular) {
            problem(&v, x->path, "not_regular", "not a regular file");
        } else if (is_payload(x->path)) {
            octets += x->size;
            count++;
            if (!entries_find(&payload, x->path))
                problem(&v, x->path, "unlisted", "not listed in manifest-sha256.txt");
        } else if (strcmp(x->path, "tagmanifest-sha256.txt") && tm == 0 &&
                   !entries_find(&tags, x->path)) {
            problem(&v, x->path, "unlisted", "not listed in tagmanifest-sha256.txt");
        }
    }
    free(path);
    path = join(dir, "data");
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        problem(&v, "data", "missing", "the payload directory is missing");
    check_oxum(&v, octets, count, e, &err);
    if (err)
        goto out;
    r = v.problems ? 1 : 0;
out:
    free(path);
    entries_free(&tags);
    entries_free(&payload);
    entries_free(&found);
    return r;
}

struct get_ctx {
    const char *key;
    char *out;
    size_t size;
};

static int get_cb(void *ctx, const char *label, char *value)
{
    struct get_ctx *g = ctx;
    if (strcmp(label, g->key))
        return 0;
    snprintf(g->out, g->size, "%s", value);
    return 1;
}

int bag_info_get(const char *dir, const char *key, char *out, size_t size)
{
    struct get_ctx g = {.key = key, .out = out, .size = size};
    struct werr e;
    int stopped = 0;
    if (bag_info_each(dir, get_cb, &g, &stopped, &e) != 0 || !stopped)
        return -1;
    return 0;
}
