#!/usr/bin/env bash
# The peer servers for comparisons, each from PyPI into its own virtual environment .venv-<peer>/ (gitignored), with
# the exact versions its requirements file pins:
#
#   mlserver  MLServer (Seldon) with its LightGBM runtime   loadtest/peer/requirements.txt
#   kserve    KServe's Python model server + onnxruntime    loadtest/peer/kserve/requirements.txt
#   bentoml   BentoML + onnxruntime                         loadtest/peer/bentoml/requirements.txt
#   ray       Ray Serve + onnxruntime                       loadtest/peer/ray/requirements.txt
#   pytriton  NVIDIA PyTriton + onnxruntime, on Debian's Python 3.11.2 (/usr/bin/python3.11; its Python backend
#             fails on 3.11.6+: loadtest/peer/pytriton/server.py)  loadtest/peer/pytriton/requirements.txt
#
#   bash loadtest/peer/install.sh [peer ...]     (default: mlserver)
#
# Idempotent: a venv whose installed requirements equal the file is left alone. Exits non-zero when any named peer
# failed to install (the others are still installed). MLServer also needs loadtest/peer/export-model.sh (its booster).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
status=0
for peer in "${@:-mlserver}"; do
  py="$PY"
  case "$peer" in
    mlserver) req=loadtest/peer/requirements.txt; check=(bin/mlserver --version) ;;
    kserve) req=loadtest/peer/kserve/requirements.txt; check=(bin/python -c 'import importlib.metadata as m, kserve, onnxruntime; print("kserve", m.version("kserve"))') ;;
    bentoml) req=loadtest/peer/bentoml/requirements.txt; check=(bin/bentoml --version) ;;
    ray) req=loadtest/peer/ray/requirements.txt; check=(bin/python -c 'import ray, ray.serve, onnxruntime; print("ray", ray.__version__)') ;;
    pytriton)
      req=loadtest/peer/pytriton/requirements.txt; py=/usr/bin/python3.11
      check=(bin/python -c 'import sys, pytriton, onnxruntime; print("pytriton on python", sys.version.split()[0])')
      if ! "$py" -c 'import ensurepip' 2>/dev/null; then apt-get install -y -qq python3.11-venv >/dev/null || true; fi ;;
    *) echo "unknown peer: $peer (mlserver, kserve, bentoml, ray, pytriton)" >&2; status=2; continue ;;
  esac
  venv=".venv-$peer"
  # (set -e does not apply inside a subshell whose status is tested: every step says so itself.)
  (
    if [ ! -x "$venv/bin/python" ]; then "$py" -m venv "$venv" || exit 1; fi
    if ! cmp -s "$req" "$venv/.requirements.txt"; then
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" || exit 1
      cp "$req" "$venv/.requirements.txt" || exit 1
    fi
    "$venv/${check[0]}" "${check[@]:1}"
  ) || { echo "$peer: install failed" >&2; status=1; }
done
exit "$status"
