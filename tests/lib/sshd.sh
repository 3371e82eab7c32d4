#!/usr/bin/env bash
# sshd.sh: a real OpenSSH sshd on loopback for wharf's SFTP tests (the same
# idea as curl's sshserver.pl and OpenSSH's regress/test-exec.sh).
#
# Source it and call the functions, or run it as a command:
#
#   . tests/lib/sshd.sh
#   sshd_setup DIR        # once: keys, chroot, config (DIR must be chroot-safe,
#                         #   see below; sshd_mkdir makes one)
#   sshd_start DIR        # start (or restart, same port and keys)
#   sshd_kill_sessions DIR # kill -9 every live session process (not the listener)
#   sshd_stop DIR         # stop listener and sessions
#   sshd_cleanup DIR      # stop and remove DIR
#
#   sshd_os_prereqs       # /run/sshd and the sshd user (setup and start call it)
#
#   bash tests/lib/sshd.sh mkdir|prereqs|setup|start|stop|kill-sessions|cleanup DIR
#
# After sshd_start, DIR/sshd.env holds (and the sourcing shell gets exported):
#   SSHD_PORT SSHD_PID SSHD_LOG SSHD_DIR SSHD_USER SSHD_CHROOT SSHD_UPLOAD
#   SSHD_KNOWN_HOSTS          known_hosts with the server's host key pinned
#   SSHD_KEY_ED25519 SSHD_KEY_ECDSA SSHD_KEY_RSA   authorized client keys
#   SSHD_KEY_PASS SSHD_PASSPHRASE_FILE            ed25519 key with a passphrase
#   SSHD_KEY_WRONG            a key that is NOT authorized
#   SSHD_PASSWORD_FILE        the partner's password (password auth)
#   SSHD_HOST_PUB             the server's host public key
#
# SSHD_MAX_STARTUPS (at start, default 100:30:200) is sshd's MaxStartups: "1"
# refuses a connection while another one is still authenticating.
# SSHD_ALLOW_SSH_RSA=1 (at start) accepts ssh-rsa (SHA-1) signatures, which
# OpenSSH 8.8+ refuses by default and libssh2 1.10 still makes for RSA keys.
#
# What it does to the machine (it must run as root):
#   - creates what OpenSSH expects the OS (or an earlier run of the ssh
#     service) to provide, and never relies on either: the privilege
#     separation directory /run/sshd (root-owned, mode 0755; /run is a tmpfs,
#     so a fresh boot has none) and the unprivileged user sshd;
#   - creates the system user wharftest-partner (no login shell, home /upload)
#     if missing, and sets its password to the machine's one random test
#     password ($SSHD_BASE/partner-password, copied into DIR);
#   - runs /usr/sbin/sshd as root on 127.0.0.1:<free port> with its own
#     config: UsePAM no, StrictModes no, LogLevel DEBUG3, -E DIR/sshd.log,
#     PidFile DIR/sshd.pid, host keys generated in DIR; the partner is
#     chrooted into DIR/chroot (root-owned) with ForceCommand internal-sftp
#     (sshd itself logs at DEBUG3, so tests can see every userauth request);
#     the writable drop directory is DIR/chroot/upload (owned by the partner).
# OpenSSH refuses a chroot with any group/world-writable component, so DIR
# cannot live under /tmp: sshd_mkdir creates it under /var/lib/wharf-test.

SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}
SSHD_PARTNER=${SSHD_PARTNER:-wharftest-partner}
SSHD_BASE=${SSHD_BASE:-/var/lib/wharf-test}

# What the OS must provide for sshd, created here (every start: /run is
# emptied at boot and a test may remove /run/sshd to prove this).
sshd_os_prereqs() {
    local privsep=/run/sshd
    if ! id sshd >/dev/null 2>&1; then
        useradd -M -r -d "$privsep" -s /usr/sbin/nologin sshd 2>/dev/null ||
            id sshd >/dev/null 2>&1 || { echo "sshd_os_prereqs: cannot create user sshd" >&2; return 1; }
    fi
    mkdir -p "$privsep" && chown root:root "$privsep" && chmod 0755 "$privsep" ||
        { echo "sshd_os_prereqs: cannot create $privsep" >&2; return 1; }
}

sshd_mkdir() {
    mkdir -p "$SSHD_BASE" && chmod 755 "$SSHD_BASE" || return 1
    local d
    d=$(mktemp -d "$SSHD_BASE/sshd.XXXXXX") || return 1
    chmod 755 "$d"
    echo "$d"
}

# A port below the kernel's ephemeral range (ip_local_port_range): a port
# in that range can be held by any outgoing connection (an ssh or libpq
# client of a test running beside this one) and the bind then fails,
# although nothing listens on it -- seen in CI (PostgreSQL: "could not bind
# ... Address already in use").  Checked against sockets in any state.
_sshd_free_port() {
    local i p lo
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ -n "$lo" ] && [ "$lo" -gt 11000 ] || lo=32768
    for i in $(seq 1 50); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
        if ! ss -tanH "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

sshd_setup() {
    local d=$1
    [ -n "$d" ] && [ -d "$d" ] || { echo "sshd_setup: no dir" >&2; return 1; }
    sshd_os_prereqs || return 1
    if ! id "$SSHD_PARTNER" >/dev/null 2>&1; then
        useradd -M -r -d /upload -s /usr/sbin/nologin "$SSHD_PARTNER" 2>/dev/null ||
            id "$SSHD_PARTNER" >/dev/null 2>&1 || return 1
    fi
    mkdir -p "$d/etc" "$d/keys" "$d/chroot/upload" || return 1
    chown root:root "$d" "$d/etc" "$d/chroot" && chmod 755 "$d/etc" "$d/chroot"
    chown "$SSHD_PARTNER" "$d/chroot/upload" && chmod 755 "$d/chroot/upload"
    chmod 700 "$d/keys"
    [ -f "$d/etc/host_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C wharf-test-host -f "$d/etc/host_ed25519" || return 1
    local k
    for k in ed25519 ecdsa rsa wrong; do
        local t=$k
        [ "$k" = wrong ] && t=ed25519
        [ -f "$d/keys/id_$k" ] || ssh-keygen -q -t "$t" -N '' -C "wharf-test-$k" \
            -f "$d/keys/id_$k" || return 1
    done
    if [ ! -f "$d/keys/id_pass" ]; then
        head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/keys/passphrase"
        ssh-keygen -q -t ed25519 -N "$(cat "$d/keys/passphrase")" -C wharf-test-pass \
            -f "$d/keys/id_pass" || return 1
    fi
    # One password for the partner account per machine, made once under a
    # lock: every fixture sets the same one, so tests running at the same
    # time (ctest -j, several checkouts) never log in with a password
    # another fixture has just replaced.
    (
        flock 9 || exit 1
        if [ ! -s "$SSHD_BASE/partner-password" ]; then
            (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$SSHD_BASE/partner-password")
        fi
        cp "$SSHD_BASE/partner-password" "$d/keys/password" && chmod 600 "$d/keys/password" &&
            echo "$SSHD_PARTNER:$(cat "$d/keys/password")" | chpasswd
    ) 9>"$SSHD_BASE/partner-password.lock" || return 1
    cat "$d/keys/id_ed25519.pub" "$d/keys/id_ecdsa.pub" "$d/keys/id_rsa.pub" \
        "$d/keys/id_pass.pub" >"$d/etc/authorized_keys"
    chmod 644 "$d/etc/authorized_keys"
    return 0
}

_sshd_write_config() {
    local d=$1 port=$2
    cat >"$d/etc/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $d/etc/host_ed25519
PidFile $d/sshd.pid
UsePAM no
StrictModes no
LogLevel DEBUG3
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile $d/etc/authorized_keys
MaxStartups ${SSHD_MAX_STARTUPS:-100:30:200}
MaxSessions 50
ClientAliveInterval 0
Subsystem sftp internal-sftp
$([ -n "$SSHD_ALLOW_SSH_RSA" ] && echo "PubkeyAcceptedAlgorithms +ssh-rsa")
AllowUsers $SSHD_PARTNER $(cat "$d/etc/allow_extra" 2>/dev/null)
Match User $SSHD_PARTNER
    ChrootDirectory $d/chroot
    ForceCommand internal-sftp
    AllowTcpForwarding no
    X11Forwarding no
EOF
    [ -f "$d/etc/sshd_config.extra" ] && cat "$d/etc/sshd_config.extra" >>"$d/etc/sshd_config"
    return 0
}

# A hostile SFTP server next to the real one (tests/lib/sftp_proxy.py in
# front of OpenSSH's sftp-server), for the user wharftest-fake: it lists the
# names and claims the sizes DIR/etc/fake.json says.  Call after sshd_setup,
# then sshd_start; exports SSHD_FAKE_USER SSHD_FAKE_ROOT (the files it
# serves, an absolute path: no chroot) SSHD_FAKE_CONF SSHD_FAKE_LOG (one
# line per file read: "name bytes-sent").  Creates the system user
# wharftest-fake (shell /bin/sh: sshd runs a ForceCommand through it).
SSHD_FAKE=${SSHD_FAKE:-wharftest-fake}
sshd_fake_setup() {
    local d=$1 src
    src=$(dirname "${BASH_SOURCE[0]}")/sftp_proxy.py
    if ! id "$SSHD_FAKE" >/dev/null 2>&1; then
        useradd -M -r -d /nonexistent -s /bin/sh "$SSHD_FAKE" 2>/dev/null ||
            id "$SSHD_FAKE" >/dev/null 2>&1 || return 1
    fi
    # a locked account cannot log in at all (UsePAM no): give it a password
    echo "$SSHD_FAKE:$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" | chpasswd || return 1
    mkdir -p "$d/fake" && chown "$SSHD_FAKE" "$d/fake" && chmod 755 "$d/fake" || return 1
    install -m 644 "$src" "$d/etc/sftp_proxy.py" || return 1
    [ -f "$d/etc/fake.json" ] || echo "{\"root\": \"$d/fake\", \"log\": \"$d/fake.log\"}" >"$d/etc/fake.json"
    chmod 644 "$d/etc/fake.json"
    : >"$d/fake.log" && chown "$SSHD_FAKE" "$d/fake.log"
    echo "$SSHD_FAKE" >"$d/etc/allow_extra"
    cat >"$d/etc/sshd_config.extra" <<EOF
Match User $SSHD_FAKE
    ForceCommand /usr/bin/python3 $d/etc/sftp_proxy.py $d/etc/fake.json
    AllowTcpForwarding no
    X11Forwarding no
EOF
    export SSHD_FAKE_USER=$SSHD_FAKE SSHD_FAKE_ROOT=$d/fake SSHD_FAKE_CONF=$d/etc/fake.json \
        SSHD_FAKE_LOG=$d/fake.log
}

_sshd_export() {
    local d=$1
    cat >"$d/sshd.env" <<EOF
SSHD_DIR=$d
SSHD_PORT=$SSHD_PORT
SSHD_PID=$SSHD_PID
SSHD_LOG=$d/sshd.log
SSHD_USER=$SSHD_PARTNER
SSHD_CHROOT=$d/chroot
SSHD_UPLOAD=$d/chroot/upload
SSHD_KNOWN_HOSTS=$d/known_hosts
SSHD_HOST_PUB=$d/etc/host_ed25519.pub
SSHD_KEY_ED25519=$d/keys/id_ed25519
SSHD_KEY_ECDSA=$d/keys/id_ecdsa
SSHD_KEY_RSA=$d/keys/id_rsa
SSHD_KEY_PASS=$d/keys/id_pass
SSHD_PASSPHRASE_FILE=$d/keys/passphrase
SSHD_KEY_WRONG=$d/keys/id_wrong
SSHD_PASSWORD_FILE=$d/keys/password
EOF
    set -a
    . "$d/sshd.env"
    set +a
}

# Start sshd; a restart keeps the port (when still free) and the keys.
sshd_start() {
    local d=$1 tries port
    [ -f "$d/etc/host_ed25519" ] || sshd_setup "$d" || return 1
    sshd_stop "$d" 2>/dev/null
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        port=""
        [ -f "$d/port" ] && port=$(cat "$d/port")
        [ -n "$port" ] || port=$(_sshd_free_port) || return 1
        _sshd_write_config "$d" "$port"
        echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/etc/host_ed25519.pub")" >"$d/known_hosts"
        rm -f "$d/sshd.pid"
        sshd_os_prereqs || return 1
        "$SSHD_BIN" -f "$d/etc/sshd_config" -E "$d/sshd.log" || { rm -f "$d/port"; continue; }
        local i
        for i in $(seq 1 100); do
            [ -s "$d/sshd.pid" ] && ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && break
            sleep 0.05
        done
        if [ -s "$d/sshd.pid" ] && kill -0 "$(cat "$d/sshd.pid")" 2>/dev/null; then
            echo "$port" >"$d/port"
            SSHD_PORT=$port
            SSHD_PID=$(cat "$d/sshd.pid")
            _sshd_export "$d"
            return 0
        fi
        rm -f "$d/port" # taken meanwhile: pick another
    done
    echo "sshd_start: could not start sshd (see $d/sshd.log)" >&2
    return 1
}

# Descendants of a pid, deepest first.
_sshd_descendants() {
    local p=$1 c
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
        _sshd_descendants "$c"
        echo "$c"
    done
}

sshd_kill_sessions() {
    local d=$1 pid
    [ -s "$d/sshd.pid" ] || return 0
    pid=$(cat "$d/sshd.pid")
    local kids
    kids=$(_sshd_descendants "$pid")
    [ -n "$kids" ] && kill -9 $kids 2>/dev/null
    return 0
}

sshd_stop() {
    local d=$1 pid i
    [ -s "$d/sshd.pid" ] || return 0
    pid=$(cat "$d/sshd.pid")
    sshd_kill_sessions "$d"
    kill "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null
    rm -f "$d/sshd.pid"
    return 0
}

sshd_cleanup() {
    local d=$1
    [ -n "$d" ] && [ -d "$d" ] || return 0
    sshd_stop "$d"
    case "$d" in
    "$SSHD_BASE"/sshd.*) rm -rf "$d" ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    cmd=$1
    shift
    case "$cmd" in
    mkdir) sshd_mkdir ;;
    prereqs) sshd_os_prereqs ;;
    setup) sshd_setup "$@" ;;
    start) sshd_start "$@" ;;
    stop) sshd_stop "$@" ;;
    kill-sessions) sshd_kill_sessions "$@" ;;
    cleanup) sshd_cleanup "$@" ;;
    *)
        echo "usage: $0 mkdir|prereqs|setup|start|stop|kill-sessions|cleanup DIR" >&2
        exit 2
        ;;
    esac
fi
