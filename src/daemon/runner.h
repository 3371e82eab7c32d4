/*
 * runner: the one job queue of `wharf once` and `wharf run`.
 *
 * Jobs are "poll source P", "advance intake I" and "collect the due
 * intakes" (retries, and intakes an earlier run left unfinished).  They
 * are served by `workers` threads, each with its own ledger connection
 * (ledger_open on the configured backend) and pipeline.  The rules, all
 * here:
 *   - jobs start in queue order (FIFO), skipping one that may not start yet;
 *   - a profile never has more than its `concurrency:` intakes in flight;
 *     intakes are queued in claim order, so `order:` holds per profile;
 *   - an intake is queued or running at most once;
 *   - a source is polled by at most one job at a time; asking for a poll
 *     while one runs polls again right after it;
 *   - at most one "due" job is queued or running;
 *   - "advance" jobs beyond queue_max (0: no limit) are not queued: the next
 *     due job finds them (the server's back pressure);
 *   - what talks to an SFTP source (its polls, the take of each intake, the
 *     finish after sealing) runs on connection threads of their own, as
 *     many as the SFTP profiles' source.connections together (at most 64;
 *     a reload that asks for more starts them), at most `connections` jobs
 *     of a profile at once;
 *     an intake's advance waits for its take and stops at sealed, which
 *     queues its finish (runner.c says how, and what a server refusing
 *     sessions does).
 *
 * The profile set is shared by reference (daemon/profset.h): a job takes
 * the set current when it starts and finishes on it; runner_swap installs a
 * new set at once, never waiting for running jobs.  A queued job whose
 * profile is gone from the new set is dropped.
 *
 * Stopping: runner_stop lets running jobs reach their next committed state
 * (pipeline_request_stop is the caller's), drops queued ones and joins.
 */
#ifndef WHARF_RUNNER_H
#define WHARF_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/profset.h"
#include "pipeline.h"

struct runner;

struct runner_hooks {
    /* After every poll, on the worker that ran it: rc is pipeline_poll's
     * (e filled when < 0), ids the intakes it claimed (borrowed), st what
     * this poll counted (listed, claimed), l the worker's own ledger
     * connection.  May be NULL. */
    void (*polled)(void *ctx, struct ledger *l, const struct profile *p, int rc, char **ids,
                   size_t n, const struct pipeline_stats *st, const struct werr *e);
    void *ctx;
    /* Progress of long steps (a terminal's progress line); may be NULL. */
    progress_fn progress;
    void *progress_ctx;
};

/* Starts the workers on set (the reference is taken over).  NULL when no
 * worker thread could start. */
struct runner *runner_start(const struct wharf_config *cfg, struct profset *set, int workers,
                            size_t queue_max, const struct runner_hooks *hooks);
/* New jobs run on set from now on (the reference is taken over). */
void runner_swap(struct runner *r, struct profset *set);
/* A reference to the current set. */
struct profset *runner_profiles(struct runner *r);

/* Queue a poll of the profile's source (see the rules above).  asked: the
 * poll was asked for (a spool changed, a drop must be seen again to prove
 * it stable, `wharf once`), not only due by the schedule; with several
 * nodes, only a scheduled poll waits for the due time kept in the ledger
 * (ledger_poll_begin). */
void runner_poll(struct runner *r, const char *profile, bool asked);
/* Queue an advance of intake id of profile (an intake taken over from a
 * dead node), by the rules above. */
void runner_advance(struct runner *r, const char *id, const char *profile);
/* Take-over (ledger.h, "Nodes and leases"), for this process's node: up to
 * limit intakes in progress of the profiles named (comma-separated) whose
 * lease expired become this node's, each logged, any stale copy of it in
 * work/ removed and, when queue, its advance queued (else a due job finds
 * it).  How many, or -1 with e.  Nothing without a node identity. */
int runner_take_over(struct runner *r, struct ledger *l, const char *profiles, int64_t now,
                     int limit, bool queue, struct werr *e);
/* The enabled profiles of set, comma-separated (caller frees; "" when none). */
char *runner_enabled_profiles(const struct profile_set *set);
/* Queue a due job unless one is queued or running. */
void runner_due(struct runner *r);
/* Advance jobs queued and not started. */
size_t runner_backlog(struct runner *r);
/* Wait until no job is queued or running (wharf once). */
void runner_drain(struct runner *r);
/* What the jobs so far counted. */
void runner_stats(struct runner *r, struct pipeline_stats *st);
/* Ledger failures so far: a worker that could not connect, a due job that
 * could not list (each logged). */
int runner_errors(struct runner *r);
/* Stop and free (see above). */
void runner_stop(struct runner *r);

#endif
