/* STUB: replaced by the Table Schema engine (issue 5). */
#include "validate/tableschema.h"
struct tschema *tschema_compile(const struct wharf_config *cfg, const struct profile *p, struct diags *d)
{ (void)cfg; diag_add(d, p->file, 0, 0, "csv.schema", "Table Schema not implemented"); return NULL; }
void tschema_free(struct tschema *s) { (void)s; }
const struct columns *tschema_columns(const struct tschema *s) { (void)s; return NULL; }
int csvv_run(struct tschema *s, const struct profile *p, const struct validate_input *in,
             struct report *rep, row_fn fn, void *ctx, const char *invalid_csv,
             struct validate_result *res, struct werr *e)
{ (void)s; (void)p; (void)in; (void)rep; (void)fn; (void)ctx; (void)invalid_csv; (void)res;
  werr_set(e, "csv: not implemented"); return -1; }
