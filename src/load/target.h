/*
 * target: where accepted rows go.  One implementation file per backend
 * (sqlite.c, postgres.c; dir.c, sftp_push.c later) behind this table of
 * function pointers.
 *
 * The exactly-once contract: begin .. insert* .. commit is ONE transaction
 * in the target that also writes a row (intake, rows, sha256, time) into the
 * target's own wharf_loads table.  After a crash, `loaded` finds that row and
 * the pipeline moves on without loading again.
 */
#ifndef WHARF_TARGET_H
#define WHARF_TARGET_H

#include <stdint.h>

#include "config/config.h"
#include "load/keydigest.h"
#include "util/err.h"
#include "util/ids.h"
#include "validate/validate.h"

struct target;

/* Rows of an earlier intake that this load took out of the table: upsert
 * replaced them (counted per row) or replace deleted them (all). */
struct supersession {
    char intake[ID_LEN];
    uint64_t rows;
    struct keydigest digest; /* of the rows taken out; not kept for all */
    bool all;
};

/* What a load left in the target, for the ledger and reconcile: the rows
 * carrying the intake after the commit and their key digest, the key's
 * columns ("a,b", or "*" for every column), and the rows of earlier
 * intakes it superseded.  Filled by commit, and by loaded() when it finds
 * the intake already committed. */
struct load_stats {
    uint64_t rows;
    struct keydigest digest;
    char *key;
    struct supersession *sup;
    size_t n_sup;
};

/* One intake as the target holds it now (reconcile). */
struct tally {
    bool table_missing;     /* the table does not exist */
    bool load_recorded;     /* wharf_loads has the intake */
    uint64_t recorded_rows; /* wharf_loads.rows when recorded */
    uint64_t rows;          /* rows carrying the intake */
    struct keydigest digest;
};

/* One row found by trace: the table's columns as text (NULL for NULL). */
struct found_row {
    const char *const *names;
    const char *const *values;
    size_t n;
    const char *intake, *line; /* _wharf_intake, _wharf_line (NULL without lineage) */
};
typedef int (*found_fn)(void *ctx, const struct found_row *r, struct werr *e);
typedef int (*intake_count_fn)(void *ctx, const char *intake, uint64_t rows, struct werr *e);

struct target_ops {
    const char *name;
    int (*open)(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e);
    /* 1: intake already loaded (*rows filled), 0: not, -1: error */
    int (*loaded)(struct target *t, const char *intake, uint64_t *rows, struct werr *e);
    /* Creates the table when absent, checks its columns, starts the transaction. */
    int (*begin)(struct target *t, const char *intake, const struct columns *cols, struct werr *e);
    int (*insert)(struct target *t, const struct row *row, struct werr *e);
    /* Records wharf_loads and commits. */
    int (*commit)(struct target *t, const char *intake, const char *sha256, uint64_t rows,
                  struct werr *e);
    void (*rollback)(struct target *t);
    void (*close)(struct target *t);
    /* Human description for bag-info and show: "sqlite:var/warehouse.db#orders". */
    char *(*describe)(struct target *t);
    /* wharf check: does the existing table fit these columns under the
     * profile's target.evolve?  Creates and changes nothing (no table yet:
     * fits).  0, or -1 with the mismatch and its fix in e (WERR_SCHEMA). */
    int (*check_schema)(const struct wharf_config *cfg, const struct profile *p,
                        const struct columns *cols, struct werr *e);
    /* reconcile: is the intake in wharf_loads, and its rows in the table
     * now with the key digest over key ("a,b"), read in batches of `batch`
     * rows; key NULL: only the wharf_loads check (rows left 0). */
    int (*tally)(struct target *t, const char *intake, const char *key, uint64_t batch,
                 struct tally *out, struct werr *e);
    /* reconcile: every intake id present in the table with its row count
     * (fn in id order); 1 when the table does not exist. */
    int (*intakes)(struct target *t, intake_count_fn fn, void *ctx, struct werr *e);
    /* trace: rows where every cols[i] = vals[i] (at most limit). */
    int (*find)(struct target *t, char *const *cols, char *const *vals, size_t n, size_t limit,
                found_fn fn, void *ctx, struct werr *e);
    /* check_schema reaches a server over the network: `wharf check` asks it
     * only with --connect. */
    bool remote;
};

/*
 * A row the target itself refused: a CHECK, FOREIGN KEY, NOT NULL or UNIQUE
 * constraint of an existing table, or a value the column's type cannot hold.
 * That is the partner's data breaking the warehouse's rules: insert or commit
 * fills this (and e, WERR_SCHEMA) and the pipeline rejects the intake with
 * this line instead of failing it.  begin clears it.
 */
struct target_reject {
    bool set;
    uint64_t seq;      /* the row's index in this load (0-based): which part */
    uint64_t line;     /* its line in the part; 0: not known (a deferred constraint) */
    char column[64];   /* the column, "" when the target does not say */
    char message[512]; /* the target's reason */
};

struct target {
    const struct target_ops *ops;
    const struct profile *profile;
    void *impl;
    bool readonly;           /* set before open: never create or change anything */
    struct load_stats stats; /* of the last commit or loaded() hit */
    struct target_reject reject;
};

/* Record a superseded row (or all rows, rows given) of intake in st. */
struct supersession *load_stats_sup(struct load_stats *st, const char *intake);
void load_stats_clear(struct load_stats *st);

extern const struct target_ops target_sqlite_ops;
extern const struct target_ops target_postgres_ops;

/* Picks the backend from the profile and opens it. */
int target_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e);
/* The same for reading only (reconcile, trace): a missing database is an
 * error, nothing is created. */
int target_open_readonly(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                         struct werr *e);
void target_close(struct target *t);
/* The backend's check_schema for the profile's target (see target_ops). */
bool target_is_remote(const struct profile *p);
int target_check_schema(const struct wharf_config *cfg, const struct profile *p,
                        const struct columns *cols, struct werr *e);

#endif
