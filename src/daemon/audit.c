/*
 * audit: scheduled re-verification (see audit.h).
 *
 * The thread owns its ledger connection.  Due time: the last run's time +
 * verify.every (when it never ran: verify.every, at most 5 minutes, after
 * the start).  The result replaces kv
 * "verify:last" (at most AUDIT_KEEP problems are kept in it; the log has
 * them all).
 */
#include "daemon/audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/periodic.h"
#include "seal/verify.h"
#include "util/escape.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define AUDIT_KEY  "verify:last"
#define AUDIT_KEEP 20

struct audit {
    const struct wharf_config *cfg;
    struct periodic per;
    struct ledger *l;  /* the thread's own connection, opened on its first round */
    int64_t first_due; /* never run: not at once (a starting server has a backlog to load) */
};

int audit_last(struct ledger *l, json_t **out)
{
    char *v = NULL;
    struct werr e;
    *out = NULL;
    if (ledger_kv_get(l, AUDIT_KEY, &v, &e) < 0 || !v)
        return 0;
    *out = json_loads(v, 0, NULL);
    free(v);
    return *out ? 1 : 0;
}

static void on_problem(void *ctx, const char *intake, const char *msg)
{
    json_t *list = ctx;
    wlog(LOG_ERROR, NULL, *intake ? intake : NULL, "verify_problem", NULL, "%s", msg);
    if (json_array_size(list) < AUDIT_KEEP)
        json_array_append_new(list,
                              json_pack("{s:s,s:o}", "intake", intake, "problem", esc_json(msg)));
}

static void run_once(struct audit *a, struct ledger *l)
{
    struct verify_opts o = {.bytes_per_s = a->cfg->verify_rate, .stop = &a->per.stop};
    struct verify_result res;
    struct werr e;
    json_t *list = json_array(), *rec;
    char *text;
    int64_t started = now_ms();

    wlog(LOG_INFO, NULL, NULL, "verify_started", NULL, "re-verifying the archive");
    if (verify_run(l, &o, on_problem, list, &res, &e) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "ledger: %s", e.msg);
        json_decref(list);
        return;
    }
    if (res.stopped) {
        json_decref(list);
        return; /* shutting down: the next start runs it again */
    }
    rec = json_pack("{s:I,s:I,s:b,s:I,s:I,s:I,s:o,s:o}", "time", (json_int_t)started, "took_ms",
                    (json_int_t)(now_ms() - started), "ok", res.problems == 0, "bags",
                    (json_int_t)res.bags, "links", (json_int_t)res.links, "problems",
                    (json_int_t)res.problems, "first", esc_json(res.first), "tampered", list);
    text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text || ledger_kv_set(l, AUDIT_KEY, text, &e) < 0)
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "cannot record the result: %s",
             text ? e.msg : "out of memory");
    if (res.problems)
        wlog(LOG_ERROR, NULL, NULL, "verify_tampered", NULL,
             "%llu problem%s in %llu bags; first: %s (see runbooks/verify-tamper.md)",
             (unsigned long long)res.problems, res.problems == 1 ? "" : "s",
             (unsigned long long)res.bags, res.first);
    else
        wlog(LOG_INFO, NULL, NULL, "verified", NULL, "%llu bags re-hashed, %llu chain links, ok",
             (unsigned long long)res.bags, (unsigned long long)res.links);
    free(text);
    json_decref(rec);
}

/* periodic's fn: run when due; the ms until the next run. */
static int64_t tick(void *arg)
{
    struct audit *a = arg;
    struct werr e;
    json_t *last = NULL;
    int64_t due = a->first_due;
    if (!a->l && !(a->l = ledger_open(a->cfg->ledger_type, a->cfg->ledger_path,
                                      a->cfg->ledger_dsn_file, &e))) {
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "ledger: %s", e.msg);
        return 60000;
    }
    if (audit_last(a->l, &last))
        due = (int64_t)json_integer_value(json_object_get(last, "time")) + a->cfg->verify_every_ms;
    json_decref(last);
    if (now_ms() < due)
        return due - now_ms();
    run_once(a, a->l);
    if (audit_last(a->l, &last) &&
        (int64_t)json_integer_value(json_object_get(last, "time")) + a->cfg->verify_every_ms >
            now_ms()) {
        json_decref(last);
        return 0; /* recorded: the next due time is looked at at once */
    }
    json_decref(last);
    return 60000; /* stopped, or not recorded (logged): try again later */
}

static void done(void *arg)
{
    struct audit *a = arg;
    ledger_close(a->l);
    a->l = NULL;
}

struct audit *audit_start(const struct wharf_config *cfg)
{
    struct audit *a;
    if (cfg->verify_every_ms <= 0)
        return NULL;
    a = xcalloc(1, sizeof *a);
    a->cfg = cfg;
    a->first_due = now_ms() + (cfg->verify_every_ms < 300000 ? cfg->verify_every_ms : 300000);
    if (periodic_start(&a->per, tick, done, a) < 0) {
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "cannot start the verify thread: %s",
             strerror(errno));
        free(a);
        return NULL;
    }
    return a;
}

void audit_stop(struct audit *a)
{
    if (!a)
        return;
    periodic_stop(&a->per);
    free(a);
}
