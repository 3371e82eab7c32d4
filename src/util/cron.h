/*
 * cron: 5-field cron expressions and wall-clock arithmetic in IANA zones.
 *
 *   minute hour day-of-month month day-of-week
 *   "*\/5 6-20 * * mon-fri", "0 7 1,15 jan-jun *", "30 2 * * 7"
 *
 * Lists (a,b), ranges (a-b), steps (*\/n, a-b/n, a/n = a-max/n), names
 * (jan-dec, sun-sat, case-insensitive), 7 = Sunday, and the macros @hourly,
 * @daily (@midnight), @weekly, @monthly, @yearly (@annually).  When both
 * day-of-month and day-of-week are restricted (neither starts with '*') a
 * day matches when either matches, as in Vixie cron.
 *
 * cron_next walks the zone's local calendar; see cron.c for the DST rules.
 * The cron_local* helpers convert between epoch ms and local time in a
 * named zone (NULL or "" = the process's own zone) without touching TZ
 * outside one mutex.
 */
#ifndef WHARF_CRON_H
#define WHARF_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cron {
    uint64_t minute; /* bit n = minute n, 0-59 */
    uint32_t hour;   /* 0-23 */
    uint32_t dom;    /* 1-31 */
    uint16_t month;  /* 1-12 */
    uint8_t dow;     /* 0-6, 0 = Sunday */
    bool dom_star, dow_star;
};

/* 0, or -1 with err naming the field: `day-of-week field "mon-xyz": "xyz"
 * is not a day (0-7 or sun-sat)`. */
int cron_parse(const char *expr, struct cron *c, char *err, size_t errlen);

/* The first run strictly after after_ms in timezone (NULL: local zone).
 * 0, or -1 when nothing matches within eight years ("0 0 30 2 *"). */
int cron_next(const struct cron *c, const char *timezone, int64_t after_ms, int64_t *next_ms);

/* Local broken-down time of ms in timezone (tm_gmtoff and tm_wday set). */
void cron_localtime(const char *timezone, int64_t ms, struct tm *out);

/* The instant of local y-m-d h:mi in timezone.  For a repeated local time
 * (fall back) the first occurrence; for one that does not exist (spring
 * forward) returns 1 and the first instant after the gap; else 0. */
int cron_localmktime(const char *timezone, int y, int mon, int d, int h, int mi, int64_t *ms);

#endif
