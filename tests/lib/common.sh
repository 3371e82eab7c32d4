# Shared helpers for the integration tests: a fresh work dir with wharf's
# default layout (profiles/, schemas/, var/), the real binary, and checks
# that count and report.  Source it, write profiles, run, call `finish`.
set -uo pipefail

: "${WHARF:?WHARF must name the wharf binary}"
: "${WHARF_SOURCE_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/wharf-it.XXXXXX")
PASS=0
FAIL=0
cleanup() {
  local pids
  pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1
mkdir -p profiles schemas var/drop

# Debian's python3 (scripts/setup installs it and python3-jsonschema) runs
# the tests' JSON one-liners: a pyenv or other shim in front of it costs a
# few shell processes per call -- 10 s a call was seen on a loaded machine.
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ]; then
  mkdir -p "$T/.bin" && ln -sf /usr/bin/python3 "$T/.bin/python3" && export PATH="$T/.bin:$PATH"
fi

# Under WHARF_SANITIZE builds every report lands in a file that `finish`
# checks: a sanitizer report or leak in any wharf process fails the test.
mkdir -p "$T/.sanitizer"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/.sanitizer/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/.sanitizer/ubsan"

w() { "$WHARF" "$@"; }

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }

# check "description" command...: passes when the command exits 0
check() {
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}

# eq "description" actual expected
eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi
}

# contains "description" haystack needle
contains() {
  if [ -z "$3" ]; then bad "$1 (empty needle)"; return; fi
  # a here-string, not a pipe: with pipefail, grep -q leaving early would
  # fail the pipeline through printf's SIGPIPE
  if grep -qF -- "$3" <<<"$2"; then ok "$1"; else bad "$1 (no '$3' in: $(printf '%s' "$2" | head -c 600))"; fi
}

# (waiting up to 10 s for a lock: wharf may be creating or checkpointing
# the database at that moment, and a reader without a timeout fails at once)
sql() { sqlite3 -cmd ".timeout 10000" "$1" "$2"; }

# The orders Table Schema and a spool profile writing to var/warehouse.db.
orders_schema() {
  cat > schemas/orders.schema.json <<'EOS'
{"fields": [
  {"name": "order_id", "type": "integer", "constraints": {"required": true, "unique": true}},
  {"name": "customer", "type": "string", "constraints": {"required": true}},
  {"name": "amount", "type": "number", "constraints": {"minimum": 0}}
], "primaryKey": ["order_id"]}
EOS
}

# spool_profile NAME [extra yaml lines for source.complete_when etc.]
spool_profile() {
  local name=$1 complete=${2:-"{ stable_for: 1s }"} after=${3:-delete}
  mkdir -p "var/drop/$name"
  cat > "profiles/$name.yaml" <<EOP
name: $name
source:
  type: spool
  path: var/drop/$name
  pattern: "*.csv"
  complete_when: $complete
  after: $after
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: ${name//-/_} }
retry: { max_attempts: 3, backoff: 100ms, backoff_max: 200ms }
EOP
}

# csv_profile NAME [TARGET_OPTIONS]: a profile for `wharf ingest` of orders
# CSVs (spool var/drop/NAME, any name) into table NAME of var/warehouse.db;
# TARGET_OPTIONS are added to its target map ("mode: replace").
csv_profile() {
  mkdir -p "var/drop/$1"
  cat > "profiles/$1.yaml" <<EOP
name: $1
source: { type: spool, path: var/drop/$1, pattern: "*" }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: $1${2:+, $2} }
EOP
}

# orders_csv FILE FIRST_ID COUNT
orders_csv() {
  local f=$1 first=$2 n=$3 i
  { echo "order_id,customer,amount"
    for ((i = first; i < first + n; i++)); do echo "$i,customer $i,$i.50"; done; } > "$f"
}

intake_count() { w intakes --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# states as "state/outcome" lines sorted
intake_states() { w intakes --json 2>/dev/null | python3 -c 'import json,sys
for i in json.load(sys.stdin): print(i["state"]+"/"+i["outcome"])' | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' '; }

finish() {
  local f
  for f in "$T"/.sanitizer/*; do
    [ -e "$f" ] || continue
    bad "sanitizer report: $f"
    head -40 "$f"
  done
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
