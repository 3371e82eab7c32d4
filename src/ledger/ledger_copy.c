/*
 * ledger_copy: a whole ledger copied into an empty one, for `wharf ledger
 * migrate` (SQLite to PostgreSQL when one machine is outgrown).  See
 * ledger.h for the contract.
 *
 * The tables are listed here once, with their columns, as every backend
 * has them (each backend's migrations make the same columns); a backend's
 * own bookkeeping (PostgreSQL's chain_head and the events id sequence) is
 * brought in line by its put_row at the end of each table.  Rows are
 * compared by count and by the sum of the SHA-256 of each row's values
 * (NULL and "" differ; the order rows come back in does not matter, so the
 * backends' collations need not agree).
 *
 * Owns nothing beyond the call; what can fail: either backend, and the
 * target holding rows (refused, not an error).
 */
#include "ledger/ledger.h"
#include "ledger/ledger_sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define T(name, ...)                                                                               \
    {name, (const char *const[]){__VA_ARGS__},                                                     \
     (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))}

/* In dependency order: intakes before what refers to them. */
static const struct ledger_table tables[] = {
    T("intakes", "id", "profile", "source", "path", "name", "size", "mtime_ns", "sha256", "state",
      "failed_from", "outcome", "attempts", "next_attempt_ms", "last_error", "created_ms",
      "updated_ms", "rows", "bag", "replay_of", "replayed_by", "info", "sealed_ms", "node",
      "lease_until_ms"),
    T("events", "id", "intake", "time_ms", "kind", "detail"),
    T("chain", "seq", "intake", "tagmanifest", "prev", "link", "time_ms"),
    T("sightings", "profile", "path", "size", "mtime_ns", "first_seen_ms", "last_seen_ms",
      "appeared_ms"),
    T("kv", "key", "value"),
    T("nodes", "name", "pid", "started_ms", "heartbeat_ms"),
    T("actions", "id", "time_ms", "actor", "action", "profile", "intake", "ok", "result"),
};
#define N_TABLES (sizeof tables / sizeof tables[0])

char *ledger_col_list(const struct ledger_table *t)
{
    char *out = xstrdup(""), *n;
    for (int i = 0; i < t->ncols; i++) {
        n = xasprintf("%s%s\"%s\"", out, i ? ", " : "", t->cols[i]);
        free(out);
        out = n;
    }
    return out;
}

/* An order-independent digest: four 64-bit lanes, each the sum of the
 * matching quarter of every row's SHA-256. */
struct digest {
    uint64_t lane[4];
    uint64_t rows;
};

static void digest_row(struct digest *d, int ncols, const char *const *vals)
{
    struct sha256 h;
    char hex[SHA256_HEX_LEN];
    sha256_init(&h);
    for (int i = 0; i < ncols; i++) {
        if (!vals[i]) {
            sha256_update(&h, "N", 1);
            continue;
        }
        uint64_t n = strlen(vals[i]);
        sha256_update(&h, "V", 1);
        sha256_update(&h, &n, sizeof n);
        sha256_update(&h, vals[i], n);
    }
    sha256_final(&h, hex);
    for (int k = 0; k < 4; k++) {
        char part[17];
        memcpy(part, hex + 16 * k, 16);
        part[16] = 0;
        d->lane[k] += strtoull(part, NULL, 16);
    }
    d->rows++;
}

static void digest_hex(const struct digest *d, char out[SHA256_HEX_LEN])
{
    snprintf(out, SHA256_HEX_LEN, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             d->lane[0], d->lane[1], d->lane[2], d->lane[3]);
}

struct pass {
    struct ledger *to; /* NULL: only digest */
    const struct ledger_table *t;
    struct digest d;
    struct werr *e;
    int failed;
};

static int copy_row(void *ctx, const char *const *vals)
{
    struct pass *p = ctx;
    digest_row(&p->d, p->t->ncols, vals);
    if (p->to && p->to->ops->put_row(p->to, p->t, vals, p->e) < 0) {
        p->failed = 1;
        return 1;
    }
    return 0;
}

static int any_row(void *ctx, const char *const *vals)
{
    (void)vals;
    *(int *)ctx = 1;
    return 1;
}

/* Which of the target's tables hold rows ("" when none). */
static int target_rows(struct ledger *to, char *why, size_t n, struct werr *e)
{
    why[0] = 0;
    for (size_t i = 0; i < N_TABLES; i++) {
        int has = 0;
        if (to->ops->rows(to, &tables[i], any_row, &has, e) < 0)
            return -1;
        if (has) {
            size_t len = strlen(why);
            snprintf(why + len, n - len, "%s%s", len ? ", " : "", tables[i].name);
        }
    }
    return 0;
}

int ledger_copy(struct ledger *from, struct ledger *to, struct ledger_copy *c, struct werr *e)
{
    memset(c, 0, sizeof *c);
    if (from->ops->bulk_begin(from, e) < 0)
        return -1;
    if (to->ops->bulk_begin(to, e) < 0) {
        from->ops->bulk_end(from, false, e);
        return -1;
    }
    if (target_rows(to, c->refused_why, sizeof c->refused_why, e) < 0)
        goto fail;
    if (c->refused_why[0]) {
        c->refused = true;
        return 0;
    }
    c->same = true;
    for (size_t i = 0; i < N_TABLES && i < LEDGER_COPY_MAX; i++) {
        struct pass in = {.to = to, .t = &tables[i], .e = e}, back = {.t = &tables[i], .e = e};
        if (from->ops->rows(from, &tables[i], copy_row, &in, e) < 0 || in.failed ||
            to->ops->put_row(to, &tables[i], NULL, e) < 0)
            goto fail;
        if (to->ops->rows(to, &tables[i], copy_row, &back, e) < 0)
            goto fail;
        c->t[i].table = tables[i].name;
        c->t[i].from = in.d.rows;
        c->t[i].to = back.d.rows;
        digest_hex(&in.d, c->t[i].from_digest);
        digest_hex(&back.d, c->t[i].to_digest);
        c->t[i].same = in.d.rows == back.d.rows && !memcmp(&in.d, &back.d, sizeof in.d);
        if (!c->t[i].same)
            c->same = false;
        c->n++;
    }
    return 0;
fail : {
    struct werr ignore;
    ledger_copy_end(from, to, false, &ignore);
    return -1;
}
}

/* Commits (or rolls back) the target first: the source's transaction only
 * kept writers out while the copy ran. */
int ledger_copy_end(struct ledger *from, struct ledger *to, bool commit, struct werr *e)
{
    struct werr ignore;
    int r = to->ops->bulk_end(to, commit, e);
    from->ops->bulk_end(from, false, r < 0 ? &ignore : e);
    return r;
}
