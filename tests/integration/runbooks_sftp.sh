#!/usr/bin/env bash
# The SFTP runbooks, run against the real sshd fixture (see runbooks.sh and
# tests/lib/runbook.sh): auth-refused with a key the partner does not know,
# host-key-changed with a stale pin, source-unreachable with the server down
# and one file the partner account cannot read, delivery-failed with an
# outbound file whose name the partner already has.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
. "$WHARF_SOURCE_DIR/tests/lib/sshd.sh"
. "$WHARF_SOURCE_DIR/tests/lib/runbook.sh"

SD=$(sshd_mkdir) || { bad "cannot make the sshd dir"; finish; exit 1; }
trap 'sshd_cleanup "$SD" >/dev/null 2>&1; cleanup' EXIT
sshd_setup "$SD" >/dev/null 2>&1 && sshd_start "$SD" >/dev/null 2>&1 || { bad "sshd did not start"; finish; exit 1; }
ok "sshd on 127.0.0.1:$SSHD_PORT"

wl() { "$WHARF" "$@" 2>>"$RB_LOG"; }
poll2() { wl once >/dev/null; wl once >/dev/null; }
# drop FILE ID COUNT: a partner file and its done file
drop() { orders_csv "$1" "$2" "$3"; touch "$1.done"; chown "$SSHD_USER" "$1" "$1.done"; }
deploy() { # NAME KEY: a deployment whose wharf.yaml pins host keys in DIR/known_hosts
  rb_deploy "$T/$1" || exit 1
  echo "known_hosts: $RB_ETC_KNOWN_HOSTS" >> wharf.yaml
  cp "$SSHD_KNOWN_HOSTS" "$RB_ETC_KNOWN_HOSTS"
  orders_schema
  mkdir -p "$SSHD_UPLOAD/$1" && chown "$SSHD_USER" "$SSHD_UPLOAD/$1"
  cat > profiles/acme.yaml <<EOP
name: acme
source:
  type: sftp
  host: 127.0.0.1
  port: $SSHD_PORT
  user: $SSHD_USER
  key_file: $2
  path: /upload/$1
  pattern: "*.csv"
  complete_when: { done_file: "{name}.done" }
  after: delete
  timeout: 5s
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: acme }
retry: { max_attempts: 1, backoff: 50ms, backoff_max: 100ms }
EOP
  export RB_P=acme RB_HOST=127.0.0.1 RB_PORT=$SSHD_PORT RB_USER=$SSHD_USER RB_KEY_FILE=$2
  export RB_DROP=$SSHD_UPLOAD/$1
}

# --- auth-refused: our key is not on the partner's server --------------------
deploy auth "$SSHD_KEY_WRONG"
drop "$SSHD_UPLOAD/auth/a.csv" 1 3
poll2
RB_EXPECT=$'fail\twharf check --connect\tthe server refuses the key: the finding'
run_runbook runbooks/auth-refused.md
contains "auth-refused: sftp by hand shows the refusal" "$(sftp -v -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile="$RB_ETC_KNOWN_HOSTS" -i "$SSHD_KEY_WRONG" -P "$SSHD_PORT" "$SSHD_USER@127.0.0.1" </dev/null 2>&1)" "Permission denied"

# --- host-key-changed: the pinned key is not the server's -------------------
deploy hostkey "$SSHD_KEY_ED25519"
ssh-keygen -q -t ed25519 -N '' -f "$T/oldhost" >/dev/null
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$T/oldhost.pub")" > "$RB_ETC_KNOWN_HOSTS"
drop "$SSHD_UPLOAD/hostkey/h.csv" 1 3
poll2
contains "host-key-changed: the log points at wharf trust" "$(cat "$RB_LOG")" "wharf trust"
RB_EXPECT=$'fail\tssh-keygen -F [0-9.]+ -f\tthe test server is not on port 22: no entry for the bare host'
RB_TTY='wharf trust'
run_runbook runbooks/host-key-changed.md
poll2
eq "host-key-changed: after the new pin the file is loaded" "$(sql var/warehouse.db 'select count(*) from acme')" 3

# --- source-unreachable: the server is down; one file could not be fetched ---
deploy down "$SSHD_KEY_ED25519"
drop "$SSHD_UPLOAD/down/locked.csv" 1 4
chown root:root "$SSHD_UPLOAD/down/locked.csv"; chmod 600 "$SSHD_UPLOAD/down/locked.csv"
poll2
export RB_ID
RB_ID=$(w intakes -p acme --json | python3 -c 'import json,sys; print(max(i["id"] for i in json.load(sys.stdin) if i["state"]=="failed"))')
[ -n "$RB_ID" ] && ok "source-unreachable: a fetch failed" || bad "source-unreachable: no failed fetch"
sshd_stop "$SD" >/dev/null 2>&1
wl once >/dev/null
rb_hook() {
  case "$1" in "wharf intakes -p "*) # the fix: the host is back, the partner fixed the file's mode
    sshd_start "$SD" >/dev/null 2>&1; chmod 644 "$SSHD_UPLOAD/down/locked.csv" ;;
  esac
}
RB_EXPECT=$'fail\twharf check --connect\tthe host is down: the finding
fail\tnc -vz\tnothing listens: the finding
fail\tssh-keyscan -p\tno sshd answers: the finding'
run_runbook runbooks/source-unreachable.md
eq "source-unreachable: the replayed fetch loaded" "$(sql var/warehouse.db 'select count(*) from acme' 2>/dev/null)" 4

# --- delivery-failed: the partner already has a file of that name ----------
rb_deploy "$T/dlv" || exit 1
echo "known_hosts: $RB_ETC_KNOWN_HOSTS" >> wharf.yaml
cp "$SSHD_KNOWN_HOSTS" "$RB_ETC_KNOWN_HOSTS"
mkdir -p "$SSHD_UPLOAD/dlv" var/drop/out && chown "$SSHD_USER" "$SSHD_UPLOAD/dlv"
cat > profiles/out.yaml <<EOP
name: out
direction: outbound
source: { type: spool, path: var/drop/out, pattern: "*.csv", complete_when: { done_file: "{name}.ready" }, after: delete }
deliver:
  host: 127.0.0.1
  port: $SSHD_PORT
  user: $SSHD_USER
  key_file: $SSHD_KEY_ED25519
  path: /upload/dlv
  timeout: 5s
retry: { max_attempts: 1, backoff: 50ms, backoff_max: 100ms }
EOP
echo "the partner's own" > "$SSHD_UPLOAD/dlv/inv.csv"
echo "invoice 1" > var/drop/out/inv.csv; touch var/drop/out/inv.csv.ready
wl once >/dev/null
export RB_P=out RB_HOST=127.0.0.1 RB_PORT=$SSHD_PORT RB_USER=$SSHD_USER RB_KEY_FILE=$SSHD_KEY_ED25519
export RB_REMOTE_DIR=/upload/dlv RB_ID
RB_ID=$(w intakes -p out --json | python3 -c 'import json,sys; print(max(i["id"] for i in json.load(sys.stdin) if i["state"]=="failed"))')
[ -n "$RB_ID" ] && ok "delivery-failed: the delivery failed" || bad "delivery-failed: no failed delivery"
contains "delivery-failed: show names the page" "$(w show "$RB_ID" 2>&1)" "runbooks/delivery-failed.md"
contains "delivery-failed: status names the page" "$(w status 2>&1)" "runbooks/delivery-failed.md"
rb_hook() {
  case "$1" in "wharf replay "*) # the fix: the partner moved their file away
    mv "$SSHD_UPLOAD/dlv/inv.csv" "$SSHD_UPLOAD/dlv/inv.csv.theirs" ;;
  esac
}
RB_EXPECT=""
RB_TTY=""
run_runbook runbooks/delivery-failed.md
eq "delivery-failed: replayed after the fix, delivered" "$(cat "$SSHD_UPLOAD/dlv/inv.csv" 2>/dev/null)" "invoice 1"
eq "delivery-failed: the partner's own file kept" "$(cat "$SSHD_UPLOAD/dlv/inv.csv.theirs")" "the partner's own"

finish
