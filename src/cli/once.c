/*
 * once, ingest: run the pipeline in the foreground and exit.
 *
 *   wharf once [PROFILE...]          resume due intakes, poll each enabled
 *                                    profile once, process what is complete
 *   wharf ingest -p PROFILE FILE...  push local files through a profile now
 *
 * Both exit 1 when any file they processed was rejected or failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/lock.h"
#include "pipeline.h"
#include "util/log.h"
#include "util/xmalloc.h"

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int cmd_once(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct pipeline_stats st = {0};
    struct pipeline *pl;
    struct werr e;
    char **ids = NULL;
    size_t n = 0;
    int r, lock;

    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') {
            cli_usage_error("once", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        }
    if ((r = cli_ledger(c)))
        return r;
    lock = statelock_acquire(&c->cfg, &e);
    if (lock < 0) {
        fprintf(stderr, "wharf once: %s\n", e.msg);
        return lock == -2 ? EXIT_LOCKED : EXIT_FAILURE_OP;
    }
    r = cli_profiles(c, argc > 1 ? argv + 1 : NULL, (size_t)(argc - 1), &set);
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);

    /* First whatever an earlier run left unfinished. */
    if (pipeline_due(pl, NULL, &ids, &n, &e) < 0) {
        fprintf(stderr, "wharf once: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        pipeline_advance(pl, ids[i], &st);
    free_ids(ids, n);
    ids = NULL;
    n = 0;
    for (size_t i = 0; i < set.n; i++) {
        const struct profile *p = set.v[i];
        size_t first = n;
        if (!p->enabled || ledger_paused(c->ledger, p->name))
            continue;
        if (pipeline_poll(pl, p, &ids, &n, &st, &e) < 0) {
            wlog(LOG_ERROR, p->name, NULL, "poll_failed", NULL, "%s (see %s)", e.msg,
                 "runbooks/source-unreachable.md");
            st.failed++;
            continue;
        }
        for (size_t k = first; k < n; k++)
            pipeline_advance(pl, ids[k], &st);
    }
    for (size_t i = 0; i < n; i++)
        cli_print_outcome(c, ids[i]);
    printf("once: %u listed, %u taken, %u loaded, %u rejected, %u duplicates, %u failed, %u "
           "waiting to retry, %u quarantined\n",
           st.listed, st.claimed, st.loaded, st.rejected, st.duplicates, st.failed,
           st.retrying, st.quarantined);
    if (!r && (st.rejected || st.failed))
        r = EXIT_PROBLEMS;
out:
    free_ids(ids, n);
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
    char *names[1];
    int i, r, first_file = -1;

    for (i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc)
            pname = argv[++i];
        else if (argv[i][0] == '-' && strcmp(argv[i], "--") && first_file < 0) {
            cli_usage_error("ingest", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        } else {
            if (!strcmp(argv[i], "--"))
                i++;
            first_file = i;
            break;
        }
    }
    if (!pname || first_file < 0 || first_file >= argc) {
        cli_usage_error("ingest", "needs -p PROFILE and at least one FILE");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    names[0] = (char *)pname;
    if ((r = cli_profiles(c, names, 1, &set)) || !set.n) {
        r = EXIT_CONFIG;
        goto out;
    }
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);
    for (i = first_file; i < argc; i++) {
        char id[ID_LEN];
        struct werr e;
        int cl = pipeline_claim_file(pl, set.v[0], argv[i], id, &e);
        if (cl < 0) {
            fprintf(stderr, "wharf ingest: %s\n", e.msg);
            st.failed++;
            continue;
        }
        if (cl == 0) {
            printf("%s: already ingested as %s (use wharf replay to run it again)\n", argv[i],
                   *id ? id : "an earlier intake");
            cli_print_outcome(c, id);
            continue;
        }
        pipeline_advance(pl, id, &st);
        cli_print_outcome(c, id);
    }
    if (st.rejected || st.failed || st.retrying)
        r = EXIT_PROBLEMS;
out:
    pipeline_free(pl);
    profiles_free(&set);
    return r;
}
