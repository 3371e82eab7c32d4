/*
 * config: wharf.yaml and profiles from YAML node trees into typed structs.
 *
 * Every value is checked strictly where it is read, and every problem is
 * added to the diags with file:line:column, the key path and what would be
 * valid; loading goes on so one run reports everything.  Unknown keys are
 * errors: a typo is never silently ignored.  Defaults: defaults.h.
 *
 * Ownership: config_free / profile_free release everything a loader made.
 */
#include "config/config.h"

#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <regex.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include "config/defaults.h"
#include "util/charset.h"
#include "util/cron.h"
#include "util/parse.h"
#include "util/xmalloc.h"

struct walk {
    struct diags *d;
    size_t errors_before;
};

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *join(const char *path, const char *key)
{
    return *path ? xasprintf("%s.%s", path, key) : xstrdup(key);
}

static void err_at(struct walk *w, const struct node *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(struct walk *w, const struct node *n, const char *path, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_add(w->d, n->file, n->line, n->col, path, "%s", msg);
}

/* Every key of map must be in allowed; say which ones are.  "password" is
 * left to the caller, which refuses it with its own message (secrets are
 * never inline). */
static void check_keys(struct walk *w, const struct node *map, const char *path,
                       const char *const *allowed)
{
    bool has_password_file = false;
    for (const char *const *a = allowed; *a; a++)
        has_password_file |= !strcmp(*a, "password_file");
    for (size_t i = 0; i < map->n; i++) {
        const char *const *a;
        if (has_password_file && !strcmp(map->keys[i], "password"))
            continue;
        for (a = allowed; *a; a++)
            if (!strcmp(*a, map->keys[i]))
                break;
        if (!*a) {
            char valid[512] = "";
            size_t len = 0;
            for (a = allowed; *a && len < sizeof valid - 40; a++)
                len += (size_t)snprintf(valid + len, sizeof valid - len, "%s%s",
                                        a == allowed ? "" : ", ", *a);
            char *kp = join(path, map->keys[i]);
            err_at(w, map->keynodes[i], kp, "unknown key (valid here: %s)", valid);
            free(kp);
        }
    }
}

static bool want(struct walk *w, const struct node *n, enum node_kind kind, const char *path)
{
    if (n->kind == kind)
        return true;
    err_at(w, n, path, "expected %s, found %s", node_kind_name(kind), node_kind_name(n->kind));
    return false;
}

/* Scalar accessors: absent keys leave *out untouched (the default). */
static const struct node *scalar(struct walk *w, const struct node *map, const char *key,
                                 const char *path, char **kp)
{
    const struct node *n = node_get(map, key);
    *kp = NULL;
    if (!n)
        return NULL;
    *kp = join(path, key);
    if (!want(w, n, NODE_SCALAR, *kp)) {
        free(*kp);
        *kp = NULL;
        return NULL;
    }
    return n;
}

static void get_str(struct walk *w, const struct node *map, const char *key, const char *path,
                    char **out)
{
    char *kp;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    if (!*n->value) {
        err_at(w, n, kp, "must not be empty");
    } else {
        free(*out);
        *out = xstrdup(n->value);
    }
    free(kp);
}

static void get_duration(struct walk *w, const struct node *map, const char *key, const char *path,
                         int64_t *out)
{
    char *kp;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    if (parse_duration(n->value, out) < 0)
        err_at(w, n, kp, "\"%s\" is not a duration (use 10s, 5m, 1h)", n->value);
    free(kp);
}

static void get_size(struct walk *w, const struct node *map, const char *key, const char *path,
                     uint64_t *out)
{
    char *kp;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    if (parse_size(n->value, out) < 0)
        err_at(w, n, kp, "\"%s\" is not a size (use 512, 64KB, 10MB, 1GiB)", n->value);
    free(kp);
}

static void get_uint(struct walk *w, const struct node *map, const char *key, const char *path,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    char *kp;
    uint64_t v;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    if (parse_uint(n->value, UINT64_MAX, &v) < 0 || v < min || v > max)
        err_at(w, n, kp, "\"%s\" is not a whole number from %llu to %llu", n->value,
               (unsigned long long)min, (unsigned long long)max);
    else
        *out = v;
    free(kp);
}

static void get_int(struct walk *w, const struct node *map, const char *key, const char *path,
                    int min, int max, int *out)
{
    uint64_t v = (uint64_t)*out;
    get_uint(w, map, key, path, (uint64_t)min, (uint64_t)max, &v);
    *out = (int)v;
}

static void get_bool(struct walk *w, const struct node *map, const char *key, const char *path,
                     bool *out)
{
    char *kp;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    if (parse_bool(n->value, out) < 0)
        err_at(w, n, kp, "\"%s\" is not a boolean (use true or false)", n->value);
    free(kp);
}

static void get_enum(struct walk *w, const struct node *map, const char *key, const char *path,
                     const char *const *names, int *out)
{
    char *kp;
    const struct node *n = scalar(w, map, key, path, &kp);
    if (!n)
        return;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(names[i], n->value)) {
            *out = i;
            free(kp);
            return;
        }
    }
    char valid[256] = "";
    size_t len = 0;
    for (int i = 0; names[i]; i++)
        len += (size_t)snprintf(valid + len, sizeof valid - len, "%s%s", i ? " | " : "", names[i]);
    err_at(w, n, kp, "\"%s\" is not valid (use %s)", n->value, valid);
    free(kp);
}

static void strlist_add(struct strlist *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = xstrdup(s);
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* A scalar or a list of scalars. */
static void get_strlist(struct walk *w, const struct node *map, const char *key, const char *path,
                        struct strlist *out)
{
    const struct node *n = node_get(map, key);
    char *kp;
    if (!n)
        return;
    kp = join(path, key);
    strlist_free(out);
    if (n->kind == NODE_SCALAR) {
        strlist_add(out, n->value);
    } else if (want(w, n, NODE_SEQ, kp)) {
        for (size_t i = 0; i < n->n; i++)
            if (want(w, n->items[i], NODE_SCALAR, kp))
                strlist_add(out, n->items[i]->value);
    }
    free(kp);
}

bool ident_valid(const char *s)
{
    size_t n = 0;
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++, n++)
        if (!(isalnum((unsigned char)*s) || *s == '_') || n >= 63)
            return false;
    return true;
}

bool glob_valid(const char *s)
{
    int depth = 0;
    if (!s || !*s || strchr(s, '/'))
        return false;
    for (; *s; s++) {
        if (*s == '\\') {
            if (!*++s)
                return false;
        } else if (*s == '[') {
            if (depth)
                return false;
            depth = 1;
        } else if (*s == ']' && depth) {
            depth = 0;
        }
    }
    return depth == 0;
}

char *config_schema_path(const struct wharf_config *cfg, const char *ref)
{
    if (!ref || !*ref || ref[0] == '/' || !strcmp(ref, "..") || !strncmp(ref, "../", 3) ||
        strstr(ref, "/../") || (strlen(ref) >= 3 && !strcmp(ref + strlen(ref) - 3, "/..")))
        return NULL;
    return xasprintf("%s/%s", cfg->schemas_dir, ref);
}

/* ---- wharf.yaml ------------------------------------------------------- */

void config_defaults(struct wharf_config *cfg, const char *state_dir)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->state_dir = xstrdup(state_dir ? state_dir : DEF_STATE_DIR);
    cfg->profiles_dir = xstrdup(DEF_PROFILES_DIR);
    cfg->schemas_dir = xstrdup(DEF_SCHEMAS_DIR);
    cfg->workers = DEF_WORKERS;
    cfg->lease_ms = DEF_LEASE_MS;
    cfg->ledger_type = xstrdup(DEF_LEDGER_TYPE);
    cfg->log_json = -1;
    cfg->verify_every_ms = DEF_VERIFY_EVERY_MS;
    cfg->verify_rate = DEF_VERIFY_RATE;
    cfg->console.listen = xstrdup(DEF_CONSOLE_LISTEN);
    cfg->console.max_connections = DEF_CONSOLE_CONNS;
    cfg->console.max_per_ip = DEF_CONSOLE_PER_IP;
    cfg->console.timeout_ms = DEF_CONSOLE_TIMEOUT_MS;
    cfg->console.max_request = DEF_CONSOLE_MAX_REQUEST;
    cfg->console.users_file = xasprintf("%s/%s", cfg->state_dir, DEF_CONSOLE_USERS);
    cfg->work_dir = xasprintf("%s/work", cfg->state_dir);
    cfg->archive_dir = xasprintf("%s/archive", cfg->state_dir);
    cfg->rejects_dir = xasprintf("%s/rejects", cfg->state_dir);
    cfg->quarantine_dir = xasprintf("%s/quarantine", cfg->state_dir);
    cfg->ledger_path = xasprintf("%s/%s", cfg->state_dir, DEF_LEDGER_FILE);
}

static void derive(struct wharf_config *cfg, bool ledger_set)
{
    free(cfg->work_dir);
    free(cfg->archive_dir);
    free(cfg->rejects_dir);
    free(cfg->quarantine_dir);
    cfg->work_dir = xasprintf("%s/work", cfg->state_dir);
    cfg->archive_dir = xasprintf("%s/archive", cfg->state_dir);
    cfg->rejects_dir = xasprintf("%s/rejects", cfg->state_dir);
    cfg->quarantine_dir = xasprintf("%s/quarantine", cfg->state_dir);
    if (!ledger_set) {
        free(cfg->ledger_path);
        cfg->ledger_path = xasprintf("%s/%s", cfg->state_dir, DEF_LEDGER_FILE);
    }
}

int config_load(const char *path, struct wharf_config *cfg, struct diags *d)
{
    struct walk w = {.d = d, .errors_before = d->n};
    struct node *root, *n;
    struct stat st;
    bool ledger_set = false;

    config_defaults(cfg, NULL);
    if (!path) {
        if (stat("wharf.yaml", &st) < 0)
            return 0; /* the embedded defaults */
        path = "wharf.yaml";
    }
    cfg->file = xstrdup(path);
    free(cfg->console.users_file); /* the default follows state_dir (below) */
    cfg->console.users_file = NULL;
    root = node_load(path, d);
    if (!root)
        return -1;
    if (!want(&w, root, NODE_MAP, ""))
        goto out;
    check_keys(&w, root, "",
               KEYS("state_dir", "profiles_dir", "schemas_dir", "workers", "ledger", "node",
                    "lease", "known_hosts", "alert", "log", "reconcile", "verify", "console"));
    get_str(&w, root, "state_dir", "", &cfg->state_dir);
    get_str(&w, root, "profiles_dir", "", &cfg->profiles_dir);
    get_str(&w, root, "schemas_dir", "", &cfg->schemas_dir);
    get_int(&w, root, "workers", "", 1, 256, &cfg->workers);
    get_str(&w, root, "known_hosts", "", &cfg->known_hosts);
    get_str(&w, root, "node", "", &cfg->node);
    get_duration(&w, root, "lease", "", &cfg->lease_ms);
    if (cfg->lease_ms < 3000 && node_get(root, "lease"))
        err_at(&w, node_get(root, "lease"), "lease", "at least 3s (a node renews every third)");
    get_str(&w, root, "alert", "", &cfg->alert);
    if ((n = node_get(root, "ledger")) && want(&w, n, NODE_MAP, "ledger")) {
        int type = 0;
        check_keys(&w, n, "ledger", KEYS("type", "path", "dsn_file"));
        get_enum(&w, n, "type", "ledger", KEYS("sqlite", "postgresql"), &type);
        free(cfg->ledger_type);
        cfg->ledger_type = xstrdup(type == 1 ? "postgresql" : "sqlite");
        get_str(&w, n, "dsn_file", "ledger", &cfg->ledger_dsn_file);
        if (type == 1 && node_get(n, "path"))
            err_at(&w, node_get(n, "path"), "ledger.path",
                   "a postgresql ledger takes dsn_file, not path");
        if (type != 1 && cfg->ledger_dsn_file)
            err_at(&w, node_get(n, "dsn_file"), "ledger.dsn_file", "only for type: postgresql");
        if (node_get(n, "path")) {
            free(cfg->ledger_path);
            cfg->ledger_path = NULL;
            get_str(&w, n, "path", "ledger", &cfg->ledger_path);
            ledger_set = cfg->ledger_path != NULL;
        }
    }
    if ((n = node_get(root, "reconcile")) && want(&w, n, NODE_MAP, "reconcile")) {
        check_keys(&w, n, "reconcile", KEYS("every"));
        get_duration(&w, n, "every", "reconcile", &cfg->reconcile_every_ms);
    }
    if ((n = node_get(root, "verify")) && want(&w, n, NODE_MAP, "verify")) {
        check_keys(&w, n, "verify", KEYS("every", "rate"));
        get_duration(&w, n, "every", "verify", &cfg->verify_every_ms);
        get_size(&w, n, "rate", "verify", &cfg->verify_rate);
    }
    if ((n = node_get(root, "console")) && want(&w, n, NODE_MAP, "console")) {
        uint64_t req = cfg->console.max_request;
        cfg->console.enabled = true;
        check_keys(&w, n, "console",
                   KEYS("enabled", "listen", "tls_cert", "tls_key", "users_file",
                        "metrics_token_file", "max_connections", "max_per_ip", "timeout",
                        "max_request"));
        get_bool(&w, n, "enabled", "console", &cfg->console.enabled);
        get_str(&w, n, "listen", "console", &cfg->console.listen);
        get_str(&w, n, "tls_cert", "console", &cfg->console.tls_cert);
        get_str(&w, n, "tls_key", "console", &cfg->console.tls_key);
        get_str(&w, n, "users_file", "console", &cfg->console.users_file);
        get_str(&w, n, "metrics_token_file", "console", &cfg->console.metrics_token_file);
        get_int(&w, n, "max_connections", "console", 1, 10000, &cfg->console.max_connections);
        get_int(&w, n, "max_per_ip", "console", 1, 10000, &cfg->console.max_per_ip);
        get_duration(&w, n, "timeout", "console", &cfg->console.timeout_ms);
        get_size(&w, n, "max_request", "console", &req);
        cfg->console.max_request = req;
        if (!!cfg->console.tls_cert != !!cfg->console.tls_key)
            err_at(&w, n, "console", "tls_cert and tls_key go together");
    }
    if ((n = node_get(root, "log")) && want(&w, n, NODE_MAP, "log")) {
        int fmt = 0;
        check_keys(&w, n, "log", KEYS("format"));
        get_enum(&w, n, "format", "log", KEYS("auto", "text", "json"), &fmt);
        cfg->log_json = fmt == 0 ? -1 : fmt == 1 ? 0 : 1;
    }
    derive(cfg, ledger_set);
out:
    if (!cfg->console.users_file)
        cfg->console.users_file = xasprintf("%s/%s", cfg->state_dir, DEF_CONSOLE_USERS);
    diag_sort(d, w.errors_before);
    node_free(root);
    return d->n > w.errors_before ? -1 : 0;
}

void config_free(struct wharf_config *cfg)
{
    free(cfg->file);
    free(cfg->state_dir);
    free(cfg->profiles_dir);
    free(cfg->schemas_dir);
    free(cfg->ledger_type);
    free(cfg->ledger_path);
    free(cfg->ledger_dsn_file);
    free(cfg->node);
    free(cfg->known_hosts);
    free(cfg->alert);
    free(cfg->work_dir);
    free(cfg->archive_dir);
    free(cfg->rejects_dir);
    free(cfg->quarantine_dir);
    free(cfg->console.listen);
    free(cfg->console.tls_cert);
    free(cfg->console.tls_key);
    free(cfg->console.users_file);
    free(cfg->console.metrics_token_file);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- profiles --------------------------------------------------------- */

void profile_defaults(struct profile *p)
{
    static const char *ignore[] = {DEF_IGNORE};
    memset(p, 0, sizeof *p);
    p->enabled = true;
    p->source.type = SOURCE_SPOOL;
    p->source.pattern = xstrdup(DEF_PATTERN);
    for (size_t i = 0; i < sizeof ignore / sizeof ignore[0]; i++)
        strlist_add(&p->source.ignore, ignore[i]);
    p->source.after = AFTER_DELETE;
    p->source.port = DEF_SFTP_PORT;
    p->source.timeout_ms = DEF_SFTP_TIMEOUT_MS;
    p->source.connections = DEF_CONNECTIONS;
    p->source.parallel = DEF_PARALLEL;
    p->source.parallel_min = DEF_PARALLEL_MIN;
    p->schedule.every_ms = DEF_EVERY_MS;
    p->schedule.timezone = xstrdup(DEF_TIMEZONE);
    p->encoding = xstrdup(DEF_ENCODING);
    p->format = FORMAT_AUTO;
    p->csv.delimiter = ',';
    p->csv.quote = '"';
    p->csv.header = true;
    p->target.type = TARGET_SQLITE;
    p->target.mode = LOAD_APPEND;
    p->target.lineage = true;
    p->on_invalid = ON_INVALID_REJECT;
    p->max_invalid_pct = -1;
    p->duplicates = DUP_SKIP;
    p->limits.max_bytes = DEF_MAX_BYTES;
    p->limits.max_ratio = DEF_MAX_RATIO;
    p->limits.max_entries = DEF_MAX_ENTRIES;
    p->limits.max_line = DEF_MAX_LINE;
    p->limits.max_field = DEF_MAX_FIELD;
    p->limits.max_errors = DEF_MAX_ERRORS;
    p->limits.max_depth = DEF_MAX_DEPTH;
    p->limits.max_attributes = DEF_MAX_ATTRIBUTES;
    p->receipt.max_problems = DEF_RECEIPT_MAX_PROBLEMS;
    p->retry.max_attempts = DEF_MAX_ATTEMPTS;
    p->retry.backoff_ms = DEF_BACKOFF_MS;
    p->retry.backoff_max_ms = DEF_BACKOFF_MAX_MS;
    p->concurrency = DEF_CONCURRENCY;
    p->health.rejecting_after = DEF_REJECTING_AFTER;
    p->health.flood_duplicates = DEF_FLOOD_DUPLICATES;
    p->health.flood_within_ms = DEF_FLOOD_WITHIN_MS;
}

static bool name_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_'))
            return false;
    return true;
}

static void load_source(struct walk *w, struct profile *p, const struct node *n)
{
    const char *path = "source";
    const struct node *c;
    int type = 0;
    if (!want(w, n, NODE_MAP, path))
        return;
    check_keys(w, n, path,
               KEYS("type", "path", "pattern", "recursive", "ignore", "complete_when", "after",
                    "host", "port", "user", "key_file", "passphrase_file", "password_file",
                    "known_hosts", "timeout", "connections", "max_transfers", "parallel",
                    "parallel_min"));
    get_enum(w, n, "type", path, KEYS("spool", "sftp"), &type);
    p->source.type = (enum source_type)type;
    get_str(w, n, "path", path, &p->source.path);
    get_str(w, n, "pattern", path, &p->source.pattern);
    if ((c = node_get(n, "pattern")) && c->kind == NODE_SCALAR && !glob_valid(c->value))
        err_at(w, c, "source.pattern",
               "\"%s\" is not a valid file-name glob (no '/', balanced [...])", c->value);
    get_bool(w, n, "recursive", path, &p->source.recursive);
    if (node_get(n, "ignore")) {
        get_strlist(w, n, "ignore", path, &p->source.ignore);
        for (size_t i = 0; i < p->source.ignore.n; i++)
            if (!glob_valid(p->source.ignore.v[i]))
                err_at(w, node_get(n, "ignore"), "source.ignore",
                       "\"%s\" is not a valid file-name glob", p->source.ignore.v[i]);
    }
    if ((c = node_get(n, "complete_when")) && want(w, c, NODE_MAP, "source.complete_when")) {
        check_keys(w, c, "source.complete_when", KEYS("stable_for", "done_file", "min_age"));
        get_duration(w, c, "stable_for", "source.complete_when", &p->source.stable_for_ms);
        get_str(w, c, "done_file", "source.complete_when", &p->source.done_file);
        get_duration(w, c, "min_age", "source.complete_when", &p->source.min_age_ms);
        const struct node *df = node_get(c, "done_file");
        if (p->source.done_file &&
            (!strstr(p->source.done_file, "{name}") || strchr(p->source.done_file, '/')))
            err_at(w, df, "source.complete_when.done_file",
                   "\"%s\" must contain {name} and no '/' (e.g. \"{name}.done\")",
                   p->source.done_file);
    }
    /* No completeness rule at all: wait for stability (defaults.h). */
    if (!p->source.stable_for_ms && !p->source.done_file && !p->source.min_age_ms)
        p->source.stable_for_ms = DEF_STABLE_FOR_MS;
    if ((c = node_get(n, "after"))) {
        if (c->kind == NODE_SCALAR) {
            int a = 0;
            get_enum(w, n, "after", path, KEYS("delete", "move", "leave"), &a);
            if (a == 1)
                err_at(w, c, "source.after", "move needs a directory (after: { move: DIR })");
            p->source.after = a == 0 ? AFTER_DELETE : AFTER_LEAVE;
        } else if (want(w, c, NODE_MAP, "source.after")) {
            check_keys(w, c, "source.after", KEYS("move"));
            get_str(w, c, "move", "source.after", &p->source.after_dir);
            p->source.after = AFTER_MOVE;
            if (!p->source.after_dir)
                err_at(w, c, "source.after", "expected { move: DIR }");
        }
    }
    get_str(w, n, "host", path, &p->source.host);
    get_int(w, n, "port", path, 1, 65535, &p->source.port);
    get_str(w, n, "user", path, &p->source.user);
    get_str(w, n, "key_file", path, &p->source.key_file);
    get_str(w, n, "passphrase_file", path, &p->source.passphrase_file);
    get_str(w, n, "password_file", path, &p->source.password_file);
    get_str(w, n, "known_hosts", path, &p->source.known_hosts);
    get_duration(w, n, "timeout", path, &p->source.timeout_ms);
    get_int(w, n, "max_transfers", path, 1, 64, &p->source.connections);
    get_int(w, n, "connections", path, 1, 64, &p->source.connections);
    get_int(w, n, "parallel", path, 1, 16, &p->source.parallel);
    get_size(w, n, "parallel_min", path, &p->source.parallel_min);
    if ((c = node_get(n, "parallel_min")) && c->kind == NODE_SCALAR &&
        p->source.parallel_min < 1000000)
        err_at(w, c, "source.parallel_min", "\"%s\" is below 1MB", c->value);
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->keys[i], "password"))
            err_at(w, n->keynodes[i], "source.password",
                   "secrets are never inline; use password_file");

    if (!p->source.path)
        err_at(w, n, "source.path", "is required");
    if (p->source.type == SOURCE_SPOOL) {
        static const char *sftp_only[] = {
            "host",        "user", "key_file",    "password_file", "passphrase_file",
            "known_hosts", "port", "connections", "parallel",      "parallel_min"};
        for (size_t i = 0; i < sizeof sftp_only / sizeof *sftp_only; i++)
            if ((c = node_get(n, sftp_only[i]))) {
                char *kp = join(path, sftp_only[i]);
                err_at(w, c, kp, "only valid with type: sftp");
                free(kp);
            }
    } else {
        if (!p->source.host)
            err_at(w, n, "source.host", "is required for type: sftp");
        if (!p->source.user)
            err_at(w, n, "source.user", "is required for type: sftp");
        if (!p->source.key_file && !p->source.password_file)
            err_at(w, n, "source", "type: sftp needs key_file or password_file");
    }
}

static void load_schedule(struct walk *w, struct profile *p, const struct node *n)
{
    if (!want(w, n, NODE_MAP, "schedule"))
        return;
    check_keys(w, n, "schedule", KEYS("every", "cron", "timezone"));
    get_duration(w, n, "every", "schedule", &p->schedule.every_ms);
    get_str(w, n, "cron", "schedule", &p->schedule.cron);
    get_str(w, n, "timezone", "schedule", &p->schedule.timezone);
    if (node_get(n, "every") && node_get(n, "cron"))
        err_at(w, n, "schedule", "give either every or cron, not both");
    if (p->schedule.cron) {
        p->schedule.every_ms = 0;
        const struct node *c = node_get(n, "cron");
        struct cron parsed;
        char why[256];
        if (cron_parse(p->schedule.cron, &parsed, why, sizeof why) < 0)
            err_at(w, c, "schedule.cron", "\"%s\" is not a valid cron expression: %s",
                   p->schedule.cron, why);
    } else if (node_get(n, "every") && p->schedule.every_ms < 1000) {
        err_at(w, node_get(n, "every"), "schedule.every", "must be at least 1s");
    }
    if (node_get(n, "timezone") && !tz_valid(p->schedule.timezone))
        err_at(w, node_get(n, "timezone"), "schedule.timezone",
               "\"%s\" is not a known timezone (e.g. UTC, Europe/Berlin)", p->schedule.timezone);
}

static void load_expect(struct walk *w, struct profile *p, const struct node *n)
{
    if (!want(w, n, NODE_SEQ, "expect"))
        return;
    p->expect = xcalloc(n->n + 1, sizeof *p->expect);
    for (size_t i = 0; i < n->n; i++) {
        const struct node *e = n->items[i], *c;
        struct expect_conf *x = &p->expect[p->n_expect];
        char path[32];
        snprintf(path, sizeof path, "expect[%zu]", i);
        if (!want(w, e, NODE_MAP, path))
            continue;
        check_keys(w, e, path, KEYS("days", "by", "missing_after", "timezone"));
        x->days = 0x7f;
        x->missing_after_ms = DEF_MISSING_AFTER_MS;
        x->by_minutes = -1;
        char *kp;
        if ((c = scalar(w, e, "days", path, &kp))) {
            if (parse_days(c->value, &x->days) < 0)
                err_at(w, c, kp, "\"%s\" is not a set of days (use mon-fri, sat,sun, daily)",
                       c->value);
            free(kp);
        }
        if ((c = scalar(w, e, "by", path, &kp))) {
            if (parse_clock(c->value, &x->by_minutes) < 0)
                err_at(w, c, kp, "\"%s\" is not a time of day (use HH:MM, e.g. 07:00)", c->value);
            free(kp);
        } else {
            err_at(w, e, path, "by is required (e.g. by: \"07:00\")");
        }
        get_duration(w, e, "missing_after", path, &x->missing_after_ms);
        get_str(w, e, "timezone", path, &x->timezone);
        if (x->timezone && !tz_valid(x->timezone))
            err_at(w, node_get(e, "timezone"), path, "\"%s\" is not a known timezone", x->timezone);
        p->n_expect++;
    }
}

/*
 * encoding: { auto: [utf-8, windows-1252, iso-8859-15] }: detection chooses
 * only among these.  Each must be a charset detection can tell
 * (charset_auto_name); a multi-byte legacy charset must be pinned instead.
 */
static void load_encoding_auto(struct walk *w, struct profile *p, const struct node *n)
{
    const struct node *l = node_get(n, "auto");
    check_keys(w, n, "encoding", KEYS("auto"));
    if (!l) {
        err_at(w, n, "encoding", "needs auto: [charset, ...] (or write encoding: auto)");
        return;
    }
    if (!want(w, l, NODE_SEQ, "encoding.auto"))
        return;
    if (l->n == 0) {
        err_at(w, l, "encoding.auto", "must list at least one charset");
        return;
    }
    p->encoding_auto = xcalloc(l->n, sizeof *p->encoding_auto);
    for (size_t i = 0; i < l->n; i++) {
        const struct node *c = l->items[i];
        const char *canon;
        char path[40];
        snprintf(path, sizeof path, "encoding.auto[%zu]", i);
        if (!want(w, c, NODE_SCALAR, path))
            continue;
        canon = charset_auto_name(c->value);
        if (!canon) {
            char list[400];
            charset_auto_list(list, sizeof list);
            err_at(w, c, path,
                   "\"%s\" cannot be detected automatically (detection tells only: %s); if the "
                   "partner always sends it, pin it: encoding: %s",
                   c->value, list, c->value);
            continue;
        }
        if (!charset_known(canon)) {
            err_at(w, c, path, "\"%s\" is not known to this system's iconv", c->value);
            continue;
        }
        for (size_t j = 0; j < p->n_encoding_auto; j++)
            if (!strcmp(p->encoding_auto[j], canon)) {
                err_at(w, c, path, "\"%s\" is listed twice (as %s)", c->value, canon);
                canon = NULL;
                break;
            }
        if (canon)
            p->encoding_auto[p->n_encoding_auto++] = xstrdup(canon);
    }
}

static void load_csv(struct walk *w, struct profile *p, const struct node *n)
{
    const struct node *c;
    int hm = 0;
    if (!want(w, n, NODE_MAP, "csv"))
        return;
    check_keys(w, n, "csv",
               KEYS("dialect", "schema", "fields", "header_match", "header_case_insensitive"));
    if ((c = node_get(n, "dialect"))) {
        if (c->kind == NODE_SCALAR) {
            if (strcmp(c->value, "auto"))
                err_at(w, c, "csv.dialect",
                       "\"%s\" is not valid (use auto or { delimiter: \";\", quote: \"\\\"\", "
                       "header: true })",
                       c->value);
        } else if (want(w, c, NODE_MAP, "csv.dialect")) {
            const struct node *v;
            char *kp;
            check_keys(w, c, "csv.dialect", KEYS("delimiter", "quote", "header"));
            p->csv.dialect_pinned = true;
            if ((v = scalar(w, c, "delimiter", "csv.dialect", &kp))) {
                if (!strcmp(v->value, "\\t") || !strcmp(v->value, "\t") || !strcmp(v->value, "tab"))
                    p->csv.delimiter = '\t';
                else if (strlen(v->value) == 1 && strchr(",;|:\t", v->value[0]))
                    p->csv.delimiter = v->value[0];
                else
                    err_at(w, v, kp, "\"%s\" is not a delimiter (use , ; | : or tab)", v->value);
                free(kp);
            }
            if ((v = scalar(w, c, "quote", "csv.dialect", &kp))) {
                if (strlen(v->value) == 1 && strchr("\"'", v->value[0]))
                    p->csv.quote = v->value[0];
                else if (!strcmp(v->value, "none"))
                    p->csv.quote = 0;
                else
                    err_at(w, v, kp, "\"%s\" is not a quote character (use \" ' or none)",
                           v->value);
                free(kp);
            }
            get_bool(w, c, "header", "csv.dialect", &p->csv.header);
        }
    }
    get_str(w, n, "schema", "csv", &p->csv.schema);
    if ((c = node_get(n, "fields")) && want(w, c, NODE_SEQ, "csv.fields")) {
        /* Kept as a tree for the Table Schema engine; detached from the
         * document in profile_load once the profile is known to be good. */
        p->csv.inline_fields = (struct node *)c;
    }
    if (p->csv.schema && p->csv.inline_fields)
        err_at(w, n, "csv", "give either schema or fields, not both");
    get_enum(w, n, "header_match", "csv", KEYS("exact", "any_order"), &hm);
    p->csv.header_match = (enum header_match)hm;
    get_bool(w, n, "header_case_insensitive", "csv", &p->csv.header_case_insensitive);
}

static void load_xml(struct walk *w, struct profile *p, const struct node *n)
{
    const struct node *c;
    if (!want(w, n, NODE_MAP, "xml"))
        return;
    check_keys(w, n, "xml", KEYS("schema", "record", "fields"));
    get_str(w, n, "schema", "xml", &p->xml.schema);
    get_str(w, n, "record", "xml", &p->xml.record);
    if (p->xml.record && p->xml.record[0] != '/')
        err_at(w, node_get(n, "record"), "xml.record",
               "\"%s\" must be an absolute element path like /orders/order", p->xml.record);
    if ((c = node_get(n, "fields")) && want(w, c, NODE_MAP, "xml.fields")) {
        p->xml.fields = xcalloc(c->n + 1, sizeof *p->xml.fields);
        for (size_t i = 0; i < c->n; i++) {
            char *kp = join("xml.fields", c->keys[i]);
            if (!ident_valid(c->keys[i]))
                err_at(w, c->keynodes[i], kp,
                       "\"%s\" is not a column name (letters, digits, _; at most 63)", c->keys[i]);
            else if (want(w, c->items[i], NODE_SCALAR, kp)) {
                p->xml.fields[p->xml.n_fields].column = xstrdup(c->keys[i]);
                p->xml.fields[p->xml.n_fields].path = xstrdup(c->items[i]->value);
                p->xml.n_fields++;
            }
            free(kp);
        }
    }
}

static void load_target(struct walk *w, struct profile *p, const struct node *n)
{
    int type = 0, mode = 0, evolve = 0, lineage = p->target.lineage ? 0 : 1;
    const struct node *c;
    if (!want(w, n, NODE_MAP, "target"))
        return;
    check_keys(
        w, n, "target",
        KEYS("type", "path", "table", "mode", "key", "evolve", "lineage", "dsn_file", "schema"));
    get_enum(w, n, "lineage", "target", KEYS("line", "none"), &lineage);
    p->target.lineage = lineage == 0;
    get_enum(w, n, "type", "target", KEYS("sqlite", "postgresql"), &type);
    p->target.type = (enum target_type)type;
    get_str(w, n, "path", "target", &p->target.path);
    get_str(w, n, "table", "target", &p->target.table);
    get_str(w, n, "dsn_file", "target", &p->target.dsn_file);
    get_str(w, n, "schema", "target", &p->target.schema);
    get_enum(w, n, "mode", "target", KEYS("append", "replace", "upsert"), &mode);
    p->target.mode = (enum load_mode)mode;
    get_strlist(w, n, "key", "target", &p->target.key);
    get_enum(w, n, "evolve", "target", KEYS("none", "add_columns"), &evolve);
    p->target.evolve = (enum target_evolve)evolve;
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->keys[i], "password") || !strcmp(n->keys[i], "dsn"))
            err_at(w, n->keynodes[i], "target.dsn",
                   "secrets are never inline; put the connection string in a file and name it "
                   "with dsn_file (or use the PG* environment and ~/.pgpass)");
    if (p->target.type == TARGET_SQLITE) {
        if (!p->target.path)
            err_at(w, n, "target.path", "is required");
        if ((c = node_get(n, "dsn_file")))
            err_at(w, c, "target.dsn_file", "only valid with type: postgresql");
        if ((c = node_get(n, "schema")))
            err_at(w, c, "target.schema", "only valid with type: postgresql");
    } else {
        if ((c = node_get(n, "path")))
            err_at(w, c, "target.path",
                   "only valid with type: sqlite (a PostgreSQL target is reached through "
                   "dsn_file or the PG* environment)");
        if (!p->target.schema)
            p->target.schema = xstrdup("public");
        else if (!ident_valid(p->target.schema) || !strncmp(p->target.schema, "pg_", 3))
            err_at(w, node_get(n, "schema"), "target.schema",
                   "\"%s\" is not a schema name (letters, digits, _; at most 63; not pg_*)",
                   p->target.schema);
    }
    if (!p->target.table)
        err_at(w, n, "target.table", "is required");
    else if (!ident_valid(p->target.table) || !strncmp(p->target.table, "sqlite_", 7) ||
             !strncmp(p->target.table, "wharf_", 6))
        err_at(w, node_get(n, "table"), "target.table",
               "\"%s\" is not a table name (letters, digits, _; at most 63; not sqlite_* or "
               "wharf_*)",
               p->target.table);
    for (size_t i = 0; i < p->target.key.n; i++)
        if (!ident_valid(p->target.key.v[i]))
            err_at(w, node_get(n, "key"), "target.key", "\"%s\" is not a column name",
                   p->target.key.v[i]);
    if (p->target.mode == LOAD_UPSERT && !p->target.key.n)
        err_at(w, n, "target.key", "mode: upsert needs key: [column, ...]");
}

static void load_limits(struct walk *w, struct profile *p, const struct node *n)
{
    const char *path = "limits";
    if (!want(w, n, NODE_MAP, path))
        return;
    check_keys(w, n, path,
               KEYS("max_bytes", "max_ratio", "max_entries", "max_line", "max_field", "max_errors",
                    "max_depth", "max_attributes"));
    get_size(w, n, "max_bytes", path, &p->limits.max_bytes);
    get_uint(w, n, "max_entries", path, 1, 10000000, &p->limits.max_entries);
    get_size(w, n, "max_line", path, &p->limits.max_line);
    get_size(w, n, "max_field", path, &p->limits.max_field);
    get_uint(w, n, "max_errors", path, 1, 100000, &p->limits.max_errors);
    get_uint(w, n, "max_depth", path, 1, 10000, &p->limits.max_depth);
    get_uint(w, n, "max_attributes", path, 1, 100000, &p->limits.max_attributes);
    uint64_t ratio = (uint64_t)p->limits.max_ratio;
    get_uint(w, n, "max_ratio", path, 1, 1000000, &ratio);
    p->limits.max_ratio = (double)ratio;
    if (p->limits.max_line > (1ULL << 30))
        err_at(w, n, "limits.max_line", "must be at most 1GiB");
    if (p->limits.max_field > p->limits.max_line)
        p->limits.max_field = p->limits.max_line;
}

static void load_retry(struct walk *w, struct profile *p, const struct node *n)
{
    if (!want(w, n, NODE_MAP, "retry"))
        return;
    check_keys(w, n, "retry", KEYS("max_attempts", "backoff", "backoff_max"));
    get_int(w, n, "max_attempts", "retry", 1, 1000, &p->retry.max_attempts);
    get_duration(w, n, "backoff", "retry", &p->retry.backoff_ms);
    get_duration(w, n, "backoff_max", "retry", &p->retry.backoff_max_ms);
}

/* A control: reference: a 1-based field (numeric forms) or a key / XPath. */
static void get_control_ref(struct walk *w, const struct node *map, const char *key,
                            const char *path, bool numeric, int *field, char **ref)
{
    const struct node *n = node_get(map, key);
    char *kp;
    if (!n)
        return;
    if (numeric) {
        get_int(w, map, key, path, 1, 10000, field);
        return;
    }
    kp = join(path, key);
    if (want(w, n, NODE_SCALAR, kp)) {
        if (!*n->value)
            err_at(w, n, kp, "must not be empty");
        else
            *ref = xstrdup(n->value);
    }
    free(kp);
}

static void quiet_xml_error(void *ctx, xmlErrorPtr err)
{
    (void)ctx, (void)err;
}

/* An XPath the element form evaluates: compiled once here to refuse it early. */
static void check_xpath(struct walk *w, const struct node *n, const char *kp, const char *expr)
{
    xmlXPathCompExprPtr c;
    xmlSetStructuredErrorFunc(NULL, quiet_xml_error);
    c = xmlXPathCompile((const xmlChar *)expr);
    xmlSetStructuredErrorFunc(NULL, NULL);
    if (!c)
        err_at(w, n, kp, "\"%s\" is not an XPath expression", expr);
    xmlXPathFreeCompExpr(c);
}

/*
 * control: where the partner states its totals; exactly one of
 *   { line: last|first, pattern: "^TRL$", count: 2, sums: { amount: 3 } }
 *   { file: "{name}.ctl" | done, format: keyvalue|json|csv, count: records,
 *     sums: { amount: total }, delimiter: ",", wait: 1h, required: true }
 *   { element: /orders/trailer, count: "count", sums: { amount: "total" } }
 */
static void load_control(struct walk *w, struct profile *p, const struct node *n)
{
    const char *path = "control";
    struct control_conf *cc = &p->control;
    const struct node *c;
    bool numeric = true;
    int v = 0, forms;
    if (!want(w, n, NODE_MAP, path))
        return;
    check_keys(w, n, path,
               KEYS("line", "pattern", "file", "format", "delimiter", "wait", "required", "element",
                    "count", "sums"));
    forms = !!node_get(n, "line") + !!node_get(n, "file") + !!node_get(n, "element");
    if (forms != 1) {
        err_at(w, n, path,
               forms ? "give only one of line:, file: and element:"
                     : "says nowhere where the totals are: line: (a trailer or header record), "
                       "file: (a control file) or element: (an XML element)");
        return;
    }
    if (node_get(n, "line")) {
        get_enum(w, n, "line", path, KEYS("last", "first"), &v);
        cc->line = v == 1 ? CONTROL_HEADER : CONTROL_TRAILER;
        get_str(w, n, "pattern", path, &cc->pattern);
        if (!cc->pattern)
            err_at(w, n, "control.pattern",
                   "is required: an extended regular expression on the control record's first "
                   "field (e.g. \"^TRL$\")");
        else {
            regex_t re;
            int rc = regcomp(&re, cc->pattern, REG_EXTENDED | REG_NOSUB);
            if (rc) {
                char msg[200];
                regerror(rc, &re, msg, sizeof msg);
                err_at(w, node_get(n, "pattern"), "control.pattern",
                       "\"%s\" is not an extended regular expression: %s", cc->pattern, msg);
            } else {
                regfree(&re);
            }
        }
    } else if (node_get(n, "pattern")) {
        err_at(w, node_get(n, "pattern"), "control.pattern", "only with line:");
    }
    if (!node_get(n, "file"))
        for (const char *const *k = KEYS("format", "delimiter", "wait", "required"); *k; k++)
            if ((c = node_get(n, *k))) {
                char *kp = join(path, *k);
                err_at(w, c, kp, "only with file: (a control file)");
                free(kp);
            }
    if ((c = node_get(n, "file"))) {
        cc->line = CONTROL_FILE;
        cc->required = true;
        cc->wait_ms = DEF_CONTROL_WAIT_MS;
        cc->delimiter = ',';
        get_str(w, n, "file", path, &cc->file);
        if (cc->file && !strcmp(cc->file, "done")) {
            free(cc->file);
            cc->file = NULL;
            cc->from_done = true;
            if (!p->source.done_file)
                err_at(w, c, "control.file",
                       "done: the done file's content, but source.complete_when has no done_file");
        } else if (cc->file && (!strstr(cc->file, "{name}") || strchr(cc->file, '/'))) {
            err_at(w, c, "control.file",
                   "\"%s\" must contain {name} and no '/' (e.g. \"{name}.ctl\"), or be done",
                   cc->file);
        } else if (cc->file && p->source.done_file && !strcmp(cc->file, p->source.done_file)) {
            err_at(w, c, "control.file",
                   "\"%s\" is the done file's name: say file: done to read the done file",
                   cc->file);
        }
        v = 0;
        get_enum(w, n, "format", path, KEYS("keyvalue", "json", "csv"), &v);
        cc->format = (enum control_format)v;
        numeric = cc->format == CONTROL_CSV;
        if ((c = node_get(n, "delimiter"))) {
            char *d = NULL;
            get_str(w, n, "delimiter", path, &d);
            if (cc->format != CONTROL_CSV)
                err_at(w, c, "control.delimiter", "only with format: csv");
            else if (d && (strlen(d) != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r'))
                err_at(w, c, "control.delimiter", "\"%s\" is not one character other than a quote",
                       d);
            else if (d)
                cc->delimiter = d[0];
            free(d);
        }
        get_duration(w, n, "wait", path, &cc->wait_ms);
        get_bool(w, n, "required", path, &cc->required);
        if (cc->from_done && (c = node_get(n, "wait")))
            err_at(w, c, "control.wait",
                   "not with file: done (the done file is what makes the drop complete)");
    }
    if ((c = node_get(n, "element"))) {
        cc->line = CONTROL_XML;
        numeric = false;
        get_str(w, n, "element", path, &cc->element);
        if (cc->element) {
            bool ok = cc->element[0] == '/' && cc->element[1];
            for (const char *s = cc->element + 1; ok && *s; s++)
                ok = *s == '/' ? s[1] && s[1] != '/' : !strchr("[]()@*:|=\" '", *s);
            if (!ok)
                err_at(w, c, "control.element",
                       "\"%s\" is not an element path from the root (e.g. /orders/trailer)",
                       cc->element);
        }
    }
    get_control_ref(w, n, "count", path, numeric, &cc->count_field, &cc->count_key);
    if (cc->count_key && cc->line == CONTROL_XML)
        check_xpath(w, node_get(n, "count"), "control.count", cc->count_key);
    if ((c = node_get(n, "sums")) && want(w, c, NODE_MAP, "control.sums")) {
        cc->sums = xcalloc(c->n ? c->n : 1, sizeof *cc->sums);
        for (size_t i = 0; i < c->n; i++) {
            struct control_sum *cs = &cc->sums[cc->n_sums];
            char *kp = join("control.sums", c->keys[i]);
            int f = 0;
            char *ref = NULL;
            if (!ident_valid(c->keys[i]))
                err_at(w, c->keynodes[i], kp, "\"%s\" is not a column name", c->keys[i]);
            get_control_ref(w, c, c->keys[i], "control.sums", numeric, &f, &ref);
            if (ref && cc->line == CONTROL_XML)
                check_xpath(w, c->items[i], kp, ref);
            if (f || ref) {
                cs->column = xstrdup(c->keys[i]);
                cs->field = f;
                cs->key = ref;
                cc->n_sums++;
            }
            free(kp);
        }
    }
    if (!cc->count_field && !cc->count_key && !cc->n_sums)
        err_at(w, n, path,
               numeric ? "states nothing: give count: FIELD and/or sums: { column: FIELD }"
                       : "states nothing: give count: KEY and/or sums: { column: KEY }");
}

/* deliver: one partner { host, port, user, key_file | password_file,
 * passphrase_file, known_hosts, path, timeout, done_file: bool } or a list of
 * them (fan-out). */
static void load_deliver_one(struct walk *w, struct deliver_conf *d, const struct node *n)
{
    const char *path = "deliver";
    struct source_conf *sc = &d->sftp;
    if (!want(w, n, NODE_MAP, path))
        return;
    check_keys(w, n, path,
               KEYS("host", "port", "user", "key_file", "passphrase_file", "password_file",
                    "known_hosts", "path", "timeout", "done_file"));
    sc->type = SOURCE_SFTP;
    sc->port = DEF_SFTP_PORT;
    sc->timeout_ms = DEF_SFTP_TIMEOUT_MS;
    get_str(w, n, "host", path, &sc->host);
    get_int(w, n, "port", path, 1, 65535, &sc->port);
    get_str(w, n, "user", path, &sc->user);
    get_str(w, n, "key_file", path, &sc->key_file);
    get_str(w, n, "passphrase_file", path, &sc->passphrase_file);
    get_str(w, n, "password_file", path, &sc->password_file);
    get_str(w, n, "known_hosts", path, &sc->known_hosts);
    get_str(w, n, "path", path, &sc->path);
    get_duration(w, n, "timeout", path, &sc->timeout_ms);
    get_bool(w, n, "done_file", path, &d->done_file);
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->keys[i], "password"))
            err_at(w, n->keynodes[i], "deliver.password",
                   "secrets are never inline; use password_file");
    if (!sc->host)
        err_at(w, n, "deliver.host", "is required");
    if (!sc->user)
        err_at(w, n, "deliver.user", "is required");
    if (!sc->path)
        err_at(w, n, "deliver.path", "is required (the partner's directory)");
    if (!sc->key_file && !sc->password_file)
        err_at(w, n, "deliver", "needs key_file or password_file");
}

static void load_deliver(struct walk *w, struct profile *p, const struct node *n)
{
    size_t k = n->kind == NODE_SEQ ? n->n : 1;
    p->deliver = xcalloc(k, sizeof *p->deliver);
    p->n_deliver = k;
    for (size_t i = 0; i < k; i++)
        load_deliver_one(w, &p->deliver[i], n->kind == NODE_SEQ ? n->items[i] : n);
}

/* receipt: { dir: DIR | path: REMOTE_DIR, formats: [json, csv], max_problems: N } */
static void load_receipt(struct walk *w, struct profile *p, const struct node *n)
{
    struct strlist formats = {0};
    struct receipt_conf *rc = &p->receipt;
    if (!want(w, n, NODE_MAP, "receipt"))
        return;
    check_keys(w, n, "receipt", KEYS("dir", "path", "formats", "max_problems"));
    get_str(w, n, "dir", "receipt", &rc->dir);
    get_str(w, n, "path", "receipt", &rc->path);
    get_int(w, n, "max_problems", "receipt", 1, 10000, &rc->max_problems);
    get_strlist(w, n, "formats", "receipt", &formats);
    rc->enabled = true;
    rc->json = !formats.n;
    for (size_t i = 0; i < formats.n; i++) {
        if (!strcmp(formats.v[i], "json"))
            rc->json = true;
        else if (!strcmp(formats.v[i], "csv"))
            rc->csv = true;
        else
            err_at(w, node_get(n, "formats"), "receipt.formats",
                   "\"%s\" is not a receipt format (json, csv)", formats.v[i]);
    }
    strlist_free(&formats);
    if (!!rc->dir == !!rc->path)
        err_at(w, n, "receipt",
               "needs exactly one of dir: (a local directory) or path: (a directory on the "
               "source's SFTP server)");
    else if (rc->path && p->source.type != SOURCE_SFTP)
        err_at(w, node_get(n, "path"), "receipt.path",
               "only valid with an sftp source; a spool partner's receipts go to dir:");
}

static void load_health(struct walk *w, struct profile *p, const struct node *n)
{
    const struct node *f;
    if (!want(w, n, NODE_MAP, "health"))
        return;
    check_keys(w, n, "health", KEYS("rejecting_after", "stuck_after", "flood"));
    get_int(w, n, "rejecting_after", "health", 1, 1000, &p->health.rejecting_after);
    get_duration(w, n, "stuck_after", "health", &p->health.stuck_after_ms);
    if ((f = node_get(n, "flood")) && want(w, f, NODE_MAP, "health.flood")) {
        check_keys(w, f, "health.flood", KEYS("duplicates", "within"));
        get_int(w, f, "duplicates", "health.flood", 1, 1000000, &p->health.flood_duplicates);
        get_duration(w, f, "within", "health.flood", &p->health.flood_within_ms);
    }
}

struct profile *profile_load(const struct wharf_config *cfg, const char *path, struct diags *d)
{
    struct walk w = {.d = d, .errors_before = d->n};
    struct profile *p = xcalloc(1, sizeof *p);
    struct node *root = node_load(path, d), *n;
    const char *base, *dot;
    int v;

    profile_defaults(p);
    p->file = xstrdup(path);
    if (!root)
        goto fail;
    if (!want(&w, root, NODE_MAP, ""))
        goto fail;
    check_keys(&w, root, "",
               KEYS("name", "enabled", "source", "schedule", "expect", "encoding", "format", "csv",
                    "xml", "target", "on_invalid", "max_invalid", "duplicates", "archive_parts",
                    "limits", "retry", "order", "concurrency", "health", "reconcile", "control",
                    "receipt", "direction", "deliver"));
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    p->name = xstrndup(base, dot ? (size_t)(dot - base) : strlen(base));
    if ((n = node_get(root, "name")) && want(&w, n, NODE_SCALAR, "name")) {
        if (!name_valid(n->value))
            err_at(&w, n, "name",
                   "\"%s\" is not a profile name (letters, digits, - and _; at most 64)", n->value);
        else if (strcmp(n->value, p->name))
            err_at(&w, n, "name", "\"%s\" must match the file name (%s)", n->value, base);
    } else if (!name_valid(p->name)) {
        diag_add(d, path, 0, 0, NULL, "file name is not a valid profile name");
    }
    get_bool(&w, root, "enabled", "", &p->enabled);
    if ((n = node_get(root, "source")))
        load_source(&w, p, n);
    else
        err_at(&w, root, "source", "is required");
    if ((n = node_get(root, "schedule")))
        load_schedule(&w, p, n);
    if ((n = node_get(root, "expect")))
        load_expect(&w, p, n);
    if ((n = node_get(root, "encoding")) && n->kind == NODE_MAP)
        load_encoding_auto(&w, p, n);
    else
        get_str(&w, root, "encoding", "", &p->encoding);
    if ((n = node_get(root, "encoding")) && n->kind == NODE_SCALAR && strcmp(n->value, "auto")) {
        /* The charset must be one iconv knows. */
        char cmd[160];
        bool ok = true;
        for (const char *s = n->value; *s; s++)
            if (!isalnum((unsigned char)*s) && !strchr("-_:.", *s))
                ok = false;
        if (ok) {
            snprintf(cmd, sizeof cmd, "%s", n->value);
            ok = charset_known(cmd);
        }
        if (!ok)
            err_at(&w, n, "encoding",
                   "\"%s\" is not a known charset (use auto, utf-8, windows-1252, iso-8859-15, "
                   "utf-16, ...)",
                   n->value);
    }
    v = p->format;
    get_enum(&w, root, "format", "", KEYS("auto", "csv", "xml"), &v);
    p->format = (enum data_format)v;
    if ((n = node_get(root, "csv")))
        load_csv(&w, p, n);
    if ((n = node_get(root, "xml")))
        load_xml(&w, p, n);
    if ((n = node_get(root, "target")))
        load_target(&w, p, n);
    else if (!node_get(root, "direction") || !node_get(root, "deliver"))
        err_at(&w, root, "target", "is required");
    v = p->on_invalid;
    get_enum(&w, root, "on_invalid", "", KEYS("reject", "split"), &v);
    p->on_invalid = (enum on_invalid)v;
    if ((n = node_get(root, "max_invalid")) && want(&w, n, NODE_SCALAR, "max_invalid")) {
        if (strchr(n->value, '%')) {
            if (parse_percent(n->value, &p->max_invalid_pct) < 0)
                err_at(&w, n, "max_invalid", "\"%s\" is not a percentage (e.g. 5%%)", n->value);
        } else if (parse_uint(n->value, UINT64_MAX, &p->max_invalid_count) < 0) {
            err_at(&w, n, "max_invalid", "\"%s\" is not a count or a percentage (e.g. 100 or 5%%)",
                   n->value);
        }
    }
    v = p->duplicates;
    get_enum(&w, root, "duplicates", "", KEYS("skip", "reject", "load"), &v);
    p->duplicates = (enum dup_policy)v;
    v = 0;
    get_enum(&w, root, "archive_parts", "", KEYS("all", "independent"), &v);
    p->archive_parts_independent = v == 1;
    if ((n = node_get(root, "limits")))
        load_limits(&w, p, n);
    if ((n = node_get(root, "retry")))
        load_retry(&w, p, n);
    v = p->order;
    get_enum(&w, root, "order", "", KEYS("none", "name", "mtime"), &v);
    p->order = (enum order_by)v;
    get_int(&w, root, "concurrency", "", 1, 64, &p->concurrency);
    if ((n = node_get(root, "reconcile")) && want(&w, n, NODE_MAP, "reconcile")) {
        check_keys(&w, n, "reconcile", KEYS("every"));
        get_duration(&w, n, "every", "reconcile", &p->reconcile_every_ms);
    }
    if ((n = node_get(root, "health")))
        load_health(&w, p, n);
    if ((n = node_get(root, "control")))
        load_control(&w, p, n);
    if ((p->control.line == CONTROL_TRAILER || p->control.line == CONTROL_HEADER) &&
        p->format == FORMAT_XML)
        err_at(&w, node_get(root, "control"), "control",
               "a trailer or header record needs CSV data (format: xml has none; use element:)");
    if (p->control.line == CONTROL_XML && p->format == FORMAT_CSV)
        err_at(&w, node_get(root, "control"), "control", "element: needs XML data (format: xml)");
    if ((n = node_get(root, "receipt")))
        load_receipt(&w, p, n);
    v = 0;
    get_enum(&w, root, "direction", "", KEYS("inbound", "outbound"), &v);
    p->outbound = v == 1;
    if ((n = node_get(root, "deliver"))) {
        if (!p->outbound)
            err_at(&w, n, "deliver", "only valid with direction: outbound");
        else
            load_deliver(&w, p, n);
    }
    if (p->outbound) {
        if (!p->n_deliver)
            err_at(&w, root, "deliver",
                   "direction: outbound needs deliver: (the partner's server)");
        if (p->source.type != SOURCE_SPOOL)
            err_at(&w, node_get(root, "source"), "source.type",
                   "direction: outbound takes files from a local spool");
        if (node_get(root, "target"))
            err_at(&w, node_get(root, "target"), "target",
                   "an outbound profile delivers to deliver:, it has no target");
        if (node_get(root, "receipt"))
            err_at(&w, node_get(root, "receipt"), "receipt", "only for inbound profiles");
        /* csv:/xml: validate the file before it is sent; it goes whole or
         * not at all, and nothing reads a control record out of it. */
        if (p->on_invalid == ON_INVALID_SPLIT)
            err_at(&w, node_get(root, "on_invalid"), "on_invalid",
                   "an outbound file is sent whole or not at all: only on_invalid: reject");
        if (node_get(root, "control"))
            err_at(&w, node_get(root, "control"), "control", "only for inbound profiles");
    }
    if (!p->health.stuck_after_ms) {
        p->health.stuck_after_ms = DEF_STUCK_FACTOR * p->source.stable_for_ms;
        if (p->health.stuck_after_ms < DEF_STUCK_MIN_MS)
            p->health.stuck_after_ms = DEF_STUCK_MIN_MS;
    }

    /* What the format needs. */
    if ((p->format == FORMAT_CSV || p->format == FORMAT_AUTO) && !node_get(root, "csv") &&
        p->format == FORMAT_CSV)
        err_at(&w, root, "csv", "format: csv needs csv.schema or csv.fields");
    if (node_get(root, "csv") && !p->csv.schema && !p->csv.inline_fields)
        err_at(&w, node_get(root, "csv"), "csv", "needs schema or fields");
    if (p->format == FORMAT_XML && !node_get(root, "xml"))
        err_at(&w, root, "xml", "format: xml needs xml.schema, xml.record and xml.fields");
    if (node_get(root, "xml")) {
        if (!p->xml.schema)
            err_at(&w, node_get(root, "xml"), "xml.schema", "is required");
        if (!p->xml.record)
            err_at(&w, node_get(root, "xml"), "xml.record", "is required");
        if (!p->xml.n_fields && !node_get(node_get(root, "xml"), "fields"))
            err_at(&w, node_get(root, "xml"), "xml.fields", "is required");
    }
    if (p->format == FORMAT_AUTO && !node_get(root, "csv") && !node_get(root, "xml") &&
        !p->outbound)
        err_at(&w, root, "format", "needs a csv: or xml: section");
    if (p->on_invalid != ON_INVALID_SPLIT && node_get(root, "max_invalid"))
        err_at(&w, node_get(root, "max_invalid"), "max_invalid",
               "only applies to on_invalid: split");
    /* Schema references must resolve inside schemas_dir. */
    const struct {
        const char *sect, *key;
        char *ref;
    } refs[] = {{"csv", "schema", p->csv.schema}, {"xml", "schema", p->xml.schema}};
    for (size_t i = 0; i < 2; i++) {
        struct node *sec = node_get(root, refs[i].sect), *kn = node_get(sec, refs[i].key);
        char *full, kp[32];
        if (!refs[i].ref || !kn)
            continue;
        snprintf(kp, sizeof kp, "%s.%s", refs[i].sect, refs[i].key);
        full = config_schema_path(cfg, refs[i].ref);
        if (!full)
            err_at(&w, kn, kp, "\"%s\" must be a relative path inside schemas_dir (%s)",
                   refs[i].ref, cfg->schemas_dir);
        else if (access(full, R_OK) < 0)
            err_at(&w, kn, kp, "\"%s\" not found in schemas_dir (%s)", refs[i].ref,
                   cfg->schemas_dir);
        free(full);
    }

    diag_sort(d, w.errors_before);
    if (d->n > w.errors_before)
        goto fail;
    /* Detach the inline fields subtree so the profile owns it. */
    if (p->csv.inline_fields) {
        struct node *csvn = node_get(root, "csv");
        for (size_t i = 0; i < csvn->n; i++)
            if (csvn->items[i] == p->csv.inline_fields) {
                csvn->items[i] = NULL;
                break;
            }
        /* Its nodes name root's file string: give it its own copy. */
        p->csv.inline_fields->file_owned = xstrdup(root->file);
        node_set_file(p->csv.inline_fields, p->csv.inline_fields->file_owned);
    }
    node_free(root);
    return p;
fail:
    p->csv.inline_fields = NULL;
    node_free(root);
    profile_free(p);
    return NULL;
}

void profile_free(struct profile *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->file);
    free(p->receipt.dir);
    free(p->receipt.path);
    for (size_t i = 0; i < p->n_deliver; i++) {
        struct source_conf *sc = &p->deliver[i].sftp;
        free(sc->host);
        free(sc->user);
        free(sc->key_file);
        free(sc->passphrase_file);
        free(sc->password_file);
        free(sc->known_hosts);
        free(sc->path);
    }
    free(p->deliver);
    free(p->source.path);
    free(p->source.pattern);
    strlist_free(&p->source.ignore);
    free(p->source.done_file);
    free(p->source.after_dir);
    free(p->source.host);
    free(p->source.user);
    free(p->source.key_file);
    free(p->source.passphrase_file);
    free(p->source.password_file);
    free(p->source.known_hosts);
    free(p->schedule.cron);
    free(p->schedule.timezone);
    for (size_t i = 0; i < p->n_expect; i++)
        free(p->expect[i].timezone);
    free(p->expect);
    free(p->encoding);
    for (size_t i = 0; i < p->n_encoding_auto; i++)
        free(p->encoding_auto[i]);
    free(p->encoding_auto);
    free(p->csv.schema);
    node_free(p->csv.inline_fields);
    free(p->xml.schema);
    free(p->xml.record);
    for (size_t i = 0; i < p->xml.n_fields; i++) {
        free(p->xml.fields[i].column);
        free(p->xml.fields[i].path);
    }
    free(p->xml.fields);
    free(p->target.path);
    free(p->target.table);
    free(p->target.dsn_file);
    free(p->target.schema);
    strlist_free(&p->target.key);
    free(p->control.pattern);
    free(p->control.count_key);
    free(p->control.file);
    free(p->control.element);
    for (size_t i = 0; i < p->control.n_sums; i++) {
        free(p->control.sums[i].column);
        free(p->control.sums[i].key);
    }
    free(p->control.sums);
    free(p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int profiles_load(const struct wharf_config *cfg, char **names, size_t n, struct profile_set *set,
                  struct diags *d)
{
    DIR *dir;
    struct dirent *de;
    char **files = NULL;
    size_t nf = 0, i, j;
    int r = 0;

    memset(set, 0, sizeof *set);
    dir = opendir(cfg->profiles_dir);
    if (!dir) {
        diag_add(d, cfg->profiles_dir, 0, 0, NULL, "cannot open profiles directory: %s",
                 strerror(errno));
        return -1;
    }
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6)
            continue;
        if (strcmp(de->d_name + len - 5, ".yaml") && strcmp(de->d_name + len - 4, ".yml"))
            continue;
        files = xrealloc(files, (nf + 1) * sizeof *files);
        files[nf++] = xstrdup(de->d_name);
    }
    closedir(dir);
    if (nf)
        qsort(files, nf, sizeof *files, cmp_str);
    for (j = 0; j < n; j++) {
        bool found = false;
        for (i = 0; i < nf; i++) {
            const char *dot = strrchr(files[i], '.');
            if (strlen(names[j]) == (size_t)(dot - files[i]) &&
                !strncmp(files[i], names[j], (size_t)(dot - files[i])))
                found = true;
        }
        if (!found) {
            diag_add(d, cfg->profiles_dir, 0, 0, NULL, "no profile named \"%s\"", names[j]);
            r = -1;
        }
    }
    for (i = 0; i < nf; i++) {
        char *path;
        struct profile *p;
        const char *dot = strrchr(files[i], '.');
        bool wanted = n == 0;
        for (j = 0; j < n && !wanted; j++)
            wanted = strlen(names[j]) == (size_t)(dot - files[i]) &&
                     !strncmp(files[i], names[j], (size_t)(dot - files[i]));
        if (!wanted)
            continue;
        path = xasprintf("%s/%s", cfg->profiles_dir, files[i]);
        p = profile_load(cfg, path, d);
        free(path);
        if (!p) {
            r = -1;
            continue;
        }
        if (profiles_find(set, p->name)) {
            diag_add(d, p->file, 0, 0, NULL, "duplicate profile name \"%s\"", p->name);
            profile_free(p);
            r = -1;
            continue;
        }
        set->v = xrealloc(set->v, (set->n + 1) * sizeof *set->v);
        set->v[set->n++] = p;
    }
    for (i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    return r;
}

void profiles_free(struct profile_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        profile_free(set->v[i]);
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

struct profile *profiles_find(const struct profile_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->v[i]->name, name))
            return set->v[i];
    return NULL;
}

char *deliver_url(const struct deliver_conf *d)
{
    const struct source_conf *sc = &d->sftp;
    return xasprintf("sftp://%s@%s:%d%s%s", sc->user, sc->host, sc->port,
                     sc->path[0] == '/' ? "" : "/", sc->path);
}
