/**
 * What a shadow execution costs, and what starting shadows in batches saves (gateway/shadow/shadow-runner.ts):
 * the suite's shadow set-up (live delivery-eta v2 with two ONNX shadows, delivery-eta v1 and eta-risk v1, on the
 * live request's features) through the real ShadowRunner and onnxruntime, jobs submitted at a steady rate in 1 ms
 * ticks as a gateway's requests arrive. The prediction log is off (a null sink), so the figure is the runner, the
 * execution step and the model runs. Per arm: process CPU (all threads) per shadow executed, shadows shed, model runs
 * per shadow (an ONNX run that served several requests counts once), the event loop's own CPU per shadow, and the event loop's delay p99 (1 ms
 * resolution). Then one pass per arm measures the loop's turns: a setImmediate chain records the time between its
 * callbacks (with an immediate pending the loop never waits in its poll, so each gap is one turn's work, the
 * shadows' and the submissions'): turns longer than 0.5 ms and 2 ms per second (V8's full collections are among
 * them, in every arm) and the longest; the chain keeps the loop busy, so it is kept out of the CPU figures. Arms alternate, the order reversed every round; medians over rounds.
 *
 * Run: node loadtest/micro/shadow-batch.bench.ts [jobs per second=5000] [seconds=4] [rounds=4]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FeatureRow } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { createOnnxRuntime, type OnnxLoadedModel } from '../../runtimes/onnx/onnx-runtime.ts';
import { createMemoryFeatureStore } from '../../gateway/features/memory-feature-store.ts';
import { createNullSink } from '../../gateway/log/null-sink.ts';
import { Route } from '../../gateway/routing/route-table.ts';
import { ShadowRunner, type ShadowJob } from '../../gateway/shadow/shadow-runner.ts';
import { ShadowStats } from '../../gateway/shadow/shadow-stats.ts';
import { median } from '../lib/histogram.ts';

const RATE = Number(process.argv[2] ?? 5000);
const SECONDS = Number(process.argv[3] ?? 4);
const ROUNDS = Number(process.argv[4] ?? 4);
const ROOT = path.resolve(import.meta.dirname, '../..');

const runtime = createOnnxRuntime();
async function route(model: string, version: string): Promise<{ route: Route; loaded: OnnxLoadedModel }> {
  const dir = path.join(ROOT, 'models', model, version);
  const manifest = parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8'));
  const loaded = await runtime.load({ manifest, dir, hash: `${model}-${version}` });
  return { route: new Route(manifest, loaded, `${model}-${version}`), loaded };
}

const live = await route('delivery-eta', '2');
const shadows = [await route('delivery-eta', '1'), await route('eta-risk', '1')];
const rows = (JSON.parse(readFileSync(path.join(ROOT, 'models/delivery-eta/2/expected.json'), 'utf8')) as { rows: { entities: Record<string, string>; request: FeatureRow; features: FeatureRow }[] }).rows;

function job(i: number): ShadowJob {
  const r = rows[i % rows.length]!;
  return {
    ctx: { requestId: `req-${i}`, signal: new AbortController().signal, startMs: performance.now(), transport: 'rest' },
    live: live.route,
    arm: '',
    input: [{ entities: r.entities, features: r.request as Record<string, number> }],
    liveRows: [r.features],
    liveResults: [{ outputs: { eta_minutes: 30 }, defaulted: [] }],
    shadows: shadows.map((s) => s.route),
  };
}

interface Arm {
  readonly name: string;
  readonly concurrency: number;
  readonly batchMs: number;
}
const ARMS: Arm[] = [
  { name: 'one by one, 2 at once (before)', concurrency: 2, batchMs: 0 },
  { name: 'one by one, 64 at once', concurrency: 64, batchMs: 0 },
  { name: 'batches of 2 ms, 64 at once (now)', concurrency: 64, batchMs: 2 },
];

interface Result {
  cpuUsPerShadow: number;
  loopCpuUsPerShadow: number;
  shedPct: number;
  runsPerShadow: number;
  delayP99Ms: number;
}

/** Runs `work` with a setImmediate chain timing every loop turn; returns the turns' lengths, ms. */
async function turns(work: () => Promise<void>): Promise<number[]> {
  const gaps: number[] = [];
  let last = performance.now();
  let on = true;
  const probe = () => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    if (on) setImmediate(probe);
  };
  setImmediate(probe);
  await work();
  on = false;
  return gaps;
}

async function measure(arm: Arm): Promise<Result> {
  const runner = new ShadowRunner({
    store: createMemoryFeatureStore(),
    featurePrefix: 'bench',
    featureTimeoutMs: 5,
    sink: createNullSink(),
    cell: 'bench',
    stats: new ShadowStats(),
    concurrency: arm.concurrency,
    batchMs: arm.batchMs,
  });
  const runs0 = shadows.reduce((a, s) => a + s.loaded.runs, 0);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu0 = process.cpuUsage();
  const loop0 = process.threadCpuUsage();
  let submitted = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(RATE * SECONDS, Math.floor((elapsed / 1000) * RATE));
      while (submitted < due) runner.submit(job(submitted++));
      if (elapsed >= SECONDS * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await runner.flush();
  const cpu = process.cpuUsage(cpu0);
  const loop = process.threadCpuUsage(loop0);
  delay.disable();
  const s = runner.stats();
  const runs = shadows.reduce((a, x) => a + x.loaded.runs, 0) - runs0;
  return {
    cpuUsPerShadow: (cpu.user + cpu.system) / s.executed,
    loopCpuUsPerShadow: (loop.user + loop.system) / s.executed,
    shedPct: (100 * s.shed) / (s.shed + s.executed),
    runsPerShadow: runs / s.executed,
    delayP99Ms: delay.percentile(99) / 1e6,
  };
}

// Warm-up: every arm once, unmeasured.
for (const arm of ARMS) await measure(arm);
const results = new Map<string, Result[]>(ARMS.map((a) => [a.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const arm of round % 2 === 0 ? ARMS : [...ARMS].reverse()) {
    results.get(arm.name)!.push(await measure(arm));
    await sleep(200);
  }
}
const stalls = new Map<string, { over05: number; over2: number; max: number }>();
for (const arm of ARMS) {
  const started = performance.now();
  const gaps = await turns(() => measure(arm).then(() => undefined));
  const seconds = (performance.now() - started) / 1000;
  stalls.set(arm.name, { over05: gaps.filter((g) => g > 0.5).length / seconds, over2: gaps.filter((g) => g > 2).length / seconds, max: gaps.reduce((a, g) => Math.max(a, g), 0) });
}
const lines = [
  `# Shadow executions at ${RATE} requests/s with 2 shadows each (${RATE * 2} shadows/s), ${SECONDS} s, medians of ${ROUNDS} rounds`,
  '',
  '| arm | CPU µs per shadow, all threads | of which the event loop | shed | model runs per shadow | event-loop delay p99 ms | loop turns > 0.5 / > 2 ms per s, longest ms |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const arm of ARMS) {
  const r = results.get(arm.name)!;
  const m = (f: (x: Result) => number) => median(r.map(f));
  lines.push(`| ${arm.name} | ${m((x) => x.cpuUsPerShadow).toFixed(1)} | ${m((x) => x.loopCpuUsPerShadow).toFixed(1)} | ${m((x) => x.shedPct).toFixed(1)}% | ${m((x) => x.runsPerShadow).toFixed(3)} | ${m((x) => x.delayP99Ms).toFixed(2)} | ${stalls.get(arm.name)!.over05.toFixed(1)} / ${stalls.get(arm.name)!.over2.toFixed(1)}, ${stalls.get(arm.name)!.max.toFixed(1)} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
await runtime.close();
