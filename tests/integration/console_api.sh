#!/usr/bin/env bash
# The console's JSON API and pages over loopback, against a real `wharf run`:
# authentication required, roles enforced (a viewer cannot replay), CSRF
# enforced on every POST, hostile partner names (<img onerror>, ANSI escape
# and newline) HTML-escaped, the login rate limit, limits (an oversized
# request is refused, a slow client is cut off and others are still
# served), the CLI's --json and the API agree (one code path), an
# operator's replay is recorded with the user's name in `wharf show`,
# a non-loopback listen address without TLS refuses to start, /metrics
# passes `promtool check metrics` and changes as files are processed.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/console.sh"

orders_schema
spool_profile acme "{ stable_for: 1s }"
console_users

# off loopback without TLS: refuses, exit 3, says why
printf 'console:\n  listen: 0.0.0.0:18999\n' > wharf.yaml
timeout 20 "$WHARF" run >/dev/null 2>off.err
eq "non-loopback console without TLS refuses to start (exit 3)" "$?" 3
contains "... and says it needs tls_cert/tls_key" "$(cat off.err)" "tls_cert"

# under TLS (a self-signed certificate): HTTPS, and the session cookie is Secure
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 2 \
  -keyout tls.key -out tls.crt >/dev/null 2>&1 || bad "openssl could not make a certificate"
CONSOLE_EXTRA=$'  tls_cert: tls.crt\n  tls_key: tls.key\n'
if console_start; then
  eq "TLS: https answers" "$(curl -sk -m 10 "https://127.0.0.1:$PORT/healthz")" ok
  contains "TLS: the session cookie is Secure" \
    "$(curl -sk -m 10 -D - -o /dev/null -H 'Content-Type: application/json' -d '{"user":"aud","password":"viewer-pass"}' "https://127.0.0.1:$PORT/api/v1/login")" \
    "SameSite=Strict; Secure"
  console_stop
fi

CONSOLE_EXTRA=$'  timeout: 2s\n'
console_start || { finish; exit; }
m0=$(curl -s -m 10 "$BASE/metrics")
if command -v promtool >/dev/null; then
  check "promtool check metrics passes (empty ledger)" bash -c "promtool check metrics <<<\"\$1\"" _ "$m0"
else
  bad "promtool is not installed (scripts/setup installs prometheus)"
fi

# unauthenticated
eq "healthz" "$(curl -s -m 10 "$BASE/healthz")" ok
eq "readyz" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$BASE/readyz")" 200
eq "API without a session: 401" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$BASE/api/v1/status")" 401
contains "... as JSON {code, message}" "$(curl -s -m 10 "$BASE/api/v1/status")" '"code": "unauthorized"'
eq "a page without a session redirects to /login" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code} %{redirect_url}' "$BASE/")" "303 $BASE/login"
eq "a wrong password: 401" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"user":"ops","password":"wrong"}' "$BASE/api/v1/login")" 401
eq "JSON login needs application/json (no cross-site form can send it)" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -d '{"user":"ops","password":"operator-pass"}' "$BASE/api/v1/login")" 415
eq "the HTML login form needs its login token" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -d 'user=ops&password=operator-pass' "$BASE/login")" 403

OPS=$(api_login ops operator-pass ops.jar)
AUD=$(api_login aud viewer-pass aud.jar)
eq "operator logged in (CSRF token)" "${#OPS}" 64
eq "viewer logged in (CSRF token)" "${#AUD}" 64
contains "session cookie is HttpOnly; SameSite=Strict" \
  "$(curl -s -m 10 -D - -o /dev/null -H 'Content-Type: application/json' -d '{"user":"aud","password":"viewer-pass"}' "$BASE/api/v1/login")" \
  "HttpOnly; SameSite=Strict"

# files: one good, two hostile names that are rejected
orders_csv var/drop/acme/good.csv 1 3
printf 'order_id,customer,amount\n100,a,-1\n' > 'var/drop/acme/<img src=x onerror=alert(1)>.csv'
printf 'order_id,customer,amount\n101,a,-1\n' > "var/drop/acme/$(printf 'ansi\033[31mred\nline.csv')"
wait_done 3
eq "three intakes done" "$(done_count)" 3

# one code path: the API's documents are the CLI's --json
norm() { python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("intakes",d) if isinstance(d,dict) else d
[x.pop("time",None) for x in (d if isinstance(d,list) else [d])]; print(json.dumps(d,sort_keys=True))'; }
eq "GET /api/v1/status is wharf status --json" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/status" | norm)" "$(w status --json | norm)"
eq "GET /api/v1/rejects is wharf rejects --json" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/rejects" | norm)" "$(w rejects --json | norm)"
eq "GET /api/v1/intakes is wharf intakes --json" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/intakes" | norm)" "$(w intakes --json | norm)"
REJ=$(w rejects --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["name"].startswith("<img")][0])'); echo "REJ=$REJ"; [ -n "$REJ" ] || w rejects --json | head -30
eq "GET /api/v1/intakes/ID is wharf show --json" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/intakes/$REJ" | norm)" "$(w show "$REJ" --json | norm)"
eq "paging: limit=1&offset=1 gives the second newest" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/intakes?limit=1&offset=1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["intakes"]), d["total"])')" "1 3"
contains "the intakes page pages on, keeping its filters" \
  "$(curl -s -m 10 -b aud.jar "$BASE/intakes?limit=1&outcome=rejected")" 'href="/intakes?offset=1&amp;limit=1&amp;outcome=rejected">next'
eq "filter by outcome" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/intakes?outcome=rejected" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')" 2
eq "a bad filter is a 400 with a JSON error" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/intakes?state=bogus" | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')" bad_request
eq "unknown intake: 404" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b aud.jar "$BASE/api/v1/intakes/01AAAAAAAAAAAAAAAAAAAAAAAA")" 404

# hostile names are escaped on every page
for page in / /intakes /rejects "/intakes/$REJ"; do
  html=$(curl -s -m 10 -b aud.jar "$BASE$page")
  if grep -qF '<img src=x' <<<"$html" || grep -q $'\033' <<<"$html"; then
    bad "page $page shows a partner name unescaped"
  else
    ok "page $page escapes partner names"
  fi
done
contains "the name is shown, escaped" "$(curl -s -m 10 -b aud.jar "$BASE/rejects")" '&lt;img src=x onerror=alert(1)&gt;.csv'
contains "ANSI escape and newline shown as U+FFFD" "$(curl -s -m 10 -b aud.jar "$BASE/rejects")" 'ansi&#xFFFD;[31mred&#xFFFD;line.csv'
contains "pages send a Content-Security-Policy" "$(curl -s -m 10 -D - -o /dev/null -b aud.jar "$BASE/")" "Content-Security-Policy: default-src 'none'"

# the reject's page: its report with line and column, links to the bag's
# files; a viewer downloads the original, byte for byte; names outside the
# bag's own listing are refused
page=$(curl -s -m 10 -b aud.jar "$BASE/intakes/$REJ")
contains "the reject's page shows its report (line)" "$page" 'line 2'
contains "... and links the bag's files" "$page" '/bag?f=data%2F%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.csv'
contains "... the tag files too" "$page" '/bag?f=manifest-sha256.txt'
eq "a viewer downloads the original from the bag, byte for byte" \
  "$(curl -s -m 10 -b aud.jar "$BASE/intakes/$REJ/bag?f=data%2F%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.csv" | sha256sum | cut -c1-64)" \
  "$(printf 'order_id,customer,amount\n100,a,-1\n' | sha256sum | cut -c1-64)"
for f in ../../ledger.db data/../../../ledger.db /etc/passwd bagit.txt/..; do
  eq "bag file \"$f\" outside the bag's listing: 404" \
    "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b aud.jar --get --data-urlencode "f=$f" "$BASE/intakes/$REJ/bag")" 404
done
audit=$(curl -s -m 10 -b aud.jar "$BASE/audit")
contains "the audit page shows the chain head" "$audit" "$(sqlite3 var/ledger.db 'select link from chain order by seq desc limit 1' 2>/dev/null || echo no-chain-table)"

eq "the audit export (CSV) is wharf export --format csv" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/export?since=2000-01-01&format=csv" | sha256sum)" \
  "$(w export --since 2000-01-01 --format csv | sha256sum)"
eq "the audit export (JSON) is wharf export --format json" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/export?since=2000-01-01" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
  "$(w export --since 2000-01-01 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# roles and CSRF
eq "viewer sees no replay button" "$(curl -s -m 10 -b aud.jar "$BASE/rejects" | grep -c 'class=replay')" 0
contains "operator sees replay buttons" "$(curl -s -m 10 -b ops.jar "$BASE/rejects")" 'class=replay'
eq "viewer's replay (with its CSRF token) is refused: 403" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b aud.jar -H "X-CSRF-Token: $AUD" -X POST "$BASE/api/v1/intakes/$REJ/replay")" 403
eq "operator POST without CSRF token: 403" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b ops.jar -X POST "$BASE/api/v1/intakes/$REJ/replay")" 403
eq "operator POST with another session's token: 403" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b ops.jar -H "X-CSRF-Token: $AUD" -X POST "$BASE/api/v1/intakes/$REJ/replay")" 403
eq "operator form POST without csrf field: 403" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b ops.jar -d x=1 "$BASE/intakes/$REJ/replay")" 403
eq "nothing was replayed by the refused requests" "$(w show "$REJ" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["replayed_by"])')" None

# pause and resume, recorded with the user
eq "operator pauses acme" "$(curl -s -m 10 -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/profiles/acme/pause" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by"])')" ops
eq "status says paused" "$(w status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" paused
eq "poll now of a paused profile: refused, 409" \
  "$(curl -s -m 10 -o poll.out -w '%{http_code}' -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/profiles/acme/poll")" 409
contains "... saying it is paused" "$(cat poll.out)" "acme is paused"
contains "... and recorded as refused" "$(w show --profile acme)" "poll    by ops: FAILED: acme is paused"
check "operator resumes acme" curl -sf -m 10 -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/profiles/acme/resume"
# poll now: queued on the server's runner (one poll of a source at a time,
# its health kept), answered at once; the file it finds is loaded
orders_csv var/drop/acme/polled.csv 500 2
touch -d '-1 min' var/drop/acme/polled.csv
eq "poll now is queued on the server's runner" \
  "$(curl -s -m 10 -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/profiles/acme/poll" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queued"])')" True
for _ in $(seq 150); do
  [ "$(w intakes --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["name"] == "polled.csv" and i["state"] == "done"))')" = 1 ] && break
  sleep 0.1
done
eq "... and what it found is loaded" "$(w intakes --json | python3 -c 'import json,sys; print([i["outcome"] for i in json.load(sys.stdin) if i["name"] == "polled.csv"])')" "['loaded']"
# every action is in the ledger's actions, with who did it: `wharf show
# --profile`, /api/v1/actions (one code path) and the audit page; twelve
# concurrent requests are twelve records (none lost to a read-modify-write)
contains "wharf show --profile: the console pause, by ops" "$(w show --profile acme)" "pause   by ops"
contains "... and the resume" "$(w show --profile acme)" "resume  by ops"
pids=()
for i in $(seq 12); do
  a=pause; [ $((i % 2)) = 0 ] && a=resume
  curl -s -m 20 -o /dev/null -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/profiles/acme/$a" & pids+=($!)
done
wait "${pids[@]}"
eq "twelve concurrent actions, sixteen records (with the two polls)" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/actions?profile=acme" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 16
w resume acme >/dev/null
eq "the CLI's resume is recorded too, by cli:<login>" \
  "$(w show --profile acme --json | python3 -c 'import json,sys; a=json.load(sys.stdin)[0]; print(a["action"], a["actor"], a["ok"])')" \
  "resume cli:$(id -un) True"
eq "CLI and API agree on the actions" "$(w show --profile acme --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')" \
  "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/actions?profile=acme&limit=200" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')"
contains "the audit page lists them" "$(curl -s -m 10 -b aud.jar "$BASE/audit")" "<td>ops<td>pause<td>acme"

# replay as operator: fix the cause (the file had a negative amount: let the
# schema take it), reload the server, replay; the new intake loads
sed -i 's/, "constraints": {"minimum": 0}//' schemas/orders.schema.json
grep -q minimum schemas/orders.schema.json && bad "the schema fix did not apply"

kill -HUP "$SRV"
sleep 1
NEW=$(curl -s -m 30 -b ops.jar -H "X-CSRF-Token: $OPS" -X POST "$BASE/api/v1/intakes/$REJ/replay" | python3 -c 'import json,sys; print(json.load(sys.stdin)["intake"])')
eq "replay answers with the new intake" "${#NEW}" 26
for _ in $(seq 150); do
  [ "$(w show "$NEW" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = done ] && break
  sleep 0.1
done
eq "the replay is loaded by the server" "$(w show "$NEW" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["outcome"])')" "done loaded"
contains "wharf show names the operator who replayed" "$(w show "$REJ")" '"user":"ops"'

# metrics change as files are processed
m1=$(curl -s -m 10 "$BASE/metrics")
contains "metrics count the loaded intakes" "$m1" 'wharf_intakes{profile="acme",state="done",outcome="loaded"} 3'
contains "metrics count rows" "$m1" 'wharf_rows_loaded_total{profile="acme"} 6'
if [ "$m0" != "$m1" ]; then ok "metrics changed as files were processed"; else bad "metrics did not change"; fi
# the server's own measurements: the replay was taken, loaded and sealed by
# this process, each step and each ledger commit timed
mval() { printf '%s\n' "$m1" | awk -v k="$1" '$1 == k { print $2 }'; }
for st in take inspect load seal finish; do
  n=$(mval "wharf_stage_duration_seconds_count{stage=\"$st\"}")
  if [ "${n:-0}" -ge 1 ]; then ok "stage $st timed ($n steps)"; else bad "stage $st: no duration recorded (${n:-absent})"; fi
done
eq "the +Inf bucket of a stage is its count" "$(mval 'wharf_stage_duration_seconds_bucket{stage="load",le="+Inf"}')" "$(mval 'wharf_stage_duration_seconds_count{stage="load"}')"
n=$(mval wharf_ledger_commit_seconds_count)
if [ "${n:-0}" -ge 5 ]; then ok "ledger commits timed ($n)"; else bad "ledger commits: ${n:-absent}"; fi
eq "the outbound stages stayed empty" "$(mval 'wharf_stage_duration_seconds_count{stage="deliver"}')" 0
n=$(mval wharf_workers)
if [ "${n:-0}" -ge 1 ]; then ok "the runner's workers are shown ($n)"; else bad "wharf_workers: ${n:-absent}"; fi
check "the queue depth is shown" test -n "$(mval wharf_queue_depth)"
check "busy workers are shown" test -n "$(mval wharf_workers_busy)"

# the nodes sharing the ledger: this server, by its pid
nodes=$(curl -s -m 10 -b aud.jar "$BASE/api/v1/nodes")
eq "/api/v1/nodes lists the server's node with its pid" "$(python3 -c 'import json,sys; print([n["pid"] for n in json.loads(sys.argv[1])])' "$nodes")" "[$SRV]"
eq "and the same as wharf status --nodes --json" "$(w status --nodes --json | python3 -c 'import json,sys; print([n["name"] for n in json.load(sys.stdin)])')" \
  "$(python3 -c 'import json,sys; print([n["name"] for n in json.loads(sys.argv[1])])' "$nodes")"
command -v promtool >/dev/null && check "promtool check metrics passes (after the run)" bash -c "promtool check metrics <<<\"\$1\"" _ "$m1"

# limits: an oversized request, a slow client
head -c 200000 /dev/zero | tr "\0" a > big.body
eq "oversized request: 413" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -b ops.jar -H "X-CSRF-Token: $OPS" --data-binary @big.body "$BASE/api/v1/profiles/acme/poll")" 413
# a client that sends half a request and stalls is cut off after console.timeout;
# meanwhile others are served
exec 7<>/dev/tcp/127.0.0.1/"$PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&7
eq "served while a slow client stalls" "$(curl -s -m 10 "$BASE/healthz")" ok
timeout 20 cat <&7 >/dev/null
eq "the stalled client is cut off (console.timeout: 2s)" "$?" 0
exec 7>&-

# login rate limit: five failures, then even the right password waits
for _ in 1 2 3 4 5; do
  curl -s -m 10 -o /dev/null -H 'Content-Type: application/json' -d '{"user":"ops","password":"nope"}' "$BASE/api/v1/login"
done
eq "after 5 failures the login is rate-limited: 429" \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"user":"ops","password":"operator-pass"}' "$BASE/api/v1/login")" 429

# sources: an SFTP source that is down (nothing listens on its port) shows
# its error, open circuit and the pinned host key's fingerprint, as
# ssh-keygen -l computes it
DEAD=$(_console_port)
ssh-keygen -q -t ed25519 -N '' -f hostkey </dev/null >/dev/null
echo "[127.0.0.1]:$DEAD $(cut -d' ' -f1,2 hostkey.pub)" > known_hosts
: > id_partner
cat > profiles/remote.yaml <<EOP
name: remote
source: { type: sftp, host: 127.0.0.1, port: $DEAD, user: acme, key_file: id_partner, known_hosts: known_hosts, path: /out, timeout: 2s }
schedule: { every: 1s }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: remote }
EOP
kill -HUP "$SRV"
for _ in $(seq 100); do
  [ "$(curl -s -m 10 -b aud.jar "$BASE/api/v1/sources" | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin) if s["profile"]=="remote"][0]["health"] is not None)' 2>/dev/null)" = True ] && break
  sleep 0.1
done
src=$(curl -s -m 10 -b aud.jar "$BASE/api/v1/sources")
eq "a down SFTP source in /api/v1/sources: not ok, with its error" \
  "$(python3 -c 'import json,sys; s=[s for s in json.loads(sys.argv[1]) if s["profile"]=="remote"][0]["health"]; print(s["ok"], bool(s["error"]))' "$src")" "False True"
fp=$(ssh-keygen -lf known_hosts | awk '{print $2}')
contains "the pinned host key's fingerprint (as ssh-keygen -l)" "$src" "$fp"
contains "the sources page shows it too" "$(curl -s -m 10 -b aud.jar "$BASE/sources")" "$fp"

console_stop
finish
