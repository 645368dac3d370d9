#!/usr/bin/env bash
# Creates .venv-clients/ (gitignored) with the Open Inference Protocol clients that users of KServe and Triton
# already have: tritonclient (HTTP and gRPC) and kserve (InferenceRESTClient, InferenceGRPCClient), at the versions
# pinned in scripts/python-clients.requirements.txt, from PyPI. Idempotent: does nothing when the venv already holds
# those pins; rebuilds it when the pins change. Safe to run concurrently (one install at a time).
# Needs python3 with venv (installed with apt-get when missing and running as root) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services/common.sh
VENV=.venv-clients
REQS=scripts/python-clients.requirements.txt
PY="${PYTHON:-python3}"

up_to_date() { [ -x "$VENV/bin/python" ] && cmp -s "$REQS" "$VENV/.requirements.txt"; }
up_to_date && exit 0

command -v "$PY" >/dev/null || sibyl_apt_install python3 python3-venv
"$PY" -c 'import venv, ensurepip' 2>/dev/null || sibyl_apt_install python3-venv
mkdir -p .data
exec 9>.data/python-clients.lock
flock 9
up_to_date && exit 0
sibyl_log "creating $VENV from $REQS (PyPI)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS" >&2 || sibyl_die "pip install -r $REQS failed"
"$VENV/bin/python" -c 'import tritonclient.http, tritonclient.grpc, numpy' || sibyl_die "tritonclient does not import"
"$VENV/bin/python" -c 'from kserve import InferenceRESTClient, InferenceGRPCClient' || sibyl_die "kserve does not import"
cp "$REQS" "$VENV/.requirements.txt"
