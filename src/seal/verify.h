/*
 * verify: the auditor's check of the archive, trusting nothing but the
 * bytes on disk and the ledger (`wharf verify`, and the server's scheduled
 * re-verification, `verify.every`).
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
 * Every problem goes to the caller's callback (intake "" when it is the
 * chain's, not one bag's).  Auditors can redo step 2 by hand:
 *   printf %s%s PREV TAGMANIFEST_SHA | sha256sum
 */
#ifndef WHARF_VERIFY_H
#define WHARF_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/ledger.h"

typedef void (*verify_problem_fn)(void *ctx, const char *intake, const char *msg);

struct verify_opts {
    char **only; /* intake ids (or prefixes) to re-hash; the chain is always walked */
    size_t n_only;
    uint64_t bytes_per_s;     /* re-hash at most this fast (0: no limit) */
    volatile const int *stop; /* non-zero: stop between bags (the run is incomplete) */
    bool chain_only;          /* step 2 alone (and each link's intake sealed): no bag read */
};

struct verify_result {
    uint64_t links, bags, bytes, problems;
    char head[SHA256_HEX_LEN];
    char first[2048]; /* the first problem, "" when none */
    bool stopped;     /* cut short by opts.stop */
};

/* 0 with *res filled (problems or not), -1 when the ledger failed (e). */
int verify_run(struct ledger *l, const struct verify_opts *o, verify_problem_fn fn, void *ctx,
               struct verify_result *res, struct werr *e);

#endif
