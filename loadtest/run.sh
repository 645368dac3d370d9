#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- --no-peer] [-- --no-overload] [-- --profile]`: the standard benchmark suite.
# Installs what it needs (Node 24, Redis, Kafka, MLServer's venv) through the repo's own scripts, then runs
# loadtest/suite.ts pinned to core 0. Bounded: ~6-8 min by default, ~2-3 min with --quick.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
skip_peer=0
for a in "$@"; do [ "$a" = --no-peer ] && skip_peer=1; done
if [ "$skip_peer" = 0 ]; then
  bash loadtest/peer/install.sh >/dev/null
  bash loadtest/peer/export-model.sh >/dev/null
fi
# vegeta (open-loop HTTP runs) from the Go module proxy; without Go the suite falls back to its own open loop.
bash loadtest/tools/install.sh vegeta || echo "vegeta not installed: open-loop HTTP runs use the suite's own generator" >&2
if command -v taskset >/dev/null; then
  exec taskset -c 0 node loadtest/suite.ts "$@"
fi
exec node loadtest/suite.ts "$@"
