/**
 * The checks after a wave's bake (ARCHITECTURE.md, "Rollouts"): pure functions of the wave's figures (figures.ts)
 * and the rollout's thresholds. Every guard gives a result, passed or not, with the value and threshold it compared
 * and one sentence saying so; a wave passes when all of them pass.
 *
 * - traffic: the new version saw at least `minRequests` live requests in the wave's cells (else the wave cannot be
 *   judged, and fails as inconclusive rather than pass on no evidence);
 * - errorRate: its failed share of them is at most `maxErrorRate`;
 * - p99: its p99 latency is at most max(previous p99 x `maxP99Ratio`, previous p99 + `p99SlackMs`), where the
 *   previous p99 is that of the versions the cells served before; applied when both versions have at least
 *   max(`minRequests`, P99_MIN_REQUESTS) requests of figures (the p99 of fewer is about their slowest one);
 * - shadowDisagreement / shadowMeanAbsDiff: when the version ran as a shadow of the live model, the share of rows
 *   whose label output disagreed (and, when set, the mean |difference| of numeric outputs) stay within bounds.
 */
import type { GuardResult, RolloutGuards, WaveFigures } from '../store/index.ts';

export const DEFAULT_GUARDS: Readonly<RolloutGuards> = Object.freeze({
  maxErrorRate: 0.01,
  maxP99Ratio: 1.5,
  p99SlackMs: 5,
  maxDisagreement: 0.1,
  minRequests: 20,
});

/** Fewest requests of each version for a p99 comparison: the p99 of fewer is about their slowest one. */
export const P99_MIN_REQUESTS = 50;

const pct = (x: number) => `${Math.round(x * 10_000) / 100}%`;
const ms = (x: number) => `${Math.round(x * 100) / 100} ms`;

export function evaluateGuards(f: WaveFigures, g: RolloutGuards): GuardResult[] {
  const v = f.version;
  const out: GuardResult[] = [];
  out.push({
    guard: 'traffic',
    passed: v.requests >= g.minRequests,
    value: v.requests,
    threshold: g.minRequests,
    detail:
      v.requests >= g.minRequests
        ? `${v.requests} live requests of the new version (at least ${g.minRequests} needed)`
        : `inconclusive: ${v.requests} live requests of the new version in the wave's cells, fewer than the ${g.minRequests} needed to judge it`,
  });
  const failed = Math.round(v.errorRate * v.requests);
  out.push({
    guard: 'errorRate',
    passed: v.errorRate <= g.maxErrorRate,
    value: v.errorRate,
    threshold: g.maxErrorRate,
    detail: `error rate ${pct(v.errorRate)} (${failed} of ${v.requests} requests${failed ? `: ${codes(v.errors)}` : ''}), at most ${pct(g.maxErrorRate)} allowed`,
  });
  const prev = f.previous;
  const enough = Math.max(g.minRequests, P99_MIN_REQUESTS);
  if (!prev || prev.p99Ms === undefined || prev.requests < enough) {
    out.push({
      guard: 'p99',
      passed: true,
      ...(v.p99Ms !== undefined ? { value: v.p99Ms } : {}),
      detail: `not applied: the previous version${prev?.versions.length ? ` (${prev.versions.join(', ')})` : ''} has ${prev?.requests ?? 0} requests of figures in these cells, fewer than ${enough}`,
    });
  } else if (v.p99Ms === undefined || v.requests < enough) {
    out.push({ guard: 'p99', passed: true, ...(v.p99Ms !== undefined ? { value: v.p99Ms } : {}), detail: `not applied: the new version has ${v.requests} requests of figures, fewer than ${enough}` });
  } else {
    const limit = Math.max(prev.p99Ms * g.maxP99Ratio, prev.p99Ms + g.p99SlackMs);
    out.push({
      guard: 'p99',
      passed: v.p99Ms <= limit,
      value: v.p99Ms,
      threshold: limit,
      detail: `p99 ${ms(v.p99Ms)} against ${ms(prev.p99Ms)} of ${prev.versions.join(', ')}: at most ${ms(limit)} allowed (x${g.maxP99Ratio} or +${g.p99SlackMs} ms)`,
    });
  }
  const s = f.shadow;
  if (!s || s.executed === 0 || s.disagreement === undefined) {
    out.push({
      guard: 'shadowDisagreement',
      passed: true,
      detail: !s || s.executed === 0 ? 'not applied: the version has no shadow comparison with the live version' : 'not applied: no label output to compare',
    });
  } else {
    out.push({
      guard: 'shadowDisagreement',
      passed: s.disagreement <= g.maxDisagreement,
      value: s.disagreement,
      threshold: g.maxDisagreement,
      detail: `as a shadow it disagreed with the live version on ${pct(s.disagreement)} of ${s.executed} executions, at most ${pct(g.maxDisagreement)} allowed`,
    });
  }
  if (g.maxMeanAbsDiff !== undefined && s && s.executed > 0 && s.meanAbsDiff !== undefined) {
    out.push({
      guard: 'shadowMeanAbsDiff',
      passed: s.meanAbsDiff <= g.maxMeanAbsDiff,
      value: s.meanAbsDiff,
      threshold: g.maxMeanAbsDiff,
      detail: `as a shadow its numeric outputs differed from the live version's by ${s.meanAbsDiff} on average, at most ${g.maxMeanAbsDiff} allowed`,
    });
  }
  return out;
}

/** Whether every guard passed. */
export function allPassed(results: readonly GuardResult[]): boolean {
  return results.every((r) => r.passed);
}

/** The halt reason of a failed check: the failed guards' sentences. */
export function failureReason(wave: string, results: readonly GuardResult[]): string {
  return `wave ${wave} failed its check: ${results
    .filter((r) => !r.passed)
    .map((r) => `${r.guard}: ${r.detail}`)
    .join('; ')}`;
}

function codes(errors: Record<string, number>): string {
  return Object.entries(errors)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${n} ${code}`)
    .join(', ');
}
