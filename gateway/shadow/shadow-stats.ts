/**
 * The online comparison of each (live, shadow) pair: how many shadow executions ran, were shed or failed, how long
 * the shadow took, and how far its outputs were from the live ones, output by output:
 * - numbers (float outputs, one per row): the absolute difference, its mean and its distribution (p50/p90/p99/max);
 * - vectors (probabilities, embeddings): the mean absolute difference over the elements, one sample per row;
 * - labels (integer, boolean and string outputs): the agreement rate.
 * A pair is (live model, live version) against (shadow model, shadow version). Updated off the request path (by
 * the shadow runner); read by `/metrics` and `GET /v1/shadows`.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import type { OutputRow, Value } from '../../runtimes/contract.ts';
import type { OutputSpec } from '../../runtimes/manifest.ts';

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export type OutputComparison =
  | { readonly kind: 'number'; readonly count: number; readonly meanAbsDiff: number; readonly absDiff: Percentiles }
  | { readonly kind: 'label'; readonly count: number; readonly agreement: number };

export interface ShadowPairSnapshot {
  readonly live: { readonly model: string; readonly version: string };
  readonly shadow: { readonly model: string; readonly version: string };
  /** Shadow executions that ran (succeeded or failed). */
  readonly executed: number;
  /** Shadow executions not run because the queue was full or the gateway was busy. */
  readonly shed: number;
  /** Failed executions by error code (DEADLINE_EXCEEDED for a shadow past its own deadline). */
  readonly errors: Readonly<Record<string, number>>;
  /** Shadow latency (its own enrichment and model call), milliseconds; zeros before the first execution. */
  readonly latencyMs: Percentiles;
  /** Per output name both models return with the same kind. */
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
    const at = (p: number) => this.hist.getValueAtPercentile(p) / DIFF_SCALE;
    return {
      kind: 'number',
      count: this.count,
      meanAbsDiff: this.count ? this.sum / this.count : 0,
      absDiff: { p50: at(50), p90: at(90), p99: at(99), max: this.hist.maxValue / DIFF_SCALE },
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

/** How one output is compared, decided once per pair from the two models' output specs. */
interface Comparator {
  readonly name: string;
  readonly mode: 'number' | 'vector' | 'label';
  readonly acc: NumberDiff | LabelAgreement;
}

export class ShadowPair {
  readonly liveModel: string;
  readonly liveVersion: string;
  readonly shadowModel: string;
  readonly shadowVersion: string;
  executed = 0;
  shed = 0;
  readonly errors = new Map<string, number>();
  /** Microseconds. */
  readonly latency: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
  readonly #comparators: readonly Comparator[];

  constructor(live: { model: string; version: string; outputs: readonly OutputSpec[] }, shadow: { model: string; version: string; outputs: readonly OutputSpec[] }) {
    this.liveModel = live.model;
    this.liveVersion = live.version;
    this.shadowModel = shadow.model;
    this.shadowVersion = shadow.version;
    const theirs = new Map(shadow.outputs.map((o) => [o.name, o]));
    const comparators: Comparator[] = [];
    for (const o of live.outputs) {
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

  /** Records one successful shadow execution: per row, live outputs against shadow outputs. */
  recordSuccess(latencyMs: number, live: readonly OutputRow[], shadow: readonly OutputRow[]): void {
    this.executed++;
    this.latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    const n = Math.min(live.length, shadow.length);
    for (const c of this.#comparators) {
      for (let i = 0; i < n; i++) {
        const a = live[i]![c.name];
        const b = shadow[i]![c.name];
        if (a === undefined || b === undefined) continue;
        if (c.mode === 'label') (c.acc as LabelAgreement).add(sameLabel(a, b));
        else {
          const d = c.mode === 'number' ? Math.abs(Number(a) - Number(b)) : meanAbsDiff(a, b);
          if (Number.isFinite(d)) (c.acc as NumberDiff).add(d);
        }
      }
    }
  }

  recordError(latencyMs: number, code: string): void {
    this.executed++;
    this.latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  recordShed(): void {
    this.shed++;
  }

  snapshot(): ShadowPairSnapshot {
    const us = (p: number) => this.latency.getValueAtPercentile(p) / 1000;
    const outputs: Record<string, OutputComparison> = {};
    for (const c of this.#comparators) outputs[c.name] = c.acc.snapshot();
    return {
      live: { model: this.liveModel, version: this.liveVersion },
      shadow: { model: this.shadowModel, version: this.shadowVersion },
      executed: this.executed,
      shed: this.shed,
      errors: Object.fromEntries(this.errors),
      latencyMs: this.executed ? { p50: us(50), p90: us(90), p99: us(99), max: this.latency.maxValue / 1000 } : { p50: 0, p90: 0, p99: 0, max: 0 },
      outputs,
    };
  }
}

/** All pairs of one gateway, created on first use. Pairs whose models were undeployed stay until `reset`. */
export class ShadowStats {
  readonly #pairs = new Map<string, ShadowPair>();

  pair(live: { model: string; version: string; outputs: readonly OutputSpec[] }, shadow: { model: string; version: string; outputs: readonly OutputSpec[] }): ShadowPair {
    const key = `${live.model}\u0000${live.version}\u0000${shadow.model}\u0000${shadow.version}`;
    let p = this.#pairs.get(key);
    if (!p) this.#pairs.set(key, (p = new ShadowPair(live, shadow)));
    return p;
  }

  /** Every pair, sorted by live model, live version, shadow model, shadow version. */
  snapshot(): ShadowPairSnapshot[] {
    return [...this.#pairs.values()]
      .sort((a, b) => cmp(a.liveModel, b.liveModel) || cmp(a.liveVersion, b.liveVersion) || cmp(a.shadowModel, b.shadowModel) || cmp(a.shadowVersion, b.shadowVersion))
      .map((p) => p.snapshot());
  }

  reset(): void {
    this.#pairs.clear();
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
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
