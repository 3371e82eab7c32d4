#!/usr/bin/env bash
# Partner control totals in a control file (profile control: file:, issue
# 23 part 1): "{name}.ctl" beside the data file, or the done file's own
# content, in key=value, JSON or one CSV line.  Matching and mismatching
# count and sum (20 significant digits), a missing control file (the drop
# waits, then is rejected loudly), one that does not parse (what, where,
# why), a split file; the control file sealed in the bag; the evidence in
# `show`, the ledger and bag-info.txt; check's file:line:col diagnostics.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"

orders_schema
# profile NAME CONTROL-YAML [extra top-level yaml] [complete_when]
profile() {
  cat > "profiles/$1.yaml" <<EOP
name: $1
source: { type: spool, path: var/drop/$1, pattern: "*.csv", complete_when: { ${4:-stable_for: 1s} } }
format: csv
csv: { dialect: { delimiter: ";", header: true }, schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
control: $2
${3:-}
EOP
  mkdir -p "var/drop/$1"
}
profile kv '{ file: "{name}.ctl", format: keyvalue, count: records, sums: { amount: total_amount } }'
profile js '{ file: "{name}.ctl.json", format: json, count: trailer.records, sums: { amount: trailer.amount } }'
profile cs '{ file: "{name}.ctl", format: csv, delimiter: ";", count: 2, sums: { amount: 3 } }'
profile dn '{ file: done, format: keyvalue, count: records, sums: { amount: amount } }' "" 'done_file: "{name}.done"'
profile sp '{ file: "{name}.ctl", format: keyvalue, count: records, sums: { amount: amount } }' \
  $'on_invalid: split\nmax_invalid: 100%'
profile wt '{ file: "{name}.ctl", format: keyvalue, count: records, wait: 2s }' "" 'min_age: 1ms'
check "the profiles are valid" w check kv js cs dn sp wt

last_id() { w intakes -p "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
# an intake's `show --json`, read once (its state is final when ingest returns)
js() {
  [ -s "show.$1" ] || w show "$1" --json > "show.$1"
  python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" < "show.$1"
}
bag_info() { sed -n "s/^$2: //p" "$(js "$1" 'd["bag"]')/bag-info.txt" | tr -d '\r'; }
ingest() { w ingest -p "$1" "$2" >out 2>log; last_id "$1"; }

# --- key=value: agree, with the control file sealed as evidence --------
printf 'order_id;customer;amount\n1;a;12.50\n2;b;7.25\n3;c;40.25\n' > k1.csv
printf '# totals\nrecords = 3\ntotal_amount=60.00\n' > k1.csv.ctl
ID=$(ingest kv k1.csv)
eq "key=value agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "all rows loaded" "$(sql var/warehouse.db 'select count(*) from kv')" 3
contains "show says they agree" "$(w show "$ID")" \
  "control   agree -- control: the file says 3 records / amount 60.00; received 3 / 60.00"
eq "the evidence names the form and the file" \
  "$(js "$ID" 'd["info"]["control"]["parts"][0]["form"], d["info"]["control"]["parts"][0]["file"]')" \
  "file k1.csv.ctl"
BAG=$(js "$ID" 'd["bag"]')
check "the control file is sealed next to the original" cmp k1.csv.ctl "$BAG/data/k1.csv.ctl"
contains "and listed in the bag's manifest" "$(cat "$BAG/manifest-sha256.txt")" \
  "$(sha256sum k1.csv.ctl | cut -d' ' -f1)  data/k1.csv.ctl"
eq "its hash in the ledger" "$(js "$ID" 'd["info"]["control_file"]["sha256"]')" "$(sha256sum k1.csv.ctl | cut -d' ' -f1)"
eq "bag-info.txt carries the result" "$(bag_info "$ID" Wharf-Control)" \
  "agree: the file says 3 records / amount 60.00; received 3 / 60.00"
check "verify passes over the bag with its control file" w verify "$ID"

# --- key=value: one record short -----------------------------------------
printf 'order_id;customer;amount\n11;a;12.50\n12;b;7.25\n' > k2.csv
printf 'records=3\ntotal_amount=60.00\n' > k2.csv.ctl
ID=$(ingest kv k2.csv)
eq "count short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
eq "nothing of it loaded" "$(sql var/warehouse.db "select count(*) from kv where _wharf_intake = '$ID'")" 0
contains "both sides shown" "$(js "$ID" 'd["last_error"]')" \
  "control: the file says 3 records / amount 60.00; received 2 / 19.75"
contains "the runbook named" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md
contains "the report names the runbook" "$(cat "$(js "$ID" 'd["bag"]')/report.txt")" runbooks/control-total.md
eq "bag-info.txt says they differ" "$(bag_info "$ID" Wharf-Control)" \
  "differ: the file says 3 records / amount 60.00; received 2 / 19.75"
check "the reject bag holds the control file too" test -f "$(js "$ID" 'd["bag"]')/data/k2.csv.ctl"

# --- JSON: 20 significant digits, taken as written ------------------------
printf 'order_id;customer;amount\n21;a;12345678901234567890.10\n22;b;0.02\n' > j1.csv
printf '{"trailer": {"records": 2, "amount": 12345678901234567890.12}}\n' > j1.csv.ctl.json
ID=$(ingest js j1.csv)
eq "JSON, 20 digits exact: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the stated sum kept as written" "$(js "$ID" 'd["info"]["control"]["parts"][0]["stated"]["sums"]["amount"]')" \
  12345678901234567890.12
printf 'order_id;customer;amount\n31;a;12345678901234567890.10\n32;b;0.02\n' > j2.csv
printf '{"trailer": {"records": 2, "amount": 12345678901234567890.13}}\n' > j2.csv.ctl.json
ID=$(ingest js j2.csv)
eq "JSON, last digit off: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "shown to the last digit" "$(js "$ID" 'd["last_error"]')" \
  "amount 12,345,678,901,234,567,890.13; received 2 / 12,345,678,901,234,567,890.12"
printf 'order_id;customer;amount\n41;a;1.00\n' > j3.csv
printf '{"trailer": {"records": 1,\n  "amount": 1.00,}}\n' > j3.csv.ctl.json
ID=$(ingest js j3.csv)
eq "JSON that does not parse: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "what, where, why" "$(js "$ID" 'd["last_error"]')" \
  "control: the control file j3.csv.ctl.json does not parse: line 2 col"
printf 'order_id;customer;amount\n42;a;1.00\n' > j4.csv
printf '{"trailer": {"count": 1, "amount": "1.00"}}\n' > j4.csv.ctl.json
ID=$(ingest js j4.csv)
contains "a key the profile names is missing: said" "$(js "$ID" 'd["last_error"]')" \
  'the control file j4.csv.ctl.json has no key "trailer.records" (the profile'"'"'s control.count)'

# --- one CSV line ------------------------------------------------------
printf 'order_id;customer;amount\n51;a;10.25\n52;b;20.25\n' > c1.csv
printf 'CTL;2;30.50\n' > c1.csv.ctl
ID=$(ingest cs c1.csv)
eq "CSV line agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
printf 'order_id;customer;amount\n53;a;10.25\n54;b;20.25\n' > c2.csv
printf 'CTL;2;30.51\n' > c2.csv.ctl
ID=$(ingest cs c2.csv)
eq "CSV line, sum off: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "CSV line: both sides" "$(js "$ID" 'd["last_error"]')" \
  "the file says 2 records / amount 30.51; received 2 / 30.50"
printf 'order_id;customer;amount\n55;a;10.25\n' > c3.csv
printf 'CTL;1;"10.25\n' > c3.csv.ctl
ID=$(ingest cs c3.csv)
contains "CSV line that does not parse: where and why" "$(js "$ID" 'd["last_error"]')" \
  "the control file c3.csv.ctl does not parse: line 1 field 3: unclosed quote"

# --- key=value that does not parse ----------------------------------------
printf 'order_id;customer;amount\n61;a;1.00\n' > k3.csv
printf 'records=1\ntotal_amount 1.00\n' > k3.csv.ctl
ID=$(ingest kv k3.csv)
eq "unparsable control file: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "what, where, why" "$(js "$ID" 'd["last_error"]')" \
  'control: the control file k3.csv.ctl does not parse: line 2 col 1: expected key=value, found no "="'
cp k3.csv k3b.csv
printf 'records=1\nrecords=2\ntotal_amount=1.00\n' > k3b.csv.ctl
ID=$(ingest kv k3b.csv)
contains "a key twice: said" "$(js "$ID" 'd["last_error"]')" 'line 2 col 1: key "records" again (first on line 1)'

# --- missing: an ingested file without one is rejected loudly -------------
printf 'order_id;customer;amount\n71;a;1.00\n' > k4.csv
ID=$(ingest kv k4.csv)
eq "no control file: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "no control file: said, with the runbook" "$(js "$ID" 'd["last_error"]')" \
  "control: no control file k4.csv.ctl beside the file (the profile requires one"
eq "the runbook" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md

# --- missing in a spool: the drop waits, then is rejected ----------------
printf 'order_id;customer;amount\n81;a;1.00\n' > var/drop/wt/w1.csv
w once >out 2>&1
eq "without its control file the drop waits" "$(w intakes -p wt --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0
printf 'records=1\n' > var/drop/wt/w1.csv.ctl
w once >out 2>&1
eq "once the control file is there: taken and loaded" "$(js "$(last_id wt)" 'd["outcome"]')" loaded
check "the control file is finished with the file (after: delete)" test ! -e var/drop/wt/w1.csv.ctl
check "the control file was never taken as a drop of its own" test "$(w intakes -p wt --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
printf 'order_id;customer;amount\n82;a;1.00\n' > var/drop/wt/w2.csv
w once >out 2>&1
eq "still waiting within control.wait" "$(w intakes -p wt --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1
sleep 2.2
w once >out 2>&1
ID=$(last_id wt)
eq "after control.wait: taken and rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "loudly, with the wait" "$(js "$ID" 'd["last_error"]')" \
  "no control file w2.csv.ctl beside the file (the profile requires one; a drop waits for it up to control.wait, 2s)"

# --- the done file's own content ------------------------------------------
printf 'order_id;customer;amount\n91;a;5.00\n92;b;6.00\n' > var/drop/dn/d1.csv
printf 'records=2\namount=11.00\n' > var/drop/dn/d1.csv.done
w once >out 2>&1
ID=$(last_id dn)
eq "done file as control file: loaded" "$(js "$ID" 'd["outcome"]')" loaded
check "the done file sealed as evidence" test -f "$(js "$ID" 'd["bag"]')/data/d1.csv.done"
printf 'order_id;customer;amount\n93;a;5.00\n' > var/drop/dn/d2.csv
printf 'records=2\namount=11.00\n' > var/drop/dn/d2.csv.done
w once >out 2>&1
ID=$(last_id dn)
eq "done file disagrees: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "done file: both sides" "$(js "$ID" 'd["last_error"]')" "the file says 2 records / amount 11.00; received 1 / 5.00"

# --- split: totals over every record, and how they split -------------------
printf 'order_id;customer;amount\n101;a;10.00\n102;b;-1.50\n103;c;5.00\n' > s1.csv
printf 'records=3\namount=13.50\n' > s1.csv.ctl
ID=$(ingest sp s1.csv)
eq "split agrees over all records: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the valid rows loaded" "$(sql var/warehouse.db 'select count(*) from sp')" 2
contains "the message says how they split" "$(w show "$ID")" \
  "control: the file says 3 records / amount 13.50; received 3 / 13.50 (2 valid, 1 invalid)"
printf 'order_id;customer;amount\n111;a;10.00\n112;b;-1.50\n' > s2.csv
printf 'records=3\namount=13.50\n' > s2.csv.ctl
ID=$(ingest sp s2.csv)
eq "split, a record short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "split reject: both sides and the split" "$(js "$ID" 'd["last_error"]')" \
  "the file says 3 records / amount 13.50; received 2 / 8.50 (1 valid, 1 invalid)"

# --- a replay compares the sealed control file again ------------------------
REJ=$(w intakes -p kv --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="k2.csv"][0])')
w replay "$REJ" >out 2>&1
ID=$(last_id kv)
contains "a replay reads the sealed control file" "$(js "$ID" 'd["last_error"]')" \
  "the file says 3 records / amount 60.00; received 2 / 19.75"

# --- profile diagnostics ----------------------------------------------------
mkdir -p bad/profiles bad/schemas && cp schemas/orders.schema.json bad/schemas/
printf 'state_dir: var\nprofiles_dir: profiles\nschemas_dir: schemas\n' > bad/wharf.yaml
cat > bad/profiles/b.yaml <<'EOP'
name: b
source: { type: spool, path: var/drop/b }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/w.db, table: b }
control:
  file: orders.ctl
  format: yaml
  count: 2
  delimiter: ";"
  wait: soon
EOP
cat > bad/profiles/c.yaml <<'EOP'
name: c
source: { type: spool, path: var/drop/c }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/w.db, table: c }
control: { file: done, format: csv, count: records, line: last }
EOP
(cd bad && "$WHARF" check b c) >out 2>&1; rc=$?
check "a wrong control file config fails check" test "$rc" -ne 0
contains "file without {name}: file:line:col" "$(cat out)" "b.yaml:7:9"
contains "file: what is wrong" "$(cat out)" 'must contain {name}'
contains "format: file:line:col" "$(cat out)" "b.yaml:8:11"
contains "delimiter only with csv" "$(cat out)" "control.delimiter"
contains "wait: not a duration" "$(cat out)" "b.yaml:11:9"
contains "two forms at once" "$(cat out)" "give only one of line:, file: and element:"

# --- the runbook, in the state of a control file that never came -----------
# The operator puts the sealed original beside the control file the partner
# sent afterwards and pushes both through the profile.
rb_deploy "$T/rb" || exit 1
orders_schema
profile acme '{ file: "{name}.ctl", format: keyvalue, count: records, sums: { amount: total } }'
printf 'order_id;customer;amount\n1;a;12.50\n2;b;7.25\n' > a.csv
w ingest -p acme a.csv >/dev/null 2>&1
ID=$(last_id acme)
eq "runbook state: rejected for want of the control file" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md
mkdir -p resend
export RB_P=acme RB_ID=$ID RB_FILE=$PWD/resend/a.csv
RB_EXPECT=$'fail\twharf replay \tthe sealed intake has no control file: its replay is rejected again (the fix is the ingest)'
rb_hook() {
  case "$1" in "wharf ingest "*)
    cp "$(js "$RB_ID" 'd["bag"]')/data/a.csv" resend/a.csv
    printf 'records=2\ntotal=19.75\n' > resend/a.csv.ctl ;;
  esac
}
run_runbook runbooks/control-total.md
eq "after the runbook's ingest: loaded" "$(sql var/warehouse.db 'select count(*) from acme')" 2
check "and the control file sealed with it" test -f "$(js "$(last_id acme)" 'd["bag"]')/data/a.csv.ctl"

finish
