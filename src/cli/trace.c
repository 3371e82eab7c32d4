/*
 * trace: from a row in a profile's target back to the partner's file.
 *
 *   wharf trace PROFILE COL=VALUE... [--limit N] [--json]
 *
 * Finds the target rows where every COL equals VALUE (values compared with
 * the column's own type, as SQL would), and for each: its intake, the
 * partner's file name (and the archive member it came from), the line in
 * the decoded file (and the record's XPath for XML), that line's bytes as
 * they were loaded, the sealed bag with its hashes, and the supersessions
 * the ledger knows for the intake.
 *
 * The line's bytes come from the sealed bag, never from a copy kept
 * elsewhere: the original is unpacked and decoded again by the inspect
 * stage itself (inspect_run, into a temporary directory under work/), with
 * the charset recorded at load when it was detected or declared, so the
 * line shown is the one the validator read.  _wharf_line's format is
 * described in load/sqlite.c.
 *
 * Exit: 0 every row found was traced; 1 no row matched, or a row could not
 * be traced (no lineage, intake unknown to the ledger, bag missing); 2
 * usage; 3 configuration; 4 the ledger or target could not be read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "inspect/inspect.h"
#include "load/target.h"
#include "util/escape.h"
#include "util/durable.h"
#include "util/xmalloc.h"

#define LINE_MAX_SHOWN (1024 * 1024)

struct found {
    json_t *rows; /* array of {"columns": {...}, "intake":, "line":} */
};

static int found_cb(void *ctx, const struct found_row *r, struct werr *e)
{
    struct found *f = ctx;
    json_t *cols = json_object();
    (void)e;
    for (size_t i = 0; i < r->n; i++) {
        if (!strncmp(r->names[i], "_wharf_", 7))
            continue;
        json_object_set_new(cols, r->names[i],
                            r->values[i] ? json_string(r->values[i]) : json_null());
    }
    json_array_append_new(f->rows, json_pack("{s:o,s:s?,s:s?}", "columns", cols, "intake",
                                             r->intake, "line", r->line));
    return 0;
}

/* "[P:]L[ XPATH]" (see load/sqlite.c) into its parts; -1 when malformed. */
static int parse_where(const char *s, unsigned long *part, unsigned long long *line,
                       const char **xpath)
{
    char *end;
    unsigned long long a;
    *part = 0;
    *xpath = NULL;
    errno = 0;
    a = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == ':') {
        *part = (unsigned long)a;
        s = end + 1;
        a = strtoull(s, &end, 10);
        if (errno || end == s)
            return -1;
    }
    *line = a;
    if (*end == ' ')
        *xpath = end + 1;
    else if (*end)
        return -1;
    return a ? 0 : -1;
}

/* Physical line `want` of a UTF-8 file (CR, LF and CRLF each end one, as
 * the CSV reader and libxml2 count them), without its line break.  Bounded:
 * at most LINE_MAX_SHOWN bytes are kept (*cut says so).  NULL when the file
 * has fewer lines (e empty) or cannot be read (e filled). */
static char *read_line(const char *path, unsigned long long want, bool *cut, struct werr *e)
{
    FILE *f = fopen(path, "rb");
    unsigned long long line = 1;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int c, prev = 0;
    *cut = false;
    e->msg[0] = 0;
    if (!f) {
        werr_sys(e, "%s", path);
        return NULL;
    }
    while ((c = getc(f)) != EOF) {
        if (c == '\n' && prev == '\r') {
            prev = c;
            continue; /* the LF of a CRLF */
        }
        prev = c;
        if (c == '\r' || c == '\n') {
            if (line == want)
                break;
            line++;
            continue;
        }
        if (line != want)
            continue;
        if (len >= LINE_MAX_SHOWN) {
            *cut = true;
            continue;
        }
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 256;
            buf = xrealloc(buf, cap);
        }
        buf[len++] = (char)c;
    }
    if (ferror(f)) {
        werr_sys(e, "%s: read", path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    if (line != want) {
        free(buf);
        return NULL;
    }
    if (!buf)
        buf = xstrdup("");
    else
        buf[len] = 0;
    return buf;
}

/* For a terminal: partner bytes escaped (util/escape.h). */
static void print_escaped(const char *s)
{
    char *e = esc_text(s);
    fputs(e, stdout);
    free(e);
}

/* One intake's original from its bag, inspected again as at load. */
struct unpacked {
    char id[ID_LEN];
    char *tmp;
    struct inspection insp;
    bool ok;
    char why[1200];
};

static void unpacked_free(struct unpacked *u)
{
    struct werr e;
    inspection_free(&u->insp);
    memset(&u->insp, 0, sizeof u->insp);
    if (u->tmp) {
        rmtree(u->tmp, &e);
        free(u->tmp);
    }
    u->tmp = NULL;
    u->id[0] = 0;
    u->ok = false;
}

/* The charset the load used for part `part` (0-based), when it was decided
 * by the detector or pinned by the profile: decoding again the same way
 * needs no guess and survives a profile changed since. */
static const char *charset_at_load(const struct intake *in, size_t part)
{
    json_t *insp = in->info ? json_object_get(in->info, "inspection") : NULL;
    json_t *pt = insp ? json_array_get(json_object_get(insp, "parts"), part) : NULL;
    json_t *enc = pt ? json_object_get(pt, "encoding") : NULL;
    const char *how = enc ? json_string_value(json_object_get(enc, "method")) : NULL;
    if (!how || (strcmp(how, "detector") && strcmp(how, "declared")))
        return NULL;
    return json_string_value(json_object_get(enc, "charset"));
}

static int unpack_bag(struct cli *c, const struct profile *p, const struct intake *in, size_t part,
                      struct unpacked *u)
{
    struct profile q = *p;
    struct report rep;
    struct werr e = {0};
    char *original = xasprintf("%s/data/%s", in->bag, in->name), *parts;
    const char *cs = charset_at_load(in, part);
    int r;
    unpacked_free(u);
    snprintf(u->id, sizeof u->id, "%s", in->id);
    if (access(original, R_OK) < 0) {
        snprintf(u->why, sizeof u->why, "the sealed original %s cannot be read: %s", original,
                 strerror(errno));
        free(original);
        return 0;
    }
    if (mkdirs(c->cfg.work_dir, 0750, &e) < 0) {
        snprintf(u->why, sizeof u->why, "%s", e.msg);
        free(original);
        return 0;
    }
    u->tmp = xasprintf("%s/trace-XXXXXX", c->cfg.work_dir);
    if (!mkdtemp(u->tmp)) {
        snprintf(u->why, sizeof u->why, "%s: %s", u->tmp, strerror(errno));
        free(u->tmp);
        u->tmp = NULL;
        free(original);
        return 0;
    }
    parts = xasprintf("%s/parts", u->tmp);
    if (cs)
        q.encoding = (char *)cs;
    q.archive_parts_independent = true; /* the other parts need not decode like this one */
    report_init(&rep, 10);
    r = inspect_run(&q, NULL, original, NULL, in->name, parts, &u->insp, &rep,
                    &e); /* lines only: no header hint needed */
    if (r < 0)
        snprintf(u->why, sizeof u->why, "unpacking the sealed original again: %s", e.msg);
    else if (r > 0) {
        char *first = report_first(&rep);
        snprintf(u->why, sizeof u->why, "the sealed original no longer inspects: %s", first);
        free(first);
    } else
        u->ok = true;
    report_free(&rep);
    free(parts);
    free(original);
    return 0;
}

/* The "superseded" events of an intake, as written by the load step. */
static int sup_cb(void *ctx, int64_t time_ms, const char *kind, const char *detail)
{
    json_t *arr = ctx, *d;
    (void)time_ms;
    if (strcmp(kind, "superseded") || !detail)
        return 0;
    if ((d = json_loads(detail, 0, NULL)))
        json_array_append_new(arr, d);
    return 0;
}

/* Resolve one found row into its lineage (added to row); 0 traced, 1 not. */
static int trace_row(struct cli *c, const struct profile *p, json_t *row, struct unpacked *u,
                     struct werr *ep)
{
    const char *id = json_string_value(json_object_get(row, "intake"));
    const char *where = json_string_value(json_object_get(row, "line"));
    struct intake in = {0};
    struct werr e = {0};
    unsigned long part;
    unsigned long long line;
    const char *xpath;
    int g, r = 1;

    if (!id || !*id) {
        json_object_set_new(row, "problem", json_string("the row has no _wharf_intake"));
        return 1;
    }
    g = ledger_get(c->ledger, id, &in, ep);
    if (g < 0)
        return -1;
    if (g == 0 || strcmp(in.id, id)) {
        json_object_set_new(row, "problem",
                            json_string("the ledger has no such intake: the row was not loaded "
                                        "by wharf (see runbooks/reconcile-gap.md)"));
        goto out;
    }
    json_object_set_new(row, "profile", json_string(in.profile));
    json_object_set_new(row, "file", esc_json(in.name));
    json_object_set_new(row, "sha256", json_string(in.sha256));
    json_object_set_new(row, "bag", in.bag ? json_string(in.bag) : json_null());
    {
        char head[SHA256_HEX_LEN];
        struct chain_link own;
        bool has = false;
        if (ledger_chain_state(c->ledger, in.id, head, &own, &has, ep) < 0) {
            r = -1;
            goto out;
        }
        json_object_set_new(row, "tagmanifest_sha256",
                            has ? json_string(own.tagmanifest) : json_null());
    }
    json_t *sup = json_array();
    if (ledger_events(c->ledger, in.id, sup_cb, sup, ep) < 0) {
        json_decref(sup);
        r = -1;
        goto out;
    }
    json_object_set_new(row, "superseded_by", sup);
    json_t *load = in.info ? json_object_get(in.info, "load") : NULL;
    json_t *sups = load ? json_object_get(load, "superseded") : NULL;
    json_object_set_new(row, "supersedes", sups ? json_incref(sups) : json_array());
    if (!where) {
        json_object_set_new(row, "problem",
                            json_string("the table has no _wharf_line (target.lineage: line "
                                        "applies to tables wharf creates)"));
        goto out;
    }
    if (parse_where(where, &part, &line, &xpath) < 0) {
        json_object_set_new(row, "problem", json_string("_wharf_line is not in wharf's form"));
        goto out;
    }
    /* where and xpath point into the "line" string: copy before replacing it */
    json_object_set_new(row, "lineage", json_string(where));
    if (xpath)
        json_object_set_new(row, "xpath", json_string(xpath));
    json_object_set_new(row, "line", json_integer((json_int_t)line));
    if (!in.bag) {
        json_object_set_new(row, "problem", json_string("the intake is not sealed yet"));
        goto out;
    }
    if (strcmp(u->id, in.id) && unpack_bag(c, p, &in, part ? part - 1 : 0, u) < 0) {
        r = -1;
        goto out;
    }
    if (!u->ok) {
        json_object_set_new(row, "problem", json_string(u->why));
        goto out;
    }
    size_t pi = part ? part - 1 : 0;
    if (pi >= u->insp.n || u->insp.parts[pi].rejected) {
        json_object_set_new(row, "problem",
                            json_string("the part named by _wharf_line is not in "
                                        "the sealed original"));
        goto out;
    }
    const struct part *pt = &u->insp.parts[pi];
    json_object_set_new(row, "part", json_string(pt->name));
    json_object_set_new(row, "part_number", json_integer((json_int_t)pi + 1));
    json_object_set_new(row, "parts", json_integer((json_int_t)u->insp.n));
    json_object_set_new(row, "container", json_string(u->insp.container));
    json_object_set_new(
        row, "compression",
        json_string(strcmp(pt->compression, "none") ? pt->compression : u->insp.compression));
    json_object_set_new(row, "charset", json_string(pt->encoding.charset));
    bool cut;
    char *text = read_line(pt->utf8_path, line, &cut, &e);
    if (!text) {
        json_object_set_new(row, "problem",
                            json_string(e.msg[0] ? e.msg : "the decoded file has no such line"));
        goto out;
    }
    json_object_set_new(row, "text", json_string(text));
    if (cut)
        json_object_set_new(row, "text_cut", json_true());
    free(text);
    r = 0;
out:
    intake_clear(&in);
    return r;
}

static void print_row(const json_t *row)
{
    const char *k;
    json_t *v;
    size_t i;
    printf("row        ");
    json_object_foreach(json_object_get(row, "columns"), k, v)
    {
        printf("%s=", k);
        print_escaped(json_is_string(v) ? json_string_value(v) : "NULL");
        putchar(' ');
    }
    putchar('\n');
#define S(key) json_string_value(json_object_get(row, key))
    printf("intake     %s\n", S("intake") ? S("intake") : "-");
    if (S("file")) {
        printf("file       ");
        print_escaped(S("file"));
        putchar('\n');
    }
    if (json_integer_value(json_object_get(row, "parts")) > 1 ||
        (S("container") && strcmp(S("container"), "none"))) {
        printf("part       %lld of %lld: ", json_integer_value(json_object_get(row, "part_number")),
               json_integer_value(json_object_get(row, "parts")));
        print_escaped(S("part") ? S("part") : "?");
        putchar('\n');
    }
    if (S("compression") && strcmp(S("compression"), "none"))
        printf("packed     %s%s%s\n",
               S("container") && strcmp(S("container"), "none") ? S("container") : "",
               S("container") && strcmp(S("container"), "none") ? " + " : "", S("compression"));
    if (json_object_get(row, "line") && json_is_integer(json_object_get(row, "line")))
        printf("line       %lld\n", json_integer_value(json_object_get(row, "line")));
    if (S("xpath"))
        printf("xpath      %s\n", S("xpath"));
    if (S("text")) {
        printf("text       ");
        print_escaped(S("text"));
        printf("%s\n", json_is_true(json_object_get(row, "text_cut")) ? " [cut]" : "");
        printf("charset    %s (shown decoded to UTF-8, as loaded)\n", S("charset"));
    }
    if (S("bag"))
        printf("bag        %s\n", S("bag"));
    if (S("sha256"))
        printf("sha256     %s (the file as received)\n", S("sha256"));
    if (S("tagmanifest_sha256"))
        printf("tagmanifest %s (in the hash chain)\n", S("tagmanifest_sha256"));
    json_array_foreach(json_object_get(row, "superseded_by"), i, v)
    {
        if (json_is_true(json_object_get(v, "all")))
            printf("superseded all %lld rows by %s (replace)\n",
                   json_integer_value(json_object_get(v, "rows")),
                   json_string_value(json_object_get(v, "by")));
        else
            printf("superseded %lld rows by %s (upsert)\n",
                   json_integer_value(json_object_get(v, "rows")),
                   json_string_value(json_object_get(v, "by")));
    }
    json_array_foreach(json_object_get(row, "supersedes"), i, v)
        printf("supersedes %lld rows of %s\n", json_integer_value(json_object_get(v, "rows")),
               json_string_value(json_object_get(v, "intake")));
    if (S("problem"))
        printf("problem    %s\n", S("problem"));
#undef S
}

int cmd_trace(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct target t = {0};
    struct found f = {0};
    struct unpacked u = {0};
    struct werr e = {0};
    const char *pname = NULL;
    char **cols = NULL, **vals = NULL;
    size_t n = 0, limit = 100;
    bool json = false, opened = false;
    int r, problems = 0;

    for (int i = 1; i < argc; i++) {
        char *eq;
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000) {
                cli_usage_error("trace", "--limit takes 1..100000");
                r = EXIT_USAGE;
                goto out;
            }
            limit = (size_t)v;
        } else if (argv[i][0] == '-') {
            cli_usage_error("trace", "unknown option %s", argv[i]);
            r = EXIT_USAGE;
            goto out;
        } else if (!pname)
            pname = argv[i];
        else if ((eq = strchr(argv[i], '=')) && eq != argv[i]) {
            cols = xrealloc(cols, (n + 1) * sizeof *cols);
            vals = xrealloc(vals, (n + 1) * sizeof *vals);
            cols[n] = xstrndup(argv[i], (size_t)(eq - argv[i]));
            vals[n] = xstrdup(eq + 1);
            n++;
        } else {
            cli_usage_error("trace", "expected COLUMN=VALUE, got %s", argv[i]);
            r = EXIT_USAGE;
            goto out;
        }
    }
    if (!pname || !n) {
        cli_usage_error("trace", "give a PROFILE and at least one COLUMN=VALUE");
        r = EXIT_USAGE;
        goto out;
    }
    if ((r = cli_ledger(c)))
        goto out;
    char *names[] = {(char *)pname};
    if ((r = cli_profiles(c, names, 1, &set)))
        goto out;
    const struct profile *p = profiles_find(&set, pname);
    if (!p) {
        fprintf(stderr, "wharf trace: no profile %s\n", pname);
        r = EXIT_CONFIG;
        goto out;
    }
    if (target_open_readonly(&t, &c->cfg, p, &e) < 0) {
        fprintf(stderr, "wharf trace: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    opened = true;
    f.rows = json_array();
    if (t.ops->find(&t, cols, vals, n, limit, found_cb, &f, &e) < 0) {
        fprintf(stderr, "wharf trace: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    target_close(&t);
    opened = false;
    size_t i, nfound = json_array_size(f.rows);
    json_t *row;
    json_array_foreach(f.rows, i, row)
    {
        int k = trace_row(c, p, row, &u, &e);
        if (k < 0) {
            fprintf(stderr, "wharf trace: %s\n", e.msg[0] ? e.msg : "ledger read failed");
            r = EXIT_FAILURE_OP;
            goto out;
        }
        problems += k;
    }
    if (json) {
        cli_print_json(f.rows);
        f.rows = NULL;
    } else {
        json_array_foreach(f.rows, i, row)
        {
            if (i)
                putchar('\n');
            print_row(row);
        }
        if (!json_array_size(f.rows))
            printf("no row of %s matches\n", pname);
    }
    r = (problems || !nfound) ? EXIT_PROBLEMS : EXIT_OK;
out:
    if (opened)
        target_close(&t);
    unpacked_free(&u);
    json_decref(f.rows);
    for (size_t k = 0; k < n; k++) {
        free(cols[k]);
        free(vals[k]);
    }
    free(cols);
    free(vals);
    profiles_free(&set);
    return r;
}
