import { afterEach, describe, expect, it } from 'vitest';
import { createOtelTelemetry, PROMETHEUS_CONTENT_TYPE } from '../../gateway/telemetry/otel-telemetry.ts';
import { LATENCY_BUCKETS_SECONDS } from '../../gateway/telemetry/metric-families.ts';
import type { ArrivalInfo, Telemetry } from '../../gateway/telemetry/telemetry.ts';
import { grpcEndpoint, httpEndpoint } from '../../gateway/telemetry/endpoint.ts';
import { ShadowStats } from '../../gateway/shadow/shadow-stats.ts';
import type { SinkStats } from '../../gateway/log/prediction-sink.ts';
import { AdmissionControl, type AdmissionStats } from '../../gateway/pipeline/admission.ts';
import { parseExposition, sample, samples, type Exposition } from './prom-text.ts';

let telemetry: Telemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
});

function make(opts: Partial<Parameters<typeof createOtelTelemetry>[0]> = {}): Telemetry {
  telemetry = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', ...opts });
  return telemetry;
}

const REST = httpEndpoint('POST', '/v1/models/{model}:predict');
const GRPC = grpcEndpoint('sibyl.v1.PredictionService', 'Predict');

/** An arrival on `transport` at `startMs` (the endpoint matters to spans only). */
function arrival(transport: string, startMs: number): ArrivalInfo {
  return { transport, startMs, endpoint: transport.endsWith('grpc') ? GRPC : REST };
}

async function scrape(t: Telemetry): Promise<Exposition> {
  const { body, contentType } = await t.metricsText();
  expect(contentType).toBe(PROMETHEUS_CONTENT_TYPE);
  return parseExposition(body);
}

/** One request through all four live stages, each `stageMs` long, ending with `code`. */
function request(t: Telemetry, model: string, transport: string, code: string, stageMs: number, t0 = 1000): void {
  const span = t.startRequest(model, arrival(transport, t0), 'req-1', model);
  let at = t0;
  for (const stage of ['resolve', 'enrich', 'dispatch', 'respond'] as const) {
    span.stage(stage, at, at + stageMs);
    at += stageMs;
  }
  span.end(code, at);
}

describe('otel telemetry: Prometheus exposition', () => {
  it('counts requests per model, transport and code', async () => {
    const t = make();
    for (let i = 0; i < 3; i++) request(t, 'fraud', 'rest', 'OK', 0.1);
    request(t, 'fraud', 'grpc', 'OK', 0.1);
    request(t, 'fraud', 'rest', 'NOT_FOUND', 0.1);
    request(t, 'fraud', 'rest', 'DEADLINE_EXCEEDED', 0.1);
    request(t, 'fraud', 'rest', 'DEADLINE_EXCEEDED', 0.1);
    request(t, 'eta', 'oip-grpc', 'INTERNAL', 0.1);

    const e = await scrape(t);
    expect(e.types.get('sibyl_requests_total')).toBe('counter');
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud', transport: 'rest', code: 'OK' })).toBe(3);
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud', transport: 'grpc', code: 'OK' })).toBe(1);
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud', transport: 'rest', code: 'NOT_FOUND' })).toBe(1);
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud', transport: 'rest', code: 'DEADLINE_EXCEEDED' })).toBe(2);
    expect(sample(e, 'sibyl_requests_total', { model: 'eta', transport: 'oip-grpc', code: 'INTERNAL' })).toBe(1);
    expect(samples(e, 'sibyl_requests_total')).toHaveLength(5);
    // Series carry exactly the documented labels.
    for (const s of samples(e, 'sibyl_requests_total')) expect(Object.keys(s.labels).sort()).toEqual(['code', 'model', 'transport']);
  });

  it('counts a request once even when end is called twice', async () => {
    const t = make();
    const span = t.startRequest('fraud', arrival('rest', 0), 'req-1', 'fraud');
    span.end('OK', 1);
    span.end('INTERNAL', 2);
    const e = await scrape(t);
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud', code: 'OK' })).toBe(1);
    expect(samples(e, 'sibyl_requests_total', { code: 'INTERNAL' })).toHaveLength(0);
    expect(sample(e, 'sibyl_request_duration_seconds_count', { model: 'fraud' })).toBe(1);
  });

  it('puts request durations into cumulative buckets from 10 µs to 2.5 s', async () => {
    const t = make();
    // durations (4 stages each): 4 x 0.01 ms = 40 µs, 4 x 0.1 ms = 400 µs, 4 x 10 ms = 40 ms, 4 x 1 s = 4 s
    request(t, 'fraud', 'rest', 'OK', 0.01);
    request(t, 'fraud', 'rest', 'OK', 0.1);
    request(t, 'fraud', 'rest', 'OK', 10);
    request(t, 'fraud', 'rest', 'OK', 1000);

    const e = await scrape(t);
    expect(e.types.get('sibyl_request_duration_seconds')).toBe('histogram');
    const labels = { model: 'fraud', transport: 'rest' };
    const buckets = samples(e, 'sibyl_request_duration_seconds_bucket', labels);
    expect(buckets.map((b) => b.labels.le)).toEqual([...LATENCY_BUCKETS_SECONDS.map(String), '+Inf']);
    const le = (bound: string) => buckets.find((b) => b.labels.le === bound)!.value;
    expect(le('0.00001')).toBe(0);
    expect(le('0.000025')).toBe(0);
    expect(le('0.00005')).toBe(1); // 40 µs
    expect(le('0.00025')).toBe(1);
    expect(le('0.0005')).toBe(2); // 400 µs
    expect(le('0.025')).toBe(2);
    expect(le('0.05')).toBe(3); // 40 ms
    expect(le('2.5')).toBe(3);
    expect(le('+Inf')).toBe(4); // 4 s
    expect(sample(e, 'sibyl_request_duration_seconds_count', labels)).toBe(4);
    expect(sample(e, 'sibyl_request_duration_seconds_sum', labels)).toBeCloseTo(0.00004 + 0.0004 + 0.04 + 4, 9);
  });

  it('records each stage under its own name, only for stages that ran', async () => {
    const t = make();
    const span = t.startRequest('fraud', arrival('grpc', 0), 'req-1', 'fraud');
    span.stage('resolve', 0, 0.002); // 2 µs
    span.stage('enrich', 0.002, 0.302); // 300 µs
    span.stage('dispatch', 0.302, 2.302); // 2 ms
    span.end('OK', 2.4);
    span.stage('shadow', 2.4, 3.4); // after the response: still recorded
    const e = await scrape(t);
    const stages = new Set(samples(e, 'sibyl_stage_duration_seconds_count').map((s) => s.labels.stage));
    expect(stages).toEqual(new Set(['resolve', 'enrich', 'dispatch', 'shadow']));
    expect(sample(e, 'sibyl_stage_duration_seconds_bucket', { model: 'fraud', stage: 'resolve', le: '0.00001' })).toBe(1);
    expect(sample(e, 'sibyl_stage_duration_seconds_bucket', { model: 'fraud', stage: 'enrich', le: '0.00025' })).toBe(0);
    expect(sample(e, 'sibyl_stage_duration_seconds_bucket', { model: 'fraud', stage: 'enrich', le: '0.0005' })).toBe(1);
    expect(sample(e, 'sibyl_stage_duration_seconds_bucket', { model: 'fraud', stage: 'dispatch', le: '0.001' })).toBe(0);
    expect(sample(e, 'sibyl_stage_duration_seconds_bucket', { model: 'fraud', stage: 'dispatch', le: '0.0025' })).toBe(1);
    expect(sample(e, 'sibyl_stage_duration_seconds_sum', { model: 'fraud', stage: 'shadow' })).toBeCloseTo(0.001, 9);
  });

  it('counts feature-store failures by reason and defaulted features', async () => {
    const t = make();
    t.featureStoreFailure('fraud', 'timeout');
    t.featureStoreFailure('fraud', 'timeout');
    t.featureStoreFailure('fraud', 'error');
    t.featuresDefaulted('fraud', 3);
    t.featuresDefaulted('fraud', 2);
    t.featuresDefaulted('eta', 0);
    const e = await scrape(t);
    expect(sample(e, 'sibyl_feature_store_failures_total', { model: 'fraud', reason: 'timeout' })).toBe(2);
    expect(sample(e, 'sibyl_feature_store_failures_total', { model: 'fraud', reason: 'error' })).toBe(1);
    expect(sample(e, 'sibyl_features_defaulted_total', { model: 'fraud' })).toBe(5);
    expect(samples(e, 'sibyl_features_defaulted_total', { model: 'eta' })).toHaveLength(0);
  });

  it('reads the prediction sink stats at each scrape', async () => {
    let stats: SinkStats = { accepted: 10, delivered: 7, spilled: 2, lost: 0, pending: 3 };
    const t = make({ sinkStats: () => stats });
    let e = await scrape(t);
    expect(e.types.get('sibyl_prediction_log_accepted_total')).toBe('counter');
    expect(e.types.get('sibyl_prediction_log_pending')).toBe('gauge');
    expect(sample(e, 'sibyl_prediction_log_accepted_total')).toBe(10);
    expect(sample(e, 'sibyl_prediction_log_delivered_total')).toBe(7);
    expect(sample(e, 'sibyl_prediction_log_spilled_total')).toBe(2);
    expect(sample(e, 'sibyl_prediction_log_lost_total')).toBe(0);
    expect(sample(e, 'sibyl_prediction_log_pending')).toBe(3);
    stats = { accepted: 20, delivered: 19, spilled: 2, lost: 1, pending: 0 };
    e = await scrape(t);
    expect(sample(e, 'sibyl_prediction_log_accepted_total')).toBe(20);
    expect(sample(e, 'sibyl_prediction_log_lost_total')).toBe(1);
    expect(sample(e, 'sibyl_prediction_log_pending')).toBe(0);
  });

  it('exports admission control: refusals by reason, in flight, the limit, utilization and lag', async () => {
    const a = new AdmissionControl({ maxInflight: 3, maxLagMs: 1000 });
    const t = make({ admissionStats: () => a.stats() });
    for (let i = 0; i < 3; i++) a.admit();
    expect(() => a.admit()).toThrow();
    expect(a.refuseEarly()).toBe('inflight');
    const e = await scrape(t);
    expect(e.types.get('sibyl_admission_rejected_total')).toBe('counter');
    expect(sample(e, 'sibyl_admission_rejected_total', { reason: 'inflight' })).toBe(2);
    expect(sample(e, 'sibyl_admission_rejected_total', { reason: 'lag' })).toBe(0);
    expect(sample(e, 'sibyl_admission_inflight')).toBe(3);
    expect(sample(e, 'sibyl_admission_limit')).toBe(3);
    expect(sample(e, 'sibyl_admission_utilization')).toBe(0);
    expect(sample(e, 'sibyl_admission_lag_seconds')).toBe(0);
  });

  it('exports service and cell as target_info, not as labels on every series', async () => {
    const t = make();
    request(t, 'fraud', 'rest', 'OK', 0.1);
    const e = await scrape(t);
    expect(sample(e, 'target_info', { service_name: 'sibyl-gateway', sibyl_cell: 'eu-1' })).toBe(1);
    expect(samples(e, 'sibyl_requests_total', { otel_scope_name: 'sibyl-gateway' })).toHaveLength(0);
  });

  it('folds models past the cardinality limit into model="_other"', async () => {
    const t = make({ maxModels: 2 });
    request(t, 'a', 'rest', 'OK', 0.1);
    request(t, 'b', 'rest', 'OK', 0.1);
    request(t, 'typo-1', 'rest', 'NOT_FOUND', 0.1);
    request(t, 'typo-2', 'rest', 'NOT_FOUND', 0.1);
    request(t, 'a', 'rest', 'OK', 0.1);
    const e = await scrape(t);
    expect(new Set(samples(e, 'sibyl_requests_total').map((s) => s.labels.model))).toEqual(new Set(['a', 'b', '_other']));
    expect(sample(e, 'sibyl_requests_total', { model: 'a' })).toBe(2);
    expect(sample(e, 'sibyl_requests_total', { model: '_other', code: 'NOT_FOUND' })).toBe(2);
  });

  it('escapes label values a client controls', async () => {
    const t = make();
    request(t, 'we"ird\\name\n', 'rest', 'NOT_FOUND', 0.1);
    const e = await scrape(t);
    expect(sample(e, 'sibyl_requests_total', { model: 'we"ird\\name\n' })).toBe(1);
  });

  it('keeps counting across scrapes (cumulative)', async () => {
    const t = make();
    request(t, 'fraud', 'rest', 'OK', 0.1);
    expect(sample(await scrape(t), 'sibyl_requests_total', { model: 'fraud' })).toBe(1);
    request(t, 'fraud', 'rest', 'OK', 0.1);
    const e = await scrape(t);
    expect(sample(e, 'sibyl_requests_total', { model: 'fraud' })).toBe(2);
    expect(sample(e, 'sibyl_request_duration_seconds_count', { model: 'fraud' })).toBe(2);
  });

  it('exports process and Node.js runtime metrics, and the build', async () => {
    const t = make({ build: { version: '1.2.3', commit: 'abc123' } });
    // Garbage, so that the GC histogram has a sample, and time for the event-loop monitor's first samples (20 ms
    // resolution); polled, since a busy machine delays both.
    let e = await scrape(t);
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < 20; j++) new Array(200_000).fill(j);
      await new Promise((resolve) => setTimeout(resolve, 30));
      e = await scrape(t);
      const gcs = samples(e, 'v8js_gc_duration_seconds_count').reduce((n, s) => n + s.value, 0);
      if (gcs > 0 && samples(e, 'nodejs_eventloop_delay_p99_seconds').length === 1) break;
    }
    expect(sample(e, 'sibyl_build_info', { version: '1.2.3', commit: 'abc123' })).toBe(1);
    expect(e.types.get('process_cpu_seconds_total')).toBe('counter');
    expect(sample(e, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(e, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(sample(e, 'process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    expect(sample(e, 'process_open_fds')).toBeGreaterThan(0);
    expect(sample(e, 'process_max_fds')).toBeGreaterThan(0);
    expect(sample(e, 'nodejs_eventloop_utilization_ratio')).toBeGreaterThanOrEqual(0);
    expect(sample(e, 'nodejs_eventloop_delay_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(e, 'nodejs_eventloop_delay_max_seconds')).toBeGreaterThanOrEqual(sample(e, 'nodejs_eventloop_delay_p50_seconds'));
    expect(samples(e, 'v8js_memory_heap_used_bytes').map((s) => s.labels.v8js_heap_space_name)).toContain('old_space');
    expect(e.types.get('v8js_gc_duration_seconds')).toBe('histogram');
    const gcCounts = samples(e, 'v8js_gc_duration_seconds_count');
    expect(gcCounts.reduce((n, s) => n + s.value, 0)).toBeGreaterThan(0);
    for (const s of gcCounts) expect(['major', 'minor', 'incremental', 'weakcb']).toContain(s.labels.v8js_gc_type);
  });

  it('leaves the build commit out when it is not known, and runtime metrics out when asked', async () => {
    const t = make({ build: { version: '1.2.3' }, runtimeMetrics: false });
    const e = await scrape(t);
    expect(samples(e, 'sibyl_build_info')[0]!.labels).toEqual({ version: '1.2.3' });
    expect(samples(e, 'process_cpu_seconds_total')).toHaveLength(0);
    expect(samples(e, 'nodejs_eventloop_delay_p99_seconds')).toHaveLength(0);
  });

  it('exports shadow latency as a histogram per pair, whose percentiles stay within the maximum', async () => {
    const stats = new ShadowStats();
    const t = make({ shadowStats: () => stats.snapshot(), shadowLatency: stats.latencyFamily });
    const outputs = [{ name: 'y', kind: 'scalar', dtype: 'float32' }] as never;
    const pair = stats.pair({ model: 'eta', version: '2', outputs }, { model: 'eta', version: '3', outputs });
    for (const ms of [0.2, 0.3, 4, 4, 4, 120]) pair.recordSuccess(ms, [{ y: 1 }], [{ y: 1.5 }]);
    pair.recordError(0.05, 'DEADLINE_EXCEEDED');
    const e = await scrape(t);
    const labels = { model: 'eta', version: '2', shadow_model: 'eta', shadow_version: '3' };
    expect(e.types.get('sibyl_shadow_latency_seconds')).toBe('histogram');
    expect(sample(e, 'sibyl_shadow_latency_seconds_count', labels)).toBe(7);
    expect(sample(e, 'sibyl_shadow_latency_seconds_sum', labels)).toBeCloseTo((0.2 + 0.3 + 12 + 120 + 0.05) / 1000, 9);
    expect(sample(e, 'sibyl_shadow_latency_seconds_bucket', { ...labels, le: '0.0001' })).toBe(1);
    expect(sample(e, 'sibyl_shadow_latency_seconds_bucket', { ...labels, le: '0.0005' })).toBe(3);
    expect(sample(e, 'sibyl_shadow_latency_seconds_bucket', { ...labels, le: '0.005' })).toBe(6);
    expect(sample(e, 'sibyl_shadow_latency_seconds_bucket', { ...labels, le: '+Inf' })).toBe(7);
    expect(samples(e, 'sibyl_shadow_latency_p99_seconds')).toHaveLength(0);
    expect(sample(e, 'sibyl_shadow_executions_total', labels)).toBe(7);
    const snap = stats.snapshot()[0]!;
    expect(snap.latencyMs.max).toBeCloseTo(120, 0);
    for (const p of [snap.latencyMs.p50, snap.latencyMs.p90, snap.latencyMs.p99]) expect(p).toBeLessThanOrEqual(snap.latencyMs.max);
    const diff = snap.outputs['y'];
    expect(diff?.kind === 'number' && diff.absDiff.p99 <= diff.absDiff.max).toBe(true);
  });

  it('shuts down once and then refuses to scrape', async () => {
    const t = make();
    await Promise.all([t.shutdown(), t.shutdown()]);
    await expect(t.metricsText()).rejects.toThrow();
  });
});
