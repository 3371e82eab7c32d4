#!/usr/bin/env bash
# `wharf ledger migrate --to postgresql` (issue 16 part 2) against a real
# server (tests/lib/pg.sh):
#   1. a SQLite ledger with real history: loaded, rejected, failed, a
#      duplicate, replays (of the reject and of the failed one), their
#      events and a chain of several links, all made by wharf itself;
#   2. a copy that fails half-way (a value PostgreSQL refuses) commits
#      nothing: the PostgreSQL ledger stays empty and the command can be
#      run again;
#   3. the migration: counts per table, the chain verified in the copy;
#      then, with wharf.yaml pointing at PostgreSQL, `wharf intakes`,
#      `wharf show` and `wharf verify` answer exactly as before, and a new
#      file is loaded and extends the same chain;
#   4. a second migration into the now non-empty ledger is refused and
#      changes nothing; a configuration already on PostgreSQL is refused;
#   5. docs/scale-out.md's "Moving from SQLite to PostgreSQL": its commands,
#      as written, on a deployment of its own (tests/lib/runbook.sh).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/pg.sh"

PGD=$(pg_mkdir) || exit 1
trap 'pg_cleanup "$PGD"; cleanup' EXIT
pg_setup "$PGD" || { echo "FAIL - the PostgreSQL fixture did not start"; exit 1; }
PW=$(cat "$PG_PASSWORD_FILE")
printf '%s password=%s sslmode=disable\n' "$PG_DSN" "$PW" > dsn
chmod 600 dsn
pgq() { pg_psql "$PGD" -tA -c "$1"; }

# 1. history on SQLite
cat > wharf.yaml <<EOF
state_dir: var
EOF
cp wharf.yaml sqlite.yaml
orders_schema
DONE='{ done_file: "{name}.done" }'
spool_profile acme "$DONE"
spool_profile broken "$DONE"
sed -i 's#path: var/warehouse.db#path: var/nodir/w.db#' profiles/broken.yaml
drop() { orders_csv "var/drop/$1/$2" "$3" "$4"; touch "var/drop/$1/$2.done"; }
drop acme o1.csv 1 5
drop acme o2.csv 10 5
printf 'order_id,customer\n1,x\n' > var/drop/acme/bad.csv; touch var/drop/acme/bad.csv.done
w once >/dev/null 2>&1
drop acme o1-again.csv 1 5    # the same bytes as o1.csv: a duplicate
drop broken b1.csv 100 3      # its target's directory is missing: failed
w once >/dev/null 2>&1
w ingest -p broken var/drop/broken/b1.csv >/dev/null 2>&1
id_of() { w intakes --json | python3 -c "import json,sys
print([i['id'] for i in json.load(sys.stdin) if i['name'] == '$1' and i['$2'] == '$3'][0])"; }
BAD=$(id_of bad.csv outcome rejected)
FAILED=$(id_of b1.csv state failed)
w replay "$BAD" >/dev/null 2>&1                 # rejected again: a replay of a reject
sed -i 's#path: var/nodir/w.db#path: var/warehouse.db#' profiles/broken.yaml
w replay "$FAILED" >/dev/null 2>&1              # now loads (a failed intake replays in place)
eq "the SQLite history: loaded, rejected, failed, duplicate, replays" "$(intake_states)" \
  "done/duplicate=1 done/loaded=3 done/rejected=2 failed/none=1 "
eq "the reject was replayed" "$(w show "$BAD" --json | python3 -c 'import json,sys; print(bool(json.load(sys.stdin)["replayed_by"]))')" True
eq "the failed one was replayed in place and loaded" "$(w show "$FAILED" --json | python3 -c 'import json,sys
j = json.load(sys.stdin); print(j["outcome"], "replay" in [e["kind"] for e in j["events"]])')" "loaded True"
LINKS=$(sql var/ledger.db 'SELECT count(*) FROM chain')
check "a chain of several links" test "$LINKS" -ge 5
w intakes --json > before.intakes
w intakes > before.table
for id in $(python3 -c 'import json; print(" ".join(i["id"] for i in json.load(open("before.intakes"))))'); do
  w show "$id" --json > "before.$id"
done
VERIFY=$(w verify); eq "verify on SQLite exits 0" "$?" 0
sql var/ledger.db 'SELECT count(*) FROM events' > before.events
sql var/ledger.db 'SELECT count(*) FROM kv' > before.kv
# a node's heartbeat row, as a server will write it (ledger_node_beat)
sql var/ledger.db "INSERT INTO nodes (name, pid, started_ms, heartbeat_ms) VALUES ('wharf-a', 4242, 1, 2)"

# 2. a copy that fails half-way commits nothing
sql var/ledger.db "INSERT INTO kv VALUES ('zz-test', CAST(X'C3' AS TEXT))"   # not UTF-8: PostgreSQL refuses it
out=$(w ledger migrate --to postgresql --dsn-file "$PWD/dsn" 2>&1); rc=$?
eq "a copy PostgreSQL refuses half-way exits 4" "$rc" 4
contains "and says nothing was committed" "$out" "nothing was committed"
eq "the PostgreSQL ledger is still empty" "$(pgq 'SELECT (SELECT count(*) FROM intakes) + (SELECT count(*) FROM events) + (SELECT count(*) FROM chain)')" 0
case "$out" in *"$PW"*) bad "the password appeared in migrate's output" ;; *) ok "no password in migrate's output" ;; esac
sql var/ledger.db "DELETE FROM kv WHERE key = 'zz-test'"

# 3. the migration
out=$(w ledger migrate --to postgresql --dsn-file "$PWD/dsn" 2>&1); rc=$?
eq "wharf ledger migrate exits 0" "$rc" 0
echo "$out" | sed 's/^/    /'
for t in intakes events chain sightings kv nodes; do
  n=$(sql var/ledger.db "SELECT count(*) FROM $t")
  contains "migrate prints the $t count" "$out" "$(printf '%-10s  %10s  %10s  same' "$t" "$n" "$n")"
  eq "PostgreSQL holds the $n rows of $t" "$(pgq "SELECT count(*) FROM $t")" "$n"
done
contains "the chain was verified in the copy" "$out" "chain: $LINKS links verified in the copy"
eq "chain_head is the last link" "$(pgq 'SELECT h.seq FROM chain_head h JOIN chain c ON c.seq = h.seq AND c.link = h.link')" "$LINKS"

cat > wharf.yaml <<EOF
state_dir: var
ledger: { type: postgresql, dsn_file: $PWD/dsn }
EOF
mv var/ledger.db var/ledger.db.migrated   # nothing may read it any more
eq "wharf intakes --json: the same on PostgreSQL" "$(w intakes --json)" "$(cat before.intakes)"
eq "wharf intakes: the same table" "$(w intakes)" "$(cat before.table)"
same=0 n=0
for f in before.[0-9A-Z]*; do
  id=${f#before.}
  case $id in intakes|table|events|kv) continue ;; esac
  n=$((n + 1))
  [ "$(w show "$id" --json)" = "$(cat "$f")" ] && same=$((same + 1)) || echo "    show $id differs"
done
eq "wharf show --json: every intake, events included, the same" "$same" "$n"
eq "wharf verify: the same answer" "$(w verify)" "$VERIFY"
eq "wharf status --nodes --json: the node came along" "$(w status --nodes --json | python3 -c 'import json,sys
print(" ".join("%s:%s" % (n["name"], n["pid"]) for n in json.load(sys.stdin)))')" "wharf-a:4242"
HEAD=$(pgq 'SELECT link FROM chain_head')

drop acme o3.csv 20 4
out=$(w once 2>&1); rc=$?
eq "a new file on the PostgreSQL ledger: once exits 0" "$rc" 0
eq "it loaded" "$(w intakes --json | python3 -c 'import json,sys
print([i["outcome"] for i in json.load(sys.stdin) if i["name"] == "o3.csv"])')" "['loaded']"
eq "it extends the chain" "$(pgq 'SELECT seq FROM chain_head')" $((LINKS + 1))
eq "from the migrated head" "$(pgq "SELECT prev FROM chain WHERE seq = $((LINKS + 1))")" "$HEAD"
v=$(w verify); rc=$?
eq "verify after the new file exits 0" "$rc" 0
contains "and checks every link" "$v" "$((LINKS + 1)) chain links checked"
check "its events follow the migrated ones" test "$(pgq 'SELECT count(*) FROM events')" -gt "$(cat before.events)"

# 4. a second migration is refused; so is a configuration on PostgreSQL
mv var/ledger.db.migrated var/ledger.db
before=$(pgq 'SELECT count(*) FROM intakes')
out=$(w -c sqlite.yaml ledger migrate --to postgresql --dsn-file "$PWD/dsn" 2>&1); rc=$?
eq "a migration into a non-empty ledger exits 4" "$rc" 4
contains "refused, saying why" "$out" "is not empty (rows in intakes"
eq "and wrote nothing" "$(pgq 'SELECT count(*) FROM intakes')" "$before"
out=$(w ledger migrate --to postgresql --dsn-file "$PWD/dsn" 2>&1); rc=$?
eq "migrate with wharf.yaml already on PostgreSQL exits 3" "$rc" 3
w ledger migrate --to mysql >/dev/null 2>&1; eq "--to anything else is a usage error" "$?" 2

# 5. the documented migration, command by command
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"
pg_admin "$PGD" -q -c "CREATE DATABASE wharf_docs OWNER wharf_load" >/dev/null
printf '%s password=%s sslmode=disable\n' "${PG_DSN/dbname=wharf/dbname=wharf_docs}" "$PW" > docs.dsn
chmod 600 docs.dsn
export RB_DSN_FILE=$PWD/docs.dsn
rb_deploy "$T/docs"
cp "$T/schemas/orders.schema.json" schemas/
spool_profile acme "$DONE"
drop acme d1.csv 1 3
w -c wharf.yaml once >/dev/null 2>&1
# the operator's edit of wharf.yaml, after the migration
rb_hook() {
  if [ -n "${RB_MIGRATED:-}" ] && [ -z "${RB_SWITCHED:-}" ]; then
    printf 'ledger: { type: postgresql, dsn_file: %s }\n' "$RB_DSN_FILE" >> wharf.yaml
    RB_SWITCHED=1
  fi
  case $1 in *"ledger migrate"*) RB_MIGRATED=1 ;; esac
}
RB_SECTION=Moving run_runbook docs/scale-out.md
eq "the documented steps moved the ledger to PostgreSQL" "$("$PG_BINDIR/psql" -X -tA "$(cat "$RB_DSN_FILE")" -c "SELECT count(*) FROM intakes WHERE state = 'done'")" 1
eq "and wharf.yaml names it" "${RB_SWITCHED:-}" 1

finish
