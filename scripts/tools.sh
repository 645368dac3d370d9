#!/usr/bin/env bash
# Tools the build, tests and benchmarks use, built from the Go module proxy into .tools/bin (idempotent):
# buf (protobuf code generation; the npm package's platform binaries are not all on the registry, which breaks
# `npm ci` on other platforms' lock entries) and grpcurl (the end-to-end gRPC examples).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin"
[ -x .tools/bin/buf ] || go install github.com/bufbuild/buf/cmd/buf@v1.75.0
[ -x .tools/bin/grpcurl ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
