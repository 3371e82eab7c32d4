/* STUB: replaced by the inspect implementation (issue 4). */
#include "inspect/inspect.h"
#include <stdlib.h>
int inspect_run(const struct profile *p, const char *original, const char *display_name,
                const char *parts_dir, struct inspection *out, struct report *rep, struct werr *e)
{
    (void)p; (void)original; (void)display_name; (void)parts_dir; (void)out; (void)rep;
    werr_set(e, "inspect: not implemented");
    return -1;
}
json_t *inspection_json(const struct inspection *in) { (void)in; return json_object(); }
void inspection_free(struct inspection *in) { (void)in; }
