/** Traffic splits: weights hold over many keys, a key stays in its arm, moving weight moves only the keys between. */
import { describe, expect, it } from 'vitest';
import { stickyPoint, TrafficSplit } from '../../gateway/routing/traffic-split.ts';

const arms = [
  { arm: 'v1', version: '1', weight: 70 },
  { arm: 'v2', version: '2', weight: 20 },
  { arm: 'canary', version: '3', weight: 10 },
];

/** Counts per arm over n keys `customer-<i>`. */
function counts(split: TrafficSplit, n: number, model = 'delivery-eta'): Map<string, number> {
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = split.pick(model, `customer-${i}`).arm;
    c.set(a, (c.get(a) ?? 0) + 1);
  }
  return c;
}

describe('traffic split', () => {
  it('sends each arm its share of keys, within 5 standard deviations over 200 000 keys', () => {
    const n = 200_000;
    const c = counts(new TrafficSplit(arms), n);
    for (const a of arms) {
      const p = a.weight / 100;
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs((c.get(a.arm) ?? 0) - n * p), a.arm).toBeLessThan(5 * sd);
    }
  });

  it('sends requests without a key to random arms in the same proportions', () => {
    const split = new TrafficSplit(arms);
    const n = 100_000;
    let v1 = 0;
    for (let i = 0; i < n; i++) if (split.pick('delivery-eta', '').arm === 'v1') v1++;
    expect(Math.abs(v1 - 0.7 * n)).toBeLessThan(5 * Math.sqrt(n * 0.21));
  });

  it('keeps a key in one arm across calls and across independently built splits (replicas, cells)', () => {
    const a = new TrafficSplit(arms);
    const b = new TrafficSplit(arms.map((x) => ({ ...x })));
    for (let i = 0; i < 5000; i++) {
      const key = `c${i}`;
      const first = a.pick('m', key).arm;
      expect(a.pick('m', key).arm).toBe(first);
      expect(b.pick('m', key).arm).toBe(first);
    }
  });

  it('moves only the keys between the old and the new boundary when weight shifts from one arm to the next', () => {
    const before = new TrafficSplit([
      { arm: 'old', version: '1', weight: 90 },
      { arm: 'new', version: '2', weight: 10 },
    ]);
    const after = new TrafficSplit([
      { arm: 'old', version: '1', weight: 50 },
      { arm: 'new', version: '2', weight: 50 },
    ]);
    let moved = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = before.pick('m', `k${i}`).arm;
      const a = after.pick('m', `k${i}`).arm;
      if (b === 'new') expect(a).toBe('new'); // nobody leaves the growing arm
      if (b !== a) moved++;
    }
    expect(Math.abs(moved / 20_000 - 0.4)).toBeLessThan(0.02);
  });

  it('spreads keys that differ only in their last character, and differently per model', () => {
    const pts = Array.from({ length: 10 }, (_, i) => stickyPoint('m', `customer-100${i}`));
    expect(Math.max(...pts) - Math.min(...pts)).toBeGreaterThan(0.3);
    let same = 0;
    for (let i = 0; i < 1000; i++) if (Math.abs(stickyPoint('a', `k${i}`) - stickyPoint('b', `k${i}`)) < 1e-9) same++;
    expect(same).toBeLessThan(5);
  });

  it('rejects unusable arms', () => {
    expect(() => new TrafficSplit([])).toThrow(/at least one arm/);
    expect(() => new TrafficSplit([{ arm: 'a', version: '1', weight: 0 }])).toThrow(/sum to more than 0/);
    expect(() => new TrafficSplit([{ arm: 'a', version: '1', weight: -1 }])).toThrow(/>= 0/);
    expect(() => new TrafficSplit([{ arm: 'a', version: '1', weight: 1 }, { arm: 'a', version: '2', weight: 1 }])).toThrow(/twice/);
  });
});
