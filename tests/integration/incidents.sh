#!/usr/bin/env bash
# The ten incidents of issue 15, each rebuilt in its own profile of one
# deployment: after one poll, `wharf status` shows each profile non-ok
# with the right state, a reason that says what happened and the runbook
# to read (the tampered bag: after the server's scheduled verify).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

orders_schema
DONE='{ done_file: "{name}.done" }'
SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }

sftp_profile() { # NAME KEY KNOWN_HOSTS [PORT]
  mkdir -p "$SSHD_UPLOAD/$1" && chown "$SSHD_USER" "$SSHD_UPLOAD/$1"
  cat > "profiles/$1.yaml" <<EOP
name: $1
source:
  type: sftp
  host: 127.0.0.1
  port: ${4:-$SSHD_PORT}
  user: $SSHD_USER
  key_file: $2
  known_hosts: $3
  path: /upload/$1
  pattern: "*.csv"
  complete_when: $DONE
  timeout: 5s
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: ${1//-/_} }
EOP
}

# 1 target locked: retrying
spool_profile locked "$DONE"
sed -i 's#path: var/warehouse.db#path: var/locked.db#; s/^retry: .*/retry: { max_attempts: 8, backoff: 1h, backoff_max: 1h }/' profiles/locked.yaml
# 2 an upload stuck as a partial file: stuck
spool_profile partial '{ stable_for: 1s }'
echo 'health: { stuck_after: 1s }' >> profiles/partial.yaml
orders_csv var/drop/partial/orders_1.csv.filepart 1 3
# 3 key refused, 4 host key changed, 5 unreachable host: down
cp "$SSHD_KNOWN_HOSTS" known_hosts
ssh-keygen -q -t ed25519 -N '' -f stalehost >/dev/null
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 stalehost.pub)" > stale_known_hosts
sftp_profile keyrefused "$SSHD_KEY_WRONG" "$T/known_hosts"
sftp_profile hostkey "$SSHD_KEY_ED25519" "$T/stale_known_hosts"
sftp_profile unreachable "$SSHD_KEY_ED25519" "$T/known_hosts" 1
# 6 schema change, 7 encoding change: rejecting
spool_profile schema "$DONE"
{ echo "order_id,customer,amount,discount"; echo "1,a,1.50,0.1"; } > var/drop/schema/o.csv; touch var/drop/schema/o.csv.done
spool_profile encoding "$DONE"
echo 'encoding: utf-8' >> profiles/encoding.yaml
printf 'order_id,customer,amount\n1,M\xfcller,1.50\n' > var/drop/encoding/o.csv; touch var/drop/encoding/o.csv.done
# 8 a duplicate flood: flooding
spool_profile flood "$DONE"
orders_csv flood.csv 1 3
for i in 0 1 2 3 4 5; do cp flood.csv var/drop/flood/f$i.csv; touch var/drop/flood/f$i.csv.done; done
# 9 the expected file missing: missing
spool_profile daily "$DONE"
echo 'expect: [ { days: mon-fri, by: "07:00", missing_after: 2h, timezone: Europe/Berlin } ]' >> profiles/daily.yaml
# 10 a bag tampered with and its manifest rewritten: tampered (scheduled verify)
spool_profile sealed "$DONE"
orders_csv var/drop/sealed/s.csv 1 3; touch var/drop/sealed/s.csv.done
cat > wharf.yaml <<'EOF'
verify: { every: 1s }
EOF
w once sealed >/dev/null 2>&1
A=$(w intakes -p sealed --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
BAG=$(w show "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bag"])')
chmod -R u+w "$BAG"; sed -i 's/customer 2/customer 7/' "$BAG/data/s.csv"
(cd "$BAG" && sha256sum data/s.csv > manifest-sha256.txt)

# the target lock held while the one poll runs
python3 - <<'EOP' &
import sqlite3, time
c = sqlite3.connect("var/locked.db", isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE"); open("locked", "w").close(); time.sleep(25); c.execute("ROLLBACK")
EOP
LOCKER=$!
for _ in $(seq 1 100); do [ -e locked ] && break; sleep 0.05; done
orders_csv var/drop/locked/l.csv 1 3; touch var/drop/locked/l.csv.done

# one poll (the server: it also runs the scheduled verify)
"$WHARF" run >srv.out 2>srv.err &
SRV=$!
for _ in $(seq 1 300); do
  n=$(w status --json 2>/dev/null | python3 -c 'import json,sys
print(sum(1 for p in json.load(sys.stdin) if p["state"] not in ("ok", "waiting")))' 2>/dev/null)
  [ "${n:-0}" -ge 10 ] && break
  sleep 0.1
done
kill -TERM $SRV; wait $SRV
kill $LOCKER 2>/dev/null; wait $LOCKER 2>/dev/null
J=$(w status --json)
MISSING=$(WHARF_TEST_NOW=2026-03-30T07:30:00Z w status --json)
w status

expect() { # PROFILE STATE RUNBOOK REASON-WORDS [JSON]
  local got
  got=$(printf '%s' "${5:-$J}" | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin) if p["profile"] == sys.argv[1]][0]
print(p["state"], p["runbook"], "|", p["reason"])' "$1")
  eq "$1: $2" "${got%% *}" "$2"
  contains "$1: runbook" "$got" " $3 |"
  contains "$1: the reason says what happened" "$got" "$4"
}
expect locked retrying runbooks/target-down.md "locked"
expect partial stuck runbooks/partial-upload.md "orders_1.csv.filepart"
expect keyrefused down runbooks/auth-refused.md "auth"
expect hostkey down runbooks/host-key-changed.md "host key"
expect unreachable down runbooks/source-unreachable.md "127.0.0.1"
expect schema rejecting runbooks/schema-reject.md "discount"
expect encoding rejecting runbooks/encoding-changed.md "o.csv"
expect flood flooding runbooks/duplicates-flood.md "duplicates"
expect daily missing runbooks/expected-file-missing.md "Europe/Berlin" "$MISSING"
expect sealed tampered runbooks/verify-tamper.md "data/s.csv was changed"
finish
