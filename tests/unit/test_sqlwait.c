/*
 * test_sqlwait: the busy handler every wharf SQLite connection uses.  A
 * writer that meets another connection's write transaction gets the lock
 * once that one commits (or rolls back); one held past the timeout is
 * refused busy, not waited for forever; and the WAL is still checkpointed
 * into the database file although sqlwait took SQLite's WAL hook over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/sqlwait.h"

static char dir[] = "/tmp/test_sqlwait.XXXXXX";
static char path[256];

static sqlite3 *open_db(int timeout_ms)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlwait_install(db, timeout_ms);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct holder {
    sqlite3 *db;
    int hold_ms;
    const char *end; /* "COMMIT" or "ROLLBACK" */
};

static void *hold_then_end(void *arg)
{
    struct holder *h = arg;
    usleep((useconds_t)h->hold_ms * 1000);
    assert_int_equal(sqlite3_exec(h->db, h->end, NULL, NULL, NULL), SQLITE_OK);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite3 *db = open_db(1000);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (v INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count(sqlite3 *db)
{
    sqlite3_stmt *st;
    int n;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The waiter's own write goes in after the holder's, whichever way it ends. */
static void waits_for(const char *end, int want)
{
    sqlite3 *a = open_db(10000), *b = open_db(10000);
    struct holder h = {a, 150, end};
    pthread_t t;
    int before = count(a);

    assert_int_equal(sqlite3_exec(a, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1)", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(pthread_create(&t, NULL, hold_then_end, &h), 0);
    assert_int_equal(sqlite3_exec(b, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    /* b holds the write lock now: a's transaction must have ended. */
    assert_int_equal(count(b), before + want);
    assert_int_equal(sqlite3_exec(b, "INSERT INTO t VALUES (2); COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
    pthread_join(t, NULL);
    assert_int_equal(count(a), before + want + 1);
    sqlite3_close(a);
    sqlite3_close(b);
}

static void test_waits_for_commit(void **state)
{
    (void)state;
    waits_for("COMMIT", 1);
}

static void test_waits_for_rollback(void **state)
{
    (void)state;
    waits_for("ROLLBACK", 0);
}

static void test_times_out_busy(void **state)
{
    sqlite3 *a = open_db(10000), *b = open_db(200);
    int64_t t0;
    int rc;
    (void)state;
    assert_int_equal(sqlite3_exec(a, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    t0 = ms_now();
    rc = sqlite3_exec(b, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    assert_int_equal(rc & 0xff, SQLITE_BUSY);
    /* It waited the timeout out before giving up (a lower bound only). */
    assert_true(ms_now() - t0 >= 200);
    assert_int_equal(sqlite3_exec(a, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(a);
    sqlite3_close(b);
}

/* SQLite's default WAL hook checkpoints at 1,000 pages; sqlwait's must too,
 * or the WAL grows without end and the database file never gets the rows. */
static void test_still_checkpoints(void **state)
{
    sqlite3 *db = open_db(1000);
    struct stat st0, st1;
    (void)state;
    assert_int_equal(stat(path, &st0), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO t SELECT zeroblob(4000) FROM "
                                      "(SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
                                      "UNION ALL SELECT 4)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(stat(path, &st1), 0);
    /* 1,200 rows of ~4 kB: about 1,200 pages, past one checkpoint. */
    assert_true(st1.st_size > st0.st_size + 1000 * 1024);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_commit),
        cmocka_unit_test(test_waits_for_rollback),
        cmocka_unit_test(test_times_out_busy),
        cmocka_unit_test(test_still_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
