/**
 * What handing one batch of the prediction log to the Kafka producer's thread costs the event loop
 * (gateway/log/kafka-producer-thread.ts), per batch of write-ahead log lines as the sink sends them:
 *   messages   each line split into key and value (messageOfLine), the messages packed apart (packBatch), posted
 *              (the sink's direct sends before `sendLines`; replay's batches still go this way)
 *   lines, new the lines copied back to back into a new buffer (packLines), posted
 *   lines      the same into a buffer the worker handed back (the steady state of `sendLines`)
 * Each batch is timed on its own (the loop is held for that long at once); the worker takes every buffer and hands
 * the lines' buffers back, as the producer's worker does once Kafka acknowledged them. Records like the gateway's
 * (delivery-eta: 20 features, 3 entities, ~1.1 KB lines). Arms alternate per round; medians over rounds.
 *
 * Run: node loadtest/micro/producer-handoff.bench.ts [batch=300] [batches=200] [rounds=5]
 */
import { Worker } from 'node:worker_threads';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import { packBatch, packLines } from '../../gateway/log/kafka-producer-thread.ts';
import { messageOfLine, walLine } from '../../gateway/log/wal-line.ts';
import { median } from '../lib/histogram.ts';
import { etaRecords } from './eta-records.ts';

const BATCH = Number(process.argv[2] ?? 300);
const BATCHES = Number(process.argv[3] ?? 200);
const ROUNDS = Number(process.argv[4] ?? 5);

const lines = etaRecords(BATCH * 8, 1).map((r) => walLine(r.requestId, predictionMessage(r, 'cell-a').value));
const worker = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (m) => parentPort.postMessage(m.data ? { data: m.data } : {}, m.data ? [m.data] : []));`,
  { eval: true },
);
const free: ArrayBuffer[] = [];
let handedBack = 0;
worker.on('message', (m: { data?: ArrayBuffer }) => {
  handedBack++;
  if (m.data && free.length < 8) free.push(m.data);
});

type Arm = (batch: Buffer[]) => void;
const arms: Record<string, Arm> = {
  messages: (batch) => {
    const { batch: buf, headers } = packBatch(batch.map((l) => messageOfLine(l, 0, l.length - 1)!));
    worker.postMessage({ batch: buf, headers }, [buf]);
  },
  'lines, new': (batch) => {
    const { data, ends } = packLines(batch);
    worker.postMessage({ ends }, [data, ends]);
  },
  lines: (batch) => {
    const { data, ends } = packLines(batch, free);
    worker.postMessage({ data, ends }, [data, ends]);
  },
};

const results = new Map<string, { p50: number[]; p99: number[]; max: number[] }>();
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? Object.keys(arms) : Object.keys(arms).reverse();
  for (const name of order) {
    const arm = arms[name]!;
    const times: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const start = (b * BATCH) % (lines.length - BATCH);
      const batch = lines.slice(start, start + BATCH);
      const t0 = process.hrtime.bigint();
      arm(batch);
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
      // Let the worker's answers (and handed-back buffers) arrive, as between the sink's batches.
      await new Promise((r) => setImmediate(r));
      if (b % 8 === 7) await new Promise((r) => setTimeout(r, 1));
    }
    times.sort((a, b) => a - b);
    const r = results.get(name) ?? { p50: [], p99: [], max: [] };
    r.p50.push(times[Math.floor(times.length / 2)]!);
    r.p99.push(times[Math.floor(times.length * 0.99)]!);
    r.max.push(times.at(-1)!);
    results.set(name, r);
    process.stderr.write(`round ${round + 1} ${name}: p50 ${r.p50.at(-1)!.toFixed(1)} µs, p99 ${r.p99.at(-1)!.toFixed(1)} µs per batch\n`);
  }
}
await worker.terminate();
console.log(`Handing a batch of ${BATCH} log lines (~${Math.round(lines[0]!.length / 100) / 10} KB each) to the producer's thread, the event loop's time per batch, µs (medians of ${ROUNDS} rounds of ${BATCHES} batches; ${handedBack} answers)`);
console.log('| how | p50 | p99 | max |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, r] of results) console.log(`| ${name} | ${median(r.p50).toFixed(1)} | ${median(r.p99).toFixed(1)} | ${median(r.max).toFixed(1)} |`);
