/**
 * What the write-ahead prediction log costs a request, against the sinks of a baseline checkout, in one run.
 *
 *   node loadtest/micro/wal.bench.ts [--baseline DIR] [--main-thread] [--records 20000] [--rate 2000] [--rounds 3]
 *
 * Per sink (Kafka against the real broker, and the file sink), records are written at a fixed rate (one tick a
 * millisecond), as a gateway at that many predictions per second would:
 *   write() µs    each call timed on its own: p50 / p99 / p99.9 / max. This is what a request waits for: the sink
 *                 is called before the answer is sent.
 *   CPU µs/record the process's CPU (every thread) from the first write until everything is acknowledged (file
 *                 sink: written), divided by the records: write() plus everything the sink does afterwards; and
 *                 of it, the event loop's thread alone.
 *   timer late    p99 and max lateness of a 1 ms timer over the run: how long the sink held the loop at once.
 * `--main-thread` adds this tree's Kafka sink with its client on the event loop (`producerThread: 'main'`).
 * Arms alternate within a round (order swapped every round); the median round is reported. `--baseline DIR` is a
 * checkout of an earlier revision (e.g. .data/ab/<sha> from loadtest/ab.sh); without it only this tree runs.
 * Then the parts of this tree's write(), measured alone over the same records: serialization (record JSON and
 * CloudEvent, which the baseline also pays, after the answer), the log line, one write(2) to the page cache, and
 * for comparison the group commit this design did not take (lines buffered and written together every 5 ms).
 *
 * Needs the broker (scripts/services/kafka.sh start; SIBYL_TEST_KAFKA_BROKERS or 127.0.0.1:19092).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import { walLine } from '../../gateway/log/wal-line.ts';
import type { PredictionSink } from '../../gateway/log/prediction-sink.ts';
import type { PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { etaRecords } from './eta-records.ts';

const { values: flags } = parseArgs({
  options: {
    baseline: { type: 'string' },
    records: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'main-thread': { type: 'boolean', default: false },
  },
});
const N = Number(flags.records);
const RATE = Number(flags.rate);
const ROUNDS = Number(flags.rounds);
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const scratch = mkdtempSync(join(tmpdir(), 'sibyl-wal-bench-'));
let runs = 0;

interface SinkModules {
  kafka(dir: string, topic: string): PredictionSink & { readonly mode?: string };
  file(dir: string): PredictionSink;
}

/**
 * The sink factories of a checkout; the log directory is passed under both option names (spillDir before), and
 * `extra` to the Kafka sink (e.g. `producerThread`).
 */
async function sinksOf(root: string, extra: Record<string, unknown> = {}): Promise<SinkModules> {
  const k = (await import(join(root, 'gateway/log/kafka-sink.ts'))) as { createKafkaSink(o: Record<string, unknown>): PredictionSink & { mode: string } };
  const f = (await import(join(root, 'gateway/log/file-sink.ts'))) as { createFileSink(o: Record<string, unknown>): PredictionSink };
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };
  return {
    kafka: (dir, topic) => k.createKafkaSink({ brokers: BROKERS, topic, cell: 'bench', walDir: dir, spillDir: dir, logger: quiet, ...extra }),
    file: (dir) => f.createFileSink({ dir, logger: quiet }),
  };
}

interface Result {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  cpuUs: number;
  /** The event loop's thread alone (process.threadCpuUsage), µs per record. */
  mainCpuUs: number;
  /** Lateness of a 1 ms timer over the run (monitorEventLoopDelay), p99 and max, ms: the sink's stalls of the loop. */
  loopP99Ms: number;
  loopMaxMs: number;
}

/** Writes the records at RATE per second, timing each call; waits until the sink has everything. */
async function run(sink: PredictionSink, recs: PredictionRecord[], done: () => boolean): Promise<Result> {
  const calls = new Float64Array(recs.length);
  const perTick = RATE / 1000;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const main0 = process.threadCpuUsage();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  while (i < recs.length) {
    const due = Math.min(recs.length, Math.floor((performance.now() - t0) * perTick) + 1);
    for (; i < due; i++) {
      const a = process.hrtime.bigint();
      sink.write(recs[i]!);
      calls[i] = Number(process.hrtime.bigint() - a) / 1000;
    }
    await sleep(1);
  }
  await sink.flush();
  while (!done()) await sleep(1);
  const cpu = process.cpuUsage(cpu0);
  const main = process.threadCpuUsage(main0);
  loop.disable();
  calls.sort();
  const q = (p: number) => calls[Math.min(calls.length - 1, Math.floor(p * calls.length))]!;
  return {
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    max: calls[calls.length - 1]!,
    cpuUs: (cpu.user + cpu.system) / recs.length,
    mainCpuUs: (main.user + main.system) / recs.length,
    loopP99Ms: loop.percentile(99) / 1e6,
    loopMaxMs: loop.max / 1e6,
  };
}

async function kafkaArm(m: SinkModules, recs: PredictionRecord[]): Promise<Result> {
  const sink = m.kafka(join(scratch, `k${runs++}`), `bench-wal-${process.pid}-${runs}`);
  for (let t = 0; sink.mode === 'starting' && t < 3000; t++) await sleep(10);
  // The topic's first writes are slower: warm it up outside the measurement.
  for (const r of recs.slice(0, 200)) sink.write(r);
  await sink.flush();
  const base = sink.stats().delivered;
  const result = await run(sink, recs, () => sink.stats().delivered - base >= recs.length);
  await sink.shutdown();
  return result;
}

async function fileArm(m: SinkModules, recs: PredictionRecord[]): Promise<Result> {
  const sink = m.file(join(scratch, `f${runs++}`));
  const result = await run(sink, recs, () => sink.stats().delivered >= recs.length);
  await sink.shutdown();
  return result;
}

/** The parts of this tree's write(), each over the same records. */
function parts(recs: PredictionRecord[]): Record<string, number> {
  const fd = openSync(join(scratch, `parts-${runs++}`), 'a');
  const cpu = (f: () => void) => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / recs.length;
  };
  const values = recs.map((r) => predictionMessage(r, 'bench').value);
  const lines = recs.map((r, i) => walLine(r.requestId, values[i]!));
  const out = {
    'serialization: record JSON + CloudEvent': cpu(() => recs.forEach((r) => predictionMessage(r, 'bench'))),
    'log line (key, tab, event) as bytes': cpu(() => recs.forEach((r, i) => walLine(r.requestId, values[i]!))),
    'write(2) of one line': cpu(() => lines.forEach((l) => writeSync(fd, l))),
    'group commit (the alternative): 5 ms of lines in one write(2)': cpu(() => {
      const per = Math.max(1, Math.round((RATE * 5) / 1000));
      for (let i = 0; i < lines.length; i += per) writeSync(fd, Buffer.concat(lines.slice(i, i + per)));
    }),
  };
  closeSync(fd);
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const arms: { name: string; m: SinkModules }[] = [];
if (flags.baseline) arms.push({ name: `baseline (${flags.baseline})`, m: await sinksOf(resolve(flags.baseline)) });
arms.push({ name: 'this tree', m: await sinksOf(resolve(import.meta.dirname, '../..')) });
if (flags['main-thread']) arms.push({ name: 'this tree, Kafka client on the event loop', m: await sinksOf(resolve(import.meta.dirname, '../..'), { producerThread: 'main' }) });
const results = new Map<string, Result[]>();
const partResults = new Map<string, number[]>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    const recs = etaRecords(N, round);
    const order = round % 2 === 0 ? arms : [...arms].reverse();
    for (const kind of ['kafka', 'file'] as const) {
      for (const arm of order) {
        const r = kind === 'kafka' ? await kafkaArm(arm.m, recs) : await fileArm(arm.m, recs);
        const key = `${kind} sink, ${arm.name}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        console.error(
          `round ${round + 1} ${key}: write() p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} p99.9 ${r.p999.toFixed(1)} max ${r.max.toFixed(0)} µs; CPU ${r.cpuUs.toFixed(2)} µs/record (event loop's thread ${r.mainCpuUs.toFixed(2)}); 1 ms timer late p99 ${r.loopP99Ms.toFixed(2)} max ${r.loopMaxMs.toFixed(2)} ms`,
        );
      }
    }
    for (const [k, v] of Object.entries(parts(recs))) partResults.set(k, [...(partResults.get(k) ?? []), v]);
  }
  console.log(`write-ahead prediction log: ${N} records at ${RATE}/s per arm, ${ROUNDS} rounds, medians over rounds`);
  console.log('| sink | write() p50 µs | p99 µs | p99.9 µs | max µs | CPU µs/record | of it on the event loop | 1 ms timer late p99 / max ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [key, rs] of results) {
    const m = (f: (r: Result) => number) => median(rs.map(f));
    console.log(
      `| ${key} | ${m((r) => r.p50).toFixed(2)} | ${m((r) => r.p99).toFixed(2)} | ${m((r) => r.p999).toFixed(1)} | ${m((r) => r.max).toFixed(0)} | ${m((r) => r.cpuUs).toFixed(2)} | ${m((r) => r.mainCpuUs).toFixed(2)} | ${m((r) => r.loopP99Ms).toFixed(2)} / ${m((r) => r.loopMaxMs).toFixed(2)} |`,
    );
  }
  console.log('\n| part of write() (this tree) | CPU µs/record |\n| --- | ---: |');
  for (const [k, v] of partResults) console.log(`| ${k} | ${median(v).toFixed(2)} |`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
