import { describe, expect, it } from 'vitest';
import { envOfPairs } from '../../loadtest/lib/bench-gateway.ts';
import type { StepResult } from '../../loadtest/lib/loops.ts';
import { bucketQuantileMs, valueOf, valuesBy } from '../../loadtest/lib/metrics.ts';
import { overloadCost, overloadTargets, searchCapacity, searchesCapacity, searchExtension, type OverloadResult } from '../../loadtest/lib/overload.ts';
import { stepFromResults, type VegetaResult } from '../../loadtest/lib/vegeta-run.ts';

describe('load-test harness', () => {
  it('reads the tools\' --env pairs: the value keeps any "=", a pair without a name is an error', () => {
    expect(envOfPairs(['SIBYL_MAX_INFLIGHT=96', 'X=a=b', 'EMPTY='])).toEqual({ SIBYL_MAX_INFLIGHT: '96', X: 'a=b', EMPTY: '' });
    expect(() => envOfPairs(['=1'])).toThrow(/expected K=V/);
    expect(() => envOfPairs(['NOVALUE'])).toThrow(/expected K=V/);
  });

  it('counts an open-loop hit that started late from its due time (no coordinated omission)', () => {
    // 1,000/s: hit n is due 1 ms after hit n-1. Hit 2 started 3 ms late (the generator stalled); every answer took 0.5 ms.
    const at = (ms: number) => `2026-11-29T04:00:00.${String(ms * 1000).padStart(6, '0')}+00:00`;
    const results: VegetaResult[] = [
      { seq: 0, code: 200, timestamp: at(0), latency: 500_000, error: '' },
      { seq: 1, code: 200, timestamp: at(1), latency: 500_000, error: '' },
      { seq: 2, code: 200, timestamp: at(5), latency: 500_000, error: '' },
      { seq: 3, code: 429, timestamp: at(5), latency: 500_000, error: '' },
      { seq: 4, code: 0, timestamp: at(6), latency: 1_000_000_000, error: 'Post "http://127.0.0.1/": context deadline exceeded (Client.Timeout exceeded)' },
      { seq: 5, code: 0, timestamp: at(7), latency: 100_000, error: 'connection refused' },
    ];
    const step = stepFromResults(results, 1000, 1, 100, 0.2);
    expect(step.codes).toEqual({ '200': 3, '429': 1, CLIENT_TIMEOUT: 1, CLIENT_ERROR: 1 });
    expect(step.ok).toBe(3);
    expect(step.latency.max).toBeCloseTo(3.5, 2);
    expect(step.latency.p50).toBeCloseTo(0.5, 2);
    // Hit 3 was due at 3 ms and started at 5 ms.
    expect(step.rejectedLatency.max).toBeCloseTo(2.5, 2);
    expect(step.goodput).toBe(3);
    // The lag itself is reported: the generator's own share of the latencies.
    expect(step.startLagMaxMs).toBeCloseTo(3, 2);
  });

  it('reads quantiles from Prometheus bucket deltas the way histogram_quantile does', () => {
    const before = new Map([[0.001, 10], [0.0025, 10], [0.005, 10], [Infinity, 10]]);
    // Since `before`: 50 requests ≤ 1 ms, 40 in (1, 2.5] ms, 10 in (2.5, 5] ms.
    const after = new Map([[0.001, 60], [0.0025, 100], [0.005, 110], [Infinity, 110]]);
    expect(bucketQuantileMs(0.5, before, after)).toBeCloseTo(1, 3);
    expect(bucketQuantileMs(0.9, before, after)).toBeCloseTo(2.5, 3);
    expect(bucketQuantileMs(0.99, before, after)).toBeCloseTo(4.75, 3);
    expect(bucketQuantileMs(0.99, after, after)).toBeUndefined();
  });

  it('reads a counter summed over its series, and not a family whose name it prefixes', () => {
    const text = ['# HELP process_cpu_seconds_total CPU', 'process_cpu_seconds_total 2.5', 'process_cpu_seconds_total_created 99', 'x{a="1"} 1', 'x{a="2"} 2.5', 'xy 7'].join('\n');
    expect(valueOf(text, 'process_cpu_seconds_total')).toBe(2.5);
    expect(valueOf(text, 'x')).toBe(3.5);
    expect(valueOf(text, 'absent')).toBeUndefined();
    expect(valuesBy(['r{reason="turn",a="1"} 3', 'r{a="2",reason="turn"} 4', 'r{reason="inflight"} 1', 'rr{reason="turn"} 9'].join('\n'), 'r', 'reason')).toEqual({ turn: 7, inflight: 1 });
  });

  it('fits the CPU of an answer and of a refusal over the overload steps that refused, and bounds goodput by them', () => {
    // A gateway whose answers cost 200 µs and refusals 40 µs of CPU, 4 s steps under half a core; the calm steps
    // cost more per answer (a vCPU waking for each request) and must not enter the fit.
    const step = (factor: number, rate: number, ok: number, late504: number, refusedN: number, cpuS: number) =>
      ({ factor, rate, durationS: 4, ok, codes: { '200': ok, ...(late504 ? { '504': late504 } : {}), ...(refusedN ? { '429': refusedN } : {}) }, gatewayCpuS: cpuS }) as unknown as StepResult & { factor: number };
    const steps = [
      step(0.5, 1000, 4000, 0, 0, 2.0),
      step(1.5, 3000, 9000, 0, 3000, 9000 * 200e-6 + 3000 * 40e-6),
      step(2, 4000, 9000, 200, 6800, 9200 * 200e-6 + 6800 * 40e-6),
      step(3, 6000, 8000, 0, 16000, 8000 * 200e-6 + 16000 * 40e-6),
    ];
    const r = { cores: 0.5, gatewayCpu: 0.5, steps } as unknown as OverloadResult;
    const c = overloadCost(r)!;
    expect(c.answerUs).toBeCloseTo(200, 3);
    expect(c.refusalUs).toBeCloseTo(40, 3);
    expect(c.ratio).toBeCloseTo(0.2, 3);
    expect(c.cpuCapacity).toBe(2500);
    // E.g. at 6,000/s: (0.5 - 6000 x 40e-6) / 160e-6 = 1,625/s; nothing for the step without refusals.
    expect(c.bound).toEqual([undefined, 2375, 2125, 1625]);
    // One refusing step cannot separate the two costs.
    expect(overloadCost({ ...r, steps: steps.slice(0, 2) } as OverloadResult)).toBeUndefined();
  });

  it('judges goodput at 2x and 3x only when the searched capacity is near what the CPU fit says the quota serves', () => {
    // Answers cost 100 µs and refusals 25 µs under half a core: the fit's capacity is 5,000/s. 4 s steps.
    const step = (factor: number, rate: number, goodput: number, refusedN: number) => {
      const ok = goodput * 4;
      const latency = { p50: 1, p99: 10 };
      return { factor, rate, durationS: 4, ok, goodput, codes: { '200': ok, ...(refusedN ? { '429': refusedN } : {}) }, gatewayCpuS: ok * 100e-6 + refusedN * 25e-6, latency, rejectedLatency: latency } as unknown as StepResult & { factor: number };
    };
    const ramp = (capacity: number) =>
      ({
        cores: 0.5,
        gatewayCpu: 0.5,
        capacity,
        steps: [step(0.5, capacity / 2, capacity / 2, 0), step(1.5, capacity * 1.5, capacity, capacity * 2), step(2, capacity * 2, capacity, capacity * 4), step(3, capacity * 3, capacity, capacity * 8), step(0.5, capacity / 2, capacity / 2, 0)],
      }) as unknown as OverloadResult;
    const goodput = (r: OverloadResult) => overloadTargets(r).find((t) => t.target.startsWith('Overload: goodput'))!;
    // A search that settled at 4,500/s (90% of the fit's 5,000/s): every heavy step held its capacity, met.
    expect(goodput(ramp(4500)).met).toBe(true);
    // One that settled at 3,000/s (60%): the same shape reads 100% "of capacity", but the steps were 1.2x and 1.8x.
    const low = goodput(ramp(3000));
    expect(low.met).toBe(false);
    expect(low.measured).toContain("not judged: the search settled at 60.0% of the CPU fit's capacity (5000/s)");
    expect(low.measured).toContain('offered 1.20x and 1.80x of it and held 60.0% and 60.0%');
  });

  it('takes as capacity the highest goodput among the search steps after the lead-in that kept up', () => {
    const at = (rate: number, goodput: number) => ({ rate, goodput }) as StepResult;
    // The lead-in (its goodput is not counted), then the knee at 3,600/s (92% of it in time).
    expect(searchCapacity([at(9000, 9000), at(2500, 2480), at(3000, 2950), at(3600, 3300), at(4300, 900)])).toBe(3300);
    // A step already falling behind (77% in time) does not count however high its goodput: a full run's search.
    expect(searchCapacity([at(1495, 1494.7), at(2990, 2933.3), at(3588, 3245), at(4305, 3328.7), at(5172, 653.3)])).toBe(3245);
    // Exactly 90% of the offered rate still counts.
    expect(searchCapacity([at(1000, 1000), at(2000, 1800)])).toBe(1800);
    // None kept up after the lead-in: the lead-in's goodput, not more.
    expect(searchCapacity([at(1855, 1854.7), at(2597, 2200), at(3153, 2100)])).toBe(1854.7);
  });

  it("searches higher only when the highest search step kept up, from that step's rate", () => {
    const at = (rate: number, goodput: number) => ({ rate, goodput }) as StepResult;
    // A gRPC search whose closed loop under-read: its 1.73x (3,806/s) still kept up.
    const low = [at(1100, 1100), at(1540, 1540), at(1870, 1869), at(2200, 2200), at(2640, 2640), at(3168, 3150), at(3806, 3790)];
    expect(searchExtension(low)).toEqual([3806, 4567, 5481, 6584, 7878]);
    // The extension is a search of its own, after its own lead-in: the highest step of either that kept up.
    const higher = [at(3806, 3700), at(4567, 4400), at(5481, 4300), at(6584, 900), at(7878, 300)];
    expect(searchesCapacity([low, higher])).toBe(4400);
    // Nothing above kept up: the capacity stays at the top step's rate, the better of its two measurements.
    expect(searchesCapacity([low, [at(3806, 3805), at(4567, 2000), at(5481, 1000)]])).toBe(3805);
    expect(searchesCapacity([low, [at(3806, 3500), at(4567, 2000), at(5481, 1000)]])).toBe(3790);
    // The highest step fell behind (77% in time): the knee is inside the search, no extension.
    expect(searchExtension([at(1495, 1494.7), at(2990, 2933.3), at(3588, 3245), at(4305, 3328.7)])).toBeUndefined();
    // Exactly 90% in time counts as kept up; a lead-in alone is no search.
    expect(searchExtension([at(1000, 1000), at(2000, 1800)])).toEqual([2000, 2400, 2880, 3460, 4140]);
    expect(searchExtension([at(1000, 1000)])).toBeUndefined();
  });
});
