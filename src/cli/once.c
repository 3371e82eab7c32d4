/*
 * once, ingest: run the pipeline in the foreground and exit.
 *
 *   wharf once [PROFILE...]          resume due intakes, poll each enabled
 *                                    profile once, process what is complete
 *   wharf ingest -p PROFILE FILE...  push local files through a profile now
 *
 * Both exit 1 when any file they processed was rejected or failed; once
 * also when one waits for a retry (or is held behind one, order:) or a
 * drop was quarantined.
 *
 * once runs the server's runner (daemon/runner.h) until its queue is
 * drained: the same jobs on the same `workers:` threads under the same
 * per-profile rules as `wharf run`, so both reach the same outcomes.  With
 * a shared ledger it first takes over, as a server does, the intakes of
 * its profiles that a dead node left (their leases expired).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/lock.h"
#include "daemon/runner.h"
#include "daemon/sla.h"
#include "pipeline.h"
#include "source/source.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* What the polls of one `once` found, per profile of the set, filled by the
 * runner's workers (once_polled). */
struct once_polls {
    pthread_mutex_t mu;
    const struct profile_set *set;
    char ***ids; /* per profile index: the intakes its poll claimed */
    size_t *n;
    unsigned failed;
};

static void once_polled(void *ctx, struct ledger *l, const struct profile *p, int rc, char **ids,
                        size_t n, const struct pipeline_stats *st, const struct werr *e)
{
    struct once_polls *op = ctx;
    struct werr le;
    size_t k;
    (void)st;
    if (rc < 0) {
        char ts[32], *h;
        format_time_ms(now_ms(), ts);
        h = xasprintf("failing since %s (wharf once): %s (see %s)", ts, e->msg, werr_runbook(e));
        wlog(LOG_ERROR, p->name, NULL, "poll_failed", NULL, "%s", h);
        if (ledger_set_health(l, p->name, h, &le) < 0)
            wlog(LOG_ERROR, p->name, NULL, "ledger", NULL, "source health not recorded: %s",
                 le.msg);
        free(h);
    } else if (ledger_set_health(l, p->name, "ok", &le) < 0)
        wlog(LOG_ERROR, p->name, NULL, "ledger", NULL, "source health not recorded: %s", le.msg);
    pthread_mutex_lock(&op->mu);
    if (rc < 0)
        op->failed++;
    for (k = 0; k < op->set->n && strcmp(op->set->v[k]->name, p->name); k++)
        ;
    if (k < op->set->n) {
        op->ids[k] = xrealloc(op->ids[k], (op->n[k] + n + 1) * sizeof *op->ids[k]);
        for (size_t i = 0; i < n; i++)
            op->ids[k][op->n[k]++] = xstrdup(ids[i]);
    }
    pthread_mutex_unlock(&op->mu);
}

int cmd_once(struct cli *c, int argc, char **argv)
{
    struct profile_set loaded = {0};
    struct profset *ps = NULL;
    struct pipeline_stats st = {0};
    struct once_polls op = {0};
    struct runner *run;
    struct werr e;
    char **names = xcalloc((size_t)argc + 1, sizeof *names);
    size_t n_names = 0;
    bool json = false;
    int r, lock;

    /* options anywhere among the profile names; "--" ends them */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--")) {
            while (++i < argc)
                names[n_names++] = argv[i];
        } else if (argv[i][0] == '-') {
            cli_usage_error("once", "unknown option %s", argv[i]);
            free(names);
            return EXIT_USAGE;
        } else
            names[n_names++] = argv[i];
    }
    if ((r = cli_ledger(c))) {
        free(names);
        return r;
    }
    lock = statelock_acquire(&c->cfg, &e);
    if (lock < 0) {
        fprintf(stderr, "wharf once: %s\n", e.msg);
        free(names);
        return lock == -2 ? EXIT_LOCKED : EXIT_FAILURE_OP;
    }
    r = cli_profiles(c, n_names ? names : NULL, n_names, &loaded);
    ps = profset_new(&loaded);
    pthread_mutex_init(&op.mu, NULL);
    op.set = &ps->set;
    op.ids = xcalloc(ps->set.n + 1, sizeof *op.ids);
    op.n = xcalloc(ps->set.n + 1, sizeof *op.n);

    /* The runner of `wharf run`, until its queue is drained: whatever an
     * earlier run left unfinished, then one poll of every enabled profile
     * and every intake those polls claim.  A progress line only when one
     * worker runs (lines of several would overwrite each other). */
    struct runner_hooks hooks = {.polled = once_polled, .ctx = &op};
    if (c->cfg.workers <= 1)
        hooks.progress = cli_progress;
    run = runner_start(&c->cfg, profset_hold(ps), c->cfg.workers, 0, &hooks);
    if (!run) {
        r = EXIT_FAILURE_OP;
        goto out;
    }
    /* A dead node's intakes of these profiles (leases expired) become this
     * node's first, as `wharf run` takes them over: the due job below then
     * resumes them with the rest. */
    char *mine = runner_enabled_profiles(&ps->set);
    int taken;
    do
        taken = runner_take_over(run, c->ledger, mine, now_ms(), 64, false, &e);
    while (taken >= 64);
    free(mine);
    if (taken < 0) {
        wlog(LOG_ERROR, NULL, NULL, "takeover_failed", NULL, "node %s: ledger: %s", ledger_node(),
             e.msg);
        r = EXIT_FAILURE_OP;
    }
    runner_due(run);
    runner_drain(run); /* first what was left, as a restarted server would */
    for (size_t i = 0; i < ps->set.n; i++)
        if (ps->set.v[i]->enabled)
            runner_poll(run, ps->set.v[i]->name, true);
    runner_drain(run);
    runner_stats(run, &st);
    if (runner_errors(run)) {
        fprintf(stderr, "wharf once: the ledger could not be read (see the log)\n");
        r = EXIT_FAILURE_OP;
    }
    runner_stop(run);
    st.failed += op.failed;

    json_t *out = json ? json_array() : NULL;
    for (size_t k = 0; k < ps->set.n; k++)
        for (size_t i = 0; i < op.n[k]; i++)
            if (json)
                json_array_append_new(out, cli_outcome_json(c, op.ids[k][i]));
            else
                cli_print_outcome(c, op.ids[k][i]);
    /* The alerts for what this run found, as the server sends them. */
    struct sla *alerts = sla_new(&c->cfg);
    sla_check(alerts, c->ledger, &ps->set, sla_now());
    sla_finish(alerts, 30000);
    if (json)
        cli_print_json(json_pack(
            "{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}", "intakes", out, "counts", "listed",
            (json_int_t)st.listed, "taken", (json_int_t)st.claimed, "loaded", (json_int_t)st.loaded,
            "rejected", (json_int_t)st.rejected, "duplicates", (json_int_t)st.duplicates, "failed",
            (json_int_t)st.failed, "retrying", (json_int_t)st.retrying, "quarantined",
            (json_int_t)st.quarantined, "held", (json_int_t)st.held));
    else {
        printf("once: %u listed, %u taken, %u loaded, %u rejected, %u duplicates, %u failed, %u "
               "waiting to retry, %u quarantined",
               st.listed, st.claimed, st.loaded, st.rejected, st.duplicates, st.failed, st.retrying,
               st.quarantined);
        if (st.held)
            printf(", %u held behind an earlier file (order:)", st.held);
        putchar('\n');
    }
    /* Anything not brought to an end is a problem found, not "ok": a
     * cron job that checks the exit code must hear of a file waiting for
     * its retry (or held behind one) or quarantined, too. */
    if (!r && (st.rejected || st.failed || st.retrying || st.held || st.quarantined))
        r = EXIT_PROBLEMS;
out:
    for (size_t k = 0; k < ps->set.n; k++) {
        for (size_t i = 0; i < op.n[k]; i++)
            free(op.ids[k][i]);
        free(op.ids[k]);
    }
    free(op.ids);
    free(op.n);
    pthread_mutex_destroy(&op.mu);
    profset_drop(ps);
    free(names);
    close(lock);
    return r;
}

int cmd_ingest(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct pipeline_stats st = {0};
    struct pipeline *pl = NULL;
    const char *pname = NULL;
    char *names[1], **files = xcalloc((size_t)argc + 1, sizeof *files);
    size_t n_files = 0;
    bool json = false, opts = true;
    json_t *out = NULL;
    int i, r;

    /* options anywhere among the files ("ingest -p P f.csv --json"); after
     * "--" everything is a file, even "--json" */
    for (i = 1; i < argc; i++) {
        if (opts && (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc)
            pname = argv[++i];
        else if (opts && !strcmp(argv[i], "--json"))
            json = true;
        else if (opts && !strcmp(argv[i], "--"))
            opts = false;
        else if (opts && argv[i][0] == '-' && argv[i][1]) {
            cli_usage_error("ingest", "unknown option %s", argv[i]);
            free(files);
            return EXIT_USAGE;
        } else
            files[n_files++] = argv[i];
    }
    if (!pname || !n_files) {
        cli_usage_error("ingest", "needs -p PROFILE and at least one FILE");
        free(files);
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        goto out;
    names[0] = (char *)pname;
    if ((r = cli_profiles(c, names, 1, &set)) || !set.n) {
        r = EXIT_CONFIG;
        goto out;
    }
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);
    if (json)
        out = json_array();
    for (size_t k = 0; k < n_files; k++) {
        char id[ID_LEN];
        struct werr e;
        int cl = pipeline_claim_file(pl, set.v[0], files[k], id, &e);
        if (cl < 0) {
            fprintf(stderr, "wharf ingest: %s\n", e.msg);
            if (json)
                json_array_append_new(out, json_pack("{s:o,s:n,s:o}", "file", esc_json(files[k]),
                                                     "intake", "error", esc_json(e.msg)));
            st.failed++;
            continue;
        }
        if (cl > 0)
            pipeline_advance(pl, id, &st);
        if (json) {
            json_array_append_new(out,
                                  json_pack("{s:o,s:o,s:b}", "file", esc_json(files[k]), "intake",
                                            *id ? cli_outcome_json(c, id) : json_null(),
                                            "already_ingested", cl == 0));
            continue;
        }
        if (cl == 0)
            printf("%s: already ingested as %s (use wharf replay to run it again)\n", files[k],
                   *id ? id : "an earlier intake");
        cli_print_outcome(c, id);
    }
    if (json)
        cli_print_json(out);
    if (st.rejected || st.failed || st.retrying || st.held)
        r = EXIT_PROBLEMS;
out:
    free(files);
    pipeline_free(pl);
    profiles_free(&set);
    return r;
}
