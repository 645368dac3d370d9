#!/usr/bin/env bash
# `npm start`: Node 24, dependencies on first run, then the gateway with embedded defaults (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/onnxruntime-node ] || npm ci --no-audit --no-fund
exec node gateway/main.ts "$@"
