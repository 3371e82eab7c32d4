#!/usr/bin/env bash
# The PostgreSQL target against a real server (tests/lib/pg.sh): append,
# replace, upsert, schema evolution, a row refused by a CHECK / FOREIGN KEY
# of an existing table (a reject naming its line and column), the types
# (boolean, date, timestamptz, numeric), exactly once after a crash between
# the target's commit and the ledger, the server restarted in the middle of
# loads, `wharf check --connect`, and no secret in any log, ledger or show.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/pg.sh"

PGD=$(pg_mkdir) || exit 1
trap 'pg_cleanup "$PGD"; cleanup' EXIT
pg_setup "$PGD" || { echo "FAIL - the PostgreSQL fixture did not start"; exit 1; }
q() { pg_psql "$PGD" -tA -c "$1"; }

# the dsn file holds the password too (the file is the secret)
PW=$(cat "$PG_PASSWORD_FILE")
printf '%s password=%s sslmode=disable\n' "$PG_DSN" "$PW" > dsn
chmod 600 dsn

orders_schema
# every file dropped so far is complete
once() {
  local f
  for f in var/drop/*/*.csv; do [ -e "$f" ] && [ ! -e "$f.done" ] && touch "$f.done"; done
  w once "$@"
}
pg_profile() { # NAME TABLE [MODE] [extra target keys]
  local name=$1 table=$2 mode=${3:-append} extra=${4:-}
  mkdir -p "var/drop/$name"
  cat > "profiles/$name.yaml" <<EOP
name: $name
source: { type: spool, path: var/drop/$name, pattern: "*.csv", complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: ${SCHEMA_FILE:-orders.schema.json} }
target: { type: postgresql, dsn_file: dsn, table: $table, mode: $mode $extra }
retry: { max_attempts: 3, backoff: 100ms, backoff_max: 200ms }
EOP
}

# ---- append -----------------------------------------------------------
pg_profile acme orders
orders_csv var/drop/acme/a.csv 1 50
orders_csv var/drop/acme/b.csv 100 70
once >out.log 2>&1
eq "append: 120 rows in PostgreSQL" "$(q 'select count(*) from orders')" 120
eq "append: two intakes in wharf_loads with their rows" \
  "$(q 'select count(*) from orders o join wharf_loads l on l.intake = o._wharf_intake')" 120
eq "append: types from the schema (bigint, text, numeric)" \
  "$(q "select string_agg(column_name||':'||data_type, ',' order by ordinal_position) from information_schema.columns where table_name='orders'")" \
  "order_id:bigint,customer:text,amount:numeric,_wharf_intake:text,_wharf_line:text"
eq "append: values exact (numeric, no float noise)" "$(q 'select amount from orders where order_id = 7')" "7.5"
eq "append: each row carries its line" "$(q 'select _wharf_line from orders where order_id = 100')" 2
eq "append: ledger says loaded" "$(intake_states)" "done/loaded=2 "
eq "append: the intake index exists" "$(q "select count(*) from pg_indexes where indexname = 'orders__wharf_intake'")" 1

out=$(w reconcile acme 2>&1); rc=$?
eq "reconcile: the PostgreSQL table agrees with the ledger (exit 0)" "$rc" 0
out=$(w trace acme order_id=7 2>&1)
contains "trace: a PostgreSQL row leads back to its file and line" "$out" "a.csv"
q "delete from orders where order_id = 120" >/dev/null
out=$(w reconcile acme 2>&1); rc=$?
eq "reconcile: a row deleted in PostgreSQL is a gap (exit 1)" "$rc" 1

# ---- types ------------------------------------------------------------
cat > schemas/typed.schema.json <<'EOS'
{"fields": [
  {"name": "id", "type": "integer"},
  {"name": "ok", "type": "boolean"},
  {"name": "day", "type": "date"},
  {"name": "at", "type": "datetime"},
  {"name": "note", "type": "string"}
]}
EOS
SCHEMA_FILE=typed.schema.json pg_profile typed typed
printf 'id,ok,day,at,note\n1,true,2024-02-29,2024-03-01T10:00:00Z,"tab\there"\n2,false,2023-12-31,2024-03-01T12:00:00+02:00,"back\\slash ""q"""\n3,,,,\n' > var/drop/typed/t.csv
once >out.log 2>&1
eq "types: boolean, date, timestamptz columns" \
  "$(q "select string_agg(data_type, ',' order by ordinal_position) from information_schema.columns where table_name='typed'")" \
  "bigint,boolean,date,timestamp with time zone,text,text,text"
eq "types: values round-trip" "$(q "select id||'|'||ok||'|'||day||'|'||to_char(at at time zone 'UTC','YYYY-MM-DD HH24:MI')||'|'||note from typed where id < 3 order by id" | tr '\n' ';')" \
  "1|true|2024-02-29|2024-03-01 10:00|tab	here;2|false|2023-12-31|2024-03-01 10:00|back\\slash \"q\";"
eq "types: empty cells are NULL" "$(q 'select count(*) from typed where id = 3 and ok is null and day is null and at is null and note is null')" 1

# ---- COPY BINARY (the default for these types) and text make the same rows --
# 3000 rows: the sending thread runs (rowq), several batches go through it
cat > schemas/fmt.schema.json <<'EOS'
{"fields": [
  {"name": "id", "type": "integer"},
  {"name": "ok", "type": "boolean"},
  {"name": "day", "type": "date"},
  {"name": "at", "type": "datetime"},
  {"name": "amount", "type": "number"},
  {"name": "note", "type": "string"}
]}
EOS
python3 - > fmt.csv <<'EOPY'
import random
r = random.Random(16)
print("id,ok,day,at,amount,note")
stamps = ["2000-01-01T00:00:00", "1999-12-31T23:59:59.9999995Z", "0001-01-01T00:00:00Z",
          "9999-12-31T23:00:00-02:00", "2026-01-01T12:34:56.1234565", "2024-02-29T23:30:00+01:00"]
nums = ["0", "-0", "0.001", "-12.5", "1e-7", "123456789012.34", "9007199254740993", "1.5e300",
        "0.1", "64937.97"]
for i in range(1, 3001):
    ok = ["true", "false", ""][i % 3]
    day = ["2024-02-29", "0001-01-01", "9999-12-31", "2000-01-01", "1999-12-31", ""][i % 6]
    at = stamps[i % len(stamps)] if i % 7 else ""
    amt = nums[i % len(nums)] if i % 11 else "%d.%02d" % (r.randrange(-10**9, 10**9), r.randrange(100))
    print('%d,%s,%s,%s,%s,"n\t%d\\x"' % (i, ok, day, at, amt, i))
EOPY
SCHEMA_FILE=fmt.schema.json pg_profile fmtb fmt_bin
SCHEMA_FILE=fmt.schema.json pg_profile fmtt fmt_txt
cp fmt.csv var/drop/fmtb/
cp fmt.csv var/drop/fmtt/
once fmtb >out.log 2>&1
WHARF_PG_COPY=text once fmtt >>out.log 2>&1
eq "binary COPY: 3000 rows" "$(q 'select count(*) from fmt_bin')" 3000
fmt_rows() { q "select md5(string_agg(concat_ws('|', id, ok, day, at, amount, scale(amount), note, _wharf_line), ';' order by id)) from $1"; }
eq "binary COPY: every value as text COPY stores it (numeric scale, microseconds, NULLs)" \
  "$(fmt_rows fmt_bin)" "$(fmt_rows fmt_txt)"
# a date PostgreSQL cannot hold (year 0): refused with its line, as in text
printf 'id,ok,day,at,amount,note\n' > var/drop/fmtb/y0.csv
for i in $(seq 1 2000); do echo "$i,true,2024-01-01,,1,x"; done >> var/drop/fmtb/y0.csv
echo "2001,true,0000-01-01,,1,x" >> var/drop/fmtb/y0.csv
once fmtb >out.log 2>&1
rj=$(w rejects -p fmtb 2>&1)
contains "binary COPY: a year-0 date is a reject naming its line" "$rj" "line 2002"
contains "binary COPY: and its column" "$rj" "day"
eq "binary COPY: nothing of that file loaded" "$(q 'select count(*) from fmt_bin')" 3000
# a file invalid at its last line, after two thousand rows went to the server: nothing
printf 'id,ok,day,at,amount,note\n' > var/drop/fmtb/late.csv
for i in $(seq 5001 7000); do echo "$i,true,2024-01-01,,1,x"; done >> var/drop/fmtb/late.csv
echo "7001,maybe,2024-01-01,,1,x" >> var/drop/fmtb/late.csv
once fmtb >out.log 2>&1
eq "binary COPY: invalid at the last line, rolled back (no row, no wharf_loads)" \
  "$(q "select count(*) from fmt_bin where id > 5000")|$(q "select count(*) from wharf_loads where tbl = 'fmt_bin'")" "0|1"

# ---- replace ------------------------------------------------------------
pg_profile rep repl replace
orders_csv var/drop/rep/a.csv 1 30
once >out.log 2>&1
orders_csv var/drop/rep/b.csv 500 5
once >out.log 2>&1
eq "replace: only the last file's rows" "$(q 'select count(*)||'"'"':'"'"'||min(order_id) from repl')" "5:500"

# ---- upsert -------------------------------------------------------------
pg_profile ups upserted upsert ", key: [order_id]"
orders_csv var/drop/ups/a.csv 1 10
once >out.log 2>&1
{ echo "order_id,customer,amount"; echo "5,changed,99"; echo "11,new,1"; } > var/drop/ups/b.csv
once >out.log 2>&1
eq "upsert: 11 rows" "$(q 'select count(*) from upserted')" 11
eq "upsert: row 5 updated, from the second intake" \
  "$(q "select customer||':'||amount||':'||(_wharf_intake = (select intake from wharf_loads where rows = 2 and tbl = 'upserted')) from upserted where order_id = 5")" \
  "changed:99:true"
# an existing table without a unique index on the key: refused, named
q 'create table upsert_nokey (order_id bigint, customer text, amount numeric)' >/dev/null
pg_profile upsnk upsert_nokey upsert ", key: [order_id]"
orders_csv var/drop/upsnk/a.csv 1 3
once >out.log 2>&1
contains "upsert: a table without a UNIQUE index on the key is refused" "$(cat out.log)" "no UNIQUE index on exactly the upsert key"

# ---- mapped onto an existing table by name, evolution ----------------------
q 'create table legacy ("ORDER_ID" integer primary key, customer varchar(40), amount numeric(12,2), extra text default '"'"'x'"'"')' >/dev/null
pg_profile leg legacy
orders_csv var/drop/leg/a.csv 1 4
once >out.log 2>&1
eq "existing table: mapped by name (case ignored), defaults kept" "$(q 'select count(*)||'"'"':'"'"'||min(extra) from legacy')" "4:x"
cat > schemas/orders2.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer", "constraints": {"required": true}},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"},
  {"name": "region", "type": "string"}
]}
EOS
SCHEMA_FILE=orders2.schema.json pg_profile leg legacy
{ echo "order_id,customer,amount,region"; echo "50,a,1,north"; } > var/drop/leg/b.csv
once >out.log 2>&1
eq "evolve none: a new field is refused, the table unchanged" "$(q "select count(*) from information_schema.columns where table_name='legacy' and column_name='region'")" 0
contains "evolve none: says how to fix it" "$(w show "$(w intakes --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"]=="b.csv" and i["profile"]=="leg"][0])')")" 'ALTER TABLE "public"."legacy" ADD COLUMN "region" text'
out=$(w check --connect leg 2>&1)
contains "check --connect: reports the missing column" "$out" 'has no column "region"'
SCHEMA_FILE=orders2.schema.json pg_profile leg legacy append ", evolve: add_columns"
w replay -p leg --all >/dev/null 2>&1
once >out.log 2>&1
eq "evolve add_columns: region added and loaded" "$(q "select region from legacy where \"ORDER_ID\" = 50")" north

# ---- a row refused by the table's own constraint: a reject with its line ----
q 'create table customers (id bigint primary key)' >/dev/null
q 'insert into customers values (1), (2)' >/dev/null
q 'create table checked (order_id bigint, customer text, amount numeric check (amount < 1000) , _wharf_intake text, _wharf_line text)' >/dev/null
pg_profile chk checked
{ echo "order_id,customer,amount"; for i in $(seq 1 3000); do echo "$i,c,$((i % 900))"; done; echo "9999,c,5000"; echo "10000,c,1"; } > var/drop/chk/big.csv
once >out.log 2>&1
eq "constraint: intake rejected, not failed" "$(w intakes -p chk --json | python3 -c 'import json,sys; print([i["state"]+"/"+i["outcome"] for i in json.load(sys.stdin)][0])')" "done/rejected"
eq "constraint: nothing of the file loaded" "$(q 'select count(*) from checked')" 0
rj=$(w rejects -p chk 2>&1)
contains "constraint: the reject names the line" "$rj" "line 3002"
contains "constraint: and the column" "$rj" "amount"
contains "constraint: and the constraint" "$rj" "checked_amount_check"
q 'create table withfk (order_id bigint, customer text, amount numeric, cust bigint references customers(id))' >/dev/null
cat > schemas/fk.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer"}, {"name": "customer", "type": "string"},
  {"name": "amount", "type": "number"}, {"name": "cust", "type": "integer"}
]}
EOS
SCHEMA_FILE=fk.schema.json pg_profile fk withfk
{ echo "order_id,customer,amount,cust"; echo "1,a,1,1"; echo "2,b,1,2"; echo "3,c,1,7"; } > var/drop/fk/f.csv
once >out.log 2>&1
rj=$(w rejects -p fk 2>&1)
contains "foreign key: rejected at line 4" "$rj" "line 4"
contains "foreign key: column named" "$rj" "cust"
eq "foreign key: nothing loaded" "$(q 'select count(*) from withfk')" 0

# ---- crash between the target's commit and the ledger: exactly once -------
pg_profile crash crashed
orders_csv var/drop/crash/a.csv 1 40
WHARF_TEST_CRASH=target_committed once >/dev/null 2>&1
eq "crash: the first run died after the commit" "$(q 'select count(*) from crashed')" 40
for _ in 1 2; do once >out.log 2>&1; done
eq "crash: after restart still 40 rows (no duplicates)" "$(q 'select count(*) from crashed')" 40
eq "crash: the intake is loaded once" "$(w intakes -p crash --json | python3 -c 'import json,sys; print([i["state"]+"/"+i["outcome"]+"/"+str(i["rows"]) for i in json.load(sys.stdin)][0])')" "done/loaded/40"

# ---- the server down, then restarted in the middle of loads --------------
pg_profile bounce bounced
for k in 1 2 3 4 5 6; do orders_csv var/drop/bounce/f$k.csv $((k * 100000)) 20000; done
pg_stop "$PGD"
once >down.log 2>&1
contains "server down: the load waits to be retried" "$(w status 2>&1)" "target-down.md"
eq "server down: nothing failed for good" "$(w intakes -p bounce --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["state"] in ("failed","rejected")))')" 0
pg_start "$PGD"
# restart the server while a load is inside its transaction, its rows sent:
# an admin session holds wharf_loads in EXCLUSIVE mode (reads pass, the
# INSERT recording the load waits), the bouncer waits until a wharf session
# is blocked on that INSERT, then a fast shutdown ends every session.  No
# race with a fast COPY: the load is held open until the server goes.
( PG_ADMIN_DB=wharf pg_admin "$PGD" -q -c "BEGIN" -c "LOCK TABLE public.wharf_loads IN EXCLUSIVE MODE" \
    -c "SELECT pg_sleep(120)" >/dev/null 2>&1 ) &
locker=$!
for _ in $(seq 1 200); do
  n=$(PG_ADMIN_DB=wharf pg_admin "$PGD" -tA -c "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'wharf_loads' and l.mode = 'ExclusiveLock' and l.granted" 2>/dev/null)
  [ "${n:-0}" -gt 0 ] && break
  sleep 0.05
done
eq "server restarted: the admin session holds wharf_loads" "${n:-0}" 1
( for _ in $(seq 1 1200); do
    n=$(PG_ADMIN_DB=wharf pg_admin "$PGD" -tA -c "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like 'INSERT INTO%wharf_loads%'" 2>/dev/null)
    [ "${n:-0}" -gt 0 ] && { echo "held" > held.flag; break; }
    sleep 0.05
  done
  pg_stop "$PGD"; echo "bounced" > bounced.flag; pg_start "$PGD" ) &
bouncer=$!
once >bounce.log 2>&1
wait "$bouncer"
wait "$locker" 2>/dev/null
eq "server restarted: the restart hit a load in its transaction" "$(cat held.flag bounced.flag 2>/dev/null | tr '\n' ' ')" "held bounced "
contains "server restarted: the load broken mid-way is retried (transient, target-down.md)" "$(grep '"retry"' bounce.log | grep -v 'cannot connect')" "runbooks/target-down.md"
cat bounce.log >> down.log
for _ in 1 2 3 4 5 6; do
  n=$(w intakes -p bounce --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["state"] != "done"))')
  [ "$n" = 0 ] && break
  sleep 0.3
  w replay -p bounce --all >/dev/null 2>&1
  once >>down.log 2>&1
done
eq "server restarted: every file loaded" "$(w intakes -p bounce --json | python3 -c 'import json,sys; print(sorted(set(i["state"]+"/"+i["outcome"] for i in json.load(sys.stdin))))')" "['done/loaded']"
eq "server restarted: nothing lost, nothing twice" "$(q 'select count(*)||'"'"'/'"'"'||count(distinct order_id) from bounced')" "120000/120000"
eq "server restarted: wharf_loads agrees with the rows" \
  "$(q "select count(*) from (select _wharf_intake, count(*) c from bounced group by 1) x join wharf_loads l on l.intake = x._wharf_intake and l.rows = x.c")" 6

# ---- a read-only server (a standby, or default_transaction_read_only) ------
pg_profile ro_db ro_orders
orders_csv var/drop/ro_db/a.csv 1 10
PG_ADMIN_DB=wharf pg_admin "$PGD" -q -c "ALTER DATABASE wharf SET default_transaction_read_only = on" >/dev/null
once >ro.log 2>&1
contains "read-only: the load is retried as the target being unavailable" "$(grep '"retry"' ro.log)" "SQLSTATE 25006"
eq "read-only: nothing failed for good" "$(w intakes -p ro_db --json | python3 -c 'import json,sys; print([i["state"] for i in json.load(sys.stdin)][0])')" inspected
PG_ADMIN_DB=wharf pg_admin "$PGD" -q -c "SET default_transaction_read_only = off" -c "ALTER DATABASE wharf RESET default_transaction_read_only" >/dev/null
for _ in 1 2 3; do sleep 0.3; once >>ro.log 2>&1; done
eq "read-only: loaded once writable again" "$(q 'select count(*) from ro_orders')" 10

# ---- the profile: secrets never inline, diagnostics with file:line:col -----
cat > profiles/inline.yaml <<'EOP'
name: inline
source: { type: spool, path: var/drop/inline, pattern: "*.csv" }
format: csv
csv: { schema: orders.schema.json }
target:
  type: postgresql
  table: t
  password: hunter2
  path: var/x.db
EOP
out=$(w check inline 2>&1)
contains "profile: an inline password is refused at its line:col" "$out" "profiles/inline.yaml:8:3: target.dsn: secrets are never inline"
contains "profile: path is for sqlite only" "$out" "profiles/inline.yaml:9:9: target.path: only valid with type: sqlite"
rm -f profiles/inline.yaml

# ---- wharf check --connect -------------------------------------------------
out=$(w check acme 2>&1)
contains "check without --connect does not reach the server" "$out" "ok:"
out=$(w check --connect acme 2>&1)
contains "check --connect: a fitting table is ok" "$out" "ok:"
printf '%s password=wrong-%s\n' "$PG_DSN" "$PW" > baddsn
sed 's/dsn_file: dsn/dsn_file: baddsn/' profiles/acme.yaml > profiles/badauth.yaml
sed -i 's/^name: acme/name: badauth/' profiles/badauth.yaml
out=$(w check --connect badauth 2>&1)
contains "check --connect: auth failure reported" "$out" "password authentication failed"
pg_admin "$PGD" -q -c "CREATE ROLE wharf_ro LOGIN PASSWORD 'ro-pass-1'" -c "GRANT CONNECT ON DATABASE wharf TO wharf_ro" >/dev/null
PG_ADMIN_DB=wharf pg_admin "$PGD" -q -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC" >/dev/null
printf 'host=127.0.0.1 port=%s dbname=wharf user=wharf_ro password=ro-pass-1\n' "$PG_PORT" > rodsn
sed -e 's/dsn_file: dsn/dsn_file: rodsn/' -e 's/table: orders/table: not_there/' -e 's/^name: acme/name: ro/' profiles/acme.yaml > profiles/ro.yaml
out=$(w check --connect ro 2>&1)
contains "check --connect: missing table without create permission" "$out" "may not create it"
q 'create table typed_wrong (order_id text, customer text, amount numeric)' >/dev/null
sed -e 's/table: orders/table: typed_wrong/' -e 's/^name: acme/name: tw/' profiles/acme.yaml > profiles/tw.yaml
out=$(w check --connect tw 2>&1)
contains "check --connect: column type mismatch" "$out" 'column "order_id" is declared text, the schema needs bigint'
rm -f profiles/badauth.yaml profiles/ro.yaml profiles/tw.yaml

# ---- runbooks/target-down.md, PostgreSQL: the server down, an intake failed --
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"
base=$T
rb_deploy "$T/rb" || exit 1
cp "$base/schemas/orders.schema.json" schemas/
cp "$base/dsn" dsn
cat > profiles/acme.yaml <<EOP
name: acme
source: { type: spool, path: var/drop/acme, pattern: "*.csv", complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: orders.schema.json }
target: { type: postgresql, dsn_file: $PWD/dsn, table: rb_orders }
retry: { max_attempts: 1 }
EOP
orders_csv f.csv 1 5
pg_stop "$PGD"
"$WHARF" -c "$RB_ETC_CONFIG" ingest -p acme f.csv >/dev/null 2>>"$RB_LOG"
RB_ID=$("$WHARF" -c "$RB_ETC_CONFIG" intakes -p acme --state failed --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
export RB_P=acme RB_ID RB_DSN_FILE=$PWD/dsn
rb_hook() { # the fix: the DBA starts the server after step 1 showed it down
  case "$1" in *pg_blocking_pids*) pg_start "$PGD" ;; esac
}
RB_EXPECT=$'fail\tpg_is_in_recovery\tthe server is down: the check shows what wharf saw'
RB_SECTION=PostgreSQL run_runbook runbooks/target-down.md
eq "runbook target-down (PostgreSQL): replayed and loaded" "$(q 'select count(*) from rb_orders')" 5
unset -f rb_hook
cd "$base" || exit 1

# ---- secrets never in logs, ledger or show ------------------------------------
all=$(cat out.log down.log "$T/rb/wharf.log" 2>/dev/null; for id in $(w intakes --json | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))'); do w show "$id" --json; done; sqlite3 var/ledger.db .dump; cat var/*.log 2>/dev/null)
if grep -qF -- "$PW" <<<"$all"; then bad "the password appears in logs, ledger or show"; else ok "no password in logs, ledger or show"; fi
if grep -qF -- "ro-pass-1" <<<"$(w check --connect 2>&1)"; then bad "check prints a password"; else ok "check prints no password"; fi
finish
