/*
 * html: escaping for HTML and URLs, and a growing buffer to build pages in
 * (see html.h).
 */
#include "util/html.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

void hbuf_put(struct hbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2 + 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void hbuf_puts(struct hbuf *b, const char *s)
{
    hbuf_put(b, s, strlen(s));
}

void hbuf_printf(struct hbuf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        hbuf_put(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    hbuf_put(b, big, (size_t)n);
    free(big);
}

/* Length of a valid UTF-8 sequence at s (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
            return 0;
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

static void escape(struct hbuf *b, const char *s, bool keep_newlines)
{
    const unsigned char *p = (const unsigned char *)s;
    while (p && *p) {
        size_t k;
        switch (*p) {
        case '&':
            hbuf_puts(b, "&amp;");
            p++;
            continue;
        case '<':
            hbuf_puts(b, "&lt;");
            p++;
            continue;
        case '>':
            hbuf_puts(b, "&gt;");
            p++;
            continue;
        case '"':
            hbuf_puts(b, "&quot;");
            p++;
            continue;
        case '\'':
            hbuf_puts(b, "&#39;");
            p++;
            continue;
        default:
            break;
        }
        if (keep_newlines && *p == '\n') {
            hbuf_put(b, "\n", 1);
            p++;
            continue;
        }
        if (*p < 0x20 || *p == 0x7f || !(k = utf8_len(p))) {
            hbuf_puts(b, "&#xFFFD;");
            p++;
            continue;
        }
        /* C1 controls (U+0080..U+009F) too */
        if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
            hbuf_puts(b, "&#xFFFD;");
            p += 2;
            continue;
        }
        hbuf_put(b, (const char *)p, k);
        p += k;
    }
}

void html_escape(struct hbuf *b, const char *s)
{
    escape(b, s, false);
}

void html_escape_lines(struct hbuf *b, const char *s)
{
    escape(b, s, true);
}

void url_escape(struct hbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            hbuf_put(b, (const char *)p, 1);
        } else {
            char t[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            hbuf_put(b, t, 3);
        }
    }
}
