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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

    if (c->count_field) {
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
    if (!t->found)
        snprintf(msg, msz,
                 "control: no %s control record matching \"%s\" (the profile requires one)",
                 c->line == CONTROL_HEADER ? "header (first)" : "trailer (last)", c->pattern);
    else if (*t->problem)
        snprintf(msg, msz, "control: %s", t->problem);
    else
        snprintf(msg, msz, "control: the file says %s; received %s%s%s%s%s", said, got, split_note,
                 *why ? " (" : "", why, *why ? ")" : "");

    json_object_set_new(ev, "ok", json_boolean(ok));
    json_object_set_new(ev, "form", json_string(c->line == CONTROL_HEADER ? "header" : "trailer"));
    if (t->found)
        json_object_set_new(ev, "line", json_integer((json_int_t)t->line));
    json_object_set_new(ev, "stated", st);
    json_object_set_new(ev, "received", rc);
    json_object_set_new(ev, "message", esc_json(msg));
    *out = ev;
    return ok;
}
