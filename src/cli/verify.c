/*
 * verify: the auditor's check, trusting nothing but the bytes on disk.
 *
 *  1. every sealed intake's bag is re-hashed against both of its manifests
 *     (bag_verify), and its tag-manifest hash must equal the one the chain
 *     recorded; its original (data/NAME) must still hash to the sha256 the
 *     ledger recorded when the file was taken, whatever the manifests say;
 *  2. the chain is walked from the start: each link must equal
 *     sha256(previous link || tag-manifest hash), each bag's
 *     Wharf-Previous-Link must name the link before it, and every sealed
 *     intake must be in the chain.
 *
 * Prints every problem and, last, the first broken bag or link; exits 1 on
 * any problem.  Auditors can redo step 2 by hand:
 *   printf %s%s PREV TAGMANIFEST_SHA | sha256sum
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "seal/verify.h"
#include "util/escape.h"
#include "util/xmalloc.h"

static void print_problem(void *ctx, const char *intake, const char *msg)
{
    json_t *out = ctx;
    (void)intake;
    if (out)
        json_array_append_new(json_object_get(out, "problems"), esc_json(msg));
    else { /* bag paths and member names in it: util/escape.h */
        char *m = esc_text(msg);
        printf("TAMPER  %s\n", m);
        free(m);
    }
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
    struct verify_opts o = {0};
    struct verify_result v;
    struct werr e;
    json_t *out = NULL;
    bool json = false;
    int r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-') {
            cli_usage_error("verify", "unknown option %s", argv[i]);
            free(o.only);
            return EXIT_USAGE;
        } else {
            o.only = xrealloc(o.only, (o.n_only + 1) * sizeof *o.only);
            o.only[o.n_only++] = argv[i];
        }
    }
    if ((r = cli_ledger(c)))
        goto out;
    if (json) {
        out = json_object();
        json_object_set_new(out, "problems", json_array());
    }
    if (verify_run(c->ledger, &o, print_problem, out, &v, &e) < 0) {
        fprintf(stderr, "wharf verify: %s\n", e.msg);
        json_decref(out);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    if (json) {
        json_object_set_new(out, "links", json_integer((json_int_t)v.links));
        json_object_set_new(out, "bags", json_integer((json_int_t)v.bags));
        json_object_set_new(out, "head", json_string(v.head));
        json_object_set_new(out, "ok", json_boolean(v.problems == 0));
        if (v.first[0])
            json_object_set_new(out, "first_problem", esc_json(v.first));
        cli_print_json(out);
    } else if (v.problems) {
        char *first = esc_text(v.first);
        printf("verify: %llu problem%s in %llu bags and %llu chain links; first: %s\n"
               "see runbooks/verify-tamper.md\n",
               (unsigned long long)v.problems, v.problems == 1 ? "" : "s",
               (unsigned long long)v.bags, (unsigned long long)v.links, first);
        free(first);
    } else {
        printf("verify: ok, %llu bags re-hashed, %llu chain links checked, head %s\n",
               (unsigned long long)v.bags, (unsigned long long)v.links, v.head);
    }
    r = v.problems ? EXIT_PROBLEMS : EXIT_OK;
out:
    free(o.only);
    return r;
}
