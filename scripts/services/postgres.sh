#!/usr/bin/env bash
# The real PostgreSQL for tests and local runs: scripts/services/postgres.sh start|stop|status
#
# start   installs Debian's postgresql if initdb/postgres are missing, initialises a cluster once under
#         .data/services/postgres/data (owned by the non-root user `postgres`: the server refuses to run as root),
#         starts it on 127.0.0.1 at the port of SIBYL_TEST_DATABASE_URL (default 25432, see test-env.sh) with
#         trust auth for local connections (a test server: no password, fsync off), creates the URL's user
#         (superuser, may CREATE DATABASE) and database (default sibyl_test), and returns once it accepts
#         connections. Does nothing when it already answers. Never starts a second copy.
# stop    fast shutdown of the copy this script started (no-op when it is not running).
# status  prints running/stopped; exit 0 when running, 3 when stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
source "$here/test-env.sh"

url="$SIBYL_TEST_DATABASE_URL"
port="$(sibyl_url_port "$url" 5432)"
host="$(sibyl_url_host "$url" 127.0.0.1)"
db="${url##*/}"
db="${db%%\?*}"
user="${url#*://}"
user="${user%%@*}"
user="${user%%:*}"
dir="$SIBYL_SERVICES_DIR/postgres"
data="$dir/data"
logfile="$dir/postgres.log"
# The OS user that owns and runs the cluster: `postgres` (Debian's package creates it) when we are root, else us.
if [ "$(id -u)" -eq 0 ]; then owner=postgres; else owner="$(id -un)"; fi

as_owner() {
  if [ "$(id -un)" = "$owner" ]; then "$@"; else (cd / && runuser -u "$owner" -- "$@"); fi
}

# The cluster's owner must reach its directory; when the checkout lives under a directory only we can enter (a
# private temp dir, a home), keep the cluster in /var/tmp instead, one per port.
if [ "$owner" != "$(id -un)" ]; then
  mkdir -p "$dir" && chown "$owner" "$dir" 2>/dev/null || true
  if ! as_owner test -w "$dir"; then
    dir="/var/tmp/sibyl-postgres-$port"
    mkdir -p "$dir" && chown "$owner" "$dir"
    data="$dir/data"
    logfile="$dir/postgres.log"
  fi
fi

# Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin (newest version wins).
find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

bin=""
ensure_bin() {
  bin="$(find_bin)" && return 0
  sibyl_apt_install postgresql
  bin="$(find_bin)" || sibyl_die "no initdb/pg_ctl under /usr/lib/postgresql/*/bin after installing postgresql"
}

ready() { [ -n "$bin" ] && "$bin/pg_isready" -q -h "$host" -p "$port" -d postgres; }
running() { bin="${bin:-$(find_bin || true)}"; [ -n "$bin" ] && ready; }

psql_admin() { as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres -d postgres "$@"; }

ensure_user_and_db() {
  if [ "$user" != postgres ] &&
    [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
    psql_admin -c "CREATE ROLE \"$user\" LOGIN SUPERUSER"
  fi
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$db\" OWNER \"$user\""
  fi
}

start() {
  mkdir -p "$dir"
  # One start at a time: concurrent callers wait here, then see the running server. The server must not
  # inherit fd 9, or it would hold the lock for its lifetime.
  exec 9>"$dir/.lock"
  flock 9
  case "$host" in 127.0.0.1 | localhost) ;; *) sibyl_die "SIBYL_TEST_DATABASE_URL points at $host; start only manages a local server" ;; esac
  ensure_bin
  sibyl_reap_orphan postgres "$port" postgres
  if ready; then
    sibyl_log "postgres already answers on $host:$port"
    ensure_user_and_db
    return 0
  fi
  chown "$owner" "$dir" 2>/dev/null || true
  # Our cluster running on another port (the configured one changed, e.g. from 55432): restart it where it is asked.
  if [ -s "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    sibyl_log "moving our server from port $(sed -n 4p "$data/postmaster.pid") to $port"
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    sibyl_log "initialising a cluster in $data"
    rm -rf "$data"
    install -d -o "$owner" -m 700 "$data"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { tail -n 20 "$dir/initdb.log" >&2; sibyl_die "initdb failed"; }
  fi
  touch "$logfile" && chown "$owner" "$logfile"
  # Test settings: loopback only, socket in the service dir, no durability work (the data is disposable).
  as_owner "$bin/pg_ctl" -D "$data" -l "$logfile" -w -t 60 -o \
    "-c listen_addresses=$host -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null 9>&- || { tail -n 20 "$logfile" >&2; sibyl_die "postgres did not start; see $logfile"; }
  sibyl_wait 30 "postgres on $host:$port" ready || { tail -n 20 "$logfile" >&2; exit 1; }
  ensure_user_and_db
  sibyl_log "postgres running on $host:$port (data $data, log $logfile)"
}

stop() {
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  bin="$(find_bin || true)"
  if [ -z "$bin" ] || [ ! -s "$data/postmaster.pid" ] || ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    if running; then sibyl_log "a postgres answers on $host:$port but was not started by this script; leaving it"; fi
    sibyl_log "postgres not running"
    return 0
  fi
  as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  sibyl_log "postgres stopped"
}

status() {
  if running; then
    echo "postgres running on $host:$port"
  else
    echo "postgres stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
