/*
 * test_tableschema_cases: every line of tests/cases/tableschema.tsv through
 * wharf's real Table Schema compiler and validator (tschema_compile,
 * csvv_run), checking the verdict and the value that would be stored.
 *
 * The file (tab separated, '#' lines are comments):
 *
 *   id  type  schema  input  verdict  expect
 *
 *  - schema: JSON.  A field descriptor (the field is named "v" unless it
 *    says otherwise), or a whole Table Schema when it has "fields".
 *  - input: for one field, the cells of the records, "\n" between records
 *    ("(empty)" is an empty cell, "\\" a backslash, "\t" a tab); each is
 *    written quoted, so the cell is exactly that text.  For a schema of
 *    several fields, the records' raw CSV lines.  "@spill:N": the N
 *    distinct integers N, 1, 2, .., N-1 and then 1 again, enough for the
 *    unique set to spill to disk (the repeat is only found by the merge at
 *    the end).  N comes first because integers that only grow are kept as
 *    ranges, which never spill.
 *  - verdict: valid (every record valid), invalid (one or more invalid),
 *    refused (the schema does not compile: `wharf check` refuses it).
 *  - expect: valid: the stored values, "i:42" (integer), "r:12.5" (real),
 *    "t:text", "n" (NULL), fields joined by ",", records by ";".
 *    invalid: the problem code of the first problem (type, minimum, ...).
 *    refused: text the first diagnostic contains.
 *
 * The same file runs through the npm tableschema package in
 * tests/tableschema-npm.sh; docs/table-schema.md has both tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "util/durable.h"
#include "util/xmalloc.h"
#include "validate/tableschema.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wharf-tsc-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    struct werr e;
    (void)state;
    return rmtree(tmpdir, &e);
}

struct out {
    char *buf;
    size_t n, cap;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->n, o->cap - o->n, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->n) {
            o->n += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)n + 64;
        o->buf = xrealloc(o->buf, o->cap);
    }
}

static int collect(void *ctx, const struct row *row, struct werr *e)
{
    struct out *o = ctx;
    (void)e;
    if (o->n)
        put(o, ";");
    for (size_t i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        if (i)
            put(o, ",");
        switch (v->kind) {
        case VAL_NULL:
            put(o, "n");
            break;
        case VAL_INT:
            put(o, "i:%lld", (long long)v->i);
            break;
        case VAL_REAL:
            put(o, "r:%.17g", v->d);
            break;
        case VAL_TEXT:
            put(o, "t:%.*s", (int)v->len, v->s);
            break;
        }
    }
    return 0;
}

/* "(empty)", "\n", "\t", "\\" as described above; records split at "\n". */
static void unescape(const char *in, struct out *o)
{
    for (const char *p = in; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            put(o, "%c", *p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
        } else {
            put(o, "%c", *p);
        }
    }
}

/* The CSV for a case; fields: the schema's field names. */
static void write_csv(const char *path, json_t *fields, const char *input)
{
    FILE *f = fopen(path, "wb");
    struct out cells = {0};
    size_t nf = json_array_size(fields);
    assert_non_null(f);
    for (size_t i = 0; i < nf; i++)
        fprintf(f, "%s%s", i ? "," : "",
                json_string_value(json_object_get(json_array_get(fields, i), "name")));
    fputs("\r\n", f);
    if (!strncmp(input, "@spill:", 7)) {
        long n = atol(input + 7);
        fprintf(f, "%ld\r\n", n);
        for (long i = 1; i < n; i++)
            fprintf(f, "%ld\r\n", i);
        fputs("1\r\n", f);
        fclose(f);
        return;
    }
    put(&cells, "%s", "");
    unescape(input, &cells);
    char *rec = cells.buf, *next;
    do {
        next = strchr(rec, '\n');
        if (next)
            *next = 0;
        if (nf > 1) {
            fputs(rec, f);
        } else {
            const char *cell = !strcmp(rec, "(empty)") ? "" : rec;
            fputc('"', f);
            for (const char *q = cell; *q; q++) {
                if (*q == '"')
                    fputc('"', f);
                fputc(*q, f);
            }
            fputc('"', f);
        }
        fputs("\r\n", f);
        rec = next ? next + 1 : NULL;
    } while (rec);
    free(cells.buf);
    fclose(f);
}

struct tally {
    size_t cases, failed;
};

static void run_case(struct tally *t, int lineno, char **col)
{
    const char *id = col[0], *schema = col[2], *input = col[3], *verdict = col[4], *expect = col[5];
    json_error_t jerr;
    json_t *j = json_loads(schema, 0, &jerr), *root, *fields;
    char *schema_path = xasprintf("%s/case.json", tmpdir);
    char *csv_path = xasprintf("%s/case.csv", tmpdir);
    struct wharf_config cfg;
    struct profile *p = xcalloc(1, sizeof *p);
    struct diags d = {0};
    struct tschema *s;
    char got[4096] = "";

    t->cases++;
    if (!j)
        fail_msg("tableschema.tsv:%d (%s): schema is not JSON: %s", lineno, id, jerr.text);
    if (json_object_get(j, "fields")) {
        root = j;
    } else {
        if (!json_object_get(j, "name"))
            json_object_set_new(j, "name", json_string("v"));
        root = json_pack("{s:[o]}", "fields", j);
    }
    fields = json_object_get(root, "fields");
    assert_int_equal(json_dump_file(root, schema_path, 0), 0);
    write_csv(csv_path, fields, input);

    config_defaults(&cfg, tmpdir);
    free(cfg.schemas_dir);
    cfg.schemas_dir = xstrdup(tmpdir);
    profile_defaults(p);
    p->name = xstrdup("cases");
    p->file = xstrdup("profiles/cases.yaml");
    p->csv.schema = xstrdup("case.json");
    s = tschema_compile(&cfg, p, &d);
    if (!s) {
        snprintf(got, sizeof got, "refused: %s", d.n ? d.msg[0] : "(no diagnostic)");
        if (strcmp(verdict, "refused") || !d.n || !strstr(d.msg[0], expect))
            goto bad;
        goto done;
    }
    if (!strcmp(verdict, "refused")) {
        snprintf(got, sizeof got, "compiled");
        goto bad;
    }
    {
        struct validate_input in = {.path = csv_path,
                                    .display = "case.csv",
                                    .format = FORMAT_CSV,
                                    .delimiter = ',',
                                    .quote = '"',
                                    .header = true};
        struct report rep;
        struct validate_result res;
        struct out rows = {0};
        struct werr e = {0};
        put(&rows, "%s", "");
        report_init(&rep, 10);
        if (csvv_run(s, p, &in, &rep, collect, &rows, NULL, &res, &e) < 0)
            snprintf(got, sizeof got, "run failed: %s", e.msg);
        else if (res.invalid == 0)
            snprintf(got, sizeof got, "valid %s", rows.buf);
        else
            snprintf(got, sizeof got, "invalid %s (%s)", rep.n ? rep.v[0].code : "?",
                     rep.n ? rep.v[0].message : "");
        bool pass = !strcmp(verdict, "valid")
                        ? res.invalid == 0 && !strcmp(rows.buf, expect)
                        : res.invalid > 0 && rep.n && !strcmp(rep.v[0].code, expect);
        /* the generated spill case must really have spilled */
        if (pass && !strncmp(input, "@spill:", 7) && !res.late_duplicates) {
            snprintf(got, sizeof got, "no late duplicate: the key set did not spill");
            pass = false;
        }
        report_free(&rep);
        free(rows.buf);
        if (!pass)
            goto bad;
    }
    goto done;
bad:
    t->failed++;
    print_error("tableschema.tsv:%d %s: want %s %s, got %s\n", lineno, id, verdict, expect, got);
done:
    tschema_free(s);
    diag_free(&d);
    profile_free(p);
    config_free(&cfg);
    json_decref(root);
    free(schema_path);
    free(csv_path);
}

static void test_cases(void **state)
{
    (void)state;
    char *path = xasprintf("%s/tests/cases/tableschema.tsv", WHARF_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    struct tally t = {0};
    assert_non_null(f);
    while (getline(&line, &cap, f) > 0) {
        char *col[7] = {0}, *p = line;
        size_t n = 0;
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!*line || *line == '#')
            continue;
        while (p && n < 7) {
            col[n++] = p;
            if ((p = strchr(p, '\t')))
                *p++ = 0;
        }
        if (n != 6)
            fail_msg("tableschema.tsv:%d: %zu columns, want 6", lineno, n);
        if (lineno == 1 || !strcmp(col[0], "id"))
            continue; /* the header */
        run_case(&t, lineno, col);
    }
    free(line);
    fclose(f);
    free(path);
    print_message("%zu cases, %zu failed\n", t.cases, t.failed);
    assert_true(t.cases >= 300);
    assert_int_equal(t.failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
