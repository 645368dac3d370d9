/**
 * The worker thread of kafka-producer-thread.ts: one Kafka producer (kafka-producer.ts) built from `workerData`,
 * serving `ready` and `send` (a packed batch), one reply per request, in any order. The caller ends it with
 * `terminate()`, which closes its connections.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createKafkaProducer, type KafkaProducerOptions } from './kafka-producer.ts';
import { unpackBatch, type ProducerReply, type ProducerRequest } from './kafka-producer-thread.ts';

const port = parentPort!;
const producer = createKafkaProducer(workerData as KafkaProducerOptions);

const reply = (id: number) => (err?: unknown) =>
  port.postMessage((err === undefined ? { id, ok: true } : { id, ok: false, error: err instanceof Error ? err.message : String(err) }) satisfies ProducerReply);

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
  }
});
