#!/usr/bin/env bash
# The test command (`npm test`): Node 24, dependencies, generated code check, the real services, then the suites.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/onnxruntime-node ] || npm ci --no-audit --no-fund
# Tools (buf for code generation, grpcurl for the end-to-end suites).
bash scripts/tools.sh
# Generated code must match the protos.
.tools/bin/buf generate >/dev/null
git diff --quiet --exit-code -- proto/gen 2>/dev/null || { echo "proto/gen is stale: run 'npm run gen' and commit" >&2; exit 1; }
npx tsc --noEmit -p .
# The web console: its own types (DOM) and its build, which the tower serves (the browser suite is npm run test:console).
npx tsc --noEmit -p console
node console/build.ts
# Real services for the integration suites (idempotent: reuse running ones).
for svc in scripts/services/*.sh; do
  [ "$(basename "$svc")" = common.sh ] && continue
  bash "$svc" start
done
source scripts/services/test-env.sh
npx vitest run "$@"
