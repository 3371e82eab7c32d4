/*
 * test_cron: cron expressions -> next run, as a table of (expression, zone,
 * after, expected next) in UTC, including both 2026 DST changes of
 * Europe/Berlin (2026-03-29 02:00->03:00, 2026-10-25 03:00->02:00) and of
 * America/New_York (2026-03-08, 2026-11-01); parse errors that name the
 * field; and the local-time helpers status and the SLA checks use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/cron.h"
#include "util/parse.h"

static int64_t at(const char *iso)
{
    int64_t ms;
    if (parse_date(iso, &ms) < 0)
        fail_msg("bad time in test table: %s", iso);
    return ms;
}

static void test_next_table(void **state)
{
    static const struct {
        const char *expr, *tz, *after, *next, *why;
    } cases[] = {
        {"*/5 * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "strictly after"},
        {"*/5 * * * *", "UTC", "2026-01-01T00:02:30Z", "2026-01-01T00:05:00Z", "step"},
        {"5/15 * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "a/n"},
        {"*/15 9-17/4 * * *", "UTC", "2026-01-01T10:00:00Z", "2026-01-01T13:00:00Z",
         "range with step"},
        {"0 0 13 * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z", "day of month"},
        {"0 0 13 * fri", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
         "dom OR dow when both restricted"},
        {"0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "7 is Sunday"},
        {"0 9 * * fri-sun", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T09:00:00Z",
         "fri-sun wraps to Sunday"},
        {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "leap day"},
        {"0 12 * JUL *", "UTC", "2026-01-01T00:00:00Z", "2026-07-01T12:00:00Z", "month name"},
        {"@daily", "Europe/Berlin", "2026-06-01T00:00:00Z", "2026-06-01T22:00:00Z",
         "local midnight in summer"},
        /* Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST */
        {"0 7 * * mon-fri", "Europe/Berlin", "2026-03-27T06:00:00Z", "2026-03-30T05:00:00Z",
         "weekday 07:00 across the weekend of the change"},
        {"30 2 * * *", "Europe/Berlin", "2026-03-28T02:00:00Z", "2026-03-30T00:30:00Z",
         "02:30 does not exist on 03-29: skipped"},
        {"0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
         "03:00 CEST right after the gap"},
        {"*/30 * * * *", "Europe/Berlin", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z",
         "02:00 and 02:30 skipped"},
        /* Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET */
        {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
         "repeated 02:30: first occurrence (CEST)"},
        {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z",
         "repeated 02:30 runs once"},
        {"*/30 * * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z",
         "no run in the repeated hour"},
        {"0 4 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T03:00:00Z",
         "04:00 CET after the change"},
        /* New York: 2026-03-08 02:00 EST -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST */
        {"0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-09T06:00:00Z",
         "02:00 does not exist on 03-08"},
        {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
         "repeated 01:30: first (EDT)"},
        {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z",
         "repeated 01:30 runs once"},
        {"0 9 * * mon-fri", "America/New_York", "2026-03-06T15:00:00Z", "2026-03-09T13:00:00Z",
         "09:00 EDT the Monday after"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct cron c;
        char err[256] = "";
        int64_t next = 0;
        char got[32], want[32];
        if (cron_parse(cases[i].expr, &c, err, sizeof err) < 0)
            fail_msg("%s: %s", cases[i].expr, err);
        assert_int_equal(cron_next(&c, cases[i].tz, at(cases[i].after), &next), 0);
        format_time_ms(next, got);
        format_time_ms(at(cases[i].next), want);
        if (strcmp(got, want))
            fail_msg("\"%s\" in %s after %s (%s): got %s, want %s", cases[i].expr, cases[i].tz,
                     cases[i].after, cases[i].why, got, want);
    }
}

static void test_never(void **state)
{
    struct cron c;
    int64_t next;
    (void)state;
    assert_int_equal(cron_parse("0 0 30 2 *", &c, NULL, 0), 0);
    assert_int_equal(cron_next(&c, "UTC", at("2026-01-01"), &next), -1);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *expr, *needle;
    } bad[] = {
        {"* * * *", "needs 5"},
        {"* * * * * *", "needs 5"},
        {"", "needs 5"},
        {"60 * * * *", "minute field"},
        {"* 24 * * *", "hour field"},
        {"* * 0 * *", "day-of-month field"},
        {"* * 32 * *", "out of range 1-31"},
        {"* * * 13 *", "month field"},
        {"* * * foo *", "month field \"foo\""},
        {"* * * * 8", "day-of-week field"},
        {"* * * * mon-xyz", "\"xyz\" is not a valid value"},
        {"*/0 * * * *", "step 0"},
        {"5-1 * * * *", "runs backwards"},
        {"1,,2 * * * *", "empty list item"},
        {"1x * * * *", "minute field"},
        {"*/ * * * *", "a step needs a number"},
        {"@reboot", "not a known macro"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cron c;
        char err[256] = "";
        if (cron_parse(bad[i].expr, &c, err, sizeof err) == 0)
            fail_msg("\"%s\" parsed but should not", bad[i].expr);
        if (!strstr(err, bad[i].needle))
            fail_msg("\"%s\": error \"%s\" lacks \"%s\"", bad[i].expr, err, bad[i].needle);
    }
}

static void test_parse_sets(void **state)
{
    struct cron c;
    (void)state;
    assert_int_equal(cron_parse("0,30 6-20 1,15 jan-mar mon-fri", &c, NULL, 0), 0);
    assert_true(c.minute == ((1ULL << 0) | (1ULL << 30)));
    assert_int_equal(c.hour, 0x1fffc0);
    assert_int_equal(c.dom, (1u << 1) | (1u << 15));
    assert_int_equal(c.month, 0xe);
    assert_int_equal(c.dow, 0x3e);
    assert_false(c.dom_star);
    assert_false(c.dow_star);
    assert_int_equal(cron_parse("  */10  *  *  *  sun,7 ", &c, NULL, 0), 0);
    assert_int_equal(c.dow, 1);
    assert_true(c.dom_star);
}

static void test_local_helpers(void **state)
{
    struct tm tm;
    int64_t ms;
    (void)state;
    cron_localtime("Europe/Berlin", at("2026-10-25T00:30:00Z"), &tm);
    assert_int_equal(tm.tm_hour, 2);
    assert_int_equal(tm.tm_gmtoff, 7200);
    cron_localtime("Europe/Berlin", at("2026-10-25T01:30:00Z"), &tm);
    assert_int_equal(tm.tm_hour, 2);
    assert_int_equal(tm.tm_gmtoff, 3600);
    assert_int_equal(cron_localmktime("Europe/Berlin", 2026, 10, 25, 2, 30, &ms), 0);
    assert_true(ms == at("2026-10-25T00:30:00Z"));
    /* in the gap: 1 and the instant the gap ends (03:00 CEST) */
    assert_int_equal(cron_localmktime("Europe/Berlin", 2026, 3, 29, 2, 30, &ms), 1);
    assert_true(ms == at("2026-03-29T01:00:00Z"));
    assert_int_equal(cron_localmktime("America/New_York", 2026, 7, 1, 7, 0, &ms), 0);
    assert_true(ms == at("2026-07-01T11:00:00Z"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_table),    cmocka_unit_test(test_never),
        cmocka_unit_test(test_parse_errors),  cmocka_unit_test(test_parse_sets),
        cmocka_unit_test(test_local_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
