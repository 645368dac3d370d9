/** The rules runtime: conformance (both isolations), settings, load errors, output checks, async rules, ctx. */
import { describe, expect, it } from 'vitest';
import { SibylError } from '../../../core/errors.ts';
import type { Manifest } from '../../../runtimes/manifest.ts';
import { createRulesRuntime } from '../../../runtimes/rules/rules-runtime.ts';
import { rulesSettings } from '../../../runtimes/rules/settings.ts';
import { runtimeConformance, type BundleVariant } from '../runtime.case.ts';
import { BLEND_OUTPUTS, BLEND_SOURCE, blendExpected, ctx, ruleBundle } from './rule-bundles.ts';

const sampleRows = [
  { a: 1, b: 2 },
  { a: 3, b: 4 },
  { a: -1.5, b: 0.25 },
];

function variant(v: BundleVariant) {
  if (v === 'missing-file') return ruleBundle(BLEND_SOURCE, { outputs: BLEND_OUTPUTS, rules: { file: 'absent.js' } });
  if (v === 'mismatched') return ruleBundle('export function score(f) { return { score: 1 }; }', { outputs: BLEND_OUTPUTS });
  return ruleBundle(BLEND_SOURCE, { outputs: BLEND_OUTPUTS });
}
const outputNames = (m: Manifest) => (m.outputs ?? []).map((o) => o.name);

runtimeConformance('rules (sandbox process)', () => createRulesRuntime(), variant, sampleRows, outputNames);
runtimeConformance('rules (in process)', () => createRulesRuntime({ isolation: 'in-process' }), variant, sampleRows, outputNames);

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SibylError);
  return { code: (err as SibylError).code, message: (err as SibylError).message };
}

describe('rules runtime', () => {
  const runtime = createRulesRuntime({ isolation: 'in-process' });

  it('computes the declared outputs, batch and single, and drops undeclared ones', async () => {
    const model = await runtime.load(await ruleBundle(BLEND_SOURCE.replace('return {', 'return { extra: 1,'), { outputs: BLEND_OUTPUTS }));
    const out = await model.predict(sampleRows, ctx());
    expect(out).toEqual(sampleRows.map((r) => blendExpected(r.a, r.b)));
    await model.dispose();
  });

  it('awaits async rules', async () => {
    const model = await runtime.load(await ruleBundle('export async function predict(f) { await null; return { score: f.a * 10 }; }'));
    expect(await model.predict([{ a: 2, b: 0 }, { a: 3, b: 0 }], ctx())).toEqual([{ score: 20 }, { score: 30 }]);
    await model.dispose();
  });

  it('passes ctx.model, ctx.version and per-row ctx.models (the composition extension point)', async () => {
    const model = await runtime.load(
      await ruleBundle('export function predict(f, ctx) { return { who: ctx.model + "@" + ctx.version, eta: ctx.models.eta ? ctx.models.eta.minutes : -1 }; }', {
        outputs: [{ name: 'who', dtype: 'string' }, { name: 'eta', dtype: 'float64' }],
      }),
    );
    const out = await model.predict([{ a: 0, b: 0 }, { a: 0, b: 0 }], { ...ctx(), models: [{ eta: { minutes: 31.5 } }, {}] });
    expect(out).toEqual([{ who: 'rule@1', eta: 31.5 }, { who: 'rule@1', eta: -1 }]);
    expect(await model.predict([{ a: 0, b: 0 }], ctx())).toEqual([{ who: 'rule@1', eta: -1 }]);
    await model.dispose();
  });

  it.each([
    ['a missing output', 'export function predict() { return {}; }', [{ name: 'score', dtype: 'float64' }], /output "score" is missing/],
    ['a string for a number', 'export function predict() { return { score: "7" }; }', [{ name: 'score', dtype: 'float64' }], /must be a finite number, got "7"/],
    ['NaN', 'export function predict() { return { score: NaN }; }', [{ name: 'score', dtype: 'float64' }], /finite number, got NaN/],
    ['a fraction for an int', 'export function predict() { return { n: 1.5 }; }', [{ name: 'n', dtype: 'int64' }], /must be an integer/],
    ['a scalar for a vector', 'export function predict() { return { v: 1 }; }', [{ name: 'v', kind: 'vector', dtype: 'float32' }], /must be an array/],
    ['an object in a vector', 'export function predict() { return { v: [1, {}] }; }', [{ name: 'v', kind: 'vector', dtype: 'float32' }], /"v"\[1\] is a object/],
    ['a function', 'export function predict() { return { score: () => 1 }; }', [{ name: 'score', dtype: 'float64' }], /is a function/],
    ['not an object', 'export function predict() { return 42; }', [{ name: 'score', dtype: 'float64' }], /must return an object of outputs, got number/],
  ])('rejects %s with INTERNAL "rule error"', async (_name, source, outputs, message) => {
    const model = await runtime.load(await ruleBundle(source, { outputs }));
    const err = await codeOf(model.predict([{ a: 1, b: 1 }], ctx()));
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toMatch(/^rule error: /);
    expect(err.message).toMatch(message);
    await model.dispose();
  });

  it('reports what the rule threw, as INTERNAL "rule error: ...", and keeps serving', async () => {
    const model = await runtime.load(await ruleBundle('export function predict(f) { if (f.a < 0) throw new RangeError("a must be >= 0"); return { score: f.a }; }'));
    expect(await codeOf(model.predict([{ a: -1, b: 0 }], ctx()))).toEqual({ code: 'INTERNAL', message: 'rule error: RangeError: a must be >= 0' });
    expect(await model.predict([{ a: 4, b: 0 }], ctx())).toEqual([{ score: 4 }]);
    await model.dispose();
  });

  it.each([
    ['a syntax error', 'export function predict( {', /does not compile/],
    ['an import', 'import fs from "node:fs"; export function predict() { return { score: 1 }; }', /cannot import modules/],
    ['a throwing top level', 'throw new Error("boom"); export function predict() {}', /failed while loading: boom/],
    ['a looping top level', 'while (true) {} export function predict() {}', /failed while loading/],
    ['no predict export', 'export const predict = 3;', /must export a function named predict/],
  ])('refuses to load a rule with %s (INVALID_ARGUMENT)', async (_name, source, message) => {
    const err = await codeOf(runtime.load(await ruleBundle(source)));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
  });

  it('refuses bundles that are not rules, and rule files outside the bundle', async () => {
    const b = await ruleBundle(BLEND_SOURCE);
    expect((await codeOf(runtime.load({ ...b, manifest: { ...b.manifest, runtime: 'onnx' } }))).code).toBe('INVALID_ARGUMENT');
    const { symlink } = await import('node:fs/promises');
    await symlink('/etc/hostname', `${b.dir}/link.js`);
    const outside = await codeOf(runtime.load({ ...b, manifest: { ...b.manifest, rules: { ...b.manifest.rules!, file: 'link.js' } } }));
    expect(outside).toEqual({ code: 'INVALID_ARGUMENT', message: 'rules.file: "link.js" resolves outside the bundle' });
  });
});

describe('rules settings', () => {
  const base = { name: 'r', version: '1', runtime: 'rules', outputs: [{ name: 'y' }] } as const;
  const m = (rules?: Record<string, unknown>) => ({ ...base, default: false, description: '', owner: '', features: [], tests: [], outputs: [{ name: 'y', kind: 'scalar', dtype: 'float32' }], rules }) as Manifest;

  it('fills defaults', () => {
    expect(rulesSettings(m())).toEqual({ file: 'rule.js', timeoutMs: 50, memoryMb: 32, models: [] });
  });

  it('reports every problem at once and enforces the hard maxima', () => {
    expect(() => rulesSettings(m({ file: '../x.js', timeoutMs: 5000, memoryMb: 4, extra: 1 }))).toThrow(
      /rules\.file: must be a relative path.*rules\.timeoutMs: .*1000.*rules\.memoryMb: .*8.*Unrecognized key.*extra/,
    );
  });
});
