/*
 * charset: whether iconv knows a charset name (for `encoding:` checks).
 */
#ifndef WHARF_CHARSET_H
#define WHARF_CHARSET_H

int charset_known(const char *name);

#endif
