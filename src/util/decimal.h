/*
 * decimal: exact sums of decimal numbers written as text ("56789.00",
 * "-0.5", "1.25e3"), in arbitrary precision, never through a double.
 * A partner's control total must match to the last digit.
 *
 * The value is held as base-10 digits (least significant first) and a
 * scale (digits after the point); adding a number with more fraction
 * digits widens the scale.  Sizes are bounded: a number or a sum longer
 * than DECIMAL_MAX_DIGITS digits is refused.
 *
 * Ownership: decimal_free releases the digits; decimal_str returns a string
 * the caller frees.
 */
#ifndef WHARF_DECIMAL_H
#define WHARF_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>

#define DECIMAL_MAX_DIGITS 4096

struct decimal {
    unsigned char *d; /* digits 0..9, least significant first */
    size_t n;         /* digits used (at least scale + 1 once set) */
    size_t cap;
    size_t scale; /* digits after the point */
    bool neg;
};

/* Parse text ([+-]digits[.digits][(e|E)[+-]digits]) into *out (replacing it).
 * -1 when the text is not such a number or is too long; *out is then 0. */
int decimal_parse(struct decimal *out, const char *s, size_t len);
/* *acc += text's number.  -1 (acc unchanged) when it is not a number. */
int decimal_add_text(struct decimal *acc, const char *s, size_t len);
/* *acc += *b. -1 (acc unchanged) when the result would be too long. */
int decimal_add(struct decimal *acc, const struct decimal *b);
/* <0, 0, >0 as a is less than, equal to, greater than b (numerically:
 * 1.50 equals 1.5). */
int decimal_cmp(const struct decimal *a, const struct decimal *b);
/* "-1234.50" (its own scale); group: "-1,234.50". */
char *decimal_str(const struct decimal *a, bool group);
void decimal_free(struct decimal *a);

#endif
