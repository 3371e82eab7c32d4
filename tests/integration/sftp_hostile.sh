#!/usr/bin/env bash
# A hostile SFTP server (issue 14 items 5 and 7): tests/lib/sftp_proxy.py in
# front of OpenSSH's sftp-server lists names and claims sizes no honest
# server would, and counts the bytes it actually sent.  Through the real
# listing and download code (source/sftp.c):
#  - names with '/', "..", NUL or control characters are refused at listing:
#    never claimed, never read, left on the server, reported on the source's
#    health (status: stuck, with the escaped name) and in the log;
#  - limits.max_bytes bounds every byte taken: a listed size over it is
#    refused unread; a server that claims a small size and keeps sending is
#    cut off one byte past the listed size (and at max_bytes).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
{ sshd_setup "$SD" && sshd_fake_setup "$SD" && sshd_start "$SD"; } >/dev/null 2>&1 ||
  { bad "sshd with the hostile sftp server did not start"; finish; exit 1; }
ok "hostile sftp server on 127.0.0.1:$SSHD_PORT"
orders_schema
F=$SSHD_FAKE_ROOT
MiB=1048576

fake_profile() { # name dir [max_bytes]
  cat > "profiles/$1.yaml" <<EOP
name: $1
source:
  type: sftp
  host: 127.0.0.1
  port: $SSHD_PORT
  user: $SSHD_FAKE_USER
  key_file: $SSHD_KEY_ED25519
  known_hosts: $SSHD_KNOWN_HOSTS
  path: $F/$2
  pattern: "*.csv"
  complete_when: { min_age: 1ms }
  after: leave
  timeout: 10s
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
retry: { max_attempts: 1 }
limits: { max_bytes: ${3:-10MiB} }
EOP
}
sent() { # real name -> bytes of DATA the server sent for it (0: never read)
  awk -v n="$1" '$1 == n { s += $2 } END { print s + 0 }' "$SSHD_FAKE_LOG"
}

mkdir -p "$F/names" "$F/big"
orders_csv "$F/names/good.csv" 1 5
for i in 1 2 3 4; do orders_csv "$F/names/h$i.csv" $((i * 10)) 2; done
orders_csv "$F/big/small.csv" 1 3
python3 - "$F/big" <<'EOP'
import sys
for name in ("honest.csv", "liar.csv", "short.csv", "stream.csv"):
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        f.write("order_id,customer,amount\n")
        for i in range(100000):
            f.write(f"{i},customer {i:020d},{i}.50\n")
EOP
chown -R "$SSHD_FAKE_USER" "$F"
cat > "$SSHD_FAKE_CONF" <<EOJ
{"root": "$F", "log": "$SSHD_FAKE_LOG",
 "rename": {"h1.csv": "x/../evil.csv", "h2.csv": "a\nb.csv",
            "h3.csv": "\u001b]0;pwned\u0007.csv", "h4.csv": "ok.csv\u0000.evil"},
 "size": {"liar.csv": 5000000000, "short.csv": 1000, "stream.csv": $MiB}}
EOJ

# --- names ---------------------------------------------------------------------
fake_profile names names
w once names >out 2>log
eq "the honest file is loaded" "$(sql var/warehouse.db 'select count(*) from names')" 5
eq "no hostile name became an intake" "$(w intakes -p names --json | python3 -c 'import json,sys; print(sorted(i["path"] for i in json.load(sys.stdin)))')" "['good.csv']"
for i in 1 2 3 4; do
  check "h$i.csv left on the server" test -f "$F/names/h$i.csv"
  eq "h$i.csv never read" "$(sent h$i.csv)" 0
done
eq "four refusals in the log" "$(grep -c '"event":"name_refused"' log)" 4
contains "the log names x/../evil.csv" "$(cat log)" 'x/../evil.csv: refused: the name contains '"'/'"
js=$(w status --json)
eq "status: the source health counts the refused names" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["source_health"]["refused_names"])')" 4
eq "status: the profile is stuck" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" stuck
st=$(w status)
contains "status says why" "$st" "4 names refused at the last listing"
check "status prints no raw escape from a name" python3 -c 'import sys; sys.exit("\x1b" in sys.argv[1] or "\x07" in sys.argv[1])' "$st"
out=$(w check --connect names 2>&1)
contains "check --connect shows a refused name, escaped" "$out" '\x1b]0;pwned\x07.csv'
contains "check --connect says the NUL" "$out" "contains a NUL byte"
w once names >/dev/null 2>log2
eq "a later poll still refuses them and takes nothing" "$(w intakes -p names --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1

# --- sizes -----------------------------------------------------------------------
: > "$SSHD_FAKE_LOG"
fake_profile big big 1MiB
w once big >out 2>log
eq "a small file under max_bytes is loaded" "$(sql var/warehouse.db 'select count(*) from big')" 3
err_of() { w intakes -p big --json | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    if i["path"] == sys.argv[1]: print(i["state"], "|", i.get("last_error") or "")' "$1"; }
e=$(err_of honest.csv)
contains "an honest file over max_bytes fails" "$e" "failed |"
contains "... saying max_bytes" "$e" "more than limits.max_bytes"
eq "... and is never read" "$(sent honest.csv)" 0
e=$(err_of liar.csv)
contains "a listed size of 5 GB is refused" "$e" "5000000000 bytes, more than limits.max_bytes"
eq "... unread" "$(sent liar.csv)" 0
e=$(err_of short.csv)
contains "a server sending more than it listed is cut off" "$e" "size mismatch: listed 1000 bytes, received 1001"
check "... after at most 1004 bytes on the wire ($(sent short.csv))" test "$(sent short.csv)" -le 1004
e=$(err_of stream.csv)
contains "a server that keeps sending past max_bytes is cut off there" "$e" "sent more than limits.max_bytes"
# (libssh2 asks in requests of up to 30000 bytes: the last one may pass it)
check "... with less than one read request past max_bytes on the wire ($(sent stream.csv))" test "$(sent stream.csv)" -le $((MiB + 30000))
eq "nothing of the oversized files was loaded" "$(sql var/warehouse.db 'select count(*) from big')" 3
for f in honest liar short stream; do check "$f.csv left on the server" test -f "$F/big/$f.csv"; done
finish
