"""NVIDIA PyTriton (Triton Inference Server, the tritonserver binary its wheel carries, on CPU) serving delivery-eta/2
over the Open Inference Protocol, REST and gRPC, Triton's own endpoints: an inference callable that runs Sibyl's ONNX
file in onnxruntime (loadtest/peer/eta_onnx.py) behind Triton's Python backend. Prints {"port": N} on stdout when
the model is ready; stops Triton on SIGTERM or SIGINT.

    .venv-pytriton/bin/python loadtest/peer/pytriton/server.py --http-port 18940 --grpc-port 18941

With PEER_BATCHING=1 Triton's dynamic batcher groups concurrent requests (up to PEER_MAX_BATCH_SIZE rows, waiting
at most PEER_MAX_BATCH_WAIT_MS); without it every request is one call.

Runs on the Python of Debian 12 (3.11.2; loadtest/peer/install.sh makes the venv from /usr/bin/python3.11): the
wheel's Python backend stub links libpython3.11.so.1.0, which the loader finds in /lib/x86_64-linux-gnu (Debian's
3.11.2), and runs the venv's standard library; with a 3.11.6+ standard library the two disagree
(`'_thread.RLock' object has no attribute '_recursion_count'` in multiprocessing's resource tracker).
"""
import argparse
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig  # noqa: E402

from eta_onnx import MODEL_NAME, OUTPUT, WIDTH, EtaSession, batching, max_batch_size, max_batch_wait_s  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--http-port', type=int, default=18940)
    parser.add_argument('--grpc-port', type=int, default=18941)
    parser.add_argument('--metrics-port', type=int, default=18942)
    args = parser.parse_args()
    session = EtaSession()

    @batch
    def infer(features: np.ndarray) -> dict:
        return {OUTPUT: session.run(features).reshape(-1, 1)}

    if batching():
        config = ModelConfig(max_batch_size=max_batch_size(), batcher=DynamicBatcher(max_queue_delay_microseconds=int(max_batch_wait_s() * 1e6)))
    else:
        config = ModelConfig(max_batch_size=1, batcher=None)  # no dynamic batcher: one request per call
    triton_config = TritonConfig(http_address='127.0.0.1', http_port=args.http_port, grpc_address='127.0.0.1', grpc_port=args.grpc_port,
                                 metrics_address='127.0.0.1', metrics_port=args.metrics_port, log_verbose=0)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Triton(config=triton_config) as triton:
        triton.bind(model_name=MODEL_NAME, infer_func=infer,
                    inputs=[Tensor(name='features', dtype=np.float32, shape=(WIDTH,))],
                    outputs=[Tensor(name=OUTPUT, dtype=np.float32, shape=(1,))], config=config, strict=True)
        triton.run()
        print(json.dumps({'port': args.http_port, 'batching': batching()}), flush=True)
        stop.wait()


if __name__ == '__main__':
    main()
