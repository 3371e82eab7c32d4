#!/usr/bin/env bash
# XSD conformance of the shredding (issue 20): every case in tests/cases/xsd
# (see its README) goes through `wharf check` and `wharf ingest`; the verdict
# and the stored values must be the expected ones, and the same documents go
# through `xmllint --schema`, whose verdict must agree unless the
# disagreement is listed (with its reason) in disagreements.tsv.  The table
# this prints must equal the one in docs/xsd.md.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
CASES="$WHARF_SOURCE_DIR/tests/cases/xsd"
DIS="$CASES/disagreements.tsv"
command -v xmllint >/dev/null || { bad "xmllint (libxml2-utils) is not installed"; finish; exit; }

table="| case | document | what it shows | wharf | xmllint | stored |
|---|---|---|---|---|---|"
seen_dis=""
for dir in "$CASES"/*/; do
  c=$(basename "$dir")
  about=$(cat "$dir/about")
  cp "$dir/schema.xsd" "schemas/$c.xsd"
  mkdir -p "var/drop/$c"
  { printf 'name: %s\nsource: { type: spool, path: var/drop/%s }\nformat: xml\nxml:\n  schema: %s.xsd\n' "$c" "$c" "$c"
    sed 's/^/  /' "$dir/xml.yaml"
    printf 'target: { type: sqlite, path: var/w.db, table: %s }\nduplicates: load\n' "$c"; } >"profiles/$c.yaml"
  out=$(w check "$c" 2>&1); rc=$?
  if [ -f "$dir/check" ]; then
    want=$(cat "$dir/check")
    if [ "$rc" -ne 0 ]; then ok "$c: check refuses"; else bad "$c: check passed, should refuse"; fi
    contains "$c: check says why" "$out" "$want"
    table+=$'\n'"| $c | — | $about | refused at \`check\` | — | — |"
    rm "profiles/$c.yaml"
    continue
  fi
  if [ "$rc" -eq 0 ]; then ok "$c: check passes"; else bad "$c: check: $out"; continue; fi
  cols=$(sed -n 's/^fields: *{\(.*\)}/\1/p' "$dir/xml.yaml" | tr ',' '\n' | sed 's/:.*//; s/ //g' | paste -sd' ')
  sel=$(for k in $cols; do printf 'quote("%s")|' "$k"; done | sed 's/|$//; s/|/, /g')
  for doc in "$dir"/*.xml; do
    d=$(basename "$doc")
    exp="${doc%.xml}.expect"
    want_verdict=$(head -n1 "$exp")
    want_rows=$(tail -n +2 "$exp")
    # one wharf run per document (the sanitized build starts slowly)
    st=$(w ingest -p "$c" --json "$doc" 2>/dev/null | python3 -c 'import json,sys
try: i=[x["intake"] for x in json.load(sys.stdin) if x.get("intake")]
except ValueError: i=[]
print(i[0]["id"], i[0]["outcome"]) if len(i)==1 else print("none", "missing")')
    id=${st% *}; outcome=${st#* }
    case $outcome in loaded) wv=valid ;; rejected) wv=invalid ;; *) wv="$outcome" ;; esac
    eq "$c/$d: wharf's verdict" "$wv" "$want_verdict"
    rows=""
    if [ "$wv" = valid ]; then
      rows=$(sqlite3 -separator '|' var/w.db "select $sel from \"$c\" where _wharf_intake='$id' order by rowid")
      eq "$c/$d: stored values" "$rows" "$want_rows"
    fi
    xmllint --noout --nonet --schema "$dir/schema.xsd" "$doc" >/dev/null 2>&1
    case $? in 0) xv=valid ;; 3 | 4 | 1) xv=invalid ;; *) xv="error $?" ;; esac
    listed=$(grep -F "$c/$d"$'\t' "$DIS" | cut -f2)
    if [ "$xv" = "$wv" ]; then
      [ -z "$listed" ] && ok "$c/$d: xmllint agrees ($xv)" || bad "$c/$d: listed in disagreements.tsv but both say $xv"
      xcell=$xv
    else
      [ -n "$listed" ] && ok "$c/$d: xmllint says $xv, a listed disagreement" || bad "$c/$d: xmllint says $xv, wharf $wv, and disagreements.tsv has no reason"
      xcell="**$xv** (see below)"
      seen_dis+="$c/$d "
    fi
    stored="—"
    if [ "$wv" = valid ]; then
      # one code span per row, a newline inside a value shown as \n
      tsel=$(for k in $cols; do printf "replace(quote(\"%s\"), char(10), '\\\\n')|" "$k"; done | sed 's/|$//; s/|/, /g')
      stored=$(sqlite3 -separator ' | ' -newline $'\x1e' var/w.db \
        "select $tsel from \"$c\" where _wharf_intake='$id' order by rowid" |
        sed 's/|/\\|/g; s/\x1e$//; s/\x1e/` `/g')
      stored="\`$stored\`"
    fi
    table+=$'\n'"| $c | $d | $about | $wv | $xcell | $stored |"
    about="〃"
  done
done
while IFS=$'\t' read -r k why; do
  [[ -z $k || $k == \#* ]] && continue
  [[ " $seen_dis " == *" $k "* ]] || bad "disagreements.tsv lists $k, which no longer disagrees"
done <"$DIS"

printf '%s\n' "$table" >"$T/xsd-table.md"
doc=$(sed -n '/<!-- xsd-cases -->/,/<!-- \/xsd-cases -->/p' "$WHARF_SOURCE_DIR/docs/xsd.md" | sed '1d;$d')
if [ "$doc" = "$table" ]; then ok "docs/xsd.md holds this table"; else
  bad "docs/xsd.md's table differs from the cases; the table now:"; printf '%s\n' "$table"; fi
finish
