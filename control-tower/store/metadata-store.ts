/**
 * `createMetadataStore(sql)`: the MetadataStore role (contracts in metadata-types.ts) over PGlite or PostgreSQL.
 * Changes to cells are in deployment-changes.ts, tokens in token-store.ts, rollouts in rollout-store.ts; this file holds versions, reads,
 * reports, the audit log and the revision wake-ups.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { CellStateSchema, type CellState, type DeployedModel, type DeployedVersion } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { SibylError } from '../../core/errors.ts';
import { CELL, isCellName, isName, isSha256, isVersion, NAME, SHA256_HEX, VERSION } from '../../core/names.ts';
import { changeResult, insertAudit, REVISION_CHANNEL, runChange, type ChangeContext } from './change-context.ts';
import * as changes from './deployment-changes.ts';
import { migrate } from './migrate.ts';
import { createRevisionNotifier } from './revision-notifier.ts';
import type { Sql, SqlQueryable } from './sql.ts';
import { createRolloutStore } from './rollout-store.ts';
import { createTokenStore } from './token-store.ts';
import type {
  AddVersionResult,
  AuditEntry,
  CellInfo,
  CellModel,
  ChangeResult,
  GatewayReportInput,
  MetadataStore,
  ModelSummary,
  ShadowTargetState,
  SplitArmState,
  StoredReport,
  VersionDetail,
  VersionRecord,
} from './metadata-types.ts';

export type * from './metadata-types.ts';
export { ROLES } from './metadata-types.ts';

export interface MetadataStoreOptions {
  /** Apply pending migrations first (default true). */
  migrate?: boolean;
}

/** Opens the store: applies migrations (unless told not to) and starts listening for revision bumps. */
export async function createMetadataStore(sql: Sql, options: MetadataStoreOptions = {}): Promise<MetadataStore> {
  if (options.migrate !== false) await migrate(sql);
  const notifier = createRevisionNotifier();
  const unlisten = await sql.listen(REVISION_CHANNEL, function onNotify(payload) {
    try {
      for (const { cell, revision } of JSON.parse(payload) as { cell: string; revision: number }[]) notifier.publish(cell, revision);
    } catch {
      // A payload this code did not send: ignore it.
    }
  });
  let closed: Promise<void> | undefined;

  /** Runs a change in one transaction; after the commit, wakes the cells' listeners. */
  async function change(fn: (ctx: ChangeContext) => Promise<void>): Promise<ChangeResult> {
    const { bumped } = await sql.transaction((tx) => runChange(tx, fn));
    for (const [cell, revision] of bumped) notifier.publish(cell, revision);
    return changeResult(bumped);
  }

  async function cellRevision(cell: string): Promise<number> {
    const rows = await sql.query<{ revision: unknown }>('SELECT revision FROM cells WHERE name = $1', [cell]);
    if (!rows[0]) throw new SibylError('NOT_FOUND', `cell ${cell} not found`);
    return Number(rows[0].revision);
  }

  async function getVersion(name: string, version: string): Promise<VersionDetail> {
    const rows = await sql.query<VersionRow & { cells: string[] | null }>(
      `SELECT ${VERSION_COLUMNS},
         (SELECT array_agg(d.cell ORDER BY d.cell) FROM deployments d WHERE d.model_name = v.model_name AND d.version = v.version) AS cells
       FROM model_versions v WHERE v.model_name = $1 AND v.version = $2`,
      [name, version],
    );
    const row = rows[0];
    if (!row) {
      const model = await sql.query('SELECT 1 FROM models WHERE name = $1', [name]);
      throw new SibylError('NOT_FOUND', model.length === 0 ? `model ${name} not found` : `version ${version} of model ${name} not found`);
    }
    return { ...versionRecord(row), cells: row.cells ?? [] };
  }

  const tokens = createTokenStore(sql);
  const rollouts = createRolloutStore(sql, async function changeReturning(fn) {
    const { value, bumped } = await sql.transaction((tx) => runChange(tx, fn));
    for (const [cell, revision] of bumped) notifier.publish(cell, revision);
    return value;
  });

  return {
    async addVersion(input) {
      validateVersionInput(input);
      return sql.transaction(async (tx): Promise<AddVersionResult> => {
        await tx.query('INSERT INTO models (name) VALUES ($1) ON CONFLICT DO NOTHING', [input.name]);
        // Concurrent inserts of one version: the second waits for the first's commit, then inserts nothing.
        const inserted = await tx.query<VersionRow>(
          `INSERT INTO model_versions AS v (model_name, version, sha256, runtime, manifest, size_bytes, created_by)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT DO NOTHING RETURNING ${VERSION_COLUMNS}`,
          [input.name, input.version, input.sha256, input.runtime, JSON.stringify(input.manifest ?? null), input.sizeBytes, input.actor],
        );
        if (inserted[0]) {
          await insertAudit(tx, input.actor, 'version.add', `${input.name}/${input.version}`, {
            sha256: input.sha256,
            runtime: input.runtime,
            sizeBytes: input.sizeBytes,
          });
          return { version: versionRecord(inserted[0]), created: true };
        }
        const existing = await tx.query<VersionRow>(
          `SELECT ${VERSION_COLUMNS} FROM model_versions v WHERE model_name = $1 AND version = $2`,
          [input.name, input.version],
        );
        const row = existing[0];
        if (!row) throw new Error(`version ${input.name}/${input.version} neither inserted nor found`);
        if (row.sha256 !== input.sha256) {
          throw new SibylError(
            'ALREADY_EXISTS',
            `version ${input.version} of model ${input.name} already exists with other content (sha256 ${row.sha256}); versions are immutable`,
          );
        }
        return { version: versionRecord(row), created: false };
      });
    },

    async listModels() {
      const rows = await sql.query<{ name: string; created: unknown; versions: string[] | null }>(
        `SELECT m.name, m.created_at AS created,
           (SELECT array_agg(v.version ORDER BY v.seq) FROM model_versions v WHERE v.model_name = m.name) AS versions
         FROM models m ORDER BY m.name`,
      );
      return rows.map((r): ModelSummary => ({ name: r.name, created: toDate(r.created), versions: r.versions ?? [] }));
    },

    async getModel(name) {
      return sql.transaction(async (tx) => {
        await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const model = await tx.query<{ created: unknown }>('SELECT created_at AS created FROM models WHERE name = $1', [name]);
        if (!model[0]) throw new SibylError('NOT_FOUND', `model ${name} not found`);
        const versions = await tx.query<VersionRow & { cells: string[] | null }>(
          `SELECT ${VERSION_COLUMNS},
             (SELECT array_agg(d.cell ORDER BY d.cell) FROM deployments d WHERE d.model_name = v.model_name AND d.version = v.version) AS cells
           FROM model_versions v WHERE v.model_name = $1 ORDER BY v.seq`,
          [name],
        );
        const byCell = await modelStates(tx, 'd.model_name = $1', [name]);
        return {
          name,
          created: toDate(model[0].created),
          versions: versions.map((r) => ({ ...versionRecord(r), cells: r.cells ?? [] })),
          cells: [...byCell].map(([cell, states]): CellModel => {
            const s = states.get(name)!;
            return { cell, versions: s.versions.map((v) => v.version), defaultVersion: s.defaultVersion, aliases: s.aliases, split: s.split, shadows: s.shadows };
          }),
        };
      });
    },

    getVersion,

    retireVersion: (name, version, actor) => change((ctx) => changes.retire(ctx, name, version, actor)),

    async ensureCells(names, actor = 'config') {
      const bad = names.filter((n) => !isCellName(n));
      if (bad.length > 0) throw new SibylError('INVALID_ARGUMENT', `a cell name ${CELL.message}: ${bad.join(', ')}`);
      const wanted = [...new Set(names)].sort();
      await sql.transaction(async (tx) => {
        const created = await tx.query<{ name: string }>(
          'INSERT INTO cells (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING name',
          [wanted],
        );
        for (const { name } of created) await insertAudit(tx, actor, 'cell.create', name, {});
      });
      const rows = await sql.query<CellRow>(`SELECT ${CELL_COLUMNS} FROM cells WHERE name = ANY($1::text[]) ORDER BY name`, [wanted]);
      return rows.map(cellInfo);
    },

    async listCells() {
      const rows = await sql.query<CellRow>(`SELECT ${CELL_COLUMNS} FROM cells ORDER BY name`);
      return rows.map(cellInfo);
    },

    deploy: (name, version, cells, actor) => change((ctx) => changes.deploy(ctx, name, version, cells, actor)),
    undeploy: (name, version, cells, actor) => change((ctx) => changes.undeploy(ctx, name, version, cells, actor)),
    setDefault: (name, version, cells, actor) => change((ctx) => changes.setDefault(ctx, name, version, cells, actor)),
    setAlias: (name, alias, version, cells, actor) => change((ctx) => changes.setAlias(ctx, name, alias, version, cells, actor)),
    deleteAlias: (name, alias, cells, actor) => change((ctx) => changes.deleteAlias(ctx, name, alias, cells, actor)),
    setSplit: (name, arms, cells, actor) => change((ctx) => changes.setSplit(ctx, name, arms, cells, actor)),
    setShadows: (name, shadows, cells, actor) => change((ctx) => changes.setShadows(ctx, name, shadows, cells, actor)),

    async cellState(cell) {
      return sql.transaction(async (tx): Promise<CellState> => {
        // One snapshot for the revision and the content it stands for.
        await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const rows = await tx.query<CellRow>(`SELECT ${CELL_COLUMNS} FROM cells WHERE name = $1`, [cell]);
        if (!rows[0]) throw new SibylError('NOT_FOUND', `cell ${cell} not found`);
        const info = cellInfo(rows[0]);
        const states = (await modelStates(tx, 'd.cell = $1', [cell])).get(cell) ?? new Map();
        return create(CellStateSchema, { cell, revision: BigInt(info.revision), updated: timestampFromDate(info.updated), models: [...states.values()] });
      });
    },

    cellRevision,

    async waitForRevision(cell, after, { timeoutMs, signal }) {
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const off = notifier.on(cell, (revision) => revision > after && wake());
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      signal?.addEventListener('abort', wake, { once: true });
      try {
        const current = await cellRevision(cell);
        if (current > after || signal?.aborted) return current;
        await woken;
        return await cellRevision(cell);
      } finally {
        off();
        clearTimeout(timer);
        signal?.removeEventListener('abort', wake);
      }
    },

    onRevision: (cell, listener) => notifier.on(cell, listener),

    async auditLog(options = {}) {
      const limit = options.limit ?? 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new SibylError('INVALID_ARGUMENT', 'limit must be an integer from 1 to 1000');
      if (options.before !== undefined && !Number.isSafeInteger(options.before)) throw new SibylError('INVALID_ARGUMENT', 'before must be an integer');
      const rows = await sql.query<{ id: unknown; time: unknown; actor: string; action: string; target: string; details: Record<string, unknown> }>(
        `SELECT id, time, actor, action, target, details FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1::bigint)
           AND ($3::text IS NULL OR actor = $3::text)
           AND ($4::text IS NULL OR action = $4::text)
           AND ($5::text IS NULL OR target = $5::text OR left(target, length($5::text) + 1) = $5::text || '/')
         ORDER BY id DESC LIMIT $2`,
        [options.before ?? null, limit, options.actor || null, options.action || null, options.model || null],
      );
      return rows.map((r): AuditEntry => ({ ...r, id: Number(r.id), time: toDate(r.time) }));
    },

    async saveReport(report) {
      const body = {
        revision: report.revision,
        loaded: report.loaded,
        errors: report.errors,
        ...(report.time ? { time: report.time.toISOString() } : {}),
        ...(report.shadows ? { shadows: report.shadows } : {}),
        ...(report.statistics?.length ? { statistics: report.statistics } : {}),
      };
      const rows = await sql.query<{ received: unknown }>(
        `INSERT INTO gateway_reports (cell, replica, report) SELECT name, $2, $3::jsonb FROM cells WHERE name = $1
         ON CONFLICT (cell, replica) DO UPDATE SET report = EXCLUDED.report, received_at = now()
         RETURNING received_at AS received`,
        [report.cell, report.replica, JSON.stringify(body)],
      );
      if (!rows[0]) throw new SibylError('NOT_FOUND', `cell ${report.cell} not found`);
      return { ...report, received: toDate(rows[0].received) };
    },

    async reports(cell) {
      await cellRevision(cell);
      const rows = await sql.query<{ replica: string; report: ReportBody; received: unknown }>(
        'SELECT replica, report, received_at AS received FROM gateway_reports WHERE cell = $1 ORDER BY replica',
        [cell],
      );
      return rows.map((r): StoredReport => ({
        cell,
        replica: r.replica,
        revision: r.report.revision,
        loaded: r.report.loaded,
        errors: r.report.errors,
        ...(r.report.time ? { time: new Date(r.report.time) } : {}),
        ...(r.report.shadows ? { shadows: r.report.shadows } : {}),
        ...(r.report.statistics ? { statistics: r.report.statistics } : {}),
        received: toDate(r.received),
      }));
    },

    ...tokens,
    ...rollouts,

    close() {
      closed ??= unlisten().catch(() => {});
      return closed;
    },
  };
}

type ReportBody = Pick<GatewayReportInput, 'revision' | 'loaded' | 'errors' | 'shadows' | 'statistics'> & { time?: string };

const VERSION_COLUMNS = `v.model_name AS name, v.version, v.sha256, v.runtime, v.manifest, v.size_bytes AS "sizeBytes",
  v.created_by AS "createdBy", v.created_at AS created, v.retired_at AS retired, v.retired_by AS "retiredBy"`;

interface VersionRow {
  name: string;
  version: string;
  sha256: string;
  runtime: string;
  manifest: unknown;
  sizeBytes: unknown;
  createdBy: string;
  created: unknown;
  retired: unknown;
  retiredBy: string | null;
}

function versionRecord(r: VersionRow): VersionRecord {
  return {
    name: r.name,
    version: r.version,
    sha256: r.sha256,
    runtime: r.runtime,
    manifest: r.manifest,
    sizeBytes: Number(r.sizeBytes),
    createdBy: r.createdBy,
    created: toDate(r.created),
    ...(r.retired != null ? { retired: toDate(r.retired), retiredBy: r.retiredBy ?? '' } : {}),
  };
}

const CELL_COLUMNS = 'name, revision, updated_at AS updated';
type CellRow = { name: string; revision: unknown; updated: unknown };
function cellInfo(r: CellRow): CellInfo {
  return { name: r.name, revision: Number(r.revision), updated: toDate(r.updated) };
}

/** One model's deployment in one cell: the DeployedModel message's fields, as plain objects. */
type ModelState = Pick<DeployedModel, 'name' | 'defaultVersion' | 'aliases'> & {
  versions: Pick<DeployedVersion, 'version' | 'bundleSha256' | 'runtime' | 'sizeBytes'>[];
  split: SplitArmState[];
  shadows: ShadowTargetState[];
};

/** Deployed models per cell (cell → model → state) for deployments matching `where` (alias `d`). */
async function modelStates(tx: SqlQueryable, where: string, params: unknown[]): Promise<Map<string, Map<string, ModelState>>> {
  const deployed = await tx.query<{ cell: string; model: string; version: string; sha256: string; runtime: string; sizeBytes: unknown; defaultVersion: string | null }>(
    `SELECT d.cell, d.model_name AS model, d.version, v.sha256, v.runtime, v.size_bytes AS "sizeBytes", f.version AS "defaultVersion"
     FROM deployments d JOIN model_versions v ON v.model_name = d.model_name AND v.version = d.version
     LEFT JOIN cell_defaults f ON f.cell = d.cell AND f.model_name = d.model_name
     WHERE ${where} ORDER BY d.cell, d.model_name, v.seq`,
    params,
  );
  const aliases = await tx.query<{ cell: string; model: string; alias: string; version: string }>(
    `SELECT d.cell, d.model_name AS model, d.alias, d.version FROM cell_aliases d WHERE ${where} ORDER BY d.cell, d.model_name, d.alias`,
    params,
  );
  const out = new Map<string, Map<string, ModelState>>();
  for (const r of deployed) {
    let models = out.get(r.cell);
    if (!models) out.set(r.cell, (models = new Map()));
    let m = models.get(r.model);
    if (!m) models.set(r.model, (m = { name: r.model, versions: [], defaultVersion: r.defaultVersion ?? '', aliases: {}, split: [], shadows: [] }));
    m.versions.push({ version: r.version, bundleSha256: r.sha256, runtime: r.runtime, sizeBytes: BigInt(String(r.sizeBytes)) });
  }
  for (const a of aliases) {
    const m = out.get(a.cell)?.get(a.model);
    if (m) m.aliases[a.alias] = a.version;
  }
  const arms = await tx.query<{ cell: string; model: string; arm: string; version: string; weight: number }>(
    `SELECT d.cell, d.model_name AS model, d.arm, d.version, d.weight FROM cell_splits d WHERE ${where} ORDER BY d.cell, d.model_name, d.position`,
    params,
  );
  for (const a of arms) out.get(a.cell)?.get(a.model)?.split.push({ arm: a.arm, version: a.version, weight: Number(a.weight) });
  const shadows = await tx.query<{ cell: string; model: string; shadowModel: string; shadowVersion: string }>(
    `SELECT d.cell, d.model_name AS model, d.shadow_model AS "shadowModel", d.shadow_version AS "shadowVersion"
     FROM cell_shadows d WHERE ${where} ORDER BY d.cell, d.model_name, d.position`,
    params,
  );
  for (const h of shadows) out.get(h.cell)?.get(h.model)?.shadows.push({ model: h.shadowModel, version: h.shadowVersion });
  return out;
}

function validateVersionInput(input: { name: string; version: string; sha256: string; runtime: string; sizeBytes: number; actor: string }): void {
  const problems: string[] = [];
  if (!isName(input.name)) problems.push(`name ${NAME.message}`);
  if (!isVersion(input.version)) problems.push(`version ${VERSION.message}`);
  if (!isSha256(input.sha256)) problems.push(`sha256 ${SHA256_HEX.message}`);
  if (!input.runtime) problems.push('runtime must not be empty');
  if (!Number.isSafeInteger(input.sizeBytes) || input.sizeBytes < 0) problems.push('sizeBytes must be a non-negative integer');
  if (!input.actor) problems.push('actor must not be empty');
  if (problems.length > 0) throw new SibylError('INVALID_ARGUMENT', problems.join('; '));
}

export function toDate(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}
