"""What every client script asks Sibyl over the Open Inference Protocol, and the JSON report they all print.

Each script runs these cases with one client library and prints one JSON object per client on stdout:

    {"client": str,
     "server": {"live": bool, "ready": bool, "metadata": {"name", "version", "extensions"}},
     "models": {model: {"ready": bool, "metadata": {"name", "versions", "platform", "inputs", "outputs"}}},
     "infer": [{"model", "requested_version" (str or null), "expected_file" ("model/version"),
                "model_name", "model_version", "outputs": {name: {"datatype", "shape", "data" (flat list)}}}],
     "not_found": {"status": str, "message": str}}

Inputs come from the models' expected.json files (all 50 rows in one request), shaped as the model's metadata
advertises them: BYTES entity ids and one FP32 tensor per request feature, or one packed [N, k] FP32 tensor.
The test (test/e2e/oip-clients.test.ts) compares the outputs with expected.json.
"""
import json
import os
import sys
import traceback

import numpy as np

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "models")
UNKNOWN_MODEL = "no-such-model"

# The column order of tabular-mlp's packed input (models/README.md): metadata gives names and shapes, not columns.
PACKED_COLUMNS = {("tabular-mlp", "input"): ["basket_value", "distance_km", "hour_of_day", "is_raining", "basket_size", "eta_minutes"]}

# (model, version to request or None for the default, expected.json it must match)
INFER_CASES = [
    ("tabular-mlp", None, ("tabular-mlp", "1")),
    ("delivery-eta", "1", ("delivery-eta", "1")),
    ("delivery-eta", None, ("delivery-eta", "2")),
    ("eta-risk", None, ("eta-risk", "1")),
]
MODELS = ["tabular-mlp", "delivery-eta", "eta-risk"]


def expected_rows(model, version):
    with open(os.path.join(MODELS_DIR, model, version, "expected.json")) as f:
        return json.load(f)["rows"]


def input_arrays(model, metadata_inputs, rows):
    """[(name, datatype, numpy array)] for the advertised inputs, from the rows' entities and request features."""
    out = []
    for t in metadata_inputs:
        name, datatype, shape = t["name"], t["datatype"], list(t["shape"])
        if datatype == "BYTES":
            arr = np.array([r["entities"][name].encode("utf-8") for r in rows], dtype=np.object_)
        elif len(shape) == 2:
            cols = PACKED_COLUMNS[(model, name)]
            if shape[1] != len(cols):
                raise AssertionError(f"{model} input {name}: metadata shape {shape}, expected [-1, {len(cols)}]")
            arr = np.array([[r["request"][c] for c in cols] for r in rows], dtype=np.float32)
        else:
            arr = np.array([r["request"][name] for r in rows], dtype=np.float32)
        if datatype not in ("BYTES", "FP32"):
            raise AssertionError(f"{model} input {name}: unexpected datatype {datatype}")
        out.append((name, datatype, arr))
    return out


def tensor_report(datatype, shape, array):
    flat = np.asarray(array).reshape(-1)
    if datatype == "BYTES":
        data = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat]
    elif datatype == "BOOL":
        data = [bool(v) for v in flat]
    elif datatype.startswith("FP"):
        data = [float(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"datatype": datatype, "shape": [int(d) for d in shape], "data": data}


def metadata_report(md):
    """Model metadata as plain JSON; `md` is a dict in the REST JSON form."""
    tensors = lambda ts: [{"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t["shape"]]} for t in ts]
    return {
        "name": md["name"],
        "versions": list(md.get("versions") or []),
        "platform": md.get("platform", ""),
        "inputs": tensors(md.get("inputs", [])),
        "outputs": tensors(md.get("outputs", [])),
    }


def main(run):
    """Runs `run()` (returns a list of client reports), prints them as JSON; exit 1 with the traceback on failure."""
    try:
        reports = run()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    json.dump(reports, sys.stdout)
    sys.stdout.write("\n")
