/*
 * ledger: operations on the ledger itself.
 *
 *   wharf ledger migrate --to postgresql [--dsn-file FILE]
 *
 * copies the SQLite ledger wharf.yaml names into an empty PostgreSQL
 * ledger (FILE holds its libpq connection string; without it the PG*
 * environment and ~/.pgpass), for a deployment that outgrew one machine
 * (docs/scale-out.md).  With the state directory locked (no server may
 * run) and both ledgers in one transaction each (ledger_copy), every table
 * is copied and read back; then the hash chain is verified in the
 * uncommitted copy exactly as `wharf verify` walks it (seal/verify.h,
 * without re-hashing the bags, which do not move) and compared with the
 * SQLite ledger's.  Only when every table and the chain agree is the copy
 * committed; otherwise it is rolled back and the PostgreSQL ledger stays
 * empty, so the command can simply be run again.
 *
 * Exit: 0 migrated; 1 a mismatch (nothing committed); 2 usage; 3 the
 * configuration; 4 the target is not empty, or a ledger failed (nothing
 * committed); 5 a wharf server holds the state directory.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/lock.h"
#include "seal/verify.h"

static void chain_problem(void *ctx, const char *intake, const char *msg)
{
    (void)intake;
    fprintf(stderr, "  %s: %s\n", (const char *)ctx, msg);
}

/* The chain of l walked as `wharf verify` walks it, bags not re-read. */
static int chain_check(struct ledger *l, const char *label, struct verify_result *v,
                       struct werr *e)
{
    struct verify_opts o = {.chain_only = true};
    return verify_run(l, &o, chain_problem, (void *)label, v, e);
}

static int migrate(struct cli *c, const char *dsn_file)
{
    struct ledger *to = NULL;
    struct ledger_copy cp;
    struct verify_result vs, vt;
    struct werr e;
    struct stat st;
    int r, lock = -1;
    bool ok;

    if ((r = cli_config(c)))
        return r;
    if (!strcmp(c->cfg.ledger_type, "postgresql")) {
        fprintf(stderr,
                "wharf ledger migrate: %s already names a PostgreSQL ledger; migrate copies the "
                "SQLite ledger a configuration names (ledger: { type: sqlite })\n",
                c->cfg.file ? c->cfg.file : "the configuration");
        return EXIT_CONFIG;
    }
    if (stat(c->cfg.ledger_path, &st) < 0) {
        fprintf(stderr, "wharf ledger migrate: no SQLite ledger at %s: nothing to migrate\n",
                c->cfg.ledger_path);
        return EXIT_FAILURE_OP;
    }
    if ((lock = statelock_acquire(&c->cfg, &e)) < 0) {
        fprintf(stderr, "wharf ledger migrate: %s%s\n", e.msg,
                lock == -2 ? ": stop the server before migrating its ledger" : "");
        return lock == -2 ? EXIT_LOCKED : EXIT_FAILURE_OP;
    }
    if ((r = cli_ledger(c)))
        goto out;
    if (!(to = ledger_open("postgresql", NULL, dsn_file, &e))) {
        fprintf(stderr, "wharf ledger migrate: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    printf("copying %s into the %s\n", ledger_where(c->ledger), ledger_where(to));
    if (ledger_copy(c->ledger, to, &cp, &e) < 0) {
        fprintf(stderr, "wharf ledger migrate: %s; nothing was committed\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    if (cp.refused) {
        ledger_copy_end(c->ledger, to, false, &e);
        fprintf(stderr,
                "wharf ledger migrate: refused: the %s is not empty (rows in %s); it only copies "
                "into an empty ledger, and nothing was written. Give it a new database (or a "
                "schema of its own in the dsn's search_path)\n",
                ledger_where(to), cp.refused_why);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    ok = cp.same;
    printf("%-10s  %10s  %10s\n", "TABLE", "SQLITE", "POSTGRESQL");
    for (size_t i = 0; i < cp.n; i++) {
        printf("%-10s  %10llu  %10llu  %s\n", cp.t[i].table, (unsigned long long)cp.t[i].from,
               (unsigned long long)cp.t[i].to, cp.t[i].same ? "same" : "DIFFERENT");
        if (!cp.t[i].same)
            printf("  rows digest %s in SQLite, %s in PostgreSQL\n", cp.t[i].from_digest,
                   cp.t[i].to_digest);
    }
    if (chain_check(c->ledger, "sqlite", &vs, &e) < 0 ||
        chain_check(to, "postgresql", &vt, &e) < 0) {
        fprintf(stderr, "wharf ledger migrate: chain: %s; nothing was committed\n", e.msg);
        ledger_copy_end(c->ledger, to, false, &e);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    if (vs.problems || vt.problems || vs.links != vt.links || strcmp(vs.head, vt.head)) {
        printf("chain: DIFFERENT: %llu links, head %s, %llu problems in SQLite; %llu links, "
               "head %s, %llu problems in the copy\n",
               (unsigned long long)vs.links, vs.head, (unsigned long long)vs.problems,
               (unsigned long long)vt.links, vt.head, (unsigned long long)vt.problems);
        ok = false;
    } else {
        printf("chain: %llu links verified in the copy, head %s, as in SQLite\n",
               (unsigned long long)vt.links, vt.head);
    }
    if (!ok) {
        ledger_copy_end(c->ledger, to, false, &e);
        fprintf(stderr, "wharf ledger migrate: the copy differs from the SQLite ledger; it was "
                        "rolled back and the PostgreSQL ledger is empty again\n");
        r = EXIT_PROBLEMS;
        goto out;
    }
    if (ledger_copy_end(c->ledger, to, true, &e) < 0) {
        fprintf(stderr, "wharf ledger migrate: commit: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    printf("migrated. Now set in wharf.yaml: ledger: { type: postgresql, dsn_file: %s }\n",
           dsn_file ? dsn_file : "...");
    r = EXIT_OK;
out:
    ledger_close(to);
    if (lock >= 0)
        close(lock);
    return r;
}

int cmd_ledger(struct cli *c, int argc, char **argv)
{
    const char *to = NULL, *dsn_file = NULL;
    if (argc < 2 || strcmp(argv[1], "migrate") != 0) {
        cli_usage_error("ledger", "the only subcommand is migrate");
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--to") && i + 1 < argc)
            to = argv[++i];
        else if (!strcmp(argv[i], "--dsn-file") && i + 1 < argc)
            dsn_file = argv[++i];
        else {
            cli_usage_error("ledger", "unknown argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!to || strcmp(to, "postgresql") != 0) {
        cli_usage_error("ledger", "migrate needs --to postgresql");
        return EXIT_USAGE;
    }
    return migrate(c, dsn_file);
}
