/*
 * sniff: what format a part's UTF-8 text is in.  XML when the first
 * non-space character is '<' (the root element's name is recorded), CSV
 * otherwise, with its dialect (delimiter among , ; TAB |, quote character,
 * header row, line ending) sniffed from a bounded sample unless the profile
 * pins it.  A format the profile does not expect is a reject.
 */
#ifndef WHARF_INSPECT_SNIFF_H
#define WHARF_INSPECT_SNIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "inspect/inspect.h"
#include "report.h"

/*
 * sample: the first bytes of the UTF-8 form; whole: the sample is the whole
 * part (its last line is complete).  Fills fmt, d (CSV) or *xml_root
 * (malloc'd, NULL when not found in the sample).  hint (may be NULL): the
 * schema's field names, which decide whether the first record is a header.
 * Returns 0, or 1 when the format does not match the profile (reason in rep
 * under `part`).
 */
int sniff_part(const struct profile *p, const struct header_hint *hint, const char *part,
               const unsigned char *sample, size_t len, bool whole, enum data_format *fmt,
               struct dialect *d, char **xml_root, struct report *rep);

#endif
