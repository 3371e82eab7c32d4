/*
 * reconciler: scheduled reconciliation (see reconciler.h).
 *
 * Due time per profile: its last recorded run + its every (the profile's
 * reconcile.every, else wharf.yaml's); never run: every after the thread
 * started, at most 5 minutes.  The thread owns its ledger connection and
 * looks again at least once a minute (and at once when stopped).
 */
#include "daemon/reconciler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/ledger.h"
#include "load/reconcile.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

struct reconciler {
    const struct wharf_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int64_t started_ms;
};

static int64_t every_of(const struct wharf_config *cfg, const struct profile *p)
{
    return p->reconcile_every_ms > 0 ? p->reconcile_every_ms : cfg->reconcile_every_ms;
}

/* Reconcile every due profile; returns when the next one is due. */
static int64_t round_once(struct reconciler *r, struct ledger *l)
{
    struct profile_set set = {0};
    struct diags d = {0};
    int64_t next = now_ms() + 60000;
    profiles_load(r->cfg, NULL, 0, &set, &d); /* problems: `wharf check` and the server say so */
    diag_free(&d);
    for (size_t i = 0; i < set.n; i++) {
        const struct profile *p = set.v[i];
        int64_t every = every_of(r->cfg, p), due;
        json_t *last;
        if (every <= 0 || !p->enabled || ledger_paused(l, p->name))
            continue;
        last = reconcile_last(l, p->name);
        due = last ? (int64_t)json_integer_value(json_object_get(last, "time_ms")) + every
                   : r->started_ms + (every < 300000 ? every : 300000);
        json_decref(last);
        if (now_ms() < due) {
            if (due < next)
                next = due;
            continue;
        }
        pthread_mutex_lock(&r->mu);
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        struct recon_result res;
        struct werr e = {0};
        if (reconcile_profile(l, r->cfg, p, 0, &res, &e) < 0) {
            wlog(LOG_ERROR, p->name, NULL, "reconcile_failed", NULL,
                 "reconcile could not read the target: %s (see %s)", e.msg, RECONCILE_RUNBOOK);
        } else if (res.n_gaps) {
            for (size_t g = 0; g < res.n_gaps; g++) {
                char *t = recon_gap_text(&res, &res.gaps[g]);
                wlog(LOG_ERROR, p->name, res.gaps[g].intake[0] ? res.gaps[g].intake : NULL,
                     "reconcile_gap", NULL, "%s", t);
                free(t);
            }
        } else {
            wlog(LOG_INFO, p->name, NULL, "reconciled", NULL,
                 "%llu intakes, %llu rows agree with the ledger (%lld ms)",
                 (unsigned long long)res.intakes, (unsigned long long)res.rows,
                 (long long)res.took_ms);
        }
        recon_result_free(&res);
        if (now_ms() + every < next)
            next = now_ms() + every;
    }
    profiles_free(&set);
    return next;
}

static void *reconciler_thread(void *arg)
{
    struct reconciler *r = arg;
    struct werr e;
    struct ledger *l = ledger_open_sqlite(r->cfg->ledger_path, &e);
    if (!l) {
        wlog(LOG_ERROR, NULL, NULL, "reconcile_failed", NULL, "ledger: %s", e.msg);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        int64_t next = round_once(r, l), wait = next - now_ms();
        pthread_mutex_lock(&r->mu);
        if (r->stop || wait <= 0)
            continue;
        if (wait > 60000)
            wait = 60000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    ledger_close(l);
    return NULL;
}

struct reconciler *reconciler_start(const struct wharf_config *cfg)
{
    struct reconciler *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->started_ms = now_ms();
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, reconciler_thread, r) != 0) {
        wlog(LOG_ERROR, NULL, NULL, "reconcile_failed", NULL,
             "cannot start the reconcile thread: %s", strerror(errno));
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

void reconciler_stop(struct reconciler *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
