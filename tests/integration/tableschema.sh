#!/usr/bin/env bash
# Table Schema end to end (issue 20): a NaN never loads as NULL; patterns are
# XML Schema regular expressions counted in characters, and one that does not
# compile is refused by `wharf check` at file:line:col; a .json schema is
# strict JSON (a comment or an unquoted key is refused at file:line:col).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

profile() { # name schema
  mkdir -p "var/drop/$1"
  cat > "profiles/$1.yaml" <<EOP
name: $1
source: { type: spool, path: var/drop/$1 }
format: csv
csv: { schema: $2 }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
EOP
}
rows() { sqlite3 var/warehouse.db "select count(*) from $1" 2>/dev/null || echo 0; }

# --- 1. NaN ---------------------------------------------------------------
cat > schemas/m.schema.json <<'EOS'
{"fields": [
  {"name": "id", "type": "integer"},
  {"name": "amount", "type": "number", "constraints": {"required": true, "minimum": 0}}
]}
EOS
profile measures m.schema.json
printf 'id,amount\n1,2.5\n2,NaN\n3,4\n' > nan.csv
w ingest -p measures nan.csv >out 2>&1; rc=$?
eq "NaN under minimum: exit 1 (rejected)" "$rc" 1
contains "NaN reported at line 3, column amount (2)" "$(cat out)" 'line 3, column "amount" (2): "NaN" is NaN, which meets no minimum (0)'
eq "NaN file: nothing loaded" "$(rows measures)" 0

cat > schemas/n.schema.json <<'EOS'
{"fields": [{"name": "id", "type": "integer"}, {"name": "x", "type": "number"}]}
EOS
profile plain n.schema.json
printf 'id,x\n1,INF\n2,-INF\n' > inf.csv
w ingest -p plain inf.csv >out 2>&1; rc=$?
eq "INF and -INF load (SQLite keeps them): exit 0" "$rc" 0
eq "stored as real infinities, not NULL" \
  "$(sqlite3 var/warehouse.db "select group_concat(typeof(x)||':'||(x > 1e308 or x < -1e308), ',') from plain")" "real:1,real:1"
printf 'id,x\n3,1\n4,NaN\n' > nan2.csv
w ingest -p plain nan2.csv >out 2>&1; rc=$?
eq "a bare NaN: exit 1" "$rc" 1
contains "NaN without constraints: unstorable, line 3 column x" "$(cat out)" 'line 3, column "x" (2): "NaN" is NaN, which the SQLite target cannot store'
eq "nothing of the NaN file loaded, no NULL" "$(sqlite3 var/warehouse.db 'select count(*) from plain where x is null or id > 2')" 0

# --- 2/3. XML Schema patterns, characters ----------------------------------
cat > schemas/p.schema.json <<'EOS'
{"fields": [
  {"name": "code", "type": "string", "constraints": {"pattern": "[A-Z]{3}-\\d{4}"}},
  {"name": "name", "type": "string", "constraints": {"pattern": ".{1,5}", "maxLength": 5}}
]}
EOS
profile codes p.schema.json
printf 'code,name\nABC-1234,Cafés\n' > good.csv
w ingest -p codes good.csv >out 2>&1; rc=$?
eq "ABC-1234 / Cafés accepted" "$rc" 0
eq "and loaded" "$(sqlite3 var/warehouse.db 'select code||"|"||name from codes')" "ABC-1234|Cafés"
printf 'code,name\nABC-dddd,Cafés\n' > bad.csv
w ingest -p codes bad.csv >out 2>&1; rc=$?
eq "ABC-dddd rejected" "$rc" 1
# human output goes through the one escaper, which writes a backslash as \\
# (so a name's literal "\x1b" can never pass for an escaped ESC)
contains "ABC-dddd: does not match" "$(cat out)" '"ABC-dddd" does not match pattern "[A-Z]{3}-\\d{4}"'
eq "ABC-dddd not loaded" "$(rows codes)" 1

out=$(w check codes 2>&1); rc=$?
eq "a good pattern passes check" "$rc" 0
cat > schemas/bad-re.schema.json <<'EOS'
{"fields": [
  {"name": "code", "type": "string",
   "constraints": {"pattern": "[A-Z"}}
]}
EOS
profile badre bad-re.schema.json
out=$(w check badre 2>&1); rc=$?
eq "check refuses a pattern that does not compile: exit 1" "$rc" 1
contains "with file:line:col" "$out" 'schemas/bad-re.schema.json:3:31: fields[0].constraints.pattern: "[A-Z" is not a valid XML Schema regular expression'

# --- 4. strict JSON -------------------------------------------------------
printf '{\n  "fields": [\n    // the key\n    {"name": "id", "type": "integer"}\n  ]\n}\n' > schemas/comment.schema.json
profile comment comment.schema.json
out=$(w check comment 2>&1); rc=$?
eq "a .json schema with a comment: exit 1" "$rc" 1
contains "comment refused at file:line:col" "$out" "schemas/comment.schema.json:3:"
contains "as a JSON syntax error" "$out" "JSON syntax error"
printf '{\n  "fields": [\n    {name: "id", "type": "integer"}\n  ]\n}\n' > schemas/unquoted.schema.json
profile unquoted unquoted.schema.json
out=$(w check unquoted 2>&1); rc=$?
eq "a .json schema with an unquoted key: exit 1" "$rc" 1
contains "unquoted key refused at file:line:col" "$out" "schemas/unquoted.schema.json:3:"
printf '{\n\t"fields": [\n\t\t{"name": "id", "type": "integer", "bogus": 1}\n\t]\n}\n' > schemas/tabs.schema.json
profile tabs tabs.schema.json
out=$(w check tabs 2>&1); rc=$?
eq "tab-indented strict JSON is read (and its mistake placed): exit 1" "$rc" 1
contains "the unknown key at its line and column" "$out" 'schemas/tabs.schema.json:3:37: fields[0]: unknown property "bogus"'
printf 'fields:\n  # a comment is fine in YAML\n  - {name: id, type: integer}\n' > schemas/y.schema.yaml
profile yamlok y.schema.yaml
out=$(w check yamlok 2>&1); rc=$?
eq "a .yaml schema with a comment passes" "$rc" 0
# --- what wharf does not support is refused at check, with the reason -----
refused() { # description schema-json expected-text
  printf '%s\n' "$2" > schemas/r.schema.json
  profile refused r.schema.json
  out=$(w check refused 2>&1); rc=$?
  eq "$1: exit 1" "$rc" 1
  contains "$1: explained" "$out" "$3"
}
refused "foreignKeys" '{"fields": [{"name": "id"}], "foreignKeys": [{"fields": "id", "reference": {"resource": "x", "fields": "id"}}]}' \
  'schemas/r.schema.json:1:30: foreignKeys are not supported: wharf validates one file at a time'
refused "uniqueKeys" '{"fields": [{"name": "id"}], "uniqueKeys": [["id"]]}' 'uniqueKeys (Table Schema v2) are not supported'
refused "geojson" '{"fields": [{"name": "g", "type": "geojson"}]}' 'type geojson is not supported'
refused "list" '{"fields": [{"name": "g", "type": "list"}]}' 'type list (Table Schema v2) is not supported'
refused "a field's missingValues" '{"fields": [{"name": "g", "missingValues": ["-"]}]}' "a field's own missingValues (Table Schema v2) is not supported"
refused "exclusiveMinimum" '{"fields": [{"name": "g", "type": "integer", "constraints": {"exclusiveMinimum": 1}}]}' 'exclusiveMinimum (Table Schema v2) is not supported'
refused "unique on an object" '{"fields": [{"name": "g", "type": "object", "constraints": {"unique": true}}]}' 'unique is not supported for type object'
refused "a number format" '{"fields": [{"name": "g", "type": "number", "format": "currency"}]}' 'type number has no format "currency"'
finish
