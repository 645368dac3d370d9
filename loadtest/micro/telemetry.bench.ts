/**
 * Per-request telemetry cost, the calls the pipeline makes for one request (startRequest, the trace context read,
 * served, 5 stages, end), in ns, side by side in one run:
 *   noop           noopTelemetry (the baseline: the calls themselves)
 *   otel           createOtelTelemetry without OTLP (what the gateway runs by default)
 *   sdk-instruments the same series through the OTel SDK's sync instruments with cached attribute objects
 *                  (the design not taken; for comparison)
 *   otel+traces    with OTLP spans to a local receiver on 127.0.0.1 (all sampled; and 1% sampled)
 * Rounds are interleaved and the median round is reported. Traced variants yield to the event loop every
 * CHUNK requests so the batch processor exports; their CPU column includes that export work (process.cpuUsage).
 *
 * Run: node loadtest/micro/telemetry.bench.ts [requestsPerRound=200000] [rounds=7]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { createOtelTelemetry } from '../../gateway/telemetry/otel-telemetry.ts';
import { noopTelemetry } from '../../gateway/telemetry/noop-telemetry.ts';
import { LATENCY_BUCKETS_SECONDS } from '../../gateway/telemetry/metric-families.ts';
import { httpEndpoint } from '../../gateway/telemetry/endpoint.ts';
import type { ArrivalInfo, RequestSpan, Stage, Telemetry } from '../../gateway/telemetry/telemetry.ts';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 7);
const CHUNK = 100;
const MODELS = Array.from({ length: 20 }, (_, i) => `model-${i}`);
const TRANSPORTS = ['rest', 'grpc'];
const STAGES: readonly Stage[] = ['resolve', 'enrich', 'dispatch', 'respond', 'log'];
const ENDPOINT = httpEndpoint('POST', '/v1/models/{model}:predict');

/** The OTel SDK's own instruments behind the Telemetry interface, attributes cached per label set. */
function sdkInstrumentsTelemetry(): Telemetry {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('bench');
  const advice = { explicitBucketBoundaries: [...LATENCY_BUCKETS_SECONDS] };
  const requests = meter.createCounter('sibyl_requests');
  const duration = meter.createHistogram('sibyl_request_duration_seconds', { advice });
  const stageDuration = meter.createHistogram('sibyl_stage_duration_seconds', { advice });
  // Attribute objects cached per label set in nested maps, as the pre-bound design caches its cells.
  type Attrs = Record<string, string>;
  const models = new Map<string, { stages: Map<string, Attrs>; transports: Map<string, { attrs: Attrs; codes: Map<string, Attrs> }> }>();
  const get = <K, V>(m: Map<K, V>, k: K, make: () => V): V => {
    let v = m.get(k);
    if (v === undefined) m.set(k, (v = make()));
    return v;
  };
  return {
    startRequest(model, { transport, startMs }): RequestSpan {
      const m = get(models, model, () => ({ stages: new Map(), transports: new Map() }));
      const mt = get(m.transports, transport, () => ({ attrs: { model, transport }, codes: new Map() }));
      return {
        trace: undefined,
        served() {},
        stage(stage, s, e) {
          stageDuration.record((e - s) / 1000, get(m.stages, stage, () => ({ model, stage })));
        },
        end(code, endMs) {
          requests.add(1, get(mt.codes, code, () => ({ model, transport, code })));
          duration.record((endMs - startMs) / 1000, mt.attrs);
        },
      };
    },
    startShadow: () => undefined,
    featureStoreFailure() {},
    featuresDefaulted() {},
    runtimeCall() {},
    metricsText: async () => ({ contentType: 'text/plain', body: '' }),
    flush: () => Promise.resolve(),
    shutdown: () => provider.shutdown(),
  };
}

/** One simulated request with fixed, varied stage times (no clock reads: the pipeline takes those anyway). */
function oneRequest(t: Telemetry, i: number, t0: number): number {
  const model = MODELS[i % MODELS.length]!;
  const arrival: ArrivalInfo = { transport: TRANSPORTS[i & 1]!, startMs: t0, endpoint: ENDPOINT, path: '/v1/models/m:predict' };
  const span = t.startRequest(model, arrival, 'req', model);
  const traced = span.trace === undefined ? 0 : 1;
  span.served('1', '');
  let at = t0;
  for (let s = 0; s < STAGES.length; s++) {
    const d = 0.002 + ((i * 7 + s * 13) % 50) * 0.01;
    span.stage(STAGES[s]!, at, at + d);
    at += d;
  }
  span.end(i % 100 === 0 ? 'UNAVAILABLE' : 'OK', at);
  return traced;
}

interface Variant {
  readonly name: string;
  readonly telemetry: Telemetry;
  readonly yields: boolean;
}

async function runRound(v: Variant): Promise<{ syncNs: number; cpuNs: number }> {
  const cpu0 = process.cpuUsage();
  let syncNs = 0;
  for (let done = 0; done < N; ) {
    const n = v.yields ? Math.min(CHUNK, N - done) : N;
    const t0 = performance.now();
    const h0 = process.hrtime.bigint();
    for (let i = done; i < done + n; i++) oneRequest(v.telemetry, i, t0);
    syncNs += Number(process.hrtime.bigint() - h0);
    done += n;
    if (v.yields) await yieldLoop();
  }
  if (v.yields) await yieldLoop();
  const cpu = process.cpuUsage(cpu0);
  return { syncNs: syncNs / N, cpuNs: ((cpu.user + cpu.system) * 1000) / N };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  let exported = 0;
  const receiver = createServer((req, res) => {
    req.on('data', (c: Buffer) => (exported += c.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const otlpEndpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const base = { serviceName: 'bench', cell: 'local' };

  const variants: Variant[] = [
    { name: 'noop', telemetry: noopTelemetry, yields: false },
    { name: 'otel', telemetry: createOtelTelemetry(base), yields: false },
    { name: 'sdk-instruments', telemetry: sdkInstrumentsTelemetry(), yields: false },
    { name: 'otel+traces', telemetry: createOtelTelemetry({ ...base, otlpEndpoint }), yields: true },
    { name: 'otel+traces 1%', telemetry: createOtelTelemetry({ ...base, otlpEndpoint, sampler: { name: 'parentbased_traceidratio', ratio: 0.01 } }), yields: true },
  ];
  const sync = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));

  for (const v of variants) await runRound(v); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of variants) {
      const res = await runRound(v);
      sync.get(v.name)!.push(res.syncNs);
      cpu.get(v.name)!.push(res.cpuNs);
    }
  }
  await Promise.all(variants.map((v) => v.telemetry.shutdown()));
  receiver.close();

  const noop = median(sync.get('noop')!);
  console.log(`telemetry per request (startRequest, trace, served, 5 stages, end), ${N} requests x ${ROUNDS} rounds, median round`);
  console.log('variant           sync ns   minus noop   cpu ns (incl. export)');
  for (const v of variants) {
    const s = median(sync.get(v.name)!);
    const c = median(cpu.get(v.name)!);
    console.log(`${v.name.padEnd(16)} ${s.toFixed(0).padStart(8)} ${(s - noop).toFixed(0).padStart(12)} ${c.toFixed(0).padStart(12)}`);
  }
  console.log(`OTLP bytes received: ${exported}`);
}

await main();
