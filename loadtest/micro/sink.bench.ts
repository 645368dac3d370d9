/**
 * Prediction-log sinks, side by side in one run:
 *   write()      ns per call (the request path's cost), measured around chunks of 1000 calls:
 *                array push (baseline) | null sink | file sink | kafka sink
 *   delivered    records/s from the first write until the destination acked everything, and CPU µs per record
 *                (process.cpuUsage, all of the process' threads): raw kafkajs (baseline: pre-serialized batches,
 *                same batch size, gzip, acks=all, same sends in flight) | kafka sink | file sink
 * Needs the real broker (scripts/services/kafka.sh start; SIBYL_TEST_KAFKA_BROKERS or 127.0.0.1:19092).
 * Rounds are interleaved; the median round is reported.
 *
 * Run: node loadtest/micro/sink.bench.ts [recordsPerRound=100000] [rounds=3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import { createFileSink } from '../../gateway/log/file-sink.ts';
import { createKafkaSink } from '../../gateway/log/kafka-sink.ts';
import { createNullSink } from '../../gateway/log/null-sink.ts';
import type { PredictionSink } from '../../gateway/log/prediction-sink.ts';
import { PredictionRecordSchema, Role } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';
import type { PredictionRecord } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CHUNK = 1000;
const BATCH = 500;
const IN_FLIGHT = 4;
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
let topicSeq = 0;
const topicName = () => `bench-predictions-${process.pid}-${topicSeq++}`;

function records(round: number): PredictionRecord[] {
  const t = Date.now();
  return Array.from({ length: N }, (_, i) =>
    create(PredictionRecordSchema, {
      predictionId: `bench-${round}-${i}`,
      requestId: `req-${round}-${i >> 1}`,
      time: timestampFromMs(t + i),
      cell: 'bench',
      model: 'fraud',
      version: '3',
      role: Role.LIVE,
      rows: [
        {
          entities: { user: `u${i % 1000}` },
          features: {
            amount: { kind: { case: 'numberValue', value: i * 0.5 } },
            country: { kind: { case: 'stringValue', value: 'NL' } },
            age_days: { kind: { case: 'numberValue', value: 412 } },
          },
          outputs: { score: { kind: { case: 'numberValue', value: 0.173 } } },
        },
      ],
      modelLatencyUs: 85n,
      totalLatencyUs: 310n,
    }),
  );
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

async function rawKafkajs(recs: PredictionRecord[]): Promise<Delivery> {
  const kafka = new Kafka({ clientId: 'bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const topic = topicName();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  await admin.disconnect();
  const messages = recs.map((r) => predictionMessage(r, 'bench'));
  const result = await measureDelivery(async () => {
    let next = 0;
    const lane = async () => {
      while (next < messages.length) {
        const batch = messages.slice(next, next + BATCH);
        next += BATCH;
        await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: batch });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  });
  await producer.disconnect();
  return result;
}

async function kafkaSinkRun(recs: PredictionRecord[], spillDir: string): Promise<{ delivery: Delivery; writeNs: number }> {
  const sink = createKafkaSink({
    brokers: BROKERS, topic: topicName(), cell: 'bench', spillDir, batchSize: BATCH, maxInFlight: IN_FLIGHT,
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

    const raw = await rawKafkajs(recs);
    add('delivered/s: raw kafkajs (baseline)', raw.perSec);
    add('cpu µs/record: raw kafkajs (baseline, pre-serialized)', raw.cpuUsPerRecord);

    const k = await kafkaSinkRun(recs, join(scratch, 'spill'));
    add('write ns: kafka sink', k.writeNs);
    add('delivered/s: kafka sink', k.delivery.perSec);
    add('cpu µs/record: kafka sink (incl. serialization)', k.delivery.cpuUsPerRecord);

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
    console.log(`${name.padEnd(56)} ${m >= 1000 ? Math.round(m).toLocaleString('en') : m.toFixed(2)}`);
  }
}

await main();
