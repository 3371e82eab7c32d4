/*
 * config: wharf.yaml and the profiles, as typed structs.
 *
 * config_load reads wharf.yaml (or the built-in defaults when there is none),
 * profiles_load reads every profiles/<name>.yaml.  Both report every problem
 * they find into a struct diags (file:line:column: key.path: what is wrong
 * and what would be valid) and keep going; a profile with any problem is not
 * returned.  Unknown keys are errors.
 *
 * All defaults live in defaults.h, documented there and in
 * docs/configuration.md.
 */
#ifndef WHARF_CONFIG_H
#define WHARF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"
#include "config/node.h"

enum source_type { SOURCE_SPOOL, SOURCE_SFTP };
enum after_action { AFTER_DELETE, AFTER_MOVE, AFTER_LEAVE };
enum data_format { FORMAT_AUTO, FORMAT_CSV, FORMAT_XML };
enum on_invalid { ON_INVALID_REJECT, ON_INVALID_SPLIT };
enum dup_policy { DUP_SKIP, DUP_REJECT, DUP_LOAD };
enum target_type { TARGET_SQLITE, TARGET_POSTGRESQL };
enum load_mode { LOAD_APPEND, LOAD_REPLACE, LOAD_UPSERT };
enum order_by { ORDER_NONE, ORDER_NAME, ORDER_MTIME };
enum header_match { HEADER_EXACT, HEADER_ANY_ORDER };

struct strlist {
    char **v;
    size_t n;
};

struct source_conf {
    enum source_type type;
    char *path;    /* spool dir, or remote dir */
    char *pattern; /* glob on the file name */
    bool recursive;
    struct strlist ignore; /* globs of names never taken */
    int64_t stable_for_ms; /* 0: not used */
    char *done_file;       /* "{name}.done", NULL: not used */
    int64_t min_age_ms;
    enum after_action after;
    char *after_dir;
    /* sftp */
    char *host;
    int port;
    char *user;
    char *key_file;
    char *passphrase_file;
    char *password_file;
    char *known_hosts;
    int64_t timeout_ms;
    /* sftp: SSH connections to the source at once (files in flight; see
     * docs/configuration.md "Choosing connections"); max_transfers is its
     * older name */
    int connections;
    /* sftp: a file of at least 2 x parallel_min bytes is fetched over up
     * to `parallel` SSH sessions at once, one range each (sftp.c) */
    int parallel;
    uint64_t parallel_min;
};

struct schedule_conf {
    int64_t every_ms; /* 0 when cron is used */
    char *cron;
    char *timezone;
};

struct expect_conf {
    uint8_t days;   /* bit 0 = Sunday */
    int by_minutes; /* minutes after local midnight */
    int64_t missing_after_ms;
    char *timezone;
};

struct csv_conf {
    bool dialect_pinned;
    char delimiter;
    char quote;
    bool header;
    char *schema;               /* Table Schema file, relative to schemas_dir */
    struct node *inline_fields; /* inline `fields:` (a seq), owned */
    enum header_match header_match;
    bool header_case_insensitive;
};

struct xml_field {
    char *column;
    char *path; /* "child", "child/grand", "@attr" */
};

struct xml_conf {
    char *schema; /* XSD, relative to schemas_dir */
    char *record; /* "/orders/order" */
    struct xml_field *fields;
    size_t n_fields;
};

/* How a target table may follow its schema (docs/configuration.md). */
enum target_evolve {
    EVOLVE_NONE,        /* the table must already have every column */
    EVOLVE_ADD_COLUMNS, /* a new optional field becomes a new nullable column */
};

struct target_conf {
    enum target_type type;
    char *path; /* sqlite: the database file */
    char *table;
    char *dsn_file; /* postgresql: a file holding a libpq conninfo string or URI; NULL: PG* env */
    char *schema;   /* postgresql: the schema the table lives in (default public) */
    enum load_mode mode;
    struct strlist key; /* upsert key columns */
    enum target_evolve evolve;
    bool lineage; /* lineage: line (default) stores each row's source line in _wharf_line */
};

struct limits_conf {
    uint64_t max_bytes;      /* bytes taken, and expanded, per intake */
    double max_ratio;        /* expanded / compressed */
    uint64_t max_entries;    /* archive members */
    uint64_t max_line;       /* bytes per CSV record */
    uint64_t max_field;      /* bytes per field */
    uint64_t max_errors;     /* errors kept in a report */
    uint64_t max_depth;      /* XML nesting */
    uint64_t max_attributes; /* XML attributes + namespace declarations per element */
};

struct retry_conf {
    int max_attempts;
    int64_t backoff_ms;     /* first delay */
    int64_t backoff_max_ms; /* cap */
};

/* What `wharf status` and the alerts count as a problem (health:). */
struct health_conf {
    int rejecting_after;     /* the last N finished intakes all rejected: rejecting */
    int64_t stuck_after_ms;  /* 0: 10 x stable_for, at least 15 minutes */
    int flood_duplicates;    /* at least this many duplicates ... */
    int64_t flood_within_ms; /* ... within this window: flooding */
};

/* control: the partner's own totals, compared before the load commits
 * (docs/configuration.md "control").  Where they are stated is one of:
 *   line:    a trailer or header record of the CSV data (fields 1-based);
 *   file:    a control file beside the data file ("{name}.ctl"), or the
 *            done file's own content (file: done), in key=value, JSON or
 *            one CSV line (keys, dotted JSON paths, or 1-based fields);
 *   element: an element of the XML document (header or trailer), the
 *            count and sums XPath expressions evaluated on it alone. */
enum control_line { CONTROL_NONE, CONTROL_TRAILER, CONTROL_HEADER, CONTROL_FILE, CONTROL_XML };
enum control_format { CONTROL_KV, CONTROL_JSON, CONTROL_CSV };

struct control_sum {
    char *column; /* a column of the schema */
    int field;    /* the control record's field holding its sum (line:, file: csv) */
    char *key;    /* the key, dotted JSON path or XPath holding it (file:, element:) */
};

struct control_conf {
    enum control_line line; /* CONTROL_NONE: no control: section */
    char *pattern;          /* POSIX ERE on the control record's first field */
    int count_field;        /* 0: no count stated */
    char *count_key;        /* file: kv/json key; element: XPath; NULL: no count */
    struct control_sum *sums;
    size_t n_sums;
    /* file: */
    char *file;     /* "{name}.ctl"; NULL with from_done */
    bool from_done; /* file: done -- the done file's content */
    enum control_format format;
    char delimiter;  /* format csv */
    bool required;   /* default true: a drop without one waits, then is rejected */
    int64_t wait_ms; /* how long a drop waits for its control file */
    /* element: */
    char *element; /* "/orders/trailer": local names from the root */
};
/* receipt: an acknowledgement written to the partner after sealing
 * (src/reply/receipt.c, docs/receipts.md).  Exactly one of dir (a local
 * directory, for spool partners) or path (a remote directory on the
 * profile's own SFTP server) is set when enabled. */
struct receipt_conf {
    bool enabled;
    char *dir;  /* local outbox */
    char *path; /* remote outbox, relative to the SFTP login directory or absolute */
    bool json, csv;
    int max_problems; /* problems listed in a reject's receipt; the rest are counted */
};

/* direction: outbound: where a taken file is delivered (src/load/sftp_push.c).
 * The connection fields use source_conf's (type sftp); path is the remote
 * directory. */
struct deliver_conf {
    struct source_conf sftp;
    bool done_file; /* also write "<name>.done" holding "<size> <sha256>" */
};

struct profile {
    char *name;
    char *file; /* the YAML it came from */
    bool enabled;
    struct source_conf source;
    struct schedule_conf schedule;
    struct expect_conf *expect;
    size_t n_expect;
    char *encoding; /* "auto" or a charset name */
    /* encoding: { auto: [...] }: the canonical charsets detection may choose
     * among, in the profile's order; NULL = the default list (encoding.c) */
    char **encoding_auto;
    size_t n_encoding_auto;
    enum data_format format;
    struct csv_conf csv;
    struct xml_conf xml;
    struct target_conf target;
    enum on_invalid on_invalid;
    uint64_t max_invalid_count; /* split: 0 = no count limit */
    double max_invalid_pct;     /* split: <0 = no percent limit */
    enum dup_policy duplicates;
    bool archive_parts_independent;
    struct limits_conf limits;
    struct retry_conf retry;
    enum order_by order;
    int concurrency;
    struct health_conf health;
    int64_t reconcile_every_ms; /* reconcile.every; 0: wharf.yaml's (or never) */
    struct control_conf control;
    struct receipt_conf receipt;
    bool outbound;                /* direction: outbound */
    struct deliver_conf *deliver; /* outbound: one per partner (fan-out) */
    size_t n_deliver;
};

struct wharf_config {
    char *file; /* NULL when built-in defaults are used */
    char *state_dir;
    char *profiles_dir;
    char *schemas_dir;
    int workers;
    char *ledger_type;          /* "sqlite" (default) or "postgresql" */
    char *ledger_path;          /* default <state_dir>/ledger.db */
    char *ledger_dsn_file;      /* postgresql: libpq connection string file; NULL: PG* env */
    char *node;                 /* this node's name (node:), default the host name */
    int64_t lease_ms;           /* lease: how long its intakes stay its own unrenewed */
    char *known_hosts;          /* global known_hosts for sftp sources */
    char *alert;                /* command run with an event as JSON on stdin */
    int log_json;               /* -1 auto, 0 text, 1 json */
    int64_t reconcile_every_ms; /* reconcile.every for every profile; 0: never */
    int64_t verify_every_ms;    /* verify.every: the server re-verifies the archive; 0: never */
    uint64_t verify_rate;       /* verify.rate: bytes re-hashed per second at most; 0: no limit */
    struct console_conf {
        bool enabled;             /* a `console:` section is present (and not enabled: false) */
        char *listen;             /* "127.0.0.1:8470" */
        char *tls_cert, *tls_key; /* PEM files; required off loopback */
        char *users_file;         /* default <state_dir>/console-users */
        char *metrics_token_file; /* bearer token for /metrics off loopback */
        int max_connections;      /* in all */
        int max_per_ip;           /* per client address */
        int64_t timeout_ms;       /* an idle or slow connection is closed after this */
        uint64_t max_request;     /* bytes of a request body */
    } console;
    /* derived */
    char *work_dir, *archive_dir, *rejects_dir, *quarantine_dir;
};

struct profile_set {
    struct profile **v;
    size_t n;
};

/* path NULL: ./wharf.yaml if present, else defaults. Returns 0 when clean. */
int config_load(const char *path, struct wharf_config *cfg, struct diags *d);
void config_free(struct wharf_config *cfg);

/* Load profiles from cfg->profiles_dir; names NULL/n==0 means all.
 * Returns 0 when every requested profile loaded clean. */
int profiles_load(const struct wharf_config *cfg, char **names, size_t n, struct profile_set *set,
                  struct diags *d);
/* Fill a zeroed profile with every default (defaults.h); tests build
 * profiles this way and then set what they need. */
void profile_defaults(struct profile *p);
void config_defaults(struct wharf_config *cfg, const char *state_dir);

/* Parse one profile file. NULL when it has problems (added to d). */
struct profile *profile_load(const struct wharf_config *cfg, const char *path, struct diags *d);
void profile_free(struct profile *p);
void profiles_free(struct profile_set *set);
struct profile *profiles_find(const struct profile_set *set, const char *name);
/* "sftp://user@host:port/path": how a deliver: entry is named in the
 * ledger, the log and `wharf status` (malloc'd). */
char *deliver_url(const struct deliver_conf *d);

/* Resolve a schema reference under schemas_dir; refuses absolute paths and
 * "..".  Returns malloc'd path or NULL. */
char *config_schema_path(const struct wharf_config *cfg, const char *ref);

/* A SQL identifier wharf accepts from a profile: [A-Za-z_][A-Za-z0-9_]{0,62}. */
bool ident_valid(const char *s);
/* fnmatch-style glob syntax check (balanced brackets, no '/'). */
bool glob_valid(const char *s);

#endif
