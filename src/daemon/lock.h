/*
 * lock: one server per state directory.  An flock(2)ed file
 * <state_dir>/wharf.pid holding the holder's pid; the kernel drops the lock
 * when the process dies, so a crash never leaves a stale lock.
 */
#ifndef WHARF_LOCK_H
#define WHARF_LOCK_H

#include "config/config.h"
#include "util/err.h"

/* Returns the lock fd (keep it open), -1 on error, -2 when held (e says by whom). */
int statelock_acquire(const struct wharf_config *cfg, struct werr *e);

#endif
