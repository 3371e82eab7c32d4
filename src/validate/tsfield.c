/*
 * tsfield: casting CSV cells to Table Schema types (see tsfield.h).
 *
 * Owns nothing but what a compiled field holds (freed by tsfield_free).
 * Casting allocates only to parse object and array cells (jansson, freed
 * at once): temporal values and geopoints are normalised into the cast's
 * own small buffer, everything else points at the cell or is a number.
 *
 * Dates and times are parsed here rather than with strptime(3): strptime is
 * locale-dependent, skips whitespace and accepts trailing text, all of which
 * would let bad cells through.  Patterns use strptime's directives:
 *   %Y %y %m %d %e %H %I %M %S %f %z %p %b %h %B %%
 * In the ISO default formats every number has its full width; in patterns
 * (and "any") %m %d %H %I %M %S accept one or two digits, like strptime.
 */
#include "validate/tsfield.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

static const char *type_names[] = {
    [TS_STRING] = "string",     [TS_INTEGER] = "integer",   [TS_NUMBER] = "number",
    [TS_BOOLEAN] = "boolean",   [TS_DATE] = "date",         [TS_TIME] = "time",
    [TS_DATETIME] = "datetime", [TS_YEAR] = "year",         [TS_YEARMONTH] = "yearmonth",
    [TS_DURATION] = "duration", [TS_ANY] = "any",           [TS_OBJECT] = "object",
    [TS_ARRAY] = "array",       [TS_GEOPOINT] = "geopoint",
};

int tsfield_type(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (!strcmp(type_names[i], name))
            return (int)i;
    return -1;
}

const char *tsfield_type_name(enum ts_type t)
{
    return type_names[t];
}

const char *tsfield_type_names(void)
{
    return "string, integer, number, boolean, date, time, datetime, year, yearmonth, duration, "
           "any, object, array, geopoint";
}

static const char *default_true[] = {"true", "True", "TRUE", "1"};
static const char *default_false[] = {"false", "False", "FALSE", "0"};

void tsfield_defaults(struct ts_field *f)
{
    f->decimal_char = '.';
    f->group_char = 0;
    f->bare_number = true;
    if (f->type == TS_BOOLEAN && !f->true_values) {
        f->n_true = 4;
        f->true_values = xcalloc(4, sizeof(char *));
        for (size_t i = 0; i < 4; i++)
            f->true_values[i] = xstrdup(default_true[i]);
    }
    if (f->type == TS_BOOLEAN && !f->false_values) {
        f->n_false = 4;
        f->false_values = xcalloc(4, sizeof(char *));
        for (size_t i = 0; i < 4; i++)
            f->false_values[i] = xstrdup(default_false[i]);
    }
}

void tsfield_free(struct ts_field *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->pattern_fmt);
    for (size_t i = 0; i < f->n_true; i++)
        free(f->true_values[i]);
    for (size_t i = 0; i < f->n_false; i++)
        free(f->false_values[i]);
    free(f->true_values);
    free(f->false_values);
    free(f->min_text);
    free(f->max_text);
    if (f->re)
        xmlRegFreeRegexp(f->re);
    free(f->pattern);
    free(f->enum_v);
    free(f->enum_text);
    for (size_t i = 0; i < f->n_owned; i++)
        free(f->owned[i]);
    free(f->owned);
}

/* ---- dates and times ---------------------------------------------------- */

struct dt {
    int y, mo, d, h, mi, s, h12, pm; /* pm: -1 not given */
    char frac[10];
    bool has_y, has_mo, has_d, has_h, has_mi, has_s, has_tz;
    int tz_min;
};

static const char *months[] = {"january",   "february", "march",    "april",
                               "may",       "june",     "july",     "august",
                               "september", "october",  "november", "december"};

static bool num(const char **p, const char *end, int min, int max, int *out)
{
    int v = 0, n = 0;
    while (*p < end && n < max && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n >= min;
}

static bool dt_parse(const char *fmt, const char *s, size_t len, bool strict, struct dt *t)
{
    const char *p = s, *end = s + len;
    int w = strict ? 2 : 1, v;
    memset(t, 0, sizeof *t);
    t->pm = -1;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (p == end || *p != *f)
                return false;
            p++;
            continue;
        }
        switch (*++f) {
        case 'Y':
            if (!num(&p, end, 4, 4, &t->y))
                return false;
            t->has_y = true;
            break;
        case 'y':
            if (!num(&p, end, 2, 2, &v))
                return false;
            t->y = v < 69 ? 2000 + v : 1900 + v;
            t->has_y = true;
            break;
        case 'm':
            if (!num(&p, end, w, 2, &t->mo))
                return false;
            t->has_mo = true;
            break;
        case 'd':
        case 'e':
            if (!num(&p, end, w, 2, &t->d))
                return false;
            t->has_d = true;
            break;
        case 'H':
            if (!num(&p, end, w, 2, &t->h))
                return false;
            t->has_h = true;
            break;
        case 'I':
            if (!num(&p, end, w, 2, &t->h12) || t->h12 < 1 || t->h12 > 12)
                return false;
            t->has_h = true;
            break;
        case 'M':
            if (!num(&p, end, w, 2, &t->mi))
                return false;
            t->has_mi = true;
            break;
        case 'S':
            if (!num(&p, end, w, 2, &t->s))
                return false;
            t->has_s = true;
            break;
        case 'f': {
            size_t n = 0;
            while (p < end && *p >= '0' && *p <= '9' && n < 9)
                t->frac[n++] = *p++;
            t->frac[n] = 0;
            if (!n)
                return false;
            break;
        }
        case 'z': {
            int hh, mm = 0, sign;
            if (p < end && *p == 'Z') {
                p++;
                t->has_tz = true;
                t->tz_min = 0;
                break;
            }
            if (p == end || (*p != '+' && *p != '-'))
                return false;
            sign = *p++ == '-' ? -1 : 1;
            if (!num(&p, end, 2, 2, &hh))
                return false;
            if (p < end && *p == ':')
                p++;
            if (p < end && *p >= '0' && *p <= '9' && !num(&p, end, 2, 2, &mm))
                return false;
            if (hh > 23 || mm > 59)
                return false;
            t->has_tz = true;
            t->tz_min = sign * (hh * 60 + mm);
            break;
        }
        case 'p':
            if (end - p < 2)
                return false;
            if (!strncasecmp(p, "AM", 2))
                t->pm = 0;
            else if (!strncasecmp(p, "PM", 2))
                t->pm = 1;
            else
                return false;
            p += 2;
            break;
        case 'b':
        case 'h':
        case 'B': {
            int found = 0;
            for (int i = 0; i < 12 && !found; i++) {
                size_t ml = *f == 'B' ? strlen(months[i]) : 3;
                if ((size_t)(end - p) >= ml && !strncasecmp(p, months[i], ml)) {
                    t->mo = i + 1;
                    p += ml;
                    found = 1;
                }
            }
            if (!found)
                return false;
            t->has_mo = true;
            break;
        }
        case '%':
            if (p == end || *p != '%')
                return false;
            p++;
            break;
        default:
            return false;
        }
    }
    if (p != end)
        return false;
    if (t->h12) {
        if (t->pm < 0)
            return false;
        t->h = t->h12 % 12 + (t->pm ? 12 : 0);
    } else if (t->pm >= 0) {
        return false; /* %p without %I */
    }
    return true;
}

bool tsfield_pattern_ok(const char *pat)
{
    bool any = false;
    for (const char *f = pat; *f; f++) {
        if (*f != '%')
            continue;
        if (!*++f || !strchr("YymdeHIMSfzpbhB%", *f))
            return false;
        if (*f != '%')
            any = true;
    }
    return any;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool date_ok(const struct dt *t)
{
    return t->has_y && t->has_mo && t->has_d && t->mo >= 1 && t->mo <= 12 && t->d >= 1 &&
           t->d <= days_in_month(t->y, t->mo);
}

static bool time_ok(const struct dt *t)
{
    return t->has_h && t->has_mi && t->h <= 23 && t->mi <= 59 && t->s <= 59;
}

static const char *iso_date[] = {"%Y-%m-%d", NULL};
static const char *iso_time[] = {"%H:%M:%S", "%H:%M:%S%z", "%H:%M:%S.%f", "%H:%M:%S.%f%z", NULL};
static const char *iso_datetime[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z",
                                     "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f%z", NULL};
/* "any": the ISO forms first, then common unambiguous-enough forms.  Slashed
 * dates are read day first (European order); a profile that receives
 * US-style dates says so with an explicit pattern. */
static const char *any_date[] = {"%d.%m.%Y",  "%Y/%m/%d",  "%d/%m/%Y", "%d %b %Y", "%d %B %Y",
                                 "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", NULL};
static const char *any_time[] = {"%H:%M", "%I:%M %p", "%I:%M:%S %p", "%I:%M%p", "%H.%M", NULL};
static const char *any_datetime[] = {"%Y-%m-%d %H:%M:%S",
                                     "%Y-%m-%d %H:%M:%S%z",
                                     "%Y-%m-%d %H:%M:%S.%f",
                                     "%Y-%m-%d %H:%M",
                                     "%Y-%m-%dT%H:%M",
                                     "%Y-%m-%dT%H:%M%z",
                                     "%d.%m.%Y %H:%M:%S",
                                     "%d.%m.%Y %H:%M",
                                     "%d/%m/%Y %H:%M:%S",
                                     "%d/%m/%Y %H:%M",
                                     "%Y/%m/%d %H:%M:%S",
                                     "%Y/%m/%d %H:%M",
                                     NULL};

static bool try_list(const char **list, bool strict, const char *s, size_t len, struct dt *t,
                     bool (*ok)(const struct dt *))
{
    for (size_t i = 0; list[i]; i++)
        if (dt_parse(list[i], s, len, strict, t) && ok(t))
            return true;
    return false;
}

static bool datetime_ok(const struct dt *t)
{
    return date_ok(t) && time_ok(t);
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The common case without the format machinery: an ISO date, YYYY-MM-DD
 * with every width full, is already its own canonical text.  Anything else
 * goes the long way (and gets the same answer there). */
static bool cast_iso_date(const char *s, size_t len, struct ts_cast *o)
{
    struct dt t = {0};
    if (len != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2))
        return false;
    t.y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    t.mo = (s[5] - '0') * 10 + (s[6] - '0');
    t.d = (s[8] - '0') * 10 + (s[9] - '0');
    t.has_y = t.has_mo = t.has_d = true;
    if (!date_ok(&t))
        return false;
    o->kind = TC_TEXT;
    memcpy(o->buf, s, 10);
    o->buf[10] = 0;
    o->s = o->buf;
    o->len = 10;
    o->ord = (double)days_from_civil(t.y, t.mo, t.d);
    return true;
}

static bool cast_temporal(const struct ts_field *f, const char *s, size_t len, struct ts_cast *o)
{
    struct dt t;
    if (f->type == TS_DATE && f->fmt != FMT_PATTERN && cast_iso_date(s, len, o))
        return true;
    bool (*ok)(const struct dt *) = f->type == TS_DATE   ? date_ok
                                    : f->type == TS_TIME ? time_ok
                                                         : datetime_ok;
    const char **iso = f->type == TS_DATE ? iso_date : f->type == TS_TIME ? iso_time : iso_datetime;
    const char **any = f->type == TS_DATE ? any_date : f->type == TS_TIME ? any_time : any_datetime;
    bool good;
    if (f->fmt == FMT_PATTERN)
        good = dt_parse(f->pattern_fmt, s, len, false, &t) && ok(&t);
    else
        good = try_list(iso, true, s, len, &t, ok) ||
               (f->fmt == FMT_ANY && try_list(any, false, s, len, &t, ok));
    if (!good)
        return false;

    o->kind = TC_TEXT;
    int n = 0;
    char frac[12] = "";
    if (t.frac[0])
        snprintf(frac, sizeof frac, ".%s", t.frac);
    double fr = t.frac[0] ? atof(frac) : 0;
    if (f->type == TS_DATE) {
        n = snprintf(o->buf, sizeof o->buf, "%04d-%02d-%02d", t.y, t.mo, t.d);
        o->ord = (double)days_from_civil(t.y, t.mo, t.d);
    } else if (f->type == TS_TIME) {
        int secs = t.h * 3600 + t.mi * 60 + t.s;
        if (t.has_tz) {
            secs = ((secs - t.tz_min * 60) % 86400 + 86400) % 86400;
            n = snprintf(o->buf, sizeof o->buf, "%02d:%02d:%02d%sZ", secs / 3600, secs / 60 % 60,
                         secs % 60, frac);
        } else {
            n = snprintf(o->buf, sizeof o->buf, "%02d:%02d:%02d%s", t.h, t.mi, t.s, frac);
        }
        o->ord = secs + fr;
    } else {
        int64_t secs = days_from_civil(t.y, t.mo, t.d) * 86400 + t.h * 3600 + t.mi * 60 + t.s;
        if (t.has_tz) {
            int y, m, d;
            secs -= (int64_t)t.tz_min * 60;
            int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
            int64_t rem = secs - days * 86400;
            civil_from_days(days, &y, &m, &d);
            n = snprintf(o->buf, sizeof o->buf, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d,
                         (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
        } else {
            n = snprintf(o->buf, sizeof o->buf, "%04d-%02d-%02dT%02d:%02d:%02d%s", t.y, t.mo, t.d,
                         t.h, t.mi, t.s, frac);
        }
        o->ord = (double)secs + fr;
    }
    o->s = o->buf;
    o->len = (size_t)n;
    return true;
}

/* ---- numbers ------------------------------------------------------------ */

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}

/* bareNumber: false lets currency signs, percent signs and the like lead
 * or trail the number; they are dropped. */
static void strip_non_bare(const char **p, const char **end, char decimal)
{
    while (*p < *end && !isdig(**p) && **p != '-' && **p != '+' && **p != decimal)
        (*p)++;
    while (*end > *p && !isdig((*end)[-1]))
        (*end)--;
}

static bool cast_integer(const struct ts_field *f, const char *s, size_t len, int64_t *out)
{
    const char *p = s, *end = s + len;
    bool neg = false;
    uint64_t acc = 0;
    if (!f->bare_number)
        strip_non_bare(&p, &end, 0);
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (p == end || !isdig(*p))
        return false;
    for (; p < end; p++) {
        if (f->group_char && *p == f->group_char && p + 1 < end && isdig(p[1]) && isdig(p[-1]))
            continue;
        if (!isdig(*p))
            return false;
        unsigned dgt = (unsigned)(*p - '0');
        if (acc > (UINT64_MAX - dgt) / 10)
            return false;
        acc = acc * 10 + dgt;
    }
    if (neg ? acc > (uint64_t)INT64_MAX + 1 : acc > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

/*
 * Plain decimals ("-1234.5") without strtod: when the digits, read as an
 * integer m, stay below 2^53 and there are k <= 22 of them after the
 * decimal char, m and 10^k are exact doubles and m / 10^k is one correctly
 * rounded operation, the same double strtod returns (Clinger's fast path).
 * false for anything else, which takes the general path.
 */
static bool fast_decimal(const char *p, const char *end, char decimal, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = false, any = false;
    uint64_t m = 0;
    size_t k = 0;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    for (; p < end && isdig(*p); p++, any = true)
        if ((m = m * 10 + (uint64_t)(*p - '0')) >= (1ULL << 53))
            return false;
    if (p < end && *p == decimal)
        for (p++; p < end && isdig(*p); p++, k++, any = true)
            if ((m = m * 10 + (uint64_t)(*p - '0')) >= (1ULL << 53))
                return false;
    if (p != end || !any || k > 22)
        return false;
    *out = (double)m / p10[k];
    if (neg)
        *out = -*out;
    return true;
}

static bool cast_number(const struct ts_field *f, const char *s, size_t len, double *out)
{
    const char *p = s, *end = s + len;
    char buf[128], *ep;
    size_t n = 0, mant = 0;
    if (!f->bare_number)
        strip_non_bare(&p, &end, f->decimal_char);
    if ((size_t)(end - p) >= sizeof buf - 1)
        return false;
    size_t l = (size_t)(end - p);
    if ((l == 3 && !memcmp(p, "NaN", 3))) {
        *out = NAN;
        return true;
    }
    if ((l == 3 && !memcmp(p, "INF", 3)) || (l == 4 && !memcmp(p, "+INF", 4))) {
        *out = INFINITY;
        return true;
    }
    if (l == 4 && !memcmp(p, "-INF", 4)) {
        *out = -INFINITY;
        return true;
    }
    if (!f->group_char && fast_decimal(p, end, f->decimal_char, out))
        return true;
    if (p < end && (*p == '-' || *p == '+'))
        buf[n++] = *p++;
    for (; p < end && (isdig(*p) || (f->group_char && *p == f->group_char)); p++) {
        if (*p == f->group_char && isdig(*p) == 0) {
            if (!mant || p + 1 == end || !isdig(p[1]))
                return false;
            continue;
        }
        buf[n++] = *p;
        mant++;
    }
    if (p < end && *p == f->decimal_char) {
        buf[n++] = '.';
        p++;
        for (; p < end && isdig(*p); p++) {
            buf[n++] = *p;
            mant++;
        }
    }
    if (!mant)
        return false;
    if (p < end && (*p == 'e' || *p == 'E')) {
        buf[n++] = *p++;
        if (p < end && (*p == '-' || *p == '+'))
            buf[n++] = *p++;
        if (p == end || !isdig(*p))
            return false;
        for (; p < end && isdig(*p); p++)
            buf[n++] = *p;
    }
    if (p != end)
        return false;
    buf[n] = 0;
    *out = strtod(buf, &ep);
    if (*ep)
        return false;
    /* Beyond the range of a double: never infinity or zero instead. */
    if (isinf(*out))
        return false;
    if (*out == 0) {
        for (size_t i = 0; buf[i] && buf[i] != 'e' && buf[i] != 'E'; i++)
            if (buf[i] >= '1' && buf[i] <= '9')
                return false;
    }
    return true;
}

/* ---- the rest ----------------------------------------------------------- */

static bool cast_duration(const char *s, size_t len, double *ord)
{
    const char *p = s, *end = s + len;
    bool in_time = false, any = false;
    double total = 0;
    const char *order = "YMWD", *torder = "HMS";
    size_t at = 0;
    bool neg = p < end && *p == '-'; /* XML Schema: "-P1D" */
    p += neg;
    if (p == end || *p++ != 'P')
        return false;
    while (p < end) {
        if (*p == 'T') {
            if (in_time)
                return false;
            in_time = true;
            at = 0;
            p++;
            if (p == end)
                return false;
            continue;
        }
        const char *ds = p;
        double v;
        v = 0;
        while (p < end && isdig(*p))
            v = v * 10 + (*p++ - '0');
        if (p == ds)
            return false;
        if (p < end && (*p == '.' || *p == ',')) {
            const char *fs = ++p;
            double scale = 0.1;
            while (p < end && isdig(*p)) {
                v += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
            if (p == fs || p == end || *p != 'S' || !in_time)
                return false;
        }
        if (p == end)
            return false;
        const char *ord_s = in_time ? torder : order;
        const char *u = strchr(ord_s + at, *p);
        if (!u || !*p)
            return false;
        at = (size_t)(u - ord_s) + 1;
        static const double dsec[] = {365.2425 * 86400, 30.436875 * 86400, 7 * 86400, 86400};
        static const double tsec[] = {3600, 60, 1};
        total += v * (in_time ? tsec[u - ord_s] : dsec[u - ord_s]);
        any = true;
        p++;
    }
    if (!any || (in_time && s[len - 1] == 'T'))
        return false;
    *ord = neg ? -total : total;
    return true;
}

static bool hexrun(const char **p, int n)
{
    for (int i = 0; i < n; i++, (*p)++) {
        char c = **p;
        if (!(isdig(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static bool string_format_ok(enum ts_format fmt, const char *s, size_t len)
{
    const char *p = s;
    switch (fmt) {
    case FMT_EMAIL: {
        const char *at = memchr(s, '@', len);
        if (!at || at == s || at + 1 == s + len || memchr(at + 1, '@', len - (size_t)(at + 1 - s)))
            return false;
        if (!memchr(at + 1, '.', len - (size_t)(at + 1 - s)) || s[len - 1] == '.')
            return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] <= ' ')
                return false;
        return true;
    }
    case FMT_URI: {
        size_t i = 0;
        if (!len || !((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z'))
            return false;
        while (i < len && s[i] != ':') {
            char c = s[i];
            if (!(isdig(c) || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '+' || c == '-' ||
                  c == '.'))
                return false;
            i++;
        }
        if (i == len || i + 1 == len)
            return false;
        for (; i < len; i++)
            if ((unsigned char)s[i] <= ' ')
                return false;
        return true;
    }
    case FMT_UUID:
        return len == 36 && hexrun(&p, 8) && *p++ == '-' && hexrun(&p, 4) && *p++ == '-' &&
               hexrun(&p, 4) && *p++ == '-' && hexrun(&p, 4) && *p++ == '-' && hexrun(&p, 12);
    case FMT_BINARY: {
        size_t pad = 0;
        if (len % 4)
            return false;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (c == '=') {
                pad++;
                continue;
            }
            if (pad || !(isdig(c) || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '+' || c == '/'))
                return false;
        }
        return pad <= 2;
    }
    default:
        return true;
    }
}

/* object / array: the cell must be that JSON value (strict JSON, no
 * repeated keys); its member count goes to o->i. */
static bool cast_json(enum ts_type t, const char *s, size_t len, struct ts_cast *o)
{
    json_error_t err;
    json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
    bool ok = j && (t == TS_OBJECT ? json_is_object(j) : json_is_array(j));
    if (ok)
        o->i = (int64_t)(t == TS_OBJECT ? json_object_size(j) : json_array_size(j));
    json_decref(j);
    return ok;
}

/* A JSON number ("-12.5e3", no leading "+", no leading zeros) at *p,
 * after optional spaces; advances *p. */
static bool json_number(const char **p, const char *end, double *out)
{
    const char *q, *start;
    char buf[64], *ep;
    while (*p < end && **p == ' ')
        (*p)++;
    q = start = *p;
    if (q < end && *q == '-')
        q++;
    if (q == end || !isdig(*q))
        return false;
    if (*q == '0' && q + 1 < end && isdig(q[1]))
        return false;
    while (q < end && isdig(*q))
        q++;
    if (q < end && *q == '.') {
        if (++q == end || !isdig(*q))
            return false;
        while (q < end && isdig(*q))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q == end || !isdig(*q))
            return false;
        while (q < end && isdig(*q))
            q++;
    }
    if ((size_t)(q - start) >= sizeof buf)
        return false;
    memcpy(buf, start, (size_t)(q - start));
    buf[q - start] = 0;
    *out = strtod(buf, &ep);
    *p = q;
    return *ep == 0 && isfinite(*out);
}

/* The shortest %g text that reads back as d. */
static int shortest(char *buf, size_t size, double d)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n;
}

/*
 * geopoint, in its three forms (the spec's examples):
 *   default  "90, 45" or "90,45"      lon, lat
 *   array    "[90, 45]"               a JSON array of two numbers
 *   object   {"lon": 90, "lat": 45}   a JSON object of exactly lon and lat
 * Longitude within [-180, 180], latitude within [-90, 90].  Stored as
 * "lon,lat" in the shortest exact form.
 */
static bool cast_geopoint(enum ts_format fmt, const char *s, size_t len, struct ts_cast *o)
{
    double lon, lat;
    if (fmt == FMT_GEO_OBJECT) {
        json_error_t err;
        json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err), *a, *b;
        bool ok = j && json_is_object(j) && json_object_size(j) == 2 &&
                  (a = json_object_get(j, "lon")) && (b = json_object_get(j, "lat")) &&
                  json_is_number(a) && json_is_number(b);
        if (ok) {
            lon = json_number_value(a);
            lat = json_number_value(b);
        }
        json_decref(j);
        if (!ok)
            return false;
    } else {
        const char *p = s, *end = s + len;
        if (fmt == FMT_GEO_ARRAY) {
            if (p == end || *p++ != '[')
                return false;
            while (end > p && end[-1] == ' ')
                end--;
            if (end == p || *--end != ']')
                return false;
        }
        if (!json_number(&p, end, &lon))
            return false;
        while (p < end && *p == ' ')
            p++;
        if (p == end || *p++ != ',')
            return false;
        if (!json_number(&p, end, &lat))
            return false;
        while (fmt == FMT_GEO_ARRAY && p < end && *p == ' ')
            p++;
        if (p != end)
            return false;
    }
    if (lon < -180 || lon > 180 || lat < -90 || lat > 90)
        return false;
    int n = shortest(o->buf, sizeof o->buf / 2, lon);
    o->buf[n++] = ',';
    n += shortest(o->buf + n, sizeof o->buf - (size_t)n, lat);
    o->s = o->buf;
    o->len = (size_t)n;
    return true;
}

static bool in_list(char **v, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && !memcmp(v[i], s, len))
            return true;
    return false;
}

static void list_values(char *buf, size_t size, char **v, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", v[i]);
}

static const char *temporal_fmt_text(const struct ts_field *f, char *buf, size_t size)
{
    if (f->fmt == FMT_PATTERN) {
        snprintf(buf, size, "format \"%s\"", f->pattern_fmt);
        return buf;
    }
    const char *iso = f->type == TS_DATE   ? "YYYY-MM-DD"
                      : f->type == TS_TIME ? "hh:mm:ss"
                                           : "YYYY-MM-DDThh:mm:ss, optional Z or +hh:mm";
    snprintf(buf, size, "%s%s", f->fmt == FMT_ANY ? "any format, e.g. " : "format ", iso);
    return buf;
}

int tsfield_cast(const struct ts_field *f, const char *s, size_t len, struct ts_cast *o, char *why,
                 size_t why_len)
{
    char tmp[160];
    memset(o, 0, offsetof(struct ts_cast, buf));
    o->kind = TC_TEXT;
    o->s = s;
    o->len = len;
    switch (f->type) {
    case TS_STRING:
    case TS_ANY:
        if (!string_format_ok(f->fmt, s, len)) {
            static const char *what[] = {[FMT_EMAIL] = "an email address",
                                         [FMT_URI] = "a URI",
                                         [FMT_UUID] = "a UUID",
                                         [FMT_BINARY] = "base64 data"};
            snprintf(why, why_len, "is not %s", what[f->fmt]);
            return -1;
        }
        return 0;
    case TS_INTEGER:
        o->kind = TC_INT;
        if (!cast_integer(f, s, len, &o->i)) {
            if (f->group_char)
                snprintf(why, why_len, "is not an integer (groupChar is \"%c\")", f->group_char);
            else
                snprintf(why, why_len, "is not an integer");
            return -1;
        }
        o->d = (double)o->i;
        return 0;
    case TS_NUMBER:
        o->kind = TC_REAL;
        if (!cast_number(f, s, len, &o->d)) {
            if (f->group_char)
                snprintf(why, why_len,
                         "is not a number (decimalChar is \"%c\", groupChar is \"%c\")",
                         f->decimal_char, f->group_char);
            else
                snprintf(why, why_len, "is not a number (decimalChar is \"%c\")", f->decimal_char);
            return -1;
        }
        return 0;
    case TS_BOOLEAN:
        o->kind = TC_INT;
        if (in_list(f->true_values, f->n_true, s, len)) {
            o->i = 1;
        } else if (in_list(f->false_values, f->n_false, s, len)) {
            o->i = 0;
        } else {
            char t[64], fl[64];
            list_values(t, sizeof t, f->true_values, f->n_true);
            list_values(fl, sizeof fl, f->false_values, f->n_false);
            snprintf(why, why_len, "is not a boolean (true: %s; false: %s)", t, fl);
            return -1;
        }
        o->d = (double)o->i;
        return 0;
    case TS_DATE:
    case TS_TIME:
    case TS_DATETIME:
        if (!cast_temporal(f, s, len, o)) {
            snprintf(why, why_len, "is not a %s (%s)", tsfield_type_name(f->type),
                     temporal_fmt_text(f, tmp, sizeof tmp));
            return -1;
        }
        return 0;
    case TS_YEAR: {
        const char *p = s;
        int y;
        o->kind = TC_INT;
        if (len != 4 || !num(&p, s + len, 4, 4, &y)) {
            snprintf(why, why_len, "is not a year (YYYY)");
            return -1;
        }
        o->i = y;
        o->d = y;
        return 0;
    }
    case TS_YEARMONTH: {
        struct dt t;
        if (!dt_parse("%Y-%m", s, len, true, &t) || t.mo < 1 || t.mo > 12) {
            snprintf(why, why_len, "is not a year and month (YYYY-MM)");
            return -1;
        }
        o->len = (size_t)snprintf(o->buf, sizeof o->buf, "%04d-%02d", t.y, t.mo);
        o->s = o->buf;
        o->ord = t.y * 12.0 + t.mo - 1;
        return 0;
    }
    case TS_DURATION:
        if (!cast_duration(s, len, &o->ord)) {
            snprintf(why, why_len, "is not an ISO 8601 duration (e.g. P1Y2M3DT4H5M6S)");
            return -1;
        }
        return 0;
    case TS_OBJECT:
    case TS_ARRAY:
        if (!cast_json(f->type, s, len, o)) {
            snprintf(why, why_len, "is not a JSON %s", tsfield_type_name(f->type));
            return -1;
        }
        return 0;
    case TS_GEOPOINT:
        if (!cast_geopoint(f->fmt, s, len, o)) {
            snprintf(why, why_len, "is not a geopoint (%s; longitude -180..180, latitude -90..90)",
                     f->fmt == FMT_GEO_ARRAY    ? "format array: [lon, lat]"
                     : f->fmt == FMT_GEO_OBJECT ? "format object: {\"lon\": .., \"lat\": ..}"
                                                : "lon, lat");
            return -1;
        }
        return 0;
    }
    return -1;
}

int tsfield_compare(const struct ts_field *f, const struct ts_cast *a, const struct ts_cast *b)
{
    switch (f->type) {
    case TS_INTEGER:
    case TS_BOOLEAN:
    case TS_YEAR:
        return (a->i > b->i) - (a->i < b->i);
    case TS_NUMBER:
        return (a->d > b->d) - (a->d < b->d);
    case TS_DATE:
    case TS_TIME:
    case TS_DATETIME:
    case TS_YEARMONTH:
    case TS_DURATION:
        return (a->ord > b->ord) - (a->ord < b->ord);
    default: {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->s, b->s, n);
        return c ? c : (a->len > b->len) - (a->len < b->len);
    }
    }
}

size_t tsfield_key(const struct ts_cast *v, char *buf, size_t size, const char **out)
{
    int n;
    switch (v->kind) {
    case TC_INT:
        n = snprintf(buf, size, "%lld", (long long)v->i);
        *out = buf;
        return (size_t)n;
    case TC_REAL:
        n = snprintf(buf, size, "%.17g", v->d);
        *out = buf;
        return (size_t)n;
    default:
        *out = v->s;
        return v->len;
    }
}
