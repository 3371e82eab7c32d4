#!/usr/bin/env bash
# Nodes in `wharf status` (issue 16 part 2): the intakes a process claims
# carry wharf.yaml's `node:`; `wharf status --nodes [--json]` lists the
# nodes with their last heartbeat, pid and intakes in progress (and the
# expired leases among them); plain `wharf status` adds the table below
# the profiles once a node has registered a heartbeat, and is unchanged
# before (a single node); `--json` stays the array of profiles.
#
# Sections 1-4 write heartbeats as rows of the ledger's nodes table, as
# ledger_node_beat writes them, to show ages and expiry at chosen times;
# section 5 has a real `wharf run` register and beat. The ledger calls
# themselves are tested in test_ledger on SQLite and PostgreSQL.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

cat > wharf.yaml <<EOF
state_dir: var
node: alpha
EOF
orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
sed -i 's/^retry: .*/retry: { max_attempts: 2, backoff: 100ms, backoff_max: 200ms }/' profiles/acme.yaml
orders_csv var/drop/acme/a.csv 1 5; touch var/drop/acme/a.csv.done
w once >/dev/null 2>&1   # creates the target table
node_field() { # NAME FIELD [WHARF_TEST_NOW]
  WHARF_TEST_NOW=${3:-} w status --nodes --json | python3 -c "import json,sys
n = [x for x in json.load(sys.stdin) if x['name'] == '$1']
print(n[0]['$2'] if n else 'absent')"
}

# 1. a single node that never sent a heartbeat: status as before
st=$(w status)
check "no node table while no node has registered" bash -c '! grep -q "^NODE" <<<"$1"' _ "$st"
eq "status --json is still the array of profiles" "$(w status --json | python3 -c 'import json,sys; print(type(json.load(sys.stdin)).__name__)')" list
eq "--nodes --json: nobody beat or holds an intake yet" "$(w status --nodes --json)" "[]"

# 2. an intake in progress: the target locked, the load waits to retry
lock_target() {
  python3 - "$1" <<'EOP' &
import sqlite3, sys, time
c = sqlite3.connect("var/warehouse.db", isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE"); open("locked", "w").close(); time.sleep(float(sys.argv[1])); c.execute("ROLLBACK")
EOP
  lockpid=$!
  # python's start is slow on a loaded machine (5 s was seen to be short)
  for _ in $(seq 1 300); do [ -e locked ] && break; sleep 0.1; done
  [ -e locked ] || bad "the target was not locked in 30 s"
}
orders_csv var/drop/acme/b.csv 100 5; touch var/drop/acme/b.csv.done
lock_target 14
w once >/dev/null 2>&1
eq "b.csv waits in progress" "$(w intakes --json | python3 -c 'import json,sys
print([i["state"] in ("inspected", "validated") for i in json.load(sys.stdin) if i["name"] == "b.csv"])')" "[True]"
eq "alpha holds it" "$(node_field alpha in_progress)" 1
eq "alpha never sent a heartbeat" "$(node_field alpha heartbeat)" None
eq "under a live lease" "$(node_field alpha expired_leases)" 0

# 3. heartbeats (what the server will write with ledger_node_beat)
NOW=$(( $(date +%s) * 1000 ))
sql var/ledger.db "INSERT INTO nodes (name, pid, started_ms, heartbeat_ms) VALUES
  ('alpha', 4242, $((NOW - 60000)), $NOW), ('beta', 77, $((NOW - 7200000)), $((NOW - 600000)))"
st=$(WHARF_TEST_NOW=$((NOW + 3000)) w status)
echo "$st" | sed 's/^/    /'
contains "status shows the node table below the profiles" "$st" "NODE   HEARTBEAT        PID  IN PROGRESS  EXPIRED"
contains "alpha: beat 3 s ago, pid, one intake in progress" "$st" "alpha  3s ago          4242            1        0"
contains "beta: beat 10 min ago, nothing in progress" "$st" "beta   10m ago           77            0        0"
eq "the profiles come first" "$(head -1 <<<"$st" | awk '{print $1}')" PROFILE
sn=$(WHARF_TEST_NOW=$((NOW + 3000)) w status --nodes)
eq "--nodes prints the node table alone" "$(head -1 <<<"$sn" | awk '{print $1}')" NODE
eq "--nodes --json: alpha's heartbeat age" "$(node_field alpha heartbeat_age_s $((NOW + 3000)))" 3
eq "--nodes --json: alpha's pid" "$(node_field alpha pid)" 4242
eq "--nodes --json: beta's age" "$(node_field beta heartbeat_age_s $((NOW + 3000)))" 603
eq "two minutes later alpha's lease on b.csv has expired" "$(node_field alpha expired_leases $((NOW + 120000)))" 1

# 4. the lock gone, b.csv loads: alpha holds nothing in progress
wait; rm -f locked
sleep 0.3
w once >/dev/null 2>&1
eq "b.csv loaded" "$(sql var/warehouse.db 'SELECT count(*) FROM acme')" 10
eq "alpha holds nothing in progress" "$(node_field alpha in_progress)" 0
w status --nodes --bogus >/dev/null 2>&1; eq "an unknown option still exits 2" "$?" 2

# 5. a running server registers its node and beats (every third of a lease)
sed -i 's/^node: alpha/node: gamma/' wharf.yaml
"$WHARF" run >run.log 2>&1 &
srv=$!
beat=absent
for _ in $(seq 1 150); do
  beat=$(node_field gamma pid)
  [ "$beat" = "$srv" ] && break
  sleep 0.1
done
eq "the server registered node gamma with its pid" "$beat" "$srv"
age=$(node_field gamma heartbeat_age_s)
if [ "${age:-99}" -le 20 ] 2>/dev/null; then ok "gamma's heartbeat is fresh (${age} s, beats every 20 s)"; else bad "gamma's heartbeat age: ${age:-none}"; fi
kill -TERM "$srv"; wait "$srv"
eq "the server stopped cleanly" "$?" 0

# 6. this node takes back an intake it is still working on: its lease ran
#    out mid-step (here: a load waiting for a locked target), a node
#    (ghost) took it over and died, and this node takes it over from ghost.
#    The copy in work/ stays until the running job is done; the intake
#    finishes. Removing it under the job failed the intake on its missing
#    original (nodes_crash on a loaded CI machine).
sed -i "s/^node: gamma/node: delta\\nlease: 3s/" wharf.yaml
state_of() { sql var/ledger.db "SELECT state FROM intakes WHERE name = '$1'"; }
orders_csv var/drop/acme/c.csv 200 5; touch var/drop/acme/c.csv.done
lock_target 8
"$WHARF" run >run6.log 2>&1 &
srv=$!
st=
for _ in $(seq 1 100); do
  st=$(state_of c.csv)
  case $st in inspected|validated) break ;; esac
  sleep 0.1
done
case ${st:-} in
  inspected|validated) ok "c.csv waits in state $st for the locked target" ;;
  *) bad "c.csv did not come to wait for the target (state ${st:-none})" ;;
esac
sql var/ledger.db "UPDATE intakes SET node = 'ghost', lease_until_ms = 1 WHERE name = 'c.csv'"
tk=0
for _ in $(seq 1 100); do
  tk=$(sql var/ledger.db "SELECT count(*) FROM events e JOIN intakes i ON i.id = e.intake
    WHERE i.name = 'c.csv' AND e.kind = 'takeover' AND e.detail LIKE '%ghost%'")
  [ "$tk" = 1 ] && break
  sleep 0.1
done
eq "delta took c.csv over from ghost while its load waited" "$tk" 1
check "the target was still locked then (the load had not ended)" kill -0 "$lockpid"
wait "$lockpid"; rm -f locked
for _ in $(seq 1 150); do
  case $(state_of c.csv) in done|failed) break ;; esac
  sleep 0.1
done
eq "c.csv done" "$(state_of c.csv)" done
eq "its rows loaded once" "$(sql var/warehouse.db 'SELECT count(*) FROM acme WHERE order_id >= 200')" 5
kill -TERM "$srv"; wait "$srv"

finish
