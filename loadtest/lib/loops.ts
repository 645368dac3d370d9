/**
 * The two load shapes.
 *
 * Open loop (constant arrival rate): request i of a step is due at `start + i / rate`, whether or not earlier
 * requests have answered; its latency is measured from that SCHEDULED time, so a stalled server shows up in the
 * percentiles instead of silently slowing the generator (no coordinated omission). A run is a list of steps (one
 * step = a fixed rate; several = a ramp). Requests beyond `maxInFlight` outstanding are not sent and are counted as
 * `CLIENT_BACKLOG` (the generator's own overload, reported, never hidden).
 *
 * Closed loop (maximum throughput): `concurrency` workers, each sends its next request when the previous one
 * answers; latency from the actual send.
 */
import { newHistogram, recordMs, summarize, type Histogram, type LatencySummary } from './histogram.ts';
import type { Outcome, Sender } from './clients.ts';
import type { EncodedRequest } from './requests.ts';

export interface StepResult {
  /** Target arrival rate, requests/s (closed loop: 0). */
  readonly rate: number;
  readonly durationS: number;
  readonly sent: number;
  readonly completed: number;
  readonly ok: number;
  /** Successful responses per second. */
  readonly throughput: number;
  /** Successful responses within the deadline per second. */
  readonly goodput: number;
  /** Outcome code → count (HTTP status, gRPC status name, client error). */
  readonly codes: Readonly<Record<string, number>>;
  /** Latency of successful responses, ms. */
  readonly latency: LatencySummary;
  /** Latency of 429 / RESOURCE_EXHAUSTED rejections, ms. */
  readonly rejectedLatency: LatencySummary;
  /** Latency of other failures, ms. */
  readonly errorLatency: LatencySummary;
  /** Generator CPU over the step, as a share of one core (near 1 means the generator may be the bottleneck). */
  readonly generatorCpu: number;
  /**
   * The gateway's own p99 over the step (its histogram, arrival in its handler to the answer, requests that named a
   * model), ms; set when the run spec names the gateway's metrics (`metricsUrl`).
   */
  readonly gatewayP99Ms?: number | undefined;
  /** The gateway's process CPU over the step, seconds (its process_cpu_seconds_total), set with `gatewayP99Ms`. */
  readonly gatewayCpuS?: number | undefined;
  /** The gateway's refusals over the step by admission's reason (its sibyl_admission_rejected_total), set with it. */
  readonly gatewayRefusals?: Readonly<Record<string, number>> | undefined;
  /**
   * The Go generators' open loops: how late the pacer started requests after their due time, ms (p50 / p99 / max).
   * Each latency above includes its request's lag: this is the generator's own share of it.
   */
  readonly startLagP50Ms?: number | undefined;
  readonly startLagP99Ms?: number | undefined;
  readonly startLagMaxMs?: number | undefined;
}

/** The start-lag fields of StepResult from every request's lag, ms. */
export function startLagOf(lagsMs: number[]): Pick<StepResult, 'startLagP50Ms' | 'startLagP99Ms' | 'startLagMaxMs'> {
  if (lagsMs.length === 0) return {};
  const sorted = Float64Array.from(lagsMs).sort();
  const at = (q: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!, 3);
  return { startLagP50Ms: at(0.5), startLagP99Ms: at(0.99), startLagMaxMs: round(sorted[sorted.length - 1]!, 3) };
}

/** Outcomes and latencies of one step (shared by the generators that record per request). */
export class StepStats {
  sent = 0;
  completed = 0;
  ok = 0;
  good = 0;
  codes: Record<string, number> = {};
  okHist: Histogram = newHistogram();
  rejHist: Histogram = newHistogram();
  errHist: Histogram = newHistogram();
  readonly deadlineMs: number;
  constructor(deadlineMs: number) {
    this.deadlineMs = deadlineMs;
  }
  record(o: Outcome, ms: number): void {
    this.completed++;
    this.codes[o.code] = (this.codes[o.code] ?? 0) + 1;
    if (o.ok) {
      this.ok++;
      if (ms <= this.deadlineMs) this.good++;
      recordMs(this.okHist, ms);
    } else if (o.rejected) recordMs(this.rejHist, ms);
    else recordMs(this.errHist, ms);
  }
  result(rate: number, durationS: number, cpu: number): StepResult {
    return {
      rate,
      durationS,
      sent: this.sent,
      completed: this.completed,
      ok: this.ok,
      throughput: round(this.ok / durationS),
      goodput: round(this.good / durationS),
      codes: this.codes,
      latency: summarize(this.okHist),
      rejectedLatency: summarize(this.rejHist),
      errorLatency: summarize(this.errHist),
      generatorCpu: round(cpu, 3),
    };
  }
}

const round = (v: number, d = 1): number => Math.round(v * 10 ** d) / 10 ** d;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface OpenLoopOptions {
  readonly steps: readonly { rate: number; durationS: number }[];
  readonly deadlineMs: number;
  /** Most requests outstanding at once (default 20,000). */
  readonly maxInFlight?: number;
  /** How long to wait for stragglers after the last step, ms (default 10 s). */
  readonly drainMs?: number;
}

export async function openLoop(sender: Sender, requests: readonly EncodedRequest[], opts: OpenLoopOptions): Promise<StepResult[]> {
  const maxInFlight = opts.maxInFlight ?? 20_000;
  let inFlight = 0;
  let cursor = 0;
  const all: { stats: StepStats; rate: number; durationS: number; cpu: number }[] = [];
  for (const step of opts.steps) {
    const stats = new StepStats(opts.deadlineMs);
    const total = Math.round(step.rate * step.durationS);
    const interval = 1000 / step.rate;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
        for (; i < due; i++) {
          const scheduled = t0 + i * interval;
          if (inFlight >= maxInFlight) {
            stats.sent++;
            stats.record({ code: 'CLIENT_BACKLOG', ok: false, rejected: false }, now - scheduled);
            continue;
          }
          inFlight++;
          stats.sent++;
          const req = requests[cursor]!;
          cursor = cursor + 1 === requests.length ? 0 : cursor + 1;
          sender.send(req, (o) => {
            inFlight--;
            stats.record(o, performance.now() - scheduled);
          });
        }
        if (i >= total) return resolve();
        setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
      };
      tick();
    });
    // Let the step's last interval elapse so that its duration is exact.
    const elapsed = performance.now() - t0;
    if (elapsed < step.durationS * 1000) await sleep(step.durationS * 1000 - elapsed);
    const c = process.cpuUsage(cpu0);
    all.push({ stats, rate: step.rate, durationS: step.durationS, cpu: (c.user + c.system) / 1000 / (performance.now() - t0) });
  }
  const drainUntil = performance.now() + (opts.drainMs ?? 10_000);
  while (inFlight > 0 && performance.now() < drainUntil) await sleep(5);
  return all.map((s) => s.stats.result(s.rate, s.durationS, s.cpu));
}

export interface ClosedLoopOptions {
  readonly concurrency: number;
  readonly durationS: number;
  readonly deadlineMs: number;
}

export async function closedLoop(sender: Sender, requests: readonly EncodedRequest[], opts: ClosedLoopOptions): Promise<StepResult> {
  const stats = new StepStats(opts.deadlineMs);
  let cursor = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + opts.durationS * 1000;
  const worker = (): Promise<void> =>
    new Promise((resolve) => {
      const loop = (): void => {
        if (performance.now() >= end) return resolve();
        const req = requests[cursor]!;
        cursor = cursor + 1 === requests.length ? 0 : cursor + 1;
        const start = performance.now();
        stats.sent++;
        sender.send(req, (o) => {
          const t = performance.now();
          // Only answers that arrive within the window count towards throughput.
          if (t <= end) stats.record(o, t - start);
          loop();
        });
      };
      loop();
    });
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const wall = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  return stats.result(0, opts.durationS, (c.user + c.system) / 1000 / wall);
}
