/*
 * validate: checks one part against the profile's schema and, when asked,
 * hands every valid record to a callback as a typed row.
 *
 * A validator is compiled once per profile (Table Schema for CSV, XSD plus
 * the shredding map for XML) and reused for every intake; `wharf check`
 * compiles them to report schema problems.
 *
 * validator_run streams the part (bounded memory whatever its size):
 *  - every problem goes into rep (capped there, counted always);
 *  - fn, when not NULL, is called for every valid row in order;
 *  - invalid_csv, when not NULL (on_invalid: split), receives each invalid
 *    record followed by its errors.  The file is only kept when it holds at
 *    least one record: res->invalid_path then names it (caller frees) and
 *    res->invalid_written counts its records.  The caller bags exactly the
 *    paths returned here; nothing is found by guessing names.
 * Returns 0 when the part was read to the end (res and rep tell how it
 * went), -1 when it could not be (e filled), or fn's -1.
 *
 * Late duplicates (CSV `unique` / `primaryKey`): the sets that find repeats
 * keep a bounded amount in memory and spill the rest to temporary files
 * (validate/keyset.h).  A repeat whose first occurrence was spilled is only
 * found after the last record, when its record has already gone to fn as
 * valid.  Such a repeat is reported like any other, its record is counted
 * invalid instead of valid, and res->late_duplicates and res->structural
 * are set: the caller must refuse the whole part (a duplicate is never
 * loaded), whatever on_invalid says.  Files whose keys fit in memory never
 * see this.
 */
#ifndef WHARF_VALIDATE_H
#define WHARF_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "report.h"
#include "util/err.h"

enum col_type { COL_TEXT, COL_INTEGER, COL_REAL };

/* What a column's values mean beyond their storage type, for targets that
 * have richer types than SQLite (PostgreSQL: boolean, date, timestamptz).
 * COLK_BOOLEAN values are VAL_INT 0/1; COLK_DATE "YYYY-MM-DD" and
 * COLK_DATETIME ISO 8601 text ("...Z" when the value had a zone);
 * COLK_DECIMAL exact decimal text (xs:decimal) on a COL_TEXT column.
 * COLK_WIDEINT an integer with no 64-bit bound (xs:integer and its
 * unbounded kin, xs:unsignedLong) on a COL_INTEGER column: VAL_INT when it
 * fits an int64, else VAL_TEXT holding its canonical digits ("-" when
 * negative, no "+", no leading zeros), so one number is always one value. */
enum col_kind {
    COLK_PLAIN = 0,
    COLK_BOOLEAN,
    COLK_DATE,
    COLK_DATETIME,
    COLK_DECIMAL,
    COLK_WIDEINT
};

struct column {
    char *name;
    enum col_type type;
    bool required;
    bool key; /* part of the schema's primaryKey */
    enum col_kind kind;
};

struct columns {
    struct column *v;
    size_t n;
};

enum val_kind { VAL_NULL, VAL_TEXT, VAL_INT, VAL_REAL };

struct value {
    enum val_kind kind;
    int64_t i;
    double d;
    const char *s; /* VAL_TEXT: valid until the callback returns */
    size_t len;
};

struct row {
    const struct value *v; /* one per column, in struct columns order */
    size_t n;
    uint64_t line;     /* where the record starts (physical line of the decoded part) */
    const char *xpath; /* XML: the record as an XPath with its ordinal; NULL for CSV */
    uint32_t part;     /* 1-based part of the intake when it has several, else 0 (the
                          pipeline sets it; validators leave it 0) */
};

typedef int (*row_fn)(void *ctx, const struct row *row, struct werr *e);

struct validate_input {
    const char *path;    /* UTF-8 normalised part */
    const char *display; /* name for messages */
    enum data_format format;
    char delimiter, quote;
    bool header;
    bool skip_first_line; /* Excel's "sep=X" line: not data, still counted as line 1 */
    uint64_t *bytes_read; /* when not NULL: kept at the bytes read so far (progress) */
    /* When not NULL (profile control:, CSV): the control record is kept out
     * of the data (not validated, loaded or split; line numbers stay
     * right) and read into it, with the exact sums of every received
     * record, valid or invalid (validate/control.h).  A header control
     * record that is missing makes the part structural. */
    struct control_tally *control;
};

struct validate_result {
    uint64_t records; /* data records seen */
    uint64_t valid;
    uint64_t invalid;
    bool structural;      /* a problem that makes the whole part unusable (bad XML, bad header) */
    bool late_duplicates; /* repeats found after their rows went to fn (implies structural) */
    char *invalid_path;   /* the split file written (caller frees), NULL when none */
    uint64_t invalid_written; /* records written to it */
};

struct validator;

struct validator *validator_compile(const struct wharf_config *cfg, const struct profile *p,
                                    struct diags *d);
void validator_free(struct validator *v);
/* The target's columns for a format. */
const struct columns *validator_columns(const struct validator *v, enum data_format f);
int validator_run(struct validator *v, const struct validate_input *in, struct report *rep,
                  row_fn fn, void *ctx, const char *invalid_csv, struct validate_result *res,
                  struct werr *e);

#endif
