/*
 * tabdiff: what an existing table lacks or holds differently from the
 * schema's columns (see tabdiff.h).  Only messages are made here; the
 * backends create and alter.
 */
#include "load/tabdiff.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

/* An identifier wharf writes into SQL: ident_valid() and not one of the
 * names SQLite or wharf reserve for themselves. */
int tabdiff_ident(const char *id, const char *what, struct werr *e)
{
    if (!id || !ident_valid(id)) {
        werr_setk(e, WERR_TARGET_DOWN,
                  "%s \"%s\" is not a valid identifier (letters, digits and _, not starting "
                  "with a digit, at most 63 characters)",
                  what, id ? id : "");
        return -1;
    }
    if (!strncasecmp(id, "_wharf", 6) || !strncasecmp(id, "sqlite_", 7)) {
        werr_setk(e, WERR_TARGET_DOWN,
                  "%s \"%s\" is reserved (names starting with _wharf or sqlite_ are not allowed)",
                  what, id);
        return -1;
    }
    return 0;
}

/* Every identifier checked before the database is touched. */
int tabdiff_names(const char *table, const struct columns *cols, const struct profile *p,
                  struct werr *e)
{
    size_t i, j;
    for (i = 0; i < cols->n; i++) {
        if (tabdiff_ident(cols->v[i].name, "column", e) < 0) {
            werr_prefix(e, "table \"%s\"", table);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (!strcasecmp(cols->v[i].name, cols->v[j].name)) {
                werr_setk(e, WERR_TARGET_DOWN, "table \"%s\": column \"%s\" appears twice", table,
                          cols->v[i].name);
                return -1;
            }
    }
    if (p->target.mode != LOAD_UPSERT)
        return 0;
    if (p->target.key.n == 0) {
        werr_setk(e, WERR_TARGET_DOWN, "table \"%s\": mode upsert needs target.key", table);
        return -1;
    }
    for (i = 0; i < p->target.key.n; i++) {
        const char *k = p->target.key.v[i];
        bool present = false;
        if (tabdiff_ident(k, "upsert key column", e) < 0) {
            werr_prefix(e, "table \"%s\"", table);
            return -1;
        }
        for (j = 0; j < cols->n; j++)
            present = present || !strcasecmp(k, cols->v[j].name);
        if (!present) {
            werr_setk(e, WERR_TARGET_DOWN,
                      "table \"%s\": upsert key column \"%s\" is not a field of the schema", table,
                      k);
            return -1;
        }
    }
    return 0;
}

void tinfo_add(struct tinfo *ti, const char *name, const char *type, bool notnull, bool has_default,
               int pk)
{
    struct tcol *c;
    ti->v = xrealloc(ti->v, (ti->n + 1) * sizeof *ti->v);
    c = &ti->v[ti->n++];
    c->name = xstrdup(name);
    c->type = xstrdup(type);
    c->notnull = notnull;
    c->has_default = has_default;
    c->pk = pk;
}

void tinfo_free(struct tinfo *ti)
{
    for (size_t i = 0; i < ti->n; i++) {
        free(ti->v[i].name);
        free(ti->v[i].type);
    }
    free(ti->v);
    memset(ti, 0, sizeof *ti);
}

const struct tcol *tinfo_find(const struct tinfo *ti, const char *name)
{
    for (size_t i = 0; i < ti->n; i++)
        if (!strcasecmp(ti->v[i].name, name))
            return &ti->v[i];
    return NULL;
}

/* A declaration for a message: SQLite's column without a type is "". */
static const char *decl_words(const char *decl)
{
    return *decl ? decl : "a column without a declared type";
}

int tabdiff(const char *where, const char *qtable, const struct tinfo *ti,
            const struct columns *cols, enum target_evolve evolve, bool strict,
            const struct tabdiff_types *ty, size_t *adds, size_t *nadds, struct werr *e)
{
    size_t i, j;
    *nadds = 0;
    for (i = 0; i < cols->n; i++) {
        const struct column *col = &cols->v[i];
        const struct tcol *c = tinfo_find(ti, col->name);
        if (!c) {
            if (evolve == EVOLVE_ADD_COLUMNS && !col->required) {
                adds[(*nadds)++] = i;
                continue;
            }
            if (evolve == EVOLVE_ADD_COLUMNS)
                werr_setk(e, WERR_SCHEMA,
                          "%s: table %s has no column \"%s\", and the schema makes it "
                          "required: target.evolve adds only optional fields (existing rows "
                          "would have no value); make the field optional, or add the column "
                          "with a default yourself",
                          where, qtable, col->name);
            else
                werr_setk(e, WERR_SCHEMA,
                          "%s: table %s has no column \"%s\" (needed: %s); set "
                          "target.evolve: add_columns to let wharf add it, or add it with "
                          "ALTER TABLE %s ADD COLUMN \"%s\" %s",
                          where, qtable, col->name, decl_words(ty->decl(col)), qtable, col->name,
                          ty->decl(col));
            return -1;
        }
        if (!ty->fits(col, c->type)) {
            werr_setk(e, WERR_SCHEMA,
                      "%s: table %s column \"%s\" is declared %s, the schema needs %s: "
                      "wharf never changes a column's type; migrate the table (or load into a "
                      "new one) and run wharf check again",
                      where, qtable, c->name, *c->type ? c->type : "without a type",
                      decl_words(ty->decl(col)));
            return -1;
        }
    }
    for (j = 0; j < ti->n; j++) {
        const struct tcol *c = &ti->v[j];
        bool ours = !strncasecmp(c->name, "_wharf", 6);
        for (i = 0; !ours && i < cols->n; i++)
            ours = !strcasecmp(c->name, cols->v[i].name);
        if (ours)
            continue;
        if (c->notnull && !c->has_default && !c->pk) {
            werr_setk(e, WERR_SCHEMA,
                      "%s: table %s column \"%s\" is NOT NULL without a default, and the "
                      "schema has no such field",
                      where, qtable, c->name);
            return -1;
        }
        if (strict) {
            werr_setk(e, WERR_SCHEMA,
                      "%s: table %s has a column \"%s\" that the schema no longer has: "
                      "new rows would leave it empty; put the field back in the schema (it "
                      "may be optional), or drop the column from the table",
                      where, qtable, c->name);
            return -1;
        }
    }
    return 0;
}
