/**
 * Closed-loop gRPC load with ghz (Go): `concurrency` workers over `connections` HTTP/2 connections, the pool's
 * messages sent round-robin (given as a JSON array), mapped onto StepResult. Needs .tools/bin/ghz
 * (`bash loadtest/tools/install.sh ghz`).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary, toJson } from '@bufbuild/protobuf';
import { PredictRequestSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { ModelInferRequestSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import type { LatencySummary } from './histogram.ts';
import type { StepResult } from './loops.ts';
import { childCpuMs, run } from './processes.ts';
import type { RequestPool } from './requests.ts';

export const GHZ = '.tools/bin/ghz';
export const ghzAvailable = (): boolean => existsSync(GHZ);

interface GhzReport {
  count: number;
  total: number;
  rps: number;
  average: number;
  fastest: number;
  slowest: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number>;
}

export async function ghzRun(target: string, pool: RequestPool, opts: { concurrency: number; connections: number; durationS: number; warmupS: number; deadlineMs: number }): Promise<StepResult> {
  const sibyl = pool.protocol === 'sibyl-grpc';
  const data = pool.requests.map((r) => (sibyl ? toJson(PredictRequestSchema, fromBinary(PredictRequestSchema, r.body)) : toJson(ModelInferRequestSchema, fromBinary(ModelInferRequestSchema, r.body))));
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-ghz-'));
  const dataFile = join(dir, 'data.json');
  writeFileSync(dataFile, JSON.stringify(data));
  const args = (seconds: number) => [
    '--insecure',
    '--proto', sibyl ? 'proto/sibyl/v1/predict.proto' : 'proto/inference/open_inference_grpc.proto',
    '--import-paths', 'proto',
    '--call', sibyl ? 'sibyl.v1.PredictionService.Predict' : 'inference.GRPCInferenceService.ModelInfer',
    '--data-file', dataFile,
    '--concurrency', String(opts.concurrency),
    '--connections', String(opts.connections),
    '--timeout', `${opts.deadlineMs}ms`,
    '--duration', `${seconds}s`,
    '--duration-stop', 'ignore',
    '--format', 'json',
    target,
  ];
  if (opts.warmupS > 0) await run(GHZ, args(opts.warmupS));
  const cpu0 = childCpuMs();
  const r = JSON.parse(await run(GHZ, args(opts.durationS))) as GhzReport;
  const cpu = childCpuMs() - cpu0;
  const durationS = r.total / 1e9;
  const ms = (ns: number) => Math.round(ns / 1000) / 1000;
  const pct = (p: number) => ms(r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? 0);
  const codes = r.statusCodeDistribution ?? {};
  const ok = codes['OK'] ?? 0;
  const latency: LatencySummary = { count: ok, mean: ms(r.average), p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9), max: ms(r.slowest) };
  const empty: LatencySummary = { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    rate: 0,
    durationS: Math.round(durationS * 100) / 100,
    sent: r.count,
    completed: r.count,
    ok,
    throughput: Math.round((ok / durationS) * 10) / 10,
    goodput: latency.p99 <= opts.deadlineMs ? Math.round((ok / durationS) * 10) / 10 : NaN,
    codes,
    latency,
    rejectedLatency: empty,
    errorLatency: empty,
    // CPU ms of the ghz process over the run's wall-clock ms: the share of a core it used.
    generatorCpu: Math.round((cpu / (durationS * 1000)) * 1000) / 1000,
  };
}
