#!/usr/bin/env bash
# The Lambda function's checks (CI runs them after npm test; `npm run test:lambda`): the tools (scripts/lambda/tools.sh:
# the Runtime Interface Emulator, the Node runtime interface client, cfn-lint), the package (`npm run package:lambda`,
# within Lambda's size limits), the SAM template through cfn-lint, and the packaged function under the emulator
# against real Redis, Kafka, moto and a control tower (test/lambda/emulator/). On a fresh machine the tools take
# ~3 min (the client's native build ~2 min, cfn-lint ~40 s); then ~1 min, most of it the suites' cold starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
bash scripts/lambda/tools.sh
node lambda/packaging/package.ts

# The template must be clean, and the linter must be checking it: a misspelt property is refused.
.tools/cfn-lint/bin/cfn-lint deploy/lambda/template.yaml
broken="$(mktemp --suffix .yaml)"
sed 's/^      Handler: /      Handlr: /' deploy/lambda/template.yaml >"$broken"
if .tools/cfn-lint/bin/cfn-lint "$broken" >/dev/null; then
  echo "cfn-lint accepted a template with a misspelt property: the template check is not running" >&2
  exit 1
fi
rm -f "$broken"

for svc in redis kafka moto; do bash "scripts/services/$svc.sh" start; done
source scripts/services/test-env.sh
npx vitest run --config test/lambda/emulator/vitest.config.ts "$@"
