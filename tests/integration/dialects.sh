#!/usr/bin/env bash
# Real-world CSV dialects (issue 15 part 6): Excel's "sep=X" first line is a
# dialect hint, not data; a first record naming the schema's fields is the
# header whatever the heuristics say; the evidence says what was decided and
# why (sep-line / profile / sniffed, schema / heuristic / profile).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme "{ stable_for: 0s }"

ingest() { w ingest -p acme "$@" >out 2>log; }
# dialect evidence of the newest intake: "delimiter_from header_from sep_line header"
evidence() {
  local id
  id=$(w intakes --json | python3 -c 'import json,sys; print(max(json.load(sys.stdin), key=lambda i: i["id"])["id"])')
  w show "$id" --json | python3 -c '
import json, sys
def find(o):
    if isinstance(o, dict):
        if "dialect" in o and isinstance(o["dialect"], dict):
            return o["dialect"]
        for v in o.values():
            r = find(v)
            if r: return r
    elif isinstance(o, list):
        for v in o:
            r = find(v)
            if r: return r
d = find(json.load(sys.stdin)) or {}
print(d.get("delimiter_from"), d.get("header_from"), d.get("sep_line"), d.get("header"), d.get("delimiter"))'
}

# --- sep=; line before the header (Excel "CSV (semicolon)") ---------------
printf 'sep=;\r\norder_id;customer;amount\r\n1;Müller GmbH;12.50\r\n2;Ørsted A/S;3.00\r\n' > sep.csv
ingest sep.csv; rc=$?
eq "a sep=; file loads" "$rc" 0
eq "both rows loaded, the hint line is not data" "$(sql var/warehouse.db 'select count(*) from acme')" 2
eq "values land in their columns" "$(sql var/warehouse.db 'select customer from acme where order_id=2')" "Ørsted A/S"
eq "evidence: delimiter from the sep line, header by schema" "$(evidence)" "sep-line schema True True ;"

# --- sep=, with a row error: the report counts the hint line --------------
printf 'sep=,\norder_id,customer,amount\n3,a,1.00\n4,b,x\n' > sep_bad.csv
ingest sep_bad.csv; rc=$?
eq "a bad row is still rejected" "$rc" 1
REJ=$(w rejects --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
RBAG=$(w show "$REJ" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
contains "the reject names the physical line (hint line counted)" "$(cat "$RBAG/report.txt")" "line 4"

# --- pinned delimiter contradicted by the sep line: a reject, not a guess --
sed -i 's/^csv: .*/csv: { schema: orders.schema.json, dialect: { delimiter: ",", header: true } }/' profiles/acme.yaml
printf 'sep=;\norder_id;customer;amount\n5;c;1.00\n' > sep_pinned.csv
ingest sep_pinned.csv; rc=$?
eq "sep line against the pinned delimiter is rejected" "$rc" 1
contains "the reason names both" "$(w show "$(w rejects --json | python3 -c 'import json,sys; print(max(json.load(sys.stdin), key=lambda i: i["id"])["id"])')")" "sep=;"
printf 'sep=,\norder_id,customer,amount\n6,d,1.00\n' > sep_pinned_ok.csv
ingest sep_pinned_ok.csv; rc=$?
eq "a sep line agreeing with the pinned delimiter loads" "$rc" 0
eq "evidence: pinned header, delimiter confirmed by the sep line" "$(evidence)" "sep-line profile True True ,"
sed -i 's/^csv: .*/csv: { schema: orders.schema.json }/' profiles/acme.yaml

# --- a header whose last field is empty is still the header (schema) -------
cat > schemas/orders.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer"},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"},
  {"name": "note", "type": "string"}
]}
EOS
sed -i 's/table: acme }/table: acme2 }/' profiles/acme.yaml
printf 'order_id,customer,amount,\n10,x,1.5,\n11,y,2.5,\n' > empty_last.csv
ingest empty_last.csv; rc=$?
# the fourth header cell is empty: it cannot name "note", so the header check
# reports it; what matters is that the first record was taken as the header
# and never loaded as data
eq "evidence: header decided by the schema" "$(evidence | cut -d' ' -f2,4)" "schema True"
eq "the header row was never loaded as data" "$(sql var/warehouse.db "select count(*) from acme2 where customer='customer'" 2>/dev/null || echo 0)" 0
printf 'order_id,customer,amount,note\n10,x,1.5,\n11,y,2.5,\n' > empty_vals.csv
ingest empty_vals.csv; rc=$?
eq "empty note values load" "$rc" 0
eq "two rows" "$(sql var/warehouse.db 'select count(*) from acme2')" 2

# --- without a schema match the heuristic still decides (and says so) ------
printf '10,x,1.5,n\n' > noheader.csv
ingest noheader.csv
eq "evidence: heuristic decided there is no header" "$(evidence | cut -d' ' -f2,4)" "heuristic False"

finish
