/**
 * The conformance suite every runtime passes (ARCHITECTURE.md, "Plug-ins and roles"). Call it from a runtime's
 * test file:
 *
 *   runtimeConformance('onnx', () => createOnnxRuntime(), (variant) => bundleFor(variant), rows);
 *
 * `makeBundle('valid')` must load; `'missing-file'` names a model/rule file that is not in the bundle;
 * `'mismatched'` names inputs/outputs (tensor names, exports) that the artifact does not have.
 * `sampleRows` should hold at least 3 distinct rows. Output names default to the manifest's onnx outputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeatureRow, LoadedModel, ModelBundle, OutputRow, Runtime } from '../../runtimes/contract.ts';
import type { Manifest } from '../../runtimes/manifest.ts';
import { SibylError } from '../../core/errors.ts';

export type BundleVariant = 'valid' | 'missing-file' | 'mismatched';

function onnxOutputNames(m: Manifest): string[] {
  return (m.onnx?.outputs ?? []).map((o) => o.as ?? o.name);
}

/** Numbers equal within 1e-6 (relative for big values), everything else exactly. */
export function expectRowsClose(actual: readonly OutputRow[], expected: readonly OutputRow[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i]!;
    expect(Object.keys(row).sort()).toEqual(Object.keys(want).sort());
    for (const [k, v] of Object.entries(want)) {
      const got = row[k];
      if (typeof v === 'number') {
        expect(typeof got).toBe('number');
        expect(Math.abs((got as number) - v)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(v)));
      } else if (Array.isArray(v) && v.every((x) => typeof x === 'number')) {
        expect(Array.isArray(got)).toBe(true);
        const g = got as number[];
        expect(g.length).toBe(v.length);
        (v as number[]).forEach((x, j) => expect(Math.abs(g[j]! - x)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(x))));
      } else {
        expect(got).toEqual(v);
      }
    }
  });
}

async function expectCode(p: Promise<unknown>, codes: readonly string[]): Promise<SibylError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(SibylError);
  expect(codes).toContain((err as SibylError).code);
  return err as SibylError;
}

export function runtimeConformance(
  name: string,
  makeRuntime: () => Runtime | Promise<Runtime>,
  makeBundle: (variant: BundleVariant) => ModelBundle | Promise<ModelBundle>,
  sampleRows: readonly FeatureRow[],
  outputNames: (m: Manifest) => string[] = onnxOutputNames,
): void {
  describe(`runtime conformance: ${name}`, () => {
    let runtime: Runtime;
    let bundle: ModelBundle;
    let model: LoadedModel;
    const ctx = (): { signal: AbortSignal } => ({ signal: new AbortController().signal });

    beforeAll(async () => {
      runtime = await makeRuntime();
      bundle = await makeBundle('valid');
      model = await runtime.load(bundle);
    });
    afterAll(async () => {
      await model?.dispose();
      const closable = runtime as Runtime & { close?: () => Promise<void> };
      await closable?.close?.();
    });

    it('returns one row per input row, keyed by the manifest output names', async () => {
      const out = await model.predict(sampleRows, ctx());
      expect(out).toHaveLength(sampleRows.length);
      const names = outputNames(bundle.manifest).sort();
      for (const row of out) expect(Object.keys(row).sort()).toEqual(names);
    });

    it('returns no rows for no input rows', async () => {
      expect(await model.predict([], ctx())).toEqual([]);
    });

    it('answers a batch exactly as it answers each row alone', async () => {
      const batch = await model.predict(sampleRows, ctx());
      const singles: OutputRow[] = [];
      for (const row of sampleRows) singles.push(...(await model.predict([row], ctx())));
      expectRowsClose(batch, singles);
    });

    it('answers concurrent predictions each with its own rows', async () => {
      const singles = await Promise.all(sampleRows.map((r) => model.predict([r], ctx())));
      const calls = Array.from({ length: 24 }, (_, i) => {
        const rows = [sampleRows[i % sampleRows.length]!, sampleRows[(i + 1) % sampleRows.length]!];
        return { rows: [i % sampleRows.length, (i + 1) % sampleRows.length], out: model.predict(rows, ctx()) };
      });
      for (const c of calls) expectRowsClose(await c.out, c.rows.flatMap((j) => singles[j]!));
    });

    it('rejects a call whose signal is already aborted with CANCELLED or DEADLINE_EXCEEDED', async () => {
      const ac = new AbortController();
      ac.abort();
      await expectCode(model.predict(sampleRows, { signal: ac.signal }), ['CANCELLED', 'DEADLINE_EXCEEDED']);
      const timedOut = AbortSignal.abort(new DOMException('deadline', 'TimeoutError'));
      await expectCode(model.predict(sampleRows, { signal: timedOut }), ['CANCELLED', 'DEADLINE_EXCEEDED']);
      // The model still serves afterwards.
      expect(await model.predict(sampleRows.slice(0, 1), ctx())).toHaveLength(1);
    });

    it('rejects predictions after dispose instead of crashing, and dispose is idempotent', async () => {
      const other = await runtime.load(bundle);
      expect(await other.predict(sampleRows, ctx())).toHaveLength(sampleRows.length);
      await other.dispose();
      await expectCode(other.predict(sampleRows, ctx()), ['FAILED_PRECONDITION', 'UNAVAILABLE']);
      await other.dispose();
      // Other loaded versions of the same bundle are unaffected.
      expect(await model.predict(sampleRows, ctx())).toHaveLength(sampleRows.length);
    });

    it('rejects a bundle whose manifest names a missing file with INVALID_ARGUMENT', async () => {
      await expectCode(runtime.load(await makeBundle('missing-file')), ['INVALID_ARGUMENT']);
    });

    it('rejects a bundle whose manifest does not match the artifact with INVALID_ARGUMENT', async () => {
      await expectCode(runtime.load(await makeBundle('mismatched')), ['INVALID_ARGUMENT']);
    });
  });
}
