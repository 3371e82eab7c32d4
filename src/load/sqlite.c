/*
 * sqlite target: loads one intake's rows into a SQLite table in one
 * transaction together with its row in wharf_loads (see target.h).
 *
 * Owns the connection, the prepared insert statement and, during a load,
 * the queue to the thread that steps it (struct sq in t->impl, rowq.h);
 * rollback and close end that thread, close frees the rest.  Identifiers (table, columns, upsert
 * keys) come from profiles: they are checked with ident_valid(), names starting with "_wharf" or
 * "sqlite_" are refused, and they are always written double-quoted.  Values are always bound, never
 * spliced into SQL.
 *
 * begin, in one IMMEDIATE transaction (so a rollback also undoes a table
 * it created):
 *   1. CREATE TABLE "t" (typed columns, "_wharf_intake" TEXT NOT NULL) and
 *      an index on "_wharf_intake" when the table is absent; otherwise check
 *      that every needed column exists with a compatible declared type (and
 *      add "_wharf_intake" to a table that lacks it).  An integer with no
 *      64-bit bound (COLK_WIDEINT) gets no declared type: an INTEGER where
 *      it fits, its exact digits as TEXT beyond (an existing numeric column
 *      refuses such a row instead of rounding it);
 *   2. upsert: create the UNIQUE index on the key for a table we created,
 *      else require one that covers exactly the key;
 *   3. replace: DELETE FROM "t";
 *   4. prepare the INSERT (.. ON CONFLICT (key) DO UPDATE for upsert).
 * With no columns (nothing of the intake was loadable) begin only opens the
 * transaction: commit still records the intake in wharf_loads.
 *
 * Lineage (target.lineage: line): a table this load creates gets a
 * "_wharf_line" TEXT column after "_wharf_intake"; an existing table is
 * written with lineage only when it already has that column.  Its value
 * says where the row came from in the decoded part: "12" (CSV, the
 * physical line the record starts on; XML, the line the record's start
 * tag is on) followed for XML by a space and the record's XPath
 * ("7 /orders/order[3]"), prefixed with "P:" (P the 1-based part) when the
 * intake has several parts ("2:12").
 *
 * Reconcile's evidence, kept in the same transaction: wharf_loads also
 * holds key_rows, key_digest and key_cols (load_stats in target.h), and
 * wharf_supersessions one row per earlier intake whose rows this load
 * replaced (upsert: found by looking the key up before each insert) or
 * deleted (replace).
 *
 * What can fail: the database cannot be opened or written (SQLITE_BUSY,
 * SQLITE_LOCKED: target_locked; SQLITE_FULL: no_space), a refused identifier,
 * a table whose columns do not fit, a constraint violated by a row (all
 * target_down: the target must be fixed before a replay).
 */
#include "load/target.h"
#include "load/rowq.h"
#include "load/tabdiff.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "util/log.h"
#include "util/parse.h"
#include "util/sqlwait.h"
#include "util/xmalloc.h"

#define BUSY_TIMEOUT_MS 10000
#define PAGE_SIZE_NEW   "16384" /* for a database the target creates */
#define WAL_KICK_ROWS   16384   /* rows between two WAL writeback starts (a power of 2) */

struct sq {
    sqlite3 *db;
    char *path;
    char *table;
    const char *profile;
    sqlite3_stmt *ins;
    struct rowq *q;    /* insert hands rows to the thread that steps ins */
    size_t ncols;      /* value parameters of ins; the intake is ncols + 1, the line ncols + 2 */
    bool active;       /* between begin and commit/rollback */
    bool index_at_end; /* a table made by this load: its intake index is built at commit */
    bool lineage;      /* this load writes _wharf_line */
    char **narrow;     /* per column, the name of a COLK_WIDEINT column that exists
                          declared numeric and would round a value beyond 64 bits, else
                          NULL (narrow NULL: no such column) */
    size_t nnarrow;
    uint64_t seq;    /* rows handed to the queue by this load so far */
    char where[640]; /* the row's _wharf_line while it is inserted (inserting thread) */
    char intake[ID_LEN];
    /* the key digest: which of the load's columns form the key */
    size_t *kidx, nk;
    struct keyhash kh; /* the inserting thread's */
    /* Without upsert a row's key digest does not depend on the table: the
     * validating thread sums the rows it digests early (digest_row, with
     * its own keyhash) here, commit adds them to st. */
    struct keyhash pkh;
    struct keydigest pdigest;
    uint64_t prows;
    /* the WAL file, opened by the inserting thread to start its writeback
     * early (-1: not yet, -2: could not); rows it stepped in this load */
    int walfd;
    uint64_t stepped;
    /* upsert: the row a key already has (its intake and digest key) */
    sqlite3_stmt *prev;
    size_t *uidx, nu; /* the upsert key's columns */
    struct load_stats *st;
};

/* A growable SQL text; only identifiers and fixed words go in here. */
struct sqlbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sqlbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

/* Double-quoted identifier; embedded quotes doubled (they never pass
 * ident_ok, this is the belt to its braces). */
static void sb_ident(struct sqlbuf *b, const char *id)
{
    char one[2] = {0, 0};
    sb_add(b, "\"");
    for (; *id; id++) {
        one[0] = *id;
        sb_add(b, *id == '"' ? "\"\"" : one);
    }
    sb_add(b, "\"");
}

/* "<path>: <what>: <sqlite message>", of the kind the result code says:
 * locked (transient), full disk, failing disk, else the target is down. */
static void sq_fail(struct werr *e, struct sq *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sq_fail(struct werr *e, struct sq *s, int rc, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    werr_setk(e, werr_kind_sqlite(rc, WERR_TARGET_LOCKED, WERR_TARGET_DOWN), "%s: %s: %s", s->path,
              what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static int sq_exec(struct sq *s, const char *sql, const char *what, struct werr *e)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sq_fail(e, s, rc, "%s", what);
        return -1;
    }
    return 0;
}

static int sq_prepare(struct sq *s, const char *sql, sqlite3_stmt **st, const char *what,
                      struct werr *e)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        sq_fail(e, s, rc, "%s", what);
        return -1;
    }
    return 0;
}

static const char *type_sql(enum col_type t)
{
    switch (t) {
    case COL_INTEGER:
        return "INTEGER";
    case COL_REAL:
        return "REAL";
    case COL_TEXT:
        break;
    }
    return "TEXT";
}

enum affinity { AFF_TEXT, AFF_NUMERIC, AFF_INTEGER, AFF_REAL, AFF_BLOB };

/* SQLite's column affinity rules (datatype3.html, 3.1). */
static enum affinity affinity_of(const char *decl)
{
    if (!decl || !*decl)
        return AFF_BLOB;
    if (strcasestr(decl, "INT"))
        return AFF_INTEGER;
    if (strcasestr(decl, "CHAR") || strcasestr(decl, "CLOB") || strcasestr(decl, "TEXT"))
        return AFF_TEXT;
    if (strcasestr(decl, "BLOB"))
        return AFF_BLOB;
    if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB"))
        return AFF_REAL;
    return AFF_NUMERIC;
}

/* Would a value of type t be stored unchanged in a column declared decl?
 * TEXT into a numeric column would turn "007" into 7; INTEGER into REAL
 * loses digits above 2^53; REAL into INTEGER silently truncates 2.0 to 2. */
static bool type_compatible(enum col_type t, const char *decl)
{
    enum affinity a = affinity_of(decl);
    switch (t) {
    case COL_TEXT:
        return a == AFF_TEXT || a == AFF_BLOB;
    case COL_INTEGER:
        return a == AFF_INTEGER || a == AFF_NUMERIC || a == AFF_BLOB;
    case COL_REAL:
        return a == AFF_REAL || a == AFF_NUMERIC || a == AFF_BLOB;
    }
    return false;
}

/* 1 when the table (or view) exists, 0 when not, -1 on error. */
static int has_table(struct sq *s, const char *name, struct werr *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sq_prepare(s, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", &st,
                   "read schema", e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "read schema");
        return -1;
    }
    return rc == SQLITE_ROW;
}

/* 1 when table has the column (its affinity in *aff when not NULL), 0 when
 * not, -1 on error. */
static int column_affinity(struct sq *s, const char *table, const char *col, enum affinity *aff,
                           struct werr *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sq_prepare(s, "SELECT type FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE", &st,
                   "read table columns", e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && aff)
        *aff = affinity_of((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "read columns of %s", table);
        return -1;
    }
    return rc == SQLITE_ROW;
}

static int has_column(struct sq *s, const char *table, const char *col, struct werr *e)
{
    return column_affinity(s, table, col, NULL, e);
}

/* wharf's own tables in the target database, in the order they are made:
 * wharf_loads, its key columns (added by reconcile: older databases lack
 * them), wharf_supersessions.  Each step is present when its table (and
 * column, if any) is. */
static const struct schema_step {
    const char *table, *column, *sql, *what;
} schema_steps[] = {
    {"wharf_loads", NULL,
     "CREATE TABLE IF NOT EXISTS wharf_loads (intake TEXT PRIMARY KEY, profile TEXT NOT NULL,"
     " tbl TEXT NOT NULL, rows INTEGER NOT NULL, sha256 TEXT, time_ms INTEGER NOT NULL,"
     " key_rows INTEGER, key_digest TEXT, key_cols TEXT)",
     "create wharf_loads"},
    {"wharf_loads", "key_digest",
     "ALTER TABLE wharf_loads ADD COLUMN key_rows INTEGER;"
     "ALTER TABLE wharf_loads ADD COLUMN key_digest TEXT;"
     "ALTER TABLE wharf_loads ADD COLUMN key_cols TEXT",
     "add key columns to wharf_loads"},
    {"wharf_supersessions", NULL,
     "CREATE TABLE IF NOT EXISTS wharf_supersessions (intake TEXT NOT NULL,"
     " by_intake TEXT NOT NULL, rows INTEGER NOT NULL, digest TEXT, all_rows INTEGER NOT NULL,"
     " PRIMARY KEY (intake, by_intake))",
     "create wharf_supersessions"},
};

/* Looks at each step; a missing one is made when make (under the write
 * lock), else 0 is returned at once.  1 when all are there, -1 on error. */
static int schema_steps_run(struct sq *s, bool make, struct werr *e)
{
    for (size_t i = 0; i < sizeof schema_steps / sizeof schema_steps[0]; i++) {
        const struct schema_step *st = &schema_steps[i];
        int k = st->column ? has_column(s, st->table, st->column, e) : has_table(s, st->table, e);
        if (k < 0)
            return -1;
        if (k == 0 && (!make || sq_exec(s, st->sql, st->what, e) < 0))
            return make ? -1 : 0;
    }
    return 1;
}

/*
 * wharf's own tables, made or upgraded when missing.  A look first, without
 * a lock, so a database busy with another load is not locked for nothing;
 * when something is missing, the write lock (BEGIN IMMEDIATE waits for
 * another writer through the busy timeout -- a CREATE in autocommit mode
 * can instead fail at once with SQLITE_BUSY_SNAPSHOT when another load
 * commits between its read and its write, which two first loads into a
 * new database did), a second look under it, and the changes.
 */
static int setup_schema(struct sq *s, struct werr *e)
{
    int k = schema_steps_run(s, false, e);
    if (k != 0)
        return k < 0 ? -1 : 0;
    if (sq_exec(s, "BEGIN IMMEDIATE", "lock the database to create wharf's tables", e) < 0)
        return -1;
    if (schema_steps_run(s, true, e) < 0 || sq_exec(s, "COMMIT", "create wharf's tables", e) < 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static bool sq_fits(const struct column *c, const char *decl)
{
    return type_compatible(c->type, decl);
}

/* An integer that may exceed 64 bits (COLK_WIDEINT) gets a column without a
 * declared type (BLOB affinity): SQLite stores what is bound, an INTEGER
 * where it fits and the exact digits as TEXT beyond, where an INTEGER or
 * NUMERIC column would turn those digits into a rounded REAL. */
static const char *sq_decl(const struct column *c)
{
    return c->kind == COLK_WIDEINT ? "" : type_sql(c->type);
}

/* "name TYPE" (or "name" alone, no declared type) */
static void sb_coldef(struct sqlbuf *b, const struct column *c)
{
    const char *decl = sq_decl(c);
    sb_ident(b, c->name);
    if (*decl) {
        sb_add(b, " ");
        sb_add(b, decl);
    }
}

static const struct tabdiff_types sq_types = {sq_fits, sq_decl};

/* tabdiff for this database and table */
static int schema_diff(struct sq *s, const struct tinfo *ti, const struct columns *cols,
                       enum target_evolve evolve, bool strict, size_t *adds, size_t *nadds,
                       struct werr *e)
{
    struct sqlbuf q = {0};
    sb_ident(&q, s->table);
    int r = tabdiff(s->path, q.s, ti, cols, evolve, strict, &sq_types, adds, nadds, e);
    free(q.s);
    return r;
}

static int sq_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                   struct werr *e)
{
    struct sq *s = NULL;
    sqlite3_stmt *st = NULL;
    bool fresh = false; /* no database file yet (or an empty one) */
    int rc, r = -1;
    (void)cfg;
    if (!p->target.path || !*p->target.path) {
        werr_setk(e, WERR_TARGET_DOWN, "profile %s: sqlite target: no path",
                  p->name ? p->name : "?");
        return -1;
    }
    if (tabdiff_ident(p->target.table, "target table", e) < 0) {
        werr_prefix(e, "profile %s", p->name ? p->name : "?");
        return -1;
    }
    s = xcalloc(1, sizeof *s);
    s->walfd = -1;
    s->path = xstrdup(p->target.path);
    s->table = xstrdup(p->target.table);
    s->profile = p->name ? p->name : "";
    if (!t->readonly) {
        struct stat sb;
        fresh = stat(s->path, &sb) < 0 ? errno == ENOENT : sb.st_size == 0;
    }
    /* NOMUTEX: a target belongs to one pipeline, and a pipeline to one
     * thread, so SQLite need not lock around every bind and step. */
    rc = sqlite3_open_v2(
        s->path, &s->db,
        (t->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
            SQLITE_OPEN_NOMUTEX,
        NULL);
    if (rc != SQLITE_OK) {
        sq_fail(e, s, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlwait_install(s->db, BUSY_TIMEOUT_MS);
    if (t->readonly)
        goto done;
    /* A database this open creates gets pages sized for bulk loads: a
     * 1M-row load builds its intake index in about 2/3 of the time with
     * 16 KiB pages than with the default 4 KiB (bench B1).  An existing
     * database keeps its page size (it would only change on a VACUUM). */
    if (fresh && sq_exec(s, "PRAGMA page_size=" PAGE_SIZE_NEW, "page_size", e) < 0)
        goto out;
    if (sq_exec(s, "PRAGMA journal_mode=WAL", "journal_mode=WAL", e) < 0 ||
        sq_exec(s, "PRAGMA synchronous=FULL", "synchronous=FULL", e) < 0)
        goto out;
    if (setup_schema(s, e) < 0)
        goto out;
done:
    t->impl = s;
    s = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    if (s) {
        sqlite3_close(s->db);
        free(s->path);
        free(s->table);
        free(s);
    }
    return r;
}

/* The supersessions recorded with intake's load, into st. */
static int read_supersessions(struct sq *s, const char *intake, struct load_stats *st,
                              struct werr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (sq_prepare(s,
                   "SELECT intake, rows, digest, all_rows FROM wharf_supersessions"
                   " WHERE by_intake = ?1 ORDER BY intake",
                   &q, "read wharf_supersessions", e) < 0)
        return -1;
    sqlite3_bind_text(q, 1, intake, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(q, 0);
        struct supersession *sp = load_stats_sup(st, old ? old : "");
        sp->rows = (uint64_t)sqlite3_column_int64(q, 1);
        keydigest_parse((const char *)sqlite3_column_text(q, 2), &sp->digest);
        sp->all = sqlite3_column_int(q, 3) != 0;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "read wharf_supersessions for %s", intake);
        return -1;
    }
    return 0;
}

static int sq_loaded(struct target *t, const char *intake, uint64_t *rows, struct werr *e)
{
    struct sq *s = t->impl;
    sqlite3_stmt *st = NULL;
    int rc, r = -1;
    load_stats_clear(&t->stats);
    if (sq_prepare(s,
                   "SELECT rows, key_rows, key_digest, key_cols FROM wharf_loads WHERE intake = ?1",
                   &st, "read wharf_loads", e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, intake, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *kc = (const char *)sqlite3_column_text(st, 3);
        if (rows)
            *rows = (uint64_t)sqlite3_column_int64(st, 0);
        t->stats.rows = (uint64_t)sqlite3_column_int64(st, 1);
        if (kc && keydigest_parse((const char *)sqlite3_column_text(st, 2), &t->stats.digest) == 0)
            t->stats.key = xstrdup(kc);
        r = 1;
    } else if (rc == SQLITE_DONE) {
        r = 0;
    } else {
        sq_fail(e, s, rc, "read wharf_loads for %s", intake);
    }
    sqlite3_finalize(st);
    if (r == 1 && t->stats.key && read_supersessions(s, intake, &t->stats, e) < 0)
        r = -1;
    return r;
}

/* The table's columns; ti->n == 0 when the table does not exist. */
static int table_info(struct sq *s, struct tinfo *ti, struct werr *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    memset(ti, 0, sizeof *ti);
    if (sq_prepare(s,
                   "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk"
                   " FROM pragma_table_info(?1)",
                   &st, "read table columns", e) < 0)
        return -1;
    sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);
        tinfo_add(ti, name ? name : "", type ? type : "", sqlite3_column_int(st, 2) != 0,
                  sqlite3_column_int(st, 3) != 0, sqlite3_column_int(st, 4));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "read columns of table \"%s\"", s->table);
        tinfo_free(ti);
        return -1;
    }
    return 0;
}

static int create_table(struct sq *s, const struct columns *cols, bool lineage, struct werr *e)
{
    struct sqlbuf b = {0};
    size_t i;
    int r = -1;
    sb_add(&b, "CREATE TABLE ");
    sb_ident(&b, s->table);
    sb_add(&b, " (");
    for (i = 0; i < cols->n; i++) {
        sb_coldef(&b, &cols->v[i]);
        sb_add(&b, ", ");
    }
    sb_add(&b, lineage ? "\"_wharf_intake\" TEXT NOT NULL, \"_wharf_line\" TEXT)"
                       : "\"_wharf_intake\" TEXT NOT NULL)");
    if (sq_exec(s, b.s, "create table", e) < 0) {
        werr_prefix(e, "table \"%s\"", s->table);
        goto out;
    }
    r = 0;
out:
    free(b.s);
    return r;
}

static int create_intake_index(struct sq *s, struct werr *e)
{
    struct sqlbuf b = {0}, name = {0};
    int r;
    sb_add(&name, s->table);
    sb_add(&name, "__wharf_intake");
    sb_add(&b, "CREATE INDEX IF NOT EXISTS ");
    sb_ident(&b, name.s);
    sb_add(&b, " ON ");
    sb_ident(&b, s->table);
    sb_add(&b, " (\"_wharf_intake\")");
    r = sq_exec(s, b.s, "create intake index", e);
    free(b.s);
    free(name.s);
    return r;
}

static int add_columns(struct sq *s, const struct columns *cols, const size_t *adds, size_t n,
                       struct werr *e)
{
    for (size_t i = 0; i < n; i++) {
        const struct column *col = &cols->v[adds[i]];
        struct sqlbuf b = {0};
        int r;
        sb_add(&b, "ALTER TABLE ");
        sb_ident(&b, s->table);
        sb_add(&b, " ADD COLUMN ");
        sb_coldef(&b, col);
        r = sq_exec(s, b.s, "evolve: add column", e);
        free(b.s);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int add_intake_column(struct sq *s, struct werr *e)
{
    struct sqlbuf b = {0};
    int r;
    sb_add(&b, "ALTER TABLE ");
    sb_ident(&b, s->table);
    sb_add(&b, " ADD COLUMN \"_wharf_intake\" TEXT");
    r = sq_exec(s, b.s, "add column _wharf_intake", e);
    free(b.s);
    return r;
}

static bool is_key(const struct strlist *key, const char *name)
{
    size_t i;
    for (i = 0; i < key->n; i++)
        if (!strcasecmp(key->v[i], name))
            return true;
    return false;
}

/* Does a UNIQUE index (or the INTEGER PRIMARY KEY) cover exactly the key
 * columns?  ON CONFLICT (key) needs one. */
static int key_index_exists(struct sq *s, const struct tinfo *ti, const struct strlist *key,
                            struct werr *e)
{
    sqlite3_stmt *il = NULL, *ii = NULL;
    int rc = SQLITE_DONE, found = 0;
    size_t j, npk = 0;
    for (j = 0; j < ti->n; j++)
        npk += ti->v[j].pk > 0;
    if (key->n == 1 && npk == 1) {
        const struct tcol *c = tinfo_find(ti, key->v[0]);
        if (c && c->pk && !strcasecmp(c->type, "INTEGER"))
            return 1; /* rowid alias: never listed among the indexes */
    }
    if (sq_prepare(s, "SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0",
                   &il, "read indexes", e) < 0 ||
        sq_prepare(s, "SELECT name FROM pragma_index_info(?1)", &ii, "read index", e) < 0) {
        found = -1;
        goto out;
    }
    sqlite3_bind_text(il, 1, s->table, -1, SQLITE_STATIC);
    while (!found && (rc = sqlite3_step(il)) == SQLITE_ROW) {
        size_t n = 0;
        bool all = true;
        sqlite3_reset(ii);
        sqlite3_bind_text(ii, 1, (const char *)sqlite3_column_text(il, 0), -1, SQLITE_TRANSIENT);
        while ((rc = sqlite3_step(ii)) == SQLITE_ROW) {
            const char *c = (const char *)sqlite3_column_text(ii, 0);
            n++;
            if (!c || !is_key(key, c))
                all = false; /* an expression, or a column beyond the key */
        }
        if (rc != SQLITE_DONE)
            break;
        if (all && n == key->n)
            found = 1;
    }
    if (!found && rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "read indexes of table \"%s\"", s->table);
        found = -1;
    }
out:
    sqlite3_finalize(il);
    sqlite3_finalize(ii);
    return found;
}

static int create_key_index(struct sq *s, const struct strlist *key, struct werr *e)
{
    struct sqlbuf b = {0}, name = {0};
    size_t i;
    int r;
    sb_add(&name, s->table);
    sb_add(&name, "__wharf_key");
    sb_add(&b, "CREATE UNIQUE INDEX ");
    sb_ident(&b, name.s);
    sb_add(&b, " ON ");
    sb_ident(&b, s->table);
    sb_add(&b, " (");
    for (i = 0; i < key->n; i++) {
        if (i)
            sb_add(&b, ", ");
        sb_ident(&b, key->v[i]);
    }
    sb_add(&b, ")");
    r = sq_exec(s, b.s, "create unique index on the upsert key", e);
    free(b.s);
    free(name.s);
    return r;
}

/* INSERT INTO "t" ("a", "b", "_wharf_intake") VALUES (?1, ?2, ?3)
 *   [ON CONFLICT ("k") DO UPDATE SET "a" = excluded."a", ..] */
static char *insert_sql(struct sq *s, const struct columns *cols, const struct strlist *key,
                        bool upsert, bool lineage)
{
    struct sqlbuf b = {0};
    char num[32];
    size_t i;
    sb_add(&b, "INSERT INTO ");
    sb_ident(&b, s->table);
    sb_add(&b, " (");
    for (i = 0; i < cols->n; i++) {
        sb_ident(&b, cols->v[i].name);
        sb_add(&b, ", ");
    }
    sb_add(&b, lineage ? "\"_wharf_intake\", \"_wharf_line\") VALUES ("
                       : "\"_wharf_intake\") VALUES (");
    for (i = 0; i <= cols->n + (lineage ? 1 : 0); i++) {
        snprintf(num, sizeof num, "%s?%zu", i ? ", " : "", i + 1);
        sb_add(&b, num);
    }
    sb_add(&b, ")");
    if (upsert) {
        sb_add(&b, " ON CONFLICT (");
        for (i = 0; i < key->n; i++) {
            if (i)
                sb_add(&b, ", ");
            sb_ident(&b, key->v[i]);
        }
        sb_add(&b, ") DO UPDATE SET ");
        for (i = 0; i < cols->n; i++) {
            if (is_key(key, cols->v[i].name))
                continue;
            sb_ident(&b, cols->v[i].name);
            sb_add(&b, " = excluded.");
            sb_ident(&b, cols->v[i].name);
            sb_add(&b, ", ");
        }
        sb_add(&b, "\"_wharf_intake\" = excluded.\"_wharf_intake\"");
        if (lineage)
            sb_add(&b, ", \"_wharf_line\" = excluded.\"_wharf_line\"");
    }
    return b.s;
}

/* Every identifier checked before the database is touched. */
static int check_names(struct sq *s, const struct columns *cols, const struct profile *p,
                       struct werr *e)
{
    return tabdiff_names(s->table, cols, p, e);
}

/* Frees what one load's key bookkeeping holds. */
static void load_end(struct sq *s)
{
    if (s->walfd >= 0)
        close(s->walfd);
    s->walfd = -1;
    sqlite3_finalize(s->prev);
    s->prev = NULL;
    free(s->kidx);
    free(s->uidx);
    for (size_t i = 0; s->narrow && i < s->nnarrow; i++)
        free(s->narrow[i]);
    free(s->narrow);
    s->narrow = NULL;
    s->nnarrow = 0;
    s->kidx = s->uidx = NULL;
    s->nk = s->nu = 0;
}

static size_t col_index(const struct columns *cols, const char *name)
{
    for (size_t i = 0; i < cols->n; i++)
        if (!strcasecmp(cols->v[i].name, name))
            return i;
    return SIZE_MAX;
}

/* The key the digest is over: target.key, else the schema's primaryKey,
 * else every column; its names go into st->key as "a,b". */
static void choose_key(struct sq *s, const struct columns *cols, const struct profile *p,
                       struct load_stats *st)
{
    struct sqlbuf names = {0};
    s->kidx = xcalloc(cols->n + 1, sizeof *s->kidx);
    s->nk = 0;
    for (size_t i = 0; i < p->target.key.n; i++) {
        size_t k = col_index(cols, p->target.key.v[i]);
        if (k != SIZE_MAX)
            s->kidx[s->nk++] = k;
    }
    if (!s->nk || s->nk != p->target.key.n) {
        s->nk = 0;
        for (size_t i = 0; i < cols->n; i++)
            if (cols->v[i].key)
                s->kidx[s->nk++] = i;
    }
    if (!s->nk)
        for (size_t i = 0; i < cols->n; i++)
            s->kidx[s->nk++] = i;
    for (size_t i = 0; i < s->nk; i++) {
        if (i)
            sb_add(&names, ",");
        sb_add(&names, cols->v[s->kidx[i]].name);
    }
    free(st->key);
    st->key = names.s ? names.s : xstrdup("");
}

/* SELECT "_wharf_intake", <digest key> FROM "t" WHERE <upsert key> = ..;
 * the digest key's columns are named in st->key. */
static int prepare_prev(struct sq *s, const struct columns *cols, const struct profile *p,
                        struct werr *e)
{
    struct sqlbuf b = {0};
    char num[32];
    int r;
    s->uidx = xcalloc(p->target.key.n + 1, sizeof *s->uidx);
    s->nu = 0;
    for (size_t i = 0; i < p->target.key.n; i++)
        s->uidx[s->nu++] = col_index(cols, p->target.key.v[i]);
    sb_add(&b, "SELECT \"_wharf_intake\"");
    for (size_t i = 0; i < s->nk; i++) {
        sb_add(&b, ", ");
        sb_ident(&b, cols->v[s->kidx[i]].name);
    }
    sb_add(&b, " FROM ");
    sb_ident(&b, s->table);
    sb_add(&b, " WHERE ");
    for (size_t i = 0; i < s->nu; i++) {
        if (i)
            sb_add(&b, " AND ");
        sb_ident(&b, cols->v[s->uidx[i]].name);
        snprintf(num, sizeof num, " = ?%zu", i + 1);
        sb_add(&b, num);
    }
    r = sq_prepare(s, b.s, &s->prev, "prepare the upsert lookup", e);
    free(b.s);
    return r;
}

/* replace: every intake in the table loses all its rows. */
static int supersede_all(struct sq *s, struct werr *e)
{
    struct sqlbuf b = {0};
    sqlite3_stmt *q = NULL;
    int rc, r = -1;
    sb_add(&b, "SELECT \"_wharf_intake\", count(*) FROM ");
    sb_ident(&b, s->table);
    sb_add(&b, " GROUP BY 1");
    if (sq_prepare(s, b.s, &q, "replace: count old rows", e) < 0)
        goto out;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(q, 0);
        struct supersession *sp = load_stats_sup(s->st, old ? old : "");
        sp->rows = (uint64_t)sqlite3_column_int64(q, 1);
        sp->all = true;
    }
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "replace: count old rows");
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(q);
    free(b.s);
    return r;
}

/* The digest key of a stored row (columns from `first` on) into kh. */
static void hash_stored(struct sq *s, sqlite3_stmt *q, int first)
{
    for (size_t i = 0; i < s->nk; i++) {
        int c = first + (int)i;
        switch (sqlite3_column_type(q, c)) {
        case SQLITE_NULL:
            keyhash_null(&s->kh);
            break;
        case SQLITE_INTEGER:
            keyhash_int(&s->kh, sqlite3_column_int64(q, c));
            break;
        case SQLITE_FLOAT:
            keyhash_real(&s->kh, sqlite3_column_double(q, c));
            break;
        default: {
            const void *t = sqlite3_column_blob(q, c);
            keyhash_text(&s->kh, t ? t : "", (size_t)sqlite3_column_bytes(q, c));
        }
        }
    }
}

static void hash_value(struct keyhash *kh, const struct value *v)
{
    switch (v->kind) {
    case VAL_NULL:
        keyhash_null(kh);
        break;
    case VAL_INT:
        keyhash_int(kh, v->i);
        break;
    case VAL_REAL:
        keyhash_real(kh, v->d);
        break;
    case VAL_TEXT:
        keyhash_text(kh, v->s ? v->s : "", v->len);
        break;
    }
}

static int bind_value(sqlite3_stmt *st, int idx, const struct value *v)
{
    switch (v->kind) {
    case VAL_NULL:
        return sqlite3_bind_null(st, idx);
    case VAL_INT:
        return sqlite3_bind_int64(st, idx, v->i);
    case VAL_REAL:
        return sqlite3_bind_double(st, idx, v->d);
    case VAL_TEXT:
        return sqlite3_bind_text(st, idx, v->s ? v->s : "", (int)v->len, SQLITE_STATIC);
    }
    return SQLITE_MISUSE;
}

/* upsert: does the row's key exist already?  Then that row is superseded:
 * counted against its intake (or taken back from this one's own). */
static int note_superseded(struct sq *s, const struct row *row, struct werr *e)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < s->nu && rc == SQLITE_OK; i++)
        rc = bind_value(s->prev, (int)i + 1, &row->v[s->uidx[i]]);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s->prev);
    if (rc == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(s->prev, 0);
        hash_stored(s, s->prev, 1);
        if (old && !strcmp(old, s->intake)) {
            keyhash_sub_from(&s->kh, &s->st->digest);
            s->st->rows--;
        } else {
            struct supersession *sp = load_stats_sup(s->st, old ? old : "");
            keyhash_add_to(&s->kh, &sp->digest);
            sp->rows++;
        }
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s->prev);
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "table \"%s\": upsert lookup, line %llu", s->table,
                (unsigned long long)row->line);
        return -1;
    }
    return 0;
}

/* An existing table may hold a COLK_WIDEINT column declared INTEGER or
 * NUMERIC (made by a wharf that stored every integer in 64 bits, or by
 * hand): SQLite turns digits beyond 64 bits bound into it into a rounded
 * REAL, so such a value is refused at insert instead. */
static void mark_narrow(struct sq *s, const struct tinfo *ti, const struct columns *cols)
{
    for (size_t i = 0; i < cols->n; i++) {
        const struct tcol *c = tinfo_find(ti, cols->v[i].name);
        if (cols->v[i].kind != COLK_WIDEINT || !c || affinity_of(c->type) == AFF_BLOB)
            continue;
        if (!s->narrow) {
            s->narrow = xcalloc(cols->n, sizeof *s->narrow);
            s->nnarrow = cols->n;
        }
        s->narrow[i] = xstrdup(cols->v[i].name);
    }
}

/* A value beyond 64 bits for a narrow column: the partner's value meeting
 * the table's limit, so a reject with its line and column (target.h), not
 * a failure of the target. */
static int refuse_narrow(struct target *t, const struct row *row, size_t col, struct werr *e)
{
    struct sq *s = t->impl;
    const struct value *v = &row->v[col];
    memset(&t->reject, 0, sizeof t->reject);
    t->reject.set = true;
    t->reject.seq = s->seq;
    t->reject.line = row->line;
    snprintf(t->reject.column, sizeof t->reject.column, "%s", s->narrow[col]);
    snprintf(t->reject.message, sizeof t->reject.message,
             "%.*s is beyond 64 bits and the column is declared numeric, where SQLite would "
             "round it to a double; a column without a declared type (as wharf creates one) "
             "keeps every digit",
             v->len > 60 ? 60 : (int)v->len, v->s);
    werr_setk(e, WERR_SCHEMA, "%s: table \"%s\": line %llu, column \"%s\": %s", s->path, s->table,
              (unsigned long long)row->line, t->reject.column, t->reject.message);
    return -1;
}

static int step_row(void *ctx, const struct row *row, bool early, struct werr *e);
static void digest_row(void *ctx, const struct row *row);

static void sq_rollback(struct target *t)
{
    struct sq *s = t->impl;
    if (!s)
        return;
    rowq_free(s->q); /* the inserting thread is done with the connection */
    s->q = NULL;
    sqlite3_finalize(s->ins);
    s->ins = NULL;
    load_end(s);
    s->active = false;
    s->index_at_end = false;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_begin(struct target *t, const char *intake, const struct columns *cols,
                    struct werr *e)
{
    struct sq *s = t->impl;
    const struct profile *p = t->profile;
    struct tinfo ti = {0};
    char *sql = NULL;
    bool created = false;
    int rc, r = -1;
    if (s->active || !sqlite3_get_autocommit(s->db)) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: begin: a load is already in progress", s->path);
        return -1;
    }
    load_stats_clear(&t->stats);
    s->st = &t->stats;
    snprintf(s->intake, sizeof s->intake, "%s", intake);
    s->lineage = false;
    s->seq = 0;
    s->stepped = 0;
    memset(&s->pdigest, 0, sizeof s->pdigest);
    s->prows = 0;
    memset(&t->reject, 0, sizeof t->reject);
    if (check_names(s, cols, p, e) < 0)
        goto out;
    if (sq_exec(s, "BEGIN IMMEDIATE", "begin", e) < 0)
        goto out;
    s->active = true;
    choose_key(s, cols, p, s->st);
    if (cols->n == 0) { /* nothing to load: the table is left alone, only wharf_loads */
        r = 0;
        goto out;
    }
    if (table_info(s, &ti, e) < 0)
        goto fail;
    if (ti.n == 0) {
        if (create_table(s, cols, p->target.lineage, e) < 0)
            goto fail;
        created = true;
        s->lineage = p->target.lineage;
    } else {
        s->lineage = p->target.lineage && tinfo_find(&ti, "_wharf_line");
        size_t *adds = xcalloc(cols->n + 1, sizeof *adds), nadds;
        int dr = schema_diff(s, &ti, cols, p->target.evolve, false, adds, &nadds, e);
        if (dr == 0 && nadds) {
            dr = add_columns(s, cols, adds, nadds, e);
            if (dr == 0)
                wlog(LOG_INFO, s->profile, intake, "evolve",
                     json_pack("{s:s,s:I}", "table", s->table, "added", (json_int_t)nadds),
                     "table \"%s\": %zu new column%s added (target.evolve: add_columns)", s->table,
                     nadds, nadds == 1 ? "" : "s");
        }
        free(adds);
        if (dr < 0)
            goto fail;
        if (!tinfo_find(&ti, "_wharf_intake") && add_intake_column(s, e) < 0)
            goto fail;
        mark_narrow(s, &ti, cols);
    }
    /* A table this transaction made is invisible to everyone else until
     * the commit: its intake index is built then, in one sorted pass,
     * instead of row by row.  An existing table keeps its index current. */
    if (created)
        s->index_at_end = true;
    else if (create_intake_index(s, e) < 0)
        goto fail;
    if (p->target.mode == LOAD_UPSERT) {
        if (created) {
            if (create_key_index(s, &p->target.key, e) < 0)
                goto fail;
        } else {
            int k = key_index_exists(s, &ti, &p->target.key, e);
            if (k < 0)
                goto fail;
            if (k == 0) {
                werr_setk(e, WERR_TARGET_DOWN,
                          "%s: table \"%s\" has no UNIQUE index on exactly the upsert key; "
                          "create one (CREATE UNIQUE INDEX .. ON \"%s\" (key columns))",
                          s->path, s->table, s->table);
                goto fail;
            }
        }
        if (prepare_prev(s, cols, p, e) < 0)
            goto fail;
    }
    if (p->target.mode == LOAD_REPLACE && !created && supersede_all(s, e) < 0)
        goto fail;
    if (p->target.mode == LOAD_REPLACE) {
        struct sqlbuf b = {0};
        sb_add(&b, "DELETE FROM ");
        sb_ident(&b, s->table);
        rc = sq_exec(s, b.s, "replace: delete old rows", e);
        free(b.s);
        if (rc < 0)
            goto fail;
    }
    sql = insert_sql(s, cols, &p->target.key, p->target.mode == LOAD_UPSERT, s->lineage);
    if (sq_prepare(s, sql, &s->ins, "prepare insert", e) < 0)
        goto fail;
    s->ncols = cols->n;
    rc = sqlite3_bind_text(s->ins, (int)cols->n + 1, intake, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        sq_fail(e, s, rc, "bind intake");
        goto fail;
    }
    s->q = rowq_new(cols->n, step_row, s->prev ? NULL : digest_row, s);
    r = 0;
    goto out;
fail:
    sq_rollback(t);
out:
    if (r < 0)
        load_end(s);
    tinfo_free(&ti);
    free(sql);
    return r;
}

/*
 * Two threads share a load (load/rowq.h): insert runs on the validating
 * thread, checks the row (what would make the target refuse it: those
 * become a reject with its line, decided in order, as before), copies it
 * into the queue; step_row runs on the inserting thread and does
 * everything that touches the connection: bind, step, reset and, for
 * upsert, the lookup of the row a key replaces.  The key digest of a row
 * is summed by whichever thread has time: the inserting one, or the
 * validating one when it would otherwise wait for a free batch (rowq's
 * early share, digest_row).  commit and rollback end the queue first, so
 * the connection is the caller's again before they use it.  A step that
 * fails surfaces at the next batch handed over, or at commit: the load is
 * rolled back as before.
 *
 * Why there is no data race (no lock beyond rowq's; checked under TSan,
 * which CI does not run): between begin and the end of the queue
 *  - only the inserting thread touches the connection and ins, prev,
 *    where, kh, walfd, stepped and *st (digest, rows, supersessions);
 *  - only the validating thread touches seq, pkh, pdigest, prows and
 *    t->reject, and reads ncols, narrow, nk and kidx, which begin set
 *    before the first row and nobody changes until the load ends;
 *  - a row's copy belongs to one side at a time, handed over under rowq's
 *    mutex, and rowq_finish / rowq_free join the thread before commit,
 *    rollback or close read *st or use the connection again.
 * The connection is opened NOMUTEX: SQLite's multi-thread mode allows it
 * on several threads, one at a time, which is what the above guarantees.
 */

/*
 * A large load fills the WAL with pages that the kernel only starts
 * writing when the COMMIT fsyncs them: every WAL_KICK_ROWS rows the
 * inserting thread asks for their writeback to start now
 * (sync_file_range, SYNC_FILE_RANGE_WRITE: no wait, no durability
 * promise; the COMMIT's fsync still is the durable point), so by the
 * commit most of it is on disk.  The WAL is opened by its name, read-only,
 * and only for this; where it cannot be, nothing changes.  About 0.1 s of
 * the 1M-row B1 load's commit.
 */
static void wal_kick(struct sq *s)
{
    if (s->walfd == -1) {
        char *wal = xasprintf("%s-wal", s->path);
        s->walfd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (s->walfd < 0)
            s->walfd = -2;
        free(wal);
    }
    if (s->walfd >= 0)
        (void)sync_file_range(s->walfd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* The hot loop of the inserting thread: bind, step, reset; no allocation.
 * Text is bound SQLITE_STATIC: it lives in the queue's batch until every
 * row of it is stepped, and every parameter is bound again before the next
 * step. */
/* The key digest of a row the inserting thread has not reached yet, on
 * the validating thread (rowq's early share; never with upsert, whose
 * digest goes with its lookups). */
static void digest_row(void *ctx, const struct row *row)
{
    struct sq *s = ctx;
    for (size_t i = 0; i < s->nk; i++)
        hash_value(&s->pkh, &row->v[s->kidx[i]]);
    keyhash_add_to(&s->pkh, &s->pdigest);
    s->prows++;
}

static int step_row(void *ctx, const struct row *row, bool early, struct werr *e)
{
    struct sq *s = ctx;
    size_t i;
    int rc = SQLITE_OK;
    if (s->prev && note_superseded(s, row, e) < 0)
        return -1;
    for (i = 0; i < row->n && rc == SQLITE_OK; i++)
        rc = bind_value(s->ins, (int)i + 1, &row->v[i]);
    if (rc == SQLITE_OK && s->lineage) {
        /* the hot path: digits by hand, bound STATIC (s->where outlives the step) */
        size_t n = 0;
        if (row->part) {
            n = format_u64(s->where, row->part);
            s->where[n++] = ':';
        }
        n += format_u64(s->where + n, row->line);
        if (row->xpath) {
            size_t x = strlen(row->xpath);
            if (x > sizeof s->where - n - 2)
                x = sizeof s->where - n - 2;
            s->where[n++] = ' ';
            memcpy(s->where + n, row->xpath, x);
            n += x;
        }
        rc = sqlite3_bind_text(s->ins, (int)s->ncols + 2, s->where, (int)n, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s->ins);
    sqlite3_reset(s->ins);
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        sq_fail(e, s, rc, "table \"%s\": insert line %llu", s->table,
                (unsigned long long)row->line);
        return -1;
    }
    if ((++s->stepped & (WAL_KICK_ROWS - 1)) == 0)
        wal_kick(s);
    if (!early) { /* upsert: always, in step with note_superseded */
        for (i = 0; i < s->nk; i++)
            hash_value(&s->kh, &row->v[s->kidx[i]]);
        keyhash_add_to(&s->kh, &s->st->digest);
        s->st->rows++;
    }
    return 0;
}

static int sq_insert(struct target *t, const struct row *row, struct werr *e)
{
    struct sq *s = t->impl;
    size_t i;
    if (!s->ins || !s->q) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: insert outside a load", s->path);
        return -1;
    }
    if (row->n != s->ncols) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: line %llu: %zu values for %zu columns", s->path,
                  (unsigned long long)row->line, row->n, s->ncols);
        return -1;
    }
    for (i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        if (v->kind == VAL_REAL && isnan(v->d)) { /* SQLite would store NULL: never a substitute */
            werr_setk(e, WERR_SCHEMA, "%s: line %llu: column %zu is NaN, which SQLite cannot store",
                      s->path, (unsigned long long)row->line, i + 1);
            return -1;
        }
        if (v->kind == VAL_TEXT && v->len > INT_MAX) {
            werr_setk(e, WERR_TOO_BIG, "%s: line %llu: value of column %zu is too long", s->path,
                      (unsigned long long)row->line, i + 1);
            return -1;
        }
        if (v->kind == VAL_TEXT && s->narrow && s->narrow[i])
            return refuse_narrow(t, row, i, e);
    }
    if (rowq_put(s->q, row, e) < 0)
        return -1;
    s->seq++;
    return 0;
}

static int record_supersessions(struct sq *s, const char *intake, const struct load_stats *ls,
                                struct werr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = SQLITE_DONE;
    if (!ls->n_sup)
        return 0;
    if (sq_prepare(s,
                   "INSERT OR REPLACE INTO wharf_supersessions (intake, by_intake, rows, digest,"
                   " all_rows) VALUES (?1, ?2, ?3, ?4, ?5)",
                   &q, "record supersessions", e) < 0)
        return -1;
    for (size_t i = 0; i < ls->n_sup && rc == SQLITE_DONE; i++) {
        char hex[KEYDIGEST_HEX_LEN];
        keydigest_hex(&ls->sup[i].digest, hex);
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, ls->sup[i].intake, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, intake, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)ls->sup[i].rows);
        if (ls->sup[i].all)
            sqlite3_bind_null(q, 4);
        else
            sqlite3_bind_text(q, 4, hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 5, ls->sup[i].all);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "record supersessions of %s", intake);
        return -1;
    }
    return 0;
}

static int sq_commit(struct target *t, const char *intake, const char *sha256, uint64_t rows,
                     struct werr *e)
{
    struct sq *s = t->impl;
    sqlite3_stmt *st = NULL;
    int rc, r = -1;
    if (!s->active) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: commit outside a load", s->path);
        return -1;
    }
    if (s->q) { /* every row stepped, the connection ours again */
        int qr = rowq_finish(s->q, e);
        rowq_free(s->q);
        s->q = NULL;
        if (qr < 0)
            goto out;
    }
    keydigest_add(&s->st->digest, &s->pdigest);
    s->st->rows += s->prows;
    memset(&s->pdigest, 0, sizeof s->pdigest);
    s->prows = 0;
    if (s->index_at_end && create_intake_index(s, e) < 0)
        goto out;
    if (sq_prepare(s,
                   "INSERT INTO wharf_loads (intake, profile, tbl, rows, sha256, time_ms,"
                   " key_rows, key_digest, key_cols)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                   &st, "record load", e) < 0)
        goto out;
    char hex[KEYDIGEST_HEX_LEN];
    keydigest_hex(&t->stats.digest, hex);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)t->stats.rows);
    sqlite3_bind_text(st, 8, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, t->stats.key ? t->stats.key : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 1, intake, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->table, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)rows);
    if (sha256)
        sqlite3_bind_text(st, 5, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms());
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "record load of %s in wharf_loads", intake);
        goto out;
    }
    if (record_supersessions(s, intake, &t->stats, e) < 0)
        goto out;
    sqlite3_finalize(s->ins);
    s->ins = NULL;
    load_end(s);
    if (sq_exec(s, "COMMIT", "commit", e) < 0)
        goto out;
    s->active = false;
    s->index_at_end = false;
    r = 0;
out:
    sqlite3_finalize(st);
    if (r < 0)
        sq_rollback(t);
    return r;
}

static void sq_close(struct target *t)
{
    struct sq *s = t->impl;
    if (!s)
        return;
    sq_rollback(t);
    keyhash_free(&s->kh);
    keyhash_free(&s->pkh);
    sqlite3_close(s->db);
    free(s->path);
    free(s->table);
    free(s);
    t->impl = NULL;
}

static char *sq_describe(struct target *t)
{
    struct sq *s = t->impl;
    if (!s)
        return xasprintf("sqlite:%s#%s", t->profile ? t->profile->target.path : "?",
                         t->profile ? t->profile->target.table : "?");
    return xasprintf("sqlite:%s#%s", s->path, s->table);
}

/* Read-only: a database or table that does not exist yet fits (the first
 * load creates it); a database that cannot be read is reported. */
static int sq_check_schema(const struct wharf_config *cfg, const struct profile *p,
                           const struct columns *cols, struct werr *e)
{
    struct sq s = {0};
    struct tinfo ti = {0};
    size_t *adds = NULL, nadds;
    struct stat st;
    int rc, r = -1;
    (void)cfg;
    if (!p->target.path || !p->target.table || cols->n == 0)
        return 0;
    if (stat(p->target.path, &st) < 0 && errno == ENOENT)
        return 0;
    s.path = p->target.path;
    s.table = p->target.table;
    rc = sqlite3_open_v2(s.path, &s.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sq_fail(e, &s, rc, "open read-only");
        goto out;
    }
    sqlwait_install(s.db, BUSY_TIMEOUT_MS);
    if (table_info(&s, &ti, e) < 0)
        goto out;
    if (ti.n == 0) {
        r = 0;
        goto out;
    }
    adds = xcalloc(cols->n + 1, sizeof *adds);
    r = schema_diff(&s, &ti, cols, p->target.evolve, true, adds, &nadds, e);
out:
    free(adds);
    tinfo_free(&ti);
    sqlite3_close(s.db);
    return r;
}

/* ---- reading back: reconcile and trace ------------------------------- */

/* "a,b" into checked identifiers. */
static int split_key(const char *key, struct strlist *out, struct werr *e)
{
    const char *p = key;
    memset(out, 0, sizeof *out);
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char *name = xstrndup(p, n);
        if (!ident_valid(name)) {
            werr_setk(e, WERR_TARGET_DOWN, "recorded key column \"%s\" is not a valid identifier",
                      name);
            free(name);
            return -1;
        }
        out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = name;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

static void strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/*
 * The intake's rows now, in batches: each batch is its own statement (and
 * read transaction) over at most `batch` rows in rowid order through the
 * intake index, so a writer is never held off for long and memory stays
 * flat whatever the table's size:
 *   SELECT rowid, <key> FROM "t" WHERE "_wharf_intake" = ?1 AND rowid > ?2
 *   ORDER BY rowid LIMIT ?3
 */
static int sq_tally(struct target *t, const char *intake, const char *key, uint64_t batch,
                    struct tally *out, struct werr *e)
{
    struct sq *s = t->impl;
    struct strlist kc = {0};
    struct sqlbuf b = {0};
    sqlite3_stmt *q = NULL;
    sqlite3_int64 last = INT64_MIN;
    int rc, r = -1, k;
    memset(out, 0, sizeof *out);
    if (!batch)
        batch = 50000;
    if ((k = has_table(s, "wharf_loads", e)) < 0)
        goto out;
    if (k) {
        if (sq_prepare(s, "SELECT rows FROM wharf_loads WHERE intake = ?1", &q, "read wharf_loads",
                       e) < 0)
            goto out;
        sqlite3_bind_text(q, 1, intake, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            out->load_recorded = true;
            out->recorded_rows = (uint64_t)sqlite3_column_int64(q, 0);
        } else if (rc != SQLITE_DONE) {
            sq_fail(e, s, rc, "read wharf_loads for %s", intake);
            goto out;
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    if ((k = has_table(s, s->table, e)) < 0)
        goto out;
    if (!k || !key) {
        out->table_missing = !k;
        r = 0;
        goto out;
    }
    if (split_key(key, &kc, e) < 0)
        goto out;
    sb_add(&b, "SELECT rowid");
    for (size_t i = 0; i < kc.n; i++) {
        sb_add(&b, ", ");
        sb_ident(&b, kc.v[i]);
    }
    sb_add(&b, " FROM ");
    sb_ident(&b, s->table);
    sb_add(&b, " WHERE \"_wharf_intake\" = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3");
    if (sq_prepare(s, b.s, &q, "read rows", e) < 0) {
        werr_prefix(e, "table \"%s\"", s->table);
        goto out;
    }
    s->nk = kc.n;
    for (;;) {
        uint64_t n = 0;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, intake, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, last);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)batch);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            last = sqlite3_column_int64(q, 0);
            hash_stored(s, q, 1);
            keyhash_add_to(&s->kh, &out->digest);
            n++;
        }
        if (rc != SQLITE_DONE) {
            sq_fail(e, s, rc, "table \"%s\": read rows of %s", s->table, intake);
            goto out;
        }
        out->rows += n;
        if (n < batch)
            break;
    }
    r = 0;
out:
    s->nk = 0;
    sqlite3_finalize(q);
    free(b.s);
    strlist_clear(&kc);
    return r;
}

static int sq_intakes(struct target *t, intake_count_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = t->impl;
    struct sqlbuf b = {0};
    sqlite3_stmt *q = NULL;
    int rc, r = -1, k;
    if ((k = has_table(s, s->table, e)) < 0)
        return -1;
    if (!k)
        return 1;
    sb_add(&b, "SELECT \"_wharf_intake\", count(*) FROM ");
    sb_ident(&b, s->table);
    sb_add(&b, " GROUP BY 1 ORDER BY 1");
    if (sq_prepare(s, b.s, &q, "count rows per intake", e) < 0)
        goto out;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        if (fn(ctx, id ? id : "", (uint64_t)sqlite3_column_int64(q, 1), e) < 0)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "table \"%s\": count rows per intake", s->table);
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(q);
    free(b.s);
    return r;
}

static int sq_find(struct target *t, char *const *cols, char *const *vals, size_t n, size_t limit,
                   found_fn fn, void *ctx, struct werr *e)
{
    struct sq *s = t->impl;
    struct sqlbuf b = {0};
    sqlite3_stmt *q = NULL;
    const char **names = NULL, **values = NULL;
    enum affinity *aff = xcalloc(n + 1, sizeof *aff);
    char num[32];
    int rc, r = -1, nc, ci = -1, cl = -1, k;
    if ((k = has_table(s, s->table, e)) < 0)
        return -1;
    if (!k) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: table \"%s\" does not exist", s->path, s->table);
        return -1;
    }
    sb_add(&b, "SELECT * FROM ");
    sb_ident(&b, s->table);
    for (size_t i = 0; i < n; i++) {
        if (!ident_valid(cols[i])) {
            werr_setk(e, WERR_TARGET_DOWN, "\"%s\" is not a column name", cols[i]);
            goto out;
        }
        /* SQLite reads a double-quoted name that is no column as a string:
         * look first, so a typo is an error and not "no row matches". */
        if ((k = column_affinity(s, s->table, cols[i], &aff[i], e)) <= 0) {
            if (k == 0)
                werr_setk(e, WERR_TARGET_DOWN, "%s: table \"%s\" has no column \"%s\"", s->path,
                          s->table, cols[i]);
            goto out;
        }
        sb_add(&b, i ? " AND " : " WHERE ");
        sb_ident(&b, cols[i]);
        snprintf(num, sizeof num, " = ?%zu", i + 1);
        sb_add(&b, num);
    }
    snprintf(num, sizeof num, " LIMIT %zu", limit ? limit : 100);
    sb_add(&b, num);
    if (sq_prepare(s, b.s, &q, "find rows", e) < 0) {
        werr_prefix(e, "table \"%s\"", s->table);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        /* a column without a type compares what is stored as it is: an
         * integer that fits 64 bits is an INTEGER there (COLK_WIDEINT) */
        long long ll;
        char *end = NULL;
        errno = 0;
        ll = aff[i] == AFF_BLOB && *vals[i] ? strtoll(vals[i], &end, 10) : 0;
        if (aff[i] == AFF_BLOB && *vals[i] && !errno && !*end)
            sqlite3_bind_int64(q, (int)i + 1, ll);
        else
            sqlite3_bind_text(q, (int)i + 1, vals[i], -1, SQLITE_STATIC);
    }
    nc = sqlite3_column_count(q);
    names = xcalloc((size_t)nc + 1, sizeof *names);
    values = xcalloc((size_t)nc + 1, sizeof *values);
    for (int i = 0; i < nc; i++) {
        names[i] = sqlite3_column_name(q, i);
        if (!strcmp(names[i], "_wharf_intake"))
            ci = i;
        else if (!strcmp(names[i], "_wharf_line"))
            cl = i;
    }
    if (ci < 0) {
        werr_setk(e, WERR_TARGET_DOWN,
                  "%s: table \"%s\" has no _wharf_intake column: its rows cannot be traced",
                  s->path, s->table);
        goto out;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct found_row fr = {.names = names, .values = values, .n = (size_t)nc};
        for (int i = 0; i < nc; i++)
            values[i] = (const char *)sqlite3_column_text(q, i);
        fr.intake = values[ci];
        fr.line = cl >= 0 ? values[cl] : NULL;
        if (fn(ctx, &fr, e) < 0)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        sq_fail(e, s, rc, "table \"%s\": find rows", s->table);
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(q);
    free(aff);
    free(names);
    free(values);
    free(b.s);
    return r;
}

const struct target_ops target_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .loaded = sq_loaded,
    .begin = sq_begin,
    .insert = sq_insert,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
    .describe = sq_describe,
    .check_schema = sq_check_schema,
    .tally = sq_tally,
    .intakes = sq_intakes,
    .find = sq_find,
};
