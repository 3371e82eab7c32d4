#!/usr/bin/env bash
# Transient failures: a locked target is retried with backoff (attempts
# counted, the reason and its runbook recorded), loads once the lock is gone;
# past retry.max_attempts the intake is parked as failed, never dropped, and
# `wharf replay` resumes it where it stopped.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
sed -i 's/^retry: .*/retry: { max_attempts: 2, backoff: 100ms, backoff_max: 200ms }/' profiles/acme.yaml
orders_csv var/drop/acme/a.csv 1 20; touch var/drop/acme/a.csv.done
w once >/dev/null 2>&1   # creates the target table
orders_csv var/drop/acme/b.csv 100 20; touch var/drop/acme/b.csv.done

lock_target() { # hold an exclusive lock on the target for $1 seconds
  python3 - "$1" <<'EOP' &
import sqlite3, sys, time
c = sqlite3.connect("var/warehouse.db", isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE"); open("locked", "w").close(); time.sleep(float(sys.argv[1])); c.execute("ROLLBACK")
EOP
  for _ in $(seq 1 100); do [ -e locked ] && break; sleep 0.05; done
}

lock_target 14
w once >out 2>log
B=$(w intakes --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="b.csv"][0])')
js=$(w show "$B" --json)
state=$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
check "b.csv waits in an unfinished state while the target is locked" test "$state" = inspected -o "$state" = validated
eq "one attempt counted" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["attempts"])')" 1
contains "the reason says locked" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_error"])')" "locked"
contains "the reason names the runbook" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_error"])')" "runbooks/target-down.md"
contains "the log says it will retry" "$(cat log)" "attempt 1 of 2"
wait; rm -f locked
sleep 0.3
w once >out 2>log
eq "loaded once the lock is gone" "$(sql var/warehouse.db 'select count(*) from acme')" 40

# past max_attempts: parked as failed, then replayed
orders_csv var/drop/acme/c.csv 200 20; touch var/drop/acme/c.csv.done
lock_target 24
w once >/dev/null 2>&1      # attempt 1 (waits out the 10 s busy timeout)
sleep 0.3
w once >/dev/null 2>&1      # attempt 2: parked
wait; rm -f locked
C=$(w intakes --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="c.csv"][0])')
eq "parked as failed after max_attempts" "$(w show "$C" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j["attempts"])')" "failed 2"
contains "status counts it as failed" "$(w status)" "failing"
w once >/dev/null 2>&1
eq "a failed intake is not retried by itself" "$(w show "$C" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" failed
w replay "$C" >out 2>&1
contains "replay resumes it" "$(cat out)" "loaded 20 rows"
eq "all rows, each once" "$(sql var/warehouse.db 'select count(*), count(distinct order_id) from acme')" "60|60"
check "wharf verify passes" w verify
finish
