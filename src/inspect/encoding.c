/*
 * encoding: detect a part's character encoding and normalise it to UTF-8.
 *
 * Order of evidence (first that applies wins):
 *   1. a byte-order mark (UTF-8, UTF-16LE/BE, UTF-32LE/BE);
 *   2. the profile's declared charset (bytes that contradict it reject);
 *   3. an XML declaration's encoding="..." (ASCII-compatible, not UTF-8);
 *   4. strict UTF-8 over the whole part ("ascii" when only 7-bit bytes);
 *   5. UTF-16 without a BOM (every second byte NUL in the sample);
 *   6. a legacy charset, chosen only among the profile's list (`encoding:
 *      { auto: [...] }`, default: WINDOWS-1252, ISO-8859-1, ISO-8859-15):
 *      bytes undefined in a charset or read as C1 controls rule it out, the
 *      rest is decided by how plausible each reading is as text, uchardet
 *      only breaks ties on long texts (see detect() for the rules).  When
 *      the evidence does not decide, the part is rejected as "encoding
 *      uncertain" with a sample line read each way: never loaded on a guess.
 *   UTF-8 and UTF-16 without a BOM are taken only when the list has them.
 *
 * Normalising streams through iconv (64 KiB reads) into a file of our own;
 * a valid UTF-8 part without BOM is not copied at all.  The UTF-8 form never
 * holds a BOM or NUL; an XML declaration naming another encoding is
 * rewritten to UTF-8 in it.  Owns: the output file and the result's sample.
 * Fails with a reject (rep) or an I/O error (e).
 */
#include "inspect/encoding.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uchardet/uchardet.h>
#include <unistd.h>

#include "util/charset.h"
#include "util/durable.h"
#include "util/xmalloc.h"

#define ENC_MIN_CONFIDENCE 0.5
#define ENC_CHUNK          (64 * 1024)
#define ENC_WINDOW         (256 * 1024) /* detector bytes read after the first non-UTF-8 byte */

/* ---- the scan: hash, strict UTF-8, NUL, high bytes, sample ---- */

void enc_scan_init(struct enc_scan *s)
{
    memset(s, 0, sizeof *s);
    sha256_init(&s->hash);
    s->hashing = true;
    s->sample = xmalloc(ENC_SAMPLE_MAX);
    s->utf8_ok = true;
    s->ascii = true;
    s->bad_off = ENC_NONE;
    s->nul_off = ENC_NONE;
}

static void scan_bad(struct enc_scan *s, uint64_t off)
{
    if (s->utf8_ok)
        s->bad_off = off;
    s->utf8_ok = false;
    s->need = 0;
}

/* Unicode 15, table 3-7: well-formed UTF-8 byte sequences. */
static void scan_lead(struct enc_scan *s, unsigned char c, uint64_t off)
{
    s->seq_off = off;
    s->lo = 0x80;
    s->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        s->need = 1;
    } else if (c == 0xE0) {
        s->need = 2;
        s->lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        s->need = 2;
    } else if (c == 0xED) {
        s->need = 2;
        s->hi = 0x9F;
    } else if (c == 0xF0) {
        s->need = 3;
        s->lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        s->need = 3;
    } else if (c == 0xF4) {
        s->need = 3;
        s->hi = 0x8F;
    } else {
        scan_bad(s, off);
    }
}

void enc_scan_update(struct enc_scan *s, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t base = s->bytes;
    size_t i = 0;
    if (s->hashing)
        sha256_update(&s->hash, buf, len);
    if (s->sample_len < ENC_SAMPLE_MAX) {
        size_t n = ENC_SAMPLE_MAX - s->sample_len;
        if (n > len)
            n = len;
        memcpy(s->sample + s->sample_len, p, n);
        s->sample_len += n;
    }
    if (s->nul_off == ENC_NONE) {
        const unsigned char *z = memchr(p, 0, len);
        if (z)
            s->nul_off = base + (uint64_t)(z - p);
    }
    s->bytes += len;
    while (i < len) {
        unsigned char c;
        if (s->need == 0) {
            /* ASCII fast path, 8 bytes at a time */
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            while (i < len && p[i] < 0x80)
                i++;
            if (i >= len)
                break;
            c = p[i];
            s->ascii = false;
            s->hi_seen[c - 0x80] = true;
            if (s->utf8_ok)
                scan_lead(s, c, base + i);
            i++;
            continue;
        }
        c = p[i];
        if (c < s->lo || c > s->hi) {
            scan_bad(s, s->seq_off); /* this byte is looked at again as a lead */
            continue;
        }
        s->hi_seen[c - 0x80] = true;
        s->lo = 0x80;
        s->hi = 0xBF;
        s->need--;
        i++;
    }
}

void enc_scan_final(struct enc_scan *s, char hex[SHA256_HEX_LEN])
{
    if (s->need)
        scan_bad(s, s->seq_off);
    if (s->hashing) {
        if (hex)
            sha256_final(&s->hash, hex);
        else
            sha256_abort(&s->hash);
        s->hashing = false;
    }
}

void enc_scan_free(struct enc_scan *s)
{
    if (s->hashing)
        sha256_abort(&s->hash);
    s->hashing = false;
    free(s->sample);
    s->sample = NULL;
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

int enc_scan_file(const char *path, struct enc_scan *s, char hex[SHA256_HEX_LEN], struct werr *e)
{
    unsigned char *buf = xmalloc(4 * ENC_CHUNK);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = -1;
    ssize_t n;
    if (fd < 0) {
        werr_sys(e, "%s: open", path);
        goto out;
    }
    while ((n = read_some(fd, buf, 4 * ENC_CHUNK)) > 0)
        enc_scan_update(s, buf, (size_t)n);
    if (n < 0) {
        werr_sys(e, "%s: read", path);
        goto out;
    }
    enc_scan_final(s, hex);
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

bool utf8_valid(const void *buf, size_t len)
{
    struct enc_scan s;
    bool ok;
    memset(&s, 0, sizeof s);
    s.utf8_ok = true;
    s.ascii = true;
    s.bad_off = s.nul_off = ENC_NONE;
    s.sample_len = ENC_SAMPLE_MAX; /* no sample kept */
    enc_scan_update(&s, buf, len);
    enc_scan_final(&s, NULL);
    ok = s.utf8_ok;
    return ok;
}

/* ---- helpers ---- */

/* Line (1-based) and byte-in-line (1-based) of offset off in a file. */
static int file_position(const char *path, uint64_t off, uint64_t *line, uint64_t *col,
                         struct werr *e)
{
    unsigned char *buf = xmalloc(4 * ENC_CHUNK);
    uint64_t pos = 0, nl = 0, last_nl = ENC_NONE;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = -1;
    if (fd < 0) {
        werr_sys(e, "%s: open", path);
        goto out;
    }
    while (pos < off) {
        size_t want = off - pos < 4 * ENC_CHUNK ? (size_t)(off - pos) : 4 * ENC_CHUNK;
        ssize_t n = read_some(fd, buf, want), i;
        if (n < 0) {
            werr_sys(e, "%s: read", path);
            goto out;
        }
        if (n == 0)
            break;
        for (i = 0; i < n; i++)
            if (buf[i] == '\n') {
                nl++;
                last_nl = pos + (uint64_t)i;
            }
        pos += (uint64_t)n;
    }
    *line = nl + 1;
    *col = last_nl == ENC_NONE ? off + 1 : off - last_nl;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

static void hex_bytes(const unsigned char *p, size_t n, char *out, size_t outsz)
{
    size_t i, o = 0;
    out[0] = 0;
    for (i = 0; i < n && o + 4 < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%02X", i ? " " : "", p[i]);
}

/*
 * The byte-order marks of Unicode forms wharf does not read (GB18030's
 * BOM, UTF-1, UTF-EBCDIC, SCSU, BOCU-1): a file starting with one is not
 * legacy text, whatever a detector would make of its bytes.
 */
static const char *exotic_bom(const unsigned char *p, size_t n)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } boms[] = {{"GB18030", "\x84\x31\x95\x33", 4},
                {"UTF-EBCDIC", "\xDD\x73\x66\x73", 4},
                {"UTF-1", "\xF7\x64\x4C", 3},
                {"SCSU", "\x0E\xFE\xFF", 3},
                {"BOCU-1", "\xFB\xEE\x28", 3}};
    for (size_t i = 0; i < sizeof boms / sizeof boms[0]; i++)
        if (n >= boms[i].len && !memcmp(p, boms[i].bytes, boms[i].len))
            return boms[i].name;
    return NULL;
}

static size_t bom_of(const unsigned char *p, size_t n, const char **charset)
{
    *charset = NULL;
    if (n >= 4 && p[0] == 0xFF && p[1] == 0xFE && p[2] == 0 && p[3] == 0)
        return *charset = "UTF-32LE", 4;
    if (n >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0xFE && p[3] == 0xFF)
        return *charset = "UTF-32BE", 4;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        return *charset = "UTF-8", 3;
    if (n >= 2 && p[0] == 0xFF && p[1] == 0xFE)
        return *charset = "UTF-16LE", 2;
    if (n >= 2 && p[0] == 0xFE && p[1] == 0xFF)
        return *charset = "UTF-16BE", 2;
    return 0;
}

static void canon_charset(const char *in, char *out, size_t outsz)
{
    size_t i;
    for (i = 0; in[i] && i + 1 < outsz; i++)
        out[i] = (char)toupper((unsigned char)in[i]);
    out[i] = 0;
    if (!strcmp(out, "UTF8"))
        snprintf(out, outsz, "UTF-8");
}

/*
 * The value of encoding="..." in an XML declaration at the start of buf
 * (after white space).  Returns true and fills off/len (within buf).
 */
static bool xml_decl_encoding(const unsigned char *buf, size_t n, size_t *off, size_t *len)
{
    size_t i = 0, end;
    while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (n - i < 6 || memcmp(buf + i, "<?xml", 5) != 0)
        return false;
    for (end = i + 5; end + 1 < n && end < i + 512; end++)
        if (buf[end] == '?' && buf[end + 1] == '>')
            break;
    if (end + 1 >= n || end >= i + 512)
        return false;
    for (i += 5; i + 8 < end; i++) {
        size_t j;
        unsigned char q;
        if (memcmp(buf + i, "encoding", 8) != 0)
            continue;
        j = i + 8;
        while (j < end && isspace(buf[j]))
            j++;
        if (j >= end || buf[j] != '=')
            return false;
        j++;
        while (j < end && isspace(buf[j]))
            j++;
        if (j >= end || (buf[j] != '"' && buf[j] != '\''))
            return false;
        q = buf[j++];
        *off = j;
        while (j < end && buf[j] != q)
            j++;
        if (j >= end || j - *off == 0 || j - *off > 40)
            return false;
        *len = j - *off;
        return true;
    }
    return false;
}

/* UTF-16 without a BOM: in the sample, nearly every second byte is NUL. */
static const char *utf16_without_bom(const unsigned char *p, size_t n)
{
    size_t i, z[2] = {0, 0}, pairs;
    if (n < 16)
        return NULL;
    n &= ~(size_t)1;
    for (i = 0; i < n; i++)
        if (p[i] == 0)
            z[i & 1]++;
    pairs = n / 2;
    if (z[1] * 10 >= pairs * 9 && z[0] * 10 < pairs)
        return "UTF-16LE";
    if (z[0] * 10 >= pairs * 9 && z[1] * 10 < pairs)
        return "UTF-16BE";
    return NULL;
}

static int read_at(const char *path, uint64_t off, unsigned char *buf, size_t len, size_t *got,
                   struct werr *e)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;
    *got = 0;
    if (fd < 0) {
        werr_sys(e, "%s: open", path);
        return -1;
    }
    while (*got < len) {
        do
            n = pread(fd, buf + *got, len - *got, (off_t)(off + *got));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            werr_sys(e, "%s: read", path);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    close(fd);
    return 0;
}

/* ---- detection among the profile's charsets ---- */

/*
 * How a non-UTF-8 part's charset is chosen (encoding: auto), in order:
 *
 *   1. Candidates are the single-byte charsets of the profile's list
 *      (default_auto when it lists none).  Each is turned into a table of
 *      what bytes 0x80-0xFF decode to.
 *   2. A candidate is out when any byte present anywhere in the part is
 *      undefined in it, or decodes to a C1 control (U+0080-U+009F): that is
 *      what 0x80-0x9F are in every ISO-8859 charset, and no real text holds
 *      them, while Windows-1252 puts € ‚ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜
 *      ™ š › œ ž Ÿ there.  This is decided before any statistics.
 *   3. Candidates that read every byte present alike form one class: the
 *      text is the same whichever is meant, nothing to decide.
 *   4. Every high byte in the window (sample + 256 KiB at the first
 *      non-UTF-8 byte) is scored in its context, per class: a letter inside
 *      a word of its own script is 1, a letter whose case flips inside a
 *      word ("mÜller") 0.25, a Latin letter glued to a Cyrillic one 0; common
 *      signs (° « » – …) 1 outside a word, currency signs 0.5 glued to a
 *      letter ("¥rsted"); rare ones (¤ ¦ ¨ ¸ ...) 0.25 alone and 0 next to
 *      a letter; ¼ ½ ¾ ª º 0.75 unless next to a letter; ± × ÷ 0.25 next
 *      to a letter; a bullet 0.25 unless a space follows; two such signs
 *      glued together ("÷’") 0.25.
 *   5. The best class wins over another when, summed over the characters
 *      the two read differently, it scores at least ENC_MARGIN more, and,
 *      unless its own reading of them has nothing implausible (nothing
 *      scored 0.25 or less), at least ENC_MARGIN_PER_CHAR more per such
 *      character.  Classes it does
 *      not beat are rivals.  uchardet breaks a tie only when it names one of
 *      the tied classes, none of them beats that one, and they read at least
 *      ENC_DETECTOR_MIN_DIFF characters differently (a language model needs
 *      text; on a few words it guesses).
 *   6. The winner's confidence is its mean score times min(1, 0.6 + 0.04 n)
 *      for n high bytes seen; below ENC_MIN_CONFIDENCE, or with rivals left,
 *      the part is rejected as "encoding uncertain" with a sample line read
 *      each way.  A guess never becomes data.
 */

#define ENC_MARGIN            0.5
#define ENC_MARGIN_PER_CHAR   0.05
#define ENC_DETECTOR_MIN_DIFF 64
#define CP_INVALID            0xFFFFFFFFu

/* What `encoding: auto` chooses among when the profile lists nothing. */
static const char *const default_auto[] = {"UTF-8",        "UTF-16",     "UTF-32",
                                           "WINDOWS-1252", "ISO-8859-1", "ISO-8859-15"};

enum ckind {
    CK_SEP,
    CK_DIGIT,
    CK_LOWER,
    CK_UPPER,
    CK_LETTER,
    CK_COMMON,
    CK_CURRENCY,
    CK_MATH,
    CK_BULLET,
    CK_APOS,
    CK_MIDDOT,
    CK_FRACTION,
    CK_RARE,
    CK_CONTROL
};
enum script { SC_NONE, SC_LATIN, SC_GREEK, SC_CYRILLIC };

static enum script script_of(uint32_t cp)
{
    if (cp < 0x80)
        return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? SC_LATIN : SC_NONE;
    if (cp >= 0xC0 && cp <= 0x24F)
        return SC_LATIN;
    if (cp >= 0x370 && cp <= 0x3FF)
        return SC_GREEK;
    if (cp >= 0x400 && cp <= 0x52F)
        return SC_CYRILLIC;
    return SC_NONE;
}

static enum ckind kind_of(uint32_t cp)
{
    static const uint16_t common[] = {
        0xA0, 0xA1,   0xA7,   0xA9,   0xAB,   0xAE,   0xB0,   0xB2,   0xB3,   0xB5,   0xB9,  0xBB,
        0xBF, 0x2013, 0x2014, 0x201C, 0x201D, 0x201E, 0x2026, 0x2039, 0x203A, 0x2116, 0x2122};
    size_t i;
    if (cp < 0x80) {
        if (cp >= 'a' && cp <= 'z')
            return CK_LOWER;
        if (cp >= 'A' && cp <= 'Z')
            return CK_UPPER;
        if (cp >= '0' && cp <= '9')
            return CK_DIGIT;
        return CK_SEP;
    }
    if (cp < 0xA0 || cp == CP_INVALID)
        return CK_CONTROL;
    for (i = 0; i < sizeof common / sizeof common[0]; i++)
        if (cp == common[i])
            return CK_COMMON;
    if (cp == 0xB7)
        return CK_MIDDOT;
    if (cp == 0xB1 || cp == 0xD7 || cp == 0xF7)
        return CK_MATH; /* ± × ÷ */
    if (cp == 0x2022)
        return CK_BULLET;
    if (cp == 0xA2 || cp == 0xA3 || cp == 0xA5 || cp == 0x20AC)
        return CK_CURRENCY; /* ¢ £ ¥ € */
    if (cp == 0xB4 || cp == 0x2018 || cp == 0x2019 || cp == 0x201A)
        return CK_APOS;
    if ((cp >= 0xBC && cp <= 0xBE) || cp == 0xAA || cp == 0xBA)
        return CK_FRACTION; /* ¼ ½ ¾ and ordinals ª º: next to digits */
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
        return CK_UPPER;
    if (cp >= 0xDF && cp <= 0xFF && cp != 0xF7)
        return CK_LOWER;
    if (cp >= 0x100 && cp <= 0x17F) { /* Latin Extended-A: case pairs */
        if (cp == 0x138 || cp == 0x149 || cp == 0x17F)
            return CK_LOWER;
        if (cp == 0x178)
            return CK_UPPER;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
            return (cp & 1) ? CK_UPPER : CK_LOWER;
        return (cp & 1) ? CK_LOWER : CK_UPPER;
    }
    if (cp == 0x192)
        return CK_RARE; /* ƒ: the florin sign, in practice */
    if (cp >= 0x180 && cp <= 0x24F)
        return CK_LETTER;
    if (cp == 0x386 || (cp >= 0x388 && cp <= 0x3AB && cp != 0x390))
        return CK_UPPER;
    if (cp == 0x390 || (cp >= 0x3AC && cp <= 0x3CE))
        return CK_LOWER;
    if (cp >= 0x400 && cp <= 0x42F)
        return CK_UPPER;
    if (cp >= 0x430 && cp <= 0x45F)
        return CK_LOWER;
    if (cp >= 0x460 && cp <= 0x4FF)
        return (cp & 1) ? CK_LOWER : CK_UPPER;
    return CK_RARE;
}

static bool is_letter(enum ckind k)
{
    return k == CK_LOWER || k == CK_UPPER || k == CK_LETTER;
}

/* A sign outside ASCII (not NBSP): two of them glued together ("÷’", "‡·")
 * are what a wrong charset makes of letters. */
static bool is_sign(enum ckind k, uint32_t cp)
{
    return k >= CK_COMMON && k <= CK_RARE && cp != 0xA0;
}

/* How plausible character x is between p and n in real text (rule 4). */
static double plausible(uint32_t p, uint32_t x, uint32_t n)
{
    enum ckind k = kind_of(x), kp = kind_of(p), kn = kind_of(n);
    bool lp = is_letter(kp), ln = is_letter(kn);
    if (is_sign(k, x) && (is_sign(kp, p) || is_sign(kn, n)))
        return 0.25;
    switch (k) {
    case CK_LOWER:
    case CK_UPPER:
    case CK_LETTER:
        if ((lp && script_of(p) != script_of(x)) || (ln && script_of(n) != script_of(x)))
            return 0; /* scripts mixed inside one word */
        if ((k == CK_UPPER && kp == CK_LOWER) || (k == CK_LOWER && kn == CK_UPPER && x != 0xDF))
            return 0.25; /* the case flips inside a word (ß has no capital in use) */
        if (lp || ln)
            return 1;
        if (kp == CK_DIGIT || kn == CK_DIGIT)
            return 0.25; /* glued to a number */
        return 0.75;     /* a one-letter word */
    case CK_COMMON:
        return lp && ln ? 0.25 : 1;
    case CK_CURRENCY:
        return lp && ln ? 0.25 : lp || ln ? 0.5 : 1; /* "12 €", not "¥rsted" */
    case CK_APOS:
        return x == 0xB4 ? 0.75 : 1;
    case CK_MATH:
        return lp || ln ? 0.25 : 1; /* "10 × 20", not "÷dL" */
    case CK_BULLET:
        return kn == CK_SEP && n != '\n' ? 1 : 0.25; /* "• item" */
    case CK_MIDDOT:
        return lp && ln ? 1 : 0.5; /* Catalan l·l; alone it is a separator at best */
    case CK_FRACTION:
        return lp || ln ? 0 : 0.75;
    case CK_RARE:
        return lp || ln ? 0 : 0.25;
    default:
        return 0;
    }
}

struct cand {
    const char *name;
    uint32_t cp[128];  /* what 0x80 + i decodes to; CP_INVALID when undefined */
    size_t cls;        /* index of the class representative (itself when it is one) */
    char out[80];      /* why it is out of the running; "" when in */
    double sum[128];   /* representatives: plausibility summed per byte value */
    uint64_t bad[128]; /* representatives: characters scored 0.25 or less, per byte value */
    double total;
};

struct detection {
    struct cand *c;
    size_t n;
    uint64_t cnt[128]; /* occurrences of each high byte in the window */
    uint64_t chars;    /* high bytes in the window */
    const unsigned char *buf[2];
    size_t len[2];
};

static void utf8_put(uint32_t cp, char *out, size_t *o, size_t outsz)
{
    if (*o + 5 >= outsz)
        return;
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
    out[*o] = 0;
}

/* Fill c->cp from iconv, byte by byte. */
static int cand_table(struct cand *c, struct werr *e)
{
    iconv_t cd = iconv_open("UTF-8", c->name);
    if (cd == (iconv_t)-1) {
        werr_sys(e, "iconv_open %s", c->name);
        return -1;
    }
    for (int b = 0x80; b <= 0xFF; b++) {
        char in = (char)b, out[8], *ip = &in, *op = out;
        size_t il = 1, ol = sizeof out;
        unsigned char u0;
        uint32_t cp = CP_INVALID;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 && il == 0 && op > out) {
            size_t got = (size_t)(op - out);
            u0 = (unsigned char)out[0];
            if (got == 1 && u0 < 0x80)
                cp = u0;
            else if (got == 2)
                cp = ((uint32_t)(u0 & 0x1F) << 6) | ((unsigned char)out[1] & 0x3F);
            else if (got == 3)
                cp = ((uint32_t)(u0 & 0x0F) << 12) | (((unsigned char)out[1] & 0x3F) << 6) |
                     ((unsigned char)out[2] & 0x3F);
        }
        c->cp[b - 0x80] = cp;
    }
    iconv_close(cd);
    return 0;
}

static uint32_t decode_at(const struct cand *c, const unsigned char *p, size_t len, size_t i)
{
    if (i >= len)
        return '\n';
    return p[i] < 0x80 ? p[i] : c->cp[p[i] - 0x80];
}

/* Score every high byte of the window for each class representative. */
static void score_window(struct detection *d)
{
    for (int w = 0; w < 2; w++) {
        const unsigned char *p = d->buf[w];
        size_t len = d->len[w];
        for (size_t i = 0; i < len; i++) {
            if (p[i] < 0x80)
                continue;
            d->cnt[p[i] - 0x80]++;
            d->chars++;
            for (size_t k = 0; k < d->n; k++) {
                struct cand *c = &d->c[k];
                double v;
                if (c->out[0] || c->cls != k)
                    continue;
                v = plausible(i ? decode_at(c, p, len, i - 1) : '\n', c->cp[p[i] - 0x80],
                              decode_at(c, p, len, i + 1));
                c->sum[p[i] - 0x80] += v;
                c->bad[p[i] - 0x80] += v <= 0.25;
                c->total += v;
            }
        }
    }
}

/* Over the characters a and b read differently: score difference and count. */
static double cand_diff(const struct detection *d, const struct cand *a, const struct cand *b,
                        uint64_t *nd, uint64_t *a_bad)
{
    double diff = 0;
    *nd = *a_bad = 0;
    for (int v = 0; v < 128; v++)
        if (d->cnt[v] && a->cp[v] != b->cp[v]) {
            diff += a->sum[v] - b->sum[v];
            *nd += d->cnt[v];
            *a_bad += a->bad[v];
        }
    return diff;
}

/* Rule 5: a's reading is the better text, by a margin. */
static bool beats(const struct detection *d, const struct cand *a, const struct cand *b)
{
    uint64_t nd, a_bad;
    double diff = cand_diff(d, a, b, &nd, &a_bad);
    return diff >= ENC_MARGIN && (a_bad == 0 || diff >= ENC_MARGIN_PER_CHAR * (double)nd);
}

/* The first high byte in the window that a and b (b may be NULL: any) read
 * differently: its window and offset. */
static bool first_difference(const struct detection *d, const struct cand *a, const struct cand *b,
                             int *w, size_t *pos)
{
    for (*w = 0; *w < 2; (*w)++)
        for (*pos = 0; *pos < d->len[*w]; (*pos)++) {
            unsigned char c = d->buf[*w][*pos];
            if (c >= 0x80 && (!b || a->cp[c - 0x80] != b->cp[c - 0x80]))
                return true;
        }
    return false;
}

/* The line around buf[pos] read in c, at most 36 bytes either side,
 * control characters shown as '?'. */
static void sample_line(const struct cand *c, const unsigned char *buf, size_t len, size_t pos,
                        char *out, size_t outsz)
{
    size_t a = pos, z = pos, o = 0;
    while (a > 0 && buf[a - 1] != '\n' && pos - a < 36)
        a--;
    while (z < len && buf[z] != '\n' && buf[z] != '\r' && z - pos < 36)
        z++;
    out[0] = 0;
    if (a > 0 && buf[a - 1] != '\n')
        utf8_put(0x2026, out, &o, outsz);
    for (size_t i = a; i < z; i++) {
        uint32_t cp = decode_at(c, buf, len, i);
        utf8_put(cp < 0x20 || cp == 0x7F || cp == CP_INVALID ? '?' : cp, out, &o, outsz);
    }
    if (z < len && buf[z] != '\n' && buf[z] != '\r')
        utf8_put(0x2026, out, &o, outsz);
}

static int line_of(const struct detection *d, const char *raw_path, const struct enc_scan *s, int w,
                   size_t pos, uint64_t *line, struct werr *e)
{
    uint64_t col;
    if (w == 0) {
        *line = 1;
        for (size_t i = 0; i < pos; i++)
            *line += d->buf[0][i] == '\n';
        return 0;
    }
    return file_position(raw_path, s->bad_off + pos, line, &col, e);
}

static void note_add(struct encoding_evidence *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_add(struct encoding_evidence *ev, const char *fmt, ...)
{
    size_t used = strlen(ev->note);
    va_list ap;
    if (used >= sizeof ev->note - 1)
        return;
    if (used)
        used += (size_t)snprintf(ev->note + used, sizeof ev->note - used, "; ");
    if (used >= sizeof ev->note - 1)
        return;
    va_start(ap, fmt);
    vsnprintf(ev->note + used, sizeof ev->note - used, fmt, ap);
    va_end(ap);
}

static void lower_copy(const char *in, char *out, size_t outsz)
{
    size_t i;
    for (i = 0; in[i] && i + 1 < outsz; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = 0;
}

/* uchardet's name for the window, canonical, or "" */
static void uchardet_guess(const struct detection *d, char *out, size_t outsz)
{
    uchardet_t ud = uchardet_new();
    const char *name, *canon;
    uchardet_handle_data(ud, (const char *)d->buf[0], d->len[0]);
    if (d->len[1]) {
        uchardet_handle_data(ud, "\n", 1);
        uchardet_handle_data(ud, (const char *)d->buf[1], d->len[1]);
    }
    uchardet_data_end(ud);
    name = uchardet_get_charset(ud);
    canon = charset_auto_name(name);
    snprintf(out, outsz, "%s", canon ? canon : name ? name : "");
    uchardet_delete(ud);
}

/*
 * Reject as uncertain: the classes in set (up to 4 are shown) read the
 * same bytes differently; show the first line where they do.
 */
static int reject_uncertain(struct detection *d, const char *part, const char *raw_path,
                            const struct enc_scan *s, size_t *set, size_t nset, const char *why,
                            struct report *rep, struct werr *e)
{
    char msg[1400], line[200], pin[40];
    size_t o = 0;
    int w;
    size_t pos;
    uint64_t ln = 0;
    struct cand *a = &d->c[set[0]];
    if (!first_difference(d, a, nset > 1 ? &d->c[set[1]] : NULL, &w, &pos))
        first_difference(d, a, NULL, &w, &pos);
    if (line_of(d, raw_path, s, w, pos, &ln, e) < 0)
        return -1;
    msg[0] = 0;
    for (size_t i = 0; i < nset && i < 4; i++) {
        struct cand *c = &d->c[set[i]];
        sample_line(c, d->buf[w], d->len[w], pos, line, sizeof line);
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s\"%s\" as %s", i ? " / " : "", line,
                              c->name);
        if (o >= sizeof msg)
            break;
    }
    lower_copy(a->name, pin, sizeof pin);
    report_add(rep, part, ln, 0, NULL, NULL, 0, "encoding_uncertain",
               "encoding uncertain: the bytes are not UTF-8 and %s; line %llu reads %s. Nothing "
               "was loaded on a guess: declare the charset in the profile (e.g. `encoding: %s`) "
               "and replay (runbooks/encoding-changed.md)",
               why, (unsigned long long)ln, msg, pin);
    return 1;
}

/*
 * Choose the charset of a part that is not UTF-8 among the legacy charsets
 * of among[].  0 with ev filled, 1 rejected (rep), -1 failure (e).
 */
static int detect(const char *part, const char *raw_path, const struct enc_scan *s,
                  const char *const *among, size_t n_among, struct encoding_evidence *ev,
                  struct report *rep, struct werr *e)
{
    struct detection d;
    unsigned char *win = NULL;
    size_t wlen = 0, best = SIZE_MAX, rivals[32], nr = 0, chosen;
    char said[48] = "", names[400];
    double conf, evidence;
    int r = -1;

    memset(&d, 0, sizeof d);
    d.c = xcalloc(n_among ? n_among : 1, sizeof *d.c);
    snprintf(ev->method, sizeof ev->method, "detector");
    ev->charset[0] = 0;
    ev->note[0] = 0;
    ev->confidence = 0;
    for (size_t i = 0; i < n_among; i++) {
        struct cand *c = &d.c[d.n];
        if (!strncmp(among[i], "UTF-", 4))
            continue;
        c->name = among[i];
        if (cand_table(c, e) < 0)
            goto out;
        d.n++;
    }
    names[0] = 0;
    for (size_t i = 0, o = 0; i < d.n && o < sizeof names; i++)
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", d.c[i].name);
    if (d.n == 0) {
        char list[400];
        for (size_t i = 0, o = 0; i < n_among && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", among[i]);
        report_add(rep, part, 0, 0, NULL, NULL, 0, "invalid_encoding",
                   "the bytes are not UTF-8 and the profile lists no legacy charset (encoding: "
                   "auto: [%s]); see runbooks/encoding-changed.md",
                   list);
        r = 1;
        goto out;
    }

    /* 2. out: undefined bytes and C1 controls anywhere in the part */
    for (size_t k = 0; k < d.n; k++) {
        struct cand *c = &d.c[k];
        for (int b = 0; b < 128 && !c->out[0]; b++) {
            if (!s->hi_seen[b])
                continue;
            if (c->cp[b] == CP_INVALID)
                snprintf(c->out, sizeof c->out, "byte 0x%02X is not defined in %s", 0x80 + b,
                         c->name);
            else if (c->cp[b] >= 0x80 && c->cp[b] <= 0x9F)
                snprintf(c->out, sizeof c->out, "byte 0x%02X is a C1 control in %s", 0x80 + b,
                         c->name);
        }
    }
    /* 3. classes */
    for (size_t k = 0; k < d.n; k++) {
        d.c[k].cls = k;
        if (d.c[k].out[0])
            continue;
        for (size_t j = 0; j < k; j++) {
            bool same = !d.c[j].out[0] && d.c[j].cls == j;
            for (int b = 0; same && b < 128; b++)
                same = !s->hi_seen[b] || d.c[j].cp[b] == d.c[k].cp[b];
            if (same) {
                d.c[k].cls = j;
                break;
            }
        }
    }
    for (size_t k = 0; k < d.n; k++)
        if (!d.c[k].out[0] && (best == SIZE_MAX))
            best = k;
    if (best == SIZE_MAX) {
        char why[600];
        size_t o = 0;
        why[0] = 0;
        for (size_t k = 0; k < d.n && o < sizeof why; k++)
            o += (size_t)snprintf(why + o, sizeof why - o, "%s%s", k ? "; " : "", d.c[k].out);
        report_add(rep, part, 0, 0, NULL, NULL, 0, "invalid_encoding",
                   "the bytes are neither UTF-8 nor text in any charset the profile accepts (%s): "
                   "%s; see runbooks/encoding-changed.md",
                   names, why);
        r = 1;
        goto out;
    }

    /* 4. score the window */
    d.buf[0] = s->sample;
    d.len[0] = s->sample_len;
    if (s->bad_off != ENC_NONE && s->bad_off >= s->sample_len) {
        win = xmalloc(ENC_WINDOW);
        if (read_at(raw_path, s->bad_off, win, ENC_WINDOW, &wlen, e) < 0)
            goto out;
        d.buf[1] = win;
        d.len[1] = wlen;
    }
    score_window(&d);

    /* 5. the best class and its rivals */
    for (size_t k = 0; k < d.n; k++)
        if (!d.c[k].out[0] && d.c[k].cls == k && d.c[k].total > d.c[best].total)
            best = k;
    rivals[nr++] = best;
    for (size_t k = 0; k < d.n && nr < 32; k++)
        if (k != best && !d.c[k].out[0] && d.c[k].cls == k && !beats(&d, &d.c[best], &d.c[k]))
            rivals[nr++] = k;
    chosen = best;
    if (nr > 1) {
        size_t x = SIZE_MAX;
        bool ok = true;
        uchardet_guess(&d, said, sizeof said);
        for (size_t k = 0; k < d.n; k++)
            if (!strcmp(d.c[k].name, said) && !d.c[k].out[0])
                x = d.c[k].cls;
        for (size_t i = 0; i < nr && x != SIZE_MAX; i++)
            if (rivals[i] == x)
                break;
            else if (i + 1 == nr)
                x = SIZE_MAX;
        for (size_t i = 0; i < nr && x != SIZE_MAX && ok; i++) {
            uint64_t nd, bad;
            if (rivals[i] == x)
                continue;
            cand_diff(&d, &d.c[x], &d.c[rivals[i]], &nd, &bad);
            ok = !beats(&d, &d.c[rivals[i]], &d.c[x]) && nd >= ENC_DETECTOR_MIN_DIFF;
        }
        if (x == SIZE_MAX || !ok) {
            char why[300];
            size_t o = 0;
            why[0] = 0;
            for (size_t i = 0; i < nr && o < sizeof why; i++)
                o += (size_t)snprintf(why + o, sizeof why - o, "%s%s",
                                      i == 0        ? ""
                                      : i + 1 == nr ? " and "
                                                    : ", ",
                                      d.c[rivals[i]].name);
            o += (size_t)snprintf(why + o, o < sizeof why ? sizeof why - o : 0,
                                  " read them as different text and the text does not tell which "
                                  "is meant (uchardet said %s)",
                                  said[0] ? said : "nothing");
            r = reject_uncertain(&d, part, raw_path, s, rivals, nr, why, rep, e);
            goto out;
        }
        chosen = x;
    }

    /* 6. confidence */
    evidence = 0.6 + 0.04 * (double)d.chars;
    conf = d.c[chosen].total / (double)d.chars * (evidence < 1 ? evidence : 1);
    snprintf(ev->charset, sizeof ev->charset, "%s", d.c[chosen].name);
    ev->confidence = conf;
    {
        char out[200] = "", same[200] = "";
        size_t oo = 0, os = 0;
        for (size_t k = 0; k < d.n; k++) {
            if (d.c[k].out[0] && oo < sizeof out)
                oo += (size_t)snprintf(out + oo, sizeof out - oo, "%s%s", oo ? ", " : "",
                                       d.c[k].name);
            else if (k != chosen && d.c[k].cls == chosen && os < sizeof same)
                os += (size_t)snprintf(same + os, sizeof same - os, ", %s", d.c[k].name);
        }
        if (same[0])
            note_add(ev, "%s%s agree on every byte present", d.c[chosen].name, same);
        if (out[0])
            note_add(ev, "bytes present rule out %s (0x80-0x9F are C1 controls or undefined there)",
                     out);
        else if (!memchr(s->hi_seen, 1, 32))
            note_add(ev, "no bytes in 0x80-0x9F");
        if (nr > 1)
            note_add(ev, "uchardet (%s) chose among equally plausible readings", said);
        else if (d.c[chosen].cls == chosen)
            for (size_t k = 0; k < d.n; k++)
                if (!d.c[k].out[0] && d.c[k].cls == k && k != chosen) {
                    note_add(ev, "reads as more plausible text than %s", d.c[k].name);
                    break;
                }
    }
    if (conf < ENC_MIN_CONFIDENCE) {
        char why[200];
        snprintf(why, sizeof why,
                 "even the best reading, %s, is not plausible text (confidence %.2f, at least "
                 "%.2f needed)",
                 d.c[chosen].name, conf, ENC_MIN_CONFIDENCE);
        r = reject_uncertain(&d, part, raw_path, s, &chosen, 1, why, rep, e);
        goto out;
    }
    r = 0;
out:
    free(d.c);
    free(win);
    return r;
}

/* ---- writing the UTF-8 form ---- */

struct sink {
    int fd;
    const char *path;
    struct sha256 hash;
    uint64_t bytes, newlines;
    unsigned char *sample;
    size_t sample_len;
};

static int sink_write(struct sink *k, const unsigned char *p, size_t n, struct werr *e)
{
    size_t i;
    if (write_all(k->fd, p, n) < 0) {
        werr_sys(e, "%s: write", k->path);
        return -1;
    }
    sha256_update(&k->hash, p, n);
    if (k->sample_len < ENC_SAMPLE_MAX) {
        size_t m = ENC_SAMPLE_MAX - k->sample_len;
        memcpy(k->sample + k->sample_len, p, m < n ? m : n);
        k->sample_len += m < n ? m : n;
    }
    for (i = 0; i < n; i++)
        k->newlines += p[i] == '\n';
    k->bytes += n;
    return 0;
}

/* Rewrite encoding="X" in a leading XML declaration to UTF-8. */
static void xml_decl_fix(unsigned char **buf, size_t *n, struct encoding_evidence *ev)
{
    size_t off, len, used;
    unsigned char *nb;
    if (!xml_decl_encoding(*buf, *n, &off, &len))
        return;
    if (len == 5 && !strncasecmp((char *)*buf + off, "UTF-8", 5))
        return;
    nb = xmalloc(*n - len + 5);
    memcpy(nb, *buf, off);
    memcpy(nb + off, "UTF-8", 5);
    memcpy(nb + off + 5, *buf + off + len, *n - off - len);
    *n = *n - len + 5;
    *buf = nb;
    used = strlen(ev->note);
    snprintf(ev->note + used, sizeof ev->note - used, "%sXML declaration rewritten to UTF-8",
             used ? "; " : "");
}

/* The first C1 control (UTF-8 C2 80..C2 9F) in whole UTF-8 characters. */
static const unsigned char *c1_control(const unsigned char *p, size_t n)
{
    const unsigned char *q = p, *end = p + n;
    while ((q = memchr(q, 0xC2, (size_t)(end - q))) != NULL && q + 1 < end) {
        if (q[1] >= 0x80 && q[1] <= 0x9F)
            return q;
        q++;
    }
    return NULL;
}

/*
 * Stream raw_path from byte skip through iconv (from, or a plain copy when
 * from is NULL) into out_path.  0 done, 1 rejected, -1 failure.
 */
static int transcode(const char *part, const char *raw_path, uint64_t skip, const char *from,
                     const char *out_path, struct enc_result *res, struct report *rep,
                     struct werr *e)
{
    unsigned char *in = xmalloc(ENC_CHUNK + 16), *outb = xmalloc(4 * ENC_CHUNK + 64);
    size_t carry = 0;
    uint64_t consumed = skip; /* raw offset of in[0] */
    bool first = true, eof = false, created = false, c1_check;
    iconv_t cd = (iconv_t)-1;
    int ifd = -1, r = -1;
    struct sink k;
    memset(&k, 0, sizeof k);
    k.fd = -1;
    k.path = out_path;
    k.sample = xmalloc(ENC_SAMPLE_MAX);
    sha256_init(&k.hash);

    /* C1 controls only come out of a legacy charset read wrongly */
    c1_check = from && strncasecmp(from, "UTF-", 4) != 0 && strncasecmp(from, "UCS-", 4) != 0;
    if (from && (cd = iconv_open("UTF-8", from)) == (iconv_t)-1) {
        werr_sys(e, "iconv_open %s", from);
        goto out;
    }
    ifd = open(raw_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ifd < 0 || lseek(ifd, (off_t)skip, SEEK_SET) < 0) {
        werr_sys(e, "%s: open", raw_path);
        goto out;
    }
    k.fd = open_scratch(out_path, 0600);
    if (k.fd < 0) {
        werr_sys(e, "%s: create", out_path);
        goto out;
    }
    created = true;
    while (!eof) {
        ssize_t n = read_some(ifd, in + carry, ENC_CHUNK);
        char *ip = (char *)in;
        size_t ileft;
        if (n < 0) {
            werr_sys(e, "%s: read", raw_path);
            goto out;
        }
        eof = n == 0;
        ileft = carry + (size_t)n;
        if (eof && ileft) {
            uint64_t line = k.newlines + 1;
            char hx[64];
            hex_bytes(in, ileft, hx, sizeof hx);
            report_add(rep, part, line, 0, NULL, hx, strlen(hx), "invalid_encoding",
                       "the text ends in the middle of a %s character (line %llu, byte offset "
                       "%llu)",
                       from ? from : "UTF-8", (unsigned long long)line,
                       (unsigned long long)consumed);
            r = 1;
            goto out;
        }
        while (ileft > 0) {
            unsigned char *ob = outb, *chunk;
            size_t produced, oleft = 4 * ENC_CHUNK + 64, cn;
            int err = 0;
            char *op = (char *)outb;
            if (cd != (iconv_t)-1) {
                if (iconv(cd, &ip, &ileft, &op, &oleft) == (size_t)-1)
                    err = errno;
                produced = 4 * ENC_CHUNK + 64 - oleft;
            } else {
                produced = ileft;
                memcpy(outb, ip, ileft);
                ip += ileft;
                ileft = 0;
            }
            chunk = ob;
            cn = produced;
            if (first && produced) {
                xml_decl_fix(&chunk, &cn, &res->ev);
                first = false;
            }
            if (cn && c1_check) {
                const unsigned char *c1 = c1_control(chunk, cn);
                if (c1) {
                    uint64_t line = k.newlines + 1;
                    for (const unsigned char *q = chunk; q < c1; q++)
                        line += *q == '\n';
                    report_add(rep, part, line, 0, NULL, NULL, 0, "invalid_encoding",
                               "byte 0x%02X at line %llu is the C1 control U+%04X in %s, which "
                               "never occurs in text: the file is in another charset (often "
                               "WINDOWS-1252, which has letters and punctuation there)",
                               c1[1], (unsigned long long)line, c1[1], from);
                    if (chunk != ob)
                        free(chunk);
                    r = 1;
                    goto out;
                }
            }
            if (cn) {
                const unsigned char *z = memchr(chunk, 0, cn);
                if (z) {
                    sink_write(&k, chunk, (size_t)(z - chunk), e); /* for the line count */
                    report_add(rep, part, k.newlines + 1, 0, NULL, NULL, 0, "nul_byte",
                               "NUL byte at line %llu: a text file cannot hold NUL (binary "
                               "data, or UTF-16 without a byte-order mark?)",
                               (unsigned long long)(k.newlines + 1));
                    if (chunk != ob)
                        free(chunk);
                    r = 1;
                    goto out;
                }
                if (sink_write(&k, chunk, cn, e) < 0) {
                    if (chunk != ob)
                        free(chunk);
                    goto out;
                }
            }
            if (chunk != ob)
                free(chunk);
            if (err == E2BIG || err == 0)
                continue;
            if (err == EINVAL) { /* incomplete character: carry it over */
                break;
            }
            {
                uint64_t off = consumed + (uint64_t)(ip - (char *)in), line = k.newlines + 1;
                char hx[64];
                hex_bytes((unsigned char *)ip, ileft < 4 ? ileft : 4, hx, sizeof hx);
                report_add(rep, part, line, 0, NULL, hx, strlen(hx), "invalid_encoding",
                           "bytes %s at line %llu (byte offset %llu) are not valid %s", hx,
                           (unsigned long long)line, (unsigned long long)off, from);
                r = 1;
                goto out;
            }
        }
        consumed += (uint64_t)(ip - (char *)in);
        carry = ileft;
        if (carry)
            memmove(in, ip, carry);
    }
    if (close(k.fd) < 0) {
        k.fd = -1;
        werr_sys(e, "%s: close", out_path);
        goto out;
    }
    k.fd = -1;
    sha256_final(&k.hash, res->sha256);
    k.hash.ctx = NULL;
    res->bytes = k.bytes;
    res->sample = k.sample;
    res->sample_len = k.sample_len;
    k.sample = NULL;
    res->copied = true;
    r = 0;
out:
    if (k.hash.ctx)
        sha256_abort(&k.hash);
    if (k.fd >= 0)
        close(k.fd);
    if (r != 0 && created)
        unlink(out_path);
    if (ifd >= 0)
        close(ifd);
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    free(k.sample);
    free(in);
    free(outb);
    return r;
}

/* ---- the decision ---- */

static void set_ev(struct encoding_evidence *ev, const char *method, const char *charset,
                   double conf, const char *note)
{
    snprintf(ev->method, sizeof ev->method, "%s", method);
    snprintf(ev->charset, sizeof ev->charset, "%s", charset);
    ev->confidence = conf;
    snprintf(ev->note, sizeof ev->note, "%s", note ? note : "");
}

static int reject_invalid_utf8(const char *part, const char *raw_path, const struct enc_scan *s,
                               const char *why, struct report *rep, struct werr *e)
{
    uint64_t line, col;
    unsigned char b[4];
    size_t got;
    char hx[32];
    if (file_position(raw_path, s->bad_off, &line, &col, e) < 0 ||
        read_at(raw_path, s->bad_off, b, sizeof b, &got, e) < 0)
        return -1;
    hex_bytes(b, got, hx, sizeof hx);
    report_add(rep, part, line, 0, NULL, hx, strlen(hx), "invalid_encoding",
               "invalid UTF-8 at line %llu, byte %llu of the line (byte offset %llu in the "
               "file): bytes %s%s",
               (unsigned long long)line, (unsigned long long)col, (unsigned long long)s->bad_off,
               hx, why);
    return 1;
}

static bool among_has(const char *const *among, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(among[i], name))
            return true;
    return false;
}

int encoding_normalise(const char *declared, const char *part, const char *raw_path,
                       const char *utf8_out, const struct enc_scan *s, struct enc_result *r,
                       struct report *rep, struct werr *e)
{
    return encoding_normalise_among(declared, NULL, 0, part, raw_path, utf8_out, s, r, rep, e);
}

int encoding_normalise_among(const char *declared, const char *const *among, size_t n_among,
                             const char *part, const char *raw_path, const char *utf8_out,
                             const struct enc_scan *s, struct enc_result *r, struct report *rep,
                             struct werr *e)
{
    const char *bom_cs;
    size_t bom_len = bom_of(s->sample, s->sample_len, &bom_cs), off, len;
    char decl[32], from[32] = "";
    bool is_auto = !declared || !*declared || !strcasecmp(declared, "auto");
    bool copy = false; /* plain copy (UTF-8 with BOM) */
    int rc;

    if (!among || !n_among) {
        among = default_auto;
        n_among = sizeof default_auto / sizeof default_auto[0];
    }
    memset(r, 0, sizeof *r);
    if (!is_auto) {
        iconv_t cd;
        canon_charset(declared, decl, sizeof decl);
        cd = iconv_open("UTF-8", decl);
        if (cd == (iconv_t)-1) {
            report_add(rep, part, 0, 0, NULL, NULL, 0, "invalid_encoding",
                       "the profile declares encoding %s, which this system's iconv does not "
                       "know",
                       declared);
            return 1;
        }
        iconv_close(cd);
        if (bom_len && strncmp(bom_cs, decl, strlen(decl)) != 0) {
            report_add(rep, part, 1, 0, NULL, NULL, 0, "invalid_encoding",
                       "the file starts with a %s byte-order mark but the profile declares "
                       "encoding %s",
                       bom_cs, declared);
            return 1;
        }
        set_ev(&r->ev, "declared", decl, 1, bom_len ? "byte-order mark agrees" : NULL);
        if (!strcmp(decl, "UTF-8")) {
            if (!s->utf8_ok)
                return reject_invalid_utf8(part, raw_path, s, ", but the profile declares utf-8",
                                           rep, e);
            copy = bom_len > 0;
        } else {
            snprintf(from, sizeof from, "%s", bom_len ? bom_cs : decl);
        }
    } else if (bom_len) {
        set_ev(&r->ev, "bom", bom_cs, 1, NULL);
        if (!strcmp(bom_cs, "UTF-8")) {
            if (!s->utf8_ok)
                return reject_invalid_utf8(part, raw_path, s, " after a UTF-8 byte-order mark", rep,
                                           e);
            copy = true;
        } else {
            snprintf(from, sizeof from, "%s", bom_cs);
        }
    } else if (exotic_bom(s->sample, s->sample_len)) {
        report_add(rep, part, 1, 0, NULL, NULL, 0, "encoding_uncertain",
                   "the file starts with the byte-order mark of %s, which wharf does not read: "
                   "the charset cannot be told from the profile's list; ask the partner for "
                   "UTF-8 (runbooks/encoding-changed.md)",
                   exotic_bom(s->sample, s->sample_len));
        return 1;
    } else if (xml_decl_encoding(s->sample, s->sample_len, &off, &len) &&
               strncasecmp((const char *)s->sample + off, "UTF-", 4) != 0 && len < sizeof decl) {
        char v[48];
        iconv_t cd;
        memcpy(v, s->sample + off, len);
        v[len] = 0;
        canon_charset(v, decl, sizeof decl);
        cd = iconv_open("UTF-8", decl);
        if (cd == (iconv_t)-1) {
            report_add(rep, part, 1, 0, NULL, v, len, "invalid_encoding",
                       "the XML declaration names encoding %s, which iconv does not know", v);
            return 1;
        }
        iconv_close(cd);
        set_ev(&r->ev, "declared", decl, 1, "from the XML declaration");
        snprintf(from, sizeof from, "%s", decl);
    } else if (s->nul_off != ENC_NONE && among_has(among, n_among, "UTF-16") &&
               utf16_without_bom(s->sample, s->sample_len)) {
        const char *cs = utf16_without_bom(s->sample, s->sample_len);
        set_ev(&r->ev, "detector", cs, 0.9, "no byte-order mark; every second byte is NUL");
        snprintf(from, sizeof from, "%s", cs);
    } else if (s->utf8_ok && s->ascii) {
        set_ev(&r->ev, "ascii", "UTF-8", 1, "only 7-bit ASCII bytes");
    } else if (s->utf8_ok && among_has(among, n_among, "UTF-8")) {
        set_ev(&r->ev, "utf-8", "UTF-8", 1, "valid UTF-8 throughout");
    } else if (s->utf8_ok) {
        report_add(rep, part, 0, 0, NULL, NULL, 0, "encoding_uncertain",
                   "encoding uncertain: the bytes are valid UTF-8, but utf-8 is not among the "
                   "charsets this profile accepts (encoding: auto: [...]); add it or pin the "
                   "charset (runbooks/encoding-changed.md)");
        return 1;
    } else {
        int d = detect(part, raw_path, s, among, n_among, &r->ev, rep, e);
        if (d != 0)
            return d;
        snprintf(from, sizeof from, "%s", r->ev.charset);
    }

    if (!from[0] && !copy) {
        /* already UTF-8 without BOM: no copy */
        if (s->nul_off != ENC_NONE) {
            uint64_t line, col;
            if (file_position(raw_path, s->nul_off, &line, &col, e) < 0)
                return -1;
            report_add(rep, part, line, 0, NULL, NULL, 0, "nul_byte",
                       "NUL byte at line %llu, byte %llu of the line (byte offset %llu): a text "
                       "file cannot hold NUL (binary data, or UTF-16 without a byte-order mark?)",
                       (unsigned long long)line, (unsigned long long)col,
                       (unsigned long long)s->nul_off);
            return 1;
        }
        r->copied = false;
        r->bytes = s->bytes;
        r->sample = xmalloc(s->sample_len ? s->sample_len : 1);
        memcpy(r->sample, s->sample, s->sample_len);
        r->sample_len = s->sample_len;
        return 0; /* the caller copies the raw digest */
    }
    rc = transcode(part, raw_path, bom_len, from[0] ? from : NULL, utf8_out, r, rep, e);
    return rc;
}

void enc_result_free(struct enc_result *r)
{
    free(r->sample);
    r->sample = NULL;
}
