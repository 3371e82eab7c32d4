# outbound.sh: helpers for the outbound tests (after common.sh and sshd.sh
# are sourced and sshd is started): an outbound profile delivering to
# directories of the sshd fixture's upload dir, files put into its spool.
#
#   out_profile NAME REMOTE_SUBDIR [DONE_FILE] [SECOND_SUBDIR]
#       OUT_EXTRA (optional): YAML lines appended to the profile
#   put PROFILE FILE MIB       random bytes, then FILE.ready
#   intake_of PROFILE NAME     the id of the intake of that file
#   shown ID PYEXPR            a value of `wharf show ID --json` (d)
deliver_entry() { # remote_subdir [done_file]
  mkdir -p "$SSHD_UPLOAD/$1" && chown "$SSHD_USER" "$SSHD_UPLOAD/$1"
  cat <<EOD
  - host: 127.0.0.1
    port: $SSHD_PORT
    user: $SSHD_USER
    key_file: $SSHD_KEY_ED25519
    known_hosts: $SSHD_KNOWN_HOSTS
    path: /upload/$1
    timeout: 10s
    done_file: ${2:-false}
EOD
}
out_profile() { # name remote_subdir [done_file] [second remote_subdir]
  local name=$1
  mkdir -p "var/drop/$name"
  { cat <<EOP
name: $name
direction: outbound
source:
  type: spool
  path: var/drop/$name
  pattern: "*.csv"
  complete_when: { done_file: "{name}.ready" }
  after: delete
retry: { max_attempts: 6, backoff: 100ms, backoff_max: 200ms }
deliver:
EOP
    deliver_entry "$2" "${3:-false}"
    [ -n "${4:-}" ] && deliver_entry "$4"
    [ -n "${OUT_EXTRA:-}" ] && printf '%s\n' "$OUT_EXTRA"
  } > "profiles/$name.yaml"
}
put() { # profile file bytes(from /dev/urandom, in MiB) | content
  head -c "$(($3 * 1048576))" /dev/urandom > "var/drop/$1/$2"; touch "var/drop/$1/$2.ready"
}
intake_of() { w intakes -p "$1" --json | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    if i["name"] == sys.argv[1]: print(i["id"])' "$2"; }
shown() { w show "$1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"; }

