#!/usr/bin/env bash
# Client tools the tests and benchmarks use, built from the Go module proxy into .tools/bin (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin"
[ -x .tools/bin/grpcurl ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
