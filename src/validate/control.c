/*
 * control: partner control totals (see control.h).
 *
 * A sample, `control: { line: last, pattern: "^TRL$", count: 2,
 * sums: { amount: 3 } }` over
 *
 *   id;amount
 *   1;12.50
 *   2;7.25
 *   TRL;2;19.75
 *
 * states 2 records whose amounts add up to exactly 19.75.
 */
#include "validate/control.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/defaults.h"
#include "util/escape.h"
#include "util/xmalloc.h"
#include "validate/csv.h"

void control_tally_init(struct control_tally *t, const struct control_conf *conf)
{
    memset(t, 0, sizeof *t);
    t->conf = conf;
    size_t n = conf->n_sums ? conf->n_sums : 1;
    t->sum_text = xcalloc(n, sizeof *t->sum_text);
    t->sums = xcalloc(n, sizeof *t->sums);
    t->unsummable = xcalloc(n, sizeof *t->unsummable);
    /* The profile loader already compiled it once to check it. */
    t->re_ok = conf->pattern && !regcomp(&t->re, conf->pattern, REG_EXTENDED | REG_NOSUB);
    if (conf->line == CONTROL_XML && conf->element)
        t->where = xstrdup(conf->element);
}

void control_tally_free(struct control_tally *t)
{
    if (!t->conf)
        return;
    free(t->count_text);
    for (size_t k = 0; k < t->conf->n_sums; k++) {
        free(t->sum_text[k]);
        decimal_free(&t->sums[k]);
    }
    free(t->sum_text);
    free(t->where);
    free(t->sums);
    free(t->unsummable);
    if (t->re_ok)
        regfree(&t->re);
    memset(t, 0, sizeof *t);
}

bool control_matches(const struct control_tally *t, const char *s, size_t len)
{
    regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};
    /* REG_STARTEND: the field is not NUL-terminated (and may hold a NUL). */
    return t->re_ok && regexec(&t->re, s ? s : "", 1, &m, REG_STARTEND) == 0;
}

void control_tally_take(struct control_tally *t, const struct csv_field *f, size_t n, uint64_t line)
{
    const struct control_conf *c = t->conf;
    if (t->found) {
        if (!*t->problem)
            snprintf(t->problem, sizeof t->problem,
                     "a second control record at line %llu (the first is at line %llu)",
                     (unsigned long long)line, (unsigned long long)t->line);
        return;
    }
    t->found = true;
    t->line = line;
    if (c->count_field) {
        if ((size_t)c->count_field <= n)
            t->count_text = xstrndup(f[c->count_field - 1].p, f[c->count_field - 1].len);
        else
            snprintf(t->problem, sizeof t->problem,
                     "the control record at line %llu has %zu fields; the count is field %d",
                     (unsigned long long)line, n, c->count_field);
    }
    for (size_t k = 0; k < c->n_sums; k++) {
        int fi = c->sums[k].field;
        if ((size_t)fi <= n)
            t->sum_text[k] = xstrndup(f[fi - 1].p, f[fi - 1].len);
        else if (!*t->problem)
            snprintf(t->problem, sizeof t->problem,
                     "the control record at line %llu has %zu fields; the sum of %s is field %d",
                     (unsigned long long)line, n, c->sums[k].column, fi);
    }
}

static const char *control_form_name(enum control_line l)
{
    switch (l) {
    case CONTROL_HEADER:
        return "header";
    case CONTROL_FILE:
        return "file";
    case CONTROL_XML:
        return "element";
    default:
        return "trailer";
    }
}

void control_tally_stated(struct control_tally *t, int k, const char *text, size_t len)
{
    char **slot = k < 0 ? &t->count_text : &t->sum_text[k];
    free(*slot);
    *slot = text ? xstrndup(text, len) : NULL;
}

static void problem(struct control_tally *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct control_tally *t, const char *fmt, ...)
{
    va_list ap;
    if (*t->problem)
        return;
    va_start(ap, fmt);
    vsnprintf(t->problem, sizeof t->problem, fmt, ap);
    va_end(ap);
}

static const char *trim(const char *s, size_t *len)
{
    size_t n = *len;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    *len = n;
    return s;
}

/* key=value lines: every key once; the named keys looked up after. */
static void parse_keyvalue(struct control_tally *t, const char *name, const char *text, size_t len)
{
    const struct control_conf *c = t->conf;
    json_t *kv = json_object(); /* key -> [value, line] */
    size_t off = 0, line = 0;
    while (off < len && !*t->problem) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - (text + off)) : len - off, kl, vl;
        const char *l = text + off, *eq, *k, *v;
        line++;
        off += ll + 1;
        size_t tl = ll;
        const char *tt = trim(l, &tl);
        if (!tl || *tt == '#')
            continue;
        if (!(eq = memchr(l, '=', ll))) {
            problem(t, "the control file %s does not parse: line %zu col %zu: expected key=value, "
                       "found no \"=\"", name, line, (size_t)(tt - l) + 1);
            break;
        }
        kl = (size_t)(eq - l);
        k = trim(l, &kl);
        vl = ll - (size_t)(eq + 1 - l);
        v = trim(eq + 1, &vl);
        if (!kl) {
            problem(t, "the control file %s does not parse: line %zu col %zu: a value without a key",
                    name, line, (size_t)(eq - l) + 1);
            break;
        }
        char *key = xstrndup(k, kl);
        if (memchr(k, 0, kl) || memchr(v, 0, vl)) {
            problem(t, "the control file %s does not parse: line %zu: a NUL byte", name, line);
        } else if (json_object_get(kv, key)) {
            char *ek = esc_text(key);
            problem(t, "the control file %s does not parse: line %zu col %zu: key \"%s\" again "
                       "(first on line %lld)",
                    name, line, (size_t)(k - l) + 1, ek,
                    (long long)json_integer_value(json_array_get(json_object_get(kv, key), 1)));
            free(ek);
        } else {
            char *val = xstrndup(v, vl);
            json_object_set_new(kv, key, json_pack("[s%,I]", val, vl, (json_int_t)line));
            free(val);
        }
        free(key);
    }
    if (!*t->problem) {
        t->found = true;
        for (int k = -1; k < (int)c->n_sums; k++) {
            const char *key = k < 0 ? c->count_key : c->sums[k].key;
            json_t *e;
            if (!key)
                continue;
            if (!(e = json_object_get(kv, key))) {
                char *ek = esc_text(key);
                problem(t, "the control file %s has no key \"%s\" (the profile's control.%s%s)",
                        name, ek, k < 0 ? "count" : "sums.", k < 0 ? "" : c->sums[k].column);
                free(ek);
                continue;
            }
            const char *val = json_string_value(json_array_get(e, 0));
            control_tally_stated(t, k, val, strlen(val));
        }
    }
    json_decref(kv);
}

/* A copy of JSON text with every number outside strings quoted, so that
 * jansson hands back the digits as written ("12345678901234567890.12"
 * would otherwise become a double). */
static char *quote_numbers(const char *s, size_t len, size_t *olen)
{
    char *o = xmalloc(len * 3 + 1);
    size_t n = 0;
    bool str = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (str) {
            o[n++] = ch;
            if (ch == '\\' && i + 1 < len)
                o[n++] = s[++i];
            else if (ch == '"')
                str = false;
        } else if (ch == '"') {
            str = true;
            o[n++] = ch;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            o[n++] = '"';
            while (i < len && strchr("+-0123456789.eE", s[i]))
                o[n++] = s[i++];
            o[n++] = '"';
            i--;
        } else {
            o[n++] = ch;
        }
    }
    o[n] = 0;
    *olen = n;
    return o;
}

static void parse_json(struct control_tally *t, const char *name, const char *text, size_t len)
{
    const struct control_conf *c = t->conf;
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *q = NULL;
    size_t qlen;
    char *qt;
    if (!doc) {
        /* jansson's line and column are where it stopped */
        char *why = esc_text(je.text);
        problem(t, "the control file %s does not parse: line %d col %d: %s", name, je.line,
                je.column, why);
        free(why);
        return;
    }
    if (!json_is_object(doc)) {
        problem(t, "the control file %s does not parse: line 1 col 1: expected a JSON object", name);
        goto out;
    }
    qt = quote_numbers(text, len, &qlen);
    q = json_loadb(qt, qlen, 0, &je);
    free(qt);
    if (!q) {
        problem(t, "the control file %s does not parse: %s", name, je.text);
        goto out;
    }
    t->found = true;
    for (int k = -1; k < (int)c->n_sums; k++) {
        const char *key = k < 0 ? c->count_key : c->sums[k].key;
        json_t *v = q;
        if (!key)
            continue;
        /* "a.b": member b of the object at member a */
        for (const char *p = key; v && *p;) {
            const char *dot = strchr(p, '.');
            size_t l = dot ? (size_t)(dot - p) : strlen(p);
            char *seg = xstrndup(p, l);
            v = json_is_object(v) ? json_object_get(v, seg) : NULL;
            free(seg);
            p += l + (dot ? 1 : 0);
        }
        char *ek = esc_text(key);
        if (!v)
            problem(t, "the control file %s has no key \"%s\" (the profile's control.%s%s)", name,
                    ek, k < 0 ? "count" : "sums.", k < 0 ? "" : c->sums[k].column);
        else if (!json_is_string(v))
            problem(t, "the control file %s: \"%s\" is not a number", name, ek);
        else
            control_tally_stated(t, k, json_string_value(v), json_string_length(v));
        free(ek);
    }
out:
    json_decref(doc);
    json_decref(q);
}

/* One CSV record, read with the CSV tokenizer from memory (a pipe would
 * need a thread; a memfd is simplest and bounded by CONTROL_MAX_BYTES). */
static void parse_csv(struct control_tally *t, const char *name, const char *text, size_t len)
{
    const struct control_conf *c = t->conf;
    struct csv_reader *rd = NULL;
    struct csv_record rec;
    struct werr e = {0};
    int fd = memfd_create("wharf-control", MFD_CLOEXEC), got;
    bool took = false;
    if (fd < 0 || (size_t)write(fd, text, len) != len || lseek(fd, 0, SEEK_SET) < 0) {
        problem(t, "the control file %s: cannot be read back (%s)", name, strerror(errno));
        goto out;
    }
    rd = csv_open_fd(fd, c->delimiter, '"', CONTROL_MAX_BYTES, CONTROL_MAX_BYTES);
    while ((got = csv_next(rd, &rec, &e)) == 1) {
        if (rec.blank)
            continue;
        if (rec.err != CSV_OK) {
            if (rec.err_field)
                problem(t, "the control file %s does not parse: line %llu field %zu: %s", name,
                        (unsigned long long)rec.line, rec.err_field, csv_error_text(rec.err));
            else
                problem(t, "the control file %s does not parse: line %llu: %s", name,
                        (unsigned long long)rec.line, csv_error_text(rec.err));
            goto out;
        }
        if (took) {
            problem(t, "the control file %s does not parse: line %llu: a second record (one CSV "
                       "line is expected)", name, (unsigned long long)rec.line);
            goto out;
        }
        control_tally_take(t, rec.f, rec.n, rec.line);
        took = true;
    }
    if (got < 0)
        problem(t, "the control file %s: %s", name, e.msg);
    else if (!took)
        problem(t, "the control file %s does not parse: it is empty (one CSV line is expected)",
                name);
out:
    if (rd)
        csv_close(rd);
    if (fd >= 0)
        close(fd);
}

void control_file_parse(struct control_tally *t, const char *name, const char *text, size_t len)
{
    char *shown = esc_text(name);
    free(t->where);
    t->where = xstrdup(name);
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) { /* a UTF-8 BOM */
        text += 3;
        len -= 3;
    }
    switch (t->conf->format) {
    case CONTROL_KV:
        parse_keyvalue(t, shown, text, len);
        break;
    case CONTROL_JSON:
        parse_json(t, shown, text, len);
        break;
    case CONTROL_CSV:
        parse_csv(t, shown, text, len);
        break;
    }
    /* control_tally_take's "the control record at line N" reads as the file's */
    free(shown);
}

/* "1,000" */
static void group_u64(uint64_t v, char *out, size_t osz)
{
    char d[32];
    int n = snprintf(d, sizeof d, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < osz; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
}

/* A stated number for the message: grouped when it is a plain decimal,
 * else as written (escaped: it is the partner's text). */
static char *stated_show(const char *text)
{
    struct decimal d = {0};
    char *s;
    if (text && decimal_parse(&d, text, strlen(text)) == 0)
        s = decimal_str(&d, true);
    else
        s = esc_text(text ? text : "(none)");
    decimal_free(&d);
    return s;
}

bool control_compare(const struct control_tally *t, uint64_t records, uint64_t valid,
                     uint64_t invalid, bool split, json_t **out, char *msg, size_t msz)
{
    const struct control_conf *c = t->conf;
    json_t *st = json_object(), *rc = json_object(), *ssum = json_object(), *rsum = json_object(),
           *ev = json_object();
    bool ok = t->found && !*t->problem;
    char said[600] = "", got[600] = "", num[40], why[600] = "";
    size_t sl = 0, gl = 0;

    if (c->count_field || c->count_key) {
        struct decimal sd = {0}, rd = {0};
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)records);
        decimal_parse(&rd, buf, strlen(buf));
        bool parsed =
            t->count_text && decimal_parse(&sd, t->count_text, strlen(t->count_text)) == 0;
        if (!parsed || decimal_cmp(&sd, &rd) != 0)
            ok = false;
        decimal_free(&sd);
        decimal_free(&rd);
        char *s = stated_show(t->count_text);
        group_u64(records, num, sizeof num);
        sl += (size_t)snprintf(said + sl, sizeof said - sl, "%s records", s);
        gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s", num);
        free(s);
        json_object_set_new(st, "records", t->count_text ? esc_json(t->count_text) : json_null());
    }
    for (size_t k = 0; k < c->n_sums; k++) {
        struct decimal sd = {0};
        const char *col = c->sums[k].column;
        bool parsed =
            t->sum_text[k] && decimal_parse(&sd, t->sum_text[k], strlen(t->sum_text[k])) == 0;
        if (!parsed || decimal_cmp(&sd, &t->sums[k]) != 0 || t->unsummable[k])
            ok = false;
        decimal_free(&sd);
        char *s = stated_show(t->sum_text[k]), *r = decimal_str(&t->sums[k], true),
             *rplain = decimal_str(&t->sums[k], false);
        sl += (size_t)snprintf(said + (sl < sizeof said ? sl : sizeof said - 1),
                               sl < sizeof said ? sizeof said - sl : 1, "%s%s %s", sl ? " / " : "",
                               col, s);
        gl += (size_t)snprintf(got + (gl < sizeof got ? gl : sizeof got - 1),
                               gl < sizeof got ? sizeof got - gl : 1, "%s%s", gl ? " / " : "", r);
        json_object_set_new(ssum, col, t->sum_text[k] ? esc_json(t->sum_text[k]) : json_null());
        json_object_set_new(rsum, col, json_string(rplain));
        if (t->unsummable[k]) {
            size_t wl = strlen(why);
            snprintf(why + wl, sizeof why - wl, "%s%llu %s cell%s not a number", wl ? "; " : "",
                     (unsigned long long)t->unsummable[k], col,
                     t->unsummable[k] == 1 ? " is" : "s are");
        }
        free(s);
        free(r);
        free(rplain);
    }
    if (c->n_sums)
        json_object_set_new(st, "sums", ssum);
    else
        json_decref(ssum);
    json_object_set_new(rc, "records", json_integer((json_int_t)records));
    json_object_set_new(rc, "valid", json_integer((json_int_t)valid));
    json_object_set_new(rc, "invalid", json_integer((json_int_t)invalid));
    if (c->n_sums)
        json_object_set_new(rc, "sums", rsum);
    else
        json_decref(rsum);

    char split_note[160] = "";
    if (split)
        snprintf(split_note, sizeof split_note, " (%llu valid, %llu invalid)",
                 (unsigned long long)valid, (unsigned long long)invalid);
    if (*t->problem)
        snprintf(msg, msz, "control: %s", t->problem);
    else if (!t->found && c->line == CONTROL_XML)
        snprintf(msg, msz, "control: no control element %s in the document (the profile requires one)",
                 c->element);
    else if (!t->found && c->line == CONTROL_FILE)
        snprintf(msg, msz, "control: no control file (the profile requires one)");
    else if (!t->found)
        snprintf(msg, msz,
                 "control: no %s control record matching \"%s\" (the profile requires one)",
                 c->line == CONTROL_HEADER ? "header (first)" : "trailer (last)", c->pattern);
    else
        snprintf(msg, msz, "control: the file says %s; received %s%s%s%s%s", said, got, split_note,
                 *why ? " (" : "", why, *why ? ")" : "");

    json_object_set_new(ev, "ok", json_boolean(ok));
    json_object_set_new(ev, "form", json_string(control_form_name(c->line)));
    if (t->found && t->line)
        json_object_set_new(ev, "line", json_integer((json_int_t)t->line));
    if (t->where)
        json_object_set_new(ev, c->line == CONTROL_XML ? "element" : "file", esc_json(t->where));
    json_object_set_new(ev, "stated", st);
    json_object_set_new(ev, "received", rc);
    json_object_set_new(ev, "message", esc_json(msg));
    *out = ev;
    return ok;
}
