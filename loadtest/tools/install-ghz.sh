#!/usr/bin/env bash
# ghz (gRPC load tool, github.com/bojand/ghz) from the Go module proxy into .tools/bin/ghz. Idempotent.
# Needs Go (apt-get install golang-go, or a Go toolchain on PATH). Used for the closed-loop gRPC runs when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=v0.121.0
BIN=.tools/bin/ghz
# A module-proxy build reports its version as "dev": a stamp file says which version is installed.
STAMP=.tools/bin/.ghz-$VERSION
if [ -x "$BIN" ] && [ -f "$STAMP" ]; then exit 0; fi
mkdir -p .tools/bin
GOBIN="$PWD/.tools/bin" go install "github.com/bojand/ghz/cmd/ghz@$VERSION"
touch "$STAMP"
