/*
 * ssh: connect, key exchange and host-key pinning over libssh2 (see ssh.h).
 *
 * Owns the socket and the LIBSSH2_SESSION of a struct ssh_conn until
 * ssh_disconnect.  What can fail: name resolution and connect
 * (WERR_UNREACHABLE / WERR_TIMEOUT), the key exchange (same), reading
 * known_hosts or a host key that is not the pinned one (WERR_HOSTKEY).
 * ssh_kind and ssh_fx_kind map libssh2's and SFTP's status codes to kinds.
 */
#include "source/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/durable.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define KH_MAX_LINE     16384
#define KH_MAX_LINES    100000
#define SSH_MAX_SECRET  4096
#define SSH_KEEPALIVE_S 15

static const struct keytype {
    int hostkey_type;   /* LIBSSH2_HOSTKEY_TYPE_* */
    int kh_type;        /* LIBSSH2_KNOWNHOST_KEY_* */
    const char *name;   /* as in known_hosts */
    const char *method; /* LIBSSH2_METHOD_HOSTKEY names */
} keytypes[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519", "ssh-ed25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256",
     "ecdsa-sha2-nistp256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384",
     "ecdsa-sha2-nistp384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521",
     "ecdsa-sha2-nistp521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa",
     "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss", "ssh-dss"},
};
#define N_KEYTYPES (sizeof keytypes / sizeof keytypes[0])

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void lib_init(void)
{
    init_rc = libssh2_init(0);
}

static const struct keytype *keytype_by_kh(int kh)
{
    for (size_t i = 0; i < N_KEYTYPES; i++)
        if (keytypes[i].kh_type == (kh & LIBSSH2_KNOWNHOST_KEY_MASK))
            return &keytypes[i];
    return NULL;
}

void ssh_fingerprint(const unsigned char *key, size_t len, char fp[SSH_FP_LEN])
{
    unsigned char md[32];
    unsigned char b64[48];
    unsigned int n = 0;
    int m;
    EVP_Digest(key, len, md, &n, EVP_sha256(), NULL);
    m = EVP_EncodeBlock(b64, md, 32);
    while (m > 0 && b64[m - 1] == '=')
        m--;
    snprintf(fp, SSH_FP_LEN, "SHA256:%.*s", m, (const char *)b64);
}

/* Fingerprint of a base64 key as stored in known_hosts. */
static void fingerprint_b64(const char *b64, char fp[SSH_FP_LEN])
{
    size_t len = strlen(b64);
    unsigned char *raw = xmalloc(len + 4);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0) {
        snprintf(fp, SSH_FP_LEN, "SHA256:(unreadable key)");
    } else {
        while (len > 0 && b64[len - 1] == '=') {
            len--;
            n--;
        }
        ssh_fingerprint(raw, (size_t)n, fp);
    }
    free(raw);
}

enum werr_kind ssh_kind(int rc)
{
    switch (rc) {
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        return WERR_TIMEOUT;
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_EAGAIN:
    case LIBSSH2_ERROR_KEX_FAILURE:
    case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
    case LIBSSH2_ERROR_DECRYPT:
    case LIBSSH2_ERROR_INVALID_MAC:
    case LIBSSH2_ERROR_PROTO:
    case LIBSSH2_ERROR_CHANNEL_CLOSED:
    case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
    case LIBSSH2_ERROR_CHANNEL_FAILURE:
    case LIBSSH2_ERROR_CHANNEL_OUTOFORDER:
    case LIBSSH2_ERROR_CHANNEL_UNKNOWN:
    case LIBSSH2_ERROR_CHANNEL_WINDOW_EXCEEDED:
    case LIBSSH2_ERROR_CHANNEL_PACKET_EXCEEDED:
        return WERR_UNREACHABLE;
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
    case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
    case LIBSSH2_ERROR_PASSWORD_EXPIRED:
    case LIBSSH2_ERROR_FILE:
    case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
        return WERR_AUTH;
    case LIBSSH2_ERROR_HOSTKEY_INIT:
    case LIBSSH2_ERROR_HOSTKEY_SIGN:
    case LIBSSH2_ERROR_KNOWN_HOSTS:
        return WERR_HOSTKEY;
    case LIBSSH2_ERROR_ALLOC:
        return WERR_BUSY;
    default:
        return WERR_OTHER;
    }
}

enum werr_kind ssh_fx_kind(unsigned long status)
{
    switch (status) {
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return WERR_NOSPACE;
    case LIBSSH2_FX_NO_CONNECTION:
    case LIBSSH2_FX_CONNECTION_LOST:
        return WERR_UNREACHABLE;
    case LIBSSH2_FX_BAD_MESSAGE:
        return WERR_HOSTILE;
    default: /* no such file, permission denied, failure, ... */
        return WERR_REMOTE;
    }
}

const char *ssh_errmsg(struct ssh_conn *c)
{
    char *msg = NULL;
    if (!c->session)
        return "no session";
    libssh2_session_last_error(c->session, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown error";
}

/* Read known_hosts into a libssh2 collection, skipping lines it cannot
 * parse.  A missing file is an empty collection. */
static LIBSSH2_KNOWNHOSTS *kh_load(LIBSSH2_SESSION *sess, const char *path, struct werr *e)
{
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(sess);
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0;
    if (!kh) {
        werr_set(e, "known_hosts: cannot allocate");
        return NULL;
    }
    if (!path)
        return kh;
    f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return kh;
        werr_sys(e, "known_hosts %s", path);
        libssh2_knownhost_free(kh);
        return NULL;
    }
    while ((n = getline(&line, &cap, f)) > 0 && lines++ < KH_MAX_LINES) {
        if (n > KH_MAX_LINE)
            continue;
        libssh2_knownhost_readline(kh, line, (size_t)n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    free(line);
    fclose(f);
    return kh;
}

/* Key types pinned for host:port in kh, as LIBSSH2_KNOWNHOST_KEY_* bits. */
static int kh_check(LIBSSH2_KNOWNHOSTS *kh, const struct ssh_conn *c, const unsigned char *key,
                    size_t len, int kh_type, struct libssh2_knownhost **found)
{
    return libssh2_knownhost_checkp(
        kh, c->host, c->port, (const char *)key, len,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kh_type, found);
}

/* Is name an element of the comma list list? */
static bool in_list(const char *list, const char *name)
{
    size_t l = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == 0))
            return true;
    return false;
}

/* Set the preference for one method type: the names in first (a comma
 * list) that libssh2 supports, then every other method it supports in its
 * own order.  A preference, not a restriction: whatever the server insists
 * on among libssh2's methods is still accepted.  Best effort: a failure
 * keeps libssh2's default order. */
static void prefer_methods(LIBSSH2_SESSION *sess, int type, const char *first)
{
    const char **algs = NULL;
    char pref[1024] = "", name[128];
    size_t used = 0;
    int n = libssh2_session_supported_algs(sess, type, &algs);
    if (n <= 0)
        return;
    for (const char *p = first; *p;) {
        size_t l = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)l, p);
        p += l + (p[l] == ',');
        for (int i = 0; i < n; i++)
            if (!strcmp(algs[i], name) && !in_list(pref, name) && used + l + 2 < sizeof pref)
                used += (size_t)snprintf(pref + used, sizeof pref - used, "%s%s", used ? "," : "",
                                         name);
    }
    for (int i = 0; i < n; i++) {
        size_t l = strlen(algs[i]);
        if (!in_list(pref, algs[i]) && used + l + 2 < sizeof pref)
            used +=
                (size_t)snprintf(pref + used, sizeof pref - used, "%s%s", used ? "," : "", algs[i]);
    }
    libssh2_free(sess, algs);
    if (used)
        libssh2_session_method_pref(sess, type, pref);
}

/* Put the key types known_hosts has for this host first in the host-key
 * negotiation. */
static void prefer_known_types(struct ssh_conn *c, const char *known_hosts)
{
    struct werr e;
    LIBSSH2_KNOWNHOSTS *kh = kh_load(c->session, known_hosts, &e);
    char pref[512] = "";
    size_t used = 0;
    if (!kh)
        return;
    for (size_t k = 0; k < N_KEYTYPES; k++) {
        struct libssh2_knownhost *found = NULL;
        int r = kh_check(kh, c, (const unsigned char *)"x", 1, keytypes[k].kh_type, &found);
        if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH || r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
            used += (size_t)snprintf(pref + used, sizeof pref - used, "%s%s", used ? "," : "",
                                     keytypes[k].method);
    }
    libssh2_knownhost_free(kh);
    if (used)
        prefer_methods(c->session, LIBSSH2_METHOD_HOSTKEY, pref);
}

/* The transport's cipher and MAC, cheapest first for libssh2 1.10, as
 * measured by bench/run B3 (client CPU for 500 MB over loopback; the
 * cipher is called once per 16-byte block, so the rounds matter less than
 * the calls): aes128-ctr 1.01 s, aes192-ctr 1.04, aes256-ctr 1.05;
 * hmac-sha2-256 1.03 s, hmac-sha1 1.03, hmac-sha2-512 1.40.  SHA-1 comes
 * last all the same, as in OpenSSH's own order: it is no faster than
 * hmac-sha2-256, which every server that offers it also offers.  This
 * libssh2 has neither AES-GCM, chacha20-poly1305 nor the -etm MACs. */
#define SSH_PREF_CRYPT "aes128-ctr,aes192-ctr,aes256-ctr"
#define SSH_PREF_MAC   "hmac-sha2-256,hmac-sha2-512,hmac-sha1"

static void prefer_fast_transport(LIBSSH2_SESSION *sess)
{
    prefer_methods(sess, LIBSSH2_METHOD_CRYPT_CS, SSH_PREF_CRYPT);
    prefer_methods(sess, LIBSSH2_METHOD_CRYPT_SC, SSH_PREF_CRYPT);
    prefer_methods(sess, LIBSSH2_METHOD_MAC_CS, SSH_PREF_MAC);
    prefer_methods(sess, LIBSSH2_METHOD_MAC_SC, SSH_PREF_MAC);
}

static int tcp_connect(struct ssh_conn *c, int64_t timeout_ms, struct werr *e)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char port[16];
    int rc, fd = -1, err = 0;
    int64_t deadline = now_ms() + timeout_ms;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", c->port);
    rc = getaddrinfo(c->host, port, &hints, &res);
    if (rc != 0) {
        werr_setk(e, WERR_UNREACHABLE, "%s: cannot resolve: %s", c->hostport, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        socklen_t sl = sizeof err;
        int64_t left;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            err = errno;
            goto next;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        do {
            left = deadline - now_ms();
            rc = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            err = ETIMEDOUT;
            goto next;
        }
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0) {
            err = errno;
            goto next;
        }
        if (err)
            goto next;
        break;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err ? err : ECONNREFUSED;
        werr_sysk(e, err == ETIMEDOUT ? WERR_TIMEOUT : WERR_UNREACHABLE, "%s: connect",
                  c->hostport);
        return -1;
    }
    /* libssh2 runs blocking, bounded by libssh2_session_set_timeout. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    rc = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &rc, sizeof rc);
    c->sock = fd;
    return 0;
}

int ssh_connect(struct ssh_conn *c, const char *host, int port, int64_t timeout_ms,
                const char *known_hosts, struct werr *e)
{
    const char *key;
    size_t len = 0;
    int type = 0, rc;
    memset(c, 0, sizeof *c);
    c->sock = -1;
    c->host = xstrdup(host);
    c->port = port > 0 ? port : 22;
    c->hostport =
        strchr(host, ':') ? xasprintf("[%s]:%d", host, c->port) : xasprintf("%s:%d", host, c->port);
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    pthread_once(&init_once, lib_init);
    if (init_rc != 0) {
        werr_set(e, "libssh2_init failed");
        goto fail;
    }
    if (tcp_connect(c, timeout_ms, e) < 0)
        goto fail;
    c->session = libssh2_session_init();
    if (!c->session) {
        werr_set(e, "%s: cannot create an SSH session", c->hostport);
        goto fail;
    }
    libssh2_session_set_blocking(c->session, 1);
    libssh2_session_set_timeout(c->session, (long)timeout_ms);
    prefer_known_types(c, known_hosts);
    prefer_fast_transport(c->session);
    if ((rc = libssh2_session_handshake(c->session, c->sock)) != 0) {
        /* whatever libssh2 says, a failed key exchange is a host that
         * does not (yet) speak SSH to us: retry */
        enum werr_kind k = ssh_kind(rc);
        werr_setk(e, k == WERR_TIMEOUT ? k : WERR_UNREACHABLE, "%s: SSH handshake failed: %s",
                  c->hostport, ssh_errmsg(c));
        goto fail;
    }
    key = libssh2_session_hostkey(c->session, &len, &type);
    if (!key || !len) {
        werr_setk(e, WERR_HOSTKEY, "%s: the server offered no host key", c->hostport);
        goto fail;
    }
    for (size_t i = 0; i < N_KEYTYPES; i++)
        if (keytypes[i].hostkey_type == type) {
            c->key_type = keytypes[i].name;
            c->kh_type = keytypes[i].kh_type;
        }
    if (!c->key_type) {
        werr_setk(e, WERR_HOSTKEY, "%s: host key of an unknown type %d", c->hostport, type);
        goto fail;
    }
    c->key = xmalloc(len);
    memcpy(c->key, key, len);
    c->key_len = len;
    ssh_fingerprint(c->key, len, c->fp);
    return 0;
fail:
    ssh_disconnect(c, "connect failed");
    return -1;
}

int ssh_verify_host(struct ssh_conn *c, const char *known_hosts, enum ssh_host_state *state,
                    char *expected, size_t expected_size, struct werr *e)
{
    LIBSSH2_KNOWNHOSTS *kh = kh_load(c->session, known_hosts, e);
    struct libssh2_knownhost *found = NULL;
    char fp[SSH_FP_LEN];
    int r;
    if (!kh)
        return -1;
    snprintf(expected, expected_size, "no entry");
    r = kh_check(kh, c, c->key, c->key_len, c->kh_type, &found);
    if (r == LIBSSH2_KNOWNHOST_CHECK_FAILURE) {
        werr_setk(e, WERR_HOSTKEY, "known_hosts %s: check failed: %s", known_hosts, ssh_errmsg(c));
        libssh2_knownhost_free(kh);
        return -1;
    }
    if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        *state = SSH_HOST_MATCH;
    } else if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && found && found->key) {
        *state = SSH_HOST_CHANGED;
        fingerprint_b64(found->key, fp);
        snprintf(expected, expected_size, "%s %s", c->key_type, fp);
    } else {
        /* No entry of the offered type; one of another type is a change
         * too (the server no longer offers the pinned key). */
        *state = SSH_HOST_UNKNOWN;
        for (size_t k = 0; k < N_KEYTYPES; k++) {
            found = NULL;
            r = kh_check(kh, c, (const unsigned char *)"x", 1, keytypes[k].kh_type, &found);
            if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && found && found->key) {
                const struct keytype *t = keytype_by_kh(found->typemask);
                *state = SSH_HOST_CHANGED;
                fingerprint_b64(found->key, fp);
                snprintf(expected, expected_size, "%s %s", t ? t->name : "?", fp);
                break;
            }
        }
    }
    libssh2_knownhost_free(kh);
    return 0;
}

int ssh_require_known(struct ssh_conn *c, const char *known_hosts, struct werr *e)
{
    enum ssh_host_state st;
    char expected[128];
    const char *trust_host = c->hostport;
    if (!known_hosts) {
        werr_setk(e, WERR_HOSTKEY,
                  "host key for %s (%s %s) REFUSED: no known_hosts file is configured "
                  "(source.known_hosts or known_hosts in wharf.yaml); pin it with "
                  "`wharf trust %s` (see runbooks/host-key-changed.md)",
                  c->hostport, c->key_type, c->fp, trust_host);
        return -1;
    }
    if (ssh_verify_host(c, known_hosts, &st, expected, sizeof expected, e) < 0) {
        /* known_hosts unreadable: the key cannot be verified */
        werr_setkind(e, WERR_HOSTKEY);
        return -1;
    }
    if (st == SSH_HOST_MATCH)
        return 0;
    if (st == SSH_HOST_UNKNOWN)
        werr_setk(e, WERR_HOSTKEY,
                  "host key for %s is unknown, REFUSED (expected: no entry in %s; offered: %s "
                  "%s); if this is the right server, pin its key with `wharf trust %s` "
                  "(see runbooks/host-key-changed.md)",
                  c->hostport, known_hosts, c->key_type, c->fp, trust_host);
    else
        werr_setk(e, WERR_HOSTKEY,
                  "host key for %s does not match known_hosts, REFUSED: it CHANGED (expected: %s "
                  "from %s; offered: %s %s); someone may be intercepting the connection; "
                  "no credential was sent; "
                  "read runbooks/host-key-changed.md before running `wharf trust %s`",
                  c->hostport, expected, known_hosts, c->key_type, c->fp, trust_host);
    return -1;
}

/* The host field of a new known_hosts line, in OpenSSH's convention. */
static char *kh_hostname(const struct ssh_conn *c)
{
    if (c->port == 22)
        return xstrdup(c->host);
    return xasprintf("[%s]:%d", c->host, c->port);
}

/* Is this known_hosts line an entry of the offered key's type for our host? */
static bool line_is_ours(struct ssh_conn *c, const char *line, size_t len, const char *hostname)
{
    LIBSSH2_KNOWNHOSTS *one = libssh2_knownhost_init(c->session);
    struct libssh2_knownhost *found = NULL;
    bool ours = false;
    int r;
    if (!one)
        return false;
    if (libssh2_knownhost_readline(one, line, len, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0) {
        r = kh_check(one, c, c->key, c->key_len, c->kh_type, &found);
        if ((r == LIBSSH2_KNOWNHOST_CHECK_MATCH || r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) &&
            found && (!found->name || strcmp(found->name, hostname) == 0))
            ours = true;
    }
    libssh2_knownhost_free(one);
    return ours;
}

int ssh_pin_host(struct ssh_conn *c, const char *known_hosts, struct werr *e)
{
    LIBSSH2_KNOWNHOSTS *kh = NULL;
    struct libssh2_knownhost *entry = NULL;
    char *hostname = kh_hostname(c), *dir = NULL, *line = NULL, *out = NULL;
    char comment[64], stamp[32];
    size_t cap = 0, used = 0, outcap = 0, wl = 0;
    ssize_t n;
    FILE *f = NULL;
    int r = -1, lines = 0;
    char newline[KH_MAX_LINE];

    kh = libssh2_knownhost_init(c->session);
    if (!kh) {
        werr_set(e, "known_hosts: cannot allocate");
        goto out;
    }
    format_time_ms(now_ms(), stamp);
    snprintf(comment, sizeof comment, "pinned by wharf trust %.10s", stamp);
    if (libssh2_knownhost_addc(
            kh, hostname, NULL, (const char *)c->key, c->key_len, comment, strlen(comment),
            LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | c->kh_type,
            &entry) != 0 ||
        libssh2_knownhost_writeline(kh, entry, newline, sizeof newline, &wl,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
        werr_set(e, "known_hosts: cannot format an entry: %s", ssh_errmsg(c));
        goto out;
    }
    f = fopen(known_hosts, "re");
    if (!f && errno != ENOENT) {
        werr_sys(e, "known_hosts %s", known_hosts);
        goto out;
    }
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (++lines > KH_MAX_LINES) {
            werr_set(e, "known_hosts %s: more than %d lines", known_hosts, KH_MAX_LINES);
            goto out;
        }
        if (line_is_ours(c, line, (size_t)n, hostname))
            continue;
        if (used + (size_t)n + 2 > outcap) {
            outcap = (used + (size_t)n + 2) * 2;
            out = xrealloc(out, outcap);
        }
        memcpy(out + used, line, (size_t)n);
        used += (size_t)n;
        if (out[used - 1] != '\n')
            out[used++] = '\n';
    }
    if (used + wl + 1 > outcap) {
        outcap = used + wl + 1;
        out = xrealloc(out, outcap);
    }
    memcpy(out + used, newline, wl);
    used += wl;
    dir = xstrdup(known_hosts);
    if (mkdirs(dirname(dir), 0755, e) < 0)
        goto out;
    r = durable_write(known_hosts, out, used, e);
out:
    if (f)
        fclose(f);
    if (kh)
        libssh2_knownhost_free(kh);
    free(hostname);
    free(dir);
    free(line);
    free(out);
    return r;
}

const char *ssh_fx_text(unsigned long code)
{
    switch (code) {
    case LIBSSH2_FX_OK:
        return "ok";
    case LIBSSH2_FX_EOF:
        return "end of file";
    case LIBSSH2_FX_NO_SUCH_FILE:
        return "no such file";
    case LIBSSH2_FX_PERMISSION_DENIED:
        return "permission denied";
    case LIBSSH2_FX_FAILURE:
        return "failure";
    case LIBSSH2_FX_BAD_MESSAGE:
        return "bad message";
    case LIBSSH2_FX_OP_UNSUPPORTED:
        return "operation unsupported";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return "file already exists";
    case LIBSSH2_FX_WRITE_PROTECT:
        return "write protected";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        return "no space on the server's file system";
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return "quota exceeded";
    case LIBSSH2_FX_NO_SUCH_PATH:
        return "no such path";
    default:
        return "server error";
    }
}

/* ---- logging in (sources and deliveries alike) ---------------------- */

static int read_secret(const char *path, char *buf, size_t size, struct werr *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t used = 0;
    ssize_t n;
    if (fd < 0) {
        werr_sys(e, "cannot read %s", path);
        return -1;
    }
    while (used < size - 1 && (n = read(fd, buf + used, size - 1 - used)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            werr_sys(e, "cannot read %s", path);
            close(fd);
            return -1;
        }
        used += (size_t)n;
    }
    close(fd);
    while (used && (buf[used - 1] == '\n' || buf[used - 1] == '\r'))
        used--;
    buf[used] = 0;
    return 0;
}

/* Did this libssh2 error break the connection (rather than refuse us)? */
static bool conn_error(int rc)
{
    enum werr_kind k = ssh_kind(rc);
    return k == WERR_UNREACHABLE || k == WERR_TIMEOUT;
}

/* Is key_file an RSA key?  From its .pub when there is one, else from a
 * PEM header ("BEGIN RSA PRIVATE KEY"). */
static bool key_is_rsa(const char *key_file)
{
    char *pub = xasprintf("%s.pub", key_file), head[64] = "";
    FILE *f = fopen(pub, "re");
    bool rsa = false;
    if (f) {
        rsa = fgets(head, sizeof head, f) && !strncmp(head, "ssh-rsa ", 8);
        fclose(f);
    } else if ((f = fopen(key_file, "re"))) {
        rsa = fgets(head, sizeof head, f) && strstr(head, "BEGIN RSA PRIVATE KEY");
        fclose(f);
    }
    free(pub);
    return rsa;
}

/* Authenticate with key_file (+ passphrase_file) or password_file. */
static int authenticate(struct ssh_conn *c, const struct source_conf *sc, const char *label,
                        struct werr *e)
{
    LIBSSH2_SESSION *ss = c->session;
    unsigned ulen = (unsigned)strlen(sc->user);
    char secret[SSH_MAX_SECRET];
    int rc, r = -1;

    secret[0] = 0;
    if (sc->key_file) {
        if (access(sc->key_file, R_OK) < 0) {
            werr_sysk(e, WERR_AUTH, "%s: key_file %s", label, sc->key_file);
            goto out;
        }
        if (sc->passphrase_file && read_secret(sc->passphrase_file, secret, sizeof secret, e) < 0) {
            werr_prefix(e, "%s: passphrase_file", label);
            werr_setkind(e, WERR_AUTH);
            goto out;
        }
        rc = libssh2_userauth_publickey_fromfile_ex(ss, sc->user, ulen, NULL, sc->key_file,
                                                    sc->passphrase_file ? secret : NULL);
        if (rc == LIBSSH2_ERROR_FILE) {
            werr_setk(e, WERR_AUTH,
                      "%s: cannot use key_file %s: %s (wrong passphrase%s, or a key format "
                      "libssh2 cannot read)",
                      label, sc->key_file, ssh_errmsg(c),
                      sc->passphrase_file ? " in passphrase_file" : " or no passphrase_file");
            goto out;
        }
        if (rc != 0) {
            if (conn_error(rc)) {
                werr_setk(e, ssh_kind(rc), "%s: connection lost during authentication: %s", label,
                          ssh_errmsg(c));
            } else {
                werr_setk(e, WERR_AUTH,
                          "%s: authentication FAILED: the server refused key_file %s for user "
                          "%s (is its public key in the account's authorized_keys?%s): %s",
                          label, sc->key_file, sc->user,
                          key_is_rsa(sc->key_file)
                              ? " It is an RSA key: libssh2 " LIBSSH2_VERSION
                                " signs those with ssh-rsa (SHA-1), which OpenSSH 8.8 and "
                                "later refuse unless PubkeyAcceptedAlgorithms has +ssh-rsa; "
                                "prefer an ed25519 or ECDSA key"
                              : "",
                          ssh_errmsg(c));
            }
            goto out;
        }
    } else if (sc->password_file) {
        if (read_secret(sc->password_file, secret, sizeof secret, e) < 0) {
            werr_prefix(e, "%s: password_file", label);
            werr_setkind(e, WERR_AUTH);
            goto out;
        }
        rc = libssh2_userauth_password_ex(ss, sc->user, ulen, secret, (unsigned)strlen(secret),
                                          NULL);
        if (rc != 0) {
            if (conn_error(rc)) {
                werr_setk(e, ssh_kind(rc), "%s: connection lost during authentication: %s", label,
                          ssh_errmsg(c));
            } else {
                werr_setk(e, WERR_AUTH,
                          "%s: authentication FAILED: the server refused the password from "
                          "password_file %s for user %s: %s",
                          label, sc->password_file, sc->user, ssh_errmsg(c));
            }
            goto out;
        }
    } else {
        werr_setk(e, WERR_AUTH, "%s: no credentials: set source.key_file or source.password_file",
                  label);
        goto out;
    }
    r = 0;
out:
    explicit_bzero(secret, sizeof secret);
    return r;
}

int ssh_login_sftp(struct ssh_conn *c, const struct source_conf *sc, const char *known_hosts,
                   const char *label, void **sftp, struct werr *e)
{
    *sftp = NULL;
    if (ssh_connect(c, sc->host, sc->port, sc->timeout_ms, known_hosts, e) < 0)
        goto fail;
    /* The host key decides before any credential leaves this process. */
    if (ssh_require_known(c, known_hosts, e) < 0)
        goto fail;
    libssh2_keepalive_config(c->session, 1, SSH_KEEPALIVE_S);
    if (authenticate(c, sc, label, e) < 0)
        goto fail;
    if (!(*sftp = libssh2_sftp_init(c->session))) {
        int rc = libssh2_session_last_errno(c->session);
        werr_setk(e, conn_error(rc) ? ssh_kind(rc) : WERR_REMOTE,
                  "%s: cannot start the SFTP subsystem: %s", label, ssh_errmsg(c));
        goto fail;
    }
    return 0;
fail:
    if (strncmp(e->msg, label, strlen(label)) != 0)
        werr_prefix(e, "%s", label);
    ssh_disconnect(c, "failed");
    return -1;
}

void ssh_disconnect(struct ssh_conn *c, const char *why)
{
    if (c->session) {
        if (c->sock >= 0)
            libssh2_session_disconnect(c->session, why ? why : "bye");
        libssh2_session_free(c->session);
    }
    if (c->sock >= 0)
        close(c->sock);
    free(c->host);
    free(c->hostport);
    free(c->key);
    memset(c, 0, sizeof *c);
    c->sock = -1;
}
