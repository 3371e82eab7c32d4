/*
 * test_tableschema: Table Schema types and constraints as a table of cases
 * (one field, one cell: the typed value it becomes, or the exact reason it
 * is refused), then multi-row behaviour: unique, primaryKey, header rules,
 * ragged rows and resynchronisation, the split file, the row callback, and
 * schema-file diagnostics with file:line:col.
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

#include "config/config.h"
#include "util/durable.h"
#include "util/xmalloc.h"
#include "validate/tableschema.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wharf-ts-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    struct werr e;
    (void)state;
    return rmtree(tmpdir, &e);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = xmalloc(1 << 16);
    size_t n;
    assert_non_null(f);
    n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* A profile whose schema is inline YAML `fields`. */
static struct profile *inline_profile(const char *fields_yaml)
{
    struct profile *p = xcalloc(1, sizeof *p);
    struct diags d = {0};
    profile_defaults(p);
    p->name = xstrdup("t");
    p->file = xstrdup("profiles/t.yaml");
    p->csv.inline_fields = node_parse("profiles/t.yaml", fields_yaml, strlen(fields_yaml), &d);
    if (!p->csv.inline_fields)
        fail_msg("bad test YAML: %s", d.n ? d.msg[0] : "?");
    diag_free(&d);
    return p;
}

static struct tschema *compile_ok(const struct profile *p)
{
    struct wharf_config cfg;
    struct diags d = {0};
    config_defaults(&cfg, tmpdir);
    struct tschema *s = tschema_compile(&cfg, p, &d);
    if (!s)
        fail_msg("schema refused: %s", d.n ? d.msg[0] : "(no diag)");
    assert_int_equal(d.n, 0);
    diag_free(&d);
    config_free(&cfg);
    return s;
}

/* Renders typed rows: "i:42,t:abc,n;" per row. */
struct rows {
    char buf[4096];
    size_t n;
    int stop_after; /* return -1 on this row (1-based), 0: never */
    int seen;
};

static void put(struct rows *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->buf + r->n, sizeof r->buf - r->n, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof r->buf - r->n)
        r->n += (size_t)n;
}

static int collect(void *ctx, const struct row *row, struct werr *e)
{
    struct rows *r = ctx;
    r->seen++;
    if (r->stop_after && r->seen == r->stop_after) {
        werr_set(e, "stop requested");
        return -1;
    }
    for (size_t i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        if (i)
            put(r, ",");
        switch (v->kind) {
        case VAL_NULL:
            put(r, "n");
            break;
        case VAL_INT:
            put(r, "i:%lld", (long long)v->i);
            break;
        case VAL_REAL:
            put(r, "r:%.17g", v->d);
            break;
        case VAL_TEXT:
            put(r, "t:%.*s", (int)v->len, v->s);
            break;
        }
    }
    put(r, ";");
    return 0;
}

static int run(struct tschema *s, struct profile *p, const char *csv, struct report *rep,
               struct validate_result *res, struct rows *rows, const char *split)
{
    char *path = xasprintf("%s/in.csv", tmpdir);
    struct validate_input in = {.path = path,
                                .display = "orders.csv",
                                .format = FORMAT_CSV,
                                .delimiter = p->csv.delimiter,
                                .quote = p->csv.quote,
                                .header = p->csv.header};
    struct werr e = {0};
    write_file(path, csv);
    report_init(rep, 100);
    int rc = csvv_run(s, p, &in, rep, collect, rows, split, res, &e);
    free(path);
    return rc;
}

/* ---- the table ---------------------------------------------------------- */

struct tcase {
    const char *field; /* YAML flow map of the one field, named v */
    const char *cell;  /* raw cell text (written quoted) */
    const char *code;  /* NULL: must pass */
    const char *out;   /* pass: typed rendering; fail: the exact reason */
};

static const struct tcase cases[] = {
    /* integer */
    {"{name: v, type: integer}", "42", NULL, "i:42"},
    {"{name: v, type: integer}", "-7", NULL, "i:-7"},
    {"{name: v, type: integer}", "+3", NULL, "i:3"},
    {"{name: v, type: integer}", "-9223372036854775808", NULL, "i:-9223372036854775808"},
    {"{name: v, type: integer}", "9223372036854775808", "type", "is not an integer"},
    {"{name: v, type: integer}", "4.0", "type", "is not an integer"},
    {"{name: v, type: integer}", " 42", "type", "is not an integer"},
    {"{name: v, type: integer}", "1,000", "type", "is not an integer"},
    {"{name: v, type: integer, groupChar: ','}", "1,000,000", NULL, "i:1000000"},
    {"{name: v, type: integer, groupChar: ','}", "1,,000", "type",
     "is not an integer (groupChar is \",\")"},
    {"{name: v, type: integer, bareNumber: false}", "$42", NULL, "i:42"},
    {"{name: v, type: integer, bareNumber: false}", "42 units", NULL, "i:42"},
    {"{name: v, type: integer}", "$42", "type", "is not an integer"},
    /* number */
    {"{name: v, type: number}", "12.50", NULL, "r:12.5"},
    {"{name: v, type: number}", "-0.5e3", NULL, "r:-500"},
    /* NaN: the SQLite target would store NULL, and NaN meets no bound or enum */
    {"{name: v, type: number}", "NaN", "unstorable",
     "is NaN, which the SQLite target cannot store (it would become NULL)"},
    {"{name: v, type: number, constraints: {minimum: 0}}", "NaN", "minimum",
     "is NaN, which meets no minimum (0)"},
    {"{name: v, type: number, constraints: {maximum: 0}}", "NaN", "maximum",
     "is NaN, which meets no maximum (0)"},
    {"{name: v, type: number, constraints: {enum: [1, NaN]}}", "NaN", "enum",
     "is NaN, which is not one of \"1\", \"NaN\""},
    {"{name: v, type: number}", "INF", NULL, "r:inf"},
    {"{name: v, type: number}", "-INF", NULL, "r:-inf"},
    {"{name: v, type: number}", "12,50", "type", "is not a number (decimalChar is \".\")"},
    {"{name: v, type: number}", ".", "type", "is not a number (decimalChar is \".\")"},
    {"{name: v, type: number}", "1e", "type", "is not a number (decimalChar is \".\")"},
    {"{name: v, type: number, decimalChar: ','}", "12,50", NULL, "r:12.5"},
    {"{name: v, type: number, decimalChar: ',', groupChar: '.'}", "1.234,5", NULL, "r:1234.5"},
    {"{name: v, type: number, decimalChar: ',', groupChar: '.'}", "1,2,3", "type",
     "is not a number (decimalChar is \",\", groupChar is \".\")"},
    {"{name: v, type: number, bareNumber: false}", "EUR 12.50", NULL, "r:12.5"},
    {"{name: v, type: number, bareNumber: false}", "95%", NULL, "r:95"},
    /* boolean */
    {"{name: v, type: boolean}", "true", NULL, "i:1"},
    {"{name: v, type: boolean}", "FALSE", NULL, "i:0"},
    {"{name: v, type: boolean}", "0", NULL, "i:0"},
    {"{name: v, type: boolean}", "yes", "type",
     "is not a boolean (true: true, True, TRUE, 1; false: false, False, FALSE, 0)"},
    {"{name: v, type: boolean, trueValues: [ja], falseValues: [nein]}", "ja", NULL, "i:1"},
    {"{name: v, type: boolean, trueValues: [ja], falseValues: [nein]}", "true", "type",
     "is not a boolean (true: ja; false: nein)"},
    /* date */
    {"{name: v, type: date}", "2024-02-29", NULL, "t:2024-02-29"},
    {"{name: v, type: date}", "2023-02-29", "type", "is not a date (format YYYY-MM-DD)"},
    {"{name: v, type: date}", "2024-2-3", "type", "is not a date (format YYYY-MM-DD)"},
    {"{name: v, type: date}", "2024-01-31x", "type", "is not a date (format YYYY-MM-DD)"},
    {"{name: v, type: date, format: '%d.%m.%Y'}", "31.01.2024", NULL, "t:2024-01-31"},
    {"{name: v, type: date, format: '%d.%m.%Y'}", "1.2.2024", NULL, "t:2024-02-01"},
    {"{name: v, type: date, format: '%d.%m.%Y'}", "2024-01-31", "type",
     "is not a date (format \"%d.%m.%Y\")"},
    {"{name: v, type: date, format: '%d %b %Y'}", "3 feb 2024", NULL, "t:2024-02-03"},
    {"{name: v, type: date, format: any}", "31/01/2024", NULL, "t:2024-01-31"},
    {"{name: v, type: date, format: any}", "2024-01-31", NULL, "t:2024-01-31"},
    {"{name: v, type: date, format: any}", "March 5, 2024", NULL, "t:2024-03-05"},
    {"{name: v, type: date, format: any}", "soon", "type",
     "is not a date (any format, e.g. YYYY-MM-DD)"},
    /* time */
    {"{name: v, type: time}", "13:45:00", NULL, "t:13:45:00"},
    {"{name: v, type: time}", "13:45:00.250", NULL, "t:13:45:00.250"},
    {"{name: v, type: time}", "13:45:00+01:00", NULL, "t:12:45:00Z"},
    {"{name: v, type: time}", "25:00:00", "type", "is not a time (format hh:mm:ss)"},
    {"{name: v, type: time}", "13:45", "type", "is not a time (format hh:mm:ss)"},
    {"{name: v, type: time, format: '%I:%M %p'}", "1:45 PM", NULL, "t:13:45:00"},
    {"{name: v, type: time, format: '%I:%M %p'}", "12:05 AM", NULL, "t:00:05:00"},
    {"{name: v, type: time, format: any}", "07:30", NULL, "t:07:30:00"},
    /* datetime */
    {"{name: v, type: datetime}", "2024-01-31T13:45:00Z", NULL, "t:2024-01-31T13:45:00Z"},
    {"{name: v, type: datetime}", "2024-01-01T01:00:00+02:00", NULL, "t:2023-12-31T23:00:00Z"},
    {"{name: v, type: datetime}", "2024-01-31T13:45:00", NULL, "t:2024-01-31T13:45:00"},
    {"{name: v, type: datetime}", "2024-01-31 13:45:00", "type",
     "is not a datetime (format YYYY-MM-DDThh:mm:ss, optional Z or +hh:mm)"},
    {"{name: v, type: datetime, format: any}", "2024-01-31 13:45:00", NULL,
     "t:2024-01-31T13:45:00"},
    {"{name: v, type: datetime, format: '%d.%m.%Y %H:%M'}", "31.01.2024 13:45", NULL,
     "t:2024-01-31T13:45:00"},
    /* year, yearmonth, duration */
    {"{name: v, type: year}", "2024", NULL, "i:2024"},
    {"{name: v, type: year}", "24", "type", "is not a year (YYYY)"},
    {"{name: v, type: yearmonth}", "2024-01", NULL, "t:2024-01"},
    {"{name: v, type: yearmonth}", "2024-13", "type", "is not a year and month (YYYY-MM)"},
    {"{name: v, type: duration}", "P1Y2M3DT4H5M6S", NULL, "t:P1Y2M3DT4H5M6S"},
    {"{name: v, type: duration}", "PT1.5S", NULL, "t:PT1.5S"},
    {"{name: v, type: duration}", "P1H", "type",
     "is not an ISO 8601 duration (e.g. P1Y2M3DT4H5M6S)"},
    {"{name: v, type: duration}", "PT", "type",
     "is not an ISO 8601 duration (e.g. P1Y2M3DT4H5M6S)"},
    /* string and its formats */
    {"{name: v}", "hello, world", NULL, "t:hello, world"},
    {"{name: v, type: string, format: email}", "ops@example.com", NULL, "t:ops@example.com"},
    {"{name: v, type: string, format: email}", "ops@example", "type", "is not an email address"},
    {"{name: v, type: string, format: uuid}", "123e4567-e89b-12d3-a456-426614174000", NULL,
     "t:123e4567-e89b-12d3-a456-426614174000"},
    {"{name: v, type: string, format: uuid}", "123e4567", "type", "is not a UUID"},
    {"{name: v, type: string, format: uri}", "https://example.com/x", NULL,
     "t:https://example.com/x"},
    {"{name: v, type: string, format: uri}", "example.com", "type", "is not a URI"},
    {"{name: v, type: string, format: binary}", "aGk=", NULL, "t:aGk="},
    {"{name: v, type: string, format: binary}", "aGk", "type", "is not base64 data"},
    /* missing values and required */
    {"{name: v, type: integer}", "", NULL, "n"},
    {"{name: v, type: integer, constraints: {required: true}}", "", "required",
     "a value is required"},
    /* minLength / maxLength count characters, not bytes */
    {"{name: v, constraints: {minLength: 3}}", "ab", "min_length",
     "is shorter than minLength 3 (2 characters)"},
    {"{name: v, constraints: {minLength: 3}}",
     "\xc3\xa4"
     "bc",
     NULL,
     "t:\xc3\xa4"
     "bc"},
    {"{name: v, constraints: {maxLength: 3}}", "abcd", "max_length",
     "is longer than maxLength 3 (4 characters)"},
    /* minimum / maximum in the field's type */
    {"{name: v, type: integer, constraints: {minimum: 0}}", "0", NULL, "i:0"},
    {"{name: v, type: integer, constraints: {minimum: 0}}", "-1", "minimum",
     "is less than minimum 0"},
    {"{name: v, type: number, constraints: {maximum: 100}}", "100.5", "maximum",
     "is greater than maximum 100"},
    {"{name: v, type: date, format: '%d.%m.%Y', constraints: {minimum: '2024-01-01'}}",
     "31.12.2023", "minimum", "is less than minimum 2024-01-01"},
    {"{name: v, type: datetime, constraints: {maximum: '2024-01-01T00:00:00Z'}}",
     "2024-01-01T01:00:00+02:00", NULL, "t:2023-12-31T23:00:00Z"},
    {"{name: v, type: year, constraints: {minimum: 2000, maximum: 2099}}", "1999", "minimum",
     "is less than minimum 2000"},
    /* pattern matches the whole value */
    {"{name: v, constraints: {pattern: '[A-Z]{3}'}}", "EUR", NULL, "t:EUR"},
    {"{name: v, constraints: {pattern: '[A-Z]{3}'}}", "EURO", "pattern",
     "does not match pattern \"[A-Z]{3}\""},
    {"{name: v, constraints: {pattern: 'a|b'}}", "ab", "pattern", "does not match pattern \"a|b\""},
    /* XML Schema regular expressions: \\d is a digit, characters not bytes */
    {"{name: v, constraints: {pattern: '[A-Z]{3}-\\d{4}'}}", "ABC-1234", NULL, "t:ABC-1234"},
    {"{name: v, constraints: {pattern: '[A-Z]{3}-\\d{4}'}}", "ABC-dddd", "pattern",
     "does not match pattern \"[A-Z]{3}-\\d{4}\""},
    {"{name: v, constraints: {pattern: '.{1,5}'}}", "Caf\xc3\xa9s", NULL, "t:Caf\xc3\xa9s"},
    {"{name: v, constraints: {pattern: '.{1,4}'}}", "Caf\xc3\xa9s", "pattern",
     "does not match pattern \".{1,4}\""},
    {"{name: v, constraints: {pattern: '\\p{Lu}\\p{Ll}+'}}", "\xc3\x89t\xc3\xa9", NULL,
     "t:\xc3\x89t\xc3\xa9"},
    /* a pattern libxml2 gives up on is a reject that says so, not a mismatch */
    {"{name: v, constraints: {pattern: '(a|aa)*'}}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
     "pattern",
     "could not be checked against pattern \"(a|aa)*\" (the regular expression engine gave up: "
     "the pattern backtracks too much; simplify it)"},
    {"{name: v, constraints: {maxLength: 5}}", "Caf\xc3\xa9s", NULL, "t:Caf\xc3\xa9s"},
    {"{name: v, constraints: {maxLength: 4}}", "Caf\xc3\xa9s", "max_length",
     "is longer than maxLength 4 (5 characters)"},
    /* enum compares typed values */
    {"{name: v, constraints: {enum: [new, paid]}}", "paid", NULL, "t:paid"},
    {"{name: v, constraints: {enum: [new, paid]}}", "shipped", "enum",
     "is not one of \"new\", \"paid\""},
    {"{name: v, type: integer, constraints: {enum: [1, 2]}}", "02", NULL, "i:2"},
    {"{name: v, type: integer, constraints: {enum: [1, 2]}}", "3", "enum",
     "is not one of \"1\", \"2\""},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *c = &cases[i];
        char *yaml = xasprintf("[%s]", c->field);
        struct profile *p = inline_profile(yaml);
        struct tschema *s = compile_ok(p);
        struct report rep;
        struct validate_result res;
        struct rows rows = {0};
        /* the cell, quoted, doubling any quote */
        char csv[512];
        size_t n = (size_t)snprintf(csv, sizeof csv, "v\n\"");
        for (const char *q = c->cell; *q; q++) {
            if (*q == '"')
                csv[n++] = '"';
            csv[n++] = *q;
        }
        snprintf(csv + n, sizeof csv - n, "\"\n");
        if (!*c->cell) /* an empty cell: unquoted, so the row is not blank */
            snprintf(csv, sizeof csv, "v\n\"\"\n");
        assert_int_equal(run(s, p, csv, &rep, &res, &rows, NULL), 0);
        assert_int_equal(res.records, 1);
        if (!c->code) {
            if (rep.total)
                fail_msg("case %zu %s \"%s\": unexpected: %s", i, c->field, c->cell,
                         rep.v[0].message);
            assert_int_equal(res.valid, 1);
            char want[256];
            snprintf(want, sizeof want, "%s;", c->out);
            if (strcmp(rows.buf, want))
                fail_msg("case %zu %s \"%s\": got %s, want %s", i, c->field, c->cell, rows.buf,
                         want);
        } else {
            if (rep.total != 1)
                fail_msg("case %zu %s \"%s\": %llu problems, want 1 (%s)", i, c->field, c->cell,
                         (unsigned long long)rep.total, c->out);
            assert_int_equal(res.invalid, 1);
            assert_int_equal(rows.n, 0);
            if (strcmp(rep.v[0].code, c->code) || strcmp(rep.v[0].message, c->out))
                fail_msg("case %zu %s \"%s\": got [%s] %s, want [%s] %s", i, c->field, c->cell,
                         rep.v[0].code, rep.v[0].message, c->code, c->out);
            assert_int_equal(rep.v[0].line, 2);
            assert_int_equal(rep.v[0].column, 1);
            assert_string_equal(rep.v[0].field, "v");
        }
        report_free(&rep);
        tschema_free(s);
        profile_free(p);
        free(yaml);
    }
}

/* ---- multi-row ---------------------------------------------------------- */

static const char *orders = "[{name: id, type: integer, constraints: {unique: true}},"
                            " {name: unit_price, type: number},"
                            " {name: day, type: date}]";

static void test_report_line(void **state)
{
    (void)state;
    struct profile *p = inline_profile(orders);
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    assert_int_equal(
        run(s, p, "id,unit_price,day\n1,9.5,2024-01-02\n2,\"12,50\",2024-01-02\n1,1,2024-01-03\n",
            &rep, &res, &rows, NULL),
        0);
    assert_int_equal(res.records, 3);
    assert_int_equal(res.valid, 1);
    assert_int_equal(res.invalid, 2);
    assert_false(res.structural);
    assert_string_equal(rows.buf, "i:1,r:9.5,t:2024-01-02;");
    char *text = report_text(&rep);
    assert_string_equal(text, "orders.csv line 3, column \"unit_price\" (2): \"12,50\" is not a "
                              "number (decimalChar is \".\")\n"
                              "orders.csv line 4, column \"id\" (1): \"1\" is not unique (first "
                              "seen on line 2)\n");
    free(text);
    const struct columns *cols = tschema_columns(s);
    assert_int_equal(cols->n, 3);
    assert_int_equal(cols->v[0].type, COL_INTEGER);
    assert_int_equal(cols->v[1].type, COL_REAL);
    assert_int_equal(cols->v[2].type, COL_TEXT);
    report_free(&rep);
    tschema_free(s);
    profile_free(p);
}

static void test_structure_and_resync(void **state)
{
    (void)state;
    struct profile *p = inline_profile("[{name: a, type: integer}, {name: b}]");
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    assert_int_equal(run(s, p, "a,b\n1,x\n2\n\n3,y,z\n4,ab\"c\n5,\"ok\"\n6,\"never closed\n7,w\n",
                         &rep, &res, &rows, NULL),
                     0);
    /* 1,x | 2 ragged | blank | 3,y,z ragged | stray | 5 ok | unclosed | 7,w (resync) */
    assert_int_equal(res.records, 8);
    assert_int_equal(res.valid, 3);
    assert_int_equal(res.invalid, 5);
    assert_string_equal(rows.buf, "i:1,t:x;i:5,t:ok;i:7,t:w;");
    assert_int_equal(rep.total, 5);
    assert_string_equal(rep.v[0].code, "ragged_rows");
    assert_string_equal(rep.v[0].message, "has 1 fields, the header has 2");
    assert_int_equal(rep.v[0].line, 3);
    assert_string_equal(rep.v[1].code, "blank_row");
    assert_int_equal(rep.v[1].line, 4);
    assert_string_equal(rep.v[2].code, "ragged_rows");
    assert_string_equal(rep.v[3].code, "stray_quote");
    assert_string_equal(rep.v[3].field, "b");
    assert_int_equal(rep.v[3].line, 6);
    assert_string_equal(rep.v[4].code, "unclosed_quote");
    assert_int_equal(rep.v[4].line, 8);
    report_free(&rep);

    /* limits: a record over max_line is skipped, the next one is read */
    p->limits.max_line = 16;
    p->limits.max_field = 8;
    memset(&rows, 0, sizeof rows);
    assert_int_equal(
        run(s, p, "a,b\n1,0123456789abcdefgh\n2,123456789\n3,ok\n", &rep, &res, &rows, NULL), 0);
    assert_int_equal(res.valid, 1);
    assert_string_equal(rows.buf, "i:3,t:ok;");
    assert_int_equal(rep.total, 2);
    assert_string_equal(rep.v[0].code, "line_too_long");
    assert_string_equal(rep.v[1].code, "field_too_long");
    assert_string_equal(rep.v[1].field, "b");
    report_free(&rep);
    tschema_free(s);
    profile_free(p);
}

static void test_header_rules(void **state)
{
    (void)state;
    struct profile *p = inline_profile("[{name: id, type: integer}, {name: Name}]");
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};

    /* exact, in order: a wrong name is structural and no row is read */
    assert_int_equal(run(s, p, "id,name\n1,x\n", &rep, &res, &rows, NULL), 0);
    assert_true(res.structural);
    assert_int_equal(res.records, 0);
    assert_int_equal(rep.total, 1);
    assert_string_equal(rep.v[0].code, "header");
    assert_string_equal(rep.v[0].message, "is not the expected column name \"Name\"");
    assert_int_equal(rep.v[0].column, 2);
    report_free(&rep);

    /* case-insensitive accepts it */
    p->csv.header_case_insensitive = true;
    assert_int_equal(run(s, p, "ID,name\n1,x\n", &rep, &res, &rows, NULL), 0);
    assert_false(res.structural);
    assert_int_equal(res.valid, 1);
    report_free(&rep);

    /* any order maps columns by name; rows come in schema order */
    p->csv.header_match = HEADER_ANY_ORDER;
    memset(&rows, 0, sizeof rows);
    assert_int_equal(run(s, p, "name,id\nx,1\n", &rep, &res, &rows, NULL), 0);
    assert_int_equal(rep.total, 0);
    assert_string_equal(rows.buf, "i:1,t:x;");
    report_free(&rep);

    /* missing, unknown and repeated columns */
    assert_int_equal(run(s, p, "id,extra,id\n1,2,3\n", &rep, &res, &rows, NULL), 0);
    assert_true(res.structural);
    assert_int_equal(rep.total, 3);
    assert_string_equal(rep.v[0].message, "is not a field of the schema");
    assert_string_equal(rep.v[1].message, "appears twice in the header");
    assert_string_equal(rep.v[2].message, "is missing from the header");
    assert_string_equal(rep.v[2].field, "Name");
    report_free(&rep);

    /* empty file */
    assert_int_equal(run(s, p, "", &rep, &res, &rows, NULL), 0);
    assert_true(res.structural);
    assert_string_equal(rep.v[0].code, "header");
    report_free(&rep);

    /* no header: columns in schema order */
    p->csv.header = false;
    memset(&rows, 0, sizeof rows);
    assert_int_equal(run(s, p, "1,x\n2,y\n", &rep, &res, &rows, NULL), 0);
    assert_string_equal(rows.buf, "i:1,t:x;i:2,t:y;");
    report_free(&rep);
    tschema_free(s);
    profile_free(p);
}

static void test_split_file(void **state)
{
    (void)state;
    struct profile *p = inline_profile(orders);
    p->csv.delimiter = ';';
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    char *split = xasprintf("%s/invalid.csv", tmpdir);
    assert_int_equal(run(s, p, "id;unit_price;day\n1;9.5;2024-01-02\n7;12,50;2024-01-02\n8;1\n",
                         &rep, &res, &rows, split),
                     0);
    assert_int_equal(res.invalid, 2);
    /* the path written is returned with its record count */
    assert_non_null(res.invalid_path);
    assert_string_equal(res.invalid_path, split);
    assert_int_equal(res.invalid_written, 2);
    free(res.invalid_path);
    char *got = slurp(split);
    assert_string_equal(
        got, "id;unit_price;day;_wharf_line;_wharf_errors\r\n"
             "7;12,50;2024-01-02;3;\"column \"\"unit_price\"\" (2): \"\"12,50\"\" is not "
             "a number (decimalChar is \"\".\"\")\"\r\n"
             "8;1;;4;has 2 fields, the header has 3\r\n");
    free(got);
    report_free(&rep);

    /* no invalid record: no file, no path (and the earlier one is gone) */
    assert_int_equal(run(s, p, "id;unit_price;day\n1;9.5;2024-01-02\n", &rep, &res, &rows, split),
                     0);
    assert_int_equal(res.invalid, 0);
    assert_null(res.invalid_path);
    assert_int_equal(res.invalid_written, 0);
    assert_int_equal(access(split, F_OK), -1);
    report_free(&rep);
    free(split);
    tschema_free(s);
    profile_free(p);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct profile *p = inline_profile("[{name: a, type: integer}]");
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {.stop_after = 2};
    char *split = xasprintf("%s/never.csv", tmpdir);
    assert_int_equal(run(s, p, "a\n1\n2\n3\n", &rep, &res, &rows, split), -1);
    assert_int_equal(rows.seen, 2);
    /* the split file is not left behind */
    assert_int_equal(access(split, F_OK), -1);
    free(split);
    report_free(&rep);
    tschema_free(s);
    profile_free(p);
}

/* ---- schema files ------------------------------------------------------- */

static struct tschema *compile_file(const char *name, const char *text, struct diags *d)
{
    struct wharf_config cfg;
    struct profile *p = xcalloc(1, sizeof *p);
    char *path;
    config_defaults(&cfg, tmpdir);
    free(cfg.schemas_dir);
    cfg.schemas_dir = xstrdup(tmpdir);
    profile_defaults(p);
    p->name = xstrdup("t");
    p->file = xstrdup("profiles/t.yaml");
    p->csv.schema = xstrdup(name);
    path = xasprintf("%s/%s", tmpdir, name);
    if (text)
        write_file(path, text);
    struct tschema *s = tschema_compile(&cfg, p, d);
    free(path);
    profile_free(p);
    config_free(&cfg);
    return s;
}

static bool has_diag(const struct diags *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msg[i], needle))
            return true;
    return false;
}

/* ---- unique and primary keys past the memory budget -------------------- */

/* Is there a problem at line with this code and message (and value, when
 * value is not NULL; "" means none)?  Late repeats come in key order, so
 * the tests look problems up rather than expect an order. */
static bool has_problem(const struct report *rep, uint64_t line, const char *code,
                        const char *message, const char *value)
{
    for (size_t i = 0; i < rep->n; i++) {
        const struct problem *q = &rep->v[i];
        if (q->line != line || strcmp(q->code, code) || strcmp(q->message, message))
            continue;
        if (value && strcmp(q->value ? q->value : "", value))
            continue;
        return true;
    }
    return false;
}

static void expect(const struct report *rep, uint64_t line, const char *code, const char *message,
                   const char *value)
{
    if (!has_problem(rep, line, code, message, value)) {
        char *text = report_text(rep);
        fail_msg("no %s problem at line %llu \"%s\" in:\n%s", code, (unsigned long long)line,
                 message, text);
    }
}

/* With a tiny budget (WHARF_TEST_KEYSET_BUDGET) each set holds 11 keys
 * before it spills, so most repeats are only found by the final merge:
 * they must still be reported at their line with the line of the first
 * occurrence, counted invalid, and mark the part as unusable, because the
 * row already went to the callback as valid. */
static void test_spill(void **state)
{
    (void)state;
    struct profile *p = inline_profile("[{name: id, type: integer, constraints: {unique: true}},"
                                       " {name: code, constraints: {unique: true}}]");
    struct tschema *s = compile_ok(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    char *split = xasprintf("%s/invalid.csv", tmpdir);
    char csv[4096];
    size_t o = (size_t)snprintf(csv, sizeof csv, "id,code\n");
    /* id i on line i + 1, but 1000 on line 2: ids that only grow would be
     * kept as ranges, which never spill */
    for (int i = 1; i <= 60; i++)
        o += (size_t)snprintf(csv + o, sizeof csv - o, "%d,c%d\n", i == 1 ? 1000 : i, i);
    snprintf(csv + o, sizeof csv - o,
             "3,x1\n"   /* 62: id 3 of line 4, spilled long ago: found late */
             "70,c5\n"  /* 63: code c5 of line 6: late */
             "3,c5\n"   /* 64: both seen in this window (62, 63): found at once */
             "abc,x2\n" /* 65: not an integer */
             "7,c9\n"); /* 66: late in both sets; one invalid record */

    setenv("WHARF_TEST_KEYSET_BUDGET", "256", 1);
    int rc = run(s, p, csv, &rep, &res, &rows, split);
    unsetenv("WHARF_TEST_KEYSET_BUDGET");
    assert_int_equal(rc, 0);

    assert_int_equal(res.records, 65);
    assert_int_equal(res.invalid, 5);
    assert_int_equal(res.valid, 60);
    assert_true(res.late_duplicates);
    assert_true(res.structural);
    assert_int_equal(rows.seen, 63); /* 62, 63 and 66 went out as valid */
    assert_int_equal(rep.total, 7);
    expect(&rep, 64, "unique", "is not unique (first seen on line 62)", "3");
    expect(&rep, 64, "unique", "is not unique (first seen on line 63)", "c5");
    expect(&rep, 65, "type", "is not an integer", "abc");
    /* late: an integer key still shows its value, a hashed one cannot */
    expect(&rep, 62, "unique", "is not unique (first seen on line 4)", "3");
    expect(&rep, 63, "unique", "is not unique (first seen on line 6)", "");
    expect(&rep, 66, "unique", "is not unique (first seen on line 8)", "7");
    expect(&rep, 66, "unique", "is not unique (first seen on line 10)", "");
    for (size_t i = 0; i < rep.n; i++) {
        const struct problem *q = &rep.v[i];
        bool id = strstr(q->message, "line 4)") || strstr(q->message, "line 8)");
        if (q->line == 62 || q->line == 66)
            assert_string_equal(q->field, id ? "id" : "code");
    }
    /* the split file only has the records found invalid in time */
    char *got = slurp(split);
    assert_non_null(strstr(got, "\r\n3,c5,64,"));
    assert_non_null(strstr(got, ",65,"));
    assert_null(strstr(got, ",62,"));
    free(got);
    assert_int_equal(res.invalid_written, 2);
    free(res.invalid_path);
    report_free(&rep);

    /* the same file in memory: every repeat found at once, nothing late */
    struct rows rows2 = {0};
    assert_int_equal(run(s, p, csv, &rep, &res, &rows2, NULL), 0);
    assert_false(res.late_duplicates);
    assert_false(res.structural);
    assert_int_equal(res.invalid, 5);
    assert_int_equal(rows2.seen, 60);
    expect(&rep, 62, "unique", "is not unique (first seen on line 4)", "3");
    expect(&rep, 63, "unique", "is not unique (first seen on line 6)", "c5");
    report_free(&rep);
    free(split);
    tschema_free(s);
    profile_free(p);
}

/* A primary key that is one unique field shares that field's set: each
 * repeat is reported once, as not unique, in memory and after a spill.  A
 * composite key spills too, and keeps telling (1, "x, y") from
 * (1, "x"), ("y") style look-alikes apart. */
static void test_primary_key_sets(void **state)
{
    (void)state;
    struct diags d = {0};
    struct tschema *s = compile_file("pk.json",
                                     "{\"fields\": [{\"name\": \"id\", \"type\": \"integer\","
                                     " \"constraints\": {\"unique\": true}}, {\"name\": \"v\"}],"
                                     " \"primaryKey\": \"id\"}\n",
                                     &d);
    assert_non_null(s);
    struct profile *p = xcalloc(1, sizeof *p);
    profile_defaults(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    char csv[2048];
    size_t o = (size_t)snprintf(csv, sizeof csv, "id,v\n");
    for (int i = 1; i <= 30; i++) /* 1000 first: not only growing, so the set spills */
        o += (size_t)snprintf(csv + o, sizeof csv - o, "%d,a\n", i == 1 ? 1000 : i);
    snprintf(csv + o, sizeof csv - o, "2,b\n30,c\n"); /* lines 32 (late) and 33 (at once) */

    for (int spill = 0; spill < 2; spill++) {
        if (spill)
            setenv("WHARF_TEST_KEYSET_BUDGET", "1", 1);
        memset(&rows, 0, sizeof rows);
        assert_int_equal(run(s, p, csv, &rep, &res, &rows, NULL), 0);
        unsetenv("WHARF_TEST_KEYSET_BUDGET");
        assert_int_equal(rep.total, 2);
        expect(&rep, 32, "unique", "is not unique (first seen on line 3)", "2");
        expect(&rep, 33, "unique", "is not unique (first seen on line 31)", "30");
        assert_int_equal(res.invalid, 2);
        assert_int_equal(res.late_duplicates, spill == 1);
        report_free(&rep);
    }
    tschema_free(s);

    s = compile_file("pk2.json",
                     "{\"fields\": [{\"name\": \"a\", \"type\": \"integer\"}, {\"name\": \"b\"}],"
                     " \"primaryKey\": [\"a\", \"b\"]}\n",
                     &d);
    assert_non_null(s);
    o = (size_t)snprintf(csv, sizeof csv, "a,b\n");
    for (int i = 1; i <= 30; i++)
        o += (size_t)snprintf(csv + o, sizeof csv - o, "%d,x\n", i);
    snprintf(csv + o, sizeof csv - o,
             "5,\"x, y\"\n" /* 32: new: the old ", "-joined text key would not care */
             "05,x\n"       /* 33: (5, x) of line 6, late */
             "5,\"x, y\"\n" /* 34: of line 32, at once */);
    for (int spill = 0; spill < 2; spill++) {
        if (spill)
            setenv("WHARF_TEST_KEYSET_BUDGET", "1", 1);
        memset(&rows, 0, sizeof rows);
        assert_int_equal(run(s, p, csv, &rep, &res, &rows, NULL), 0);
        unsetenv("WHARF_TEST_KEYSET_BUDGET");
        assert_int_equal(rep.total, 2);
        expect(&rep, 33, "primary_key", "repeats the primary key (a, b) of line 6",
               spill ? "" : "5, x");
        expect(&rep, 34, "primary_key", "repeats the primary key (a, b) of line 32", "5, x, y");
        assert_int_equal(res.valid, 31);
        assert_int_equal(res.late_duplicates, spill == 1);
        report_free(&rep);
    }
    diag_free(&d);
    profile_free(p);
    tschema_free(s);
}

static void test_schema_file_json(void **state)
{
    (void)state;
    struct diags d = {0};
    struct tschema *s =
        compile_file("o.schema.json",
                     "{\"fields\": [{\"name\": \"a\", \"type\": \"integer\"},\n"
                     "  {\"name\": \"b\"}],\n"
                     " \"missingValues\": [\"\", \"NA\"], \"primaryKey\": [\"a\", \"b\"]}\n",
                     &d);
    assert_non_null(s);
    assert_int_equal(d.n, 0);
    struct profile *p = xcalloc(1, sizeof *p);
    profile_defaults(p);
    struct report rep;
    struct validate_result res;
    struct rows rows = {0};
    assert_int_equal(run(s, p, "a,b\n1,x\nNA,y\n1,x\n01,x\n2,NA\n", &rep, &res, &rows, NULL), 0);
    /* NA is missing; primary key fields are required; (1, x) repeats, 01 too */
    assert_int_equal(rep.total, 4);
    assert_string_equal(rep.v[0].code, "required");
    assert_int_equal(rep.v[0].line, 3);
    assert_string_equal(rep.v[1].code, "primary_key");
    assert_string_equal(rep.v[1].message, "repeats the primary key (a, b) of line 2");
    assert_string_equal(rep.v[1].value, "1, x");
    assert_string_equal(rep.v[2].code, "primary_key");
    assert_int_equal(rep.v[2].line, 5);
    assert_string_equal(rep.v[3].code, "required");
    assert_string_equal(rows.buf, "i:1,t:x;");
    report_free(&rep);
    profile_free(p);
    tschema_free(s);
}

static void test_schema_file_errors(void **state)
{
    (void)state;
    struct diags d = {0};
    char want[512];
    /* YAML this time; every problem at its line and column */
    assert_null(
        compile_file("bad.yaml",
                     "fields:\n"
                     "  - name: a\n"
                     "    typo: integer\n"
                     "  - name: b\n"
                     "    type: money\n"
                     "  - name: c\n"
                     "    constraints: {pattern: '(', size: 3}\n"
                     "  - name: A\n"
                     "  - name: ''\n"
                     "  - name: a234567890123456789012345678901234567890123456789012345678901234\n"
                     "  - name: d\n"
                     "    type: date\n"
                     "    format: '%d.%q'\n"
                     "  - name: e\n"
                     "    type: integer\n"
                     "    constraints: {minimum: x, minLength: 2}\n"
                     "primaryKey: [zz]\n"
                     "extra: 1\n",
                     &d));
    snprintf(want, sizeof want,
             "%s/bad.yaml:3:5: fields[0]: unknown property \"typo\" (valid: name, "
             "type, format,",
             tmpdir);
    if (!has_diag(&d, want))
        fail_msg("no diag like %s (first: %s)", want, d.n ? d.msg[0] : "none");
    assert_true(has_diag(&d, ":5:11: fields[1]: unknown type \"money\" (valid: string, integer"));
    assert_true(has_diag(&d,
                         "fields[2].constraints.pattern: \"(\" is not a valid XML Schema regular "
                         "expression"));
    assert_true(has_diag(&d, "fields[2].constraints: unknown property \"size\""));
    assert_true(has_diag(&d, "field name \"A\" repeats field 1 (\"a\")"));
    assert_true(has_diag(&d, "field name is empty"));
    assert_true(has_diag(&d, "is longer than 63 bytes"));
    assert_true(has_diag(&d, "fields[6].format: \"%d.%q\" is not a date/time pattern"));
    assert_true(has_diag(&d, "fields[7].constraints.minimum: \"x\" is not an integer"));
    assert_true(
        has_diag(&d, "minLength applies to strings, objects and arrays, not to type integer"));
    assert_true(has_diag(&d, "primaryKey: \"zz\" is not a field of this schema"));
    assert_true(has_diag(&d, "unknown property \"extra\" (valid: fields, missingValues"));
    diag_free(&d);

    /* a missing file and a path outside the schemas directory */
    assert_null(compile_file("absent.json", NULL, &d));
    assert_true(has_diag(&d, "absent.json"));
    diag_free(&d);
    assert_null(compile_file("../escape.json", NULL, &d));
    assert_true(has_diag(&d, "csv.schema: \"../escape.json\" must be a relative path"));
    diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_report_line),
        cmocka_unit_test(test_structure_and_resync),
        cmocka_unit_test(test_header_rules),
        cmocka_unit_test(test_split_file),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_schema_file_json),
        cmocka_unit_test(test_schema_file_errors),
        cmocka_unit_test(test_spill),
        cmocka_unit_test(test_primary_key_sets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
