/*
 * intakes, rejects, show: what the ledger knows, for operators.
 *
 *   wharf intakes [-p PROFILE] [--state STATE] [--limit N] [--json]   newest first
 *   wharf rejects [-p PROFILE] [--limit N] [--json]   rejects and failed intakes, marked
 *   wharf show INTAKE [--json]     every event with its time
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/views.h"
#include "util/escape.h"
#include "util/parse.h"

struct list_ctx {
    json_t *arr;
    bool rejects;
    int width; /* of the profile column */
    size_t n, failed;
};

/* A partner's file name for a terminal, escaped (util/escape.h), cut to
 * width characters (never inside one) and padded. */
static void put_name(const char *s, int width)
{
    char *e = esc_text(s), *p = e;
    int n = 0;
    while (*p && n < width) {
        p++;
        while (((unsigned char)*p & 0xC0) == 0x80)
            p++;
        n++;
    }
    fwrite(e, 1, (size_t)(p - e), stdout);
    for (; n < width; n++)
        putchar(' ');
    free(e);
}

static int list_cb(void *c, const struct intake *in)
{
    struct list_ctx *l = c;
    char ts[32];
    l->n++;
    if (in->state == ST_FAILED)
        l->failed++;
    format_time_ms(in->updated_ms, ts);
    if (l->rejects) {
        printf("%s  %-*s  %-8s  ", in->id, l->width, in->profile,
               in->state == ST_FAILED ? "FAILED" : "rejected");
        put_name(in->name, 28);
        /* last_error is escaped where it is made */
        printf(" %s\n    %s\n", ts, in->last_error ? in->last_error : "");
    } else {
        printf("%s  %-*s  %-9s %-9s %8llu  ", in->id, l->width, in->profile, state_name(in->state),
               outcome_name(in->outcome), (unsigned long long)in->rows);
        put_name(in->name, 28);
        printf(" %s\n", ts);
    }
    return 0;
}

/* The profile column: as wide as the longest profile name (of the -p
 * profile, else of profiles_dir's files), at least "PROFILE". */
static int profile_width(struct cli *c, const char *profile)
{
    int w = 7;
    DIR *d;
    struct dirent *de;
    if (profile)
        return (int)strlen(profile) > w ? (int)strlen(profile) : w;
    if (!(d = opendir(c->cfg.profiles_dir)))
        return 16;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")) && (int)(dot - de->d_name) > w)
            w = (int)(dot - de->d_name);
    }
    closedir(d);
    return w;
}

static int list_common(struct cli *c, int argc, char **argv, bool rejects)
{
    struct intake_filter f = {.state = -1, .newest_first = true};
    struct list_ctx l = {.rejects = rejects};
    struct werr e;
    bool json = false;
    int r;
    const char *cmd = rejects ? "rejects" : "intakes";

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc)
            f.profile = argv[++i];
        else if (!rejects && !strcmp(argv[i], "--state") && i + 1 < argc) {
            enum intake_state s;
            if (state_parse(argv[++i], &s) < 0) {
                cli_usage_error(cmd,
                                "unknown state %s (found taken inspected validated loaded "
                                "rejected sealed done failed)",
                                argv[i]);
                return EXIT_USAGE;
            }
            f.state = (int)s;
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            uint64_t v;
            if (parse_uint(argv[++i], 1000000000, &v) < 0 || v == 0) {
                cli_usage_error(cmd, "--limit needs a number from 1");
                return EXIT_USAGE;
            }
            f.limit = (int64_t)v;
        } else {
            cli_usage_error(cmd, "unknown argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if ((r = cli_ledger(c)))
        return r;
    f.rejects = rejects;
    f.with_failed = rejects;
    l.width = profile_width(c, f.profile);
    if (json) {
        if (!(l.arr = view_intakes(c->ledger, &f, rejects, &e))) {
            fprintf(stderr, "wharf %s: %s\n", cmd, e.msg);
            return EXIT_FAILURE_OP;
        }
        cli_print_json(l.arr);
        return EXIT_OK;
    }
    if (rejects)
        printf("%-26s  %-*s  %-8s  %-28s %s\n", "INTAKE", l.width, "PROFILE", "KIND", "FILE",
               "WHEN");
    else
        printf("%-26s  %-*s  %-9s %-9s %8s  %-28s %s\n", "INTAKE", l.width, "PROFILE", "STATE",
               "OUTCOME", "ROWS", "FILE", "UPDATED");
    if (ledger_list(c->ledger, &f, list_cb, &l, &e) < 0) {
        fprintf(stderr, "wharf %s: %s\n", cmd, e.msg);
        return EXIT_FAILURE_OP;
    }
    if (rejects && l.n)
        printf("\n%zu reject%s and %zu failed intake%s waiting, newest first. Read why with `wharf "
               "show INTAKE`, fix the profile, the target or have the partner resend, then "
               "`wharf replay INTAKE` (runbooks/replay.md).\n",
               l.n - l.failed, l.n - l.failed == 1 ? "" : "s", l.failed, l.failed == 1 ? "" : "s");
    return EXIT_OK;
}

int cmd_intakes(struct cli *c, int argc, char **argv)
{
    return list_common(c, argc, argv, false);
}

int cmd_rejects(struct cli *c, int argc, char **argv)
{
    return list_common(c, argc, argv, true);
}

static int ev_cb(void *c, int64_t t, const char *kind, const char *detail)
{
    char ts[32];
    (void)c;
    format_time_ms(t, ts);
    /* re-dumped as ASCII JSON: no partner byte reaches the terminal raw */
    json_error_t err;
    json_t *d = detail ? json_loads(detail, JSON_DECODE_ANY, &err) : NULL;
    char *s = d && !json_is_null(d)
                  ? json_dumps(d, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)
                  : NULL;
    char *raw = !d && detail ? esc_text(detail) : NULL;
    printf("  %s  %-10s %s\n", ts, kind, s ? s : raw ? raw : "");
    free(s);
    free(raw);
    json_decref(d);
    return 0;
}

/* `wharf show --profile P`: the operators' actions on P, newest first. */
static int show_actions(struct cli *c, const char *profile, bool json)
{
    struct werr e;
    json_t *arr, *a;
    size_t i;
    int r;
    if ((r = cli_ledger(c)))
        return r;
    if (!(arr = view_actions(c->ledger, profile, 200, &e))) {
        fprintf(stderr, "wharf show: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    if (json) {
        cli_print_json(arr);
        return EXIT_OK;
    }
    char *p = esc_text(profile);
    printf("profile   %s\nactions   %zu (newest first)\n", p, json_array_size(arr));
    free(p);
    json_array_foreach(arr, i, a) {
        const char *on = json_string_value(json_object_get(a, "intake")),
                   *res = json_string_value(json_object_get(a, "result"));
        char *who = esc_text(json_string_value(json_object_get(a, "actor"))),
             *what = esc_text(res ? res : "done");
        printf("  %s  %-7s by %s%s%s: %s%s\n", json_string_value(json_object_get(a, "time")),
               json_string_value(json_object_get(a, "action")), who, on ? " on " : "",
               on ? on : "", json_is_true(json_object_get(a, "ok")) ? "" : "FAILED: ", what);
        free(who);
        free(what);
    }
    json_decref(arr);
    return EXIT_OK;
}

int cmd_show(struct cli *c, int argc, char **argv)
{
    struct intake in = {0};
    struct werr e;
    const char *id = NULL, *profile = NULL;
    bool json = false;
    int r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc && !profile)
            profile = argv[++i];
        else if (argv[i][0] != '-' && !id)
            id = argv[i];
        else {
            cli_usage_error("show", "unexpected argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (profile && !id)
        return show_actions(c, profile, json);
    if (!id || profile) {
        cli_usage_error("show", "needs an INTAKE id (or a unique prefix), or --profile PROFILE");
        return EXIT_USAGE;
    }
    if (!cli_id_valid(id)) {
        cli_usage_error("show",
                        "\"%s\" is not an intake id (26 letters and digits, or a unique prefix "
                        "of at least 6)",
                        id);
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    if (json) {
        json_t *o;
        r = view_intake(c->ledger, id, &o, &e);
        if (r <= 0) {
            fprintf(stderr, "wharf show: %s\n", r < 0 ? e.msg : "no such intake");
            return r < 0 ? EXIT_FAILURE_OP : EXIT_PROBLEMS;
        }
        cli_print_json(o);
        return EXIT_OK;
    }
    r = ledger_get(c->ledger, id, &in, &e);
    if (r <= 0) {
        fprintf(stderr, "wharf show: %s\n", r < 0 ? e.msg : "no such intake");
        return r < 0 ? EXIT_FAILURE_OP : EXIT_PROBLEMS;
    }
    {
        char ts[32], *name = esc_text(in.name), *source = esc_text(in.source),
                     *path = esc_text(in.path);
        format_time_ms(in.created_ms, ts);
        printf("intake    %s\nprofile   %s\nfile      %s (%llu bytes)\nsource    %s  %s\n"
               "received  %s\nsha256    %s\nstate     %s%s%s\noutcome   %s\nrows      %llu\n",
               in.id, in.profile, name, (unsigned long long)in.size, source, path, ts,
               in.sha256[0] ? in.sha256 : "-", state_name(in.state),
               in.state == ST_FAILED ? ", stopped in " : "",
               in.state == ST_FAILED ? state_name(in.failed_from) : "", outcome_name(in.outcome),
               (unsigned long long)in.rows);
        free(name);
        free(source);
        free(path);
        json_t *parked = in.info ? json_object_get(in.info, "invalid_rows") : NULL;
        if (parked)
            printf("invalid   %" JSON_INTEGER_FORMAT " rows parked in the bag (%zu file%s)\n",
                   json_integer_value(json_object_get(parked, "rows")),
                   json_array_size(json_object_get(parked, "files")),
                   json_array_size(json_object_get(parked, "files")) == 1 ? "" : "s");
        json_t *cv = in.info ? json_object_get(in.info, "control") : NULL;
        if (cv) { /* the message quotes the partner's totals, already escaped */
            char *m = esc_text(json_string_value(json_object_get(cv, "message")));
            printf("control   %s -- %s\n",
                   json_is_true(json_object_get(cv, "ok")) ? "agree" : "DIFFER", m);
            free(m);
        }
        if (in.attempts)
            printf("attempts  %d\n", in.attempts);
        if (in.last_error)
            printf("reason    %s\n", in.last_error);
        if (in.bag)
            printf("bag       %s\n", in.bag);
        struct source_health sh;
        if (ledger_source_health(c->ledger, in.profile, &sh)) {
            char since[32], last[32];
            format_time_ms(sh.since_ms, since);
            format_time_ms(sh.last_ok_ms ? sh.last_ok_ms : sh.last_poll_ms, last);
            if (sh.ok && sh.unreadable)
                printf("source    ok, last listed %s, passing over %d unreadable director%s: %s "
                       "-- runbooks/source-unreachable.md\n",
                       last, sh.unreadable, sh.unreadable == 1 ? "y" : "ies", sh.unreadable_first);
            else if (sh.ok)
                printf("source    ok, last listed %s\n", last);
            else { /* the error quotes what the partner's server or spool said */
                char *err = esc_text(sh.error);
                printf("source    down since %s (%d failed poll%s): %s -- %s\n", since, sh.fails,
                       sh.fails == 1 ? "" : "s", err, sh.runbook);
                free(err);
            }
        }
        if (in.replay_of)
            printf("replays   %s\n", in.replay_of);
        if (in.replayed_by)
            printf("replayed  by %s\n", in.replayed_by);
        if (in.info) {
            char *s = json_dumps(in.info, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
            printf("evidence  %s\n", s ? s : "{}");
            free(s);
        }
        printf("events\n");
        ledger_events(c->ledger, in.id, ev_cb, NULL, &e);
        if (in.outcome == OUT_REJECTED && in.bag)
            printf("report    %s/report.txt\n", in.bag);
    }
    intake_clear(&in);
    return EXIT_OK;
}
