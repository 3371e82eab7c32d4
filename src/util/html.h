/*
 * html: text for an HTML page or attribute.  Partner strings (file names,
 * archive members, values, reasons) are hostile: every one shown goes
 * through html_escape.  & < > " ' become entities; control characters
 * (ANSI escapes, newlines in names) become U+FFFD's entity so they can
 * neither break the layout nor hide text; invalid UTF-8 bytes likewise.
 */
#ifndef WHARF_HTML_H
#define WHARF_HTML_H

#include <stddef.h>

struct hbuf {
    char *s;
    size_t n, cap;
};

void hbuf_put(struct hbuf *b, const char *s, size_t n);
void hbuf_puts(struct hbuf *b, const char *s);
void hbuf_printf(struct hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for HTML text and double- or single-quoted attributes;
 * NULL appends nothing. */
void html_escape(struct hbuf *b, const char *s);
/* The same, keeping newlines (for <pre> blocks of text wharf made, such as
 * indented JSON). */
void html_escape_lines(struct hbuf *b, const char *s);
/* Appends s percent-encoded for a URL query value or path segment. */
void url_escape(struct hbuf *b, const char *s);

#endif
