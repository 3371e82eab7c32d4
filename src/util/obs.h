/*
 * obs: what this process measured about itself, for /metrics -- durations
 * as Prometheus histograms (fixed buckets, lock-free counters) and a few
 * gauges.  Process-wide and since the process started, as Prometheus
 * expects of counters; a gauge nobody set is not shown (a server that has
 * no queue shows no queue depth, never a made-up 0).
 */
#ifndef WHARF_OBS_H
#define WHARF_OBS_H

#include <stdbool.h>
#include <stdint.h>

enum obs_hist {
    OBS_STAGE_TAKE, /* one pipeline step, by the state it leaves */
    OBS_STAGE_INSPECT,
    OBS_STAGE_VALIDATE, /* an outbound file checked before sending */
    OBS_STAGE_DELIVER,
    OBS_STAGE_LOAD,
    OBS_STAGE_SEAL,
    OBS_STAGE_FINISH,
    OBS_LEDGER_COMMIT, /* one ledger transaction's COMMIT */
    OBS__HISTS
};

enum obs_gauge {
    OBS_QUEUE_DEPTH,  /* jobs waiting for a worker */
    OBS_WORKERS_BUSY, /* workers running a job */
    OBS_WORKERS,      /* workers there are */
    OBS__GAUGES
};

#define OBS_BUCKETS 12 /* finite bounds; +Inf is the count */

struct obs_hist_read {
    const char *name;  /* metric name, without _bucket etc. */
    const char *label; /* "stage=\"load\"" or NULL */
    const double *le;  /* OBS_BUCKETS upper bounds, seconds */
    uint64_t bucket[OBS_BUCKETS]; /* cumulative, as exposed */
    uint64_t count;
    double sum; /* seconds */
};

/* A monotonic clock in nanoseconds, for timing what is observed. */
int64_t obs_now_ns(void);
/* Records one duration (seconds = (now - start_ns) / 1e9). */
void obs_since(enum obs_hist h, int64_t start_ns);
void obs_observe(enum obs_hist h, double seconds);
/* Reads histogram h; false when nothing was ever observed in it. */
bool obs_read(enum obs_hist h, struct obs_hist_read *out);

void obs_gauge_set(enum obs_gauge g, int64_t v);
void obs_gauge_add(enum obs_gauge g, int64_t d);
/* false when the gauge was never set. */
bool obs_gauge_get(enum obs_gauge g, int64_t *v);
const char *obs_gauge_name(enum obs_gauge g);
const char *obs_gauge_help(enum obs_gauge g);

#endif
