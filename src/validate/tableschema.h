/*
 * tableschema: Frictionless Table Schema (JSON or YAML file, or inline
 * `fields:` in the profile) compiled into per-field checkers, and the CSV
 * validation driver over the tokenizer in csv.h.
 */
#ifndef WHARF_TABLESCHEMA_H
#define WHARF_TABLESCHEMA_H

#include "validate/validate.h"

struct tschema;

struct tschema *tschema_compile(const struct wharf_config *cfg, const struct profile *p,
                                struct diags *d);
void tschema_free(struct tschema *s);
const struct columns *tschema_columns(const struct tschema *s);
int csvv_run(struct tschema *s, const struct profile *p, const struct validate_input *in,
             struct report *rep, row_fn fn, void *ctx, const char *invalid_csv,
             struct validate_result *res, struct werr *e);

#endif
