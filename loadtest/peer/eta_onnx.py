"""The delivery-eta/2 ONNX model as every Python peer runs it (KServe, BentoML, Ray Serve): the file Sibyl serves,
models/delivery-eta/2/model.onnx, in an onnxruntime session with the options Sibyl's gateway uses
(runtimes/onnx/session-options.ts): one intra-op thread, no inter-op pool, sequential execution, all graph
optimizations, no spinning. Input `features` float32 [n, 20] in the manifest's feature order; output `eta_minutes`
float32 [n, 1].
"""
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(os.environ.get('PEER_MODEL', ROOT / 'models' / 'delivery-eta' / '2' / 'model.onnx'))
MODEL_NAME = 'delivery-eta'
WIDTH = 20
OUTPUT = 'eta_minutes'


def batching() -> bool:
    """Whether the peer runs with its adaptive batching on (PEER_BATCHING=1; set by loadtest/peer/peers.ts)."""
    return os.environ.get('PEER_BATCHING') == '1'


def max_batch_size() -> int:
    return int(os.environ.get('PEER_MAX_BATCH_SIZE', '32'))


def max_batch_wait_s() -> float:
    return float(os.environ.get('PEER_MAX_BATCH_WAIT_MS', '2')) / 1000


class EtaSession:
    """One onnxruntime session; `run` takes rows (any float array of n x 20) and returns n floats."""

    def __init__(self, path: Path = MODEL) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
        opts.add_session_config_entry('session.inter_op.allow_spinning', '0')
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
        self.input = self.session.get_inputs()[0].name

    def run(self, rows) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float32).reshape(-1, WIDTH)
        (y,) = self.session.run(None, {self.input: x})
        return y.reshape(-1)


def oip_response(values, model_version: str = '2') -> dict:
    """An Open Inference Protocol REST response with one FP32 output `eta_minutes` [n, 1]."""
    data = [float(v) for v in values]
    return {
        'model_name': MODEL_NAME,
        'model_version': model_version,
        'outputs': [{'name': OUTPUT, 'datatype': 'FP32', 'shape': [len(data), 1], 'data': data}],
    }
