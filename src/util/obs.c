/*
 * obs: see obs.h.  Every counter is a relaxed atomic: a scrape may see a
 * bucket one observation ahead of the count, which Prometheus tolerates
 * (the next scrape agrees).
 */
#include "util/obs.h"

#include <time.h>

/* Pipeline steps take milliseconds to minutes; a commit microseconds to a
 * second (an fsync on a slow disk). */
static const double stage_le[OBS_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                             1,     5,     10,   60,   300, 1800};
static const double commit_le[OBS_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                              0.01,   0.025,   0.05,   0.1,   0.25,   1};

static const struct {
    const char *name, *label;
    const double *le;
} hists[OBS__HISTS] = {
    [OBS_STAGE_TAKE] = {"wharf_stage_duration_seconds", "stage=\"take\"", stage_le},
    [OBS_STAGE_INSPECT] = {"wharf_stage_duration_seconds", "stage=\"inspect\"", stage_le},
    [OBS_STAGE_VALIDATE] = {"wharf_stage_duration_seconds", "stage=\"validate\"", stage_le},
    [OBS_STAGE_DELIVER] = {"wharf_stage_duration_seconds", "stage=\"deliver\"", stage_le},
    [OBS_STAGE_LOAD] = {"wharf_stage_duration_seconds", "stage=\"load\"", stage_le},
    [OBS_STAGE_SEAL] = {"wharf_stage_duration_seconds", "stage=\"seal\"", stage_le},
    [OBS_STAGE_FINISH] = {"wharf_stage_duration_seconds", "stage=\"finish\"", stage_le},
    [OBS_LEDGER_COMMIT] = {"wharf_ledger_commit_seconds", NULL, commit_le},
};

static const struct {
    const char *name, *help;
} gauges[OBS__GAUGES] = {
    [OBS_QUEUE_DEPTH] = {"wharf_queue_depth", "Jobs (polls, intakes) waiting for a worker."},
    [OBS_WORKERS_BUSY] = {"wharf_workers_busy",
                          "Worker and SFTP connection threads running a job now."},
    [OBS_WORKERS] = {"wharf_workers", "Worker and SFTP connection threads of this process."},
};

static struct {
    uint64_t bucket[OBS_BUCKETS]; /* not cumulative: one bucket per value */
    uint64_t count;
    uint64_t sum_ns;
} h_[OBS__HISTS];

static struct {
    int64_t v;
    int set;
} g_[OBS__GAUGES];

int64_t obs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void obs_since(enum obs_hist h, int64_t start_ns)
{
    int64_t d = obs_now_ns() - start_ns;
    obs_observe(h, d > 0 ? (double)d / 1e9 : 0);
}

void obs_observe(enum obs_hist h, double seconds)
{
    if ((unsigned)h >= OBS__HISTS)
        return;
    for (int k = 0; k < OBS_BUCKETS; k++)
        if (seconds <= hists[h].le[k]) {
            __atomic_add_fetch(&h_[h].bucket[k], 1, __ATOMIC_RELAXED);
            break;
        }
    __atomic_add_fetch(&h_[h].sum_ns, (uint64_t)(seconds * 1e9), __ATOMIC_RELAXED);
    __atomic_add_fetch(&h_[h].count, 1, __ATOMIC_RELAXED);
}

bool obs_read(enum obs_hist h, struct obs_hist_read *out)
{
    uint64_t cum = 0;
    if ((unsigned)h >= OBS__HISTS)
        return false;
    out->name = hists[h].name;
    out->label = hists[h].label;
    out->le = hists[h].le;
    out->count = __atomic_load_n(&h_[h].count, __ATOMIC_RELAXED);
    out->sum = (double)__atomic_load_n(&h_[h].sum_ns, __ATOMIC_RELAXED) / 1e9;
    for (int k = 0; k < OBS_BUCKETS; k++) {
        cum += __atomic_load_n(&h_[h].bucket[k], __ATOMIC_RELAXED);
        out->bucket[k] = cum < out->count ? cum : out->count;
    }
    return out->count > 0;
}

void obs_gauge_set(enum obs_gauge g, int64_t v)
{
    if ((unsigned)g >= OBS__GAUGES)
        return;
    __atomic_store_n(&g_[g].v, v, __ATOMIC_RELAXED);
    __atomic_store_n(&g_[g].set, 1, __ATOMIC_RELEASE);
}

void obs_gauge_add(enum obs_gauge g, int64_t d)
{
    if ((unsigned)g >= OBS__GAUGES)
        return;
    __atomic_add_fetch(&g_[g].v, d, __ATOMIC_RELAXED);
    __atomic_store_n(&g_[g].set, 1, __ATOMIC_RELEASE);
}

bool obs_gauge_get(enum obs_gauge g, int64_t *v)
{
    if ((unsigned)g >= OBS__GAUGES || !__atomic_load_n(&g_[g].set, __ATOMIC_ACQUIRE))
        return false;
    *v = __atomic_load_n(&g_[g].v, __ATOMIC_RELAXED);
    return true;
}

const char *obs_gauge_name(enum obs_gauge g)
{
    return (unsigned)g < OBS__GAUGES ? gauges[g].name : "?";
}

const char *obs_gauge_help(enum obs_gauge g)
{
    return (unsigned)g < OBS__GAUGES ? gauges[g].help : "?";
}
