#!/usr/bin/env bash
# Outbound profiles (issue 18): files dropped into a local spool are
# delivered to a partner's SFTP server (the real sshd): uploaded under a
# temp name, size checked, renamed into place, a done file with size and
# sha256, sealed in a bag before the spool file goes.  A reader polling the
# partner's directory never sees a partial file under the final name; sshd
# killed mid-upload resumes from the verified offset and the remote sha256
# equals the local one; kill -9 of wharf at every boundary delivers exactly
# once; a partner's file of the same name is kept; fan-out to two partners.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }

. "$WHARF_SOURCE_DIR/tests/lib/outbound.sh"

# --- delivered complete, with its done file, sealed, spool file finished ------
out_profile invoices inv true
put invoices a.csv 3
SHA=$(sha256sum var/drop/invoices/a.csv | cut -d' ' -f1); SIZE=$(stat -c %s var/drop/invoices/a.csv)
w once invoices >/dev/null 2>log || true
A=$(intake_of invoices a.csv)
eq "delivered under its final name, same sha256" "$(sha256sum "$SSHD_UPLOAD/inv/a.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
eq "the done file carries size and sha256" "$(cat "$SSHD_UPLOAD/inv/a.csv.done" 2>/dev/null)" "$SIZE $SHA"
eq "no temp file left" "$(ls -A "$SSHD_UPLOAD/inv" | grep -c '\.part$')" 0
eq "sealed, then done" "$(shown "$A" 'd["state"], d["outcome"]')" "done loaded"
check "the spool file is finished after sealing" test ! -e var/drop/invoices/a.csv
check "the bag holds the bytes sent (wharf verify)" w verify "$A"
eq "the bag's payload is the file sent" "$(sha256sum "$(shown "$A" 'd["bag"]')/data/a.csv" | cut -d' ' -f1)" "$SHA"
contains "show has the delivery" "$(w show "$A" 2>&1)" "delivered"
w once invoices >/dev/null 2>&1 || true
eq "claimed once: a second poll sends nothing" "$(w intakes -p invoices --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1

# --- a reader polling the partner directory never sees a partial final name --
out_profile big bigdir
put big b.csv 96
SHA=$(sha256sum var/drop/big/b.csv | cut -d' ' -f1); SIZE=$(stat -c %s var/drop/big/b.csv)
python3 - "$SSHD_UPLOAD/bigdir/b.csv" "$SIZE" > poll.out <<'PY' &
import os, sys, time
path, size = sys.argv[1], int(sys.argv[2])
seen = partial = 0
deadline = time.time() + 120
while time.time() < deadline:
    try:
        st = os.stat(path)
        seen += 1
        if st.st_size != size:
            partial += 1
        if seen > 50:
            break
    except FileNotFoundError:
        pass
    time.sleep(0.002)
print(seen, partial)
PY
poller=$!
w once big >/dev/null 2>&1 || true
wait $poller
read -r seen partial < poll.out
check "the poller saw the final name" test "${seen:-0}" -gt 0
eq "never with a partial size" "${partial:-x}" 0
eq "and the bytes are the local ones" "$(sha256sum "$SSHD_UPLOAD/bigdir/b.csv" | cut -d' ' -f1)" "$SHA"

# --- sshd's session killed mid-upload: resumes from the verified offset -------
out_profile resume rdir
put resume r.csv 160
SHA=$(sha256sum var/drop/resume/r.csv | cut -d' ' -f1)
"$WHARF" once resume >/dev/null 2>resume.log &
wpid=$!
for _ in $(seq 1 2000); do
  s=$(stat -c %s "$SSHD_UPLOAD/rdir/.r.csv.part" 2>/dev/null || echo 0)
  [ "$s" -gt 20000000 ] && break
  sleep 0.01
done
sshd_kill_sessions "$SD"
wait $wpid
R=$(intake_of resume r.csv)
for _ in 1 2 3 4 5; do
  [ "$(shown "$R" 'd["state"]')" = done ] && break
  sleep 0.3; w once resume >/dev/null 2>>resume.log || true
done
eq "delivered after the session was killed" "$(shown "$R" 'd["state"]')" done
eq "the remote sha256 equals the local one" "$(sha256sum "$SSHD_UPLOAD/rdir/r.csv" | cut -d' ' -f1)" "$SHA"
resumed=$(shown "$R" 'd["info"]["deliveries"][0]["resumed_at"]')
check "it resumed from the verified remote offset ($resumed)" test "${resumed:-0}" -gt 0

# --- a partner's file of the same name is kept --------------------------------
out_profile keep kdir
echo "the partner's own" > "$SSHD_UPLOAD/kdir/k.csv"
put keep k.csv 1
w once keep >/dev/null 2>log || true
K=$(intake_of keep k.csv)
eq "the partner's file is kept" "$(cat "$SSHD_UPLOAD/kdir/k.csv")" "the partner's own"
eq "the intake is parked as failed, not done" "$(shown "$K" 'd["state"]')" failed
contains "saying why" "$(w show "$K" 2>&1)" "already exists"
check "the spool file is still there" test -e var/drop/keep/k.csv

# --- fan-out: one spool, two partners, each delivery tracked ------------------
out_profile fan fan1 false fan2
put fan f.csv 1
SHA=$(sha256sum var/drop/fan/f.csv | cut -d' ' -f1)
w once fan >/dev/null 2>&1 || true
F=$(intake_of fan f.csv)
eq "partner 1 has it" "$(sha256sum "$SSHD_UPLOAD/fan1/f.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
eq "partner 2 has it" "$(sha256sum "$SSHD_UPLOAD/fan2/f.csv" 2>/dev/null | cut -d' ' -f1)" "$SHA"
eq "two deliveries recorded" "$(shown "$F" 'sum(1 for e in d["events"] if e["kind"] == "delivery")')" 2

# --- kill -9 at every boundary: exactly once ----------------------------------
for point in taken uploaded delivered_one delivered sealed; do
  out_profile "c_$point" "c_$point" false "c2_$point"
  put "c_$point" x.csv 2
  SHA=$(sha256sum "var/drop/c_$point/x.csv" | cut -d' ' -f1)
  WHARF_TEST_CRASH=$point "$WHARF" once "c_$point" >/dev/null 2>&1
  rc=$?
  for _ in 1 2 3; do w once "c_$point" >/dev/null 2>&1 || true; done
  X=$(intake_of "c_$point" x.csv)
  files="$(ls -A "$SSHD_UPLOAD/c_$point" | tr '\n' ' ')$(ls -A "$SSHD_UPLOAD/c2_$point" | tr '\n' ' ')"
  got1=$(sha256sum "$SSHD_UPLOAD/c_$point/x.csv" 2>/dev/null | cut -d' ' -f1)
  got2=$(sha256sum "$SSHD_UPLOAD/c2_$point/x.csv" 2>/dev/null | cut -d' ' -f1)
  n=$(w intakes -p "c_$point" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  st=$(shown "$X" 'd["state"]')
  if [ "$rc" -eq 137 ] && [ "$files" = "x.csv x.csv " ] && [ "$got1" = "$SHA" ] && [ "$got2" = "$SHA" ] &&
     [ "$n" = 1 ] && [ "$st" = done ] && w verify "$X" >/dev/null 2>&1; then
    ok "kill -9 at $point: delivered exactly once to both partners, verify ok"
  else
    bad "kill -9 at $point: exit $rc, remote '$files', intakes $n, state $st"
  fi
done
finish
