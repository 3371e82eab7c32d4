/*
 * sftp_push: put files onto a partner's SFTP server (receipts, and the
 * outbound deliveries of direction: outbound profiles).  The login is
 * ssh_login_sftp's (source/ssh.c), the inbound source's own: the host key
 * is checked against known_hosts before any credential is sent;
 * credentials are key_file (+ passphrase_file) or password_file, never
 * inline.
 */
#ifndef WHARF_SFTP_PUSH_H
#define WHARF_SFTP_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "source/ssh.h"
#include "util/err.h"

struct sftp_push {
    struct ssh_conn conn;
    void *sftp; /* LIBSSH2_SFTP */
    char *label;
};

/* Connect, verify the host key, authenticate, start SFTP. known_hosts: the
 * profile's or wharf.yaml's file. */
int sftp_push_open(struct sftp_push *sp, const struct source_conf *sc, const char *known_hosts,
                   struct werr *e);
/*
 * Put data as dir/name on the server:
 *   1. write ".<name>.part" in dir (created or truncated), close;
 *   2. stat it: the size must be len (a short write is never renamed);
 *   3. SSH_FXP_RENAME it to name.  The plain SFTP rename fails when name
 *      exists (OpenSSH does it with link(2)), which is what keeps a
 *      partner's file; posix-rename@openssh.com is deliberately not used,
 *      because it replaces one.
 * When name exists, its bytes decide: exactly ours (a delivery before a
 * crash) returns 0; anything else is the partner's, kept, and -1 (WERR_REMOTE).
 * 1 delivered, 0 already there, -1 error (connection failures transient).
 */
int sftp_push_put(struct sftp_push *sp, const char *dir, const char *name, const void *data,
                  size_t len, struct werr *e);
/*
 * Deliver the local file `local` (size bytes, sha256 sha) as dir/name,
 * streaming, with the same rules as sftp_push_put, and:
 *   - resume: a ".<name>.part" left by an interrupted upload is kept when its
 *     bytes are a prefix of ours (both hashed up to its size), and the upload
 *     continues from there; otherwise it is rewritten from the start;
 *   - done_file: after the rename, "<name>.done" holding "<size> <sha256>\n"
 *     (put the same way).
 * *resumed_at: the offset the upload continued from.  1 delivered, 0 the
 * final name already held exactly our bytes, -1 error.
 */
int sftp_push_file(struct sftp_push *sp, const char *dir, const char *name, const char *local,
                   uint64_t size, const char *sha, bool done_file, uint64_t *resumed_at,
                   struct werr *e);
/* 1 when dir/name exists on the server (whatever it is), 0 when it does
 * not, -1 error. */
int sftp_push_exists(struct sftp_push *sp, const char *dir, const char *name, struct werr *e);
/* 0 when dir is a directory on the server (`wharf check --connect`), else
 * -1 saying why. */
int sftp_push_check_dir(struct sftp_push *sp, const char *dir, struct werr *e);
void sftp_push_close(struct sftp_push *sp);

#endif
