#!/usr/bin/env bash
# Record lineage: every loaded row carries _wharf_line, and `wharf trace`
# leads from a row back to its intake, the partner's file (and the archive
# member), the line decoded as at load, the sealed bag and its hashes.
# Cases: a CSV inside a gzip inside a zip (several members), a
# Windows-1252 file, an XML record, target.lineage: none, an upsert that
# supersedes, a row no intake loaded.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
cp "$WHARF_SOURCE_DIR/schemas/orders.xsd" schemas/
csv_profile zipped
cat > profiles/legacy.yaml <<'EOP'
name: legacy
source: { type: spool, path: var/drop/legacy, pattern: "*" }
format: csv
encoding: windows-1252
csv: { schema: orders.schema.json, dialect: { delimiter: ";", quote: "\"", header: true } }
target: { type: sqlite, path: var/warehouse.db, table: legacy, mode: upsert, key: [order_id] }
EOP
cat > profiles/xml.yaml <<'EOP'
name: xml
source: { type: spool, path: var/drop/xml, pattern: "*" }
format: xml
xml:
  schema: orders.xsd
  record: /orders/order
  fields: { order_id: "@id", customer: customer, sku: sku, quantity: quantity }
target: { type: sqlite, path: var/warehouse.db, table: xmlorders }
EOP
csv_profile plain "lineage: none"
check "the profiles are valid" w check

# --- a CSV inside a gzip inside a zip, the second member ------------------
python3 - <<'EOPY'
import gzip, io, zipfile
a = "order_id,customer,amount\r\n1,Alpha,1.50\r\n2,\"Beta\r\nSecond line\",2.50\r\n3,Gamma,3.50\r\n"
b = "order_id,customer,amount\n10,Ten,10.00\n11,Eleven,11.00\n12,Twelve,12.25\n"
with zipfile.ZipFile("bundle.zip", "w") as z:
    z.writestr("first.csv", a)
    z.writestr("second.csv.gz", gzip.compress(b.encode()))
EOPY
w ingest -p zipped bundle.zip >out 2>log
eq "the zip loads 6 rows" "$(sql var/warehouse.db 'select count(*) from zipped')" 6
eq "_wharf_line names the part and the line" "$(sql var/warehouse.db 'select _wharf_line from zipped where order_id = 12')" "2:4"
eq "a record after a quoted line break starts on its physical line" \
   "$(sql var/warehouse.db 'select _wharf_line from zipped where order_id = 3')" "1:5"
ZID=$(sql var/warehouse.db 'select _wharf_intake from zipped limit 1')
w trace zipped order_id=12 >out 2>log; rc=$?
eq "trace exits 0 when the row is traced" "$rc" 0
contains "trace names the intake" "$(cat out)" "intake     $ZID"
contains "trace names the partner's file" "$(cat out)" "file       bundle.zip"
contains "trace names the member" "$(cat out)" "part       2 of 2: second.csv"
contains "trace says how it was packed" "$(cat out)" "packed     zip + gzip"
contains "trace shows the line number" "$(cat out)" "line       4"
contains "trace shows the line as loaded" "$(cat out)" "text       12,Twelve,12.25"
BAG=$(w show "$ZID" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
contains "trace shows the bag" "$(cat out)" "bag        $BAG"
contains "trace shows the file's sha256" "$(cat out)" "sha256     $(sha256sum bundle.zip | cut -c1-64)"
contains "trace shows the tag manifest hash in the chain" "$(cat out)" "tagmanifest $(sha256sum "$BAG/tagmanifest-sha256.txt" | cut -c1-64)"
w trace zipped order_id=12 --json >out.json 2>log
eq "--json has the text" "$(python3 -c 'import json; print(json.load(open("out.json"))[0]["text"])')" "12,Twelve,12.25"
eq "--json has the line" "$(python3 -c 'import json; print(json.load(open("out.json"))[0]["line"])')" 4
eq "--json has the bag" "$(python3 -c 'import json; print(json.load(open("out.json"))[0]["bag"])')" "$BAG"
w trace zipped customer=Alpha >out 2>log
contains "trace by a text column" "$(cat out)" "text       1,Alpha,1.50"
contains "CRLF lines: the first member's line 2" "$(cat out)" "line       2"
check "trace leaves no temporary files in work/" bash -c "[ -z \"\$(ls var/work)\" ]"

# --- a Windows-1252 file: the line is shown decoded ------------------------
printf 'order_id;customer;amount\r\n7;M\xfcller & S\xf6hne;7.00\r\n8;Caf\xe9 \x80uro;8.00\r\n' > legacy_1.csv
w ingest -p legacy legacy_1.csv >out 2>log
eq "the Windows-1252 file loads" "$(sql var/warehouse.db 'select count(*) from legacy')" 2
w trace legacy order_id=8 >out 2>log; rc=$?
eq "trace exits 0" "$rc" 0
contains "the line is shown decoded to UTF-8" "$(cat out)" "text       8;Café €uro;8.00"
contains "the charset is named" "$(cat out)" "charset    WINDOWS-1252"
LID1=$(sql var/warehouse.db 'select _wharf_intake from legacy where order_id = 8')
# an upsert that supersedes order 8: the row now traces to the new file
printf 'order_id;customer;amount\r\n9;Neun;9.00\r\n8;Caf\xe9 neu;8.50\r\n' > legacy_2.csv
w ingest -p legacy legacy_2.csv >out 2>log
w trace legacy order_id=8 >out 2>log
contains "the superseding row traces to its own line" "$(cat out)" "text       8;Café neu;8.50"
contains "trace says which rows it superseded" "$(cat out)" "supersedes 1 rows of $LID1"
w trace legacy order_id=7 >out 2>log
contains "the older intake says it was superseded" "$(cat out)" "superseded 1 rows by"
contains "show lists the supersession on the older intake" "$(w show "$LID1")" "superseded"

# --- an XML record ----------------------------------------------------------
cat > orders.xml <<'EOX'
<?xml version="1.0" encoding="UTF-8"?>
<orders>
  <order id="501"><customer>First</customer><date>2024-01-02</date><sku>ABC-0001</sku><quantity>1</quantity><unit_price>1.00</unit_price></order>
  <order id="502">
    <customer>Second</customer><date>2024-01-02</date><sku>ABC-0002</sku><quantity>2</quantity><unit_price>2.00</unit_price>
  </order>
  <order id="503"><customer>Third</customer><date>2024-01-02</date><sku>ABC-0003</sku><quantity>3</quantity><unit_price>3.00</unit_price></order>
</orders>
EOX
w ingest -p xml orders.xml >out 2>log
eq "the XML loads 3 rows" "$(sql var/warehouse.db 'select count(*) from xmlorders')" 3
eq "_wharf_line holds the line and the XPath" "$(sql var/warehouse.db 'select _wharf_line from xmlorders where order_id = 502')" "4 /orders/order[2]"
w trace xml order_id=503 >out 2>log; rc=$?
eq "trace of an XML record exits 0" "$rc" 0
contains "the record's XPath" "$(cat out)" "xpath      /orders/order[3]"
contains "the record's line" "$(cat out)" '<order id="503"><customer>Third</customer>'

# --- lineage: none, no match, a row no intake loaded -------------------------
orders_csv plain.csv 1 3
w ingest -p plain plain.csv >out 2>log
eq "lineage: none makes no _wharf_line" "$(sql var/warehouse.db "select count(*) from pragma_table_info('plain') where name = '_wharf_line'")" 0
w trace plain order_id=2 >out 2>log; rc=$?
eq "a row without lineage is a problem (exit 1)" "$rc" 1
contains "it says why" "$(cat out)" "no _wharf_line"
w trace zipped order_id=999 >out 2>log; rc=$?
eq "no match exits 1" "$rc" 1
contains "no match is said" "$(cat out)" "no row of zipped matches"
sql var/warehouse.db "insert into zipped values (77, 'Forged', 1, '01ZZZZZZZZZZZZZZZZZZZZZZZZ', '1:2')"
w trace zipped order_id=77 >out 2>log; rc=$?
eq "a row under an unknown intake exits 1" "$rc" 1
contains "it says the ledger has no such intake" "$(cat out)" "the ledger has no such intake"
w trace zipped nosuch=1 >out 2>log; rc=$?
eq "an unknown column is an operational failure (4)" "$rc" 4
w trace zipped >out 2>log; rc=$?
eq "no COLUMN=VALUE is a usage error" "$rc" 2
finish
