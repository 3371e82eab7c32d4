/*
 * passwd: a console user.
 *
 *   wharf passwd USER [--role viewer|operator]
 *
 * Reads the password twice from the terminal (without echo), or once from
 * standard input when that is not a terminal (scripts, the demo), and
 * writes USER's line in console.users_file with a hash from the system's
 * libcrypt (console/users.h).  The default role is viewer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "console/users.h"

#define PASS_MAX 1024

static int read_pass(const char *prompt, char *buf, size_t n, bool tty)
{
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *r = fgets(buf, (int)n, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!r)
        return -1;
    buf[strcspn(buf, "\r\n")] = 0;
    return 0;
}

int cmd_passwd(struct cli *c, int argc, char **argv)
{
    const char *user = NULL;
    enum user_role role = ROLE_VIEWER;
    char p1[PASS_MAX], p2[PASS_MAX];
    bool tty = isatty(STDIN_FILENO);
    struct werr e;
    int r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            if (role_parse(argv[++i], &role) < 0) {
                cli_usage_error("passwd", "--role is viewer or operator");
                return EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !user)
            user = argv[i];
        else {
            cli_usage_error("passwd", "unexpected argument %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!user || !user_name_valid(user)) {
        cli_usage_error("passwd", "needs a USER: 1 to 64 letters, digits, '.', '_' or '-'");
        return EXIT_USAGE;
    }
    if ((r = cli_config(c)))
        return r;
    if (read_pass("password: ", p1, sizeof p1, tty) < 0) {
        fprintf(stderr, "wharf passwd: no password given\n");
        return EXIT_USAGE;
    }
    if (tty && (read_pass("again: ", p2, sizeof p2, tty) < 0 || strcmp(p1, p2))) {
        fprintf(stderr, "wharf passwd: the passwords differ\n");
        explicit_bzero(p1, sizeof p1);
        return EXIT_USAGE;
    }
    explicit_bzero(p2, sizeof p2);
    if (strlen(p1) < 8) {
        fprintf(stderr, "wharf passwd: a password has at least 8 characters\n");
        explicit_bzero(p1, sizeof p1);
        return EXIT_USAGE;
    }
    r = users_set(c->cfg.console.users_file, user, p1, role, &e);
    explicit_bzero(p1, sizeof p1);
    if (r < 0) {
        fprintf(stderr, "wharf passwd: %s\n", e.msg);
        return EXIT_FAILURE_OP;
    }
    printf("%s (%s) written to %s\n", user, role_name(role), c->cfg.console.users_file);
    return EXIT_OK;
}
