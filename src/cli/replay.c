/*
 * replay: run rejected intakes again from their sealed originals under the
 * current profile (a new intake, linked both ways), or resume failed ones
 * where they stopped.
 *
 *   wharf replay [--json] INTAKE...
 *   wharf replay [--json] -p PROFILE --all   every reject (and failed intake) of a profile
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
    bool all = false, json = false;
    json_t *out = NULL;
    int r, problems = 0, unrecorded = 0;

    /* options anywhere among the ids */
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc)
            profile = argv[++i];
        else if (!strcmp(argv[i], "--all"))
            all = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-') {
            cli_usage_error("replay", "unknown option %s", argv[i]);
            goto usage;
        } else if (!cli_id_valid(argv[i])) {
            cli_usage_error("replay", "\"%s\" is not an intake id", argv[i]);
            goto usage;
        } else
            add_id(&todo, argv[i]);
    }
    if ((all && !profile) || (!all && !todo.n) || (all && todo.n)) {
        cli_usage_error("replay", "give INTAKE ids, or -p PROFILE --all");
        goto usage;
    }
    if ((r = cli_ledger(c)))
        goto fail;
    if (all) {
        struct werr e;
        struct intake_filter f = {.profile = profile, .state = -1, .rejects = true};
        struct intake_filter g = {.profile = profile, .state = ST_FAILED};
        if (ledger_list(c->ledger, &f, collect_cb, &todo, &e) < 0 ||
            ledger_list(c->ledger, &g, collect_cb, &todo, &e) < 0) {
            fprintf(stderr, "wharf replay: %s\n", e.msg);
            r = EXIT_FAILURE_OP;
            goto fail;
        }
        if (!todo.n && !json)
            printf("nothing to replay for %s\n", profile);
    }
    if (json)
        out = json_array();
    cli_profiles(c, NULL, 0, &set);
    pl = pipeline_new(&c->cfg, &set, c->ledger);
    pipeline_set_progress(pl, cli_progress, NULL);
    for (size_t i = 0; i < todo.n; i++) {
        char id[ID_LEN];
        struct werr e;
        int k = pipeline_replay(pl, todo.ids[i], id, &e);
        char *res = k > 0 ? xasprintf("replayed as %s", id) : NULL;
        if (cli_record_action(c, "replay", NULL, todo.ids[i], k >= 0,
                              k < 0 ? e.msg : k == 0 ? "already replayed" : res) < 0)
            unrecorded++;
        free(res);
        if (k < 0) {
            fprintf(stderr, "wharf replay %s: %s\n", todo.ids[i], e.msg);
            if (json)
                json_array_append_new(out, json_pack("{s:s,s:n,s:s}", "replayed", todo.ids[i],
                                                     "intake", "error", e.msg));
            problems++;
            continue;
        }
        if (k == 1)
            pipeline_advance(pl, id, &st);
        if (json) {
            json_array_append_new(out, json_pack("{s:s,s:o,s:b}", "replayed", todo.ids[i], "intake",
                                                 *id ? cli_outcome_json(c, id) : json_null(),
                                                 "already_replayed", k == 0));
            continue;
        }
        if (k == 0) {
            printf("%s was already replayed%s%s; replay that one if it needs another run\n",
                   todo.ids[i], *id ? " as " : "", id);
            continue;
        }
        printf("%s: replaying as %s\n", todo.ids[i], id);
        cli_print_outcome(c, id);
    }
    if (json)
        cli_print_json(out);
    if (problems || st.rejected || st.failed)
        r = EXIT_PROBLEMS;
    if (unrecorded)
        r = EXIT_FAILURE_OP; /* replayed, but the audit trail misses it: said above */
    for (size_t i = 0; i < todo.n; i++)
        free(todo.ids[i]);
    free(todo.ids);
    pipeline_free(pl);
    profiles_free(&set);
    return r;
usage:
    r = EXIT_USAGE;
fail:
    for (size_t i = 0; i < todo.n; i++)
        free(todo.ids[i]);
    free(todo.ids);
    return r;
}
