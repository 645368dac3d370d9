#!/usr/bin/env bash
# Makes .venv-models/ (gitignored) with the Python tools pinned in scripts/models/requirements.txt, from PyPI:
# what build.sh trains and converts the demo models with, and the Python onnxruntime the replay test computes its
# offline reference with. Idempotent: does nothing when the venv holds those pins; safe to run concurrently.
# Needs python3 with venv (installed with apt-get when missing and running as root) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/services/common.sh
VENV=.venv-models
REQS=scripts/models/requirements.txt
PY="${PYTHON:-python3}"

up_to_date() { [ -x "$VENV/bin/python" ] && cmp -s "$REQS" "$VENV/.requirements.txt"; }
up_to_date && exit 0

command -v "$PY" >/dev/null || sibyl_apt_install python3 python3-venv
"$PY" -c 'import venv, ensurepip' 2>/dev/null || sibyl_apt_install python3-venv
mkdir -p .data
exec 9>.data/models-venv.lock
flock 9
up_to_date && exit 0
sibyl_log "creating $VENV from $REQS (PyPI)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS" >&2 || sibyl_die "pip install -r $REQS failed"
"$VENV/bin/python" -c 'import onnxruntime, numpy' || sibyl_die "onnxruntime does not import"
cp "$REQS" "$VENV/.requirements.txt"
