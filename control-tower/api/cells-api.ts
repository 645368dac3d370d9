/**
 * Cells: what gateways follow and what they report. A cell's desired state (CellState ProtoJSON) with a long-poll
 * on its revision, bundles by content hash (ETag the sha256; If-None-Match answers 304), gateway reports, and per cell the desired state against what each
 * replica has actually loaded, with its load errors.
 */
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Hono } from 'hono';
import { CellStateSchema, GatewayReportSchema, ShadowComparisonSchema } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { VersionStatisticsSchema } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { SibylError } from '../../core/errors.ts';
import { isSha256, SHA256_HEX } from '../../core/names.ts';
import type { ArtifactStore, MetadataStore } from '../store/index.ts';
import { reply, requireRole, type TowerEnv } from './http.ts';
import { CellList, CellStatus, ReportReceived } from './schemas.ts';

export interface CellsApiDeps {
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  /** Longest long-poll, ms. */
  readonly maxWaitMs: number;
  /** A replica not heard from for this long is marked stale, ms (default 120 000). */
  readonly staleAfterMs?: number;
}

export function mountCellsApi(app: Hono<TowerEnv>, deps: CellsApiDeps): void {
  const { store, artifacts } = deps;
  const staleAfterMs = deps.staleAfterMs ?? 120_000;

  app.get('/v1/cells', async (c) => {
    requireRole(c, 'viewer');
    return reply(c, CellList, { cells: await store.listCells() });
  });

  app.get('/v1/cells/:cell/state', async (c) => {
    requireRole(c, 'viewer');
    const cell = c.req.param('cell');
    const after = intQuery(c.req.query('after'), 'after', 0);
    const waitMs = Math.min(intQuery(c.req.query('wait_ms'), 'wait_ms', 0), deps.maxWaitMs);
    // A caller ahead of this tower (its cached state outlived a database reset) gets the current state at once: it
    // must move to this history, not wait for the revision to catch up.
    if (waitMs > 0 && after <= (await store.cellRevision(cell))) await store.waitForRevision(cell, after, { timeoutMs: waitMs, signal: c.req.raw.signal });
    const state = await store.cellState(cell);
    return c.json(toJson(CellStateSchema, state) as object);
  });

  app.post('/v1/cells/:cell/reports', async (c) => {
    requireRole(c, 'viewer');
    const cell = c.req.param('cell');
    let report;
    try {
      report = fromJson(GatewayReportSchema, (await c.req.json()) as JsonValue, { ignoreUnknownFields: true });
    } catch (err) {
      throw new SibylError('INVALID_ARGUMENT', `invalid GatewayReport: ${(err as Error).message}`);
    }
    if (report.cell && report.cell !== cell) throw new SibylError('INVALID_ARGUMENT', `cell: the body names "${report.cell}" but the path names "${cell}"`);
    if (!report.replica) throw new SibylError('INVALID_ARGUMENT', 'replica: required');
    const saved = await store.saveReport({
      cell,
      replica: report.replica,
      revision: Number(report.revision),
      loaded: report.loaded.map((l) => ({ model: l.model, version: l.version, bundleSha256: l.bundleSha256 })),
      errors: report.errors.map((e) => ({ model: e.model, version: e.version, message: e.message })),
      ...(report.time ? { time: timestampDate(report.time) } : {}),
      shadows: report.shadows.map((s) => toJson(ShadowComparisonSchema, s)),
      statistics: report.statistics.map((s) => toJson(VersionStatisticsSchema, s)),
    });
    return reply(c, ReportReceived, { received: saved.received });
  });

  app.get('/v1/cells/:cell', async (c) => {
    requireRole(c, 'viewer');
    const cell = c.req.param('cell');
    const desired = await store.cellState(cell);
    const want = new Map<string, string>(desired.models.flatMap((m) => m.versions.map((v): [string, string] => [`${m.name}/${v.version}`, v.bundleSha256])));
    const now = Date.now();
    const replicas = (await store.reports(cell)).map((r) => {
      const have = new Map(r.loaded.map((l) => [`${l.model}/${l.version}`, l.bundleSha256]));
      return {
        replica: r.replica,
        revision: r.revision,
        inSync: BigInt(r.revision) === desired.revision && [...want].every(([k, sha]) => have.get(k) === sha) && have.size === want.size,
        lastSeen: r.received,
        stale: now - r.received.getTime() > staleAfterMs,
        loaded: r.loaded,
        missing: [...want].filter(([k, sha]) => have.get(k) !== sha).map(([k]) => k),
        extra: [...have.keys()].filter((k) => !want.has(k)),
        errors: r.errors,
      };
    });
    return reply(c, CellStatus, { cell, desired: toJson(CellStateSchema, desired), replicas });
  });

  app.get('/v1/bundles/:sha', async (c) => {
    requireRole(c, 'viewer');
    const sha = c.req.param('sha');
    if (!isSha256(sha)) throw new SibylError('INVALID_ARGUMENT', `a bundle is named by its sha256, which ${SHA256_HEX.message}`);
    const etag = `"${sha}"`;
    const ifNoneMatch = c.req.header('if-none-match');
    // Content-addressed: a client holding this ETag holds these bytes.
    if (ifNoneMatch && ifNoneMatch.split(',').some((v) => v.trim() === etag || v.trim() === `W/${etag}`) && (await artifacts.has(sha))) {
      return c.body(null, 304, { etag });
    }
    const bytes = await artifacts.get(sha);
    if (!bytes) throw new SibylError('NOT_FOUND', `bundle ${sha} not found`);
    return new Response(bytes, { headers: { 'content-type': 'application/zip', etag, 'cache-control': 'public, max-age=31536000, immutable' } });
  });
}

function intQuery(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new SibylError('INVALID_ARGUMENT', `${name}: a non-negative integer is required, got "${v}"`);
  return n;
}
