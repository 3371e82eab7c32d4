/*
 * cli: the operator and auditor commands, one file each.  wharf.c holds the
 * command table; every command gets the global options already parsed.
 *
 * Exit codes (documented in wharf(1) and the README):
 *   0  success
 *   1  the command worked and found problems (check: invalid config;
 *      verify: tampering; ingest/once: a file was rejected or failed)
 *   2  usage error
 *   3  configuration could not be loaded
 *   4  operational failure (ledger, disk, network)
 *   5  another wharf server holds the state directory
 */
#ifndef WHARF_CLI_H
#define WHARF_CLI_H

#include <stdbool.h>

#include "config/config.h"
#include "ledger/ledger.h"

enum {
    EXIT_OK = 0,
    EXIT_PROBLEMS = 1,
    EXIT_USAGE = 2,
    EXIT_CONFIG = 3,
    EXIT_FAILURE_OP = 4,
    EXIT_LOCKED = 5,
};

struct cli {
    const char *config_path; /* -c */
    struct wharf_config cfg;
    bool cfg_loaded;
    struct ledger *ledger;
    bool verbose;    /* -v, --verbose: debug log lines */
    const char *cmd; /* the command's name */
};

struct command {
    const char *name;
    int (*fn)(struct cli *c, int argc, char **argv);
    const char *usage;   /* "wharf status [--json]" */
    const char *summary; /* one line */
};

int cli_main(int argc, char **argv);
extern const struct command commands[];

/* Load config (exit code on failure, printing the problems). */
int cli_config(struct cli *c);
/* Load config and open the ledger. */
int cli_ledger(struct cli *c);
/* True when argv holds -h/--help; prints the command's usage. */
bool cli_wants_help(const struct command *cmd, int argc, char **argv);
const struct command *cli_find(const char *name);
/* fd is a terminal that understands control sequences (not TERM=dumb):
 * only then do progress lines and cursor movements appear. */
bool cli_tty(int fd);
/* s looks like an intake id or a prefix of one (a usage check; the ledger
 * says whether it exists). */
bool cli_id_valid(const char *s);
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The commands. */
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_once(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_ingest(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_intakes(struct cli *c, int argc, char **argv);
int cmd_show(struct cli *c, int argc, char **argv);
int cmd_rejects(struct cli *c, int argc, char **argv);
int cmd_replay(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
int cmd_trust(struct cli *c, int argc, char **argv);
int cmd_pause(struct cli *c, int argc, char **argv);
int cmd_resume(struct cli *c, int argc, char **argv);
int cmd_trace(struct cli *c, int argc, char **argv);
int cmd_reconcile(struct cli *c, int argc, char **argv);
int cmd_passwd(struct cli *c, int argc, char **argv);
int cmd_ledger(struct cli *c, int argc, char **argv);

/* Load profiles (all, or the named ones); problems are printed to stderr.
 * Returns 0 when all loaded clean, EXIT_CONFIG when some could not be
 * loaded (the good ones are still in set). */
int cli_profiles(struct cli *c, char **names, size_t n, struct profile_set *set);
/* A one-line human summary of an intake's outcome. */
void cli_print_outcome(struct cli *c, const char *id);
/* Records an operator's action done from the command line (pause, resume,
 * replay) in the ledger's actions, by "cli:<login>" (and the sudo user who
 * ran it, when there is one); 0, or -1 when it could not be recorded (said
 * on stderr: the command then fails, EXIT_FAILURE_OP). */
int cli_record_action(struct cli *c, const char *action, const char *profile, const char *intake,
                       bool ok, const char *result);
/* The intake as JSON (intake_json), or JSON null when it cannot be read. */
json_t *cli_outcome_json(struct cli *c, const char *id);
/* A progress callback for pipeline_set_progress: on a terminal, one
 * self-updating line on stderr (rows, rate, elapsed); silent otherwise. */
void cli_progress(void *ctx, const char *intake, const char *step, uint64_t done, uint64_t total,
                  uint64_t rows);
/* Print as JSON (pretty) to stdout and decref. */
void cli_print_json(json_t *j);
#endif
