/**
 * The request-path metric set and its cell cache: one `ModelCells` per model label, one `TransportCells` per
 * (model, transport), created on first use and kept, so a request does two Map lookups and a few increments.
 *
 * Series (Prometheus names):
 *   sibyl_requests_total{model,transport,code}            requests ended, by code ('OK' or an error code name)
 *   sibyl_request_duration_seconds{model,transport}       histogram, arrival to end
 *   sibyl_stage_duration_seconds{model,stage}             histogram, per pipeline stage
 *   sibyl_feature_store_failures_total{model,reason}      reason: 'timeout' | 'error'
 *   sibyl_features_defaulted_total{model}                 features that got their declared default
 *   sibyl_runtime_calls_total{runtime,code}               model executions by runtime (its registered kind)
 *   sibyl_runtime_call_duration_seconds{runtime}          histogram, one runtime call (the dispatch stage)
 *
 * Cardinality: the model label is decided by the pipeline's entry: a model the route table knows, UNKNOWN_MODEL
 * (telemetry.ts) for any other name a caller sends, '' for requests that never named one. So the labels are
 * bounded by what was deployed; as a last guard, after `maxModels` distinct labels further new ones are counted
 * under OVERFLOW_MODEL.
 */
import type { Stage } from './telemetry.ts';
import {
  CounterFamily,
  HistogramFamily,
  LATENCY_BUCKETS_SECONDS,
  type CounterCell,
  type HistogramCell,
} from './metric-families.ts';

export const OVERFLOW_MODEL = '_other';

export interface TransportCells {
  readonly model: ModelCells;
  readonly transport: string;
  readonly duration: HistogramCell;
  readonly codes: Map<string, CounterCell>;
}

export interface ModelCells {
  readonly model: string;
  /** Created on a stage's first recording, so models list only the stages they ran. */
  readonly stages: Partial<Record<Stage, HistogramCell>>;
  readonly transports: Map<string, TransportCells>;
  readonly storeTimeout: CounterCell;
  readonly storeError: CounterCell;
  readonly defaulted: CounterCell;
}

export class RequestMetrics {
  readonly requests = new CounterFamily({
    name: 'sibyl_requests_total',
    description: 'Prediction requests ended, by model, transport and result code.',
    unit: '',
  });
  readonly duration = new HistogramFamily(
    { name: 'sibyl_request_duration_seconds', description: 'Prediction request latency, arrival to end.', unit: 's' },
    LATENCY_BUCKETS_SECONDS,
  );
  readonly stageDuration = new HistogramFamily(
    { name: 'sibyl_stage_duration_seconds', description: 'Pipeline stage latency.', unit: 's' },
    LATENCY_BUCKETS_SECONDS,
  );
  readonly storeFailures = new CounterFamily({
    name: 'sibyl_feature_store_failures_total',
    description: 'Feature store reads that failed (error) or missed the deadline (timeout); defaults were used.',
    unit: '',
  });
  readonly defaulted = new CounterFamily({
    name: 'sibyl_features_defaulted_total',
    description: 'Features that were missing or late and got their declared default.',
    unit: '',
  });
  readonly runtimeCalls = new CounterFamily({
    name: 'sibyl_runtime_calls_total',
    description: 'Model executions by runtime and result code.',
    unit: '',
  });
  readonly runtimeDuration = new HistogramFamily(
    { name: 'sibyl_runtime_call_duration_seconds', description: 'Latency of one runtime call.', unit: 's' },
    LATENCY_BUCKETS_SECONDS,
  );
  readonly families = [this.requests, this.duration, this.stageDuration, this.storeFailures, this.defaulted, this.runtimeCalls, this.runtimeDuration] as const;
  /** runtime → (code → counter), and runtime → histogram: a closed, small label set. */
  readonly #runtimeCodes = new Map<string, Map<string, CounterCell>>();
  readonly #runtimeDurations = new Map<string, HistogramCell>();

  runtimeCall(runtime: string, code: string, seconds: number): void {
    let codes = this.#runtimeCodes.get(runtime);
    if (codes === undefined) this.#runtimeCodes.set(runtime, (codes = new Map()));
    let c = codes.get(code);
    if (c === undefined) codes.set(code, (c = this.runtimeCalls.cell({ runtime, code })));
    c.add(1);
    let h = this.#runtimeDurations.get(runtime);
    if (h === undefined) this.#runtimeDurations.set(runtime, (h = this.runtimeDuration.cell({ runtime })));
    h.record(seconds);
  }

  readonly #models = new Map<string, ModelCells>();
  readonly #maxModels: number;

  constructor(maxModels: number) {
    this.#maxModels = maxModels;
  }

  model(name: string): ModelCells {
    const hit = this.#models.get(name);
    if (hit !== undefined) return hit;
    if (this.#models.size >= this.#maxModels && name !== OVERFLOW_MODEL) return this.model(OVERFLOW_MODEL);
    const cells: ModelCells = {
      model: name,
      // Every key present from the start: one object shape for all models keeps the lookup monomorphic.
      stages: { resolve: undefined, enrich: undefined, dispatch: undefined, respond: undefined, shadow: undefined, log: undefined },
      transports: new Map(),
      storeTimeout: this.storeFailures.cell({ model: name, reason: 'timeout' }),
      storeError: this.storeFailures.cell({ model: name, reason: 'error' }),
      defaulted: this.defaulted.cell({ model: name }),
    };
    this.#models.set(name, cells);
    return cells;
  }

  transport(model: string, transport: string): TransportCells {
    const m = this.model(model);
    const hit = m.transports.get(transport);
    if (hit !== undefined) return hit;
    const cells: TransportCells = {
      model: m,
      transport,
      duration: this.duration.cell({ model: m.model, transport }),
      codes: new Map(),
    };
    m.transports.set(transport, cells);
    return cells;
  }

  stage(m: ModelCells, stage: Stage): HistogramCell {
    return (m.stages[stage] ??= this.stageDuration.cell({ model: m.model, stage }));
  }

  code(t: TransportCells, code: string): CounterCell {
    let c = t.codes.get(code);
    if (c === undefined) {
      c = this.requests.cell({ model: t.model.model, transport: t.transport, code });
      t.codes.set(code, c);
    }
    return c;
  }
}
