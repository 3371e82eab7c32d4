/*
 * target: picks the backend named by the profile's target.type.
 */
#include "load/target.h"

#include <stdio.h>
#include <string.h>

#include "util/xmalloc.h"

static const struct target_ops *ops_for(const struct profile *p)
{
    switch (p->target.type) {
    case TARGET_SQLITE:
        return &target_sqlite_ops;
    case TARGET_POSTGRESQL:
        return &target_postgres_ops;
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

int target_open_readonly(struct target *t, const struct wharf_config *cfg, const struct profile *p,
                         struct werr *e)
{
    memset(t, 0, sizeof *t);
    t->profile = p;
    t->readonly = true;
    t->ops = ops_for(p);
    return t->ops->open(t, cfg, p, e);
}

struct supersession *load_stats_sup(struct load_stats *st, const char *intake)
{
    /* Most loads supersede one or two intakes: the last hit first. */
    for (size_t i = st->n_sup; i-- > 0;)
        if (!strcmp(st->sup[i].intake, intake))
            return &st->sup[i];
    st->sup = xrealloc(st->sup, (st->n_sup + 1) * sizeof *st->sup);
    struct supersession *s = &st->sup[st->n_sup++];
    memset(s, 0, sizeof *s);
    snprintf(s->intake, sizeof s->intake, "%s", intake);
    return s;
}

void load_stats_clear(struct load_stats *st)
{
    free(st->sup);
    free(st->key);
    memset(st, 0, sizeof *st);
}

void target_close(struct target *t)
{
    load_stats_clear(&t->stats);
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

bool target_is_remote(const struct profile *p)
{
    return ops_for(p)->remote;
}
