/*
 * log: structured log lines on stderr.
 *
 * JSON lines (time, level, profile, intake, event, message, fields) when
 * stderr is not a terminal; a readable one-line form when it is.  Every line
 * about a file carries its intake id.  `fields` is a jansson object that
 * wlog takes ownership of (may be NULL).
 */
#ifndef WHARF_LOG_H
#define WHARF_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* json: 1 JSON lines, 0 readable, -1 decide from isatty(2). */
void log_init(int json, enum log_level min);
void wlog(enum log_level level, const char *profile, const char *intake, const char *event,
          json_t *fields, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
