/*
 * alert: wharf.yaml's `alert:` command, run for every event a person must
 * hear about, each event once.
 *
 * Events (the JSON on the command's stdin names profile, intake, kind,
 * reason and runbook, plus the kind's own fields):
 *
 *   rejected     an intake was rejected (one alert per intake)
 *   failed       an intake was parked as failed (one per intake and attempt count)
 *   source_down  a poll could not list the source (one per outage)
 *   source_up    the first successful poll after an outage
 *   stuck        a file sat in the source longer than health.stuck_after
 *                without becoming complete (one per file)
 *   tampered     the scheduled verify (daemon/audit.h) found a bag of the
 *                profile, or the chain, changed (one per distinct finding)
 *   late/missing an `expect:` window was missed (daemon/sla.c, one per window)
 *   reconcile_gap  the last reconcile found the target not holding what was
 *                loaded, or could not read it (one per distinct finding)
 *
 * What was alerted is marked in the ledger (kv "alert:...") before the
 * command runs: a crash can lose an alert, never repeat one.  The command
 * runs as /bin/sh -c in its own process group with the event on stdin, at
 * most ALERT_MAX at once, killed after 30 s.
 */
#ifndef WHARF_ALERT_H
#define WHARF_ALERT_H

#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "ledger/ledger.h"

struct alerter;

struct alerter *alert_new(const struct wharf_config *cfg);
/* Log the event and run the command with it (event is borrowed). */
void alert_send(struct alerter *a, const char *profile, const char *intake, json_t *event);
/* Collect finished commands, kill those past their time.  Call often. */
void alert_reap(struct alerter *a);
/* Every profile's new events since the last check: rejects, failures, the
 * source going down and coming back, stuck files. */
void alert_check(struct alerter *a, struct ledger *l, const struct profile_set *set, int64_t now);
/* Wait up to wait_ms for running commands, kill the rest, free. */
void alert_free(struct alerter *a, int64_t wait_ms);

/* The common fields of every event. */
json_t *alert_event(const char *kind, const char *profile, const char *intake, const char *reason,
                    const char *runbook, int64_t now);

#endif
