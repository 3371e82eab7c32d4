/*
 * inspect: one intake's original into inspected parts (see inspect.h).
 *
 *   1. parts_dir is removed (inspect may be re-run after a crash; every
 *      file in it is ours) and made again by the first part file written
 *      (durable.h open_scratch): a plain file needs none;
 *   2. unpack.c expands compression and archives, scanning each member;
 *   3. per part, encoding.c decides the charset and writes the UTF-8 form,
 *      sniff.c tells XML from CSV and sniffs the dialect.
 *
 * Paths: for a plain uncompressed original, part.raw_path is the original
 * itself (never deleted by anyone); when that is already UTF-8 without a
 * BOM, part.utf8_path equals raw_path too, so an ordinary file costs one
 * read (hash and UTF-8 validation) and no copy.  Otherwise parts live in
 * parts_dir as NNNN.raw and NNNN.utf8.
 *
 * All-or-nothing by default: any refused part rejects the intake (1).  With
 * archive_parts_independent a bad part is marked rejected and the others
 * go on; the intake is rejected only when no part is left.  Limits and
 * corrupt streams always reject the whole intake.  On 1 the inspection
 * still holds what was found, as evidence.  The caller frees it.
 */
#include "inspect/inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/encoding.h"
#include "inspect/sniff.h"
#include "inspect/unpack.h"
#include "util/escape.h"
#include "util/durable.h"
#include "util/xmalloc.h"

/* Archives inside archives are not unpacked: say so instead of "binary". */
static const char *nested_archive(const unsigned char *p, size_t n)
{
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4))
        return "zip";
    if (n >= 262 && !memcmp(p + 257, "ustar", 5))
        return "tar";
    if (n >= 6 && !memcmp(p, "7z\xBC\xAF\x27\x1C", 6))
        return "7z";
    if (n >= 4 && !memcmp(p, "Rar!", 4))
        return "rar";
    return NULL;
}

/* Inspect one unpacked member into part.  0, 1 rejected, -1 failure. */
static int inspect_part(const struct profile *p, const struct header_hint *hint,
                        const char *parts_dir, size_t index, struct unpack_member *m,
                        struct part *pt, struct report *rep, struct werr *e)
{
    struct enc_result er;
    char *utf8_out = xasprintf("%s/%04zu.utf8", parts_dir, index);
    const char *kind;
    int r;

    memset(&er, 0, sizeof er);
    if ((kind = nested_archive(m->scan.sample, m->scan.sample_len)) != NULL) {
        report_add(rep, m->name, 0, 0, NULL, NULL, 0, "nested_archive",
                   "the part is itself a %s archive; archives inside archives are not unpacked",
                   kind);
        r = 1;
        goto out;
    }
    r = encoding_normalise_among(p->encoding, (const char *const *)p->encoding_auto,
                                 p->n_encoding_auto, m->name, m->raw_path, utf8_out, &m->scan, &er,
                                 rep, e);
    pt->encoding = er.ev;
    if (r != 0)
        goto out;
    if (er.copied) {
        pt->utf8_path = utf8_out;
        utf8_out = NULL;
        memcpy(pt->utf8_sha256, er.sha256, SHA256_HEX_LEN);
    } else {
        pt->utf8_path = xstrdup(m->raw_path);
        memcpy(pt->utf8_sha256, m->raw_sha256, SHA256_HEX_LEN);
    }
    pt->utf8_bytes = er.bytes;
    r = sniff_part(p, hint, m->name, er.sample, er.sample_len, er.bytes == er.sample_len,
                   &pt->format, &pt->dialect, &pt->xml_root, rep);
out:
    enc_result_free(&er);
    free(utf8_out);
    return r;
}

int inspect_run(const struct profile *p, const struct header_hint *hint, const char *original,
                const char *original_sha256, const char *display_name, const char *parts_dir,
                struct inspection *out, struct report *rep, struct werr *e)
{
    struct unpack u;
    size_t i, good = 0;
    int r = -1, ur;
    bool any_bad = false;

    memset(out, 0, sizeof *out);
    memset(&u, 0, sizeof u);
    if (!display_name)
        display_name = original;
    if (rmtree(parts_dir, e) < 0)
        goto out;
    ur = unpack_run(original, original_sha256, display_name, parts_dir, &p->limits,
                    p->archive_parts_independent, &u, rep, e);
    if (ur < 0)
        goto out;
    snprintf(out->container, sizeof out->container, "%s", u.container);
    snprintf(out->compression, sizeof out->compression, "%s", u.compression);
    out->parts = xcalloc(u.n ? u.n : 1, sizeof *out->parts);
    out->n = u.n;
    for (i = 0; i < u.n; i++) {
        struct unpack_member *m = &u.v[i];
        struct part *pt = &out->parts[i];
        int pr;
        pt->name = xstrdup(m->name);
        snprintf(pt->compression, sizeof pt->compression, "%s", m->compression);
        pt->format = p->format;
        if (m->raw_path) {
            pt->raw_path = xstrdup(m->raw_path);
            pt->raw_bytes = m->scan.bytes;
        }
        if (m->refused || ur == 1) {
            pt->rejected = m->refused;
            any_bad |= m->refused;
            continue;
        }
        memcpy(pt->raw_sha256, m->raw_sha256, SHA256_HEX_LEN);
        pr = inspect_part(p, hint, parts_dir, i + 1, m, pt, rep, e);
        if (pr < 0)
            goto out;
        if (pr == 1) {
            pt->rejected = true;
            any_bad = true;
        } else {
            good++;
        }
    }
    if (ur == 1 || good == 0 || (any_bad && !p->archive_parts_independent))
        r = 1;
    else
        r = 0;
out:
    unpack_free(&u);
    if (r < 0)
        inspection_free(out);
    return r;
}

static const char *format_name(enum data_format f)
{
    return f == FORMAT_XML ? "xml" : f == FORMAT_CSV ? "csv" : "auto";
}

/* A JSON string even when s is not UTF-8 (a zip member name in CP437). */
static json_t *jstr(const char *s)
{
    return esc_json(s ? s : "");
}

static json_t *part_json(const struct part *pt)
{
    json_t *o = json_object(), *enc = json_object();
    json_object_set_new(o, "name", jstr(pt->name));
    if (pt->raw_sha256[0]) {
        json_object_set_new(o, "raw_sha256", json_string(pt->raw_sha256));
        json_object_set_new(o, "raw_bytes", json_integer((json_int_t)pt->raw_bytes));
    }
    if (pt->utf8_sha256[0]) {
        json_object_set_new(o, "utf8_sha256", json_string(pt->utf8_sha256));
        json_object_set_new(o, "utf8_bytes", json_integer((json_int_t)pt->utf8_bytes));
    }
    json_object_set_new(o, "compression", json_string(pt->compression));
    if (pt->encoding.method[0]) {
        json_object_set_new(enc, "method", json_string(pt->encoding.method));
        json_object_set_new(enc, "charset", json_string(pt->encoding.charset));
        json_object_set_new(enc, "confidence", json_real(pt->encoding.confidence));
        json_object_set_new(enc, "note", jstr(pt->encoding.note));
    }
    json_object_set_new(o, "encoding", enc);
    json_object_set_new(o, "format", json_string(format_name(pt->format)));
    if (pt->format == FORMAT_CSV && pt->dialect.delimiter) {
        char d[2] = {pt->dialect.delimiter, 0}, q[2] = {pt->dialect.quote, 0};
        json_object_set_new(
            o, "dialect",
            json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:s}", "delimiter", d, "quote", q,
                      "header", pt->dialect.header, "eol", pt->dialect.eol, "sniffed",
                      pt->dialect.sniffed, "sep_line", pt->dialect.sep_line, "delimiter_from",
                      pt->dialect.delimiter_from ? pt->dialect.delimiter_from : "sniffed",
                      "header_from",
                      pt->dialect.header_from ? pt->dialect.header_from : "heuristic"));
    }
    if (pt->xml_root)
        json_object_set_new(o, "xml_root", jstr(pt->xml_root));
    json_object_set_new(o, "rejected", json_boolean(pt->rejected));
    return o;
}

json_t *inspection_json(const struct inspection *in)
{
    json_t *o = json_object(), *parts = json_array();
    size_t i;
    json_object_set_new(o, "container", json_string(in->container[0] ? in->container : "none"));
    json_object_set_new(o, "compression",
                        json_string(in->compression[0] ? in->compression : "none"));
    for (i = 0; i < in->n; i++)
        json_array_append_new(parts, part_json(&in->parts[i]));
    json_object_set_new(o, "parts", parts);
    return o;
}

void inspection_free(struct inspection *in)
{
    size_t i;
    for (i = 0; i < in->n; i++) {
        free(in->parts[i].name);
        free(in->parts[i].raw_path);
        free(in->parts[i].utf8_path);
        free(in->parts[i].xml_root);
    }
    free(in->parts);
    memset(in, 0, sizeof *in);
}
