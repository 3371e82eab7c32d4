/*
 * keydigest: see keydigest.h for the encoding.  Nothing here allocates
 * except the reusable row buffer.
 */
#include "load/keydigest.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

static void put(struct keyhash *k, const void *p, size_t n)
{
    if (k->len + n > k->cap) {
        k->cap = (k->len + n) * 2 + 64;
        k->buf = xrealloc(k->buf, k->cap);
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
}

static void put_u64(struct keyhash *k, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)v;
    put(k, b, 8);
}

void keyhash_reset(struct keyhash *k)
{
    k->len = 0;
}

void keyhash_null(struct keyhash *k)
{
    put(k, "N", 1);
}

void keyhash_int(struct keyhash *k, int64_t v)
{
    put(k, "I", 1);
    put_u64(k, (uint64_t)v);
}

void keyhash_real(struct keyhash *k, double v)
{
    char s[40];
    int n;
    if (isnan(v)) {
        keyhash_null(k);
        return;
    }
    if (v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0) {
        keyhash_int(k, (int64_t)v);
        return;
    }
    n = snprintf(s, sizeof s, "%.17g", v);
    put(k, "R", 1);
    put(k, s, (size_t)n);
    put(k, "", 1);
}

void keyhash_text(struct keyhash *k, const void *s, size_t len)
{
    put(k, "T", 1);
    put_u64(k, (uint64_t)len);
    put(k, s, len);
}

/* SHA-256 fetched once: EVP_sha256() per row would look the algorithm up
 * (under a lock) every time, a tenth of a load's time. */
static EVP_MD *sha256_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void row_digest(struct keyhash *k, struct keydigest *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    x->hi = x->lo = 0;
    pthread_once(&md_once, md_fetch);
    if (!k->ctx)
        k->ctx = EVP_MD_CTX_new();
    if (!k->ctx || !sha256_md || !EVP_DigestInit_ex2(k->ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(k->ctx, k->buf ? k->buf : (unsigned char *)"", k->len) ||
        !EVP_DigestFinal_ex(k->ctx, md, &mdlen))
        abort(); /* out of memory in OpenSSL: as xmalloc does */
    for (int i = 0; i < 8; i++) {
        x->hi = x->hi << 8 | md[i];
        x->lo = x->lo << 8 | md[8 + i];
    }
    k->len = 0;
}

void keyhash_add_to(struct keyhash *k, struct keydigest *d)
{
    struct keydigest x;
    row_digest(k, &x);
    keydigest_add(d, &x);
}

void keyhash_sub_from(struct keyhash *k, struct keydigest *d)
{
    struct keydigest x;
    row_digest(k, &x);
    keydigest_sub(d, &x);
}

void keyhash_free(struct keyhash *k)
{
    EVP_MD_CTX_free(k->ctx);
    free(k->buf);
    memset(k, 0, sizeof *k);
}

void keydigest_add(struct keydigest *d, const struct keydigest *x)
{
    uint64_t lo = d->lo + x->lo;
    d->hi += x->hi + (lo < d->lo);
    d->lo = lo;
}

void keydigest_sub(struct keydigest *d, const struct keydigest *x)
{
    uint64_t lo = d->lo - x->lo;
    d->hi -= x->hi + (d->lo < x->lo);
    d->lo = lo;
}

bool keydigest_eq(const struct keydigest *a, const struct keydigest *b)
{
    return a->hi == b->hi && a->lo == b->lo;
}

void keydigest_hex(const struct keydigest *d, char out[KEYDIGEST_HEX_LEN])
{
    snprintf(out, KEYDIGEST_HEX_LEN, "%016llx%016llx", (unsigned long long)d->hi,
             (unsigned long long)d->lo);
}

int keydigest_parse(const char *s, struct keydigest *d)
{
    uint64_t v[2] = {0, 0};
    if (!s || strlen(s) != 32)
        return -1;
    for (int i = 0; i < 32; i++) {
        int c = s[i], x;
        if (c >= '0' && c <= '9')
            x = c - '0';
        else if (c >= 'a' && c <= 'f')
            x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            x = c - 'A' + 10;
        else
            return -1;
        v[i / 16] = v[i / 16] << 4 | (uint64_t)x;
    }
    d->hi = v[0];
    d->lo = v[1];
    return 0;
}
