/**
 * Compiled tree ensembles (runtimes/onnx/forest.ts): a lone TreeEnsembleRegressor runs as a compiled forest and
 * answers what onnxruntime answers, bit for bit, on every bundled regressor and on a fixture with every branch mode
 * and NaN routing; other graphs stay on onnxruntime and say why; the probe rows the runtime checks a forest on catch
 * a threshold off by one float32 step.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { FeatureRow, ModelBundle, OutputRow } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { classify, compileForest, probeRows, withinOneFloat32Step, type Forest } from '../../runtimes/onnx/forest.ts';
import { createRuntimes } from '../../runtimes/index.ts';
import { createOnnxRuntime, forestDifferences, type OnnxLoadedModel } from '../../runtimes/onnx/onnx-runtime.ts';
import { onnxOptionsFromEnv } from '../../runtimes/onnx/options-from-env.ts';
import { tunedSessionOptions } from '../../runtimes/onnx/session-options.ts';
import { readTreeEnsemble, type TreeEnsemble } from '../../runtimes/onnx/tree-ensemble.ts';
import { bundle, FIXTURES } from './onnx-fixtures.ts';
import { seeded } from '../helpers/seeded.ts';

const MODELS = path.resolve(import.meta.dirname, '../../models');
const ctx = () => ({ signal: new AbortController().signal });

function modelBundle(id: string): ModelBundle {
  const dir = path.join(MODELS, id);
  return { manifest: parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8')), dir, hash: 'test' };
}

async function ensembleOf(file: string): Promise<TreeEnsemble> {
  const read = readTreeEnsemble(await readFile(file));
  if ('unsupported' in read) throw new Error(read.unsupported);
  return read.ensemble;
}

function compiled(e: TreeEnsemble): Forest {
  const c = compileForest(e);
  if ('unsupported' in c) throw new Error(c.unsupported);
  return c.forest;
}

/** Rows of random values within [-3, 3], NaN in one value of ten, and every value a threshold of the fixture hits. */
function featureRows(names: readonly string[], count: number): FeatureRow[] {
  const random = seeded(12345).rand;
  return Array.from({ length: count }, () => Object.fromEntries(names.map((n) => [n, random() < 0.1 ? NaN : random() < 0.5 ? Math.round(random() * 16 - 8) / 2 : random() * 6 - 3])));
}

/** The float32 next to `v` towards +inf (1) or -inf (-1). */
function nextF32(v: number, dir: number): number {
  const f = new Float32Array([v]);
  const bits = new Int32Array(f.buffer);
  if (f[0] === 0) return dir * 1.4e-45;
  bits[0]! += f[0]! > 0 === dir > 0 ? 1 : -1;
  return f[0]!;
}

const COMPARE: Record<string, (v: number, t: number) => boolean> = {
  BRANCH_LEQ: (v, t) => v <= t,
  BRANCH_LT: (v, t) => v < t,
  BRANCH_GTE: (v, t) => v >= t,
  BRANCH_GT: (v, t) => v > t,
  BRANCH_EQ: (v, t) => v === t,
  BRANCH_NEQ: (v, t) => v !== t,
};

/** Per branch node (attribute index), the values of its feature in the rows of `x` that reach it (walked as onnxruntime walks). */
function valuesAtNodes(e: TreeEnsemble, x: Float32Array, rows: number): Map<number, number[]> {
  const at = new Map<string, number>();
  e.nodeIds.forEach((id, i) => at.set(`${e.nodeTreeIds[i]}:${id}`, i));
  const roots = e.nodeTreeIds.flatMap((t, i) => (i === 0 || e.nodeTreeIds[i - 1] !== t ? [i] : []));
  const seen = new Map<number, number[]>();
  for (let r = 0; r < rows; r++) {
    for (let i of roots) {
      while (e.modes[i] !== 'LEAF') {
        const v = x[r * e.width + e.featureIds[i]!]!;
        const list = seen.get(i);
        if (list) list.push(v);
        else seen.set(i, [v]);
        const go = COMPARE[e.modes[i]!]!(v, e.values[i]!) || (Number.isNaN(v) && e.missingTracksTrue[i] === 1);
        i = at.get(`${e.nodeTreeIds[i]}:${go ? e.trueIds[i] : e.falseIds[i]}`)!;
      }
    }
  }
  return seen;
}

/** The manifest of a fixture model: request features `names` as one float32 matrix `x`, one output. */
function fixtureManifest(name: string, names: readonly string[], output: string) {
  return {
    name,
    version: '1',
    runtime: 'onnx',
    features: names.map((n) => ({ name: n, dtype: 'float32', source: 'request', default: 0 })),
    onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: names }], outputs: [{ name: output }] },
  };
}

/** Random rows per comparison; FOREST_ROWS=200000 runs a longer check by hand. */
const ROWS = Number(process.env.FOREST_ROWS ?? 3000);
/** A row's value as onnxruntime defines it, walked node by node from the attributes: float32 sum of leaf weights, then the base. */
function referenceScore(e: TreeEnsemble, x: Float32Array, r: number): number {
  const at = new Map<string, number>();
  e.nodeIds.forEach((id, i) => at.set(`${e.nodeTreeIds[i]}:${id}`, i));
  const weight = new Map<string, number>();
  e.targetNodeIds.forEach((id, j) => weight.set(`${e.targetTreeIds[j]}:${id}`, e.targetWeights[j]!));
  let sum = 0;
  for (const root of e.nodeTreeIds.flatMap((t, i) => (i === 0 || e.nodeTreeIds[i - 1] !== t ? [i] : []))) {
    let i = root;
    while (e.modes[i] !== 'LEAF') {
      const v = x[r * e.width + e.featureIds[i]!]!;
      const go = COMPARE[e.modes[i]!]!(v, e.values[i]!) || (Number.isNaN(v) && e.missingTracksTrue[i] === 1);
      i = at.get(`${e.nodeTreeIds[i]}:${go ? e.trueIds[i] : e.falseIds[i]}`)!;
    }
    sum = Math.fround(sum + weight.get(`${e.nodeTreeIds[i]}:${e.nodeIds[i]}`)!);
  }
  return Math.fround(sum + (e.baseValues[0] ?? 0));
}

/**
 * A classifier's rows against onnxruntime's: `far`, rows whose label differs or a probability lies more than one
 * float32 step away; `inexact`, rows not equal bit for bit (a LOGISTIC classifier's probabilities pass through the
 * C library's e^x, rounded one step off now and then: runtimes/onnx/README.md).
 */
function classifierDifferences(got: readonly OutputRow[], want: readonly OutputRow[], label: string): { far: number; inexact: number } {
  let far = 0;
  let inexact = 0;
  got.forEach((g, i) => {
    const p = g['probabilities'] as number[];
    const q = want[i]!['probabilities'] as number[];
    if (g[label] !== want[i]![label] || p.length !== q.length || p.some((v, k) => !withinOneFloat32Step(Math.fround(v), Math.fround(q[k]!)))) far++;
    else if (p.some((v, k) => !sameBits(v, q[k]!))) inexact++;
  });
  return { far, inexact };
}

const sameBits = (a: number, b: number) => Object.is(Math.fround(a), Math.fround(b));

describe('compiled tree ensembles', () => {
  const compiledRt = createOnnxRuntime();
  const onnxRt = createOnnxRuntime({ trees: 'onnxruntime' });
  afterAll(async () => {
    await compiledRt.close();
    await onnxRt.close();
  });

  for (const id of ['delivery-eta/1', 'delivery-eta/2']) {
    it(`${id} runs as a compiled forest and answers onnxruntime's values, bit for bit`, async () => {
      const b = modelBundle(id);
      const forest = (await compiledRt.load(b)) as OnnxLoadedModel;
      const plain = (await onnxRt.load(b)) as OnnxLoadedModel;
      expect(forest.engine).toMatchObject({ kind: 'forest', trees: expect.any(Number), scoring: 'false-nodes' });
      expect(plain.engine).toEqual({ kind: 'onnxruntime', why: 'trees: onnxruntime' });
      const expected = JSON.parse(readFileSync(path.join(MODELS, id, 'expected.json'), 'utf8')) as { rows: { features: FeatureRow }[] };
      const rows = [...expected.rows.map((r) => r.features), ...featureRows(b.manifest.features.map((f) => f.name), 200)];
      // One row at a time (the coalesced path), all at once (one run of many rows), then rows in threes, one by one
      // and in sevens, each run alone (the forest's input matrix, reused from run to run, is then longer than the
      // run; a run of one row walks four trees at a time, a run of seven four rows at a time and three one by one).
      const alone = await Promise.all(rows.map((r) => forest.predict([r], ctx())));
      const together = await forest.predict(rows, ctx());
      const after: (typeof together)[number][] = [];
      for (let i = 0; i < 30; i += 3) after.push(...(await forest.predict(rows.slice(i, i + 3), ctx())));
      for (let i = 30; i < 45; i++) after.push(...(await forest.predict([rows[i]!], ctx())));
      for (let i = 45; i < 80; i += 7) after.push(...(await forest.predict(rows.slice(i, i + 7), ctx())));
      const want = await plain.predict(rows, ctx());
      rows.forEach((_, i) => {
        expect(sameBits(alone[i]![0]!['eta_minutes'] as number, want[i]!['eta_minutes'] as number), `row ${i}`).toBe(true);
        expect(sameBits(together[i]!['eta_minutes'] as number, want[i]!['eta_minutes'] as number), `row ${i}`).toBe(true);
      });
      after.forEach((got, i) => expect(sameBits(got['eta_minutes'] as number, want[i]!['eta_minutes'] as number), `row ${i} after`).toBe(true));
      await forest.dispose();
      await plain.dispose();
    });
  }

  it('matches onnxruntime with every branch mode, NaN routing, node ids out of order and a base value', async () => {
    const dir = path.join(FIXTURES, 'tree-modes');
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const manifest = fixtureManifest('tree-modes', names, 'y');
    const forest = (await compiledRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
    const plain = (await onnxRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
    expect(forest.engine.kind).toBe('forest');
    const rows = featureRows(names, 2000);
    const got = await forest.predict(rows, ctx());
    const want = await plain.predict(rows, ctx());
    let differ = 0;
    rows.forEach((_, i) => (differ += sameBits(got[i]!['y'] as number, want[i]!['y'] as number) ? 0 : 1));
    expect(differ).toBe(0);
    // The rows reach leaves through each mode both ways: the outputs are many, not one value.
    expect(new Set(got.map((r) => r['y'])).size).toBeGreaterThan(500);
    await forest.dispose();
    await plain.dispose();
  });

  for (const [folder, nodes, what] of [
    ['trees', 12700, 'trees of 64 leaves (both halves of a tree\'s bit set), BRANCH_LEQ'],
    ['trees-lt', 6300, 'XGBoost\'s shape: trees of 32 leaves, BRANCH_LT, a base value'],
  ] as const) {
    it(`scores ${what} by their false nodes with onnxruntime's bits; rows with a NaN walked`, async () => {
      // test/fixtures/onnx/trees: 100 trees of depth 6 (64 leaves each), 20 features, BRANCH_LEQ, NaN to the false
      // branch; trees-lt: 100 of depth 5, BRANCH_LT (compiled as BRANCH_LEQ on the float32 below each threshold).
      const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
      const manifest = fixtureManifest(folder, names, 'score');
      const dir = path.join(FIXTURES, folder);
      const forest = (await compiledRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
      const plain = (await onnxRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
      expect(forest.engine).toEqual({ kind: 'forest', trees: 100, nodes, scoring: 'false-nodes' });
      // Every other row without its NaNs (most random rows of 20 values hold one).
      const rows = featureRows(names, 2000).map((r, i) => (i % 2 === 1 ? r : Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number.isNaN(v) ? 0.25 : v]))));
      // Both paths: rows with a NaN (walked) and rows without (scored).
      const withNaN = rows.filter((r) => Object.values(r).some((v) => Number.isNaN(v))).length;
      expect(withNaN).toBeGreaterThan(500);
      expect(rows.length - withNaN).toBeGreaterThanOrEqual(1000);
      const want = await plain.predict(rows, ctx());
      const together = await forest.predict(rows, ctx());
      const alone: OutputRow[] = [];
      for (const r of rows.slice(0, 300)) alone.push(...(await forest.predict([r], ctx())));
      let differ = 0;
      rows.forEach((_, i) => (differ += sameBits(together[i]!['score'] as number, want[i]!['score'] as number) ? 0 : 1));
      alone.forEach((got, i) => (differ += sameBits(got['score'] as number, want[i]!['score'] as number) ? 0 : 1));
      expect(differ).toBe(0);
      expect(new Set(together.map((r) => r['score'])).size).toBeGreaterThan(300);
      await forest.dispose();
      await plain.dispose();
    });
  }

  it('coalesces like onnxruntime: one run per turn for an idle model, and the calls after a run in the same loop phase share the next', async () => {
    const b = modelBundle('delivery-eta/2');
    const model = (await compiledRt.load(b)) as OnnxLoadedModel;
    const plain = (await onnxRt.load(b)) as OnnxLoadedModel;
    const rows = featureRows(b.manifest.features.map((f) => f.name), 12);
    const want = await plain.predict(rows, ctx());
    const nextCheckPhase = () => new Promise((resolve) => setImmediate(resolve));
    await nextCheckPhase();
    const before = model.runs;
    const outs = await Promise.all(rows.map((r) => model.predict([r], ctx())));
    expect(model.runs - before).toBe(1);
    outs.forEach((out, i) => expect(sameBits(out[0]!['eta_minutes'] as number, want[i]!['eta_minutes'] as number)).toBe(true));
    // The loop has passed a check phase: a lone call runs at once, alone.
    await nextCheckPhase();
    await model.predict([rows[0]!], ctx());
    expect(model.runs - before).toBe(2);
    // Callbacks after it in the same phase (a loaded gateway: one request per socket read) wait for the next check
    // phase and share one run.
    const during: Promise<OutputRow[]>[] = [];
    const first = model.predict([rows[1]!], ctx());
    setImmediate(() => during.push(model.predict([rows[2]!], ctx())));
    setImmediate(() => during.push(model.predict([rows[3]!], ctx())));
    await first;
    const later = await Promise.all(await new Promise<Promise<OutputRow[]>[]>((resolve) => setImmediate(() => resolve(during))));
    expect(later.map((o) => o[0]!['eta_minutes'])).toEqual([want[2]!['eta_minutes'], want[3]!['eta_minutes']]);
    expect(model.runs - before).toBe(4);
    await model.dispose();
    await plain.dispose();
  });

  it('eta-risk/1 (a binary classifier, LOGISTIC) runs as a compiled forest: onnxruntime\'s labels, its probabilities within one float32 step', async () => {
    const b = modelBundle('eta-risk/1');
    const forest = (await compiledRt.load(b)) as OnnxLoadedModel;
    const plain = (await onnxRt.load(b)) as OnnxLoadedModel;
    expect(forest.engine).toEqual({ kind: 'forest', trees: 120, nodes: 1800, scoring: 'false-nodes' });
    // Around each feature's default, from 0 to 3x it (the thresholds lie within), with a NaN in one value of 25.
    const random = seeded(777).rand;
    const features = b.manifest.features;
    const rows: FeatureRow[] = Array.from({ length: ROWS }, () => Object.fromEntries(features.map((f) => [f.name, random() < 0.04 ? NaN : Math.fround(Number(f.default) * 3 * random())])));
    const want = await plain.predict(rows, ctx());
    const together = await forest.predict(rows, ctx());
    const alone: OutputRow[] = [];
    for (const r of rows.slice(0, 300)) alone.push(...(await forest.predict([r], ctx())));
    const inAll = classifierDifferences(together, want, 'is_late');
    const oneByOne = classifierDifferences(alone, want.slice(0, alone.length), 'is_late');
    expect(inAll.far + oneByOne.far).toBe(0);
    expect(inAll.inexact + oneByOne.inexact).toBeLessThanOrEqual(ROWS / 1000);
    // Both labels, and probabilities spread over the range, not one value.
    expect(new Set(together.map((r) => r['is_late']))).toEqual(new Set([0, 1]));
    expect(new Set(together.map((r) => (r['probabilities'] as number[])[1])).size).toBeGreaterThan(1000);
    await forest.dispose();
    await plain.dispose();
  });

  for (const [folder, labels, scoring, what] of [
    ['classifier-votes', [3, 7], 'false-nodes', 'weights >= 0, no transform: [1 - s, s], positive past 0.5'],
    ['classifier-margin', [0, 1], 'false-nodes', 'mixed weights, no transform, a base value: [-s, s]; BRANCH_LEQ and BRANCH_LT'],
    ['classifier-logistic', [0, 1], 'false-nodes', 'mixed weights, LOGISTIC; BRANCH_LT only, as XGBoost writes it'],
  ] as const) {
    it(`a binary classifier fixture (${what}) answers onnxruntime's labels and probabilities`, async () => {
      const names = ['a', 'b', 'c', 'd'];
      const manifest = {
        ...fixtureManifest(folder, names, 'label'),
        onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: names }], outputs: [{ name: 'label', kind: 'scalar', dtype: 'int64' }, { name: 'probabilities', kind: 'vector' }] },
      };
      const dir = path.join(FIXTURES, folder);
      const forest = (await compiledRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
      const plain = (await onnxRt.load(bundle(manifest, dir))) as OnnxLoadedModel;
      expect(forest.engine).toEqual({ kind: 'forest', trees: 30, nodes: 450, scoring });
      const rows = featureRows(names, ROWS);
      const want = await plain.predict(rows, ctx());
      const got = await forest.predict(rows, ctx());
      const { far, inexact } = classifierDifferences(got, want, 'label');
      expect(far).toBe(0);
      // Without a logistic every step is exact float32 arithmetic: the same bits on every row.
      expect(inexact).toBeLessThanOrEqual(folder === 'classifier-logistic' ? ROWS / 1000 : 0);
      expect(new Set(got.map((r) => r['label']))).toEqual(new Set(labels));
      expect(new Set(got.map((r) => (r['probabilities'] as number[])[1])).size).toBeGreaterThan(300);
      await forest.dispose();
      await plain.dispose();
    });
  }

  it('walks and scores BRANCH_LT as BRANCH_LEQ on the float32 below each threshold: the same leaf for every value, zeros, infinities and subnormals included', async () => {
    // The mode fixture's trees with every branch BRANCH_LT, thresholds drawn from edge values; rows hit them exactly,
    // one float32 step either side, and NaN.
    const base = await ensembleOf(path.join(FIXTURES, 'tree-modes', 'model.onnx'));
    const edges = [0, -0, 1.4e-45, -1.4e-45, Infinity, -3.4028234663852886e38, 0.5, -2, 1e-40].map(Math.fround);
    const lt = { ...base, modes: base.modes.map((m) => (m === 'LEAF' ? m : 'BRANCH_LT')), values: base.values.map((v, i) => (base.modes[i] === 'LEAF' ? v : edges[i % edges.length]!)) };
    const forest = compiled(lt);
    expect(forest.scoring).toBe('false-nodes');
    const random = seeded(99).rand;
    const pick = () => {
      const e = Math.fround(edges[Math.floor(random() * edges.length)]!);
      const k = random();
      return k < 0.1 ? NaN : k < 0.4 ? e : k < 0.7 ? nextF32(e, 1) : k < 0.9 ? nextF32(e, -1) : random() * 6 - 3;
    };
    const rows = 3000;
    const x = Float32Array.from({ length: rows * lt.width }, pick);
    const got = forest.predict(x, rows);
    let differ = 0;
    for (let r = 0; r < rows; r++) if (!Object.is(got[r], referenceScore(lt, x, r))) differ++;
    expect(differ).toBe(0);
    // A threshold of -Infinity has no float32 below it: such a node stays BRANCH_LT, and the forest is walked.
    const withMinusInf = { ...lt, values: lt.values.map((v, i) => (i === 0 ? -Infinity : v)) };
    const walked = compiled(withMinusInf);
    expect(walked.scoring).toBe('walk');
    const got2 = walked.predict(x, rows);
    for (let r = 0; r < rows; r++) if (!Object.is(got2[r], referenceScore(withMinusInf, x, r))) differ++;
    expect(differ).toBe(0);
  });

  it('keeps graphs that are not a lone tree ensemble on onnxruntime, saying why', async () => {
    const mlp = (await compiledRt.load(modelBundle('tabular-mlp/1'))) as OnnxLoadedModel;
    expect(mlp.engine).toMatchObject({ kind: 'onnxruntime', why: expect.stringMatching(/nodes other than Identity/) });
    await mlp.dispose();
  });

  it('refuses what it does not compute: several targets, another aggregate, a post-transform, a leaf without a weight', async () => {
    const e = await ensembleOf(path.join(FIXTURES, 'tree-modes', 'model.onnx'));
    expect(compileForest({ ...e, nTargets: 2 })).toEqual({ unsupported: 'n_targets 2 (one target only)' });
    expect(compileForest({ ...e, aggregate: 'AVERAGE' })).toEqual({ unsupported: 'aggregate_function AVERAGE (SUM only)' });
    expect(compileForest({ ...e, postTransform: 'LOGISTIC' })).toEqual({ unsupported: 'post_transform LOGISTIC (NONE only)' });
    const w = e.targetWeights.length;
    expect(compileForest({ ...e, targetIds: e.targetIds.slice(0, w - 1), targetTreeIds: e.targetTreeIds.slice(0, w - 1), targetNodeIds: e.targetNodeIds.slice(0, w - 1), targetWeights: e.targetWeights.slice(0, w - 1) })).toMatchObject({
      unsupported: expect.stringMatching(/has no weight/),
    });
    expect(compileForest({ ...e, featureIds: e.featureIds.map((f, i) => (e.modes[i] === 'LEAF' ? f : 6)) })).toMatchObject({ unsupported: 'feature id 6 outside the input\'s 6' });
    const c = await ensembleOf(path.join(MODELS, 'eta-risk/1/model.onnx'));
    expect(compileForest({ ...c, classLabels: [0, 1, 2], nTargets: 3 })).toEqual({ unsupported: '3 class labels (binary classifiers only)' });
    expect(compileForest({ ...c, targetIds: c.targetIds.map((id, j) => (j === 5 ? 1 : id)) })).toEqual({ unsupported: 'weights for class 1 (binary classifiers whose leaves weigh class 0 only)' });
    expect(compileForest({ ...c, postTransform: 'SOFTMAX' })).toEqual({ unsupported: 'post_transform SOFTMAX (NONE or LOGISTIC only)' });
  });

  it("a binary classifier's label at the boundary: past 0.5 for weights >= 0, past 0 otherwise (onnxruntime's rule)", () => {
    const scores = Float32Array.of(0.5, Math.fround(0.5000001), 0, -0);
    expect([...classify({ labels: [3, 7], allPositive: true, logistic: false }, scores, 4).labels]).toEqual([3n, 7n, 3n, 3n]);
    expect([...classify({ labels: [3, 7], allPositive: false, logistic: true }, Float32Array.of(0, 1e-30, -1e-30), 3).labels]).toEqual([3n, 7n, 3n]);
  });

  it('the check lets a logistic probability be one float32 step from onnxruntime\'s, never two', () => {
    const p = Math.fround(0.3);
    expect(withinOneFloat32Step(p, p)).toBe(true);
    expect(withinOneFloat32Step(p, nextF32(p, 1))).toBe(true);
    expect(withinOneFloat32Step(nextF32(p, -1), p)).toBe(true);
    expect(withinOneFloat32Step(p, nextF32(nextF32(p, 1), 1))).toBe(false);
    expect(withinOneFloat32Step(1.4e-45, -1.4e-45)).toBe(false);
    expect(withinOneFloat32Step(NaN, NaN)).toBe(true);
    expect(withinOneFloat32Step(p, undefined)).toBe(false);
  });

  for (const [what, file, every] of [
    ['the mode fixture, every branch node', path.join(FIXTURES, 'tree-modes', 'model.onnx'), 1],
    ['delivery-eta/2, every 1499th branch node', path.join(MODELS, 'delivery-eta/2/model.onnx'), 1499],
  ] as const) {
    it(`the probe rows catch any one threshold moved by one float32 step, either way (${what})`, async () => {
      const e = await ensembleOf(file);
      const x = probeRows(e);
      const rows = x.length / e.width;
      const branches = e.modes.flatMap((m, i) => (m === 'LEAF' ? [] : [i]));
      expect(rows).toBe(3 * branches.length);
      const base = compiled(e).predict(x, rows);
      const reaching = valuesAtNodes(e, x, rows);
      // A move can show only where a row reaches the node with a value it flips; in the fixture, random modes make
      // some paths contradictory (x < 1, then x > 2), so some nodes no row reaches.
      const showable: string[] = [];
      const missed: string[] = [];
      for (let k = 0; k < branches.length; k += every) {
        const i = branches[k]!;
        for (const dir of [1, -1]) {
          const values = [...e.values];
          values[i] = nextF32(values[i]!, dir);
          const what = `node ${i} (${e.modes[i]}) ${dir > 0 ? 'up' : 'down'}`;
          if (!(reaching.get(i) ?? []).some((v) => COMPARE[e.modes[i]!]!(v, e.values[i]!) !== COMPARE[e.modes[i]!]!(v, values[i]!))) continue;
          showable.push(what);
          const moved = compiled({ ...e, values }).predict(x, rows);
          if (moved.every((v, r) => Object.is(v, base[r]))) missed.push(what);
        }
      }
      expect(missed).toEqual([]);
      expect(showable.length / (2 * Math.ceil(branches.length / every))).toBeGreaterThan(every === 1 ? 0.6 : 0.99);
    });
  }

  it("the runtime's check against onnxruntime passes the forest and fails one threshold moved by one step", async () => {
    const file = path.join(MODELS, 'delivery-eta/2/model.onnx');
    const e = await ensembleOf(file);
    // As the runtime makes it: one intra-op thread. With two, onnxruntime sums the trees in two parts, and rounds
    // differently: then the check fails and the model stays on onnxruntime (seen: 19,434 of 22,500 rows differed).
    const session = await ort.InferenceSession.create(file, tunedSessionOptions(1));
    expect(await forestDifferences(compiled(e), session, e)).toEqual({ differ: 0, rows: 3 * 7500 });
    const values = [...e.values];
    const i = e.modes.indexOf('BRANCH_LEQ');
    values[i] = nextF32(values[i]!, 1);
    expect((await forestDifferences(compiled({ ...e, values }), session, e)).differ).toBeGreaterThan(0);
    await session.release();
  });

  it('SIBYL_ONNX_TREES chooses, read when the runtimes are created; an unknown value is refused then', async () => {
    expect(onnxOptionsFromEnv({})).toEqual({});
    expect(onnxOptionsFromEnv({ SIBYL_ONNX_TREES: 'onnxruntime' })).toEqual({ trees: 'onnxruntime' });
    expect(() => onnxOptionsFromEnv({ SIBYL_ONNX_TREES: 'fast' })).toThrow('invalid ONNX configuration: SIBYL_ONNX_TREES must be one of compiled, onnxruntime, not "fast"');
    const before = process.env.SIBYL_ONNX_TREES;
    process.env.SIBYL_ONNX_TREES = 'onnxruntime';
    try {
      const runtimes = createRuntimes();
      const model = (await runtimes.byKind.get('onnx')!.load(modelBundle('delivery-eta/2'))) as OnnxLoadedModel;
      expect(model.engine).toEqual({ kind: 'onnxruntime', why: 'trees: onnxruntime' });
      await model.dispose();
      await runtimes.close();
      process.env.SIBYL_ONNX_TREES = 'fast';
      expect(() => createRuntimes()).toThrow(/SIBYL_ONNX_TREES must be one of/);
    } finally {
      if (before === undefined) delete process.env.SIBYL_ONNX_TREES;
      else process.env.SIBYL_ONNX_TREES = before;
    }
  });
});
