/*
 * replay: run rejected intakes again from their sealed originals under the
 * current profile (a new intake, linked both ways), or resume failed ones
 * where they stopped.
 *
 *   wharf replay INTAKE...
 *   wharf replay -p PROFILE --all     every reject (and failed intake) of a profile
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline.h"
#include "util/xmalloc.h"

struct collect {
    char **ids;
    size_t n;
};

static void add_id(struct collect *x, const char *id)
{
    x->ids = xrealloc(x->ids, (x->n + 1) * sizeof *x->ids);
    x->ids[x->n++] = xstrdup(id);
}

static int collect_cb(void *c, const struct intake *in)
{
    add_id(c, in->id);
    return 0;
}

int cmd_replay(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct pipeline_stats st = {0};
    struct collect todo = {0};
    struct pipeline *pl;
    const char *profile = NULL;
    bool all = false;
    int r, problems = 0;

    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc)
            profile = argv[++i];
        else if (!strcmp(argv[i], "--all"))
            all = true;
        else if (argv[i][0] == '-') {
            cli_usage_error("replay", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        } else
            add_id(&todo, argv[i]);
    }
    if ((all && !profile) || (!all && !todo.n) || (all && todo.n)) {
        cli_usage_error("replay", "give INTAKE ids, or -p PROFILE --all");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    if (all) {
        struct werr e;
        struct intake_filter f = {.profile = profile, .state = -1, .rejects = true};
        struct intake_filter g = {.profile = profile, .state = ST_FAILED};
        if (ledger_list(c->ledger, &f, collect_cb, &todo, &e) < 0 ||
            ledger_list(c->ledger, &g, collect_cb, &todo, &e) < 0) {
            fprintf(stderr, "wharf replay: %s\n", e.msg);
            return EXIT_FAILURE_OP;
        }
        if (!todo.n)
            printf("nothing to replay for %s\n", profile);
    }
    cli_profiles(c, NULL, 0, &set);
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);
    for (size_t i = 0; i < todo.n; i++) {
        char id[ID_LEN];
        struct werr e;
        int k = pipeline_replay(pl, todo.ids[i], id, &e);
        if (k < 0) {
            fprintf(stderr, "wharf replay %s: %s\n", todo.ids[i], e.msg);
            problems++;
            continue;
        }
        if (k == 0) {
            printf("%s was already replayed%s%s; replay that one if it needs another run\n",
                   todo.ids[i], *id ? " as " : "", id);
            continue;
        }
        printf("%s: replaying as %s\n", todo.ids[i], id);
        pipeline_advance(pl, id, &st);
        cli_print_outcome(c, id);
    }
    if (problems || st.rejected || st.failed)
        r = EXIT_PROBLEMS;
    for (size_t i = 0; i < todo.n; i++)
        free(todo.ids[i]);
    free(todo.ids);
    pipeline_free(pl);
    profiles_free(&set);
    return r;
}
