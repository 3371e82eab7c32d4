/*
 * sla: freshness of a profile against its `expect:` windows, and the alerts
 * the server sends when a window is missed.
 *
 * A window { days, by, missing_after, timezone } is due on each of its days
 * at `by` local time (timezone: the window's, else the schedule's, else
 * UTC).  The current instance of a window is the latest one whose `by` has
 * passed.  It is
 *   ok       when a file was loaded (outcome loaded, state done) since that
 *            day's local midnight; for an outbound profile, when a file was
 *            delivered to every partner since then (sla_settled_ms),
 *   late     otherwise, from `by`,
 *   missing  otherwise, from `by` + missing_after.
 * A profile's freshness is the worst of its windows.
 */
#ifndef WHARF_SLA_H
#define WHARF_SLA_H

#include <stdint.h>

#include "config/config.h"
#include "ledger/ledger.h"

enum sla_state { SLA_NONE, SLA_OK, SLA_LATE, SLA_MISSING };

struct sla_status {
    enum sla_state state;
    const struct expect_conf *window; /* the window reported; NULL: none due yet */
    const char *timezone;             /* the window's effective zone */
    char day[32];                     /* its local date, yyyy-mm-dd */
    char by[16];                      /* "07:00" */
    int64_t due_ms, missing_ms;       /* by, and by + missing_after */
    int64_t last_loaded_ms;           /* 0: never */
    char freshness[160];              /* "ok, last 06:12", "due 07:00, late since 07:00" */
};

const char *sla_state_name(enum sla_state s);

/* "Now" for SLA decisions: the wall clock, or WHARF_TEST_NOW (epoch ms or
 * "2026-03-30T07:30:00Z").  WHARF_TEST_NOW exists for the test suite only;
 * never set it on a real server. */
int64_t sla_now(void);

/* When an intake counts for freshness (0: it does not): an inbound file
 * when it is done with outcome loaded (its last update); an outbound file
 * once delivered to every partner (outcome loaded, in any later state),
 * at its last delivery. */
int64_t sla_settled_ms(const struct profile *p, const struct intake *in);
/* When the profile last loaded (outbound: delivered) a file (0: never; -1
 * on a ledger error). */
int64_t sla_last_loaded(struct ledger *l, const struct profile *p, struct werr *e);

/* One window's current instance, and the profile's worst of all windows
 * (state SLA_NONE when it has no `expect:`). */
void sla_window(const struct profile *p, const struct expect_conf *x, int64_t now,
                int64_t last_loaded, struct sla_status *out);
void sla_eval(const struct profile *p, int64_t now, int64_t last_loaded, struct sla_status *out);

/* The server's side: check every profile, alert on transitions into late or
 * missing (marked in the ledger kv "sla:<profile>:<day>:<by>", so a restart
 * does not alert again), log sla_late / sla_missing, and run wharf.yaml's
 * `alert:` command with the event as JSON on stdin; then every other event
 * of daemon/alert.h (rejects, failures, source down and up, stuck files).  Alert commands run in
 * the background with a timeout; sla_reap collects them and must be called
 * from the main loop; sla_free waits a moment for the last ones. */
struct sla;
struct sla *sla_new(const struct wharf_config *cfg);
void sla_check(struct sla *s, struct ledger *l, const struct profile_set *set, int64_t now);
void sla_reap(struct sla *s);
void sla_free(struct sla *s);
/* sla_free, waiting up to wait_ms for running alert commands (wharf once
 * waits for them: it is about to exit). */
void sla_finish(struct sla *s, int64_t wait_ms);

#endif
