/*
 * tableschema: Frictionless Table Schema compiled from a JSON/YAML file (or
 * a profile's inline `fields:`), and csvv_run, the CSV validation driver:
 * tokenizer (csv.c) -> header check -> per-cell cast and constraints
 * (tsfield.c) -> unique / primary key sets -> typed rows to the caller and
 * invalid records to the split file.
 *
 * Owns: the compiled schema (tschema_free).  csvv_run owns, for one run,
 * the reader, one value array, the unique / primary-key sets and the split
 * file; all freed before it returns.
 *
 * Memory: everything is bounded by the profile's limits, and the sets
 * behind `unique` and `primaryKey` (keyset.c) share KEYSET_BUDGET (16 MB):
 * fixed-size entries in memory, sorted runs in temporary files next to the
 * part beyond that, so a file of any size validates in the same memory.
 * A primary key that is one unique field uses that field's set.  Repeats
 * whose first occurrence was spilled are found at the end of the run (see
 * "Late duplicates" in validate.h).
 *
 * Can fail: schema problems go to the diags at file:line:col; csvv_run
 * returns -1 on I/O errors (e filled) or when the row callback says so.
 */
#include "validate/tableschema.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "util/durable.h"
#include "util/parse.h"
#include "util/xmalloc.h"
#include "validate/csv.h"
#include "validate/control.h"
#include "validate/keyset.h"
#include "validate/tsfield.h"

#define NAME_MAX_LEN 63
#define PATTERN_MAX  1024
#define ENUM_TEXT    240
#define RECERR_MAX   2048 /* _wharf_errors text per invalid record */

struct tschema {
    struct ts_field *f;
    size_t n;
    struct columns cols;
    char **missing;
    size_t *missing_len;
    size_t n_missing;
    size_t *pk;
    size_t n_pk;
};

/* ---- compiling ---------------------------------------------------------- */

struct comp {
    struct diags *d;
    const char *file;   /* for diags when a node has none */
    const char *prefix; /* "fields" or "csv.fields" */
    bool bad;
};

static void cdiag(struct comp *c, const struct node *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cdiag(struct comp *c, const struct node *at, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_add(c->d, at && at->file ? at->file : c->file, at ? at->line : 0, at ? at->col : 0, path,
             "%s", msg);
    c->bad = true;
}

static const struct node *keynode(const struct node *map, size_t i)
{
    return map->keynodes && map->keynodes[i] ? map->keynodes[i] : map;
}

static const char *scalar_of(struct comp *c, const struct node *n, const char *path)
{
    if (n->kind != NODE_SCALAR) {
        cdiag(c, n, path, "must be a single value, not a %s", node_kind_name(n->kind));
        return NULL;
    }
    return n->value;
}

/*
 * Table Schema properties wharf knows and does not support: each is refused
 * with the reason, never ignored (a schema that says more than wharf checks
 * would let through what its author meant to stop).  docs/table-schema.md
 * has the whole table.
 */
static const struct {
    const char *key, *why;
} unsupported[] = {
    {"foreignKeys", "foreignKeys are not supported: wharf validates one file at a time and "
                    "cannot check references into another table; remove them (check the "
                    "reference in the target instead)"},
    {"uniqueKeys", "uniqueKeys (Table Schema v2) are not supported: use a field's "
                   "constraints.unique, or primaryKey for one combination of fields"},
    {"fieldsMatch", "fieldsMatch (Table Schema v2) is not supported: set csv.header_match in "
                    "the profile instead"},
    {"missingValues@field", "a field's own missingValues (Table Schema v2) is not supported: "
                            "set missingValues for the whole schema"},
    {"categories", "categories (Table Schema v2) are not supported: use constraints.enum"},
    {"categoriesOrdered", "categoriesOrdered (Table Schema v2) is not supported"},
    {"exclusiveMinimum", "exclusiveMinimum (Table Schema v2) is not supported: use minimum"},
    {"exclusiveMaximum", "exclusiveMaximum (Table Schema v2) is not supported: use maximum"},
    {"jsonSchema", "constraints.jsonSchema (Table Schema v2) is not supported"},
    {"itemType", "itemType belongs to the list type (Table Schema v2), which is not supported"},
    {"delimiter", "delimiter belongs to the list type (Table Schema v2), which is not supported"},
    {NULL, NULL},
};

static const char *unsupported_why(const char *key, const char *path)
{
    for (size_t u = 0; unsupported[u].key; u++) {
        const char *k = unsupported[u].key, *at = strchr(k, '@');
        size_t kl = at ? (size_t)(at - k) : strlen(k);
        if (strlen(key) != kl || memcmp(key, k, kl))
            continue;
        /* "missingValues@field": only in a field, not at the root */
        if (at && (!path || !strchr(path, '[') || strstr(path, "constraints")))
            continue;
        return unsupported[u].why;
    }
    return NULL;
}

static bool check_keys(struct comp *c, const struct node *map, const char *path, const char **valid)
{
    bool ok = true;
    for (size_t i = 0; i < map->n; i++) {
        size_t k;
        const char *why;
        for (k = 0; valid[k]; k++)
            if (!strcmp(valid[k], map->keys[i]))
                break;
        if (valid[k])
            continue;
        if ((why = unsupported_why(map->keys[i], path))) {
            cdiag(c, keynode(map, i), path, "%s", why);
            ok = false;
            continue;
        }
        char list[512];
        size_t o = 0;
        for (k = 0; valid[k] && o < sizeof list; k++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", valid[k]);
        cdiag(c, keynode(map, i), path, "unknown property \"%s\" (valid: %s)", map->keys[i], list);
        ok = false;
    }
    return ok;
}

static char one_char(struct comp *c, const struct node *n, const char *path)
{
    const char *v = scalar_of(c, n, path);
    if (!v)
        return 0;
    if (strlen(v) != 1) {
        cdiag(c, n, path, "\"%s\" must be exactly one character", v);
        return 0;
    }
    return v[0];
}

static bool get_bool(struct comp *c, const struct node *n, const char *path, bool *out)
{
    const char *v = scalar_of(c, n, path);
    if (!v)
        return false;
    if (parse_bool(v, out) < 0) {
        cdiag(c, n, path, "\"%s\" is not a boolean (use true or false)", v);
        return false;
    }
    return true;
}

static char **strings_of(struct comp *c, const struct node *n, const char *path, size_t *count)
{
    char **v;
    *count = 0;
    if (n->kind != NODE_SEQ) {
        cdiag(c, n, path, "must be a list of strings");
        return NULL;
    }
    v = xcalloc(n->n + 1, sizeof *v);
    for (size_t i = 0; i < n->n; i++) {
        const char *s = scalar_of(c, n->items[i], path);
        if (s)
            v[(*count)++] = xstrdup(s);
    }
    return v;
}

/* Cast a constraint's value with the field's own type; temporal bounds are
 * also accepted in ISO form whatever the field's format. */
static bool cast_bound(struct comp *c, const struct ts_field *f, const struct node *n,
                       const char *path, struct ts_cast *out)
{
    char why[256];
    const char *v = scalar_of(c, n, path);
    if (!v)
        return false;
    if (tsfield_cast(f, v, strlen(v), out, why, sizeof why) == 0)
        goto ok;
    if (f->fmt != FMT_DEFAULT &&
        (f->type == TS_DATE || f->type == TS_TIME || f->type == TS_DATETIME)) {
        struct ts_field iso = *f;
        iso.fmt = FMT_DEFAULT;
        if (tsfield_cast(&iso, v, strlen(v), out, why, sizeof why) == 0)
            goto ok;
    }
    cdiag(c, n, path, "\"%s\" %s", v, why);
    return false;
ok:
    /* a text cast may point at the node's value; make it self-contained
     * (the node tree is freed after compiling) */
    if (out->kind == TC_TEXT && out->s != out->buf) {
        struct ts_field *fw = (struct ts_field *)f;
        char *copy = xstrndup(out->s, out->len);
        fw->owned = xrealloc(fw->owned, (fw->n_owned + 1) * sizeof *fw->owned);
        fw->owned[fw->n_owned++] = copy;
        out->s = copy;
    }
    return true;
}

/* libxml2 reports a pattern that does not compile through its error
 * handler (thread-local): catch the first message instead of letting it
 * print. */
struct pattern_err {
    char *buf;
    size_t size;
};

static void pattern_err(void *ctx, xmlErrorPtr err)
{
    struct pattern_err *pe = ctx;
    if (!pe->buf[0] && err && err->message) {
        snprintf(pe->buf, pe->size, "%s", err->message);
        size_t n = strlen(pe->buf);
        while (n && (pe->buf[n - 1] == '\n' || pe->buf[n - 1] == ' '))
            pe->buf[--n] = 0;
    }
}

static xmlRegexpPtr pattern_compile(const char *s, char *err, size_t size)
{
    struct pattern_err pe = {err, size};
    xmlRegexpPtr re;
    err[0] = 0;
    xmlSetStructuredErrorFunc(&pe, pattern_err);
    re = xmlRegexpCompile((const xmlChar *)s);
    xmlSetStructuredErrorFunc(NULL, NULL);
    return re;
}

static bool bounds_allowed(enum ts_type t)
{
    return t == TS_INTEGER || t == TS_NUMBER || t == TS_DATE || t == TS_TIME || t == TS_DATETIME ||
           t == TS_YEAR || t == TS_YEARMONTH || t == TS_DURATION;
}

static void compile_constraints(struct comp *c, struct ts_field *f, const struct node *m,
                                const char *fpath)
{
    static const char *valid[] = {"required", "unique",  "minLength", "maxLength", "minimum",
                                  "maximum",  "pattern", "enum",      NULL};
    char path[512];
    if (m->kind != NODE_MAP) {
        cdiag(c, m, fpath, "constraints must be a map");
        return;
    }
    check_keys(c, m, fpath, valid);
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i];
        const struct node *v = m->items[i];
        const char *s;
        snprintf(path, sizeof path, "%.300s.%.100s", fpath, k);
        if (!strcmp(k, "required")) {
            get_bool(c, v, path, &f->required);
        } else if (!strcmp(k, "unique")) {
            get_bool(c, v, path, &f->unique);
            if (f->unique && (f->type == TS_OBJECT || f->type == TS_ARRAY))
                cdiag(c, v, path,
                      "unique is not supported for type %s (two spellings of one JSON value "
                      "would count as different)",
                      tsfield_type_name(f->type));
        } else if (!strcmp(k, "minLength") || !strcmp(k, "maxLength")) {
            uint64_t u;
            if (!(s = scalar_of(c, v, path)))
                continue;
            if (f->type != TS_STRING && f->type != TS_ANY && f->type != TS_OBJECT &&
                f->type != TS_ARRAY) {
                cdiag(c, v, path, "%s applies to strings, objects and arrays, not to type %s", k,
                      tsfield_type_name(f->type));
            } else if (parse_uint(s, UINT32_MAX, &u) < 0) {
                cdiag(c, v, path, "\"%s\" is not a non-negative integer", s);
            } else if (k[1] == 'i') {
                f->has_min_len = true;
                f->min_len = u;
            } else {
                f->has_max_len = true;
                f->max_len = u;
            }
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum")) {
            bool min = k[1] == 'i';
            if (!bounds_allowed(f->type)) {
                cdiag(c, v, path, "%s does not apply to type %s", k, tsfield_type_name(f->type));
            } else if (cast_bound(c, f, v, path, min ? &f->min : &f->max)) {
                *(min ? &f->has_min : &f->has_max) = true;
                char **text = min ? &f->min_text : &f->max_text;
                free(*text); /* a key given twice */
                *text = xstrdup(v->value);
            }
        } else if (!strcmp(k, "pattern")) {
            if (!(s = scalar_of(c, v, path)))
                continue;
            if (strlen(s) > PATTERN_MAX) {
                cdiag(c, v, path, "pattern longer than %d bytes", PATTERN_MAX);
                continue;
            }
            /* XML Schema regular expressions (the spec's dialect), which
             * match the whole value and count characters, not bytes. */
            char err[256] = "";
            if (f->re) /* a key given twice */
                xmlRegFreeRegexp(f->re);
            f->re = pattern_compile(s, err, sizeof err);
            if (!f->re) {
                cdiag(c, v, path,
                      "\"%s\" is not a valid XML Schema regular expression (the Table Schema "
                      "pattern syntax): %s",
                      s, err[0] ? err : "does not compile");
                continue;
            }
            f->has_pattern = true;
            free(f->pattern);
            f->pattern = xstrdup(s);
        } else if (!strcmp(k, "enum")) {
            size_t o = 0;
            if (v->kind != NODE_SEQ || v->n == 0) {
                cdiag(c, v, path, "enum must be a non-empty list");
                continue;
            }
            if (f->type == TS_OBJECT || f->type == TS_ARRAY) {
                cdiag(c, v, path, "enum is not supported for type %s", tsfield_type_name(f->type));
                continue;
            }
            f->enum_v = xcalloc(v->n, sizeof *f->enum_v);
            f->enum_text = xmalloc(ENUM_TEXT + 8);
            f->enum_text[0] = 0;
            for (size_t j = 0; j < v->n; j++) {
                if (!cast_bound(c, f, v->items[j], path, &f->enum_v[f->n_enum]))
                    continue;
                f->n_enum++;
                if (o < ENUM_TEXT)
                    o += (size_t)snprintf(f->enum_text + o, ENUM_TEXT - o, "%s\"%s\"",
                                          j ? ", " : "", v->items[j]->value);
            }
            if (o >= ENUM_TEXT)
                strcpy(f->enum_text + ENUM_TEXT - 1, "...");
        }
    }
}

static void compile_field(struct comp *c, struct tschema *s, const struct node *m, size_t idx)
{
    static const char *valid[] = {"name",        "type",        "format",      "title",
                                  "description", "example",     "rdfType",     "constraints",
                                  "trueValues",  "falseValues", "decimalChar", "groupChar",
                                  "bareNumber",  NULL};
    struct ts_field *f = &s->f[idx];
    char path[256], sub[512];
    const struct node *v;
    snprintf(path, sizeof path, "%s[%zu]", c->prefix, idx);
    if (m->kind != NODE_MAP) {
        cdiag(c, m, path, "a field must be a map with at least \"name\"");
        f->name = xasprintf("field%zu", idx + 1);
        return;
    }
    check_keys(c, m, path, valid);

    const char *name = (v = node_get(m, "name")) ? scalar_of(c, v, path) : NULL;
    if (!v)
        cdiag(c, m, path, "field has no \"name\"");
    if (name && !*name)
        cdiag(c, v, path, "field name is empty");
    else if (name && strlen(name) > NAME_MAX_LEN)
        cdiag(c, v, path, "field name \"%.40s...\" is longer than %d bytes", name, NAME_MAX_LEN);
    f->name = xstrdup(name ? name : "");
    for (size_t i = 0; name && *name && i < idx; i++)
        if (!strcasecmp(s->f[i].name, name))
            cdiag(c, v, path,
                  "field name \"%s\" repeats field %zu (\"%s\"); names must differ, "
                  "ignoring case, to become columns",
                  name, i + 1, s->f[i].name);

    f->type = TS_STRING;
    if ((v = node_get(m, "type"))) {
        const char *t = scalar_of(c, v, path);
        int ty = t ? tsfield_type(t) : -1;
        if (t && ty < 0 && !strcmp(t, "geojson"))
            cdiag(c, v, path,
                  "type geojson is not supported: wharf does not validate GeoJSON or TopoJSON "
                  "(use type object to require a JSON object)");
        else if (t && ty < 0 && !strcmp(t, "list"))
            cdiag(c, v, path,
                  "type list (Table Schema v2) is not supported (use type array for a JSON "
                  "array, or string)");
        else if (t && ty < 0)
            cdiag(c, v, path, "unknown type \"%s\" (valid: %s)", t, tsfield_type_names());
        if (ty >= 0)
            f->type = (enum ts_type)ty;
    }
    tsfield_defaults(f);

    if ((v = node_get(m, "format"))) {
        const char *fm = scalar_of(c, v, path);
        snprintf(sub, sizeof sub, "%s.format", path);
        if (!fm || !strcmp(fm, "default")) {
            /* nothing */
        } else if (f->type == TS_DATE || f->type == TS_TIME || f->type == TS_DATETIME) {
            if (!strcmp(fm, "any")) {
                f->fmt = FMT_ANY;
            } else {
                const char *pat = !strncmp(fm, "fmt:", 4) ? fm + 4 : fm;
                if (!tsfield_pattern_ok(pat))
                    cdiag(c, v, sub,
                          "\"%s\" is not a date/time pattern (use \"default\", \"any\", or "
                          "directives %%Y %%y %%m %%d %%H %%I %%M %%S %%f %%z %%p %%b %%B, "
                          "e.g. \"%%d.%%m.%%Y\")",
                          fm);
                f->fmt = FMT_PATTERN;
                f->pattern_fmt = xstrdup(pat);
            }
        } else if (f->type == TS_GEOPOINT) {
            if (!strcmp(fm, "array"))
                f->fmt = FMT_GEO_ARRAY;
            else if (!strcmp(fm, "object"))
                f->fmt = FMT_GEO_OBJECT;
            else
                cdiag(c, v, sub, "unknown geopoint format \"%s\" (valid: default, array, object)",
                      fm);
        } else if (f->type == TS_STRING) {
            if (!strcmp(fm, "email"))
                f->fmt = FMT_EMAIL;
            else if (!strcmp(fm, "uri"))
                f->fmt = FMT_URI;
            else if (!strcmp(fm, "uuid"))
                f->fmt = FMT_UUID;
            else if (!strcmp(fm, "binary"))
                f->fmt = FMT_BINARY;
            else
                cdiag(c, v, sub,
                      "unknown string format \"%s\" (valid: default, email, uri, uuid, binary)",
                      fm);
        } else {
            cdiag(c, v, sub, "type %s has no format \"%s\" (only \"default\")",
                  tsfield_type_name(f->type), fm);
        }
    }
    if ((v = node_get(m, "decimalChar"))) {
        snprintf(sub, sizeof sub, "%s.decimalChar", path);
        if (f->type != TS_NUMBER)
            cdiag(c, v, sub, "decimalChar applies to type number only");
        else if ((f->decimal_char = one_char(c, v, sub)) == 0)
            f->decimal_char = '.';
    }
    if ((v = node_get(m, "groupChar"))) {
        snprintf(sub, sizeof sub, "%s.groupChar", path);
        if (f->type != TS_NUMBER && f->type != TS_INTEGER)
            cdiag(c, v, sub, "groupChar applies to types number and integer only");
        else
            f->group_char = one_char(c, v, sub);
        if (f->group_char && f->group_char == f->decimal_char && f->type == TS_NUMBER)
            cdiag(c, v, sub, "groupChar and decimalChar are both \"%c\"", f->group_char);
    }
    if ((v = node_get(m, "bareNumber"))) {
        snprintf(sub, sizeof sub, "%s.bareNumber", path);
        if (f->type != TS_NUMBER && f->type != TS_INTEGER)
            cdiag(c, v, sub, "bareNumber applies to types number and integer only");
        else
            get_bool(c, v, sub, &f->bare_number);
    }
    for (int tf = 0; tf < 2; tf++) {
        const char *key = tf ? "falseValues" : "trueValues";
        if (!(v = node_get(m, key)))
            continue;
        snprintf(sub, sizeof sub, "%s.%s", path, key);
        if (f->type != TS_BOOLEAN) {
            cdiag(c, v, sub, "%s applies to type boolean only", key);
            continue;
        }
        char ***lst = tf ? &f->false_values : &f->true_values;
        size_t *cnt = tf ? &f->n_false : &f->n_true;
        for (size_t i = 0; i < *cnt; i++)
            free((*lst)[i]);
        free(*lst);
        *lst = strings_of(c, v, sub, cnt);
    }
    if ((v = node_get(m, "constraints"))) {
        snprintf(sub, sizeof sub, "%s.constraints", path);
        compile_constraints(c, f, v, sub);
    }
}

static void compile_fields(struct comp *c, struct tschema *s, const struct node *fields)
{
    if (!fields || fields->kind != NODE_SEQ || fields->n == 0) {
        cdiag(c, fields, c->prefix, "\"fields\" must be a non-empty list of field maps");
        return;
    }
    s->n = fields->n;
    s->f = xcalloc(s->n, sizeof *s->f);
    for (size_t i = 0; i < s->n; i++)
        compile_field(c, s, fields->items[i], i);
}

static size_t field_index(const struct tschema *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->f[i].name, name))
            return i;
    return (size_t)-1;
}

static void compile_root(struct comp *c, struct tschema *s, const struct node *root)
{
    static const char *valid[] = {"fields",      "missingValues", "primaryKey", "name", "title",
                                  "description", "$schema",       "profile",    NULL};
    const struct node *v;
    if (root->kind != NODE_MAP) {
        cdiag(c, root, NULL, "a Table Schema must be a map with \"fields\"");
        return;
    }
    check_keys(c, root, NULL, valid);
    compile_fields(c, s, node_get(root, "fields"));
    if ((v = node_get(root, "missingValues"))) {
        for (size_t i = 0; i < s->n_missing; i++)
            free(s->missing[i]);
        free(s->missing);
        s->missing = strings_of(c, v, "missingValues", &s->n_missing);
    }
    if ((v = node_get(root, "primaryKey"))) {
        const struct node *one[1] = {v};
        const struct node *const *items =
            v->kind == NODE_SEQ ? (const struct node *const *)v->items : one;
        size_t n = v->kind == NODE_SEQ ? v->n : 1;
        s->pk = xcalloc(n + 1, sizeof *s->pk);
        for (size_t i = 0; i < n; i++) {
            const char *name = scalar_of(c, items[i], "primaryKey");
            size_t at = name ? field_index(s, name) : (size_t)-1;
            if (name && at == (size_t)-1)
                cdiag(c, items[i], "primaryKey", "\"%s\" is not a field of this schema", name);
            else if (name)
                s->pk[s->n_pk++] = at;
        }
        for (size_t i = 0; i < s->n_pk; i++)
            s->f[s->pk[i]].required = true;
    }
}

struct tschema *tschema_compile(const struct wharf_config *cfg, const struct profile *p,
                                struct diags *d)
{
    struct tschema *s = xcalloc(1, sizeof *s);
    struct comp c = {.d = d, .file = p->file ? p->file : p->name};
    struct node *root = NULL;
    char *path = NULL;

    xmlInitParser(); /* patterns are libxml2 regular expressions */
    s->missing = xcalloc(1, sizeof *s->missing);
    s->missing[0] = xstrdup("");
    s->n_missing = 1;
    if (p->csv.schema) {
        c.prefix = "fields";
        if (!(path = config_schema_path(cfg, p->csv.schema))) {
            cdiag(&c, NULL, "csv.schema",
                  "\"%s\" must be a relative path inside the schemas directory (%s)", p->csv.schema,
                  cfg->schemas_dir);
            goto out;
        }
        if (!(root = node_load(path, d))) {
            c.bad = true;
            goto out;
        }
        c.file = path;
        compile_root(&c, s, root);
    } else if (p->csv.inline_fields) {
        c.prefix = "csv.fields";
        compile_fields(&c, s, p->csv.inline_fields);
    } else {
        cdiag(&c, NULL, "csv", "no Table Schema: set csv.schema or csv.fields");
    }
    if (!c.bad) {
        s->missing_len = xcalloc(s->n_missing + 1, sizeof *s->missing_len);
        for (size_t i = 0; i < s->n_missing; i++)
            s->missing_len[i] = strlen(s->missing[i]);
        s->cols.n = s->n;
        s->cols.v = xcalloc(s->n, sizeof *s->cols.v);
        for (size_t i = 0; i < s->n; i++) {
            struct column *col = &s->cols.v[i];
            col->name = xstrdup(s->f[i].name);
            col->required = s->f[i].required;
            switch (s->f[i].type) {
            case TS_BOOLEAN:
                col->kind = COLK_BOOLEAN;
                col->type = COL_INTEGER;
                break;
            case TS_DATE:
                col->kind = COLK_DATE;
                col->type = COL_TEXT;
                break;
            case TS_DATETIME:
                col->kind = COLK_DATETIME;
                col->type = COL_TEXT;
                break;
            case TS_INTEGER:
            case TS_YEAR:
                col->type = COL_INTEGER;
                break;
            case TS_NUMBER:
                col->type = COL_REAL;
                break;
            default:
                col->type = COL_TEXT;
            }
        }
        for (size_t i = 0; i < s->n_pk; i++)
            s->cols.v[s->pk[i]].key = true;
    }
out:
    node_free(root);
    free(path);
    if (c.bad) {
        tschema_free(s);
        return NULL;
    }
    return s;
}

void tschema_free(struct tschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        tsfield_free(&s->f[i]);
    free(s->f);
    for (size_t i = 0; i < s->cols.n; i++)
        free(s->cols.v[i].name);
    free(s->cols.v);
    for (size_t i = 0; i < s->n_missing; i++)
        free(s->missing[i]);
    free(s->missing);
    free(s->missing_len);
    free(s->pk);
    free(s);
}

const struct columns *tschema_columns(const struct tschema *s)
{
    return s ? &s->cols : NULL;
}

/* ---- the split file ----------------------------------------------------- */

struct wout {
    struct dfile df;
    bool open;
    char delim, quote;
    char buf[64 * 1024];
    size_t n;
};

static int wout_put(struct wout *w, const char *p, size_t len, struct werr *e)
{
    if (w->n + len > sizeof w->buf) {
        if (dfile_write(&w->df, w->buf, w->n, e) < 0)
            return -1;
        w->n = 0;
        if (len > sizeof w->buf)
            return dfile_write(&w->df, p, len, e);
    }
    memcpy(w->buf + w->n, p, len);
    w->n += len;
    return 0;
}

static int wout_field(struct wout *w, bool first, const char *p, size_t len, struct werr *e)
{
    bool q = len && (p[0] == ' ' || p[len - 1] == ' ');
    for (size_t i = 0; i < len && !q; i++)
        q = p[i] == w->delim || p[i] == w->quote || p[i] == '\n' || p[i] == '\r';
    if (!first && wout_put(w, &w->delim, 1, e) < 0)
        return -1;
    if (!q)
        return wout_put(w, p, len, e);
    if (wout_put(w, &w->quote, 1, e) < 0)
        return -1;
    for (size_t i = 0, s = 0; i <= len; i++) {
        if (i == len || p[i] == w->quote) {
            if (wout_put(w, p + s, i - s, e) < 0)
                return -1;
            if (i < len && wout_put(w, &w->quote, 1, e) < 0) /* the doubled quote */
                return -1;
            s = i;
        }
    }
    return wout_put(w, &w->quote, 1, e);
}

/* ---- the run ------------------------------------------------------------ */

/* The profile's control record: a well-formed record whose first field
 * matches control.pattern. */
static bool is_control(const struct control_tally *t, const struct csv_record *rec)
{
    return !rec->blank && rec->err == CSV_OK && rec->n &&
           control_matches(t, rec->f[0].p, rec->f[0].len);
}

struct run {
    const struct tschema *s;
    const struct profile *p;
    const struct validate_input *in;
    struct report *rep;
    size_t nerr;             /* problems in the current record */
    char recerr[RECERR_MAX]; /* their text, for _wharf_errors */
    size_t recerr_len;
};

static void problem(struct run *R, uint64_t line, size_t col, const char *field, const char *val,
                    size_t vlen, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* One problem: into the report (capped there) and into the record's
 * _wharf_errors text (capped at RECERR_MAX). */
static void problem(struct run *R, uint64_t line, size_t col, const char *field, const char *val,
                    size_t vlen, const char *code, const char *fmt, ...)
{
    char msg[512], where[160] = "", v[80] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report_add(R->rep, R->in->display, line, col, field, val, vlen, code, "%s", msg);
    R->nerr++;

    if (field)
        snprintf(where, sizeof where, "column \"%s\" (%zu): ", field, col);
    else if (col)
        snprintf(where, sizeof where, "column %zu: ", col);
    if (val) {
        size_t n = vlen < 40 ? vlen : 40, o = 0;
        v[o++] = '"';
        for (size_t i = 0; i < n; i++)
            v[o++] = (unsigned char)val[i] < 0x20 ? '?' : val[i];
        if (n < vlen) {
            memcpy(v + o, "...", 3);
            o += 3;
        }
        v[o++] = '"';
        v[o++] = ' ';
        v[o] = 0;
    }
    size_t room = sizeof R->recerr - R->recerr_len;
    if (room > 1)
        R->recerr_len += (size_t)snprintf(R->recerr + R->recerr_len, room, "%s%s%s%s",
                                          R->recerr_len ? "; " : "", where, v, msg);
    if (R->recerr_len >= sizeof R->recerr)
        R->recerr_len = sizeof R->recerr - 1;
}

static bool names_equal(const struct profile *p, const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    if (alen != bl)
        return false;
    return p->csv.header_case_insensitive ? !strncasecmp(a, b, bl) : !memcmp(a, b, bl);
}

/* Match the header against the schema; fills map (CSV column -> field).
 * Every problem is structural. Returns the number of problems. */
static size_t check_header(struct run *R, const struct csv_record *h, size_t *map)
{
    const struct tschema *s = R->s;
    size_t before = R->nerr;
    char *seen = xcalloc(s->n, 1);
    if (h->err != CSV_OK) {
        problem(R, h->line, h->err_field, NULL, NULL, 0, "header", "the header row: %s",
                csv_error_text(h->err));
        goto out;
    }
    if (h->blank) {
        problem(R, h->line, 0, NULL, NULL, 0, "header",
                "the header row is empty (expected %zu columns: %s, ...)", s->n, s->f[0].name);
        goto out;
    }
    for (size_t c = 0; c < h->n; c++) {
        const char *name = h->f[c].p;
        size_t len = h->f[c].len;
        size_t fi = (size_t)-1;
        if (c == 0 && len >= 3 && !memcmp(name, "\xEF\xBB\xBF", 3)) {
            name += 3;
            len -= 3;
        }
        if (R->p->csv.header_match == HEADER_EXACT) {
            if (c < s->n && names_equal(R->p, name, len, s->f[c].name))
                fi = c;
            else if (c < s->n)
                problem(R, h->line, c + 1, NULL, name, len, "header",
                        "is not the expected column name \"%s\"", s->f[c].name);
            else
                problem(R, h->line, c + 1, NULL, name, len, "header",
                        "is an extra column: the schema has %zu", s->n);
        } else {
            for (size_t i = 0; i < s->n && fi == (size_t)-1; i++)
                if (names_equal(R->p, name, len, s->f[i].name))
                    fi = i;
            if (fi == (size_t)-1)
                problem(R, h->line, c + 1, NULL, name, len, "header",
                        "is not a field of the schema");
            else if (seen[fi]) {
                problem(R, h->line, c + 1, NULL, name, len, "header",
                        "appears twice in the header");
                fi = (size_t)-1;
            }
        }
        if (fi != (size_t)-1) {
            seen[fi] = 1;
            map[c] = fi;
        }
    }
    for (size_t i = 0; i < s->n; i++)
        if (!seen[i] && (R->p->csv.header_match != HEADER_EXACT || i >= h->n))
            problem(R, h->line, 0, s->f[i].name, NULL, 0, "header", "is missing from the header");
out:
    free(seen);
    return R->nerr - before;
}

static bool is_missing(const struct tschema *s, const char *p, size_t len)
{
    for (size_t i = 0; i < s->n_missing; i++)
        if (s->missing_len[i] == len && !memcmp(s->missing[i], p, len))
            return true;
    return false;
}

static size_t utf8_chars(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)p[i] & 0xC0) != 0x80;
    return n;
}

struct cells {
    struct value *vals;   /* per field */
    struct ts_cast *cast; /* per field */
    bool *ok;             /* per field: cast and non-null */
    struct keyset **uniq; /* per field: the unique set, or NULL */
    struct keyset *pk;    /* NULL without a primary key, or when it is one unique field */
    struct keyset **sets; /* all of the above, for keyset_row_end */
    size_t nsets;
    size_t *col;   /* per field: its 1-based CSV column */
    char *scratch; /* NUL-terminated copy of a cell, for xmlRegexpExec */
    size_t scratch_cap;
    unsigned char *pkbuf; /* a composite primary key, encoded */
    size_t pkbuf_cap;
};

/* A number's key: its bits, so that keys are equal exactly when the values
 * are equal numbers: -0 is 0 (they compare equal, so a unique column may
 * not hold both); NaNs differ only by sign. */
static int64_t real_key(double d)
{
    uint64_t b;
    if (d == 0)
        d = 0.0;
    memcpy(&b, &d, sizeof b);
    if (d != d)
        b = (b & (1ULL << 63)) | 0x7ff8000000000000ULL;
    return (int64_t)b;
}

/* Integer-like fields key on one 64-bit word; text and temporal fields on
 * a hash of their canonical text (see keyset.h). */
static enum keyset_kind key_kind(const struct ts_field *f)
{
    switch (f->type) {
    case TS_INTEGER:
    case TS_BOOLEAN:
    case TS_YEAR:
    case TS_NUMBER:
        return KEYSET_INT;
    default:
        return KEYSET_BYTES;
    }
}

static int key_add(struct keyset *ks, enum keyset_kind kind, const struct ts_cast *v, uint64_t line,
                   uint64_t *first)
{
    if (kind == KEYSET_INT)
        return keyset_add_int(ks, v->kind == TC_INT ? v->i : real_key(v->d), line, first);
    return keyset_add_bytes(ks, v->s, v->len, line, first);
}

static void check_cell(struct run *R, struct cells *C, const struct csv_record *rec, size_t c,
                       size_t fi)
{
    const struct ts_field *f = &R->s->f[fi];
    const char *p = rec->f[c].p;
    size_t len = rec->f[c].len, col = c + 1;
    struct ts_cast *v = &C->cast[fi];
    char why[256];
    uint64_t first;

    C->ok[fi] = false;
    C->vals[fi].kind = VAL_NULL;
    if (is_missing(R->s, p, len)) {
        if (f->required)
            problem(R, rec->line, col, f->name, NULL, 0, "required", "a value is required");
        return;
    }
    if (tsfield_cast(f, p, len, v, why, sizeof why) < 0) {
        problem(R, rec->line, col, f->name, p, len, "type", "%s", why);
        return;
    }
    size_t before = R->nerr;
    /* NaN compares false with everything: it would pass any bound and equal
     * every enum value.  It meets none of them.  And the SQLite target turns
     * a NaN into NULL, so a NaN never reaches it: one value never silently
     * becomes another.  (SQLite stores +-Inf faithfully as REAL.) */
    bool nan = v->kind == TC_REAL && isnan(v->d);
    if (nan) {
        if (f->has_min)
            problem(R, rec->line, col, f->name, p, len, "minimum",
                    "is NaN, which meets no minimum (%s)", f->min_text);
        if (f->has_max)
            problem(R, rec->line, col, f->name, p, len, "maximum",
                    "is NaN, which meets no maximum (%s)", f->max_text);
        if (f->n_enum)
            problem(R, rec->line, col, f->name, p, len, "enum", "is NaN, which is not one of %s",
                    f->enum_text);
        if (R->nerr == before && R->p->target.type == TARGET_SQLITE)
            problem(R, rec->line, col, f->name, p, len, "unstorable",
                    "is NaN, which the SQLite target cannot store (it would become NULL)");
    }
    if (f->has_min_len || f->has_max_len) {
        size_t n = f->type == TS_OBJECT || f->type == TS_ARRAY ? (size_t)v->i : utf8_chars(p, len);
        const char *unit = f->type == TS_OBJECT  ? "members"
                           : f->type == TS_ARRAY ? "items"
                                                 : "characters";
        if (f->has_min_len && n < f->min_len)
            problem(R, rec->line, col, f->name, p, len, "min_length",
                    "is shorter than minLength %llu (%zu %s)", (unsigned long long)f->min_len, n,
                    unit);
        if (f->has_max_len && n > f->max_len)
            problem(R, rec->line, col, f->name, p, len, "max_length",
                    "is longer than maxLength %llu (%zu %s)", (unsigned long long)f->max_len, n,
                    unit);
    }
    if (!nan && f->has_min && tsfield_compare(f, v, &f->min) < 0)
        problem(R, rec->line, col, f->name, p, len, "minimum", "is less than minimum %s",
                f->min_text);
    if (!nan && f->has_max && tsfield_compare(f, v, &f->max) > 0)
        problem(R, rec->line, col, f->name, p, len, "maximum", "is greater than maximum %s",
                f->max_text);
    if (f->has_pattern) {
        if (len + 1 > C->scratch_cap) {
            C->scratch_cap = len + 1;
            C->scratch = xrealloc(C->scratch, C->scratch_cap);
        }
        memcpy(C->scratch, p, len);
        C->scratch[len] = 0;
        /* an embedded NUL would cut the match short: never a match.  libxml2
         * gives up (-1) on a pattern that backtracks too much, e.g.
         * (a|aa)* on a long run of a's: a reject too, said as such. */
        int m = memchr(p, 0, len) ? 0 : xmlRegexpExec(f->re, (const xmlChar *)C->scratch);
        if (m < 0)
            problem(R, rec->line, col, f->name, p, len, "pattern",
                    "could not be checked against pattern \"%s\" (the regular expression "
                    "engine gave up: the pattern backtracks too much; simplify it)",
                    f->pattern);
        else if (m != 1)
            problem(R, rec->line, col, f->name, p, len, "pattern", "does not match pattern \"%s\"",
                    f->pattern);
    }
    if (!nan && f->n_enum) {
        size_t i;
        for (i = 0; i < f->n_enum; i++)
            if (tsfield_compare(f, v, &f->enum_v[i]) == 0)
                break;
        if (i == f->n_enum)
            problem(R, rec->line, col, f->name, p, len, "enum", "is not one of %s", f->enum_text);
    }
    if (C->uniq[fi] && !key_add(C->uniq[fi], key_kind(f), v, rec->line, &first))
        problem(R, rec->line, col, f->name, p, len, "unique",
                "is not unique (first seen on line %llu)", (unsigned long long)first);
    if (R->nerr != before)
        return;
    C->ok[fi] = true;
    switch (v->kind) {
    case TC_INT:
        C->vals[fi].kind = VAL_INT;
        C->vals[fi].i = v->i;
        break;
    case TC_REAL:
        C->vals[fi].kind = VAL_REAL;
        C->vals[fi].d = v->d;
        break;
    default:
        C->vals[fi].kind = VAL_TEXT;
        C->vals[fi].s = v->s;
        C->vals[fi].len = v->len;
    }
}

/* "a, b" of the primary key fields, for messages. */
static size_t pk_names(const struct tschema *s, char *buf, size_t size)
{
    size_t no = 0;
    buf[0] = 0;
    for (size_t i = 0; i < s->n_pk && no < size; i++)
        no += (size_t)snprintf(buf + no, size - no, "%s%s", i ? ", " : "", s->f[s->pk[i]].name);
    return no;
}

/*
 * The primary key of a record whose key fields all passed.  One field: its
 * key as for unique.  Several: each field's key in an unambiguous encoding
 * (a kind byte, then 8 bytes of integer or number bits, or 8 bytes of
 * length and the text), hashed as one.  The display text ("1, x") is only
 * made when there is something to report.
 */
static void check_pk(struct run *R, struct cells *C, const struct csv_record *rec)
{
    const struct tschema *s = R->s;
    uint64_t first;
    int fresh;
    if (!C->pk)
        return;
    for (size_t i = 0; i < s->n_pk; i++)
        if (!C->ok[s->pk[i]])
            return; /* already reported */
    if (s->n_pk == 1) {
        fresh = key_add(C->pk, key_kind(&s->f[s->pk[0]]), &C->cast[s->pk[0]], rec->line, &first);
    } else {
        size_t o = 0;
        for (size_t i = 0; i < s->n_pk; i++) {
            const struct ts_cast *v = &C->cast[s->pk[i]];
            size_t need = o + 1 + 8 + (v->kind == TC_TEXT ? v->len : 0);
            if (need > C->pkbuf_cap) {
                C->pkbuf_cap = need * 2;
                C->pkbuf = xrealloc(C->pkbuf, C->pkbuf_cap);
            }
            uint64_t w = v->kind == TC_INT    ? (uint64_t)v->i
                         : v->kind == TC_REAL ? (uint64_t)real_key(v->d)
                                              : (uint64_t)v->len;
            C->pkbuf[o++] = (unsigned char)v->kind;
            memcpy(C->pkbuf + o, &w, 8);
            o += 8;
            if (v->kind == TC_TEXT) {
                memcpy(C->pkbuf + o, v->s, v->len);
                o += v->len;
            }
        }
        fresh = keyset_add_bytes(C->pk, C->pkbuf, o, rec->line, &first);
    }
    if (fresh)
        return;

    char names[256], text[512];
    size_t to = 0;
    pk_names(s, names, sizeof names);
    for (size_t i = 0; i < s->n_pk && to < sizeof text; i++) {
        char kb[64];
        const char *k;
        size_t kl = tsfield_key(&C->cast[s->pk[i]], kb, sizeof kb, &k);
        to += (size_t)snprintf(text + to, sizeof text - to, "%s%.*s", i ? ", " : "", (int)kl, k);
    }
    if (to >= sizeof text)
        to = sizeof text - 1;
    problem(R, rec->line, 0, NULL, text, to, "primary_key",
            "repeats the primary key (%s) of line %llu", names, (unsigned long long)first);
}

static void check_structure(struct run *R, const struct csv_record *rec, const size_t *map,
                            size_t ncols)
{
    const struct tschema *s = R->s;
    const char *fname = NULL;
    const char *val = NULL;
    size_t vlen = 0, col = rec->err_field;
    if (col && col <= rec->n && col <= ncols)
        fname = s->f[map[col - 1]].name;
    if (col && col <= rec->n) {
        val = rec->f[col - 1].p;
        vlen = rec->f[col - 1].len;
    }
    switch (rec->err) {
    case CSV_LINE_TOO_LONG:
        problem(R, rec->line, 0, NULL, NULL, 0, "line_too_long",
                "record is longer than %llu bytes (limits.max_line); skipped to the next line",
                (unsigned long long)R->p->limits.max_line);
        break;
    case CSV_FIELD_TOO_LONG:
        problem(R, rec->line, col, fname, val, vlen, "field_too_long",
                "is longer than %llu bytes (limits.max_field)",
                (unsigned long long)R->p->limits.max_field);
        break;
    case CSV_STRAY_QUOTE:
        problem(R, rec->line, col, fname, val, vlen, "stray_quote",
                "has a stray quote (a field holding quotes must be quoted, with each quote "
                "doubled)");
        break;
    case CSV_UNCLOSED_QUOTE:
        problem(R, rec->line, col, fname, val, vlen, "unclosed_quote",
                "opens a quoted field that is never closed (the file ends inside it)");
        break;
    case CSV_INVALID_ENCODING:
        problem(R, rec->line, col, fname, val, vlen, "invalid_encoding", "is not valid UTF-8");
        break;
    case CSV_OK:
        break;
    }
}

static int split_record(struct wout *w, const struct csv_record *rec, size_t ncols,
                        const struct run *R, struct werr *e)
{
    char line[32];
    size_t n = rec->n > ncols ? rec->n : ncols;
    for (size_t i = 0; i < n; i++) {
        const char *p = i < rec->n ? rec->f[i].p : "";
        size_t len = i < rec->n ? rec->f[i].len : 0;
        if (wout_field(w, i == 0, p, len, e) < 0)
            return -1;
    }
    snprintf(line, sizeof line, "%llu", (unsigned long long)rec->line);
    if (wout_field(w, false, line, strlen(line), e) < 0 ||
        wout_field(w, false, R->recerr, R->recerr_len, e) < 0 || wout_put(w, "\r\n", 2, e) < 0)
        return -1;
    return 0;
}

/* ---- unique and primary key sets --------------------------------------- */

/* The budget for all sets of a run: KEYSET_BUDGET, or for tests the bytes
 * in WHARF_TEST_KEYSET_BUDGET (a tiny budget forces spilling). */
static size_t keyset_budget(void)
{
    const char *v = getenv("WHARF_TEST_KEYSET_BUDGET");
    uint64_t u;
    if (v && *v && parse_uint(v, SIZE_MAX, &u) == 0 && u > 0)
        return (size_t)u;
    return KEYSET_BUDGET;
}

/* One set per unique field, and one for the primary key unless it is a
 * single field that is unique anyway: that field's set already refuses
 * every repeat, and the primary key is only checked when the field passed.
 * The budget is shared; spilled runs go next to the part. */
static void sets_open(const struct tschema *s, const struct validate_input *in, struct cells *C)
{
    size_t n = 0, budget;
    bool pk_set = s->n_pk > 1 || (s->n_pk == 1 && !s->f[s->pk[0]].unique);
    char *dir = xstrdup(in->path), *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        strcpy(dir, ".");
    for (size_t i = 0; i < s->n; i++)
        n += s->f[i].unique;
    n += pk_set;
    C->uniq = xcalloc(s->n, sizeof *C->uniq);
    C->sets = xcalloc(n + 1, sizeof *C->sets);
    budget = n ? keyset_budget() / n : 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i].unique)
            C->sets[C->nsets++] = C->uniq[i] = keyset_new(key_kind(&s->f[i]), budget, dir);
    if (pk_set)
        C->sets[C->nsets++] = C->pk =
            keyset_new(s->n_pk == 1 ? key_kind(&s->f[s->pk[0]]) : KEYSET_BYTES, budget, dir);
    free(dir);
}

static void sets_free(struct cells *C)
{
    for (size_t i = 0; i < C->nsets; i++)
        keyset_free(C->sets[i]);
    free(C->sets);
    free(C->uniq);
}

/* What a late repeat needs to be reported and counted. */
struct late {
    struct run *R;
    struct validate_result *res;
    const struct ts_field *f; /* the unique field; NULL for the primary key */
    size_t col;
    char names[256];      /* primary key fields */
    bool real;            /* the key is a number's bits */
    struct keyset *lines; /* several sets: count each record once */
    struct werr *e;
    int err;
};

/*
 * A repeat found by keyset_finish, after its record was checked.  It is
 * reported like one found at once, without the value when the key was a
 * hash.  A record that was invalid anyway changes nothing else.  A record
 * that was handed on as valid now counts as invalid, and since it may
 * already be loaded (or written nowhere, with on_invalid: split) the
 * result is marked late_duplicates and structural: the whole part is
 * refused rather than a duplicate loaded.  With several sets, a record
 * repeated in more than one is counted once (C->lines, itself a keyset).
 */
static void late_dup(void *ctx, uint64_t line, uint64_t first, bool row_invalid,
                     const int64_t *key_int)
{
    struct late *L = ctx;
    char val[40];
    size_t vl = 0;
    uint64_t seen;
    if (key_int) {
        if (L->real) {
            double d;
            memcpy(&d, key_int, sizeof d);
            vl = (size_t)snprintf(val, sizeof val, "%.17g", d);
        } else {
            vl = (size_t)snprintf(val, sizeof val, "%lld", (long long)*key_int);
        }
    }
    if (L->f)
        report_add(L->R->rep, L->R->in->display, line, L->col, L->f->name, vl ? val : NULL, vl,
                   "unique", "is not unique (first seen on line %llu)", (unsigned long long)first);
    else
        report_add(L->R->rep, L->R->in->display, line, 0, NULL, vl ? val : NULL, vl, "primary_key",
                   "repeats the primary key (%s) of line %llu", L->names,
                   (unsigned long long)first);
    if (row_invalid)
        return;
    if (L->lines) {
        int fresh = keyset_add_int(L->lines, (int64_t)line, line, &seen);
        if (keyset_row_end(L->lines, false, L->e) < 0)
            L->err = -1;
        if (!fresh)
            return;
    }
    L->res->valid--;
    L->res->invalid++;
    L->res->late_duplicates = true;
    L->res->structural = true;
}

/* A record counted twice above (a late repeat in two sets): once again. */
static void late_twice(void *ctx, uint64_t line, uint64_t first, bool row_invalid,
                       const int64_t *key_int)
{
    struct late *L = ctx;
    (void)line, (void)first, (void)row_invalid, (void)key_int;
    L->res->valid++;
    L->res->invalid--;
}

/* The end of a run: the repeats that only the merge of spilled runs finds. */
static int sets_finish(struct run *R, struct cells *C, struct validate_result *res, struct werr *e)
{
    const struct tschema *s = R->s;
    struct late L = {.R = R, .res = res, .e = e};
    bool any = false;
    int rc = -1;
    for (size_t i = 0; i < C->nsets; i++)
        any = any || keyset_spilled(C->sets[i]);
    if (!any)
        return 0;
    if (C->nsets > 1)
        L.lines = keyset_new(KEYSET_INT, keyset_budget(), ".");
    for (size_t i = 0; i < s->n; i++) {
        if (!C->uniq[i])
            continue;
        L.f = &s->f[i];
        L.col = C->col[i];
        L.real = s->f[i].type == TS_NUMBER;
        if (keyset_finish(C->uniq[i], late_dup, &L, e) < 0 || L.err < 0)
            goto out;
    }
    if (C->pk) {
        L.f = NULL;
        L.col = 0;
        L.real = s->n_pk == 1 && s->f[s->pk[0]].type == TS_NUMBER;
        pk_names(s, L.names, sizeof L.names);
        if (keyset_finish(C->pk, late_dup, &L, e) < 0 || L.err < 0)
            goto out;
    }
    if (L.lines && keyset_finish(L.lines, late_twice, &L, e) < 0)
        goto out;
    rc = 0;
out:
    keyset_free(L.lines);
    return rc;
}

/*
 * csvv_run: one CSV part through the schema.
 *
 *  1. The header (when the dialect has one) is matched to the schema by
 *     name, in order or in any order, case-sensitively or not, as the
 *     profile says; a mismatch is structural and ends the run: no row can be
 *     trusted to its column.
 *  2. Each record: tokenizer errors, then the field count, then every cell
 *     (missing value, type, constraints, unique), then the primary key.  A
 *     record with no problem becomes a typed row for fn; any other goes to
 *     the split file with its line and errors.
 *
 * The split file (RFC 4180, CRLF, the part's own delimiter and quote) looks
 * like:
 *
 *   id,amount,_wharf_line,_wharf_errors
 *   7,"12,50",9,"column ""amount"" (2): ""12,50"" is not a number (decimalChar is ""."")"
 *
 * Short (ragged) records are padded with empty fields so _wharf_line and
 * _wharf_errors stay in their columns; long ones keep all their fields.
 */
int csvv_run(struct tschema *s, const struct profile *p, const struct validate_input *in,
             struct report *rep, row_fn fn, void *ctx, const char *invalid_csv,
             struct validate_result *res, struct werr *e)
{
    struct run R = {.s = s, .p = p, .in = in, .rep = rep};
    struct cells C = {0};
    struct csv_reader *rd;
    struct csv_record rec;
    struct wout *w = NULL;
    size_t ncols = s->n, *map = NULL, *sumcol = NULL;
    struct control_tally *ctl = in->control;
    int rc = -1, got;

    memset(res, 0, sizeof *res);
    rd = csv_open(in->path, in->delimiter ? in->delimiter : ',', in->quote, p->limits.max_line,
                  p->limits.max_field, e);
    if (rd && in->bytes_read)
        csv_set_progress(rd, in->bytes_read);
    if (!rd)
        return -1;
    map = xcalloc(s->n + 1, sizeof *map);
    for (size_t i = 0; i < s->n; i++)
        map[i] = i;

    if (in->skip_first_line && csv_next(rd, &rec, e) < 0)
        goto out;
    if (ctl && ctl->conf->line == CONTROL_HEADER) {
        if ((got = csv_next(rd, &rec, e)) < 0)
            goto out;
        if (got == 0 || !is_control(ctl, &rec)) {
            /* Not read on as data: the record might be the column header. */
            res->structural = true;
            rc = 0;
            goto out;
        }
        control_tally_take(ctl, rec.f, rec.n, rec.line);
    }
    if (in->header) {
        if ((got = csv_next(rd, &rec, e)) < 0)
            goto out;
        if (got == 0) {
            problem(&R, 0, 0, NULL, NULL, 0, "header",
                    "the file is empty: expected a header row with %zu columns", s->n);
            res->structural = true;
            rc = 0;
            goto out;
        }
        ncols = rec.n;
        map = xrealloc(map, (ncols + 1) * sizeof *map);
        if (check_header(&R, &rec, map)) {
            res->structural = true;
            rc = 0;
            goto out;
        }
    }

    if (invalid_csv) {
        w = xcalloc(1, sizeof *w);
        w->delim = in->delimiter ? in->delimiter : ',';
        w->quote = in->quote ? in->quote : '"';
        if (dfile_open(&w->df, invalid_csv, 0640, false, e) < 0)
            goto out;
        w->open = true;
        for (size_t c = 0; c < ncols; c++) {
            const char *name = s->f[map[c]].name;
            if (wout_field(w, c == 0, name, strlen(name), e) < 0)
                goto out;
        }
        if (wout_field(w, false, "_wharf_line", 11, e) < 0 ||
            wout_field(w, false, "_wharf_errors", 13, e) < 0 || wout_put(w, "\r\n", 2, e) < 0)
            goto out;
    }

    C.vals = xcalloc(s->n, sizeof *C.vals);
    C.cast = xcalloc(s->n, sizeof *C.cast);
    C.ok = xcalloc(s->n, sizeof *C.ok);
    C.col = xcalloc(s->n, sizeof *C.col);
    for (size_t c = 0; c < ncols; c++)
        if (map[c] < s->n && !C.col[map[c]])
            C.col[map[c]] = c + 1;
    sets_open(s, in, &C);
    if (ctl) {
        sumcol = xcalloc(ctl->conf->n_sums + 1, sizeof *sumcol);
        for (size_t k = 0; k < ctl->conf->n_sums; k++) {
            sumcol[k] = SIZE_MAX;
            for (size_t c = 0; c < ncols; c++)
                if (map[c] < s->n && !strcmp(s->f[map[c]].name, ctl->conf->sums[k].column))
                    sumcol[k] = c;
            if (sumcol[k] == SIZE_MAX && !*ctl->problem)
                snprintf(ctl->problem, sizeof ctl->problem,
                         "control.sums names \"%s\", which is not a column of the %s",
                         ctl->conf->sums[k].column, in->header ? "file's header" : "schema");
        }
    }

    while ((got = csv_next(rd, &rec, e)) == 1) {
        if (ctl && ctl->conf->line == CONTROL_TRAILER) {
            if (is_control(ctl, &rec)) {
                control_tally_take(ctl, rec.f, rec.n, rec.line);
                continue;
            }
            if (ctl->found && !*ctl->problem)
                snprintf(ctl->problem, sizeof ctl->problem,
                         "the trailer at line %llu is not the last record (line %llu follows)",
                         (unsigned long long)ctl->line, (unsigned long long)rec.line);
        }
        if (ctl && !rec.blank && rec.err != CSV_LINE_TOO_LONG)
            for (size_t k = 0; k < ctl->conf->n_sums; k++)
                if (sumcol[k] < rec.n && rec.f[sumcol[k]].len &&
                    decimal_add_text(&ctl->sums[k], rec.f[sumcol[k]].p, rec.f[sumcol[k]].len) < 0)
                    ctl->unsummable[k]++;
        res->records++;
        R.nerr = 0;
        R.recerr_len = 0;
        R.recerr[0] = 0;
        if (rec.blank)
            problem(&R, rec.line, 0, NULL, NULL, 0, "blank_row", "blank row");
        else if (rec.err != CSV_OK)
            check_structure(&R, &rec, map, ncols);
        else if (rec.n != ncols)
            problem(&R, rec.line, 0, NULL, NULL, 0, "ragged_rows", "has %zu fields, the %s has %zu",
                    rec.n, in->header ? "header" : "schema", ncols);
        else {
            for (size_t c = 0; c < ncols; c++)
                check_cell(&R, &C, &rec, c, map[c]);
            if (s->n_pk)
                check_pk(&R, &C, &rec);
        }
        for (size_t i = 0; i < C.nsets; i++)
            if (keyset_row_end(C.sets[i], R.nerr != 0, e) < 0)
                goto out;

        if (R.nerr == 0) {
            res->valid++;
            if (fn) {
                struct row row = {.v = C.vals, .n = s->n, .line = rec.line};
                if (fn(ctx, &row, e) < 0)
                    goto out;
            }
        } else {
            res->invalid++;
            if (w) {
                if (split_record(w, &rec, ncols, &R, e) < 0)
                    goto out;
                res->invalid_written++;
            }
        }
    }
    if (got < 0) {
        werr_prefix(e, "%s", in->display);
        goto out;
    }
    if (sets_finish(&R, &C, res, e) < 0) {
        werr_prefix(e, "%s", in->display);
        goto out;
    }
    if (w && !res->invalid_written) {
        /* Nothing to park: no file (and none left from an earlier pass). */
        dfile_abort(&w->df);
        w->open = false;
        if (unlink(invalid_csv) < 0 && errno != ENOENT) {
            werr_sys(e, "%s", invalid_csv);
            goto out;
        }
    } else if (w) {
        if (w->n && dfile_write(&w->df, w->buf, w->n, e) < 0)
            goto out;
        w->n = 0;
        w->open = false;
        if (dfile_commit(&w->df, NULL, e) < 0)
            goto out;
        res->invalid_path = xstrdup(invalid_csv);
    }
    rc = 0;
out:
    if (w && w->open)
        dfile_abort(&w->df);
    free(w);
    sets_free(&C);
    free(C.col);
    free(C.vals);
    free(C.cast);
    free(C.ok);
    free(C.scratch);
    free(C.pkbuf);
    free(map);
    free(sumcol);
    csv_close(rd);
    return rc;
}
