/*
 * parse: strict value parsers (see parse.h for the grammar of each).
 */
#include "util/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    int parts = 0;
    if (!s || !*s)
        return -1;
    while (*s) {
        int64_t v = 0, unit;
        if (!isdigit((unsigned char)*s))
            return -1;
        while (isdigit((unsigned char)*s)) {
            if (v > 1000000000LL)
                return -1;
            v = v * 10 + (*s++ - '0');
        }
        if (!strncmp(s, "ms", 2)) {
            unit = 1;
            s += 2;
        } else if (*s == 's') {
            unit = 1000;
            s++;
        } else if (*s == 'm') {
            unit = 60000;
            s++;
        } else if (*s == 'h') {
            unit = 3600000;
            s++;
        } else if (*s == 'd') {
            unit = 86400000;
            s++;
        } else {
            return -1;
        }
        total += v * unit;
        parts++;
    }
    *ms = total;
    return parts ? 0 : -1;
}

int parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *sfx;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000ULL},
        {"MB", 1000000ULL},
        {"GB", 1000000000ULL},
        {"TB", 1000000000000ULL},
        {"KiB", 1ULL << 10},
        {"MiB", 1ULL << 20},
        {"GiB", 1ULL << 30},
        {"TiB", 1ULL << 40},
    };
    char num[32];
    const char *p = s;
    size_t n, i;
    uint64_t v;
    if (!s)
        return -1;
    while (isdigit((unsigned char)*p))
        p++;
    n = (size_t)(p - s);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = 0;
    if (parse_uint(num, UINT64_MAX, &v) < 0)
        return -1;
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcmp(p, units[i].sfx)) {
            if (v > UINT64_MAX / units[i].mul)
                return -1;
            *bytes = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int parse_clock(const char *s, int *minutes)
{
    if (!s || strlen(s) != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *minutes = h * 60 + m;
    return 0;
}

static int day_index(const char *s, size_t n)
{
    static const char *names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    int i;
    if (n != 3)
        return -1;
    for (i = 0; i < 7; i++)
        if (!strncasecmp(s, names[i], 3))
            return i;
    return -1;
}

int parse_days(const char *s, uint8_t *mask)
{
    uint8_t m = 0;
    if (!s || !*s)
        return -1;
    if (!strcmp(s, "daily") || !strcmp(s, "*")) {
        *mask = 0x7f;
        return 0;
    }
    while (*s) {
        const char *comma = strchr(s, ','), *end = comma ? comma : s + strlen(s);
        const char *dash = memchr(s, '-', (size_t)(end - s));
        int a, b;
        if (dash) {
            a = day_index(s, (size_t)(dash - s));
            b = day_index(dash + 1, (size_t)(end - dash - 1));
        } else {
            a = b = day_index(s, (size_t)(end - s));
        }
        if (a < 0 || b < 0)
            return -1;
        for (int d = a;; d = (d + 1) % 7) {
            m |= (uint8_t)(1 << d);
            if (d == b)
                break;
        }
        if (!comma)
            break;
        s = comma + 1;
        if (!*s)
            return -1;
    }
    *mask = m;
    return 0;
}

int parse_percent(const char *s, double *pct)
{
    char *end;
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || s[n - 1] != '%' || !isdigit((unsigned char)s[0]))
        return -1;
    double v = strtod(s, &end);
    if (end != s + n - 1 || v < 0 || v > 100)
        return -1;
    *pct = v;
    return 0;
}

int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

int tz_valid(const char *name)
{
    char path[512];
    struct stat st;
    const char *p;
    if (!name || !*name || name[0] == '/' || strstr(name, ".."))
        return 0;
    if (!strcmp(name, "UTC"))
        return 1;
    for (p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
            return 0;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

size_t format_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

void format_duration(int64_t ms, char *buf, int size)
{
    if (ms % 1000)
        snprintf(buf, (size_t)size, "%lldms", (long long)ms);
    else if (ms % 60000)
        snprintf(buf, (size_t)size, "%llds", (long long)(ms / 1000));
    else if (ms % 3600000)
        snprintf(buf, (size_t)size, "%lldm", (long long)(ms / 60000));
    else
        snprintf(buf, (size_t)size, "%lldh", (long long)(ms / 3600000));
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void format_time_ms(int64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03dZ", (int)((ms % 1000 + 1000) % 1000));
}

int parse_date(const char *s, int64_t *ms)
{
    struct tm tm;
    const char *end;
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d", &tm);
    if (!end)
        return -1;
    if (*end == 'T' || *end == ' ') {
        end = strptime(end + 1, "%H:%M:%S", &tm);
        if (!end)
            return -1;
        if (*end == 'Z')
            end++;
    }
    if (*end)
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}
