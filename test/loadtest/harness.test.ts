import { describe, expect, it } from 'vitest';
import { bucketQuantileMs } from '../../loadtest/lib/metrics.ts';
import { stepFromResults, type VegetaResult } from '../../loadtest/lib/vegeta-run.ts';

describe('load-test harness', () => {
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
});
