/*
 * health: a profile's state, reason and runbook (see health.h for the
 * states and their order).
 *
 * Reads, never writes: the intakes of the profile (one pass, oldest first),
 * the source's poll record (ledger_source_health), the sightings no intake
 * claimed (ledger_unclaimed) and the `expect:` windows (sla_eval).  Owns the
 * file lists in struct health (health_clear frees them).
 */
#include "daemon/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/audit.h"
#include "load/reconcile.h"
#include "source/source.h"
#include "util/escape.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define RB_LATE     "runbooks/expected-file-missing.md"
#define RB_FLOOD    "runbooks/duplicates-flood.md"
#define RB_STUCK    "runbooks/partial-upload.md"
#define RB_REPLAY   "runbooks/replay.md"
#define RING_MAX    1000 /* health.rejecting_after's upper bound */
#define REASON_FILE 80   /* a file name in a reason is cut here */

static const char *const state_names[HEALTH__COUNT] = {
    [HEALTH_OK] = "ok",
    [HEALTH_WAITING] = "waiting",
    [HEALTH_LATE] = "late",
    [HEALTH_MISSING] = "missing",
    [HEALTH_FLOODING] = "flooding",
    [HEALTH_REJECTING] = "rejecting",
    [HEALTH_RETRYING] = "retrying",
    [HEALTH_STUCK] = "stuck",
    [HEALTH_FAILING] = "failing",
    [HEALTH_GAP] = "gap",
    [HEALTH_TAMPERED] = "tampered",
    [HEALTH_DOWN] = "down",
    [HEALTH_DISABLED] = "disabled",
    [HEALTH_PAUSED] = "paused",
};

const char *health_state_name(enum health_state s)
{
    if ((int)s < 0 || s >= HEALTH__COUNT || !state_names[s])
        return "?";
    return state_names[s];
}

void health_age(int64_t ms, char *buf, size_t n)
{
    int64_t s = ms < 0 ? 0 : ms / 1000;
    if (s < 120)
        snprintf(buf, n, "%lld s", (long long)s);
    else if (s < 3600)
        snprintf(buf, n, "%lld min", (long long)(s / 60));
    else if (s < 86400)
        snprintf(buf, n, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(buf, n, "%lld d %lld h", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

static void size_label(uint64_t b, char *buf, size_t n)
{
    if (b < 10 * 1024)
        snprintf(buf, n, "%llu bytes", (unsigned long long)b);
    else if (b < 10 * 1024 * 1024)
        snprintf(buf, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, n, "%.1f MiB", (double)b / (1024 * 1024));
}

/* One intake remembered for a reason: copies, since the callback's strings
 * live only for the call. */
struct seen {
    char id[ID_LEN];
    char name[REASON_FILE + 1];
    char error[512];
    char runbook[96];
    char kind[32];  /* werr_kind_name of the failure, "" when unknown */
    char extra[64]; /* duplicate_of */
    int attempts;
    int64_t next_ms;
};

static void remember(struct seen *s, const struct intake *in)
{
    const char *err = NULL, *rb = NULL, *dup = NULL, *kind = NULL;
    if (in->info) {
        err = json_string_value(json_object_get(in->info, "error"));
        kind = json_string_value(json_object_get(in->info, "error_kind"));
        rb = json_string_value(json_object_get(in->info, "runbook"));
        dup = json_string_value(json_object_get(in->info, "duplicate_of"));
    }
    if (!err || in->outcome == OUT_REJECTED)
        err = in->last_error;
    memcpy(s->id, in->id, ID_LEN);
    snprintf(s->name, sizeof s->name, "%s", in->name ? in->name : "");
    snprintf(s->error, sizeof s->error, "%s", err ? err : "");
    snprintf(s->runbook, sizeof s->runbook, "%s", rb ? rb : "");
    snprintf(s->extra, sizeof s->extra, "%s", dup ? dup : "");
    snprintf(s->kind, sizeof s->kind, "%s", kind && in->outcome != OUT_REJECTED ? kind : "");
    s->attempts = in->attempts;
    s->next_ms = in->next_attempt_ms;
}

struct scan {
    const struct profile *p;
    struct health *h;
    int64_t flood_since;
    uint64_t in_progress;
    /* the newest rejecting_after finished intakes: rejected or not */
    bool ring[RING_MAX];
    size_t ring_n, ring_cap;
    bool got_loaded;
    struct seen retry, reject, failed, dup;
    bool have_retry, have_reject, have_failed, have_dup;
};

/* Intakes not finished yet (oldest first: the newest is remembered). */
static int unfinished_cb(void *c, const struct intake *in)
{
    struct scan *x = c;
    x->h->backlog++;
    if (in->attempts > 0 && in->last_error) {
        x->h->retrying++;
        remember(&x->retry, in);
        x->have_retry = true;
    } else {
        x->in_progress++;
        if (in->info && json_object_get(in->info, "held_behind"))
            x->h->held++;
    }
    return 0;
}

static int failed_cb(void *c, const struct intake *in)
{
    struct scan *x = c;
    x->h->failed++;
    remember(&x->failed, in);
    x->have_failed = true;
    return 0;
}

static int reject_cb(void *c, const struct intake *in)
{
    struct scan *x = c;
    x->h->rejects++;
    remember(&x->reject, in);
    x->have_reject = true;
    return 0;
}

/*
 * Newest first, stopping once it knows enough: the last file loaded, the
 * newest rejecting_after finished intakes and the duplicates within the
 * flood window.  A ledger with years of intakes is not read whole.
 */
static int recent_cb(void *c, const struct intake *in)
{
    struct scan *x = c;
    struct health *h = x->h;
    int64_t settled = sla_settled_ms(x->p, in);
    if (!x->got_loaded && settled) {
        h->last_loaded_ms = settled;
        x->got_loaded = true;
    }
    if (in->outcome == OUT_DUPLICATE && in->created_ms >= x->flood_since) {
        h->duplicates++;
        if (!x->have_dup)
            remember(&x->dup, in);
        x->have_dup = true;
    }
    if ((in->outcome == OUT_LOADED || in->outcome == OUT_REJECTED) && in->state != ST_FAILED &&
        x->ring_n < x->ring_cap)
        x->ring[x->ring_n++] = in->outcome == OUT_REJECTED && !in->replayed_by;
    return x->got_loaded && x->ring_n >= x->ring_cap && in->created_ms < x->flood_since;
}

static struct health_issue *add(struct health *h, enum health_state st, const char *runbook,
                                const char *intake)
{
    struct health_issue *is = &h->issue[h->n_issues++];
    memset(is, 0, sizeof *is);
    is->state = st;
    snprintf(is->runbook, sizeof is->runbook, "%s", runbook ? runbook : "");
    snprintf(is->intake, sizeof is->intake, "%s", intake ? intake : "");
    return is;
}

/* "target locked (var/w.db: database is locked)": the error's kind in
 * words, then the error; the error alone when its kind is not known. */
static void describe(const char *kind, const char *error, char *buf, size_t n)
{
    char words[32];
    size_t i;
    if (!kind || !*kind || !strcmp(kind, "error")) {
        snprintf(buf, n, "%s", error);
        return;
    }
    for (i = 0; kind[i] && i < sizeof words - 1; i++)
        words[i] = kind[i] == '_' ? ' ' : kind[i];
    words[i] = 0;
    snprintf(buf, n, "%s (%s)", words, error);
}

/* What a file that never became complete still waits for. */
static void why_waiting(const struct profile *p, const struct sighting *sg, bool temp, int64_t now,
                        char *buf, size_t n)
{
    char age[32];
    if (temp) {
        snprintf(buf, n, "a temporary upload name, ignored until the partner renames it");
        return;
    }
    if (p->source.stable_for_ms && now - sg->first_seen_ms < p->source.stable_for_ms) {
        char want[32];
        health_age(now - sg->first_seen_ms, age, sizeof age);
        health_age(p->source.stable_for_ms, want, sizeof want);
        snprintf(buf, n, "unchanged for %s, complete once unchanged for %s (stable_for)", age,
                 want);
        return;
    }
    if (p->source.done_file) {
        const char *base = strrchr(sg->path, '/');
        char *dn = done_name(p->source.done_file, base ? base + 1 : sg->path);
        snprintf(buf, n, "no done file %.*s yet", REASON_FILE, dn);
        free(dn);
        return;
    }
    if (p->source.min_age_ms) {
        snprintf(buf, n, "younger than min_age");
        return;
    }
    snprintf(buf, n, "not taken yet");
}

struct files_ctx {
    const struct profile *p;
    struct health *h;
    int64_t stuck_after;
};

static int files_cb(void *c, const struct sighting *sg)
{
    struct files_ctx *x = c;
    struct health *h = x->h;
    const char *base = strrchr(sg->path, '/');
    bool temp = name_ignored(x->p, base ? base + 1 : sg->path);
    bool stuck = h->now_ms - sg->appeared_ms >= x->stuck_after;
    struct health_file **v = stuck ? &h->stuck : &h->waiting;
    size_t *n = stuck ? &h->n_stuck : &h->n_waiting;
    struct health_file *f;

    if (*n >= 100)
        return 0; /* enough to say what is wrong */
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    f = &(*v)[(*n)++];
    memset(f, 0, sizeof *f);
    f->path = xstrdup(sg->path);
    f->size = sg->size;
    f->appeared_ms = sg->appeared_ms;
    f->temp = temp;
    why_waiting(x->p, sg, temp, h->now_ms, f->why, sizeof f->why);
    return 0;
}

static int64_t stuck_after(const struct profile *p)
{
    int64_t v = p->health.stuck_after_ms;
    if (v <= 0) {
        v = 10 * p->source.stable_for_ms;
        if (v < 15 * 60 * 1000)
            v = 15 * 60 * 1000;
    }
    return v;
}

/* The problems found, most severe first (the order of enum health_state). */
/* The last scheduled verify's problems with this profile's bags (or with
 * the chain, which is everyone's): the first one, and how many. */
static size_t tampered(struct ledger *l, const struct profile *p, const json_t *rec,
                       const char **first, const char **intake)
{
    size_t n = 0, i;
    json_t *t;
    *first = *intake = NULL;
    if (!rec || json_is_true(json_object_get(rec, "ok")))
        return 0;
    json_array_foreach(json_object_get(rec, "tampered"), i, t)
    {
        const char *id = json_string_value(json_object_get(t, "intake"));
        struct intake in = {0};
        struct werr e;
        bool ours = !id || !*id;
        if (!ours && ledger_get(l, id, &in, &e) > 0)
            ours = in.profile && !strcmp(in.profile, p->name);
        intake_clear(&in);
        if (!ours)
            continue;
        if (!n++) {
            *first = json_string_value(json_object_get(t, "problem"));
            *intake = id;
        }
    }
    return n;
}

static void issues(struct ledger *l, const struct profile *p, struct health *h, struct scan *x,
                   bool paused)
{
    char a[64], b[96], ts[32];
    struct health_issue *is;
    const char *tfirst, *tintake;
    char what[600];
    size_t nt;

    if (paused)
        snprintf(add(h, HEALTH_PAUSED, NULL, NULL)->reason, sizeof is->reason,
                 "paused by an operator; `wharf resume %s` polls it again", p->name);
    if (!p->enabled)
        snprintf(add(h, HEALTH_DISABLED, NULL, NULL)->reason, sizeof is->reason,
                 "enabled: false in %s", p->file ? p->file : "its profile");
    if (h->polled && !h->source.ok) {
        is = add(h, HEALTH_DOWN, h->source.runbook, NULL);
        format_time_ms(h->source.since_ms, ts);
        describe(h->source.kind, h->source.error, what, sizeof what);
        snprintf(is->reason, sizeof is->reason,
                 "cannot list the source: %s; since %s, %d failed poll%s", what, ts,
                 h->source.fails, h->source.fails == 1 ? "" : "s");
    }
    for (size_t i = 0, down = 0; i < h->n_dest; i++) {
        const struct destination_health *dh = &h->dest[i].h;
        if (dh->ok || dh->fails < DESTINATION_CIRCUIT_AFTER || down++)
            continue;
        is = add(h, HEALTH_DOWN, dh->runbook, NULL);
        format_time_ms(dh->since_ms, ts);
        describe(dh->kind, dh->error, what, sizeof what);
        if (dh->next_probe_ms > h->now_ms) {
            health_age(dh->next_probe_ms - h->now_ms, a, sizeof a);
            snprintf(b, sizeof b, "next try in %s", a);
        } else {
            snprintf(b, sizeof b, "next try due now");
        }
        snprintf(is->reason, sizeof is->reason,
                 "cannot deliver to %s: %s; since %s, %d failed deliveries, %s", h->dest[i].to,
                 what, ts, dh->fails, b);
    }
    if ((nt = tampered(l, p, h->verify, &tfirst, &tintake))) {
        is = add(h, HEALTH_TAMPERED, "runbooks/verify-tamper.md", tintake);
        format_time_ms((int64_t)json_integer_value(json_object_get(h->verify, "time")), ts);
        snprintf(is->reason, sizeof is->reason, "the archive check of %s found %zu problem%s: %s",
                 ts, nt, nt == 1 ? "" : "s", tfirst ? tfirst : "?");
        snprintf(what, sizeof what, "%zu\n%s", nt, tfirst ? tfirst : "?");
        sha256_hex(what, strlen(what), is->finding);
    }
    if (h->reconcile && !json_is_true(json_object_get(h->reconcile, "ok"))) {
        json_t *gaps = json_object_get(h->reconcile, "gaps"), *g = json_array_get(gaps, 0);
        const char *err = json_string_value(json_object_get(h->reconcile, "error"));
        size_t n = json_array_size(gaps);
        format_time_ms(json_integer_value(json_object_get(h->reconcile, "time_ms")), ts);
        is = add(h, HEALTH_GAP, RECONCILE_RUNBOOK,
                 g ? json_string_value(json_object_get(g, "intake")) : NULL);
        if (err)
            snprintf(is->reason, sizeof is->reason, "reconcile could not read the target at %s: %s",
                     ts, err);
        else
            snprintf(is->reason, sizeof is->reason,
                     "reconcile found %zu gap%s at %s; first: %s %.*s: %s, the ledger says %lld, "
                     "the target has %lld",
                     n, n == 1 ? "" : "s", ts, json_string_value(json_object_get(g, "intake")),
                     REASON_FILE, json_string_value(json_object_get(g, "file")),
                     json_string_value(json_object_get(g, "kind")),
                     json_integer_value(json_object_get(g, "expected")),
                     json_integer_value(json_object_get(g, "found")));
    }
    if (h->failed) {
        describe(x->failed.kind, x->failed.error, what, sizeof what);
        is = add(h, HEALTH_FAILING, x->failed.runbook[0] ? x->failed.runbook : RB_REPLAY,
                 x->failed.id);
        snprintf(is->reason, sizeof is->reason,
                 "%llu intake%s failed and wait%s for an operator; newest %s (%s): %s",
                 (unsigned long long)h->failed, h->failed == 1 ? "" : "s",
                 h->failed == 1 ? "s" : "", x->failed.name, x->failed.id, what);
    }
    if (h->polled && h->source.ok && h->source.unreadable) {
        /* files the listing cannot even see: stuck, and said first */
        is = add(h, HEALTH_STUCK, "runbooks/source-unreachable.md", NULL);
        snprintf(is->reason, sizeof is->reason,
                 "the last listing passed over %d unreadable director%s, the rest was taken; "
                 "%.*s%s",
                 h->source.unreadable, h->source.unreadable == 1 ? "y" : "ies", 300,
                 h->source.unreadable_first,
                 h->n_stuck ? "; and files wait to complete (status --json lists them)" : "");
    } else if (h->n_stuck) {
        const struct health_file *f = &h->stuck[0];
        size_label(f->size, a, sizeof a);
        health_age(h->now_ms - f->appeared_ms, b, sizeof b);
        is = add(h, HEALTH_STUCK, RB_STUCK, NULL);
        snprintf(is->reason, sizeof is->reason, "%.*s (%s) in the source for %s: %s%s", REASON_FILE,
                 f->path, a, b, f->why,
                 h->n_stuck > 1 ? "; and more (status --json lists them)" : "");
    } else if (h->polled && h->source.ok && h->source.refused > 0) {
        /* names the listing refused: never taken, left in the source */
        is = add(h, HEALTH_STUCK, RB_STUCK, NULL);
        snprintf(is->reason, sizeof is->reason, "%d name%s refused at the last listing: %.*s: %s",
                 h->source.refused, h->source.refused == 1 ? "" : "s", REASON_FILE,
                 h->source.refused_path, h->source.refused_why);
    }
    if (h->retrying) {
        const struct seen *r = &x->retry;
        is = add(h, HEALTH_RETRYING, r->runbook[0] ? r->runbook : NULL, r->id);
        if (r->next_ms > h->now_ms) {
            health_age(r->next_ms - h->now_ms, a, sizeof a);
            snprintf(b, sizeof b, "next in %s", a);
        } else {
            snprintf(b, sizeof b, "next attempt due now");
        }
        describe(r->kind, r->error, what, sizeof what);
        char held[96] = "";
        if (h->held)
            snprintf(held, sizeof held, "; %llu later file%s held behind it (order:)",
                     (unsigned long long)h->held, h->held == 1 ? "" : "s");
        snprintf(is->reason, sizeof is->reason, "%s, %d of %d attempts, %s (%s%s)%s", what,
                 r->attempts, p->retry.max_attempts, b, r->name,
                 h->retrying > 1 ? " and others" : "", held);
    }
    if (x->ring_n && x->ring_n >= (size_t)p->health.rejecting_after) {
        bool all = true;
        for (size_t i = 0; i < x->ring_n; i++)
            all &= x->ring[i];
        if (all && x->have_reject) {
            const struct seen *r = &x->reject;
            is = add(h, HEALTH_REJECTING, r->runbook[0] ? r->runbook : RB_REPLAY, r->id);
            char lead[64];
            if (p->health.rejecting_after == 1)
                snprintf(lead, sizeof lead, "the last file was rejected");
            else
                snprintf(lead, sizeof lead, "the last %d files were rejected",
                         p->health.rejecting_after);
            snprintf(is->reason, sizeof is->reason, "%s; newest %s (%s)%s%s", lead, r->name, r->id,
                     r->error[0] ? ": " : "", r->error);
        }
    }
    if (h->duplicates >= (uint64_t)p->health.flood_duplicates && x->have_dup) {
        format_duration(p->health.flood_within_ms, a, sizeof a);
        is = add(h, HEALTH_FLOODING, RB_FLOOD, x->dup.id);
        snprintf(is->reason, sizeof is->reason,
                 "%llu duplicates within %s (flood threshold %d); newest %s: same content as %s",
                 (unsigned long long)h->duplicates, a, p->health.flood_duplicates, x->dup.name,
                 x->dup.extra);
    }
    if (h->sla.state == SLA_MISSING || h->sla.state == SLA_LATE) {
        is = add(h, h->sla.state == SLA_MISSING ? HEALTH_MISSING : HEALTH_LATE, RB_LATE, NULL);
        if (h->last_loaded_ms)
            format_time_ms(h->last_loaded_ms, ts);
        snprintf(is->reason, sizeof is->reason, "expected %s by %s (%s): %s; last file %s %s",
                 h->sla.day, h->sla.by, h->sla.timezone, h->sla.freshness,
                 p->outbound ? "delivered" : "loaded", h->last_loaded_ms ? ts : "never");
    }
    if (h->n_waiting || x->in_progress) {
        is = add(h, HEALTH_WAITING, NULL, NULL);
        if (h->n_waiting) {
            health_age(h->now_ms - h->waiting[0].appeared_ms, a, sizeof a);
            snprintf(is->reason, sizeof is->reason, "%zu file%s not complete yet: %.*s for %s, %s",
                     h->n_waiting, h->n_waiting == 1 ? "" : "s", REASON_FILE, h->waiting[0].path, a,
                     h->waiting[0].why);
        } else {
            snprintf(is->reason, sizeof is->reason, "%llu intake%s in progress",
                     (unsigned long long)x->in_progress, x->in_progress == 1 ? "" : "s");
        }
    }
}

int health_eval(struct ledger *l, const struct profile *p, int64_t now, struct health *h,
                struct werr *e)
{
    struct scan *x = xcalloc(1, sizeof *x);
    struct intake_filter unfinished = {.profile = p->name, .state = -1, .unfinished = true};
    struct intake_filter failed = {.profile = p->name, .state = ST_FAILED};
    struct intake_filter rejects = {.profile = p->name, .state = -1, .rejects = true};
    struct intake_filter recent = {.profile = p->name, .state = -1, .newest_first = true};
    struct files_ctx fc = {p, h, stuck_after(p)};
    bool paused;
    int r = -1;

    memset(h, 0, sizeof *h);
    h->profile = p->name;
    h->now_ms = now;
    x->p = p;
    x->h = h;
    x->flood_since = now - p->health.flood_within_ms;
    x->ring_cap =
        (size_t)p->health.rejecting_after < RING_MAX ? (size_t)p->health.rejecting_after : RING_MAX;
    if (ledger_list(l, &unfinished, unfinished_cb, x, e) < 0 ||
        ledger_list(l, &failed, failed_cb, x, e) < 0 ||
        ledger_list(l, &rejects, reject_cb, x, e) < 0 ||
        ledger_list(l, &recent, recent_cb, x, e) < 0)
        goto out;
    h->polled = ledger_source_health(l, p->name, &h->source) == 1;
    if (p->outbound) {
        h->dest = xcalloc(p->n_deliver + 1, sizeof *h->dest);
        for (size_t i = 0; i < p->n_deliver; i++, h->n_dest++) {
            h->dest[i].to = deliver_url(&p->deliver[i]);
            ledger_destination_health(l, p->name, h->dest[i].to, &h->dest[i].h);
        }
    }
    /* Files still in the source at its last listing that no intake took. */
    if (h->polled && h->source.last_ok_ms &&
        ledger_unclaimed(l, p->name, h->source.last_ok_ms, files_cb, &fc, e) < 0)
        goto out;
    sla_eval(p, now, h->last_loaded_ms, &h->sla);
    paused = ledger_paused(l, p->name);
    audit_last(l, &h->verify);
    h->reconcile = reconcile_last(l, p->name);
    issues(l, p, h, x, paused);
    h->state = h->n_issues ? h->issue[0].state : HEALTH_OK;
    if (!h->n_issues) {
        char ts[32];
        struct health_issue *is = add(h, HEALTH_OK, NULL, NULL);
        h->n_issues = 0; /* ok is not an issue; issue[0] holds its reason */
        if (h->last_loaded_ms)
            format_time_ms(h->last_loaded_ms, ts);
        if (h->sla.state == SLA_OK)
            snprintf(is->reason, sizeof is->reason, "%s (%s)", h->sla.freshness, h->sla.timezone);
        else if (!h->polled && !h->last_loaded_ms)
            snprintf(is->reason, sizeof is->reason, "not polled yet");
        else
            snprintf(is->reason, sizeof is->reason, "last file %s %s",
                     p->outbound ? "delivered" : "loaded", h->last_loaded_ms ? ts : "never");
    }
    r = 0;
out:
    free(x);
    return r;
}

static void files_free(struct health_file *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

void health_clear(struct health *h)
{
    for (size_t i = 0; i < h->n_dest; i++)
        free(h->dest[i].to);
    free(h->dest);
    files_free(h->stuck, h->n_stuck);
    files_free(h->waiting, h->n_waiting);
    json_decref(h->verify);
    json_decref(h->reconcile);
    memset(h, 0, sizeof *h);
}

static json_t *time_json(int64_t ms)
{
    char ts[32];
    if (ms <= 0)
        return json_null();
    format_time_ms(ms, ts);
    return json_string(ts);
}

static json_t *files_json(const struct health *h, const struct health_file *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:o,s:I,s:o,s:I,s:b,s:s}", "path", esc_json(v[i].path),
                                           "size", (json_int_t)v[i].size, "appeared",
                                           time_json(v[i].appeared_ms), "age_s",
                                           (json_int_t)((h->now_ms - v[i].appeared_ms) / 1000),
                                           "temporary", v[i].temp, "waiting_for", v[i].why));
    return a;
}

static json_t *issue_json(const struct health_issue *is)
{
    return json_pack("{s:s,s:o,s:s?,s:s?}", "state", health_state_name(is->state), "reason",
                     esc_json(is->reason), "runbook", is->runbook[0] ? is->runbook : NULL, "intake",
                     is->intake[0] ? is->intake : NULL);
}

json_t *health_json(const struct health *h)
{
    json_t *o = json_object(), *also = json_array(), *src;
    const struct health_issue *top = &h->issue[0];

    json_object_set_new(o, "profile", json_string(h->profile));
    json_object_set_new(o, "state", json_string(health_state_name(h->state)));
    json_object_set_new(o, "reason", esc_json(top->reason)); /* quotes partner names */
    json_object_set_new(o, "runbook", top->runbook[0] ? json_string(top->runbook) : json_null());
    json_object_set_new(o, "intake", top->intake[0] ? json_string(top->intake) : json_null());
    for (size_t i = 1; i < h->n_issues; i++)
        json_array_append_new(also, issue_json(&h->issue[i]));
    json_object_set_new(o, "also", also);
    json_object_set_new(o, "time", time_json(h->now_ms));
    json_object_set_new(o, "last_loaded", time_json(h->last_loaded_ms));
    json_object_set_new(o, "backlog", json_integer((json_int_t)h->backlog));
    json_object_set_new(o, "rejects", json_integer((json_int_t)h->rejects));
    json_object_set_new(o, "failed", json_integer((json_int_t)h->failed));
    json_object_set_new(o, "retrying", json_integer((json_int_t)h->retrying));
    json_object_set_new(o, "held", json_integer((json_int_t)h->held));
    json_object_set_new(o, "duplicates_recent", json_integer((json_int_t)h->duplicates));
    json_object_set_new(o, "sla",
                        h->sla.state == SLA_NONE ? json_null()
                                                 : json_string(sla_state_name(h->sla.state)));
    json_object_set_new(o, "freshness",
                        h->sla.state == SLA_NONE ? json_null() : json_string(h->sla.freshness));
    json_object_set_new(o, "timezone",
                        h->sla.state == SLA_NONE ? json_null() : json_string(h->sla.timezone));
    if (!h->polled)
        src = json_null();
    else if (h->source.ok)
        src =
            json_pack("{s:b,s:o,s:o,s:i,s:s?,s:i,s:o,s:s?}", "ok", 1, "last_poll",
                      time_json(h->source.last_poll_ms), "last_ok", time_json(h->source.last_ok_ms),
                      "unreadable", h->source.unreadable, "unreadable_first",
                      h->source.unreadable ? h->source.unreadable_first : NULL, "refused_names",
                      h->source.refused, "refused_first",
                      esc_json(h->source.refused ? h->source.refused_path : NULL), "refused_why",
                      h->source.refused ? h->source.refused_why : NULL);
    else
        src =
            json_pack("{s:b,s:o,s:o,s:o,s:i,s:o,s:s}", "ok", 0, "last_poll",
                      time_json(h->source.last_poll_ms), "last_ok", time_json(h->source.last_ok_ms),
                      "down_since", time_json(h->source.since_ms), "failed_polls", h->source.fails,
                      "error", esc_json(h->source.error), "runbook", h->source.runbook);
    if (h->polled && h->source.conn_want > 0)
        json_object_set_new(
            o, "connections",
            json_pack("{s:i,s:i,s:o,s:o}", "wanted", h->source.conn_want, "got", h->source.conn_got,
                      "at", time_json(h->source.conn_ms), "refused",
                      h->source.conn_why[0] ? esc_json(h->source.conn_why) : json_null()));
    json_object_set_new(o, "source_health", src);
    if (h->dest) {
        json_t *dl = json_array();
        for (size_t i = 0; i < h->n_dest; i++) {
            const struct destination_health *dh = &h->dest[i].h;
            json_array_append_new(
                dl, json_pack(
                        "{s:s,s:b,s:b,s:o,s:o,s:i,s:o,s:o,s:s?,s:o,s:s?}", "to", h->dest[i].to,
                        "ok", dh->ok, "circuit_open", destination_circuit_open(dh, h->now_ms),
                        "last_try", time_json(dh->last_try_ms), "last_ok",
                        time_json(dh->last_ok_ms), "failed_deliveries", dh->ok ? 0 : dh->fails,
                        "down_since", time_json(dh->ok ? 0 : dh->since_ms), "next_try",
                        time_json(dh->ok ? 0 : dh->next_probe_ms), "kind", dh->ok ? NULL : dh->kind,
                        "error", dh->ok ? json_null() : esc_json(dh->error), "runbook",
                        dh->ok ? NULL : dh->runbook));
        }
        json_object_set_new(o, "destinations", dl);
    }
    if (h->verify)
        json_object_set_new(
            o, "verify",
            json_pack("{s:o,s:O,s:O,s:O}", "time",
                      time_json((int64_t)json_integer_value(json_object_get(h->verify, "time"))),
                      "ok", json_object_get(h->verify, "ok"), "bags",
                      json_object_get(h->verify, "bags"), "problems",
                      json_object_get(h->verify, "problems")));
    else
        json_object_set_new(o, "verify", json_null());
    if (h->reconcile) {
        json_t *r = h->reconcile;
        json_object_set_new(o, "reconcile",
                            json_pack("{s:o,s:O,s:I,s:O?,s:O,s:O}", "time",
                                      time_json(json_integer_value(json_object_get(r, "time_ms"))),
                                      "ok", json_object_get(r, "ok"), "gaps",
                                      (json_int_t)json_array_size(json_object_get(r, "gaps")),
                                      "error", json_object_get(r, "error"), "intakes",
                                      json_object_get(r, "intakes"), "rows",
                                      json_object_get(r, "rows")));
    } else {
        json_object_set_new(o, "reconcile", json_null());
    }
    json_object_set_new(o, "stuck", files_json(h, h->stuck, h->n_stuck));
    json_object_set_new(o, "waiting", files_json(h, h->waiting, h->n_waiting));
    return o;
}
