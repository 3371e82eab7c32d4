#!/usr/bin/env bash
# Schema evolution (issue 15 part 4): target.evolve: add_columns lets an
# agreed new optional field become a nullable column in the load's own
# transaction; everything else (a column missing under evolve: none, a type
# change, a removed field, a new required field) is refused by `wharf check`
# with the fix, before any file is touched.  Follows the walk-through in
# runbooks/schema-reject.md, running its commands.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

v1() {
  cat > schemas/orders.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer", "constraints": {"required": true}},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"}
]}
EOS
}
v2() { # v1 + optional discount
  cat > schemas/orders.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer", "constraints": {"required": true}},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"},
  {"name": "discount", "type": "number"}
]}
EOS
}
v1
spool_profile acme "{ stable_for: 0s }"
spool_profile beta "{ stable_for: 0s }"   # shares orders.schema.json, keeps evolve: none

printf 'order_id,customer,amount\n1,a,10.5\n2,b,20\n' > v1.csv
w ingest -p acme v1.csv >/dev/null 2>&1
w ingest -p beta v1.csv >/dev/null 2>&1
eq "v1 loaded into acme" "$(sql var/warehouse.db 'select count(*) from acme')" 2
eq "v1 loaded into beta" "$(sql var/warehouse.db 'select count(*) from beta')" 2

# the partner adds a column: rejected until the schema says so
printf 'order_id,customer,amount,discount\n3,c,30,1.5\n4,d,40,\n' > v2.csv
w ingest -p acme v2.csv >/dev/null 2>&1; rc=$?
eq "the new column is a reject" "$rc" 1
REJ=$(w rejects -p acme --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# the operator agrees: schema v2; evolve none everywhere -> check refuses, naming the fix
v2
out=$(w check 2>&1); rc=$?
eq "check refuses a schema the tables cannot follow" "$rc" 1
contains "check names the missing column and the policy" "$out" 'has no column "discount"'
contains "check says how to let wharf add it" "$out" "target.evolve: add_columns"
contains "check names the runbook" "$out" "runbooks/schema-reject.md"

# the runbook's step 1: find every profile using the schema (our layout: profiles/)
eq "runbook: grep finds both profiles" "$(grep -l 'orders.schema.json' profiles/*.yaml | wc -l)" 2

# evolve: add_columns on acme only: check still refuses beta (shared schema)
sed -i 's/table: acme }/table: acme, evolve: add_columns }/' profiles/acme.yaml
out=$(w check 2>&1); rc=$?
eq "check still refuses the profile sharing the schema" "$rc" 1
contains "the refusal names beta's table" "$out" 'table "beta" has no column "discount"'
case "$out" in *'table "acme" has no column'*) bad "acme is not refused any more";; *) ok "acme is not refused any more";; esac
check "no column was added by check" bash -c "! sqlite3 var/warehouse.db 'select discount from acme' 2>/dev/null"

sed -i 's/table: beta }/table: beta, evolve: add_columns }/' profiles/beta.yaml
out=$(w check 2>&1); rc=$?
eq "with evolve on both, check passes" "$rc" 0

# replay: the column is added in the load's transaction, old rows NULL
w replay -p acme --all >out 2>log; rc=$?
eq "replay loads the reject" "$rc" 0
eq "the new rows are in" "$(sql var/warehouse.db 'select count(*) from acme')" 4
eq "discount stored" "$(sql var/warehouse.db 'select discount from acme where order_id=3')" 1.5
eq "old rows have no discount" "$(sql var/warehouse.db 'select count(*) from acme where discount is null')" 3
eq "the column is typed from the schema" "$(sql var/warehouse.db "select type from pragma_table_info('acme') where name='discount'")" REAL
contains "the log says the table evolved" "$(cat log)" "new column added"

# a load that fails after the ALTER leaves the table as it was
printf 'order_id,customer,amount,discount\n5,e,50,1\n' > v2b.csv
sed -i 's/^target: .*/target: { type: sqlite, path: var\/warehouse.db, table: gamma, evolve: add_columns }/' profiles/beta.yaml
sql var/warehouse.db 'create table gamma (order_id integer, customer text, amount real, _wharf_intake text)'
sql var/warehouse.db 'create trigger gamma_no before insert on gamma begin select raise(abort, "refused by trigger"); end'
w ingest -p beta v2b.csv >/dev/null 2>&1
check "a failed load rolls its column addition back" bash -c "! sqlite3 var/warehouse.db 'select discount from gamma' 2>/dev/null"

# type change: refused whatever evolve says
sed -i 's/"name": "amount", "type": "number"/"name": "amount", "type": "string"/' schemas/orders.schema.json
out=$(w check acme 2>&1); rc=$?
eq "a type change is refused" "$rc" 1
contains "the refusal explains wharf never changes a type" "$out" "never changes a column's type"
v2

# removed field: refused by check
v1
out=$(w check acme 2>&1); rc=$?
eq "a removed field is refused" "$rc" 1
contains "the refusal names the column the schema no longer has" "$out" 'column "discount" that the schema no longer has'

# a new required field: refused, existing rows cannot have it
cat > schemas/orders.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer", "constraints": {"required": true}},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"},
  {"name": "discount", "type": "number"},
  {"name": "region", "type": "string", "constraints": {"required": true}}
]}
EOS
out=$(w check acme 2>&1); rc=$?
eq "a new required field is refused" "$rc" 1
contains "the refusal says why" "$out" "adds only optional fields"

finish
