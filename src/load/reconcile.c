/*
 * reconcile: the target against the ledger, per intake (see reconcile.h).
 *
 *   1. From the ledger: every intake of the profile that loaded (sealed
 *      since `since`), with what its load left (info.load: rows, key,
 *      key_digest) less what later loads superseded ("superseded" events:
 *      rows and their digest, or all of them for replace).  Intakes loaded
 *      before wharf kept digests are compared on rows alone.
 *   2. From the target, one grouped pass over the _wharf_intake index: the
 *      rows each intake id has now.
 *   3. Per expected intake: is its wharf_loads row there; do the counts
 *      agree; when they do and a digest is known, the key digest is
 *      recomputed in batches (target.h, tally).
 *   4. Ids in the table that the ledger does not know as loaded here.
 *
 * Memory: one entry per intake (ids and counts), never per row.
 */
#include "load/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/keydigest.h"
#include "load/target.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define TALLY_BATCH 50000

struct expect {
    char id[ID_LEN];
    char *file;
    char *key; /* NULL: no digest recorded */
    uint64_t rows;
    struct keydigest digest;
    bool seen; /* the table has rows with this id */
};

struct plan {
    struct ledger *l;
    const char *profile;
    struct expect *v;
    size_t n, cap;
    struct werr *e;
};

/* Takes the supersessions recorded on the intake out of what it expects. */
struct sup_sum {
    json_t *by; /* by intake -> detail (a re-run writes the same again: the last counts) */
};

static int sup_cb(void *ctx, int64_t time_ms, const char *kind, const char *detail)
{
    struct sup_sum *s = ctx;
    json_t *d;
    const char *by;
    (void)time_ms;
    if (strcmp(kind, "superseded") || !detail || !(d = json_loads(detail, 0, NULL)))
        return 0;
    by = json_string_value(json_object_get(d, "by"));
    if (by)
        json_object_set_new(s->by, by, d);
    else
        json_decref(d);
    return 0;
}

static int plan_cb(void *ctx, const struct intake *in)
{
    struct plan *pl = ctx;
    struct expect *x;
    json_t *load, *d;
    struct sup_sum sup = {0};
    const char *k;
    if (in->outcome != OUT_LOADED ||
        (in->state != ST_LOADED && in->state != ST_SEALED && in->state != ST_DONE))
        return 0;
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? pl->cap * 2 : 64;
        pl->v = xrealloc(pl->v, pl->cap * sizeof *pl->v);
    }
    x = &pl->v[pl->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", in->id);
    x->file = xstrdup(in->name ? in->name : "");
    load = in->info ? json_object_get(in->info, "load") : NULL;
    if (load && json_is_string(json_object_get(load, "key")) &&
        keydigest_parse(json_string_value(json_object_get(load, "key_digest")), &x->digest) == 0) {
        x->key = xstrdup(json_string_value(json_object_get(load, "key")));
        x->rows = (uint64_t)json_integer_value(json_object_get(load, "rows"));
    } else {
        x->rows = in->rows;
    }
    sup.by = json_object();
    if (ledger_events(pl->l, in->id, sup_cb, &sup, pl->e) < 0) {
        json_decref(sup.by);
        return -1;
    }
    json_object_foreach(sup.by, k, d)
    {
        struct keydigest sd = {0};
        uint64_t rows = (uint64_t)json_integer_value(json_object_get(d, "rows"));
        if (json_is_true(json_object_get(d, "all"))) {
            x->rows = 0;
            x->digest = (struct keydigest){0};
            break;
        }
        x->rows = rows > x->rows ? 0 : x->rows - rows;
        if (keydigest_parse(json_string_value(json_object_get(d, "digest")), &sd) == 0)
            keydigest_sub(&x->digest, &sd);
    }
    json_decref(sup.by);
    return 0;
}

static int cmp_expect(const void *a, const void *b)
{
    return strcmp(((const struct expect *)a)->id, ((const struct expect *)b)->id);
}

static void add_gap(struct recon_result *r, const char *intake, const char *file, const char *kind,
                    uint64_t expected, uint64_t found)
{
    struct recon_gap *g;
    r->gaps = xrealloc(r->gaps, (r->n_gaps + 1) * sizeof *r->gaps);
    g = &r->gaps[r->n_gaps++];
    snprintf(g->intake, sizeof g->intake, "%s", intake);
    g->file = xstrdup(file ? file : "");
    g->kind = kind;
    g->expected = expected;
    g->found = found;
}

struct scan {
    struct plan *pl;
    struct recon_result *r;
    struct ledger *l;
    const char *profile;
    uint64_t *counts; /* per plan entry */
};

static int count_cb(void *ctx, const char *id, uint64_t rows, struct werr *e)
{
    struct scan *s = ctx;
    struct expect key, *x;
    struct intake in = {0};
    int g;
    snprintf(key.id, sizeof key.id, "%s", id);
    x = s->pl->n && strlen(id) < ID_LEN
            ? bsearch(&key, s->pl->v, s->pl->n, sizeof *s->pl->v, cmp_expect)
            : NULL;
    if (x) {
        x->seen = true;
        s->counts[x - s->pl->v] = rows;
        return 0;
    }
    /* Not expected: loaded by another profile sharing the table, loaded
     * before --since, or never loaded here at all. */
    g = strlen(id) < ID_LEN ? ledger_get(s->l, id, &in, e) : 0;
    if (g < 0)
        return -1;
    bool known = g == 1 && !strcmp(in.id, id) && in.outcome == OUT_LOADED;
    intake_clear(&in);
    if (!known)
        add_gap(s->r, id, "", "unknown_intake", 0, rows);
    return 0;
}

static int load_plan(struct ledger *l, const struct profile *p, int64_t since_ms, struct plan *pl,
                     struct werr *e)
{
    struct intake_filter f = {.profile = p->name, .state = -1, .since_ms = since_ms};
    pl->l = l;
    pl->profile = p->name;
    pl->e = e;
    if (ledger_list(l, &f, plan_cb, pl, e) < 0)
        return -1;
    if (pl->n)
        qsort(pl->v, pl->n, sizeof *pl->v, cmp_expect);
    return 0;
}

static void plan_free(struct plan *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        free(pl->v[i].file);
        free(pl->v[i].key);
    }
    free(pl->v);
}

static void record(struct ledger *l, const struct recon_result *r, const char *error)
{
    json_t *j = recon_result_json(r);
    char *key = xasprintf("reconcile:%s", r->profile), *txt;
    struct werr e;
    if (error) {
        json_object_set_new(j, "ok", json_false());
        json_object_set_new(j, "error", json_string(error));
    }
    txt = json_dumps(j, JSON_COMPACT);
    if (ledger_kv_set(l, key, txt, &e) < 0)
        wlog(LOG_ERROR, r->profile, NULL, "reconcile", NULL, "recording the result: %s", e.msg);
    free(txt);
    free(key);
    json_decref(j);
}

int reconcile_profile(struct ledger *l, const struct wharf_config *cfg, const struct profile *p,
                      int64_t since_ms, struct recon_result *out, struct werr *e)
{
    struct plan pl = {0};
    struct target t = {0};
    struct scan sc = {0};
    bool opened = false;
    int r = -1, k;

    memset(out, 0, sizeof *out);
    out->profile = xstrdup(p->name);
    out->time_ms = now_ms();
    if (load_plan(l, p, since_ms, &pl, e) < 0)
        goto out;
    if (target_open_readonly(&t, cfg, p, e) < 0)
        goto out;
    opened = true;
    out->target = t.ops->describe(&t);
    sc = (struct scan){.pl = &pl, .r = out, .l = l, .profile = p->name};
    sc.counts = xcalloc(pl.n + 1, sizeof *sc.counts);
    k = t.ops->intakes(&t, count_cb, &sc, e);
    if (k < 0)
        goto out;
    out->intakes = pl.n;
    for (size_t i = 0; i < pl.n; i++) {
        struct expect *x = &pl.v[i];
        struct tally ty;
        if (k == 1) { /* no table */
            if (x->rows)
                add_gap(out, x->id, x->file, "table_missing", x->rows, 0);
            continue;
        }
        bool digest = x->key && sc.counts[i] == x->rows && x->rows;
        if (t.ops->tally(&t, x->id, digest ? x->key : NULL, TALLY_BATCH, &ty, e) < 0)
            goto out;
        out->rows += sc.counts[i];
        if (!ty.load_recorded)
            add_gap(out, x->id, x->file, "load_missing", x->rows, sc.counts[i]);
        else if (sc.counts[i] < x->rows)
            add_gap(out, x->id, x->file, "rows_missing", x->rows, sc.counts[i]);
        else if (sc.counts[i] > x->rows)
            add_gap(out, x->id, x->file, "rows_added", x->rows, sc.counts[i]);
        else if (digest && !keydigest_eq(&ty.digest, &x->digest))
            add_gap(out, x->id, x->file, "digest_differs", x->rows, ty.rows);
    }
    r = 0;
out:
    out->took_ms = now_ms() - out->time_ms;
    if (opened)
        target_close(&t);
    free(sc.counts);
    plan_free(&pl);
    record(l, out, r < 0 ? e->msg : NULL);
    return r;
}

void recon_result_free(struct recon_result *r)
{
    for (size_t i = 0; i < r->n_gaps; i++)
        free(r->gaps[i].file);
    free(r->gaps);
    free(r->profile);
    free(r->target);
    memset(r, 0, sizeof *r);
}

static const char *gap_words(const char *kind)
{
    if (!strcmp(kind, "table_missing"))
        return "the target table is missing";
    if (!strcmp(kind, "load_missing"))
        return "the target's wharf_loads has no row for it (restored from an older copy?)";
    if (!strcmp(kind, "rows_missing"))
        return "rows missing from the target";
    if (!strcmp(kind, "rows_added"))
        return "rows added to the target under its id";
    if (!strcmp(kind, "digest_differs"))
        return "the rows' keys differ from those loaded";
    if (!strcmp(kind, "unknown_intake"))
        return "rows under an intake id that loaded nothing here";
    return kind;
}

char *recon_gap_text(const struct recon_result *r, const struct recon_gap *g)
{
    char *file = esc_text(g->file); /* a partner's name, shown as one line */
    char *t = xasprintf("%s %s%s%s: %s: the ledger says %llu row%s, the target has %llu (see %s)",
                        r->profile, g->intake, *file ? " " : "", file, gap_words(g->kind),
                        (unsigned long long)g->expected, g->expected == 1 ? "" : "s",
                        (unsigned long long)g->found, RECONCILE_RUNBOOK);
    free(file);
    return t;
}

json_t *recon_result_json(const struct recon_result *r)
{
    json_t *gaps = json_array();
    for (size_t i = 0; i < r->n_gaps; i++) {
        const struct recon_gap *g = &r->gaps[i];
        json_array_append_new(gaps,
                              json_pack("{s:s,s:s,s:o,s:s,s:I,s:I,s:s}", "profile", r->profile,
                                        "intake", g->intake, "file", esc_json(g->file), "kind",
                                        g->kind, "expected", (json_int_t)g->expected, "found",
                                        (json_int_t)g->found, "runbook", RECONCILE_RUNBOOK));
    }
    return json_pack("{s:s,s:s?,s:b,s:I,s:I,s:I,s:I,s:o}", "profile", r->profile, "target",
                     r->target, "ok", r->n_gaps == 0, "intakes", (json_int_t)r->intakes, "rows",
                     (json_int_t)r->rows, "time_ms", (json_int_t)r->time_ms, "took_ms",
                     (json_int_t)r->took_ms, "gaps", gaps);
}

json_t *reconcile_last(struct ledger *l, const char *profile)
{
    char *key = xasprintf("reconcile:%s", profile), *v = NULL;
    struct werr e;
    json_t *j = NULL;
    if (ledger_kv_get(l, key, &v, &e) == 0 && v)
        j = json_loads(v, 0, NULL);
    free(v);
    free(key);
    return j;
}
