/*
 * ledger_pg: the PostgreSQL backend of ledger.h, for several wharf nodes
 * sharing one ledger.
 *
 * Owns one libpq connection per struct ledger (one per thread, as with
 * SQLite).  The connection comes from ledger.dsn_file (a libpq connection
 * string or URI, never logged: a password in it is scrubbed from every
 * message) or from the PG* environment / ~/.pgpass.  A connection lost (a
 * restarted server) is reset at the start of the next operation; the
 * operation that saw it fails with kind busy (transient), so the caller
 * retries it as it retries a busy SQLite file.
 *
 * The schema is created and migrated on open, under a transaction-scoped
 * advisory lock so that nodes starting together migrate once; the version
 * lives in the table wharf_schema (see `migrations`).  The semantics are
 * those of ledger_sqlite.c, statement for statement:
 *   - claim: INSERT ... ON CONFLICT DO NOTHING on the unique claim key;
 *   - transition: UPDATE ... WHERE state = from (PostgreSQL re-checks the
 *     WHERE after waiting for a concurrent writer, so exactly one wins);
 *   - the chain: appending locks the one row of chain_head FOR UPDATE, so
 *     two sealers on two nodes never share a prev.
 * Strings handed to callbacks live only for the call.
 */
#include "ledger/ledger.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger_sql.h"
#include "util/escape.h"
#include "util/obs.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define PAGE       128
#define MIN_PREFIX 6
#define DSN_MAX    8192

/*
 * Migrations, in order; migrations[i] takes the schema from version i to
 * i + 1 in one transaction with the bump of wharf_schema.version.  Never
 * edit one that shipped: append.  Version 1 is the SQLite schema at its
 * version 2, in PostgreSQL types; ids sort bytewise (COLLATE "C") as they
 * do in SQLite; chain_head is the one row appenders lock.
 */
static const char *const migrations[] = {
    "CREATE TABLE intakes ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  profile TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  size BIGINT NOT NULL,"
    "  mtime_ns BIGINT NOT NULL,"
    "  sha256 TEXT,"
    "  state TEXT NOT NULL,"
    "  failed_from TEXT,"
    "  outcome TEXT NOT NULL DEFAULT 'none',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  created_ms BIGINT NOT NULL,"
    "  updated_ms BIGINT NOT NULL,"
    "  \"rows\" BIGINT NOT NULL DEFAULT 0,"
    "  bag TEXT,"
    "  replay_of TEXT COLLATE \"C\" REFERENCES intakes(id),"
    "  replayed_by TEXT COLLATE \"C\" REFERENCES intakes(id),"
    "  info TEXT,"
    "  sealed_ms BIGINT,"
    "  UNIQUE (profile, source, path, size, mtime_ns)"
    ");"
    "CREATE INDEX intakes_state ON intakes(state);"
    "CREATE INDEX intakes_profile ON intakes(profile, state);"
    "CREATE INDEX intakes_sha256 ON intakes(profile, sha256);"
    "CREATE INDEX intakes_sealed ON intakes(sealed_ms);"
    "CREATE INDEX intakes_path ON intakes(profile, path);"
    "CREATE TABLE events ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  intake TEXT COLLATE \"C\" NOT NULL REFERENCES intakes(id),"
    "  time_ms BIGINT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  detail TEXT"
    ");"
    "CREATE INDEX events_intake ON events(intake, time_ms, id);"
    "CREATE TABLE sightings ("
    "  profile TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  size BIGINT NOT NULL,"
    "  mtime_ns BIGINT NOT NULL,"
    "  first_seen_ms BIGINT NOT NULL,"
    "  last_seen_ms BIGINT NOT NULL,"
    "  appeared_ms BIGINT,"
    "  PRIMARY KEY (profile, path)"
    ");"
    "CREATE TABLE chain ("
    "  seq BIGINT PRIMARY KEY,"
    "  intake TEXT COLLATE \"C\" NOT NULL UNIQUE REFERENCES intakes(id),"
    "  tagmanifest TEXT NOT NULL,"
    "  prev TEXT NOT NULL,"
    "  link TEXT NOT NULL,"
    "  time_ms BIGINT NOT NULL"
    ");"
    "CREATE TABLE chain_head ("
    "  one INTEGER PRIMARY KEY CHECK (one = 1),"
    "  seq BIGINT NOT NULL,"
    "  link TEXT NOT NULL"
    ");"
    "INSERT INTO chain_head VALUES "
    "(1, 0, '0000000000000000000000000000000000000000000000000000000000000000');"
    "CREATE TABLE kv ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ");",
    /* 1 -> 2: nodes sharing the ledger, as SQLite's 2 -> 3. */
    "ALTER TABLE intakes ADD COLUMN node TEXT;"
    "ALTER TABLE intakes ADD COLUMN lease_until_ms BIGINT;"
    "CREATE INDEX intakes_in_progress ON intakes(node, lease_until_ms) "
    "WHERE state NOT IN ('done', 'failed');"
    "CREATE TABLE nodes ("
    "  name TEXT PRIMARY KEY,"
    "  pid BIGINT NOT NULL,"
    "  started_ms BIGINT NOT NULL,"
    "  heartbeat_ms BIGINT NOT NULL"
    ");",
    /* 2 -> 3: operators' actions, as SQLite's 3 -> 4. */
    "CREATE TABLE actions ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  time_ms BIGINT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  profile TEXT,"
    "  intake TEXT COLLATE \"C\","
    "  ok INTEGER NOT NULL,"
    "  result TEXT"
    ");",
    /* 3 -> 4: one poller per source, as SQLite's 4 -> 5. */
    "CREATE TABLE polls ("
    "  profile TEXT PRIMARY KEY,"
    "  node TEXT NOT NULL,"
    "  next_ms BIGINT NOT NULL,"
    "  until_ms BIGINT NOT NULL"
    ");",
    /* 4 -> 5: the actions append-only, the console's earlier log moved in,
     * as SQLite's 5 -> 6 (a log that does not parse stays in kv). */
    "CREATE FUNCTION wharf_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the actions are append-only'; END $$;"
    "CREATE TRIGGER actions_append_only BEFORE UPDATE OR DELETE ON actions "
    "FOR EACH ROW EXECUTE FUNCTION wharf_append_only();"
    "DO $$ BEGIN "
    "INSERT INTO actions (time_ms, actor, action, profile, intake, ok, result) "
    "SELECT (extract(epoch FROM (x.e->>'time')::timestamptz) * 1000)::bigint, "
    "COALESCE(x.e->>'user', '?'), COALESCE(x.e->>'action', '?'), x.e->>'profile', "
    "x.e->>'intake', " LEGACY_OK(
        "x.e->>'result'") ", x.e->>'result' "
                          "FROM kv, jsonb_array_elements(kv.value::jsonb) WITH ORDINALITY AS x(e, "
                          "n) "
                          "WHERE kv.key = 'console:actions' AND x.e->>'time' IS NOT NULL ORDER BY "
                          "x.n; "
                          "DELETE FROM kv WHERE key = 'console:actions'; "
                          "EXCEPTION WHEN others THEN RAISE WARNING 'console:actions left in kv: "
                          "%', SQLERRM; END $$;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define INTAKE_COLS                                                                                \
    "id, profile, source, path, name, size, mtime_ns, sha256, state, failed_from, outcome, "       \
    "attempts, next_attempt_ms, last_error, created_ms, updated_ms, \"rows\", bag, replay_of, "    \
    "replayed_by, info, node, lease_until_ms"

#define CHAIN_COLS "seq, intake, tagmanifest, prev, link, time_ms"

struct lpg {
    PGconn *c;
    char *where;  /* postgresql://host:port/db: no user, no password */
    char *secret; /* the password from the dsn file, for scrubbing; may be NULL */
    const struct ledger_table *copying; /* bulk copy: the table in COPY FROM STDIN */
};

static const char *const zero_link =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Replaces every occurrence of the password in msg with "***". */
static void scrub(const struct lpg *g, char *msg)
{
    size_t n;
    char *p;
    if (!g->secret || !(n = strlen(g->secret)))
        return;
    while ((p = strstr(msg, g->secret))) {
        size_t tail = strlen(p + n);
        memmove(p + 3, p + n, tail + 1);
        memcpy(p, "***", 3);
    }
}

/* Fills e from the connection's or the result's message.  A lost
 * connection, a server shutting down, a serialization failure or a
 * deadlock are transient (busy); the rest is other. */
static int fail(struct lpg *g, struct werr *e, const PGresult *res, const char *what)
{
    char msg[700];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    enum werr_kind kind = WERR_OTHER;
    snprintf(msg, sizeof msg, "%s",
             res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(g->c));
    for (char *q = msg; *q; q++)
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    for (size_t n = strlen(msg); n && msg[n - 1] == ' ';)
        msg[--n] = 0;
    scrub(g, msg);
    if (PQstatus(g->c) != CONNECTION_OK ||
        (state &&
         (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strcmp(state, "40001") ||
          !strcmp(state, "40P01") || !strcmp(state, "55P03") || !strcmp(state, "25006"))))
        kind = WERR_BUSY;
    else if (state && !strncmp(state, "53", 2))
        kind = WERR_NOSPACE;
    werr_setk(e, kind, "%s: %s: %s", g->where, what, msg);
    return -1;
}

/* Makes sure the connection is up (resetting one a restarted server
 * dropped); 0 or -1. */
static int alive(struct lpg *g, struct werr *e)
{
    if (PQstatus(g->c) == CONNECTION_OK)
        return 0;
    PQreset(g->c);
    if (PQstatus(g->c) != CONNECTION_OK)
        return fail(g, e, NULL, "reconnect");
    return 0;
}

/* A statement with text parameters (none: the simple protocol, which also
 * runs a migration's several statements); the result (caller clears) or
 * NULL. */
static PGresult *q(struct lpg *g, const char *sql, int n, const char *const *params,
                   const char *what, struct werr *e)
{
    PGresult *res = n ? PQexecParams(g->c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(g->c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail(g, e, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* A statement whose result only matters as success; 0 or -1. */
static int x(struct lpg *g, const char *sql, int n, const char *const *params, const char *what,
             struct werr *e)
{
    PGresult *res = q(g, sql, n, params, what, e);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* Rows changed by res (INSERT/UPDATE/DELETE). */
static long changed(PGresult *res)
{
    return strtol(PQcmdTuples(res), NULL, 10);
}

static int tx_begin(struct lpg *g, struct werr *e)
{
    if (alive(g, e) < 0)
        return -1;
    return x(g, "BEGIN", 0, NULL, "begin", e);
}

static int tx_commit(struct lpg *g, struct werr *e)
{
    int64_t t0 = obs_now_ns();
    int r = x(g, "COMMIT", 0, NULL, "commit", e);
    if (r >= 0)
        obs_since(OBS_LEDGER_COMMIT, t0);
    return r;
}

static void tx_rollback(struct lpg *g)
{
    if (PQstatus(g->c) == CONNECTION_OK && PQtransactionStatus(g->c) != PQTRANS_IDLE)
        PQclear(PQexec(g->c, "ROLLBACK"));
}

static int64_t num(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *val_dup(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

static void val_copy(const PGresult *res, int row, int col, char *dst, size_t n)
{
    snprintf(dst, n, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static char *dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* ---- opening ---- */

/* The dsn file's text, trailing white space cut; NULL with e filled.  The
 * text never goes into a message. */
static char *read_dsn(const char *path, struct werr *e)
{
    char *s;
    ssize_t n;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        werr_sys(e, "ledger dsn_file %s", path);
        werr_setkind(e, WERR_CONFIG);
        return NULL;
    }
    s = xmalloc(DSN_MAX + 1);
    while ((n = read(fd, s + len, DSN_MAX + 1 - len)) > 0)
        len += (size_t)n;
    if (n < 0)
        werr_sys(e, "ledger dsn_file %s: read", path);
    else if (len > DSN_MAX)
        werr_setk(e, WERR_CONFIG, "ledger dsn_file %s: longer than %d bytes", path, DSN_MAX);
    while (len && strchr(" \t\r\n", s[len - 1]))
        len--;
    s[len] = 0;
    if (n >= 0 && len <= DSN_MAX && (!len || memchr(s, 0, len)))
        werr_setk(e, WERR_CONFIG, "ledger dsn_file %s: %s", path,
                  len ? "holds a NUL byte" : "is empty (expected a libpq connection string)");
    close(fd);
    if (n < 0 || len > DSN_MAX || !len || memchr(s, 0, len)) {
        explicit_bzero(s, DSN_MAX + 1);
        free(s);
        return NULL;
    }
    return s;
}

static void no_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int migrate(struct lpg *g, struct werr *e)
{
    PGresult *res;
    int v = 0, r = -1;
    char vs[16];
    const char *p[1] = {vs};

    if (tx_begin(g, e) < 0)
        return -1;
    if (x(g, "SELECT pg_advisory_xact_lock(1919443570)", 0, NULL, "migration lock", e) < 0 ||
        x(g, "CREATE TABLE IF NOT EXISTS wharf_schema (version INTEGER NOT NULL)", 0, NULL,
          "migrate", e) < 0)
        goto out;
    if (!(res = q(g, "SELECT version FROM wharf_schema", 0, NULL, "schema version", e)))
        goto out;
    if (PQntuples(res) > 0)
        v = (int)num(res, 0, 0);
    else if (x(g, "INSERT INTO wharf_schema VALUES (0)", 0, NULL, "migrate", e) < 0) {
        PQclear(res);
        goto out;
    }
    PQclear(res);
    if (v > SCHEMA_VERSION) {
        werr_setk(e, WERR_CONFIG,
                  "%s: ledger schema version %d is newer than this wharf knows (%d): upgrade "
                  "wharf",
                  g->where, v, SCHEMA_VERSION);
        goto out;
    }
    for (; v < SCHEMA_VERSION; v++) {
        char what[48];
        snprintf(what, sizeof what, "migration %d -> %d", v, v + 1);
        snprintf(vs, sizeof vs, "%d", v + 1);
        if (x(g, migrations[v], 0, NULL, what, e) < 0 ||
            x(g, "UPDATE wharf_schema SET version = $1", 1, p, what, e) < 0)
            goto out;
    }
    r = tx_commit(g, e);
out:
    if (r < 0)
        tx_rollback(g);
    return r;
}

static void lpg_free(struct lpg *g)
{
    if (!g)
        return;
    if (g->c)
        PQfinish(g->c);
    free(g->where);
    if (g->secret) {
        explicit_bzero(g->secret, strlen(g->secret));
        free(g->secret);
    }
    free(g);
}

static const struct ledger_ops pg_ops;

struct ledger *ledger_open_pg(const char *dsn_file, struct werr *e)
{
    struct lpg *g = xcalloc(1, sizeof *g);
    struct ledger *l = NULL;
    char *dsn = NULL;

    if (dsn_file) {
        PQconninfoOption *opts;
        char *perr = NULL;
        if (!(dsn = read_dsn(dsn_file, e)))
            goto out;
        if (!(opts = PQconninfoParse(dsn, &perr))) {
            PQfreemem(perr); /* libpq's words may quote the password */
            werr_setk(e, WERR_CONFIG,
                      "ledger dsn_file %s is not a libpq connection string or URI "
                      "(key=value ... or postgresql://...)",
                      dsn_file);
            goto out;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (!strcmp(o->keyword, "password") && o->val && *o->val)
                g->secret = xstrdup(o->val);
        PQconninfoFree(opts);
    }
    {
        const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
        const char *vals[] = {"10", "wharf-ledger", dsn, NULL};
        g->c = PQconnectdbParams(keys, vals, 1);
    }
    if (!g->c) {
        werr_setk(e, WERR_BUSY, "postgresql ledger: out of memory");
        goto out;
    }
    g->where = xasprintf("ledger postgresql://%s:%s/%s", PQhost(g->c) ? PQhost(g->c) : "?",
                         PQport(g->c) ? PQport(g->c) : "?", PQdb(g->c) ? PQdb(g->c) : "?");
    if (PQstatus(g->c) != CONNECTION_OK) {
        fail(g, e, NULL, "cannot connect");
        goto out;
    }
    PQsetNoticeProcessor(g->c, no_notices, NULL);
    if (x(g, "SET client_min_messages = warning", 0, NULL, "settings", e) < 0 || migrate(g, e) < 0)
        goto out;
    l = xcalloc(1, sizeof *l);
    l->ops = &pg_ops;
    l->impl = g;
out:
    if (dsn) {
        explicit_bzero(dsn, strlen(dsn));
        free(dsn);
    }
    if (!l)
        lpg_free(g);
    return l;
}

static void pg_close(struct ledger *l)
{
    lpg_free(l->impl);
    free(l);
}

/* ---- intakes ---- */

static int put_event(struct lpg *g, const char *id, int64_t t, const char *kind, const char *detail,
                     struct werr *e)
{
    char ts[24];
    const char *p[4] = {id, ts, kind, detail};
    snprintf(ts, sizeof ts, "%" PRId64, t);
    return x(g, "INSERT INTO events (intake, time_ms, kind, detail) VALUES ($1, $2, $3, $4)", 4, p,
             "insert event", e);
}

/* As sq_claim: the intake in state found with a fresh id and a "found"
 * event, or nothing (0) when the claim key is taken. */
static int pg_claim(struct ledger *l, struct intake *in, struct werr *e)
{
    struct lpg *g = l->impl;
    const char *name = in->name;
    char *info = NULL, *detail = NULL;
    char size[24], mtime[24], att[16], next[24], ts[24], rows[24], lease[24];
    json_t *dj;
    PGresult *res = NULL;
    int64_t t = now_ms();
    int r = -1;

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
    snprintf(size, sizeof size, "%" PRIu64, in->size);
    snprintf(mtime, sizeof mtime, "%" PRId64, in->mtime_ns);
    snprintf(att, sizeof att, "%d", in->attempts);
    snprintf(next, sizeof next, "%" PRId64, in->next_attempt_ms);
    snprintf(ts, sizeof ts, "%" PRId64, t);
    snprintf(rows, sizeof rows, "%" PRIu64, in->rows);
    snprintf(lease, sizeof lease, "%" PRId64, t + ledger_lease_ms());
    const char *p[] = {in->id,
                       in->profile,
                       in->source,
                       in->path,
                       name,
                       size,
                       mtime,
                       in->sha256[0] ? in->sha256 : NULL,
                       outcome_name(in->outcome),
                       att,
                       next,
                       in->last_error,
                       ts,
                       rows,
                       in->bag,
                       in->replay_of,
                       in->replayed_by,
                       info,
                       ledger_node(),
                       ledger_node() ? lease : NULL};

    if (tx_begin(g, e) < 0)
        goto out;
    res = q(g,
            "INSERT INTO intakes (id, profile, source, path, name, size, mtime_ns, sha256, "
            "state, outcome, attempts, next_attempt_ms, last_error, created_ms, updated_ms, "
            "\"rows\", bag, replay_of, replayed_by, info, node, lease_until_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'found', $9, $10, $11, $12, $13, $13, "
            "$14, $15, $16, $17, $18, $19, $20) "
            "ON CONFLICT (profile, source, path, size, mtime_ns) DO NOTHING",
            20, p, "claim", e);
    if (!res)
        goto out;
    if (changed(res) == 0) {
        r = tx_commit(g, e) < 0 ? -1 : 0;
        goto out;
    }
    if (put_event(g, in->id, t, "found", detail, e) < 0 || tx_commit(g, e) < 0)
        goto out;
    in->state = ST_FOUND;
    in->created_ms = in->updated_ms = t;
    r = 1;
out:
    PQclear(res);
    if (r < 0)
        tx_rollback(g);
    if (r != 1)
        in->id[0] = 0;
    free(info);
    free(detail);
    return r;
}

/* As sq_transition: compare-and-set with its event in one transaction. */
static int update_row(struct lpg *g, const struct intake *in, struct werr *e);

/* The transition, with in's mutable fields (update_row) when in is given:
 * written only when moved, in the same transaction. */
static int transition_tx(struct ledger *l, const char *id, const struct intake *in,
                         enum intake_state from, enum intake_state to, const char *kind,
                         json_t *detail, struct werr *e)
{
    struct lpg *g = l->impl;
    char *dj = dump(detail);
    char ts[24], lease[24];
    int64_t t = now_ms();
    PGresult *res = NULL;
    int r = -1;

    json_decref(detail);
    if ((int)from < 0 || from >= ST__COUNT || (int)to < 0 || to >= ST__COUNT) {
        werr_set(e, "%s: transition: bad state", id);
        goto out;
    }
    snprintf(ts, sizeof ts, "%" PRId64, t);
    snprintf(lease, sizeof lease, "%" PRId64, t + ledger_lease_ms());
    const char *p[] = {id, state_name(from), state_name(to), ts, ledger_node(), lease};
    if (tx_begin(g, e) < 0)
        goto out;
    res = q(g,
            "UPDATE intakes SET state = $3::text, "
            "failed_from = CASE WHEN $3::text = 'failed' THEN $2::text ELSE NULL END, "
            "updated_ms = $4::bigint, "
            "sealed_ms = CASE WHEN $3::text = 'sealed' THEN $4::bigint ELSE sealed_ms END, "
            "node = CASE WHEN $5::text IS NULL OR $3::text IN ('done', 'failed') THEN node "
            "ELSE $5::text END, "
            "lease_until_ms = CASE WHEN $3::text IN ('done', 'failed') THEN NULL "
            "WHEN $5::text IS NULL THEN lease_until_ms ELSE $6::bigint END "
            "WHERE id = $1 AND state = $2::text AND ($5::text IS NULL OR node IS NULL OR "
            "node = $5::text OR lease_until_ms IS NULL OR lease_until_ms < $4::bigint)",
            6, p, "transition", e);
    if (!res)
        goto out;
    if (changed(res) != 1) {
        r = tx_commit(g, e) < 0 ? -1 : 0;
        goto out;
    }
    if ((in && update_row(g, in, e) < 0) ||
        put_event(g, id, t, kind ? kind : state_name(to), dj, e) < 0 || tx_commit(g, e) < 0)
        goto out;
    r = 1;
out:
    PQclear(res);
    if (r < 0)
        tx_rollback(g);
    free(dj);
    return r;
}

static int pg_transition(struct ledger *l, const char *id, enum intake_state from,
                         enum intake_state to, const char *kind, json_t *detail, struct werr *e)
{
    return transition_tx(l, id, NULL, from, to, kind, detail, e);
}

static int pg_transition_update(struct ledger *l, const struct intake *in, enum intake_state from,
                                enum intake_state to, const char *kind, json_t *detail,
                                struct werr *e)
{
    return transition_tx(l, in->id, in, from, to, kind, detail, e);
}

static int update_row(struct lpg *g, const struct intake *in, struct werr *e)
{
    char *info = dump(in->info);
    char att[16], next[24], rows[24], ts[24];
    PGresult *res;
    int r = -1;

    snprintf(att, sizeof att, "%d", in->attempts);
    snprintf(next, sizeof next, "%" PRId64, in->next_attempt_ms);
    snprintf(rows, sizeof rows, "%" PRIu64, in->rows);
    snprintf(ts, sizeof ts, "%" PRId64, now_ms());
    const char *p[] = {in->id,
                       in->sha256[0] ? in->sha256 : NULL,
                       outcome_name(in->outcome),
                       att,
                       next,
                       in->last_error,
                       rows,
                       in->bag,
                       in->replay_of,
                       in->replayed_by,
                       info,
                       ts};
    res = q(g,
            "UPDATE intakes SET sha256 = $2, outcome = $3, attempts = $4, next_attempt_ms = $5, "
            "last_error = $6, \"rows\" = $7, bag = $8, replay_of = $9, replayed_by = $10, "
            "info = $11, updated_ms = $12 WHERE id = $1",
            12, p, "update", e);
    if (!res)
        goto out;
    if (changed(res) != 1)
        werr_set(e, "%s: update: no intake %s", g->where, in->id);
    else
        r = 0;
    PQclear(res);
out:
    free(info);
    return r;
}

static int pg_update(struct ledger *l, const struct intake *in, struct werr *e)
{
    struct lpg *g = l->impl;
    return alive(g, e) < 0 ? -1 : update_row(g, in, e);
}

static int pg_event(struct ledger *l, const char *id, const char *kind, json_t *detail,
                    struct werr *e)
{
    struct lpg *g = l->impl;
    char *dj = dump(detail);
    int r;
    json_decref(detail);
    r = alive(g, e) < 0 ? -1 : put_event(g, id, now_ms(), kind, dj, e);
    free(dj);
    return r;
}

static int read_intake(struct lpg *g, const PGresult *res, int row, struct intake *out,
                       struct werr *e)
{
    memset(out, 0, sizeof *out);
    val_copy(res, row, 0, out->id, sizeof out->id);
    if (state_parse(PQgetvalue(res, row, 8), &out->state) < 0 ||
        (!PQgetisnull(res, row, 9) &&
         state_parse(PQgetvalue(res, row, 9), &out->failed_from) < 0) ||
        outcome_parse(PQgetvalue(res, row, 10), &out->outcome) < 0) {
        werr_set(e, "%s: intake %s: unknown state or outcome", g->where, out->id);
        return -1;
    }
    out->profile = val_dup(res, row, 1);
    out->source = val_dup(res, row, 2);
    out->path = val_dup(res, row, 3);
    out->name = val_dup(res, row, 4);
    out->size = (uint64_t)num(res, row, 5);
    out->mtime_ns = num(res, row, 6);
    val_copy(res, row, 7, out->sha256, sizeof out->sha256);
    out->attempts = (int)num(res, row, 11);
    out->next_attempt_ms = num(res, row, 12);
    out->last_error = val_dup(res, row, 13);
    out->created_ms = num(res, row, 14);
    out->updated_ms = num(res, row, 15);
    out->rows = (uint64_t)num(res, row, 16);
    out->bag = val_dup(res, row, 17);
    out->replay_of = val_dup(res, row, 18);
    out->replayed_by = val_dup(res, row, 19);
    out->node = val_dup(res, row, 21);
    out->lease_until_ms = PQgetisnull(res, row, 22) ? 0 : num(res, row, 22);
    if (!PQgetisnull(res, row, 20)) {
        out->info = json_loads(PQgetvalue(res, row, 20), 0, NULL);
        if (!out->info) {
            werr_set(e, "%s: intake %s: info is not JSON", g->where, out->id);
            intake_clear(out);
            return -1;
        }
    }
    return 0;
}

/* As sq_get: a full id or a unique prefix of at least MIN_PREFIX. */
static int pg_get(struct ledger *l, const char *id, struct intake *out, struct werr *e)
{
    struct lpg *g = l->impl;
    char key[ID_LEN], upper[ID_LEN + 1];
    size_t n = strlen(id), i;
    PGresult *res;
    int r = -1;

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
    snprintf(upper, sizeof upper, "%s~", key);
    const char *p[] = {key, upper};
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "SELECT " INTAKE_COLS " FROM intakes WHERE id >= $1 AND id < $2 "
                  "ORDER BY id LIMIT 2",
                  2, p, "get", e)))
        return -1;
    if (PQntuples(res) == 0)
        r = 0;
    else if (PQntuples(res) > 1)
        werr_set(e, "intake id '%s' is ambiguous (%s, %s, ...)", id, PQgetvalue(res, 0, 0),
                 PQgetvalue(res, 1, 0));
    else if (read_intake(g, res, 0, out, e) == 0)
        r = 1;
    PQclear(res);
    return r;
}

/* As sq_list: in id order, PAGE rows per statement, fn called with no
 * statement open. */
static int pg_list(struct ledger *l, const struct intake_filter *f, intake_fn fn, void *ctx,
                   struct werr *e)
{
    struct lpg *g = l->impl;
    struct intake *page = xcalloc(PAGE, sizeof *page);
    char sql[1200], after[ID_LEN] = "", lim[24], since[24], upd[24];
    const char *p[8];
    int64_t left = f->limit > 0 ? f->limit : INT64_MAX;
    int r = -1, n = 0, i, np = 2, stop = 0;
    char ph_profile[8] = "", ph_state[8] = "", ph_since[8] = "", ph_upd[8] = "";
    char c_profile[40] = "", c_state[40] = "", c_since[40] = "", c_upd[48] = "";
    const char *rejects = f->rejects && f->with_failed
                              ? " AND ((outcome = 'rejected' AND replayed_by IS NULL) OR "
                                "state = 'failed')"
                          : f->rejects ? " AND outcome = 'rejected' AND replayed_by IS NULL"
                                       : "";

    if (f->state >= ST__COUNT) {
        werr_set(e, "list: bad state %d", f->state);
        goto out;
    }
    if (f->newest_first)
        snprintf(after, sizeof after, "\x7f");
    p[0] = after;
    p[1] = lim;
    if (f->profile) {
        p[np] = f->profile;
        snprintf(ph_profile, sizeof ph_profile, "$%d", ++np);
        snprintf(c_profile, sizeof c_profile, " AND profile = %s", ph_profile);
    }
    if (f->state >= 0) {
        p[np] = state_name((enum intake_state)f->state);
        snprintf(ph_state, sizeof ph_state, "$%d", ++np);
        snprintf(c_state, sizeof c_state, " AND state = %s", ph_state);
    }
    if (f->since_ms > 0) {
        snprintf(since, sizeof since, "%" PRId64, f->since_ms);
        p[np] = since;
        snprintf(ph_since, sizeof ph_since, "$%d", ++np);
        snprintf(c_since, sizeof c_since, " AND sealed_ms >= %s", ph_since);
    }
    if (f->updated_since_ms > 0) {
        snprintf(upd, sizeof upd, "%" PRId64, f->updated_since_ms);
        p[np] = upd;
        snprintf(ph_upd, sizeof ph_upd, "$%d", ++np);
        snprintf(c_upd, sizeof c_upd, " AND updated_ms >= %s", ph_upd);
    }
    snprintf(sql, sizeof sql,
             "SELECT " INTAKE_COLS " FROM intakes WHERE id %s $1%s%s%s%s%s%s "
             "ORDER BY id %s LIMIT $2",
             f->newest_first ? "<" : ">", c_profile, c_state,
             f->unfinished ? " AND state NOT IN ('done', 'failed')" : "", rejects, c_since, c_upd,
             f->newest_first ? "DESC" : "ASC");
    if (alive(g, e) < 0)
        goto out;
    while (!stop && left > 0) {
        PGresult *res;
        snprintf(lim, sizeof lim, "%" PRId64, left < PAGE ? left : PAGE);
        if (!(res = q(g, sql, np, p, "list", e)))
            goto out;
        for (n = 0; n < PQntuples(res); n++)
            if (read_intake(g, res, n, &page[n], e) < 0) {
                PQclear(res);
                goto out;
            }
        PQclear(res);
        if (n == 0)
            break;
        memcpy(after, page[n - 1].id, ID_LEN);
        for (i = 0; i < n && !stop; i++)
            stop = fn(ctx, &page[i]);
        left -= n;
        for (i = 0; i < n; i++)
            intake_clear(&page[i]);
        if (n < PAGE)
            break;
        n = 0;
    }
    n = 0;
    r = 0;
out:
    for (i = 0; i < n; i++)
        intake_clear(&page[i]);
    free(page);
    return r;
}

static int pg_events(struct ledger *l, const char *id, event_fn fn, void *ctx, struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {id};
    PGresult *res;
    int i;
    if (alive(g, e) < 0 || !(res = q(g,
                                     "SELECT time_ms, kind, detail FROM events WHERE intake = $1 "
                                     "ORDER BY time_ms, id",
                                     1, p, "events", e)))
        return -1;
    for (i = 0; i < PQntuples(res); i++)
        if (fn(ctx, num(res, i, 0), PQgetvalue(res, i, 1),
               PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2)))
            break;
    PQclear(res);
    return 0;
}

static int pg_find_loaded(struct ledger *l, const char *profile, const char *sha256,
                          char id[ID_LEN], struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {profile, sha256};
    PGresult *res;
    int r;
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "SELECT id FROM intakes WHERE profile = $1 AND sha256 = $2 AND "
                  "outcome = 'loaded' AND (state IN ('loaded', 'sealed', 'done') "
                  "OR (state = 'failed' AND failed_from IN ('loaded', 'sealed'))) "
                  "ORDER BY id LIMIT 1",
                  2, p, "find loaded", e)))
        return -1;
    id[0] = 0;
    r = PQntuples(res) > 0;
    if (r)
        val_copy(res, 0, 0, id, ID_LEN);
    PQclear(res);
    return r;
}

/* ---- sightings ---- */

static int pg_sighting(struct ledger *l, const char *profile, const char *path, uint64_t size,
                       int64_t mtime_ns, int64_t now, int64_t *first_seen_ms, struct werr *e)
{
    struct lpg *g = l->impl;
    char sz[24], mt[24], ts[24];
    PGresult *res;
    snprintf(sz, sizeof sz, "%" PRIu64, size);
    snprintf(mt, sizeof mt, "%" PRId64, mtime_ns);
    snprintf(ts, sizeof ts, "%" PRId64, now);
    const char *p[] = {profile, path, sz, mt, ts};
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "INSERT INTO sightings AS s (profile, path, size, mtime_ns, first_seen_ms, "
                  "last_seen_ms, appeared_ms) VALUES ($1, $2, $3, $4, $5, $5, $5) "
                  "ON CONFLICT (profile, path) DO UPDATE SET "
                  "first_seen_ms = CASE WHEN s.size = excluded.size AND "
                  "s.mtime_ns = excluded.mtime_ns THEN s.first_seen_ms "
                  "ELSE excluded.first_seen_ms END, "
                  "appeared_ms = CASE WHEN s.size = excluded.size AND "
                  "s.mtime_ns = excluded.mtime_ns THEN s.appeared_ms "
                  "WHEN EXISTS (SELECT 1 FROM intakes i WHERE i.profile = $1 AND i.path = $2 "
                  "AND i.size = s.size AND i.mtime_ns = s.mtime_ns) "
                  "THEN excluded.first_seen_ms ELSE COALESCE(s.appeared_ms, s.first_seen_ms) END, "
                  "size = excluded.size, mtime_ns = excluded.mtime_ns, "
                  "last_seen_ms = excluded.last_seen_ms "
                  "RETURNING first_seen_ms",
                  5, p, "sighting", e)))
        return -1;
    *first_seen_ms = num(res, 0, 0);
    PQclear(res);
    return 0;
}

static int pg_sightings_prune(struct ledger *l, const char *profile, int64_t before_ms,
                              struct werr *e)
{
    struct lpg *g = l->impl;
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, before_ms);
    const char *p[] = {profile, ts};
    if (alive(g, e) < 0)
        return -1;
    return x(g,
             "DELETE FROM sightings WHERE ($1::text IS NULL OR profile = $1::text) "
             "AND last_seen_ms < $2",
             2, p, "prune sightings", e);
}

static int pg_unclaimed(struct ledger *l, const char *profile, int64_t seen_since, sighting_fn fn,
                        void *ctx, struct werr *e)
{
    struct lpg *g = l->impl;
    char ts[24];
    PGresult *res;
    int i;
    snprintf(ts, sizeof ts, "%" PRId64, seen_since);
    const char *p[] = {profile, ts};
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "SELECT path, size, mtime_ns, COALESCE(appeared_ms, first_seen_ms) AS a, "
                  "first_seen_ms, last_seen_ms FROM sightings sg WHERE profile = $1 AND "
                  "last_seen_ms >= $2 AND NOT EXISTS (SELECT 1 FROM intakes i WHERE "
                  "i.profile = sg.profile AND i.path = sg.path AND i.size = sg.size AND "
                  "i.mtime_ns = sg.mtime_ns) ORDER BY 4, path COLLATE \"C\" LIMIT 1000",
                  2, p, "unclaimed sightings", e)))
        return -1;
    for (i = 0; i < PQntuples(res); i++) {
        struct sighting sg = {
            .path = PQgetvalue(res, i, 0),
            .size = (uint64_t)num(res, i, 1),
            .mtime_ns = num(res, i, 2),
            .appeared_ms = num(res, i, 3),
            .first_seen_ms = num(res, i, 4),
            .last_seen_ms = num(res, i, 5),
        };
        if (fn(ctx, &sg))
            break;
    }
    PQclear(res);
    return 0;
}

/* ---- the hash chain ---- */

static void read_link(const PGresult *res, int row, struct chain_link *cl)
{
    memset(cl, 0, sizeof *cl);
    cl->seq = num(res, row, 0);
    val_copy(res, row, 1, cl->intake, sizeof cl->intake);
    val_copy(res, row, 2, cl->tagmanifest, sizeof cl->tagmanifest);
    val_copy(res, row, 3, cl->prev, sizeof cl->prev);
    val_copy(res, row, 4, cl->link, sizeof cl->link);
    cl->time_ms = num(res, row, 5);
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
 * As sq_chain_append, with the head row locked FOR UPDATE first: every
 * appender on every node queues on that one row, so the chain stays one
 * chain.
 *   1. lock chain_head; if the intake already has a link, return it;
 *   2. prev = head.link, seq = head.seq + 1;
 *   3. insert the link and move the head, then commit.
 */
static int pg_chain_append(struct ledger *l, const char *id, const char *tagmanifest,
                           struct chain_link *out, struct werr *e)
{
    struct lpg *g = l->impl;
    struct chain_link cl;
    PGresult *res = NULL;
    char seq[24], ts[24];
    int r = -1;

    if (!is_hex64(tagmanifest)) {
        werr_set(e, "%s: chain: tag manifest hash is not 64 lowercase hex characters", id);
        return -1;
    }
    if (tx_begin(g, e) < 0)
        return -1;
    if (!(res = q(g, "SELECT seq, link FROM chain_head WHERE one = 1 FOR UPDATE", 0, NULL,
                  "chain head", e)))
        goto out;
    if (PQntuples(res) != 1) {
        werr_set(e, "%s: chain: the head row is missing", g->where);
        goto out;
    }
    memset(&cl, 0, sizeof cl);
    cl.seq = num(res, 0, 0) + 1;
    val_copy(res, 0, 1, cl.prev, sizeof cl.prev);
    PQclear(res);
    {
        const char *p[] = {id};
        if (!(res = q(g, "SELECT " CHAIN_COLS " FROM chain WHERE intake = $1", 1, p, "chain", e)))
            goto out;
    }
    if (PQntuples(res) > 0) {
        read_link(res, 0, out);
        r = 0;
        goto out;
    }
    PQclear(res);
    res = NULL;
    snprintf(cl.intake, sizeof cl.intake, "%s", id);
    memcpy(cl.tagmanifest, tagmanifest, SHA256_HEX_LEN);
    chain_link_compute(cl.prev, cl.tagmanifest, cl.link);
    cl.time_ms = now_ms();
    snprintf(seq, sizeof seq, "%" PRId64, cl.seq);
    snprintf(ts, sizeof ts, "%" PRId64, cl.time_ms);
    {
        const char *p[] = {seq, cl.intake, cl.tagmanifest, cl.prev, cl.link, ts};
        if (x(g,
              "INSERT INTO chain (seq, intake, tagmanifest, prev, link, time_ms) "
              "VALUES ($1, $2, $3, $4, $5, $6)",
              6, p, "chain append", e) < 0 ||
            x(g, "UPDATE chain_head SET seq = $1, link = $2 WHERE one = 1", 2,
              (const char *const[]){seq, cl.link}, "chain head", e) < 0)
            goto out;
    }
    *out = cl;
    r = 0;
out:
    PQclear(res);
    if (r == 0 && tx_commit(g, e) < 0)
        r = -1;
    if (r < 0)
        tx_rollback(g);
    return r;
}

static int pg_chain_state(struct ledger *l, const char *id, char head[SHA256_HEX_LEN],
                          struct chain_link *own, bool *has_own, struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {id};
    PGresult *res;

    *has_own = false;
    memcpy(head, zero_link, SHA256_HEX_LEN);
    if (alive(g, e) < 0 ||
        !(res = q(g, "SELECT link FROM chain_head WHERE one = 1", 0, NULL, "chain", e)))
        return -1;
    if (PQntuples(res) == 1)
        val_copy(res, 0, 0, head, SHA256_HEX_LEN);
    PQclear(res);
    if (!(res = q(g, "SELECT " CHAIN_COLS " FROM chain WHERE intake = $1", 1, p, "chain", e)))
        return -1;
    if (PQntuples(res) > 0) {
        read_link(res, 0, own);
        *has_own = true;
    }
    PQclear(res);
    return 0;
}

static int pg_chain_walk(struct ledger *l, chain_fn fn, void *ctx, struct werr *e)
{
    struct lpg *g = l->impl;
    struct chain_link cl;
    char after[24], lim[16];
    const char *p[] = {after, lim};
    int64_t last = 0;
    int n, i, stop = 0;

    snprintf(lim, sizeof lim, "%d", PAGE);
    if (alive(g, e) < 0)
        return -1;
    while (!stop) {
        PGresult *res;
        snprintf(after, sizeof after, "%" PRId64, last);
        if (!(res = q(g, "SELECT " CHAIN_COLS " FROM chain WHERE seq > $1 ORDER BY seq LIMIT $2", 2,
                      p, "chain walk", e)))
            return -1;
        n = PQntuples(res);
        for (i = 0; i < n && !stop; i++) {
            read_link(res, i, &cl);
            last = cl.seq;
            stop = fn(ctx, &cl);
        }
        PQclear(res);
        if (n < PAGE)
            break;
    }
    return 0;
}

/* ---- settings and health ---- */

static int pg_kv_get(struct ledger *l, const char *key, char **value, struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {key};
    PGresult *res;
    *value = NULL;
    if (alive(g, e) < 0 || !(res = q(g, "SELECT value FROM kv WHERE key = $1", 1, p, "kv get", e)))
        return -1;
    if (PQntuples(res) > 0)
        *value = val_dup(res, 0, 0);
    PQclear(res);
    return 0;
}

static int pg_kv_set(struct ledger *l, const char *key, const char *value, struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {key, value};
    if (alive(g, e) < 0)
        return -1;
    if (value)
        return x(g,
                 "INSERT INTO kv (key, value) VALUES ($1, $2) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 2, p, "kv set", e);
    return x(g, "DELETE FROM kv WHERE key = $1", 1, p, "kv set", e);
}

static int pg_kv_mark(struct ledger *l, const char *key, const char *value, const char *unless,
                      struct werr *e)
{
    struct lpg *g = l->impl;
    const char *p[] = {key, value, unless};
    PGresult *res;
    int r;
    if (alive(g, e) < 0 || !(res = q(g, LEDGER_KV_MARK_SQL("$1", "$2", "$3::text") " RETURNING 1",
                                     3, p, "kv mark", e)))
        return -1;
    r = PQntuples(res) > 0;
    PQclear(res);
    return r;
}

/*
 * PostgreSQL keeps its own pages and foreign keys whole; what can go wrong
 * here is the chain head disagreeing with the chain's last link (someone
 * edited the tables by hand).  *result is "ok" or says what differs.
 */
static int pg_check(struct ledger *l, char **result, struct werr *e)
{
    struct lpg *g = l->impl;
    PGresult *res;
    *result = NULL;
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "SELECT h.seq, h.link, c.seq, c.link FROM chain_head h LEFT JOIN "
                  "(SELECT seq, link FROM chain ORDER BY seq DESC LIMIT 1) c ON true",
                  0, NULL, "check", e)))
        return -1;
    if (PQntuples(res) != 1)
        *result = xstrdup("chain_head: the head row is missing");
    else if (num(res, 0, 0) != num(res, 0, 2) ||
             (!PQgetisnull(res, 0, 3) && strcmp(PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3))))
        *result = xasprintf("chain_head (seq %s) differs from the chain's last link (seq %s)",
                            PQgetvalue(res, 0, 0),
                            PQgetisnull(res, 0, 2) ? "none" : PQgetvalue(res, 0, 2));
    else
        *result = xstrdup("ok");
    PQclear(res);
    return 0;
}

/* synchronous_commit on or off: off commits are atomic and survive a crash
 * of wharf (not of the server's machine), as SQLite's NORMAL in WAL. */
static int pg_set_durable(struct ledger *l, bool full, struct werr *e)
{
    struct lpg *g = l->impl;
    if (alive(g, e) < 0)
        return -1;
    return x(g, full ? "SET synchronous_commit = on" : "SET synchronous_commit = off", 0, NULL,
             "synchronous_commit", e);
}

/* The server accepts writes (not a standby, not read-only) and this role
 * may insert into the intakes. */
static int pg_writable(struct ledger *l, struct werr *e)
{
    struct lpg *g = l->impl;
    PGresult *res;
    int r = -1;
    if (alive(g, e) < 0 ||
        !(res = q(g,
                  "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
                  "has_table_privilege('intakes', 'INSERT, UPDATE')",
                  0, NULL, "writable", e)))
        return -1;
    if (!strcmp(PQgetvalue(res, 0, 0), "t"))
        werr_set(e, "cannot write the %s: the server is a standby (in recovery)", g->where);
    else if (!strcmp(PQgetvalue(res, 0, 1), "on"))
        werr_set(e, "cannot write the %s: default_transaction_read_only is on", g->where);
    else if (strcmp(PQgetvalue(res, 0, 2), "t"))
        werr_set(e, "cannot write the %s: this role may not insert into intakes", g->where);
    else
        r = 0;
    PQclear(res);
    return r;
}

/* ---- nodes and leases (ledger.h) ---- */

static int pg_node_beat(struct ledger *l, const char *node, int64_t pid, int64_t started_ms,
                        int64_t now, struct werr *e)
{
    struct lpg *g = l->impl;
    char ps[24], ss[24], ns[24];
    snprintf(ps, sizeof ps, "%" PRId64, pid);
    snprintf(ss, sizeof ss, "%" PRId64, started_ms);
    snprintf(ns, sizeof ns, "%" PRId64, now);
    const char *p[] = {node, ps, ss, ns};
    if (alive(g, e) < 0)
        return -1;
    return x(g,
             "INSERT INTO nodes (name, pid, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $4) "
             "ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, "
             "started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms",
             4, p, "node heartbeat", e);
}

static int pg_lease_renew(struct ledger *l, const char *node, int64_t until, uint64_t *n,
                          struct werr *e)
{
    struct lpg *g = l->impl;
    char us[24];
    PGresult *res;
    snprintf(us, sizeof us, "%" PRId64, until);
    const char *p[] = {node, us};
    if (alive(g, e) < 0 || !(res = q(g,
                                     "UPDATE intakes SET lease_until_ms = $2 WHERE node = $1 "
                                     "AND state NOT IN ('done', 'failed')",
                                     2, p, "lease renew", e)))
        return -1;
    if (n)
        *n = (uint64_t)changed(res);
    PQclear(res);
    return 0;
}

/*
 * One transaction: the candidates are locked FOR UPDATE SKIP LOCKED, so
 * nodes taking over at the same time take disjoint intakes and never wait
 * for one another (nor for a node busy moving one of them); each is moved
 * to this node with a "takeover" event.  The callbacks run after the
 * commit.
 */
static int pg_lease_takeover(struct ledger *l, const char *node, const char *profiles, int64_t now,
                             int64_t until, int limit, takeover_fn fn, void *ctx, struct werr *e)
{
    struct lpg *g = l->impl;
    char ns[24], us[24], ls[16];
    PGresult *res = NULL;
    int n = 0, r = -1, i;
    snprintf(ns, sizeof ns, "%" PRId64, now);
    snprintf(us, sizeof us, "%" PRId64, until);
    snprintf(ls, sizeof ls, "%d", limit);
    const char *p[] = {ns, node, us, ls, profiles};

    if (tx_begin(g, e) < 0)
        return -1;
    if (!(res = q(g,
                  "WITH c AS (SELECT id, node AS old FROM intakes WHERE " LEDGER_TAKEOVER_WHERE(
                      "$1::bigint") "AND ($5::text IS NULL OR profile = ANY "
                                    "(string_to_array($5::text, ','))) "
                                    "ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) "
                                    "UPDATE intakes i SET node = $2, lease_until_ms = $3 FROM c "
                                    "WHERE i.id = c.id "
                                    "RETURNING i.id, c.old",
                  5, p, "takeover", e)))
        goto out;
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        const char *from = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
        json_t *dj =
            json_pack("{s:s,s:o}", "node", node, "from", from ? json_string(from) : json_null());
        char *detail = dump(dj);
        int ev = put_event(g, PQgetvalue(res, i, 0), now, "takeover", detail, e);
        json_decref(dj);
        free(detail);
        if (ev < 0)
            goto out;
    }
    if (tx_commit(g, e) < 0)
        goto out;
    for (i = 0; fn && i < n; i++)
        if (fn(ctx, PQgetvalue(res, i, 0), PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1)))
            break;
    r = n;
out:
    PQclear(res);
    if (r < 0)
        tx_rollback(g);
    return r;
}

static int pg_nodes(struct ledger *l, int64_t now, node_fn fn, void *ctx, struct werr *e)
{
    struct lpg *g = l->impl;
    char ns[24];
    PGresult *res;
    snprintf(ns, sizeof ns, "%" PRId64, now);
    const char *p[] = {ns};
    if (alive(g, e) < 0 || !(res = q(g, LEDGER_NODES_SQL("$1::bigint"), 1, p, "nodes", e)))
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        struct node_info ni = {
            .name = PQgetvalue(res, i, 0),
            .pid = num(res, i, 1),
            .started_ms = num(res, i, 2),
            .heartbeat_ms = num(res, i, 3),
            .in_progress = (uint64_t)num(res, i, 4),
            .expired = (uint64_t)num(res, i, 5),
        };
        if (fn(ctx, &ni))
            break;
    }
    PQclear(res);
    return 0;
}

/* ---- operators' actions (ledger.h) ---- */

static int pg_action_add(struct ledger *l, const struct action *a, struct werr *e)
{
    struct lpg *g = l->impl;
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, a->time_ms ? a->time_ms : now_ms());
    const char *p[] = {ts,        a->actor,          a->action, a->profile,
                       a->intake, a->ok ? "1" : "0", a->result};
    if (alive(g, e) < 0)
        return -1;
    return x(g,
             "INSERT INTO actions (time_ms, actor, action, profile, intake, ok, result) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7)",
             7, p, "action", e);
}

static const char *val(PGresult *res, int i, int k)
{
    return PQgetisnull(res, i, k) ? NULL : PQgetvalue(res, i, k);
}

static int pg_actions(struct ledger *l, const char *profile, int limit, action_fn fn, void *ctx,
                      struct werr *e)
{
    struct lpg *g = l->impl;
    char ls[16];
    PGresult *res;
    snprintf(ls, sizeof ls, "%d", limit);
    const char *p[] = {profile, ls};
    if (alive(g, e) < 0 ||
        !(res = q(g, LEDGER_ACTIONS_SQL("$1::text", "$2::int"), 2, p, "actions", e)))
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        struct action a = {
            .time_ms = num(res, i, 0),
            .actor = val(res, i, 1),
            .action = val(res, i, 2),
            .profile = val(res, i, 3),
            .intake = val(res, i, 4),
            .ok = num(res, i, 5) != 0,
            .result = val(res, i, 6),
        };
        if (fn(ctx, &a))
            break;
    }
    PQclear(res);
    return 0;
}

/* ---- bulk copy (ledger_copy.c) ---- */

/* The tables a copy fills; writers are locked out of them (EXCLUSIVE
 * mode still lets readers read) until bulk_end. */
#define COPY_TABLES "intakes, events, chain, chain_head, sightings, kv, nodes, actions"

static int pg_bulk_begin(struct ledger *l, struct werr *e)
{
    struct lpg *g = l->impl;
    if (tx_begin(g, e) < 0)
        return -1;
    if (x(g, "LOCK TABLE " COPY_TABLES " IN EXCLUSIVE MODE", 0, NULL, "lock for the copy", e) < 0) {
        tx_rollback(g);
        return -1;
    }
    return 0;
}

/* Ends a COPY FROM STDIN in progress; 0 or -1. */
static int copy_finish(struct lpg *g, const char *error, struct werr *e)
{
    PGresult *res;
    int r = 0;
    if (!g->copying)
        return 0;
    g->copying = NULL;
    if (PQputCopyEnd(g->c, error) != 1)
        return fail(g, e, NULL, "copy end");
    while ((res = PQgetResult(g->c))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0 && !error)
            r = fail(g, e, res, "copy");
        PQclear(res);
    }
    return r;
}

static int pg_bulk_end(struct ledger *l, bool commit, struct werr *e)
{
    struct lpg *g = l->impl;
    if (copy_finish(g, commit ? NULL : "rolled back", e) < 0)
        commit = false;
    if (commit && tx_commit(g, e) == 0)
        return 0;
    tx_rollback(g);
    return commit ? -1 : 0;
}

/* Every row of t through a cursor, 500 at a time (inside bulk_begin's
 * transaction), until fn returns non-zero. */
static int pg_rows(struct ledger *l, const struct ledger_table *t, ledger_row_fn fn, void *ctx,
                   struct werr *e)
{
    struct lpg *g = l->impl;
    const char **vals = xcalloc((size_t)t->ncols, sizeof *vals);
    char *cols = ledger_col_list(t);
    char *sql =
        xasprintf("DECLARE wharf_rows NO SCROLL CURSOR FOR SELECT %s FROM \"%s\"", cols, t->name);
    int r = -1, stop = 0;

    if (x(g, sql, 0, NULL, t->name, e) < 0)
        goto out;
    while (!stop) {
        PGresult *res = q(g, "FETCH 500 FROM wharf_rows", 0, NULL, t->name, e);
        int n, i;
        if (!res)
            goto out;
        n = PQntuples(res);
        for (i = 0; i < n && !stop; i++) {
            for (int k = 0; k < t->ncols; k++)
                vals[k] = PQgetisnull(res, i, k) ? NULL : PQgetvalue(res, i, k);
            stop = fn(ctx, vals);
        }
        PQclear(res);
        if (n < 500)
            break;
    }
    r = x(g, "CLOSE wharf_rows", 0, NULL, t->name, e);
out:
    free(vals);
    free(cols);
    free(sql);
    return r;
}

/* One cell in COPY's text format, then sep (tab, or newline after the
 * last): backslash, tab, newline and CR escaped; NULL is \N. */
static void copy_cell(char **buf, size_t *len, size_t *cap, const char *v, char sep)
{
    size_t need = (v ? 2 * strlen(v) : 2) + 1;
    if (*len + need > *cap) {
        *cap = (*len + need) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    if (!v) {
        memcpy(*buf + *len, "\\N", 2);
        *len += 2;
    }
    for (; v && *v; v++) {
        const char *esc = *v == '\\'   ? "\\\\"
                          : *v == '\t' ? "\\t"
                          : *v == '\n' ? "\\n"
                          : *v == '\r' ? "\\r"
                                       : NULL;
        if (esc) {
            memcpy(*buf + *len, esc, 2);
            *len += 2;
        } else
            (*buf)[(*len)++] = *v;
    }
    (*buf)[(*len)++] = sep;
}

/*
 * One row of t into COPY ... FROM STDIN (started at t's first row).  vals
 * NULL ends t; then the backend's own bookkeeping follows the copied rows:
 * the events id sequence continues after the largest id, and chain_head
 * names the last link.
 */
static int pg_put_row(struct ledger *l, const struct ledger_table *t, const char *const *vals,
                      struct werr *e)
{
    struct lpg *g = l->impl;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r = -1;

    if (g->copying && (g->copying != t || !vals) && copy_finish(g, NULL, e) < 0)
        return -1;
    if (!vals) {
        if (!strcmp(t->name, "events"))
            return x(g,
                     "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                     "COALESCE((SELECT max(id) FROM events), 1), "
                     "(SELECT max(id) FROM events) IS NOT NULL)",
                     0, NULL, "events sequence", e);
        if (!strcmp(t->name, "actions"))
            return x(g,
                     "SELECT setval(pg_get_serial_sequence('actions', 'id'), "
                     "COALESCE((SELECT max(id) FROM actions), 1), "
                     "(SELECT max(id) FROM actions) IS NOT NULL)",
                     0, NULL, "actions sequence", e);
        if (!strcmp(t->name, "chain"))
            return x(g,
                     "UPDATE chain_head h SET seq = c.seq, link = c.link FROM "
                     "(SELECT seq, link FROM chain ORDER BY seq DESC LIMIT 1) c WHERE h.one = 1",
                     0, NULL, "chain head", e);
        return 0;
    }
    if (!g->copying) {
        char *cols = ledger_col_list(t),
             *sql = xasprintf("COPY \"%s\" (%s) FROM STDIN", t->name, cols);
        PGresult *res = PQexec(g->c, sql);
        free(cols);
        free(sql);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            fail(g, e, res, "copy");
            PQclear(res);
            return -1;
        }
        PQclear(res);
        g->copying = t;
    }
    for (int i = 0; i < t->ncols; i++)
        copy_cell(&buf, &len, &cap, vals[i], i + 1 < t->ncols ? '\t' : '\n');
    if (PQputCopyData(g->c, buf, (int)len) != 1)
        fail(g, e, NULL, "copy");
    else
        r = 0;
    free(buf);
    return r;
}

static const char *pg_where(struct ledger *l)
{
    return ((struct lpg *)l->impl)->where;
}

/* Concurrent begins on one profile's row are serialized by its row lock,
 * and the second sees the first's update (ON CONFLICT DO UPDATE re-checks
 * its WHERE on the newest row): one of them polls. */
static int pg_poll_begin(struct ledger *l, const char *profile, const char *node, int64_t now,
                         int64_t until, bool asked, struct werr *e)
{
    struct lpg *g = l->impl;
    char ns[24], us[24];
    PGresult *res;
    int r;
    snprintf(ns, sizeof ns, "%" PRId64, now);
    snprintf(us, sizeof us, "%" PRId64, until);
    const char *p[] = {profile, node, ns, us, asked ? "1" : "0"};
    if (alive(g, e) < 0 ||
        !(res = q(g, LEDGER_POLL_BEGIN_SQL("$1", "$2", "$3::bigint", "$4::bigint", "$5::int"), 5, p,
                  "poll begin", e)))
        return -1;
    r = changed(res) == 1;
    PQclear(res);
    return r;
}

static int pg_poll_end(struct ledger *l, const char *profile, const char *node, int64_t next,
                       struct werr *e)
{
    struct lpg *g = l->impl;
    char ns[24];
    snprintf(ns, sizeof ns, "%" PRId64, next);
    const char *p[] = {profile, node, ns};
    return alive(g, e) < 0
               ? -1
               : x(g, LEDGER_POLL_END_SQL("$1", "$2", "$3::bigint"), 3, p, "poll end", e);
}

/* The chain's lock across nodes: a session advisory lock (the key beside
 * the migrations' one), so a node that dies releases it with its
 * connection.  Waits for the node sealing now. */
#define CHAIN_LOCK_KEY "1919443571"

static int pg_chain_lock(struct ledger *l, bool on, struct werr *e)
{
    struct lpg *g = l->impl;
    if (on)
        return alive(g, e) < 0
                   ? -1
                   : x(g, "SELECT pg_advisory_lock(" CHAIN_LOCK_KEY ")", 0, NULL, "chain lock", e);
    return x(g, "SELECT pg_advisory_unlock(" CHAIN_LOCK_KEY ")", 0, NULL, "chain unlock", e);
}

static const struct ledger_ops pg_ops = {
    .chain_lock = pg_chain_lock,
    .poll_begin = pg_poll_begin,
    .poll_end = pg_poll_end,
    .node_beat = pg_node_beat,
    .lease_renew = pg_lease_renew,
    .lease_takeover = pg_lease_takeover,
    .nodes = pg_nodes,
    .action_add = pg_action_add,
    .actions = pg_actions,
    .bulk_begin = pg_bulk_begin,
    .bulk_end = pg_bulk_end,
    .rows = pg_rows,
    .put_row = pg_put_row,
    .where = pg_where,
    .writable = pg_writable,
    .set_durable = pg_set_durable,
    .claim = pg_claim,
    .transition = pg_transition,
    .transition_update = pg_transition_update,
    .update = pg_update,
    .event = pg_event,
    .get = pg_get,
    .list = pg_list,
    .events = pg_events,
    .find_loaded = pg_find_loaded,
    .sighting = pg_sighting,
    .sightings_prune = pg_sightings_prune,
    .unclaimed = pg_unclaimed,
    .chain_append = pg_chain_append,
    .chain_walk = pg_chain_walk,
    .chain_state = pg_chain_state,
    .kv_get = pg_kv_get,
    .kv_set = pg_kv_set,
    .kv_mark = pg_kv_mark,
    .check = pg_check,
    .close = pg_close,
};
