#!/usr/bin/env bash
# One large file over several SSH sessions (issue 19, source.parallel),
# against the real sshd fixture: the file is fetched in ranges, one session
# each, and hashed in order (the sha256 the ledger keeps is the file's); a
# range whose session breaks mid-way is resumed in the same take; a take
# whose ranges keep failing leaves them for the next attempt, which resumes
# every range from what landed; the bytes that load are always the
# partner's (the ledger's sha256 is checked against sha256sum of the file
# on the server, the rows against what was written).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
RELAY=
trap '[ -n "$RELAY" ] && kill "$RELAY" 2>/dev/null; sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }
ok "sshd on 127.0.0.1:$SSHD_PORT"
orders_schema
pin() { echo "[127.0.0.1]:$1 $(cut -d' ' -f1,2 "$SD/etc/host_ed25519.pub")" >> "$T/known_hosts"; }
pin "$SSHD_PORT"
relay() { # tests/lib/relay.py in front of sshd with these options; RPORT
  [ -n "$RELAY" ] && { kill "$RELAY" 2>/dev/null; wait "$RELAY" 2>/dev/null; }
  rm -f "$T/relay.port" "$T/relay.port.refused"
  python3 "$WHARF_SOURCE_DIR/tests/lib/relay.py" "$SSHD_PORT" "$T/relay.port" "$@" &
  RELAY=$!
  for _ in $(seq 1 100); do [ -s "$T/relay.port" ] && break; sleep 0.05; done
  RPORT=$(cat "$T/relay.port")
  pin "$RPORT"
}

profile() { # name parallel [port]
  mkdir -p "$SSHD_UPLOAD/$1" && chown "$SSHD_USER" "$SSHD_UPLOAD/$1"
  cat > "profiles/$1.yaml" <<EOP
name: $1
source:
  type: sftp
  host: 127.0.0.1
  port: ${3:-$SSHD_PORT}
  user: $SSHD_USER
  key_file: $SSHD_KEY_ED25519
  known_hosts: $T/known_hosts
  path: /upload/$1
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
  timeout: 10s
  parallel: $2
  parallel_min: 1MB
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/$1.db, table: orders }
retry: { max_attempts: 8, backoff: 200ms, backoff_max: 500ms }
EOP
}
drop() { # name rows: one CSV of that many rows, its done file "size sha256"
  local f="$SSHD_UPLOAD/$1/big.csv"
  python3 - "$f" "$2" <<'EOP'
import sys
with open(sys.argv[1], "w") as f:
    f.write("order_id,customer,amount\n")
    for i in range(1, int(sys.argv[2]) + 1):
        f.write("%d,customer number %d with a longer name,%d.25\n" % (i, i, i % 1000))
EOP
  echo "$(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)" > "$f.done"
  chown "$SSHD_USER" "$f" "$f.done"
  WANT_SHA=$(sha256sum "$f" | cut -d' ' -f1)
}
loaded_sha() { # profile: the sha256 the ledger keeps for its one loaded intake
  local id
  id=$(w intakes -p "$1" --json | python3 -c 'import json,sys
v = [i for i in json.load(sys.stdin) if i["state"] == "done" and i["outcome"] == "loaded"]
print(v[0]["id"] if len(v) == 1 else "")')
  [ -n "$id" ] && w show "$id" | awk '$1 == "sha256" { print $2 }'
}
once_until_done() { # profile log: `wharf once` until its intake is done (bounded)
  for _ in $(seq 1 10); do
    w once "$1" >>"$2.out" 2>>"$2"
    [ -n "$(loaded_sha "$1")" ] && return 0
    sleep 0.3
  done
  return 1
}

# --- four ranges, nothing goes wrong ------------------------------------
profile par 4
drop par 150000 # ~8 MB: four ranges of ~2 MB
w once par >par.out 2>par.log
contains "the file was fetched in four ranges" "$(cat par.log)" '"ranges":4'
eq "the ledger's sha256 is the file's" "$(loaded_sha par)" "$WANT_SHA"
eq "every row once" "$(sql var/par.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"
eq "nothing left in the work dirs" "$(find var/work -name '*.partial' -o -name '*.ranges' | wc -l)" 0
eq "remote file deleted after sealing" "$(ls "$SSHD_UPLOAD/par" | wc -l)" 0

# --- a range's session breaks mid-way: resumed within the take -----------
profile cut 4
drop cut 150000
WHARF_TEST_RANGE_CUT=300000 w once cut >cut.out 2>cut.log
contains "the broken range was resumed" "$(cat cut.log)" '"sftp.range_retry"'
eq "the ledger's sha256 is the file's" "$(loaded_sha cut)" "$WANT_SHA"
eq "every row once" "$(sql var/cut.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"

# --- a range fails for good: the next attempt resumes every range --------
# (the second range's session breaks four times: the three attempts of the
# first take, then the first of the next)
profile again 4
drop again 150000
export WHARF_TEST_RANGE_CUT=300000:4
once_until_done again again.log || bad "the intake was not loaded"
unset WHARF_TEST_RANGE_CUT
contains "the first take failed and waits for its retry" "$(cat again.log)" '"retry"'
resumed=$(python3 - again.log <<'EOP'
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    f = r.get("fields") or r
    if r.get("event") == "sftp.ranges" and int(f.get("landed", 0)) > 0:
        n += 1
print(n)
EOP
)
check "a later take resumed the ranges from what had landed ($resumed)" test "$resumed" -ge 1
eq "the ledger's sha256 is the file's" "$(loaded_sha again)" "$WANT_SHA"
eq "every row once" "$(sql var/again.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"
eq "one intake" "$(w intakes -p again --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1

# --- a server that allows two sessions: one lists, one takes every range --
relay --limit 2
profile limited 4 "$RPORT"
drop limited 150000
w once limited >limited.out 2>limited.log
check "the server refused sessions beyond its two" test -s "$T/relay.port.refused"
contains "the refused sessions left their ranges to the other" "$(cat limited.log)" '"sftp.range_session_refused"'
eq "the ledger's sha256 is the file's" "$(loaded_sha limited)" "$WANT_SHA"
eq "every row once" "$(sql var/limited.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"

# --- wharf killed in the middle of a parallel take -----------------------
# (2 MB/s a session: the four ranges take about a second each)
relay --rate 2000000
profile killed 4 "$RPORT"
drop killed 150000
"$WHARF" once killed >killed1.out 2>killed1.log & # not `w`: a function runs in a subshell, and kill -9 of that would leave wharf running
pid=$!
for _ in $(seq 1 400); do
  f=$(find var/work -name original.partial 2>/dev/null | head -1)
  [ -n "$f" ] && [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -gt 1000000 ] && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
eq "wharf is gone" "$(pgrep -f -- "$WHARF once killed")" ""
check "killed with ranges in flight" test -n "$(find var/work -name 'original.ranges')"
once_until_done killed killed2.log || bad "the intake was not loaded after the kill"
eq "the ledger's sha256 is the file's" "$(loaded_sha killed)" "$WANT_SHA"
eq "every row once" "$(sql var/killed.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"
eq "one intake" "$(w intakes -p killed --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1
check "wharf verify passes" w verify
kill "$RELAY" 2>/dev/null; wait "$RELAY" 2>/dev/null; RELAY=

# --- ranges left by a parallel take, resumed by a single session ---------
# (parallel set back to 1 between two attempts: the prefix that landed in
# order is kept, the rest fetched again)
profile switch 4
drop switch 150000
WHARF_TEST_RANGE_CUT=300000:3 w once switch >switch1.out 2>switch1.log
eq "the parallel take failed and waits for its retry" "$(loaded_sha switch)" ""
check "it left its ranges" test -n "$(find var/work -name '*.ranges')"
sed -i 's/  parallel: 4/  parallel: 1/' profiles/switch.yaml
once_until_done switch switch2.log || bad "the intake was not loaded"
contains "the single session resumed from the prefix that landed" "$(cat switch2.log)" '"sftp.resume"'
eq "the ledger's sha256 is the file's" "$(loaded_sha switch)" "$WANT_SHA"
eq "every row once" "$(sql var/switch.db 'select count(*), count(distinct order_id) from orders')" "150000|150000"
eq "nothing left in the work dirs" "$(find var/work -name '*.partial' -o -name '*.ranges' | wc -l)" 0

finish
