/*
 * receipt: the acknowledgement a partner gets for each sealed intake
 * (docs/receipts.md has the format and its JSON Schema).
 *
 * receipt_build makes the JSON document from the ledger's record of the
 * intake and, for a reject, the problems of its report.json (capped, with a
 * count of the rest).  receipt_csv renders the same document as CSV.
 * receipt_put_local delivers one receipt file into a local outbox,
 * atomically and never over an existing file.  Nothing here prints.
 */
#ifndef WHARF_RECEIPT_H
#define WHARF_RECEIPT_H

#include <jansson.h>
#include <stddef.h>

#include "ledger/ledger.h"
#include "util/err.h"

#define RECEIPT_VERSION 1

/* The receipt of `in` (sealed at sealed_ms).  report_json: the intake's
 * report.json, NULL when it has none.  replay_of_receipt: the file name of
 * the receipt of the intake this one replays, or NULL.  New reference, or
 * NULL with e filled. */
json_t *receipt_build(const struct intake *in, int64_t sealed_ms, const char *report_json,
                      int max_problems, const char *replay_of_receipt, struct werr *e);
/* The same as CSV: a header line and one line per problem (one line with
 * empty problem columns when there is none).  Cells are quoted per RFC 4180;
 * a cell starting with = + - @ is prefixed with ' (spreadsheet formulas). */
char *receipt_csv(const json_t *receipt);
/* The receipt's file name for an intake: "<name>.<intake>.receipt.<ext>".
 * NULL when the name cannot be used as a file name. */
char *receipt_name(const struct intake *in, const char *ext);

/* Read a built receipt back (at most 16 MiB); *data NUL-terminated, caller frees. */
int receipt_read(const char *path, char **data, size_t *len, struct werr *e);

/* Deliver data as dir/name: written to a temp name in dir, fsynced, then
 * linked to name (link(2) refuses to replace a file) and the temp removed,
 * dir fsynced.  1 delivered, 0 name already holds exactly these bytes (a
 * delivery before a crash), -1 error: a different file under that name is
 * the partner's and is kept (permanent), or an I/O failure. */
int receipt_put_local(const char *dir, const char *name, const void *data, size_t len,
                      struct werr *e);

#endif
