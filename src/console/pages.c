/*
 * pages: the console's HTML, rendered on the server from the same JSON the
 * API serves (so a page never knows more or less than `--json`).  Plain
 * HTML and CSS; readable without JavaScript; forms POST with the session's
 * CSRF token.  Every value from the ledger passes through html_escape.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/views.h"
#include "console/internal.h"
#include "daemon/audit.h"
#include "daemon/health.h"
#include "util/parse.h"
#include "util/xmalloc.h"

int api_intake_page(struct console_req *q, json_t **out, struct werr *e, char *why, size_t whyn);
json_t *api_sources(struct console_req *q);

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}"
    "header{background:#123;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}"
    "header a{color:#cde}header form{margin-left:auto}main{padding:1em}"
    ".cards{display:flex;flex-wrap:wrap;gap:1em}.card{background:#fff;border:1px solid #ccc;"
    "border-left:6px solid #4a4;padding:.7em;width:22em}.card.bad{border-left-color:#c22;"
    "background:#fff4f4}.card.warn{border-left-color:#e90}.state{font-weight:bold}"
    "table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.25em .5em;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#fff;padding:.5em;"
    "border:1px solid #ddd}.err{color:#c22}svg.chart{width:100%;height:60px;display:block}"
    ".legend{font-size:12px;color:#666}";
static const char js[] = "/* wharf console: reading works without this file */\n"
                         "document.querySelectorAll('form.confirm').forEach(function(f){"
                         "f.addEventListener('submit',function(ev){"
                         "if(!confirm(f.dataset.confirm))ev.preventDefault();});});\n";

enum MHD_Result page_static(struct MHD_Connection *conn, const char *url)
{
    if (!strcmp(url, "/style.css"))
        return console_send(conn, MHD_HTTP_OK, "text/css", css, sizeof css - 1, NULL);
    return console_send(conn, MHD_HTTP_OK, "text/javascript", js, sizeof js - 1, NULL);
}

static void head(struct hbuf *b, const char *title, const struct console_req *q)
{
    hbuf_puts(b, "<!doctype html><html lang=en><head><meta charset=utf-8><title>");
    html_escape(b, title);
    hbuf_puts(b, " - wharf</title><link rel=stylesheet href=/style.css>"
                 "<script src=/console.js defer></script></head><body><header><b>wharf</b>");
    if (q) {
        hbuf_puts(b, "<a href=/>overview</a><a href=/intakes>intakes</a><a href=/rejects>rejects"
                     "</a><a href=/sources>sources</a><a href=/audit>audit</a>"
                     "<form method=post action=/logout><span>");
        html_escape(b, q->s.user);
        hbuf_printf(b,
                    " (%s)</span> <input type=hidden name=csrf value=%s>"
                    "<button>log out</button></form>",
                    role_name(q->s.role), q->s.csrf);
    }
    hbuf_puts(b, "</header><main><h1>");
    html_escape(b, title);
    hbuf_puts(b, "</h1>");
}

static enum MHD_Result finish(struct console_req *q, struct hbuf *b)
{
    hbuf_puts(b, "</main></body></html>\n");
    enum MHD_Result r =
        console_send(q->conn, MHD_HTTP_OK, "text/html; charset=utf-8", b->s, b->n, NULL);
    free(b->s);
    return r;
}

void page_login(struct hbuf *b, const char *login_token, bool failed)
{
    head(b, "Log in", NULL);
    if (failed)
        hbuf_puts(b, "<p class=err>Wrong user or password.</p>");
    hbuf_printf(b,
                "<form method=post action=/login><input type=hidden name=login_token value=%s>"
                "<p><label>User <input name=user autocomplete=username required></label></p>"
                "<p><label>Password <input name=password type=password "
                "autocomplete=current-password required></label></p>"
                "<p><button>Log in</button></p></form></main></body></html>\n",
                login_token);
}

static const char *js_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long js_int(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void td(struct hbuf *b, const char *s)
{
    hbuf_puts(b, "<td>");
    html_escape(b, s);
    hbuf_puts(b, "</td>");
}

static void intake_link(struct hbuf *b, const char *id)
{
    hbuf_puts(b, "<td><a href=\"/intakes/");
    url_escape(b, id);
    hbuf_puts(b, "\">");
    html_escape(b, id);
    hbuf_puts(b, "</a></td>");
}

static bool state_bad(const char *s)
{
    return !strcmp(s, "rejecting") || !strcmp(s, "failing") || !strcmp(s, "down") ||
           !strcmp(s, "tampered") || !strcmp(s, "gap") || !strcmp(s, "missing") ||
           !strcmp(s, "stuck");
}

/* Intakes and rows per hour for one profile over the last `hours`,
 * newest bucket last. */
struct chart_ctx {
    int64_t from_ms;
    int hours;
    uint64_t *intakes, *rows;
};

static int chart_cb(void *c, const struct intake *in)
{
    struct chart_ctx *x = c;
    if (in->created_ms < x->from_ms)
        return 0;
    int64_t k = (in->created_ms - x->from_ms) / 3600000;
    if (k >= 0 && k < x->hours) {
        x->intakes[k]++;
        if (in->outcome == OUT_LOADED)
            x->rows[k] += in->rows;
    }
    return 0;
}

/* A server-rendered SVG: bars for intakes per hour, a line for rows. */
static void chart(struct console_req *q, struct hbuf *b, const char *profile, int hours)
{
    uint64_t intakes[168] = {0}, rows[168] = {0}, maxi = 1, maxr = 1, ti = 0, tr = 0;
    int64_t now = now_ms();
    struct chart_ctx x = {now - (now % 3600000) + 3600000 - (int64_t)hours * 3600000, hours,
                          intakes, rows};
    struct intake_filter f = {.profile = profile, .state = -1, .updated_since_ms = x.from_ms};
    struct werr e;
    const int W = 336, H = 60;
    if (ledger_list(q->l, &f, chart_cb, &x, &e) < 0) {
        hbuf_puts(b, "<p class=err>chart: ");
        html_escape(b, e.msg);
        hbuf_puts(b, "</p>");
        return;
    }
    for (int i = 0; i < hours; i++) {
        maxi = intakes[i] > maxi ? intakes[i] : maxi;
        maxr = rows[i] > maxr ? rows[i] : maxr;
        ti += intakes[i];
        tr += rows[i];
    }
    hbuf_printf(b,
                "<svg class=chart viewBox=\"0 0 %d %d\" preserveAspectRatio=none role=img>"
                "<title>%llu intakes, %llu rows loaded in the last %s</title>"
                "<rect width=%d height=%d fill=\"#fafafa\" stroke=\"#ddd\"/>",
                W, H, (unsigned long long)ti, (unsigned long long)tr,
                hours == 24 ? "24 h" : "7 days", W, H);
    double bw = (double)W / hours;
    for (int i = 0; i < hours; i++)
        if (intakes[i]) {
            double h = (double)intakes[i] / (double)maxi * (H - 4);
            hbuf_printf(b,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        "fill=\"#8ab\"/>",
                        i * bw, H - h, bw > 2 ? bw - 1 : bw, h);
        }
    hbuf_puts(b, "<polyline fill=none stroke=\"#d60\" stroke-width=1.5 points=\"");
    for (int i = 0; i < hours; i++)
        hbuf_printf(b, "%.1f,%.1f ", i * bw + bw / 2,
                    H - 2 - (double)rows[i] / (double)maxr * (H - 4));
    hbuf_printf(b,
                "\"/></svg><p class=legend>bars: intakes per hour (max %llu); line: rows "
                "loaded per hour (max %llu)</p>",
                (unsigned long long)maxi, (unsigned long long)maxr);
}

static enum MHD_Result overview(struct console_req *q)
{
    const char *range = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "range");
    int hours = range && !strcmp(range, "7d") ? 168 : 24;
    struct hbuf b = {0};
    struct werr e;
    json_t *st = view_status(q->l, &q->set, sla_now(), &e), *o;
    size_t i;
    if (!st)
        return console_error(q->conn, 500, "ledger", "%s", e.msg);
    head(&b, "Overview", q);
    hbuf_puts(&b, hours == 24 ? "<p>last 24 h &middot; <a href=\"/?range=7d\">7 days</a></p>"
                              : "<p><a href=\"/\">24 h</a> &middot; last 7 days</p>");
    hbuf_puts(&b, "<div class=cards>");
    json_array_foreach(st, i, o)
    {
        const char *state = js_str(o, "state");
        hbuf_printf(&b, "<section class=\"card %s\" data-profile=\"",
                    state_bad(state)                                  ? "bad"
                    : strcmp(state, "ok") && strcmp(state, "waiting") ? "warn"
                                                                      : "ok");
        html_escape(&b, js_str(o, "profile"));
        hbuf_puts(&b, "\"><h2>");
        html_escape(&b, js_str(o, "profile"));
        hbuf_puts(&b, "</h2><p class=state>");
        html_escape(&b, state);
        hbuf_puts(&b, "</p><p class=reason>");
        html_escape(&b, js_str(o, "reason"));
        hbuf_puts(&b, "</p><p>last load: ");
        html_escape(&b, js_str(o, "last_loaded")[0] ? js_str(o, "last_loaded") : "never");
        hbuf_printf(&b,
                    "<br>backlog %lld, rejects %lld, failed %lld<br>SLA: ", js_int(o, "backlog"),
                    js_int(o, "rejects"), js_int(o, "failed"));
        html_escape(&b, js_str(o, "freshness")[0] ? js_str(o, "freshness") : "no expect: window");
        hbuf_puts(&b, "</p>");
        chart(q, &b, js_str(o, "profile"), hours);
        if (js_int(o, "rejects") || js_int(o, "failed")) {
            hbuf_puts(&b, "<p><a href=\"/rejects?profile=");
            url_escape(&b, js_str(o, "profile"));
            hbuf_puts(&b, "\">rejects and failed</a></p>");
        }
        hbuf_puts(&b, "</section>");
    }
    hbuf_puts(&b, "</div>");
    json_decref(st);
    return finish(q, &b);
}

static void intake_rows(struct hbuf *b, json_t *arr)
{
    json_t *o;
    size_t i;
    hbuf_puts(b, "<table><tr><th>intake<th>profile<th>file<th>state<th>outcome<th>rows"
                 "<th>updated<th>reason</tr>");
    json_array_foreach(arr, i, o)
    {
        char rows[32];
        snprintf(rows, sizeof rows, "%lld", js_int(o, "rows"));
        hbuf_puts(b, "<tr>");
        intake_link(b, js_str(o, "id"));
        td(b, js_str(o, "profile"));
        td(b, js_str(o, "name"));
        td(b, js_str(o, "state"));
        td(b, js_str(o, "outcome"));
        td(b, rows);
        td(b, js_str(o, "updated"));
        td(b, js_str(o, "last_error"));
        hbuf_puts(b, "</tr>");
    }
    hbuf_puts(b, "</table>");
}

static enum MHD_Result intakes(struct console_req *q)
{
    struct hbuf b = {0};
    struct werr e;
    json_t *j;
    char why[200];
    int r = api_intake_page(q, &j, &e, why, sizeof why);
    if (r == -2)
        return console_error(q->conn, 400, "bad_request", "%s", why);
    if (r < 0)
        return console_error(q->conn, 500, "ledger", "%s", e.msg);
    head(&b, "Intakes", q);
    hbuf_puts(&b, "<form method=get action=/intakes>profile <input name=profile> state <input "
                  "name=state size=8> outcome <input name=outcome size=8> file <input name=name>"
                  " since <input name=since size=10> <button>filter</button></form>");
    intake_rows(&b, json_object_get(j, "intakes"));
    long long off = js_int(j, "offset"), lim = js_int(j, "limit"), tot = js_int(j, "total");
    hbuf_printf(&b, "<p>%lld to %lld of %lld, newest first", tot ? off + 1 : 0,
                off + (long long)json_array_size(json_object_get(j, "intakes")), tot);
    if (off + lim < tot) {
        /* the next page keeps the filters */
        static const char *keep[] = {"profile", "state", "outcome", "name", "since", "until", NULL};
        hbuf_printf(&b, " &middot; <a href=\"/intakes?offset=%lld&amp;limit=%lld", off + lim, lim);
        for (int i = 0; keep[i]; i++) {
            const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, keep[i]);
            if (v && *v) {
                hbuf_printf(&b, "&amp;%s=", keep[i]);
                url_escape(&b, v);
            }
        }
        hbuf_puts(&b, "\">next</a>");
    }
    hbuf_puts(&b, "</p>");
    json_decref(j);
    return finish(q, &b);
}

#define REPORT_SHOWN (64 * 1024)

/* Calls fn for each regular file of the bag at dir: its tag files and
 * data/<name>; every open is relative to a directory fd, nothing followed. */
static void bag_walk(const char *dir, void (*fn)(void *, const char *rel), void *ctx)
{
    int top = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0)
        return;
    for (int pass = 0; pass < 2; pass++) {
        int fd = pass == 0 ? dup(top)
                           : openat(top, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        if (!d) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        while ((de = readdir(d))) {
            struct stat st;
            if (de->d_name[0] == '.' ||
                fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            char rel[600];
            snprintf(rel, sizeof rel, "%s%s", pass ? "data/" : "", de->d_name);
            fn(ctx, rel);
        }
        closedir(d);
    }
    close(top);
}

struct bag_links {
    struct hbuf *b;
    const char *id;
};

static void bag_link(void *c, const char *rel)
{
    struct bag_links *x = c;
    hbuf_puts(x->b, "<li><a href=\"/intakes/");
    url_escape(x->b, x->id);
    hbuf_puts(x->b, "/bag?f=");
    url_escape(x->b, rel);
    hbuf_puts(x->b, "\" download>");
    html_escape(x->b, rel);
    hbuf_puts(x->b, "</a></li>");
}

struct bag_find {
    const char *want;
    bool found;
};

static void bag_match(void *c, const char *rel)
{
    struct bag_find *x = c;
    if (!strcmp(x->want, rel))
        x->found = true;
}

/* GET /intakes/ID/bag?f=NAME: one file of the intake's bag, streamed; only
 * a name the bag's own listing has. */
static enum MHD_Result bag_file(struct console_req *q, const char *id)
{
    const char *f = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "f");
    struct intake in = {0};
    struct werr e;
    struct stat st;
    enum MHD_Result r;
    int fd = -1, top = -1;
    if (!f)
        return console_error(q->conn, 400, "bad_request", "give f=FILE");
    int k = ledger_get(q->l, id, &in, &e);
    if (k <= 0 || !in.bag) {
        intake_clear(&in);
        return k < 0 ? console_error(q->conn, 500, "ledger", "%s", e.msg)
                     : console_error(q->conn, 404, "not_found", "no such intake or no bag yet");
    }
    struct bag_find x = {f, false};
    bag_walk(in.bag, bag_match, &x);
    if (x.found && (top = open(in.bag, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
        if (!strncmp(f, "data/", 5)) {
            int dd = openat(top, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (dd >= 0) {
                fd = openat(dd, f + 5, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                close(dd);
            }
        } else
            fd = openat(top, f, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        close(top);
    }
    intake_clear(&in);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return console_error(q->conn, 404, "not_found", "no such file in the bag");
    }
    /* a download name of safe characters only */
    char name[128];
    const char *base = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
    size_t n = 0;
    for (; base[n] && n < sizeof name - 1; n++) {
        char ch = base[n];
        name[n] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'
                      ? ch
                      : '_';
    }
    name[n] = 0;
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    char disp[200];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", name[0] ? name : "file");
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "Content-Disposition", disp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    r = MHD_queue_response(q->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* The reject report (report.txt in the bag), at most REPORT_SHOWN bytes. */
static void report_block(struct hbuf *b, const char *bag)
{
    int top = bag ? open(bag, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    int fd = top >= 0 ? openat(top, "report.txt", O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    char *buf = NULL;
    ssize_t k = 0, got = 0;
    if (fd >= 0) {
        buf = malloc(REPORT_SHOWN + 1);
        while (buf && got < REPORT_SHOWN && (k = read(fd, buf + got, REPORT_SHOWN - got)) > 0)
            got += k;
        if (buf) {
            buf[got] = 0;
            hbuf_puts(b, "<h2>Reject report</h2><pre class=report>");
            html_escape_lines(b, buf);
            hbuf_puts(b, "</pre>");
        }
        free(buf);
        close(fd);
    }
    if (top >= 0)
        close(top);
}

static void replay_form(struct console_req *q, struct hbuf *b, const char *id)
{
    if (q->s.role != ROLE_OPERATOR)
        return;
    hbuf_puts(b, "<form method=post class=confirm data-confirm=\"Replay this intake?\" "
                 "action=\"/intakes/");
    url_escape(b, id);
    hbuf_printf(b,
                "/replay\"><input type=hidden name=csrf value=%s><button class=replay>replay"
                "</button></form>",
                q->s.csrf);
}

static enum MHD_Result intake_page(struct console_req *q, const char *id)
{
    struct hbuf b = {0};
    struct werr e;
    json_t *j, *ev;
    size_t i;
    int r = view_intake(q->l, id, &j, &e);
    if (r < 0)
        return console_error(q->conn, 500, "ledger", "%s", e.msg);
    if (!r)
        return console_error(q->conn, 404, "not_found", "no such intake");
    head(&b, "Intake", q);
    hbuf_puts(&b, "<table>");
    const char *keys[] = {"id",      "profile",    "name",      "state",       "outcome", "sha256",
                          "created", "last_error", "replay_of", "replayed_by", "bag",     NULL};
    for (i = 0; keys[i]; i++) {
        hbuf_printf(&b, "<tr><th>%s</th>", keys[i]);
        if (!strcmp(keys[i], "replay_of") || !strcmp(keys[i], "replayed_by")) {
            if (js_str(j, keys[i])[0])
                intake_link(&b, js_str(j, keys[i]));
            else
                td(&b, "");
        } else
            td(&b, js_str(j, keys[i]));
        hbuf_puts(&b, "</tr>");
    }
    hbuf_printf(&b,
                "<tr><th>rows</th><td>%lld</td></tr><tr><th>size</th><td>%lld</td></tr>"
                "</table>",
                js_int(j, "rows"), js_int(j, "size"));
    const char *state = js_str(j, "state"), *outcome = js_str(j, "outcome");
    if ((!strcmp(outcome, "rejected") || !strcmp(state, "failed")) && !js_str(j, "replayed_by")[0])
        replay_form(q, &b, js_str(j, "id"));
    hbuf_puts(&b, "<h2>Journey</h2><ol class=timeline>");
    json_array_foreach(json_object_get(j, "events"), i, ev)
    {
        char *d = json_dumps(json_object_get(ev, "detail"),
                             JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        hbuf_puts(&b, "<li><time>");
        html_escape(&b, js_str(ev, "time"));
        hbuf_puts(&b, "</time> <b>");
        html_escape(&b, js_str(ev, "kind"));
        hbuf_puts(&b, "</b> <code>");
        html_escape(&b, d && strcmp(d, "null") ? d : "");
        hbuf_puts(&b, "</code></li>");
        free(d);
    }
    hbuf_puts(&b, "</ol>");
    if (!strcmp(outcome, "rejected"))
        report_block(&b, js_str(j, "bag")[0] ? js_str(j, "bag") : NULL);
    if (js_str(j, "bag")[0]) {
        struct bag_links bl = {&b, js_str(j, "id")};
        hbuf_puts(&b, "<h2>Bag files</h2><ul class=bag>");
        bag_walk(js_str(j, "bag"), bag_link, &bl);
        hbuf_puts(&b, "</ul>");
    }
    hbuf_puts(&b, "<h2>Evidence</h2><pre>");
    char *info =
        json_dumps(json_object_get(j, "info"), JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    html_escape_lines(&b, info ? info : "{}");
    free(info);
    hbuf_puts(&b, "</pre>");
    json_decref(j);
    return finish(q, &b);
}

static enum MHD_Result rejects(struct console_req *q)
{
    struct hbuf b = {0};
    struct werr e;
    json_t *o;
    size_t i;
    const char *p = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "profile");
    struct intake_filter f = {.state = -1,
                              .newest_first = true,
                              .rejects = true,
                              .with_failed = true,
                              .profile = p && *p ? p : NULL};
    json_t *arr = view_intakes(q->l, &f, true, &e);
    if (!arr)
        return console_error(q->conn, 500, "ledger", "%s", e.msg);
    head(&b, "Rejects and failed", q);
    hbuf_puts(&b, "<table><tr><th>intake<th>profile<th>kind<th>file<th>when<th>reason<th></tr>");
    json_array_foreach(arr, i, o)
    {
        hbuf_puts(&b, "<tr class=reject>");
        intake_link(&b, js_str(o, "id"));
        td(&b, js_str(o, "profile"));
        td(&b, js_str(o, "kind"));
        td(&b, js_str(o, "name"));
        td(&b, js_str(o, "updated"));
        td(&b, js_str(o, "last_error"));
        hbuf_puts(&b, "<td>");
        replay_form(q, &b, js_str(o, "id"));
        hbuf_puts(&b, "</td></tr>");
    }
    hbuf_puts(&b, "</table>");
    json_decref(arr);
    return finish(q, &b);
}

static enum MHD_Result sources(struct console_req *q)
{
    struct hbuf b = {0};
    json_t *arr = api_sources(q), *o;
    size_t i;
    head(&b, "Sources", q);
    hbuf_puts(&b, "<table><tr><th>profile<th>type<th>where<th>health<th>circuit<th>last poll"
                  "<th>error<th>pinned host key</tr>");
    json_array_foreach(arr, i, o)
    {
        json_t *h = json_object_get(o, "health");
        hbuf_puts(&b, "<tr>");
        td(&b, js_str(o, "profile"));
        td(&b, js_str(o, "type"));
        hbuf_puts(&b, "<td>");
        if (js_str(o, "host")[0]) {
            html_escape(&b, js_str(o, "user"));
            hbuf_puts(&b, "@");
            html_escape(&b, js_str(o, "host"));
            hbuf_puts(&b, ":");
        }
        html_escape(&b, js_str(o, "path"));
        hbuf_puts(&b, "</td>");
        td(&b, !h || json_is_null(h)                    ? "not polled yet"
               : json_is_true(json_object_get(h, "ok")) ? "ok"
                                                        : "down");
        td(&b, h ? js_str(h, "circuit") : "");
        td(&b, h ? js_str(h, "last_poll") : "");
        td(&b, h ? js_str(h, "error") : "");
        hbuf_puts(&b, "<td class=hostkey>");
        json_t *k;
        size_t ki;
        json_array_foreach(json_object_get(o, "host_keys"), ki, k)
        {
            html_escape(&b, js_str(k, "type"));
            hbuf_puts(&b, " ");
            html_escape(&b, js_str(k, "fingerprint"));
            hbuf_puts(&b, "<br>");
        }
        if (!strcmp(js_str(o, "type"), "sftp") && !json_array_size(json_object_get(o, "host_keys")))
            hbuf_puts(&b, "none pinned: wharf trust HOST:PORT");
        hbuf_puts(&b, "</td></tr>");
    }
    hbuf_puts(&b, "</table>");
    json_decref(arr);
    return finish(q, &b);
}

struct chain_ctx {
    struct chain_link last;
    int64_t n;
    char day[14][11]; /* the newest 14 days with bags, yyyy-mm-dd */
    int64_t count[14];
    int days;
};

static int chain_cb(void *c, const struct chain_link *cl)
{
    struct chain_ctx *x = c;
    char ts[32];
    x->last = *cl;
    x->n++;
    format_time_ms(cl->time_ms, ts);
    ts[10] = 0;
    if (x->days && !strcmp(x->day[x->days - 1], ts)) {
        x->count[x->days - 1]++;
        return 0;
    }
    if (x->days == 14) {
        memmove(x->day, x->day + 1, sizeof x->day[0] * 13);
        memmove(x->count, x->count + 1, sizeof x->count[0] * 13);
        x->days--;
    }
    memcpy(x->day[x->days], ts, 11);
    x->count[x->days++] = 1;
    return 0;
}

static enum MHD_Result audit(struct console_req *q)
{
    struct hbuf b = {0};
    json_t *v = NULL;
    struct chain_ctx *x = calloc(1, sizeof *x);
    struct werr e;
    head(&b, "Audit", q);
    if (x && ledger_chain_walk(q->l, chain_cb, x, &e) == 0) {
        hbuf_printf(&b, "<h2>Hash chain</h2><p>%lld sealed bags; head <code>%s</code>",
                    (long long)x->n, x->n ? x->last.link : "(empty)");
        if (x->n) {
            hbuf_puts(&b, " (intake ");
            html_escape(&b, x->last.intake);
            hbuf_puts(&b, ")");
        }
        hbuf_puts(&b, "</p><table><tr><th>day<th>bags sealed</tr>");
        for (int i = x->days - 1; i >= 0; i--)
            hbuf_printf(&b, "<tr><td>%s</td><td>%lld</td></tr>", x->day[i], (long long)x->count[i]);
        hbuf_puts(&b, "</table>");
    } else
        hbuf_puts(&b, "<p class=err>the chain cannot be read</p>");
    free(x);
    audit_last(q->l, &v);
    hbuf_puts(&b, "<h2>Last verify</h2><pre>");
    char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    html_escape_lines(&b, s ? s : "the server has not verified the archive yet (verify.every)");
    free(s);
    json_decref(v);
    hbuf_puts(&b, "</pre><h2>Export</h2><form method=get action=/api/v1/export>manifest "
                  "records of every bag sealed since <input name=since value=2000-01-01> "
                  "<select name=format><option value=csv>CSV<option value=json>JSON</select> "
                  "<button>download</button></form><h2>Operators' actions</h2>");
    json_t *acts = view_actions(q->l, NULL, 200, &e), *a;
    size_t i;
    if (!acts)
        hbuf_puts(&b, "<p class=err>the actions cannot be read</p>");
    else if (!json_array_size(acts))
        hbuf_puts(&b, "<p>none yet</p>");
    else {
        hbuf_puts(&b, "<table><tr><th>time<th>who<th>action<th>on<th>result</tr>");
        json_array_foreach(acts, i, a) {
            const char *cells[] = {
                json_string_value(json_object_get(a, "time")),
                json_string_value(json_object_get(a, "actor")),
                json_string_value(json_object_get(a, "action")),
                json_is_string(json_object_get(a, "intake"))
                    ? json_string_value(json_object_get(a, "intake"))
                    : json_string_value(json_object_get(a, "profile")),
                json_string_value(json_object_get(a, "result")),
            };
            hbuf_puts(&b, json_is_true(json_object_get(a, "ok")) ? "<tr>" : "<tr class=err>");
            for (size_t k = 0; k < sizeof cells / sizeof cells[0]; k++) {
                hbuf_puts(&b, "<td>");
                html_escape(&b, cells[k] ? cells[k] : (k == 4 ? "done" : ""));
            }
            hbuf_puts(&b, "</tr>");
        }
        hbuf_puts(&b, "</table>");
    }
    json_decref(acts);
    return finish(q, &b);
}

/* POST /intakes/ID/replay from the page: replay, then show the new intake. */
static enum MHD_Result replay_post(struct console_req *q, const char *id)
{
    char new_id[ID_LEN];
    struct werr e;
    if (console_replay(q, id, new_id, &e) < 0)
        return console_error(q->conn, 409, "replay", "%s", e.msg);
    struct hbuf b = {0};
    hbuf_puts(&b, "/intakes/");
    url_escape(&b, new_id[0] ? new_id : id);
    const char *h[] = {"Location", b.s, NULL};
    enum MHD_Result r = console_send(q->conn, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, h);
    free(b.s);
    return r;
}

enum MHD_Result page_route(struct console_req *q, const char *url)
{
    char id[40];
    int n = 0;
    if (q->post) {
        if (sscanf(url, "/intakes/%33[0-9A-Z]/replay%n", id, &n) == 1 && !url[n])
            return replay_post(q, id);
        return console_error(q->conn, 404, "not_found", "no such page");
    }
    if (!strcmp(url, "/"))
        return overview(q);
    if (!strcmp(url, "/intakes"))
        return intakes(q);
    if (sscanf(url, "/intakes/%33[0-9A-Z]%n", id, &n) == 1 && !url[n])
        return intake_page(q, id);
    if (sscanf(url, "/intakes/%33[0-9A-Z]/bag%n", id, &n) == 1 && !url[n])
        return bag_file(q, id);
    if (!strcmp(url, "/rejects"))
        return rejects(q);
    if (!strcmp(url, "/sources"))
        return sources(q);
    if (!strcmp(url, "/audit"))
        return audit(q);
    return console_error(q->conn, 404, "not_found", "no such page");
}
