/*
 * sla: `expect:` windows -> ok | late | missing, and the alerts (see sla.h).
 *
 * Local dates and times come from util/cron (cron_localtime,
 * cron_localmktime), which convert in a named zone under one mutex.  A `by`
 * that falls in a spring-forward gap is due when the gap ends.
 *
 * Alerts: wharf.yaml's `alert:` runs as /bin/sh -c COMMAND in its own
 * process group, the event JSON on its stdin (one object, written at once:
 * it fits a pipe buffer, so the main loop never waits on the child), its
 * stdout sent to the server's stderr.  At most ALERT_MAX run at once; one
 * still running after ALERT_TIMEOUT_MS is killed (its group) and logged.
 * The alert mark is written to the ledger before the command runs: a crash
 * can lose an alert, never repeat one.
 *
 * WHARF_TEST_NOW (sla_now) is read here only, for the test suite.
 */
#include "daemon/sla.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/alert.h"
#include "util/cron.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define ALERT_GRACE_MS 2000 /* at shutdown */

const char *sla_state_name(enum sla_state s)
{
    static const char *n[] = {"none", "ok", "late", "missing"};
    return n[s];
}

int64_t sla_now(void)
{
    const char *v = getenv("WHARF_TEST_NOW");
    int64_t ms;
    if (v && *v) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (isdigit((unsigned char)*v) && !*end)
            return n;
        if (parse_date(v, &ms) == 0)
            return ms;
    }
    return now_ms();
}

int64_t sla_settled_ms(const struct profile *p, const struct intake *in)
{
    if (in->outcome != OUT_LOADED)
        return 0;
    if (!p->outbound)
        return in->state == ST_DONE ? in->updated_ms : 0;
    if (in->state == ST_FAILED)
        return 0;
    int64_t last = 0;
    size_t i;
    json_t *d;
    json_array_foreach(in->info ? json_object_get(in->info, "deliveries") : NULL, i, d)
    {
        json_int_t t = json_integer_value(json_object_get(d, "delivered_ms"));
        if (t > last)
            last = t;
    }
    return last ? last : in->updated_ms;
}

struct last_ctx {
    const struct profile *p;
    int64_t last;
};

static int last_cb(void *c, const struct intake *in)
{
    struct last_ctx *x = c;
    int64_t t = sla_settled_ms(x->p, in);
    if (t > x->last)
        x->last = t;
    return 0;
}

int64_t sla_last_loaded(struct ledger *l, const struct profile *p, struct werr *e)
{
    struct last_ctx x = {p, 0};
    /* an outbound file counts once delivered, before it is sealed */
    struct intake_filter f = {.profile = p->name, .state = p->outbound ? -1 : ST_DONE};
    if (ledger_list(l, &f, last_cb, &x, e) < 0)
        return -1;
    return x.last;
}

static const char *window_tz(const struct profile *p, const struct expect_conf *x)
{
    if (x->timezone)
        return x->timezone;
    return p->schedule.timezone ? p->schedule.timezone : "UTC";
}

/* "HH:MM" when ms falls on local date `day`, else "yyyy-mm-dd HH:MM". */
static void local_label(const char *tz, int64_t ms, const char *day, char *buf, size_t n)
{
    struct tm tm;
    char d[32];
    cron_localtime(tz, ms, &tm);
    snprintf(d, sizeof d, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (day && !strcmp(d, day))
        snprintf(buf, n, "%02d:%02d", tm.tm_hour, tm.tm_min);
    else
        snprintf(buf, n, "%s %02d:%02d", d, tm.tm_hour, tm.tm_min);
}

/* The latest instance of window x whose `by` is at or before now: 1 found
 * (day, due, midnight filled), 0 none in the last week. */
static int current_instance(const char *tz, const struct expect_conf *x, int64_t now, char day[32],
                            int64_t *due, int64_t *midnight)
{
    struct tm tm;
    int64_t noon;
    cron_localtime(tz, now, &tm);
    cron_localmktime(tz, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 12, 0, &noon);
    for (int k = 0; k <= 7; k++) {
        struct tm d;
        /* noon of the day k days back is always on that local date */
        cron_localtime(tz, noon - (int64_t)k * 86400000, &d);
        if (!(x->days >> d.tm_wday & 1))
            continue;
        cron_localmktime(tz, d.tm_year + 1900, d.tm_mon + 1, d.tm_mday, x->by_minutes / 60,
                         x->by_minutes % 60, due);
        if (*due > now)
            continue;
        cron_localmktime(tz, d.tm_year + 1900, d.tm_mon + 1, d.tm_mday, 0, 0, midnight);
        snprintf(day, 32, "%04d-%02d-%02d", d.tm_year + 1900, d.tm_mon + 1, d.tm_mday);
        return 1;
    }
    return 0;
}

void sla_window(const struct profile *p, const struct expect_conf *x, int64_t now,
                int64_t last_loaded, struct sla_status *out)
{
    int64_t midnight = 0;
    char today[32], a[64], b[64];
    struct tm tm;

    memset(out, 0, sizeof *out);
    out->timezone = window_tz(p, x);
    out->last_loaded_ms = last_loaded;
    snprintf(out->by, sizeof out->by, "%02d:%02d", x->by_minutes / 60, x->by_minutes % 60);
    cron_localtime(out->timezone, now, &tm);
    snprintf(today, sizeof today, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (x->by_minutes < 0 ||
        !current_instance(out->timezone, x, now, out->day, &out->due_ms, &midnight)) {
        out->state = SLA_OK;
        snprintf(out->freshness, sizeof out->freshness, "due %s", out->by);
        return;
    }
    out->window = x;
    out->missing_ms = out->due_ms + x->missing_after_ms;
    local_label(out->timezone, out->due_ms, today, a, sizeof a);
    if (last_loaded >= midnight) {
        out->state = SLA_OK;
        local_label(out->timezone, last_loaded, today, b, sizeof b);
        snprintf(out->freshness, sizeof out->freshness, "ok, last %s", b);
    } else if (now >= out->missing_ms) {
        out->state = SLA_MISSING;
        local_label(out->timezone, out->missing_ms, today, b, sizeof b);
        snprintf(out->freshness, sizeof out->freshness, "due %s, missing since %s", a, b);
    } else {
        out->state = SLA_LATE;
        snprintf(out->freshness, sizeof out->freshness, "due %s, late since %s", a, a);
    }
}

void sla_eval(const struct profile *p, int64_t now, int64_t last_loaded, struct sla_status *out)
{
    memset(out, 0, sizeof *out);
    out->last_loaded_ms = last_loaded;
    for (size_t i = 0; i < p->n_expect; i++) {
        struct sla_status w;
        sla_window(p, &p->expect[i], now, last_loaded, &w);
        if (i == 0 || w.state > out->state ||
            (w.state == out->state && w.window && (!out->window || w.due_ms > out->due_ms)))
            *out = w;
    }
}

/* --- the server's checks and alerts -------------------------------------- */

struct sla {
    const struct wharf_config *cfg;
    struct alerter *alerts;
};

struct sla *sla_new(const struct wharf_config *cfg)
{
    struct sla *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->alerts = alert_new(cfg);
    return s;
}

/* "mon-fri", "sat,sun", "daily" */
static void days_label(uint8_t mask, char *buf, size_t n)
{
    static const char *names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    static const int order[] = {1, 2, 3, 4, 5, 6, 0};
    size_t used = 0;
    buf[0] = 0;
    if ((mask & 0x7f) == 0x7f) {
        snprintf(buf, n, "daily");
        return;
    }
    for (int i = 0; i < 7;) {
        int j = i;
        if (!(mask >> order[i] & 1)) {
            i++;
            continue;
        }
        while (j + 1 < 7 && mask >> order[j + 1] & 1)
            j++;
        if (j - i >= 2)
            used += (size_t)snprintf(buf + used, n - used, "%s%s-%s", used ? "," : "",
                                     names[order[i]], names[order[j]]);
        else
            for (int k = i; k <= j; k++)
                used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "," : "",
                                         names[order[k]]);
        if (used >= n)
            return;
        i = j + 1;
    }
}

static json_t *event_json(const struct profile *p, const struct sla_status *st, int64_t now)
{
    char days[64], due[32], last[32], ma[32];
    days_label(st->window->days, days, sizeof days);
    format_time_ms(st->due_ms, due);
    if (st->last_loaded_ms)
        format_time_ms(st->last_loaded_ms, last);
    format_duration(st->window->missing_after_ms, ma, sizeof ma);
    char reason[320];
    snprintf(reason, sizeof reason, "expected %s by %s (%s): %s", st->day, st->by, st->timezone,
             st->freshness);
    json_t *ev = alert_event(sla_state_name(st->state), p->name, NULL, reason,
                             "runbooks/expected-file-missing.md", now);
    json_object_update_new(ev,
                           json_pack("{s:{s:s,s:s,s:s,s:s},s:s,s:s,s:s?,s:s}", "window", "days",
                                     days, "by", st->by, "timezone", st->timezone, "missing_after",
                                     ma, "day", st->day, "due", due, "last_loaded",
                                     st->last_loaded_ms ? last : NULL, "freshness", st->freshness));
    return ev;
}

void sla_reap(struct sla *s)
{
    alert_reap(s->alerts);
}

/* One window of one profile: alert when it moved into late or missing. */
static void check_window(struct sla *s, struct ledger *l, const struct profile *p,
                         const struct expect_conf *x, int64_t now, int64_t last)
{
    struct sla_status st;
    struct werr e;
    char key[200];
    const char *name;

    sla_window(p, x, now, last, &st);
    if (st.state != SLA_LATE && st.state != SLA_MISSING)
        return;
    name = sla_state_name(st.state);
    snprintf(key, sizeof key, "sla:%s:%s:%s", p->name, st.day, st.by);
    /* marked in one statement: of several nodes checking at once one marks
     * it and alerts; late may become missing, never the other way */
    int k = ledger_kv_mark(l, key, name, "missing", &e);
    if (k < 0) {
        wlog(LOG_ERROR, p->name, NULL, "sla_check_failed", NULL, "ledger: %s", e.msg);
        return;
    }
    if (k == 0)
        return; /* already alerted */
    json_t *ev = event_json(p, &st, now);
    wlog(LOG_WARN, p->name, NULL, st.state == SLA_LATE ? "sla_late" : "sla_missing",
         json_deep_copy(ev), "expected by %s %s (%s): %s", st.day, st.by, st.timezone,
         st.freshness);
    alert_send(s->alerts, p->name, NULL, ev);
    json_decref(ev);
}

void sla_check(struct sla *s, struct ledger *l, const struct profile_set *set, int64_t now)
{
    struct werr e;
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = set->v[i];
        int64_t last;
        if (!p->n_expect || !p->enabled || ledger_paused(l, p->name))
            continue;
        if ((last = sla_last_loaded(l, p, &e)) < 0) {
            wlog(LOG_ERROR, p->name, NULL, "sla_check_failed", NULL, "ledger: %s", e.msg);
            continue;
        }
        for (size_t k = 0; k < p->n_expect; k++)
            check_window(s, l, p, &p->expect[k], now, last);
    }
    /* and every other event worth an alert (daemon/alert.h) */
    alert_check(s->alerts, l, set, now);
}

void sla_finish(struct sla *s, int64_t wait_ms)
{
    if (!s)
        return;
    alert_free(s->alerts, wait_ms);
    free(s);
}

void sla_free(struct sla *s)
{
    sla_finish(s, ALERT_GRACE_MS);
}
