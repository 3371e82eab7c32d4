/*
 * xsd: XML against an XSD with libxml2, streaming (xmlTextReader), secure
 * (no DTD, no network, no entities, imports only inside schemas_dir), and
 * the shredding of xml.record / xml.fields into rows.
 */
#ifndef WHARF_XSD_H
#define WHARF_XSD_H

#include "validate/validate.h"

struct xsdv;

struct xsdv *xsdv_compile(const struct wharf_config *cfg, const struct profile *p, struct diags *d);
void xsdv_free(struct xsdv *x);
const struct columns *xsdv_columns(const struct xsdv *x);
int xsdv_run(struct xsdv *x, const struct validate_input *in, const struct limits_conf *lim,
             struct report *rep, row_fn fn, void *ctx, struct validate_result *res, struct werr *e);

#endif
