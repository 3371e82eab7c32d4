/*
 * bag: a sealed intake on disk, a BagIt (RFC 8493) directory:
 *
 *   <dir>/bagit.txt               BagIt-Version: 1.0 / Tag-File-Character-Encoding: UTF-8
 *   <dir>/bag-info.txt            Bagging-Date, Payload-Oxum, External-Identifier, Wharf-*
 *   <dir>/data/<original name>    the original bytes, as received
 *   <dir>/manifest-sha256.txt     "<sha256>  data/<name>" per payload file
 *   <dir>/report.json, report.txt (rejects; tag files)
 *   <dir>/tagmanifest-sha256.txt  sha256 of every tag file above
 *
 * bag_seal builds the bag in a temp directory beside dir, fsyncs every file
 * and directory, and renames it into place: a bag either exists whole or
 * not at all.  It is idempotent: when dir already exists (a crash after the
 * rename, before the ledger knew), it is verified and its tag manifest hash
 * returned.
 */
#ifndef WHARF_BAG_H
#define WHARF_BAG_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"
#include "util/err.h"
#include "util/sha256.h"

struct bag_file {
    const char *name;     /* "data/orders.csv" (payload) or "report.json" (tag file) */
    const char *src_path; /* copy from this file, or */
    const char *content;  /* write this literal content */
    size_t len;
    /* With src_path: its SHA-256, known because the caller wrote and fsynced
     * that file itself.  The bag then hard-links it instead of copying (no
     * second copy of a large original; falls back to copying across
     * filesystems). */
    const char *sha256;
};

struct bag_kv {
    const char *key;   /* "Wharf-Profile" */
    const char *value; /* any bytes: bag_seal writes it escaped (esc_tag) */
};

int bag_seal(const char *dir, const struct bag_file *files, size_t n, const struct bag_kv *info,
             size_t n_info, char tagmanifest_sha[SHA256_HEX_LEN], struct werr *e);
/* bag_seal in two steps, for a caller that holds a lock only for what
 * depends on it (the chain head in bag-info.txt): bag_stage builds and
 * fsyncs, in the temp dir, everything but the content of bag-info.txt and
 * tagmanifest-sha256.txt (created empty) -- NULL with e on failure.
 * Its temp dir is "<dir>.tmp-<owner>" when owner is given (letters,
 * digits, '.', '_', '-'; a leftover of that name, from an attempt killed
 * before it finished, is removed first: one owner never stages a bag
 * twice at once), else a fresh mkdtemp name;
 * bag_finish writes those two and puts the bag in place, as bag_seal's
 * last steps (an existing dir is verified, as there); bag_stage_free
 * releases the stage and removes its temp dir unless it was renamed into
 * place. */
struct bag_stage;
struct bag_stage *bag_stage(const char *dir, const char *owner, const struct bag_file *files,
                            size_t n, struct werr *e);
int bag_finish(struct bag_stage *s, const struct bag_kv *info, size_t n_info,
               char tagmanifest_sha[SHA256_HEX_LEN], struct werr *e);
void bag_stage_free(struct bag_stage *s);
/* Re-hash every file against both manifests, check Payload-Oxum and that no
 * payload file is missing or unlisted.  0: intact, 1: problems added to rep,
 * -1: could not check (e). tagmanifest_sha receives the tag manifest's hash. */
int bag_verify(const char *dir, char tagmanifest_sha[SHA256_HEX_LEN], struct report *rep,
               struct werr *e);
/* The value of one bag-info.txt key (first occurrence) into out, as the
 * file holds it (tag form, see esc_tag in util/escape.h; folded lines
 * joined per RFC 8493 2.2.2, lines of any length); 0 found, -1 absent or
 * unreadable. */
int bag_info_get(const char *dir, const char *key, char *out, size_t size);
/* BagIt path encoding of a file name for manifests: %, CR, LF percent-encoded. */
char *bag_encode_path(const char *name);

#endif
