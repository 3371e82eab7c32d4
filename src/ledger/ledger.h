/*
 * ledger: the durable record of every intake, its state transitions and
 * events, the sightings that decide completeness, and the hash chain over
 * sealed bags.  SQLite now (ledger_sqlite.c); PostgreSQL later for several
 * nodes sharing work.  Nothing backend-specific leaks out of this header.
 *
 * States (see pipeline.c for what each step does):
 *
 *   found -> taken -> inspected -> validated -> loaded -> sealed -> done
 *                         \            \
 *                          +------------+--> rejected -> sealed -> done
 *   any unfinished state -> failed (parked for the operator; replayable)
 *   found -> skipped (duplicate content)
 *
 * Every transition is a compare-and-set (from -> to) committed durably
 * before the caller acts on the outside world.
 */
#ifndef WHARF_LEDGER_H
#define WHARF_LEDGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/ids.h"
#include "util/sha256.h"

enum intake_state {
    ST_FOUND,
    ST_TAKEN,
    ST_INSPECTED,
    ST_VALIDATED,
    ST_LOADED,
    ST_REJECTED,
    ST_SEALED,
    ST_DONE,
    ST_FAILED,
    ST__COUNT
};

const char *state_name(enum intake_state s);
int state_parse(const char *s, enum intake_state *out);

enum outcome { OUT_NONE, OUT_LOADED, OUT_REJECTED, OUT_DUPLICATE };
const char *outcome_name(enum outcome o);

struct intake {
    char id[ID_LEN];
    char *profile;
    char *source; /* "spool:/path" or "sftp://user@host:port/path" */
    char *path;   /* relative path in the source (partner bytes: escape to show) */
    char *name;   /* original file name (partner bytes: escape to show) */
    uint64_t size;
    int64_t mtime_ns;
    char sha256[SHA256_HEX_LEN]; /* "" until taken */
    enum intake_state state;
    enum intake_state failed_from; /* for ST_FAILED: where it stopped */
    enum outcome outcome;
    int attempts;
    int64_t next_attempt_ms;
    char *last_error; /* display text, escaped where it is made (util/escape.h) */
    int64_t created_ms, updated_ms;
    uint64_t rows;
    char *bag;              /* bag directory once sealed */
    char *replay_of;        /* intake id this one replays */
    char *replayed_by;      /* newest replay of this one */
    json_t *info;           /* evidence: encoding, format, target... (object) */
    char *node;             /* the node holding it (NULL: none); read only, see ledger_identity */
    int64_t lease_until_ms; /* its lease (0: none) */
};

struct intake_filter {
    const char *profile;
    int state;                /* -1: any */
    bool unfinished;          /* not done / failed */
    bool rejects;             /* outcome rejected and not replayed */
    int64_t since_ms;         /* sealed at or after; 0: any */
    int64_t limit;            /* 0: all */
    bool with_failed;         /* with rejects: failed intakes too */
    bool newest_first;        /* descending id (ids sort by creation time) */
    int64_t updated_since_ms; /* updated at or after; 0: any */
};

struct chain_link {
    int64_t seq;
    char intake[ID_LEN];
    char tagmanifest[SHA256_HEX_LEN];
    char prev[SHA256_HEX_LEN];
    char link[SHA256_HEX_LEN];
    int64_t time_ms;
};

typedef int (*intake_fn)(void *ctx, const struct intake *in);
typedef int (*event_fn)(void *ctx, int64_t time_ms, const char *kind, const char *detail_json);
typedef int (*chain_fn)(void *ctx, const struct chain_link *cl);
/* A file seen in a source: appeared_ms when its path was first seen (kept
 * while it grows), first_seen_ms when it was first seen at this size and
 * mtime. */
struct sighting {
    const char *path;
    uint64_t size;
    int64_t mtime_ns, appeared_ms, first_seen_ms, last_seen_ms;
};
typedef int (*sighting_fn)(void *ctx, const struct sighting *sg);

/* A table as `wharf ledger migrate` copies it (ledger_copy.c): its name and
 * columns, the same on every backend.  A row is handed over as ncols
 * NUL-terminated texts, NULL for SQL NULL; integers in decimal. */
struct ledger_table {
    const char *name;
    const char *const *cols;
    int ncols;
};
typedef int (*ledger_row_fn)(void *ctx, const char *const *vals);

/* A wharf node as the ledger knows it (`wharf status`): registered by its
 * heartbeat, or only seen holding intakes (pid 0, heartbeat_ms 0). */
struct node_info {
    const char *name;
    int64_t pid;
    int64_t started_ms;   /* when that process started */
    int64_t heartbeat_ms; /* its last heartbeat */
    uint64_t in_progress; /* intakes in progress it holds */
    uint64_t expired;     /* of those, with a lease expired at `now` */
};
typedef int (*node_fn)(void *ctx, const struct node_info *n);
/* An intake taken over: its id and the node that held it (NULL: none). */
typedef int (*takeover_fn)(void *ctx, const char *id, const char *from_node);

/* An operator's action (pause, resume, poll, replay), kept append-only in
 * the ledger's actions table for `wharf show --profile` and the console's
 * audit page: who, when, what, on which profile or intake, and how it
 * ended (ok, and result: what came of it, or why it failed). */
struct action {
    int64_t time_ms;
    const char *actor;   /* console user, or "cli:<unix user>" */
    const char *action;  /* "pause", "resume", "poll", "replay" */
    const char *profile; /* NULL when only an intake is named */
    const char *intake;  /* NULL for a profile's action */
    bool ok;
    const char *result; /* "paused", "replayed as ID", the error, ...; may be NULL */
};
typedef int (*action_fn)(void *ctx, const struct action *a);

struct ledger;

struct ledger_ops {
    int (*claim)(struct ledger *l, struct intake *in, struct werr *e);
    /* optional: NULL claims one by one (ledger_claim_batch) */
    int (*claim_batch)(struct ledger *l, struct intake *v, size_t n, int *claimed,
                       void (*between)(size_t i), struct werr *e);
    int (*transition)(struct ledger *l, const char *id, enum intake_state from,
                      enum intake_state to, const char *kind, json_t *detail, struct werr *e);
    int (*transition_update)(struct ledger *l, const struct intake *in, enum intake_state from,
                             enum intake_state to, const char *kind, json_t *detail,
                             struct werr *e);
    int (*update)(struct ledger *l, const struct intake *in, struct werr *e);
    int (*event)(struct ledger *l, const char *id, const char *kind, json_t *detail,
                 struct werr *e);
    int (*get)(struct ledger *l, const char *id, struct intake *out, struct werr *e);
    int (*list)(struct ledger *l, const struct intake_filter *f, intake_fn fn, void *ctx,
                struct werr *e);
    int (*events)(struct ledger *l, const char *id, event_fn fn, void *ctx, struct werr *e);
    int (*find_loaded)(struct ledger *l, const char *profile, const char *sha256, char id[ID_LEN],
                       struct werr *e);
    int (*sighting)(struct ledger *l, const char *profile, const char *path, uint64_t size,
                    int64_t mtime_ns, int64_t now_ms, int64_t *first_seen_ms, struct werr *e);
    int (*sightings_prune)(struct ledger *l, const char *profile, int64_t before_ms,
                           struct werr *e);
    int (*unclaimed)(struct ledger *l, const char *profile, int64_t seen_since_ms, sighting_fn fn,
                     void *ctx, struct werr *e);
    int (*chain_append)(struct ledger *l, const char *id, const char *tagmanifest,
                        struct chain_link *out, struct werr *e);
    int (*chain_walk)(struct ledger *l, chain_fn fn, void *ctx, struct werr *e);
    int (*chain_lock)(struct ledger *l, bool on, struct werr *e);
    int (*poll_begin)(struct ledger *l, const char *profile, const char *node, int64_t now_ms,
                      int64_t until_ms, bool asked, struct werr *e);
    int (*poll_end)(struct ledger *l, const char *profile, const char *node, int64_t next_ms,
                    struct werr *e);
    int (*chain_state)(struct ledger *l, const char *id, char head[SHA256_HEX_LEN],
                       struct chain_link *own, bool *has_own, struct werr *e);
    int (*kv_get)(struct ledger *l, const char *key, char **value, struct werr *e);
    int (*kv_set)(struct ledger *l, const char *key, const char *value, struct werr *e);
    int (*kv_mark)(struct ledger *l, const char *key, const char *value, const char *unless,
                   struct werr *e);
    int (*check)(struct ledger *l, char **result, struct werr *e);
    int (*writable)(struct ledger *l, struct werr *e);
    int (*set_durable)(struct ledger *l, bool full, struct werr *e);
    /* bulk copy, for ledger_copy.c only (see there) */
    int (*bulk_begin)(struct ledger *l, struct werr *e);
    int (*bulk_end)(struct ledger *l, bool commit, struct werr *e);
    int (*rows)(struct ledger *l, const struct ledger_table *t, ledger_row_fn fn, void *ctx,
                struct werr *e);
    int (*put_row)(struct ledger *l, const struct ledger_table *t, const char *const *vals,
                   struct werr *e);
    const char *(*where)(struct ledger *l);
    /* nodes and leases (see ledger_node_beat below) */
    int (*node_beat)(struct ledger *l, const char *node, int64_t pid, int64_t started_ms,
                     int64_t now_ms, struct werr *e);
    int (*lease_renew)(struct ledger *l, const char *node, int64_t until_ms, uint64_t *n,
                       struct werr *e);
    int (*lease_takeover)(struct ledger *l, const char *node, const char *profiles, int64_t now_ms,
                          int64_t until_ms, int limit, takeover_fn fn, void *ctx, struct werr *e);
    int (*nodes)(struct ledger *l, int64_t now_ms, node_fn fn, void *ctx, struct werr *e);
    /* operators' actions (see struct action) */
    int (*action_add)(struct ledger *l, const struct action *a, struct werr *e);
    int (*actions)(struct ledger *l, const char *profile, int limit, action_fn fn, void *ctx,
                   struct werr *e);
    void (*close)(struct ledger *l);
};

struct ledger {
    const struct ledger_ops *ops;
    void *impl;
};

/* Opens (creating and migrating) the ledger at path. */
struct ledger *ledger_open_sqlite(const char *path, struct werr *e);
/* Connects to the PostgreSQL ledger named by dsn_file (a libpq connection
 * string or URI; NULL: the PG* environment and ~/.pgpass) and creates or
 * migrates its tables (ledger_pg.c). */
struct ledger *ledger_open_pg(const char *dsn_file, struct werr *e);
/* The ledger wharf.yaml names: type "sqlite" (path) or "postgresql"
 * (dsn_file). */
struct ledger *ledger_open(const char *type, const char *path, const char *dsn_file,
                           struct werr *e);

/* Claim a drop: inserts the intake in state found.  The claim key
 * (profile, source, path, size, mtime) is unique: returns 1 when claimed
 * (in->id filled), 0 when someone already claimed that drop, -1 on error. */
static inline int ledger_claim(struct ledger *l, struct intake *in, struct werr *e)
{
    return l->ops->claim(l, in, e);
}
/* Claim the drops of one listing together: 0 with claimed[i] 1 (v[i].id
 * filled) or 0 (claimed already) for each, -1 on error.  A backend with a
 * batch claims them in one transaction with one durable commit, none of
 * them visible to another reader before it (so nothing can be taken or
 * loaded on a claim that a power cut then takes back); on -1 none is
 * claimed.  Without one, each is its own claim, and on -1 those before the
 * failing one stay claimed (claimed[] says which).  between, when not
 * NULL, is called after each claim inside the transaction (the crash tests
 * kill the process there). */
int ledger_claim_batch(struct ledger *l, struct intake *v, size_t n, int *claimed,
                       void (*between)(size_t i), struct werr *e);
/* Compare-and-set: returns 1 when moved, 0 when the intake was not in
 * `from` (someone else moved it), -1 on error.  Records an event of `kind`
 * with detail (stolen; may be NULL). */
static inline int ledger_transition(struct ledger *l, const char *id, enum intake_state from,
                                    enum intake_state to, const char *kind, json_t *detail,
                                    struct werr *e)
{
    return l->ops->transition(l, id, from, to, kind, detail, e);
}
/* ledger_update of in's mutable fields and ledger_transition of in->id in
 * one transaction: the fields are written only when the intake moved (1);
 * 0 and -1 as ledger_transition, nothing written.  One commit where a step
 * made two. */
static inline int ledger_transition_update(struct ledger *l, const struct intake *in,
                                           enum intake_state from, enum intake_state to,
                                           const char *kind, json_t *detail, struct werr *e)
{
    return l->ops->transition_update(l, in, from, to, kind, detail, e);
}
/* Writes the mutable fields (sha256, attempts, next attempt, last error,
 * rows, bag, outcome, info, replay links) of an intake. */
static inline int ledger_update(struct ledger *l, const struct intake *in, struct werr *e)
{
    return l->ops->update(l, in, e);
}
/* Records an event of `kind` for the intake; detail is stolen (may be NULL),
 * as in ledger_transition. */
static inline int ledger_event(struct ledger *l, const char *id, const char *kind, json_t *detail,
                               struct werr *e)
{
    return l->ops->event(l, id, kind, detail, e);
}
/* 1 found, 0 no such intake (a unique prefix of an id is accepted), -1 error. */
static inline int ledger_get(struct ledger *l, const char *id, struct intake *out, struct werr *e)
{
    return l->ops->get(l, id, out, e);
}
static inline int ledger_list(struct ledger *l, const struct intake_filter *f, intake_fn fn,
                              void *ctx, struct werr *e)
{
    return l->ops->list(l, f, fn, ctx, e);
}
static inline int ledger_events(struct ledger *l, const char *id, event_fn fn, void *ctx,
                                struct werr *e)
{
    return l->ops->events(l, id, fn, ctx, e);
}
/* 1 when content with this sha256 was already loaded for the profile (id
 * filled), 0 when not. */
static inline int ledger_find_loaded(struct ledger *l, const char *profile, const char *sha256,
                                     char id[ID_LEN], struct werr *e)
{
    return l->ops->find_loaded(l, profile, sha256, id, e);
}
/* Record that (path, size, mtime) was seen now; *first_seen_ms is when it was
 * first seen with this size and mtime. */
static inline int ledger_sighting(struct ledger *l, const char *profile, const char *path,
                                  uint64_t size, int64_t mtime_ns, int64_t now_ms,
                                  int64_t *first_seen_ms, struct werr *e)
{
    return l->ops->sighting(l, profile, path, size, mtime_ns, now_ms, first_seen_ms, e);
}
static inline int ledger_sightings_prune(struct ledger *l, const char *profile, int64_t before_ms,
                                         struct werr *e)
{
    return l->ops->sightings_prune(l, profile, before_ms, e);
}
/* The profile's sightings seen at or after seen_since_ms (i.e. still in the
 * source at the last listing) that no intake claimed, oldest appearance
 * first, until fn returns non-zero. */
static inline int ledger_unclaimed(struct ledger *l, const char *profile, int64_t seen_since_ms,
                                   sighting_fn fn, void *ctx, struct werr *e)
{
    return l->ops->unclaimed(l, profile, seen_since_ms, fn, ctx, e);
}
/* link = sha256(prev link || tag manifest sha256), prev of the first = 64 '0'. */
static inline int ledger_chain_append(struct ledger *l, const char *id, const char *tagmanifest,
                                      struct chain_link *out, struct werr *e)
{
    return l->ops->chain_append(l, id, tagmanifest, out, e);
}
/* Takes (on) or releases the chain's lock across nodes, held from reading
 * the head (ledger_chain_state) until the link is appended, so that the
 * bag built in between names the link before its own (PostgreSQL: an
 * advisory lock of this connection, released with it if the node dies;
 * SQLite: nothing, the ledger is one machine's and the pipeline's file
 * lock serializes its processes). */
static inline int ledger_chain_lock(struct ledger *l, bool on, struct werr *e)
{
    return l->ops->chain_lock(l, on, e);
}
static inline int ledger_chain_walk(struct ledger *l, chain_fn fn, void *ctx, struct werr *e)
{
    return l->ops->chain_walk(l, fn, ctx, e);
}
/* The chain's current head (64 '0' when empty) and, when the intake already
 * has a link, that link (*has_own).  O(1): the seal step calls it. */
static inline int ledger_chain_state(struct ledger *l, const char *id, char head[SHA256_HEX_LEN],
                                     struct chain_link *own, bool *has_own, struct werr *e)
{
    return l->ops->chain_state(l, id, head, own, has_own, e);
}
/* Small persistent settings (pause flags, SLA alert marks). *value NULL when absent. */
static inline int ledger_kv_get(struct ledger *l, const char *key, char **value, struct werr *e)
{
    return l->ops->kv_get(l, key, value, e);
}
static inline int ledger_kv_set(struct ledger *l, const char *key, const char *value,
                                struct werr *e)
{
    return l->ops->kv_set(l, key, value, e);
}
/* Sets key to value unless it holds value already (or holds unless, when
 * not NULL), in one statement: of several callers -- threads, nodes --
 * marking the same key at once exactly one gets 1 (it changed it; it
 * sends the alert), the others 0.  -1 on a ledger error. */
static inline int ledger_kv_mark(struct ledger *l, const char *key, const char *value,
                                 const char *unless, struct werr *e)
{
    return l->ops->kv_mark(l, key, value, unless, e);
}
/* Durability of the commits that follow.  full (the default): every commit
 * is on disk when it returns.  !full: commits are atomic and survive a
 * process crash, and reach the disk with the next full commit; a power cut
 * may lose the last few.  The pipeline relaxes it only for transitions whose
 * loss re-runs an idempotent step (see pipeline.c). */
static inline int ledger_set_durable(struct ledger *l, bool full, struct werr *e)
{
    return l->ops->set_durable(l, full, e);
}
/* Integrity check of the store itself; *result "ok" when fine. */
static inline int ledger_check(struct ledger *l, char **result, struct werr *e)
{
    return l->ops->check(l, result, e);
}
/* 0 when this process can write the ledger; else -1 saying why (a file
 * owned by another user, a read-only file system): a command that must
 * write fails before it does anything. */
static inline int ledger_writable(struct ledger *l, struct werr *e)
{
    return l->ops->writable(l, e);
}
/*
 * Nodes and leases: several `wharf run` nodes on one (PostgreSQL) ledger.
 *
 * This process's node: ledger_identity(name, lease_ms), called once at
 * start before any thread opens a ledger (the CLI does it for every command
 * from wharf.yaml's `node:`, default the host name).  From then on, in every
 * ledger the process opens:
 *   - a claim records the intake's node (this one) and a lease until now +
 *     lease_ms (intakes.node, intakes.lease_until_ms);
 *   - a transition to an unfinished state makes this node the holder and
 *     renews the lease; to done or failed it ends the lease (the node stays,
 *     as who finished it);
 *   - a transition is refused (0, "someone else moved it") when another node
 *     holds the intake under a live lease: a node that lost its lease to a
 *     take-over can no longer move the intake.
 * Without an identity (unit tests, tools) intakes carry no node and no
 * lease, as before the registry.
 *
 * What a server must call (the runner; see docs/scale-out.md):
 *   - at start and then every lease/3: ledger_node_beat (the node's row:
 *     pid, start, heartbeat), then ledger_lease_renew (every intake it holds
 *     in progress gets lease_until = now + lease);
 *   - after each beat: ledger_lease_takeover, then schedule each intake it
 *     returns from its state, as a restart does (the take is redone from the
 *     source, which is only finished after sealing).
 * "In progress" is every state but done and failed.
 */
void ledger_identity(const char *node, int64_t lease_ms);
/* The identity set (NULL / 0 when none). */
const char *ledger_node(void);
int64_t ledger_lease_ms(void);

/* Registers the node or records its heartbeat (upsert by name). */
static inline int ledger_node_beat(struct ledger *l, const char *node, int64_t pid,
                                   int64_t started_ms, int64_t now_ms, struct werr *e)
{
    return l->ops->node_beat(l, node, pid, started_ms, now_ms, e);
}
/* Every intake in progress the node holds gets lease_until_ms = until_ms;
 * *n (may be NULL) how many. */
static inline int ledger_lease_renew(struct ledger *l, const char *node, int64_t until_ms,
                                     uint64_t *n, struct werr *e)
{
    return l->ops->lease_renew(l, node, until_ms, n, e);
}
/* Takes over, for node, up to limit intakes in progress whose lease expired
 * before now_ms (or that never had one): each gets node and lease_until_ms
 * = until_ms and a "takeover" event naming the node that held it; fn (may
 * be NULL) is called for each after the commit.  Concurrent callers on
 * other nodes take disjoint intakes (PostgreSQL: FOR UPDATE SKIP LOCKED).
 * profiles: the profiles node runs, comma-separated (profile names have no
 * comma) -- an intake of another profile is left to a node that runs it;
 * NULL: any.  Returns how many were taken, or -1. */
static inline int ledger_lease_takeover(struct ledger *l, const char *node, const char *profiles,
                                        int64_t now_ms, int64_t until_ms, int limit, takeover_fn fn,
                                        void *ctx, struct werr *e)
{
    return l->ops->lease_takeover(l, node, profiles, now_ms, until_ms, limit, fn, ctx, e);
}
/* Every registered node and every node holding intakes in progress, by
 * name, with its intakes in progress and the expired leases among them. */
static inline int ledger_nodes(struct ledger *l, int64_t now_ms, node_fn fn, void *ctx,
                               struct werr *e)
{
    return l->ops->nodes(l, now_ms, fn, ctx, e);
}

/*
 * One poller per source: several nodes run the same profiles, but a
 * profile's source is listed by one node at a time, and its schedule is
 * kept here rather than multiplied by the nodes.  Before a poll the node
 * calls ledger_poll_begin: 1 when it polls now (recorded as polling it
 * until until_ms), 0 when another node's poll of it is still running (its
 * lease until_ms not passed) or -- unless the poll was asked for (a spool
 * that changed, the follow-up that proves a drop stable, `wharf once`) --
 * when the next scheduled poll is not due yet; -1 on error.  After it,
 * ledger_poll_end ends the lease and records when the next scheduled poll
 * is due.  A node that dies mid-poll holds it until until_ms.  Its own
 * lease never stops the node itself (after a restart).
 */
static inline int ledger_poll_begin(struct ledger *l, const char *profile, const char *node,
                                    int64_t now_ms, int64_t until_ms, bool asked, struct werr *e)
{
    return l->ops->poll_begin(l, profile, node, now_ms, until_ms, asked, e);
}
static inline int ledger_poll_end(struct ledger *l, const char *profile, const char *node,
                                  int64_t next_ms, struct werr *e)
{
    return l->ops->poll_end(l, profile, node, next_ms, e);
}

/* What the ledger is, for messages: the SQLite file's path, or "ledger
 * postgresql://host:port/db" (never a user or password). */
static inline const char *ledger_where(struct ledger *l)
{
    return l->ops->where(l);
}
static inline void ledger_close(struct ledger *l)
{
    if (l)
        l->ops->close(l);
}

/* Records an operator's action (append-only; time_ms 0: now). */
static inline int ledger_action_add(struct ledger *l, const struct action *a, struct werr *e)
{
    return l->ops->action_add(l, a, e);
}
/* The newest `limit` actions, newest first: those naming profile (or an
 * intake of it), or all when profile is NULL. */
static inline int ledger_actions(struct ledger *l, const char *profile, int limit, action_fn fn,
                                 void *ctx, struct werr *e)
{
    return l->ops->actions(l, profile, limit, fn, ctx, e);
}

/* Per-profile flags kept in kv: "paused:<profile>" = "1", and the source's
 * health line "health:<profile>" (written by the server, read by status). */
bool ledger_paused(struct ledger *l, const char *profile);
int ledger_set_paused(struct ledger *l, const char *profile, bool paused, struct werr *e);
/* The source health line that status shows (kv "health:<profile>"); -1 on error. */
int ledger_set_health(struct ledger *l, const char *profile, const char *health, struct werr *e);
/* malloc'd health line or NULL when never polled. */
char *ledger_health(struct ledger *l, const char *profile);

/* What the last polls of a profile's source found, kept in kv as JSON
 * "source:<profile>" by the pipeline's poll; `wharf status` and the alerts
 * read it.  An outage starts at the first failed poll and its start (since)
 * is kept until a poll succeeds again. */
struct source_health {
    bool ok;              /* the last poll listed the source */
    int64_t last_poll_ms; /* the last poll, failed or not */
    int64_t last_ok_ms;   /* the last successful listing */
    int64_t since_ms;     /* !ok: the first failed poll of this outage */
    int fails;            /* !ok: consecutive failed polls */
    char kind[32];        /* !ok: its kind (werr_kind_name) */
    char error[512];      /* !ok: the source's error */
    char runbook[96];     /* !ok: the page to read */
    /* ok: directories the last listing could not read and passed over
     * (their files are not taken; the rest are), and the first of them */
    int unreadable;
    char unreadable_first[512];
    /* ok: names the last listing refused (left in the source, see
     * source_refuse): how many, the first one (escaped) and why */
    int refused;
    char refused_path[256];
    char refused_why[160];
    /* SFTP: the connections the last batch of takes wanted and got (0:
     * never recorded), and why the server gave fewer (empty: it did not) */
    int conn_want, conn_got;
    int64_t conn_ms;
    char conn_why[256];
};
void ledger_source_ok(struct ledger *l, const char *profile, int64_t now);
/* A listing that succeeded but passed over n unreadable directories
 * (first: "sub: Permission denied"); n 0 is ledger_source_ok. */
void ledger_source_listed(struct ledger *l, const char *profile, int unreadable, const char *first,
                          int64_t now);
/* After ledger_source_listed: the names that listing refused (0: none). */
void ledger_source_refused(struct ledger *l, const char *profile, int refused,
                           const char *first_path, const char *first_why);
void ledger_source_failed(struct ledger *l, const char *profile, const char *kind,
                          const char *error, const char *runbook, int64_t now);
/* The connections a batch of takes wanted and worked with; why NULL when
 * the server gave them all (clears an earlier note). */
void ledger_source_connections(struct ledger *l, const char *profile, int want, int got,
                               const char *why, int64_t now);
/* 1 filled, 0 never polled. */
int ledger_source_health(struct ledger *l, const char *profile, struct source_health *out);

/*
 * What the last deliveries of an outbound profile to one partner found
 * (kv "destination:<profile>:<to>", JSON), written by the pipeline's
 * delivery step, read by `wharf status` and the alerts.  After
 * DESTINATION_CIRCUIT_AFTER consecutive failures the destination's circuit
 * is open: deliveries to it are held (not tried, no attempt spent) until
 * next_probe_ms, which backs off like the retries; the first delivery that
 * succeeds closes it.  A file-specific failure (the partner's file of the
 * same name) is not the destination's and does not count.
 */
#define DESTINATION_CIRCUIT_AFTER 3
struct destination_health {
    bool ok;               /* the last delivery there worked (or none was tried) */
    int64_t last_try_ms;   /* the last delivery tried */
    int64_t last_ok_ms;    /* the last one that worked */
    int64_t since_ms;      /* !ok: the first failure of this outage */
    int64_t next_probe_ms; /* !ok: deliveries wait for this when the circuit is open */
    int fails;             /* !ok: consecutive failures */
    char kind[32];         /* !ok: the last failure's kind (werr_kind_name) */
    char error[512];       /* !ok: its message */
    char runbook[96];      /* !ok: the page to read */
};
/* 1 filled, 0 never delivered there (out says ok). */
int ledger_destination_health(struct ledger *l, const char *profile, const char *to,
                              struct destination_health *out);
/* A delivery there worked: closes the circuit.  Returns the failures it ends (0: none). */
int ledger_destination_ok(struct ledger *l, const char *profile, const char *to, int64_t now);
/* A delivery there failed; next_probe_ms = now + delay.  Returns the consecutive failures. */
int ledger_destination_failed(struct ledger *l, const char *profile, const char *to,
                              const char *kind, const char *error, const char *runbook, int64_t now,
                              int64_t delay_ms);
/* The circuit is open now: fails >= DESTINATION_CIRCUIT_AFTER and before the next probe. */
bool destination_circuit_open(const struct destination_health *h, int64_t now);

void intake_clear(struct intake *in);
json_t *intake_json(const struct intake *in);

/* link = sha256(prev || tagmanifest) as hex, the chain's one formula. */
void chain_link_compute(const char *prev, const char *tagmanifest, char out[SHA256_HEX_LEN]);

/*
 * Copying a whole ledger into an empty one (`wharf ledger migrate`,
 * ledger_copy.c).  ledger_copy opens one transaction on each side that
 * keeps every other writer out, refuses a target that holds any row
 * (c->refused, nothing written), copies every table, then reads the
 * target's rows back inside its transaction and compares them with the
 * source's, table by table: count and an order-independent digest of the
 * rows' values.  It returns 0 with both transactions still open, so the
 * caller can check more (the chain: seal/verify.h) on the uncommitted
 * copy before ledger_copy_end commits it -- or rolls it back, leaving the
 * target as empty as it was.  -1 on error (both rolled back).
 */
#define LEDGER_COPY_MAX 8
struct ledger_copy {
    struct {
        const char *table;
        uint64_t from, to; /* rows in the source; in the target after the copy */
        char from_digest[SHA256_HEX_LEN], to_digest[SHA256_HEX_LEN];
        bool same; /* counts and digests agree */
    } t[LEDGER_COPY_MAX];
    size_t n;
    bool same;    /* every table the same */
    bool refused; /* the target was not empty: nothing copied */
    char refused_why[256];
};
int ledger_copy(struct ledger *from, struct ledger *to, struct ledger_copy *c, struct werr *e);
int ledger_copy_end(struct ledger *from, struct ledger *to, bool commit, struct werr *e);

/* Added with the SQLite backend: the inverse of outcome_name (0, or -1 when
 * s names no outcome). */
int outcome_parse(const char *s, enum outcome *out);

#endif
