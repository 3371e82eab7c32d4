/*
 * control: the partner's own control totals (profile `control:`), read from
 * a trailer or header record of a CSV part, a control file beside the data
 * file (control_file_parse), or an XML element (validate/xsd.c evaluates
 * the XPaths on that element's subtree alone), and the totals wharf counts
 * from the records it received, compared before the load commits.
 *
 * The validators own the reading of the data: the CSV one recognises the
 * control record (the first or last record whose first field matches
 * control.pattern) and keeps its fields out of the data (not validated,
 * not loaded, not split); both add every received record's cells of the
 * summed columns, valid or invalid, exactly (util/decimal.h).  A control
 * file's tally is shared by all parts of the intake.  The pipeline then calls
 * control_compare, which says whether both sides agree and builds the
 * evidence (ledger info.control, bag-info.txt, `wharf show`).
 *
 * Ownership: control_tally_init/free; control_compare's json is the
 * caller's.
 */
#ifndef WHARF_CONTROL_H
#define WHARF_CONTROL_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "util/decimal.h"

struct control_tally {
    const struct control_conf *conf;
    bool found;           /* the control record was seen */
    uint64_t line;        /* where it starts */
    char *count_text;     /* its count field, as written; NULL when absent */
    char **sum_text;      /* per conf->sums[k]: its sum field as written, or NULL */
    struct decimal *sums; /* per conf->sums[k]: the received cells' exact sum */
    uint64_t *unsummable; /* per conf->sums[k]: cells that are not numbers */
    char problem[512];    /* the control record itself is wrong (misplaced, repeated, short) */
    regex_t re;           /* conf->pattern, compiled once */
    bool re_ok;
    char *where;          /* file: the control file's name; element: its path */
};

void control_tally_init(struct control_tally *t, const struct control_conf *conf);
void control_tally_free(struct control_tally *t);
/* Take rec's fields (fields[0..n)) as the control record at line. */
struct csv_field;
void control_tally_take(struct control_tally *t, const struct csv_field *f, size_t n,
                        uint64_t line);
/* A stated value read elsewhere (control file, XML element): k < 0 the
 * count, else the sum conf->sums[k]; NULL text: not there. */
void control_tally_stated(struct control_tally *t, int k, const char *text, size_t len);
/*
 * control: file: parse the control file's text (len bytes, named name for
 * messages) in conf->format and take what it states.  A control file that
 * does not parse, or lacks a key the profile names, sets t->problem with
 * where (line and column) and why; the comparison then rejects.
 *   keyvalue  one "key=value" per line; blank lines and "#" comments are
 *             skipped; spaces around key and value are dropped
 *   json      an object; count/sums name keys, "a.b" a key of an object
 *             member; numbers are taken as written (never through a double)
 *   csv       one record; count/sums are 1-based fields
 */
void control_file_parse(struct control_tally *t, const char *name, const char *text, size_t len);
/* Does a first field (not NUL-terminated) match the pattern? */
bool control_matches(const struct control_tally *t, const char *s, size_t len);

/*
 * Compare the stated totals with the received ones: records (every data
 * record, valid + invalid), the exact sums.  Returns true when they agree;
 * *out gets the evidence:
 *   {"ok":false,"line":1001,"stated":{"records":"1000","sums":{"amount":"56789.00"}},
 *    "received":{"records":999,"valid":999,"invalid":0,"sums":{"amount":"56701.50"}},
 *    "message":"the file says 1,000 records / amount 56,789.00; received 999 / 56,701.50"}
 * msg (size msz) gets the message.
 */
bool control_compare(const struct control_tally *t, uint64_t records, uint64_t valid,
                     uint64_t invalid, bool split, json_t **out, char *msg, size_t msz);

#endif
