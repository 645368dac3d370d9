#!/usr/bin/env bash
# The console's browser suite (`npm run test:console`, run by CI after `npm test`): Debian's chromium (installed
# with apt when missing; Playwright drives it through executablePath and downloads no browser of its own), the
# console built, then Playwright against a real tower and gateway it starts (console/e2e/global-setup.ts).
# Screenshots of the main pages are written to docs/console/. About 2-3 minutes; the first run installs chromium.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
[ -d node_modules/@playwright/test ] || npm ci --no-audit --no-fund
CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium || true)}"
if [ -z "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "chromium is not installed: apt-get install chromium (as root), or set CHROMIUM_PATH" >&2
    exit 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  CHROMIUM_PATH="$(command -v chromium)"
fi
export CHROMIUM_PATH
node console/build.ts
npx tsc --noEmit -p console
npx playwright test -c console/e2e/playwright.config.ts "$@"
