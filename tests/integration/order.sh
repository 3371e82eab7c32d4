#!/usr/bin/env bash
# A feed that must load in sequence (`order: name` with `concurrency: 1`):
# when the earliest file fails transiently (its take hits EMFILE, injected
# by tests/faults/faultshim.so on that one path), the files after it are
# taken and checked but not loaded -- held, saying behind which intake, in
# `wharf once`'s summary and in `wharf show` -- until it is done; then they
# load in name order.  Before, they were loaded while it waited for its
# retry: the target got b and c before a, and nothing said so.
# A reject does not hold the ones after it (it is final and loud); a
# profile without `order:` is not held either.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

SHIM=${WHARF_FAULTSHIM:-$WHARF_BUILD_DIR/tests/libfaultshim.so}
if [ ! -f "$SHIM" ]; then
  cc -shared -fPIC -O1 -o "$T/libfaultshim.so" "$WHARF_SOURCE_DIR/tests/faults/faultshim.c" -ldl || exit 1
  SHIM=$T/libfaultshim.so
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

orders_schema
feed() { # NAME ORDER: a done-file profile with 1 s retries
  spool_profile "$1" '{ done_file: "{name}.done" }'
  sed -i 's/^retry: .*/retry: { max_attempts: 5, backoff: 1s, backoff_max: 1s }/' "profiles/$1.yaml"
  [ -n "$2" ] && printf 'order: %s\nconcurrency: 1\n' "$2" >> "profiles/$1.yaml"
}
drop() { # PROFILE NAME FIRST_ID
  orders_csv "var/drop/$1/$2" "$3" 5
  touch "var/drop/$1/$2.done"
}
id_of() { w intakes -p "$1" --json | python3 -c 'import json,sys
print([i["id"] for i in json.load(sys.stdin) if i["name"] == sys.argv[1]][0])' "$2"; }
# the intakes' files in the order their rows reached the target
load_order() {
  sql var/warehouse.db "select _wharf_intake from $1 group by 1 order by min(rowid)" | while read -r i; do
    w show "$i" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])'
  done | tr '\n' ' '
}
faulty_once() { # PATH: the first open(2) of PATH fails with EMFILE
  WHARF_FAULT=open:1:EMFILE WHARF_FAULT_DIR="$PWD/$1" LD_PRELOAD="$SHIM" "$WHARF" once 2>>once.log
}

# --- ordered: a transient failure of the first file holds the others -------
feed seq name
drop seq a.csv 100; drop seq b.csv 200; drop seq c.csv 300
out=$(faulty_once var/drop/seq/a.csv)
contains "a.csv's take failed and waits for its retry" "$(w intakes -p seq --json)" '"name": "a.csv"'
eq "nothing was loaded while a.csv waits" "$(sql var/warehouse.db 'select count(*) from seq' 2>/dev/null || echo 0)" 0
contains "once says two files are held" "$out" "2 held behind an earlier file (order:)"
A=$(id_of seq a.csv); B=$(id_of seq b.csv)
contains "wharf show b.csv: held behind a.csv's intake" "$(w show "$B")" "$A"
contains "wharf status: retrying, two files held behind it" "$(w status)" "2 later files held behind it (order:)"
eq "status --json counts them" "$(w status --json | python3 -c 'import json,sys; print([p["held"] for p in json.load(sys.stdin) if p["profile"] == "seq"][0])')" 2
eq "b.csv stopped short of the load" "$(w show "$B" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" inspected
for _ in $(seq 20); do
  sleep 0.5
  w once >>once.log 2>&1
  [ "$(sql var/warehouse.db 'select count(distinct _wharf_intake) from seq' 2>/dev/null)" = 3 ] && break
done
eq "all three loaded once a.csv's retry worked" "$(w intakes -p seq --json | python3 -c 'import json,sys; print(sorted(i["state"]+"/"+i["outcome"] for i in json.load(sys.stdin)))')" \
  "['done/loaded', 'done/loaded', 'done/loaded']"
eq "in name order" "$(load_order seq)" "a.csv b.csv c.csv "
eq "15 rows, none twice" "$(sql var/warehouse.db 'select count(*), count(distinct order_id) from seq')" "15|15"

# --- a reject holds nothing: it is final --------------------------------------
drop seq d.csv 400
printf 'order_id,customer,amount\n500,x,-1\n' > var/drop/seq/e.csv; touch var/drop/seq/e.csv.done
drop seq f.csv 600
w once >>once.log 2>&1
eq "after a reject the next file loads" "$(w intakes -p seq --json | python3 -c 'import json,sys; print(sorted((i["name"], i["outcome"]) for i in json.load(sys.stdin) if i["name"] in ("d.csv","e.csv","f.csv")))')" \
  "[('d.csv', 'loaded'), ('e.csv', 'rejected'), ('f.csv', 'loaded')]"

# --- an earlier file only waiting for its finish holds nothing -----------------
# (its rows are in): a.csv's move out of the spool fails once (EMFILE on its
# rename, transient), b.csv and c.csv load in the same run
feed fin name
sed -i 's|^  after: delete|  after: { move: var/done-fin }|' profiles/fin.yaml
drop fin a.csv 700; drop fin b.csv 800; drop fin c.csv 900
WHARF_FAULT=rename:1:EMFILE WHARF_FAULT_DIR="$PWD/var/drop/fin/a.csv" LD_PRELOAD="$SHIM" "$WHARF" once >fin.out 2>>once.log
eq "a.csv sealed, its finish waiting for a retry" "$(w show "$(id_of fin a.csv)" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" sealed
eq "b.csv and c.csv loaded in the same run" "$(load_order fin)" "a.csv b.csv c.csv "
case "$(cat fin.out)" in *held*) bad "nothing held behind a file with its rows in" ;; *) ok "nothing held behind a file with its rows in" ;; esac

# --- without order: nothing is held ---------------------------------------------
feed free ""
drop free a.csv 100; drop free b.csv 200
out=$(faulty_once var/drop/free/a.csv)
eq "unordered: b.csv loads while a.csv waits" "$(sql var/warehouse.db 'select count(*) from free')" 5
case "$out" in *held*) bad "unordered: nothing is said to be held" ;; *) ok "unordered: nothing is said to be held" ;; esac
finish
