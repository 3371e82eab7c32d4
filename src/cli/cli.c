/*
 * cli: global option parsing, help, and the shared set-up of commands
 * (configuration, ledger).  The table itself is in wharf.c.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/defaults.h"
#include "util/durable.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wharf [-c wharf.yaml] [-v] COMMAND [ARGS]\n\n"
            "  -c FILE        the configuration (default ./wharf.yaml, else built-in)\n"
            "  -v, --verbose  debug log lines too (each poll: what it listed, skipped, and why)\n"
            "  --version      the version; -h, --help: this text\n\ncommands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(f, "  %-8s %s\n", c->name, c->summary);
    fprintf(f, "\n`wharf COMMAND --help` for a command's options.\n"
               "Without -c, ./wharf.yaml is read when present, else the embedded defaults\n"
               "(state in ./var, profiles in ./profiles, schemas in ./schemas).\n"
               "Exit codes: 0 ok, 1 problems found, 2 usage, 3 configuration, 4 operational "
               "failure\n(ledger, disk, network: the message says which, and the runbook), "
               "5 another wharf server holds the state directory.\n");
}

const struct command *cli_find(const char *name)
{
    for (const struct command *c = commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

bool cli_wants_help(const struct command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: %s\n\n%s\n\nGlobal options (before the command): -c FILE, -v, "
                   "--verbose.\n",
                   cmd->usage, cmd->summary);
            return true;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("wharf %s\n", WHARF_VERSION);
            return true;
        }
    }
    return false;
}

bool cli_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 6 || n > ID_LEN - 1)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s))
            return false;
    return true;
}

bool cli_tty(int fd)
{
    const char *term = getenv("TERM");
    return isatty(fd) && term && *term && strcmp(term, "dumb") != 0;
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    const struct command *c = cli_find(cmd);
    fprintf(stderr, "wharf %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (c)
        fprintf(stderr, "usage: %s\n", c->usage);
}

int cli_config(struct cli *c)
{
    struct diags d = {0};
    if (c->cfg_loaded)
        return 0;
    if (config_load(c->config_path, &c->cfg, &d) < 0) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "%s\n", d.msg[i]);
        diag_free(&d);
        config_free(&c->cfg);
        return EXIT_CONFIG;
    }
    diag_free(&d);
    c->cfg_loaded = true;
    log_init(c->cfg.log_json, c->verbose ? LOG_DEBUG : LOG_INFO);
    /* This process is a node named by wharf.yaml (default the host name):
     * what it claims and moves in the ledger carries that name and a lease
     * (ledger.h, "Nodes and leases"). */
    {
        char host[256] = "";
        const char *name = c->cfg.node;
        if (!name || !*name) {
            if (gethostname(host, sizeof host - 1) < 0 || !host[0])
                snprintf(host, sizeof host, "localhost");
            name = host;
        }
        ledger_identity(name, c->cfg.lease_ms > 0 ? c->cfg.lease_ms : DEF_LEASE_MS);
    }
    return 0;
}

/* Commands that only read the ledger: they never create a state
 * directory or a ledger where none exists. */
static bool reads_only(const char *cmd)
{
    static const char *const readers[] = {"status", "intakes", "show", "rejects",
                                          "export", "verify",  "trace"};
    for (size_t i = 0; cmd && i < sizeof readers / sizeof *readers; i++)
        if (!strcmp(cmd, readers[i]))
            return true;
    return false;
}

static void user_label(uid_t uid, char *buf, size_t n)
{
    struct passwd *pw = getpwuid(uid);
    snprintf(buf, n, "uid %u%s%s%s", (unsigned)uid, pw ? " (" : "", pw ? pw->pw_name : "",
             pw ? ")" : "");
}

/*
 * Root on a state directory that belongs to someone else (the service user
 * of the package): become that user before touching anything, so no file
 * in it ends up owned by root and unwritable for the server.  Refuses (exit
 * 4) when the switch fails.
 */
static int become_owner(struct cli *c)
{
    struct stat st;
    struct passwd *pw;
    char who[160];
    if (geteuid() != 0 || stat(c->cfg.state_dir, &st) < 0 || st.st_uid == 0)
        return 0;
    pw = getpwuid(st.st_uid);
    user_label(st.st_uid, who, sizeof who);
    if ((pw ? initgroups(pw->pw_name, pw->pw_gid) : setgroups(0, NULL)) < 0 ||
        setgid(pw ? pw->pw_gid : st.st_gid) < 0 || setuid(st.st_uid) < 0) {
        fprintf(stderr,
                "wharf %s: refusing to run as root on %s, which belongs to %s: files created "
                "there would be root's and the server could not write them; switching to %s "
                "failed (%s). Run it as that user (sudo -u %s wharf ...); see "
                "runbooks/state-permissions.md\n",
                c->cmd ? c->cmd : "", c->cfg.state_dir, who, who, strerror(errno),
                pw ? pw->pw_name : "#uid");
        return EXIT_FAILURE_OP;
    }
    fprintf(stderr, "wharf: %s belongs to %s: running as that user, not root\n", c->cfg.state_dir,
            who);
    return 0;
}

int cli_ledger(struct cli *c)
{
    struct werr e;
    struct stat st;
    int r = cli_config(c);
    bool ro = reads_only(c->cmd);
    if (r)
        return r;
    if (c->ledger)
        return 0;
    if ((r = become_owner(c)))
        return r;
    if (ro && strcmp(c->cfg.ledger_type, "postgresql") != 0 && stat(c->cfg.ledger_path, &st) < 0) {
        fprintf(stderr,
                "wharf %s: no ledger at %s: nothing has run with this configuration (%s) yet. "
                "Give the configuration with -c, or start with `wharf once` or `wharf run`.\n",
                c->cmd, c->cfg.ledger_path, c->cfg.file ? c->cfg.file : "built-in defaults");
        return EXIT_FAILURE_OP;
    }
    if (!ro && mkdirs(c->cfg.state_dir, 0750, &e) < 0) {
        fprintf(stderr, "wharf: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    c->ledger = ledger_open(c->cfg.ledger_type, c->cfg.ledger_path, c->cfg.ledger_dsn_file, &e);
    if (!c->ledger) {
        fprintf(stderr, "wharf: ledger: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    if (!ro && ledger_writable(c->ledger, &e) < 0) {
        fprintf(stderr, "wharf %s: %s; nothing was done (see runbooks/state-permissions.md)\n",
                c->cmd ? c->cmd : "", e.msg);
        return EXIT_FAILURE_OP;
    }
    return 0;
}

int cli_main(int argc, char **argv)
{
    struct cli c = {0};
    const struct command *cmd;
    int i = 1, r;

    /* wharf's own files (ledger, work copies, bags, the SQLite target) are
     * for the service user and its group only, whatever umask the caller
     * had: partner data and the audit trail are never world-readable. */
    umask(027);
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            c.config_path = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            c.verbose = true;
            i++;
        } else if (!strcmp(argv[i], "--version")) {
            printf("wharf %s\n", WHARF_VERSION);
            return EXIT_OK;
        } else {
            fprintf(stderr, "wharf: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[i], "help")) {
        if (i + 1 < argc && (cmd = cli_find(argv[i + 1]))) {
            printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
            return EXIT_OK;
        }
        usage(stdout);
        return EXIT_OK;
    }
    cmd = cli_find(argv[i]);
    if (!cmd) {
        fprintf(stderr, "wharf: unknown command \"%s\"\n", argv[i]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_wants_help(cmd, argc - i, argv + i))
        return EXIT_OK;
    c.cmd = cmd->name;
    log_init(-1, c.verbose ? LOG_DEBUG : LOG_INFO);
    r = cmd->fn(&c, argc - i, argv + i);
    ledger_close(c.ledger);
    if (c.cfg_loaded)
        config_free(&c.cfg);
    return r;
}

int cli_profiles(struct cli *c, char **names, size_t n, struct profile_set *set)
{
    struct diags d = {0};
    int r = profiles_load(&c->cfg, names, n, set, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msg[i]);
    diag_free(&d);
    return r < 0 ? EXIT_CONFIG : 0;
}

void cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

json_t *cli_outcome_json(struct cli *c, const char *id)
{
    struct intake in = {0};
    struct werr e;
    json_t *o;
    if (ledger_get(c->ledger, id, &in, &e) <= 0)
        return json_null();
    o = intake_json(&in);
    intake_clear(&in);
    return o;
}

int cli_record_action(struct cli *c, const char *action, const char *profile, const char *intake,
                      bool ok, const char *result)
{
    struct passwd *pw = getpwuid(getuid());
    const char *sudo = getenv("SUDO_USER");
    char *actor = pw ? xasprintf("cli:%s", pw->pw_name) : xasprintf("cli:uid %u", (unsigned)getuid());
    if (sudo && *sudo && (!pw || strcmp(sudo, pw->pw_name))) {
        char *t = xasprintf("%s (sudo by %s)", actor, sudo);
        free(actor);
        actor = t;
    }
    struct action a = {0, actor, action, profile, intake, ok, result};
    struct werr e;
    int r = ledger_action_add(c->ledger, &a, &e);
    if (r < 0)
        fprintf(stderr, "wharf %s: %s, but not recorded in the ledger's actions: %s\n", action,
                ok ? "done" : "failed", e.msg);
    free(actor);
    return r;
}

void cli_print_outcome(struct cli *c, const char *id)
{
    struct intake in = {0};
    struct werr e;
    char *name;
    if (ledger_get(c->ledger, id, &in, &e) <= 0)
        return;
    if (cli_tty(2))
        fputs("\r\033[K", stderr); /* clear the progress line */
    name = esc_text(in.name);      /* a partner's name: never raw on a terminal */
    if (in.state == ST_DONE && in.outcome == OUT_LOADED)
        printf("%s  %-12s loaded %llu rows from %s\n", in.id, in.profile,
               (unsigned long long)in.rows, name);
    else if (in.state == ST_DONE && in.outcome == OUT_DUPLICATE)
        printf("%s  %-12s duplicate %s: skipped (same content already loaded)\n", in.id, in.profile,
               name);
    else if (in.outcome == OUT_REJECTED)
        printf("%s  %-12s REJECTED %s: %s\n    report: %s/report.txt\n", in.id, in.profile, name,
               in.last_error ? in.last_error : "", in.bag ? in.bag : "(not sealed yet)");
    else if (in.state == ST_FAILED)
        printf("%s  %-12s FAILED %s: %s\n", in.id, in.profile, name,
               in.last_error ? in.last_error : "");
    else
        printf("%s  %-12s %s %s: will retry%s%s\n", in.id, in.profile, state_name(in.state), name,
               in.last_error ? ": " : "", in.last_error ? in.last_error : "");
    free(name);
    intake_clear(&in);
}

void cli_progress(void *ctx, const char *intake, const char *step, uint64_t done, uint64_t total,
                  uint64_t rows)
{
    static int64_t start;
    static char current[ID_LEN];
    int64_t now = now_ms();
    (void)ctx;
    if (!cli_tty(2))
        return;
    if (strncmp(current, intake, ID_LEN)) {
        snprintf(current, sizeof current, "%s", intake);
        start = now;
    }
    double secs = (double)(now - start) / 1000.0;
    if (secs <= 0.05)
        return; /* nothing to say yet */
    if (total && done)
        fprintf(stderr, "\r%s %s: %llu/%llu MB, %llu rows, %.0f rows/s, %.0fs left   ", intake,
                step, (unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
                (unsigned long long)rows, (double)rows / secs,
                secs * (double)(total - done) / (double)done);
    else
        fprintf(stderr, "\r%s %s: %llu rows, %.0f rows/s, %.1fs   ", intake, step,
                (unsigned long long)rows, (double)rows / secs, secs);
}
