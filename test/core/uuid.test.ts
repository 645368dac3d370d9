import { describe, expect, it } from 'vitest';
import { randomUuid } from '../../core/uuid.ts';
import { isRequestId } from '../../core/names.ts';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('returns version-4 UUIDs in the form crypto.randomUUID returns, valid as request ids', () => {
    for (let i = 0; i < 1000; i++) {
      const id = randomUuid();
      expect(id).toMatch(V4);
      expect(isRequestId(id)).toBe(true);
    }
  });

  it('never repeats across many refills of its random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomUuid());
    expect(seen.size).toBe(20_000);
  });

  it('spreads every random hex digit over all sixteen values (nothing stuck, nothing copied between ids)', () => {
    const positions = [...'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'].map((c, i) => (c === 'x' ? i : -1)).filter((i) => i >= 0);
    const counts = positions.map(() => new Map<string, number>());
    const n = 16_000;
    for (let i = 0; i < n; i++) {
      const id = randomUuid();
      positions.forEach((p, j) => counts[j]!.set(id[p]!, (counts[j]!.get(id[p]!) ?? 0) + 1));
    }
    for (const c of counts) {
      expect(c.size).toBe(16);
      // 1,000 expected per digit; 6 standard deviations (~31 each) either side.
      for (const k of c.values()) expect(Math.abs(k - n / 16)).toBeLessThan(190);
    }
  });
});
