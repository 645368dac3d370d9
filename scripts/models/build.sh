#!/usr/bin/env bash
# Rebuilds the demo and test models in models/ (bundles, features.jsonl, deployment.yaml) and verifies them with
# the Python onnxruntime (in build.py) and with onnxruntime-node under Node 24 (verify.ts). Deterministic: the same
# pinned tools on the same inputs write the same files. Idempotent; the venv lives in .venv-models/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-models
bash scripts/models/venv.sh
# One thread everywhere: BLAS and LightGBM results then do not depend on the machine's core count.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
"$VENV/bin/python" -W ignore::UserWarning scripts/models/build.py
source scripts/env.sh
[ -d node_modules/onnxruntime-node ] || npm ci
node scripts/models/verify.ts models
