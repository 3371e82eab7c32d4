/*
 * audit: the server's scheduled re-verification of the archive
 * (wharf.yaml `verify: { every: 24h, rate: 32MB }`).
 *
 * One thread of its own, so the main loop never waits on a disk: every
 * `every` it runs seal/verify over the whole archive, re-hashing at most
 * `rate` bytes per second so it never competes with loads, and records the
 * result in the ledger (kv "verify:last", JSON).  `wharf status` shows a
 * failed result as `tampered` on the profiles whose bags are affected, and
 * the alert checks send it (daemon/alert.h).  A server stopping in the
 * middle abandons the run; the next start runs it again when due.
 */
#ifndef WHARF_AUDIT_H
#define WHARF_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "ledger/ledger.h"

struct audit;

/* Starts the thread (NULL when verify.every is 0). */
struct audit *audit_start(const struct wharf_config *cfg);
/* Stops it (an unfinished run is abandoned) and frees. */
void audit_stop(struct audit *a);

/* The last recorded run: 1 filled (*out a new reference: {"time": ms,
 * "ok": bool, "bags", "links", "problems", "first", "tampered": [{"intake",
 * "problem"}...]}), 0 never run. */
int audit_last(struct ledger *l, json_t **out);

#endif
