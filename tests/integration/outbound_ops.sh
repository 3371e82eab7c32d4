#!/usr/bin/env bash
# Outbound profiles in operation (issue 18 part 2), against the real sshd:
#   - validation before sending: a profile with csv: (or xml:) validates the
#     file with the inbound machinery first; a valid file is delivered, an
#     invalid one never reaches the partner and is a reject (line, column,
#     field, reason, runbook) in `wharf rejects` and `wharf show`;
#   - re-send: `wharf replay` of a delivered intake delivers the sealed
#     original again (sha256 checked) as a new intake with its own delivery
#     event, never onto a file still on the partner's server (refused
#     loudly, then retried by replaying the failed re-send); a bag changed
#     since sealing is never sent; replay of a failed delivery retries it.
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

# --- re-send: wharf replay of a delivered intake -------------------------------
out_profile resend rs true
put resend a.csv 1
SHA=$(sha256sum var/drop/resend/a.csv | cut -d' ' -f1)
w once resend >/dev/null 2>&1 || true
A=$(intake_of resend a.csv)
eq "first delivery" "$(sha256sum "$SSHD_UPLOAD/rs/a.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
rm -f "$SSHD_UPLOAD/rs/a.csv" "$SSHD_UPLOAD/rs/a.csv.done"     # the partner took it
out=$(w replay "$A" 2>&1); rc=$?
eq "replay of a delivered intake succeeds" "$rc" 0
N=$(shown "$A" 'd["replayed_by"]')
contains "it says which intake re-sends it" "$out" "replaying as $N"
eq "the partner has the file again, the sealed bytes" "$(sha256sum "$SSHD_UPLOAD/rs/a.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
eq "and its done file" "$(cat "$SSHD_UPLOAD/rs/a.csv.done" 2>/dev/null)" "1048576 $SHA"
eq "the re-send is a new intake, delivered and sealed" "$(shown "$N" 'd["state"], d["outcome"], d["replay_of"]')" "done loaded $A"
eq "with a delivery event of its own naming the original" "$(shown "$N" '[e["detail"].get("resend_of") for e in d["events"] if e["kind"] == "delivery"]')" "['$A']"
eq "the original keeps its one delivery" "$(shown "$A" 'sum(1 for e in d["events"] if e["kind"] == "delivery")')" 1
check "the re-send is sealed too (wharf verify)" w verify "$N"

# the file is still on the partner's server: refused loudly, nothing replaced
ino=$(stat -c %i "$SSHD_UPLOAD/rs/a.csv")
out=$(w replay "$N" 2>&1); rc=$?
N2=$(shown "$N" 'd["replayed_by"]')
check "a re-send onto a file still there fails (exit $rc)" test "$rc" -ne 0
eq "the re-send is parked as failed" "$(shown "$N2" 'd["state"]')" failed
contains "saying the file is still there" "$(w show "$N2" 2>&1)" "a.csv is still there"
contains "and what to do" "$(w show "$N2" 2>&1)" "wharf replay $N2"
eq "the partner's file was not replaced" "$(stat -c %i "$SSHD_UPLOAD/rs/a.csv")" "$ino"
eq "no temp file left" "$(ls -A "$SSHD_UPLOAD/rs" | grep -c part)" 0
# replay of a failed delivery retries it
rm -f "$SSHD_UPLOAD/rs/a.csv"
out=$(w replay "$N2" 2>&1); rc=$?
eq "replay of the failed re-send retries it" "$rc" 0
eq "delivered" "$(shown "$N2" 'd["state"], d["outcome"]')" "done loaded"
eq "the bytes are the sealed ones" "$(sha256sum "$SSHD_UPLOAD/rs/a.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"

# a bag changed since sealing is never sent
put resend b.csv 1
w once resend >/dev/null 2>&1 || true
Bi=$(intake_of resend b.csv)
rm -f "$SSHD_UPLOAD/rs/b.csv" "$SSHD_UPLOAD/rs/b.csv.done"
BBAG=$(shown "$Bi" 'd["bag"]')
chmod u+w "$BBAG/data/b.csv" 2>/dev/null; printf 'X' | dd of="$BBAG/data/b.csv" bs=1 seek=10 conv=notrunc 2>/dev/null
out=$(w replay "$Bi" 2>&1); rc=$?
check "the re-send of a changed bag fails (exit $rc)" test "$rc" -ne 0
check "nothing reached the partner" test ! -e "$SSHD_UPLOAD/rs/b.csv"
NB=$(shown "$Bi" 'd["replayed_by"]')
contains "it names the sha256 mismatch" "$(w show "$NB" 2>&1)" "not replayed (run wharf verify $Bi)"

# replay of a failed delivery (a partner's file of that name) retries it
out_profile keep2 k2
echo "the partner's own" > "$SSHD_UPLOAD/k2/k.csv"
put keep2 k.csv 1
SHA=$(sha256sum var/drop/keep2/k.csv | cut -d' ' -f1)
w once keep2 >/dev/null 2>&1 || true
K=$(intake_of keep2 k.csv)
eq "a delivery onto a partner's file fails" "$(shown "$K" 'd["state"]')" failed
rm "$SSHD_UPLOAD/k2/k.csv"
w replay "$K" >/dev/null 2>&1
eq "replayed after the partner removed theirs: delivered" "$(shown "$K" 'd["state"], d["outcome"]')" "done loaded"
eq "the bytes are ours" "$(sha256sum "$SSHD_UPLOAD/k2/k.csv" | cut -d' ' -f1)" "$SHA"
finish
