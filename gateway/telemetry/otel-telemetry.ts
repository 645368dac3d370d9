/**
 * Telemetry over OpenTelemetry: metrics for Prometheus (text served by the gateway's own `/metrics` route through
 * `metricsText()`; the exporter's HTTP server is never started) and, when `otlpEndpoint` is set, request, stage and
 * shadow spans over OTLP/HTTP (request-tracer.ts).
 *
 * Per request without tracing: two Map lookups, one small object, increments. Nothing is exported in the
 * background: metrics are computed when scraped.
 *
 * Prediction-log series (when `sinkStats` is given; read once per scrape):
 *   sibyl_prediction_log_{accepted,delivered,spilled,lost}_total   counters
 *   sibyl_prediction_log_pending                                   gauge
 * Shadow series (when `shadowStats` is given; labels model, version, shadow_model, shadow_version):
 *   sibyl_shadow_{executions,shed}_total, sibyl_shadow_errors_total{code}   counters
 *   sibyl_shadow_latency_seconds                                            histogram (`shadowLatency`)
 *   sibyl_shadow_mean_abs_diff{output}, sibyl_shadow_agreement_ratio{output} gauges
 * Admission series (when `admissionStats` is given):
 *   sibyl_admission_rejected_total{reason}   counter, reason: inflight | cpu | lag | turn
 *   sibyl_admission_inflight, sibyl_admission_limit, sibyl_admission_utilization, sibyl_admission_lag_seconds   gauges
 * Process and runtime series: runtime-metrics.ts. Build: sibyl_build_info{version,commit} 1 (commit when known).
 * The resource (`service.name`, `sibyl.cell`, and `OTEL_RESOURCE_ATTRIBUTES`' attributes) is exported as
 * Prometheus `target_info` and on every span.
 */
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { SinkStats } from '../log/prediction-sink.ts';
import type { AdmissionStats } from '../pipeline/admission.ts';
import type { ShadowPairSnapshot } from '../shadow/shadow-stats.ts';
import { familiesProducer, type CounterFamily, type HistogramFamily } from './metric-families.ts';
import { RequestMetrics, type TransportCells } from './request-metrics.ts';
import { createRequestTracer, type RequestTracer, type TracedSpan } from './request-tracer.ts';
import { startRuntimeMetrics } from './runtime-metrics.ts';
import type { SamplerConfig } from './sampler.ts';
import { passedOnContext, type RequestSpan, type Stage, type Telemetry, type TraceContext } from './telemetry.ts';
import type { SibylError } from '../../core/errors.ts';

export interface OtelTelemetryOptions {
  /** `service.name` of the resource (OTEL_SERVICE_NAME). */
  readonly serviceName: string;
  readonly cell: string;
  /** More resource attributes (OTEL_RESOURCE_ATTRIBUTES); `service.name` and `sibyl.cell` above win. */
  readonly resourceAttributes?: Readonly<Record<string, string>>;
  /** OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`) or full `/v1/traces` URL; tracing is off without. */
  readonly otlpEndpoint?: string | undefined;
  /** Which requests are traced (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG); default parentbased_always_on. */
  readonly sampler?: SamplerConfig;
  /** Distinct model labels kept before new names are folded into model="_other"; default 1000. */
  readonly maxModels?: number;
  /** The build, exported as sibyl_build_info{version,commit}; commit omitted when unknown. */
  readonly build?: { readonly version: string; readonly commit?: string | undefined };
  /** Exports process and Node.js runtime metrics (runtime-metrics.ts); default true. */
  readonly runtimeMetrics?: boolean;
  /** The prediction sink's counters, read at each scrape. */
  readonly sinkStats?: () => SinkStats;
  /** The live-versus-shadow comparison, read at each scrape. */
  readonly shadowStats?: (() => ShadowPairSnapshot[]) | undefined;
  /** The shadow latency histograms (ShadowStats.latencyFamily). */
  readonly shadowLatency?: HistogramFamily | undefined;
  /** Admission control's state, read at each scrape. */
  readonly admissionStats?: (() => AdmissionStats) | undefined;
}

/** Content type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function createOtelTelemetry(opts: OtelTelemetryOptions): Telemetry {
  const resource = resourceFromAttributes({ ...opts.resourceAttributes, 'service.name': opts.serviceName, 'sibyl.cell': opts.cell });
  const metrics = new RequestMetrics(opts.maxModels ?? 1000);
  // Read at each collection: the runtime's families join once the meter exists.
  const families: (CounterFamily | HistogramFamily)[] = [...metrics.families, ...(opts.shadowLatency ? [opts.shadowLatency] : [])];
  const reader = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [familiesProducer('sibyl-gateway', families)],
  });
  const meterProvider = new MeterProvider({ resource, readers: [reader] });
  const runtime = opts.runtimeMetrics === false ? undefined : startRuntimeMetrics(meterProvider.getMeter('sibyl-gateway'));
  if (runtime) families.push(...runtime.families);
  const serializer = new PrometheusSerializer('', false, undefined, false, true);
  if (opts.build) observeBuild(meterProvider, opts.build);
  if (opts.sinkStats) observeSink(meterProvider, opts.sinkStats);
  if (opts.shadowStats) observeShadows(meterProvider, opts.shadowStats);
  if (opts.admissionStats) observeAdmission(meterProvider, opts.admissionStats);
  const tracer =
    opts.otlpEndpoint !== undefined && opts.otlpEndpoint !== ''
      ? createRequestTracer({ endpoint: opts.otlpEndpoint, resource, ...(opts.sampler ? { sampler: opts.sampler } : {}) })
      : undefined;
  let shutdown: Promise<void> | undefined;

  return {
    startRequest(label, arrival, requestId, model) {
      const cells = metrics.transport(label, arrival.transport);
      const span = tracer?.start(arrival, requestId, model);
      if (span !== undefined) return new TracedRequest(metrics, cells, arrival.startMs, span);
      const passed = arrival.traceparent === undefined ? undefined : passedOnContext(arrival.traceparent, arrival.tracestate);
      return new MeteredRequest(metrics, cells, arrival.startMs, passed);
    },
    startShadow(request, model, version, requestId, startMs) {
      return tracer !== undefined && request?.recorded === true ? tracer.startShadow(request, model, version, requestId, startMs) : undefined;
    },
    featureStoreFailure(model, reason) {
      const m = metrics.model(model);
      (reason === 'timeout' ? m.storeTimeout : m.storeError).add(1);
    },
    featuresDefaulted(model, count) {
      if (count > 0) metrics.model(model).defaulted.add(count);
    },
    runtimeCall(runtime, code, seconds) {
      metrics.runtimeCall(runtime, code, seconds);
    },
    async metricsText() {
      const { resourceMetrics } = await reader.collect();
      return { contentType: PROMETHEUS_CONTENT_TYPE, body: serializer.serialize(resourceMetrics) };
    },
    async flush() {
      await tracer?.flush();
    },
    shutdown() {
      shutdown ??= Promise.all([meterProvider.shutdown(), tracer?.shutdown()]).then(() => runtime?.stop());
      return shutdown;
    },
  };
}

class MeteredRequest implements RequestSpan {
  readonly metrics: RequestMetrics;
  readonly cells: TransportCells;
  readonly startMs: number;
  readonly trace: TraceContext | undefined;
  ended = false;

  constructor(metrics: RequestMetrics, cells: TransportCells, startMs: number, trace: TraceContext | undefined) {
    this.metrics = metrics;
    this.cells = cells;
    this.startMs = startMs;
    this.trace = trace;
  }

  stage(stage: Stage, startMs: number, endMs: number): void {
    const m = this.cells.model;
    (m.stages[stage] ?? this.metrics.stage(m, stage)).record((endMs - startMs) / 1000);
  }

  served(_version: string, _arm: string): void {}

  end(code: string, endMs: number, _error?: SibylError): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.code(this.cells, code).add(1);
    this.cells.duration.record((endMs - this.startMs) / 1000);
  }
}

class TracedRequest extends MeteredRequest {
  readonly span: TracedSpan;

  constructor(metrics: RequestMetrics, cells: TransportCells, startMs: number, span: TracedSpan) {
    super(metrics, cells, startMs, span.trace);
    this.span = span;
  }

  override stage(stage: Stage, startMs: number, endMs: number): void {
    super.stage(stage, startMs, endMs);
    this.span.stage(stage, startMs, endMs);
  }

  override served(version: string, arm: string): void {
    this.span.served(version, arm);
  }

  override end(code: string, endMs: number, error?: SibylError): void {
    if (this.ended) return;
    super.end(code, endMs);
    this.span.end(code, endMs, error);
  }
}

function observeBuild(provider: MeterProvider, build: { readonly version: string; readonly commit?: string | undefined }): void {
  const info = provider.getMeter('sibyl-gateway').createObservableGauge('sibyl_build_info', { description: 'The running build: always 1, labelled with its version and commit.' });
  const labels = build.commit ? { version: build.version, commit: build.commit } : { version: build.version };
  info.addCallback((result) => result.observe(1, labels));
}

function observeSink(provider: MeterProvider, sinkStats: () => SinkStats): void {
  const meter = provider.getMeter('sibyl-gateway');
  const counter = (what: string, description: string) =>
    meter.createObservableCounter(`sibyl_prediction_log_${what}_total`, { description });
  const accepted = counter('accepted', 'Prediction-log records accepted by the sink.');
  const delivered = counter('delivered', 'Prediction-log records acknowledged by the destination.');
  const spilled = counter('spilled', 'Prediction-log records sent from the write-ahead log rather than from memory (Kafka away, slow, or memory full).');
  const lost = counter('lost', 'Prediction-log records lost (disk full).');
  const pending = meter.createObservableGauge('sibyl_prediction_log_pending', {
    description: 'Prediction-log records not yet acknowledged: in memory, in flight, or in the write-ahead log.',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const s = sinkStats();
      result.observe(accepted, s.accepted);
      result.observe(delivered, s.delivered);
      result.observe(spilled, s.spilled);
      result.observe(lost, s.lost);
      result.observe(pending, s.pending);
    },
    [accepted, delivered, spilled, lost, pending],
  );
}

function observeShadows(provider: MeterProvider, shadowStats: () => ShadowPairSnapshot[]): void {
  const meter = provider.getMeter('sibyl-gateway');
  const executions = meter.createObservableCounter('sibyl_shadow_executions_total', { description: 'Shadow executions run (succeeded or failed).' });
  const shed = meter.createObservableCounter('sibyl_shadow_shed_total', { description: 'Shadow executions shed (queue full or gateway busy).' });
  const errors = meter.createObservableCounter('sibyl_shadow_errors_total', { description: 'Failed shadow executions by code.' });
  const mad = meter.createObservableGauge('sibyl_shadow_mean_abs_diff', { description: 'Mean absolute difference of a numeric output, live versus shadow.' });
  const agreement = meter.createObservableGauge('sibyl_shadow_agreement_ratio', { description: 'Share of rows where a label output agrees, live versus shadow.' });
  meter.addBatchObservableCallback(
    (result) => {
      for (const p of shadowStats()) {
        const labels = { model: p.live.model, version: p.live.version, shadow_model: p.shadow.model, shadow_version: p.shadow.version };
        result.observe(executions, p.executed, labels);
        result.observe(shed, p.shed, labels);
        for (const [code, n] of Object.entries(p.errors)) result.observe(errors, n, { ...labels, code });
        for (const [output, c] of Object.entries(p.outputs)) {
          if (c.kind === 'number') result.observe(mad, c.meanAbsDiff, { ...labels, output });
          else result.observe(agreement, c.agreement, { ...labels, output });
        }
      }
    },
    [executions, shed, errors, mad, agreement],
  );
}

function observeAdmission(provider: MeterProvider, admissionStats: () => AdmissionStats): void {
  const meter = provider.getMeter('sibyl-gateway');
  const rejected = meter.createObservableCounter('sibyl_admission_rejected_total', { description: 'Predictions refused by admission control, by reason (inflight limit, cpu pacing, event-loop lag, or a loop turn busy past its bound).' });
  const inflight = meter.createObservableGauge('sibyl_admission_inflight', { description: 'Predictions admitted and not finished.' });
  const limit = meter.createObservableGauge('sibyl_admission_limit', { description: 'The in-flight limit in force: SIBYL_MAX_INFLIGHT, half of it while the process is CPU-saturated.' });
  const rate = meter.createObservableGauge('sibyl_admission_rate', { description: 'Admissions per second allowed while the process is CPU-saturated; 0 while admissions are not paced.' });
  const utilization = meter.createObservableGauge('sibyl_admission_utilization', { description: 'Utilization over the last control window: event-loop utilization, counted only while the process had the CPU of its quota (0-1).' });
  const lag = meter.createObservableGauge('sibyl_admission_lag_seconds', { description: 'Smoothed event-loop lag.', unit: 's' });
  meter.addBatchObservableCallback(
    (result) => {
      const a = admissionStats();
      result.observe(rejected, a.rejectedInflight, { reason: 'inflight' });
      result.observe(rejected, a.rejectedCpu, { reason: 'cpu' });
      result.observe(rejected, a.rejectedTurn, { reason: 'turn' });
      result.observe(rejected, a.rejected - a.rejectedInflight - a.rejectedCpu - a.rejectedTurn, { reason: 'lag' });
      result.observe(inflight, a.inflight);
      result.observe(limit, a.limit);
      result.observe(rate, a.rate ?? 0);
      result.observe(utilization, a.utilization);
      result.observe(lag, a.lagMs / 1000);
    },
    [rejected, inflight, limit, rate, utilization, lag],
  );
}
