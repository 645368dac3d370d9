/**
 * onnxruntime-node session micro-benchmark (numbers go to runtimes/onnx/README.md).
 *
 *   node loadtest/micro/onnx-session.bench.ts [--quick]
 *
 * 1. Event-loop stall: does `session.run` block the event loop? Inline runs vs the runtime's worker offload, per
 *    batch size, with perf_hooks.monitorEventLoopDelay (10 ms resolution is too coarse: 1 ms, the minimum).
 * 2. Session options: onnxruntime defaults vs Sibyl's tuned options (1 intra-op thread, spinning off) and 2 threads
 *    with spinning on/off: single-row latency, batch throughput, and CPU time (process.cpuUsage, all threads) while
 *    idle and while serving one row every 2 ms.
 * Models: the fixture tree ensemble (100 trees, depth 6, 20 features), the fixture dense MLP (4 x 256x256), and
 * models/delivery-eta/1 when it exists. The baseline for each row is measured in the same run.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import ort from 'onnxruntime-node';
import type { FeatureRow, ModelBundle } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { createOnnxRuntime } from '../../runtimes/onnx/onnx-runtime.ts';
import { tunedSessionOptions } from '../../runtimes/onnx/session-options.ts';

const quick = process.argv.includes('--quick');
const ROOT = path.resolve(import.meta.dirname, '../..');
const FIX = path.join(ROOT, 'test/fixtures/onnx');

interface Subject {
  name: string;
  bundle: ModelBundle;
  row: (i: number) => FeatureRow;
}

function fixtureSubject(name: string, width: number): Subject {
  const features = Array.from({ length: width }, (_, i) => `f${i}`);
  const manifest = parseManifest(
    JSON.stringify({
      name,
      version: '1',
      runtime: 'onnx',
      features: features.map((f) => ({ name: f, dtype: 'float32', source: 'request', default: 0 })),
      onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features }], outputs: [{ name: name === 'trees' ? 'score' : 'out' }] },
    }),
  );
  return {
    name: `${name} (fixture)`,
    bundle: { manifest, dir: path.join(FIX, name), hash: 'bench' },
    row: (i) => Object.fromEntries(features.map((f, j) => [f, Math.sin(i * 31 + j)])),
  };
}

function subjects(): Subject[] {
  const list = [fixtureSubject('trees', 20), fixtureSubject('dense', 256)];
  const eta = path.join(ROOT, 'models/delivery-eta/1');
  if (existsSync(path.join(eta, 'expected.json'))) {
    const manifest = parseManifest(readFileSync(path.join(eta, 'sibyl.yaml'), 'utf8'));
    const rows = (JSON.parse(readFileSync(path.join(eta, 'expected.json'), 'utf8')) as { rows: { features: FeatureRow }[] }).rows;
    list.push({ name: 'delivery-eta/1 (LightGBM)', bundle: { manifest, dir: eta, hash: 'bench' }, row: (i) => rows[i % rows.length]!.features });
  }
  return list;
}

const signal = new AbortController().signal;
const fmt = (x: number, d = 3) => x.toFixed(d);

async function stall(): Promise<void> {
  console.log('\n## 1. Event-loop stall per predict (inline run vs worker offload)\n');
  console.log('Loop delay: perf_hooks.monitorEventLoopDelay (1 ms resolution, so ~1 ms is the floor) p99 / max, ms.');
  console.log('Loop busy: performance.eventLoopUtilization() while predicting back to back (100% = no time for other requests).\n');
  console.log('| model | rows | inline ms/predict | inline loop delay p99 / max | inline loop busy | worker ms/predict | worker loop delay p99 / max | worker loop busy |');
  console.log('|---|---|---|---|---|---|---|---|');
  const inlineRt = createOnnxRuntime({ offload: 'never' });
  const workerRt = createOnnxRuntime();
  for (const s of subjects()) {
    const inline = await inlineRt.load(s.bundle);
    const viaWorker = await workerRt.load({ ...s.bundle, manifest: { ...s.bundle.manifest, onnx: { ...s.bundle.manifest.onnx!, offloadRows: 1 } } });
    const auto = await createOnnxRuntime().load(s.bundle);
    for (const n of quick ? [1, 256, 4096] : [1, 16, 64, 256, 1024, 4096]) {
      const rows = Array.from({ length: n }, (_, i) => s.row(i));
      const reps = Math.max(5, Math.min(200, Math.round(20_000 / n)));
      const measure = async (m: typeof inline) => {
        await m.predict(rows, { signal });
        const h = monitorEventLoopDelay({ resolution: 1 });
        h.enable();
        const elu0 = performance.eventLoopUtilization();
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) await m.predict(rows, { signal });
        const ms = (performance.now() - t0) / reps;
        const busy = performance.eventLoopUtilization(elu0).utilization * 100;
        h.disable();
        return { ms, delay: `${fmt(h.percentile(99) / 1e6, 2)} / ${fmt(h.max / 1e6, 2)}`, busy: `${fmt(busy, 0)}%` };
      };
      const a = await measure(inline);
      const b = await measure(viaWorker);
      console.log(`| ${s.name} | ${n} | ${fmt(a.ms)} | ${a.delay} | ${a.busy} | ${fmt(b.ms)} | ${b.delay} | ${b.busy} |`);
    }
    console.log(`| ${s.name} | calibrated offloadRows = ${auto.offloadRows} | | | | | | |`);
    await inline.dispose();
    await viaWorker.dispose();
    await auto.dispose();
  }
  await workerRt.close();
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function options(): Promise<void> {
  console.log('\n## 2. Session options (raw onnxruntime-node session.run, one row = 20 float32 features unless noted)\n');
  console.log('| model | options | 1-row p50 µs | 1-row p99 µs | batch-64 rows/s | CPU ms per idle s | CPU % at 1 row / 2 ms |');
  console.log('|---|---|---|---|---|---|---|');
  const spin = (on: boolean, threads: number): ort.InferenceSession.SessionOptions => ({
    ...tunedSessionOptions(threads),
    extra: { session: { 'intra_op.allow_spinning': on ? '1' : '0', 'inter_op.allow_spinning': on ? '1' : '0' } },
  });
  const configs: [string, ort.InferenceSession.SessionOptions][] = [
    ['onnxruntime defaults', {}],
    ['tuned: 1 thread, no spin (Sibyl)', tunedSessionOptions(1)],
    ['2 threads, spinning on', spin(true, 2)],
    ['2 threads, spinning off', spin(false, 2)],
  ];
  for (const s of subjects()) {
    if (s.name.startsWith('dense')) continue;
    const input = s.bundle.manifest.onnx!.inputs[0]!;
    const w = input.features.length;
    const tensor = (n: number) =>
      new ort.Tensor('float32', Float32Array.from({ length: n * w }, (_, k) => Number(s.row(Math.floor(k / w))[input.features[k % w]!] ?? 0)), [n, w]);
    const one = { [input.name]: tensor(1) };
    const batch = { [input.name]: tensor(64) };
    for (const [label, opts] of configs) {
      const session = await ort.InferenceSession.create(path.join(s.bundle.dir, s.bundle.manifest.onnx!.file), opts);
      for (let i = 0; i < 200; i++) await session.run(one);
      const lat: number[] = [];
      for (let i = 0; i < (quick ? 1000 : 5000); i++) {
        const t0 = performance.now();
        await session.run(one);
        lat.push((performance.now() - t0) * 1000);
      }
      lat.sort((x, y) => x - y);
      let rows = 0;
      const tEnd = performance.now() + (quick ? 300 : 1000);
      const t0 = performance.now();
      while (performance.now() < tEnd) {
        await session.run(batch);
        rows += 64;
      }
      const rps = rows / ((performance.now() - t0) / 1000);
      // CPU consumed while idle, just after the burst above.
      const c0 = cpuMs();
      await sleep(1000);
      const idle = cpuMs() - c0;
      // CPU consumed while serving one row every 2 ms (a lightly loaded gateway).
      const p0 = cpuMs();
      const w0 = performance.now();
      const until = w0 + (quick ? 500 : 2000);
      while (performance.now() < until) {
        await session.run(one);
        await sleep(2);
      }
      const paced = ((cpuMs() - p0) / (performance.now() - w0)) * 100;
      console.log(
        `| ${s.name} | ${label} | ${fmt(lat[Math.floor(lat.length * 0.5)]!, 1)} | ${fmt(lat[Math.floor(lat.length * 0.99)]!, 1)} | ${Math.round(rps)} | ${fmt(idle, 1)} | ${fmt(paced, 1)} |`,
      );
      await session.release();
    }
  }
}

const os = await import('node:os');
// availableParallelism() counts the CPUs this process may run on (its affinity: 1 under `taskset -c 1`), cpus() the machine's.
console.log(`# onnxruntime-node ${ort.env.versions.common}, Node ${process.version}, ${os.cpus().length} CPUs, this process may use ${os.availableParallelism()}`);
await stall();
await options();
