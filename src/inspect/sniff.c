/*
 * sniff: format and CSV dialect of a part, from a bounded sample of its
 * UTF-8 form (see sniff.h).  Owns nothing beyond the returned root name.
 *
 * The CSV dialect, step by step:
 *   1. the line ending is the first CR, LF or CRLF outside quotes ("none"
 *      when the sample holds a single unterminated line);
 *   2. for each candidate delimiter (, ; TAB |) the sample is split into up
 *      to SNIFF_RECORDS records, quote-aware; a trailing record that may be
 *      cut off by the sample's end is dropped;
 *   3. the delimiter whose field count is most consistent wins (ties: more
 *      fields, then the order above); one field everywhere means ',';
 *   4. the quote is ' only when fields start with ' and never with ";
 *   5. the first record is a header when the schema says so (its non-empty
 *      fields all name schema fields, at least one does); otherwise unless
 *      one of its fields is empty or looks like data (a number or date).
 *
 * Before all that, a first line of exactly "sep=X" (Excel writes it when
 * asked to) is a hint, not data: X is the delimiter, the line is skipped,
 * and the evidence says so.  With a pinned delimiter a different X is a
 * reject: the partner's file says one thing and the profile another.
 */
#include "inspect/sniff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

#define SNIFF_RECORDS 200
#define SNIFF_NAME    128

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Find needle in [p, end); returns its position or NULL. */
static const unsigned char *find(const unsigned char *p, const unsigned char *end,
                                 const char *needle)
{
    size_t n = strlen(needle);
    for (; p + n <= end; p++)
        if (!memcmp(p, needle, n))
            return p;
    return NULL;
}

static char *xml_root_name(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len, *q;
    while (p < end) {
        while (p < end && is_space(*p))
            p++;
        if (end - p < 2 || *p != '<')
            return NULL;
        if (p[1] == '?') {
            q = find(p, end, "?>");
            if (!q)
                return NULL;
            p = q + 2;
        } else if (end - p >= 4 && !memcmp(p, "<!--", 4)) {
            q = find(p + 4, end, "-->");
            if (!q)
                return NULL;
            p = q + 3;
        } else if (p[1] == '!') {
            const unsigned char *gt = find(p, end, ">"), *br = find(p, end, "[");
            if (br && gt && br < gt)
                gt = find(br, end, "]>") ? find(br, end, "]>") + 1 : NULL;
            if (!gt)
                return NULL;
            p = gt + 1;
        } else {
            size_t n = 0;
            p++;
            while (p + n < end && n < SNIFF_NAME && !is_space(p[n]) && p[n] != '>' && p[n] != '/')
                n++;
            if (n == 0 || n >= SNIFF_NAME || p + n >= end)
                return NULL;
            return xstrndup((const char *)p, n);
        }
    }
    return NULL;
}

/* Line ending of the first record, outside quotes. */
static void sniff_eol(const unsigned char *p, size_t len, char quote, char eol[5])
{
    bool inq = false;
    size_t i;
    for (i = 0; i < len; i++) {
        if (p[i] == (unsigned char)quote) {
            inq = !inq;
        } else if (!inq && p[i] == '\n') {
            snprintf(eol, 5, "LF");
            return;
        } else if (!inq && p[i] == '\r') {
            if (i + 1 < len && p[i + 1] == '\n')
                snprintf(eol, 5, "CRLF");
            else if (i + 1 < len)
                snprintf(eol, 5, "CR");
            else
                snprintf(eol, 5, "CR"); /* cut at the sample's end: CR or CRLF */
            return;
        }
    }
    snprintf(eol, 5, "none");
}

/*
 * Split the sample into records.  counts[i] receives the number of fields
 * of record i; when cells is not NULL, cb is called for every field of the
 * first records (for the header test).  Returns the number of complete
 * records.
 */
typedef void (*field_fn)(void *ctx, size_t rec, size_t col, const unsigned char *s, size_t n,
                         bool quoted);

static size_t split(const unsigned char *p, size_t len, bool whole, char delim, char quote,
                    size_t *counts, field_fn cb, void *ctx)
{
    size_t i = 0, rec = 0, fields = 1, fstart = 0;
    bool inq = false, quoted = false;
    while (i < len && rec < SNIFF_RECORDS) {
        unsigned char c = p[i];
        if (inq) {
            if (c == (unsigned char)quote) {
                if (i + 1 < len && p[i + 1] == (unsigned char)quote)
                    i++;
                else
                    inq = false;
            }
            i++;
            continue;
        }
        if (c == (unsigned char)quote && i == fstart) {
            inq = quoted = true;
            i++;
            continue;
        }
        if (c == (unsigned char)delim || c == '\n' || c == '\r') {
            if (cb)
                cb(ctx, rec, fields - 1, p + fstart, i - fstart, quoted);
            quoted = false;
            if (c == (unsigned char)delim) {
                fields++;
                fstart = ++i;
                continue;
            }
            if (c == '\r' && i + 1 < len && p[i + 1] == '\n')
                i++;
            counts[rec++] = fields;
            fields = 1;
            fstart = ++i;
            continue;
        }
        i++;
    }
    if (whole && !inq && fstart < len && rec < SNIFF_RECORDS) {
        if (cb)
            cb(ctx, rec, fields - 1, p + fstart, len - fstart, quoted);
        counts[rec++] = fields;
    }
    return rec;
}

static double consistency(const size_t *counts, size_t n, size_t *mode)
{
    size_t i, j, best = 0;
    *mode = 0;
    for (i = 0; i < n; i++) {
        size_t f = 0;
        for (j = 0; j < n; j++)
            f += counts[j] == counts[i];
        if (f > best || (f == best && counts[i] > *mode)) {
            best = f;
            *mode = counts[i];
        }
    }
    return n ? (double)best / (double)n : 0;
}

struct quote_count {
    char delim;
    size_t dq, sq;
};

static void count_quotes(void *ctx, size_t rec, size_t col, const unsigned char *s, size_t n,
                         bool quoted)
{
    struct quote_count *q = ctx;
    (void)rec;
    (void)col;
    (void)quoted;
    if (n && s[0] == '"')
        q->dq++;
    if (n >= 2 && s[0] == '\'' && s[n - 1] == '\'')
        q->sq++;
}

/* A number or a date/time: digits and + - . , / : only, at least one digit. */
static bool looks_like_data(const unsigned char *s, size_t n)
{
    size_t i, digits = 0;
    while (n && s[0] == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    if (!n)
        return false;
    for (i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (!strchr("+-.,/: eE", s[i]))
            return false;
    }
    return digits > 0;
}

struct header_test {
    const struct header_hint *hint;
    bool data_like; /* a field of the first record is empty or data */
    size_t named;   /* fields of the first record naming a schema field */
    bool foreign;   /* a non-empty field that names no schema field */
};

static bool names_field(const struct header_hint *h, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < h->n; i++) {
        const char *f = h->names[i];
        if (strlen(f) == n &&
            (h->case_insensitive ? !strncasecmp(f, (const char *)s, n) : !memcmp(f, s, n)))
            return true;
    }
    return false;
}

static void header_field(void *ctx, size_t rec, size_t col, const unsigned char *s, size_t n,
                         bool quoted)
{
    struct header_test *h = ctx;
    (void)col;
    if (rec != 0)
        return;
    if (quoted && n >= 2) {
        s++;
        n -= 2;
    }
    if (n == 0 || looks_like_data(s, n))
        h->data_like = true;
    if (h->hint && h->hint->n && n) {
        if (names_field(h->hint, s, n))
            h->named++;
        else
            h->foreign = true;
    }
}

/* Length of a first line "sep=X" with its line end, or 0. */
static size_t sep_line(const unsigned char *p, size_t len, char *delim)
{
    size_t n;
    if (len < 5 || memcmp(p, "sep=", 4) || p[4] == '\r' || p[4] == '\n')
        return 0;
    if (len == 5)
        n = 5;
    else if (p[5] == '\n')
        n = 6;
    else if (p[5] == '\r')
        n = len > 6 && p[6] == '\n' ? 7 : 6;
    else
        return 0;
    *delim = (char)p[4];
    return n;
}

static void sniff_header(const unsigned char *p, size_t len, bool whole,
                         const struct header_hint *hint, struct dialect *d)
{
    size_t counts[SNIFF_RECORDS];
    struct header_test ht = {.hint = hint};
    if (split(p, len, whole, d->delimiter, d->quote, counts, header_field, &ht) == 0) {
        d->header = true; /* nothing to judge by: the common case */
        d->header_from = "empty";
    } else if (ht.named && !ht.foreign) {
        d->header = true;
        d->header_from = "schema";
    } else {
        d->header = !ht.data_like;
        d->header_from = "heuristic";
    }
}

static void sniff_csv(const unsigned char *p, size_t len, bool whole,
                      const struct header_hint *hint, struct dialect *d)
{
    static const char cands[] = {',', ';', '\t', '|'};
    size_t counts[SNIFF_RECORDS], i, best_mode = 0;
    double best = -1;
    struct quote_count qc;

    if (!d->sep_line) {
        d->delimiter = ',';
        d->delimiter_from = "sniffed";
    }
    for (i = 0; i < sizeof cands && !d->sep_line; i++) {
        size_t n = split(p, len, whole, cands[i], '"', counts, NULL, NULL), mode;
        double c = consistency(counts, n, &mode);
        if (mode < 2)
            continue;
        if (c > best + 1e-9 || (c > best - 1e-9 && mode > best_mode)) {
            best = c;
            best_mode = mode;
            d->delimiter = cands[i];
        }
    }
    memset(&qc, 0, sizeof qc);
    split(p, len, whole, d->delimiter, '\0', counts, count_quotes, &qc);
    d->quote = qc.sq > 0 && qc.dq == 0 ? '\'' : '"';
    sniff_header(p, len, whole, hint, d);
    sniff_eol(p, len, d->quote, d->eol);
    d->sniffed = true;
}

int sniff_part(const struct profile *p, const struct header_hint *hint, const char *part,
               const unsigned char *sample, size_t len, bool whole, enum data_format *fmt,
               struct dialect *d, char **xml_root, struct report *rep)
{
    size_t i = 0, skip;
    char sep = 0;
    bool xml;
    *xml_root = NULL;
    memset(d, 0, sizeof *d);
    while (i < len && is_space(sample[i]))
        i++;
    if (i == len) {
        if (p->format == FORMAT_XML) {
            report_add(rep, part, 0, 0, NULL, NULL, 0, "format_mismatch",
                       "the profile expects XML but the part holds no text");
            return 1;
        }
        *fmt = FORMAT_CSV;
    }
    xml = i < len && sample[i] == '<';
    if (p->format == FORMAT_XML && !xml && i < len) {
        report_add(rep, part, 1, 0, NULL, (const char *)sample + i, len - i > 40 ? 40 : len - i,
                   "format_mismatch",
                   "the profile expects XML, but the part does not start with '<'");
        return 1;
    }
    if (p->format == FORMAT_CSV && xml) {
        char *root = xml_root_name(sample, len);
        report_add(rep, part, 1, 0, NULL, NULL, 0, "format_mismatch",
                   "the profile expects CSV, but the part is XML (root element <%s>)",
                   root ? root : "?");
        free(root);
        return 1;
    }
    if (xml) {
        *fmt = FORMAT_XML;
        *xml_root = xml_root_name(sample, len);
        return 0;
    }
    *fmt = FORMAT_CSV;
    if ((skip = sep_line(sample, len, &sep)) > 0) {
        d->sep_line = true;
        d->delimiter = sep;
        d->delimiter_from = "sep-line";
        if (p->csv.dialect_pinned && p->csv.delimiter != sep) {
            report_add(rep, part, 1, 0, NULL, (const char *)sample, 5, "dialect_mismatch",
                       "the file's first line says the delimiter is '%c' (sep=%c), but the "
                       "profile pins '%c'",
                       sep, sep, p->csv.delimiter);
            return 1;
        }
        sample += skip;
        len -= skip;
    }
    if (p->csv.dialect_pinned) {
        d->delimiter = p->csv.delimiter;
        d->quote = p->csv.quote;
        d->header = p->csv.header;
        d->delimiter_from = d->sep_line ? "sep-line" : "profile";
        d->header_from = "profile";
        sniff_eol(sample, len, d->quote, d->eol);
        d->sniffed = false;
    } else {
        sniff_csv(sample, len, whole, hint, d);
    }
    return 0;
}
