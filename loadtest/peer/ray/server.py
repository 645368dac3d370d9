"""Ray Serve (one replica) serving delivery-eta/2: a deployment that takes the Open Inference Protocol REST body
Sibyl and MLServer get at POST /v2/models/delivery-eta/infer and runs Sibyl's ONNX file in onnxruntime
(loadtest/peer/eta_onnx.py). This process starts a local Ray cluster (its GCS, raylet and worker processes are its
children), the Serve controller, the HTTP proxy and the replica, prints {"port": N} on stdout when the
application is running, and shuts Ray down on SIGTERM or SIGINT.

    .venv-ray/bin/python loadtest/peer/ray/server.py --port 18930

With PEER_BATCHING=1 rows go through `@serve.batch` (up to PEER_MAX_BATCH_SIZE rows, waiting at most
PEER_MAX_BATCH_WAIT_MS for a batch to fill). Access logs are off; Serve logs at WARNING.
"""
import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

PEER_DIR = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, PEER_DIR)

import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.config import HTTPOptions  # noqa: E402
from ray.serve.schema import LoggingConfig  # noqa: E402
from starlette.requests import Request  # noqa: E402

from eta_onnx import EtaSession, batching, max_batch_size, max_batch_wait_s, oip_response  # noqa: E402

ROUTE = '/v2/models/delivery-eta/infer'
# Requests a replica takes at once; beyond it the proxy queues. Ray's default (5) would cap a batch at 5 rows.
MAX_ONGOING = 64


@serve.deployment(num_replicas=1, max_ongoing_requests=MAX_ONGOING, ray_actor_options={'num_cpus': 1})
class DeliveryEta:
    def __init__(self, batched: bool) -> None:
        self.session = EtaSession()
        self.batched = batched

    async def __call__(self, request: Request) -> dict:
        body = await request.json()
        row = body['inputs'][0]['data']
        if self.batched:
            return oip_response([await self.run_batch(row)])
        return oip_response(self.session.run(row))

    @serve.batch(max_batch_size=max_batch_size(), batch_wait_timeout_s=max_batch_wait_s())
    async def run_batch(self, rows: list[list[float]]) -> list[float]:
        return self.session.run(rows).tolist()


def descendants(root: int) -> list[int]:
    """Pids of every live descendant of `root` (from /proc)."""
    parent: dict[int, int] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parent[int(entry)] = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, default=18930)
    parser.add_argument('--temp-dir', default=os.environ.get('PEER_RAY_TEMP_DIR', '/tmp/ray-peer'))
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ray.init(
        # Everything on loopback; the replica's worker process imports eta_onnx from PEER_DIR too.
        _node_ip_address='127.0.0.1',
        runtime_env={'env_vars': {'PYTHONPATH': PEER_DIR}},
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        _temp_dir=args.temp_dir,
        logging_level='WARNING',
        log_to_driver=False,
    )
    try:
        serve.start(
            http_options=HTTPOptions(host='127.0.0.1', port=args.port),
            logging_config=LoggingConfig(log_level='WARNING', enable_access_log=False),
        )
        serve.run(DeliveryEta.bind(batching()), name='delivery-eta', route_prefix=ROUTE,
                  logging_config=LoggingConfig(log_level='WARNING', enable_access_log=False))
        print(json.dumps({'port': args.port, 'batching': batching()}), flush=True)
        stop.wait()
    finally:
        # ray.shutdown() leaves the node's agent processes behind (seen: DashboardAgent, RuntimeEnvAgent, reparented
        # to init): note every descendant first, and end the ones still there afterwards.
        left = descendants(os.getpid())
        serve.shutdown()
        ray.shutdown()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == '__main__':
    main()
