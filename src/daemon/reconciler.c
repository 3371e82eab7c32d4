/*
 * reconciler: scheduled reconciliation (see reconciler.h).
 *
 * Due time per profile: its last recorded run + its every (the profile's
 * reconcile.every, else wharf.yaml's); never run: every after the thread
 * started, at most 5 minutes.  The thread (daemon/periodic.h) owns its
 * ledger connection.
 */
#include "daemon/reconciler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/periodic.h"
#include "ledger/ledger.h"
#include "load/reconcile.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

struct reconciler {
    const struct wharf_config *cfg;
    struct periodic per;
    struct ledger *l; /* the thread's own connection, opened on its first round */
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
        if (periodic_stopping(&r->per))
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

/* periodic's fn: one round; the ms until the next is due. */
static int64_t tick(void *arg)
{
    struct reconciler *r = arg;
    struct werr e;
    if (!r->l && !(r->l = ledger_open(r->cfg->ledger_type, r->cfg->ledger_path,
                                      r->cfg->ledger_dsn_file, &e))) {
        wlog(LOG_ERROR, NULL, NULL, "reconcile_failed", NULL, "ledger: %s", e.msg);
        return 60000;
    }
    return round_once(r, r->l) - now_ms();
}

static void done(void *arg)
{
    struct reconciler *r = arg;
    ledger_close(r->l);
    r->l = NULL;
}

struct reconciler *reconciler_start(const struct wharf_config *cfg)
{
    struct reconciler *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->started_ms = now_ms();
    if (periodic_start(&r->per, tick, done, r) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "reconcile_failed", NULL,
             "cannot start the reconcile thread: %s", strerror(errno));
        free(r);
        return NULL;
    }
    return r;
}

void reconciler_stop(struct reconciler *r)
{
    if (!r)
        return;
    periodic_stop(&r->per);
    free(r);
}
