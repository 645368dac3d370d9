/**
 * The comparison of one model version's executions with another's on the same rows: how many ran, how many failed
 * (by code), how long they took, and how far their outputs were from the reference's, output by output:
 * - numbers (float outputs, one per row): the absolute difference, its mean and its distribution (p50/p90/p99/max);
 * - vectors (probabilities, embeddings): the mean absolute difference over the elements, one sample per row;
 * - labels (integer, boolean and string outputs): the agreement rate.
 * Shadows (gateway/shadow/shadow-stats.ts: the live version against each shadow, online) and replays (replay/:
 * the logged live outputs against a candidate) report exactly this. Percentiles never exceed the maximum (an HDR
 * bucket's upper end can).
 */
import { build, type Histogram } from 'hdr-histogram-js';
import type { OutputRow, Value } from '../runtimes/contract.ts';
import type { OutputSpec } from '../runtimes/manifest.ts';

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export type OutputComparison =
  | { readonly kind: 'number'; readonly count: number; readonly meanAbsDiff: number; readonly absDiff: Percentiles }
  | { readonly kind: 'label'; readonly count: number; readonly agreement: number };

export interface ComparisonSnapshot {
  /** Executions that ran (succeeded or failed). */
  readonly executed: number;
  /** Failed executions by error code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Execution latency, milliseconds; zeros before the first execution. */
  readonly latencyMs: Percentiles;
  /** Per output name both versions return with the same kind. */
  readonly outputs: Readonly<Record<string, OutputComparison>>;
}


/** Absolute differences are kept in millionths in an integer histogram: 1e-6 resolution, 2 significant digits. */
const DIFF_SCALE = 1e6;

class NumberDiff {
  readonly kind = 'number';
  count = 0;
  sum = 0;
  readonly hist: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e15, numberOfSignificantValueDigits: 2 });
  add(d: number): void {
    this.count++;
    this.sum += d;
    this.hist.recordValue(Math.min(Math.round(d * DIFF_SCALE), 1e15));
  }
  snapshot(): OutputComparison {
    const max = this.hist.maxValue / DIFF_SCALE;
    const at = (p: number) => Math.min(this.hist.getValueAtPercentile(p) / DIFF_SCALE, max);
    return {
      kind: 'number',
      count: this.count,
      meanAbsDiff: this.count ? this.sum / this.count : 0,
      absDiff: { p50: at(50), p90: at(90), p99: at(99), max },
    };
  }
}

class LabelAgreement {
  readonly kind = 'label';
  count = 0;
  agreed = 0;
  add(same: boolean): void {
    this.count++;
    if (same) this.agreed++;
  }
  snapshot(): OutputComparison {
    return { kind: 'label', count: this.count, agreement: this.count ? this.agreed / this.count : 0 };
  }
}

/** How one output is compared, decided once per pair from the two versions' output specs. */
interface Comparator {
  readonly name: string;
  readonly mode: 'number' | 'vector' | 'label';
  readonly acc: NumberDiff | LabelAgreement;
}

/**
 * The difference of one row's output: the absolute difference of a number, the mean absolute difference of a
 * vector, 0 or 1 for a label that agrees or not; NaN when not comparable.
 */
export type RowDifference = (row: number, output: string, difference: number) => void;

export class VersionComparison {
  executed = 0;
  readonly errors = new Map<string, number>();
  /** Microseconds. */
  readonly latency: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
  readonly #comparators: readonly Comparator[];

  /** `reference` is the version compared against (the live one); `other` the shadow or the candidate. */
  constructor(reference: { readonly outputs: readonly OutputSpec[] }, other: { readonly outputs: readonly OutputSpec[] }) {
    const theirs = new Map(other.outputs.map((o) => [o.name, o]));
    const comparators: Comparator[] = [];
    for (const o of reference.outputs) {
      const s = theirs.get(o.name);
      if (!s || s.kind !== o.kind) continue;
      const numeric = isFloat(o.dtype) && isFloat(s.dtype);
      if (o.kind === 'vector') {
        if (numeric || (isNumeric(o.dtype) && isNumeric(s.dtype))) comparators.push({ name: o.name, mode: 'vector', acc: new NumberDiff() });
      } else if (numeric) {
        comparators.push({ name: o.name, mode: 'number', acc: new NumberDiff() });
      } else {
        comparators.push({ name: o.name, mode: 'label', acc: new LabelAgreement() });
      }
    }
    this.#comparators = comparators;
  }

  /** The outputs compared, and how. */
  get compared(): readonly { readonly name: string; readonly mode: 'number' | 'vector' | 'label' }[] {
    return this.#comparators.map((c) => ({ name: c.name, mode: c.mode }));
  }

  /**
   * Records one successful execution: per row, the reference's outputs against the other's. `onRow`, when given,
   * is told each row's difference per output (for the rows that differ most).
   */
  recordSuccess(latencyMs: number, reference: readonly OutputRow[], other: readonly OutputRow[], onRow?: RowDifference): void {
    this.executed++;
    this.latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    const n = Math.min(reference.length, other.length);
    for (const c of this.#comparators) {
      for (let i = 0; i < n; i++) {
        const a = reference[i]![c.name];
        const b = other[i]![c.name];
        if (a === undefined || b === undefined) continue;
        if (c.mode === 'label') {
          const same = sameLabel(a, b);
          (c.acc as LabelAgreement).add(same);
          onRow?.(i, c.name, same ? 0 : 1);
        } else {
          const d = c.mode === 'number' ? Math.abs(Number(a) - Number(b)) : meanAbsDiff(a, b);
          if (Number.isFinite(d)) (c.acc as NumberDiff).add(d);
          onRow?.(i, c.name, d);
        }
      }
    }
  }

  recordError(latencyMs: number, code: string): void {
    this.executed++;
    this.latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  snapshot(): ComparisonSnapshot {
    const max = this.latency.maxValue / 1000;
    const ms = (p: number) => Math.min(this.latency.getValueAtPercentile(p) / 1000, max);
    const outputs: Record<string, OutputComparison> = {};
    for (const c of this.#comparators) outputs[c.name] = c.acc.snapshot();
    return {
      executed: this.executed,
      errors: Object.fromEntries(this.errors),
      latencyMs: this.executed ? { p50: ms(50), p90: ms(90), p99: ms(99), max } : { p50: 0, p90: 0, p99: 0, max: 0 },
      outputs,
    };
  }
}

const isFloat = (d: string) => d === 'float32' || d === 'float64';
const isNumeric = (d: string) => d !== 'string' && d !== 'bool';

function sameLabel(a: Value, b: Value): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return JSON.stringify(a) === JSON.stringify(b);
  // An int64 label may come back as a number from one model and a string from another.
  return a === b || String(a) === String(b);
}

function meanAbsDiff(a: Value, b: Value): number {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length || a.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(Number(a[i]) - Number(b[i]));
  return s / a.length;
}
