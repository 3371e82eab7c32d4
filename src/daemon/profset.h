/*
 * profset: a loaded profile set shared by reference.  The server's main
 * thread, each worker's pipeline and the housekeeping thread hold one; a
 * reload swaps in a new set at once and the old one is freed when the last
 * job that runs on it drops its reference.
 */
#ifndef WHARF_PROFSET_H
#define WHARF_PROFSET_H

#include <stdatomic.h>

#include "config/config.h"

struct profset {
    struct profile_set set; /* read-only once shared */
    atomic_int refs;
};

/* Takes over set's contents (set is left empty); one reference. */
struct profset *profset_new(struct profile_set *set);
/* A new reference to ps (ps may be NULL). */
struct profset *profset_hold(struct profset *ps);
/* Drops a reference; the last one frees the profiles. */
void profset_drop(struct profset *ps);

#endif
