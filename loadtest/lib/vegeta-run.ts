/**
 * Open-loop HTTP load with vegeta (Go): a constant arrival rate per step, each result read back and recorded in the
 * suite's own histograms. Needs .tools/bin/vegeta (`bash loadtest/tools/install.sh vegeta`).
 *
 * Latency is counted from the SCHEDULED send time, as in the suite's own open loop: vegeta paces hit n of a step
 * at `begin + n / rate` and stamps the moment it really started; when it fell behind (no idle worker, a starved
 * core), the lag is added to that request's latency instead of disappearing (no coordinated omission).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startLagOf, StepStats, type StepResult } from './loops.ts';
import { childCpuMs, run } from './processes.ts';
import type { EncodedRequest } from './requests.ts';

export const VEGETA = '.tools/bin/vegeta';
export const vegetaAvailable = (): boolean => existsSync(VEGETA);

export interface VegetaOptions {
  readonly url: string;
  readonly steps: readonly { rate: number; durationS: number }[];
  readonly deadlineMs: number;
  readonly warmupS: number;
  /** Workers and keep-alive connections (each worker has one request outstanding at a time). */
  readonly connections: number;
  /** When the client gives up on a request, ms (default 10x the deadline, at least 1 s). */
  readonly clientTimeoutMs?: number;
  /**
   * Called before each step's attack and once after the last (with `steps.length`), between the attacks: e.g. to
   * scrape the server's metrics at step boundaries. Steps run back to back; results are read after the last one,
   * so that no pause between steps lets the server recover.
   */
  readonly onStepBoundary?: (step: number) => Promise<void>;
}

/** One line of `vegeta encode -to json` (the fields used here). */
export interface VegetaResult {
  seq: number;
  code: number;
  timestamp: string;
  latency: number;
  error: string;
}

export async function vegetaOpen(requests: readonly EncodedRequest[], opts: VegetaOptions): Promise<StepResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-vegeta-'));
  try {
    const targets = join(dir, 'targets.jsonl');
    const header = { 'Content-Type': ['application/json'], 'X-Request-Timeout-Ms': [String(opts.deadlineMs)] };
    writeFileSync(targets, requests.map((r) => JSON.stringify({ method: 'POST', url: `${opts.url}${r.path}`, body: r.body.toString('base64'), header })).join('\n') + '\n');
    if (opts.warmupS > 0) await attack(dir, targets, opts.steps[0]!.rate, opts.warmupS, opts, 'warmup');
    const attacked: { file: string; cpu: number }[] = [];
    for (const [i, step] of opts.steps.entries()) {
      await opts.onStepBoundary?.(i);
      const cpu0 = childCpuMs();
      const t0 = performance.now();
      const file = await attack(dir, targets, step.rate, step.durationS, opts, `step${i}`);
      attacked.push({ file, cpu: (childCpuMs() - cpu0) / (performance.now() - t0) });
    }
    await opts.onStepBoundary?.(opts.steps.length);
    const out: StepResult[] = [];
    for (const [i, step] of opts.steps.entries()) out.push(await readStep(attacked[i]!.file, step.rate, step.durationS, opts.deadlineMs, attacked[i]!.cpu));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function attack(dir: string, targets: string, rate: number, durationS: number, opts: VegetaOptions, name: string): Promise<string> {
  const { deadlineMs, connections } = opts;
  const file = join(dir, `${name}.bin`);
  await run(VEGETA, [
    'attack',
    '-format=json',
    `-targets=${targets}`,
    `-rate=${Math.round(rate)}/1s`,
    `-duration=${durationS}s`,
    // The client gives up at 10x the deadline: late answers are measured (and fail the deadline), not dropped.
    `-timeout=${opts.clientTimeoutMs ?? Math.max(1000, deadlineMs * 10)}ms`,
    '-http2=false',
    '-keepalive=true',
    // A fixed pool: when every worker waits, hits start late and that lag is counted (stepFromResults), rather than
    // vegeta opening ever more connections (which made it collapse at ~5,000/s on one core here).
    `-workers=${connections}`,
    `-max-workers=${connections}`,
    `-connections=${connections}`,
    `-max-connections=${connections}`,
    '-max-body=0',
    `-output=${file}`,
  ]);
  return file;
}

async function readStep(file: string, rate: number, durationS: number, deadlineMs: number, cpu: number): Promise<StepResult> {
  const enc = spawn(VEGETA, ['encode', '-to=json', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const results: VegetaResult[] = [];
  for await (const line of createInterface({ input: enc.stdout })) if (line) results.push(JSON.parse(line) as VegetaResult);
  return stepFromResults(results, rate, durationS, deadlineMs, cpu);
}

/**
 * One step's results as a StepResult. Latency counts from each hit's due time: hit n is due `n / rate` after
 * hit 0 started, and a hit that started later carries the lag.
 */
export function stepFromResults(results: readonly VegetaResult[], rate: number, durationS: number, deadlineMs: number, cpu: number): StepResult {
  const stats = new StepStats(deadlineMs);
  const intervalNs = 1e9 / rate;
  let first: bigint | undefined;
  const lags: number[] = [];
  for (const r of results) {
    const started = unixNanos(r.timestamp);
    // The due time of hit 0, from the first result seen (results come in start order).
    first ??= started - BigInt(Math.round(r.seq * intervalNs));
    const lagMs = Math.max(0, Number(started - first) - r.seq * intervalNs) / 1e6;
    lags.push(lagMs);
    const code = r.code === 0 ? (/timeout|deadline/i.test(r.error) ? 'CLIENT_TIMEOUT' : 'CLIENT_ERROR') : String(r.code);
    stats.sent++;
    stats.record({ code, ok: r.code === 200, rejected: r.code === 429 }, lagMs + r.latency / 1e6);
  }
  return { ...stats.result(rate, durationS, cpu), ...startLagOf(lags) };
}

/** An RFC 3339 timestamp with up to nanoseconds, as Unix nanoseconds. */
function unixNanos(ts: string): bigint {
  const frac = /\.(\d+)/.exec(ts)?.[1] ?? '';
  return BigInt(Date.parse(ts.replace(/\.\d+/, ''))) * 1_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
}
