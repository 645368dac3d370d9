/** Prediction records and a Kafka reader for the prediction-log suites. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { recordTime, type PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { parsePredictionEvent, type PredictionEvent } from '../../gateway/log/cloud-event.ts';

export const TEST_BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Record `i` of a run: prediction id `<run>-<i>`, request id shared by pairs (a live and a shadow). */
export function makeRecord(run: string, i: number): PredictionRecord {
  return {
    predictionId: `${run}-${i}`,
    requestId: `req-${run}-${Math.floor(i / 2)}`,
    time: recordTime(1_767_225_600_000 + i),
    cell: 'cell-a',
    model: 'fraud',
    version: '3',
    role: i % 2 === 0 ? 'ROLE_LIVE' : 'ROLE_SHADOW',
    arm: '',
    rows: [
      {
        entities: { user: `u${i % 7}` },
        features: { amount: i * 1.5 },
        outputs: { score: 0.25 },
        defaultedFeatures: i % 3 === 0 ? ['country'] : [],
      },
    ],
    modelLatencyUs: '42',
    totalLatencyUs: '1234',
  };
}

export interface ConsumedMessage {
  partition: number;
  key: string;
  value: string;
  headers: Record<string, string>;
  /** The CloudEvent in the value (structured mode); `id` is the prediction id. */
  event: PredictionEvent;
  /** The event's id (the prediction id), '' when the value is not an event. */
  id: string;
}

/**
 * Reads `topic` from the beginning until `expectedUnique` distinct event ids were seen and then `settleMs`
 * passed without a new message (so duplicates show up too), or until `timeoutMs`.
 */
export async function consumeTopic(
  brokers: string[],
  topic: string,
  expectedUnique: number,
  { timeoutMs = 60_000, settleMs = 1_000 } = {},
): Promise<ConsumedMessage[]> {
  const kafka = new Kafka({ clientId: 'sibyl-test-reader', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), sessionTimeout: 10_000 });
  const messages: ConsumedMessage[] = [];
  const ids = new Set<string>();
  let last = Date.now();
  await consumer.connect();
  try {
    // The topic may not exist yet (a fresh broker creates it on the gateway's first send, which can come after the
    // caller starts reading): wait for it rather than fail with UNKNOWN_TOPIC_OR_PARTITION.
    for (let waited = 0; ; waited += 250) {
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        break;
      } catch (err) {
        if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION' || waited >= timeoutMs) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        const value = String(message.value);
        let event: PredictionEvent;
        try {
          event = parsePredictionEvent(value);
        } catch {
          event = {} as PredictionEvent;
        }
        const id = typeof event.id === 'string' ? event.id : '';
        messages.push({ partition, key: String(message.key), value, headers, event, id });
        if (id) ids.add(id);
        last = Date.now();
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (ids.size < expectedUnique || Date.now() - last < settleMs)) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

const exec = promisify(execFile);

/**
 * Runs scripts/services/kafka.sh for a broker instance of its own (ports, data dir). Async: the loop keeps running.
 * 'pause' / 'resume' SIGSTOP / SIGCONT it (a hung broker); the script refuses them on the shared instance.
 */
export async function kafkaInstance(
  command: 'start' | 'stop' | 'kill' | 'pause' | 'resume',
  instance: { port: number; controllerPort: number; dir: string },
): Promise<void> {
  await exec('bash', ['scripts/services/kafka.sh', command], {
    env: {
      ...process.env,
      SIBYL_KAFKA_PORT: String(instance.port),
      SIBYL_KAFKA_CONTROLLER_PORT: String(instance.controllerPort),
      SIBYL_KAFKA_DIR: instance.dir,
    },
  });
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
