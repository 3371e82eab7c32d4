/*
 * check: load wharf.yaml and every (or the named) profile, compile every
 * schema they reference, and report every problem at once.  Exit 0 only
 * when everything is clean.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "validate/validate.h"

int cmd_check(struct cli *c, int argc, char **argv)
{
    struct diags d = {0};
    struct profile_set set = {0};
    int r;

    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') {
            cli_usage_error("check", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        }
    if (config_load(c->config_path, &c->cfg, &d) < 0) {
        for (size_t i = 0; i < d.n; i++)
            printf("%s\n", d.msg[i]);
        printf("configuration: %zu problem%s\n", d.n, d.n == 1 ? "" : "s");
        diag_free(&d);
        return EXIT_CONFIG;
    }
    c->cfg_loaded = true;
    profiles_load(&c->cfg, argc > 1 ? argv + 1 : NULL, (size_t)(argc - 1), &set, &d);
    for (size_t i = 0; i < set.n; i++) {
        struct validator *v = validator_compile(&c->cfg, set.v[i], &d);
        validator_free(v);
    }
    for (size_t i = 0; i < d.n; i++)
        printf("%s\n", d.msg[i]);
    if (d.n) {
        printf("%zu problem%s found\n", d.n, d.n == 1 ? "" : "s");
        r = EXIT_PROBLEMS;
    } else {
        printf("ok: %s, %zu profile%s", c->cfg.file ? c->cfg.file : "built-in defaults", set.n,
               set.n == 1 ? "" : "s");
        for (size_t i = 0; i < set.n; i++)
            printf("%s%s", i ? ", " : " (", set.v[i]->name);
        printf("%s\n", set.n ? ")" : "");
        r = EXIT_OK;
    }
    diag_free(&d);
    profiles_free(&set);
    return r;
}
