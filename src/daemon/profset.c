/*
 * profset: see profset.h.  The count is atomic: references are taken under
 * the runner's lock but dropped wherever a job ends.
 */
#include "daemon/profset.h"

#include <stdlib.h>

#include "util/xmalloc.h"

struct profset *profset_new(struct profile_set *set)
{
    struct profset *ps = xcalloc(1, sizeof *ps);
    ps->set = *set;
    *set = (struct profile_set){0};
    atomic_init(&ps->refs, 1);
    return ps;
}

struct profset *profset_hold(struct profset *ps)
{
    if (ps)
        atomic_fetch_add(&ps->refs, 1);
    return ps;
}

void profset_drop(struct profset *ps)
{
    if (!ps || atomic_fetch_sub(&ps->refs, 1) != 1)
        return;
    profiles_free(&ps->set);
    free(ps);
}
