/*
 * export: the manifest record of every sealed intake since a date, for
 * auditors: id, profile, name, size, sha256, encoding evidence, rows,
 * outcome, bag, tag-manifest hash and chain link.  CSV cells that would
 * start with a formula character are neutralised (see csv_field).
 *
 *   wharf export --since DATE [--format csv|json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/views.h"
#include "util/parse.h"

int cmd_export(struct cli *c, int argc, char **argv)
{
    struct intake_filter f = {.state = -1};
    struct werr e;
    const char *since = NULL, *format = "json";
    int r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--since") && i + 1 < argc)
            since = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else {
            cli_usage_error("export", "unknown argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!since || parse_date(since, &f.since_ms) < 0) {
        cli_usage_error("export", "needs --since DATE (2026-11-01 or 2026-11-01T00:00:00Z)");
        return EXIT_USAGE;
    }
    if (strcmp(format, "csv") && strcmp(format, "json")) {
        cli_usage_error("export", "--format is csv or json");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c)))
        return r;
    if (!strcmp(format, "json")) {
        json_t *arr = view_export(c->ledger, f.since_ms, &e);
        if (!arr) {
            fprintf(stderr, "wharf export: %s\n", e.msg);
            return EXIT_FAILURE_OP;
        }
        cli_print_json(arr);
        return EXIT_OK;
    }
    if (view_export_csv(c->ledger, f.since_ms, stdout, &e) < 0) {
        fprintf(stderr, "wharf export: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    return EXIT_OK;
}
