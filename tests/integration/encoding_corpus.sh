#!/usr/bin/env bash
# Legacy encodings, issue 20 finding 5: a corpus of short (1-10 line) files
# in every charset `encoding: auto` can choose (tests/corpus/legacy_encodings.py,
# written with Python's codecs) goes through profiles whose auto list holds
# the file's charset.  Each file must either load with exactly its text (read
# back from the SQLite target) or be rejected as uncertain: never loaded
# wrong.  The three-row Windows-1252 file of the issue must load right with
# the default list.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
PY="$WHARF_SOURCE_DIR/tests/corpus/legacy_encodings.py"

python3 "$PY" generate "$T/corpus" || { bad "corpus generation"; finish; exit; }
lists=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["lists"]
for k,v in d.items(): print(k, "auto" if v is None else "{ auto: [%s] }" % ", ".join(v).lower())' "$T/corpus/cases.json")
while read -r prof enc; do
  cat > "profiles/$prof.yaml" <<EOP
name: $prof
source: { type: spool, path: var/drop/$prof }
encoding: $enc
format: csv
csv: { dialect: { delimiter: ";", header: false }, fields: [ { name: name, type: string } ] }
target: { type: sqlite, path: var/warehouse.db, table: t_$prof }
EOP
done <<<"$lists"
check "the corpus profiles are valid" w check
# the list form as docs/configuration.md gives it, and what check refuses
mkdir -p profiles-doc
printf 'profiles_dir: profiles-doc\n' >doc-wharf.yaml
doc_profile() {
  cat >profiles-doc/doc.yaml <<EOP
name: doc
source: { type: spool, path: var/drop/doc }
format: csv
encoding: $1
csv: { dialect: { delimiter: ";", header: false }, fields: [ { name: name, type: string } ] }
target: { type: sqlite, path: var/warehouse.db, table: t_doc }
EOP
}
doc_profile "{ auto: [utf-8, windows-1252, iso-8859-15] }"
check "docs: encoding: { auto: [utf-8, windows-1252, iso-8859-15] } passes check" \
  w -c doc-wharf.yaml check doc
doc_profile "{ auto: [utf-8, shift_jis] }"
out=$(w -c doc-wharf.yaml check doc 2>&1)
contains "check refuses a charset detection cannot tell, at file:line:col" "$out" \
  'doc.yaml:4:27: encoding.auto[1]: "shift_jis" cannot be detected automatically'
for d in "$T"/corpus/*/; do
  prof=$(basename "$d")
  w ingest -p "$prof" "$d"*.csv >"$T/ingest-$prof.log" 2>&1
  rc=$?
  if [ "$rc" -le 1 ]; then ok "ingest -p $prof ran (exit $rc)"; else bad "ingest -p $prof exited $rc"; fi
done
w intakes --json >"$T/intakes.json" 2>/dev/null
if out=$(python3 "$PY" check "$T/corpus" var/warehouse.db "$T/intakes.json"); then
  ok "no file of the corpus was loaded with other text than it holds"
else
  bad "corpus: files loaded wrong or rejected for another reason"
fi
printf '%s\n' "$out"

# the issue's file loads, with the default list, as Windows-1252
id=$(python3 -c 'import json,sys
for i in json.load(open(sys.argv[1])):
    if i["profile"]=="default" and i["name"]=="issue20.csv": print(i["id"])' "$T/intakes.json")
eq "issue 20: the three-row Windows-1252 file loads right" \
  "$(sql var/warehouse.db "select group_concat(name, '|') from t_default where _wharf_intake='$id'")" \
  "Müller GmbH €|François Sàrl|Ørsted A/S"
contains "issue 20: detected as WINDOWS-1252" "$(w show "$id" 2>/dev/null)" '"charset": "WINDOWS-1252"'
finish
