#!/usr/bin/env bash
# pg.sh: a real PostgreSQL server on loopback for wharf's PostgreSQL tests
# (the same idea as tests/lib/sshd.sh): initdb + pg_ctl from Debian's
# `postgresql` package, run as an unprivileged user in a temporary
# directory, on a free port, removed afterwards.  Installs nothing.
#
# Source it and call the functions, or run it as a command:
#
#   . tests/lib/pg.sh
#   pg_setup DIR      # once: initdb, a database and a role with a password
#   pg_start DIR      # start (or restart, same port and data)
#   pg_stop DIR       # fast shutdown (sessions are ended)
#   pg_kill DIR       # SIGKILL the postmaster and its children (a crash)
#   pg_cleanup DIR    # stop and remove DIR
#   pg_psql DIR ARGS  # psql as the test role into the test database
#   pg_admin DIR ARGS # psql as the superuser (the fixture's OS user)
#
#   bash tests/lib/pg.sh setup|start|stop|kill|cleanup DIR
#
# After pg_setup, DIR/pg.env holds (and the sourcing shell gets exported):
#   PG_PORT PG_HOST (127.0.0.1) PG_SOCKDIR PG_DATA PG_LOG PG_DB PG_ROLE
#   PG_PASSWORD_FILE  the role's password, alone in a file (mode 600)
#   PG_PASSFILE       a ~/.pgpass-format file for the role (mode 600)
#   PG_DSN            "host=127.0.0.1 port=.. dbname=.. user=.." (no password)
#   PG_DSN_FILE       a file holding PG_DSN (what a profile's dsn_file names)
#   PG_SUPER          the OS user the server runs as, also its superuser
#
# What it does to the machine (it must run as root, as the tests do):
#   - creates the system user wharftest-pg (no login shell) if missing;
#   - DIR (mktemp under /tmp by pg_mkdir) is owned by that user; the server
#     listens on 127.0.0.1:<free port> and on a unix socket in DIR only,
#     password (scram-sha-256) for TCP, trust for the unix socket (which only
#     root and wharftest-pg can reach).

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_OSUSER=${PG_OSUSER:-wharftest-pg}

pg_mkdir() {
    mktemp -d "${TMPDIR:-/tmp}/wharf-pg.XXXXXX"
}

# the same free-port search as the sshd fixture
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/sshd.sh"
_pg_free_port() { _sshd_free_port; }

# as the fixture's user, in DIR (PG refuses to run as root)
_pg_as() {
    local d=$1
    shift
    (cd "$d" && setpriv --reuid="$PG_OSUSER" --regid="$PG_OSUSER" --clear-groups -- "$@")
}

pg_setup() {
    local d=$1
    [ -n "$d" ] && [ -d "$d" ] || { echo "pg_setup: no dir" >&2; return 1; }
    [ -x "$PG_BINDIR/initdb" ] || { echo "pg_setup: no initdb in $PG_BINDIR (scripts/setup installs postgresql)" >&2; return 1; }
    if ! id "$PG_OSUSER" >/dev/null 2>&1; then
        useradd -M -r -d /nonexistent -s /usr/sbin/nologin "$PG_OSUSER" 2>/dev/null ||
            id "$PG_OSUSER" >/dev/null 2>&1 || return 1
    fi
    chown "$PG_OSUSER:$PG_OSUSER" "$d" && chmod 700 "$d" || return 1
    local port pw
    port=$(_pg_free_port) || { echo "pg_setup: no free port" >&2; return 1; }
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$pw" > "$d/password"
    printf '%s\n' "$pw" > "$d/su-pw"
    _pg_as "$d" "$PG_BINDIR/initdb" -D "$d/data" -U "$PG_OSUSER" -A scram-sha-256 \
        --pwfile="$d/su-pw" -E UTF8 --locale=C >"$d/initdb.log" 2>&1 ||
        { cat "$d/initdb.log" >&2; return 1; }
    rm -f "$d/su-pw"
    cat > "$d/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
    cat >> "$d/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$d'
fsync = on
max_connections = 40
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
log_connections = on
log_statement = 'none'
EOF
    cat > "$d/pg.env" <<EOF
export PG_PORT=$port
export PG_HOST=127.0.0.1
export PG_SOCKDIR=$d
export PG_DATA=$d/data
export PG_LOG=$d/server.log
export PG_DB=wharf
export PG_ROLE=wharf_load
export PG_SUPER=$PG_OSUSER
export PG_PASSWORD_FILE=$d/client/password
export PG_PASSFILE=$d/client/pgpass
export PG_DSN="host=127.0.0.1 port=$port dbname=wharf user=wharf_load"
export PG_DSN_FILE=$d/client/dsn
EOF
    # the client side (root's): password, pgpass, dsn file
    mkdir -p "$d/client"
    mv "$d/password" "$d/client/password"
    printf '127.0.0.1:%s:wharf:wharf_load:%s\n' "$port" "$pw" > "$d/client/pgpass"
    printf 'host=127.0.0.1 port=%s dbname=wharf user=wharf_load\n' "$port" > "$d/client/dsn"
    chmod 700 "$d/client"
    chmod 600 "$d/client/password" "$d/client/pgpass" "$d/client/dsn"
    # shellcheck disable=SC1091
    . "$d/pg.env"
    pg_start "$d" || return 1
    pg_admin "$d" -q -c "CREATE ROLE wharf_load LOGIN PASSWORD '$pw'" \
        -c "CREATE DATABASE wharf OWNER wharf_load" >/dev/null || return 1
}

pg_start() {
    local d=$1
    # shellcheck disable=SC1091
    . "$d/pg.env" || return 1
    _pg_as "$d" "$PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 start >/dev/null ||
        { tail -20 "$d/server.log" >&2; return 1; }
}

pg_stop() {
    local d=$1
    [ -f "$d/data/postmaster.pid" ] || return 0
    _pg_as "$d" "$PG_BINDIR/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null 2>&1
}

pg_kill() {
    local d=$1 pid
    [ -f "$d/data/postmaster.pid" ] || return 0
    pid=$(head -1 "$d/data/postmaster.pid")
    # the postmaster and every backend it forked: one process group? no:
    # backends are its children, so kill them by parent first
    pkill -KILL -P "$pid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
}

pg_cleanup() {
    local d=$1
    [ -n "$d" ] && [ -d "$d" ] || return 0
    pg_stop "$d" || pg_kill "$d"
    rm -rf "$d"
}

# psql as the test role (password from the pgpass file) over TCP
pg_psql() {
    local d=$1
    shift
    # shellcheck disable=SC1091
    . "$d/pg.env" || return 1
    PGPASSFILE=$PG_PASSFILE "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" "$@"
}

# psql as the superuser over the unix socket in DIR
pg_admin() {
    local d=$1
    shift
    # shellcheck disable=SC1091
    . "$d/pg.env" || return 1
    _pg_as "$d" "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 -h "$d" -p "$PG_PORT" \
        -U "$PG_OSUSER" -d "${PG_ADMIN_DB:-postgres}" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    cmd=${1:-}
    dir=${2:-}
    case $cmd in
    mkdir) pg_mkdir ;;
    setup) pg_setup "$dir" ;;
    start) pg_start "$dir" ;;
    stop) pg_stop "$dir" ;;
    kill) pg_kill "$dir" ;;
    cleanup) pg_cleanup "$dir" ;;
    *)
        echo "usage: $0 mkdir|setup|start|stop|kill|cleanup DIR" >&2
        exit 2
        ;;
    esac
fi
