/**
 * The pieces every metadata change is built from, inside one transaction: cell resolution and locking, the version
 * row lock, the revision bump (with NOTIFY) and the audit row. Lock order, kept by every change to avoid deadlocks:
 * cells (sorted by name, FOR UPDATE), then the version row.
 */
import { SibylError } from '../../core/errors.ts';
import type { SqlQueryable } from './sql.ts';
import type { CellSelector, ChangeResult } from './metadata-types.ts';

/** The NOTIFY channel; payload: JSON `[{ "cell": string, "revision": number }, ...]`. */
export const REVISION_CHANNEL = 'sibyl_cell_revision';

export interface ChangeContext {
  readonly tx: SqlQueryable;
  /** Bumps the revisions of `cells` (once per cell per change) and queues their notification for after commit. */
  bump(cells: readonly string[]): Promise<void>;
  audit(actor: string, action: string, target: string, details: Record<string, unknown>): Promise<void>;
}

export interface ChangeOutcome {
  bumped: Map<string, number>;
}

/** Runs `fn` in `tx` with a fresh context; returns its result and the revisions it bumped. */
export async function runChange<T>(
  tx: SqlQueryable,
  fn: (ctx: ChangeContext) => Promise<T>,
): Promise<{ value: T; bumped: Map<string, number> }> {
  const bumped = new Map<string, number>();
  const ctx: ChangeContext = {
    tx,
    async bump(cells) {
      const todo = [...new Set(cells)].filter((c) => !bumped.has(c)).sort();
      if (todo.length === 0) return;
      const rows = await tx.query<{ name: string; revision: unknown }>(
        `UPDATE cells SET revision = revision + 1, updated_at = now() WHERE name = ANY($1::text[])
         RETURNING name, revision`,
        [todo],
      );
      const payload = rows.map((r) => ({ cell: r.name, revision: Number(r.revision) }));
      for (const p of payload) bumped.set(p.cell, p.revision);
      // NOTIFY is transactional: other processes hear it after the commit, or never on rollback.
      await tx.query('SELECT pg_notify($1, $2)', [REVISION_CHANNEL, JSON.stringify(payload)]);
    },
    audit: (actor, action, target, details) => insertAudit(tx, actor, action, target, details),
  };
  const value = await fn(ctx);
  return { value, bumped };
}

/** Writes one audit row in `tx`. */
export async function insertAudit(tx: SqlQueryable, actor: string, action: string, target: string, details: Record<string, unknown>): Promise<void> {
  await tx.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)', [
    actor,
    action,
    target,
    JSON.stringify(details),
  ]);
}

export function changeResult(bumped: Map<string, number>): ChangeResult {
  return {
    cells: [...bumped].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([cell, revision]) => ({ cell, revision })),
  };
}

/**
 * Resolves a selector to sorted cell names and locks those cells. 'all' → every cell. NOT_FOUND for unknown
 * names; INVALID_ARGUMENT for an empty list.
 */
export async function lockCells(tx: SqlQueryable, selector: CellSelector): Promise<string[]> {
  if (selector === 'all') {
    const rows = await tx.query<{ name: string }>('SELECT name FROM cells ORDER BY name FOR UPDATE');
    return rows.map((r) => r.name);
  }
  if (!Array.isArray(selector) || selector.length === 0) {
    throw new SibylError('INVALID_ARGUMENT', 'cells must be "all" or a non-empty list of cell names');
  }
  const wanted = [...new Set(selector)].sort();
  const rows = await tx.query<{ name: string }>(
    'SELECT name FROM cells WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE',
    [wanted],
  );
  const found = new Set(rows.map((r) => r.name));
  const missing = wanted.filter((c) => !found.has(c));
  if (missing.length > 0) throw new SibylError('NOT_FOUND', `unknown cell${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  return wanted;
}

/** Locks a version row (FOR SHARE, or FOR UPDATE to change it). NOT_FOUND when the model or version is unknown. */
export async function lockVersion(
  tx: SqlQueryable,
  name: string,
  version: string,
  mode: 'share' | 'update',
): Promise<{ retired: boolean }> {
  const rows = await tx.query<{ retired: boolean }>(
    `SELECT retired_at IS NOT NULL AS retired FROM model_versions WHERE model_name = $1 AND version = $2
     FOR ${mode === 'share' ? 'SHARE' : 'UPDATE'}`,
    [name, version],
  );
  const row = rows[0];
  if (!row) throw await versionNotFound(tx, name, version);
  return row;
}

export async function versionNotFound(tx: SqlQueryable, name: string, version: string): Promise<SibylError> {
  const model = await tx.query('SELECT 1 FROM models WHERE name = $1', [name]);
  return model.length === 0
    ? new SibylError('NOT_FOUND', `model ${name} not found`)
    : new SibylError('NOT_FOUND', `version ${version} of model ${name} not found`);
}

export async function requireModel(tx: SqlQueryable, name: string): Promise<void> {
  const rows = await tx.query('SELECT 1 FROM models WHERE name = $1', [name]);
  if (rows.length === 0) throw new SibylError('NOT_FOUND', `model ${name} not found`);
}
