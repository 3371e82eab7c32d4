#!/usr/bin/env bash
# Crash at every state boundary (and inside a batch of claims, and between
# staging a bag and finishing it under the chain lock): wharf SIGKILLs itself (WHARF_TEST_CRASH) at
# each point in turn, is restarted, and must end with every valid file loaded
# exactly once (rows per intake in the target equal the ledger), every invalid
# file rejected once, nothing stuck, `wharf verify` clean and the ledger
# passing PRAGMA integrity_check.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

POINTS="claiming claimed fetched taken inspected validated target_committed loaded rejected bag_staged bag_sealed chain_appended sealed done"
orders_schema
base=$T
rounds=0
violations=0
for point in $POINTS; do
  d="$base/crash-$point"
  mkdir -p "$d" && cd "$d" || exit 1
  mkdir -p profiles schemas
  cp "$base/schemas/orders.schema.json" schemas/
  spool_profile acme '{ done_file: "{name}.done" }'
  orders_csv var/drop/acme/a.csv 1 50
  orders_csv var/drop/acme/b.csv 100 70
  { echo "order_id,customer,amount"; echo "x,bad,1"; } > var/drop/acme/bad.csv
  touch var/drop/acme/a.csv.done var/drop/acme/b.csv.done var/drop/acme/bad.csv.done

  WHARF_TEST_CRASH=$point "$WHARF" once >/dev/null 2>&1
  rc=$?
  if [ "$point" = claiming ]; then
    # killed inside the listing's batch of claims, after two of its three
    # claims: the batch is one transaction, so none of them is left
    eq "crash inside a batch of claims: killed (exit $rc), no claim left" "$rc $(intake_count)" "137 0"
  fi
  # restart until nothing is left to do (bounded)
  for _ in 1 2 3 4; do "$WHARF" once >/dev/null 2>&1; done
  rounds=$((rounds + 1))

  states=$(intake_states)
  loaded_rows=$(sql var/warehouse.db 'select count(*) from acme' 2>/dev/null || echo 0)
  per_intake=$(sql var/warehouse.db 'select count(*) from (select _wharf_intake, count(*) c from acme group by 1) x join wharf_loads l on l.intake = x._wharf_intake and l.rows = x.c' 2>/dev/null || echo 0)
  ledger_rows=$("$WHARF" intakes --json | python3 -c 'import json,sys; print(sum(i["rows"] for i in json.load(sys.stdin)))')
  integrity=$(sqlite3 var/ledger.db 'pragma integrity_check')
  v_ok=0; "$WHARF" verify >/dev/null 2>&1 && v_ok=1
  # a bag's temp dir left by the kill is removed when the bag is made again
  temps=$(find var/archive -name '*.tmp-*' 2>/dev/null | wc -l)
  if [ "$states" = "done/loaded=2 done/rejected=1 " ] && [ "$loaded_rows" = 120 ] &&
     [ "$per_intake" = 2 ] && [ "$ledger_rows" = 120 ] && [ "$integrity" = ok ] && [ "$v_ok" = 1 ] &&
     [ "$temps" = 0 ]; then
    ok "crash at $point (first run exit $rc): loaded once, rejected once, verify ok"
  else
    violations=$((violations + 1))
    bad "crash at $point: states='$states' rows=$loaded_rows per_intake=$per_intake ledger_rows=$ledger_rows integrity=$integrity verify=$v_ok temp_dirs=$temps"
  fi
  cd "$base" || exit 1
done
echo "crash rounds: $rounds, violations: $violations"
finish
