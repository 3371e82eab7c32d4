/*
 * target: where accepted rows go.  One implementation file per backend
 * (sqlite.c now; postgres.c, dir.c, sftp_push.c later) behind this table of
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
#include "util/err.h"
#include "validate/validate.h"

struct target;

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
};

struct target {
    const struct target_ops *ops;
    const struct profile *profile;
    void *impl;
};

extern const struct target_ops target_sqlite_ops;

/* Picks the backend from the profile and opens it. */
int target_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e);
void target_close(struct target *t);
/* The backend's check_schema for the profile's target (see target_ops). */
int target_check_schema(const struct wharf_config *cfg, const struct profile *p,
                        const struct columns *cols, struct werr *e);

#endif
