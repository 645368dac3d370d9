import { existsSync } from 'node:fs';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FeatureRow, OutputRow } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { createOnnxRuntime } from '../../runtimes/onnx/onnx-runtime.ts';
import { expectRowsClose, runtimeConformance } from './runtime.case.ts';
import { bundle, copyFixture, FIXTURES, linearDir, linearExpected, linearManifest, mixedDir, mixedManifest } from './onnx-fixtures.ts';

const rows: FeatureRow[] = [
  { a: 1, b: 2, c: 3 },
  { a: -1.5, b: 0, c: 0.25 },
  { a: 100, b: -7, c: 2 },
  { a: 0, b: 0, c: 0 },
];

runtimeConformance('onnx', () => createOnnxRuntime(), (variant) => {
  if (variant === 'missing-file') return bundle(linearManifest({ file: 'nope.onnx' }), linearDir);
  if (variant === 'mismatched') return bundle(linearManifest({ inputs: [{ name: 'features', dtype: 'float32', features: ['a', 'b', 'c'] }] }), linearDir);
  return bundle(linearManifest(), linearDir);
}, rows);

// Offloaded batches go through the worker pool: the same suite with every batch of 2+ rows on a worker.
runtimeConformance('onnx (worker offload)', () => createOnnxRuntime(), (variant) => {
  if (variant === 'missing-file') return bundle(linearManifest({ file: 'nope.onnx', offloadRows: 2 }), linearDir);
  if (variant === 'mismatched') return bundle(linearManifest({ offloadRows: 2, outputs: [{ name: 'prob' }] }), linearDir);
  return bundle(linearManifest({ offloadRows: 2 }), linearDir);
}, rows);

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SibylError);
    return { code: (err as SibylError).code, message: (err as SibylError).message };
  }
  throw new Error('expected a rejection');
}

const ctx = () => ({ signal: new AbortController().signal });

describe('onnx runtime', () => {
  const runtime = createOnnxRuntime();
  afterAll(() => runtime.close());

  it('computes the graph on rows packed in the manifest column order', async () => {
    const model = await runtime.load(bundle(linearManifest(), linearDir));
    expectRowsClose(await model.predict(rows, ctx()), rows.map((r) => linearExpected(r.a as number, r.b as number, r.c as number)));
    // A column order different from the feature declaration order is honoured.
    const swapped = await runtime.load(bundle(linearManifest({ inputs: [{ name: 'x', dtype: 'float32', features: ['c', 'b', 'a'] }] }), linearDir));
    expectRowsClose(await swapped.predict([{ a: 1, b: 2, c: 3 }], ctx()), [linearExpected(3, 2, 1)]);
    await model.dispose();
    await swapped.dispose();
  });

  it('uses the feature default for a value absent from a row', async () => {
    const model = await runtime.load(bundle(linearManifest(), linearDir));
    expectRowsClose(await model.predict([{ a: 2, b: 1 }], ctx()), [linearExpected(2, 1, 1)]);
    await model.dispose();
  });

  it('packs every dtype and unpacks int64 as numbers, bool as booleans, strings as strings', async () => {
    const model = await runtime.load(bundle(mixedManifest(), mixedDir));
    const out = await model.predict(
      [
        { price: 2.5, promo: true, count: 21, rank: 4, city: 'Pune', member: true },
        { price: -1, promo: false, count: -3, rank: 0, city: '', member: false },
        { price: 1e10, promo: false, rank: 9, city: 'Delhi', member: false },
      ],
      ctx(),
    );
    expect(out).toEqual([
      { total: 3.5, count2: 42, rank1: 5, city: 'Pune', not_member: false },
      { total: -1, count2: -6, rank1: 1, city: '', not_member: true },
      { total: 1e10, count2: 14, rank1: 10, city: 'Delhi', not_member: true },
    ]);
    await model.dispose();
  });

  it('rejects a non-integer value for an integer tensor with INVALID_ARGUMENT', async () => {
    const model = await runtime.load(bundle(mixedManifest(), mixedDir));
    const row = { price: 1, promo: false, count: 1.5, rank: 1, city: 'x', member: true };
    const { code, message } = await codeOf(model.predict([row], ctx()));
    expect(code).toBe('INVALID_ARGUMENT');
    expect(message).toContain('"count"');
    await model.dispose();
  });

  it('rejects a manifest that does not fit the graph, naming each problem', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ inputs: [{ name: 'x', dtype: 'float64', features: ['a', 'b', 'c'] }] }, 'is float64, the graph input "x" is float32'],
      [{ inputs: [{ name: 'x', dtype: 'float32', features: ['a', 'b'] }] }, '2 features, the graph input "x" has 3 columns'],
      [{ outputs: [{ name: 'prob' }] }, 'the graph has no output "prob"'],
      [{ outputs: [{ name: 'doubled' }] }, 'scalar needs shape [N] or [N, 1]'],
    ];
    for (const [overrides, text] of cases) {
      const { code, message } = await codeOf(runtime.load(bundle(linearManifest(overrides), linearDir)));
      expect(code).toBe('INVALID_ARGUMENT');
      expect(message).toContain(text);
    }
    const unmapped = mixedManifest();
    unmapped.onnx.inputs = unmapped.onnx.inputs.filter((i) => i.name !== 'tag');
    const err = await codeOf(runtime.load(bundle(unmapped, mixedDir)));
    expect(err.message).toContain('graph input "tag" is not mapped');
    const stringIntoFloat = mixedManifest();
    stringIntoFloat.onnx.inputs[0] = { name: 'num', dtype: 'float64', features: ['price', 'city'] };
    expect((await codeOf(runtime.load(bundle(stringIntoFloat, mixedDir)))).message).toContain('string feature "city" cannot feed float64 input');
  });

  it('rejects a file that is not an ONNX model with INVALID_ARGUMENT', async () => {
    const dir = await copyFixture('linear');
    await writeFile(path.join(dir, 'model.onnx'), 'not a model');
    const { code, message } = await codeOf(runtime.load(bundle(linearManifest(), dir)));
    expect(code).toBe('INVALID_ARGUMENT');
    expect(message).not.toContain(dir);
  });

  it('refuses a model file or a bundle file that links outside the bundle', async () => {
    const dir = await copyFixture('external-inside');
    await symlink(path.join(linearDir, 'model.onnx'), path.join(dir, 'linked.onnx'));
    expect(await codeOf(runtime.load(bundle(linearManifest({ file: 'linked.onnx' }), dir)))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const ext = await copyFixture('external-inside');
    const manifest = externalManifest();
    const model = await runtime.load(bundle(manifest, ext));
    expect(await model.predict([{ a: 1, b: 1, c: 1, d: 1 }], ctx())).toEqual([{ y: [1, 2, 3, 4] }]);
    await model.dispose();
    // The same model with its weights file replaced by a link to a file elsewhere.
    const linked = await copyFixture('external-inside');
    await import('node:fs/promises').then((fs) => fs.rm(path.join(linked, 'weights.bin')));
    await symlink(path.join(FIXTURES, 'external-inside', 'weights.bin'), path.join(linked, 'weights.bin'));
    const err = await codeOf(runtime.load(bundle(manifest, linked)));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('links outside the bundle');
  });

  it('refuses ONNX external data whose path leaves the bundle', async () => {
    const { code } = await codeOf(runtime.load(bundle(externalManifest(), path.join(FIXTURES, 'external-escape', 'bundle'))));
    expect(code).toBe('INVALID_ARGUMENT');
  });

  it('rejects an offloaded run with CANCELLED when the signal aborts while it is in flight', async () => {
    const model = await runtime.load(bundle(linearManifest({ offloadRows: 2 }), linearDir));
    const ac = new AbortController();
    const p = model.predict(rows, { signal: ac.signal });
    ac.abort();
    expect((await codeOf(p)).code).toBe('CANCELLED');
    expectRowsClose(await model.predict(rows, ctx()), rows.map((r) => linearExpected(r.a as number, r.b as number, r.c as number)));
    await model.dispose();
  });

  it('runs offloaded batches of every dtype like inline ones', async () => {
    const inline = await runtime.load(bundle(mixedManifest(), mixedDir));
    const offloaded = await runtime.load(bundle(mixedManifest({ offloadRows: 2 }), mixedDir));
    const batch = Array.from({ length: 50 }, (_, i) => ({ price: i / 3, promo: i % 2 === 0, count: i * 1000, rank: -i, city: `c${i}`, member: i % 3 === 0 }));
    expect(await offloaded.predict(batch, ctx())).toEqual(await inline.predict(batch, ctx()));
    await inline.dispose();
    await offloaded.dispose();
  });

  it('calibrates an offload threshold per model, and never offloads when told not to', async () => {
    const model = await runtime.load(bundle(linearManifest(), linearDir));
    expect(model.offloadRows).toBeGreaterThanOrEqual(64);
    await model.dispose();
    const never = createOnnxRuntime({ offload: 'never' });
    const inline = await never.load(bundle(linearManifest({ offloadRows: 2 }), linearDir));
    expect(inline.offloadRows).toBe(Infinity);
    expect(await inline.predict(rows, ctx())).toHaveLength(rows.length);
    await inline.dispose();
  });

  it('keeps serving big batches inline after the worker pool is closed', async () => {
    const own = createOnnxRuntime();
    const model = await own.load(bundle(linearManifest({ offloadRows: 2 }), linearDir));
    await own.close();
    expectRowsClose(await model.predict(rows, ctx()), rows.map((r) => linearExpected(r.a as number, r.b as number, r.c as number)));
    await model.dispose();
  });

  it('coalesces the calls made in one turn into one run, each call getting its own rows back', async () => {
    const model = await runtime.load(bundle(linearManifest(), linearDir));
    const calls: FeatureRow[][] = Array.from({ length: 12 }, (_, i) => [{ a: i, b: -i / 2, c: i * i }]);
    calls.push(rows);
    const before = model.runs;
    const outs = await Promise.all(calls.map((r) => model.predict(r, ctx())));
    expect(model.runs - before).toBe(1);
    outs.forEach((out, i) => expectRowsClose(out, calls[i]!.map((r) => linearExpected(r.a as number, r.b as number, r.c as number))));
    // Calls made in separate turns run alone: nothing waits for company.
    const lone = await model.predict([{ a: 1, b: 1, c: 1 }], ctx());
    expectRowsClose(lone, [linearExpected(1, 1, 1)]);
    expect(model.runs - before).toBe(2);
    // Calls from separate callbacks while a run is pending (a loaded gateway: one request per socket read) wait
    // for the check phase and share the next run.
    const during: Promise<OutputRow[]>[] = [];
    const a = model.predict([{ a: 1, b: 2, c: 3 }], ctx());
    setImmediate(() => during.push(model.predict([{ a: 4, b: 5, c: 6 }], ctx())));
    setImmediate(() => during.push(model.predict([{ a: 7, b: 8, c: 9 }], ctx())));
    expectRowsClose(await a, [linearExpected(1, 2, 3)]);
    const [b, c] = await Promise.all(await new Promise<Promise<OutputRow[]>[]>((resolve) => setImmediate(() => resolve(during))));
    expectRowsClose(b!, [linearExpected(4, 5, 6)]);
    expectRowsClose(c!, [linearExpected(7, 8, 9)]);
    expect(model.runs - before).toBe(4);
    await model.dispose();
  });

  it('fails only the coalesced call whose rows are bad; the others get their answers', async () => {
    const model = await runtime.load(bundle(mixedManifest(), mixedDir));
    const row = (i: number) => ({ price: i, promo: i % 2 === 0, count: i, rank: i, city: `c${i}`, member: i % 3 === 0 });
    const alone = await Promise.all([0, 1, 2, 3].map(async (i) => (await model.predict([row(i)], ctx()))[0]));
    const bad = { ...row(9), count: 1.5 };
    const settled = await Promise.allSettled([model.predict([row(0)], ctx()), model.predict([row(1), bad], ctx()), model.predict([row(2)], ctx()), model.predict([row(3)], ctx())]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<unknown[]>).value[0])).toEqual([alone[0], alone[2], alone[3]]);
    await model.dispose();
  });

  it('splits a turn\'s calls into runs of at most coalesceRows rows, skips aborted calls, and can be turned off', async () => {
    const small = createOnnxRuntime({ coalesceRows: 4 });
    const model = await small.load(bundle(linearManifest(), linearDir));
    const ac = new AbortController();
    const before = model.runs;
    const live = Array.from({ length: 10 }, (_, i) => model.predict([{ a: i, b: 0, c: 0 }], ctx()));
    const aborted = model.predict([{ a: 1, b: 1, c: 1 }], { signal: ac.signal });
    ac.abort();
    expect((await codeOf(aborted)).code).toBe('CANCELLED');
    const outs = await Promise.all(live);
    expect(model.runs - before).toBe(3);
    outs.forEach((out, i) => expectRowsClose(out, [linearExpected(i, 0, 0)]));
    await model.dispose();
    const off = await createOnnxRuntime({ coalesceRows: 1 }).load(bundle(linearManifest(), linearDir));
    const offBefore = off.runs;
    await Promise.all(rows.map((r) => off.predict([r], ctx())));
    expect(off.runs - offBefore).toBe(rows.length);
    await off.dispose();
    await small.close();
  });

  it('rejects a bundle of another runtime with INVALID_ARGUMENT', async () => {
    const rules = { name: 'r', version: '1', runtime: 'rules', rules: { file: 'rule.js' }, outputs: [{ name: 'score' }] };
    expect((await codeOf(runtime.load(bundle(rules, linearDir)))).code).toBe('INVALID_ARGUMENT');
  });
});

function externalManifest() {
  const f = (name: string) => ({ name, dtype: 'float32', source: 'request', default: 0 });
  return {
    name: 'external',
    version: '1',
    runtime: 'onnx',
    features: [f('a'), f('b'), f('c'), f('d')],
    onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['a', 'b', 'c', 'd'] }], outputs: [{ name: 'y', kind: 'vector' }] },
  };
}

describe('onnx runtime, process side effects', () => {
  it("leaves no empty /tmp/mat-debug-<pid>.log behind (onnxruntime's telemetry is off unless the environment turns it on)", async () => {
    const rt = createOnnxRuntime();
    const model = await rt.load(bundle(linearManifest(), linearDir));
    try {
      expect(process.env['ORT_DISABLE_TELEMETRY']).toBe('1');
      expect(existsSync(`/tmp/mat-debug-${process.pid}.log`)).toBe(false);
    } finally {
      await model.dispose();
      await rt.close();
    }
  });
});
