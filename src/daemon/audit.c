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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seal/verify.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define AUDIT_KEY  "verify:last"
#define AUDIT_KEEP 20

struct audit {
    const struct wharf_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop;
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
        json_array_append_new(list, json_pack("{s:s,s:s}", "intake", intake, "problem", msg));
}

static void run_once(struct audit *a, struct ledger *l)
{
    struct verify_opts o = {.bytes_per_s = a->cfg->verify_rate, .stop = &a->stop};
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
    rec = json_pack("{s:I,s:I,s:b,s:I,s:I,s:I,s:s,s:o}", "time", (json_int_t)started, "took_ms",
                    (json_int_t)(now_ms() - started), "ok", res.problems == 0, "bags",
                    (json_int_t)res.bags, "links", (json_int_t)res.links, "problems",
                    (json_int_t)res.problems, "first", res.first, "tampered", list);
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

static void *audit_thread(void *arg)
{
    struct audit *a = arg;
    struct werr e;
    struct ledger *l = ledger_open_sqlite(a->cfg->ledger_path, &e);
    if (!l) {
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "ledger: %s", e.msg);
        return NULL;
    }
    /* never run: not at once (a starting server has a backlog to load) */
    int64_t first =
        now_ms() + (a->cfg->verify_every_ms < 300000 ? a->cfg->verify_every_ms : 300000);
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        json_t *last = NULL;
        int64_t due = first;
        if (audit_last(l, &last))
            due = (int64_t)json_integer_value(json_object_get(last, "time")) +
                  a->cfg->verify_every_ms;
        json_decref(last);
        if (now_ms() < due) {
            struct timespec ts;
            int64_t wait = due - now_ms();
            if (wait > 60000)
                wait = 60000; /* look again: the clock may have jumped */
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        run_once(a, l);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    ledger_close(l);
    return NULL;
}

struct audit *audit_start(const struct wharf_config *cfg)
{
    struct audit *a;
    if (cfg->verify_every_ms <= 0)
        return NULL;
    a = xcalloc(1, sizeof *a);
    a->cfg = cfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->thread, NULL, audit_thread, a) != 0) {
        wlog(LOG_ERROR, NULL, NULL, "verify_failed", NULL, "cannot start the verify thread: %s",
             strerror(errno));
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
        return NULL;
    }
    return a;
}

void audit_stop(struct audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
