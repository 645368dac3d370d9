/**
 * The entry's log lines: an INTERNAL error's cause with the request's trace and span ids, and the sampled access
 * log (one line per request, off by default). In process, with a model that fails or answers at once.
 */
import { describe, expect, it } from 'vitest';
import { createPipeline, type Arrival, type ParsedRequest } from '../../gateway/pipeline/pipeline.ts';
import { Route, RouteTable, RouteTableRef } from '../../gateway/routing/route-table.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
import { createMemoryFeatureStore } from '../../gateway/features/memory-feature-store.ts';
import { createOtelTelemetry } from '../../gateway/telemetry/otel-telemetry.ts';
import { grpcEndpoint, httpEndpoint } from '../../gateway/telemetry/endpoint.ts';
import { createMemorySink } from '../helpers/memory-sink.ts';

function route(version: string, predict: () => Promise<Record<string, number>[]>): Route {
  const manifest = validateManifest({
    name: 'm',
    version,
    runtime: 'onnx',
    onnx: { file: 'm.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['a'] }], outputs: [{ name: 'y' }] },
    features: [{ name: 'a', dtype: 'float32', source: 'request', default: 0 }],
  });
  return new Route(manifest, { predict, dispose: async () => {} }, 'h');
}

function setup(accessLogRatio?: number) {
  const ok = route('1', async () => [{ y: 1 }]);
  const broken = route('2', async () => {
    throw new Error('segfault in the model');
  });
  const routes = new RouteTableRef(new RouteTable([{ name: 'm', versions: new Map([['1', ok], ['2', broken]]), defaultVersion: '1', aliases: new Map() }]));
  const lines: { level: 'error' | 'info'; obj: Record<string, unknown>; msg: string }[] = [];
  const telemetry = createOtelTelemetry({ serviceName: 't', cell: 'c', runtimeMetrics: false });
  const pipeline = createPipeline({
    routes,
    store: createMemoryFeatureStore(),
    featurePrefix: 'sibyl',
    featureTimeoutMs: 5,
    sink: createMemorySink(),
    telemetry,
    cell: 'c',
    maxRows: 10,
    requestTimeoutMs: 1000,
    logger: { error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }), info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
    ...(accessLogRatio === undefined ? {} : { accessLogRatio }),
  });
  return { pipeline, lines, telemetry };
}

const traceId = '0af7651916cd43dd8448eb211c80319c';
const spanId = 'b7ad6b7169203331';
const rest = httpEndpoint('POST', '/v1/models/{model}/versions/{version}:predict');
const arrival = (requestId: string): Arrival => ({ transport: 'rest', startMs: performance.now(), endpoint: rest, requestId, traceparent: `00-${traceId}-${spanId}-01` });
const request = (version: string): ParsedRequest => ({ model: 'm', version, routingKey: '', rows: () => [{ entities: {}, features: { a: 1 } }] });

describe("the entry's log lines", () => {
  it("logs an INTERNAL error's cause with the request's trace_id and span_id", async () => {
    const { pipeline, lines, telemetry } = setup();
    const outcome = await pipeline.predict(arrival('r-1'), () => request('2'));
    expect(outcome.error?.code).toBe('INTERNAL');
    expect(outcome.error?.message).not.toMatch(/segfault/);
    const error = lines.find((l) => l.level === 'error')!;
    expect(error.msg).toBe('prediction failed');
    expect(error.obj).toMatchObject({ requestId: 'r-1', model: 'm', trace_id: traceId, span_id: spanId });
    expect(String((error.obj.err as Error).message)).toMatch(/segfault/);
    // Access log off by default.
    expect(lines.filter((l) => l.level === 'info')).toEqual([]);
    await telemetry.shutdown();
  });

  it('writes one access-log line per request when the ratio is 1, none when it is 0', async () => {
    const { pipeline, lines, telemetry } = setup(1);
    await pipeline.predict(arrival('r-ok'), () => request('1'));
    await pipeline.predict(arrival('r-fail'), () => request('2'));
    await pipeline.predict({ transport: 'grpc', startMs: performance.now(), endpoint: grpcEndpoint('sibyl.v1.PredictionService', 'Predict') }, () => {
      throw new Error('not a message');
    });
    const access = lines.filter((l) => l.level === 'info');
    expect(access.map((l) => l.msg)).toEqual(['request', 'request', 'request']);
    expect(access[0]!.obj).toMatchObject({
      requestId: 'r-ok',
      transport: 'rest',
      route: 'POST /v1/models/{model}/versions/{version}:predict',
      model: 'm',
      version: '1',
      arm: '',
      code: 'OK',
      httpStatus: 200,
      trace_id: traceId,
      span_id: spanId,
    });
    expect(access[0]!.obj.durationMs).toBeGreaterThanOrEqual(0);
    expect(access[1]!.obj).toMatchObject({ requestId: 'r-fail', version: '2', code: 'INTERNAL', httpStatus: 500 });
    expect(access[2]!.obj).toMatchObject({ transport: 'grpc', route: 'sibyl.v1.PredictionService/Predict', model: '', code: 'INTERNAL', grpcStatus: 13 });
    expect(access[2]!.obj).not.toHaveProperty('trace_id');
    await telemetry.shutdown();

    const off = setup(0);
    await off.pipeline.predict(arrival('r-off'), () => request('1'));
    expect(off.lines).toEqual([]);
    await off.telemetry.shutdown();
  });
});
