import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOtelTelemetry } from '../../gateway/telemetry/otel-telemetry.ts';
import { grpcEndpoint, httpEndpoint, type Endpoint } from '../../gateway/telemetry/endpoint.ts';
import type { ArrivalInfo } from '../../gateway/telemetry/telemetry.ts';
import { SibylError } from '../../core/errors.ts';

/** The parts of an OTLP/HTTP JSON span this suite reads. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  status?: { code?: number; message?: string };
  traceState?: string;
  links?: { traceId: string; spanId: string }[];
}
interface Received {
  path: string;
  contentType: string;
  resource: Record<string, string>;
  spans: OtlpSpan[];
}

// A local OTLP/HTTP receiver: records every export and answers 200 with an empty JSON body.
let server: Server;
let endpoint: string;
let received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: OtlpSpan[] }[];
        }[];
      };
      for (const rs of body.resourceSpans) {
        received.push({
          path: req.url ?? '',
          contentType: String(req.headers['content-type']),
          resource: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue ?? ''])),
          spans: rs.scopeSpans.flatMap((s) => s.spans),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  received = [];
});

const spans = () => received.flatMap((r) => r.spans);
const attr = (s: OtlpSpan, key: string) => s.attributes?.find((a) => a.key === key)?.value.stringValue;
const intAttr = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value.intValue;
  return v === undefined ? undefined : Number(v);
};

const REST = httpEndpoint('POST', '/v1/models/{model}:predict');
const GRPC = grpcEndpoint('sibyl.v1.PredictionService', 'Predict');

/** An arrival at `startMs` through `endpoint` ('rest' or 'grpc' transport), with the caller's trace headers. */
function arrival(endpoint: Endpoint, startMs: number, trace: { traceparent?: string; tracestate?: string } = {}): ArrivalInfo {
  return endpoint.protocol === 'http'
    ? { transport: 'rest', startMs, endpoint, path: '/v1/models/fraud:predict', ...trace }
    : { transport: 'grpc', startMs, endpoint, ...trace };
}
const nanos = (s: string) => BigInt(s);

describe('otel telemetry: OTLP spans', () => {
  it('exports one request span with a child span per stage, on shutdown', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint, resourceAttributes: { 'deployment.environment.name': 'test' } });
    const t0 = performance.now();
    const span = t.startRequest('fraud', arrival(GRPC, t0), 'req-7', 'fraud');
    span.served('3', 'canary');
    span.stage('resolve', t0, t0 + 0.01);
    span.stage('enrich', t0 + 0.01, t0 + 0.5);
    span.stage('dispatch', t0 + 0.5, t0 + 1.5);
    span.stage('respond', t0 + 1.5, t0 + 1.6);
    span.stage('log', t0 + 1.6, t0 + 1.7);
    span.end('OK', t0 + 2);
    await t.shutdown();

    expect(received.length).toBeGreaterThan(0);
    expect(received[0]!.path).toBe('/v1/traces');
    expect(received[0]!.contentType).toMatch(/^application\/json/);
    expect(received[0]!.resource).toMatchObject({ 'service.name': 'sibyl-gateway', 'sibyl.cell': 'eu-1', 'deployment.environment.name': 'test' });

    const all = spans();
    expect(all.map((s) => s.name).sort()).toEqual(['dispatch', 'enrich', 'log', 'resolve', 'respond', 'sibyl.v1.PredictionService/Predict']);
    const root = all.find((s) => s.name === 'sibyl.v1.PredictionService/Predict')!;
    expect(root.parentSpanId ?? '').toBe('');
    expect(root.kind).toBe(2); // SERVER
    expect(attr(root, 'rpc.system')).toBe('grpc');
    expect(attr(root, 'rpc.service')).toBe('sibyl.v1.PredictionService');
    expect(attr(root, 'rpc.method')).toBe('Predict');
    expect(intAttr(root, 'rpc.grpc.status_code')).toBe(0);
    expect(attr(root, 'sibyl.request_id')).toBe('req-7');
    expect(attr(root, 'sibyl.model')).toBe('fraud');
    expect(attr(root, 'sibyl.version')).toBe('3');
    expect(attr(root, 'sibyl.arm')).toBe('canary');
    expect(attr(root, 'sibyl.transport')).toBe('grpc');
    expect(attr(root, 'sibyl.code')).toBe('OK');
    expect(root.status?.code ?? 0).toBe(0); // UNSET
    for (const child of all.filter((s) => s !== root)) {
      expect(child.traceId).toBe(root.traceId);
      expect(child.parentSpanId).toBe(root.spanId);
    }
    // Stage timing is carried over from the performance.now() times given (1 ms = 1e6 ns).
    const dispatch = all.find((s) => s.name === 'dispatch')!;
    expect(Number(nanos(dispatch.endTimeUnixNano) - nanos(dispatch.startTimeUnixNano))).toBeCloseTo(1e6, -3);
    expect(Number(nanos(root.endTimeUnixNano) - nanos(root.startTimeUnixNano))).toBeCloseTo(2e6, -3);
    expect(nanos(all.find((s) => s.name === 'resolve')!.startTimeUnixNano)).toBe(nanos(root.startTimeUnixNano));
  });

  it('names an HTTP request span after its route template and gives it the HTTP server attributes', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const t0 = performance.now();
    const span = t.startRequest('fraud', arrival(REST, t0), 'req-1', 'fraud');
    expect(span.trace?.recorded).toBe(true);
    span.end('OK', t0 + 1);
    await t.shutdown();
    const [root] = spans();
    expect(root!.name).toBe('POST /v1/models/{model}:predict');
    expect(attr(root!, 'http.request.method')).toBe('POST');
    expect(attr(root!, 'http.route')).toBe('/v1/models/{model}:predict');
    expect(attr(root!, 'url.path')).toBe('/v1/models/fraud:predict');
    expect(attr(root!, 'url.scheme')).toBe('http');
    expect(intAttr(root!, 'http.response.status_code')).toBe(200);
    // The context passed on is the span's own.
    expect(span.trace?.traceparent).toBe(`00-${root!.traceId}-${root!.spanId}-01`);
  });

  it('marks server failures as errors and leaves caller mistakes unset, as the conventions say', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: `${endpoint}/v1/traces` });
    const t0 = performance.now();
    const cases: [Endpoint, SibylError][] = [
      [REST, new SibylError('NOT_FOUND', 'x')],
      [REST, SibylError.because('BODY_TOO_LARGE', 'x')],
      [REST, new SibylError('UNAVAILABLE', 'x')],
      [GRPC, new SibylError('INVALID_ARGUMENT', 'x')],
      [GRPC, new SibylError('DEADLINE_EXCEEDED', 'x')],
    ];
    for (const [e, err] of cases) {
      const span = t.startRequest('fraud', arrival(e, t0), `req-${err.code}-${e.protocol}`, 'fraud');
      span.stage('resolve', t0, t0 + 0.01);
      span.end(err.code, t0 + 0.02, err);
    }
    await t.shutdown();
    const byId = (id: string) => spans().find((s) => attr(s, 'sibyl.request_id') === id)!;
    const notFound = byId('req-NOT_FOUND-http');
    expect(intAttr(notFound, 'http.response.status_code')).toBe(404);
    expect(attr(notFound, 'sibyl.code')).toBe('NOT_FOUND');
    expect(notFound.status?.code ?? 0).toBe(0);
    expect(attr(notFound, 'error.type')).toBeUndefined();
    expect(intAttr(byId('req-INVALID_ARGUMENT-http'), 'http.response.status_code')).toBe(413);
    const unavailable = byId('req-UNAVAILABLE-http');
    expect(intAttr(unavailable, 'http.response.status_code')).toBe(503);
    expect(unavailable.status).toMatchObject({ code: 2, message: 'UNAVAILABLE' }); // ERROR
    expect(attr(unavailable, 'error.type')).toBe('503');
    const invalid = byId('req-INVALID_ARGUMENT-grpc');
    expect(intAttr(invalid, 'rpc.grpc.status_code')).toBe(3);
    expect(invalid.status?.code ?? 0).toBe(0);
    const late = byId('req-DEADLINE_EXCEEDED-grpc');
    expect(intAttr(late, 'rpc.grpc.status_code')).toBe(4);
    expect(late.status).toMatchObject({ code: 2 });
    expect(attr(late, 'error.type')).toBe('DEADLINE_EXCEEDED');
    expect(spans().filter((s) => s.parentSpanId === notFound.spanId).map((s) => s.name)).toEqual(['resolve']);
  });

  it("continues the caller's trace from a W3C traceparent and keeps its tracestate", async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    const t0 = performance.now();
    const continued = t.startRequest('fraud', arrival(REST, t0, { traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=abc,other=1' }), 'r1', 'fraud');
    continued.end('OK', t0 + 1);
    t.startRequest('fraud', arrival(REST, t0, { traceparent: 'not-a-traceparent' }), 'r2', 'fraud').end('OK', t0 + 1);
    await t.shutdown();
    const roots = spans();
    expect(roots).toHaveLength(2);
    const child = roots.find((s) => s.traceId === traceId)!;
    expect(child.parentSpanId).toBe(parentId);
    expect(child.traceState).toBe('vendor=abc,other=1');
    expect(continued.trace).toEqual({ traceparent: `00-${traceId}-${child.spanId}-01`, tracestate: 'vendor=abc,other=1', recorded: true });
    const fresh = roots.find((s) => s !== child)!;
    expect(fresh.traceId).not.toBe(traceId);
    expect(fresh.parentSpanId ?? '').toBe('');
  });

  it("follows an unsampled caller: no spans, metrics still counted, the caller's context passed on", async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const t0 = performance.now();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    const span = t.startRequest('fraud', arrival(REST, t0, { traceparent, tracestate: 'a=1' }), 'r', 'fraud');
    expect(span.trace).toEqual({ traceparent, tracestate: 'a=1', recorded: false });
    expect(t.startShadow(span.trace, 'fraud', '2', 'r', t0)).toBeUndefined();
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    const { body } = await t.metricsText();
    await t.shutdown();
    expect(spans()).toHaveLength(0);
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 1');
  });

  it('samples by the configured sampler: traceidratio by trace id, parent-based follows the caller', async () => {
    // Trace ids whose words XOR to 0 (always kept at any ratio > 0) and to 0xffffffff (dropped below 1).
    const low = '00000000000000000000000000000001';
    const high = 'ffffffff000000000000000000000000';
    const parent = (id: string, flags: string) => ({ traceparent: `00-${id}-00f067aa0ba902b7-${flags}` });
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint, sampler: { name: 'traceidratio', ratio: 0.5 } });
    const t0 = performance.now();
    t.startRequest('fraud', arrival(REST, t0, parent(low, '00')), 'a', 'fraud').end('OK', t0 + 1);
    t.startRequest('fraud', arrival(REST, t0, parent(high, '01')), 'b', 'fraud').end('OK', t0 + 1);
    await t.shutdown();
    expect(spans().map((s) => s.traceId)).toEqual([low]);

    received = [];
    const p = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint, sampler: { name: 'parentbased_traceidratio', ratio: 0 } });
    for (let i = 0; i < 20; i++) p.startRequest('fraud', arrival(REST, t0), `n${i}`, 'fraud').end('OK', t0 + 1);
    p.startRequest('fraud', arrival(REST, t0, parent(high, '01')), 'c', 'fraud').end('OK', t0 + 1);
    p.startRequest('fraud', arrival(REST, t0, parent(low, '00')), 'd', 'fraud').end('OK', t0 + 1);
    const { body } = await p.metricsText();
    await p.shutdown();
    expect(spans().map((s) => s.traceId)).toEqual([high]);
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 22');

    received = [];
    const off = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint, sampler: { name: 'always_off', ratio: 1 } });
    off.startRequest('fraud', arrival(REST, t0, parent(high, '01')), 'e', 'fraud').end('OK', t0 + 1);
    await off.shutdown();
    expect(spans()).toHaveLength(0);
  });

  it('traces a shadow execution in a trace of its own, linked to the request span', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const t0 = performance.now();
    const request = t.startRequest('fraud', arrival(REST, t0), 'req-s', 'fraud');
    request.end('OK', t0 + 1);
    const shadow = t.startShadow(request.trace, 'fraud', '4', 'req-s', t0 + 2)!;
    expect(shadow.trace.recorded).toBe(true);
    shadow.end('DEADLINE_EXCEEDED', t0 + 3);
    await t.shutdown();
    const root = spans().find((s) => s.name === 'POST /v1/models/{model}:predict')!;
    const s = spans().find((x) => x.name === 'shadow')!;
    expect(s.traceId).not.toBe(root.traceId);
    expect(s.parentSpanId ?? '').toBe('');
    expect(s.kind).toBe(1); // INTERNAL
    expect(s.links).toEqual([expect.objectContaining({ traceId: root.traceId, spanId: root.spanId })]);
    expect(attr(s, 'sibyl.model')).toBe('fraud');
    expect(attr(s, 'sibyl.version')).toBe('4');
    expect(attr(s, 'sibyl.request_id')).toBe('req-s');
    expect(s.status).toMatchObject({ code: 2, message: 'DEADLINE_EXCEEDED' });
    expect(shadow.trace.traceparent).toBe(`00-${s.traceId}-${s.spanId}-01`);
  });

  it('keeps serving when the collector is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: `http://127.0.0.1:${port}` });
    const t0 = performance.now();
    const span = t.startRequest('fraud', arrival(REST, t0), 'r', 'fraud');
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    const { body } = await t.metricsText();
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 1');
    await expect(t.shutdown()).resolves.toBeUndefined();
  });

  it("sends nothing when no OTLP endpoint is configured, and still passes the caller's context on", async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1' });
    const t0 = performance.now();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const span = t.startRequest('fraud', arrival(REST, t0, { traceparent }), 'r', 'fraud');
    expect(span.trace).toEqual({ traceparent, tracestate: '', recorded: false });
    expect(t.startRequest('fraud', arrival(REST, t0, { traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' }), 'r', 'fraud').trace).toBeUndefined();
    expect(t.startRequest('fraud', arrival(REST, t0), 'r', 'fraud').trace).toBeUndefined();
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    await t.shutdown();
    expect(received).toHaveLength(0);
  });
});
