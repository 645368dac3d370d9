/**
 * The quantile sketch's additions to @datadog/sketches-js (stats/sketch.ts): merging keeps negative values (the
 * library's merge drops them: DataDog/sketches-js issue #22), the share at or below a point, the proto round trip;
 * and the PSI of drift.ts on known distributions.
 */
import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { ValueSummarySchema } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { cdfAt, mergeSketch, newSketch, quantileOf, RELATIVE_ACCURACY, sketchFromMessage, sketchMessage } from '../../stats/sketch.ts';
import { driftOf, psi } from '../../stats/drift.ts';

const filled = (values: readonly number[]) => {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return s;
};

describe('quantile sketch', () => {
  it('merges negative values too, into an empty sketch or a non-empty one', () => {
    const a = filled([-5, -4, -3, 1, 2]);
    const b = filled([-10, -9, 3, 4, 0]);
    const into = filled([7]);
    mergeSketch(into, a);
    mergeSketch(into, b);
    const all = [7, -5, -4, -3, 1, 2, -10, -9, 3, 4, 0].sort((x, y) => x - y);
    expect(into.count).toBe(all.length);
    for (const q of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) {
      const want = all[Math.floor(q * (all.length - 1))]!;
      expect(Math.abs(quantileOf(into, q) - want)).toBeLessThanOrEqual(RELATIVE_ACCURACY * Math.abs(want) + 1e-12);
    }
  });

  it('gives the share at or below a point, negatives and zeros included', () => {
    const s = filled([-3, -2, -1, 0, 0, 1, 2, 3, 4, 5]);
    expect(cdfAt(s, -2.5)).toBeCloseTo(0.1);
    expect(cdfAt(s, -1)).toBeCloseTo(0.3);
    expect(cdfAt(s, 0)).toBeCloseTo(0.5);
    expect(cdfAt(s, 2)).toBeCloseTo(0.7);
    expect(cdfAt(s, 100)).toBe(1);
    expect(cdfAt(s, -100)).toBe(0);
  });

  it('survives its proto message', () => {
    const s = filled([-2, 0, 0.5, 3, 3, 1000]);
    const back = sketchFromMessage(sketchMessage(s));
    expect(back.count).toBe(6);
    for (const q of [0, 0.3, 0.6, 1]) expect(quantileOf(back, q)).toBe(quantileOf(s, q));
    expect(() => sketchFromMessage({ ...sketchMessage(s), relativeAccuracy: 0.05 })).toThrow('relative accuracy');
  });
});

describe('PSI', () => {
  it('is 0 for the same shares and grows with the shift', () => {
    expect(psi([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(psi([0.5, 0.5], [0.4, 0.6])).toBeCloseTo(-0.1 * Math.log(0.8) + 0.1 * Math.log(1.2), 12);
    expect(psi([0.5, 0.5], [0.1, 0.9])).toBeGreaterThan(psi([0.5, 0.5], [0.3, 0.7]));
    // An empty serving bin counts as rare (the floor), not as impossible.
    expect(Number.isFinite(psi([0.5, 0.5], [0, 1]))).toBe(true);
  });

  it('scores categories, counting unseen ones together with the training "other"', () => {
    const training = { count: 100, missing: 0, categories: { a: 50, b: 50 }, other: 0 };
    const same = create(ValueSummarySchema, { count: 10n, values: 10n, categories: { a: 5n, b: 5n } });
    const moved = create(ValueSummarySchema, { count: 10n, values: 10n, categories: { a: 2n, c: 8n } });
    expect(driftOf(training, same)!.psi).toBeCloseTo(0);
    const d = driftOf(training, moved)!;
    expect(d.method).toBe('psi-categories');
    expect(d.bins.map((b) => b.bin)).toEqual(['a', 'b', '(other)']);
    expect(d.bins[2]!.serving).toBeCloseTo(0.8);
    expect(d.psi).toBeGreaterThan(1);
  });

  it('reads serving shares off the sketch when a summary has no training bins', () => {
    const training = { count: 4, missing: 0, other: 0, mean: 2.5, variance: 1.25, min: 1, max: 4, histogram: { edges: [2], counts: [2, 2] } };
    const summary = create(ValueSummarySchema, { count: 4n, values: 4n, sketch: sketchMessage(filled([1, 2, 3, 4])) });
    const d = driftOf(training, summary)!;
    expect(d.bins.map((b) => b.serving)).toEqual([0.5, 0.5]);
    expect(d.psi).toBeCloseTo(0);
  });
});
