#!/usr/bin/env bash
# Receipts to partners (issue 18): after sealing, one receipt per intake in
# the partner's outbox (a local directory for spool partners, a remote
# directory on the partner's SFTP server), with the outcome, counts, hash
# and, for a reject, the lines to fix; every receipt validates against
# docs/receipt.schema.json; a replay's receipt names the first one; kill -9
# at every receipt boundary delivers exactly once; a partner's file under
# the receipt's name is kept; a missing outbox is retried and never changes
# the outcome.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"
orders_schema
SCHEMA=$WHARF_SOURCE_DIR/docs/receipt.schema.json

# receipt_valid FILE: the receipt validates against the documented schema
receipt_valid() {
  python3 - "$SCHEMA" "$1" <<'PY'
import json, sys, jsonschema
s = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(s)
jsonschema.Draft202012Validator(s).validate(json.load(open(sys.argv[2])))
PY
}
# jget FILE EXPR: a value of a receipt (python expression over r)
jget() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
intake_of() { w intakes -p "$1" --json | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    if i["name"] == sys.argv[1]: print(i["id"])' "$2"; }
events_of() { w show "$1" --json | python3 -c 'import json,sys
d = json.load(sys.stdin)
print(" ".join(e["kind"] for e in d["events"]))'; }

receipt_profile() { # name outbox [formats]
  local name=$1 out=$2 fmts=${3:-"[json, csv]"}
  mkdir -p "var/drop/$name"
  cat > "profiles/$name.yaml" <<EOP
name: $name
source:
  type: spool
  path: var/drop/$name
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: ${name//-/_} }
retry: { max_attempts: 4, backoff: 100ms, backoff_max: 200ms }
receipt: { dir: $out, formats: $fmts }
EOP
}
drop() { # profile file content...
  printf '%s' "$3" > "var/drop/$1/$2"; touch "var/drop/$1/$2.done"
}

# --- loaded and rejected, local outbox -----------------------------------------
mkdir -p outbox
receipt_profile acme outbox
drop acme good.csv $'order_id,customer,amount\n1,a,1.50\n2,b,2\n3,c,3\n'
GOOD_SHA=$(sha256sum var/drop/acme/good.csv | cut -d' ' -f1); GOOD_SIZE=$(stat -c %s var/drop/acme/good.csv)
drop acme bad.csv $'order_id,customer,amount\n1,a,1.50\n2,b,x\n3,c,3\n4,d,-5\n'
w once >out 2>log || true
G=$(intake_of acme good.csv); B=$(intake_of acme bad.csv)
RG=outbox/good.csv.$G.receipt.json; RB=outbox/bad.csv.$B.receipt.json
check "a loaded file has its receipt" test -f "$RG"
check "a rejected file has its receipt" test -f "$RB"
check "the loaded receipt validates against docs/receipt.schema.json" receipt_valid "$RG"
check "the rejected receipt validates against docs/receipt.schema.json" receipt_valid "$RB"
eq "loaded: outcome, rows, hash, size" "$(jget "$RG" 'r["outcome"], r["rows_loaded"], r["sha256"], r["size"]')" "('loaded', 3, '$GOOD_SHA', $GOOD_SIZE)"
eq "rejected: outcome and the lines to fix" "$(jget "$RB" 'r["outcome"], [(p["line"], p["field"], p["value"]) for p in r["problems"]]')" "('rejected', [(3, 'amount', 'x'), (5, 'amount', '-5')])"
eq "rejected: nothing loaded, every problem listed" "$(jget "$RB" 'r["rows_loaded"], r["problems_total"], r["problems_not_listed"]')" "(0, 2, 0)"
check "the CSV form too" test -f "outbox/bad.csv.$B.receipt.csv"
eq "CSV: one line per problem with its line" "$(python3 -c 'import csv,sys; print([r["problem_line"] for r in csv.DictReader(open(sys.argv[1]))])' "outbox/bad.csv.$B.receipt.csv")" "['3', '5']"
eq "no temp file left in the outbox" "$(ls -A outbox | grep -c '\.part$')" 0
ledger_sha=$(w show "$G" --json | python3 -c 'import json,sys
d = json.load(sys.stdin)
print([f["sha256"] for f in d["info"]["receipt"]["files"] if f["name"].endswith(".json")][0])' 2>/dev/null)
eq "the receipt's sha256 is in the ledger" "$ledger_sha" "$(sha256sum "$RG" | cut -d' ' -f1)"
contains "and in the event log" "$(cat log)" "$(sha256sum "$RG" | cut -d' ' -f1)"
contains "show lists the receipt event" "$(events_of "$G")" "receipt"

# --- a duplicate is told too ----------------------------------------------------
drop acme again.csv $'order_id,customer,amount\n1,a,1.50\n2,b,2\n3,c,3\n'
w once >/dev/null 2>&1 || true
A=$(intake_of acme again.csv)
eq "a duplicate's receipt names the intake that loaded the bytes" "$(jget "outbox/again.csv.$A.receipt.json" 'r["outcome"], r["duplicate_of"]')" "('duplicate', '$G')"
check "it validates" receipt_valid "outbox/again.csv.$A.receipt.json"

# --- replay: a second receipt referencing the first ---------------------------
sed -i 's/"constraints": {"minimum": 0}/"constraints": {}/' schemas/orders.schema.json
drop acme neg.csv $'order_id,customer,amount\n10,a,-1\n'
sed -i 's/"constraints": {}/"constraints": {"minimum": 0}/' schemas/orders.schema.json
w once >/dev/null 2>&1 || true
N=$(intake_of acme neg.csv)
eq "the negative amount was rejected" "$(jget "outbox/neg.csv.$N.receipt.json" 'r["outcome"]')" rejected
sed -i 's/"constraints": {"minimum": 0}/"constraints": {}/' schemas/orders.schema.json
w replay "$N" >/dev/null 2>&1
R=$(w show "$N" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["replayed_by"])')
RR=outbox/neg.csv.$R.receipt.json
check "the replay has its own receipt" test -f "$RR"
eq "which references the first" "$(jget "$RR" 'r["outcome"], r["replay_of"]["intake"], r["replay_of"]["receipt"]')" "('loaded', '$N', 'neg.csv.$N.receipt.json')"
check "the replay's receipt validates" receipt_valid "$RR"
check "the first receipt is untouched" test -f "outbox/neg.csv.$N.receipt.json"
sed -i 's/"constraints": {}/"constraints": {"minimum": 0}/' schemas/orders.schema.json

# --- a missing outbox: retried, the outcome stands -----------------------------
receipt_profile late late-outbox "[json]"
drop late l.csv $'order_id,customer,amount\n1,a,1\n'
w once >/dev/null 2>log || true
L=$(intake_of late l.csv)
eq "loaded although its receipt could not be written" "$(w show "$L" --json | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["outcome"], i["rows"])')" "loaded 1"
contains "the retry says why" "$(cat log)" "receipt not delivered"
mkdir late-outbox; sleep 0.5
w once >/dev/null 2>&1 || true
check "delivered once the outbox exists" test -f "late-outbox/l.csv.$L.receipt.json"
eq "the intake finishes" "$(w show "$L" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" done

# --- kill -9 at every receipt boundary: exactly one receipt --------------------
for point in sealed receipt_built receipt_put; do
  mkdir -p "crash-$point"
  receipt_profile "c_$point" "crash-$point" "[json]"
  drop "c_$point" k.csv $'order_id,customer,amount\n1,a,1\n2,b,2\n'
  WHARF_TEST_CRASH=$point "$WHARF" once >/dev/null 2>&1
  rc=$?
  w once >/dev/null 2>&1 || true
  K=$(intake_of "c_$point" k.csv)
  n=$(ls -A "crash-$point" | wc -l)
  nev=$(events_of "$K" | tr ' ' '\n' | grep -cx receipt)
  if [ "$rc" -eq 137 ] && [ "$n" = 1 ] && [ "$nev" = 1 ] && [ -f "crash-$point/k.csv.$K.receipt.json" ] &&
     receipt_valid "crash-$point/k.csv.$K.receipt.json"; then
    ok "kill -9 at $point: one receipt, recorded once"
  else
    bad "kill -9 at $point: exit $rc, files $(ls -A "crash-$point" | tr '\n' ' '), receipt events $nev"
  fi
done

# --- a partner's file under the receipt's name is kept --------------------------
mkdir -p keep
receipt_profile keep keep "[json]"
drop keep p.csv $'order_id,customer,amount\n1,a,1\n'
WHARF_TEST_CRASH=receipt_built "$WHARF" once >/dev/null 2>&1
P=$(intake_of keep p.csv)
echo "the partner's own file" > "keep/p.csv.$P.receipt.json"
w once >/dev/null 2>log || true
eq "the partner's file is kept" "$(cat "keep/p.csv.$P.receipt.json")" "the partner's own file"
eq "the outcome stands and the intake finishes" "$(w show "$P" --json | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["state"], i["outcome"])')" "done loaded"
contains "show records the failed receipt" "$(events_of "$P")" "receipt_failed"
contains "the log says so" "$(cat log)" "already exists and is not this receipt"

# --- over SFTP: the partner's outbox on their server ---------------------------
SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
if sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1; then
  mkdir -p "$SSHD_UPLOAD/in" "$SSHD_UPLOAD/outbox" && chown "$SSHD_USER" "$SSHD_UPLOAD/in" "$SSHD_UPLOAD/outbox"
  cat > profiles/remote.yaml <<EOP
name: remote
source:
  type: sftp
  host: 127.0.0.1
  port: $SSHD_PORT
  user: $SSHD_USER
  key_file: $SSHD_KEY_ED25519
  known_hosts: $SSHD_KNOWN_HOSTS
  path: /upload/in
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
  timeout: 10s
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: remote }
retry: { max_attempts: 4, backoff: 100ms, backoff_max: 200ms }
receipt: { path: /upload/outbox }
EOP
  printf 'order_id,customer,amount\n1,a,1\n2,b,two\n3,c,3\n4,d,four\n' > "$SSHD_UPLOAD/in/r.csv"
  printf 'order_id,customer,amount\n1,a,1\n2,b,2\n' > "$SSHD_UPLOAD/in/ok.csv"
  OK_SHA=$(sha256sum "$SSHD_UPLOAD/in/ok.csv" | cut -d' ' -f1)
  touch "$SSHD_UPLOAD/in/r.csv.done" "$SSHD_UPLOAD/in/ok.csv.done"
  w once remote >/dev/null 2>log || true
  SR=$(intake_of remote r.csv); SO=$(intake_of remote ok.csv)
  F=$SSHD_UPLOAD/outbox/r.csv.$SR.receipt.json
  check "SFTP: the rejected file's receipt is in the partner's outbox" test -f "$F"
  eq "SFTP: with the lines to fix" "$(jget "$F" '[p["line"] for p in r["problems"]]')" "[3, 5]"
  F2=$SSHD_UPLOAD/outbox/ok.csv.$SO.receipt.json
  eq "SFTP: the loaded file's receipt has its counts and hash" "$(jget "$F2" 'r["outcome"], r["rows_loaded"], r["sha256"]')" "('loaded', 2, '$OK_SHA')"
  check "SFTP: both validate" bash -c "$(declare -f receipt_valid); SCHEMA=$SCHEMA; receipt_valid '$F' && receipt_valid '$F2'"
  eq "SFTP: no temp file left" "$(ls -A "$SSHD_UPLOAD/outbox" | grep -c '\.part$')" 0
  eq "SFTP: the receipt belongs to the partner's account" "$(stat -c %U "$F")" "$SSHD_USER"
else
  bad "sshd did not start"
fi
finish
