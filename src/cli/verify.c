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
#include "seal/bag.h"
#include "util/xmalloc.h"

struct vctx {
    struct cli *c;
    char **only;
    size_t n_only;
    char prev[SHA256_HEX_LEN];
    uint64_t links, bags, problems;
    char *first;
    json_t *out;
    char **chained; /* intake ids in the chain, sorted after the walk */
    size_t n_chained;
};

static void problem(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct vctx *v, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->problems++;
    if (!v->first)
        v->first = xstrdup(msg);
    if (v->out)
        json_array_append_new(json_object_get(v->out, "problems"), json_string(msg));
    else
        printf("TAMPER  %s\n", msg);
}

static bool wanted(struct vctx *v, const char *id)
{
    if (!v->n_only)
        return true;
    for (size_t i = 0; i < v->n_only; i++)
        if (!strncmp(id, v->only[i], strlen(v->only[i])))
            return true;
    return false;
}

/*
 * The payload against what the ledger recorded when the file was taken:
 * a payload edited with manifest-sha256.txt rewritten to match passes the
 * bag's own manifests, never this.  Names the file that changed.
 */
static void original_check(struct vctx *v, const struct intake *in)
{
    char *path = xasprintf("%s/data/%s", in->bag, in->name), got[SHA256_HEX_LEN],
         info[SHA256_HEX_LEN * 2];
    struct werr e;
    uint64_t size = 0;
    if (!in->sha256[0])
        goto out;
    if (sha256_file(path, got, &size, &e) < 0)
        problem(v, "bag %s (intake %s): the original data/%s cannot be read: %s", in->bag, in->id,
                in->name, e.msg);
    else if (strcmp(got, in->sha256))
        problem(v,
                "bag %s (intake %s): data/%s was changed: it hashes to %s, the ledger recorded "
                "%s when the file was taken (%llu bytes then, %llu now)",
                in->bag, in->id, in->name, got, in->sha256, (unsigned long long)in->size,
                (unsigned long long)size);
    if (bag_info_get(in->bag, "Wharf-Original-SHA256", info, sizeof info) == 0 &&
        strcmp(info, in->sha256))
        problem(v,
                "bag %s (intake %s): bag-info.txt Wharf-Original-SHA256 %s is not the sha256 the "
                "ledger recorded (%s)",
                in->bag, in->id, info, in->sha256);
out:
    free(path);
}

static int link_cb(void *ctx, const struct chain_link *cl)
{
    struct vctx *v = ctx;
    struct intake in = {0};
    struct werr e;
    char expect[SHA256_HEX_LEN], tm[SHA256_HEX_LEN], bprev[SHA256_HEX_LEN];
    struct report rep;

    v->links++;
    v->chained = xrealloc(v->chained, (v->n_chained + 1) * sizeof *v->chained);
    v->chained[v->n_chained++] = xstrdup(cl->intake);
    if (strcmp(cl->prev, v->prev))
        problem(v,
                "chain link %lld (intake %s): previous link %s does not match the link before "
                "it %s",
                (long long)cl->seq, cl->intake, cl->prev, v->prev);
    chain_link_compute(cl->prev, cl->tagmanifest, expect);
    if (strcmp(expect, cl->link))
        problem(v, "chain link %lld (intake %s): link %s is not sha256(prev || tagmanifest) = %s",
                (long long)cl->seq, cl->intake, cl->link, expect);
    memcpy(v->prev, cl->link, SHA256_HEX_LEN);
    if (!wanted(v, cl->intake))
        return 0;
    if (ledger_get(v->c->ledger, cl->intake, &in, &e) <= 0 || !in.bag) {
        problem(v, "chain link %lld names intake %s, which the ledger does not know as sealed",
                (long long)cl->seq, cl->intake);
        intake_clear(&in);
        return 0;
    }
    v->bags++;
    report_init(&rep, 50);
    int r = bag_verify(in.bag, tm, &rep, &e);
    if (r < 0)
        problem(v, "bag %s (intake %s): cannot be checked: %s", in.bag, in.id, e.msg);
    else {
        for (size_t i = 0; i < rep.n; i++)
            problem(v, "bag %s (intake %s): %s%s%s", in.bag, in.id,
                    rep.v[i].part ? rep.v[i].part : "", rep.v[i].part ? ": " : "",
                    rep.v[i].message);
        if (strcmp(tm, cl->tagmanifest))
            problem(v,
                    "bag %s (intake %s): tagmanifest-sha256.txt hashes to %s, the chain "
                    "recorded %s",
                    in.bag, in.id, tm, cl->tagmanifest);
        original_check(v, &in);
        if (bag_info_get(in.bag, "Wharf-Previous-Link", bprev, sizeof bprev) < 0 ||
            strcmp(bprev, cl->prev))
            problem(v,
                    "bag %s (intake %s): bag-info.txt Wharf-Previous-Link does not match the "
                    "chain (%s)",
                    in.bag, in.id, cl->prev);
    }
    report_free(&rep);
    intake_clear(&in);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sealed_cb(void *ctx, const struct intake *in)
{
    struct vctx *v = ctx;
    const char *id = in->id;
    if (!in->bag || !wanted(v, in->id))
        return 0;
    if (!v->n_chained || !bsearch(&id, v->chained, v->n_chained, sizeof *v->chained, cmp_str))
        problem(v, "intake %s is sealed in %s but missing from the chain", in->id, in->bag);
    return 0;
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
    struct vctx v = {.c = c};
    struct werr e;
    bool json = false;
    int r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-') {
            cli_usage_error("verify", "unknown option %s", argv[i]);
            return EXIT_USAGE;
        } else {
            v.only = xrealloc(v.only, (v.n_only + 1) * sizeof *v.only);
            v.only[v.n_only++] = argv[i];
        }
    }
    if ((r = cli_ledger(c)))
        return r;
    if (json) {
        v.out = json_object();
        json_object_set_new(v.out, "problems", json_array());
    }
    memset(v.prev, '0', 64);
    v.prev[64] = 0;
    if (ledger_chain_walk(c->ledger, link_cb, &v, &e) < 0) {
        fprintf(stderr, "wharf verify: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    struct intake_filter f = {.state = -1};
    if (v.n_chained)
        qsort(v.chained, v.n_chained, sizeof *v.chained, cmp_str);
    if (ledger_list(c->ledger, &f, sealed_cb, &v, &e) < 0) {
        fprintf(stderr, "wharf verify: %s\n", e.msg);
        r = EXIT_FAILURE_OP;
        goto out;
    }
    if (json) {
        json_object_set_new(v.out, "links", json_integer((json_int_t)v.links));
        json_object_set_new(v.out, "bags", json_integer((json_int_t)v.bags));
        json_object_set_new(v.out, "head", json_string(v.prev));
        json_object_set_new(v.out, "ok", json_boolean(v.problems == 0));
        if (v.first)
            json_object_set_new(v.out, "first_problem", json_string(v.first));
        cli_print_json(v.out);
    } else if (v.problems) {
        printf("verify: %llu problem%s in %llu bags and %llu chain links; first: %s\n"
               "see runbooks/verify-tamper.md\n",
               (unsigned long long)v.problems, v.problems == 1 ? "" : "s",
               (unsigned long long)v.bags, (unsigned long long)v.links, v.first);
    } else {
        printf("verify: ok, %llu bags re-hashed, %llu chain links checked, head %s\n",
               (unsigned long long)v.bags, (unsigned long long)v.links, v.prev);
    }
    r = v.problems ? EXIT_PROBLEMS : EXIT_OK;
out:
    for (size_t i = 0; i < v.n_chained; i++)
        free(v.chained[i]);
    free(v.chained);
    free(v.only);
    free(v.first);
    return r;
}
