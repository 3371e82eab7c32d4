/*
 * pipeline: one intake's journey, top to bottom, readable as the picture in
 * DESIGN.md:
 *
 *  source --> take --> inspect --> validate+load --> seal --> finish source
 *                         \             \
 *                          +-------------+--> reject --> seal --> finish
 *
 * Every arrow is a ledger transition (compare-and-set, fsynced) committed
 * before the next step acts on the outside world, and every step is
 * idempotent, so after a crash pipeline_advance simply re-runs the step the
 * intake was in:
 *
 *  found      take: copy the drop into work/<id>/original, a file of our
 *             own, hashing it (never the partner's inode, which it may still
 *             hold open); every later step reads only that copy.  A crash
 *             before `taken` simply copies again.
 *  taken      duplicates: content already loaded for the profile is
 *             skipped (done, outcome duplicate) or rejected, per profile.
 *             inspect: unpack, detect encoding and format (parts/ is
 *             rebuilt from scratch each time).
 *  inspected  validate+load in ONE pass: rows stream from the validator into
 *             an open target transaction.  If the file turns out invalid
 *             (on_invalid: reject, or split beyond max_invalid) the target
 *             transaction is rolled back and the intake goes to rejected.
 *             Otherwise the ledger records validated, then the target
 *             commits rows + its wharf_loads row together.
 *  validated  load: if the target's wharf_loads has the intake, the commit
 *             happened (crash after it): go on; else redo the pass.
 *  loaded /   seal: under the chain lock, build the BagIt bag (idempotent),
 *  rejected   append its tag-manifest hash to the chain.
 *  sealed     finish: apply `after:` to the source file, remove work/<id>.
 *
 * Outbound profiles (direction: outbound) take the same path with delivery
 * in place of inspect/validate/load: taken -> [validated: the same
 * inspection and validation, when the profile has csv:/xml:, or rejected]
 * -> loaded (delivered to every partner, step_deliver) -> sealed -> done.
 *
 * Durability: the claim, the sealed transition (after which the source file
 * may be deleted) and failed are committed with fsync (synchronous=FULL).
 * The transitions in between only record the progress of idempotent steps;
 * they are committed atomically without their own fsync and reach the disk
 * with the next full commit.  A power cut that loses them re-runs a step
 * whose effect is already in place: the fetch finds the file taken, the load
 * finds its row in the target's wharf_loads, the seal finds its bag.  This
 * is what keeps small files cheap (benchmark B4).
 *
 * Failures: transient ones (locked target, disk full, network) are retried
 * with exponential backoff and jitter; after retry.max_attempts, or on a
 * permanent failure, the intake is parked in `failed` with its reason and
 * the runbook to read.  Nothing is ever dropped.
 */
#include "pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/defaults.h"
#include "inspect/inspect.h"
#include "load/keydigest.h"
#include "load/sftp_push.h"
#include "load/target.h"
#include "reply/receipt.h"
#include "report.h"
#include "seal/bag.h"
#include "source/source.h"
#include "util/escape.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/obs.h"
#include "util/parse.h"
#include "util/xmalloc.h"
#include "validate/control.h"
#include "validate/validate.h"

#define SOURCE_INGEST "ingest"
#define SOURCE_REPLAY "replay"
/* Claims per ledger transaction: one durable commit for this many drops of
 * a listing (issue 19, B4), while a listing of 100,000 names does not hold
 * the ledger's write lock for all of them at once. */
#define CLAIM_BATCH 256

struct compiled {
    const struct profile *profile;
    struct validator *v;
};

/* One open source per profile, reused by the poll's listing and by every
 * fetch and finish that follows (one SFTP connection per source per poll). */
struct open_source {
    const struct profile *profile;
    struct source src;
    int64_t used_ms;
};

/* One open target per profile, reused across intakes (opening and closing
 * a SQLite database per file costs a checkpoint each time). */
struct open_target {
    const struct profile *profile;
    struct target *t;
    int64_t used_ms;
};

struct pipeline {
    struct open_source *sources;
    size_t n_sources;
    struct open_target *targets;
    size_t n_targets;
    const struct wharf_config *cfg;
    const struct profile_set *profiles;
    struct ledger *ledger;
    struct compiled *cache;
    size_t n_cache;
    progress_fn progress;
    void *progress_ctx;
};

/* The in-memory state of one intake while it is being advanced. */
struct job {
    struct pipeline *pl;
    const struct profile *p;
    struct intake in;
    char *workdir, *original, *partsdir;
    struct inspection insp;
    bool have_insp;
    bool took; /* this job took the original (in.sha256 hashed from its bytes just now) */
    struct report rep;
    /* load pass: the profile's cached target (pipeline owns it) */
    struct target *tg;
    uint64_t bytes_read, bytes_total; /* progress of the load pass */
    uint64_t bytes_before, *part_read;
    uint64_t rows;
    uint32_t part_no; /* the part being loaded, 1-based when there are several (lineage) */
    /* take: when the source cannot be opened, fill no_source and record
     * nothing (pipeline_advance_to's soft_connect) */
    bool soft_connect;
    struct werr *no_source;
};

static volatile sig_atomic_t stop_requested;

void pipeline_request_stop(void)
{
    stop_requested = 1;
}

bool pipeline_stopping(void)
{
    return stop_requested != 0;
}

struct pipeline *pipeline_new(const struct wharf_config *cfg, const struct profile_set *profiles,
                              struct ledger *ledger)
{
    struct pipeline *pl = xcalloc(1, sizeof *pl);
    pl->cfg = cfg;
    pl->profiles = profiles;
    pl->ledger = ledger;
    return pl;
}

/* The profile's open source, opening it when needed. */
static struct source *source_get(struct pipeline *pl, const struct profile *p, struct werr *e)
{
    for (size_t i = 0; i < pl->n_sources; i++)
        if (pl->sources[i].profile == p) {
            pl->sources[i].used_ms = now_ms();
            return &pl->sources[i].src;
        }
    pl->sources = xrealloc(pl->sources, (pl->n_sources + 1) * sizeof *pl->sources);
    struct open_source *os = &pl->sources[pl->n_sources];
    if (source_open(&os->src, pl->cfg, p, e) < 0)
        return NULL;
    os->profile = p;
    os->used_ms = now_ms();
    pl->n_sources++;
    return &os->src;
}

/* After a failure the connection may be dead: drop it, the next use reconnects. */
static void source_drop(struct pipeline *pl, const struct profile *p)
{
    for (size_t i = 0; i < pl->n_sources; i++)
        if (pl->sources[i].profile == p) {
            source_close(&pl->sources[i].src);
            pl->sources[i] = pl->sources[--pl->n_sources];
            return;
        }
}

static struct target *target_get(struct pipeline *pl, const struct profile *p, struct werr *e)
{
    for (size_t i = 0; i < pl->n_targets; i++)
        if (pl->targets[i].profile == p) {
            pl->targets[i].used_ms = now_ms();
            return pl->targets[i].t;
        }
    struct target *t = xcalloc(1, sizeof *t);
    if (target_open(t, pl->cfg, p, e) < 0) {
        free(t);
        return NULL;
    }
    pl->targets = xrealloc(pl->targets, (pl->n_targets + 1) * sizeof *pl->targets);
    pl->targets[pl->n_targets++] = (struct open_target){p, t, now_ms()};
    return t;
}

/* After a failure: close it; the next intake reopens. */
static void target_drop(struct pipeline *pl, const struct profile *p)
{
    for (size_t i = 0; i < pl->n_targets; i++)
        if (pl->targets[i].profile == p) {
            target_close(pl->targets[i].t);
            free(pl->targets[i].t);
            pl->targets[i] = pl->targets[--pl->n_targets];
            return;
        }
}

void pipeline_release_sources(struct pipeline *pl, int64_t idle_ms)
{
    int64_t now = now_ms();
    for (size_t i = 0; i < pl->n_targets;) {
        if (now - pl->targets[i].used_ms >= idle_ms) {
            target_close(pl->targets[i].t);
            free(pl->targets[i].t);
            pl->targets[i] = pl->targets[--pl->n_targets];
        } else
            i++;
    }
    for (size_t i = 0; i < pl->n_sources;) {
        if (now - pl->sources[i].used_ms >= idle_ms) {
            source_close(&pl->sources[i].src);
            pl->sources[i] = pl->sources[--pl->n_sources];
        } else
            i++;
    }
}

void pipeline_free(struct pipeline *pl)
{
    if (!pl)
        return;
    pipeline_release_sources(pl, 0);
    free(pl->sources);
    free(pl->targets);
    for (size_t i = 0; i < pl->n_cache; i++)
        validator_free(pl->cache[i].v);
    free(pl->cache);
    free(pl);
}

void pipeline_set_progress(struct pipeline *pl, progress_fn fn, void *ctx)
{
    pl->progress = fn;
    pl->progress_ctx = ctx;
}

static struct validator *validator_for(struct pipeline *pl, const struct profile *p, struct werr *e)
{
    struct diags d = {0};
    struct validator *v;
    for (size_t i = 0; i < pl->n_cache; i++)
        if (pl->cache[i].profile == p)
            return pl->cache[i].v;
    v = validator_compile(pl->cfg, p, &d);
    if (!v) {
        werr_setk(e, WERR_CONFIG, "profile %s: schema does not compile: %s", p->name,
                  d.n ? d.msg[0] : "unknown error");
        diag_free(&d);
        return NULL;
    }
    diag_free(&d);
    pl->cache = xrealloc(pl->cache, (pl->n_cache + 1) * sizeof *pl->cache);
    pl->cache[pl->n_cache].profile = p;
    pl->cache[pl->n_cache].v = v;
    pl->n_cache++;
    return v;
}

static char *source_desc(const struct profile *p)
{
    if (p->source.type == SOURCE_SFTP)
        return xasprintf("sftp://%s@%s:%d%s%s", p->source.user, p->source.host, p->source.port,
                         p->source.path[0] == '/' ? "" : "/", p->source.path);
    return xasprintf("spool:%s", p->source.path);
}

static void crash_point(const char *point);
static void crash_inside_claims(size_t i);
static int step_receipt(struct job *j);

/* ---- polling and claiming ------------------------------------------- */

static void push_id(char ***ids, size_t *n, const char *id)
{
    *ids = xrealloc(*ids, (*n + 1) * sizeof **ids);
    (*ids)[(*n)++] = xstrdup(id);
}

static int cmp_drop_name(const void *a, const void *b)
{
    return strcmp(((const struct drop *)a)->path, ((const struct drop *)b)->path);
}

static int cmp_drop_mtime(const void *a, const void *b)
{
    const struct drop *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

int pipeline_poll(struct pipeline *pl, const struct profile *p, char ***ids, size_t *n,
                  struct pipeline_stats *st, struct werr *e)
{
    struct source *src;
    struct drop_list list = {0}, skipped = {0};
    char *desc = source_desc(p);
    size_t ready, i;
    int64_t now;
    int r = -1, lr, *claimed = NULL;
    struct intake *batch = NULL;

    if (!(src = source_get(pl, p, e))) {
        ledger_source_failed(pl->ledger, p->name, werr_kind_name(e->kind), e->msg, werr_runbook(e),
                             now_ms());
        free(desc);
        return -1;
    }
    src->skipped = &skipped;
    lr = src->ops->list(src, &list, e);
    src->skipped = NULL;
    if (lr < 0) {
        ledger_source_failed(pl->ledger, p->name, werr_kind_name(e->kind), e->msg, werr_runbook(e),
                             now_ms());
        source_drop(pl, p);
        goto out;
    }
    st->listed += (unsigned)list.n;
    /* Unsafe entries are moved aside with their reason, never opened. */
    for (i = 0; i < list.n; i++) {
        struct drop *d = &list.v[i];
        struct werr qe;
        char *qdir;
        if (!d->unsafe || !src->ops->quarantine)
            continue;
        qdir = xasprintf("%s/%s", pl->cfg->quarantine_dir, p->name);
        if (src->ops->quarantine(src, d, qdir, &qe) < 0)
            wlog(LOG_ERROR, p->name, NULL, "quarantine_failed", NULL,
                 "%s is %s and could not be quarantined: %s", d->path, d->unsafe, qe.msg);
        else {
            wlog(LOG_WARN, p->name, NULL, "quarantined", NULL,
                 "%s is %s: moved to %s, not read (see %s)", d->path, d->unsafe, qdir,
                 werr_kind_runbook(WERR_HOSTILE));
            st->quarantined++;
        }
        free(qdir);
    }
    /* Sightings are only hints (losing one delays a take by one interval):
     * no fsync each.  The claims below are durable again. */
    ledger_set_durable(pl->ledger, false, e);
    now = now_ms();
    ready = source_ready(pl->ledger, p, &list, now);
    /* Partial uploads under a temporary name are watched too: one that
     * never completes is `stuck` in `wharf status`. */
    for (i = ready; i < list.n; i++)
        if (!list.v[i].unsafe)
            wlog(LOG_DEBUG, p->name, NULL, "not_complete", NULL,
                 "%s (%llu bytes): not complete yet", list.v[i].path,
                 (unsigned long long)list.v[i].size);
    int unreadable = 0;
    char *first_unreadable = NULL;
    for (i = 0; i < skipped.n; i++) {
        int64_t first;
        struct werr se;
        if (skipped.v[i].unreadable) {
            /* one unreadable directory does not stop the feed: the rest
             * is taken, and status says what was passed over */
            if (!unreadable++)
                first_unreadable = xasprintf("%s: %s", skipped.v[i].path, skipped.v[i].skipped);
            wlog(LOG_WARN, p->name, NULL, "unreadable", NULL, "%s: %s", skipped.v[i].path,
                 skipped.v[i].skipped);
            continue;
        }
        wlog(LOG_DEBUG, p->name, NULL, "skipped", NULL, "%s (%llu bytes): %s", skipped.v[i].path,
             (unsigned long long)skipped.v[i].size, skipped.v[i].skipped);
        if (skipped.v[i].temp)
            ledger_sighting(pl->ledger, p->name, skipped.v[i].path, skipped.v[i].size,
                            skipped.v[i].mtime_ns, now, &first, &se);
    }
    ledger_source_listed(pl->ledger, p->name, unreadable, first_unreadable, now);
    free(first_unreadable);
    /* Names the listing refused stay in the source, reported on its
     * health (and in the log) at every poll until someone removes them. */
    const struct drop *first_refused = NULL;
    int refused = 0;
    for (i = 0; i < skipped.n; i++) {
        if (!skipped.v[i].refused)
            continue;
        if (!refused++)
            first_refused = &skipped.v[i];
        wlog(LOG_WARN, p->name, NULL, "name_refused",
             json_pack("{s:o}", "path", esc_json(skipped.v[i].path)), "%s: %s (see %s)",
             skipped.v[i].path, skipped.v[i].skipped, werr_kind_runbook(WERR_HOSTILE));
    }
    st->refused += (unsigned)refused;
    ledger_source_refused(pl->ledger, p->name, refused, first_refused ? first_refused->path : NULL,
                          first_refused ? first_refused->skipped : NULL);
    if (ledger_set_durable(pl->ledger, true, e) < 0)
        goto out;
    if (ready && p->order == ORDER_NAME)
        qsort(list.v, ready, sizeof *list.v, cmp_drop_name);
    else if (ready && p->order == ORDER_MTIME)
        qsort(list.v, ready, sizeof *list.v, cmp_drop_mtime);
    /* The claims of a listing go in batches, each one transaction with one
     * durable commit (ledger_claim_batch): nothing is handed out before
     * its batch is durable, and a crash inside one leaves none of it. */
    for (i = 0; i < ready; i += CLAIM_BATCH) {
        size_t k, m = ready - i < CLAIM_BATCH ? ready - i : CLAIM_BATCH;
        if (!batch) {
            batch = xcalloc(CLAIM_BATCH, sizeof *batch);
            claimed = xcalloc(CLAIM_BATCH, sizeof *claimed);
        }
        memset(batch, 0, m * sizeof *batch);
        for (k = 0; k < m; k++) {
            const struct drop *d = &list.v[i + k];
            batch[k].profile = p->name;
            batch[k].source = desc;
            batch[k].path = d->path;
            batch[k].name = d->name;
            batch[k].size = d->size;
            batch[k].mtime_ns = d->mtime_ns;
        }
        int cr = ledger_claim_batch(pl->ledger, batch, m, claimed, crash_inside_claims, e);
        /* on failure a backend without a batch may have claimed the first
         * ones for good: they are handed out like the others */
        for (k = 0; k < m; k++) {
            if (!claimed[k])
                continue; /* already ours from an earlier poll */
            st->claimed++;
            wlog(LOG_INFO, p->name, batch[k].id, "claimed", NULL, "%s (%llu bytes)", batch[k].path,
                 (unsigned long long)batch[k].size);
            crash_point("claimed");
            push_id(ids, n, batch[k].id);
        }
        if (cr < 0)
            goto out;
    }
    r = 0;
out:
    free(batch);
    free(claimed);
    drop_list_free(&list);
    drop_list_free(&skipped);
    free(desc);
    return r;
}

struct find_ctx {
    const char *source, *path;
    uint64_t size;
    int64_t mtime;
    char *id;
};

static int find_cb(void *c, const struct intake *in)
{
    struct find_ctx *f = c;
    if (!strcmp(in->source, f->source) && !strcmp(in->path, f->path) && in->size == f->size &&
        in->mtime_ns == f->mtime) {
        memcpy(f->id, in->id, ID_LEN);
        return 1;
    }
    return 0;
}

int pipeline_claim_file(struct pipeline *pl, const struct profile *p, const char *file,
                        char id[ID_LEN], struct werr *e)
{
    struct stat st;
    struct intake in = {0};
    char *abs = realpath(file, NULL), *copy = NULL;
    int c = -1;

    if (!abs || lstat(abs, &st) < 0) {
        werr_sys(e, "%s", file);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        werr_set(e, "%s: not a regular file", file);
        goto out;
    }
    copy = xstrdup(abs);
    in.profile = p->name;
    in.source = SOURCE_INGEST;
    in.path = abs;
    in.name = basename(copy);
    in.size = (uint64_t)st.st_size;
    in.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    c = ledger_claim(pl->ledger, &in, e);
    if (c == 1) {
        memcpy(id, in.id, ID_LEN);
        wlog(LOG_INFO, p->name, id, "claimed", NULL, "%s (%llu bytes, ingest)", abs,
             (unsigned long long)in.size);
    } else if (c == 0) {
        struct intake_filter f = {.profile = p->name, .state = -1};
        struct find_ctx fc = {SOURCE_INGEST, abs, in.size, in.mtime_ns, id};
        id[0] = 0;
        if (ledger_list(pl->ledger, &f, find_cb, &fc, e) < 0)
            c = -1;
    }
out:
    free(abs);
    free(copy);
    return c;
}

struct due_ctx {
    char ***ids;
    size_t *n;
    int64_t now;
};

static int due_cb(void *c, const struct intake *in)
{
    struct due_ctx *d = c;
    if (in->next_attempt_ms <= d->now)
        push_id(d->ids, d->n, in->id);
    return 0;
}

int pipeline_due(struct pipeline *pl, const char *profile, char ***ids, size_t *n, struct werr *e)
{
    struct due_ctx ctx = {ids, n, now_ms()};
    struct intake_filter f = {.profile = profile, .state = -1, .unfinished = true};
    return ledger_list(pl->ledger, &f, due_cb, &ctx, e);
}

/* ---- the steps ------------------------------------------------------- */

static json_t *jstr(const char *k, const char *v)
{
    return json_pack("{s:o}", k, esc_json(v ? v : ""));
}

/*
 * Fault injection for the crash tests (tests/integration/crash.sh): when
 * WHARF_TEST_CRASH names a point ("taken", "loaded", "target_committed",
 * "bag_sealed", ...), the process SIGKILLs itself right there, exactly as a
 * power cut would.  Unset in production; it only ever ends the process.
 */
static void crash_point(const char *point)
{
    static const char *want;
    static bool read;
    if (!read) {
        want = getenv("WHARF_TEST_CRASH");
        read = true;
    }
    if (want && !strcmp(want, point))
        raise(SIGKILL);
}

/* Inside a batch of claims, after its second claim: "claiming" kills the
 * process there, before the batch commits. */
static void crash_inside_claims(size_t i)
{
    if (i == 1)
        crash_point("claiming");
}

/* Make a transition; 0 when done, -1 when the ledger failed or someone else
 * moved the intake (both end this advance).  With saving, j->in's fields
 * are written with it, in the same transaction (save, then move, in one
 * commit). */
static int move_as(struct job *j, bool saving, enum intake_state to, const char *kind,
                   json_t *detail)
{
    struct werr e;
    int r = saving
                ? ledger_transition_update(j->pl->ledger, &j->in, j->in.state, to, kind, detail, &e)
                : ledger_transition(j->pl->ledger, j->in.id, j->in.state, to, kind, detail, &e);
    if (r < 0) {
        wlog(LOG_ERROR, j->p->name, j->in.id, "ledger", NULL, "%s", e.msg);
        return -1;
    }
    if (r == 0) {
        wlog(LOG_WARN, j->p->name, j->in.id, "lost_race", NULL,
             "intake is no longer %s; another worker has it", state_name(j->in.state));
        return -1;
    }
    j->in.state = to;
    crash_point(kind);
    return 0;
}

static int move(struct job *j, enum intake_state to, const char *kind, json_t *detail)
{
    return move_as(j, false, to, kind, detail);
}

static int save_move(struct job *j, enum intake_state to, const char *kind, json_t *detail)
{
    return move_as(j, true, to, kind, detail);
}

static int save(struct job *j)
{
    struct werr e;
    if (ledger_update(j->pl->ledger, &j->in, &e) < 0) {
        wlog(LOG_ERROR, j->p->name, j->in.id, "ledger", NULL, "%s", e.msg);
        return -1;
    }
    return 0;
}

static void info_set(struct job *j, const char *key, json_t *v)
{
    if (!j->in.info)
        j->in.info = json_object();
    json_object_set_new(j->in.info, key, v);
}

/* The backoff of the retries, for attempt n (1-based), with jitter. */
static int64_t backoff_delay(const struct retry_conf *rc, int n)
{
    double delay = (double)rc->backoff_ms;
    for (int i = 1; i < n && delay < (double)rc->backoff_max_ms; i++)
        delay *= 2;
    if (delay > (double)rc->backoff_max_ms)
        delay = (double)rc->backoff_max_ms;
    return (int64_t)(delay * (0.5 + 0.5 * ((double)rand() / RAND_MAX)));
}

/* A step failed: schedule a retry, or park it as failed. */
static void step_failed(struct job *j, struct werr *e)
{
    const struct retry_conf *rc = &j->p->retry;
    const char *runbook = werr_runbook(e);
    if (pipeline_stopping() && werr_transient(e)) {
        /* Not a failure: the step was abandoned at shutdown and resumes
         * from the committed state at the next start. */
        wlog(LOG_INFO, j->p->name, j->in.id, "interrupted", NULL,
             "%s stopped at shutdown: %s; resumes at the next start", state_name(j->in.state),
             e->msg);
        return;
    }
    free(j->in.last_error);
    char *why = esc_text(e->msg); /* messages quote partner names */
    j->in.last_error = xasprintf("%s (see %s)", why, runbook);
    free(why);
    /* the same, apart, for `wharf status` and the alerts */
    info_set(j, "error", esc_json(e->msg));
    info_set(j, "error_kind", json_string(werr_kind_name(e->kind)));
    info_set(j, "runbook", json_string(runbook));
    j->in.attempts++;
    if (werr_transient(e) && j->in.attempts < rc->max_attempts) {
        double delay = (double)backoff_delay(rc, j->in.attempts);
        j->in.next_attempt_ms = now_ms() + (int64_t)delay;
        wlog(LOG_WARN, j->p->name, j->in.id, "retry",
             json_pack("{s:i,s:i,s:s}", "attempt", j->in.attempts, "delay_ms", (int)delay, "state",
                       state_name(j->in.state)),
             "%s; attempt %d of %d, next in %.1fs", j->in.last_error, j->in.attempts,
             rc->max_attempts, delay / 1000);
        save(j);
        struct werr le;
        ledger_event(j->pl->ledger, j->in.id, "retry",
                     json_pack("{s:s,s:i}", "error", j->in.last_error, "attempt", j->in.attempts),
                     &le);
        return;
    }
    struct werr de;
    ledger_set_durable(j->pl->ledger, true, &de);
    save(j);
    wlog(LOG_ERROR, j->p->name, j->in.id, "failed", NULL, "%s: parked as failed after %d attempt%s",
         j->in.last_error, j->in.attempts, j->in.attempts == 1 ? "" : "s");
    move(j, ST_FAILED, "failed",
         json_pack("{s:s,s:s,s:i}", "error", j->in.last_error, "state", state_name(j->in.state),
                   "attempts", j->in.attempts));
}

/* The path of a side file ("{name}.done", "{name}.ctl") of the intake's
 * drop, in its directory; NULL when pattern is. */
static char *beside(const struct job *j, const char *pattern)
{
    char *n, *r;
    const char *slash = strrchr(j->in.path, '/');
    if (!pattern)
        return NULL;
    n = done_name(pattern, j->in.name);
    r = slash ? xasprintf("%.*s/%s", (int)(slash - j->in.path), j->in.path, n) : xstrdup(n);
    free(n);
    return r;
}

static void drop_of(const struct job *j, struct drop *d)
{
    memset(d, 0, sizeof *d);
    d->path = j->in.path;
    d->name = j->in.name;
    d->size = j->in.size;
    d->mtime_ns = j->in.mtime_ns;
    json_t *ino = j->in.info ? json_object_get(j->in.info, "source_inode") : NULL;
    if (json_is_integer(ino))
        d->ino = (uint64_t)json_integer_value(ino);
    d->done_path = beside(j, j->p->source.done_file);
    /* claimed only once its done file was listed: the take checks what
     * the done file says (size, sha256) against what it receives */
    d->has_done = d->done_path != NULL;
    d->control_path = beside(j, j->p->control.file);
}

/* Read a small local file (a control file beside an ingested one): 1 read,
 * 0 absent, -1 (e filled) on error or past max bytes. */
static int read_local_side(const char *path, size_t max, char **buf, size_t *len, struct werr *e)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        werr_sys(e, "%s", path);
        return -1;
    }
    if ((r = read_bounded(fd, max, buf, len)) == -2)
        werr_setk(e, WERR_TOO_BIG, "%s: larger than %zu bytes", path, max);
    else if (r < 0)
        werr_sys(e, "%s: read", path);
    close(fd);
    return r < 0 ? -1 : 1;
}

/*
 * The control file of a taken drop (profile control: file:), read whole
 * (at most CONTROL_MAX_BYTES) from beside the data file -- the source, the
 * ingested file's directory, or a replayed intake's bag -- and kept in
 * work/<intake>/control, durably, to be parsed by the load and sealed in the
 * bag next to the original (data/<its name>).  info.control_file records
 * {"name", "sha256", "bytes", "bag"} or {"name", "missing": true} or
 * {"name", "problem"}; a missing or unreadable one is the load's reject,
 * not a failure of the take.  Returns -1 (e filled) only when reading
 * failed in a way worth retrying.
 */
static int take_control(struct job *j, struct source *src, const struct drop *d,
                        const struct intake *old, struct werr *e)
{
    const struct control_conf *cc = &j->p->control;
    char *name = NULL, *buf = NULL, *path = NULL, sha[SHA256_HEX_LEN];
    size_t len = 0;
    int r = -1, got;
    struct werr re = {0};

    if (cc->line != CONTROL_FILE)
        return 0;
    name = cc->from_done ? done_name(j->p->source.done_file, j->in.name)
                         : done_name(cc->file, j->in.name);
    if (old) {
        /* A replay reads the control file its original sealed. */
        json_t *cf = old->info ? json_object_get(old->info, "control_file") : NULL;
        const char *bn = cf ? json_string_value(json_object_get(cf, "bag")) : NULL;
        if (bn && old->bag && !strchr(bn + 5, '/')) {
            path = xasprintf("%s/%s", old->bag, bn);
            got = read_local_side(path, CONTROL_MAX_BYTES, &buf, &len, &re);
        } else {
            got = 0;
        }
    } else if (src) {
        const char *rel = cc->from_done ? d->done_path : d->control_path;
        got = rel && src->ops->read_side
                  ? src->ops->read_side(src, rel, CONTROL_MAX_BYTES, &buf, &len, &re)
                  : 0;
        if (got < 0 && werr_transient(&re)) {
            *e = re;
            goto out;
        }
    } else {
        const char *slash = strrchr(j->in.path, '/');
        path = slash ? xasprintf("%.*s/%s", (int)(slash - j->in.path), j->in.path, name)
                     : xstrdup(name);
        got = read_local_side(path, CONTROL_MAX_BYTES, &buf, &len, &re);
    }
    if (got < 0) {
        info_set(j, "control_file",
                 json_pack("{s:o,s:o}", "name", esc_json(name), "problem", esc_json(re.msg)));
    } else if (got == 0) {
        info_set(j, "control_file", json_pack("{s:o,s:b}", "name", esc_json(name), "missing", 1));
    } else {
        char *to = xasprintf("%s/control", j->workdir), *bag = xasprintf("data/%s", name);
        int w = durable_write(to, buf, len, e);
        free(to);
        if (w < 0) {
            free(bag);
            goto out;
        }
        sha256_hex(buf, len, sha);
        info_set(j, "control_file",
                 json_pack("{s:o,s:s,s:I,s:s}", "name", esc_json(name), "sha256", sha, "bytes",
                           (json_int_t)len, "bag", bag));
        free(bag);
    }
    r = 0;
out:
    free(name);
    free(buf);
    free(path);
    return r;
}

/* Copy a local file into dest, hashing (ingest and replay). */
static int copy_in(const char *from, const char *dest, uint64_t limit, char sha[SHA256_HEX_LEN],
                   uint64_t *bytes, struct werr *e)
{
    struct dfile df;
    int fd = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        werr_sys(e, "%s", from);
        return -1;
    }
    if (dfile_open(&df, dest, 0640, true, e) < 0) {
        close(fd);
        return -1;
    }
    if (dfile_copy_of(&df, fd, limit, e) < 0) {
        werr_prefix(e, "%s", from);
        dfile_abort(&df);
        close(fd);
        return -1;
    }
    close(fd);
    *bytes = df.bytes;
    return dfile_commit(&df, sha, e);
}

static char *bag_payload_of(const struct intake *in)
{
    return xasprintf("%s/data/%s", in->bag, in->name);
}

static int mkdir_here(const char *path, struct werr *e)
{
    if (mkdir(path, 0750) < 0 && errno != EEXIST) {
        werr_sys(e, "%s", path);
        return -1;
    }
    return 0;
}

/* Copies the intake's bytes from where they come from (the source, the
 * ingested file, the replayed bag) into work/<id>/original, hashing them,
 * with the control file beside it when the profile has one. */
static int fetch_original(struct job *j, char sha[SHA256_HEX_LEN], struct werr *ep)
{
    struct werr e = {0};
    uint64_t bytes = 0;
    int r = -1;

    /* limits.max_bytes holds for every byte taken, compressed or not: a
     * larger file is not copied at all.  It stays in the source, parked as
     * failed with the reason; raise the limit and `wharf replay` it. */
    if (j->in.size > j->p->limits.max_bytes) {
        werr_setk(&e, WERR_TOO_BIG,
                  "%s is %llu bytes, more than limits.max_bytes (%llu); not taken", j->in.name,
                  (unsigned long long)j->in.size, (unsigned long long)j->p->limits.max_bytes);
        goto fail;
    }
    /* work/<intake>/ is made now and made durable with the original: the
     * original's fsync commits its creation with it, and work/'s below the
     * intake dir (ext4: two journal commits where there were four).  A
     * crash before `taken` redoes all of it.  parts/ is scratch, made by
     * inspect only when a part needs a file of its own. */
    if (mkdirs(j->pl->cfg->work_dir, 0750, &e) < 0 || mkdir_here(j->workdir, &e) < 0)
        goto fail;
    if (!strcmp(j->in.source, SOURCE_INGEST)) {
        r = copy_in(j->in.path, j->original, j->p->limits.max_bytes, sha, &bytes, &e);
        if (r == 0)
            r = take_control(j, NULL, NULL, NULL, &e);
    } else if (!strcmp(j->in.source, SOURCE_REPLAY)) {
        struct intake old = {0};
        int g = ledger_get(j->pl->ledger, j->in.replay_of ? j->in.replay_of : j->in.path, &old, &e);
        if (g <= 0 || !old.bag) {
            if (g == 0 || (g > 0 && !old.bag))
                werr_set(&e, "replay: intake %s has no sealed original", j->in.path);
            intake_clear(&old);
            goto fail;
        }
        char *from = bag_payload_of(&old);
        r = copy_in(from, j->original, j->p->limits.max_bytes, sha, &bytes, &e);
        /* The sealed bytes, exactly: a bag changed since is never replayed
         * (nor re-sent to a partner). */
        if (r == 0 && old.sha256[0] && strcmp(sha, old.sha256)) {
            werr_setk(&e, WERR_CORRUPT,
                      "replay: the sealed original %s has sha256 %s, not %s as sealed; not "
                      "replayed (run wharf verify %s)",
                      from, sha, old.sha256, old.id);
            r = -1;
        }
        free(from);
        if (r == 0)
            r = take_control(j, NULL, NULL, &old, &e);
        intake_clear(&old);
    } else {
        struct source *src = source_get(j->pl, j->p, &e);
        struct drop d;
        uint64_t ino = 0;
        if (!src && j->soft_connect) {
            *j->no_source = e;
            return -1;
        }
        if (!src)
            goto fail;
        drop_of(j, &d);
        d.ino = 0; /* whatever is there now, checked against size and mtime */
        d.taken_ino = &ino;
        r = src->ops->fetch(src, &d, j->original, sha, &bytes, &e);
        /* finish() deletes or moves only this inode */
        if (r == 0 && ino)
            info_set(j, "source_inode", json_integer((json_int_t)ino));
        if (r == 0)
            r = take_control(j, src, &d, NULL, &e);
        if (r < 0 && werr_transient(&e))
            source_drop(j->pl, j->p);
        crash_point("fetched");
        free(d.done_path);
        free(d.control_path);
    }
    if (r < 0 || fsync_parent(j->workdir, &e) < 0)
        goto fail;
    if (bytes != j->in.size && strcmp(j->in.source, SOURCE_REPLAY)) {
        werr_setk(&e, WERR_HOSTILE, "took %llu bytes but %llu were listed",
                  (unsigned long long)bytes, (unsigned long long)j->in.size);
        goto fail;
    }
    j->in.size = bytes;
    return 0;
fail:
    *ep = e;
    return -1;
}

/* found -> taken */
static int step_take(struct job *j)
{
    struct werr e = {0};
    char sha[SHA256_HEX_LEN];

    if (fetch_original(j, sha, &e) < 0) {
        if (j->no_source && j->no_source->msg[0])
            return -1; /* not connected (soft_connect): the runner tries again */
        goto fail;
    }
    memcpy(j->in.sha256, sha, SHA256_HEX_LEN);
    j->took = true;
    wlog(LOG_INFO, j->p->name, j->in.id, "taken", NULL, "%s sha256 %s", j->in.name, sha);
    return save_move(j, ST_TAKEN, "taken",
                     json_pack("{s:s,s:I}", "sha256", sha, "bytes", (json_int_t)j->in.size));
fail:
    step_failed(j, &e);
    return -1;
}

static int write_report(struct job *j, const char *runbook, struct werr *e)
{
    char *body = report_text(&j->rep), *path;
    char *txt = runbook ? xasprintf("%s\nIntake %s (profile %s) was rejected. Fix the file or the "
                                    "profile, then run: wharf replay %s\nSee %s.\n",
                                    body, j->in.id, j->p->name, j->in.id, runbook)
                        : xstrdup(body);
    free(body);
    json_t *js = report_json(&j->rep);
    char *jtxt = json_dumps(js, JSON_INDENT(2));
    int r;
    path = xasprintf("%s/report.txt", j->workdir);
    r = durable_write(path, txt, strlen(txt), e);
    free(path);
    if (r == 0) {
        path = xasprintf("%s/report.json", j->workdir);
        r = durable_write(path, jtxt, strlen(jtxt), e);
        free(path);
    }
    free(txt);
    free(jtxt);
    json_decref(js);
    return r;
}

/* The runbook page for a reject, from the kind of its first problem. */
static const char *reject_runbook(const struct report *r)
{
    const char *code = r->n ? r->v[0].code : "";
    if (!strcmp(code, "invalid_encoding") || !strcmp(code, "encoding_uncertain") ||
        !strcmp(code, "nul_byte"))
        return werr_kind_runbook(WERR_ENCODING);
    if (!strcmp(code, "duplicate"))
        return werr_kind_runbook(WERR_DUPLICATE);
    if (!strcmp(code, "control_total"))
        return werr_kind_runbook(WERR_CONTROL);
    return werr_kind_runbook(WERR_SCHEMA);
}

static int reject(struct job *j, const char *why)
{
    struct werr e;
    char *first = report_first(&j->rep);
    const char *runbook = reject_runbook(&j->rep);
    if (write_report(j, runbook, &e) < 0) {
        free(first);
        step_failed(j, &e);
        return -1;
    }
    j->in.outcome = OUT_REJECTED;
    free(j->in.last_error);
    j->in.last_error = xasprintf("%s: %s", why, first);
    info_set(j, "problems", json_integer((json_int_t)j->rep.total));
    info_set(j, "runbook", json_string(runbook));
    if (save(j) < 0) {
        free(first);
        return -1;
    }
    wlog(LOG_WARN, j->p->name, j->in.id, "rejected",
         json_pack("{s:I}", "problems", (json_int_t)j->rep.total),
         "%s: %s (%llu problem%s; see %s)", j->in.name, first, (unsigned long long)j->rep.total,
         j->rep.total == 1 ? "" : "s", runbook);
    free(first);
    return move(
        j, ST_REJECTED, "rejected",
        json_pack("{s:s,s:I}", "reason", j->in.last_error, "problems", (json_int_t)j->rep.total));
}

static int finish_source(struct job *j, struct werr *e)
{
    struct source *src;
    struct drop d;
    int r;
    if (!strcmp(j->in.source, SOURCE_INGEST) || !strcmp(j->in.source, SOURCE_REPLAY))
        return 0;
    if (!(src = source_get(j->pl, j->p, e))) {
        if (j->soft_connect)
            *j->no_source = *e;
        return -1;
    }
    drop_of(j, &d);
    r = src->ops->finish(src, &d, e);
    if (r < 0 && werr_transient(e))
        source_drop(j->pl, j->p);
    free(d.done_path);
    free(d.control_path);
    return r;
}

/*
 * inspect_run with the schema's field names as the header hint (CSV), so a
 * first record naming the schema's fields is taken as the header whatever
 * the sniffing heuristics think of it.
 */
static int inspect_run_for(struct job *j, struct werr *e)
{
    struct validator *v = validator_for(j->pl, j->p, e);
    const struct columns *cols = v ? validator_columns(v, FORMAT_CSV) : NULL;
    struct header_hint hint = {.case_insensitive = j->p->csv.header_case_insensitive};
    const char **names = NULL;
    int r;
    if (!v)
        return -1;
    if (cols && cols->n) {
        names = xcalloc(cols->n, sizeof *names);
        for (size_t i = 0; i < cols->n; i++)
            names[i] = cols->v[i].name;
        hint.names = names;
        hint.n = cols->n;
    }
    /* the take's hash stands for the bytes only when this job wrote them;
     * after a restart, or a take on a connection thread, inspect hashes */
    r = inspect_run(j->p, &hint, j->original, j->took ? j->in.sha256 : NULL, j->in.name,
                    j->partsdir, &j->insp, &j->rep, e);
    free(names);
    return r;
}

/*
 * Outbound, taken -> validated | rejected, when the profile has a csv: or
 * xml: section: the taken copy goes through the same inspection and
 * validation as an inbound file (no rows go anywhere), so wharf never sends
 * a partner a file that breaks the agreed format.  Any problem rejects the
 * whole file (report with line, column, field and reason; rejects/ bag;
 * `wharf replay` once fixed) and nothing is uploaded.  Deterministic: a
 * crash re-runs it.  Without csv:/xml: the file goes straight to delivery.
 */
static bool outbound_validates(const struct profile *p)
{
    return p->csv.schema || p->csv.inline_fields || p->xml.schema;
}

/* Inspects the taken original afresh (its parts unpacked again): -1 on an
 * error (e set), 1 when inspection rejects the file, 0 when it goes on. */
static int inspect_again(struct job *j, struct werr *e)
{
    int r;
    if (rmtree(j->partsdir, e) < 0)
        return -1;
    inspection_free(&j->insp);
    memset(&j->insp, 0, sizeof j->insp);
    if ((r = inspect_run_for(j, e)) < 0)
        return -1;
    j->have_insp = true;
    info_set(j, "inspection", inspection_json(&j->insp));
    return r == 1;
}

static int step_check_outbound(struct job *j)
{
    struct werr e = {0};
    struct validator *v;
    uint64_t records = 0, invalid = 0;
    bool structural = false;
    int r;

    r = inspect_again(j, &e);
    if (r < 0)
        goto fail;
    if (r == 1)
        return reject(j, "inspection");
    if (!(v = validator_for(j->pl, j->p, &e)))
        goto fail;
    for (size_t i = 0; i < j->insp.n; i++) {
        const struct part *pt = &j->insp.parts[i];
        struct validate_input vi = {
            .path = pt->utf8_path,
            .display = pt->name,
            .format = pt->format,
            .delimiter = pt->dialect.delimiter,
            .quote = pt->dialect.quote,
            .header = pt->dialect.header,
            .skip_first_line = pt->dialect.sep_line,
        };
        struct validate_result res = {0};
        if (pt->rejected)
            continue;
        if (!validator_columns(v, pt->format)) {
            werr_setk(&e, WERR_CONFIG, "profile %s has no schema for %s data (%s)", j->p->name,
                      pt->format == FORMAT_XML ? "XML" : "CSV", pt->name);
            goto fail;
        }
        if (validator_run(v, &vi, &j->rep, NULL, NULL, NULL, &res, &e) < 0)
            goto fail;
        records += res.records;
        invalid += res.invalid;
        structural |= res.structural;
    }
    info_set(j, "validation",
             json_pack("{s:I,s:I,s:I}", "records", (json_int_t)records, "invalid",
                       (json_int_t)invalid, "problems", (json_int_t)j->rep.total));
    if (structural || j->rep.total) {
        wlog(LOG_WARN, j->p->name, j->in.id, "not_sent", NULL,
             "%s breaks the profile's format: not delivered to any partner", j->in.name);
        return reject(j, "validation");
    }
    return save_move(
        j, ST_VALIDATED, "validated",
        json_pack("{s:I,s:I}", "records", (json_int_t)records, "invalid", (json_int_t)0));
fail:
    step_failed(j, &e);
    return -1;
}

/*
 * Outbound (direction: outbound), taken or validated -> loaded: deliver the
 * taken copy to each partner in deliver: (fan-out), each tracked apart in
 * info.deliveries[i] = {"to": "sftp://user@host:port/dir", "delivered_ms",
 * "resumed_at", "already_there", "name_was_free"} and by an event
 * "delivery".  sftp_push_file uploads to a temp name, checks the remote
 * size, renames without replacing, resumes a verified partial upload.  A
 * failure retries (or parks) the intake; the partners already served are
 * not sent again.  Then the bag is sealed as for inbound files and only
 * after that is the spool file finished.
 *
 * Each destination has a circuit (ledger.h, destination_health): its
 * failures are counted across intakes; once it is open, a delivery there is
 * held until the next probe without spending an attempt, and the profile is
 * `down` in `wharf status`.
 */

/* A failure of the partner's server (not of this file, not ours). */
static bool destination_fault(enum werr_kind k)
{
    return k == WERR_DELIVERY_UNREACHABLE || k == WERR_DELIVERY_NOSPACE ||
           k == WERR_DELIVERY_REFUSED;
}

/* The circuit of `to` is open: hold the intake until its next probe. */
static int hold_delivery(struct job *j, const char *to, const struct destination_health *dh)
{
    char since[32], next[32];
    format_time_ms(dh->since_ms, since);
    format_time_ms(dh->next_probe_ms, next);
    free(j->in.last_error);
    j->in.last_error =
        xasprintf("held: delivery to %s is down since %s (circuit open after %d failed "
                  "deliveries; next probe %s): %s (see %s)",
                  to, since, dh->fails, next, dh->error, dh->runbook);
    info_set(j, "error", json_string(dh->error));
    info_set(j, "error_kind", json_string(dh->kind));
    info_set(j, "runbook", json_string(dh->runbook));
    j->in.next_attempt_ms = dh->next_probe_ms;
    wlog(LOG_INFO, j->p->name, j->in.id, "delivery_held", NULL, "%s", j->in.last_error);
    save(j);
    return -1;
}

/* One partner: 1 delivered now, 0 already in place, -1 failed (e). */
static int deliver_one(struct job *j, const struct deliver_conf *dc, const char *to, json_t *dv,
                       json_t *d, uint64_t *resumed, struct werr *e)
{
    const struct source_conf *sc = &dc->sftp;
    const char *kh = sc->known_hosts ? sc->known_hosts : j->pl->cfg->known_hosts;
    struct sftp_push sp;
    int r;

    if (sftp_push_open(&sp, sc, kh, e) < 0)
        return -1;
    if (j->in.replay_of && !json_is_true(json_object_get(d, "name_was_free"))) {
        /* A re-send (replay of a delivered file) never lands on a file
         * still there, ours or not: the partner has not taken the earlier
         * one (or has a file of that name).  Checked once and recorded
         * durably before the upload starts, so a retry after a crash knows
         * that the file it then finds is its own. */
        r = sftp_push_exists(&sp, sc->path, j->in.name, e);
        if (r == 1) {
            char *nm = esc_text(j->in.name);
            werr_setk(e, WERR_DELIVERY_EXISTS,
                      "%s: %s is still there; a re-send never replaces a file on the partner's "
                      "server: once the partner has taken or removed it, run wharf replay %s",
                      to, nm, j->in.id);
            free(nm);
            r = -1;
        } else if (r == 0) {
            struct werr de;
            json_object_set_new(d, "name_was_free", json_true());
            info_set(j, "deliveries", json_incref(dv));
            ledger_set_durable(j->pl->ledger, true, &de);
            if (save(j) < 0) {
                werr_setk(e, WERR_BUSY, "cannot record the re-send in the ledger");
                r = -1;
            }
            ledger_set_durable(j->pl->ledger, false, &de);
        }
        if (r < 0) {
            sftp_push_close(&sp);
            return -1;
        }
    }
    r = sftp_push_file(&sp, sc->path, j->in.name, j->original, j->in.size, j->in.sha256,
                       dc->done_file, resumed, e);
    sftp_push_close(&sp);
    return r;
}

static int step_deliver(struct job *j)
{
    struct werr e = {0};
    json_t *dv = j->in.info ? json_object_get(j->in.info, "deliveries") : NULL;
    json_t *targets = json_array();
    int r = -1;

    dv = dv ? json_deep_copy(dv) : json_array();
    while (json_array_size(dv) < j->p->n_deliver)
        json_array_append_new(dv, json_object());
    for (size_t i = 0; i < j->p->n_deliver; i++) {
        json_t *d = json_array_get(dv, i);
        char *to = deliver_url(&j->p->deliver[i]);
        struct destination_health dh;
        uint64_t resumed = 0;
        int k;
        json_array_append_new(targets, json_string(to));
        if (json_object_get(d, "delivered_ms")) {
            free(to);
            continue;
        }
        json_object_set_new(d, "to", json_string(to));
        ledger_destination_health(j->pl->ledger, j->p->name, to, &dh);
        if (destination_circuit_open(&dh, now_ms())) {
            info_set(j, "deliveries", json_incref(dv));
            hold_delivery(j, to, &dh);
            free(to);
            goto out;
        }
        k = deliver_one(j, &j->p->deliver[i], to, dv, d, &resumed, &e);
        if (k < 0) {
            if (destination_fault(e.kind)) {
                int n = ledger_destination_failed(
                    j->pl->ledger, j->p->name, to, werr_kind_name(e.kind), e.msg, werr_runbook(&e),
                    now_ms(), backoff_delay(&j->p->retry, dh.ok ? 1 : dh.fails + 1));
                if (n == DESTINATION_CIRCUIT_AFTER)
                    wlog(LOG_ERROR, j->p->name, j->in.id, "destination_down", NULL,
                         "%s: circuit open after %d failed deliveries: %s (see %s)", to, n, e.msg,
                         werr_runbook(&e));
            }
            free(to);
            info_set(j, "deliveries", json_incref(dv));
            step_failed(j, &e);
            goto out;
        }
        if (ledger_destination_ok(j->pl->ledger, j->p->name, to, now_ms()) > 0)
            wlog(LOG_INFO, j->p->name, j->in.id, "destination_recovered", NULL,
                 "%s: delivering again after %d failed deliveries", to, dh.fails);
        json_object_set_new(d, "delivered_ms", json_integer((json_int_t)now_ms()));
        json_object_set_new(d, "resumed_at", json_integer((json_int_t)resumed));
        json_object_set_new(d, "already_there", json_boolean(k == 0));
        info_set(j, "deliveries", json_incref(dv));
        if (save(j) < 0 ||
            ledger_event(j->pl->ledger, j->in.id, "delivery",
                         json_pack("{s:s,s:s,s:I,s:s?}", "to", to, "sha256", j->in.sha256,
                                   "resumed_at", (json_int_t)resumed, "resend_of", j->in.replay_of),
                         &e) < 0) {
            free(to);
            goto out;
        }
        wlog(LOG_INFO, j->p->name, j->in.id, "delivered",
             json_pack("{s:s,s:I}", "to", to, "resumed_at", (json_int_t)resumed),
             "%s delivered to %s%s", j->in.name, to, k == 0 ? " (already in place)" : "");
        crash_point("delivered_one");
        free(to);
    }
    {
        char *t = json_dumps(targets, JSON_COMPACT);
        info_set(j, "target", json_string(t));
        free(t);
    }
    j->in.outcome = OUT_LOADED;
    j->in.rows = 0;
    if (save(j) < 0)
        goto out;
    r = move(j, ST_LOADED, "delivered", NULL);
out:
    json_decref(dv);
    json_decref(targets);
    return r;
}

/* taken -> (duplicate) done | rejected ; taken -> inspected */
static int step_inspect(struct job *j)
{
    struct werr e = {0};
    char dup[ID_LEN];
    int r;

    if (j->p->duplicates != DUP_LOAD && !j->in.replay_of) {
        r = ledger_find_loaded(j->pl->ledger, j->p->name, j->in.sha256, dup, &e);
        if (r < 0)
            goto fail;
        if (r == 1 && strcmp(dup, j->in.id)) {
            if (j->p->duplicates == DUP_REJECT) {
                report_add(&j->rep, j->in.name, 0, 0, NULL, NULL, 0, "duplicate",
                           "has the same content (sha256 %s) as intake %s, already loaded",
                           j->in.sha256, dup);
                return reject(j, "duplicate");
            }
            /* skip: the bytes are already sealed in the earlier bag.  Make
             * everything so far durable before the source file goes. */
            if (ledger_set_durable(j->pl->ledger, true, &e) < 0 ||
                ledger_event(j->pl->ledger, j->in.id, "duplicate_found", jstr("of", dup), &e) < 0)
                goto fail;
            if (finish_source(j, &e) < 0)
                goto fail;
            j->in.outcome = OUT_DUPLICATE;
            info_set(j, "duplicate_of", json_string(dup));
            if (save(j) < 0)
                return -1;
            wlog(LOG_INFO, j->p->name, j->in.id, "duplicate", NULL,
                 "%s: same content as %s; skipped (see %s)", j->in.name, dup,
                 werr_kind_runbook(WERR_DUPLICATE));
            /* The partner hears of it too; its bytes are sealed in the
             * earlier bag, so "sealed" is when this intake was settled. */
            if (!json_object_get(j->in.info, "sealed_ms"))
                info_set(j, "sealed_ms", json_integer((json_int_t)now_ms()));
            if (step_receipt(j) < 0)
                return -1; /* retried later from taken: the check above is idempotent */
            if (move(j, ST_DONE, "duplicate", jstr("duplicate_of", dup)) < 0)
                return -1;
            rmtree(j->workdir, &e);
            return 0;
        }
    }
    r = inspect_again(j, &e);
    if (r < 0)
        goto fail;
    if (r == 1)
        return reject(j, "inspection");
    return save_move(j, ST_INSPECTED, "inspected", inspection_json(&j->insp));
fail:
    step_failed(j, &e);
    return -1;
}

static int insert_row(void *ctx, const struct row *row, struct werr *e)
{
    struct job *j = ctx;
    if ((j->rows & 0x3ff) == 0 && pipeline_stopping()) {
        /* Rolled back by the caller; the intake stays inspected. */
        werr_setk(e, WERR_INTERRUPTED, "interrupted by shutdown");
        return -1;
    }
    struct row r = *row;
    r.part = j->part_no;
    if (j->tg->ops->insert(j->tg, &r, e) < 0)
        return -1;
    j->rows++;
    if (j->pl->progress && (j->rows & 0xffff) == 0) {
        j->bytes_read = j->bytes_before + (j->part_read ? *j->part_read : 0);
        j->pl->progress(j->pl->progress_ctx, j->in.id, "load", j->bytes_read, j->bytes_total,
                        j->rows);
    }
    return 0;
}

static bool too_many_invalid(const struct profile *p, uint64_t invalid, uint64_t records)
{
    if (p->max_invalid_count && invalid > p->max_invalid_count)
        return true;
    if (p->max_invalid_pct >= 0 && records &&
        (double)invalid * 100.0 / (double)records > p->max_invalid_pct)
        return true;
    return false;
}

/* What the load left in the target (target.h, load_stats), as evidence for
 * reconcile: info.load on this intake, and a "superseded" event on every
 * earlier intake whose rows it replaced or deleted (reconcile does not call
 * those a gap).  Re-running it after a crash writes the same again. */
static int record_load(struct job *j, struct werr *e)
{
    const struct load_stats *st = &j->tg->stats;
    char hex[KEYDIGEST_HEX_LEN];
    json_t *sup;
    int r = 0;
    if (!st->key)
        return 0; /* a target that has no key digest (loaded before reconcile existed) */
    sup = json_array();
    if (st->n_sup && ledger_set_durable(j->pl->ledger, false, e) < 0) {
        json_decref(sup);
        return -1;
    }
    for (size_t i = 0; i < st->n_sup && r == 0; i++) {
        const struct supersession *sp = &st->sup[i];
        struct intake old = {0};
        json_t *d;
        keydigest_hex(&sp->digest, hex);
        d = json_pack("{s:s,s:I,s:s?,s:b}", "intake", sp->intake, "rows", (json_int_t)sp->rows,
                      "digest", sp->all ? NULL : hex, "all", sp->all);
        json_array_append_new(sup, json_deep_copy(d));
        json_object_del(d, "intake");
        json_object_set_new(d, "by", json_string(j->in.id));
        /* Rows under an id the ledger never issued were put there by hand:
         * reconcile reports them; there is no intake to note this on. */
        int g = ledger_get(j->pl->ledger, sp->intake, &old, e);
        if (g < 0 || (g == 1 && strcmp(old.id, sp->intake)))
            g = g < 0 ? -1 : 0;
        intake_clear(&old);
        if (g < 0)
            r = -1;
        else if (g == 1)
            r = ledger_event(j->pl->ledger, sp->intake, "superseded", d, e);
        else
            json_decref(d);
    }
    if (st->n_sup) {
        struct werr e2 = {0};
        if (ledger_set_durable(j->pl->ledger, true, &e2) < 0 && r == 0) {
            *e = e2;
            r = -1;
        }
    }
    keydigest_hex(&st->digest, hex);
    info_set(j, "load",
             json_pack("{s:I,s:s,s:s,s:o}", "rows", (json_int_t)st->rows, "key", st->key,
                       "key_digest", hex, "superseded", sup));
    return r;
}

/*
 * control: compare the partner's control totals of every part with what was
 * received (profile control:, validate/control.h), after validation and
 * before the target commits.  The evidence goes into info.control (the
 * stable key receipts and `wharf show` read):
 *   {"ok": bool, "message": "...", "parts": [{"part", "ok", "form", "line",
 *    "stated": {...}, "received": {"records","valid","invalid","sums"},
 *    "message"}, ...]}
 * Returns true when every part agrees; otherwise the first disagreement
 * leads the report (problem code control_total) and the caller rejects.
 */
static void control_free(struct control_tally *ctl, size_t n)
{
    for (size_t i = 0; ctl && i < n; i++)
        control_tally_free(&ctl[i]);
    free(ctl);
}

/* One tally for the whole intake (a control file states the totals of all
 * its parts), or one per part (a trailer, header or element in each). */
static bool control_shared(const struct profile *p)
{
    return p->control.line == CONTROL_FILE;
}

/*
 * control: file: read the control file the take kept (work/<intake>/control)
 * into the shared tally, or say why there is none.  Returns false when the
 * profile does not require one and there is none: nothing to compare.
 */
static bool control_file_load(struct job *j, struct control_tally *t)
{
    const struct control_conf *cc = &j->p->control;
    json_t *cf = j->in.info ? json_object_get(j->in.info, "control_file") : NULL;
    const char *name = cf ? json_string_value(json_object_get(cf, "name")) : NULL;
    char *path = xasprintf("%s/control", j->workdir), *buf = NULL, wait[32];
    size_t len = 0;
    struct werr e = {0};
    bool r = true;
    if (!name)
        name = "(unknown)";
    if (cf && json_object_get(cf, "problem")) {
        snprintf(t->problem, sizeof t->problem, "the control file %s cannot be read: %.400s", name,
                 json_string_value(json_object_get(cf, "problem")));
    } else if (!cf || json_is_true(json_object_get(cf, "missing"))) {
        if (!cc->required) {
            r = false;
        } else if (cc->from_done) {
            snprintf(t->problem, sizeof t->problem,
                     "the done file %s, which holds the control totals, is missing", name);
        } else {
            format_duration(cc->wait_ms, wait, sizeof wait);
            snprintf(t->problem, sizeof t->problem,
                     "no control file %s beside the file (the profile requires one; a drop "
                     "waits for it up to control.wait, %s)",
                     name, wait);
        }
        free(t->where);
        t->where = xstrdup(name);
    } else if (read_local_side(path, CONTROL_MAX_BYTES, &buf, &len, &e) != 1) {
        snprintf(t->problem, sizeof t->problem, "the control file %s cannot be read: %.400s", name,
                 *e.msg ? e.msg : "it is gone from the work directory");
    } else {
        control_file_parse(t, name, buf, len);
    }
    free(buf);
    free(path);
    return r;
}

static bool control_check(struct job *j, struct control_tally *ctl,
                          const struct validate_result *pres)
{
    json_t *parts = json_array();
    char msg[1024], first[1024] = "";
    bool all = true, shared = control_shared(j->p);
    struct validate_result sum = {0};
    if (shared) {
        /* The control file states the totals of the whole intake. */
        for (size_t i = 0; i < j->insp.n; i++) {
            sum.records += pres[i].records;
            sum.valid += pres[i].valid;
            sum.invalid += pres[i].invalid;
        }
    }
    for (size_t i = 0; i < j->insp.n; i++) {
        const struct part *pt = &j->insp.parts[i];
        json_t *ev;
        if (pt->rejected && !shared)
            continue;
        const struct validate_result *pr = shared ? &sum : &pres[i];
        bool ok = control_compare(&ctl[i], pr->records, pr->valid, pr->invalid,
                                  j->p->on_invalid == ON_INVALID_SPLIT, &ev, msg, sizeof msg);
        json_object_set_new(ev, "part", esc_json(shared ? j->in.name : pt->name));
        json_array_append_new(parts, ev);
        if (!ok && all) {
            all = false;
            snprintf(first, sizeof first, "%s", msg);
            report_add(&j->rep, pt->name, ctl[i].line, 0, NULL, NULL, 0, "control_total", "%s",
                       msg);
            /* The control verdict leads the report (and picks the runbook). */
            if (j->rep.n > 1) {
                struct problem last = j->rep.v[j->rep.n - 1];
                memmove(j->rep.v + 1, j->rep.v, (j->rep.n - 1) * sizeof *j->rep.v);
                j->rep.v[0] = last;
            }
        }
        if (ok && !*first)
            snprintf(first, sizeof first, "%s", msg);
        if (shared)
            break;
    }
    info_set(j, "control",
             json_pack("{s:b,s:o,s:o}", "ok", all, "message", esc_json(first), "parts", parts));
    wlog(all ? LOG_INFO : LOG_WARN, j->p->name, j->in.id, "control", NULL, "%s: %s", j->in.name,
         first);
    return all;
}

/* inspected -> validated -> loaded, or -> rejected; validated -> loaded. */
static int step_load(struct job *j)
{
    struct werr e = {0};
    struct validator *v;
    uint64_t rows = 0, records = 0, invalid = 0, parked_rows = 0;
    json_t *parked = NULL; /* the split files the validator wrote */
    bool structural = false, began = false;
    uint64_t *part_first = NULL;         /* the load's row index where each part starts */
    struct control_tally *ctl = NULL;    /* per part, when the profile has control: */
    struct validate_result *pres = NULL; /* per part: what its validation saw */
    int r;

    if (!(j->tg = target_get(j->pl, j->p, &e)))
        goto fail;
    r = j->tg->ops->loaded(j->tg, j->in.id, &rows, &e);
    if (r < 0)
        goto fail;
    if (r == 1) {
        /* The target committed before a crash: never load twice. */
        j->in.rows = rows;
        j->in.outcome = OUT_LOADED;
        if (record_load(j, &e) < 0)
            goto fail;
        if (save(j) < 0)
            return -1;
        if (j->in.state == ST_INSPECTED &&
            move(j, ST_VALIDATED, "validated", jstr("note", "found committed in target")) < 0)
            return -1;
        return move(j, ST_LOADED, "loaded",
                    json_pack("{s:I,s:s}", "rows", (json_int_t)rows, "note",
                              "found in the target's wharf_loads after a restart"));
    }
    if (!j->have_insp) {
        /* After a restart: inspection is cheap and deterministic; redo it. */
        report_free(&j->rep);
        report_init(&j->rep, (size_t)j->p->limits.max_errors);
        if (rmtree(j->partsdir, &e) < 0)
            goto fail;
        r = inspect_run_for(j, &e);
        if (r != 0) {
            if (r > 0)
                werr_set(&e, "inspection no longer passes on resume");
            goto fail;
        }
        j->have_insp = true;
    }
    if (!(v = validator_for(j->pl, j->p, &e)))
        goto fail;
    j->rows = 0;
    j->bytes_total = 0;
    for (size_t i = 0; i < j->insp.n; i++)
        j->bytes_total += j->insp.parts[i].rejected ? 0 : j->insp.parts[i].utf8_bytes;
    uint64_t before = 0, part_read = 0;
    if (j->pl->progress)
        j->pl->progress(j->pl->progress_ctx, j->in.id, "load", 0, j->bytes_total, 0);
    parked = json_array();
    part_first = xcalloc(j->insp.n + 1, sizeof *part_first);
    pres = xcalloc(j->insp.n + 1, sizeof *pres);
    if (j->p->control.line != CONTROL_NONE) {
        ctl = xcalloc(j->insp.n + 1, sizeof *ctl);
        for (size_t i = 0; i < j->insp.n; i++)
            control_tally_init(&ctl[i], &j->p->control);
        if (control_shared(j->p) && !control_file_load(j, &ctl[0])) {
            /* control.required: false and no control file: nothing compared */
            info_set(j, "control",
                     json_pack("{s:b,s:b,s:s,s:[]}", "ok", 1, "compared", 0, "message",
                               "control: no control file; nothing compared (control.required: "
                               "false)",
                               "parts"));
            control_free(ctl, j->insp.n);
            ctl = NULL;
        }
    }
    for (size_t i = 0; i < j->insp.n; i++) {
        struct part *pt = &j->insp.parts[i];
        part_first[i] = j->rows;
        struct validate_input vi = {
            .path = pt->utf8_path,
            .display = pt->name,
            .format = pt->format,
            .delimiter = pt->dialect.delimiter,
            .quote = pt->dialect.quote,
            .header = pt->dialect.header,
            .skip_first_line = pt->dialect.sep_line,
            .bytes_read = &part_read,
            .control = ctl ? &ctl[control_shared(j->p) ? 0 : i] : NULL,
        };
        struct validate_result res = {0};
        char *invalid_csv = NULL;
        if (pt->rejected)
            continue;
        if (!began) {
            const struct columns *cols = validator_columns(v, pt->format);
            if (!cols) {
                werr_setk(&e, WERR_CONFIG, "profile %s has no schema for %s data (%s)", j->p->name,
                          pt->format == FORMAT_XML ? "XML" : "CSV", pt->name);
                goto fail;
            }
            if (j->tg->ops->begin(j->tg, j->in.id, cols, &e) < 0)
                goto fail;
            began = true;
        }
        if (j->p->on_invalid == ON_INVALID_SPLIT)
            invalid_csv = xasprintf("%s/invalid-%zu.csv", j->workdir, i + 1);
        part_read = 0;
        j->part_read = &part_read;
        j->part_no = j->insp.n > 1 ? (uint32_t)(i + 1) : 0;
        j->bytes_before = before;
        r = validator_run(v, &vi, &j->rep, insert_row, j, invalid_csv, &res, &e);
        before += pt->utf8_bytes;
        j->part_read = NULL;
        free(invalid_csv);
        if (res.invalid_path) {
            /* Recorded by its name in the work dir, so a seal after a
             * restart bags exactly these files. */
            const char *slash = strrchr(res.invalid_path, '/');
            char *bag_name = xasprintf("invalid-rows-%zu.csv", i + 1);
            json_array_append_new(parked,
                                  json_pack("{s:o,s:s,s:s,s:I}", "part", esc_json(pt->name), "work",
                                            slash ? slash + 1 : res.invalid_path, "bag", bag_name,
                                            "rows", (json_int_t)res.invalid_written));
            parked_rows += res.invalid_written;
            free(bag_name);
            free(res.invalid_path);
        }
        if (r < 0)
            goto fail;
        records += res.records;
        invalid += res.invalid;
        structural |= res.structural;
        pres[i] = res;
        pres[i].invalid_path = NULL;
    }
    if (j->p->on_invalid == ON_INVALID_SPLIT)
        info_set(j, "invalid_rows",
                 json_pack("{s:I,s:O}", "rows", (json_int_t)parked_rows, "files", parked));
    json_decref(parked);
    parked = NULL;
    info_set(j, "validation",
             json_pack("{s:I,s:I,s:I}", "records", (json_int_t)records, "invalid",
                       (json_int_t)invalid, "problems", (json_int_t)j->rep.total));
    if (ctl && !control_check(j, ctl, pres)) {
        /* The target transaction is still open: nothing of it commits. */
        if (began)
            j->tg->ops->rollback(j->tg);
        control_free(ctl, j->insp.n);
        free(pres);
        free(part_first);
        return reject(j, "control");
    }
    control_free(ctl, j->insp.n);
    ctl = NULL;
    free(pres);
    pres = NULL;
    if (structural || (j->rep.total && j->p->on_invalid == ON_INVALID_REJECT) ||
        (j->p->on_invalid == ON_INVALID_SPLIT && too_many_invalid(j->p, invalid, records))) {
        if (began)
            j->tg->ops->rollback(j->tg);
        free(part_first);
        return reject(j, "validation");
    }
    if (j->in.state == ST_INSPECTED) {
        if (save(j) < 0 || move(j, ST_VALIDATED, "validated",
                                json_pack("{s:I,s:I}", "records", (json_int_t)records, "invalid",
                                          (json_int_t)invalid)) < 0) {
            if (began)
                j->tg->ops->rollback(j->tg);
            free(part_first);
            return -1;
        }
    }
    if (!began) {
        /* Nothing to load (all parts rejected independently): still record it. */
        static const struct columns none = {0};
        if (j->tg->ops->begin(j->tg, j->in.id, &none, &e) < 0)
            goto fail;
    }
    if (j->tg->ops->commit(j->tg, j->in.id, j->in.sha256, j->rows, &e) < 0)
        goto fail;
    free(part_first);
    part_first = NULL;
    crash_point("target_committed");
    j->in.rows = j->rows;
    j->in.outcome = OUT_LOADED;
    char *tdesc = j->tg->ops->describe(j->tg);
    info_set(j, "target", json_string(tdesc));
    free(tdesc);
    if (record_load(j, &e) < 0)
        goto fail;
    if (j->rep.total && write_report(j, NULL, &e) < 0)
        goto fail;
    wlog(LOG_INFO, j->p->name, j->in.id, "loaded",
         json_pack("{s:I,s:I}", "rows", (json_int_t)j->rows, "invalid", (json_int_t)invalid),
         "%s: %llu rows loaded%s", j->in.name, (unsigned long long)j->rows,
         invalid ? " (invalid rows parked in the bag)" : "");
    return save_move(
        j, ST_LOADED, "loaded",
        json_pack("{s:I,s:I}", "rows", (json_int_t)j->rows, "invalid", (json_int_t)invalid));
fail:
    json_decref(parked);
    control_free(ctl, j->insp.n);
    free(pres);
    if (j->tg && began)
        j->tg->ops->rollback(j->tg);
    if (j->tg && j->tg->reject.set) {
        /* The target table's own rules refused a row: the partner's data,
         * not a failure of the target. */
        struct target_reject *tr = &j->tg->reject;
        const char *part = NULL;
        for (size_t i = 0; i < j->insp.n && part_first; i++)
            if (!j->insp.parts[i].rejected && part_first[i] <= tr->seq)
                part = j->insp.parts[i].name;
        report_add(&j->rep, part, tr->line, 0, *tr->column ? tr->column : NULL, NULL, 0,
                   "target_refused", "%s", tr->message);
        memset(tr, 0, sizeof *tr); /* the target stays open for the next intake */
        free(part_first);
        j->tg = NULL;
        return reject(j, "target");
    }
    free(part_first);
    if (j->tg)
        target_drop(j->pl, j->p); /* a failed connection is not reused */
    j->tg = NULL;
    step_failed(j, &e);
    return -1;
}

/* ---- seal ----------------------------------------------------------- */

static char *bag_dir_for(const struct job *j)
{
    time_t t = (time_t)(j->in.created_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return xasprintf("%s/%s/%04d/%02d/%02d/%s",
                     j->in.outcome == OUT_REJECTED ? j->pl->cfg->rejects_dir
                                                   : j->pl->cfg->archive_dir,
                     j->p->name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, j->in.id);
}

static char *evidence_line(const struct job *j)
{
    json_t *insp = j->in.info ? json_object_get(j->in.info, "inspection") : NULL;
    json_t *parts = insp ? json_object_get(insp, "parts") : NULL, *pt;
    size_t i, len = 0;
    char buf[1024] = "";
    json_array_foreach(parts, i, pt)
    {
        json_t *enc = json_object_get(pt, "encoding");
        const char *cs = enc ? json_string_value(json_object_get(enc, "charset")) : NULL;
        const char *how = enc ? json_string_value(json_object_get(enc, "method")) : NULL;
        const char *fmt = json_string_value(json_object_get(pt, "format"));
        const char *nm = json_string_value(json_object_get(pt, "name"));
        len += (size_t)snprintf(buf + len, sizeof buf > len ? sizeof buf - len : 0,
                                "%s%s: %s %s (%s)", i ? "; " : "", nm ? nm : "?", fmt ? fmt : "?",
                                cs ? cs : "?", how ? how : "?");
        if (len >= sizeof buf)
            break;
    }
    return xstrdup(buf);
}

static int lock_chain(const struct wharf_config *cfg, struct werr *e)
{
    char *path = xasprintf("%s/chain.lock", cfg->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    free(path);
    if (fd < 0) {
        werr_sys(e, "chain lock");
        return -1;
    }
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            werr_sys(e, "chain lock");
            close(fd);
            return -1;
        }
    return fd;
}

/* The owner of this node's bag temp dirs (bag_stage): its node name in the
 * characters a file name may safely hold, at most 24 of them ("local"
 * without one), and the first 12 hex digits of the whole name's SHA-256,
 * so that two nodes whose names differ only in what was cut or replaced
 * never share a temp dir.  The runner runs one job on an intake at a time
 * and a node one process, so an existing temp dir of that name is an
 * attempt of this node killed before it finished. */
static const char *stage_owner(char out[40])
{
    const char *n = ledger_node() && *ledger_node() ? ledger_node() : "local";
    char hex[SHA256_HEX_LEN];
    size_t i;
    for (i = 0; n[i] && i < 24; i++)
        out[i] =
            isalnum((unsigned char)n[i]) || n[i] == '.' || n[i] == '_' || n[i] == '-' ? n[i] : '_';
    sha256_hex(n, strlen(n), hex);
    snprintf(out + i, 40 - i, "-%.12s", hex);
    return out;
}

/* loaded | rejected -> sealed */
static int step_seal(struct job *j)
{
    struct werr e = {0}, se = {0};
    struct chain_link cl, own;
    char head[SHA256_HEX_LEN];
    bool has_own = false;
    char tm[SHA256_HEX_LEN], prev[SHA256_HEX_LEN];
    char *dir = bag_dir_for(j), *payload_name = xasprintf("data/%s", j->in.name);
    char *received = NULL, *rows = NULL, *evidence = NULL, *invalid_rows = NULL,
         *control_line = NULL;
    json_t *parked = j->in.info ? json_object_get(j->in.info, "invalid_rows") : NULL;
    json_t *pfiles = parked ? json_object_get(parked, "files") : NULL, *pf;
    json_t *cfile = j->in.info ? json_object_get(j->in.info, "control_file") : NULL;
    size_t np = 0, max_files = 4 + json_array_size(pfiles);
    struct bag_file *files = xcalloc(max_files, sizeof *files);
    char **paths = xcalloc(max_files, sizeof *paths);
    struct bag_kv kv[16];
    size_t nf = 0, nk = 0, pi;
    int lock = -1, r = -1;
    bool ledger_locked = false;
    struct bag_stage *stage = NULL;
    char ts[32], owner[40];

    /* The original was written and fsynced by the take step with this hash:
     * the bag links it rather than copying it again. */
    files[nf++] =
        (struct bag_file){.name = payload_name, .src_path = j->original, .sha256 = j->in.sha256};
    paths[np++] = xasprintf("%s/report.json", j->workdir);
    paths[np++] = xasprintf("%s/report.txt", j->workdir);
    if (access(paths[0], F_OK) == 0) {
        files[nf++] = (struct bag_file){.name = "report.json", .src_path = paths[0]};
        files[nf++] = (struct bag_file){.name = "report.txt", .src_path = paths[1]};
    }
    /* The partner's control file is evidence: sealed next to the original,
     * exactly the bytes the load compared (checked against their hash). */
    if (cfile && json_object_get(cfile, "sha256")) {
        const char *bn = json_string_value(json_object_get(cfile, "bag"));
        const char *csha = json_string_value(json_object_get(cfile, "sha256"));
        if (!bn || !csha || strncmp(bn, "data/", 5) || strchr(bn + 5, '/') ||
            !strcmp(bn, payload_name)) {
            werr_set(&se, "ledger evidence control_file is malformed");
            goto staged;
        }
        paths[np] = xasprintf("%s/control", j->workdir);
        files[nf++] = (struct bag_file){.name = bn, .src_path = paths[np++], .sha256 = csha};
    }
    /* Exactly the invalid-row files the load step recorded; one missing
     * from the work dir is an error, never a silent gap in the bag. */
    json_array_foreach(pfiles, pi, pf)
    {
        const char *work = json_string_value(json_object_get(pf, "work"));
        const char *name = json_string_value(json_object_get(pf, "bag"));
        if (!work || !name || strchr(work, '/') || strchr(name, '/')) {
            werr_set(&se, "ledger evidence invalid_rows.files[%zu] is malformed", pi);
            goto staged;
        }
        paths[np] = xasprintf("%s/%s", j->workdir, work);
        if (access(paths[np], F_OK) < 0) {
            werr_sys(&se, "invalid rows of %s: %s", json_string_value(json_object_get(pf, "part")),
                     paths[np]);
            np++;
            goto staged;
        }
        files[nf++] = (struct bag_file){.name = name, .src_path = paths[np++]};
    }
    /* Everything of the bag that does not name the chain head is written
     * and made durable before the lock: under it only bag-info.txt and the
     * tag manifest are filled, and the bag renamed into place (bag.h). */
    stage = bag_stage(dir, stage_owner(owner), files, nf, &se);
    if (stage)
        crash_point("bag_staged");
staged: /* a failure here (se) counts only if the bag is still to be made */
    if ((lock = lock_chain(j->pl->cfg, &e)) < 0)
        goto fail;
    if (ledger_chain_lock(j->pl->ledger, true, &e) < 0)
        goto fail;
    ledger_locked = true;
    if (ledger_chain_state(j->pl->ledger, j->in.id, head, &own, &has_own, &e) < 0)
        goto fail;
    if (has_own) {
        /* Crash after the chain append: the bag is in place. */
        memcpy(tm, own.tagmanifest, SHA256_HEX_LEN);
        cl = own;
        goto sealed;
    }
    if (!stage) {
        e = se;
        goto fail;
    }
    /* A bag left by a crash before the chain append is reused only if it
     * names the current chain head; otherwise it is rebuilt. */
    if (access(dir, F_OK) == 0 &&
        (bag_info_get(dir, "Wharf-Previous-Link", prev, sizeof prev) < 0 || strcmp(prev, head)) &&
        rmtree(dir, &e) < 0)
        goto fail;

    format_time_ms(j->in.created_ms, ts);
    received = xstrdup(ts);
    rows = xasprintf("%llu", (unsigned long long)j->in.rows);
    evidence = evidence_line(j);
    kv[nk++] = (struct bag_kv){"External-Identifier", j->in.id};
    kv[nk++] = (struct bag_kv){"Wharf-Profile", j->p->name};
    kv[nk++] = (struct bag_kv){"Wharf-Source", j->in.source};
    kv[nk++] = (struct bag_kv){"Wharf-Source-Path", j->in.path};
    kv[nk++] = (struct bag_kv){"Wharf-Original-Name", j->in.name};
    kv[nk++] = (struct bag_kv){"Wharf-Original-SHA256", j->in.sha256};
    kv[nk++] = (struct bag_kv){"Wharf-Received", received};
    kv[nk++] = (struct bag_kv){"Wharf-Detected", evidence};
    kv[nk++] = (struct bag_kv){"Wharf-Outcome", outcome_name(j->in.outcome)};
    kv[nk++] = (struct bag_kv){"Wharf-Rows-Loaded", rows};
    if (parked) {
        invalid_rows =
            xasprintf("%" PRIu64, (uint64_t)json_integer_value(json_object_get(parked, "rows")));
        kv[nk++] = (struct bag_kv){"Wharf-Invalid-Rows", invalid_rows};
    }
    json_t *tg = j->in.info ? json_object_get(j->in.info, "target") : NULL;
    kv[nk++] = (struct bag_kv){"Wharf-Target", tg ? json_string_value(tg) : "none"};
    json_t *cv = j->in.info ? json_object_get(j->in.info, "control") : NULL;
    if (cv) {
        /* The partner's control totals against what was received. */
        const char *m = json_string_value(json_object_get(cv, "message"));
        if (m && !strncmp(m, "control: ", 9))
            m += 9;
        control_line = xasprintf(
            "%s: %s", json_is_true(json_object_get(cv, "ok")) ? "agree" : "differ", m ? m : "");
        kv[nk++] = (struct bag_kv){"Wharf-Control", control_line};
    }
    if (j->in.replay_of)
        kv[nk++] = (struct bag_kv){"Wharf-Replay-Of", j->in.replay_of};
    kv[nk++] = (struct bag_kv){"Wharf-Previous-Link", head};
    if (bag_finish(stage, kv, nk, tm, &e) < 0)
        goto fail;
    crash_point("bag_sealed");
    if (ledger_chain_append(j->pl->ledger, j->in.id, tm, &cl, &e) < 0)
        goto fail;
    crash_point("chain_appended");
sealed:
    if (ledger_locked) { /* the link is in: other nodes may seal */
        ledger_locked = false;
        if (ledger_chain_lock(j->pl->ledger, false, &e) < 0)
            wlog(LOG_WARN, j->p->name, j->in.id, "ledger", NULL, "%s", e.msg);
    }
    close(lock); /* and this node's other workers */
    lock = -1;
    free(j->in.bag);
    j->in.bag = xstrdup(dir);
    info_set(j, "bag", json_string(dir));
    info_set(j, "chain_link", json_string(cl.link));
    info_set(j, "tagmanifest_sha256", json_string(tm));
    info_set(j, "sealed_ms", json_integer((json_int_t)now_ms()));
    wlog(LOG_INFO, j->p->name, j->in.id, "sealed", NULL, "%s sealed in %s (link %.16s...)",
         j->in.name, dir, cl.link);
    /* Durable: after this the source file may be deleted. */
    if (ledger_set_durable(j->pl->ledger, true, &e) < 0)
        goto fail;
    r = save_move(
        j, ST_SEALED, "sealed",
        json_pack("{s:s,s:s,s:s}", "bag", dir, "tagmanifest_sha256", tm, "link", cl.link));
    ledger_set_durable(j->pl->ledger, false, &e);
    goto out;
fail:
    step_failed(j, &e);
out:
    if (ledger_locked) {
        struct werr ue;
        if (ledger_chain_lock(j->pl->ledger, false, &ue) < 0)
            wlog(LOG_WARN, j->p->name, j->in.id, "ledger", NULL, "%s", ue.msg);
    }
    if (lock >= 0)
        close(lock);
    bag_stage_free(stage);
    for (size_t i = 0; i < np; i++)
        free(paths[i]);
    free(paths);
    free(files);
    free(invalid_rows);
    free(control_line);
    free(dir);
    free(payload_name);
    free(received);
    free(rows);
    free(evidence);
    return r;
}

/*
 * sealed: the receipt (profile `receipt:`), a step of its own before the
 * source is finished.  Recorded in info.receipt:
 *
 *   {"files": [{"name": "...", "sha256": "..."}], "attempts": N,
 *    "delivered_ms": T | "failed": "why", "error": "last transient error"}
 *
 *   1. build each format once into work/<id>/receipt.<ext> (durable); a
 *      re-run after a crash re-delivers those same bytes;
 *   2. deliver each to the outbox under <name>.<intake>.receipt.<ext>
 *      (temp name, then a rename/link that never replaces a file: an
 *      existing file with our bytes is a delivery before a crash, any other
 *      is the partner's and is kept);
 *   3. record delivered_ms and the event "receipt" with every hash.
 *
 * A transient failure (server down) is retried with the profile's backoff,
 * counted apart from the intake's own attempts; a permanent one, or the
 * last attempt, records "failed" and the event "receipt_failed", logs an
 * error, and the intake goes on: a receipt never changes an outcome.
 */
static int deliver_receipt(struct job *j, const char *name, const char *data, size_t len,
                           struct sftp_push *sp, bool *sp_open, struct werr *e)
{
    const struct receipt_conf *rc = &j->p->receipt;
    if (rc->dir)
        return receipt_put_local(rc->dir, name, data, len, e);
    if (!*sp_open) {
        const char *kh =
            j->p->source.known_hosts ? j->p->source.known_hosts : j->pl->cfg->known_hosts;
        if (sftp_push_open(sp, &j->p->source, kh, e) < 0)
            return -1;
        *sp_open = true;
    }
    return sftp_push_put(sp, rc->path, name, data, len, e);
}

static int step_receipt(struct job *j)
{
    const struct receipt_conf *rc = &j->p->receipt;
    json_t *ri = j->in.info ? json_object_get(j->in.info, "receipt") : NULL;
    static const char *const exts[] = {"json", "csv"};
    struct werr e = {0};
    struct sftp_push sp;
    bool sp_open = false;
    json_t *files = json_array();
    int r = -1;

    if (!rc->enabled ||
        (ri && (json_object_get(ri, "delivered_ms") || json_object_get(ri, "failed")))) {
        json_decref(files);
        return 0;
    }
    ri = ri ? json_deep_copy(ri) : json_object();
    for (int k = 0; k < 2; k++) {
        if ((k == 0 && !rc->json) || (k == 1 && !rc->csv))
            continue;
        char *name = receipt_name(&j->in, exts[k]);
        char *path = xasprintf("%s/receipt.%s", j->workdir, exts[k]), *data = NULL;
        char sha[SHA256_HEX_LEN];
        size_t len = 0;
        int d;
        if (!name) {
            werr_setk(&e, WERR_HOSTILE, "the file name cannot name a receipt");
            free(path);
            goto failed;
        }
        if (access(path, F_OK) < 0) {
            char *rep = xasprintf("%s/report.json", j->workdir), *prev = NULL, *text;
            struct intake old = {.name = j->in.name};
            json_t *doc;
            json_t *sm = json_object_get(j->in.info, "sealed_ms");
            if (j->in.replay_of) {
                snprintf(old.id, sizeof old.id, "%s", j->in.replay_of);
                prev = receipt_name(&old, exts[k]);
            }
            doc = receipt_build(&j->in, sm ? json_integer_value(sm) : j->in.updated_ms,
                                access(rep, F_OK) == 0 ? rep : NULL, rc->max_problems, prev, &e);
            free(rep);
            free(prev);
            if (!doc) {
                free(name);
                free(path);
                goto failed;
            }
            text = k == 0 ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : receipt_csv(doc);
            json_decref(doc);
            d = durable_write(path, text, strlen(text), &e);
            free(text);
            if (d < 0) {
                free(name);
                free(path);
                goto retry;
            }
            crash_point("receipt_built");
        }
        if (receipt_read(path, &data, &len, &e) < 0) {
            free(name);
            free(path);
            goto retry;
        }
        sha256_hex(data, len, sha);
        d = deliver_receipt(j, name, data, len, &sp, &sp_open, &e);
        free(data);
        free(path);
        if (d < 0) {
            free(name);
            if (werr_transient(&e))
                goto retry;
            goto failed;
        }
        crash_point("receipt_put");
        json_array_append_new(files, json_pack("{s:o,s:s,s:b}", "name", esc_json(name), "sha256",
                                               sha, "again", d == 0));
        wlog(LOG_INFO, j->p->name, j->in.id, "receipt",
             json_pack("{s:s,s:s}", "receipt", name, "sha256", sha), "receipt %s delivered%s", name,
             d == 0 ? " (already in place)" : "");
        free(name);
    }
    json_object_set(ri, "files", files);
    json_object_set_new(ri, "delivered_ms", json_integer((json_int_t)now_ms()));
    json_object_del(ri, "error");
    info_set(j, "receipt", ri);
    ri = NULL;
    if (save(j) < 0)
        goto out;
    if (ledger_event(j->pl->ledger, j->in.id, "receipt", json_pack("{s:O}", "files", files), &e) <
        0)
        goto out;
    r = 0;
    goto out;
retry : {
    json_int_t att = json_integer_value(json_object_get(ri, "attempts")) + 1;
    json_object_set_new(ri, "attempts", json_integer(att));
    if (att < j->p->retry.max_attempts) {
        double delay = (double)backoff_delay(&j->p->retry, (int)att);
        json_object_set_new(ri, "error", esc_json(e.msg));
        info_set(j, "receipt", ri);
        ri = NULL;
        j->in.next_attempt_ms = now_ms() + (int64_t)delay;
        wlog(LOG_WARN, j->p->name, j->in.id, "receipt_retry", NULL,
             "receipt not delivered: %s; attempt %d of %d, next in %.1fs", e.msg, (int)att,
             j->p->retry.max_attempts, delay / 1000);
        save(j);
        goto out;
    }
}
failed:
    json_object_set_new(ri, "failed", esc_json(e.msg));
    info_set(j, "receipt", ri);
    ri = NULL;
    wlog(LOG_ERROR, j->p->name, j->in.id, "receipt_failed", NULL,
         "receipt NOT delivered: %s (the intake's outcome stands; see %s)", e.msg,
         werr_kind_runbook(e.kind));
    if (save(j) < 0)
        goto out;
    {
        struct werr le;
        ledger_event(j->pl->ledger, j->in.id, "receipt_failed", jstr("error", e.msg), &le);
    }
    r = 0;
out:
    if (sp_open)
        sftp_push_close(&sp);
    json_decref(ri);
    json_decref(files);
    return r;
}

/* sealed -> done */
static int step_finish(struct job *j)
{
    struct werr e = {0};
    if (step_receipt(j) < 0)
        return -1; /* retried later: the intake stays sealed */
    if (finish_source(j, &e) < 0) {
        /* Never re-ingests: the intake stays sealed and finish is retried
         * (at once on another connection, when this one could not open). */
        if (!j->no_source || !j->no_source->msg[0])
            step_failed(j, &e);
        return -1;
    }
    if (move(j, ST_DONE, "done", NULL) < 0)
        return -1;
    if (rmtree(j->workdir, &e) < 0)
        wlog(LOG_WARN, j->p->name, j->in.id, "cleanup", NULL, "%s", e.msg);
    return 0;
}

struct first_ctx {
    const char *me;
    char id[ID_LEN];
};

/* The first unfinished intake (in claim order) before `me` whose rows are
 * not in the target yet; stops at `me`. */
static int first_cb(void *ctx, const struct intake *in)
{
    struct first_ctx *x = ctx;
    if (strcmp(in->id, x->me) >= 0)
        return 1;
    if (in->state == ST_LOADED || in->state == ST_REJECTED || in->state == ST_SEALED)
        return 0; /* loaded (or refused) already: only its seal or finish is left */
    snprintf(x->id, sizeof x->id, "%s", in->id);
    return 1;
}

/*
 * A feed that must load in sequence (`order:` with `concurrency: 1`): its
 * rows are loaded (or its file delivered) only when no earlier intake of
 * the profile is still short of that -- being worked on by another node,
 * waiting for a retry after a transient failure, or left by a crash.  A
 * later file never overtakes an earlier one silently; it is held, in the
 * state it reached, until the earlier one is loaded, rejected or failed
 * for good (a reject or a failure is loud on its own and holds nothing;
 * an earlier one only waiting for its seal or its finish holds nothing
 * either: its rows are in).  1 when held
 * (logged the first time, with an event naming the earlier intake), 0 when
 * it may go on, -1 when the ledger could not say.
 */
static int held_behind(struct job *j)
{
    struct intake_filter f = {.profile = j->p->name, .state = -1, .unfinished = true};
    struct first_ctx x = {.me = j->in.id};
    const char *first = x.id;
    struct werr e;
    if (j->p->order == ORDER_NONE || j->p->concurrency != 1)
        return 0;
    if (ledger_list(j->pl->ledger, &f, first_cb, &x, &e) < 0) {
        wlog(LOG_ERROR, j->p->name, j->in.id, "ledger", NULL, "%s", e.msg);
        return -1;
    }
    if (!first[0])
        return 0;
    json_t *h = j->in.info ? json_object_get(j->in.info, "held_behind") : NULL;
    if (!json_is_string(h) || strcmp(json_string_value(h), first)) {
        wlog(LOG_INFO, j->p->name, j->in.id, "held", NULL,
             "%s waits for the earlier intake %s (order: %s, concurrency: 1): it is not finished",
             j->in.name, first, j->p->order == ORDER_NAME ? "name" : "mtime");
        if (!j->in.info)
            j->in.info = json_object();
        json_object_set_new(j->in.info, "held_behind", json_string(first));
        if (save(j) < 0)
            return -1;
        ledger_event(j->pl->ledger, j->in.id, "held", json_pack("{s:s}", "behind", first), &e);
    }
    return 1;
}

/*
 * An intake in progress whose copy is not in this node's work/ -- taken
 * over from a node that died (its work/ died with it, and the runner
 * removes any old copy of ours when it takes one over: another node's
 * partial state is never trusted), or a work/ lost with a disk -- has its
 * take redone from the source, which is only finished after sealing:
 *   taken, inspected, validated, rejected: back to found (event "retake")
 *     and every step runs again; nothing of it is in the target (a load
 *     that committed just before the crash is found by its wharf_loads
 *     row, as after any crash);
 *   loaded: the target holds its rows, so only the original is fetched
 *     again, and it must be the bytes that were loaded (the sha256 in the
 *     ledger) before it is sealed;
 *   found, sealed, done, failed: nothing local is needed.
 * Returns 0 to go on, -1 when the intake stops here.
 */
static int recover_local(struct job *j)
{
    struct werr e = {0};
    char sha[SHA256_HEX_LEN];
    enum intake_state was = j->in.state;

    if (was != ST_TAKEN && was != ST_INSPECTED && was != ST_VALIDATED && was != ST_REJECTED &&
        was != ST_LOADED)
        return 0;
    if (access(j->original, F_OK) == 0)
        return 0;
    if (was != ST_LOADED) {
        wlog(LOG_INFO, j->p->name, j->in.id, "retake", NULL,
             "%s: no copy in this node's work directory; the take is redone from the source",
             state_name(was));
        if (rmtree(j->workdir, &e) < 0)
            goto fail;
        return move(j, ST_FOUND, "retake",
                    json_pack("{s:s,s:s}", "state", state_name(was), "node",
                              ledger_node() ? ledger_node() : ""));
    }
    if (rmtree(j->workdir, &e) < 0 || fetch_original(j, sha, &e) < 0)
        goto fail;
    if (strcmp(sha, j->in.sha256)) {
        unlink(j->original);
        werr_setk(&e, WERR_CORRUPT,
                  "%s changed in the source since it was loaded (sha256 %s now, %s loaded): its "
                  "copy on the node that loaded it is lost, so it cannot be sealed",
                  j->in.name, sha, j->in.sha256);
        goto fail;
    }
    wlog(LOG_INFO, j->p->name, j->in.id, "retake", NULL,
         "loaded: no copy in this node's work directory; fetched again from the source (the same "
         "sha256) to seal it");
    if (ledger_event(j->pl->ledger, j->in.id, "retake",
                     json_pack("{s:s,s:s,s:s}", "state", "loaded", "node",
                               ledger_node() ? ledger_node() : "", "sha256", sha),
                     &e) < 0)
        goto fail;
    return 0;
fail:
    step_failed(j, &e);
    return -1;
}

int pipeline_advance(struct pipeline *pl, const char *id, struct pipeline_stats *st)
{
    struct werr e;
    return pipeline_advance_to(pl, id, -1, false, st, &e);
}

int pipeline_advance_to(struct pipeline *pl, const char *id, int until, bool soft_connect,
                        struct pipeline_stats *st, struct werr *no_source)
{
    struct job j = {.pl = pl, .soft_connect = soft_connect, .no_source = no_source};
    struct werr e;
    int r, final = -1;

    memset(no_source, 0, sizeof *no_source);
    r = ledger_get(pl->ledger, id, &j.in, &e);
    if (r <= 0) {
        wlog(LOG_ERROR, NULL, id, "ledger", NULL, "%s", r < 0 ? e.msg : "no such intake");
        return -1;
    }
    j.p = profiles_find(pl->profiles, j.in.profile);
    if (!j.p) {
        wlog(LOG_WARN, j.in.profile, id, "no_profile", NULL,
             "profile %s is not loaded; intake left in state %s", j.in.profile,
             state_name(j.in.state));
        intake_clear(&j.in);
        return -1;
    }
    /* Another node's (ledger.h, "Nodes and leases"): under a live lease it
     * is advancing it; once the lease expired, this node's runner takes it
     * over first (ledger_lease_takeover, with its event) and then it is
     * this node's. */
    if (j.in.node && ledger_node() && strcmp(j.in.node, ledger_node()) && j.in.state != ST_DONE &&
        j.in.state != ST_FAILED) {
        wlog(LOG_DEBUG, j.p->name, id, "other_node", NULL, "held by node %s; left to it",
             j.in.node);
        final = (int)j.in.state;
        intake_clear(&j.in);
        return final;
    }
    ledger_set_durable(pl->ledger, false, &e);
    j.workdir = xasprintf("%s/%s", pl->cfg->work_dir, j.in.id);
    j.original = xasprintf("%s/original", j.workdir);
    j.partsdir = xasprintf("%s/parts", j.workdir);
    report_init(&j.rep, (size_t)j.p->limits.max_errors);

    bool held = false;
    if (recover_local(&j) < 0)
        goto stopped;
    for (;;) {
        enum intake_state before = j.in.state;
        enum obs_hist stage = OBS__HISTS;
        int64_t t0 = obs_now_ns();
        if (pipeline_stopping() && before != ST_DONE && before != ST_FAILED)
            break; /* safe point: the state is committed; resume next start */
        if (until >= 0 && (int)before >= until)
            break; /* states are ordered: as far as asked, or further */
        /* the steps that change the target or the partner's directory wait
         * for the earlier intakes of an ordered feed */
        bool delivers = j.p->outbound && (before == ST_VALIDATED ||
                                          (before == ST_TAKEN && !outbound_validates(j.p)));
        bool loads = !j.p->outbound && (before == ST_INSPECTED || before == ST_VALIDATED);
        if ((delivers || loads) && (r = held_behind(&j)) != 0) {
            held = r > 0;
            break;
        }
        switch (before) {
        case ST_FOUND:
            stage = OBS_STAGE_TAKE;
            r = step_take(&j);
            break;
        case ST_TAKEN:
            if (!j.p->outbound) {
                stage = OBS_STAGE_INSPECT;
                r = step_inspect(&j);
            } else if (outbound_validates(j.p)) {
                stage = OBS_STAGE_VALIDATE;
                r = step_check_outbound(&j);
            } else {
                stage = OBS_STAGE_DELIVER;
                r = step_deliver(&j);
            }
            break;
        case ST_VALIDATED:
            if (j.p->outbound) {
                stage = OBS_STAGE_DELIVER;
                r = step_deliver(&j);
                break;
            }
            /* fall through */
        case ST_INSPECTED:
            report_free(&j.rep);
            report_init(&j.rep, (size_t)j.p->limits.max_errors);
            stage = OBS_STAGE_LOAD;
            r = step_load(&j);
            j.tg = NULL;
            break;
        case ST_LOADED:
        case ST_REJECTED:
            stage = OBS_STAGE_SEAL;
            r = step_seal(&j);
            break;
        case ST_SEALED:
            stage = OBS_STAGE_FINISH;
            r = step_finish(&j);
            break;
        default:
            r = -1;
        }
        if (stage != OBS__HISTS)
            obs_since(stage, t0);
        if (r < 0 || j.in.state == before || j.in.state == ST_DONE || j.in.state == ST_FAILED)
            break;
    }
    if (no_source->msg[0]) {
        final = PIPELINE_NO_CONNECTION;
        st = NULL;
    } else if (until >= 0 && (int)j.in.state >= until && j.in.state != ST_DONE &&
               j.in.state != ST_FAILED)
        st = NULL; /* went where it was asked to: the next job counts it */
stopped:
    /* Back to full durability for whoever uses the ledger next; what was
     * relaxed reaches the disk with the next full commit. */
    ledger_set_durable(pl->ledger, true, &e);
    if (final != PIPELINE_NO_CONNECTION)
        final = (int)j.in.state;
    if (st) {
        if (j.in.state == ST_DONE) {
            st->done++;
            if (j.in.outcome == OUT_LOADED)
                st->loaded++;
            else if (j.in.outcome == OUT_REJECTED)
                st->rejected++;
            else if (j.in.outcome == OUT_DUPLICATE)
                st->duplicates++;
        } else if (j.in.state == ST_FAILED)
            st->failed++;
        else if (held)
            st->held++;
        else
            st->retrying++;
    }
    if (j.have_insp)
        inspection_free(&j.insp);
    report_free(&j.rep);
    intake_clear(&j.in);
    free(j.workdir);
    free(j.original);
    free(j.partsdir);
    return final;
}

/* ---- replay --------------------------------------------------------- */

int pipeline_replay(struct pipeline *pl, const char *id, char new_id[ID_LEN], struct werr *e)
{
    struct intake old = {0}, in = {0};
    int r = ledger_get(pl->ledger, id, &old, e), c = -1;
    if (r <= 0) {
        if (r == 0)
            werr_set(e, "no intake %s", id);
        return -1;
    }
    if (old.state == ST_FAILED) {
        /* Resume where it stopped, attempts reset. */
        old.attempts = 0;
        old.next_attempt_ms = 0;
        if (ledger_update(pl->ledger, &old, e) < 0)
            goto out;
        r = ledger_transition(pl->ledger, old.id, ST_FAILED, old.failed_from, "replay",
                              json_pack("{s:s}", "resumed_at", state_name(old.failed_from)), e);
        if (r <= 0) {
            if (r == 0)
                werr_set(e, "intake %s changed state meanwhile", old.id);
            goto out;
        }
        memcpy(new_id, old.id, ID_LEN);
        c = 1;
        goto out;
    }
    const struct profile *p = profiles_find(pl->profiles, old.profile);
    /* A delivered outbound file may be re-sent: a new intake from the
     * sealed original, delivered again (step_deliver never overwrites). */
    bool resend = p && p->outbound && old.outcome == OUT_LOADED;
    if ((old.outcome != OUT_REJECTED && !resend) || !old.bag ||
        (old.state != ST_DONE && old.state != ST_SEALED)) {
        werr_set(e,
                 "intake %s is %s (outcome %s): only sealed rejects, failed intakes and "
                 "delivered outbound files can be replayed",
                 old.id, state_name(old.state), outcome_name(old.outcome));
        goto out;
    }
    if (!p) {
        werr_set(e, "profile %s is not loaded", old.profile);
        goto out;
    }
    in.profile = old.profile;
    in.source = SOURCE_REPLAY;
    in.path = old.id;
    in.name = old.name;
    in.size = old.size;
    in.mtime_ns = 0;
    c = ledger_claim(pl->ledger, &in, e);
    if (c == 1) {
        /* Link both ways. */
        struct intake fresh = {0};
        if (ledger_get(pl->ledger, in.id, &fresh, e) <= 0) {
            c = -1;
            goto out;
        }
        fresh.replay_of = xstrdup(old.id);
        free(old.replayed_by);
        old.replayed_by = xstrdup(in.id);
        if (ledger_update(pl->ledger, &fresh, e) < 0 || ledger_update(pl->ledger, &old, e) < 0)
            c = -1;
        ledger_event(pl->ledger, old.id, "replayed", json_pack("{s:s}", "by", in.id), e);
        intake_clear(&fresh);
        memcpy(new_id, in.id, ID_LEN);
    } else if (c == 0) {
        if (old.replayed_by)
            memcpy(new_id, old.replayed_by,
                   strlen(old.replayed_by) + 1 <= ID_LEN ? strlen(old.replayed_by) + 1 : ID_LEN);
        else
            new_id[0] = 0;
    }
out:
    intake_clear(&old);
    return c;
}
