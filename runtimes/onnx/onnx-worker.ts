/**
 * The worker side of OnnxWorkerPool: holds its own InferenceSessions, keyed by the pool's model key, and runs them
 * off the main thread. Messages are handled one at a time, in order (a `run` after a `load` finds its session).
 */
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './worker-pool.ts';
import type { RawTensor } from './tensor-plan.ts';

const port = parentPort;
if (!port) throw new Error('onnx-worker.ts must run in a worker thread');
const sessions = new Map<string, ort.InferenceSession>();
let queue: Promise<void> = Promise.resolve();

port.on('message', (msg: WorkerRequest) => {
  queue = queue.then(() => handle(msg));
});

async function handle(msg: WorkerRequest): Promise<void> {
  try {
    switch (msg.op) {
      case 'load': {
        if (!sessions.has(msg.key)) sessions.set(msg.key, await ort.InferenceSession.create(msg.path, msg.options));
        reply({ id: msg.id, ok: true });
        return;
      }
      case 'unload': {
        const s = sessions.get(msg.key);
        sessions.delete(msg.key);
        await s?.release();
        reply({ id: msg.id, ok: true });
        return;
      }
      case 'run': {
        const session = sessions.get(msg.key);
        if (!session) throw new Error(`no session for ${msg.key}`);
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
        const results = await session.run(feeds, msg.fetches);
        const outputs: Record<string, RawTensor> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [name, t] of Object.entries(results)) {
          // Copy out of onnxruntime's buffer so it can be transferred without aliasing native memory.
          const data = Array.isArray(t.data) ? t.data.slice() : (t.data as Float32Array).slice();
          if (!Array.isArray(data)) transfer.push((data as Float32Array).buffer as ArrayBuffer);
          outputs[name] = { type: t.type, data, dims: t.dims };
        }
        reply({ id: msg.id, ok: true, outputs }, transfer);
        return;
      }
    }
  } catch (err) {
    reply({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}
