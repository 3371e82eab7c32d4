/*
 * charset: asks iconv whether it can convert name -> UTF-8.
 */
#include "util/charset.h"

#include <iconv.h>

int charset_known(const char *name)
{
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return 0;
    iconv_close(cd);
    return 1;
}
