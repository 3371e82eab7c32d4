/*
 * charset: whether iconv knows a charset name (for `encoding:` checks), and
 * the charsets `encoding: { auto: [...] }` may choose among.
 */
#ifndef WHARF_CHARSET_H
#define WHARF_CHARSET_H

#include <stddef.h>

int charset_known(const char *name);

/*
 * The canonical (iconv) name of a charset that automatic detection can
 * choose: the Unicode families "UTF-8", "UTF-16", "UTF-32" (told by strict
 * validation, byte-order marks and NUL patterns) and single-byte,
 * ASCII-compatible legacy charsets ("WINDOWS-1252", "ISO-8859-15", "CP850",
 * ...).  Aliases are accepted (latin1, cp1252, utf8, ...; case, '-', '_'
 * and spaces do not matter).  NULL for anything else: multi-byte legacy
 * charsets (Shift_JIS, GB18030, ...) cannot be told apart by the rules
 * detection uses and must be pinned.
 */
const char *charset_auto_name(const char *name);
/* Every canonical name charset_auto_name returns, for messages: "UTF-8, ...". */
void charset_auto_list(char *out, size_t outsz);

#endif
