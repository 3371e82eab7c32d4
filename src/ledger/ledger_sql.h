/*
 * ledger_sql: SQL text and helpers the ledger's backends share (private to
 * src/ledger/; nothing outside includes it).
 */
#ifndef WHARF_LEDGER_SQL_H
#define WHARF_LEDGER_SQL_H

#include "ledger/ledger.h"

/* "c1", "c2", ... of t, each quoted (malloc'd; the names are constants). */
char *ledger_col_list(const struct ledger_table *t);

/* ledger_nodes: the registered nodes and those only seen holding intakes in
 * progress, by name, with their intakes in progress and how many of those
 * have a lease expired at NOW (a placeholder: "?1", "$1::bigint"). */
#define LEDGER_NODES_SQL(NOW)                                                                      \
    "WITH held AS (SELECT node, count(*) AS busy, "                                                \
    "sum(CASE WHEN lease_until_ms IS NULL OR lease_until_ms < " NOW " THEN 1 ELSE 0 END) "         \
    "AS expired FROM intakes WHERE node IS NOT NULL AND state NOT IN ('done', 'failed') "          \
    "GROUP BY node) "                                                                              \
    "SELECT n.name, n.pid, n.started_ms, n.heartbeat_ms, COALESCE(h.busy, 0), "                  \
    "COALESCE(h.expired, 0) FROM nodes n LEFT JOIN held h ON h.node = n.name "                    \
    "UNION ALL SELECT h.node, 0, 0, 0, h.busy, h.expired FROM held h "                            \
    "WHERE h.node NOT IN (SELECT name FROM nodes) ORDER BY 1"

/* ledger_lease_takeover's candidates: intakes in progress whose lease
 * expired before NOW or that have none, oldest first, at most LIMIT. */
#define LEDGER_TAKEOVER_WHERE(NOW)                                                                 \
    "state NOT IN ('done', 'failed') AND (lease_until_ms IS NULL OR lease_until_ms < " NOW ") "

/* An action in the console's earlier log (kv "console:actions") succeeded
 * when its result was empty, "already replayed" or the new intake's id. */
#define LEGACY_OK(R)                                                                               \
    "CASE WHEN " R " IS NULL OR " R " = 'already replayed' OR length(" R ") = 26 THEN 1 ELSE 0 END"

/* ledger_actions: the newest LIMIT operator actions naming profile P (or
 * an intake of P), all when P is NULL, newest first. */
#define LEDGER_ACTIONS_SQL(P, LIMIT)                                                               \
    "SELECT time_ms, actor, action, profile, intake, ok, result FROM actions WHERE " P " IS NULL "     \
    "OR profile = " P " OR intake IN (SELECT id FROM intakes WHERE profile = " P ") "             \
    "ORDER BY id DESC LIMIT " LIMIT

/* ledger_poll_begin: this node polls PROFILE now unless another node's
 * poll lease is live, and (unless ASKED, 0 or 1) only once its next
 * scheduled poll is due; one row changed when it may. */
#define LEDGER_POLL_BEGIN_SQL(PROFILE, NODE, NOW, UNTIL, ASKED)                                    \
    "INSERT INTO polls (profile, node, next_ms, until_ms) VALUES (" PROFILE ", " NODE              \
    ", 0, " UNTIL ") ON CONFLICT (profile) DO UPDATE SET node = excluded.node, "                   \
    "until_ms = excluded.until_ms WHERE (polls.until_ms < " NOW " OR polls.node = " NODE ") "      \
    "AND (" ASKED " = 1 OR polls.next_ms <= " NOW ")"

/* ledger_poll_end: the lease ends, the next scheduled poll is due at NEXT. */
#define LEDGER_POLL_END_SQL(PROFILE, NODE, NEXT)                                                   \
    "UPDATE polls SET until_ms = 0, next_ms = " NEXT " WHERE profile = " PROFILE " AND node "      \
                                                                                 "= " NODE

/* ledger_kv_mark: key set to value unless it holds value or UNLESS; the
 * statement changes (or inserts) a row only when it sets it. */
#define LEDGER_KV_MARK_SQL(K, V, UNLESS)                                                           \
    "INSERT INTO kv (key, value) VALUES (" K ", " V ") ON CONFLICT (key) DO UPDATE SET value = "   \
    "excluded.value WHERE kv.value <> excluded.value AND (" UNLESS " IS NULL OR kv.value <> "      \
    UNLESS ")"

#endif
