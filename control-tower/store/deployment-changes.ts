/**
 * Changes to cells' desired state: deploy, undeploy, default, aliases, retire. Each runs inside one transaction
 * given as a ChangeContext (change-context.ts); contracts are documented on MetadataStore (metadata-types.ts).
 */
import { SibylError } from '../../core/errors.ts';
import { ALIAS, isAlias, isVersion, VERSION } from '../../core/names.ts';
import { lockCells, lockVersion, requireModel, type ChangeContext } from './change-context.ts';
import type { CellSelector, ShadowTargetState, SplitArmInput } from './metadata-types.ts';
import type { SqlQueryable } from './sql.ts';

export async function deploy(ctx: ChangeContext, name: string, version: string, selector: CellSelector, actor: string): Promise<void> {
  const cells = await lockCells(ctx.tx, selector);
  await requireDeployable(ctx.tx, name, version);
  const deployed = await insertDeployments(ctx.tx, cells, name, version, actor);
  const defaulted = await ctx.tx.query<{ cell: string }>(
    `INSERT INTO cell_defaults (cell, model_name, version) SELECT c, $2, $3 FROM unnest($1::text[]) AS c
     ON CONFLICT (cell, model_name) DO NOTHING RETURNING cell`,
    [cells, name, version],
  );
  const affected = [...new Set([...deployed, ...defaulted.map((r) => r.cell)])].sort();
  if (affected.length === 0) return;
  await ctx.bump(affected);
  await ctx.audit(actor, 'deploy', `${name}/${version}`, { cells: affected, defaultSet: defaulted.map((r) => r.cell).sort() });
}

export async function undeploy(ctx: ChangeContext, name: string, version: string, selector: CellSelector, actor: string): Promise<void> {
  const cells = await lockCells(ctx.tx, selector);
  await lockVersion(ctx.tx, name, version, 'share');
  const rows = await ctx.tx.query<{ cell: string; others: unknown; is_default: boolean; aliases: string[] | null; arms: string[] | null; shadowed_by: string[] | null }>(
    `SELECT d.cell,
       (SELECT count(*) FROM deployments o WHERE o.cell = d.cell AND o.model_name = d.model_name AND o.version <> d.version) AS others,
       EXISTS (SELECT 1 FROM cell_defaults f WHERE f.cell = d.cell AND f.model_name = d.model_name AND f.version = d.version) AS is_default,
       (SELECT array_agg(a.alias ORDER BY a.alias) FROM cell_aliases a
         WHERE a.cell = d.cell AND a.model_name = d.model_name AND a.version = d.version) AS aliases,
       (SELECT array_agg(s.arm ORDER BY s.arm) FROM cell_splits s
         WHERE s.cell = d.cell AND s.model_name = d.model_name AND s.version = d.version) AS arms,
       (SELECT array_agg(h.model_name ORDER BY h.model_name) FROM cell_shadows h
         WHERE h.cell = d.cell AND h.shadow_model = d.model_name AND h.shadow_version = d.version) AS shadowed_by
     FROM deployments d WHERE d.model_name = $1 AND d.version = $2 AND d.cell = ANY($3::text[]) ORDER BY d.cell`,
    [name, version, cells],
  );
  // A model's own default, aliases and split go with its last version; another model's shadow never does.
  const uses = (r: (typeof rows)[number]) => [
    ...(Number(r.others) > 0 ? [r.is_default ? 'default' : '', ...(r.aliases ?? []).map((a) => `alias ${a}`), ...(r.arms ?? []).map((a) => `split arm ${a}`)] : []),
    ...(r.shadowed_by ?? []).map((m) => `shadow of ${m}`),
  ].filter(Boolean);
  const blocked = rows.filter((r) => uses(r).length > 0);
  if (blocked.length > 0) {
    const why = blocked.map((r) => `${r.cell} (${uses(r).join(', ')})`);
    throw new SibylError('FAILED_PRECONDITION', `${name}/${version} is still in use in ${why.join('; ')}: change the default, aliases, split or shadows first`);
  }
  const targets = rows.map((r) => r.cell);
  if (targets.length === 0) return;
  // Only the last deployed version of the model in a cell can get here while it is a default, alias or arm.
  await ctx.tx.query('DELETE FROM cell_splits WHERE model_name = $1 AND version = $2 AND cell = ANY($3::text[])', [name, version, targets]);
  const last = rows.filter((r) => Number(r.others) === 0).map((r) => r.cell);
  if (last.length > 0) await ctx.tx.query('DELETE FROM cell_shadows WHERE model_name = $1 AND cell = ANY($2::text[])', [name, last]);
  await ctx.tx.query('DELETE FROM cell_aliases WHERE model_name = $1 AND version = $2 AND cell = ANY($3::text[])', [name, version, targets]);
  await ctx.tx.query('DELETE FROM cell_defaults WHERE model_name = $1 AND version = $2 AND cell = ANY($3::text[])', [name, version, targets]);
  await ctx.tx.query('DELETE FROM deployments WHERE model_name = $1 AND version = $2 AND cell = ANY($3::text[])', [name, version, targets]);
  await ctx.bump(targets);
  await ctx.audit(actor, 'undeploy', `${name}/${version}`, { cells: targets });
}

export async function setDefault(ctx: ChangeContext, name: string, version: string, selector: CellSelector | undefined, actor: string): Promise<void> {
  const cells = await targetCells(ctx.tx, name, selector);
  await requireDeployable(ctx.tx, name, version);
  const deployed = await insertDeployments(ctx.tx, cells, name, version, actor);
  const changed = await ctx.tx.query<{ cell: string }>(
    `INSERT INTO cell_defaults AS f (cell, model_name, version) SELECT c, $2, $3 FROM unnest($1::text[]) AS c
     ON CONFLICT (cell, model_name) DO UPDATE SET version = EXCLUDED.version WHERE f.version <> EXCLUDED.version
     RETURNING cell`,
    [cells, name, version],
  );
  const affected = [...new Set([...deployed, ...changed.map((r) => r.cell)])].sort();
  if (affected.length === 0) return;
  await ctx.bump(affected);
  await ctx.audit(actor, 'default.set', `${name}/${version}`, { cells: affected, deployed });
}

export async function setAlias(
  ctx: ChangeContext,
  name: string,
  alias: string,
  version: string,
  selector: CellSelector | undefined,
  actor: string,
): Promise<void> {
  if (!isAlias(alias)) throw new SibylError('INVALID_ARGUMENT', `alias ${ALIAS.message}`);
  const cells = await targetCells(ctx.tx, name, selector);
  await requireDeployable(ctx.tx, name, version);
  const clash = await ctx.tx.query('SELECT 1 FROM model_versions WHERE model_name = $1 AND version = $2', [name, alias]);
  if (clash.length > 0) throw new SibylError('INVALID_ARGUMENT', `alias ${alias} is the name of a version of ${name}`);
  const deployed = await insertDeployments(ctx.tx, cells, name, version, actor);
  const changed = await ctx.tx.query<{ cell: string }>(
    `INSERT INTO cell_aliases AS a (cell, model_name, alias, version) SELECT c, $2, $3, $4 FROM unnest($1::text[]) AS c
     ON CONFLICT (cell, model_name, alias) DO UPDATE SET version = EXCLUDED.version WHERE a.version <> EXCLUDED.version
     RETURNING cell`,
    [cells, name, alias, version],
  );
  const affected = [...new Set([...deployed, ...changed.map((r) => r.cell)])].sort();
  if (affected.length === 0) return;
  await ctx.bump(affected);
  await ctx.audit(actor, 'alias.set', `${name}/${version}`, { alias, cells: affected, deployed });
}

export async function deleteAlias(ctx: ChangeContext, name: string, alias: string, selector: CellSelector | undefined, actor: string): Promise<void> {
  const cells = await lockCells(ctx.tx, selector ?? 'all');
  await requireModel(ctx.tx, name);
  const rows = await ctx.tx.query<{ cell: string }>(
    'DELETE FROM cell_aliases WHERE model_name = $1 AND alias = $2 AND cell = ANY($3::text[]) RETURNING cell',
    [name, alias, cells],
  );
  if (rows.length === 0) throw new SibylError('NOT_FOUND', `alias ${alias} of model ${name} not found in the cells named`);
  const affected = rows.map((r) => r.cell).sort();
  await ctx.bump(affected);
  await ctx.audit(actor, 'alias.delete', name, { alias, cells: affected });
}

export async function retire(ctx: ChangeContext, name: string, version: string, actor: string): Promise<void> {
  await lockCells(ctx.tx, 'all');
  const { retired } = await lockVersion(ctx.tx, name, version, 'update');
  if (retired) return;
  const uses = await ctx.tx.query<{ cell: string; what: string }>(
    `SELECT cell, 'default' AS what FROM cell_defaults WHERE model_name = $1 AND version = $2
     UNION ALL SELECT cell, 'alias ' || alias FROM cell_aliases WHERE model_name = $1 AND version = $2
     UNION ALL SELECT cell, 'split arm ' || arm FROM cell_splits WHERE model_name = $1 AND version = $2
     UNION ALL SELECT cell, 'shadow of ' || model_name FROM cell_shadows WHERE shadow_model = $1 AND shadow_version = $2
     ORDER BY 1, 2`,
    [name, version],
  );
  if (uses.length > 0) {
    throw new SibylError(
      'FAILED_PRECONDITION',
      `${name}/${version} cannot be retired while it is in use: ${uses.map((u) => `${u.what} in ${u.cell}`).join(', ')}`,
    );
  }
  const removed = await ctx.tx.query<{ cell: string }>(
    'DELETE FROM deployments WHERE model_name = $1 AND version = $2 RETURNING cell',
    [name, version],
  );
  await ctx.tx.query('UPDATE model_versions SET retired_at = now(), retired_by = $3 WHERE model_name = $1 AND version = $2', [name, version, actor]);
  const cells = removed.map((r) => r.cell).sort();
  await ctx.bump(cells);
  await ctx.audit(actor, 'version.retire', `${name}/${version}`, { undeployedFrom: cells });
}

export async function setSplit(
  ctx: ChangeContext,
  name: string,
  arms: readonly SplitArmInput[],
  selector: CellSelector | undefined,
  actor: string,
): Promise<void> {
  const resolved = arms.map((a) => ({ arm: a.arm ?? a.version, version: a.version, weight: a.weight }));
  const problems: string[] = [];
  const names = new Set<string>();
  resolved.forEach((a, i) => {
    if (!isVersion(a.arm)) problems.push(`arms[${i}].arm: ${VERSION.message}`);
    if (names.has(a.arm)) problems.push(`arms[${i}].arm: "${a.arm}" appears twice`);
    names.add(a.arm);
    if (typeof a.weight !== 'number' || !Number.isFinite(a.weight) || a.weight < 0) problems.push(`arms[${i}].weight: must be a finite number >= 0`);
  });
  if (resolved.length > 0 && problems.length === 0 && resolved.reduce((t, a) => t + a.weight, 0) <= 0) problems.push('weights: must sum to more than 0');
  if (problems.length > 0) throw new SibylError('INVALID_ARGUMENT', `invalid split: ${problems.join('; ')}`);
  const cells = await targetCells(ctx.tx, name, selector);
  const deployed: string[] = [];
  for (const v of new Set(resolved.map((a) => a.version))) {
    await requireDeployable(ctx.tx, name, v);
    deployed.push(...(await insertDeployments(ctx.tx, cells, name, v, actor)));
  }
  const before = await ctx.tx.query<{ cell: string; arms: string }>(
    `SELECT cell, string_agg(arm || '=' || version || ':' || weight::text, ',' ORDER BY position) AS arms
     FROM cell_splits WHERE model_name = $1 AND cell = ANY($2::text[]) GROUP BY cell`,
    [name, cells],
  );
  await ctx.tx.query('DELETE FROM cell_splits WHERE model_name = $1 AND cell = ANY($2::text[])', [name, cells]);
  for (const [i, a] of resolved.entries()) {
    await ctx.tx.query(
      `INSERT INTO cell_splits (cell, model_name, arm, version, weight, position) SELECT c, $2, $3, $4, $5, $6 FROM unnest($1::text[]) AS c`,
      [cells, name, a.arm, a.version, a.weight, i],
    );
  }
  const after = await ctx.tx.query<{ cell: string; arms: string }>(
    `SELECT cell, string_agg(arm || '=' || version || ':' || weight::text, ',' ORDER BY position) AS arms
     FROM cell_splits WHERE model_name = $1 AND cell = ANY($2::text[]) GROUP BY cell`,
    [name, cells],
  );
  const was = new Map(before.map((r) => [r.cell, r.arms]));
  const now = new Map(after.map((r) => [r.cell, r.arms]));
  const affected = [...new Set([...deployed, ...cells.filter((c) => was.get(c) !== now.get(c))])].sort();
  if (affected.length === 0) return;
  await ctx.bump(affected);
  await ctx.audit(actor, 'split.set', name, { arms: resolved, cells: affected, deployed: [...new Set(deployed)].sort() });
}

export async function setShadows(
  ctx: ChangeContext,
  name: string,
  shadows: readonly ShadowTargetState[],
  selector: CellSelector | undefined,
  actor: string,
): Promise<void> {
  const seen = new Set<string>();
  for (const [i, t] of shadows.entries()) {
    const key = `${t.model}/${t.version}`;
    if (seen.has(key)) throw new SibylError('INVALID_ARGUMENT', `invalid shadows: shadows[${i}]: ${key} appears twice`);
    seen.add(key);
  }
  const cells = await targetCells(ctx.tx, name, selector);
  const deployed: string[] = [];
  for (const t of shadows) {
    await requireDeployable(ctx.tx, t.model, t.version);
    deployed.push(...(await insertDeployments(ctx.tx, cells, t.model, t.version, actor)));
    // A model deployed here for the first time as a shadow gets that version as its default, as with deploy.
    await ctx.tx.query(
      `INSERT INTO cell_defaults (cell, model_name, version) SELECT c, $2, $3 FROM unnest($1::text[]) AS c ON CONFLICT (cell, model_name) DO NOTHING`,
      [cells, t.model, t.version],
    );
  }
  const list = `SELECT cell, string_agg(shadow_model || '/' || shadow_version, ',' ORDER BY position) AS shadows
     FROM cell_shadows WHERE model_name = $1 AND cell = ANY($2::text[]) GROUP BY cell`;
  const before = await ctx.tx.query<{ cell: string; shadows: string }>(list, [name, cells]);
  await ctx.tx.query('DELETE FROM cell_shadows WHERE model_name = $1 AND cell = ANY($2::text[])', [name, cells]);
  for (const [i, t] of shadows.entries()) {
    await ctx.tx.query(
      `INSERT INTO cell_shadows (cell, model_name, shadow_model, shadow_version, position) SELECT c, $2, $3, $4, $5 FROM unnest($1::text[]) AS c`,
      [cells, name, t.model, t.version, i],
    );
  }
  const after = await ctx.tx.query<{ cell: string; shadows: string }>(list, [name, cells]);
  const was = new Map(before.map((r) => [r.cell, r.shadows]));
  const now = new Map(after.map((r) => [r.cell, r.shadows]));
  const affected = [...new Set([...deployed, ...cells.filter((c) => was.get(c) !== now.get(c))])].sort();
  if (affected.length === 0) return;
  await ctx.bump(affected);
  await ctx.audit(actor, 'shadows.set', name, { shadows, cells: affected, deployed: [...new Set(deployed)].sort() });
}

/** Explicit cells, or (undefined) every cell where some version of the model is deployed. */
async function targetCells(tx: SqlQueryable, name: string, selector: CellSelector | undefined): Promise<string[]> {
  if (selector !== undefined) return lockCells(tx, selector);
  const all = await lockCells(tx, 'all');
  const rows = await tx.query<{ cell: string }>(
    'SELECT DISTINCT cell FROM deployments WHERE model_name = $1 AND cell = ANY($2::text[]) ORDER BY cell',
    [name, all],
  );
  if (rows.length === 0) {
    await requireModel(tx, name);
    throw new SibylError('FAILED_PRECONDITION', `model ${name} is deployed in no cell: name the cells`);
  }
  return rows.map((r) => r.cell);
}

async function requireDeployable(tx: SqlQueryable, name: string, version: string): Promise<void> {
  const { retired } = await lockVersion(tx, name, version, 'share');
  if (retired) throw new SibylError('FAILED_PRECONDITION', `${name}/${version} is retired and cannot be deployed`);
}

/** Deploys where missing; returns the cells where it was newly deployed, sorted. */
async function insertDeployments(tx: SqlQueryable, cells: readonly string[], name: string, version: string, actor: string): Promise<string[]> {
  const rows = await tx.query<{ cell: string }>(
    `INSERT INTO deployments (cell, model_name, version, deployed_by) SELECT c, $2, $3, $4 FROM unnest($1::text[]) AS c
     ON CONFLICT DO NOTHING RETURNING cell`,
    [cells, name, version, actor],
  );
  return rows.map((r) => r.cell).sort();
}
