/*
 * server: `wharf run`, the long-running foreground process.
 *
 * Threads:
 *   main      keeps time and nothing else: poll schedules (every: and
 *             cron: per profile; a spool's inotify events poll it at once
 *             and again after stable_for), signals, reload, the systemd
 *             watchdog and status.  It never touches the network, a
 *             database or a partner's files, so one dead partner host
 *             cannot starve the watchdog;
 *   workers   `workers:` threads of the runner (daemon/runner.h): every
 *             poll, every intake step and the collection of due retries
 *             are jobs there, with the per-profile rules in one place;
 *   keeper    the SLA windows, the alerts (daemon/sla.h, alert.h) and the
 *             pruning of old sightings, on its own thread and ledger
 *             connection;
 *   reload    a short-lived thread that loads and checks the profiles on
 *             SIGHUP;
 *   audit, reconcile, console: their own threads (audit.h, reconciler.h,
 *             console/console.h).
 *
 * Only the main thread takes SIGTERM, SIGINT and SIGHUP: they are blocked
 * everywhere else and unblocked only while the main thread waits (ppoll).
 *
 * A failed poll backs off (poll_failed); after CIRCUIT_AFTER failures in a
 * row the source is down (circuit open) and only probed at the backoff
 * times.  Back pressure: while many intakes wait in the queue, polling
 * pauses.  SIGTERM/SIGINT: no new jobs; running ones stop at their next
 * committed state (a load in progress is rolled back) and interrupted
 * intakes resume at the next start.  SIGHUP: RELOADING=1, the new profiles
 * are loaded off the main thread and swapped in at once (running jobs
 * finish on the old set, daemon/profset.h), READY=1; an invalid new set is
 * refused with its errors and the old one keeps running.
 */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "console/console.h"
#include "daemon/audit.h"
#include "daemon/notify.h"
#include "daemon/periodic.h"
#include "daemon/reconciler.h"
#include "daemon/runner.h"
#include "daemon/sla.h"
#include "pipeline.h"
#include "source/source.h"
#include "util/cron.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"
#include "validate/validate.h"

#define QUEUE_MAX        256
#define DUE_EVERY_MS     5000
#define SLA_EVERY_MS     60000
#define PRUNE_EVERY_MS   (3600 * 1000)
#define DEFAULT_EVERY_MS 60000

struct server {
    const struct wharf_config *cfg;
    struct runner *runner;
    struct profset *ps; /* the main thread's reference to the current set */
    /* The schedule, per profile of ps: next_poll[i], and next_poll[n + i]
     * the follow-up that proves a drop stable.  Workers report polls into
     * it (server_polled), so it is under mu. */
    pthread_mutex_t mu;
    int64_t *next_poll;
    bool *asked;         /* the next poll was asked for (inotify, follow-up): runner_poll */
    int *fails;          /* consecutive poll failures per profile */
    int64_t *down_since; /* first failure of the current run */
    int inotify;
    int *wd;
    int wake[2]; /* a worker or the reload thread has news for the main loop */
    /* reload */
    pthread_t reload_thread;
    bool reloading;
    atomic_bool reload_done;
    struct profile_set *fresh; /* NULL: the new set was refused */
    /* keeper */
    struct periodic keeper;
    struct sla *sla;
    struct ledger *keeper_ledger;
    int64_t last_sla, last_prune, last_beat, started_ms;
    bool takeover_more;  /* the last take-over filled its batch: again at the next tick */
    atomic_bool sla_now; /* check at once (after a reload) */
};

static volatile sig_atomic_t sig_stop, sig_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        sig_hup = 1;
    else {
        sig_stop = 1;
        pipeline_request_stop();
    }
}

static void wake_main(struct server *s)
{
    char b = 1;
    ssize_t n = write(s->wake[1], &b, 1); /* full: the main loop is woken anyway */
    (void)n;
}

/* When to poll p next after a poll at now: every: from now, cron: the next
 * run strictly after now in the schedule's zone (UTC by default). */
static int64_t next_poll_time(const struct profile *p, int64_t now)
{
    struct cron c;
    char err[256];
    int64_t next;
    if (!p->schedule.cron)
        return now + (p->schedule.every_ms ? p->schedule.every_ms : DEFAULT_EVERY_MS);
    if (cron_parse(p->schedule.cron, &c, err, sizeof err) < 0 ||
        cron_next(&c, p->schedule.timezone ? p->schedule.timezone : "UTC", now, &next) < 0) {
        /* config_load refuses bad expressions; this is an expression that
         * never fires ("0 0 30 2 *"): look again in a day */
        return now + 86400000;
    }
    return next;
}

/* Under mu: a fresh schedule for a (re)loaded set: every: profiles poll at
 * once (asked: even if another node polled a moment ago), cron profiles at
 * their next run; no follow-ups pending. */
static void schedule_all(struct server *s, int64_t now)
{
    const struct profile_set *set = &s->ps->set;
    free(s->next_poll);
    free(s->asked);
    free(s->fails);
    free(s->down_since);
    s->next_poll = xcalloc(2 * set->n + 1, sizeof *s->next_poll);
    s->asked = xcalloc(set->n + 1, sizeof *s->asked);
    s->fails = xcalloc(set->n + 1, sizeof *s->fails);
    s->down_since = xcalloc(set->n + 1, sizeof *s->down_since);
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = set->v[i];
        s->next_poll[i] = p->schedule.cron ? next_poll_time(p, now) : now;
        s->asked[i] = !p->schedule.cron; /* a (re)start looks at once, as one node always did */
        s->next_poll[i + set->n] = INT64_MAX;
    }
}

/*
 * A failed poll: back off exponentially with jitter (from min(every, 5s),
 * doubling, capped at 15 minutes); after CIRCUIT_AFTER consecutive failures
 * the source is marked down (circuit open) with the reason, which `wharf
 * status` and `wharf show` print, and is only probed at the backoff times.
 * Under mu.
 */
#define CIRCUIT_AFTER  3
#define BACKOFF_MAX_MS (15 * 60 * 1000)

static char *poll_failed(struct server *s, size_t i, const struct profile *p, int64_t now,
                         const struct werr *e)
{
    int f = ++s->fails[i];
    double delay =
        p->schedule.every_ms && p->schedule.every_ms < 5000 ? (double)p->schedule.every_ms : 5000.0;
    char since[32], next[32];
    if (f == 1)
        s->down_since[i] = now;
    for (int k = 1; k < f && delay < BACKOFF_MAX_MS; k++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    delay *= 0.5 + 0.5 * ((double)rand() / RAND_MAX);
    s->next_poll[i] = now + (int64_t)delay;
    format_time_ms(s->down_since[i], since);
    format_time_ms(s->next_poll[i], next);
    if (f >= CIRCUIT_AFTER)
        return xasprintf("down since %s (circuit open after %d failed polls; next probe %s): %s "
                         "(see %s)",
                         since, f, next, e->msg, werr_runbook(e));
    return xasprintf("failing since %s (%d failed poll%s; retry %s): %s (see %s)", since, f,
                     f == 1 ? "" : "s", next, e->msg, werr_runbook(e));
}

static void set_health(struct ledger *l, const char *profile, const char *health)
{
    struct werr e;
    if (ledger_set_health(l, profile, health, &e) < 0)
        wlog(LOG_ERROR, profile, NULL, "ledger", NULL, "source health not recorded: %s", e.msg);
}

/* The runner's hook, on the worker that polled: the schedule learns the
 * outcome (backoff, circuit, the follow-up for a drop not yet stable), the
 * ledger the source's health, and the main loop wakes to reschedule. */
/* The console's "poll now": a poll job on the runner, asked for (so it
 * waits only for another node's poll of the source that is running). */
static void console_poll(void *ctx, const char *profile)
{
    struct server *s = ctx;
    runner_poll(s->runner, profile, true);
}

static void server_polled(void *ctx, struct ledger *l, const struct profile *p, int rc, char **ids,
                          size_t n_ids, const struct pipeline_stats *st, const struct werr *e)
{
    struct server *s = ctx;
    int64_t now = now_ms();
    char *health = NULL;
    int fails = 0;
    (void)ids;
    (void)n_ids;
    pthread_mutex_lock(&s->mu);
    const struct profile_set *set = &s->ps->set;
    size_t i;
    for (i = 0; i < set->n && strcmp(set->v[i]->name, p->name); i++)
        ;
    if (i < set->n) { /* else: reloaded away meanwhile */
        if (rc < 0)
            health = poll_failed(s, i, p, now, e);
        fails = s->fails[i];
        if (rc >= 0)
            s->fails[i] = 0;
        /* the source just went down or came back: the alerts (sla_check on
         * the keeper, otherwise every SLA_EVERY_MS) look within a second */
        if ((rc < 0 && fails == 1) || (rc >= 0 && fails > 0))
            atomic_store(&s->sla_now, true);
        /* a drop seen but not yet stable: look again once it can be */
        int64_t *follow = &s->next_poll[i + set->n], later = now + p->source.stable_for_ms + 50;
        if (rc >= 0 && st->listed > st->claimed && p->source.stable_for_ms && *follow > later)
            *follow = later;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        if (!health) {
            char ts[32];
            format_time_ms(now, ts);
            health = xasprintf("failing since %s: %s (see %s)", ts, e->msg, werr_runbook(e));
        }
        set_health(l, p->name, health);
        wlog(LOG_ERROR, p->name, NULL, fails >= CIRCUIT_AFTER ? "source_down" : "poll_failed", NULL,
             "%s", health);
        free(health);
    } else {
        if (fails >= CIRCUIT_AFTER)
            wlog(LOG_INFO, p->name, NULL, "source_recovered", NULL,
                 "source reachable again after %d failed polls", fails);
        set_health(l, p->name, "ok");
    }
    wake_main(s);
}

static void watch_spools(struct server *s)
{
    const struct profile_set *set = &s->ps->set;
    if (s->inotify < 0)
        return;
    free(s->wd);
    s->wd = xcalloc(set->n + 1, sizeof *s->wd);
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = set->v[i];
        s->wd[i] = -1;
        if (p->source.type == SOURCE_SPOOL && p->enabled)
            s->wd[i] = inotify_add_watch(s->inotify, p->source.path,
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
    }
}

/* Drain inotify: poll the touched spools now and once more after
 * stable_for.  Under mu. */
static void read_inotify(struct server *s, int64_t now)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct profile_set *set = &s->ps->set;
    ssize_t n;
    while ((n = read(s->inotify, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            for (size_t i = 0; i < set->n && ev->wd >= 0; i++) /* -1: IN_Q_OVERFLOW */
                if (s->wd[i] == ev->wd) {
                    const struct profile *pr = set->v[i];
                    int64_t later = now + pr->source.stable_for_ms + 50;
                    if (pr->schedule.cron)
                        continue; /* a cron schedule says when files are taken */
                    s->next_poll[i] = now;
                    s->asked[i] = true;
                    /* the follow-up observation that proves stability */
                    if (pr->source.stable_for_ms && s->next_poll[i + set->n] > later)
                        s->next_poll[i + set->n] = later;
                }
            p += sizeof *ev + ev->len;
        }
    }
}

/* ---- reload, off the main thread ---- */

static void *reload_main(void *arg)
{
    struct server *s = arg;
    struct profile_set *fresh = xcalloc(1, sizeof *fresh);
    struct diags d = {0};
    if (profiles_load(s->cfg, NULL, 0, fresh, &d) < 0) {
        for (size_t i = 0; i < d.n; i++)
            wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL, "%s", d.msg[i]);
        wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL,
             "%zu problem%s in the new profiles; the running ones stay in force", d.n,
             d.n == 1 ? "" : "s");
        goto refused;
    }
    for (size_t i = 0; i < fresh->n; i++) {
        struct validator *v = validator_compile(s->cfg, fresh->v[i], &d);
        validator_free(v);
    }
    if (d.n) {
        for (size_t i = 0; i < d.n; i++)
            wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL, "%s", d.msg[i]);
        goto refused;
    }
    s->fresh = fresh;
    atomic_store(&s->reload_done, true);
    wake_main(s);
    return NULL;
refused:
    diag_free(&d);
    profiles_free(fresh);
    free(fresh);
    s->fresh = NULL;
    atomic_store(&s->reload_done, true);
    wake_main(s);
    return NULL;
}

/* The reload thread finished: swap in its set (or keep the old one). */
static void reload_finish(struct server *s)
{
    pthread_join(s->reload_thread, NULL);
    s->reloading = false;
    atomic_store(&s->reload_done, false);
    if (s->fresh) {
        struct profset *ps = profset_new(s->fresh);
        free(s->fresh);
        s->fresh = NULL;
        runner_swap(s->runner, profset_hold(ps));
        pthread_mutex_lock(&s->mu);
        profset_drop(s->ps);
        s->ps = ps;
        schedule_all(s, now_ms());
        if (s->inotify >= 0) {
            close(s->inotify);
            s->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        }
        watch_spools(s);
        pthread_mutex_unlock(&s->mu);
        wlog(LOG_INFO, NULL, NULL, "reloaded", NULL, "%zu profiles loaded", ps->set.n);
        atomic_store(&s->sla_now, true);
    }
    notify_send("READY=1");
}

/* ---- keeper: SLA windows, alerts, sightings ---- */

/*
 * Take-over, after this node's own leases are renewed (so it never takes
 * its own): runner_take_over, up to TAKEOVER_BATCH at a time, for the
 * profiles this node runs; a full batch is followed by another at the next
 * tick.
 */
#define TAKEOVER_BATCH 64

/* The enabled profiles of the current set, comma-separated (malloc'd;
 * "" when none): a node takes over only intakes it can carry on. */
static char *running_profiles(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    char *out = runner_enabled_profiles(&s->ps->set);
    pthread_mutex_unlock(&s->mu);
    return out;
}

static void take_over(struct server *s, int64_t now)
{
    struct werr e;
    char *mine = running_profiles(s);
    int n = runner_take_over(s->runner, s->keeper_ledger, mine, now, TAKEOVER_BATCH, true, &e);
    free(mine);
    if (n < 0)
        wlog(LOG_ERROR, NULL, NULL, "takeover_failed", NULL, "node %s: ledger: %s", ledger_node(),
             e.msg);
    s->takeover_more = n >= TAKEOVER_BATCH;
}

static int64_t keeper_tick(void *arg)
{
    struct server *s = arg;
    int64_t now = now_ms();
    struct werr e;
    if (!s->keeper_ledger &&
        !(s->keeper_ledger =
              ledger_open(s->cfg->ledger_type, s->cfg->ledger_path, s->cfg->ledger_dsn_file, &e))) {
        wlog(LOG_ERROR, NULL, NULL, "sla_check_failed", NULL, "ledger: %s", e.msg);
        return 5000;
    }
    struct profset *ps = runner_profiles(s->runner);
    if (atomic_exchange(&s->sla_now, false) || now - s->last_sla >= SLA_EVERY_MS) {
        s->last_sla = now;
        sla_check(s->sla, s->keeper_ledger, &ps->set, sla_now());
    }
    /* Sightings of files that are gone: keep them three poll intervals (a
     * month for cron schedules) so a slow schedule never forgets a file
     * that is still there. */
    if (now - s->last_prune >= PRUNE_EVERY_MS) {
        s->last_prune = now;
        for (size_t i = 0; i < ps->set.n; i++) {
            const struct profile *p = ps->set.v[i];
            int64_t keep = 31LL * 86400 * 1000;
            if (p->schedule.every_ms)
                keep = 3 * p->schedule.every_ms > 86400000 ? 3 * p->schedule.every_ms : 86400000;
            ledger_sightings_prune(s->keeper_ledger, p->name, now - keep, &e);
        }
    }
    profset_drop(ps);
    sla_reap(s->sla);
    /* This node's heartbeat, then the leases of the intakes it holds, every
     * third of a lease (ledger.h, "Nodes and leases"): `wharf status`
     * lists the node, and a live node's intakes are never taken over. */
    if (ledger_node() && ledger_lease_ms() > 0 &&
        (now - s->last_beat >= ledger_lease_ms() / 3 || s->takeover_more)) {
        s->last_beat = now;
        if (ledger_node_beat(s->keeper_ledger, ledger_node(), (int64_t)getpid(), s->started_ms, now,
                             &e) < 0 ||
            ledger_lease_renew(s->keeper_ledger, ledger_node(), now + ledger_lease_ms(), NULL, &e) <
                0)
            wlog(LOG_ERROR, NULL, NULL, "heartbeat_failed", NULL, "node %s: ledger: %s",
                 ledger_node(), e.msg);
        else
            take_over(s, now);
    }
    return 1000;
}

static void keeper_done(void *arg)
{
    struct server *s = arg;
    sla_free(s->sla);
    s->sla = NULL;
    if (s->keeper_ledger)
        ledger_close(s->keeper_ledger);
    s->keeper_ledger = NULL;
}

/* ---- the main loop ---- */

/* Queue what is due; returns when to look again. */
static int64_t schedule_polls(struct server *s, int64_t now)
{
    int64_t wake = now + 1000;
    bool full = runner_backlog(s->runner) >= QUEUE_MAX - 16;
    pthread_mutex_lock(&s->mu);
    const struct profile_set *set = &s->ps->set;
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = set->v[i];
        int64_t *np = &s->next_poll[i], *follow = &s->next_poll[i + set->n];
        if (*follow <= now) {
            *np = now;
            *follow = INT64_MAX;
            s->asked[i] = true;
        }
        if (!p->enabled || *np > now || full)
            continue; /* full: back pressure, poll again when the queue drains */
        *np = next_poll_time(p, now);
        runner_poll(s->runner, p->name, s->asked[i]);
        s->asked[i] = false;
    }
    for (size_t i = 0; i < 2 * set->n; i++)
        if (s->next_poll[i] < wake)
            wake = s->next_poll[i];
    pthread_mutex_unlock(&s->mu);
    return wake;
}

enum server_exit server_run(const struct wharf_config *cfg, struct profile_set *set)
{
    struct server s = {.cfg = cfg, .inotify = -1, .wake = {-1, -1}};
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t mine, waiting;
    struct werr e;
    int64_t last_due = 0, last_wd = 0, wd_ms;
    enum server_exit rc = SERVER_STOPPED;

    /* SIGTERM, SIGINT and SIGHUP only ever reach the main thread, and only
     * while it waits in ppoll(): every thread started below inherits the
     * blocked mask. */
    sigemptyset(&mine);
    sigaddset(&mine, SIGTERM);
    sigaddset(&mine, SIGINT);
    sigaddset(&mine, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mine, &waiting);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGHUP);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&s.mu, NULL);
    if (pipe2(s.wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "started", NULL, "pipe: %s", strerror(errno));
        return SERVER_FAILED;
    }
    s.ps = profset_new(set);
    schedule_all(&s, now_ms());
    s.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watch_spools(&s);
    struct runner_hooks hooks = {.polled = server_polled, .ctx = &s};
    s.runner = runner_start(cfg, profset_hold(s.ps), cfg->workers, QUEUE_MAX, &hooks);
    if (!s.runner) {
        rc = SERVER_FAILED;
        goto out;
    }
    s.sla = sla_new(cfg);
    s.last_prune = s.started_ms = now_ms();
    if (periodic_start(&s.keeper, keeper_tick, keeper_done, &s) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "sla_check_failed", NULL, "cannot start the SLA thread: %s",
             strerror(errno));
        sla_free(s.sla);
        s.sla = NULL;
    }
    struct audit *audit = audit_start(cfg);           /* verify.every, on its own thread */
    struct reconciler *recon = reconciler_start(cfg); /* reconcile.every, the same */
    struct console_hooks ch = {.poll = console_poll, .ctx = &s};
    struct console *console = console_start(cfg, &ch, &e); /* console:, its own threads */
    if (!console && e.msg[0]) {
        fprintf(stderr, "wharf run: %s\n", e.msg);
        sig_stop = 1; /* refuse to run without the console it was told to serve */
        rc = SERVER_CONFIG;
    }
    wd_ms = notify_watchdog_ms();
    wlog(LOG_INFO, NULL, NULL, "started", NULL, "wharf %s: %zu profiles, %d workers, state in %s",
         WHARF_VERSION, s.ps->set.n, cfg->workers, cfg->state_dir);
    notify_send("READY=1\nSTATUS=running");

    while (!sig_stop) {
        int64_t now = now_ms();
        if (sig_hup && !s.reloading) {
            sig_hup = 0;
            notify_send("RELOADING=1");
            if (pthread_create(&s.reload_thread, NULL, reload_main, &s) == 0)
                s.reloading = true;
            else {
                wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL,
                     "cannot start the reload thread: %s", strerror(errno));
                notify_send("READY=1");
            }
        }
        if (s.reloading && atomic_load(&s.reload_done)) {
            reload_finish(&s);
            last_due = 0;
        }
        /* Retries and intakes left unfinished by an earlier run. */
        if (now - last_due >= DUE_EVERY_MS) {
            last_due = now;
            runner_due(s.runner);
        }
        int64_t wake = schedule_polls(&s, now);
        if (wd_ms && now - last_wd >= wd_ms / 4) {
            notify_send("WATCHDOG=1");
            last_wd = now;
        }
        now = now_ms();
        int64_t timeout = wake - now;
        if (timeout < 0)
            timeout = 0;
        if (timeout > 1000)
            timeout = 1000;
        if (wd_ms && timeout > last_wd + wd_ms / 4 - now)
            timeout = last_wd + wd_ms / 4 - now; /* never late for the watchdog */
        if (timeout < 0)
            timeout = 0;
        struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
        struct pollfd pfd[2] = {{.fd = s.wake[0], .events = POLLIN},
                                {.fd = s.inotify, .events = POLLIN}};
        if (ppoll(pfd, s.inotify >= 0 ? 2 : 1, &ts, &waiting) > 0) {
            char buf[64];
            while (read(s.wake[0], buf, sizeof buf) > 0)
                ;
            if (pfd[1].revents & POLLIN) {
                pthread_mutex_lock(&s.mu);
                read_inotify(&s, now_ms());
                pthread_mutex_unlock(&s.mu);
            }
        }
    }

    wlog(LOG_INFO, NULL, NULL, "stopping", NULL,
         "signal received: no new claims; in-flight intakes stop at their next committed state");
    notify_send("STOPPING=1");
    if (s.reloading) {
        pthread_join(s.reload_thread, NULL);
        if (s.fresh) {
            profiles_free(s.fresh);
            free(s.fresh);
        }
    }
    if (s.sla)
        periodic_stop(&s.keeper); /* frees s.sla (keeper_done); it reads the runner's set */
    console_stop(console);        /* first: its "poll now" calls into the runner */
    runner_stop(s.runner);
    audit_stop(audit);
    reconciler_stop(recon);
    wlog(LOG_INFO, NULL, NULL, "stopped", NULL, "clean shutdown");
out:
    profset_drop(s.ps);
    free(s.next_poll);
    free(s.asked);
    free(s.fails);
    free(s.down_since);
    free(s.wd);
    if (s.inotify >= 0)
        close(s.inotify);
    close(s.wake[0]);
    close(s.wake[1]);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
