#!/usr/bin/env bash
# Writes loadtest/peer/delivery-eta/model.txt (the delivery-eta/2 LightGBM booster, text format) for MLServer,
# retrained with the pinned model-building tools in .venv-models/ (made here when missing). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=loadtest/peer/delivery-eta/model.txt
[ -s "$OUT" ] && [ "${1:-}" != --force ] && { echo "$OUT exists"; exit 0; }
VENV=.venv-models
if [ ! -x "$VENV/bin/python" ]; then "${PYTHON:-python3}" -m venv "$VENV"; fi
if ! cmp -s scripts/models/requirements.txt "$VENV/.requirements.txt"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/models/requirements.txt
  cp scripts/models/requirements.txt "$VENV/.requirements.txt"
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
"$VENV/bin/python" -W ignore::UserWarning loadtest/peer/export_model.py
