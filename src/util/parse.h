/*
 * parse: strict parsers for the value types of wharf.yaml and profiles.
 * Each returns 0 on success and -1 when the text is not exactly of the type:
 * no trailing garbage, no silent truncation, no overflow.
 *
 *   duration   "500ms", "10s", "5m", "1h", "2d", "1h30m"
 *   size       "512", "64KB", "10MB", "1GB" (SI, 1000) or "64KiB", "10MiB",
 *              "1GiB" (binary, 1024); a bare number is bytes
 *   clock      "07:00", "23:59"  (minutes after midnight)
 *   days       "mon-fri", "sat,sun", "daily"  (bit 0 = Sunday)
 *   percent    "5%", "0.5%"
 */
#ifndef WHARF_PARSE_H
#define WHARF_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int parse_duration(const char *s, int64_t *ms);
int parse_size(const char *s, uint64_t *bytes);
int parse_uint(const char *s, uint64_t max, uint64_t *out);
int parse_clock(const char *s, int *minutes);
int parse_days(const char *s, uint8_t *mask);
int parse_percent(const char *s, double *pct);
int parse_bool(const char *s, bool *out);
/* A timezone name that exists in the system's tz database (or "UTC"). */
int tz_valid(const char *name);
/* v in decimal at p, without a NUL (at most 20 bytes); the length. */
size_t format_u64(char *p, uint64_t v);
/* Render a duration back ("1h30m", "10s") into buf. */
void format_duration(int64_t ms, char *buf, int size);
/* ISO-8601 UTC with milliseconds: "2026-11-28T13:29:36.123Z". */
void format_time_ms(int64_t ms, char buf[32]);
int64_t now_ms(void);
/* Parse "2026-11-28" or "2026-11-28T13:00:00Z" (UTC) into epoch ms. */
int parse_date(const char *s, int64_t *ms);

#endif
