/* STUB: replaced by the SQLite ledger backend (issue 2). */
#include "ledger/ledger.h"
#include <stddef.h>
struct ledger *ledger_open_sqlite(const char *path, struct werr *e)
{ werr_set(e, "%s: ledger not implemented", path); return NULL; }
