/**
 * Serving statistics as the control tower's API, `sibyl stats` and its metrics show them: one model version's
 * merged summaries, per feature and output, beside the training statistics of its manifest, with drift scored
 * against them (drift.ts) and judged against a threshold (the manifest's `statistics.driftThreshold`, else the
 * tower's setting).
 */
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { ValueSummary, VersionStatistics } from '../proto/gen/sibyl/v1/statistics_pb.js';
import type { TrainingStatistics, ValueStatistics } from '../runtimes/manifest-fields.ts';
import { driftOf, type DriftMethod } from './drift.ts';
import { RELATIVE_ACCURACY, quantileOf, sketchFromMessage } from './sketch.ts';

export interface DriftSettings {
  /** PSI above which a value is drifted, when the manifest names none. */
  readonly threshold: number;
  /** Fewest serving values a drift score is computed from (fewer: no score, it would be noise). */
  readonly minValues: number;
}

export interface ValueView {
  readonly kind: 'numeric' | 'categorical';
  /** Rows seen. */
  readonly count: number;
  /** Rows whose value was the declared default, by reason (missing, late, down). */
  readonly defaulted: Readonly<Record<string, number>>;
  /** Share of rows defaulted, 0..1. */
  readonly defaultedShare: number;
  /** Values summarized (count less defaulted and invalid). */
  readonly values: number;
  readonly mean?: number;
  readonly variance?: number;
  readonly min?: number;
  readonly max?: number;
  /** From the sketch, each within 1% (relative) of the true quantile. */
  readonly quantiles?: Readonly<Record<'p1' | 'p5' | 'p25' | 'p50' | 'p75' | 'p95' | 'p99', number>>;
  readonly categories?: Readonly<Record<string, number>>;
  readonly other?: number;
  /** The manifest's training statistics of this value, when it has them. */
  readonly training?: ValueStatistics;
  /** The drift score, when there are training statistics and at least minValues serving values. */
  readonly drift?: { readonly method: DriftMethod; readonly psi: number; readonly threshold: number; readonly drifted: boolean; readonly bins: readonly { bin: string; training: number; serving: number }[] };
  /** Why there is no drift score. */
  readonly noDrift?: string;
}

export interface VersionStatisticsView {
  readonly model: string;
  readonly version: string;
  readonly windowStart?: string;
  readonly windowEnd?: string;
  /** Rows answered in the window. */
  readonly rows: number;
  /** The PSI threshold applied, and where it came from. */
  readonly threshold: number;
  readonly thresholdFrom: 'manifest' | 'tower';
  /** Features and outputs whose drift is over the threshold, as `features.NAME` / `outputs.NAME`. */
  readonly drifted: readonly string[];
  /** The quantiles' relative accuracy. */
  readonly sketchAccuracy: number;
  readonly features: Readonly<Record<string, ValueView>>;
  readonly outputs: Readonly<Record<string, ValueView>>;
}

const QUANTILES = { p1: 0.01, p5: 0.05, p25: 0.25, p50: 0.5, p75: 0.75, p95: 0.95, p99: 0.99 } as const;

export function statisticsView(s: VersionStatistics, training: TrainingStatistics | undefined, settings: DriftSettings): VersionStatisticsView {
  const threshold = training?.driftThreshold ?? settings.threshold;
  const drifted: string[] = [];
  const side = (which: 'features' | 'outputs') => {
    const out: Record<string, ValueView> = {};
    for (const name of Object.keys(s[which]).sort()) {
      const v = valueView(s[which][name]!, training?.[which][name], threshold, settings.minValues);
      if (v.drift?.drifted) drifted.push(`${which}.${name}`);
      out[name] = v;
    }
    return out;
  };
  const features = side('features');
  const outputs = side('outputs');
  return {
    model: s.model,
    version: s.version,
    ...(s.windowStart ? { windowStart: timestampDate(s.windowStart).toISOString() } : {}),
    ...(s.windowEnd ? { windowEnd: timestampDate(s.windowEnd).toISOString() } : {}),
    rows: Number(s.rows),
    threshold,
    thresholdFrom: training?.driftThreshold !== undefined ? 'manifest' : 'tower',
    drifted,
    sketchAccuracy: RELATIVE_ACCURACY,
    features,
    outputs,
  };
}

function valueView(v: ValueSummary, training: ValueStatistics | undefined, threshold: number, minValues: number): ValueView {
  const count = Number(v.count);
  const defaulted = Object.fromEntries(Object.entries(v.defaulted).map(([k, n]) => [k, Number(n)]));
  const defaultedTotal = Object.values(defaulted).reduce((a, b) => a + b, 0);
  const values = Number(v.values);
  const base = { count, defaulted, defaultedShare: count ? defaultedTotal / count : 0, values };
  let view: ValueView;
  if (v.sketch) {
    const sketch = sketchFromMessage(v.sketch);
    const quantiles = Object.fromEntries(Object.entries(QUANTILES).map(([k, q]) => [k, values ? quantileOf(sketch, q) : 0])) as ValueView['quantiles'];
    view = { kind: 'numeric', ...base, mean: v.mean, variance: v.variance, min: v.min, max: v.max, ...(quantiles ? { quantiles } : {}) };
  } else {
    view = { kind: 'categorical', ...base, categories: Object.fromEntries(Object.entries(v.categories).map(([k, n]) => [k, Number(n)])), other: Number(v.other) };
  }
  if (!training) return { ...view, noDrift: 'the manifest has no training statistics for it' };
  if (values < minValues) return { ...view, training, noDrift: `${values} serving values, fewer than the ${minValues} a drift score needs` };
  const d = driftOf(training, v);
  if (!d) return { ...view, training, noDrift: 'training and serving summaries are of different kinds' };
  return { ...view, training, drift: { method: d.method, psi: d.psi, threshold, drifted: d.psi > threshold, bins: d.bins } };
}

/** One version's statistics in one cell, merged over its live replicas (what the tower's API answers). */
export interface CellVersionStatistics extends VersionStatisticsView {
  readonly cell: string;
  /** The replicas merged. */
  readonly replicas: readonly string[];
}
