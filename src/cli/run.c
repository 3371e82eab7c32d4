/*
 * run: `wharf run`, the server in the foreground (daemon/server.h).  This
 * file is the command: its arguments, the ledger's migrations, the state
 * lock and the first load of the profiles; the server does the rest.
 */
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/lock.h"
#include "daemon/server.h"
#include "util/log.h"

int cmd_run(struct cli *c, int argc, char **argv)
{
    struct profile_set set = {0};
    struct werr e;
    int r, lock;

    (void)argv;
    if (argc > 1) {
        cli_usage_error("run", "takes no arguments");
        return EXIT_USAGE;
    }
    if ((r = cli_ledger(c))) /* opens (and migrates) the ledger before anything starts */
        return r;
    lock = statelock_acquire(&c->cfg, &e);
    if (lock < 0) {
        fprintf(stderr, "wharf run: %s\n", e.msg);
        return lock == -2 ? EXIT_LOCKED : EXIT_FAILURE_OP;
    }
    if (cli_profiles(c, NULL, 0, &set))
        wlog(LOG_ERROR, NULL, NULL, "profiles", NULL,
             "some profiles have problems and are not running (wharf check shows them)");
    switch (server_run(&c->cfg, &set)) {
    case SERVER_STOPPED:
        r = EXIT_OK;
        break;
    case SERVER_CONFIG:
        r = EXIT_CONFIG;
        break;
    default:
        r = EXIT_FAILURE_OP;
    }
    close(lock);
    return r;
}
