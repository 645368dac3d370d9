#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- --peers mlserver,kserve,bentoml,ray,pytriton | --no-peer] [-- --no-overload] [-- --profile]`:
# the standard benchmark suite. Installs what it needs (Node 24, Redis, Kafka) through the repo's own scripts; the
# suite installs the peers' venvs itself (loadtest/peer/install.sh, timed, a failed install skips that peer), then
# runs loadtest/suite.ts pinned to core 0. Bounded: ~12-15 min by default with every peer, ~5-6 min with --quick.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# vegeta (open-loop HTTP runs) from the Go module proxy; without Go the suite falls back to its own open loop.
bash loadtest/tools/install.sh vegeta || echo "vegeta not installed: open-loop HTTP runs use the suite's own generator" >&2
if command -v taskset >/dev/null; then
  exec taskset -c 0 node loadtest/suite.ts "$@"
fi
exec node loadtest/suite.ts "$@"
