/*
 * report: the problems found in one intake, each with where (part, line,
 * column, field), the offending value (an excerpt) and why, in words a
 * partner can act on:
 *
 *   orders_1128.csv line 48213, column "unit_price" (5): "12,50" is not a number (decimalChar is
 * ".")
 *
 * A report keeps at most `limit` problems and counts the rest.  Every stage
 * (inspect, validate) fills one; the seal stage writes it as report.json and
 * report.txt into the reject bag.
 */
#ifndef WHARF_REPORT_H
#define WHARF_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct problem {
    char *part;      /* file or archive member name, as given (raw bytes) */
    uint64_t line;   /* 1-based, 0 = not applicable */
    uint64_t column; /* 1-based field index for CSV, character column for XML; 0 = n/a */
    char *field;     /* column / element name, escaped excerpt, may be NULL */
    char *value;     /* escaped excerpt of the offending value, may be NULL */
    char *code;    /* machine word: ragged_rows, invalid_encoding, type, xsd, unsafe_member, ... */
    char *message; /* the reason */
};

struct report {
    struct problem *v;
    size_t n, cap;
    size_t limit;   /* kept at most; 0 means the default (100) */
    uint64_t total; /* all problems seen, kept or not */
};

void report_init(struct report *r, size_t limit);
void report_add(struct report *r, const char *part, uint64_t line, uint64_t column,
                const char *field, const char *value, size_t value_len, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 9, 10)));
/* One line per problem, plus "... and N more" when capped; partner bytes
 * escaped (util/escape.h), so each problem is exactly one line. Caller frees. */
char *report_text(const struct report *r);
/* {"total": N, "shown": n, "problems": [{part,line,column,field,value,code,message}]} */
json_t *report_json(const struct report *r);
/* The first problem as one escaped line (for `wharf rejects` and logs). Caller frees. */
char *report_first(const struct report *r);
void report_free(struct report *r);

#endif
