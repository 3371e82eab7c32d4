#!/usr/bin/env bash
# A hostile partner on a local spool (issue 14):
#  - take: the partner keeps a write descriptor on its file and rewrites it
#    after the take, and again after sealing; the loaded rows, the ledger's
#    sha256 and the sealed payload must still agree, `wharf verify` passes,
#    and `after: delete` never removes a file other than the one taken;
#  - a racer swaps a spool subdirectory with a symlink to a directory
#    outside the spool while `wharf once` polls: nothing outside is read,
#    moved, quarantined or deleted;
#  - limits.max_bytes holds for plain (uncompressed) files;
#  - one unreadable subdirectory does not stop a recursive feed;
#  - wharf's own files are not world-readable whatever the caller's umask.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
sha() { sha256sum "$1" | cut -d' ' -f1; }
# intake_field ID FIELD (from `wharf intakes --json`)
intake_field() {
  w intakes --json | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    if i["id"] == sys.argv[1]: print(i[sys.argv[2]] if i[sys.argv[2]] is not None else "")' "$1" "$2"
}
# the id of the only intake of a profile
only_intake() {
  w intakes -p "$1" --json | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["id"] if len(a)==1 else "count=%d" % len(a))'
}

# A partner process that opened its file for writing before wharf took it
# and keeps the descriptor: on "$1.go" it overwrites bytes at an offset
# (same length: size unchanged), fsyncs, says "$1.written", keeps the fd
# until "$1.release".  Every wait is bounded (60 s).
holder() { # file offset bytes
  python3 - "$1" "$2" "$3" <<'EOF' &
import os, sys, time
path, off, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
fd = os.open(path, os.O_WRONLY)
open(path + ".held", "w").close()
def wait(f):
    for _ in range(1200):
        if os.path.exists(f): return True
        time.sleep(0.05)
    sys.exit("holder: no " + f)
wait(path + ".go")
os.pwrite(fd, data, off)
os.fsync(fd)
open(path + ".written", "w").close()
wait(path + ".release")
os.close(fd)
EOF
  for _ in $(seq 200); do [ -e "$1.held" ] && return 0; sleep 0.05; done
  return 1
}
rewrite_now() { # file: tell the holder to write, wait until it has
  touch "$1.go"
  for _ in $(seq 400); do [ -e "$1.written" ] && return 0; sleep 0.05; done
  return 1
}

# --- item 2: the partner rewrites its file after the take -----------------
spool_profile held '{ done_file: "{name}.done" }' delete
H=var/drop/held
printf 'order_id,customer,amount\n1,acme,100\n2,acme,2\n' > $H/a.csv
TAKEN_SHA=$(sha $H/a.csv)
OFF=$(grep -bo ',100$' $H/a.csv | cut -d: -f1); OFF=$((OFF + 1))
touch $H/a.csv.done
check "the partner holds a write descriptor on a.csv" holder "$T/$H/a.csv" "$OFF" 999
WHARF_TEST_CRASH=taken w once held >/dev/null 2>&1 # stops right after the take
ID=$(only_intake held)
eq "the file was taken" "$(intake_field "$ID" state)" taken
check "the partner rewrites 100 -> 999 through its descriptor" rewrite_now "$T/$H/a.csv"
w once held >out 2>&1
eq "the intake was loaded" "$(intake_field "$ID" state)/$(intake_field "$ID" outcome)" done/loaded
eq "the ledger holds the sha256 of the bytes taken" "$(intake_field "$ID" sha256)" "$TAKEN_SHA"
eq "the target holds the value taken (100), not the rewrite (999)" \
  "$(sql var/warehouse.db "select cast(amount as integer) from held where _wharf_intake = '$ID' and order_id = 1")" 100
BAG=$(intake_field "$ID" bag)
eq "the sealed payload is the bytes taken" "$(sha "$BAG/data/a.csv" 2>/dev/null)" "$TAKEN_SHA"
check "wharf verify passes" w verify
check "the rewritten file was not deleted (it is not what was taken)" test -e $H/a.csv
contains "it still holds the rewrite" "$(cat $H/a.csv)" "1,acme,999"
touch $H/a.csv.release; wait

# --- item 2: rewritten after sealing: the bag is not the partner's inode --
spool_profile sealed '{ done_file: "{name}.done" }' delete
S=var/drop/sealed
printf 'order_id,customer,amount\n1,acme,100\n2,acme,2\n' > $S/b.csv
TAKEN_SHA=$(sha $S/b.csv)
touch $S/b.csv.done
check "the partner holds a write descriptor on b.csv" holder "$T/$S/b.csv" "$OFF" 999
WHARF_TEST_CRASH=sealed w once sealed >/dev/null 2>&1 # stops right after sealing
ID=$(only_intake sealed)
eq "b.csv was sealed" "$(intake_field "$ID" state)" sealed
check "the partner rewrites b.csv after sealing" rewrite_now "$T/$S/b.csv"
w verify >out 2>&1; rc=$?
eq "wharf verify passes after the partner's rewrite (exit 0)" "$rc" 0
BAG=$(intake_field "$ID" bag)
eq "the sealed payload is still the bytes taken" "$(sha "$BAG/data/b.csv" 2>/dev/null)" "$TAKEN_SHA"
w once sealed >/dev/null 2>&1
eq "the intake finished" "$(intake_field "$ID" state)" done
check "the rewritten b.csv stays in the spool" test -e $S/b.csv
touch $S/b.csv.release; wait

# --- item 2: after: delete removes only the inode that was taken ----------
spool_profile swap '{ done_file: "{name}.done" }' delete
W=var/drop/swap
printf 'order_id,customer,amount\n1,acme,100\n2,acme,2\n' > $W/c.csv
touch -d '2024-01-01 00:00:00' $W/c.csv
touch $W/c.csv.done
WHARF_TEST_CRASH=sealed w once swap >/dev/null 2>&1
ID=$(only_intake swap)
eq "c.csv was sealed" "$(intake_field "$ID" state)" sealed
# a new file under the same name, same size and same mtime, other content
printf 'order_id,customer,amount\n1,acme,555\n2,acme,2\n' > $W/c.new
touch -d '2024-01-01 00:00:00' $W/c.new
mv $W/c.new $W/c.csv
NEW_SHA=$(sha $W/c.csv)
w once swap >/dev/null 2>&1
eq "the intake finished" "$(intake_field "$ID" state)" done
eq "the replacement (same name, size and mtime, another inode) was not deleted" \
  "$(sha $W/c.csv 2>/dev/null)" "$NEW_SHA"

# --- item 7: limits.max_bytes holds for plain (uncompressed) files ---------
spool_profile big '{ done_file: "{name}.done" }' delete
echo "limits: { max_bytes: 200 }" >> profiles/big.yaml
orders_csv var/drop/big/small.csv 1 3        # ~80 bytes
orders_csv var/drop/big/large.csv 100 40     # ~900 bytes
touch var/drop/big/small.csv.done var/drop/big/large.csv.done
BIG_SHA=$(sha var/drop/big/large.csv)
w once big >out 2>&1
eq "the small file loaded" "$(sql var/warehouse.db 'select count(*) from big where order_id < 100')" 3
eq "nothing of the large one loaded" "$(sql var/warehouse.db 'select count(*) from big where order_id >= 100')" 0
LID=$(w intakes -p big --json | python3 -c 'import json,sys
print([i["id"] for i in json.load(sys.stdin) if i["name"] == "large.csv"][0])')
eq "the large one is parked as failed" "$(intake_field "$LID" state)" failed
contains "saying why" "$(intake_field "$LID" last_error)" "more than limits.max_bytes (200)"
check "it was not copied into work/" test ! -e "var/work/$LID/original"
eq "and stays in the spool untouched" "$(sha var/drop/big/large.csv)" "$BIG_SHA"
w ingest -p big var/drop/big/large.csv >out 2>&1; rc=$?
check "wharf ingest of it fails too (exit $rc)" test "$rc" -ne 0
eq "still nothing of it loaded" "$(sql var/warehouse.db 'select count(*) from big where order_id >= 100')" 0

# --- item 1: a subdirectory swapped for a symlink to outside the spool ----
# outside/ is somebody else's directory: files named like the spool's (a*.csv
# that would load, q*.csv where the spool has symlinks to quarantine).  A
# racer exchanges var/drop/race/sub with var/drop/race/link (a symlink to
# outside/) as fast as it can while `wharf once` polls a bounded number of
# times; it refills sub/ through a descriptor it holds.  Afterwards outside/
# must be exactly as it was and nothing of it loaded.
mkdir -p outside var/drop/race/sub
for i in 1 2 3 4 5 6; do
  printf 'order_id,customer,amount\n%d,OUTSIDE,1\n' "$((900 + i))" > outside/a$i.csv
  touch -d '2024-01-01 00:00:00' outside/a$i.csv
  echo "secret $i" > outside/q$i.csv
done
ln -s "$T/outside" var/drop/race/link
outside_state() { (cd "$T/outside" && find . -printf '%p %i %s %T@ %y\n' | sort && sha256sum ./* 2>/dev/null | sort); }
BEFORE=$(outside_state)
cat > profiles/race.yaml <<EOP
name: race
source:
  type: spool
  path: var/drop/race
  pattern: "*.csv"
  recursive: true
  complete_when: { min_age: 1s }
  after: delete
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: race }
retry: { max_attempts: 3, backoff: 10ms, backoff_max: 20ms }
EOP
python3 "$WHARF_SOURCE_DIR/tests/lib/spool_racer.py" "$T/var/drop/race" &
RACER=$!
for _ in $(seq 200); do [ -e var/drop/race.ready ] && break; sleep 0.05; done
sleep 1.1 # min_age: the first files must be a second old
ROUNDS=${RACE_ROUNDS:-40}
for ((r = 1; r <= ROUNDS; r++)); do
  w once race >/dev/null 2>&1
  [ "$(outside_state)" = "$BEFORE" ] || break
done
touch var/drop/race.stop; wait $RACER
echo "# racer: $(cat var/drop/race.swaps 2>/dev/null) swaps over $((r > ROUNDS ? ROUNDS : r)) polls"
eq "the racer ran" "$([ -s var/drop/race.swaps ] && echo yes)" yes
AFTER=$(outside_state)
if [ "$AFTER" = "$BEFORE" ]; then ok "nothing outside the spool was moved, quarantined, changed or deleted"
else bad "nothing outside the spool was moved, quarantined, changed or deleted: $(diff <(echo "$BEFORE") <(echo "$AFTER") | grep '^[<>]' | head -6 | tr '\n' ';')"; fi
eq "no row of an outside file was loaded" \
  "$(sql var/warehouse.db "select count(*) from race where customer = 'OUTSIDE'" 2>/dev/null || echo 0)" 0
OUT_SHAS=$(cd outside && sha256sum ./* | cut -d' ' -f1 | tr '\n' '|')
eq "no intake holds an outside file's bytes" "$(w intakes -p race --json | python3 -c 'import json,sys
shas=set(sys.argv[1].split("|"))-{""}
print(sum(1 for i in json.load(sys.stdin) if i["sha256"] in shas))' "$OUT_SHAS")" 0
eq "no outside file reached the quarantine" "$(find var -path '*quarantine*' -type f | wc -l)" 0
DURING=$(sql var/warehouse.db "select count(*) from race where customer = 'INSIDE'" 2>/dev/null || echo 0)
echo "# rows of the spool's own files taken while the racer ran: $DURING"
# How many takes win against a racer swapping as fast as it can depends on
# the machine's load.  A take that found a directory of its path swapped was
# refused and parked failed; the same file (path, size, mtime: the racer
# refills with the same mtime) is then not taken again on its own -- the
# operator replays it (runbooks/stuck-file.md).  So once the racer stopped,
# each of the spool's own files is loaded or parked with that refusal, never
# silently left, and a replay of the profile's failed intakes loads the rest.
# (No wait for min_age: the racer backdates what it writes.)
# A file dropped after the race (old enough for min_age) is taken by the
# poll itself, no replay needed: the feed works once the racer is gone.
printf 'order_id,customer,amount\n107,INSIDE,1\n' > var/drop/race/sub/a7.csv
touch -d '2024-01-01 00:00:00' var/drop/race/sub/a7.csv
w once race >/dev/null 2>&1
eq "a file dropped after the race is taken by the next poll" \
  "$(sql var/warehouse.db "select count(*) from race where order_id = 107" 2>/dev/null || echo 0)" 1
own_state() { w intakes -p race --json | python3 -c 'import json,sys
ins=json.load(sys.stdin); n=sys.argv[1]
print(sum(1 for i in ins if i["name"]==n and i["state"]=="failed" and "refused" in (i.get("last_error") or "")))' "$1"; }
unaccounted=""; refused=0
for i in 1 2 3 4 5 6; do
  [ "$(sql var/warehouse.db "select count(*) from race where order_id = $((100 + i))" 2>/dev/null || echo 0)" -gt 0 ] && continue
  if [ "$(own_state a$i.csv)" -gt 0 ]; then refused=$((refused + 1)); else unaccounted="$unaccounted a$i.csv"; fi
done
TAKEN=$(sql var/warehouse.db "select count(distinct order_id) from race where customer = 'INSIDE' and order_id < 107" 2>/dev/null || echo 0)
echo "# after the race: $TAKEN of the 6 own files loaded, $refused parked as refused"
eq "each of the spool's own files is loaded or parked failed as refused (none left silently)" "$unaccounted" ""
w replay -p race --all >/dev/null 2>&1
w once race >/dev/null 2>&1
eq "after a replay of the refused takes, each of the spool's own files is loaded" \
  "$(sql var/warehouse.db "select count(distinct order_id) from race where customer = 'INSIDE'" 2>/dev/null || echo 0)" 7
eq "and each once" \
  "$(sql var/warehouse.db "select count(*) from race where customer = 'INSIDE'" 2>/dev/null || echo 0)" 7
eq "still nothing of outside/ loaded" \
  "$(sql var/warehouse.db "select count(*) from race where customer = 'OUTSIDE'" 2>/dev/null || echo 0)" 0
eq "still no intake holds an outside file's bytes" "$(w intakes -p race --json | python3 -c 'import json,sys
shas=set(sys.argv[1].split("|"))-{""}
print(sum(1 for i in json.load(sys.stdin) if i["sha256"] in shas))' "$OUT_SHAS")" 0
eq "every intake of the race ended done or failed, none left in between" "$(w intakes -p race --json | python3 -c 'import json,sys
print(" ".join(sorted("%s:%s" % (i["path"], i["state"]) for i in json.load(sys.stdin) if i["state"] not in ("done", "failed"))))')" ""
[ "$(outside_state)" = "$BEFORE" ] && ok "outside/ still untouched after the replay" || bad "outside/ changed after the replay"

# --- item 8: an unreadable subdirectory does not stop a recursive feed -----
# wharf runs as an unprivileged user here (as the packaged service does):
# root could read any directory.  locked/ (mode 0700, another owner) cannot
# be opened, listonly/ (0744) can be listed but not searched; both are
# passed over and reported, ok1/ and ok2/ are taken.
if [ "$(id -u)" = 0 ]; then AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups); else AS_USER=(); fi
U=$T/unpriv
mkdir -p $U/profiles $U/schemas $U/var/drop/feed/{ok1,locked,listonly,ok2}
cp schemas/orders.schema.json $U/schemas/
cat > $U/profiles/feed.yaml <<EOP
name: feed
source: { type: spool, path: var/drop/feed, pattern: "*.csv", recursive: true,
          complete_when: { min_age: 1s }, after: delete }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: feed }
EOP
orders_csv $U/var/drop/feed/ok1/a.csv 1 3
orders_csv $U/var/drop/feed/locked/c.csv 20 3
orders_csv $U/var/drop/feed/listonly/d.csv 30 3
orders_csv $U/var/drop/feed/ok2/b.csv 10 3
touch -d '2024-01-01 00:00:00' $U/var/drop/feed/*/*.csv
if [ ${#AS_USER[@]} -gt 0 ]; then
  chown -R 65534:65534 $U
  chown -R 0:0 $U/var/drop/feed/locked $U/var/drop/feed/listonly
  chmod 711 "$T"; chmod 1777 "$T/.sanitizer"
fi
chmod 700 $U/var/drop/feed/locked; chmod 744 $U/var/drop/feed/listonly
wu() { (cd "$U" && "${AS_USER[@]}" "$WHARF" "$@"); }
wu once feed >$U/once.out 2>&1; rc=$?
eq "wharf once succeeds (exit 0)" "$rc" 0
eq "the readable directories were taken (6 rows)" "$(sql $U/var/warehouse.db 'select count(*) from feed' 2>/dev/null || echo 0)" 6
check "locked/c.csv stays" test -e $U/var/drop/feed/locked/c.csv
check "listonly/d.csv stays" test -e $U/var/drop/feed/listonly/d.csv
contains "the log names the unreadable directory" "$(cat $U/once.out)" "locked"
ST=$(wu status --json)
eq "status shows the feed stuck" "$(python3 -c 'import json,sys
print([p["state"] for p in json.loads(sys.argv[1]) if p["profile"]=="feed"][0])' "$ST")" stuck
contains "status says which directory is passed over" "$(wu status)" "listonly: cannot read this directory (Permission denied)"
eq "status --json counts both unreadable directories" "$(python3 -c 'import json,sys
print([p["source_health"]["unreadable"] for p in json.loads(sys.argv[1]) if p["profile"]=="feed"][0])' "$ST")" 2
FID=$(cd $U && "${AS_USER[@]}" "$WHARF" intakes -p feed --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
contains "show reports it on the source line" "$(wu show "$FID")" "unreadable"
chmod 755 $U/var/drop/feed/locked $U/var/drop/feed/listonly
chown -R 65534:65534 $U 2>/dev/null
wu once feed >/dev/null 2>&1
eq "once readable again, the rest is taken (12 rows)" "$(sql $U/var/warehouse.db 'select count(*) from feed' 2>/dev/null || echo 0)" 12
eq "and status is no longer stuck" "$(wu status --json | python3 -c 'import json,sys
print([p["state"] for p in json.load(sys.stdin) if p["profile"]=="feed"][0])')" ok
[ ${#AS_USER[@]} -gt 0 ] && chmod 700 "$T"

# --- item 12: wharf's files are not world-readable, whatever the umask ---
M=$T/modes
mkdir -p $M/profiles $M/schemas
cp schemas/orders.schema.json $M/schemas/
(cd $M && umask 022 && mkdir -p drop && cat > profiles/m.yaml <<'EOP'
name: m
source: { type: spool, path: drop, pattern: "*.csv", complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: m }
EOP
)
orders_csv $M/drop/x.csv 1 2; touch $M/drop/x.csv.done
printf 'order_id,customer,amount\nzz,bad,1\n' > $M/drop/bad.csv; touch $M/drop/bad.csv.done
(cd $M && umask 022 && "$WHARF" once >/dev/null 2>&1)
eq "the state directory is created 0750" "$(stat -c %a $M/var 2>/dev/null)" 750
eq "the ledger is 0640" "$(stat -c %a $M/var/ledger.db 2>/dev/null)" 640
eq "the SQLite target is 0640" "$(stat -c %a $M/var/warehouse.db 2>/dev/null)" 640
WORLD=$(find $M/var -perm /o=rwx -printf '%m %p\n' | head -5)
eq "nothing under the state directory is accessible to others" "$WORLD" ""
eq "bags were written (loaded and rejected)" "$(find $M/var -name bag-info.txt | wc -l)" 2

finish
