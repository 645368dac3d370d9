#!/usr/bin/env node
/**
 * The gateway's event-loop long tasks under a steady open-loop load: which code held the loop, and for how long
 * (loadtest/lib/long-tasks.ts reads them from a V8 CPU profile taken through the inspector).
 *
 *   node loadtest/long-tasks.ts [--a DIR] [--rate N | --fraction 0.5] [--seconds 10] [--rounds 1]
 *       [--threshold 0.2] [--interval 100] [--log on|off] [--protocol sibyl-rest] [--mix eta-store]
 *       [--node-flags=--single-threaded-gc] [--no-profile] [--heap | --allocations] [--sampler realtime|normal] [--settle S]
 *       [--env K=V ...] [--a-env K=V ...]
 *
 * Default scenario: S1 of the suite (Sibyl REST, delivery-eta with 13 features from Redis, Kafka log on) at half of
 * its max rate, measured first with a closed loop (48 concurrent, 5 s) on the first arm. Each gateway runs with
 * `--inspect` on the server core (1), the generator on core 0 (vegeta when installed). Per arm and round: 2 s of
 * unprofiled warm-up at the rate, then the profiler on (`--interval` µs) for `--seconds` at the rate. Printed per
 * run: the client's and the gateway's own p99 (its histogram), GC pauses (its v8js_gc_duration_seconds), and the
 * long-task report, with how many samples came late. V8's sampling thread runs in the real-time class (`--sampler
 * normal` leaves it): in the normal class on the gateway's busy core it waited its turn, and 705 gaps of more than
 * 1 ms, 1.9 s of 11.2 s profiled, were charged to whatever ran next (S1 at 4,500/s), which made a 0.11 ms copy look
 * like a 15 ms task; real-time, 45 gaps, 0.11 s. The sampler's work then lands on the gateway's core, so a profiled
 * run's latencies are higher than an unprofiled one's (`--no-profile`).
 * `--settle S` waits S seconds without load after the gateways start (to tell start-up work from warm-up by traffic).
 * `--a DIR` adds a second checkout (e.g. .data/ab/<sha> from loadtest/ab.sh) as arm A, run before this tree (B) in
 * each round, the order swapped every round. Profiles and the report go to loadtest/results/tmp/long-tasks-<time>/.
 *
 * Needs Redis and the Kafka broker of scripts/services (started here, and placed as the suite places them:
 * lib/bench-services.ts) and the seeded feature population.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunSpec } from './generate.ts';
import { longTaskReport, renderLongTasks, type CpuProfile } from './lib/long-tasks.ts';
import { bucketQuantileMs, scrapeBuckets, type Buckets } from './lib/metrics.ts';
import { assertPortsFree, promoteV8Sampler, startChild, waitHttpOk, type Child } from './lib/processes.ts';
import type { Mix, Protocol } from './lib/requests.ts';
import { seedRedis } from './lib/seed.ts';
import { startBenchServices, type BenchServices } from './lib/bench-services.ts';
import { BENCH_PREFIX as PREFIX, BENCH_REDIS_URL as REDIS_URL, BENCH_SERVER_CORE as SERVER_CORE, benchGatewayEnv, envOfPairs, generateOnLoadCore } from './lib/bench-gateway.ts';

const { values: flags } = parseArgs({
  options: {
    a: { type: 'string' },
    rate: { type: 'string' },
    fraction: { type: 'string', default: '0.5' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '1' },
    threshold: { type: 'string', default: '0.2' },
    interval: { type: 'string', default: '100' },
    log: { type: 'string', default: 'on' },
    protocol: { type: 'string', default: 'sibyl-rest' },
    /** Extra Node/V8 flags for the gateways, space-separated (e.g. '--single-threaded-gc'). */
    'node-flags': { type: 'string', default: '' },
    /** Also sample the heap: where the objects that outlive a scavenge (promoted, or still alive) were allocated. */
    heap: { type: 'boolean', default: false },
    /** Sample every allocation instead (what a scavenge collects too): who allocates the young generation's bytes. */
    allocations: { type: 'boolean', default: false },
    /** Without the CPU profiler (its sampling costs the gateway time): only the p99s and GC pauses, e.g. for an A/B. */
    'no-profile': { type: 'boolean', default: false },
    /** `realtime` (default): V8's sampling thread in the real-time class, so that samples come on time; `normal`. */
    sampler: { type: 'string', default: 'realtime' },
    /** Seconds to wait, without load, between starting the gateways and the first run. */
    settle: { type: 'string', default: '0' },
    /** K=V: a variable for B's gateway (this tree); `--a-env` for A's. */
    env: { type: 'string', multiple: true, default: [] },
    'a-env': { type: 'string', multiple: true, default: [] },
    /** Node/V8 flags for arm A only (e.g. to compare a flag on the same checkout: --a . --a-node-flags=...). */
    'a-node-flags': { type: 'string' },
    mix: { type: 'string', default: 'eta-store' },
  },
});
const SECONDS = Number(flags.seconds);
const ROUNDS = Number(flags.rounds);
const THRESHOLD_MS = Number(flags.threshold);
const INTERVAL_US = Number(flags.interval);
const PROTOCOL = flags.protocol as Protocol;
const MIX = flags.mix as Mix;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join('loadtest', 'results', 'tmp', `long-tasks-${stamp}`);
mkdirSync(outDir, { recursive: true });
const log = (msg: string) => process.stderr.write(`[long-tasks] ${msg}\n`);

interface Arm {
  readonly name: 'A' | 'B';
  readonly dir: string;
  readonly http: number;
  readonly grpc: number;
  readonly inspect: number;
  child?: Child;
}
const arms: Arm[] = [
  ...(flags.a ? [{ name: 'A' as const, dir: resolve(flags.a), http: 27680, grpc: 27681, inspect: 27690 }] : []),
  { name: 'B', dir: resolve('.'), http: 27780, grpc: 27781, inspect: 27790 },
];

/** The K=V variables an arm's gateway gets on top of the bench's (`--a-env` for A, `--env` for B). */
function armEnv(name: string): string[] {
  return name === 'A' ? flags['a-env'] : flags.env;
}

async function startArm(arm: Arm): Promise<void> {
  arm.child = startChild(`gateway-${arm.name}`, 'node', [...((arm.name === 'A' && flags['a-node-flags'] !== undefined ? flags['a-node-flags'] : flags['node-flags']) as string).split(' ').filter(Boolean), `--inspect=127.0.0.1:${arm.inspect}`, 'gateway/main.ts'], {
    cores: SERVER_CORE,
    cwd: arm.dir,
    logFile: join(outDir, `gateway-${arm.name}.log`),
    env: { ...benchGatewayEnv({ http: arm.http, grpc: arm.grpc, dataDir: resolve(outDir, `data-${arm.name}`), log: flags.log !== 'off' }), ...envOfPairs(armEnv(arm.name)) },
  });
  await waitHttpOk(`http://127.0.0.1:${arm.http}/readyz`, 60_000, arm.child);
}

/** A Chrome DevTools Protocol session with the gateway's inspector (Node's global WebSocket). */
async function inspector(port: number): Promise<{ send(method: string, params?: object): Promise<Record<string, unknown>>; close(): void }> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise<void>((ok, fail) => {
    ws.onopen = () => ok();
    ws.onerror = () => fail(new Error(`inspector on port ${port} unreachable`));
  });
  let next = 1;
  const waiting = new Map<number, { ok: (v: Record<string, unknown>) => void; fail: (e: Error) => void }>();
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    const w = m.id === undefined ? undefined : waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id!);
    if (m.error) w.fail(new Error(m.error.message));
    else w.ok(m.result ?? {});
  };
  return {
    send(method, params = {}) {
      const id = next++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((ok, fail) => waiting.set(id, { ok, fail }));
    },
    close: () => ws.close(),
  };
}


function target(arm: Arm): string {
  return PROTOCOL.endsWith('grpc') ? `127.0.0.1:${arm.grpc}` : `http://127.0.0.1:${arm.http}`;
}

/** Pauses of one GC histogram delta: count and the sum, ms, and how many took ≥ 1 ms (bucket bounds permitting). */
function gcSummary(before: Buckets, after: Buckets): string {
  const d = (b: number) => (after.get(b) ?? 0) - (before.get(b) ?? 0);
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = d(Infinity);
  const under1 = d(0.001);
  const parts = bounds.filter((b) => b !== Infinity).map((b) => `≤${b * 1000} ms: ${d(b)}`);
  return `${total} pauses, ${total - under1} of 1 ms or more (cumulative ${parts.join(', ')})`;
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}
interface HeapProfile {
  readonly head: HeapNode;
}

/** The sampled bytes that outlived a scavenge, by allocation site (with two callers), per request served. */
function renderSurvivors(profile: HeapProfile, requests: number, title: string): string {
  const sites = new Map<string, number>();
  let total = 0;
  const frame = (n: HeapNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
  const walk = (n: HeapNode, path: readonly HeapNode[]): void => {
    const here = [...path, n];
    if (n.selfSize > 0) {
      total += n.selfSize;
      const key = here.slice(-3).reverse().map(frame).join(' ← ');
      sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(profile.head, []);
  const rows = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 40);
  return [
    `### ${title}: ${Math.round(total / 1024)} KiB sampled, ${Math.round(total / Math.max(1, requests))} B per request`,
    '',
    '| allocated at (← callers) | KiB | B/request |',
    '| --- | ---: | ---: |',
    ...rows.map(([k, v]) => `| ${k} | ${Math.round(v / 1024)} | ${Math.round(v / Math.max(1, requests))} |`),
    '',
  ].join('\n');
}

async function measure(arm: Arm, rate: number, round: number): Promise<string> {
  const base = `http://127.0.0.1:${arm.http}`;
  const open = (durationS: number, warmupS: number): RunSpec => ({ name: `long-tasks ${arm.name}`, target: target(arm), protocol: PROTOCOL, mix: MIX, mode: 'open', steps: [{ rate, durationS }], warmupS, tool: 'go' });
  await generateOnLoadCore(open(2, 0));
  const session = await inspector(arm.inspect);
  await session.send('Profiler.enable');
  await session.send('Profiler.setSamplingInterval', { interval: INTERVAL_US });
  const req0 = await scrapeBuckets(base, 'sibyl_request_duration_seconds');
  const gc0 = await scrapeBuckets(base, 'v8js_gc_duration_seconds');
  const sampleHeap = flags.heap || flags.allocations;
  if (sampleHeap) {
    await session.send('HeapProfiler.enable');
    // Samples that a scavenge collects are dropped unless --allocations; those a mark-compact collects (they were
    // promoted first) are kept.
    await session.send('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: flags.allocations });
  }
  const profiling = !flags['no-profile'];
  if (profiling) await session.send('Profiler.start');
  // V8 samples from a thread of its own, started with the profiler. Left in the normal class on the gateway's busy
  // core, it waits for its turn, often milliseconds, and each late sample is charged with the whole gap (lib/long-tasks.ts).
  const sampler = profiling && flags.sampler === 'realtime' && arm.child ? (promoteV8Sampler(arm.child.pid) ? 'real-time' : 'normal (could not be raised)') : profiling ? 'normal' : 'off';
  const result = await generateOnLoadCore(open(SECONDS, 0));
  const profile = profiling ? ((await session.send('Profiler.stop')) as unknown as { profile: CpuProfile }).profile : undefined;
  const heap = sampleHeap ? ((await session.send('HeapProfiler.stopSampling')) as unknown as { profile: HeapProfile }).profile : undefined;
  const req1 = await scrapeBuckets(base, 'sibyl_request_duration_seconds');
  const gc1 = await scrapeBuckets(base, 'v8js_gc_duration_seconds');
  session.close();
  const file = join(outDir, `${arm.name}-round${round + 1}.cpuprofile`);
  if (profile) writeFileSync(file, JSON.stringify(profile));
  if (heap) writeFileSync(join(outDir, `${arm.name}-round${round + 1}.heapprofile`), JSON.stringify(heap));
  const s = result.steps[0]!;
  const q = (p: number) => bucketQuantileMs(p, req0, req1);
  const head = [
    `${arm.name} (${arm.dir}), round ${round + 1}: ${PROTOCOL} ${MIX}, log ${flags.log}${armEnv(arm.name).length ? ` (then ${armEnv(arm.name).join(' ')})` : ''}, ${rate}/s for ${SECONDS} s: ${s.throughput} ok/s, codes ${JSON.stringify(s.codes)}`,
    `client p50 / p99 / p99.9 ${s.latency.p50} / ${s.latency.p99} / ${s.latency.p999} ms; the gateway's own p50 / p99 / p99.9 ${q(0.5)} / ${q(0.99)} / ${q(0.999)} ms`,
    `GC: ${gcSummary(gc0, gc1)}`,
    `V8's sampling thread: ${sampler}${sampler === 'real-time' ? ' (its work lands on the gateway\'s core: compare latencies with --no-profile)' : ''}`,
    `profile: ${file}`,
    '',
  ];
  const survivors = heap ? `\n${renderSurvivors(heap, s.throughput * SECONDS, flags.allocations ? 'Every object allocated' : 'Objects that outlived a scavenge')}` : '';
  const tasks = profile ? renderLongTasks(longTaskReport(profile, THRESHOLD_MS), `Long tasks: ${arm.name}, round ${round + 1}`) : '';
  return `${head.join('\n')}\n${tasks}${survivors}`;
}

let placed: BenchServices | undefined;
try {
  await assertPortsFree(arms.flatMap((a) => [a.http, a.grpc, a.inspect]));
  placed = await startBenchServices({ kafka: flags.log !== 'off' });
  for (const note of placed.notes) log(note);
  log(await seedRedis(REDIS_URL, PREFIX));
  for (const arm of arms) await startArm(arm);
  if (Number(flags.settle) > 0) await new Promise((r) => setTimeout(r, Number(flags.settle) * 1000));
  let rate = flags.rate ? Number(flags.rate) : NaN;
  if (!Number.isFinite(rate)) {
    const first = arms[0]!;
    const max = await generateOnLoadCore({ name: 'long-tasks max', target: target(first), protocol: PROTOCOL, mix: MIX, mode: 'closed', concurrency: 48, durationS: 5, warmupS: 1 });
    rate = Math.max(10, Math.round(max.steps[0]!.throughput * Number(flags.fraction)));
    log(`max of ${first.name}: ${max.steps[0]!.throughput} ok/s; profiling at ${rate}/s`);
  }
  const sections: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const arm of round % 2 === 0 ? arms : [...arms].reverse()) {
      const text = await measure(arm, rate, round);
      sections.push(text);
      process.stdout.write(`${text}\n`);
    }
  }
  writeFileSync(join(outDir, 'long-tasks.md'), `${sections.join('\n')}\n`);
  log(`report: ${join(outDir, 'long-tasks.md')}`);
} finally {
  for (const arm of arms) await arm.child?.stop();
  placed?.restore();
}
