#!/usr/bin/env bash
# wharf verify compares every bag's original with the sha256 the ledger
# recorded when the file was taken, and names the file that changed: a
# payload edited with manifest-sha256.txt (and even tagmanifest-sha256.txt)
# rewritten to match passes `sha256sum -c`, never `wharf verify`.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
orders_csv a.csv 1 5
w ingest -p acme a.csv >/dev/null 2>&1
orders_csv b.csv 10 5
w ingest -p acme b.csv >/dev/null 2>&1
check "verify passes on untouched bags" w verify
A=$(w intakes --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="a.csv"][0])')
BAG=$(w show "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')

# the payload edited, its manifest rewritten to match
chmod -R u+w "$BAG"
sed -i 's/customer 2/customer 9/' "$BAG/data/a.csv"
(cd "$BAG" && sha256sum data/a.csv > manifest-sha256.txt)
check "sha256sum -c manifest-sha256.txt is fooled" bash -c "cd '$BAG' && sha256sum -c --quiet manifest-sha256.txt"
out=$(w verify 2>&1); rc=$?
eq "verify exits 1" "$rc" 1
contains "verify names the changed file" "$out" "data/a.csv was changed"
contains "against the ledger's sha256 from take time" "$out" "the ledger recorded $(w show "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')"

# and with the tag manifest rewritten too
(cd "$BAG" && sha256sum bag-info.txt bagit.txt manifest-sha256.txt > tagmanifest-sha256.txt)
check "sha256sum -c tagmanifest-sha256.txt is fooled too" bash -c "cd '$BAG' && sha256sum -c --quiet tagmanifest-sha256.txt"
out=$(w verify --json 2>&1)
eq "verify --json still names the file" "$(printf '%s' "$out" | python3 -c 'import json,sys
j = json.load(sys.stdin); print(j["ok"], any("data/a.csv was changed" in p for p in j["problems"]))')" "False True"
check "b.csv's bag is not blamed" bash -c "! w verify 2>&1 | grep -q 'data/b.csv'"
finish
