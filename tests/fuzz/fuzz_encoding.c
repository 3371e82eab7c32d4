/*
 * fuzz_encoding: the encoding detector and normaliser (src/inspect/
 * encoding.h).  The input is scanned in chunks of varying size (the UTF-8
 * state machine must agree with the one-shot validator), then
 * encoding_normalise decides and writes the UTF-8 form.
 */
#include "fuzz_common.h"
#include "inspect/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *declared[] = {"auto",         "auto",   "utf-8",
                                     "windows-1252", "utf-16", "iso-8859-15"};
    struct enc_scan s;
    struct enc_result res;
    struct report rep;
    struct werr e;
    char hex[SHA256_HEX_LEN];
    char *raw, *out;
    size_t off = 0, step = size ? (data[0] % 7) + 1 : 1;

    static const char *const all[] = {
        "UTF-8",      "UTF-16",       "UTF-32",     "WINDOWS-1252", "ISO-8859-1", "ISO-8859-15",
        "CP850",      "CP437",        "MACINTOSH",  "WINDOWS-1250", "ISO-8859-2", "WINDOWS-1251",
        "ISO-8859-5", "KOI8-R",       "KOI8-U",     "WINDOWS-1253", "ISO-8859-7", "WINDOWS-1254",
        "ISO-8859-9", "WINDOWS-1257", "ISO-8859-13"};

    raw = fuzz_file("raw", data, size);
    out = xasprintf("%s/utf8", fuzz_dir());
    unlink(out);
    enc_scan_init(&s);
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        enc_scan_update(&s, data + off, n);
        off += n;
        step = step * 3 % 4096 + 1;
    }
    enc_scan_final(&s, hex);
    if (s.utf8_ok != utf8_valid(data, size))
        abort(); /* chunked and one-shot validation disagree */
    memset(&res, 0, sizeof res);
    report_init(&rep, 0);
    /* every charset detection may choose among, or the default list */
    if (encoding_normalise_among(declared[size ? data[size - 1] % 6 : 0],
                                 size && data[0] & 8 ? all : NULL,
                                 size && data[0] & 8 ? sizeof all / sizeof all[0] : 0, "raw", raw,
                                 out, &s, &res, &rep, &e) >= 0)
        enc_result_free(&res);
    report_free(&rep);
    enc_scan_free(&s);
    unlink(out);
    free(raw);
    free(out);
    return 0;
}
