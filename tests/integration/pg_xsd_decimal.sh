#!/usr/bin/env bash
# xs:decimal into PostgreSQL (issue 20): the column is numeric and a value
# with 24 digits arrives exact (wharf never reads it through a double);
# SQLite keeps the same digits as TEXT (tests/cases/xsd/decimal_digits).
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/pg.sh"

PGD=$(pg_mkdir) || exit 1
trap 'pg_cleanup "$PGD"; cleanup' EXIT
pg_setup "$PGD" || { echo "FAIL - the PostgreSQL fixture did not start"; exit 1; }
q() { pg_psql "$PGD" -tA -c "$1"; }
PW=$(cat "$PG_PASSWORD_FILE")
printf '%s password=%s sslmode=disable\n' "$PG_DSN" "$PW" > dsn
chmod 600 dsn

cp "$WHARF_SOURCE_DIR/tests/cases/xsd/decimal_digits/schema.xsd" schemas/dec.xsd
cat > profiles/dec.yaml <<'EOP'
name: dec
source: { type: spool, path: var/drop/dec }
format: xml
xml: { schema: dec.xsd, record: /r/i, fields: { v: v } }
target: { type: postgresql, dsn_file: dsn, table: dec }
EOP
mkdir -p var/drop/dec
check "the profile passes check" w check dec
w ingest -p dec "$WHARF_SOURCE_DIR/tests/cases/xsd/decimal_digits/01.xml" >out.log 2>&1
eq "ingest exits 0" "$?" 0
eq "xs:decimal becomes numeric" \
  "$(q "select data_type from information_schema.columns where table_name = 'dec' and column_name = 'v'")" numeric
eq "24 digits, a sign, trailing zeros: exact" \
  "$(q 'select string_agg(v::text, $$ $$ order by _wharf_line) from dec')" \
  "123456789012345678.901234 -0.00000000000000000001 1.50 7"
finish
