#!/usr/bin/env bash
# vegeta (open-loop HTTP load tool, github.com/tsenart/vegeta) from the Go module proxy into .tools/bin/vegeta.
# Idempotent. The suite's open-loop HTTP runs use it when present: a Go generator adds far less latency of its own
# than one written in JavaScript sharing a core with Redis and Kafka.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=v12.13.0
BIN=.tools/bin/vegeta
STAMP=.tools/bin/.vegeta-$VERSION
if [ -x "$BIN" ] && [ -f "$STAMP" ]; then exit 0; fi
mkdir -p .tools/bin
GOBIN="$PWD/.tools/bin" go install "github.com/tsenart/vegeta/v12@$VERSION"
touch "$STAMP"
