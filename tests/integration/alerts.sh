#!/usr/bin/env bash
# The `alert:` command fires on rejects, failed intakes, a source going down
# and coming back, stuck files and missed `expect:` windows -- from `wharf
# once` as from `wharf run` -- each event once; every alert's JSON names the
# profile, intake, kind, reason and runbook.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
DONE='{ done_file: "{name}.done" }'
for p in bad broken gone daily; do spool_profile "$p" "$DONE"; done
spool_profile stuck '{ stable_for: 1s }'
echo 'health: { stuck_after: 1s }' >> profiles/stuck.yaml
sed -i 's#path: var/warehouse.db#path: var/nodir/w.db#' profiles/broken.yaml   # cannot be opened: failed
echo 'expect: [ { days: mon-fri, by: "07:00", missing_after: 2h, timezone: Europe/Berlin } ]' >> profiles/daily.yaml
rmdir var/drop/gone
mkdir alerts
cat > wharf.yaml <<'EOF'
alert: "cat > $(mktemp alerts/a.XXXXXX)"
EOF

printf 'order_id,customer\n1,x\n' > var/drop/bad/r1.csv; touch var/drop/bad/r1.csv.done
orders_csv var/drop/broken/b.csv 1 3; touch var/drop/broken/b.csv.done
orders_csv var/drop/stuck/o.csv.filepart 1 3

alerts() { # alerts KIND [PROFILE]: how many alerts of that kind
  python3 - "$@" <<'EOP'
import json, sys
n = 0
import glob
for f in sorted(glob.glob("alerts/a.*")):
    try:
        e = json.load(open(f))
    except ValueError:
        continue  # the alert command is still writing it: counted at the next look
    if e["kind"] == sys.argv[1] and (len(sys.argv) < 3 or e["profile"] == sys.argv[2]): n += 1
print(n)
EOP
}
get() { # get KIND FIELD: that field of the first alert of the kind
  python3 - "$@" <<'EOP'
import json, sys
import glob
for f in sorted(glob.glob("alerts/a.*")):
    try:
        e = json.load(open(f))
    except ValueError:
        continue  # the alert command is still writing it: counted at the next look
    if e["kind"] == sys.argv[1]: print(e.get(sys.argv[2])); break
EOP
}

w once bad broken gone stuck >/dev/null 2>once.err
sleep 1.1
w once bad broken gone stuck >/dev/null 2>>once.err
WHARF_TEST_NOW=2026-03-30T05:30:00Z w once daily >/dev/null 2>>once.err
eq "a reject alerts" "$(alerts rejected bad)" 1
R1=$(w intakes -p bad --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
eq "the reject alert names the intake" "$(get rejected intake)" "$R1"
contains "the reject alert says why" "$(get rejected reason)" "is missing from the header"
eq "the reject alert names its runbook" "$(get rejected runbook)" runbooks/schema-reject.md
eq "the reject alert names the profile" "$(get rejected profile)" bad
eq "a failed intake alerts" "$(alerts failed broken)" 1
contains "the failure alert says why" "$(get failed reason)" "var/nodir/w.db"
eq "the failure alert names its runbook" "$(get failed runbook)" runbooks/target-down.md
check "the failure alert names the intake" test -n "$(get failed intake | grep -v None)"
eq "a source that cannot be listed alerts" "$(alerts source_down gone)" 1
eq "the source alert names its runbook" "$(get source_down runbook)" runbooks/source-unreachable.md
contains "the source alert says why" "$(get source_down reason)" "var/drop/gone"
eq "a stuck upload alerts" "$(alerts stuck stuck)" 1
eq "the stuck alert names the file" "$(get stuck path)" o.csv.filepart
eq "the stuck alert names its runbook" "$(get stuck runbook)" runbooks/partial-upload.md
eq "a missed expect window alerts from once too" "$(alerts late daily)" 1
eq "the late alert names its runbook" "$(get late runbook)" runbooks/expected-file-missing.md
contains "the late alert says why" "$(get late reason)" "Europe/Berlin"
contains "alerts are logged" "$(cat once.err)" '"event":"alert"'

# again: nothing new, nothing sent twice
w once bad broken gone stuck >/dev/null 2>&1
WHARF_TEST_NOW=2026-03-30T05:30:00Z w once daily >/dev/null 2>&1
eq "each event alerts once" "$(ls alerts | wc -l)" 5

# a second reject alerts; the source comes back
printf 'order_id,customer\n2,y\n' > var/drop/bad/r2.csv; touch var/drop/bad/r2.csv.done
mkdir -p var/drop/gone
w once bad broken gone stuck >/dev/null 2>&1
eq "a new reject alerts again" "$(alerts rejected bad)" 2
eq "a source back alerts" "$(alerts source_up gone)" 1
w once bad broken gone stuck >/dev/null 2>&1
eq "and only once" "$(ls alerts | wc -l)" 7

# the server sends them as well (an outage while it runs)
rmdir var/drop/gone
cat >> profiles/gone.yaml <<'EOF'
schedule: { every: 1s }
EOF
"$WHARF" run >srv.out 2>srv.err &
SRV=$!
for _ in $(seq 1 200); do [ "$(alerts source_down gone)" = 2 ] && break; sleep 0.1; done
kill -TERM $SRV; wait $SRV
eq "wharf run alerts a source going down" "$(alerts source_down gone)" 2
finish
