#!/usr/bin/env bash
# The real Redis for tests and local runs: scripts/services/redis.sh start|stop|status
#
# start   installs Debian's redis-server if missing, starts it daemonized on the port of SIBYL_TEST_REDIS_URL
#         (default redis://127.0.0.1:6399, see test-env.sh), bound to 127.0.0.1, no persistence, state under
#         .data/services/redis/, and returns once PING answers. Does nothing when it already answers.
# stop    stops the copy this script started (no-op when it is not running).
# status  prints running/stopped; exit 0 when running, 3 when stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
source "$here/test-env.sh"

port="$(sibyl_url_port "$SIBYL_TEST_REDIS_URL" 6379)"
host="$(sibyl_url_host "$SIBYL_TEST_REDIS_URL" 127.0.0.1)"
dir="$SIBYL_SERVICES_DIR/redis"
pidfile="$dir/redis.pid"
logfile="$dir/redis.log"

ping() { [ "$(redis-cli -h "$host" -p "$port" --no-auth-warning ping 2>/dev/null)" = PONG ]; }
running() { command -v redis-cli >/dev/null && ping; }

start() {
  mkdir -p "$dir"
  # One start at a time: concurrent callers wait here, then see the running server. The server must not
  # inherit fd 9, or it would hold the lock for its lifetime.
  exec 9>"$dir/.lock"
  flock 9
  sibyl_reap_orphan redis "$port" redis-server
  if running; then
    sibyl_log "redis already answers on $host:$port"
    return 0
  fi
  case "$host" in 127.0.0.1 | localhost) ;; *) sibyl_die "SIBYL_TEST_REDIS_URL points at $host; start only manages a local server" ;; esac
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || sibyl_apt_install redis-server redis-tools
  # The feature store's TLS test makes its server's certificate with openssl.
  command -v openssl >/dev/null || sibyl_apt_install openssl
  # Clear a stale pid file from a killed run so `stop` never signals an unrelated process.
  sibyl_pid_alive "$pidfile" || rm -f "$pidfile"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pidfile" --logfile "$logfile" \
    --dir "$dir" --save '' --appendonly no --protected-mode yes 9>&- ||
    sibyl_die "redis-server did not start; see $logfile"
  sibyl_wait 20 "redis PING on $host:$port" ping || { tail -n 20 "$logfile" >&2 || true; exit 1; }
  sibyl_log "redis running on $host:$port (pid $(cat "$pidfile" 2>/dev/null || echo '?'), log $logfile)"
}

stop() {
  sibyl_stop_server redis "$dir" "$pidfile" running "$host:$port" redis-cli -h "$host" -p "$port" shutdown nosave
}

status() {
  if running; then
    echo "redis running on $host:$port"
  else
    echo "redis stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
