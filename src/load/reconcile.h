/*
 * reconcile: does the target still hold what the ledger says was loaded?
 *
 * Per intake of a profile that loaded rows, the ledger knows (info.load,
 * written by the load step) the rows it left in the table and their key
 * digest, and (its "superseded" events) the rows later upserts or replaces
 * legitimately took out again.  reconcile_profile reads the target back
 * (target.h: intakes, tally; bounded memory, batched reads through the
 * _wharf_intake index) and reports every difference as a gap:
 *
 *   table_missing   the target table is gone
 *   load_missing    the target's wharf_loads has no row for the intake
 *                   (a restore from an older copy, a hand-made table)
 *   rows_missing    fewer rows carry the intake than the ledger expects
 *   rows_added      more rows carry the intake than the ledger expects
 *   digest_differs  as many rows, but not the same keys
 *   unknown_intake  rows carry an intake id that loaded nothing here
 *
 * The result is also kept in the ledger's kv under "reconcile:<profile>"
 * (JSON; reconcile_last reads it) so that `status` can show it.
 */
#ifndef WHARF_LOAD_RECONCILE_H
#define WHARF_LOAD_RECONCILE_H

#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "ledger/ledger.h"
#include "util/err.h"

#define RECONCILE_RUNBOOK "runbooks/reconcile-gap.md"

struct recon_gap {
    char intake[ID_LEN];
    char *file;       /* the partner's file name ("" for unknown_intake) */
    const char *kind; /* one of the words above */
    uint64_t expected, found;
};

struct recon_result {
    char *profile;
    char *target; /* "sqlite:var/warehouse.db#orders" */
    uint64_t intakes, rows;
    struct recon_gap *gaps;
    size_t n_gaps;
    int64_t time_ms, took_ms;
};

/* Reconcile one profile (intakes sealed since since_ms; 0 for all).
 * Returns 0 when it ran (gaps in out), -1 when it could not (e filled:
 * ledger or target unreadable).  Either way the outcome is recorded in the
 * ledger for status. */
int reconcile_profile(struct ledger *l, const struct wharf_config *cfg, const struct profile *p,
                      int64_t since_ms, struct recon_result *out, struct werr *e);
void recon_result_free(struct recon_result *r);
json_t *recon_result_json(const struct recon_result *r);
/* One line per gap: "profile intake file: what (runbook)". */
char *recon_gap_text(const struct recon_result *r, const struct recon_gap *g);
/* The last recorded outcome for a profile (JSON object, or NULL when never
 * reconciled); the caller decrefs. */
json_t *reconcile_last(struct ledger *l, const char *profile);

#endif
