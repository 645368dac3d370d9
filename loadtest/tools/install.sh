#!/usr/bin/env bash
# Load tools built from the Go module proxy into .tools/bin (needs Go on PATH). Idempotent.
#   bash loadtest/tools/install.sh vegeta   open-loop HTTP runs (the suite uses it when present)
#   bash loadtest/tools/install.sh ghz      closed-loop gRPC runs with `--tool ghz`
#   bash loadtest/tools/install.sh grpc-open   open-loop gRPC runs (this repo's loadtest/tools/grpc-open on grpc-go)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = grpc-open ]; then
  # Rebuilt when its source is newer than the binary; its dependencies come from the Go module proxy (go.sum).
  SRC=loadtest/tools/grpc-open
  if [ -x .tools/bin/grpc-open ] && [ -z "$(find "$SRC" -newer .tools/bin/grpc-open -type f)" ]; then exit 0; fi
  mkdir -p .tools/bin
  (cd "$SRC" && go build -trimpath -o ../../../.tools/bin/grpc-open .)
  exit 0
fi
case "${1:-}" in
  vegeta) MODULE=github.com/tsenart/vegeta/v12 VERSION=v12.13.0 ;;
  ghz) MODULE=github.com/bojand/ghz/cmd/ghz VERSION=v0.121.0 ;;
  *) echo "usage: $0 vegeta|ghz|grpc-open" >&2; exit 2 ;;
esac
# Module-proxy builds report their version as "dev": a stamp file says which version is installed.
STAMP=".tools/bin/.$1-$VERSION"
if [ -x ".tools/bin/$1" ] && [ -f "$STAMP" ]; then exit 0; fi
mkdir -p .tools/bin
GOBIN="$PWD/.tools/bin" go install "$MODULE@$VERSION"
touch "$STAMP"
