#!/usr/bin/env bash
# `wharf run` itself, started in the background on a temp dir: inotify wakes
# a spool whose schedule is an hour; SIGTERM during a big load stops in
# bounded time and a restart loads the file exactly once; SIGHUP with a
# broken profile is refused with its errors and the old profiles keep
# working; a missed `expect:` window shows late, then missing, and the
# alert command gets the event (WHARF_TEST_NOW places "now"); a second
# server on the same state dir exits 5 naming the holder.
# Every wait is bounded; the server is killed at the end (common.sh).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

SRV=
# start_server [ENV=VALUE...]: start `wharf run`, wait for "started"
start_server() {
  : > srv.err
  env "$@" "$WHARF" run >srv.out 2>>srv.err &
  SRV=$!
  for _ in $(seq 100); do
    grep -q '"started"' srv.err && return 0
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.1
  done
  bad "server did not start: $(tail -5 srv.err)"
  return 1
}
# stop_server SIGNAL: signal it and wait (10s at most); prints seconds taken
stop_server() {
  local t0 i
  t0=$(date +%s.%N)
  kill -"$1" "$SRV" 2>/dev/null
  for i in $(seq 100); do
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SRV" 2>/dev/null; then
    kill -KILL "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    echo timeout
    return 1
  fi
  wait "$SRV" 2>/dev/null
  echo "$(date +%s.%N) - $t0" | bc
}
# state_of NAME: the state of the intake for file NAME ("" when none)
state_of() {
  w intakes --json 2>/dev/null | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    if i["name"] == sys.argv[1]: print(i["state"])' "$1" | tail -1
}
# wait_state NAME STATE SECONDS: poll every 50ms; 0 when reached
wait_state() {
  local end=$(($(date +%s%N) + $3 * 1000000000))
  while [ "$(date +%s%N)" -lt "$end" ]; do
    [ "$(state_of "$1")" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
# big_csv FILE N: N rows, fast
big_csv() {
  { echo "order_id,customer,amount"
    seq 1 "$2" | awk '{print $1",customer "$1","$1".50"}'; } > "$1"
}

orders_schema
cat > alert.sh <<EOS
#!/bin/sh
cat >> "$T/alerts.jsonl"
echo >> "$T/alerts.jsonl"
EOS
chmod +x alert.sh
cat > wharf.yaml <<EOY
alert: "$T/alert.sh"
EOY

# a spool that only inotify can wake: the schedule is an hour
spool_profile watch "{ stable_for: 1s }"
echo "schedule: { every: 1h }" >> profiles/watch.yaml
spool_profile big "{ stable_for: 1s }"
echo "schedule: { every: 1h }" >> profiles/big.yaml
check "the profiles are valid" w check

# --- inotify ------------------------------------------------------------
start_server || { finish; exit 1; }
sleep 0.5 # the startup poll of every profile is over
orders_csv drop.tmp 1 20
t0=$(date +%s%N)
mv drop.tmp var/drop/watch/w1.csv
if wait_state w1.csv done 10; then
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$ms" -le 3000 ]; then ok "inotify: loaded ${ms}ms after the drop (stable_for 1s, every 1h)"
  else bad "inotify: loaded only after ${ms}ms (want <= 3000)"; fi
else
  bad "inotify: w1.csv not loaded within 10s (state '$(state_of w1.csv)')"
fi
eq "inotify: 20 rows" "$(sql var/warehouse.db 'select count(*) from watch')" 20

# --- a second server on the same state dir --------------------------------
w run >second.out 2>second.err; rc=$?
eq "second server exits 5" "$rc" 5
contains "second server names the holder" "$(cat second.err)" "another wharf (pid $SRV)"
check "the first server still runs" kill -0 "$SRV"

# --- SIGHUP with a broken profile --------------------------------------------
cat > profiles/broken.yaml <<'EOP'
name: broken
source: { type: spool, path: var/drop/watch, pattern: "*.csv" }
schedule: { cron: "61 * * * *" }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: broken }
EOP
w check >check.out 2>&1; rc=$?
eq "check refuses the bad cron" "$rc" 1
contains "check names file:line:col and the field" "$(cat check.out)" \
  'profiles/broken.yaml:3:19: schedule.cron: "61 * * * *" is not a valid cron expression: minute field "61": 61 is out of range 0-59'
kill -HUP "$SRV"
for _ in $(seq 50); do grep -q reload_refused srv.err && break; sleep 0.1; done
contains "reload refused and logged" "$(cat srv.err)" "reload_refused"
contains "the log names the broken profile's problem" "$(grep reload_refused srv.err)" "minute field"
orders_csv drop.tmp 100 5
mv drop.tmp var/drop/watch/w2.csv
if wait_state w2.csv done 10; then ok "the old profiles keep working after a refused reload"
else bad "w2.csv not loaded after the refused reload (state '$(state_of w2.csv)')"; fi
eq "watch has 25 rows" "$(sql var/warehouse.db 'select count(*) from watch')" 25
rm profiles/broken.yaml
kill -HUP "$SRV"
for _ in $(seq 50); do grep -q '"reloaded"' srv.err && break; sleep 0.1; done
contains "a good reload is applied" "$(cat srv.err)" '"reloaded"'

# --- SIGTERM during a load ------------------------------------------------
ROWS=300000
big_csv big.tmp $ROWS
mv big.tmp var/drop/big/big.csv
caught=
end=$(($(date +%s%N) + 30 * 1000000000))
while [ "$(date +%s%N)" -lt "$end" ]; do
  st=$(state_of big.csv)
  case "$st" in inspected|validated) caught=$st; break ;; loaded|sealed|done) break ;; esac
  sleep 0.02
done
if [ -n "$caught" ]; then ok "SIGTERM sent while the load was in progress (state $caught)"
else bad "could not catch the big load in progress (state '$st')"; fi
took=$(stop_server TERM)
if [ "$took" != timeout ] && [ "$(echo "$took < 10" | bc)" = 1 ]; then
  ok "the server exited ${took}s after SIGTERM"
else
  bad "the server did not exit within 10s of SIGTERM"
fi
contains "clean shutdown logged" "$(cat srv.err)" '"stopped"'
start_server || { finish; exit 1; }
wait_state big.csv done 60 || bad "big.csv not done after the restart (state '$(state_of big.csv)')"
eq "every generated row loaded exactly once" "$(sql var/warehouse.db 'select count(*) from big')" $ROWS
eq "no duplicate order ids" "$(sql var/warehouse.db 'select count(distinct order_id) from big')" $ROWS
eq "one wharf_loads row per big intake" \
  "$(sql var/warehouse.db "select count(*) from wharf_loads where intake in (select distinct _wharf_intake from big)")" 1
eq "every intake done, each once" "$(intake_states)" "done/loaded=3 "
stop_server TERM >/dev/null

# --- expect: late, then missing, alerts once each ---------------------------
# Monday 2026-03-30, the day after the spring change: 07:30 and 09:30 CEST
# (the profile appears only now: servers on the real clock would rightly
# alert for whatever window the real date has missed)
spool_profile daily "{ stable_for: 1s }"
cat >> profiles/daily.yaml <<'EOP'
schedule: { every: 1h }
expect: [ { days: mon-fri, by: "07:00", missing_after: 2h, timezone: Europe/Berlin } ]
EOP
LATE=2026-03-30T05:30:00Z
MISSING=2026-03-30T07:30:00Z
eq "before any server check: no alert yet" "$(cat alerts.jsonl 2>/dev/null | grep -c .)" 0
out=$(WHARF_TEST_NOW=$LATE w status)
contains "status shows late" "$(echo "$out" | grep '^daily')" " late "
contains "status says since when" "$(echo "$out" | grep '^daily')" "due 07:00, late since 07:00"
eq "status --json: state late" "$(WHARF_TEST_NOW=$LATE w status --json | python3 -c 'import json,sys
print([p["state"] for p in json.load(sys.stdin) if p["profile"]=="daily"][0])')" late
eq "profiles without expect stay ok" "$(WHARF_TEST_NOW=$LATE w status --json | python3 -c 'import json,sys
print([p["state"]+"/"+str(p["freshness"]) for p in json.load(sys.stdin) if p["profile"]=="watch"][0])')" "ok/None"

start_server WHARF_TEST_NOW=$LATE || { finish; exit 1; }
for _ in $(seq 100); do [ -s alerts.jsonl ] && grep -q '"sla_late"' srv.err && break; sleep 0.1; done
stop_server TERM >/dev/null
eq "sla_late logged" "$(grep -c '"sla_late"' srv.err)" 1
eq "one alert so far" "$(grep -c . alerts.jsonl 2>/dev/null)" 1
eq "the alert is the late event" "$(python3 -c 'import json
e = json.loads(open("alerts.jsonl").readline())
print(e["event"], e["profile"], e["window"]["days"], e["window"]["by"], e["window"]["timezone"], e["last_loaded"], e["time"])')" \
  "late daily mon-fri 07:00 Europe/Berlin None 2026-03-30T05:30:00.000Z"

out=$(WHARF_TEST_NOW=$MISSING w status)
contains "status shows missing" "$(echo "$out" | grep '^daily')" " missing "
contains "missing since by + missing_after" "$(echo "$out" | grep '^daily')" "due 07:00, missing since 09:00"
start_server WHARF_TEST_NOW=$MISSING || { finish; exit 1; }
for _ in $(seq 100); do [ "$(grep -c . alerts.jsonl)" -ge 2 ] && grep -q '"sla_missing"' srv.err && break; sleep 0.1; done
stop_server TERM >/dev/null
eq "sla_missing logged" "$(grep -c '"sla_missing"' srv.err)" 1
eq "the second alert is the missing event" "$(sed -n 2p alerts.jsonl | python3 -c 'import json,sys
e = json.load(sys.stdin); print(e["event"], e["profile"], e["day"])')" "missing daily 2026-03-30"

start_server WHARF_TEST_NOW=$MISSING || { finish; exit 1; }
sleep 1.5
stop_server TERM >/dev/null
eq "a restart does not alert again" "$(grep -c . alerts.jsonl)" 2
eq "the mark is in the ledger" "$(sql var/ledger.db "select value from kv where key = 'sla:daily:2026-03-30:07:00'" 2>/dev/null)" missing

# a file arrives: fresh again
start_server || { finish; exit 1; }
orders_csv drop.tmp 500 3
mv drop.tmp var/drop/daily/d1.csv
wait_state d1.csv done 10 || bad "d1.csv not loaded (state '$(state_of d1.csv)')"
stop_server TERM >/dev/null
NOW=$(($(date +%s) * 1000 + 60000))
contains "after a load the window is ok" "$(WHARF_TEST_NOW=$NOW w status | grep '^daily')" "ok, last "
eq "and status --json says ok" "$(WHARF_TEST_NOW=$NOW w status --json | python3 -c 'import json,sys
print([p["state"]+"/"+p["sla"] for p in json.load(sys.stdin) if p["profile"]=="daily"][0])')" "ok/ok"

finish
