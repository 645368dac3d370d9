#!/usr/bin/env bash
# The deployment on a real container engine (CI, after `npm test` and the chart check): installs podman, runc,
# netavark, aardvark-dns, iptables and mmdebstrap from Debian when missing, builds the images from Debian's packages
# and the npm registry (scripts/deploy/images.sh; no image is pulled), and runs scripts/deploy/cells-test.ts: a
# tower and two cells, each with its own Redis and Kafka, played from the rendered charts with `podman kube play`,
# and the isolation checks. Needs root.
#
# One run at a time per machine (pod names, volumes and ports are the machine's, not the checkout's): a second run
# waits for the first. What an earlier run left behind is removed first; the checks are bounded by
# SIBYL_CELLS_TEST_TIMEOUT_S (default 1800 s) and remove the deployment when they end, pass or fail.
# Measured on a shared 2-core machine: see the README's deployment section.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "scripts/deploy/podman-test.sh needs root (rootful podman, hostPorts on 127.0.0.1)" >&2; exit 1; }
source scripts/env.sh
mkdir -p /run/lock
exec 8>/run/lock/sibyl-podman-test.lock
flock -w 3600 8 || { echo "another podman deployment test held its lock for an hour" >&2; exit 1; }
t0=$SECONDS
[ -d node_modules/yaml ] || npm ci --no-audit --no-fund
bash scripts/deploy/tools.sh --podman
export CONTAINERS_CONF="$PWD/deploy/podman/containers.conf"
echo "tools ready in $((SECONDS - t0)) s"
t1=$SECONDS
bash scripts/deploy/images.sh all
echo "images ready in $((SECONDS - t1)) s"
t2=$SECONDS
limit="${SIBYL_CELLS_TEST_TIMEOUT_S:-1800}"
status=0
# The checks stop themselves at the limit (removing the deployment); `timeout` is the backstop if they hang.
timeout --foreground --kill-after=60 "$((limit + 120))" node scripts/deploy/cells-test.ts || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  [ "${SIBYL_KEEP_CELLS:-0}" = 1 ] || node scripts/deploy/cells-test.ts --down || true
fi
echo "cells test $([ "$status" = 0 ] && echo passed || echo "failed ($status)") in $((SECONDS - t2)) s; $((SECONDS - t0)) s in all"
exit "$status"
