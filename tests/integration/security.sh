#!/usr/bin/env bash
# Security checks: SQL identifiers from a hostile profile or a hostile CSV
# header cannot inject (refused by `wharf check`, or quoted, and the other
# tables survive); no secret -- an SFTP password file's content, a key's
# passphrase -- appears in any log, report, bag or ledger row, including
# when authentication fails.  The SFTP part needs tests/lib/sshd.sh and root
# (a real sshd on loopback); without them it is skipped with a note.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

cat > schemas/o.json <<'EOS'
{"fields": [{"name": "order_id", "type": "integer"}, {"name": "customer", "type": "string"},
            {"name": "amount", "type": "number"}]}
EOS
sqlite3 var/warehouse.db 'create table y(v); insert into y values (1); create table x(v); insert into x values (2);'
survivors() { sql var/warehouse.db 'select (select count(*) from y) || "," || (select count(*) from x)'; }

# --- a hostile table name in a profile ------------------------------------
mkdir -p var/drop/evil
cat > profiles/evil.yaml <<'EOP'
name: evil
source: { type: spool, path: var/drop/evil, complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: 'x"; DROP TABLE y; --' }
EOP
w check evil >out 2>&1; rc=$?
eq "wharf check refuses a table name with SQL in it (exit 1)" "$rc" 1
contains "and says which key" "$(cat out)" "target.table"
orders_csv var/drop/evil/a.csv 1 3 && touch var/drop/evil/a.csv.done
w once evil >/dev/null 2>&1
eq "nothing ran: tables y and x survive" "$(survivors)" "1,1"
check "the drop was not taken" test -e var/drop/evil/a.csv
rm -f profiles/evil.yaml

# --- hostile XML field (column) names and upsert keys ---------------------
cp "$WHARF_SOURCE_DIR/schemas/orders.xsd" schemas/
cat > profiles/evilxml.yaml <<'EOP'
name: evilxml
source: { type: spool, path: var/drop/evilxml }
format: xml
xml:
  schema: orders.xsd
  record: /orders/order
  fields: { 'id"); DROP TABLE y; --': "@id" }
target: { type: sqlite, path: var/warehouse.db, table: evilxml }
EOP
w check evilxml >out 2>&1; rc=$?
eq "wharf check refuses an XML column name with SQL in it" "$rc" 1
cat > profiles/evilkey.yaml <<'EOP'
name: evilkey
source: { type: spool, path: var/drop/evilkey }
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: evilkey, mode: upsert, key: [ 'order_id" = 1; DROP TABLE y; --' ] }
EOP
w check evilkey >out 2>&1; rc=$?
eq "wharf check refuses an upsert key with SQL in it" "$rc" 1
rm -f profiles/evilxml.yaml profiles/evilkey.yaml

# --- a hostile column name from a Table Schema and the CSV header ---------
cat > schemas/hdr.json <<'EOS'
{"fields": [{"name": "a\"; DROP TABLE x; --", "type": "string"}, {"name": "customer", "type": "string"}]}
EOS
mkdir -p var/drop/hdr
cat > profiles/hdr.yaml <<'EOP'
name: hdr
source: { type: spool, path: var/drop/hdr, complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: hdr.json }
target: { type: sqlite, path: var/warehouse.db, table: hdr }
EOP
printf '"a""; DROP TABLE x; --",customer\nv1,c1\nv2,c2\n' > var/drop/hdr/h.csv && touch var/drop/hdr/h.csv.done
w check hdr >check.out 2>&1; crc=$?
w once hdr >out 2>&1; rc=$?
eq "tables y and x survive the hostile column name" "$(survivors)" "1,1"
if [ "$crc" -ne 0 ]; then
  ok "the column name is refused by wharf check ($(head -c 200 check.out | tr '\n' ' '))"
elif grep -q "not a valid identifier" out; then
  # refused by the target at load time (the intake is parked, nothing ran);
  # `wharf check` could have said so before any file arrived
  ok "the column name is refused when loading: $(grep -o 'column [^(]*is not a valid identifier' out | head -1)"
  echo "note - wharf check accepts a Table Schema field name that the SQLite target refuses"
else
  # accepted: then it must have been quoted, i.e. it is one column, verbatim
  cols=$(sqlite3 var/warehouse.db "select name from pragma_table_info('hdr')" 2>/dev/null)
  contains "accepted: the column exists verbatim (quoted)" "$cols" 'a"; DROP TABLE x; --'
  eq "and holds the values" "$(sql var/warehouse.db 'select count(*) from hdr' 2>/dev/null)" 2
fi
# a header that does not match the schema is a reject, never DDL
printf 'order_id,"customer""); DROP TABLE y; --",amount\n1,a,1\n' > h2.csv
cat > profiles/plain.yaml <<'EOP'
name: plain
source: { type: spool, path: var/drop/plain }
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: plain }
EOP
w ingest -p plain h2.csv >out 2>&1; rc=$?
eq "a CSV header with SQL in it is rejected (exit 1)" "$rc" 1
contains "naming the unexpected column" "$(cat out)" "not the expected column name"
eq "tables y and x survive the hostile header" "$(survivors)" "1,1"

# --- secrets never written ------------------------------------------------
SECRET_PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRET_PP="pp-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
no_secret() { # description secret...
  local d=$1 s hit=""; shift
  for s in "$@"; do
    grep -rqaF -- "$s" var/ log.* 2>/dev/null && hit="$hit $(grep -rlaF -- "$s" var/ log.* | head -3 | tr '\n' ' ')"
    # the ledger holds events as JSON text; look inside the database too
    for db in var/*.db; do
      sqlite3 "$db" .dump 2>/dev/null | grep -F -- "$s" >/dev/null && hit="$hit $db"
    done
  done
  if [ -z "$hit" ]; then ok "$d"; else bad "$d: found in$hit"; fi
}
SSHD_LIB="$WHARF_SOURCE_DIR/tests/lib/sshd.sh"
if [ -f "$SSHD_LIB" ] && [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ]; then
  . "$SSHD_LIB"
  SD=$(sshd_mkdir) && sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1
  if [ -n "${SSHD_PORT:-}" ]; then
    trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
    sftp_profile() { # name auth-lines
      cat > "profiles/$1.yaml" <<EOP
name: $1
source:
  type: sftp
  host: 127.0.0.1
  port: $SSHD_PORT
  user: $SSHD_USER
  known_hosts: $SSHD_KNOWN_HOSTS
  path: /upload
  complete_when: { done_file: "{name}.done" }
$2
format: csv
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: $1 }
retry: { max_attempts: 1, backoff: 100ms, backoff_max: 100ms }
EOP
    }
    PW=$(cat "$SSHD_PASSWORD_FILE"); PP=$(cat "$SSHD_PASSPHRASE_FILE")
    sftp_profile sftppw "  password_file: $SSHD_PASSWORD_FILE"
    sftp_profile sftpkey "  key_file: $SSHD_KEY_PASS
  passphrase_file: $SSHD_PASSPHRASE_FILE"
    orders_csv "$SSHD_UPLOAD/s1.csv" 1 4; touch "$SSHD_UPLOAD/s1.csv.done"
    chown -R "$SSHD_USER" "$SSHD_UPLOAD"
    w once sftppw >log.pw 2>&1
    w once sftpkey >log.key 2>&1
    eq "the SFTP file was loaded with the password" "$(sql var/warehouse.db 'select count(*) from sftppw' 2>/dev/null)" 4
    # wrong secrets: the failure is logged, the secret is not
    echo "$SECRET_PW" > wrong_password; chmod 600 wrong_password
    echo "$SECRET_PP" > wrong_passphrase; chmod 600 wrong_passphrase
    sftp_profile badpw "  password_file: $T/wrong_password"
    sftp_profile badpp "  key_file: $SSHD_KEY_PASS
  passphrase_file: $T/wrong_passphrase"
    orders_csv "$SSHD_UPLOAD/s2.csv" 10 4; touch "$SSHD_UPLOAD/s2.csv.done"; chown -R "$SSHD_USER" "$SSHD_UPLOAD"
    w once badpw >log.badpw 2>&1
    w once badpp >log.badpp 2>&1
    w status --json >log.status 2>&1
    contains "a wrong password is reported" "$(cat log.badpw)" "auth"
    no_secret "the password appears in no log, bag, report or ledger row" "$PW" "$SECRET_PW"
    no_secret "the key passphrase appears in no log, bag, report or ledger row" "$PP" "$SECRET_PP"
  else
    echo "note - sshd could not be started: SFTP secret checks skipped"
  fi
else
  echo "note - tests/lib/sshd.sh, root or /usr/sbin/sshd missing: SFTP secret checks skipped"
fi
# spool side: a password file named in no profile must not leak either
no_secret "no generated secret in var/ at all" "$SECRET_PW" "$SECRET_PP"
check "wharf verify passes" w verify
finish
