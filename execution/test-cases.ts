/**
 * A manifest's test cases run against a loaded model version: the gate a version passes before the control tower
 * stores it, a gateway's warm-up (its first case), and what `sibyl rules test` runs. Each case's features are
 * completed with the manifest's defaults and run through the one execution step (execute.ts) as a one-row
 * request, a composed rule getting the case's `models` as its models' outputs; every expected output is compared:
 * - numbers within the case's absolute tolerance: |actual - expected| <= tolerance (default 1e-5); a string output
 *   that reads as a number (a classifier's label) is compared as that number;
 * - vectors element by element the same way, and of the same length;
 * - strings and booleans exactly.
 * Outputs the case does not name are not compared.
 */
import { SibylError, toSibylError } from '../core/errors.ts';
import type { OutputRow, Scalar, Value } from '../runtimes/contract.ts';
import type { FeatureSpec, Manifest, TestCase } from '../runtimes/manifest.ts';
import { execute, type ExecutionDeps } from './execute.ts';
import type { InputRow } from './feature-plan.ts';
import { inlineOnly } from './feature-store.ts';
import type { ModelVersion } from './model-version.ts';

export interface TestCaseFailure {
  /** The case's name from the manifest. */
  readonly name: string;
  /** One line per problem: an output that differs (expected, actual, by how much), a bad feature, or the model's error. */
  readonly problems: readonly string[];
}

export interface RunTestCasesOptions {
  /** Deadline of one case's predict, ms (default 10 000). */
  readonly timeoutMs?: number;
}

/** One case (or one free-form row) as it ran: what went in, what came out, what differed, how long it took. */
export interface CaseReport {
  readonly name: string;
  /** The row the model saw: the case's features completed with the manifest's defaults. */
  readonly features: Readonly<Record<string, Scalar>>;
  readonly expected: Readonly<Record<string, Value>>;
  /** The model's outputs; absent when it failed or the features did not fit. */
  readonly outputs?: Readonly<Record<string, Value>>;
  /** The model's error, when it failed. */
  readonly error?: { readonly code: string; readonly message: string };
  /** One line per problem, as in TestCaseFailure; empty when the case passed. */
  readonly problems: readonly string[];
  /** Wall-clock time of the execution step, milliseconds (0 when it did not run). */
  readonly ms: number;
}

/** Runs every case in order; resolves with the failures (empty when all pass). Never rejects for a failing model. */
export async function runTestCases(version: ModelVersion, options: RunTestCasesOptions = {}): Promise<TestCaseFailure[]> {
  const reports = await reportTestCases(version, version.manifest.tests, options);
  return reports.filter((r) => r.problems.length > 0).map((r) => ({ name: r.name, problems: r.problems }));
}

/**
 * Runs `cases` in order (the manifest's, or free-form rows as cases with nothing expected) and reports each: its
 * row, outputs, error, problems and time. Never rejects for a failing model.
 */
export async function reportTestCases(version: ModelVersion, cases: readonly TestCase[], options: RunTestCasesOptions = {}): Promise<CaseReport[]> {
  const reports: CaseReport[] = [];
  for (const tc of cases) {
    const problems = checkFeatures(tc, version.manifest);
    const base = { name: tc.name, features: testCaseRow(version.manifest, tc).features, expected: tc.expected };
    if (problems.length) {
      reports.push({ ...base, problems, ms: 0 });
      continue;
    }
    const started = performance.now();
    try {
      const outputs = await runTestCase(version, tc, options);
      reports.push({ ...base, outputs, problems: compare(tc, outputs), ms: performance.now() - started });
    } catch (err) {
      const e = toSibylError(err);
      reports.push({ ...base, error: { code: e.code, message: e.message }, problems: [`the model failed: ${e.code}: ${e.message}`], ms: performance.now() - started });
    }
  }
  return reports;
}

/**
 * Runs one case through the execution step and resolves with the model's outputs; rejects with the step's
 * SibylError. The case's features must fit the manifest (`checkFeatures`).
 */
export async function runTestCase(version: ModelVersion, tc: TestCase, options: RunTestCasesOptions = {}): Promise<OutputRow> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const run = execute(version, [testCaseRow(version.manifest, tc)], CASE_DEPS, { signal, models: tc.models ? [tc.models] : undefined });
  // A runtime that ignores the signal still ends the case at its deadline.
  const deadline = new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(new SibylError('DEADLINE_EXCEEDED', `the test case took more than ${options.timeoutMs ?? 10_000} ms`)), { once: true }),
  );
  const { outputs } = await Promise.race([run, deadline]);
  return outputs[0]!;
}

/** A case as a request row: its features, the manifest's defaults for the rest (0/1 for a bool read as false/true). */
export function testCaseRow(manifest: Manifest, tc: TestCase): InputRow {
  const features: Record<string, Scalar> = {};
  for (const f of manifest.features) {
    let v = (tc.features[f.name] ?? f.default) as Scalar;
    if (f.dtype === 'bool' && typeof v === 'number') v = v === 1;
    else if (f.dtype !== 'bool' && f.dtype !== 'string' && typeof v === 'boolean') v = v ? 1 : 0;
    features[f.name] = v;
  }
  return { entities: {}, features };
}

/** A case gives every feature inline: the store is never read. */
const CASE_DEPS: ExecutionDeps = { store: inlineOnly, featurePrefix: '', featureTimeoutMs: 0 };

/** Features a case gives that the manifest does not declare, or whose value is not of the declared type. */
export function checkFeatures(tc: TestCase, manifest: Manifest): string[] {
  const specs = new Map(manifest.features.map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const [k, v] of Object.entries(tc.features)) {
    const spec = specs.get(k);
    if (!spec) problems.push(`features.${k}: the manifest declares no feature "${k}"`);
    else if (!fits(spec, v)) problems.push(`features.${k}: ${show(v)} is not a ${spec.dtype} value`);
  }
  return problems;
}

function fits(spec: FeatureSpec, v: Scalar): boolean {
  if (spec.dtype === 'string') return typeof v === 'string';
  if (spec.dtype === 'bool') return typeof v === 'boolean' || v === 0 || v === 1;
  return typeof v === 'number' || typeof v === 'boolean';
}

/** The differences between a case's expected outputs and what the model returned, one line each. */
export function compare(tc: TestCase, actual: Readonly<Record<string, Value>>): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(tc.expected)) {
    const got = actual[name];
    if (got === undefined) {
      problems.push(`${name}: expected ${show(want)}, the model returned no such output (it returned ${Object.keys(actual).map((k) => `"${k}"`).join(', ') || 'nothing'})`);
      continue;
    }
    if (Array.isArray(want)) {
      if (!Array.isArray(got) || got.length !== want.length) {
        problems.push(`${name}: expected ${show(want)}, got ${show(got)}${Array.isArray(got) ? ` (${got.length} elements, not ${want.length})` : ''}`);
        continue;
      }
      const bad = want.flatMap((w, i) => (same(w, got[i], tc.tolerance) ? [] : [i]));
      if (bad.length) {
        const i = bad[0]!;
        const more = bad.length > 1 ? `; ${bad.length} of ${want.length} elements differ` : '';
        problems.push(`${name}[${i}]: expected ${show(want[i])}, got ${show(got[i])}${detail(want[i], got[i], tc.tolerance, more)}`);
      }
    } else if (!same(want, got, tc.tolerance)) {
      problems.push(`${name}: expected ${show(want)}, got ${show(got)}${detail(want, got, tc.tolerance, '')}`);
    }
  }
  return problems;
}

/** Failures as readable text: a block per case, a "  - " line per problem. */
export function formatFailures(failures: readonly TestCaseFailure[]): string {
  return failures.map((f) => `test case "${f.name}":\n${f.problems.map((p) => `  - ${p}`).join('\n')}`).join('\n');
}

function asNumber(v: unknown): unknown {
  return typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
}

function same(want: unknown, got: unknown, tolerance: number): boolean {
  if (typeof want === 'number') {
    const g = asNumber(got);
    return typeof g === 'number' && Number.isFinite(g) && Math.abs(g - want) <= tolerance;
  }
  return want === got;
}

function detail(want: unknown, got: unknown, tolerance: number, more: string): string {
  const g = asNumber(got);
  if (typeof want !== 'number') return more ? ` (${more.slice(2)})` : '';
  if (typeof g !== 'number' || !Number.isFinite(g)) return ` (not a number${more})`;
  return ` (off by ${Math.abs(g - want).toPrecision(3)}; tolerance ${tolerance}${more})`;
}

function show(v: unknown): string {
  return JSON.stringify(v);
}
