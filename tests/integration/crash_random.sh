#!/usr/bin/env bash
# Random-kill crash suite: files of every kind (CSV valid and invalid, XML
# valid and invalid, duplicates under other names, some inside .zip,
# .tar.gz or .csv.gz) arrive in two spools in waves while `wharf run` -- or,
# every third round, `wharf once` -- is SIGKILLed at a random moment (50-800
# ms after it starts) and restarted.  After the last round wharf runs to the
# end without disturbance and the invariants must hold
# (tests/faults/invariants.py): every valid file loaded exactly once (rows
# per intake in the target == ledger rows == wharf_loads), every invalid file
# rejected exactly once, duplicates recorded as such, no intake stuck or
# failed, `wharf verify` clean, PRAGMA integrity_check ok on the ledger.
#
#   WHARF_CRASH_ROUNDS=N   rounds (default 15, the CI setting; try 200+ for
#                          a soak run)
#   WHARF_CRASH_SEED=S     RANDOM seed, to replay a failing run (printed)
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

ROUNDS=${WHARF_CRASH_ROUNDS:-15}
SEED=${WHARF_CRASH_SEED:-$$}
RANDOM=$SEED
echo "seed: $SEED (WHARF_CRASH_SEED=$SEED replays this run)"

cat > schemas/o.json <<'EOS'
{"fields": [{"name": "order_id", "type": "integer"}, {"name": "customer", "type": "string"},
            {"name": "amount", "type": "number"}]}
EOS
cp "$WHARF_SOURCE_DIR/schemas/orders.xsd" schemas/
mkdir -p var/drop/csv var/drop/xml
cat > profiles/csv.yaml <<'EOP'
name: csv
source: { type: spool, path: var/drop/csv, pattern: "*", complete_when: { done_file: "{name}.done" } }
schedule: { every: 1s }
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: crash_csv }
retry: { max_attempts: 20, backoff: 100ms, backoff_max: 300ms }
EOP
cat > profiles/xml.yaml <<'EOP'
name: xml
source: { type: spool, path: var/drop/xml, pattern: "*", complete_when: { done_file: "{name}.done" } }
schedule: { every: 1s }
format: xml
xml:
  schema: orders.xsd
  record: /orders/order
  fields: { order_id: "@id", customer: customer, sku: sku, quantity: quantity, unit_price: unit_price }
target: { type: sqlite, path: var/warehouse.db, table: crash_xml }
retry: { max_attempts: 20, backoff: 100ms, backoff_max: 300ms }
EOP
check "profiles are valid" w check

# gen WAVE: writes the wave's files into stage/WAVE/{csv,xml}/ and appends
# their expectations to expect.tsv (profile, name, outcome, rows, table, group)
gen() {
  python3 - "$1" "$RANDOM" <<'EOPY'
import gzip, io, os, random, sys, tarfile, zipfile
wave, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
base = "stage/%d" % wave
for p in ("csv", "xml"):
    os.makedirs(os.path.join(base, p), exist_ok=True)
exp = open("expect.tsv", "a")
nid = wave * 100000
def csv_rows(n):
    global nid
    s = "order_id,customer,amount\n"
    for _ in range(n):
        nid += 1
        s += "%d,customer %d,%d.25\n" % (nid, nid, nid % 997)
    return s
def put(p, name, data, outcome, rows, group="-"):
    with open(os.path.join(base, p, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    exp.write("%s\t%s\t%s\t%d\t%s\t%s\n" % (p, name, outcome, rows, "crash_" + p, group))
for i in range(r.randint(2, 4)):
    n = r.randint(1, 300)
    kind = r.choice(["plain", "plain", "gz", "zip", "tgz"])
    body = csv_rows(n)
    name = "w%d_%d" % (wave, i)
    if kind == "plain":
        put("csv", name + ".csv", body, "loaded", n)
        if r.random() < 0.4:  # the same bytes again under another name
            put("csv", name + "_copy.csv", body, "loaded", n, "g%d_%d" % (wave, i))
    elif kind == "gz":
        put("csv", name + ".csv.gz", gzip.compress(body.encode(), mtime=0), "loaded", n)
    elif kind == "zip":
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name + ".csv", body)
        put("csv", name + ".zip", b.getvalue(), "loaded", n)
    else:
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w:gz") as t:
            ti = tarfile.TarInfo(name + ".csv"); ti.size = len(body.encode()); ti.mtime = 1795873863
            t.addfile(ti, io.BytesIO(body.encode()))
        put("csv", name + ".tar.gz", b.getvalue(), "loaded", n)
if r.random() < 0.7:
    put("csv", "w%d_bad.csv" % wave, "order_id,customer,amount\n1,a,1\nnot-a-number,b,2\n", "rejected", 0)
n = r.randint(1, 50)
orders = "".join('<order id="%d" currency="EUR"><customer>c%d</customer><date>2026-11-28</date>'
                 '<sku>ABC-%04d</sku><quantity>%d</quantity><unit_price>%d.50</unit_price></order>\n'
                 % (wave * 1000 + k, k, k, k + 1, k) for k in range(n))
put("xml", "w%d.xml" % wave, '<?xml version="1.0" encoding="UTF-8"?>\n<orders>\n' + orders + "</orders>\n", "loaded", n)
if r.random() < 0.5:
    put("xml", "w%d_bad.xml" % wave, '<?xml version="1.0"?>\n<orders><order id="x"><customer>c</customer></order></orders>\n', "rejected", 0)
exp.close()
# a file and its copy form a group (exactly one of them is loaded): give
# the original the copy's group
rows = [l.split("\t") for l in open("expect.tsv").read().splitlines()]
groups = {row[1][:-len("_copy.csv")] + ".csv": row[5] for row in rows if row[1].endswith("_copy.csv")}
with open("expect.tsv", "w") as f:
    for row in rows:
        if row[1] in groups:
            row[5] = groups[row[1]]
        f.write("\t".join(row) + "\n")
EOPY
}

# drop WAVE: move the staged files into the spools, then their done files
drop() {
  local f p
  for p in csv xml; do
    for f in stage/"$1"/$p/*; do
      [ -e "$f" ] || continue
      mv "$f" "var/drop/$p/" && touch "var/drop/$p/$(basename "$f").done"
    done
  done
}

: > expect.tsv
kills=0; rounds=0
for ((round = 1; round <= ROUNDS; round++)); do
  gen "$round" || { bad "generator failed"; break; }
  # half of the waves arrive before wharf starts, half while it runs
  [ $((RANDOM % 2)) = 0 ] && drop "$round"
  ms=$((50 + RANDOM % 751))
  if [ $((round % 3)) = 0 ]; then
    "$WHARF" once >/dev/null 2>>log & pid=$!
  else
    "$WHARF" run >/dev/null 2>>log & pid=$!
  fi
  sleep "$(printf '0.%03d' "$ms")"
  drop "$round"
  sleep "0.$((RANDOM % 3))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  rounds=$((rounds + 1))
done

# undisturbed to the end: once until nothing is left (bounded)
for i in $(seq 1 40); do
  "$WHARF" once >/dev/null 2>>log
  left=$(w intakes --json 2>/dev/null | python3 -c 'import json,sys
print(sum(1 for i in json.load(sys.stdin) if i["state"] != "done"))')
  pending=$(find var/drop -type f ! -name '*.done' | wc -l)
  [ "$left" = 0 ] && [ "$pending" = 0 ] && break
  sleep 0.3
done

w intakes --json > intakes.json 2>/dev/null
inv=$(python3 "$WHARF_SOURCE_DIR/tests/faults/invariants.py" intakes.json var/warehouse.db expect.tsv)
violations=$(echo "$inv" | sed -n 's/^violations: //p')
echo "$inv" | grep '^violation:' | head -20
eq "invariants: every file loaded or rejected exactly once, duplicates recorded" "$violations" 0
eq "no drop left behind" "$(find var/drop -type f | wc -l)" 0
eq "ledger PRAGMA integrity_check" "$(sqlite3 var/ledger.db 'pragma integrity_check')" ok
eq "target PRAGMA integrity_check" "$(sqlite3 var/warehouse.db 'pragma integrity_check')" ok
check "wharf verify passes" w verify
w verify >/dev/null 2>&1 || violations=$((violations + 1))
files=$(wc -l < expect.tsv)
echo "files: $files, kills: $kills, states: $(intake_states)"
echo "rounds run: $rounds, violations: ${violations:-?}"
finish
