/*
 * test_console: the pieces of the console that need no server -- the HTML
 * escaper (hostile names: markup, quotes, ANSI escapes, newlines, C1
 * controls, invalid UTF-8), URL escaping, and the users file (libcrypt
 * hashes: yescrypt "$y$", right and wrong passwords, roles, replacing a
 * user, unknown users, names that could forge a line).
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

#include "console/users.h"
#include "util/html.h"

static char *esc(const char *s)
{
    struct hbuf b = {0};
    html_escape(&b, s);
    return b.s ? b.s : strdup("");
}

static void test_html_escape(void **state)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"plain.csv", "plain.csv"},
        {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
        {"a\"b'c&d", "a&quot;b&#39;c&amp;d"},
        {"ansi\033[31mred", "ansi&#xFFFD;[31mred"},
        {"two\nlines\r", "two&#xFFFD;lines&#xFFFD;"},
        {"c1\xc2\x85x", "c1&#xFFFD;x"},
        {"bad\xff\xfeutf8", "bad&#xFFFD;&#xFFFD;utf8"},
        {"overlong\xc0\xaf", "overlong&#xFFFD;&#xFFFD;"},
        {"surrogate\xed\xa0\x80", "surrogate&#xFFFD;&#xFFFD;&#xFFFD;"},
        {"Gr\xc3\xbc\xc3\x9f"
         "e \xe2\x82\xac \xf0\x9f\x93\xa6",
         "Gr\xc3\xbc\xc3\x9f"
         "e \xe2\x82\xac \xf0\x9f\x93\xa6"},
        {"", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *o = esc(t[i].in);
        assert_string_equal(o, t[i].out);
        free(o);
    }
    struct hbuf b = {0};
    html_escape(&b, NULL);
    assert_null(b.s);
}

static void test_url_escape(void **state)
{
    struct hbuf b = {0};
    (void)state;
    url_escape(&b, "a b/<\">?&=\n~");
    assert_string_equal(b.s, "a%20b%2F%3C%22%3E%3F%26%3D%0A~");
    free(b.s);
}

static void test_users(void **state)
{
    char dir[] = "/tmp/wharf-users.XXXXXX", path[64];
    struct werr e;
    enum user_role role = ROLE_VIEWER;
    FILE *f;
    char line[512];
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/users", dir);

    assert_int_equal(users_check(path, "nobody", "x", &role, &e), 0); /* no file: no users */
    assert_int_equal(users_set(path, "alice", "correct horse", ROLE_OPERATOR, &e), 0);
    assert_int_equal(users_set(path, "bob", "battery staple", ROLE_VIEWER, &e), 0);
    assert_int_equal(users_check(path, "alice", "correct horse", &role, &e), 1);
    assert_int_equal(role, ROLE_OPERATOR);
    assert_int_equal(users_check(path, "bob", "battery staple", &role, &e), 1);
    assert_int_equal(role, ROLE_VIEWER);
    assert_int_equal(users_check(path, "alice", "battery staple", &role, &e), 0);
    assert_int_equal(users_check(path, "alic", "correct horse", &role, &e), 0);
    assert_int_equal(users_check(path, "carol", "correct horse", &role, &e), 0);

    /* libcrypt's hash, never ours: "$y$" (yescrypt) or "$2b$" (bcrypt) */
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_true(!strncmp(line, "alice:operator:$y$", 18) ||
                !strncmp(line, "alice:operator:$2b$", 19));
    assert_null(strstr(line, "correct horse"));

    /* replacing keeps one line per user */
    assert_int_equal(users_set(path, "alice", "new password", ROLE_VIEWER, &e), 0);
    assert_int_equal(users_check(path, "alice", "correct horse", &role, &e), 0);
    assert_int_equal(users_check(path, "alice", "new password", &role, &e), 1);
    assert_int_equal(role, ROLE_VIEWER);
    int n = 0;
    f = fopen(path, "r");
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    assert_int_equal(n, 2);

    /* names that could forge a line or a role are refused */
    assert_int_equal(users_set(path, "eve:operator", "x12345678", ROLE_VIEWER, &e), -1);
    assert_int_equal(users_set(path, "eve\nmallory", "x12345678", ROLE_VIEWER, &e), -1);
    assert_int_equal(users_set(path, "", "x12345678", ROLE_VIEWER, &e), -1);
    assert_int_equal(users_check(path, "bob:viewer", "battery staple", &role, &e), 0);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_url_escape),
        cmocka_unit_test(test_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
