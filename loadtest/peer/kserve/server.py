"""KServe's Python model server (kserve.ModelServer, one worker) serving delivery-eta/2 over the Open Inference
Protocol, REST and gRPC, with a kserve.Model that runs Sibyl's ONNX file in onnxruntime (loadtest/peer/eta_onnx.py).

    .venv-kserve/bin/python loadtest/peer/kserve/server.py --http_port 18910 --grpc_port 18911 --workers 1

KServe's own flags are passed through. Its per-request logs are off, as Sibyl's gateway runs at log level warn in
the benchmark: KServe's defaults write an access line and a timing line per request (uvicorn.access and
kserve.trace at INFO), and a latency line unless --enable_latency_logging false.
"""
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kserve  # noqa: E402
from kserve import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.logging import KSERVE_LOG_CONFIG, configure_logging  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402

from eta_onnx import MODEL_NAME, OUTPUT, EtaSession  # noqa: E402


class DeliveryEta(kserve.Model):
    def __init__(self) -> None:
        super().__init__(MODEL_NAME)
        self.session: EtaSession | None = None
        self.load()

    def load(self) -> bool:
        self.session = EtaSession()
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        y = self.session.run(x)
        out = InferOutput(name=OUTPUT, shape=[len(y), 1], datatype='FP32')
        out.set_data_from_numpy(y.reshape(-1, 1), binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id or generate_uuid())


def quiet_log_config() -> dict:
    config = copy.deepcopy(KSERVE_LOG_CONFIG)
    for name in ('uvicorn.access', 'kserve.trace'):
        config['loggers'][name]['level'] = 'WARNING'
    return config


if __name__ == '__main__':
    configure_logging(quiet_log_config())
    kserve.ModelServer().start([DeliveryEta()])
