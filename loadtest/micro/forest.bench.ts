/**
 * Compiled forest against onnxruntime (numbers go to runtimes/onnx/README.md, "Compiled tree ensembles").
 *
 *   node loadtest/micro/forest.bench.ts [--quick] [--baseline DIR]
 *
 * For each tree ensemble (models/delivery-eta/2, a regressor: 250 trees, 15,250 nodes; models/eta-risk/1, a binary
 * classifier: 120 trees of depth 3, its label and two probabilities; the fixture regressors: 100 trees of depth 6, and
 * 100 of depth 5 with BRANCH_LT, XGBoost's shape), both engines load the same bundle through the runtime (`trees: 'compiled'` and `'onnxruntime'`), and
 * each call goes through the runtime's own `predict`, as the gateway's does. Per engine: load time (the forest's
 * includes reading the file, compiling and checking it against onnxruntime on the probe rows), then µs per call for
 * calls of 1, 3, 4, 16 and 48 rows, "hot" (calls back to back) and "cold" (16 MB of other memory written between calls, as a
 * gateway's request path does between two model runs). The engines alternate call by call, so both see the same
 * machine; medians of `ROUNDS` rounds. `--baseline DIR` adds a third engine, the compiled forest of another checkout
 * (e.g. .data/ab/<sha> from loadtest/ab.sh: its runtime, loaded in this process), alternating with the other two.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FeatureRow, ModelBundle } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { createOnnxRuntime, type OnnxLoadedModel } from '../../runtimes/onnx/onnx-runtime.ts';

const quick = process.argv.includes('--quick');
const baselineAt = process.argv.indexOf('--baseline');
const baselineDir = baselineAt > 0 ? path.resolve(process.argv[baselineAt + 1] ?? '') : undefined;
const ROOT = path.resolve(import.meta.dirname, '../..');
const ROUNDS = quick ? 2 : 5;
const CALLS = quick ? 100 : 400;

interface Subject {
  readonly name: string;
  readonly bundle: ModelBundle;
  readonly rows: readonly FeatureRow[];
}

function modelSubject(id: string): Subject {
  const dir = path.join(ROOT, 'models', id);
  const manifest = parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8'));
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { rows: { features: FeatureRow }[] };
  return { name: id, bundle: { manifest, dir, hash: 'bench' }, rows: expected.rows.map((r) => r.features) };
}

function fixtureSubject(folder = 'trees', name = 'fixture trees (100 x depth 6)'): Subject {
  const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
  const manifest = parseManifest(
    JSON.stringify({
      name: folder,
      version: '1',
      runtime: 'onnx',
      features: names.map((name) => ({ name, dtype: 'float32', source: 'request', default: 0 })),
      onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: names }], outputs: [{ name: 'score' }] },
    }),
  );
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
  const rows = Array.from({ length: 64 }, () => Object.fromEntries(names.map((n) => [n, random()])));
  return { name, bundle: { manifest, dir: path.join(ROOT, 'test/fixtures/onnx', folder), hash: 'bench' }, rows };
}

const junk = new Float64Array(2 ** 21);
/** Writes 16 MB: what a gateway's allocations and other work do to the caches between two model runs. */
function evict(): void {
  for (let i = 0; i < junk.length; i += 8) junk[i]! += 1;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ctx = { signal: new AbortController().signal };

async function main(): Promise<void> {
  const lines: string[] = ['| model | engine | load ms | 1 row hot | 1 row cold | 3 rows cold | 4 rows cold | 16 rows hot | 16 rows cold | 48 rows hot | 48 rows cold |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const s of [modelSubject('delivery-eta/2'), modelSubject('eta-risk/1'), fixtureSubject(), fixtureSubject('trees-lt', 'fixture trees-lt (100 x depth 5, BRANCH_LT)')]) {
    const engines: string[] = ['compiled', 'onnxruntime'];
    const runtimes = [createOnnxRuntime({ trees: 'compiled', offload: 'never' }), createOnnxRuntime({ trees: 'onnxruntime', offload: 'never' })];
    if (baselineDir) {
      const theirs = (await import(path.join(baselineDir, 'runtimes/onnx/onnx-runtime.ts'))) as { createOnnxRuntime: typeof createOnnxRuntime };
      engines.push(`compiled, ${path.basename(baselineDir)}`);
      runtimes.push(theirs.createOnnxRuntime({ trees: 'compiled', offload: 'never' }));
    }
    const models: OnnxLoadedModel[] = [];
    const loadMs: number[] = [];
    for (const runtime of runtimes) {
      const t0 = performance.now();
      models.push((await runtime.load(s.bundle)) as OnnxLoadedModel);
      loadMs.push(performance.now() - t0);
    }
    for (const e of [0, 2]) if (models[e] && models[e].engine.kind !== 'forest') throw new Error(`${s.name} did not compile: ${JSON.stringify(models[e].engine)}`);
    const results = engines.map(() => new Map<string, number[]>());
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, size, cold] of [['1 hot', 1, false], ['1 cold', 1, true], ['3 cold', 3, true], ['4 cold', 4, true], ['16 hot', 16, false], ['16 cold', 16, true], ['48 hot', 48, false], ['48 cold', 48, true]] as const) {
        const spent = engines.map(() => 0);
        for (let c = 0; c < CALLS; c++) {
          const start = (c * size) % s.rows.length;
          const rows = Array.from({ length: size }, (_, k) => s.rows[(start + k) % s.rows.length]!);
          for (let e = 0; e < engines.length; e++) {
            const which = (c + e) % engines.length;
            if (cold) evict();
            const t0 = performance.now();
            await models[which]!.predict(rows, ctx);
            spent[which]! += performance.now() - t0;
          }
        }
        spent.forEach((ms, e) => {
          const list = results[e]!.get(label) ?? [];
          list.push((ms * 1000) / CALLS / size);
          results[e]!.set(label, list);
        });
      }
    }
    engines.forEach((engine, e) => {
      const cell = (label: string) => median(results[e]!.get(label)!).toFixed(1);
      lines.push(`| ${s.name} | ${engine} | ${loadMs[e]!.toFixed(0)} | ${cell('1 hot')} | ${cell('1 cold')} | ${cell('3 cold')} | ${cell('4 cold')} | ${cell('16 hot')} | ${cell('16 cold')} | ${cell('48 hot')} | ${cell('48 cold')} |`);
    });
    for (const m of models) await m.dispose();
  }
  console.log(`µs per row through the runtime's predict, medians of ${ROUNDS} rounds of ${CALLS} calls per cell, the engines alternating call by call\n`);
  console.log(lines.join('\n'));
}

await main();
