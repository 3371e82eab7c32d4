#!/bin/bash
# packaging: build the Debian package from a fresh Release build and check
# what is in it; check the systemd unit, the man pages, the shell scripts
# and the sshd snippet.
#
# Environment (set by ctest): WHARF (binary), WHARF_SOURCE_DIR, WHARF_BUILD_DIR.
# Needs: cmake, cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), man (man-db),
# systemd-analyze (systemd), sshd (openssh-server, optional), bash.
set -u

SRC=${WHARF_SOURCE_DIR:?WHARF_SOURCE_DIR not set}
BLD=${WHARF_BUILD_DIR:?WHARF_BUILD_DIR not set}
PKG=$BLD/pkgtest
LOG=$BLD/pkgtest-logs
PASS=0
FAIL=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
note() { echo "note - $*"; }
# check DESCRIPTION COMMAND...: pass when the command succeeds.
check() {
    local what=$1
    shift
    if "$@" >"$TMP/out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/       /' "$TMP/out" | head -40; fi
}

# ---- build the package ------------------------------------------------------
rm -rf "$PKG" "$LOG"
mkdir -p "$PKG" "$LOG"
if cmake -S "$SRC" -B "$PKG" -DCMAKE_BUILD_TYPE=Release >"$LOG/configure.log" 2>&1 &&
    cmake --build "$PKG" -j"$(nproc 2>/dev/null || echo 2)" --target wharf wharf-man >"$LOG/build.log" 2>&1 &&
    (cd "$PKG" && cpack -G DEB) >"$LOG/cpack.log" 2>&1; then
    ok "cpack -G DEB"
else
    bad "cpack -G DEB (logs in $LOG)"
    tail -n 15 "$LOG"/*.log
fi
DEB=$(ls "$PKG"/wharf_*.deb 2>/dev/null | head -n1)

if [ -n "$DEB" ]; then
    dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's#^\./#/#' >"$TMP/contents"
    for f in /usr/bin/wharf \
        /usr/lib/systemd/system/wharf.service \
        /etc/wharf/wharf.yaml \
        /etc/wharf/profiles/ \
        /etc/wharf/schemas/ \
        /var/lib/wharf/ \
        /usr/share/man/man1/wharf.1 \
        /usr/share/man/man5/wharf-profile.5 \
        /usr/share/bash-completion/completions/wharf \
        /usr/sbin/wharf-add-partner \
        /usr/share/wharf/sshd_config.d/wharf-partners.conf \
        /usr/share/doc/wharf/configuration.md \
        /usr/share/doc/wharf/partners.md \
        /usr/share/doc/wharf/xsd.md \
        /usr/share/doc/wharf/scale-out.md \
        /usr/share/doc/wharf/runbooks/README.md; do
        # man pages may be gzipped
        if grep -qxE "$f(\.gz)?" "$TMP/contents"; then ok "package has $f"; else bad "package lacks $f"; fi
    done
    dpkg-deb -I "$DEB" >"$TMP/info"
    for f in postinst prerm postrm conffiles; do
        if grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$f" "$TMP/info"; then ok "control has $f"; else bad "control lacks $f"; fi
    done
    check "Depends lists the libraries" grep -E '^ Depends:.*libssh2.*' "$TMP/info"
    check "Depends lists adduser" grep -E '^ Depends:.*adduser' "$TMP/info"
    check "Package: wharf" grep -qE '^ Package: wharf$' "$TMP/info"
    dpkg-deb -e "$DEB" "$TMP/control"
    check "conffiles names /etc/wharf/wharf.yaml" grep -qx /etc/wharf/wharf.yaml "$TMP/control/conffiles"
    check "postinst creates the wharf user" grep -q 'adduser --system' "$TMP/control/postinst"
    check "postinst is valid sh" sh -n "$TMP/control/postinst"
    check "prerm is valid sh" sh -n "$TMP/control/prerm"
    check "postrm is valid sh" sh -n "$TMP/control/postrm"
    dpkg-deb -x "$DEB" "$TMP/root"
    check "packaged binary runs (--help)" "$TMP/root/usr/bin/wharf" --help
fi

# ---- systemd unit -----------------------------------------------------------
UNIT=$SRC/packaging/wharf.service
if command -v systemd-analyze >/dev/null 2>&1; then
    # Point ExecStart at a binary that exists here; everything else as shipped.
    mkdir -p "$TMP/unit"
    WBIN=${WHARF:-}
    [ -x "$WBIN" ] || WBIN=/bin/true
    sed "s#/usr/bin/wharf#$WBIN#g" "$UNIT" >"$TMP/unit/wharf.service"
    (cd "$TMP/unit" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./wharf.service) >"$TMP/sa" 2>&1
    rc=$?
    # Only syntax and unknown directives fail the test; messages about the
    # environment (no running systemd, missing users, other units) do not.
    if grep -Ei 'unknown (key|lvalue|section)|failed to parse|invalid|bad (setting|unit)|syntax|not a valid|ignoring' "$TMP/sa" \
        | grep -v 'wharf-partners' >"$TMP/sa.bad"; then
        bad "systemd-analyze verify wharf.service"
        sed 's/^/       /' "$TMP/sa.bad"
    elif [ $rc -ne 0 ] && grep -qiE 'no such file|not found|failed to (initialize|connect|create)|bus' "$TMP/sa"; then
        note "systemd-analyze cannot run here (rc $rc); unit syntax not verified:"
        sed 's/^/       /' "$TMP/sa" | head -5
    elif [ $rc -ne 0 ]; then
        bad "systemd-analyze verify wharf.service (rc $rc)"
        sed 's/^/       /' "$TMP/sa" | head -20
    else
        ok "systemd-analyze verify wharf.service"
    fi
else
    note "systemd-analyze not installed; unit not verified"
fi
for d in 'Type=notify' 'User=wharf' 'Group=wharf' 'ExecStart=/usr/bin/wharf -c /etc/wharf/wharf.yaml run' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'WatchdogSec=30s' 'Restart=on-failure' \
    'WorkingDirectory=/var/lib/wharf' 'StateDirectory=wharf' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'PrivateTmp=yes' 'ProtectHome=yes' 'CapabilityBoundingSet=' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'SystemCallFilter=@system-service' 'UMask=0027' \
    'ReadWritePaths=/var/lib/wharf' 'NoExecPaths=/var/lib/wharf -/srv/sftp' 'MemoryMax=2G' 'TasksMax=512'; do
    if grep -qxF -- "$d" "$UNIT"; then ok "unit: $d"; else bad "unit lacks: $d"; fi
done
# Partner drops are opened one by one (wharf-add-partner's drop-in), never
# all of /srv/sftp at once.
if grep -E '^ReadWritePaths=' "$UNIT" | grep -q '/srv/sftp'; then
    bad "unit opens all of /srv/sftp to writes: $(grep -E '^ReadWritePaths=' "$UNIT")"
else
    ok "unit does not open /srv/sftp as a whole"
fi
check "the unit documents the per-partner drop-in" grep -q 'ReadWritePaths=/srv/sftp/acme/drop' "$UNIT"
check "wharf-add-partner writes the partner's ReadWritePaths drop-in" \
    grep -q 'ReadWritePaths=%s' "$SRC/packaging/add-partner"

# ---- man pages --------------------------------------------------------------
for page in wharf.1 wharf-profile.5; do
    if command -v man >/dev/null 2>&1; then
        w=$(MANWIDTH=80 man --warnings -l "$SRC/packaging/$page" 2>&1 >/dev/null)
        if [ -z "$w" ]; then ok "man -l $page: no warnings"; else bad "man -l $page warns"; echo "$w" | sed 's/^/       /' | head -20; fi
    else
        note "man not installed; $page not rendered"
    fi
done
# Every command of cli.h is in wharf(1), every exit code too.
for cmd in run once ingest check status intakes show rejects replay verify export trust reconcile trace ledger pause resume; do
    if grep -qE "^\.B[IR]? \"?$cmd( |\"|$)" "$SRC/packaging/wharf.1"; then ok "wharf.1 documents $cmd"; else bad "wharf.1 lacks $cmd"; fi
done
for code in 0 1 2 3 4 5; do
    if grep -q "^\.B $code$" "$SRC/packaging/wharf.1"; then ok "wharf.1 exit code $code"; else bad "wharf.1 lacks exit code $code"; fi
done

# ---- scripts, completion, sshd snippet --------------------------------------
check "bash -n add-partner" bash -n "$SRC/packaging/add-partner"
check "bash -n completion" bash -n "$SRC/packaging/bash-completion/wharf"
if [ -r /usr/share/bash-completion/bash_completion ]; then
    cat >"$TMP/comp.sh" <<EOT
source /usr/share/bash-completion/bash_completion
source "$SRC/packaging/bash-completion/wharf"
cd "$TMP" && mkdir -p profiles && touch profiles/acme-orders.yaml profiles/globex.yml
c() { COMP_WORDS=("\$@"); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)); COMP_LINE="\$*"; COMP_POINT=\${#COMP_LINE}; COMPREPLY=(); _wharf; echo "\${COMPREPLY[*]}"; }
echo "cmds: \$(c wharf st)"
echo "opts: \$(c wharf intakes --s)"
echo "prof: \$(c wharf ingest -p a)"
echo "state: \$(c wharf intakes --state fa)"
echo "fmt: \$(c wharf export --format j)"
EOT
    bash "$TMP/comp.sh" >"$TMP/comp.out" 2>&1
    check "completion: commands" grep -qx 'cmds: status' "$TMP/comp.out"
    check "completion: options" grep -qx 'opts: --state' "$TMP/comp.out"
    check "completion: profile names" grep -qx 'prof: acme-orders' "$TMP/comp.out"
    check "completion: states" grep -qx 'state: failed' "$TMP/comp.out"
    check "completion: export format" grep -qx 'fmt: json' "$TMP/comp.out"
else
    note "bash-completion not installed; completion not exercised"
fi
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
if [ -x "$SSHD" ]; then
    # what the OS must provide for sshd (/run/sshd, user sshd): the fixture makes it
    [ "$(id -u)" = 0 ] && bash "$SRC/tests/lib/sshd.sh" prereqs
    ssh-keygen -q -t ed25519 -N '' -f "$TMP/hostkey" >/dev/null
    printf 'HostKey %s\nPidFile none\nInclude %s\n' "$TMP/hostkey" "$SRC/packaging/sshd_config.d/wharf-partners.conf" >"$TMP/sshd_config"
    if out=$("$SSHD" -t -f "$TMP/sshd_config" 2>&1); then
        ok "sshd -t accepts wharf-partners.conf"
    elif grep -q 'privilege separation directory' <<<"$out"; then
        note "sshd -t needs /run/sshd; snippet not checked"
    else
        bad "sshd -t rejects wharf-partners.conf"; printf '%s\n' "$out"
    fi
else
    note "sshd not installed; sshd snippet not checked"
fi
# The snippet's internal-sftp flags, given to the real sftp-server: a
# partner can upload and rename but cannot create a symlink or a hard link.
SNIP=$SRC/packaging/sshd_config.d/wharf-partners.conf
FLAGS=$(sed -n 's/^ *ForceCommand internal-sftp //p' "$SNIP")
check "the snippet denies links (-P symlink,hardlink)" grep -qE '^ *ForceCommand internal-sftp .*-P symlink,hardlink' "$SNIP"
SFTPD=/usr/lib/openssh/sftp-server
if [ -x "$SFTPD" ] && command -v sftp >/dev/null 2>&1; then
    mkdir -p "$TMP/drop" && echo data >"$TMP/drop/a.csv"
    # -e: log to stderr, not syslog
    sftp_try() { (cd "$TMP/drop" && sftp -D "$SFTPD -e $FLAGS" -b - <<<"$1") >"$TMP/sftp.out" 2>&1; }
    check "with those flags a partner can still upload and rename" sftp_try "put $TMP/drop/a.csv b.part
rename b.part b.csv"
    if sftp_try "symlink /etc/passwd evil.csv"; then bad "symlink refused"; else ok "symlink refused"; fi
    if sftp_try "ln a.csv hard.csv"; then bad "hard link refused"; else ok "hard link refused"; fi
    check "and no link was made" test ! -e "$TMP/drop/evil.csv" -a ! -L "$TMP/drop/evil.csv" -a ! -e "$TMP/drop/hard.csv"
else
    note "sftp-server or sftp not installed; link refusal not exercised"
fi

# ---- runbooks and docs -------------------------------------------------------
for rb in source-unreachable auth-refused host-key-changed stuck-file schema-reject encoding-changed \
    duplicates-flood target-down disk-full expected-file-missing verify-tamper replay; do
    if [ -s "$SRC/runbooks/$rb.md" ] && grep -q "($rb.md)" "$SRC/runbooks/README.md"; then
        ok "runbook $rb.md (indexed)"
    else
        bad "runbook $rb.md missing or not in README.md"
    fi
done
check "docs/configuration.md lists the exit codes" grep -q '^| 5 | another wharf server' "$SRC/docs/configuration.md"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
