/*
 * validator: the per-profile compiled schemas, dispatching a part to the
 * CSV (tableschema.c) or XML (xsd.c) engine by its detected format.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate/tableschema.h"
#include "validate/validate.h"
#include "validate/xsd.h"
#include "util/xmalloc.h"

struct validator {
    const struct profile *profile;
    struct tschema *csv;
    struct xsdv *xml;
};

struct validator *validator_compile(const struct wharf_config *cfg, const struct profile *p,
                                    struct diags *d)
{
    struct validator *v = xcalloc(1, sizeof *v);
    size_t before = d->n;
    v->profile = p;
    if (p->csv.schema || p->csv.inline_fields)
        v->csv = tschema_compile(cfg, p, d);
    if (p->xml.schema || p->xml.record)
        v->xml = xsdv_compile(cfg, p, d);
    /* Every field becomes a target column: its name must be one the target
     * accepts, so `wharf check` says so instead of the first load failing. */
    const struct columns *cols = v->csv ? tschema_columns(v->csv) : NULL;
    for (size_t i = 0; cols && i < cols->n; i++) {
        const char *name = cols->v[i].name;
        if (!ident_valid(name) || !strncasecmp(name, "_wharf", 6) ||
            !strncasecmp(name, "sqlite_", 7))
            diag_add(d, p->file, 0, 0, "csv.schema",
                     "field \"%s\" cannot be a column of target table %s (use letters, digits "
                     "and _, at most 63, not starting with _wharf or sqlite_)",
                     name, p->target.table ? p->target.table : "?");
    }
    if (d->n > before) {
        validator_free(v);
        return NULL;
    }
    return v;
}

void validator_free(struct validator *v)
{
    if (!v)
        return;
    tschema_free(v->csv);
    xsdv_free(v->xml);
    free(v);
}

const struct columns *validator_columns(const struct validator *v, enum data_format f)
{
    if (f == FORMAT_CSV && v->csv)
        return tschema_columns(v->csv);
    if (f == FORMAT_XML && v->xml)
        return xsdv_columns(v->xml);
    return NULL;
}

int validator_run(struct validator *v, const struct validate_input *in, struct report *rep,
                  row_fn fn, void *ctx, const char *invalid_csv, struct validate_result *res,
                  struct werr *e)
{
    if (in->format == FORMAT_CSV) {
        if (!v->csv) {
            werr_setk(e, WERR_CONFIG, "profile %s has no csv schema for %s", v->profile->name,
                      in->display);
            return -1;
        }
        return csvv_run(v->csv, v->profile, in, rep, fn, ctx, invalid_csv, res, e);
    }
    if (in->format == FORMAT_XML) {
        if (!v->xml) {
            werr_setk(e, WERR_CONFIG, "profile %s has no xml schema for %s", v->profile->name,
                      in->display);
            return -1;
        }
        return xsdv_run(v->xml, in, &v->profile->limits, rep, fn, ctx, res, e);
    }
    werr_set(e, "%s: unknown format", in->display);
    return -1;
}
