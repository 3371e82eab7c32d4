/*
 * keydigest: an order-independent digest of a set of rows' keys, the same
 * whether computed while loading (from the validator's typed values) or
 * later from what the target holds (reconcile).
 *
 * Each row's key is encoded canonically (per column: NULL, a 64-bit
 * integer, any other number as "%.17g", or text bytes with their length;
 * a number with an integral value is the integer, as SQLite's NUMERIC
 * affinity would store it; NaN is NULL, as SQLite stores it), hashed with
 * SHA-256, and the first 128 bits are added modulo 2^128.  Addition makes
 * the digest independent of row order and lets a superseded row be taken
 * out again (keydigest_sub).  Hex form: 32 lowercase digits.
 */
#ifndef WHARF_LOAD_KEYDIGEST_H
#define WHARF_LOAD_KEYDIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYDIGEST_HEX_LEN 33

struct keydigest {
    uint64_t hi, lo;
};

/* One row's key, built column by column; the buffer is reused. */
struct keyhash {
    unsigned char *buf;
    size_t len, cap;
    void *ctx; /* EVP_MD_CTX, reused row after row */
};

void keyhash_reset(struct keyhash *k);
void keyhash_null(struct keyhash *k);
void keyhash_int(struct keyhash *k, int64_t v);
void keyhash_real(struct keyhash *k, double v);
void keyhash_text(struct keyhash *k, const void *s, size_t len);
/* Adds the row's hash to d (or takes it out) and resets k. */
void keyhash_add_to(struct keyhash *k, struct keydigest *d);
void keyhash_sub_from(struct keyhash *k, struct keydigest *d);
void keyhash_free(struct keyhash *k);

void keydigest_add(struct keydigest *d, const struct keydigest *x);
void keydigest_sub(struct keydigest *d, const struct keydigest *x);
bool keydigest_eq(const struct keydigest *a, const struct keydigest *b);
void keydigest_hex(const struct keydigest *d, char out[KEYDIGEST_HEX_LEN]);
/* 0, or -1 when s is not 32 hex digits. */
int keydigest_parse(const char *s, struct keydigest *d);

#endif
