/*
 * console: the HTTP side of `wharf run` (see console.h).
 *
 * Owns: the libmicrohttpd daemon, the session table (random 256-bit tokens,
 * each with its own CSRF token, 12 h idle expiry), the login attempt table
 * (5 failures per client address per 5 minutes), the TLS key material read
 * at start.  Each request opens its own ledger connection and loads the
 * profiles, answers, and closes them.
 *
 * Routes (docs/api.md):
 *   GET  /healthz /readyz /metrics
 *   GET  /login  POST /login  POST /logout
 *   GET  /  /intakes  /intakes/ID  /rejects  /sources  /audit    (pages.c)
 *   GET  /bags/ID/FILE                                             bag files
 *   GET  /api/v1/{session,status,intakes,intakes/ID,rejects,sources,verify,export}
 *   POST /api/v1/login  /api/v1/intakes/ID/replay  /api/v1/profiles/P/{pause,resume,poll}
 *
 * Authentication: a session cookie (HttpOnly; SameSite=Strict; Secure under
 * TLS).  Every POST but the login carries the session's CSRF token (header
 * X-CSRF-Token or form field csrf).  The HTML login form carries a login
 * token bound to a cookie; the JSON login needs Content-Type
 * application/json, which no cross-site form can send.
 */
#include "console/console.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/views.h"
#include "console/internal.h"
#include "console/users.h"
#include "daemon/audit.h"
#include "daemon/health.h"
#include "pipeline.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define MAX_SESSIONS     256
#define SESSION_IDLE_MS  (12LL * 3600 * 1000)
#define MAX_ATTEMPT_IPS  256
#define LOGIN_FAILS      5
#define LOGIN_WINDOW_MS  (5LL * 60 * 1000)
#define MAX_HEADER_BYTES (32 * 1024)
#define TLS_FILE_MAX     (1024 * 1024)

#define session console_session

struct attempt {
    char ip[INET6_ADDRSTRLEN];
    int fails;
    int64_t since_ms;
};

struct console {
    const struct wharf_config *cfg;
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    struct session sess[MAX_SESSIONS];
    struct attempt att[MAX_ATTEMPT_IPS];
    bool tls;
    char *cert, *key;
    char *metrics_token; /* NULL: /metrics from loopback only */
    struct console_counters n;
    struct console_hooks hooks;
};

/* Per request: the body as it arrives. */
struct req {
    struct hbuf body;
    bool too_big;
};

static void random_hex(char out[65])
{
    unsigned char b[32];
    static const char hex[] = "0123456789abcdef";
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k < 0 && errno != EINTR)
            abort(); /* no randomness: never hand out a guessable session */
        if (k > 0)
            got += (size_t)k;
    }
    for (size_t i = 0; i < sizeof b; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[64] = 0;
}

/* Constant-time comparison of two NUL-terminated tokens. */
static bool token_eq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = na != nb;
    for (size_t i = 0; i < na && i < nb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0 && na > 0;
}

/* ---- addresses -------------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool *loopback,
                        struct werr *e)
{
    char host[128];
    const char *colon, *h = s;
    size_t hl;
    uint64_t port;
    memset(ss, 0, sizeof *ss);
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            goto bad;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        if (!(colon = strrchr(s, ':')))
            goto bad;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof host || parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = 0;
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else
        goto bad;
    return 0;
bad:
    werr_setk(e, WERR_CONFIG,
              "console.listen \"%s\": give ADDRESS:PORT (127.0.0.1:8470, [::1]:8470, "
              "0.0.0.0:8443)",
              s);
    return -1;
}

static void client_ip(struct MHD_Connection *conn, char ip[INET6_ADDRSTRLEN], bool *loopback)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(ip, INET6_ADDRSTRLEN, "?");
    *loopback = false;
    if (!ci || !ci->client_addr)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ci->client_addr;
        inet_ntop(AF_INET, &a->sin_addr, ip, INET6_ADDRSTRLEN);
        *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ci->client_addr;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, INET6_ADDRSTRLEN);
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
}

/* ---- responses -------------------------------------------------------- */

enum MHD_Result console_send(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *data, size_t n, const char *const *headers)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "img-src 'self'; connect-src 'self'; form-action 'self'; "
                            "frame-ancestors 'none'; base-uri 'none'");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result console_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    enum MHD_Result r;
    json_decref(j);
    if (!s)
        return MHD_NO;
    r = console_send(conn, status, "application/json", s, strlen(s), NULL);
    free(s);
    return r;
}

enum MHD_Result console_error(struct MHD_Connection *conn, unsigned status, const char *code,
                              const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return console_json(conn, status,
                        json_pack("{s:s,s:o}", "code", code, "message", esc_json(msg)));
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *to, const char *cookie)
{
    const char *h[] = {"Location", to, cookie ? "Set-Cookie" : NULL, cookie, NULL};
    return console_send(conn, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, h);
}

/* ---- sessions --------------------------------------------------------- */

static struct session *session_find(struct console *c, struct MHD_Connection *conn,
                                    struct session *copy)
{
    const char *tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "wharf_session");
    int64_t now = now_ms();
    struct session *found = NULL;
    if (!tok || strlen(tok) != 64)
        return NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &c->sess[i];
        if (!s->token[0])
            continue;
        if (now - s->last_ms > SESSION_IDLE_MS) {
            memset(s, 0, sizeof *s);
            continue;
        }
        if (token_eq(s->token, tok)) {
            s->last_ms = now;
            *copy = *s;
            found = copy;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void session_new(struct console *c, const char *user, enum user_role role,
                        struct session *out)
{
    size_t oldest = 0;
    memset(out, 0, sizeof *out);
    random_hex(out->token);
    random_hex(out->csrf);
    snprintf(out->user, sizeof out->user, "%s", user);
    out->role = role;
    out->last_ms = now_ms();
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        if (!c->sess[i].token[0]) {
            oldest = i;
            break;
        }
        if (c->sess[i].last_ms < c->sess[oldest].last_ms)
            oldest = i;
    }
    c->sess[oldest] = *out;
    pthread_mutex_unlock(&c->mu);
}

static void session_end(struct console *c, const char *token)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (c->sess[i].token[0] && token_eq(c->sess[i].token, token))
            memset(&c->sess[i], 0, sizeof c->sess[i]);
    pthread_mutex_unlock(&c->mu);
}

/* Login rate limit: false when ip has used its failures in the window. */
static bool login_allowed(struct console *c, const char *ip)
{
    bool ok = true;
    int64_t now = now_ms();
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MAX_ATTEMPT_IPS; i++)
        if (!strcmp(c->att[i].ip, ip) && now - c->att[i].since_ms < LOGIN_WINDOW_MS &&
            c->att[i].fails >= LOGIN_FAILS)
            ok = false;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void login_failed(struct console *c, const char *ip)
{
    int64_t now = now_ms();
    size_t slot = 0;
    pthread_mutex_lock(&c->mu);
    c->n.login_failures++;
    for (size_t i = 0; i < MAX_ATTEMPT_IPS; i++) {
        if (!strcmp(c->att[i].ip, ip)) {
            slot = i;
            goto have;
        }
        if (c->att[i].since_ms < c->att[slot].since_ms)
            slot = i;
    }
    snprintf(c->att[slot].ip, sizeof c->att[slot].ip, "%s", ip);
    c->att[slot].fails = 0;
    c->att[slot].since_ms = now;
have:
    if (now - c->att[slot].since_ms >= LOGIN_WINDOW_MS) {
        c->att[slot].fails = 0;
        c->att[slot].since_ms = now;
    }
    c->att[slot].fails++;
    pthread_mutex_unlock(&c->mu);
}

static char *session_cookie(struct console *c, const char *token, bool clear)
{
    return xasprintf("wharf_session=%s; Path=/; HttpOnly; SameSite=Strict%s%s", clear ? "" : token,
                     c->tls ? "; Secure" : "", clear ? "; Max-Age=0" : "");
}

/* ---- form bodies ------------------------------------------------------ */

/* The value of key in an application/x-www-form-urlencoded body, decoded
 * (malloc'd), or NULL. */
char *console_form_value(const char *body, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            char *v = xstrndup(p + kl + 1, (size_t)(end - p - (ptrdiff_t)kl - 1));
            for (char *q = v; *q; q++)
                if (*q == '+')
                    *q = ' ';
            MHD_http_unescape(v);
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ---- actions (operators) ---------------------------------------------- */

/* Records an operator's action in the ledger: in the actions table (who,
 * what, when, how it ended: `wharf show --profile`, the audit page) and, when
 * it was done on an intake, on that intake's events too (`wharf show ID`). */
static void record_action(struct ledger *l, const char *user, const char *action,
                          const char *profile, const char *intake, bool ok, const char *result)
{
    struct werr e;
    struct action a = {0, user, action, profile, intake, ok, result};
    if (intake && ok) {
        json_t *d = json_pack("{s:s,s:s,s:b,s:o}", "user", user, "action", action, "ok", ok,
                              "result", esc_json(result));
        if (ledger_event(l, intake, "console_action", d, &e) < 0)
            wlog(LOG_ERROR, profile, intake, "console_action", NULL, "cannot record: %s", e.msg);
    }
    if (ledger_action_add(l, &a, &e) < 0)
        wlog(LOG_ERROR, profile, intake, "console_action", NULL, "cannot record: %s", e.msg);
    wlog(LOG_INFO, profile, intake, "console_action", NULL, "%s by %s: %s", action, user,
         result ? result : "done");
}

/* Replays one reject or failed intake.  0 with new_id ("" when it was
 * already replayed), -1 with e. */
int console_replay(struct console_req *q, const char *id, char new_id[ID_LEN], struct werr *e)
{
    struct pipeline *pl = pipeline_new(q->cfg, &q->set, q->l);
    int k = pipeline_replay(pl, id, new_id, e);
    pipeline_free(pl);
    if (k == 0)
        new_id[0] = 0;
    char *res = k > 0 ? xasprintf("replayed as %s", new_id) : NULL;
    record_action(q->l, q->s.user, "replay", NULL, id, k >= 0,
                  k < 0    ? e->msg
                  : k == 0 ? "already replayed"
                           : res);
    free(res);
    if (k > 0)
        __atomic_add_fetch(&q->c->n.replays, 1, __ATOMIC_RELAXED);
    return k < 0 ? -1 : 0;
}

/* pause | resume | poll a profile. */
int console_profile_action(struct console_req *q, const char *profile, const char *action,
                           struct werr *e)
{
    const struct profile *p = profiles_find(&q->set, profile);
    int r = 0;
    if (!p) {
        werr_set(e, "no such profile");
        return -1;
    }
    if (!strcmp(action, "pause") || !strcmp(action, "resume"))
        r = ledger_set_paused(q->l, p->name, !strcmp(action, "pause"), e);
    else if (ledger_paused(q->l, p->name)) {
        werr_set(e, "%s is paused: resume it to poll it", p->name);
        record_action(q->l, q->s.user, action, p->name, NULL, false, e->msg);
        return -2;
    } else if (q->c->hooks.poll) {
        /* the server's runner polls it: one poll of a source at a time,
         * its health and circuit kept as for a scheduled poll */
        q->c->hooks.poll(q->c->hooks.ctx, p->name);
        record_action(q->l, q->s.user, action, p->name, NULL, true, "queued");
        return 0;
    } else {
        /* poll now, on this thread: the claims are the ledger's (unique per
         * drop), and the server's due scan enqueues them within seconds */
        struct pipeline *pl = pipeline_new(q->cfg, &q->set, q->l);
        struct pipeline_stats st = {0};
        char **ids = NULL;
        size_t n = 0;
        r = pipeline_poll(pl, p, &ids, &n, &st, e);
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        pipeline_release_sources(pl, 0);
        pipeline_free(pl);
    }
    record_action(q->l, q->s.user, action, p->name, NULL, r >= 0, r < 0 ? e->msg : NULL);
    return r;
}

/* ---- the request ------------------------------------------------------ */

static bool is_post(const char *m)
{
    return !strcmp(m, MHD_HTTP_METHOD_POST);
}

static enum MHD_Result do_login(struct console *c, struct MHD_Connection *conn, const char *body,
                                bool api, const char *ip)
{
    char *user = NULL, *pass = NULL;
    enum user_role role;
    struct werr e = {0};
    struct session s;
    enum MHD_Result r;
    int k;
    if (api) {
        json_t *j = json_loads(body, 0, NULL);
        const char *u = json_string_value(json_object_get(j, "user"));
        const char *p = json_string_value(json_object_get(j, "password"));
        user = u ? xstrdup(u) : NULL;
        pass = p ? xstrdup(p) : NULL;
        json_decref(j);
    } else {
        char *lt = console_form_value(body, "login_token");
        const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "wharf_login");
        bool ok = lt && ck && token_eq(lt, ck);
        free(lt);
        if (!ok)
            return console_error(conn, MHD_HTTP_FORBIDDEN, "csrf",
                                 "the login form is stale: load /login again");
        user = console_form_value(body, "user");
        pass = console_form_value(body, "password");
    }
    if (!user || !pass) {
        r = console_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request", "give user and password");
        goto out;
    }
    if (!login_allowed(c, ip)) {
        r = console_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                          "too many failed logins from this address: wait 5 minutes");
        goto out;
    }
    k = users_check(c->cfg->console.users_file, user, pass, &role, &e);
    if (k < 0) {
        wlog(LOG_ERROR, NULL, NULL, "console_login", NULL, "%s", e.msg);
        r = console_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                          "the users file cannot be read");
        goto out;
    }
    if (k == 0) {
        login_failed(c, ip);
        wlog(LOG_WARN, NULL, NULL, "console_login_failed", NULL, "from %s", ip);
        if (api)
            r = console_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                              "wrong user or password");
        else
            r = redirect(conn, "/login?failed=1", NULL);
        goto out;
    }
    session_new(c, user, role, &s);
    wlog(LOG_INFO, NULL, NULL, "console_login", NULL, "%s (%s) from %s", s.user, role_name(role),
         ip);
    char *cookie = session_cookie(c, s.token, false);
    if (api) {
        char *js = NULL;
        json_t *j =
            json_pack("{s:s,s:s,s:s}", "user", s.user, "role", role_name(role), "csrf", s.csrf);
        js = json_dumps(j, JSON_INDENT(2));
        const char *h[] = {"Set-Cookie", cookie, NULL};
        r = console_send(conn, MHD_HTTP_OK, "application/json", js, strlen(js), h);
        free(js);
        json_decref(j);
    } else
        r = redirect(conn, "/", cookie);
    free(cookie);
out:
    if (pass)
        explicit_bzero(pass, strlen(pass));
    free(user);
    free(pass);
    return r;
}

static enum MHD_Result login_page(struct console *c, struct MHD_Connection *conn)
{
    char tok[65];
    struct hbuf b = {0};
    const char *have = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "wharf_login");
    /* keep the browser's token: a page fetched twice must not void the first */
    if (have && strlen(have) == 64 && strspn(have, "0123456789abcdef") == 64)
        snprintf(tok, sizeof tok, "%s", have);
    else
        random_hex(tok);
    char *cookie = xasprintf("wharf_login=%s; Path=/login; HttpOnly; SameSite=Strict%s", tok,
                             c->tls ? "; Secure" : "");
    const char *failed = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "failed");
    page_login(&b, tok, failed != NULL);
    const char *h[] = {"Set-Cookie", cookie, NULL};
    enum MHD_Result r = console_send(conn, MHD_HTTP_OK, "text/html; charset=utf-8", b.s, b.n, h);
    free(cookie);
    free(b.s);
    return r;
}

/* Metrics: from loopback without a token; with metrics_token_file, only
 * with "Authorization: Bearer TOKEN". */
static bool metrics_allowed(struct console *c, struct MHD_Connection *conn, bool loopback)
{
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (c->metrics_token)
        return a && !strncmp(a, "Bearer ", 7) && token_eq(a + 7, c->metrics_token);
    return loopback;
}

static enum MHD_Result route(struct console *c, struct MHD_Connection *conn, const char *url,
                             const char *method, struct req *rq)
{
    char ip[INET6_ADDRSTRLEN];
    bool loopback, post = is_post(method);
    const char *body = rq->body.s ? rq->body.s : "";
    struct console_req q = {.c = c, .cfg = c->cfg, .conn = conn};
    enum MHD_Result r;
    struct werr e = {0};
    struct diags d = {0};

    client_ip(conn, ip, &loopback);
    __atomic_add_fetch(&c->n.requests, 1, __ATOMIC_RELAXED);
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD) && !post)
        return console_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method", "GET or POST only");
    if (!strcmp(url, "/healthz"))
        return console_send(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3, NULL);
    if (!strcmp(url, "/readyz")) {
        struct ledger *l =
            ledger_open(c->cfg->ledger_type, c->cfg->ledger_path, c->cfg->ledger_dsn_file, &e);
        char *v = NULL;
        bool ready = l && ledger_kv_get(l, "console:ready-probe", &v, &e) == 0;
        free(v);
        if (l)
            ledger_close(l);
        if (ready)
            return console_send(conn, MHD_HTTP_OK, "text/plain", "ready\n", 6, NULL);
        return console_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                             "the ledger cannot be read: %s", e.msg);
    }
    if (!strcmp(url, "/metrics")) {
        if (!metrics_allowed(c, conn, loopback))
            return console_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                 "metrics need the bearer token (console.metrics_token_file)");
        struct hbuf b = {0};
        if (metrics_render(c->cfg, &c->n, &b, &e) < 0) {
            free(b.s);
            return console_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "%s", e.msg);
        }
        r = console_send(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.s, b.n,
                         NULL);
        free(b.s);
        return r;
    }
    if (!strcmp(url, "/style.css") || !strcmp(url, "/console.js"))
        return page_static(conn, url);
    if (!strcmp(url, "/login"))
        return post ? do_login(c, conn, body, false, ip) : login_page(c, conn);
    if (!strcmp(url, "/api/v1/login")) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!post)
            return console_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method", "POST only");
        if (!ct || strncmp(ct, "application/json", 16))
            return console_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "media_type",
                                 "send the login as application/json");
        return do_login(c, conn, body, true, ip);
    }

    bool api = !strncmp(url, "/api/", 5);
    if (!session_find(c, conn, &q.s)) {
        if (api)
            return console_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                 "log in first (POST /api/v1/login)");
        return redirect(conn, "/login", NULL);
    }
    if (post) {
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
        char *f = h ? NULL : console_form_value(body, "csrf");
        bool ok = token_eq(h ? h : f ? f : "", q.s.csrf);
        free(f);
        if (!ok) {
            __atomic_add_fetch(&c->n.csrf_refused, 1, __ATOMIC_RELAXED);
            return console_error(conn, MHD_HTTP_FORBIDDEN, "csrf",
                                 "missing or wrong CSRF token (X-CSRF-Token)");
        }
        if (!strcmp(url, "/logout")) {
            char *cookie = session_cookie(c, "", true);
            session_end(c, q.s.token);
            r = redirect(conn, "/login", cookie);
            free(cookie);
            return r;
        }
        if (q.s.role != ROLE_OPERATOR) {
            __atomic_add_fetch(&c->n.role_refused, 1, __ATOMIC_RELAXED);
            return console_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
                                 "%s is a viewer: replay, pause, resume and poll need an operator",
                                 q.s.user);
        }
    }
    if (!(q.l = ledger_open(c->cfg->ledger_type, c->cfg->ledger_path, c->cfg->ledger_dsn_file, &e)))
        return console_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "ledger", "%s", e.msg);
    profiles_load(c->cfg, NULL, 0, &q.set, &d);
    diag_free(&d);
    q.body = body;
    q.post = post;
    if (api)
        r = api_route(&q, url + 4);
    else
        r = page_route(&q, url);
    profiles_free(&q.set);
    ledger_close(q.l);
    return r;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    struct console *c = cls;
    struct req *rq = *con_cls;
    (void)version;
    if (!rq) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        uint64_t n = 0;
        rq = xcalloc(1, sizeof *rq);
        *con_cls = rq;
        if (cl && (parse_uint(cl, UINT64_MAX, &n) < 0 || n > c->cfg->console.max_request)) {
            __atomic_add_fetch(&c->n.too_big, 1, __ATOMIC_RELAXED);
            return console_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_big",
                                 "the request is larger than console.max_request (%llu bytes)",
                                 (unsigned long long)c->cfg->console.max_request);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (rq->body.n + *upload_data_size > c->cfg->console.max_request)
            rq->too_big = true;
        else
            hbuf_put(&rq->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->too_big) {
        __atomic_add_fetch(&c->n.too_big, 1, __ATOMIC_RELAXED);
        return console_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_big",
                             "the request is larger than console.max_request (%llu bytes)",
                             (unsigned long long)c->cfg->console.max_request);
    }
    return route(c, conn, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rq) {
        free(rq->body.s);
        free(rq);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    wlog(LOG_WARN, NULL, NULL, "console_http", NULL, "%s", msg);
}

static char *read_small(const char *path, struct werr *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        werr_sysk(e, WERR_CONFIG, "%s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
        werr_setk(e, WERR_CONFIG, "%s: not a regular file of at most 1 MiB", path);
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0) {
            werr_sysk(e, WERR_CONFIG, "%s", path);
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)k;
    }
    buf[got] = 0;
out:
    if (fd >= 0)
        close(fd);
    return buf;
}

struct console *console_start(const struct wharf_config *cfg, const struct console_hooks *hooks,
                              struct werr *e)
{
    const struct console_conf *cc = &cfg->console;
    struct sockaddr_storage ss;
    socklen_t len;
    bool loopback;
    struct console *c;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

    e->msg[0] = 0;
    if (!cc->enabled)
        return NULL;
    if (parse_listen(cc->listen, &ss, &len, &loopback, e) < 0)
        return NULL;
    if (!loopback && (!cc->tls_cert || !cc->tls_key)) {
        werr_setk(e, WERR_CONFIG,
                  "console.listen %s is not a loopback address: set console.tls_cert and "
                  "console.tls_key (the console will not serve passwords in clear text)",
                  cc->listen);
        return NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->cfg = cfg;
    if (hooks)
        c->hooks = *hooks;
    pthread_mutex_init(&c->mu, NULL);
    if (cc->tls_cert) {
        if (!(c->cert = read_small(cc->tls_cert, e)) || !(c->key = read_small(cc->tls_key, e)))
            goto fail;
        c->tls = true;
        flags |= MHD_USE_TLS;
    }
    if (cc->metrics_token_file) {
        if (!(c->metrics_token = read_small(cc->metrics_token_file, e)))
            goto fail;
        c->metrics_token[strcspn(c->metrics_token, "\r\n")] = 0;
        if (strlen(c->metrics_token) < 16) {
            werr_setk(e, WERR_CONFIG, "%s: the metrics token must be at least 16 characters",
                      cc->metrics_token_file);
            goto fail;
        }
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[] = {
        {c->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, c->cert},
        {c->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, c->key},
        {MHD_OPTION_END, 0, NULL},
    };
    c->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, c, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, c,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cc->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cc->max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cc->timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MAX_HEADER_BYTES, MHD_OPTION_NOTIFY_COMPLETED,
        completed, c, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!c->d) {
        werr_setk(e, WERR_CONFIG,
                  "console cannot listen on %s (in use, not an address of this host, or the "
                  "TLS key and certificate do not match)",
                  cc->listen);
        goto fail;
    }
    wlog(LOG_INFO, NULL, NULL, "console", NULL, "console on %s://%s/ (users: %s)",
         c->tls ? "https" : "http", cc->listen, cc->users_file);
    return c;
fail:
    console_stop(c);
    return NULL;
}

void console_stop(struct console *c)
{
    if (!c)
        return;
    if (c->d)
        MHD_stop_daemon(c->d);
    pthread_mutex_destroy(&c->mu);
    free(c->cert);
    if (c->key)
        explicit_bzero(c->key, strlen(c->key));
    free(c->key);
    free(c->metrics_token);
    explicit_bzero(c->sess, sizeof c->sess);
    free(c);
}
