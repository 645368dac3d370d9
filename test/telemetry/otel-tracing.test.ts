import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOtelTelemetry } from '../../gateway/telemetry/otel-telemetry.ts';

/** The parts of an OTLP/HTTP JSON span this suite reads. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: { stringValue?: string } }[];
  status?: { code?: number; message?: string };
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
const nanos = (s: string) => BigInt(s);

describe('otel telemetry: OTLP spans', () => {
  it('exports one request span with a child span per stage, on shutdown', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const t0 = performance.now();
    const span = t.startRequest('fraud', 'grpc', t0);
    span.stage('resolve', t0, t0 + 0.01);
    span.stage('enrich', t0 + 0.01, t0 + 0.5);
    span.stage('dispatch', t0 + 0.5, t0 + 1.5);
    span.stage('respond', t0 + 1.5, t0 + 1.6);
    span.end('OK', t0 + 2);
    await t.shutdown();

    expect(received.length).toBeGreaterThan(0);
    expect(received[0]!.path).toBe('/v1/traces');
    expect(received[0]!.contentType).toMatch(/^application\/json/);
    expect(received[0]!.resource).toMatchObject({ 'service.name': 'sibyl-gateway', 'sibyl.cell': 'eu-1' });

    const all = spans();
    expect(all.map((s) => s.name).sort()).toEqual(['dispatch', 'enrich', 'predict', 'resolve', 'respond']);
    const root = all.find((s) => s.name === 'predict')!;
    expect(root.parentSpanId ?? '').toBe('');
    expect(root.kind).toBe(2); // SERVER
    expect(attr(root, 'sibyl.model')).toBe('fraud');
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

  it('marks failed requests with an error status and their code', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: `${endpoint}/v1/traces` });
    const t0 = performance.now();
    const span = t.startRequest('fraud', 'rest', t0);
    span.stage('resolve', t0, t0 + 0.01);
    span.end('NOT_FOUND', t0 + 0.02);
    await t.shutdown();
    const root = spans().find((s) => s.name === 'predict')!;
    expect(attr(root, 'sibyl.code')).toBe('NOT_FOUND');
    expect(root.status).toMatchObject({ code: 2, message: 'NOT_FOUND' }); // ERROR
    expect(spans().filter((s) => s.parentSpanId === root.spanId).map((s) => s.name)).toEqual(['resolve']);
  });

  it("continues the caller's trace from a W3C traceparent", async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    const t0 = performance.now();
    t.startRequest('fraud', 'rest', t0, `00-${traceId}-${parentId}-01`).end('OK', t0 + 1);
    t.startRequest('fraud', 'rest', t0, 'not-a-traceparent').end('OK', t0 + 1);
    await t.shutdown();
    const roots = spans().filter((s) => s.name === 'predict');
    expect(roots).toHaveLength(2);
    const continued = roots.find((s) => s.traceId === traceId)!;
    expect(continued.parentSpanId).toBe(parentId);
    const fresh = roots.find((s) => s !== continued)!;
    expect(fresh.traceId).not.toBe(traceId);
    expect(fresh.parentSpanId ?? '').toBe('');
  });

  it('follows an unsampled caller: no spans, metrics still counted', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint });
    const t0 = performance.now();
    const span = t.startRequest('fraud', 'rest', t0, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00');
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    const { body } = await t.metricsText();
    await t.shutdown();
    expect(spans()).toHaveLength(0);
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 1');
  });

  it('samples requests without trace context by ratio, and always follows a sampled caller', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: endpoint, traceSampleRatio: 0 });
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) t.startRequest('fraud', 'rest', t0).end('OK', t0 + 1);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const span = t.startRequest('fraud', 'rest', t0, `00-${traceId}-00f067aa0ba902b7-01`);
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    const { body } = await t.metricsText();
    await t.shutdown();
    expect(spans().map((s) => s.name).sort()).toEqual(['predict', 'resolve']);
    expect(new Set(spans().map((s) => s.traceId))).toEqual(new Set([traceId]));
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 21');
  });

  it('keeps serving when the collector is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1', otlpEndpoint: `http://127.0.0.1:${port}` });
    const t0 = performance.now();
    const span = t.startRequest('fraud', 'rest', t0);
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    const { body } = await t.metricsText();
    expect(body).toContain('sibyl_requests_total{model="fraud",transport="rest",code="OK"} 1');
    await expect(t.shutdown()).resolves.toBeUndefined();
  });

  it('sends nothing when no OTLP endpoint is configured', async () => {
    const t = createOtelTelemetry({ serviceName: 'sibyl-gateway', cell: 'eu-1' });
    const t0 = performance.now();
    const span = t.startRequest('fraud', 'rest', t0);
    span.stage('resolve', t0, t0 + 0.01);
    span.end('OK', t0 + 1);
    await t.shutdown();
    expect(received).toHaveLength(0);
  });
});
