/*
 * source: what every backend shares — picking the backend, deciding which
 * listed drops are complete, and the drop list helpers.
 *
 * Completeness (source.complete_when), all configured rules must hold:
 *   stable_for  size and mtime unchanged across observations at least that
 *               far apart; observations are kept in the ledger (sightings)
 *               so they survive restarts and work across `wharf once` runs;
 *   done_file   its done file ("{name}.done") exists;
 *   control     its control file ("{name}.ctl", control.file) exists, or
 *               control.wait has passed since it was first seen;
 *   min_age     mtime at least that old.
 */
#include "source/source.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger.h"
#include "util/log.h"
#include "util/xmalloc.h"

int source_open(struct source *s, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->profile = p;
    s->ops = p->source.type == SOURCE_SFTP ? &source_sftp_ops : &source_spool_ops;
    if (s->ops->open(s, e) < 0) {
        s->ops = NULL;
        return -1;
    }
    return 0;
}

void source_close(struct source *s)
{
    if (s->ops && s->ops->close)
        s->ops->close(s);
    s->ops = NULL;
}

char *done_name(const char *pattern, const char *name)
{
    const char *at = strstr(pattern, "{name}");
    if (!at)
        return xasprintf("%s%s", name, pattern);
    return xasprintf("%.*s%s%s", (int)(at - pattern), pattern, name, at + 6);
}

char *side_base(const char *pat, const char *name)
{
    const char *at;
    size_t pre, post, len = strlen(name);
    if (!pat || !(at = strstr(pat, "{name}")))
        return NULL;
    pre = (size_t)(at - pat);
    post = strlen(at + 6);
    if (len <= pre + post || strncmp(name, pat, pre) || strcmp(name + len - post, at + 6))
        return NULL;
    return xstrndup(name + pre, len - pre - post);
}

bool side_file(const struct profile *p, const char *name, bool (*has)(const void *, const char *),
               const void *ctx)
{
    char *base = side_base(p->source.done_file, name);
    bool r = base && has(ctx, base);
    free(base);
    /* A control file is one whether or not its data file is there yet: the
     * partner may upload it first. */
    if (!r && (base = side_base(p->control.file, name))) {
        r = fnmatch(p->source.pattern ? p->source.pattern : "*", base, 0) == 0;
        free(base);
    }
    return r;
}

bool name_ignored(const struct profile *p, const char *name)
{
    for (size_t i = 0; i < p->source.ignore.n; i++)
        if (fnmatch(p->source.ignore.v[i], name, FNM_PERIOD) == 0 ||
            fnmatch(p->source.ignore.v[i], name, 0) == 0)
            return true;
    return false;
}

/* The ignore glob that matches name, or NULL. */
static const char *ignore_glob(const struct profile *p, const char *name)
{
    for (size_t i = 0; i < p->source.ignore.n; i++)
        if (fnmatch(p->source.ignore.v[i], name, FNM_PERIOD) == 0 ||
            fnmatch(p->source.ignore.v[i], name, 0) == 0)
            return p->source.ignore.v[i];
    return NULL;
}

/*
 * Is name the temporary name of a file the pattern takes?  A glob "*SUFFIX"
 * without other wildcards (*.filepart, *.part, *.tmp, *~) whose removal
 * leaves a matching name, or a leading dot (".orders_1.csv") when the
 * pattern is narrower than "*" (else every hidden file would qualify).
 */
static bool temp_name(const struct profile *p, const char *name, const char *glob)
{
    const char *pat = p->source.pattern ? p->source.pattern : "*";
    size_t n = strlen(name), sl;
    bool r = false;
    if (!glob)
        return false;
    if (glob[0] == '*' && !strpbrk(glob + 1, "*?[") && (sl = strlen(glob + 1)) < n &&
        !strcmp(name + n - sl, glob + 1)) {
        char *base = xstrndup(name, n - sl);
        r = fnmatch(pat, base, 0) == 0;
        free(base);
    } else if (name[0] == '.' && strcmp(pat, "*") != 0) {
        r = fnmatch(pat, name + 1, 0) == 0;
    }
    return r;
}

void source_skip(struct source *s, const char *rel, const char *name, uint64_t size,
                 int64_t mtime_ns, bool ignored)
{
    const struct profile *p = s->profile;
    struct drop d = {0};
    const char *glob;
    if (!s->skipped)
        return;
    d.path = rel && *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
    d.name = xstrdup(name);
    d.size = size;
    d.mtime_ns = mtime_ns;
    glob = ignored ? ignore_glob(p, name) : NULL;
    d.temp = temp_name(p, name, glob);
    if (ignored)
        d.skipped = xasprintf("ignored: matches ignore glob \"%s\"%s", glob ? glob : "?",
                              d.temp ? " (the temporary name of an upload in progress)" : "");
    else
        d.skipped =
            xasprintf("does not match pattern \"%s\"", p->source.pattern ? p->source.pattern : "*");
    drop_list_add(s->skipped, &d);
}

const char *source_name_refusal(const char *name, size_t len)
{
    if (len == 0)
        return "is empty";
    if (memchr(name, 0, len))
        return "contains a NUL byte";
    if (memchr(name, '/', len))
        return "contains '/'";
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return "is '.' or '..'";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return "contains a control character";
    return NULL;
}

void source_skip_dir(struct source *s, const char *rel, const char *why)
{
    struct drop d = {0};
    if (!s->skipped)
        return;
    d.path = xstrdup(rel);
    const char *slash = strrchr(rel, '/');
    d.name = xstrdup(slash ? slash + 1 : rel);
    d.skipped = xasprintf("cannot read this directory (%s); its files are not taken", why);
    d.unreadable = true;
    drop_list_add(s->skipped, &d);
}

void source_refuse(struct source *s, const char *rel, const char *name, size_t len, const char *why)
{
    struct drop d = {0};
    if (!s->skipped)
        return;
    /* kept as the server sent it, for each output's own escaper (util/
     * escape.h); only a NUL, which no C string can hold, becomes U+FFFD */
    d.name = xmalloc(len * 3 + 1);
    for (size_t i = 0, o = 0; i <= len; i++) {
        if (i == len)
            d.name[o] = 0;
        else if (name[i])
            d.name[o++] = name[i];
        else
            o += (size_t)sprintf(d.name + o, "\xef\xbf\xbd");
    }
    d.path = rel && *rel ? xasprintf("%s/%s", rel, d.name) : xstrdup(d.name);
    d.refused = true;
    d.skipped = xasprintf("refused: the name %s; left in the source, never read", why);
    drop_list_add(s->skipped, &d);
}

void drop_list_add(struct drop_list *l, const struct drop *d)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *d;
}

void drop_free(struct drop *d)
{
    free(d->path);
    free(d->name);
    free(d->done_path);
    free(d->control_path);
    free(d->unsafe);
    free(d->skipped);
    memset(d, 0, sizeof *d);
}

void drop_list_free(struct drop_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        drop_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every listed drop is recorded as a sighting, whatever the rules: the
 * stability clock needs it, and `wharf status` tells from it how long a file
 * has waited without becoming complete. */
static int drop_ready(struct ledger *l, const struct profile *p, const struct drop *d, int64_t now)
{
    struct werr e;
    int64_t first = now;
    if (d->unsafe)
        return 0;
    if (ledger_sighting(l, p->name, d->path, d->size, d->mtime_ns, now, &first, &e) < 0) {
        wlog(LOG_WARN, p->name, NULL, "sighting", NULL, "%s", e.msg);
        if (p->source.stable_for_ms)
            return 0;
    }
    if (p->source.done_file && !d->has_done)
        return 0;
    /* A control file is awaited like the rest of an upload, up to
     * control.wait; then the drop is taken and rejected for want of it. */
    if (p->control.file && p->control.required && !d->has_control &&
        now - first < p->control.wait_ms)
        return 0;
    if (p->source.min_age_ms && now - d->mtime_ns / 1000000 < p->source.min_age_ms)
        return 0;
    if (p->source.stable_for_ms && now - first < p->source.stable_for_ms)
        return 0;
    return 1;
}

size_t source_ready(struct ledger *l, const struct profile *p, struct drop_list *list, int64_t now)
{
    size_t ready = 0;
    for (size_t i = 0; i < list->n; i++) {
        if (drop_ready(l, p, &list->v[i], now)) {
            struct drop t = list->v[ready];
            list->v[ready] = list->v[i];
            list->v[i] = t;
            ready++;
        }
    }
    return ready;
}

static bool is_hex64(const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

/* What a done file says about its drop.  Accepted contents:
 *   (empty)                       nothing to check
 *   "<sha256>"  or  "<sha256>  name"   (sha256sum's format)
 *   "<size> <sha256>"
 *   "<size>"
 * Anything else is ignored (a done file is foremost a marker). */
static void parse_done(const char *text, bool *has_size, uint64_t *size, char sha[SHA256_HEX_LEN])
{
    const char *p = text, *t1, *t2;
    size_t l1, l2;
    *has_size = false;
    sha[0] = 0;
    p += strspn(p, " \t\r\n");
    t1 = p;
    l1 = strcspn(p, " \t\r\n");
    p += l1;
    p += strspn(p, " \t\r\n");
    t2 = p;
    l2 = strcspn(p, " \t\r\n");
    if (is_hex64(t1, l1)) {
        memcpy(sha, t1, 64);
        sha[64] = 0;
    } else if (l1 > 0 && l1 < 20 && strspn(t1, "0123456789") == l1) {
        *has_size = true;
        *size = strtoull(t1, NULL, 10);
        if (is_hex64(t2, l2)) {
            memcpy(sha, t2, 64);
            sha[64] = 0;
        }
    }
    for (char *c = sha; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
}

int source_done_check(const char *label, const struct drop *d, const char *text,
                      const char sha[SHA256_HEX_LEN], struct werr *e)
{
    char want_sha[SHA256_HEX_LEN];
    bool want_size;
    uint64_t size = 0;
    parse_done(text, &want_size, &size, want_sha);
    if (want_size && size != d->size) {
        werr_setk(e, WERR_CORRUPT,
                  "%s: %s: size mismatch: done file %s says %llu bytes, received %llu", label,
                  d->path, d->done_path, (unsigned long long)size, (unsigned long long)d->size);
        return -1;
    }
    if (want_sha[0] && strcmp(want_sha, sha) != 0) {
        werr_setk(e, WERR_CORRUPT,
                  "%s: %s: checksum mismatch: done file %s says sha256 %s, received %s", label,
                  d->path, d->done_path, want_sha, sha);
        return -1;
    }
    return 0;
}
