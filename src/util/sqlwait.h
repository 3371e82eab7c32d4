/*
 * sqlwait: the busy handler of every SQLite connection wharf opens (ledger
 * and target).  SQLite's own busy timeout sleeps 1, 2, 5, 10, ... ms and then
 * tries again, so a worker that meets another worker's write transaction in
 * the same process loses milliseconds per meeting: with two workers on small
 * files that was 4 sleeps a file and most of the wall time (strace of
 * `wharf once` on 2,000 files: 8,083 sleeps in sqlite3InvokeBusyHandler).
 * Here a waiter sleeps on a process-wide condition that each commit (of a
 * transaction that wrote) and rollback of a connection of this process
 * signals, so it retries as soon as the lock is free; a lock held by another
 * process (the CLI beside the server), or released without a signal, is
 * retried every 2 ms.  Either way it gives up after
 * timeout_ms, like sqlite3_busy_timeout.
 *
 * sqlwait_install also takes over SQLite's WAL hook (that is where a commit
 * is seen after its locks are released) and checkpoints as SQLite's default
 * hook does, at 1,000 WAL pages.  Do not call sqlite3_wal_hook or
 * sqlite3_wal_autocheckpoint on the connection afterwards.
 */
#ifndef WHARF_SQLWAIT_H
#define WHARF_SQLWAIT_H

#include <sqlite3.h>

void sqlwait_install(sqlite3 *db, int timeout_ms);

#endif
