#!/usr/bin/env bash
# `wharf status` tells the truth: every state of daemon/health.h, each
# provoked by a deployment in that situation, with its reason and runbook,
# in the table and in --json; the start of an outage is kept; columns stay
# aligned with a 63-character profile name; `check --connect` says what it
# saw and passed over, and why.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
DONE='{ done_file: "{name}.done" }'
LONG=p23456789012345678901234567890123456789012345678901234567890123   # 63 characters
for p in fine flood bad lockr lockf gone held off "$LONG"; do spool_profile "$p" "$DONE"; done
spool_profile slow '{ stable_for: 1h }'
spool_profile stuck '{ stable_for: 1s }'
spool_profile nodone "$DONE"
spool_profile daily "$DONE"
echo 'health: { flood: { duplicates: 2, within: 1h } }' >> profiles/flood.yaml
echo 'health: { rejecting_after: 2 }' >> profiles/bad.yaml
echo 'health: { stuck_after: 1s }' >> profiles/stuck.yaml
echo 'health: { stuck_after: 1s }' >> profiles/nodone.yaml
sed -i 's/^retry: .*/retry: { max_attempts: 3, backoff: 1h, backoff_max: 1h }/' profiles/lockr.yaml
sed -i 's/^retry: .*/retry: { max_attempts: 1 }/' profiles/lockf.yaml
sed -i 's#path: var/warehouse.db#path: var/locked.db#' profiles/lockr.yaml profiles/lockf.yaml
sed -i 's/^enabled: .*//; $a enabled: false' profiles/off.yaml
echo 'expect: [ { days: mon-fri, by: "07:00", missing_after: 2h, timezone: Europe/Berlin } ]' >> profiles/daily.yaml
rmdir var/drop/gone

drop() { # drop PROFILE NAME FIRST_ID: a valid file and its done file
  orders_csv "var/drop/$1/$2" "$3" 3; touch "var/drop/$1/$2.done"
}
drop fine a.csv 1
drop "$LONG" a.csv 1
for n in a b c; do drop flood $n.csv 1; done          # a loads, b and c are duplicates
printf 'order_id,customer\n1,x\n' > var/drop/bad/r1.csv; touch var/drop/bad/r1.csv.done
orders_csv var/drop/slow/s.csv 1 3                      # never stable within the test
orders_csv var/drop/stuck/o.csv.filepart 1 3            # an upload that never finishes
orders_csv var/drop/nodone/n.csv 1 3                    # its done file never comes
w pause held >/dev/null

check "check --connect reaches the spools" w check --connect fine stuck
out=$(w check --connect stuck 2>&1)
contains "check --connect names what it passed over" "$out" "o.csv.filepart"
contains "check --connect says why" "$out" 'ignore glob "*.filepart"'
contains "check --connect calls it an upload in progress" "$out" "temporary name of an upload"

w once >once1.out 2>once1.err
GONE_SINCE=$(w status --json | python3 -c 'import json,sys
print([p for p in json.load(sys.stdin) if p["profile"]=="gone"][0]["source_health"]["down_since"])')

# a locked target: lockr retries (attempts left), lockf is parked as failed
python3 - <<'EOP' &
import sqlite3, time
c = sqlite3.connect("var/locked.db", isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE"); open("locked", "w").close(); time.sleep(25); c.execute("ROLLBACK")
EOP
LOCKER=$!
for _ in $(seq 1 100); do [ -e locked ] && break; sleep 0.05; done
drop lockr l.csv 1
drop lockf l.csv 1
printf 'order_id,customer\n2,y\n' > var/drop/bad/r2.csv; touch var/drop/bad/r2.csv.done
w once >once2.out 2>once2.err
kill $LOCKER 2>/dev/null; wait $LOCKER 2>/dev/null

ST=$(w status)
J=$(w status --json)
echo "$ST"
field() { # field PROFILE KEY
  printf '%s' "$J" | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin) if p["profile"] == sys.argv[1]][0]
v = p
for k in sys.argv[2].split("."): v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$1" "$2"
}
line() { printf '%s\n' "$ST" | grep "^$1 "; }

eq "ok: a profile that loaded its file" "$(field fine state)" ok
eq "waiting: a file not stable yet" "$(field slow state)" waiting
contains "waiting says which file" "$(field slow reason)" "s.csv"
eq "flooding: duplicates above the threshold" "$(field flood state)" flooding
contains "flooding counts them" "$(field flood reason)" "2 duplicates within 1h"
eq "flooding names its runbook" "$(field flood runbook)" runbooks/duplicates-flood.md
eq "rejecting: the last 2 files rejected" "$(field bad state)" rejecting
contains "rejecting names the newest reject" "$(field bad reason)" "r2.csv"
eq "rejecting names the reject's runbook" "$(field bad runbook)" runbooks/schema-reject.md
eq "retrying: a locked target with attempts left" "$(field lockr state)" retrying
contains "retrying says why" "$(field lockr reason)" "locked"
contains "retrying counts attempts" "$(field lockr reason)" "1 of 3 attempts, next in"
eq "retrying names the target runbook" "$(field lockr runbook)" runbooks/target-down.md
contains "the table line ends with the runbook" "$(line lockr)" "-- runbooks/target-down.md"
contains "show says how its source was at the last poll" "$(w show "$(field lockr intake)")" "source    ok, last listed 20"
eq "failing: an intake parked as failed" "$(field lockf state)" failing
contains "failing says what failed" "$(field lockf reason)" "l.csv"
eq "failing names the runbook" "$(field lockf runbook)" runbooks/target-down.md
eq "stuck: a partial upload under a temporary name" "$(field stuck state)" stuck
contains "stuck names the file" "$(field stuck reason)" "o.csv.filepart"
contains "stuck gives its size" "$(field stuck reason)" "bytes"
contains "stuck gives its age" "$(field stuck reason)" "in the source for"
eq "stuck lists it in --json" "$(field stuck stuck.0.path) $(field stuck stuck.0.temporary)" "o.csv.filepart True"
eq "stuck names the runbook" "$(field stuck runbook)" runbooks/partial-upload.md
eq "stuck: a file whose done file never came" "$(field nodone state)" stuck
contains "stuck says what it waits for" "$(field nodone reason)" "no done file n.csv.done"
eq "down: a source that cannot be listed" "$(field gone state)" down
contains "down gives the reason" "$(field gone reason)" "var/drop/gone"
eq "down names the runbook" "$(field gone runbook)" runbooks/source-unreachable.md
eq "down counts the failed polls" "$(field gone source_health.failed_polls)" 2
eq "the start of the outage is kept across runs" "$(field gone source_health.down_since)" "$GONE_SINCE"
contains "down says since when, with its zone" "$(line gone)" "since $GONE_SINCE"
eq "paused" "$(field held state)" paused
contains "paused says how to resume" "$(field held reason)" "wharf resume held"
eq "disabled" "$(field off state)" disabled
eq "several problems: the others are listed" "$(field bad also.0.state 2>/dev/null || echo none)" none
LATE=2026-03-30T05:30:00Z
MISSING=2026-03-30T07:30:00Z
J=$(WHARF_TEST_NOW=$LATE w status --json)
eq "late: an expect window passed" "$(field daily state)" late
contains "late names the window's zone" "$(field daily reason)" "Europe/Berlin"
eq "late names its runbook" "$(field daily runbook)" runbooks/expected-file-missing.md
J=$(WHARF_TEST_NOW=$MISSING w status --json)
eq "missing: missing_after passed too" "$(field daily state)" missing
contains "missing says since when" "$(field daily reason)" "missing since 09:00"

# symptom and cause: a stuck file in a late profile shows stuck, lists late
orders_csv var/drop/daily/x.csv.part 1 3
w once daily >/dev/null 2>&1
sed -i 's/^expect: .*/&\nhealth: { stuck_after: 1s }/' profiles/daily.yaml
sleep 1.1
J=$(WHARF_TEST_NOW=$(( $(date +%s) * 1000 + 5000 )) w status --json)
eq "the cause outranks the symptom" "$(field daily state)" stuck
printf '%s' "$J" | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin) if p["profile"] == "daily"][0]
sys.exit(0 if [a["state"] for a in p["also"]] in (["late"], ["missing"]) else 1)' \
  && ok "the symptom is listed with it" || bad "late/missing not in also: $(field daily also)"

# every non-ok profile: reason and runbook in both forms
printf '%s' "$(w status --json)" | python3 -c 'import json,sys
bad = [p["profile"] for p in json.load(sys.stdin) if p["state"] not in ("ok", "waiting", "paused", "disabled") and not (p["reason"] and p["runbook"])]
sys.exit(1 if bad else 0)' && ok "every problem has a reason and a runbook" || bad "a problem without reason or runbook"

# columns: STATE starts at the same column on every line, 63-character names too
cols=$(printf '%s\n' "$ST" | grep -v '^ ' | python3 -c 'import sys, re
lines = sys.stdin.read().splitlines()
head = lines[0]; at = head.index("STATE")
print(all(l[at-2:at] == "  " and l[at] != " " for l in lines[1:]))')
eq "columns aligned with a 63-character profile name" "$cols" True
contains "the long name is shown whole" "$ST" "$LONG "

# a fixed source: ok again, and the outage is over
mkdir -p var/drop/gone
w once gone >/dev/null 2>&1
J=$(w status --json)
eq "a source back is ok again" "$(field gone state)" ok
eq "and its outage is over" "$(field gone source_health.ok)" True

finish
