/**
 * Drives the unfinished rollouts (ARCHITECTURE.md, "Rollouts"): every `tickMs` it takes or renews the rollout
 * lease (one tower replica drives at a time; another takes over `leaseMs` after this one stops renewing), reads each
 * unfinished rollout and its wave's gateway reports, asks the state machine for the next step and carries it out
 * through the store. Every transition is one transaction that checks the rollout is still where it was read, so a
 * step taken twice (two replicas in the moment a lease changes hands, a restart) does nothing the second time.
 *
 * The clock is injected (`now`), and `tick()` can be called directly: the unit tests step a rollout through its
 * states without timers.
 */
import { toSibylError } from '../../core/errors.ts';
import { rolloutActor } from '../store/rollout-store.ts';
import type { MetadataStore, Rollout, StoredReport } from '../store/index.ts';
import { waveFigures } from './figures.ts';
import { allPassed, evaluateGuards, failureReason } from './guards.ts';
import { nextStep, replicaViews } from './state-machine.ts';

export interface RolloutDriverOptions {
  readonly store: MetadataStore;
  /** This tower replica's name in the lease (unique per process). */
  readonly holder: string;
  /** How often unfinished rollouts are looked at, ms (default 1000). */
  readonly tickMs?: number;
  /** How long a lease lasts without renewal, ms (default 15 000). */
  readonly leaseMs?: number;
  /** A replica whose last report is older than this is gone, ms (default 120 000, as the cells API). */
  readonly staleAfterMs?: number;
  /** The wall clock, ms (tests inject their own). */
  readonly now?: () => number;
  readonly logger?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

export interface RolloutDriver {
  /** One pass: the lease, then every unfinished rollout advanced as far as it can go now. Never rejects. */
  tick(): Promise<void>;
  /** Ticks every `tickMs` until `stop`. */
  start(): void;
  /** Stops ticking, waits for the pass in progress, gives the lease up. Idempotent. */
  stop(): Promise<void>;
}

/** At most this many transitions per rollout per pass (pending → applying → ... never loops longer). */
const STEPS_PER_TICK = 8;

export function createRolloutDriver(o: RolloutDriverOptions): RolloutDriver {
  const { store, holder } = o;
  const tickMs = o.tickMs ?? 1000;
  const leaseMs = o.leaseMs ?? 15_000;
  const staleAfterMs = o.staleAfterMs ?? 120_000;
  const now = o.now ?? Date.now;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function reportsOf(cells: readonly string[]): Promise<StoredReport[]> {
    return (await Promise.all(cells.map((c) => store.reports(c)))).flat();
  }

  async function drive(first: Rollout): Promise<void> {
    let r: Rollout | undefined = first;
    for (let i = 0; i < STEPS_PER_TICK && r; i++) {
      const wave = r.waves[r.wave]!;
      const reports = r.state === 'pending' ? [] : await reportsOf(wave.cells);
      const t = now();
      const step = nextStep(r, t, replicaViews(r.model, r.version, reports, t, staleAfterMs));
      const expect = { state: r.state, wave: r.wave };
      const at = new Date(t);
      switch (step.kind) {
        case 'done':
        case 'wait':
          return;
        case 'apply': {
          const id = r.id;
          try {
            r = await store.applyWave(id, expect, at);
          } catch (err) {
            const e = toSibylError(err);
            // The state forbids the change (a version retired, a cell's default removed by hand): halt on it.
            if (e.code !== 'FAILED_PRECONDITION' && e.code !== 'NOT_FOUND' && e.code !== 'INVALID_ARGUMENT') throw err;
            r = await store.haltRollout(id, expect, { reason: `wave ${wave.name} could not be applied: ${e.message}`, actor: rolloutActor(id) }, at);
          }
          if (r?.state === 'applying') o.logger?.info?.({ rollout: id, wave: wave.name, revisions: r.waves[r.wave]!.revisions }, 'rollout wave applied');
          break;
        }
        case 'bake':
          r = await store.advanceWave(r.id, expect, 'baking', at);
          break;
        case 'check':
          r = await store.advanceWave(r.id, expect, 'checking', at);
          break;
        case 'judge': {
          const everyCell = (await store.listCells()).map((c) => c.name);
          const figures = waveFigures({
            model: r.model,
            version: r.version,
            cells: wave.cells.map((cell) => ({ cell, previousVersion: wave.previous?.[cell]?.defaultVersion ?? '', reports: reports.filter((x) => x.cell === cell) })),
            allReports: await reportsOf(everyCell),
            nowMs: t,
            staleAfterMs,
          });
          const guards = evaluateGuards(figures, r.spec.guards);
          if (allPassed(guards)) {
            r = await store.passWave(r.id, expect, { figures, guards }, at);
          } else {
            const reason = failureReason(wave.name, guards);
            o.logger?.warn({ rollout: r.id, wave: wave.name, reason }, 'rollout halted');
            r = await store.haltRollout(r.id, expect, { reason, actor: rolloutActor(r.id), failed: { figures, guards } }, at);
          }
          break;
        }
        case 'halt':
          o.logger?.warn({ rollout: r.id, wave: wave.name, reason: step.reason }, 'rollout halted');
          r = await store.haltRollout(r.id, expect, { reason: step.reason, actor: rolloutActor(r.id) }, at);
          break;
      }
    }
  }

  async function pass(): Promise<void> {
    try {
      if (!(await store.acquireRolloutLease(holder, leaseMs))) return;
      for (const r of await store.listRollouts({ active: true, limit: 1000 })) {
        if (stopped) return;
        try {
          await drive(r);
        } catch (err) {
          o.logger?.warn({ rollout: r.id, err: (err as Error).message }, 'rollout step failed; retried at the next tick');
        }
      }
    } catch (err) {
      o.logger?.warn({ err: (err as Error).message }, 'rollout pass failed; retried at the next tick');
    }
  }

  function tick(): Promise<void> {
    running ??= pass().finally(() => (running = undefined));
    return running;
  }

  let stopping: Promise<void> | undefined;
  return {
    tick,
    start() {
      if (timer || stopped) return;
      timer = setInterval(() => void tick(), tickMs);
      timer.unref();
      void tick();
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        if (timer) clearInterval(timer);
        await running;
        await store.releaseRolloutLease(holder).catch(() => undefined);
      })();
      return stopping;
    },
  };
}
