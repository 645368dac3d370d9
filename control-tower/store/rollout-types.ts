/**
 * Rollouts as the store keeps them (ARCHITECTURE.md, "Rollouts"): a model version moved through waves of cells, each
 * wave applied, baked, checked against guards computed from the gateways' reports, and passed or failed. The
 * decisions are made by control-tower/rollout/ (state-machine.ts, guards.ts); the store makes each transition one
 * transaction with the desired-state change it implies, so a wave is applied or restored exactly once.
 *
 * Times inside a rollout's waves are ISO 8601 strings (they live in a jsonb column and go to the API as they are).
 */
import type { SplitArmState } from './metadata-types.ts';

/**
 * pending: the current wave is not applied yet; applying: applied, waiting for the wave's gateways to load it;
 * baking: serving, until the bake ends; checking: waiting for reports after the bake, then the guards;
 * halted: stopped by a guard, a timeout or an operator (the affected cells restored); completed: every wave passed.
 */
export type RolloutState = 'pending' | 'applying' | 'baking' | 'checking' | 'halted' | 'completed';
export const ROLLOUT_STATES: readonly RolloutState[] = ['pending', 'applying', 'baking', 'checking', 'halted', 'completed'];
export const FINISHED: ReadonlySet<RolloutState> = new Set(['halted', 'completed']);

/** A wave's own progress: the rollout's state while it is the current wave, then passed, failed or halted. */
export type WaveStatus = 'pending' | 'applying' | 'baking' | 'checking' | 'passed' | 'failed' | 'halted';

/** Thresholds of the checks after each bake (defaults in control-tower/rollout/guards.ts). */
export interface RolloutGuards {
  /** Largest share of the new version's live requests that may fail, 0..1. */
  maxErrorRate: number;
  /** The new version's p99 latency may be at most this multiple of the previous version's ... */
  maxP99Ratio: number;
  /** ... or the previous p99 plus this many ms, whichever is larger (small latencies are noisy). */
  p99SlackMs: number;
  /** When the version ran as a shadow: largest share of rows whose label output disagreed with the live one, 0..1. */
  maxDisagreement: number;
  /** When the version ran as a shadow: largest mean |difference| of a numeric output (unset: not checked). */
  maxMeanAbsDiff?: number | undefined;
  /** Fewest live requests of the new version a wave must see to be judged; fewer fails the wave as inconclusive. */
  minRequests: number;
}

export interface RolloutSpec {
  /** default: the version becomes the cells' default (a split there is removed); split: it gets `weight` % of them. */
  mode: 'default' | 'split';
  /** Split mode: the new version's share of requests that name no version, percent, 0 < weight < 100. */
  weight?: number | undefined;
  /** How long each wave serves before its check, ms. */
  bakeMs: number;
  guards: RolloutGuards;
  /** On a halt: restore the current wave's cells only (`wave`), or every wave's (`all`). */
  rollback: 'wave' | 'all';
  /** Longest wait for a wave's gateways to serve the change before the rollout halts, ms. */
  applyTimeoutMs: number;
  /** Longest wait after a bake for every live replica of the wave to report, ms; then the guards use what came. */
  reportTimeoutMs: number;
}

/** What one cell held for the model before its wave was applied, to be put back on a halt. */
export interface CellSnapshot {
  defaultVersion: string;
  split: SplitArmState[];
  /** Whether the rollout's version was deployed there already. */
  deployed: boolean;
}

/** The figures of one version over a wave's cells, from the gateways' reports. */
export interface VersionFigures {
  /** Live requests answered plus failed. */
  requests: number;
  /** Failed requests by error code. */
  errors: Record<string, number>;
  /** Failed / requests (0 without requests). */
  errorRate: number;
  /** p99 latency, ms (absent without requests). */
  p99Ms?: number | undefined;
}

export interface ShadowFigures {
  /** Shadow executions compared with the live version. */
  executed: number;
  /** Largest share of rows whose label output disagreed, over the label outputs (absent: none). */
  disagreement?: number | undefined;
  /** Largest mean |difference| over the numeric outputs (absent: none). */
  meanAbsDiff?: number | undefined;
}

export interface WaveFigures {
  /** Replicas whose reports were used, as `cell/replica`. */
  replicas: string[];
  /** The rollout's version over the wave's cells. */
  version: VersionFigures;
  /** The versions the cells served before (their defaults), together. */
  previous?: (VersionFigures & { versions: string[] }) | undefined;
  /** The version as a shadow of the live model, as gateways of any cell reported it. */
  shadow?: ShadowFigures | undefined;
  perCell: { cell: string; version: VersionFigures; previous?: VersionFigures | undefined }[];
}

export type GuardName = 'traffic' | 'errorRate' | 'p99' | 'shadowDisagreement' | 'shadowMeanAbsDiff';

export interface GuardResult {
  guard: GuardName;
  passed: boolean;
  /** The measured value, when there is one. */
  value?: number | undefined;
  threshold?: number | undefined;
  /** One sentence: what was compared, or why the guard was not applied. */
  detail: string;
}

export interface WaveRecord {
  name: string;
  cells: string[];
  status: WaveStatus;
  /** Set when applied: per cell, what it held before. */
  previous?: Record<string, CellSnapshot>;
  /** Set when applied: per cell, its revision right after the change (gateways serving it report at least this). */
  revisions?: Record<string, number>;
  appliedAt?: string;
  bakeStartedAt?: string;
  bakeEndsAt?: string;
  checkedAt?: string;
  /** When the wave's cells were put back as they were (a halt). */
  restoredAt?: string;
  figures?: WaveFigures;
  guards?: GuardResult[];
  /** Why the wave failed or was halted. */
  reason?: string;
}

export interface Rollout {
  id: number;
  model: string;
  version: string;
  state: RolloutState;
  /** Index of the current wave in `waves` (of the last one once completed). */
  wave: number;
  spec: RolloutSpec;
  waves: WaveRecord[];
  haltReason?: string | undefined;
  createdBy: string;
  created: Date;
  updated: Date;
  finished?: Date | undefined;
}

export interface CreateRolloutInput {
  model: string;
  version: string;
  waves: { name: string; cells: string[] }[];
  spec: RolloutSpec;
  actor: string;
}

/** A transition is applied only when the rollout is still where its caller saw it. */
export interface RolloutExpectation {
  state: RolloutState;
  wave: number;
}

export interface RolloutStore {
  /**
   * Records a rollout in state pending. INVALID_ARGUMENT: no waves, an empty or repeated wave name, a cell in two
   * waves, a malformed wave name, a split weight outside (0, 100). NOT_FOUND: unknown model, version or cell.
   * FAILED_PRECONDITION: the version is retired; the model has an unfinished rollout; split mode where a cell has no
   * other default version to split with. Audit: rollout.create.
   */
  createRollout(input: CreateRolloutInput): Promise<Rollout>;
  /** NOT_FOUND for an unknown id. */
  getRollout(id: number): Promise<Rollout>;
  /** Newest first; `active`: only unfinished ones. `limit` 1-1000 (default 100). */
  listRollouts(options?: { model?: string; active?: boolean; limit?: number }): Promise<Rollout[]>;
  /**
   * Applies the current wave (expected pending at `expect.wave`): snapshots each cell, sets the version there as
   * the spec says, records the cells' revisions, and moves to applying, in one transaction. Undefined when the
   * rollout had moved on (nothing done). Audit: the desired-state changes, and rollout.wave.apply.
   */
  applyWave(id: number, expect: RolloutExpectation, at: Date): Promise<Rollout | undefined>;
  /** Moves the current wave from applying to baking (`bakeStartedAt`, `bakeEndsAt`) or from baking to checking. */
  advanceWave(id: number, expect: RolloutExpectation, to: 'baking' | 'checking', at: Date): Promise<Rollout | undefined>;
  /**
   * Records the check of the current wave (expected checking) as passed: its figures and guard results; the next
   * wave becomes pending, or the rollout completes. Audit: rollout.wave.pass, and rollout.complete at the end.
   */
  passWave(id: number, expect: RolloutExpectation, result: { figures: WaveFigures; guards: GuardResult[] }, at: Date): Promise<Rollout | undefined>;
  /**
   * Halts: restores the current wave's cells (every applied wave's with rollback `all`) to their snapshots and
   * records the reason (and figures and guards, for a failed check), in one transaction. `expect` undefined (an
   * operator): any unfinished state. FAILED_PRECONDITION when the rollout has finished (with `expect` undefined);
   * undefined when it had moved on (with `expect`). Audit: the restoring changes, and rollout.halt.
   */
  haltRollout(
    id: number,
    expect: RolloutExpectation | undefined,
    halt: { reason: string; actor: string; failed?: { figures?: WaveFigures; guards?: GuardResult[] } },
    at: Date,
  ): Promise<Rollout | undefined>;
  /**
   * Takes or renews the lease to drive rollouts for `ttlMs` (database time); false while another holder's lease has
   * not expired.
   */
  acquireRolloutLease(holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up, if `holder` has it. */
  releaseRolloutLease(holder: string): Promise<void>;
}
