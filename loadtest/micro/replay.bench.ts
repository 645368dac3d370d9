/**
 * How much replaying the prediction log's backlog blocks the event loop, against the sink of a baseline checkout.
 *
 *   node loadtest/micro/replay.bench.ts [--baseline DIR] [--records 30000] [--rounds 3]
 *
 * Per round and sink: a sink with no reachable broker takes `records` records (they go to its local log), shuts
 * down; a new sink on the same directory with the real broker replays them. Meanwhile a 1 ms interval timer
 * stands in for live traffic and records how late each of its turns came, until everything is acknowledged.
 * Reported: the longest stretch of main-thread CPU between two of its turns (the longest synchronous work: on a
 * shared machine a late turn is often the process waiting for a core, which this does not count), the longest
 * and 99th percentile lateness as seen (both causes), turns later than 20 ms (the gateway's admission refuses work
 * past a smoothed lag of 30 ms) and the replay's records/s.
 * `--baseline DIR` is a checkout of an earlier revision (its log directory option was `spillDir`).
 *
 * Needs the broker (scripts/services/kafka.sh start; SIBYL_TEST_KAFKA_BROKERS or 127.0.0.1:19092).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PredictionSink } from '../../gateway/log/prediction-sink.ts';
import { etaRecords } from './eta-records.ts';

const { values: flags } = parseArgs({
  options: { baseline: { type: 'string' }, records: { type: 'string', default: '30000' }, rounds: { type: 'string', default: '3' } },
});
const N = Number(flags.records);
const ROUNDS = Number(flags.rounds);
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const scratch = mkdtempSync(join(tmpdir(), 'sibyl-replay-bench-'));
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
let runs = 0;

type Factory = (o: Record<string, unknown>) => PredictionSink & { mode: string };

async function factoryOf(root: string): Promise<Factory> {
  const k = (await import(join(root, 'gateway/log/kafka-sink.ts'))) as { createKafkaSink: Factory };
  return k.createKafkaSink;
}

interface Result {
  maxCpuMs: number;
  maxBlockMs: number;
  p99LateMs: number;
  turnsOver20: number;
  perSec: number;
}

async function round(create: Factory, round: number): Promise<Result> {
  const dir = join(scratch, `r${runs++}`);
  const topic = `bench-replay-${process.pid}-${runs}`;
  const common = { topic, cell: 'bench', walDir: dir, spillDir: dir, logger: quiet, partitions: 3 };
  const down = create({ ...common, brokers: ['127.0.0.1:1'], retryBackoffMs: 60_000 });
  for (const r of etaRecords(N, round)) down.write(r);
  await down.flush();
  await down.shutdown();
  await sleep(200);

  const late: number[] = [];
  let maxCpuMs = 0;
  let last = performance.now();
  let lastCpu = process.threadCpuUsage();
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = process.threadCpuUsage();
    late.push(now - last - 1);
    maxCpuMs = Math.max(maxCpuMs, (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000);
    last = now;
    lastCpu = cpu;
  }, 1);
  const t0 = performance.now();
  const up = create({ ...common, brokers: BROKERS });
  while (up.stats().delivered < N) await sleep(5);
  const ms = performance.now() - t0;
  clearInterval(probe);
  await up.shutdown();
  late.sort((a, b) => a - b);
  return {
    maxCpuMs,
    maxBlockMs: late.at(-1) ?? 0,
    p99LateMs: late[Math.floor(late.length * 0.99)] ?? 0,
    turnsOver20: late.filter((l) => l > 20).length,
    perSec: (N / ms) * 1000,
  };
}

const arms: { name: string; create: Factory }[] = [];
if (flags.baseline) arms.push({ name: `baseline (${flags.baseline})`, create: await factoryOf(resolve(flags.baseline)) });
arms.push({ name: 'this tree', create: await factoryOf(resolve(import.meta.dirname, '../..')) });
const results = new Map<string, Result[]>();
// The sinks' and the client's timers do not hold the process open; this does, until the end.
const alive = setInterval(() => {}, 1000);
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const arm of r % 2 === 0 ? arms : [...arms].reverse()) {
      const res = await round(arm.create, r);
      results.set(arm.name, [...(results.get(arm.name) ?? []), res]);
      console.error(`round ${r + 1} ${arm.name}: longest main-thread CPU between turns ${res.maxCpuMs.toFixed(1)} ms, longest lateness ${res.maxBlockMs.toFixed(1)} ms, p99 ${res.p99LateMs.toFixed(2)} ms, ${res.turnsOver20} turns > 20 ms, ${Math.round(res.perSec)} records/s`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`replay of ${N} records left by a sink without a broker, ${ROUNDS} rounds, medians`);
  console.log('| sink | longest CPU between turns ms | longest lateness ms | p99 lateness ms | turns > 20 ms | records/s |\n| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, rs] of results) {
    const m = (f: (r: Result) => number) => median(rs.map(f));
    console.log(`| ${name} | ${m((r) => r.maxCpuMs).toFixed(1)} | ${m((r) => r.maxBlockMs).toFixed(1)} | ${m((r) => r.p99LateMs).toFixed(2)} | ${m((r) => r.turnsOver20)} | ${Math.round(m((r) => r.perSec))} |`);
  }
} finally {
  clearInterval(alive);
  rmSync(scratch, { recursive: true, force: true });
}
