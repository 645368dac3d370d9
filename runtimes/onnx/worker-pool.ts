/**
 * A small pool of worker threads, each holding its own InferenceSessions, for batches big enough to stall the event
 * loop when run inline (onnxruntime-node's `run()` computes on the calling thread). Sessions are loaded into every
 * worker lazily, on the first offloaded batch of a model.
 *
 * Lifecycle: `register` a model once, `run` many times, `unregister` on dispose, `close` when the runtime goes away.
 * Workers are unref'd while idle (they never keep the process alive) and respawned after a crash; a run in flight
 * when its worker dies rejects with UNAVAILABLE.
 */
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { SibylError } from '../../core/errors.ts';
import type { RawTensor } from './tensor-plan.ts';
import { abortError } from './abort-error.ts';

export type WorkerRequest =
  | { op: 'load'; id: number; key: string; path: string; options: InferenceSession.SessionOptions }
  | { op: 'unload'; id: number; key: string }
  | { op: 'run'; id: number; key: string; feeds: Record<string, RawTensor>; fetches: string[] };
export type WorkerReply =
  | { id: number; ok: true; outputs?: Record<string, RawTensor> }
  | { id: number; ok: false; error: string };

interface Pending {
  resolve(outputs: Record<string, RawTensor>): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker | undefined;
  /** Model keys whose session this worker has been asked to load. */
  loaded: Set<string>;
  pending: Map<number, Pending>;
}

// `.ts` in a checkout, `.js` in the package compiled for installing (tsconfig.pack.json).
const WORKER_URL = new URL(`./onnx-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url);

export class OnnxWorkerPool {
  readonly #slots: Slot[];
  readonly #models = new Map<string, { path: string; options: InferenceSession.SessionOptions }>();
  #nextId = 1;
  #closed = false;

  /** @param size worker threads (default 1: on 2 cores, one for the event loop and one for big batches). */
  constructor(size = 1) {
    this.#slots = Array.from({ length: Math.max(1, size) }, () => ({ worker: undefined, loaded: new Set<string>(), pending: new Map() }));
  }

  /** Remembers how to load a model; nothing is loaded until its first `run`. */
  register(key: string, path: string, options: InferenceSession.SessionOptions): void {
    this.#models.set(key, { path, options });
  }

  /** Releases the model's session in every worker that loaded it. */
  unregister(key: string): void {
    this.#models.delete(key);
    for (const slot of this.#slots) {
      if (!slot.loaded.delete(key) || !slot.worker) continue;
      slot.worker.postMessage({ op: 'unload', id: 0, key } satisfies WorkerRequest);
    }
  }

  /**
   * Runs a registered model on the least busy worker. Rejects with CANCELLED/DEADLINE_EXCEEDED as soon as the signal
   * aborts (the worker finishes the run and its result is dropped), UNAVAILABLE when the pool is closed or the worker
   * died, INTERNAL when the session fails.
   */
  run(key: string, feeds: Record<string, RawTensor>, fetches: string[], transfer: ArrayBuffer[], signal: AbortSignal): Promise<Record<string, RawTensor>> {
    if (this.#closed) return Promise.reject(new SibylError('UNAVAILABLE', 'onnx worker pool is closed'));
    if (signal.aborted) return Promise.reject(abortError(signal));
    const model = this.#models.get(key);
    if (!model) return Promise.reject(new SibylError('FAILED_PRECONDITION', 'model is not registered with the worker pool'));
    let slot = this.#slots[0]!;
    for (const s of this.#slots) if (s.pending.size < slot.pending.size) slot = s;
    const worker = this.#ensureWorker(slot);
    if (!slot.loaded.has(key)) {
      slot.loaded.add(key);
      this.#send(slot, worker, { op: 'load', id: this.#nextId++, key, path: model.path, options: model.options }, []).catch(() => {
        slot.loaded.delete(key); // the run queued behind it fails too and says why
      });
    }
    const id = this.#nextId++;
    const result = this.#send(slot, worker, { op: 'run', id, key, feeds, fetches }, transfer);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      result.then(
        (outputs) => {
          signal.removeEventListener('abort', onAbort);
          resolve(outputs);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /** Terminates the workers; runs in flight reject with UNAVAILABLE. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker?.terminate()));
  }

  #send(slot: Slot, worker: Worker, msg: WorkerRequest, transfer: ArrayBuffer[]): Promise<Record<string, RawTensor>> {
    return new Promise((resolve, reject) => {
      slot.pending.set(msg.id, { resolve, reject });
      if (slot.pending.size === 1) worker.ref();
      worker.postMessage(msg, transfer);
    });
  }

  #ensureWorker(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = new Worker(WORKER_URL);
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      if (reply.ok) p.resolve(reply.outputs ?? {});
      else p.reject(new SibylError('INTERNAL', 'model run failed', { cause: new Error(reply.error) }));
    });
    const fail = (cause: unknown): void => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.loaded.clear();
      const err = new SibylError('UNAVAILABLE', 'onnx worker stopped', { cause });
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    slot.worker = worker;
    return worker;
  }
}
