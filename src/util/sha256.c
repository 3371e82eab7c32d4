/*
 * sha256: EVP wrapper.  Contexts are heap objects owned by struct sha256
 * until sha256_final or sha256_abort.
 */
#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

void sha256_init(struct sha256 *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
        abort();
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
    if (len)
        EVP_DigestUpdate(h->ctx, data, len);
}

void sha256_final(struct sha256 *h, char hex[SHA256_HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = 0;
    sha256_abort(h);
}

void sha256_abort(struct sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN])
{
    struct sha256 h;
    sha256_init(&h);
    sha256_update(&h, data, len);
    sha256_final(&h, hex);
}

int sha256_file(const char *path, char hex[SHA256_HEX_LEN], uint64_t *size, struct werr *e)
{
    static __thread unsigned char buf[1 << 17];
    struct sha256 h;
    uint64_t total = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        werr_sys(e, "%s", path);
        return -1;
    }
    sha256_init(&h);
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            werr_sys(e, "%s: read", path);
            sha256_abort(&h);
            close(fd);
            return -1;
        }
        sha256_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    sha256_final(&h, hex);
    if (size)
        *size = total;
    return 0;
}
