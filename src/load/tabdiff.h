/*
 * tabdiff: an existing target table against the schema's columns, shared by
 * every SQL target (sqlite.c, postgres.c).  The backend reads its catalog
 * into a struct tinfo and says, through struct tabdiff_types, which declared
 * types hold a column's values unchanged and how it would declare one; the
 * rules about what `target.evolve` allows live here, once.
 */
#ifndef WHARF_TABDIFF_H
#define WHARF_TABDIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "util/err.h"
#include "validate/validate.h"

struct tcol {
    char *name;
    char *type; /* as the catalog declares it */
    bool notnull, has_default;
    int pk;
};

/* A table's columns; n == 0: the table does not exist. */
struct tinfo {
    struct tcol *v;
    size_t n;
};

void tinfo_add(struct tinfo *ti, const char *name, const char *type, bool notnull, bool has_default,
               int pk);
void tinfo_free(struct tinfo *ti);
/* By name, ignoring case (SQLite's rule; PostgreSQL folds unquoted names). */
const struct tcol *tinfo_find(const struct tinfo *ti, const char *name);

/* An identifier wharf writes into SQL: ident_valid() and not one of the
 * names SQLite or wharf reserve (_wharf*, sqlite_*).  0, or -1 with e. */
int tabdiff_ident(const char *id, const char *what, struct werr *e);
/* Every column name and the upsert key checked before a database is
 * touched: valid, not twice, the key among the columns. */
int tabdiff_names(const char *table, const struct columns *cols, const struct profile *p,
                  struct werr *e);

struct tabdiff_types {
    /* Would this column's values be stored unchanged in a column declared decl? */
    bool (*fits)(const struct column *c, const char *decl);
    /* The declaration the backend would give this column ("INTEGER", "bigint"). */
    const char *(*decl)(const struct column *c);
};

/*
 * How an existing table differs from the schema's columns, and what the
 * profile's `target.evolve` allows about it:
 *   - a schema column the table lacks: with add_columns and an optional
 *     field it goes into adds[] (the caller adds it, nullable, in the load's
 *     own transaction); otherwise the table does not fit;
 *   - a column whose declared type does not fit the schema's type: never
 *     changed by wharf (existing rows would be reinterpreted);
 *   - a table column the schema no longer has: a load leaves it NULL unless
 *     it is NOT NULL without a default; `strict` (wharf check) refuses it
 *     outright, so a field dropped from a schema is a decision, not a
 *     surprise.
 * where: the database, for messages ("var/warehouse.db");
 * qtable: the table as SQL names it, quoted ("\"orders\"").
 * adds has room for cols->n entries.  0, or -1 with WERR_SCHEMA and the fix
 * in e.
 */
int tabdiff(const char *where, const char *qtable, const struct tinfo *ti,
            const struct columns *cols, enum target_evolve evolve, bool strict,
            const struct tabdiff_types *ty, size_t *adds, size_t *nadds, struct werr *e);

#endif
