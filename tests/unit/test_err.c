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

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <sqlite3.h>

#include "source/ssh.h"
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

/* docs/configuration.md's "Error kinds" table says what this table says:
 * every kind, whether it is retried, its runbook. */
static void test_table_documented(void **state)
{
    char path[512], line[1024];
    FILE *f;
    bool seen[WERR_KIND_COUNT] = {0};
    bool in = false;
    (void)state;
    snprintf(path, sizeof path, "%s/docs/configuration.md", WHARF_SOURCE_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char name[64], retried[8], rb[128];
        int k;
        if (!strncmp(line, "### Error kinds", 15))
            in = true;
        else if (in && !strncmp(line, "#", 1))
            break;
        if (!in ||
            sscanf(line, "| `%63[^`]` | %7s | [%*[^]]](../%127[^)]) |", name, retried, rb) != 3)
            continue;
        for (k = 0; k < WERR_KIND_COUNT && strcmp(werr_kind_name(k), name); k++)
            ;
        if (k == WERR_KIND_COUNT)
            fail_msg("docs name a kind %s that does not exist", name);
        seen[k] = true;
        assert_string_equal(retried, werr_kind_transient(k) ? "yes" : "no");
        assert_string_equal(rb, werr_kind_runbook(k));
    }
    fclose(f);
    for (int k = 0; k < WERR_KIND_COUNT; k++)
        if (!seen[k])
            fail_msg("kind %s is not in docs/configuration.md", werr_kind_name(k));
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

static void test_sqlite(void **state)
{
    (void)state;
    /* the target and the ledger say what "locked" means for them */
    assert_int_equal(werr_kind_sqlite(SQLITE_BUSY, WERR_TARGET_LOCKED, WERR_TARGET_DOWN),
                     WERR_TARGET_LOCKED);
    assert_int_equal(werr_kind_sqlite(SQLITE_LOCKED, WERR_BUSY, WERR_OTHER), WERR_BUSY);
    /* extended codes count by their primary code */
    assert_int_equal(werr_kind_sqlite(SQLITE_BUSY_SNAPSHOT, WERR_TARGET_LOCKED, WERR_OTHER),
                     WERR_TARGET_LOCKED);
    assert_int_equal(werr_kind_sqlite(SQLITE_FULL, WERR_TARGET_LOCKED, WERR_TARGET_DOWN),
                     WERR_NOSPACE);
    assert_int_equal(werr_kind_sqlite(SQLITE_IOERR_FSYNC, WERR_TARGET_LOCKED, WERR_TARGET_DOWN),
                     WERR_IO);
    assert_int_equal(werr_kind_sqlite(SQLITE_CANTOPEN, WERR_TARGET_LOCKED, WERR_TARGET_DOWN),
                     WERR_TARGET_DOWN);
    assert_int_equal(werr_kind_sqlite(SQLITE_READONLY, WERR_TARGET_LOCKED, WERR_TARGET_DOWN),
                     WERR_TARGET_DOWN);
    assert_true(werr_kind_transient(werr_kind_sqlite(SQLITE_BUSY, WERR_TARGET_LOCKED, 0)));
    assert_false(werr_kind_transient(
        werr_kind_sqlite(SQLITE_CORRUPT, WERR_TARGET_LOCKED, WERR_TARGET_DOWN)));
}

static void test_libssh2(void **state)
{
    (void)state;
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_TIMEOUT), WERR_TIMEOUT);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_SOCKET_TIMEOUT), WERR_TIMEOUT);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_SOCKET_DISCONNECT), WERR_UNREACHABLE);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_KEX_FAILURE), WERR_UNREACHABLE);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_BANNER_RECV), WERR_UNREACHABLE);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_AUTHENTICATION_FAILED), WERR_AUTH);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED), WERR_AUTH);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_FILE), WERR_AUTH);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_KNOWN_HOSTS), WERR_HOSTKEY);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_HOSTKEY_SIGN), WERR_HOSTKEY);
    assert_int_equal(ssh_kind(LIBSSH2_ERROR_INVAL), WERR_OTHER);
    /* what the runbook table makes of them */
    assert_true(werr_kind_transient(ssh_kind(LIBSSH2_ERROR_SOCKET_RECV)));
    assert_false(werr_kind_transient(ssh_kind(LIBSSH2_ERROR_AUTHENTICATION_FAILED)));
    assert_string_equal(werr_kind_runbook(ssh_kind(LIBSSH2_ERROR_AUTHENTICATION_FAILED)),
                        "runbooks/auth-refused.md");

    assert_int_equal(ssh_fx_kind(LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM), WERR_NOSPACE);
    assert_int_equal(ssh_fx_kind(LIBSSH2_FX_QUOTA_EXCEEDED), WERR_NOSPACE);
    assert_int_equal(ssh_fx_kind(LIBSSH2_FX_CONNECTION_LOST), WERR_UNREACHABLE);
    assert_int_equal(ssh_fx_kind(LIBSSH2_FX_NO_SUCH_FILE), WERR_REMOTE);
    assert_int_equal(ssh_fx_kind(LIBSSH2_FX_PERMISSION_DENIED), WERR_REMOTE);
    assert_false(werr_kind_transient(ssh_fx_kind(LIBSSH2_FX_PERMISSION_DENIED)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_table_decisions),
        cmocka_unit_test(test_table_documented),
        cmocka_unit_test(test_setters),
        cmocka_unit_test(test_errno),
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_libssh2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
