"""BentoML (one worker) serving delivery-eta/2: a service whose API takes the Open Inference Protocol REST body
Sibyl and MLServer get (`{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 20], "data": [...]}]}`)
at POST /v2/models/delivery-eta/infer and runs Sibyl's ONNX file in onnxruntime (loadtest/peer/eta_onnx.py).

    .venv-bentoml/bin/bentoml serve service:DeliveryEta --working-dir loadtest/peer/bentoml --host 127.0.0.1 --port 18920

With PEER_BATCHING=1 the API is batchable (BentoML's adaptive batching: concurrent requests' input lists are
concatenated into one call, up to PEER_MAX_BATCH_SIZE rows); each request then gets the list of its own outputs,
`[{"model_name": ..., "outputs": [...]}]`. The API is synchronous (BentoML runs it in its thread pool), as BentoML's
examples write model calls. Access logs are off.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bentoml  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from eta_onnx import EtaSession, batching, max_batch_size, oip_response  # noqa: E402

ROUTE = '/v2/models/delivery-eta/infer'


class Tensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[float]


@bentoml.service(workers=1, logging={'access': {'enabled': False}})
class DeliveryEta:
    def __init__(self) -> None:
        self.session = EtaSession()

    if batching():

        @bentoml.api(route=ROUTE, batchable=True, batch_dim=0, max_batch_size=max_batch_size())
        def infer(self, inputs: list[Tensor]) -> list[dict]:
            y = self.session.run([t.data for t in inputs])
            return [oip_response([v]) for v in y]

    else:

        @bentoml.api(route=ROUTE)
        def infer(self, inputs: list[Tensor]) -> dict:
            return oip_response(self.session.run(inputs[0].data))
