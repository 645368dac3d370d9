#!/usr/bin/env bash
# Every test service at once (`npm test` starts them and leaves them running for the next run):
#   scripts/services/all.sh start|stop|status      (npm run services:stop stops them)
# Redis, Kafka, PostgreSQL and moto, each through its own script (ports in test-env.sh). stop ends only the copies
# these scripts started; status exits 3 when any is stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"
case "$cmd" in start | stop | status) ;; *) echo "usage: $0 start|stop|status" >&2; exit 2 ;; esac
rc=0
for svc in redis kafka postgres moto; do
  bash "$here/$svc.sh" "$cmd" || rc=$?
done
exit "$rc"
