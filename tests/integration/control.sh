#!/usr/bin/env bash
# Partner control totals (profile control:, issue 23 part 1): a trailer or a
# header record states the record count and exact sums; wharf compares them
# with what it received before the load commits.  Matching and mismatching
# counts and sums, a sum with 20 significant digits, a split file, a
# missing trailer, a misplaced one; the evidence in `show`, the ledger
# (info.control) and bag-info.txt; the runbook's commands in a mismatch.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"

orders_schema
# profile NAME LINE [extra top-level yaml]
profile() {
  cat > "profiles/$1.yaml" <<EOP
name: $1
source: { type: spool, path: var/drop/$1, pattern: "*.csv", complete_when: { stable_for: 1s } }
format: csv
csv: { dialect: { delimiter: ";", header: true }, schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
control: { line: $2, pattern: "^(TRL|HDR)\$", count: 2, sums: { amount: 3 } }
${3:-}
EOP
}
profile trl last
profile hdr first
profile spl last $'on_invalid: split\nmax_invalid: 100%'
check "the profiles are valid" w check trl hdr spl

last_id() { w intakes -p "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
js() { w show "$1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"; }
jx() { w show "$1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); $2"; }
bag_info() { sed -n "s/^$2: //p" "$(js "$1" 'd["bag"]')/bag-info.txt" | tr -d '\r'; }

# --- trailer: count and sum agree --------------------------------------
printf 'order_id;customer;amount\n1;a;12.50\n2;b;7.25\n3;c;40.25\nTRL;3;60.00\n' > t1.csv
w ingest -p trl t1.csv >out 2>log
ID=$(last_id trl)
eq "trailer agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the trailer is not loaded as data" "$(sql var/warehouse.db 'select count(*) from trl')" 3
eq "line numbers stay right" "$(sql var/warehouse.db 'select group_concat(_wharf_line) from trl order by _wharf_line')" "2,3,4"
eq "info.control.ok" "$(js "$ID" 'd["info"]["control"]["ok"]')" True
eq "info.control: stated and received" \
  "$(jx "$ID" 'p=d["info"]["control"]["parts"][0]; print(p["form"], p["line"], p["stated"]["records"], p["stated"]["sums"]["amount"], p["received"]["records"], p["received"]["sums"]["amount"], end="")')" \
  "trailer 5 3 60.00 3 60.00"
contains "show says they agree" "$(w show "$ID")" "control   agree -- control: the file says 3 records / amount 60.00; received 3 / 60.00"
eq "bag-info.txt carries the result" "$(bag_info "$ID" Wharf-Control)" "agree: the file says 3 records / amount 60.00; received 3 / 60.00"

# --- trailer: one record short (count and sum differ) ------------------
printf 'order_id;customer;amount\n11;a;12.50\n12;b;7.25\nTRL;3;60.00\n' > t2.csv
w ingest -p trl t2.csv >out 2>log
ID=$(last_id trl)
eq "count short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
eq "nothing of it loaded" "$(sql var/warehouse.db "select count(*) from trl where _wharf_intake = '$ID'")" 0
contains "both sides shown" "$(js "$ID" 'd["last_error"]')" \
  "control: t2.csv line 4: control: the file says 3 records / amount 60.00; received 2 / 19.75"
contains "the reject names the runbook" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md
eq "info.control.ok false" "$(js "$ID" 'd["info"]["control"]["ok"]')" False
eq "bag-info.txt says they differ" "$(bag_info "$ID" Wharf-Control)" "differ: the file says 3 records / amount 60.00; received 2 / 19.75"
contains "show flags it" "$(w show "$ID")" "control   DIFFER"
contains "the report leads with it" "$(head -n 1 "$(js "$ID" 'd["bag"]')/report.txt")" "line 4"
REJ=$ID

# --- trailer: count right, sum off by a cent ---------------------------
printf 'order_id;customer;amount\n21;a;12.50\n22;b;7.25\nTRL;2;19.76\n' > t3.csv
w ingest -p trl t3.csv >out 2>log
ID=$(last_id trl)
eq "sum off by a cent: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "the sums shown" "$(js "$ID" 'd["last_error"]')" "the file says 2 records / amount 19.76; received 2 / 19.75"

# --- 20 significant digits: a double could not tell these apart ------
printf 'order_id;customer;amount\n31;a;12345678901234567890.10\n32;b;0.02\nTRL;2;12345678901234567890.12\n' > t4.csv
w ingest -p trl t4.csv >out 2>log
eq "20 digits exact: loaded" "$(js "$(last_id trl)" 'd["outcome"]')" loaded
printf 'order_id;customer;amount\n41;a;12345678901234567890.10\n42;b;0.02\nTRL;2;12345678901234567890.13\n' > t5.csv
w ingest -p trl t5.csv >out 2>log
ID=$(last_id trl)
eq "20 digits, last one off: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "shown to the last digit" "$(js "$ID" 'd["last_error"]')" \
  "amount 12,345,678,901,234,567,890.13; received 2 / 12,345,678,901,234,567,890.12"

# --- a missing trailer, a misplaced one, two --------------------------------
printf 'order_id;customer;amount\n51;a;1.00\n' > t6.csv
w ingest -p trl t6.csv >out 2>log
ID=$(last_id trl)
eq "no trailer: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "no trailer: said loudly" "$(js "$ID" 'd["last_error"]')" \
  'control: no trailer (last) control record matching "^(TRL|HDR)$" (the profile requires one)'
printf 'order_id;customer;amount\nTRL;1;1.00\n61;a;1.00\n' > t7.csv
w ingest -p trl t7.csv >out 2>log
ID=$(last_id trl)
eq "a trailer that is not last: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "misplaced: said" "$(js "$ID" 'd["last_error"]')" "the trailer at line 2 is not the last record (line 3 follows)"
eq "no rows of the rejects loaded" "$(sql var/warehouse.db 'select count(*) from trl')" 5

# --- header record ------------------------------------------------------
printf 'HDR;2;30.50\norder_id;customer;amount\n71;a;10.25\n72;b;20.25\n' > h1.csv
w ingest -p hdr h1.csv >out 2>log
ID=$(last_id hdr)
eq "header agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the header record is not data; lines right" "$(sql var/warehouse.db 'select group_concat(_wharf_line) from hdr order by _wharf_line')" "3,4"
eq "header form recorded" "$(js "$ID" 'd["info"]["control"]["parts"][0]["form"]')" header
printf 'HDR;3;30.50\norder_id;customer;amount\n81;a;10.25\n82;b;20.25\n' > h2.csv
w ingest -p hdr h2.csv >out 2>log
ID=$(last_id hdr)
eq "header count differs: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "header: both sides" "$(js "$ID" 'd["last_error"]')" "the file says 3 records / amount 30.50; received 2 / 30.50"
printf 'order_id;customer;amount\n91;a;10.25\n' > h3.csv
w ingest -p hdr h3.csv >out 2>log
ID=$(last_id hdr)
eq "no header record: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "no header record: said" "$(js "$ID" 'd["last_error"]')" "no header (first) control record"

# --- split: totals over every record received, valid and invalid ---------
printf 'order_id;customer;amount\n101;a;10.00\n102;b;-1.50\n103;c;5.00\nTRL;3;13.50\n' > s1.csv
w ingest -p spl s1.csv >out 2>log
ID=$(last_id spl)
eq "split agrees over all records: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the valid rows loaded" "$(sql var/warehouse.db 'select count(*) from spl')" 2
contains "the message says how they split" "$(w show "$ID")" \
  "control: the file says 3 records / amount 13.50; received 3 / 13.50 (2 valid, 1 invalid)"
eq "received valid/invalid in the evidence" "$(jx "$ID" 'r=d["info"]["control"]["parts"][0]["received"]; print(r["valid"], r["invalid"], end="")')" "2 1"
printf 'order_id;customer;amount\n111;a;10.00\n112;b;-1.50\nTRL;3;13.50\n' > s2.csv
w ingest -p spl s2.csv >out 2>log
ID=$(last_id spl)
eq "split, a record short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
eq "split reject: nothing loaded" "$(sql var/warehouse.db "select count(*) from spl where _wharf_intake = '$ID'")" 0
contains "split reject: both sides and the split" "$(js "$ID" 'd["last_error"]')" \
  "the file says 3 records / amount 13.50; received 2 / 8.50 (1 valid, 1 invalid)"

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
  line: middle
  pattern: "(TRL"
  sums: { amount: zero }
EOP
(cd bad && "$WHARF" check b) >out 2>&1; rc=$?
check "a wrong control: section fails check" test "$rc" -ne 0
contains "line: file:line:col" "$(cat out)" "b.yaml:7:9"
contains "pattern refused" "$(cat out)" "control.pattern"
contains "sum field refused" "$(cat out)" "control.sums.amount"

# --- the runbook, in the state of a mismatch ------------------------------
# The profile reads the sum from the wrong field; the operator fixes it
# between "check" and "replay".
rb_deploy "$T/rb" || exit 1
orders_schema
profile acme last
sed -i 's/sums: { amount: 3 }/sums: { amount: 2 }/' profiles/acme.yaml
printf 'order_id;customer;amount\n1;a;12.50\n2;b;7.25\nTRL;2;19.75\n' > a.csv
w ingest -p acme a.csv >/dev/null 2>&1
ID=$(last_id acme)
eq "runbook state: rejected for control" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md
printf 'order_id;customer;amount\n3;c;1.00\nTRL;1;1.00\n' > b.csv
export RB_P=acme RB_ID=$ID RB_FILE=$PWD/b.csv
rb_hook() { case "$1" in "wharf check "*) sed -i 's/sums: { amount: 2 }/sums: { amount: 3 }/' profiles/acme.yaml ;; esac; }
run_runbook runbooks/control-total.md
eq "after the runbook's fix, replay and ingest: loaded" "$(sql var/warehouse.db 'select count(*) from acme')" 3

finish
