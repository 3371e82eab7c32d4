/*
 * defaults: every default value of wharf.yaml and of a profile, in one
 * place.  docs/configuration.md lists the same values for operators.
 */
#ifndef WHARF_DEFAULTS_H
#define WHARF_DEFAULTS_H

/* wharf.yaml */
#define DEF_STATE_DIR           "var"
#define DEF_PROFILES_DIR        "profiles"
#define DEF_SCHEMAS_DIR         "schemas"
#define DEF_WORKERS             2
#define DEF_LEDGER_TYPE         "sqlite"
#define DEF_LEDGER_FILE         "ledger.db" /* under state_dir */
#define DEF_LEASE_MS            60000 /* an intake in progress stays its node's this long unrenewed */
#define DEF_VERIFY_EVERY_MS     (24LL * 3600 * 1000)  /* the server re-verifies daily */
#define DEF_VERIFY_RATE         (32ULL * 1024 * 1024) /* bytes/s: leaves the disk to loads */
#define DEF_CONSOLE_LISTEN      "127.0.0.1:8470"
#define DEF_CONSOLE_USERS       "console-users" /* under state_dir */
#define DEF_CONSOLE_CONNS       64
#define DEF_CONSOLE_PER_IP      16
#define DEF_CONSOLE_TIMEOUT_MS  30000
#define DEF_CONSOLE_MAX_REQUEST (64 * 1024)

/* profile: source */
#define DEF_PATTERN         "*"
#define DEF_IGNORE          ".*", "*.tmp", "*.part", "*.partial", "*.filepart", "*~"
#define DEF_STABLE_FOR_MS   10000 /* used when neither stable_for nor done_file is given */
#define DEF_SFTP_PORT       22
#define DEF_SFTP_TIMEOUT_MS 30000
#define DEF_CONNECTIONS     4
#define DEF_PARALLEL        1
#define DEF_PARALLEL_MIN    (64ULL << 20) /* bytes a range at least */

/* profile: schedule */
#define DEF_EVERY_MS         30000
#define DEF_TIMEZONE         "UTC"
#define DEF_MISSING_AFTER_MS (2 * 3600 * 1000) /* late at `by`, missing 2h later */

/* profile: processing */
#define DEF_ENCODING "auto"

/* profile: limits */
#define DEF_MAX_BYTES      (10ULL * 1024 * 1024 * 1024) /* 10 GiB expanded */
#define DEF_MAX_RATIO      200.0
#define DEF_MAX_ENTRIES    10000
#define DEF_MAX_LINE       (1024 * 1024) /* 1 MiB per CSV record */
#define DEF_MAX_FIELD      (256 * 1024)
#define DEF_MAX_ERRORS     100
#define DEF_MAX_DEPTH      256
#define DEF_MAX_ATTRIBUTES 256 /* per XML element, namespace declarations included */

/* profile: retry of transient failures */
#define DEF_MAX_ATTEMPTS   8
#define DEF_BACKOFF_MS     1000
#define DEF_BACKOFF_MAX_MS (15 * 60 * 1000)

/* profile: receipt: problems listed in a reject's receipt (the rest counted) */
#define DEF_RECEIPT_MAX_PROBLEMS 50

#define DEF_CONCURRENCY 1

/* profile: control: file: how long a drop waits for its control file */
#define DEF_CONTROL_WAIT_MS (3600 * 1000)
/* the largest control file (or done file read as one), and control element */
#define CONTROL_MAX_BYTES (64 * 1024)

/* profile: health (what `wharf status` and the alerts call a problem) */
#define DEF_REJECTING_AFTER  1                /* the last intake rejected */
#define DEF_STUCK_MIN_MS     (15 * 60 * 1000) /* stuck_after: 10 x stable_for, >= this */
#define DEF_STUCK_FACTOR     10
#define DEF_FLOOD_DUPLICATES 5
#define DEF_FLOOD_WITHIN_MS  (3600 * 1000)

#endif
