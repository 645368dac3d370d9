/**
 * The RolloutStore (rollout-types.ts) over the tower's SQL: each transition locks the rollout's row, checks that it
 * is still where the caller saw it, makes the desired-state changes it implies through deployment-changes.ts (which
 * bump revisions and write their own audit rows) and writes the rollout back, all in one transaction. So a wave is
 * applied once and restored once however many tower replicas or restarts try (ARCHITECTURE.md, "Rollouts").
 */
import { SibylError } from '../../core/errors.ts';
import { CELL, isCellName } from '../../core/names.ts';
import type { ChangeContext } from './change-context.ts';
import { lockCells, lockVersion } from './change-context.ts';
import * as changes from './deployment-changes.ts';
import type { SplitArmState } from './metadata-types.ts';
import {
  FINISHED,
  type CellSnapshot,
  type CreateRolloutInput,
  type Rollout,
  type RolloutExpectation,
  type RolloutState,
  type RolloutStore,
  type WaveRecord,
} from './rollout-types.ts';
import type { Sql, SqlQueryable } from './sql.ts';

/** Runs `fn` as one change (one transaction; revision listeners woken after the commit); resolves with its value. */
export type RunChange = <T>(fn: (ctx: ChangeContext) => Promise<T>) => Promise<T>;

/** The actor of the desired-state changes a rollout makes by itself. */
export const rolloutActor = (id: number): string => `rollout ${id}`;

export function createRolloutStore(sql: Sql, change: RunChange): RolloutStore {
  /** Locks the row, checks the expectation, runs `fn`, writes the result back. */
  function transition(
    id: number,
    expect: RolloutExpectation | undefined,
    fn: (r: Rollout, ctx: ChangeContext) => Promise<Rollout>,
  ): Promise<Rollout | undefined> {
    return change(async (ctx) => {
      const r = await readRollout(ctx.tx, id, true);
      if (expect ? r.state !== expect.state || r.wave !== expect.wave : FINISHED.has(r.state)) {
        if (expect) return undefined;
        throw new SibylError('FAILED_PRECONDITION', `rollout ${id} has ${r.state === 'completed' ? 'completed' : 'halted already'}`);
      }
      const next = await fn(r, ctx);
      await ctx.tx.query(
        `UPDATE rollouts SET state = $2, wave = $3, waves = $4::jsonb, halt_reason = $5, updated_at = now(),
           finished_at = CASE WHEN $2 IN ('halted', 'completed') THEN now() ELSE NULL END
         WHERE id = $1`,
        [id, next.state, next.wave, JSON.stringify(next.waves), next.haltReason ?? null],
      );
      return readRollout(ctx.tx, id, false);
    });
  }

  return {
    async createRollout(input) {
      const problems = validateWaves(input.waves);
      if (input.spec.mode === 'split' && !(typeof input.spec.weight === 'number' && input.spec.weight > 0 && input.spec.weight < 100)) {
        problems.push('weight: split mode needs the new version\'s share, a number between 0 and 100 (exclusive)');
      }
      if (problems.length > 0) throw new SibylError('INVALID_ARGUMENT', `invalid rollout: ${problems.join('; ')}`);
      const cells = input.waves.flatMap((w) => w.cells);
      try {
        return await change(async (ctx) => {
          const { tx } = ctx;
          // One rollout at a time per model: concurrent creations wait here for each other.
          const model = await tx.query('SELECT 1 FROM models WHERE name = $1 FOR UPDATE', [input.model]);
          if (model.length === 0) throw new SibylError('NOT_FOUND', `model ${input.model} not found`);
          const { retired } = await lockVersion(tx, input.model, input.version, 'share');
          if (retired) throw new SibylError('FAILED_PRECONDITION', `${input.model}/${input.version} is retired and cannot be rolled out`);
          const known = new Set((await tx.query<{ name: string }>('SELECT name FROM cells WHERE name = ANY($1::text[])', [cells])).map((c) => c.name));
          const unknown = cells.filter((c) => !known.has(c));
          if (unknown.length > 0) throw new SibylError('NOT_FOUND', `unknown cell${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
          const open = await tx.query<{ id: unknown; state: string }>(
            `SELECT id, state FROM rollouts WHERE model_name = $1 AND state NOT IN ('halted', 'completed')`,
            [input.model],
          );
          if (open[0]) throw new SibylError('FAILED_PRECONDITION', `model ${input.model} has an unfinished rollout (${Number(open[0].id)}, ${open[0].state}): halt it first`);
          if (input.spec.mode === 'split') {
            const snaps = await snapshots(tx, input.model, input.version, cells);
            const bad = cells.filter((c) => !snaps[c]!.defaultVersion || snaps[c]!.defaultVersion === input.version);
            if (bad.length > 0) {
              throw new SibylError('FAILED_PRECONDITION', `split mode splits with the cell's default version; ${input.model} has none other than ${input.version} in ${bad.join(', ')}`);
            }
          }
          const waves: WaveRecord[] = input.waves.map((w) => ({ name: w.name, cells: [...w.cells], status: 'pending' }));
          const rows = await tx.query<{ id: unknown }>(
            `INSERT INTO rollouts (model_name, version, state, wave, spec, waves, created_by)
             VALUES ($1, $2, 'pending', 0, $3::jsonb, $4::jsonb, $5) RETURNING id`,
            [input.model, input.version, JSON.stringify(input.spec), JSON.stringify(waves), input.actor],
          );
          const id = Number(rows[0]!.id);
          await ctx.audit(input.actor, 'rollout.create', `${input.model}/${input.version}`, {
            rollout: id,
            waves: input.waves,
            mode: input.spec.mode,
            ...(input.spec.weight !== undefined ? { weight: input.spec.weight } : {}),
            bakeMs: input.spec.bakeMs,
            guards: input.spec.guards,
            rollback: input.spec.rollback,
          });
          return readRollout(tx, id, false);
        });
      } catch (err) {
        // The partial unique index caught a concurrent creation this code did not see.
        if ((err as { code?: string }).code === '23505') throw new SibylError('FAILED_PRECONDITION', `model ${input.model} has an unfinished rollout: halt it first`);
        throw err;
      }
    },

    getRollout: (id) => readRollout(sql, id, false),

    async listRollouts(options = {}) {
      const limit = options.limit ?? 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new SibylError('INVALID_ARGUMENT', 'limit must be an integer from 1 to 1000');
      const rows = await sql.query<RolloutRow>(
        `SELECT ${COLUMNS} FROM rollouts
         WHERE ($1::text IS NULL OR model_name = $1) AND (NOT $2::boolean OR state NOT IN ('halted', 'completed'))
         ORDER BY id DESC LIMIT $3`,
        [options.model ?? null, options.active ?? false, limit],
      );
      return rows.map(rollout);
    },

    applyWave(id, expect, at) {
      if (expect.state !== 'pending') return Promise.resolve(undefined);
      return transition(id, expect, async (r, ctx) => {
        const wave = r.waves[r.wave]!;
        const actor = rolloutActor(r.id);
        await lockCells(ctx.tx, wave.cells);
        const previous = await snapshots(ctx.tx, r.model, r.version, wave.cells);
        if (r.spec.mode === 'default') {
          const split = wave.cells.filter((c) => previous[c]!.split.length > 0);
          if (split.length > 0) await changes.setSplit(ctx, r.model, [], split, actor);
          await changes.setDefault(ctx, r.model, r.version, wave.cells, actor);
        } else {
          const weight = r.spec.weight!;
          const byBase = new Map<string, string[]>();
          for (const c of wave.cells) {
            const base = previous[c]!.defaultVersion;
            // Checked at creation; a cell changed by hand since then fails the wave rather than split with nothing.
            if (!base || base === r.version) throw new SibylError('FAILED_PRECONDITION', `cell ${c} has no default version of ${r.model} other than ${r.version} to split with`);
            byBase.set(base, [...(byBase.get(base) ?? []), c]);
          }
          for (const [base, cells] of byBase) {
            await changes.setSplit(ctx, r.model, [{ version: base, weight: 100 - weight }, { version: r.version, weight }], cells, actor);
          }
        }
        const revisions = Object.fromEntries(
          (await ctx.tx.query<{ name: string; revision: unknown }>('SELECT name, revision FROM cells WHERE name = ANY($1::text[])', [wave.cells])).map((c) => [c.name, Number(c.revision)]),
        );
        await ctx.audit(actor, 'rollout.wave.apply', `${r.model}/${r.version}`, { rollout: r.id, wave: wave.name, cells: wave.cells, revisions });
        return withWave(r, 'applying', { ...wave, status: 'applying', previous, revisions, appliedAt: at.toISOString() });
      });
    },

    advanceWave(id, expect, to, at) {
      if ((to === 'baking' && expect.state !== 'applying') || (to === 'checking' && expect.state !== 'baking')) return Promise.resolve(undefined);
      return transition(id, expect, async (r, ctx) => {
        const wave = r.waves[r.wave]!;
        if (to === 'baking') {
          const ends = new Date(at.getTime() + r.spec.bakeMs);
          await ctx.audit(rolloutActor(r.id), 'rollout.wave.bake', `${r.model}/${r.version}`, { rollout: r.id, wave: wave.name, until: ends.toISOString() });
          return withWave(r, 'baking', { ...wave, status: 'baking', bakeStartedAt: at.toISOString(), bakeEndsAt: ends.toISOString() });
        }
        return withWave(r, 'checking', { ...wave, status: 'checking' });
      });
    },

    passWave(id, expect, result, at) {
      if (expect.state !== 'checking') return Promise.resolve(undefined);
      return transition(id, expect, async (r, ctx) => {
        const wave = r.waves[r.wave]!;
        const waves = r.waves.map((w, i) => (i === r.wave ? { ...w, status: 'passed' as const, checkedAt: at.toISOString(), figures: result.figures, guards: result.guards } : w));
        const target = `${r.model}/${r.version}`;
        await ctx.audit(rolloutActor(r.id), 'rollout.wave.pass', target, { rollout: r.id, wave: wave.name, guards: result.guards });
        const last = r.wave === r.waves.length - 1;
        if (last) await ctx.audit(rolloutActor(r.id), 'rollout.complete', target, { rollout: r.id, waves: r.waves.map((w) => w.name) });
        return { ...r, state: last ? 'completed' : 'pending', wave: last ? r.wave : r.wave + 1, waves };
      });
    },

    haltRollout(id, expect, halt, at) {
      return transition(id, expect, async (r, ctx) => {
        const when = at.toISOString();
        const restore = r.waves.map((w, i) => w.previous !== undefined && w.restoredAt === undefined && (i === r.wave || r.spec.rollback === 'all'));
        const restored: string[] = [];
        for (const [i, w] of r.waves.entries()) {
          if (!restore[i]) continue;
          await lockCells(ctx.tx, w.cells);
          for (const cell of w.cells) await restoreCell(ctx, r.model, r.version, cell, w.previous![cell]!, halt.actor);
          restored.push(...w.cells);
        }
        const current = r.waves[r.wave]!;
        const failed = halt.failed !== undefined;
        const waves = r.waves.map((w, i): WaveRecord => {
          const next: WaveRecord = restore[i] ? { ...w, restoredAt: when } : { ...w };
          if (i !== r.wave) return next;
          return {
            ...next,
            status: failed ? 'failed' : 'halted',
            reason: halt.reason,
            ...(failed ? { checkedAt: when } : {}),
            ...(halt.failed?.figures ? { figures: halt.failed.figures } : {}),
            ...(halt.failed?.guards ? { guards: halt.failed.guards } : {}),
          };
        });
        await ctx.audit(halt.actor, 'rollout.halt', `${r.model}/${r.version}`, {
          rollout: r.id,
          wave: current.name,
          state: r.state,
          reason: halt.reason,
          restored: restored.sort(),
          ...(halt.failed?.guards ? { guards: halt.failed.guards } : {}),
        });
        return { ...r, state: 'halted', waves, haltReason: halt.reason };
      });
    },

    async acquireRolloutLease(holder, ttlMs) {
      const rows = await sql.query(
        `INSERT INTO rollout_lease AS l (id, holder, expires_at) VALUES (1, $1, now() + make_interval(secs => $2::double precision / 1000))
         ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
         WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
         RETURNING holder`,
        [holder, ttlMs],
      );
      return rows.length > 0;
    },

    async releaseRolloutLease(holder) {
      await sql.query(`UPDATE rollout_lease SET expires_at = now() - interval '1 second' WHERE id = 1 AND holder = $1`, [holder]);
    },
  };
}

function withWave(r: Rollout, state: RolloutState, wave: WaveRecord): Rollout {
  return { ...r, state, waves: r.waves.map((w, i) => (i === r.wave ? wave : w)) };
}

function validateWaves(waves: CreateRolloutInput['waves']): string[] {
  const problems: string[] = [];
  if (!Array.isArray(waves) || waves.length === 0) return ['waves: name at least one wave of cells'];
  const names = new Set<string>();
  const seen = new Map<string, string>();
  for (const [i, w] of waves.entries()) {
    if (!isCellName(w.name)) problems.push(`waves[${i}].name: a wave name ${CELL.message}`);
    if (names.has(w.name)) problems.push(`waves[${i}].name: "${w.name}" appears twice`);
    names.add(w.name);
    if (w.cells.length === 0) problems.push(`waves[${i}].cells: name at least one cell`);
    for (const c of w.cells) {
      if (seen.has(c)) problems.push(`waves[${i}].cells: ${c} is in wave ${seen.get(c)} already`);
      seen.set(c, w.name);
    }
  }
  return problems;
}

/** What each cell holds for the model now: default, split, whether `version` is deployed. */
async function snapshots(tx: SqlQueryable, model: string, version: string, cells: readonly string[]): Promise<Record<string, CellSnapshot>> {
  const rows = await tx.query<{ cell: string; defaultVersion: string | null; deployed: boolean }>(
    `SELECT c AS cell,
       (SELECT f.version FROM cell_defaults f WHERE f.cell = c AND f.model_name = $1) AS "defaultVersion",
       EXISTS (SELECT 1 FROM deployments d WHERE d.cell = c AND d.model_name = $1 AND d.version = $2) AS deployed
     FROM unnest($3::text[]) AS c`,
    [model, version, cells],
  );
  const arms = await tx.query<{ cell: string; arm: string; version: string; weight: number }>(
    'SELECT cell, arm, version, weight FROM cell_splits WHERE model_name = $1 AND cell = ANY($2::text[]) ORDER BY cell, position',
    [model, cells],
  );
  const out: Record<string, CellSnapshot> = {};
  for (const r of rows) out[r.cell] = { defaultVersion: r.defaultVersion ?? '', split: [], deployed: r.deployed };
  for (const a of arms) out[a.cell]?.split.push({ arm: a.arm, version: a.version, weight: Number(a.weight) });
  return out;
}

/**
 * Puts one cell back as `snap` says: its split, its default, and the rollout's version undeployed when it was not
 * deployed before (unless something else now uses it there: an alias or a shadow set meanwhile keeps it).
 */
async function restoreCell(ctx: ChangeContext, model: string, version: string, cell: string, snap: CellSnapshot, actor: string): Promise<void> {
  await changes.setSplit(ctx, model, snap.split.map((a): SplitArmState => ({ ...a })), [cell], actor);
  if (snap.defaultVersion) await changes.setDefault(ctx, model, snap.defaultVersion, [cell], actor);
  if (snap.deployed) return;
  const uses = await ctx.tx.query<{ n: unknown }>(
    `SELECT (SELECT count(*) FROM cell_aliases WHERE cell = $1 AND model_name = $2 AND version = $3)
          + (SELECT count(*) FROM cell_shadows WHERE cell = $1 AND shadow_model = $2 AND shadow_version = $3)
          + (SELECT count(*) FROM cell_defaults f WHERE f.cell = $1 AND f.model_name = $2 AND f.version = $3
               AND EXISTS (SELECT 1 FROM deployments o WHERE o.cell = $1 AND o.model_name = $2 AND o.version <> $3)) AS n`,
    [cell, model, version],
  );
  if (Number(uses[0]?.n ?? 0) === 0) await changes.undeploy(ctx, model, version, [cell], actor);
}

const COLUMNS = `id, model_name AS model, version, state, wave, spec, waves, halt_reason AS "haltReason", created_by AS "createdBy",
  created_at AS created, updated_at AS updated, finished_at AS finished`;

interface RolloutRow {
  id: unknown;
  model: string;
  version: string;
  state: RolloutState;
  wave: unknown;
  spec: Rollout['spec'];
  waves: WaveRecord[];
  haltReason: string | null;
  createdBy: string;
  created: unknown;
  updated: unknown;
  finished: unknown;
}

async function readRollout(q: SqlQueryable, id: number, lock: boolean): Promise<Rollout> {
  if (!Number.isSafeInteger(id) || id < 1) throw new SibylError('INVALID_ARGUMENT', `a rollout id is a positive integer, got ${id}`);
  const rows = await q.query<RolloutRow>(`SELECT ${COLUMNS} FROM rollouts WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  if (!rows[0]) throw new SibylError('NOT_FOUND', `rollout ${id} not found`);
  return rollout(rows[0]);
}

function rollout(r: RolloutRow): Rollout {
  const date = (v: unknown) => (v instanceof Date ? v : new Date(String(v)));
  return {
    id: Number(r.id),
    model: r.model,
    version: r.version,
    state: r.state,
    wave: Number(r.wave),
    spec: r.spec,
    waves: r.waves,
    ...(r.haltReason != null ? { haltReason: r.haltReason } : {}),
    createdBy: r.createdBy,
    created: date(r.created),
    updated: date(r.updated),
    ...(r.finished != null ? { finished: date(r.finished) } : {}),
  };
}
