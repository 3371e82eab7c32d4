/*
 * alert: run wharf.yaml's `alert:` command for each new event (see alert.h).
 *
 * The command runs as /bin/sh -c COMMAND in its own process group, the
 * event JSON on its stdin (one object, written at once: it fits a pipe
 * buffer, so the caller never waits on the child), its stdout sent to our
 * stderr.  At most ALERT_MAX run at once; one still running after
 * ALERT_TIMEOUT_MS is killed (its group) and logged.
 *
 * Marks in the ledger's kv, each written before its command runs:
 *   alert:cursor:<profile>              intakes updated since then are looked at
 *   alert:rejected:<intake>             that reject was alerted
 *   alert:failed:<intake>:<attempts>    that failure was alerted
 *   alert:source:<profile>              "down:<since ms>" or "up"
 *   alert:destination:<profile>:<to>    the same for an outbound profile's partner
 *   alert:stuck:<profile>:<path>:<size>:<appeared ms>
 *   alert:tampered:<profile>            sha256 of the last finding alerted
 *   alert:gap:<profile>                 sha256 of the last reconcile gaps alerted
 */
#include "daemon/alert.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/health.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define ALERT_MAX        8
#define ALERT_TIMEOUT_MS 30000
#define FIRST_LOOK_MS    (24 * 3600 * 1000) /* no cursor yet: the last day */
#define CURSOR_SLACK_MS  60000              /* intakes updated while we looked */

struct alert_child {
    pid_t pid;
    int64_t deadline;
    char profile[80];
};

struct alerter {
    const struct wharf_config *cfg;
    struct alert_child kids[ALERT_MAX];
};

struct alerter *alert_new(const struct wharf_config *cfg)
{
    struct alerter *a = xcalloc(1, sizeof *a);
    a->cfg = cfg;
    return a;
}

json_t *alert_event(const char *kind, const char *profile, const char *intake, const char *reason,
                    const char *runbook, int64_t now)
{
    char ts[32];
    format_time_ms(now, ts);
    /* reasons quote partner names: esc_json keeps them whatever their bytes */
    return json_pack("{s:s,s:s,s:s,s:s?,s:o,s:s?,s:s}", "event", kind, "kind", kind, "profile",
                     profile, "intake", intake && *intake ? intake : NULL, "reason",
                     esc_json(reason ? reason : ""), "runbook",
                     runbook && *runbook ? runbook : NULL, "time", ts);
}

static void run(struct alerter *a, const char *profile, const char *payload)
{
    struct alert_child *slot = NULL;
    int fds[2] = {-1, -1};
    pid_t pid;

    for (int i = 0; i < ALERT_MAX && !slot; i++)
        if (!a->kids[i].pid)
            slot = &a->kids[i];
    if (!slot) {
        wlog(LOG_ERROR, profile, NULL, "alert_skipped", NULL,
             "%d alert commands are still running; this alert is not sent", ALERT_MAX);
        return;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        wlog(LOG_ERROR, profile, NULL, "alert_failed", NULL, "pipe: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid < 0) {
        wlog(LOG_ERROR, profile, NULL, "alert_failed", NULL, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* only async-signal-safe calls from here on */
        sigset_t none;
        sigemptyset(&none); /* the server's threads block its signals: not the command */
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        if (dup2(fds[0], 0) < 0 || dup2(2, 1) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", a->cfg->alert, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so the group exists before we may kill it */
    close(fds[0]);
    fds[0] = -1;
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    size_t len = strlen(payload), off = 0;
    while (off < len) {
        ssize_t w = write(fds[1], payload + off, len - off);
        if (w <= 0)
            break; /* the command did not want it all; not our problem */
        off += (size_t)w;
    }
    slot->pid = pid;
    slot->deadline = now_ms() + ALERT_TIMEOUT_MS;
    snprintf(slot->profile, sizeof slot->profile, "%s", profile);
out:
    if (fds[0] >= 0)
        close(fds[0]);
    close(fds[1]);
}

void alert_send(struct alerter *a, const char *profile, const char *intake, json_t *event)
{
    const char *kind = json_string_value(json_object_get(event, "kind"));
    const char *reason = json_string_value(json_object_get(event, "reason"));
    char *payload;
    if (!a->cfg->alert || !*a->cfg->alert)
        return;
    payload = json_dumps(event, JSON_COMPACT);
    wlog(LOG_WARN, profile, intake, "alert", NULL, "%s: %s", kind ? kind : "?",
         reason ? reason : "");
    if (payload)
        run(a, profile, payload);
    free(payload);
}

static void reap(struct alerter *a, bool force)
{
    int64_t now = now_ms();
    for (int i = 0; i < ALERT_MAX; i++) {
        struct alert_child *k = &a->kids[i];
        int st;
        pid_t r;
        if (!k->pid)
            continue;
        r = waitpid(k->pid, &st, WNOHANG);
        if (r == 0 && (force || now >= k->deadline)) {
            kill(-k->pid, SIGKILL);
            waitpid(k->pid, &st, 0);
            wlog(LOG_ERROR, k->profile, NULL, "alert_timeout", NULL,
                 "the alert command was still running %s and was killed",
                 force ? "when wharf stopped" : "after its 30 s");
            k->pid = 0;
        } else if (r == k->pid || (r < 0 && errno == ECHILD)) {
            if (r == k->pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                wlog(LOG_ERROR, k->profile, NULL, "alert_failed", NULL, "the alert command %s %d",
                     WIFEXITED(st) ? "exited with" : "died of signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            k->pid = 0;
        }
    }
}

void alert_reap(struct alerter *a)
{
    reap(a, false);
}

void alert_free(struct alerter *a, int64_t wait_ms)
{
    if (!a)
        return;
    for (int64_t waited = 0; waited < wait_ms; waited += 50) {
        bool any = false;
        reap(a, false);
        for (int i = 0; i < ALERT_MAX; i++)
            any |= a->kids[i].pid != 0;
        if (!any)
            break;
        usleep(50000);
    }
    reap(a, true);
    free(a);
}

/* --- the events ---------------------------------------------------------- */

/* 1 when key was already marked; else marks it (0), -1 on a ledger error.
 * One statement (ledger_kv_mark): of several nodes checking at once, one
 * marks it and alerts. */
static int mark(struct ledger *l, const char *key, const char *value)
{
    struct werr e;
    int k = ledger_kv_mark(l, key, value, NULL, &e);
    return k < 0 ? -1 : !k;
}

struct intake_ctx {
    struct alerter *a;
    struct ledger *l;
    const struct profile *p;
    int64_t now;
};

static int intake_cb(void *c, const struct intake *in)
{
    struct intake_ctx *x = c;
    char key[200];
    const char *kind = in->state == ST_FAILED ? "failed" : "rejected";
    const char *rb = in->info ? json_string_value(json_object_get(in->info, "runbook")) : NULL;
    const char *err = in->info ? json_string_value(json_object_get(in->info, "error")) : NULL;
    json_t *ev;

    if (in->state == ST_FAILED)
        snprintf(key, sizeof key, "alert:failed:%s:%d", in->id, in->attempts);
    else
        snprintf(key, sizeof key, "alert:rejected:%s", in->id);
    if (mark(x->l, key, "1") != 0)
        return 0;
    if (in->outcome == OUT_REJECTED || !err)
        err = in->last_error;
    ev = alert_event(kind, x->p->name, in->id, err, rb ? rb : "runbooks/replay.md", x->now);
    json_object_set_new(ev, "name", esc_json(in->name ? in->name : ""));
    if (in->state == ST_FAILED) {
        json_object_set_new(ev, "attempts", json_integer(in->attempts));
        json_object_set_new(ev, "failed_in", json_string(state_name(in->failed_from)));
    }
    if (in->bag)
        json_object_set_new(ev, "bag", json_string(in->bag));
    alert_send(x->a, x->p->name, in->id, ev);
    json_decref(ev);
    return 0;
}

/* Rejects and failures of intakes updated since the profile's cursor. */
static void check_intakes(struct alerter *a, struct ledger *l, const struct profile *p, int64_t now)
{
    char key[160], *v = NULL, val[32];
    struct werr e;
    int64_t real = now_ms(); /* the cursor follows the clock intakes are stamped with */
    int64_t since = real - FIRST_LOOK_MS;
    struct intake_ctx x = {a, l, p, now};
    struct intake_filter f = {
        .profile = p->name, .state = -1, .rejects = true, .with_failed = true};

    snprintf(key, sizeof key, "alert:cursor:%s", p->name);
    if (ledger_kv_get(l, key, &v, &e) < 0)
        goto fail;
    if (v)
        since = strtoll(v, NULL, 10) - CURSOR_SLACK_MS;
    free(v);
    f.updated_since_ms = since > 0 ? since : 1;
    if (ledger_list(l, &f, intake_cb, &x, &e) < 0)
        goto fail;
    snprintf(val, sizeof val, "%lld", (long long)real);
    if (ledger_kv_set(l, key, val, &e) < 0)
        goto fail;
    return;
fail:
    wlog(LOG_ERROR, p->name, NULL, "alert_check_failed", NULL, "ledger: %s", e.msg);
}

static void check_source(struct alerter *a, struct ledger *l, const struct profile *p,
                         const struct health *h, int64_t now)
{
    char key[160], val[48], ts[32];
    json_t *ev;
    if (!h->polled)
        return;
    snprintf(key, sizeof key, "alert:source:%s", p->name);
    if (!h->source.ok) {
        snprintf(val, sizeof val, "down:%lld", (long long)h->source.since_ms);
        if (mark(l, key, val) != 0)
            return;
        format_time_ms(h->source.since_ms, ts);
        ev = alert_event("source_down", p->name, NULL, h->source.error, h->source.runbook, now);
        json_object_set_new(ev, "since", json_string(ts));
        json_object_set_new(ev, "failed_polls", json_integer(h->source.fails));
    } else {
        char *v = NULL;
        struct werr e;
        if (ledger_kv_get(l, key, &v, &e) < 0 || !v || strncmp(v, "down:", 5)) {
            free(v);
            return;
        }
        format_time_ms(strtoll(v + 5, NULL, 10), ts);
        free(v);
        if (mark(l, key, "up") != 0)
            return;
        ev = alert_event("source_up", p->name, NULL, "the source can be listed again", NULL, now);
        json_object_set_new(ev, "down_since", json_string(ts));
    }
    alert_send(a, p->name, NULL, ev);
    json_decref(ev);
}

/* An outbound profile's partner server: down once its circuit opens
 * (health's `down`), up at the first delivery that works after that. */
static void check_destinations(struct alerter *a, struct ledger *l, const struct profile *p,
                               const struct health *h, int64_t now)
{
    for (size_t i = 0; i < h->n_dest; i++) {
        const struct destination_health *dh = &h->dest[i].h;
        char key[600], val[48], ts[32];
        json_t *ev;
        snprintf(key, sizeof key, "alert:destination:%s:%s", p->name, h->dest[i].to);
        if (!dh->ok && dh->fails >= DESTINATION_CIRCUIT_AFTER) {
            snprintf(val, sizeof val, "down:%lld", (long long)dh->since_ms);
            if (mark(l, key, val) != 0)
                continue;
            format_time_ms(dh->since_ms, ts);
            ev = alert_event("destination_down", p->name, NULL, dh->error, dh->runbook, now);
            json_object_set_new(ev, "to", json_string(h->dest[i].to));
            json_object_set_new(ev, "since", json_string(ts));
            json_object_set_new(ev, "failed_deliveries", json_integer(dh->fails));
        } else if (dh->ok) {
            char *v = NULL;
            struct werr e;
            if (ledger_kv_get(l, key, &v, &e) < 0 || !v || strncmp(v, "down:", 5)) {
                free(v);
                continue;
            }
            format_time_ms(strtoll(v + 5, NULL, 10), ts);
            free(v);
            if (mark(l, key, "up") != 0)
                continue;
            ev = alert_event("destination_up", p->name, NULL, "deliveries work again", NULL, now);
            json_object_set_new(ev, "to", json_string(h->dest[i].to));
            json_object_set_new(ev, "down_since", json_string(ts));
        } else {
            continue;
        }
        alert_send(a, p->name, NULL, ev);
        json_decref(ev);
    }
}

static void check_stuck(struct alerter *a, struct ledger *l, const struct profile *p,
                        const struct health *h, int64_t now)
{
    for (size_t i = 0; i < h->n_stuck; i++) {
        const struct health_file *f = &h->stuck[i];
        char key[600], age[48], reason[512], ts[32];
        json_t *ev;
        snprintf(key, sizeof key, "alert:stuck:%s:%s:%llu:%lld", p->name, f->path,
                 (unsigned long long)f->size, (long long)f->appeared_ms);
        if (mark(l, key, "1") != 0)
            continue;
        health_age(now - f->appeared_ms, age, sizeof age);
        snprintf(reason, sizeof reason, "%s (%llu bytes) in the source for %s: %s", f->path,
                 (unsigned long long)f->size, age, f->why);
        format_time_ms(f->appeared_ms, ts);
        ev = alert_event("stuck", p->name, NULL, reason, "runbooks/partial-upload.md", now);
        json_object_set_new(ev, "path", esc_json(f->path));
        json_object_set_new(ev, "size", json_integer((json_int_t)f->size));
        json_object_set_new(ev, "appeared", json_string(ts));
        json_object_set_new(ev, "temporary", json_boolean(f->temp));
        alert_send(a, p->name, NULL, ev);
        json_decref(ev);
    }
}

/* The scheduled verify found this profile's bags (or the chain) changed:
 * once per distinct finding. */
static void check_tampered(struct alerter *a, struct ledger *l, const struct profile *p,
                           const struct health *h, int64_t now)
{
    for (size_t i = 0; i < h->n_issues; i++) {
        const struct health_issue *is = &h->issue[i];
        char key[160];
        json_t *ev;
        if (is->state != HEALTH_TAMPERED)
            continue;
        snprintf(key, sizeof key, "alert:tampered:%s", p->name);
        if (mark(l, key, is->finding) != 0)
            return;
        ev = alert_event("tampered", p->name, is->intake, is->reason, is->runbook, now);
        alert_send(a, p->name, is->intake, ev);
        json_decref(ev);
    }
}

/* The last reconcile found gaps (or could not read the target): once per
 * distinct set of gaps, whatever the time of the run that found them. */
static void check_gap(struct alerter *a, struct ledger *l, const struct profile *p,
                      const struct health *h, int64_t now)
{
    for (size_t i = 0; i < h->n_issues; i++) {
        const struct health_issue *is = &h->issue[i];
        char key[160], digest[SHA256_HEX_LEN], *what;
        json_t *ev, *err;
        if (is->state != HEALTH_GAP || !h->reconcile)
            continue;
        err = json_object_get(h->reconcile, "error");
        what = json_dumps(err ? err : json_object_get(h->reconcile, "gaps"),
                          JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        sha256_hex(what ? what : "", what ? strlen(what) : 0, digest);
        free(what);
        snprintf(key, sizeof key, "alert:gap:%s", p->name);
        if (mark(l, key, digest) != 0)
            return;
        ev = alert_event("reconcile_gap", p->name, is->intake, is->reason, is->runbook, now);
        json_object_set(ev, "gaps", json_object_get(h->reconcile, "gaps"));
        alert_send(a, p->name, is->intake, ev);
        json_decref(ev);
    }
}

void alert_check(struct alerter *a, struct ledger *l, const struct profile_set *set, int64_t now)
{
    if (!a->cfg->alert || !*a->cfg->alert)
        return; /* nothing to send: no marks either */
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = set->v[i];
        struct health h;
        struct werr e;
        if (!p->enabled || ledger_paused(l, p->name))
            continue;
        check_intakes(a, l, p, now);
        if (health_eval(l, p, now, &h, &e) < 0) {
            wlog(LOG_ERROR, p->name, NULL, "alert_check_failed", NULL, "ledger: %s", e.msg);
            continue;
        }
        check_source(a, l, p, &h, now);
        check_destinations(a, l, p, &h, now);
        check_stuck(a, l, p, &h, now);
        check_tampered(a, l, p, &h, now);
        check_gap(a, l, p, &h, now);
        health_clear(&h);
    }
    reap(a, false);
}
