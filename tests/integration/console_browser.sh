#!/usr/bin/env bash
# The console in a real headless Chromium (Debian's chromium, driven by
# puppeteer-core from npm, fetched into the build dir by setup/puppeteer):
# log in, the overview highlights the rejecting profile, open the reject,
# replay it as operator and see it loaded; a viewer has no replay button and
# a forged POST is refused.  Screenshots of every page are written to
# $WHARF_BUILD_DIR/console-screenshots.  Each browser step is bounded (20 s)
# and the whole browser run by timeout(1) at 240 s.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/console.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
PUP="$WHARF_BUILD_DIR/npm-puppeteer/node_modules"
[ -n "$CHROMIUM" ] || { bad "chromium is not installed (scripts/setup installs it)"; finish; exit; }
[ -d "$PUP/puppeteer-core" ] || { bad "puppeteer-core missing (tests/fetch-puppeteer.sh)"; finish; exit; }

orders_schema
spool_profile good "{ stable_for: 1s }"
spool_profile bad "{ stable_for: 1s }"
sed -i 's/^csv: .*/csv: { schema: strict.schema.json }/' profiles/bad.yaml
sed 's/"minimum": 0/"minimum": 0, "maximum": 100/' schemas/orders.schema.json > schemas/strict.schema.json
console_users
console_start || { finish; exit; }
orders_csv var/drop/good/a.csv 1 3
printf 'order_id,customer,amount\n7,"<b>x</b>",500\n' > var/drop/bad/big_amount.csv
wait_done 2
REJECT=$(w rejects --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
eq "one reject to replay" "${#REJECT}" 26
# the cause is fixed before the operator replays: the limit is raised
sed -i 's/, "maximum": 100//' schemas/strict.schema.json
kill -HUP "$SRV"
sleep 1

SHOTS="$WHARF_BUILD_DIR/console-screenshots"
mkdir -p "$SHOTS"
rm -f "$SHOTS"/*.png
out=$(cd "$WHARF_BUILD_DIR/npm-puppeteer" && BASE=$BASE CHROMIUM=$CHROMIUM SHOTS=$SHOTS REJECT=$REJECT \
  NODE_PATH="$PUP" timeout 240 node "$WHARF_SOURCE_DIR/tests/console_browser.js" 2>&1)
rc=$?
echo "$out"
PASS=$((PASS + $(grep -c '^ok ' <<<"$out")))
FAIL=$((FAIL + $(grep -c '^FAIL ' <<<"$out")))
eq "the browser run ends well" "$rc" 0
for p in overview rejects-viewer intakes sources audit intake-reject intake-replayed; do
  [ -s "$SHOTS/$p.png" ] && ok "screenshot $p.png" || bad "no screenshot $p.png"
done
eq "the server loaded the replay" "$(w intakes --json | python3 -c 'import json,sys; print(sum(i["outcome"]=="loaded" for i in json.load(sys.stdin)))')" 2
console_stop
finish
