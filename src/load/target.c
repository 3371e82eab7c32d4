/*
 * target: picks the backend named by the profile's target.type.
 */
#include "load/target.h"

#include <string.h>

static const struct target_ops *ops_for(const struct profile *p)
{
    switch (p->target.type) {
    case TARGET_SQLITE:
        return &target_sqlite_ops;
    }
    return &target_sqlite_ops;
}

int target_open(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                struct werr *e)
{
    memset(t, 0, sizeof *t);
    t->profile = p;
    t->ops = ops_for(p);
    return t->ops->open(t, cfg, p, e);
}

void target_close(struct target *t)
{
    if (t->ops && t->ops->close)
        t->ops->close(t);
    t->ops = NULL;
}

int target_check_schema(const struct wharf_config *cfg, const struct profile *p,
                        const struct columns *cols, struct werr *e)
{
    const struct target_ops *ops = ops_for(p);
    return ops->check_schema ? ops->check_schema(cfg, p, cols, e) : 0;
}
