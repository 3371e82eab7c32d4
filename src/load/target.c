/*
 * target: picks the backend named by the profile's target.type.
 */
#include "load/target.h"

#include <string.h>

int target_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e)
{
    memset(t, 0, sizeof *t);
    t->profile = p;
    switch (p->target.type) {
    case TARGET_SQLITE:
        t->ops = &target_sqlite_ops;
        break;
    }
    return t->ops->open(t, cfg, p, e);
}

void target_close(struct target *t)
{
    if (t->ops && t->ops->close)
        t->ops->close(t);
    t->ops = NULL;
}
