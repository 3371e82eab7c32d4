/*
 * console internals shared by console.c (HTTP, sessions), api.c (the JSON
 * API), pages.c (HTML) and metrics.c (/metrics).
 */
#ifndef WHARF_CONSOLE_INTERNAL_H
#define WHARF_CONSOLE_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "console/users.h"
#include "ledger/ledger.h"
#include "util/html.h"

struct console;

/* What the console itself counts (for /metrics). */
struct console_counters {
    uint64_t requests, login_failures, csrf_refused, role_refused, too_big, replays;
};

struct console_session {
    char token[65];
    char csrf[65];
    char user[65];
    enum user_role role;
    int64_t last_ms;
};

/* One authenticated request. */
struct console_req {
    struct console *c;
    const struct wharf_config *cfg;
    struct MHD_Connection *conn;
    struct console_session s;
    struct ledger *l;       /* this request's own connection */
    struct profile_set set; /* the profiles as on disk now */
    const char *body;
    bool post;
};

enum MHD_Result console_error(struct MHD_Connection *conn, unsigned status, const char *code,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
char *console_form_value(const char *body, const char *key);
enum MHD_Result console_send(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *data, size_t n, const char *const *headers);
enum MHD_Result console_json(struct MHD_Connection *conn, unsigned status, json_t *j);
int console_replay(struct console_req *q, const char *id, char new_id[ID_LEN], struct werr *e);
/* pause | resume | poll: 0 done (a poll: queued on the server's runner),
 * -2 refused as it stands (poll of a paused profile), -1 failed; e says why. */
int console_profile_action(struct console_req *q, const char *profile, const char *action,
                           struct werr *e);

/* api.c: path after "/api" ("/v1/status"). */
enum MHD_Result api_route(struct console_req *q, const char *path);
/* pages.c */
enum MHD_Result page_route(struct console_req *q, const char *url);
enum MHD_Result page_static(struct MHD_Connection *conn, const char *url);
void page_login(struct hbuf *b, const char *login_token, bool failed);
/* metrics.c */
int metrics_render(const struct wharf_config *cfg, const struct console_counters *n, struct hbuf *b,
                   struct werr *e);

#endif
