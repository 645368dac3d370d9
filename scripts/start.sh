#!/usr/bin/env bash
# `npm start`: Node 24, dependencies on first run, then the control tower and one gateway in one process, with
# embedded defaults and the demo models (see README; local/main.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/onnxruntime-node ] || npm ci --no-audit --no-fund
# The web console the tower serves at /console/ (esbuild, about a second).
node console/build.ts
exec node local/main.ts "$@"
