#!/usr/bin/env bash
# ghz (gRPC load tool, github.com/bojand/ghz) from the Go module proxy into .tools/bin/ghz. Idempotent.
# Needs Go (apt-get install golang-go, or a Go toolchain on PATH). Used for the closed-loop gRPC runs when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=v0.121.0
BIN=.tools/bin/ghz
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "${VERSION#v}"; then exit 0; fi
mkdir -p .tools/bin
GOBIN="$PWD/.tools/bin" go install "github.com/bojand/ghz/cmd/ghz@$VERSION"
"$BIN" --version
