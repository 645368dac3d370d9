/**
 * The rollout state machine as a pure function of the stored rollout, an injected time and the wave's replicas:
 * each state's next step, its timeouts, and the rule that a check waits for reports made after the bake.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_GUARDS } from '../../../control-tower/rollout/guards.ts';
import { nextStep, replicaViews, type ReplicaView } from '../../../control-tower/rollout/state-machine.ts';
import type { Rollout, RolloutState, WaveRecord } from '../../../control-tower/store/index.ts';

const T0 = Date.parse('2026-12-03T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function rollout(state: RolloutState, wave: Partial<WaveRecord> = {}): Rollout {
  return {
    id: 1,
    model: 'm',
    version: '2',
    state,
    wave: 0,
    spec: { mode: 'default', bakeMs: 2000, guards: { ...DEFAULT_GUARDS }, rollback: 'wave', applyTimeoutMs: 10_000, reportTimeoutMs: 5000 },
    waves: [
      { name: 'canary', cells: ['cell-a'], status: state === 'pending' ? 'pending' : (state as WaveRecord['status']), ...wave },
      { name: 'rest', cells: ['cell-b'], status: 'pending' },
    ],
    createdBy: 't',
    created: new Date(T0),
    updated: new Date(T0),
  };
}
const applied = { revisions: { 'cell-a': 7 }, appliedAt: iso(T0) };
const baked = { ...applied, bakeStartedAt: iso(T0 + 1000), bakeEndsAt: iso(T0 + 3000) };
const replica = (over: Partial<ReplicaView> = {}): ReplicaView => ({ cell: 'cell-a', replica: 'r1', revision: 7, receivedMs: T0, loaded: true, ...over });

describe('nextStep', () => {
  it('applies a pending wave', () => {
    expect(nextStep(rollout('pending'), T0, [])).toEqual({ kind: 'apply' });
  });

  it('starts the bake once every live replica of the wave serves the revision with the version loaded', () => {
    const r = rollout('applying', applied);
    expect(nextStep(r, T0 + 100, [replica({ revision: 6, loaded: false }), replica({ replica: 'r2' })])).toMatchObject({ kind: 'wait' });
    expect(nextStep(r, T0 + 100, [replica({ loaded: false })])).toMatchObject({ kind: 'wait' });
    expect(nextStep(r, T0 + 100, [replica(), replica({ replica: 'r2', revision: 9 })])).toEqual({ kind: 'bake' });
    // Replicas of other cells do not hold the wave back.
    expect(nextStep(r, T0 + 100, [replica(), replica({ cell: 'cell-b', revision: 1, loaded: false })])).toEqual({ kind: 'bake' });
  });

  it('halts when the gateways do not serve the change within the apply timeout', () => {
    const step = nextStep(rollout('applying', applied), T0 + 10_001, [replica({ revision: 6, loaded: false })]);
    expect(step).toEqual({ kind: 'halt', reason: 'wave canary: gateways did not serve the change within 10000 ms (cell-a/r1 at revision 6)' });
    expect(nextStep(rollout('applying', applied), T0 + 10_000, [replica({ revision: 6 })])).toMatchObject({ kind: 'wait' });
  });

  it('halts on a load failure: while applying once the gateways had the apply timeout to retry, while baking at once', () => {
    const failing = replica({ loaded: false, loadError: 'rule.js does not compile' });
    expect(nextStep(rollout('applying', applied), T0 + 1, [failing])).toEqual({ kind: 'wait', why: '1 replica(s) not serving the change yet (1 failed to load; gateways retry)' });
    expect(nextStep(rollout('applying', applied), T0 + 10_001, [failing, replica({ replica: 'r2' })])).toEqual({ kind: 'halt', reason: 'wave canary: m/2 failed to load in cell cell-a (replica r1): rule.js does not compile' });
    // A retry that loads it lets the bake start.
    expect(nextStep(rollout('applying', applied), T0 + 5000, [replica()])).toEqual({ kind: 'bake' });
    expect(nextStep(rollout('baking', baked), T0 + 1500, [failing])).toEqual({ kind: 'halt', reason: 'wave canary: m/2 failed to load in cell cell-a (replica r1): rule.js does not compile' });
    // An error reported at an older revision is not about this change.
    expect(nextStep(rollout('baking', baked), T0 + 1500, [{ ...failing, revision: 6 }])).toMatchObject({ kind: 'wait' });
  });

  it('bakes until the stored bake end, whoever asks and whenever', () => {
    const r = rollout('baking', baked);
    expect(nextStep(r, T0 + 2999, [replica()])).toMatchObject({ kind: 'wait' });
    expect(nextStep(r, T0 + 3000, [replica()])).toEqual({ kind: 'check' });
    expect(nextStep(r, T0 + 3000, [])).toEqual({ kind: 'check' });
  });

  it('judges once every live replica reported after the bake, or when the report timeout passes', () => {
    const r = rollout('checking', baked);
    expect(nextStep(r, T0 + 3100, [replica({ receivedMs: T0 + 2900 }), replica({ replica: 'r2', receivedMs: T0 + 3050 })])).toMatchObject({ kind: 'wait' });
    expect(nextStep(r, T0 + 3100, [replica({ receivedMs: T0 + 3001 }), replica({ replica: 'r2', receivedMs: T0 + 3050 })])).toEqual({ kind: 'judge' });
    expect(nextStep(r, T0 + 3000 + 5000, [replica({ receivedMs: T0 + 2900 })])).toEqual({ kind: 'judge' });
  });

  it('does nothing for a finished rollout', () => {
    expect(nextStep(rollout('halted', baked), T0, [])).toEqual({ kind: 'done' });
    expect(nextStep(rollout('completed', baked), T0, [])).toEqual({ kind: 'done' });
  });
});

describe('replicaViews', () => {
  it('keeps live replicas only, with whether the version is loaded or failed', () => {
    const views = replicaViews(
      'm',
      '2',
      [
        { cell: 'cell-a', replica: 'r1', revision: 7, loaded: [{ model: 'm', version: '2', bundleSha256: 'x' }], errors: [], received: new Date(T0 - 1000) },
        { cell: 'cell-a', replica: 'r2', revision: 7, loaded: [], errors: [{ model: 'm', version: '2', message: 'boom' }], received: new Date(T0 - 1000) },
        { cell: 'cell-a', replica: 'gone', revision: 1, loaded: [], errors: [], received: new Date(T0 - 200_000) },
      ],
      T0,
      120_000,
    );
    expect(views).toEqual([
      { cell: 'cell-a', replica: 'r1', revision: 7, receivedMs: T0 - 1000, loaded: true },
      { cell: 'cell-a', replica: 'r2', revision: 7, receivedMs: T0 - 1000, loaded: false, loadError: 'boom' },
    ]);
  });
});
