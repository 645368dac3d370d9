/**
 * Serving statistics of one gateway replica: per model version, the features each live execution gave the model
 * and the outputs it returned, summarized over a sliding window (stats/summary.ts; ARCHITECTURE.md, "Serving
 * statistics and drift") and sent to the control tower with every gateway report, which merges the replicas and
 * scores drift against the version's training statistics.
 *
 * Recorded by the entry (gateway/pipeline/pipeline.ts) right after a live execution succeeds (and, for a failed one,
 * its error code and latency: what rollout guards read), synchronously, on the request path: per row, per feature and output, a type check, two sums, a sketch insert and a training-bin search,
 * 1.0-1.5 µs of CPU per delivery-eta row of 20 features and 1 output (loadtest/micro/serving-stats.bench.ts). Shadow executions are not recorded: their
 * comparison with the live version is the shadow report.
 *
 * Windows: values go to the current window; every `windowMs` it is closed and the last `windows` closed ones are
 * kept, so a snapshot covers between windows x windowMs and (windows + 1) x windowMs of traffic. A version with no
 * rows in any kept window is forgotten (its ModelVersion is released to the garbage collector).
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { VersionStatisticsSchema, type ValueSummary, type VersionStatistics } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import type { Execution } from '../../execution/execute.ts';
import type { ModelVersion } from '../../execution/model-version.ts';
import { MAX_VECTOR_ELEMENTS, valueKind } from '../../runtimes/manifest-fields.ts';
import { mergeSketch, newSketch, sketchMessage, type Sketch } from '../../stats/sketch.ts';
import { CategoricalAccumulator, NumericAccumulator, type Accumulator } from '../../stats/summary.ts';

export interface ServingStatisticsOptions {
  /** Length of one window, ms (default 60 000). */
  readonly windowMs?: number;
  /** Closed windows kept (default 15: a snapshot covers the last 15 to 16 minutes). */
  readonly windows?: number;
  /** Wall clock, ms (tests). */
  readonly now?: () => number;
}

/** What the entry records: the version that ran, its execution or its failure, and the request's latency. */
export interface StatisticsRecorder {
  /** A live request that `version` answered; `latencyMs` from arrival to the end of the execution. */
  record(version: ModelVersion, run: Execution, latencyMs: number): void;
  /** A live request of `version` that failed with `code` (the entry leaves out INVALID_ARGUMENT and CANCELLED). */
  recordFailure(version: ModelVersion, code: string, latencyMs: number): void;
}

interface FeatureSlot {
  readonly name: string;
  readonly fromStore: boolean;
  readonly acc: Accumulator;
  /** The row stamp when this feature was defaulted in the row being recorded. */
  stamp: number;
}

interface OutputSlot {
  readonly name: string;
  readonly output: string;
  /** Element of a vector output, or -1 for a scalar. */
  readonly element: number;
  readonly acc: Accumulator;
}

/** One version's accumulators over one window. */
class Window {
  readonly startMs: number;
  /** Set when the window is closed. */
  endMs: number | undefined;
  rows = 0;
  /** Live requests answered, and failed by code (rollout guards: ARCHITECTURE.md, "Rollouts"). */
  requests = 0;
  failed = 0;
  readonly errors = new Map<string, number>();
  /** Latency of answered and failed requests, ms. */
  readonly latency: Sketch = newSketch();
  readonly features: FeatureSlot[];
  readonly byName: Map<string, FeatureSlot>;
  readonly outputs: OutputSlot[];
  #stamp = 0;

  constructor(version: ModelVersion, startMs: number) {
    this.startMs = startMs;
    const training = version.manifest.statistics;
    this.features = version.manifest.features.map((f) => ({
      name: f.name,
      fromStore: f.source === 'store',
      acc: valueKind(f.dtype, 'feature') === 'numeric' ? new NumericAccumulator(training?.features[f.name]?.histogram?.edges) : new CategoricalAccumulator(),
      stamp: 0,
    }));
    this.byName = new Map(this.features.map((s) => [s.name, s]));
    this.outputs = version.outputs.flatMap((o): OutputSlot[] => {
      const make = (name: string) => (valueKind(o.dtype, 'output') === 'numeric' ? new NumericAccumulator(training?.outputs[name]?.histogram?.edges) : new CategoricalAccumulator());
      if (o.kind === 'scalar') return [{ name: o.name, output: o.name, element: -1, acc: make(o.name) }];
      return Array.from({ length: MAX_VECTOR_ELEMENTS }, (_, i) => ({ name: `${o.name}[${i}]`, output: o.name, element: i, acc: make(`${o.name}[${i}]`) }));
    });
  }

  /** Whether anything was recorded in this window. */
  get active(): boolean {
    return this.requests + this.failed > 0;
  }

  fail(code: string, latencyMs: number): void {
    this.failed++;
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    this.latency.accept(Math.max(0, latencyMs));
  }

  record(run: Execution, latencyMs: number): void {
    this.requests++;
    this.latency.accept(Math.max(0, latencyMs));
    const { rows, outputs, defaulted } = run;
    const reason = run.storeFailure === 'timeout' ? 'late' : run.storeFailure === 'error' ? 'down' : 'missing';
    const features = this.features;
    const outs = this.outputs;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const d = defaulted[i]!;
      const stamp = d.length === 0 ? -1 : ++this.#stamp;
      for (let j = 0; j < d.length; j++) {
        const slot = this.byName.get(d[j]!);
        if (!slot) continue;
        slot.stamp = stamp;
        slot.acc[slot.fromStore ? reason : 'missing']++;
      }
      for (let j = 0; j < features.length; j++) {
        const slot = features[j]!;
        if (slot.stamp !== stamp) slot.acc.add(row[slot.name]);
      }
      const out = outputs[i]!;
      for (let j = 0; j < outs.length; j++) {
        const slot = outs[j]!;
        const v = out[slot.output];
        if (slot.element < 0) slot.acc.add(v);
        else if (Array.isArray(v) && slot.element < v.length) slot.acc.add(v[slot.element]);
      }
    }
    this.rows += rows.length;
  }

  /** Adds another window's accumulators (of the same version) into this one. */
  mergeFrom(o: Window): void {
    this.rows += o.rows;
    this.requests += o.requests;
    this.failed += o.failed;
    for (const [code, n] of o.errors) this.errors.set(code, (this.errors.get(code) ?? 0) + n);
    mergeSketch(this.latency, o.latency);
    for (let j = 0; j < this.features.length; j++) (this.features[j]!.acc as { mergeFrom(a: Accumulator): void }).mergeFrom(o.features[j]!.acc);
    for (let j = 0; j < this.outputs.length; j++) (this.outputs[j]!.acc as { mergeFrom(a: Accumulator): void }).mergeFrom(o.outputs[j]!.acc);
  }

  /** The window's statistics, ending at `endMs`. */
  snapshot(model: string, version: string, endMs: number): VersionStatistics {
    const summaries = <S extends { name: string; acc: Accumulator }>(slots: readonly S[], keep: (s: S) => boolean) => {
      const out: Record<string, ValueSummary> = {};
      for (const s of slots) if (keep(s)) out[s.name] = s.acc.summary(this.rows);
      return out;
    };
    return create(VersionStatisticsSchema, {
      model,
      version,
      windowStart: timestampFromMs(this.startMs),
      windowEnd: timestampFromMs(endMs),
      rows: BigInt(this.rows),
      requests: BigInt(this.requests),
      errors: Object.fromEntries([...this.errors].map(([code, n]) => [code, BigInt(n)])),
      latencyMs: sketchMessage(this.latency),
      features: summaries(this.features, () => true),
      // A vector's elements past the longest vector seen are left out.
      outputs: summaries(this.outputs, (s) => s.element < 0 || seen(s.acc)),
    });
  }
}

function seen(acc: Accumulator): boolean {
  return acc instanceof NumericAccumulator ? acc.sketch.count + acc.invalid > 0 : acc.counts.size + acc.other > 0;
}

interface VersionWindows {
  readonly version: ModelVersion;
  current: Window;
  readonly closed: Window[];
}

export class ServingStatistics implements StatisticsRecorder {
  readonly #windowMs: number;
  readonly #windows: number;
  readonly #now: () => number;
  readonly #versions = new Map<ModelVersion, VersionWindows>();
  #windowStart: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ServingStatisticsOptions = {}) {
    this.#windowMs = options.windowMs ?? 60_000;
    this.#windows = options.windows ?? 15;
    this.#now = options.now ?? Date.now;
    this.#windowStart = this.#now();
  }

  /** Records a successful live execution of `version`. Never throws. */
  record(version: ModelVersion, run: Execution, latencyMs: number): void {
    this.#windowOf(version).record(run, latencyMs);
  }

  /** Records a failed live request of `version`. Never throws. */
  recordFailure(version: ModelVersion, code: string, latencyMs: number): void {
    this.#windowOf(version).fail(code, latencyMs);
  }

  #windowOf(version: ModelVersion): Window {
    let v = this.#versions.get(version);
    if (v === undefined) {
      v = { version, current: new Window(version, this.#windowStart), closed: [] };
      this.#versions.set(version, v);
    }
    return v.current;
  }

  /** Closes the current window of every version and starts the next; drops versions idle for every kept window. */
  rotate(): void {
    const now = this.#now();
    for (const [key, v] of this.#versions) {
      v.current.endMs = now;
      v.closed.push(v.current);
      if (v.closed.length > this.#windows) v.closed.shift();
      v.current = new Window(v.version, now);
      if (v.closed.every((w) => !w.active)) this.#versions.delete(key);
    }
    this.#windowStart = now;
  }

  /** Per version recorded in the kept windows, their statistics merged (what the gateway report carries). */
  snapshot(): VersionStatistics[] {
    const now = this.#now();
    const out: VersionStatistics[] = [];
    for (const v of this.#versions.values()) {
      const { model, version } = v.version;
      const windows = [...v.closed, v.current].filter((w) => w.active);
      if (windows.length === 0) continue;
      const all = new Window(v.version, windows[0]!.startMs);
      for (const w of windows) all.mergeFrom(w);
      out.push(all.snapshot(model, version, now));
    }
    return out.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  }

  /** Rotates windows every `windowMs` until `stop` (the timer does not hold the process open). */
  start(): void {
    this.#timer ??= setInterval(() => this.rotate(), this.#windowMs).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
