"""Sibyl through NVIDIA Triton's Python clients, as a Triton user would call it.

Usage: python triton_clients.py HTTP_ADDRESS GRPC_ADDRESS   (host:port, an http:// prefix is dropped)

Runs the cases of oip_cases.py with three clients and prints their reports (a JSON list) on stdout; the HTTP
reports add "compressed" (tabular-mlp with gzip and deflate request bodies) and "extension_error" (the error
the client decodes for get_model_config, a Triton-only extension Sibyl does not serve):
- tritonclient.http with binary tensors (its default: binary inputs, `binary_data_output` for all outputs),
- tritonclient.http with binary_data=False for inputs and outputs (pure JSON),
- tritonclient.grpc (outputs read from raw_output_contents only).
Exits 1 (traceback on stderr) when a call that should succeed fails, or the unknown model does not fail.
"""
import sys

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oip_cases import INFER_CASES, MODELS, UNKNOWN_MODEL, expected_rows, input_arrays, main, metadata_report, tensor_report


def run_http(address, binary):
    client = httpclient.InferenceServerClient(url=address)
    try:
        return run_client(client, f"tritonclient.http ({'binary' if binary else 'json'})", binary, as_json={})
    finally:
        client.close()


def run_grpc(address):
    client = grpcclient.InferenceServerClient(url=address)
    try:
        return run_client(client, "tritonclient.grpc", True, as_json={"as_json": True})
    finally:
        client.close()


def run_client(client, label, binary, as_json):
    lib = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    report = {
        "client": label,
        "server": {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "metadata": dict(client.get_server_metadata(**as_json)),
        },
        "models": {},
        "infer": [],
    }
    report["server"]["metadata"] = {k: report["server"]["metadata"].get(k) for k in ("name", "version", "extensions")}
    metadata = {}
    for model in MODELS:
        md = metadata_report(client.get_model_metadata(model, **as_json))
        metadata[model] = md
        report["models"][model] = {"ready": client.is_model_ready(model), "metadata": md}
    # A pinned version: its own metadata and readiness paths (/v2/models/{m}/versions/{v}[/ready]).
    report["version_1"] = {
        "ready": client.is_model_ready("delivery-eta", "1"),
        "metadata": metadata_report(client.get_model_metadata("delivery-eta", "1", **as_json)),
    }

    for model, version, expected in INFER_CASES:
        report["infer"].append(infer_case(client, lib, label, binary, metadata, model, version, expected))
    if lib is httpclient:
        # The whole body compressed, as `request_compression_algorithm` sends it (Content-Encoding).
        report["compressed"] = [
            infer_case(client, lib, label, binary, metadata, "tabular-mlp", None, ("tabular-mlp", "1"), compression=algo)
            for algo in ("gzip", "deflate")
        ]
        # A Triton-only extension (model configuration): the client must still decode Sibyl's error.
        try:
            client.get_model_config("tabular-mlp")
        except InferenceServerException as e:
            report["extension_error"] = {"status": str(e.status()), "message": str(e.message())}
        else:
            raise AssertionError(f"{label}: get_model_config succeeded")

    try:
        arr = next(iter(input_arrays("tabular-mlp", metadata["tabular-mlp"]["inputs"], expected_rows("tabular-mlp", "1")[:1])))[2]
        t = lib.InferInput("input", list(arr.shape), "FP32")
        t.set_data_from_numpy(arr)
        client.infer(UNKNOWN_MODEL, [t])
    except InferenceServerException as e:
        report["not_found"] = {"status": str(e.status()), "message": str(e.message())}
    else:
        raise AssertionError(f"{label}: infer on {UNKNOWN_MODEL} succeeded")
    return report


def infer_case(client, lib, label, binary, metadata, model, version, expected, compression=None):
    """One infer of all rows of expected.json `expected` (model, version); the entry oip_cases.py describes."""
    rows = expected_rows(*expected)
    inputs = []
    for name, datatype, arr in input_arrays(model, metadata[model]["inputs"], rows):
        t = lib.InferInput(name, list(arr.shape), datatype)
        if lib is httpclient:
            t.set_data_from_numpy(arr, binary_data=binary)
        else:
            t.set_data_from_numpy(arr)
        inputs.append(t)
    # Binary HTTP: no outputs named, so the client asks for all of them in binary (`binary_data_output`).
    outputs = None
    if lib is httpclient and not binary:
        outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in metadata[model]["outputs"]]
    sent_id = f"{model}-{version or 'default'}"
    kwargs = {"request_compression_algorithm": compression} if compression else {}
    as_json = {"as_json": True} if lib is grpcclient else {}
    result = client.infer(model, inputs, model_version=version or "", outputs=outputs, request_id=sent_id, **kwargs)
    response = result.get_response(**as_json)
    entry = {
        "sent_id": sent_id,
        "id": response.get("id"),
        "model": model,
        "requested_version": version,
        "expected_file": f"{expected[0]}/{expected[1]}",
        "model_name": response.get("model_name"),
        "model_version": response.get("model_version"),
        "outputs": {},
    }
    for o in response["outputs"]:
        arr = result.as_numpy(o["name"])
        if arr is None:
            raise AssertionError(f"{label}: {model} output {o['name']} has no data")
        entry["outputs"][o["name"]] = tensor_report(o["datatype"], o["shape"], arr)
        # How the tensor travelled: in the binary part (binary_data_size) or as JSON `data`; gRPC: raw contents.
        if lib is httpclient:
            entry["outputs"][o["name"]]["binary"] = "binary_data_size" in (o.get("parameters") or {}) and "data" not in o
    return entry


def http_address(a):
    return a.split("://", 1)[-1].rstrip("/")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: triton_clients.py HTTP_ADDRESS GRPC_ADDRESS")
    http, grpc = http_address(sys.argv[1]), sys.argv[2]
    main(lambda: [run_http(http, True), run_http(http, False), run_grpc(grpc)])
