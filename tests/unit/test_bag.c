/*
 * test_bag: seal BagIt bags in a temp dir and check them the way an auditor
 * would (coreutils `sha256sum -c` inside the bag) and with bag_verify;
 * damage payload, manifest and bag-info one byte at a time and add an
 * unlisted file, each of which must be reported naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "report.h"
#include "seal/bag.h"
#include "util/durable.h"
#include "util/xmalloc.h"

struct fix {
    char dir[64];
    char *src; /* a payload source file */
    char *bag; /* <dir>/archive/2026/01JBAG */
};

static const char payload[] = "order_id,customer\n1,Ann\n2,Bo\n";

static int setup(void **state)
{
    struct fix *f = xcalloc(1, sizeof *f);
    struct werr e;
    snprintf(f->dir, sizeof f->dir, "/tmp/wharf-tbag-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->src = xasprintf("%s/orders.csv", f->dir);
    if (durable_write(f->src, payload, sizeof payload - 1, &e) < 0)
        fail_msg("%s", e.msg);
    f->bag = xasprintf("%s/archive/2026/01JBAG", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    struct werr e;
    rmtree(f->dir, &e);
    free(f->src);
    free(f->bag);
    free(f);
    return 0;
}

static void seal(struct fix *f, char sha[SHA256_HEX_LEN])
{
    struct bag_file files[] = {
        {.name = "data/orders.csv", .src_path = f->src},
        {.name = "data/parts/b.csv", .content = "x,y\n", .len = 4},
        {.name = "report.json", .content = "{\"total\": 0}\n", .len = 13},
    };
    struct bag_kv info[] = {
        {"External-Identifier", "01JBAG"},
        {"Wharf-Profile", "acme-orders"},
        {"Wharf-Note", "two\nlines\r\nand CR\rend"},
    };
    struct werr e = {0};
    if (bag_seal(f->bag, files, 3, info, 3, sha, &e) < 0)
        fail_msg("seal: %s", e.msg);
}

static int sh(const char *dir, const char *cmd)
{
    char *full = xasprintf("cd '%s' && %s >/dev/null 2>&1", dir, cmd);
    int r = system(full);
    free(full);
    return r;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = xmalloc(1 << 16);
    size_t n;
    assert_non_null(fp);
    n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

/* Verify and return the problems as text ("" when intact). */
static char *verify(struct fix *f, int want, char sha[SHA256_HEX_LEN])
{
    struct report rep;
    struct werr e = {0};
    char *text;
    int r;
    report_init(&rep, 0);
    r = bag_verify(f->bag, sha, &rep, &e);
    text = xstrdup("");
    for (size_t i = 0; i < rep.n; i++) { /* "code part: message" per line */
        char *more =
            xasprintf("%s%s %s: %s\n", text, rep.v[i].code, rep.v[i].part, rep.v[i].message);
        free(text);
        text = more;
    }
    if (r != want)
        fail_msg("bag_verify: %d, want %d (%s%s)", r, want, e.msg, text);
    report_free(&rep);
    return text;
}

static void flip(const char *bag, const char *rel, long at)
{
    char *path = xasprintf("%s/%s", bag, rel);
    FILE *fp = fopen(path, "r+b");
    int c;
    assert_non_null(fp);
    if (at < 0) {
        fseek(fp, 0, SEEK_END);
        at = ftell(fp) + at;
    }
    fseek(fp, at, SEEK_SET);
    c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    free(path);
}

static void test_seal_layout_and_sha256sum(void **state)
{
    struct fix *f = *state;
    char sha[SHA256_HEX_LEN], again[SHA256_HEX_LEN], hex[SHA256_HEX_LEN];
    char *s, *path, *text;
    struct werr e;
    struct stat st;

    seal(f, sha);
    assert_int_equal(strlen(sha), 64);
    path = xasprintf("%s/tagmanifest-sha256.txt", f->bag);
    assert_int_equal(sha256_file(path, hex, NULL, &e), 0);
    assert_string_equal(sha, hex);
    free(path);

    assert_int_equal(sh(f->bag, "sha256sum --strict -c manifest-sha256.txt"), 0);
    assert_int_equal(sh(f->bag, "sha256sum --strict -c tagmanifest-sha256.txt"), 0);

    path = xasprintf("%s/bagit.txt", f->bag);
    s = slurp(path);
    assert_string_equal(s, "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n");
    free(s);
    free(path);

    path = xasprintf("%s/bag-info.txt", f->bag);
    s = slurp(path);
    assert_true(strncmp(s, "External-Identifier: 01JBAG\nWharf-Profile: acme-orders\n", 55) == 0);
    /* a value is one line: its breaks are escaped (esc_tag), never raw */
    assert_non_null(strstr(s, "Wharf-Note: two\\x0alines\\x0d\\x0aand CR\\x0dend\n"));
    assert_non_null(strstr(s, "\nBagging-Date: 20"));
    char *oxum = xasprintf("\nPayload-Oxum: %zu.2\n", sizeof payload - 1 + 4);
    assert_non_null(strstr(s, oxum));
    free(oxum);
    free(s);
    free(path);

    path = xasprintf("%s/manifest-sha256.txt", f->bag);
    s = slurp(path);
    sha256_hex(payload, sizeof payload - 1, hex);
    char *want = xasprintf("%s  data/orders.csv\n", hex);
    assert_true(strncmp(s, want, strlen(want)) == 0); /* sorted: orders < parts */
    assert_non_null(strstr(s, "  data/parts/b.csv\n"));
    free(want);
    free(s);
    free(path);

    path = xasprintf("%s/tagmanifest-sha256.txt", f->bag);
    s = slurp(path);
    assert_non_null(strstr(s, "  bagit.txt\n"));
    assert_non_null(strstr(s, "  bag-info.txt\n"));
    assert_non_null(strstr(s, "  manifest-sha256.txt\n"));
    assert_non_null(strstr(s, "  report.json\n"));
    assert_null(strstr(s, "data/"));
    free(s);
    free(path);

    text = verify(f, 0, again);
    assert_string_equal(text, "");
    assert_string_equal(again, sha);
    free(text);

    /* no temp dirs left beside the bag */
    path = xasprintf("%s/archive/2026", f->dir);
    assert_int_equal(sh(path, "test \"$(ls -A | tr '\\n' ' ')\" = '01JBAG '"), 0);
    free(path);
    assert_int_equal(stat(f->bag, &st), 0);
}

static void test_damage_is_caught(void **state)
{
    struct fix *f = *state;
    char sha[SHA256_HEX_LEN], got[SHA256_HEX_LEN];
    char *text;

    seal(f, sha);
    /* payload byte */
    flip(f->bag, "data/orders.csv", 5);
    text = verify(f, 1, got);
    if (!strstr(text, "hash_mismatch ") || !strstr(text, "/data/orders.csv: "))
        fail_msg("payload damage not named: %s", text);
    assert_string_equal(got, sha); /* the tag manifest itself is unchanged */
    free(text);
    flip(f->bag, "data/orders.csv", 5);
    text = verify(f, 0, got);
    free(text);

    /* manifest byte (in the last hash character of its last line) */
    flip(f->bag, "manifest-sha256.txt", -20);
    text = verify(f, 1, got);
    if (!strstr(text, "hash_mismatch ") || !strstr(text, "/manifest-sha256.txt: "))
        fail_msg("manifest damage not named: %s", text);
    free(text);
    flip(f->bag, "manifest-sha256.txt", -20);

    /* bag-info byte (in the middle of the profile name) */
    flip(f->bag, "bag-info.txt", 45);
    text = verify(f, 1, got);
    if (!strstr(text, "hash_mismatch ") || !strstr(text, "/bag-info.txt: "))
        fail_msg("bag-info damage not named: %s", text);
    free(text);
    flip(f->bag, "bag-info.txt", 45);
    text = verify(f, 0, got);
    free(text);

    /* an extra payload file and an extra tag file */
    struct werr e;
    char *extra = xasprintf("%s/data/parts/extra.csv", f->bag);
    assert_int_equal(durable_write(extra, "z\n", 2, &e), 0);
    text = verify(f, 1, got);
    if (!strstr(text, "unlisted ") || !strstr(text, "/data/parts/extra.csv: "))
        fail_msg("unlisted file not named: %s", text);
    if (!strstr(text, "oxum ") || !strstr(text, "/bag-info.txt: "))
        fail_msg("oxum not checked: %s", text);
    free(text);
    unlink(extra);
    free(extra);

    /* a missing payload file */
    extra = xasprintf("%s/data/parts/b.csv", f->bag);
    unlink(extra);
    text = verify(f, 1, got);
    if (!strstr(text, "missing ") || !strstr(text, "/data/parts/b.csv: "))
        fail_msg("missing file not named: %s", text);
    free(text);
    free(extra);
}

static void test_idempotent_reseal(void **state)
{
    struct fix *f = *state;
    char sha[SHA256_HEX_LEN], again[SHA256_HEX_LEN];
    struct werr e = {0};
    struct bag_file other = {.name = "data/other.csv", .content = "q", .len = 1};

    seal(f, sha);
    /* a crash after the rename: sealing again finds the bag and returns its hash */
    assert_int_equal(bag_seal(f->bag, &other, 1, NULL, 0, again, &e), 0);
    assert_string_equal(sha, again);
    assert_int_equal(sh(f->bag, "test ! -e data/other.csv"), 0);

    /* a damaged bag is not taken for a sealed one */
    flip(f->bag, "data/orders.csv", 0);
    assert_int_equal(bag_seal(f->bag, &other, 1, NULL, 0, again, &e), -1);
    assert_non_null(strstr(e.msg, "data/orders.csv"));
}

static void test_refused_names(void **state)
{
    struct fix *f = *state;
    static const char *bad[] = {
        "data/../../etc/passwd", "/etc/passwd", "data/a/../../x", "data/", "data//a", "bagit.txt",
        "manifest-sha256.txt",   "../x",        "data/./a"};
    char sha[SHA256_HEX_LEN];
    struct werr e;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct bag_file b = {.name = bad[i], .content = "x", .len = 1};
        memset(&e, 0, sizeof e);
        if (bag_seal(f->bag, &b, 1, NULL, 0, sha, &e) != -1)
            fail_msg("name %s was accepted", bad[i]);
        assert_non_null(strstr(e.msg, bad[i]));
    }
    struct bag_kv kv = {"Bad:Key", "v"};
    struct bag_file ok = {.name = "data/a", .content = "x", .len = 1};
    assert_int_equal(bag_seal(f->bag, &ok, 1, &kv, 1, sha, &e), -1);
    /* nothing left behind */
    assert_int_equal(sh(f->dir, "test ! -e archive/2026/01JBAG"), 0);

    /* an unreadable source cleans up its temp dir */
    struct bag_file missing = {.name = "data/a", .src_path = "/nonexistent/file"};
    assert_int_equal(bag_seal(f->bag, &missing, 1, NULL, 0, sha, &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/file"));
    assert_int_equal(sh(f->dir, "test -z \"$(ls -A archive/2026)\""), 0);
}

static void test_encoded_names(void **state)
{
    struct fix *f = *state;
    char sha[SHA256_HEX_LEN], got[SHA256_HEX_LEN];
    struct bag_file files[] = {
        {.name = "data/new\nline.csv", .content = "a", .len = 1},
        {.name = "data/100%.csv", .content = "b", .len = 1},
        {.name = "data/cr\r.csv", .content = "c", .len = 1},
    };
    struct werr e = {0};
    char *s, *path, *enc;

    enc = bag_encode_path("a%b\nc\rd");
    assert_string_equal(enc, "a%25b%0Ac%0Dd");
    free(enc);

    if (bag_seal(f->bag, files, 3, NULL, 0, sha, &e) < 0)
        fail_msg("%s", e.msg);
    path = xasprintf("%s/manifest-sha256.txt", f->bag);
    s = slurp(path);
    assert_non_null(strstr(s, "  data/new%0Aline.csv\n"));
    assert_non_null(strstr(s, "  data/100%25.csv\n"));
    assert_non_null(strstr(s, "  data/cr%0D.csv\n"));
    /* one line per file: the name's newline did not split a line */
    int lines = 0;
    for (char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    free(s);
    free(path);
    s = verify(f, 0, got);
    assert_string_equal(s, "");
    free(s);

    /* and damage to such a file is still found */
    path = xasprintf("%s/data/new\nline.csv", f->bag);
    FILE *fp = fopen(path, "w");
    fputs("A", fp);
    fclose(fp);
    free(path);
    s = verify(f, 1, got);
    assert_non_null(strstr(s, "hash_mismatch "));
    assert_non_null(strstr(s, "/data/new\nline.csv: "));
    free(s);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* bag-info.txt is read per RFC 8493 2.2.2: lines of any length, folded
 * continuation lines, LF/CR/CRLF; a long value that holds a lookalike
 * element past byte 1024 (what a partner's long path can plant) is part of
 * that value, never an element of its own. */
static void test_bag_info_get(void **state)
{
    struct fix *f = *state;
    char sha[SHA256_HEX_LEN], out[4096];
    char *path, *fake, *longv;
    const char *real = "1111111111111111111111111111111111111111111111111111111111111111";
    struct werr e;

    /* what bag_seal writes reads back */
    longv = xmalloc(3000);
    memset(longv, 'p', 3000);
    /* "Wharf-Source-Path: " is 19 bytes: the lookalike starts at byte 1023
     * of the line, where a 1024-byte line buffer would cut it */
    fake = longv + 1023 - 19;
    memcpy(fake, "Wharf-Previous-Link: 2222", 25);
    longv[2999] = 0;
    struct bag_file files[] = {{.name = "data/a.csv", .content = "x\n", .len = 2}};
    struct bag_kv info[] = {{"Wharf-Source-Path", longv}, {"Wharf-Previous-Link", real}};
    assert_int_equal(bag_seal(f->bag, files, 1, info, 2, sha, &e), 0);
    assert_int_equal(bag_info_get(f->bag, "Wharf-Previous-Link", out, sizeof out), 0);
    assert_string_equal(out, real);
    assert_int_equal(bag_info_get(f->bag, "Wharf-Source-Path", out, sizeof out), 0);
    assert_string_equal(out, longv);
    free(verify(f, 0, sha));

    /* folded lines, CR and CRLF endings, a blank after the colon optional */
    path = xasprintf("%s/bag-info.txt", f->bag);
    write_text(path, "Wharf-Note: first\r\n  second\r\tthird\nWharf-Empty:\r"
                     "no colon here\nWharf-Tight:value\nWharf-Previous-Link: abc\n"
                     "Wharf-Previous-Link: def\n");
    assert_int_equal(bag_info_get(f->bag, "Wharf-Note", out, sizeof out), 0);
    assert_string_equal(out, "first\nsecond\nthird");
    assert_int_equal(bag_info_get(f->bag, "Wharf-Empty", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(bag_info_get(f->bag, "Wharf-Tight", out, sizeof out), 0);
    assert_string_equal(out, "value");
    assert_int_equal(bag_info_get(f->bag, "Wharf-Previous-Link", out, sizeof out), 0);
    assert_string_equal(out, "abc"); /* the first occurrence */
    assert_int_equal(bag_info_get(f->bag, "no colon here", out, sizeof out), -1);
    assert_int_equal(bag_info_get(f->bag, "Missing", out, sizeof out), -1);
    free(path);
    free(longv);
}

static void test_verify_not_a_bag(void **state)
{
    struct fix *f = *state;
    struct report rep;
    struct werr e = {0};
    char sha[SHA256_HEX_LEN];
    report_init(&rep, 0);
    assert_int_equal(bag_verify(f->bag, sha, &rep, &e), -1);
    assert_non_null(strstr(e.msg, "01JBAG"));
    /* an empty directory is checkable and full of problems */
    struct werr e2;
    assert_int_equal(mkdirs(f->bag, 0755, &e2), 0);
    assert_int_equal(bag_verify(f->bag, sha, &rep, &e), 1);
    assert_true(rep.total >= 3);
    report_free(&rep);
}

/* A staged bag whose temp dir another stager of the same owner removed
 * and made again meanwhile is never published: not with the other's
 * (empty) tag files, nor at all.  A leftover of an earlier attempt of the
 * same owner is removed when staging. */
static void test_stage_replaced(void **state)
{
    struct fix *f = *state;
    struct bag_file files[] = {{.name = "data/orders.csv", .src_path = f->src}};
    struct bag_kv info[] = {{"External-Identifier", "01JBAG"}};
    struct werr e = {0};
    char sha[SHA256_HEX_LEN], *tmp = xasprintf("%s.tmp-nodeA", f->bag);
    struct stat st;

    assert_int_equal(mkdirs(tmp, 0750, &e), 0); /* a leftover */
    struct bag_stage *a = bag_stage(f->bag, "nodeA", files, 1, &e);
    assert_non_null(a);
    assert_int_equal(stat(tmp, &st), 0);
    /* the same owner stages it again (a node that lost its lease): a's
     * temp dir is removed and made anew */
    struct bag_stage *b = bag_stage(f->bag, "nodeA", files, 1, &e);
    assert_non_null(b);
    assert_int_equal(bag_finish(a, info, 1, sha, &e), -1);
    assert_non_null(strstr(e.msg, "removed or replaced"));
    assert_int_equal(lstat(f->bag, &st), -1); /* nothing published */
    bag_stage_free(a);                        /* leaves b's temp dir alone */
    /* b's own stage is intact and finishes */
    assert_int_equal(bag_finish(b, info, 1, sha, &e), 0);
    struct report rep;
    report_init(&rep, 0);
    char again[SHA256_HEX_LEN];
    assert_int_equal(bag_verify(f->bag, again, &rep, &e), 0);
    assert_string_equal(again, sha);
    report_free(&rep);
    bag_stage_free(b);
    assert_int_equal(lstat(tmp, &st), -1); /* published or removed */
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_layout_and_sha256sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_reseal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_not_a_bag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bag_info_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
