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

struct ectx {
    bool csv;
    json_t *arr;
};

/*
 * One quoted CSV cell.  A cell a spreadsheet would read as a formula (it
 * starts with =, +, -, @, TAB or CR: `=HYPERLINK(...)` in a partner's file
 * name) gets a leading single quote, as OWASP's CSV injection guidance
 * says, so the spreadsheet shows it as text and never evaluates it.
 */
static void csv_field(const char *s, bool last)
{
    putchar('"');
    if (s && *s && strchr("=+-@\t\r", *s))
        putchar('\'');
    for (; s && *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
    putchar(last ? '\n' : ',');
}

static const char *info_str(const struct intake *in, const char *key)
{
    json_t *v = in->info ? json_object_get(in->info, key) : NULL;
    return v ? json_string_value(v) : "";
}

static char *encodings(const struct intake *in)
{
    json_t *insp = in->info ? json_object_get(in->info, "inspection") : NULL;
    json_t *parts = insp ? json_object_get(insp, "parts") : NULL, *p;
    size_t i;
    json_t *a = json_array();
    json_array_foreach(parts, i, p)
    {
        json_t *enc = json_object_get(p, "encoding");
        if (enc)
            json_array_append(a, enc);
    }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static int export_cb(void *c, const struct intake *in)
{
    struct ectx *x = c;
    char ts[32], size[32], rows[32];
    if (!in->bag)
        return 0;
    format_time_ms(in->created_ms, ts);
    if (!x->csv) {
        json_t *o = intake_json(in);
        json_array_append_new(x->arr, o);
        return 0;
    }
    char *enc = encodings(in);
    snprintf(size, sizeof size, "%llu", (unsigned long long)in->size);
    snprintf(rows, sizeof rows, "%llu", (unsigned long long)in->rows);
    csv_field(in->id, false);
    csv_field(in->profile, false);
    csv_field(in->name, false);
    csv_field(ts, false);
    csv_field(size, false);
    csv_field(in->sha256, false);
    csv_field(enc, false);
    csv_field(rows, false);
    csv_field(outcome_name(in->outcome), false);
    csv_field(in->bag, false);
    csv_field(info_str(in, "tagmanifest_sha256"), false);
    csv_field(info_str(in, "chain_link"), true);
    free(enc);
    return 0;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
    struct intake_filter f = {.state = -1};
    struct ectx x = {0};
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
    x.csv = !strcmp(format, "csv");
    if (!x.csv) {
        if (!(x.arr = view_export(c->ledger, f.since_ms, &e))) {
            fprintf(stderr, "wharf export: %s\n", e.msg);
            return EXIT_FAILURE_OP;
        }
        cli_print_json(x.arr);
        return EXIT_OK;
    }
    if (x.csv)
        printf("intake,profile,name,received,size,sha256,encoding,rows,outcome,bag,"
               "tagmanifest_sha256,chain_link\n");
    else
        x.arr = json_array();
    if (ledger_list(c->ledger, &f, export_cb, &x, &e) < 0) {
        fprintf(stderr, "wharf export: %s\n", e.msg);
        json_decref(x.arr);
        return EXIT_FAILURE_OP;
    }
    if (!x.csv)
        cli_print_json(x.arr);
    return EXIT_OK;
}
