#!/usr/bin/env bash
# The AWS emulator for tests (S3, SageMaker runtime): scripts/services/moto.sh start|stop|status
#
# start   creates the virtual environment .venv-moto/ with moto[server] from PyPI on first use, starts moto_server
#         on 127.0.0.1 at the port of SIBYL_TEST_AWS_ENDPOINT (default http://127.0.0.1:5055, see test-env.sh),
#         state under .data/services/moto/, and returns once it answers. Does nothing when it already answers.
#         Never starts a second copy. Clients use any credentials and region.
# stop    stops the copy this script started (no-op when it is not running).
# status  prints running/stopped; exit 0 when running, 3 when stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
source "$here/test-env.sh"

port="$(sibyl_url_port "$SIBYL_TEST_AWS_ENDPOINT" 5055)"
host="$(sibyl_url_host "$SIBYL_TEST_AWS_ENDPOINT" 127.0.0.1)"
venv="$SIBYL_ROOT/.venv-moto"
dir="$SIBYL_SERVICES_DIR/moto"
pidfile="$dir/moto.pid"
logfile="$dir/moto.log"
# Bump to upgrade the emulator; the venv is rebuilt when it differs.
moto_spec='moto[server]==5.2.1'

answers() { curl -fs -o /dev/null --max-time 2 "http://$host:$port/moto-api/data.json" 2>/dev/null; }

ensure_venv() {
  [ -x "$venv/bin/moto_server" ] && [ "$(cat "$venv/.spec" 2>/dev/null)" = "$moto_spec" ] && return 0
  command -v python3 >/dev/null || sibyl_apt_install python3 python3-venv
  python3 -c 'import venv, ensurepip' 2>/dev/null || sibyl_apt_install python3-venv
  command -v curl >/dev/null || sibyl_apt_install curl
  sibyl_log "creating $venv with $moto_spec from PyPI"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$moto_spec" >&2 || sibyl_die "pip install $moto_spec failed"
  echo "$moto_spec" >"$venv/.spec"
}

start() {
  mkdir -p "$dir"
  # One start at a time; the server must not inherit fd 9, or it would hold the lock for its lifetime.
  exec 9>"$dir/.lock"
  flock 9
  sibyl_reap_orphan moto "$port" moto_server
  if answers; then
    sibyl_log "moto already answers on $host:$port"
    return 0
  fi
  case "$host" in 127.0.0.1 | localhost) ;; *) sibyl_die "SIBYL_TEST_AWS_ENDPOINT points at $host; start only manages a local server" ;; esac
  ensure_venv
  sibyl_pid_alive "$pidfile" && sibyl_die "moto (pid $(cat "$pidfile")) is running but does not answer on $host:$port"
  rm -f "$pidfile"
  # Started from its state directory, so that a copy outliving this checkout is known by its working directory.
  (cd "$dir" && exec setsid "$venv/bin/moto_server" -H "$host" -p "$port" >"$logfile" 2>&1 </dev/null 9>&-) &
  echo $! >"$pidfile"
  sibyl_wait 60 "moto on $host:$port" answers || { tail -n 20 "$logfile" >&2 || true; exit 1; }
  sibyl_log "moto running on $host:$port (pid $(cat "$pidfile"), log $logfile)"
}

stop() {
  sibyl_stop_server moto "$dir" "$pidfile" answers "$host:$port"
}

status() {
  if answers; then
    echo "moto running on $host:$port"
  else
    echo "moto stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
