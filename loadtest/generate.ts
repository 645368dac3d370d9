#!/usr/bin/env node
/**
 * Runs one load scenario in its own process and prints its result as JSON on stdout.
 *
 *   node loadtest/generate.ts --spec '<RunSpec JSON>'     (or --spec-file path)
 *   node loadtest/generate.ts --target http://127.0.0.1:8080 --protocol sibyl-rest --mix eta-store \
 *       --mode open --rate 500 --duration 10
 *
 * Modes: `open` (constant arrival rate, latency from the scheduled send time), `ramp` (a list of open-loop steps),
 * `closed` (N concurrent requests; HTTP through autocannon unless --tool own).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { autocannonRun } from './lib/autocannon-run.ts';
import { ghzAvailable, ghzRun } from './lib/ghz-run.ts';
import { createSender, waitReady } from './lib/clients.ts';
import { closedLoop, openLoop, type StepResult } from './lib/loops.ts';
import { buildPool, type Mix, type Protocol } from './lib/requests.ts';
import { grpcOpen, grpcOpenAvailable } from './lib/grpc-open-run.ts';
import { vegetaAvailable, vegetaOpen } from './lib/vegeta-run.ts';
import { bucketQuantileMs, bucketsOf, metricsText, valueOf, valuesBy, type Buckets } from './lib/metrics.ts';

export interface RunSpec {
  readonly name: string;
  /** `http://127.0.0.1:port` (REST) or `127.0.0.1:port` (gRPC). Only loopback targets are accepted. */
  readonly target: string;
  readonly protocol: Protocol;
  readonly mix: Mix;
  /** Model name in the path/message (default: delivery-eta, or tabular-mlp for mlp-tensor). */
  readonly model?: string;
  /** Seed of the request mix (default 42). */
  readonly seed?: number;
  readonly mode: 'open' | 'ramp' | 'closed';
  /** open/ramp: the arrival-rate steps. */
  readonly steps?: readonly { rate: number; durationS: number }[];
  /** closed: concurrent requests, and the measured duration. */
  readonly concurrency?: number;
  readonly durationS?: number;
  /** HTTP connections / gRPC channels (default: 16 HTTP, 4 gRPC). */
  readonly connections?: number;
  /** Unmeasured warm-up before the measured part, seconds (default 2). */
  readonly warmupS?: number;
  /** The request deadline (told to the server; goodput counts successes within it), ms (default 1000). */
  readonly deadlineMs?: number;
  /** Open loop with vegeta: when the client gives up on a request, ms (default 10x the deadline, at least 1 s). */
  readonly clientTimeoutMs?: number;
  /**
   * closed loop: autocannon for HTTP by default; this generator (`own`) for gRPC by default, or ghz when installed.
   * open/ramp: `go`, a Go generator when installed (HTTP: vegeta, `bash loadtest/tools/install.sh vegeta`; gRPC:
   * grpc-open on grpc-go's client, `bash loadtest/tools/install.sh grpc-open`), else this generator.
   */
  readonly tool?: 'own' | 'autocannon' | 'ghz' | 'go';
  /**
   * gRPC runs of this generator: `h2` (default), the gRPC wire protocol on node:http2 (lib/h2-grpc-sender.ts), or
   * `grpc-js`, whose client spends about three times the CPU per call (loadtest/README.md, "The gRPC generator").
   */
  readonly grpcClient?: 'h2' | 'grpc-js';
  /**
   * open/ramp with the Go generators: the gateway's base URL whose /metrics is scraped at each step's boundaries, so
   * that each step reports the gateway's own p99 (`gatewayP99Ms`).
   */
  readonly metricsUrl?: string;
}

export interface RunResult {
  readonly spec: RunSpec;
  readonly tool: string;
  readonly steps: readonly StepResult[];
}

export async function runSpec(spec: RunSpec): Promise<RunResult> {
  const grpc = spec.protocol.endsWith('grpc');
  assertLoopback(spec.target, grpc);
  const pool = buildPool({ protocol: spec.protocol, mix: spec.mix, seed: spec.seed ?? 42, ...(spec.model ? { model: spec.model } : {}) });
  const deadlineMs = spec.deadlineMs ?? 1000;
  const warmupS = spec.warmupS ?? 2;
  const connections = spec.connections ?? (grpc ? 4 : 16);
  if (spec.mode === 'closed' && !grpc && (spec.tool ?? 'autocannon') === 'autocannon') {
    const step = await autocannonRun(pool.requests, { url: spec.target, connections: spec.concurrency ?? connections, durationS: spec.durationS ?? 10, deadlineMs, warmupS });
    return { spec, tool: 'autocannon', steps: [step] };
  }
  if (spec.mode === 'closed' && grpc && spec.tool === 'ghz' && ghzAvailable()) {
    const step = await ghzRun(spec.target, pool, { concurrency: spec.concurrency ?? 32, connections, durationS: spec.durationS ?? 10, warmupS, deadlineMs });
    return { spec, tool: 'ghz', steps: [step] };
  }
  if (spec.mode !== 'closed' && spec.tool === 'go' && (grpc ? grpcOpenAvailable() : vegetaAvailable())) {
    // At each step's boundary: the gateway's request histogram and its process CPU (one scrape).
    const boundaries: { buckets: Buckets; cpuS: number | undefined; refused: Record<string, number> }[] = [];
    const onStepBoundary = spec.metricsUrl
      ? async () => {
          const text = await metricsText(spec.metricsUrl!);
          boundaries.push({
            buckets: bucketsOf(text, 'sibyl_request_duration_seconds', 'model=""'),
            cpuS: valueOf(text, 'process_cpu_seconds_total'),
            refused: valuesBy(text, 'sibyl_admission_rejected_total', 'reason'),
          });
        }
      : undefined;
    const common = { steps: spec.steps ?? [], deadlineMs, warmupS, ...(onStepBoundary ? { onStepBoundary } : {}) };
    const steps: StepResult[] = grpc
      ? await grpcOpen(pool.requests, { ...common, target: spec.target, connections })
      : await vegetaOpen(pool.requests, { ...common, url: spec.target, connections: spec.connections ?? 64, ...(spec.clientTimeoutMs ? { clientTimeoutMs: spec.clientTimeoutMs } : {}) });
    const tool = grpc ? 'grpc-open (open loop)' : 'vegeta (open loop)';
    if (!onStepBoundary) return { spec, tool, steps };
    return {
      spec,
      tool,
      steps: steps.map((s, i) => {
        const [a, b] = [boundaries[i]!, boundaries[i + 1]!];
        const gatewayCpuS = a.cpuS !== undefined && b.cpuS !== undefined ? Math.round((b.cpuS - a.cpuS) * 1000) / 1000 : undefined;
        const gatewayRefusals = Object.fromEntries(Object.entries(b.refused).map(([k, v]) => [k, v - (a.refused[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
        return { ...s, gatewayP99Ms: bucketQuantileMs(0.99, a.buckets, b.buckets), ...(gatewayCpuS !== undefined ? { gatewayCpuS } : {}), gatewayRefusals };
      }),
    };
  }
  if (grpc) await waitReady(spec.target);
  const grpcClient = spec.grpcClient ?? 'h2';
  const sender = createSender({ target: spec.target, grpc, connections, deadlineMs, grpcClient });
  const own = grpc ? `own, ${grpcClient}` : 'own';
  try {
    if (spec.mode === 'closed') {
      const concurrency = spec.concurrency ?? 32;
      if (warmupS > 0) await closedLoop(sender, pool.requests, { concurrency, durationS: warmupS, deadlineMs });
      const step = await closedLoop(sender, pool.requests, { concurrency, durationS: spec.durationS ?? 10, deadlineMs });
      return { spec, tool: `${own} (closed loop)`, steps: [step] };
    }
    const steps = spec.steps ?? [];
    if (steps.length === 0) throw new Error(`${spec.name}: open/ramp mode needs steps`);
    if (warmupS > 0) await openLoop(sender, pool.requests, { steps: [{ rate: steps[0]!.rate, durationS: warmupS }], deadlineMs, drainMs: 2000 });
    return { spec, tool: `${own} (open loop)`, steps: await openLoop(sender, pool.requests, { steps, deadlineMs }) };
  } finally {
    await sender.close();
  }
}

function assertLoopback(target: string, grpc: boolean): void {
  const host = grpc ? target.replace(/:\d+$/, '') : new URL(target).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`load is kept on 127.0.0.1; refusing target ${target}`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string' },
      'spec-file': { type: 'string' },
      target: { type: 'string' },
      protocol: { type: 'string', default: 'sibyl-rest' },
      mix: { type: 'string', default: 'eta-store' },
      model: { type: 'string' },
      mode: { type: 'string', default: 'open' },
      rate: { type: 'string', default: '500' },
      duration: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '32' },
      connections: { type: 'string' },
      warmup: { type: 'string', default: '2' },
      deadline: { type: 'string', default: '1000' },
      tool: { type: 'string' },
      'grpc-client': { type: 'string' },
    },
  });
  let spec: RunSpec;
  if (values.spec) spec = JSON.parse(values.spec) as RunSpec;
  else if (values['spec-file']) spec = JSON.parse(readFileSync(values['spec-file'], 'utf8')) as RunSpec;
  else {
    if (!values.target) throw new Error('--target is required (or --spec)');
    spec = {
      name: 'cli',
      target: values.target,
      protocol: values.protocol as Protocol,
      mix: values.mix as Mix,
      ...(values.model ? { model: values.model } : {}),
      mode: values.mode as RunSpec['mode'],
      steps: [{ rate: Number(values.rate), durationS: Number(values.duration) }],
      concurrency: Number(values.concurrency),
      durationS: Number(values.duration),
      ...(values.connections ? { connections: Number(values.connections) } : {}),
      warmupS: Number(values.warmup),
      deadlineMs: Number(values.deadline),
      tool: values.tool as RunSpec['tool'],
      ...(values['grpc-client'] ? { grpcClient: values['grpc-client'] as RunSpec['grpcClient'] } : {}),
    };
  }
  const result = await runSpec(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
