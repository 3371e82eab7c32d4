#!/usr/bin/env bash
# Several files in flight over SFTP (issue 22), against the real sshd
# fixture: source.connections sessions take files at once; the connection
# dropped in the middle of a batch of files in flight loses none and takes
# none twice (the partial ones are retried and resumed); a server that
# allows fewer sessions than `connections` is worked with what it gives,
# and `wharf status` says so; sshd's own MaxStartups 1 loses nothing either.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
RELAY=
trap '[ -n "$RELAY" ] && kill "$RELAY" 2>/dev/null; sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }
ok "sshd on 127.0.0.1:$SSHD_PORT"
orders_schema

sftp_profile() { # name remote_subdir port connections
  local name=$1 sub=$2 port=$3 conns=$4
  mkdir -p "$SSHD_UPLOAD/$sub" && chown "$SSHD_USER" "$SSHD_UPLOAD/$sub"
  cat > "profiles/$name.yaml" <<EOP
name: $name
source:
  type: sftp
  host: 127.0.0.1
  port: $port
  user: $SSHD_USER
  key_file: $SSHD_KEY_ED25519
  known_hosts: $T/known_hosts
  path: /upload/$sub
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
  timeout: 10s
  connections: $conns
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/$name.db, table: orders }
concurrency: 1
retry: { max_attempts: 8, backoff: 200ms, backoff_max: 500ms }
EOP
}
# the pinned key for both the fixture's port and the limiter's
pin() { echo "[127.0.0.1]:$1 $(cut -d' ' -f1,2 "$SD/etc/host_ed25519.pub")" >> "$T/known_hosts"; }
pin "$SSHD_PORT"
relay() { # start tests/lib/relay.py in front of sshd with these options; RPORT
  [ -n "$RELAY" ] && { kill "$RELAY" 2>/dev/null; wait "$RELAY" 2>/dev/null; }
  rm -f "$T/relay.port" "$T/relay.port.refused"
  python3 "$WHARF_SOURCE_DIR/tests/lib/relay.py" "$SSHD_PORT" "$T/relay.port" "$@" &
  RELAY=$!
  for _ in $(seq 1 100); do [ -s "$T/relay.port" ] && break; sleep 0.05; done
  RPORT=$(cat "$T/relay.port")
  pin "$RPORT"
}
done_count() { w intakes -p "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["state"]=="done" and i["outcome"]=="loaded"))'; }
fill() { # dir n rows: n files of rows rows each (ids never repeat), with done files
  python3 - "$1" "$2" "$3" <<'EOP'
import os, sys
d, n, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for k in range(n):
    p = os.path.join(d, "o%03d.csv" % k)
    with open(p, "w") as f:
        f.write("order_id,customer,amount\n")
        base = k * rows
        for i in range(1, rows + 1):
            f.write("%d,customer number %d with a longer name,%d.25\n" % (base + i, base + i, i % 1000))
    open(p + ".done", "w").close()
EOP
  chown -R "$SSHD_USER" "$1"
}

# in_flight N: wait (N x 20 ms at most) until at least two partial
# downloads have bytes at the same time; MOST: the most seen at once
in_flight() {
  local n f
  most=0
  for _ in $(seq 1 "$1"); do
    n=0
    for f in var/work/*/original.partial; do [ -s "$f" ] && n=$((n + 1)); done
    [ $n -gt $most ] && most=$n
    [ $n -ge 2 ] && return 0
    sleep 0.02
  done
}

# --- the connection dropped with several files in flight --------------------
# 4 MB/s a connection: a file takes about a second, so the drop finds
# several in flight
relay --rate 4000000
sftp_profile drop drop "$RPORT" 4
fill "$SSHD_UPLOAD/drop" 16 60000 # ~3.5 MB each
( w once drop >drop1.out 2>drop1.log ) &
pid=$!
# several files in flight: wait (bounded) until at least two partial
# downloads have bytes at the same time, then drop every session
in_flight 400
kill -USR1 "$RELAY" # the link drops every session at once
wait $pid
check "several files were in flight at once (saw $most partial downloads)" test "$most" -ge 2
contains "the dropped takes wait for their retry" "$(cat drop1.log)" '"retry"'
# later polls take what is left and retry the partial ones (bounded)
for _ in $(seq 1 20); do
  [ "$(done_count drop)" = 16 ] && break
  sleep 0.3
  w once drop >>drop2.out 2>>drop2.log
done
eq "every file loaded" "$(done_count drop)" 16
contains "a partial download was resumed from its verified offset" "$(cat drop2.log)" '"sftp.resume"'
eq "every file taken once (one intake each)" "$(w intakes -p drop --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 16
eq "every row once" "$(sql var/drop.db 'select count(*), count(distinct order_id) from orders')" "960000|960000"
eq "nothing failed" "$(w intakes -p drop --state failed --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0
eq "remote files deleted after sealing" "$(ls "$SSHD_UPLOAD/drop" | wc -l)" 0
check "wharf verify passes" w verify

# --- a server that allows two sessions at once, connections: 4 --------------
relay --limit 2
sftp_profile limited limited "$RPORT" 4
fill "$SSHD_UPLOAD/limited" 24 2000
w once limited >lim.out 2>lim.log
check "the server refused sessions beyond its two" test -s "$T/relay.port.refused"
eq "every file loaded" "$(done_count limited)" 24
eq "every row once" "$(sql var/limited.db 'select count(*), count(distinct order_id) from orders')" "48000|48000"
eq "none failed or waits for a retry" "$(w intakes -p limited --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["state"]!="done"))')" 0
contains "the log says it went on with fewer" "$(cat lim.log)" "sftp.connections_limited"
st=$(w status 2>&1)
contains "status says how many connections worked" "$st" "2 of 4 SFTP connections"
eq "status --json: connections wanted and got" "$(w status --json | python3 -c 'import json,sys
for p in json.load(sys.stdin):
    if p["profile"] == "limited": c = p["connections"]; print(c["wanted"], c["got"])')" "4 2"

# --- sshd's own MaxStartups 1: a session refused while another authenticates -
# (the refusals come and go with the timing; what must hold is that every
# file is taken once and nothing fails)
kill "$RELAY" 2>/dev/null; wait "$RELAY" 2>/dev/null; RELAY=
SSHD_MAX_STARTUPS=1 sshd_start "$SD" >/dev/null 2>&1 || bad "sshd did not restart"
sftp_profile startups startups "$SSHD_PORT" 4
fill "$SSHD_UPLOAD/startups" 24 500
w once startups >st.out 2>st.log
eq "MaxStartups 1: every file loaded" "$(done_count startups)" 24
eq "MaxStartups 1: none failed or waits for a retry" "$(w intakes -p startups --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["state"]!="done"))')" 0
eq "MaxStartups 1: every row once" "$(sql var/startups.db 'select count(*), count(distinct order_id) from orders')" "12000|12000"
eq "MaxStartups 1: remote files deleted" "$(ls "$SSHD_UPLOAD/startups" | wc -l)" 0
echo "# MaxStartups 1: sshd refused $(grep -c 'drop connection\|exceeded MaxStartups' "$SSHD_LOG" 2>/dev/null) connection(s)"
sshd_start "$SD" >/dev/null 2>&1 || bad "sshd did not restart"

# the same server with room again: the next batch uses every connection
# and the note goes away
relay --limit 8
sftp_profile limited limited "$RPORT" 4
fill "$SSHD_UPLOAD/limited" 8 100
w once limited >lim2.out 2>lim2.log
eq "the next batch loaded" "$(done_count limited)" 32
eq "status --json: every connection worked in the next batch" "$(w status --json | python3 -c 'import json,sys
for p in json.load(sys.stdin):
    if p["profile"] == "limited": c = p["connections"]; print(c["wanted"], c["got"])')" "4 4"
if w status 2>&1 | grep -A1 '^limited ' | grep -q 'SFTP connections'; then
  bad "status: the note stays after a batch that got every connection"
else
  ok "status: no note once every connection worked"
fi
# --- a reload that adds an SFTP profile gets its connection threads ----------
# The server starts with no SFTP profile (so with no connection thread); a
# reload adds one with connections: 3.  Its files must still be taken
# several at a time, not one by one on the main workers.
rm -f profiles/*.yaml
spool_profile idle
: > srv.err
"$WHARF" run >srv.out 2>>srv.err &
SRV=$!
for _ in $(seq 100); do grep -q '"started"' srv.err && break; sleep 0.1; done
contains "the server started without SFTP profiles" "$(cat srv.err)" '"started"'
relay --rate 4000000
sftp_profile grow grow "$RPORT" 3
echo 'schedule: { every: 1s }' >> profiles/grow.yaml
fill "$SSHD_UPLOAD/grow" 8 60000 # ~3.5 MB each: about a second a file a connection
kill -HUP "$SRV"
in_flight 600
check "after the reload several files were in flight at once (saw $most)" test "$most" -ge 2
contains "the log says the connection threads were started" "$(cat srv.err)" '"connection_threads"'
for _ in $(seq 1 300); do
  [ "$(done_count grow)" = 8 ] && break
  sleep 0.2
done
eq "every file of the reloaded profile loaded" "$(done_count grow)" 8
eq "every row once" "$(sql var/grow.db 'select count(*), count(distinct order_id) from orders')" "480000|480000"
kill -TERM "$SRV"; wait "$SRV" 2>/dev/null
finish
