# runbook.sh: run the commands a runbook tells an operator to run, in a test
# deployment put in the state the runbook is about (issue 15: the runbooks
# are tested).  Source it after common.sh.
#
#   rb_deploy DIR        a deployment: DIR/wharf.yaml (state in DIR/var),
#                        DIR/profiles, DIR/schemas; cd's there and sets the
#                        RB_* paths tests/lib/runbook.py substitutes
#   run_runbook FILE     every command of FILE (runbooks/NAME.md), in order
#
# Each command runs in its own bash, after a prelude that is the README's
# "Before you start" block (S=, the wharf and ledger aliases) and stand-ins
# for what a test machine lacks, each doing the nearest real thing:
#   sudo [-u USER] CMD   runs CMD as the test's user (root in CI)
#   systemctl reload     SIGHUP to the deployment's server (RB_SERVER_PID), or
#                        says that none runs; show -p X: X= from
#                        packaging/wharf.service; status: `wharf status`
#   journalctl ...       the deployment's log (RB_LOG: wharf's JSON lines)
#   sleep N              0.2 s (the runbooks wait for a partner's upload)
#   less FILE            cat FILE
# A command passes when it exits 0 and prints something; an assignment
# (B=$(...)) when the value is not empty; an alias when it is defined; cp,
# mv, chown, chgrp, chmod, mkdir, touch and cd when they exit 0 (they say
# nothing when they work).  RB_EXPECT lists
# the exceptions, one per line, "fail<TAB>REGEX<TAB>why" (the command's
# failure is the finding, e.g. iconv on a Latin-1 file) or
# "empty<TAB>REGEX<TAB>why"; a listed command that then passes is reported
# too (the deployment is not in the state the runbook is about).
# Commands matching RB_TTY (a regex) run on a pseudo-terminal fed "y": the
# operator answers a confirmation (wharf trust) after comparing fingerprints.
# rb_hook, when defined, is called with each command before it runs: the
# operator's fix between the runbook's steps.
RB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RB_COVERED=()

rb_deploy() {
  local d=$1
  mkdir -p "$d/profiles" "$d/schemas" "$d/root" && cd "$d" || return 1
  cat > wharf.yaml <<EOY
state_dir: var
profiles_dir: profiles
schemas_dir: schemas
EOY
  export RB_ETC_CONFIG=$d/wharf.yaml RB_ETC_PROFILES=$d/profiles RB_ETC_SCHEMAS=$d/schemas
  export RB_STATE=$d/var RB_WHARF=$WHARF RB_ROOT=$d/root RB_LOG=$d/wharf.log
  export RB_ETC_KNOWN_HOSTS=$d/known_hosts
  : > "$RB_LOG"
  RB_EXPECT=""
  RB_TTY=""
  unset -f rb_hook 2>/dev/null
  unset RB_SERVER_PID
}

_rb_prelude() {
  cat <<'EOP'
shopt -s expand_aliases
sudo() { while [ "${1:-}" = -u ] || [ "${1:-}" = -E ]; do [ "$1" = -u ] && shift; shift; done; "$@"; }
systemctl() {
  case "${1:-}" in
    reload|restart)
      if [ -n "${RB_SERVER_PID:-}" ]; then kill -HUP "$RB_SERVER_PID" && echo "wharf: SIGHUP sent to pid $RB_SERVER_PID"
      else echo "(test) no wharf server runs in this deployment: nothing to $1"; fi ;;
    show)
      shift 2; local a
      for a in "$@"; do [ "$a" = -p ] && continue
        grep "^$a=" "$WHARF_SOURCE_DIR/packaging/wharf.service" || echo "$a="; done ;;
    status) "$RB_WHARF" -c "$RB_ETC_CONFIG" status ;;
    *) echo "(test) systemctl $* is not available here" >&2; return 1 ;;
  esac
}
journalctl() { cat "$RB_LOG"; }
sleep() { command sleep 0.2; }
less() { cat "$@"; }
EOP
  python3 "$RB_LIB_DIR/runbook.py" prelude "$WHARF_SOURCE_DIR/runbooks/README.md"
}

# _rb_expect CHUNK: prints "fail" / "empty" / "" from RB_EXPECT
_rb_expect() {
  local kind re why
  while IFS=$'\t' read -r kind re why; do
    [ -n "$kind" ] || continue
    if grep -qE -- "$re" <<<"$1"; then echo "$kind"; return; fi
  done <<<"$RB_EXPECT"
}

run_runbook() {
  local file=$1 name chunk pre n=0 rc out exp
  name=$(basename "$file")
  RB_COVERED+=("$name")
  pre=$(_rb_prelude) || { bad "$name: prelude"; return; }
  local list
  list=$(mktemp)
  if ! python3 "$RB_LIB_DIR/runbook.py" subst "$WHARF_SOURCE_DIR/$file" > "$list"; then
    bad "$name: the scenario does not give every placeholder"
    rm -f "$list"
    return
  fi
  while IFS= read -r -d '' chunk; do
    n=$((n + 1))
    if declare -F rb_hook >/dev/null; then rb_hook "$chunk"; fi
    local var="" first
    first=$(sed -E 's/^(sudo( -u [^ ]+)? )//' <<<"$chunk" | awk '{print $1; exit}')
    if [[ $chunk =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then var=${BASH_REMATCH[1]}; fi
    { printf '%s\n%s\n' "$pre" "$chunk"
      [ -n "$var" ] && printf 'printf "%%s" "${%s}"\n' "$var"
      [ "$first" = alias ] && printf 'alias %s\n' "$(sed -E 's/^alias ([A-Za-z_]+)=.*/\1/' <<<"$chunk")"
    } > "$RB_ROOT/.rb-cmd.sh"
    if [ -n "${RB_TTY:-}" ] && grep -qE -- "$RB_TTY" <<<"$chunk"; then
      out=$(printf 'y\n' | script -qec "bash $RB_ROOT/.rb-cmd.sh" /dev/null 2>&1); rc=$?
    else
      out=$(bash "$RB_ROOT/.rb-cmd.sh" 2>&1 </dev/null); rc=$?
    fi
    exp=$(_rb_expect "$chunk")
    case "$first" in cp|mv|chown|chgrp|chmod|mkdir|touch|cd) [ -z "$exp" ] && exp=empty ;; esac
    local short=${chunk//$'\n'/ }
    short=${short:0:110}
    case "$exp" in
      fail)
        if [ "$rc" -ne 0 ]; then ok "$name #$n fails as the runbook expects: $short"
        else bad "$name #$n should fail in this state but passed: $short"; fi ;;
      empty)
        if [ "$rc" -eq 0 ]; then ok "$name #$n: $short"
        else bad "$name #$n exit $rc: $short :: $(head -c 400 <<<"$out")"; fi ;;
      *)
        if [ "$rc" -ne 0 ]; then bad "$name #$n exit $rc: $short :: $(head -c 600 <<<"$out")"
        elif [ -z "$out" ]; then bad "$name #$n printed nothing: $short"
        else ok "$name #$n: $short"; fi ;;
    esac
  done < "$list"
  rm -f "$list"
  [ "$n" -gt 0 ] || bad "$name: no commands found"
}
