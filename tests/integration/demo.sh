#!/usr/bin/env bash
# The README's front door, run as a newcomer would: `./scripts/demo` (on
# the build under test: WHARF_DEMO_SKIP_SETUP=1 skips the install and build
# it otherwise starts with) in a copy of the repository's scripts, examples,
# profiles and schemas.  It must leave a running `wharf run` that has taken
# the four bundled files as the README's table says, a console that takes
# the printed operator password, and then every command of the README's
# "Then try" block runs as written (INTAKE: the reject); the server stops
# when told to, as the demo says.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/console.sh"

R=$T/repo
mkdir -p "$R"
cp -r "$WHARF_SOURCE_DIR/scripts" "$WHARF_SOURCE_DIR/examples" "$WHARF_SOURCE_DIR/profiles" \
  "$WHARF_SOURCE_DIR/schemas" "$R/"
ln -s "$WHARF_BUILD_DIR" "$R/build"
cd "$R" || exit 1
DEMO_PORT=$(_console_port)
out=$(WHARF_DEMO_SKIP_SETUP=1 WHARF_DEMO_PORT=$DEMO_PORT timeout 300 ./scripts/demo 2>&1)
rc=$?
PID=$(sed -n 's/^demo: wharf run started (pid \([0-9]*\)).*/\1/p' <<<"$out")
trap 'kill "$PID" 2>/dev/null; cleanup' EXIT
eq "./scripts/demo exits 0" "$rc" 0
[ "$rc" = 0 ] || echo "$out" | tail -30
check "it leaves wharf run running" kill -0 "$PID"

# the README's table
intakes=$(build/wharf intakes --json)
st() { python3 -c 'import json,sys
print(" ".join(sorted(i["state"] + "/" + i["outcome"] for i in json.loads(sys.argv[1]) if i["name"] == sys.argv[2])))' "$intakes" "$1"; }
eq "orders_20261128.csv: loaded" "$(st orders_20261128.csv)" "done/loaded"
eq "orders_20261128.xml: loaded" "$(st orders_20261128.xml)" "done/loaded"
eq "bestellungen_20261128.csv: loaded" "$(st bestellungen_20261128.csv)" "done/loaded"
eq "orders_20261127_bad.csv: rejected" "$(st orders_20261127_bad.csv)" "done/rejected"
eq "200 rows in acme_orders, 50 in initech_bestellungen" \
  "$(sqlite3 var/warehouse.db 'select count(*) from acme_orders; select count(*) from initech_bestellungen')" $'200\n50'
contains "the demo shows the reject's report" "$out" "== the reject's report"
contains "the Windows-1252 names came out as UTF-8" "$out" "Müller"
contains "wharf verify in the demo is clean" "$out" "verify: ok, 4 bags re-hashed"

# the console, with the password printed once
PASSW=$(sed -n 's/^  password  \([^ ]*\) .*/\1/p' <<<"$out")
check "the demo prints a password" test -n "$PASSW"
eq "the console takes it: role operator" \
  "$(curl -s -m 10 -H 'Content-Type: application/json' -d "{\"user\":\"operator\",\"password\":\"$PASSW\"}" "http://127.0.0.1:$DEMO_PORT/api/v1/login" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("role"))')" operator

# "Then try": every line as written, INTAKE being the reject
REJ=$(build/wharf rejects --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
python3 - "$WHARF_SOURCE_DIR/README.md" > then-try.txt <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("Then try:\n\n", 1)[1].split("\n\n", 1)[0]
for line in block.splitlines():
    print(re.sub(r"\s+#.*$", "", line.strip()))
PY
n=$(wc -l < then-try.txt)
if [ "$n" -ge 7 ]; then ok "the README's Then try block has $n commands"; else bad "Then try: only $n commands found"; fi
while read -r cmd; do
  cmd=${cmd//INTAKE/$REJ}
  res=$(bash -c "$cmd" 2>&1)
  rc=$?
  case "$cmd" in
  *" replay "*) # the reject is still wrong: the replay runs and is rejected again (exit 1)
    eq "README: $cmd: replayed" "$rc" 1
    contains "README: $cmd: says the new intake" "$res" "replaying as" ;;
  cp\ *)
    eq "README: $cmd" "$rc" 0
    for _ in $(seq 100); do
      build/wharf intakes --json | grep -q '"outcome": "duplicate"' && break
      sleep 0.1
    done
    contains "README: the copy is skipped as a duplicate" "$(build/wharf intakes)" "duplicate" ;;
  *)
    eq "README: $cmd" "$rc" 0
    [ "$rc" = 0 ] || echo "$res" | tail -5 ;;
  esac
done < then-try.txt

# "Stop the server with: kill PID"
contains "the demo says how to stop it" "$out" "Stop the server with: kill $PID"
kill "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then bad "the server stops on kill"; else ok "the server stops on kill"; fi
finish
