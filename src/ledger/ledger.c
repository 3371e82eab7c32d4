/*
 * ledger: the backend-independent pieces of ledger.h -- state and outcome
 * names, struct intake's cleanup and JSON form, and the hash chain's one
 * formula.  Owns nothing; intake_json returns a new reference the caller
 * decrefs.  Nothing here can fail except allocation (which aborts).
 */
#include "ledger/ledger.h"

#include <stdlib.h>
#include <string.h>

#include "util/escape.h"
#include "util/parse.h"

static const char *const state_names[ST__COUNT] = {
    [ST_FOUND] = "found",         [ST_TAKEN] = "taken",   [ST_INSPECTED] = "inspected",
    [ST_VALIDATED] = "validated", [ST_LOADED] = "loaded", [ST_REJECTED] = "rejected",
    [ST_SEALED] = "sealed",       [ST_DONE] = "done",     [ST_FAILED] = "failed",
};

static const char *const outcome_names[] = {
    [OUT_NONE] = "none",
    [OUT_LOADED] = "loaded",
    [OUT_REJECTED] = "rejected",
    [OUT_DUPLICATE] = "duplicate",
};
#define OUTCOME_COUNT ((int)(sizeof outcome_names / sizeof outcome_names[0]))

const char *state_name(enum intake_state s)
{
    if ((int)s < 0 || s >= ST__COUNT)
        return "?";
    return state_names[s];
}

int state_parse(const char *s, enum intake_state *out)
{
    int i;
    if (!s)
        return -1;
    for (i = 0; i < ST__COUNT; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum intake_state)i;
            return 0;
        }
    return -1;
}

const char *outcome_name(enum outcome o)
{
    if ((int)o < 0 || (int)o >= OUTCOME_COUNT)
        return "?";
    return outcome_names[o];
}

int outcome_parse(const char *s, enum outcome *out)
{
    int i;
    if (!s)
        return -1;
    for (i = 0; i < OUTCOME_COUNT; i++)
        if (strcmp(s, outcome_names[i]) == 0) {
            *out = (enum outcome)i;
            return 0;
        }
    return -1;
}

void intake_clear(struct intake *in)
{
    if (!in)
        return;
    free(in->profile);
    free(in->source);
    free(in->path);
    free(in->name);
    free(in->last_error);
    free(in->bag);
    free(in->replay_of);
    free(in->replayed_by);
    free(in->node);
    json_decref(in->info);
    memset(in, 0, sizeof *in);
}

/* Names and paths are partner bytes: never dropped for invalid UTF-8. */
static json_t *str_or_null(const char *s)
{
    return s && *s ? esc_json(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    char buf[32];
    if (ms <= 0)
        return json_null();
    format_time_ms(ms, buf);
    return json_string(buf);
}

/*
 * The JSON form of an intake, as `wharf show --json` and `wharf intakes
 * --json` print it.  Every field of struct intake appears; states and
 * outcomes by name; times as ISO-8601 UTC (null when unset); the file's
 * mtime both as nanoseconds (exact, as claimed) and as ISO time.
 * failed_from is null unless the intake is failed.
 */
json_t *intake_json(const struct intake *in)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_string(in->id));
    json_object_set_new(o, "profile", str_or_null(in->profile));
    json_object_set_new(o, "source", str_or_null(in->source));
    json_object_set_new(o, "path", str_or_null(in->path));
    json_object_set_new(o, "name", str_or_null(in->name));
    json_object_set_new(o, "size", json_integer((json_int_t)in->size));
    json_object_set_new(o, "mtime_ns", json_integer((json_int_t)in->mtime_ns));
    json_object_set_new(o, "mtime", time_or_null(in->mtime_ns / 1000000));
    json_object_set_new(o, "sha256", str_or_null(in->sha256));
    json_object_set_new(o, "state", json_string(state_name(in->state)));
    json_object_set_new(o, "failed_from",
                        in->state == ST_FAILED ? json_string(state_name(in->failed_from))
                                               : json_null());
    json_object_set_new(o, "outcome", json_string(outcome_name(in->outcome)));
    json_object_set_new(o, "attempts", json_integer(in->attempts));
    json_object_set_new(o, "next_attempt", time_or_null(in->next_attempt_ms));
    json_object_set_new(o, "last_error", str_or_null(in->last_error));
    json_object_set_new(o, "created", time_or_null(in->created_ms));
    json_object_set_new(o, "updated", time_or_null(in->updated_ms));
    json_object_set_new(o, "rows", json_integer((json_int_t)in->rows));
    json_object_set_new(o, "bag", str_or_null(in->bag));
    json_object_set_new(o, "replay_of", str_or_null(in->replay_of));
    json_object_set_new(o, "replayed_by", str_or_null(in->replayed_by));
    json_object_set_new(o, "info", in->info ? json_deep_copy(in->info) : json_object());
    return o;
}

/*
 * The hash chain's one formula.  Every sealed bag appends a link:
 *
 *     link = SHA-256( prev || tagmanifest )
 *
 * where prev is the previous link and tagmanifest the SHA-256 of the bag's
 * tagmanifest-sha256.txt, both as 64-character lowercase hex, concatenated
 * as ASCII text (128 bytes, no separator, no newline); the result is again
 * lowercase hex.  The first link's prev is 64 '0' characters.  An auditor
 * recomputes a link without wharf:
 *
 *     printf %s%s "$prev" "$tagmanifest" | sha256sum
 */
void chain_link_compute(const char *prev, const char *tagmanifest, char out[SHA256_HEX_LEN])
{
    struct sha256 h;
    sha256_init(&h);
    sha256_update(&h, prev, strnlen(prev, SHA256_HEX_LEN - 1));
    sha256_update(&h, tagmanifest, strnlen(tagmanifest, SHA256_HEX_LEN - 1));
    sha256_final(&h, out);
}

bool ledger_paused(struct ledger *l, const char *profile)
{
    char key[160], *v = NULL;
    struct werr e;
    bool r;
    snprintf(key, sizeof key, "paused:%s", profile);
    ledger_kv_get(l, key, &v, &e);
    r = v && !strcmp(v, "1");
    free(v);
    return r;
}

int ledger_set_paused(struct ledger *l, const char *profile, bool paused, struct werr *e)
{
    char key[160];
    snprintf(key, sizeof key, "paused:%s", profile);
    return ledger_kv_set(l, key, paused ? "1" : "0", e);
}

int ledger_set_health(struct ledger *l, const char *profile, const char *health, struct werr *e)
{
    char key[160];
    snprintf(key, sizeof key, "health:%s", profile);
    return ledger_kv_set(l, key, health, e);
}

char *ledger_health(struct ledger *l, const char *profile)
{
    char key[160], *v = NULL;
    struct werr e;
    snprintf(key, sizeof key, "health:%s", profile);
    if (ledger_kv_get(l, key, &v, &e) < 0)
        return NULL;
    return v;
}

int ledger_source_health(struct ledger *l, const char *profile, struct source_health *out)
{
    char key[160], *v = NULL;
    struct werr e;
    json_t *j;
    json_int_t last_poll = 0, last_ok = 0, since = 0, fails = 0, unreadable = 0;
    int ok = 0;
    const char *error = NULL, *runbook = NULL, *kind = NULL, *ufirst = NULL;
    const char *rpath = NULL, *rwhy = NULL, *cwhy = NULL;
    json_int_t refused = 0, cwant = 0, cgot = 0, cms = 0;

    memset(out, 0, sizeof *out);
    snprintf(key, sizeof key, "source:%s", profile);
    if (ledger_kv_get(l, key, &v, &e) < 0 || !v)
        return 0;
    j = json_loads(v, 0, NULL);
    free(v);
    if (!j)
        return 0;
    json_unpack(j, "{s?b,s?I,s?I,s?I,s?I,s?s,s?s,s?s,s?I,s?s,s?I,s?s,s?s}", "ok", &ok, "last_poll",
                &last_poll, "last_ok", &last_ok, "since", &since, "fails", &fails, "error", &error,
                "runbook", &runbook, "kind", &kind, "unreadable", &unreadable, "unreadable_first",
                &ufirst, "refused", &refused, "refused_path", &rpath, "refused_why", &rwhy);
    /* the SFTP connections are kept under their own key ("conns:"): the
     * polls and the takes write them from different threads, and one
     * read-modify-write of one key would lose the other's news */
    snprintf(key, sizeof key, "conns:%s", profile);
    json_t *c = ledger_kv_get(l, key, &v, &e) == 0 && v ? json_loads(v, 0, NULL) : NULL;
    free(v);
    json_unpack(c ? c : j, "{s?I,s?I,s?I,s?s}", "conn_want", &cwant, "conn_got", &cgot, "conn_at",
                &cms, "conn_why", &cwhy);
    out->ok = ok;
    out->last_poll_ms = last_poll;
    out->last_ok_ms = last_ok;
    out->since_ms = since;
    out->fails = (int)fails;
    snprintf(out->error, sizeof out->error, "%s", error ? error : "");
    snprintf(out->kind, sizeof out->kind, "%s", kind ? kind : "");
    snprintf(out->runbook, sizeof out->runbook, "%s", runbook ? runbook : "");
    out->unreadable = (int)unreadable;
    snprintf(out->unreadable_first, sizeof out->unreadable_first, "%s", ufirst ? ufirst : "");
    out->refused = (int)refused;
    snprintf(out->refused_path, sizeof out->refused_path, "%s", rpath ? rpath : "");
    snprintf(out->refused_why, sizeof out->refused_why, "%s", rwhy ? rwhy : "");
    out->conn_want = (int)cwant;
    out->conn_got = (int)cgot;
    out->conn_ms = cms;
    snprintf(out->conn_why, sizeof out->conn_why, "%s", cwhy ? cwhy : "");
    json_decref(c);
    json_decref(j);
    return 1;
}

/* Writes j (taken over) as the compact, sorted JSON text of kv key; a
 * failure is the ledger's, seen again at the next read (best effort: a
 * health record). */
static void kv_put_json(struct ledger *l, const char *key, json_t *j)
{
    struct werr e;
    char *v = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (v)
        ledger_kv_set(l, key, v, &e);
    free(v);
}

static void source_put(struct ledger *l, const char *profile, const struct source_health *h)
{
    char key[160];
    json_t *j = json_pack("{s:b,s:I,s:I}", "ok", h->ok, "last_poll", (json_int_t)h->last_poll_ms,
                          "last_ok", (json_int_t)h->last_ok_ms);
    if (!h->ok) {
        json_object_set_new(j, "since", json_integer(h->since_ms));
        json_object_set_new(j, "fails", json_integer(h->fails));
        json_object_set_new(j, "error", esc_json(h->error)); /* partner text, maybe cut */
        json_object_set_new(j, "kind", json_string(h->kind));
        json_object_set_new(j, "runbook", json_string(h->runbook));
    } else {
        if (h->unreadable) {
            json_object_set_new(j, "unreadable", json_integer(h->unreadable));
            json_object_set_new(j, "unreadable_first", json_string(h->unreadable_first));
        }
        if (h->refused > 0) {
            json_object_set_new(j, "refused", json_integer(h->refused));
            json_object_set_new(j, "refused_path", esc_json(h->refused_path));
            json_object_set_new(j, "refused_why", json_string(h->refused_why));
        }
    }
    snprintf(key, sizeof key, "source:%s", profile);
    kv_put_json(l, key, j);
}

void ledger_source_listed(struct ledger *l, const char *profile, int unreadable, const char *first,
                          int64_t now)
{
    struct source_health h;
    ledger_source_health(l, profile, &h);
    h.ok = true;
    h.last_poll_ms = h.last_ok_ms = now;
    h.unreadable = unreadable;
    snprintf(h.unreadable_first, sizeof h.unreadable_first, "%s", unreadable && first ? first : "");
    source_put(l, profile, &h);
}

void ledger_source_refused(struct ledger *l, const char *profile, int refused,
                           const char *first_path, const char *first_why)
{
    struct source_health h;
    if (!ledger_source_health(l, profile, &h))
        return;
    if (!refused && !h.refused)
        return; /* nothing to write */
    h.refused = refused;
    snprintf(h.refused_path, sizeof h.refused_path, "%s", refused && first_path ? first_path : "");
    snprintf(h.refused_why, sizeof h.refused_why, "%s", refused && first_why ? first_why : "");
    source_put(l, profile, &h);
}

void ledger_source_connections(struct ledger *l, const char *profile, int want, int got,
                               const char *why, int64_t now)
{
    struct source_health h;
    ledger_source_health(l, profile, &h);
    if (!why && (!h.conn_want || (h.conn_want == want && h.conn_got == want && !h.conn_why[0])))
        return; /* nothing new to say */
    char key[160];
    json_t *j = json_pack("{s:i,s:i,s:I}", "conn_want", want, "conn_got", why ? got : want,
                          "conn_at", (json_int_t)now);
    if (why)
        json_object_set_new(j, "conn_why", esc_json(why)); /* server text */
    snprintf(key, sizeof key, "conns:%s", profile);
    kv_put_json(l, key, j);
}

void ledger_source_ok(struct ledger *l, const char *profile, int64_t now)
{
    ledger_source_listed(l, profile, 0, NULL, now);
}

void ledger_source_failed(struct ledger *l, const char *profile, const char *kind,
                          const char *error, const char *runbook, int64_t now)
{
    struct source_health h;
    if (!ledger_source_health(l, profile, &h) || h.ok) {
        h.since_ms = now; /* a new outage starts */
        h.fails = 0;
    }
    h.ok = false;
    h.fails++;
    h.last_poll_ms = now;
    snprintf(h.error, sizeof h.error, "%s", error ? error : "");
    snprintf(h.kind, sizeof h.kind, "%s", kind ? kind : "");
    snprintf(h.runbook, sizeof h.runbook, "%s", runbook ? runbook : "");
    source_put(l, profile, &h);
}

/* ---- destinations of outbound profiles ------------------------------ */

static void destination_key(char *key, size_t n, const char *profile, const char *to)
{
    snprintf(key, n, "destination:%s:%s", profile, to);
}

int ledger_destination_health(struct ledger *l, const char *profile, const char *to,
                              struct destination_health *out)
{
    char key[600], *v = NULL;
    struct werr e;
    json_t *j;
    json_int_t last_try = 0, last_ok = 0, since = 0, next = 0, fails = 0;
    int ok = 1;
    const char *error = NULL, *runbook = NULL, *kind = NULL;

    memset(out, 0, sizeof *out);
    out->ok = true;
    destination_key(key, sizeof key, profile, to);
    if (ledger_kv_get(l, key, &v, &e) < 0 || !v)
        return 0;
    j = json_loads(v, 0, NULL);
    free(v);
    if (!j)
        return 0;
    json_unpack(j, "{s?b,s?I,s?I,s?I,s?I,s?I,s?s,s?s,s?s}", "ok", &ok, "last_try", &last_try,
                "last_ok", &last_ok, "since", &since, "next_probe", &next, "fails", &fails, "error",
                &error, "runbook", &runbook, "kind", &kind);
    out->ok = ok;
    out->last_try_ms = last_try;
    out->last_ok_ms = last_ok;
    out->since_ms = since;
    out->next_probe_ms = next;
    out->fails = (int)fails;
    snprintf(out->error, sizeof out->error, "%s", error ? error : "");
    snprintf(out->kind, sizeof out->kind, "%s", kind ? kind : "");
    snprintf(out->runbook, sizeof out->runbook, "%s", runbook ? runbook : "");
    json_decref(j);
    return 1;
}

static void destination_put(struct ledger *l, const char *profile, const char *to,
                            const struct destination_health *h)
{
    char key[600];
    json_t *j = json_pack("{s:b,s:I,s:I}", "ok", h->ok, "last_try", (json_int_t)h->last_try_ms,
                          "last_ok", (json_int_t)h->last_ok_ms);
    if (!h->ok) {
        json_object_set_new(j, "since", json_integer(h->since_ms));
        json_object_set_new(j, "next_probe", json_integer(h->next_probe_ms));
        json_object_set_new(j, "fails", json_integer(h->fails));
        json_object_set_new(j, "error", esc_json(h->error));
        json_object_set_new(j, "kind", json_string(h->kind));
        json_object_set_new(j, "runbook", json_string(h->runbook));
    }
    destination_key(key, sizeof key, profile, to);
    kv_put_json(l, key, j);
}

int ledger_destination_ok(struct ledger *l, const char *profile, const char *to, int64_t now)
{
    struct destination_health h;
    int ended;
    ledger_destination_health(l, profile, to, &h);
    ended = h.ok ? 0 : h.fails;
    memset(&h, 0, sizeof h);
    h.ok = true;
    h.last_try_ms = h.last_ok_ms = now;
    destination_put(l, profile, to, &h);
    return ended;
}

int ledger_destination_failed(struct ledger *l, const char *profile, const char *to,
                              const char *kind, const char *error, const char *runbook, int64_t now,
                              int64_t delay_ms)
{
    struct destination_health h;
    if (!ledger_destination_health(l, profile, to, &h) || h.ok) {
        h.since_ms = now; /* a new outage starts */
        h.fails = 0;
    }
    h.ok = false;
    h.fails++;
    h.last_try_ms = now;
    h.next_probe_ms = now + delay_ms;
    snprintf(h.error, sizeof h.error, "%s", error ? error : "");
    snprintf(h.kind, sizeof h.kind, "%s", kind ? kind : "");
    snprintf(h.runbook, sizeof h.runbook, "%s", runbook ? runbook : "");
    destination_put(l, profile, to, &h);
    return h.fails;
}

bool destination_circuit_open(const struct destination_health *h, int64_t now)
{
    return !h->ok && h->fails >= DESTINATION_CIRCUIT_AFTER && now < h->next_probe_ms;
}

static char identity[256];
static int64_t identity_lease_ms;

void ledger_identity(const char *node, int64_t lease_ms)
{
    snprintf(identity, sizeof identity, "%s", node ? node : "");
    identity_lease_ms = node && *node ? lease_ms : 0;
}

const char *ledger_node(void)
{
    return identity[0] ? identity : NULL;
}

int64_t ledger_lease_ms(void)
{
    return identity_lease_ms;
}

struct ledger *ledger_open(const char *type, const char *path, const char *dsn_file, struct werr *e)
{
    if (type && strcmp(type, "postgresql") == 0)
        return ledger_open_pg(dsn_file, e);
    if (type && strcmp(type, "sqlite") != 0) {
        werr_setk(e, WERR_CONFIG, "ledger type '%s' is neither sqlite nor postgresql", type);
        return NULL;
    }
    return ledger_open_sqlite(path, e);
}

int ledger_claim_batch(struct ledger *l, struct intake *v, size_t n, int *claimed,
                       void (*between)(size_t i), struct werr *e)
{
    if (l->ops->claim_batch)
        return l->ops->claim_batch(l, v, n, claimed, between, e);
    for (size_t i = 0; i < n; i++)
        claimed[i] = 0;
    for (size_t i = 0; i < n; i++) {
        int c = ledger_claim(l, &v[i], e);
        if (c < 0)
            return -1;
        claimed[i] = c;
        if (between)
            between(i);
    }
    return 0;
}
