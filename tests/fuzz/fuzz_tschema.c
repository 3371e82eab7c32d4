/*
 * fuzz_tschema: the Frictionless Table Schema compiler (tschema_compile).
 * The first byte chooses how the schema arrives: a JSON file, a YAML file,
 * or inline `fields:` parsed from the profile's YAML.
 */
#include "config/config.h"
#include "config/node.h"
#include "fuzz_common.h"
#include "validate/tableschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wharf_config cfg;
    struct diags d = {0};
    struct profile *p = xcalloc(1, sizeof *p);
    struct tschema *s;
    uint8_t how = size ? data[0] % 3 : 0;
    char *path = NULL;

    if (size) {
        data++;
        size--;
    }
    config_defaults(&cfg, fuzz_dir());
    free(cfg.schemas_dir);
    cfg.schemas_dir = xstrdup(fuzz_dir());
    profile_defaults(p);
    p->name = xstrdup("fuzz");
    p->file = xstrdup("profiles/fuzz.yaml");
    if (how == 2) {
        p->csv.inline_fields = node_parse("inline", (const char *)data, size, &d);
    } else {
        const char *name = how ? "s.yaml" : "s.json";
        path = fuzz_file(name, data, size);
        p->csv.schema = xstrdup(name);
    }
    s = tschema_compile(&cfg, p, &d);
    if (s) {
        (void)tschema_columns(s);
        tschema_free(s);
    }
    diag_free(&d);
    profile_free(p);
    config_free(&cfg);
    free(path);
    return 0;
}
