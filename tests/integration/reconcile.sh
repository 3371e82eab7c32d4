#!/usr/bin/env bash
# wharf reconcile: the target against the ledger, per intake.  Gaps: rows
# deleted by hand, a row added by hand under an intake's id, a key changed
# by hand, rows under an id no intake has, a table restored from an older
# copy, a missing table.  No gap: an upsert and a replace that supersede
# rows.  The runbook's commands run in the gap's state.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"

orders_schema
csv_profile acme
csv_profile up "mode: upsert, key: [order_id]"
csv_profile snap "mode: replace"
check "the profiles are valid" w check
ids() { w intakes -p "$1" --json | python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(sys.stdin))))'; }
gaps() { w reconcile "$@" --json 2>/dev/null | python3 -c 'import json,sys
for p in json.load(sys.stdin):
    for g in p["gaps"]: print(g["kind"], g["intake"], g["file"], g["expected"], g["found"])'; }

orders_csv a1.csv 1 10; w ingest -p acme a1.csv >/dev/null 2>&1
orders_csv a2.csv 100 20; w ingest -p acme a2.csv >/dev/null 2>&1
read -r A1 A2 <<<"$(ids acme)"
w reconcile >out 2>log; rc=$?
eq "nothing touched: reconcile exits 0" "$rc" 0
contains "it says how much agrees" "$(cat out)" "acme: ok: 2 intakes, 30 rows checked"
eq "the ledger holds the load's digest" "$(w show "$A1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["info"]["load"]["key_digest"]))')" 32
eq "wharf_loads holds the same digest" "$(sql var/warehouse.db "select key_digest from wharf_loads where intake = '$A1'")" \
   "$(w show "$A1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["load"]["key_digest"])')"

# --- rows deleted by hand ------------------------------------------------
sqlite3 var/warehouse.db ".backup var/backup-a.db"
sql var/warehouse.db "delete from acme where order_id in (3, 4)"
w reconcile acme >out 2>log; rc=$?
eq "rows deleted by hand: exit 1" "$rc" 1
contains "the gap names intake, file, both counts and the runbook" "$(cat out)" \
  "GAP acme $A1 a1.csv: rows missing from the target: the ledger says 10 rows, the target has 8 (see runbooks/reconcile-gap.md)"
eq "--json lists the gap" "$(gaps acme)" "rows_missing $A1 a1.csv 10 8"
# the runbook, in this state: its commands find the gap, and its fix (the
# rows back from a backup taken before they were deleted) closes it
mkdir -p root; cp var/backup-a.db root/warehouse-backup.db
export RB_ETC_CONFIG=$T/wharf.yaml RB_ETC_PROFILES=$T/profiles RB_ETC_SCHEMAS=$T/schemas
export RB_STATE=$T/var RB_WHARF=$WHARF RB_ROOT=$T/root RB_LOG=$T/wharf.log RB_ETC_KNOWN_HOSTS=$T/known_hosts
printf 'state_dir: var\nprofiles_dir: profiles\nschemas_dir: schemas\n' > wharf.yaml
: > wharf.log
export RB_P=acme RB_ID=$A1 RB_TARGET_DB=$T/var/warehouse.db
RB_EXPECT=$'fail\twharf reconcile acme$\tthe gap is the finding
fail\twharf reconcile acme --json\tthe gap is the finding'
run_runbook runbooks/reconcile-gap.md
w reconcile acme >out 2>log; rc=$?
eq "the same rows put back: no gap" "$rc" 0

# --- a row added by hand under an intake's id -------------------------------
sql var/warehouse.db "insert into acme (order_id, customer, amount, _wharf_intake) values (999, 'forged', 1, '$A2')"
eq "a row added under an intake's id" "$(gaps acme)" "rows_added $A2 a2.csv 20 21"
sql var/warehouse.db "delete from acme where order_id = 999"

# --- a key changed by hand: counts agree, the digest does not --------------
sql var/warehouse.db "update acme set order_id = 555 where order_id = 105"
eq "a changed key: digest differs" "$(gaps acme)" "digest_differs $A2 a2.csv 20 20"
sql var/warehouse.db "update acme set order_id = 105 where order_id = 555"
check "changed back: no gap" w reconcile acme

# --- rows under an id no intake has -----------------------------------------
sql var/warehouse.db "insert into acme (order_id, customer, amount, _wharf_intake) values (998, 'x', 1, '01AAAAAAAAAAAAAAAAAAAAAAAA')"
eq "rows under an unknown intake id" "$(gaps acme)" "unknown_intake 01AAAAAAAAAAAAAAAAAAAAAAAA  0 1"
sql var/warehouse.db "delete from acme where order_id = 998"

# --- a table restored from an older copy ------------------------------------
sqlite3 var/warehouse.db ".backup var/old.db"
orders_csv a3.csv 300 5; w ingest -p acme a3.csv >/dev/null 2>&1
A3=$(ids acme | awk '{print $3}')
check "a third load agrees" w reconcile acme
cp var/old.db var/warehouse.db; rm -f var/warehouse.db-wal var/warehouse.db-shm
eq "restored from an older copy: the newer load is missing" "$(gaps acme)" "load_missing $A3 a3.csv 5 0"

# --- --since: only intakes sealed since then --------------------------------
w reconcile acme --since 2000-01-01 >/dev/null 2>&1; rc=$?
eq "--since an old date still sees the gap" "$rc" 1
w reconcile acme --since 2999-01-01 >out 2>&1; rc=$?
eq "--since a future date checks nothing" "$rc" 0
w reconcile acme --since yesterday >/dev/null 2>&1; rc=$?
eq "--since with a bad date is a usage error" "$rc" 2

# --- upsert and replace supersede rows: no gap ------------------------------
orders_csv u1.csv 1 10; w ingest -p up u1.csv >/dev/null 2>&1
orders_csv u2.csv 6 10; w ingest -p up u2.csv >/dev/null 2>&1   # 6..10 replace rows of u1
read -r U1 U2 <<<"$(ids up)"
eq "the upsert left 15 rows" "$(sql var/warehouse.db 'select count(*) from up')" 15
w reconcile up >out 2>log; rc=$?
eq "an upsert that supersedes is no gap" "$rc" 0
contains "show says which rows were superseded" "$(w show "$U1")" "superseded"
sql var/warehouse.db "delete from up where order_id = 2"
eq "but a row deleted from the upserted table is" "$(gaps up)" "rows_missing $U1 u1.csv 5 4"
orders_csv s1.csv 1 10; w ingest -p snap s1.csv >/dev/null 2>&1
orders_csv s2.csv 50 3; w ingest -p snap s2.csv >/dev/null 2>&1
check "replace supersedes every earlier row: no gap" w reconcile snap

# --- a missing target table -----------------------------------------------
sql var/warehouse.db "drop table snap"
read -r S1 S2 <<<"$(ids snap)"
eq "a dropped table: the load that left rows is a gap" "$(gaps snap)" "table_missing $S2 s2.csv 3 0"
rm -f var/missing.db
sed -i 's#path: var/warehouse.db#path: var/missing.db#' profiles/snap.yaml
w reconcile snap >out 2>log; rc=$?
eq "a target database that is gone: exit 4" "$rc" 4
contains "it says why" "$(cat log)" "missing.db"
check "reconcile did not create the database" test ! -e var/missing.db

# --- every run is recorded for status ----------------------------------------
eq "the last result is in the ledger" "$(sql var/ledger.db "select json_extract(value, '\$.ok') from kv where key = 'reconcile:up'")" 0
w status --json >out 2>log
eq "status shows the gap" "$(python3 -c 'import json; print([p["state"] for p in json.load(open("out")) if p["profile"] == "up"][0])')" gap
contains "status names the runbook" "$(w status 2>&1)" "reconcile-gap.md"
# --- scheduled: reconcile.every in the server flips status, and alerts --------
mkdir -p "$T/sched" && cd "$T/sched" || exit 1
mkdir -p profiles schemas alerts var/drop/acme
cp "$T/schemas/orders.schema.json" schemas/
cp "$T/profiles/acme.yaml" profiles/
cat > wharf.yaml <<'EOY'
alert: "cat > $(mktemp alerts/a.XXXXXX)"
reconcile: { every: 1s }
EOY
orders_csv s.csv 1 10; w ingest -p acme s.csv >/dev/null 2>&1
field() { w status --json 2>/dev/null | python3 -c "import json,sys
p = [p for p in json.load(sys.stdin) if p['profile'] == 'acme'][0]
print(p['state'] if sys.argv[1] == 'state' else (p['reconcile'] or {}).get(sys.argv[1]))" "$1"; }
"$WHARF" run >srv.out 2>srv.err & SRV=$!
for _ in $(seq 100); do [ "$(field ok)" = True ] && break; sleep 0.1; done
eq "the server reconciled on schedule: ok" "$(field ok)" True
eq "status is ok" "$(field state)" ok
sql var/warehouse.db "delete from acme where order_id = 5"
for _ in $(seq 100); do [ "$(field state)" = gap ] && break; sleep 0.1; done
eq "the next scheduled run finds the gap: status gap" "$(field state)" gap
contains "the server logs the gap" "$(cat srv.err)" '"reconcile_gap"'
kill -TERM "$SRV"; for _ in $(seq 100); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
wait "$SRV" 2>/dev/null
w once >/dev/null 2>&1   # the alert checks (the server makes them every minute)
w once >/dev/null 2>&1
eq "one reconcile_gap alert, once" "$(grep -l '"reconcile_gap"' alerts/a.* 2>/dev/null | wc -l)" 1
contains "the alert names the runbook" "$(cat alerts/a.*)" "reconcile-gap.md"
cd "$T" || exit 1
finish
