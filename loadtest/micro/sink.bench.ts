/**
 * Prediction-log sinks, side by side in one run:
 *   write()      ns per call (the request path's cost), measured around chunks of 1000 calls:
 *                array push (baseline) | null sink | file sink | kafka sink
 *   delivered    records/s from the first write until the destination acked everything, and CPU µs per record
 *                (process.cpuUsage, all of the process' threads, so gzip in libuv's pool counts):
 *                raw @platformatic/kafka (baseline: the sink's client with pre-serialized batches, same batch
 *                size, acks=all, same sends in flight, none and gzip) | raw kafkajs (the former client, same
 *                batches) | kafka sink (none, the default, and gzip; includes ProtoJSON and the event) | file sink
 *                | serialization alone (predictionMessage: ProtoJSON + CloudEvent, what the sink adds to the client)
 * Records are like the gateway's: one delivery-eta prediction (20 features, 3 entities, one output, UUID ids),
 * ~1.1 KB as a CloudEvent. Needs the real broker (scripts/services/kafka.sh start; SIBYL_TEST_KAFKA_BROKERS or
 * 127.0.0.1:19092). Rounds are interleaved; the median round is reported.
 *
 * Run: node loadtest/micro/sink.bench.ts [recordsPerRound=100000] [rounds=3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { Admin, Producer, ProduceAcks } from '@platformatic/kafka';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import type { PredictionMessage } from '../../gateway/log/cloud-event.ts';
import type { KafkaCompression } from '../../gateway/log/kafka-producer.ts';
import { javaCompatiblePartitioner } from '../../gateway/log/murmur2-partitioner.ts';
import { createFileSink } from '../../gateway/log/file-sink.ts';
import { createKafkaSink } from '../../gateway/log/kafka-sink.ts';
import { createNullSink } from '../../gateway/log/null-sink.ts';
import type { PredictionSink } from '../../gateway/log/prediction-sink.ts';
import type { PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { etaRecords } from './eta-records.ts';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CHUNK = 1000;
const BATCH = 500;
const IN_FLIGHT = 4;
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
let topicSeq = 0;
const topicName = () => `bench-predictions-${process.pid}-${topicSeq++}`;

function records(round: number): PredictionRecord[] {
  return etaRecords(N, round);
}

/** ns per write() call, yielding between chunks so the sink's background work runs outside the timed part. */
async function writeCost(write: (r: PredictionRecord) => void, recs: PredictionRecord[]): Promise<number> {
  let ns = 0n;
  for (let i = 0; i < recs.length; i += CHUNK) {
    const end = Math.min(i + CHUNK, recs.length);
    const t0 = process.hrtime.bigint();
    for (let j = i; j < end; j++) write(recs[j]!);
    ns += process.hrtime.bigint() - t0;
    await yieldLoop();
  }
  return Number(ns) / recs.length;
}

interface Delivery {
  perSec: number;
  cpuUsPerRecord: number;
}

async function measureDelivery(run: () => Promise<void>): Promise<Delivery> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: (N / ms) * 1000, cpuUsPerRecord: (cpu.user + cpu.system) / N };
}

/** Writes in chunks, keeping at most ~2 s worth of records pending, then flushes. */
async function feed(sink: PredictionSink, recs: PredictionRecord[]): Promise<void> {
  for (let i = 0; i < recs.length; i += CHUNK) {
    for (let j = i; j < Math.min(i + CHUNK, recs.length); j++) sink.write(recs[j]!);
    while (sink.stats().pending > 40_000) await new Promise((r) => setTimeout(r, 1));
    await yieldLoop();
  }
  await sink.flush();
}

/** Sends `messages` in batches of BATCH over IN_FLIGHT lanes with `send`, measured. */
function lanes(messages: PredictionMessage[], send: (batch: PredictionMessage[]) => Promise<unknown>): Promise<Delivery> {
  return measureDelivery(async () => {
    let next = 0;
    const lane = async () => {
      while (next < messages.length) {
        const batch = messages.slice(next, next + BATCH);
        next += BATCH;
        await send(batch);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  });
}

async function rawKafkajs(messages: PredictionMessage[]): Promise<Delivery> {
  const kafka = new Kafka({ clientId: 'bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const topic = topicName();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  await admin.disconnect();
  const result = await lanes(messages, (batch) =>
    producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: batch }),
  );
  await producer.disconnect();
  return result;
}

/** The sink's client alone: key and value to bytes in the send path (as the sink does), nothing else. */
async function rawPlatformatic(messages: PredictionMessage[], compression: KafkaCompression): Promise<Delivery> {
  const base = { clientId: 'bench', bootstrapBrokers: BROKERS };
  const topic = topicName();
  const admin = new Admin(base);
  await admin.createTopics({ topics: [topic], partitions: 3 });
  await admin.close();
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...base, acks: ProduceAcks.ALL, compression, partitioner: javaCompatiblePartitioner,
  });
  await producer.metadata({ topics: [topic] });
  const header = new Map([[Buffer.from('content-type'), Buffer.from('application/cloudevents+json; charset=UTF-8')]]);
  const result = await lanes(messages, (batch) =>
    producer.send({
      messages: batch.map((m) => ({ topic, key: Buffer.from(m.key), value: Buffer.from(m.value), headers: header })),
    }),
  );
  await producer.close();
  return result;
}

async function kafkaSinkRun(
  recs: PredictionRecord[],
  walDir: string,
  compression: KafkaCompression,
): Promise<{ delivery: Delivery; writeNs: number }> {
  const sink = createKafkaSink({
    brokers: BROKERS, topic: topicName(), cell: 'bench', walDir, batchSize: BATCH, maxInFlight: IN_FLIGHT, compression,
  });
  // Connect and create the topic outside the measurement.
  while (sink.mode === 'starting') await new Promise((r) => setTimeout(r, 10));
  const delivery = await measureDelivery(() => feed(sink, recs));
  if (sink.stats().spilled > 0) console.warn(`kafka sink spilled ${sink.stats().spilled} records during the run`);
  const writeNs = await writeCost((r) => sink.write(r), recs.slice(0, 20_000));
  await sink.shutdown();
  return { delivery, writeNs };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const rows = new Map<string, number[]>();
  const add = (k: string, v: number) => rows.set(k, [...(rows.get(k) ?? []), v]);
  for (let round = 0; round < ROUNDS; round++) {
    const recs = records(round);
    const scratch = await mkdtemp(join(tmpdir(), 'sibyl-sink-bench-'));
    const arr: PredictionRecord[] = [];
    add('write ns: array push (baseline)', await writeCost((r) => arr.push(r), recs));
    const nul = createNullSink();
    add('write ns: null sink', await writeCost((r) => nul.write(r), recs));

    const cpu0 = process.cpuUsage();
    const messages = recs.map((r) => predictionMessage(r, 'bench'));
    const cpu = process.cpuUsage(cpu0);
    add('cpu µs/record: serialization alone (ProtoJSON + CloudEvent)', (cpu.user + cpu.system) / N);
    if (round === 0) {
      const bytes = messages.reduce((n, m) => n + Buffer.byteLength(m.value), 0) / messages.length;
      const batch = Buffer.from(messages.slice(0, BATCH).map((m) => m.key + m.value).join(''));
      const ratio = batch.length / gzipSync(batch).length;
      console.error(`mean CloudEvent value: ${Math.round(bytes)} bytes; a ${BATCH}-record batch gzips ${ratio.toFixed(1)}:1`);
    }
    for (const compression of ['none', 'gzip'] as const) {
      const raw = await rawPlatformatic(messages, compression);
      add(`delivered/s: raw @platformatic/kafka ${compression} (baseline)`, raw.perSec);
      add(`cpu µs/record: raw @platformatic/kafka ${compression} (baseline)`, raw.cpuUsPerRecord);
    }
    const js = await rawKafkajs(messages);
    add('delivered/s: raw kafkajs gzip (former client)', js.perSec);
    add('cpu µs/record: raw kafkajs gzip (former client)', js.cpuUsPerRecord);

    for (const compression of ['none', 'gzip'] as const) {
      const k = await kafkaSinkRun(recs, join(scratch, `wal-${compression}`), compression);
      add(`write ns: kafka sink ${compression}`, k.writeNs);
      add(`delivered/s: kafka sink ${compression}`, k.delivery.perSec);
      add(`cpu µs/record: kafka sink ${compression} (incl. serialization)`, k.delivery.cpuUsPerRecord);
    }

    const file = createFileSink({ dir: join(scratch, 'files') });
    const f = await measureDelivery(() => feed(file, recs));
    add('write ns: file sink', await writeCost((r) => file.write(r), recs.slice(0, 20_000)));
    await file.shutdown();
    add('delivered/s: file sink', f.perSec);
    add('cpu µs/record: file sink', f.cpuUsPerRecord);
    await rm(scratch, { recursive: true, force: true });
    console.error(`round ${round + 1}/${ROUNDS} done`);
  }
  console.log(`prediction-log sinks: ${N} records per round, ${ROUNDS} rounds, median round`);
  for (const [name, values] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
    const m = median(values);
    console.log(`${name.padEnd(60)} ${m >= 1000 ? Math.round(m).toLocaleString('en') : m.toFixed(2)}`);
  }
}

await main();
