/*
 * test_ledger: the SQLite ledger against its contract in ledger.h --
 * migrations, the unique claim (also raced by two processes), the state
 * compare-and-set, update/get, list filters, duplicate lookup, sightings,
 * the hash chain and its formula, kv, the integrity check; nodes and
 * leases (claims carry the node, expired leases taken over once, by one
 * node, a live one not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ledger/ledger.h"
#include "util/parse.h"
#include "util/sha256.h"

struct fx {
    char dir[64];
    char path[128]; /* the SQLite file, or (PostgreSQL) the test's dsn file */
    char schema[64];
    struct ledger *l;
};

/*
 * The backend under test: SQLite, or PostgreSQL when WHARF_TEST_LEDGER_PG
 * names a dsn file (tests/integration/ledger_pg.sh starts a server and runs
 * this binary so).  Each PostgreSQL test gets a schema of its own, named in
 * its dsn file's search_path, dropped by teardown.
 */
static char *pg_base;

static struct ledger *fx_open(const char *path, struct werr *e)
{
    return pg_base ? ledger_open_pg(path, e) : ledger_open_sqlite(path, e);
}

static int pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_base);
    PGresult *r;
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int pg_schema(struct fx *f)
{
    static int n;
    char sql[128];
    FILE *fp;
    snprintf(f->schema, sizeof f->schema, "t%ld_%d", (long)getpid(), n++);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
    if (pg_exec(sql) < 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/dsn", f->dir);
    if (!(fp = fopen(f->path, "w")))
        return -1;
    fprintf(fp, "%s options='-c search_path=%s'\n", pg_base, f->schema);
    return fclose(fp);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct werr e = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/wharf-ledger-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/ledger.db", f->dir);
    if (pg_base && pg_schema(f) < 0)
        return -1;
    f->l = fx_open(f->path, &e);
    if (!f->l) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d;
    struct dirent *de;
    ledger_close(f->l);
    if (pg_base && f->schema[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
        pg_exec(sql);
    }
    d = opendir(f->dir);
    while (d && (de = readdir(d))) {
        char p[512];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Claims a drop; returns ledger_claim's result, the id in id (if claimed). */
static int claim(struct ledger *l, const char *profile, const char *path, uint64_t size,
                 int64_t mtime, char id[ID_LEN])
{
    struct intake in = {0};
    struct werr e = {0};
    int r;
    in.profile = (char *)profile;
    in.source = (char *)"spool:/srv/drop";
    in.path = (char *)path;
    in.size = size;
    in.mtime_ns = mtime;
    r = ledger_claim(l, &in, &e);
    if (r < 0)
        fprintf(stderr, "claim: %s\n", e.msg);
    if (id)
        memcpy(id, in.id, ID_LEN);
    return r;
}

static void move(struct ledger *l, const char *id, enum intake_state from, enum intake_state to)
{
    struct werr e = {0};
    assert_int_equal(ledger_transition(l, id, from, to, NULL, NULL, &e), 1);
}

static void set_outcome(struct ledger *l, const char *id, enum outcome o, const char *sha)
{
    struct intake in;
    struct werr e = {0};
    assert_int_equal(ledger_get(l, id, &in, &e), 1);
    in.outcome = o;
    if (sha)
        snprintf(in.sha256, sizeof in.sha256, "%s", sha);
    assert_int_equal(ledger_update(l, &in, &e), 0);
    intake_clear(&in);
}

static int pragma_int(const char *path, const char *pragma)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- names and JSON ---- */

static void test_names(void **state)
{
    enum intake_state s;
    enum outcome o;
    int i;
    (void)state;
    for (i = 0; i < ST__COUNT; i++) {
        assert_int_equal(state_parse(state_name((enum intake_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_string_equal(state_name(ST_INSPECTED), "inspected");
    assert_string_equal(state_name(ST_FAILED), "failed");
    assert_int_equal(state_parse("skipped", &s), -1);
    assert_int_equal(state_parse("Found", &s), -1);
    assert_string_equal(outcome_name(OUT_DUPLICATE), "duplicate");
    assert_string_equal(outcome_name(OUT_NONE), "none");
    assert_int_equal(outcome_parse("rejected", &o), 0);
    assert_int_equal(o, OUT_REJECTED);
    assert_int_equal(outcome_parse("bogus", &o), -1);
}

static void test_intake_json(void **state)
{
    struct intake in = {0};
    json_t *j;
    (void)state;
    snprintf(in.id, sizeof in.id, "01JABCDEFGHJKMNPQRSTVWXYZ0");
    in.profile = strdup("acme");
    in.source = strdup("spool:/d");
    in.path = strdup("a/orders.csv");
    in.name = strdup("orders.csv");
    in.size = 42;
    in.mtime_ns = 1764336576123000000LL;
    in.state = ST_FAILED;
    in.failed_from = ST_VALIDATED;
    in.outcome = OUT_REJECTED;
    in.created_ms = 1764336576123LL;
    in.last_error = strdup("disk full");
    in.info = json_pack("{s:s}", "encoding", "utf-8");
    j = intake_json(&in);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "failed_from")), "validated");
    assert_string_equal(json_string_value(json_object_get(j, "outcome")), "rejected");
    assert_string_equal(json_string_value(json_object_get(j, "created")),
                        "2025-11-28T13:29:36.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "mtime")), "2025-11-28T13:29:36.123Z");
    assert_int_equal(json_integer_value(json_object_get(j, "size")), 42);
    assert_true(json_is_null(json_object_get(j, "sha256")));
    assert_true(json_is_null(json_object_get(j, "next_attempt")));
    assert_string_equal(json_string_value(json_object_get(j, "last_error")), "disk full");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "info"), "encoding")),
                        "utf-8");
    json_decref(j);
    intake_clear(&in);
    assert_null(in.profile);
    assert_null(in.info);
    assert_int_equal(in.id[0], 0);
}

/* ---- migrations ---- */

static void test_migrate_reopen(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake in;
    char id[ID_LEN];
    sqlite3 *db;
    int v;

    v = pragma_int(f->path, "user_version");
    assert_true(v >= 1);
    assert_int_equal(claim(f->l, "acme", "orders.csv", 10, 1000, id), 1);
    ledger_close(f->l);

    f->l = ledger_open_sqlite(f->path, &e);
    assert_non_null(f->l);
    assert_int_equal(pragma_int(f->path, "user_version"), v);
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    assert_string_equal(in.name, "orders.csv");
    intake_clear(&in);
    ledger_close(f->l);
    f->l = NULL;

    /* A file from a newer wharf is refused, not "migrated". */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(ledger_open_sqlite(f->path, &e));
    assert_non_null(strstr(e.msg, "newer"));

    /* Back to the current version: opens again, data intact. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    f->l = ledger_open_sqlite(f->path, &e);
    assert_non_null(f->l);
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    intake_clear(&in);
}

static void test_open_bad_path(void **state)
{
    struct werr e = {0};
    (void)state;
    assert_null(ledger_open_sqlite("/nonexistent-dir/wharf/ledger.db", &e));
    assert_non_null(strstr(e.msg, "/nonexistent-dir/wharf/ledger.db"));
}

/* ---- claim ---- */

static int count_event(void *ctx, int64_t t, const char *kind, const char *detail)
{
    (void)t;
    (void)kind;
    (void)detail;
    (*(int *)ctx)++;
    return 0;
}

static void test_claim_duplicate(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake in = {0}, got;
    char a[ID_LEN], b[ID_LEN], c[ID_LEN];
    int n = 0;

    assert_int_equal(claim(f->l, "acme", "in/orders.csv", 10, 1000, a), 1);
    assert_true(id_valid(a));
    assert_int_equal(claim(f->l, "acme", "in/orders.csv", 10, 1000, b), 0);
    assert_int_equal(b[0], 0);
    /* Same path, new content (size/mtime): a new drop. */
    assert_int_equal(claim(f->l, "acme", "in/orders.csv", 11, 2000, b), 1);
    assert_string_not_equal(a, b);
    /* Other profile, same file: its own drop. */
    assert_int_equal(claim(f->l, "other", "in/orders.csv", 10, 1000, c), 1);

    assert_int_equal(ledger_get(f->l, a, &got, &e), 1);
    assert_int_equal(got.state, ST_FOUND);
    assert_string_equal(got.name, "orders.csv");
    assert_string_equal(got.profile, "acme");
    assert_int_equal(got.size, 10);
    assert_int_equal(got.mtime_ns, 1000);
    assert_true(got.created_ms > 0);
    intake_clear(&got);
    assert_int_equal(ledger_events(f->l, a, count_event, &n, &e), 0);
    assert_int_equal(n, 1);

    /* A replay of the same drop: source "replay", path = replayed id. */
    in.profile = "acme";
    in.source = "replay";
    in.path = a;
    in.name = "orders.csv";
    in.size = 10;
    in.mtime_ns = 1000;
    in.replay_of = a;
    assert_int_equal(ledger_claim(f->l, &in, &e), 1);
    assert_int_equal(ledger_claim(f->l, &in, &e), 0);

    /* Missing required fields is an error, not a claim. */
    memset(&in, 0, sizeof in);
    in.profile = "acme";
    assert_int_equal(ledger_claim(f->l, &in, &e), -1);
}

/*
 * Two processes, each with its own ledger, claim the same drops round by
 * round; a process-shared barrier makes them try each drop at the same
 * moment.  Every round must have exactly one winner.
 */
#define RACE_ROUNDS 150

struct race {
    pthread_barrier_t barrier;
    int result[2][RACE_ROUNDS];
    char ids[RACE_ROUNDS][ID_LEN];
};

static void race_child(const char *path, struct race *rc, int who, bool transitions)
{
    struct werr e = {0};
    struct ledger *l = fx_open(path, &e);
    int i;
    if (!l)
        _exit(2);
    for (i = 0; i < RACE_ROUNDS; i++) {
        char p[32];
        pthread_barrier_wait(&rc->barrier);
        if (transitions) {
            rc->result[who][i] =
                ledger_transition(l, rc->ids[i], ST_FOUND, ST_TAKEN, "taken", NULL, &e);
        } else {
            snprintf(p, sizeof p, "race/%d.csv", i);
            rc->result[who][i] = claim(l, "race", p, (uint64_t)i, 77, NULL);
        }
    }
    ledger_close(l);
    _exit(0);
}

static void race(struct fx *f, struct race *rc, bool transitions)
{
    pid_t pid[2];
    int w, i, status;
    for (w = 0; w < 2; w++) {
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0)
            race_child(f->path, rc, w, transitions);
    }
    for (w = 0; w < 2; w++) {
        assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    for (i = 0; i < RACE_ROUNDS; i++) {
        assert_true(rc->result[0][i] == 0 || rc->result[0][i] == 1);
        assert_true(rc->result[1][i] == 0 || rc->result[1][i] == 1);
        assert_int_equal(rc->result[0][i] + rc->result[1][i], 1);
    }
}

static int count_intake(void *ctx, const struct intake *in)
{
    (void)in;
    (*(int *)ctx)++;
    return 0;
}

/* A listing's claims in one call: the ones claimed already are told apart,
 * the new ones get ids and their "found" events, as with ledger_claim. */
static void test_claim_batch(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake v[3], got;
    int claimed[3], n = 0;
    char a[ID_LEN];
    const char *paths[3] = {"in/a.csv", "in/b.csv", "in/c.csv"};

    assert_int_equal(claim(f->l, "acme", "in/b.csv", 10, 1000, a), 1);
    memset(v, 0, sizeof v);
    for (int i = 0; i < 3; i++) {
        v[i].profile = (char *)"acme";
        v[i].source = (char *)"spool:/srv/drop";
        v[i].path = (char *)paths[i];
        v[i].size = 10;
        v[i].mtime_ns = 1000;
    }
    assert_int_equal(ledger_claim_batch(f->l, v, 3, claimed, NULL, &e), 0);
    assert_int_equal(claimed[0], 1);
    assert_int_equal(claimed[1], 0);
    assert_int_equal(claimed[2], 1);
    assert_true(id_valid(v[0].id));
    assert_int_equal(v[1].id[0], 0);
    assert_true(id_valid(v[2].id));
    assert_string_not_equal(v[0].id, v[2].id);
    assert_int_equal(ledger_get(f->l, v[2].id, &got, &e), 1);
    assert_int_equal(got.state, ST_FOUND);
    assert_string_equal(got.name, "c.csv");
    intake_clear(&got);
    assert_int_equal(ledger_events(f->l, v[0].id, count_event, &n, &e), 0);
    assert_int_equal(n, 1);
    /* the same listing again: nothing new */
    for (int i = 0; i < 3; i++)
        v[i].id[0] = 0;
    assert_int_equal(ledger_claim_batch(f->l, v, 3, claimed, NULL, &e), 0);
    assert_int_equal(claimed[0] + claimed[1] + claimed[2], 0);
}

static void test_claim_race(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake_filter flt = {.profile = "race", .state = -1};
    pthread_barrierattr_t ba;
    struct race *rc =
        mmap(NULL, sizeof *rc, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int i, n = 0;

    assert_true(rc != MAP_FAILED);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&rc->barrier, &ba, 2);

    race(f, rc, false);
    assert_int_equal(ledger_list(f->l, &flt, count_intake, &n, &e), 0);
    assert_int_equal(n, RACE_ROUNDS);

    /* Now race the compare-and-set on intakes the parent claimed. */
    for (i = 0; i < RACE_ROUNDS; i++) {
        char p[32];
        snprintf(p, sizeof p, "cas/%d.csv", i);
        assert_int_equal(claim(f->l, "cas", p, 1, 1, rc->ids[i]), 1);
    }
    race(f, rc, true);
    for (i = 0; i < RACE_ROUNDS; i++) {
        struct intake in;
        int ev = 0;
        assert_int_equal(ledger_get(f->l, rc->ids[i], &in, &e), 1);
        assert_int_equal(in.state, ST_TAKEN);
        intake_clear(&in);
        assert_int_equal(ledger_events(f->l, rc->ids[i], count_event, &ev, &e), 0);
        assert_int_equal(ev, 2); /* found, taken: the loser recorded nothing */
    }
    pthread_barrier_destroy(&rc->barrier);
    munmap(rc, sizeof *rc);
}

/* ---- transitions ---- */

struct evlog {
    int n;
    char kinds[8][32];
    char details[8][128];
    int64_t times[8];
};

static int log_event(void *ctx, int64_t t, const char *kind, const char *detail)
{
    struct evlog *g = ctx;
    if (g->n == 8)
        return 1;
    g->times[g->n] = t;
    snprintf(g->kinds[g->n], sizeof g->kinds[0], "%s", kind);
    snprintf(g->details[g->n], sizeof g->details[0], "%s", detail ? detail : "");
    g->n++;
    return 0;
}

static void test_transition_cas(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct evlog g = {0};
    struct intake in;
    char id[ID_LEN];

    assert_int_equal(claim(f->l, "acme", "x.csv", 5, 5, id), 1);
    assert_int_equal(ledger_transition(f->l, id, ST_FOUND, ST_TAKEN, "taken",
                                       json_pack("{s:s}", "sha256", "ab"), &e),
                     1);
    /* Wrong from: nothing moves, nothing recorded. */
    assert_int_equal(ledger_transition(f->l, id, ST_FOUND, ST_TAKEN, "taken", NULL, &e), 0);
    assert_int_equal(
        ledger_transition(f->l, id, ST_VALIDATED, ST_LOADED, "loaded", json_object(), &e), 0);
    /* Unknown intake: 0 as well. */
    assert_int_equal(
        ledger_transition(f->l, "01AAAAAAAAAAAAAAAAAAAAAAAA", ST_FOUND, ST_TAKEN, NULL, NULL, &e),
        0);
    assert_int_equal(ledger_event(f->l, id, "retry", json_pack("{s:i}", "attempt", 2), &e), 0);
    assert_int_equal(ledger_transition(f->l, id, ST_TAKEN, ST_FAILED, "failed",
                                       json_pack("{s:s}", "error", "boom"), &e),
                     1);
    assert_int_equal(ledger_event(f->l, "01AAAAAAAAAAAAAAAAAAAAAAAA", "x", NULL, &e), -1);

    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    assert_int_equal(in.state, ST_FAILED);
    assert_int_equal(in.failed_from, ST_TAKEN);
    assert_true(in.updated_ms >= in.created_ms);
    intake_clear(&in);

    assert_int_equal(ledger_events(f->l, id, log_event, &g, &e), 0);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.kinds[0], "found");
    assert_string_equal(g.kinds[1], "taken");
    assert_string_equal(g.details[1], "{\"sha256\":\"ab\"}");
    assert_string_equal(g.kinds[2], "retry");
    assert_string_equal(g.details[2], "{\"attempt\":2}");
    assert_string_equal(g.kinds[3], "failed");
    assert_string_equal(g.details[3], "{\"error\":\"boom\"}");
    assert_true(g.times[0] <= g.times[1] && g.times[1] <= g.times[2] && g.times[2] <= g.times[3]);

    /* kind defaults to the new state's name; fn returning non-zero stops. */
    move(f->l, id, ST_FAILED, ST_TAKEN);
    memset(&g, 0, sizeof g);
    g.n = 7;
    assert_int_equal(ledger_events(f->l, id, log_event, &g, &e), 0);
    assert_int_equal(g.n, 8);
    assert_string_equal(g.kinds[7], "found");
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    assert_int_equal(in.state, ST_TAKEN);
    assert_int_equal(in.failed_from, ST_FOUND); /* cleared when leaving failed */
    intake_clear(&in);
}

/* One transaction for a step's save and move: the fields are written only
 * when the intake moved. */
static void test_transition_update(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct evlog g = {0};
    struct intake in;
    char id[ID_LEN];

    assert_int_equal(claim(f->l, "acme", "y.csv", 5, 5, id), 1);
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    snprintf(in.sha256, sizeof in.sha256, "%064d", 7);
    in.rows = 42;
    in.info = json_pack("{s:s}", "bag", "b1");
    assert_int_equal(ledger_transition_update(f->l, &in, ST_FOUND, ST_TAKEN, "taken",
                                              json_pack("{s:i}", "bytes", 5), &e),
                     1);
    /* not moved (wrong from): nothing of in is written */
    in.rows = 99;
    json_object_set_new(in.info, "bag", json_string("stale"));
    assert_int_equal(
        ledger_transition_update(f->l, &in, ST_FOUND, ST_INSPECTED, "inspected", NULL, &e), 0);
    intake_clear(&in);

    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    assert_int_equal(in.state, ST_TAKEN);
    assert_int_equal(in.rows, 42);
    assert_string_equal(json_string_value(json_object_get(in.info, "bag")), "b1");
    assert_int_equal(strlen(in.sha256), 64);
    intake_clear(&in);
    assert_int_equal(ledger_events(f->l, id, log_event, &g, &e), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.kinds[1], "taken");
    assert_string_equal(g.details[1], "{\"bytes\":5}");
}

/* ---- update / get ---- */

static void test_update_get(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake in, got;
    char id[ID_LEN], other[ID_LEN], prefix[32];
    int i;

    assert_int_equal(claim(f->l, "acme", "dir/orders.csv", 100, 123456789, id), 1);
    usleep(5000); /* a later millisecond: the ids differ in their time part */
    assert_int_equal(claim(f->l, "acme", "dir/other.csv", 100, 1, other), 1);
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    snprintf(in.sha256, sizeof in.sha256, "%064d", 7);
    in.outcome = OUT_REJECTED;
    in.attempts = 3;
    in.next_attempt_ms = 1700000000000LL;
    in.last_error = strdup("line 4: bad date");
    in.rows = 12345678901ULL;
    in.bag = strdup("var/rejects/x");
    in.replayed_by = strdup(other);
    in.info = json_pack("{s:s, s:{s:i}}", "encoding", "windows-1252", "csv", "columns", 7);
    assert_int_equal(ledger_update(f->l, &in, &e), 0);

    assert_int_equal(ledger_get(f->l, id, &got, &e), 1);
    assert_string_equal(got.id, id);
    assert_string_equal(got.sha256, in.sha256);
    assert_int_equal(got.outcome, OUT_REJECTED);
    assert_int_equal(got.attempts, 3);
    assert_int_equal(got.next_attempt_ms, 1700000000000LL);
    assert_string_equal(got.last_error, "line 4: bad date");
    assert_int_equal(got.rows, 12345678901ULL);
    assert_string_equal(got.bag, "var/rejects/x");
    assert_string_equal(got.replayed_by, other);
    assert_null(got.replay_of);
    assert_true(json_equal(got.info, in.info));
    assert_int_equal(got.size, 100);
    assert_int_equal(got.mtime_ns, 123456789);
    assert_string_equal(got.path, "dir/orders.csv");
    intake_clear(&got);

    /* Prefix lookup: the two ids share their time part, so take enough of
     * the id to be unique; lower case works too. */
    for (i = 0; id[i] == other[i]; i++)
        ;
    assert_true(i < 20);
    snprintf(prefix, sizeof prefix, "%.*s", i + 1 < 6 ? 6 : i + 1, id);
    {
        char lower[32];
        int k;
        assert_int_equal(ledger_get(f->l, prefix, &got, &e), 1);
        assert_string_equal(got.id, id);
        intake_clear(&got);
        for (k = 0; prefix[k]; k++)
            lower[k] = (char)(prefix[k] >= 'A' && prefix[k] <= 'Z' ? prefix[k] + 32 : prefix[k]);
        lower[k] = 0;
        assert_int_equal(ledger_get(f->l, lower, &got, &e), 1);
        assert_string_equal(got.id, id);
        intake_clear(&got);
    }
    /* The common part of both ids is ambiguous (if long enough). */
    if (i >= 6) {
        snprintf(prefix, sizeof prefix, "%.*s", i, id);
        assert_int_equal(ledger_get(f->l, prefix, &got, &e), -1);
        assert_non_null(strstr(e.msg, "ambiguous"));
    }
    assert_int_equal(ledger_get(f->l, "01J", &got, &e), -1);
    assert_int_equal(ledger_get(f->l, "ZZZZZZZZ", &got, &e), 0);
    assert_int_equal(ledger_get(f->l, "01AAAAAAAAAAAAAAAAAAAAAAAA", &got, &e), 0);

    /* Clearing fields stores them as absent. */
    free(in.last_error);
    in.last_error = NULL;
    in.sha256[0] = 0;
    assert_int_equal(ledger_update(f->l, &in, &e), 0);
    assert_int_equal(ledger_get(f->l, id, &got, &e), 1);
    assert_null(got.last_error);
    assert_string_equal(got.sha256, "");
    intake_clear(&got);

    /* Unknown intake and a dangling replay link are errors. */
    snprintf(in.id, sizeof in.id, "01AAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(ledger_update(f->l, &in, &e), -1);
    assert_int_equal(ledger_get(f->l, id, &got, &e), 1);
    free(got.replay_of);
    got.replay_of = strdup("01AAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(ledger_update(f->l, &got, &e), -1);
    intake_clear(&got);
    intake_clear(&in);
}

/* ---- list ---- */

struct collect {
    int n, stop_at;
    char ids[400][ID_LEN];
};

static int collect(void *ctx, const struct intake *in)
{
    struct collect *c = ctx;
    memcpy(c->ids[c->n++], in->id, ID_LEN);
    return c->stop_at && c->n >= c->stop_at;
}

static int list(struct ledger *l, struct intake_filter flt, struct collect *c)
{
    struct werr e = {0};
    memset(c, 0, sizeof *c);
    assert_int_equal(ledger_list(l, &flt, collect, c, &e), 0);
    return c->n;
}

static void test_list_filters(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct collect *c = calloc(1, sizeof *c);
    char a[ID_LEN], b[ID_LEN], r1[ID_LEN], r2[ID_LEN], d[ID_LEN], x[ID_LEN];
    int64_t t0;
    int i;

    assert_int_equal(claim(f->l, "acme", "a", 1, 1, a), 1); /* stays found */
    assert_int_equal(claim(f->l, "acme", "b", 1, 1, b), 1); /* loaded, sealed, done */
    move(f->l, b, ST_FOUND, ST_TAKEN);
    move(f->l, b, ST_TAKEN, ST_INSPECTED);
    move(f->l, b, ST_INSPECTED, ST_VALIDATED);
    move(f->l, b, ST_VALIDATED, ST_LOADED);
    set_outcome(f->l, b, OUT_LOADED, NULL);
    t0 = now_ms();
    move(f->l, b, ST_LOADED, ST_SEALED);
    move(f->l, b, ST_SEALED, ST_DONE);
    assert_int_equal(claim(f->l, "acme", "r1", 1, 1, r1), 1); /* rejected, replayed */
    assert_int_equal(claim(f->l, "acme", "r2", 1, 1, r2), 1); /* rejected */
    for (i = 0; i < 2; i++) {
        const char *id = i ? r2 : r1;
        move(f->l, id, ST_FOUND, ST_TAKEN);
        move(f->l, id, ST_TAKEN, ST_INSPECTED);
        move(f->l, id, ST_INSPECTED, ST_REJECTED);
        set_outcome(f->l, id, OUT_REJECTED, NULL);
        move(f->l, id, ST_REJECTED, ST_SEALED);
    }
    {
        struct intake in;
        assert_int_equal(ledger_get(f->l, r1, &in, &e), 1);
        in.replayed_by = strdup(a);
        assert_int_equal(ledger_update(f->l, &in, &e), 0);
        intake_clear(&in);
    }
    assert_int_equal(claim(f->l, "acme", "d", 1, 1, d), 1); /* failed */
    move(f->l, d, ST_FOUND, ST_FAILED);
    assert_int_equal(claim(f->l, "zeta", "x", 1, 1, x), 1);

    assert_int_equal(list(f->l, (struct intake_filter){.state = -1}, c), 6);
    for (i = 1; i < c->n; i++)
        assert_true(strcmp(c->ids[i - 1], c->ids[i]) < 0);
    assert_int_equal(list(f->l, (struct intake_filter){.profile = "acme", .state = -1}, c), 5);
    assert_int_equal(list(f->l, (struct intake_filter){.profile = "zeta", .state = -1}, c), 1);
    assert_string_equal(c->ids[0], x);
    assert_int_equal(list(f->l, (struct intake_filter){.state = ST_SEALED}, c), 2);
    assert_string_equal(c->ids[0], r1);
    assert_string_equal(c->ids[1], r2);
    assert_int_equal(list(f->l, (struct intake_filter){.state = -1, .unfinished = true}, c), 4);
    assert_string_equal(c->ids[0], a);
    assert_string_equal(c->ids[1], r1);
    assert_string_equal(c->ids[2], r2);
    assert_string_equal(c->ids[3], x);
    assert_int_equal(list(f->l, (struct intake_filter){.state = -1, .rejects = true}, c), 1);
    assert_string_equal(c->ids[0], r2);
    assert_int_equal(list(f->l, (struct intake_filter){.state = -1, .since_ms = t0}, c), 3);
    assert_string_equal(c->ids[0], b);
    assert_int_equal(
        list(f->l, (struct intake_filter){.state = -1, .since_ms = now_ms() + 60000}, c), 0);
    assert_int_equal(list(f->l, (struct intake_filter){.state = -1, .limit = 2}, c), 2);
    assert_string_equal(c->ids[0], a);
    assert_string_equal(c->ids[1], b);
    assert_int_equal(
        list(f->l, (struct intake_filter){.profile = "acme", .state = ST_DONE, .unfinished = true},
             c),
        0);

    /* More rows than one page, and fn stopping the walk. */
    for (i = 0; i < 300; i++) {
        char p[16];
        snprintf(p, sizeof p, "many/%d", i);
        assert_int_equal(claim(f->l, "many", p, 1, 1, NULL), 1);
    }
    assert_int_equal(list(f->l, (struct intake_filter){.profile = "many", .state = -1}, c), 300);
    for (i = 1; i < c->n; i++)
        assert_true(strcmp(c->ids[i - 1], c->ids[i]) < 0);
    assert_int_equal(
        list(f->l, (struct intake_filter){.profile = "many", .state = -1, .limit = 130}, c), 130);
    memset(c, 0, sizeof *c);
    c->stop_at = 5;
    {
        struct intake_filter flt = {.profile = "many", .state = -1};
        assert_int_equal(ledger_list(f->l, &flt, collect, c, &e), 0);
    }
    assert_int_equal(c->n, 5);
    free(c);
}

/* A callback may write to the ledger while the walk goes on. */
static int fail_each(void *ctx, const struct intake *in)
{
    struct ledger *l = ctx;
    struct werr e = {0};
    return ledger_transition(l, in->id, ST_FOUND, ST_FAILED, "parked", NULL, &e) == 1 ? 0 : 1;
}

static void test_list_callback_writes(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake_filter flt = {.state = ST_FOUND};
    struct collect *c = calloc(1, sizeof *c);
    int i;
    for (i = 0; i < 200; i++) {
        char p[16];
        snprintf(p, sizeof p, "w/%d", i);
        assert_int_equal(claim(f->l, "w", p, 1, 1, NULL), 1);
    }
    assert_int_equal(ledger_list(f->l, &flt, fail_each, f->l, &e), 0);
    assert_int_equal(list(f->l, (struct intake_filter){.state = ST_FAILED}, c), 200);
    assert_int_equal(list(f->l, (struct intake_filter){.state = ST_FOUND}, c), 0);
    free(c);
}

/* ---- duplicates ---- */

static void test_find_loaded(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    char a[ID_LEN], b[ID_LEN], c[ID_LEN], id[ID_LEN];
    char sha[SHA256_HEX_LEN], sha2[SHA256_HEX_LEN];

    sha256_hex("one", 3, sha);
    sha256_hex("two", 3, sha2);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 0);

    /* Taken with that content but not loaded: not a duplicate. */
    assert_int_equal(claim(f->l, "acme", "a", 1, 1, a), 1);
    move(f->l, a, ST_FOUND, ST_TAKEN);
    set_outcome(f->l, a, OUT_NONE, sha);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 0);

    /* Rejected content is not "loaded". */
    assert_int_equal(claim(f->l, "acme", "b", 1, 1, b), 1);
    move(f->l, b, ST_FOUND, ST_TAKEN);
    move(f->l, b, ST_TAKEN, ST_INSPECTED);
    move(f->l, b, ST_INSPECTED, ST_REJECTED);
    set_outcome(f->l, b, OUT_REJECTED, sha);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 0);

    assert_int_equal(claim(f->l, "acme", "c", 1, 1, c), 1);
    move(f->l, c, ST_FOUND, ST_TAKEN);
    move(f->l, c, ST_TAKEN, ST_INSPECTED);
    move(f->l, c, ST_INSPECTED, ST_VALIDATED);
    set_outcome(f->l, c, OUT_LOADED, sha);
    /* outcome set but not yet in state loaded: not yet. */
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 0);
    move(f->l, c, ST_VALIDATED, ST_LOADED);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 1);
    assert_string_equal(id, c);
    move(f->l, c, ST_LOADED, ST_SEALED);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 1);
    /* Failed while sealing: its rows are loaded all the same. */
    move(f->l, c, ST_SEALED, ST_FAILED);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha, id, &e), 1);
    assert_string_equal(id, c);
    /* Other profile, other content: no. */
    assert_int_equal(ledger_find_loaded(f->l, "other", sha, id, &e), 0);
    assert_int_equal(ledger_find_loaded(f->l, "acme", sha2, id, &e), 0);
}

/* ---- sightings ---- */

static void test_sightings(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    int64_t first = 0;

    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 10, 100, 1000, &first, &e), 0);
    assert_int_equal(first, 1000);
    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 10, 100, 5000, &first, &e), 0);
    assert_int_equal(first, 1000);
    /* Grew: the stability clock restarts. */
    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 20, 100, 6000, &first, &e), 0);
    assert_int_equal(first, 6000);
    /* Touched (mtime only): restarts too. */
    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 20, 200, 7000, &first, &e), 0);
    assert_int_equal(first, 7000);
    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 20, 200, 9000, &first, &e), 0);
    assert_int_equal(first, 7000);
    /* Same path in another profile is separate. */
    assert_int_equal(ledger_sighting(f->l, "other", "a.csv", 20, 200, 9500, &first, &e), 0);
    assert_int_equal(first, 9500);

    assert_int_equal(ledger_sighting(f->l, "acme", "b.csv", 1, 1, 2000, &first, &e), 0);
    /* b last seen at 2000, a at 9000: pruning before 8000 forgets only b. */
    assert_int_equal(ledger_sightings_prune(f->l, "acme", 8000, &e), 0);
    assert_int_equal(ledger_sighting(f->l, "acme", "b.csv", 1, 1, 10000, &first, &e), 0);
    assert_int_equal(first, 10000);
    assert_int_equal(ledger_sighting(f->l, "acme", "a.csv", 20, 200, 10000, &first, &e), 0);
    assert_int_equal(first, 7000);
    /* NULL profile prunes every profile. */
    assert_int_equal(ledger_sightings_prune(f->l, NULL, 20000, &e), 0);
    assert_int_equal(ledger_sighting(f->l, "other", "a.csv", 20, 200, 30000, &first, &e), 0);
    assert_int_equal(first, 30000);
}

/* ---- the hash chain ---- */

struct walk {
    int n;
    struct chain_link links[8];
};

static int walk_fn(void *ctx, const struct chain_link *cl)
{
    struct walk *w = ctx;
    if (w->n < 8)
        w->links[w->n] = *cl;
    w->n++;
    return 0;
}

static void test_chain(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct chain_link cl, again;
    struct walk w = {0};
    char ids[3][ID_LEN], tm[3][SHA256_HEX_LEN], expect[SHA256_HEX_LEN], buf[129];
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";
    int i;

    /* The formula against a value computed outside wharf:
     *   printf %s%s 000...0 e3b0c442...b855 | sha256sum */
    chain_link_compute(zeros, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                       expect);
    assert_string_equal(expect, "a52a21f725cb0dd2daf7c11bd583b94248c564712c1daa5b86d30cb17847aa11");

    for (i = 0; i < 3; i++) {
        char p[8], data[8];
        snprintf(p, sizeof p, "c%d", i);
        snprintf(data, sizeof data, "bag%d", i);
        assert_int_equal(claim(f->l, "acme", p, 1, 1, ids[i]), 1);
        sha256_hex(data, strlen(data), tm[i]);
        assert_int_equal(ledger_chain_append(f->l, ids[i], tm[i], &cl, &e), 0);
        assert_int_equal(cl.seq, i + 1);
        assert_string_equal(cl.intake, ids[i]);
        assert_string_equal(cl.tagmanifest, tm[i]);
    }
    /* Idempotent: the same intake again returns its row unchanged. */
    assert_int_equal(ledger_chain_append(f->l, ids[1], tm[0], &again, &e), 0);
    assert_int_equal(again.seq, 2);
    assert_string_equal(again.tagmanifest, tm[1]);

    assert_int_equal(ledger_chain_walk(f->l, walk_fn, &w, &e), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.links[0].prev, zeros);
    assert_string_equal(again.link, w.links[1].link);
    for (i = 0; i < 3; i++) {
        assert_int_equal(w.links[i].seq, i + 1);
        assert_string_equal(w.links[i].intake, ids[i]);
        if (i > 0)
            assert_string_equal(w.links[i].prev, w.links[i - 1].link);
        /* Independently: sha256 of the 128 ASCII characters prev || tm. */
        assert_int_equal(strlen(w.links[i].prev), 64);
        memcpy(buf, w.links[i].prev, 64);
        memcpy(buf + 64, tm[i], 64);
        buf[128] = 0;
        sha256_hex(buf, 128, expect);
        assert_string_equal(w.links[i].link, expect);
        assert_true(w.links[i].time_ms > 0);
    }

    /* Bad input: not a hash, unknown intake. */
    assert_int_equal(ledger_chain_append(f->l, ids[0], "xyz", &cl, &e), -1);
    assert_int_equal(ledger_chain_append(f->l, "01AAAAAAAAAAAAAAAAAAAAAAAA", tm[0], &cl, &e), -1);
    memset(&w, 0, sizeof w);
    assert_int_equal(ledger_chain_walk(f->l, walk_fn, &w, &e), 0);
    assert_int_equal(w.n, 3);
}

/* ---- kv and check ---- */

static void test_kv_check(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    char *v = (char *)"junk";
    char *res = NULL;

    assert_int_equal(ledger_kv_get(f->l, "pause.acme", &v, &e), 0);
    assert_null(v);
    assert_int_equal(ledger_kv_set(f->l, "pause.acme", "1", &e), 0);
    assert_int_equal(ledger_kv_set(f->l, "pause.acme", "until 2026-01-01", &e), 0);
    assert_int_equal(ledger_kv_get(f->l, "pause.acme", &v, &e), 0);
    assert_string_equal(v, "until 2026-01-01");
    free(v);
    assert_int_equal(ledger_kv_set(f->l, "pause.acme", NULL, &e), 0);
    assert_int_equal(ledger_kv_get(f->l, "pause.acme", &v, &e), 0);
    assert_null(v);

    assert_int_equal(claim(f->l, "acme", "k", 1, 1, NULL), 1);
    assert_int_equal(ledger_check(f->l, &res, &e), 0);
    assert_string_equal(res, "ok");
    free(res);
}

/* While another process holds the write lock, reads go on (WAL) and a write
 * gives up after the busy timeout with a transient error. */
static void test_locked_is_transient(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct intake in;
    char id[ID_LEN];
    sqlite3 *db;
    int64_t t0;

    assert_int_equal(claim(f->l, "acme", "lock", 1, 1, id), 1);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(ledger_get(f->l, id, &in, &e), 1);
    intake_clear(&in);
    t0 = now_ms();
    werr_set(&e, "not yet");
    assert_int_equal(ledger_transition(f->l, id, ST_FOUND, ST_TAKEN, NULL, NULL, &e), -1);
    assert_true(e.transient);
    assert_int_equal(e.kind, WERR_BUSY);
    assert_true(now_ms() - t0 >= 5000);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* The lock gone, the same call succeeds. */
    assert_int_equal(ledger_transition(f->l, id, ST_FOUND, ST_TAKEN, NULL, NULL, &e), 1);
}

/* Several processes opening (creating, migrating) a fresh file at once all
 * succeed, and the file ends at one schema version. */
static void test_open_race(void **state)
{
    struct fx *f = *state;
    pthread_barrierattr_t ba;
    pthread_barrier_t *b =
        mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char path[160];
    int round, w, status;

    assert_true(b != MAP_FAILED);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(b, &ba, 4);
    for (round = 0; round < 10; round++) {
        pid_t pid[4];
        snprintf(path, sizeof path, "%s/fresh%d.db", f->dir, round);
        for (w = 0; w < 4; w++) {
            pid[w] = fork();
            assert_true(pid[w] >= 0);
            if (pid[w] == 0) {
                struct werr e = {0};
                struct ledger *l;
                pthread_barrier_wait(b);
                l = ledger_open_sqlite(path, &e);
                if (!l) {
                    fprintf(stderr, "open: %s\n", e.msg);
                    _exit(2);
                }
                if (claim(l, "p", "same", 1, 1, NULL) < 0)
                    _exit(3);
                ledger_close(l);
                _exit(0);
            }
        }
        for (w = 0; w < 4; w++) {
            assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        assert_int_equal(pragma_int(path, "user_version"), pragma_int(f->path, "user_version"));
    }
    pthread_barrier_destroy(b);
    munmap(b, sizeof *b);
}

/* ---- PostgreSQL only ---- */

/* Several nodes opening (creating, migrating) a fresh ledger at once all
 * succeed (the migration runs under an advisory lock), and a schema newer
 * than this wharf is refused by name. */
static void test_pg_open_race(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    pthread_barrierattr_t ba;
    pthread_barrier_t *b =
        mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char sql[160];
    int round, w, status;

    assert_true(b != MAP_FAILED);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(b, &ba, 4);
    for (round = 0; round < 5; round++) {
        pid_t pid[4];
        ledger_close(f->l);
        f->l = NULL;
        snprintf(sql, sizeof sql, "DROP SCHEMA %.60s CASCADE; CREATE SCHEMA %.60s", f->schema,
                 f->schema);
        assert_int_equal(pg_exec(sql), 0);
        for (w = 0; w < 4; w++) {
            pid[w] = fork();
            assert_true(pid[w] >= 0);
            if (pid[w] == 0) {
                struct ledger *l;
                pthread_barrier_wait(b);
                if (!(l = fx_open(f->path, &e))) {
                    fprintf(stderr, "open: %s\n", e.msg);
                    _exit(2);
                }
                if (claim(l, "p", "same", 1, 1, NULL) < 0)
                    _exit(3);
                ledger_close(l);
                _exit(0);
            }
        }
        for (w = 0; w < 4; w++) {
            assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        f->l = fx_open(f->path, &e);
        assert_non_null(f->l);
    }
    snprintf(sql, sizeof sql, "UPDATE %s.wharf_schema SET version = 999", f->schema);
    assert_int_equal(pg_exec(sql), 0);
    assert_null(fx_open(f->path, &e));
    assert_non_null(strstr(e.msg, "version 999 is newer"));
    pthread_barrier_destroy(b);
    munmap(b, sizeof *b);
}

/* A password in the dsn file never appears in an error. */
static void test_pg_secret_scrubbed(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    char path[160];
    FILE *fp;
    (void)f;
    snprintf(path, sizeof path, "%s/bad-dsn", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "host=127.0.0.1 port=1 dbname=nope user=nobody password=Sekr1tPw connect_timeout=2\n");
    fclose(fp);
    assert_null(ledger_open_pg(path, &e));
    assert_null(strstr(e.msg, "Sekr1tPw"));
    assert_true(e.transient);
}

/* ---- nodes and leases ---- */

struct node_seen {
    int n;
    char name[4][32];
    int64_t pid[4], heartbeat[4];
    uint64_t busy[4], expired[4];
};

static int node_cb(void *ctx, const struct node_info *ni)
{
    struct node_seen *s = ctx;
    if (s->n < 4) {
        snprintf(s->name[s->n], sizeof s->name[0], "%s", ni->name);
        s->pid[s->n] = ni->pid;
        s->heartbeat[s->n] = ni->heartbeat_ms;
        s->busy[s->n] = ni->in_progress;
        s->expired[s->n] = ni->expired;
    }
    s->n++;
    return 0;
}

static struct node_seen nodes_now(struct ledger *l, int64_t now)
{
    struct node_seen s = {0};
    struct werr e = {0};
    assert_int_equal(ledger_nodes(l, now, node_cb, &s, &e), 0);
    return s;
}

struct taken_seen {
    int n;
    char id[8][ID_LEN];
    char from[8][32];
};

static int taken_cb(void *ctx, const char *id, const char *from)
{
    struct taken_seen *t = ctx;
    if (t->n < 8) {
        snprintf(t->id[t->n], ID_LEN, "%s", id);
        snprintf(t->from[t->n], sizeof t->from[0], "%s", from ? from : "(none)");
    }
    t->n++;
    return 0;
}

static int takeover_event(void *ctx, int64_t t, const char *kind, const char *detail)
{
    (void)t;
    if (!strcmp(kind, "takeover")) {
        snprintf(ctx, 256, "%s", detail ? detail : "");
    }
    return 0;
}

/*
 * A claim records this process's node and a lease; the node's heartbeat
 * registers it; an expired lease is taken over by another node (event and
 * all), a live one is not; the node that lost the intake can no longer
 * move it, the new holder can; renewal covers the holder's intakes; done
 * ends the lease.
 */
static void test_nodes_leases(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct node_seen s;
    struct taken_seen tk = {0};
    char a[ID_LEN], b[ID_LEN], c[ID_LEN], detail[256] = "";
    uint64_t n = 0;
    int64_t t0 = now_ms();

    /* without an identity: no node, nothing to list */
    assert_int_equal(claim(f->l, "acme", "plain.csv", 1, 1, c), 1);
    s = nodes_now(f->l, t0);
    assert_int_equal(s.n, 0);

    ledger_identity("alpha", 60000);
    assert_int_equal(claim(f->l, "acme", "a.csv", 1, 1, a), 1);
    assert_int_equal(claim(f->l, "acme", "b.csv", 1, 1, b), 1);
    move(f->l, b, ST_FOUND, ST_DONE); /* finished: no longer held */
    assert_int_equal(ledger_node_beat(f->l, "alpha", 4242, t0 - 5000, t0, &e), 0);
    assert_int_equal(ledger_node_beat(f->l, "beta", 77, t0, t0, &e), 0);
    assert_int_equal(ledger_node_beat(f->l, "alpha", 4243, t0 - 5000, t0 + 1, &e), 0);
    s = nodes_now(f->l, t0 + 1000);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.name[0], "alpha");
    assert_int_equal(s.pid[0], 4243);
    assert_int_equal(s.heartbeat[0], t0 + 1);
    assert_int_equal(s.busy[0], 1);
    assert_int_equal(s.expired[0], 0);
    assert_string_equal(s.name[1], "beta");
    assert_int_equal(s.busy[1], 0);

    /* a node that does not run acme takes none of its intakes */
    assert_int_equal(ledger_lease_takeover(f->l, "beta", "globex,acme-eu,acm", t0 + 1000,
                                           t0 + 500000, 10, taken_cb, &tk, &e),
                     0);
    assert_int_equal(tk.n, 0);
    /* a live lease is not taken; the one claimed without a lease is */
    assert_int_equal(ledger_lease_takeover(f->l, "beta", "globex,acme", t0 + 1000, t0 + 500000, 10,
                                           taken_cb, &tk, &e),
                     1);
    assert_int_equal(tk.n, 1);
    assert_string_equal(tk.id[0], c);
    assert_string_equal(tk.from[0], "(none)");

    /* after alpha's lease ran out: beta takes a over, with an event */
    s = nodes_now(f->l, t0 + 61000 + 1000);
    assert_int_equal(s.expired[0], 1);
    tk.n = 0;
    assert_int_equal(ledger_lease_takeover(f->l, "beta", NULL, t0 + 61000 + 1000, t0 + 500000, 10,
                                           taken_cb, &tk, &e),
                     1);
    assert_int_equal(tk.n, 1);
    assert_string_equal(tk.id[0], a);
    assert_string_equal(tk.from[0], "alpha");
    assert_int_equal(ledger_events(f->l, a, takeover_event, detail, &e), 0);
    assert_string_equal(detail, "{\"from\":\"alpha\",\"node\":\"beta\"}");
    s = nodes_now(f->l, t0 + 62000);
    assert_int_equal(s.busy[0], 0); /* alpha */
    assert_int_equal(s.busy[1], 2); /* beta: a and c */
    assert_int_equal(s.expired[1], 0);
    /* nothing left to take */
    assert_int_equal(
        ledger_lease_takeover(f->l, "gamma", NULL, t0 + 62000, t0 + 500000, 10, NULL, NULL, &e), 0);

    /* alpha lost it: its move is refused; beta's goes through */
    assert_int_equal(ledger_transition(f->l, a, ST_FOUND, ST_TAKEN, NULL, NULL, &e), 0);
    ledger_identity("beta", 60000);
    move(f->l, a, ST_FOUND, ST_TAKEN);

    /* renewal covers what beta holds in progress */
    assert_int_equal(ledger_lease_renew(f->l, "beta", t0 + 900000, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(
        ledger_lease_takeover(f->l, "alpha", NULL, t0 + 800000, t0 + 900000, 10, NULL, NULL, &e),
        0);
    move(f->l, a, ST_TAKEN, ST_FAILED);
    n = 0;
    assert_int_equal(ledger_lease_renew(f->l, "beta", t0 + 900000, &n, &e), 0);
    assert_int_equal(n, 1);
    ledger_identity(NULL, 0);
}

/* ledger_kv_mark: set unless it holds the value (or the "unless" value);
 * 1 when it set it.  Four processes marking the same keys at once: each
 * key is set by exactly one (the one that alerts). */
#define MARK_N  30
#define MARKERS 4

struct mark_race {
    pthread_barrier_t barrier;
    int got[MARKERS];
};

static void mark_child(const char *path, struct mark_race *mr, int who)
{
    struct werr e = {0};
    struct ledger *l = fx_open(path, &e);
    int r = 0;
    if (!l)
        _exit(2);
    pthread_barrier_wait(&mr->barrier);
    for (int i = 0; i < MARK_N && r >= 0; i++) {
        char key[32];
        snprintf(key, sizeof key, "alert:race:%d", i);
        if ((r = ledger_kv_mark(l, key, "down", NULL, &e)) > 0)
            mr->got[who]++;
    }
    ledger_close(l);
    _exit(r < 0 ? 3 : 0);
}

static void test_kv_mark(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct mark_race *mr;
    pthread_barrierattr_t ba;
    pid_t pid[MARKERS];
    int w, status, total = 0;
    char *v = NULL;

    assert_int_equal(ledger_kv_mark(f->l, "sla:x", "late", "missing", &e), 1);
    assert_int_equal(ledger_kv_mark(f->l, "sla:x", "late", "missing", &e), 0);
    assert_int_equal(ledger_kv_mark(f->l, "sla:x", "missing", "missing", &e), 1);
    assert_int_equal(ledger_kv_mark(f->l, "sla:x", "late", "missing", &e), 0);
    assert_int_equal(ledger_kv_get(f->l, "sla:x", &v, &e), 0);
    assert_string_equal(v, "missing");
    free(v);
    assert_int_equal(ledger_kv_mark(f->l, "up:x", "down", NULL, &e), 1);
    assert_int_equal(ledger_kv_mark(f->l, "up:x", "up", NULL, &e), 1);
    assert_int_equal(ledger_kv_mark(f->l, "up:x", "up", NULL, &e), 0);

    mr = mmap(NULL, sizeof *mr, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mr != MAP_FAILED);
    memset(mr, 0, sizeof *mr);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&mr->barrier, &ba, MARKERS);
    for (w = 0; w < MARKERS; w++) {
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0)
            mark_child(f->path, mr, w);
    }
    for (w = 0; w < MARKERS; w++) {
        assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        total += mr->got[w];
    }
    assert_int_equal(total, MARK_N);
    pthread_barrier_destroy(&mr->barrier);
    munmap(mr, sizeof *mr);
}

/* Two processes take over the same expired intakes at the same moment:
 * each intake goes to exactly one of them. */
#define TAKE_N 40

struct take_race {
    pthread_barrier_t barrier;
    int got[2];
};

static void take_child(const char *path, struct take_race *tr, int who)
{
    struct werr e = {0};
    struct ledger *l = fx_open(path, &e);
    int total = 0, r;
    if (!l)
        _exit(2);
    pthread_barrier_wait(&tr->barrier);
    while ((r = ledger_lease_takeover(l, who ? "n1" : "n0", NULL, now_ms() + 120000,
                                      now_ms() + 600000, 3, NULL, NULL, &e)) > 0)
        total += r;
    ledger_close(l);
    tr->got[who] = total;
    _exit(r < 0 ? 3 : 0);
}

static int count_takeovers(void *ctx, int64_t t, const char *kind, const char *detail)
{
    (void)t;
    (void)detail;
    if (!strcmp(kind, "takeover"))
        (*(int *)ctx)++;
    return 0;
}

static void test_takeover_race(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct take_race *tr;
    pthread_barrierattr_t ba;
    char ids[TAKE_N][ID_LEN];
    pid_t pid[2];
    int i, w, status;

    ledger_identity("dead", 1000);
    for (i = 0; i < TAKE_N; i++) {
        char p[32];
        snprintf(p, sizeof p, "t/%d.csv", i);
        assert_int_equal(claim(f->l, "acme", p, 1, 1, ids[i]), 1);
    }
    ledger_identity(NULL, 0);
    tr = mmap(NULL, sizeof *tr, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(tr != MAP_FAILED);
    memset(tr, 0, sizeof *tr);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&tr->barrier, &ba, 2);
    for (w = 0; w < 2; w++) {
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0)
            take_child(f->path, tr, w);
    }
    for (w = 0; w < 2; w++) {
        assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(tr->got[0] + tr->got[1], TAKE_N);
    for (i = 0; i < TAKE_N; i++) {
        int k = 0;
        assert_int_equal(ledger_events(f->l, ids[i], count_takeovers, &k, &e), 0);
        assert_int_equal(k, 1);
    }
    {
        struct node_seen s = nodes_now(f->l, now_ms());
        uint64_t held = 0;
        for (i = 0; i < s.n && i < 4; i++) {
            assert_string_not_equal(s.name[i], "dead");
            held += s.busy[i];
        }
        assert_int_equal(held, TAKE_N);
    }
    pthread_barrier_destroy(&tr->barrier);
    munmap(tr, sizeof *tr);
}

struct acts {
    int n;
    char line[8][160];
};

static int acts_cb(void *ctx, const struct action *a)
{
    struct acts *x = ctx;
    if (x->n < 8)
        snprintf(x->line[x->n++], sizeof x->line[0], "%s %s %s %s %d %s", a->actor, a->action,
                 a->profile ? a->profile : "-", a->intake ? "intake" : "-", a->ok,
                 a->result ? a->result : "-");
    return 0;
}

/* Operators' actions: appended, newest first, a profile's own and those on
 * its intakes, limited; NULL profile: all. */
static void test_actions(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    char id[ID_LEN];
    struct acts x = {0};
    assert_int_equal(claim(f->l, "acme", "a.csv", 1, 1, id), 1);
    struct action a[] = {
        {1000, "ops", "pause", "acme", NULL, true, NULL},
        {2000, "cli:root", "resume", "acme", NULL, true, NULL},
        {3000, "ops", "poll", "globex", NULL, false, "cannot connect"},
        {4000, "ops", "replay", NULL, id, true, "replayed as X"},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        assert_int_equal(ledger_action_add(f->l, &a[i], &e), 0);
    assert_int_equal(ledger_actions(f->l, "acme", 10, acts_cb, &x, &e), 0);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.line[0], "ops replay - intake 1 replayed as X");
    assert_string_equal(x.line[1], "cli:root resume acme - 1 -");
    assert_string_equal(x.line[2], "ops pause acme - 1 -");
    x.n = 0;
    assert_int_equal(ledger_actions(f->l, NULL, 2, acts_cb, &x, &e), 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.line[1], "ops poll globex - 0 cannot connect");
}

/* One poller per source (ledger_poll_begin/end): a node polls while no
 * other node's poll of the source runs and, unless the poll was asked
 * for, once the next scheduled poll is due. */
static void test_poll_turn(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    int64_t t = 1000000;

    /* the first poll ever */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "a", t, t + 60000, false, &e), 1);
    /* while a polls, b may not, asked or not; another source it may */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 10, t + 60010, false, &e), 0);
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 10, t + 60010, true, &e), 0);
    assert_int_equal(ledger_poll_begin(f->l, "other", "b", t + 10, t + 60010, false, &e), 1);
    /* a's own lease never stops a (a restart) */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "a", t + 20, t + 60020, true, &e), 1);
    assert_int_equal(ledger_poll_end(f->l, "acme", "a", t + 30000, &e), 0);
    /* not due yet: b's scheduled poll waits, an asked one goes */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 1000, t + 61000, false, &e), 0);
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 1000, t + 61000, true, &e), 1);
    assert_int_equal(ledger_poll_end(f->l, "acme", "b", t + 31000, &e), 0);
    /* due */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "a", t + 31000, t + 91000, false, &e), 1);
    /* a dies polling: b waits for its lease to end */
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 90000, t + 150000, false, &e), 0);
    assert_int_equal(ledger_poll_begin(f->l, "acme", "b", t + 91001, t + 151001, false, &e), 1);
    /* an end by a node that lost the turn changes nothing */
    assert_int_equal(ledger_poll_end(f->l, "acme", "a", t, &e), 0);
    assert_int_equal(ledger_poll_begin(f->l, "acme", "c", t + 92000, t + 152000, true, &e), 0);
}

/* Closes the fixture's SQLite ledger, runs sql on the file (rewinding it to
 * an older schema), and opens it again (migrating it). */
static void reopen_after(struct fx *f, const char *sql)
{
    struct werr e = {0};
    sqlite3 *db;
    ledger_close(f->l);
    f->l = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    f->l = ledger_open_sqlite(f->path, &e);
    assert_non_null(f->l);
}

/* Schema 5 -> 6: the console's earlier action log (kv) moves into the
 * actions, oldest first, and the actions refuse UPDATE and DELETE. */
static void test_actions_legacy_append_only(void **state)
{
    struct fx *f = *state;
    struct werr e = {0};
    struct acts x = {0};
    sqlite3 *db;
    char *v = NULL;

    reopen_after(f, "DROP TRIGGER actions_no_update; DROP TRIGGER actions_no_delete; "
                    "INSERT INTO kv VALUES ('console:actions', '["
                    "{\"user\":\"ops\",\"action\":\"pause\",\"profile\":\"acme\","
                    "\"result\":null,\"time\":\"2026-11-30T10:00:00.000Z\"},"
                    "{\"user\":\"ops\",\"action\":\"poll\",\"profile\":\"acme\","
                    "\"result\":\"cannot connect\",\"time\":\"2026-11-30T10:00:01.500Z\"}]'); "
                    "PRAGMA user_version = 5");
    assert_int_equal(pragma_int(f->path, "user_version"), 6);
    assert_int_equal(ledger_actions(f->l, "acme", 10, acts_cb, &x, &e), 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.line[0], "ops poll acme - 0 cannot connect");
    assert_string_equal(x.line[1], "ops pause acme - 1 -");
    assert_int_equal(ledger_kv_get(f->l, "console:actions", &v, &e), 0);
    assert_null(v);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE actions SET actor = 'x'", NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM actions", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    x.n = 0;
    assert_int_equal(ledger_actions(f->l, NULL, 10, acts_cb, &x, &e), 0);
    assert_int_equal(x.n, 2);
}

/* A ledger made before the registry (SQLite schema 2) gains it on open. */
static void test_migrate_nodes(void **state)
{
    struct fx *f = *state;
    char id[ID_LEN];
    struct node_seen s;

    reopen_after(f, "DROP TABLE actions; DROP TABLE polls; "
                    "DROP INDEX intakes_in_progress; DROP TABLE nodes; "
                    "ALTER TABLE intakes DROP COLUMN node; "
                    "ALTER TABLE intakes DROP COLUMN lease_until_ms; "
                    "PRAGMA user_version = 2");
    assert_int_equal(pragma_int(f->path, "user_version"), 6);
    ledger_identity("alpha", 60000);
    assert_int_equal(claim(f->l, "acme", "m.csv", 1, 1, id), 1);
    ledger_identity(NULL, 0);
    s = nodes_now(f->l, now_ms());
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "alpha");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_intake_json),
        cmocka_unit_test_setup_teardown(test_migrate_reopen, setup, teardown),
        cmocka_unit_test(test_open_bad_path),
        cmocka_unit_test_setup_teardown(test_claim_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_callback_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sightings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_is_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions_legacy_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_mark, setup, teardown),
    };
    /* The same behaviour on PostgreSQL; the SQLite file tests (pragmas,
     * paths, SQLite's own lock) are replaced by their PostgreSQL kin. */
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_callback_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sightings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_open_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_secret_scrubbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_mark, setup, teardown),
    };
    const char *dsn_file = getenv("WHARF_TEST_LEDGER_PG");
    if (dsn_file && *dsn_file) {
        char buf[1024];
        size_t n;
        FILE *fp = fopen(dsn_file, "r");
        if (!fp || !(n = fread(buf, 1, sizeof buf - 1, fp))) {
            fprintf(stderr, "WHARF_TEST_LEDGER_PG=%s: unreadable\n", dsn_file);
            return 1;
        }
        fclose(fp);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            n--;
        buf[n] = 0;
        pg_base = strdup(buf);
        return cmocka_run_group_tests_name("ledger on postgresql", pg_tests, NULL, NULL);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
