/*
 * keyset: the set behind Table Schema `unique` and `primaryKey`.  It
 * remembers every key of one part in bounded memory and finds the repeats,
 * each with the line where its key was first seen.
 *
 * Keys are fixed-size: an integer key (integer, boolean, year fields; a
 * number's bits) is one 64-bit word, anything else is a keyed 128-bit
 * SipHash of its canonical bytes.  Two different byte strings share a hash
 * with probability about n^2 / 2^129 for n keys (below 10^-20 for a
 * billion keys), and the hash key is random per set, so no input can be
 * built to collide: a collision is negligible and would only ever make a
 * row invalid, never let a repeat through.
 *
 * Memory: one open-addressing table of at most `budget` bytes, no
 * allocation per key; integer keys that arrive in increasing order are
 * kept as ranges instead (at most 4096 of them, 96 KiB), so a file whose
 * ids only grow needs no table at all.  When it is 70% full the set spills: the entries are
 * sorted and appended to an anonymous temporary file as one run, and the
 * table starts again empty.  A repeat whose first occurrence is still in
 * the table is found at once (keyset_add returns 0); one whose first
 * occurrence was spilled is found only by keyset_finish, which merges the
 * runs.  Callers must be ready for such late repeats (see validate.h).
 *
 * Use, per record: keyset_add for the record's key (at most once per set),
 * then keyset_row_end with whether the record turned out invalid (may
 * spill, so it can fail on I/O); at the end keyset_finish, then
 * keyset_free.
 */
#ifndef WHARF_KEYSET_H
#define WHARF_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define KEYSET_BUDGET (16u * 1024 * 1024) /* bytes for all the sets of one part */

enum keyset_kind { KEYSET_INT, KEYSET_BYTES };

struct keyset;

/* tmpdir: where spilled runs go (the part's directory); when a file cannot
 * be made there, $TMPDIR, then /tmp. */
struct keyset *keyset_new(enum keyset_kind kind, size_t budget, const char *tmpdir);
void keyset_free(struct keyset *ks);

/* 1 when the key is new in memory; 0 when it was seen before (*first: the
 * line of its first occurrence).  KEYSET_INT sets take keyset_add_int,
 * KEYSET_BYTES sets keyset_add_bytes. */
int keyset_add_int(struct keyset *ks, int64_t key, uint64_t line, uint64_t *first);
int keyset_add_bytes(struct keyset *ks, const void *key, size_t len, uint64_t line,
                     uint64_t *first);

/* The record is done; row_invalid: it was not handed on as valid.  May
 * spill: -1 with e filled on I/O errors. */
int keyset_row_end(struct keyset *ks, bool row_invalid, struct werr *e);

/* Has the set spilled (so that keyset_finish may find repeats)? */
bool keyset_spilled(const struct keyset *ks);

/* A late repeat: the record at line repeats the key first seen at first;
 * row_invalid as given to keyset_row_end for that record.  For KEYSET_INT
 * sets *key_int is the key; otherwise key_int is NULL. */
typedef void (*keyset_dup_fn)(void *ctx, uint64_t line, uint64_t first, bool row_invalid,
                              const int64_t *key_int);

/* Merge the spilled runs and call fn for every repeat not yet reported by
 * keyset_add, in key order.  0, or -1 with e filled on I/O errors.  The set
 * is empty afterwards. */
int keyset_finish(struct keyset *ks, keyset_dup_fn fn, void *ctx, struct werr *e);

#endif
