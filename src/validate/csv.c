/*
 * csv: the CSV tokenizer (see csv.h), the hot loop of CSV validation.
 *
 * Owns: one input block (CSV_BLOCK bytes), one record buffer that grows up
 * to max_line bytes, one field array that grows with the widest record.
 * Nothing is allocated per record.  Can fail: open(2)/read(2) (werr);
 * everything wrong with the data itself is reported per record.
 */
#include "validate/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/defaults.h"
#include "util/xmalloc.h"

enum state { S_FIELD_START, S_UNQUOTED, S_QUOTED, S_QUOTE_END, S_SKIP };

struct csv_reader {
    int fd;
    bool own_fd;
    char delim, quote;
    size_t max_line, max_field;

    unsigned char *in; /* input block */
    size_t in_len, in_pos;
    uint64_t in_base; /* file offset of in[0] */
    bool eof;
    uint64_t *progress; /* bytes read so far, for a progress display */

    char *rec; /* record buffer: field contents, unescaped */
    size_t rec_len, rec_cap;
    struct csv_field *f;
    size_t nf, f_cap;

    uint64_t line; /* physical line of the next byte */
    bool prev_cr;  /* last byte consumed was a CR (CRLF counts once) */
    bool skip_lf;  /* the last record ended on CR: swallow one LF */

    /* Where to resume after an unclosed quote at end of file: the byte after
     * the first line break inside the open quoted field. */
    uint64_t q_off, q_line;
    bool q_set, q_skip_lf;

    /* byte classes: nonzero stops the fast scan */
    unsigned char stop_unq[256], stop_q[256], stop_nl[256];
};

struct csv_reader *csv_open_fd(int fd, char delimiter, char quote, uint64_t max_line,
                               uint64_t max_field)
{
    struct csv_reader *r = xcalloc(1, sizeof *r);
    r->fd = fd;
    r->delim = delimiter ? delimiter : ',';
    r->quote = quote;
    r->max_line = max_line ? (size_t)max_line : DEF_MAX_LINE;
    r->max_field = max_field ? (size_t)max_field : DEF_MAX_FIELD;
    if (r->max_field > r->max_line)
        r->max_field = r->max_line;
    r->in = xmalloc(CSV_BLOCK);
    r->rec_cap = 4096 < r->max_line ? 4096 : r->max_line;
    r->rec = xmalloc(r->rec_cap + 1);
    r->f_cap = 64;
    r->f = xmalloc(r->f_cap * sizeof *r->f);
    r->line = 1;
    r->stop_unq[(unsigned char)r->delim] = 1;
    r->stop_unq['\r'] = r->stop_unq['\n'] = 1;
    r->stop_q['\r'] = r->stop_q['\n'] = 1;
    r->stop_nl['\r'] = r->stop_nl['\n'] = 1;
    if (quote) {
        r->stop_unq[(unsigned char)quote] = 1;
        r->stop_q[(unsigned char)quote] = 1;
    }
    return r;
}

struct csv_reader *csv_open(const char *path, char delimiter, char quote, uint64_t max_line,
                            uint64_t max_field, struct werr *e)
{
    struct csv_reader *r;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        werr_sys(e, "%s: open", path);
        return NULL;
    }
    r = csv_open_fd(fd, delimiter, quote, max_line, max_field);
    r->own_fd = true;
    return r;
}

void csv_close(struct csv_reader *r)
{
    if (!r)
        return;
    if (r->own_fd)
        close(r->fd);
    free(r->in);
    free(r->rec);
    free(r->f);
    free(r);
}

const char *csv_error_code(enum csv_error err)
{
    switch (err) {
    case CSV_OK:
        return "ok";
    case CSV_UNCLOSED_QUOTE:
        return "unclosed_quote";
    case CSV_STRAY_QUOTE:
        return "stray_quote";
    case CSV_LINE_TOO_LONG:
        return "line_too_long";
    case CSV_FIELD_TOO_LONG:
        return "field_too_long";
    case CSV_INVALID_ENCODING:
        return "invalid_encoding";
    }
    return "error";
}

const char *csv_error_text(enum csv_error err)
{
    switch (err) {
    case CSV_OK:
        return "ok";
    case CSV_UNCLOSED_QUOTE:
        return "unclosed quote: the file ends inside a quoted field";
    case CSV_STRAY_QUOTE:
        return "stray quote: a quote inside an unquoted field or after a closing quote";
    case CSV_LINE_TOO_LONG:
        return "record too long";
    case CSV_FIELD_TOO_LONG:
        return "field too long";
    case CSV_INVALID_ENCODING:
        return "is not valid UTF-8";
    }
    return "error";
}

bool csv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        /* ASCII fast path, eight bytes at a time */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        if (p == end)
            break;
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t need;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= need)
            return false;
        unsigned cp = c & (0x3F >> need);
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += need + 1;
    }
    return true;
}

/* Fill the input block; false at end of file or on error (e filled, *err). */
static bool refill(struct csv_reader *r, int *err, struct werr *e)
{
    ssize_t n;
    if (r->eof)
        return false;
    r->in_base += r->in_len;
    r->in_len = r->in_pos = 0;
    do {
        n = read(r->fd, r->in, CSV_BLOCK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        werr_sys(e, "read");
        *err = -1;
        r->eof = true;
        return false;
    }
    if (n == 0) {
        r->eof = true;
        return false;
    }
    r->in_len = (size_t)n;
    if (r->progress)
        *r->progress = r->in_base + (uint64_t)n;
    return true;
}

void csv_set_progress(struct csv_reader *r, uint64_t *counter)
{
    r->progress = counter;
}

static void new_field(struct csv_reader *r)
{
    if (r->nf == r->f_cap) {
        r->f_cap *= 2;
        r->f = xrealloc(r->f, r->f_cap * sizeof *r->f);
    }
    r->f[r->nf].off = r->rec_len;
    r->f[r->nf].len = 0;
    r->f[r->nf].quoted = false;
    r->nf++;
}

static void set_err(struct csv_record *rec, enum csv_error err, size_t field)
{
    if (rec->err == CSV_OK) {
        rec->err = err;
        rec->err_field = field;
    }
}

/* Append to the current field, cutting it at max_field.  The caller has
 * already checked the record against max_line, so rec never outgrows it. */
static void append(struct csv_reader *r, struct csv_record *rec, const void *p, size_t n)
{
    struct csv_field *f = &r->f[r->nf - 1];
    if (f->len + n > r->max_field) {
        set_err(rec, CSV_FIELD_TOO_LONG, r->nf);
        n = f->len < r->max_field ? r->max_field - f->len : 0;
    }
    if (!n)
        return;
    if (r->rec_len + n > r->rec_cap) {
        size_t cap = r->rec_cap * 2;
        while (cap < r->rec_len + n)
            cap *= 2;
        if (cap > r->max_line)
            cap = r->max_line;
        r->rec = xrealloc(r->rec, cap + 1);
        r->rec_cap = cap;
    }
    memcpy(r->rec + r->rec_len, p, n);
    r->rec_len += n;
    f->len += n;
}

/* Go back to the first line break inside the unclosed quoted field. */
static void resync_after_quote(struct csv_reader *r)
{
    if (!r->q_set || lseek(r->fd, (off_t)r->q_off, SEEK_SET) < 0)
        return;
    r->in_base = r->q_off;
    r->in_len = r->in_pos = 0;
    r->eof = false;
    r->line = r->q_line;
    r->skip_lf = r->q_skip_lf;
    r->prev_cr = false;
}

/*
 * csv_next: one record.
 *
 * The tokenizer is a five-state machine over bytes.  Most bytes of a CSV
 * file are plain field text, so each state first runs a tight scan over a
 * 256-entry table to find the next byte that matters (delimiter, quote, CR,
 * LF) and copies the run it skipped in one memcpy; only the interesting byte
 * goes through the switch.
 *
 *   FIELD_START  a quote opens a quoted field; anything else is UNQUOTED.
 *   UNQUOTED     delimiter ends the field, CR or LF ends the record, a quote
 *                is a stray_quote (kept literally, as most readers do).
 *   QUOTED       CR and LF are field text (and count physical lines); a
 *                quote goes to QUOTE_END.
 *   QUOTE_END    a second quote is one literal quote (back to QUOTED);
 *                delimiter / CR / LF / end of file end the field; anything
 *                else is a stray_quote and the field goes on UNQUOTED.
 *   SKIP         the record passed max_line: drop bytes up to the next CR
 *                or LF, whether or not we think we are inside quotes, and
 *                start afresh there (line_too_long).
 *
 * Physical lines: CR, LF and CRLF each end one line.  A record ending in CR
 * leaves skip_lf set so the LF of a CRLF is swallowed by the next call.
 *
 * Resynchronisation: errors inside a record never stop the reader.  End of
 * file inside quotes (unclosed_quote) is the one case where the quote has
 * swallowed the rest of the file; the record is returned, then the reader
 * seeks back to the first line break inside that quoted field and reads on
 * from there, so rows after a lone quote are still checked.  Each such seek
 * goes strictly forward from the record's start, so this terminates.
 *
 * Example (delimiter ',', quote '"'), three records, lines 1, 2 and 4:
 *
 *   id,name\r\n
 *   1,"Smith, ""Jo""\n
 *   Ann"\n
 *   2,Lee
 */
int csv_next(struct csv_reader *r, struct csv_record *rec, struct werr *e)
{
    enum state st = S_FIELD_START;
    size_t raw = 0; /* bytes of this record, terminator excluded */
    int rc = 0;
    bool any = false; /* consumed at least one byte of this record */

    memset(rec, 0, sizeof *rec);
    r->rec_len = 0;
    r->nf = 0;
    new_field(r);

    for (;;) {
        if (r->in_pos == r->in_len && !refill(r, &rc, e)) {
            if (rc < 0)
                return -1;
            break; /* end of file */
        }
        if (r->skip_lf) {
            r->skip_lf = false;
            if (r->in[r->in_pos] == '\n') {
                r->in_pos++;
                continue;
            }
        }
        if (!any) {
            rec->line = r->line;
            any = true;
        }

        const unsigned char *p = r->in + r->in_pos, *end = r->in + r->in_len, *s = p;
        const unsigned char *stop = st == S_QUOTED ? r->stop_q
                                    : st == S_SKIP ? r->stop_nl
                                                   : r->stop_unq;
        if (st == S_UNQUOTED || st == S_QUOTED || st == S_SKIP) {
            while (p < end && !stop[*p])
                p++;
            size_t run = (size_t)(p - s);
            if (run) {
                r->prev_cr = false;
                if (st != S_SKIP) {
                    if (raw + run > r->max_line) {
                        set_err(rec, CSV_LINE_TOO_LONG, r->nf);
                        st = S_SKIP;
                    } else {
                        append(r, rec, s, run);
                    }
                }
                raw += run;
            }
            r->in_pos += run;
            if (p == end)
                continue;
        }

        unsigned char c = *p;
        r->in_pos++;
        bool nl = c == '\n' || c == '\r';
        if (nl) {
            if (!(c == '\n' && r->prev_cr))
                r->line++;
            r->prev_cr = c == '\r';
        } else {
            r->prev_cr = false;
        }
        if (st != S_SKIP && !(nl && st != S_QUOTED) && ++raw > r->max_line) {
            set_err(rec, CSV_LINE_TOO_LONG, r->nf);
            st = S_SKIP;
        }

        switch (st) {
        case S_SKIP:
            if (nl)
                goto record_end_nl;
            break;
        case S_FIELD_START:
            if (r->quote && c == (unsigned char)r->quote) {
                r->f[r->nf - 1].quoted = true;
                r->q_set = false;
                st = S_QUOTED;
                break;
            }
            st = S_UNQUOTED;
            /* fall through */
        case S_UNQUOTED:
            if (c == (unsigned char)r->delim) {
                new_field(r);
                st = S_FIELD_START;
            } else if (nl) {
                goto record_end_nl;
            } else if (r->quote && c == (unsigned char)r->quote) {
                set_err(rec, CSV_STRAY_QUOTE, r->nf);
                append(r, rec, &c, 1);
            } else {
                append(r, rec, &c, 1);
            }
            break;
        case S_QUOTED:
            if (nl) {
                append(r, rec, &c, 1);
                if (!r->q_set) {
                    r->q_set = true;
                    r->q_off = r->in_base + r->in_pos;
                    r->q_line = r->line;
                    r->q_skip_lf = c == '\r';
                }
            } else {
                st = S_QUOTE_END;
            }
            break;
        case S_QUOTE_END:
            if (c == (unsigned char)r->quote) {
                append(r, rec, &c, 1);
                st = S_QUOTED;
            } else if (c == (unsigned char)r->delim) {
                new_field(r);
                st = S_FIELD_START;
            } else if (nl) {
                goto record_end_nl;
            } else {
                set_err(rec, CSV_STRAY_QUOTE, r->nf);
                append(r, rec, &c, 1);
                st = S_UNQUOTED;
            }
            break;
        }
        continue;

    record_end_nl:
        if (c == '\r')
            r->skip_lf = true;
        goto done;
    }

    /* end of file */
    if (!any)
        return 0;
    if (st == S_QUOTED) {
        set_err(rec, CSV_UNCLOSED_QUOTE, r->nf);
        resync_after_quote(r);
    }

done:
    if (rec->err == CSV_LINE_TOO_LONG) {
        r->nf = 0;
    } else {
        rec->blank = raw == 0 && r->nf == 1 && !r->f[0].quoted;
        for (size_t i = 0; i < r->nf; i++)
            r->f[i].p = r->rec + r->f[i].off;
        if (rec->err == CSV_OK) {
            for (size_t i = 0; i < r->nf; i++)
                if (!csv_utf8_valid(r->f[i].p, r->f[i].len)) {
                    set_err(rec, CSV_INVALID_ENCODING, i + 1);
                    break;
                }
        }
    }
    rec->f = r->f;
    rec->n = r->nf;
    return 1;
}
