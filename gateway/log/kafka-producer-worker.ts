/**
 * The worker thread of kafka-producer-thread.ts: one Kafka producer (kafka-producer.ts) built from `workerData`,
 * serving `ready`, `send` (a packed batch) and `sendLines` (log lines), one reply per request, in any order. The caller ends it with
 * `terminate()`, which closes its connections.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createKafkaProducer, type KafkaProducerOptions } from './kafka-producer.ts';
import { unpackBatch, type ProducerReply, type ProducerRequest } from './kafka-producer-thread.ts';
import { messagesOfPackedLines } from './wal-line.ts';

const port = parentPort!;
const producer = createKafkaProducer(workerData as KafkaProducerOptions);

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
