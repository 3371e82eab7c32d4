/*
 * charset: asks iconv whether it can convert name -> UTF-8, and knows the
 * charsets automatic detection may choose among (with their aliases).
 */
#include "util/charset.h"

#include <ctype.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>

int charset_known(const char *name)
{
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return 0;
    iconv_close(cd);
    return 1;
}

/* canonical name, then aliases; compared without case, '-', '_', ' ' */
static const char *const auto_charsets[][6] = {
    {"UTF-8", "UTF8"},
    {"UTF-16", "UTF-16LE", "UTF-16BE", "UCS-2"},
    {"UTF-32", "UTF-32LE", "UTF-32BE", "UCS-4"},
    {"WINDOWS-1252", "CP1252", "WIN-1252", "MS-ANSI"},
    {"ISO-8859-1", "LATIN1", "L1", "ISO8859-1", "ISO_8859-1"},
    {"ISO-8859-15", "LATIN9", "LATIN-9", "L9", "ISO8859-15"},
    {"CP850", "IBM850", "850"},
    {"CP437", "IBM437", "437"},
    {"MACINTOSH", "MAC", "MACROMAN", "MAC-ROMAN"},
    {"WINDOWS-1250", "CP1250", "WIN-1250"},
    {"ISO-8859-2", "LATIN2", "L2"},
    {"WINDOWS-1251", "CP1251", "WIN-1251"},
    {"ISO-8859-5", "CYRILLIC"},
    {"KOI8-R"},
    {"KOI8-U"},
    {"WINDOWS-1253", "CP1253", "WIN-1253"},
    {"ISO-8859-7", "GREEK"},
    {"WINDOWS-1254", "CP1254", "WIN-1254"},
    {"ISO-8859-9", "LATIN5", "L5"},
    {"WINDOWS-1257", "CP1257", "WIN-1257"},
    {"ISO-8859-13", "LATIN7", "L7"},
};

static void squash(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    for (; *in && o + 1 < outsz; in++)
        if (*in != '-' && *in != '_' && *in != ' ')
            out[o++] = (char)toupper((unsigned char)*in);
    out[o] = 0;
}

const char *charset_auto_name(const char *name)
{
    char want[40], have[40];
    if (!name || strlen(name) >= sizeof want)
        return NULL;
    squash(name, want, sizeof want);
    for (size_t i = 0; i < sizeof auto_charsets / sizeof auto_charsets[0]; i++)
        for (size_t j = 0; j < 6 && auto_charsets[i][j]; j++) {
            squash(auto_charsets[i][j], have, sizeof have);
            if (!strcmp(want, have))
                return auto_charsets[i][0];
        }
    return NULL;
}

void charset_auto_list(char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof auto_charsets / sizeof auto_charsets[0] && o < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%s", i ? ", " : "", auto_charsets[i][0]);
}
