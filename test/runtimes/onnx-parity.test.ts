/**
 * Parity with the training library: every model under models/<name>/<version>/ (sibyl.yaml + model.onnx +
 * expected.json, written by scripts/models/build.py) answers expected.json's rows through the onnx runtime with the
 * outputs the training library computed, and passes its manifest's own test cases.
 *
 * Tolerance per output: expected.json's `tolerance` when it has one, else the larger of 1e-5 and 1.5x the
 * `max_abs_diff_onnxruntime` that the build measured with Python's onnxruntime on the same rows (a float32 model
 * cannot match a float64 library more closely than that; mispacked columns miss by orders of magnitude more).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FeatureRow, OutputRow, Value } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { createOnnxRuntime } from '../../runtimes/onnx/onnx-runtime.ts';

const MODELS = path.resolve(import.meta.dirname, '../../models');

interface Expected {
  tolerance?: number;
  max_abs_diff_onnxruntime?: Record<string, number>;
  rows: { features: FeatureRow; expected: Record<string, Value> }[];
}

const versions = existsSync(MODELS)
  ? readdirSync(MODELS, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => readdirSync(path.join(MODELS, d.name)).map((v) => path.join(MODELS, d.name, v)))
      .filter((dir) => existsSync(path.join(dir, 'sibyl.yaml')) && existsSync(path.join(dir, 'expected.json')))
      .filter((dir) => parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8')).runtime === 'onnx')
  : [];

function expectClose(actual: OutputRow, expected: Record<string, Value>, tol: (name: string) => number, where: string): void {
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name];
    const wants = Array.isArray(want) ? want : [want];
    const gots = Array.isArray(got) ? got : [got];
    expect(gots.length, `${where} ${name}`).toBe(wants.length);
    wants.forEach((w, i) => {
      if (typeof w === 'number') expect(Math.abs((gots[i] as number) - w), `${where} ${name}[${i}]: ${String(gots[i])} vs ${w}`).toBeLessThanOrEqual(tol(name));
      else expect(gots[i], `${where} ${name}[${i}]`).toEqual(w);
    });
  }
}

describe('onnx parity with the training library', () => {
  const runtime = createOnnxRuntime();
  afterAll(() => runtime.close());

  it('finds the built models', () => {
    expect(versions.length).toBeGreaterThan(0);
  });

  for (const dir of versions) {
    const id = path.relative(MODELS, dir);
    it(`${id}: expected.json rows and manifest tests`, async () => {
      const manifest = parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8'));
      const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;
      const tol = (name: string) => expected.tolerance ?? Math.max(1e-5, 1.5 * (expected.max_abs_diff_onnxruntime?.[name] ?? 0));
      const model = await runtime.load({ manifest, dir, hash: 'test' });
      try {
        const signal = new AbortController().signal;
        expect(expected.rows.length).toBeGreaterThan(0);
        const out = await model.predict(expected.rows.map((r) => r.features), { signal });
        expected.rows.forEach((r, i) => expectClose(out[i]!, r.expected, tol, `${id} row ${i}`));
        for (const t of manifest.tests) {
          const [row] = await model.predict([t.features], { signal });
          expectClose(row!, t.expected, () => t.tolerance, `${id} test "${t.name}"`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
});
