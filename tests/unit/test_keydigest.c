/*
 * test_keydigest: the order-independent key digest reconcile compares (the
 * load computes it from typed values, reconcile from what SQLite stored):
 * order does not matter, taking a row out undoes adding it, a number
 * stored as an integer or as an integral REAL hashes the same, NaN hashes as
 * NULL (SQLite stores NULL), and types and column boundaries are kept apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "load/keydigest.h"

static struct keydigest of_rows(const int64_t *ids, size_t n)
{
    struct keyhash k = {0};
    struct keydigest d = {0};
    for (size_t i = 0; i < n; i++) {
        keyhash_int(&k, ids[i]);
        keyhash_text(&k, "x", 1);
        keyhash_add_to(&k, &d);
    }
    keyhash_free(&k);
    return d;
}

static void test_order_independent(void **state)
{
    static const int64_t a[] = {1, 2, 3, 4, 5}, b[] = {5, 3, 1, 4, 2}, c[] = {1, 2, 3, 4, 6};
    struct keydigest da = of_rows(a, 5), db = of_rows(b, 5), dc = of_rows(c, 5), z = {0};
    (void)state;
    assert_true(keydigest_eq(&da, &db));
    assert_false(keydigest_eq(&da, &dc));
    assert_false(keydigest_eq(&da, &z));
}

static void test_sub_undoes_add(void **state)
{
    static const int64_t a[] = {1, 2, 3}, two[] = {1, 3};
    struct keydigest d = of_rows(a, 3), want = of_rows(two, 2);
    struct keyhash k = {0};
    (void)state;
    keyhash_int(&k, 2);
    keyhash_text(&k, "x", 1);
    keyhash_sub_from(&k, &d);
    assert_true(keydigest_eq(&d, &want));
    /* borrow across the 64-bit halves */
    struct keydigest x = {0, 1}, y = {0, 2};
    keydigest_sub(&x, &y);
    assert_true(x.hi == UINT64_MAX && x.lo == UINT64_MAX);
    keydigest_add(&x, &y);
    assert_true(x.hi == 0 && x.lo == 1);
    keyhash_free(&k);
}

static struct keydigest one(void (*fill)(struct keyhash *))
{
    struct keyhash k = {0};
    struct keydigest d = {0};
    fill(&k);
    keyhash_add_to(&k, &d);
    keyhash_free(&k);
    return d;
}
static void f_int2(struct keyhash *k)
{
    keyhash_int(k, 2);
}
static void f_real2(struct keyhash *k)
{
    keyhash_real(k, 2.0);
}
static void f_real25(struct keyhash *k)
{
    keyhash_real(k, 2.5);
}
static void f_text2(struct keyhash *k)
{
    keyhash_text(k, "2", 1);
}
static void f_null(struct keyhash *k)
{
    keyhash_null(k);
}
static void f_nan(struct keyhash *k)
{
    keyhash_real(k, NAN);
}
static void f_ab_c(struct keyhash *k)
{
    keyhash_text(k, "ab", 2);
    keyhash_text(k, "c", 1);
}
static void f_a_bc(struct keyhash *k)
{
    keyhash_text(k, "a", 1);
    keyhash_text(k, "bc", 2);
}

static void test_canonical_values(void **state)
{
    struct keydigest i2 = one(f_int2), r2 = one(f_real2), r25 = one(f_real25), t2 = one(f_text2);
    struct keydigest n = one(f_null), nan = one(f_nan), abc1 = one(f_ab_c), abc2 = one(f_a_bc);
    (void)state;
    assert_true(keydigest_eq(&i2, &r2)); /* NUMERIC affinity stores 2.0 as 2 */
    assert_false(keydigest_eq(&i2, &r25));
    assert_false(keydigest_eq(&i2, &t2)); /* text "2" is not the number 2 */
    assert_true(keydigest_eq(&n, &nan));  /* SQLite stores NaN as NULL */
    assert_false(keydigest_eq(&abc1, &abc2));
}

static void test_hex_roundtrip(void **state)
{
    static const int64_t a[] = {7, 8, 9};
    struct keydigest d = of_rows(a, 3), back;
    char hex[KEYDIGEST_HEX_LEN];
    (void)state;
    keydigest_hex(&d, hex);
    assert_int_equal(strlen(hex), 32);
    assert_int_equal(keydigest_parse(hex, &back), 0);
    assert_true(keydigest_eq(&d, &back));
    assert_int_equal(keydigest_parse("xyz", &back), -1);
    assert_int_equal(keydigest_parse("0123456789abcdef0123456789abcdeg", &back), -1);
    assert_int_equal(keydigest_parse(NULL, &back), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_sub_undoes_add),
        cmocka_unit_test(test_canonical_values),
        cmocka_unit_test(test_hex_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
