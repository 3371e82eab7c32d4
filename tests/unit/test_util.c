/*
 * test_util: the generic pieces — strict durations and sizes, clock and day
 * sets, sortable ids, SHA-256, and the durable write helper (including its
 * failure paths: nothing half-written is ever left under the final name).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include <cmocka.h>

#include "util/durable.h"
#include "util/ids.h"
#include "util/parse.h"
#include "util/sha256.h"
#include "util/xmalloc.h"

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"500ms", 500},  {"10s", 10000},     {"5m", 300000},
                {"1h", 3600000}, {"1h30m", 5400000}, {"2d", 172800000}};
    static const char *bad[] = {"", "10", "10 sec", "10sec", "s", "1.5h", "-1s", "10s ", "1x"};
    int64_t ms;
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse_duration(bad[i], &ms) == 0)
            fail_msg("\"%s\" parsed as a duration", bad[i]);
}

static void test_sizes(void **state)
{
    static const struct {
        const char *s;
        uint64_t b;
    } good[] = {{"512", 512},         {"64KB", 64000},  {"10MB", 10000000},
                {"1GB", 1000000000},  {"64KiB", 65536}, {"10MiB", 10485760},
                {"1GiB", 1073741824}, {"0", 0},         {"7B", 7}};
    static const char *bad[] = {
        "", "10 MB", "10mb", "1.5GB", "MB", "-1", "99999999999999999999", "20000000000GB"};
    uint64_t b;
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(parse_size(good[i].s, &b), 0);
        assert_int_equal(b, good[i].b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse_size(bad[i], &b) == 0)
            fail_msg("\"%s\" parsed as a size", bad[i]);
}

static void test_clock_days_percent(void **state)
{
    int m;
    uint8_t d;
    double p;
    (void)state;
    assert_int_equal(parse_clock("07:00", &m), 0);
    assert_int_equal(m, 420);
    assert_int_equal(parse_clock("23:59", &m), 0);
    assert_int_equal(parse_clock("24:00", &m), -1);
    assert_int_equal(parse_clock("7:00", &m), -1);
    assert_int_equal(parse_days("mon-fri", &d), 0);
    assert_int_equal(d, 0x3e);
    assert_int_equal(parse_days("sat,sun", &d), 0);
    assert_int_equal(d, 0x41);
    assert_int_equal(parse_days("fri-mon", &d), 0); /* wraps over the weekend */
    assert_int_equal(d, 0x63);
    assert_int_equal(parse_days("funday", &d), -1);
    assert_int_equal(parse_days("mon,", &d), -1);
    assert_int_equal(parse_percent("5%", &p), 0);
    assert_true(p > 4.99 && p < 5.01);
    assert_int_equal(parse_percent("101%", &p), -1);
    assert_int_equal(parse_percent("5", &p), -1);
    assert_true(tz_valid("Europe/Berlin"));
    assert_true(tz_valid("UTC"));
    assert_false(tz_valid("../../etc/passwd"));
    assert_false(tz_valid("Mars/Olympus"));
}

static void test_ids_sorted_unique(void **state)
{
    char prev[ID_LEN] = "", cur[ID_LEN];
    (void)state;
    for (int i = 0; i < 10000; i++) {
        id_new(cur);
        assert_true(id_valid(cur));
        assert_int_equal(strlen(cur), 26);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, ID_LEN);
    }
    assert_false(id_valid("01J-NOT-AN-ID"));
}

static void test_sha256(void **state)
{
    char hex[SHA256_HEX_LEN];
    (void)state;
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_durable_write(void **state)
{
    char dir[] = "/tmp/wharf-test-durable.XXXXXX", hex[SHA256_HEX_LEN], buf[64];
    struct werr e;
    struct dfile f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/a/b/file.txt", dir), *sub = xasprintf("%s/a/b", dir);
    assert_int_equal(mkdirs(sub, 0750, &e), 0);
    assert_int_equal(durable_write(path, "hello\n", 6, &e), 0);
    FILE *fp = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "hello\n");
    assert_int_equal(count_entries(sub), 1); /* no temp left behind */

    /* Streaming with a hash; abort leaves neither temp nor final file. */
    char *p2 = xasprintf("%s/streamed", sub);
    assert_int_equal(dfile_open(&f, p2, 0640, true, &e), 0);
    assert_int_equal(dfile_write(&f, "ab", 2, &e), 0);
    assert_int_equal(dfile_write(&f, "c", 1, &e), 0);
    assert_int_equal(dfile_commit(&f, hex, &e), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char *p3 = xasprintf("%s/aborted", sub);
    assert_int_equal(dfile_open(&f, p3, 0640, false, &e), 0);
    assert_int_equal(dfile_write(&f, "partial", 7, &e), 0);
    dfile_abort(&f);
    assert_int_equal(access(p3, F_OK), -1);
    assert_int_equal(count_entries(sub), 2);

    /* A large file: its writeback is started along the way (8 MiB steps),
     * and what lands under the final name is every byte, hashed. */
    char *p4 = xasprintf("%s/large", sub), hex2[SHA256_HEX_LEN];
    static char chunk[1 << 16];
    struct sha256 want;
    sha256_init(&want);
    assert_int_equal(dfile_open(&f, p4, 0640, true, &e), 0);
    for (int i = 0; i < 300; i++) { /* 18.75 MiB */
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(dfile_write(&f, chunk, sizeof chunk, &e), 0);
        sha256_update(&want, chunk, sizeof chunk);
    }
    assert_true(f.started == 16u << 20); /* two steps started, the rest left to fsync */
    assert_int_equal(dfile_commit(&f, hex, &e), 0);
    sha256_final(&want, hex2);
    assert_string_equal(hex, hex2);
    struct stat st;
    assert_int_equal(stat(p4, &st), 0);
    assert_true(st.st_size == 300 * (off_t)sizeof chunk);
    assert_int_equal(count_entries(sub), 3);

    /* An unwritable destination fails with a message naming it. */
    assert_int_equal(durable_write("/proc/wharf-cannot/x", "x", 1, &e), -1);
    assert_non_null(strstr(e.msg, "/proc/wharf-cannot/x"));
    /* A write to a full device fails loudly (ENOSPC is transient). */
    if (access("/dev/full", W_OK) == 0) {
        int fd = open("/dev/full", O_WRONLY);
        f = (struct dfile){.fd = fd, .path = xstrdup("/dev/full")};
        assert_int_equal(dfile_write(&f, "x", 1, &e), -1);
        assert_non_null(strstr(e.msg, "No space left"));
        assert_true(e.transient);
        close(fd);
        free(f.path);
    }
    assert_int_equal(rmtree(dir, &e), 0);
    assert_int_equal(access(dir, F_OK), -1);
    free(path);
    free(sub);
    free(p2);
    free(p3);
    free(p4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_clock_days_percent),
        cmocka_unit_test(test_ids_sorted_unique),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_durable_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
