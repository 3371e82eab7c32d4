/*
 * postgres target: loads one intake's rows into a PostgreSQL table with
 * COPY .. FROM STDIN in one transaction together with its row in
 * "<schema>".wharf_loads (see target.h: a crash after the commit is found
 * by `loaded`).  The format is binary (load/pgcopy.h) when every column's
 * type is one wharf writes exactly, which includes every table it creates;
 * else text, which the server casts (bench/README.md, B1-pg: binary is
 * parsed faster and costs wharf no printf).
 *
 * Connection: target.dsn_file names a file holding a libpq connection
 * string or URI (it may hold a password: the file is the secret, never the
 * profile); without it libpq's PG* environment and ~/.pgpass apply, and so
 * does sslmode from either.  No message ever carries the connection string:
 * a target is described as postgresql://host:port/db, and the password, when
 * the file has one, is blanked out of every libpq message.  The session runs
 * with TimeZone UTC (a datetime without a zone is UTC) and lock_timeout 10s.
 *
 * begin, in one transaction:
 *   1. the table: created from the schema's types when missing (integer
 *      bigint, number numeric, boolean boolean, date date, datetime
 *      timestamptz, xs:decimal and xs:integer (no 64-bit bound) numeric,
 *      anything else text; "_wharf_intake" text not null,
 *      "_wharf_line" text), else mapped by column name and checked with
 *      tabdiff (target.evolve adds optional columns here);
 *   2. upsert: a UNIQUE index on exactly the key (made for a table we made);
 *      the rows go through a temporary table and INSERT .. ON CONFLICT;
 *   3. replace: DELETE FROM the table (readers keep seeing the old rows
 *      until the commit);
 *   4. the first batch: SAVEPOINT, COPY.
 * Two threads share a load, as in the SQLite target (load/rowq.h): insert
 * runs on the validating thread and only copies the row into the queue;
 * send_row, on the sending thread, encodes it, streams it to the server
 * (which parses while the validator reads) and ends and begins batches.
 * Between begin and the end of the queue only the sending thread touches
 * the connection, the batch and t->reject; rowq_finish (commit) and
 * rowq_free (rollback, close) join it before the caller's thread uses them
 * again, and its first error comes back from the next insert or from
 * commit, which then rolls the whole load back.  Memory: the queue's four
 * batches of 1024 rows, plus the batch below.
 *
 * Every BATCH_BYTES the COPY ends under its own savepoint; the
 * batch's bytes stay in memory until then, so when the server refuses a
 * batch for the data's sake (SQLSTATE class 22 or 23: a CHECK, FOREIGN KEY,
 * NOT NULL, UNIQUE constraint, a value the column cannot hold) the batch is
 * rolled back to its savepoint and split in halves, each sent under its own
 * savepoint, until the single row is found: t->reject names its line (and
 * the column, when PostgreSQL or the constraint says which).  Memory is
 * bounded by BATCH_BYTES plus one row.
 *
 * Errors carry a kind from the SQLSTATE, never from the text: connection
 * lost, refused, auth failed, read-only, shutting down: target_unavailable;
 * lock timeout, deadlock, serialization: target_locked; disk full: no_space
 * (all transient); missing privileges, a table that does not fit:
 * target_down / schema.
 */
#include "load/target.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "load/pgcopy.h"
#include "load/rowq.h"
#include "load/tabdiff.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define BATCH_BYTES (8u << 20) /* COPY data kept for finding a refused row */
#define SEND_BYTES  (256u << 10)
#define DSN_MAX     8192

struct pg {
    PGconn *c;
    char *where;  /* postgresql://host:port/db: no user, no password */
    char *secret; /* the password from the dsn file, for scrubbing; may be NULL */
    char *table, *schema, *qtable;
    const char *profile;
    bool active;  /* in the load's transaction */
    bool in_copy; /* a COPY is open */
    bool index_at_end;
    bool upsert;
    bool lineage;       /* this load writes _wharf_line */
    bool binary;        /* COPY .. (FORMAT binary): every column has an encoding in enc */
    unsigned char *enc; /* per column, enum enc */
    struct rowq *q;     /* insert hands rows to the thread that sends them */
    char *copy_sql, *merge_sql;
    size_t ncols;
    enum col_kind *kinds;
    char **names; /* the table's own spelling of each column */
    char *intake_txt;
    /* the batch: rows in COPY's text or binary format */
    struct pgcopy_buf b;
    size_t sent;
    size_t *off; /* row i is b.p[off[i] .. off[i+1]) */
    uint64_t *line;
    size_t nrows, rcap;
    uint64_t seq0; /* load-wide index of the batch's first row */
};

/* ---- SQL text (identifiers and fixed words only) ---------------------- */

struct sqlbuf {
    char *s;
    size_t len, cap;
};

static void sb_addn(struct sqlbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_add(struct sqlbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_ident(struct sqlbuf *b, const char *id)
{
    sb_add(b, "\"");
    for (; *id; id++)
        sb_addn(b, *id == '"' ? "\"\"" : id, *id == '"' ? 2 : 1);
    sb_add(b, "\"");
}

/* ---- errors ---------------------------------------------------------- */

/* Blank every occurrence of the password out of a libpq message. */
static void scrub(const struct pg *g, char *msg)
{
    size_t n;
    char *p;
    if (!g->secret || !(n = strlen(g->secret)))
        return;
    while ((p = strstr(msg, g->secret)))
        memset(p, '*', n);
}

static enum werr_kind kind_of_state(const char *st)
{
    if (!st || strlen(st) != 5)
        return WERR_TARGET_UNAVAILABLE; /* no answer: the connection went */
    if (!strncmp(st, "08", 2) || !strncmp(st, "28", 2) || !strcmp(st, "57P01") ||
        !strcmp(st, "57P02") || !strcmp(st, "57P03") || !strcmp(st, "53300") ||
        !strcmp(st, "25006"))
        return WERR_TARGET_UNAVAILABLE;
    if (!strcmp(st, "55P03") || !strcmp(st, "40001") || !strcmp(st, "40P01") ||
        !strcmp(st, "57014"))
        return WERR_TARGET_LOCKED;
    if (!strcmp(st, "53100"))
        return WERR_NOSPACE;
    if (!strcmp(st, "53200"))
        return WERR_BUSY;
    if (!strncmp(st, "22", 2) || !strncmp(st, "23", 2))
        return WERR_SCHEMA;
    return WERR_TARGET_DOWN;
}

/* The data's fault (the row, not the server): class 22 or 23. */
static bool data_state(const char *st)
{
    return st && (!strncmp(st, "22", 2) || !strncmp(st, "23", 2));
}

/* "<where>: <what>: <server's message>", its kind from the SQLSTATE. */
static void pg_fail(struct werr *e, struct pg *g, const PGresult *res, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void pg_fail(struct werr *e, struct pg *g, const PGresult *res, const char *fmt, ...)
{
    char what[512], msg[700];
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!m || !*m)
        m = PQerrorMessage(g->c);
    snprintf(msg, sizeof msg, "%s", m && *m ? m : "no answer from the server");
    msg[strcspn(msg, "\n")] = 0;
    scrub(g, msg);
    enum werr_kind k = kind_of_state(st);
    if (PQstatus(g->c) == CONNECTION_BAD)
        k = WERR_TARGET_UNAVAILABLE;
    werr_setk(e, k, "%s: %s: %s%s%s", g->where, what, msg, st ? " (SQLSTATE " : "", st ? st : "");
    if (st)
        snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), ")");
}

/* Run a statement without parameters; -1 with e filled. */
static int pg_exec(struct pg *g, const char *sql, const char *what, struct werr *e)
{
    PGresult *res = PQexec(g->c, sql);
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_fail(e, g, res, "%s", what);
        r = -1;
    }
    PQclear(res);
    return r;
}

/* A query with text parameters; the result (caller clears), or NULL. */
static PGresult *pg_query(struct pg *g, const char *sql, int n, const char *const *params,
                          const char *what, struct werr *e)
{
    PGresult *res = PQexecParams(g->c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_fail(e, g, res, "%s", what);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* ---- connecting ------------------------------------------------------ */

/* The dsn file's text, trailing white space cut; NULL with e filled.  The
 * text never goes into a message. */
static char *read_dsn(const char *path, struct werr *e)
{
    char *s = NULL;
    ssize_t n;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        werr_sys(e, "dsn_file %s", path);
        werr_setkind(e, errno == ENOENT ? WERR_CONFIG : WERR_TARGET_DOWN);
        return NULL;
    }
    s = xmalloc(DSN_MAX + 1);
    while ((n = read(fd, s + len, DSN_MAX + 1 - len)) > 0)
        len += (size_t)n;
    if (n < 0) {
        werr_sys(e, "dsn_file %s: read", path);
        goto fail;
    }
    if (len > DSN_MAX) {
        werr_setk(e, WERR_CONFIG, "dsn_file %s: longer than %d bytes", path, DSN_MAX);
        goto fail;
    }
    while (len && strchr(" \t\r\n", s[len - 1]))
        len--;
    s[len] = 0;
    if (memchr(s, 0, len) || !len) {
        werr_setk(e, WERR_CONFIG, "dsn_file %s: %s", path,
                  len ? "holds a NUL byte" : "is empty (expected a libpq connection string)");
        goto fail;
    }
    close(fd);
    return s;
fail:
    close(fd);
    explicit_bzero(s, DSN_MAX + 1);
    free(s);
    return NULL;
}

static void no_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/*
 * Connect as the profile says.  The connection string is parsed first (so
 * the password, if any, is known for scrubbing and a broken file is told
 * without echoing it), then libpq connects with fallbacks from the PG*
 * environment.  Sets g->c, g->where, g->secret.
 */
static int pg_connect(struct pg *g, const struct profile *p, struct werr *e)
{
    char *dsn = NULL;
    PQconninfoOption *opts = NULL;
    int r = -1;
    if (p->target.dsn_file) {
        char *perr = NULL;
        if (!(dsn = read_dsn(p->target.dsn_file, e)))
            goto out;
        opts = PQconninfoParse(dsn, &perr);
        if (!opts) {
            /* libpq's words may quote the string (and a password in it) */
            PQfreemem(perr);
            werr_setk(e, WERR_CONFIG,
                      "dsn_file %s is not a libpq connection string or URI "
                      "(key=value ... or postgresql://...)",
                      p->target.dsn_file);
            goto out;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (!strcmp(o->keyword, "password") && o->val && *o->val)
                g->secret = xstrdup(o->val);
        PQconninfoFree(opts);
    }
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"10", "wharf", dsn, NULL};
    g->c = PQconnectdbParams(keys, vals, 1);
    if (!g->c) {
        werr_setk(e, WERR_BUSY, "postgresql: out of memory");
        goto out;
    }
    free(g->where);
    g->where = xasprintf("postgresql://%s:%s/%s", PQhost(g->c) ? PQhost(g->c) : "?",
                         PQport(g->c) ? PQport(g->c) : "?", PQdb(g->c) ? PQdb(g->c) : "?");
    if (PQstatus(g->c) != CONNECTION_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(g->c));
        for (char *q = msg; *q; q++)
            if (*q == '\n' || *q == '\t')
                *q = ' ';
        size_t n = strlen(msg);
        while (n && msg[n - 1] == ' ')
            msg[--n] = 0;
        scrub(g, msg);
        werr_setk(e, WERR_TARGET_UNAVAILABLE, "%s: cannot connect%s: %s", g->where,
                  PQconnectionNeedsPassword(g->c) ? " (the server wants a password and none "
                                                    "was found: dsn_file, PGPASSWORD or ~/.pgpass)"
                                                  : "",
                  msg);
        goto out;
    }
    /* notices (e.g. "relation already exists, skipping") go nowhere */
    PQsetNoticeProcessor(g->c, no_notices, NULL);
    r = 0;
out:
    if (dsn) {
        explicit_bzero(dsn, strlen(dsn));
        free(dsn);
    }
    return r;
}

/* ---- types ----------------------------------------------------------- */

static const char *pg_decl(const struct column *c)
{
    switch (c->type) {
    case COL_INTEGER: /* an integer that may exceed 64 bits: numeric, exact */
        return c->kind == COLK_BOOLEAN ? "boolean" : c->kind == COLK_WIDEINT ? "numeric" : "bigint";
    case COL_REAL:
        return "numeric";
    case COL_TEXT:
        break;
    }
    return c->kind == COLK_DATE       ? "date"
           : c->kind == COLK_DATETIME ? "timestamp with time zone"
           : c->kind == COLK_DECIMAL  ? "numeric"
                                      : "text";
}

static bool decl_is(const char *decl, const char *type)
{
    size_t n = strlen(type);
    return !strncmp(decl, type, n) && (decl[n] == 0 || decl[n] == '(');
}

static bool textish(const char *decl)
{
    return decl_is(decl, "text") || decl_is(decl, "character varying") ||
           decl_is(decl, "character");
}

/* Would the column's values land unchanged?  An integer into integer or
 * smallint may not fit: that row is refused by the server, with its line. */
static bool pg_fits(const struct column *c, const char *decl)
{
    switch (c->type) {
    case COL_INTEGER:
        if (c->kind == COLK_BOOLEAN)
            return decl_is(decl, "boolean");
        return decl_is(decl, "bigint") || decl_is(decl, "integer") || decl_is(decl, "smallint") ||
               decl_is(decl, "numeric");
    case COL_REAL:
        return decl_is(decl, "numeric") || decl_is(decl, "double precision");
    case COL_TEXT:
        break;
    }
    if (c->kind == COLK_DATE)
        return decl_is(decl, "date") || textish(decl);
    if (c->kind == COLK_DATETIME)
        return decl_is(decl, "timestamp with time zone") || textish(decl);
    if (c->kind == COLK_DECIMAL)
        return decl_is(decl, "numeric") || textish(decl);
    return textish(decl);
}

static const struct tabdiff_types pg_types = {pg_fits, pg_decl};

/* ---- the catalog ------------------------------------------------------ */

static int table_info(struct pg *g, struct tinfo *ti, struct werr *e)
{
    const char *params[] = {g->qtable};
    PGresult *res = pg_query(g,
                             "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
                             " a.attnotnull, a.atthasdef OR a.attidentity <> ''"
                             " OR a.attgenerated <> ''"
                             " FROM pg_attribute a WHERE a.attrelid = to_regclass($1)"
                             " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                             1, params, "read the table's columns", e);
    memset(ti, 0, sizeof *ti);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        tinfo_add(ti, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                  !strcmp(PQgetvalue(res, i, 2), "t"), !strcmp(PQgetvalue(res, i, 3), "t"), 0);
    PQclear(res);
    return 0;
}

/* 1 when a row of this one-value query comes back "t" */
static int ask_bool(struct pg *g, const char *sql, int n, const char *const *params,
                    const char *what, struct werr *e)
{
    PGresult *res = pg_query(g, sql, n, params, what, e);
    int r;
    if (!res)
        return -1;
    r = PQntuples(res) > 0 && !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    return r;
}

static int index_exists(struct pg *g, const char *name, struct werr *e)
{
    const char *params[] = {g->schema, name};
    return ask_bool(g,
                    "SELECT true FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = $1 AND c.relname = $2",
                    2, params, "read indexes", e);
}

/* A UNIQUE index, not partial, on exactly the key columns (any order):
 * what ON CONFLICT (key) needs. */
static int key_index_exists(struct pg *g, const struct strlist *key, struct werr *e)
{
    struct sqlbuf arr = {0};
    char n[24];
    sb_add(&arr, "{");
    for (size_t i = 0; i < key->n; i++) {
        sb_add(&arr, i ? "," : "");
        sb_add(&arr, key->v[i]); /* identifiers: letters, digits, _ */
    }
    sb_add(&arr, "}");
    snprintf(n, sizeof n, "%zu", key->n);
    const char *params[] = {g->qtable, arr.s, n};
    int r = ask_bool(g,
                     "SELECT true FROM pg_index i WHERE i.indrelid = to_regclass($1)"
                     " AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"
                     " AND i.indnkeyatts = $3::int AND (SELECT array_agg(lower(a.attname::text)"
                     " ORDER BY 1) FROM pg_attribute a WHERE a.attrelid = i.indrelid"
                     " AND a.attnum = ANY(i.indkey::int2[])) ="
                     " (SELECT array_agg(lower(k) ORDER BY 1) FROM unnest($2::text[]) k)",
                     3, params, "read unique indexes", e);
    free(arr.s);
    return r;
}

/* ---- open / loaded ---------------------------------------------------- */

static void pg_free(struct pg *g)
{
    if (!g)
        return;
    rowq_free(g->q); /* its thread is done with the connection */
    if (g->c)
        PQfinish(g->c);
    free(g->where);
    if (g->secret) {
        explicit_bzero(g->secret, strlen(g->secret));
        free(g->secret);
    }
    free(g->table);
    free(g->schema);
    free(g->qtable);
    free(g->copy_sql);
    free(g->merge_sql);
    free(g->kinds);
    free(g->enc);
    if (g->names)
        for (size_t i = 0; i < g->ncols; i++)
            free(g->names[i]);
    free(g->names);
    free(g->intake_txt);
    free(g->b.p);
    free(g->off);
    free(g->line);
    free(g);
}

static struct pg *pg_new(const struct profile *p)
{
    struct pg *g = xcalloc(1, sizeof *g);
    struct sqlbuf q = {0};
    g->table = xstrdup(p->target.table);
    g->schema = xstrdup(p->target.schema ? p->target.schema : "public");
    g->profile = p->name ? p->name : "";
    g->where = xstrdup("postgresql");
    sb_ident(&q, g->schema);
    sb_add(&q, ".");
    sb_ident(&q, g->table);
    g->qtable = q.s;
    return g;
}

/* Connect and set the session up: UTF-8, UTC, a bounded wait for locks. */
static int pg_session(struct pg *g, const struct profile *p, struct werr *e)
{
    if (pg_connect(g, p, e) < 0)
        return -1;
    if (PQsetClientEncoding(g->c, "UTF8") != 0) {
        pg_fail(e, g, NULL, "set client_encoding UTF8");
        return -1;
    }
    return pg_exec(g, "SET TimeZone = 'UTC'; SET lock_timeout = '10s'", "set up the session", e);
}

static int pg_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                   struct werr *e)
{
    struct pg *g;
    struct sqlbuf q = {0};
    (void)cfg;
    if (!p->target.table || !ident_valid(p->target.table)) {
        werr_setk(e, WERR_CONFIG, "profile %s: postgresql target: no valid table",
                  p->name ? p->name : "?");
        return -1;
    }
    g = pg_new(p);
    if (pg_session(g, p, e) < 0)
        goto fail;
    sb_ident(&q, g->schema);
    sb_add(&q, ".\"wharf_loads\"");
    const char *params[] = {q.s};
    int exists =
        ask_bool(g, "SELECT to_regclass($1) IS NOT NULL", 1, params, "look for wharf_loads", e);
    if (exists < 0)
        goto fail;
    if (!exists && !t->readonly) {
        struct sqlbuf c = {0};
        sb_add(&c, "CREATE TABLE IF NOT EXISTS ");
        sb_add(&c, q.s);
        sb_add(&c, " (intake text PRIMARY KEY, profile text NOT NULL, tbl text NOT NULL,"
                   " rows bigint NOT NULL, sha256 text, time_ms bigint NOT NULL)");
        int r = pg_exec(g, c.s, "create wharf_loads", e);
        free(c.s);
        if (r < 0)
            goto fail;
    }
    free(q.s);
    t->impl = g;
    return 0;
fail:
    free(q.s);
    pg_free(g);
    return -1;
}

static int pg_loaded(struct target *t, const char *intake, uint64_t *rows, struct werr *e)
{
    struct pg *g = t->impl;
    struct sqlbuf q = {0};
    int r = -1;
    sb_add(&q, "SELECT rows FROM ");
    sb_ident(&q, g->schema);
    sb_add(&q, ".\"wharf_loads\" WHERE intake = $1");
    const char *params[] = {intake};
    PGresult *res = pg_query(g, q.s, 1, params, "read wharf_loads", e);
    free(q.s);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        r = 0;
    else {
        if (rows)
            *rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        r = 1;
    }
    PQclear(res);
    return r;
}

/* ---- the COPY stream ------------------------------------------------- */

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static void buf_text(struct pg *g, const char *s, size_t n)
{
    pgcopy_reserve(&g->b, 2 * n);
    char *o = g->b.p + g->b.len;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        switch (ch) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        default:
            *o++ = ch;
        }
    }
    g->b.len = (size_t)(o - g->b.p);
}

static int send_pending(struct pg *g, struct werr *e)
{
    if (g->b.len > g->sent) {
        if (PQputCopyData(g->c, g->b.p + g->sent, (int)(g->b.len - g->sent)) != 1) {
            pg_fail(e, g, NULL, "COPY: send rows");
            return -1;
        }
        g->sent = g->b.len;
    }
    return 0;
}

/* End the open COPY; the first error result (caller clears) in *err, or
 * NULL when the server took every row.  -1 when the connection failed. */
static int copy_end(struct pg *g, PGresult **err, struct werr *e)
{
    PGresult *res;
    *err = NULL;
    g->in_copy = false;
    if (g->binary && PQputCopyData(g->c, pgcopy_trailer, sizeof pgcopy_trailer) != 1) {
        pg_fail(e, g, NULL, "COPY: end");
        return -1;
    }
    if (PQputCopyEnd(g->c, NULL) != 1) {
        pg_fail(e, g, NULL, "COPY: end");
        return -1;
    }
    while ((res = PQgetResult(g->c))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !*err)
            *err = res;
        else
            PQclear(res);
    }
    if (*err && PQstatus(g->c) == CONNECTION_BAD) {
        pg_fail(e, g, *err, "COPY");
        PQclear(*err);
        *err = NULL;
        return -1;
    }
    return 0;
}

static int copy_start(struct pg *g, struct werr *e)
{
    PGresult *res = PQexec(g->c, g->copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pg_fail(e, g, res, "start COPY into %s", g->qtable);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    g->in_copy = true;
    if (g->binary && PQputCopyData(g->c, pgcopy_header, PGCOPY_HEADER_LEN) != 1) {
        pg_fail(e, g, NULL, "COPY: send the header");
        return -1;
    }
    return 0;
}

/* Upsert: the staged rows into the table, then the stage emptied.  A data
 * error comes back in *err (caller clears), like copy_end. */
static int merge(struct pg *g, PGresult **err, struct werr *e)
{
    PGresult *res = PQexec(g->c, g->merge_sql);
    *err = NULL;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (data_state(st) || (st && !strncmp(st, "21", 2))) {
            *err = res;
            return 0;
        }
        pg_fail(e, g, res, "upsert into %s", g->qtable);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return pg_exec(g, "TRUNCATE pg_temp._wharf_stage", "empty the upsert stage", e);
}

static bool refused_by_data(const PGresult *err)
{
    const char *st = err ? PQresultErrorField(err, PG_DIAG_SQLSTATE) : NULL;
    return data_state(st) || (st && !strncmp(st, "21", 2));
}

/* Rows [a, b) of the batch as one COPY (and merge) under a savepoint:
 * 0 taken, 1 refused for the data (*err, caller clears; rolled back to
 * the savepoint), -1 failed otherwise. */
static int apply(struct pg *g, size_t a, size_t b, PGresult **err, struct werr *e)
{
    size_t end = b < g->nrows ? g->off[b] : g->b.len;
    *err = NULL;
    if (pg_exec(g, "SAVEPOINT wharf_find", "savepoint", e) < 0 || copy_start(g, e) < 0)
        return -1;
    if (PQputCopyData(g->c, g->b.p + g->off[a], (int)(end - g->off[a])) != 1) {
        pg_fail(e, g, NULL, "COPY: send rows");
        return -1;
    }
    if (copy_end(g, err, e) < 0)
        return -1;
    if (!*err && g->upsert && merge(g, err, e) < 0)
        return -1;
    if (*err) {
        if (!refused_by_data(*err)) {
            pg_fail(e, g, *err, "COPY into %s", g->qtable);
            PQclear(*err);
            *err = NULL;
            return -1;
        }
        return pg_exec(g, "ROLLBACK TO SAVEPOINT wharf_find", "rollback to savepoint", e) < 0 ? -1
                                                                                              : 1;
    }
    return pg_exec(g, "RELEASE SAVEPOINT wharf_find", "release savepoint", e) < 0 ? -1 : 0;
}

/* The columns a constraint of the table is on ("a, b"), into out. */
static void constraint_columns(struct pg *g, const char *name, char *out, size_t size)
{
    struct werr e;
    const char *params[] = {name, g->qtable};
    PGresult *res = pg_query(g,
                             "SELECT string_agg(a.attname, ', ' ORDER BY a.attnum)"
                             " FROM pg_constraint c JOIN pg_attribute a"
                             " ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
                             " WHERE c.conname = $1 AND c.conrelid = to_regclass($2)",
                             2, params, "read constraint", &e);
    if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

/* Fill t->reject and e from the server's refusal of the row at batch index
 * i (i == nrows: not found, the line is not known). */
static void refuse(struct target *t, size_t i, const PGresult *err, struct werr *e)
{
    struct pg *g = t->impl;
    struct target_reject *r = &t->reject;
    const char *m = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY);
    const char *d = PQresultErrorField(err, PG_DIAG_MESSAGE_DETAIL);
    const char *col = PQresultErrorField(err, PG_DIAG_COLUMN_NAME);
    const char *con = PQresultErrorField(err, PG_DIAG_CONSTRAINT_NAME);
    memset(r, 0, sizeof *r);
    r->set = true;
    if (i < g->nrows) {
        r->seq = g->seq0 + i;
        r->line = g->line[i];
    } else {
        r->seq = g->seq0;
    }
    if (col)
        snprintf(r->column, sizeof r->column, "%s", col);
    else if (con)
        constraint_columns(g, con, r->column, sizeof r->column);
    snprintf(r->message, sizeof r->message, "the target refused the row: %s%s%s",
             m ? m : "(no message)", d ? " — " : "", d ? d : "");
    scrub(g, r->message);
    if (r->line)
        werr_setk(e, WERR_SCHEMA, "%s: table %s: line %llu%s%s%s: %s", g->where, g->qtable,
                  (unsigned long long)r->line, *r->column ? ", column \"" : "", r->column,
                  *r->column ? "\"" : "", r->message);
    else
        werr_setk(e, WERR_SCHEMA, "%s: table %s: %s", g->where, g->qtable, r->message);
}

/* The batch was refused for the data (first): find the row by halves.
 * Rows before lo are in the table (under the batch's savepoint), [lo, hi)
 * holds the refused one. */
static int locate(struct target *t, const PGresult *first, struct werr *e)
{
    struct pg *g = t->impl;
    size_t lo = 0, hi = g->nrows;
    PGresult *err = NULL;
    int rc;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((rc = apply(g, lo, mid, &err, e)) < 0)
            return -1;
        PQclear(err);
        err = NULL;
        if (rc == 0)
            lo = mid;
        else
            hi = mid;
    }
    if (hi > lo && (rc = apply(g, lo, hi, &err, e)) < 0)
        return -1;
    if (err) {
        refuse(t, lo, err, e);
        PQclear(err);
    } else {
        refuse(t, g->nrows, first, e); /* only together with later work, e.g. deferred */
    }
    return -1;
}

static void batch_reset(struct pg *g)
{
    g->seq0 += g->nrows;
    g->b.len = g->sent = 0;
    g->nrows = 0;
}

static int batch_start(struct pg *g, struct werr *e)
{
    if (pg_exec(g, "SAVEPOINT wharf_batch", "savepoint", e) < 0)
        return -1;
    return copy_start(g, e);
}

/* Close the batch's COPY; on a refusal for the data find the row. */
static int batch_end(struct target *t, struct werr *e)
{
    struct pg *g = t->impl;
    PGresult *err = NULL;
    if (!g->in_copy)
        return 0;
    if (send_pending(g, e) < 0 || copy_end(g, &err, e) < 0)
        return -1;
    if (!err && g->upsert && merge(g, &err, e) < 0)
        return -1;
    if (err) {
        int r = -1;
        if (!refused_by_data(err))
            pg_fail(e, g, err, "COPY into %s", g->qtable);
        else if (pg_exec(g, "ROLLBACK TO SAVEPOINT wharf_batch", "rollback to savepoint", e) == 0)
            r = locate(t, err, e);
        PQclear(err);
        return r;
    }
    if (pg_exec(g, "RELEASE SAVEPOINT wharf_batch", "release savepoint", e) < 0)
        return -1;
    batch_reset(g);
    return 0;
}

/* ---- begin / insert / commit ----------------------------------------- */

static int send_row(void *ctx, const struct row *row, bool early, struct werr *e);

/* A column's binary encoding (pgcopy.h), from wharf's type and the
 * table's declared type. */
enum enc { ENC_NONE, ENC_INT8, ENC_BOOL, ENC_FLOAT8, ENC_NUMERIC, ENC_DATE, ENC_TSTZ, ENC_TEXT };

static enum enc enc_for(const struct column *c, const char *decl)
{
    if (decl_is(decl, "text") || decl_is(decl, "character varying"))
        return c->type == COL_TEXT ? ENC_TEXT : ENC_NONE;
    switch (c->type) {
    case COL_INTEGER:
        if (c->kind == COLK_BOOLEAN)
            return decl_is(decl, "boolean") ? ENC_BOOL : ENC_NONE;
        if (decl_is(decl, "numeric"))
            return ENC_NUMERIC;
        return c->kind == COLK_PLAIN && decl_is(decl, "bigint") ? ENC_INT8 : ENC_NONE;
    case COL_REAL:
        return decl_is(decl, "numeric")            ? ENC_NUMERIC
               : decl_is(decl, "double precision") ? ENC_FLOAT8
                                                   : ENC_NONE;
    case COL_TEXT:
        break;
    }
    if (c->kind == COLK_DATE && decl_is(decl, "date"))
        return ENC_DATE;
    if (c->kind == COLK_DATETIME && !strcmp(decl, "timestamp with time zone"))
        return ENC_TSTZ;
    if (c->kind == COLK_DECIMAL && decl_is(decl, "numeric"))
        return ENC_NUMERIC;
    return ENC_NONE;
}

/*
 * COPY BINARY when every column has an encoding: the table's own types
 * (ti; NULL for a table this load made, whose types are pg_decl's) are
 * ones wharf writes exactly (bigint, numeric, boolean, date, timestamptz,
 * double precision, text, varchar), and _wharf_intake / _wharf_line are
 * text.  Any other type (integer, smallint, char(n), json, ...) and the
 * load goes as text, which the server casts.  WHARF_PG_COPY=text forces
 * text (tests and bench/ compare the two).
 */
static void choose_format(struct pg *g, const struct columns *cols, const struct tinfo *ti)
{
    const char *force = getenv("WHARF_PG_COPY");
    free(g->enc);
    g->enc = xcalloc(cols->n + 1, 1);
    g->binary = !(force && !strcmp(force, "text"));
    for (size_t i = 0; i < cols->n && g->binary; i++) {
        const struct tcol *c = ti ? tinfo_find(ti, cols->v[i].name) : NULL;
        g->enc[i] = (unsigned char)enc_for(&cols->v[i], c ? c->type : pg_decl(&cols->v[i]));
        g->binary = g->enc[i] != ENC_NONE;
    }
    for (size_t k = 0; ti && k < 2 && g->binary; k++) {
        const struct tcol *c = tinfo_find(ti, k ? "_wharf_line" : "_wharf_intake");
        if (c && (k == 0 || g->lineage))
            g->binary = decl_is(c->type, "text") || decl_is(c->type, "character varying");
    }
}

static void pg_rollback(struct target *t)
{
    struct pg *g = t->impl;
    if (!g)
        return;
    rowq_free(g->q); /* the sending thread stops: the connection is ours */
    g->q = NULL;
    if (g->in_copy && PQstatus(g->c) == CONNECTION_OK) {
        PGresult *res;
        PQputCopyEnd(g->c, "rolled back by wharf");
        while ((res = PQgetResult(g->c)))
            PQclear(res);
    }
    g->in_copy = false;
    if (g->active && PQstatus(g->c) == CONNECTION_OK)
        PQclear(PQexec(g->c, "ROLLBACK"));
    g->active = false;
    g->index_at_end = false;
    g->b.len = g->sent = g->nrows = 0;
    g->seq0 = 0;
}

static int create_table(struct pg *g, const struct columns *cols, bool lineage, struct werr *e)
{
    struct sqlbuf b = {0};
    int r;
    sb_add(&b, "CREATE TABLE ");
    sb_add(&b, g->qtable);
    sb_add(&b, " (");
    for (size_t i = 0; i < cols->n; i++) {
        sb_ident(&b, cols->v[i].name);
        sb_add(&b, " ");
        sb_add(&b, pg_decl(&cols->v[i]));
        sb_add(&b, ", ");
    }
    sb_add(&b, lineage ? "\"_wharf_intake\" text NOT NULL, \"_wharf_line\" text)"
                       : "\"_wharf_intake\" text NOT NULL)");
    r = pg_exec(g, b.s, "create table", e);
    free(b.s);
    return r;
}

static int alter_add(struct pg *g, const char *name, const char *decl, const char *what,
                     struct werr *e)
{
    struct sqlbuf b = {0};
    int r;
    sb_add(&b, "ALTER TABLE ");
    sb_add(&b, g->qtable);
    sb_add(&b, " ADD COLUMN ");
    sb_ident(&b, name);
    sb_add(&b, " ");
    sb_add(&b, decl);
    r = pg_exec(g, b.s, what, e);
    free(b.s);
    return r;
}

/* "<table>__wharf_intake" and "<table>__wharf_key", as the SQLite target
 * names them; PostgreSQL index names live in the schema. */
static int create_index(struct pg *g, const char *suffix, bool unique, const struct strlist *key,
                        bool if_missing, struct werr *e)
{
    struct sqlbuf b = {0}, name = {0};
    int r = 0;
    sb_add(&name, g->table);
    sb_add(&name, suffix);
    if (if_missing && (r = index_exists(g, name.s, e)) != 0)
        goto out; /* there (1), or the catalog failed (-1) */
    sb_add(&b, unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
    sb_ident(&b, name.s);
    sb_add(&b, " ON ");
    sb_add(&b, g->qtable);
    sb_add(&b, " (");
    if (!key)
        sb_add(&b, "\"_wharf_intake\"");
    for (size_t i = 0; key && i < key->n; i++) {
        sb_add(&b, i ? ", " : "");
        sb_ident(&b, key->v[i]);
    }
    sb_add(&b, ")");
    r = pg_exec(g, b.s, unique ? "create unique index on the upsert key" : "create intake index",
                e);
out:
    free(b.s);
    free(name.s);
    return r < 0 ? -1 : 0;
}

static bool is_key(const struct strlist *key, const char *name)
{
    for (size_t i = 0; i < key->n; i++)
        if (!strcasecmp(key->v[i], name))
            return true;
    return false;
}

/* COPY "s"."t" ("a", .., "_wharf_intake", "_wharf_line") FROM STDIN, into
 * the stage for upsert, and the INSERT .. ON CONFLICT that moves it. */
static void build_sql(struct pg *g, const struct strlist *key)
{
    struct sqlbuf cl = {0}, b = {0};
    for (size_t i = 0; i < g->ncols; i++) {
        sb_ident(&cl, g->names[i]);
        sb_add(&cl, ", ");
    }
    sb_add(&cl, g->lineage ? "\"_wharf_intake\", \"_wharf_line\"" : "\"_wharf_intake\"");
    sb_add(&b, "COPY ");
    sb_add(&b, g->upsert ? "pg_temp.\"_wharf_stage\"" : g->qtable);
    sb_add(&b, " (");
    sb_add(&b, cl.s);
    sb_add(&b, g->binary ? ") FROM STDIN (FORMAT binary)" : ") FROM STDIN");
    free(g->copy_sql);
    g->copy_sql = b.s;
    free(g->merge_sql);
    g->merge_sql = NULL;
    if (g->upsert) {
        struct sqlbuf m = {0};
        sb_add(&m, "INSERT INTO ");
        sb_add(&m, g->qtable);
        sb_add(&m, " (");
        sb_add(&m, cl.s);
        sb_add(&m, ") SELECT ");
        sb_add(&m, cl.s);
        sb_add(&m, " FROM pg_temp.\"_wharf_stage\" ON CONFLICT (");
        for (size_t i = 0; i < key->n; i++) {
            sb_add(&m, i ? ", " : "");
            sb_ident(&m, key->v[i]);
        }
        sb_add(&m, ") DO UPDATE SET ");
        for (size_t i = 0; i < g->ncols; i++) {
            if (is_key(key, g->names[i]))
                continue;
            sb_ident(&m, g->names[i]);
            sb_add(&m, " = EXCLUDED.");
            sb_ident(&m, g->names[i]);
            sb_add(&m, ", ");
        }
        sb_add(&m, g->lineage ? "\"_wharf_intake\" = EXCLUDED.\"_wharf_intake\","
                                " \"_wharf_line\" = EXCLUDED.\"_wharf_line\""
                              : "\"_wharf_intake\" = EXCLUDED.\"_wharf_intake\"");
        g->merge_sql = m.s;
    }
    free(cl.s);
}

static int pg_begin(struct target *t, const char *intake, const struct columns *cols,
                    struct werr *e)
{
    struct pg *g = t->impl;
    const struct profile *p = t->profile;
    struct tinfo ti = {0};
    bool created = false;
    int r = -1;
    memset(&t->reject, 0, sizeof t->reject);
    if (g->active) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: begin: a load is already in progress", g->where);
        return -1;
    }
    if (tabdiff_names(g->table, cols, p, e) < 0)
        return -1;
    if (pg_exec(g, "BEGIN", "begin", e) < 0)
        return -1;
    g->active = true;
    g->seq0 = 0;
    g->b.len = g->sent = g->nrows = 0;
    if (cols->n == 0) { /* nothing to load: the table is left alone, only wharf_loads */
        r = 0;
        goto out;
    }
    if (table_info(g, &ti, e) < 0)
        goto fail;
    g->lineage = false;
    if (ti.n == 0) {
        if (create_table(g, cols, p->target.lineage, e) < 0)
            goto fail;
        created = true;
        g->lineage = p->target.lineage;
    } else {
        /* an existing table gets lineage only when it has the column */
        g->lineage = p->target.lineage && tinfo_find(&ti, "_wharf_line");
        size_t *adds = xcalloc(cols->n + 1, sizeof *adds), nadds;
        int dr = tabdiff(g->where, g->qtable, &ti, cols, p->target.evolve, false, &pg_types, adds,
                         &nadds, e);
        for (size_t i = 0; dr == 0 && i < nadds; i++) {
            const struct column *c = &cols->v[adds[i]];
            dr = alter_add(g, c->name, pg_decl(c), "evolve: add column", e);
            if (dr == 0)
                tinfo_add(&ti, c->name, pg_decl(c), false, false, 0);
        }
        if (dr == 0 && nadds)
            wlog(LOG_INFO, g->profile, intake, "evolve",
                 json_pack("{s:s,s:I}", "table", g->table, "added", (json_int_t)nadds),
                 "table %s: %zu new column%s added (target.evolve: add_columns)", g->qtable, nadds,
                 nadds == 1 ? "" : "s");
        free(adds);
        if (dr < 0)
            goto fail;
        if (!tinfo_find(&ti, "_wharf_intake") &&
            alter_add(g, "_wharf_intake", "text", "add column _wharf_intake", e) < 0)
            goto fail;
    }
    /* A table this transaction made is seen by no one else until the
     * commit: its intake index is built then, in one pass. */
    if (created)
        g->index_at_end = true;
    else if (create_index(g, "__wharf_intake", false, NULL, true, e) < 0)
        goto fail;
    g->upsert = p->target.mode == LOAD_UPSERT;
    if (g->upsert) {
        if (created) {
            if (create_index(g, "__wharf_key", true, &p->target.key, false, e) < 0)
                goto fail;
        } else {
            int k = key_index_exists(g, &p->target.key, e);
            if (k < 0)
                goto fail;
            if (k == 0) {
                werr_setk(e, WERR_SCHEMA,
                          "%s: table %s has no UNIQUE index on exactly the upsert key; "
                          "create one (CREATE UNIQUE INDEX ON %s (key columns))",
                          g->where, g->qtable, g->qtable);
                goto fail;
            }
        }
    }
    if (p->target.mode == LOAD_REPLACE) {
        struct sqlbuf b = {0};
        sb_add(&b, "DELETE FROM ");
        sb_add(&b, g->qtable);
        int dr = pg_exec(g, b.s, "replace: delete old rows", e);
        free(b.s);
        if (dr < 0)
            goto fail;
    }
    /* the columns as the table spells them */
    if (g->names)
        for (size_t i = 0; i < g->ncols; i++)
            free(g->names[i]);
    free(g->names);
    free(g->kinds);
    g->ncols = cols->n;
    g->names = xcalloc(cols->n, sizeof *g->names);
    g->kinds = xcalloc(cols->n, sizeof *g->kinds);
    for (size_t i = 0; i < cols->n; i++) {
        const struct tcol *c = created ? NULL : tinfo_find(&ti, cols->v[i].name);
        g->names[i] = xstrdup(c ? c->name : cols->v[i].name);
        g->kinds[i] = cols->v[i].kind;
    }
    choose_format(g, cols, created ? NULL : &ti);
    if (g->upsert) {
        struct sqlbuf b = {0};
        sb_add(&b, "CREATE TEMP TABLE IF NOT EXISTS \"_wharf_stage\" ON COMMIT DROP AS SELECT ");
        for (size_t i = 0; i < g->ncols; i++) {
            sb_ident(&b, g->names[i]);
            sb_add(&b, ", ");
        }
        sb_add(&b,
               g->lineage ? "\"_wharf_intake\", \"_wharf_line\" FROM " : "\"_wharf_intake\" FROM ");
        sb_add(&b, g->qtable);
        sb_add(&b, " WITH NO DATA");
        int dr = pg_exec(g, b.s, "create the upsert stage", e);
        free(b.s);
        if (dr < 0)
            goto fail;
    }
    build_sql(g, &p->target.key);
    free(g->intake_txt);
    g->intake_txt = xstrdup(intake);
    if (batch_start(g, e) < 0)
        goto fail;
    g->q = rowq_new(g->ncols, send_row, NULL, t);
    r = 0;
    goto out;
fail:
    pg_rollback(t);
out:
    tinfo_free(&ti);
    return r;
}

/* The row at batch index nrows refused before the server saw it: column
 * i cannot hold its value (why).  Fills t->reject and e; -1. */
static int refuse_value(struct target *t, const struct row *row, size_t i, const char *why,
                        struct werr *e)
{
    struct pg *g = t->impl;
    g->b.len = g->off[g->nrows];
    memset(&t->reject, 0, sizeof t->reject);
    t->reject.set = true;
    t->reject.seq = g->seq0 + g->nrows;
    t->reject.line = row->line;
    snprintf(t->reject.column, sizeof t->reject.column, "%s", g->names[i]);
    snprintf(t->reject.message, sizeof t->reject.message, "%s", why);
    werr_setk(e, WERR_SCHEMA, "%s: table %s: line %llu, column \"%s\": %s", g->where, g->qtable,
              (unsigned long long)row->line, g->names[i], t->reject.message);
    return -1;
}

/* "[part:]line" at p (as the SQLite target writes it); the length. */
static size_t where_text(char *p, const struct row *row)
{
    size_t n = 0;
    if (row->part) {
        n = format_u64(p, row->part);
        p[n++] = ':';
    }
    return n + format_u64(p + n, row->line);
}

/* The row in COPY's text format. */
static void text_row(struct target *t, const struct row *row)
{
    struct pg *g = t->impl;
    char num[48];
    size_t n;
    for (size_t i = 0; i < row->n; i++) {
        const struct value *v = &row->v[i];
        switch (v->kind) {
        case VAL_NULL:
            pgcopy_add(&g->b, "\\N", 2);
            break;
        case VAL_INT:
            if (g->kinds[i] == COLK_BOOLEAN)
                pgcopy_add(&g->b, v->i ? "t" : "f", 1);
            else if (v->i < 0) {
                num[0] = '-';
                n = format_u64(num + 1, (uint64_t)0 - (uint64_t)v->i) + 1;
                pgcopy_add(&g->b, num, n);
            } else {
                pgcopy_add(&g->b, num, format_u64(num, (uint64_t)v->i));
            }
            break;
        case VAL_REAL:
            pgcopy_add(&g->b, num, (size_t)pgcopy_real_text(v->d, num, sizeof num));
            break;
        case VAL_TEXT:
            buf_text(g, v->s ? v->s : "", v->len);
            break;
        }
        pgcopy_add(&g->b, "\t", 1);
    }
    pgcopy_add(&g->b, g->intake_txt, strlen(g->intake_txt));
    if (g->lineage) {
        num[0] = '\t';
        pgcopy_add(&g->b, num, where_text(num + 1, row) + 1);
        if (row->xpath) {
            pgcopy_add(&g->b, " ", 1);
            buf_text(g, row->xpath, strlen(row->xpath));
        }
    }
    pgcopy_add(&g->b, "\n", 1);
}

/* The row in COPY's binary format, each value in its column's encoding
 * (chosen at begin); -1 with the refusal when the server's input function
 * would have refused the value's text. */
static int binary_row(struct target *t, const struct row *row, struct werr *e)
{
    struct pg *g = t->impl;
    char num[48];
    size_t n;
    int r = 0;
    pgcopy_row(&g->b, (uint16_t)(row->n + 1 + g->lineage));
    for (size_t i = 0; i < row->n && r == 0; i++) {
        const struct value *v = &row->v[i];
        enum enc k = (enum enc)g->enc[i];
        if (v->kind == VAL_NULL) {
            pgcopy_null(&g->b);
            continue;
        }
        switch (k) {
        case ENC_INT8:
            if (v->kind != VAL_INT)
                goto odd;
            pgcopy_int8(&g->b, v->i);
            break;
        case ENC_BOOL:
            if (v->kind != VAL_INT)
                goto odd;
            pgcopy_bool(&g->b, v->i != 0);
            break;
        case ENC_FLOAT8:
            if (v->kind != VAL_REAL && v->kind != VAL_INT)
                goto odd;
            pgcopy_float8(&g->b, v->kind == VAL_REAL ? v->d : (double)v->i);
            break;
        case ENC_NUMERIC:
            if (v->kind == VAL_INT)
                pgcopy_numeric_int(&g->b, v->i);
            else if (v->kind == VAL_REAL)
                pgcopy_numeric_real(&g->b, v->d);
            else if (pgcopy_numeric_text(&g->b, v->s ? v->s : "", v->len) < 0)
                r = refuse_value(t, row, i, "the target refused the row: not a number", e);
            break;
        case ENC_DATE:
            if (v->kind != VAL_TEXT)
                goto odd;
            if (pgcopy_date(&g->b, v->s ? v->s : "", v->len) < 0)
                r = refuse_value(
                    t, row, i, "the target refused the row: date/time field value out of range", e);
            break;
        case ENC_TSTZ:
            if (v->kind != VAL_TEXT)
                goto odd;
            if (pgcopy_timestamptz(&g->b, v->s ? v->s : "", v->len) < 0)
                r = refuse_value(
                    t, row, i, "the target refused the row: date/time field value out of range", e);
            break;
        case ENC_NONE:
            goto odd;
        case ENC_TEXT:
            if (v->kind == VAL_TEXT)
                pgcopy_text(&g->b, v->s ? v->s : "", v->len);
            else if (v->kind == VAL_REAL)
                pgcopy_text(&g->b, num, (size_t)pgcopy_real_text(v->d, num, sizeof num));
            else
                goto odd;
            break;
        }
        continue;
    odd: /* the validators never make such a value for such a column */
        werr_setk(e, WERR_TARGET_DOWN, "%s: table %s: line %llu, column \"%s\": no binary form",
                  g->where, g->qtable, (unsigned long long)row->line, g->names[i]);
        return -1;
    }
    if (r < 0)
        return -1;
    pgcopy_text(&g->b, g->intake_txt, strlen(g->intake_txt));
    if (g->lineage) {
        n = where_text(num, row);
        if (row->xpath) { /* "line xpath" */
            size_t x = strlen(row->xpath);
            char *p = pgcopy_field(&g->b, (uint32_t)(n + 1 + x));
            memcpy(p, num, n);
            p[n] = ' ';
            memcpy(p + n + 1, row->xpath, x);
        } else {
            pgcopy_text(&g->b, num, n);
        }
    }
    return 0;
}

/* rowq's fn, on the sending thread: the row into the batch, the batch to
 * the server as it fills, and every BATCH_BYTES the batch's COPY ended
 * under its savepoint (a refused row found there). */
static int send_row(void *ctx, const struct row *row, bool early, struct werr *e)
{
    struct target *t = ctx;
    struct pg *g = t->impl;
    (void)early;
    if (g->nrows + 1 >= g->rcap) {
        g->rcap = g->rcap ? g->rcap * 2 : 4096;
        g->off = xrealloc(g->off, g->rcap * sizeof *g->off);
        g->line = xrealloc(g->line, g->rcap * sizeof *g->line);
    }
    g->off[g->nrows] = g->b.len;
    g->line[g->nrows] = row->line;
    for (size_t i = 0; i < row->n; i++) /* PostgreSQL text cannot hold NUL */
        if (row->v[i].kind == VAL_TEXT && row->v[i].len && memchr(row->v[i].s, 0, row->v[i].len))
            return refuse_value(t, row, i, "holds a NUL byte, which PostgreSQL text cannot store",
                                e);
    if (!g->binary)
        text_row(t, row);
    else if (binary_row(t, row, e) < 0)
        return -1;
    g->nrows++;
    if (g->b.len - g->sent >= SEND_BYTES && send_pending(g, e) < 0)
        return -1;
    if (g->b.len >= BATCH_BYTES) {
        if (batch_end(t, e) < 0 || batch_start(g, e) < 0)
            return -1;
    }
    return 0;
}

/* On the validating thread: the row to the queue (rowq copies it). */
static int pg_insert(struct target *t, const struct row *row, struct werr *e)
{
    struct pg *g = t->impl;
    if (!g->q) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: insert outside a load", g->where);
        return -1;
    }
    if (row->n != g->ncols) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: line %llu: %zu values for %zu columns", g->where,
                  (unsigned long long)row->line, row->n, g->ncols);
        return -1;
    }
    return rowq_put(g->q, row, e);
}

static int pg_commit(struct target *t, const char *intake, const char *sha256, uint64_t rows,
                     struct werr *e)
{
    struct pg *g = t->impl;
    struct sqlbuf q = {0};
    char nrows[24], now[24];
    PGresult *res = NULL;
    int r = -1;
    if (!g->active) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: commit outside a load", g->where);
        return -1;
    }
    if (g->q) { /* every row sent, the connection ours again */
        int qr = rowq_finish(g->q, e);
        rowq_free(g->q);
        g->q = NULL;
        if (qr < 0)
            goto out;
    }
    if (batch_end(t, e) < 0)
        goto out;
    if (g->index_at_end && create_index(g, "__wharf_intake", false, NULL, false, e) < 0)
        goto out;
    sb_add(&q, "INSERT INTO ");
    sb_ident(&q, g->schema);
    sb_add(&q, ".\"wharf_loads\" (intake, profile, tbl, rows, sha256, time_ms)"
               " VALUES ($1, $2, $3, $4, $5, $6)");
    snprintf(nrows, sizeof nrows, "%llu", (unsigned long long)rows);
    snprintf(now, sizeof now, "%lld", (long long)now_ms());
    const char *params[] = {intake, g->profile, g->table, nrows, sha256, now};
    if (!(res = pg_query(g, q.s, 6, params, "record the load in wharf_loads", e)))
        goto out;
    PQclear(res);
    res = PQexec(g->c, "COMMIT");
    /* COMMIT of a transaction the server has aborted answers ROLLBACK */
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT")) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (data_state(st)) { /* a deferred constraint */
            g->active = false;
            g->nrows = 0;
            refuse(t, 0, res, e);
        } else {
            pg_fail(e, g, res, "commit");
        }
        goto out;
    }
    g->active = false;
    g->index_at_end = false;
    g->seq0 = 0;
    g->b.len = g->sent = g->nrows = 0;
    r = 0;
out:
    PQclear(res);
    free(q.s);
    if (r < 0)
        pg_rollback(t);
    return r;
}

static void pg_close(struct target *t)
{
    struct pg *g = t->impl;
    if (!g)
        return;
    pg_rollback(t);
    pg_free(g);
    t->impl = NULL;
}

static char *pg_describe(struct target *t)
{
    struct pg *g = t->impl;
    const struct profile *p = t->profile;
    if (!g)
        return xasprintf("postgresql#%s.%s", p && p->target.schema ? p->target.schema : "public",
                         p ? p->target.table : "?");
    return xasprintf("%s#%s.%s", g->where, g->schema, g->table);
}

/* wharf check --connect: can this role reach the database, and does the
 * table fit (or may it be created)?  Creates and changes nothing. */
static int pg_check_schema(const struct wharf_config *cfg, const struct profile *p,
                           const struct columns *cols, struct werr *e)
{
    struct pg *g = pg_new(p);
    struct tinfo ti = {0};
    size_t *adds = NULL, nadds;
    int r = -1, k;
    (void)cfg;
    if (pg_session(g, p, e) < 0)
        goto out;
    const char *sp[] = {g->schema};
    k = ask_bool(g, "SELECT has_schema_privilege($1, 'USAGE')", 1, sp, "read privileges", e);
    if (k < 0)
        goto out;
    if (!k) {
        werr_setk(e, WERR_TARGET_DOWN,
                  "%s: schema \"%s\" does not exist or this role may not use it "
                  "(GRANT USAGE ON SCHEMA \"%s\" TO the role)",
                  g->where, g->schema, g->schema);
        goto out;
    }
    if (cols->n == 0) {
        r = 0;
        goto out;
    }
    if (table_info(g, &ti, e) < 0)
        goto out;
    if (ti.n == 0) {
        k = ask_bool(g, "SELECT has_schema_privilege($1, 'CREATE')", 1, sp, "read privileges", e);
        if (k < 0)
            goto out;
        if (!k) {
            werr_setk(e, WERR_TARGET_DOWN,
                      "%s: table %s does not exist and this role may not create it in schema "
                      "\"%s\": create the table, or GRANT CREATE ON SCHEMA \"%s\" TO the role",
                      g->where, g->qtable, g->schema, g->schema);
            goto out;
        }
        r = 0;
        goto out;
    }
    adds = xcalloc(cols->n + 1, sizeof *adds);
    if (tabdiff(g->where, g->qtable, &ti, cols, p->target.evolve, true, &pg_types, adds, &nadds,
                e) < 0)
        goto out;
    const char *priv = p->target.mode == LOAD_REPLACE  ? "INSERT, DELETE"
                       : p->target.mode == LOAD_UPSERT ? "INSERT, UPDATE"
                                                       : "INSERT";
    const char *tp[] = {g->qtable, priv};
    k = ask_bool(g, "SELECT has_table_privilege(to_regclass($1), $2)", 2, tp, "read privileges", e);
    if (k < 0)
        goto out;
    if (!k) {
        werr_setk(e, WERR_TARGET_DOWN, "%s: this role lacks %s on table %s (GRANT %s ON %s TO ..)",
                  g->where, priv, g->qtable, priv, g->qtable);
        goto out;
    }
    if (p->target.mode == LOAD_UPSERT) {
        k = key_index_exists(g, &p->target.key, e);
        if (k < 0)
            goto out;
        if (!k) {
            werr_setk(e, WERR_SCHEMA,
                      "%s: table %s has no UNIQUE index on exactly the upsert key; create one "
                      "(CREATE UNIQUE INDEX ON %s (key columns))",
                      g->where, g->qtable, g->qtable);
            goto out;
        }
    }
    r = 0;
out:
    free(adds);
    tinfo_free(&ti);
    pg_free(g);
    return r;
}

/* 1 when the relation exists, 0 when not, -1 on error */
static int rel_exists(struct pg *g, const char *qname, struct werr *e)
{
    const char *params[] = {qname};
    return ask_bool(g, "SELECT to_regclass($1) IS NOT NULL", 1, params, "read the catalog", e);
}

static char *loads_name(const struct pg *g)
{
    struct sqlbuf q = {0};
    sb_ident(&q, g->schema);
    sb_add(&q, ".\"wharf_loads\"");
    return q.s;
}

/* reconcile: is the intake recorded in wharf_loads, does the table exist.
 * The PostgreSQL target keeps no key digests yet (its loads record none,
 * so reconcile asks for none); asked for one, it says so. */
static int pg_tally(struct target *t, const char *intake, const char *key, uint64_t batch,
                    struct tally *out, struct werr *e)
{
    struct pg *g = t->impl;
    char *loads = loads_name(g);
    int k, r = -1;
    (void)batch;
    memset(out, 0, sizeof *out);
    if (key) {
        werr_setk(e, WERR_CONFIG,
                  "%s: key digests are not kept for a postgresql target yet (table %s)", g->where,
                  g->qtable);
        goto out;
    }
    if ((k = rel_exists(g, loads, e)) < 0)
        goto out;
    if (k) {
        struct sqlbuf q = {0};
        sb_add(&q, "SELECT rows FROM ");
        sb_add(&q, loads);
        sb_add(&q, " WHERE intake = $1");
        const char *params[] = {intake};
        PGresult *res = pg_query(g, q.s, 1, params, "read wharf_loads", e);
        free(q.s);
        if (!res)
            goto out;
        if (PQntuples(res) == 1) {
            out->load_recorded = true;
            out->recorded_rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        }
        PQclear(res);
    }
    if ((k = rel_exists(g, g->qtable, e)) < 0)
        goto out;
    out->table_missing = !k;
    r = 0;
out:
    free(loads);
    return r;
}

/* reconcile: every intake id in the table with its rows, in id order; 1
 * when the table does not exist. */
static int pg_intakes(struct target *t, intake_count_fn fn, void *ctx, struct werr *e)
{
    struct pg *g = t->impl;
    struct sqlbuf q = {0};
    PGresult *res;
    int k, r = -1;
    if ((k = rel_exists(g, g->qtable, e)) <= 0)
        return k < 0 ? -1 : 1;
    sb_add(&q, "SELECT \"_wharf_intake\", count(*) FROM ");
    sb_add(&q, g->qtable);
    sb_add(&q, " GROUP BY 1 ORDER BY \"_wharf_intake\" COLLATE \"C\"");
    res = pg_query(g, q.s, 0, NULL, "count rows per intake", e);
    free(q.s);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        if (fn(ctx, PQgetisnull(res, i, 0) ? "" : PQgetvalue(res, i, 0),
               strtoull(PQgetvalue(res, i, 1), NULL, 10), e) < 0)
            goto out;
    r = 0;
out:
    PQclear(res);
    return r;
}

/* trace: rows where every cols[i] = vals[i] (values bound, compared as the
 * column's type), at most limit. */
static int pg_find(struct target *t, char *const *cols, char *const *vals, size_t n, size_t limit,
                   found_fn fn, void *ctx, struct werr *e)
{
    struct pg *g = t->impl;
    struct sqlbuf q = {0};
    const char **names = NULL, **values = NULL;
    PGresult *res = NULL;
    char num[40];
    int k, r = -1, nc, ci = -1, cl = -1;
    if ((k = rel_exists(g, g->qtable, e)) <= 0) {
        if (k == 0)
            werr_setk(e, WERR_TARGET_DOWN, "%s: table %s does not exist", g->where, g->qtable);
        return -1;
    }
    sb_add(&q, "SELECT * FROM ");
    sb_add(&q, g->qtable);
    for (size_t i = 0; i < n; i++) {
        if (!ident_valid(cols[i])) {
            werr_setk(e, WERR_CONFIG, "\"%s\" is not a column name", cols[i]);
            goto out;
        }
        sb_add(&q, i ? " AND " : " WHERE ");
        sb_ident(&q, cols[i]);
        snprintf(num, sizeof num, " = $%zu", i + 1);
        sb_add(&q, num);
    }
    snprintf(num, sizeof num, " LIMIT %zu", limit ? limit : 100);
    sb_add(&q, num);
    if (!(res = pg_query(g, q.s, (int)n, (const char *const *)vals, "find rows", e)))
        goto out;
    nc = PQnfields(res);
    names = xcalloc((size_t)nc + 1, sizeof *names);
    values = xcalloc((size_t)nc + 1, sizeof *values);
    for (int i = 0; i < nc; i++) {
        names[i] = PQfname(res, i);
        if (!strcmp(names[i], "_wharf_intake"))
            ci = i;
        else if (!strcmp(names[i], "_wharf_line"))
            cl = i;
    }
    if (ci < 0) {
        werr_setk(e, WERR_SCHEMA,
                  "%s: table %s has no _wharf_intake column: its rows cannot be traced", g->where,
                  g->qtable);
        goto out;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        struct found_row fr = {.names = names, .values = values, .n = (size_t)nc};
        for (int i = 0; i < nc; i++)
            values[i] = PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);
        fr.intake = values[ci];
        fr.line = cl >= 0 ? values[cl] : NULL;
        if (fn(ctx, &fr, e) < 0)
            goto out;
    }
    r = 0;
out:
    PQclear(res);
    free(names);
    free(values);
    free(q.s);
    return r;
}

const struct target_ops target_postgres_ops = {
    .name = "postgresql",
    .open = pg_open,
    .loaded = pg_loaded,
    .begin = pg_begin,
    .insert = pg_insert,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .close = pg_close,
    .describe = pg_describe,
    .check_schema = pg_check_schema,
    .tally = pg_tally,
    .intakes = pg_intakes,
    .find = pg_find,
    .remote = true,
};
