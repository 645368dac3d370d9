/**
 * Models and versions: upload (raw zip or multipart field `bundle`), list, read, manifest, bundle download, default,
 * aliases, deploy/undeploy, retire, traffic split, shadows, and the live-versus-shadow comparison the gateways
 * report. Reads need the viewer role; changes need publisher.
 */
import type { Hono } from 'hono';
import { SibylError } from '../../core/errors.ts';
import type { ArtifactStore, MetadataStore, ShadowTargetState, SplitArmInput, VersionRecord } from '../store/index.ts';
import type { UploadValidator } from './upload-validator.ts';
import { cellSelector, jsonBody, requiredCells, requireRole, stringField, type TowerEnv } from './http.ts';
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
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (declared > deps.maxUploadBytes) throw tooBig(declared, deps.maxUploadBytes);
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
    if (zip.byteLength > deps.maxUploadBytes) throw tooBig(zip.byteLength, deps.maxUploadBytes);
    if (zip.byteLength === 0) throw new SibylError('INVALID_ARGUMENT', 'the body is empty: send the bundle zip (application/zip) or a multipart field "bundle"');
    const q = (name: string) => c.req.query(name) ?? (typeof fields[name] === 'string' ? (fields[name] as string) : undefined);
    const result = await publishBundle(deps, { zip, cells: cellSelector(q('cells')), makeDefault: flag(q('default'), 'default'), actor: p.name });
    return c.json({ ...versionJson(result.version), created: result.created, changed: result.changed }, result.created ? 201 : 200);
  });

  app.get('/v1/models', async (c) => {
    requireRole(c, 'viewer');
    return c.json({ models: await store.listModels() });
  });

  app.get('/v1/models/:name', async (c) => {
    requireRole(c, 'viewer');
    const m = await store.getModel(c.req.param('name'));
    return c.json({ ...m, versions: m.versions.map((v) => ({ ...versionJson(v), cells: v.cells })) });
  });

  app.get('/v1/models/:name/versions/:version', async (c) => {
    requireRole(c, 'viewer');
    const v = await store.getVersion(c.req.param('name'), c.req.param('version'));
    return c.json({ ...versionJson(v), cells: v.cells, manifest: v.manifest });
  });

  app.get('/v1/models/:name/versions/:version/manifest', async (c) => {
    requireRole(c, 'viewer');
    return c.json((await store.getVersion(c.req.param('name'), c.req.param('version'))).manifest as object);
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
    const body = await jsonBody(c);
    return c.json(await store.setDefault(c.req.param('name'), stringField(body, 'version'), cellSelector(body.cells), p.name));
  });

  app.put('/v1/models/:name/aliases/:alias', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await jsonBody(c);
    return c.json(await store.setAlias(c.req.param('name'), c.req.param('alias'), stringField(body, 'version'), cellSelector(body.cells), p.name));
  });

  app.delete('/v1/models/:name/aliases/:alias', async (c) => {
    const p = requireRole(c, 'publisher');
    return c.json(await store.deleteAlias(c.req.param('name'), c.req.param('alias'), cellSelector(c.req.query('cells')), p.name));
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
        return c.json(await store.deploy(name, version, requiredCells((await jsonBody(c)).cells), p.name));
      case 'undeploy':
        return c.json(await store.undeploy(name, version, requiredCells((await jsonBody(c)).cells), p.name));
      case 'retire':
        return c.json(await store.retireVersion(name, version, p.name));
      default:
        throw new SibylError('NOT_FOUND', `no such method: ${spec} (use {version}:deploy, :undeploy or :retire)`);
    }
  });

  app.put('/v1/models/:name/split', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await jsonBody(c);
    if (!Array.isArray(body.arms)) throw new SibylError('INVALID_ARGUMENT', 'arms: a list of { version, weight, arm? } is required ([] removes the split)');
    const arms = body.arms.map((a: unknown, i: number): SplitArmInput => {
      const o = (a ?? {}) as Record<string, unknown>;
      if (typeof o.version !== 'string' || typeof o.weight !== 'number' || (o.arm !== undefined && typeof o.arm !== 'string')) {
        throw new SibylError('INVALID_ARGUMENT', `arms[${i}]: { version: string, weight: number, arm?: string } is required`);
      }
      return { version: o.version, weight: o.weight, ...(o.arm !== undefined ? { arm: o.arm as string } : {}) };
    });
    return c.json(await store.setSplit(c.req.param('name'), arms, cellSelector(body.cells), p.name));
  });

  app.put('/v1/models/:name/shadows', async (c) => {
    const p = requireRole(c, 'publisher');
    const body = await jsonBody(c);
    const name = c.req.param('name');
    if (!Array.isArray(body.shadows)) throw new SibylError('INVALID_ARGUMENT', 'shadows: a list of { model?, version } is required ([] removes them)');
    const shadows = body.shadows.map((s: unknown, i: number): ShadowTargetState => {
      const o = (s ?? {}) as Record<string, unknown>;
      if (typeof o.version !== 'string' || (o.model !== undefined && typeof o.model !== 'string')) {
        throw new SibylError('INVALID_ARGUMENT', `shadows[${i}]: { model?: string, version: string } is required`);
      }
      return { model: (o.model as string | undefined) ?? name, version: o.version };
    });
    return c.json(await store.setShadows(name, shadows, cellSelector(body.cells), p.name));
  });

  /** The live-versus-shadow comparison of this model as each gateway replica last reported it. */
  app.get('/v1/models/:name/shadows', async (c) => {
    requireRole(c, 'viewer');
    const name = c.req.param('name');
    const model = await store.getModel(name);
    const replicas = [];
    for (const cell of (await store.listCells()).map((x) => x.name)) {
      for (const r of await store.reports(cell)) {
        const pairs = ((r.shadows ?? []) as { liveModel?: string }[]).filter((s) => s.liveModel === name);
        if (pairs.length) replicas.push({ cell, replica: r.replica, received: r.received, pairs });
      }
    }
    return c.json({ model: name, configured: model.cells.map((x) => ({ cell: x.cell, shadows: x.shadows, split: x.split })), replicas });
  });
}

function versionJson(v: VersionRecord) {
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
