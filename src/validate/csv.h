/*
 * csv: a streaming RFC 4180 tokenizer with a dialect (delimiter, quote
 * character), tolerant of CRLF, LF and CR line endings (mixed too).
 *
 * It reads the file in big blocks with read(2) and never allocates per
 * record: one record buffer (at most max_line bytes) holds the unescaped
 * field contents, and the fields point into it.  A record returned by
 * csv_next stays valid until the next call.
 *
 * Structural problems do not stop the reader: the record that has one is
 * returned with err set (the first problem in it), and reading resumes at
 * the next record.  Error names are csvlint's.
 */
#ifndef WHARF_CSV_H
#define WHARF_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CSV_BLOCK (256 * 1024)

enum csv_error {
    CSV_OK,
    CSV_UNCLOSED_QUOTE,   /* end of file inside a quoted field */
    CSV_STRAY_QUOTE,      /* a quote inside an unquoted field, or text after a closing quote */
    CSV_LINE_TOO_LONG,    /* record longer than max_line bytes; no fields returned */
    CSV_FIELD_TOO_LONG,   /* field longer than max_field bytes; it is cut */
    CSV_INVALID_ENCODING, /* a field is not valid UTF-8 */
};

struct csv_field {
    const char *p; /* into the record buffer; not NUL-terminated */
    size_t len;
    bool quoted;
    size_t off; /* internal */
};

struct csv_record {
    struct csv_field *f;
    size_t n;
    uint64_t line; /* physical line (1-based) where the record starts */
    bool blank;    /* an empty line */
    enum csv_error err;
    size_t err_field; /* 1-based field of err, 0 when not known */
};

struct csv_reader;

/* Reads fd (not closed by csv_close).  max_line / max_field: 0 means the
 * defaults of defaults.h. */
struct csv_reader *csv_open_fd(int fd, char delimiter, char quote, uint64_t max_line,
                               uint64_t max_field);
/* Opens path (O_RDONLY|O_NOFOLLOW); NULL with e filled when it cannot. */
/* Keep *counter at the number of bytes read so far (progress display). */
void csv_set_progress(struct csv_reader *r, uint64_t *counter);
struct csv_reader *csv_open(const char *path, char delimiter, char quote, uint64_t max_line,
                            uint64_t max_field, struct werr *e);
/* 1: a record in rec; 0: end of file; -1: read error (e filled). */
int csv_next(struct csv_reader *r, struct csv_record *rec, struct werr *e);
void csv_close(struct csv_reader *r);

/* csvlint's name of an error ("unclosed_quote", ...). */
const char *csv_error_code(enum csv_error err);
/* A short reason for messages ("unclosed quote: the file ends inside a quoted field"). */
const char *csv_error_text(enum csv_error err);
/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool csv_utf8_valid(const char *s, size_t len);

#endif
