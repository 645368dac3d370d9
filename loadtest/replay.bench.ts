/**
 * Replay throughput on one core (run it pinned: `taskset -c 1 node loadtest/replay.bench.ts`): delivery-eta
 * version 2 (250 trees) as the candidate, on logged version-1 records of one row each (20 features, 3 entities,
 * CloudEvents as the Kafka sink writes them: gateway/log/cloud-event.ts), the features cycling through the 50
 * rows of expected.json.
 * - engine: the values from memory through replay/replay.ts (parse, inline rows, execute(), compare);
 * - kafka: the same records produced to a fresh topic of the test broker (SIBYL_TEST_KAFKA_BROKERS, default
 *   127.0.0.1:19092), then read back and replayed by replay/run-replay.ts with a consumer group of its own.
 * Prints rows/s (wall clock) and CPU µs per row of this process. The broker runs beside it (on this machine's
 * other core when pinned), as it would on its own host.
 *
 * Run: [taskset -c 1] node loadtest/replay.bench.ts [records=100000] [engine|kafka|both] [batchRows=256]
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Admin, Producer, stringSerializers } from '@platformatic/kafka';
import { predictionMessage } from '../gateway/log/cloud-event.ts';
import { micros, recordTime, type PredictionRecord } from '../gateway/log/prediction-record.ts';
import { zipDirectory } from '../runtimes/bundle/zip-dir.ts';
import { loadCandidate } from '../replay/candidate.ts';
import { replay } from '../replay/replay.ts';
import { runReplay } from '../replay/run-replay.ts';

const N = Number(process.argv[2] ?? 100_000);
const WHAT = process.argv[3] ?? 'both';
const BATCH = Number(process.argv[4] ?? 256);
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const models = new URL('../models/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(`${models}delivery-eta/1/expected.json`, 'utf8')) as {
  rows: { entities: Record<string, string>; features: Record<string, number>; expected: { eta_minutes: number } }[];
};

function values(n: number): string[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const r = expected.rows[i % expected.rows.length]!;
    const record: PredictionRecord = {
      predictionId: randomUUID(),
      requestId: randomUUID(),
      time: recordTime(now - n + i),
      cell: 'bench',
      model: 'delivery-eta',
      version: '1',
      role: 'ROLE_LIVE',
      arm: '',
      rows: [{ entities: r.entities, features: r.features, outputs: { eta_minutes: r.expected.eta_minutes }, defaultedFeatures: [] }],
      modelLatencyUs: micros(0.2),
      totalLatencyUs: micros(0.9),
    };
    return predictionMessage(record, 'bench').value;
  });
}

function report(name: string, rows: number, ms: number, cpu: NodeJS.CpuUsage): void {
  const us = (cpu.user + cpu.system) / rows;
  console.log(`${name}: ${rows} rows in ${(ms / 1000).toFixed(2)} s = ${Math.round((rows / ms) * 1000)} rows/s, ${us.toFixed(1)} µs CPU/row (batch ${BATCH})`);
}

const zip = await zipDirectory(`${models}delivery-eta/2`);
const logged = values(N);

if (WHAT === 'engine' || WHAT === 'both') {
  const candidate = await loadCandidate(zip);
  try {
    // Warm-up: the session and the JIT.
    await replay(candidate.version, (async function* () { yield logged.slice(0, 5000); })(), { model: 'delivery-eta', batchRows: BATCH });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await replay(candidate.version, (async function* () { for (let i = 0; i < logged.length; i += 1024) yield logged.slice(i, i + 1024); })(), { model: 'delivery-eta', batchRows: BATCH });
    report('engine (from memory)', r.rows, performance.now() - t0, process.cpuUsage(c0));
  } finally {
    await candidate.close();
  }
}

if (WHAT === 'kafka' || WHAT === 'both') {
  const topic = `sibyl.bench.replay.${randomUUID()}`;
  const admin = new Admin({ clientId: 'replay-bench', bootstrapBrokers: BROKERS });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  const producer = new Producer({ clientId: 'replay-bench', bootstrapBrokers: BROKERS, serializers: stringSerializers, acks: -1 });
  for (let i = 0; i < logged.length; i += 2000) {
    await producer.send({ messages: logged.slice(i, i + 2000).map((value, k) => ({ topic, key: String(i + k), value })) });
  }
  await producer.close();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runReplay(zip, { model: 'delivery-eta', brokers: BROKERS, topic, batchRows: BATCH });
  report('kafka (read from the broker, candidate load included)', r.rows, performance.now() - t0, process.cpuUsage(c0));
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.close();
}
