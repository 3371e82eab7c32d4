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
 * Below them, once a node has registered its heartbeat, the nodes sharing
 * the ledger (print_nodes); `--nodes` prints only those, `--nodes --json`
 * as JSON (view_nodes).  `--json` alone stays the array of profiles.
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

/* "3s ago", "12m ago", "5h ago", "2d ago". */
static void age_text(int64_t ms, char *buf, size_t n)
{
    int64_t s = ms > 0 ? ms / 1000 : 0;
    if (s < 120)
        snprintf(buf, n, "%llds ago", (long long)s);
    else if (s < 7200)
        snprintf(buf, n, "%lldm ago", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, n, "%lldh ago", (long long)(s / 3600));
    else
        snprintf(buf, n, "%lldd ago", (long long)(s / 86400));
}

/*
 * The nodes sharing the ledger (ledger.h, "Nodes and leases"):
 *
 *   NODE  HEARTBEAT  PID  IN PROGRESS  EXPIRED
 *
 * below the profiles once any node has registered a heartbeat (a single
 * node that never did shows nothing new); `--nodes` prints them alone,
 * always.  Returns 0, or EXIT_FAILURE_OP when the ledger cannot be read.
 */
static int print_nodes(struct cli *c, int64_t now, bool alone)
{
    struct werr e;
    json_t *arr = view_nodes(c->ledger, now, &e), *o;
    size_t i;
    int width = 4;
    bool registered = false;

    if (!arr) {
        fprintf(stderr, "wharf status: nodes: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    json_array_foreach(arr, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (name && (int)strlen(name) > width)
            width = (int)strlen(name);
        if (json_is_integer(json_object_get(o, "heartbeat_age_s")))
            registered = true;
    }
    if (!alone && !registered) {
        json_decref(arr);
        return 0;
    }
    if (!alone)
        putchar('\n');
    printf("%-*s  %-10s  %8s  %11s  %7s\n", width, "NODE", "HEARTBEAT", "PID", "IN PROGRESS",
           "EXPIRED");
    json_array_foreach(arr, i, o)
    {
        char hb[32] = "never", pid[24] = "-";
        json_t *a = json_object_get(o, "heartbeat_age_s"), *p = json_object_get(o, "pid");
        char *name = esc_text(json_string_value(json_object_get(o, "name")));
        if (json_is_integer(a))
            age_text(json_integer_value(a) * 1000, hb, sizeof hb);
        if (json_is_integer(p))
            snprintf(pid, sizeof pid, "%lld", (long long)json_integer_value(p));
        printf("%-*s  %-10s  %8s  %11lld  %7lld\n", width, name, hb, pid,
               (long long)json_integer_value(json_object_get(o, "in_progress")),
               (long long)json_integer_value(json_object_get(o, "expired_leases")));
        free(name);
    }
    if (alone && !json_array_size(arr))
        printf("(no node has registered or holds an intake)\n");
    json_decref(arr);
    return 0;
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    bool json = false, nodes = false;
    json_t *arr = NULL;
    int64_t now = sla_now();
    int r, width = 7;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--nodes"))
            nodes = true;
        else {
            cli_usage_error("status", "unknown argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if ((r = cli_ledger(c)))
        return r;
    if (nodes && json) {
        struct werr e;
        if (!(arr = view_nodes(c->ledger, now, &e))) {
            fprintf(stderr, "wharf status: nodes: %s\n", e.msg);
            return EXIT_FAILURE_OP;
        }
        cli_print_json(arr);
        return EXIT_OK;
    }
    if (nodes)
        return print_nodes(c, now, true);
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
        if (h.polled && h.source.conn_want > 0 && h.source.conn_got < h.source.conn_want) {
            /* not a fault: the partner's server allows fewer sessions */
            printf("%-*s  note: %d of %d SFTP connections (source.connections): the server "
                   "refused more: ",
                   width, "", h.source.conn_got, h.source.conn_want);
            put_plain(h.source.conn_why);
            putchar('\n');
        }
        health_clear(&h);
    }
    profiles_free(&set);
    if (print_nodes(c, now, false))
        return EXIT_FAILURE_OP;
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
        cli_record_action(c, value ? "pause" : "resume", argv[1], NULL, false, e.msg);
        return EXIT_FAILURE_OP;
    }
    if (cli_record_action(c, value ? "pause" : "resume", argv[1], NULL, true, NULL) < 0)
        return EXIT_FAILURE_OP;
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
