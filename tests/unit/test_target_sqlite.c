/*
 * test_target_sqlite: the SQLite target against real database files in a
 * temp dir: append/replace/upsert loads and wharf_loads, rollback, refused
 * identifiers, an existing table that does not fit, integers beyond 64
 * bits (xs:integer) kept exact, and a database locked
 * by another connection (transient error; waits the 10 s busy timeout).
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
#include <sqlite3.h>

#include "config/config.h"
#include "load/target.h"
#include "util/durable.h"
#include "util/xmalloc.h"

struct fix {
    char dir[64];
    char *db;
    struct profile *p; /* profile_free frees the struct itself */
    struct wharf_config cfg;
    struct column colv[3];
    struct columns cols;
};

static int setup(void **state)
{
    struct fix *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wharf-tsq-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->db = xasprintf("%s/warehouse.db", f->dir);
    f->p = xmalloc(sizeof *f->p);
    profile_defaults(f->p);
    f->p->name = xstrdup("acme-orders");
    f->p->target.path = xstrdup(f->db);
    f->p->target.table = xstrdup("orders");
    f->colv[0] = (struct column){.name = "id", .type = COL_INTEGER};
    f->colv[1] = (struct column){.name = "customer", .type = COL_TEXT};
    f->colv[2] = (struct column){.name = "price", .type = COL_REAL};
    f->cols = (struct columns){.v = f->colv, .n = 3};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    struct werr e;
    rmtree(f->dir, &e);
    profile_free(f->p);
    free(f->db);
    free(f);
    return 0;
}

static void set_table(struct fix *f, const char *table)
{
    free(f->p->target.table);
    f->p->target.table = xstrdup(table);
}

/* A second, independent connection for looking at (or locking) the file. */
static sqlite3 *peek_open(struct fix *f)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    return db;
}

static void peek_exec(struct fix *f, const char *sql)
{
    sqlite3 *db = peek_open(f);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* First column of the first row as text ("" for none, "NULL" for NULL). */
static char *peek(struct fix *f, const char *sql)
{
    sqlite3 *db = peek_open(f);
    sqlite3_stmt *st;
    char *out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        out = xstrdup(sqlite3_column_type(st, 0) == SQLITE_NULL
                          ? "NULL"
                          : (const char *)sqlite3_column_text(st, 0));
    else
        out = xstrdup("");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void assert_peek(struct fix *f, const char *sql, const char *want)
{
    char *got = peek(f, sql);
    if (strcmp(got, want))
        fail_msg("%s: got \"%s\", want \"%s\"", sql, got, want);
    free(got);
}

static void insert3(struct target *t, int64_t id, const char *customer, double price)
{
    struct value v[3] = {
        {.kind = VAL_INT, .i = id},
        {.kind = customer ? VAL_TEXT : VAL_NULL,
         .s = customer,
         .len = customer ? strlen(customer) : 0},
        {.kind = VAL_REAL, .d = price},
    };
    struct row r = {.v = v, .n = 3, .line = (uint64_t)id + 1};
    struct werr e = {0};
    if (t->ops->insert(t, &r, &e) < 0)
        fail_msg("insert: %s", e.msg);
}

static void tgt_open(struct fix *f, struct target *t)
{
    struct werr e = {0};
    if (target_open(t, &f->cfg, f->p, &e) < 0)
        fail_msg("open: %s", e.msg);
}

static void tgt_begin(struct fix *f, struct target *t, const char *intake)
{
    struct werr e = {0};
    if (t->ops->begin(t, intake, &f->cols, &e) < 0)
        fail_msg("begin: %s", e.msg);
}

static void tgt_commit(struct target *t, const char *intake, uint64_t rows)
{
    struct werr e = {0};
    if (t->ops->commit(t, intake, "ab12", rows, &e) < 0)
        fail_msg("commit: %s", e.msg);
}

/* One load of rows (id, customer, price) for ids [from, to). */
static void load(struct fix *f, const char *intake, int from, int to, const char *who)
{
    struct target t;
    tgt_open(f, &t);
    tgt_begin(f, &t, intake);
    for (int i = from; i < to; i++)
        insert3(&t, i, who, i * 1.5);
    tgt_commit(&t, intake, (uint64_t)(to - from));
    target_close(&t);
}

static void test_append_commit_loaded(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    uint64_t rows = 0;
    char *d;

    tgt_open(f, &t);
    d = t.ops->describe(&t);
    assert_true(strncmp(d, "sqlite:", 7) == 0);
    assert_non_null(strstr(d, "warehouse.db#orders"));
    free(d);
    assert_int_equal(t.ops->loaded(&t, "01JINTAKEA", &rows, &e), 0);
    tgt_begin(f, &t, "01JINTAKEA");
    insert3(&t, 1, "Ann \"quoted\"; DROP TABLE orders; --", 10.5);
    insert3(&t, 2, NULL, 2.25);
    insert3(&t, 3, "Bo", -1);
    tgt_commit(&t, "01JINTAKEA", 3);
    assert_int_equal(t.ops->loaded(&t, "01JINTAKEA", &rows, &e), 1);
    assert_int_equal(rows, 3);
    assert_int_equal(t.ops->loaded(&t, "01JOTHER", &rows, &e), 0);
    target_close(&t);

    /* a fresh connection sees it too: that is what a restart relies on */
    tgt_open(f, &t);
    rows = 0;
    assert_int_equal(t.ops->loaded(&t, "01JINTAKEA", &rows, &e), 1);
    assert_int_equal(rows, 3);
    target_close(&t);

    assert_peek(f, "SELECT count(*) FROM orders WHERE _wharf_intake = '01JINTAKEA'", "3");
    assert_peek(f, "SELECT customer FROM orders WHERE id = 1",
                "Ann \"quoted\"; DROP TABLE orders; --");
    assert_peek(f, "SELECT customer FROM orders WHERE id = 2", "NULL");
    assert_peek(f, "SELECT typeof(id) || typeof(price) FROM orders WHERE id = 3", "integerreal");
    assert_peek(f, "SELECT price FROM orders WHERE id = 2", "2.25");
    assert_peek(f, "SELECT profile || '|' || tbl || '|' || rows || '|' || sha256 FROM wharf_loads",
                "acme-orders|orders|3|ab12");
    assert_peek(
        f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'", "1");
    assert_peek(f, "PRAGMA journal_mode", "wal");

    /* the same intake cannot be recorded twice */
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JINTAKEA");
    insert3(&t, 9, "dup", 1);
    assert_int_equal(t.ops->commit(&t, "01JINTAKEA", "ab12", 1, &e), -1);
    assert_non_null(strstr(e.msg, "wharf_loads"));
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM orders", "3");
}

static void test_rollback(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    uint64_t rows;

    /* first load rolled back: not even the table it created remains */
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JA");
    insert3(&t, 1, "a", 1);
    t.ops->rollback(&t);
    assert_int_equal(t.ops->loaded(&t, "01JA", &rows, &e), 0);
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM sqlite_master WHERE name = 'orders'", "0");

    load(f, "01JB", 0, 5, "b");
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JC");
    insert3(&t, 100, "c", 1);
    t.ops->rollback(&t);
    /* the connection is usable again after a rollback */
    tgt_begin(f, &t, "01JD");
    insert3(&t, 200, "d", 1);
    t.ops->rollback(&t);
    target_close(&t);
    /* and close without commit rolls back too */
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JE");
    insert3(&t, 300, "e", 1);
    target_close(&t);

    assert_peek(
        f, "SELECT count(*) || ',' || min(_wharf_intake) || ',' || max(_wharf_intake) FROM orders",
        "5,01JB,01JB");
    assert_peek(f, "SELECT group_concat(intake) FROM wharf_loads", "01JB");
}

static void test_replace(void **state)
{
    struct fix *f = *state;
    f->p->target.mode = LOAD_REPLACE;
    load(f, "01JA", 0, 10, "a");
    assert_peek(f, "SELECT count(*) FROM orders", "10");
    load(f, "01JB", 50, 52, "b");
    assert_peek(f, "SELECT count(*) || ',' || group_concat(DISTINCT _wharf_intake) FROM orders",
                "2,01JB");
    assert_peek(f, "SELECT count(*) FROM wharf_loads", "2");

    /* nothing loadable (every part rejected): recorded, and replace does not empty the table */
    static const struct columns none = {0};
    struct target t;
    struct werr e = {0};
    uint64_t rows = 99;
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JC", &none, &e), 0);
    struct value v = {.kind = VAL_INT, .i = 1};
    struct row r1 = {.v = &v, .n = 1, .line = 2};
    assert_int_equal(t.ops->insert(&t, &r1, &e), -1); /* no columns, no rows */
    tgt_commit(&t, "01JC", 0);
    assert_int_equal(t.ops->loaded(&t, "01JC", &rows, &e), 1);
    assert_int_equal(rows, 0);
    target_close(&t);
    assert_peek(f, "SELECT count(*) || ',' || group_concat(DISTINCT _wharf_intake) FROM orders",
                "2,01JB");
}

static void test_upsert(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    char *key[] = {"id"};

    f->p->target.mode = LOAD_UPSERT;
    /* no key: refused */
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JX", &f->cols, &e), -1);
    assert_non_null(strstr(e.msg, "key"));
    target_close(&t);

    f->p->target.key.v = xmalloc(sizeof(char *));
    f->p->target.key.v[0] = xstrdup(key[0]);
    f->p->target.key.n = 1;
    load(f, "01JA", 0, 3, "a");
    load(f, "01JB", 2, 5, "b");
    assert_peek(f, "SELECT count(*) FROM orders", "5");
    assert_peek(f,
                "SELECT group_concat(customer || _wharf_intake, ',') FROM (SELECT * FROM orders "
                "ORDER BY id)",
                "a01JA,a01JA,b01JB,b01JB,b01JB");

    /* an existing table without a unique index on the key: refused */
    set_table(f, "legacy");
    peek_exec(f, "CREATE TABLE legacy (id INTEGER, customer TEXT, price REAL)");
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JC", &f->cols, &e), -1);
    assert_non_null(strstr(e.msg, "UNIQUE"));
    assert_non_null(strstr(e.msg, "legacy"));
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM pragma_table_info('legacy')", "3");

    /* ... with one (made by the owner), it works and gains _wharf_intake */
    peek_exec(f, "CREATE UNIQUE INDEX legacy_id ON legacy (id)");
    peek_exec(f, "INSERT INTO legacy VALUES (1, 'old', 0)");
    load(f, "01JD", 1, 3, "new");
    assert_peek(f,
                "SELECT group_concat(customer || ifnull(_wharf_intake, '-'), ',') FROM (SELECT * "
                "FROM legacy ORDER BY id)",
                "new01JD,new01JD");

    /* an INTEGER PRIMARY KEY is a unique key too */
    set_table(f, "bypk");
    peek_exec(f, "CREATE TABLE bypk (id INTEGER PRIMARY KEY, customer TEXT, price REAL)");
    load(f, "01JE", 0, 2, "x");
    load(f, "01JF", 1, 3, "y");
    assert_peek(f, "SELECT group_concat(customer, '') FROM (SELECT * FROM bypk ORDER BY id)",
                "xyy");
}

static void test_hostile_identifiers(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    static const char *bad_cols[] = {
        "a\"b", "x\"; DROP TABLE y; --", "_wharf_intake", "sqlite_x", "1abc", "", "a b"};

    peek_exec(f, "CREATE TABLE y (v INTEGER); INSERT INTO y VALUES (42)");

    set_table(f, "x\"; DROP TABLE y; --");
    assert_int_equal(target_open(&t, &f->cfg, f->p, &e), -1);
    assert_non_null(strstr(e.msg, "not a valid identifier"));
    assert_non_null(strstr(e.msg, "table"));
    set_table(f, "sqlite_master");
    assert_int_equal(target_open(&t, &f->cfg, f->p, &e), -1);
    assert_non_null(strstr(e.msg, "reserved"));
    /* nothing was touched, not even wharf_loads */
    assert_peek(f, "SELECT group_concat(name) FROM sqlite_master", "y");

    set_table(f, "orders");
    tgt_open(f, &t);
    for (size_t i = 0; i < sizeof bad_cols / sizeof *bad_cols; i++) {
        f->colv[1].name = (char *)bad_cols[i];
        memset(&e, 0, sizeof e);
        assert_int_equal(t.ops->begin(&t, "01JA", &f->cols, &e), -1);
        if (!strstr(e.msg, "column") || !strstr(e.msg, "orders"))
            fail_msg("column %s: unclear error: %s", bad_cols[i], e.msg);
    }
    /* a hostile upsert key is refused the same way */
    f->colv[1].name = "customer";
    f->p->target.mode = LOAD_UPSERT;
    f->p->target.key.v = xmalloc(sizeof(char *));
    f->p->target.key.v[0] = xstrdup("id\") ; DROP TABLE y; --");
    f->p->target.key.n = 1;
    assert_int_equal(t.ops->begin(&t, "01JA", &f->cols, &e), -1);
    assert_non_null(strstr(e.msg, "key"));
    target_close(&t);

    assert_peek(f, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)",
                "sqlite_autoindex_wharf_loads_1,sqlite_autoindex_wharf_supersessions_1,wharf_loads,"
                "wharf_supersessions,y");
    assert_peek(f, "SELECT v FROM y", "42");
}

static void test_existing_table_mismatch(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};

    peek_exec(f, "CREATE TABLE orders (id INTEGER, price REAL, _wharf_intake TEXT)");
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JA", &f->cols, &e), -1);
    if (!strstr(e.msg, "table \"orders\" has no column \"customer\""))
        fail_msg("unclear: %s", e.msg);
    target_close(&t);

    peek_exec(f, "ALTER TABLE orders ADD COLUMN customer INTEGER");
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JA", &f->cols, &e), -1);
    if (!strstr(e.msg, "\"orders\"") || !strstr(e.msg, "\"customer\"") ||
        !strstr(e.msg, "INTEGER") || !strstr(e.msg, "TEXT"))
        fail_msg("unclear: %s", e.msg);
    target_close(&t);

    set_table(f, "strict");
    peek_exec(f, "CREATE TABLE strict (id INTEGER, customer VARCHAR(20), price DOUBLE, "
                 "region TEXT NOT NULL)");
    tgt_open(f, &t);
    assert_int_equal(t.ops->begin(&t, "01JA", &f->cols, &e), -1);
    assert_non_null(strstr(e.msg, "\"region\""));
    target_close(&t);

    /* compatible declared types (VARCHAR, DOUBLE) are accepted */
    set_table(f, "fits");
    peek_exec(f, "CREATE TABLE fits (id BIGINT, customer VARCHAR(20), price DOUBLE, note TEXT)");
    load(f, "01JB", 0, 2, "z");
    assert_peek(f, "SELECT count(*) FROM fits WHERE _wharf_intake = '01JB'", "2");
}

static int count_found(void *ctx, const struct found_row *r, struct werr *e)
{
    (void)r;
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

static int found_rows(struct target *t, const char *col, const char *val)
{
    char *cols[] = {(char *)col}, *vals[] = {(char *)val};
    struct werr e = {0};
    int n = 0;
    if (t->ops->find(t, cols, vals, 1, 10, count_found, &n, &e) < 0)
        fail_msg("find: %s", e.msg);
    return n;
}

/* One row (id, "w", 1.0) whose id is an integer or, beyond 64 bits, its
 * digits as text (COLK_WIDEINT); the insert's result. */
static int insert_wide(struct target *t, const char *digits, int64_t i, uint64_t line,
                       struct werr *e)
{
    struct value v[3] = {
        {.kind = digits ? VAL_TEXT : VAL_INT,
         .i = i,
         .s = digits,
         .len = digits ? strlen(digits) : 0},
        {.kind = VAL_TEXT, .s = "w", .len = 1},
        {.kind = VAL_REAL, .d = 1.0},
    };
    struct row r = {.v = v, .n = 3, .line = line};
    return t->ops->insert(t, &r, e);
}

/* xs:integer beyond 64 bits: a table wharf makes declares the column
 * without a type, so SQLite keeps INTEGERs as INTEGERs and the long digits
 * exactly as TEXT (an INTEGER column would round them to a REAL); trace
 * finds either.  A table made before, with an INTEGER column, refuses such
 * a row with its line and column instead of rounding it. */
static void test_wide_integer_column(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};

    f->colv[0].kind = COLK_WIDEINT;
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JW");
    assert_int_equal(insert_wide(&t, NULL, 7, 2, &e), 0);
    assert_int_equal(insert_wide(&t, "12345678901234567890123", 0, 3, &e), 0);
    assert_int_equal(insert_wide(&t, "-99999999999999999999", 0, 4, &e), 0);
    tgt_commit(&t, "01JW", 3);
    assert_int_equal(found_rows(&t, "id", "7"), 1);
    assert_int_equal(found_rows(&t, "id", "12345678901234567890123"), 1);
    assert_int_equal(found_rows(&t, "id", "-99999999999999999999"), 1);
    assert_int_equal(found_rows(&t, "id", "12345678901234567890124"), 0);
    target_close(&t);
    assert_peek(f, "SELECT type FROM pragma_table_info('orders') WHERE name = 'id'", "");
    assert_peek(f, "SELECT group_concat(typeof(id) || ':' || quote(id), ' ') FROM orders",
                "integer:7 text:'12345678901234567890123' text:'-99999999999999999999'");

    set_table(f, "old");
    peek_exec(f, "CREATE TABLE old (id INTEGER, customer TEXT, price REAL, _wharf_intake TEXT)");
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JX");
    assert_int_equal(insert_wide(&t, NULL, 7, 2, &e), 0);
    assert_int_equal(insert_wide(&t, "12345678901234567890123", 0, 3, &e), -1);
    assert_int_equal(e.kind, WERR_SCHEMA);
    assert_true(t.reject.set);
    assert_int_equal(t.reject.line, 3);
    assert_int_equal(t.reject.seq, 1);
    assert_string_equal(t.reject.column, "id");
    if (!strstr(t.reject.message, "12345678901234567890123 is beyond 64 bits"))
        fail_msg("unclear: %s", t.reject.message);
    t.ops->rollback(&t);
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM old", "0");
}

static void test_locked_is_transient(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    sqlite3 *other;

    load(f, "01JA", 0, 1, "a");
    other = peek_open(f);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    tgt_open(f, &t);
    /* reading still works while someone else writes (WAL) */
    uint64_t rows = 0;
    assert_int_equal(t.ops->loaded(&t, "01JA", &rows, &e), 1);
    assert_int_equal(t.ops->begin(&t, "01JB", &f->cols, &e), -1);
    assert_true(e.transient);
    assert_int_equal(e.kind, WERR_TARGET_LOCKED);
    assert_string_equal(werr_runbook(&e), "runbooks/target-down.md");
    assert_non_null(strstr(e.msg, "locked"));
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    /* once the lock is gone, the same target loads */
    tgt_begin(f, &t, "01JB");
    insert3(&t, 7, "b", 1);
    tgt_commit(&t, "01JB", 1);
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM orders", "2");
}

/* Loads larger than one batch of the insert queue (load/rowq.h) go through
 * the inserting thread: every row arrives (their text copied: the caller's
 * buffer changes after each insert), upsert counts what it superseded
 * there, the key digest equals the one of the same rows loaded in small
 * loads, a row the table refuses midway fails the commit with nothing
 * loaded, and a rollback while the thread still has rows leaves nothing. */
static void insert_buf(struct target *t, int64_t id, uint64_t line)
{
    char who[32];
    snprintf(who, sizeof who, "customer-%lld", (long long)id);
    struct value v[3] = {
        {.kind = VAL_INT, .i = id},
        {.kind = VAL_TEXT, .s = who, .len = strlen(who)},
        {.kind = VAL_REAL, .d = (double)id / 4},
    };
    struct row r = {.v = v, .n = 3, .line = line};
    struct werr e = {0};
    if (t->ops->insert(t, &r, &e) < 0)
        fail_msg("insert %lld: %s", (long long)id, e.msg);
    memset(who, '#', sizeof who);
}

static void test_many_rows(void **state)
{
    struct fix *f = *state;
    struct target t;
    struct werr e = {0};
    char *key[] = {"id"};
    char digest[2][KEYDIGEST_HEX_LEN];
    const int N = 20000;

    /* the same rows in one load and in small ones: the same key digest */
    for (int pass = 0; pass < 2; pass++) {
        set_table(f, pass ? "small" : "big");
        tgt_open(f, &t);
        for (int from = 0; from < N; from += pass ? 500 : N) {
            char intake[16];
            snprintf(intake, sizeof intake, "01J%c%05d", pass ? 'S' : 'B', from);
            tgt_begin(f, &t, intake);
            for (int i = from; i < from + (pass ? 500 : N); i++)
                insert_buf(&t, i, (uint64_t)i + 2);
            tgt_commit(&t, intake, (uint64_t)(pass ? 500 : N));
            if (!pass)
                keydigest_hex(&t.stats.digest, digest[0]);
            assert_int_equal(t.stats.rows, pass ? 500 : N);
        }
        target_close(&t);
    }
    assert_peek(f, "SELECT count(*) || ',' || sum(id) || ',' || sum(price) FROM big",
                "20000,199990000,49997500.0");
    assert_peek(f, "SELECT count(*) FROM big WHERE customer = 'customer-' || id", "20000");
    assert_peek(f, "SELECT count(*) FROM small WHERE customer = 'customer-' || id", "20000");
    {
        /* the digest of the big load is the sum of the small ones' */
        struct keydigest sum = {0}, one;
        sqlite3 *db = peek_open(f);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT key_digest FROM wharf_loads WHERE intake"
                                            " LIKE '01JS%'",
                                            -1, &st, NULL),
                         SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            assert_int_equal(keydigest_parse((const char *)sqlite3_column_text(st, 0), &one), 0);
            keydigest_add(&sum, &one);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        keydigest_hex(&sum, digest[1]);
        assert_string_equal(digest[0], digest[1]);
    }

    /* upsert across batches: the second load replaces 15000 rows of the first */
    set_table(f, "up");
    f->p->target.mode = LOAD_UPSERT;
    f->p->target.key.v = xmalloc(sizeof(char *));
    f->p->target.key.v[0] = xstrdup(key[0]);
    f->p->target.key.n = 1;
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JU1");
    for (int i = 0; i < N; i++)
        insert_buf(&t, i, 2);
    tgt_commit(&t, "01JU1", N);
    tgt_begin(f, &t, "01JU2");
    for (int i = 5000; i < N + 5000; i++)
        insert_buf(&t, i, 2);
    tgt_commit(&t, "01JU2", N);
    assert_int_equal(t.stats.n_sup, 1);
    assert_string_equal(t.stats.sup[0].intake, "01JU1");
    assert_int_equal(t.stats.sup[0].rows, 15000);
    target_close(&t);
    assert_peek(f, "SELECT count(*) FROM up", "25000");
    assert_peek(f, "SELECT count(*) FROM up WHERE _wharf_intake = '01JU2'", "20000");
    f->p->target.mode = LOAD_APPEND;

    /* a row the table refuses after many: the commit (or an insert) fails, nothing stays */
    set_table(f, "checked");
    peek_exec(f,
              "CREATE TABLE checked (id INTEGER CHECK (id <> 15000), customer TEXT, price REAL)");
    tgt_open(f, &t);
    tgt_begin(f, &t, "01JC");
    int failed_at = 0;
    for (int i = 0; i < N && !failed_at; i++) {
        char who[8] = "c";
        struct value v[3] = {{.kind = VAL_INT, .i = i},
                             {.kind = VAL_TEXT, .s = who, .len = 1},
                             {.kind = VAL_REAL, .d = 1}};
        struct row r = {.v = v, .n = 3, .line = (uint64_t)i + 2};
        if (t.ops->insert(&t, &r, &e) < 0)
            failed_at = i;
    }
    if (!failed_at)
        assert_int_equal(t.ops->commit(&t, "01JC", "ab12", N, &e), -1);
    else
        t.ops->rollback(&t);
    assert_true(failed_at == 0 || failed_at > 15000);
    if (!strstr(e.msg, "CHECK") || !strstr(e.msg, "line 15002"))
        fail_msg("unclear: %s", e.msg);
    /* the connection loads again afterwards */
    tgt_begin(f, &t, "01JD");
    insert_buf(&t, 1, 2);
    tgt_commit(&t, "01JD", 1);
    /* a rollback while the inserting thread still has rows */
    tgt_begin(f, &t, "01JE");
    for (int i = 20000; i < 20000 + N; i++)
        insert_buf(&t, i, 2);
    t.ops->rollback(&t);
    /* and a close in the middle of a load */
    tgt_begin(f, &t, "01JF");
    for (int i = 20000; i < 20000 + N; i++)
        insert_buf(&t, i, 2);
    target_close(&t);
    assert_peek(f, "SELECT count(*) || ',' || group_concat(DISTINCT _wharf_intake) FROM checked",
                "1,01JD");
    assert_peek(f, "SELECT group_concat(intake) FROM wharf_loads WHERE tbl = 'checked'", "01JD");
}

/* A database the target creates gets 16 KiB pages; an existing one keeps its own. */
static void test_page_size(void **state)
{
    struct fix *f = *state;
    load(f, "01JA", 0, 3, "a");
    assert_peek(f, "PRAGMA page_size", "16384");
    struct werr e = {0};
    rmtree(f->dir, &e);
    assert_non_null(mkdtemp(strcpy(f->dir, "/tmp/wharf-tsq-XXXXXX")));
    free(f->db);
    f->db = xasprintf("%s/warehouse.db", f->dir);
    free(f->p->target.path);
    f->p->target.path = xstrdup(f->db);
    peek_exec(f, "PRAGMA page_size=4096; CREATE TABLE other (x)");
    load(f, "01JB", 0, 3, "b");
    assert_peek(f, "PRAGMA page_size", "4096");
    assert_peek(f, "SELECT count(*) FROM orders", "3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_commit_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_identifiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_table_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_integer_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_is_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
