/*
 * test_health: every health state has its own name (status and the JSON
 * print them), the order puts causes above the symptoms they explain, and
 * ages read as a person would say them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/health.h"

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < HEALTH__COUNT; i++) {
        const char *n = health_state_name((enum health_state)i);
        assert_non_null(n);
        assert_string_not_equal(n, "?");
        for (int k = 0; k < i; k++)
            assert_string_not_equal(n, health_state_name((enum health_state)k));
    }
    assert_string_equal(health_state_name(HEALTH__COUNT), "?");
}

static void test_order(void **state)
{
    (void)state;
    /* a stuck upload, a reject, a source down explain a late file */
    assert_true(HEALTH_STUCK > HEALTH_LATE && HEALTH_STUCK > HEALTH_MISSING);
    assert_true(HEALTH_REJECTING > HEALTH_MISSING && HEALTH_DOWN > HEALTH_MISSING);
    assert_true(HEALTH_RETRYING > HEALTH_MISSING && HEALTH_WAITING < HEALTH_LATE);
    assert_true(HEALTH_PAUSED > HEALTH_DOWN && HEALTH_DISABLED > HEALTH_DOWN);
}

static void test_age(void **state)
{
    char b[32];
    (void)state;
    health_age(40000, b, sizeof b);
    assert_string_equal(b, "40 s");
    health_age(12 * 60000, b, sizeof b);
    assert_string_equal(b, "12 min");
    health_age(2 * 3600000 + 5 * 60000, b, sizeof b);
    assert_string_equal(b, "2 h 5 min");
    health_age(3 * 86400000LL + 4 * 3600000, b, sizeof b);
    assert_string_equal(b, "3 d 4 h");
    health_age(-5, b, sizeof b);
    assert_string_equal(b, "0 s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
