/*
 * fuzz_unpack: the inspect stage (inspect_run: libarchive unpacking under
 * wharf's limits, encoding, format and dialect sniffing) on an arbitrary
 * file, with small limits so the bomb and entry-count paths are reached.
 * Parts must stay inside the parts dir (a plain file may be its own part).
 */
#include "fuzz_common.h"
#include "inspect/inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"input.csv", "input.zip",    "input.tar.gz",
                                  "input.xml", "input.csv.gz", "input"};
    struct profile *p = xcalloc(1, sizeof *p);
    struct inspection in;
    struct report rep;
    struct werr e;
    char *orig = fuzz_file("original", data, size);
    char *parts = xasprintf("%s/parts", fuzz_dir());

    rmtree(parts, &e);
    profile_defaults(p);
    p->name = xstrdup("fuzz");
    p->file = xstrdup("fuzz");
    p->limits.max_bytes = 4 << 20;
    p->limits.max_entries = 64;
    p->limits.max_ratio = 50;
    if (size && data[0] == 'P')
        p->archive_parts_independent = true;
    memset(&in, 0, sizeof in);
    report_init(&rep, 0);
    if (inspect_run(p, NULL, orig, NULL, names[size % 6], parts, &in, &rep, &e) >= 0) {
        for (size_t i = 0; i < in.n; i++)
            if (in.parts[i].raw_path && strcmp(in.parts[i].raw_path, orig) != 0 &&
                strncmp(in.parts[i].raw_path, parts, strlen(parts)) != 0)
                abort(); /* a part escaped the parts dir */
        json_decref(inspection_json(&in));
    }
    inspection_free(&in);
    report_free(&rep);
    rmtree(parts, &e);
    profile_free(p);
    free(orig);
    free(parts);
    return 0;
}
