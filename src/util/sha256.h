/*
 * sha256: streaming SHA-256 through OpenSSL EVP (uses the CPU's SHA
 * instructions where present).  Hex digests are 64 chars plus NUL.
 */
#ifndef WHARF_SHA256_H
#define WHARF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SHA256_HEX_LEN 65

struct sha256 {
    void *ctx; /* EVP_MD_CTX */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes the hex digest and frees the context. */
void sha256_final(struct sha256 *h, char hex[SHA256_HEX_LEN]);
/* Frees the context without a digest (error paths). */
void sha256_abort(struct sha256 *h);
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN]);
/* Hash a whole file; *size receives its length when not NULL. */
int sha256_file(const char *path, char hex[SHA256_HEX_LEN], uint64_t *size, struct werr *e);

#endif
