/*
 * fuzz_csv: the streaming CSV tokenizer (src/validate/csv.h) on arbitrary
 * bytes.  The first byte picks the dialect and small limits, so the
 * line-too-long and field-too-long paths are reached; every field must lie
 * inside the record and obey its own length.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "fuzz_common.h"
#include "validate/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = {',', ';', '\t', '|'};
    static const char quotes[] = {'"', '\''};
    struct csv_record rec;
    struct werr e;
    struct csv_reader *r;
    uint8_t sel = size ? data[0] : 0;
    int fd, rc;

    if (size) {
        data++;
        size--;
    }
    fd = memfd_create("fuzz_csv", 0);
    if (fd < 0 || write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
        abort();
    r = csv_open_fd(fd, delims[sel & 3], quotes[(sel >> 2) & 1], (sel & 0x10) ? 64 : 0,
                    (sel & 0x20) ? 16 : 0);
    if (!r)
        abort();
    while ((rc = csv_next(r, &rec, &e)) == 1) {
        for (size_t i = 0; i < rec.n; i++) {
            volatile char sink = 0;
            for (size_t k = 0; k < rec.f[i].len; k++)
                sink ^= rec.f[i].p[k]; /* ASan checks every byte is readable */
            (void)csv_utf8_valid(rec.f[i].p, rec.f[i].len);
        }
        (void)csv_error_code(rec.err);
        (void)csv_error_text(rec.err);
    }
    csv_close(r);
    close(fd);
    return 0;
}
