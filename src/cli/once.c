/*
 * once, ingest: run the pipeline in the foreground and exit.
 *
 *   wharf once [PROFILE...]          resume due intakes, poll each enabled
 *                                    profile once, process what is complete
 *   wharf ingest -p PROFILE FILE...  push local files through a profile now
 *
 * Both exit 1 when any file they processed was rejected or failed.
 *
 * once advances the claimed intakes on `workers:` threads (each with its own
 * ledger connection and pipeline), never more than a profile's
 * `concurrency:` of one profile at a time, in claim order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/lock.h"
#include "daemon/sla.h"
#include "pipeline.h"
#include "source/source.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

struct job {
    char *id;
    const struct profile *p; /* NULL: its profile is not loaded */
    bool taken;
};

struct pool {
    struct cli *c;
    const struct profile_set *set;
    struct job *jobs;
    size_t n, left;
    int *running; /* per profile index in set */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pipeline_stats st;
};

static int profile_index(const struct profile_set *set, const struct profile *p)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i] == p)
            return (int)i;
    return -1;
}

static void stats_add(struct pipeline_stats *a, const struct pipeline_stats *b)
{
    a->done += b->done;
    a->loaded += b->loaded;
    a->rejected += b->rejected;
    a->duplicates += b->duplicates;
    a->failed += b->failed;
    a->retrying += b->retrying;
}

static void *pool_worker(void *arg)
{
    struct pool *pl = arg;
    struct pipeline_stats st = {0};
    struct werr e;
    struct ledger *l =
        ledger_open(pl->c->cfg.ledger_type, pl->c->cfg.ledger_path, pl->c->cfg.ledger_dsn_file, &e);
    struct pipeline *pipe;
    if (!l) {
        wlog(LOG_ERROR, NULL, NULL, "worker", NULL, "ledger: %s", e.msg);
        return NULL;
    }
    pipe = pipeline_new(&pl->c->cfg, pl->set, l);
    pthread_mutex_lock(&pl->mu);
    while (pl->left) {
        struct job *jb = NULL;
        for (size_t i = 0; i < pl->n && !jb; i++) {
            struct job *x = &pl->jobs[i];
            int k = x->p ? profile_index(pl->set, x->p) : -1;
            if (!x->taken && (k < 0 || pl->running[k] < x->p->concurrency))
                jb = x;
        }
        if (!jb) {
            pthread_cond_wait(&pl->cv, &pl->mu);
            continue;
        }
        int k = jb->p ? profile_index(pl->set, jb->p) : -1;
        jb->taken = true;
        pl->left--;
        if (k >= 0)
            pl->running[k]++;
        pthread_mutex_unlock(&pl->mu);
        pipeline_advance(pipe, jb->id, &st);
        pthread_mutex_lock(&pl->mu);
        if (k >= 0)
            pl->running[k]--;
        pthread_cond_broadcast(&pl->cv);
    }
    stats_add(&pl->st, &st);
    pthread_mutex_unlock(&pl->mu);
    pipeline_free(pipe);
    ledger_close(l);
    return NULL;
}

/* Advance every job: on this thread when there is one worker (with progress
 * on a terminal), else on a pool of `workers` threads. */
static void advance_all(struct cli *c, struct pipeline *main_pl, const struct profile_set *set,
                        struct job *jobs, size_t n, struct pipeline_stats *st)
{
    int workers = c->cfg.workers;
    if (workers <= 1 || n <= 1) {
        for (size_t i = 0; i < n; i++)
            pipeline_advance(main_pl, jobs[i].id, st);
        return;
    }
    struct pool pool = {.c = c, .set = set, .jobs = jobs, .n = n, .left = n};
    pthread_t *t = xcalloc((size_t)workers, sizeof *t);
    pool.running = xcalloc(set->n + 1, sizeof *pool.running);
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    for (int i = 0; i < workers; i++)
        pthread_create(&t[i], NULL, pool_worker, &pool);
    for (int i = 0; i < workers; i++)
        pthread_join(t[i], NULL);
    stats_add(st, &pool.st);
    pthread_mutex_destroy(&pool.mu);
    pthread_cond_destroy(&pool.cv);
    free(pool.running);
    free(t);
}

static struct job *jobs_of(struct cli *c, const struct profile_set *set, char **ids, size_t n)
{
    struct job *jobs = xcalloc(n + 1, sizeof *jobs);
    for (size_t i = 0; i < n; i++) {
        struct intake in = {0};
        struct werr e;
        jobs[i].id = ids[i];
        if (ledger_get(c->ledger, ids[i], &in, &e) > 0)
            jobs[i].p = profiles_find(set, in.profile);
        intake_clear(&in);
    }
    return jobs;
}

int cmd_once(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct pipeline_stats st = {0};
    struct pipeline *pl;
    struct werr e;
    char **ids = NULL, **names = xcalloc((size_t)argc + 1, sizeof *names);
    size_t n = 0, n_names = 0;
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
    r = cli_profiles(c, n_names ? names : NULL, n_names, &set);
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);

    /* First whatever an earlier run left unfinished. */
    if (pipeline_due(pl, NULL, &ids, &n, &e) < 0) {
        fprintf(stderr, "wharf once: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    struct job *jobs = jobs_of(c, &set, ids, n);
    advance_all(c, pl, &set, jobs, n, &st);
    free(jobs);
    free_ids(ids, n);
    ids = NULL;
    n = 0;
    for (size_t i = 0; i < set.n; i++) {
        const struct profile *p = set.v[i];
        if (!p->enabled || ledger_paused(c->ledger, p->name))
            continue;
        if (pipeline_poll(pl, p, &ids, &n, &st, &e) < 0) {
            char ts[32], *h;
            format_time_ms(now_ms(), ts);
            h = xasprintf("failing since %s (wharf once): %s (see %s)", ts, e.msg,
                          werr_runbook(&e));
            wlog(LOG_ERROR, p->name, NULL, "poll_failed", NULL, "%s", h);
            ledger_set_health(c->ledger, p->name, h);
            free(h);
            st.failed++;
            continue;
        }
        ledger_set_health(c->ledger, p->name, "ok");
    }
    /* Sources are not needed while the workers run: close the listing
     * connections (each worker opens its own). */
    pipeline_release_sources(pl, 0);
    jobs = jobs_of(c, &set, ids, n);
    advance_all(c, pl, &set, jobs, n, &st);
    free(jobs);
    json_t *out = json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++)
        if (json)
            json_array_append_new(out, cli_outcome_json(c, ids[i]));
        else
            cli_print_outcome(c, ids[i]);
    /* The alerts for what this run found, as the server sends them. */
    struct sla *alerts = sla_new(&c->cfg);
    sla_check(alerts, c->ledger, &set, sla_now());
    sla_finish(alerts, 30000);
    if (json)
        cli_print_json(
            json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}", "intakes", out, "counts",
                      "listed", (json_int_t)st.listed, "taken", (json_int_t)st.claimed, "loaded",
                      (json_int_t)st.loaded, "rejected", (json_int_t)st.rejected, "duplicates",
                      (json_int_t)st.duplicates, "failed", (json_int_t)st.failed, "retrying",
                      (json_int_t)st.retrying, "quarantined", (json_int_t)st.quarantined));
    else
        printf("once: %u listed, %u taken, %u loaded, %u rejected, %u duplicates, %u failed, %u "
               "waiting to retry, %u quarantined\n",
               st.listed, st.claimed, st.loaded, st.rejected, st.duplicates, st.failed, st.retrying,
               st.quarantined);
    if (!r && (st.rejected || st.failed))
        r = EXIT_PROBLEMS;
out:
    free_ids(ids, n);
    free(names);
    pipeline_free(pl);
    profiles_free(&set);
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
    if (st.rejected || st.failed || st.retrying)
        r = EXIT_PROBLEMS;
out:
    free(files);
    pipeline_free(pl);
    profiles_free(&set);
    return r;
}
