/**
 * A manifest's test cases run against a loaded model: the gate a version passes before the control tower stores
 * it, and what `sibyl rules test` runs. Each case's features are completed with the manifest's defaults, the model
 * is called once per case, and every expected output is compared:
 * - numbers within the case's tolerance t: |actual - expected| <= t * max(1, |expected|) (absolute up to 1,
 *   relative above: float32 models are compared with what the float64 training library produced);
 * - vectors element by element the same way, and of the same length;
 * - strings and booleans exactly.
 */
import type { FeatureRow, LoadedModel, Scalar, Value } from './contract.ts';
import { toSibylError } from './errors.ts';
import type { Manifest, TestCase } from './manifest.ts';

export interface TestCaseFailure {
  readonly name: string;
  /** One line per output that differs, or the error the model raised. */
  readonly problems: readonly string[];
}

/** Runs every case; resolves with the failures (empty when all pass). Never rejects for a failing model. */
export async function runTestCases(model: LoadedModel, manifest: Manifest, options: { timeoutMs?: number } = {}): Promise<TestCaseFailure[]> {
  const failures: TestCaseFailure[] = [];
  for (const tc of manifest.tests) {
    const row: FeatureRow = {};
    for (const f of manifest.features) row[f.name] = (tc.features[f.name] ?? f.default) as Scalar;
    for (const k of Object.keys(tc.features)) if (!(k in row)) failures.push({ name: tc.name, problems: [`features.${k}: the model has no feature "${k}"`] });
    try {
      const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
      const [out] = await model.predict([row], { signal });
      const problems = compare(tc, out ?? {});
      if (problems.length) failures.push({ name: tc.name, problems });
    } catch (err) {
      const e = toSibylError(err);
      failures.push({ name: tc.name, problems: [`the model failed: ${e.code}: ${e.message}`] });
    }
  }
  return failures;
}

/** The differences between a case's expected outputs and what the model returned. */
export function compare(tc: TestCase, actual: Readonly<Record<string, Value>>): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(tc.expected)) {
    const got = actual[name];
    if (got === undefined) {
      problems.push(`${name}: expected ${show(want)}, the model returned no such output`);
      continue;
    }
    if (Array.isArray(want)) {
      if (!Array.isArray(got) || got.length !== want.length) {
        problems.push(`${name}: expected ${show(want)}, got ${show(got)}`);
        continue;
      }
      const bad = want.findIndex((w, i) => !same(w, got[i], tc.tolerance));
      if (bad !== -1) problems.push(`${name}[${bad}]: expected ${show(want[bad])}, got ${show(got[bad])}${diff(want[bad], got[bad])} (tolerance ${tc.tolerance})`);
    } else if (!same(want, got, tc.tolerance)) {
      problems.push(`${name}: expected ${show(want)}, got ${show(got)}${diff(want, got)}${typeof want === 'number' ? ` (tolerance ${tc.tolerance})` : ''}`);
    }
  }
  return problems;
}

/** Failures as readable text: one block per case. */
export function formatFailures(failures: readonly TestCaseFailure[]): string {
  return failures.map((f) => `test case "${f.name}":\n${f.problems.map((p) => `  - ${p}`).join('\n')}`).join('\n');
}

function same(want: unknown, got: unknown, tolerance: number): boolean {
  if (typeof want === 'number') {
    const g = typeof got === 'string' && got.trim() !== '' ? Number(got) : got;
    return typeof g === 'number' && Number.isFinite(g) && Math.abs(g - want) <= tolerance * Math.max(1, Math.abs(want));
  }
  return want === got;
}

function diff(want: unknown, got: unknown): string {
  return typeof want === 'number' && typeof got === 'number' ? ` (off by ${Math.abs(got - want).toPrecision(3)})` : '';
}

function show(v: unknown): string {
  return JSON.stringify(v);
}
