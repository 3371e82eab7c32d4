/*
 * trust: `wharf trust HOST[:PORT] [--known-hosts FILE] [--yes]` — show an
 * SFTP server's host key and pin it into known_hosts.
 *
 * Connects and does the key exchange only (no credential is ever sent),
 * prints the key type and SHA256 fingerprint as `ssh-keygen -l` does, says
 * whether known_hosts already has it, has another one (CHANGED) or none,
 * and pins it after a "yes" on a terminal, or with --yes.  The file is
 * cfg->known_hosts unless --known-hosts names another; it is rewritten
 * durably, other lines kept.
 *
 * Exit: 0 pinned (or already pinned), 1 not confirmed, 2 usage, 3 config,
 * 4 the server could not be reached or the file not written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "source/ssh.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define TRUST_TIMEOUT_MS 15000

/* "host", "host:port", "[v6]:port", "v6" (more than one ':'). */
static int parse_target(const char *arg, char **host, int *port)
{
    const char *colon;
    uint64_t v = 22;
    *port = 22;
    if (arg[0] == '[') {
        const char *end = strchr(arg, ']');
        if (!end || end == arg + 1)
            return -1;
        *host = xstrndup(arg + 1, (size_t)(end - arg - 1));
        if (end[1] == ':' && parse_uint(end + 2, 65535, &v) < 0)
            goto bad;
        if (end[1] && end[1] != ':')
            goto bad;
    } else if ((colon = strchr(arg, ':')) && !strchr(colon + 1, ':')) {
        if (colon == arg || parse_uint(colon + 1, 65535, &v) < 0)
            return -1;
        *host = xstrndup(arg, (size_t)(colon - arg));
    } else {
        if (!*arg)
            return -1;
        *host = xstrdup(arg);
    }
    if (v == 0)
        goto bad;
    *port = (int)v;
    return 0;
bad:
    free(*host);
    *host = NULL;
    return -1;
}

static bool confirm(const char *question)
{
    char answer[16];
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    if (!fgets(answer, sizeof answer, stdin))
        return false;
    return !strcmp(answer, "y\n") || !strcmp(answer, "yes\n") || !strcmp(answer, "Y\n");
}

int cmd_trust(struct cli *c, int argc, char **argv)
{
    const char *target = NULL, *kh = NULL;
    bool yes = false;
    char *host = NULL;
    int port = 22, r = EXIT_FAILURE_OP;
    struct ssh_conn conn = {.sock = -1};
    struct werr e = {0};
    enum ssh_host_state st;
    char expected[128];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--yes") || !strcmp(argv[i], "-y")) {
            yes = true;
        } else if (!strcmp(argv[i], "--known-hosts")) {
            if (i + 1 >= argc) {
                cli_usage_error("trust", "--known-hosts needs a file");
                return EXIT_USAGE;
            }
            kh = argv[++i];
        } else if (argv[i][0] == '-') {
            cli_usage_error("trust", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        } else if (target) {
            cli_usage_error("trust", "one HOST[:PORT] at a time");
            return EXIT_USAGE;
        } else {
            target = argv[i];
        }
    }
    if (!target) {
        cli_usage_error("trust", "which server? HOST[:PORT]");
        return EXIT_USAGE;
    }
    if (parse_target(target, &host, &port) < 0) {
        cli_usage_error("trust", "not HOST[:PORT]: %s", target);
        return EXIT_USAGE;
    }
    if (!kh) {
        int cr = cli_config(c);
        if (cr) {
            free(host);
            return cr;
        }
        kh = c->cfg.known_hosts;
        if (!kh) {
            fprintf(stderr, "wharf trust: no known_hosts file is configured; set known_hosts in "
                            "wharf.yaml or pass --known-hosts FILE\n");
            free(host);
            return EXIT_CONFIG;
        }
    }

    if (ssh_connect(&conn, host, port, TRUST_TIMEOUT_MS, kh, &e) < 0) {
        fprintf(stderr, "wharf trust: %s\n", e.msg);
        goto out;
    }
    if (ssh_verify_host(&conn, kh, &st, expected, sizeof expected, &e) < 0) {
        fprintf(stderr, "wharf trust: %s\n", e.msg);
        goto out;
    }
    printf("%s offers host key %s %s\n", conn.hostport, conn.key_type, conn.fp);
    if (st == SSH_HOST_MATCH) {
        printf("already pinned in %s\n", kh);
        r = EXIT_OK;
        goto out;
    }
    if (st == SSH_HOST_CHANGED)
        printf("WARNING: %s pins a DIFFERENT key for it: %s\n"
               "Pin the new key only after confirming it with the server's operator by another\n"
               "channel (see runbooks/host-key-changed.md).\n",
               kh, expected);
    else
        printf("%s has no entry for it.  Compare the fingerprint with the one the server's\n"
               "operator gives you (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server).\n",
               kh);
    fflush(stdout);
    if (!yes && !confirm("Pin this key?")) {
        fprintf(stderr, "wharf trust: not pinned%s\n",
                isatty(STDIN_FILENO) ? "" : " (not a terminal: pass --yes to pin)");
        r = EXIT_PROBLEMS;
        goto out;
    }
    if (ssh_pin_host(&conn, kh, &e) < 0) {
        fprintf(stderr, "wharf trust: %s\n", e.msg);
        goto out;
    }
    printf("pinned %s %s for %s in %s\n", conn.key_type, conn.fp, conn.hostport, kh);
    r = EXIT_OK;
out:
    ssh_disconnect(&conn, "host key check only");
    free(host);
    return r;
}
