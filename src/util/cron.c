/*
 * cron: parse 5-field cron expressions and find the next run in a zone.
 *
 * Zones.  glibc only converts between UTC and a named zone through the
 * process-wide TZ variable, so every conversion here happens under one
 * mutex (tz_mu): set TZ to the zone, tzset(), localtime_r() as often as the
 * computation needs, set TZ back, tzset(), unlock.  TZ is never changed
 * anywhere else in wharf, and the rest of wharf formats times in UTC
 * (gmtime_r), so no other thread depends on TZ.  The first use stores the
 * original value; when TZ was unset it is "restored" as ":/etc/localtime",
 * which means the same to glibc, so after the first call setenv only swaps
 * one pointer in environ and never reshapes it under a concurrent getenv.
 * mktime() is not used: local -> UTC is computed by trying the offsets in
 * force around the instant (cron_localmktime), which also tells a repeated
 * local time from one that does not exist.
 *
 * DST rules of cron_next:
 *   - a local time that does not exist (spring forward, e.g. 02:30 on
 *     2026-03-29 in Europe/Berlin) is skipped: no run that day for it;
 *   - a local time that happens twice (fall back, 02:30 on 2026-10-25 in
 *     Berlin) runs once, at its first occurrence.  This holds for wildcard
 *     minutes too: "*\/15 * * * *" does not run during the repeated hour.
 *
 * Nothing here allocates except the saved TZ value; nothing prints.
 */
#include "util/cron.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

#define SEARCH_DAYS (8 * 366) /* covers Feb 29 across a skipped leap year */

/* --- parsing ---------------------------------------------------------------- */

struct field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] = value min + i */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, day_names},
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* One value: a number or, where the field has them, a three-letter name. */
static int parse_value(const struct field *f, const char **s, int *out)
{
    const char *p = *s;
    if (isdigit((unsigned char)*p)) {
        long v = 0;
        while (isdigit((unsigned char)*p) && v < 1000)
            v = v * 10 + (*p++ - '0');
        if (isdigit((unsigned char)*p))
            return -1;
        *out = (int)v;
        *s = p;
        return 0;
    }
    if (f->names && isalpha((unsigned char)p[0]) && isalpha((unsigned char)p[1]) &&
        isalpha((unsigned char)p[2]) && !isalpha((unsigned char)p[3])) {
        for (int i = 0; f->names[i]; i++)
            if (!strncasecmp(p, f->names[i], 3)) {
                *out = f->min + i;
                *s = p + 3;
                return 0;
            }
    }
    return -1;
}

/* Parse one field's text (len bytes) into a bit set. */
static int parse_field(const struct field *f, const char *text, size_t len, uint64_t *bits,
                       char *err, size_t errlen)
{
    char buf[128];
    const char *what = f->names ? (f->max == 7 ? " (0-7 or sun-sat)" : " (1-12 or jan-dec)") : "";
    if (len >= sizeof buf) {
        seterr(err, errlen, "%s field is too long", f->name);
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    *bits = 0;
    for (char *item = buf, *next; item; item = next) {
        int lo, hi, step = 1;
        const char *p = item;
        next = strchr(item, ',');
        if (next)
            *next++ = 0;
        if (!*item) {
            seterr(err, errlen, "%s field \"%s\": empty list item", f->name, buf);
            return -1;
        }
        if (*p == '*') {
            lo = f->min;
            hi = f->max == 7 ? 6 : f->max;
            p++;
        } else {
            if (parse_value(f, &p, &lo) < 0)
                goto bad_value;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(f, &p, &hi) < 0)
                    goto bad_value;
                if (f->max == 7 && hi == 0 && lo > 0)
                    hi = 7; /* "fri-sun" */
                if (hi < lo) {
                    seterr(err, errlen, "%s field \"%s\": range %d-%d runs backwards", f->name,
                           item, lo, hi);
                    return -1;
                }
            } else if (*p == '/') {
                hi = f->max == 7 ? 6 : f->max; /* "5/15" = 5-max/15 */
            }
            if (lo < f->min || hi > f->max || lo > f->max) {
                seterr(err, errlen, "%s field \"%s\": %d is out of range %d-%d%s", f->name, item,
                       lo < f->min || lo > f->max ? lo : hi, f->min, f->max, what);
                return -1;
            }
        }
        if (*p == '/') {
            long v = 0;
            p++;
            if (!isdigit((unsigned char)*p)) {
                seterr(err, errlen, "%s field \"%s\": a step needs a number (e.g. */5)", f->name,
                       item);
                return -1;
            }
            while (isdigit((unsigned char)*p) && v < 1000)
                v = v * 10 + (*p++ - '0');
            if (v < 1 || v > f->max - f->min + 1) {
                seterr(err, errlen, "%s field \"%s\": step %ld is not within 1-%d", f->name, item,
                       v, f->max - f->min + 1);
                return -1;
            }
            step = (int)v;
        }
        if (*p) {
            seterr(err, errlen, "%s field \"%s\": unexpected \"%s\"", f->name, item, p);
            return -1;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << (f->max == 7 && v == 7 ? 0 : v);
        continue;
    bad_value:
        seterr(err, errlen, "%s field \"%s\": \"%.*s\" is not a valid value%s", f->name, item,
               (int)strcspn(p, "-/,"), p, what);
        return -1;
    }
    return 0;
}

static const struct {
    const char *name, *expr;
} macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
              {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
              {"@hourly", "0 * * * *"}};

int cron_parse(const char *expr, struct cron *c, char *err, size_t errlen)
{
    const char *start[6], *s;
    size_t len[6], n = 0;
    uint64_t bits[5];

    if (!expr) {
        seterr(err, errlen, "empty cron expression");
        return -1;
    }
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        size_t l = strcspn(expr, " \t");
        for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
            if (strlen(macros[i].name) == l && !strncasecmp(expr, macros[i].name, l) &&
                !expr[l + strspn(expr + l, " \t")])
                return cron_parse(macros[i].expr, c, err, errlen);
        seterr(err, errlen,
               "\"%s\" is not a known macro (@hourly, @daily, @weekly, @monthly, "
               "@yearly)",
               expr);
        return -1;
    }
    for (s = expr; *s && n < 6;) {
        start[n] = s;
        len[n] = strcspn(s, " \t");
        s += len[n];
        n++;
        while (isspace((unsigned char)*s))
            s++;
    }
    if (n != 5) {
        seterr(err, errlen,
               "has %s%zu field%s, needs 5: minute hour day-of-month month day-of-week",
               n > 5 ? "more than " : "", n == 6 ? (size_t)5 : n, n == 1 ? "" : "s");
        return -1;
    }
    for (size_t i = 0; i < 5; i++)
        if (parse_field(&fields[i], start[i], len[i], &bits[i], err, errlen) < 0)
            return -1;
    memset(c, 0, sizeof *c);
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->month = (uint16_t)bits[3];
    c->dow = (uint8_t)bits[4];
    c->dom_star = *start[2] == '*';
    c->dow_star = *start[4] == '*';
    return 0;
}

/* --- calendar arithmetic (proleptic Gregorian, no libc) --------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* --- zones ------------------------------------------------------------------ */

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;
static char *tz_orig;

static void zone_enter(const char *tz)
{
    pthread_mutex_lock(&tz_mu);
    if (!tz_orig) {
        const char *o = getenv("TZ");
        tz_orig = xstrdup(o ? o : ":/etc/localtime");
    }
    setenv("TZ", tz && *tz ? tz : tz_orig, 1);
    tzset();
}

static void zone_leave(void)
{
    setenv("TZ", tz_orig, 1);
    tzset();
    pthread_mutex_unlock(&tz_mu);
}

static long gmtoff_at(int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

/* Under tz_mu: local y-m-d h:mi -> epoch seconds; see cron_localmktime. */
static int local_to_utc(int y, int mon, int d, int h, int mi, int64_t *out)
{
    int64_t guess = days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60;
    long offs[3] = {gmtoff_at(guess - 108000), gmtoff_at(guess), gmtoff_at(guess + 108000)};
    int64_t best = INT64_MAX, lo, hi;
    long before = offs[0], after = offs[2];

    for (int i = 0; i < 3; i++) {
        int64_t u = guess - offs[i];
        if (gmtoff_at(u) == offs[i] && u < best)
            best = u;
    }
    if (best != INT64_MAX) {
        *out = best;
        return 0;
    }
    /* In a gap: the transition lies in (guess - after, guess - before]. */
    lo = guess - after;
    hi = guess - before;
    if (hi <= lo) { /* not expected; be safe */
        *out = guess - after;
        return 1;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (gmtoff_at(mid) == after)
            hi = mid;
        else
            lo = mid;
    }
    *out = hi;
    return 1;
}

void cron_localtime(const char *timezone, int64_t ms, struct tm *out)
{
    time_t t = (time_t)floor_div(ms, 1000);
    zone_enter(timezone);
    localtime_r(&t, out);
    zone_leave();
}

int cron_localmktime(const char *timezone, int y, int mon, int d, int h, int mi, int64_t *ms)
{
    int64_t s;
    int r;
    zone_enter(timezone);
    r = local_to_utc(y, mon, d, h, mi, &s);
    zone_leave();
    *ms = s * 1000;
    return r;
}

/* --- next run ---------------------------------------------------------------- */

static bool day_matches(const struct cron *c, int64_t days, int mon, int d)
{
    int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    bool dom = c->dom >> d & 1, dow = c->dow >> wday & 1;
    if (!(c->month >> mon & 1))
        return false;
    if (!c->dom_star && !c->dow_star)
        return dom || dow;
    return dom && dow;
}

/* Walk the local calendar from the minute holding after_ms; the first
 * matching local time whose (first) instant is after after_ms wins. */
int cron_next(const struct cron *c, const char *timezone, int64_t after_ms, int64_t *next_ms)
{
    time_t t = (time_t)floor_div(after_ms, 1000);
    struct tm tm;
    int y, mon, d, h0, m0, r = -1;

    zone_enter(timezone);
    localtime_r(&t, &tm);
    y = tm.tm_year + 1900;
    mon = tm.tm_mon + 1;
    d = tm.tm_mday;
    h0 = tm.tm_hour;
    m0 = tm.tm_min;
    for (int i = 0; i < SEARCH_DAYS && r < 0; i++) {
        if (day_matches(c, days_from_civil(y, mon, d), mon, d))
            for (int h = i ? 0 : h0; h < 24 && r < 0; h++) {
                if (!(c->hour >> h & 1))
                    continue;
                for (int m = i || h != h0 ? 0 : m0; m < 60; m++) {
                    int64_t s;
                    if (!(c->minute >> m & 1))
                        continue;
                    if (local_to_utc(y, mon, d, h, m, &s) != 0)
                        continue; /* does not exist today (spring forward) */
                    if (s * 1000 > after_ms) {
                        *next_ms = s * 1000;
                        r = 0;
                        break;
                    }
                }
            }
        if (++d > days_in_month(y, mon)) {
            d = 1;
            if (++mon > 12) {
                mon = 1;
                y++;
            }
        }
    }
    zone_leave();
    return r;
}
