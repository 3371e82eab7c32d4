/*
 * views: the JSON documents the CLI's --json prints and the console's API
 * serves -- one code path for both (status, intakes, rejects, one intake).
 *
 * Each returns a new reference, or NULL with e filled on a ledger error.
 */
#ifndef WHARF_VIEWS_H
#define WHARF_VIEWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "ledger/ledger.h"

/* `wharf status --json`: one object per profile (health_json + "source"). */
json_t *view_status(struct ledger *l, const struct profile_set *set, int64_t now, struct werr *e);
/* `wharf status --nodes --json`: every node the ledger knows (ledger_nodes),
 * by name: name, pid, started, heartbeat (ISO time or null when it never
 * beat), heartbeat_age_s (at now), in_progress, expired_leases. */
json_t *view_nodes(struct ledger *l, int64_t now, struct werr *e);
/* `wharf show --profile P --json` and the console's audit: the newest
 * `limit` operator actions on profile P (NULL: all), newest first: time,
 * actor, action, profile, intake, ok, result. */
json_t *view_actions(struct ledger *l, const char *profile, int limit, struct werr *e);
/* `wharf intakes --json` / `wharf rejects --json` (rejects: each with "kind"
 * rejected|failed; f must already ask for rejects and failed ones). */
json_t *view_intakes(struct ledger *l, const struct intake_filter *f, bool rejects, struct werr *e);
/* `wharf show --json`: 1 and *out set, 0 when there is no such intake, -1 on
 * a ledger error. */
int view_intake(struct ledger *l, const char *id, json_t **out, struct werr *e);
/* `wharf export --format json`: every sealed intake created since since_ms. */
json_t *view_export(struct ledger *l, int64_t since_ms, struct werr *e);
/* `wharf export --format csv` into out (one row per sealed intake; cells a
 * spreadsheet would run as formulas neutralised). */
int view_export_csv(struct ledger *l, int64_t since_ms, FILE *out, struct werr *e);

#endif
