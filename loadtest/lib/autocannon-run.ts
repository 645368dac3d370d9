/**
 * Closed-loop HTTP load with autocannon (its own connection handling and HdrHistogram), mapped onto StepResult.
 * Bodies cycle through the pre-encoded pool. Latency is autocannon's (millisecond resolution).
 */
import autocannon from 'autocannon';
import type { StepResult } from './loops.ts';
import type { LatencySummary } from './histogram.ts';
import type { EncodedRequest } from './requests.ts';

export interface AutocannonOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly deadlineMs: number;
  readonly warmupS: number;
}

export async function autocannonRun(requests: readonly EncodedRequest[], opts: AutocannonOptions): Promise<StepResult> {
  let cursor = 0;
  const headers = { 'content-type': 'application/json', 'x-request-timeout-ms': String(opts.deadlineMs) };
  const base = {
    url: opts.url,
    connections: opts.connections,
    pipelining: 1,
    timeout: 10,
    requests: [
      {
        method: 'POST' as const,
        headers,
        setupRequest: (req: autocannon.Request) => {
          const r = requests[cursor]!;
          cursor = cursor + 1 === requests.length ? 0 : cursor + 1;
          return { ...req, path: r.path, body: r.body };
        },
      },
    ],
  };
  if (opts.warmupS > 0) await autocannon({ ...base, duration: opts.warmupS });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({ ...base, duration: opts.durationS });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  const codes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) codes[code] = (s as { count?: number }).count ?? 0;
  if (r.errors) codes['CLIENT_ERROR'] = r.errors - (r.timeouts ?? 0);
  if (r.timeouts) codes['CLIENT_TIMEOUT'] = r.timeouts;
  const ok = codes['200'] ?? 0;
  const l = r.latency;
  const latency: LatencySummary = { count: ok, mean: l.mean, p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p99_9, max: l.max };
  const empty: LatencySummary = { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  const duration = r.duration || opts.durationS;
  return {
    rate: 0,
    durationS: duration,
    sent: r.requests.sent,
    completed: r.requests.total,
    ok,
    throughput: Math.round((ok / duration) * 10) / 10,
    // autocannon keeps one histogram for all answers; goodput here is successes when p99 is within the deadline.
    goodput: l.p99 <= opts.deadlineMs ? Math.round((ok / duration) * 10) / 10 : NaN,
    codes,
    latency,
    rejectedLatency: empty,
    errorLatency: empty,
    generatorCpu: Math.round(((c.user + c.system) / 1000 / wall) * 1000) / 1000,
  };
}
