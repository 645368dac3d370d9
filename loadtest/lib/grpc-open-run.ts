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
import { GRPC_STATUS_NAMES } from './h2-grpc-sender.ts';
import { StepStats, type StepResult } from './loops.ts';
import { childCpuMs, run } from './processes.ts';
import type { EncodedRequest } from './requests.ts';

export const GRPC_OPEN = '.tools/bin/grpc-open';
export const grpcOpenAvailable = (): boolean => existsSync(GRPC_OPEN);

const RESOURCE_EXHAUSTED = 8;
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

/** How late grpc-open's pacer started the step's calls, ms: its own share of their latency (its summary line). */
interface StartLag {
  readonly startLagP50Ms: number;
  readonly startLagP99Ms: number;
  readonly startLagMaxMs: number;
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

export async function grpcOpen(requests: readonly EncodedRequest[], opts: GrpcOpenOptions): Promise<(StepResult & StartLag)[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-grpc-open-'));
  try {
    const file = join(dir, 'requests.bin');
    writeFileSync(file, requestFile(requests));
    if (opts.warmupS > 0) await attack(file, join(dir, 'warmup.txt'), opts.steps[0]!.rate, opts.warmupS, opts);
    const attacked: { out: string; cpu: number; lag: StartLag }[] = [];
    for (const [i, step] of opts.steps.entries()) {
      await opts.onStepBoundary?.(i);
      const cpu0 = childCpuMs();
      const t0 = performance.now();
      const out = join(dir, `step${i}.txt`);
      const lag = await attack(file, out, step.rate, step.durationS, opts);
      attacked.push({ out, cpu: (childCpuMs() - cpu0) / (performance.now() - t0), lag });
    }
    await opts.onStepBoundary?.(opts.steps.length);
    return opts.steps.map((step, i) => ({ ...stepFromLines(readFileSync(attacked[i]!.out, 'utf8'), step.rate, step.durationS, opts.deadlineMs, attacked[i]!.cpu), ...attacked[i]!.lag }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function attack(requests: string, out: string, rate: number, durationS: number, opts: GrpcOpenOptions): Promise<StartLag> {
  const summary = await run(GRPC_OPEN, [
    `-target=${opts.target}`,
    `-requests=${requests}`,
    `-rate=${rate}`,
    `-duration=${durationS}`,
    `-connections=${opts.connections}`,
    `-deadline-ms=${opts.deadlineMs}`,
    `-out=${out}`,
  ]);
  const s = JSON.parse(summary.trim().split('\n').pop()!) as StartLag;
  return { startLagP50Ms: s.startLagP50Ms, startLagP99Ms: s.startLagP99Ms, startLagMaxMs: s.startLagMaxMs };
}

/** One step's result lines ("<status> <latency ns>", latency from the scheduled time) as a StepResult. */
export function stepFromLines(text: string, rate: number, durationS: number, deadlineMs: number, cpu: number): StepResult {
  const stats = new StepStats(deadlineMs);
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sp = line.indexOf(' ');
    const status = Number(line.slice(0, sp));
    const ms = Number(line.slice(sp + 1)) / 1e6;
    stats.sent++;
    const code = status === CLIENT_BACKLOG ? 'CLIENT_BACKLOG' : (GRPC_STATUS_NAMES[status] ?? String(status));
    stats.record({ code, ok: status === 0, rejected: status === RESOURCE_EXHAUSTED }, ms);
  }
  return stats.result(rate, durationS, cpu);
}
