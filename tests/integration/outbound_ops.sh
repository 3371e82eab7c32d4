#!/usr/bin/env bash
# Outbound profiles in operation (issue 18 part 2), against the real sshd:
#   - validation before sending: a profile with csv: (or xml:) validates the
#     file with the inbound machinery first; a valid file is delivered, an
#     invalid one never reaches the partner and is a reject (line, column,
#     field, reason, runbook) in `wharf rejects` and `wharf show`.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }
. "$WHARF_SOURCE_DIR/tests/lib/outbound.sh"

# --- validation before sending -----------------------------------------------
orders_schema
OUT_EXTRA='format: csv
csv: { schema: orders.schema.json }' out_profile confirm conf true
orders_csv var/drop/confirm/good.csv 1 5; touch var/drop/confirm/good.csv.ready
SHA=$(sha256sum var/drop/confirm/good.csv | cut -d' ' -f1)
printf 'order_id,customer,amount\n1,Alice,10.50\n2,Bob,-3\n3,Carol,x\n' > var/drop/confirm/bad.csv
touch var/drop/confirm/bad.csv.ready
w once confirm >/dev/null 2>once.err || true
G=$(intake_of confirm good.csv); B=$(intake_of confirm bad.csv)
eq "a valid file is delivered" "$(sha256sum "$SSHD_UPLOAD/conf/good.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
eq "validated, then delivered and done" "$(shown "$G" 'd["state"], d["outcome"], d["info"]["validation"]["records"]')" "done loaded 5"
check "an invalid file never reaches the partner" test ! -e "$SSHD_UPLOAD/conf/bad.csv"
eq "nor its temp name or done file" "$(ls -A "$SSHD_UPLOAD/conf" | tr '\n' ' ')" "good.csv good.csv.done "
eq "it is a sealed reject" "$(shown "$B" 'd["state"], d["outcome"]')" "done rejected"
check "no delivery was even attempted" test "$(shown "$B" 'sum(1 for e in d["events"] if e["kind"] == "delivery")')" = 0
rj=$(w rejects -p confirm 2>&1)
contains "wharf rejects lists it" "$rj" "$B"
sh=$(w show "$B" 2>&1)
contains "show names the line and column of the first problem" "$sh" "line 3"
contains "show names the field" "$sh" '"amount"'
contains "show names the runbook" "$sh" "runbooks/schema-reject.md"
RBAG=$(shown "$B" 'd["bag"]')
contains "the report says line, column and why" "$(cat "$RBAG/report.txt")" 'line 3, column "amount" (3)'
contains "the report names the second bad line" "$(cat "$RBAG/report.txt")" "line 4"
check "the reject is sealed in rejects/ (wharf verify)" w verify "$B"
check "the bag holds the file as it was dropped" cmp "$RBAG/data/bad.csv" <(printf 'order_id,customer,amount\n1,Alice,10.50\n2,Bob,-3\n3,Carol,x\n')
contains "the log says it was not sent" "$(cat once.err)" "not delivered to any partner"

finish
