/*
 * server: `wharf run`, the long-running foreground process.
 *
 * Threads:
 *   main     schedules polls (every: per profile; a spool's inotify events
 *            poll it at once and again after stable_for), claims complete
 *            drops into a bounded queue, re-queues due retries, handles
 *            signals, reload and the systemd watchdog;
 *   workers  `workers:` threads, each with its own ledger connection and
 *            pipeline, advancing one intake at a time.  A profile never has
 *            more than `concurrency:` intakes in flight; queue order is
 *            claim order (by name or mtime when `order:` says so).
 *
 * Back pressure: while the queue is full, polling pauses.
 * SIGTERM/SIGINT: stop claiming; workers stop at the next committed state
 * (a load in progress is rolled back); exit.  Interrupted intakes resume at
 * the next start.  SIGHUP: reload profiles; an invalid new set is refused
 * with its errors and the old one keeps running.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cli/cli.h"
#include "console/console.h"
#include "daemon/audit.h"
#include "daemon/reconciler.h"
#include "daemon/lock.h"
#include "daemon/notify.h"
#include "daemon/sla.h"
#include "pipeline.h"
#include "source/source.h"
#include "util/cron.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"
#include "validate/validate.h"

#define QUEUE_MAX        256
#define DUE_EVERY_MS     5000
#define SLA_EVERY_MS     60000
#define DEFAULT_EVERY_MS 60000

struct job_slot {
    char id[ID_LEN];
    char profile[80];
};

struct server {
    struct cli *cli;
    const struct wharf_config *cfg;
    struct profile_set *profiles;
    unsigned generation;
    pthread_mutex_t mu;
    pthread_cond_t cv, idle;
    struct job_slot queue[QUEUE_MAX];
    size_t nq;
    char (*inflight)[ID_LEN];
    char (*inflight_profile)[80];
    int workers, busy;
    bool stop;
    /* main-thread state */
    int64_t *next_poll;
    int *fails;          /* consecutive poll failures per profile */
    int64_t *down_since; /* first failure of the current run */
    int inotify;
    int *wd;
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

static bool queued_or_running(struct server *s, const char *id)
{
    for (size_t i = 0; i < s->nq; i++)
        if (!strcmp(s->queue[i].id, id))
            return true;
    for (int i = 0; i < s->workers; i++)
        if (!strcmp(s->inflight[i], id))
            return true;
    return false;
}

static int running_for(struct server *s, const char *profile)
{
    int n = 0;
    for (int i = 0; i < s->workers; i++)
        if (s->inflight[i][0] && !strcmp(s->inflight_profile[i], profile))
            n++;
    return n;
}

/* Enqueue unless present; false when the queue is full. */
static bool enqueue(struct server *s, const char *id, const char *profile)
{
    bool ok = true;
    pthread_mutex_lock(&s->mu);
    if (!queued_or_running(s, id)) {
        if (s->nq == QUEUE_MAX)
            ok = false;
        else {
            snprintf(s->queue[s->nq].id, ID_LEN, "%s", id);
            snprintf(s->queue[s->nq].profile, sizeof s->queue[0].profile, "%s", profile);
            s->nq++;
            pthread_cond_signal(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

struct worker_arg {
    struct server *s;
    int index;
};

static void *worker(void *arg)
{
    struct worker_arg *wa = arg;
    struct server *s = wa->s;
    struct werr e;
    struct ledger *l =
        ledger_open(s->cfg->ledger_type, s->cfg->ledger_path, s->cfg->ledger_dsn_file, &e);
    struct pipeline *pl = NULL;
    unsigned gen = ~0u;

    if (!l) {
        wlog(LOG_ERROR, NULL, NULL, "worker", NULL, "ledger: %s", e.msg);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        size_t pick = s->nq;
        while (!s->stop) {
            for (pick = 0; pick < s->nq; pick++) {
                const struct profile *p = profiles_find(s->profiles, s->queue[pick].profile);
                int limit = p ? p->concurrency : 1;
                if (running_for(s, s->queue[pick].profile) < limit)
                    break;
            }
            if (pick < s->nq)
                break;
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->stop)
            break;
        struct job_slot job = s->queue[pick];
        memmove(&s->queue[pick], &s->queue[pick + 1], (s->nq - pick - 1) * sizeof *s->queue);
        s->nq--;
        memcpy(s->inflight[wa->index], job.id, ID_LEN);
        memcpy(s->inflight_profile[wa->index], job.profile, sizeof job.profile);
        s->busy++;
        if (gen != s->generation) {
            pipeline_free(pl);
            pl = pipeline_new(s->cfg, s->profiles, l);
            gen = s->generation;
        }
        pthread_mutex_unlock(&s->mu);

        pipeline_advance(pl, job.id, NULL);

        pthread_mutex_lock(&s->mu);
        bool idle = s->nq == 0;
        pthread_mutex_unlock(&s->mu);
        if (idle) /* close SFTP connections and target databases, not under the lock */
            pipeline_release_sources(pl, 0);
        pthread_mutex_lock(&s->mu);
        s->inflight[wa->index][0] = 0;
        s->busy--;
        pthread_cond_broadcast(&s->cv);
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    pipeline_free(pl);
    ledger_close(l);
    return NULL;
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

/* Fresh schedule for a (re)loaded set: every: profiles poll at once, cron
 * profiles at their next run; no follow-ups pending. */
static void schedule_all(struct server *s, int64_t now)
{
    free(s->next_poll);
    free(s->fails);
    free(s->down_since);
    s->next_poll = xcalloc(2 * s->profiles->n + 1, sizeof *s->next_poll);
    s->fails = xcalloc(s->profiles->n + 1, sizeof *s->fails);
    s->down_since = xcalloc(s->profiles->n + 1, sizeof *s->down_since);
    for (size_t i = 0; i < s->profiles->n; i++) {
        const struct profile *p = s->profiles->v[i];
        s->next_poll[i] = p->schedule.cron ? next_poll_time(p, now) : now;
        s->next_poll[i + s->profiles->n] = INT64_MAX;
    }
}

/*
 * A failed poll: back off exponentially with jitter (from min(every, 5s),
 * doubling, capped at 15 minutes); after CIRCUIT_AFTER consecutive failures
 * the source is marked down (circuit open) with the reason, which `wharf
 * status` and `wharf show` print, and is only probed at the backoff times.
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

static void watch_spools(struct server *s)
{
    if (s->inotify < 0)
        return;
    free(s->wd);
    s->wd = xcalloc(s->profiles->n + 1, sizeof *s->wd);
    for (size_t i = 0; i < s->profiles->n; i++) {
        const struct profile *p = s->profiles->v[i];
        s->wd[i] = -1;
        if (p->source.type == SOURCE_SPOOL && p->enabled)
            s->wd[i] = inotify_add_watch(s->inotify, p->source.path,
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
    }
}

/* Drain inotify: poll the touched spools now and once more after stable_for. */
static void read_inotify(struct server *s, int64_t now)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(s->inotify, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            for (size_t i = 0; i < s->profiles->n; i++)
                if (s->wd[i] == ev->wd) {
                    const struct profile *pr = s->profiles->v[i];
                    int64_t later = now + pr->source.stable_for_ms + 50;
                    if (pr->schedule.cron)
                        continue; /* a cron schedule says when files are taken */
                    s->next_poll[i] = now;
                    /* the follow-up observation that proves stability */
                    if (pr->source.stable_for_ms && s->next_poll[i + s->profiles->n] > later)
                        s->next_poll[i + s->profiles->n] = later;
                }
            p += sizeof *ev + ev->len;
        }
    }
}

static int reload(struct server *s)
{
    struct profile_set *fresh = xcalloc(1, sizeof *fresh);
    struct diags d = {0};
    if (profiles_load(s->cfg, NULL, 0, fresh, &d) < 0) {
        for (size_t i = 0; i < d.n; i++)
            wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL, "%s", d.msg[i]);
        wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL,
             "%zu problem%s in the new profiles; the running ones stay in force", d.n,
             d.n == 1 ? "" : "s");
        diag_free(&d);
        profiles_free(fresh);
        free(fresh);
        return -1;
    }
    for (size_t i = 0; i < fresh->n; i++) {
        struct validator *v = validator_compile(s->cfg, fresh->v[i], &d);
        validator_free(v);
    }
    if (d.n) {
        for (size_t i = 0; i < d.n; i++)
            wlog(LOG_ERROR, NULL, NULL, "reload_refused", NULL, "%s", d.msg[i]);
        diag_free(&d);
        profiles_free(fresh);
        free(fresh);
        return -1;
    }
    /* Swap only when no worker is using the old set. */
    pthread_mutex_lock(&s->mu);
    while (s->busy)
        pthread_cond_wait(&s->idle, &s->mu);
    profiles_free(s->profiles);
    free(s->profiles);
    s->profiles = fresh;
    s->generation++;
    s->nq = 0; /* re-queued from the ledger below */
    pthread_mutex_unlock(&s->mu);
    schedule_all(s, now_ms());
    if (s->inotify >= 0) {
        close(s->inotify);
        s->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    }
    watch_spools(s);
    wlog(LOG_INFO, NULL, NULL, "reloaded", NULL, "%zu profiles loaded", fresh->n);
    return 0;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
    struct server s = {.cli = c, .inotify = -1};
    struct sigaction sa = {.sa_handler = on_signal};
    pthread_t *threads;
    struct worker_arg *args;
    struct werr e;
    int64_t last_due = 0, last_wd = 0, last_sla = 0, last_prune = now_ms(), wd_ms;
    struct sla *sla;
    int r, lock, run_rc = EXIT_OK;

    (void)argv;
    if (argc > 1) {
        cli_usage_error("run", "takes no arguments");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    lock = statelock_acquire(&c->cfg, &e);
    if (lock < 0) {
        fprintf(stderr, "wharf run: %s\n", e.msg);
        return lock == -2 ? EXIT_LOCKED : EXIT_FAILURE_OP;
    }
    s.cfg = &c->cfg;
    s.profiles = xcalloc(1, sizeof *s.profiles);
    if (cli_profiles(c, NULL, 0, s.profiles))
        wlog(LOG_ERROR, NULL, NULL, "profiles", NULL,
             "some profiles have problems and are not running (wharf check shows them)");
    schedule_all(&s, now_ms());
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_cond_init(&s.idle, NULL);
    s.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watch_spools(&s);
    s.workers = c->cfg.workers;
    s.inflight = xcalloc((size_t)s.workers, sizeof *s.inflight);
    s.inflight_profile = xcalloc((size_t)s.workers, sizeof *s.inflight_profile);
    threads = xcalloc((size_t)s.workers, sizeof *threads);
    args = xcalloc((size_t)s.workers, sizeof *args);
    for (int i = 0; i < s.workers; i++) {
        args[i] = (struct worker_arg){&s, i};
        pthread_create(&threads[i], NULL, worker, &args[i]);
    }
    struct pipeline *pl = pipeline_new(&c->cfg, s.profiles, c->ledger);
    unsigned gen = s.generation;
    sla = sla_new(&c->cfg);
    struct audit *audit = audit_start(&c->cfg);           /* verify.every, on its own thread */
    struct reconciler *recon = reconciler_start(&c->cfg); /* reconcile.every, the same */
    struct console *console = console_start(&c->cfg, &e); /* console:, its own threads */
    if (!console && e.msg[0]) {
        fprintf(stderr, "wharf run: %s\n", e.msg);
        sig_stop = 1; /* refuse to run without the console it was told to serve */
        run_rc = EXIT_CONFIG;
    }
    wd_ms = notify_watchdog_ms();
    wlog(LOG_INFO, NULL, NULL, "started", NULL, "wharf %s: %zu profiles, %d workers, state in %s",
         WHARF_VERSION, s.profiles->n, s.workers, c->cfg.state_dir);
    notify_send("READY=1\nSTATUS=running");

    while (!sig_stop) {
        int64_t now = now_ms(), wake = now + 1000;
        if (sig_hup) {
            sig_hup = 0;
            notify_send("RELOADING=1");
            reload(&s);
            notify_send("READY=1");
            last_due = 0;
            last_sla = 0;
        }
        if (gen != s.generation) {
            pipeline_free(pl);
            pl = pipeline_new(&c->cfg, s.profiles, c->ledger);
            gen = s.generation;
        }
        /* Retries and intakes left unfinished by an earlier run. */
        if (now - last_due >= DUE_EVERY_MS) {
            char **ids = NULL;
            size_t n = 0;
            struct intake in = {0};
            last_due = now;
            if (pipeline_due(pl, NULL, &ids, &n, &e) == 0)
                for (size_t i = 0; i < n; i++) {
                    if (ledger_get(c->ledger, ids[i], &in, &e) > 0 &&
                        profiles_find(s.profiles, in.profile))
                        enqueue(&s, in.id, in.profile);
                    intake_clear(&in);
                }
            for (size_t i = 0; i < n; i++)
                free(ids[i]);
            free(ids);
        }
        for (size_t i = 0; i < s.profiles->n && !sig_stop; i++) {
            const struct profile *p = s.profiles->v[i];
            int64_t *np = &s.next_poll[i], *follow = &s.next_poll[i + s.profiles->n];
            if (*follow <= now) {
                *np = now;
                *follow = INT64_MAX;
            }
            if (!p->enabled || *np > now)
                continue;
            pthread_mutex_lock(&s.mu);
            bool full = s.nq >= QUEUE_MAX - 16;
            pthread_mutex_unlock(&s.mu);
            if (full)
                break; /* back pressure: poll again when the queue drains */
            *np = next_poll_time(p, now);
            if (ledger_paused(c->ledger, p->name))
                continue;
            char **ids = NULL;
            size_t n = 0;
            struct pipeline_stats st = {0};
            if (pipeline_poll(pl, p, &ids, &n, &st, &e) < 0) {
                char *h = poll_failed(&s, i, p, now, &e);
                ledger_set_health(c->ledger, p->name, h);
                wlog(LOG_ERROR, p->name, NULL,
                     s.fails[i] >= CIRCUIT_AFTER ? "source_down" : "poll_failed", NULL, "%s", h);
                free(h);
                /* the connection may be half dead: reconnect next time */
                pipeline_release_sources(pl, 0);
            } else {
                if (s.fails[i] >= CIRCUIT_AFTER)
                    wlog(LOG_INFO, p->name, NULL, "source_recovered", NULL,
                         "source reachable again after %d failed polls", s.fails[i]);
                s.fails[i] = 0;
                ledger_set_health(c->ledger, p->name, "ok");
                /* A drop seen but not yet stable: look again once it can be. */
                if (st.listed > st.claimed && p->source.stable_for_ms &&
                    *follow > now + p->source.stable_for_ms + 50)
                    *follow = now + p->source.stable_for_ms + 50;
            }
            for (size_t k = 0; k < n; k++) {
                enqueue(&s, ids[k], p->name);
                free(ids[k]);
            }
            free(ids);
        }
        /* Listing connections are not kept between poll rounds. */
        pipeline_release_sources(pl, 0);
        /* Freshness windows: about once a minute, and right after a reload. */
        /* Sightings of files that are gone: keep them three poll intervals
         * (a month for cron schedules) so a slow schedule never forgets a
         * file that is still there. */
        if (now - last_prune >= 3600 * 1000) {
            last_prune = now;
            for (size_t i = 0; i < s.profiles->n; i++) {
                const struct profile *p = s.profiles->v[i];
                int64_t keep = 31LL * 86400 * 1000;
                if (p->schedule.every_ms)
                    keep =
                        3 * p->schedule.every_ms > 86400000 ? 3 * p->schedule.every_ms : 86400000;
                ledger_sightings_prune(c->ledger, p->name, now - keep, &e);
            }
        }
        if (now - last_sla >= SLA_EVERY_MS) {
            last_sla = now;
            sla_check(sla, c->ledger, s.profiles, sla_now());
        }
        sla_reap(sla);
        for (size_t i = 0; i < s.profiles->n; i++) {
            if (s.next_poll[i] < wake)
                wake = s.next_poll[i];
            if (s.next_poll[i + s.profiles->n] < wake)
                wake = s.next_poll[i + s.profiles->n];
        }
        if (wd_ms && now - last_wd >= wd_ms / 2) {
            notify_send("WATCHDOG=1");
            last_wd = now;
        }
        int timeout = (int)(wake - now_ms());
        if (timeout < 0)
            timeout = 0;
        if (timeout > 1000)
            timeout = 1000;
        if (wd_ms && timeout > wd_ms / 4)
            timeout = (int)(wd_ms / 4); /* never late for the watchdog */
        struct pollfd pfd = {.fd = s.inotify, .events = POLLIN};
        if (poll(&pfd, s.inotify >= 0 ? 1 : 0, timeout) > 0)
            read_inotify(&s, now_ms());
    }

    wlog(LOG_INFO, NULL, NULL, "stopping", NULL,
         "signal received: no new claims; in-flight intakes stop at their next committed state");
    notify_send("STOPPING=1");
    pthread_mutex_lock(&s.mu);
    s.stop = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (int i = 0; i < s.workers; i++)
        pthread_join(threads[i], NULL);
    console_stop(console);
    audit_stop(audit);
    reconciler_stop(recon);
    sla_free(sla);
    wlog(LOG_INFO, NULL, NULL, "stopped", NULL, "clean shutdown");
    pipeline_free(pl);
    profiles_free(s.profiles);
    free(s.profiles);
    free(s.next_poll);
    free(s.fails);
    free(s.down_since);
    free(s.wd);
    free(s.inflight);
    free(s.inflight_profile);
    free(threads);
    free(args);
    if (s.inotify >= 0)
        close(s.inotify);
    close(lock);
    return run_rc;
}
