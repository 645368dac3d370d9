#!/usr/bin/env bash
# `npm run pack`: the installable package, sibyl-<version>.tgz. Node will not strip the types of .ts files under
# node_modules, so the package carries the code compiled to JavaScript in dist/ (tsconfig.pack.json), which
# bin/sibyl.js runs once installed; the manifest's JSON Schema goes beside it for `sibyl rules new`.
# Install it with `npm install -g sibyl-<version>.tgz` under Node 24 (ONNXRUNTIME_NODE_INSTALL=skip keeps
# onnxruntime-node from fetching CUDA files; the CPU build is in the package).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rm -rf dist
npx tsc -p tsconfig.pack.json
cp -r schemas dist/schemas
npm pack --ignore-scripts "$@"
