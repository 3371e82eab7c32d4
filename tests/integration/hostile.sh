#!/usr/bin/env bash
# Hostile inputs: tests/corpus/generate.py writes the corpus (XXE, entity
# bombs, deep nesting; zip slip, absolute, link and device members, a
# 100,000-entry tar, gzip and nested zip bombs, truncated and corrupt
# archives; invalid UTF-8, NULs, a 100 MB line, an unclosed quote, every BOM,
# mixed line endings; hostile file names and headers) into a temp dir, and
# each case goes through `wharf ingest -p PROFILE` under `ulimit -v` (1 GiB)
# and `timeout`.  tests/corpus/expected.tsv gives, per case, the profile,
# the outcome (loaded | rejected | quarantined) and a substring of the reason
# `wharf show --json` must give.  Also: no crash (exit 0 or 1 only), nothing
# written outside the state dir, nothing outside the temp dir touched, and
# the SQLite target keeps its tables.
#   HOSTILE_DUMP=1   print what wharf said for every case (to write expectations)
#   HOSTILE_CASES=RE only the cases whose name matches the extended regex RE
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

EXPECT="$WHARF_SOURCE_DIR/tests/corpus/expected.tsv"
MEM_KB=${HOSTILE_MEM_KB:-1048576}
# ASan reserves terabytes of virtual memory: ulimit -v cannot apply there
# a hang detector, not a speed goal: the sanitized build writes and removes
# the 10,000 members of tar_100k_entries 5-10 times slower, and took over
# 120 s on a loaded machine
HANG_S=120
if grep -q 'libasan' <<<"$(ldd "$WHARF" 2>/dev/null)"; then MEM_KB=unlimited; HANG_S=400; fi

cat > schemas/o.json <<'EOS'
{"fields": [{"name": "order_id", "type": "integer"}, {"name": "customer", "type": "string"},
            {"name": "amount", "type": "number"}]}
EOS
cp "$WHARF_SOURCE_DIR/schemas/orders.xsd" schemas/
for p in csv utf8; do
  enc=auto; [ "$p" = utf8 ] && enc=utf-8
  cat > "profiles/$p.yaml" <<EOP
name: $p
source: { type: spool, path: var/drop/$p }
encoding: $enc
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: hostile_$p }
EOP
done
cat > profiles/xml.yaml <<'EOP'
name: xml
source: { type: spool, path: var/drop/xml }
format: xml
xml:
  schema: orders.xsd
  record: /orders/order
  fields: { order_id: "@id", customer: customer, sku: sku, quantity: quantity }
target: { type: sqlite, path: var/warehouse.db, table: hostile_xml }
EOP
check "the test profiles are valid" w check
# a table that must survive everything
sqlite3 var/warehouse.db 'create table keepme(x); insert into keepme values (42);'

python3 "$WHARF_SOURCE_DIR/tests/corpus/generate.py" "$T/corpus" || { bad "corpus generation"; finish; exit; }
snapshot() { (cd "$T" && find . -path ./var -prune -o -printf '%p %y %s %m\n' | LC_ALL=C sort; ls -a /tmp | grep -i 'wharf_evil\|pwned' ); }
before=$(snapshot)

n=0
while IFS=$'\t' read -r case profile outcome reason; do
  [ -z "$case" ] || [[ $case == \#* ]] && continue
  # cases are named by their file name; \n in expected.tsv stands for a newline
  file=$(printf '%b' "$case")
  [ -n "${HOSTILE_CASES:-}" ] && ! grep -qE -- "$HOSTILE_CASES" <<<"$case" && continue
  n=$((n + 1))
  ( ulimit -v "$MEM_KB"; timeout "$HANG_S" "$WHARF" ingest -p "$profile" "$T/corpus/$file" ) >var/out 2>var/err
  rc=$?
  got=$(w intakes -p "$profile" --json 2>/dev/null | F="$T/corpus/$file" python3 -c '
import json, os, sys
def esc(b):  # a name that is not UTF-8 is in --json in its escaped form (util/escape.h)
    out, i = [], 0
    while i < len(b):
        for k in (1, 2, 3, 4):
            try:
                c = b[i:i + k].decode("utf-8"); break
            except UnicodeDecodeError:
                c = None
        if c is None:
            out.append("\\x%02x" % b[i]); i += 1; continue
        o = ord(c)
        if c == "\\": out.append("\\\\")
        elif o < 0x20 or o == 0x7F: out.append("\\x%02x" % o)
        elif 0x80 <= o <= 0x9F or o in (0x61C, 0x200E, 0x200F, 0x2028, 0x2029) or 0x202A <= o <= 0x202E or 0x2066 <= o <= 0x2069:
            out.append("\\u%04x" % o)
        else: out.append(c)
        i += k
    return "".join(out)
want = os.fsencode(os.path.realpath(os.environ["F"]))
try:
    want = want.decode("utf-8")
except UnicodeDecodeError:
    want = esc(want)
for i in json.load(sys.stdin):
    if i["path"] == want:
        print(i["id"]); break')
  if [ -n "$got" ]; then
    show=$(w show "$got" --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j["state"] + "/" + j["outcome"] + "\t" + (j.get("last_error") or "").replace("\n", " "))')
  else
    show=$'none/none\t'"$(grep -v '"level":"info"' var/err | tail -c 400 | tr '\n' ' ')"
  fi
  st=${show%%$'\t'*}; why=${show#*$'\t'}
  [ "${HOSTILE_DUMP:-0}" = 1 ] && printf 'DUMP %s\t%s\trc=%s\t%s\t%s\n' "$case" "$profile" "$rc" "$st" "$why"
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    bad "$case: exit $rc (crash, timeout or out of memory): $(tail -c 300 var/err)"
    continue
  fi
  grep -q 'AddressSanitizer\|runtime error:' var/err && { bad "$case: sanitizer report"; continue; }
  case $outcome in
    quarantined) want_st="none/none" ;;
    *) want_st="done/$outcome" ;;
  esac
  if [ "$st" != "$want_st" ]; then
    bad "$case: $st, want $want_st ($why)"
  elif [ -n "$reason" ] && ! grep -qiF -- "$reason" <<<"$why"; then
    bad "$case: $outcome, but the reason does not say '$reason': $why"
  else
    ok "$case: $outcome${reason:+ ($reason)}"
  fi
done < "$EXPECT"

after=$(snapshot)
eq "nothing written outside var/ (and no escaped member in /tmp)" "$(diff <(echo "$before") <(echo "$after"))" ""
eq "the target's other table survives" "$(sql var/warehouse.db 'select x from keepme')" 42
check "no member escaped into the parent dir" bash -c "! ls '$T/..' | grep -q 'evil_'"
check "wharf verify passes" w verify
echo "hostile cases: $n"
finish
