/**
 * The Kafka producer (kafka-producer.ts) on a worker thread of its own, behind the same `KafkaProducer` role, so
 * that the client's per-batch work, encoding a record batch (varints, headers, CRC-32C), compression when asked for,
 * the socket writes and reading the brokers' answers, never runs on the event loop that serves requests.
 * The client encodes a batch synchronously: ~1-5 ms for a 500-record batch here, a long task for every request in
 * flight (gateway/log/README.md, "The Kafka client and compression").
 *
 * The sink's direct sends (`sendLines`) cross as the write-ahead log's lines themselves: one transferred buffer
 * holding them back to back and the offset where each ends. This thread copies each line once and does nothing
 * else per message; the worker splits each line into key and value (views, no copy) and sends. The worker hands
 * the buffer back with its answer once Kafka acknowledged the batch, and a later batch is copied into it: a new
 * buffer of a few hundred KB costs its page faults on first touch. The loop's time per 300-line batch, p50 / p99
 * (loadtest/micro/producer-handoff.bench.ts, one core): 46 / 181 µs into a buffer handed back, 118 / 2,168 into
 * a new one, 146 / 880 to split the lines and pack the messages apart on this thread (the way before); 500 lines:
 * 79 / 517 against 255 / 1,863.
 * Other batches (`send`: replay's, read from the log's files) cross as one transferred ArrayBuffer: per message
 * the key's and value's lengths, then their bytes. Headers are cloned once per batch when every message shares
 * one object (the sink's case), else per message.
 *
 * The worker is started on the first call, is unref'd while nothing is pending (it never keeps the process
 * alive), and is started again by the next call after it died; calls pending when it dies reject. Loading its
 * modules takes the worker 0.3-6 s here (`started` resolves then; the sink counts its start from that moment).
 */
import { Worker } from 'node:worker_threads';
import type { KafkaMessage, KafkaProducer, KafkaProducerOptions } from './kafka-producer.ts';

export type ProducerRequest =
  | { readonly op: 'ready'; readonly id: number }
  | {
      readonly op: 'send';
      readonly id: number;
      /** Uint32 count, then per message key length and value length; then the bytes, key before value. */
      readonly batch: ArrayBuffer;
      /** One object for every message, or one per message. */
      readonly headers: Readonly<Record<string, string>> | readonly Readonly<Record<string, string>>[];
    }
  | {
      readonly op: 'sendLines';
      readonly id: number;
      /** The lines back to back from offset 0 (the buffer may be longer: it is reused). */
      readonly data: ArrayBuffer;
      /** Uint32: where each line ends, newline included. */
      readonly ends: ArrayBuffer;
    };

/**
 * Id 0 is the worker's first message: its modules are loaded. `data`: a `sendLines` buffer handed back for the next
 * batch.
 */
export type ProducerReply = ({ readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly error: string }) & { readonly data?: ArrayBuffer };

/** The smallest buffer made for a batch of lines: a 500-line batch of ~1.1 KB records fits. */
const MIN_LINES_BUFFER = 1 << 20;
/** Buffers kept for reuse: one per batch in flight, and then some. */
const MAX_FREE_BUFFERS = 8;

/**
 * Packs lines (each ending with its newline) into `free`'s first buffer that holds them, else a new one (taken out
 * of `free`: the caller transfers it). Returns the buffer and the Uint32 end offsets.
 */
export function packLines(lines: readonly Uint8Array[], free: ArrayBuffer[] = []): { data: ArrayBuffer; ends: ArrayBuffer } {
  const n = lines.length;
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += lines[i]!.length;
  const reuse = free.findIndex((b) => b.byteLength >= bytes);
  const data = reuse >= 0 ? free.splice(reuse, 1)[0]! : new ArrayBuffer(Math.max(bytes, MIN_LINES_BUFFER));
  const out = new Uint8Array(data);
  const ends = new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const line = lines[i]!;
    out.set(line, at);
    at += line.length;
    ends[i] = at;
  }
  return { data, ends: ends.buffer };
}

// The worker's file, with this module's own extension (.ts in the repository, .mjs in the Lambda package).
const WORKER_URL = new URL(`./kafka-producer-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url);

/** Packs a batch into one buffer (layout above). */
export function packBatch(messages: readonly KafkaMessage[]): Pick<Extract<ProducerRequest, { op: 'send' }>, 'batch' | 'headers'> {
  const n = messages.length;
  let bytes = 0;
  const keys: (Buffer | string)[] = new Array(n);
  const keyLens = new Uint32Array(n);
  const valueLens = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    keys[i] = m.key;
    keyLens[i] = typeof m.key === 'string' ? Buffer.byteLength(m.key) : m.key.length;
    valueLens[i] = typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.length;
    bytes += keyLens[i]! + valueLens[i]!;
  }
  const head = 4 * (1 + 2 * n);
  const batch = new ArrayBuffer(head + bytes);
  const index = new Uint32Array(batch, 0, 1 + 2 * n);
  const out = Buffer.from(batch);
  index[0] = n;
  let at = head;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    index[1 + 2 * i] = keyLens[i]!;
    index[2 + 2 * i] = valueLens[i]!;
    at += typeof m.key === 'string' ? out.write(m.key, at) : m.key.copy(out, at);
    at += typeof m.value === 'string' ? out.write(m.value, at) : m.value.copy(out, at);
  }
  const first = messages[0]?.headers;
  const shared = messages.every((m) => m.headers === first);
  return { batch, headers: shared && first ? first : messages.map((m) => m.headers) };
}

/** The messages of a packed batch: keys and values are views into `batch`. */
export function unpackBatch(batch: ArrayBuffer, headers: Extract<ProducerRequest, { op: 'send' }>['headers']): KafkaMessage[] {
  const n = new Uint32Array(batch, 0, 1)[0]!;
  const index = new Uint32Array(batch, 0, 1 + 2 * n);
  const messages: KafkaMessage[] = new Array(n);
  let at = 4 * (1 + 2 * n);
  for (let i = 0; i < n; i++) {
    const k = index[1 + 2 * i]!;
    const v = index[2 + 2 * i]!;
    const key = Buffer.from(batch, at, k);
    const value = Buffer.from(batch, at + k, v);
    at += k + v;
    messages[i] = { key, value, headers: Array.isArray(headers) ? headers[i]! : (headers as Readonly<Record<string, string>>) };
  }
  return messages;
}

/** What the worker thread is started with. */
export interface ProducerWorkerData {
  readonly client: KafkaProducerOptions;
  /** Nice steps the thread lowers itself by (kafka-sink-options.ts, `producerThreadNice`). */
  readonly nice: number;
}

export function createThreadedKafkaProducer(options: KafkaProducerOptions, thread: { readonly nice?: number } = {}): KafkaProducer {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  let closed = false;
  /** `sendLines` buffers the worker handed back. */
  const free: ArrayBuffer[] = [];
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => (markStarted = resolve));

  function ensureWorker(): Worker {
    if (worker) return worker;
    const w = new Worker(WORKER_URL, { workerData: { client: options, nice: thread.nice ?? 0 } satisfies ProducerWorkerData });
    w.unref();
    w.on('message', (reply: ProducerReply) => {
      if (reply.data !== undefined && free.length < MAX_FREE_BUFFERS) free.push(reply.data);
      if (reply.id === 0) return markStarted();
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if (pending.size === 0) w.unref();
      if (reply.ok) p.resolve();
      else p.reject(new Error(reply.error));
    });
    const fail = (cause: unknown): void => {
      if (worker !== w) return;
      worker = undefined;
      const err = new Error(`Kafka producer thread stopped: ${cause instanceof Error ? cause.message : String(cause)}`);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    worker = w;
    return w;
  }

  function call(msg: ProducerRequest, transfer: ArrayBuffer[] = []): Promise<void> {
    const w = ensureWorker();
    return new Promise((resolve, reject) => {
      pending.set(msg.id, { resolve, reject });
      if (pending.size === 1) w.ref();
      w.postMessage(msg, transfer);
    });
  }

  return {
    started,
    ready() {
      if (closed) return Promise.reject(new Error('producer closed'));
      return call({ op: 'ready', id: nextId++ });
    },
    send(messages) {
      if (closed) return Promise.reject(new Error('producer closed'));
      if (messages.length === 0) return Promise.resolve();
      const { batch, headers } = packBatch(messages);
      return call({ op: 'send', id: nextId++, batch, headers }, [batch]);
    },
    sendLines(lines) {
      if (closed) return Promise.reject(new Error('producer closed'));
      if (lines.length === 0) return Promise.resolve();
      const { data, ends } = packLines(lines, free);
      return call({ op: 'sendLines', id: nextId++, data, ends }, [data, ends]);
    },
    async close() {
      if (closed) return;
      closed = true;
      const w = worker;
      if (!w) return;
      // Ending the thread closes its connections and rejects what is pending (the 'exit' handler), as the client's
      // forced close would; it does not wait for a thread still loading its modules.
      await w.terminate().catch(() => undefined);
    },
  };
}
