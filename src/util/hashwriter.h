/*
 * hashwriter: write and hash on a second thread while the caller fills the
 * next buffer (a network download: decrypting on one core, SHA-256 and the
 * write(2) on the other).  Buffers are handed over in order, so the file and
 * the hash see exactly the bytes submitted, in submission order.
 *
 *   w = hashwriter_start(fd, &hash, size, 3);
 *   while (...) { buf = hashwriter_buffer(w); n = fill(buf, size); hashwriter_submit(w, buf, n); }
 *   hashwriter_finish(w);     // waits for the last write; -1 (errno) if any failed
 *
 * After a write error the remaining buffers are dropped and submit/finish
 * return -1 with that errno; what was written before stays in the file.
 *
 * hash may be NULL: the thread only writes, and the caller hashes each
 * buffer before it submits it (while its bytes are still in the caller's
 * cache: the SFTP fetch, see source/sftp.c).
 */
#ifndef WHARF_HASHWRITER_H
#define WHARF_HASHWRITER_H

#include <stddef.h>

#include "util/sha256.h"

struct hashwriter;

struct hashwriter *hashwriter_start(int fd, struct sha256 *hash, size_t bufsize, int nbufs);
/* A free buffer of bufsize bytes (blocks until one is). */
void *hashwriter_buffer(struct hashwriter *w);
/* Queue a filled buffer (len may be 0: the buffer is simply returned). */
int hashwriter_submit(struct hashwriter *w, void *buf, size_t len);
/* Wait for every queued write, stop the thread, free w. */
int hashwriter_finish(struct hashwriter *w);

#endif
