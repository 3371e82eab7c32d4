/* STUB: replaced by the XSD engine (issue 5). */
#include "validate/xsd.h"
struct xsdv *xsdv_compile(const struct wharf_config *cfg, const struct profile *p, struct diags *d)
{ (void)cfg; diag_add(d, p->file, 0, 0, "xml.schema", "XSD not implemented"); return NULL; }
void xsdv_free(struct xsdv *x) { (void)x; }
const struct columns *xsdv_columns(const struct xsdv *x) { (void)x; return NULL; }
int xsdv_run(struct xsdv *x, const struct validate_input *in, const struct limits_conf *lim,
             struct report *rep, row_fn fn, void *ctx, struct validate_result *res, struct werr *e)
{ (void)x; (void)in; (void)lim; (void)rep; (void)fn; (void)ctx; (void)res;
  werr_set(e, "xml: not implemented"); return -1; }
