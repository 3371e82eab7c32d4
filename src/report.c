/*
 * report: collecting problems (see report.h).  Values are cut to an excerpt
 * of 60 bytes (on a UTF-8 boundary); excerpts, the part name and the message
 * are escaped (util/escape.h) wherever a line is made, so a report line is
 * always one readable line whatever the input held: a newline in a member
 * name cannot forge a second problem in report.txt.
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/escape.h"
#include "util/xmalloc.h"

#define EXCERPT_MAX 60

void report_init(struct report *r, size_t limit)
{
    memset(r, 0, sizeof *r);
    r->limit = limit ? limit : 100;
}

/* The first EXCERPT_MAX bytes of s (cut on a UTF-8 boundary), escaped,
 * with "..." when cut. */
static char *excerpt(const char *s, size_t len)
{
    size_t cut = len > EXCERPT_MAX ? EXCERPT_MAX : len;
    char *e, *out;
    while (cut < len && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    e = esc_textn(s, cut);
    if (cut == len)
        return e;
    out = xasprintf("%s...", e);
    free(e);
    return out;
}

void report_add(struct report *r, const char *part, uint64_t line, uint64_t column,
                const char *field, const char *value, size_t value_len, const char *code,
                const char *fmt, ...)
{
    struct problem *p;
    char msg[1024];
    va_list ap;
    r->total++;
    if (r->n >= r->limit)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p = &r->v[r->n++];
    p->part = part ? xstrdup(part) : NULL;
    p->line = line;
    p->column = column;
    p->field = field ? excerpt(field, strlen(field)) : NULL;
    p->value = value ? excerpt(value, value_len) : NULL;
    p->code = xstrdup(code ? code : "error");
    p->message = xstrdup(msg);
}

/* One problem as one line of text; every partner byte in it escaped. */
static char *problem_line(const struct problem *p)
{
    char where[512] = "", *r, *msg = esc_text(p->message),
         *part = p->part ? esc_text(p->part) : NULL;
    size_t n = 0;
    if (part)
        n += (size_t)snprintf(where + n, sizeof where - n, "%s", part);
    if (p->line && n < sizeof where)
        n += (size_t)snprintf(where + n, sizeof where - n, "%sline %llu", n ? " " : "",
                              (unsigned long long)p->line);
    if (p->field && n < sizeof where)
        n += (size_t)snprintf(where + n, sizeof where - n, "%scolumn \"%s\"", n ? ", " : "",
                              p->field);
    if (p->column && n < sizeof where) {
        if (p->field)
            n += (size_t)snprintf(where + n, sizeof where - n, " (%llu)",
                                  (unsigned long long)p->column);
        else
            n += (size_t)snprintf(where + n, sizeof where - n, "%scolumn %llu", n ? ", " : "",
                                  (unsigned long long)p->column);
    }
    if (p->value)
        r = xasprintf("%s%s\"%s\" %s", where, *where ? ": " : "", p->value, msg);
    else
        r = xasprintf("%s%s%s", where, *where ? ": " : "", msg);
    free(msg);
    free(part);
    return r;
}

char *report_text(const struct report *r)
{
    size_t cap = 256, len = 0, i;
    char *out = xmalloc(cap);
    out[0] = 0;
    for (i = 0; i < r->n; i++) {
        char *l = problem_line(&r->v[i]);
        size_t ll = strlen(l);
        if (len + ll + 64 > cap) {
            cap = (len + ll + 64) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, l, ll);
        len += ll;
        out[len++] = '\n';
        out[len] = 0;
        free(l);
    }
    if (r->total > r->n) {
        char more[64];
        snprintf(more, sizeof more, "... and %llu more\n", (unsigned long long)(r->total - r->n));
        if (len + strlen(more) + 1 > cap)
            out = xrealloc(out, len + strlen(more) + 1);
        strcpy(out + len, more);
    }
    return out;
}

char *report_first(const struct report *r)
{
    if (!r->n)
        return xstrdup("");
    return problem_line(&r->v[0]);
}

json_t *report_json(const struct report *r)
{
    json_t *o = json_object(), *a = json_array();
    size_t i;
    for (i = 0; i < r->n; i++) {
        const struct problem *p = &r->v[i];
        json_t *j = json_object();
        if (p->part)
            json_object_set_new(j, "part", esc_json(p->part));
        if (p->line)
            json_object_set_new(j, "line", json_integer((json_int_t)p->line));
        if (p->column)
            json_object_set_new(j, "column", json_integer((json_int_t)p->column));
        if (p->field)
            json_object_set_new(j, "field", json_string(p->field));
        if (p->value)
            json_object_set_new(j, "value", json_string(p->value));
        json_object_set_new(j, "code", json_string(p->code));
        json_object_set_new(j, "message", esc_json(p->message));
        char *line = problem_line(p);
        json_object_set_new(j, "text", json_string(line));
        free(line);
        json_array_append_new(a, j);
    }
    json_object_set_new(o, "total", json_integer((json_int_t)r->total));
    json_object_set_new(o, "shown", json_integer((json_int_t)r->n));
    json_object_set_new(o, "problems", a);
    return o;
}

void report_free(struct report *r)
{
    size_t i;
    for (i = 0; i < r->n; i++) {
        free(r->v[i].part);
        free(r->v[i].field);
        free(r->v[i].value);
        free(r->v[i].code);
        free(r->v[i].message);
    }
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}
