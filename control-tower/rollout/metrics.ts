/**
 * Rollouts as Prometheus gauges on the tower's `GET /metrics` (text format 0.0.4), for the unfinished rollouts and
 * the most recent finished ones. Labels: rollout (its id), model, version, and wave where it applies.
 *
 *   sibyl_rollout_state          1 for the rollout's state (label state: pending | applying | baking | checking |
 *                                halted | completed)
 *   sibyl_rollout_wave           the current wave's position, 1-based
 *   sibyl_rollout_waves          the number of waves
 *   sibyl_rollout_wave_requests  per checked wave: the new version's live requests in the wave's cells
 *   sibyl_rollout_wave_error_rate        ... their failed share
 *   sibyl_rollout_wave_p99_ms            ... p99 latency (label of: new | previous)
 *   sibyl_rollout_wave_passed            per checked wave: 1 passed, 0 failed
 */
import { ROLLOUT_STATES, type Rollout } from '../store/index.ts';

export function rolloutMetrics(rollouts: readonly Rollout[]): string {
  const families: Record<string, { help: string; lines: string[] }> = {
    sibyl_rollout_state: { help: "A rollout's state: 1 for the state it is in.", lines: [] },
    sibyl_rollout_wave: { help: "A rollout's current wave, 1-based.", lines: [] },
    sibyl_rollout_waves: { help: "A rollout's number of waves.", lines: [] },
    sibyl_rollout_wave_requests: { help: "Live requests of the rollout's version in a checked wave's cells.", lines: [] },
    sibyl_rollout_wave_error_rate: { help: "Failed share of the rollout's version's live requests in a checked wave's cells.", lines: [] },
    sibyl_rollout_wave_p99_ms: { help: "p99 latency in a checked wave's cells of the rollout's version (of=new) and of the version it replaced (of=previous), ms.", lines: [] },
    sibyl_rollout_wave_passed: { help: "Whether a checked wave passed its guards (1) or failed them (0).", lines: [] },
  };
  const line = (family: string, labels: Record<string, string>, value: number) => {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      .join(',');
    families[family]!.lines.push(`${family}{${l}} ${value}`);
  };
  for (const r of rollouts) {
    const base = { rollout: String(r.id), model: r.model, version: r.version };
    for (const state of ROLLOUT_STATES) line('sibyl_rollout_state', { ...base, state }, r.state === state ? 1 : 0);
    line('sibyl_rollout_wave', base, r.wave + 1);
    line('sibyl_rollout_waves', base, r.waves.length);
    for (const w of r.waves) {
      if (!w.figures || !w.guards) continue;
      const labels = { ...base, wave: w.name };
      line('sibyl_rollout_wave_requests', labels, w.figures.version.requests);
      line('sibyl_rollout_wave_error_rate', labels, w.figures.version.errorRate);
      if (w.figures.version.p99Ms !== undefined) line('sibyl_rollout_wave_p99_ms', { ...labels, of: 'new' }, w.figures.version.p99Ms);
      if (w.figures.previous?.p99Ms !== undefined) line('sibyl_rollout_wave_p99_ms', { ...labels, of: 'previous' }, w.figures.previous.p99Ms);
      line('sibyl_rollout_wave_passed', labels, w.guards.every((g) => g.passed) ? 1 : 0);
    }
  }
  return Object.entries(families)
    .map(([name, f]) => `# HELP ${name} ${f.help}\n# TYPE ${name} gauge\n${f.lines.join('\n')}${f.lines.length ? '\n' : ''}`)
    .join('');
}
