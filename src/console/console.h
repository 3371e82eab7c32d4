/*
 * console: the web console `wharf run` serves (libmicrohttpd) -- a JSON API
 * (/api/v1/..., the same documents as the CLI's --json), plain HTML pages
 * for operators and auditors, Prometheus /metrics, /healthz and /readyz.
 *
 * It runs on libmicrohttpd's own threads (one per connection, bounded by
 * console.max_connections and max_per_ip) with its own ledger connection
 * per request, so it never blocks the server's main loop or its workers.
 * Requests that change something (replay, pause, resume, poll now) are done
 * through the ledger the server already watches: a replayed intake or a
 * claimed drop is unfinished work the server's due scan picks up.
 *
 * docs/api.md documents the API; docs/configuration.md the `console:` keys.
 */
#ifndef WHARF_CONSOLE_H
#define WHARF_CONSOLE_H

#include "config/config.h"
#include "util/err.h"

struct console;

/* Starts the console when cfg->console.enabled; NULL with e->msg empty when
 * it is not enabled, NULL with e filled when it cannot start (a listen
 * address off loopback without tls_cert/tls_key, a port in use, a TLS file
 * that cannot be read).  cfg must outlive the console. */
struct console *console_start(const struct wharf_config *cfg, struct werr *e);
/* Stops serving and frees c (NULL is fine). */
void console_stop(struct console *c);

#endif
