/*
 * metrics: /metrics in the Prometheus text format (version 0.0.4), computed
 * at scrape time from the ledger -- the same truth as `wharf status` -- plus
 * what the console counts itself.
 *
 * Intakes are read once per scrape (streamed, one row at a time); a profile
 * name is a label value and is escaped as the format says (\\ \" \n).
 */
#include <stdlib.h>
#include <string.h>

#include "console/internal.h"
#include "daemon/audit.h"
#include "daemon/health.h"
#include "util/obs.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* drop (created) to done, seconds */
static const double lat_bounds[] = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400};
#define NLAT (sizeof lat_bounds / sizeof lat_bounds[0])

struct pstat {
    char *profile;
    uint64_t by[ST__COUNT][4]; /* state x outcome */
    uint64_t rows, bytes, lat[NLAT + 1];
    double lat_sum;
    uint64_t lat_n;
};

struct mctx {
    struct pstat *v;
    size_t n;
};

static struct pstat *pstat_for(struct mctx *m, const char *profile)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].profile, profile))
            return &m->v[i];
    m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
    memset(&m->v[m->n], 0, sizeof m->v[0]);
    m->v[m->n].profile = xstrdup(profile);
    return &m->v[m->n++];
}

static int count_cb(void *c, const struct intake *in)
{
    struct pstat *p = pstat_for(c, in->profile ? in->profile : "");
    p->by[in->state][in->outcome & 3]++;
    if (in->outcome == OUT_LOADED) {
        p->rows += in->rows;
        p->bytes += in->size;
        if (in->state == ST_DONE && in->updated_ms >= in->created_ms) {
            double s = (double)(in->updated_ms - in->created_ms) / 1000.0;
            size_t k = 0;
            while (k < NLAT && s > lat_bounds[k])
                k++;
            p->lat[k]++;
            p->lat_sum += s;
            p->lat_n++;
        }
    }
    return 0;
}

static void label(struct hbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            hbuf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            hbuf_puts(b, "\\n");
        else
            hbuf_put(b, v, 1);
    }
}

static void help(struct hbuf *b, const char *name, const char *type, const char *text)
{
    hbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* What this process measured about itself (util/obs.h): step durations by
 * stage, ledger commit latency, the runner's queue and workers. */
static void process_metrics(struct hbuf *b)
{
    const char *helped = "";
    for (int h = 0; h < OBS__HISTS; h++) {
        struct obs_hist_read r;
        const char *lb, *sep;
        obs_read((enum obs_hist)h, &r);
        if (strcmp(helped, r.name))
            help(b, r.name, "histogram",
                 !strcmp(r.name, "wharf_ledger_commit_seconds")
                     ? "Ledger transaction commits of this process (fsync included)."
                     : "Pipeline steps of this process by stage (take, inspect, load, seal, ...).");
        helped = r.name;
        lb = r.label ? r.label : "";
        sep = r.label ? "," : "";
        for (int k = 0; k < OBS_BUCKETS; k++)
            hbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", r.name, lb, sep, r.le[k],
                        (unsigned long long)r.bucket[k]);
        hbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", r.name, lb, sep,
                    (unsigned long long)r.count);
        hbuf_printf(b, "%s_sum%s%s%s %.6f\n", r.name, r.label ? "{" : "", lb, r.label ? "}" : "",
                    r.sum);
        hbuf_printf(b, "%s_count%s%s%s %llu\n", r.name, r.label ? "{" : "", lb,
                    r.label ? "}" : "", (unsigned long long)r.count);
    }
    for (int g = 0; g < OBS__GAUGES; g++) {
        int64_t v;
        if (!obs_gauge_get((enum obs_gauge)g, &v))
            continue;
        help(b, obs_gauge_name((enum obs_gauge)g), "gauge", obs_gauge_help((enum obs_gauge)g));
        hbuf_printf(b, "%s %lld\n", obs_gauge_name((enum obs_gauge)g), (long long)v);
    }
}

int metrics_render(const struct wharf_config *cfg, const struct console_counters *n, struct hbuf *b,
                   struct werr *e)
{
    struct ledger *l = ledger_open(cfg->ledger_type, cfg->ledger_path, cfg->ledger_dsn_file, e);
    struct intake_filter f = {.state = -1};
    struct mctx m = {0};
    struct profile_set set = {0};
    struct diags d = {0};
    int r = -1;
    if (!l)
        return -1;
    profiles_load(cfg, NULL, 0, &set, &d);
    diag_free(&d);
    for (size_t i = 0; i < set.n; i++)
        pstat_for(&m, set.v[i]->name);
    if (ledger_list(l, &f, count_cb, &m, e) < 0)
        goto out;

    help(b, "wharf_build_info", "gauge", "The running wharf's version.");
    hbuf_printf(b, "wharf_build_info{version=\"%s\"} 1\n", WHARF_VERSION);
    help(b, "wharf_intakes", "gauge", "Intakes in the ledger by profile, state and outcome.");
    for (size_t i = 0; i < m.n; i++)
        for (int s = 0; s < ST__COUNT; s++)
            for (int o = 0; o < 4; o++) {
                if (!m.v[i].by[s][o] && !(s == ST_DONE && o == OUT_LOADED))
                    continue;
                hbuf_puts(b, "wharf_intakes{profile=\"");
                label(b, m.v[i].profile);
                hbuf_printf(b, "\",state=\"%s\",outcome=\"%s\"} %llu\n",
                            state_name((enum intake_state)s), outcome_name((enum outcome)o),
                            (unsigned long long)m.v[i].by[s][o]);
            }
    const struct {
        const char *name, *help;
        int what;
    } sums[] = {
        {"wharf_rows_loaded_total", "Rows loaded into targets.", 0},
        {"wharf_bytes_loaded_total", "Bytes of partner files loaded.", 1},
        {"wharf_rejects_total", "Intakes rejected.", 2},
        {"wharf_failures_total", "Intakes parked as failed.", 3},
    };
    for (size_t k = 0; k < sizeof sums / sizeof sums[0]; k++) {
        help(b, sums[k].name, "counter", sums[k].help);
        for (size_t i = 0; i < m.n; i++) {
            uint64_t v = 0;
            if (sums[k].what == 0)
                v = m.v[i].rows;
            else if (sums[k].what == 1)
                v = m.v[i].bytes;
            else if (sums[k].what == 2)
                for (int s = 0; s < ST__COUNT; s++)
                    v += m.v[i].by[s][OUT_REJECTED];
            else
                for (int o = 0; o < 4; o++)
                    v += m.v[i].by[ST_FAILED][o];
            hbuf_printf(b, "%s{profile=\"", sums[k].name);
            label(b, m.v[i].profile);
            hbuf_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
    }
    help(b, "wharf_drop_to_done_seconds", "histogram",
         "From the claim of a drop to its intake done, for loaded intakes.");
    for (size_t i = 0; i < m.n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; k <= NLAT; k++) {
            cum += m.v[i].lat[k];
            hbuf_puts(b, "wharf_drop_to_done_seconds_bucket{profile=\"");
            label(b, m.v[i].profile);
            if (k < NLAT)
                hbuf_printf(b, "\",le=\"%g\"} %llu\n", lat_bounds[k], (unsigned long long)cum);
            else
                hbuf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        hbuf_puts(b, "wharf_drop_to_done_seconds_sum{profile=\"");
        label(b, m.v[i].profile);
        hbuf_printf(b, "\"} %.3f\n", m.v[i].lat_sum);
        hbuf_puts(b, "wharf_drop_to_done_seconds_count{profile=\"");
        label(b, m.v[i].profile);
        hbuf_printf(b, "\"} %llu\n", (unsigned long long)m.v[i].lat_n);
    }

    /* health: the state machine of `wharf status`, one series per profile */
    help(b, "wharf_profile_state", "gauge",
         "1 for the profile's state as wharf status shows it (ok, rejecting, down, ...).");
    struct health *hs = xcalloc(set.n ? set.n : 1, sizeof *hs);
    bool *have = xcalloc(set.n ? set.n : 1, sizeof *have);
    for (size_t i = 0; i < set.n; i++)
        have[i] = health_eval(l, set.v[i], sla_now(), &hs[i], e) == 0;
    for (size_t i = 0; i < set.n; i++) {
        if (!have[i])
            continue;
        hbuf_puts(b, "wharf_profile_state{profile=\"");
        label(b, set.v[i]->name);
        hbuf_printf(b, "\",state=\"%s\"} 1\n", health_state_name(hs[i].state));
    }
    help(b, "wharf_backlog", "gauge", "Intakes not finished yet.");
    for (size_t i = 0; i < set.n; i++)
        if (have[i]) {
            hbuf_puts(b, "wharf_backlog{profile=\"");
            label(b, set.v[i]->name);
            hbuf_printf(b, "\"} %llu\n", (unsigned long long)hs[i].backlog);
        }
    help(b, "wharf_sla_state", "gauge", "1 for the profile's freshness (SLA) state.");
    for (size_t i = 0; i < set.n; i++)
        if (have[i]) {
            hbuf_puts(b, "wharf_sla_state{profile=\"");
            label(b, set.v[i]->name);
            hbuf_printf(b, "\",state=\"%s\"} 1\n", sla_state_name(hs[i].sla.state));
        }
    help(b, "wharf_source_up", "gauge", "1 when the last poll listed the source.");
    help(b, "wharf_source_consecutive_failures", "gauge", "Failed polls in a row.");
    for (size_t i = 0; i < set.n; i++) {
        struct source_health sh;
        if (!ledger_source_health(l, set.v[i]->name, &sh))
            continue;
        hbuf_puts(b, "wharf_source_up{profile=\"");
        label(b, set.v[i]->name);
        hbuf_printf(b, "\"} %d\n", sh.ok ? 1 : 0);
        hbuf_puts(b, "wharf_source_consecutive_failures{profile=\"");
        label(b, set.v[i]->name);
        hbuf_printf(b, "\"} %d\n", sh.ok ? 0 : sh.fails);
    }
    for (size_t i = 0; i < set.n; i++)
        if (have[i])
            health_clear(&hs[i]);
    free(hs);
    free(have);

    json_t *v = NULL;
    help(b, "wharf_verify_ok", "gauge",
         "1 when the server's last scheduled verify found every bag as sealed, 0 when not, "
         "absent when it has not run.");
    if (audit_last(l, &v) > 0) {
        json_t *ok = json_object_get(v, "ok");
        if (json_is_boolean(ok))
            hbuf_printf(b, "wharf_verify_ok %d\n", json_is_true(ok) ? 1 : 0);
        json_decref(v);
    }
    process_metrics(b);
    help(b, "wharf_console_requests_total", "counter", "HTTP requests the console answered.");
    hbuf_printf(b, "wharf_console_requests_total %llu\n", (unsigned long long)n->requests);
    help(b, "wharf_console_login_failures_total", "counter", "Failed console logins.");
    hbuf_printf(b, "wharf_console_login_failures_total %llu\n",
                (unsigned long long)n->login_failures);
    help(b, "wharf_console_refused_total", "counter",
         "Console requests refused: missing CSRF token, role, or too big.");
    hbuf_printf(b, "wharf_console_refused_total{reason=\"csrf\"} %llu\n",
                (unsigned long long)n->csrf_refused);
    hbuf_printf(b, "wharf_console_refused_total{reason=\"role\"} %llu\n",
                (unsigned long long)n->role_refused);
    hbuf_printf(b, "wharf_console_refused_total{reason=\"too_big\"} %llu\n",
                (unsigned long long)n->too_big);
    r = 0;
out:
    for (size_t i = 0; i < m.n; i++)
        free(m.v[i].profile);
    free(m.v);
    profiles_free(&set);
    ledger_close(l);
    return r;
}
