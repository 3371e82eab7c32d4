/*
 * status, pause, resume: one line per profile for operators.
 *
 *   state      ok | late | missing (an `expect:` window was missed; see
 *              daemon/sla.h) | failing (failed intakes or a failing
 *              source) | paused; paused, disabled and failing win over
 *              late and missing
 *   last ok    when a file was last loaded
 *   freshness  against the expect windows: "ok, last 06:12",
 *              "due 07:00, late since 07:00", "-" without expect
 *   backlog    intakes not yet finished
 *   rejects    rejects waiting for a replay
 *   source     the last poll's health, kept in the ledger by the server
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "daemon/sla.h"
#include "util/parse.h"

struct pstat {
    const char *name;
    int64_t last_ok;
    uint64_t backlog, rejects, failed, total;
};

static int stat_cb(void *c, const struct intake *in)
{
    struct pstat *s = c;
    s->total++;
    if (in->state == ST_FAILED)
        s->failed++;
    else if (in->state != ST_DONE)
        s->backlog++;
    if (in->outcome == OUT_REJECTED && !in->replayed_by)
        s->rejects++;
    if (in->outcome == OUT_LOADED && in->state == ST_DONE && in->updated_ms > s->last_ok)
        s->last_ok = in->updated_ms;
    return 0;
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    bool json = false;
    json_t *arr = NULL;
    int64_t now = sla_now();
    int r;

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
    if (json)
        arr = json_array();
    else
        printf("%-16s %-8s %-24s %7s %7s %6s  %-36s %s\n", "PROFILE", "STATE", "LAST LOADED",
               "BACKLOG", "REJECTS", "FAILED", "FRESHNESS", "SOURCE");
    for (size_t i = 0; i < set.n; i++) {
        struct pstat s = {.name = set.v[i]->name};
        struct intake_filter f = {.profile = s.name, .state = -1};
        struct werr e;
        char ts[32] = "never";
        bool paused = ledger_paused(c->ledger, s.name);
        char *health = ledger_health(c->ledger, s.name);
        const char *state;
        struct sla_status sla;
        ledger_list(c->ledger, &f, stat_cb, &s, &e);
        sla_eval(set.v[i], now, s.last_ok, &sla);
        if (s.last_ok)
            format_time_ms(s.last_ok, ts);
        if (paused)
            state = "paused";
        else if (!set.v[i]->enabled)
            state = "disabled";
        else if (s.failed || (health && strncmp(health, "ok", 2)))
            state = "failing";
        else if (sla.state == SLA_LATE || sla.state == SLA_MISSING)
            state = sla_state_name(sla.state);
        else
            state = "ok";
        if (json)
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:s,s:s?,s:s?}", "profile", s.name,
                               "state", state, "last_loaded", s.last_ok ? ts : NULL, "backlog",
                               (json_int_t)s.backlog, "rejects", (json_int_t)s.rejects, "failed",
                               (json_int_t)s.failed, "source", health ? health : "not polled yet",
                               "sla", sla.state == SLA_NONE ? NULL : sla_state_name(sla.state),
                               "freshness", sla.state == SLA_NONE ? NULL : sla.freshness));
        else
            printf("%-16s %-8s %-24s %7llu %7llu %6llu  %-36s %s\n", s.name, state, ts,
                   (unsigned long long)s.backlog, (unsigned long long)s.rejects,
                   (unsigned long long)s.failed, sla.state == SLA_NONE ? "-" : sla.freshness,
                   health ? health : "not polled yet");
        free(health);
    }
    if (json)
        cli_print_json(arr);
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
