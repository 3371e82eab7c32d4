#!/usr/bin/env bash
# wharf run re-verifies the archive on a schedule (verify.every, at most
# verify.rate bytes per second): the last result is in `wharf status`
# (--json: verify), a tampered bag makes its profile `tampered` with the
# finding and runbooks/verify-tamper.md, and the alert fires once.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
spool_profile beta '{ done_file: "{name}.done" }'
mkdir alerts
cat > wharf.yaml <<'EOF2'
verify: { every: 1s, rate: 10MB }
alert: "cat > $(mktemp alerts/a.XXXXXX)"
EOF2
orders_csv a.csv 1 5; w ingest -p acme a.csv >/dev/null 2>&1
orders_csv b.csv 10 5; w ingest -p beta b.csv >/dev/null 2>&1
field() { w status --json | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin) if p["profile"] == sys.argv[1]][0]
v = p
for k in sys.argv[2].split("."): v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$1" "$2"; }
wait_verify() { # wait until a verify after $1 (ms) is recorded
  for _ in $(seq 1 150); do
    t=$(sql var/ledger.db "select json_extract(value, '\$.time') from kv where key = 'verify:last'" 2>/dev/null)
    [ -n "$t" ] && [ "$t" -gt "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

T0=$(($(date +%s%3N)))
"$WHARF" run >srv.out 2>srv.err &
SRV=$!
wait_verify "$T0" || bad "no scheduled verify recorded"
eq "a clean archive: status records the verify as ok" "$(field acme verify.ok)" True
eq "and counts the bags" "$(field acme verify.bags)" 2
eq "acme is ok" "$(field acme state)" ok

# tamper with acme's bag: payload and its manifest
A=$(w intakes -p acme --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
BAG=$(w show "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
chmod -R u+w "$BAG"
sed -i 's/customer 2/customer 9/' "$BAG/data/a.csv"
(cd "$BAG" && sha256sum data/a.csv > manifest-sha256.txt)
T1=$(($(date +%s%3N)))
wait_verify "$T1" || bad "no second verify recorded"
kill -TERM $SRV; wait $SRV
eq "the server stopped cleanly" "$?" 0
eq "the tampered bag's profile is tampered" "$(field acme state)" tampered
contains "the reason names the changed file" "$(field acme reason)" "data/a.csv was changed"
eq "the reason names the runbook" "$(field acme runbook)" runbooks/verify-tamper.md
eq "the intake is named" "$(field acme intake)" "$A"
eq "the other profile's bags are not blamed" "$(field beta state)" ok
eq "status --json: the verify failed" "$(field beta verify.ok)" False
contains "the log has it" "$(cat srv.err)" '"event":"verify_tampered"'

# the alert (wharf once sends what the server found, as the server does each minute)
w once >/dev/null 2>&1
w once >/dev/null 2>&1
n=$(grep -l '"kind":"tampered"' alerts/a.* 2>/dev/null | wc -l)
eq "the tamper alerts once" "$n" 1
f=$(grep -l '"kind":"tampered"' alerts/a.* | head -1)
eq "the alert names profile, intake and runbook" "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["profile"], e["intake"], e["runbook"])' "$f")" \
  "acme $A runbooks/verify-tamper.md"
"$WHARF" verify >/dev/null 2>&1; eq "wharf verify agrees (exit 1)" "$?" 1
finish
