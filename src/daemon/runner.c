/*
 * runner: see runner.h.  One mutex guards the queues, the running slots and
 * the current set; jobs themselves run outside it.  Every thread owns a
 * ledger connection for its whole life and a pipeline built on the set of
 * the last job it ran (rebuilt when a job starts on a newer set, dropped
 * when the thread idles on an old one, so an old set does not outlive its
 * last job for long).
 *
 * Two kinds of threads: `workers` serve the main queue (polls of spools,
 * advances, due jobs); "connection" threads, as many as the SFTP profiles'
 * source.connections together (at most MAX_CONN_THREADS), serve the
 * connections' queue: everything that talks to an SFTP source (its polls,
 * the take of each intake, the finish after sealing), at most
 * `connections` jobs of a profile at once, each thread on its own SSH
 * session.  An SFTP intake claimed by a poll is queued twice: its take on
 * the connections' queue and its advance on the main queue, marked
 * `taking` until the take is done; advances of a profile start in queue
 * order, so an advance still taking holds back the later ones (`order:`).
 * The advance stops at sealed and queues the finish.  Takes run ahead of
 * the advances by at most TAKE_AHEAD x connections files.
 *
 * A server that refuses a connection while other connections of the
 * profile work: the take goes back to the front of the queue, the profile
 * works with the connections it has until its queue is empty, and the
 * source health says so (ledger_source_connections, `wharf status`).
 */
#include "daemon/runner.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/log.h"
#include "util/obs.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define MAX_CONN_THREADS 64
#define TAKE_AHEAD       4

enum job_kind { JOB_NONE, JOB_ADVANCE, JOB_POLL, JOB_DUE, JOB_TAKE, JOB_FINISH };

struct job {
    enum job_kind kind;
    char id[ID_LEN];  /* JOB_ADVANCE, JOB_TAKE, JOB_FINISH */
    char profile[80]; /* all but JOB_DUE (names are at most 64) */
    uint64_t seq;     /* order of the main queue (ascending) */
    uint64_t link;    /* JOB_TAKE: seq of its intake's advance */
    bool asked;       /* JOB_POLL: asked for, not only scheduled (ledger_poll_begin) */
    bool taking;      /* JOB_ADVANCE: its take is queued or running */
    bool ahead;       /* JOB_ADVANCE: taken, counted in its profile's ahead */
    bool refused;     /* JOB_TAKE, JOB_FINISH: back in front after a refused
                       * connection (its advance may hold back the taken ones
                       * after it: the take-ahead bound must not hold it) */
};

/* Per SFTP profile: what its connections do now. */
struct conns {
    char profile[80];
    int limit;       /* > 0: the server refused more than this many */
    int outstanding; /* takes queued or running */
    int ahead;       /* advances taken and waiting for a worker */
    int best;        /* the most that worked at once in this batch */
    int done_since;  /* jobs done since the limit last moved */
    int pending;     /* its advances queued (any profile) */
    char why[256];   /* the refusal */
};

struct jobq {
    struct job *v;
    size_t head, n, cap; /* the jobs are v[head .. head + n) */
};

struct slot {
    struct job job;   /* kind JOB_NONE: idle */
    bool again;       /* JOB_POLL: polled for while running */
    bool again_asked; /* and one of those was asked for */
    bool stale;       /* its intake was taken over while it ran: the copy in
                       * work/ is dropped once it is done (runner_take_over) */
    char session[80]; /* connection threads: the profile whose source it
                       * holds a session to ("": none) */
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
    pthread_cond_t cv;         /* a job queued or finished, a swap, stop */
    struct profset *ps;        /* current */
    struct jobq q;             /* polls of spools, advances, due jobs: the workers' */
    size_t n_advance, q_other; /* in q: advances, the rest */
    struct jobq tq;            /* takes: the connection threads' */
    struct jobq fq;            /* finishes and polls of SFTP sources: theirs too */
    uint64_t seq;
    struct conns *cs;
    size_t ncs;
    struct slot *running; /* workers, then connection threads */
    struct worker *w;
    int workers, alive; /* alive: threads with a ledger connection */
    /* connection threads: raised by runner_swap (under mu) while others
     * read it, so atomic */
    _Atomic int takers;
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
    case JOB_TAKE:
    case JOB_FINISH:
        return !strcmp(a->id, b->id);
    case JOB_POLL:
        return !strcmp(a->profile, b->profile);
    default:
        return true;
    }
}

/* A FIFO of jobs that also gives up any entry: taking the first one (the
 * usual case) or putting one back in front moves nothing. */
static struct job *jq_at(const struct jobq *q, size_t i)
{
    return &q->v[q->head + i];
}

static void jq_put(struct jobq *q, const struct job *j, bool front)
{
    if (front && q->head > 0) {
        q->v[--q->head] = *j;
        q->n++;
        return;
    }
    if (q->head + q->n == q->cap || (front && q->n == q->cap)) {
        if (q->head > 0 && !front) { /* room at the start: move down */
            memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
            q->head = 0;
        } else {
            q->cap = q->cap ? 2 * q->cap : 64;
            q->v = xrealloc(q->v, q->cap * sizeof *q->v);
        }
    }
    if (front) { /* head is 0 here */
        memmove(q->v + 1, q->v, q->n * sizeof *q->v);
        q->v[0] = *j;
    } else
        q->v[q->head + q->n] = *j;
    q->n++;
}

static void jq_remove(struct jobq *q, size_t i)
{
    if (i == 0)
        q->head++;
    else
        memmove(jq_at(q, i), jq_at(q, i + 1), (q->n - i - 1) * sizeof *q->v);
    if (--q->n == 0)
        q->head = 0;
}

static struct job *jq_find(const struct jobq *q, const struct job *j)
{
    for (size_t i = 0; i < q->n; i++)
        if (same(jq_at(q, i), j))
            return jq_at(q, i);
    return NULL;
}

static int slots(const struct runner *r)
{
    return r->workers + r->takers;
}

/* Under mu: the slot running a job like j, or NULL. */
static struct slot *running_like(struct runner *r, const struct job *j)
{
    for (int i = 0; i < slots(r); i++)
        if (same(&r->running[i].job, j))
            return &r->running[i];
    return NULL;
}

static struct job *queued_like(struct runner *r, const struct job *j)
{
    switch (j->kind) {
    case JOB_TAKE: /* queued only with its advance, which is unique */
        return NULL;
    case JOB_FINISH:
        return jq_find(&r->fq, j);
    case JOB_POLL: {
        struct job *q = jq_find(&r->q, j);
        return q ? q : jq_find(&r->fq, j);
    }
    default:
        return jq_find(&r->q, j);
    }
}

/* Under mu: the queue and the workers as /metrics shows them (util/obs.h). */
static void gauges(struct runner *r)
{
    int64_t b = 0;
    for (int i = 0; i < slots(r); i++)
        b += r->running[i].job.kind != JOB_NONE;
    obs_gauge_set(OBS_QUEUE_DEPTH, (int64_t)(r->q.n + r->tq.n + r->fq.n));
    obs_gauge_set(OBS_WORKERS_BUSY, b);
    obs_gauge_set(OBS_WORKERS, r->alive);
}

/* Does p's source go through the connection threads? */
static bool on_conns(const struct runner *r, const struct profile *p)
{
    return r->takers > 0 && p && p->source.type == SOURCE_SFTP && !p->outbound;
}

static const struct profile *profile_of(struct runner *r, const struct job *j)
{
    return j->kind == JOB_DUE ? NULL : profiles_find(&r->ps->set, j->profile);
}

/* Under mu: the profile's connection state, made when missing. */
static struct conns *conns_of(struct runner *r, const char *profile)
{
    for (size_t i = 0; i < r->ncs; i++)
        if (!strcmp(r->cs[i].profile, profile))
            return &r->cs[i];
    r->cs = xrealloc(r->cs, (r->ncs + 1) * sizeof *r->cs);
    struct conns *c = &r->cs[r->ncs++];
    memset(c, 0, sizeof *c);
    snprintf(c->profile, sizeof c->profile, "%s", profile);
    return c;
}

/* Under mu: jobs of the profile running on connection threads. */
static int conns_busy(struct runner *r, const char *profile)
{
    int n = 0;
    for (int i = r->workers; i < slots(r); i++)
        if (r->running[i].job.kind != JOB_NONE && !strcmp(r->running[i].job.profile, profile))
            n++;
    return n;
}

/* Under mu: the advance with this seq in the main queue (kept in seq
 * order), or its index -1. */
static ssize_t find_seq(struct runner *r, uint64_t seq)
{
    size_t lo = 0, hi = r->q.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = jq_at(&r->q, mid)->seq;
        if (s == seq)
            return (ssize_t)mid;
        if (s < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
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
    if (j->kind == JOB_TAKE)
        jq_put(&r->tq, j, false);
    else if (j->kind == JOB_FINISH || (j->kind == JOB_POLL && on_conns(r, profile_of(r, j))))
        jq_put(&r->fq, j, false);
    else {
        struct job x = *j;
        x.seq = ++r->seq;
        jq_put(&r->q, &x, false);
        if (j->kind == JOB_ADVANCE) {
            r->n_advance++;
            conns_of(r, j->profile)->pending++;
        } else
            r->q_other++;
    }
    gauges(r);
    pthread_cond_broadcast(&r->cv);
}

static void push_kind(struct runner *r, enum job_kind kind, const char *id, const char *profile)
{
    struct job j = {.kind = kind};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.profile, sizeof j.profile, "%s", profile);
    pthread_mutex_lock(&r->mu);
    push(r, &j);
    pthread_mutex_unlock(&r->mu);
}

static void push_advance(struct runner *r, const char *id, const char *profile)
{
    push_kind(r, JOB_ADVANCE, id, profile);
}

/* An SFTP intake still to be taken: its advance, held back until its take
 * on a connection is done. */
static void push_take(struct runner *r, const char *id, const char *profile)
{
    struct job a = {.kind = JOB_ADVANCE, .taking = true}, t;
    snprintf(a.id, sizeof a.id, "%s", id);
    snprintf(a.profile, sizeof a.profile, "%s", profile);
    t = a;
    t.kind = JOB_TAKE;
    t.taking = false;
    pthread_mutex_lock(&r->mu);
    uint64_t before = r->seq;
    push(r, &a);
    if (r->seq != before) { /* queued: not running or queued already */
        t.link = r->seq;
        push(r, &t);
        conns_of(r, profile)->outstanding++;
    }
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
    struct job *j = jq_at(&r->q, i);
    if (j->kind == JOB_ADVANCE) {
        struct conns *c = conns_of(r, j->profile);
        r->n_advance--;
        c->pending--;
        if (j->ahead)
            c->ahead--;
    } else
        r->q_other--;
    jq_remove(&r->q, i);
}

/* Off the take queue (tq) or the finish queue (fq). */
static void untake(struct runner *r, struct jobq *q, size_t i)
{
    if (jq_at(q, i)->kind == JOB_TAKE)
        conns_of(r, jq_at(q, i)->profile)->outstanding--;
    jq_remove(q, i);
}

/* Under mu: connection threads holding a session to the profile's source. */
static int sessions(struct runner *r, const char *profile)
{
    int n = 0;
    for (int i = r->workers; i < slots(r); i++)
        if (!strcmp(r->running[i].session, profile))
            n++;
    return n;
}

/* Under mu: how many jobs of p may run on connections at once now. */
static int conns_limit(struct runner *r, const struct profile *p)
{
    struct conns *c = conns_of(r, p->name);
    int n = p->source.connections;
    return c->limit > 0 && c->limit < n ? c->limit : n;
}

#define MAX_HELD 16

/* Profiles a scan of a queue found held back: their later jobs are passed
 * over with one comparison each, and a scan that holds every profile
 * ends early. */
struct held {
    const char *v[MAX_HELD];
    int n;
};

static bool held(const struct held *h, const char *profile)
{
    if (h->n > MAX_HELD)
        return true; /* too many to remember: hold every profile back */
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->v[i], profile))
            return true;
    return false;
}

static void hold(struct held *h, const char *profile)
{
    if (h->n < MAX_HELD)
        h->v[h->n] = profile;
    h->n++;
}

/* Under mu: may a connection thread (me) start j of p now? */
static bool conn_may(struct runner *r, struct slot *me, const struct job *j,
                     const struct profile *p)
{
    int limit = conns_limit(r, p);
    /* under a limit, the threads holding a session do the work */
    if (conns_busy(r, p->name) >= limit ||
        (strcmp(me->session, p->name) && sessions(r, p->name) >= limit))
        return false;
    if (j->kind == JOB_POLL)
        return !running_like(r, j);
    if (j->kind == JOB_TAKE && !j->refused)
        return conns_of(r, p->name)->ahead < TAKE_AHEAD * p->source.connections;
    return true;
}

/* Under mu: the first queued job that may start now on this thread, taken
 * off its queue; jobs of profiles the current set no longer has are
 * dropped.  A connection thread serves the finishes and polls first, then
 * the takes. */
static bool pick(struct runner *r, struct slot *me, bool taker, struct job *out)
{
    struct held h = {0};
    size_t nprof = r->ps->set.n;
    if (taker) {
        size_t nconns = 0; /* profiles with takes */
        for (size_t i = 0; i < nprof; i++)
            nconns += on_conns(r, r->ps->set.v[i]);
        for (int k = 0; k < 2; k++) {
            struct jobq *q = k == 0 ? &r->fq : &r->tq;
            for (size_t i = 0; i < q->n;) {
                struct job *j = jq_at(q, i);
                if (k == 1 && held(&h, j->profile)) {
                    if ((size_t)h.n >= nconns)
                        break; /* every profile's takes wait */
                    i++;
                    continue;
                }
                const struct profile *p = profile_of(r, j);
                if (!p) {
                    untake(r, q, i);
                    continue;
                }
                if (conn_may(r, me, j, p)) {
                    *out = *j;
                    untake(r, q, i);
                    if (out->kind == JOB_TAKE) /* counted until it is done */
                        conns_of(r, p->name)->outstanding++;
                    return true;
                }
                if (k == 1)
                    hold(&h, j->profile);
                i++;
            }
        }
        return false;
    }
    for (size_t i = 0; i < r->q.n;) {
        struct job *j = jq_at(&r->q, i);
        if (j->kind == JOB_ADVANCE && held(&h, j->profile)) {
            if (r->q_other == 0 && (size_t)h.n >= nprof)
                break; /* only advances left, and every profile waits */
            i++;
            continue;
        }
        const struct profile *p = profile_of(r, j);
        if (j->kind != JOB_DUE && !p) {
            unqueue(r, i);
            continue;
        }
        bool may;
        if (j->kind == JOB_ADVANCE) {
            may = !j->taking && in_flight(r, j->profile) < p->concurrency;
            if (!may) /* advances of a profile start in queue order */
                hold(&h, j->profile);
        } else
            may = !running_like(r, j);
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
    if (r->q.n || r->tq.n || r->fq.n)
        return true;
    for (int i = 0; i < slots(r); i++)
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
        if (turn < 0) {
            /* the ledger is unreachable: a listing could claim nothing, so
             * this is a failed poll, with the source's backoff */
            if (r->hooks.polled)
                r->hooks.polled(r->hooks.ctx, l, p, -1, NULL, 0, &mine, &e);
            return -1;
        }
    }
    wlog(LOG_DEBUG, p->name, NULL, "polling", NULL, "%s poll", asked ? "an asked" : "a scheduled");
    rc = pipeline_poll(pl, p, &ids, &n, &mine, &e);
    stats_add(st, &mine);
    if (r->hooks.polled)
        r->hooks.polled(r->hooks.ctx, l, p, rc, ids, n, &mine, &e);
    /* listing connections are not kept between polls (a failed one may be
     * half dead: reconnect next time); closed before the takes start, so
     * they are not one connection short on a server that counts them */
    pipeline_release_sources(pl, 0);
    for (size_t k = 0; k < n; k++) {
        if (on_conns(r, p))
            push_take(r, ids[k], p->name);
        else
            push_advance(r, ids[k], p->name);
        free(ids[k]);
    }
    free(ids);
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
        const struct profile *p = NULL;
        if (!stop && ledger_get(l, ids[i], &in, &e) > 0 && in.state != ST_DONE &&
            in.state != ST_FAILED && in.next_attempt_ms <= now_ms() &&
            (p = profiles_find(set, in.profile))) {
            if (on_conns(r, p) && in.state == ST_FOUND)
                push_take(r, in.id, in.profile);
            else if (on_conns(r, p) && in.state == ST_SEALED)
                push_kind(r, JOB_FINISH, in.id, in.profile);
            else
                push_advance(r, in.id, in.profile);
        }
        intake_clear(&in);
        free(ids[i]);
    }
    free(ids);
}

/* Under mu: is a job of this profile waiting on the connections' queue? */
static bool tq_has(struct runner *r, const char *profile)
{
    for (int k = 0; k < 2; k++) {
        const struct jobq *q = k ? &r->tq : &r->fq;
        for (size_t i = 0; i < q->n; i++)
            if (!strcmp(jq_at(q, i)->profile, profile))
                return true;
    }
    return false;
}

/* Under mu: has the profile work queued or running on a worker (its
 * connections then stay open: the finishes come after the advances)? */
static bool profile_busy(struct runner *r, const char *profile)
{
    return conns_of(r, profile)->pending > 0 || in_flight(r, profile) > 0 || tq_has(r, profile);
}

/* Under mu: takes and finishes of the profile running (the ones holding a
 * session of their own). */
static int conns_moving(struct runner *r, const char *profile)
{
    int n = 0;
    for (int i = r->workers; i < slots(r); i++) {
        const struct job *j = &r->running[i].job;
        if ((j->kind == JOB_TAKE || j->kind == JOB_FINISH) && !strcmp(j->profile, profile))
            n++;
    }
    return n;
}

/* On a connection thread: the take of one intake (then its advance may
 * start; when the take failed it waits for its retry, which the due job
 * queues), or the finish of a sealed one.  A connection the server
 * refuses while others of the profile work puts the job back in front:
 * the profile goes on with what works, trying one more after every
 * PROBE_EVERY jobs done (a limit met at a busy moment is not kept for
 * good), and the most that worked is what status shows. */
#define PROBE_EVERY 8

static void run_conn(struct runner *r, struct slot *me, struct pipeline *pl, struct ledger *l,
                     const struct profile *p, const struct job *j, struct pipeline_stats *st)
{
    struct werr e;
    int until = j->kind == JOB_TAKE ? (int)ST_TAKEN : -1;
    int rc = pipeline_advance_to(pl, j->id, until, true, st, &e);
    int want = p->source.connections, got;
    char why[sizeof((struct conns *)0)->why];

    pthread_mutex_lock(&r->mu);
    struct conns *c = conns_of(r, p->name);
    if (rc == PIPELINE_NO_CONNECTION)
        me->session[0] = 0;
    /* the others: sessions open, or jobs still connecting (when they are
     * refused too, the last of them fails as usual) */
    int others = sessions(r, p->name), moving = conns_moving(r, p->name) - 1;
    if (moving > others)
        others = moving;
    if (rc == PIPELINE_NO_CONNECTION && others > 0) {
        bool first = !c->why[0];
        c->limit = others;
        c->done_since = 0;
        snprintf(c->why, sizeof c->why, "%.*s", (int)sizeof c->why - 1, e.msg);
        /* back in front (a take stays counted in outstanding) */
        struct job again = *j;
        again.refused = true;
        jq_put(j->kind == JOB_TAKE ? &r->tq : &r->fq, &again, true);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (first) {
            wlog(LOG_WARN, p->name, NULL, "sftp.connections_limited",
                 json_pack("{s:i,s:i}", "connections", want, "working", others),
                 "the server refused connection %d of %d (%s); going on with %d", others + 1, want,
                 e.msg, others);
            ledger_source_connections(l, p->name, want, others, e.msg, now_ms());
        }
        return;
    }
    bool refused_before = c->why[0] != 0;
    pthread_mutex_unlock(&r->mu);
    if (rc == PIPELINE_NO_CONNECTION) { /* none works: an ordinary failure */
        /* unless a server that refused more a moment ago is still
         * counting the sessions just closed: one more try, later */
        if (refused_before)
            usleep(500 * 1000);
        rc = pipeline_advance_to(pl, j->id, until, false, st, &e);
    }

    pthread_mutex_lock(&r->mu);
    c = conns_of(r, p->name);
    /* a failed job may have dropped its session: counted again once one
     * works */
    if (j->kind == JOB_TAKE ? rc >= (int)ST_TAKEN && rc != (int)ST_FAILED : rc == (int)ST_DONE)
        snprintf(me->session, sizeof me->session, "%s", p->name);
    else
        me->session[0] = 0;
    int open = sessions(r, p->name);
    moving = conns_moving(r, p->name);
    if (open > c->best)
        c->best = open;
    if (c->limit > 0 && c->limit < want && ++c->done_since >= PROBE_EVERY) {
        c->limit++;
        c->done_since = 0;
    }
    if (j->kind == JOB_TAKE) {
        ssize_t k = find_seq(r, j->link);
        struct job *a = k >= 0 ? jq_at(&r->q, (size_t)k) : NULL;
        if (a && a->kind == JOB_ADVANCE && !strcmp(a->id, j->id)) {
            /* a take whose intake was taken over meanwhile (stale) does not
             * release its advance: its copy is dropped first, and the
             * advance queued again then (work, drop_copy) */
            if (rc >= (int)ST_TAKEN && rc != (int)ST_FAILED && !me->stale) {
                a->taking = false;
                a->ahead = true;
                c->ahead++;
            } else
                unqueue(r, (size_t)k); /* its retry is the due job's */
        }
        c->outstanding--;
    }
    bool batch_done = c->outstanding == 0 && moving <= 1 && !profile_busy(r, p->name);
    got = c->best < want ? c->best : want;
    snprintf(why, sizeof why, "%s", c->why);
    if (batch_done) { /* the next batch tries every connection again */
        c->limit = 0;
        c->best = 0;
        c->done_since = 0;
        c->why[0] = 0;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (batch_done)
        ledger_source_connections(l, p->name, want, why[0] ? got : want, why[0] ? why : NULL,
                                  now_ms());
}

/* Under mu: the slot running a job on intake id (its advance, take or
 * finish), or NULL. */
static struct slot *running_intake(struct runner *r, const char *id)
{
    for (int i = 0; i < slots(r); i++) {
        const struct job *j = &r->running[i].job;
        if ((j->kind == JOB_ADVANCE || j->kind == JOB_TAKE || j->kind == JOB_FINISH) &&
            !strcmp(j->id, id))
            return &r->running[i];
    }
    return NULL;
}

/* Under mu, no job running on j's intake: its copy in work/ is removed,
 * and when j is a job of a profile (a stale one just done), the intake is
 * advanced again from what the ledger says. */
static void drop_copy(struct runner *r, const struct job *j)
{
    struct werr e;
    char *work = xasprintf("%s/%s", r->cfg->work_dir, j->id);
    if (rmtree(work, &e) < 0)
        wlog(LOG_WARN, j->profile[0] ? j->profile : NULL, j->id, "cleanup", NULL, "%s", e.msg);
    free(work);
    if (j->profile[0]) {
        struct job a = {.kind = JOB_ADVANCE};
        snprintf(a.id, sizeof a.id, "%s", j->id);
        snprintf(a.profile, sizeof a.profile, "%s", j->profile);
        push(r, &a);
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct runner *r = w->r;
    struct slot *me = &r->running[w->index];
    bool taker = w->index >= r->workers;
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
        if (w->index >= slots(r)) { /* started by runner_swap, not counted yet */
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        if (!pick(r, me, taker, &j)) {
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
        me->stale = false;
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
        bool finish = false;
        if (j.kind == JOB_ADVANCE && on_conns(r, p)) {
            /* the finish is a connection's job, queued below */
            struct werr ne;
            finish = pipeline_advance_to(pl, j.id, ST_SEALED, false, &st, &ne) == (int)ST_SEALED;
        } else if (j.kind == JOB_ADVANCE)
            pipeline_advance(pl, j.id, &st);
        else if ((j.kind == JOB_TAKE || j.kind == JOB_FINISH) && p)
            run_conn(r, me, pl, l, p, &j, &st);
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
        /* taken over while it ran: now the copy can go, before any other
         * job on the intake starts (the advance drop_copy queues leads to
         * the finish again) */
        if (me->stale)
            drop_copy(r, &j);
        else if (finish) {
            struct job f = {.kind = JOB_FINISH};
            snprintf(f.id, sizeof f.id, "%s", j.id);
            snprintf(f.profile, sizeof f.profile, "%s", j.profile);
            push(r, &f);
        }
        /* idle: close SFTP connections and targets (not under the lock); a
         * connection thread keeps its session while its profile has work */
        bool idle = taker ? !profile_busy(r, j.profile) : r->q.n == 0;
        pthread_cond_broadcast(&r->cv);
        if (j.kind == JOB_POLL)
            me->session[0] = 0; /* run_poll closed it */
        if (idle && pl) {
            me->session[0] = 0;
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

/* The connection threads a set asks for: one per SFTP connection its
 * inbound profiles may use, at most MAX_CONN_THREADS. */
static int takers_for(const struct profset *set)
{
    int n = 0;
    for (size_t i = 0; i < set->set.n; i++) {
        const struct profile *p = set->set.v[i];
        if (p->source.type == SOURCE_SFTP && !p->outbound)
            n += p->source.connections;
    }
    return n > MAX_CONN_THREADS ? MAX_CONN_THREADS : n;
}

/* Starts the threads of slots [from, to), with the stop and reload signals
 * blocked (they are the main thread's; faults like SIGSEGV stay with the
 * thread).  How many started; a slot whose thread did not start stays
 * empty (started false).  stop_at_failure: stop at the first that does not
 * start (the started slots stay contiguous). */
static int start_slots(struct runner *r, int from, int to, bool stop_at_failure)
{
    sigset_t all, old;
    int started = 0;
    sigemptyset(&all);
    sigaddset(&all, SIGTERM);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = from; i < to; i++) {
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
            if (stop_at_failure)
                break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

struct runner *runner_start(const struct wharf_config *cfg, struct profset *set, int workers,
                            size_t queue_max, const struct runner_hooks *hooks)
{
    struct runner *r = xcalloc(1, sizeof *r);
    int started;
    r->cfg = cfg;
    r->ps = set;
    r->queue_max = queue_max;
    if (hooks)
        r->hooks = *hooks;
    r->workers = workers > 0 ? workers : 1;
    /* one connection thread per SFTP connection the profiles may use; the
     * slots are there for as many as a reload may add (runner_swap) */
    r->takers = takers_for(set);
    r->running = xcalloc((size_t)(r->workers + MAX_CONN_THREADS), sizeof *r->running);
    r->w = xcalloc((size_t)(r->workers + MAX_CONN_THREADS), sizeof *r->w);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    started = start_slots(r, 0, slots(r), false);
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

/*
 * A reload that asks for more SFTP connections (a new SFTP profile, a
 * higher source.connections) gets the threads for them now: the new slots
 * are started before the set is installed, so the set's profiles never see
 * fewer connection threads than they ask for.  Threads are not taken away
 * when a reload asks for fewer: the extra ones idle (a profile never runs
 * more than its `connections` jobs at once).  Called from the main thread
 * only, as runner_stop is.
 */
void runner_swap(struct runner *r, struct profset *set)
{
    int want = takers_for(set), have = atomic_load(&r->takers);
    if (want > have) {
        int from = r->workers + have, to = r->workers + want;
        int got = start_slots(r, from, to, true);
        /* the new slots count once their threads run: a connection's job
         * is never queued for a thread that did not start */
        pthread_mutex_lock(&r->mu);
        atomic_store(&r->takers, have + got);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        wlog(got == to - from ? LOG_INFO : LOG_ERROR, NULL, NULL, "connection_threads",
             json_pack("{s:i,s:i}", "wanted", want, "started", have + got),
             "%d SFTP connection threads for the reloaded profiles (%d before, %d new "
             "started)",
             have + got, have, got);
    }
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

/*
 * Take-over: the intakes in progress of nodes whose leases expired -- a
 * dead node, or one that has not renewed for a whole lease -- become this
 * node's (ledger_lease_takeover records a "takeover" event naming both
 * nodes; nodes taking over at once take disjoint intakes).  Any copy of
 * one left in this node's work/ from an earlier holding is removed: the
 * intake may have moved on elsewhere since, so the pipeline redoes its take
 * from the source (pipeline.c, recover_local).
 *
 * That copy may still be in use: a job of this node that kept working on
 * the intake after its lease ran out (a step that outlasted the lease, a
 * keeper that could not renew in time) and is still at it when the node
 * takes the intake back from the node that took it over.  Removing the
 * copy under it failed the intake on its missing original (nodes_crash on
 * a loaded machine).  So a running job's copy is removed when that job is
 * done (slot.stale), and the intake advanced again from the ledger; a copy
 * no job uses is removed at once, under mu, so none starts meanwhile.
 */
struct taken {
    char (*id)[ID_LEN];
    char **from;
    size_t n;
};

static int taken_one(void *ctx, const char *id, const char *from)
{
    struct taken *t = ctx;
    t->id = xrealloc(t->id, (t->n + 1) * sizeof *t->id);
    t->from = xrealloc(t->from, (t->n + 1) * sizeof *t->from);
    snprintf(t->id[t->n], ID_LEN, "%s", id);
    t->from[t->n++] = from ? xstrdup(from) : NULL;
    return 0;
}

char *runner_enabled_profiles(const struct profile_set *set)
{
    char *out = xstrdup(""), *n;
    for (size_t i = 0; i < set->n; i++) {
        if (!set->v[i]->enabled)
            continue;
        n = xasprintf("%s%s%s", out, *out ? "," : "", set->v[i]->name);
        free(out);
        out = n;
    }
    return out;
}

int runner_take_over(struct runner *r, struct ledger *l, const char *profiles, int64_t now,
                     int limit, bool queue, struct werr *e)
{
    struct taken t = {0};
    struct werr we;
    if (!ledger_node() || ledger_lease_ms() <= 0 || !profiles || !*profiles)
        return 0;
    int n = ledger_lease_takeover(l, ledger_node(), profiles, now, now + ledger_lease_ms(), limit,
                                  taken_one, &t, e);
    for (size_t i = 0; i < t.n; i++) {
        struct intake in = {0};
        struct job j = {.kind = JOB_ADVANCE};
        struct slot *s;
        snprintf(j.id, sizeof j.id, "%s", t.id[i]);
        pthread_mutex_lock(&r->mu);
        if ((s = running_intake(r, j.id)))
            s->stale = true;
        else
            drop_copy(r, &j);
        pthread_mutex_unlock(&r->mu);
        if (ledger_get(l, t.id[i], &in, &we) > 0) {
            wlog(LOG_INFO, in.profile, in.id, "takeover", NULL,
                 "%s in state %s taken over from node %s (its lease expired)", in.name,
                 state_name(in.state), t.from[i] ? t.from[i] : "(none)");
            if (queue)
                runner_advance(r, in.id, in.profile);
        }
        intake_clear(&in);
        free(t.from[i]);
    }
    free(t.id);
    free(t.from);
    return n;
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
    r->q.n = r->tq.n = r->fq.n = 0;
    r->n_advance = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < slots(r); i++)
        if (r->w[i].started)
            pthread_join(r->w[i].thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    profset_drop(r->ps);
    free(r->q.v);
    free(r->tq.v);
    free(r->fq.v);
    free(r->cs);
    free(r->running);
    free(r->w);
    free(r);
}
