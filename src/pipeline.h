/*
 * pipeline: one intake through the stages, in order.  The only module that
 * knows the order of source -> take -> inspect -> validate -> load -> seal ->
 * finish; stages never call each other.
 */
#ifndef WHARF_PIPELINE_H
#define WHARF_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "ledger/ledger.h"
#include "util/err.h"

struct pipeline;

/* Progress of a long step, for terminals (ingest, replay). */
typedef void (*progress_fn)(void *ctx, const char *intake, const char *step, uint64_t done,
                            uint64_t total, uint64_t rows);

struct pipeline_stats {
    unsigned listed, claimed, quarantined, refused;
    unsigned done, loaded, rejected, duplicates, failed, retrying;
    unsigned held; /* of those not finished: waiting for an earlier file (order:) */
};

/* One per thread: it owns its ledger connection and compiled schemas. */
struct pipeline *pipeline_new(const struct wharf_config *cfg, const struct profile_set *profiles,
                              struct ledger *ledger);
void pipeline_free(struct pipeline *pl);
/* Close sources (SFTP connections) unused for idle_ms; 0 closes all. */
void pipeline_release_sources(struct pipeline *pl, int64_t idle_ms);
void pipeline_set_progress(struct pipeline *pl, progress_fn fn, void *ctx);
/* Ask in-flight work to stop at the next safe point (SIGTERM). */
void pipeline_request_stop(void);
bool pipeline_stopping(void);

/* List the profile's source, quarantine unsafe entries, claim complete drops.
 * Claimed ids are appended to *ids (caller frees each and the array). */
int pipeline_poll(struct pipeline *pl, const struct profile *p, char ***ids, size_t *n,
                  struct pipeline_stats *st, struct werr *e);
/* Claim a local file for a profile now (wharf ingest). 1 claimed (id
 * filled), 0 already ingested (id of the earlier intake filled), -1 error. */
int pipeline_claim_file(struct pipeline *pl, const struct profile *p, const char *file,
                        char id[ID_LEN], struct werr *e);
/* Drive an intake from its current state until it is done, failed, or
 * waiting for a retry.  Returns its final state, or -1 on a ledger error. */
int pipeline_advance(struct pipeline *pl, const char *id, struct pipeline_stats *st);
/* pipeline_advance that stops once the intake reaches `until` (ST_TAKEN:
 * the take alone; ST_SEALED: all but finishing the source; -1: to the
 * end): the runner moves an SFTP profile's takes and finishes onto its
 * connections and the rest onto its workers.  With soft_connect, a take or
 * finish that cannot connect to its source records nothing on the intake
 * and returns PIPELINE_NO_CONNECTION with *e filled (the runner tries it
 * again once a connection of the profile is free).  st counts only intakes that got no further than
 * where they were asked to go (done, failed, waiting for a retry). */
#define PIPELINE_NO_CONNECTION (-2)
int pipeline_advance_to(struct pipeline *pl, const char *id, int until, bool soft_connect,
                        struct pipeline_stats *st, struct werr *e);
/* Collect unfinished intakes that are due (next attempt reached), oldest
 * first; profile NULL for all. */
int pipeline_due(struct pipeline *pl, const char *profile, char ***ids, size_t *n, struct werr *e);
/* Replay: a rejected (sealed) intake becomes a new intake from its sealed
 * original under the current profile; a failed one resumes where it
 * stopped.  1 done (new id, or the same id for a failed one), 0 already
 * replayed (the replay's id filled), -1 error. */
int pipeline_replay(struct pipeline *pl, const char *id, char new_id[ID_LEN], struct werr *e);

#endif
