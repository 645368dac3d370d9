import { describe, expect, it } from 'vitest';
import { bucketQuantileMs, type Buckets } from '../../loadtest/lib/metrics.ts';
import { HistogramCell, LATENCY_BUCKETS_SECONDS } from '../../gateway/telemetry/metric-families.ts';
import { seeded } from '../helpers/seeded.ts';

/** The cumulative buckets a scrape of this cell would give (`le` → count), as loadtest/lib/metrics.ts reads them. */
function scraped(cell: HistogramCell): Buckets {
  const out: Buckets = new Map();
  let cum = 0;
  cell.bounds.forEach((b, i) => out.set(Number(String(b)), (cum += cell.counts[i]!)));
  out.set(Infinity, cum + cell.counts[cell.bounds.length]!);
  return out;
}

/** The exact q-quantile of a sorted sample (nearest rank), ms. */
const exact = (sorted: number[], q: number) => sorted[Math.ceil(q * sorted.length) - 1]! * 1000;

describe("the gateway's own latency view", () => {
  it('has buckets fine enough below 2 ms to tell a p99 of 0.8 ms from one of 0.6 or 1', () => {
    const below2ms = LATENCY_BUCKETS_SECONDS.filter((b) => b <= 0.002);
    expect(below2ms).toEqual(expect.arrayContaining([0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002]));
    // No step below 1 ms wider than 0.25 ms.
    const sub = LATENCY_BUCKETS_SECONDS.filter((b) => b <= 0.001);
    for (let i = 1; i < sub.length; i++) expect(sub[i]! - sub[i - 1]!).toBeLessThanOrEqual(0.00025 + 1e-12);
  });

  it('reads quantiles from a scrape delta within the bucket holding the true value', () => {
    // A gateway at half load: most requests 250-450 µs, a tail to 0.9 ms, a few stalls of 3-20 ms.
    const rnd = seeded(7).rand;
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const u = rnd();
      values.push(u < 0.97 ? 0.00025 + rnd() * 0.0002 : u < 0.995 ? 0.0005 + rnd() * 0.0004 : 0.003 + rnd() * 0.017);
    }
    const before = new HistogramCell({}, LATENCY_BUCKETS_SECONDS);
    for (const v of values.slice(0, 5_000)) before.record(v);
    const after = new HistogramCell({}, LATENCY_BUCKETS_SECONDS);
    for (const v of values) after.record(v);
    const run = values.slice(5_000).sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const truth = exact(run, q);
      const read = bucketQuantileMs(q, scraped(before), scraped(after))!;
      const i = LATENCY_BUCKETS_SECONDS.findIndex((b) => b * 1000 >= truth);
      const hi = LATENCY_BUCKETS_SECONDS[i]! * 1000;
      const lo = (LATENCY_BUCKETS_SECONDS[i - 1] ?? 0) * 1000;
      expect(read, `q=${q}: truth ${truth} ms in (${lo}, ${hi}]`).toBeGreaterThanOrEqual(lo);
      expect(read).toBeLessThanOrEqual(hi);
    }
    // The p99 of this sample is ~0.85 ms: read inside 0.75-1 ms, where 0.5-1 ms buckets could only say "under 1".
    expect(bucketQuantileMs(0.99, scraped(before), scraped(after))).toBeGreaterThan(0.75);
  });
});
