/**
 * Drift of serving traffic against the training data: the population stability index (PSI),
 *   PSI = sum over bins of (s - t) * ln(s / t),
 * with t a bin's share of the training values and s its share of the serving values, each share at least
 * PSI_FLOOR so that an empty bin counts as rare, not impossible.
 * - Numeric values: the bins are the training histogram's (manifest `statistics`). The gateways count serving
 *   values into exactly those bins (ValueSummary.training_bins), so the shares are exact; a summary without them
 *   (a gateway that had no training histogram for the value) is read off its quantile sketch at the bin edges
 *   (cdfAt: values within 2% of an edge may be counted on its other side; that error shows on narrow features).
 * - Categorical values: one bin per training category, plus one for every other value (categories the training
 *   data did not have and its `other`); the serving shares are the categories' counts.
 * Common reading: below 0.1 no real change, 0.1 to 0.25 some, above 0.25 a shift worth acting on. The defaulted
 * share is reported beside it, not mixed into it.
 */
import type { ValueStatistics } from '../runtimes/manifest-fields.ts';
import type { ValueSummary } from '../proto/gen/sibyl/v1/statistics_pb.js';
import { cdfAt, sketchFromMessage } from './sketch.ts';

/** The least share a bin counts with, training or serving. */
export const PSI_FLOOR = 1e-4;

/** Method names as the API reports them. */
export type DriftMethod = 'psi-histogram' | 'psi-categories';

export interface Drift {
  readonly method: DriftMethod;
  readonly psi: number;
  /** The bins compared, in order: their labels, training and serving shares. */
  readonly bins: readonly { readonly bin: string; readonly training: number; readonly serving: number }[];
}

/** PSI of two distributions over the same bins (shares need not sum to exactly 1). */
export function psi(training: readonly number[], serving: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < training.length; i++) {
    const t = Math.max(training[i]!, PSI_FLOOR);
    const s = Math.max(serving[i]!, PSI_FLOOR);
    sum += (s - t) * Math.log(s / t);
  }
  return sum;
}

/**
 * The drift of a serving summary from its training statistics; undefined when either side has no values or they
 * are of different kinds (a numeric training histogram against serving categories).
 */
export function driftOf(training: ValueStatistics, serving: ValueSummary): Drift | undefined {
  if (training.histogram && serving.sketch && serving.values > 0n) return histogramDrift(training, serving);
  if (training.categories && serving.values > 0n && !serving.sketch) return categoryDrift(training, serving);
  return undefined;
}

function histogramDrift(training: ValueStatistics, serving: ValueSummary): Drift | undefined {
  const { edges, counts } = training.histogram!;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  const t = counts.map((c) => c / total);
  let s: number[];
  const exact = serving.trainingBins;
  const binned = exact.reduce((a, b) => a + b, 0);
  if (exact.length === counts.length && binned > 0) {
    s = exact.map((n) => n / binned);
  } else {
    const sketch = sketchFromMessage(serving.sketch!);
    s = [];
    let previous = 0;
    for (const e of edges) {
      const at = cdfAt(sketch, e);
      s.push(Math.max(0, at - previous));
      previous = Math.max(previous, at);
    }
    s.push(Math.max(0, 1 - previous));
  }
  const label = (i: number) => (i === 0 ? `<= ${edges[0]}` : i === edges.length ? `> ${edges[i - 1]}` : `(${edges[i - 1]}, ${edges[i]}]`);
  return { method: 'psi-histogram', psi: psi(t, s), bins: t.map((share, i) => ({ bin: label(i), training: share, serving: s[i]! })) };
}

/** The bin of every value the training categories do not name. */
const OTHER = '(other)';

function categoryDrift(training: ValueStatistics, serving: ValueSummary): Drift | undefined {
  const cats = Object.keys(training.categories!);
  const tTotal = cats.reduce((a, k) => a + training.categories![k]!, training.other);
  const sTotal = Number(serving.values);
  if (tTotal <= 0 || sTotal <= 0) return undefined;
  const t = [...cats.map((k) => training.categories![k]! / tTotal), training.other / tTotal];
  const known = cats.map((k) => Number(serving.categories[k] ?? 0n));
  const s = [...known.map((n) => n / sTotal), (sTotal - known.reduce((a, b) => a + b, 0)) / sTotal];
  return { method: 'psi-categories', psi: psi(t, s), bins: [...cats, OTHER].map((bin, i) => ({ bin, training: t[i]!, serving: s[i]! })) };
}
