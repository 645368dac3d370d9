#!/usr/bin/env bash
# The deployment on a real container engine (CI, after `npm test` and the chart check): installs podman, runc and
# mmdebstrap from Debian, builds the images from Debian's packages and the npm registry (scripts/deploy/images.sh;
# no image is pulled), and runs scripts/deploy/cells-test.ts: a tower and two cells, each with its own Redis and
# Kafka, played from the rendered charts with `podman kube play`, and the isolation checks. Needs root.
# On a fresh 2-core machine: ~6 min of image builds the first time (kept afterwards), ~2-3 min of checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
[ -d node_modules/yaml ] || npm ci --no-audit --no-fund
bash scripts/deploy/tools.sh --podman
export CONTAINERS_CONF="$PWD/deploy/podman/containers.conf"
t0=$SECONDS
bash scripts/deploy/images.sh all
echo "images ready in $((SECONDS - t0)) s"
t1=$SECONDS
node scripts/deploy/cells-test.ts
echo "cells test passed in $((SECONDS - t1)) s"
