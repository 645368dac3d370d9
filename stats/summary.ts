/**
 * Summaries of one feature or output over a window (the proto message `sibyl.v1.ValueSummary`): accumulated on
 * the gateway's request path, merged across windows, replicas and cells wherever they meet.
 *
 * - Numeric values: count, mean and population variance (from sums shifted by the first value, so a large mean
 *   with a small spread keeps its precision), min, max, a quantile sketch (sketch.ts), and, when the version's
 *   manifest has a training histogram for the value, the count of values in each of its bins (exact drift).
 * - Categorical values (valueKind in runtimes/manifest-fields.ts): the count per category, as its string; at most
 *   MAX_CATEGORIES distinct categories per summary, later new ones counted together in `other`.
 * - Both: the rows whose value was the declared default, by reason, kept out of the summary.
 * Means and variances merge exactly (Chan et al.'s pairwise formula), sketches by adding bins, counts by adding.
 */
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { QuantileSketchSchema, ValueSummarySchema, VersionStatisticsSchema, type ValueSummary, type VersionStatistics } from '../proto/gen/sibyl/v1/statistics_pb.js';
import { MAX_CATEGORIES } from '../runtimes/manifest-fields.ts';
import { mergeSketch, newSketch, sketchFromMessage, sketchMessage, type Sketch } from './sketch.ts';

/** Why a value was the declared default: absent (request or store), the store late, the store down. */
export type DefaultReason = 'missing' | 'late' | 'down';

/** The accumulator of one numeric feature or output over one window. Single-threaded; `add` is the hot path. */
export class NumericAccumulator {
  missing = 0;
  late = 0;
  down = 0;
  /** Values of the wrong type (not a finite number). */
  invalid = 0;
  readonly sketch: Sketch = newSketch();
  /** The training histogram's edges, when the manifest has them, and the count of values in each of its bins. */
  readonly edges: Float64Array | undefined;
  readonly bins: Float64Array | undefined;
  #shift = 0;
  #s1 = 0;
  #s2 = 0;

  constructor(edges?: readonly number[]) {
    this.edges = edges?.length ? Float64Array.from(edges) : undefined;
    this.bins = this.edges ? new Float64Array(this.edges.length + 1) : undefined;
  }

  add(v: unknown): void {
    // v - v is 0 for finite numbers only.
    if (typeof v !== 'number' || v - v !== 0) {
      this.invalid++;
      return;
    }
    if (this.sketch.count === 0) this.#shift = v;
    const d = v - this.#shift;
    this.#s1 += d;
    this.#s2 += d * d;
    this.sketch.accept(v);
    const edges = this.edges;
    if (edges !== undefined) {
      // The first edge >= v is v's bin (bin i holds (edges[i-1], edges[i]]).
      let lo = 0;
      let hi = edges.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (edges[mid]! < v) lo = mid + 1;
        else hi = mid;
      }
      this.bins![lo]!++;
    }
  }

  /** Adds another accumulator's values (another window's) into this one. */
  mergeFrom(o: NumericAccumulator): void {
    this.missing += o.missing;
    this.late += o.late;
    this.down += o.down;
    this.invalid += o.invalid;
    if (this.bins && o.bins && this.bins.length === o.bins.length) for (let i = 0; i < this.bins.length; i++) this.bins[i]! += o.bins[i]!;
    const na = this.sketch.count;
    const nb = o.sketch.count;
    if (nb === 0) return;
    if (na === 0) {
      this.#shift = o.#shift;
      this.#s1 = o.#s1;
      this.#s2 = o.#s2;
    } else {
      // Re-centre o's shifted sums on this shift: sum(x - a) = sum(x - b) + n(b - a), and likewise for the squares.
      const k = o.#shift - this.#shift;
      this.#s1 += o.#s1 + nb * k;
      this.#s2 += o.#s2 + 2 * k * o.#s1 + nb * k * k;
    }
    mergeSketch(this.sketch, o.sketch);
  }

  /** The summary of `count` rows. */
  summary(count: number): ValueSummary {
    const n = this.sketch.count;
    const m = n ? this.#s1 / n : 0;
    return create(ValueSummarySchema, {
      count: BigInt(count),
      defaulted: defaultedOf(this),
      values: BigInt(n),
      mean: n ? this.#shift + m : 0,
      variance: n ? Math.max(0, this.#s2 / n - m * m) : 0,
      min: n ? this.sketch.min : 0,
      max: n ? this.sketch.max : 0,
      sketch: sketchMessage(this.sketch),
      trainingBins: this.bins ? Array.from(this.bins) : [],
    });
  }
}

/** The accumulator of one categorical feature or output over one window. */
export class CategoricalAccumulator {
  missing = 0;
  late = 0;
  down = 0;
  readonly counts = new Map<string, number>();
  other = 0;
  #values = 0;

  add(v: unknown): void {
    const key = typeof v === 'string' ? v : String(v);
    this.#values++;
    const n = this.counts.get(key);
    if (n !== undefined) this.counts.set(key, n + 1);
    else if (this.counts.size < MAX_CATEGORIES) this.counts.set(key, 1);
    else this.other++;
  }

  /** Adds another accumulator's values (another window's) into this one; new categories past the cap go to `other`. */
  mergeFrom(o: CategoricalAccumulator): void {
    this.missing += o.missing;
    this.late += o.late;
    this.down += o.down;
    this.#values += o.#values;
    this.other += o.other;
    for (const [k, n] of o.counts) {
      const mine = this.counts.get(k);
      if (mine !== undefined) this.counts.set(k, mine + n);
      else if (this.counts.size < MAX_CATEGORIES) this.counts.set(k, n);
      else this.other += n;
    }
  }

  summary(count: number): ValueSummary {
    return create(ValueSummarySchema, {
      count: BigInt(count),
      defaulted: defaultedOf(this),
      values: BigInt(this.#values),
      categories: Object.fromEntries([...this.counts].map(([k, n]) => [k, BigInt(n)])),
      other: BigInt(this.other),
    });
  }
}

export type Accumulator = NumericAccumulator | CategoricalAccumulator;

function defaultedOf(a: { missing: number; late: number; down: number }): Record<string, bigint> {
  const d: Record<string, bigint> = {};
  if (a.missing) d.missing = BigInt(a.missing);
  if (a.late) d.late = BigInt(a.late);
  if (a.down) d.down = BigInt(a.down);
  return d;
}

/** Merges two summaries of the same feature or output (either may be undefined). */
export function mergeSummaries(a: ValueSummary | undefined, b: ValueSummary | undefined): ValueSummary {
  if (!a) return b ?? create(ValueSummarySchema);
  if (!b) return a;
  const na = Number(a.values);
  const nb = Number(b.values);
  const n = na + nb;
  const delta = b.mean - a.mean;
  const mean = n ? a.mean + (delta * nb) / n : 0;
  const m2 = a.variance * na + b.variance * nb + (n ? (delta * delta * na * nb) / n : 0);
  const defaulted: Record<string, bigint> = { ...a.defaulted };
  for (const [k, v] of Object.entries(b.defaulted)) defaulted[k] = (defaulted[k] ?? 0n) + v;
  const categories: Record<string, bigint> = { ...a.categories };
  for (const [k, v] of Object.entries(b.categories)) categories[k] = (categories[k] ?? 0n) + v;
  let sketch = a.sketch;
  if (a.sketch && b.sketch) {
    const s = sketchFromMessage(a.sketch);
    mergeSketch(s, sketchFromMessage(b.sketch));
    sketch = create(QuantileSketchSchema, sketchMessage(s));
  } else sketch ??= b.sketch;
  const numeric = a.sketch !== undefined || b.sketch !== undefined;
  return create(ValueSummarySchema, {
    count: a.count + b.count,
    defaulted,
    values: a.values + b.values,
    mean: numeric ? mean : 0,
    variance: numeric && n ? Math.max(0, m2 / n) : 0,
    min: na && nb ? Math.min(a.min, b.min) : na ? a.min : b.min,
    max: na && nb ? Math.max(a.max, b.max) : na ? a.max : b.max,
    ...(sketch ? { sketch } : {}),
    categories,
    other: a.other + b.other,
    trainingBins: addBins(a.trainingBins, b.trainingBins),
  });
}

/** Bin counts added; one side empty: the other; of different lengths (not the same edges): none. */
function addBins(a: readonly number[], b: readonly number[]): number[] {
  if (a.length === 0) return [...b];
  if (b.length === 0) return [...a];
  return a.length === b.length ? a.map((n, i) => n + b[i]!) : [];
}

/**
 * Merges statistics of one model version (windows, replicas, cells) into one: rows, requests, errors, latency and
 * summaries added, the window
 * from the earliest start to the latest end. `list` must not be empty.
 */
export function mergeVersionStatistics(list: readonly VersionStatistics[]): VersionStatistics {
  const first = list[0]!;
  const features: Record<string, ValueSummary> = {};
  const outputs: Record<string, ValueSummary> = {};
  let rows = 0n;
  let requests = 0n;
  const errors: Record<string, bigint> = {};
  let latency: Sketch | undefined;
  let start: Date | undefined;
  let end: Date | undefined;
  for (const s of list) {
    rows += s.rows;
    requests += s.requests;
    for (const [code, n] of Object.entries(s.errors)) errors[code] = (errors[code] ?? 0n) + n;
    if (s.latencyMs) {
      const l = sketchFromMessage(s.latencyMs);
      if (latency) mergeSketch(latency, l);
      else latency = l;
    }
    for (const [k, v] of Object.entries(s.features)) features[k] = mergeSummaries(features[k], v);
    for (const [k, v] of Object.entries(s.outputs)) outputs[k] = mergeSummaries(outputs[k], v);
    if (s.windowStart) {
      const d = timestampDate(s.windowStart);
      if (!start || d < start) start = d;
    }
    if (s.windowEnd) {
      const d = timestampDate(s.windowEnd);
      if (!end || d > end) end = d;
    }
  }
  return create(VersionStatisticsSchema, {
    model: first.model,
    version: first.version,
    ...(start ? { windowStart: timestampFromDate(start) } : {}),
    ...(end ? { windowEnd: timestampFromDate(end) } : {}),
    rows,
    requests,
    errors,
    ...(latency ? { latencyMs: create(QuantileSketchSchema, sketchMessage(latency)) } : {}),
    features,
    outputs,
  });
}
