/**
 * A gateway's serving statistics without a network (gateway/stats/serving-statistics.ts): defaulted values by
 * reason, a class label's categories and a vector's elements, the training bins, and the sliding window (rotation,
 * the windows kept, a version forgotten once idle).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Execution } from '../../execution/execute.ts';
import { ModelVersion } from '../../execution/model-version.ts';
import type { LoadedModel } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { ServingStatistics } from '../../gateway/stats/serving-statistics.ts';

const risk = new ModelVersion(
  parseManifest(readFileSync(new URL('../../models/eta-risk/1/sibyl.yaml', import.meta.url), 'utf8')),
  { predict: () => Promise.resolve([]), dispose: () => Promise.resolve() } as unknown as LoadedModel,
);
const features = Object.fromEntries(risk.manifest.features.map((f) => [f.name, f.default as number]));

function run(n: number, opts: { defaulted?: string[]; storeFailure?: 'timeout' | 'error'; late?: number } = {}): Execution {
  return {
    rows: Array.from({ length: n }, (_, i) => ({ ...features, distance_km: i + 1 })),
    outputs: Array.from({ length: n }, (_, i) => ({ is_late: i % 4 === 0 ? 1 : 0, probabilities: [0.75, 0.25] })),
    defaulted: Array.from({ length: n }, () => opts.defaulted ?? []),
    enrichedAt: 0,
    modelMs: 0,
    storeFailure: opts.storeFailure,
  };
}

describe('serving statistics of one gateway', () => {
  it('counts defaulted values by reason, outside the summary; labels by category; vectors per element', () => {
    const stats = new ServingStatistics();
    stats.record(risk, run(8), 2);
    // The store was late: its features defaulted as "late", a request feature the caller left out as "missing".
    stats.record(risk, run(2, { defaulted: ['distance_km', 'kitchen_load'], storeFailure: 'timeout' }), 2);
    stats.record(risk, run(1, { defaulted: ['kitchen_load'], storeFailure: 'error' }), 2);
    const [s] = stats.snapshot();
    expect(s).toMatchObject({ model: 'eta-risk', version: '1', rows: 11n });
    expect(s!.features.distance_km).toMatchObject({ count: 11n, values: 9n, defaulted: { missing: 2n }, min: 1, max: 8 });
    expect(s!.features.kitchen_load).toMatchObject({ count: 11n, values: 8n, defaulted: { late: 2n, down: 1n } });
    expect(s!.outputs.is_late).toMatchObject({ values: 11n, categories: { '0': 7n, '1': 4n } });
    // Two elements seen; the other 14 a vector may have are left out.
    expect(Object.keys(s!.outputs).sort()).toEqual(['is_late', 'probabilities[0]', 'probabilities[1]']);
    expect(s!.outputs['probabilities[1]']).toMatchObject({ values: 11n, mean: 0.25, variance: 0, min: 0.25, max: 0.25 });
    // Counted into the training histogram's bins: 9 distances 1..8 (two rows defaulted).
    const edges = risk.manifest.statistics!.features.distance_km!.histogram!.edges;
    const bins = s!.features.distance_km!.trainingBins;
    expect(bins).toHaveLength(edges.length + 1);
    expect(bins.reduce((a, b) => a + b, 0)).toBe(9);
  });

  it('counts requests, failures by code and their latency, which rollout guards read; a version with only failures is kept', () => {
    let now = 1_000_000;
    const stats = new ServingStatistics({ windows: 2, now: () => now });
    for (let i = 0; i < 98; i++) stats.record(risk, run(2), 1 + (i % 10));
    stats.recordFailure(risk, 'INTERNAL', 50);
    stats.recordFailure(risk, 'DEADLINE_EXCEEDED', 250);
    let [s] = stats.snapshot();
    expect(s).toMatchObject({ rows: 196n, requests: 98n, errors: { INTERNAL: 1n, DEADLINE_EXCEEDED: 1n } });
    expect(s!.latencyMs).toBeDefined();
    for (let i = 0; i < 3; i++) {
      now += 60_000;
      stats.rotate();
    }
    expect(stats.snapshot()).toEqual([]);
    // Failures alone keep a version in the report: an always-failing version must show up.
    stats.recordFailure(risk, 'INTERNAL', 5);
    [s] = stats.snapshot();
    expect(s).toMatchObject({ rows: 0n, requests: 0n, errors: { INTERNAL: 1n } });
    now += 60_000;
    stats.rotate();
    [s] = stats.snapshot();
    expect(s).toMatchObject({ errors: { INTERNAL: 1n } });
  });

  it('keeps the last windows, covers them and the current one, and forgets an idle version', () => {
    let now = 1_000_000;
    const stats = new ServingStatistics({ windows: 2, now: () => now });
    stats.record(risk, run(3), 2);
    now += 60_000;
    stats.rotate();
    stats.record(risk, run(4), 2);
    now += 60_000;
    stats.rotate();
    stats.record(risk, run(5), 2);
    now += 30_000;
    let [s] = stats.snapshot();
    expect(s!.rows).toBe(12n);
    expect(Number(s!.windowStart!.seconds)).toBe(1_000);
    expect(Number(s!.windowEnd!.seconds)).toBe(1_150);
    // A third rotation drops the first window (3 rows).
    stats.rotate();
    [s] = stats.snapshot();
    expect(s!.rows).toBe(9n);
    stats.rotate();
    stats.rotate();
    expect(stats.snapshot()).toEqual([]);
  });
});
