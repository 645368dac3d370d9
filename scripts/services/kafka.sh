#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) for tests and local runs, from Maven Central's jars only.
#
#   scripts/services/kafka.sh start|stop|kill|pause|resume|status
#
# start   idempotent: reuses a running instance, never starts a second copy. Installs Java 17 and Maven from
#         Debian when missing, copies the broker classpath once into .data/services/kafka/lib (Maven), formats
#         the KRaft storage once, starts the broker in the background and waits for "Kafka Server started".
# stop    SIGTERM, then SIGKILL after 30 s. kill: SIGKILL at once (a crash, for failure tests).
# pause   SIGSTOP: a hung broker (sockets stay open, nothing answers); resume: SIGCONT. For failure tests on an
#         instance of their own: both refuse the default instance, which other suites share.
# status  prints "running pid=... port=..." (exit 0) or "stopped" (exit 3).
#
# Instance settings (environment): SIBYL_KAFKA_PORT (default: the port of SIBYL_TEST_KAFKA_BROKERS, 19092),
# SIBYL_KAFKA_CONTROLLER_PORT (the next port),
# SIBYL_KAFKA_DIR (default .data/services/kafka/default: properties, KRaft logs, server.log, pid),
# SIBYL_KAFKA_START_TIMEOUT (seconds, default 120), SIBYL_KAFKA_MAX_DATA_MB (default 1024: a stopped broker whose
# KRaft data is larger is wiped before it starts). A second instance needs other ports and another dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/services/kafka"
LIB="$ROOT/.data/services/kafka/lib"
# The shared test broker listens where the suites look for it (SIBYL_TEST_KAFKA_BROKERS, test-env.sh), unless an
# instance names its own port.
test_port="${SIBYL_TEST_KAFKA_BROKERS:-127.0.0.1:19092}"
test_port="${test_port%%,*}"
test_port="${test_port##*:}"
PORT="${SIBYL_KAFKA_PORT:-$test_port}"
CPORT="${SIBYL_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DIR="${SIBYL_KAFKA_DIR:-$ROOT/.data/services/kafka/default}"
TIMEOUT="${SIBYL_KAFKA_START_TIMEOUT:-120}"
PIDFILE="$DIR/kafka.pid"
PROPS="$DIR/server.properties"
LOGDIR="$DIR/logs"

source "$ROOT/scripts/services/common.sh"
log() { echo "kafka[$PORT]: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # The pid must still be our broker (pids are reused).
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $PROPS" || return 1
  echo "$pid"
}

ensure_tools() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null ||
    ! java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then
    log "installing Java 17 and Maven from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq maven openjdk-17-jre-headless >&2
  fi
}

ensure_lib() {
  local version marker
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")"
  marker="$LIB/.complete-$version"
  [ -f "$marker" ] && return 0
  log "copying kafka_2.13:$version and its runtime dependencies into $LIB (Maven)"
  rm -rf "$LIB"
  mkdir -p "$LIB"
  mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB" >&2
  touch "$marker"
}

# Every test topic stays in the broker's data; past a few GB the broker spends minutes loading it at start. The data
# is only ever test traffic, so a stopped broker with too much of it starts empty.
wipe_when_large() {
  local max_mb="${SIBYL_KAFKA_MAX_DATA_MB:-1024}" used_mb
  [ -d "$DIR/kraft-logs" ] || return 0
  used_mb="$(du -sm "$DIR/kraft-logs" | cut -f1)"
  if ((used_mb > max_mb)); then
    log "KRaft data is $used_mb MB (> $max_mb MB): wiping it before the start"
    rm -rf "$DIR/kraft-logs"
  fi
}

ensure_formatted() {
  mkdir -p "$DIR" "$LOGDIR"
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CPORT|g" -e "s|@DATA_DIR@|$DIR|g" \
    "$HERE/server.properties.template" >"$PROPS"
  [ -f "$DIR/kraft-logs/meta.properties" ] && return 0
  [ -f "$DIR/cluster.id" ] || java -cp "$LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$DIR/cluster.id"
  java -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$LOGDIR" -cp "$LIB/*" \
    kafka.tools.StorageTool format -t "$(cat "$DIR/cluster.id")" -c "$PROPS" --ignore-formatted >&2
}

start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    return 0
  fi
  sibyl_reap_orphan kafka "$PORT" kafka.Kafka
  sibyl_reap_orphan kafka "$CPORT" kafka.Kafka
  if port_open "$PORT" || port_open "$CPORT"; then
    log "port $PORT or $CPORT is taken by a process this script did not start; not starting a second broker"
    return 1
  fi
  ensure_tools
  ensure_lib
  wipe_when_large
  ensure_formatted
  local mark=0
  [ -f "$LOGDIR/server.log" ] && mark="$(wc -l <"$LOGDIR/server.log")"
  # setsid: the broker outlives the shell that started it (test runs, CI steps). Started from its instance's
  # directory, so that a broker outliving this checkout is known by its working directory (sibyl_reap_orphan).
  (cd "$DIR" && exec setsid java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$LOGDIR" \
    -cp "$LIB/*" kafka.Kafka "$PROPS" >"$LOGDIR/stdout.log" 2>&1 </dev/null 9>&-) &
  pid=$!
  echo "$pid" >"$PIDFILE"
  local t0 deadline=$((SECONDS + TIMEOUT))
  t0="$(date +%s%3N)"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker exited during start; last lines of its logs:"
      tail -n 30 "$LOGDIR/stdout.log" "$LOGDIR/server.log" >&2 2>/dev/null || true
      rm -f "$PIDFILE"
      return 1
    fi
    # log4j may roll server.log while the broker starts: then the new file is read from its first line.
    if (($(wc -l <"$LOGDIR/server.log" 2>/dev/null || echo 0) < mark)); then mark=0; fi
    if tail -n +"$((mark + 1))" "$LOGDIR/server.log" 2>/dev/null | grep -q 'Kafka Server started' && port_open "$PORT"; then
      log "started (pid $pid) in $(($(date +%s%3N) - t0)) ms"
      return 0
    fi
    sleep 0.2
  done
  log "not started after $TIMEOUT s; stopping it. Logs: $LOGDIR"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  return 1
}

stop() {
  local signal="$1" pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  kill "-$signal" "$pid"
  # A paused broker acts on SIGTERM only once it runs again.
  kill -CONT "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 30 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  log "stopped (pid $pid, $signal)"
}

signal_broker() {
  local signal="$1" pid
  if [ -z "${SIBYL_KAFKA_DIR:-}" ] || [ "$DIR" = "$ROOT/.data/services/kafka/default" ]; then
    log "refusing to $cmd the default instance (shared by other suites); set SIBYL_KAFKA_DIR to an instance of your own"
    return 1
  fi
  if ! pid="$(running_pid)"; then
    log "not running"
    return 1
  fi
  kill "-$signal" "$pid"
  log "$cmd (pid $pid, SIG$signal)"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running pid=$pid port=$PORT dir=$DIR"
  else
    echo "stopped"
    return 3
  fi
}

cmd="${1:-}"
case "$cmd" in
  start | stop | kill)
    mkdir -p "$DIR"
    # One start/stop at a time per instance (parallel test runs, CI).
    exec 9>"$DIR/.lock"
    flock 9
    case "$cmd" in
      start) start ;;
      stop) stop TERM ;;
      kill) stop KILL ;;
    esac
    ;;
  pause) signal_broker STOP ;;
  resume) signal_broker CONT ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|kill|pause|resume|status" >&2
    exit 2
    ;;
esac
