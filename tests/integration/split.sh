#!/usr/bin/env bash
# on_invalid: split with an archive of many parts: every invalid row of every
# part is parked in the bag, and the count in bag-info and `wharf show` is
# the number written.  Sealing bags exactly the files the validator reported
# (recorded in the ledger), also when the seal runs after a restart.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
mkdir -p var/drop/split
cat > profiles/split.yaml <<'EOP'
name: split
source: { type: spool, path: var/drop/split, pattern: "*.zip", complete_when: { stable_for: 1s } }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: split }
on_invalid: split
max_invalid: 1000
EOP
check "profile is valid" w check split

# parts.zip NAME: 12 parts; part k has 5 valid rows and k invalid ones
# (a negative amount), each invalid row named bad-<part>-<n>.
make_zip() {
  python3 - "$1" <<'EOPY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    oid = 1
    for k in range(1, 13):
        rows = ["order_id,customer,amount"]
        for _ in range(5):
            rows.append(f"{oid},good-{k},1.50"); oid += 1
        for n in range(1, k + 1):
            rows.append(f"{oid},bad-{k}-{n},-1"); oid += 1
        z.writestr(f"part{k:02d}.csv", "\n".join(rows) + "\n")
EOPY
}
WANT=78 # 1 + 2 + ... + 12

# bag_check BAG LABEL: every bad-* row is in the bag, exactly once each
bag_check() {
  local bag=$1 label=$2 got
  eq "$label: one invalid-rows file per part" "$(ls "$bag" | grep -c '^invalid-rows-.*\.csv$')" 12
  got=$(cat "$bag"/invalid-rows-*.csv | grep -o 'bad-[0-9]*-[0-9]*' | sort -u | wc -l)
  eq "$label: every invalid row is in the bag" "$got" "$WANT"
  eq "$label: no invalid row twice" "$(cat "$bag"/invalid-rows-*.csv | grep -c 'bad-')" "$WANT"
  contains "$label: invalid-rows-12.csv holds part 12's rows" "$(cat "$bag/invalid-rows-12.csv")" "bad-12-12"
  eq "$label: bag-info counts the rows written" \
    "$(sed -n 's/^Wharf-Invalid-Rows: //p' "$bag/bag-info.txt" | tr -d '\r')" "$WANT"
  check "$label: tag manifest covers the invalid rows" grep -q 'invalid-rows-12.csv' "$bag/tagmanifest-sha256.txt"
  check "$label: bag passes sha256sum -c" bash -c "cd '$bag' && sha256sum -c --quiet tagmanifest-sha256.txt"
}

# --- straight through --------------------------------------------------
make_zip parts.zip
w ingest -p split parts.zip >out 2>log
ID=$(w intakes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
eq "valid rows of all 12 parts loaded" "$(sql var/warehouse.db 'select count(*) from split')" 60
BAG=$(w show "$ID" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
bag_check "$BAG" "ingest"
contains "show says how many invalid rows are in the bag" "$(w show "$ID")" \
  "invalid   $WANT rows parked in the bag (12 files)"
eq "show --json has the same count" \
  "$(w show "$ID" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["invalid_rows"]["rows"])')" "$WANT"
check "wharf verify passes" w verify

# --- sealed after a restart: the list comes from the ledger -------------
make_zip var/drop/split/again.zip
# a different file (new ids) so it is not a duplicate
python3 - var/drop/split/again.zip <<'EOPY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "a") as z:
    z.writestr("zz-readme.txt.csv", "order_id,customer,amount\n9999,extra,2.00\n")
EOPY
w once split >/dev/null 2>&1
sleep 1.2
WHARF_TEST_CRASH=loaded w once split >/dev/null 2>&1
eq "the crash left the intake loaded, not sealed" \
  "$(w intakes --json | python3 -c 'import json,sys; print(sorted(i["state"] for i in json.load(sys.stdin)))')" \
  "['done', 'loaded']"
w once split >/dev/null 2>&1
ID2=$(w intakes --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="again.zip"][0])')
eq "the restarted intake is done" \
  "$(w show "$ID2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" done
BAG2=$(w show "$ID2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
bag_check "$BAG2" "after restart"
check "wharf verify passes after the restart" w verify

finish
