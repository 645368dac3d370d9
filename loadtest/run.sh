#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- --peers mlserver,kserve,bentoml,ray,pytriton | --no-peer] [-- --no-overload] [-- --profile]`:
# the standard benchmark suite. Installs what it needs (Node 24, Redis, Kafka) through the repo's own scripts; the
# suite installs the peers' venvs itself (loadtest/peer/install.sh, timed, a failed install skips that peer), then
# runs loadtest/suite.ts pinned to core 0. Bounded: ~12-15 min by default with every peer, ~5-6 min with --quick.
# `npm run bench -- --only overload [--cores 0.5] [--rounds N] [--dir DIR ...]`: the overload ramp alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# vegeta (open-loop HTTP runs) and grpc-open (open-loop gRPC runs) from the Go module proxy; without Go the suite
# falls back to its own open loop.
bash loadtest/tools/install.sh vegeta || echo "vegeta not installed: open-loop HTTP runs use the suite's own generator" >&2
bash loadtest/tools/install.sh grpc-open || echo "grpc-open not built: open-loop gRPC runs use the suite's own generator" >&2
# `--only overload`: the overload ramp alone (loadtest/overload.ts, ~1 min per gateway).
script=loadtest/suite.ts
prev=""
for a in "$@"; do
  case "$prev/$a" in --only/overload | */--only=overload) script=loadtest/overload.ts ;; --only/* | */--only=*) echo "--only: only 'overload' runs alone" >&2; exit 2 ;; esac
  prev="$a"
done
if command -v taskset >/dev/null; then
  exec taskset -c 0 node "$script" "$@"
fi
exec node "$script" "$@"
