/*
 * pgcopy (COPY BINARY fields) against a real PostgreSQL server
 * (tests/lib/pg.sh): every edge value is loaded twice, once as the text
 * COPY wharf sends otherwise and once through the binary encoder, and the
 * two rows must be the same value to the byte (the type's send format:
 * numeric's digits, weight, sign and scale; timestamptz's microseconds).
 * A text the encoder refuses must be one the server refuses too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "load/pgcopy.h"
#include "util/xmalloc.h"

static char pg_dir[512], script[1024];
static PGconn *conn;

static void env_get(const char *text, const char *key, char *out, size_t size)
{
    char k[64];
    const char *p;
    snprintf(k, sizeof k, "\nexport %s=", key);
    p = strstr(text, k);
    assert_non_null(p);
    p += strlen(k);
    if (*p == '"')
        p++;
    snprintf(out, size, "%.*s", (int)strcspn(p, "\"\n"), p);
}

static void exec_ok(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
}

static int group_setup(void **state)
{
    char path[600], text[4096] = "\n", dsn[512], passfile[512];
    FILE *f;
    size_t n;
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_pgcopy: needs root (the PostgreSQL fixture)\n");
        return -1;
    }
    snprintf(script, sizeof script, "%s/tests/lib/pg.sh", WHARF_SOURCE_DIR);
    char *d = capture("bash %s mkdir", script);
    snprintf(pg_dir, sizeof pg_dir, "%s", d);
    free(d);
    if (!pg_dir[0] || run("bash %s setup %s >&2", script, pg_dir) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/pg.env", pg_dir);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(text + 1, 1, sizeof text - 2, f);
    text[n + 1] = 0;
    fclose(f);
    env_get(text, "PG_DSN", dsn, sizeof dsn);
    env_get(text, "PG_PASSFILE", passfile, sizeof passfile);
    setenv("PGPASSFILE", passfile, 1);
    conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "test_pgcopy: %s", PQerrorMessage(conn));
        return -1;
    }
    PQsetClientEncoding(conn, "UTF8");
    exec_ok("SET TimeZone = 'UTC'");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (conn)
        PQfinish(conn);
    if (pg_dir[0] && run("bash %s cleanup %s", script, pg_dir) != 0)
        fprintf(stderr, "test_pgcopy: cleanup of %s failed\n", pg_dir);
    return 0;
}

/* COPY text escaping, as the postgres target does it. */
static void text_field(struct pgcopy_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : NULL;
        pgcopy_add(b, esc ? esc : s, esc ? 2 : 1);
    }
}

static void copy_in(const char *table, bool binary, const struct pgcopy_buf *b)
{
    char sql[256];
    PGresult *r;
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN%s", table, binary ? " (FORMAT binary)" : "");
    r = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    if (binary)
        assert_int_equal(PQputCopyData(conn, pgcopy_header, PGCOPY_HEADER_LEN), 1);
    if (b->len)
        assert_int_equal(PQputCopyData(conn, b->p, (int)b->len), 1);
    if (binary)
        assert_int_equal(PQputCopyData(conn, pgcopy_trailer, 2), 1);
    assert_int_equal(PQputCopyEnd(conn, NULL), 1);
    while ((r = PQgetResult(conn))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("COPY %s: %s", table, PQerrorMessage(conn));
        PQclear(r);
    }
}

/*
 * A two-column table (k bigint, v TYPE), filled with texts[i] through text
 * COPY and with enc(i) through binary COPY; every row must be the same
 * value by the type's send function.
 */
typedef void (*encode_fn)(struct pgcopy_buf *b, size_t i);

static void compare(const char *type, const char *sendfn, size_t n, const char *const *texts,
                    encode_fn enc)
{
    struct pgcopy_buf t = {0}, bin = {0};
    char sql[512], k[24];
    exec_ok("DROP TABLE IF EXISTS ct, cb");
    snprintf(sql, sizeof sql, "CREATE TABLE ct (k bigint, v %s)", type);
    exec_ok(sql);
    exec_ok("CREATE TABLE cb (LIKE ct)");
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%zu\t", i);
        pgcopy_add(&t, k, strlen(k));
        if (texts[i])
            text_field(&t, texts[i]);
        else
            pgcopy_add(&t, "\\N", 2);
        pgcopy_add(&t, "\n", 1);
        pgcopy_row(&bin, 2);
        pgcopy_int8(&bin, (int64_t)i);
        enc(&bin, i);
    }
    copy_in("ct", false, &t);
    copy_in("cb", true, &bin);
    snprintf(sql, sizeof sql,
             "SELECT ct.k, ct.v::text, cb.v::text FROM ct FULL JOIN cb ON cb.k = ct.k"
             " WHERE %s(ct.v) IS DISTINCT FROM %s(cb.v) OR ct.k IS NULL OR cb.k IS NULL"
             " ORDER BY 1",
             sendfn, sendfn);
    PGresult *r = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr, "%s row %s: text %s, binary %s (input %s)\n", type, PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                texts[atoi(PQgetvalue(r, i, 0))] ? texts[atoi(PQgetvalue(r, i, 0))] : "NULL");
    assert_int_equal(PQntuples(r), 0);
    PQclear(r);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM cb");
    r = PQexec(conn, sql);
    assert_int_equal(atoi(PQgetvalue(r, 0, 0)), (int)n);
    PQclear(r);
    free(t.p);
    free(bin.p);
}

/* compare() of an encoder from text: each texts[i] (NULL: a NULL) through fn. */
typedef int (*text_enc_fn)(struct pgcopy_buf *b, const char *s, size_t n);
static text_enc_fn cur_fn;
static const char *const *cur_texts;

static void enc_from_text(struct pgcopy_buf *b, size_t i)
{
    if (!cur_texts[i])
        pgcopy_null(b);
    else if (cur_fn(b, cur_texts[i], strlen(cur_texts[i])) != 0)
        fail_msg("\"%s\" not encoded", cur_texts[i]);
}

static void compare_text(const char *type, const char *sendfn, size_t n, const char *const *texts,
                         text_enc_fn fn)
{
    cur_fn = fn;
    cur_texts = texts;
    compare(type, sendfn, n, texts, enc_from_text);
}

static int text_enc(struct pgcopy_buf *b, const char *s, size_t n)
{
    pgcopy_text(b, s, n);
    return 0;
}

/* The server's own verdict on a text of a type: 1 it takes it, 0 not. */
static int server_takes(const char *text, const char *type)
{
    char sql[128];
    const char *params[] = {text};
    snprintf(sql, sizeof sql, "SELECT $1::%s", type);
    PGresult *r = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

/* ---- numeric from text ---------------------------------------------- */

static const char *num_texts[] = {"0",
                                  "-0",
                                  "0.000",
                                  "-0.000",
                                  "00012",
                                  "1",
                                  "-1",
                                  "9999",
                                  "10000",
                                  "-10000",
                                  "99990000",
                                  "12345678.9",
                                  "0.0001",
                                  "0.00001",
                                  "-0.00012340",
                                  "1e3",
                                  "1.5e-5",
                                  "1E+20",
                                  "2.5e-4",
                                  "123456789012345678901234567890",
                                  "-99999999999999999999999999999999999999.99",
                                  "18446744073709551615",
                                  "-9223372036854775809",
                                  "NaN",
                                  "nan",
                                  "Infinity",
                                  "-Infinity",
                                  "+Infinity",
                                  "  42  ",
                                  "+7.50",
                                  ".5",
                                  "5.",
                                  "-.001",
                                  "1e-1000",
                                  "7e1000",
                                  "1e1001",
                                  "1e-16383",
                                  "3e131000",
                                  "64937.97",
                                  "100000000.00000001",
                                  NULL};
#define N_NUM (sizeof num_texts / sizeof *num_texts)

/* numeric(12,3): the server rounds both the same way */
static const char *typmod_texts[] = {
    "0",       "-0.0005", "0.0005", "1.2345", "-1.2355", "123456789.9994",
    "99.9995", "1e-5",    "5e-4",   NULL};
#define N_TYPMOD (sizeof typmod_texts / sizeof *typmod_texts)

static void numeric_text(void **state)
{
    (void)state;
    compare_text("numeric", "numeric_send", N_NUM, num_texts, pgcopy_numeric_text);
    compare_text("numeric(12,3)", "numeric_send", N_TYPMOD, typmod_texts, pgcopy_numeric_text);
}

/* Texts the encoder refuses: the server refuses them too. */
static void numeric_refused(void **state)
{
    static const char *bad[] = {"",         " ",        "abc",          "1e",      "--1", "1.2.3",
                                "+",        ".",        "1e+",          "e5",      "1 2", "0x10",
                                "1e140000", "1e-20000", "1e9999999999", "Infinit", "NaNa"};
    struct pgcopy_buf b = {0};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b.len = 0;
        if (pgcopy_numeric_text(&b, bad[i], strlen(bad[i])) != -1)
            fail_msg("numeric \"%s\" was encoded", bad[i]);
        assert_int_equal(b.len, 0);
        if (server_takes(bad[i], "numeric"))
            fail_msg("the server takes numeric \"%s\"", bad[i]);
    }
    free(b.p);
}

/* ---- numeric from int64 and double ----------------------------------- */

static const int64_t ints[] = {0,     1,         -1,        9999,      10000,    -10000,
                               12345, 100000000, INT64_MAX, INT64_MIN, 99990000, -7};
#define N_INT (sizeof ints / sizeof *ints)
static char *int_texts[N_INT];

static void enc_num_int(struct pgcopy_buf *b, size_t i)
{
    pgcopy_numeric_int(b, ints[i]);
}

static void numeric_int(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_INT; i++)
        int_texts[i] = xasprintf("%lld", (long long)ints[i]);
    compare("numeric", "numeric_send", N_INT, (const char *const *)int_texts, enc_num_int);
    for (size_t i = 0; i < N_INT; i++)
        free(int_texts[i]);
}

#define N_DBL 4096
static double dbls[N_DBL];
static char *dbl_texts[N_DBL];
static size_t n_dbl;

static void enc_num_real(struct pgcopy_buf *b, size_t i)
{
    pgcopy_numeric_real(b, dbls[i]);
}

static void enc_float8(struct pgcopy_buf *b, size_t i)
{
    pgcopy_float8(b, dbls[i]);
}

/* Edge doubles, prices with two decimals, and random bit patterns of
 * every magnitude; each as the text the text COPY sends. */
static void make_doubles(bool finite_only)
{
    static const double edge[] = {0.1,
                                  64937.97,
                                  1e-7,
                                  1.5e300,
                                  123456789012345.6,
                                  0.30000000000000004,
                                  1.0 / 3,
                                  -2.5,
                                  1e15,
                                  1e-15,
                                  999999999999999,
                                  5e-324,
                                  DBL_MAX,
                                  -0.0,
                                  0.0,
                                  100,
                                  1e22,
                                  123456789012345,
                                  1e-5,
                                  2.5e-5,
                                  0.000123,
                                  4.35,
                                  1e16,
                                  9007199254740993.0,
                                  0.5e-15};
    char txt[48];
    uint64_t x = 88172645463325252ull;
    n_dbl = 0;
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        dbls[n_dbl++] = edge[i];
    if (!finite_only) {
        dbls[n_dbl++] = NAN;
        dbls[n_dbl++] = INFINITY;
        dbls[n_dbl++] = -INFINITY;
    }
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        dbls[n_dbl++] = (double)(int64_t)(x % 100000000) / 100 * (x & 1 ? -1 : 1);
    }
    while (n_dbl < N_DBL) {
        double d;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(&d, &x, sizeof d);
        if (isfinite(d))
            dbls[n_dbl++] = d;
    }
    for (size_t i = 0; i < n_dbl; i++) {
        int n = pgcopy_real_text(dbls[i], txt, sizeof txt);
        dbl_texts[i] = xasprintf("%.*s", n, txt);
    }
}

static void free_doubles(void)
{
    for (size_t i = 0; i < n_dbl; i++)
        free(dbl_texts[i]);
}

static void numeric_real(void **state)
{
    (void)state;
    make_doubles(false);
    compare("numeric", "numeric_send", n_dbl, (const char *const *)dbl_texts, enc_num_real);
    compare("double precision", "float8send", n_dbl, (const char *const *)dbl_texts, enc_float8);
    free_doubles();
}

/* ---- date, timestamptz ---------------------------------------------- */

static const char *dates[] = {"2000-01-01", "1999-12-31",  "0001-01-01", "9999-12-31",
                              "2024-02-29", "1970-01-01",  "2000-03-01", "2100-03-01",
                              "1600-02-29", "10000-01-01", "2026-10-28", NULL};
#define N_DATE (sizeof dates / sizeof *dates)

static const char *stamps[] = {"2000-01-01T00:00:00",          "2000-01-01T00:00:00Z",
                               "1999-12-31T23:59:59.999999Z",  "0001-01-01T00:00:00Z",
                               "9999-12-31T23:59:59.999999Z",  "10000-01-01T01:00:00Z",
                               "2026-01-01T12:34:56.9999999Z", "2026-01-01T12:34:56.1234565",
                               "2026-01-01T12:34:56.1234575",  "2026-01-01T12:34:56.0000005",
                               "1969-07-20T20:17:40.5Z",       "2024-02-29T24:00:00",
                               "2016-12-31T23:59:60Z",         "1900-01-01T00:00:00.000001",
                               "2026-12-03T06:01:26.123Z",     NULL};
#define N_TS (sizeof stamps / sizeof *stamps)

static void date_and_time(void **state)
{
    static const char *bad_dates[] = {"0000-01-01", "2023-02-29", "2023-13-01", "2023-00-10",
                                      "2023-04-31", "1900-02-29", "20230101"};
    static const char *bad_ts[] = {"0000-06-01T00:00:00Z", "2023-02-29T00:00:00",
                                   "2023-01-01T24:00:01",  "2023-01-01T12:60:00",
                                   "2023-01-01T12:00:61",  "2023-01-01T12:00:00+02:00"};
    struct pgcopy_buf b = {0};
    (void)state;
    compare_text("date", "date_send", N_DATE, dates, pgcopy_date);
    compare_text("timestamptz", "timestamptz_send", N_TS, stamps, pgcopy_timestamptz);
    for (size_t i = 0; i < sizeof bad_dates / sizeof *bad_dates; i++) {
        if (pgcopy_date(&b, bad_dates[i], strlen(bad_dates[i])) != -1)
            fail_msg("date \"%s\" was encoded", bad_dates[i]);
        if (i < 6 && server_takes(bad_dates[i], "date"))
            fail_msg("the server takes date \"%s\"", bad_dates[i]);
    }
    for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++) {
        if (pgcopy_timestamptz(&b, bad_ts[i], strlen(bad_ts[i])) != -1)
            fail_msg("timestamptz \"%s\" was encoded", bad_ts[i]);
        if (i < 5 && server_takes(bad_ts[i], "timestamptz"))
            fail_msg("the server takes timestamptz \"%s\"", bad_ts[i]);
    }
    assert_int_equal(b.len, 0);
    free(b.p);
}

/* ---- int8, bool, text ------------------------------------------------ */

static void enc_int8(struct pgcopy_buf *b, size_t i)
{
    pgcopy_int8(b, ints[i]);
}

static const char *bools[] = {"t", "f", NULL};

static void enc_bool(struct pgcopy_buf *b, size_t i)
{
    if (i == 2)
        pgcopy_null(b);
    else
        pgcopy_bool(b, i == 0);
}

static const char *texts[] = {"",
                              "plain",
                              "tab\there",
                              "new\nline",
                              "back\\slash",
                              "Müller Feinkost GmbH & Co. KG München",
                              "\xe2\x82\xac 5",
                              NULL};
#define N_TEXT (sizeof texts / sizeof *texts)

static void int_bool_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_INT; i++)
        int_texts[i] = xasprintf("%lld", (long long)ints[i]);
    compare("bigint", "int8send", N_INT, (const char *const *)int_texts, enc_int8);
    for (size_t i = 0; i < N_INT; i++)
        free(int_texts[i]);
    compare("boolean", "boolsend", 3, bools, enc_bool);
    compare_text("text", "textsend", N_TEXT, texts, text_enc);
    compare_text("varchar(40)", "varcharsend", N_TEXT, texts, text_enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numeric_text),  cmocka_unit_test(numeric_refused),
        cmocka_unit_test(numeric_int),   cmocka_unit_test(numeric_real),
        cmocka_unit_test(date_and_time), cmocka_unit_test(int_bool_text),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
