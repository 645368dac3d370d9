/**
 * The manifest's training statistics (`statistics:`, runtimes/manifest-fields.ts): the demo bundles carry them for
 * every feature and output, and the upload gate's schema refuses a malformed shape, naming the field.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest, validateManifest } from '../../runtimes/manifest.ts';

const ROOT = new URL('../../', import.meta.url);
const demo = (path: string) => parseManifest(readFileSync(new URL(`models/${path}/sibyl.yaml`, ROOT), 'utf8'));

/** A manifest with one numeric feature `x`, one string feature `s`, a float output `y` and a label `k`. */
function manifest(statistics: unknown): unknown {
  return {
    name: 'm',
    version: '1',
    runtime: 'rules',
    features: [
      { name: 'x', dtype: 'float32', source: 'request', default: 0 },
      { name: 's', dtype: 'string', source: 'request', default: '' },
    ],
    outputs: [
      { name: 'y', dtype: 'float32' },
      { name: 'k', dtype: 'int64' },
      { name: 'v', kind: 'vector', dtype: 'float32' },
    ],
    rules: { file: 'rule.js' },
    statistics,
  };
}
const numeric = { count: 10, mean: 1, variance: 0.5, min: 0, max: 2, histogram: { edges: [0.5, 1.5], counts: [3, 4, 3] } };
const categorical = { count: 10, categories: { a: 6, b: 3 }, other: 1 };

describe('training statistics in the manifest', () => {
  it('the demo bundles carry them for every feature and output', () => {
    const eta = demo('delivery-eta/2');
    expect(Object.keys(eta.statistics!.features).sort()).toEqual(eta.features.map((f) => f.name).sort());
    expect(eta.statistics!.outputs.eta_minutes!.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(20_000);
    const risk = demo('eta-risk/1');
    expect(risk.statistics!.outputs.is_late!.categories).toEqual({ '0': 14550, '1': 5450 });
    expect(Object.keys(risk.statistics!.outputs).sort()).toEqual(['is_late', 'probabilities[0]', 'probabilities[1]']);
  });

  it('accepts a well-formed section', () => {
    const m = validateManifest(manifest({ features: { x: numeric, s: categorical }, outputs: { y: numeric, k: categorical, 'v[1]': numeric }, driftThreshold: 0.1 }));
    expect(m.statistics!.driftThreshold).toBe(0.1);
    expect(m.statistics!.features.x!.missing).toBe(0);
  });

  it.each([
    ['counts one short', { features: { x: { ...numeric, histogram: { edges: [0.5, 1.5], counts: [3, 7] } } } }, 'statistics.features.x.histogram.counts: must have 3 entries'],
    ['edges not increasing', { features: { x: { ...numeric, histogram: { edges: [1.5, 0.5], counts: [3, 4, 3] } } } }, 'statistics.features.x.histogram.edges.1: edges must be strictly increasing'],
    ['more in the bins than rows', { features: { x: { ...numeric, count: 5 } } }, 'statistics.features.x.histogram: counts sum to 10, more than count 5'],
    ['a histogram without its summary', { features: { x: { count: 10, histogram: numeric.histogram } } }, 'statistics.features.x.mean: is required with a histogram'],
    ['a missing share above 1', { features: { x: { ...numeric, missing: 1.5 } } }, 'statistics.features.x.missing'],
    ['an undeclared feature', { features: { z: numeric } }, 'statistics.features.z: the manifest declares no feature "z"'],
    ['a numeric feature with categories', { features: { x: categorical } }, 'statistics.features.x: a numeric feature (float32) needs a histogram'],
    ['a string feature with a histogram', { features: { s: numeric } }, 'statistics.features.s: a categorical feature (string) needs categories'],
    ['a label with a histogram', { outputs: { k: numeric } }, 'statistics.outputs.k: a categorical output (int64) needs categories'],
    ['a vector as a whole', { outputs: { v: numeric } }, 'statistics.outputs.v: output "v" is a vector: give its elements as v[0], v[1], ...'],
    ['an element of a scalar', { outputs: { 'y[0]': numeric } }, 'statistics.outputs.y[0]: output "y" is not a vector'],
    ['an unknown field', { features: { x: { ...numeric, median: 1 } } }, 'statistics.features.x'],
  ])('refuses %s', (_, statistics, message) => {
    expect(() => validateManifest(manifest(statistics))).toThrow(message);
  });
});
