/*
 * health: one state per profile, with a one-line reason and the runbook to
 * read -- the truth `wharf status`, `status --json`, the console and the
 * alerts all tell, computed in one place from the ledger.
 *
 * A profile can have several problems at once; each is an issue, and the
 * state shown is the most severe one.  In order, least severe first:
 *
 *   ok         nothing wrong
 *   waiting    files not complete yet, or intakes in progress (normal work)
 *   late       an `expect:` window passed without a loaded file (outbound:
 *              without a delivered one)
 *   missing    ... and its missing_after passed too
 *   flooding   health.flood.duplicates duplicates within flood.within
 *   rejecting  the last health.rejecting_after finished intakes were rejected
 *   retrying   an intake waits for a retry after a transient failure
 *   stuck      a file (or its temporary upload name) sat in the source
 *              longer than health.stuck_after without becoming complete
 *   failing    intakes parked as failed (retries used up, or permanent)
 *   gap        the last `wharf reconcile` found the target no longer
 *              holding what was loaded (or could not read it)
 *   tampered   the server's last scheduled verify (verify.every) found a
 *              bag of this profile, or the chain, not as sealed
 *   down       the last poll could not list the source, or (outbound) a
 *              partner's server failed DESTINATION_CIRCUIT_AFTER deliveries
 *              in a row: its circuit is open
 *   disabled   `enabled: false`
 *   paused     `wharf pause`
 *
 * late and missing rank below the problems that explain them (a stuck
 * upload, a source that is down, a locked target make a file late), so the
 * state names the cause and the symptom is listed with it.  Operator
 * decisions (disabled, paused) rank highest: they explain everything else.
 *
 * Times are epoch ms; "now" is sla_now() (WHARF_TEST_NOW in tests).
 */
#ifndef WHARF_HEALTH_H
#define WHARF_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "daemon/sla.h"
#include "ledger/ledger.h"
#include "util/sha256.h"

enum health_state {
    HEALTH_OK,
    HEALTH_WAITING,
    HEALTH_LATE,
    HEALTH_MISSING,
    HEALTH_FLOODING,
    HEALTH_REJECTING,
    HEALTH_RETRYING,
    HEALTH_STUCK,
    HEALTH_FAILING,
    HEALTH_GAP,
    HEALTH_TAMPERED,
    HEALTH_DOWN,
    HEALTH_DISABLED,
    HEALTH_PAUSED,
    HEALTH__COUNT
};

const char *health_state_name(enum health_state s);

struct health_issue {
    enum health_state state;
    char reason[1200];
    char runbook[96];    /* "" when there is nothing to read */
    char intake[ID_LEN]; /* the intake it is about, "" when none */
    char finding[SHA256_HEX_LEN]; /* what was found, without when ("" when not
                                     set): alerts go once per distinct finding */
};

/* A file in the source that never became complete. */
struct health_file {
    char *path;
    uint64_t size;
    int64_t appeared_ms; /* first seen at this path */
    bool temp;           /* a temporary upload name (ignored until renamed) */
    char why[160];       /* what it still waits for */
};

/* An outbound profile's deliver: entry and what its deliveries found. */
struct health_destination {
    char *to; /* deliver_url */
    struct destination_health h;
};

struct health {
    const char *profile;
    enum health_state state;                  /* issue[0]'s, or ok */
    struct health_issue issue[HEALTH__COUNT]; /* most severe first */
    size_t n_issues;
    int64_t now_ms;
    /* the facts the issues come from */
    int64_t last_loaded_ms; /* 0: never (outbound: the last delivery, sla_settled_ms) */
    uint64_t backlog, rejects, failed, retrying, duplicates;
    uint64_t held; /* unfinished, waiting for an earlier intake (order:) */
    struct sla_status sla;
    bool polled; /* the source was ever polled */
    struct source_health source;
    struct health_file *stuck, *waiting;
    size_t n_stuck, n_waiting;
    struct health_destination *dest; /* outbound: one per deliver: entry */
    size_t n_dest;
    json_t *verify;    /* the last scheduled verify (daemon/audit.h), NULL: none */
    json_t *reconcile; /* the last reconcile's outcome (load/reconcile.h), NULL: never */
};

/* Computes h for profile p.  -1 on a ledger error (e filled). */
int health_eval(struct ledger *l, const struct profile *p, int64_t now, struct health *h,
                struct werr *e);
void health_clear(struct health *h);
/* The JSON of `wharf status --json` for one profile (a new reference). */
json_t *health_json(const struct health *h);
/* "2 h 5 min", "40 s": an age or a wait for a person to read. */
void health_age(int64_t ms, char *buf, size_t n);

#endif
