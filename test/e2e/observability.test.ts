/**
 * Observability by the conventions, through a running gateway: request spans named and attributed as the
 * OpenTelemetry semantic conventions say on every door (a local OTLP/HTTP receiver decodes the exporter's JSON),
 * the caller's trace continued with its tracestate, the span's trace context in the prediction log (the file
 * sink's JSON lines, and the CloudEvent built from them), shadows traced in their own linked traces, the sampled
 * access log, the resource from OTEL_* variables, runtime and build metrics, and unknown model names that add no
 * series to /metrics.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { parsePredictionEvent, predictionMessageFromJson, RECORD_DATA_SCHEMA } from '../../gateway/log/cloud-event.ts';
import type { PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { expectedFor } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import { parseExposition, sample, samples } from '../telemetry/prom-text.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  links?: { traceId: string; spanId: string }[];
}

let receiver: Server;
let received: { resource: Record<string, string>; span: OtlpSpan }[] = [];
let gw: TestGateway;
const logLines: Record<string, unknown>[] = [];

const eta = expectedFor('delivery-eta', '2').rows;
const features = Object.keys(eta[0]!.request);
const entities = Object.keys(eta[0]!.entities);

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        const resource = Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue ?? '']));
        for (const s of rs.scopeSpans.flatMap((x) => x.spans)) received.push({ resource, span: s });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const models = makeModelsDir({
    bundles: ['delivery-eta/1', 'delivery-eta/2', 'tabular-mlp/1'],
    copies: [{ from: 'tabular-mlp/1', version: '2' }],
    deployment: {
      models: {
        'delivery-eta': { default: '2', shadows: [{ version: '1' }] },
        'tabular-mlp': { default: '1', split: [{ version: '1', weight: 50, arm: 'control' }, { version: '2', weight: 50, arm: 'treatment' }] },
      },
    },
  });
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  gw = await startGateway(
    {
      SIBYL_MODELS_DIR: models,
      SIBYL_CELL: 'obs',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_SERVICE_NAME: 'sibyl-gateway-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e,service.namespace=ml%20platform',
      SIBYL_ACCESS_LOG_RATIO: '1',
    },
    { logger: pino({ level: 'info' }, stream) },
  );
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});
beforeEach(() => {
  received = [];
});

/** Exports what the batch processor holds (a shutdown would end the gateway's tracing). */
async function spansOf(traceId: string, count: number): Promise<OtlpSpan[]> {
  for (let i = 0; i < 200; i++) {
    const hits = received.filter((r) => r.span.traceId === traceId).map((r) => r.span);
    if (hits.length >= count) return hits;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The batch span processor exports every 5 s; ask for it now.
    if (i % 10 === 0) await gw.gateway.telemetry.flush();
  }
  throw new Error(`fewer than ${count} spans of trace ${traceId}: ${received.length} received`);
}

const str = (s: OtlpSpan, key: string) => s.attributes?.find((a) => a.key === key)?.value.stringValue;
const int = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value.intValue;
  return v === undefined ? undefined : Number(v);
};

let traceCounter = 0;
function callerContext(): { traceId: string; parentId: string; traceparent: string; tracestate: string } {
  const traceId = `4bf92f3577b34da6a3ce929d${String(++traceCounter).padStart(8, '0')}`;
  const parentId = '00f067aa0ba902b7';
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01`, tracestate: `caller=t${traceCounter}` };
}

/** The live record of a request in the file sink's JSON lines. */
function fileRecord(requestId: string, role = 'ROLE_LIVE'): { record: PredictionRecord; line: string } {
  const dir = join(gw.dataDir, 'predictions', 'obs');
  for (const f of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const record = JSON.parse(line) as PredictionRecord;
      if (record.requestId === requestId && record.role === role) return { record, line };
    }
  }
  throw new Error(`no ${role} record of ${requestId}`);
}

const doors = {
  async rest(headers: Record<string, string>, requestId: string) {
    const r = eta[0]!;
    const res = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { requestId, rows: [{ entities: r.entities, features: r.request }] }, headers);
    expect(res.status).toBe(200);
  },
  async 'oip-rest'(headers: Record<string, string>, requestId: string) {
    const r = eta[0]!;
    const inputs = [
      ...entities.map((e) => ({ name: e, datatype: 'BYTES', shape: [1], data: [r.entities[e]!] })),
      ...features.map((f) => ({ name: f, datatype: 'FP32', shape: [1, 1], data: [r.request[f]!] })),
    ];
    const res = await postJson(`${gw.http}/v2/models/delivery-eta/versions/2/infer`, { id: requestId, inputs }, headers);
    expect(res.status).toBe(200);
  },
  async grpc(metadata: Record<string, string>, requestId: string) {
    const r = eta[0]!;
    const res = await gw.sibyl.call(
      PredictionService.method.predict,
      {
        model: 'delivery-eta',
        requestId,
        rows: [{ entities: r.entities, features: Object.fromEntries(Object.entries(r.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }],
      },
      { metadata },
    );
    expect(res.ok).toBe(true);
  },
  async 'oip-grpc'(metadata: Record<string, string>, requestId: string) {
    const r = eta[0]!;
    const res = await gw.oip.call(
      GRPCInferenceService.method.modelInfer,
      {
        modelName: 'delivery-eta',
        id: requestId,
        inputs: [
          ...entities.map((e) => ({ name: e, datatype: 'BYTES', shape: [1n], contents: { bytesContents: [new TextEncoder().encode(r.entities[e]!)] } })),
          ...features.map((f) => ({ name: f, datatype: 'FP32', shape: [1n, 1n], contents: { fp32Contents: [r.request[f]!] } })),
        ],
      },
      { metadata },
    );
    expect(res.ok).toBe(true);
  },
};

const expected = {
  rest: { name: 'POST /v1/models/{model}:predict', http: { route: '/v1/models/{model}:predict', path: '/v1/models/delivery-eta:predict' } },
  'oip-rest': { name: 'POST /v2/models/{model}/versions/{version}/infer', http: { route: '/v2/models/{model}/versions/{version}/infer', path: '/v2/models/delivery-eta/versions/2/infer' } },
  grpc: { name: 'sibyl.v1.PredictionService/Predict', rpc: { service: 'sibyl.v1.PredictionService', method: 'Predict' } },
  'oip-grpc': { name: 'inference.GRPCInferenceService/ModelInfer', rpc: { service: 'inference.GRPCInferenceService', method: 'ModelInfer' } },
} as const;

describe('observability by the conventions', () => {
  for (const door of ['rest', 'oip-rest', 'grpc', 'oip-grpc'] as const) {
    it(`${door}: a SERVER span with the semantic-convention attributes, and its context in the prediction log`, async () => {
      const caller = callerContext();
      const requestId = `obs-${door}-${traceCounter}`;
      await doors[door]({ traceparent: caller.traceparent, tracestate: caller.tracestate }, requestId);
      // resolve, enrich, dispatch, respond, log: five stage spans under the request span.
      const trace = await spansOf(caller.traceId, 6);
      const root = trace.find((s) => s.parentSpanId === caller.parentId)!;
      const want = expected[door];
      expect(root.name).toBe(want.name);
      expect(root.kind).toBe(2); // SERVER
      expect(root.traceState).toBe(caller.tracestate);
      if ('http' in want) {
        expect(str(root, 'http.request.method')).toBe('POST');
        expect(str(root, 'http.route')).toBe(want.http.route);
        expect(str(root, 'url.path')).toBe(want.http.path);
        expect(str(root, 'url.scheme')).toBe('http');
        expect(int(root, 'http.response.status_code')).toBe(200);
        expect(str(root, 'rpc.system')).toBeUndefined();
      } else {
        expect(str(root, 'rpc.system')).toBe('grpc');
        expect(str(root, 'rpc.service')).toBe(want.rpc.service);
        expect(str(root, 'rpc.method')).toBe(want.rpc.method);
        expect(int(root, 'rpc.grpc.status_code')).toBe(0);
        expect(str(root, 'http.route')).toBeUndefined();
      }
      expect(str(root, 'sibyl.request_id')).toBe(requestId);
      expect(str(root, 'sibyl.model')).toBe('delivery-eta');
      expect(str(root, 'sibyl.version')).toBe('2');
      expect(str(root, 'sibyl.arm')).toBe('');
      expect(str(root, 'sibyl.transport')).toBe(door);
      expect(str(root, 'sibyl.code')).toBe('OK');
      expect(trace.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name).sort()).toEqual(['dispatch', 'enrich', 'log', 'resolve', 'respond']);
      expect(received.find((r) => r.span === root)!.resource).toMatchObject({
        'service.name': 'sibyl-gateway-test',
        'sibyl.cell': 'obs',
        'deployment.environment.name': 'e2e',
        'service.namespace': 'ml platform',
      });

      // The file sink's record and the CloudEvent made from its line carry the request span's context.
      await gw.gateway.sink.flush();
      const { record, line } = fileRecord(requestId);
      expect(record.traceparent).toBe(`00-${caller.traceId}-${root.spanId}-01`);
      expect(record.tracestate).toBe(caller.tracestate);
      const event = parsePredictionEvent(predictionMessageFromJson(line, 'obs').value);
      expect(event).toMatchObject({ traceparent: record.traceparent, tracestate: caller.tracestate, dataschema: RECORD_DATA_SCHEMA });

      // The access log's line for it (SIBYL_ACCESS_LOG_RATIO=1), with the trace ids.
      const access = logLines.find((l) => l.msg === 'request' && l.requestId === requestId)!;
      expect(access).toMatchObject({ transport: door, route: want.name, model: 'delivery-eta', version: '2', code: 'OK', trace_id: caller.traceId, span_id: root.spanId });
      expect(access['http' in want ? 'httpStatus' : 'grpcStatus']).toBe('http' in want ? 200 : 0);
    }, 30_000);
  }

  it('traces each shadow execution in a trace of its own, linked to the request span, and logs it with that context', async () => {
    const caller = callerContext();
    const requestId = `obs-shadow-${traceCounter}`;
    await doors.rest({ traceparent: caller.traceparent }, requestId);
    const [root] = (await spansOf(caller.traceId, 6)).filter((s) => s.parentSpanId === caller.parentId);
    let shadow: OtlpSpan | undefined;
    for (let i = 0; i < 100 && !shadow; i++) {
      shadow = received.map((r) => r.span).find((s) => s.name === 'shadow' && str(s, 'sibyl.request_id') === requestId);
      if (!shadow) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await gw.gateway.telemetry.flush();
      }
    }
    expect(shadow).toBeDefined();
    expect(shadow!.traceId).not.toBe(caller.traceId);
    expect(shadow!.links).toEqual([expect.objectContaining({ traceId: caller.traceId, spanId: root!.spanId })]);
    expect(str(shadow!, 'sibyl.model')).toBe('delivery-eta');
    expect(str(shadow!, 'sibyl.version')).toBe('1');
    await gw.gateway.shadows.flush();
    await gw.gateway.sink.flush();
    expect(fileRecord(requestId, 'ROLE_SHADOW').record.traceparent).toBe(`00-${shadow!.traceId}-${shadow!.spanId}-01`);
  }, 30_000);

  it('records the arm of a traffic split on the span', async () => {
    const caller = callerContext();
    const res = await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, { routingKey: 'c187', rows: [{ features: expectedFor('tabular-mlp', '1').rows[0]!.request }] }, { traceparent: caller.traceparent });
    expect(res.status).toBe(200);
    const root = (await spansOf(caller.traceId, 6)).find((s) => s.parentSpanId === caller.parentId)!;
    expect(str(root, 'sibyl.arm')).toBe(res.json.arm);
    expect(str(root, 'sibyl.version')).toBe(res.json.version);
  }, 30_000);

  it('passes an unsampled caller context on to the prediction log without making spans', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const requestId = 'obs-unsampled';
    await doors.rest({ traceparent, tracestate: 'x=1' }, requestId);
    await gw.gateway.sink.flush();
    expect(fileRecord(requestId).record).toMatchObject({ traceparent, tracestate: 'x=1' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received.filter((r) => r.span.traceId === '4bf92f3577b34da6a3ce929d0e0e4736')).toHaveLength(0);
  });

  it('folds model names the route table does not know into one label: no new series', async () => {
    const metrics = async () => parseExposition(await (await fetch(`${gw.http}/metrics`)).text());
    const series = (e: Awaited<ReturnType<typeof metrics>>) => new Set(e.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`));
    const unknown = async (name: string) => {
      expect((await postJson(`${gw.http}/v1/models/${name}:predict`, { rows: [{ features: {} }] })).status).toBe(404);
      expect((await postJson(`${gw.http}/v2/models/${name}/infer`, { inputs: [] })).status).toBe(404);
      expect((await gw.sibyl.call(PredictionService.method.predict, { model: name, rows: [{}] })).ok).toBe(false);
      expect((await gw.oip.call(GRPCInferenceService.method.modelInfer, { modelName: name, inputs: [] })).ok).toBe(false);
    };
    await unknown('typo-0');
    const before = await metrics();
    for (let i = 1; i <= 25; i++) await unknown(`typo-${i}`);
    const after = await metrics();
    const added = [...series(after)].filter((s) => !series(before).has(s) && !/_bucket|_sum|_count/.test(s));
    // Only runtime gauges that appear by themselves (a GC type seen for the first time) may be new.
    expect(added.filter((s) => s.startsWith('sibyl_'))).toEqual([]);
    expect(samples(after, 'sibyl_requests_total').some((s) => s.labels.model?.startsWith('typo'))).toBe(false);
    for (const transport of ['rest', 'oip-rest', 'grpc', 'oip-grpc']) {
      const count = (e: typeof after) => sample(e, 'sibyl_requests_total', { model: '_unknown', transport, code: 'NOT_FOUND' });
      expect(count(after) - count(before), transport).toBe(25);
    }
  });

  it("a gateway process's log lines keep pino's pid and hostname, with the cell", async () => {
    const child = spawn(process.execPath, ['gateway/main.ts'], {
      env: { ...process.env, SIBYL_HOST: '127.0.0.1', SIBYL_HTTP_PORT: '0', SIBYL_GRPC_PORT: '0', SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-obs-')), SIBYL_CELL: 'logs', SIBYL_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 600 && !out.includes('sibyl gateway serving'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const line = out.split('\n').find((l) => l.includes('sibyl gateway serving'));
      expect(line, out).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ pid: child.pid, hostname: hostname(), cell: 'logs' });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }, 60_000);

  it('exports process, Node.js runtime and build metrics, and the resource as target_info', async () => {
    const e = parseExposition(await (await fetch(`${gw.http}/metrics`)).text());
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_utilization_ratio']) {
      expect(samples(e, name), name).toHaveLength(1);
    }
    expect(e.types.get('v8js_gc_duration_seconds')).toBe('histogram');
    expect(samples(e, 'v8js_memory_heap_used_bytes').length).toBeGreaterThan(3);
    const build = samples(e, 'sibyl_build_info');
    expect(build).toHaveLength(1);
    expect(build[0]!.labels.version).toBe(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')).version);
    expect(sample(e, 'target_info', { service_name: 'sibyl-gateway-test', deployment_environment_name: 'e2e' })).toBe(1);
  });
});
