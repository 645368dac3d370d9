/**
 * Rules runtime cost per call and isolation, same run, same rule:
 * 1. plain JS call of the rule's function in this process (baseline), the rule in an in-process isolate, and in
 *    its sandbox process: sequential 1-row and 64-row calls (p50/p99 µs), and 16 concurrent 1-row callers.
 * 2. a bystander rule's 1-row latency alone, and while a neighbour rule loops to its 50 ms limit back to back,
 *    for both isolations, with this process's event-loop delay.
 *
 *   node --no-node-snapshot loadtest/micro/rules-sandbox.bench.ts
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseManifest } from '../../runtimes/manifest.ts';
import { createRulesRuntime, type RulesLoadedModel } from '../../runtimes/rules/rules-runtime.ts';

const RULE = 'export function predict(f) { const s = f.a * 0.3 + f.b * 0.7; return { score: s, label: s > 5 ? "high" : "low" }; }';
function plainPredict(f: { a: number; b: number }) {
  const s = f.a * 0.3 + f.b * 0.7;
  return { score: s, label: s > 5 ? 'high' : 'low' };
}

function bundle(source: string, name: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sibyl-rules-bench-'));
  writeFileSync(path.join(dir, 'rule.js'), source);
  const manifest = parseManifest(JSON.stringify({
    name, version: '1', runtime: 'rules',
    features: [{ name: 'a', dtype: 'float64', source: 'request', default: 0 }, { name: 'b', dtype: 'float64', source: 'request', default: 0 }],
    outputs: [{ name: 'score', dtype: 'float64' }, { name: 'label', dtype: 'string' }],
    rules: { timeoutMs: 50 },
  }));
  return { manifest, dir, hash: name };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ctx = () => ({ signal: new AbortController().signal });
const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ a: i % 10, b: (i * 7) % 10 }));

async function sequential(call: () => Promise<unknown> | unknown, n: number): Promise<number[]> {
  for (let i = 0; i < Math.min(500, n); i++) await call();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call();
    t.push((performance.now() - t0) * 1000);
  }
  return t;
}

async function concurrent(call: () => Promise<unknown>, callers: number, ms: number): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      await call();
      done++;
    }
  }));
  return done / (ms / 1000);
}

const line = (name: string, t: number[]) => `| ${name} | ${pct(t, 50).toFixed(1)} | ${pct(t, 99).toFixed(1)} |`;

const one = rows(1);
const batch = rows(64);
const inproc = await createRulesRuntime({ isolation: 'in-process' }).load(bundle(RULE, 'inproc'));
const proc = await createRulesRuntime().load(bundle(RULE, 'proc'));

console.log('### 1. Cost per call\n\n| path | p50 µs | p99 µs |\n|---|---|---|');
console.log(line('plain JS call (baseline), 1 row', await sequential(() => plainPredict(one[0]!), 20000)));
console.log(line('in-process isolate, 1 row', await sequential(() => inproc.predict(one, ctx()), 5000)));
console.log(line('sandbox process, 1 row', await sequential(() => proc.predict(one, ctx()), 5000)));
console.log(line('plain JS call (baseline), 64 rows', await sequential(() => batch.map(plainPredict), 5000)));
console.log(line('in-process isolate, 64 rows', await sequential(() => inproc.predict(batch, ctx()), 3000)));
console.log(line('sandbox process, 64 rows', await sequential(() => proc.predict(batch, ctx()), 3000)));
console.log('\n| path | 16 concurrent callers, 1-row calls/s |\n|---|---|');
console.log(`| in-process isolate | ${(await concurrent(() => inproc.predict(one, ctx()), 16, 2000)).toFixed(0)} |`);
console.log(`| sandbox process | ${(await concurrent(() => proc.predict(one, ctx()), 16, 2000)).toFixed(0)} |`);

console.log('\n### 2. A bystander rule while a neighbour loops to its limit\n');
console.log('| isolation | neighbour | bystander p50 µs | p99 µs | max µs | loop delay p99 / max ms |\n|---|---|---|---|---|---|');
const LOOP = 'export function predict(f) { for (;;) {} }';
for (const isolation of ['in-process', 'process'] as const) {
  const rt = createRulesRuntime({ isolation });
  const bystander: RulesLoadedModel = await rt.load(bundle(RULE, `by-${isolation}`));
  const hostile: RulesLoadedModel = await rt.load(bundle(LOOP, `loop-${isolation}`));
  for (const attack of [false, true]) {
    let running = true;
    const attacker = (async () => {
      while (attack && running) await hostile.predict(one, ctx()).catch(() => undefined);
    })();
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const t = await sequential(async () => {
      await bystander.predict(one, ctx());
      await new Promise((r) => setImmediate(r));
    }, 3000);
    h.disable();
    running = false;
    await attacker;
    console.log(`| ${isolation} | ${attack ? 'looping' : 'idle'} | ${pct(t, 50).toFixed(1)} | ${pct(t, 99).toFixed(1)} | ${Math.max(...t).toFixed(0)} | ${(h.percentile(99) / 1e6).toFixed(2)} / ${(h.max / 1e6).toFixed(2)} |`);
  }
  await bystander.dispose();
  await hostile.dispose();
}

await inproc.dispose();
await proc.dispose();
