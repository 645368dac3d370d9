/**
 * The worker thread of kafka-producer-thread.ts: one Kafka producer (kafka-producer.ts) built from `workerData`,
 * serving `ready`, `send` (a packed batch) and `sendLines` (log lines), one reply per request, in any order. The
 * caller ends it with `terminate()`, which closes its connections.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { createKafkaProducer } from './kafka-producer.ts';
import { unpackBatch, type ProducerReply, type ProducerRequest, type ProducerWorkerData } from './kafka-producer-thread.ts';
import { messagesOfPackedLines } from './wal-line.ts';

const port = parentPort!;
const init = workerData as ProducerWorkerData;
lowerPriority(init.nice);
const producer = createKafkaProducer(init.client);

/** The answer to request `id`; `data` (a `sendLines` buffer, no longer read here) goes back with it for reuse. */
const reply = (id: number, data?: ArrayBuffer) => (err?: unknown) => {
  const answer: ProducerReply = { ...(err === undefined ? { id, ok: true as const } : { id, ok: false as const, error: err instanceof Error ? err.message : String(err) }), ...(data ? { data } : {}) };
  port.postMessage(answer, data ? [data] : []);
};

// Loaded: the caller counts the client's start from here.
port.postMessage({ id: 0, ok: true } satisfies ProducerReply);

port.on('message', (msg: ProducerRequest) => {
  const done = reply(msg.id);
  switch (msg.op) {
    case 'ready':
      producer.ready().then(() => done(), (err: unknown) => done(err ?? new Error('not ready')));
      return;
    case 'send':
      producer.send(unpackBatch(msg.batch, msg.headers)).then(() => done(), (err: unknown) => done(err ?? new Error('send failed')));
      return;
    case 'sendLines': {
      let messages;
      try {
        messages = messagesOfPackedLines(Buffer.from(msg.data), new Uint32Array(msg.ends));
      } catch (err) {
        done(err);
        return;
      }
      // Acknowledged, the batch was written and the client holds none of it: the buffer goes back. After a failure
      // it stays here (a request the client timed out may still be queued on its socket, reading these bytes).
      producer.send(messages).then(reply(msg.id, msg.data), (err: unknown) => done(err ?? new Error('send failed')));
      return;
    }
  }
});

/**
 * Lowers this thread's priority by `steps` nice steps and puts it in the batch scheduling class
 * (kafka-sink-options.ts, `producerThreadNice`: why). On Linux a thread is a task of its own, and `setpriority`
 * given its id changes that thread alone; its id is the last part of /proc/thread-self. Node has no call for the
 * scheduling class, so util-linux's `chrt` sets it, once, as the thread starts (a few milliseconds; any user may
 * move a thread of its own to SCHED_BATCH). Elsewhere, or when it cannot (no `chrt`), what it could not change stays.
 */
function lowerPriority(steps: number): void {
  if (!(steps > 0)) return;
  let tid: number;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return;
    setPriority(tid, Math.min(19, getPriority(tid) + steps));
  } catch {
    // Not Linux, or no /proc: the thread keeps the process's priority.
    return;
  }
  try {
    execFileSync('chrt', ['--batch', '--pid', '0', String(tid)], { stdio: 'ignore', timeout: 2000 });
  } catch {
    // No chrt on PATH: the thread keeps its class, and only its nice value is lower.
  }
}
