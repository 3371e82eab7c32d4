/*
 * test_err: an error's kind and the one table behind it.  Every kind has a
 * name, a runbook page that exists, and a transient/permanent decision;
 * kinds come from errno, libssh2 / SFTP status codes and SQLite result codes
 * where the error is made, never from the message text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/err.h"

static void test_table_complete(void **state)
{
    (void)state;
    for (int k = 0; k < WERR_KIND_COUNT; k++) {
        const char *name = werr_kind_name(k), *rb = werr_kind_runbook(k);
        char path[512];
        assert_non_null(name);
        assert_non_null(rb);
        /* a distinct name per kind */
        for (int j = 0; j < k; j++)
            assert_string_not_equal(name, werr_kind_name(j));
        /* the runbook page exists in the tree */
        assert_int_equal(strncmp(rb, "runbooks/", 9), 0);
        snprintf(path, sizeof path, "%s/%s", WHARF_SOURCE_DIR, rb);
        if (access(path, R_OK) != 0)
            fail_msg("kind %s: runbook %s missing", name, rb);
    }
    /* out of range is treated as "other" */
    assert_string_equal(werr_kind_name(WERR_KIND_COUNT), "error");
    assert_string_equal(werr_kind_name((enum werr_kind) - 1), "error");
}

static void test_table_decisions(void **state)
{
    static const struct {
        enum werr_kind k;
        bool transient;
        const char *runbook;
    } want[] = {
        {WERR_NOSPACE, true, "runbooks/disk-full.md"},
        {WERR_IO, false, "runbooks/disk-full.md"},
        {WERR_HOSTKEY, false, "runbooks/host-key-changed.md"},
        {WERR_AUTH, false, "runbooks/auth-refused.md"},
        {WERR_UNREACHABLE, true, "runbooks/source-unreachable.md"},
        {WERR_TIMEOUT, true, "runbooks/source-unreachable.md"},
        {WERR_TARGET_LOCKED, true, "runbooks/target-down.md"},
        {WERR_TARGET_DOWN, false, "runbooks/target-down.md"},
        {WERR_SCHEMA, false, "runbooks/schema-reject.md"},
        {WERR_ENCODING, false, "runbooks/encoding-changed.md"},
        {WERR_OTHER, false, "runbooks/replay.md"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(werr_kind_transient(want[i].k), want[i].transient);
        assert_string_equal(werr_kind_runbook(want[i].k), want[i].runbook);
    }
}

static void test_setters(void **state)
{
    struct werr e;
    (void)state;
    werr_setk(&e, WERR_AUTH, "sftp://h: authentication refused");
    assert_int_equal(e.kind, WERR_AUTH);
    assert_false(e.transient);
    assert_string_equal(werr_runbook(&e), "runbooks/auth-refused.md");
    /* werr_set: unclassified, permanent; the text never matters */
    werr_set(&e, "No space left on device (host key authentication)");
    assert_int_equal(e.kind, WERR_OTHER);
    assert_false(werr_transient(&e));
    /* prefixing keeps the kind */
    werr_setk(&e, WERR_TARGET_LOCKED, "database is locked");
    werr_prefix(&e, "load %s", "orders");
    assert_string_equal(e.msg, "load orders: database is locked");
    assert_int_equal(e.kind, WERR_TARGET_LOCKED);
    assert_true(e.transient);
    werr_setkind(&e, WERR_TARGET_DOWN);
    assert_false(e.transient);
}

static void test_errno(void **state)
{
    static const struct {
        int err;
        enum werr_kind k;
    } want[] = {
        {ENOSPC, WERR_NOSPACE},
        {EDQUOT, WERR_NOSPACE},
        {EIO, WERR_IO},
        {EAGAIN, WERR_BUSY},
        {EMFILE, WERR_BUSY},
        {ETIMEDOUT, WERR_TIMEOUT},
        {ECONNREFUSED, WERR_UNREACHABLE},
        {EHOSTUNREACH, WERR_UNREACHABLE},
        {ENOENT, WERR_OTHER},
        {EACCES, WERR_OTHER},
    };
    struct werr e;
    (void)state;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        errno = want[i].err;
        werr_sys(&e, "write %s", "x");
        assert_int_equal(e.kind, want[i].k);
        assert_int_equal(e.transient, werr_kind_transient(want[i].k));
        assert_int_equal(errno, want[i].err); /* errno is preserved */
    }
    errno = ENOSPC;
    werr_sys(&e, "write");
    assert_string_equal(e.msg, "write: No space left on device");
    /* an explicit kind, except that a full or failing disk stays what it is */
    errno = ENOENT;
    werr_sysk(&e, WERR_UNREACHABLE, "open spool");
    assert_int_equal(e.kind, WERR_UNREACHABLE);
    errno = EDQUOT;
    werr_sysk(&e, WERR_TARGET_DOWN, "write target");
    assert_int_equal(e.kind, WERR_NOSPACE);
    errno = EIO;
    werr_sysk(&e, WERR_TARGET_DOWN, "write target");
    assert_int_equal(e.kind, WERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_table_decisions),
        cmocka_unit_test(test_setters),
        cmocka_unit_test(test_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
