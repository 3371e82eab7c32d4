/*
 * inspect: what arrived.  Unpacks compression and archives into parts,
 * detects each part's encoding and normalises it to UTF-8, detects its
 * format (XML or CSV and its dialect).  Everything found is recorded as
 * evidence for the ledger, `wharf show` and bag-info.txt.
 *
 * inspect_run reads the original only; it never uses archive_write_disk.
 * Each part is written under parts_dir (created by inspect_run) with files
 * of its own opened O_NOFOLLOW|O_EXCL.
 *
 * Returns 0 when inspected (parts may still be individually rejected: see
 * part.rejected), 1 when the intake is rejected (reasons in rep), -1 on an
 * operational failure (e filled; its kind says whether a retry may help).
 */
#ifndef WHARF_INSPECT_H
#define WHARF_INSPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "report.h"
#include "util/err.h"
#include "util/sha256.h"

struct encoding_evidence {
    char method[16];   /* "bom", "utf-8", "detector", "declared", "ascii" */
    char charset[32];  /* IANA-ish name as iconv takes it: "UTF-8", "UTF-16LE", "WINDOWS-1252" */
    double confidence; /* 0..1; 1 for bom/declared/utf-8 */
    char note[256];    /* e.g. "ISO-8859-1 and WINDOWS-1252 agree on every byte present" */
};

struct dialect {
    char delimiter;
    char quote;
    bool header;
    char eol[5];  /* "CRLF", "LF", "CR" */
    bool sniffed; /* false when pinned by the profile */
    /* The first line was Excel's "sep=X" hint: X is the delimiter and the
     * line is not data (the validator skips it; line numbers still count it). */
    bool sep_line;
    const char *delimiter_from; /* "profile", "sep-line", "sniffed" (static) */
    const char *header_from;    /* "profile", "schema", "heuristic", "empty" (static) */
};

/*
 * What the feed's schema says a header looks like.  A first record whose
 * non-empty fields all name schema fields (and at least one does) is the
 * header, whatever the sniffing heuristics say.  NULL or n == 0: no schema.
 */
struct header_hint {
    const char *const *names;
    size_t n;
    bool case_insensitive;
};

struct part {
    char *name;      /* member name, or the original file name */
    char *raw_path;  /* decompressed bytes as sent */
    char *utf8_path; /* normalised UTF-8, BOM removed (may equal raw_path) */
    char raw_sha256[SHA256_HEX_LEN];
    char utf8_sha256[SHA256_HEX_LEN];
    uint64_t raw_bytes, utf8_bytes;
    char compression[16]; /* "none", "gzip", "bzip2", "xz", "zstd" (inside an archive member) */
    struct encoding_evidence encoding;
    enum data_format format; /* FORMAT_CSV or FORMAT_XML */
    struct dialect dialect;
    char *xml_root;
    bool rejected; /* only with archive_parts_independent */
};

struct inspection {
    char container[16];   /* "none", "zip", "tar" */
    char compression[16]; /* outer: "none", "gzip", "bzip2", "xz", "zstd" */
    struct part *parts;
    size_t n;
};

/* original_sha256: original's SHA-256 when the caller knows it (the take's),
 * else NULL (see unpack_run). */
int inspect_run(const struct profile *p, const struct header_hint *hint, const char *original,
                const char *original_sha256, const char *display_name, const char *parts_dir,
                struct inspection *out, struct report *rep, struct werr *e);
/* The evidence as JSON for ledger events and `wharf show`. */
json_t *inspection_json(const struct inspection *in);
void inspection_free(struct inspection *in);

#endif
