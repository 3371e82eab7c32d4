# Helpers for the console tests: `wharf run` with a console on a free
# loopback port, users made with `wharf passwd`, and curl with a cookie jar.
# Source after common.sh.  Sets PORT and BASE after console_start.
#
#   console_users               operator "ops" / "operator-pass", viewer "aud" / "viewer-pass"
#   console_start [ENV=V...]    start the server (bounded wait), retrying another port
#   api_login USER PASS JAR     log in through the JSON API; prints the CSRF token
#   console_stop

SRV=
console_users() {
  echo operator-pass | w passwd ops --role operator >/dev/null || bad "passwd ops"
  echo viewer-pass | w passwd aud --role viewer >/dev/null || bad "passwd aud"
}

# the fixtures' free-port search (below the ephemeral range, any socket state)
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/sshd.sh"
_console_port() { _sshd_free_port; }

# console_yaml PORT [extra console: lines]
console_yaml() {
  printf 'console:\n  listen: 127.0.0.1:%s\n%s' "$1" "${2:-}" > wharf.yaml
}

console_start() {
  local try
  for try in 1 2 3; do
    PORT=$(_console_port)
    console_yaml "$PORT" "${CONSOLE_EXTRA:-}"
    : > srv.err
    env "$@" "$WHARF" run >srv.out 2>>srv.err &
    SRV=$!
    for _ in $(seq 100); do
      if grep -q '"started"' srv.err && { curl -sf -m 5 "http://127.0.0.1:$PORT/healthz" ||
        curl -sfk -m 5 "https://127.0.0.1:$PORT/healthz"; } >/dev/null 2>&1; then
        BASE="http://127.0.0.1:$PORT"
        return 0
      fi
      kill -0 "$SRV" 2>/dev/null || break
      sleep 0.1
    done
    kill "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
  done
  bad "console did not start: $(tail -5 srv.err)"
  return 1
}

console_stop() {
  [ -n "$SRV" ] || return 0
  kill -TERM "$SRV" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV" 2>/dev/null
  wait "$SRV" 2>/dev/null
  SRV=
}

api_login() {
  curl -s -m 10 -c "$3" -H 'Content-Type: application/json' \
    -d "{\"user\":\"$1\",\"password\":\"$2\"}" "$BASE/api/v1/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("csrf",""))'
}

# done_count: intakes in state done; wait_done N: until N are (15 s at most)
done_count() {
  w intakes --json | python3 -c 'import json,sys; print(sum(i["state"]=="done" for i in json.load(sys.stdin)))'
}
wait_done() {
  for _ in $(seq 150); do
    [ "$(done_count)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
