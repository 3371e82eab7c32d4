/*
 * verify: the archive re-hashed and the chain walked (see verify.h).
 *
 * Reads the ledger and the bags, writes nothing.  Bags are re-hashed one
 * at a time; with opts.bytes_per_s the walk sleeps between bags so that it
 * never reads faster (the server's scheduled run must not compete with
 * loads for the disk).
 */
#include "seal/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "seal/bag.h"
#include "util/parse.h"
#include "util/xmalloc.h"

struct vctx {
    struct ledger *l;
    const struct verify_opts *o;
    verify_problem_fn fn;
    void *ctx;
    struct verify_result *res;
    char prev[SHA256_HEX_LEN];
    char **chained; /* intake ids in the chain, sorted after the walk */
    size_t n_chained;
    int64_t start_ms;
};

static void problem(struct vctx *v, const char *intake, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct vctx *v, const char *intake, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->res->problems++;
    if (!v->res->first[0])
        snprintf(v->res->first, sizeof v->res->first, "%s", msg);
    if (v->fn)
        v->fn(v->ctx, intake ? intake : "", msg);
}

/* Sleep as long as it takes to stay at or under bytes_per_s. */
static void pace(struct vctx *v, uint64_t bytes)
{
    v->res->bytes += bytes;
    if (!v->o->bytes_per_s)
        return;
    int64_t due = v->start_ms + (int64_t)(v->res->bytes * 1000 / v->o->bytes_per_s);
    int64_t wait = due - now_ms();
    while (wait > 0 && !(v->o->stop && *v->o->stop)) {
        int64_t step = wait > 200 ? 200 : wait;
        struct timespec ts = {step / 1000, (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait = due - now_ms();
    }
}

static bool wanted(struct vctx *v, const char *id)
{
    if (!v->o->n_only)
        return true;
    for (size_t i = 0; i < v->o->n_only; i++)
        if (!strncmp(id, v->o->only[i], strlen(v->o->only[i])))
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
        problem(v, in->id, "bag %s (intake %s): the original data/%s cannot be read: %s", in->bag,
                in->id, in->name, e.msg);
    else if (strcmp(got, in->sha256))
        problem(v, in->id,
                "bag %s (intake %s): data/%s was changed: it hashes to %s, the ledger recorded "
                "%s when the file was taken (%llu bytes then, %llu now)",
                in->bag, in->id, in->name, got, in->sha256, (unsigned long long)in->size,
                (unsigned long long)size);
    if (bag_info_get(in->bag, "Wharf-Original-SHA256", info, sizeof info) == 0 &&
        strcmp(info, in->sha256))
        problem(v, in->id,
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

    v->res->links++;
    if (v->o->stop && *v->o->stop) {
        v->res->stopped = true;
        return 1;
    }
    v->chained = xrealloc(v->chained, (v->n_chained + 1) * sizeof *v->chained);
    v->chained[v->n_chained++] = xstrdup(cl->intake);
    if (strcmp(cl->prev, v->prev))
        problem(v, cl->intake,
                "chain link %lld (intake %s): previous link %s does not match the link before "
                "it %s",
                (long long)cl->seq, cl->intake, cl->prev, v->prev);
    chain_link_compute(cl->prev, cl->tagmanifest, expect);
    if (strcmp(expect, cl->link))
        problem(v, cl->intake,
                "chain link %lld (intake %s): link %s is not sha256(prev || tagmanifest) = %s",
                (long long)cl->seq, cl->intake, cl->link, expect);
    memcpy(v->prev, cl->link, SHA256_HEX_LEN);
    if (!wanted(v, cl->intake))
        return 0;
    if (ledger_get(v->l, cl->intake, &in, &e) <= 0 || !in.bag) {
        problem(v, cl->intake,
                "chain link %lld names intake %s, which the ledger does not know as sealed",
                (long long)cl->seq, cl->intake);
        intake_clear(&in);
        return 0;
    }
    if (v->o->chain_only) {
        intake_clear(&in);
        return 0;
    }
    v->res->bags++;
    pace(v, in.size);
    /* the original against the ledger first: the plainest finding */
    original_check(v, &in);
    report_init(&rep, 50);
    int r = bag_verify(in.bag, tm, &rep, &e);
    if (r < 0)
        problem(v, in.id, "bag %s (intake %s): cannot be checked: %s", in.bag, in.id, e.msg);
    else {
        for (size_t i = 0; i < rep.n; i++)
            problem(v, in.id, "bag %s (intake %s): %s%s%s", in.bag, in.id,
                    rep.v[i].part ? rep.v[i].part : "", rep.v[i].part ? ": " : "",
                    rep.v[i].message);
        if (strcmp(tm, cl->tagmanifest))
            problem(v, in.id,
                    "bag %s (intake %s): tagmanifest-sha256.txt hashes to %s, the chain "
                    "recorded %s",
                    in.bag, in.id, tm, cl->tagmanifest);
        if (bag_info_get(in.bag, "Wharf-Previous-Link", bprev, sizeof bprev) < 0 ||
            strcmp(bprev, cl->prev))
            problem(v, in.id,
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
        problem(v, in->id, "intake %s is sealed in %s but missing from the chain", in->id, in->bag);
    return 0;
}

int verify_run(struct ledger *l, const struct verify_opts *o, verify_problem_fn fn, void *ctx,
               struct verify_result *res, struct werr *e)
{
    struct vctx v = {.l = l, .o = o, .fn = fn, .ctx = ctx, .res = res, .start_ms = now_ms()};
    struct intake_filter f = {.state = -1};
    int r = -1;

    memset(res, 0, sizeof *res);
    memset(v.prev, '0', 64);
    v.prev[64] = 0;
    if (ledger_chain_walk(l, link_cb, &v, e) < 0)
        goto out;
    if (!res->stopped) {
        if (v.n_chained)
            qsort(v.chained, v.n_chained, sizeof *v.chained, cmp_str);
        if (ledger_list(l, &f, sealed_cb, &v, e) < 0)
            goto out;
    }
    memcpy(res->head, v.prev, SHA256_HEX_LEN);
    r = 0;
out:
    for (size_t i = 0; i < v.n_chained; i++)
        free(v.chained[i]);
    free(v.chained);
    return r;
}
