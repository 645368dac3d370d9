/**
 * CPU per request through the pipeline's one entry (`pipeline.predict`: admission, the request id, the deadline,
 * telemetry, resolve, execute, respond, the prediction-log record) with a model that answers at once, so that
 * what is measured is the gateway's own work around a model call. One-row requests with 5 request features (no
 * feature store reads), run one after another; CPU from process.cpuUsage over each round.
 *
 * Variants: the prediction log off (null sink) or on (each record built and turned into its Kafka CloudEvent
 * message, as the Kafka sink does, then dropped); telemetry as the gateway runs it by default (Prometheus metrics,
 * no tracing), and with OTLP tracing to a local receiver, every request sampled or 1%. Requests carry a caller's
 * `traceparent` in the `+ctx` variants.
 *
 * `--baseline <dir>` loads the same modules from another checkout of Sibyl (e.g. `git archive <rev>` unpacked,
 * with node_modules linked) and interleaves its rounds with this tree's, so that both are measured in the same
 * minutes of a machine whose speed drifts.
 *
 * Run: node loadtest/micro/entry.bench.ts [--baseline <dir>] [requestsPerRound=20000] [rounds=7]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';

const args = process.argv.slice(2);
const b = args.indexOf('--baseline');
const baselineDir = b >= 0 ? args.splice(b, 2)[1] : undefined;
const N = Number(args[0] ?? 20_000);
const ROUNDS = Number(args[1] ?? 7);
const here = join(import.meta.dirname, '..', '..');

// The modules a tree is measured through; loose types: the two trees may differ in their signatures.
/* eslint-disable @typescript-eslint/no-explicit-any */
interface Tree {
  readonly name: string;
  readonly createPipeline: (deps: any) => { predict(arrival: any, parse: () => any): Promise<any> };
  readonly createOtelTelemetry: (opts: any) => any;
  readonly RouteTable: new (models: any[]) => any;
  readonly RouteTableRef: new (table: any) => any;
  readonly Route: new (manifest: any, loaded: any, hash: string) => any;
  readonly validateManifest: (raw: unknown) => any;
  readonly createMemoryFeatureStore: () => any;
  readonly predictionMessage: (record: any, cell: string) => { value: string };
  readonly httpEndpoint?: (method: string, route: string) => unknown;
}

async function loadTree(name: string, root: string): Promise<Tree> {
  const m = (path: string) => import(join(root, path));
  const [pipeline, otel, routes, manifest, store, event] = await Promise.all([
    m('gateway/pipeline/pipeline.ts'),
    m('gateway/telemetry/otel-telemetry.ts'),
    m('gateway/routing/route-table.ts'),
    m('runtimes/manifest.ts'),
    m('gateway/features/memory-feature-store.ts'),
    m('gateway/log/cloud-event.ts'),
  ]);
  const endpoint = await m('gateway/telemetry/endpoint.ts').catch(() => undefined);
  return {
    name,
    createPipeline: pipeline.createPipeline,
    createOtelTelemetry: otel.createOtelTelemetry,
    RouteTable: routes.RouteTable,
    RouteTableRef: routes.RouteTableRef,
    Route: routes.Route,
    validateManifest: manifest.validateManifest,
    createMemoryFeatureStore: store.createMemoryFeatureStore,
    predictionMessage: event.predictionMessage,
    httpEndpoint: endpoint?.httpEndpoint,
  };
}

const FEATURES = ['distance_km', 'hour_of_day', 'basket_size', 'basket_value', 'is_raining'];
const ANSWER = Promise.resolve([{ eta_minutes: 31.5 }]);

interface Variant {
  readonly name: string;
  readonly run: (i: number) => Promise<unknown>;
  readonly yields: boolean;
  readonly shutdown: () => Promise<void>;
}

function variants(tree: Tree, otlpEndpoint: string): Variant[] {
  const manifest = tree.validateManifest({
    name: 'eta',
    version: '1',
    runtime: 'onnx',
    onnx: { file: 'm.onnx', inputs: [{ name: 'x', dtype: 'float32', features: FEATURES }], outputs: [{ name: 'eta_minutes' }] },
    features: FEATURES.map((name) => ({ name, dtype: 'float32', source: 'request', default: 0 })),
  });
  const route = new tree.Route(manifest, { predict: () => ANSWER, dispose: async () => {} }, 'h');
  const routes = new tree.RouteTableRef(new tree.RouteTable([{ name: 'eta', versions: new Map([['1', route]]), defaultVersion: '1', aliases: new Map() }]));
  const store = tree.createMemoryFeatureStore();
  let bytes = 0;
  const stats = () => ({ accepted: 0, delivered: 0, spilled: 0, lost: 0, pending: 0 });
  const sinks = {
    off: { kind: 'null', write() {}, flush: async () => {}, shutdown: async () => {}, stats },
    kafka: { kind: 'bench', write: (r: unknown) => void (bytes += tree.predictionMessage(r, 'cell-a').value.length), flush: async () => {}, shutdown: async () => {}, stats },
  };
  const base = { serviceName: 'bench', cell: 'cell-a' };
  const telemetries = {
    metrics: () => tree.createOtelTelemetry(base),
    'traces 100%': () => tree.createOtelTelemetry({ ...base, otlpEndpoint }),
    'traces 1%': () => tree.createOtelTelemetry({ ...base, otlpEndpoint, traceSampleRatio: 0.01, sampler: { name: 'parentbased_traceidratio', ratio: 0.01 } }),
  };
  const endpoint = tree.httpEndpoint?.('POST', '/v1/models/{model}:predict');
  const rows = [{ entities: {}, features: { distance_km: 0.67, hour_of_day: 8, basket_size: 4, basket_value: 33.47, is_raining: 0 } }];
  const parsed = { model: 'eta', version: '', routingKey: '', rows: () => rows };
  const parse = () => parsed;
  const out: Variant[] = [];
  const cases: [string, keyof typeof sinks, keyof typeof telemetries, boolean][] = [
    ['log off, metrics', 'off', 'metrics', false],
    ['log on, metrics', 'kafka', 'metrics', false],
    ['log on, metrics +ctx', 'kafka', 'metrics', true],
    ['log on, traces 1%', 'kafka', 'traces 1%', false],
    ['log on, traces 100%', 'kafka', 'traces 100%', false],
  ];
  for (const [name, sink, tel, ctx] of cases) {
    const telemetry = telemetries[tel]();
    const pipeline = tree.createPipeline({ routes, store, featurePrefix: 'sibyl', featureTimeoutMs: 5, sink: sinks[sink], telemetry, cell: 'cell-a', maxRows: 1000, requestTimeoutMs: 1000 });
    const traceparent = ctx ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' : undefined;
    out.push({
      name,
      yields: tel !== 'metrics',
      run: (i) =>
        pipeline.predict({ transport: 'rest', startMs: performance.now(), endpoint, path: '/v1/models/eta:predict', requestId: `req-${i}`, traceparent }, parse),
      shutdown: () => telemetry.shutdown(),
    });
  }
  return out;
}

async function round(v: Variant): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    await v.run(i);
    // Traced variants let the batch span processor export as it would between requests.
    if (v.yields && i % 100 === 99) await yieldLoop();
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / N;
}

const median = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const otlpEndpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const trees = [await loadTree('this tree', here)];
  if (baselineDir !== undefined) trees.unshift(await loadTree('baseline', baselineDir));
  const all = trees.map((t) => ({ tree: t, variants: variants(t, otlpEndpoint) }));
  const results = new Map<string, number[]>();
  for (const { variants: vs } of all) for (const v of vs) await round(v); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < all[0]!.variants.length; k++) {
      for (const { tree, variants: vs } of r % 2 === 0 ? all : [...all].reverse()) {
        const key = `${tree.name}\u0000${vs[k]!.name}`;
        const us = await round(vs[k]!);
        results.set(key, [...(results.get(key) ?? []), us]);
      }
    }
  }
  for (const { variants: vs } of all) for (const v of vs) await v.shutdown();
  receiver.close();
  console.log(`CPU per request through pipeline.predict, µs (median of ${ROUNDS} rounds of ${N} requests)`);
  console.log(`${'variant'.padEnd(26)}${trees.map((t) => t.name.padStart(12)).join('')}`);
  for (const v of all[0]!.variants) {
    const cols = trees.map((t) => median(results.get(`${t.name}\u0000${v.name}`)!).toFixed(2).padStart(12));
    console.log(`${v.name.padEnd(26)}${cols.join('')}`);
  }
}

await main();
