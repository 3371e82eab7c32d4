/*
 * views: the JSON of status, nodes, intakes, rejects and show (see views.h), for
 * the CLI and the console alike.
 */
#include "cli/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/health.h"
#include "util/escape.h"
#include "util/parse.h"

json_t *view_status(struct ledger *l, const struct profile_set *set, int64_t now, struct werr *e)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < set->n; i++) {
        struct health h;
        if (health_eval(l, set->v[i], now, &h, e) < 0) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            werr_setk(e, e->kind, "%s: %s", set->v[i]->name, msg);
            json_decref(arr);
            return NULL;
        }
        json_t *o = health_json(&h);
        char *legacy = ledger_health(l, set->v[i]->name);
        json_object_set_new(o, "source", esc_json(legacy ? legacy : "not polled yet"));
        free(legacy);
        json_array_append_new(arr, o);
        health_clear(&h);
    }
    return arr;
}

struct nodes_ctx {
    json_t *arr;
    int64_t now;
};

static int nodes_cb(void *ctx, const struct node_info *ni)
{
    struct nodes_ctx *x = ctx;
    char ts[32];
    json_t *o = json_object();
    json_object_set_new(o, "name", esc_json(ni->name));
    json_object_set_new(o, "pid", ni->pid ? json_integer(ni->pid) : json_null());
    if (ni->started_ms) {
        format_time_ms(ni->started_ms, ts);
        json_object_set_new(o, "started", json_string(ts));
    } else
        json_object_set_new(o, "started", json_null());
    if (ni->heartbeat_ms) {
        format_time_ms(ni->heartbeat_ms, ts);
        json_object_set_new(o, "heartbeat", json_string(ts));
        json_object_set_new(o, "heartbeat_age_s",
                            json_integer(x->now > ni->heartbeat_ms
                                             ? (x->now - ni->heartbeat_ms) / 1000
                                             : 0));
    } else {
        json_object_set_new(o, "heartbeat", json_null());
        json_object_set_new(o, "heartbeat_age_s", json_null());
    }
    json_object_set_new(o, "in_progress", json_integer((json_int_t)ni->in_progress));
    json_object_set_new(o, "expired_leases", json_integer((json_int_t)ni->expired));
    json_array_append_new(x->arr, o);
    return 0;
}

json_t *view_nodes(struct ledger *l, int64_t now, struct werr *e)
{
    struct nodes_ctx x = {json_array(), now};
    if (ledger_nodes(l, now, nodes_cb, &x, e) < 0) {
        json_decref(x.arr);
        return NULL;
    }
    return x.arr;
}

static int actions_cb(void *ctx, const struct action *a)
{
    char ts[32];
    format_time_ms(a->time_ms, ts);
    json_array_append_new(ctx, json_pack("{s:s,s:o,s:o,s:o,s:o,s:b,s:o}", "time", ts, "actor",
                                         esc_json(a->actor), "action", esc_json(a->action),
                                         "profile", esc_json(a->profile), "intake",
                                         esc_json(a->intake), "ok", a->ok, "result",
                                         esc_json(a->result)));
    return 0;
}

json_t *view_actions(struct ledger *l, const char *profile, int limit, struct werr *e)
{
    json_t *arr = json_array();
    if (ledger_actions(l, profile, limit, actions_cb, arr, e) < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

struct list_ctx {
    json_t *arr;
    bool rejects;
};

static int list_cb(void *c, const struct intake *in)
{
    struct list_ctx *x = c;
    json_t *o = intake_json(in);
    if (x->rejects)
        json_object_set_new(o, "kind", json_string(in->state == ST_FAILED ? "failed" : "rejected"));
    json_array_append_new(x->arr, o);
    return 0;
}

json_t *view_intakes(struct ledger *l, const struct intake_filter *f, bool rejects, struct werr *e)
{
    struct list_ctx x = {json_array(), rejects};
    if (ledger_list(l, f, list_cb, &x, e) < 0) {
        json_decref(x.arr);
        return NULL;
    }
    return x.arr;
}

static int ev_cb(void *c, int64_t t, const char *kind, const char *detail)
{
    char ts[32];
    json_t *d = detail ? json_loads(detail, 0, NULL) : NULL;
    format_time_ms(t, ts);
    json_array_append_new(
        c, json_pack("{s:s,s:s,s:o}", "time", ts, "kind", kind, "detail", d ? d : json_null()));
    return 0;
}

int view_intake(struct ledger *l, const char *id, json_t **out, struct werr *e)
{
    struct intake in = {0};
    int r = ledger_get(l, id, &in, e);
    *out = NULL;
    if (r <= 0)
        return r;
    json_t *o = intake_json(&in), *ev = json_array();
    if (ledger_events(l, in.id, ev_cb, ev, e) < 0) {
        json_decref(o);
        json_decref(ev);
        intake_clear(&in);
        return -1;
    }
    json_object_set_new(o, "events", ev);
    intake_clear(&in);
    *out = o;
    return 1;
}

static int export_cb(void *c, const struct intake *in)
{
    if (in->bag)
        json_array_append_new(c, intake_json(in));
    return 0;
}

json_t *view_export(struct ledger *l, int64_t since_ms, struct werr *e)
{
    struct intake_filter f = {.state = -1, .since_ms = since_ms};
    json_t *arr = json_array();
    if (ledger_list(l, &f, export_cb, arr, e) < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

#define putc_out(f, ch) putc((ch), (f))

struct ectx {
    FILE *out;
};

/*
 * One quoted CSV cell.  A cell a spreadsheet would read as a formula (it
 * starts with =, +, -, @, TAB or CR: `=HYPERLINK(...)` in a partner's file
 * name) gets a leading single quote, as OWASP's CSV injection guidance
 * says, so the spreadsheet shows it as text and never evaluates it.
 */
static void csv_field(FILE *out, const char *s, bool last)
{
    putc_out(out, '"');
    if (s && *s && strchr("=+-@\t\r", *s))
        putc_out(out, '\'');
    for (; s && *s; s++) {
        if (*s == '"')
            putc_out(out, '"');
        putc_out(out, *s);
    }
    putc_out(out, '"');
    putc_out(out, last ? '\n' : ',');
}

static const char *info_str(const struct intake *in, const char *key)
{
    json_t *v = in->info ? json_object_get(in->info, key) : NULL;
    return v ? json_string_value(v) : "";
}

static char *encodings(const struct intake *in)
{
    json_t *insp = in->info ? json_object_get(in->info, "inspection") : NULL;
    json_t *parts = insp ? json_object_get(insp, "parts") : NULL, *p;
    size_t i;
    json_t *a = json_array();
    json_array_foreach(parts, i, p)
    {
        json_t *enc = json_object_get(p, "encoding");
        if (enc)
            json_array_append(a, enc);
    }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static int export_csv_cb(void *c, const struct intake *in)
{
    struct ectx *x = c;
    char ts[32], size[32], rows[32];
    if (!in->bag)
        return 0;
    format_time_ms(in->created_ms, ts);
    char *enc = encodings(in);
    snprintf(size, sizeof size, "%llu", (unsigned long long)in->size);
    snprintf(rows, sizeof rows, "%llu", (unsigned long long)in->rows);
    csv_field(x->out, in->id, false);
    csv_field(x->out, in->profile, false);
    csv_field(x->out, in->name, false);
    csv_field(x->out, ts, false);
    csv_field(x->out, size, false);
    csv_field(x->out, in->sha256, false);
    csv_field(x->out, enc, false);
    csv_field(x->out, rows, false);
    csv_field(x->out, outcome_name(in->outcome), false);
    csv_field(x->out, in->bag, false);
    csv_field(x->out, info_str(in, "tagmanifest_sha256"), false);
    csv_field(x->out, info_str(in, "chain_link"), true);
    free(enc);
    return 0;
}

int view_export_csv(struct ledger *l, int64_t since_ms, FILE *out, struct werr *e)
{
    struct intake_filter f = {.state = -1, .since_ms = since_ms};
    struct ectx x = {out};
    fputs("intake,profile,name,received,size,sha256,encoding,rows,outcome,bag,"
          "tagmanifest_sha256,chain_link\n",
          out);
    if (ledger_list(l, &f, export_csv_cb, &x, e) < 0)
        return -1;
    if (fflush(out) != 0 || ferror(out)) {
        werr_sys(e, "export: write");
        return -1;
    }
    return 0;
}
