/**
 * Models and versions: upload (raw zip or multipart field `bundle`), list, read, manifest, bundle download, default,
 * aliases, deploy/undeploy, retire, traffic split, shadows, and the live-versus-shadow comparison the gateways
 * report. Reads need the viewer role; changes need publisher.
 */
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { SibylError } from '../../core/errors.ts';
import type { ArtifactStore, MetadataStore, ShadowTargetState, SplitArmInput, VersionRecord } from '../store/index.ts';
import type { UploadValidator } from './upload-validator.ts';
import { cellSelector, parseBody, reply, requiredCells, requireRole, type TowerEnv } from './http.ts';
import { CellsBody, ChangeResult, Manifest, ModelDetail, ModelList, ShadowsBody, ShadowsReport, SetVersionBody, SplitBody, UploadResult, VersionDetail, type Version } from './schemas.ts';
import { publishBundle } from './upload.ts';

export interface ModelsApiDeps {
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly validator: UploadValidator;
  readonly maxUploadBytes: number;
}

export function mountModelsApi(app: Hono<TowerEnv>, deps: ModelsApiDeps): void {
  const { store, artifacts } = deps;

  app.post('/v1/models', async (c) => {
    const p = requireRole(c, 'publisher');
    const { zip, fields } = await bundleBody(c, deps.maxUploadBytes);
    const q = (name: string) => c.req.query(name) ?? (typeof fields[name] === 'string' ? (fields[name] as string) : undefined);
    const result = await publishBundle(deps, { zip, cells: cellSelector(q('cells')), makeDefault: flag(q('default'), 'default'), actor: p.name });
    return reply(c, UploadResult, { ...versionJson(result.version), created: result.created, changed: result.changed }, result.created ? 201 : 200);
  });

  app.get('/v1/models', async (c) => {
    requireRole(c, 'viewer');
    return reply(c, ModelList, { models: await store.listModels() });
  });

  app.get('/v1/models/:name', async (c) => {
    requireRole(c, 'viewer');
    const m = await store.getModel(c.req.param('name'));
    return reply(c, ModelDetail, { ...m, versions: m.versions.map((v) => ({ ...versionJson(v), cells: v.cells })) });
  });

  app.get('/v1/models/:name/versions/:version', async (c) => {
    requireRole(c, 'viewer');
    const v = await store.getVersion(c.req.param('name'), c.req.param('version'));
    return reply(c, VersionDetail, { ...versionJson(v), cells: v.cells, manifest: v.manifest as Record<string, unknown> });
  });

  app.get('/v1/models/:name/versions/:version/manifest', async (c) => {
    requireRole(c, 'viewer');
    return reply(c, Manifest, (await store.getVersion(c.req.param('name'), c.req.param('version'))).manifest as Record<string, unknown>);
  });

  app.get('/v1/models/:name/versions/:version/bundle', async (c) => {
    requireRole(c, 'viewer');
    const v = await store.getVersion(c.req.param('name'), c.req.param('version'));
    const bytes = await artifacts.get(v.sha256);
    if (!bytes) throw new SibylError('DATA_LOSS', `the bundle of ${v.name}/${v.version} (sha256 ${v.sha256}) is missing from the artifact store`);
    return new Response(bytes, {
      headers: { 'content-type': 'application/zip', etag: `"${v.sha256}"`, 'content-disposition': `attachment; filename="${v.name}-${v.version}.zip"` },
    });
  });

  app.put('/v1/models/:name/default', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await parseBody(c, SetVersionBody);
    return reply(c, ChangeResult, await store.setDefault(c.req.param('name'), body.version, cellSelector(body.cells), p.name));
  });

  app.put('/v1/models/:name/aliases/:alias', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await parseBody(c, SetVersionBody);
    return reply(c, ChangeResult, await store.setAlias(c.req.param('name'), c.req.param('alias'), body.version, cellSelector(body.cells), p.name));
  });

  app.delete('/v1/models/:name/aliases/:alias', async (c) => {
    const p = requireRole(c, 'publisher');
    return reply(c, ChangeResult, await store.deleteAlias(c.req.param('name'), c.req.param('alias'), cellSelector(c.req.query('cells')), p.name));
  });

  // POST .../versions/{v}:deploy | :undeploy | :retire
  app.post('/v1/models/:name/versions/:spec', async (c) => {
    const p = requireRole(c, 'publisher');
    const spec = c.req.param('spec');
    const i = spec.lastIndexOf(':');
    const version = i > 0 ? spec.slice(0, i) : spec;
    const verb = i > 0 ? spec.slice(i + 1) : '';
    const name = c.req.param('name');
    switch (verb) {
      case 'deploy':
        return reply(c, ChangeResult, await store.deploy(name, version, requiredCells((await parseBody(c, CellsBody)).cells), p.name));
      case 'undeploy':
        return reply(c, ChangeResult, await store.undeploy(name, version, requiredCells((await parseBody(c, CellsBody)).cells), p.name));
      case 'retire':
        return reply(c, ChangeResult, await store.retireVersion(name, version, p.name));
      default:
        throw new SibylError('NOT_FOUND', `no such method: ${spec} (use {version}:deploy, :undeploy or :retire)`);
    }
  });

  app.put('/v1/models/:name/split', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await parseBody(c, SplitBody);
    const arms = body.arms.map((a): SplitArmInput => ({ version: a.version, weight: a.weight, ...(a.arm !== undefined ? { arm: a.arm } : {}) }));
    return reply(c, ChangeResult, await store.setSplit(c.req.param('name'), arms, cellSelector(body.cells), p.name));
  });

  app.put('/v1/models/:name/shadows', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await parseBody(c, ShadowsBody);
    const name = c.req.param('name');
    const shadows = body.shadows.map((s): ShadowTargetState => ({ model: s.model ?? name, version: s.version }));
    return reply(c, ChangeResult, await store.setShadows(name, shadows, cellSelector(body.cells), p.name));
  });

  /** The live-versus-shadow comparison of this model as each gateway replica last reported it. */
  app.get('/v1/models/:name/shadows', async (c) => {
    requireRole(c, 'viewer');
    const name = c.req.param('name');
    const model = await store.getModel(name);
    const replicas: z.output<typeof ShadowsReport>['replicas'] = [];
    for (const cell of (await store.listCells()).map((x) => x.name)) {
      for (const r of await store.reports(cell)) {
        const pairs = ((r.shadows ?? []) as { liveModel?: string }[]).filter((s) => s.liveModel === name);
        if (pairs.length) replicas.push({ cell, replica: r.replica, received: r.received, pairs });
      }
    }
    return reply(c, ShadowsReport, { model: name, configured: model.cells.map((x) => ({ cell: x.cell, shadows: x.shadows, split: x.split })), replicas });
  });
}

/**
 * The bundle zip of an upload or an inspection: the raw body (application/zip or octet-stream), or multipart with
 * the zip in file field `bundle` and the other fields as strings. INVALID_ARGUMENT when larger than `maxBytes`
 * (SIBYL_MAX_UPLOAD_BYTES), empty, or multipart without the field.
 */
export async function bundleBody(c: Context, maxBytes: number): Promise<{ zip: Buffer; fields: Record<string, unknown> }> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > maxBytes) throw tooBig(declared, maxBytes);
  const type = c.req.header('content-type') ?? '';
  let zip: Buffer;
  let fields: Record<string, unknown> = {};
  if (type.startsWith('multipart/form-data')) {
    const form = await c.req.parseBody();
    const file = form['bundle'];
    if (!(file instanceof File)) throw new SibylError('INVALID_ARGUMENT', 'multipart upload: the zip goes in a file field named "bundle"');
    zip = Buffer.from(await file.arrayBuffer());
    fields = form;
  } else {
    zip = Buffer.from(await c.req.arrayBuffer());
  }
  if (zip.byteLength > maxBytes) throw tooBig(zip.byteLength, maxBytes);
  if (zip.byteLength === 0) throw new SibylError('INVALID_ARGUMENT', 'the body is empty: send the bundle zip (application/zip) or a multipart field "bundle"');
  return { zip, fields };
}

function versionJson(v: VersionRecord): z.output<typeof Version> {
  return {
    name: v.name,
    version: v.version,
    sha256: v.sha256,
    runtime: v.runtime,
    sizeBytes: v.sizeBytes,
    createdBy: v.createdBy,
    createdAt: v.created,
    ...(v.retired ? { retiredAt: v.retired, retiredBy: v.retiredBy } : {}),
  };
}

/** `true`/`false` (or absent: false); anything else INVALID_ARGUMENT. */
function flag(v: string | undefined, name: string): boolean {
  if (v === undefined || v === '' || v === 'false') return false;
  if (v === 'true') return true;
  throw new SibylError('INVALID_ARGUMENT', `${name}: "true" or "false", got "${v}"`);
}

function tooBig(size: number, limit: number): SibylError {
  return new SibylError('INVALID_ARGUMENT', `the upload of ${size} bytes exceeds the limit of ${limit} bytes (SIBYL_MAX_UPLOAD_BYTES)`);
}
