/*
 * log: one line per call, written with a single write(2) so lines from
 * several threads never interleave.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/escape.h"
#include "util/parse.h"
#include "util/xmalloc.h"

static int json_mode = -1;
static enum log_level min_level = LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

static int fancy = -1; /* stderr takes control sequences: a terminal, not TERM=dumb */

static bool stderr_fancy(void)
{
    if (fancy < 0) {
        const char *term = getenv("TERM");
        fancy = isatty(2) && term && *term && strcmp(term, "dumb") != 0;
    }
    return fancy;
}

void log_init(int json, enum log_level min)
{
    json_mode = json < 0 ? !isatty(2) : json;
    min_level = min;
}

void wlog(enum log_level level, const char *profile, const char *intake, const char *event,
          json_t *fields, const char *fmt, ...)
{
    char msg[2048], ts[32];
    va_list ap;
    char *line = NULL;

    if (level < min_level) {
        json_decref(fields);
        return;
    }
    if (json_mode < 0)
        json_mode = !isatty(2);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_time_ms(now_ms(), ts);

    if (json_mode) {
        json_t *o = json_object();
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        if (profile)
            json_object_set_new(o, "profile", esc_json(profile));
        if (intake)
            json_object_set_new(o, "intake", esc_json(intake));
        if (event)
            json_object_set_new(o, "event", esc_json(event));
        json_object_set_new(o, "message", esc_json(msg));
        if (fields)
            json_object_set(o, "fields", fields);
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        line = s ? xasprintf("%s\n", s) : NULL;
        free(s);
        json_decref(o);
    } else {
        /* partner bytes in the message are escaped (util/escape.h), JSON
         * fields are ASCII: nothing reaches the terminal as a control */
        char *f = fields && json_object_size(fields)
                      ? json_dumps(fields, JSON_COMPACT | JSON_ENSURE_ASCII)
                      : NULL;
        char *m = esc_text(msg);
        /* \r + erase-line first: a progress line may be half drawn */
        line = xasprintf("%s%.12s %-5s %s%s%s%s%s%s %s%s%s\n", stderr_fancy() ? "\r\033[K" : "",
                         ts + 11, level_names[level], profile ? profile : "", profile ? " " : "",
                         intake ? intake : "", intake ? " " : "", event ? event : "",
                         event ? ":" : "", m, f ? " " : "", f ? f : "");
        free(m);
        free(f);
    }
    json_decref(fields);
    if (line) {
        write_all(2, line, strlen(line));
        free(line);
    }
}
