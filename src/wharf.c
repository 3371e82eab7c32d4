/*
 * wharf: main() and the command table, nothing else.  Each command lives
 * in src/cli/<command>.c; `wharf --help` lists exactly this table.
 */
#include "cli/cli.h"

const struct command commands[] = {
    {"run", cmd_run, "wharf [-c FILE] run", "the server, in the foreground (systemd runs it)"},
    {"once", cmd_once, "wharf once [--json] [PROFILE...]",
     "poll every enabled profile once, process what is complete, exit"},
    {"ingest", cmd_ingest, "wharf ingest -p PROFILE [--json] FILE...",
     "push files through a profile now"},
    {"check", cmd_check, "wharf check [--connect] [--json] [PROFILE...]",
     "validate wharf.yaml, profiles and schemas (and reach sources); report every problem"},
    {"status", cmd_status, "wharf status [--nodes] [--json]",
     "per profile: health, last success, backlog, rejects; the nodes sharing the ledger"},
    {"intakes", cmd_intakes, "wharf intakes [-p PROFILE] [--state STATE] [--limit N] [--json]",
     "list intakes, newest first"},
    {"show", cmd_show, "wharf show INTAKE | --profile PROFILE [--json]",
     "one file's whole journey, event by event (--profile: operators' actions)"},
    {"rejects", cmd_rejects, "wharf rejects [-p PROFILE] [--limit N] [--json]",
     "rejected files and failed intakes waiting for a fix and a replay, newest first"},
    {"replay", cmd_replay, "wharf replay [--json] INTAKE... | -p PROFILE --all",
     "re-run rejected or failed intakes under the current profile"},
    {"verify", cmd_verify, "wharf verify [--json] [INTAKE...]",
     "re-hash sealed bags and check the hash chain"},
    {"export", cmd_export, "wharf export --since DATE [--format csv|json]",
     "the manifest record of every sealed intake"},
    {"trust", cmd_trust, "wharf trust HOST[:PORT] [--known-hosts FILE] [--yes]",
     "show an SFTP server's host key and fingerprint, and pin it"},
    {"reconcile", cmd_reconcile, "wharf reconcile [PROFILE...] [--since DATE] [--json]",
     "the targets against the ledger: rows and key digests per intake"},
    {"trace", cmd_trace, "wharf trace PROFILE COLUMN=VALUE... [--limit N] [--json]",
     "a target row back to its intake, file, line and sealed bytes"},
    {"passwd", cmd_passwd, "wharf passwd USER [--role viewer|operator]",
     "add a console user or set a password (hash from the system's libcrypt)"},
    {"ledger", cmd_ledger, "wharf ledger migrate --to postgresql [--dsn-file FILE]",
     "copy the SQLite ledger into an empty PostgreSQL ledger and verify the copy"},
    {"pause", cmd_pause, "wharf pause PROFILE", "stop polling a profile (the server honours it)"},
    {"resume", cmd_resume, "wharf resume PROFILE", "poll a paused profile again"},
    {0},
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
