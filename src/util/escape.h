/*
 * escape: partner bytes (file names, archive members, header values,
 * remote listings, error text quoting them) made safe for the medium that
 * shows them, so that no name can move a cursor, retitle a terminal, forge
 * a line in a listing or a report, or vanish from JSON.
 *
 * esc_text: one line of printable text, for terminals and text files.
 *   \           -> \\        (so every escape below is unambiguous)
 *   C0, DEL     -> \x1b      (NUL..0x1f, 0x7f: newline, ESC, BEL, ...)
 *   invalid UTF-8 bytes -> \xff   (each byte not part of a well-formed
 *                              sequence: stray continuation, overlong,
 *                              surrogate, past U+10FFFF, truncated)
 *   C1 controls U+0080..U+009F, bidirectional controls (U+061C, U+200E,
 *   U+200F, U+202A..U+202E, U+2066..U+2069) and the line/paragraph
 *   separators U+2028, U+2029 -> \u202e
 *   everything else (printable ASCII, well-formed UTF-8) is kept.
 * The result is valid UTF-8 with no control character.
 *
 * esc_tag: a bag-info.txt value (RFC 8493 2.2.2): esc_text, and leading or
 * trailing blanks as \x20, so the value reads back exactly after the
 * "Label: " separator and never folds or breaks a line.
 *
 * esc_json: the one way to make a JSON string from partner bytes: the
 * string as it is when it is valid UTF-8 (JSON's own escaping then applies),
 * else its esc_text form -- jansson refuses invalid UTF-8, and a name must
 * never drop out of `--json` output or a log line.
 *
 * Returned strings are the caller's to free; allocation failure aborts.
 */
#ifndef WHARF_ESCAPE_H
#define WHARF_ESCAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

char *esc_text(const char *s);
char *esc_textn(const char *s, size_t n);
char *esc_tag(const char *s);
/* A new JSON string (JSON null when s is NULL). */
json_t *esc_json(const char *s);

#endif
