/*
 * server: the long-running process behind `wharf run` (cli/run.c parses
 * the command line, takes the state lock and loads the profiles).
 */
#ifndef WHARF_SERVER_H
#define WHARF_SERVER_H

#include "config/config.h"

enum server_exit {
    SERVER_STOPPED = 0, /* SIGTERM/SIGINT: a clean shutdown */
    SERVER_CONFIG = 1,  /* refused to run (the console it was told to serve did not start) */
    SERVER_FAILED = 2,  /* no worker could start */
};

/* Runs until SIGTERM/SIGINT; takes over set's profiles. */
enum server_exit server_run(const struct wharf_config *cfg, struct profile_set *set);

#endif
