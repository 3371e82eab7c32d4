/*
 * test_rowq: the queue between the validating and the inserting thread
 * (load/rowq.h): rows arrive in order with their values copied (the
 * caller's buffer is overwritten after every put), a load smaller than a
 * batch runs on the caller's thread, the early share is done by the
 * putting thread on whole batches while the queue is full and then never
 * again by fn, the first failure of fn stops the
 * inserts and reaches the caller, and freeing a queue whose thread still
 * has rows stops it (ASan: nothing leaks).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "load/rowq.h"
#include "util/xmalloc.h"

#define NROWS 20000 /* many batches */

struct seen {
    pthread_t caller;
    uint64_t n;        /* rows fn saw */
    uint64_t fail_at;  /* fn fails on the row with this line (0: never) */
    bool other_thread; /* fn ran on a thread that is not the caller's */
    bool out_of_order;
    bool bad_value;
    uint64_t after_fail; /* rows fn saw after it failed */
    bool failed;
};

static int check_row(void *ctx, const struct row *row, bool early, struct werr *e)
{
    struct seen *s = ctx;
    (void)early;
    char want[64];
    if (s->failed)
        s->after_fail++;
    if (!pthread_equal(pthread_self(), s->caller))
        s->other_thread = true;
    if (row->line != s->n + 1)
        s->out_of_order = true;
    snprintf(want, sizeof want, "customer %llu", (unsigned long long)row->line);
    if (row->n != 3 || row->v[0].kind != VAL_INT || row->v[0].i != (int64_t)row->line ||
        row->v[1].kind != VAL_TEXT || row->v[1].len != strlen(want) ||
        memcmp(row->v[1].s, want, row->v[1].len) || row->v[2].kind != VAL_NULL ||
        (row->line % 7 == 0 ? !row->xpath || strcmp(row->xpath, "/a/b[7]") : row->xpath != NULL))
        s->bad_value = true;
    s->n++;
    if (s->fail_at && row->line == s->fail_at) {
        s->failed = true;
        werr_setk(e, WERR_TARGET_DOWN, "refused line %llu", (unsigned long long)row->line);
        return -1;
    }
    return 0;
}

/* Puts rows 1..n through q with one reused text buffer; the first failed
 * put's line, or 0. */
static uint64_t put_rows(struct rowq *q, uint64_t n, struct werr *e)
{
    char text[64];
    for (uint64_t line = 1; line <= n; line++) {
        struct value v[3] = {{.kind = VAL_INT, .i = (int64_t)line},
                             {.kind = VAL_TEXT, .s = text},
                             {.kind = VAL_NULL}};
        v[1].len = (size_t)snprintf(text, sizeof text, "customer %llu", (unsigned long long)line);
        struct row r = {.v = v, .n = 3, .line = line, .xpath = line % 7 == 0 ? "/a/b[7]" : NULL};
        int rc = rowq_put(q, &r, e);
        memset(text, 'x', sizeof text); /* the queue must have copied it */
        if (rc < 0)
            return line;
    }
    return 0;
}

static void test_order_and_copies(void **state)
{
    (void)state;
    struct seen s = {.caller = pthread_self()};
    struct werr e = {0};
    struct rowq *q = rowq_new(3, check_row, NULL, &s);
    assert_int_equal(put_rows(q, NROWS, &e), 0);
    assert_int_equal(rowq_finish(q, &e), 0);
    rowq_free(q);
    assert_int_equal(s.n, NROWS);
    assert_false(s.out_of_order);
    assert_false(s.bad_value);
    assert_true(s.other_thread);
}

static void test_small_load_on_callers_thread(void **state)
{
    (void)state;
    struct seen s = {.caller = pthread_self()};
    struct werr e = {0};
    struct rowq *q = rowq_new(3, check_row, NULL, &s);
    assert_int_equal(put_rows(q, 10, &e), 0);
    assert_int_equal(s.n, 0); /* nothing inserted before finish */
    assert_int_equal(rowq_finish(q, &e), 0);
    rowq_free(q);
    assert_int_equal(s.n, 10);
    assert_false(s.other_thread);
    assert_false(s.bad_value);
}

static void test_failure_reaches_caller(void **state)
{
    (void)state;
    struct seen s = {.caller = pthread_self(), .fail_at = 5000};
    struct werr e = {0};
    struct rowq *q = rowq_new(3, check_row, NULL, &s);
    uint64_t stopped = put_rows(q, NROWS, &e);
    /* a later put (at a batch boundary) or finish says so, never a success */
    if (stopped) {
        assert_true(stopped > 5000);
        assert_non_null(strstr(e.msg, "refused line 5000"));
    }
    memset(&e, 0, sizeof e);
    assert_int_equal(rowq_finish(q, &e), -1);
    assert_non_null(strstr(e.msg, "refused line 5000"));
    assert_int_equal(e.kind, WERR_TARGET_DOWN);
    rowq_free(q);
    assert_int_equal(s.after_fail, 0);
    assert_int_equal(s.n, 5000);

    /* the same with a load that never left the caller's thread */
    struct seen s2 = {.caller = pthread_self(), .fail_at = 3};
    q = rowq_new(3, check_row, NULL, &s2);
    assert_int_equal(put_rows(q, 10, &e), 0);
    assert_int_equal(rowq_finish(q, &e), -1);
    assert_non_null(strstr(e.msg, "refused line 3"));
    rowq_free(q);
    assert_int_equal(s2.n, 3);
}

static int check_big(void *ctx, const struct row *row, bool early, struct werr *e)
{
    uint64_t *n = ctx;
    (void)e;
    (void)early;
    size_t len = (size_t)row->line * 50000;
    if (row->v[0].len != len || row->v[0].s[0] != (char)('a' + row->line % 26) ||
        row->v[0].s[len - 1] != (char)('a' + row->line % 26))
        return -1;
    (*n)++;
    return 0;
}

/* Values larger than a batch's text buffer, mixed with small ones. */
static void test_big_values(void **state)
{
    (void)state;
    uint64_t n = 0;
    struct werr e = {0};
    struct rowq *q = rowq_new(1, check_big, NULL, &n);
    char *buf = xmalloc(40 * 50000);
    for (uint64_t line = 1; line <= 3000; line++) {
        uint64_t l = line % 40 ? line % 40 : 1;
        size_t len = (size_t)l * 50000;
        memset(buf, 'a' + (int)(l % 26), len);
        struct value v = {.kind = VAL_TEXT, .s = buf, .len = len};
        struct row r = {.v = &v, .n = 1, .line = l};
        assert_int_equal(rowq_put(q, &r, &e), 0);
    }
    free(buf);
    assert_int_equal(rowq_finish(q, &e), 0);
    rowq_free(q);
    assert_int_equal(n, 3000);
}

/* The early share: done by the putting thread on whole batches while the
 * queue is full, and then never again by fn; every row exactly once. */
struct shares {
    uint64_t early_calls, early_seen, late, slow_every;
    uint64_t early_sum, late_sum; /* of the lines, each side's */
};

static void early_row(void *ctx, const struct row *row)
{
    struct shares *s = ctx;
    s->early_calls++;
    s->early_sum += row->line;
}

static int slow_row(void *ctx, const struct row *row, bool early, struct werr *e)
{
    struct shares *s = ctx;
    (void)e;
    if (early) {
        s->early_seen++;
    } else {
        s->late++;
        s->late_sum += row->line;
    }
    if (row->line % s->slow_every == 0) {
        struct timespec ts = {0, 200000}; /* a slow target: the queue fills up */
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_early_share(void **state)
{
    (void)state;
    struct werr e = {0};
    char text[8] = "x";
    for (int slow = 0; slow < 2; slow++) {
        struct shares s = {.slow_every = slow ? 64 : UINT64_MAX};
        struct rowq *q = rowq_new(1, slow_row, early_row, &s);
        for (uint64_t line = 1; line <= NROWS; line++) {
            struct value v = {.kind = VAL_TEXT, .s = text, .len = 1};
            struct row r = {.v = &v, .n = 1, .line = line};
            assert_int_equal(rowq_put(q, &r, &e), 0);
        }
        assert_int_equal(rowq_finish(q, &e), 0);
        rowq_free(q);
        assert_int_equal(s.early_calls, s.early_seen);
        assert_int_equal(s.early_calls + s.late, NROWS);
        assert_int_equal(s.early_sum + s.late_sum, (uint64_t)NROWS * (NROWS + 1) / 2);
        assert_int_equal(s.early_calls % 1024, 0); /* whole batches */
        if (slow)
            assert_true(s.early_calls > 0); /* 20000 rows sleep 62 ms in all */
    }
}

static void test_free_while_running(void **state)
{
    (void)state;
    struct seen s = {.caller = pthread_self()};
    struct werr e = {0};
    struct rowq *q = rowq_new(3, check_row, NULL, &s);
    assert_int_equal(put_rows(q, NROWS, &e), 0);
    rowq_free(q); /* no finish: the rows not yet inserted are dropped */
    assert_true(s.n <= NROWS);
    assert_false(s.out_of_order);
    /* and a queue that never got a row */
    q = rowq_new(3, check_row, NULL, &s);
    rowq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_copies),
        cmocka_unit_test(test_small_load_on_callers_thread),
        cmocka_unit_test(test_failure_reaches_caller),
        cmocka_unit_test(test_big_values),
        cmocka_unit_test(test_early_share),
        cmocka_unit_test(test_free_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
