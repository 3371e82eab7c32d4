/*
 * receipt: what a partner is told about each file wharf took from them.
 *
 * A receipt (docs/receipts.md) is built only from what the ledger and the
 * intake's report.json say, so building it again after a crash gives the
 * same facts; the pipeline still keeps the first bytes it built (in the
 * intake's work dir) and re-delivers exactly those.
 *
 * Local delivery, for spool partners:
 *
 *   1. open the outbox with O_DIRECTORY|O_NOFOLLOW, everything else relative
 *      to that fd;
 *   2. write ".<name>.part" (O_EXCL after removing a stale one), fsync;
 *   3. linkat() it to <name>: atomic, and it fails with EEXIST instead of
 *      replacing a file (rename(2) would replace one);
 *   4. unlink the temp, fsync the directory.
 *
 * When <name> exists already, its bytes decide: ours (a crash after step 3)
 * is a delivery; anything else is the partner's file, which is kept, and the
 * delivery fails permanently.
 */
#include "reply/receipt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/escape.h"
#include "util/parse.h"
#include "util/sha256.h"
#include "util/xmalloc.h"

static json_t *time_json(int64_t ms)
{
    char ts[32];
    format_time_ms(ms, ts);
    return json_string(ts);
}

json_t *receipt_build(const struct intake *in, int64_t sealed_ms, const char *report_json,
                      int max_problems, const char *replay_of_receipt, struct werr *e)
{
    json_t *r = json_object(), *problems = json_array(), *rep = NULL;
    json_t *parked = in->info ? json_object_get(in->info, "invalid_rows") : NULL;
    json_int_t invalid = parked ? json_integer_value(json_object_get(parked, "rows")) : 0;
    json_int_t total = 0;

    if (report_json) {
        json_error_t je;
        rep = json_load_file(report_json, 0, &je);
        if (!rep) {
            werr_setk(e, WERR_CORRUPT, "receipt: cannot read %s: %s (line %d)", report_json,
                      je.text, je.line);
            json_decref(r);
            json_decref(problems);
            return NULL;
        }
        json_t *pv = json_object_get(rep, "problems"), *p;
        size_t i;
        total = json_integer_value(json_object_get(rep, "total"));
        json_array_foreach(pv, i, p)
        {
            if ((int)i >= max_problems)
                break;
            json_t *o = json_object();
            /* report.json already holds escaped excerpts; copy what a
             * partner can act on, nothing about wharf's insides. */
            static const char *const keys[] = {"part",  "line", "column", "field",
                                               "value", "code", "message"};
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
                json_t *v = json_object_get(p, keys[k]);
                if (v)
                    json_object_set(o, keys[k], v);
            }
            json_array_append_new(problems, o);
        }
    }
    json_object_set_new(r, "receipt_version", json_integer(RECEIPT_VERSION));
    json_object_set_new(r, "intake", json_string(in->id));
    json_object_set_new(r, "profile", json_string(in->profile));
    json_object_set_new(r, "file", esc_json(in->name));
    json_object_set_new(r, "size", json_integer((json_int_t)in->size));
    json_object_set_new(r, "sha256", json_string(in->sha256));
    json_object_set_new(r, "received", time_json(in->created_ms));
    json_object_set_new(r, "sealed", time_json(sealed_ms));
    json_object_set_new(r, "outcome", json_string(outcome_name(in->outcome)));
    json_object_set_new(r, "rows_loaded",
                        json_integer(in->outcome == OUT_LOADED ? (json_int_t)in->rows : 0));
    json_object_set_new(r, "rows_invalid", json_integer(invalid));
    json_object_set_new(r, "problems_total", json_integer(total));
    json_object_set_new(r, "problems", problems);
    json_object_set_new(r, "problems_not_listed",
                        json_integer(total - (json_int_t)json_array_size(problems)));
    /* The partner's own control totals against what was received. */
    json_t *cv = in->info ? json_object_get(in->info, "control") : NULL;
    if (json_is_object(cv) && json_is_string(json_object_get(cv, "message")))
        json_object_set_new(r, "control",
                            json_pack("{s:b,s:O}", "agree", json_is_true(json_object_get(cv, "ok")),
                                      "message", json_object_get(cv, "message")));
    json_t *dup = in->info ? json_object_get(in->info, "duplicate_of") : NULL;
    if (in->outcome == OUT_DUPLICATE && json_is_string(dup))
        json_object_set(r, "duplicate_of", dup);
    if (in->replay_of) {
        json_t *ro = json_object();
        json_object_set_new(ro, "intake", json_string(in->replay_of));
        if (replay_of_receipt)
            json_object_set_new(ro, "receipt", esc_json(replay_of_receipt));
        json_object_set_new(r, "replay_of", ro);
    }
    json_decref(rep);
    return r;
}

/* One CSV cell, RFC 4180 quoted, formula-leading cells defused. */
static void cell(FILE *f, const char *s, bool last)
{
    if (!s)
        s = "";
    fputc('"', f);
    if (*s == '=' || *s == '+' || *s == '-' || *s == '@')
        fputc('\'', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
    fputs(last ? "\r\n" : ",", f);
}

static const char *sval(const json_t *o, const char *k, char buf[32])
{
    const json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return "";
}

char *receipt_csv(const json_t *r)
{
    static const char *const head[] = {
        "intake",         "profile",       "file",         "size",           "sha256",
        "received",       "sealed",        "outcome",      "rows_loaded",    "rows_invalid",
        "problems_total", "replay_of",     "problem_part", "problem_line",   "problem_column",
        "problem_field",  "problem_value", "problem_code", "problem_message"};
    static const char *const pkeys[] = {"part",  "line", "column", "field",
                                        "value", "code", "message"};
    const size_t nh = sizeof head / sizeof *head, np = sizeof pkeys / sizeof *pkeys;
    char *out = NULL, b[32];
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const json_t *problems = json_object_get(r, "problems");
    size_t n = json_array_size(problems);
    const char *replay =
        json_string_value(json_object_get(json_object_get(r, "replay_of"), "intake"));

    if (!f)
        abort();
    for (size_t i = 0; i < nh; i++)
        cell(f, head[i], i + 1 == nh);
    for (size_t row = 0; row < (n ? n : 1); row++) {
        const json_t *p = n ? json_array_get(problems, row) : NULL;
        for (size_t i = 0; i < nh - np - 1; i++)
            cell(f, sval(r, head[i], b), false);
        cell(f, replay, false);
        for (size_t i = 0; i < np; i++)
            cell(f, p ? sval(p, pkeys[i], b) : "", i + 1 == np);
    }
    if (fclose(f) != 0)
        abort();
    return out;
}

char *receipt_name(const struct intake *in, const char *ext)
{
    const char *s = in->name;
    if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
        return NULL;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
            return NULL;
    return xasprintf("%s.%s.receipt.%s", in->name, in->id, ext);
}

#define RECEIPT_MAX_BYTES (16u << 20)

int receipt_read(const char *path, char **data, size_t *len, struct werr *e)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    char *buf = NULL;
    size_t used = 0, cap = 0;
    ssize_t n;
    if (fd < 0) {
        werr_sys(e, "receipt: cannot read %s", path);
        return -1;
    }
    for (;;) {
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 16384;
            buf = xrealloc(buf, cap + 1);
        }
        n = read(fd, buf + used, cap - used);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            werr_sys(e, "receipt: cannot read %s", path);
            goto fail;
        }
        used += (size_t)n;
        if (used > RECEIPT_MAX_BYTES) {
            werr_setk(e, WERR_TOO_BIG, "receipt: %s is larger than %u bytes", path,
                      RECEIPT_MAX_BYTES);
            goto fail;
        }
    }
    close(fd);
    buf[used] = 0;
    *data = buf;
    *len = used;
    return 0;
fail:
    close(fd);
    free(buf);
    return -1;
}

/* 1 when dirfd/name holds exactly len bytes with hash want, 0 when it holds
 * something else, -1 on error. */
static int same_file(int dirfd, const char *name, const char *want, size_t len, struct werr *e)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    char got[SHA256_HEX_LEN], buf[65536];
    struct sha256 h;
    ssize_t n;
    int r = -1;
    if (fd < 0) {
        werr_sys(e, "receipt: cannot read the existing %s", name);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        werr_sys(e, "receipt: %s", name);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
        r = 0;
        goto out;
    }
    sha256_init(&h);
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sha256_abort(&h);
            werr_sys(e, "receipt: cannot read the existing %s", name);
            goto out;
        }
        sha256_update(&h, buf, (size_t)n);
    }
    sha256_final(&h, got);
    r = !strcmp(got, want);
out:
    close(fd);
    return r;
}

int receipt_put_local(const char *dir, const char *name, const void *data, size_t len,
                      struct werr *e)
{
    char *tmp = xasprintf(".%s.part", name), want[SHA256_HEX_LEN];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd = -1, r = -1, same;

    sha256_hex(data, len, want);
    if (dfd < 0) {
        werr_sysk(e, WERR_UNREACHABLE, "receipt outbox %s", dir);
        goto out;
    }
    if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        goto exists;
    if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
        werr_sys(e, "receipt: cannot remove the stale %s/%s", dir, tmp);
        goto out;
    }
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        werr_sys(e, "receipt: cannot create %s/%s", dir, tmp);
        goto out;
    }
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        werr_sys(e, "receipt: cannot write %s/%s", dir, tmp);
        goto unlink_tmp;
    }
    if (close(fd) < 0) {
        fd = -1;
        werr_sys(e, "receipt: cannot write %s/%s", dir, tmp);
        goto unlink_tmp;
    }
    fd = -1;
    if (linkat(dfd, tmp, dfd, name, 0) < 0) {
        if (errno == EEXIST) {
            unlinkat(dfd, tmp, 0);
            goto exists;
        }
        werr_sys(e, "receipt: cannot place %s/%s", dir, name);
        goto unlink_tmp;
    }
    if (unlinkat(dfd, tmp, 0) < 0) {
        werr_sys(e, "receipt: cannot remove %s/%s", dir, tmp);
        goto out;
    }
    if (fsync(dfd) < 0) {
        werr_sys(e, "receipt: cannot fsync %s", dir);
        goto out;
    }
    r = 1;
    goto out;
exists:
    same = same_file(dfd, name, want, len, e);
    if (same == 1)
        r = 0;
    else if (same == 0)
        werr_setk(e, WERR_REMOTE,
                  "receipt: %s/%s already exists and is not this receipt; the partner's file is "
                  "kept and the receipt not delivered",
                  dir, name);
    goto out;
unlink_tmp:
    unlinkat(dfd, tmp, 0);
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(tmp);
    return r;
}
