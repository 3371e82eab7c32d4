#!/usr/bin/env bash
# Two nodes, one crashes (issue 16): two `wharf run` processes, nodes a and
# b, share a PostgreSQL ledger, a PostgreSQL target, one spool and the
# archive (each has its own state_dir and work/; archive/ and rejects/ are
# the same directory for both, as on a shared mount).  Leases are 3 s.
#
#   1. at each crash point of the pipeline (WHARF_TEST_CRASH: claimed,
#      fetched, taken, inspected, validated, target_committed, loaded,
#      bag_sealed, chain_appended, sealed) one node runs alone and SIGKILLs
#      itself there, holding intakes in progress; then the other starts,
#      takes them over once their lease expires (a "takeover" event naming
#      both nodes), redoes their take from the source, and finishes them
#      and every other file;
#   2. both run at once on 40 files and one is SIGKILLed from outside while
#      it holds intakes; the other finishes them; the dead one restarts and
#      both share a last batch; then, until they are done, a node picked at
#      random is SIGKILLed at a random moment while both work on 380 files
#      (500 files in all), and started again at once;
#   3. the PostgreSQL server (ledger and target) is SIGKILLed while both
#      nodes load, and restarted: they reconnect and finish every file;
#   4. both idle: the source is polled by one node at a time, on one
#      schedule kept in the ledger (not once per node).
#
# Afterwards every file was loaded exactly once: one intake per file, done
# and loaded, its rows once in the target (rows per _wharf_intake, the
# total, no order_id twice), one wharf_loads row each, no file left in the
# spool, and `wharf verify` passes on the one chain both nodes appended to.
# No assertion is about speed; every wait is a bounded loop.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/pg.sh"

declare -A PID=()
start_node() { # NODE [CRASH_POINT]
  (cd "$T/$1" && WHARF_TEST_CRASH=${2:-} exec "$WHARF" ${VERBOSE:+-v} run >>"${LOG:-run.log}" 2>&1) &
  PID[$1]=$!
}
stop_node() {
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  PID[$1]=
}
PGD=$(pg_mkdir) || exit 1
trap 'for n in a b; do stop_node $n; done; pg_cleanup "$PGD"; cleanup' EXIT
pg_setup "$PGD" || { echo "FAIL - the PostgreSQL fixture did not start"; exit 1; }
printf '%s password=%s sslmode=disable\n' "$PG_DSN" "$(cat "$PG_PASSWORD_FILE")" > dsn
chmod 600 dsn
q() { pg_psql "$PGD" -tA -c "$1"; }

ROWS=40 # rows per file
orders_schema
mkdir -p drop/acme archive rejects
cat > profiles/acme.yaml <<EOP
name: acme
source:
  type: spool
  path: $T/drop/acme
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
schedule: { every: 1s }
format: csv
csv: { schema: orders.schema.json }
target: { type: postgresql, dsn_file: $T/dsn, table: acme }
retry: { max_attempts: 20, backoff: 200ms, backoff_max: 1s }
EOP
for n in a b; do
  mkdir -p "$n/var"
  ln -s "$T/archive" "$n/var/archive"
  ln -s "$T/rejects" "$n/var/rejects"
  cat > "$n/wharf.yaml" <<EOF
state_dir: var
profiles_dir: $T/profiles
schemas_dir: $T/schemas
node: $n
lease: 3s
workers: 2
ledger: { type: postgresql, dsn_file: $T/dsn }
EOF
done

# wait_gone NODE: bounded wait for a node that kills itself; its exit status
wait_gone() {
  local p=${PID[$1]} i
  for i in $(seq 1 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; fi
  wait "$p" 2>/dev/null
  local rc=$?
  PID[$1]=
  return $rc
}
FILES=0 NEXT=1
drop_files() { # COUNT
  local i f
  for ((i = 0; i < $1; i++)); do
    FILES=$((FILES + 1))
    f=drop/acme/o$(printf %04d $FILES).csv
    orders_csv "$f" $NEXT $ROWS
    NEXT=$((NEXT + ROWS))
    touch "$f.done"
  done
}
in_progress() { q "SELECT count(*) FROM intakes WHERE node = '$1' AND state NOT IN ('done', 'failed')"; }
takeovers() { # FROM TO: takeover events so far
  q "SELECT count(*) FROM events WHERE kind = 'takeover' AND detail::json->>'from' = '$1' AND detail::json->>'node' = '$2'" 2>/dev/null || echo 0
}
# wait_all_done: bounded wait until every file dropped is an intake that is done
wait_all_done() {
  local i
  for i in $(seq 1 900); do
    [ "$(q "SELECT count(*) FROM intakes WHERE state = 'done'")" = "$FILES" ] && return 0
    sleep 0.2
  done
  return 1
}

# 1. each crash point: the victim alone dies there, the other takes over
POINTS="claimed fetched taken inspected validated target_committed loaded bag_sealed chain_appended sealed"
victim=a survivor=b
for point in $POINTS; do
  drop_files 3
  took0=$(takeovers $victim $survivor)
  start_node $victim "$point"
  wait_gone $victim
  rc=$?
  held=$(in_progress $victim)
  if [ "$rc" = 137 ] && [ "${held:-0}" -ge 1 ]; then
    ok "$point: node $victim killed itself there holding $held intake(s) in progress"
  else
    bad "$point: node $victim exited $rc holding ${held:-?} intakes in progress"
  fi
  start_node $survivor
  if wait_all_done; then ok "$point: node $survivor finished all $FILES files"
  else bad "$point: not all done: $(q "SELECT state || ' ' || coalesce(node, '-') || ' ' || coalesce(last_error, '') FROM intakes WHERE state <> 'done'")"; fi
  took=$(( $(takeovers $victim $survivor) - took0 ))
  eq "$point: $survivor took over each of them (a takeover event from $victim to $survivor)" "$took" "$held"
  eq "$point: nothing left held by the dead node" "$(in_progress $victim)" 0
  stop_node $survivor
  t=$victim victim=$survivor survivor=$t
done

# wharf show tells who took over from whom
id=$(q "SELECT intake FROM events WHERE kind = 'takeover' ORDER BY id LIMIT 1")
show=$(cd a && w show "$id" 2>&1)
contains "wharf show lists the takeover with both nodes" "$show" "takeover"
contains "and names the node it came from" "$show" '"from"'
redo=$(q "SELECT count(*) FROM events WHERE kind = 'retake'")
if [ "${redo:-0}" -ge 1 ]; then ok "takes of taken-over intakes were redone from the source ($redo retake events)"
else bad "no retake event"; fi

# 2. both at once; one is killed from outside while it holds intakes
drop_files 40
start_node a
start_node b
for i in $(seq 1 300); do [ "$(in_progress b)" -ge 1 ] && break; sleep 0.05; done
sleep 0.$((RANDOM % 5))
kill -KILL "${PID[b]}"; wait "${PID[b]}" 2>/dev/null; PID[b]=
ok "node b SIGKILLed while holding intakes ($(in_progress b) in progress at its death)"
if wait_all_done; then ok "node a finished all $FILES files"
else bad "not all done after b died: $(q "SELECT state || ' ' || coalesce(node, '-') FROM intakes WHERE state <> 'done'")"; fi
start_node b
drop_files 20
if wait_all_done; then ok "b restarted: the two nodes finished the last batch ($FILES files)"
else bad "last batch not done"; fi
stop_node a
stop_node b

# 2b. both at once on 380 files (500 in all, as issue 16 asks); until
#     they are done (at most 40 times), a node picked at random is
#     SIGKILLed at a random moment and started again at once
drop_files 380
start_node a
start_node b
kills="" nk=0
while [ $nk -lt 40 ] && [ "$(q "SELECT count(*) FROM intakes WHERE state = 'done'")" != "$FILES" ]; do
  sleep 0.$((2 + RANDOM % 8))
  n=$([ $((RANDOM % 2)) = 0 ] && echo a || echo b)
  kill -KILL "${PID[$n]}" 2>/dev/null; wait "${PID[$n]}" 2>/dev/null
  kills="$kills $n" nk=$((nk + 1))
  start_node $n
done
check "at least six random kills while the nodes worked" test $nk -ge 6
if wait_all_done; then ok "killed and restarted at random ($kills): all $FILES files done"
else bad "not all done after the random kills ($kills): $(q "SELECT state || ' ' || coalesce(node, '-') FROM intakes WHERE state <> 'done'")"; fi
stop_node a
stop_node b

# 3. the database itself crashes (SIGKILL of the PostgreSQL server and its
#    backends: ledger and target at once) while both nodes load, and
#    restarts: the nodes reconnect, the intakes resume, none is lost
drop_files 30
start_node a
start_node b
for i in $(seq 1 400); do
  n=$(q "SELECT count(*) FROM intakes WHERE state = 'done'" 2>/dev/null)
  [ "${n:-0}" -gt $((FILES - 30)) ] && break; sleep 0.05
done
pg_kill "$PGD"
ok "PostgreSQL killed with $((${n:-0} - FILES + 30)) of the 30 new files done"
sleep 1
pg_start "$PGD"
if wait_all_done; then ok "after the restart both nodes finished all $FILES files"
else bad "not all done after the database restart: $(q "SELECT state || ' ' || coalesce(node, '-') || ' ' || coalesce(last_error, '') FROM intakes WHERE state <> 'done'")"; fi
check "node a is still running" kill -0 "${PID[a]}"
check "node b is still running" kill -0 "${PID[b]}"
stop_node a
stop_node b

# 4. one poller per source: both nodes up and idle, polling every second;
#    in all, the source is listed about once a second (a scheduled poll of
#    one node finds the other's recent poll in the ledger and is skipped),
#    not once a second per node.  Each node lists it once at its start.
VERBOSE=1 LOG=polls.log start_node a
VERBOSE=1 LOG=polls.log start_node b
t0=$(date +%s)
for i in $(seq 1 100); do
  grep -qs '"polling"' a/polls.log && grep -qs '"polling"' b/polls.log && break; sleep 0.1
done
sleep 8
stop_node a
stop_node b
secs=$(( $(date +%s) - t0 ))
polls=$(cat a/polls.log b/polls.log | grep -c '"event":"polling"')
skipped=$(cat a/polls.log b/polls.log | grep -c '"event":"poll_skipped"')
if [ "$polls" -le $((secs + 4)) ] && [ "$skipped" -ge 1 ]; then
  ok "two nodes listed the source $polls times in ${secs}s ($skipped scheduled polls skipped)"
else
  bad "two nodes listed the source $polls times in ${secs}s, $skipped skipped (want at most $((secs + 4)))"
fi

# the invariants: every file loaded exactly once
eq "one intake per file" "$(q "SELECT count(*) || '/' || count(DISTINCT name) FROM intakes")" "$FILES/$FILES"
eq "every intake done and loaded" "$(q "SELECT string_agg(DISTINCT state || '/' || outcome, ',') FROM intakes")" "done/loaded"
eq "every row once in the target" "$(q "SELECT count(*) || '/' || count(DISTINCT order_id) FROM acme")" \
  "$((FILES * ROWS))/$((FILES * ROWS))"
eq "each intake's rows once" "$(q "SELECT string_agg(DISTINCT n::text, ',') FROM (SELECT count(*) AS n FROM acme GROUP BY _wharf_intake) x")" "$ROWS"
eq "one wharf_loads row per intake" "$(q "SELECT count(*) || '/' || count(DISTINCT intake) FROM wharf_loads")" "$FILES/$FILES"
eq "the rows belong to the ledger's intakes" "$(q "SELECT count(*) FROM acme WHERE _wharf_intake NOT IN (SELECT id FROM intakes)")" 0
eq "one chain link per intake" "$(q "SELECT count(*) || '/' || count(DISTINCT intake) FROM chain")" "$FILES/$FILES"
eq "the spool is empty" "$(find drop/acme -type f | wc -l)" 0
eq "one bag per intake in the shared archive" "$(q "SELECT count(DISTINCT bag) FROM intakes")" "$FILES"
v=$(cd a && w verify 2>&1); rc=$?
eq "wharf verify passes on the one chain (from node a)" "$rc" 0
[ "$rc" = 0 ] || echo "$v" | tail -5
v=$(cd b && w verify 2>&1); rc=$?
eq "and from node b" "$rc" 0

finish
