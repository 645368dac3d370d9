# Helpers shared by scripts/services/*.sh. Source it; it defines functions and SIBYL_ROOT / SIBYL_SERVICES_DIR only.
SIBYL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Per-service state (data, logs, pid files) lives under .data/services/<name>/ (gitignored).
SIBYL_SERVICES_DIR="$SIBYL_ROOT/.data/services"

sibyl_log() { echo "[$(basename "$0" .sh)] $*" >&2; }
sibyl_die() { sibyl_log "error: $*"; exit 1; }

# sibyl_apt_install PACKAGE...: installs the Debian packages that are not installed yet (apt-get update first).
# Needs root (or sudo). Waits for the dpkg lock when another install is running.
sibyl_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || sibyl_die "need root or sudo to install ${missing[*]}"
    sudo=(sudo)
  fi
  sibyl_log "installing ${missing[*]} with apt-get"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
  "${sudo[@]}" "${apt[@]}" update >/dev/null || sibyl_die "apt-get update failed"
  "${sudo[@]}" "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    sibyl_die "apt-get install ${missing[*]} failed"
}

# sibyl_pid_alive PIDFILE: true when PIDFILE names a live process.
sibyl_pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# sibyl_reap_orphan NAME PORT PATTERN: stops the server listening on 127.0.0.1:PORT when a checkout that no longer
# exists started it: its working directory is gone (these scripts start every server from the checkout's
# .data/services/<name>/) and its command line matches PATTERN (the service's own program). Such a leftover still
# answers a health probe but cannot serve (a moto whose files were deleted answers every AWS call with an error
# page), and `start` would otherwise reuse it. Any other server on the port is left alone.
sibyl_reap_orphan() {
  local name=$1 port=$2 pattern=$3 pid cwd cmd
  command -v ss >/dev/null || return 0
  pid="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
  [ -n "$pid" ] || return 0
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 0
  case "$cwd" in *' (deleted)') ;; *) return 0 ;; esac
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  case "$cmd" in *"$pattern"*) ;; *) return 0 ;; esac
  sibyl_log "the $name on port $port (pid $pid) runs in a directory that no longer exists ($cwd): stopping it"
  kill "$pid" 2>/dev/null || true
  if ! sibyl_wait 10 "$name (pid $pid) to exit" bash -c "! kill -0 $pid 2>/dev/null"; then
    kill -9 "$pid" 2>/dev/null || true
    sibyl_wait 5 "$name (pid $pid) to exit after SIGKILL" bash -c "! kill -0 $pid 2>/dev/null" || true
  fi
}

# sibyl_wait SECONDS WHAT CMD...: runs CMD every 0.2 s until it succeeds; fails after SECONDS.
sibyl_wait() {
  local seconds="$1" what="$2" limit=$(($1 * 5)) i
  shift 2
  for ((i = 0; i < limit; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  sibyl_log "timed out after ${seconds} s waiting for $what"
  return 1
}

# sibyl_url_port URL DEFAULT: the port of a URL like redis://host:port/db, or DEFAULT.
sibyl_url_port() {
  local rest="${1#*://}"
  rest="${rest#*@}"
  rest="${rest%%/*}"
  case "$rest" in *:*) echo "${rest##*:}" ;; *) echo "$2" ;; esac
}

# sibyl_url_host URL DEFAULT: the host of a URL like redis://host:port/db, or DEFAULT.
sibyl_url_host() {
  local rest="${1#*://}"
  rest="${rest#*@}"
  rest="${rest%%/*}"
  rest="${rest%%:*}"
  echo "${rest:-$2}"
}

# Stops a server this script started (its pid in `pidfile`), under the service's lock: `ask...` is the command that
# asks it to exit (default: SIGTERM), then SIGKILL after 10 s. A server that answers `probe` without a pid file of
# ours is someone else's and is left running.
#   sibyl_stop_server NAME DIR PIDFILE PROBE ADDRESS [ASK...]
sibyl_stop_server() {
  local name=$1 dir=$2 pidfile=$3 probe=$4 address=$5
  shift 5
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if ! sibyl_pid_alive "$pidfile"; then
    rm -f "$pidfile"
    if "$probe"; then sibyl_log "a $name answers on $address but was not started by this script; leaving it"; fi
    sibyl_log "$name not running"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  if [ $# -gt 0 ]; then "$@" >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
  if ! sibyl_wait 10 "$name (pid $pid) to exit" bash -c "! kill -0 $pid 2>/dev/null"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  sibyl_log "$name stopped"
}
