"""Sibyl through KServe's Python SDK clients, as a KServe user would call it.

Usage: python kserve_clients.py HTTP_ADDRESS GRPC_ADDRESS   (http://host:port or host:port; host:port)

Runs the cases of oip_cases.py with three clients and prints their reports (a JSON list) on stdout:
- kserve.InferenceRESTClient (protocol v2) with JSON tensors (its default for numpy inputs),
- kserve.InferenceRESTClient with binary tensors (binary inputs, outputs requested with binary_data),
- kserve.InferenceGRPCClient (raw input and output contents).
The SDK's clients have no metadata calls: metadata is read over REST and parsed with KServe's own v2 data models
(kserve.protocol.rest.v2_datamodels), and over gRPC with the stub the gRPC client holds. The REST client has no
version parameter (it always posts to /v2/models/{name}/infer), so its runs skip the version-pinned case.
Exits 1 (traceback on stderr) when a call that should succeed fails, or the unknown model does not fail.
"""
import asyncio
import sys

import grpc
import httpx
from google.protobuf.json_format import MessageToDict
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelMetadataRequest, ServerMetadataRequest
from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse, ServerMetadataResponse

from oip_cases import INFER_CASES, MODELS, UNKNOWN_MODEL, expected_rows, input_arrays, main, metadata_report, tensor_report


def infer_request(model, version, metadata, rows, binary):
    inputs = []
    for name, datatype, arr in input_arrays(model, metadata[model]["inputs"], rows):
        t = InferInput(name, list(arr.shape), datatype)
        t.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(t)
    outputs = [RequestedOutput(o["name"], {"binary_data": True}) for o in metadata[model]["outputs"]] if binary else None
    return InferRequest(model_name=model, infer_inputs=inputs, model_version=version, request_outputs=outputs, request_id=f"{model}-{version or 'default'}")


def infer_entry(model, version, expected, response):
    entry = {
        "sent_id": f"{model}-{version or 'default'}",
        "id": response.id,
        "model": model,
        "requested_version": version,
        "expected_file": f"{expected[0]}/{expected[1]}",
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": {},
    }
    for o in response.outputs:
        entry["outputs"][o.name] = tensor_report(o.datatype, o.shape, o.as_numpy())
    return entry


async def run_rest(base, binary):
    label = f"kserve.InferenceRESTClient ({'binary' if binary else 'json'})"
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    plain = httpx.AsyncClient(timeout=30)
    try:
        res = await plain.get(f"{base}/v2")
        res.raise_for_status()
        server_md = ServerMetadataResponse.model_validate(res.json()).model_dump()
        report = {
            "client": label,
            "server": {"live": await client.is_server_live(base), "ready": await client.is_server_ready(base), "metadata": server_md},
            "models": {},
            "infer": [],
        }
        metadata = {}
        for model in MODELS:
            res = await plain.get(f"{base}/v2/models/{model}")
            res.raise_for_status()
            md = metadata_report(ModelMetadataResponse.model_validate(res.json()).model_dump())
            metadata[model] = md
            report["models"][model] = {"ready": await client.is_model_ready(base, model), "metadata": md}

        for model, version, expected in INFER_CASES:
            if version is not None:
                continue  # no version parameter in InferenceRESTClient.infer
            headers = {}
            request = infer_request(model, None, metadata, expected_rows(*expected), binary)
            entry = infer_entry(model, version, expected, await client.infer(base, request, model_name=model, response_headers=headers))
            # InferResponse.from_bytes (the SDK's REST decoder) does not keep model_version: it stays null here.
            entry["binary_response"] = headers.get("content-type") == "application/octet-stream"
            report["infer"].append(entry)

        try:
            request = infer_request("tabular-mlp", None, metadata, expected_rows("tabular-mlp", "1")[:1], binary)
            request.model_name = UNKNOWN_MODEL
            await client.infer(base, request, model_name=UNKNOWN_MODEL)
        except httpx.HTTPStatusError as e:
            report["not_found"] = {"status": str(e.response.status_code), "message": str(e), "ready": await client.is_model_ready(base, UNKNOWN_MODEL)}
        else:
            raise AssertionError(f"{label}: infer on {UNKNOWN_MODEL} succeeded")
        return report
    finally:
        await plain.aclose()
        await client.close()


async def run_grpc(address):
    label = "kserve.InferenceGRPCClient"
    client = InferenceGRPCClient(url=address, timeout=30)
    try:
        server_md = MessageToDict(await client._client_stub.ServerMetadata(ServerMetadataRequest()), preserving_proto_field_name=True)
        report = {
            "client": label,
            "server": {
                "live": await client.is_server_live(),
                "ready": await client.is_server_ready(),
                "metadata": {k: server_md.get(k) for k in ("name", "version", "extensions")},
            },
            "models": {},
            "infer": [],
        }
        metadata = {}
        for model in MODELS:
            md = MessageToDict(await client._client_stub.ModelMetadata(ModelMetadataRequest(name=model)), preserving_proto_field_name=True)
            metadata[model] = metadata_report(md)
            report["models"][model] = {"ready": await client.is_model_ready(model), "metadata": metadata[model]}

        for model, version, expected in INFER_CASES:
            request = infer_request(model, version, metadata, expected_rows(*expected), True)
            report["infer"].append(infer_entry(model, version, expected, await client.infer(request)))

        try:
            request = infer_request("tabular-mlp", None, metadata, expected_rows("tabular-mlp", "1")[:1], True)
            request.model_name = UNKNOWN_MODEL
            await client.infer(request)
        except grpc.RpcError as e:
            report["not_found"] = {"status": e.code().name, "message": e.details() or ""}
        else:
            raise AssertionError(f"{label}: infer on {UNKNOWN_MODEL} succeeded")
        return report
    finally:
        await client.close()


async def run_all(http, grpc_address):
    return [await run_rest(http, False), await run_rest(http, True), await run_grpc(grpc_address)]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: kserve_clients.py HTTP_ADDRESS GRPC_ADDRESS")
    http = sys.argv[1].rstrip("/")
    if "://" not in http:
        http = "http://" + http
    main(lambda: asyncio.run(run_all(http, sys.argv[2])))
