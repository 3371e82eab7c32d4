#!/usr/bin/env bash
# docs/api.md is tested: every ```sh block in it runs, in order, in one
# shell against a real `wharf run` with a console (a loaded file and a
# reject in profile acme), and must exit 0.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/console.sh"

orders_schema
spool_profile acme "{ stable_for: 1s }"
console_users
console_start || { finish; exit; }
orders_csv var/drop/acme/good.csv 1 3
printf 'order_id,customer,amount\n100,a,-1\n' > var/drop/acme/bad.csv
wait_done 2
python3 - "$WHARF_SOURCE_DIR/docs/api.md" > api-examples.sh <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
print("set -euo pipefail")
for i, b in enumerate(blocks):
    print(f"echo '--- example {i + 1}'")
    print(b)
PY
n=$(grep -c "^echo '--- example" api-examples.sh)
if [ "$n" -ge 7 ]; then ok "docs/api.md has $n examples"; else bad "docs/api.md: only $n examples found"; fi
out=$(WHARF_URL=$BASE WHARF_USER=ops WHARF_PASSWORD=operator-pass timeout 120 bash api-examples.sh 2>&1)
rc=$?
eq "every example in docs/api.md runs (exit 0)" "$rc" 0
[ "$rc" = 0 ] || echo "$out" | tail -20
contains "the login example prints the role" "$out" operator
contains "the intakes example finds the reject" "$out" "1 rejected"
contains "the replay example prints the new intake" "$(echo "$out" | grep -E '^[0-9A-Z]{26}$')" "01"
contains "the actions example lists the replay, by ops" "$out" "replay by ops: true"
contains "... and the poll" "$out" "poll by ops: true"
console_stop
finish
