/*
 * console: the web console `wharf run` serves (libmicrohttpd) -- a JSON API
 * (/api/v1/..., the same documents as the CLI's --json), plain HTML pages
 * for operators and auditors, Prometheus /metrics, /healthz and /readyz.
 *
 * It runs on libmicrohttpd's own threads (one per connection, bounded by
 * console.max_connections and max_per_ip) with its own ledger connection
 * per request, so it never blocks the server's main loop or its workers.
 * Requests that change something are done through the ledger the server
 * already watches (a replayed intake is unfinished work the server's due
 * scan picks up; a pause is a flag its polls read), except "poll now",
 * which the server's runner queues as a poll job (console_hooks).
 *
 * docs/api.md documents the API; docs/configuration.md the `console:` keys.
 */
#ifndef WHARF_CONSOLE_H
#define WHARF_CONSOLE_H

#include "config/config.h"
#include "util/err.h"

struct console;

/* What the server lends the console.  poll: queue a poll of the profile on
 * the server's runner (the same job, circuit and health bookkeeping as a
 * scheduled poll; at most one poll of a source at a time), called on a
 * console thread; NULL: "poll now" polls on the console's thread. */
struct console_hooks {
    void (*poll)(void *ctx, const char *profile);
    void *ctx;
};

/* Starts the console when cfg->console.enabled; NULL with e->msg empty when
 * it is not enabled, NULL with e filled when it cannot start (a listen
 * address off loopback without tls_cert/tls_key, a port in use, a TLS file
 * that cannot be read).  cfg must outlive the console; hooks may be NULL. */
struct console *console_start(const struct wharf_config *cfg, const struct console_hooks *hooks,
                              struct werr *e);
/* Stops serving and frees c (NULL is fine). */
void console_stop(struct console *c);

#endif
