#!/usr/bin/env bash
# The PostgreSQL ledger against a real server (tests/lib/pg.sh):
#   1. tests/unit/test_ledger.c run against it: the same claims,
#      compare-and-set races between processes, lists, sightings, chain and
#      kv as on SQLite, plus concurrent first opens (migrations under an
#      advisory lock) and a password scrubbed from errors;
#   2. wharf itself with `ledger: { type: postgresql, dsn_file: ... }`:
#      files taken, loaded and sealed, `wharf verify` walks the chain kept in
#      PostgreSQL, nothing in SQLite, the password in no output; with the
#      server down a command fails naming the ledger;
#   3. the configuration refuses a path on a postgresql ledger.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/pg.sh"

PGD=$(pg_mkdir) || exit 1
trap 'pg_cleanup "$PGD"; cleanup' EXIT
pg_setup "$PGD" || { echo "FAIL - the PostgreSQL fixture did not start"; exit 1; }

PW=$(cat "$PG_PASSWORD_FILE")
printf '%s password=%s sslmode=disable\n' "$PG_DSN" "$PW" > dsn
chmod 600 dsn

# 1. the unit test on PostgreSQL
UT=${WHARF_BUILD_DIR:-$(dirname "$WHARF")}/tests/test_ledger
if [ -x "$UT" ]; then
  if WHARF_TEST_LEDGER_PG=$PWD/dsn "$UT" > unit.log 2>&1; then ok "test_ledger passes on PostgreSQL"
  else bad "test_ledger on PostgreSQL"; cat unit.log; fi
else
  bad "no test_ledger at $UT"
fi

# 2. wharf on a PostgreSQL ledger
cat > wharf.yaml <<EOF
state_dir: var
ledger: { type: postgresql, dsn_file: $PWD/dsn }
EOF
orders_schema
spool_profile acme "{ done_file: \"{name}.done\" }"
for i in 1 2 3; do orders_csv "var/drop/acme/o$i.csv" $((i * 10)) 5; touch "var/drop/acme/o$i.csv.done"; done
out=$(w -c wharf.yaml once 2>&1); rc=$?
eq "wharf once on a PostgreSQL ledger exits 0" "$rc" 0
eq "three intakes done in the PostgreSQL ledger" "$(pg_psql "$PGD" -tA -c "SELECT count(*) FROM intakes WHERE state = 'done'")" 3
eq "three links in its chain" "$(pg_psql "$PGD" -tA -c "SELECT seq FROM chain_head")" 3
eq "the chain head is the last link" \
  "$(pg_psql "$PGD" -tA -c "SELECT h.link = c.link FROM chain_head h JOIN chain c ON c.seq = h.seq")" t
check "no SQLite ledger was made" test ! -e var/ledger.db
eq "15 rows loaded" "$(sqlite3 var/warehouse.db 'SELECT count(*) FROM acme')" 15
v=$(w -c wharf.yaml verify 2>&1); rc=$?
eq "wharf verify on the PostgreSQL ledger exits 0" "$rc" 0
s=$(w -c wharf.yaml status 2>&1)
contains "status reads the PostgreSQL ledger" "$s" "acme"
case "$out$v$s" in *"$PW"*) bad "the password appeared in wharf's output" ;; *) ok "no password in any output" ;; esac

# the server gone: a command fails loudly, naming the ledger, not the password
pg_stop "$PGD"
d=$(w -c wharf.yaml intakes 2>&1); rc=$?
check "intakes fails while the ledger server is down" test "$rc" -ne 0
contains "the error names the PostgreSQL ledger" "$d" "ledger postgresql://127.0.0.1"
case "$d" in *"$PW"*) bad "the password appeared in the error" ;; *) ok "no password in the error" ;; esac
pg_start "$PGD"

# 2b. `wharf once` takes over what a dead node left (its lease expired), as
# `wharf run` does: node "gone" dies right after taking d.csv
q() { pg_psql "$PGD" -tA -c "$1"; }
sed 's/^state_dir: var$/state_dir: var\nnode: gone/' wharf.yaml > gone.yaml
sed 's/^state_dir: var$/state_dir: var\nnode: alive/' wharf.yaml > alive.yaml
orders_csv var/drop/acme/d.csv 500 5; touch var/drop/acme/d.csv.done
WHARF_TEST_CRASH=taken w -c gone.yaml once >/dev/null 2>&1
eq "the dead node left d.csv taken, under its lease" \
  "$(q "SELECT state || ':' || node || ':' || (lease_until_ms > 0) FROM intakes WHERE name = 'd.csv'")" "taken:gone:true"
w -c alive.yaml once >/dev/null 2>&1
eq "under a live lease another node's once leaves it alone" \
  "$(q "SELECT state || ':' || node FROM intakes WHERE name = 'd.csv'")" "taken:gone"
q "UPDATE intakes SET lease_until_ms = 1 WHERE name = 'd.csv'" >/dev/null  # the lease ran out
out=$(w -c alive.yaml once 2>&1); rc=$?
eq "once after the lease expired exits 0" "$rc" 0
eq "it took d.csv over and finished it" \
  "$(q "SELECT state || ':' || outcome || ':' || node FROM intakes WHERE name = 'd.csv'")" "done:loaded:alive"
eq "a takeover event names the dead node" \
  "$(q "SELECT count(*) FROM events e JOIN intakes i ON i.id = e.intake WHERE i.name = 'd.csv' AND e.kind = 'takeover' AND e.detail::text LIKE '%gone%'")" 1
eq "d.csv's rows loaded once" "$(sqlite3 var/warehouse.db 'SELECT count(*) FROM acme WHERE order_id >= 500')" 5
v=$(w -c alive.yaml verify 2>&1); rc=$?
eq "the chain still verifies" "$rc" 0

# 3. configuration
cat > bad.yaml <<EOF
ledger: { type: postgresql, path: var/x.db }
EOF
c=$(w -c bad.yaml check 2>&1); rc=$?
check "a path on a postgresql ledger is refused" test "$rc" -ne 0
contains "and said so" "$c" "dsn_file, not path"

finish
