#!/usr/bin/env bash
# A source that keeps failing: polls back off, after three consecutive
# failures the source is marked down (circuit open) with its reason in
# `wharf status`, and it recovers by itself once the source is back.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
sed -i 's/^retry: .*/schedule: { every: 1s }/' profiles/acme.yaml
rmdir var/drop/acme
"$WHARF" run >srv.out 2>srv.err &
SRV=$!
for _ in $(seq 1 120); do
  [ "$(w status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["source_health"]["failed_polls"])' 2>/dev/null)" -ge 3 ] 2>/dev/null && break
  sleep 0.25
done
st=$(w status)
contains "status shows the source down since its first failed poll" "$st" "cannot list the source"
contains "status counts the failed polls" "$st" "failed polls"
eq "the legacy source line still says the circuit is open" "$(w status --json | python3 -c 'import json,sys; print("circuit open" in json.load(sys.stdin)[0]["source"])')" True
contains "status gives the reason" "$st" "var/drop/acme"
contains "status names the runbook" "$st" "runbooks/source-unreachable.md"
eq "status state is down" "$(w status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" down
contains "the log has the source_down event" "$(cat srv.err)" "source_down"
before=$(grep -c '"event":"source_down"\|"event":"poll_failed"' srv.err)
sleep 4
after=$(grep -c '"event":"source_down"\|"event":"poll_failed"' srv.err)
check "polls back off: at most 2 probes in 4 s once down (every: 1s would make 4)" test $((after - before)) -le 2

mkdir -p var/drop/acme
orders_csv var/drop/acme/a.csv 1 5; touch var/drop/acme/a.csv.done
for _ in $(seq 1 160); do
  [ "$(sql var/warehouse.db 'select count(*) from acme' 2>/dev/null)" = 5 ] && break
  sleep 0.25
done
eq "after recovery the file is loaded" "$(sql var/warehouse.db 'select count(*) from acme' 2>/dev/null)" 5
contains "status is ok again" "$(w status)" " ok "
contains "recovery is logged" "$(cat srv.err)" "source_recovered"
kill -TERM $SRV; wait $SRV
eq "clean shutdown" "$?" 0
finish
