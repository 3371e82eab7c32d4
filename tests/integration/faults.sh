#!/usr/bin/env bash
# I/O faults, SQLite-style: tests/faults/faultshim.so (LD_PRELOAD) fails the
# Nth write, fsync, rename or open under the test's var/ with EIO or ENOSPC,
# for N over the whole range of calls one `wharf once` makes (sampled with a
# stride when there are more than FAULT_ITER calls; FAULT_ITER=0 tries every
# N).  After each faulty run wharf runs again without the shim (recovery),
# every intake parked in failed is replayed, and then the invariants must
# hold (tests/faults/invariants.py): each file loaded or rejected exactly
# once, rows per intake in the target == ledger == wharf_loads, nothing
# stuck, `wharf verify` clean, PRAGMA integrity_check ok on the ledger.
# A failed fsync must end its unit of work, with the failure in the log --
# except the directory fsync SQLite itself makes and ignores by design
# (unixSync), and the checkpoint SQLite attempts when a connection closes
# (the committed transaction is already durable in the WAL, which stays and
# is checkpointed later): those are counted and reported, not failed.
#
#   FAULT_ITER=N        at most N runs per kind and errno (default 8)
#   FAULT_KINDS="..."   kinds to try (default "fsync write rename open")
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

SHIM=${WHARF_FAULTSHIM:-$WHARF_BUILD_DIR/tests/libfaultshim.so}
if [ ! -f "$SHIM" ]; then
  cc -shared -fPIC -O1 -o "$T/libfaultshim.so" "$WHARF_SOURCE_DIR/tests/faults/faultshim.c" -ldl || exit 1
  SHIM=$T/libfaultshim.so
fi
INV="$WHARF_SOURCE_DIR/tests/faults/invariants.py"
ITER=${FAULT_ITER:-8}
KINDS=${FAULT_KINDS:-"fsync write rename open"}
# an ASan build checks that its runtime comes first; the shim comes first
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

cat > schemas/o.json <<'EOS'
{"fields": [{"name": "order_id", "type": "integer"}, {"name": "customer", "type": "string"},
            {"name": "amount", "type": "number"}]}
EOS
base=$T
setup_case() { # DIR
  mkdir -p "$1/profiles" "$1/schemas" "$1/var/drop/p" && cd "$1" || exit 1
  cp "$base/schemas/o.json" schemas/
  cat > profiles/p.yaml <<'EOP'
name: p
source: { type: spool, path: var/drop/p, pattern: "*", complete_when: { done_file: "{name}.done" } }
format: auto
csv: { schema: o.json }
target: { type: sqlite, path: var/warehouse.db, table: p }
retry: { max_attempts: 2, backoff: 50ms, backoff_max: 100ms }
EOP
  orders_csv var/drop/p/a.csv 1 20
  { echo "order_id,customer,amount"; echo "x,bad,1"; } > var/drop/p/b.csv
  orders_csv var/drop/p/c.csv 100 10 && gzip var/drop/p/c.csv
  touch var/drop/p/a.csv.done var/drop/p/b.csv.done var/drop/p/c.csv.gz.done
  printf 'p\ta.csv\tloaded\t20\tp\t-\np\tb.csv\trejected\t0\tp\t-\np\tc.csv.gz\tloaded\t10\tp\t-\n' > expect.tsv
}

# one faulty run + recovery + invariants; prints nothing on success
runs=0; violations=0; unlogged=0; sqlite_dirsync=0; sqlite_close=0; crashes=0
try() { # KIND N ERRNO
  local kind=$1 n=$2 err=$3 d="$base/f-$1-$2-$3" rc line fired by path i
  setup_case "$d"
  WHARF_FAULT=$kind:$n:$err WHARF_FAULT_DIR=$d/var WHARF_FAULT_LOG=$d/shim.log LD_PRELOAD=$SHIM \
    WHARF_FAULT_BACKTRACE=1 timeout 60 "$WHARF" once >/dev/null 2>fault.err
  rc=$?
  runs=$((runs + 1))
  local why=""
  [ "$rc" -le 5 ] || { why="faulty run exit $rc (crash?)"; crashes=$((crashes + 1)); }
  line=$(grep -m1 '^faultshim: failing' shim.log 2>/dev/null)
  # recovery: again without the shim, then replay what was parked
  for i in 1 2 3; do
    timeout 60 "$WHARF" once >/dev/null 2>>recover.err
    w intakes --json 2>/dev/null | python3 -c 'import json,sys
sys.exit(0 if all(i["state"] in ("done","failed") for i in json.load(sys.stdin)) else 1)' && break
    sleep 0.2
  done
  for i in $(w intakes --state failed --json 2>/dev/null | python3 -c 'import json,sys
for i in json.load(sys.stdin): print(i["id"])'); do
    timeout 60 "$WHARF" replay "$i" >/dev/null 2>>recover.err
  done
  timeout 60 "$WHARF" once >/dev/null 2>>recover.err
  w intakes --json > intakes.json 2>/dev/null
  local inv; inv=$(python3 "$INV" intakes.json var/warehouse.db expect.tsv 2>&1)
  [ $? -eq 0 ] || why="$why${why:+; }$(echo "$inv" | grep -v '^violations' | head -3 | tr '\n' ' ')"
  [ "$(sqlite3 var/ledger.db 'pragma integrity_check' 2>&1)" = ok ] || why="$why; ledger integrity_check fails"
  timeout 60 "$WHARF" verify >/dev/null 2>&1 || why="$why; verify fails"
  [ -z "$(ls var/drop/p)" ] || why="$why; spool not empty: $(ls var/drop/p | tr '\n' ' ')"
  if [ -n "$line" ]; then
    by=${line##* by }; path=$(echo "$line" | sed 's/^faultshim: failing [a-z]* #[0-9]* on \(.*\) with .*/\1/')
    if [ "$kind" = fsync ]; then
      if [[ $by == libsqlite3* ]] && { [ -d "$path" ] || [[ $path != *.db* ]]; }; then
        sqlite_dirsync=$((sqlite_dirsync + 1))  # SQLite ignores directory fsync errors itself
      elif [[ $by == libsqlite3* ]] && grep -q 'sqlite3WalClose\|sqlite3_close' shim.log; then
        sqlite_close=$((sqlite_close + 1))      # checkpoint at close: the WAL stays, nothing lost
      elif [[ $by == libsqlite3* ]]; then
        grep -q 'I/O error' fault.err || why="$why; SQLite fsync failure on $path not in the log"
      else
        grep -q 'fsync' fault.err || why="$why; fsync failure on $path not in the log"
      fi
    elif ! grep -qE '"level":"(error|warn)"|^wharf: ' fault.err; then
      unlogged=$((unlogged + 1))
      echo "note - $kind #$n ($err) on $path by $by: no error logged (handled silently)"
    fi
  fi
  cd "$base" || exit 1
  if [ -n "$why" ]; then
    violations=$((violations + 1))
    bad "$kind #$n $err (${line:-not reached}): $why"
    KEEP=1
  else
    rm -rf "$d"
  fi
  [ -n "$line" ]
}

for kind in $KINDS; do
  # calibrate: how many matching calls does a clean run make?
  d=$base/cal-$kind; setup_case "$d"
  WHARF_FAULT=$kind:999999999:EIO WHARF_FAULT_DIR=$d/var WHARF_FAULT_LOG=$d/shim.log LD_PRELOAD=$SHIM \
    timeout 60 "$WHARF" once >/dev/null 2>&1
  total=$(sed -n 's/.*calls seen \([0-9]*\).*/\1/p' shim.log | sort -n | tail -1)
  cd "$base" || exit 1
  if [ -z "$total" ] || [ "$total" -eq 0 ]; then bad "$kind: the shim saw no calls"; continue; fi
  stride=1
  [ "$ITER" -gt 0 ] && stride=$(( (total + ITER - 1) / ITER ))
  before=$violations; tried=0
  for err in EIO ENOSPC; do
    # the errno alternates the offset so both errnos cover different N
    start=1; [ "$err" = ENOSPC ] && start=$(( stride > 1 ? 1 + stride / 2 : 1 ))
    for ((n = start; n <= total; n += stride)); do
      try "$kind" "$n" "$err"; tried=$((tried + 1))
    done
  done
  if [ "$violations" -eq "$before" ]; then
    ok "$kind: $total calls per run, $tried faulty runs (stride $stride, EIO and ENOSPC): invariants hold"
  fi
done
# The runbook and the retry decision come from the error's kind (set from
# errno where the call failed), never from its text: a full disk in the take
# is retried and names disk-full.md; a failed fsync there is not retried
# (it never turns into success) and names disk-full.md too.
kind_case() { # KIND ERRNO -> the faulty run's intake, in $d
  d=$base/kind-$1-$2; setup_case "$d"
  rm -f var/drop/p/b.csv* var/drop/p/c.csv*
  mkdir -p var/work # the shim resolves WHARF_FAULT_DIR at start
  WHARF_FAULT=$1:1:$2 WHARF_FAULT_DIR=$d/var/work WHARF_FAULT_LOG=$d/shim.log LD_PRELOAD=$SHIM \
    timeout 60 "$WHARF" once >/dev/null 2>fault.err
  grep -q '^faultshim: failing' shim.log || bad "$1 $2: the fault never fired"
  cd "$base" || exit 1
}
kind_case write ENOSPC
contains "ENOSPC in the take: the retry names disk-full.md" "$(grep '"event":"retry"' "$d/fault.err")" "runbooks/disk-full.md"
kind_case fsync EIO
js=$(cd "$d" && w intakes --json)
eq "EIO on fsync in the take: failed at once, not retried" "$(printf '%s' "$js" | python3 -c 'import json,sys; i=json.load(sys.stdin)[0]; print(i["state"], i["attempts"])')" "failed 1"
contains "EIO on fsync: the error names disk-full.md" "$(printf '%s' "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["last_error"])')" "runbooks/disk-full.md"

[ "$sqlite_dirsync" -gt 0 ] && echo "note - $sqlite_dirsync directory fsync failures inside SQLite (ignored by SQLite's unixSync)"
[ "$sqlite_close" -gt 0 ] && echo "note - $sqlite_close fsync failures in SQLite's checkpoint at close (WAL kept, checkpointed later)"
echo "fault runs: $runs, violations: $violations, crashes: $crashes, silently handled: $unlogged"
finish
