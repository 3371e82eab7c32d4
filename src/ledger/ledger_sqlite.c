/*
 * ledger_sqlite: the SQLite backend of ledger.h.
 *
 * Owns one sqlite3 connection per struct ledger, with its cached statements.
 * A connection is not shared between threads: every thread (and process)
 * opens its own struct ledger; several of them, in several processes (the
 * CLI while the server runs), share one file safely through WAL, a 10 s busy
 * timeout and IMMEDIATE write transactions.
 *
 * The file is created and migrated on open (PRAGMA user_version is the
 * schema version; see `migrations` below), WAL, synchronous=FULL, foreign
 * keys on.  What can fail: opening, migrating, any statement.  Every failure
 * returns -1 and fills struct werr with the ledger path and SQLite's message;
 * the kind comes from the result code (werr_kind_sqlite: locked or busy
 * after the timeout is busy, a full disk no_space, both transient).
 * Strings handed to callbacks live only for the call.
 */
#include "ledger/ledger.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_sql.h"
#include "util/escape.h"
#include "util/obs.h"
#include "util/sqlwait.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define BUSY_TIMEOUT_MS 10000
#define PAGE            128 /* rows read per statement in list and chain_walk */
#define MIN_PREFIX      6   /* shortest id prefix ledger_get accepts */

/*
 * Schema migrations, in order.  migrations[i] takes the file from schema
 * version i to i + 1 and runs in one transaction together with the
 * user_version bump, so a file is always at exactly one version.  Never edit
 * a migration that has shipped: append a new one.
 *
 * States and outcomes are stored by name so the file reads well in the
 * sqlite3 shell.  The claim key (profile, source, path, size, mtime_ns) is
 * unique; a replay is a new intake with source "replay" and path = the id
 * of the intake it replays, so it never collides with the original drop.
 * Times are epoch milliseconds; sealed_ms is set when the intake becomes
 * sealed.  info and events.detail are JSON text.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the initial schema. */
    "CREATE TABLE intakes ("
    "  id TEXT PRIMARY KEY,"
    "  profile TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  sha256 TEXT,"
    "  state TEXT NOT NULL,"
    "  failed_from TEXT,"
    "  outcome TEXT NOT NULL DEFAULT 'none',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  \"rows\" INTEGER NOT NULL DEFAULT 0,"
    "  bag TEXT,"
    "  replay_of TEXT REFERENCES intakes(id),"
    "  replayed_by TEXT REFERENCES intakes(id),"
    "  info TEXT,"
    "  sealed_ms INTEGER,"
    "  UNIQUE (profile, source, path, size, mtime_ns)"
    ");"
    "CREATE INDEX intakes_state ON intakes(state);"
    "CREATE INDEX intakes_profile ON intakes(profile, state);"
    "CREATE INDEX intakes_sha256 ON intakes(profile, sha256);"
    "CREATE INDEX intakes_sealed ON intakes(sealed_ms);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  intake TEXT NOT NULL REFERENCES intakes(id),"
    "  time_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  detail TEXT"
    ");"
    "CREATE INDEX events_intake ON events(intake, time_ms, id);"
    "CREATE TABLE sightings ("
    "  profile TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (profile, path)"
    ");"
    "CREATE TABLE chain ("
    "  seq INTEGER PRIMARY KEY,"
    "  intake TEXT NOT NULL UNIQUE REFERENCES intakes(id),"
    "  tagmanifest TEXT NOT NULL,"
    "  prev TEXT NOT NULL,"
    "  link TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE kv ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ");",
    /* 1 -> 2: when a path was first seen at all (first_seen_ms restarts
     * whenever its size or mtime changes; `wharf status` needs the age of a
     * file that never became complete), and intakes by path for the
     * question "was this sighting ever claimed". */
    "ALTER TABLE sightings ADD COLUMN appeared_ms INTEGER;"
    "UPDATE sightings SET appeared_ms = first_seen_ms;"
    "CREATE INDEX intakes_path ON intakes(profile, path);",
    /* 2 -> 3: nodes sharing the ledger (ledger.h, "Nodes and leases"): the
     * node holding an intake in progress and until when, and each node's
     * heartbeat.  The partial index holds only intakes in progress, which
     * renewals, take-overs and `wharf status` read. */
    "ALTER TABLE intakes ADD COLUMN node TEXT;"
    "ALTER TABLE intakes ADD COLUMN lease_until_ms INTEGER;"
    "CREATE INDEX intakes_in_progress ON intakes(node, lease_until_ms) "
    "WHERE state NOT IN ('done', 'failed');"
    "CREATE TABLE nodes ("
    "  name TEXT PRIMARY KEY,"
    "  pid INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  heartbeat_ms INTEGER NOT NULL"
    ");",
    /* 3 -> 4: operators' actions (pause, resume, poll, replay), append-only:
     * who did what and when, for `wharf show --profile` and the console. */
    "CREATE TABLE actions ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  profile TEXT,"
    "  intake TEXT,"
    "  ok INTEGER NOT NULL,"
    "  result TEXT"
    ");",
    /* 4 -> 5: one poller per source (ledger_poll_begin): who polls each
     * profile's source now, until when, and when its next scheduled poll
     * is due.  Scheduling state only: `wharf ledger migrate` leaves it. */
    "CREATE TABLE polls ("
    "  profile TEXT PRIMARY KEY,"
    "  node TEXT NOT NULL,"
    "  next_ms INTEGER NOT NULL,"
    "  until_ms INTEGER NOT NULL"
    ");",
    /* 5 -> 6: the actions are append-only in the database itself, and the
     * console's earlier action log (kv "console:actions", a JSON list)
     * moves into them, oldest first (left in kv when it does not parse). */
    "CREATE TRIGGER actions_no_update BEFORE UPDATE ON actions "
    "BEGIN SELECT RAISE(ABORT, 'the actions are append-only'); END;"
    "CREATE TRIGGER actions_no_delete BEFORE DELETE ON actions "
    "BEGIN SELECT RAISE(ABORT, 'the actions are append-only'); END;"
    "INSERT INTO actions (time_ms, actor, action, profile, intake, ok, result) "
    "SELECT CAST((julianday(json_extract(j.value, '$.time')) - 2440587.5) * 86400000 AS INTEGER), "
    "COALESCE(json_extract(j.value, '$.user'), '?'), "
    "COALESCE(json_extract(j.value, '$.action'), '?'), json_extract(j.value, '$.profile'), "
    "json_extract(j.value, '$.intake'), " LEGACY_OK(
        "json_extract(j.value, '$.result')") ", "
                                             "json_extract(j.value, '$.result') "
                                             "FROM kv, json_each(kv.value) j WHERE kv.key = "
                                             "'console:actions' AND json_valid(kv.value) "
                                             "AND json_extract(j.value, '$.time') IS NOT NULL "
                                             "ORDER BY j.key;"
                                             "DELETE FROM kv WHERE key = 'console:actions' AND "
                                             "json_valid(value);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define INTAKE_COLS                                                                                \
    "id, profile, source, path, name, size, mtime_ns, sha256, state, failed_from, outcome, "       \
    "attempts, next_attempt_ms, last_error, created_ms, updated_ms, \"rows\", bag, replay_of, "    \
    "replayed_by, info, node, lease_until_ms"

#define CHAIN_COLS "seq, intake, tagmanifest, prev, link, time_ms"

#define STMT_CACHE 16

struct sq {
    sqlite3 *db;
    char *path;
    /* cached statements: transactions and the hot paths */
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *claim, *event, *transition, *sighting;
    sqlite3_stmt *put; /* bulk copy: the INSERT of put_table */
    const struct ledger_table *put_table;
    bool relaxed; /* synchronous=NORMAL in force (ledger_set_durable) */
    /* the per-intake queries of the pipeline (get, update, the chain's),
     * prepared once: prep_c / release */
    struct {
        sqlite3_stmt *st;
        bool busy;
    } cache[STMT_CACHE];
    size_t ncache;
};

static const char *const zero_link =
    "0000000000000000000000000000000000000000000000000000000000000000";

static int fail(struct sq *s, struct werr *e, int rc, const char *what)
{
    werr_setk(e, werr_kind_sqlite(rc, WERR_BUSY, WERR_OTHER), "%s: %s: %s", s->path, what,
              s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    return -1;
}

static int prep(struct sq *s, sqlite3_stmt **st, const char *sql, bool cached, struct werr *e)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, cached ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, e, rc, "prepare");
    return 0;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* prep for a statement run once per intake or more: the one prepared
 * earlier for the same SQL text when it is not in use, else a new one kept
 * for next time (while there is room).  Give it back with release, never
 * sqlite3_finalize.  A prepare costs more than most of these statements'
 * runs (sqlite3Parser in the profile of 10,000 small files). */
static int prep_c(struct sq *s, sqlite3_stmt **st, const char *sql, struct werr *e)
{
    for (size_t i = 0; i < s->ncache; i++)
        if (!s->cache[i].busy && !strcmp(sqlite3_sql(s->cache[i].st), sql)) {
            s->cache[i].busy = true;
            *st = s->cache[i].st;
            return 0;
        }
    if (prep(s, st, sql, true, e) < 0)
        return -1;
    if (s->ncache < STMT_CACHE) {
        s->cache[s->ncache].st = *st;
        s->cache[s->ncache++].busy = true;
    }
    return 0;
}

/* Gives back a statement of prep_c (reset for its next use); NULL is a
 * no-op. */
static void release(struct sq *s, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < s->ncache; i++)
        if (s->cache[i].st == st) {
            done(st);
            s->cache[i].busy = false;
            return;
        }
    sqlite3_finalize(st);
}

/* Steps a statement that returns no rows to completion and resets it. */
static int run(struct sq *s, sqlite3_stmt *st, const char *what, struct werr *e)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, what);
        done(st);
        return -1;
    }
    done(st);
    return 0;
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static int tx_begin(struct sq *s, struct werr *e)
{
    return run(s, s->begin, "begin", e);
}

static void tx_rollback(struct sq *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->rollback);
        sqlite3_reset(s->rollback);
    }
}

static int tx_commit(struct sq *s, struct werr *e)
{
    int64_t t0 = obs_now_ns();
    if (run(s, s->commit, "commit", e) < 0) {
        tx_rollback(s);
        return -1;
    }
    obs_since(OBS_LEDGER_COMMIT, t0);
    return 0;
}

/* JSON text of a detail or info object (NULL for NULL); the caller frees. */
static char *dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
}

/* ---- opening and migrating ---- */

static int exec(struct sq *s, const char *sql, const char *what, struct werr *e)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(s, e, rc, what);
    return 0;
}

static int user_version(struct sq *s, int *v, struct werr *e)
{
    sqlite3_stmt *st = NULL;
    int rc, r = -1;
    if (prep(s, &st, "PRAGMA user_version", false, e) < 0)
        return -1;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        fail(s, e, rc, "read schema version");
        goto out;
    }
    *v = sqlite3_column_int(st, 0);
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

/* Applies the missing migrations, each in its own IMMEDIATE transaction;
 * the version is read inside the transaction so two processes opening a
 * fresh file at once never both run a step. */
static int migrate(struct sq *s, struct werr *e)
{
    for (;;) {
        int v;
        char sql[64];
        if (tx_begin(s, e) < 0)
            return -1;
        if (user_version(s, &v, e) < 0)
            goto fail;
        if (v > SCHEMA_VERSION) {
            werr_set(e, "%s: ledger schema version %d is newer than this wharf knows (%d)", s->path,
                     v, SCHEMA_VERSION);
            goto fail;
        }
        if (v == SCHEMA_VERSION)
            return tx_commit(s, e);
        if (exec(s, migrations[v], "migrate", e) < 0) {
            werr_prefix(e, "schema version %d -> %d: ", v, v + 1);
            goto fail;
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (exec(s, sql, "migrate", e) < 0 || tx_commit(s, e) < 0)
            goto fail;
    }
fail:
    tx_rollback(s);
    return -1;
}

/*
 * Switches the file to WAL.  Two processes opening a fresh file at once can
 * see SQLITE_BUSY here without the busy handler being consulted (the switch
 * needs the file to itself), so retry for up to the busy timeout.
 */
static int journal_wal(struct sq *s, struct werr *e)
{
    sqlite3_stmt *st = NULL;
    int rc, r = -1, waited = 0;
    const char *mode;

    if (prep(s, &st, "PRAGMA journal_mode = WAL", false, e) < 0)
        return -1;
    while ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        int prim = rc & 0xff;
        sqlite3_reset(st);
        if ((prim != SQLITE_BUSY && prim != SQLITE_LOCKED) || waited >= BUSY_TIMEOUT_MS) {
            fail(s, e, rc, "journal_mode");
            goto out;
        }
        sqlite3_sleep(10);
        waited += 10;
    }
    mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        werr_set(e, "%s: cannot use WAL (journal mode stays %s)", s->path, mode ? mode : "?");
        goto out;
    }
    r = 0;
out:
    /* The switch commits when the statement is finalized; a failed fsync
     * there must fail the open, not pass unnoticed. */
    rc = sqlite3_finalize(st);
    if (r == 0 && rc != SQLITE_OK) {
        fail(s, e, rc, "journal_mode");
        r = -1;
    }
    return r;
}

static void sq_free(struct sq *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    sqlite3_finalize(s->claim);
    sqlite3_finalize(s->event);
    sqlite3_finalize(s->transition);
    sqlite3_finalize(s->sighting);
    sqlite3_finalize(s->put);
    for (size_t i = 0; i < s->ncache; i++)
        sqlite3_finalize(s->cache[i].st);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static const struct ledger_ops sqlite_ops;

struct ledger *ledger_open_sqlite(const char *path, struct werr *e)
{
    struct sq *s = xcalloc(1, sizeof *s);
    struct ledger *l = NULL;
    int rc;

    s->path = xstrdup(path);
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fail(s, e, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlwait_install(s->db, BUSY_TIMEOUT_MS);
    if (journal_wal(s, e) < 0 ||
        exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "pragma", e) < 0)
        goto out;
    if (prep(s, &s->begin, "BEGIN IMMEDIATE", true, e) < 0 ||
        prep(s, &s->commit, "COMMIT", true, e) < 0 ||
        prep(s, &s->rollback, "ROLLBACK", true, e) < 0)
        goto out;
    if (migrate(s, e) < 0)
        goto out;
    if (prep(s, &s->claim,
             "INSERT INTO intakes (id, profile, source, path, name, size, mtime_ns, sha256, "
             "state, outcome, attempts, next_attempt_ms, last_error, created_ms, updated_ms, "
             "\"rows\", bag, replay_of, replayed_by, info, node, lease_until_ms) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'found', ?9, ?10, ?11, ?12, ?13, ?13, "
             "?14, ?15, ?16, ?17, ?18, ?19, ?20) "
             "ON CONFLICT (profile, source, path, size, mtime_ns) DO NOTHING",
             true, e) < 0 ||
        prep(s, &s->event,
             "INSERT INTO events (intake, time_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)", true,
             e) < 0 ||
        prep(s, &s->transition,
             "UPDATE intakes SET state = ?3, "
             "failed_from = CASE WHEN ?3 = 'failed' THEN ?2 ELSE NULL END, "
             "updated_ms = ?4, "
             "sealed_ms = CASE WHEN ?3 = 'sealed' THEN ?4 ELSE sealed_ms END, "
             "node = CASE WHEN ?5 IS NULL OR ?3 IN ('done', 'failed') THEN node ELSE ?5 END, "
             "lease_until_ms = CASE WHEN ?3 IN ('done', 'failed') THEN NULL "
             "WHEN ?5 IS NULL THEN lease_until_ms ELSE ?6 END "
             "WHERE id = ?1 AND state = ?2 AND (?5 IS NULL OR node IS NULL OR node = ?5 "
             "OR lease_until_ms IS NULL OR lease_until_ms < ?4)",
             true, e) < 0 ||
        prep(s, &s->sighting,
             "INSERT INTO sightings (profile, path, size, mtime_ns, first_seen_ms, last_seen_ms, "
             "appeared_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5) "
             "ON CONFLICT (profile, path) DO UPDATE SET "
             "first_seen_ms = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns "
             "THEN first_seen_ms ELSE excluded.first_seen_ms END, "
             "appeared_ms = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns "
             "THEN appeared_ms WHEN EXISTS (SELECT 1 FROM intakes i WHERE i.profile = ?1 AND "
             "i.path = ?2 AND i.size = sightings.size AND i.mtime_ns = sightings.mtime_ns) "
             "THEN excluded.first_seen_ms ELSE COALESCE(appeared_ms, first_seen_ms) END, "
             "size = excluded.size, mtime_ns = excluded.mtime_ns, "
             "last_seen_ms = excluded.last_seen_ms "
             "RETURNING first_seen_ms",
             true, e) < 0)
        goto out;
    l = xcalloc(1, sizeof *l);
    l->ops = &sqlite_ops;
    l->impl = s;
out:
    if (!l)
        sq_free(s);
    return l;
}

static void sq_close(struct ledger *l)
{
    sq_free(l->impl);
    free(l);
}

/* ---- intakes ---- */

/* Inserts one event row (inside the caller's transaction, if any). */
static int put_event(struct sq *s, const char *id, int64_t t, const char *kind, const char *detail,
                     struct werr *e)
{
    sqlite3_bind_text(s->event, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->event, 2, t);
    sqlite3_bind_text(s->event, 3, kind, -1, SQLITE_STATIC);
    bind_str(s->event, 4, detail);
    return run(s, s->event, "insert event", e);
}

/*
 * Claim: one IMMEDIATE transaction inserts the intake in state found with a
 * fresh id and a "found" event.  A drop already claimed (same claim key)
 * inserts nothing and returns 0.  The caller's other fields (sha256,
 * replay_of, info, ...) are stored as given; name defaults to the last
 * component of path.
 */
/* One claim inside the caller's transaction: 1 claimed (in filled), 0 the
 * drop is claimed already, -1 failed (the caller rolls back). */
static int claim_in_tx(struct sq *s, struct intake *in, struct werr *e)
{
    sqlite3_stmt *st = s->claim;
    const char *name = in->name;
    char *info = NULL, *detail = NULL;
    json_t *dj;
    int64_t t = now_ms();
    int r = -1, rc;

    if (!in->profile || !in->source || !in->path) {
        werr_set(e, "claim: profile, source and path are required");
        return -1;
    }
    if (!name) {
        name = strrchr(in->path, '/');
        name = name ? name + 1 : in->path;
    }
    id_new(in->id);
    info = dump(in->info);
    dj = json_pack("{s:o, s:o, s:I, s:I}", "source", esc_json(in->source), "path",
                   esc_json(in->path), "size", (json_int_t)in->size, "mtime_ns",
                   (json_int_t)in->mtime_ns);
    if (in->replay_of)
        json_object_set_new(dj, "replay_of", json_string(in->replay_of));
    detail = dump(dj);
    json_decref(dj);

    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)in->size);
    sqlite3_bind_int64(st, 7, in->mtime_ns);
    bind_str(st, 8, in->sha256[0] ? in->sha256 : NULL);
    sqlite3_bind_text(st, 9, outcome_name(in->outcome), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, in->attempts);
    sqlite3_bind_int64(st, 11, in->next_attempt_ms);
    bind_str(st, 12, in->last_error);
    sqlite3_bind_int64(st, 13, t);
    sqlite3_bind_int64(st, 14, (sqlite3_int64)in->rows);
    bind_str(st, 15, in->bag);
    bind_str(st, 16, in->replay_of);
    bind_str(st, 17, in->replayed_by);
    bind_str(st, 18, info);
    bind_str(st, 19, ledger_node());
    if (ledger_node())
        sqlite3_bind_int64(st, 20, t + ledger_lease_ms());
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "claim");
        done(st);
        goto out;
    }
    done(st);
    if (sqlite3_changes(s->db) == 0) {
        r = 0;
        goto out;
    }
    if (put_event(s, in->id, t, "found", detail, e) < 0)
        goto out;
    in->state = ST_FOUND;
    in->created_ms = in->updated_ms = t;
    r = 1;
out:
    if (r != 1)
        in->id[0] = 0;
    free(info);
    free(detail);
    return r;
}

static int sq_claim(struct ledger *l, struct intake *in, struct werr *e)
{
    struct sq *s = l->impl;
    int r;
    if (tx_begin(s, e) < 0)
        return -1;
    r = claim_in_tx(s, in, e);
    if (r < 0 || tx_commit(s, e) < 0) {
        tx_rollback(s);
        in->id[0] = 0;
        return -1;
    }
    return r;
}

/* All of v in one IMMEDIATE transaction: one durable commit for the lot, and
 * none of them visible to anyone before it. */
static int sq_claim_batch(struct ledger *l, struct intake *v, size_t n, int *claimed,
                          void (*between)(size_t i), struct werr *e)
{
    struct sq *s = l->impl;
    size_t i;
    if (tx_begin(s, e) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        if ((claimed[i] = claim_in_tx(s, &v[i], e)) < 0)
            goto fail;
        if (between)
            between(i);
    }
    if (tx_commit(s, e) < 0)
        goto fail;
    return 0;
fail:
    tx_rollback(s);
    for (i = 0; i < n; i++) {
        claimed[i] = 0;
        v[i].id[0] = 0;
    }
    return -1;
}

/*
 * Writes the mutable fields exactly as they are in *in (so: get, change,
 * update): sha256 ("" stores NULL), outcome, attempts, next_attempt_ms,
 * last_error, rows, bag, replay_of, replayed_by and info.  The state only
 * changes through transition; sealed_ms is stamped by the transition to
 * sealed.  Returns 0, or -1 on error (an unknown id is an error).
 */
static int update_row(struct sq *s, const struct intake *in, struct werr *e)
{
    sqlite3_stmt *st = NULL;
    char *info = dump(in->info);
    int r = -1;

    if (prep_c(s, &st,
               "UPDATE intakes SET sha256 = ?2, outcome = ?3, attempts = ?4, next_attempt_ms = ?5, "
               "last_error = ?6, \"rows\" = ?7, bag = ?8, replay_of = ?9, replayed_by = ?10, "
               "info = ?11, updated_ms = ?12 WHERE id = ?1",
               e) < 0)
        goto out;
    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
    bind_str(st, 2, in->sha256[0] ? in->sha256 : NULL);
    sqlite3_bind_text(st, 3, outcome_name(in->outcome), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, in->attempts);
    sqlite3_bind_int64(st, 5, in->next_attempt_ms);
    bind_str(st, 6, in->last_error);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)in->rows);
    bind_str(st, 8, in->bag);
    bind_str(st, 9, in->replay_of);
    bind_str(st, 10, in->replayed_by);
    bind_str(st, 11, info);
    sqlite3_bind_int64(st, 12, now_ms());
    if (run(s, st, "update", e) < 0)
        goto out;
    if (sqlite3_changes(s->db) != 1) {
        werr_set(e, "%s: update: no intake %s", s->path, in->id);
        goto out;
    }
    r = 0;
out:
    release(s, st);
    free(info);
    return r;
}

static int sq_update(struct ledger *l, const struct intake *in, struct werr *e)
{
    return update_row(l->impl, in, e);
}

/*
 * Compare-and-set of the state, with its event (and, with in, the mutable
 * fields of update_row, written only when moved), in one IMMEDIATE
 * transaction.  Moving to failed records where the intake stopped
 * (failed_from); moving to sealed stamps sealed_ms.  kind defaults to the
 * new state's name.  detail is stolen.
 */
static int transition_tx(struct ledger *l, const char *id, const struct intake *in,
                         enum intake_state from, enum intake_state to, const char *kind,
                         json_t *detail, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = s->transition;
    char *dj = dump(detail);
    int64_t t = now_ms();
    int r = -1;

    json_decref(detail);
    if ((int)from < 0 || from >= ST__COUNT || (int)to < 0 || to >= ST__COUNT) {
        werr_set(e, "%s: transition: bad state", id);
        goto out;
    }
    if (tx_begin(s, e) < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, state_name(from), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, state_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, t);
    bind_str(st, 5, ledger_node());
    sqlite3_bind_int64(st, 6, t + ledger_lease_ms());
    if (run(s, st, "transition", e) < 0)
        goto out;
    if (sqlite3_changes(s->db) != 1) {
        r = tx_commit(s, e) < 0 ? -1 : 0;
        goto out;
    }
    if ((in && update_row(s, in, e) < 0) ||
        put_event(s, id, t, kind ? kind : state_name(to), dj, e) < 0 || tx_commit(s, e) < 0)
        goto out;
    r = 1;
out:
    if (r < 0)
        tx_rollback(s);
    free(dj);
    return r;
}

static int sq_transition(struct ledger *l, const char *id, enum intake_state from,
                         enum intake_state to, const char *kind, json_t *detail, struct werr *e)
{
    return transition_tx(l, id, NULL, from, to, kind, detail, e);
}

static int sq_transition_update(struct ledger *l, const struct intake *in, enum intake_state from,
                                enum intake_state to, const char *kind, json_t *detail,
                                struct werr *e)
{
    return transition_tx(l, in->id, in, from, to, kind, detail, e);
}

/* A standalone event (retry scheduled, duplicate skipped, ...); detail is
 * stolen, as in transition.  Returns 0 or -1 (an unknown id is an error). */
static int sq_event(struct ledger *l, const char *id, const char *kind, json_t *detail,
                    struct werr *e)
{
    struct sq *s = l->impl;
    char *dj = dump(detail);
    int r;
    json_decref(detail);
    r = put_event(s, id, now_ms(), kind, dj, e);
    free(dj);
    return r;
}

/* Fills *out from a row of INTAKE_COLS. */
static int read_intake(struct sq *s, sqlite3_stmt *st, struct intake *out, struct werr *e)
{
    const char *state = (const char *)sqlite3_column_text(st, 8);
    const char *from = (const char *)sqlite3_column_text(st, 9);
    const char *outcome = (const char *)sqlite3_column_text(st, 10);
    const char *info = (const char *)sqlite3_column_text(st, 20);

    memset(out, 0, sizeof *out);
    col_copy(st, 0, out->id, sizeof out->id);
    if (state_parse(state, &out->state) < 0 || (from && state_parse(from, &out->failed_from) < 0) ||
        outcome_parse(outcome, &out->outcome) < 0) {
        werr_set(e, "%s: intake %s: unknown state or outcome", s->path, out->id);
        return -1;
    }
    out->profile = col_dup(st, 1);
    out->source = col_dup(st, 2);
    out->path = col_dup(st, 3);
    out->name = col_dup(st, 4);
    out->size = (uint64_t)sqlite3_column_int64(st, 5);
    out->mtime_ns = sqlite3_column_int64(st, 6);
    col_copy(st, 7, out->sha256, sizeof out->sha256);
    out->attempts = sqlite3_column_int(st, 11);
    out->next_attempt_ms = sqlite3_column_int64(st, 12);
    out->last_error = col_dup(st, 13);
    out->created_ms = sqlite3_column_int64(st, 14);
    out->updated_ms = sqlite3_column_int64(st, 15);
    out->rows = (uint64_t)sqlite3_column_int64(st, 16);
    out->bag = col_dup(st, 17);
    out->replay_of = col_dup(st, 18);
    out->replayed_by = col_dup(st, 19);
    out->node = col_dup(st, 21);
    out->lease_until_ms = sqlite3_column_int64(st, 22);
    if (info) {
        out->info = json_loads(info, 0, NULL);
        if (!out->info) {
            werr_set(e, "%s: intake %s: info is not JSON", s->path, out->id);
            intake_clear(out);
            return -1;
        }
    }
    return 0;
}

/*
 * By full id or by a unique prefix of at least MIN_PREFIX characters (case
 * does not matter: ids are upper-case Crockford base32).  *out is
 * overwritten, not freed first; the caller intake_clear()s it after a 1.
 * An ambiguous or too short prefix is an error saying so.
 */
static int sq_get(struct ledger *l, const char *id, struct intake *out, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    char key[ID_LEN], upper[ID_LEN + 1];
    size_t n = strlen(id), i;
    int r = -1, rc;

    memset(out, 0, sizeof *out);
    if (n >= ID_LEN)
        return 0;
    if (n < MIN_PREFIX) {
        werr_set(e, "intake id '%s': give the full id or at least %d characters", id, MIN_PREFIX);
        return -1;
    }
    for (i = 0; i < n; i++)
        key[i] = (char)toupper((unsigned char)id[i]);
    key[n] = 0;
    snprintf(upper, sizeof upper, "%s~", key); /* '~' sorts after every id character */
    if (prep_c(s, &st,
               "SELECT " INTAKE_COLS " FROM intakes WHERE id >= ?1 AND id < ?2 "
               "ORDER BY id LIMIT 2",
               e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, upper, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = 0;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        fail(s, e, rc, "get");
        goto out;
    }
    if (read_intake(s, st, out, e) < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        werr_set(e, "intake id '%s' is ambiguous (%s, %s, ...)", id, out->id,
                 (const char *)sqlite3_column_text(st, 0));
        intake_clear(out);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "get");
        intake_clear(out);
        goto out;
    }
    r = 1;
out:
    release(s, st);
    return r;
}

/*
 * Calls fn for each intake matching f, in id (= time) order, until fn
 * returns non-zero.  Rows are read PAGE at a time and fn runs with no
 * statement open, so fn may use the ledger (transition, claim a replay...)
 * without holding a read snapshot.  Intakes created during the walk may or
 * may not be seen.  The intake handed to fn is freed after the call.
 * Returns 0 (also when fn stopped the walk) or -1.
 */
static int sq_list(struct ledger *l, const struct intake_filter *f, intake_fn fn, void *ctx,
                   struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct intake *page = xcalloc(PAGE, sizeof *page);
    char sql[1024], after[ID_LEN] = "";
    int64_t left = f->limit > 0 ? f->limit : INT64_MAX;
    int r = -1, n = 0, i, rc, stop = 0;
    const char *rejects = f->rejects && f->with_failed
                              ? " AND ((outcome = 'rejected' AND replayed_by IS NULL) OR "
                                "state = 'failed')"
                          : f->rejects ? " AND outcome = 'rejected' AND replayed_by IS NULL"
                                       : "";

    /* Newest first pages backwards from the largest id ("\x7f" sorts
     * after every id). */
    if (f->newest_first)
        snprintf(after, sizeof after, "\x7f");
    snprintf(sql, sizeof sql,
             "SELECT " INTAKE_COLS " FROM intakes WHERE id %s :after%s%s%s%s%s%s "
             "ORDER BY id %s LIMIT :lim",
             f->newest_first ? "<" : ">", f->profile ? " AND profile = :profile" : "",
             f->state >= 0 ? " AND state = :state" : "",
             f->unfinished ? " AND state NOT IN ('done', 'failed')" : "", rejects,
             f->since_ms > 0 ? " AND sealed_ms >= :since" : "",
             f->updated_since_ms > 0 ? " AND updated_ms >= :updated" : "",
             f->newest_first ? "DESC" : "ASC");
    if (f->state >= ST__COUNT) {
        werr_set(e, "list: bad state %d", f->state);
        goto out;
    }
    if (prep(s, &st, sql, false, e) < 0)
        goto out;
    while (!stop && left > 0) {
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":after"), after, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":lim"), left < PAGE ? left : PAGE);
        if (f->profile)
            sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":profile"), f->profile, -1,
                              SQLITE_STATIC);
        if (f->state >= 0)
            sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":state"),
                              state_name((enum intake_state)f->state), -1, SQLITE_STATIC);
        if (f->since_ms > 0)
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ms);
        if (f->updated_since_ms > 0)
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":updated"),
                               f->updated_since_ms);
        n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (read_intake(s, st, &page[n], e) < 0)
                goto out;
            n++;
        }
        if (rc != SQLITE_DONE) {
            fail(s, e, rc, "list");
            goto out;
        }
        sqlite3_reset(st); /* ends the read before the callbacks */
        if (n == 0)
            break;
        memcpy(after, page[n - 1].id, ID_LEN);
        for (i = 0; i < n && !stop; i++)
            stop = fn(ctx, &page[i]);
        left -= n;
        if (n < PAGE)
            break;
        for (i = 0; i < n; i++)
            intake_clear(&page[i]);
        n = 0;
    }
    r = 0;
out:
    for (i = 0; i < n; i++)
        intake_clear(&page[i]);
    free(page);
    sqlite3_finalize(st);
    return r;
}

/*
 * The events of one intake (full id), oldest first.  They are read whole
 * before fn is called (one intake has few).  Returns 0 or -1.
 */
static int sq_events(struct ledger *l, const char *id, event_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct ev {
        int64_t t;
        char *kind, *detail;
    } *evs = NULL;
    size_t n = 0, cap = 0, i;
    int r = -1, rc;

    if (prep(s, &st,
             "SELECT time_ms, kind, detail FROM events WHERE intake = ?1 ORDER BY time_ms, id",
             false, e) < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            evs = xrealloc(evs, cap * sizeof *evs);
        }
        evs[n].t = sqlite3_column_int64(st, 0);
        evs[n].kind = col_dup(st, 1);
        evs[n].detail = col_dup(st, 2);
        n++;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "events");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (i = 0; i < n; i++)
        if (fn(ctx, evs[i].t, evs[i].kind, evs[i].detail))
            break;
    r = 0;
out:
    for (i = 0; i < n; i++) {
        free(evs[i].kind);
        free(evs[i].detail);
    }
    free(evs);
    sqlite3_finalize(st);
    return r;
}

/*
 * Content already loaded for the profile: an intake with this sha256 whose
 * outcome is loaded and that is loaded, sealed or done -- or failed after
 * loading (failed_from loaded or sealed), since its rows are in the target
 * all the same.  The oldest such intake's id is returned.
 */
static int sq_find_loaded(struct ledger *l, const char *profile, const char *sha256,
                          char id[ID_LEN], struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;

    if (prep(s, &st,
             "SELECT id FROM intakes WHERE profile = ?1 AND sha256 = ?2 AND outcome = 'loaded' "
             "AND (state IN ('loaded', 'sealed', 'done') "
             "OR (state = 'failed' AND failed_from IN ('loaded', 'sealed'))) "
             "ORDER BY id LIMIT 1",
             false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_copy(st, 0, id, ID_LEN);
        r = 1;
    } else if (rc == SQLITE_DONE) {
        id[0] = 0;
        r = 0;
    } else {
        fail(s, e, rc, "find loaded");
    }
    sqlite3_finalize(st);
    return r;
}

/* ---- sightings ---- */

/*
 * One upsert: a new (profile, path), or one whose size or mtime changed,
 * starts its stability clock now; an unchanged one keeps first_seen and
 * only moves last_seen.  Returns 0 with *first_seen_ms, or -1.
 */
static int sq_sighting(struct ledger *l, const char *profile, const char *path, uint64_t size,
                       int64_t mtime_ns, int64_t now, int64_t *first_seen_ms, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = s->sighting;
    int rc;

    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 4, mtime_ns);
    sqlite3_bind_int64(st, 5, now);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    *first_seen_ms = sqlite3_column_int64(st, 0);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        goto fail;
    done(st);
    return 0;
fail:
    fail(s, e, rc, "sighting");
    done(st);
    return -1;
}

/* Forgets sightings last seen before before_ms (profile NULL: of every
 * profile).  Returns 0 or -1. */
static int sq_sightings_prune(struct ledger *l, const char *profile, int64_t before_ms,
                              struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1;

    if (prep(s, &st,
             "DELETE FROM sightings WHERE (?1 IS NULL OR profile = ?1) AND last_seen_ms < ?2",
             false, e) < 0)
        return -1;
    bind_str(st, 1, profile);
    sqlite3_bind_int64(st, 2, before_ms);
    if (run(s, st, "prune sightings", e) == 0)
        r = 0;
    sqlite3_finalize(st);
    return r;
}

/* Read whole before the callbacks (a source holds few unclaimed files; the
 * LIMIT bounds a pathological one). */
static int sq_unclaimed(struct ledger *l, const char *profile, int64_t seen_since, sighting_fn fn,
                        void *ctx, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct row {
        char *path;
        struct sighting sg;
    } *rows = NULL;
    size_t n = 0, cap = 0, i;
    int r = -1, rc;

    if (prep(s, &st,
             "SELECT path, size, mtime_ns, COALESCE(appeared_ms, first_seen_ms), first_seen_ms, "
             "last_seen_ms FROM sightings sg WHERE profile = ?1 AND last_seen_ms >= ?2 AND "
             "NOT EXISTS (SELECT 1 FROM intakes i WHERE i.profile = sg.profile AND "
             "i.path = sg.path AND i.size = sg.size AND i.mtime_ns = sg.mtime_ns) "
             "ORDER BY 4, path LIMIT 1000",
             false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seen_since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rows[n].path = col_dup(st, 0);
        rows[n].sg.path = rows[n].path;
        rows[n].sg.size = (uint64_t)sqlite3_column_int64(st, 1);
        rows[n].sg.mtime_ns = sqlite3_column_int64(st, 2);
        rows[n].sg.appeared_ms = sqlite3_column_int64(st, 3);
        rows[n].sg.first_seen_ms = sqlite3_column_int64(st, 4);
        rows[n].sg.last_seen_ms = sqlite3_column_int64(st, 5);
        n++;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "unclaimed sightings");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (i = 0; i < n; i++)
        if (fn(ctx, &rows[i].sg))
            break;
    r = 0;
out:
    for (i = 0; i < n; i++)
        free(rows[i].path);
    free(rows);
    sqlite3_finalize(st);
    return r;
}

/* ---- the hash chain ---- */

static void read_link(sqlite3_stmt *st, struct chain_link *cl)
{
    memset(cl, 0, sizeof *cl);
    cl->seq = sqlite3_column_int64(st, 0);
    col_copy(st, 1, cl->intake, sizeof cl->intake);
    col_copy(st, 2, cl->tagmanifest, sizeof cl->tagmanifest);
    col_copy(st, 3, cl->prev, sizeof cl->prev);
    col_copy(st, 4, cl->link, sizeof cl->link);
    cl->time_ms = sqlite3_column_int64(st, 5);
}

static bool is_hex64(const char *h)
{
    size_t i;
    for (i = 0; i < SHA256_HEX_LEN - 1; i++)
        if (!h[i] || !strchr("0123456789abcdef", h[i]))
            return false;
    return h[i] == 0;
}

/*
 * Appends the intake's link, in one IMMEDIATE transaction so two sealers
 * never share a prev:
 *   1. if the intake already has a link, return it unchanged (a re-run seal
 *      step after a crash); the caller compares out->tagmanifest;
 *   2. prev = the last link, or 64 '0' for the first;
 *   3. link = chain_link_compute(prev, tagmanifest), inserted at seq + 1.
 * Returns 0 with *out filled, or -1.
 */
static int sq_chain_append(struct ledger *l, const char *id, const char *tagmanifest,
                           struct chain_link *out, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct chain_link cl;
    int r = -1, rc;

    if (!is_hex64(tagmanifest)) {
        werr_set(e, "%s: chain: tag manifest hash is not 64 lowercase hex characters", id);
        return -1;
    }
    if (tx_begin(s, e) < 0)
        return -1;
    if (prep_c(s, &st, "SELECT " CHAIN_COLS " FROM chain WHERE intake = ?1", e) < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_link(st, out);
        r = 0;
        goto out;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "chain");
        goto out;
    }
    release(s, st);
    st = NULL;

    memset(&cl, 0, sizeof cl);
    if (prep_c(s, &st, "SELECT seq, link FROM chain ORDER BY seq DESC LIMIT 1", e) < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cl.seq = sqlite3_column_int64(st, 0) + 1;
        col_copy(st, 1, cl.prev, sizeof cl.prev);
    } else if (rc == SQLITE_DONE) {
        cl.seq = 1;
        memcpy(cl.prev, zero_link, SHA256_HEX_LEN);
    } else {
        fail(s, e, rc, "chain");
        goto out;
    }
    release(s, st);
    st = NULL;
    snprintf(cl.intake, sizeof cl.intake, "%s", id);
    memcpy(cl.tagmanifest, tagmanifest, SHA256_HEX_LEN);
    chain_link_compute(cl.prev, cl.tagmanifest, cl.link);
    cl.time_ms = now_ms();

    if (prep_c(s, &st,
               "INSERT INTO chain (seq, intake, tagmanifest, prev, link, time_ms) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
               e) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, cl.seq);
    sqlite3_bind_text(st, 2, cl.intake, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cl.tagmanifest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, cl.prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, cl.link, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, cl.time_ms);
    if (run(s, st, "chain append", e) < 0)
        goto out;
    *out = cl;
    r = 0;
out:
    release(s, st);
    if (r == 0 && tx_commit(s, e) < 0)
        r = -1;
    if (r < 0)
        tx_rollback(s);
    return r;
}

static int sq_chain_state(struct ledger *l, const char *id, char head[SHA256_HEX_LEN],
                          struct chain_link *own, bool *has_own, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;

    *has_own = false;
    memcpy(head, zero_link, SHA256_HEX_LEN);
    if (prep_c(s, &st, "SELECT link FROM chain ORDER BY seq DESC LIMIT 1", e) < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        col_copy(st, 0, head, SHA256_HEX_LEN);
    else if (rc != SQLITE_DONE) {
        fail(s, e, rc, "chain");
        goto out;
    }
    release(s, st);
    st = NULL;
    if (prep_c(s, &st, "SELECT " CHAIN_COLS " FROM chain WHERE intake = ?1", e) < 0)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_link(st, own);
        *has_own = true;
    } else if (rc != SQLITE_DONE) {
        fail(s, e, rc, "chain");
        goto out;
    }
    r = 0;
out:
    release(s, st);
    return r;
}

/* Every link in seq order, PAGE at a time (fn runs with no statement open),
 * until fn returns non-zero.  Returns 0 or -1. */
static int sq_chain_walk(struct ledger *l, chain_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct chain_link *page = xcalloc(PAGE, sizeof *page);
    int64_t after = 0;
    int r = -1, n, i, rc, stop = 0;

    if (prep(s, &st, "SELECT " CHAIN_COLS " FROM chain WHERE seq > ?1 ORDER BY seq LIMIT ?2", false,
             e) < 0)
        goto out;
    while (!stop) {
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int(st, 2, PAGE);
        n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            read_link(st, &page[n++]);
        if (rc != SQLITE_DONE) {
            fail(s, e, rc, "chain walk");
            goto out;
        }
        sqlite3_reset(st);
        for (i = 0; i < n && !stop; i++)
            stop = fn(ctx, &page[i]);
        if (n < PAGE)
            break;
        after = page[n - 1].seq;
    }
    r = 0;
out:
    free(page);
    sqlite3_finalize(st);
    return r;
}

/* ---- settings and health ---- */

static int sq_kv_get(struct ledger *l, const char *key, char **value, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;

    *value = NULL;
    if (prep(s, &st, "SELECT value FROM kv WHERE key = ?1", false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = col_dup(st, 0);
        r = 0;
    } else if (rc == SQLITE_DONE) {
        r = 0;
    } else {
        fail(s, e, rc, "kv get");
    }
    sqlite3_finalize(st);
    return r;
}

/* Sets key to value; a NULL value removes the key. */
static int sq_kv_set(struct ledger *l, const char *key, const char *value, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r;

    if (prep(s, &st,
             value ? "INSERT INTO kv (key, value) VALUES (?1, ?2) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                   : "DELETE FROM kv WHERE key = ?1",
             false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    r = run(s, st, "kv set", e);
    sqlite3_finalize(st);
    return r;
}

static int sq_kv_mark(struct ledger *l, const char *key, const char *value, const char *unless,
                      struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r;
    if (prep(s, &st, LEDGER_KV_MARK_SQL("?1", "?2", "?3"), false, e) < 0)
        return -1;
    bind_str(st, 1, key);
    bind_str(st, 2, value);
    bind_str(st, 3, unless);
    r = run(s, st, "kv mark", e);
    sqlite3_finalize(st);
    return r < 0 ? -1 : sqlite3_changes(s->db) > 0;
}

/*
 * PRAGMA integrity_check's lines, followed by any foreign key violation
 * (PRAGMA foreign_key_check); *result is exactly "ok" when both are clean.
 * The caller frees *result.
 */
static int sq_check(struct ledger *l, char **result, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    char *out = NULL, *t;
    int r = -1, rc;

    *result = NULL;
    if (prep(s, &st, "PRAGMA integrity_check", false, e) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        t = out ? xasprintf("%s\n%s", out, line ? line : "") : xstrdup(line ? line : "");
        free(out);
        out = t;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "integrity check");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (prep(s, &st, "PRAGMA foreign_key_check", false, e) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *table = (const char *)sqlite3_column_text(st, 0);
        const char *parent = (const char *)sqlite3_column_text(st, 2);
        if (out && strcmp(out, "ok") == 0) {
            free(out);
            out = NULL;
        }
        t = xasprintf("%s%sforeign key: %s row %lld refers to a missing %s row", out ? out : "",
                      out ? "\n" : "", table ? table : "?", sqlite3_column_int64(st, 1),
                      parent ? parent : "?");
        free(out);
        out = t;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "foreign key check");
        goto out;
    }
    *result = out ? out : xstrdup("ok");
    out = NULL;
    r = 0;
out:
    free(out);
    sqlite3_finalize(st);
    return r;
}

/* synchronous=FULL or NORMAL (WAL: NORMAL commits are atomic and survive a
 * crash of the process; they reach the disk with the next FULL commit). */
static int sq_set_durable(struct ledger *l, bool full, struct werr *e)
{
    struct sq *s = l->impl;
    if (s->relaxed == !full)
        return 0;
    if (exec(s, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", "pragma", e) <
        0)
        return -1;
    s->relaxed = !full;
    return 0;
}

/* Why path cannot be written by us, or NULL when it can (or is absent). */
static char *not_writable(const char *path)
{
    struct stat st;
    struct passwd *pw;
    int err;
    if (access(path, W_OK) == 0 || errno == ENOENT)
        return NULL;
    err = errno;
    if (stat(path, &st) < 0)
        return xasprintf("%s: %s", path, strerror(errno));
    pw = getpwuid(st.st_uid);
    return xasprintf("%s is not writable by uid %u: owned by uid %u%s%s%s, mode %04o (%s)", path,
                     (unsigned)geteuid(), (unsigned)st.st_uid, pw ? " (" : "",
                     pw ? pw->pw_name : "", pw ? ")" : "", (unsigned)(st.st_mode & 07777),
                     strerror(err));
}

/*
 * The ledger, its WAL and shared-memory files and their directory must all
 * be writable; SQLite would otherwise open the file read-only and fail only
 * at the first write ("attempt to write a readonly database").
 */
static int sq_writable(struct ledger *l, struct werr *e)
{
    struct sq *s = l->impl;
    char *dir = xstrdup(s->path), *slash = strrchr(dir, '/'), *why = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    if (slash)
        *slash = 0;
    else
        snprintf(dir, 2, ".");
    for (size_t i = 0; i < 3 && !why; i++) {
        char *p = xasprintf("%s%s", s->path, suffix[i]);
        why = not_writable(p);
        free(p);
    }
    if (!why)
        why = not_writable(dir);
    if (!why && sqlite3_db_readonly(s->db, "main") == 1)
        why = xasprintf("%s: SQLite opened it read-only", s->path);
    free(dir);
    if (why) {
        werr_set(e, "cannot write the ledger: %s", why);
        free(why);
        return -1;
    }
    return 0;
}

/* ---- nodes and leases (ledger.h) ---- */

static int sq_node_beat(struct ledger *l, const char *node, int64_t pid, int64_t started_ms,
                        int64_t now, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r;
    if (prep(s, &st,
             "INSERT INTO nodes (name, pid, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?4) "
             "ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, "
             "started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms",
             false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, pid);
    sqlite3_bind_int64(st, 3, started_ms);
    sqlite3_bind_int64(st, 4, now);
    r = run(s, st, "node heartbeat", e);
    sqlite3_finalize(st);
    return r;
}

static int sq_lease_renew(struct ledger *l, const char *node, int64_t until, uint64_t *n,
                          struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r;
    if (prep(s, &st,
             "UPDATE intakes SET lease_until_ms = ?2 WHERE node = ?1 "
             "AND state NOT IN ('done', 'failed')",
             false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, until);
    r = run(s, st, "lease renew", e);
    if (r == 0 && n)
        *n = (uint64_t)sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return r;
}

/* One IMMEDIATE transaction (SQLite has one writer at a time, so two
 * callers never take the same intake): pick, move, record, commit; then
 * the callbacks. */
static int sq_lease_takeover(struct ledger *l, const char *node, const char *profiles, int64_t now,
                             int64_t until, int limit, takeover_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    struct taken {
        char id[ID_LEN];
        char *from;
    } *v = NULL;
    int n = 0, r = -1, rc, i;

    if (tx_begin(s, e) < 0)
        return -1;
    if (prep(s, &st,
             "SELECT id, node FROM intakes WHERE " LEDGER_TAKEOVER_WHERE(
                 "?1") "AND (?3 IS NULL OR instr(',' || ?3 || ',', ',' || profile || ',') > 0) "
                       "ORDER BY id LIMIT ?2",
             false, e) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, limit);
    bind_str(st, 3, profiles);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = xrealloc(v, (size_t)(n + 1) * sizeof *v);
        col_copy(st, 0, v[n].id, sizeof v[n].id);
        v[n].from = col_dup(st, 1);
        n++;
    }
    if (rc != SQLITE_DONE) {
        fail(s, e, rc, "takeover");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (prep(s, &st, "UPDATE intakes SET node = ?2, lease_until_ms = ?3 WHERE id = ?1", false, e) <
        0)
        goto out;
    for (i = 0; i < n; i++) {
        json_t *dj = json_pack("{s:s,s:o}", "node", node, "from",
                               v[i].from ? json_string(v[i].from) : json_null());
        char *detail = dump(dj);
        int ev;
        json_decref(dj);
        sqlite3_bind_text(st, 1, v[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, until);
        ev = run(s, st, "takeover", e) < 0 ? -1 : put_event(s, v[i].id, now, "takeover", detail, e);
        free(detail);
        if (ev < 0)
            goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (tx_commit(s, e) < 0)
        goto out;
    for (i = 0; fn && i < n; i++)
        if (fn(ctx, v[i].id, v[i].from))
            break;
    r = n;
out:
    sqlite3_finalize(st);
    if (r < 0)
        tx_rollback(s);
    for (i = 0; i < n; i++)
        free(v[i].from);
    free(v);
    return r;
}

static int sq_nodes(struct ledger *l, int64_t now, node_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;
    if (prep(s, &st, LEDGER_NODES_SQL("?1"), false, e) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct node_info ni = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .pid = sqlite3_column_int64(st, 1),
            .started_ms = sqlite3_column_int64(st, 2),
            .heartbeat_ms = sqlite3_column_int64(st, 3),
            .in_progress = (uint64_t)sqlite3_column_int64(st, 4),
            .expired = (uint64_t)sqlite3_column_int64(st, 5),
        };
        if (fn(ctx, &ni)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        fail(s, e, rc, "nodes");
    else
        r = 0;
    sqlite3_finalize(st);
    return r;
}

/* ---- operators' actions (ledger.h) ---- */

static int sq_action_add(struct ledger *l, const struct action *a, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r;
    if (prep(s, &st,
             "INSERT INTO actions (time_ms, actor, action, profile, intake, ok, result) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
             false, e) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, a->time_ms ? a->time_ms : now_ms());
    bind_str(st, 2, a->actor);
    bind_str(st, 3, a->action);
    bind_str(st, 4, a->profile);
    bind_str(st, 5, a->intake);
    sqlite3_bind_int(st, 6, a->ok);
    bind_str(st, 7, a->result);
    r = run(s, st, "action", e);
    sqlite3_finalize(st);
    return r;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int sq_actions(struct ledger *l, const char *profile, int limit, action_fn fn, void *ctx,
                      struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;
    if (prep(s, &st, LEDGER_ACTIONS_SQL("?1", "?2"), false, e) < 0)
        return -1;
    bind_str(st, 1, profile);
    sqlite3_bind_int(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct action a = {
            .time_ms = sqlite3_column_int64(st, 0),
            .actor = col_text(st, 1),
            .action = col_text(st, 2),
            .profile = col_text(st, 3),
            .intake = col_text(st, 4),
            .ok = sqlite3_column_int(st, 5) != 0,
            .result = col_text(st, 6),
        };
        if (fn(ctx, &a)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        fail(s, e, rc, "actions");
    else
        r = 0;
    sqlite3_finalize(st);
    return r;
}

/* ---- bulk copy (ledger_copy.c) ---- */

/* One IMMEDIATE transaction: other writers wait (and time out busy). */
static int sq_bulk_begin(struct ledger *l, struct werr *e)
{
    return tx_begin(l->impl, e);
}

static int sq_bulk_end(struct ledger *l, bool commit, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_finalize(s->put);
    s->put = NULL;
    s->put_table = NULL;
    if (commit)
        return tx_commit(s, e);
    tx_rollback(s);
    return 0;
}

static int sq_rows(struct ledger *l, const struct ledger_table *t, ledger_row_fn fn, void *ctx,
                   struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    const char **vals = xcalloc((size_t)t->ncols, sizeof *vals);
    char *cols = ledger_col_list(t), *sql = xasprintf("SELECT %s FROM \"%s\"", cols, t->name);
    int r = -1, rc;

    if (prep(s, &st, sql, false, e) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < t->ncols; i++)
            vals[i] = sqlite3_column_type(st, i) == SQLITE_NULL
                          ? NULL
                          : (const char *)sqlite3_column_text(st, i);
        if (fn(ctx, vals))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fail(s, e, rc, t->name);
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(st);
    free(vals);
    free(cols);
    free(sql);
    return r;
}

/* Inserts one row of t (vals NULL: t is complete). */
static int sq_put_row(struct ledger *l, const struct ledger_table *t, const char *const *vals,
                      struct werr *e)
{
    struct sq *s = l->impl;
    if (!vals || s->put_table != t) {
        sqlite3_finalize(s->put);
        s->put = NULL;
        s->put_table = NULL;
    }
    if (!vals)
        return 0;
    if (!s->put) {
        char *cols = ledger_col_list(t), *marks = xstrdup(""), *n, *sql;
        int r;
        for (int i = 0; i < t->ncols; i++) {
            n = xasprintf("%s%s?", marks, i ? ", " : "");
            free(marks);
            marks = n;
        }
        sql = xasprintf("INSERT INTO \"%s\" (%s) VALUES (%s)", t->name, cols, marks);
        r = prep(s, &s->put, sql, false, e);
        free(cols);
        free(marks);
        free(sql);
        if (r < 0)
            return -1;
        s->put_table = t;
    }
    for (int i = 0; i < t->ncols; i++)
        bind_str(s->put, i + 1, vals[i]);
    return run(s, s->put, t->name, e);
}

static const char *sq_where(struct ledger *l)
{
    return ((struct sq *)l->impl)->path;
}

static int sq_poll_begin(struct ledger *l, const char *profile, const char *node, int64_t now,
                         int64_t until, bool asked, struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;
    if (prep(s, &st, LEDGER_POLL_BEGIN_SQL("?1", "?2", "?3", "?4", "?5"), false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, until);
    sqlite3_bind_int(st, 5, asked);
    if ((rc = sqlite3_step(st)) != SQLITE_DONE)
        fail(s, e, rc, "poll begin");
    else
        r = sqlite3_changes(s->db) == 1;
    sqlite3_finalize(st);
    return r;
}

static int sq_poll_end(struct ledger *l, const char *profile, const char *node, int64_t next,
                       struct werr *e)
{
    struct sq *s = l->impl;
    sqlite3_stmt *st = NULL;
    int r = -1, rc;
    if (prep(s, &st, LEDGER_POLL_END_SQL("?1", "?2", "?3"), false, e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, next);
    if ((rc = sqlite3_step(st)) != SQLITE_DONE)
        fail(s, e, rc, "poll end");
    else
        r = 0;
    sqlite3_finalize(st);
    return r;
}

/* One machine's file: the pipeline's chain.lock serializes its processes. */
static int sq_chain_lock(struct ledger *l, bool on, struct werr *e)
{
    (void)l;
    (void)on;
    (void)e;
    return 0;
}

static const struct ledger_ops sqlite_ops = {
    .chain_lock = sq_chain_lock,
    .poll_begin = sq_poll_begin,
    .poll_end = sq_poll_end,
    .node_beat = sq_node_beat,
    .lease_renew = sq_lease_renew,
    .lease_takeover = sq_lease_takeover,
    .nodes = sq_nodes,
    .action_add = sq_action_add,
    .actions = sq_actions,
    .bulk_begin = sq_bulk_begin,
    .bulk_end = sq_bulk_end,
    .rows = sq_rows,
    .put_row = sq_put_row,
    .where = sq_where,
    .writable = sq_writable,
    .set_durable = sq_set_durable,
    .claim = sq_claim,
    .claim_batch = sq_claim_batch,
    .transition = sq_transition,
    .transition_update = sq_transition_update,
    .update = sq_update,
    .event = sq_event,
    .get = sq_get,
    .list = sq_list,
    .events = sq_events,
    .find_loaded = sq_find_loaded,
    .sighting = sq_sighting,
    .sightings_prune = sq_sightings_prune,
    .unclaimed = sq_unclaimed,
    .chain_append = sq_chain_append,
    .chain_walk = sq_chain_walk,
    .chain_state = sq_chain_state,
    .kv_get = sq_kv_get,
    .kv_set = sq_kv_set,
    .kv_mark = sq_kv_mark,
    .check = sq_check,
    .close = sq_close,
};
