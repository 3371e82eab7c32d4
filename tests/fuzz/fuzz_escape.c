/*
 * fuzz_escape: the escaper for partner bytes (src/util/escape.h) and the
 * one tag-file parser (bag_info_get, src/seal/bag.c).  Whatever the bytes:
 * esc_text and esc_tag yield valid UTF-8 with no control byte (checked
 * against the inspect stage's own UTF-8 validator), esc_tag has no blank
 * at either end, esc_json never fails; the input read as bag-info.txt is
 * parsed without a crash and a value never holds a line break other than
 * a folded one's.
 */
#include "fuzz_common.h"
#include "inspect/encoding.h"
#include "seal/bag.h"
#include "util/escape.h"

static void clean_or_abort(const char *s, bool tag)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
    if (!utf8_valid(s, n))
        abort();
    if (tag && n && (s[0] == ' ' || s[n - 1] == ' '))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *keys[] = {"Payload-Oxum", "Wharf-Previous-Link", "Wharf-Source-Path",
                                 "External-Identifier"};
    char *s = xmalloc(size + 1), *e, out[4096], *path;
    json_t *j;
    memcpy(s, data, size);
    s[size] = 0; /* esc_text stops at a NUL: esc_textn takes it all */

    e = esc_textn(s, size);
    clean_or_abort(e, false);
    free(e);
    e = esc_tag(s);
    clean_or_abort(e, true);
    free(e);
    j = esc_json(s);
    if (!j)
        abort();
    json_decref(j);

    path = fuzz_file("bag-info.txt", data, size);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (bag_info_get(fuzz_dir(), keys[k], out, sizeof out) == 0 && strchr(out, '\r'))
            abort();
    unlink(path);
    free(path);
    free(s);
    return 0;
}
