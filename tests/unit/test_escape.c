/*
 * test_escape: the one escaper for partner bytes (util/escape.h): controls,
 * DEL, C1, bidirectional controls and invalid UTF-8 shown visibly,
 * backslash doubled, well-formed text kept; the tag form; and JSON strings
 * that never drop a name for invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/escape.h"

static void eq_text(const char *in, const char *want)
{
    char *got = esc_text(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_text(void **state)
{
    (void)state;
    eq_text("orders_20261128.csv", "orders_20261128.csv");
    eq_text("", "");
    eq_text(NULL, "");
    /* C0, DEL, backslash */
    eq_text("a\nb", "a\\x0ab");
    eq_text("\r\t\a", "\\x0d\\x09\\x07");
    eq_text("\x1b[31mred\x1b]0;owned\x07", "\\x1b[31mred\\x1b]0;owned\\x07");
    eq_text("del\x7f", "del\\x7f");
    eq_text("a\\x1b", "a\\\\x1b"); /* a literal backslash cannot pose as an escape */
    /* well-formed UTF-8 stays, C1 and bidi controls do not */
    eq_text("bestellungen_\xc3\xbc\xc3\xa4\xc3\xb6_\xe6\x97\xa5\xe6\x9c\xac.csv",
            "bestellungen_\xc3\xbc\xc3\xa4\xc3\xb6_\xe6\x97\xa5\xe6\x9c\xac.csv");
    eq_text("\xf0\x9f\x93\xa6", "\xf0\x9f\x93\xa6");
    eq_text("csi\xc2\x9b"
            "31m",
            "csi\\u009b31m");
    eq_text("evil\xe2\x80\xae"
            "vsc.exe",
            "evil\\u202evsc.exe");
    eq_text("line\xe2\x80\xa8sep", "line\\u2028sep");
    /* invalid UTF-8: every offending byte shown */
    eq_text("caf\xc3\x28", "caf\\xc3(");
    eq_text("\xff\xfe", "\\xff\\xfe");
    eq_text("\xc0\xaf", "\\xc0\\xaf");                   /* overlong '/' */
    eq_text("\xed\xa0\x80", "\\xed\\xa0\\x80");          /* a surrogate */
    eq_text("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    eq_text("cut\xe6\x97", "cut\\xe6\\x97");             /* truncated at the end */
    char *n = esc_textn("nul\0byte", 8);
    assert_string_equal(n, "nul\\x00byte");
    free(n);
}

static void test_tag(void **state)
{
    (void)state;
    char *t = esc_tag("  two\nlines \\ end  ");
    assert_string_equal(t, "\\x20\\x20two\\x0alines \\\\ end\\x20\\x20");
    free(t);
    t = esc_tag("Wharf-Previous-Link: 0\r\nWharf-Outcome: loaded");
    assert_null(strchr(t, '\n'));
    assert_null(strchr(t, '\r'));
    free(t);
}

static void test_json(void **state)
{
    (void)state;
    json_t *j = esc_json("name\n\x1b.csv");
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "name\n\x1b.csv"); /* valid: JSON escapes it */
    json_decref(j);
    j = esc_json("bad\xff"
                 "name\\.csv");
    assert_non_null(j); /* jansson's json_string refuses this one */
    assert_string_equal(json_string_value(j), "bad\\xffname\\\\.csv");
    json_decref(j);
    j = esc_json(NULL);
    assert_true(json_is_null(j));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_tag),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
