/*
 * status, pause, resume: one line per profile for operators.
 *
 *   PROFILE  STATE  LAST LOADED  BACKLOG  REJECTS  FAILED  REASON
 *
 * STATE is the most severe of the profile's problems (daemon/health.h has
 * the states and their order); REASON says why in one line and ends with
 * the runbook to read.  Further problems follow on indented "also" lines.
 * Times are UTC ("Z"); a freshness window's local times name their zone.
 * `--json` prints the same, from the same code (health_json).
 *
 * Exit: 0 whatever the states (it is a report), 3 when a profile cannot be
 * loaded, 4 when the ledger cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/views.h"
#include "daemon/health.h"
#include "util/escape.h"
#include "util/parse.h"

/* A reason for a terminal: partner-supplied names in it are escaped
 * (util/escape.h). */
static void put_plain(const char *s)
{
    char *e = esc_text(s);
    fputs(e, stdout);
    free(e);
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    bool json = false;
    json_t *arr = NULL;
    int64_t now = sla_now();
    int r, width = 7;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else {
            cli_usage_error("status", "unknown argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if ((r = cli_ledger(c)))
        return r;
    r = cli_profiles(c, NULL, 0, &set);
    for (size_t i = 0; i < set.n; i++)
        if ((int)strlen(set.v[i]->name) > width)
            width = (int)strlen(set.v[i]->name);
    if (json) {
        struct werr e;
        if (!(arr = view_status(c->ledger, &set, now, &e))) {
            fprintf(stderr, "wharf status: %s\n", e.msg);
            profiles_free(&set);
            return EXIT_FAILURE_OP;
        }
        cli_print_json(arr);
        profiles_free(&set);
        return r ? r : EXIT_OK;
    }
    printf("%-*s  %-9s  %-24s  %7s  %7s  %6s  %s\n", width, "PROFILE", "STATE", "LAST LOADED",
           "BACKLOG", "REJECTS", "FAILED", "REASON");
    for (size_t i = 0; i < set.n; i++) {
        struct health h;
        struct werr e;
        char ts[32] = "never";
        if (health_eval(c->ledger, set.v[i], now, &h, &e) < 0) {
            fprintf(stderr, "wharf status: %s: %s\n", set.v[i]->name, e.msg);
            profiles_free(&set);
            return EXIT_FAILURE_OP;
        }
        if (h.last_loaded_ms)
            format_time_ms(h.last_loaded_ms, ts);
        printf("%-*s  %-9s  %-24s  %7llu  %7llu  %6llu  ", width, h.profile,
               health_state_name(h.state), ts, (unsigned long long)h.backlog,
               (unsigned long long)h.rejects, (unsigned long long)h.failed);
        put_plain(h.issue[0].reason);
        if (h.issue[0].runbook[0])
            printf(" -- %s", h.issue[0].runbook);
        putchar('\n');
        for (size_t k = 1; k < h.n_issues; k++) {
            printf("%-*s  also %s: ", width, "", health_state_name(h.issue[k].state));
            put_plain(h.issue[k].reason);
            if (h.issue[k].runbook[0])
                printf(" -- %s", h.issue[k].runbook);
            putchar('\n');
        }
        health_clear(&h);
    }
    profiles_free(&set);
    return r ? r : EXIT_OK;
}

static int set_paused(struct cli *c, int argc, char **argv, bool value)
{
    struct profile_set set = {0};
    struct werr e;
    int r;
    if (argc != 2 || argv[1][0] == '-') {
        cli_usage_error(argv[0], "needs exactly one PROFILE");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    cli_profiles(c, argv + 1, 1, &set);
    if (!set.n) {
        profiles_free(&set);
        return EXIT_CONFIG;
    }
    profiles_free(&set);
    if (ledger_set_paused(c->ledger, argv[1], value, &e) < 0) {
        fprintf(stderr, "wharf %s: %s\n", argv[0], e.msg);
        return EXIT_FAILURE_OP;
    }
    printf("%s %s\n", argv[1], value ? "paused" : "resumed");
    return EXIT_OK;
}

int cmd_pause(struct cli *c, int argc, char **argv)
{
    return set_paused(c, argc, argv, true);
}

int cmd_resume(struct cli *c, int argc, char **argv)
{
    return set_paused(c, argc, argv, false);
}
