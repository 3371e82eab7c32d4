/*
 * api: the console's JSON API, /api/v1/... (docs/api.md).  Every document
 * is the CLI's --json one, built by the same function (cli/views.c,
 * daemon/health.c); errors are {"code": ..., "message": ...}.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/views.h"
#include "console/internal.h"
#include "daemon/audit.h"
#include "daemon/health.h"
#include "source/ssh.h"
#include "util/escape.h"
#include "util/ids.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define PAGE_MAX 1000

static const char *arg(struct console_req *q, const char *k)
{
    const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, k);
    return v && *v ? v : NULL;
}

static enum MHD_Result ledger_failed(struct console_req *q, const struct werr *e)
{
    return console_error(q->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "ledger", "%s", e->msg);
}

/* /intakes filters: profile, state, outcome, name (substring), since,
 * until (dates), limit (default 50), offset. */
struct page_ctx {
    json_t *arr;
    const char *name;
    int outcome; /* -1 any */
    int64_t until_ms;
    uint64_t offset, limit, seen, total;
};

static int page_cb(void *c, const struct intake *in)
{
    struct page_ctx *x = c;
    if (x->outcome >= 0 && (int)in->outcome != x->outcome)
        return 0;
    if (x->name && (!in->name || !strstr(in->name, x->name)))
        return 0;
    if (x->until_ms && in->created_ms >= x->until_ms)
        return 0;
    x->total++;
    if (x->seen++ < x->offset || json_array_size(x->arr) >= x->limit)
        return 0;
    json_array_append_new(x->arr, intake_json(in));
    return 0;
}

int api_intake_page(struct console_req *q, json_t **out, struct werr *e, char *why, size_t whyn)
{
    struct intake_filter f = {.state = -1, .newest_first = true};
    struct page_ctx x = {.outcome = -1, .limit = 50};
    const char *v;
    uint64_t n;
    f.profile = arg(q, "profile");
    if ((v = arg(q, "state"))) {
        enum intake_state s;
        if (state_parse(v, &s) < 0)
            return snprintf(why, whyn, "unknown state \"%s\"", v), -2;
        f.state = (int)s;
    }
    if ((v = arg(q, "outcome"))) {
        enum outcome o;
        if (outcome_parse(v, &o) < 0)
            return snprintf(why, whyn, "unknown outcome \"%s\"", v), -2;
        x.outcome = (int)o;
    }
    if ((v = arg(q, "since")) && parse_date(v, &f.updated_since_ms) < 0)
        return snprintf(why, whyn, "since: not a date (2026-11-01)"), -2;
    if ((v = arg(q, "until")) && parse_date(v, &x.until_ms) < 0)
        return snprintf(why, whyn, "until: not a date (2026-11-01)"), -2;
    if ((v = arg(q, "limit"))) {
        if (parse_uint(v, PAGE_MAX, &n) < 0 || !n)
            return snprintf(why, whyn, "limit: a number from 1 to %d", PAGE_MAX), -2;
        x.limit = n;
    }
    if ((v = arg(q, "offset"))) {
        if (parse_uint(v, 100000000, &n) < 0)
            return snprintf(why, whyn, "offset: a number"), -2;
        x.offset = n;
    }
    x.name = arg(q, "name");
    x.arr = json_array();
    if (ledger_list(q->l, &f, page_cb, &x, e) < 0) {
        json_decref(x.arr);
        return -1;
    }
    *out = json_pack("{s:o,s:I,s:I,s:I}", "intakes", x.arr, "total", (json_int_t)x.total, "offset",
                     (json_int_t)x.offset, "limit", (json_int_t)x.limit);
    return 0;
}

/* The host keys pinned for host:port in known_hosts (plain entries;
 * hashed ones cannot be listed without the key), as
 * [{"type": "ssh-ed25519", "fingerprint": "SHA256:..."}]. */
static json_t *pinned_keys(const char *known_hosts, const char *host, int port)
{
    json_t *out = json_array();
    char line[16384], want[300];
    FILE *f = known_hosts ? fopen(known_hosts, "re") : NULL;
    if (!f)
        return out;
    if (port == 22)
        snprintf(want, sizeof want, "%s", host);
    else
        snprintf(want, sizeof want, "[%s]:%d", host, port);
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *hosts = strtok_r(line, " \t\r\n", &save);
        char *type = strtok_r(NULL, " \t\r\n", &save), *b64 = strtok_r(NULL, " \t\r\n", &save);
        bool match = false;
        if (!hosts || hosts[0] == '#' || hosts[0] == '@' || !type || !b64)
            continue;
        for (char *h, *s2 = NULL, *hl = hosts; (h = strtok_r(hl, ",", &s2)); hl = NULL)
            if (!strcmp(h, want))
                match = true;
        size_t n = strlen(b64);
        if (!match || n > 8192 || n % 4)
            continue;
        unsigned char *blob = malloc(n);
        int len = blob ? EVP_DecodeBlock(blob, (unsigned char *)b64, (int)n) : -1;
        if (len > 0) {
            char fp[SSH_FP_LEN];
            len -= (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
            ssh_fingerprint(blob, (size_t)len, fp);
            json_array_append_new(
                out, json_pack("{s:o,s:s}", "type", esc_json(type), "fingerprint", fp));
        }
        free(blob);
    }
    fclose(f);
    return out;
}

/* Sources: where each profile's files come from and how that went. */
json_t *api_sources(struct console_req *q)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < q->set.n; i++) {
        const struct profile *p = q->set.v[i];
        struct source_health sh;
        json_t *o =
            json_pack("{s:s,s:s,s:s?,s:s?,s:o,s:b,s:b}", "profile", p->name, "type",
                      p->source.type == SOURCE_SFTP ? "sftp" : "spool", "host", p->source.host,
                      "user", p->source.user, "path", esc_json(p->source.path), "enabled",
                      p->enabled, "paused", ledger_paused(q->l, p->name));
        if (p->source.type == SOURCE_SFTP) {
            json_object_set_new(o, "port", json_integer(p->source.port));
            json_object_set_new(
                o, "host_keys",
                pinned_keys(p->source.known_hosts ? p->source.known_hosts : q->cfg->known_hosts,
                            p->source.host, p->source.port));
        }
        if (ledger_source_health(q->l, p->name, &sh)) {
            char a[32], b[32], s[32];
            format_time_ms(sh.last_poll_ms, a);
            format_time_ms(sh.last_ok_ms, b);
            format_time_ms(sh.since_ms, s);
            json_object_set_new(o, "health",
                                json_pack("{s:b,s:s,s:s?,s:s?,s:i,s:s?,s:o,s:s?,s:s}", "ok", sh.ok,
                                          "last_poll", a, "last_ok", sh.last_ok_ms ? b : NULL,
                                          "down_since", sh.ok ? NULL : s, "failed_polls", sh.fails,
                                          "kind", sh.ok ? NULL : sh.kind, "error",
                                          sh.ok ? json_null() : esc_json(sh.error), "runbook",
                                          sh.ok ? NULL : sh.runbook, "circuit",
                                          sh.ok           ? "closed"
                                          : sh.fails >= 3 ? "open"
                                                          : "closed"));
        } else
            json_object_set_new(o, "health", json_null());
        json_array_append_new(arr, o);
    }
    return arr;
}

/* The CSV export (the CLI's, same function), spooled to an unnamed temp
 * file and streamed from it: memory stays bounded however long the list. */
static enum MHD_Result export_csv(struct console_req *q, int64_t since_ms)
{
    struct werr e;
    FILE *f = tmpfile();
    long size;
    int fd;
    if (!f)
        return console_error(q->conn, 500, "internal", "no temp file for the export");
    if (view_export_csv(q->l, since_ms, f, &e) < 0 || (size = ftell(f)) < 0 ||
        (fd = dup(fileno(f))) < 0) {
        fclose(f);
        return console_error(q->conn, 500, "export", "%s", e.msg);
    }
    fclose(f);
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/csv; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition", "attachment; filename=\"wharf-export.csv\"");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(q->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result post_route(struct console_req *q, const char *path)
{
    struct werr e = {0};
    char id[ID_LEN + 8], new_id[ID_LEN], prof[128], action[16];
    int n = 0;
    if (sscanf(path, "/v1/intakes/%33[0-9A-Za-z]/replay%n", id, &n) == 1 && !path[n]) {
        if (console_replay(q, id, new_id, &e) < 0)
            return console_error(q->conn, MHD_HTTP_CONFLICT, "replay", "%s", e.msg);
        return console_json(q->conn, MHD_HTTP_OK,
                            json_pack("{s:s,s:s?,s:b}", "replayed", id, "intake",
                                      new_id[0] ? new_id : NULL, "already_replayed", !new_id[0]));
    }
    if (sscanf(path, "/v1/profiles/%127[^/]/%15[a-z]%n", prof, action, &n) == 2 && !path[n] &&
        (!strcmp(action, "pause") || !strcmp(action, "resume") || !strcmp(action, "poll"))) {
        if (!profiles_find(&q->set, prof))
            return console_error(q->conn, MHD_HTTP_NOT_FOUND, "not_found", "no such profile");
        int k = console_profile_action(q, prof, action, &e);
        if (k < 0)
            return console_error(q->conn, k == -2 ? MHD_HTTP_CONFLICT : MHD_HTTP_BAD_GATEWAY,
                                 action, "%s", e.msg);
        return console_json(q->conn, MHD_HTTP_OK,
                            json_pack("{s:s,s:s,s:s,s:b}", "profile", prof, "action", action,
                                      "by", q->s.user, "queued", !strcmp(action, "poll")));
    }
    return console_error(q->conn, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

enum MHD_Result api_route(struct console_req *q, const char *path)
{
    struct werr e = {0};
    json_t *j = NULL;
    char why[200];
    if (q->post)
        return post_route(q, path);
    if (!strcmp(path, "/v1/session"))
        return console_json(q->conn, MHD_HTTP_OK,
                            json_pack("{s:s,s:s,s:s}", "user", q->s.user, "role",
                                      role_name(q->s.role), "csrf", q->s.csrf));
    if (!strcmp(path, "/v1/status")) {
        if (!(j = view_status(q->l, &q->set, sla_now(), &e)))
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strcmp(path, "/v1/nodes")) { /* wharf status --nodes --json */
        if (!(j = view_nodes(q->l, sla_now(), &e)))
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strcmp(path, "/v1/intakes")) {
        int r = api_intake_page(q, &j, &e, why, sizeof why);
        if (r == -2)
            return console_error(q->conn, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
        if (r < 0)
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strncmp(path, "/v1/intakes/", 12)) {
        const char *id = path + 12;
        if (strlen(id) < 6 || strlen(id) > 26 ||
            strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != strlen(id))
            return console_error(q->conn, MHD_HTTP_BAD_REQUEST, "bad_request", "not an intake id");
        int r = view_intake(q->l, id, &j, &e);
        if (r < 0)
            return ledger_failed(q, &e);
        if (!r)
            return console_error(q->conn, MHD_HTTP_NOT_FOUND, "not_found", "no such intake");
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strcmp(path, "/v1/rejects")) {
        struct intake_filter f = {.state = -1,
                                  .newest_first = true,
                                  .rejects = true,
                                  .with_failed = true,
                                  .profile = arg(q, "profile")};
        if (!(j = view_intakes(q->l, &f, true, &e)))
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strcmp(path, "/v1/sources"))
        return console_json(q->conn, MHD_HTTP_OK, api_sources(q));
    if (!strcmp(path, "/v1/slas")) {
        json_t *st = view_status(q->l, &q->set, sla_now(), &e), *o, *out = json_array();
        size_t i;
        if (!st) {
            json_decref(out);
            return ledger_failed(q, &e);
        }
        json_array_foreach(st, i, o) json_array_append_new(
            out, json_pack("{s:O,s:O,s:O,s:O?}", "profile", json_object_get(o, "profile"), "sla",
                           json_object_get(o, "sla"), "freshness", json_object_get(o, "freshness"),
                           "timezone", json_object_get(o, "timezone")));
        json_decref(st);
        return console_json(q->conn, MHD_HTTP_OK, out);
    }
    if (!strcmp(path, "/v1/actions")) { /* wharf show --profile P --json */
        const char *lim = arg(q, "limit");
        int n = lim ? atoi(lim) : 100;
        if (n < 1 || n > 1000)
            return console_error(q->conn, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "limit is 1 to 1000");
        if (!(j = view_actions(q->l, arg(q, "profile"), n, &e)))
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    if (!strcmp(path, "/v1/verify")) {
        audit_last(q->l, &j);
        return console_json(q->conn, MHD_HTTP_OK, j ? j : json_null());
    }
    if (!strcmp(path, "/v1/export")) {
        const char *since = arg(q, "since");
        int64_t ms;
        if (!since || parse_date(since, &ms) < 0)
            return console_error(q->conn, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "give since=DATE (2026-11-01)");
        const char *fmt = arg(q, "format");
        if (fmt && !strcmp(fmt, "csv"))
            return export_csv(q, ms);
        if (fmt && strcmp(fmt, "json"))
            return console_error(q->conn, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "format is csv or json");
        if (!(j = view_export(q->l, ms, &e)))
            return ledger_failed(q, &e);
        return console_json(q->conn, MHD_HTTP_OK, j);
    }
    return console_error(q->conn, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}
