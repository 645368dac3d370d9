/**
 * Rollout guards and a wave's figures, as pure functions: which figures pass and which breach, the thresholds
 * compared, a guard left out when there is nothing to compare with; figures merged over replicas and cells from
 * gateway reports, stale replicas left out, the previous version's figures and the shadow comparison found.
 */
import { create, toJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ShadowComparisonSchema } from '../../../proto/gen/sibyl/v1/deployment_pb.js';
import { VersionStatisticsSchema } from '../../../proto/gen/sibyl/v1/statistics_pb.js';
import { waveFigures } from '../../../control-tower/rollout/figures.ts';
import { allPassed, DEFAULT_GUARDS, evaluateGuards, failureReason } from '../../../control-tower/rollout/guards.ts';
import type { StoredReport, WaveFigures } from '../../../control-tower/store/index.ts';
import { newSketch, sketchMessage } from '../../../stats/sketch.ts';

const figures = (over: Partial<WaveFigures> = {}): WaveFigures => ({
  replicas: ['cell-a/r1'],
  version: { requests: 1000, errors: {}, errorRate: 0, p99Ms: 10 },
  previous: { requests: 1000, errors: {}, errorRate: 0, p99Ms: 9, versions: ['1'] },
  perCell: [],
  ...over,
});
const byGuard = (f: WaveFigures, g = DEFAULT_GUARDS) => Object.fromEntries(evaluateGuards(f, g).map((r) => [r.guard, r]));

describe('evaluateGuards', () => {
  it('passes a version within every threshold, and says why the shadow guard was not applied', () => {
    const results = evaluateGuards(figures(), DEFAULT_GUARDS);
    expect(allPassed(results)).toBe(true);
    expect(results.map((r) => r.guard)).toEqual(['traffic', 'errorRate', 'p99', 'shadowDisagreement']);
    const p99 = results.find((r) => r.guard === 'p99')!;
    expect(p99).toMatchObject({ passed: true, value: 10, threshold: 14 }); // max(9 x 1.5, 9 + 5) = 14 ms
    expect(results.find((r) => r.guard === 'shadowDisagreement')!.detail).toMatch(/no shadow comparison/);
  });

  it('fails on an error rate above the threshold, naming the codes', () => {
    const g = byGuard(figures({ version: { requests: 200, errors: { INTERNAL: 90, DEADLINE_EXCEEDED: 10 }, errorRate: 0.5, p99Ms: 10 } }));
    expect(g.errorRate).toMatchObject({ passed: false, value: 0.5, threshold: 0.01 });
    expect(g.errorRate!.detail).toBe('error rate 50% (100 of 200 requests: 90 INTERNAL, 10 DEADLINE_EXCEEDED), at most 1% allowed');
    expect(failureReason('canary', evaluateGuards(figures({ version: { requests: 200, errors: { INTERNAL: 100 }, errorRate: 0.5 } }), DEFAULT_GUARDS))).toMatch(/^wave canary failed its check: errorRate: error rate 50%/);
  });

  it('compares p99 with the previous version by ratio, with an absolute slack for small latencies', () => {
    // 2 ms before: the slack (+5 ms) is the larger bound, so 6.9 ms passes although it is 3.45x.
    expect(byGuard(figures({ version: { requests: 100, errors: {}, errorRate: 0, p99Ms: 6.9 }, previous: { requests: 100, errors: {}, errorRate: 0, p99Ms: 2, versions: ['1'] } })).p99).toMatchObject({ passed: true, threshold: 7 });
    // 40 ms before: x1.5 = 60 ms is the bound.
    expect(byGuard(figures({ version: { requests: 100, errors: {}, errorRate: 0, p99Ms: 61 }, previous: { requests: 100, errors: {}, errorRate: 0, p99Ms: 40, versions: ['1'] } })).p99).toMatchObject({ passed: false, value: 61, threshold: 60 });
    expect(byGuard(figures({ version: { requests: 100, errors: {}, errorRate: 0, p99Ms: 61 }, previous: { requests: 100, errors: {}, errorRate: 0, p99Ms: 40, versions: ['1'] } }), { ...DEFAULT_GUARDS, maxP99Ratio: 2 }).p99!.passed).toBe(true);
  });

  it('does not apply the p99 guard without enough figures of either version (50, or minRequests if more)', () => {
    expect(byGuard(figures({ previous: undefined })).p99).toMatchObject({ passed: true, detail: expect.stringMatching(/^not applied/) });
    expect(byGuard(figures({ previous: { requests: 49, errors: {}, errorRate: 0, p99Ms: 1, versions: ['1'] }, version: { requests: 100, errors: {}, errorRate: 0, p99Ms: 500 } })).p99).toMatchObject({
      passed: true,
      detail: 'not applied: the previous version (1) has 49 requests of figures in these cells, fewer than 50',
    });
    expect(byGuard(figures({ version: { requests: 49, errors: {}, errorRate: 0, p99Ms: 500 } })).p99).toMatchObject({ passed: true, detail: 'not applied: the new version has 49 requests of figures, fewer than 50' });
    expect(byGuard(figures({ version: { requests: 50, errors: {}, errorRate: 0, p99Ms: 500 } })).p99!.passed).toBe(false);
    expect(byGuard(figures({ version: { requests: 150, errors: {}, errorRate: 0, p99Ms: 500 } }), { ...DEFAULT_GUARDS, minRequests: 200 }).p99!.passed).toBe(true);
  });

  it('fails a wave with too little traffic as inconclusive (unless minRequests is 0)', () => {
    const f = figures({ version: { requests: 3, errors: {}, errorRate: 0, p99Ms: 1 } });
    expect(byGuard(f).traffic).toMatchObject({ passed: false, value: 3, threshold: 20, detail: expect.stringMatching(/^inconclusive/) });
    expect(allPassed(evaluateGuards(f, { ...DEFAULT_GUARDS, minRequests: 0 }))).toBe(true);
  });

  it('checks the shadow disagreement when the version ran as a shadow, and the numeric difference only when asked', () => {
    const f = figures({ shadow: { executed: 500, disagreement: 0.25, meanAbsDiff: 3 } });
    expect(byGuard(f).shadowDisagreement).toMatchObject({ passed: false, value: 0.25, threshold: 0.1 });
    expect(byGuard(f).shadowMeanAbsDiff).toBeUndefined();
    expect(byGuard(f, { ...DEFAULT_GUARDS, maxDisagreement: 0.3, maxMeanAbsDiff: 2 }).shadowMeanAbsDiff).toMatchObject({ passed: false, value: 3, threshold: 2 });
  });
});

const NOW = Date.parse('2026-12-03T12:00:00Z');

function stats(version: string, answered: number, failed: number, latency: number) {
  const s = newSketch();
  for (let i = 0; i < answered + failed; i++) s.accept(latency);
  return toJson(VersionStatisticsSchema, create(VersionStatisticsSchema, { model: 'm', version, requests: BigInt(answered), errors: failed ? { INTERNAL: BigInt(failed) } : {}, latencyMs: sketchMessage(s) }));
}

function report(cell: string, replica: string, ageMs: number, statistics: unknown[], shadows: unknown[] = []): StoredReport {
  return { cell, replica, revision: 5, loaded: [], errors: [], statistics, shadows, received: new Date(NOW - ageMs) };
}

describe('waveFigures', () => {
  it("adds up the live replicas of the wave's cells, per cell and together, beside the version each cell served before", () => {
    const f = waveFigures({
      model: 'm',
      version: '2',
      cells: [
        { cell: 'cell-a', previousVersion: '1', reports: [report('cell-a', 'r1', 1000, [stats('2', 90, 10, 4), stats('1', 300, 0, 2)]), report('cell-a', 'r2', 500, [stats('2', 100, 0, 4)])] },
        // r9's report is older than the stale limit: a replica that is gone.
        { cell: 'cell-b', previousVersion: '1', reports: [report('cell-b', 'r3', 100, [stats('2', 50, 50, 8)]), report('cell-b', 'r9', 300_000, [stats('2', 0, 1000, 8)])] },
      ],
      allReports: [],
      nowMs: NOW,
      staleAfterMs: 120_000,
    });
    expect(f.replicas).toEqual(['cell-a/r1', 'cell-a/r2', 'cell-b/r3']);
    expect(f.version).toMatchObject({ requests: 300, errors: { INTERNAL: 60 }, errorRate: 0.2 });
    expect(f.version.p99Ms).toBeCloseTo(8, 0);
    expect(f.previous).toMatchObject({ requests: 300, errorRate: 0, versions: ['1'] });
    expect(f.previous!.p99Ms).toBeCloseTo(2, 1);
    expect(f.perCell.map((c) => [c.cell, c.version.requests, c.previous?.requests])).toEqual([
      ['cell-a', 200, 300],
      ['cell-b', 100, 0],
    ]);
    expect(f.shadow).toBeUndefined();
  });

  it('takes the shadow comparison of the version against the live model from any cell', () => {
    const pair = (agreement: number, count: number) =>
      toJson(
        ShadowComparisonSchema,
        create(ShadowComparisonSchema, { liveModel: 'm', liveVersion: '1', shadowModel: 'm', shadowVersion: '2', executed: BigInt(count), outputs: { label: { kind: 'label', count: BigInt(count), agreement }, score: { kind: 'number', count: BigInt(count), meanAbsDiff: 0.5 } } }),
      );
    const f = waveFigures({
      model: 'm',
      version: '2',
      cells: [{ cell: 'cell-a', previousVersion: '1', reports: [] }],
      allReports: [report('cell-b', 'r1', 0, [], [pair(0.9, 100)]), report('cell-c', 'r2', 0, [], [pair(0.6, 100)])],
      nowMs: NOW,
      staleAfterMs: 120_000,
    });
    expect(f.shadow!.executed).toBe(200);
    expect(f.shadow!.disagreement).toBeCloseTo(0.25, 10);
    expect(f.shadow!.meanAbsDiff).toBeCloseTo(0.5, 10);
  });
});
