/*
 * test_decimal: exact decimal sums on text (util/decimal.h): scales that
 * differ, signs, exponents, 20 and more significant digits where a double
 * would lose the last ones, numerical equality across scales, and text
 * that is not a number refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/decimal.h"

static void sum_is(const char *const *v, const char *want, bool group)
{
    struct decimal acc = {0};
    for (; *v; v++)
        assert_int_equal(decimal_add_text(&acc, *v, strlen(*v)), 0);
    char *got = decimal_str(&acc, group);
    assert_string_equal(got, want);
    free(got);
    decimal_free(&acc);
}

#define SUM(want, group, ...) sum_is((const char *const[]){__VA_ARGS__, NULL}, want, group)

static void test_sums(void **state)
{
    (void)state;
    SUM("0.3", false, "0.1", "0.2"); /* 0.30000000000000004 in a double */
    SUM("56789.00", false, "12345.50", "44443.50");
    SUM("56,789.00", true, "12345.50", "44443.50");
    SUM("1,000", true, "999", "1");
    SUM("-1.25", false, "1", "-2.25");
    SUM("0.00", false, "1.50", "-1.5", "0");
    SUM("1250", false, "1.25e3");
    SUM("0.0125", false, "1.25E-2");
    SUM("12.5", false, "+12.5");
    SUM("0.5", false, ".5");
    SUM("5", false, "5.");
    /* 20 significant digits: a double keeps about 16 */
    SUM("12345678901234567890.12", false, "12345678901234567890.10", "0.02");
    SUM("99999999999999999999", false, "99999999999999999998", "1");
    SUM("100000000000000000000", false, "99999999999999999999", "1");
    SUM("-99999999999999999999.99", false, "0.01", "-100000000000000000000");
}

static void test_cmp(void **state)
{
    (void)state;
    struct decimal a = {0}, b = {0};
    assert_int_equal(decimal_parse(&a, "56789.00", 8), 0);
    assert_int_equal(decimal_parse(&b, "56789", 5), 0);
    assert_int_equal(decimal_cmp(&a, &b), 0);
    assert_int_equal(decimal_parse(&b, "56701.50", 8), 0);
    assert_true(decimal_cmp(&a, &b) > 0);
    assert_true(decimal_cmp(&b, &a) < 0);
    assert_int_equal(decimal_parse(&a, "-0.00", 5), 0);
    assert_int_equal(decimal_parse(&b, "0", 1), 0);
    assert_int_equal(decimal_cmp(&a, &b), 0);
    assert_int_equal(decimal_parse(&a, "12345678901234567890", 20), 0);
    assert_int_equal(decimal_parse(&b, "12345678901234567891", 20), 0);
    assert_true(decimal_cmp(&a, &b) < 0);
    /* an empty accumulator is zero */
    struct decimal z = {0};
    assert_int_equal(decimal_cmp(&z, &b) < 0, 1);
    decimal_free(&a);
    decimal_free(&b);
}

static void test_refused(void **state)
{
    (void)state;
    struct decimal acc = {0};
    const char *bad[] = {"",    "-",    ".",   "abc", "1,5",     "1.2.3", "1e",
                         "1e+", "0x10", "12 ", " 12", "1e99999", "NaN",   "inf"};
    assert_int_equal(decimal_add_text(&acc, "7.5", 3), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(decimal_add_text(&acc, bad[i], strlen(bad[i])), -1);
    char *s = decimal_str(&acc, false);
    assert_string_equal(s, "7.5"); /* unchanged by the refusals */
    free(s);
    /* longer than the limit */
    size_t n = DECIMAL_MAX_DIGITS + 1;
    char *big = malloc(n);
    memset(big, '9', n);
    assert_int_equal(decimal_add_text(&acc, big, n), -1);
    free(big);
    decimal_free(&acc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
