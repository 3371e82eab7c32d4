/*
 * pgcopy: wharf's values in PostgreSQL's COPY BINARY format (the postgres
 * target's encoder; bench/README.md, B1-pg: the server parses it faster
 * than text).
 *
 * The stream is a header, then per row an int16 field count and per field
 * an int32 length (-1: NULL) and that many bytes in the type's binary
 * "send" format, then an int16 -1.  Everything is big-endian.  Each
 * encoder appends one whole field (length word included) to a pgcopy_buf
 * and stores exactly what the server's text input function would have
 * made of the text COPY wharf sends otherwise:
 *
 *   int8         8 bytes
 *   bool         1 byte, 0 or 1
 *   text         the UTF-8 bytes
 *   float8       the IEEE 754 bits
 *   numeric      int16 ndigits, int16 weight (of the first base-10000
 *                digit), int16 sign (0x0000 +, 0x4000 -, 0xC000 NaN,
 *                0xD000 +Infinity, 0xF000 -Infinity), int16 dscale
 *                (decimal digits after the point, as numeric_in counts
 *                them: "1.50" 2, "1.5e-3" 4, "15e2" 0), then the base-10000
 *                digits, most significant first, without leading or
 *                trailing zero digits; zero is ndigits 0, weight 0, sign +
 *   date         int32 days since 2000-01-01
 *   timestamptz  int64 microseconds since 2000-01-01 00:00:00 UTC
 *                (fractions beyond microseconds rounded as the server
 *                does: rint(fraction * 1e6))
 *
 * The text encoders return -1 when the server's input function would have
 * refused the text (not a number, year 0, out of range): the caller
 * refuses the row as the server would have.
 */
#ifndef WHARF_PGCOPY_H
#define WHARF_PGCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgcopy_buf {
    char *p;
    size_t len, cap;
};

/* Room for more bytes at p + len (the buffer grows, xrealloc). */
void pgcopy_reserve(struct pgcopy_buf *b, size_t more);
void pgcopy_add(struct pgcopy_buf *b, const void *s, size_t n);

/* The 19-byte file header and the 2-byte trailer. */
#define PGCOPY_HEADER_LEN 19
extern const char pgcopy_header[PGCOPY_HEADER_LEN];
extern const char pgcopy_trailer[2];

void pgcopy_row(struct pgcopy_buf *b, uint16_t nfields);
/* A field of n bytes: its length word appended, and where its bytes go. */
char *pgcopy_field(struct pgcopy_buf *b, uint32_t n);
void pgcopy_null(struct pgcopy_buf *b);
void pgcopy_int8(struct pgcopy_buf *b, int64_t v);
void pgcopy_bool(struct pgcopy_buf *b, bool v);
void pgcopy_text(struct pgcopy_buf *b, const char *s, size_t n);
void pgcopy_float8(struct pgcopy_buf *b, double d);
void pgcopy_numeric_int(struct pgcopy_buf *b, int64_t v);
/* The double as the shortest text that reads back as it (pgcopy_real_text),
 * as numeric. */
void pgcopy_numeric_real(struct pgcopy_buf *b, double d);
/* -1 (nothing appended) when numeric_in would refuse the text. */
int pgcopy_numeric_text(struct pgcopy_buf *b, const char *s, size_t n);
/* "YYYY-MM-DD" (year 1 and later, four digits or more). */
int pgcopy_date(struct pgcopy_buf *b, const char *s, size_t n);
/* "YYYY-MM-DDTHH:MM:SS[.fraction][Z]", UTC (the target's session zone). */
int pgcopy_timestamptz(struct pgcopy_buf *b, const char *s, size_t n);

/* The shortest decimal text (%.15g .. %.17g) that reads back as d; NaN,
 * Infinity, -Infinity as PostgreSQL spells them.  Its length. */
int pgcopy_real_text(double d, char *out, size_t size);

#endif
