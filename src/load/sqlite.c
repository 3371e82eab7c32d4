/* STUB: replaced by the SQLite target (issue 3). */
#include "load/target.h"
static int sq_open(struct target *t, const struct wharf_config *cfg, const struct profile *p, struct werr *e)
{ (void)t; (void)cfg; (void)p; werr_set(e, "sqlite target: not implemented"); return -1; }
static void sq_close(struct target *t) { (void)t; }
const struct target_ops target_sqlite_ops = { .name = "sqlite", .open = sq_open, .close = sq_close };
