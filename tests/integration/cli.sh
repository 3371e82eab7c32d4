#!/usr/bin/env bash
# Command-line conventions (issue 15, part 2): listings newest first with
# --limit; rejects lists failed intakes too, marked; -v works; --version and
# -h on every command; --json on check, once, ingest and replay; options
# after operands; usage mistakes exit 2; columns aligned with 63-character
# profile names; no control sequences for TERM=dumb or a non-terminal; a
# command that cannot write its ledger exits 4 with the cause and the
# runbook; root on a state directory of another user becomes that user;
# read-only commands never create a state directory.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"

orders_schema
DONE='{ done_file: "{name}.done" }'
LONG=p23456789012345678901234567890123456789012345678901234567890123   # 63 characters
spool_profile acme "$DONE"
spool_profile "$LONG" "$DONE"
spool_profile broken "$DONE"
sed -i 's#path: var/warehouse.db#path: var/nodir/w.db#' profiles/broken.yaml

# read-only commands before anything ran: no state directory appears
for c in status intakes rejects "show 01M8T85NGA4PHBE4WPZ4M3SAYA" "export --since 2026-01-01" verify; do
  # shellcheck disable=SC2086
  w $c >out 2>err; rc=$?
  [ "$rc" = 4 ] && [ ! -e var/ledger.db ] && ok "$c without a ledger: exit 4, creates nothing" \
    || bad "$c without a ledger: exit $rc, ledger $(ls var/ledger.db 2>&1)"
done
contains "and says why" "$(cat err)" "no ledger at var/ledger.db"
mkdir empty && (cd empty && "$WHARF" status >/dev/null 2>&1)
eq "status without a config creates no ./var" "$(ls -A empty)" ""

# ingest: options after the files; --json
orders_csv a.csv 1 3
orders_csv b.csv 10 3
out=$(w ingest -p acme a.csv --json 2>err); rc=$?
eq "ingest -p P FILE --json: exit 0" "$rc" 0
eq "ingest --json says what happened" "$(printf '%s' "$out" | python3 -c 'import json,sys
a = json.load(sys.stdin); print(len(a), a[0]["file"], a[0]["intake"]["outcome"], a[0]["already_ingested"])')" \
  "1 a.csv loaded False"
check "no file named --json was tried" bash -c "! grep -q -- --json err"
w ingest b.csv -p acme >/dev/null 2>&1
eq "ingest FILE -p P works too" "$(w intakes --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2
printf 'order_id,customer\n1,x\n' > bad.csv
w ingest -p acme bad.csv >/dev/null 2>&1
orders_csv c.csv 20 3
w ingest -p broken c.csv >/dev/null 2>&1
w ingest -p "$LONG" b.csv >/dev/null 2>&1

# intakes: newest first, --limit
ids=$(w intakes --json | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))')
eq "intakes newest first" "$ids" "$(printf '%s\n' $ids | sort -r | tr '\n' ' ' | sed 's/ $//')"
eq "intakes --limit 2: the newest two" "$(w intakes --limit 2 --json | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))')" \
  "$(printf '%s\n' $ids | head -2 | tr '\n' ' ' | sed 's/ $//')"
eq "--limit after -p" "$(w intakes -p acme --limit 1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1
w intakes --limit x >/dev/null 2>&1; eq "--limit x is a usage error" "$?" 2

# rejects: the failed intake too, marked
rj=$(w rejects --json)
eq "rejects lists the reject and the failed intake" "$(printf '%s' "$rj" | python3 -c 'import json,sys
print(" ".join(sorted(i["kind"] + ":" + i["name"] for i in json.load(sys.stdin))))')" "failed:c.csv rejected:bad.csv"
contains "the table marks the failed one" "$(w rejects)" "FAILED"

# columns: PROFILE is as wide as the longest name
for cmd in intakes rejects status; do
  t=$(w $cmd 2>/dev/null | grep -v '^ ')
  aligned=$(printf '%s\n' "$t" | python3 -c 'import sys
import re
lines = sys.stdin.read().splitlines()
head = lines[0]; col = head.index("STATE" if "STATE" in head else "KIND")
rows = [l for l in lines[1:] if re.match(r"[0-9A-Za-z]", l) and not l.startswith(("1 ", "2 ", "3 "))]
print(bool(rows) and all(l[col-2:col] == "  " and l[col] != " " for l in rows))')
  eq "$cmd: columns aligned with a 63-character profile name" "$aligned" True
done

# usage mistakes exit 2; not found is 1
w show 'bad id!' >/dev/null 2>&1; eq "show with a malformed id exits 2" "$?" 2
w show ZZZZZZZZZZ >/dev/null 2>&1; eq "show with an unknown id exits 1" "$?" 1
w replay 'x;y' >/dev/null 2>&1; eq "replay with a malformed id exits 2" "$?" 2
w status --bogus >/dev/null 2>&1; eq "an unknown option exits 2" "$?" 2

# --version and -h on every command
for c in $(w --help | sed -n '/^commands:/,/^$/p' | awk 'NR>1 && NF {print $1}'); do
  [ "$(w $c --version 2>&1)" = "$(w --version)" ] && ok "$c --version" || bad "$c --version: $(w $c --version 2>&1 | head -2)"
  w $c -h 2>/dev/null | grep -q "^usage: wharf" && ok "$c -h" || bad "$c -h"
done

# -v: debug lines (what a poll passed over, and why)
orders_csv var/drop/acme/o.csv.filepart 1 3
w -v once acme >out 2>err
contains "-v shows what a poll skipped and why" "$(cat err)" "o.csv.filepart"
w once acme >out 2>err
check "without -v it does not" bash -c "! grep -q o.csv.filepart err"
w --verbose status >/dev/null 2>&1; eq "--verbose is accepted" "$?" 0

# --json on once, check, replay
out=$(w once acme --json 2>/dev/null)
eq "once --json (after the profile)" "$(printf '%s' "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(sorted(j["counts"])[0], type(j["intakes"]).__name__)')" "duplicates list"
out=$(w check --json acme 2>/dev/null); rc=$?
eq "check --json" "$rc/$(printf '%s' "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["ok"], j["profiles"])')" "0/True ['acme']"
out=$(w check --connect acme --json 2>/dev/null)
eq "check --connect --json lists what it passed over" "$(printf '%s' "$out" | python3 -c 'import json,sys
f = json.load(sys.stdin)["sources"][0]["files"][0]; print(f["path"], f["seen"], f["temporary"])')" "o.csv.filepart skipped True"
BAD=$(w rejects --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="bad.csv"][0])')
out=$(w replay "$BAD" --json 2>/dev/null)
eq "replay ID --json" "$(printf '%s' "$out" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["replayed"], a[0]["intake"]["replay_of"])')" "$BAD $BAD"

# no control sequences for TERM=dumb or when stderr is not a terminal
cat > wharf-text.yaml <<'EOF'
log: { format: text }
EOF
orders_csv d.csv 30 3
w -c wharf-text.yaml ingest -p acme d.csv >out 2>err
check "no escape sequences when stderr is not a terminal" bash -c "! grep -q $'\e' out err"
orders_csv e.csv 40 3
TERM=dumb script -qec "$WHARF -c wharf-text.yaml ingest -p acme e.csv" /dev/null >tty.out 2>&1
contains "ingest ran on a pseudo-terminal" "$(cat tty.out)" "loaded 3 rows"
check "no escape sequences for TERM=dumb on a terminal" bash -c "! grep -q $'\e' tty.out"

# a ledger this user cannot write: exit 4, the cause and the runbook
chmod 755 "$T"
mkdir -p ro && cp -r profiles schemas ro/ && chmod -R a+rX ro
(cd ro && "$WHARF" ingest -p acme ../a.csv >/dev/null 2>&1)   # a ledger, owned by root
chmod -R a+rwX ro/var && chown -R nobody ro/var && chown root ro/var/ledger.db && chmod 644 ro/var/ledger.db
mkdir -p ro/var/drop/acme && cp b.csv ro/var/drop/acme/ && touch ro/var/drop/acme/b.csv.done && chmod -R a+rwX ro/var/drop
(cd ro && setpriv --reuid=nobody --regid=nogroup --clear-groups "$WHARF" once >../out 2>../err); rc=$?
eq "once on a ledger it cannot write exits 4" "$rc" 4
contains "and says why" "$(cat err)" "ledger.db is not writable by uid"
contains "and who owns it" "$(cat err)" "owned by uid 0"
contains "and names the runbook" "$(cat err)" "runbooks/state-permissions.md"
check "the file was left alone" test -e ro/var/drop/acme/b.csv

# root on a state directory that belongs to another user becomes that user
(cd ro && "$WHARF" status >/dev/null 2>../err)
contains "root says it runs as the owner" "$(cat err)" "running as that user, not root"

# the runbook for it, followed: chown back to the directory's owner
rb_deploy "$T/rb" || exit 1
cp "$T"/schemas/* schemas/; cp "$T/profiles/acme.yaml" profiles/
sed -i "s#var/drop/acme#$T/rb/var/drop/acme#; s#var/warehouse.db#$T/rb/var/warehouse.db#" profiles/acme.yaml
mkdir -p var/drop/acme && "$WHARF" -c wharf.yaml once >/dev/null 2>&1
chmod -R a+rX "$T/rb" && chown -R nobody var && chown root var/ledger.db
(setpriv --reuid=nobody --regid=nogroup --clear-groups "$WHARF" -c wharf.yaml once >/dev/null 2>&1); rc=$?
eq "rb: the state is as the runbook describes (exit 4)" "$rc" 4
run_runbook runbooks/state-permissions.md
eq "rb: after the fix the ledger is the owner's again" "$(stat -c %U var/ledger.db)" nobody
(setpriv --reuid=nobody --regid=nogroup --clear-groups "$WHARF" -c wharf.yaml once >/dev/null 2>&1); rc=$?
eq "rb: and once works again" "$rc" 0

# the partial-upload runbook, followed on a stuck .filepart
rb_deploy "$T/partial" || exit 1
cp "$T"/schemas/* schemas/
mkdir -p var/drop/acme
cat > profiles/acme.yaml <<EOP
name: acme
source: { type: spool, path: $T/partial/var/drop/acme, pattern: "*.csv", complete_when: { stable_for: 1s } }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: $T/partial/var/warehouse.db, table: acme }
health: { stuck_after: 1s }
EOP
orders_csv var/drop/acme/orders_0412.csv.filepart 1 3
"$WHARF" -c wharf.yaml once >/dev/null 2>&1
sleep 1.1
eq "rb: the profile is stuck" "$("$WHARF" -c wharf.yaml status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" stuck
export RB_P=acme RB_DROP=$T/partial/var/drop/acme
run_runbook runbooks/partial-upload.md
finish
