/*
 * fuzz_common: what every libFuzzer target of tests/fuzz/ shares -- a
 * private temp dir made once per process, and writing the input to a file
 * there (the stages under test read files, as wharf does).
 */
#ifndef WHARF_FUZZ_COMMON_H
#define WHARF_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/xmalloc.h"

static const char *fuzz_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/wharf-fuzz.XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Writes data to DIR/name; returns the malloc'd path. */
static char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    char *path = xasprintf("%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    return path;
}

#endif
