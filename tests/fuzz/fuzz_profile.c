/*
 * fuzz_profile: the profile loader (profile_load, libyaml underneath) on an
 * arbitrary file.  Every problem must come back as a diagnostic, never a
 * crash; a profile that loads must free cleanly.
 */
#include "config/config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wharf_config cfg;
    struct diags d = {0};
    struct profile *p;
    char *path = fuzz_file("profile.yaml", data, size);

    config_defaults(&cfg, fuzz_dir());
    p = profile_load(&cfg, path, &d);
    if (p)
        profile_free(p);
    diag_free(&d);
    config_free(&cfg);
    free(path);
    return 0;
}
