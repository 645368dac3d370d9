#!/usr/bin/env bash
# The peer server for comparisons: MLServer (Seldon) with its LightGBM runtime, from PyPI, in its own virtual
# environment .venv-mlserver/ (gitignored). Idempotent: does nothing when the pinned versions are installed.
#
#   bash loadtest/peer/install.sh
#
# Then loadtest/peer/export-model.sh writes the booster MLServer serves (the same delivery-eta/2 model).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-mlserver
PY="${PYTHON:-python3}"
REQ=loadtest/peer/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! cmp -s "$REQ" "$VENV/.requirements.txt"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/.requirements.txt"
fi
"$VENV/bin/mlserver" --version
