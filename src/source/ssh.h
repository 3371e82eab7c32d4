/*
 * ssh: one SSH connection to an SFTP server, up to (not including)
 * authentication, and the host-key pinning that guards it.  Used by the sftp
 * source and by `wharf trust`.
 *
 * The rule (DESIGN.md, security): the server's host key is checked against
 * known_hosts before any credential is sent.  ssh_connect only connects and
 * does the key exchange; ssh_verify_host says whether the offered key is the
 * pinned one; ssh_pin_host writes it into a known_hosts file.
 *
 * known_hosts files are OpenSSH's format ("[host]:port keytype base64"),
 * hashed names included; lines libssh2 cannot parse (comments, markers,
 * key types it does not know) are skipped when reading and kept verbatim
 * when pinning.
 */
#ifndef WHARF_SSH_H
#define WHARF_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* "SHA256:" + unpadded base64 of 32 bytes + NUL, as ssh-keygen -l prints. */
#define SSH_FP_LEN 52

struct ssh_conn {
    int sock;
    void *session; /* LIBSSH2_SESSION */
    char *host;
    int port;
    char *hostport; /* "host:port" for messages */
    /* the key the server offered */
    const char *key_type; /* "ssh-ed25519", ... (static) */
    int kh_type;          /* LIBSSH2_KNOWNHOST_KEY_* */
    unsigned char *key;
    size_t key_len;
    char fp[SSH_FP_LEN];
};

enum ssh_host_state { SSH_HOST_MATCH, SSH_HOST_UNKNOWN, SSH_HOST_CHANGED };

/* Connect (non-blocking connect bounded by timeout_ms), start the session,
 * do the key exchange.  When known_hosts names key types for this host, they
 * are preferred in the negotiation (as OpenSSH does), so a host with several
 * keys offers the pinned one.  Every later blocking call is bounded by
 * timeout_ms too.  Failures to reach the host are WERR_UNREACHABLE or
 * WERR_TIMEOUT (transient). */
int ssh_connect(struct ssh_conn *c, const char *host, int port, int64_t timeout_ms,
                const char *known_hosts, struct werr *e);
/* Compare the offered key with known_hosts (a missing file is empty).
 * CHANGED/UNKNOWN: expected is set to "<type> SHA256:..." of the pinned key
 * (CHANGED) or to "no entry" (UNKNOWN). */
int ssh_verify_host(struct ssh_conn *c, const char *known_hosts, enum ssh_host_state *state,
                    char *expected, size_t expected_size, struct werr *e);
/* ssh_verify_host and, unless MATCH, a refusal in e naming both fingerprints,
 * `wharf trust HOST:PORT` and the runbook.  WERR_HOSTKEY. */
int ssh_require_known(struct ssh_conn *c, const char *known_hosts, struct werr *e);
/* Pin the offered key for host:port in known_hosts: entries of the same key
 * type for this host are replaced, every other line is kept; written
 * durably (temp, fsync, rename). */
int ssh_pin_host(struct ssh_conn *c, const char *known_hosts, struct werr *e);
struct source_conf;
/*
 * The one way wharf logs in to an SFTP server, inbound (source/sftp.c) and
 * outbound (load/sftp_push.c): ssh_connect, ssh_require_known (the host key
 * decides before any credential leaves this process), keepalives every
 * 15 s, then sc's key_file (+ passphrase_file) or password_file (read from
 * their files, wiped after use, never logged), then the SFTP subsystem into
 * *sftp (a LIBSSH2_SFTP *).  Every message starts with label.  Refused
 * credentials are WERR_AUTH, a connection lost on the way unreachable or
 * timeout.  On failure c is disconnected and *sftp is NULL.
 */
int ssh_login_sftp(struct ssh_conn *c, const struct source_conf *sc, const char *known_hosts,
                   const char *label, void **sftp, struct werr *e);
/* The kind of a libssh2 error code (LIBSSH2_ERROR_*): timeouts, broken
 * connections, refused credentials, host-key failures. */
enum werr_kind ssh_kind(int libssh2_rc);
/* The kind of an SFTP status (LIBSSH2_FX_*) the server answered. */
enum werr_kind ssh_fx_kind(unsigned long status);
/* An SFTP status in words ("permission denied", "no such file"). */
const char *ssh_fx_text(unsigned long status);
/* The last libssh2 error as text. */
const char *ssh_errmsg(struct ssh_conn *c);
void ssh_disconnect(struct ssh_conn *c, const char *why);

/* SHA256 fingerprint of a key blob. */
void ssh_fingerprint(const unsigned char *key, size_t len, char fp[SSH_FP_LEN]);

#endif
