/**
 * Open-loop gRPC load with grpc-open (Go, grpc-go's client; loadtest/tools/grpc-open): a constant arrival rate per
 * step, each call's status and latency read back into the suite's own histograms. Needs .tools/bin/grpc-open
 * (`bash loadtest/tools/install.sh grpc-open`).
 *
 * The gRPC counterpart of vegeta-run.ts: latency counts from each call's SCHEDULED time (a call the pacer started
 * late carries the lag), and the generator runs outside Node, so that its own garbage collection and timers stay
 * out of the tail it reports. Unlike the suite's own h2 sender, the client enforces the deadline itself (as grpc-go
 * does): a call unanswered at its deadline fails there with DEADLINE_EXCEEDED instead of being timed to its end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRPC_STATUS_NAMES, RESOURCE_EXHAUSTED } from './h2-grpc-sender.ts';
import { startLagOf, StepStats, type StepResult } from './loops.ts';
import { childCpuMs, run } from './processes.ts';
import type { EncodedRequest } from './requests.ts';

export const GRPC_OPEN = '.tools/bin/grpc-open';
export const grpcOpenAvailable = (): boolean => existsSync(GRPC_OPEN);

/** The status grpc-open gives a call it did not send because too many were outstanding. */
const CLIENT_BACKLOG = 17;

export interface GrpcOpenOptions {
  /** host:port */
  readonly target: string;
  readonly steps: readonly { rate: number; durationS: number }[];
  readonly deadlineMs: number;
  readonly warmupS: number;
  /** HTTP/2 connections, calls round-robin over them. */
  readonly connections: number;
  /** As in vegeta-run.ts: called before each step and once after the last (with `steps.length`). */
  readonly onStepBoundary?: (step: number) => Promise<void>;
}

/** The request file grpc-open reads: (uint16 path length, path, uint32 body length, body) per request. */
export function requestFile(requests: readonly EncodedRequest[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of requests) {
    const path = Buffer.from(r.path);
    const head = Buffer.allocUnsafe(2 + path.length + 4);
    head.writeUInt16BE(path.length, 0);
    path.copy(head, 2);
    head.writeUInt32BE(r.body.length, 2 + path.length);
    parts.push(head, r.body);
  }
  return Buffer.concat(parts);
}

export async function grpcOpen(requests: readonly EncodedRequest[], opts: GrpcOpenOptions): Promise<StepResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-grpc-open-'));
  try {
    const file = join(dir, 'requests.bin');
    writeFileSync(file, requestFile(requests));
    if (opts.warmupS > 0) await attack(file, join(dir, 'warmup.txt'), opts.steps[0]!.rate, opts.warmupS, opts);
    const attacked: { out: string; cpu: number }[] = [];
    for (const [i, step] of opts.steps.entries()) {
      await opts.onStepBoundary?.(i);
      const cpu0 = childCpuMs();
      const t0 = performance.now();
      const out = join(dir, `step${i}.txt`);
      await attack(file, out, step.rate, step.durationS, opts);
      attacked.push({ out, cpu: (childCpuMs() - cpu0) / (performance.now() - t0) });
    }
    await opts.onStepBoundary?.(opts.steps.length);
    return opts.steps.map((step, i) => stepFromLines(readFileSync(attacked[i]!.out, 'utf8'), step.rate, step.durationS, opts.deadlineMs, attacked[i]!.cpu));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function attack(requests: string, out: string, rate: number, durationS: number, opts: GrpcOpenOptions): Promise<void> {
  await run(GRPC_OPEN, [
    `-target=${opts.target}`,
    `-requests=${requests}`,
    `-rate=${rate}`,
    `-duration=${durationS}`,
    `-connections=${opts.connections}`,
    `-deadline-ms=${opts.deadlineMs}`,
    `-out=${out}`,
  ]);
}

/**
 * One step's result lines ("<status> <latency ns> <start lag ns>", latency from the scheduled time) as a StepResult
 * with the pacer's start lag.
 */
export function stepFromLines(text: string, rate: number, durationS: number, deadlineMs: number, cpu: number): StepResult {
  const stats = new StepStats(deadlineMs);
  const lags: number[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [status, latencyNs, lagNs] = line.split(' ').map(Number) as [number, number, number];
    stats.sent++;
    const code = status === CLIENT_BACKLOG ? 'CLIENT_BACKLOG' : (GRPC_STATUS_NAMES[status] ?? String(status));
    stats.record({ code, ok: status === 0, rejected: status === RESOURCE_EXHAUSTED }, latencyNs / 1e6);
    lags.push(lagNs / 1e6);
  }
  return { ...stats.result(rate, durationS, cpu), ...startLagOf(lags) };
}
