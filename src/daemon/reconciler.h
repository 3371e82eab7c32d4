/*
 * reconciler: the server's scheduled `wharf reconcile` (reconcile.every in
 * wharf.yaml, or per profile).
 *
 * One thread of its own, so the main loop never waits on a target: for
 * each profile whose reconcile.every has passed since its last recorded
 * run (load/reconcile.h, kv "reconcile:<profile>"), it reconciles that
 * profile and records the outcome, which `status` shows (a gap makes the
 * profile `gap`) and the alert checks send (`reconcile_gap`).  Profiles
 * are read afresh each round, so a reload needs nothing from it.  A server
 * stopping between profiles stops; one in the middle of a profile finishes
 * that profile first (reads are batched: it is short).
 */
#ifndef WHARF_RECONCILER_H
#define WHARF_RECONCILER_H

#include "config/config.h"

struct reconciler;

/* Starts the thread; it idles while no profile has a reconcile.every
 * (profiles may gain one with a reload).  NULL when it cannot start. */
struct reconciler *reconciler_start(const struct wharf_config *cfg);
void reconciler_stop(struct reconciler *r);

#endif
