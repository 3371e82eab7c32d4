/*
 * driver: the pieces of wharf that the command line cannot time alone,
 * linked against a build's libwharfcore.a (bench/run compiles it).
 *
 *   driver validate DIR PROFILE FILE [RUNS]
 *       compile PROFILE's validator (DIR is the work dir holding profiles/
 *       and schemas/) and run it over FILE with no row callback (fn=NULL):
 *       XSD / Table Schema validation only, nothing shredded or loaded.
 *   driver fetch DIR PROFILE DEST
 *       open PROFILE's source (type: sftp), list it and fetch its first drop
 *       into DEST through source_sftp_ops (libssh2, SHA-256 on the fly,
 *       fsync, rename).
 *   driver sha256 FILE
 *       util/sha256.h's sha256_file over FILE (the sealing path's hash).
 *   driver floor DIR PROFILE FILE DB
 *       B1's floor: validate FILE with PROFILE's validator, keeping every
 *       typed row in memory (untimed), then time SQLite alone inserting
 *       those rows into a fresh DB the way the sqlite target loads them:
 *       the same page size, WAL and synchronous=FULL, the table with the
 *       same declared types, "_wharf_intake" and "_wharf_line" (the row's
 *       line as text, as target.lineage: line writes it), one prepared INSERT bound
 *       without copies, the intake index built at the end, one COMMIT, the
 *       close (its checkpoint).  What is left is SQLite's own cost: no
 *       parsing, no validation, no key digest, no ledger.  Also prints
 *       bare_seconds: the same rows into a table of the typed columns only
 *       (no lineage columns, no index), in a second fresh DB.
 *   driver ledger DSN_FILE NODES INTAKES
 *       the ledger's work for files on the PostgreSQL ledger at DSN_FILE,
 *       from NODES processes (simulated nodes "bench-1".., each its own
 *       connection and identity), INTAKES each: a claim, then the
 *       transitions of a loaded file (taken, inspected, validated, loaded),
 *       a chain append, sealed, done -- with the durability the pipeline
 *       asks for (claim, chain and sealed fully durable, the rest relaxed).
 *       Prints seconds (first claim to last done, all nodes), intakes and
 *       ledger transactions in that time.
 *
 * Each prints one line "seconds=S bytes=N peak_rss_kb=K ..." on stdout and
 * exits 0 when the operation succeeded.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "ledger/ledger.h"
#include "report.h"
#include "source/source.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sha256.h"
#include "validate/validate.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void diags_print(const struct diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "driver: %s\n", d->msg[i]);
}

/* Config and one profile from DIR (its profiles/ and schemas/). */
static struct profile *load(const char *dir, const char *name, struct wharf_config *cfg)
{
    struct diags d = {0};
    char path[4096];
    struct profile *p;
    if (chdir(dir) != 0) {
        perror(dir);
        return NULL;
    }
    if (config_load(NULL, cfg, &d) != 0) {
        diags_print(&d);
        diag_free(&d);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s.yaml", cfg->profiles_dir, name);
    p = profile_load(cfg, path, &d);
    if (!p)
        diags_print(&d);
    diag_free(&d);
    return p;
}

static int cmd_validate(const char *dir, const char *name, const char *file, int runs)
{
    struct wharf_config cfg = {0};
    struct profile *p = load(dir, name, &cfg);
    struct diags d = {0};
    struct validator *v;
    int rc = 1;
    if (!p)
        return 1;
    v = validator_compile(&cfg, p, &d);
    if (!v) {
        diags_print(&d);
        goto out;
    }
    for (int i = 0; i < runs; i++) {
        struct validate_input in = {.path = file,
                                    .display = file,
                                    .format = p->format,
                                    .delimiter = ',',
                                    .quote = '"',
                                    .header = true};
        struct report rep;
        struct validate_result res = {0};
        struct werr e = {0};
        double t0 = now(), t1;
        report_init(&rep, 100);
        if (validator_run(v, &in, &rep, NULL, NULL, NULL, &res, &e) != 0) {
            fprintf(stderr, "driver: validate: %s\n", e.msg);
            report_free(&rep);
            goto out;
        }
        t1 = now();
        printf("seconds=%.6f records=%llu valid=%llu invalid=%llu peak_rss_kb=%ld\n", t1 - t0,
               (unsigned long long)res.records, (unsigned long long)res.valid,
               (unsigned long long)res.invalid, peak_rss_kb());
        report_free(&rep);
        if (res.invalid || res.structural) {
            fprintf(stderr, "driver: validate: %llu invalid records\n",
                    (unsigned long long)res.invalid);
            goto out;
        }
    }
    rc = 0;
out:
    validator_free(v);
    diag_free(&d);
    profile_free(p);
    config_free(&cfg);
    return rc;
}

/* The typed rows of a file, packed: per value a kind byte, then an int64,
 * a double, or a uint32 length and the bytes. */
struct rows {
    unsigned char *buf;
    size_t len, cap;
    uint64_t n;
};

static void rows_put(struct rows *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->buf = realloc(r->buf, r->cap);
        if (!r->buf)
            abort();
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

static int keep_row(void *ctx, const struct row *row, struct werr *e)
{
    struct rows *r = ctx;
    (void)e;
    rows_put(r, &row->line, sizeof row->line);
    for (size_t i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        unsigned char k = (unsigned char)v->kind;
        uint32_t len = (uint32_t)v->len;
        rows_put(r, &k, 1);
        if (v->kind == VAL_INT)
            rows_put(r, &v->i, sizeof v->i);
        else if (v->kind == VAL_REAL)
            rows_put(r, &v->d, sizeof v->d);
        else if (v->kind == VAL_TEXT) {
            rows_put(r, &len, sizeof len);
            rows_put(r, v->s, v->len);
        }
    }
    r->n++;
    return 0;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "driver: floor: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* The rows into a fresh db; seconds from open to close, or < 0. */
static double insert_rows(const char *path, const struct columns *cols, const struct rows *r,
                          bool lineage)
{
    char sql[8192];
    size_t n = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    double t0, secs = -1;
    unlink(path);
    t0 = now();
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        exec(db, "PRAGMA page_size=16384") < 0 || exec(db, "PRAGMA journal_mode=WAL") < 0 ||
        exec(db, "PRAGMA synchronous=FULL") < 0)
        goto out;
    n = (size_t)snprintf(sql, sizeof sql, "CREATE TABLE t (");
    for (size_t i = 0; i < cols->n; i++)
        n +=
            (size_t)snprintf(sql + n, sizeof sql - n, "%s\"%s\" %s", i ? ", " : "", cols->v[i].name,
                             cols->v[i].type == COL_INTEGER ? "INTEGER"
                             : cols->v[i].type == COL_REAL  ? "REAL"
                                                            : "TEXT");
    snprintf(sql + n, sizeof sql - n, "%s)",
             lineage ? ", \"_wharf_intake\" TEXT NOT NULL, \"_wharf_line\" TEXT" : "");
    if (exec(db, "BEGIN IMMEDIATE") < 0 || exec(db, sql) < 0)
        goto out;
    n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO t VALUES (");
    for (size_t i = 0; i < cols->n + (lineage ? 2 : 0); i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?%zu", i ? ", " : "", i + 1);
    snprintf(sql + n, sizeof sql - n, ")");
    if (sqlite3_prepare_v2(db, sql, -1, &ins, NULL) != SQLITE_OK)
        goto out;
    if (lineage)
        sqlite3_bind_text(ins, (int)cols->n + 1, "01KFLOOR0000000000000000000", -1, SQLITE_STATIC);
    const unsigned char *p = r->buf;
    for (uint64_t k = 0; k < r->n; k++) {
        uint64_t line;
        char where[24];
        memcpy(&line, p, sizeof line);
        p += sizeof line;
        if (lineage)
            sqlite3_bind_text(ins, (int)cols->n + 2, where,
                              snprintf(where, sizeof where, "%llu", (unsigned long long)line),
                              SQLITE_STATIC);
        for (size_t i = 0; i < cols->n; i++) {
            int idx = (int)i + 1;
            int64_t iv;
            double dv;
            uint32_t len;
            switch (*p++) {
            case VAL_INT:
                memcpy(&iv, p, sizeof iv);
                p += sizeof iv;
                sqlite3_bind_int64(ins, idx, iv);
                break;
            case VAL_REAL:
                memcpy(&dv, p, sizeof dv);
                p += sizeof dv;
                sqlite3_bind_double(ins, idx, dv);
                break;
            case VAL_TEXT:
                memcpy(&len, p, sizeof len);
                p += sizeof len;
                sqlite3_bind_text(ins, idx, (const char *)p, (int)len, SQLITE_STATIC);
                p += len;
                break;
            default:
                sqlite3_bind_null(ins, idx);
            }
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "driver: floor: insert: %s\n", sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    ins = NULL;
    if (lineage && exec(db, "CREATE INDEX t_intake ON t (\"_wharf_intake\")") < 0)
        goto out;
    if (exec(db, "COMMIT") < 0)
        goto out;
    if (sqlite3_close(db) != SQLITE_OK)
        goto out;
    db = NULL;
    secs = now() - t0;
out:
    sqlite3_finalize(ins);
    if (db)
        sqlite3_close(db);
    return secs;
}

static int cmd_floor(const char *dir, const char *name, const char *file, const char *dbpath)
{
    struct wharf_config cfg = {0};
    struct profile *p = load(dir, name, &cfg);
    struct diags d = {0};
    struct validator *v = NULL;
    struct rows r = {0};
    struct report rep;
    struct validate_result res = {0};
    struct werr e = {0};
    char bare[4096] = "";
    int rc = 1;
    if (!p)
        return 1;
    report_init(&rep, 100);
    v = validator_compile(&cfg, p, &d);
    if (!v) {
        diags_print(&d);
        goto out;
    }
    struct validate_input in = {.path = file,
                                .display = file,
                                .format = p->format,
                                .delimiter = ',',
                                .quote = '"',
                                .header = true};
    if (validator_run(v, &in, &rep, keep_row, &r, NULL, &res, &e) != 0 || res.invalid ||
        res.structural) {
        fprintf(stderr, "driver: floor: validate: %s (%llu invalid)\n", e.msg,
                (unsigned long long)res.invalid);
        goto out;
    }
    const struct columns *cols = validator_columns(v, p->format);
    double secs = insert_rows(dbpath, cols, &r, true);
    snprintf(bare, sizeof bare, "%s-bare", dbpath);
    double bsecs = secs < 0 ? -1 : insert_rows(bare, cols, &r, false);
    if (secs < 0 || bsecs < 0)
        goto out;
    printf("seconds=%.6f bare_seconds=%.6f rows=%llu peak_rss_kb=%ld\n", secs, bsecs,
           (unsigned long long)r.n, peak_rss_kb());
    rc = 0;
out:
    if (*bare)
        unlink(bare);
    free(r.buf);
    report_free(&rep);
    validator_free(v);
    diag_free(&d);
    profile_free(p);
    config_free(&cfg);
    return rc;
}

static int cmd_fetch(const char *dir, const char *name, const char *dest)
{
    struct wharf_config cfg = {0};
    struct profile *p = load(dir, name, &cfg);
    struct source s = {0};
    struct drop_list l = {0};
    struct werr e = {0};
    char sha[SHA256_HEX_LEN];
    uint64_t bytes = 0;
    double t0, t1;
    int rc = 1;
    if (!p)
        return 1;
    if (source_open(&s, &cfg, p, &e) != 0) {
        fprintf(stderr, "driver: open: %s\n", e.msg);
        goto out;
    }
    if (s.ops->list(&s, &l, &e) != 0 || l.n == 0) {
        fprintf(stderr, "driver: list: %s\n", l.n ? e.msg : "no drop");
        goto close;
    }
    t0 = now();
    if (s.ops->fetch(&s, &l.v[0], dest, sha, &bytes, &e) != 0) {
        fprintf(stderr, "driver: fetch: %s\n", e.msg);
        goto close;
    }
    t1 = now();
    printf("seconds=%.6f bytes=%llu sha256=%s peak_rss_kb=%ld\n", t1 - t0,
           (unsigned long long)bytes, sha, peak_rss_kb());
    rc = 0;
close:
    drop_list_free(&l);
    source_close(&s);
out:
    profile_free(p);
    config_free(&cfg);
    return rc;
}

static int cmd_sha256(const char *file)
{
    char hex[SHA256_HEX_LEN];
    uint64_t size = 0;
    struct werr e = {0};
    double t0 = now(), t1;
    if (sha256_file(file, hex, &size, &e) != 0) {
        fprintf(stderr, "driver: sha256: %s\n", e.msg);
        return 1;
    }
    t1 = now();
    printf("seconds=%.6f bytes=%llu sha256=%s peak_rss_kb=%ld\n", t1 - t0, (unsigned long long)size,
           hex, peak_rss_kb());
    return 0;
}

/* One simulated node: claims and walks its intakes once the parent closes
 * the start pipe.  Exit 0 when every call succeeded. */
static int ledger_node_run(const char *dsn, int node, int intakes, int start_fd)
{
    static const enum intake_state path[] = {ST_FOUND,     ST_TAKEN,  ST_INSPECTED,
                                             ST_VALIDATED, ST_LOADED, ST_SEALED,
                                             ST_DONE};
    struct werr e = {0};
    char name[32], buf[1], tm[SHA256_HEX_LEN];
    struct ledger *l;
    snprintf(name, sizeof name, "bench-%d", node);
    ledger_identity(name, 60000);
    if (!(l = ledger_open_pg(dsn, &e))) {
        fprintf(stderr, "driver: ledger: %s\n", e.msg);
        return 1;
    }
    if (read(start_fd, buf, 1) < 0) /* EOF: go */
        return 1;
    for (int k = 0; k < intakes; k++) {
        char p[96];
        struct intake in = {0};
        struct chain_link cl;
        snprintf(p, sizeof p, "n%d-%ld/%d.csv", node, (long)getppid(), k);
        in.profile = (char *)"bench";
        in.source = (char *)"spool:/srv/drop";
        in.path = in.name = p;
        in.size = 1000;
        in.mtime_ns = k;
        if (ledger_set_durable(l, true, &e) < 0 || ledger_claim(l, &in, &e) != 1)
            goto fail;
        ledger_set_durable(l, false, &e);
        for (size_t i = 1; i < sizeof path / sizeof *path; i++) {
            if (path[i] == ST_SEALED) {
                snprintf(tm, sizeof tm, "%064x", (unsigned)(node * 1000003 + k));
                if (ledger_set_durable(l, true, &e) < 0 ||
                    ledger_chain_append(l, in.id, tm, &cl, &e) < 0)
                    goto fail;
            }
            if (ledger_transition(l, in.id, path[i - 1], path[i], NULL, NULL, &e) != 1)
                goto fail;
            if (path[i] == ST_SEALED)
                ledger_set_durable(l, false, &e);
        }
    }
    ledger_close(l);
    return 0;
fail:
    fprintf(stderr, "driver: node %d: %s\n", node, e.msg[0] ? e.msg : "refused");
    ledger_close(l);
    return 1;
}

static int cmd_ledger(const char *dsn, int nodes, int intakes)
{
    struct werr e = {0};
    struct ledger *l = ledger_open_pg(dsn, &e); /* creates or migrates it once */
    int go[2], rc = 0, status;
    double t0, t1;
    if (!l) {
        fprintf(stderr, "driver: ledger: %s\n", e.msg);
        return 1;
    }
    ledger_close(l);
    if (nodes < 1 || intakes < 1 || pipe(go) < 0)
        return 1;
    for (int n = 1; n <= nodes; n++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            _exit(ledger_node_run(dsn, n, intakes, go[0]));
        }
        if (pid < 0)
            return 1;
    }
    close(go[0]);
    sleep(1); /* the nodes connect */
    t0 = now();
    close(go[1]);
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status))
            rc = 1;
    t1 = now();
    printf("seconds=%.6f nodes=%d intakes=%d transactions=%d intakes_per_s=%.1f "
           "transactions_per_s=%.1f\n",
           t1 - t0, nodes, nodes * intakes, nodes * intakes * 8,
           nodes * intakes / (t1 - t0), nodes * intakes * 8 / (t1 - t0));
    return rc;
}

int main(int argc, char **argv)
{
    log_init(1, LOG_WARN);
    if (argc >= 5 && strcmp(argv[1], "validate") == 0)
        return cmd_validate(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 1);
    if (argc == 5 && strcmp(argv[1], "fetch") == 0)
        return cmd_fetch(argv[2], argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "sha256") == 0)
        return cmd_sha256(argv[2]);
    if (argc == 6 && strcmp(argv[1], "floor") == 0)
        return cmd_floor(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 5 && strcmp(argv[1], "ledger") == 0)
        return cmd_ledger(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: driver validate DIR PROFILE FILE [RUNS] | fetch DIR PROFILE DEST | "
                    "sha256 FILE | floor DIR PROFILE FILE DB | ledger DSN_FILE NODES INTAKES\n");
    return 2;
}
