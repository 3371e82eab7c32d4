/*
 * pgcopy: COPY BINARY fields (see pgcopy.h for the formats).
 *
 * numeric is built from decimal digits and the position of the point:
 * value = 0.d1 d2 .. dn x 10^ip.  The digit of decimal exponent e (d_i has
 * e = ip - i) lands in base-10000 digit floor(e / 4), the weight is that of
 * the first digit, and dscale is what numeric_in keeps: the digits written
 * after the point less the exponent, at least 0.  A double goes through
 * its shortest text, as the text COPY sends it; the common case (at most
 * 15 significant digits, m / 10^p == d with m an integer) needs no printf:
 * when m / 10^p, a correctly rounded division of two exact doubles, is d,
 * %.15g of d prints m x 10^-p, since d lies within half an ulp of it and
 * 15-digit rounding boundaries lie further away.
 */
#include "load/pgcopy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/parse.h"
#include "util/xmalloc.h"

#define NUMERIC_POS  0x0000
#define NUMERIC_NEG  0x4000
#define NUMERIC_NAN  0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define DSCALE_MAX   0x3FFF
#define EXP_MAX      1000000000 /* numeric_in refuses INT_MAX / 2 and beyond */
#define PG_EPOCH_DAY 10957      /* 2000-01-01 in days since 1970-01-01 */

const char pgcopy_header[PGCOPY_HEADER_LEN] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
const char pgcopy_trailer[2] = {'\377', '\377'};

void pgcopy_reserve(struct pgcopy_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    b->cap = (b->len + more) * 2;
    if (b->cap < 65536)
        b->cap = 65536;
    b->p = xrealloc(b->p, b->cap);
}

void pgcopy_add(struct pgcopy_buf *b, const void *s, size_t n)
{
    pgcopy_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static void put32(char *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

char *pgcopy_field(struct pgcopy_buf *b, uint32_t n)
{
    pgcopy_reserve(b, 4 + (size_t)n);
    put32(b->p + b->len, n);
    b->len += 4 + (size_t)n;
    return b->p + b->len - n;
}

void pgcopy_row(struct pgcopy_buf *b, uint16_t nfields)
{
    pgcopy_reserve(b, 2);
    put16(b->p + b->len, nfields);
    b->len += 2;
}

void pgcopy_null(struct pgcopy_buf *b)
{
    pgcopy_reserve(b, 4);
    put32(b->p + b->len, 0xFFFFFFFFu);
    b->len += 4;
}

void pgcopy_int8(struct pgcopy_buf *b, int64_t v)
{
    put64(pgcopy_field(b, 8), (uint64_t)v);
}

void pgcopy_bool(struct pgcopy_buf *b, bool v)
{
    *pgcopy_field(b, 1) = v ? 1 : 0;
}

void pgcopy_text(struct pgcopy_buf *b, const char *s, size_t n)
{
    if (n)
        memcpy(pgcopy_field(b, (uint32_t)n), s, n);
    else
        pgcopy_field(b, 0);
}

void pgcopy_float8(struct pgcopy_buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put64(pgcopy_field(b, 8), u);
}

/* ---- numeric ------------------------------------------------------------ */

static long floordiv4(long e)
{
    return e >= 0 ? e / 4 : -((-e + 3) / 4);
}

static void numeric_special(struct pgcopy_buf *b, uint16_t sign)
{
    char *p = pgcopy_field(b, 8);
    put16(p, 0);
    put16(p + 2, 0);
    put16(p + 4, sign);
    put16(p + 6, 0);
}

/* 0.dig[0..nd) x 10^ip, negative when neg, with dscale; -1 when the weight
 * or dscale do not fit numeric's header. */
static int numeric_digits(struct pgcopy_buf *b, bool neg, const char *dig, size_t nd, long ip,
                          long dscale)
{
    while (nd && *dig == '0') {
        dig++;
        nd--;
        ip--;
    }
    while (nd && dig[nd - 1] == '0')
        nd--;
    if (dscale < 0)
        dscale = 0;
    if (dscale > DSCALE_MAX)
        return -1;
    if (!nd) {
        char *p = pgcopy_field(b, 8);
        put16(p, 0);
        put16(p + 2, 0);
        put16(p + 4, NUMERIC_POS);
        put16(p + 6, (uint16_t)dscale);
        return 0;
    }
    long weight = floordiv4(ip - 1), last = floordiv4(ip - (long)nd);
    long ng = weight - last + 1;
    if (weight > INT16_MAX || last < INT16_MIN || ng > 0xFFFF)
        return -1;
    char *p = pgcopy_field(b, (uint32_t)(8 + 2 * ng));
    put16(p, (uint16_t)ng);
    put16(p + 2, (uint16_t)(int16_t)weight);
    put16(p + 4, neg ? NUMERIC_NEG : NUMERIC_POS);
    put16(p + 6, (uint16_t)dscale);
    p += 8;
    for (long g = weight; g >= last; g--, p += 2) {
        unsigned v = 0;
        for (long e = 4 * g + 3; e >= 4 * g; e--) {
            long i = ip - 1 - e; /* the digit of exponent e */
            v = v * 10 + (i >= 0 && i < (long)nd ? (unsigned)(dig[i] - '0') : 0);
        }
        put16(p, (uint16_t)v);
    }
    return 0;
}

void pgcopy_numeric_int(struct pgcopy_buf *b, int64_t v)
{
    char tmp[20];
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = format_u64(tmp, m);
    numeric_digits(b, v < 0, tmp, n, (long)n, 0);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int pgcopy_numeric_text(struct pgcopy_buf *b, const char *s, size_t n)
{
    const char *end = s + n, *p, *dig;
    char buf[64], *digs = buf;
    size_t nd = 0, ni = 0, nf = 0;
    long exp = 0;
    bool neg = false;
    int r = -1;
    while (s < end && is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    n = (size_t)(end - s);
    if ((n == 3 && !strncasecmp(s, "NaN", 3))) {
        numeric_special(b, NUMERIC_NAN);
        return 0;
    }
    if ((n == 8 && !strncasecmp(s, "Infinity", 8)) || (n == 9 && !strncasecmp(s, "+Infinity", 9))) {
        numeric_special(b, NUMERIC_PINF);
        return 0;
    }
    if (n == 9 && !strncasecmp(s, "-Infinity", 9)) {
        numeric_special(b, NUMERIC_NINF);
        return 0;
    }
    p = s;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    dig = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++, ni++;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9')
            p++, nf++;
    }
    if (ni + nf == 0)
        return -1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        size_t ed = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        for (; p < end && *p >= '0' && *p <= '9'; p++, ed++)
            if (exp <= EXP_MAX)
                exp = exp * 10 + (*p - '0');
        if (!ed || exp > EXP_MAX)
            return -1;
        if (eneg)
            exp = -exp;
    }
    if (p != end)
        return -1;
    nd = ni + nf;
    if (nd > sizeof buf)
        digs = xmalloc(nd);
    memcpy(digs, dig, ni);
    if (nf)
        memcpy(digs + ni, dig + ni + 1, nf);
    r = numeric_digits(b, neg, digs, nd, (long)ni + exp, (long)nf - exp);
    if (digs != buf)
        free(digs);
    return r;
}

int pgcopy_real_text(double d, char *out, size_t size)
{
    if (isnan(d))
        return snprintf(out, size, "NaN");
    if (isinf(d))
        return snprintf(out, size, d < 0 ? "-Infinity" : "Infinity");
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(out, size, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            return n;
    }
    return 0;
}

void pgcopy_numeric_real(struct pgcopy_buf *b, double d)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(d);
    char txt[40];
    if (a == 0) { /* "0" or "-0": zero, scale 0 */
        numeric_digits(b, false, "", 0, 0, 0);
        return;
    }
    if (a < 1e15 && a >= 1e-15) {
        for (int p = 0; p < 16; p++) {
            double x = nearbyint(a * p10[p]);
            if (x >= 1e15)
                break;
            if (x / p10[p] == a) {
                char tmp[20];
                size_t n = format_u64(tmp, (uint64_t)x);
                numeric_digits(b, d < 0, tmp, n, (long)n - p, p);
                return;
            }
        }
    }
    int n = pgcopy_real_text(d, txt, sizeof txt);
    pgcopy_numeric_text(b, txt, (size_t)n); /* always a number */
}

/* ---- date, timestamptz -------------------------------------------------- */

static int64_t days_since_1970(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* Digits s[*i ..] as a number, at least min and at most max of them. */
static bool num(const char *s, size_t n, size_t *i, size_t min, size_t max, int64_t *out)
{
    size_t k = 0;
    int64_t v = 0;
    while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[(*i)++] - '0');
        k++;
    }
    *out = v;
    return k >= min;
}

/* "YYYY-MM-DD" at s[*i ..]: days since 2000-01-01; false when the server
 * would refuse the date. */
static bool ymd(const char *s, size_t n, size_t *i, int64_t *days)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t y, m, d;
    if (!num(s, n, i, 4, 9, &y) || *i >= n || s[(*i)++] != '-' || !num(s, n, i, 2, 2, &m) ||
        *i >= n || s[(*i)++] != '-' || !num(s, n, i, 2, 2, &d))
        return false;
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dm[m - 1] + (m == 2 && leap))
        return false;
    *days = days_since_1970(y, (int)m, (int)d) - PG_EPOCH_DAY;
    return true;
}

int pgcopy_date(struct pgcopy_buf *b, const char *s, size_t n)
{
    size_t i = 0;
    int64_t days;
    if (!ymd(s, n, &i, &days) || i != n || days > INT32_MAX)
        return -1;
    put32(pgcopy_field(b, 4), (uint32_t)(int32_t)days);
    return 0;
}

int pgcopy_timestamptz(struct pgcopy_buf *b, const char *s, size_t n)
{
    size_t i = 0;
    int64_t days, h, mi, sec, usec = 0;
    if (!ymd(s, n, &i, &days) || i >= n || (s[i] != 'T' && s[i] != ' '))
        return -1;
    i++;
    if (!num(s, n, &i, 2, 2, &h) || i >= n || s[i++] != ':' || !num(s, n, &i, 2, 2, &mi) ||
        i >= n || s[i++] != ':' || !num(s, n, &i, 2, 2, &sec))
        return -1;
    if (i < n && s[i] == '.') {
        char frac[32];
        size_t f = i;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i - f < 2 || i - f >= sizeof frac)
            return -1;
        memcpy(frac, s + f, i - f);
        frac[i - f] = 0;
        usec = (int64_t)rint(strtod(frac, NULL) * 1000000); /* as the server rounds */
    }
    if (i < n && s[i] == 'Z')
        i++;
    if (i != n || mi > 59 || sec > 60 || h > 24 || (h == 24 && (mi || sec || usec)))
        return -1;
    put64(pgcopy_field(b, 8),
          (uint64_t)((days * 86400 + h * 3600 + mi * 60 + sec) * 1000000 + usec));
    return 0;
}
