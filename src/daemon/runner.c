/*
 * runner: see runner.h.  One mutex guards the queue, the running slots and
 * the current set; jobs themselves run outside it.  Every worker owns a
 * ledger connection for its whole life and a pipeline built on the set of
 * the last job it ran (rebuilt when a job starts on a newer set, dropped
 * when the worker idles on an old one, so an old set does not outlive its
 * last job for long).
 */
#include "daemon/runner.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/obs.h"
#include "util/parse.h"
#include "util/xmalloc.h"

enum job_kind { JOB_NONE, JOB_ADVANCE, JOB_POLL, JOB_DUE };

struct job {
    enum job_kind kind;
    char id[ID_LEN];  /* JOB_ADVANCE */
    char profile[80]; /* JOB_ADVANCE, JOB_POLL (names are at most 64) */
    bool asked;       /* JOB_POLL: asked for, not only scheduled (ledger_poll_begin) */
};

struct slot {
    struct job job;   /* kind JOB_NONE: idle */
    bool again;       /* JOB_POLL: polled for while running */
    bool again_asked; /* and one of those was asked for */
};

struct worker {
    struct runner *r;
    int index;
    pthread_t thread;
    bool started;
};

struct runner {
    const struct wharf_config *cfg;
    struct runner_hooks hooks;
    size_t queue_max;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job queued or finished, a swap, stop */
    struct profset *ps; /* current */
    struct job *q;
    size_t nq, cap, n_advance;
    struct slot *running;
    struct worker *w;
    int workers, alive; /* alive: workers with a ledger connection */
    bool stop;
    struct pipeline_stats st;
    int errors; /* ledger failures: a worker's connection, a due job's query */
};

static void stats_add(struct pipeline_stats *a, const struct pipeline_stats *b)
{
    a->listed += b->listed;
    a->claimed += b->claimed;
    a->quarantined += b->quarantined;
    a->refused += b->refused;
    a->done += b->done;
    a->loaded += b->loaded;
    a->rejected += b->rejected;
    a->duplicates += b->duplicates;
    a->failed += b->failed;
    a->retrying += b->retrying;
    a->held += b->held;
}

static bool same(const struct job *a, const struct job *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case JOB_ADVANCE:
        return !strcmp(a->id, b->id);
    case JOB_POLL:
        return !strcmp(a->profile, b->profile);
    default:
        return true;
    }
}

/* Under mu: the slot running a job like j, or NULL. */
static struct slot *running_like(struct runner *r, const struct job *j)
{
    for (int i = 0; i < r->workers; i++)
        if (same(&r->running[i].job, j))
            return &r->running[i];
    return NULL;
}

static struct job *queued_like(struct runner *r, const struct job *j)
{
    for (size_t i = 0; i < r->nq; i++)
        if (same(&r->q[i], j))
            return &r->q[i];
    return NULL;
}

/* Under mu: the queue and the workers as /metrics shows them (util/obs.h). */
static void gauges(struct runner *r)
{
    int64_t b = 0;
    for (int i = 0; i < r->workers; i++)
        b += r->running[i].job.kind != JOB_NONE;
    obs_gauge_set(OBS_QUEUE_DEPTH, (int64_t)r->nq);
    obs_gauge_set(OBS_WORKERS_BUSY, b);
    obs_gauge_set(OBS_WORKERS, r->alive);
}

/* Under mu: queue j by the rules in runner.h. */
static void push(struct runner *r, const struct job *j)
{
    struct slot *s;
    struct job *q;
    if (r->stop)
        return;
    if ((q = queued_like(r, j))) {
        q->asked |= j->asked;
        return;
    }
    if ((s = running_like(r, j))) {
        if (j->kind == JOB_POLL) {
            s->again = true;
            s->again_asked |= j->asked;
        }
        return;
    }
    if (j->kind == JOB_ADVANCE && r->queue_max && r->n_advance >= r->queue_max)
        return; /* back pressure: the next due job finds it */
    if (r->nq == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->q = xrealloc(r->q, r->cap * sizeof *r->q);
    }
    r->q[r->nq++] = *j;
    if (j->kind == JOB_ADVANCE)
        r->n_advance++;
    gauges(r);
    pthread_cond_broadcast(&r->cv);
}

static void push_advance(struct runner *r, const char *id, const char *profile)
{
    struct job j = {.kind = JOB_ADVANCE};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.profile, sizeof j.profile, "%s", profile);
    pthread_mutex_lock(&r->mu);
    push(r, &j);
    pthread_mutex_unlock(&r->mu);
}

static int in_flight(struct runner *r, const char *profile)
{
    int n = 0;
    for (int i = 0; i < r->workers; i++)
        if (r->running[i].job.kind == JOB_ADVANCE && !strcmp(r->running[i].job.profile, profile))
            n++;
    return n;
}

static void unqueue(struct runner *r, size_t i)
{
    if (r->q[i].kind == JOB_ADVANCE)
        r->n_advance--;
    memmove(&r->q[i], &r->q[i + 1], (r->nq - i - 1) * sizeof *r->q);
    r->nq--;
}

/* Under mu: the first queued job that may start now, taken off the queue;
 * jobs of profiles the current set no longer has are dropped. */
static bool pick(struct runner *r, struct job *out)
{
    for (size_t i = 0; i < r->nq;) {
        struct job *j = &r->q[i];
        const struct profile *p = NULL;
        if (j->kind != JOB_DUE && !(p = profiles_find(&r->ps->set, j->profile))) {
            unqueue(r, i);
            continue;
        }
        bool may = j->kind == JOB_ADVANCE ? in_flight(r, j->profile) < p->concurrency
                                          : !running_like(r, j);
        if (may) {
            *out = *j;
            unqueue(r, i);
            return true;
        }
        i++;
    }
    return false;
}

static bool busy(struct runner *r)
{
    if (r->nq)
        return true;
    for (int i = 0; i < r->workers; i++)
        if (r->running[i].job.kind != JOB_NONE)
            return true;
    return false;
}

/* How long after a poll that started at `start` the next scheduled one is
 * due (ledger_poll_end): its `every:` less a tenth (at most 1 s), so that
 * the same node's next timer, which fires a little early against a poll
 * that started late, still finds it due; for cron schedules, half their
 * one-minute resolution, so nodes firing at the same minute poll once. */
static int64_t poll_gap(const struct profile *p)
{
    int64_t every = p->schedule.every_ms;
    if (p->schedule.cron)
        return 30000;
    if (!every)
        every = 60000;
    return every - (every / 10 < 1000 ? every / 10 : 1000);
}

/* One poll of p; -1 when it failed (the source's backoff then decides
 * when it is tried again, not a poll asked for while this one ran).  With
 * several nodes, p's source is polled by one at a time (ledger.h,
 * ledger_poll_begin): a poll that is not this node's turn is skipped. */
static int run_poll(struct runner *r, struct pipeline *pl, struct ledger *l,
                    const struct profile *p, bool asked, struct pipeline_stats *st)
{
    char **ids = NULL;
    size_t n = 0;
    struct werr e = {0};
    struct pipeline_stats mine = {0};
    const char *node = ledger_node();
    int64_t start = now_ms();
    int rc, turn = 0;
    if (!p->enabled || ledger_paused(l, p->name))
        return 0;
    if (node && ledger_lease_ms() > 0) {
        turn = ledger_poll_begin(l, p->name, node, start, start + ledger_lease_ms(), asked, &e);
        if (turn == 0) {
            wlog(LOG_DEBUG, p->name, NULL, "poll_skipped", NULL,
                 "another node polls this source now, or its next poll is not due");
            return 0;
        }
        if (turn < 0) /* the poll's own ledger calls say more */
            wlog(LOG_WARN, p->name, NULL, "ledger", NULL, "poll turn: %s", e.msg);
    }
    wlog(LOG_DEBUG, p->name, NULL, "polling", NULL, "%s poll", asked ? "an asked" : "a scheduled");
    rc = pipeline_poll(pl, p, &ids, &n, &mine, &e);
    stats_add(st, &mine);
    if (r->hooks.polled)
        r->hooks.polled(r->hooks.ctx, l, p, rc, ids, n, &mine, &e);
    for (size_t k = 0; k < n; k++) {
        push_advance(r, ids[k], p->name);
        free(ids[k]);
    }
    free(ids);
    /* listing connections are not kept between polls (a failed one may be
     * half dead: reconnect next time) */
    pipeline_release_sources(pl, 0);
    if (turn == 1) {
        struct werr pe;
        if (ledger_poll_end(l, p->name, node, start + poll_gap(p), &pe) < 0)
            wlog(LOG_WARN, p->name, NULL, "ledger", NULL, "poll end: %s", pe.msg);
    }
    return rc < 0 ? -1 : 0;
}

static void run_due(struct runner *r, struct pipeline *pl, struct ledger *l,
                    const struct profile_set *set)
{
    char **ids = NULL;
    size_t n = 0;
    struct werr e;
    if (pipeline_due(pl, NULL, &ids, &n, &e) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "due_failed", NULL, "ledger: %s", e.msg);
        pthread_mutex_lock(&r->mu);
        r->errors++;
        pthread_mutex_unlock(&r->mu);
    }
    for (size_t i = 0; i < n; i++) {
        struct intake in = {0};
        bool stop;
        pthread_mutex_lock(&r->mu);
        stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        /* One that finished since the list was read is left alone, and so
         * is one whose attempt failed meanwhile (a worker ran it while this
         * list was read): it waits for its backoff, never re-run at once. */
        if (!stop && ledger_get(l, ids[i], &in, &e) > 0 && in.state != ST_DONE &&
            in.state != ST_FAILED && in.next_attempt_ms <= now_ms() &&
            profiles_find(set, in.profile))
            push_advance(r, in.id, in.profile);
        intake_clear(&in);
        free(ids[i]);
    }
    free(ids);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct runner *r = w->r;
    struct slot *me = &r->running[w->index];
    struct werr e;
    struct ledger *l =
        ledger_open(r->cfg->ledger_type, r->cfg->ledger_path, r->cfg->ledger_dsn_file, &e);
    struct pipeline *pl = NULL;
    struct profset *mine = NULL; /* the set pl was built on */

    pthread_mutex_lock(&r->mu);
    if (!l) {
        wlog(LOG_ERROR, NULL, NULL, "worker", NULL, "ledger: %s", e.msg);
        r->alive--;
        r->errors++;
        pthread_cond_broadcast(&r->cv);
    }
    while (l) {
        struct job j;
        if (r->stop)
            break;
        if (!pick(r, &j)) {
            if (mine && mine != r->ps) { /* idle on an old set: let it go */
                pthread_mutex_unlock(&r->mu);
                pipeline_free(pl);
                profset_drop(mine);
                pl = NULL;
                mine = NULL;
                pthread_mutex_lock(&r->mu);
                continue;
            }
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        me->job = j;
        me->again = false;
        me->again_asked = false;
        gauges(r);
        struct profset *ps = profset_hold(r->ps);
        pthread_mutex_unlock(&r->mu);

        struct pipeline_stats st = {0};
        int polled = 0;
        if (ps != mine) {
            pipeline_free(pl);
            profset_drop(mine);
            mine = profset_hold(ps);
            pl = pipeline_new(r->cfg, &mine->set, l);
            if (r->hooks.progress)
                pipeline_set_progress(pl, r->hooks.progress, r->hooks.progress_ctx);
        }
        const struct profile *p = profiles_find(&ps->set, j.profile);
        if (j.kind == JOB_ADVANCE)
            pipeline_advance(pl, j.id, &st);
        else if (j.kind == JOB_POLL && p)
            polled = run_poll(r, pl, l, p, j.asked, &st);
        else if (j.kind == JOB_DUE)
            run_due(r, pl, l, &ps->set);
        profset_drop(ps);

        pthread_mutex_lock(&r->mu);
        /* a poll asked for while this one ran is done now -- unless this
         * one failed: then the source's backoff (and circuit) says when the
         * next one comes, or a dead partner would be polled back to back */
        bool again = me->again && polled == 0;
        j.asked = me->again_asked;
        me->job.kind = JOB_NONE;
        gauges(r);
        stats_add(&r->st, &st);
        if (again)
            push(r, &j);
        bool idle = r->nq == 0;
        pthread_cond_broadcast(&r->cv);
        if (idle && pl) { /* close SFTP connections and targets, not under the lock */
            pthread_mutex_unlock(&r->mu);
            pipeline_release_sources(pl, 0);
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    pipeline_free(pl);
    profset_drop(mine);
    if (l)
        ledger_close(l);
    return NULL;
}

struct runner *runner_start(const struct wharf_config *cfg, struct profset *set, int workers,
                            size_t queue_max, const struct runner_hooks *hooks)
{
    struct runner *r = xcalloc(1, sizeof *r);
    sigset_t all, old;
    int started = 0;
    r->cfg = cfg;
    r->ps = set;
    r->queue_max = queue_max;
    if (hooks)
        r->hooks = *hooks;
    r->workers = workers > 0 ? workers : 1;
    r->running = xcalloc((size_t)r->workers, sizeof *r->running);
    r->w = xcalloc((size_t)r->workers, sizeof *r->w);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    /* the stop and reload signals are the main thread's: workers start
     * with them blocked (faults like SIGSEGV stay with the thread) */
    sigemptyset(&all);
    sigaddset(&all, SIGTERM);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < r->workers; i++) {
        r->w[i] = (struct worker){.r = r, .index = i};
        pthread_mutex_lock(&r->mu);
        r->alive++;
        pthread_mutex_unlock(&r->mu);
        if (pthread_create(&r->w[i].thread, NULL, work, &r->w[i]) == 0) {
            r->w[i].started = true;
            started++;
        } else {
            pthread_mutex_lock(&r->mu);
            r->alive--;
            pthread_mutex_unlock(&r->mu);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_lock(&r->mu);
    gauges(r);
    pthread_mutex_unlock(&r->mu);
    if (!started) {
        wlog(LOG_ERROR, NULL, NULL, "worker", NULL, "no worker thread could start");
        runner_stop(r);
        return NULL;
    }
    return r;
}

void runner_swap(struct runner *r, struct profset *set)
{
    pthread_mutex_lock(&r->mu);
    struct profset *old = r->ps;
    r->ps = set;
    pthread_cond_broadcast(&r->cv); /* idle workers let the old set go */
    pthread_mutex_unlock(&r->mu);
    profset_drop(old);
}

struct profset *runner_profiles(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    struct profset *ps = profset_hold(r->ps);
    pthread_mutex_unlock(&r->mu);
    return ps;
}

void runner_poll(struct runner *r, const char *profile, bool asked)
{
    struct job j = {.kind = JOB_POLL, .asked = asked};
    snprintf(j.profile, sizeof j.profile, "%s", profile);
    pthread_mutex_lock(&r->mu);
    push(r, &j);
    pthread_mutex_unlock(&r->mu);
}

void runner_advance(struct runner *r, const char *id, const char *profile)
{
    push_advance(r, id, profile);
}

void runner_due(struct runner *r)
{
    struct job j = {.kind = JOB_DUE};
    pthread_mutex_lock(&r->mu);
    push(r, &j);
    pthread_mutex_unlock(&r->mu);
}

size_t runner_backlog(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_advance;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void runner_drain(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    while (busy(r) && r->alive > 0 && !r->stop)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void runner_stats(struct runner *r, struct pipeline_stats *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}

int runner_errors(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->errors;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void runner_stop(struct runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    r->nq = 0;
    r->n_advance = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->workers; i++)
        if (r->w[i].started)
            pthread_join(r->w[i].thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    profset_drop(r->ps);
    free(r->q);
    free(r->running);
    free(r->w);
    free(r);
}
