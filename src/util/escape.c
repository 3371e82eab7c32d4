/*
 * escape: partner bytes made safe for a terminal, a text file, a tag file
 * or JSON (the rules are in escape.h).  One pass over the input; the
 * output is at most 6 bytes per input byte.
 */
#include "util/escape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), its code
 * point in *cp; 0 when the bytes there are not one (RFC 3629 table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len, i;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool well_formed(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i, &cp);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* Code points shown as \uXXXX although they are well-formed. */
static bool hidden_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

static char *escape(const char *s, size_t n, bool tag)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = xmalloc(n * 6 + 1), *o = out;
    size_t i = 0, lead = 0, trail = n;
    if (tag) {
        while (lead < n && p[lead] == ' ')
            lead++;
        while (trail > lead && p[trail - 1] == ' ')
            trail--;
    }
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_seq(p + i, n - i, &cp);
        if (!k) {
            o += sprintf(o, "\\x%02x", p[i]);
            i++;
            continue;
        }
        if (cp == '\\') {
            *o++ = '\\';
            *o++ = '\\';
        } else if (cp < 0x20 || cp == 0x7F || (tag && cp == ' ' && (i < lead || i >= trail))) {
            o += sprintf(o, "\\x%02x", (unsigned)cp);
        } else if (hidden_cp(cp)) {
            o += sprintf(o, "\\u%04x", (unsigned)cp);
        } else {
            memcpy(o, p + i, k);
            o += k;
        }
        i += k;
    }
    *o = 0;
    return out;
}

char *esc_textn(const char *s, size_t n)
{
    return escape(s ? s : "", s ? n : 0, false);
}

char *esc_text(const char *s)
{
    return esc_textn(s, s ? strlen(s) : 0);
}

char *esc_tag(const char *s)
{
    return escape(s ? s : "", s ? strlen(s) : 0, true);
}

json_t *esc_json(const char *s)
{
    json_t *j;
    char *e;
    if (!s)
        return json_null();
    if (well_formed(s, strlen(s)) && (j = json_string(s)))
        return j;
    e = esc_text(s);
    j = json_string(e);
    free(e);
    return j;
}
