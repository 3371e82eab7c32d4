/*
 * encoding: what character encoding a part is in, and its UTF-8 form.
 *
 * A part's bytes go through an enc_scan once, while they are unpacked (or
 * read from the original): SHA-256, strict UTF-8 validation with the ASCII
 * fast path, the first NUL, which bytes >= 0x80 occur, and a bounded sample
 * of the beginning.  encoding_normalise then decides (BOM, declared charset,
 * strict UTF-8, legacy detector) and writes the normalised UTF-8 file when
 * one is needed.  Memory is bounded whatever the part's size.
 */
#ifndef WHARF_INSPECT_ENCODING_H
#define WHARF_INSPECT_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspect/inspect.h"
#include "report.h"
#include "util/err.h"
#include "util/sha256.h"

#define ENC_SAMPLE_MAX (64 * 1024) /* bytes kept from the start of a part */
#define ENC_NONE       UINT64_MAX

struct enc_scan {
    struct sha256 hash;
    bool hashing;
    uint64_t bytes;
    unsigned char *sample; /* first ENC_SAMPLE_MAX bytes, owned */
    size_t sample_len;
    /* UTF-8 validation state across chunks */
    bool utf8_ok, ascii;
    int need;             /* continuation bytes still expected */
    unsigned char lo, hi; /* range of the next continuation byte */
    uint64_t seq_off;     /* offset of the current sequence's lead byte */
    uint64_t bad_off;     /* first invalid sequence, ENC_NONE when valid */
    uint64_t nul_off;     /* first NUL byte, ENC_NONE when none */
    bool hi_seen[128];    /* which bytes 0x80..0xFF occur */
};

void enc_scan_init(struct enc_scan *s);
void enc_scan_update(struct enc_scan *s, const void *buf, size_t len);
/* Ends validation (a sequence cut short at the end is invalid) and writes
 * the digest. */
void enc_scan_final(struct enc_scan *s, char hex[SHA256_HEX_LEN]);
void enc_scan_free(struct enc_scan *s);
/* Scan a whole file (the no-copy path for plain originals). */
int enc_scan_file(const char *path, struct enc_scan *s, char hex[SHA256_HEX_LEN], struct werr *e);

/* What encoding_normalise found. */
struct enc_result {
    struct encoding_evidence ev;
    bool copied; /* utf8_out was written; else the raw file is the UTF-8 form */
    char sha256[SHA256_HEX_LEN];
    uint64_t bytes;
    unsigned char *sample; /* first ENC_SAMPLE_MAX bytes of the UTF-8 form, owned */
    size_t sample_len;
};

/*
 * Decide the encoding of the part in raw_path (already scanned into s) and
 * normalise it.  declared is the profile's `encoding:` ("auto" or a charset).
 * When the raw bytes are already UTF-8 without a BOM nothing is written and
 * r->copied is false; otherwise utf8_out is created (O_EXCL|O_NOFOLLOW).
 * Returns 0, 1 when the part is rejected (reasons in rep under `part`), or
 * -1 on an operational failure.
 */
int encoding_normalise(const char *declared, const char *part, const char *raw_path,
                       const char *utf8_out, const struct enc_scan *s, struct enc_result *r,
                       struct report *rep, struct werr *e);
/*
 * The same, with the charsets `encoding: auto` may choose among (canonical
 * names as charset_auto_name gives them, in the profile's order); NULL or
 * none: the default list (UTF-8, UTF-16, UTF-32, WINDOWS-1252, ISO-8859-1,
 * ISO-8859-15).  A part whose charset the evidence does not decide is
 * rejected with code "encoding_uncertain".
 */
int encoding_normalise_among(const char *declared, const char *const *among, size_t n_among,
                             const char *part, const char *raw_path, const char *utf8_out,
                             const struct enc_scan *s, struct enc_result *r, struct report *rep,
                             struct werr *e);
void enc_result_free(struct enc_result *r);

/* The validator on its own: 1 when buf is strict UTF-8 (no overlongs,
 * surrogates or code points above U+10FFFF). */
bool utf8_valid(const void *buf, size_t len);

#endif
