#!/usr/bin/env bash
# Partner control totals in an XML document (profile control: element:,
# issue 23 part 1): a header or trailer element holds the count and sums;
# XPath expressions on that element alone (built while the document
# streams, never the whole DOM) give the stated values, compared with the
# records shredded.  Matching and mismatching count and sum (20
# significant digits), a header element, a missing element, a split file,
# a control file beside an XML file; the evidence in `show` and
# bag-info.txt; check's diagnostics.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

cat > schemas/batch.xsd <<'EOS'
<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:complexType name="totals">
    <xs:sequence>
      <xs:element name="records" type="xs:string"/>
      <xs:element name="sum" minOccurs="0">
        <xs:complexType><xs:attribute name="amount" type="xs:string"/></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:element name="batch">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="header" type="totals" minOccurs="0"/>
        <xs:element name="order" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="customer" type="xs:string"/>
              <xs:element name="amount">
                <xs:simpleType>
                  <xs:restriction base="xs:decimal"><xs:minInclusive value="0"/></xs:restriction>
                </xs:simpleType>
              </xs:element>
            </xs:sequence>
            <xs:attribute name="id" type="xs:integer" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="trailer" type="totals" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
EOS
# profile NAME CONTROL-YAML [extra top-level yaml]
profile() {
  cat > "profiles/$1.yaml" <<EOP
name: $1
source: { type: spool, path: var/drop/$1, pattern: "*.xml", complete_when: { stable_for: 1s } }
format: xml
xml: { schema: batch.xsd, record: /batch/order, fields: { order_id: "@id", customer: customer, amount: amount } }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
control: $2
${3:-}
EOP
}
profile trl '{ element: /batch/trailer, count: records, sums: { amount: "sum/@amount" } }' \
  'receipt: { dir: var/outbox/trl, formats: [json] }'
profile hdr '{ element: /batch/header, count: "/batch/header/records", sums: { amount: "string(sum/@amount)" } }'
profile spl '{ element: /batch/trailer, count: records, sums: { amount: sum/@amount } }' \
  $'on_invalid: split\nmax_invalid: 100%'
profile ctl '{ file: "{name}.ctl", format: keyvalue, count: records, sums: { amount: amount } }'
check "the profiles are valid" w check trl hdr spl ctl
mkdir -p var/outbox/trl

last_id() { w intakes -p "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
# an intake's `show --json`, read once (its state is final when ingest returns)
js() {
  [ -s "show.$1" ] || w show "$1" --json > "show.$1"
  python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" < "show.$1"
}
bag_info() { sed -n "s/^$2: //p" "$(js "$1" 'd["bag"]')/bag-info.txt" | tr -d '\r'; }
ingest() { w ingest -p "$1" "$2" >out 2>log; last_id "$1"; }
# doc FILE HEADER TRAILER ORDERS...: ORDERS are "id:amount"
doc() {
  local f=$1 h=$2 t=$3; shift 3
  { echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<batch>'
    [ -n "$h" ] && echo "  $h"
    for o in "$@"; do echo "  <order id=\"${o%%:*}\"><customer>c${o%%:*}</customer><amount>${o#*:}</amount></order>"; done
    [ -n "$t" ] && echo "  $t"
    echo '</batch>'; } > "$f"
}
tot() { echo "<$1><records>$2</records><sum amount=\"$3\"/></$1>"; }

# --- trailer element: agree ------------------------------------------------
doc t1.xml "" "$(tot trailer 3 60.00)" 1:12.50 2:7.25 3:40.25
ID=$(ingest trl t1.xml)
eq "trailer element agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the control element is not a record" "$(sql var/warehouse.db 'select count(*) from trl')" 3
contains "show says they agree" "$(w show "$ID")" \
  "control   agree -- control: the file says 3 records / amount 60.00; received 3 / 60.00"
eq "evidence: form, element, line" \
  "$(js "$ID" 'd["info"]["control"]["parts"][0]["form"], d["info"]["control"]["parts"][0]["element"], d["info"]["control"]["parts"][0]["line"]')" \
  "element /batch/trailer 6"
eq "bag-info.txt carries the result" "$(bag_info "$ID" Wharf-Control)" \
  "agree: the file says 3 records / amount 60.00; received 3 / 60.00"

receipt_of() { ls var/outbox/trl/*"$1"*.json | head -n 1; }
rget() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
receipt_valid() {
  python3 - "$WHARF_SOURCE_DIR/docs/receipt.schema.json" "$1" <<'PY'
import json, sys, jsonschema
s = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(s).validate(json.load(open(sys.argv[2])))
PY
}
R=$(receipt_of "$ID")
eq "the partner's receipt says the totals agree" "$(rget "$R" 'r["control"]["agree"], r["control"]["message"]')" \
  "True control: the file says 3 records / amount 60.00; received 3 / 60.00"
check "the receipt validates against docs/receipt.schema.json" receipt_valid "$R"

# --- trailer element: a record short -----------------------------------------
doc t2.xml "" "$(tot trailer 3 60.00)" 11:12.50 12:7.25
ID=$(ingest trl t2.xml)
R=$(receipt_of "$ID")
eq "the reject's receipt says they differ" "$(rget "$R" 'r["control"]["agree"], r["control"]["message"]')" \
  "False control: the file says 3 records / amount 60.00; received 2 / 19.75"
check "that receipt validates too" receipt_valid "$R"
eq "count short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
eq "nothing of it loaded" "$(sql var/warehouse.db "select count(*) from trl where _wharf_intake = '$ID'")" 0
contains "both sides shown" "$(js "$ID" 'd["last_error"]')" \
  "control: the file says 3 records / amount 60.00; received 2 / 19.75"
eq "the runbook" "$(js "$ID" 'd["info"]["runbook"]')" runbooks/control-total.md
eq "bag-info.txt says they differ" "$(bag_info "$ID" Wharf-Control)" \
  "differ: the file says 3 records / amount 60.00; received 2 / 19.75"

# --- 20 significant digits ---------------------------------------------------
doc t3.xml "" "$(tot trailer 2 12345678901234567890.12)" 21:12345678901234567890.10 22:0.02
ID=$(ingest trl t3.xml)
eq "20 digits exact: loaded" "$(js "$ID" 'd["outcome"]')" loaded
doc t4.xml "" "$(tot trailer 2 12345678901234567890.13)" 31:12345678901234567890.10 32:0.02
ID=$(ingest trl t4.xml)
eq "20 digits, last one off: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "shown to the last digit" "$(js "$ID" 'd["last_error"]')" \
  "amount 12,345,678,901,234,567,890.13; received 2 / 12,345,678,901,234,567,890.12"

# --- missing, repeated, empty XPath ------------------------------------------
doc t5.xml "" "" 41:1.00
ID=$(ingest trl t5.xml)
eq "no control element: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "no control element: said" "$(js "$ID" 'd["last_error"]')" \
  "control: no control element /batch/trailer in the document (the profile requires one)"
doc t6.xml "" "$(tot trailer 1 1.00) $(tot trailer 1 1.00)" 51:1.00
ID=$(ingest trl t6.xml)
contains "two control elements: said" "$(js "$ID" 'd["last_error"]')" \
  "a second control element /batch/trailer at line 4 (the first is at line 4)"
doc t7.xml "" "<trailer><records>1</records></trailer>" 61:1.00
ID=$(ingest trl t7.xml)
contains "an XPath that selects nothing: said" "$(js "$ID" 'd["last_error"]')" \
  "the control element /batch/trailer at line 4: sum/@amount (control.sums.amount) selects nothing or an empty value"

# --- header element, absolute XPath and an XPath function --------------------
doc h1.xml "$(tot header 2 30.50)" "" 71:10.25 72:20.25
ID=$(ingest hdr h1.xml)
eq "header element agrees: loaded" "$(js "$ID" 'd["outcome"]')" loaded
doc h2.xml "$(tot header 2 30.50)" "" 81:10.25 82:20.24
ID=$(ingest hdr h2.xml)
eq "header, sum off: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "header: both sides" "$(js "$ID" 'd["last_error"]')" "the file says 2 records / amount 30.50; received 2 / 30.49"

# --- split: totals over every record shredded ------------------------------
doc s1.xml "" "$(tot trailer 3 13.50)" 101:10.00 102:-1.50 103:5.00
ID=$(ingest spl s1.xml)
eq "split agrees over all records: loaded" "$(js "$ID" 'd["outcome"]')" loaded
eq "the valid rows loaded" "$(sql var/warehouse.db 'select count(*) from spl')" 2
contains "the message says how they split" "$(w show "$ID")" \
  "control: the file says 3 records / amount 13.50; received 3 / 13.50 (2 valid, 1 invalid)"
doc s2.xml "" "$(tot trailer 3 13.50)" 111:10.00 112:-1.50
ID=$(ingest spl s2.xml)
eq "split, a record short: rejected" "$(js "$ID" 'd["outcome"]')" rejected
contains "split reject: both sides and the split" "$(js "$ID" 'd["last_error"]')" \
  "the file says 3 records / amount 13.50; received 2 / 8.50 (1 valid, 1 invalid)"

# --- a control file beside an XML file: the shredded records' sums ----------
doc c1.xml "" "" 121:1.25 122:2.25
printf 'records=2\namount=3.50\n' > c1.xml.ctl
ID=$(ingest ctl c1.xml)
eq "XML with a control file: loaded" "$(js "$ID" 'd["outcome"]')" loaded
doc c2.xml "" "" 131:1.25 132:2.25
printf 'records=2\namount=3.25\n' > c2.xml.ctl
ID=$(ingest ctl c2.xml)
contains "XML with a control file, sum off: both sides" "$(js "$ID" 'd["last_error"]')" \
  "the file says 2 records / amount 3.25; received 2 / 3.50"

# --- profile diagnostics ----------------------------------------------------
mkdir -p bad/profiles bad/schemas && cp schemas/batch.xsd bad/schemas/
printf 'state_dir: var\nprofiles_dir: profiles\nschemas_dir: schemas\n' > bad/wharf.yaml
cat > bad/profiles/b.yaml <<'EOP'
name: b
source: { type: spool, path: var/drop/b }
format: xml
xml: { schema: batch.xsd, record: /batch/order, fields: { order_id: "@id" } }
target: { type: sqlite, path: var/w.db, table: b }
control:
  element: "batch/trailer"
  count: "records[["
  sums: { amount: "sum/@amount" }
EOP
(cd bad && "$WHARF" check b) >out 2>&1; rc=$?
check "a wrong control element config fails check" test "$rc" -ne 0
contains "element: file:line:col" "$(cat out)" "b.yaml:7:12"
contains "element: what is wrong" "$(cat out)" "is not an element path from the root"
contains "XPath refused: file:line:col" "$(cat out)" "b.yaml:8:10"
contains "XPath refused: why" "$(cat out)" '"records[[" is not an XPath expression'

finish
