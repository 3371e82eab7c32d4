#!/usr/bin/env bash
# xs:decimal into PostgreSQL (issue 20): the column is numeric and a value
# with 24 digits arrives exact (wharf never reads it through a double);
# SQLite keeps the same digits as TEXT (tests/cases/xsd/decimal_digits).
# xs:integer likewise: numeric, every value beyond 64 bits exact
# (tests/cases/xsd/integer_unbounded); a bigint column made before refuses
# such a row instead of rounding it.
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
# the same file through text COPY: the same values, the same lineage
# (line and the record's XPath) as the binary COPY above
sed 's/^name: dec$/name: dect/; s/table: dec }/table: dect }/; s|var/drop/dec|var/drop/dect|' profiles/dec.yaml > profiles/dect.yaml
mkdir -p var/drop/dect
WHARF_PG_COPY=text w ingest -p dect "$WHARF_SOURCE_DIR/tests/cases/xsd/decimal_digits/01.xml" >out.log 2>&1
eq "text COPY ingest exits 0" "$?" 0
dec_rows() { q "select string_agg(v::text || '@' || _wharf_line, ' ' order by _wharf_line) from $1"; }
contains "binary COPY: each row's line and XPath" "$(dec_rows dec)" " /r/i[1]"
eq "binary and text COPY store the same values and lineage" "$(dec_rows dec)" "$(dec_rows dect)"

cp "$WHARF_SOURCE_DIR/tests/cases/xsd/integer_unbounded/schema.xsd" schemas/int.xsd
for t in int intold; do
  cat > profiles/$t.yaml <<EOP
name: $t
source: { type: spool, path: var/drop/$t }
format: xml
xml: { schema: int.xsd, record: /r/i, fields: { z: z } }
target: { type: postgresql, dsn_file: dsn, table: $t }
EOP
  mkdir -p var/drop/$t
done
check "the xs:integer profile passes check" w check int
w ingest -p int "$WHARF_SOURCE_DIR/tests/cases/xsd/integer_unbounded/01.xml" >out.log 2>&1
eq "ingest of 19 to 24 digit xs:integer values exits 0" "$?" 0
eq "xs:integer becomes numeric" \
  "$(q "select data_type from information_schema.columns where table_name = 'int' and column_name = 'z'")" numeric
eq "beyond 64 bits, positive and negative: exact" \
  "$(q 'select string_agg(z::text, $$ $$ order by split_part(_wharf_line, $$ $$, 1)::int) from int')" \
  "9223372036854775807 9223372036854775808 -9223372036854775808 -9223372036854775809 12345678901234567890 -12345678901234567890 12345678901234567890123 -12345678901234567890123 12345678901234567890123 -42 999999999999999999999999"
q 'create table intold (z bigint, _wharf_intake text not null, _wharf_line text)' >/dev/null
w ingest -p intold "$WHARF_SOURCE_DIR/tests/cases/xsd/integer_unbounded/01.xml" >out.log 2>&1
eq "a bigint column made before: the intake is rejected, not rounded" "$?" 1
contains "the row beyond 64 bits is named" "$(w rejects -p intold 2>&1; cat out.log)" "line 4"
eq "nothing of it loaded" "$(q 'select count(*) from intold')" 0
finish
