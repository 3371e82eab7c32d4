/*
 * tsfield: one Table Schema field (type, format, constraints) and the
 * casting of a CSV cell to its typed value.  Internal to validate/: used by
 * tableschema.c, which compiles fields from the schema and drives them.
 */
#ifndef WHARF_TSFIELD_H
#define WHARF_TSFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/xmlregexp.h>

enum ts_type {
    TS_STRING,
    TS_INTEGER,
    TS_NUMBER,
    TS_BOOLEAN,
    TS_DATE,
    TS_TIME,
    TS_DATETIME,
    TS_YEAR,
    TS_YEARMONTH,
    TS_DURATION,
    TS_ANY,
    TS_OBJECT,
    TS_ARRAY,
    TS_GEOPOINT,
};

enum ts_format {
    FMT_DEFAULT,
    FMT_ANY,
    FMT_PATTERN,
    FMT_EMAIL,
    FMT_URI,
    FMT_UUID,
    FMT_BINARY,
    FMT_GEO_ARRAY,  /* geopoint "[lon, lat]" */
    FMT_GEO_OBJECT, /* geopoint {"lon": .., "lat": ..} */
};

/* A cast value.  Temporal types are normalised to ISO 8601 text in buf;
 * ord orders them (days, seconds, months).  A geopoint is "lon,lat" in buf;
 * an object or array is the cell's own (valid JSON) text, with i its number
 * of members for minLength / maxLength. */
struct ts_cast {
    enum { TC_TEXT, TC_INT, TC_REAL } kind;
    int64_t i;
    double d;
    const char *s; /* TC_TEXT: the raw cell or buf */
    size_t len;
    double ord;
    char buf[64];
};

struct ts_field {
    char *name;
    enum ts_type type;
    enum ts_format fmt;
    char *pattern_fmt; /* FMT_PATTERN: "%d.%m.%Y" */
    char decimal_char, group_char;
    bool bare_number;
    char **true_values, **false_values;
    size_t n_true, n_false;

    bool required, unique;
    bool has_min_len, has_max_len;
    uint64_t min_len, max_len;
    bool has_min, has_max;
    struct ts_cast min, max;
    char *min_text, *max_text;
    bool has_pattern;
    xmlRegexpPtr re; /* constraints.pattern: XML Schema regex, whole value */
    char *pattern;
    struct ts_cast *enum_v;
    size_t n_enum;
    char *enum_text; /* for messages: "a", "b", "c" */
    char **owned;    /* text of long bounds / enum values */
    size_t n_owned;
};

/* "integer" -> TS_INTEGER; -1 when unknown. */
int tsfield_type(const char *name);
const char *tsfield_type_name(enum ts_type t);
/* The valid type names, comma separated, for messages. */
const char *tsfield_type_names(void);
/* Is a strptime-like pattern one we can parse ("%d.%m.%Y")? */
bool tsfield_pattern_ok(const char *pat);
/* Set the type's defaults (decimalChar ".", bareNumber, true/false values). */
void tsfield_defaults(struct ts_field *f);

/* Cast a cell.  0 on success; -1 with the reason in why ("is not a number
 * (decimalChar is \".\")"). */
int tsfield_cast(const struct ts_field *f, const char *s, size_t len, struct ts_cast *out,
                 char *why, size_t why_len);
/* <0, 0, >0 for values of the same field. */
int tsfield_compare(const struct ts_field *f, const struct ts_cast *a, const struct ts_cast *b);
/* The canonical text of a value, for messages about unique and primary
 * keys (snprintf for numbers: not for the hot path). */
size_t tsfield_key(const struct ts_cast *v, char *buf, size_t size, const char **out);
void tsfield_free(struct ts_field *f);

#endif
