#!/usr/bin/env bash
# wharf check: the bundled profiles pass; a profile with three different
# mistakes gets all three reported with file:line:column and a non-zero exit;
# --help lists only commands that exist.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

cp -r "$WHARF_SOURCE_DIR/profiles" "$WHARF_SOURCE_DIR/schemas" .
out=$(w check 2>&1); rc=$?
eq "bundled profiles: exit 0" "$rc" 0
contains "bundled profiles: named" "$out" "acme-orders"

cat > profiles/broken.yaml <<'EOP'
source:
  type: spool
  path: var/drop/broken
  complete_when: { stable_for: 10 sec }
format: csv
csv: { schema: missing.schema.json }
target: { type: sqlite, path: var/w.db, table: t, mode: merge }
EOP
out=$(w check 2>&1); rc=$?
eq "three mistakes: exit 1" "$rc" 1
contains "mistake 1 with line:col" "$out" 'profiles/broken.yaml:4:32: source.complete_when.stable_for: "10 sec" is not a duration (use 10s, 5m, 1h)'
contains "mistake 2 with line:col" "$out" 'profiles/broken.yaml:7:57: target.mode: "merge" is not valid (use append | replace | upsert)'
contains "mistake 3: the schema file" "$out" "missing.schema.json"
contains "a count at the end" "$out" "problems found"
out=$(w check acme-orders 2>&1); rc=$?
eq "checking only a good profile: exit 0" "$rc" 0
out=$(w check nosuch 2>&1); rc=$?
eq "an unknown profile: exit 1" "$rc" 1

help=$(w --help)
for cmd in $(printf '%s\n' "$help" | awk '/^commands:/{f=1;next} /^$/{f=0} f{print $1}'); do
  "$WHARF" "$cmd" --help >/dev/null 2>&1 && ok "wharf $cmd --help works" || bad "wharf $cmd --help"
done
w frobnicate >/dev/null 2>&1; eq "unknown command: exit 2" "$?" 2
finish
