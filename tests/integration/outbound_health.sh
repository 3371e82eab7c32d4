#!/usr/bin/env bash
# Outbound profiles in `wharf status`, the alerts, `expect:` and the circuit
# breaker (issue 18 part 2), against the real sshd:
#   - a delivery that fails makes the profile `retrying`, naming
#     runbooks/delivery-failed.md and the delivery error's kind;
#   - three failed deliveries in a row to one partner open its circuit: the
#     profile is `down` ("cannot deliver to sftp://..."), the alert command
#     gets destination_down once, and a new file for that partner is held
#     (not tried, no attempt spent) until the next probe;
#   - once the partner is back the probe delivers, the circuit closes, every
#     held file goes out, status is ok and destination_up is alerted;
#   - `expect:` on an outbound profile means "delivered by the deadline": a
#     file delivered (even before it is sealed) meets it, and status speaks
#     of the last file delivered.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }
. "$WHARF_SOURCE_DIR/tests/lib/outbound.sh"

mkdir alerts
cat > wharf.yaml <<'EOY'
alert: "cat > $(mktemp alerts/a.XXXXXX)"
EOY
alerts() { # KIND: how many alerts of that kind
  python3 - "$1" <<'EOP'
import glob, json, sys
print(sum(1 for f in glob.glob("alerts/a.*") if json.load(open(f)).get("event") == sys.argv[1]))
EOP
}
st() { w status --json | python3 -c "import json,sys; d=[p for p in json.load(sys.stdin) if p['profile']==sys.argv[1]][0]; print($2)" "$1"; }

# --- failing deliveries: retrying, then down (circuit open), then held -------
# backoff 10s: the circuit's next probe is 5-10 s after the third failure, so
# the file behind them in the same run is held, whatever the machine's load
# (4 s left a 2 s margin, too little on a loaded machine).
OUT_EXTRA='' out_profile hc hc
sed -i 's/^retry: .*/retry: { max_attempts: 10, backoff: 10s, backoff_max: 10s }/' profiles/hc.yaml
TO="sftp://$SSHD_USER@127.0.0.1:$SSHD_PORT/upload/hc"
sshd_stop "$SD" >/dev/null 2>&1
put hc a.csv 1
w once hc >/dev/null 2>once1.err
eq "one failed delivery: retrying" "$(st hc 'd["state"]')" retrying
contains "status names the delivery's error kind" "$(w status 2>&1)" "delivery unreachable"
eq "and the runbook" "$(st hc 'd["runbook"]')" runbooks/delivery-failed.md
eq "the destination is counted, its circuit still closed" "$(st hc 'd["destinations"][0]["failed_deliveries"], d["destinations"][0]["circuit_open"]')" "1 False"
sleep 10.5 # a's retry is due
put hc b.csv 1; put hc c.csv 1; put hc d.csv 1
w once hc >/dev/null 2>once2.err
eq "three failures in a row: down" "$(st hc 'd["state"]')" down
s=$(w status 2>&1)
contains "status says where it cannot deliver" "$s" "cannot deliver to $TO"
contains "and how often" "$s" "3 failed deliveries"
contains "and the runbook" "$s" "runbooks/delivery-failed.md"
eq "status --json: the destination is down" "$(st hc 'd["destinations"][0]["ok"], d["destinations"][0]["failed_deliveries"], d["destinations"][0]["to"], d["destinations"][0]["kind"]')" "False 3 $TO delivery_unreachable"
contains "the log has destination_down" "$(cat once2.err)" '"event":"destination_down"'
contains "a later file is held, not tried" "$(cat once2.err)" '"event":"delivery_held"'
spent=$(w intakes -p hc --json | python3 -c 'import json,sys; print(sum(i["attempts"] for i in json.load(sys.stdin)))')
eq "one attempt per failed delivery: held files spend none" "$spent" 3
eq "one destination_down alert" "$(alerts destination_down)" 1
w once hc >/dev/null 2>&1
eq "alerted once only" "$(alerts destination_down)" 1
check "nothing reached the partner" test -z "$(ls -A "$SSHD_UPLOAD/hc")"

# --- the partner is back: the probe delivers, the circuit closes -------------
sshd_start "$SD" >/dev/null 2>&1
sleep 10.5 # the retries and the probe are due
w once hc >/dev/null 2>once3.err
eq "every held and retried file delivered" "$(ls "$SSHD_UPLOAD/hc" | tr '\n' ' ')" "a.csv b.csv c.csv d.csv "
eq "status ok again" "$(st hc 'd["state"]')" ok
eq "the circuit is closed" "$(st hc 'd["destinations"][0]["ok"], d["destinations"][0]["circuit_open"]')" "True False"
contains "recovery is logged" "$(cat once3.err)" '"event":"destination_recovered"'
eq "destination_up alerted" "$(alerts destination_up)" 1

# --- expect: delivered by the deadline ---------------------------------------
TODAY=$(date -u +%F)
out_profile sla sla
echo 'expect: [ { days: daily, by: "06:00", missing_after: 1h } ]' >> profiles/sla.yaml
export WHARF_TEST_NOW="${TODAY}T23:59:00Z"
eq "nothing delivered today: missing" "$(st sla 'd["state"]')" missing
contains "status speaks of deliveries" "$(w status 2>&1)" "last file delivered never"
put sla s.csv 1
WHARF_TEST_CRASH=delivered w once sla >/dev/null 2>&1
S=$(intake_of sla s.csv)
eq "delivered, not sealed yet (crash)" "$(shown "$S" 'd["state"]')" loaded
check "the partner has it" test -e "$SSHD_UPLOAD/sla/s.csv"
eq "a delivered file meets the deadline before it is sealed" "$(st sla 'd["sla"]')" ok
w once sla >/dev/null 2>&1
eq "sealed and done: still ok" "$(st sla 'd["sla"], d["state"]')" "ok ok"
contains "status says when the last file was delivered" "$(w status 2>&1)" "ok, last"
unset WHARF_TEST_NOW
finish
