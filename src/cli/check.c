/*
 * check: load wharf.yaml and every (or the named) profile, compile every
 * schema they reference, and report every problem at once.  Exit 0 only
 * when everything is clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "load/sftp_push.h"
#include "load/target.h"
#include "source/source.h"
#include "util/escape.h"
#include "validate/validate.h"

#define CHECK_SHOW_MAX 20

/* "  seen     orders_1.csv (120 bytes): matches the pattern" */
static void check_line(const struct profile *p, const struct drop *d, const char *why,
                       const char *what)
{
    (void)p;
    char *path = esc_text(d->path); /* a partner's name: util/escape.h */
    printf("  %-8s %s (%llu bytes): %s\n", what, path, (unsigned long long)d->size, why);
    free(path);
}

int cmd_check(struct cli *c, int argc, char **argv)
{
    struct diags d = {0};
    struct profile_set set = {0};
    char **names = NULL;
    size_t n = 0;
    bool connect = false, json = false;
    json_t *sources = json_array();
    int r;

    names = calloc((size_t)argc, sizeof *names);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--connect"))
            connect = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-') {
            cli_usage_error("check", "unknown option %s", argv[i]);
            free(names);
            json_decref(sources);
            return EXIT_USAGE;
        } else
            names[n++] = argv[i];
    }
    if (config_load(c->config_path, &c->cfg, &d) < 0) {
        if (json) {
            json_t *pr = json_array();
            for (size_t i = 0; i < d.n; i++)
                json_array_append_new(pr, json_string(d.msg[i]));
            cli_print_json(json_pack("{s:b,s:s?,s:o}", "ok", 0, "config",
                                     c->config_path ? c->config_path : NULL, "problems", pr));
        } else {
            for (size_t i = 0; i < d.n; i++)
                printf("%s\n", d.msg[i]);
            printf("configuration: %zu problem%s\n", d.n, d.n == 1 ? "" : "s");
        }
        diag_free(&d);
        config_free(&c->cfg);
        free(names);
        json_decref(sources);
        return EXIT_CONFIG;
    }
    c->cfg_loaded = true;
    profiles_load(&c->cfg, n ? names : NULL, n, &set, &d);
    /* Every schema compiles, and its columns fit the target table as it is
     * now under the profile's target.evolve: a schema change that the
     * table cannot follow is found here, before any file is touched.  A
     * PostgreSQL target is reached (and its role's rights checked) only
     * with --connect. */
    for (size_t i = 0; i < set.n; i++) {
        struct validator *v = validator_compile(&c->cfg, set.v[i], &d);
        for (int f = 0; v && f < 2; f++) {
            const struct columns *cols = validator_columns(v, f ? FORMAT_XML : FORMAT_CSV);
            struct werr e = {0};
            /* a server's table is looked at only with --connect */
            if (target_is_remote(set.v[i]) && !connect)
                break;
            if (cols && target_check_schema(&c->cfg, set.v[i], cols, &e) < 0)
                diag_add(&d, set.v[i]->file, 0, 0, "target", "%s (see %s)", e.msg,
                         werr_runbook(&e));
        }
        validator_free(v);
    }
    /* --connect: reach every source and list it, as a poll would, and say
     * what was seen and what was passed over, and why. */
    for (size_t i = 0; connect && i < set.n; i++) {
        struct source src;
        struct drop_list list = {0}, skipped = {0};
        struct werr e;
        const struct profile *p = set.v[i];
        int lr = -1;
        if (source_open(&src, &c->cfg, p, &e) == 0) {
            src.skipped = &skipped;
            lr = src.ops->list(&src, &list, &e);
            source_close(&src);
        }
        if (lr < 0) {
            diag_add(&d, p->file, 0, 0, "source", "cannot be reached: %s (see %s)", e.msg,
                     werr_runbook(&e));
            json_array_append_new(sources, json_pack("{s:s,s:b,s:s}", "profile", p->name,
                                                     "reachable", 0, "error", e.msg));
            drop_list_free(&list);
            drop_list_free(&skipped);
            continue;
        }
        if (json) {
            json_t *files = json_array();
            for (size_t k = 0; k < list.n; k++)
                json_array_append_new(
                    files, json_pack("{s:o,s:I,s:s,s:s}", "path", esc_json(list.v[k].path), "size",
                                     (json_int_t)list.v[k].size, "seen",
                                     list.v[k].unsafe ? "unsafe" : "matches", "why",
                                     list.v[k].unsafe ? list.v[k].unsafe : "matches the pattern"));
            for (size_t k = 0; k < skipped.n; k++)
                json_array_append_new(
                    files, json_pack("{s:o,s:I,s:s,s:s,s:b}", "path", esc_json(skipped.v[k].path),
                                     "size", (json_int_t)skipped.v[k].size, "seen", "skipped",
                                     "why", skipped.v[k].skipped, "temporary", skipped.v[k].temp));
            json_array_append_new(sources, json_pack("{s:s,s:b,s:o}", "profile", p->name,
                                                     "reachable", 1, "files", files));
        } else {
            printf("%s: source reachable, %zu file%s waiting, %zu passed over\n", p->name, list.n,
                   list.n == 1 ? "" : "s", skipped.n);
            for (size_t k = 0; k < list.n && k < CHECK_SHOW_MAX; k++)
                check_line(p, &list.v[k],
                           list.v[k].unsafe ? list.v[k].unsafe : "matches the pattern",
                           list.v[k].unsafe ? "unsafe, will be quarantined" : "seen");
            for (size_t k = 0; k < skipped.n && k < CHECK_SHOW_MAX; k++)
                check_line(p, &skipped.v[k], skipped.v[k].skipped, "skipped");
            if (list.n > CHECK_SHOW_MAX || skipped.n > CHECK_SHOW_MAX)
                printf("  (only the first %d of each shown)\n", CHECK_SHOW_MAX);
        }
        drop_list_free(&list);
        drop_list_free(&skipped);
        /* An outbound profile's partners: log in as a delivery would and
         * look at the directory (nothing is written). */
        for (size_t k = 0; p->outbound && k < p->n_deliver; k++) {
            const struct source_conf *sc = &p->deliver[k].sftp;
            const char *kh = sc->known_hosts ? sc->known_hosts : c->cfg.known_hosts;
            char *to = deliver_url(&p->deliver[k]);
            struct sftp_push sp;
            int dr = sftp_push_open(&sp, sc, kh, &e);
            if (dr == 0) {
                dr = sftp_push_check_dir(&sp, sc->path, &e);
                sftp_push_close(&sp);
            }
            if (dr < 0)
                diag_add(&d, p->file, 0, 0, "deliver", "cannot deliver to %s: %s (see %s)", to,
                         e.msg, werr_runbook(&e));
            else if (!json)
                printf("%s: delivery to %s: logged in, the directory is there\n", p->name, to);
            json_array_append_new(sources, json_pack("{s:s,s:s,s:b,s:s?}", "profile", p->name,
                                                     "destination", to, "reachable", dr == 0,
                                                     "error", dr < 0 ? e.msg : NULL));
            free(to);
        }
    }
    if (json) {
        json_t *pr = json_array(), *pn = json_array();
        for (size_t i = 0; i < d.n; i++)
            json_array_append_new(pr, json_string(d.msg[i]));
        for (size_t i = 0; i < set.n; i++)
            json_array_append_new(pn, json_string(set.v[i]->name));
        cli_print_json(json_pack("{s:b,s:s?,s:o,s:o,s:o}", "ok", d.n == 0, "config", c->cfg.file,
                                 "profiles", pn, "problems", pr, "sources", sources));
        sources = NULL;
        r = d.n ? EXIT_PROBLEMS : EXIT_OK;
        goto out;
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
out:
    json_decref(sources);
    diag_free(&d);
    profiles_free(&set);
    free(names);
    return r;
}
