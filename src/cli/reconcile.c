/*
 * reconcile: the targets against the ledger (load/reconcile.h).
 *
 *   wharf reconcile [PROFILE...] [--since DATE] [--json]
 *
 * Every enabled profile by default.  Prints one line per gap (profile,
 * intake, file, what differs, both counts, the runbook) and a summary per
 * profile; --json prints the same as an array of per-profile objects.
 * Each outcome is also recorded in the ledger, where `status` shows it.
 *
 * Exit: 0 every target agrees with the ledger; 1 a gap was found; 2 usage;
 * 3 configuration; 4 a ledger or target could not be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "load/reconcile.h"
#include "util/parse.h"
#include "util/xmalloc.h"

int cmd_reconcile(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    char **names = NULL;
    size_t n = 0;
    int64_t since = 0;
    bool json = false;
    int r, gaps = 0, failed = 0;
    json_t *all = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--since") && i + 1 < argc) {
            if (parse_date(argv[++i], &since) < 0) {
                cli_usage_error("reconcile", "--since takes a DATE (2026-11-01 or "
                                             "2026-11-01T00:00:00Z)");
                free(names);
                return EXIT_USAGE;
            }
        } else if (argv[i][0] == '-') {
            cli_usage_error("reconcile", "unknown option %s", argv[i]);
            free(names);
            return EXIT_USAGE;
        } else {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = argv[i];
        }
    }
    if ((r = cli_ledger(c))) {
        free(names);
        return r;
    }
    r = cli_profiles(c, names, n, &set);
    if (r && n) { /* a profile asked for by name did not load */
        profiles_free(&set);
        free(names);
        return r;
    }
    all = json_array();
    for (size_t i = 0; i < set.n; i++) {
        const struct profile *p = set.v[i];
        struct recon_result res;
        struct werr e = {0};
        if (!n && !p->enabled)
            continue;
        if (reconcile_profile(c->ledger, &c->cfg, p, since, &res, &e) < 0) {
            fprintf(stderr, "wharf reconcile %s: %s\n", p->name, e.msg);
            failed++;
            json_t *j = recon_result_json(&res);
            json_object_set_new(j, "ok", json_false());
            json_object_set_new(j, "error", json_string(e.msg));
            json_array_append_new(all, j);
            recon_result_free(&res);
            continue;
        }
        gaps += res.n_gaps > 0;
        if (json) {
            json_array_append_new(all, recon_result_json(&res));
        } else {
            for (size_t g = 0; g < res.n_gaps; g++) {
                char *t = recon_gap_text(&res, &res.gaps[g]);
                printf("GAP %s\n", t);
                free(t);
            }
            printf("%s: %s: %llu intake%s, %llu rows checked in %.1fs%s%zu gap%s\n", p->name,
                   res.n_gaps ? "GAPS" : "ok", (unsigned long long)res.intakes,
                   res.intakes == 1 ? "" : "s", (unsigned long long)res.rows,
                   (double)res.took_ms / 1000.0, res.n_gaps ? ": " : ", ", res.n_gaps,
                   res.n_gaps == 1 ? "" : "s");
        }
        recon_result_free(&res);
    }
    if (json)
        cli_print_json(all);
    else
        json_decref(all);
    profiles_free(&set);
    free(names);
    if (failed)
        return EXIT_FAILURE_OP;
    return gaps ? EXIT_PROBLEMS : (r ? r : EXIT_OK);
}
