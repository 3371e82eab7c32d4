/*
 * encoding: detect a part's character encoding and normalise it to UTF-8.
 *
 * Order of evidence (first that applies wins):
 *   1. a byte-order mark (UTF-8, UTF-16LE/BE, UTF-32LE/BE);
 *   2. the profile's declared charset (bytes that contradict it reject);
 *   3. an XML declaration's encoding="..." (ASCII-compatible, not UTF-8);
 *   4. strict UTF-8 over the whole part ("ascii" when only 7-bit bytes);
 *   5. UTF-16 without a BOM (every second byte NUL in the sample);
 *   6. uchardet over a bounded window: the sample plus up to 256 KiB from the
 *      first byte that is not UTF-8.  uchardet 0.0.7 reports no confidence,
 *      so it is estimated here: the share of decoded non-ASCII characters
 *      that are letters or common punctuation, scaled down when fewer than
 *      ten were seen.  Below ENC_MIN_CONFIDENCE the part is rejected with a
 *      request to declare the charset.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uchardet/uchardet.h>
#include <unistd.h>

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

/* How likely a decoded code point is in real text: 1, 0.5 or 0. */
static double plausible(uint32_t cp)
{
    static const uint32_t punct[] = {0xA0,   0xA2,   0xA3,   0xA5,   0xA7,   0xA9,   0xAA,
                                     0xAB,   0xAE,   0xB0,   0xB2,   0xB3,   0xB5,   0xB7,
                                     0xBA,   0xBB,   0xBC,   0xBD,   0xBE,   0xBF,   0xA1,
                                     0x20AC, 0x2013, 0x2014, 0x2018, 0x2019, 0x201A, 0x201C,
                                     0x201D, 0x201E, 0x2022, 0x2026, 0x2122, 0x2030};
    size_t i;
    if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x370 && cp <= 0x52F) ||
        (cp >= 0x5D0 && cp <= 0x6FF) || (cp >= 0xE00 && cp <= 0xE7F) ||
        (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
        (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xFF00 && cp <= 0xFFEF && cp != 0xFFFD))
        return 1;
    for (i = 0; i < sizeof punct / sizeof punct[0]; i++)
        if (cp == punct[i])
            return 1;
    if (cp < 0xA0 || cp == 0xFFFD)
        return 0;
    return 0.5;
}

/*
 * Decode window with charset and score it.  *chars counts non-ASCII
 * characters; returns the summed plausibility, or -1 when the bytes are not
 * valid in the charset.
 */
static double score_window(iconv_t cd, const unsigned char *win, size_t n, size_t *chars)
{
    char out[4096];
    char *in = (char *)win;
    size_t inleft = n;
    double sum = 0;
    iconv(cd, NULL, NULL, NULL, NULL);
    while (inleft > 0) {
        char *o = out;
        size_t oleft = sizeof out, k;
        size_t rc = iconv(cd, &in, &inleft, &o, &oleft);
        int err = rc == (size_t)-1 ? errno : 0;
        size_t produced = sizeof out - oleft;
        for (k = 0; k < produced;) {
            unsigned char c = (unsigned char)out[k];
            uint32_t cp;
            int extra;
            if (c < 0x80) {
                k++;
                continue;
            }
            extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
            cp = c & (0x3F >> extra);
            if (k + (size_t)extra >= produced)
                break; /* cannot happen: iconv writes whole characters */
            for (int j = 1; j <= extra; j++)
                cp = (cp << 6) | ((unsigned char)out[k + (size_t)j] & 0x3F);
            sum += plausible(cp);
            (*chars)++;
            k += (size_t)extra + 1;
        }
        if (err == EILSEQ)
            return -1;
        if (err == EINVAL)
            break; /* the window ends inside a character */
        if (err && err != E2BIG)
            return -1;
    }
    return sum;
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

/*
 * Run uchardet over the sample and the window at the first non-UTF-8 byte,
 * then estimate a confidence.  Fills ev (charset "" when nothing was found).
 */
static int detect(const char *raw_path, const struct enc_scan *s, struct encoding_evidence *ev,
                  struct werr *e)
{
    unsigned char *win = NULL;
    size_t wlen = 0, chars = 0;
    uchardet_t ud = uchardet_new();
    const char *name;
    char said[32];
    double sum = 0, conf = 0;
    int r = -1;
    iconv_t cd = (iconv_t)-1;

    if (s->bad_off != ENC_NONE && s->bad_off >= s->sample_len) {
        win = xmalloc(ENC_WINDOW);
        if (read_at(raw_path, s->bad_off, win, ENC_WINDOW, &wlen, e) < 0)
            goto out;
    }
    uchardet_handle_data(ud, (const char *)s->sample, s->sample_len);
    if (wlen) {
        uchardet_handle_data(ud, "\n", 1);
        uchardet_handle_data(ud, (const char *)win, wlen);
    }
    uchardet_data_end(ud);
    name = uchardet_get_charset(ud);
    canon_charset(name ? name : "", said, sizeof said);
    snprintf(ev->method, sizeof ev->method, "detector");
    ev->confidence = 0;
    if (!*said) {
        snprintf(ev->charset, sizeof ev->charset, "%s", "");
        snprintf(ev->note, sizeof ev->note, "uchardet found no charset");
        r = 0;
        goto out;
    }
    snprintf(ev->charset, sizeof ev->charset, "%s", said);
    if (!strcmp(said, "ISO-8859-1") || !strcmp(said, "WINDOWS-1252")) {
        bool c1 = false;
        for (int b = 0; b < 0x20; b++)
            c1 |= s->hi_seen[b];
        snprintf(ev->charset, sizeof ev->charset, "WINDOWS-1252");
        if (!c1)
            snprintf(ev->note, sizeof ev->note,
                     "no bytes in 0x80-0x9F: ISO-8859-1 and WINDOWS-1252 agree on every byte "
                     "present (uchardet said %.12s)",
                     said);
        else if (!strcmp(said, "ISO-8859-1"))
            snprintf(ev->note, sizeof ev->note,
                     "uchardet said ISO-8859-1; bytes in 0x80-0x9F are C1 controls there, read "
                     "as WINDOWS-1252 characters");
        else
            snprintf(ev->note, sizeof ev->note,
                     "bytes in 0x80-0x9F present, so not ISO-8859-1 (C1 controls there)");
    } else {
        snprintf(ev->note, sizeof ev->note, "uchardet said %s", said);
    }
    cd = iconv_open("UTF-8", ev->charset);
    if (cd == (iconv_t)-1) {
        snprintf(ev->note, sizeof ev->note, "uchardet said %s, which iconv does not know", said);
        r = 0;
        goto out;
    }
    sum = score_window(cd, s->sample, s->sample_len, &chars);
    if (sum >= 0 && wlen) {
        double more = score_window(cd, win, wlen, &chars);
        sum = more < 0 ? -1 : sum + more;
    }
    if (sum < 0) {
        size_t used = strlen(ev->note);
        snprintf(ev->note + used, sizeof ev->note - used, "; but bytes present are not %s",
                 ev->charset);
        conf = 0;
    } else if (chars) {
        double evidence = 0.6 + 0.04 * (double)chars;
        conf = sum / (double)chars * (evidence < 1 ? evidence : 1);
    }
    ev->confidence = conf;
    r = 0;
out:
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    uchardet_delete(ud);
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
        e->transient = errno == ENOSPC || errno == EDQUOT;
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
    bool first = true, eof = false, created = false;
    iconv_t cd = (iconv_t)-1;
    int ifd = -1, r = -1;
    struct sink k;
    memset(&k, 0, sizeof k);
    k.fd = -1;
    k.path = out_path;
    k.sample = xmalloc(ENC_SAMPLE_MAX);
    sha256_init(&k.hash);

    if (from && (cd = iconv_open("UTF-8", from)) == (iconv_t)-1) {
        werr_sys(e, "iconv_open %s", from);
        goto out;
    }
    ifd = open(raw_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ifd < 0 || lseek(ifd, (off_t)skip, SEEK_SET) < 0) {
        werr_sys(e, "%s: open", raw_path);
        goto out;
    }
    k.fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

int encoding_normalise(const char *declared, const char *part, const char *raw_path,
                       const char *utf8_out, const struct enc_scan *s, struct enc_result *r,
                       struct report *rep, struct werr *e)
{
    const char *bom_cs;
    size_t bom_len = bom_of(s->sample, s->sample_len, &bom_cs), off, len;
    char decl[32], from[32] = "";
    bool is_auto = !declared || !*declared || !strcasecmp(declared, "auto");
    bool copy = false; /* plain copy (UTF-8 with BOM) */
    int rc;

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
    } else if (s->nul_off != ENC_NONE && utf16_without_bom(s->sample, s->sample_len)) {
        const char *cs = utf16_without_bom(s->sample, s->sample_len);
        set_ev(&r->ev, "detector", cs, 0.9, "no byte-order mark; every second byte is NUL");
        snprintf(from, sizeof from, "%s", cs);
    } else if (s->utf8_ok) {
        if (s->ascii)
            set_ev(&r->ev, "ascii", "UTF-8", 1, "only 7-bit ASCII bytes");
        else
            set_ev(&r->ev, "utf-8", "UTF-8", 1, "valid UTF-8 throughout");
    } else {
        if (detect(raw_path, s, &r->ev, e) < 0)
            return -1;
        if (!r->ev.charset[0] || r->ev.confidence < ENC_MIN_CONFIDENCE) {
            report_add(rep, part, 0, 0, NULL, NULL, 0, "encoding_uncertain",
                       "the bytes are not UTF-8 and the charset cannot be told with confidence "
                       "(detector: %s, confidence %.2f; %s); declare it in the profile, e.g. "
                       "`encoding: windows-1252`",
                       r->ev.charset[0] ? r->ev.charset : "none", r->ev.confidence, r->ev.note);
            return 1;
        }
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
